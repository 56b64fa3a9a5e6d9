//! The record cache and single-flight of adapter calls.
//!
//! The cache sits where the adapter would be called, after the policy
//! decision and quota and before the view and audit, so a hit is decided,
//! filtered and audited exactly as a miss. It holds, per (subject, record
//! type), the records once the gateway's schema and subject check passed
//! them, already parsed, so a hit is neither parsed nor checked again
//! (never an invalid answer, a department error, a timeout, nor NOT_FOUND:
//! a record created a minute ago must not stay invisible for the type's
//! freshness), for the type's catalog freshness. Types with `"cache": false`
//! in the catalog are never cached nor shared between fetches. The cache is
//! bounded by bytes: the weight of an entry is the size of its record JSON
//! as received plus its key (the parsed records take a small multiple of
//! that in memory).
//!
//! A registration change of a department ([`RecordCache::forget`]) drops
//! the cached records of its types at once, and an answer to a call that
//! was asked before the change is not cached after it: records of an
//! adapter that was replaced or removed are never served again.
//!
//! Concurrent misses of the same key make one adapter call: the first fetch
//! leads (its call runs in its own task, so a cancelled leader does not fail
//! the others), later ones follow and receive the leader's answer. The key
//! is per type, so N identical fetches of several types of one adapter make
//! one Lookup, and a fetch overlapping a running call only asks the adapter
//! for the types not already on their way.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;
use xgate_catalog::{RecordType, SubjectKind};

use crate::config::CacheConfig;
use crate::upstream::CallError;
use crate::upstream::lock;

/// What is cached about one subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub kind: SubjectKind,
    pub subject: String,
    pub record_type: String,
}

/// A cached answer: the checked records and where they came from.
#[derive(Debug)]
pub struct Entry {
    /// The checked records, shared by every hit.
    pub records: Arc<[serde_json::Value]>,
    /// Bytes of the records' JSON as the department sent it.
    pub json_bytes: usize,
    /// The endpoint that answered.
    pub endpoint: String,
    /// When the gateway received them.
    pub retrieved_at: SystemTime,
    /// `retrieved_at` on the monotonic clock (ages are measured on it).
    pub stored: Instant,
    /// The end of the type's freshness.
    pub fresh_until: Instant,
}

impl Entry {
    /// Bytes the entry counts for against `max_bytes`.
    fn weight(&self, key: &Key) -> u32 {
        let total =
            self.json_bytes + key.subject.len() + key.record_type.len() + self.endpoint.len();
        u32::try_from(total).unwrap_or(u32::MAX)
    }

    /// How old the answer is at `now`.
    pub fn age(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.stored)
    }
}

struct FreshnessExpiry;

impl moka::Expiry<Key, Arc<Entry>> for FreshnessExpiry {
    fn expire_after_create(
        &self,
        _key: &Key,
        value: &Arc<Entry>,
        created_at: Instant,
    ) -> Option<Duration> {
        Some(value.fresh_until.saturating_duration_since(created_at))
    }
}

/// One adapter call's outcome for one type, shared with the fetches that
/// waited for it.
pub type Shared<T> = Result<T, CallError>;

pub type Receiver<T> = watch::Receiver<Option<Shared<T>>>;

/// The calls in flight: key -> (flight id, the receiver followers clone).
type Flights<T> = Arc<Mutex<HashMap<Key, (u64, Receiver<T>)>>>;

/// Whether this fetch calls the adapter for a key or waits for the fetch
/// that already does.
pub enum Claim<T: Clone> {
    Lead(Flight<T>),
    Follow(Receiver<T>),
}

/// The record cache plus the calls in flight. `T` is what a call shares
/// (the fetch's judged answer).
pub struct RecordCache<T: Clone> {
    entries: Option<moka::future::Cache<Key, Arc<Entry>>>,
    flights: Flights<T>,
    serial: AtomicU64,
    /// Bumped by every [`RecordCache::forget`]; an answer asked for under
    /// an older epoch is not cached.
    epoch: AtomicU64,
}

