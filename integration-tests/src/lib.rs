//! Harness for xgate's end-to-end tests: they start the real `xgate` and department adapter
//! binaries on loopback ports chosen by the OS, over real mutual TLS, and call them with tonic
//! clients.
//!
//! - [`TestEnv`]: one test's world — a temporary folder, a development PKI, the catalog, the
//!   sample subjects — and the launchers of gateways, adapters and in-process fixtures.
//! - [`process`]: child processes (gateway, adapters) killed on drop, whose logs are printed
//!   when they go away (test runners show that output only for failing tests).
//! - [`fixture`]: misbehaving adapters (slow, hanging, bad data) built in the test process on
//!   the real adapter SDK, so they serve real gRPC over mTLS and register through the real
//!   Registry.
//! - [`client`]: mTLS channels and the request builders tests use.
//! - [`kit`]: the `xgate adapter` / `xgate certs issue` commands run as a department would,
//!   and an adapter that ignores deadlines.
//! - [`grants`]: small policies for one fixture department.
//! - [`records`]: valid sample records for fixtures, checked against the catalog.
//! - [`scrape`]: the gateway's `/metrics` endpoint, found in its log.
//! - [`replicas`]: gateway replicas sharing one PostgreSQL database.
//! - [`bins`]: where the binaries are (next to the test executable's `deps` folder).
//! - [`browser`]: a minimal WebDriver client driving headless chromium through chromedriver,
//!   for the console's browser tests (skipped when they are not installed).
//!
//! The binaries must be built first (`cargo build --workspace --bins`); a missing one is
//! reported with the command that builds it.

pub mod bins;
pub mod browser;
pub mod client;
mod env;
pub mod fixture;
pub mod grants;
pub mod kit;
pub mod pg;
pub mod pki;
pub mod process;
pub mod records;
pub mod replicas;
pub mod scrape;
pub mod wait;

pub use env::{GatewayOptions, Subjects, TestEnv};

use std::time::Duration;

/// The requester the repository's policies let read every shared type for `GENERAL-APPROVAL`.
pub const APPROVAL_HALL: &str = "approval-hall-demo";
/// A requester no policy grants anything.
pub const NO_GRANT: &str = "no-grant-bureau";
/// The housing provident fund centre of the repository's policies.
pub const PROVIDENT_FUND: &str = "provident-fund-bozhou";
/// The benefits office granted to screen for the elderly allowance.
pub const BENEFITS_OFFICE: &str = "civil-affairs-bozhou";
/// The tax bureau granted to screen for the small-taxpayer exemption.
pub const TAX_BUREAU: &str = "tax-bureau-bozhou";
/// The purpose code the approval hall's policy permits.
pub const GENERAL_APPROVAL: &str = "GENERAL-APPROVAL";
/// Id of the gateway's certificate.
pub const GATEWAY_ID: &str = "xgate";
/// Id of the operator's (admin) certificate.
pub const ADMIN_ID: &str = "operator";
/// Id of the auditor's certificate.
pub const AUDITOR_ID: &str = "auditor";
/// Id of the citizen platform's certificate.
pub const PLATFORM_ID: &str = "citizen-app";
/// The departments whose adapters exist as binaries.
pub const DEPARTMENTS: [&str; 3] = ["public-security", "natural-resources", "tax"];

/// How long a process may take to print its `listening on` line. Generous: a loaded 2-core
/// machine may be compiling next door.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long adapters may take to appear in the gateway's registry.
pub const REGISTER_TIMEOUT: Duration = Duration::from_secs(30);
/// Deadline of an ordinary fetch in the tests.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(15);
