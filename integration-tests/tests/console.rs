//! The web console in a real browser (Debian's chromium through
//! chromedriver): an auditor signs in with a one-time URL and searches the
//! log for a citizen; a department disposes of an objection a requester
//! filed, and the requester's client reads the outcome; a page for one role
//! refuses another; a reused or stale sign-in URL, a forged cookie and a
//! form without the session's CSRF token are each refused.
//!
//! Without chromium the browser test says why and is skipped, unless
//! `XGATE_BROWSER_TESTS=required` (CI sets it). With `XGATE_SCREENSHOTS=DIR`
//! the main pages are saved there as PNG.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use tonic::Code;
use xgate_catalog::SubjectKind;
use xgate_integration_tests::browser::Browser;
use xgate_integration_tests::client::{self, status_of};
use xgate_integration_tests::fixture::FixtureDepartment;
use xgate_integration_tests::{APPROVAL_HALL, GENERAL_APPROVAL, GatewayOptions, TestEnv};
use xgate_proto::v1::console_client::ConsoleClient;
use xgate_proto::v1::evaluation_client::EvaluationClient;
use xgate_proto::v1::{
    Disposition, ListObjectionsRequest, ObjectionState, RecordStatus, SignInRequest,
};

const LICENCE: &str = "driving_licence";
const COOKIE: &str = "__Host-xgate-session";

/// A one-time sign-in URL for the holder of `tls`.
async fn sign_in(
    addr: std::net::SocketAddr,
    tls: &xgate_tls::TlsFiles,
) -> Result<String, tonic::Status> {
    let channel = client::connect(addr, tls).await.expect("connect");
    ConsoleClient::new(channel)
        .sign_in(SignInRequest {})
        .await
        .map(|r| r.into_inner().url)
}

fn console_options(extra: &str) -> GatewayOptions {
    GatewayOptions {
        extra_toml: format!("[console]\nlisten = \"127.0.0.1:0\"\n{extra}"),
        ..GatewayOptions::default()
    }
}

