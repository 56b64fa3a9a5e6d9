//! The demo's evaluation loop: the hall rates an answer and objects to a
//! field of it; public security, with its department certificate,
//! acknowledges and disposes of the objection; the hall reads the outcome
//! (its feedback) and closes it. A second objection is left in public
//! security's queue for the web console.

use std::time::Duration;

use anyhow::Context as _;
use xgate_catalog::SubjectKind;
use xgate_proto::v1::evaluation_client::EvaluationClient;
use xgate_proto::v1::exchange_client::ExchangeClient;
use xgate_proto::v1::{
    DisposeObjectionRequest, Disposition, FetchRequest, FileObjectionRequest,
    ListObjectionsRequest, Objection, ObjectionRef, RateRequest, Verdict,
};
use xgate_tls::{Identity, devpki};

use super::{DEMO_PURPOSE, DEMO_REQUESTER, subject_request};

/// The type the demo rates and objects to, and its owner.
const RATED: &str = "driving_licence";
const OWNER: &str = "public-security";
/// The field objected to, and the value the hall believes correct.
const FIELD: &str = "penalty_points";
/// The field of the objection left open for the console.
const OPEN_FIELD: &str = "licence_class";

/// What the loop went through.
pub(super) struct Evaluated {
    pub rating: String,
    pub objection: String,
    /// The objection's states in order, as each step returned them.
    pub states: Vec<String>,
    pub outcome: String,
    /// The objection left reported, for the department to work in the console.
    pub open: String,
}

impl Evaluated {
    pub(super) fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "requester": DEMO_REQUESTER,
            "record_type": RATED,
            "department": OWNER,
            "rating": self.rating,
            "objection": self.objection,
            "field_path": FIELD,
            "states": self.states,
            "outcome": self.outcome,
            "open_objection": {"id": self.open, "field_path": OPEN_FIELD, "department": OWNER},
        })
    }

    pub(super) fn print(&self) -> std::io::Result<()> {
        crate::outln!(
            "Evaluation: the hall rates the {RATED} it received good, and objects to its {FIELD} (objection {});",
            self.objection
        )?;
        crate::outln!(
            "{OWNER} works its queue with its department certificate: {}",
            self.states.join(" -> ")
        )?;
        crate::outln!("The hall reads the outcome: {}", self.outcome)?;
        crate::outln!(
            "A second objection, to the {RATED}'s {OPEN_FIELD} ({}), waits in {OWNER}'s queue: dispose of it in the web console.",
            self.open
        )
    }
}

pub(super) async fn run(
    url: &str,
    pki: &devpki::DevPki,
    citizen: &str,
) -> anyhow::Result<Evaluated> {
    let hall = pki.files(&Identity::Requester(DEMO_REQUESTER.into()));
    let owner = pki.files(&Identity::Department(OWNER.into()));
    let channel = super::super::client::connect(url, &hall).await?;
    let mut request = tonic::Request::new(FetchRequest {
        record_types: vec![RATED.into()],
        purpose: DEMO_PURPOSE.into(),
        ..subject_request(SubjectKind::ResidentId, citizen)
    });
    request.set_timeout(Duration::from_secs(10));
    let answer = ExchangeClient::new(channel.clone())
        .fetch(request)
        .await
        .map_err(super::super::fetch::explain)?
        .into_inner();
    let receipt = answer.receipt.context("the answer carries no receipt")?;
    let licence = answer
        .results
        .first()
        .and_then(|r| r.records.first())
        .context("the licence did not come back")?;
    let released = licence
        .fields
        .get(FIELD)
        .map(xgate_proto::json::from_value)
        .context("the licence came back without penalty points")?;
    let class = licence
        .fields
        .get(OPEN_FIELD)
        .map(xgate_proto::json::from_value);
    let mut filer = EvaluationClient::new(channel);
    let rating = filer
        .rate(RateRequest {
            receipt: Some(receipt.clone()),
            record_type: RATED.into(),
            verdict: Verdict::Good as i32,
            ..RateRequest::default()
        })
        .await?
        .into_inner();
    // The applicant says an appeal struck the points off.
    let believed = if released == serde_json::json!(0) {
        2
    } else {
        0
    };
    let filed = filer
        .file(FileObjectionRequest {
            receipt: Some(receipt.clone()),
            subject: subject_request(SubjectKind::ResidentId, citizen).subject,
            record_type: RATED.into(),
            field_path: FIELD.into(),
            believed_value: Some(xgate_proto::json::to_value(believed.into())),
            evidence_ref: "appeal decision (2026)皖亳公交复字第118号".into(),
            ..FileObjectionRequest::default()
        })
        .await?
        .into_inner();
    // The applicant says the class was upgraded last month.
    let upgraded = if class == Some(serde_json::json!("B1")) {
        "A1"
    } else {
        "B1"
    };
    let open = filer
        .file(FileObjectionRequest {
            receipt: Some(receipt.clone()),
            subject: subject_request(SubjectKind::ResidentId, citizen).subject,
            record_type: RATED.into(),
            field_path: OPEN_FIELD.into(),
            believed_value: Some(xgate_proto::json::to_value(upgraded.into())),
            evidence_ref: "driving test result sheet 2026-11, Bozhou DMV".into(),
            ..FileObjectionRequest::default()
        })
        .await?
        .into_inner();
    let mut department = EvaluationClient::new(super::super::client::connect(url, &owner).await?);
    let acked = department
        .acknowledge(ObjectionRef {
            id: filed.id.clone(),
        })
        .await?
        .into_inner();
    let disposed = department
        .dispose(DisposeObjectionRequest {
            id: filed.id.clone(),
            disposition: Disposition::Rejected as i32,
            reason: format!(
                "the record stands: the appeal was dismissed; {FIELD} = {released} as registered"
            ),
        })
        .await?
        .into_inner();
    let read = filer
        .list(ListObjectionsRequest {
            id: filed.id.clone(),
            ..ListObjectionsRequest::default()
        })
        .await?
        .into_inner()
        .objections
        .into_iter()
        .next()
        .context("the filer cannot read its objection")?;
    let closed = filer
        .close(ObjectionRef {
            id: filed.id.clone(),
        })
        .await?
        .into_inner();
    let states = [&filed, &acked, &disposed, &read, &closed]
        .iter()
        .map(|o: &&Objection| super::super::evaluation::state_name(o))
        .collect();
    Ok(Evaluated {
        rating: rating.id,
        objection: filed.id,
        states,
        outcome: read.disposal_reason,
        open: open.id,
    })
}
