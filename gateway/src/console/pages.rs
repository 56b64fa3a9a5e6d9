//! The console's routes: sign-in and sign-out, and one page per task, each
//! naming the roles it serves. A page calls the gateway's gRPC services in
//! process with the session's identity, so the services' own role checks
//! and audit events apply as they do to the CLI.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::Router;
use axum::extract::{Form, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt as _;
use minijinja::{Environment, Value, context};
use serde::Deserialize;
use tonic::Code;
use xgate_proto::v1::audit_server::Audit as _;
use xgate_proto::v1::evaluation_server::Evaluation as _;
use xgate_proto::v1::{
    AuditEntry, AuditQueryRequest, AuditVerifyRequest, CheckpointsRequest, DisposeObjectionRequest,
    Disposition, ListObjectionsRequest, Objection, ObjectionRef, ObjectionState, ScorecardsRequest,
    Subject, SubjectKind, SubjectReportRequest,
};
use xgate_tls::{Identity, SessionIdentity};

use super::Console;
use super::charts;
use super::session::{self, Session};

/// The session cookie. `__Host-`: the browser keeps it only when set
/// `Secure`, `Path=/` and without `Domain`, so no other host can plant it.
const COOKIE: &str = "__Host-xgate-session";

/// The most log entries a search shows; the page says when there are more.
const SEARCH_LIMIT: u64 = 500;

pub(super) fn templates() -> anyhow::Result<Environment<'static>> {
    let mut env = Environment::new();
    for (name, source) in [
        ("layout.html", include_str!("templates/layout.html")),
        ("message.html", include_str!("templates/message.html")),
        ("home.html", include_str!("templates/home.html")),
        ("audit.html", include_str!("templates/audit.html")),
        ("chain.html", include_str!("templates/chain.html")),
        ("subject.html", include_str!("templates/subject.html")),
        ("objections.html", include_str!("templates/objections.html")),
        ("scorecards.html", include_str!("templates/scorecards.html")),
    ] {
        env.add_template(name, source)?;
    }
    Ok(env)
}

pub(super) fn router(console: Arc<Console>) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/signin", get(sign_in))
        .route("/signout", post(sign_out))
        .route("/console.css", get(stylesheet))
        .route("/audit", get(audit_search))
        .route("/audit/chain", get(chain))
        .route("/audit/subject", get(subject_report))
        .route("/objections", get(objections))
        .route("/objections/{id}/acknowledge", post(acknowledge))
        .route("/objections/{id}/dispose", post(dispose))
        .route("/scorecards", get(scorecards))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(headers))
        .with_state(console)
}

/// Every response: how long the server took, no caching, no framing, no
/// referrer (a sign-in URL must not leak), no script or foreign content.
async fn headers(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let mut response = next.run(request).await;
    let took = started.elapsed().as_secs_f64() * 1000.0;
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("app;dur={took:.2}")) {
        h.insert("server-timing", v);
    }
    for (name, value) in [
        ("cache-control", "no-store"),
        ("referrer-policy", "no-referrer"),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        (
            "content-security-policy",
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// A rendered page, or a refusal rendered as one.
pub(super) struct Page {
    status: StatusCode,
    html: String,
    headers: Vec<(header::HeaderName, String)>,
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.html).into_response();
        let h = response.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.append(name, v);
            }
        }
        response
    }
}

type Result<T> = std::result::Result<T, Page>;

impl Console {
    fn render(&self, status: StatusCode, template: &str, ctx: Value) -> Page {
        let html = self
            .templates
            .get_template(template)
            .and_then(|t| t.render(ctx));
        match html {
            Ok(html) => Page {
                status,
                html,
                headers: Vec::new(),
            },
            Err(e) => {
                tracing::error!(template, error = %e, "console template failed");
                Page {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    html: format!(
                        "<!doctype html><title>xgate console</title><p>The page could not be \
                         rendered ({}).",
                        minijinja::HtmlEscape(&e.to_string())
                    ),
                    headers: Vec::new(),
                }
            }
        }
    }

    /// A page telling what went wrong; `me` when signed in, for the menu.
    fn message(
        &self,
        status: StatusCode,
        me: Option<&Session>,
        title: &str,
        text: &str,
        hint: &str,
    ) -> Page {
        self.render(
            status,
            "message.html",
            context! { me => me.map(me_of), title, text, hint },
        )
    }

