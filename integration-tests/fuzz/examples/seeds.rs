//! Writes the seed corpora: `cargo run -p xgate-fuzz --example seeds -- integration-tests/fuzz/corpus`.
//!
//! Seeds are valid inputs that reach deep into each parser (a fetch the gateway
//! accepts, an export that verifies, the shipped policy and mapping files); AFL++
//! mutates from there. The replay test checks that they still do.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt as _;
use prost::Message as _;
use xgate_audit::{AuditLog, Decision, Keys, NewEntry, Options, Verdict, digest_records};
use xgate_catalog::ids::{resident_id_check_char, uscc_check_char};
use xgate_policy::PolicySet;
use xgate_proto::v1::{FetchRequest, RecordRequest, Subject, SubjectKind};

fn resident(first17: &str) -> String {
    format!(
        "{first17}{}",
        resident_id_check_char(first17).unwrap_or('0')
    )
}

fn uscc(first17: &str) -> String {
    format!("{first17}{}", uscc_check_char(first17).unwrap_or('0'))
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(name), bytes)
}

fn fetch_seeds(root: &Path, citizen: &str, company: &str) -> std::io::Result<()> {
    let dir = root.join("fetch");
    let by_types = FetchRequest {
        subject: Some(Subject {
            kind: SubjectKind::ResidentId as i32,
            id: citizen.into(),
        }),
        record_types: vec![
            "resident_identity_card".into(),
            "marriage_registration".into(),
        ],
        purpose: "GENERAL-APPROVAL".into(),
        case_id: "CASE-1".into(),
        operator_id: "op-1".into(),
        ..Default::default()
    };
    write(&dir, "by-types.bin", &by_types.encode_to_vec())?;
    let by_item = FetchRequest {
        approval_item: "PF-WITHDRAWAL".into(),
        purpose: "PF-WITHDRAWAL".into(),
        record_types: vec![],
        ..by_types.clone()
    };
    write(&dir, "by-item.bin", &by_item.encode_to_vec())?;
    let with_views = FetchRequest {
        subject: Some(Subject {
            kind: SubjectKind::Uscc as i32,
            id: company.into(),
        }),
        record_types: vec![],
        requests: vec![RecordRequest {
            record_type: "business_licence".into(),
            view: "summary".into(),
            params: Default::default(),
        }],
        records_as_json: true,
        ..by_types.clone()
    };
    write(&dir, "views.bin", &with_views.encode_to_vec())?;
    let unknown = FetchRequest {
        record_types: (0..30).map(|i| format!("no_such_type_{i}")).collect(),
        ..by_types
    };
    write(&dir, "unknown-types.bin", &unknown.encode_to_vec())
}

fn id_seeds(root: &Path, citizen: &str, company: &str) -> std::io::Result<()> {
    let dir = root.join("ids");
    write(&dir, "resident.txt", citizen.as_bytes())?;
    write(
        &dir,
        "resident-x.txt",
        resident("11010518800229123").as_bytes(),
    )?;
    write(&dir, "uscc.txt", company.as_bytes())?;
    write(&dir, "bad-check.txt", b"110105194912310021")?;
    write(&dir, "short.txt", b"91110000")
}

fn policy_seeds(root: &Path) -> std::io::Result<()> {
    let dir = root.join("policy");
    for (i, (name, text)) in PolicySet::builtin_files().iter().enumerate() {
        let mut bytes = vec![u8::try_from(i).unwrap_or(0)];
        bytes.extend_from_slice(text.as_bytes());
        write(&dir, name, &bytes)?;
    }
    Ok(())
}

fn mapping_seeds(root: &Path) -> std::io::Result<()> {
    let dir = root.join("mapping");
    let mappings = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../adapters/demo-data/mappings");
    for entry in std::fs::read_dir(mappings)? {
        let path = entry?.path();
        if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
            write(&dir, name, &std::fs::read(&path)?)?;
        }
    }
    Ok(())
}

/// A real export: 40 answers and an admin event, checkpointed, plus the trusted key.
async fn audit_seed(root: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let tmp = tempfile::tempdir()?;
    let url = format!(
        "sqlite://{}?mode=rwc",
        tmp.path().join("audit.db").display()
    );
    let keys = Keys::generate()?;
    let trusted = keys.public_key().to_string();
    let options = Options {
        max_batch: 16,
        checkpoint_interval: Duration::ZERO,
        checkpoint_every: 16,
    };
    let log = AuditLog::open(&url, keys, options).await?;
    let mut entries: Vec<NewEntry> = (0..40)
        .map(|i| {
            let mut e = NewEntry::access();
            e.request_id = format!("req-{i}");
            e.requester = "bozhou-approval".into();
            e.purpose = "GENERAL-APPROVAL".into();
            e.subject_hmac = format!("{i:064x}");
            e.decisions = vec![
                Decision {
                    record_type: "resident_identity_card".into(),
                    view: "full".into(),
                    verdict: Verdict::Permit,
                    policy_ids: vec!["hall-reads-identity".into()],
                    status: "OK".into(),
                    department: "public-security".into(),
                    records_digest: Some(digest_records([format!("{i}").as_bytes()])),
                    latency_us: 0,
                },
                Decision {
                    record_type: "tax_payment_record".into(),
                    view: "full".into(),
                    verdict: Verdict::Deny,
                    policy_ids: vec![],
                    status: "DENIED".into(),
                    department: "tax".into(),
                    records_digest: None,
                    latency_us: 0,
                },
            ];
            e
        })
        .collect();
    let mut admin = NewEntry::admin(
        "adapter_registered",
        serde_json::json!({"department": "tax"}),
    );
    admin.requester = "gateway-admin".into();
    entries.push(admin);
    let receipts = log.append(entries).await?;
    log.checkpoint().await?;
    let lines: Vec<String> = xgate_audit::export_lines(log.store().clone())
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?
        .concat();
    let dir = root.join("audit-export");
    write(
        &dir,
        "export.txt",
        format!("{trusted}\n{}\n", lines.join("\n")).as_bytes(),
    )?;
    let mut receipt = format!("{trusted}\n");
    if let Some(r) = receipts.first() {
        receipt.push_str(&r.to_json());
    }
    write(&dir, "receipt.txt", receipt.as_bytes())?;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root: PathBuf = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .ok_or("usage: seeds CORPUS_DIR")?;
    let citizen = resident("11010519491231002");
    let company = uscc("91110000100000000");
    id_seeds(&root, &citizen, &company)?;
    fetch_seeds(&root, &citizen, &company)?;
    policy_seeds(&root)?;
    mapping_seeds(&root)?;
    audit_seed(&root).await?;
    println!("seeds written to {}", root.display());
    Ok(())
}
