//! Registration with the gateway's Registry, and heartbeats to keep it fresh.

use std::time::Duration;

use tonic::Code;
use tonic::transport::{Channel, Endpoint};
use xgate_proto::v1::registry_client::RegistryClient;
use xgate_proto::v1::{HeartbeatRequest, RegisterRequest};
use xgate_tls::TlsFiles;

/// How often a registered adapter tells the gateway it is alive.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(10);

const MAX_BACKOFF: Duration = Duration::from_secs(15);

pub(crate) struct Plan {
    pub gateway: String,
    pub tls: TlsFiles,
    pub department: String,
    pub adapter_id: String,
    pub endpoints: Vec<String>,
    pub record_types: Vec<String>,
    /// Replace the adapter's registration even when it drops types or
    /// endpoints (`--replace`).
    pub replace: bool,
}

/// Registers (retrying with backoff while the gateway is unreachable or
/// refuses), then heartbeats until the gateway says the adapter is no longer
/// registered. A deregistration sticks: an operator removed the adapter on
/// purpose, and it comes back only when restarted. So does a replacement (a
/// newer registration of the adapter took its place) and a registration
/// refused because it would drop what the adapter's current one serves:
/// retrying cannot change either.
pub(crate) async fn run(plan: Plan) {
    let client = match connect(&plan) {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(gateway = plan.gateway, error = %e, "cannot set up the gateway connection; not registering");
            return;
        }
    };
    let mut backoff = Duration::from_millis(200);
    loop {
        match register(client.clone(), &plan).await {
            Ok(registered_at) => {
                tracing::info!(
                    gateway = plan.gateway,
                    types = plan.record_types.len(),
                    "registered with the gateway"
                );
                let why = heartbeat_until_lost(client.clone(), &plan, registered_at).await;
                tracing::warn!(
                    reason = why,
                    "the gateway no longer lists this registration; restart the adapter to register again"
                );
                return;
            }
            Err(status) if status.code() == Code::FailedPrecondition => {
                tracing::error!(
                    gateway = plan.gateway,
                    message = status.message(),
                    "registration refused; not retrying (restart with --replace to replace the registration)"
                );
                return;
            }
            Err(status) => {
                tracing::warn!(gateway = plan.gateway, code = ?status.code(), message = status.message(), "registration failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

fn connect(plan: &Plan) -> anyhow::Result<RegistryClient<Channel>> {
    let uri: http::Uri = plan.gateway.parse()?;
    let host = uri
        .host()
        .ok_or_else(|| anyhow::anyhow!("gateway URL `{}` has no host", plan.gateway))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let channel = Endpoint::from(uri)
        .tls_config(plan.tls.client_config(&host)?)?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .connect_lazy();
    Ok(RegistryClient::new(channel))
}

/// Registers; the registration's time identifies it in heartbeats.
async fn register(
    mut client: RegistryClient<Channel>,
    plan: &Plan,
) -> Result<Option<prost_types::Timestamp>, tonic::Status> {
    let answer = client
        .register(RegisterRequest {
            department: plan.department.clone(),
            adapter_id: plan.adapter_id.clone(),
            endpoints: plan.endpoints.clone(),
            record_types: plan.record_types.clone(),
            replace: plan.replace,
        })
        .await?
        .into_inner();
    if let Some(change) = &answer.change
        && (!change.removed_record_types.is_empty() || !change.removed_endpoints.is_empty())
    {
        tracing::warn!(
            removed_types = ?change.removed_record_types,
            removed_endpoints = ?change.removed_endpoints,
            "this registration replaced one that served more"
        );
    }
    Ok(answer.registration.and_then(|r| r.registered_at))
}

/// Heartbeats until the gateway says this registration is gone (NOT_FOUND:
/// deregistered; FAILED_PRECONDITION: replaced); returns the gateway's word.
async fn heartbeat_until_lost(
    mut client: RegistryClient<Channel>,
    plan: &Plan,
    registered_at: Option<prost_types::Timestamp>,
) -> String {
    let mut ticker = tokio::time::interval(HEARTBEAT_INTERVAL);
    ticker.tick().await; // the first tick is immediate; we just registered
    loop {
        ticker.tick().await;
        let beat = client
            .heartbeat(HeartbeatRequest {
                department: plan.department.clone(),
                adapter_id: plan.adapter_id.clone(),
                registered_at,
            })
            .await;
        match beat {
            Ok(_) => {}
            Err(status) if matches!(status.code(), Code::NotFound | Code::FailedPrecondition) => {
                return status.message().to_owned();
            }
            Err(status) => {
                tracing::warn!(code = ?status.code(), message = status.message(), "heartbeat failed");
            }
        }
    }
}
