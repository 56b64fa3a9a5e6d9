//! Subject codes in a fetch (see `xgate_code`): a fetch may carry the code
//! the subject's app showed instead of the raw subject. [`open`] verifies
//! the code before validation and puts its subject in the request;
//! [`accept`] checks the validated fetch against the code's scope and then
//! spends its nonce in the gateway's store, so the code works once — on
//! any replica sharing the store. Every refusal is written to the audit log
//! before it is answered ([`audit_refusal`]).

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};
use xgate_code::{CLOCK_SKEW_SECS, CodeError, SubjectCode, Verifier};
use xgate_proto::v1::{FetchRequest, Subject};

use crate::store::Store;
use crate::validate::ValidFetch;

/// The `google.rpc.ErrorInfo` domain of code refusals.
pub const DOMAIN: &str = "xgate";

/// Verifies the request's code, if any, and makes its subject the
/// request's. A request naming a subject *and* a code must name the code's.
pub fn open(
    verifier: &Verifier,
    request: &mut FetchRequest,
    now: i64,
) -> Result<Option<SubjectCode>, Status> {
    if request.subject_code.is_empty() {
        return Ok(None);
    }
    let code = verifier
        .verify(&request.subject_code, now)
        .map_err(refused)?;
    let from_code = Subject {
        kind: xgate_proto::kind::to_proto(code.subject_kind) as i32,
        id: code.subject_id.clone(),
    };
    match &request.subject {
        Some(subject) if *subject != from_code => {
            let why = "names another subject than `subject_code`; send one of them";
            let mut details = ErrorDetails::with_bad_request_violation("subject", why);
            details.set_error_info("CODE_OTHER_SUBJECT", DOMAIN, []);
            return Err(Status::with_error_details(
                Code::InvalidArgument,
                format!("subject: {why}"),
                details,
            ));
        }
        _ => request.subject = Some(from_code),
    }
    Ok(Some(code))
}

/// Checks the validated fetch against the code's scope, then records the
/// code's nonce; a code seen before is a replay.
pub async fn accept(
    store: &Store,
    code: &SubjectCode,
    requester: &str,
    fetch: &ValidFetch,
    now: i64,
) -> Result<(), Status> {
    code.scope
        .permits(
            requester,
            &fetch.purpose,
            fetch.item.as_deref(),
            fetch.wanted.iter().map(|w| w.record_type.as_str()),
        )
        .map_err(|why| denied("CODE_OUT_OF_SCOPE", &why, code))?;
    spend(store, code, now).await
}

/// What checks the subject's presence outside a fetch: the trusted
/// issuers and the store that spends nonces.
#[derive(Clone)]
pub struct Presence {
    pub verifier: Verifier,
    pub store: Store,
}

impl Presence {
    /// [`present`] with this verifier and store.
    pub async fn check(&self, token: &str, requester: Option<&str>) -> Result<SubjectCode, Status> {
        present(&self.verifier, &self.store, token, requester).await
    }
}

