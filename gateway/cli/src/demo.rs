//! `xgate demo`: the whole exchange on one machine, on the embedded
//! default (SQLite, dev PKI), in one command.
//!
//! It creates a working folder with the dev PKI, the built-in policies and
//! seeded department databases; starts the gateway (in this process) and
//! each department adapter (its own binary, its own process) on loopback
//! ports; lets the adapters register through the Registry API; then fetches
//! every personal record type of a sample citizen and every company record
//! type of a sample company as the demo approval hall.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::StreamExt as _;
use serde_json::json;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};
use xgate_catalog::{Catalog, SubjectKind};
use xgate_proto::v1::exchange_client::ExchangeClient;
use xgate_proto::v1::{FetchRequest, RecordResult, Relation, Representation, Subject};
use xgate_tls::{Identity, TlsFiles, devpki};

use super::fetch::{header, result_json, row, summary};
use xgate::config::{Config, Limits, TlsConfig};
use xgate_proto::kind::to_proto as proto_kind;

mod evaluation;
mod replicas;
mod screening;

/// Requesters the demo's PKI and policies know.
pub const REQUESTERS: &[&str] = &[
    "approval-hall-demo",
    "provident-fund-bozhou",
    "market-regulation-bozhou",
    "no-grant-bureau",
    screening::ELDERLY_SCREENER,
    screening::EXEMPTION_SCREENER,
];

/// The departments with an adapter binary of their own next to `xgate`
/// (`xgate-adapter-<department>`); every other department of the catalog is
/// served by the generic SQL adapter from its `xgate-demo-data` database.
pub const ADAPTERS: &[&str] = &["public-security", "natural-resources", "tax"];

/// How a demo department is served.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// Its own adapter binary, with `seed` and `serve` subcommands.
    Native,
    /// `xgate-adapter-sql` with the department's mapping file.
    Sql,
}

fn source_of(department: &str) -> Source {
    if ADAPTERS.contains(&department) {
        Source::Native
    } else {
        Source::Sql
    }
}

const DEMO_REQUESTER: &str = "approval-hall-demo";
const DEMO_PURPOSE: &str = "GENERAL-APPROVAL";
const PF_REQUESTER: &str = "provident-fund-bozhou";
const PF_ITEM: &str = "PF-WITHDRAWAL";
const NO_GRANT_REQUESTER: &str = "no-grant-bureau";
/// The demo's subject-code issuer, standing in for the province's identity
/// platform (the citizen's app shows its codes).
pub const CODE_ISSUER: &str = "demo-identity-platform";
/// The item an elderly citizen's child claims for her.
const PENSION_ITEM: &str = "PENSION-CLAIM";

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Working folder (created; databases re-seeded, PKI kept between runs).
    #[arg(long, default_value = "xgate-demo")]
    pub workdir: PathBuf,
    /// Gateway listen address.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: std::net::SocketAddr,
    /// Address of the web console (HTTPS; `xgate console login` signs in).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub console_listen: std::net::SocketAddr,
    /// Exit after the fetches instead of serving on.
    #[arg(long)]
    pub once: bool,
    /// Print the results as one JSON document on stdout (progress goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Once the demo's own fetches are done and it keeps serving, write FILE:
    /// a JSON document with the gateway URL, the PKI folder, the requesters,
    /// subjects, purpose and approval item, for scripts that wait for it
    /// (e.g. examples/python). Removed again when the demo stops.
    #[arg(long, value_name = "FILE", conflicts_with = "once")]
    pub ready_file: Option<PathBuf>,
    /// Run N gateway replicas (separate `xgate serve` processes) on one
    /// PostgreSQL database behind HAProxy in TCP passthrough; the demo's
    /// fetches go through the balancer. 1 (the default): one gateway in this
    /// process.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub replicas: u16,
    /// The PostgreSQL database for the gateway's state and audit log
    /// (created if missing). Default: SQLite files in the working folder for
    /// one gateway; `postgres://postgres@127.0.0.1:5432/xgate_demo` for replicas.
    #[arg(long, value_name = "URL")]
    pub postgres: Option<String>,
    /// Run even a single gateway as a replica behind HAProxy (`--replicas`).
    #[arg(long)]
    pub balanced: bool,
}

/// The replicas' database when `--postgres` is not given.
pub const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/xgate_demo";

/// Where the adapter binaries are: next to this executable.
fn adapter_binary(department: &str) -> anyhow::Result<PathBuf> {
    sibling_binary(&format!("xgate-adapter-{department}"))
}

fn sibling_binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the xgate executable")?;
    let dir = exe.parent().context("xgate executable has no folder")?;
    let bin = dir.join(name);
    if !bin.exists() {
        anyhow::bail!(
            "adapter binary `{}` not found; build the whole workspace first (`cargo build --release`)",
            bin.display()
        );
    }
    Ok(bin)
}

fn progress(line: &str) {
    eprintln!("demo: {line}");
}

/// A running adapter process, killed when dropped.
struct AdapterProcess {
    department: String,
    addr: String,
    child: Child,
}

