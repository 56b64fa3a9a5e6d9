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
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};
use tracing::Instrument as _;
use xgate_catalog::{Catalog, SubjectKind};
use xgate_proto::status::{Violation, invalid_argument};
use xgate_proto::v1::department_adapter_server::{DepartmentAdapter, DepartmentAdapterServer};
use xgate_proto::v1::{
    DescribeRequest, DescribeResponse, LookupRequest, LookupResponse, LookupStatus, TypeAnswer,
};
use xgate_tls::{Identity, TlsFiles};

use crate::department::{Department, DynDepartment, LookupError, Subject};
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
        let error = |error: String| TypeAnswer {
            record_type: record_type.clone(),
            status: LookupStatus::Error as i32,
            records_json: Vec::new(),
            error,
        };
        match self.kinds.get(&record_type) {
            None => return error(format!("record type `{record_type}` is not served here")),
            Some(kind) if *kind != subject.kind => {
                return error(format!(
                    "record type `{record_type}` is keyed by {kind}, not {}",
                    subject.kind
                ));
            }
            Some(_) => {}
        }
        match self.dept.lookup(subject, &record_type).await {
            Ok(records) if records.is_empty() => TypeAnswer {
                record_type,
                status: LookupStatus::NotFound as i32,
                records_json: Vec::new(),
                error: String::new(),
            },
            Ok(records) => {
                let mut encoded = Vec::with_capacity(records.len());
                for record in &records {
                    match serde_json::to_vec(record) {
                        Ok(bytes) => encoded.push(Bytes::from(bytes)),
                        Err(e) => return error(format!("record does not serialise: {e}")),
                    }
                }
                TypeAnswer {
                    record_type,
                    status: LookupStatus::Found as i32,
                    records_json: encoded,
                    error: String::new(),
                }
            }
            Err(LookupError::BadData(why)) => {
                tracing::warn!(record_type, error = %why, "the department's data makes no valid record");
                TypeAnswer {
                    record_type,
                    status: LookupStatus::BadData as i32,
                    records_json: Vec::new(),
                    error: why,
                }
            }
            Err(e) => {
                tracing::warn!(record_type, error = %e, "lookup failed");
                error(e.to_string())
            }
        }
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
    let Some(kind) = xgate_proto::kind::from_proto(subject.kind) else {
        return Err(invalid_argument(&[Violation::new(
            "subject.kind",
            "must be SUBJECT_KIND_RESIDENT_ID or SUBJECT_KIND_USCC",
        )]));
    };
    xgate_catalog::ids::validate(kind, &subject.id)
        .map_err(|e| invalid_argument(&[Violation::new("subject.id", e.to_string())]))?;
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
        if let Some(id) = xgate_proto::telemetry::continue_trace(&span, request.metadata()) {
            span.record("trace_id", id.as_str());
        }
        let incoming = request
            .metadata()
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        crate::trace::with_incoming(incoming, self.lookup_traced(request))
            .instrument(span)
            .await
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
}
