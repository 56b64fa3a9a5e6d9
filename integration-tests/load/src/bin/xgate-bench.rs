//! `xgate-bench`: the end-to-end benchmarks of issue 5 on loopback, everything over mTLS with
//! a development PKI (`xgate certs init`'s code), the same load client and the same adapter
//! binary (`xgate-bench-adapter`) in every arm.
//!
//! - `e2e`: (a) direct to the adapter, (b) through nginx `grpc_pass`, (c) through xgate
//!   (policy + audit + schema), side by side in each run; then h2load against the adapter's
//!   plaintext listener next to this client on the same listener (the cross-check).
//! - `fanout`: 20 departments (20 bench adapters, equal delay): the demo's 63 types (a
//!   citizen's 43 and a company's 20, fetched together) against one department, and the
//!   adapter's own latency measured directly.
//! - `rss`: the gateway's VmRSS idle and with N fetches in flight on slow adapters.
//!
//! Binaries are taken from this executable's folder: build them first
//! (`cargo build --release -p xgate-cli -p xgate-load`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use prost::Message as _;
use serde::Serialize;
use tokio::process::Command;
use xgate_catalog::SubjectKind;
use xgate_integration_tests::process::{AdapterProcess, GatewayProcess, Process};
use xgate_integration_tests::{APPROVAL_HALL, GENERAL_APPROVAL, GatewayOptions, TestEnv, bins};
use xgate_load::department::{RecordFile, parse_counts};
use xgate_load::load::{self, Call, Report, Spec, Target};
use xgate_load::{nginx, proc};
use xgate_proto::v1::DescribeRequest;
use xgate_proto::v1::department_adapter_client::DepartmentAdapterClient;

#[derive(Parser, Debug)]
#[command(
    name = "xgate-bench",
    about = "End-to-end benchmarks of xgate on loopback"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Arms (a) direct, (b) nginx, (c) xgate side by side; h2load cross-check.
    E2e(E2eArgs),
    /// 63 types over 20 departments vs one department, and the adapter's own latency.
    Fanout(FanoutArgs),
    /// The gateway's VmRSS idle and with N fetches in flight.
    Rss(RssArgs),
    /// Replicas on PostgreSQL: registry propagation p99, quota exactness.
    Replicas(xgate_load::replicas::ReplicasArgs),
    /// Screening: subjects per second in batches vs one at a time, time to first result.
    Screen(xgate_load::screening::ScreenArgs),
}

#[derive(Args, Debug, Clone)]
struct LoadArgs {
    /// Runs of each arm (min/median/max over them).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Measured seconds per arm and run.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Warm-up seconds per arm and run.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Write every report and the summary as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Extra `[limits]` entries for the gateway, e.g. `max_in_flight=4000` (repeatable).
    #[arg(long = "limit", value_parser = parse_limit)]
    limits: Vec<(String, u64)>,
    /// The gateway's record cache (`[cache] enabled`). Off by default, so every fetch calls
    /// the adapter like arms (a) and (b) do; the load repeats one subject, so with the cache
    /// on nearly every fetch is a hit.
    #[arg(long, default_value = "off", value_parser = ["on", "off"])]
    cache: String,
    /// The audit log's SQLite `synchronous` setting (`[audit] sqlite_synchronous`).
    #[arg(long, default_value = "full", value_parser = ["full", "normal"])]
    audit_sync: String,
}

impl LoadArgs {
    /// The gateway's options for these arguments, with the cache on or off.
    fn gateway_options(&self, cache_on: bool) -> GatewayOptions {
        let mut options = GatewayOptions::default();
        for (key, value) in &self.limits {
            // GatewayOptions takes 'static keys: the few limit names are leaked once per run.
            options
                .limits
                .push((Box::leak(key.clone().into_boxed_str()), *value));
        }
        options.extra_toml = format!("[cache]\nenabled = {cache_on}\n");
        // Each gateway of a run is its own audit instance (one process per
        // instance) with its own store, so arms do not share a writer.
        static GATEWAYS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = GATEWAYS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        options.extra_toml.push_str(&format!(
            "\n[audit]\nkey_dir = \"audit-keys-{n}\"\ndatabase = \"sqlite:audit-{n}.db\"\n"
        ));
        // Only when asked: gateways built before the option existed refuse the key.
        if self.audit_sync != "full" {
            options
                .extra_toml
                .push_str(&format!("sqlite_synchronous = \"{}\"\n", self.audit_sync));
        }
        options
    }
}

