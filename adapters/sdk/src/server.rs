//! The gRPC side of an adapter: the `DepartmentAdapter` service and the
//! server around it.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use futures::future::{BoxFuture, join_all};
use tokio::sync::mpsc;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};
use tracing::Instrument as _;
use xgate_catalog::{Catalog, SubjectKind};
use xgate_proto::status::{Violation, echo, invalid_argument};
use xgate_proto::v1::department_adapter_server::{DepartmentAdapter, DepartmentAdapterServer};
use xgate_proto::v1::{
    BatchLookupAnswer, BatchLookupRequest, DescribeRequest, DescribeResponse, LookupRequest,
    LookupResponse, LookupStatus, TypeAnswer,
};
use xgate_tls::{Identity, TlsFiles};

use crate::department::{Department, DynDepartment, LookupError, MAX_BATCH_SUBJECTS, Subject};
use crate::registration;

/// Flags every adapter binary takes for `serve` (flatten them into its CLI).
#[derive(clap::Args, Debug, Clone)]
pub struct AdapterArgs {
    /// Address to listen on; port 0 lets the OS choose (printed on stdout).
    #[arg(long, default_value = "127.0.0.1:0", env = "XGATE_ADAPTER_LISTEN")]
    pub listen: SocketAddr,
    /// PEM certificate of this adapter (URI SAN `xgate://department/<id>`).
    #[arg(long, env = "XGATE_ADAPTER_CERT")]
    pub cert: PathBuf,
    /// PEM private key of this adapter.
    #[arg(long, env = "XGATE_ADAPTER_KEY")]
    pub key: PathBuf,
    /// PEM CA certificate(s) that issued the gateway's certificate.
    #[arg(long, env = "XGATE_ADAPTER_CA")]
    pub ca: PathBuf,
    /// Gateway URL (`https://host:port`); when given, the adapter registers
    /// itself there and sends heartbeats.
    #[arg(long, env = "XGATE_GATEWAY")]
    pub gateway: Option<String>,
    /// Endpoint URL to register (default: `https://<bound address>`).
    #[arg(long, env = "XGATE_ADAPTER_ADVERTISE")]
    pub advertise: Option<String>,
    /// Adapter name within the department (default: the department id).
    #[arg(long, env = "XGATE_ADAPTER_ID")]
    pub adapter_id: Option<String>,
    /// Replace the adapter's registration at the gateway even when this one
    /// drops record types or endpoints it holds (without it such a
    /// registration is refused; the same types and endpoints again are
    /// always accepted).
    #[arg(long, env = "XGATE_ADAPTER_REPLACE")]
    pub replace: bool,
}

/// Serves `dept` until SIGINT or SIGTERM.
pub async fn serve<D: Department>(dept: D, args: AdapterArgs) -> anyhow::Result<()> {
    let served = serve_with_shutdown(dept, args, shutdown_signal()).await;
    // The process is about to exit: export what is buffered.
    crate::trace::shutdown();
    served
}

/// Serves `dept` until `shutdown` completes.
pub async fn serve_with_shutdown<D: Department>(
    dept: D,
    args: AdapterArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_dyn(Arc::new(dept), args, Box::pin(shutdown)).await
}

/// [`serve_with_shutdown`] without generics, and its future boxed here: the
/// server's whole stack (tonic, hyper, h2 over rustls) is compiled once, in
/// the SDK, instead of again in every adapter crate that awaits it (an
/// `async fn`'s body is compiled where it is polled).
#[inline(never)]
fn serve_dyn(
    dept: Arc<dyn DynDepartment>,
    args: AdapterArgs,
    shutdown: Pin<Box<dyn Future<Output = ()> + Send>>,
) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(serve_boxed(dept, args, shutdown))
}