/// Seeds a department's database: its own adapter's `seed`, or for the SQL
/// departments `xgate-demo-seed`.
async fn seed(department: &str, db: &Path, log: &Path) -> anyhow::Result<()> {
    let log = std::fs::File::create(log)?;
    let mut command = match source_of(department) {
        Source::Native => {
            let mut c = Command::new(adapter_binary(department)?);
            c.arg("seed").arg("--db").arg(db);
            c
        }
        Source::Sql => {
            let mut c = Command::new(sibling_binary("xgate-demo-seed")?);
            c.arg("--out")
                .arg(db.parent().context("database path has no folder")?)
                .args(["--department", department]);
            c
        }
    };
    let status = command
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()
        .await
        .with_context(|| format!("seeding the {department} database"))?;
    if !status.success() {
        anyhow::bail!(
            "seeding the {department} database failed ({status}); see the log in the working folder"
        );
    }
    Ok(())
}

async fn spawn_adapter(
    department: &str,
    db: &Path,
    tls: &TlsFiles,
    gateway: &str,
    log: &Path,
) -> anyhow::Result<AdapterProcess> {
    let log = std::fs::File::create(log)?;
    let mut command = match source_of(department) {
        Source::Native => {
            let mut c = Command::new(adapter_binary(department)?);
            c.arg("serve").arg("--db").arg(db);
            c
        }
        Source::Sql => {
            let folder = db.parent().context("database path has no folder")?;
            let mapping = folder.join(format!("{department}.toml"));
            let text = xgate_demo_data::mapping(department)
                .with_context(|| format!("no demo mapping for department `{department}`"))?;
            std::fs::write(&mapping, text)
                .with_context(|| format!("writing {}", mapping.display()))?;
            let mut c = Command::new(sibling_binary("xgate-adapter-sql")?);
            c.arg("--mapping")
                .arg(&mapping)
                .arg("--database-url")
                .arg(format!("sqlite:{}?mode=ro", db.display()));
            c
        }
    };
    // `--replace`: a demo run in a used folder finds the last run's
    // registrations, which name that run's ports; this run's adapters replace them.
    let mut child = command
        .args(["--listen", "127.0.0.1:0", "--gateway", gateway, "--replace"])
        .arg("--cert")
        .arg(&tls.cert)
        .arg("--key")
        .arg(&tls.key)
        .arg("--ca")
        .arg(&tls.ca)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting the {department} adapter"))?;
    let addr = listening_addr(&mut child, &format!("the {department} adapter")).await?;
    Ok(AdapterProcess {
        department: department.to_owned(),
        addr,
        child,
    })
}

/// Reads a child's first stdout line, `listening on ADDR`, and keeps
/// draining its stdout so it never blocks on a full pipe.
async fn listening_addr(child: &mut Child, what: &str) -> anyhow::Result<String> {
    let stdout = child.stdout.take().context("child stdout was not piped")?;
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .with_context(|| format!("{what} did not start within 20 s"))??
        .with_context(|| format!("{what} exited at start; see its log"))?;
    let addr = first
        .strip_prefix("listening on ")
        .with_context(|| format!("unexpected first line from {what}: {first}"))?
        .to_owned();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(addr)
}

/// The synthetic population's citizen with gaps (no marriage, no vehicle...).
pub fn gappy_citizen() -> String {
    let population = xgate_synth::Population::generate(xgate_synth::GAPPY_CITIZEN + 1, 1);
    population
        .citizens
        .get(xgate_synth::GAPPY_CITIZEN as usize)
        .map(|c| c.id_number.clone())
        .unwrap_or_default()
}

/// The demo subjects: the synthetic population's sample citizen and company.
pub fn sample_subjects() -> (String, String) {
    let population = xgate_synth::Population::generate(2, 1);
    let citizen = population
        .citizens
        .get(xgate_synth::SAMPLE_CITIZEN as usize)
        .map(|c| c.id_number.clone())
        .unwrap_or_default();
    let company = population
        .companies
        .get(xgate_synth::SAMPLE_COMPANY as usize)
        .map(|c| c.uscc.clone())
        .unwrap_or_default();
    (citizen, company)
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    if args.replicas > 1 || args.balanced {
        return replicas::run(args).await;
    }
    let started = Instant::now();
    let (work, catalog, pki) = prepare_workdir(&args.workdir)?;
    let departments: Vec<String> = catalog.departments().map(|d| d.id.clone()).collect();
    seed_all(&work, &departments).await?;

    if let Some(url) = &args.postgres {
        replicas::ensure_database(url).await?;
    }
    let issuer = code_issuer(&work)?;
    let gateway = xgate::server::start(&gateway_config(
        &args,
        &work,
        &pki,
        &issuer.public_key_hex(),
    ))
    .await?;
    let url = format!("https://{}", gateway.addr);
    progress(&format!("gateway listening on {url}"));
    if let Some(addr) = gateway.metrics_addr {
        progress(&format!("metrics at http://{addr}/metrics"));
    }
    let console = gateway
        .console
        .as_ref()
        .map(|c| c.public_url().to_owned())
        .unwrap_or_default();
    progress(&format!("web console at {console}"));
    let adapters = start_adapters(&work, &pki, &departments, &url).await?;
    wait_for_registrations(&gateway, &catalog, &adapters).await?;
    progress("all adapters registered through the Registry API");

    let outcome = Outcome::fetch(&url, &pki, &catalog, &issuer, &work).await?;
    if args.json {
        print_json(&outcome, &url, None, &console)?;
    } else {
        print_tables(&outcome)?;
    }
    // Every decision above is in the audit log; sign the head and check it.
    let auditor = &gateway.state.auditor;
    auditor.checkpoint().await?;
    let report = auditor.verify().await?;
    if args.json {
        progress(&report.to_string());
    } else {
        crate::outln!()?;
        crate::outln!("{report}")?;
    }
    progress(&format!("done in {:.1} s", started.elapsed().as_secs_f64()));

    if !args.once {
        print_how_to_call(&url, &work, &outcome.citizen)?;
        print_console_login(&url, &console, &work)?;
        let mut ready = ready_document(&url, &work, &outcome);
        ready["console"] = json!(console);
        serve_until_stopped(&args, ready).await?;
    }
    for mut adapter in adapters {
        let _ = adapter.child.kill().await;
    }
    gateway.stop().await?;
    Ok(())
}

