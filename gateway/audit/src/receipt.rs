//! Receipts: the gateway's signed word that an answer is in its log.
//!
//! The writer signs once per committed batch, not once per answer: the
//! entries one commit appended (indexes `first .. first + size`) are the
//! leaves of a small RFC 6962 tree, leaf `i` being
//! `SHA-256(0x00 || entry hash || records digest)`, and the instance's
//! Ed25519 key signs
//! `"xgate-audit-receipt/v2\0" || len(chain) (u16 BE) || chain || first (u64 BE) || size (u64 BE) || batch root`.
//! A receipt carries its entry's inclusion path in that tree (⌈log₂ size⌉
//! hashes), so checking it offline costs one Ed25519 verification and a
//! few hashes, and signing costs one signature per group commit instead of
//! one per answer (it was 9 % of the gateway's CPU under load).
//!
//! The entry hash is the Merkle leaf hash of the chain, which covers the
//! entry's index, so the signature also fixes where the entry sits.
//! Receipts issued before batches (`v1`: a signature over
//! `"xgate-audit-receipt/v1\0" || len(chain) || chain || entry hash || records digest`,
//! no batch) still verify. [`Receipt::verify_signature`] is the fast offline
//! check; [`crate::verify_receipt`] adds the store: present, unaltered,
//! and — once a checkpoint covers it — proven by an inclusion proof.

use serde::{Deserialize, Serialize};

use crate::entry::{hex32, hex32_vec};
use crate::keys::{Keys, PublicKey, PublicKeys};
use crate::merkle::{Hash, MemoryTree, leaf_hash, root_from_inclusion};

const TAG_V1: &[u8] = b"xgate-audit-receipt/v1\0";
const TAG_V2: &[u8] = b"xgate-audit-receipt/v2\0";

/// The signed batch a receipt's entry belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// Index of the batch's first entry in the chain.
    pub first: u64,
    /// Entries in the batch.
    pub size: u64,
    /// Inclusion path of this entry in the batch's tree.
    #[serde(with = "hex32_vec")]
    pub path: Vec<Hash>,
}

/// Where an answer's entry is and what it released, signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// Instance id of the chain.
    pub chain: String,
    /// The entry's index in the chain.
    pub index: u64,
    /// The entry's Merkle leaf hash.
    #[serde(with = "hex32")]
    pub entry_hash: Hash,
    /// [`crate::NewEntry::records_digest`] of the entry.
    #[serde(with = "hex32")]
    pub records_digest: Hash,
    /// The signed batch (absent on `v1` receipts, signed one by one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<Batch>,
    /// Hex Ed25519 signature (see the module doc).
    pub signature: String,
}

fn chain_prefix(tag: &[u8], chain: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(tag.len() + 2 + chain.len() + 64);
    m.extend_from_slice(tag);
    m.extend_from_slice(&u16::try_from(chain.len()).unwrap_or(u16::MAX).to_be_bytes());
    m.extend_from_slice(chain.as_bytes());
    m
}

/// The signed bytes of a `v1` receipt (one signature per entry).
pub fn message_v1(chain: &str, entry_hash: &Hash, records_digest: &Hash) -> Vec<u8> {
    let mut m = chain_prefix(TAG_V1, chain);
    m.extend_from_slice(entry_hash);
    m.extend_from_slice(records_digest);
    m
}

/// The signed bytes of a batch.
pub fn batch_message(chain: &str, first: u64, size: u64, root: &Hash) -> Vec<u8> {
    let mut m = chain_prefix(TAG_V2, chain);
    m.extend_from_slice(&first.to_be_bytes());
    m.extend_from_slice(&size.to_be_bytes());
    m.extend_from_slice(root);
    m
}

/// A batch tree's leaf for an entry.
pub fn batch_leaf(entry_hash: &Hash, records_digest: &Hash) -> Hash {
    let mut data = [0u8; 64];
    data[..32].copy_from_slice(entry_hash);
    data[32..].copy_from_slice(records_digest);
    leaf_hash(&data)
}

impl Receipt {
    /// One receipt per entry of a committed batch, under one signature.
    /// `entries` are `(index, entry hash, records digest)` with consecutive
    /// indexes, in order.
    pub(crate) fn sign_batch(
        keys: &Keys,
        chain: &str,
        entries: &[(u64, Hash, Hash)],
    ) -> Vec<Receipt> {
        let Some(&(first, _, _)) = entries.first() else {
            return Vec::new();
        };
        let tree = MemoryTree::new(entries.iter().map(|(_, e, d)| batch_leaf(e, d)).collect());
        let size = tree.size();
        let signature = hex::encode(keys.sign(&batch_message(chain, first, size, &tree.root())));
        entries
            .iter()
            .enumerate()
            .map(|(at, &(index, entry_hash, records_digest))| Receipt {
                chain: chain.to_owned(),
                index,
                entry_hash,
                records_digest,
                batch: Some(Batch {
                    first,
                    size,
                    path: tree.inclusion_proof(at as u64).unwrap_or_default(),
                }),
                signature: signature.clone(),
            })
            .collect()
    }

