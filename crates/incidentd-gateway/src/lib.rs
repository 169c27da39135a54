//! The edges of incidentd: gRPC (tonic) and HTTP (axum). Requests are
//! validated and converted here; protocol types never go further in. Errors
//! become statuses in one place (`error`).

pub mod convert;
pub mod error;
pub mod grpc;
pub mod http;
pub mod metrics;
pub mod server;
pub mod statuspage_grpc;

pub use grpc::IncidentApi;
pub use http::{HttpState, router};
pub use metrics::RpcMetrics;
pub use server::{serve_grpc, set_not_serving};
pub use statuspage_grpc::StatusPageApi;
