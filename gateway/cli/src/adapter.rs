//! `xgate adapter`: onboarding a department adapter — `check` runs the
//! conformance kit against it, `register` / `deregister` / `list` talk to
//! the gateway's Registry service.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use xgate_catalog::Catalog;
use xgate_proto::v1::registry_client::RegistryClient;
use xgate_proto::v1::{
    AdapterRegistration, BreakerState, DeregisterRequest, ListAdaptersRequest, RegisterRequest,
    RegistrationChange,
};
use xgate_tls::{Identity, TlsFiles};

use super::ClientTls;
use xgate_conformance::{self as conformance, CheckPlan};

#[derive(clap::Subcommand, Debug)]
pub enum AdapterCommand {
    /// Run the adapter contract against a live adapter (before registering
    /// it) and print a pass/fail table; exits non-zero on any failure.
    Check(CheckArgs),
    /// Register an adapter with the gateway (department certificate).
    Register(RegisterArgs),
    /// Remove an adapter's registration (department or admin certificate).
    Deregister(DeregisterArgs),
    /// List registered adapters (admin: all; department: its own).
    List(ListArgs),
}

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Adapter URL, `https://host:port`.
    #[arg(long)]
    pub endpoint: String,
    /// Department the adapter must prove to be (its certificate's
    /// `xgate://department/<id>`).
    #[arg(long)]
    pub department: String,
    /// PEM certificate the adapter accepts: the gateway's or an admin's.
    #[arg(long, env = "XGATE_CERT")]
    pub cert: PathBuf,
    /// PEM private key of that certificate.
    #[arg(long, env = "XGATE_KEY")]
    pub key: PathBuf,
    /// PEM CA certificate that issued the adapter's certificate.
    #[arg(long, env = "XGATE_CA")]
    pub ca: PathBuf,
    /// A subject the department holds records about (resident ID or USCC);
    /// repeatable, added to the sample subjects the adapter's Describe names.
    #[arg(long = "subject", value_name = "ID")]
    pub subjects: Vec<String>,
    /// grpc-timeout of the deadline check, in milliseconds.
    #[arg(long, default_value_t = 100)]
    pub deadline_ms: u64,
    /// How much later than that deadline the adapter may still answer, in
    /// milliseconds.
    #[arg(long, default_value_t = 500)]
    pub grace_ms: u64,
}

#[derive(clap::Args, Debug)]
#[command(mut_arg("cert", |a| a.help(
    "PEM certificate of the department (URI SAN `xgate://department/<id>`) whose adapter is registered"
)))]
pub struct RegisterArgs {
    #[command(flatten)]
    pub tls: ClientTls,
    /// Department (default: the one in the certificate).
    #[arg(long)]
    pub department: Option<String>,
    /// Adapter name within the department (default: the department).
    #[arg(long)]
    pub adapter_id: Option<String>,
    /// URL where the adapter listens, `https://host:port`; repeatable.
    #[arg(long = "endpoint", required = true)]
    pub endpoints: Vec<String>,
    /// Record types it serves, comma-separated (default: every catalog type
    /// of the department).
    #[arg(long, value_delimiter = ',')]
    pub types: Vec<String>,
    /// Replace the adapter's registration even when this one drops record
    /// types or endpoints it holds (without it the gateway refuses such a
    /// registration and names what would be dropped).
    #[arg(long)]
    pub replace: bool,
}

#[derive(clap::Args, Debug)]
#[command(mut_arg("cert", |a| a.help(
    "PEM certificate of the adapter's department (`xgate://department/<id>`), or an admin's (`xgate://admin/<id>`) with --department"
)))]
pub struct DeregisterArgs {
    #[command(flatten)]
    pub tls: ClientTls,
    /// Department (default: the one in the certificate).
    #[arg(long)]
    pub department: Option<String>,
    /// Adapter name within the department (default: the department).
    #[arg(long)]
    pub adapter_id: Option<String>,
}

#[derive(clap::Args, Debug)]
#[command(mut_arg("cert", |a| a.help(
    "PEM certificate: an admin's (`xgate://admin/<id>`) lists every adapter, a department's (`xgate://department/<id>`) its own"
)))]
pub struct ListArgs {
    #[command(flatten)]
    pub tls: ClientTls,
}

