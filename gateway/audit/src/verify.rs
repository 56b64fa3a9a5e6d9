//! Verification: the hash chain entry by entry, then every checkpoint's
//! head and signature.
//!
//! Trust: the caller gives anchor public keys. A key rotation is an admin
//! entry (`audit_key_rotated`, detail `{"old_public_key", "new_public_key"}`)
//! inside the chain; once a checkpoint signed by a trusted key covers it,
//! both keys it names are trusted. So a verifier holding either the first
//! or the newest key accepts a chain across rotations.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::entry::{Entry, GENESIS, Kind, chain_hash, decode_hash};
use crate::keys::{PublicKey, PublicKeys};

/// The admin event a key rotation writes.
pub const KEY_ROTATED: &str = "audit_key_rotated";

/// A signed statement "the log had `entries` entries ending in `head_hash`".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub id: u64,
    pub entries: u64,
    pub head_hash: String,
    pub time_us: i64,
    /// Hex Ed25519 public key of the signer.
    pub public_key: String,
    /// Hex Ed25519 signature over [`Checkpoint::message`].
    pub signature: String,
}

impl Checkpoint {
    /// The signed bytes: a domain tag, the count, the head hash, the time.
    pub fn message(&self) -> Vec<u8> {
        let mut m = Vec::with_capacity(80);
        m.extend_from_slice(b"xgate-audit-checkpoint-v1");
        m.extend_from_slice(&self.entries.to_be_bytes());
        m.extend_from_slice(&decode_hash(&self.head_hash).unwrap_or(GENESIS));
        m.extend_from_slice(&self.time_us.to_be_bytes());
        m
    }
}

/// What verification found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Entries read.
    pub entries: u64,
    /// Checkpoints read.
    pub checkpoints: u64,
    /// Checkpoints whose head and signature were verified.
    pub checkpoints_verified: u64,
    /// The first entry found wrong and why.
    pub first_bad: Option<(u64, String)>,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.first_bad.is_none()
    }
}

impl std::fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.first_bad {
            None => write!(
                f,
                "audit log OK: {} entries, hash chain intact, {} of {} checkpoints verified",
                self.entries, self.checkpoints_verified, self.checkpoints
            ),
            Some((seq, why)) => write!(
                f,
                "audit log BROKEN at entry {seq}: {why} ({} entries, {} checkpoints read)",
                self.entries, self.checkpoints
            ),
        }
    }
}

/// Incremental verifier: feed entries in seq order, then [`ChainCheck::finish`].
pub struct ChainCheck {
    checkpoints: Vec<Checkpoint>,
    /// Hashes at the seqs checkpoints name.
    wanted: HashMap<u64, Option<[u8; 32]>>,
    rotations: Vec<(u64, Vec<PublicKey>)>,
    expected: u64,
    prev: [u8; 32],
    entries: u64,
    first_bad: Option<(u64, String)>,
}

impl ChainCheck {
    pub fn new(checkpoints: Vec<Checkpoint>) -> ChainCheck {
        let wanted = checkpoints.iter().map(|c| (c.entries, None)).collect();
        ChainCheck {
            checkpoints,
            wanted,
            rotations: Vec::new(),
            expected: 1,
            prev: GENESIS,
            entries: 0,
            first_bad: None,
        }
    }

    fn bad(&mut self, seq: u64, why: String) {
        if self.first_bad.is_none() {
            self.first_bad = Some((seq, why));
        }
    }

    /// Marks the entry `seq` unreadable (a row a store cannot decode).
    pub fn unreadable(&mut self, seq: u64, why: String) {
        self.entries += 1;
        self.bad(seq, format!("unreadable: {why}"));
    }

