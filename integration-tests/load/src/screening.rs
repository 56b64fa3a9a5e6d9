//! `xgate-bench screen`: subjects screened per second through the gateway,
//! 3 predicates over 3 departments (the small-taxpayer exemption: tax's own
//! adapter binary, and the generic SQL adapter serving market regulation and
//! the court), all real processes on loopback over mTLS, every department
//! seeded with `--companies` companies.
//!
//! - batch: whole runs of every company (`Screening.Screen`; each
//!   department answers `BatchLookup` with set-based queries);
//! - time to first result: runs of one chunk, from opening the stream to
//!   the first result, p50/p99 over `--first-runs`;
//! - per subject, in the same run: the same three predicates asked one
//!   subject at a time (`Exchange.Fetch` of the three views, the approval
//!   hall, `--concurrency` in flight) over `--per-subject` companies.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::StreamExt as _;
use serde::Serialize;
use tokio::sync::mpsc;
use xgate_integration_tests::client::{self, with_timeout};
use xgate_integration_tests::process::{AdapterProcess, run_to_end};
use xgate_integration_tests::{APPROVAL_HALL, GENERAL_APPROVAL, GatewayOptions, TestEnv};
use xgate_proto::v1::exchange_client::ExchangeClient;
use xgate_proto::v1::screening_client::ScreeningClient;
use xgate_proto::v1::{
    Eligibility, FetchRequest, RecordRequest, ScreenRequest, ScreenStart, ScreenSubjects, Subject,
    SubjectKind, screen_request, screen_response,
};

const ITEM: &str = "SMALL-TAXPAYER-EXEMPTION";
const SCREENER: &str = xgate_integration_tests::TAX_BUREAU;
/// The item's predicates, as the per-subject path asks them.
const PREDICATES: [(&str, &str); 3] = [
    ("tax_registration", "is_small_scale_taxpayer"),
    ("business_licence", "has_valid_business_licence"),
    ("enforcement_case_record", "has_enforcement_in_progress"),
];

