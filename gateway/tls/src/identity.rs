//! Who is on the other end of a connection: identities carried as `xgate://<kind>/<id>` URI SANs.

use std::fmt;
use std::str::FromStr;

use x509_parser::extensions::GeneralName;

use crate::TlsError;

/// The URI scheme of identity SANs.
const SCHEME: &str = "xgate";

/// A party of xgate, as named by the `xgate://<kind>/<id>` URI SAN of its certificate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity {
    /// An approval-bureau system calling the gateway.
    Requester(String),
    /// A department adapter.
    Department(String),
    /// The gateway, when it calls adapters.
    Gateway(String),
    /// An operator.
    Admin(String),
    /// An auditor.
    Auditor(String),
    /// The citizen platform (the province's app backend): acts for the
    /// subjects who signed in to it, e.g. to grant or revoke their consents.
    Platform(String),
}

impl Identity {
    /// Every kind, in URI spelling.
    pub const KINDS: [&'static str; 6] = [
        "requester",
        "department",
        "gateway",
        "admin",
        "auditor",
        "platform",
    ];

    /// Builds an identity from its kind (`"department"`) and id (`"tax"`), checking both.
    pub fn new(kind: &str, id: &str) -> Result<Identity, TlsError> {
        let invalid = |reason| TlsError::InvalidIdentityUri {
            uri: format!("{SCHEME}://{kind}/{id}"),
            reason,
        };
        if !is_valid_id(id) {
            return Err(invalid("the id must match `^[a-z0-9][a-z0-9-]*$`"));
        }
        let id = id.to_owned();
        Ok(match kind {
            "requester" => Identity::Requester(id),
            "department" => Identity::Department(id),
            "gateway" => Identity::Gateway(id),
            "admin" => Identity::Admin(id),
            "auditor" => Identity::Auditor(id),
            "platform" => Identity::Platform(id),
            _ => {
                return Err(invalid(
                    "the kind must be one of requester, department, gateway, admin, auditor, platform",
                ));
            }
        })
    }

    /// The identity URI, e.g. `xgate://department/tax`.
    pub fn uri(&self) -> String {
        format!("{SCHEME}://{}/{}", self.kind(), self.id())
    }

    /// Parses `xgate://<kind>/<id>` strictly: lowercase scheme and kind, nothing after the id.
    pub fn parse_uri(uri: &str) -> Result<Identity, TlsError> {
        let rest = uri
            .strip_prefix(SCHEME)
            .and_then(|rest| rest.strip_prefix("://"))
            .ok_or_else(|| TlsError::InvalidIdentityUri {
                uri: uri.to_owned(),
                reason: "it must start with `xgate://`",
            })?;
        let (kind, id) = rest
            .split_once('/')
            .ok_or_else(|| TlsError::InvalidIdentityUri {
                uri: uri.to_owned(),
                reason: "it must have the form `xgate://<kind>/<id>`",
            })?;
        // Errors name the whole URI as given, not the reassembled one.
        Identity::new(kind, id).map_err(|err| match err {
            TlsError::InvalidIdentityUri { reason, .. } => TlsError::InvalidIdentityUri {
                uri: uri.to_owned(),
                reason,
            },
            other => other,
        })
    }

    /// The kind, in URI spelling: `requester`, `department`, `gateway`, `admin`, `auditor` or
    /// `platform`.
    pub fn kind(&self) -> &'static str {
        match self {
            Identity::Requester(_) => "requester",
            Identity::Department(_) => "department",
            Identity::Gateway(_) => "gateway",
            Identity::Admin(_) => "admin",
            Identity::Auditor(_) => "auditor",
            Identity::Platform(_) => "platform",
        }
    }

    /// The id within the kind, e.g. `tax`.
    pub fn id(&self) -> &str {
        match self {
            Identity::Requester(id)
            | Identity::Department(id)
            | Identity::Gateway(id)
            | Identity::Admin(id)
            | Identity::Auditor(id)
            | Identity::Platform(id) => id,
        }
    }

    /// The file name stem of this identity's development certificate, e.g. `department-tax`.
    pub fn file_stem(&self) -> String {
        format!("{}-{}", self.kind(), self.id())
    }

    /// Checks the id, for identities built directly from the enum variants.
    pub(crate) fn validate(&self) -> Result<(), TlsError> {
        Identity::new(self.kind(), self.id()).map(|_| ())
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}://{}/{}", self.kind(), self.id())
    }
}

