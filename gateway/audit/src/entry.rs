//! Entries and their canonical byte encoding.
//!
//! One entry per answer: a fetch (or one department batch of a stream) is a
//! single entry carrying every per-record [`Decision`]; an administrative
//! event is an entry without decisions. The entry is encoded once
//! ([`NewEntry::encode`]), and that byte string — followed by the entry's
//! index in its chain — is the Merkle leaf (see [`crate::merkle`]).
//!
//! Encoding (all integers big-endian, strings as a u32 length then UTF-8):
//!
//! ```text
//! "xgate-audit-v2" 0x00
//! chain            string   (instance id of the writing gateway)
//! time_us          i64
//! kind             u8       (0 access, 1 admin)
//! request_id trace_id requester operator_id purpose case_id approval_item
//! subject_hmac policy_set_version                     strings
//! latency_us       u64
//! event detail     strings
//! decisions        u32 count, then per decision:
//!   record_type view          strings
//!   verdict                   u8 (0 deny, 1 permit)
//!   policy_ids                u32 count, strings
//!   status department         strings
//!   records_digest            u8 0 | u8 1 + 32 bytes
//! --- appended by the writer, part of the stored leaf data:
//! index            u64
//! ```

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::merkle::Hash;

/// The encoding's version tag.
const MAGIC: &[u8] = b"xgate-audit-v2\0";
/// Domain tag of [`NewEntry::records_digest`].
const RECORDS_TAG: &[u8] = b"xgate-audit-records/v1\0";

/// Access answers and administrative events.
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

    pub(crate) fn code(self) -> i16 {
        match self {
            Kind::Access => 0,
            Kind::Admin => 1,
        }
    }
}

/// The policy's answer for one record type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Deny,
    Permit,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Deny => "deny",
            Verdict::Permit => "permit",
        }
    }

    pub fn parse(s: &str) -> Option<Verdict> {
        match s {
            "deny" => Some(Verdict::Deny),
            "permit" => Some(Verdict::Permit),
            _ => None,
        }
    }

    pub(crate) fn code(self) -> i16 {
        match self {
            Verdict::Deny => 0,
            Verdict::Permit => 1,
        }
    }
}

/// One record type's decision inside an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub record_type: String,
    pub view: String,
    pub verdict: Verdict,
    pub policy_ids: Vec<String>,
    /// Outcome: `OK`, `DENIED`, `UNAVAILABLE`, ...
    pub status: String,
    /// Source department of the record type.
    pub department: String,
    /// SHA-256 ([`digest_records`]) of what was released; `None` when
    /// nothing was.
    #[serde(with = "opt_hex")]
    pub records_digest: Option<Hash>,
    /// How long the department took (0 when not asked). Operational, not
    /// evidence: counted in the daily rollup ([`crate::rollup`]), never
    /// encoded in the entry, so it reads back as 0.
    #[serde(skip)]
    pub latency_us: u64,
}

