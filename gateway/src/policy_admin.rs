//! Hot reload of the policy set, and the `PolicyAdmin` service.
//!
//! Three triggers — SIGHUP, a change to a file in the policy directory, and
//! the `ReloadPolicies` RPC — all run [`GatewayState::reload_policies`]: load
//! the whole directory, validate it against the catalog, and only then swap
//! it in with one atomic store. A fetch loads the set once and decides every
//! record with it, so no fetch ever mixes two sets. A set that fails
//! validation is refused with every `file:line:column` error and the running
//! set stays in force.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use notify::Watcher as _;
use tonic::{Code, Request, Response, Status};
use xgate_policy::{PolicyLoadError, PolicySet};
use xgate_proto::status::{Violation, bad_request};
use xgate_proto::v1::policy_admin_server::PolicyAdmin;
use xgate_proto::v1::{
    GetPolicySetRequest, PolicySetInfo, ReloadPoliciesRequest, ReloadPoliciesResponse,
};
use xgate_tls::role::{Admin, Role as _};

use crate::audit::AdminEvent;
use crate::gateway::GatewayState;

/// Quiet time after the last file event before reloading, so an editor's
/// write-rename-chmod sequence (or a `cp -r` of several files) is one reload.
const DEBOUNCE: Duration = Duration::from_millis(300);

/// Where the active set came from and when it was swapped in.
#[derive(Debug, Clone)]
pub struct PolicyMeta {
    pub loaded_at: SystemTime,
    pub source: PathBuf,
}

/// What a reload did.
#[derive(Debug)]
pub enum Reloaded {
    /// A new set is active.
    Swapped { from: String, to: String },
    /// The files are those of the active set; nothing was swapped.
    Unchanged { version: String },
}

impl GatewayState {
    /// Loads, validates and swaps in the policy directory's set; on error the
    /// running set stays. `trigger` names the cause in the log.
    pub async fn reload_policies(&self, trigger: &str) -> Result<Reloaded, PolicyLoadError> {
        // One reload at a time, so two triggers cannot swap out of order.
        let _guard = self.policy_reload_lock.lock().await;
        let dir = self.policy_meta.load().source.clone();
        let catalog = Arc::clone(&self.catalog);
        let loaded = tokio::task::spawn_blocking(move || PolicySet::load_dir(&dir, &catalog))
            .await
            .unwrap_or_else(|e| {
                Err(PolicyLoadError {
                    errors: vec![xgate_policy::PolicyIssue {
                        file: "<reload>".into(),
                        line: 0,
                        column: 0,
                        message: format!("loading task failed: {e}"),
                    }],
                })
            });
        let from = self.policies.load().version().to_owned();
        match loaded {
            Err(e) => {
                tracing::error!(trigger, active = from, errors = %e, "policy set rejected; the active set stays");
                crate::audit::admin_event(
                    &self.auditor,
                    trigger,
                    AdminEvent::PolicySetRejected {
                        reason: e.to_string(),
                    },
                )
                .await;
                Err(e)
            }
            Ok(set) if set.version() == from => Ok(Reloaded::Unchanged { version: from }),
            Ok(set) => {
                let to = set.version().to_owned();
                self.policies.store(Arc::new(set));
                let source = self.policy_meta.load().source.clone();
                self.policy_meta.store(Arc::new(PolicyMeta {
                    loaded_at: SystemTime::now(),
                    source,
                }));
                tracing::info!(trigger, from, to, "policy set loaded");
                let policies = self.policies.load().policy_ids().len();
                crate::audit::admin_event(
                    &self.auditor,
                    trigger,
                    AdminEvent::PolicySetLoaded {
                        version: to.clone(),
                        policies,
                    },
                )
                .await;
                Ok(Reloaded::Swapped { from, to })
            }
        }
    }

    /// The active set, as the RPC shows it.
    pub fn policy_set_info(&self) -> PolicySetInfo {
        let set = self.policies.load();
        let meta = self.policy_meta.load();
        PolicySetInfo {
            version: set.version().to_owned(),
            loaded_at: Some(prost_types::Timestamp::from(meta.loaded_at)),
            policy_ids: set.policy_ids(),
            files: set.files(),
            source: meta.source.display().to_string(),
        }
    }
}

/// Reloads on every SIGHUP until the process ends.
pub fn reload_on_sighup(state: Arc<GatewayState>) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    Ok(tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            let _ = state.reload_policies("SIGHUP").await;
        }
    }))
}

/// Reloads when a file in the policy directory changes. The returned watcher
/// must be kept alive for as long as watching should go on.
pub fn reload_on_change(state: Arc<GatewayState>) -> notify::Result<notify::RecommendedWatcher> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && !event.kind.is_access()
        {
            // Full channel: a reload is already due, which covers this change.
            let _ = tx.try_send(());
        }
    })?;
    let dir = state.policy_meta.load().source.clone();
    watcher.watch(&dir, notify::RecursiveMode::NonRecursive)?;
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            // Wait for the writes to settle.
            loop {
                match tokio::time::timeout(DEBOUNCE, rx.recv()).await {
                    Ok(Some(())) => continue,
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
            let _ = state.reload_policies("file change").await;
        }
    });
    Ok(watcher)
}

/// The `PolicyAdmin` service.
#[derive(Clone)]
pub struct PolicyAdminService(pub Arc<GatewayState>);

#[tonic::async_trait]
impl PolicyAdmin for PolicyAdminService {
    async fn reload_policies(
        &self,
        request: Request<ReloadPoliciesRequest>,
    ) -> Result<Response<ReloadPoliciesResponse>, Status> {
        let Admin(admin) = Admin::of(&request, "reload policies")?;
        match self
            .0
            .reload_policies(&format!("RPC by admin {admin}"))
            .await
        {
            Ok(reloaded) => Ok(Response::new(ReloadPoliciesResponse {
                changed: matches!(reloaded, Reloaded::Swapped { .. }),
                active: Some(self.0.policy_set_info()),
            })),
            Err(e) => Err(rejected(&e, self.0.policies.load().version())),
        }
    }

    async fn get_policy_set(
        &self,
        request: Request<GetPolicySetRequest>,
    ) -> Result<Response<PolicySetInfo>, Status> {
        xgate_tls::peer_identity(&request)?;
        Ok(Response::new(self.0.policy_set_info()))
    }
}

/// FAILED_PRECONDITION with one field violation per `file:line:column`.
fn rejected(e: &PolicyLoadError, active: &str) -> Status {
    let violations: Vec<Violation> = e
        .errors
        .iter()
        .map(|issue| {
            let place = if issue.line == 0 {
                issue.file.clone()
            } else {
                format!("{}:{}:{}", issue.file, issue.line, issue.column)
            };
            Violation::new(place, issue.message.clone())
        })
        .collect();
    let status = bad_request(Code::FailedPrecondition, &violations);
    Status::with_details(
        Code::FailedPrecondition,
        format!(
            "policy set rejected; {active} stays active: {}",
            status.message()
        ),
        status.details().to_vec().into(),
    )
}
