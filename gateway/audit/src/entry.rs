//! Entries, their canonical byte encoding and the hash chain over them.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The hash the first entry links to: 32 zero bytes.
pub const GENESIS: [u8; 32] = [0; 32];

/// Access decisions (one per record type of a fetch) and administrative events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Access,
    Admin,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Access => "access",
            Kind::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "access" => Some(Kind::Access),
            "admin" => Some(Kind::Admin),
            _ => None,
        }
    }
}

/// An entry before it is appended: everything but its place in the chain.
///
/// The subject is only ever held as `subject_hmac` (see
/// [`crate::Keys::subject_hmac`]); no field may carry a plain ID number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEntry {
    /// Microseconds since the Unix epoch, UTC.
    pub time_us: i64,
    pub kind: Kind,
    /// Instance id of the gateway process that wrote it.
    pub gateway: String,
    pub request_id: String,
    pub trace_id: String,
    /// Requester identity from its certificate (`xgate://requester/<id>`'s id).
    pub requester: String,
    pub operator_id: String,
    pub purpose: String,
    pub case_id: String,
    pub approval_item: String,
    /// Keyed hash (hex) of `kind:id` of the subject; empty for admin events.
    pub subject_hmac: String,
    pub record_type: String,
    pub view: String,
    /// `permit` or `deny`.
    pub decision: String,
    pub policy_ids: Vec<String>,
    pub policy_set_version: String,
    /// Outcome: `OK`, `DENIED`, `UNAVAILABLE`, ...
    pub status: String,
    /// Source department of the record type.
    pub department: String,
    pub latency_us: u64,
    /// Admin events: what happened (`adapter_registered`, ...); empty for access.
    pub event: String,
    /// Admin events: details as JSON text; empty for access.
    pub detail: String,
}

impl NewEntry {
    /// An empty access entry stamped now; callers fill in the rest.
    pub fn access() -> NewEntry {
        NewEntry::blank(Kind::Access)
    }

    /// An admin event stamped now.
    pub fn admin(event: &str, detail: serde_json::Value) -> NewEntry {
        let mut entry = NewEntry::blank(Kind::Admin);
        entry.event = event.to_owned();
        entry.detail = detail.to_string();
        entry
    }

    fn blank(kind: Kind) -> NewEntry {
        NewEntry {
            time_us: now_us(),
            kind,
            gateway: String::new(),
            request_id: String::new(),
            trace_id: String::new(),
            requester: String::new(),
            operator_id: String::new(),
            purpose: String::new(),
            case_id: String::new(),
            approval_item: String::new(),
            subject_hmac: String::new(),
            record_type: String::new(),
            view: String::new(),
            decision: String::new(),
            policy_ids: Vec::new(),
            policy_set_version: String::new(),
            status: String::new(),
            department: String::new(),
            latency_us: 0,
            event: String::new(),
            detail: String::new(),
        }
    }

    /// The canonical encoding that is hashed: every field in a fixed order,
    /// strings length-prefixed (u32 BE), numbers big-endian, lists as a count
    /// then their items. Independent of any serializer's field order.
    pub fn canonical(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(b"xgate-audit-v1");
        out.extend_from_slice(&self.time_us.to_be_bytes());
        let put = |out: &mut Vec<u8>, s: &str| {
            out.extend_from_slice(&(s.len() as u32).to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        };
        put(&mut out, self.kind.as_str());
        for s in [
            &self.gateway,
            &self.request_id,
            &self.trace_id,
            &self.requester,
            &self.operator_id,
            &self.purpose,
            &self.case_id,
            &self.approval_item,
            &self.subject_hmac,
            &self.record_type,
            &self.view,
            &self.decision,
        ] {
            put(&mut out, s);
        }
        out.extend_from_slice(&(self.policy_ids.len() as u32).to_be_bytes());
        for id in &self.policy_ids {
            put(&mut out, id);
        }
        for s in [&self.policy_set_version, &self.status, &self.department] {
            put(&mut out, s);
        }
        out.extend_from_slice(&self.latency_us.to_be_bytes());
        put(&mut out, &self.event);
        put(&mut out, &self.detail);
        out
    }
}

/// An entry in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Position in the chain, from 1, without gaps.
    pub seq: u64,
    #[serde(flatten)]
    pub body: NewEntry,
    /// Hex SHA-256 of the predecessor (zeros for seq 1).
    pub prev_hash: String,
    /// Hex `SHA-256(prev_hash || canonical(body) || seq)`.
    pub hash: String,
}

/// `SHA-256(prev || canonical || seq as u64 BE)`.
pub fn chain_hash(prev: &[u8; 32], body: &NewEntry, seq: u64) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(body.canonical());
    h.update(seq.to_be_bytes());
    h.finalize().into()
}

/// Links `bodies` after `(head_seq, head_hash)`.
pub fn link(head_seq: u64, head_hash: [u8; 32], bodies: Vec<NewEntry>) -> Vec<Entry> {
    let mut prev = head_hash;
    let mut seq = head_seq;
    bodies
        .into_iter()
        .map(|body| {
            seq += 1;
            let hash = chain_hash(&prev, &body, seq);
            let entry = Entry {
                seq,
                body,
                prev_hash: hex::encode(prev),
                hash: hex::encode(hash),
            };
            prev = hash;
            entry
        })
        .collect()
}

/// Decodes a 32-byte hex hash.
pub fn decode_hash(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

pub fn now_us() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    i64::try_from(now.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

/// RFC 3339 text of a microsecond timestamp.
pub fn format_time(time_us: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(time_us) * 1000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| time_us.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(n: u32) -> NewEntry {
        let mut e = NewEntry::access();
        e.time_us = 1_700_000_000_000_000;
        e.request_id = format!("req-{n}");
        e.policy_ids = vec!["a".into(), "b".into()];
        e
    }

    #[test]
    fn canonical_encoding_separates_fields() {
        // Moving a byte between adjacent fields must change the encoding.
        let mut a = body(1);
        a.purpose = "ab".into();
        a.case_id = "c".into();
        let mut b = a.clone();
        b.purpose = "a".into();
        b.case_id = "bc".into();
        assert_ne!(a.canonical(), b.canonical());
        let mut c = body(1);
        c.policy_ids = vec!["ab".into()];
        let mut d = body(1);
        d.policy_ids = vec!["a".into(), "b".into()];
        assert_ne!(c.canonical(), d.canonical());
    }

    #[test]
    fn link_chains_hashes_from_the_head() {
        let entries = link(0, GENESIS, vec![body(1), body(2)]);
        assert_eq!(entries[0].seq, 1);
        assert_eq!(entries[0].prev_hash, hex::encode(GENESIS));
        assert_eq!(entries[1].prev_hash, entries[0].hash);
        let h1 = chain_hash(&GENESIS, &body(1), 1);
        assert_eq!(entries[0].hash, hex::encode(h1));
        // The seq is part of the hash.
        assert_ne!(chain_hash(&GENESIS, &body(1), 2), h1);
    }

    #[test]
    fn times_format_as_rfc3339() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00Z");
    }
}
