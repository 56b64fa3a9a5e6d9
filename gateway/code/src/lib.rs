//! Subject codes: the scannable "resident code" (or a company's licence
//! code) that a citizen's app shows and an approval hall scans instead of
//! typing an ID. The scan is the applicant's explicit request: the gateway
//! accepts the code in place of the raw subject, verifies who issued it, that
//! it is fresh, that the fetch is within its scope, and that it is used once.
//!
//! Format: a COSE_Sign1 (RFC 9052) over CWT claims (RFC 8392), signed with
//! Ed25519 (`alg` EdDSA, `kid` the issuer's name), CBOR-encoded, then base45
//! (RFC 9285) behind the prefix `XG1:` so a QR code holds it in
//! alphanumeric mode — the layout the EU Digital COVID Certificate proved at
//! population scale. Claims: `iss`, `sub` (`resident_id:<id>` or
//! `uscc:<id>`), `iat`, `exp` (at most [`MAX_LIFETIME_SECS`] after `iat`),
//! `cti` (16 random bytes: the single-use nonce), and an optional scope as
//! private claims (requester, purpose, approval item, record types).
//!
//! This crate signs and verifies; single use (nonces recorded in the
//! gateway's store, so replays are refused across replicas) and the scope
//! check against a validated fetch are the gateway's.

mod base45;

use std::collections::HashMap;

use coset::cwt::{ClaimsSet, ClaimsSetBuilder, Timestamp};
use coset::{
    CborSerializable as _, CoseSign1, CoseSign1Builder, HeaderBuilder, RegisteredLabelWithPrivate,
    iana,
};
use ring::rand::SecureRandom as _;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use xgate_catalog::SubjectKind;

/// What every code starts with (and the version of its layout).
pub const PREFIX: &str = "XG1:";
/// The longest a code may be valid: five minutes from issue.
pub const MAX_LIFETIME_SECS: i64 = 300;
/// Clock difference tolerated between issuer and gateway.
pub const CLOCK_SKEW_SECS: i64 = 30;
/// A token longer than this is refused before any parsing (a QR code of
/// version 25 holds ~1,800 alphanumeric characters; real codes are ~250).
pub const MAX_TOKEN_CHARS: usize = 2048;

// Private-use CWT claim keys (below -65536, RFC 8392 section 9.1).
const CLAIM_REQUESTER: i64 = -70_001;
const CLAIM_PURPOSE: i64 = -70_002;
const CLAIM_ITEM: i64 = -70_003;
const CLAIM_TYPES: i64 = -70_004;

/// What a code lets its holder do; every part optional (unset: any).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Only this requester (`xgate://requester/<id>`) may use it.
    pub requester: Option<String>,
    /// Only for this purpose code.
    pub purpose: Option<String>,
    /// Only for this approval item.
    pub approval_item: Option<String>,
    /// Only these record types (empty: any).
    pub record_types: Vec<String>,
}

impl Scope {
    /// Whether a fetch by `requester` for `purpose`, `item` and `types` is
    /// within the scope; else what is outside it.
    pub fn permits<'a>(
        &self,
        requester: &str,
        purpose: &str,
        item: Option<&str>,
        types: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), String> {
        if let Some(r) = &self.requester
            && r != requester
        {
            return Err(format!(
                "the code is for requester `{r}`, not `{requester}`"
            ));
        }
        if let Some(p) = &self.purpose
            && p != purpose
        {
            return Err(format!("the code is for purpose `{p}`, not `{purpose}`"));
        }
        if let Some(i) = &self.approval_item
            && Some(i.as_str()) != item
        {
            return Err(format!(
                "the code is for approval item `{i}`, not {}",
                item.map_or_else(|| "a fetch without one".to_owned(), |i| format!("`{i}`"))
            ));
        }
        if !self.record_types.is_empty() {
            let outside: Vec<&str> = types
                .into_iter()
                .filter(|t| !self.record_types.iter().any(|s| s == t))
                .collect();
            if !outside.is_empty() {
                return Err(format!(
                    "the code does not cover record type(s) {}",
                    outside.join(", ")
                ));
            }
        }
        Ok(())
    }
}

/// A verified code's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectCode {
    pub issuer: String,
    pub subject_kind: SubjectKind,
    pub subject_id: String,
    /// Seconds since the Unix epoch.
    pub issued_at: i64,
    pub expires_at: i64,
    /// The single-use nonce (`cti`).
    pub nonce: [u8; 16],
    pub scope: Scope,
}

