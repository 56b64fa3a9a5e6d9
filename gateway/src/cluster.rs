//! Replicas that share one gateway database know of each other: each one
//! heartbeats its instance id, address and policy-set version into the
//! store's `gateway_replicas` table every [`HEARTBEAT`], and
//! `PolicyAdmin.ClusterStatus` joins that table with the audit store's chain
//! heads so an operator sees every replica's policy set, last heartbeat and
//! chain head — and whether the live replicas agree on the policy set.
//!
//! Nothing here coordinates: a replica decides with its own policy set, and
//! the table only makes a disagreement (a reload that reached one replica
//! and not another) visible. With SQLite the "cluster" is the one gateway.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use xgate_proto::v1::{ClusterStatusResponse, ReplicaStatus};

use crate::audit::Auditor;
use crate::policy_admin::PolicyStore;
use crate::store::{Replica, Store, StoreError};

/// How often a replica reports itself.
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// A replica whose last heartbeat is older than this is not live (five
/// missed beats: a paused process or a slow database is not yet "gone").
pub const LIVE_WITHIN: Duration = Duration::from_secs(10);
/// Replicas silent this long are dropped from the table.
const FORGET_AFTER: Duration = Duration::from_secs(24 * 3600);

/// This replica, as it reports itself to the others.
pub struct Cluster {
    instance: String,
    address: String,
    started_at: SystemTime,
    store: Store,
    policies: Arc<PolicyStore>,
    auditor: Auditor,
    /// This replica's chain head as last read at a heartbeat: (entries, root).
    head: Mutex<Option<(u64, String)>>,
}

impl Cluster {
    pub fn new(
        address: String,
        store: Store,
        policies: Arc<PolicyStore>,
        auditor: Auditor,
    ) -> Arc<Cluster> {
        Arc::new(Cluster {
            instance: auditor.instance().to_owned(),
            address,
            started_at: SystemTime::now(),
            store,
            policies,
            auditor,
            head: Mutex::new(None),
        })
    }

    /// The instance id (the name of this replica's audit chain).
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Reports this replica now: its policy set and (read back from the
    /// audit store) its chain head.
    pub async fn beat(&self) -> Result<(), StoreError> {
        if let Some(mut heads) = self.chain_heads().await
            && let Ok(mut head) = self.head.lock()
        {
            *head = heads.remove(&self.instance);
        }
        let now = SystemTime::now();
        let me = Replica {
            instance: self.instance.clone(),
            address: self.address.clone(),
            policy_version: self.policies.current().version().to_owned(),
            started_at: self.started_at,
            last_seen: now,
        };
        self.store
            .beat_replica(&me, now.checked_sub(FORGET_AFTER).unwrap_or(now))
            .await
    }

    /// Heartbeats every [`HEARTBEAT`] until aborted. A failed beat is logged
    /// and retried at the next tick: the database being away is reported by
    /// the fetches that need it, not by this task.
    pub fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HEARTBEAT);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = me.beat().await {
                    tracing::warn!(error = %e, "cluster heartbeat failed");
                }
            }
        })
    }

    /// Leaves the table (a clean stop); a killed replica ages out instead.
    pub async fn leave(&self) {
        if let Err(e) = self.store.leave_replica(&self.instance).await {
            tracing::warn!(error = %e, "leaving the replica table failed");
        }
    }

    /// Every replica of the table with its chain head, and whether the live
    /// ones agree on the policy set. This replica is always listed with its
    /// current set, even before its first heartbeat lands.
    pub async fn status(&self) -> Result<ClusterStatusResponse, StoreError> {
        let now = SystemTime::now();
        let mut replicas = self.store.replicas().await?;
        let current = self.policies.current().version().to_owned();
        match replicas.iter_mut().find(|r| r.instance == self.instance) {
            Some(me) => me.policy_version.clone_from(&current),
            None => replicas.push(Replica {
                instance: self.instance.clone(),
                address: self.address.clone(),
                policy_version: current,
                started_at: self.started_at,
                last_seen: now,
            }),
        }
        let heads = self.chain_heads().await.unwrap_or_default();
        Ok(summarise(replicas, &heads, &self.instance, now))
    }

    /// Every chain's head (entries, root in hex) by instance, from the audit
    /// store — shared by the replicas in a replicated deployment, so every
    /// chain is there. `None` (logged) when the store cannot be read.
    async fn chain_heads(&self) -> Option<HashMap<String, (u64, String)>> {
        match self.auditor.store().chains().await {
            Ok(chains) => Some(
                chains
                    .into_iter()
                    .map(|c| (c.instance, (c.size, hex(&c.root))))
                    .collect(),
            ),
            Err(e) => {
                tracing::warn!(error = %e, "reading the audit chain heads failed");
                None
            }
        }
    }

    /// What `GET /health` on the metrics listener answers: this replica's
    /// instance, address, policy set and chain head, as JSON.
    pub fn health(&self) -> serde_json::Value {
        let set = self.policies.info();
        let head = self.head.lock().ok().and_then(|h| h.clone());
        serde_json::json!({
            "status": "serving",
            "instance": self.instance,
            "address": self.address,
            "policy_set": {
                "version": set.version,
                "loaded_at": set.loaded_at.map(|t| t.to_string()),
                "policies": set.policy_ids.len(),
            },
            "chain": head.map(|(size, root)| serde_json::json!({"size": size, "root": root})),
        })
    }
}