#[derive(Args, Debug)]
struct E2eArgs {
    #[command(flatten)]
    load: LoadArgs,
    /// The bench adapter's department.
    #[arg(long, default_value = "civil-affairs")]
    department: String,
    /// The bench adapter's added latency, ms.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Skip the nginx arm (it is skipped anyway, with the reason, when nginx is missing).
    #[arg(long)]
    no_nginx: bool,
    /// Skip the h2load cross-check.
    #[arg(long)]
    no_h2load: bool,
    /// Add arm (c'): a second gateway with the record cache on (and its own bench adapter).
    #[arg(long)]
    cache_on_arm: bool,
}

#[derive(Args, Debug)]
struct FanoutArgs {
    #[command(flatten)]
    load: LoadArgs,
    /// Every adapter's added latency, ms.
    #[arg(long, default_value_t = 5)]
    delay_ms: u64,
    /// The one department of the single-department fetch.
    #[arg(long, default_value = "civil-affairs")]
    department: String,
}

#[derive(Args, Debug)]
struct RssArgs {
    /// Fetches in flight (the load client's concurrency).
    #[arg(long, default_value_t = 2000)]
    in_flight: usize,
    #[arg(long, default_value_t = 20)]
    connections: usize,
    /// The adapter's added latency, ms: long enough that every task waits on it.
    #[arg(long, default_value_t = 3000)]
    delay_ms: u64,
    /// Seconds of load.
    #[arg(long, default_value_t = 12.0)]
    duration: f64,
    #[arg(long, default_value = "civil-affairs")]
    department: String,
    /// Extra `[limits]` entries for the gateway, e.g. `max_in_flight=4000` (repeatable).
    #[arg(long = "limit", value_parser = parse_limit)]
    limits: Vec<(String, u64)>,
    #[arg(long)]
    json: Option<PathBuf>,
}

fn parse_limit(s: &str) -> Result<(String, u64), String> {
    let (k, v) = s.split_once('=').ok_or("expected KEY=VALUE")?;
    Ok((
        k.trim().to_owned(),
        v.trim().parse().map_err(|e| format!("{e}"))?,
    ))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    xgate_tls::install_crypto_provider();
    match Cli::parse().command {
        Cmd::E2e(args) => e2e(args).await,
        Cmd::Fanout(args) => fanout(args).await,
        Cmd::Rss(args) => rss(args).await,
        Cmd::Replicas(args) => xgate_load::replicas::run(args).await,
        Cmd::Screen(args) => xgate_load::screening::run(args).await,
    }
}

/// min / median / max of one figure over runs.
#[derive(Debug, Clone, Copy, Serialize)]
struct Spread {
    min: f64,
    median: f64,
    max: f64,
}

fn spread(mut values: Vec<f64>) -> Spread {
    values.sort_by(f64::total_cmp);
    let pick = |i: usize| values.get(i).copied().unwrap_or(f64::NAN);
    let n = values.len();
    let median = if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        pick(n / 2)
    } else {
        (pick(n / 2 - 1) + pick(n / 2)) / 2.0
    };
    Spread {
        min: pick(0),
        median,
        max: pick(n.saturating_sub(1)),
    }
}

/// An arm's runs and their spreads.
#[derive(Debug, Serialize)]
struct ArmSummary {
    arm: String,
    runs: Vec<Report>,
    throughput: Spread,
    p50_ms: Spread,
    p99_ms: Spread,
    errors: u64,
}

fn summarise(arm: &str, runs: Vec<Report>) -> ArmSummary {
    let ms = |f: fn(&Report) -> u64| spread(runs.iter().map(|r| f(r) as f64 / 1000.0).collect());
    ArmSummary {
        arm: arm.to_owned(),
        throughput: spread(runs.iter().map(|r| r.throughput).collect()),
        p50_ms: ms(|r| r.p50_us),
        p99_ms: ms(|r| r.p99_us),
        errors: runs.iter().map(|r| r.errors).sum(),
        runs,
    }
}

fn print_arm(s: &ArmSummary) {
    println!(
        "{:<34} throughput {:>9.1} / {:>9.1} / {:>9.1} op/s   p50 {:>7.3} / {:>7.3} / {:>7.3} ms   p99 {:>7.3} / {:>7.3} / {:>7.3} ms   errors {}",
        s.arm,
        s.throughput.min,
        s.throughput.median,
        s.throughput.max,
        s.p50_ms.min,
        s.p50_ms.median,
        s.p50_ms.max,
        s.p99_ms.min,
        s.p99_ms.median,
        s.p99_ms.max,
        s.errors
    );
}

fn spec(load: &LoadArgs) -> Spec {
    Spec {
        concurrency: load.concurrency,
        connections: load.connections,
        warmup: Duration::from_secs_f64(load.warmup),
        duration: Duration::from_secs_f64(load.duration),
        timeout: Duration::from_secs(30),
    }
}

