//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong while loading TLS material, building TLS configs, reading
/// identities from certificates or running the development CA.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file or directory could not be written.
    #[error("cannot write `{}`: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file is not well-formed PEM.
    #[error("`{}` is not valid PEM: {reason}", path.display())]
    Pem { path: PathBuf, reason: String },
    /// A PEM file expected to hold certificates holds none.
    #[error("`{}` holds no certificate", path.display())]
    NoCertificate { path: PathBuf },
    /// A PEM file expected to hold a private key holds none.
    #[error("`{}` holds no private key", path.display())]
    NoPrivateKey { path: PathBuf },
    /// A certificate in a file could not be used; `source` says why.
    #[error("`{}`: {source}", path.display())]
    InFile {
        path: PathBuf,
        #[source]
        source: Box<TlsError>,
    },
    /// A string is not an identity URI of the form `xgate://<kind>/<id>`.
    #[error("`{uri}` is not an xgate identity URI: {reason}")]
    InvalidIdentityUri { uri: String, reason: &'static str },
    /// A DER blob is not an X.509 certificate.
    #[error("cannot parse certificate: {0}")]
    Certificate(String),
    /// A certificate carries no `xgate://` URI SAN.
    #[error("certificate has no `xgate://` URI subject alternative name")]
    NoIdentity,
    /// A certificate carries more than one `xgate://` URI SAN, so whose it is is ambiguous.
    #[error("certificate has {} `xgate://` URI subject alternative names ({}), expected exactly one", .0.len(), .0.join(", "))]
    AmbiguousIdentity(Vec<String>),
    /// `devpki::init` found an existing CA file.
    #[error("`{}` already exists: refusing to overwrite the development CA", path.display())]
    CaExists { path: PathBuf },
    /// The CA key could not be loaded.
    #[error("cannot load CA key `{}`: {reason}", path.display())]
    CaKey { path: PathBuf, reason: String },
    /// Key or certificate generation failed.
    #[error("cannot generate {what}: {source}")]
    Generate {
        what: String,
        #[source]
        source: rcgen::Error,
    },
    /// rustls rejected the configuration (for example a key that does not match its certificate).
    #[error("invalid TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client-certificate verifier could not be built from the CA file.
    #[error("cannot build client certificate verifier from `{}`: {source}", path.display())]
    ClientVerifier {
        path: PathBuf,
        #[source]
        source: rustls::server::VerifierBuilderError,
    },

    /// The server-certificate verifier could not be built from the CA file.
    #[error("cannot build server certificate verifier from `{}`: {source}", path.display())]
    ServerVerifier {
        path: PathBuf,
        #[source]
        source: rustls::client::VerifierBuilderError,
    },
}
