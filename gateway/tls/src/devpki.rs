//! The development CA: a throwaway root and one leaf certificate per identity, so a laptop or a
//! test can run the gateway and adapters with real mutual TLS.
//!
//! Layout of a directory: `ca.pem`, `ca-key.pem`, and `<file_stem>.pem` + `<file_stem>-key.pem`
//! per identity (e.g. `department-tax.pem`). Keys are written readable by the owner only.

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};
use time::{Duration, OffsetDateTime};

use crate::config::read_certs;
use crate::{Identity, TlsError, TlsFiles};

/// The CA certificate's file name.
pub const CA_CERT_FILE: &str = "ca.pem";
/// The CA private key's file name.
pub const CA_KEY_FILE: &str = "ca-key.pem";

/// How long a leaf certificate is valid.
const LEAF_VALIDITY: Duration = Duration::days(730);
/// How long the CA is valid: longer than any leaf it issues near the end of a leaf's life.
const CA_VALIDITY: Duration = Duration::days(3650);
/// Certificates start this long in the past so that a peer whose clock lags a little still
/// accepts a certificate issued a moment ago.
const BACKDATE: Duration = Duration::minutes(5);

/// A development PKI directory created by [`init`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevPki {
    /// The directory holding every file.
    pub dir: PathBuf,
    /// The CA certificate (`<dir>/ca.pem`).
    pub ca: PathBuf,
}

impl DevPki {
    /// The files of `identity` in this directory (whether or not they were issued).
    pub fn files(&self, identity: &Identity) -> TlsFiles {
        leaf_files(&self.dir, identity, self.ca.clone())
    }
}

/// Creates a development CA in `out` (created if missing) and issues a leaf certificate for each
/// identity.
///
/// Refuses, naming the file, when `out` already holds `ca.pem` or `ca-key.pem`: replacing a CA
/// would silently invalidate every certificate it issued.
pub fn init(out: &Path, identities: &[Identity]) -> Result<DevPki, TlsError> {
    // Check every identity before touching the disk.
    for identity in identities {
        identity.validate()?;
    }
    create_dir(out)?;
    let ca_cert_path = out.join(CA_CERT_FILE);
    let ca_key_path = out.join(CA_KEY_FILE);
    for path in [&ca_cert_path, &ca_key_path] {
        // symlink_metadata also catches a dangling symlink, which writing would follow.
        if path.symlink_metadata().is_ok() {
            return Err(TlsError::CaExists { path: path.clone() });
        }
    }

    let ca_key = generate_key()?;
    let ca_params = ca_params();
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .map_err(|source| generate_error("the CA certificate", source))?;
    write_file(
        &ca_key_path,
        ca_key.serialize_pem().as_bytes(),
        Mode::NewSecret,
    )?;
    write_file(&ca_cert_path, ca_cert.pem().as_bytes(), Mode::New)?;

    let issuer = Issuer::new(ca_params, ca_key);
    let mut seen = HashSet::new();
    for identity in identities {
        if seen.insert(identity) {
            issue_leaf(&issuer, identity, out, ca_cert_path.clone())?;
        }
    }
    Ok(DevPki {
        dir: out.to_owned(),
        ca: ca_cert_path,
    })
}