fn write_json(path: Option<&Path>, value: &impl Serialize) -> anyhow::Result<()> {
    if let Some(path) = path {
        std::fs::write(path, serde_json::to_string_pretty(value)?)
            .with_context(|| format!("writing `{}`", path.display()))?;
        println!("JSON report: {}", path.display());
    }
    Ok(())
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    format!("{cores} cores, {model}")
}

fn log(env: &TestEnv, name: &str) -> PathBuf {
    env.dir().join("logs").join(format!("{name}.log"))
}

/// Starts a bench adapter of `department`; registers with `gateway` when given.
async fn start_bench_adapter(
    env: &TestEnv,
    department: &str,
    delay_ms: u64,
    gateway: Option<&GatewayProcess>,
    records: Option<&Path>,
    plaintext: Option<SocketAddr>,
) -> anyhow::Result<(Process, SocketAddr)> {
    let tls = env.pki().department(department);
    let mut cmd = Command::new(bins::binary("xgate-bench-adapter")?);
    cmd.arg("--department")
        .arg(department)
        .arg("--delay-ms")
        .arg(delay_ms.to_string())
        .arg("--cert")
        .arg(&tls.cert)
        .arg("--key")
        .arg(&tls.key)
        .arg("--ca")
        .arg(&tls.ca)
        .env("RUST_LOG", "warn");
    if let Some(gateway) = gateway {
        cmd.arg("--gateway").arg(gateway.url());
    }
    if let Some(records) = records {
        cmd.arg("--records").arg(records);
    }
    if let Some(addr) = plaintext {
        cmd.arg("--plaintext-listen").arg(addr.to_string());
    }
    Process::start(
        &format!("xgate-bench-adapter {department}"),
        cmd,
        &log(env, &format!("bench-adapter-{department}")),
    )
    .await
}

/// A gateway with the repository's policies (the approval hall may read every shared type for
/// GENERAL-APPROVAL), the default audit log (SQLite, group commit) and schema checks. The
/// sample citizen has consented to the hall reading her conditional types (without it,
/// `policies/guards.cedar` denies them to a fetch without an approval item), so every type is
/// released as before the guard, and each fetch pays the consent lookup the guard implies.
async fn start_gateway(env: &TestEnv, options: &GatewayOptions) -> anyhow::Result<GatewayProcess> {
    let gateway = env.start_gateway(options).await?;
    let conditional = env
        .catalog()
        .record_types()
        .filter(|t| t.sharing_class == xgate_catalog::SharingClass::Conditional)
        .map(|t| t.id.clone())
        .collect();
    xgate_integration_tests::client::consent(
        gateway.addr(),
        &env.pki().platform(),
        &env.subjects().citizen,
        APPROVAL_HALL,
        GENERAL_APPROVAL,
        conditional,
    )
    .await?;
    Ok(gateway)
}

async fn wait_listening(addr: SocketAddr, what: &str) -> anyhow::Result<()> {
    xgate_integration_tests::wait::until(what, Duration::from_secs(20), || async move {
        tokio::net::TcpStream::connect(addr).await?;
        Ok(Some(()))
    })
    .await
}

