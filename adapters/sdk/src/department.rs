//! The one trait a department implements.

use std::future::Future;

use futures::StreamExt as _;
use xgate_catalog::SubjectKind;

/// Most subjects one `BatchLookup` may name (the proto's `MAX_BATCH_SUBJECTS`);
/// more is INVALID_ARGUMENT. The gateway splits larger screenings.
pub const MAX_BATCH_SUBJECTS: usize = 1_000;

/// How many single lookups [`lookup_each`] (the default
/// [`Department::lookup_batch`]) runs at once. Enough to hide a database's
/// round trip (a pool of a few connections stays busy), few enough that one
/// batch of [`MAX_BATCH_SUBJECTS`] cannot take every connection from the
/// single lookups running beside it, nor queue a thousand queries at once.
pub const FALLBACK_CONCURRENCY: usize = 16;

/// A subject whose ID number has already been validated by the SDK
/// (check digit, length, birth date), so a lookup can bind it as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub kind: SubjectKind,
    /// The ID number, upper case.
    pub id: String,
}

/// Why a lookup failed. "No record" is not an error: return `Ok(vec![])`.
/// `Clone`, so a batch can give one failure to every subject it hit.
#[derive(Debug, Clone, thiserror::Error)]
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

    /// [`Self::lookup`] for many subjects of one type at once (the
    /// `BatchLookup` of screenings): one result per subject, in the order of
    /// `subjects`, each exactly what `lookup` would give for it (duplicates
    /// answered each). At most [`MAX_BATCH_SUBJECTS`] subjects, all of the
    /// type's kind, with valid IDs.
    ///
    /// The default is [`lookup_each`]: correct for any department, but one
    /// query per subject. A department whose store can answer a set at once
    /// (`WHERE subject IN (...)`) overrides it; that is what makes screening
    /// cheap.
    fn lookup_batch(
        &self,
        subjects: &[Subject],
        record_type: &str,
    ) -> impl Future<Output = Vec<Result<Vec<serde_json::Value>, LookupError>>> + Send {
        lookup_each(self, subjects, record_type)
    }
}

/// One [`Department::lookup`] per subject, [`FALLBACK_CONCURRENCY`] at a
/// time, the results in the order of `subjects`: the default
/// [`Department::lookup_batch`], and what an override falls back to for the
/// types it cannot batch.
pub async fn lookup_each<D: Department + ?Sized>(
    dept: &D,
    subjects: &[Subject],
    record_type: &str,
) -> Vec<Result<Vec<serde_json::Value>, LookupError>> {
    // `stream::iter(..).map(..).buffered(..)` would say the same, but its
    // closure makes the future's `Send` unprovable for the trait's default.
    // FuturesOrdered yields in the order pushed: the subjects' order.
    let mut next = subjects.iter();
    let mut running = futures::stream::FuturesOrdered::new();
    for subject in next.by_ref().take(FALLBACK_CONCURRENCY) {
        running.push_back(dept.lookup(subject, record_type));
    }
    let mut results = Vec::with_capacity(subjects.len());
    while let Some(result) = running.next().await {
        results.push(result);
        if let Some(subject) = next.next() {
            running.push_back(dept.lookup(subject, record_type));
        }
    }
    results
}

/// A [`Department`] behind a pointer. The SDK's server holds one of these,
/// so the whole gRPC/TLS stack is compiled once, in this crate, instead of
/// once per adapter binary for its `D` (in release builds each binary
/// instantiates the generics it uses itself: a generic server made every
/// department binary a half-minute build). One boxed future per lookup is
/// the price (one per batch and type for [`Department::lookup_batch`]).
pub(crate) trait DynDepartment: Send + Sync + 'static {
    fn department(&self) -> &str;
    fn record_types(&self) -> Vec<String>;
    fn sample_subjects(&self) -> Vec<Subject>;
    fn lookup<'a>(
        &'a self,
        subject: &'a Subject,
        record_type: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<Vec<serde_json::Value>, LookupError>>;
    fn lookup_batch<'a>(
        &'a self,
        subjects: &'a [Subject],
        record_type: &'a str,
    ) -> futures::future::BoxFuture<'a, Vec<Result<Vec<serde_json::Value>, LookupError>>>;
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
    fn lookup_batch<'a>(
        &'a self,
        subjects: &'a [Subject],
        record_type: &'a str,
    ) -> futures::future::BoxFuture<'a, Vec<Result<Vec<serde_json::Value>, LookupError>>> {
        Box::pin(Department::lookup_batch(self, subjects, record_type))
    }
}
