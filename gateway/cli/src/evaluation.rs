//! `xgate rate` and `xgate objection ...`: the evaluation mechanism from the
//! command line. A requester rates an answer or objects to a record of it,
//! naming the answer by the receipt file `xgate fetch --receipt FILE` wrote;
//! a department works its objection queue with its certificate.

use std::path::PathBuf;

use anyhow::Context as _;
use futures::StreamExt as _;
use xgate_proto::v1::evaluation_client::EvaluationClient;
use xgate_proto::v1::{
    DisposeObjectionRequest, Disposition, FileObjectionRequest, ListObjectionsRequest, Objection,
    ObjectionRef, ObjectionState, RateRequest, RatingReason, Scorecard, ScorecardsRequest, Subject,
    Verdict, WatchObjectionsRequest,
};

use crate::ClientTls;

/// `xgate rate`.
#[derive(clap::Args, Debug)]
pub struct RateArgs {
    #[command(flatten)]
    pub tls: ClientTls,
    /// The answer's receipt file (`xgate fetch --receipt FILE`).
    #[arg(long)]
    pub receipt: PathBuf,
    /// The record type rated.
    #[arg(long = "type")]
    pub record_type: String,
    /// `good` or `bad`.
    #[arg(long, value_parser = ["good", "bad"])]
    pub verdict: String,
    /// Why bad, comma separated.
    #[arg(long, value_delimiter = ',', value_parser = ["wrong_data", "outdated", "incomplete", "slow", "unavailable"])]
    pub reasons: Vec<String>,
    /// Optional text (at most 500 characters).
    #[arg(long, default_value = "")]
    pub text: String,
}

/// `xgate scorecard`.
#[derive(clap::Args, Debug)]
pub struct ScorecardArgs {
    #[command(flatten)]
    pub tls: ClientTls,
    /// The window: 7 or 30 days (the gateway refuses others).
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(7..=30))]
    pub days: u32,
    /// Auditors and admins: one department (default: all).
    #[arg(long, default_value = "")]
    pub department: String,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// `xgate objection ...`.
#[derive(clap::Subcommand, Debug)]
pub enum ObjectionCommand {
    /// A requester objects to one field of a record it received.
    File(FileArgs),
    /// The filer's objections (reading a disposed one is its feedback), a
    /// department's queue, or all (auditors, admins).
    List {
        #[command(flatten)]
        tls: ClientTls,
        /// Only these states, comma separated.
        #[arg(long, value_delimiter = ',', value_parser = ["reported", "circulated", "disposed", "fed_back", "closed"])]
        state: Vec<String>,
    },
    /// The filer's objections as they change, until interrupted.
    Watch {
        #[command(flatten)]
        tls: ClientTls,
    },
    /// The owning department acknowledges an objection.
    Ack {
        #[command(flatten)]
        tls: ClientTls,
        #[arg(long)]
        id: String,
    },
    /// The owning department disposes of an objection.
    Dispose {
        #[command(flatten)]
        tls: ClientTls,
        #[arg(long)]
        id: String,
        /// `corrected` or `rejected`.
        #[arg(long, value_parser = ["corrected", "rejected"])]
        outcome: String,
        /// What was corrected, or why the record stands.
        #[arg(long)]
        reason: String,
    },
    /// The filer closes an objection whose outcome it has read.
    Close {
        #[command(flatten)]
        tls: ClientTls,
        #[arg(long)]
        id: String,
    },
}

#[derive(clap::Args, Debug)]
pub struct FileArgs {
    #[command(flatten)]
    pub tls: ClientTls,
    /// The answer's receipt file (`xgate fetch --receipt FILE`).
    #[arg(long)]
    pub receipt: PathBuf,
    /// The subject the record is about.
    #[arg(long)]
    pub subject: String,
    #[arg(long = "type")]
    pub record_type: String,
    /// The field believed wrong.
    #[arg(long)]
    pub field: String,
    /// The value believed correct, as JSON (`"2031-05-01"`, `42`, `null`);
    /// text that is not JSON is taken as a string.
    #[arg(long)]
    pub value: String,
    /// Where the evidence is.
    #[arg(long)]
    pub evidence: String,
}

fn refused(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!(
        "the gateway refused ({:?}): {}",
        status.code(),
        status.message()
    )
}