/// The subject's presence outside a fetch (consents, the subject's own
/// report): `token` verified, within the scope of `requester` when a
/// requester calls, and spent. Refusals as for a fetch's code.
pub async fn present(
    verifier: &Verifier,
    store: &Store,
    token: &str,
    requester: Option<&str>,
) -> Result<SubjectCode, Status> {
    if token.is_empty() {
        return Err(Status::with_error_details(
            Code::InvalidArgument,
            "subject_code: a fresh subject code of the subject is required",
            ErrorDetails::with_bad_request_violation(
                "subject_code",
                "a fresh subject code of the subject is required",
            ),
        ));
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let code = verifier.verify(token, now).map_err(refused)?;
    if let (Some(scoped), Some(requester)) = (&code.scope.requester, requester)
        && scoped != requester
    {
        return Err(denied(
            "CODE_OUT_OF_SCOPE",
            &format!("the code is for requester `{scoped}`, not `{requester}`"),
            &code,
        ));
    }
    spend(store, &code, now).await?;
    Ok(code)
}

/// Records the code's nonce; a code seen before is a replay.
async fn spend(store: &Store, code: &SubjectCode, now: i64) -> Result<(), Status> {
    let fresh = store
        .use_code_nonce(
            &code.nonce_hex(),
            &code.issuer,
            code.expires_at + CLOCK_SKEW_SECS,
            now - CLOCK_SKEW_SECS,
        )
        .await
        .map_err(crate::error::status)?;
    if fresh {
        Ok(())
    } else {
        Err(denied(
            "CODE_REPLAYED",
            "the subject code was used before; a code is good for one use (ask for a new one)",
            code,
        ))
    }
}

/// Records a refused code before the refusal is answered. A code refused
/// after its signature verified (out of scope, replayed) names its subject:
/// the refusal is an access entry under that subject, without decisions, so
/// the subject's report shows that someone presented their code again. Any
/// other refusal is an admin event naming the requester and the reason. A
/// failure to log is logged and the refusal stands.
pub async fn audit_refusal(
    auditor: &xgate_audit::AuditLog,
    requester: &str,
    verified: Option<(&SubjectCode, &ValidFetch)>,
    status: &Status,
) {
    let reason = status
        .get_details_error_info()
        .map_or_else(|| "CODE_REFUSED".to_owned(), |info| info.reason);
    let entry = match verified {
        Some((code, fetch)) => {
            let mut e = xgate_audit::NewEntry::access();
            e.requester = requester.to_owned();
            e.purpose.clone_from(&fetch.purpose);
            e.case_id.clone_from(&fetch.case_id);
            e.operator_id.clone_from(&fetch.operator_id);
            e.approval_item = fetch.item.clone().unwrap_or_default();
            e.subject_hmac = auditor.subject_hmac(code.subject_kind.as_str(), &code.subject_id);
            e.detail = serde_json::json!({"subject_code": {
                "issuer": code.issuer,
                "nonce": code.nonce_hex(),
                "refused": reason,
            }})
            .to_string();
            e
        }
        None => {
            let mut e = xgate_audit::NewEntry::admin(
                "subject_code_refused",
                serde_json::json!({"reason": reason, "message": status.message()}),
            );
            e.requester = requester.to_owned();
            e
        }
    };
    if let Err(e) = auditor.append(vec![entry]).await {
        tracing::error!(error = %e, reason, "subject code refusal not logged");
    }
}

/// PERMISSION_DENIED with an ErrorInfo naming `reason` and the issuer.
fn denied(reason: &str, why: &str, code: &SubjectCode) -> Status {
    let details =
        ErrorDetails::with_error_info(reason, DOMAIN, [("issuer".to_owned(), code.issuer.clone())]);
    Status::with_error_details(Code::PermissionDenied, why, details)
}

/// A code refused on its own: malformed is INVALID_ARGUMENT naming the
/// field; the rest PERMISSION_DENIED with the reason a client can branch on.
fn refused(e: CodeError) -> Status {
    let reason = e.reason();
    let (code, details) = match &e {
        CodeError::Malformed(_) => {
            let mut details =
                ErrorDetails::with_bad_request_violation("subject_code", e.to_string());
            details.set_error_info(reason, DOMAIN, []);
            (Code::InvalidArgument, details)
        }
        _ => (
            Code::PermissionDenied,
            ErrorDetails::with_error_info(reason, DOMAIN, []),
        ),
    };
    Status::with_error_details(code, e.to_string(), details)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use xgate_catalog::SubjectKind;
    use xgate_code::{Issuer, Scope};

    const CITIZEN: &str = "110101199003077578";

    fn issued(now: i64) -> (Verifier, String) {
        let issuer = Issuer::from_pkcs8("platform", &Issuer::generate_pkcs8().unwrap()).unwrap();
        let mut v = Verifier::new();
        v.trust("platform", &issuer.public_key_hex()).unwrap();
        let token = issuer
            .issue(
                SubjectKind::ResidentId,
                CITIZEN,
                120,
                &Scope::default(),
                now,
            )
            .unwrap();
        (v, token)
    }

    #[test]
    fn the_code_supplies_the_subject() {
        let (v, token) = issued(1_000);
        let mut request = FetchRequest {
            subject_code: token,
            ..FetchRequest::default()
        };
        let code = open(&v, &mut request, 1_010).unwrap().unwrap();
        assert_eq!(code.subject_id, CITIZEN);
        assert_eq!(request.subject.unwrap().id, CITIZEN);
    }

    #[test]
    fn a_subject_other_than_the_codes_is_refused() {
        let (v, token) = issued(1_000);
        let mut request = FetchRequest {
            subject_code: token,
            subject: Some(Subject {
                kind: xgate_proto::v1::SubjectKind::ResidentId as i32,
                id: "11010119900307803X".into(),
            }),
            ..FetchRequest::default()
        };
        let status = open(&v, &mut request, 1_010).unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
    }

    #[test]
    fn refusals_carry_their_reason() {
        let (v, token) = issued(1_000);
        let mut request = FetchRequest {
            subject_code: token,
            ..FetchRequest::default()
        };
        let status = open(&v, &mut request, 5_000).unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied);
        let info = status.get_details_error_info().expect("error info");
        assert_eq!(info.reason, "CODE_EXPIRED");
        let mut garbage = FetchRequest {
            subject_code: "XG1:???".into(),
            ..FetchRequest::default()
        };
        let status = open(&v, &mut garbage, 1_000).unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            xgate_proto::status::violations(&status)[0].field,
            "subject_code"
        );
    }
}