    pub fn push(&mut self, entry: &Entry) {
        self.entries += 1;
        if self.first_bad.is_some() {
            return;
        }
        let seq = entry.seq;
        if seq != self.expected {
            if seq > self.expected {
                self.bad(
                    self.expected,
                    format!("missing (deleted): the next entry present is {seq}"),
                );
            } else {
                self.bad(
                    seq,
                    format!("out of order: expected entry {}", self.expected),
                );
            }
            return;
        }
        let computed = chain_hash(&self.prev, &entry.body, seq);
        let stored = decode_hash(&entry.hash);
        if stored != Some(computed) {
            let why = if decode_hash(&entry.prev_hash) != Some(self.prev) {
                format!(
                    "does not link to entry {} (an entry was inserted, deleted or reordered here)",
                    seq - 1
                )
            } else {
                "content does not match its hash (modified)".to_owned()
            };
            self.bad(seq, why);
            return;
        }
        if decode_hash(&entry.prev_hash) != Some(self.prev) {
            self.bad(seq, "stored prev_hash modified".into());
            return;
        }
        if let Some(slot) = self.wanted.get_mut(&seq) {
            *slot = Some(computed);
        }
        if entry.body.kind == Kind::Admin && entry.body.event == KEY_ROTATED {
            let keys = serde_json::from_str::<serde_json::Value>(&entry.body.detail)
                .ok()
                .map(|v| {
                    ["old_public_key", "new_public_key"]
                        .iter()
                        .filter_map(|k| v.get(*k)?.as_str()?.parse::<PublicKey>().ok())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            self.rotations.push((seq, keys));
        }
        self.prev = computed;
        self.expected += 1;
    }

    /// Checks the checkpoints against what was read.
    pub fn finish(mut self, anchors: &PublicKeys) -> VerifyReport {
        let good_len = self.expected - 1;
        let mut trusted: HashSet<PublicKey> = anchors.0.iter().copied().collect();
        // Grow the trusted set: a checkpoint signed by a trusted key vouches
        // for the rotation entries it covers.
        loop {
            let before = trusted.len();
            for cp in &self.checkpoints {
                let Ok(key) = cp.public_key.parse::<PublicKey>() else {
                    continue;
                };
                if !trusted.contains(&key) || cp.entries > good_len {
                    continue;
                }
                let head_ok =
                    self.wanted.get(&cp.entries).copied().flatten() == decode_hash(&cp.head_hash);
                let sig_ok = hex::decode(&cp.signature)
                    .map(|s| key.verify(&cp.message(), &s))
                    .unwrap_or(false);
                if head_ok && sig_ok {
                    for (_, keys) in self.rotations.iter().filter(|(s, _)| *s <= cp.entries) {
                        trusted.extend(keys.iter().copied());
                    }
                }
            }
            if trusted.len() == before {
                break;
            }
        }
        let mut verified = 0;
        let checkpoints = std::mem::take(&mut self.checkpoints);
        for cp in &checkpoints {
            if cp.entries > self.entries {
                self.bad(
                    self.entries + 1,
                    format!(
                        "missing (deleted): checkpoint #{} covers {} entries but the log ends at {}",
                        cp.entries, cp.entries, self.entries
                    ),
                );
                continue;
            }
            if cp.entries > good_len {
                continue; // the chain is already broken before it
            }
            if self.wanted.get(&cp.entries).copied().flatten() != decode_hash(&cp.head_hash) {
                self.bad(
                    cp.entries,
                    format!(
                        "does not match the head hash of checkpoint #{} (entries up to here were rewritten)",
                        cp.id
                    ),
                );
                continue;
            }
            let key = cp.public_key.parse::<PublicKey>().ok();
            let Some(key) = key.filter(|k| trusted.contains(k)) else {
                self.bad(
                    cp.entries,
                    format!(
                        "checkpoint #{} is signed by untrusted key `{}`",
                        cp.id, cp.public_key
                    ),
                );
                continue;
            };
            let sig_ok = hex::decode(&cp.signature)
                .map(|s| key.verify(&cp.message(), &s))
                .unwrap_or(false);
            if !sig_ok {
                self.bad(
                    cp.entries,
                    format!("checkpoint #{} has an invalid signature", cp.id),
                );
                continue;
            }
            verified += 1;
        }
        VerifyReport {
            entries: self.entries,
            checkpoints: checkpoints.len() as u64,
            checkpoints_verified: verified,
            first_bad: self.first_bad,
        }
    }
}

/// Verifies entries held in memory (bench, tests).
pub fn verify_entries(
    entries: &[Entry],
    checkpoints: Vec<Checkpoint>,
    anchors: &PublicKeys,
) -> VerifyReport {
    let mut check = ChainCheck::new(checkpoints);
    for e in entries {
        check.push(e);
    }
    check.finish(anchors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{NewEntry, link};
    use crate::keys::Keys;

    fn chain(n: u32) -> Vec<Entry> {
        let bodies = (0..n)
            .map(|i| {
                let mut e = NewEntry::access();
                e.request_id = format!("r{i}");
                e
            })
            .collect();
        link(0, GENESIS, bodies)
    }

    fn checkpoint(keys: &Keys, entries: &[Entry], id: u64) -> Checkpoint {
        let last = entries.last().expect("entries");
        let mut cp = Checkpoint {
            id,
            entries: last.seq,
            head_hash: last.hash.clone(),
            time_us: 1,
            public_key: keys.public_key().to_string(),
            signature: String::new(),
        };
        cp.signature = hex::encode(keys.sign(&cp.message()));
        cp
    }

    #[test]
    fn intact_chain_with_checkpoint_verifies() {
        let keys = Keys::generate().expect("keys");
        let entries = chain(10);
        let cp = checkpoint(&keys, &entries, 1);
        let report = verify_entries(&entries, vec![cp], &keys.trusted());
        assert!(report.is_ok(), "{report}");
        assert_eq!((report.entries, report.checkpoints_verified), (10, 1));
    }

    #[test]
    fn every_kind_of_tampering_names_the_entry() {
        let keys = Keys::generate().expect("keys");
        let anchors = keys.trusted();
        let entries = chain(10);
        let cps = vec![checkpoint(&keys, &entries, 1)];
        let first_bad = |es: &[Entry]| verify_entries(es, cps.clone(), &anchors).first_bad;

        let mut modified = entries.clone();
        modified[4].body.purpose = "X".into();
        let bad = first_bad(&modified).expect("modified");
        assert_eq!(bad.0, 5);
        assert!(bad.1.contains("modified"), "{bad:?}");

        let mut deleted = entries.clone();
        deleted.remove(3);
        assert_eq!(first_bad(&deleted).expect("deleted").0, 4);

        let mut truncated = entries.clone();
        truncated.truncate(8);
        let bad = first_bad(&truncated).expect("truncated");
        assert_eq!(bad.0, 9, "{bad:?}");

        let mut reordered = entries.clone();
        let (a, b) = (reordered[5].clone(), reordered[6].clone());
        reordered[5] = Entry { seq: 6, ..b };
        reordered[6] = Entry { seq: 7, ..a };
        let bad = first_bad(&reordered).expect("reordered");
        assert_eq!(bad.0, 6, "{bad:?}");

        // Inserted in the middle with renumbering: every later seq shifts.
        let mut inserted = entries.clone();
        let mut extra = entries[2].clone();
        extra.body.request_id = "forged".into();
        inserted.insert(3, extra);
        for (i, e) in inserted.iter_mut().enumerate() {
            e.seq = i as u64 + 1;
        }
        assert_eq!(first_bad(&inserted).expect("inserted").0, 4);

        // A rewritten chain (hashes recomputed) still fails the checkpoint.
        let mut bodies: Vec<NewEntry> = entries.iter().map(|e| e.body.clone()).collect();
        bodies[1].purpose = "rewritten".into();
        let rewritten = link(0, GENESIS, bodies);
        let bad = first_bad(&rewritten).expect("rewritten");
        assert_eq!(bad.0, 10);
        assert!(bad.1.contains("checkpoint"), "{bad:?}");
    }

    #[test]
    fn checkpoints_need_a_trusted_valid_signature() {
        let keys = Keys::generate().expect("keys");
        let other = Keys::generate().expect("keys");
        let entries = chain(3);
        let cp = checkpoint(&keys, &entries, 1);
        let report = verify_entries(&entries, vec![cp.clone()], &other.trusted());
        assert!(report.first_bad.expect("untrusted").1.contains("untrusted"));
        let mut forged = cp;
        forged.time_us = 2;
        let report = verify_entries(&entries, vec![forged], &keys.trusted());
        assert!(
            report
                .first_bad
                .expect("forged")
                .1
                .contains("invalid signature")
        );
    }
}