#[derive(clap::Args, Debug)]
pub struct ScreenArgs {
    /// Companies seeded and screened per run.
    #[arg(long, default_value_t = 20_000)]
    pub companies: u32,
    /// Whole runs over every company.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// One-chunk runs timed to their first result.
    #[arg(long, default_value_t = 50)]
    pub first_runs: usize,
    /// Companies asked one at a time in the per-subject arm.
    #[arg(long, default_value_t = 2_000)]
    pub per_subject: usize,
    /// Fetches in flight in the per-subject arm.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Also write the figures as JSON here.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}

#[derive(Debug, Serialize)]
struct Output {
    companies: u32,
    batch_subjects_per_sec: Vec<f64>,
    batch_eligible: u64,
    first_result_ms_p50: f64,
    first_result_ms_p99: f64,
    per_subject_subjects_per_sec: f64,
    batch_over_per_subject: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn quantile(mut v: Vec<f64>, q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v.get(i).copied().unwrap_or(0.0)
}

pub async fn run(args: ScreenArgs) -> anyhow::Result<()> {
    let env = TestEnv::new()?;
    let gateway = env
        .start_gateway(&GatewayOptions {
            extra_toml: "[cache]\nenabled = false\n".into(),
            ..GatewayOptions::default()
        })
        .await?;
    let data = env.dir().join("data");
    let companies = args.companies.to_string();
    let seeding = Instant::now();
    let tax_db = data.join("tax.db");
    let mut seed_tax =
        tokio::process::Command::new(xgate_integration_tests::bins::binary("xgate-adapter-tax")?);
    seed_tax
        .arg("seed")
        .arg("--db")
        .arg(&tax_db)
        .args(["--companies", &companies]);
    let mut seed_sql =
        tokio::process::Command::new(xgate_integration_tests::bins::binary("xgate-demo-seed")?);
    seed_sql
        .arg("--out")
        .arg(&data)
        .args(["--department", "market-regulation", "--department", "court"])
        .args(["--companies", &companies]);
    let logs = env.dir().join("logs");
    let (tax_log, sql_log) = (logs.join("seed-tax.log"), logs.join("seed-sql.log"));
    tokio::try_join!(
        run_to_end("seed tax", seed_tax, &tax_log, Duration::from_secs(600)),
        run_to_end("seed sql", seed_sql, &sql_log, Duration::from_secs(600)),
    )?;
    println!(
        "seeded {} companies in tax, market-regulation and court in {:.1} s",
        args.companies,
        seeding.elapsed().as_secs_f64()
    );
    let url = gateway.url();
    let pki = env.pki();
    let _tax = AdapterProcess::start(
        "tax",
        &tax_db,
        &pki.department("tax"),
        &url,
        &logs.join("tax.log"),
    )
    .await?;
    let mut sql = Vec::new();
    for d in ["market-regulation", "court"] {
        sql.push(
            AdapterProcess::start_sql(
                d,
                &data.join(format!("{d}.db")),
                &pki.department(d),
                Some(&url),
                &logs.join(format!("{d}.log")),
            )
            .await?,
        );
    }
    let types: Vec<String> = PREDICATES.iter().map(|(t, _)| (*t).to_owned()).collect();
    env.wait_for_sources(gateway.addr(), &types).await?;
    let population =
        xgate_synth::Population::generate(xgate_synth::DEFAULT_CITIZENS, args.companies);
    let ids: Vec<String> = population
        .companies
        .iter()
        .map(|c| c.uscc.clone())
        .collect();
    println!("machine: {}", machine(env.dir()));

    let screener = pki.requester(SCREENER);
    let mut rates = Vec::new();
    let mut eligible = 0;
    for run in 1..=args.runs {
        let started = Instant::now();
        let (n, yes, _) = screen(gateway.addr(), &screener, &ids).await?;
        let secs = started.elapsed().as_secs_f64();
        let rate = n as f64 / secs;
        println!(
            "batch run {run}: {n} subjects in {secs:.2} s = {rate:.0} subjects/s, {yes} eligible"
        );
        rates.push(rate);
        eligible = yes;
    }
    let first_chunk: Vec<String> = ids.iter().take(500).cloned().collect();
    let mut firsts = Vec::new();
    for _ in 0..args.first_runs {
        let (_, _, first) = screen(gateway.addr(), &screener, &first_chunk).await?;
        firsts.push(first.as_secs_f64() * 1000.0);
    }
    let (p50, p99) = (quantile(firsts.clone(), 0.5), quantile(firsts, 0.99));
    println!(
        "time to first result ({} runs of {} subjects): p50 {p50:.1} ms, p99 {p99:.1} ms",
        args.first_runs,
        first_chunk.len()
    );

    let hall = pki.requester(APPROVAL_HALL);
    let sample: Vec<String> = ids.iter().take(args.per_subject).cloned().collect();
    let started = Instant::now();
    per_subject(gateway.addr(), &hall, &sample, args.concurrency).await?;
    let secs = started.elapsed().as_secs_f64();
    let per_rate = sample.len() as f64 / secs;
    println!(
        "per subject: {} subjects in {secs:.2} s = {per_rate:.0} subjects/s ({} fetches in flight)",
        sample.len(),
        args.concurrency
    );
    let batch = median(rates.clone());
    println!("batch / per subject: {:.1}x", batch / per_rate);
    if let Some(path) = &args.json {
        let out = Output {
            companies: args.companies,
            batch_subjects_per_sec: rates,
            batch_eligible: eligible,
            first_result_ms_p50: p50,
            first_result_ms_p99: p99,
            per_subject_subjects_per_sec: per_rate,
            batch_over_per_subject: batch / per_rate,
        };
        std::fs::write(path, serde_json::to_vec_pretty(&out)?)?;
    }
    gateway.stop().await?;
    Ok(())
}

/// One run over `ids`: subjects answered, eligible, time to the first result.
async fn screen(
    addr: std::net::SocketAddr,
    tls: &xgate_tls::TlsFiles,
    ids: &[String],
) -> anyhow::Result<(u64, u64, Duration)> {
    let started = Instant::now();
    let mut client = ScreeningClient::new(client::connect(addr, tls).await?)
        .max_decoding_message_size(16 * 1024 * 1024);
    let (tx, rx) = mpsc::channel(4);
    tx.send(ScreenRequest {
        body: Some(screen_request::Body::Start(ScreenStart {
            item: ITEM.into(),
            after: -1,
            ..ScreenStart::default()
        })),
    })
    .await?;
    let subjects: Vec<Subject> = ids
        .iter()
        .map(|id| Subject {
            kind: SubjectKind::Uscc as i32,
            id: id.clone(),
        })
        .collect();
    let sender = tokio::spawn(async move {
        for chunk in subjects.chunks(500) {
            let message = ScreenRequest {
                body: Some(screen_request::Body::Subjects(ScreenSubjects {
                    subjects: chunk.to_vec(),
                })),
            };
            if tx.send(message).await.is_err() {
                return;
            }
        }
    });
    let mut inbound = client
        .screen(tokio_stream_of(rx))
        .await
        .context("opening the run")?
        .into_inner();
    let (mut n, mut yes, mut first) = (0u64, 0u64, None);
    while let Some(message) = inbound.message().await? {
        if let Some(screen_response::Body::Result(r)) = message.body {
            first.get_or_insert_with(|| started.elapsed());
            n += 1;
            if r.eligibility() == Eligibility::Eligible {
                yes += 1;
            }
        }
    }
    sender.abort();
    Ok((n, yes, first.unwrap_or_default()))
}

fn tokio_stream_of<T: Send + 'static>(
    mut rx: mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// The same three predicates, one subject per fetch.
async fn per_subject(
    addr: std::net::SocketAddr,
    tls: &xgate_tls::TlsFiles,
    ids: &[String],
    concurrency: usize,
) -> anyhow::Result<()> {
    let exchange = ExchangeClient::new(client::connect(addr, tls).await?);
    let results = futures::stream::iter(ids.iter().map(|id| {
        let mut exchange = exchange.clone();
        async move {
            let request = FetchRequest {
                subject: Some(Subject {
                    kind: SubjectKind::Uscc as i32,
                    id: id.clone(),
                }),
                requests: PREDICATES
                    .iter()
                    .map(|(t, v)| RecordRequest {
                        record_type: (*t).into(),
                        view: (*v).into(),
                        ..RecordRequest::default()
                    })
                    .collect(),
                purpose: GENERAL_APPROVAL.into(),
                case_id: "BENCH".into(),
                operator_id: "bench".into(),
                ..FetchRequest::default()
            };
            exchange
                .fetch(with_timeout(request, Duration::from_secs(15)))
                .await
                .map(|_| ())
        }
    }))
    .buffer_unordered(concurrency)
    .collect::<Vec<_>>()
    .await;
    let failed = results.iter().filter(|r| r.is_err()).count();
    anyhow::ensure!(failed == 0, "{failed} per-subject fetches failed");
    Ok(())
}

fn machine(_dir: &Path) -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores")
}