impl<T: Clone + Send + Sync + 'static> RecordCache<T> {
    pub fn new(config: &CacheConfig) -> RecordCache<T> {
        let entries = config.enabled.then(|| {
            moka::future::Cache::builder()
                .max_capacity(config.max_bytes)
                .weigher(|key: &Key, entry: &Arc<Entry>| entry.weight(key))
                .expire_after(FreshnessExpiry)
                .support_invalidation_closures()
                .build()
        });
        RecordCache {
            entries,
            flights: Arc::new(Mutex::new(HashMap::new())),
            serial: AtomicU64::new(0),
            epoch: AtomicU64::new(0),
        }
    }

    /// Whether records of `rt` are cached (and their calls shared).
    pub fn caches(&self, rt: &RecordType) -> bool {
        self.entries.is_some() && rt.cache && !rt.freshness.is_zero()
    }

    /// The fresh entry of `key`, if any.
    pub async fn get(&self, key: &Key, now: Instant) -> Option<Arc<Entry>> {
        let entries = self.entries.as_ref()?;
        entries
            .get(key)
            .await
            .filter(|entry| now < entry.fresh_until)
    }

    /// The current epoch: take it before calling an adapter and give it
    /// to [`RecordCache::insert`].
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Drops every cached record of `record_types` (one department's types,
    /// whose registration changed). Entries are unreachable from the
    /// return on; answers of calls asked before it are not cached.
    pub fn forget(&self, record_types: Vec<String>) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        let Some(entries) = &self.entries else {
            return;
        };
        let gone =
            entries.invalidate_entries_if(move |key, _| record_types.contains(&key.record_type));
        if let Err(e) = gone {
            // Not expected (the cache is built with closures supported);
            // dropping everything is the safe fallback.
            tracing::warn!(error = %e, "cache: dropping every entry");
            entries.invalidate_all();
        }
    }

    /// Drops one subject's cached records of one type (the department
    /// corrected them); answers of calls asked before it are not cached.
    pub async fn forget_subject(&self, kind: SubjectKind, subject: &str, record_type: &str) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        if let Some(entries) = &self.entries {
            entries
                .invalidate(&Key {
                    kind,
                    subject: subject.to_owned(),
                    record_type: record_type.to_owned(),
                })
                .await;
        }
    }

    /// Caches checked records of `rt` (nothing when `rt` is not cached, or
    /// when a registration changed since `asked_in`, the [`epoch`] the call
    /// was made in).
    ///
    /// [`epoch`]: RecordCache::epoch
    pub async fn insert(&self, key: Key, rt: &RecordType, entry: Entry, asked_in: u64) {
        if !self.caches(rt) || entry.records.is_empty() || self.epoch() != asked_in {
            return;
        }
        if let Some(entries) = &self.entries {
            entries.insert(key, Arc::new(entry)).await;
            crate::metrics::metrics()
                .cache_bytes
                .set(i64::try_from(entries.weighted_size()).unwrap_or(i64::MAX));
        }
    }

    /// Becomes the leader of `key`'s call, or a follower of the one running.
    pub fn claim(&self, key: &Key) -> Claim<T> {
        let mut flights = lock(&self.flights);
        if let Some((_, rx)) = flights.get(key) {
            return Claim::Follow(rx.clone());
        }
        let (tx, rx) = watch::channel(None);
        let id = self.serial.fetch_add(1, Ordering::Relaxed);
        flights.insert(key.clone(), (id, rx));
        Claim::Lead(Flight {
            key: key.clone(),
            id,
            tx,
            flights: Arc::clone(&self.flights),
        })
    }

    /// Bytes held (approximate: the cache settles its counts lazily).
    pub fn weighted_size(&self) -> u64 {
        self.entries.as_ref().map_or(0, |e| e.weighted_size())
    }

    /// Settles pending evictions and counts (tests, metrics).
    pub async fn settle(&self) {
        if let Some(entries) = &self.entries {
            entries.run_pending_tasks().await;
        }
    }
}

