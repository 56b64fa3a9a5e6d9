//! `xgate audit`: the auditor's commands over the `Audit` API, offline
//! verification of an export, and the gateway's public key.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use futures::StreamExt as _;
use xgate_proto::v1::audit_client::AuditClient;
use xgate_proto::v1::{
    AuditEntry, AuditExportRequest, AuditQueryRequest, AuditVerifyRequest, CheckpointsRequest,
    Subject, SubjectReportRequest, VerifyTrustedRequest,
};

use super::ClientTls;
use super::fetch::guess_kind;
use xgate_proto::kind::to_proto as proto_kind;

#[derive(clap::Subcommand, Debug)]
pub enum AuditCommand {
    /// Entries matching a filter, one JSON object per line.
    Query(QueryArgs),
    /// Check the hash chain and checkpoint signatures (of the gateway's
    /// store, or offline of an export with `--file` and `--public-key`).
    Verify(VerifyArgs),
    /// Who accessed a subject's data: when, what, why.
    Report(ReportArgs),
    /// The latest signed checkpoint of every chain; with `--out DIR`, each
    /// kept as `DIR/<chain>.checkpoint` for `verify --trusted` later.
    Checkpoints {
        #[command(flatten)]
        tls: ClientTls,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Follow the gateway's checkpoints (an auditor's office runs this):
    /// accept a new checkpoint only if the log still extends the one kept
    /// before (consistency proof), cosign it with the watcher's own key and
    /// keep it as `OUT/<chain>.checkpoint`. Fails loudly on a log that does not.
    Watch(WatchArgs),
    /// The whole log as JSON lines, for offline verification.
    Export(ExportArgs),
    /// Print the gateway's audit public key(s) from its key directory.
    Pubkey {
        /// Gateway configuration file (its `[audit] key_dir`).
        #[arg(long, env = "XGATE_CONFIG")]
        config: PathBuf,
    },
}

#[derive(clap::Args, Debug)]
pub struct QueryArgs {
    #[command(flatten)]
    pub tls: ClientTls,
    /// Subject ID number (matched through its keyed hash at the gateway).
    #[arg(long)]
    pub subject: Option<String>,
    #[arg(long)]
    pub requester: Option<String>,
    #[arg(long = "type")]
    pub record_type: Option<String>,
    #[arg(long)]
    pub department: Option<String>,
    /// `permit` or `deny`.
    #[arg(long)]
    pub decision: Option<String>,
    /// Most entries to print (0: all).
    #[arg(long, default_value_t = 0)]
    pub limit: u64,
}

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// An export file to verify offline (no gateway).
    #[arg(long, requires = "public_key", conflicts_with_all = ["receipt", "trusted"])]
    pub file: Option<PathBuf>,
    /// A receipt file (`xgate fetch --receipt`): prove each receipt's entry is
    /// in the gateway's log, unaltered. A requester or auditor certificate.
    #[arg(long, value_name = "FILE", conflicts_with = "trusted")]
    pub receipt: Option<PathBuf>,
    /// A checkpoint (signed note) kept from `xgate audit checkpoints`: prove
    /// the log still extends it. An auditor certificate.
    #[arg(long, value_name = "FILE")]
    pub trusted: Option<PathBuf>,
    /// The gateway's public key: 64 hex digits, or a file holding them.
    #[arg(long)]
    pub public_key: Option<String>,
    #[arg(long, env = "XGATE_GATEWAY", default_value = "https://127.0.0.1:50051")]
    pub gateway: String,
    #[arg(long, env = "XGATE_CERT")]
    pub cert: Option<PathBuf>,
    #[arg(long, env = "XGATE_KEY")]
    pub key: Option<PathBuf>,
    #[arg(long, env = "XGATE_CA")]
    pub ca: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct WatchArgs {
    #[command(flatten)]
    pub tls: ClientTls,
    /// Where the accepted, cosigned checkpoints and the watcher's key live.
    #[arg(long)]
    pub out: PathBuf,
    /// The watcher's name in its cosignatures.
    #[arg(long, default_value = "xgate-audit-watch")]
    pub name: String,
    /// Seconds between rounds.
    #[arg(long, default_value_t = 5)]
    pub every: u64,
    /// Stop after this many rounds (0: never).
    #[arg(long, default_value_t = 0)]
    pub rounds: u64,
}

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    #[command(flatten)]
    pub tls: ClientTls,
    /// The subject's ID number.
    #[arg(long)]
    pub subject: String,
}

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub tls: ClientTls,
    /// Output file; stdout when absent.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

