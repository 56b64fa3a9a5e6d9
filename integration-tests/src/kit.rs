//! The onboarding commands as a department runs them: `xgate adapter ...` and `xgate certs
//! issue` as child processes of the real binary, and an adapter that ignores deadlines (its
//! lookups block the thread, as a synchronous database driver would).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;
use tokio::process::Command;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use xgate_adapter_sdk::{AdapterArgs, Department, LookupError, Subject};
use xgate_proto::v1::ListAdaptersRequest;
use xgate_tls::TlsFiles;

use crate::TestEnv;
use crate::records::about;

/// How long one `xgate` command may run.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// What an `xgate` command printed and how it ended.
#[derive(Debug)]
pub struct CommandOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl CommandOutput {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// The report row whose check starts with `check` (e.g. `records: tax_registration`).
    pub fn row(&self, check: &str) -> Option<&str> {
        self.stdout.lines().find(|line| line.starts_with(check))
    }

    /// Both streams, for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "exit: {}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Runs `xgate ARGS` to its end.
pub async fn xgate<I, S>(args: I) -> anyhow::Result<CommandOutput>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let mut command = Command::new(crate::bins::binary(crate::bins::GATEWAY)?);
    command
        .args(&args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(COMMAND_TIMEOUT, command.output())
        .await
        .with_context(|| {
            format!(
                "`xgate {args:?}` did not finish within {} s",
                COMMAND_TIMEOUT.as_secs()
            )
        })?
        .with_context(|| format!("running `xgate {args:?}`"))?;
    Ok(CommandOutput {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// `--cert C --key K --ca A`.
pub fn tls_args(tls: &TlsFiles) -> Vec<OsString> {
    vec![
        "--cert".into(),
        tls.cert.clone().into(),
        "--key".into(),
        tls.key.clone().into(),
        "--ca".into(),
        tls.ca.clone().into(),
    ]
}

/// `xgate adapter check` of the `department` adapter at `endpoint` with the certificate
/// `tls`, naming `subjects` besides those the adapter names.
pub async fn check_adapter(
    endpoint: &str,
    department: &str,
    tls: &TlsFiles,
    subjects: &[&str],
) -> anyhow::Result<CommandOutput> {
    let mut args: Vec<OsString> = vec![
        "adapter".into(),
        "check".into(),
        "--endpoint".into(),
        endpoint.into(),
        "--department".into(),
        department.into(),
    ];
    args.extend(tls_args(tls));
    for subject in subjects {
        args.push("--subject".into());
        args.push((*subject).into());
    }
    xgate(args).await
}

/// The endpoints the gateway at `addr` has registered for `department` (admin's view).
pub async fn registered_endpoints(
    env: &TestEnv,
    addr: SocketAddr,
    department: &str,
) -> anyhow::Result<Vec<String>> {
    let mut registry = env.registry_as(addr, &env.pki().admin()).await?;
    let adapters = registry
        .list(ListAdaptersRequest {})
        .await?
        .into_inner()
        .adapters;
    Ok(adapters
        .into_iter()
        .filter(|a| a.department == department)
        .flat_map(|a| a.endpoints)
        .collect())
}

/// A department that ignores deadlines: each lookup of `subject` blocks its thread for
/// `block` before answering the canned records; other subjects are NOT_FOUND at once.
#[derive(Debug, Clone)]
pub struct BlockingDepartment {
    pub department: String,
    pub records: BTreeMap<String, Vec<Value>>,
    pub subject: String,
    pub block: Duration,
}

impl Department for BlockingDepartment {
    fn department(&self) -> &str {
        &self.department
    }

    fn record_types(&self) -> Vec<String> {
        self.records.keys().cloned().collect()
    }

    async fn lookup(
        &self,
        subject: &Subject,
        record_type: &str,
    ) -> Result<Vec<Value>, LookupError> {
        if subject.id != self.subject {
            return Ok(Vec::new());
        }
        // A blocking call inside async code: no timeout around the future can interrupt it.
        tokio::task::block_in_place(|| std::thread::sleep(self.block));
        Ok(self
            .records
            .get(record_type)
            .map(|records| {
                records
                    .iter()
                    .map(|r| about(r.clone(), &subject.id))
                    .collect()
            })
            .unwrap_or_default())
    }
}

/// An SDK adapter serving `dept` in the test's runtime (which must be multi-threaded),
/// registering with the gateway at `gateway_url`; stopped when dropped.
pub struct SdkAdapter {
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl SdkAdapter {
    pub fn spawn<D: Department>(dept: D, tls: &TlsFiles, gateway_url: &str) -> SdkAdapter {
        xgate_tls::install_crypto_provider();
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
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(xgate_adapter_sdk::serve_with_shutdown(dept, args, async {
            let _ = rx.await;
        }));
        SdkAdapter {
            shutdown: Some(tx),
            task: Some(task),
        }
    }
}

impl Drop for SdkAdapter {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
