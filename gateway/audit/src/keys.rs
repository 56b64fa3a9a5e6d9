//! A gateway instance's audit identity: its instance id (which names its
//! chain), its Ed25519 signing key, the instance lock; and the subject key
//! shared by every instance (kept in the store, see [`crate::Store`]).
//!
//! In a key directory: `audit-instance` (the instance id), `audit-signing.pk8`
//! (PKCS#8), `audit-public-keys` (the public key, hex, for offline
//! verification), `audit-instance.lock` (held while a process runs as the
//! instance), `audit-checkpoint` (the last checkpoint it signed) and
//! `audit-tamper-alarm` (present once it failed closed; removed by an operator). A
//! pre-v2 `audit-subject.key` is only read, to seed the shared subject key.
//!
//! Files are created race-free: written under a unique temporary name, then
//! hard-linked to their final name, which fails if another process got
//! there first — so two processes starting at once on an empty directory
//! both succeed and read the same keys. Created 0600.

use std::fmt;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ring::rand::{SecureRandom as _, SystemRandom};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};

use crate::AuditError;

const INSTANCE_FILE: &str = "audit-instance";
const SIGNING_FILE: &str = "audit-signing.pk8";
const PUBLIC_FILE: &str = "audit-public-keys";
const LOCK_FILE: &str = "audit-instance.lock";
pub(crate) const CHECKPOINT_FILE: &str = "audit-checkpoint";
/// Written when the instance fails closed; while it exists the instance
/// stays failed closed, across restarts.
pub const ALARM_FILE: &str = "audit-tamper-alarm";
/// The pre-v2 per-gateway subject key.
const LEGACY_SUBJECT_FILE: &str = "audit-subject.key";

/// An Ed25519 public key (32 bytes), shown as hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
        let mut out = [0u8; 32];
        hex::decode_to_slice(s.trim(), &mut out)
            .map(|()| PublicKey(out))
            .map_err(|_| {
                AuditError::Key(format!(
                    "`{}` is not a 64-digit hex Ed25519 public key",
                    s.trim()
                ))
            })
    }
}

/// Public keys a verifier trusts.
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

    /// Adds `other`'s keys not yet present.
    pub fn extend(&mut self, other: &PublicKeys) {
        for k in &other.0 {
            if !self.contains(k) {
                self.0.push(*k);
            }
        }
    }
}

/// The instance id and signing key of one gateway instance.
pub struct Keys {
    signing: Ed25519KeyPair,
    public: PublicKey,
    instance: String,
    dir: Option<PathBuf>,
    legacy_subject: Option<Vec<u8>>,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys")
            .field("instance", &self.instance)
            .field("public_key", &self.public)
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

fn pair(pkcs8: &[u8]) -> Result<(Ed25519KeyPair, PublicKey), AuditError> {
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|e| {
        AuditError::Key(format!("the audit signing key is not Ed25519 PKCS#8: {e}"))
    })?;
    let public: [u8; 32] = pair
        .public_key()
        .as_ref()
        .try_into()
        .map_err(|_| AuditError::Key("Ed25519 public key is not 32 bytes".into()))?;
    Ok((pair, PublicKey(public)))
}

/// A fresh instance id: `gw-` and 16 hex digits.
fn new_instance() -> Result<String, AuditError> {
    Ok(format!("gw-{}", hex::encode(random::<8>()?)))
}

fn io_error(path: &Path, what: &str) -> impl Fn(std::io::Error) -> AuditError + use<> {
    let path = path.display().to_string();
    let what = what.to_owned();
    move |e| AuditError::Key(format!("{what} `{path}`: {e}"))
}

/// Writes `bytes` under a unique temporary name in `path`'s directory.
fn write_temp(path: &Path, bytes: &[u8]) -> Result<PathBuf, AuditError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        hex::encode(random::<6>()?)
    ));
    let io = io_error(&tmp, "writing");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(&io)?;
    file.write_all(bytes).map_err(&io)?;
    file.sync_all().map_err(&io)?;
    Ok(tmp)
}

