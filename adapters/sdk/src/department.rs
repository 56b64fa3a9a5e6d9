//! The one trait a department implements.

use std::future::Future;

use xgate_catalog::SubjectKind;

/// A subject whose ID number has already been validated by the SDK
/// (check digit, length, birth date), so a lookup can bind it as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub kind: SubjectKind,
    /// The ID number, upper case.
    pub id: String,
}

/// Why a lookup failed. "No record" is not an error: return `Ok(vec![])`.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The department's own system failed (database down, query error...).
    #[error("department backend failed: {0}")]
    Backend(String),
    /// The department's data cannot make a valid record (a malformed date,
    /// an unknown code): asking again does not help, and the gateway answers
    /// INVALID. The text goes to the requester: name the catalog field,
    /// never the department's own columns or values.
    #[error("{0}")]
    BadData(String),
}

/// What a department writes: the lookup of its records. Everything else
/// (gRPC server, mTLS, ID validation, deadlines, health, reflection,
/// registration with the gateway) is the SDK's.
pub trait Department: Send + Sync + 'static {
    /// The department id as in the catalog, e.g. `tax`.
    fn department(&self) -> &str;

    /// The catalog record types this adapter serves.
    fn record_types(&self) -> Vec<String>;

    /// Subjects this department holds records about, named in `Describe`
    /// so the conformance kit (`xgate adapter check`) can test every served
    /// type without being told. Test or demo subjects only: never real
    /// people. None by default (the kit then needs `--subject`).
    fn sample_subjects(&self) -> Vec<Subject> {
        Vec::new()
    }

    /// All records of `record_type` held about `subject`, each one JSON
    /// object valid against the catalog schema of that type. An empty vector
    /// means NOT_FOUND. Only called with a type from [`Self::record_types`]
    /// whose subject kind matches.
    fn lookup(
        &self,
        subject: &Subject,
        record_type: &str,
    ) -> impl Future<Output = Result<Vec<serde_json::Value>, LookupError>> + Send;
}

/// A [`Department`] behind a pointer. The SDK's server holds one of these,
/// so the whole gRPC/TLS stack is compiled once, in this crate, instead of
/// once per adapter binary for its `D` (in release builds each binary
/// instantiates the generics it uses itself: a generic server made every
/// department binary a half-minute build). One boxed future per lookup is
/// the price.
pub(crate) trait DynDepartment: Send + Sync + 'static {
    fn department(&self) -> &str;
    fn record_types(&self) -> Vec<String>;
    fn sample_subjects(&self) -> Vec<Subject>;
    fn lookup<'a>(
        &'a self,
        subject: &'a Subject,
        record_type: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<Vec<serde_json::Value>, LookupError>>;
}

impl<D: Department> DynDepartment for D {
    fn department(&self) -> &str {
        Department::department(self)
    }
    fn record_types(&self) -> Vec<String> {
        Department::record_types(self)
    }
    fn sample_subjects(&self) -> Vec<Subject> {
        Department::sample_subjects(self)
    }
    fn lookup<'a>(
        &'a self,
        subject: &'a Subject,
        record_type: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<Vec<serde_json::Value>, LookupError>> {
        Box::pin(Department::lookup(self, subject, record_type))
    }
}
