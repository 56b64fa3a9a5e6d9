//! Child processes under test: the gateway and the department adapters.
//!
//! Each child's stderr (its log) goes to a file; its stdout is read for the one line
//! launchers wait for, `listening on ADDR`, then drained. A child is killed when its handle
//! is dropped, and its log is printed then: test runners show a test's output only when it
//! fails, which is exactly when the log is wanted.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

use crate::START_TIMEOUT;

/// How much of a log is printed: the end is where the failure is.
const LOG_TAIL_BYTES: usize = 24 * 1024;

/// The last [`LOG_TAIL_BYTES`] of a log file, or why it cannot be read.
pub fn log_tail(path: &Path) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let start = bytes.len().saturating_sub(LOG_TAIL_BYTES);
            let text = String::from_utf8_lossy(bytes.get(start..).unwrap_or_default());
            if start > 0 {
                format!("[... {start} bytes before]\n{text}")
            } else {
                text.into_owned()
            }
        }
        Err(e) => format!("[log `{}` unreadable: {e}]", path.display()),
    }
}

/// A running child process, killed on drop.
pub struct Process {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Process {
    /// Starts `command` with stderr to `log` and waits (at most [`START_TIMEOUT`]) for its
    /// first stdout line, `listening on ADDR`.
    pub async fn start(
        name: &str,
        mut command: Command,
        log: &Path,
    ) -> anyhow::Result<(Process, SocketAddr)> {
        let log_file = std::fs::File::create(log)
            .with_context(|| format!("creating log file `{}`", log.display()))?;
        command
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .with_context(|| format!("starting `{name}`"))?;
        let stdout = child.stdout.take().context("child stdout was not piped")?;
        let mut process = Process {
            name: name.to_owned(),
            child,
            log: log.to_owned(),
        };
        let mut lines = BufReader::new(stdout).lines();
        let first = match tokio::time::timeout(START_TIMEOUT, lines.next_line()).await {
            Err(_) => anyhow::bail!(
                "`{name}` printed no `listening on` line within {} s; its log:\n{}",
                START_TIMEOUT.as_secs(),
                process.log_text()
            ),
            Ok(Err(e)) => anyhow::bail!("reading the stdout of `{name}`: {e}"),
            Ok(Ok(None)) => {
                let status = tokio::time::timeout(Duration::from_secs(5), process.child.wait())
                    .await
                    .map_or_else(|_| "still running".to_owned(), |s| format!("{s:?}"));
                anyhow::bail!(
                    "`{name}` closed its stdout before listening (exit: {status}); its log:\n{}",
                    process.log_text()
                )
            }
            Ok(Ok(Some(line))) => line,
        };
        let addr: SocketAddr = first
            .strip_prefix("listening on ")
            .and_then(|addr| addr.trim().parse().ok())
            .with_context(|| {
                format!("`{name}` printed `{first}` instead of `listening on ADDR`")
            })?;
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok((process, addr))
    }

    /// The process id, while the child has not been reaped.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The end of the child's log.
    pub fn log_text(&self) -> String {
        log_tail(&self.log)
    }

    /// SIGKILL, and reap.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        self.child
            .kill()
            .await
            .with_context(|| format!("killing `{}`", self.name))
    }

    /// SIGTERM, then waits at most `timeout` for the exit.
    pub async fn terminate(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let pid = self
            .pid()
            .with_context(|| format!("`{}` has already exited", self.name))?;
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await
            .context("running `kill -TERM`")?;
        anyhow::ensure!(status.success(), "`kill -TERM {pid}` failed: {status}");
        tokio::time::timeout(timeout, self.child.wait())
            .await
            .with_context(|| {
                format!(
                    "`{}` did not exit within {} s of SIGTERM",
                    self.name,
                    timeout.as_secs()
                )
            })?
            .with_context(|| format!("waiting for `{}`", self.name))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // Fails only when the child has already exited.
        let _ = self.child.start_kill();
        eprintln!(
            "----- log of `{}` ({}) -----\n{}\n----- end of log of `{}` -----",
            self.name,
            self.log.display(),
            self.log_text(),
            self.name
        );
    }
}

/// Runs `command` to its end (at most `timeout`) with stdout and stderr to `log`; an error
/// carries the log.
pub async fn run_to_end(
    name: &str,
    mut command: Command,
    log: &Path,
    timeout: Duration,
) -> anyhow::Result<()> {
    let log_file = std::fs::File::create(log)
        .with_context(|| format!("creating log file `{}`", log.display()))?;
    command
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .kill_on_drop(true);
    let status = tokio::time::timeout(timeout, command.status())
        .await
        .with_context(|| format!("`{name}` did not finish within {} s", timeout.as_secs()))?
        .with_context(|| format!("running `{name}`"))?;
    anyhow::ensure!(
        status.success(),
        "`{name}` failed ({status}); its log:\n{}",
        log_tail(log)
    );
    Ok(())
}

/// A gateway process (`xgate serve --config FILE`).
pub struct GatewayProcess {
    process: Process,
    addr: SocketAddr,
    config: PathBuf,
}

impl GatewayProcess {
    /// Starts the gateway binary on `config`, logging to `log`.
    pub async fn start(config: &Path, log: &Path) -> anyhow::Result<GatewayProcess> {
        let mut command = Command::new(crate::bins::binary(crate::bins::GATEWAY)?);
        command.arg("serve").arg("--config").arg(config);
        let (process, addr) = Process::start("xgate serve", command, log).await?;
        Ok(GatewayProcess {
            process,
            addr,
            config: config.to_owned(),
        })
    }

    /// The address the gateway listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The configuration file it was started with.
    pub fn config(&self) -> &Path {
        &self.config
    }

    /// The end of the gateway's log.
    pub fn log_text(&self) -> String {
        self.process.log_text()
    }