/// An entry before it is appended.
///
/// The subject is only ever held as `subject_hmac` (see
/// [`crate::SubjectKey::hmac`]); no field may carry a plain ID number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEntry {
    /// Microseconds since the Unix epoch, UTC.
    pub time_us: i64,
    pub kind: Kind,
    pub request_id: String,
    pub trace_id: String,
    /// Requester identity from its certificate; the actor for admin events.
    pub requester: String,
    pub operator_id: String,
    pub purpose: String,
    pub case_id: String,
    pub approval_item: String,
    /// Keyed hash (hex) of `kind:id` of the subject; empty for admin events.
    pub subject_hmac: String,
    pub policy_set_version: String,
    pub latency_us: u64,
    /// Admin events: what happened (`adapter_registered`, ...); empty for access.
    pub event: String,
    /// Admin events: details as JSON text. Access entries: what the fetch
    /// was made with beyond the request (`{"subject_code": {"issuer",
    /// "nonce", "expires_at"}}` for a scanned code), else empty.
    pub detail: String,
    /// Access: one per record type of the answer.
    pub decisions: Vec<Decision>,
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
            request_id: String::new(),
            trace_id: String::new(),
            requester: String::new(),
            operator_id: String::new(),
            purpose: String::new(),
            case_id: String::new(),
            approval_item: String::new(),
            subject_hmac: String::new(),
            policy_set_version: String::new(),
            latency_us: 0,
            event: String::new(),
            detail: String::new(),
            decisions: Vec::new(),
        }
    }

    /// The canonical encoding for `chain`, without the index (see the
    /// module doc).
    pub fn encode(&self, chain: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + 96 * self.decisions.len());
        out.extend_from_slice(MAGIC);
        put_str(&mut out, chain);
        out.extend_from_slice(&self.time_us.to_be_bytes());
        out.push(match self.kind {
            Kind::Access => 0,
            Kind::Admin => 1,
        });
        for s in [
            &self.request_id,
            &self.trace_id,
            &self.requester,
            &self.operator_id,
            &self.purpose,
            &self.case_id,
            &self.approval_item,
            &self.subject_hmac,
            &self.policy_set_version,
        ] {
            put_str(&mut out, s);
        }
        out.extend_from_slice(&self.latency_us.to_be_bytes());
        put_str(&mut out, &self.event);
        put_str(&mut out, &self.detail);
        put_len(&mut out, self.decisions.len());
        for d in &self.decisions {
            put_str(&mut out, &d.record_type);
            put_str(&mut out, &d.view);
            out.push(match d.verdict {
                Verdict::Deny => 0,
                Verdict::Permit => 1,
            });
            put_len(&mut out, d.policy_ids.len());
            for id in &d.policy_ids {
                put_str(&mut out, id);
            }
            put_str(&mut out, &d.status);
            put_str(&mut out, &d.department);
            match &d.records_digest {
                None => out.push(0),
                Some(h) => {
                    out.push(1);
                    out.extend_from_slice(h);
                }
            }
        }
        out
    }

    /// The digest a receipt carries: every decision's records digest in
    /// order (zeros where nothing was released), under a domain tag.
    pub fn records_digest(&self) -> Hash {
        answer_digest(self.decisions.iter().map(|d| d.records_digest.as_ref()))
    }
}

/// The records digest of an answer from its decisions' digests in order
/// (`None` where nothing was released). A client that asked for
/// `records_as_json` recomputes its receipt's digest with this and
/// [`digest_records`] over each result's `records_json`.
pub fn answer_digest<'a>(decisions: impl ExactSizeIterator<Item = Option<&'a Hash>>) -> Hash {
    let mut h = Sha256::new();
    h.update(RECORDS_TAG);
    h.update((decisions.len() as u64).to_be_bytes());
    for d in decisions {
        match d {
            None => h.update([0u8]),
            Some(digest) => {
                h.update([1u8]);
                h.update(digest);
            }
        }
    }
    h.finalize().into()
}

/// SHA-256 of released records, each length-prefixed (u64 BE) so that
/// moving bytes between records changes the digest.
pub fn digest_records<'a>(records: impl IntoIterator<Item = &'a [u8]>) -> Hash {
    let mut h = Sha256::new();
    for r in records {
        h.update((r.len() as u64).to_be_bytes());
        h.update(r);
    }
    h.finalize().into()
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_len(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

/// An entry read back from its leaf data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Instance id of the chain (gateway) that wrote it.
    pub chain: String,
    /// Position in the chain, from 0.
    pub index: u64,
    #[serde(flatten)]
    pub body: NewEntry,
}

/// Why leaf data does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(String);

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.bytes.len() < n {
            return Err(DecodeError("truncated".into()));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        self.take(N)?
            .try_into()
            .map_err(|_| DecodeError("truncated".into()))
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    fn len(&mut self) -> Result<usize, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?) as usize)
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let n = self.len()?;
        let bytes = self.take(n)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError("a string is not UTF-8".into()))
    }
}

