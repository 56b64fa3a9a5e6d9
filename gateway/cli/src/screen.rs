//! `xgate screen`: streams a list of subjects through a screening item and
//! writes one result per subject (CSV or JSON lines), with a progress bar.
//! A run interrupted (network, Ctrl-C) resumes with `--resume RUN`: the
//! results already in `--output` are kept, the gateway sends again what it
//! screened after them, and the rest of the list follows.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use xgate_proto::v1::screening_client::ScreeningClient;
use xgate_proto::v1::{
    Eligibility, RecordStatus, ScreenRequest, ScreenResult, ScreenRun, ScreenStart, ScreenSubjects,
    Subject, screen_request, screen_response,
};

use crate::ClientTls;

/// Subjects per message sent.
const PER_MESSAGE: usize = 500;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    Jsonl,
}

#[derive(clap::Args, Debug)]
pub struct ScreenArgs {
    #[command(flatten)]
    pub tls: ClientTls,
    /// The screening item of a new run (`policies/screening.toml`).
    #[arg(long, required_unless_present = "resume")]
    pub item: Option<String>,
    /// Resume this run: the same `--input`; results are added to `--output`.
    #[arg(long, value_name = "RUN_ID")]
    pub resume: Option<String>,
    /// Subjects, one ID number per line (`#` comments and blank lines
    /// skipped); `-` reads stdin.
    #[arg(long)]
    pub input: PathBuf,
    /// Where results go, one per subject.
    #[arg(long)]
    pub output: PathBuf,
    #[arg(long, value_enum, default_value = "csv")]
    pub format: Format,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// What a run produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub run_id: String,
    pub item: String,
    /// Results received in this call (resent ones included).
    pub results: u64,
    pub eligible: u64,
    pub not_eligible: u64,
    pub unknown: u64,
    pub invalid: u64,
    pub duplicate: u64,
}

impl Summary {
    fn count(&mut self, r: &ScreenResult) {
        self.results += 1;
        match r.eligibility() {
            Eligibility::Eligible => self.eligible += 1,
            Eligibility::NotEligible => self.not_eligible += 1,
            Eligibility::Unknown => self.unknown += 1,
            Eligibility::InvalidSubject => self.invalid += 1,
            Eligibility::Duplicate => self.duplicate += 1,
            Eligibility::Unspecified => {}
        }
    }
}