    pub fn process(&mut self) -> &mut Process {
        &mut self.process
    }

    /// SIGTERM and waits for a clean exit.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let status = self.process.terminate(Duration::from_secs(20)).await?;
        anyhow::ensure!(
            status.success(),
            "the gateway exited with {status} after SIGTERM; its log:\n{}",
            self.process.log_text()
        );
        Ok(())
    }
}

/// A department adapter process (`xgate-adapter-<department> serve`).
pub struct AdapterProcess {
    process: Process,
    department: String,
    addr: SocketAddr,
}

impl AdapterProcess {
    /// Starts the adapter binary of `department` on database `db`, registering with the
    /// gateway at `gateway_url`.
    pub async fn start(
        department: &str,
        db: &Path,
        tls: &xgate_tls::TlsFiles,
        gateway_url: &str,
        log: &Path,
    ) -> anyhow::Result<AdapterProcess> {
        let name = crate::bins::adapter_name(department);
        let mut command = Command::new(crate::bins::binary(&name)?);
        command
            .arg("serve")
            .arg("--db")
            .arg(db)
            .args(["--listen", "127.0.0.1:0", "--gateway", gateway_url])
            .arg("--cert")
            .arg(&tls.cert)
            .arg("--key")
            .arg(&tls.key)
            .arg("--ca")
            .arg(&tls.ca);
        let (process, addr) = Process::start(&format!("{name} serve"), command, log).await?;
        Ok(AdapterProcess {
            process,
            department: department.to_owned(),
            addr,
        })
    }

    /// Starts the generic SQL adapter for `department` with its demo mapping (from
    /// `xgate-demo-data`, written next to the database) on the SQLite database `db`;
    /// registers with the gateway at `gateway_url` when given.
    pub async fn start_sql(
        department: &str,
        db: &Path,
        tls: &xgate_tls::TlsFiles,
        gateway_url: Option<&str>,
        log: &Path,
    ) -> anyhow::Result<AdapterProcess> {
        let mapping = db.with_extension("toml");
        let text = xgate_demo_data::mapping(department)
            .with_context(|| format!("no demo mapping for `{department}`"))?;
        std::fs::write(&mapping, text)?;
        let mut command = Command::new(crate::bins::binary("xgate-adapter-sql")?);
        command
            .arg("--mapping")
            .arg(&mapping)
            .arg("--database-url")
            .arg(format!("sqlite:{}", db.display()))
            .args(["--listen", "127.0.0.1:0"])
            .arg("--cert")
            .arg(&tls.cert)
            .arg("--key")
            .arg(&tls.key)
            .arg("--ca")
            .arg(&tls.ca);
        if let Some(url) = gateway_url {
            command.args(["--gateway", url]);
        }
        let name = format!("xgate-adapter-sql ({department})");
        let (process, addr) = Process::start(&name, command, log).await?;
        Ok(AdapterProcess {
            process,
            department: department.to_owned(),
            addr,
        })
    }

    /// Seeds the demo databases of the SQL-served departments into `dir`
    /// (`xgate-demo-seed --out DIR`), one `<department>.db` each.
    pub async fn seed_demo_data(dir: &Path, log: &Path) -> anyhow::Result<()> {
        let mut command = Command::new(crate::bins::binary("xgate-demo-seed")?);
        command.arg("--out").arg(dir);
        run_to_end("xgate-demo-seed", command, log, Duration::from_secs(120)).await
    }

    /// Seeds the database of `department` at `db` (`xgate-adapter-<department> seed`).
    pub async fn seed(department: &str, db: &Path, log: &Path) -> anyhow::Result<()> {
        let name = crate::bins::adapter_name(department);
        let mut command = Command::new(crate::bins::binary(&name)?);
        command.arg("seed").arg("--db").arg(db);
        run_to_end(
            &format!("{name} seed"),
            command,
            log,
            Duration::from_secs(120),
        )
        .await
    }

    pub fn department(&self) -> &str {
        &self.department
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The endpoint the adapter registers: `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The end of the gateway's log.
    pub fn log_text(&self) -> String {
        self.process.log_text()
    }

    pub fn process(&mut self) -> &mut Process {
        &mut self.process
    }

    /// SIGKILL: the adapter vanishes without deregistering.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        self.process.kill().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_tail_keeps_the_end_of_long_logs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.log");
        let text = format!("{}END", "a".repeat(LOG_TAIL_BYTES + 10));
        std::fs::write(&path, &text).expect("write");
        let tail = log_tail(&path);
        assert!(
            tail.starts_with("[... 13 bytes before]\n"),
            "{}",
            &tail[..40]
        );
        assert!(tail.ends_with("END"));
        assert!(log_tail(&dir.path().join("missing.log")).contains("unreadable"));
    }

    #[tokio::test]
    async fn a_child_that_exits_without_listening_is_reported_with_its_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("child.log");
        let mut command = Command::new("sh");
        command.args(["-c", "echo boom >&2; exit 3"]);
        let err = Process::start("sh", command, &log)
            .await
            .err()
            .expect("no listening line");
        let message = err.to_string();
        assert!(message.contains("before listening"), "{message}");
        assert!(message.contains("boom"), "{message}");
    }

    #[tokio::test]
    async fn reads_the_listening_address_and_terminates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("child.log");
        let mut command = Command::new("sh");
        command.args(["-c", "echo 'listening on 127.0.0.1:4321'; exec sleep 30"]);
        let (mut process, addr) = Process::start("sh", command, &log).await.expect("start");
        assert_eq!(addr, "127.0.0.1:4321".parse().expect("addr"));
        let status = process
            .terminate(Duration::from_secs(10))
            .await
            .expect("terminate");
        assert!(!status.success());
    }
}