/// The response for `replicas` (ordered by instance) at `now`.
fn summarise(
    mut replicas: Vec<Replica>,
    heads: &HashMap<String, (u64, String)>,
    answered_by: &str,
    now: SystemTime,
) -> ClusterStatusResponse {
    replicas.sort_by(|a, b| a.instance.cmp(&b.instance));
    let live = |r: &Replica| {
        now.duration_since(r.last_seen)
            .map_or(true, |age| age <= LIVE_WITHIN)
    };
    let versions: BTreeSet<String> = replicas
        .iter()
        .filter(|r| live(r))
        .map(|r| r.policy_version.clone())
        .collect();
    ClusterStatusResponse {
        replicas: replicas
            .iter()
            .map(|r| {
                let (chain_size, chain_root) = heads.get(&r.instance).cloned().unwrap_or_default();
                ReplicaStatus {
                    instance: r.instance.clone(),
                    address: r.address.clone(),
                    policy_set_version: r.policy_version.clone(),
                    started_at: Some(r.started_at.into()),
                    last_heartbeat: Some(r.last_seen.into()),
                    live: live(r),
                    chain_size,
                    chain_root,
                }
            })
            .collect(),
        policy_sets_agree: versions.len() <= 1,
        policy_set_versions: versions.into_iter().collect(),
        answered_by: answered_by.to_owned(),
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn replica(instance: &str, version: &str, seen_secs_ago: u64, now: SystemTime) -> Replica {
        Replica {
            instance: instance.into(),
            address: format!("127.0.0.1:{}", instance.len()),
            policy_version: version.into(),
            started_at: now - Duration::from_secs(60),
            last_seen: now - Duration::from_secs(seen_secs_ago),
        }
    }

    #[test]
    fn live_replicas_with_two_policy_sets_disagree() {
        let now = SystemTime::now();
        let heads = HashMap::from([("gw-a".to_owned(), (7, "ab".to_owned()))]);
        let status = summarise(
            vec![
                replica("gw-b", "sha256:2", 1, now),
                replica("gw-a", "sha256:1", 0, now),
            ],
            &heads,
            "gw-a",
            now,
        );
        assert!(!status.policy_sets_agree);
        assert_eq!(status.policy_set_versions, ["sha256:1", "sha256:2"]);
        let names: Vec<_> = status
            .replicas
            .iter()
            .map(|r| r.instance.as_str())
            .collect();
        assert_eq!(names, ["gw-a", "gw-b"]);
        assert_eq!(
            (
                status.replicas[0].chain_size,
                status.replicas[0].chain_root.as_str()
            ),
            (7, "ab")
        );
        assert_eq!(status.replicas[1].chain_size, 0, "no head known for gw-b");
    }

    #[test]
    fn a_silent_replica_is_listed_but_does_not_count_against_agreement() {
        let now = SystemTime::now();
        let status = summarise(
            vec![
                replica("gw-a", "sha256:1", 0, now),
                replica("gw-old", "sha256:0", 11, now),
            ],
            &HashMap::new(),
            "gw-a",
            now,
        );
        assert!(status.policy_sets_agree);
        assert_eq!(status.policy_set_versions, ["sha256:1"]);
        assert_eq!(
            status.replicas.iter().map(|r| r.live).collect::<Vec<_>>(),
            [true, false]
        );
    }

    #[test]
    fn roots_are_lower_hex() {
        assert_eq!(hex(&[0x00, 0xab, 0x10]), "00ab10");
    }
}
