//! Receipt files: what `xgate fetch --receipt FILE` writes and
//! `xgate audit verify --receipt FILE` proves.
//!
//! One JSON document: `{"format": "xgate-receipts/1", "request_id": ...,
//! "receipts": [{chain, index, entry_hash, records_digest, signature}]}` with
//! hashes in hex. A unary fetch has one receipt; a streamed fetch one per
//! sealed batch.

use std::path::Path;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use xgate_proto::v1::AuditReceipt;

pub const FORMAT: &str = "xgate-receipts/1";

#[derive(Debug, Serialize, Deserialize)]
pub struct ReceiptFile {
    pub format: String,
    pub request_id: String,
    pub receipts: Vec<xgate_audit::Receipt>,
}

/// The wire receipt as the audit crate's (hex in files).
pub fn from_proto(r: &AuditReceipt) -> anyhow::Result<xgate_audit::Receipt> {
    xgate::audit::receipt_from_wire(r.clone())
        .map_err(|why| anyhow::anyhow!("the gateway sent a receipt whose {why}"))
}

pub use xgate::audit::receipt_to_proto as to_proto;

/// Writes the distinct receipts of an answer to `path`.
pub fn write(path: &Path, request_id: &str, receipts: &[AuditReceipt]) -> anyhow::Result<usize> {
    let mut distinct: Vec<xgate_audit::Receipt> = Vec::new();
    for r in receipts {
        let r = from_proto(r)?;
        if !distinct
            .iter()
            .any(|d| d.chain == r.chain && d.index == r.index)
        {
            distinct.push(r);
        }
    }
    let file = ReceiptFile {
        format: FORMAT.into(),
        request_id: request_id.to_owned(),
        receipts: distinct,
    };
    std::fs::write(path, serde_json::to_string_pretty(&file)? + "\n")
        .with_context(|| format!("writing `{}`", path.display()))?;
    Ok(file.receipts.len())
}

/// Reads a receipt file, refusing another format.
pub fn read(path: &Path) -> anyhow::Result<ReceiptFile> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading `{}`", path.display()))?;
    let file: ReceiptFile = serde_json::from_str(&text)
        .with_context(|| format!("`{}` is not a receipt file ({FORMAT})", path.display()))?;
    anyhow::ensure!(
        file.format == FORMAT,
        "`{}` has format `{}`, expected `{FORMAT}`",
        path.display(),
        file.format
    );
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receipt_file_round_trips_and_keeps_distinct_receipts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("r.json");
        let r = AuditReceipt {
            chain: "c".into(),
            index: 7,
            entry_hash: vec![1; 32],
            records_digest: vec![2; 32],
            signature: "ab".into(),
            batch_first: 6,
            batch_size: 3,
            batch_path: vec![vec![3; 32], vec![4; 32]],
        };
        assert_eq!(
            write(&path, "req", &[r.clone(), r.clone()]).expect("write"),
            1
        );
        let file = read(&path).expect("read");
        assert_eq!(file.request_id, "req");
        assert_eq!(to_proto(&file.receipts[0]), r);
        let short = AuditReceipt {
            entry_hash: vec![1; 3],
            ..r
        };
        assert!(from_proto(&short).is_err());
    }
}