    /// The bytes the signature must be over: the batch's, with its root
    /// recomputed from this entry and its path; `None` when the batch does
    /// not hold this entry or the path has the wrong shape.
    fn signed_message(&self) -> Option<Vec<u8>> {
        let Some(batch) = &self.batch else {
            return Some(message_v1(
                &self.chain,
                &self.entry_hash,
                &self.records_digest,
            ));
        };
        let at = self.index.checked_sub(batch.first)?;
        let leaf = batch_leaf(&self.entry_hash, &self.records_digest);
        let root = root_from_inclusion(at, batch.size, &leaf, &batch.path)?;
        Some(batch_message(&self.chain, batch.first, batch.size, &root))
    }

    /// The trusted key whose signature this is, if any (offline, no store).
    pub fn verify_signature(&self, trusted: &PublicKeys) -> Option<PublicKey> {
        let sig = hex::decode(&self.signature).ok()?;
        let m = self.signed_message()?;
        trusted.0.iter().copied().find(|k| k.verify(&m, &sig))
    }

    /// One receipt per line as JSON (the `--receipt` file format).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(text: &str) -> Result<Receipt, serde_json::Error> {
        serde_json::from_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(keys: &Keys, n: u64) -> Vec<Receipt> {
        let entries: Vec<(u64, Hash, Hash)> = (0..n)
            .map(|i| (7 + i, [i as u8 + 1; 32], [i as u8 + 100; 32]))
            .collect();
        Receipt::sign_batch(keys, "gw-1", &entries)
    }

    #[test]
    fn receipts_verify_offline_and_only_unchanged() {
        let keys = Keys::generate().expect("keys");
        for n in [1, 2, 5, 16] {
            let receipts = batch(&keys, n);
            assert_eq!(receipts.len(), n as usize);
            assert!(
                receipts
                    .windows(2)
                    .all(|w| w[0].signature == w[1].signature),
                "one signature per batch"
            );
            for r in &receipts {
                let back = Receipt::from_json(&r.to_json()).expect("json");
                assert_eq!(&back, r);
                assert_eq!(r.verify_signature(&keys.trusted()), Some(keys.public_key()));
                forgeries_fail(r, &keys);
            }
        }
        let r = &batch(&keys, 3)[1];
        let stranger = Keys::generate().expect("keys");
        assert_eq!(r.verify_signature(&stranger.trusted()), None);
        let mut other_batch = batch(&keys, 3)[2].clone();
        other_batch.entry_hash = r.entry_hash;
        assert_eq!(
            other_batch.verify_signature(&keys.trusted()),
            None,
            "an entry moved within its batch"
        );
    }

    fn forgeries_fail(r: &Receipt, keys: &Keys) {
        let b = r.batch.clone().expect("batch");
        let mut forged = vec![
            Receipt {
                chain: "gw-2".into(),
                ..r.clone()
            },
            Receipt {
                entry_hash: [0xee; 32],
                ..r.clone()
            },
            Receipt {
                records_digest: [0xee; 32],
                ..r.clone()
            },
            Receipt {
                index: r.index + 1,
                ..r.clone()
            },
            Receipt {
                batch: Some(Batch {
                    first: b.first + 1,
                    ..b.clone()
                }),
                ..r.clone()
            },
            Receipt {
                batch: Some(Batch {
                    size: b.size + 1,
                    ..b.clone()
                }),
                ..r.clone()
            },
            Receipt {
                batch: None,
                ..r.clone()
            },
        ];
        if let Some(first) = b.path.first() {
            let mut path = b.path.clone();
            path[0] = [first[0] ^ 1; 32];
            forged.push(Receipt {
                batch: Some(Batch { path, ..b.clone() }),
                ..r.clone()
            });
        }
        for f in forged {
            assert_eq!(f.verify_signature(&keys.trusted()), None, "{f:?}");
        }
    }

    #[test]
    fn receipts_signed_one_by_one_before_batches_still_verify() {
        let keys = Keys::generate().expect("keys");
        let v1 = Receipt {
            chain: "gw-1".into(),
            index: 7,
            entry_hash: [1; 32],
            records_digest: [2; 32],
            batch: None,
            signature: hex::encode(keys.sign(&message_v1("gw-1", &[1; 32], &[2; 32]))),
        };
        let back = Receipt::from_json(r#"{"chain":"gw-1","index":7,"entry_hash":"0101010101010101010101010101010101010101010101010101010101010101","records_digest":"0202020202020202020202020202020202020202020202020202020202020202","signature":"00"}"#).expect("a v1 file line");
        assert_eq!(back.batch, None);
        assert_eq!(
            v1.verify_signature(&keys.trusted()),
            Some(keys.public_key())
        );
        let forged = Receipt {
            records_digest: [3; 32],
            ..v1
        };
        assert_eq!(forged.verify_signature(&keys.trusted()), None);
    }
}