/// Creates `path` holding `bytes` unless it exists; returns what `path`
/// holds afterwards (ours, or the winner's of a race).
fn create_once(path: &Path, bytes: &[u8]) -> Result<Vec<u8>, AuditError> {
    if !path.exists() {
        let tmp = write_temp(path, bytes)?;
        // link(2) never replaces: exactly one racer creates the file.
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_error(path, "creating")(e)),
        }
    }
    std::fs::read(path).map_err(io_error(path, "reading"))
}

/// Replaces `path` atomically with `bytes` (unique temp name, rename).
pub(crate) fn replace_file(path: &Path, bytes: &[u8]) -> Result<(), AuditError> {
    let tmp = write_temp(path, bytes)?;
    std::fs::rename(&tmp, path).map_err(io_error(path, "replacing"))
}

impl Keys {
    /// A fresh instance held in memory only (tests, benches).
    pub fn generate() -> Result<Keys, AuditError> {
        let (signing, public) = pair(&new_pkcs8()?)?;
        Ok(Keys {
            signing,
            public,
            instance: new_instance()?,
            dir: None,
            legacy_subject: None,
        })
    }

    /// Loads the instance of `dir`, creating the directory, the instance id
    /// and the signing key when missing (race-free, see the module doc).
    pub fn load_or_create(dir: &Path) -> Result<Keys, AuditError> {
        std::fs::create_dir_all(dir).map_err(io_error(dir, "creating"))?;
        let instance_path = dir.join(INSTANCE_FILE);
        let instance = create_once(&instance_path, new_instance()?.as_bytes())?;
        let instance = String::from_utf8_lossy(&instance).trim().to_owned();
        if instance.is_empty()
            || !instance
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        {
            return Err(AuditError::Key(format!(
                "`{}` must hold an instance id of letters, digits, `-`, `_` or `.`",
                instance_path.display()
            )));
        }
        let pkcs8 = create_once(&dir.join(SIGNING_FILE), &new_pkcs8()?)?;
        let (signing, public) = pair(&pkcs8)?;
        let public_path = dir.join(PUBLIC_FILE);
        let line = format!("{public}\n");
        if std::fs::read(&public_path).ok().as_deref() != Some(line.as_bytes()) {
            replace_file(&public_path, line.as_bytes())?;
        }
        let legacy_path = dir.join(LEGACY_SUBJECT_FILE);
        let legacy_subject =
            match std::fs::read(&legacy_path) {
                Ok(text) => Some(hex::decode(String::from_utf8_lossy(&text).trim()).map_err(
                    |_| AuditError::Key(format!("`{}` is not hex", legacy_path.display())),
                )?),
                Err(_) => None,
            };
        Ok(Keys {
            signing,
            public,
            instance,
            dir: Some(dir.to_owned()),
            legacy_subject,
        })
    }

    /// Reads only the public key of a key directory (for verification).
    pub fn public_keys_in(dir: &Path) -> Result<PublicKeys, AuditError> {
        let path = dir.join(PUBLIC_FILE);
        PublicKeys::parse(&String::from_utf8_lossy(
            &std::fs::read(&path).map_err(io_error(&path, "reading"))?,
        ))
    }

    /// The instance id: the name of this gateway's chain.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// This instance's public key as a trusted set.
    pub fn trusted(&self) -> PublicKeys {
        PublicKeys(vec![self.public])
    }

    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.signing.sign(message).as_ref().to_vec()
    }

    pub(crate) fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// A pre-v2 subject key found in the key directory.
    pub(crate) fn legacy_subject(&self) -> Option<&[u8]> {
        self.legacy_subject.as_deref()
    }

    /// Takes the instance lock of the key directory (none for in-memory
    /// keys): a second process of the same instance is refused here.
    pub fn lock_instance(&self) -> Result<Option<InstanceLock>, AuditError> {
        let Some(dir) = &self.dir else {
            return Ok(None);
        };
        let path = dir.join(LOCK_FILE);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_error(&path, "opening"))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                return Err(AuditError::InstanceLocked {
                    instance: self.instance.clone(),
                    path: path.display().to_string(),
                    holder: holder.trim().to_owned(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_error(&path, "locking")(e)),
        }
        // Who holds it, for the next one's error message.
        let _ = file.set_len(0);
        let _ = file.write_all(format!("pid {}\n", std::process::id()).as_bytes());
        Ok(Some(InstanceLock { _file: file }))
    }
}

