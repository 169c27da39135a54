//! One test binary for every end-to-end test: each starts the real
//! `incidentd` binary on `127.0.0.1:0` with its own data dir.

mod alerts;
mod auth;
mod bad_input;
mod ctl;
mod drill;
mod notify;
mod notify_fault;
mod otlp;
mod playbook;
mod review;
mod status;
mod support;
mod timers;
