//! The gateway's own failures and the one place they become gRPC statuses.
//!
//! A store that cannot be reached is UNAVAILABLE (retrying later may help);
//! a store holding data it cannot read is DATA_LOSS. The caller sees which
//! store failed, never SQL, file paths or subject data: those go to the log.

use tonic::Status;

/// A failure of the gateway's own state, as opposed to a caller's mistake
/// (those are answered where they are found, with their field violations).
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The registry of adapters (the gateway database).
    #[error(transparent)]
    Registry(#[from] crate::store::StoreError),
    /// The audit log.
    #[error(transparent)]
    Audit(#[from] xgate_audit::AuditError),
}

impl From<GatewayError> for Status {
    fn from(e: GatewayError) -> Status {
        tracing::error!(error = %e, "gateway error");
        use crate::store::StoreError;
        use xgate_audit::AuditError;
        match &e {
            GatewayError::Registry(StoreError::Corrupt { .. }) => Status::data_loss(
                "the gateway's registry holds an unreadable registration; see its log",
            ),
            GatewayError::Registry(_) => Status::unavailable(
                "the gateway's registry database is unavailable; try again later",
            ),
            GatewayError::Audit(AuditError::Corrupt { chain, index, .. }) => {
                Status::data_loss(format!(
                    "audit chain `{chain}` entry {index} is unreadable; run `xgate audit verify`"
                ))
            }
            GatewayError::Audit(_) => {
                Status::unavailable("the audit store is unavailable; try again later")
            }
        }
    }
}

/// `?`-friendly: any store error straight to its status.
pub fn status(e: impl Into<GatewayError>) -> Status {
    Status::from(e.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_stores_are_unavailable_and_unreadable_data_is_data_loss() {
        let down = status(crate::store::StoreError::Query(sqlx::Error::PoolTimedOut));
        assert_eq!(down.code(), tonic::Code::Unavailable);
        let corrupt = status(xgate_audit::AuditError::Corrupt {
            chain: "gw-1".into(),
            index: 7,
            message: "bad json".into(),
        });
        assert_eq!(corrupt.code(), tonic::Code::DataLoss);
        assert!(!corrupt.message().contains("bad json"));
        let audit_down = status(xgate_audit::AuditError::Unavailable("disk".into()));
        assert_eq!(audit_down.code(), tonic::Code::Unavailable);
    }
}
