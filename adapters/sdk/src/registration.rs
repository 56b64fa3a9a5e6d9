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
}

/// Registers (retrying with backoff while the gateway is unreachable or
/// refuses), then heartbeats until the gateway says the adapter is no longer
/// registered. A deregistration sticks: an operator removed the adapter on
/// purpose, and it comes back only when restarted.
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
            Ok(()) => {
                tracing::info!(
                    gateway = plan.gateway,
                    types = plan.record_types.len(),
                    "registered with the gateway"
                );
                heartbeat_until_lost(client.clone(), &plan).await;
                tracing::warn!(
                    "the gateway no longer lists this adapter (deregistered); restart it to register again"
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

async fn register(mut client: RegistryClient<Channel>, plan: &Plan) -> Result<(), tonic::Status> {
    client
        .register(RegisterRequest {
            department: plan.department.clone(),
            adapter_id: plan.adapter_id.clone(),
            endpoints: plan.endpoints.clone(),
            record_types: plan.record_types.clone(),
        })
        .await
        .map(|_| ())
}

/// Returns when the gateway says it has forgotten this adapter.
async fn heartbeat_until_lost(mut client: RegistryClient<Channel>, plan: &Plan) {
    let mut ticker = tokio::time::interval(HEARTBEAT_INTERVAL);
    ticker.tick().await; // the first tick is immediate; we just registered
    loop {
        ticker.tick().await;
        let beat = client
            .heartbeat(HeartbeatRequest {
                department: plan.department.clone(),
                adapter_id: plan.adapter_id.clone(),
            })
            .await;
        match beat {
            Ok(_) => {}
            Err(status) if status.code() == Code::NotFound => return,
            Err(status) => {
                tracing::warn!(code = ?status.code(), message = status.message(), "heartbeat failed");
            }
        }
    }
}
