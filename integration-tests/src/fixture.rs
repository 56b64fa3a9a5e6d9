//! Misbehaving department adapters, built in the test process on the real adapter SDK: a real
//! gRPC server over mTLS that registers through the gateway's real Registry, with a lookup
//! the test controls (slow, hanging, returning bad data).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use xgate_adapter_sdk::{AdapterArgs, Department, LookupError, Subject};
use xgate_tls::TlsFiles;

use crate::records::about;

/// How a fixture's lookups behave; switchable while it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// Answers the canned records.
    Ok = 0,
    /// Every lookup fails (the department's backend is down): ERROR answers.
    Failing = 1,
    /// Never answers.
    Hanging = 2,
    /// Every lookup finds data that makes no valid record: BAD_DATA answers.
    BadData = 3,
}

/// The switch of a serving fixture's [`Mode`].
#[derive(Debug, Clone)]
pub struct ModeSwitch(Arc<AtomicU8>);

impl ModeSwitch {
    pub fn set(&self, mode: Mode) {
        self.0.store(mode as u8, Ordering::SeqCst);
    }

    fn get(&self) -> Mode {
        match self.0.load(Ordering::SeqCst) {
            1 => Mode::Failing,
            2 => Mode::Hanging,
            3 => Mode::BadData,
            _ => Mode::Ok,
        }
    }
}