pub async fn run(command: AdapterCommand) -> anyhow::Result<()> {
    match command {
        AdapterCommand::Check(args) => check(args).await,
        AdapterCommand::Register(args) => register(args).await,
        AdapterCommand::Deregister(args) => deregister(args).await,
        AdapterCommand::List(args) => list(args).await,
    }
}

async fn check(args: CheckArgs) -> anyhow::Result<()> {
    let catalog = Catalog::builtin()?;
    if catalog.department(&args.department).is_none() {
        anyhow::bail!("department `{}` is not in the catalog", args.department);
    }
    let mut subjects = Vec::new();
    for id in &args.subjects {
        let kind =
            conformance::subject_kind_of(id).map_err(|e| anyhow::anyhow!("--subject: {e}"))?;
        subjects.push((kind, id.to_ascii_uppercase()));
    }
    let plan = CheckPlan {
        endpoint: args.endpoint.clone(),
        department: args.department.clone(),
        tls: TlsFiles {
            cert: args.cert,
            key: args.key,
            ca: args.ca,
        },
        subjects,
        deadline: Duration::from_millis(args.deadline_ms),
        grace: Duration::from_millis(args.grace_ms),
    };
    let report = conformance::check(&plan, &catalog).await;
    crate::outln!(
        "conformance of the `{}` adapter at {}",
        args.department,
        args.endpoint
    )?;
    crate::outln!("{}", report.render().trim_end())?;
    let failures = report.failures();
    if failures > 0 {
        anyhow::bail!(
            "{failures} of {} checks failed: the adapter does not meet the contract",
            report.rows.len()
        );
    }
    crate::outln!("all {} checks passed", report.rows.len())?;
    Ok(())
}

/// The department of a department certificate, or of `--department`.
fn department_of(tls: &TlsFiles, given: Option<String>) -> anyhow::Result<String> {
    if let Some(department) = given {
        return Ok(department);
    }
    match tls.identity().context("reading the client certificate")? {
        Identity::Department(d) => Ok(d),
        other => {
            anyhow::bail!("the certificate is for `{other}`, not a department: pass --department")
        }
    }
}

async fn registry(tls: &ClientTls) -> anyhow::Result<RegistryClient<tonic::transport::Channel>> {
    let channel = super::client::connect(&tls.gateway, &tls.files()).await?;
    Ok(RegistryClient::new(channel))
}

/// A refusal by the gateway, with its reason.
fn refused(what: &str, status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!(
        "the gateway refused the {what} ({:?}): {}",
        status.code(),
        status.message()
    )
}

async fn register(args: RegisterArgs) -> anyhow::Result<()> {
    let files = args.tls.files();
    let department = department_of(&files, args.department)?;
    let types = if args.types.is_empty() {
        let catalog = Catalog::builtin()?;
        let types: Vec<String> = catalog
            .types_of_department(&department)
            .map(|t| t.id.clone())
            .collect();
        anyhow::ensure!(
            !types.is_empty(),
            "department `{department}` has no record type in the catalog; pass --types"
        );
        types
    } else {
        args.types
    };
    let mut client = registry(&args.tls).await?;
    let answer = client
        .register(RegisterRequest {
            department,
            adapter_id: args.adapter_id.unwrap_or_default(),
            endpoints: args.endpoints,
            record_types: types,
            replace: args.replace,
        })
        .await
        .map_err(|s| refused("registration", s))?
        .into_inner();
    let registration = answer
        .registration
        .context("the gateway answered without the registration")?;
    let change = answer.change.unwrap_or_default();
    crate::outln!("{}", change_summary(&change))?;
    print_registration(&registration)
}