async fn serve_boxed(
    dept: Arc<dyn DynDepartment>,
    args: AdapterArgs,
    shutdown: Pin<Box<dyn Future<Output = ()> + Send>>,
) -> anyhow::Result<()> {
    xgate_tls::install_crypto_provider();
    let tls = TlsFiles {
        cert: args.cert.clone(),
        key: args.key.clone(),
        ca: args.ca.clone(),
    };
    let own = tls.identity().context("reading the adapter certificate")?;
    let department = dept.department().to_owned();
    if own != Identity::Department(department.clone()) {
        anyhow::bail!(
            "the certificate `{}` is for `{own}`, but this adapter serves department `{department}`",
            args.cert.display()
        );
    }
    let catalog = Catalog::builtin().context("loading the record catalog")?;
    let service = AdapterService::from_dyn(dept, &catalog)?;
    let record_types = service.record_types.clone();

    let incoming = TcpIncoming::bind(args.listen)
        .with_context(|| format!("binding {}", args.listen))?
        .with_nodelay(Some(true));
    let addr = incoming.local_addr()?;
    announce(addr);

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<DepartmentAdapterServer<AdapterService>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(xgate_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("building the reflection service")?;

    let registrar = args.gateway.clone().map(|gateway| {
        let endpoint = args
            .advertise
            .clone()
            .unwrap_or_else(|| format!("https://{addr}"));
        let adapter_id = args
            .adapter_id
            .clone()
            .unwrap_or_else(|| department.clone());
        tokio::spawn(registration::run(registration::Plan {
            gateway,
            tls: tls.clone(),
            department: department.clone(),
            adapter_id,
            endpoints: vec![endpoint],
            record_types,
            replace: args.replace,
        }))
    });

    tracing::info!(%addr, department, "adapter serving");
    let router = Server::builder()
        .tls_config(tls.server_config()?)
        .context("configuring TLS")?
        .add_service(health_service)
        .add_service(reflection)
        .add_service(DepartmentAdapterServer::new(service));
    let result = xgate_tls::serve(router, incoming, shutdown).await;
    if let Some(task) = registrar {
        task.abort();
    }
    result.context("serving")?;
    tracing::info!(department, "adapter stopped");
    Ok(())
}

/// Prints the line launchers (the demo, tests, department scripts) wait for.
fn announce(addr: SocketAddr) {
    let mut out = std::io::stdout().lock();
    // If stdout is closed nobody is waiting for the line; serving goes on.
    let _ = writeln!(out, "listening on {addr}");
    let _ = out.flush();
}

/// Installs the SIGINT/SIGTERM handlers at once (not on first poll): the
/// `listening on` line is printed before the server polls its shutdown
/// future, and a launcher may signal as soon as it reads it.
fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let handlers = signal(SignalKind::terminate())
            .and_then(|term| Ok((term, signal(SignalKind::interrupt())?)));
        async move {
            match handlers {
                Ok((mut term, mut int)) => {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// The `DepartmentAdapter` service around a [`Department`].
pub struct AdapterService {
    dept: Arc<dyn DynDepartment>,
    /// Served types and the subject kind each is keyed by.
    kinds: HashMap<String, SubjectKind>,
    record_types: Vec<String>,
}

impl AdapterService {
    /// Checks the department's types against the catalog: each must exist
    /// and belong to this department.
    pub fn new<D: Department>(dept: D, catalog: &Catalog) -> anyhow::Result<Self> {
        Self::from_dyn(Arc::new(dept), catalog)
    }

    fn from_dyn(dept: Arc<dyn DynDepartment>, catalog: &Catalog) -> anyhow::Result<Self> {
        let department = dept.department().to_owned();
        let record_types = dept.record_types();
        let mut kinds = HashMap::new();
        for id in &record_types {
            let rt = catalog
                .record_type(id)
                .with_context(|| format!("record type `{id}` is not in the catalog"))?;
            if rt.department != department {
                anyhow::bail!(
                    "record type `{id}` belongs to department `{}`, not `{department}`",
                    rt.department
                );
            }
            kinds.insert(id.clone(), rt.subject_kind);
        }
        Ok(Self {
            dept,
            kinds,
            record_types,
        })
    }

    /// Answers every type at once, or DEADLINE_EXCEEDED when the lookups
    /// together take longer than `limit`.
    async fn answer_all(
        &self,
        subject: &Subject,
        record_types: Vec<String>,
        limit: Duration,
    ) -> Result<Vec<TypeAnswer>, Status> {
        let lookups = join_all(
            record_types
                .into_iter()
                .map(|record_type| self.answer(subject, record_type)),
        );
        tokio::time::timeout(limit, lookups).await.map_err(|_| {
            Status::deadline_exceeded(format!(
                "lookup did not finish within {} ms",
                limit.as_millis()
            ))
        })
    }

    async fn answer(&self, subject: &Subject, record_type: String) -> TypeAnswer {
        if let Err(why) = self.check_type(&record_type, subject.kind) {
            return error_answer(record_type, why);
        }
        let result = self.dept.lookup(subject, &record_type).await;
        match &result {
            Err(LookupError::BadData(why)) => {
                tracing::warn!(record_type, error = %why, "the department's data makes no valid record");
            }
            Err(e) => tracing::warn!(record_type, error = %e, "lookup failed"),
            Ok(_) => {}
        }
        type_answer(record_type, &result)
    }

    /// Whether this adapter serves `record_type` for subjects of `kind`.
    fn check_type(&self, record_type: &str, kind: SubjectKind) -> Result<(), String> {
        match self.kinds.get(record_type) {
            None => Err(format!(
                "record type `{}` is not served here",
                echo(record_type)
            )),
            Some(served) if *served != kind => Err(format!(
                "record type `{record_type}` is keyed by {served}, not {kind}"
            )),
            Some(_) => Ok(()),
        }
    }
}

/// The answer for one type from what the department's lookup gave: FOUND
/// with each record as JSON, NOT_FOUND, BAD_DATA or ERROR with the text.
/// Shared by `Lookup` and `BatchLookup`, so both answer a subject alike.
fn type_answer(
    record_type: String,
    result: &Result<Vec<serde_json::Value>, LookupError>,
) -> TypeAnswer {
    match result {
        Ok(records) if records.is_empty() => TypeAnswer {
            record_type,
            status: LookupStatus::NotFound as i32,
            records_json: Vec::new(),
            error: String::new(),
        },
        Ok(records) => {
            let mut encoded = Vec::with_capacity(records.len());
            for record in records {
                match serde_json::to_vec(record) {
                    Ok(bytes) => encoded.push(Bytes::from(bytes)),
                    Err(e) => {
                        return error_answer(
                            record_type,
                            format!("record does not serialise: {e}"),
                        );
                    }
                }
            }
            TypeAnswer {
                record_type,
                status: LookupStatus::Found as i32,
                records_json: encoded,
                error: String::new(),
            }
        }
        Err(LookupError::BadData(why)) => TypeAnswer {
            record_type,
            status: LookupStatus::BadData as i32,
            records_json: Vec::new(),
            error: why.clone(),
        },
        Err(e) => error_answer(record_type, e.to_string()),
    }
}

fn error_answer(record_type: String, error: String) -> TypeAnswer {
    TypeAnswer {
        record_type,
        status: LookupStatus::Error as i32,
        records_json: Vec::new(),
        error,
    }
}

/// Who may call an adapter: the gateway, and operators running the
/// conformance kit.
fn authorize<T>(request: &Request<T>) -> Result<(), Status> {
    match xgate_tls::peer_identity(request)? {
        Identity::Gateway(_) | Identity::Admin(_) => Ok(()),
        other => Err(Status::permission_denied(format!(
            "`{other}` may not call a department adapter; only the gateway may"
        ))),
    }
}

/// Validates the subject of a lookup; every problem becomes a field violation.
fn subject_of(request: &LookupRequest) -> Result<Subject, Status> {
    let Some(subject) = &request.subject else {
        return Err(invalid_argument(&[Violation::new(
            "subject",
            "is required",
        )]));
    };
    check_subject("subject", subject).map_err(|problem| {
        let violation = match problem {
            SubjectProblem::Kind(v) | SubjectProblem::Id { violation: v, .. } => v,
        };
        invalid_argument(&[violation])
    })
}

/// What is wrong with a subject: a kind that is none (the request is
/// malformed) or an ID that is not valid for its kind (in a batch, that
/// subject alone is answered ERROR).
enum SubjectProblem {
    Kind(Violation),
    Id {
        kind: SubjectKind,
        violation: Violation,
    },
}

/// The subject at `field` (`subject`, `subjects[3]`) checked: its kind, then
/// its ID (check character, length, birth date).
fn check_subject(
    field: &str,
    subject: &xgate_proto::v1::Subject,
) -> Result<Subject, SubjectProblem> {
    let Some(kind) = xgate_proto::kind::from_proto(subject.kind) else {
        return Err(SubjectProblem::Kind(Violation::new(
            format!("{field}.kind"),
            "must be SUBJECT_KIND_RESIDENT_ID or SUBJECT_KIND_USCC",
        )));
    };
    xgate_catalog::ids::validate(kind, &subject.id).map_err(|e| SubjectProblem::Id {
        kind,
        violation: Violation::new(format!("{field}.id"), e.to_string()),
    })?;
    Ok(Subject {
        kind,
        id: subject.id.clone(),
    })
}

impl AdapterService {
    async fn lookup_traced(
        &self,
        request: Request<LookupRequest>,
    ) -> Result<Response<LookupResponse>, Status> {
        let deadline = xgate_proto::deadline::from_metadata(request.metadata());
        let request = request.into_inner();
        let subject = subject_of(&request)?;
        if request.record_types.is_empty() {
            return Err(invalid_argument(&[Violation::new(
                "record_types",
                "at least one record type is required",
            )]));
        }
        let limit = deadline.unwrap_or(DEFAULT_LOOKUP_TIMEOUT);
        let answers = self
            .answer_all(&subject, request.record_types, limit)
            .await?;
        tracing::debug!(request_id = request.request_id, "lookup answered");
        Ok(Response::new(LookupResponse { answers }))
    }
}

/// Subjects answered together in a `BatchLookup`: every type's
/// [`Department::lookup_batch`] runs over one chunk (the types at once), and
/// the chunk's answers are sent as soon as all its types are known. A chunk,
/// not the whole batch, so the first answers leave early and a department on
/// the one-by-one fallback streams as it goes; a few hundred, so a set-based
/// department still answers a chunk with one statement per type.
const BATCH_CHUNK: usize = 250;

/// Answers buffered between the batch's task and the gRPC stream; a slow
/// caller holds the task here rather than letting answers pile up.
const BATCH_BUFFER: usize = 64;

/// A `BatchLookup` that passed validation.
#[derive(Debug)]
struct BatchPlan {
    /// The types as requested: every answer lists one per entry, in order.
    record_types: Vec<String>,
    /// Each requested type once: what is looked up.
    distinct: Vec<String>,
    /// For each of `record_types`, its position in `distinct`.
    slots: Vec<usize>,
    /// Subjects with a valid ID, with their position in the request.
    valid: Vec<(u32, Subject)>,
    /// Subjects whose ID is not valid: position and why (ERROR answers).
    invalid: Vec<(u32, String)>,
}

impl AdapterService {
    /// Checks a batch the way `Lookup` checks its subject, reporting every
    /// violation at once: INVALID_ARGUMENT for more than
    /// [`MAX_BATCH_SUBJECTS`], no type, a type not served, types of two
    /// kinds, a subject of no kind or of another kind than the types'. A
    /// subject whose ID is invalid is not a violation: it is answered ERROR.
    fn batch_plan(&self, request: BatchLookupRequest) -> Result<BatchPlan, Status> {
        let mut violations = Vec::new();
        if request.record_types.is_empty() {
            violations.push(Violation::new(
                "record_types",
                "at least one record type is required",
            ));
        }
        let mut kind: Option<SubjectKind> = None;
        for (i, record_type) in request.record_types.iter().enumerate() {
            let Some(served) = self.kinds.get(record_type) else {
                violations.push(Violation::new(
                    format!("record_types[{i}]"),
                    format!("record type `{}` is not served here", echo(record_type)),
                ));
                continue;
            };
            match kind {
                None => kind = Some(*served),
                Some(first) if first != *served => violations.push(Violation::new(
                    format!("record_types[{i}]"),
                    format!(
                        "record type `{record_type}` is keyed by {served}, the types before it by \
                         {first}: ask for one kind of subject per batch"
                    ),
                )),
                Some(_) => {}
            }
        }
        if request.subjects.len() > MAX_BATCH_SUBJECTS {
            // Not worth checking each of them.
            violations.push(Violation::new(
                "subjects",
                format!(
                    "at most {MAX_BATCH_SUBJECTS} subjects per batch, got {}",
                    request.subjects.len()
                ),
            ));
            return Err(invalid_argument(&violations));
        }
        let mut valid = Vec::with_capacity(request.subjects.len());
        let mut invalid = Vec::new();
        for (i, subject) in request.subjects.iter().enumerate() {
            // At most MAX_BATCH_SUBJECTS: the index fits.
            let index = u32::try_from(i).unwrap_or(u32::MAX);
            let field = format!("subjects[{i}]");
            let (subject_kind, checked) = match check_subject(&field, subject) {
                Ok(s) => (s.kind, Ok(s)),
                Err(SubjectProblem::Kind(v)) => {
                    violations.push(v);
                    continue;
                }
                Err(SubjectProblem::Id { kind, violation }) => (kind, Err(violation)),
            };
            if let Some(types_kind) = kind
                && subject_kind != types_kind
            {
                violations.push(Violation::new(
                    format!("{field}.kind"),
                    format!("is {subject_kind}, but the record types are keyed by {types_kind}"),
                ));
                continue;
            }
            match checked {
                Ok(s) => valid.push((index, s)),
                Err(v) => invalid.push((index, format!("invalid subject ID: {}", v.description))),
            }
        }
        if !violations.is_empty() {
            return Err(invalid_argument(&violations));
        }
        let mut distinct: Vec<String> = Vec::new();
        let mut slots = Vec::with_capacity(request.record_types.len());
        for record_type in &request.record_types {
            let slot = match distinct.iter().position(|d| d == record_type) {
                Some(slot) => slot,
                None => {
                    distinct.push(record_type.clone());
                    distinct.len() - 1
                }
            };
            slots.push(slot);
        }
        Ok(BatchPlan {
            record_types: request.record_types,
            distinct,
            slots,
            valid,
            invalid,
        })
    }

    /// Validates `request` and starts answering it in a task of its own
    /// (inside `span`, with `traceparent` readable by the department); the
    /// stream yields the answers as the task sends them, and dropping it
    /// (the caller went away) stops the task.
    fn start_batch(
        &self,
        request: BatchLookupRequest,
        limit: Duration,
        traceparent: Option<String>,
        span: tracing::Span,
    ) -> Result<BatchAnswers, Status> {
        let plan = self.batch_plan(request)?;
        let expected = plan.valid.len() + plan.invalid.len();
        let (tx, rx) = mpsc::channel(BATCH_BUFFER);
        let work = run_batch(Arc::clone(&self.dept), plan, limit, tx);
        let task = tokio::spawn(crate::trace::with_incoming(traceparent, work).instrument(span));
        Ok(BatchAnswers {
            rx,
            task: task.abort_handle(),
            expected,
            delivered: 0,
            ended: false,
        })
    }
}

/// Answers a validated batch into `tx`: the invalid IDs first (ERROR for
/// every type), then the valid subjects chunk by chunk. Gives up with
/// DEADLINE_EXCEEDED once `limit` has passed, like `Lookup`; answers already
/// sent stand.
async fn run_batch(
    dept: Arc<dyn DynDepartment>,
    plan: BatchPlan,
    limit: Duration,
    tx: mpsc::Sender<Result<BatchLookupAnswer, Status>>,
) {
    let started = std::time::Instant::now();
    let deadline = tokio::time::Instant::from_std(started) + limit;
    for (index, why) in &plan.invalid {
        let answers = plan
            .record_types
            .iter()
            .map(|rt| error_answer(rt.clone(), why.clone()))
            .collect();
        let answer = BatchLookupAnswer {
            index: *index,
            answers,
        };
        if tx.send(Ok(answer)).await.is_err() {
            return; // the caller went away
        }
    }
    let mut found = 0_usize;
    for chunk in plan.valid.chunks(BATCH_CHUNK) {
        let subjects: Vec<Subject> = chunk.iter().map(|(_, s)| s.clone()).collect();
        let lookups = join_all(
            plan.distinct
                .iter()
                .map(|record_type| dept.lookup_batch(&subjects, record_type)),
        );
        let Ok(mut results) = tokio::time::timeout_at(deadline, lookups).await else {
            let _ = tx
                .send(Err(Status::deadline_exceeded(format!(
                    "batch lookup did not finish within {} ms",
                    limit.as_millis()
                ))))
                .await;
            return;
        };
        for (record_type, results) in plan.distinct.iter().zip(results.iter_mut()) {
            if results.len() != subjects.len() {
                tracing::error!(
                    record_type,
                    results = results.len(),
                    subjects = subjects.len(),
                    "lookup_batch gave another number of results than of subjects"
                );
                *results = subjects
                    .iter()
                    .map(|_| {
                        Err(LookupError::Backend(
                            "the adapter's batch lookup answered another number of subjects"
                                .to_owned(),
                        ))
                    })
                    .collect();
            }
            log_failures(record_type, results);
        }
        for (position, (index, _)) in chunk.iter().enumerate() {
            let answers: Vec<TypeAnswer> = plan
                .record_types
                .iter()
                .zip(&plan.slots)
                .map(
                    |(record_type, slot)| match results.get(*slot).and_then(|r| r.get(position)) {
                        Some(result) => type_answer(record_type.clone(), result),
                        None => error_answer(record_type.clone(), "no result".to_owned()),
                    },
                )
                .collect();
            if answers
                .iter()
                .any(|a| a.status == LookupStatus::Found as i32)
            {
                found += 1;
            }
            let answer = BatchLookupAnswer {
                index: *index,
                answers,
            };
            if tx.send(Ok(answer)).await.is_err() {
                return;
            }
        }
    }
    tracing::debug!(
        subjects = plan.valid.len() + plan.invalid.len(),
        invalid = plan.invalid.len(),
        found,
        elapsed_ms = started.elapsed().as_millis(),
        "batch lookup answered"
    );
}

/// One log line per type and chunk for the lookups that failed, not one per
/// subject: a database that is down fails a whole batch at once.
fn log_failures(record_type: &str, results: &[Result<Vec<serde_json::Value>, LookupError>]) {
    let failed = || results.iter().filter_map(|r| r.as_ref().err());
    let bad_data = failed()
        .filter(|e| matches!(e, LookupError::BadData(_)))
        .count();
    let errors = failed().count() - bad_data;
    if let Some(first) = failed().find(|e| matches!(e, LookupError::BadData(_))) {
        tracing::warn!(record_type, subjects = bad_data, error = %first, "the department's data makes no valid record");
    }
    if let Some(first) = failed().find(|e| !matches!(e, LookupError::BadData(_))) {
        tracing::warn!(record_type, subjects = errors, error = %first, "batch lookup failed");
    }
}

/// The answers of one `BatchLookup` as the gRPC stream. Dropping it (the
/// call ended or was cancelled) aborts the task answering it. A task that
/// ended before answering every subject (a panic in the department's code)
/// ends the stream with INTERNAL, so the caller never takes a short stream
/// for a complete one.
pub struct BatchAnswers {
    rx: mpsc::Receiver<Result<BatchLookupAnswer, Status>>,
    task: tokio::task::AbortHandle,
    expected: usize,
    delivered: usize,
    ended: bool,
}

impl futures::Stream for BatchAnswers {
    type Item = Result<BatchLookupAnswer, Status>;

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        if self.ended {
            return std::task::Poll::Ready(None);
        }
        let next = std::task::ready!(self.rx.poll_recv(cx));
        match &next {
            Some(Ok(_)) => self.delivered += 1,
            Some(Err(_)) => self.ended = true,
            None => {
                self.ended = true;
                if self.delivered < self.expected {
                    return std::task::Poll::Ready(Some(Err(Status::internal(format!(
                        "the batch lookup stopped after {} of {} subjects",
                        self.delivered, self.expected
                    )))));
                }
            }
        }
        std::task::Poll::Ready(next)
    }
}

impl Drop for BatchAnswers {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Continues the caller's trace in `span` (its id recorded as `trace_id`)
/// and returns the caller's `traceparent`, which the department's code may
/// read ([`crate::trace`]).
fn continue_callers_trace(
    span: &tracing::Span,
    metadata: &tonic::metadata::MetadataMap,
) -> Option<String> {
    if let Some(id) = xgate_proto::telemetry::continue_trace(span, metadata) {
        span.record("trace_id", id.as_str());
    }
    metadata
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

#[tonic::async_trait]
impl DepartmentAdapter for AdapterService {
    async fn lookup(
        &self,
        request: Request<LookupRequest>,
    ) -> Result<Response<LookupResponse>, Status> {
        authorize(&request)?;
        // The handler span continues the gateway's trace; the subject is
        // never a span attribute.
        let span = tracing::info_span!(
            "lookup",
            otel.kind = "server",
            department = self.dept.department(),
            request_id = request.get_ref().request_id.as_str(),
            record_types = request.get_ref().record_types.len(),
            trace_id = tracing::field::Empty,
        );
        let incoming = continue_callers_trace(&span, request.metadata());
        crate::trace::with_incoming(incoming, self.lookup_traced(request))
            .instrument(span)
            .await
    }

    type BatchLookupStream = BatchAnswers;

    async fn batch_lookup(
        &self,
        request: Request<BatchLookupRequest>,
    ) -> Result<Response<BatchAnswers>, Status> {
        authorize(&request)?;
        // As for `lookup`: the gateway's trace goes on, no subject in the span.
        let span = tracing::info_span!(
            "batch_lookup",
            otel.kind = "server",
            department = self.dept.department(),
            request_id = request.get_ref().request_id.as_str(),
            subjects = request.get_ref().subjects.len(),
            record_types = request.get_ref().record_types.len(),
            trace_id = tracing::field::Empty,
        );
        let incoming = continue_callers_trace(&span, request.metadata());
        let limit = xgate_proto::deadline::from_metadata(request.metadata())
            .unwrap_or(DEFAULT_LOOKUP_TIMEOUT);
        let request = request.into_inner();
        let answers = span.in_scope(|| {
            self.start_batch(request, limit, incoming, span.clone())
                .inspect_err(|status| tracing::debug!(message = status.message(), "batch refused"))
        })?;
        Ok(Response::new(answers))
    }

    async fn describe(
        &self,
        request: Request<DescribeRequest>,
    ) -> Result<Response<DescribeResponse>, Status> {
        authorize(&request)?;
        Ok(Response::new(DescribeResponse {
            department: self.dept.department().to_owned(),
            record_types: self.record_types.clone(),
            software: concat!("xgate-adapter-sdk/", env!("CARGO_PKG_VERSION")).to_owned(),
            sample_subjects: self
                .dept
                .sample_subjects()
                .into_iter()
                .map(|s| xgate_proto::v1::Subject {
                    kind: xgate_proto::kind::to_proto(s.kind) as i32,
                    id: s.id,
                })
                .collect(),
        }))
    }
}

/// Cap on a lookup when the caller sent no deadline: a hung database must
/// not hold a request (and its connection slot) forever.
const DEFAULT_LOOKUP_TIMEOUT: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;
    use xgate_proto::status::violations;

    /// A tax department whose lookups are scripted per record type.
    struct Scripted {
        delay: Duration,
    }

    impl Department for Scripted {
        fn department(&self) -> &str {
            "tax"
        }
        fn record_types(&self) -> Vec<String> {
            vec![
                "tax_registration".into(),
                "taxpayer_credit_rating".into(),
                "individual_income_tax_record".into(),
                "no_tax_arrears_certificate".into(),
            ]
        }
        async fn lookup(
            &self,
            _subject: &Subject,
            record_type: &str,
        ) -> Result<Vec<serde_json::Value>, crate::LookupError> {
            tokio::time::sleep(self.delay).await;
            match record_type {
                "tax_registration" => Ok(vec![serde_json::json!({"a": 1})]),
                "taxpayer_credit_rating" => Ok(vec![]),
                "no_tax_arrears_certificate" => Err(crate::LookupError::BadData(
                    "field `issue_date` holds text that is not a date".into(),
                )),
                _ => Err(crate::LookupError::Backend("database is down".into())),
            }
        }
    }

    fn company() -> Subject {
        let first17 = "91341602MA2TABCD1";
        let check = xgate_catalog::ids::uscc_check_char(first17).expect("check char");
        Subject {
            kind: SubjectKind::Uscc,
            id: format!("{first17}{check}"),
        }
    }

    fn service(delay: Duration) -> AdapterService {
        let catalog = Catalog::builtin().expect("catalog");
        AdapterService::new(Scripted { delay }, &catalog).expect("service")
    }

    fn status(answer: &TypeAnswer) -> LookupStatus {
        LookupStatus::try_from(answer.status).expect("known status")
    }

    #[test]
    fn refuses_types_of_another_department_or_unknown() {
        struct Greedy(&'static str);
        impl Department for Greedy {
            fn department(&self) -> &str {
                "tax"
            }
            fn record_types(&self) -> Vec<String> {
                vec![self.0.into()]
            }
            async fn lookup(
                &self,
                _: &Subject,
                _: &str,
            ) -> Result<Vec<serde_json::Value>, crate::LookupError> {
                Ok(vec![])
            }
        }
        let catalog = Catalog::builtin().expect("catalog");
        let foreign = AdapterService::new(Greedy("real_estate_title"), &catalog)
            .err()
            .expect("foreign type refused");
        assert!(
            foreign.to_string().contains("natural-resources"),
            "{foreign}"
        );
        let unknown = AdapterService::new(Greedy("no_such_type"), &catalog)
            .err()
            .expect("unknown type refused");
        assert!(
            unknown.to_string().contains("not in the catalog"),
            "{unknown}"
        );
    }

    #[tokio::test]
    async fn every_type_gets_exactly_one_answer() {
        let svc = service(Duration::ZERO);
        let answers = svc
            .answer_all(
                &company(),
                vec![
                    "tax_registration".into(),
                    "taxpayer_credit_rating".into(),
                    "individual_income_tax_record".into(),
                    "vat_exemption_status".into(),
                ],
                Duration::from_secs(5),
            )
            .await
            .expect("answers");
        assert_eq!(answers.len(), 4);
        assert_eq!(status(&answers[0]), LookupStatus::Found);
        assert_eq!(
            answers[0].records_json,
            vec![Bytes::from_static(br#"{"a":1}"#)]
        );
        assert_eq!(status(&answers[1]), LookupStatus::NotFound);
        // individual_income_tax_record is keyed by resident ID, not USCC.
        assert_eq!(status(&answers[2]), LookupStatus::Error);
        assert!(
            answers[2].error.contains("keyed by resident_id"),
            "{}",
            answers[2].error
        );
        // Not served by this adapter.
        assert_eq!(status(&answers[3]), LookupStatus::Error);
        assert!(
            answers[3].error.contains("not served"),
            "{}",
            answers[3].error
        );
    }

    /// The answer about a citizen for one record type.
    async fn citizen_answer(record_type: &str) -> TypeAnswer {
        let person = Subject {
            kind: SubjectKind::ResidentId,
            id: "341602197703051725".into(),
        };
        let mut answers = service(Duration::ZERO)
            .answer_all(&person, vec![record_type.into()], Duration::from_secs(5))
            .await
            .expect("answers");
        answers.remove(0)
    }

    #[tokio::test]
    async fn a_failing_lookup_is_an_error_answer_not_a_failed_call() {
        let answer = citizen_answer("individual_income_tax_record").await;
        assert_eq!(status(&answer), LookupStatus::Error);
        assert!(
            answer.error.contains("database is down"),
            "{}",
            answer.error
        );
    }

    #[tokio::test]
    async fn bad_department_data_is_a_bad_data_answer_with_its_text() {
        let answer = citizen_answer("no_tax_arrears_certificate").await;
        assert_eq!(status(&answer), LookupStatus::BadData);
        assert_eq!(
            answer.error,
            "field `issue_date` holds text that is not a date"
        );
    }

    #[tokio::test]
    async fn lookups_slower_than_the_deadline_give_deadline_exceeded() {
        let svc = service(Duration::from_secs(10));
        let started = std::time::Instant::now();
        let err = svc
            .answer_all(
                &company(),
                vec!["tax_registration".into()],
                Duration::from_millis(50),
            )
            .await
            .expect_err("too slow");
        assert_eq!(err.code(), tonic::Code::DeadlineExceeded);
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn malformed_subjects_are_invalid_argument_with_the_field() {
        let request = |kind: xgate_proto::v1::SubjectKind, id: &str| LookupRequest {
            subject: Some(xgate_proto::v1::Subject {
                kind: kind as i32,
                id: id.into(),
            }),
            record_types: vec!["tax_registration".into()],
            request_id: String::new(),
            purpose: String::new(),
        };
        let fields = |r: &LookupRequest| -> Vec<String> {
            let status = subject_of(r).expect_err("invalid");
            assert_eq!(status.code(), tonic::Code::InvalidArgument);
            violations(&status).into_iter().map(|v| v.field).collect()
        };
        let good = company();
        assert!(subject_of(&request(xgate_proto::v1::SubjectKind::Uscc, &good.id)).is_ok());
        let mut bad = good.id.clone();
        bad.pop();
        bad.push(if good.id.ends_with('0') { '1' } else { '0' });
        assert_eq!(
            fields(&request(xgate_proto::v1::SubjectKind::Uscc, &bad)),
            vec!["subject.id"]
        );
        assert_eq!(
            fields(&request(
                xgate_proto::v1::SubjectKind::Unspecified,
                &good.id
            )),
            vec!["subject.kind"]
        );
        assert_eq!(
            fields(&LookupRequest {
                subject: None,
                ..request(xgate_proto::v1::SubjectKind::Uscc, &good.id)
            }),
            vec!["subject"]
        );
    }

    /// A tax department whose answer depends on the subject: FOUND (a
    /// record naming the subject and type), NOT_FOUND, BAD_DATA or a backend
    /// error, by the ID's digits; lookups take `delay`.
    struct Varied {
        delay: Duration,
    }

    fn outcome(
        subject: &Subject,
        record_type: &str,
    ) -> Result<Vec<serde_json::Value>, crate::LookupError> {
        let digits: u32 = subject.id.bytes().map(u32::from).sum::<u32>()
            + u32::try_from(record_type.len()).unwrap_or(0);
        match digits % 4 {
            0 => Ok(vec![
                serde_json::json!({"id_number": subject.id, "type": record_type}),
                serde_json::json!({"id_number": subject.id, "n": 2}),
            ]),
            1 => Ok(vec![]),
            2 => Err(crate::LookupError::BadData(
                "field `issue_date` holds text that is not a date".into(),
            )),
            _ => Err(crate::LookupError::Backend("database is down".into())),
        }
    }

    impl Department for Varied {
        fn department(&self) -> &str {
            "tax"
        }
        fn record_types(&self) -> Vec<String> {
            Department::record_types(&Scripted {
                delay: Duration::ZERO,
            })
        }
        async fn lookup(
            &self,
            subject: &Subject,
            record_type: &str,
        ) -> Result<Vec<serde_json::Value>, crate::LookupError> {
            tokio::time::sleep(self.delay).await;
            outcome(subject, record_type)
        }
    }

    fn citizen(n: usize) -> Subject {
        let first17 = format!("34160219770305{:03}", n % 1000);
        let check = xgate_catalog::ids::resident_id_check_char(&first17).expect("check char");
        Subject {
            kind: SubjectKind::ResidentId,
            id: format!("{first17}{check}"),
        }
    }

    fn proto(subject: &Subject) -> xgate_proto::v1::Subject {
        xgate_proto::v1::Subject {
            kind: xgate_proto::kind::to_proto(subject.kind) as i32,
            id: subject.id.clone(),
        }
    }

    fn batch(subjects: Vec<xgate_proto::v1::Subject>, types: &[&str]) -> BatchLookupRequest {
        BatchLookupRequest {
            subjects,
            record_types: types.iter().map(|t| (*t).to_owned()).collect(),
            request_id: "r1".into(),
            purpose: "SCREENING".into(),
        }
    }

    /// Every item of the batch's stream.
    async fn run<D: Department>(
        dept: D,
        request: BatchLookupRequest,
        limit: Duration,
    ) -> Result<Vec<Result<BatchLookupAnswer, Status>>, Status> {
        use futures::StreamExt as _;
        let catalog = Catalog::builtin().expect("catalog");
        let svc = AdapterService::new(dept, &catalog).expect("service");
        let stream = svc.start_batch(request, limit, None, tracing::Span::none())?;
        Ok(stream.collect().await)
    }

    fn refused(result: Result<Vec<Result<BatchLookupAnswer, Status>>, Status>) -> Vec<String> {
        let status = result.expect_err("refused");
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        violations(&status)
            .into_iter()
            .map(|v| format!("{}: {}", v.field, v.description))
            .collect()
    }

    #[tokio::test]
    async fn batch_answers_are_the_single_answers_and_a_bad_id_is_an_error() {
        let types = [
            "individual_income_tax_record",
            "no_tax_arrears_certificate",
            "individual_income_tax_record",
        ];
        // Several chunks, a duplicate subject, a malformed ID among them.
        let mut subjects: Vec<Subject> = (0..600).map(citizen).collect();
        subjects.push(citizen(3));
        let mut request: Vec<_> = subjects.iter().map(proto).collect();
        let bad = 7;
        request[bad].id = {
            let mut id = subjects[bad].id.clone();
            let last = if id.ends_with('1') { '2' } else { '1' };
            id.pop();
            id.push(last);
            id
        };
        let answers = run(
            Varied {
                delay: Duration::ZERO,
            },
            batch(request, &types),
            Duration::from_secs(10),
        )
        .await
        .expect("accepted");
        assert_eq!(answers.len(), subjects.len());
        let single = AdapterService::new(
            Varied {
                delay: Duration::ZERO,
            },
            &Catalog::builtin().expect("catalog"),
        )
        .expect("service");
        let mut seen = vec![false; subjects.len()];
        let mut statuses = std::collections::BTreeSet::new();
        for answer in answers {
            let answer = answer.expect("an answer");
            let index = answer.index as usize;
            assert!(!std::mem::replace(&mut seen[index], true), "{index} twice");
            if index == bad {
                assert_eq!(answer.answers.len(), 3);
                for a in &answer.answers {
                    assert_eq!(status(a), LookupStatus::Error);
                    assert!(a.error.starts_with("invalid subject ID: "), "{}", a.error);
                }
                continue;
            }
            let expected = single
                .answer_all(
                    &subjects[index],
                    types.iter().map(|t| (*t).to_owned()).collect(),
                    Duration::from_secs(5),
                )
                .await
                .expect("single answers");
            assert_eq!(answer.answers, expected, "subject {index}");
            statuses.extend(answer.answers.iter().map(status));
        }
        assert!(seen.iter().all(|s| *s));
        // The test covered every kind of answer.
        assert_eq!(statuses.len(), 4, "{statuses:?}");
    }

    #[tokio::test]
    async fn a_batch_over_the_limit_or_of_the_wrong_kind_is_refused() {
        let dept = || Varied {
            delay: Duration::ZERO,
        };
        let limit = Duration::from_secs(5);
        let types = ["no_tax_arrears_certificate"];
        let many: Vec<_> = (0..=MAX_BATCH_SUBJECTS)
            .map(|n| proto(&citizen(n)))
            .collect();
        assert_eq!(
            refused(run(dept(), batch(many.clone(), &types), limit).await),
            ["subjects: at most 1000 subjects per batch, got 1001"]
        );
        // Exactly the limit is fine.
        let answers = run(
            dept(),
            batch(many[..MAX_BATCH_SUBJECTS].to_vec(), &types),
            limit,
        )
        .await
        .expect("accepted");
        assert_eq!(answers.len(), MAX_BATCH_SUBJECTS);

        let mut subjects = vec![proto(&citizen(1)), proto(&company()), proto(&citizen(2))];
        assert_eq!(
            refused(run(dept(), batch(subjects.clone(), &types), limit).await),
            ["subjects[1].kind: is uscc, but the record types are keyed by resident_id"]
        );
        subjects[1].kind = 0;
        assert_eq!(
            refused(run(dept(), batch(subjects.clone(), &types), limit).await),
            ["subjects[1].kind: must be SUBJECT_KIND_RESIDENT_ID or SUBJECT_KIND_USCC"]
        );
        let people = vec![proto(&citizen(1))];
        let mixed = ["no_tax_arrears_certificate", "tax_registration"];
        let fields = refused(run(dept(), batch(people.clone(), &mixed), limit).await);
        assert!(
            fields[0]
                .starts_with("record_types[1]: record type `tax_registration` is keyed by uscc"),
            "{fields:?}"
        );
        let unserved = ["vat_exemption_status", "no_such_type"];
        assert_eq!(
            refused(run(dept(), batch(people.clone(), &unserved), limit).await),
            [
                "record_types[0]: record type `vat_exemption_status` is not served here",
                "record_types[1]: record type `no_such_type` is not served here"
            ]
        );
        assert_eq!(
            refused(run(dept(), batch(people, &[]), limit).await),
            ["record_types: at least one record type is required"]
        );
        // No subject: nothing to answer.
        let none = run(dept(), batch(Vec::new(), &types), limit).await;
        assert!(none.expect("accepted").is_empty());
    }

    #[tokio::test]
    async fn a_batch_slower_than_the_deadline_ends_with_deadline_exceeded() {
        let started = std::time::Instant::now();
        let answers = run(
            Varied {
                delay: Duration::from_secs(10),
            },
            batch(vec![proto(&citizen(1))], &["no_tax_arrears_certificate"]),
            Duration::from_millis(50),
        )
        .await
        .expect("accepted");
        assert!(started.elapsed() < Duration::from_secs(5));
        let [Err(status)] = answers.as_slice() else {
            panic!("{answers:?}");
        };
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
    }

    /// Counts the lookups running at once.
    struct Counting {
        running: std::sync::atomic::AtomicUsize,
        most: std::sync::atomic::AtomicUsize,
    }

    impl Department for Counting {
        fn department(&self) -> &str {
            "tax"
        }
        fn record_types(&self) -> Vec<String> {
            vec!["no_tax_arrears_certificate".into()]
        }
        async fn lookup(
            &self,
            subject: &Subject,
            _: &str,
        ) -> Result<Vec<serde_json::Value>, crate::LookupError> {
            use std::sync::atomic::Ordering;
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(2)).await;
            self.running.fetch_sub(1, Ordering::SeqCst);
            Ok(vec![serde_json::json!({"id_number": subject.id})])
        }
    }

    #[tokio::test]
    async fn the_default_batch_looks_up_each_subject_a_bounded_number_at_a_time() {
        let dept = Counting {
            running: 0.into(),
            most: 0.into(),
        };
        let subjects: Vec<Subject> = (0..100).map(citizen).collect();
        let results =
            Department::lookup_batch(&dept, &subjects, "no_tax_arrears_certificate").await;
        assert_eq!(results.len(), subjects.len());
        for (subject, result) in subjects.iter().zip(&results) {
            let records = result.as_ref().expect("found");
            assert_eq!(records[0]["id_number"], subject.id.as_str());
        }
        let most = dept.most.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(most, crate::FALLBACK_CONCURRENCY);
    }

    /// A department whose own `lookup_batch` misbehaves.
    struct Broken {
        panics: bool,
    }

    impl Department for Broken {
        fn department(&self) -> &str {
            "tax"
        }
        fn record_types(&self) -> Vec<String> {
            vec!["no_tax_arrears_certificate".into()]
        }
        async fn lookup(
            &self,
            _: &Subject,
            _: &str,
        ) -> Result<Vec<serde_json::Value>, crate::LookupError> {
            Ok(vec![])
        }
        async fn lookup_batch(
            &self,
            _: &[Subject],
            _: &str,
        ) -> Vec<Result<Vec<serde_json::Value>, crate::LookupError>> {
            if self.panics {
                panic!("a bug in the department");
            }
            vec![Ok(vec![])]
        }
    }

    #[tokio::test]
    async fn a_department_batch_that_misbehaves_never_passes_for_complete() {
        let subjects: Vec<_> = (0..3).map(|n| proto(&citizen(n))).collect();
        let types = ["no_tax_arrears_certificate"];
        let limit = Duration::from_secs(5);
        // One result for three subjects: ERROR answers, not a guess.
        let answers = run(
            Broken { panics: false },
            batch(subjects.clone(), &types),
            limit,
        )
        .await
        .expect("accepted");
        assert_eq!(answers.len(), 3);
        for answer in answers {
            let answer = answer.expect("an answer");
            assert_eq!(status(&answer.answers[0]), LookupStatus::Error);
        }
        // A panic ends the stream with INTERNAL rather than a short OK.
        let answers = run(Broken { panics: true }, batch(subjects, &types), limit)
            .await
            .expect("accepted");
        let [Err(status)] = answers.as_slice() else {
            panic!("{answers:?}");
        };
        assert_eq!(status.code(), tonic::Code::Internal);
        assert!(status.message().contains("after 0 of 3"), "{status:?}");
    }
}