/// Where a run starts: a new run of `item`, or `run_id` resumed after the
/// caller's last result `after`.
pub enum Start<'a> {
    New(&'a str),
    Resume { run_id: &'a str, after: Option<u64> },
}

/// What a run's answers go to: the run first, then every result in order.
pub trait Sink {
    fn header(&mut self, run: &ScreenRun) -> anyhow::Result<()>;
    fn result(&mut self, result: &ScreenResult) -> anyhow::Result<()>;
}

/// Screens `subjects` through the gateway at `url` into `sink`. Ends with
/// the gateway's error, if any, after the results it sent.
pub async fn screen(
    url: &str,
    tls: &xgate_tls::TlsFiles,
    start: Start<'_>,
    subjects: &[String],
    sink: &mut dyn Sink,
) -> anyhow::Result<Summary> {
    let channel = crate::client::connect(url, tls).await?;
    let (tx, rx) = mpsc::channel::<ScreenRequest>(8);
    let first = match start {
        Start::New(item) => ScreenStart {
            item: item.to_owned(),
            after: -1,
            ..ScreenStart::default()
        },
        Start::Resume { run_id, after } => ScreenStart {
            run_id: run_id.to_owned(),
            after: after.map_or(-1, |a| i64::try_from(a).unwrap_or(i64::MAX)),
            ..ScreenStart::default()
        },
    };
    tx.send(ScreenRequest {
        body: Some(screen_request::Body::Start(first)),
    })
    .await
    .context("opening the screening stream")?;
    let mut inbound = ScreeningClient::new(channel)
        .max_decoding_message_size(16 * 1024 * 1024)
        .screen(ReceiverStream::new(rx))
        .await
        .map_err(|s| {
            anyhow::anyhow!(
                "the gateway refused the run ({:?}): {}",
                s.code(),
                s.message()
            )
        })?
        .into_inner();
    let header = match inbound.message().await? {
        Some(xgate_proto::v1::ScreenResponse {
            body: Some(screen_response::Body::Run(run)),
        }) => run,
        _ => anyhow::bail!("the gateway did not open the run"),
    };
    sink.header(&header)?;
    let kind = header.subject_kind;
    let from = usize::try_from(header.next).unwrap_or(usize::MAX);
    let rest: Vec<Subject> = subjects
        .iter()
        .skip(from)
        .map(|id| Subject {
            kind,
            id: id.clone(),
        })
        .collect();
    // Sending runs beside receiving: the gateway answers while we send.
    let sender = tokio::spawn(async move {
        for chunk in rest.chunks(PER_MESSAGE) {
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
    let mut summary = Summary {
        run_id: header.run_id.clone(),
        item: header.item.clone(),
        ..Summary::default()
    };
    let outcome = loop {
        match inbound.message().await {
            Ok(Some(xgate_proto::v1::ScreenResponse {
                body: Some(screen_response::Body::Result(r)),
            })) => {
                summary.count(&r);
                sink.result(&r)?;
            }
            Ok(Some(_)) => {}
            Ok(None) => break Ok(()),
            Err(status) => break Err(status),
        }
    };
    sender.abort();
    match outcome {
        Ok(()) => Ok(summary),
        Err(status) => Err(anyhow::anyhow!(
            "screening stopped ({:?}): {}; {} results received; resume with --resume {}",
            status.code(),
            status.message(),
            summary.results,
            summary.run_id
        )),
    }
}

/// The subjects of `input`, one per line.
pub fn read_subjects(input: &Path) -> anyhow::Result<Vec<String>> {
    let text = if input == Path::new("-") {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(input).with_context(|| format!("reading `{}`", input.display()))?
    };
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect())
}

fn eligibility_name(e: Eligibility) -> &'static str {
    match e {
        Eligibility::Eligible => "eligible",
        Eligibility::NotEligible => "not_eligible",
        Eligibility::Unknown => "unknown",
        Eligibility::InvalidSubject => "invalid_subject",
        Eligibility::Duplicate => "duplicate",
        Eligibility::Unspecified => "unspecified",
    }
}

/// A predicate's cell: `true` / `false`, or the status that kept it.
fn predicate_cell(status: RecordStatus, value: bool) -> String {
    match status {
        RecordStatus::Ok | RecordStatus::NotFound => value.to_string(),
        other => xgate_proto::status_name(other as i32).to_owned(),
    }
}

/// Results already in a CSV or JSON-lines output file.
fn results_in(path: &Path, format: Format) -> anyhow::Result<u64> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(0);
    };
    let lines = text.lines().filter(|l| !l.trim().is_empty()).count() as u64;
    Ok(match format {
        Format::Csv => lines.saturating_sub(1),
        Format::Jsonl => lines,
    })
}

/// The command line's sink: the output file and the progress bar.
struct Writer<'a> {
    out: std::io::BufWriter<std::fs::File>,
    format: Format,
    append: bool,
    quiet: bool,
    subjects: &'a [String],
    predicates: Vec<String>,
    started: Instant,
    last_draw: Option<Instant>,
    done: u64,
    eligible: u64,
}

