//! The edges of incidentd: gRPC (tonic) and HTTP (axum). Requests are
//! validated and converted here; protocol types never go further in. Errors
//! become statuses in one place (`error`).

pub mod admin;
pub mod alert_grpc;
pub mod alertmanager;
pub mod audit;
pub mod auth;
pub mod convert;
pub mod drill;
pub mod error;
pub mod grpc;
pub mod http;
pub mod ingest;
pub mod json;
pub mod metrics;
pub mod notify;
pub mod pagerduty;
pub mod review;
pub mod server;
pub mod statuspage_grpc;

pub use alert_grpc::AlertApi;
pub use auth::{Auth, AuthLayer, Caller};
pub use grpc::IncidentApi;
pub use http::{HttpState, router};
pub use ingest::{AlertIngest, IntegrationRoute, Integrations, SourceKind};
pub use metrics::RpcMetrics;
pub use server::{Edges, serve_grpc_with, set_not_serving};
pub use statuspage_grpc::StatusPageApi;
