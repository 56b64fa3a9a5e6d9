//! xgate, the inter-departmental data-sharing exchange gateway.
//!
//! Approval-bureau systems call the `Exchange` service over mTLS with a
//! subject's ID number; the gateway decides each requested record type
//! against the Cedar policies, calls the departments' adapters in parallel
//! under one deadline, checks every returned record against the catalog's
//! JSON Schema, and answers with one result per type. Department IT
//! registers adapters through the `Registry` service.
//!
//! Modules, in the order a fetch passes through them: [`validate`] (request
//! checks), [`fetch`] (policy, fan-out, schema check, view) ending in
//! [`outcome`]s that only [`audit`] can seal into results, with
//! [`cache`] (record cache, single-flight) and [`routing`] (type -> adapter
//! channels; resilient calls with [`upstream`]); [`gateway`] holds the gRPC
//! services and shared state, [`store`] the persisted registrations,
//! [`server`] start-up, [`config`] the configuration file, [`audit`] the
//! access log (written before release) and the auditors' service, [`overload`]
//! load shedding and rate limits, [`telemetry`] spans, trace propagation and
//! the metrics endpoint ([`metrics`]), [`cluster`] the replicas sharing one
//! database and whether they agree on the policy set, [`evaluation`] ratings,
//! objections and scorecards, [`console`] the web console, [`screening`]
//! proactive screening of many subjects for a screening item.
//!
//! A library only: the `xgate` binary, its client commands and the demo are
//! the `xgate-cli` crate (`gateway/cli`), so nothing here links demo data.

pub mod audit;
/// The wire types this crate's API speaks (`RecordResult`, ...), so users
/// and the compile-fail test name the very crate versions it was built with.
pub use xgate_proto;
pub mod cache;
pub mod cluster;
pub mod codes;
pub mod config;
pub mod consent;
pub mod console;
pub mod error;
pub mod evaluation;
pub mod fetch;
pub mod gateway;
pub mod metrics;
pub mod outcome;
pub mod overload;
pub mod policy_admin;
pub mod quota;
pub mod representation;
pub mod routing;
pub mod screening;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod upstream;
pub mod validate;
