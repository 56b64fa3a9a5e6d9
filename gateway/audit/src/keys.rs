//! The gateway's audit keys: the Ed25519 checkpoint signing key and the HMAC
//! key that turns subject ID numbers into keyed hashes.
//!
//! In a key directory: `audit-signing.pk8` (PKCS#8), `audit-subject.key`
//! (32 random bytes, hex) and `audit-public-keys` (every public key the
//! gateway ever signed with, hex, oldest first). Files are created 0600.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ring::rand::{SecureRandom as _, SystemRandom};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};

use crate::AuditError;

const SIGNING_FILE: &str = "audit-signing.pk8";
const SUBJECT_FILE: &str = "audit-subject.key";
const PUBLIC_FILE: &str = "audit-public-keys";

/// An Ed25519 public key (32 bytes), shown as hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// Checks `signature` over `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(message, signature)
            .is_ok()
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl FromStr for PublicKey {
    type Err = AuditError;
    fn from_str(s: &str) -> Result<PublicKey, AuditError> {
        crate::entry::decode_hash(s.trim())
            .map(PublicKey)
            .ok_or_else(|| {
                AuditError::Key(format!(
                    "`{}` is not a 64-digit hex Ed25519 public key",
                    s.trim()
                ))
            })
    }
}

/// Public keys a verifier trusts as anchors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublicKeys(pub Vec<PublicKey>);

impl PublicKeys {
    /// One key per non-empty line of `text`.
    pub fn parse(text: &str) -> Result<PublicKeys, AuditError> {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(PublicKey::from_str)
            .collect::<Result<Vec<_>, _>>()
            .map(PublicKeys)
    }

    pub fn contains(&self, key: &PublicKey) -> bool {
        self.0.contains(key)
    }
}

/// The signing key and the subject key.
pub struct Keys {
    signing: Ed25519KeyPair,
    pkcs8: Vec<u8>,
    subject: ring::hmac::Key,
    /// Every public key used so far, the current one last.
    history: Vec<PublicKey>,
    dir: Option<PathBuf>,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys")
            .field("public_key", &self.public_key())
            .finish_non_exhaustive()
    }
}

fn random<const N: usize>() -> Result<[u8; N], AuditError> {
    let mut out = [0u8; N];
    SystemRandom::new()
        .fill(&mut out)
        .map_err(|_| AuditError::Key("the system random generator failed".into()))?;
    Ok(out)
}

fn new_pkcs8() -> Result<Vec<u8>, AuditError> {
    Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map(|d| d.as_ref().to_vec())
        .map_err(|_| AuditError::Key("generating an Ed25519 key failed".into()))
}

fn pair(pkcs8: &[u8]) -> Result<Ed25519KeyPair, AuditError> {
    Ed25519KeyPair::from_pkcs8(pkcs8)
        .map_err(|e| AuditError::Key(format!("the audit signing key is not Ed25519 PKCS#8: {e}")))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), AuditError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let io = |e: std::io::Error| AuditError::Key(format!("writing `{}`: {e}", path.display()));
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

fn read(path: &Path) -> Result<Vec<u8>, AuditError> {
    std::fs::read(path).map_err(|e| AuditError::Key(format!("reading `{}`: {e}", path.display())))
}

impl Keys {
    /// Fresh keys held in memory only (tests, benches).
    pub fn generate() -> Result<Keys, AuditError> {
        let pkcs8 = new_pkcs8()?;
        let subject = random::<32>()?;
        Keys::from_parts(pkcs8, &subject, Vec::new(), None)
    }