/// Saves a screenshot of the page shown when `XGATE_SCREENSHOTS` names a folder.
async fn keep(browser: &Browser, name: &str) {
    if let Some(dir) = std::env::var_os("XGATE_SCREENSHOTS") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        browser
            .screenshot(&dir.join(format!("{name}.png")))
            .await
            .expect("screenshot");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auditors_and_departments_work_in_a_real_browser() {
    let Some(browser) = Browser::start().await.expect("browser") else {
        return;
    };
    let env = TestEnv::new().expect("env");
    // Sign-in URLs live 3 s here, so the stale one below need not wait long.
    let gateway = env
        .start_gateway(&console_options("sign_in_ttl = \"3s\"\n"))
        .await
        .expect("gateway");
    let subject = env.subjects().citizen.clone();
    let _licences = env
        .start_fixture(FixtureDepartment::licences(&subject), &gateway)
        .await
        .expect("public security");
    let mut hall = env
        .exchange(gateway.addr(), APPROVAL_HALL)
        .await
        .expect("hall");
    let answer = client::fetch(
        &mut hall,
        client::fetch_request(
            SubjectKind::ResidentId,
            &subject,
            [LICENCE],
            GENERAL_APPROVAL,
        ),
    )
    .await
    .expect("fetch");
    assert_eq!(
        status_of(&answer.results[0]),
        RecordStatus::Ok,
        "{answer:?}"
    );
    // The hall objects to the licence's expiry date.
    let hall_tls = env.pki().requester(APPROVAL_HALL);
    let mut filer =
        EvaluationClient::new(client::connect(gateway.addr(), &hall_tls).await.unwrap());
    let filed = filer
        .file(client::licence_objection(
            answer.receipt.as_ref().expect("receipt"),
            &subject,
            "valid_until",
            serde_json::json!("2031-05-31"),
        ))
        .await
        .expect("objection filed")
        .into_inner();

    // The auditor signs in: the URL works once.
    let auditor_url = sign_in(gateway.addr(), &env.pki().auditor())
        .await
        .expect("url");
    let base = auditor_url.split("/signin").next().unwrap().to_owned();
    browser.goto(&auditor_url).await.unwrap();
    assert_eq!(
        browser.text("#who").await.unwrap(),
        "xgate://auditor/auditor"
    );
    let cookie = browser
        .cookies()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c["name"] == COOKIE)
        .expect("session cookie");
    assert_eq!(cookie["httpOnly"], true, "{cookie}");
    assert_eq!(cookie["secure"], true, "{cookie}");
    assert_eq!(cookie["sameSite"], "Strict", "{cookie}");
    browser.goto(&auditor_url).await.unwrap();
    assert!(
        browser
            .text("#message-text")
            .await
            .unwrap()
            .contains("has been used already"),
        "a reused sign-in URL is refused"
    );

    // ... and searches the log for the citizen.
    browser.goto(&format!("{base}/audit")).await.unwrap();
    browser.fill("#subject_id", &subject).await.unwrap();
    browser.click("#search-button").await.unwrap();
    browser
        .wait_for("#entries", Duration::from_secs(10))
        .await
        .unwrap();
    let rows = browser.texts("#entries tbody tr").await.unwrap();
    assert!(
        rows.iter()
            .any(|r| r.contains(LICENCE) && r.contains(APPROVAL_HALL) && r.contains("permit")),
        "{rows:?}"
    );
    let timing = browser.server_timing().await.unwrap();
    eprintln!("log search page, server time: {timing:?}");
    assert!(timing.iter().any(|(name, _)| name == "app"), "{timing:?}");
    keep(&browser, "audit-search").await;
    // A malformed ID is refused, not searched for in vain.
    browser
        .goto(&format!("{base}/audit?subject_id=110101199003078888"))
        .await
        .unwrap();
    assert!(
        browser
            .text("#message-text")
            .await
            .unwrap()
            .contains("subject")
    );
    browser.goto(&format!("{base}/audit/chain")).await.unwrap();
    assert!(
        browser
            .text("#chain-status")
            .await
            .unwrap()
            .starts_with("Verified")
    );
    keep(&browser, "chain").await;

    // A department signs in; the auditor's pages refuse it.
    let department = env.pki().department("public-security");
    let url = sign_in(gateway.addr(), &department).await.expect("url");
    browser.goto(&url).await.unwrap();
    assert_eq!(
        browser.text("#who").await.unwrap(),
        "xgate://department/public-security"
    );
    browser.goto(&format!("{base}/audit")).await.unwrap();
    let refusal = browser.text("#message-text").await.unwrap();
    assert!(
        refusal.contains("is for auditor")
            && refusal.contains("xgate://department/public-security"),
        "{refusal}"
    );

    // A form without the session's CSRF token is refused.
    browser.goto(&format!("{base}/objections")).await.unwrap();
    let selector = format!("#objection-{}", filed.id);
    assert!(browser.exists(&selector).await.unwrap());
    browser
        .execute(
            "document.querySelector('form.dispose input[name=csrf]').value = 'forged';",
            vec![],
        )
        .await
        .unwrap();
    browser.click("input[value=rejected]").await.unwrap();
    browser.fill(".reason", "forged").await.unwrap();
    browser.click(".dispose-button").await.unwrap();
    assert!(
        browser
            .text("#message-text")
            .await
            .unwrap()
            .contains("CSRF")
    );

    // The department acknowledges and disposes of it in its queue.
    browser.goto(&format!("{base}/objections")).await.unwrap();
    keep(&browser, "objection-queue").await;
    browser
        .click(&format!("{selector} .acknowledge"))
        .await
        .unwrap();
    browser
        .wait_for(
            &format!("{selector} .dispose-button"),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert!(
        !browser
            .exists(&format!("{selector} .acknowledge"))
            .await
            .unwrap()
    );
    browser
        .click(&format!("{selector} input[value=rejected]"))
        .await
        .unwrap();
    browser
        .fill(
            &format!("{selector} .reason"),
            "the licence was renewed on 2026-05-31; the date stands",
        )
        .await
        .unwrap();
    browser
        .click(&format!("{selector} .dispose-button"))
        .await
        .unwrap();
    browser
        .wait_for(&format!("{selector} .outcome"), Duration::from_secs(10))
        .await
        .unwrap();
    assert!(
        browser
            .text(&format!("{selector} .outcome"))
            .await
            .unwrap()
            .starts_with("rejected")
    );
    browser.goto(&format!("{base}/scorecards")).await.unwrap();
    assert!(browser.exists("svg.chart").await.unwrap());
    let cards = browser.texts("#scorecards tbody tr").await.unwrap();
    assert!(
        cards.iter().any(|r| r.starts_with("public-security")),
        "{cards:?}"
    );
    keep(&browser, "scorecard").await;

    // The requester's client reads the outcome (the feedback).
    let mine = filer
        .list(ListObjectionsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .objections;
    let o = mine.iter().find(|o| o.id == filed.id).expect("listed");
    assert_eq!(o.state(), ObjectionState::FedBack);
    assert_eq!(o.disposition(), Disposition::Rejected);
    assert!(o.disposal_reason.contains("date stands"), "{o:?}");

    // Signing out ends the session.
    browser.click("#signout").await.unwrap();
    browser.goto(&format!("{base}/objections")).await.unwrap();
    assert!(browser.text("h1").await.unwrap().contains("Not signed in"));

    // A forged cookie signs nobody in.
    browser.goto(&format!("{base}/console.css")).await.unwrap();
    browser.delete_cookies().await.unwrap();
    browser.add_cookie(COOKIE, &"0f".repeat(32)).await.unwrap();
    browser.goto(&format!("{base}/")).await.unwrap();
    assert!(browser.text("h1").await.unwrap().contains("Not signed in"));

    // A sign-in URL past its time is refused.
    let stale = sign_in(gateway.addr(), &env.pki().auditor())
        .await
        .expect("url");
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    browser.goto(&stale).await.unwrap();
    assert!(
        browser
            .text("#message-text")
            .await
            .unwrap()
            .contains("expired")
    );

    // Every sign-in is in the audit log.
    let entries = client::audit_entries(
        gateway.addr(),
        &env.pki().auditor(),
        xgate_proto::v1::AuditQueryRequest {
            kind: "admin".into(),
            ..Default::default()
        },
    )
    .await
    .expect("audit entries");
    let sign_ins: Vec<_> = entries
        .iter()
        .filter(|e| e.event == "console_signed_in")
        .map(|e| e.requester.as_str())
        .collect();
    assert_eq!(
        sign_ins,
        [
            "xgate://auditor/auditor",
            "xgate://department/public-security"
        ]
    );
    gateway.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_is_refused_without_a_console_and_for_other_roles() {
    let env = TestEnv::new().expect("env");
    let off = env
        .start_gateway(&GatewayOptions::default())
        .await
        .expect("gateway");
    let e = sign_in(off.addr(), &env.pki().auditor())
        .await
        .expect_err("no console");
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    off.stop().await.expect("stop");

    let on = env
        .start_gateway(&console_options(""))
        .await
        .expect("gateway");
    let e = sign_in(on.addr(), &env.pki().platform())
        .await
        .expect_err("platform");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let url = sign_in(on.addr(), &env.pki().admin()).await.expect("admin");
    assert!(
        url.starts_with("https://127.0.0.1:") && url.contains("/signin?token="),
        "{url}"
    );
    on.stop().await.expect("stop");
}