impl Sink for Writer<'_> {
    fn header(&mut self, header: &ScreenRun) -> anyhow::Result<()> {
        self.predicates = header
            .predicates
            .iter()
            .map(|p| {
                let not = if p.negated { "not " } else { "" };
                format!("{not}{}.{}", p.record_type, p.view)
            })
            .collect();
        self.done = header.next;
        if !self.quiet {
            eprintln!(
                "run {} of {}: {} subjects, {} screened before{}",
                header.run_id,
                header.item,
                self.subjects.len(),
                header.next,
                match header.max_subjects {
                    0 => String::new(),
                    n => format!(", at most {n} per run"),
                }
            );
        }
        if !self.append && self.format == Format::Csv {
            writeln!(
                self.out,
                "seq,subject,eligibility,{},error",
                self.predicates.join(",")
            )?;
        }
        Ok(())
    }

    fn result(&mut self, r: &ScreenResult) -> anyhow::Result<()> {
        let subject = usize::try_from(r.seq)
            .ok()
            .and_then(|i| self.subjects.get(i))
            .map_or("", String::as_str);
        let cells: Vec<String> = r
            .predicates
            .iter()
            .map(|p| predicate_cell(p.status(), p.value))
            .collect();
        let error = if r.eligibility() == Eligibility::Duplicate {
            format!("duplicate of {}", r.duplicate_of)
        } else {
            r.error.clone()
        };
        match self.format {
            Format::Csv => writeln!(
                self.out,
                "{},{subject},{},{},{}",
                r.seq,
                eligibility_name(r.eligibility()),
                cells.join(","),
                error.replace(',', ";")
            )?,
            Format::Jsonl => {
                let answers: serde_json::Map<String, serde_json::Value> = self
                    .predicates
                    .iter()
                    .zip(&cells)
                    .map(|(name, cell)| (name.clone(), serde_json::json!(cell)))
                    .collect();
                let line = serde_json::json!({
                    "seq": r.seq,
                    "subject": subject,
                    "eligibility": eligibility_name(r.eligibility()),
                    "predicates": answers,
                    "error": error,
                });
                writeln!(self.out, "{line}")?;
            }
        }
        self.done = self.done.max(r.seq + 1);
        if r.eligibility() == Eligibility::Eligible {
            self.eligible += 1;
        }
        if !self.quiet
            && self
                .last_draw
                .is_none_or(|t| t.elapsed() >= Duration::from_millis(200))
        {
            self.last_draw = Some(Instant::now());
            self.draw();
        }
        Ok(())
    }
}

impl Writer<'_> {
    fn draw(&self) {
        const WIDTH: u64 = 30;
        let total = self.subjects.len() as u64;
        let filled = (self.done * WIDTH)
            .checked_div(total)
            .unwrap_or(WIDTH)
            .min(WIDTH);
        let bar: String = (0..WIDTH)
            .map(|i| if i < filled { '#' } else { '.' })
            .collect();
        let rate = self.done as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        eprint!(
            "\r[{bar}] {}/{total} screened, {} eligible, {rate:.0}/s   ",
            self.done, self.eligible
        );
    }
}

pub async fn run(args: ScreenArgs) -> anyhow::Result<()> {
    let subjects = read_subjects(&args.input)?;
    let (start, append) = match (&args.resume, &args.item) {
        (Some(run_id), _) => {
            let have = results_in(&args.output, args.format)?;
            (
                Start::Resume {
                    run_id,
                    after: have.checked_sub(1),
                },
                have > 0,
            )
        }
        (None, Some(item)) => (Start::New(item), false),
        (None, None) => anyhow::bail!("name --item, or --resume a run"),
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(&args.output)
        .with_context(|| format!("opening `{}`", args.output.display()))?;
    let mut writer = Writer {
        out: std::io::BufWriter::new(file),
        format: args.format,
        append,
        quiet: args.quiet,
        subjects: &subjects,
        predicates: Vec::new(),
        started: Instant::now(),
        last_draw: None,
        done: 0,
        eligible: 0,
    };
    let summary = screen(
        &args.tls.gateway,
        &args.tls.files(),
        start,
        &subjects,
        &mut writer,
    )
    .await;
    writer.out.flush()?;
    if !args.quiet {
        writer.draw();
        eprintln!();
    }
    let summary = summary?;
    crate::outln!(
        "run {} ({}): {} results — {} eligible, {} not eligible, {} unknown, {} invalid, {} duplicate; written to {}",
        summary.run_id,
        summary.item,
        summary.results,
        summary.eligible,
        summary.not_eligible,
        summary.unknown,
        summary.invalid,
        summary.duplicate,
        args.output.display()
    )?;
    Ok(())
}