async fn connect(tls: &ClientTls) -> anyhow::Result<EvaluationClient<tonic::transport::Channel>> {
    Ok(EvaluationClient::new(
        crate::client::connect(&tls.gateway, &tls.files()).await?,
    ))
}

/// The first receipt of a receipt file, on the wire.
fn receipt(path: &std::path::Path) -> anyhow::Result<xgate_proto::v1::AuditReceipt> {
    let file = crate::receipts::read(path)?;
    let first = file
        .receipts
        .first()
        .with_context(|| format!("`{}` holds no receipt", path.display()))?;
    Ok(crate::receipts::to_proto(first))
}

pub async fn rate(args: RateArgs) -> anyhow::Result<()> {
    let reasons = args
        .reasons
        .iter()
        .filter_map(|r| RatingReason::from_str_name(&format!("RATING_REASON_{}", r.to_uppercase())))
        .map(|r| r as i32)
        .collect();
    let verdict = if args.verdict == "good" {
        Verdict::Good
    } else {
        Verdict::Bad
    };
    let rating = connect(&args.tls)
        .await?
        .rate(RateRequest {
            receipt: Some(receipt(&args.receipt)?),
            record_type: args.record_type,
            verdict: verdict as i32,
            reasons,
            text: args.text,
        })
        .await
        .map_err(refused)?
        .into_inner();
    crate::outln!(
        "rated {} of request {} {} ({})",
        rating.record_type,
        rating.request_id,
        args.verdict,
        rating.id
    )?;
    Ok(())
}

pub async fn run(command: ObjectionCommand) -> anyhow::Result<()> {
    match command {
        ObjectionCommand::File(args) => {
            let value: serde_json::Value = serde_json::from_str(&args.value)
                .unwrap_or_else(|_| serde_json::Value::String(args.value.clone()));
            let objection = connect(&args.tls)
                .await?
                .file(FileObjectionRequest {
                    receipt: Some(receipt(&args.receipt)?),
                    subject: Some(Subject {
                        kind: xgate_proto::kind::to_proto(crate::fetch::guess_kind(&args.subject))
                            as i32,
                        id: args.subject,
                    }),
                    record_type: args.record_type,
                    field_path: args.field,
                    believed_value: Some(xgate_proto::json::to_value(value)),
                    evidence_ref: args.evidence,
                    ..FileObjectionRequest::default()
                })
                .await
                .map_err(refused)?
                .into_inner();
            print(&objection)
        }
        ObjectionCommand::List { tls, state } => {
            let states = state
                .iter()
                .filter_map(|s| {
                    ObjectionState::from_str_name(&format!("OBJECTION_STATE_{}", s.to_uppercase()))
                })
                .map(|s| s as i32)
                .collect();
            let objections = connect(&tls)
                .await?
                .list(ListObjectionsRequest {
                    states,
                    id: String::new(),
                })
                .await
                .map_err(refused)?
                .into_inner()
                .objections;
            if objections.is_empty() {
                crate::outln!("no objection")?;
            }
            for o in &objections {
                print(o)?;
            }
            Ok(())
        }
        ObjectionCommand::Watch { tls } => {
            let mut stream = connect(&tls)
                .await?
                .watch(WatchObjectionsRequest {})
                .await
                .map_err(refused)?
                .into_inner();
            while let Some(o) = stream.next().await {
                print(&o.map_err(refused)?)?;
            }
            Ok(())
        }
        ObjectionCommand::Ack { tls, id } => {
            let o = connect(&tls)
                .await?
                .acknowledge(ObjectionRef { id })
                .await
                .map_err(refused)?
                .into_inner();
            print(&o)
        }
        ObjectionCommand::Dispose {
            tls,
            id,
            outcome,
            reason,
        } => {
            let disposition = if outcome == "corrected" {
                Disposition::Corrected
            } else {
                Disposition::Rejected
            };
            let o = connect(&tls)
                .await?
                .dispose(DisposeObjectionRequest {
                    id,
                    disposition: disposition as i32,
                    reason,
                })
                .await
                .map_err(refused)?
                .into_inner();
            print(&o)
        }
        ObjectionCommand::Close { tls, id } => {
            let o = connect(&tls)
                .await?
                .close(ObjectionRef { id })
                .await
                .map_err(refused)?
                .into_inner();
            print(&o)
        }
    }
}

