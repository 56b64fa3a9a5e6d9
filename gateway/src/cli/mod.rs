//! The `xgate` command line: the gateway server, a client for people
//! (`fetch`, `types`), the development PKI and the one-command demo.

/// `println!` that returns the write error instead of panicking, so a
/// closed pipe (`xgate fetch ... | head`) ends the output quietly.
#[macro_export]
macro_rules! outln {
    () => { { use std::io::Write as _; writeln!(std::io::stdout().lock()) } };
    ($($arg:tt)*) => { { use std::io::Write as _; writeln!(std::io::stdout().lock(), $($arg)*) } };
}

pub mod adapter;
pub mod audit;
pub mod certs;
pub mod client;
pub mod conformance;
pub mod demo;
pub mod fetch;
pub mod policy;

use std::path::PathBuf;

use xgate_proto::v1::RecordStatus;

/// Certificate flags of every client command.
#[derive(clap::Args, Debug, Clone)]
pub struct ClientTls {
    /// Gateway URL.
    #[arg(long, env = "XGATE_GATEWAY", default_value = "https://127.0.0.1:50051")]
    pub gateway: String,
    /// PEM client certificate (URI SAN `xgate://requester/<id>` to fetch).
    #[arg(long, env = "XGATE_CERT")]
    pub cert: PathBuf,
    /// PEM private key of the client certificate.
    #[arg(long, env = "XGATE_KEY")]
    pub key: PathBuf,
    /// PEM CA certificate that issued the gateway's certificate.
    #[arg(long, env = "XGATE_CA")]
    pub ca: PathBuf,
}

impl ClientTls {
    pub fn files(&self) -> xgate_tls::TlsFiles {
        xgate_tls::TlsFiles {
            cert: self.cert.clone(),
            key: self.key.clone(),
            ca: self.ca.clone(),
        }
    }
}

/// `OK`, `NOT_FOUND`, ... as shown to people and in JSON output.
pub fn status_name(status: i32) -> &'static str {
    match RecordStatus::try_from(status) {
        Ok(RecordStatus::Ok) => "OK",
        Ok(RecordStatus::NotFound) => "NOT_FOUND",
        Ok(RecordStatus::Denied) => "DENIED",
        Ok(RecordStatus::Unavailable) => "UNAVAILABLE",
        Ok(RecordStatus::Invalid) => "INVALID",
        Ok(RecordStatus::NoSource) => "NO_SOURCE",
        Ok(RecordStatus::ResourceExhausted) => "RESOURCE_EXHAUSTED",
        _ => "UNSPECIFIED",
    }
}