impl Entry {
    /// Decodes leaf data (encoding followed by the index).
    pub fn decode(leaf_data: &[u8]) -> Result<Entry, DecodeError> {
        let mut r = Reader { bytes: leaf_data };
        if r.take(MAGIC.len())? != MAGIC {
            return Err(DecodeError("not an xgate-audit-v2 entry".into()));
        }
        let chain = r.string()?;
        let time_us = i64::from_be_bytes(r.array()?);
        let kind = match r.u8()? {
            0 => Kind::Access,
            1 => Kind::Admin,
            k => return Err(DecodeError(format!("unknown kind {k}"))),
        };
        let mut s = [const { String::new() }; 9];
        for slot in &mut s {
            *slot = r.string()?;
        }
        let [
            request_id,
            trace_id,
            requester,
            operator_id,
            purpose,
            case_id,
            approval_item,
            subject_hmac,
            policy_set_version,
        ] = s;
        let latency_us = u64::from_be_bytes(r.array()?);
        let event = r.string()?;
        let detail = r.string()?;
        let n = r.len()?;
        // Each decision takes at least 22 bytes: bound the allocation.
        let mut decisions = Vec::with_capacity(n.min(r.bytes.len() / 22));
        for _ in 0..n {
            let record_type = r.string()?;
            let view = r.string()?;
            let verdict = match r.u8()? {
                0 => Verdict::Deny,
                1 => Verdict::Permit,
                v => return Err(DecodeError(format!("unknown verdict {v}"))),
            };
            let ids = r.len()?;
            let mut policy_ids = Vec::with_capacity(ids.min(r.bytes.len() / 4));
            for _ in 0..ids {
                policy_ids.push(r.string()?);
            }
            let status = r.string()?;
            let department = r.string()?;
            let records_digest = match r.u8()? {
                0 => None,
                1 => Some(r.array::<32>()?),
                f => return Err(DecodeError(format!("unknown digest flag {f}"))),
            };
            decisions.push(Decision {
                record_type,
                view,
                verdict,
                policy_ids,
                status,
                department,
                records_digest,
                latency_us: 0,
            });
        }
        let index = u64::from_be_bytes(r.array()?);
        if !r.bytes.is_empty() {
            return Err(DecodeError(format!(
                "{} trailing bytes after the entry",
                r.bytes.len()
            )));
        }
        Ok(Entry {
            chain,
            index,
            body: NewEntry {
                time_us,
                kind,
                request_id,
                trace_id,
                requester,
                operator_id,
                purpose,
                case_id,
                approval_item,
                subject_hmac,
                policy_set_version,
                latency_us,
                event,
                detail,
                decisions,
            },
        })
    }
}

/// The structure of leaf data, checked without building strings (the
/// verifier's fast path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scan<'a> {
    pub chain: &'a str,
    pub index: u64,
    pub decisions: usize,
}

impl Reader<'_> {
    fn skip_string(&mut self) -> Result<(), DecodeError> {
        let n = self.len()?;
        let bytes = self.take(n)?;
        std::str::from_utf8(bytes)
            .map(|_| ())
            .map_err(|_| DecodeError("a string is not UTF-8".into()))
    }
}

impl Entry {
    /// Checks that `leaf_data` decodes, returning its chain, index and
    /// decision count; accepts exactly what [`Entry::decode`] accepts.
    pub fn scan(leaf_data: &[u8]) -> Result<Scan<'_>, DecodeError> {
        let mut r = Reader { bytes: leaf_data };
        if r.take(MAGIC.len())? != MAGIC {
            return Err(DecodeError("not an xgate-audit-v2 entry".into()));
        }
        let n = r.len()?;
        let chain = std::str::from_utf8(r.take(n)?)
            .map_err(|_| DecodeError("a string is not UTF-8".into()))?;
        r.take(8)?;
        if r.u8()? > 1 {
            return Err(DecodeError("unknown kind".into()));
        }
        for _ in 0..9 {
            r.skip_string()?;
        }
        r.take(8)?;
        r.skip_string()?;
        r.skip_string()?;
        let decisions = r.len()?;
        for _ in 0..decisions {
            r.skip_string()?;
            r.skip_string()?;
            if r.u8()? > 1 {
                return Err(DecodeError("unknown verdict".into()));
            }
            for _ in 0..r.len()? {
                r.skip_string()?;
            }
            r.skip_string()?;
            r.skip_string()?;
            match r.u8()? {
                0 => {}
                1 => {
                    r.take(32)?;
                }
                f => return Err(DecodeError(format!("unknown digest flag {f}"))),
            }
        }
        let index = u64::from_be_bytes(r.array()?);
        if !r.bytes.is_empty() {
            return Err(DecodeError(format!(
                "{} trailing bytes after the entry",
                r.bytes.len()
            )));
        }
        Ok(Scan {
            chain,
            index,
            decisions,
        })
    }
}

/// Leaf data: the encoding followed by the index.
pub fn leaf_data(encoded: &[u8], index: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded.len() + 8);
    out.extend_from_slice(encoded);
    out.extend_from_slice(&index.to_be_bytes());
    out
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

