//! The gateway's Prometheus endpoint seen from a test: finding its address in the gateway's
//! log and reading `GET /metrics` over plain HTTP/1.1 (a few lines of std I/O, no client
//! library).

use std::net::SocketAddr;

use anyhow::Context as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Removes ANSI colour sequences (the gateway's log lines may carry them).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ ... final byte in @..~
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) && c != '[' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The address of the gateway's `metrics serving addr=...` log line.
pub fn metrics_addr(log: &str) -> anyhow::Result<SocketAddr> {
    let log = strip_ansi(log);
    let line = log
        .lines()
        .find(|l| l.contains("metrics serving"))
        .with_context(|| format!("no `metrics serving` line in the gateway log:\n{log}"))?;
    let addr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("addr="))
        .with_context(|| format!("no addr= in `{line}`"))?;
    addr.parse()
        .with_context(|| format!("`{addr}` is not an address"))
}

/// The body of `GET /metrics` at `addr`; an error unless it answers 200.
pub async fn scrape(addr: SocketAddr) -> anyhow::Result<String> {
    let (status, body) = get(addr, "/metrics").await?;
    anyhow::ensure!(status == 200, "GET /metrics answered {status}: {body}");
    Ok(body)
}

/// Status code and body of `GET path` at `addr`.
pub async fn get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to the metrics endpoint {addr}"))?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8(raw).context("the metrics answer is not UTF-8")?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .with_context(|| format!("no header end in `{text}`"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no status in `{head}`"))?;
    Ok((status, body.to_owned()))
}

/// The value of the sample `series` (name with labels exactly as exposed, e.g.
/// `xgate_shed_total{reason="overloaded"}`), if present.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?;
        rest.strip_prefix(' ')?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_address_in_a_coloured_log_line() {
        let log = "2026-11-25T22:00:00Z  \u{1b}[32m INFO\u{1b}[0m \u{1b}[2mxgate::telemetry\u{1b}[0m\u{1b}[2m:\u{1b}[0m metrics serving \u{1b}[3maddr\u{1b}[0m\u{1b}[2m=\u{1b}[0m127.0.0.1:4567\n";
        assert_eq!(
            metrics_addr(log).expect("addr"),
            "127.0.0.1:4567".parse::<SocketAddr>().expect("addr")
        );
        assert!(metrics_addr("nothing here").is_err());
    }

    #[test]
    fn reads_samples_by_exact_series() {
        let text = "xgate_shed_total{reason=\"overloaded\"} 10\nxgate_in_flight_fetches 2\n";
        assert_eq!(
            sample(text, "xgate_shed_total{reason=\"overloaded\"}"),
            Some(10.0)
        );
        assert_eq!(sample(text, "xgate_in_flight_fetches"), Some(2.0));
        assert_eq!(sample(text, "xgate_in_flight"), None);
    }
}