impl FromStr for Identity {
    type Err = TlsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Identity::parse_uri(s)
    }
}

/// `^[a-z0-9][a-z0-9-]*$`
fn is_valid_id(id: &str) -> bool {
    let mut bytes = id.bytes();
    bytes
        .next()
        .is_some_and(|first| first.is_ascii_lowercase() || first.is_ascii_digit())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The identity of a DER certificate: its one `xgate://` URI SAN.
///
/// Any URI SAN whose scheme is `xgate` in any case counts, so a malformed or second identity URI
/// is an error rather than silently ignored.
pub fn identity_from_der(cert_der: &[u8]) -> Result<Identity, TlsError> {
    let (rest, cert) = x509_parser::parse_x509_certificate(cert_der)
        .map_err(|err| TlsError::Certificate(err.to_string()))?;
    if !rest.is_empty() {
        return Err(TlsError::Certificate(format!(
            "{} trailing bytes after the certificate",
            rest.len()
        )));
    }
    let san = cert
        .subject_alternative_name()
        .map_err(|err| TlsError::Certificate(err.to_string()))?;
    let uris: Vec<&str> = san
        .iter()
        .flat_map(|san| san.value.general_names.iter())
        .filter_map(|name| match name {
            GeneralName::URI(uri) => Some(*uri),
            _ => None,
        })
        .filter(|uri| {
            uri.split_once("://")
                .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case(SCHEME))
        })
        .collect();
    match uris.as_slice() {
        [] => Err(TlsError::NoIdentity),
        [uri] => Identity::parse_uri(uri),
        _ => Err(TlsError::AmbiguousIdentity(
            uris.iter().map(|uri| format!("`{uri}`")).collect(),
        )),
    }
}

/// The identity a request built inside the gateway acts as: the web console
/// puts the identity its session was bound to (at sign-in, over mTLS, to the
/// certificate that asked for the sign-in URL) on the requests it hands to
/// the gRPC services, so one set of role checks serves both.
///
/// Request extensions never come from the wire, so a remote caller cannot
/// set this; only code in the gateway's process can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionIdentity(pub Identity);