/// A department whose lookups answer canned records, after a delay or never.
#[derive(Debug, Clone)]
pub struct FixtureDepartment {
    department: String,
    records: BTreeMap<String, Vec<Value>>,
    delay: Duration,
    hang: bool,
    mode: ModeSwitch,
    /// Serve a record only to a lookup of the subject its `id_number` names.
    per_subject: bool,
    lookups: Arc<AtomicUsize>,
    traces: Arc<Mutex<Vec<SeenTrace>>>,
    /// Record-type lookups running now, and the most ever at once.
    running: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

/// Counts one running lookup while alive (also when the lookup is cancelled).
struct Running(Arc<AtomicUsize>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The trace context one lookup ran in, as the SDK exposes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenTrace {
    /// The `traceparent` the gateway sent.
    pub incoming: Option<String>,
    /// The trace id of the SDK's current span inside the lookup.
    pub trace_id: Option<String>,
}

impl FixtureDepartment {
    /// Public security serving `citizen`'s driving licence (what
    /// [`crate::grants::PF_LICENCES`] grants).
    pub fn licences(citizen: &str) -> FixtureDepartment {
        FixtureDepartment::new("public-security").serving(
            "driving_licence",
            vec![crate::records::driving_licence(citizen)],
        )
    }

    /// A department `department` serving nothing yet.
    pub fn new(department: &str) -> FixtureDepartment {
        FixtureDepartment {
            department: department.to_owned(),
            records: BTreeMap::new(),
            delay: Duration::ZERO,
            hang: false,
            mode: ModeSwitch(Arc::new(AtomicU8::new(Mode::Ok as u8))),
            per_subject: false,
            lookups: Arc::new(AtomicUsize::new(0)),
            traces: Arc::new(Mutex::new(Vec::new())),
            running: Arc::new(AtomicUsize::new(0)),
            peak: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Starts in `mode` (see [`FixtureAdapter::mode`] to switch it later).
    pub fn in_mode(self, mode: Mode) -> FixtureDepartment {
        self.mode.set(mode);
        self
    }

    /// Serves `record_type` with `records` (each with [`crate::records::SUBJECT`] replaced by
    /// the looked-up subject; none means NOT_FOUND).
    pub fn serving(mut self, record_type: &str, records: Vec<Value>) -> FixtureDepartment {
        self.records.insert(record_type.to_owned(), records);
        self
    }

    /// Serves each record only to lookups of the subject its `id_number`
    /// names (records of several people; [`crate::records::SUBJECT`] still
    /// stands for whoever is looked up).
    pub fn per_subject(mut self) -> FixtureDepartment {
        self.per_subject = true;
        self
    }

    /// Answers every lookup only after `delay`.
    pub fn delayed(mut self, delay: Duration) -> FixtureDepartment {
        self.delay = delay;
        self
    }

    /// Never answers a lookup.
    pub fn hanging(mut self) -> FixtureDepartment {
        self.hang = true;
        self
    }

    /// The department it stands for.
    pub fn department_id(&self) -> &str {
        &self.department
    }

    /// The record types served.
    pub fn types(&self) -> Vec<String> {
        self.records.keys().cloned().collect()
    }
}

impl Department for FixtureDepartment {
    fn department(&self) -> &str {
        &self.department
    }

    fn record_types(&self) -> Vec<String> {
        self.types()
    }

    async fn lookup(
        &self,
        subject: &Subject,
        record_type: &str,
    ) -> Result<Vec<Value>, LookupError> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        let _running = Running(Arc::clone(&self.running));
        self.peak.fetch_max(now, Ordering::SeqCst);
        let seen = SeenTrace {
            incoming: xgate_adapter_sdk::trace::incoming_traceparent(),
            trace_id: xgate_adapter_sdk::trace::current_trace_id(),
        };
        match self.traces.lock() {
            Ok(mut traces) => traces.push(seen),
            Err(poisoned) => poisoned.into_inner().push(seen),
        }
        match self.mode.get() {
            _ if self.hang => std::future::pending::<()>().await,
            Mode::Hanging => std::future::pending::<()>().await,
            Mode::Failing => {
                return Err(LookupError::Backend("fixture backend down".into()));
            }
            Mode::BadData => {
                return Err(LookupError::BadData(format!(
                    "row 1 of `{record_type}`: field `issue_date` holds text that is not a date"
                )));
            }
            Mode::Ok => {}
        }
        tokio::time::sleep(self.delay).await;
        Ok(self
            .records
            .get(record_type)
            .map(|records| {
                records
                    .iter()
                    .map(|r| about(r.clone(), &subject.id))
                    .filter(|r| {
                        !self.per_subject || r["id_number"].as_str() == Some(subject.id.as_str())
                    })
                    .collect()
            })
            .unwrap_or_default())
    }
}

/// A [`FixtureDepartment`] served by the SDK in a task of the test's runtime; stopped when
/// dropped.
pub struct FixtureAdapter {
    department: String,
    types: Vec<String>,
    lookups: Arc<AtomicUsize>,
    mode: ModeSwitch,
    /// Where it listens, when started by [`FixtureAdapter::spawn_unregistered`].
    addr: Option<SocketAddr>,
    traces: Arc<Mutex<Vec<SeenTrace>>>,
    peak: Arc<AtomicUsize>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl FixtureAdapter {
    /// Starts serving `dept` on `127.0.0.1:0` with the certificate `tls`, registering with the
    /// gateway at `gateway_url`.
    pub fn spawn(dept: FixtureDepartment, tls: &TlsFiles, gateway_url: &str) -> FixtureAdapter {
        xgate_tls::install_crypto_provider();
        // The SDK's logs go to the test's stderr, shown when the test fails.
        xgate_adapter_sdk::init_tracing();
        let args = AdapterArgs {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            cert: tls.cert.clone(),
            key: tls.key.clone(),
            ca: tls.ca.clone(),
            gateway: Some(gateway_url.to_owned()),
            advertise: None,
            adapter_id: None,
            replace: false,
        };
        let department = dept.department.clone();
        let types = dept.types();
        let lookups = Arc::clone(&dept.lookups);
        let mode = dept.mode.clone();
        let traces = Arc::clone(&dept.traces);
        let peak = Arc::clone(&dept.peak);
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(xgate_adapter_sdk::serve_with_shutdown(dept, args, async {
            let _ = rx.await;
        }));
        FixtureAdapter {
            department,
            types,
            lookups,
            mode,
            addr: None,
            traces,
            peak,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// Serves `dept` with the SDK's adapter service on `127.0.0.1:0` over mTLS with `tls`, but
    /// registers nowhere: the test registers it (e.g. as one of several endpoints of one
    /// adapter) through the Registry itself. Its URL is [`FixtureAdapter::url`].
    pub async fn spawn_unregistered(
        dept: FixtureDepartment,
        tls: &TlsFiles,
    ) -> anyhow::Result<FixtureAdapter> {
        use xgate_proto::v1::department_adapter_server::DepartmentAdapterServer;
        xgate_tls::install_crypto_provider();
        xgate_adapter_sdk::init_tracing();
        let catalog = xgate_catalog::Catalog::builtin()?;
        let department = dept.department.clone();
        let types = dept.types();
        let lookups = Arc::clone(&dept.lookups);
        let mode = dept.mode.clone();
        let traces = Arc::clone(&dept.traces);
        let peak = Arc::clone(&dept.peak);
        let service = xgate_adapter_sdk::AdapterService::new(dept, &catalog)?;
        let incoming =
            tonic::transport::server::TcpIncoming::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
                .map_err(|e| anyhow::anyhow!("binding the fixture: {e}"))?
                .with_nodelay(Some(true));
        let addr = incoming.local_addr()?;
        let router = tonic::transport::Server::builder()
            .tls_config(tls.server_config()?)?
            .add_service(DepartmentAdapterServer::new(service));
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            router
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = rx.await;
                })
                .await
                .context("serving the fixture")
        });
        Ok(FixtureAdapter {
            department,
            types,
            lookups,
            mode,
            addr: Some(addr),
            traces,
            peak,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// The endpoint URL of a fixture started by [`FixtureAdapter::spawn_unregistered`].
    pub fn url(&self) -> Option<String> {
        self.addr.map(|addr| format!("https://{addr}"))
    }

    /// Switches how its lookups behave from now on.
    pub fn mode(&self) -> &ModeSwitch {
        &self.mode
    }

    pub fn department(&self) -> &str {
        &self.department
    }

    /// The record types it registers.
    pub fn types(&self) -> &[String] {
        &self.types
    }

    /// How many record-type lookups the gateway has asked for so far.
    pub fn lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }

    /// The most record-type lookups that ever ran at once.
    pub fn peak_concurrency(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    /// The trace context of every lookup so far, in order.
    pub fn traces(&self) -> Vec<SeenTrace> {
        match self.traces.lock() {
            Ok(traces) => traces.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Whether the server task has ended (it ends early only on a start-up error).
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Stops the server and returns how it ended.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(task) => tokio::time::timeout(Duration::from_secs(20), task)
                .await
                .context("the fixture adapter did not stop within 20 s")?
                .context("the fixture adapter task panicked")?,
            None => Ok(()),
        }
    }
}

impl Drop for FixtureAdapter {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xgate_catalog::SubjectKind;

    fn subject() -> Subject {
        Subject {
            kind: SubjectKind::ResidentId,
            id: "11010519491231002X".into(),
        }
    }

    #[tokio::test]
    async fn answers_canned_records_about_the_subject() {
        let dept = FixtureDepartment::new("tax").serving(
            "no_tax_arrears_certificate",
            vec![crate::records::no_tax_arrears_certificate()],
        );
        assert_eq!(dept.record_types(), vec!["no_tax_arrears_certificate"]);
        let records = dept
            .lookup(&subject(), "no_tax_arrears_certificate")
            .await
            .expect("lookup");
        assert_eq!(records.len(), 1);
        assert_eq!(records[0]["id_number"], "11010519491231002X");
        assert!(
            dept.lookup(&subject(), "tax_registration")
                .await
                .expect("lookup")
                .is_empty()
        );
        assert_eq!(dept.lookups.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn delays_and_hangs() {
        let subject = subject();
        let slow = FixtureDepartment::new("tax")
            .serving("tax_registration", vec![])
            .delayed(Duration::from_secs(60));
        let lookup = slow.lookup(&subject, "tax_registration");
        assert!(
            tokio::time::timeout(Duration::from_millis(200), lookup)
                .await
                .is_err()
        );
        let hanging = FixtureDepartment::new("tax")
            .serving("tax_registration", vec![])
            .hanging();
        let lookup = hanging.lookup(&subject, "tax_registration");
        assert!(
            tokio::time::timeout(Duration::from_millis(200), lookup)
                .await
                .is_err()
        );
        assert_eq!(hanging.lookups.load(Ordering::SeqCst), 1);
    }
}