/// The working folder with its dev PKI and the built-in policies; returns
/// its canonical path.
fn prepare_workdir(workdir: &Path) -> anyhow::Result<(PathBuf, Catalog, devpki::DevPki)> {
    for sub in ["pki", "data", "logs", "policies"] {
        std::fs::create_dir_all(workdir.join(sub))
            .with_context(|| format!("creating {}", workdir.join(sub).display()))?;
    }
    let work = workdir.canonicalize()?;
    progress(&format!("working folder {}", work.display()));
    let catalog = Catalog::builtin()?;
    let pki = super::certs::init_or_complete(
        &work.join("pki"),
        &super::certs::demo_identities(&catalog),
    )?;
    for (name, text) in xgate_policy::PolicySet::builtin_files() {
        std::fs::write(work.join("policies").join(&name), text)?;
    }
    Ok((work, catalog, pki))
}

/// The demo issuer of subject codes: its key in the working folder's PKI,
/// created on the first run.
fn code_issuer(work: &Path) -> anyhow::Result<xgate_code::Issuer> {
    let path = work.join("pki").join("code-issuer.pk8");
    if !path.exists() {
        crate::code::keygen(CODE_ISSUER, &path)?;
    }
    crate::code::load_issuer(CODE_ISSUER, &path)
}

/// Seeds every department's database, two at a time: seeding is CPU-bound
/// and the machine may be small.
async fn seed_all(work: &Path, departments: &[String]) -> anyhow::Result<()> {
    let seeding = futures::stream::iter(departments.iter().map(|d| {
        let db = work.join("data").join(format!("{d}.db"));
        let log = work.join("logs").join(format!("seed-{d}.log"));
        async move { seed(d, &db, &log).await }
    }))
    .buffer_unordered(2)
    .collect::<Vec<_>>()
    .await;
    seeding.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    progress(&format!(
        "seeded {} department databases ({} by their own adapters, {} for the SQL adapter)",
        departments.len(),
        ADAPTERS.len(),
        departments.len() - ADAPTERS.len()
    ));
    Ok(())
}

/// The in-process gateway's configuration: defaults, the demo's files, and
/// metrics on a free loopback port.
fn gateway_config(
    args: &DemoArgs,
    work: &Path,
    pki: &devpki::DevPki,
    code_issuer_key: &str,
) -> Config {
    let gateway_files = pki.files(&Identity::Gateway("xgate".into()));
    Config {
        listen: args.listen,
        tls: TlsConfig {
            cert: gateway_files.cert,
            key: gateway_files.key,
            ca: gateway_files.ca,
        },
        catalog_dir: None,
        policies_dir: work.join("policies"),
        // The demo rewrites its policy directory at start; it is not edited live.
        watch_policies: false,
        database: args
            .postgres
            .as_ref()
            .map_or_else(|| work.join("data").join("gateway.db"), PathBuf::from),
        limits: Limits::default(),
        audit: xgate::config::AuditConfig {
            database: args.postgres.clone(),
            // A URL has no folder to keep the instance's keys beside.
            key_dir: args.postgres.as_ref().map(|_| work.join("audit-keys")),
            ..xgate::config::AuditConfig::default()
        },
        cache: xgate::config::CacheConfig::default(),
        upstream: xgate::config::UpstreamConfig::default(),
        telemetry: xgate::config::TelemetryConfig {
            otlp_endpoint: None,
            metrics_listen: Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
        },
        subject_codes: xgate::config::SubjectCodesConfig {
            issuers: [(CODE_ISSUER.to_owned(), code_issuer_key.to_owned())].into(),
        },
        console: Some(xgate::config::ConsoleConfig::on(args.console_listen)),
    }
}

/// One adapter process per department, all started at once.
async fn start_adapters(
    work: &Path,
    pki: &devpki::DevPki,
    departments: &[String],
    url: &str,
) -> anyhow::Result<Vec<AdapterProcess>> {
    let starting = departments.iter().map(|d| {
        let tls = pki.files(&Identity::Department(d.clone()));
        let db = work.join("data").join(format!("{d}.db"));
        let log = work.join("logs").join(format!("adapter-{d}.log"));
        async move { spawn_adapter(d, &db, &tls, url, &log).await }
    });
    let adapters = futures::future::try_join_all(starting).await?;
    progress(&format!(
        "{} adapters listening ({} of them xgate-adapter-sql)",
        adapters.len(),
        adapters.len() - ADAPTERS.len()
    ));
    Ok(adapters)
}

