//! An off-the-shelf TCP balancer in front of gateway replicas: Debian's
//! HAProxy in TCP passthrough, so each client's mTLS handshake reaches a
//! gateway unchanged and the gateway sees the client's own certificate.
//!
//! HAProxy balances connections, not calls: a gRPC client's HTTP/2
//! connection stays on one replica, and clients spread by connecting
//! (round robin). A replica that stops accepting is marked down by the
//! health check within a second; a connection attempt that fails before
//! reaching it is redispatched to another replica (`option redispatch`), so
//! a caller only loses the calls that were in flight on the dead replica.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::process::{Child, Command};

/// One gateway replica behind the balancer.
#[derive(Debug, Clone)]
pub struct Backend {
    /// The server name in HAProxy's configuration and logs (`r1`, `r2`...).
    pub name: String,
    pub addr: SocketAddr,
}

/// A running HAProxy, stopped when dropped.
pub struct Balancer {
    child: Child,
    /// Where clients connect.
    pub addr: SocketAddr,
    /// Its configuration file.
    pub config: PathBuf,
}

/// The HAProxy executable: on the PATH, or where Debian's package puts it.
pub fn haproxy() -> anyhow::Result<PathBuf> {
    let on_path = std::env::var_os("PATH").into_iter().flat_map(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("haproxy"))
            .collect::<Vec<_>>()
    });
    on_path
        .chain([PathBuf::from("/usr/sbin/haproxy")])
        .find(|p| p.is_file())
        .context(
            "HAProxy is not installed; install Debian's package (`apt-get install haproxy`, \
             or run integration-tests/load/install-tools.sh)",
        )
}

/// The configuration for `backends` behind `listen`: TCP mode, round robin,
/// a TCP health check every 500 ms (down after one failure, up after two
/// successes), sessions to a server marked down are shut at once, and a
/// failed connect is retried on another server.
pub fn config(listen: SocketAddr, backends: &[Backend]) -> String {
    let mut text = format!(
        "# Written by xgate: TCP passthrough to the gateway replicas (mTLS end to end).
global
    maxconn 4096
    log stderr format short local0 notice

defaults
    mode tcp
    log global
    option tcplog
    option redispatch
    retries 3
    timeout connect 1s
    timeout client 10m
    timeout server 10m
    timeout check 1s

frontend xgate
    bind {listen}
    default_backend replicas

backend replicas
    balance roundrobin
    default-server inter 500ms fastinter 250ms downinter 500ms fall 1 rise 2 on-marked-down shutdown-sessions
"
    );
    for b in backends {
        text.push_str(&format!("    server {} {} check\n", b.name, b.addr));
    }
    text
}

impl Balancer {
    /// Writes the configuration into `dir` and starts HAProxy in the
    /// foreground on a free loopback port; returns once it accepts.
    pub async fn start(dir: &Path, backends: &[Backend], log: &Path) -> anyhow::Result<Balancer> {
        let haproxy = haproxy()?;
        // HAProxy cannot report a port it chose: take a free one, release it
        // and hand it over (a rare collision is retried).
        let mut last_error = None;
        for _ in 0..5 {
            let listen = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
            let config_path = dir.join("haproxy.cfg");
            std::fs::write(&config_path, config(listen, backends))
                .with_context(|| format!("writing {}", config_path.display()))?;
            let log_file = std::fs::File::create(log)
                .with_context(|| format!("creating {}", log.display()))?;
            let mut child = Command::new(&haproxy)
                .arg("-db")
                .arg("-f")
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(log_file.try_clone()?)
                .stderr(log_file)
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("starting {}", haproxy.display()))?;
            match wait_accepting(&mut child, listen).await {
                Ok(()) => {
                    return Ok(Balancer {
                        child,
                        addr: listen,
                        config: config_path,
                    });
                }
                Err(e) => {
                    let _ = child.kill().await;
                    last_error = Some(e);
                }
            }
        }
        Err(last_error
            .unwrap_or_else(|| anyhow::anyhow!("HAProxy did not start"))
            .context(format!("HAProxy's log: {}", log.display())))
    }

    /// The URL clients use.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Waits until HAProxy accepts on `listen` (or exits, e.g. the port was
/// taken meanwhile).
async fn wait_accepting(child: &mut Child, listen: SocketAddr) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("HAProxy exited at start ({status})");
        }
        if tokio::net::TcpStream::connect(listen).await.is_ok() {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "HAProxy did not accept on {listen} within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_replica_is_a_checked_server_in_tcp_mode() {
        let backends = [
            Backend {
                name: "r1".into(),
                addr: "127.0.0.1:4001".parse().unwrap_or_else(|_| unreachable!()),
            },
            Backend {
                name: "r2".into(),
                addr: "127.0.0.1:4002".parse().unwrap_or_else(|_| unreachable!()),
            },
        ];
        let text = config(
            "127.0.0.1:4000".parse().unwrap_or_else(|_| unreachable!()),
            &backends,
        );
        assert!(
            text.contains("mode tcp"),
            "passthrough, never TLS termination"
        );
        assert!(text.contains("bind 127.0.0.1:4000"));
        assert!(text.contains("server r1 127.0.0.1:4001 check"));
        assert!(text.contains("server r2 127.0.0.1:4002 check"));
        assert!(text.contains("option redispatch"));
        assert!(!text.contains("ssl"), "HAProxy must not see inside TLS");
    }
}
