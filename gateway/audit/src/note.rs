//! Checkpoints as C2SP signed notes (c2sp.org/tlog-checkpoint,
//! c2sp.org/signed-note) and Ed25519 cosignatures (c2sp.org/tlog-cosignature).
//!
//! ```text
//! xgate-audit/<instance>
//! <tree size>
//! <base64 root hash>
//!
//! — <key name> <base64(key hash (4) || signature (64))>
//! ```
//!
//! The signed text is everything before the blank line (with its final
//! newline). An Ed25519 key hash is `SHA-256(name || 0x0A || 0x01 || key)[..4]`;
//! a cosignature's is the same with algorithm byte 0x04, and its line holds
//! `key hash || timestamp (u64 BE) || signature` over
//! `"cosignature/v1\ntime <timestamp>\n" || checkpoint text`.
//!
//! Written here rather than with the `signed_note` crate: the format is
//! small, and the crate brings its own Ed25519 stack beside ring.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest as _, Sha256};

use crate::keys::{Keys, PublicKey, PublicKeys};
use crate::merkle::Hash;

/// The origin-line prefix of every xgate chain.
pub const ORIGIN_PREFIX: &str = "xgate-audit/";
const ALG_ED25519: u8 = 0x01;
const ALG_COSIGNATURE: u8 = 0x04;
const DASH: &str = "\u{2014} ";

/// Why a note does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("checkpoint note: {0}")]
pub struct NoteError(String);

/// A tree head: the chain (origin), its size and its root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeHead {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl TreeHead {
    pub fn new(instance: &str, size: u64, root: Hash) -> TreeHead {
        TreeHead {
            origin: origin(instance),
            size,
            root,
        }
    }

    /// The instance id the origin names, if it is an xgate origin.
    pub fn instance(&self) -> Option<&str> {
        self.origin.strip_prefix(ORIGIN_PREFIX)
    }

    /// The checkpoint text (what signatures cover).
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
    }
}

/// The origin line of an instance's chain.
pub fn origin(instance: &str) -> String {
    format!("{ORIGIN_PREFIX}{instance}")
}

/// One signature line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureLine {
    pub name: String,
    pub key_hash: [u8; 4],
    /// What follows the key hash (signature, or timestamp and signature).
    pub payload: Vec<u8>,
}

/// A parsed signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub head: TreeHead,
    pub signatures: Vec<SignatureLine>,
    /// The note as given (or produced).
    pub text: String,
}

fn key_hash(name: &str, alg: u8, key: &PublicKey) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([0x0a, alg]);
    h.update(key.0);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

fn line(name: &str, key_hash: [u8; 4], payload: &[u8]) -> String {
    let mut bytes = key_hash.to_vec();
    bytes.extend_from_slice(payload);
    format!("{DASH}{name} {}\n", B64.encode(bytes))
}

/// Signs `head` with `keys` under the key name `head.origin`.
pub fn sign(head: &TreeHead, keys: &Keys) -> SignedCheckpoint {
    let body = head.body();
    let sig = keys.sign(body.as_bytes());
    let name = head.origin.clone();
    let kh = key_hash(&name, ALG_ED25519, &keys.public_key());
    let text = format!("{body}\n{}", line(&name, kh, &sig));
    SignedCheckpoint {
        head: head.clone(),
        signatures: vec![SignatureLine {
            name,
            key_hash: kh,
            payload: sig,
        }],
        text,
    }
}

impl SignedCheckpoint {
    /// Parses a signed checkpoint note.
    pub fn parse(text: &str) -> Result<SignedCheckpoint, NoteError> {
        let bad = |m: &str| NoteError(m.to_owned());
        let (body, sigs) = text
            .split_once("\n\n")
            .ok_or_else(|| bad("no blank line before the signatures"))?;
        let mut lines = body.split('\n');
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or_else(|| bad("no origin line"))?;
        let size = lines
            .next()
            .and_then(|s| {
                (!(s.starts_with('+') || (s.len() > 1 && s.starts_with('0'))))
                    .then(|| s.parse::<u64>().ok())
                    .flatten()
            })
            .ok_or_else(|| bad("the second line is not a tree size"))?;
        let root: Hash = lines
            .next()
            .and_then(|r| B64.decode(r).ok())
            .and_then(|r| r.try_into().ok())
            .ok_or_else(|| bad("the third line is not a base64 SHA-256 root hash"))?;
        let mut signatures = Vec::new();
        for l in sigs.split('\n').filter(|l| !l.is_empty()) {
            let rest = l
                .strip_prefix(DASH)
                .ok_or_else(|| bad("a signature line does not start with `— `"))?;
            let (name, b64) = rest
                .split_once(' ')
                .ok_or_else(|| bad("a signature line has no key name"))?;
            let bytes = B64
                .decode(b64)
                .map_err(|_| bad("a signature is not base64"))?;
            if bytes.len() < 5 {
                return Err(bad("a signature is too short"));
            }
            let (kh, payload) = bytes.split_at(4);
            signatures.push(SignatureLine {
                name: name.to_owned(),
                key_hash: [kh[0], kh[1], kh[2], kh[3]],
                payload: payload.to_vec(),
            });
        }
        if signatures.is_empty() {
            return Err(bad("no signature lines"));
        }
        Ok(SignedCheckpoint {
            head: TreeHead {
                origin: origin.to_owned(),
                size,
                root,
            },
            signatures,
            text: text.to_owned(),
        })
    }