/// A fetch made with a scanned subject code, and the same code again.
struct CodeScan {
    token: String,
    results: Vec<RecordResult>,
    /// Why the replayed code was refused.
    replay: String,
}

/// "Family agency": the sample citizen claims her elderly mother's pension
/// (the gateway checks the household registration at public security
/// first); a stranger claiming to be a child is refused. Then the citizen's
/// spouse applies for the withdrawal item in the citizen's place (checked at
/// civil affairs), the former spouse tries the same, and the attorney.
struct Agency {
    /// The sample citizen's mother, 65 or older.
    elderly: String,
    /// The elderly citizen's pension claim, made by her child.
    pension: Vec<RecordResult>,
    stranger: String,
    /// Why the stranger was refused.
    stranger_refused: String,
    spouse: String,
    results: Vec<RecordResult>,
    former_spouse: String,
    /// Why the former spouse was refused.
    former_refused: String,
    /// The citizen's attorney (a notarised power covering the item).
    attorney: String,
    by_attorney: Vec<RecordResult>,
}

/// What the demo's fetches answered.
struct Outcome {
    citizen: String,
    company: String,
    /// Every personal record type of the sample citizen.
    personal: Vec<RecordResult>,
    /// Every company record type of the sample company.
    corporate: Vec<RecordResult>,
    /// The two fetches above, in parallel.
    fetch_elapsed: Duration,
    gappy_id: String,
    /// Every personal type of the citizen with gaps in her records.
    gappy: Vec<RecordResult>,
    /// The provident fund's withdrawal item: only the views it names.
    withdrawal: Vec<RecordResult>,
    /// A bureau without a grant.
    refused: Vec<RecordResult>,
    /// The citizen's app shows a subject code; the hall scans it and fetches.
    code_scan: CodeScan,
    agency: Agency,
    /// A rating and an objection, worked by the owning department.
    evaluation: evaluation::Evaluated,
    /// The demo population screened for the elderly allowance and the
    /// companies for the small-taxpayer exemption, checked against the data.
    screening: (screening::ItemRun, screening::ItemRun),
    /// Per fetch above (`citizen`, `company`, ...), the audit chain (gateway
    /// instance) of its receipt: the replica that answered.
    answered_by: Vec<(&'static str, String)>,
}

impl Outcome {
    /// Every fetch on a connection of its own: behind a balancer, which
    /// spreads connections, they reach different replicas.
    async fn fetch(
        url: &str,
        pki: &devpki::DevPki,
        catalog: &Catalog,
        issuer: &xgate_code::Issuer,
        work: &Path,
    ) -> anyhow::Result<Self> {
        let (citizen, company) = sample_subjects();
        let hall = pki.files(&Identity::Requester(DEMO_REQUESTER.into()));
        let fetch_started = Instant::now();
        let (personal, corporate) = tokio::try_join!(
            fetch_all(url, &hall, catalog, SubjectKind::ResidentId, &citizen),
            fetch_all(url, &hall, catalog, SubjectKind::Uscc, &company),
        )?;
        let fetch_elapsed = fetch_started.elapsed();
        // The citizen with gaps in her records: what she lacks comes back NOT_FOUND.
        let gappy_id = gappy_citizen();
        let gappy = fetch_all(url, &hall, catalog, SubjectKind::ResidentId, &gappy_id).await?;
        // Policies at work: the provident fund's withdrawal item gets exactly the
        // views the item names; a bureau without a grant gets nothing.
        let pf_files = pki.files(&Identity::Requester(PF_REQUESTER.into()));
        let withdrawal = fetch_request(
            url,
            &pf_files,
            FetchRequest {
                approval_item: PF_ITEM.into(),
                ..subject_request(SubjectKind::ResidentId, &citizen)
            },
        )
        .await?;
        let nobody_files = pki.files(&Identity::Requester(NO_GRANT_REQUESTER.into()));
        let refused = fetch_request(
            url,
            &nobody_files,
            FetchRequest {
                record_types: vec!["real_estate_title".into()],
                purpose: DEMO_PURPOSE.into(),
                ..subject_request(SubjectKind::ResidentId, &citizen)
            },
        )
        .await?;
        let (code_scan, scanned_by) = scan_code(url, &hall, catalog, issuer, &citizen).await?;
        let (agency, agency_by) = family_agency(url, &hall, &pf_files, &citizen).await?;
        let evaluation = evaluation::run(url, pki, &citizen).await?;
        let screening = screening::run(url, pki, work).await?;
        Ok(Self {
            screening,
            citizen,
            company,
            code_scan,
            agency,
            evaluation,
            answered_by: vec![
                ("citizen", personal.1),
                ("company", corporate.1),
                ("gappy_citizen", gappy.1),
                ("provident_fund_withdrawal", withdrawal.1),
                ("no_grant", refused.1),
                ("subject_code", scanned_by),
                ("family_agency", agency_by),
            ],
            personal: personal.0,
            corporate: corporate.0,
            fetch_elapsed,
            gappy_id,
            gappy: gappy.0,
            withdrawal: withdrawal.0,
            refused: refused.0,
        })
    }