impl SubjectCode {
    /// The nonce as 32 hex digits (how the gateway's store keys it).
    pub fn nonce_hex(&self) -> String {
        self.nonce.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Why a code is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("not a subject code: {0}")]
    Malformed(String),
    #[error("the code's issuer `{0}` is not trusted by this gateway")]
    UnknownIssuer(String),
    #[error("the code's signature does not verify (forged or altered)")]
    Forged,
    #[error("the code expired at {expires_at} (now {now}, Unix seconds)")]
    Expired { expires_at: i64, now: i64 },
    #[error("the code is issued in the future ({issued_at}; now {now}, Unix seconds)")]
    NotYetValid { issued_at: i64, now: i64 },
    #[error("the code is valid for {0} s; codes live at most {MAX_LIFETIME_SECS} s")]
    TooLong(i64),
    #[error("issuer key: {0}")]
    Key(String),
}

impl CodeError {
    /// The `google.rpc.ErrorInfo` reason a caller can branch on.
    pub fn reason(&self) -> &'static str {
        match self {
            CodeError::Malformed(_) => "CODE_MALFORMED",
            CodeError::UnknownIssuer(_) => "CODE_UNKNOWN_ISSUER",
            CodeError::Forged => "CODE_FORGED",
            CodeError::Expired { .. } => "CODE_EXPIRED",
            CodeError::NotYetValid { .. } => "CODE_NOT_YET_VALID",
            CodeError::TooLong(_) => "CODE_LIFETIME_TOO_LONG",
            CodeError::Key(_) => "CODE_ISSUER_KEY",
        }
    }
}