/// The authenticated caller of a tonic request, from the leaf certificate it presented
/// (or, for a request the gateway built for a console session, that session's
/// [`SessionIdentity`]).
///
/// Works for servers built with [`crate::TlsFiles::server_config`]: tonic's TLS acceptor
/// requires and verifies the client certificate, then records it on every request.
pub fn peer_identity<T>(req: &tonic::Request<T>) -> Result<Identity, tonic::Status> {
    if let Some(SessionIdentity(identity)) = req.extensions().get::<SessionIdentity>() {
        return Ok(identity.clone());
    }
    let certs = req.peer_certs().ok_or_else(|| {
        tonic::Status::unauthenticated("no client certificate: the connection is not mutual TLS")
    })?;
    let leaf = certs.first().ok_or_else(|| {
        tonic::Status::unauthenticated("no client certificate: the client presented none")
    })?;
    identity_from_der(leaf).map_err(|err| {
        tonic::Status::unauthenticated(format!("client certificate not accepted: {err}"))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn uri_round_trips_for_every_kind() {
        for kind in Identity::KINDS {
            let identity = Identity::new(kind, "tax-2").unwrap();
            assert_eq!(identity.kind(), kind);
            assert_eq!(identity.id(), "tax-2");
            assert_eq!(identity.uri(), format!("xgate://{kind}/tax-2"));
            assert_eq!(identity.to_string(), identity.uri());
            assert_eq!(Identity::parse_uri(&identity.uri()).unwrap(), identity);
            assert_eq!(identity.uri().parse::<Identity>().unwrap(), identity);
        }
    }

    #[test]
    fn file_stem_joins_kind_and_id() {
        let identity = Identity::Department("tax".into());
        assert_eq!(identity.file_stem(), "department-tax");
        assert_eq!(identity.uri(), "xgate://department/tax");
    }

    #[test]
    fn parse_uri_rejects_malformed_uris() {
        for bad in [
            "",
            "xgate://",
            "xgate://department",
            "xgate://department/",
            "xgate://department/Tax",
            "xgate://department/-tax",
            "xgate://department/tax/",
            "xgate://department/tax/x",
            "xgate://department/tax?x=1",
            "xgate://department/ta_x",
            "xgate://Department/tax",
            "XGATE://department/tax",
            "xgate:/department/tax",
            "https://department/tax",
            "xgate://citizen/tax",
            "xgate://department/../../etc",
            " xgate://department/tax",
        ] {
            let err = Identity::parse_uri(bad).unwrap_err();
            assert!(
                matches!(&err, TlsError::InvalidIdentityUri { uri, .. } if uri == bad),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn parse_uri_error_names_the_uri() {
        let err = Identity::parse_uri("xgate://citizen/tax").unwrap_err();
        assert_eq!(
            err.to_string(),
            "`xgate://citizen/tax` is not an xgate identity URI: the kind must be one of requester, department, gateway, admin, auditor, platform"
        );
    }

    #[test]
    fn ids_may_start_with_a_digit() {
        assert_eq!(
            Identity::parse_uri("xgate://requester/0-bureau").unwrap(),
            Identity::Requester("0-bureau".into())
        );
    }

    #[test]
    fn validate_catches_bad_ids_built_from_variants() {
        assert!(Identity::Admin("ops".into()).validate().is_ok());
        assert!(Identity::Admin("../ops".into()).validate().is_err());
        assert!(Identity::Admin(String::new()).validate().is_err());
    }

    fn cert_with_uris(uris: &[&str]) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        for uri in uris {
            params
                .subject_alt_names
                .push(rcgen::SanType::URI((*uri).try_into().unwrap()));
        }
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn identity_from_der_reads_the_one_xgate_uri() {
        let der = cert_with_uris(&["https://example.org/x", "xgate://auditor/audit-1"]);
        assert_eq!(
            identity_from_der(&der).unwrap(),
            Identity::Auditor("audit-1".into())
        );
    }

    #[test]
    fn identity_from_der_rejects_a_cert_without_xgate_uri() {
        let der = cert_with_uris(&["https://example.org/x"]);
        assert!(matches!(identity_from_der(&der), Err(TlsError::NoIdentity)));
        let der = cert_with_uris(&[]);
        assert!(matches!(identity_from_der(&der), Err(TlsError::NoIdentity)));
    }

    #[test]
    fn identity_from_der_rejects_two_xgate_uris() {
        let der = cert_with_uris(&["xgate://department/tax", "xgate://admin/root"]);
        let err = identity_from_der(&der).unwrap_err();
        assert!(matches!(&err, TlsError::AmbiguousIdentity(uris) if uris.len() == 2));
        assert!(err.to_string().contains("`xgate://admin/root`"), "{err}");
    }

    #[test]
    fn identity_from_der_counts_xgate_uris_in_any_case() {
        let der = cert_with_uris(&["xgate://department/tax", "XGATE://admin/root"]);
        assert!(matches!(
            identity_from_der(&der),
            Err(TlsError::AmbiguousIdentity(_))
        ));
        let der = cert_with_uris(&["XGate://admin/root"]);
        assert!(matches!(
            identity_from_der(&der),
            Err(TlsError::InvalidIdentityUri { .. })
        ));
    }

    #[test]
    fn identity_from_der_rejects_garbage_and_trailing_bytes() {
        assert!(matches!(
            identity_from_der(b"not a certificate"),
            Err(TlsError::Certificate(_))
        ));
        let mut der = cert_with_uris(&["xgate://department/tax"]);
        der.push(0);
        assert!(matches!(
            identity_from_der(&der),
            Err(TlsError::Certificate(_))
        ));
    }

    #[test]
    fn peer_identity_without_tls_is_unauthenticated() {
        let status = peer_identity(&tonic::Request::new(())).unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        assert!(status.message().contains("not mutual TLS"), "{status:?}");
    }
}
