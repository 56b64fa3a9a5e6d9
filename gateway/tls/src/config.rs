//! TLS material on disk and the tonic and rustls configurations built from it.
//!
//! Every loader checks the files itself, so a bad path or a PEM file of the wrong kind is
//! reported with the file's name at start-up rather than as an opaque handshake failure later.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tonic::transport::{Certificate, ClientTlsConfig, ServerTlsConfig};

use crate::{Identity, TlsError, identity_from_der};

/// The ALPN protocol of gRPC.
const ALPN_H2: &[u8] = b"h2";

/// Installs ring as rustls's process-wide crypto provider.
///
/// tonic builds its rustls configs from the process-wide provider, and rustls panics when it
/// cannot pick one, so every binary and test calls this first. Safe to call any number of times.
pub fn install_crypto_provider() {
    // An error only means a provider is installed already (by an earlier call), which is the
    // state this function exists to reach.
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
}

/// The ring provider, passed explicitly to the rustls builders here so they never depend on
/// which provider, if any, the process installed.
fn ring_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The three PEM files of one party: its certificate (chain), its private key, and the CA
/// certificate(s) it trusts for its peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Our certificate, leaf first, optionally followed by intermediates.
    pub cert: PathBuf,
    /// Our private key (PKCS#8, SEC1 or PKCS#1).
    pub key: PathBuf,
    /// The CA certificate(s) that issue our peers' certificates.
    pub ca: PathBuf,
}

/// The PEM text (what tonic wants) and the parsed DER (what rustls wants) of a [`TlsFiles`].
struct Material {
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    ca_pem: Vec<u8>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    roots: RootCertStore,
}

impl TlsFiles {
    /// tonic server TLS: our identity, and client certificates required and verified against
    /// the CA file.
    pub fn server_config(&self) -> Result<ServerTlsConfig, TlsError> {
        let material = self.load()?;
        // Building the rustls config checks that key and certificate belong together and that
        // the CA is usable, which tonic would otherwise only report without naming a file.
        self.build_server(&material)?;
        Ok(ServerTlsConfig::new()
            .identity(tonic::transport::Identity::from_pem(
                &material.cert_pem,
                &material.key_pem,
            ))
            .client_ca_root(Certificate::from_pem(&material.ca_pem)))
    }

    /// tonic client TLS: servers verified against the CA file under the name `domain`, and our
    /// certificate presented for mutual TLS.
    pub fn client_config(&self, domain: &str) -> Result<ClientTlsConfig, TlsError> {
        let material = self.load()?;
        self.build_client(&material)?;
        Ok(ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&material.ca_pem))
            .identity(tonic::transport::Identity::from_pem(
                &material.cert_pem,
                &material.key_pem,
            ))
            .domain_name(domain))
    }

    /// The identity in our own certificate.
    pub fn identity(&self) -> Result<Identity, TlsError> {
        let (_, chain) = read_certs(&self.cert)?;
        let leaf = chain.first().ok_or_else(|| TlsError::NoCertificate {
            path: self.cert.clone(),
        })?;
        identity_from_der(leaf).map_err(|source| TlsError::InFile {
            path: self.cert.clone(),
            source: Box::new(source),
        })
    }

    fn load(&self) -> Result<Material, TlsError> {
        let (cert_pem, chain) = read_certs(&self.cert)?;
        let (key_pem, key) = read_key(&self.key)?;
        let (ca_pem, ca_certs) = read_certs(&self.ca)?;
        let mut roots = RootCertStore::empty();
        for ca in ca_certs {
            roots.add(ca).map_err(|source| TlsError::InFile {
                path: self.ca.clone(),
                source: Box::new(TlsError::Rustls(source)),
            })?;
        }
        Ok(Material {
            cert_pem,
            key_pem,
            ca_pem,
            chain,
            key,
            roots,
        })
    }

    fn build_server(&self, material: &Material) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let provider = ring_provider();
        let verifier = WebPkiClientVerifier::builder_with_provider(
            Arc::new(material.roots.clone()),
            Arc::clone(&provider),
        )
        .build()
        .map_err(|source| TlsError::ClientVerifier {
            path: self.ca.clone(),
            source,
        })?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(material.chain.clone(), material.key.clone_key())
            .map_err(|source| self.key_error(source))?;
        config.alpn_protocols = vec![ALPN_H2.to_vec()];
        Ok(Arc::new(config))
    }

    fn build_client(&self, material: &Material) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        let mut config = rustls::ClientConfig::builder_with_provider(ring_provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(material.roots.clone())
            .with_client_auth_cert(material.chain.clone(), material.key.clone_key())
            .map_err(|source| self.key_error(source))?;
        config.alpn_protocols = vec![ALPN_H2.to_vec()];
        Ok(Arc::new(config))
    }

    /// rustls fails on our certificate and key together (unsupported key, key that does not
    /// match the certificate): name the key file, which is the usual culprit.
    fn key_error(&self, source: rustls::Error) -> TlsError {
        TlsError::InFile {
            path: self.key.clone(),
            source: Box::new(TlsError::Rustls(source)),
        }
    }
}

