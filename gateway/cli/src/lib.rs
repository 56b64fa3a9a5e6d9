//! The `xgate` command line: the gateway server, a client for people
//! (`fetch`, `types`), adapter onboarding, the audit tools, the development
//! PKI and the one-command demo.
//!
//! A crate of its own so the gateway library (`xgate`) knows nothing of
//! demos or command lines: only this crate links the synthetic population
//! and the demo databases (`xgate-synth`, `xgate-demo-data`), and the
//! allocator is chosen in `main.rs` alone. Everything else, the `clap`
//! dispatcher included ([`command`]), is library code: the subcommands keep
//! their unit tests beside them, and the binary's crate compiles nothing
//! (see [`command`] for why that halves its release build).

/// `println!` that returns the write error instead of panicking, so a
/// closed pipe (`xgate fetch ... | head`) ends the output quietly.
#[macro_export]
macro_rules! outln {
    () => { { use std::io::Write as _; writeln!(std::io::stdout().lock()) } };
    ($($arg:tt)*) => { { use std::io::Write as _; writeln!(std::io::stdout().lock(), $($arg)*) } };
}

pub mod adapter;
pub mod audit;
pub mod balancer;
pub mod certs;
pub mod client;
pub mod cluster;
pub mod code;
pub mod command;
pub mod consent;
pub mod console;
pub mod demo;
pub mod evaluation;
pub mod fetch;
pub mod policy;
pub mod receipts;
pub mod screen;

use std::path::PathBuf;

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