/// A led call: completing it hands the outcome to every follower and ends
/// the flight; dropped before that, followers learn it was abandoned.
pub struct Flight<T> {
    key: Key,
    id: u64,
    tx: watch::Sender<Option<Shared<T>>>,
    flights: Flights<T>,
}

impl<T> Flight<T> {
    pub fn complete(self, outcome: Shared<T>) {
        self.tx.send_replace(Some(outcome));
        // Drop ends the flight.
    }
}

impl<T> Drop for Flight<T> {
    fn drop(&mut self) {
        if self.tx.borrow().is_none() {
            self.tx.send_replace(Some(Err(CallError::Unavailable(
                "the shared adapter call was abandoned".into(),
            ))));
        }
        let mut flights = lock(&self.flights);
        if flights.get(&self.key).is_some_and(|(id, _)| *id == self.id) {
            flights.remove(&self.key);
        }
    }
}

/// Waits (until `deadline`) for the leader's outcome.
pub async fn follow<T: Clone>(
    mut rx: Receiver<T>,
    deadline: Instant,
    budget: Duration,
) -> Shared<T> {
    match tokio::time::timeout_at(deadline.into(), rx.wait_for(Option::is_some)).await {
        Err(_) => Err(CallError::Timeout(budget)),
        Ok(Err(_)) => Err(CallError::Unavailable(
            "the shared adapter call was abandoned".into(),
        )),
        Ok(Ok(value)) => value
            .clone()
            .unwrap_or_else(|| Err(CallError::Unavailable("no answer was shared".into()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xgate_catalog::Catalog;

    fn key(subject: &str, record_type: &str) -> Key {
        Key {
            kind: SubjectKind::ResidentId,
            subject: subject.into(),
            record_type: record_type.into(),
        }
    }

    fn entry(bytes: usize, now: Instant, fresh: Duration) -> Entry {
        Entry {
            records: Arc::from(vec![serde_json::Value::Null]),
            json_bytes: bytes,
            endpoint: "https://127.0.0.1:1".into(),
            retrieved_at: SystemTime::now(),
            stored: now,
            fresh_until: now + fresh,
        }
    }

    fn cache(max_bytes: u64) -> RecordCache<u32> {
        RecordCache::new(&CacheConfig {
            enabled: true,
            max_bytes,
        })
    }

    #[test]
    fn weight_counts_records_and_key() {
        let k = key("341602197703051725", "driving_licence");
        let e = entry(1000, Instant::now(), Duration::from_secs(1));
        assert_eq!(
            e.weight(&k),
            1000 + 18 + "driving_licence".len() as u32 + e.endpoint.len() as u32
        );
    }

    #[tokio::test]
    async fn entries_are_served_for_the_freshness_only() {
        let catalog = Catalog::builtin().expect("catalog");
        let rt = catalog.record_type("driving_licence").expect("type");
        let c = cache(1 << 20);
        let now = Instant::now();
        let k = key("341602197703051725", &rt.id);
        c.insert(k.clone(), rt, entry(100, now, rt.freshness), 0)
            .await;
        let hit = c.get(&k, now).await.expect("hit");
        assert_eq!(
            hit.age(now + Duration::from_secs(3)),
            Duration::from_secs(3)
        );
        assert!(
            c.get(&k, now + rt.freshness - Duration::from_millis(1))
                .await
                .is_some()
        );
        assert!(c.get(&k, now + rt.freshness).await.is_none(), "stale");
        assert!(
            c.get(&key("11010519491231002X", &rt.id), now)
                .await
                .is_none()
        );
    }

    #[tokio::test]
    async fn opted_out_types_and_a_disabled_cache_keep_nothing() {
        let catalog = Catalog::builtin().expect("catalog");
        let secret = catalog
            .record_type("no_criminal_record_certificate")
            .expect("type");
        let c = cache(1 << 20);
        assert!(!c.caches(secret));
        let now = Instant::now();
        let k = key("341602197703051725", &secret.id);
        c.insert(k.clone(), secret, entry(100, now, secret.freshness), 0)
            .await;
        assert!(c.get(&k, now).await.is_none());

        let rt = catalog.record_type("driving_licence").expect("type");
        let off: RecordCache<u32> = RecordCache::new(&CacheConfig {
            enabled: false,
            max_bytes: 1 << 20,
        });
        assert!(!off.caches(rt));
        let k = key("341602197703051725", &rt.id);
        off.insert(k.clone(), rt, entry(100, now, rt.freshness), 0)
            .await;
        assert!(off.get(&k, now).await.is_none());
    }

    #[tokio::test]
    async fn the_byte_bound_evicts() {
        let catalog = Catalog::builtin().expect("catalog");
        let rt = catalog.record_type("driving_licence").expect("type");
        let c = cache(10_000);
        let now = Instant::now();
        for i in 0..50 {
            let k = key(&format!("subject-{i}"), &rt.id);
            c.insert(k, rt, entry(1_000, now, rt.freshness), 0).await;
        }
        c.settle().await;
        assert!(c.weighted_size() <= 10_000, "{}", c.weighted_size());
        let mut held = 0;
        for i in 0..50 {
            if c.get(&key(&format!("subject-{i}"), &rt.id), now)
                .await
                .is_some()
            {
                held += 1;
            }
        }
        assert!((1..=10).contains(&held), "{held} entries held");
    }

    #[tokio::test]
    async fn forget_drops_the_types_at_once_and_refuses_answers_asked_before() {
        let catalog = Catalog::builtin().expect("catalog");
        let licence = catalog.record_type("driving_licence").expect("type");
        let title = catalog.record_type("real_estate_title").expect("type");
        let c = cache(1 << 20);
        let now = Instant::now();
        let (kl, kt) = (
            key("341602197703051725", &licence.id),
            key("341602197703051725", &title.id),
        );
        let licence_in = |epoch| {
            let (c, kl) = (&c, kl.clone());
            async move {
                c.insert(kl, licence, entry(100, now, licence.freshness), epoch)
                    .await;
            }
        };
        let asked = c.epoch();
        licence_in(asked).await;
        c.insert(kt.clone(), title, entry(100, now, title.freshness), asked)
            .await;
        c.forget(vec![licence.id.clone()]);
        assert!(
            c.get(&kl, now).await.is_none(),
            "a forgotten type is served"
        );
        assert!(
            c.get(&kt, now).await.is_some(),
            "another department's type is dropped"
        );
        // an answer asked for before the change arrives after it
        licence_in(asked).await;
        assert!(c.get(&kl, now).await.is_none(), "a stale answer was cached");
        licence_in(c.epoch()).await;
        assert!(c.get(&kl, now).await.is_some());
    }

    #[tokio::test]
    async fn concurrent_claims_share_one_flight() {
        let c = cache(1 << 20);
        let k = key("341602197703051725", "driving_licence");
        let Claim::Lead(flight) = c.claim(&k) else {
            panic!("the first claim leads");
        };
        let followers: Vec<_> = (0..5)
            .map(|_| match c.claim(&k) {
                Claim::Follow(rx) => rx,
                Claim::Lead(_) => panic!("a second leader"),
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(10);
        let waiting = tokio::spawn(futures::future::join_all(
            followers
                .into_iter()
                .map(move |rx| follow(rx, deadline, Duration::from_secs(10))),
        ));
        flight.complete(Ok(7));
        let outcomes = waiting.await.expect("join");
        assert_eq!(outcomes, vec![Ok(7); 5]);
        // The flight ended: the next claim leads a new call.
        let Claim::Lead(again) = c.claim(&k) else {
            panic!("a finished flight is not followed");
        };
        let Claim::Follow(rx) = c.claim(&k) else {
            panic!("follows the new flight");
        };
        drop(again);
        assert!(matches!(
            follow(rx, deadline, Duration::from_secs(10)).await,
            Err(CallError::Unavailable(_))
        ));
    }
}