    fn signed_out(&self, text: &str) -> Page {
        self.message(
            StatusCode::UNAUTHORIZED,
            None,
            "Not signed in",
            text,
            "Get a sign-in link with your certificate: xgate console login --cert ROLE.pem --key ROLE-key.pem",
        )
    }

    /// The session of the request's cookie; a sign-in page for none, a
    /// forged or an expired one.
    async fn session(&self, headers: &HeaderMap) -> Result<(String, Session)> {
        let Some(token) = cookie(headers) else {
            return Err(self.signed_out("This page needs a console session."));
        };
        match self
            .state
            .store
            .console_session(&token, SystemTime::now())
            .await
        {
            Ok(Some(session)) => Ok((token, session)),
            Ok(None) => Err(self.signed_out(
                "Your session has expired or is not one this console started. Sign in again.",
            )),
            Err(e) => Err(self.failed(None, &crate::error::status(e))),
        }
    }

    /// The session, if its role is one of `roles` (URI kinds); a refusal
    /// naming who may see the page otherwise.
    async fn session_of(
        &self,
        headers: &HeaderMap,
        roles: &[&str],
        page: &str,
    ) -> Result<(String, Session)> {
        let (token, session) = self.session(headers).await?;
        if roles.contains(&session.identity.kind()) {
            return Ok((token, session));
        }
        Err(self.message(
            StatusCode::FORBIDDEN,
            Some(&session),
            "Not for your role",
            &format!(
                "{page} is for {}; you are signed in as {}.",
                roles.join(" and "),
                session.identity
            ),
            "Sign in with a certificate of that role.",
        ))
    }

    /// A gRPC refusal or failure as a page.
    fn failed(&self, me: Option<&Session>, status: &tonic::Status) -> Page {
        let code = match status.code() {
            Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::PermissionDenied => StatusCode::FORBIDDEN,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::FailedPrecondition | Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
            Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            Code::Unavailable | Code::DeadlineExceeded => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        // The message lists a BadRequest's violations too.
        self.message(code, me, "Refused", status.message(), "")
    }

    /// Checks a form's CSRF token against the session's.
    fn csrf(&self, session: &Session, presented: &str) -> Result<()> {
        if !presented.is_empty()
            && session::token_hash(presented) == session::token_hash(&session.csrf)
        {
            return Ok(());
        }
        Err(self.message(
            StatusCode::FORBIDDEN,
            Some(session),
            "Form refused",
            "The form did not carry this session's token (CSRF check).",
            "Reload the page and submit the form again.",
        ))
    }
}

/// A request to a gRPC service of this gateway, acting as the session.
fn acting<T>(session: &Session, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .extensions_mut()
        .insert(SessionIdentity(session.identity.clone()));
    request
}

fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

fn me_of(session: &Session) -> Value {
    context! {
        uri => session.identity.uri(),
        kind => session.identity.kind(),
        id => session.identity.id(),
        csrf => session.csrf.clone(),
    }
}

fn either(r: Result<Page>) -> Page {
    r.unwrap_or_else(|page| page)
}

async fn not_found(State(c): State<Arc<Console>>) -> Page {
    c.message(
        StatusCode::NOT_FOUND,
        None,
        "Not found",
        "There is no such page in the console.",
        "",
    )
}

async fn stylesheet() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("templates/console.css"),
    )
}

async fn home(State(c): State<Arc<Console>>, headers: HeaderMap) -> Page {
    either(
        async {
            let (_, me) = c.session(&headers).await?;
            Ok(c.render(
                StatusCode::OK,
                "home.html",
                context! { me => me_of(&me), expires_at => time_of(me.expires_at) },
            ))
        }
        .await,
    )
}

#[derive(Deserialize)]
struct SignInQuery {
    #[serde(default)]
    token: String,
}

