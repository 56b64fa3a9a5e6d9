//! Caller roles as extractors: a service method names the role it serves
//! (`Requester::of(&request, "fetch")?`) instead of matching identities by
//! hand, so every refusal reads the same and names what was presented.

use tonic::{Request, Status};

use crate::identity::{Identity, peer_identity};

/// A role the peer certificate's identity must have.
pub trait Role: Sized {
    /// The certificates of the role, for refusals ("a requester certificate").
    const CERTIFICATE: &'static str;

    /// The role of `identity`, or `None` when it has another.
    fn from_identity(identity: Identity) -> Option<Self>;

    /// The caller's role; PERMISSION_DENIED naming the presented identity
    /// and what the role may do (`action`) when it has another, and
    /// UNAUTHENTICATED without a client certificate.
    fn of<T>(request: &Request<T>, action: &str) -> Result<Self, Status> {
        let identity = peer_identity(request)?;
        let shown = identity.to_string();
        Self::from_identity(identity).ok_or_else(|| {
            Status::permission_denied(format!(
                "`{shown}` is not {}; only it may {action}",
                Self::CERTIFICATE
            ))
        })
    }
}

macro_rules! role {
    ($(#[$doc:meta])* $name:ident, $variant:ident, $certificate:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(pub String);

        impl Role for $name {
            const CERTIFICATE: &'static str = $certificate;

            fn from_identity(identity: Identity) -> Option<Self> {
                match identity {
                    Identity::$variant(id) => Some($name(id)),
                    _ => None,
                }
            }
        }
    };
}

role!(
    /// An approval-bureau system (`xgate://requester/<id>`).
    Requester,
    Requester,
    "a requester certificate (`xgate://requester/<id>`)"
);
role!(
    /// A department's adapter or IT staff (`xgate://department/<id>`).
    Department,
    Department,
    "a department certificate (`xgate://department/<id>`)"
);
role!(
    /// An operator (`xgate://admin/<id>`).
    Admin,
    Admin,
    "an admin certificate (`xgate://admin/<id>`)"
);
role!(
    /// An auditor (`xgate://auditor/<id>`).
    Auditor,
    Auditor,
    "an auditor certificate (`xgate://auditor/<id>`)"
);

role!(
    /// The citizen platform (`xgate://platform/<id>`), acting for the subjects
    /// signed in to it.
    Platform,
    Platform,
    "a citizen platform certificate (`xgate://platform/<id>`)"
);

/// Department IT acting for its own department, or an admin acting for any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DepartmentOrAdmin {
    Department(String),
    Admin(String),
}

impl DepartmentOrAdmin {
    /// Refuses a department certificate acting for another department.
    pub fn may_act_for(&self, department: &str) -> Result<(), Status> {
        match self {
            DepartmentOrAdmin::Department(d) if d != department => {
                Err(Status::permission_denied(format!(
                    "the certificate of department `{d}` cannot act for department `{department}`"
                )))
            }
            _ => Ok(()),
        }
    }
}

impl Role for DepartmentOrAdmin {
    const CERTIFICATE: &'static str = "a department or admin certificate";

    fn from_identity(identity: Identity) -> Option<Self> {
        match identity {
            Identity::Department(d) => Some(DepartmentOrAdmin::Department(d)),
            Identity::Admin(a) => Some(DepartmentOrAdmin::Admin(a)),
            _ => None,
        }
    }
}

/// An operator or an auditor: who may read how the gateway is deployed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminOrAuditor {
    Admin(String),
    Auditor(String),
}

impl Role for AdminOrAuditor {
    const CERTIFICATE: &'static str = "an admin or auditor certificate";

    fn from_identity(identity: Identity) -> Option<Self> {
        match identity {
            Identity::Admin(a) => Some(AdminOrAuditor::Admin(a)),
            Identity::Auditor(a) => Some(AdminOrAuditor::Auditor(a)),
            _ => None,
        }
    }
}

/// An approval system acting for itself, or the citizen platform acting for
/// its signed-in subject: who may manage a subject's consents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequesterOrPlatform {
    Requester(String),
    Platform(String),
}

impl RequesterOrPlatform {
    /// The caller's identity URI (`xgate://requester/<id>`, ...).
    pub fn uri(&self) -> String {
        match self {
            RequesterOrPlatform::Requester(r) => Identity::Requester(r.clone()).uri(),
            RequesterOrPlatform::Platform(p) => Identity::Platform(p.clone()).uri(),
        }
    }
}

impl Role for RequesterOrPlatform {
    const CERTIFICATE: &'static str = "a requester or citizen platform certificate";

    fn from_identity(identity: Identity) -> Option<Self> {
        match identity {
            Identity::Requester(r) => Some(RequesterOrPlatform::Requester(r)),
            Identity::Platform(p) => Some(RequesterOrPlatform::Platform(p)),
            _ => None,
        }
    }
}

/// Who may prove an audit receipt: the approval system that received the
/// answer, or an auditor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiptHolder {
    Requester(String),
    Auditor(String),
}

impl Role for ReceiptHolder {
    const CERTIFICATE: &'static str = "a requester or auditor certificate";

    fn from_identity(identity: Identity) -> Option<Self> {
        match identity {
            Identity::Requester(r) => Some(ReceiptHolder::Requester(r)),
            Identity::Auditor(a) => Some(ReceiptHolder::Auditor(a)),
            _ => None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn roles_take_only_their_own_identities() {
        let hall = Identity::Requester("hall".into());
        assert_eq!(
            Requester::from_identity(hall.clone()),
            Some(Requester("hall".into()))
        );
        assert_eq!(Auditor::from_identity(hall.clone()), None);
        assert_eq!(Admin::from_identity(hall.clone()), None);
        assert_eq!(
            ReceiptHolder::from_identity(hall.clone()),
            Some(ReceiptHolder::Requester("hall".into()))
        );
        assert_eq!(DepartmentOrAdmin::from_identity(hall), None);
        assert_eq!(
            ReceiptHolder::from_identity(Identity::Department("tax".into())),
            None
        );
        let tax = DepartmentOrAdmin::from_identity(Identity::Department("tax".into())).unwrap();
        assert!(tax.may_act_for("tax").is_ok());
        let err = tax.may_act_for("court").unwrap_err();
        assert_eq!(err.code(), tonic::Code::PermissionDenied);
        let admin = DepartmentOrAdmin::from_identity(Identity::Admin("ops".into())).unwrap();
        assert!(admin.may_act_for("court").is_ok());
    }

    #[test]
    fn a_request_without_a_certificate_is_unauthenticated() {
        let err = Requester::of(&Request::new(()), "fetch").unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
    }
}
