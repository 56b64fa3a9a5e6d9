//! Hot reload of the policy set, and the `PolicyAdmin` service.
//!
//! The gateway state owns a [`PolicyStore`]; this module knows nothing else
//! of the state. Three triggers — SIGHUP, a change to a file in the policy
//! directory, and the `ReloadPolicies` RPC — all run [`PolicyStore::reload`]: load
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
    ClusterStatusRequest, ClusterStatusResponse, GetPolicySetRequest, PolicySetInfo,
    ReloadPoliciesRequest, ReloadPoliciesResponse,
};
use xgate_tls::role::{Admin, AdminOrAuditor, Role as _};

use arc_swap::ArcSwap;
use xgate_catalog::Catalog;

use crate::audit::{AdminEvent, Auditor};

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

/// The active policy set, where it came from, and how it is replaced.
pub struct PolicyStore {
    set: ArcSwap<PolicySet>,
    meta: ArcSwap<PolicyMeta>,
    /// Serialises reloads, so two triggers cannot swap out of order.
    reload_lock: tokio::sync::Mutex<()>,
    catalog: Arc<Catalog>,
    /// Where swaps and rejections are recorded.
    auditor: Auditor,
}

impl PolicyStore {
    pub fn new(set: PolicySet, dir: PathBuf, catalog: Arc<Catalog>, auditor: Auditor) -> Self {
        PolicyStore {
            set: ArcSwap::from_pointee(set),
            meta: ArcSwap::from_pointee(PolicyMeta {
                loaded_at: SystemTime::now(),
                source: dir,
            }),
            reload_lock: tokio::sync::Mutex::new(()),
            catalog,
            auditor,
        }
    }

    /// The active set; a fetch takes it once and decides everything with it.
    pub fn current(&self) -> Arc<PolicySet> {
        self.set.load_full()
    }

    /// The directory the set is loaded from.
    pub fn dir(&self) -> PathBuf {
        self.meta.load().source.clone()
    }

    /// Loads, validates and swaps in the policy directory's set; on error the
    /// running set stays. `trigger` names the cause in the log.
    pub async fn reload(&self, trigger: &str) -> Result<Reloaded, PolicyLoadError> {
        let _guard = self.reload_lock.lock().await;
        let dir = self.dir();
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
        let from = self.set.load().version().to_owned();
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
                self.set.store(Arc::new(set));
                let source = self.dir();
                self.meta.store(Arc::new(PolicyMeta {
                    loaded_at: SystemTime::now(),
                    source,
                }));
                tracing::info!(trigger, from, to, "policy set loaded");
                let policies = self.set.load().policy_ids().len();
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
    pub fn info(&self) -> PolicySetInfo {
        let set = self.set.load();
        let meta = self.meta.load();
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
pub fn reload_on_sighup(store: Arc<PolicyStore>) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    Ok(tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            let _ = store.reload("SIGHUP").await;
        }
    }))
}

/// Reloads when a file in the policy directory changes. The returned watcher
/// must be kept alive for as long as watching should go on.
pub fn reload_on_change(store: Arc<PolicyStore>) -> notify::Result<notify::RecommendedWatcher> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && !event.kind.is_access()
        {
            // Full channel: a reload is already due, which covers this change.
            let _ = tx.try_send(());
        }
    })?;
    let dir = store.dir();
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
            let _ = store.reload("file change").await;
        }
    });
    Ok(watcher)
}

/// The `PolicyAdmin` service.
#[derive(Clone)]
pub struct PolicyAdminService {
    pub policies: Arc<PolicyStore>,
    pub cluster: Arc<crate::cluster::Cluster>,
}

#[tonic::async_trait]
impl PolicyAdmin for PolicyAdminService {
    async fn reload_policies(
        &self,
        request: Request<ReloadPoliciesRequest>,
    ) -> Result<Response<ReloadPoliciesResponse>, Status> {
        let Admin(admin) = Admin::of(&request, "reload policies")?;
        match self.policies.reload(&format!("RPC by admin {admin}")).await {
            Ok(reloaded) => Ok(Response::new(ReloadPoliciesResponse {
                changed: matches!(reloaded, Reloaded::Swapped { .. }),
                active: Some(self.policies.info()),
            })),
            Err(e) => Err(rejected(&e, self.policies.current().version())),
        }
    }

    async fn get_policy_set(
        &self,
        request: Request<GetPolicySetRequest>,
    ) -> Result<Response<PolicySetInfo>, Status> {
        xgate_tls::peer_identity(&request)?;
        Ok(Response::new(self.policies.info()))
    }

    async fn cluster_status(
        &self,
        request: Request<ClusterStatusRequest>,
    ) -> Result<Response<ClusterStatusResponse>, Status> {
        AdminOrAuditor::of(&request, "read the cluster status")?;
        self.cluster.status().await.map(Response::new).map_err(|e| {
            tracing::error!(error = %e, "cluster status: reading the replica table failed");
            Status::unavailable(format!("the replica table cannot be read: {e}"))
        })
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