/// A running nginx, stopped on drop.
struct Nginx {
    process: tokio::process::Child,
    addr: SocketAddr,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM, not SIGKILL: a killed master leaves its workers running
        // (orphaned, holding CPU and the port) into the next arm and run.
        if let Some(pid) = self.process.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            let until = std::time::Instant::now() + Duration::from_secs(3);
            while std::time::Instant::now() < until {
                if matches!(self.process.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.process.start_kill();
    }
}

async fn start_nginx(env: &TestEnv, upstream: SocketAddr) -> anyhow::Result<Option<Nginx>> {
    let Some(binary) = nginx::binary() else {
        println!(
            "arm (b) skipped: nginx is not installed (integration-tests/load/install-tools.sh installs it)"
        );
        return Ok(None);
    };
    let dir = env.dir().join("nginx");
    std::fs::create_dir_all(&dir)?;
    let addr: SocketAddr = format!("127.0.0.1:{}", xgate_load::free_port()?).parse()?;
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    let config = nginx::render(
        &nginx::ProxyConfig {
            listen: addr,
            upstream,
            proxy: env.pki().gateway(),
            workers,
        },
        &dir,
    )?;
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, config)?;
    let process = Command::new(binary)
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(&conf)
        .arg("-e")
        .arg(dir.join("error.log"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(log(env, "nginx-stderr"))?)
        .kill_on_drop(true)
        .spawn()
        .context("starting nginx")?;
    let nginx = Nginx { process, addr };
    wait_listening(addr, "nginx listening")
        .await
        .with_context(|| {
            format!(
                "nginx did not start; its error log:\n{}",
                xgate_integration_tests::process::log_tail(&dir.join("error.log"))
            )
        })?;
    Ok(Some(nginx))
}

#[derive(Serialize)]
struct E2eOutput {
    machine: String,
    department: String,
    record_types: Vec<String>,
    delay_ms: u64,
    concurrency: usize,
    connections: usize,
    arms: Vec<ArmSummary>,
    /// Median throughput ratios.
    c_over_b: Option<f64>,
    c_over_a: Option<f64>,
    h2load: Option<H2loadCheck>,
}

async fn e2e(args: E2eArgs) -> anyhow::Result<()> {
    let env = TestEnv::new()?;
    let catalog = env.catalog();
    let citizen = env.subjects().citizen.clone();
    let types = load::types_of(catalog, Some(&args.department), SubjectKind::ResidentId);
    anyhow::ensure!(
        !types.is_empty(),
        "`{}` has no personal record types",
        args.department
    );
    let gateway = start_gateway(&env, &args.load.gateway_options(args.load.cache == "on")).await?;
    let plaintext: SocketAddr = format!("127.0.0.1:{}", xgate_load::free_port()?).parse()?;
    let plaintext = (!args.no_h2load).then_some(plaintext);
    let (_adapter, adapter_addr) = start_bench_adapter(
        &env,
        &args.department,
        args.delay_ms,
        Some(&gateway),
        None,
        plaintext,
    )
    .await?;
    env.wait_for_sources(gateway.addr(), &types).await?;
    // Arm (c'): the same gateway configuration with the cache on, its own adapter.
    let cached = if args.cache_on_arm {
        let gateway = start_gateway(&env, &args.load.gateway_options(true)).await?;
        let (adapter, _) = start_bench_adapter(
            &env,
            &args.department,
            args.delay_ms,
            Some(&gateway),
            None,
            None,
        )
        .await?;
        env.wait_for_sources(gateway.addr(), &types).await?;
        Some((gateway, adapter))
    } else {
        None
    };
    let nginx = if args.no_nginx {
        println!("arm (b) skipped: --no-nginx");
        None
    } else {
        start_nginx(&env, adapter_addr).await?
    };
    println!("machine: {}", machine());
    println!(
        "department {} ({} types), adapter delay {} ms, concurrency {}, connections {}, {} runs x {} s (+{} s warm-up)",
        args.department,
        types.len(),
        args.delay_ms,
        args.load.concurrency,
        args.load.connections,
        args.load.runs,
        args.load.duration,
        args.load.warmup
    );
    let admin = env.pki().admin();
    let requester = env.pki().requester(APPROVAL_HALL);
    let lookup = load::lookup(SubjectKind::ResidentId, &citizen, &types);
    let fetch = load::fetch(SubjectKind::ResidentId, &citizen, &types, GENERAL_APPROVAL);
    let mut arms: Vec<(&str, Target, Call)> = vec![(
        "(a) direct to the adapter",
        Target {
            addr: adapter_addr,
            tls: Some(admin.clone()),
        },
        lookup.clone(),
    )];
    if let Some(nginx) = &nginx {
        arms.push((
            "(b) nginx grpc_pass",
            Target {
                addr: nginx.addr,
                tls: Some(admin.clone()),
            },
            lookup.clone(),
        ));
    }
    arms.push((
        if args.load.cache == "on" {
            "(c) xgate (policy+audit+schema), cache on"
        } else {
            "(c) xgate (policy+audit+schema)"
        },
        Target {
            addr: gateway.addr(),
            tls: Some(requester.clone()),
        },
        fetch.clone(),
    ));
    if let Some((cached, _)) = &cached {
        arms.push((
            "(c') xgate, record cache on",
            Target {
                addr: cached.addr(),
                tls: Some(requester),
            },
            fetch,
        ));
    }
    let spec = spec(&args.load);
    let mut results: Vec<Vec<Report>> = arms.iter().map(|_| Vec::new()).collect();
    for run in 1..=args.load.runs {
        for (i, (label, target, call)) in arms.iter().enumerate() {
            let report = load::run(label, target, vec![call.clone()], &spec).await?;
            println!("run {run}: {}", report.summary());
            if let Some(list) = results.get_mut(i) {
                list.push(report);
            }
        }
    }
    println!("\nmin / median / max over {} runs:", args.load.runs);
    let summaries: Vec<ArmSummary> = arms
        .iter()
        .zip(results)
        .map(|((label, _, _), runs)| summarise(label, runs))
        .collect();
    for s in &summaries {
        print_arm(s);
    }
    let median = |prefix: &str| {
        summaries
            .iter()
            .find(|s| s.arm.starts_with(prefix))
            .map(|s| s.throughput.median)
    };
    let c_over_b = median("(c)").zip(median("(b)")).map(|(c, b)| c / b);
    let c_over_a = median("(c)").zip(median("(a)")).map(|(c, a)| c / a);
    if let Some(r) = c_over_b {
        println!("c/b (median throughput) = {r:.3}   target >= 1.0");
    }
    if let Some(r) = c_over_a {
        println!("c/a (median throughput) = {r:.3}   target >= 0.6");
    }
    let h2load = match plaintext {
        Some(addr) => h2load_check(&env, addr, &types, &citizen, &args.load).await?,
        None => None,
    };
    let total_errors: u64 = summaries.iter().map(|s| s.errors).sum();
    let output = E2eOutput {
        machine: machine(),
        department: args.department.clone(),
        record_types: types,
        delay_ms: args.delay_ms,
        concurrency: args.load.concurrency,
        connections: args.load.connections,
        arms: summaries,
        c_over_b,
        c_over_a,
        h2load,
    };
    write_json(args.load.json.as_deref(), &output)?;
    drop(nginx);
    gateway.stop().await?;
    if let Some((cached, _)) = cached {
        cached.stop().await?;
    }
    anyhow::ensure!(total_errors == 0, "{total_errors} operations failed");
    Ok(())
}

/// h2load and this client against the adapter's plaintext listener, one after the other.
#[derive(Debug, Serialize)]
struct H2loadCheck {
    h2load_rps: f64,
    h2load_succeeded: u64,
    /// Answers the adapter itself counted during the h2load run (all FOUND / failed).
    adapter_ok: u64,
    adapter_failed: u64,
    xgate_load: Report,
}

async fn adapter_counts(addr: SocketAddr) -> anyhow::Result<(u64, u64)> {
    let target = Target { addr, tls: None };
    let mut client = DepartmentAdapterClient::new(target.connect().await?);
    let software = client
        .describe(DescribeRequest::default())
        .await?
        .into_inner()
        .software;
    parse_counts(&software).with_context(|| format!("unexpected Describe answer `{software}`"))
}

/// Parses `finished in 10.00s, 9203.40 req/s, ...` and `requests: ... N succeeded ...`.
fn parse_h2load(out: &str) -> Option<(f64, u64)> {
    let rps = out
        .lines()
        .find(|l| l.starts_with("finished in"))?
        .split(", ")
        .find(|p| p.ends_with("req/s"))?
        .trim_end_matches(" req/s")
        .trim()
        .parse()
        .ok()?;
    let succeeded = out
        .lines()
        .find(|l| l.starts_with("requests:"))?
        .split(", ")
        .find(|p| p.ends_with("succeeded"))?
        .trim_end_matches(" succeeded")
        .trim()
        .parse()
        .ok()?;
    Some((rps, succeeded))
}

async fn h2load_check(
    env: &TestEnv,
    addr: SocketAddr,
    types: &[String],
    citizen: &str,
    load_args: &LoadArgs,
) -> anyhow::Result<Option<H2loadCheck>> {
    if which("h2load").is_none() {
        println!("h2load cross-check skipped: h2load is not installed (install-tools.sh)");
        return Ok(None);
    }
    let Call::Lookup(request) = load::lookup(SubjectKind::ResidentId, citizen, types) else {
        anyhow::bail!("a lookup call is a Lookup");
    };
    // gRPC framing: no compression, 4-byte big-endian length, message.
    let message = request.encode_to_vec();
    let mut body = vec![0u8];
    body.extend_from_slice(&u32::try_from(message.len())?.to_be_bytes());
    body.extend_from_slice(&message);
    let body_path = env.dir().join("lookup.grpc");
    std::fs::write(&body_path, &body)?;
    // h2load: 4 connections x 8 streams; this client: the same 32 in flight over 4 connections.
    let (clients, streams) = (4usize, 8usize);
    let before = adapter_counts(addr).await?;
    let out = Command::new("h2load")
        .arg("-c")
        .arg(clients.to_string())
        .arg("-m")
        .arg(streams.to_string())
        .arg("-D")
        .arg(format!("{}", load_args.duration.ceil().max(1.0) as u64))
        .arg("--warm-up-time")
        .arg(format!("{}", load_args.warmup.ceil() as u64))
        .arg("-H")
        .arg("content-type: application/grpc")
        .arg("-H")
        .arg("te: trailers")
        .arg("-d")
        .arg(&body_path)
        .arg(format!("http://{addr}/xgate.v1.DepartmentAdapter/Lookup"))
        .output()
        .await
        .context("running h2load")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let after = adapter_counts(addr).await?;
    let (rps, succeeded) = parse_h2load(&text).with_context(|| {
        format!(
            "unexpected h2load output:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let (adapter_ok, adapter_failed) = (after.0 - before.0, after.1 - before.1);
    let spec = Spec {
        concurrency: clients * streams,
        connections: clients,
        ..spec(load_args)
    };
    let ours = load::run(
        "xgate-load plaintext",
        &Target { addr, tls: None },
        vec![Call::Lookup(request)],
        &spec,
    )
    .await?;
    println!(
        "\nh2load cross-check (plaintext listener of the same adapter, -c{clients} -m{streams}):"
    );
    println!(
        "h2load        {rps:>9.1} req/s, {succeeded} 2xx; the adapter counted {adapter_ok} all-FOUND answers and {adapter_failed} failed ones in that time"
    );
    println!("{}", ours.summary());
    if adapter_failed > 0 {
        println!(
            "WARNING: the adapter answered {adapter_failed} h2load requests with errors: h2load's rate is not all successes"
        );
    }
    Ok(Some(H2loadCheck {
        h2load_rps: rps,
        h2load_succeeded: succeeded,
        adapter_ok,
        adapter_failed,
        xgate_load: ours,
    }))
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

/// Records of the departments with binaries of their own, read from their real adapters
/// (seeded from the synthetic population) by Lookups as the operator.
async fn harvest(env: &TestEnv, department: &str) -> anyhow::Result<PathBuf> {
    let db = env.dir().join("data").join(format!("{department}.db"));
    AdapterProcess::seed(department, &db, &log(env, &format!("seed-{department}"))).await?;
    let tls = env.pki().department(department);
    let mut cmd = Command::new(bins::binary(&bins::adapter_name(department))?);
    cmd.arg("serve")
        .arg("--db")
        .arg(&db)
        .arg("--cert")
        .arg(&tls.cert)
        .arg("--key")
        .arg(&tls.key)
        .arg("--ca")
        .arg(&tls.ca);
    let (mut process, addr) =
        Process::start(department, cmd, &log(env, &format!("harvest-{department}"))).await?;
    let target = Target {
        addr,
        tls: Some(env.pki().admin()),
    };
    let mut client = DepartmentAdapterClient::new(target.connect().await?);
    let mut file = RecordFile::new();
    let subjects = env.subjects();
    for (kind, id) in [
        (SubjectKind::ResidentId, subjects.citizen.clone()),
        (SubjectKind::Uscc, subjects.company.clone()),
    ] {
        let types = load::types_of(env.catalog(), Some(department), kind);
        if types.is_empty() {
            continue;
        }
        let Call::Lookup(request) = load::lookup(kind, &id, &types) else {
            anyhow::bail!("a lookup call is a Lookup");
        };
        let answers = client.lookup(request).await?.into_inner().answers;
        let by_type = file.entry(id.clone()).or_default();
        for answer in answers {
            let records = answer
                .records_json
                .iter()
                .map(|bytes| serde_json::from_slice(bytes))
                .collect::<Result<Vec<serde_json::Value>, _>>()?;
            by_type.insert(answer.record_type, records);
        }
    }
    process.kill().await?;
    let path = env.dir().join(format!("records-{department}.json"));
    std::fs::write(&path, serde_json::to_vec(&file)?)?;
    Ok(path)
}

/// Every catalog department, in catalog order.
fn departments(env: &TestEnv) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in env.catalog().record_types() {
        if !out.contains(&t.department) {
            out.push(t.department.clone());
        }
    }
    out
}

/// The gateway and a bench adapter for every department, each with `delay_ms`.
async fn twenty(
    env: &TestEnv,
    delay_ms: u64,
    options: &GatewayOptions,
) -> anyhow::Result<(GatewayProcess, Vec<(String, Process, SocketAddr)>)> {
    let gateway = start_gateway(env, options).await?;
    let own: Vec<&str> = xgate_integration_tests::DEPARTMENTS.to_vec();
    let mut adapters = Vec::new();
    for department in departments(env) {
        let records = if own.contains(&department.as_str()) {
            Some(harvest(env, &department).await?)
        } else {
            None
        };
        let (process, addr) = start_bench_adapter(
            env,
            &department,
            delay_ms,
            Some(&gateway),
            records.as_deref(),
            None,
        )
        .await?;
        adapters.push((department, process, addr));
    }
    let all: Vec<String> = env.catalog().record_types().map(|t| t.id.clone()).collect();
    env.wait_for_sources(gateway.addr(), &all).await?;
    Ok((gateway, adapters))
}

#[derive(Serialize)]
struct FanoutOutput {
    machine: String,
    delay_ms: u64,
    concurrency: usize,
    adapter_direct: ArmSummary,
    one_department: ArmSummary,
    twenty_departments: ArmSummary,
    /// Gateway (63 types, 20 departments) minus the adapter's own latency, medians over runs.
    added_p50_ms: f64,
    added_p99_ms: f64,
    /// p50(20 departments) / p50(1 department), medians over runs.
    p50_ratio: f64,
}

async fn fanout(args: FanoutArgs) -> anyhow::Result<()> {
    let env = TestEnv::new()?;
    let (gateway, adapters) = twenty(
        &env,
        args.delay_ms,
        &args.load.gateway_options(args.load.cache == "on"),
    )
    .await?;
    println!("machine: {}", machine());
    println!(
        "{} departments, adapter delay {} ms, concurrency {}, {} runs x {} s (+{} s warm-up)",
        adapters.len(),
        args.delay_ms,
        args.load.concurrency,
        args.load.runs,
        args.load.duration,
        args.load.warmup
    );
    let subjects = env.subjects().clone();
    let one_types = load::types_of(
        env.catalog(),
        Some(&args.department),
        SubjectKind::ResidentId,
    );
    let personal = load::types_of(env.catalog(), None, SubjectKind::ResidentId);
    let company = load::types_of(env.catalog(), None, SubjectKind::Uscc);
    let adapter_addr = adapters
        .iter()
        .find(|(d, _, _)| *d == args.department)
        .map(|(_, _, a)| *a)
        .context("no adapter of the single department")?;
    let direct = Target {
        addr: adapter_addr,
        tls: Some(env.pki().admin()),
    };
    let gw = Target {
        addr: gateway.addr(),
        tls: Some(env.pki().requester(APPROVAL_HALL)),
    };
    let arms: Vec<(String, &Target, Vec<Call>)> = vec![
        (
            format!("adapter direct ({} types)", one_types.len()),
            &direct,
            vec![load::lookup(
                SubjectKind::ResidentId,
                &subjects.citizen,
                &one_types,
            )],
        ),
        (
            format!("xgate, 1 department ({} types)", one_types.len()),
            &gw,
            vec![load::fetch(
                SubjectKind::ResidentId,
                &subjects.citizen,
                &one_types,
                GENERAL_APPROVAL,
            )],
        ),
        (
            format!(
                "xgate, 20 departments ({} types)",
                personal.len() + company.len()
            ),
            &gw,
            vec![
                load::fetch(
                    SubjectKind::ResidentId,
                    &subjects.citizen,
                    &personal,
                    GENERAL_APPROVAL,
                ),
                load::fetch(
                    SubjectKind::Uscc,
                    &subjects.company,
                    &company,
                    GENERAL_APPROVAL,
                ),
            ],
        ),
    ];
    let spec = spec(&args.load);
    let mut results: Vec<Vec<Report>> = vec![Vec::new(), Vec::new(), Vec::new()];
    for run in 1..=args.load.runs {
        for (i, (label, target, calls)) in arms.iter().enumerate() {
            let report = load::run(label, target, calls.clone(), &spec).await?;
            println!("run {run}: {}", report.summary());
            if let Some(list) = results.get_mut(i) {
                list.push(report);
            }
        }
    }
    let mut summaries = arms
        .iter()
        .zip(results)
        .map(|((l, _, _), r)| summarise(l, r));
    let (Some(direct_s), Some(one), Some(all)) =
        (summaries.next(), summaries.next(), summaries.next())
    else {
        anyhow::bail!("three arms expected");
    };
    println!("\nmin / median / max over {} runs:", args.load.runs);
    for s in [&direct_s, &one, &all] {
        print_arm(s);
    }
    let added_p50 = all.p50_ms.median - direct_s.p50_ms.median;
    let added_p99 = all.p99_ms.median - direct_s.p99_ms.median;
    let ratio = all.p50_ms.median / one.p50_ms.median;
    println!(
        "added latency (63 types over 20 departments minus the adapter's own): p50 {added_p50:.3} ms, p99 {added_p99:.3} ms   target p99 <= 1 ms"
    );
    println!("p50(20 departments) / p50(1 department) = {ratio:.3}   target <= 1.3");
    let errors = direct_s.errors + one.errors + all.errors;
    let output = FanoutOutput {
        machine: machine(),
        delay_ms: args.delay_ms,
        concurrency: args.load.concurrency,
        adapter_direct: direct_s,
        one_department: one,
        twenty_departments: all,
        added_p50_ms: added_p50,
        added_p99_ms: added_p99,
        p50_ratio: ratio,
    };
    write_json(args.load.json.as_deref(), &output)?;
    drop(adapters);
    gateway.stop().await?;
    anyhow::ensure!(errors == 0, "{errors} operations failed");
    Ok(())
}

#[derive(Serialize)]
struct RssOutput {
    machine: String,
    in_flight: usize,
    delay_ms: u64,
    idle_mib: f64,
    peak_mib: f64,
    after_mib: f64,
    samples: usize,
    load: Report,
}

async fn rss(args: RssArgs) -> anyhow::Result<()> {
    let env = TestEnv::new()?;
    // Room for the slow adapter: neither the fetch's nor the adapter call's deadline is hit.
    let limit_durations = [
        "default_fetch_timeout",
        "max_fetch_timeout",
        "adapter_timeout_cap",
    ]
    .map(|key| (key, Duration::from_secs(120)))
    .to_vec();
    // Admission above the load: the whole load is in flight, none shed.
    let mut limits: Vec<(String, u64)> = vec![("max_in_flight".into(), 2 * args.in_flight as u64)];
    limits.extend(args.limits.iter().cloned());
    // Cache off: the load repeats one subject, and cache hits (or fetches
    // coalesced onto one call) would not stay in flight. The per-adapter
    // bulkhead above the load, so every fetch waits on its own adapter call.
    let mut options = GatewayOptions {
        extra_toml: format!(
            "[cache]\nenabled = false\n\n[upstream]\nmax_concurrent_calls = {}\n",
            2 * args.in_flight
        ),
        limit_durations,
        ..GatewayOptions::default()
    };
    for (key, value) in limits {
        // GatewayOptions takes 'static keys: the few limit names are leaked once per run.
        options
            .limits
            .push((Box::leak(key.into_boxed_str()), value));
    }
    let mut gateway = start_gateway(&env, &options).await?;
    let types = load::types_of(
        env.catalog(),
        Some(&args.department),
        SubjectKind::ResidentId,
    );
    let (_adapter, _) = start_bench_adapter(
        &env,
        &args.department,
        args.delay_ms,
        Some(&gateway),
        None,
        None,
    )
    .await?;
    env.wait_for_sources(gateway.addr(), &types).await?;
    let pid = gateway.process().pid().context("the gateway has exited")?;
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let idle = proc::rss_bytes(pid)?;
    println!("machine: {}", machine());
    println!(
        "gateway idle (adapter registered, no fetch yet): VmRSS {:.1} MiB",
        mib(idle)
    );
    let spec = Spec {
        concurrency: args.in_flight,
        connections: args.connections,
        warmup: Duration::ZERO,
        duration: Duration::from_secs_f64(args.duration),
        timeout: Duration::from_secs(120),
    };
    let target = Target {
        addr: gateway.addr(),
        tls: Some(env.pki().requester(APPROVAL_HALL)),
    };
    let call = load::fetch(
        SubjectKind::ResidentId,
        &env.subjects().citizen,
        &types,
        GENERAL_APPROVAL,
    );
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let sampler = tokio::spawn(async move {
        let mut peak = 0u64;
        let mut samples = 0usize;
        loop {
            if let Ok(rss) = proc::rss_bytes(pid) {
                peak = peak.max(rss);
                samples += 1;
            }
            tokio::select! {
                _ = &mut stop_rx => break,
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
        (peak, samples)
    });
    let report = load::run("xgate, slow adapter", &target, vec![call], &spec).await?;
    let _ = stop_tx.send(());
    let (peak, samples) = sampler.await.context("the sampler panicked")?;
    let after = proc::rss_bytes(pid)?;
    println!("{}", report.summary());
    println!(
        "gateway with {} fetches in flight (adapter delay {} ms): peak VmRSS {:.1} MiB ({samples} samples); after the load {:.1} MiB   targets: idle <= 50 MiB, in flight <= 300 MiB",
        args.in_flight,
        args.delay_ms,
        mib(peak),
        mib(after)
    );
    let errors = report.errors;
    write_json(
        args.json.as_deref(),
        &RssOutput {
            machine: machine(),
            in_flight: args.in_flight,
            delay_ms: args.delay_ms,
            idle_mib: mib(idle),
            peak_mib: mib(peak),
            after_mib: mib(after),
            samples,
            load: report,
        },
    )?;
    gateway.stop().await?;
    anyhow::ensure!(errors == 0, "{errors} fetches failed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_are_min_median_max() {
        let s = spread(vec![3.0, 1.0, 2.0]);
        assert_eq!((s.min, s.median, s.max), (1.0, 2.0, 3.0));
        assert_eq!(spread(vec![4.0, 1.0, 2.0, 3.0]).median, 2.5);
    }

    #[test]
    fn parses_h2load_totals() {
        let out = "starting benchmark...\nfinished in 10.00s, 9203.40 req/s, 1.2MB/s\nrequests: 92034 total, 92066 started, 92034 done, 92030 succeeded, 4 failed, 0 errored, 0 timeout\n";
        assert_eq!(parse_h2load(out), Some((9203.40, 92030)));
        assert_eq!(parse_h2load("garbage"), None);
    }
}
