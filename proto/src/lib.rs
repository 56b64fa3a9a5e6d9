//! The xgate wire contract (`xgate.v1`), generated at build time from
//! `proto/xgate/v1/*.proto`.
//!
//! - [`v1::exchange_server`] / [`v1::exchange_client`]: what approval systems call.
//! - [`v1::registry_server`] / [`v1::registry_client`]: what department IT calls.
//! - [`v1::audit_server`] / [`v1::audit_client`]: what auditors call.
//! - [`v1::department_adapter_server`] / [`v1::department_adapter_client`]: what
//!   adapters implement and the gateway calls.
//!
//! [`FILE_DESCRIPTOR_SET`] feeds gRPC server reflection; [`view::to_proto`] puts a
//! catalog view on the wire.

/// `xgate.v1`.
#[allow(clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("xgate.v1");
}

/// Encoded `FileDescriptorSet` of every xgate proto file, for reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/xgate_descriptor.bin"));

pub mod deadline;
pub mod json;
pub mod kind;
pub mod status;
pub mod telemetry;
pub mod view;

pub use prost_types;

use v1::RecordStatus;

/// `OK`, `NOT_FOUND`, ... as shown to people, in JSON output, the audit log
/// and metric labels: one spelling for every reader of a record's status.
pub fn status_name(status: i32) -> &'static str {
    match RecordStatus::try_from(status) {
        Ok(RecordStatus::Ok) => "OK",
        Ok(RecordStatus::NotFound) => "NOT_FOUND",
        Ok(RecordStatus::Denied) => "DENIED",
        Ok(RecordStatus::Unavailable) => "UNAVAILABLE",
        Ok(RecordStatus::Invalid) => "INVALID",
        Ok(RecordStatus::NoSource) => "NO_SOURCE",
        Ok(RecordStatus::ResourceExhausted) => "RESOURCE_EXHAUSTED",
        _ => "UNSPECIFIED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_are_the_proto_names_without_prefix() {
        assert_eq!(status_name(RecordStatus::Ok as i32), "OK");
        assert_eq!(status_name(RecordStatus::NoSource as i32), "NO_SOURCE");
        assert_eq!(
            status_name(RecordStatus::ResourceExhausted as i32),
            "RESOURCE_EXHAUSTED"
        );
        assert_eq!(status_name(-1), "UNSPECIFIED");
    }
}