/// An objection's state in words, e.g. `disposed (corrected)`.
pub fn state_name(o: &Objection) -> String {
    let state = ObjectionState::try_from(o.state)
        .map_or("unknown", |s| s.as_str_name())
        .trim_start_matches("OBJECTION_STATE_")
        .to_lowercase();
    match Disposition::try_from(o.disposition) {
        Ok(Disposition::Corrected) => format!("{state} (corrected)"),
        Ok(Disposition::Rejected) => format!("{state} (rejected)"),
        _ => state,
    }
}

fn print(o: &Objection) -> anyhow::Result<()> {
    let at =
        |t: Option<&prost_types::Timestamp>| t.map_or_else(|| "-".to_owned(), ToString::to_string);
    let value = o
        .believed_value
        .as_ref()
        .map(xgate_proto::json::from_value)
        .unwrap_or_default();
    crate::outln!(
        "{}  {}{}",
        o.id,
        state_name(o),
        if o.overdue { "  OVERDUE" } else { "" }
    )?;
    crate::outln!(
        "  {}.{} of request {} ({}): believed {value}",
        o.record_type,
        o.field_path,
        o.request_id,
        o.department
    )?;
    crate::outln!(
        "  filed by {} at {}, due {}; evidence {}",
        o.filed_by,
        at(o.filed_at.as_ref()),
        at(o.due_at.as_ref()),
        o.evidence_ref
    )?;
    if !o.disposal_reason.is_empty() {
        crate::outln!("  outcome: {}", o.disposal_reason)?;
    }
    Ok(())
}

pub async fn scorecard(args: ScorecardArgs) -> anyhow::Result<()> {
    let response = connect(&args.tls)
        .await?
        .scorecards(ScorecardsRequest {
            window_days: args.days,
            department: args.department,
        })
        .await
        .map_err(refused)?
        .into_inner();
    if args.json {
        let json: Vec<_> = response
            .departments
            .iter()
            .map(|d| {
                serde_json::json!({
                    "department": d.department,
                    "total": card_json(d.total.as_ref()),
                    "record_types": d.record_types.iter().map(|t| serde_json::json!({
                        "record_type": t.record_type,
                        "card": card_json(t.card.as_ref()),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "window_days": response.window_days,
                "departments": json,
            }))?
        )?;
        return Ok(());
    }
    crate::outln!("Scorecards over the last {} days", response.window_days)?;
    crate::outln!(
        "{:<46} {:>7} {:>7} {:>8} {:>8} {:>7} {:>7} {:>6} {:>6} {:>12}",
        "DEPARTMENT / RECORD TYPE",
        "CALLED",
        "AVAIL",
        "P50 MS",
        "P99 MS",
        "INVAL",
        "NOTFND",
        "GOOD",
        "BAD",
        "OPEN/OVERDUE"
    )?;
    for d in &response.departments {
        row(&d.department, d.total.as_ref())?;
        for t in &d.record_types {
            row(&format!("  {}", t.record_type), t.card.as_ref())?;
        }
    }
    Ok(())
}

fn row(name: &str, card: Option<&Scorecard>) -> std::io::Result<()> {
    let c = card.cloned().unwrap_or_default();
    crate::outln!(
        "{:<46} {:>7} {:>6.1}% {:>8.2} {:>8.2} {:>6.1}% {:>6.1}% {:>6} {:>6} {:>12}",
        name,
        c.called,
        c.availability * 100.0,
        c.p50_ms,
        c.p99_ms,
        c.invalid_rate * 100.0,
        c.not_found_rate * 100.0,
        c.ratings_good,
        c.ratings_bad,
        format!("{}/{}", c.objections_open, c.objections_overdue)
    )
}

fn card_json(card: Option<&Scorecard>) -> serde_json::Value {
    let c = card.cloned().unwrap_or_default();
    serde_json::json!({
        "called": c.called,
        "answered": c.answered,
        "availability": c.availability,
        "p50_ms": c.p50_ms,
        "p99_ms": c.p99_ms,
        "invalid_rate": c.invalid_rate,
        "not_found_rate": c.not_found_rate,
        "ratings_good": c.ratings_good,
        "ratings_bad": c.ratings_bad,
        "objections_open": c.objections_open,
        "objections_overdue": c.objections_overdue,
        "median_dispose_hours": c.median_dispose_hours,
    })
}