/// An issuer's signing key (the province's identity platform; the demo has
/// its own).
pub struct Issuer {
    name: String,
    key: Ed25519KeyPair,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Issuer {
    /// A fresh Ed25519 key as PKCS#8 (to be stored 0600).
    pub fn generate_pkcs8() -> Result<Vec<u8>, CodeError> {
        let rng = ring::rand::SystemRandom::new();
        Ed25519KeyPair::generate_pkcs8(&rng)
            .map(|d| d.as_ref().to_vec())
            .map_err(|e| CodeError::Key(e.to_string()))
    }

    pub fn from_pkcs8(name: &str, pkcs8: &[u8]) -> Result<Issuer, CodeError> {
        let key = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|e| CodeError::Key(e.to_string()))?;
        Ok(Issuer {
            name: name.to_owned(),
            key,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The public key, as a gateway's configuration lists it (64 hex digits).
    pub fn public_key_hex(&self) -> String {
        hex(self.key.public_key().as_ref())
    }

    /// A code for `id` valid `lifetime_secs` from `now` (Unix seconds).
    pub fn issue(
        &self,
        kind: SubjectKind,
        id: &str,
        lifetime_secs: i64,
        scope: &Scope,
        now: i64,
    ) -> Result<String, CodeError> {
        if !(1..=MAX_LIFETIME_SECS).contains(&lifetime_secs) {
            return Err(CodeError::TooLong(lifetime_secs));
        }
        let mut nonce = [0u8; 16];
        ring::rand::SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|e| CodeError::Key(e.to_string()))?;
        let text = |s: &str| coset::cbor::Value::Text(s.to_owned());
        let mut claims = ClaimsSetBuilder::new()
            .issuer(self.name.clone())
            .subject(format!("{}:{id}", kind.as_str()))
            .issued_at(Timestamp::WholeSeconds(now))
            .expiration_time(Timestamp::WholeSeconds(now + lifetime_secs))
            .cwt_id(nonce.to_vec());
        if let Some(r) = &scope.requester {
            claims = claims.private_claim(CLAIM_REQUESTER, text(r));
        }
        if let Some(p) = &scope.purpose {
            claims = claims.private_claim(CLAIM_PURPOSE, text(p));
        }
        if let Some(i) = &scope.approval_item {
            claims = claims.private_claim(CLAIM_ITEM, text(i));
        }
        if !scope.record_types.is_empty() {
            let types = scope.record_types.iter().map(|t| text(t)).collect();
            claims = claims.private_claim(CLAIM_TYPES, coset::cbor::Value::Array(types));
        }
        let payload = claims
            .build()
            .to_vec()
            .map_err(|e| CodeError::Key(e.to_string()))?;
        let protected = HeaderBuilder::new()
            .algorithm(iana::Algorithm::EdDSA)
            .key_id(self.name.as_bytes().to_vec())
            .build();
        let signed = CoseSign1Builder::new()
            .protected(protected)
            .payload(payload)
            .create_signature(b"", |data| self.key.sign(data).as_ref().to_vec())
            .build()
            .to_vec()
            .map_err(|e| CodeError::Key(e.to_string()))?;
        Ok(format!("{PREFIX}{}", base45::encode(&signed)))
    }
}

/// The issuers a gateway trusts, and the checks of a code.
#[derive(Debug, Clone, Default)]
pub struct Verifier {
    keys: HashMap<String, [u8; 32]>,
}

impl Verifier {
    pub fn new() -> Verifier {
        Verifier::default()
    }

    /// Trusts `issuer` with its Ed25519 public key (64 hex digits).
    pub fn trust(&mut self, issuer: &str, public_key_hex: &str) -> Result<(), CodeError> {
        let key = unhex(public_key_hex.trim())
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| {
                CodeError::Key(format!(
                    "the public key of issuer `{issuer}` is not 64 hex digits"
                ))
            })?;
        self.keys.insert(issuer.to_owned(), key);
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Checks `token` at `now` (Unix seconds): layout, issuer, signature,
    /// lifetime. Single use and scope are the caller's to check.
    pub fn verify(&self, token: &str, now: i64) -> Result<SubjectCode, CodeError> {
        let malformed = |why: &str| CodeError::Malformed(why.to_owned());
        if token.len() > MAX_TOKEN_CHARS {
            return Err(malformed("longer than any code"));
        }
        let body = token
            .trim()
            .strip_prefix(PREFIX)
            .ok_or_else(|| malformed("it does not start with `XG1:`"))?;
        let bytes = base45::decode(body).ok_or_else(|| malformed("it is not base45"))?;
        let signed =
            CoseSign1::from_slice(&bytes).map_err(|_| malformed("it is not a COSE_Sign1"))?;
        if signed.protected.header.alg
            != Some(RegisteredLabelWithPrivate::Assigned(iana::Algorithm::EdDSA))
        {
            return Err(malformed("its algorithm is not EdDSA"));
        }
        let kid = String::from_utf8(signed.protected.header.key_id.clone())
            .map_err(|_| malformed("its key id is not text"))?;
        let key = self
            .keys
            .get(&kid)
            .ok_or_else(|| CodeError::UnknownIssuer(kid.clone()))?;
        signed
            .verify_signature(b"", |sig, data| {
                UnparsedPublicKey::new(&ED25519, key).verify(data, sig)
            })
            .map_err(|_| CodeError::Forged)?;
        let payload = signed
            .payload
            .as_deref()
            .ok_or_else(|| malformed("it has no claims"))?;
        let claims =
            ClaimsSet::from_slice(payload).map_err(|_| malformed("its claims are not a CWT"))?;
        read_claims(claims, &kid, now)
    }
}

/// The claims of a signed code, checked.
fn read_claims(claims: ClaimsSet, kid: &str, now: i64) -> Result<SubjectCode, CodeError> {
    let malformed = |why: String| CodeError::Malformed(why);
    let issuer = claims.issuer.ok_or_else(|| malformed("no issuer".into()))?;
    if issuer != kid {
        return Err(malformed(format!(
            "issuer `{issuer}` signed with the key of `{kid}`"
        )));
    }
    let seconds = |t: Option<Timestamp>, name: &str| match t {
        Some(Timestamp::WholeSeconds(s)) => Ok(s),
        _ => Err(malformed(format!("no `{name}` in whole seconds"))),
    };
    let issued_at = seconds(claims.issued_at, "iat")?;
    let expires_at = seconds(claims.expiration_time, "exp")?;
    if expires_at - issued_at > MAX_LIFETIME_SECS {
        return Err(CodeError::TooLong(expires_at - issued_at));
    }
    if issued_at > now + CLOCK_SKEW_SECS {
        return Err(CodeError::NotYetValid { issued_at, now });
    }
    if now > expires_at + CLOCK_SKEW_SECS {
        return Err(CodeError::Expired { expires_at, now });
    }
    let subject = claims
        .subject
        .ok_or_else(|| malformed("no subject".into()))?;
    let (kind, subject_id) = subject
        .split_once(':')
        .ok_or_else(|| malformed("its subject is not `kind:id`".into()))?;
    let subject_kind = match kind {
        "resident_id" => SubjectKind::ResidentId,
        "uscc" => SubjectKind::Uscc,
        other => return Err(malformed(format!("unknown subject kind `{other}`"))),
    };
    let nonce = claims
        .cwt_id
        .and_then(|n| <[u8; 16]>::try_from(n).ok())
        .ok_or_else(|| malformed("its nonce (`cti`) is not 16 bytes".into()))?;
    let mut scope = Scope::default();
    for (name, value) in claims.rest {
        let RegisteredLabelWithPrivate::PrivateUse(key) = name else {
            continue;
        };
        let text = |v: coset::cbor::Value| match v {
            coset::cbor::Value::Text(t) => Ok(t),
            _ => Err(malformed(format!("scope claim {key} is not text"))),
        };
        match key {
            CLAIM_REQUESTER => scope.requester = Some(text(value)?),
            CLAIM_PURPOSE => scope.purpose = Some(text(value)?),
            CLAIM_ITEM => scope.approval_item = Some(text(value)?),
            CLAIM_TYPES => match value {
                coset::cbor::Value::Array(items) => {
                    scope.record_types = items.into_iter().map(text).collect::<Result<_, _>>()?;
                }
                _ => return Err(malformed("its record types are not a list".into())),
            },
            // An unknown restriction cannot be honoured: refuse rather
            // than ignore it.
            other => return Err(malformed(format!("unknown scope claim {other}"))),
        }
    }
    Ok(SubjectCode {
        issuer,
        subject_kind,
        subject_id: subject_id.to_owned(),
        issued_at,
        expires_at,
        nonce,
        scope,
    })
}

/// The subject a code names, read WITHOUT verifying anything: for showing
/// or routing a code before the gateway checks it, never for trusting it.
pub fn peek_subject(token: &str) -> Option<(SubjectKind, String)> {
    let bytes = base45::decode(token.trim().strip_prefix(PREFIX)?)?;
    let signed = CoseSign1::from_slice(&bytes).ok()?;
    let claims = ClaimsSet::from_slice(signed.payload.as_deref()?).ok()?;
    let (kind, id) = claims
        .subject?
        .split_once(':')
        .map(|(k, i)| (k.to_owned(), i.to_owned()))?;
    let kind = match kind.as_str() {
        "resident_id" => SubjectKind::ResidentId,
        "uscc" => SubjectKind::Uscc,
        _ => return None,
    };
    Some((kind, id))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;
    const CITIZEN: &str = "110101199003077578";

    fn issuer(name: &str) -> Issuer {
        Issuer::from_pkcs8(name, &Issuer::generate_pkcs8().unwrap()).unwrap()
    }

    fn verifier_of(issuer: &Issuer) -> Verifier {
        let mut v = Verifier::new();
        v.trust(issuer.name(), &issuer.public_key_hex()).unwrap();
        v
    }

    fn scope() -> Scope {
        Scope {
            requester: Some("approval-hall-demo".into()),
            purpose: Some("GENERAL-APPROVAL".into()),
            approval_item: None,
            record_types: vec!["real_estate_title".into(), "marriage_registration".into()],
        }
    }

    #[test]
    fn a_code_round_trips_and_fits_a_small_qr_code() {
        let platform = issuer("province-identity");
        let token = platform
            .issue(SubjectKind::ResidentId, CITIZEN, 300, &scope(), NOW)
            .unwrap();
        assert!(token.starts_with(PREFIX));
        // A version-12 QR code at error correction M holds 535 alphanumeric
        // characters; a phone scans that from a screen at arm's length.
        assert!(token.len() <= 535, "{} characters", token.len());
        let code = verifier_of(&platform).verify(&token, NOW + 10).unwrap();
        assert_eq!(code.issuer, "province-identity");
        assert_eq!(
            (code.subject_kind, code.subject_id.as_str()),
            (SubjectKind::ResidentId, CITIZEN)
        );
        assert_eq!((code.issued_at, code.expires_at), (NOW, NOW + 300));
        assert_eq!(code.scope, scope());
        assert_eq!(code.nonce_hex().len(), 32);
    }

    #[test]
    fn every_code_has_its_own_nonce() {
        let platform = issuer("p");
        let v = verifier_of(&platform);
        let a = platform
            .issue(
                SubjectKind::Uscc,
                "91340100MA2N0Y0X3H",
                60,
                &Scope::default(),
                NOW,
            )
            .unwrap();
        let b = platform
            .issue(
                SubjectKind::Uscc,
                "91340100MA2N0Y0X3H",
                60,
                &Scope::default(),
                NOW,
            )
            .unwrap();
        assert_ne!(
            v.verify(&a, NOW).unwrap().nonce,
            v.verify(&b, NOW).unwrap().nonce
        );
    }

    #[test]
    fn expired_early_and_long_lived_codes_are_refused() {
        let platform = issuer("p");
        let v = verifier_of(&platform);
        let token = platform
            .issue(SubjectKind::ResidentId, CITIZEN, 60, &Scope::default(), NOW)
            .unwrap();
        assert!(v.verify(&token, NOW + 60 + CLOCK_SKEW_SECS).is_ok());
        assert!(matches!(
            v.verify(&token, NOW + 61 + CLOCK_SKEW_SECS),
            Err(CodeError::Expired { .. })
        ));
        assert!(matches!(
            v.verify(&token, NOW - CLOCK_SKEW_SECS - 1),
            Err(CodeError::NotYetValid { .. })
        ));
        assert_eq!(
            platform
                .issue(
                    SubjectKind::ResidentId,
                    CITIZEN,
                    301,
                    &Scope::default(),
                    NOW
                )
                .unwrap_err(),
            CodeError::TooLong(301)
        );
    }

    #[test]
    fn forged_altered_and_foreign_codes_are_refused() {
        let platform = issuer("province-identity");
        let v = verifier_of(&platform);
        let token = platform
            .issue(SubjectKind::ResidentId, CITIZEN, 60, &Scope::default(), NOW)
            .unwrap();
        // Another key under the trusted issuer's name: forged.
        let impostor = issuer("province-identity");
        let forged = impostor
            .issue(SubjectKind::ResidentId, CITIZEN, 60, &Scope::default(), NOW)
            .unwrap();
        assert_eq!(v.verify(&forged, NOW), Err(CodeError::Forged));
        // An issuer the gateway does not know.
        let other = issuer("elsewhere")
            .issue(SubjectKind::ResidentId, CITIZEN, 60, &Scope::default(), NOW)
            .unwrap();
        assert_eq!(
            v.verify(&other, NOW),
            Err(CodeError::UnknownIssuer("elsewhere".into()))
        );
        // One byte of the signed bytes changed.
        let mut bytes = base45::decode(&token[PREFIX.len()..]).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 1;
        let altered = format!("{PREFIX}{}", base45::encode(&bytes));
        assert!(matches!(
            v.verify(&altered, NOW),
            Err(CodeError::Forged | CodeError::Malformed(_))
        ));
    }

    #[test]
    fn malformed_input_is_named() {
        let v = verifier_of(&issuer("p"));
        for (token, why) in [
            ("110101199003077578", "XG1:"),
            ("XG1:abc", "base45"),
            ("XG1:BB8", "COSE_Sign1"),
        ] {
            match v.verify(token, NOW) {
                Err(CodeError::Malformed(m)) => assert!(m.contains(why), "{token}: {m}"),
                other => panic!("{token}: {other:?}"),
            }
        }
        let long = format!("XG1:{}", "A".repeat(MAX_TOKEN_CHARS));
        assert!(matches!(v.verify(&long, NOW), Err(CodeError::Malformed(_))));
    }

    #[test]
    fn scope_names_what_is_outside_it() {
        let s = scope();
        assert!(
            s.permits(
                "approval-hall-demo",
                "GENERAL-APPROVAL",
                None,
                ["real_estate_title"]
            )
            .is_ok()
        );
        let e = s
            .permits(
                "other-bureau",
                "GENERAL-APPROVAL",
                None,
                ["real_estate_title"],
            )
            .unwrap_err();
        assert!(e.contains("other-bureau"), "{e}");
        let e = s
            .permits(
                "approval-hall-demo",
                "GENERAL-APPROVAL",
                None,
                ["real_estate_title", "tax_registration"],
            )
            .unwrap_err();
        assert!(
            e.contains("tax_registration") && !e.contains("real_estate"),
            "{e}"
        );
        let e = s
            .permits(
                "approval-hall-demo",
                "PF-WITHDRAWAL",
                None,
                ["real_estate_title"],
            )
            .unwrap_err();
        assert!(e.contains("PF-WITHDRAWAL"), "{e}");
        assert!(Scope::default().permits("x", "y", Some("z"), ["t"]).is_ok());
    }

    #[test]
    fn the_subject_can_be_peeked_without_a_key() {
        let token = issuer("p")
            .issue(SubjectKind::ResidentId, CITIZEN, 60, &Scope::default(), NOW)
            .unwrap();
        assert_eq!(
            peek_subject(&token),
            Some((SubjectKind::ResidentId, CITIZEN.to_owned()))
        );
        assert_eq!(peek_subject("XG1:BB8"), None);
    }

    #[test]
    fn public_keys_must_be_32_bytes_of_hex() {
        let mut v = Verifier::new();
        assert!(v.trust("p", "abcd").is_err());
        assert!(v.trust("p", &"zz".repeat(32)).is_err());
        assert!(v.trust("p", &"ab".repeat(32)).is_ok());
    }
}