    fn from_parts(
        pkcs8: Vec<u8>,
        subject: &[u8],
        mut history: Vec<PublicKey>,
        dir: Option<PathBuf>,
    ) -> Result<Keys, AuditError> {
        let signing = pair(&pkcs8)?;
        let public = public_of(&signing)?;
        if history.last() != Some(&public) {
            history.retain(|k| *k != public);
            history.push(public);
        }
        Ok(Keys {
            signing,
            pkcs8,
            subject: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, subject),
            history,
            dir,
        })
    }

    /// Loads the keys of `dir`, creating the directory and missing keys.
    pub fn load_or_create(dir: &Path) -> Result<Keys, AuditError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| AuditError::Key(format!("creating `{}`: {e}", dir.display())))?;
        let signing_path = dir.join(SIGNING_FILE);
        let pkcs8 = if signing_path.exists() {
            read(&signing_path)?
        } else {
            let pkcs8 = new_pkcs8()?;
            write_private(&signing_path, &pkcs8)?;
            pkcs8
        };
        let subject_path = dir.join(SUBJECT_FILE);
        let subject = if subject_path.exists() {
            let text = read(&subject_path)?;
            hex::decode(String::from_utf8_lossy(&text).trim())
                .map_err(|_| AuditError::Key(format!("`{}` is not hex", subject_path.display())))?
        } else {
            let key = random::<32>()?;
            write_private(&subject_path, hex::encode(key).as_bytes())?;
            key.to_vec()
        };
        let public_path = dir.join(PUBLIC_FILE);
        let history = if public_path.exists() {
            PublicKeys::parse(&String::from_utf8_lossy(&read(&public_path)?))?.0
        } else {
            Vec::new()
        };
        let keys = Keys::from_parts(pkcs8, &subject, history, Some(dir.to_owned()))?;
        keys.save_history()?;
        Ok(keys)
    }

    fn save_history(&self) -> Result<(), AuditError> {
        if let Some(dir) = &self.dir {
            let text: String = self.history.iter().map(|k| format!("{k}\n")).collect();
            write_private(&dir.join(PUBLIC_FILE), text.as_bytes())?;
        }
        Ok(())
    }

    /// Reads only the public keys of a key directory (for verification).
    pub fn public_keys_in(dir: &Path) -> Result<PublicKeys, AuditError> {
        PublicKeys::parse(&String::from_utf8_lossy(&read(&dir.join(PUBLIC_FILE))?))
    }

    /// The current signing key's public half.
    pub fn public_key(&self) -> PublicKey {
        // `from_parts` checked the length once; the key pair never changes.
        public_of(&self.signing).unwrap_or(PublicKey([0; 32]))
    }

    /// Every public key this gateway signed with, for its own verification.
    pub fn trusted(&self) -> PublicKeys {
        PublicKeys(self.history.clone())
    }

    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.signing.sign(message).as_ref().to_vec()
    }

    /// Hex HMAC-SHA256 of `kind:id` under the subject key: the same ID gives
    /// the same value (auditors can search), the value reveals nothing.
    pub fn subject_hmac(&self, kind: &str, id: &str) -> String {
        let mut ctx = ring::hmac::Context::with_key(&self.subject);
        ctx.update(kind.as_bytes());
        ctx.update(b":");
        ctx.update(id.as_bytes());
        hex::encode(ctx.sign().as_ref())
    }

    /// A new signing key, same subject key (entries stay searchable); the
    /// old public key stays in the history. In memory until [`Keys::save_rotation`].
    pub(crate) fn rotated(&self) -> Result<Keys, AuditError> {
        let pkcs8 = new_pkcs8()?;
        let signing = pair(&pkcs8)?;
        let mut history = self.history.clone();
        history.push(public_of(&signing)?);
        Ok(Keys {
            signing,
            pkcs8,
            subject: self.subject.clone(),
            history,
            dir: self.dir.clone(),
        })
    }

    /// Writes a rotated key to the key directory, archiving `old`'s key.
    pub(crate) fn save_rotation(&self, old: &Keys) -> Result<(), AuditError> {
        if let Some(dir) = &self.dir {
            let archive = dir.join(format!("audit-signing-{}.pk8", old.public_key()));
            write_private(&archive, &old.pkcs8)?;
            write_private(&dir.join(SIGNING_FILE), &self.pkcs8)?;
        }
        self.save_history()
    }
}

fn public_of(pair: &Ed25519KeyPair) -> Result<PublicKey, AuditError> {
    let bytes: [u8; 32] = pair
        .public_key()
        .as_ref()
        .try_into()
        .map_err(|_| AuditError::Key("Ed25519 public key is not 32 bytes".into()))?;
    Ok(PublicKey(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_persist_with_private_modes() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let a = Keys::load_or_create(dir.path()).expect("create");
        let b = Keys::load_or_create(dir.path()).expect("load");
        assert_eq!(a.public_key(), b.public_key());
        assert_eq!(
            a.subject_hmac("resident_id", "X"),
            b.subject_hmac("resident_id", "X")
        );
        for f in [SIGNING_FILE, SUBJECT_FILE] {
            let mode = std::fs::metadata(dir.path().join(f))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
        assert_eq!(
            Keys::public_keys_in(dir.path()).expect("public"),
            a.trusted()
        );
    }

    #[test]
    fn subject_hmac_is_keyed_and_hides_the_id() {
        let a = Keys::generate().expect("keys");
        let b = Keys::generate().expect("keys");
        let id = "341602197703051725";
        let h = a.subject_hmac("resident_id", id);
        assert_eq!(h.len(), 64);
        assert!(!h.contains(id));
        assert_ne!(h, b.subject_hmac("resident_id", id));
        assert_ne!(h, a.subject_hmac("uscc", id));
    }

    #[test]
    fn signatures_verify_only_with_the_right_key_and_message() {
        let a = Keys::generate().expect("keys");
        let sig = a.sign(b"m");
        assert!(a.public_key().verify(b"m", &sig));
        assert!(!a.public_key().verify(b"n", &sig));
        let b = Keys::generate().expect("keys");
        assert!(!b.public_key().verify(b"m", &sig));
    }

    #[test]
    fn rotation_keeps_history_and_subject_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = Keys::load_or_create(dir.path()).expect("create");
        let b = a.rotated().expect("rotate");
        b.save_rotation(&a).expect("save");
        assert_ne!(a.public_key(), b.public_key());
        assert_eq!(b.trusted().0, vec![a.public_key(), b.public_key()]);
        assert_eq!(a.subject_hmac("k", "1"), b.subject_hmac("k", "1"));
        let c = Keys::load_or_create(dir.path()).expect("reload");
        assert_eq!(c.public_key(), b.public_key());
        assert_eq!(c.trusted(), b.trusted());
        assert!("zz".parse::<PublicKey>().is_err());
    }
}