/// Issues a new leaf certificate for `identity` from the CA in `ca_dir` (its `ca.pem` and
/// `ca-key.pem`), writing `<file_stem>.pem` and `<file_stem>-key.pem` into `out` (created if
/// missing; an earlier certificate of the same identity is replaced).
pub fn issue(ca_dir: &Path, identity: &Identity, out: &Path) -> Result<TlsFiles, TlsError> {
    identity.validate()?;
    let ca_cert_path = ca_dir.join(CA_CERT_FILE);
    let ca_key_path = ca_dir.join(CA_KEY_FILE);

    let (_, ca_certs) = read_certs(&ca_cert_path)?;
    let ca_cert = ca_certs.first().ok_or_else(|| TlsError::NoCertificate {
        path: ca_cert_path.clone(),
    })?;
    let key_pem = std::fs::read_to_string(&ca_key_path).map_err(|source| TlsError::Read {
        path: ca_key_path.clone(),
        source,
    })?;
    let ca_key = KeyPair::from_pem(&key_pem).map_err(|err| TlsError::CaKey {
        path: ca_key_path.clone(),
        reason: err.to_string(),
    })?;
    // A key from another CA would sign leaves that no peer trusting `ca.pem` accepts.
    if !key_matches_cert(&ca_key, ca_cert)? {
        return Err(TlsError::CaKey {
            path: ca_key_path,
            reason: format!("it is not the key of `{}`", ca_cert_path.display()),
        });
    }
    let issuer = Issuer::from_ca_cert_der(ca_cert, ca_key).map_err(|source| TlsError::InFile {
        path: ca_cert_path.clone(),
        source: Box::new(generate_error("an issuer from the CA certificate", source)),
    })?;

    create_dir(out)?;
    issue_leaf(&issuer, identity, out, ca_cert_path)
}

fn leaf_files(dir: &Path, identity: &Identity, ca: PathBuf) -> TlsFiles {
    let stem = identity.file_stem();
    TlsFiles {
        cert: dir.join(format!("{stem}.pem")),
        key: dir.join(format!("{stem}-key.pem")),
        ca,
    }
}

fn issue_leaf(
    issuer: &Issuer<'_, KeyPair>,
    identity: &Identity,
    out: &Path,
    ca: PathBuf,
) -> Result<TlsFiles, TlsError> {
    let what = || format!("the certificate of `{identity}`");
    let key = generate_key()?;
    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name(&identity.uri());
    let uri = identity
        .uri()
        .try_into()
        .map_err(|source| generate_error(&what(), source))?;
    let localhost = "localhost"
        .try_into()
        .map_err(|source| generate_error(&what(), source))?;
    params.subject_alt_names = vec![
        SanType::URI(uri),
        SanType::DnsName(localhost),
        SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)),
    ];
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    // Adapters and the gateway are servers to some peers and clients of others.
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    let now = OffsetDateTime::now_utc();
    params.not_before = now - BACKDATE;
    params.not_after = now + LEAF_VALIDITY;
    let cert = params
        .signed_by(&key, issuer)
        .map_err(|source| generate_error(&what(), source))?;

    let files = leaf_files(out, identity, ca);
    write_file(
        &files.key,
        key.serialize_pem().as_bytes(),
        Mode::ReplaceSecret,
    )?;
    write_file(&files.cert, cert.pem().as_bytes(), Mode::Replace)?;
    Ok(files)
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name("xgate development CA");
    // Path length 0: this CA signs leaves only.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - BACKDATE;
    params.not_after = now + CA_VALIDITY;
    params
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "xgate development");
    name.push(DnType::CommonName, common_name);
    name
}

fn generate_key() -> Result<KeyPair, TlsError> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
        .map_err(|source| generate_error("an ECDSA P-256 key", source))
}

fn generate_error(what: &str, source: rcgen::Error) -> TlsError {
    TlsError::Generate {
        what: what.to_owned(),
        source,
    }
}

/// Whether `key` is the private half of the public key in `cert`.
fn key_matches_cert(key: &KeyPair, cert: &[u8]) -> Result<bool, TlsError> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert)
        .map_err(|err| TlsError::Certificate(err.to_string()))?;
    Ok(cert.public_key().subject_public_key.data.as_ref() == key.public_key_raw())
}

