//! Receipts: the gateway's signed word that an answer is in its log.
//!
//! The signature is the instance's Ed25519 over
//! `"xgate-audit-receipt/v1\0" || len(chain) (u16 BE) || chain || entry hash || records digest`.
//! The entry hash is the Merkle leaf hash, which covers the entry's index,
//! so the signature also fixes where the entry sits. [`Receipt::verify_signature`]
//! is the fast offline check (one Ed25519 verification per trusted key
//! tried); [`crate::verify_receipt`] adds the store: present, unaltered,
//! and — once a checkpoint covers it — proven by an inclusion proof.

use serde::{Deserialize, Serialize};

use crate::entry::hex32;
use crate::keys::{Keys, PublicKey, PublicKeys};
use crate::merkle::Hash;

const TAG: &[u8] = b"xgate-audit-receipt/v1\0";

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
    /// Hex Ed25519 signature (see the module doc).
    pub signature: String,
}

/// The signed bytes of a receipt.
pub fn message(chain: &str, entry_hash: &Hash, records_digest: &Hash) -> Vec<u8> {
    let mut m = Vec::with_capacity(TAG.len() + 2 + chain.len() + 64);
    m.extend_from_slice(TAG);
    m.extend_from_slice(&u16::try_from(chain.len()).unwrap_or(u16::MAX).to_be_bytes());
    m.extend_from_slice(chain.as_bytes());
    m.extend_from_slice(entry_hash);
    m.extend_from_slice(records_digest);
    m
}

impl Receipt {
    pub(crate) fn sign(
        keys: &Keys,
        chain: &str,
        index: u64,
        entry_hash: Hash,
        records_digest: Hash,
    ) -> Receipt {
        let signature = hex::encode(keys.sign(&message(chain, &entry_hash, &records_digest)));
        Receipt {
            chain: chain.to_owned(),
            index,
            entry_hash,
            records_digest,
            signature,
        }
    }

    /// The trusted key whose signature this is, if any (offline, no store).
    pub fn verify_signature(&self, trusted: &PublicKeys) -> Option<PublicKey> {
        let sig = hex::decode(&self.signature).ok()?;
        let m = message(&self.chain, &self.entry_hash, &self.records_digest);
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

    #[test]
    fn receipts_verify_offline_and_only_unchanged() {
        let keys = Keys::generate().expect("keys");
        let r = Receipt::sign(&keys, "gw-1", 7, [1; 32], [2; 32]);
        let back = Receipt::from_json(&r.to_json()).expect("json");
        assert_eq!(back, r);
        assert_eq!(r.verify_signature(&keys.trusted()), Some(keys.public_key()));
        for forged in [
            Receipt {
                chain: "gw-2".into(),
                ..r.clone()
            },
            Receipt {
                entry_hash: [3; 32],
                ..r.clone()
            },
            Receipt {
                records_digest: [3; 32],
                ..r.clone()
            },
        ] {
            assert_eq!(forged.verify_signature(&keys.trusted()), None);
        }
        let stranger = Keys::generate().expect("keys");
        assert_eq!(r.verify_signature(&stranger.trusted()), None);
    }
}