/// A rustls server config for mutual TLS: our certificate, client certificates required and
/// verified against `files.ca`, ALPN `h2` (gRPC). Uses ring regardless of the process default.
pub fn rustls_server_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let material = files.load()?;
    files.build_server(&material)
}

/// A rustls server config for browsers: our certificate, **no** client
/// certificate asked for (browsers sign in to the web console with a
/// one-time URL instead), HTTP/1.1.
pub fn rustls_web_server_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let material = files.load()?;
    let mut config = rustls::ServerConfig::builder_with_provider(ring_provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(material.chain.clone(), material.key.clone_key())
        .map_err(|source| files.key_error(source))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A rustls client config for mutual TLS: servers verified against `files.ca`, our certificate
/// presented, ALPN `h2` (gRPC). Uses ring regardless of the process default.
pub fn rustls_client_config(files: &TlsFiles) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let material = files.load()?;
    files.build_client(&material)
}

/// All certificates of a PEM file, in file order; at least one.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    read_certs(path).map(|(_, certs)| certs)
}

/// The first private key of a PEM file (PKCS#8, SEC1 or PKCS#1).
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    read_key(path).map(|(_, key)| key)
}

fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn pem_error(path: &Path, err: &pem::Error) -> TlsError {
    TlsError::Pem {
        path: path.to_owned(),
        reason: err.to_string(),
    }
}

/// The file's bytes and its certificates.
pub(crate) fn read_certs(path: &Path) -> Result<(Vec<u8>, Vec<CertificateDer<'static>>), TlsError> {
    let bytes = read_file(path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| pem_error(path, &err))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok((bytes, certs))
}