fn create_dir(dir: &Path) -> Result<(), TlsError> {
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Write {
        path: dir.to_owned(),
        source,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Fail if the file exists (only CA files are written this way, so an existing file is
    /// reported as [`TlsError::CaExists`]; this also catches a CA created concurrently).
    New,
    /// As `New`, with owner-only permissions.
    NewSecret,
    /// Replace the file atomically.
    Replace,
    /// Replace the file atomically; owner-only permissions.
    ReplaceSecret,
}

fn write_file(path: &Path, contents: &[u8], mode: Mode) -> Result<(), TlsError> {
    let write_error = |path: &Path, source| TlsError::Write {
        path: path.to_owned(),
        source,
    };
    let secret = matches!(mode, Mode::NewSecret | Mode::ReplaceSecret);
    let replace = matches!(mode, Mode::Replace | Mode::ReplaceSecret);
    // Replacements go through a temporary file and a rename so a reader never sees half a file.
    let target = if replace {
        let mut name = path.as_os_str().to_owned();
        name.push(".tmp");
        PathBuf::from(name)
    } else {
        path.to_owned()
    };

    let mut options = OpenOptions::new();
    options.write(true);
    if replace {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&target).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists && !replace {
            TlsError::CaExists {
                path: target.clone(),
            }
        } else {
            write_error(&target, source)
        }
    })?;
    // A leftover temporary file keeps its old permissions: tighten them explicitly.
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|source| write_error(&target, source))?;
    }
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|source| write_error(&target, source))?;
    if replace {
        std::fs::rename(&target, path).map_err(|source| write_error(path, source))?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use x509_parser::extensions::GeneralName;
    use x509_parser::oid_registry::OID_KEY_TYPE_EC_PUBLIC_KEY;
    use x509_parser::prelude::{FromDer, X509Certificate};

    use super::*;
    use crate::load_certs;

    fn identities() -> Vec<Identity> {
        vec![
            Identity::Requester("bureau-1".into()),
            Identity::Department("tax".into()),
            Identity::Gateway("main".into()),
            Identity::Admin("ops".into()),
            Identity::Auditor("audit".into()),
        ]
    }

    fn with_cert<R>(path: &Path, check: impl FnOnce(&X509Certificate<'_>) -> R) -> R {
        let der = load_certs(path).unwrap().remove(0);
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        check(&cert)
    }

    #[test]
    fn init_writes_a_ca_and_a_leaf_per_identity() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("pki");
        let pki = init(&out, &identities()).unwrap();
        assert_eq!(pki.dir, out);
        assert_eq!(pki.ca, out.join("ca.pem"));
        assert!(out.join("ca-key.pem").is_file());
        with_cert(&pki.ca, |ca| {
            assert!(ca.is_ca());
            assert_eq!(ca.subject(), ca.issuer());
        });

        for identity in identities() {
            let files = pki.files(&identity);
            let stem = identity.file_stem();
            assert_eq!(files.cert, out.join(format!("{stem}.pem")));
            assert_eq!(files.key, out.join(format!("{stem}-key.pem")));
            assert_eq!(files.ca, pki.ca);
            assert!(files.key.is_file());
            assert_eq!(files.identity().unwrap(), identity);
        }
    }

    #[test]
    fn leaf_has_the_documented_shape() {
        let dir = tempfile::tempdir().unwrap();
        let identity = Identity::Department("tax".into());
        let pki = init(dir.path(), std::slice::from_ref(&identity)).unwrap();
        let ca_subject = with_cert(&pki.ca, |ca| ca.subject().to_string());
        with_cert(&pki.files(&identity).cert, |leaf| {
            assert!(!leaf.is_ca());
            assert_eq!(leaf.issuer().to_string(), ca_subject);
            assert_eq!(
                leaf.public_key().algorithm.algorithm,
                OID_KEY_TYPE_EC_PUBLIC_KEY
            );
            let sans: Vec<String> = leaf
                .subject_alternative_name()
                .unwrap()
                .unwrap()
                .value
                .general_names
                .iter()
                .map(|name| match name {
                    GeneralName::URI(uri) => format!("uri:{uri}"),
                    GeneralName::DNSName(dns) => format!("dns:{dns}"),
                    GeneralName::IPAddress(ip) => format!("ip:{ip:?}"),
                    other => format!("{other:?}"),
                })
                .collect();
            assert_eq!(
                sans,
                [
                    "uri:xgate://department/tax".to_owned(),
                    "dns:localhost".to_owned(),
                    format!("ip:{:?}", [127u8, 0, 0, 1]),
                    format!("ip:{:?}", Ipv6Addr::LOCALHOST.octets()),
                ]
            );
            let eku = leaf.extended_key_usage().unwrap().unwrap().value;
            assert!(eku.server_auth && eku.client_auth);
            let validity = leaf.validity();
            let lifetime = validity.not_after.timestamp() - validity.not_before.timestamp();
            assert_eq!(lifetime, (LEAF_VALIDITY + BACKDATE).whole_seconds());
            assert!(validity.is_valid());
        });
    }

    #[cfg(unix)]
    #[test]
    fn keys_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let identity = Identity::Admin("ops".into());
        let pki = init(dir.path(), std::slice::from_ref(&identity)).unwrap();
        for key in [dir.path().join(CA_KEY_FILE), pki.files(&identity).key] {
            let mode = std::fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", key.display());
        }
    }

    #[test]
    fn init_refuses_to_overwrite_a_ca() {
        let dir = tempfile::tempdir().unwrap();
        let pki = init(dir.path(), &identities()).unwrap();
        let before = std::fs::read(&pki.ca).unwrap();
        let err = init(dir.path(), &identities()).unwrap_err();
        assert!(matches!(&err, TlsError::CaExists { path } if *path == pki.ca));
        assert!(
            err.to_string().contains(&format!("`{}`", pki.ca.display())),
            "{err}"
        );
        assert_eq!(std::fs::read(&pki.ca).unwrap(), before);
    }

    #[test]
    fn init_refuses_when_only_the_ca_key_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join(CA_KEY_FILE);
        std::fs::write(&key, "old key").unwrap();
        let err = init(dir.path(), &[]).unwrap_err();
        assert!(matches!(&err, TlsError::CaExists { path } if *path == key));
        assert_eq!(std::fs::read_to_string(&key).unwrap(), "old key");
        assert!(!dir.path().join(CA_CERT_FILE).exists());
    }

    #[test]
    fn init_checks_identities_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("pki");
        let err = init(&out, &[Identity::Department("../tax".into())]).unwrap_err();
        assert!(matches!(err, TlsError::InvalidIdentityUri { .. }));
        assert!(!out.exists());
    }

    #[test]
    fn issue_from_an_existing_ca_replaces_the_old_leaf() {
        let dir = tempfile::tempdir().unwrap();
        let identity = Identity::Department("tax".into());
        let pki = init(dir.path(), std::slice::from_ref(&identity)).unwrap();
        let old = std::fs::read(pki.files(&identity).cert).unwrap();

        let files = issue(&pki.dir, &identity, &pki.dir).unwrap();
        assert_eq!(files, pki.files(&identity));
        assert_ne!(std::fs::read(&files.cert).unwrap(), old);
        assert_eq!(files.identity().unwrap(), identity);
        let ca_subject = with_cert(&pki.ca, |ca| ca.subject().to_string());
        with_cert(&files.cert, |leaf| {
            assert_eq!(leaf.issuer().to_string(), ca_subject)
        });
        // Configs load, so the new key fits the new certificate.
        files.server_config().unwrap();
    }

    #[test]
    fn issue_names_a_missing_ca() {
        let dir = tempfile::tempdir().unwrap();
        let identity = Identity::Auditor("audit".into());
        let err = issue(dir.path(), &identity, dir.path()).unwrap_err();
        let ca = dir.path().join(CA_CERT_FILE);
        assert!(matches!(&err, TlsError::Read { path, .. } if *path == ca));
        assert!(
            err.to_string()
                .starts_with(&format!("cannot read `{}`: ", ca.display()))
        );
    }

    #[test]
    fn issue_rejects_a_key_of_another_ca() {
        let dir = tempfile::tempdir().unwrap();
        let ours = init(&dir.path().join("ours"), &[]).unwrap();
        let other = init(&dir.path().join("other"), &[]).unwrap();
        std::fs::copy(other.dir.join(CA_KEY_FILE), ours.dir.join(CA_KEY_FILE)).unwrap();
        let err = issue(&ours.dir, &Identity::Admin("ops".into()), dir.path()).unwrap_err();
        assert!(matches!(err, TlsError::CaKey { .. }), "{err}");
    }
}