/// Spends the one-time token and starts a session bound to its identity.
async fn sign_in(State(c): State<Arc<Console>>, Query(q): Query<SignInQuery>) -> Page {
    either(
        async {
            let now = SystemTime::now();
            let identity = c
                .state
                .store
                .console_redeem(&q.token, now)
                .await
                .map_err(|e| c.failed(None, &crate::error::status(e)))?
                .ok_or_else(|| {
                    c.signed_out("This sign-in link has expired or has been used already: a link works once, for a minute.")
                })?;
            let token = session::token().map_err(|e| c.failed(None, &crate::error::status(e)))?;
            let session = Session {
                identity,
                csrf: session::token().map_err(|e| c.failed(None, &crate::error::status(e)))?,
                expires_at: now + c.settings.session_ttl.get(),
            };
            // Who opened the console is itself evidence; no entry, no session.
            crate::audit::subject_event(
                &c.state.auditor,
                crate::audit::SubjectEvent {
                    event: "console_signed_in",
                    actor: session.identity.uri(),
                    subject_hmac: "",
                    purpose: "",
                    detail: serde_json::json!({
                        "expires_at": time_of(session.expires_at),
                    }),
                },
            )
            .await
            .map_err(|e| c.failed(None, &e))?;
            c.state
                .store
                .console_start(&token, &session, now)
                .await
                .map_err(|e| c.failed(None, &crate::error::status(e)))?;
            let max_age = c.settings.session_ttl.get().as_secs();
            let mut page = Page {
                status: StatusCode::SEE_OTHER,
                html: String::new(),
                headers: vec![(header::LOCATION, "/".to_owned())],
            };
            page.headers.push((
                header::SET_COOKIE,
                format!("{COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={max_age}"),
            ));
            Ok(page)
        }
        .await,
    )
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn sign_out(
    State(c): State<Arc<Console>>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Page {
    either(
        async {
            let (token, me) = c.session(&headers).await?;
            c.csrf(&me, &form.csrf)?;
            c.state
                .store
                .console_end(&token)
                .await
                .map_err(|e| c.failed(Some(&me), &crate::error::status(e)))?;
            let mut page = c.message(
                StatusCode::OK,
                None,
                "Signed out",
                "Your session has ended.",
                "",
            );
            page.headers.push((
                header::SET_COOKIE,
                format!("{COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0"),
            ));
            Ok(page)
        }
        .await,
    )
}

/// The log search form; every field optional.
#[derive(Deserialize, Default)]
struct SearchForm {
    #[serde(default)]
    subject_kind: String,
    #[serde(default)]
    subject_id: String,
    #[serde(default)]
    requester: String,
    #[serde(default)]
    record_type: String,
    #[serde(default)]
    department: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
}

impl SearchForm {
    fn is_empty(&self) -> bool {
        [
            &self.subject_id,
            &self.requester,
            &self.record_type,
            &self.department,
            &self.decision,
            &self.since,
            &self.until,
        ]
        .iter()
        .all(|v| v.trim().is_empty())
    }
}

/// The subject of a form (kind `resident_id` or `uscc`), checked like a
/// fetch's: a typo is refused, not searched for in vain.
fn subject_of(kind: &str, id: &str) -> std::result::Result<Option<Subject>, String> {
    let id = id.trim();
    if id.is_empty() {
        return Ok(None);
    }
    let kind = match kind {
        "uscc" => SubjectKind::Uscc,
        _ => SubjectKind::ResidentId,
    };
    let subject = Subject {
        kind: kind as i32,
        id: id.to_owned(),
    };
    crate::validate::subject(Some(&subject)).map_err(|status| status.message().to_owned())?;
    Ok(Some(subject))
}

/// A `YYYY-MM-DD` date (UTC midnight) of a form.
fn date_of(
    field: &str,
    value: &str,
) -> std::result::Result<Option<prost_types::Timestamp>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(value, &format)
        .map_err(|_| format!("{field}: `{value}` is not a date (YYYY-MM-DD)"))?;
    Ok(Some(prost_types::Timestamp {
        seconds: date.midnight().assume_utc().unix_timestamp(),
        nanos: 0,
    }))
}

async fn audit_search(
    State(c): State<Arc<Console>>,
    headers: HeaderMap,
    Query(form): Query<SearchForm>,
) -> Page {
    either(
        async {
            let (_, me) = c
                .session_of(&headers, &["auditor"], "The log search")
                .await?;
            let bad = |text: String| {
                c.message(
                    StatusCode::BAD_REQUEST,
                    Some(&me),
                    "Search refused",
                    &text,
                    "",
                )
            };
            let mut entries = Vec::new();
            let searched = !form.is_empty();
            if searched {
                let query = AuditQueryRequest {
                    subject: subject_of(&form.subject_kind, &form.subject_id).map_err(bad)?,
                    requester: form.requester.trim().to_owned(),
                    record_type: form.record_type.trim().to_owned(),
                    department: form.department.trim().to_owned(),
                    decision: form.decision.trim().to_owned(),
                    since: date_of("since", &form.since).map_err(bad)?,
                    until: date_of("until", &form.until).map_err(bad)?,
                    max_entries: SEARCH_LIMIT + 1,
                    ..AuditQueryRequest::default()
                };
                let mut pages = c
                    .audit
                    .query(acting(&me, query))
                    .await
                    .map_err(|e| c.failed(Some(&me), &e))?
                    .into_inner();
                while let Some(page) = pages.next().await {
                    let page = page.map_err(|e| c.failed(Some(&me), &e))?;
                    entries.extend(page.entries);
                }
            }
            let more = entries.len() as u64 > SEARCH_LIMIT;
            entries.truncate(usize::try_from(SEARCH_LIMIT).unwrap_or(usize::MAX));
            Ok(c.render(
                StatusCode::OK,
                "audit.html",
                context! {
                    me => me_of(&me),
                    form => context! {
                        subject_kind => form.subject_kind, subject_id => form.subject_id,
                        requester => form.requester, record_type => form.record_type,
                        department => form.department, decision => form.decision,
                        since => form.since, until => form.until,
                    },
                    searched,
                    entries => entries.iter().map(entry_row).collect::<Vec<_>>(),
                    more,
                    limit => SEARCH_LIMIT,
                },
            ))
        }
        .await,
    )
}

fn entry_row(e: &AuditEntry) -> Value {
    context! {
        time => e.time.as_ref().map(timestamp_text).unwrap_or_default(),
        kind => e.kind,
        event => e.event,
        requester => e.requester,
        purpose => e.purpose,
        approval_item => e.approval_item,
        case_id => e.case_id,
        record_type => e.record_type,
        view => e.view,
        department => e.department,
        decision => e.decision,
        status => e.status,
        policies => e.policy_ids.join(", "),
        chain => e.chain,
        index => e.index,
        position => e.position,
        request_id => e.request_id,
    }
}

async fn chain(State(c): State<Arc<Console>>, headers: HeaderMap) -> Page {
    either(
        async {
            let (_, me) = c
                .session_of(&headers, &["auditor"], "The chain status")
                .await?;
            let verified = c
                .audit
                .verify(acting(&me, AuditVerifyRequest {}))
                .await
                .map_err(|e| c.failed(Some(&me), &e))?
                .into_inner();
            let checkpoints = c
                .audit
                .checkpoints(acting(&me, CheckpointsRequest {}))
                .await
                .map_err(|e| c.failed(Some(&me), &e))?
                .into_inner()
                .checkpoints;
            Ok(c.render(
                StatusCode::OK,
                "chain.html",
                context! {
                    me => me_of(&me),
                    ok => verified.ok,
                    entries => verified.entries,
                    checkpoints_total => verified.checkpoints,
                    checkpoints_verified => verified.checkpoints_verified,
                    first_bad_chain => verified.first_bad_chain,
                    first_bad_seq => verified.first_bad_seq,
                    reason => verified.reason,
                    public_keys => verified.public_keys,
                    chains => verified.chains,
                    checkpoints => checkpoints.iter().map(|cp| context! {
                        chain => cp.chain, note => cp.note,
                    }).collect::<Vec<_>>(),
                },
            ))
        }
        .await,
    )
}

#[derive(Deserialize)]
struct SubjectForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    id: String,
}