    /// The sample citizen's and company's results together.
    fn all(&self) -> Vec<RecordResult> {
        self.personal
            .iter()
            .chain(self.corporate.iter())
            .cloned()
            .collect()
    }

    /// The types the citizen with gaps lacks.
    fn gappy_missing(&self) -> Vec<&str> {
        self.gappy
            .iter()
            .filter(|r| r.status == xgate_proto::v1::RecordStatus::NotFound as i32)
            .map(|r| r.record_type.as_str())
            .collect()
    }
}

/// The personal types the catalog shares only conditionally: without an
/// approval item, the hall reads them in full only on the citizen's say.
fn conditional_types(catalog: &Catalog) -> Vec<String> {
    catalog
        .record_types()
        .filter(|t| {
            t.subject_kind == SubjectKind::ResidentId
                && t.sharing_class == xgate_catalog::SharingClass::Conditional
        })
        .map(|t| t.id.clone())
        .collect()
}

/// The citizen's app issues a code scoped to the demo hall; the hall
/// fetches the conditional types with it (no ID typed; DENIED in the
/// hall's fetch without it), then tries the same code again.
async fn scan_code(
    url: &str,
    hall: &TlsFiles,
    catalog: &Catalog,
    issuer: &xgate_code::Issuer,
    citizen: &str,
) -> anyhow::Result<(CodeScan, String)> {
    let scope = xgate_code::Scope {
        requester: Some(DEMO_REQUESTER.into()),
        purpose: Some(DEMO_PURPOSE.into()),
        ..xgate_code::Scope::default()
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let token = issuer.issue(SubjectKind::ResidentId, citizen, 300, &scope, now)?;
    let request = FetchRequest {
        subject_code: token.clone(),
        record_types: conditional_types(catalog),
        purpose: DEMO_PURPOSE.into(),
        subject: None,
        ..subject_request(SubjectKind::ResidentId, citizen)
    };
    let (results, by) = fetch_request(url, hall, request.clone()).await?;
    let replay = match fetch_request(url, hall, request).await {
        Ok(_) => anyhow::bail!("the gateway accepted a subject code twice"),
        Err(e) => format!("{e:#}"),
    };
    Ok((
        CodeScan {
            token,
            results,
            replay,
        },
        by,
    ))
}

/// The sample citizen claims her elderly mother's pension (from the demo
/// population's families: the same data public security's household
/// registration serves), and a stranger claims to be the mother's child;
/// then the citizen's spouse (from the marriages civil affairs serves)
/// applies for the citizen, the former spouse, and the attorney.
async fn family_agency(
    url: &str,
    hall: &TlsFiles,
    pf: &TlsFiles,
    citizen: &str,
) -> anyhow::Result<(Agency, String)> {
    let population = xgate_synth::Population::generate(
        xgate_synth::DEFAULT_CITIZENS,
        xgate_synth::DEFAULT_COMPANIES,
    );
    let families = xgate_synth::family::families(&population);
    let id_of = |index: u32| {
        population
            .citizens
            .get(index as usize)
            .map(|c| c.id_number.clone())
            .with_context(|| format!("no citizen {index} in the demo population"))
    };
    let mother = families
        .get(xgate_synth::SAMPLE_CITIZEN as usize)
        .and_then(|f| f.mother)
        .context("the sample citizen has no mother in the demo data")?;
    let children: Vec<u32> = xgate_synth::family::children_of(&families, mother).collect();
    // Anyone else (past the sample and gappy citizens) who is not her child.
    let stranger = id_of((2..).find(|i| !children.contains(i)).unwrap_or(2))?;
    let elderly = id_of(mother)?;
    let claim = |applicant: &str| FetchRequest {
        approval_item: PENSION_ITEM.into(),
        representation: Some(Representation {
            applicant_id: applicant.to_owned(),
            relation: Relation::Child as i32,
        }),
        ..subject_request(SubjectKind::ResidentId, &elderly)
    };
    let (pension, _) = fetch_request(url, hall, claim(citizen)).await?;
    let stranger_refused = match fetch_request(url, hall, claim(&stranger)).await {
        Ok(_) => anyhow::bail!("the gateway let a stranger claim to be the subject's child"),
        Err(e) => format!("{e:#}"),
    };
    let partner = |status: &str| {
        xgate_demo_data::kin::marriages(&population)
            .iter()
            .filter(|m| m.status() == status)
            .find_map(|m| m.partner_of(citizen).map(|p| p.id_number.clone()))
            .with_context(|| {
                format!("the sample citizen has no {status} marriage in the demo data")
            })
    };
    let (spouse, former_spouse) = (partner("married")?, partner("divorced")?);
    // The demo data's powers of attorney name the next citizen as agent.
    let attorney = population
        .citizens
        .get(xgate_synth::SAMPLE_CITIZEN as usize + 1)
        .map(|c| c.id_number.clone())
        .context("the demo population has no attorney for the sample citizen")?;
    let request = |applicant: &str, relation: Relation| FetchRequest {
        approval_item: PF_ITEM.into(),
        representation: Some(Representation {
            applicant_id: applicant.to_owned(),
            relation: relation as i32,
        }),
        ..subject_request(SubjectKind::ResidentId, citizen)
    };
    let (results, by) = fetch_request(url, pf, request(&spouse, Relation::Spouse)).await?;
    let former_refused =
        match fetch_request(url, pf, request(&former_spouse, Relation::Spouse)).await {
            Ok(_) => anyhow::bail!("the gateway let a former spouse apply for the subject"),
            Err(e) => format!("{e:#}"),
        };
    let (by_attorney, _) = fetch_request(url, pf, request(&attorney, Relation::Attorney)).await?;
    Ok((
        Agency {
            elderly,
            pension,
            stranger,
            stranger_refused,
            spouse,
            results,
            former_spouse,
            former_refused,
            attorney,
            by_attorney,
        },
        by,
    ))
}

/// `--json`: one document with every result and a summary; with replicas
/// (`names`: instance -> replica name), which replica answered each fetch.
fn print_json(
    o: &Outcome,
    url: &str,
    names: Option<&std::collections::HashMap<String, String>>,
    console: &str,
) -> anyhow::Result<()> {
    let all = o.all();
    let results: Vec<_> = o
        .personal
        .iter()
        .map(|r| (r, "resident_id"))
        .chain(o.corporate.iter().map(|r| (r, "uscc")))
        .map(|(r, kind)| {
            let mut v = result_json(r, false);
            v["subject_kind"] = json!(kind);
            v
        })
        .collect();
    let mut by_status = serde_json::Map::new();
    for r in &all {
        let name = xgate_proto::status_name(r.status);
        let n = by_status
            .get(name)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        by_status.insert(name.into(), json!(n + 1));
    }
    let answered_by: Vec<_> = o
        .answered_by
        .iter()
        .map(|(fetch, instance)| {
            let replica = names
                .and_then(|n| n.get(instance))
                .map_or("gateway", String::as_str);
            json!({"fetch": fetch, "replica": replica, "instance": instance})
        })
        .collect();
    let doc = json!({
        "gateway": url,
        "console": console,
        "answered_by": answered_by,
        "requester": DEMO_REQUESTER,
        "purpose": DEMO_PURPOSE,
        "subjects": {"resident_id": o.citizen, "uscc": o.company},
        "results": results,
        "summary": {"record_types": all.len(), "by_status": by_status, "fetch_ms": o.fetch_elapsed.as_secs_f64() * 1000.0},
        "provident_fund_withdrawal": {
            "requester": PF_REQUESTER,
            "approval_item": PF_ITEM,
            "results": o.withdrawal.iter().map(|r| result_json(r, true)).collect::<Vec<_>>(),
        },
        "no_grant": {
            "requester": NO_GRANT_REQUESTER,
            "results": o.refused.iter().map(|r| result_json(r, false)).collect::<Vec<_>>(),
        },
        "subject_code": {
            "issuer": CODE_ISSUER,
            "token": o.code_scan.token,
            "results": o.code_scan.results.iter().map(|r| result_json(r, false)).collect::<Vec<_>>(),
            "replay_refused": o.code_scan.replay,
        },
        "family_agency": {
            "pension_claim": {
                "requester": DEMO_REQUESTER,
                "approval_item": PENSION_ITEM,
                "subject": o.agency.elderly,
                "child": o.citizen,
                "results": o.agency.pension.iter().map(|r| result_json(r, false)).collect::<Vec<_>>(),
                "stranger": o.agency.stranger,
                "stranger_refused": o.agency.stranger_refused,
            },
            "requester": PF_REQUESTER,
            "approval_item": PF_ITEM,
            "spouse": o.agency.spouse,
            "results": o.agency.results.iter().map(|r| result_json(r, false)).collect::<Vec<_>>(),
            "former_spouse": o.agency.former_spouse,
            "former_spouse_refused": o.agency.former_refused,
            "attorney": o.agency.attorney,
            "by_attorney": o.agency.by_attorney.iter().map(|r| result_json(r, false)).collect::<Vec<_>>(),
        },
        "evaluation": o.evaluation.json(),
        "screening": [o.screening.0.json(), o.screening.1.json()],
        "gappy_citizen": {
            "subject": o.gappy_id,
            "results": o.gappy.iter().map(|r| result_json(r, false)).collect::<Vec<_>>(),
            "not_found": o.gappy_missing(),
        },
    });
    crate::outln!("{}", serde_json::to_string_pretty(&doc)?)?;
    Ok(())
}

/// The tables people read.
fn print_tables(o: &Outcome) -> std::io::Result<()> {
    let (citizen, company) = (&o.citizen, &o.company);
    crate::outln!(
        "Sample citizen {citizen} — every personal record type (the conditional ones need her say: DENIED here, fetched below with her resident code):"
    )?;
    crate::outln!("{}", header())?;
    for r in &o.personal {
        crate::outln!("{}", row(r))?;
    }
    crate::outln!()?;
    crate::outln!("Sample company {company} — every company record type:")?;
    crate::outln!("{}", header())?;
    for r in &o.corporate {
        crate::outln!("{}", row(r))?;
    }
    crate::outln!()?;
    crate::outln!("{}", summary(&o.all(), o.fetch_elapsed))?;
    crate::outln!()?;
    crate::outln!(
        "{PF_REQUESTER} fetches approval item {PF_ITEM} for {citizen}: only the views the item names"
    )?;
    crate::outln!("{}", header())?;
    for r in &o.withdrawal {
        crate::outln!("{}", row(r))?;
    }
    if let Some(title) = o
        .withdrawal
        .iter()
        .find(|r| r.record_type == "real_estate_title")
        .and_then(|r| r.records.first())
    {
        crate::outln!(
            "  real_estate_title (summary) = {}",
            xgate_proto::json::struct_to_json(title)
        )?;
    }
    crate::outln!()?;
    for r in &o.refused {
        crate::outln!(
            "{NO_GRANT_REQUESTER} asks for {}: {} ({})",
            r.record_type,
            xgate_proto::status_name(r.status),
            r.error
        )?;
    }
    crate::outln!()?;
    crate::outln!(
        "The citizen's app shows a resident code ({} characters, from {CODE_ISSUER}); the hall scans it instead of typing the ID and fetches the conditional types:",
        o.code_scan.token.len()
    )?;
    crate::outln!("{}", header())?;
    for r in &o.code_scan.results {
        crate::outln!("{}", row(r))?;
    }
    crate::outln!("The same code scanned again: {}", o.code_scan.replay)?;
    crate::outln!()?;
    crate::outln!(
        "Family agency: the citizen claims her elderly mother {}'s pension ({PENSION_ITEM}); the gateway checks the household registration at public security first:",
        o.agency.elderly
    )?;
    crate::outln!("{}", header())?;
    for r in &o.agency.pension {
        crate::outln!("{}", row(r))?;
    }
    crate::outln!(
        "A stranger {} claiming to be her child: {}",
        o.agency.stranger,
        o.agency.stranger_refused
    )?;
    crate::outln!()?;
    crate::outln!(
        "The citizen's spouse {} applies for {PF_ITEM} in the citizen's place; the gateway checks the marriage at civil affairs first:",
        o.agency.spouse
    )?;
    crate::outln!("{}", header())?;
    for r in &o.agency.results {
        crate::outln!("{}", row(r))?;
    }
    crate::outln!(
        "The citizen's former spouse {} tries the same: {}",
        o.agency.former_spouse,
        o.agency.former_refused
    )?;
    let ok = |results: &[RecordResult]| {
        results
            .iter()
            .filter(|r| r.status == xgate_proto::v1::RecordStatus::Ok as i32)
            .count()
    };
    crate::outln!(
        "The citizen's attorney {} (a notarised power covering {PF_ITEM}, checked at the justice bureau): {} of {} types OK",
        o.agency.attorney,
        ok(&o.agency.by_attorney),
        o.agency.by_attorney.len()
    )?;
    crate::outln!()?;
    o.evaluation.print()?;
    crate::outln!()?;
    crate::outln!(
        "Screening — services looking for people (免申即享), yes/no from the departments' data:"
    )?;
    o.screening.0.print()?;
    o.screening.1.print()?;
    crate::outln!()?;
    let missing = o.gappy_missing();
    crate::outln!(
        "Citizen {} has gaps: {} of {} personal types NOT_FOUND ({})",
        o.gappy_id,
        missing.len(),
        o.gappy.len(),
        missing.join(", ")
    )?;
    Ok(())
}

/// Waits until every demo department's types route to the adapter process
/// just started: registrations of an earlier run (kept in the gateway's
/// database) still name that run's ports.
async fn wait_for_registrations(
    gateway: &xgate::server::RunningGateway,
    catalog: &Catalog,
    adapters: &[AdapterProcess],
) -> anyhow::Result<()> {
    let wanted: Vec<(String, String)> = adapters
        .iter()
        .flat_map(|a| {
            let endpoint = format!("https://{}", a.addr);
            catalog
                .types_of_department(&a.department)
                .map(move |t| (t.id.clone(), endpoint.clone()))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let routes = gateway.state.routes.load();
        let missing: Vec<&str> = wanted
            .iter()
            .filter(|(t, endpoint)| {
                routes
                    .get(t)
                    .is_none_or(|route| !route.endpoints().any(|e| e == endpoint))
            })
            .map(|(t, _)| t.as_str())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "adapters did not register within 20 s; still missing {missing:?} (see the adapter logs)"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A request about one subject, with the demo's case and operator.
fn subject_request(kind: SubjectKind, id: &str) -> FetchRequest {
    FetchRequest {
        subject: Some(Subject {
            kind: proto_kind(kind) as i32,
            id: id.to_owned(),
        }),
        case_id: "DEMO-2026-0001".into(),
        operator_id: "demo-operator".into(),
        ..FetchRequest::default()
    }
}

/// One fetch on a connection of its own; the results and the audit chain
/// (gateway instance) that answered.
async fn fetch_request(
    url: &str,
    requester: &TlsFiles,
    message: FetchRequest,
) -> anyhow::Result<(Vec<RecordResult>, String)> {
    let channel = super::client::connect(url, requester).await?;
    let mut client = ExchangeClient::new(channel).max_decoding_message_size(64 * 1024 * 1024);
    let mut request = tonic::Request::new(message);
    request.set_timeout(Duration::from_secs(10));
    let response = client
        .fetch(request)
        .await
        .map_err(super::fetch::explain)?
        .into_inner();
    let chain = response.receipt.map(|r| r.chain).unwrap_or_default();
    Ok((response.results, chain))
}

/// Every record type of the subject's kind, as the demo approval hall.
async fn fetch_all(
    url: &str,
    requester: &TlsFiles,
    catalog: &Catalog,
    kind: SubjectKind,
    id: &str,
) -> anyhow::Result<(Vec<RecordResult>, String)> {
    let record_types = catalog
        .record_types()
        .filter(|t| t.subject_kind == kind)
        .map(|t| t.id.clone())
        .collect();
    fetch_request(
        url,
        requester,
        FetchRequest {
            record_types,
            purpose: DEMO_PURPOSE.into(),
            ..subject_request(kind, id)
        },
    )
    .await
}

/// Keeps serving until SIGINT or SIGTERM, with `--ready-file` written (the
/// handler is armed first: a script may stop the demo as soon as it sees the
/// file) and removed at the end.
async fn serve_until_stopped(args: &DemoArgs, ready: serde_json::Value) -> anyhow::Result<()> {
    let stop = xgate::server::shutdown_signal_armed()?;
    if let Some(path) = &args.ready_file {
        write_ready_file(path, &ready)?;
        progress(&format!("ready: {}", path.display()));
    }
    stop.await;
    progress("stopping");
    if let Some(path) = &args.ready_file {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// What a script needs to call the running demo (`--ready-file`).
fn ready_document(url: &str, work: &Path, outcome: &Outcome) -> serde_json::Value {
    serde_json::json!({
        "gateway": url,
        "pki": work.join("pki"),
        "requester": DEMO_REQUESTER,
        "purpose": DEMO_PURPOSE,
        "item_requester": PF_REQUESTER,
        "approval_item": PF_ITEM,
        "citizen": outcome.citizen,
        "company": outcome.company,
    })
}

/// Writes the ready file whole or not at all (a temporary file renamed), so
/// a script polling for it never reads half a document.
fn write_ready_file(path: &Path, doc: &serde_json::Value) -> anyhow::Result<()> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    std::fs::write(&partial, serde_json::to_vec_pretty(doc)?)
        .with_context(|| format!("writing `{}`", partial.display()))?;
    std::fs::rename(&partial, path)
        .with_context(|| format!("renaming `{}` to `{}`", partial.display(), path.display()))
}

/// The console's address and how to sign in: as the auditor, and as the
/// department whose objection the demo's evaluation step filed.
fn print_console_login(url: &str, console: &str, work: &Path) -> std::io::Result<()> {
    let pki = work.join("pki");
    let p = |name: &str| pki.join(name).display().to_string();
    crate::outln!()?;
    crate::outln!(
        "  The web console is at {console}. Sign in with a certificate (the link works once):"
    )?;
    for role in ["auditor-auditor", "department-public-security"] {
        crate::outln!(
            "  xgate console login --gateway {url} --cert {} --key {} --ca {}",
            p(&format!("{role}.pem")),
            p(&format!("{role}-key.pem")),
            p("ca.pem")
        )?;
    }
    Ok(())
}

fn print_how_to_call(url: &str, work: &Path, citizen: &str) -> std::io::Result<()> {
    let pki = work.join("pki");
    let p = |name: &str| pki.join(name).display().to_string();
    let addr = url.trim_start_matches("https://");
    crate::outln!()?;
    crate::outln!("The gateway keeps serving on {url} (Ctrl-C stops it). Call it yourself:")?;
    crate::outln!()?;
    crate::outln!(
        "  xgate fetch --gateway {url} --cert {} --key {} --ca {} \\\n    --subject {citizen} --types real_estate_title,resident_identity_card \\\n    --purpose {DEMO_PURPOSE} --case CASE-1 --operator me",
        p("requester-approval-hall-demo.pem"),
        p("requester-approval-hall-demo-key.pem"),
        p("ca.pem")
    )?;
    crate::outln!()?;
    crate::outln!(
        "  grpcurl -cacert {} -cert {} -key {} \\\n    -d '{{\"subject\":{{\"kind\":\"SUBJECT_KIND_RESIDENT_ID\",\"id\":\"{citizen}\"}},\"record_types\":[\"real_estate_title\"],\"purpose\":\"{DEMO_PURPOSE}\",\"case_id\":\"CASE-1\",\"operator_id\":\"me\"}}' \\\n    {addr} xgate.v1.Exchange/Fetch",
        p("ca.pem"),
        p("requester-approval-hall-demo.pem"),
        p("requester-approval-hall-demo-key.pem")
    )?;
    crate::outln!()?;
    crate::outln!(
        "  As the auditor: who accessed the sample citizen's data, and is the log intact?"
    )?;
    crate::outln!(
        "  xgate audit report --gateway {url} --cert {} --key {} --ca {} --subject {citizen}",
        p("auditor-auditor.pem"),
        p("auditor-auditor-key.pem"),
        p("ca.pem")
    )?;
    crate::outln!(
        "  xgate audit verify --gateway {url} --cert {} --key {} --ca {}",
        p("auditor-auditor.pem"),
        p("auditor-auditor-key.pem"),
        p("ca.pem")
    )?;
    crate::outln!()?;
    crate::outln!("  Logs: {}", work.join("logs").display())
}