/// The file's bytes and its first private key.
fn read_key(path: &Path) -> Result<(Vec<u8>, PrivateKeyDer<'static>), TlsError> {
    let bytes = read_file(path)?;
    match PrivateKeyDer::from_pem_slice(&bytes) {
        Ok(key) => Ok((bytes, key)),
        Err(pem::Error::NoItemsFound) => Err(TlsError::NoPrivateKey {
            path: path.to_owned(),
        }),
        Err(err) => Err(pem_error(path, &err)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::devpki::{self, DevPki};

    fn pki(dir: &Path) -> DevPki {
        devpki::init(
            dir,
            &[
                Identity::Department("tax".into()),
                Identity::Gateway("main".into()),
            ],
        )
        .unwrap()
    }

    fn tax(pki: &DevPki) -> TlsFiles {
        pki.files(&Identity::Department("tax".into()))
    }

    /// The error of every loader, which must agree on what is wrong with the files.
    fn errors(files: &TlsFiles) -> Vec<String> {
        vec![
            files.server_config().unwrap_err().to_string(),
            files.client_config("localhost").unwrap_err().to_string(),
            rustls_server_config(files).unwrap_err().to_string(),
            rustls_client_config(files).unwrap_err().to_string(),
        ]
    }

    #[test]
    fn good_files_load_everywhere() {
        let dir = tempfile::tempdir().unwrap();
        let files = tax(&pki(dir.path()));
        files.server_config().unwrap();
        files.client_config("localhost").unwrap();
        let server = rustls_server_config(&files).unwrap();
        let client = rustls_client_config(&files).unwrap();
        assert_eq!(server.alpn_protocols, [b"h2".to_vec()]);
        assert_eq!(client.alpn_protocols, [b"h2".to_vec()]);
        assert!(client.client_auth_cert_resolver.has_certs());
        assert_eq!(load_certs(&files.cert).unwrap().len(), 1);
        load_private_key(&files.key).unwrap();
    }

    #[test]
    fn missing_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let files = TlsFiles {
            ca: dir.path().join("absent.pem"),
            ..tax(&pki(dir.path()))
        };
        let expected = format!("cannot read `{}`: ", files.ca.display());
        for err in errors(&files) {
            assert!(err.starts_with(&expected), "{err}");
        }
    }

    #[test]
    fn key_where_a_certificate_belongs_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let good = tax(&pki(dir.path()));
        let files = TlsFiles {
            cert: good.key.clone(),
            ..good
        };
        let expected = format!("`{}` holds no certificate", files.cert.display());
        for err in errors(&files) {
            assert_eq!(err, expected);
        }
        assert_eq!(files.identity().unwrap_err().to_string(), expected);
    }

    #[test]
    fn certificate_where_a_key_belongs_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let good = tax(&pki(dir.path()));
        let files = TlsFiles {
            key: good.cert.clone(),
            ..good
        };
        let expected = format!("`{}` holds no private key", files.key.display());
        for err in errors(&files) {
            assert_eq!(err, expected);
        }
    }

    #[test]
    fn broken_pem_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let broken = dir.path().join("broken.pem");
        std::fs::write(&broken, "-----BEGIN CERTIFICATE-----\nAAAA\n").unwrap();
        let files = TlsFiles {
            ca: broken.clone(),
            ..tax(&pki(dir.path()))
        };
        let expected = format!("`{}` is not valid PEM: ", broken.display());
        for err in errors(&files) {
            assert!(err.starts_with(&expected), "{err}");
        }
    }

    #[test]
    fn key_of_another_identity_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let pki = pki(dir.path());
        let files = TlsFiles {
            key: pki.files(&Identity::Gateway("main".into())).key,
            ..tax(&pki)
        };
        let expected = format!("`{}`: invalid TLS configuration: ", files.key.display());
        for err in errors(&files) {
            assert!(err.starts_with(&expected), "{err}");
        }
    }

    #[test]
    fn identity_reads_our_own_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let pki = pki(dir.path());
        assert_eq!(
            tax(&pki).identity().unwrap(),
            Identity::Department("tax".into())
        );
        // The CA certificate carries no identity; the error names the file.
        let files = TlsFiles {
            cert: pki.ca.clone(),
            ..tax(&pki)
        };
        let err = files.identity().unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "`{}`: certificate has no `xgate://` URI subject alternative name",
                pki.ca.display()
            )
        );
    }
}

/// A rustls client config that accepts only a server whose certificate, besides chaining to
/// `files.ca` and matching the server name, carries exactly the identity `expected` — e.g. the
/// gateway calling an adapter registered by department `tax` accepts only
/// `xgate://department/tax`, never another department's (valid) certificate.
pub fn rustls_client_config_for_peer(
    files: &TlsFiles,
    expected: Identity,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let material = files.load()?;
    let provider = ring_provider();
    let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(material.roots.clone()),
        Arc::clone(&provider),
    )
    .build()
    .map_err(|source| TlsError::ServerVerifier {
        path: files.ca.clone(),
        source,
    })?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ExpectedServer { inner, expected }))
        .with_client_auth_cert(material.chain.clone(), material.key.clone_key())
        .map_err(|source| files.key_error(source))?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Arc::new(config))
}

/// WebPKI verification, then the identity check.
#[derive(Debug)]
struct ExpectedServer {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    expected: Identity,
}

impl rustls::client::danger::ServerCertVerifier for ExpectedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let verified = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        match identity_from_der(end_entity) {
            Ok(found) if found == self.expected => Ok(verified),
            Ok(found) => Err(rustls::Error::General(format!(
                "server certificate is `{found}`, expected `{}`",
                self.expected
            ))),
            Err(e) => Err(rustls::Error::General(format!(
                "server certificate carries no usable identity: {e}"
            ))),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
