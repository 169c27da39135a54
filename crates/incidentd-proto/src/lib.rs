//! Generated types of package `incident.v1`. Protocol types stop at the
//! gateway: nothing but `incidentd-gateway` (and clients: CLI, tests,
//! benches) depends on this crate.

#![allow(clippy::all, clippy::pedantic)]

pub mod v1 {
    tonic::include_proto!("incident.v1");

    /// Encoded `FileDescriptorSet` for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("incident_v1_descriptor");
}