async fn subject_report(
    State(c): State<Arc<Console>>,
    headers: HeaderMap,
    Query(form): Query<SubjectForm>,
) -> Page {
    either(
        async {
            let (_, me) = c
                .session_of(&headers, &["auditor"], "The subject report")
                .await?;
            let subject = subject_of(&form.kind, &form.id).map_err(|text| {
                c.message(
                    StatusCode::BAD_REQUEST,
                    Some(&me),
                    "Report refused",
                    &text,
                    "",
                )
            })?;
            let report = match &subject {
                None => None,
                Some(subject) => Some(
                    c.audit
                        .subject_report(acting(
                            &me,
                            SubjectReportRequest {
                                subject: Some(subject.clone()),
                                ..SubjectReportRequest::default()
                            },
                        ))
                        .await
                        .map_err(|e| c.failed(Some(&me), &e))?
                        .into_inner(),
                ),
            };
            Ok(c.render(
                StatusCode::OK,
                "subject.html",
                context! {
                    me => me_of(&me),
                    kind => form.kind,
                    id => form.id,
                    report => report.map(|r| context! {
                        subject_hmac => r.subject_hmac,
                        released => r.released,
                        denied => r.denied,
                        accesses => r.accesses.iter().map(entry_row).collect::<Vec<_>>(),
                        events => r.events.iter().map(entry_row).collect::<Vec<_>>(),
                    }),
                },
            ))
        }
        .await,
    )
}

