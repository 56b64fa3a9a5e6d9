//! `xgate-load`: the load client. Fixed concurrency over a few HTTP/2 connections, a warm-up,
//! then a measured window; prints throughput, p50/p90/p99/max and errors (a non-OK gRPC
//! status, or a record not OK / FOUND), or the whole report as JSON.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use xgate_catalog::{Catalog, SubjectKind};
use xgate_load::load::{self, Spec, Target};
use xgate_tls::TlsFiles;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Rpc {
    /// `Exchange/Fetch` on a gateway.
    Fetch,
    /// `DepartmentAdapter/Lookup` on an adapter or a proxy in front of it.
    Lookup,
}

#[derive(Parser, Debug)]
#[command(
    name = "xgate-load",
    about = "Load client for xgate and its adapters (gRPC over mTLS)"
)]
struct Cli {
    /// `https://127.0.0.1:PORT` (mTLS: needs --cert, --key, --ca) or `http://...` (plaintext).
    #[arg(long)]
    target: String,
    #[arg(long, value_enum, default_value = "fetch")]
    rpc: Rpc,
    #[arg(long)]
    cert: Option<PathBuf>,
    #[arg(long)]
    key: Option<PathBuf>,
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Subject ID (resident ID or USCC); default: the synthetic population's sample citizen.
    #[arg(long)]
    subject: Option<String>,
    /// Comma-separated record types; default: every type of --department for the subject's kind.
    #[arg(long, value_delimiter = ',')]
    types: Vec<String>,
    /// Department whose types are asked when --types is not given (all departments if absent).
    #[arg(long)]
    department: Option<String>,
    #[arg(long, default_value = "GENERAL-APPROVAL")]
    purpose: String,
    /// Each fetch names this applicant as the subject's spouse ("family
    /// agency"): the gateway verifies the marriage before every fetch.
    #[arg(long)]
    spouse: Option<String>,
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Warm-up seconds (not recorded).
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Deadline of each call, seconds.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let (tls, rest) = if let Some(rest) = cli.target.strip_prefix("https://") {
        let tls = TlsFiles {
            cert: cli
                .cert
                .clone()
                .context("--cert is required for https://")?,
            key: cli.key.clone().context("--key is required for https://")?,
            ca: cli.ca.clone().context("--ca is required for https://")?,
        };
        (Some(tls), rest)
    } else if let Some(rest) = cli.target.strip_prefix("http://") {
        (None, rest)
    } else {
        anyhow::bail!("--target must start with https:// or http://");
    };
    let addr = rest
        .trim_end_matches('/')
        .parse()
        .with_context(|| format!("--target: `{rest}` is not IP:PORT"))?;
    let catalog = Catalog::builtin()?;
    let id = cli
        .subject
        .clone()
        .unwrap_or_else(|| xgate_load::department::sample_subjects().0);
    let kind = if id.len() == 18 && xgate_catalog::ids::validate_resident_id(&id).is_ok() {
        SubjectKind::ResidentId
    } else {
        SubjectKind::Uscc
    };
    let types = if cli.types.is_empty() {
        load::types_of(&catalog, cli.department.as_deref(), kind)
    } else {
        cli.types.clone()
    };
    anyhow::ensure!(!types.is_empty(), "no record types to ask for");
    let call = match cli.rpc {
        Rpc::Fetch => {
            let mut call = load::fetch(kind, &id, &types, &cli.purpose);
            if let (load::Call::Fetch(request), Some(spouse)) = (&mut call, &cli.spouse) {
                request.representation = Some(xgate_proto::v1::Representation {
                    applicant_id: spouse.clone(),
                    relation: xgate_proto::v1::Relation::Spouse as i32,
                });
            }
            call
        }
        Rpc::Lookup => load::lookup(kind, &id, &types),
    };
    let spec = Spec {
        concurrency: cli.concurrency,
        connections: cli.connections,
        warmup: Duration::from_secs_f64(cli.warmup),
        duration: Duration::from_secs_f64(cli.duration),
        timeout: Duration::from_secs_f64(cli.timeout),
    };
    let target = Target { addr, tls };
    let report = load::run(&cli.target, &target, vec![call], &spec).await?;
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}", report.summary());
        println!("grpc status: {:?}", report.grpc_status);
        println!("records:     {:?}", report.record_status);
    }
    if report.errors > 0 {
        std::process::exit(1);
    }
    Ok(())
}