/// Optional 32-byte hashes as hex strings in JSON.
pub(crate) mod opt_hex {
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            None => s.serialize_none(),
            Some(h) => s.serialize_str(&hex::encode(h)),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<[u8; 32]>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        text.map(|t| {
            let mut out = [0u8; 32];
            hex::decode_to_slice(&t, &mut out).map_err(serde::de::Error::custom)?;
            Ok(out)
        })
        .transpose()
    }
}

/// 32-byte hashes as hex strings in JSON.
pub(crate) mod hex32 {
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(&text, &mut out).map_err(serde::de::Error::custom)?;
        Ok(out)
    }
}

/// Lists of 32-byte hashes as lists of hex strings in JSON.
pub(crate) mod hex32_vec {
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[[u8; 32]], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(hex::encode))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<[u8; 32]>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|text| {
                let mut out = [0u8; 32];
                hex::decode_to_slice(text, &mut out).map_err(serde::de::Error::custom)?;
                Ok(out)
            })
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn answer(n: u32, decisions: usize) -> NewEntry {
        let mut e = NewEntry::access();
        e.time_us = 1_700_000_000_000_000;
        e.request_id = format!("req-{n}");
        e.requester = "approval-hall".into();
        e.subject_hmac = "ab".repeat(32);
        e.decisions = (0..decisions)
            .map(|i| Decision {
                record_type: format!("type_{i}"),
                view: "full".into(),
                verdict: if i % 3 == 2 {
                    Verdict::Deny
                } else {
                    Verdict::Permit
                },
                policy_ids: vec!["p1".into(), "p2".into()],
                status: if i % 3 == 2 { "DENIED" } else { "OK" }.into(),
                department: format!("dept_{}", i % 2),
                records_digest: (i % 3 != 2).then(|| digest_records([b"{}".as_slice()])),
                latency_us: 0,
            })
            .collect();
        e
    }

    #[test]
    fn encoding_round_trips_with_the_index() {
        let e = answer(1, 4);
        let data = leaf_data(&e.encode("gw-1"), 42);
        let back = Entry::decode(&data).expect("decode");
        let scan = Entry::scan(&data).expect("scan");
        assert_eq!((scan.chain, scan.index, scan.decisions), ("gw-1", 42, 4));
        assert_eq!(back.chain, "gw-1");
        assert_eq!(back.index, 42);
        assert_eq!(back.body, e);
        let admin = NewEntry::admin("policy_set_loaded", serde_json::json!({"v": 1}));
        let back = Entry::decode(&leaf_data(&admin.encode("c"), 0)).expect("admin");
        assert_eq!(back.body, admin);
    }

    #[test]
    fn malformed_leaf_data_is_refused() {
        let data = leaf_data(&answer(1, 2).encode("gw"), 0);
        for cut in [0, 5, data.len() / 2, data.len() - 1] {
            assert!(Entry::decode(&data[..cut]).is_err(), "cut at {cut}");
            assert!(Entry::scan(&data[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = data.clone();
        longer.push(0);
        assert!(Entry::decode(&longer).is_err());
        // A huge decision count in a short buffer fails without allocating it.
        let mut e = answer(1, 0).encode("gw");
        let n = e.len();
        e[n - 4..].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(Entry::decode(&leaf_data(&e, 0)).is_err());
    }

    #[test]
    fn encoding_separates_fields() {
        // Moving a byte between adjacent fields must change the encoding.
        let mut a = answer(1, 1);
        a.purpose = "ab".into();
        a.case_id = "c".into();
        let mut b = a.clone();
        b.purpose = "a".into();
        b.case_id = "bc".into();
        assert_ne!(a.encode("x"), b.encode("x"));
        assert_ne!(a.encode("x"), a.encode("y"));
        let mut c = answer(1, 1);
        c.decisions[0].policy_ids = vec!["ab".into()];
        let mut d = answer(1, 1);
        d.decisions[0].policy_ids = vec!["a".into(), "b".into()];
        assert_ne!(c.encode("x"), d.encode("x"));
    }

    #[test]
    fn records_digest_covers_every_decision() {
        let a = answer(1, 3);
        let mut b = a.clone();
        b.decisions[0].records_digest = Some([7; 32]);
        assert_ne!(a.records_digest(), b.records_digest());
        assert_ne!(
            digest_records([b"ab".as_slice(), b"c"]),
            digest_records([b"a".as_slice(), b"bc"])
        );
    }

    #[test]
    fn times_format_as_rfc3339() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00Z");
    }
}