async fn objections(State(c): State<Arc<Console>>, headers: HeaderMap) -> Page {
    either(
        async {
            let (_, me) = c
                .session_of(
                    &headers,
                    &["department", "requester", "auditor", "admin"],
                    "The objections page",
                )
                .await?;
            let mut list = c
                .evaluation
                .list(acting(&me, ListObjectionsRequest::default()))
                .await
                .map_err(|e| c.failed(Some(&me), &e))?
                .into_inner()
                .objections;
            // Open first (oldest due first), then the rest, newest first.
            list.sort_by_key(|o| {
                let open = matches!(
                    o.state(),
                    ObjectionState::Reported | ObjectionState::Circulated
                );
                let due = o.due_at.as_ref().map_or(0, |t| t.seconds);
                let filed = o.filed_at.as_ref().map_or(0, |t| t.seconds);
                (!open, if open { due } else { -filed })
            });
            let open = list
                .iter()
                .filter(|o| {
                    matches!(
                        o.state(),
                        ObjectionState::Reported | ObjectionState::Circulated
                    )
                })
                .count();
            let overdue = list.iter().filter(|o| o.overdue).count();
            Ok(c.render(
                StatusCode::OK,
                "objections.html",
                context! {
                    me => me_of(&me),
                    works_queue => matches!(me.identity, Identity::Department(_)),
                    objections => list.iter().map(objection_row).collect::<Vec<_>>(),
                    open,
                    overdue,
                },
            ))
        }
        .await,
    )
}

fn objection_row(o: &Objection) -> Value {
    let state = o.state();
    context! {
        id => o.id,
        state => state_name(state),
        can_acknowledge => state == ObjectionState::Reported,
        can_dispose => matches!(state, ObjectionState::Reported | ObjectionState::Circulated),
        filed_by => o.filed_by,
        request_id => o.request_id,
        subject => o.subject.as_ref().map(|s| s.id.clone()).unwrap_or_default(),
        record_type => o.record_type,
        department => o.department,
        field_path => o.field_path,
        believed_value => o.believed_value.as_ref().map(value_text).unwrap_or_default(),
        evidence_ref => o.evidence_ref,
        disposition => match o.disposition() {
            Disposition::Corrected => "corrected",
            Disposition::Rejected => "rejected",
            Disposition::Unspecified => "",
        },
        disposal_reason => o.disposal_reason,
        filed_at => o.filed_at.as_ref().map(timestamp_text).unwrap_or_default(),
        due_at => o.due_at.as_ref().map(timestamp_text).unwrap_or_default(),
        overdue => o.overdue,
    }
}

fn state_name(s: ObjectionState) -> &'static str {
    match s {
        ObjectionState::Reported => "reported",
        ObjectionState::Circulated => "circulated",
        ObjectionState::Disposed => "disposed",
        ObjectionState::FedBack => "fed back",
        ObjectionState::Closed => "closed",
        ObjectionState::Unspecified => "unknown",
    }
}

