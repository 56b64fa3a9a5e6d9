//! `xgate cluster status`: the gateway replicas sharing one database, their
//! policy sets, heartbeats and audit chain heads; fails when the live
//! replicas disagree on the policy set (for scripts and alerting).

use xgate_proto::v1::policy_admin_client::PolicyAdminClient;
use xgate_proto::v1::{ClusterStatusRequest, ClusterStatusResponse};

use crate::ClientTls;

/// `xgate cluster ...`.
#[derive(clap::Subcommand, Debug)]
pub enum ClusterCommand {
    /// List the replicas (admin or auditor certificate, `xgate://admin/<id>`
    /// or `xgate://auditor/<id>`); exits non-zero when the live ones run
    /// different policy sets.
    Status(StatusArgs),
}

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub tls: ClientTls,
    /// Print the answer as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(command: ClusterCommand) -> anyhow::Result<()> {
    let ClusterCommand::Status(args) = command;
    let channel = crate::client::connect(&args.tls.gateway, &args.tls.files()).await?;
    let status = PolicyAdminClient::new(channel)
        .cluster_status(ClusterStatusRequest {})
        .await
        .map_err(|s| {
            anyhow::anyhow!(
                "the gateway refused the cluster status ({:?}): {}",
                s.code(),
                s.message()
            )
        })?
        .into_inner();
    if args.json {
        crate::outln!("{}", to_json(&status))?;
    } else {
        print_table(&status)?;
    }
    anyhow::ensure!(
        status.policy_sets_agree,
        "the live replicas disagree on the policy set: {}",
        status.policy_set_versions.join(", ")
    );
    Ok(())
}

fn timestamp(ts: Option<&prost_types::Timestamp>) -> String {
    ts.map_or_else(|| "-".to_owned(), ToString::to_string)
}

fn to_json(s: &ClusterStatusResponse) -> serde_json::Value {
    serde_json::json!({
        "answered_by": s.answered_by,
        "policy_sets_agree": s.policy_sets_agree,
        "policy_set_versions": s.policy_set_versions,
        "replicas": s.replicas.iter().map(|r| serde_json::json!({
            "instance": r.instance,
            "address": r.address,
            "live": r.live,
            "policy_set_version": r.policy_set_version,
            "started_at": timestamp(r.started_at.as_ref()),
            "last_heartbeat": timestamp(r.last_heartbeat.as_ref()),
            "chain_size": r.chain_size,
            "chain_root": r.chain_root,
        })).collect::<Vec<_>>(),
    })
}

pub fn print_table(s: &ClusterStatusResponse) -> std::io::Result<()> {
    crate::outln!(
        "{:<22} {:<5} {:<21} {:<24} {:<32} chain head",
        "instance",
        "live",
        "address",
        "policy set",
        "last heartbeat"
    )?;
    for r in &s.replicas {
        let me = if r.instance == s.answered_by { "*" } else { "" };
        let head = if r.chain_root.is_empty() {
            "-".to_owned()
        } else {
            format!(
                "{} entries, root {}…",
                r.chain_size,
                &r.chain_root[..16.min(r.chain_root.len())]
            )
        };
        crate::outln!(
            "{:<22} {:<5} {:<21} {:<24} {:<32} {head}",
            format!("{}{me}", r.instance),
            if r.live { "yes" } else { "NO" },
            r.address,
            r.policy_set_version,
            timestamp(r.last_heartbeat.as_ref()),
        )?;
    }
    if s.policy_sets_agree {
        crate::outln!(
            "policy sets agree: {} ({} live replica(s); * answered)",
            s.policy_set_versions.join(", "),
            s.replicas.iter().filter(|r| r.live).count()
        )
    } else {
        crate::outln!(
            "POLICY SETS DISAGREE: {} (reload the replicas that run an old set)",
            s.policy_set_versions.join(" vs ")
        )
    }
}