async fn client(tls: &ClientTls) -> anyhow::Result<AuditClient<tonic::transport::Channel>> {
    let channel = super::client::connect(&tls.gateway, &tls.files()).await?;
    Ok(AuditClient::new(channel).max_decoding_message_size(64 * 1024 * 1024))
}

fn subject(id: &str) -> Subject {
    Subject {
        kind: proto_kind(guess_kind(id)) as i32,
        id: id.to_owned(),
    }
}

/// How the subject stood in an access, from its entry's `detail`: a
/// representative (relation and the start of the applicant's keyed hash),
/// the subject's own scanned code, or nothing (a fetch by raw ID).
/// How the subject's say shows in one decision's row: by a verified
/// representative, the subject's scanned code, or a consent covering
/// `record_type`.
fn applied(detail: &str, record_type: &str) -> String {
    let Ok(detail) = serde_json::from_str::<serde_json::Value>(detail) else {
        return String::new();
    };
    let rep = &detail["representation"];
    let by = rep["relation"].as_str().map(|relation| {
        let applicant = rep["applicant_hmac"].as_str().unwrap_or_default();
        format!(
            "by {relation} {}…",
            applicant.get(..12).unwrap_or(applicant)
        )
    });
    let code = detail["subject_code"]
        .is_object()
        .then(|| "code scanned".to_owned());
    let consent = detail["consents"][record_type]
        .as_str()
        .map(|id| format!("consent {id}"));
    let screened = detail["screening"]["item"].as_str().map(|item| {
        let outcome = detail["screening"]["eligibility"].as_str().unwrap_or("?");
        format!("screened for {item}: {outcome}")
    });
    by.into_iter()
        .chain(code)
        .chain(consent)
        .chain(screened)
        .collect::<Vec<_>>()
        .join(", ")
}

fn entry_json(e: &AuditEntry) -> serde_json::Value {
    let time = e
        .time
        .as_ref()
        .map(|t| xgate_audit::entry::format_time(t.seconds * 1_000_000 + i64::from(t.nanos) / 1000))
        .unwrap_or_default();
    serde_json::json!({
        "chain": e.chain, "index": e.index, "position": e.position,
        "time": time, "kind": e.kind, "gateway": e.gateway,
        "request_id": e.request_id, "trace_id": e.trace_id, "requester": e.requester,
        "operator_id": e.operator_id, "purpose": e.purpose, "case_id": e.case_id,
        "approval_item": e.approval_item, "subject_hmac": e.subject_hmac,
        "record_type": e.record_type, "view": e.view, "decision": e.decision,
        "policy_ids": e.policy_ids, "policy_set_version": e.policy_set_version,
        "status": e.status, "department": e.department, "latency_us": e.latency_us,
        "event": e.event, "detail": e.detail, "hash": e.hash,
    })
}