/// Held while this process writes the instance's chain; released on drop
/// (or by the kernel when the process dies, so kill -9 leaves no stale lock).
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
}

/// The subject key every instance shares: HMAC-SHA256 of subject ids.
#[derive(Clone)]
pub struct SubjectKey(ring::hmac::Key);

impl fmt::Debug for SubjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SubjectKey(..)")
    }
}

impl SubjectKey {
    pub fn new(bytes: &[u8]) -> SubjectKey {
        SubjectKey(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, bytes))
    }

    /// A random key (tests).
    pub fn generate() -> Result<SubjectKey, AuditError> {
        Ok(SubjectKey::new(&random::<32>()?))
    }

    pub(crate) fn random_bytes() -> Result<[u8; 32], AuditError> {
        random::<32>()
    }

    /// Hex HMAC-SHA256 of `kind:id`: the same ID gives the same value
    /// (auditors can search), the value reveals nothing.
    pub fn hmac(&self, kind: &str, id: &str) -> String {
        let mut ctx = ring::hmac::Context::with_key(&self.0);
        ctx.update(kind.as_bytes());
        ctx.update(b":");
        ctx.update(id.as_bytes());
        hex::encode(ctx.sign().as_ref())
    }
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
        assert_eq!(a.instance(), b.instance());
        assert!(a.instance().starts_with("gw-"));
        for f in [SIGNING_FILE, INSTANCE_FILE] {
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
        // No temporary files left behind.
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
    }

    #[test]
    fn processes_racing_on_an_empty_dir_agree() {
        for _ in 0..10 {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("keys");
            let threads: Vec<_> = (0..8)
                .map(|_| {
                    let path = path.clone();
                    std::thread::spawn(move || {
                        Keys::load_or_create(&path).map(|k| (k.instance, k.public))
                    })
                })
                .collect();
            let results: Vec<_> = threads
                .into_iter()
                .map(|t| t.join().expect("thread").expect("keys"))
                .collect();
            assert!(results.windows(2).all(|w| w[0] == w[1]), "{results:?}");
        }
    }

    #[test]
    fn a_second_holder_of_the_instance_lock_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = Keys::load_or_create(dir.path()).expect("keys");
        let lock = a.lock_instance().expect("lock").expect("file lock");
        let b = Keys::load_or_create(dir.path()).expect("keys");
        let err = b.lock_instance().expect_err("held");
        let text = err.to_string();
        assert!(text.contains(a.instance()), "{text}");
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        drop(lock);
        assert!(b.lock_instance().expect("free again").is_some());
        assert!(
            Keys::generate()
                .expect("k")
                .lock_instance()
                .expect("none")
                .is_none()
        );
    }

    #[test]
    fn subject_hmac_is_keyed_and_hides_the_id() {
        let a = SubjectKey::generate().expect("key");
        let b = SubjectKey::generate().expect("key");
        let id = "341602197703051725";
        let h = a.hmac("resident_id", id);
        assert_eq!(h.len(), 64);
        assert!(!h.contains(id));
        assert_ne!(h, b.hmac("resident_id", id));
        assert_ne!(h, a.hmac("uscc", id));
    }

    #[test]
    fn signatures_verify_only_with_the_right_key_and_message() {
        let a = Keys::generate().expect("keys");
        let sig = a.sign(b"m");
        assert!(a.public_key().verify(b"m", &sig));
        assert!(!a.public_key().verify(b"n", &sig));
        let b = Keys::generate().expect("keys");
        assert!(!b.public_key().verify(b"m", &sig));
        assert!("zz".parse::<PublicKey>().is_err());
    }
}