/// A `google.protobuf.Value` as the JSON it stands for.
fn value_text(v: &prost_types::Value) -> String {
    use prost_types::value::Kind;
    match &v.kind {
        Some(Kind::StringValue(s)) => s.clone(),
        Some(Kind::NumberValue(n)) => n.to_string(),
        Some(Kind::BoolValue(b)) => b.to_string(),
        Some(Kind::NullValue(_)) | None => "null".into(),
        Some(Kind::ListValue(l)) => format!(
            "[{}]",
            l.values
                .iter()
                .map(value_text)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Some(Kind::StructValue(s)) => format!(
            "{{{}}}",
            s.fields
                .iter()
                .map(|(k, v)| format!("{k}: {}", value_text(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

async fn acknowledge(
    State(c): State<Arc<Console>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Page {
    either(
        async {
            let (_, me) = c
                .session_of(&headers, &["department"], "Acknowledging an objection")
                .await?;
            c.csrf(&me, &form.csrf)?;
            c.evaluation
                .acknowledge(acting(&me, ObjectionRef { id }))
                .await
                .map_err(|e| c.failed(Some(&me), &e))?;
            Ok(see_other("/objections"))
        }
        .await,
    )
}

#[derive(Deserialize)]
struct DisposeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    disposition: String,
    #[serde(default)]
    reason: String,
}

async fn dispose(
    State(c): State<Arc<Console>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<DisposeForm>,
) -> Page {
    either(
        async {
            let (_, me) = c
                .session_of(&headers, &["department"], "Disposing of an objection")
                .await?;
            c.csrf(&me, &form.csrf)?;
            let disposition = match form.disposition.as_str() {
                "corrected" => Disposition::Corrected,
                "rejected" => Disposition::Rejected,
                _ => Disposition::Unspecified,
            };
            c.evaluation
                .dispose(acting(
                    &me,
                    DisposeObjectionRequest {
                        id,
                        disposition: disposition as i32,
                        reason: form.reason,
                    },
                ))
                .await
                .map_err(|e| c.failed(Some(&me), &e))?;
            Ok(see_other("/objections"))
        }
        .await,
    )
}

fn see_other(location: &str) -> Page {
    Page {
        status: StatusCode::SEE_OTHER,
        html: String::new(),
        headers: vec![(header::LOCATION, location.to_owned())],
    }
}

#[derive(Deserialize)]
struct ScorecardForm {
    #[serde(default)]
    days: Option<u32>,
    #[serde(default)]
    department: String,
}

async fn scorecards(
    State(c): State<Arc<Console>>,
    headers: HeaderMap,
    Query(form): Query<ScorecardForm>,
) -> Page {
    either(
        async {
            let (_, me) = c
                .session_of(
                    &headers,
                    &["department", "auditor", "admin"],
                    "The scorecards",
                )
                .await?;
            let response = c
                .evaluation
                .scorecards(acting(
                    &me,
                    ScorecardsRequest {
                        window_days: form.days.unwrap_or(7),
                        department: form.department.trim().to_owned(),
                    },
                ))
                .await
                .map_err(|e| c.failed(Some(&me), &e))?
                .into_inner();
            let departments = &response.departments;
            // One department: its record types are the bars; several: the
            // departments are.
            let bars: Vec<charts::Bar> = if departments.len() == 1 {
                departments[0]
                    .record_types
                    .iter()
                    .filter_map(|t| t.card.as_ref().map(|card| charts::Bar::of(&t.record_type, card)))
                    .collect()
            } else {
                departments
                    .iter()
                    .filter_map(|d| d.total.as_ref().map(|card| charts::Bar::of(&d.department, card)))
                    .collect()
            };
            let mut types: BTreeMap<String, Vec<Value>> = BTreeMap::new();
            for d in departments {
                types.insert(
                    d.department.clone(),
                    d.record_types
                        .iter()
                        .map(|t| card_row(&t.record_type, t.card.as_ref()))
                        .collect(),
                );
            }
            Ok(c.render(
                StatusCode::OK,
                "scorecards.html",
                context! {
                    me => me_of(&me),
                    days => response.window_days,
                    department => form.department,
                    departments => departments.iter().map(|d| card_row(&d.department, d.total.as_ref())).collect::<Vec<_>>(),
                    types,
                    availability_chart => Value::from_safe_string(charts::availability(&bars)),
                    latency_chart => Value::from_safe_string(charts::latency(&bars)),
                },
            ))
        }
        .await,
    )
}

fn card_row(name: &str, card: Option<&xgate_proto::v1::Scorecard>) -> Value {
    let card = card.cloned().unwrap_or_default();
    context! {
        name,
        called => card.called,
        answered => card.answered,
        availability => format!("{:.1} %", card.availability * 100.0),
        p50 => format!("{:.1}", card.p50_ms),
        p99 => format!("{:.1}", card.p99_ms),
        invalid => format!("{:.2} %", card.invalid_rate * 100.0),
        not_found => format!("{:.2} %", card.not_found_rate * 100.0),
        good => card.ratings_good,
        bad => card.ratings_bad,
        open => card.objections_open,
        overdue => card.objections_overdue,
        dispose_hours => format!("{:.1}", card.median_dispose_hours),
    }
}

fn time_of(t: SystemTime) -> String {
    timestamp_text(&prost_types::Timestamp::from(t))
}

/// `2026-12-07 03:12:45 UTC`.
fn timestamp_text(t: &prost_types::Timestamp) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp(t.seconds)
        .ok()
        .and_then(|d| d.format(&format).ok())
        .unwrap_or_default()
}