    /// The trusted key whose Ed25519 signature (under the origin as key
    /// name) verifies, if any.
    pub fn signed_by(&self, trusted: &PublicKeys) -> Option<PublicKey> {
        let body = self.head.body();
        trusted.0.iter().copied().find(|key| {
            let kh = key_hash(&self.head.origin, ALG_ED25519, key);
            self.signatures.iter().any(|s| {
                s.name == self.head.origin
                    && s.key_hash == kh
                    && s.payload.len() == 64
                    && key.verify(body.as_bytes(), &s.payload)
            })
        })
    }

    /// Adds a cosignature by `keys` under `name` at `timestamp` (seconds).
    pub fn cosign(&mut self, name: &str, keys: &Keys, timestamp: u64) {
        let message = cosigned_message(&self.head, timestamp);
        let sig = keys.sign(message.as_bytes());
        let mut payload = timestamp.to_be_bytes().to_vec();
        payload.extend_from_slice(&sig);
        let kh = key_hash(name, ALG_COSIGNATURE, &keys.public_key());
        self.text.push_str(&line(name, kh, &payload));
        self.signatures.push(SignatureLine {
            name: name.to_owned(),
            key_hash: kh,
            payload,
        });
    }

    /// The timestamp of a valid cosignature by `key` under `name`.
    pub fn cosigned_by(&self, name: &str, key: &PublicKey) -> Option<u64> {
        let kh = key_hash(name, ALG_COSIGNATURE, key);
        self.signatures.iter().find_map(|s| {
            if s.name != name || s.key_hash != kh || s.payload.len() != 72 {
                return None;
            }
            let (ts, sig) = s.payload.split_at(8);
            let ts = u64::from_be_bytes(ts.try_into().ok()?);
            key.verify(cosigned_message(&self.head, ts).as_bytes(), sig)
                .then_some(ts)
        })
    }
}

fn cosigned_message(head: &TreeHead, timestamp: u64) -> String {
    format!("cosignature/v1\ntime {timestamp}\n{}", head.body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_round_trip_and_verify() {
        let keys = Keys::generate().expect("keys");
        let head = TreeHead::new("gw-1", 42, [7; 32]);
        let note = sign(&head, &keys);
        assert!(note.text.starts_with("xgate-audit/gw-1\n42\nBwcH"));
        assert!(note.text.contains("\n\n\u{2014} xgate-audit/gw-1 "));
        let parsed = SignedCheckpoint::parse(&note.text).expect("parse");
        assert_eq!(parsed.head, head);
        assert_eq!(parsed.head.instance(), Some("gw-1"));
        assert_eq!(parsed.signed_by(&keys.trusted()), Some(keys.public_key()));
        let other = Keys::generate().expect("keys");
        assert_eq!(parsed.signed_by(&other.trusted()), None);
        // A changed size or root no longer verifies.
        let forged = note.text.replacen("\n42\n", "\n41\n", 1);
        let forged = SignedCheckpoint::parse(&forged).expect("parse");
        assert_eq!(forged.signed_by(&keys.trusted()), None);
    }

    #[test]
    fn cosignatures_verify_under_their_name_only() {
        let log = Keys::generate().expect("keys");
        let witness = Keys::generate().expect("keys");
        let mut note = sign(&TreeHead::new("gw", 3, [1; 32]), &log);
        note.cosign("auditor.example/w1", &witness, 1_700_000_000);
        let parsed = SignedCheckpoint::parse(&note.text).expect("parse");
        assert_eq!(
            parsed.cosigned_by("auditor.example/w1", &witness.public_key()),
            Some(1_700_000_000)
        );
        assert_eq!(parsed.cosigned_by("other", &witness.public_key()), None);
        assert_eq!(
            parsed.cosigned_by("auditor.example/w1", &log.public_key()),
            None
        );
        // The log signature still verifies beside the cosignature.
        assert!(parsed.signed_by(&log.trusted()).is_some());
    }

    #[test]
    fn malformed_notes_are_refused() {
        for text in [
            "",
            "origin\n1\nAAAA\n",
            "origin\nx\nAAAA\n\n\u{2014} k AAAAAAAA\n",
            "origin\n01\nAAAA\n\n\u{2014} k AAAAAAAA\n",
            "origin\n1\nAAAA\n\n\u{2014} k AAAAAAAA\n",
            "origin\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n- k AAAAAAAA\n",
        ] {
            assert!(SignedCheckpoint::parse(text).is_err(), "{text:?}");
        }
    }
}