pub async fn run(command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Query(args) => {
            let mut client = client(&args.tls).await?;
            let request = AuditQueryRequest {
                subject: args.subject.as_deref().map(subject),
                requester: args.requester.unwrap_or_default(),
                record_type: args.record_type.unwrap_or_default(),
                department: args.department.unwrap_or_default(),
                decision: args.decision.unwrap_or_default(),
                max_entries: args.limit,
                ..AuditQueryRequest::default()
            };
            let mut pages = client
                .query(request)
                .await
                .map_err(super::fetch::explain)?
                .into_inner();
            while let Some(page) = pages.next().await {
                for e in page.map_err(super::fetch::explain)?.entries {
                    crate::outln!("{}", entry_json(&e))?;
                }
            }
            Ok(())
        }
        AuditCommand::Verify(args) => verify(args).await,
        AuditCommand::Watch(args) => watch(args).await,
        AuditCommand::Checkpoints { tls, out } => {
            let mut client = client(&tls).await?;
            let checkpoints = client
                .checkpoints(CheckpointsRequest {})
                .await
                .map_err(super::fetch::explain)?
                .into_inner()
                .checkpoints;
            for cp in checkpoints {
                match &out {
                    Some(dir) => {
                        std::fs::create_dir_all(dir)?;
                        let path = dir.join(format!("{}.checkpoint", cp.chain));
                        std::fs::write(&path, &cp.note)
                            .with_context(|| format!("writing `{}`", path.display()))?;
                        crate::outln!("{}", path.display())?;
                    }
                    None => crate::outln!("{}", cp.note)?,
                }
            }
            Ok(())
        }
        AuditCommand::Report(args) => {
            let mut client = client(&args.tls).await?;
            let report = client
                .subject_report(SubjectReportRequest {
                    subject: Some(subject(&args.subject)),
                    ..SubjectReportRequest::default()
                })
                .await
                .map_err(super::fetch::explain)?
                .into_inner();
            crate::outln!(
                "Subject access report (subject key {}…): {} decisions, {} released, {} denied",
                report.subject_hmac.get(..12).unwrap_or_default(),
                report.accesses.len(),
                report.released,
                report.denied
            )?;
            crate::outln!(
                "{:<27} {:<24} {:<14} {:<18} {:<16} {:<34} {:<6} {:<14} APPLIED",
                "TIME",
                "REQUESTER",
                "OPERATOR",
                "PURPOSE",
                "CASE",
                "RECORD TYPE",
                "DECIS.",
                "STATUS"
            )?;
            for e in &report.accesses {
                let time = entry_json(e)["time"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                crate::outln!(
                    "{:<27} {:<24} {:<14} {:<18} {:<16} {:<34} {:<6} {:<14} {}",
                    time,
                    e.requester,
                    e.operator_id,
                    e.purpose,
                    e.case_id,
                    e.record_type,
                    e.decision,
                    e.status,
                    applied(&e.detail, &e.record_type)
                )?;
            }
            let mut screened: Vec<String> = report
                .accesses
                .iter()
                .filter_map(|e| {
                    let detail: serde_json::Value = serde_json::from_str(&e.detail).ok()?;
                    let s = &detail["screening"];
                    Some(format!(
                        "screened for {}: {} (by {}, run {})",
                        s["item"].as_str()?,
                        s["eligibility"].as_str()?,
                        e.requester,
                        s["run"].as_str()?
                    ))
                })
                .collect();
            screened.dedup();
            if !screened.is_empty() {
                crate::outln!()?;
                crate::outln!("Screenings (yes/no only; no record released):")?;
                for line in &screened {
                    crate::outln!("  {line}")?;
                }
            }
            if !report.events.is_empty() {
                crate::outln!()?;
                crate::outln!("Other events about the subject's data:")?;
                for e in &report.events {
                    let time = entry_json(e)["time"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    crate::outln!("{:<27} {:<28} by {}", time, e.event, e.requester)?;
                }
            }
            Ok(())
        }
        AuditCommand::Export(args) => {
            let mut client = client(&args.tls).await?;
            let mut chunks = client
                .export(AuditExportRequest {})
                .await
                .map_err(super::fetch::explain)?
                .into_inner();
            let mut out: Box<dyn std::io::Write> = match &args.out {
                Some(path) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(path)
                        .with_context(|| format!("creating `{}`", path.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            while let Some(chunk) = chunks.next().await {
                for line in chunk.map_err(super::fetch::explain)?.lines {
                    writeln!(out, "{line}")?;
                }
            }
            out.flush()?;
            Ok(())
        }
        AuditCommand::Pubkey { config } => {
            let config = xgate::config::Config::load(&config)?;
            let keys = xgate_audit::Keys::public_keys_in(&config.audit_key_dir())?;
            for key in &keys.0 {
                crate::outln!("{key}")?;
            }
            Ok(())
        }
    }
}

async fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    if let Some(file) = &args.file {
        let key = args.public_key.as_deref().unwrap_or_default();
        let text = if std::path::Path::new(key).exists() {
            std::fs::read_to_string(key).with_context(|| format!("reading `{key}`"))?
        } else {
            key.to_owned()
        };
        let anchors = xgate_audit::PublicKeys::parse(&text)?;
        let reader = std::io::BufReader::new(
            std::fs::File::open(file).with_context(|| format!("opening `{}`", file.display()))?,
        );
        let report = xgate_audit::verify_export(reader, &anchors)?;
        crate::outln!("{report}")?;
        anyhow::ensure!(report.is_ok(), "verification failed");
        return Ok(());
    }
    let (Some(cert), Some(key), Some(ca)) = (args.cert, args.key, args.ca) else {
        anyhow::bail!(
            "give --cert, --key and --ca of an auditor certificate, or --file and --public-key to verify an export offline"
        );
    };
    let tls = ClientTls {
        gateway: args.gateway,
        cert,
        key,
        ca,
    };
    let mut client = client(&tls).await?;
    if let Some(path) = &args.receipt {
        return verify_receipts(&mut client, path).await;
    }
    if let Some(path) = &args.trusted {
        let checkpoint = std::fs::read_to_string(path)
            .with_context(|| format!("reading `{}`", path.display()))?;
        let r = client
            .verify_trusted(VerifyTrustedRequest { checkpoint })
            .await
            .map_err(super::fetch::explain)?
            .into_inner();
        if r.ok {
            crate::outln!(
                "audit log OK: chain `{}` extends the trusted checkpoint of size {} (now {}; consistency proof of {} hashes)",
                r.chain,
                r.trusted_size,
                r.size,
                r.consistency_proof.len()
            )?;
            return Ok(());
        }
        crate::outln!(
            "audit log does NOT extend the trusted checkpoint: {}",
            r.reason
        )?;
        anyhow::bail!("verification failed");
    }
    let r = client
        .verify(AuditVerifyRequest {})
        .await
        .map_err(super::fetch::explain)?
        .into_inner();
    if r.ok {
        crate::outln!(
            "audit log OK: {} chain{} ({}), {} entries, every tree intact, {} of {} checkpoints verified",
            r.chains.len(),
            if r.chains.len() == 1 { "" } else { "s" },
            r.chains.join(", "),
            r.entries,
            r.checkpoints_verified,
            r.checkpoints
        )?;
        Ok(())
    } else {
        crate::outln!(
            "audit log BROKEN in chain `{}` at entry {}: {} ({} entries, {} checkpoints read)",
            r.first_bad_chain,
            r.first_bad_seq,
            r.reason,
            r.entries,
            r.checkpoints
        )?;
        anyhow::bail!("verification failed")
    }
}

/// Proves every receipt of a receipt file at the gateway.
async fn verify_receipts(
    client: &mut AuditClient<tonic::transport::Channel>,
    path: &std::path::Path,
) -> anyhow::Result<()> {
    let file = super::receipts::read(path)?;
    let mut failed = 0;
    for receipt in &file.receipts {
        let r = client
            .verify_receipt(super::receipts::to_proto(receipt))
            .await
            .map_err(super::fetch::explain)?
            .into_inner();
        if r.ok {
            let covered = if r.checkpoint.is_empty() {
                "not yet covered by a checkpoint".to_owned()
            } else {
                format!("inclusion proof of {} hashes", r.inclusion_proof.len())
            };
            crate::outln!(
                "receipt OK: chain `{}` entry {} is in the log, unaltered, signed by {}; {covered}",
                receipt.chain,
                receipt.index,
                r.key
            )?;
        } else {
            failed += 1;
            crate::outln!(
                "receipt FAILED: chain `{}` entry {}: {}",
                receipt.chain,
                receipt.index,
                r.reason
            )?;
        }
    }
    anyhow::ensure!(
        failed == 0,
        "{failed} of {} receipt(s) of request {} failed",
        file.receipts.len(),
        file.request_id
    );
    Ok(())
}

/// `xgate audit watch`: see [`AuditCommand::Watch`].
async fn watch(args: WatchArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating `{}`", args.out.display()))?;
    let keys = xgate_audit::Keys::load_or_create(&args.out.join("watcher-key"))?;
    let mut client = client(&args.tls).await?;
    let mut round = 0;
    loop {
        round += 1;
        let checkpoints = client
            .checkpoints(CheckpointsRequest {})
            .await
            .map_err(super::fetch::explain)?
            .into_inner()
            .checkpoints;
        // Every kept checkpoint must still be extended by the log — also of a
        // chain the gateway no longer shows one for (deleting checkpoint rows
        // hides nothing) — before any is replaced.
        for entry in std::fs::read_dir(&args.out)?.flatten() {
            let path = entry.path();
            let Some(chain) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".checkpoint"))
            else {
                continue;
            };
            let kept = std::fs::read_to_string(&path)?;
            let r = client
                .verify_trusted(VerifyTrustedRequest { checkpoint: kept })
                .await
                .map_err(super::fetch::explain)?
                .into_inner();
            anyhow::ensure!(
                r.ok,
                "chain `{chain}`: the log does NOT extend the checkpoint kept in `{}`: {}",
                path.display(),
                r.reason
            );
        }
        for cp in checkpoints {
            let path = args.out.join(format!("{}.checkpoint", cp.chain));
            let mut note = xgate_audit::note::SignedCheckpoint::parse(&cp.note)
                .map_err(|e| anyhow::anyhow!("chain `{}`: unreadable checkpoint: {e}", cp.chain))?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            note.cosign(&args.name, &keys, now);
            std::fs::write(&path, &note.text)
                .with_context(|| format!("writing `{}`", path.display()))?;
            crate::outln!(
                "chain `{}`: size {} accepted and cosigned -> {}",
                cp.chain,
                note.head.size,
                path.display()
            )?;
        }
        if args.rounds != 0 && round >= args.rounds {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_secs(args.every)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::applied;

    #[test]
    fn the_report_names_a_representative_and_a_scanned_code() {
        let detail = r#"{"representation":{"applicant_hmac":"0123456789abcdef0123","relation":"spouse","evidence":"marriage_registration.is_spouse_of@r1"},"subject_code":{"issuer":"demo","nonce":"ab"}}"#;
        assert_eq!(
            applied(detail, "t"),
            "by spouse 0123456789ab…, code scanned"
        );
        assert_eq!(
            applied(r#"{"subject_code":{"issuer":"demo"}}"#, "t"),
            "code scanned"
        );
        assert_eq!(applied("", "t"), "");
        assert_eq!(applied("{}", "t"), "");
        let consented = r#"{"consents":{"driving_licence":"01a2"}}"#;
        assert_eq!(applied(consented, "driving_licence"), "consent 01a2");
        assert_eq!(applied(consented, "real_estate_title"), "");
        let screened = r#"{"screening":{"item":"ELDERLY-ALLOWANCE","run":"r","seq":3,"eligibility":"eligible"}}"#;
        assert_eq!(
            applied(screened, "pension_entitlement"),
            "screened for ELDERLY-ALLOWANCE: eligible"
        );
    }
}