/// One line saying what a registration did, then one per kind of change.
fn change_summary(change: &RegistrationChange) -> String {
    let mut lines = vec![
        if change.created {
            "registered (new adapter):"
        } else if change.replaced {
            "registered, replacing the previous registration:"
        } else if change.added_record_types.is_empty() && change.added_endpoints.is_empty() {
            "registered (unchanged):"
        } else {
            "registered (extended):"
        }
        .to_owned(),
    ];
    if !change.created {
        for (label, items) in [
            ("types added", &change.added_record_types),
            ("types removed", &change.removed_record_types),
            ("endpoints added", &change.added_endpoints),
            ("endpoints removed", &change.removed_endpoints),
        ] {
            if !items.is_empty() {
                lines.push(format!("  {label}: {}", items.join(", ")));
            }
        }
    }
    lines.join("\n")
}

async fn deregister(args: DeregisterArgs) -> anyhow::Result<()> {
    let files = args.tls.files();
    let department = department_of(&files, args.department)?;
    let adapter_id = args.adapter_id.unwrap_or_else(|| department.clone());
    let mut client = registry(&args.tls).await?;
    let removed = client
        .deregister(DeregisterRequest {
            department: department.clone(),
            adapter_id: adapter_id.clone(),
        })
        .await
        .map_err(|s| refused("deregistration", s))?
        .into_inner()
        .removed;
    anyhow::ensure!(
        removed,
        "adapter `{adapter_id}` of `{department}` is not registered; nothing removed"
    );
    crate::outln!("deregistered adapter `{adapter_id}` of `{department}`")?;
    Ok(())
}

async fn list(args: ListArgs) -> anyhow::Result<()> {
    let mut client = registry(&args.tls).await?;
    let adapters = client
        .list(ListAdaptersRequest {})
        .await
        .map_err(|s| refused("listing", s))?
        .into_inner()
        .adapters;
    if adapters.is_empty() {
        crate::outln!("no adapter registered")?;
    }
    for registration in &adapters {
        print_registration(registration)?;
    }
    Ok(())
}

fn timestamp(ts: Option<&prost_types::Timestamp>) -> String {
    ts.map_or_else(|| "-".to_owned(), ToString::to_string)
}

fn print_registration(r: &AdapterRegistration) -> anyhow::Result<()> {
    crate::outln!("{}/{}", r.department, r.adapter_id)?;
    crate::outln!("  endpoints:  {}", r.endpoints.join(", "))?;
    crate::outln!("  types:      {}", r.record_types.join(", "))?;
    if !r.endpoint_states.is_empty() {
        let states: Vec<String> = r
            .endpoint_states
            .iter()
            .map(|s| {
                let breaker = match BreakerState::try_from(s.breaker) {
                    Ok(BreakerState::Closed) => "closed",
                    Ok(BreakerState::HalfOpen) => "half-open",
                    Ok(BreakerState::Open) => "open",
                    _ => "unknown",
                };
                format!("{} {breaker} ({} in flight)", s.endpoint, s.outstanding)
            })
            .collect();
        crate::outln!("  breakers:   {}", states.join(", "))?;
    }
    crate::outln!(
        "  registered: {}   last seen: {}",
        timestamp(r.registered_at.as_ref()),
        timestamp(r.last_seen.as_ref())
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registration_says_what_it_changed() {
        let change = RegistrationChange {
            replaced: true,
            removed_record_types: vec!["a".into(), "b".into()],
            added_endpoints: vec!["https://h:1".into()],
            ..RegistrationChange::default()
        };
        assert_eq!(
            change_summary(&change),
            "registered, replacing the previous registration:\n  types removed: a, b\n  endpoints added: https://h:1"
        );
        assert_eq!(
            change_summary(&RegistrationChange::default()),
            "registered (unchanged):"
        );
    }

    #[test]
    fn department_comes_from_the_flag_or_a_department_certificate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = xgate_tls::devpki::init(
            dir.path(),
            &[
                Identity::Department("tax".into()),
                Identity::Admin("operator".into()),
            ],
        )
        .expect("pki");
        let tax = pki.files(&Identity::Department("tax".into()));
        assert_eq!(department_of(&tax, None).expect("tax"), "tax");
        assert_eq!(
            department_of(&tax, Some("land".into())).expect("given"),
            "land"
        );
        let admin = pki.files(&Identity::Admin("operator".into()));
        let err = department_of(&admin, None).expect_err("admin has no department");
        assert!(err.to_string().contains("pass --department"), "{err}");
    }
}
