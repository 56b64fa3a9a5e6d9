//! The writer of one instance's chain: start-up checks, group commit with
//! a compare-and-set on the head, checkpoints, fail-closed tamper alarms.
//!
//! Work per answer is split so the single writer task does as little as
//! possible: the caller encodes the entry and computes its records digest
//! before the hand-off (one channel send per batch), the writer appends the
//! index, hashes the leaf and the tree nodes and commits, and the caller
//! signs its receipts after the commit, in parallel with the next batch.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::AuditError;
use crate::entry::{Kind, NewEntry, leaf_data};
use crate::keys::{
    ALARM_FILE, CHECKPOINT_FILE, InstanceLock, Keys, PublicKey, PublicKeys, SubjectKey,
};
use crate::merkle::{Frontier, Hash, empty_root, leaf_hash, root_at};
use crate::note::{SignedCheckpoint, TreeHead, sign};
use crate::receipt::Receipt;
use crate::store::{ChainHead, Expected, NewCheckpoint, Row, Store, WriteError};

/// The admin event written when an instance's key joins the trusted set.
pub const KEY_ADDED: &str = "audit_key_added";
/// First and largest pause of the writer after a failed commit.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Tuning of the writer.
#[derive(Debug, Clone)]
pub struct Options {
    /// Most entries committed in one transaction.
    pub max_batch: usize,
    /// Longest time the head stays without a checkpoint while it grows;
    /// zero: no timed checkpoints.
    pub checkpoint_interval: Duration,
    /// A checkpoint at least every this many entries; zero: none by count.
    pub checkpoint_every: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_batch: 5_000,
            checkpoint_interval: Duration::from_secs(1),
            checkpoint_every: 10_000,
        }
    }
}

/// An entry encoded by its caller, waiting for its index.
struct Sealed {
    encoded: Vec<u8>,
    /// [`NewEntry::records_digest`], for the receipt.
    digest: Hash,
    time_us: i64,
    kind: Kind,
    subject: Option<String>,
    requester: String,
    records: Vec<crate::rollup::RecordRow>,
}

type Reply<T> = oneshot::Sender<Result<T, AuditError>>;

enum Job {
    /// Entries in; one receipt per entry out.
    Append(Vec<Sealed>, Reply<Vec<Receipt>>),
    /// `force`: even if the head did not move since the last one.
    Checkpoint(bool, Reply<Option<SignedCheckpoint>>),
}

/// State the writer shares with the handle.
#[derive(Debug, Default)]
struct Shared {
    alarms: AtomicU64,
    /// Why appends are refused, once they are.
    failed_closed: Mutex<Option<String>>,
}

impl Shared {
    fn refused(&self) -> Option<String> {
        self.failed_closed.lock().ok().and_then(|g| g.clone())
    }
}

/// The audit log of one gateway instance.
pub struct AuditLog {
    store: Store,
    keys: Arc<Keys>,
    subject: SubjectKey,
    chain: ChainHead,
    tx: mpsc::Sender<Job>,
    /// Entries appended but not yet committed (or failed).
    pending: Arc<AtomicUsize>,
    shared: Arc<Shared>,
    key_added: Option<PublicKey>,
    _lock: Option<InstanceLock>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("instance", &self.chain.instance)
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Opens the store at `url` and starts the writer.
    pub async fn open(url: &str, keys: Keys, options: Options) -> Result<AuditLog, AuditError> {
        let store = Store::open(url).await?;
        AuditLog::with_store(store, keys, options).await
    }

    /// Starts the instance's writer on an open store: takes the instance
    /// lock, registers the chain and the key, reads the shared subject key,
    /// checks the stored chain against the last checkpoints (a mismatch
    /// fails closed at once), writes the start-up checkpoint.
    pub async fn with_store(
        store: Store,
        keys: Keys,
        options: Options,
    ) -> Result<AuditLog, AuditError> {
        let lock = keys.lock_instance()?;
        let instance = keys.instance().to_owned();
        let subject = store.subject_key(keys.legacy_subject()).await?;
        let chain = store.register_chain(&instance, empty_root()).await?;
        let key_added = store
            .register_key(&keys.public_key(), &instance)
            .await?
            .then(|| keys.public_key());
        let shared = Arc::new(Shared::default());
        let (frontier, last_nodes, problem) = load_head(&store, &chain, keys.dir()).await?;
        let keys = Arc::new(keys);
        let checkpoint_file = keys.dir().map(|d| d.join(CHECKPOINT_FILE));
        let alarm_file = keys.dir().map(|d| d.join(ALARM_FILE));
        // An alarm raised earlier holds until an operator removes its file.
        let problem = match alarm_file.as_ref().map(std::fs::read_to_string) {
            Some(Ok(text)) => Some(format!(
                "{} (remove `{}` after investigating to resume)",
                text.trim(),
                alarm_file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            )),
            _ => problem,
        };
        let mut writer = Writer {
            store: store.clone(),
            keys: Arc::clone(&keys),
            chain: chain.clone(),
            frontier,
            last_nodes,
            shared: Arc::clone(&shared),
            checkpointed: None,
            last_checkpoint: Instant::now(),
            uncertain: None,
            recovering: false,
            checkpoint_file,
            alarm_file,
            options: options.clone(),
        };
        if let Some(problem) = problem {
            writer.alarm(problem).await;
        }
        let (tx, rx) = mpsc::channel(4096);
        let pending = Arc::new(AtomicUsize::new(0));
        let tasks = vec![tokio::spawn(writer.run(rx, Arc::clone(&pending)))];
        let log = AuditLog {
            store,
            keys,
            subject,
            chain,
            tx,
            pending,
            shared,
            key_added,
            _lock: lock,
            tasks,
        };
        if let Some(key) = key_added {
            // Adding a key to the trusted set is itself on the record.
            let mut e = NewEntry::admin(
                KEY_ADDED,
                json!({"public_key": key.to_string(), "instance": log.chain.instance}),
            );
            e.requester = log.chain.instance.clone();
            if let Err(err) = log.append(vec![e]).await {
                tracing::error!(error = %err, "the key-added event was not logged");
            }
        }
        match log.job_checkpoint(true).await {
            Ok(_) => {}
            Err(AuditError::FailedClosed(why)) => {
                tracing::error!(reason = %why, "audit log failed closed at start-up");
            }
            Err(e) => tracing::warn!(error = %e, "start-up audit checkpoint failed"),
        }
        Ok(log)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// This instance's id (the name of its chain).
    pub fn instance(&self) -> &str {
        &self.chain.instance
    }

    /// This instance's public key.
    pub fn public_key(&self) -> PublicKey {
        self.keys.public_key()
    }

    /// The key this start added to the store's trusted set, if it was new
    /// (the log holds a [`KEY_ADDED`] entry for it).
    pub fn key_added(&self) -> Option<PublicKey> {
        self.key_added
    }

    /// Hex HMAC of a subject under the subject key all instances share.
    pub fn subject_hmac(&self, kind: &str, id: &str) -> String {
        self.subject.hmac(kind, id)
    }

    /// Every key registered in the store, and this instance's own.
    pub async fn trusted(&self) -> Result<PublicKeys, AuditError> {
        let mut keys = PublicKeys(
            self.store
                .keys()
                .await?
                .into_iter()
                .map(|(k, _)| k)
                .collect(),
        );
        keys.extend(&self.keys.trusted());
        Ok(keys)
    }

    /// Entries waiting to be committed (queued or in the batch being
    /// written), for the queue-depth gauge.
    pub fn queue_depth(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    /// Tamper alarms raised by this process (for a metric).
    pub fn alarms(&self) -> u64 {
        self.shared.alarms.load(Ordering::Relaxed)
    }

    /// Why appends are refused, when the log has failed closed.
    pub fn failed_closed(&self) -> Option<String> {
        self.shared.refused()
    }

    /// Appends one entry per answer; resolves once the batch holding them
    /// committed, with one signed receipt per entry, in order.
    pub async fn append(&self, entries: Vec<NewEntry>) -> Result<Vec<Receipt>, AuditError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(why) = self.shared.refused() {
            return Err(AuditError::FailedClosed(why));
        }
        let chain = self.chain.instance.as_str();
        let sealed: Vec<Sealed> = entries
            .into_iter()
            .map(|e| Sealed {
                digest: e.records_digest(),
                encoded: e.encode(chain),
                time_us: e.time_us,
                kind: e.kind,
                subject: (!e.subject_hmac.is_empty()).then_some(e.subject_hmac),
                requester: e.requester,
                records: e
                    .decisions
                    .into_iter()
                    .map(|d| crate::rollup::RecordRow {
                        record_type: d.record_type,
                        department: d.department,
                        verdict: d.verdict,
                        status: d.status,
                        latency_us: d.latency_us,
                    })
                    .collect(),
            })
            .collect();
        let n = sealed.len();
        let (reply, rx) = oneshot::channel();
        self.pending.fetch_add(n, Ordering::Relaxed);
        if self.tx.send(Job::Append(sealed, reply)).await.is_err() {
            self.pending.fetch_sub(n, Ordering::Relaxed);
            return Err(AuditError::Unavailable("the audit writer stopped".into()));
        }
        rx.await
            .map_err(|_| AuditError::Unavailable("the audit writer stopped".into()))?
    }

    async fn job_checkpoint(&self, force: bool) -> Result<Option<SignedCheckpoint>, AuditError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job::Checkpoint(force, reply))
            .await
            .map_err(|_| AuditError::Unavailable("the audit writer stopped".into()))?;
        rx.await
            .map_err(|_| AuditError::Unavailable("the audit writer stopped".into()))?
    }

    /// Writes a signed checkpoint of the head now if it moved since the
    /// last one (`None`: it did not).
    pub async fn checkpoint(&self) -> Result<Option<SignedCheckpoint>, AuditError> {
        self.job_checkpoint(false).await
    }

    /// Verifies the whole store against the store's registered keys and
    /// this instance's own.
    pub async fn verify(&self) -> Result<crate::VerifyReport, AuditError> {
        crate::verify_store(&self.store, &self.trusted().await?).await
    }

    /// Records matching `filter` after `after`, at most `limit`.
    pub async fn query(
        &self,
        filter: &crate::Filter,
        after: Option<crate::Cursor>,
        limit: usize,
    ) -> Result<Vec<crate::Record>, AuditError> {
        self.store.query(filter, after, limit).await
    }

    /// Final checkpoint, stops the writer, closes the store.
    pub async fn close(self) {
        match self.checkpoint().await {
            Ok(_) | Err(AuditError::FailedClosed(_)) => {}
            Err(e) => tracing::warn!(error = %e, "final audit checkpoint failed"),
        }
        for t in &self.tasks {
            t.abort();
        }
        self.store.close().await;
    }
}

/// Reads the chain's head: rebuilds the frontier from the stored tree
/// hashes and checks it against the head row, the last stored entry, the
/// latest checkpoint in the store and the one in the key directory.
/// Returns the problem found instead of failing: the log then starts
/// failed closed, so the gateway runs and reports it.
async fn load_head(
    store: &Store,
    chain: &ChainHead,
    dir: Option<&std::path::Path>,
) -> Result<(Frontier, Option<Vec<u8>>, Option<String>), AuditError> {
    let size = chain.size;
    let wanted = Frontier::subtrees(size);
    let stored = store.subtrees(chain.chain, &wanted).await?;
    let hashes: Option<Vec<Hash>> = wanted.iter().map(|w| stored.get(w).copied()).collect();
    let frontier = hashes.and_then(|h| Frontier::from_subtrees(size, h));
    let last = match size {
        0 => None,
        n => store.leaf(chain.chain, n - 1).await?.map(|r| r.nodes),
    };
    let Some(frontier) = frontier else {
        return Ok((
            Frontier::new(),
            None,
            Some(format!(
                "chain `{}`: entries below its head ({size}) are missing from the store",
                chain.instance
            )),
        ));
    };
    let mut problem = None;
    let last_index = store.last_index(chain.chain).await?;
    if frontier.root() != chain.root {
        problem = Some(format!(
            "chain `{}`: the stored tree hashes do not give the head row's root",
            chain.instance
        ));
    } else if last_index != size.checked_sub(1) {
        problem = Some(format!(
            "chain `{}`: the head row says {size} entries, the store's last is {}",
            chain.instance,
            last_index.map_or("none".to_owned(), |i| format!("index {i}"))
        ));
    }
    let mut known = Vec::new();
    if let Some(cp) = store.latest_checkpoint(chain.chain).await? {
        known.push(("the store's latest checkpoint".to_owned(), cp.size, cp.root));
    }
    if let Some(path) = dir.map(|d| d.join(CHECKPOINT_FILE))
        && let Ok(text) = std::fs::read_to_string(&path)
    {
        match SignedCheckpoint::parse(&text) {
            Ok(cp) if cp.head.instance() == Some(chain.instance.as_str()) => known.push((
                format!("the checkpoint in `{}`", path.display()),
                cp.head.size,
                cp.head.root,
            )),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, path = %path.display(), "unreadable local checkpoint")
            }
        }
    }
    for (what, cp_size, cp_root) in known {
        if problem.is_some() {
            break;
        }
        if cp_size > size {
            problem = Some(format!(
                "chain `{}` has {size} entries but {what} covers {cp_size}: entries were deleted",
                chain.instance
            ));
            continue;
        }
        let wanted = crate::merkle::root_subtrees(cp_size);
        let stored = store.subtrees(chain.chain, &wanted).await?;
        let root = root_at(cp_size, |l, k| stored.get(&(l, k)).copied());
        if root != Some(cp_root) {
            problem = Some(format!(
                "chain `{}` no longer extends {what} (size {cp_size}): entries were rewritten",
                chain.instance
            ));
        }
    }
    Ok((frontier, last, problem))
}

struct Writer {
    store: Store,
    keys: Arc<Keys>,
    chain: ChainHead,
    frontier: Frontier,
    /// Stored hashes of the last committed entry.
    last_nodes: Option<Vec<u8>>,
    shared: Arc<Shared>,
    /// Size of the last checkpoint written by this process.
    checkpointed: Option<u64>,
    last_checkpoint: Instant,
    /// The head a failed commit would have produced: a commit can fail
    /// after the store applied it, so that head is accepted too.
    uncertain: Option<(Frontier, Option<Vec<u8>>)>,
    /// A commit failed since the last success: checkpoint on recovery.
    recovering: bool,
    checkpoint_file: Option<PathBuf>,
    alarm_file: Option<PathBuf>,
    options: Options,
}

/// Appends every sealed entry to `frontier`; the rows and placements.
fn place(frontier: &mut Frontier, sealed: &[Sealed]) -> (Vec<Row>, Vec<(u64, Hash)>) {
    let mut rows = Vec::with_capacity(sealed.len());
    let mut placed = Vec::with_capacity(sealed.len());
    for s in sealed {
        let index = frontier.size();
        let data = leaf_data(&s.encoded, index);
        let leaf = leaf_hash(&data);
        let nodes = frontier.push(leaf).concat();
        placed.push((index, leaf));
        rows.push(Row {
            index,
            time_us: s.time_us,
            kind: s.kind,
            subject: s.subject.clone(),
            requester: s.requester.clone(),
            data,
            nodes,
            records: s.records.clone(),
        });
    }
    (rows, placed)
}

impl Writer {
    fn expected(&self) -> Expected {
        Expected {
            chain: self.chain.chain,
            size: self.frontier.size(),
            root: self.frontier.root(),
            last_nodes: self.last_nodes.clone(),
        }
    }

    async fn alarm(&mut self, message: String) {
        tracing::error!(instance = %self.chain.instance, alarm = %message, "audit tamper alarm: appends refused");
        self.shared.alarms.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut g) = self.shared.failed_closed.lock()
            && g.is_none()
        {
            *g = Some(message.clone());
        }
        if let Some(path) = &self.alarm_file
            && !path.exists()
            && let Err(e) = crate::keys::replace_file(path, message.as_bytes())
        {
            tracing::error!(error = %e, "the tamper alarm file could not be written");
        }
        if let Err(e) = self
            .store
            .record_alarm(&self.chain.instance, &message)
            .await
        {
            tracing::error!(error = %e, "the tamper alarm could not be stored");
        }
    }

    /// After a conflict: is the store's head the one an uncertain commit
    /// would have left? Then that commit did happen; adopt its head.
    async fn adopt_uncertain(&mut self) -> bool {
        let Some((frontier, last)) = self.uncertain.take() else {
            return false;
        };
        let heads = self.store.chains().await.unwrap_or_default();
        let matches = heads.iter().any(|h| {
            h.chain == self.chain.chain && h.size == frontier.size() && h.root == frontier.root()
        });
        if matches {
            self.frontier = frontier;
            self.last_nodes = last;
        }
        matches
    }

    fn conflict_message(&self) -> String {
        format!(
            "chain `{}`: the store's head is not the one this gateway committed last \
             (size {}): entries were deleted, inserted or rewritten while it ran",
            self.chain.instance,
            self.frontier.size()
        )
    }

    fn due_by_count(&self, size: u64) -> bool {
        self.options.checkpoint_every > 0
            && size - self.checkpointed.unwrap_or(0) >= self.options.checkpoint_every
    }

    fn signed(&self, frontier: &Frontier) -> SignedCheckpoint {
        sign(
            &TreeHead::new(&self.chain.instance, frontier.size(), frontier.root()),
            &self.keys,
        )
    }

    fn checkpoint_written(&mut self, cp: &SignedCheckpoint) {
        self.checkpointed = Some(cp.head.size);
        self.last_checkpoint = Instant::now();
        if let Some(path) = &self.checkpoint_file
            && let Err(e) = crate::keys::replace_file(path, cp.text.as_bytes())
        {
            tracing::warn!(error = %e, "the local checkpoint copy was not written");
        }
    }

    async fn append(&mut self, sealed: &[Sealed]) -> Result<Vec<(u64, Hash)>, AuditError> {
        if let Some(why) = self.shared.refused() {
            return Err(AuditError::FailedClosed(why));
        }
        for attempt in 0..2 {
            let expected = self.expected();
            let mut frontier = self.frontier.clone();
            let (rows, placed) = place(&mut frontier, sealed);
            let cp = self
                .due_by_count(frontier.size())
                .then(|| self.signed(&frontier));
            let new_cp = cp.as_ref().map(|c| NewCheckpoint {
                size: c.head.size,
                root: c.head.root,
                note: c.text.clone(),
            });
            let last = rows.last().map(|r| r.nodes.clone());
            let result = self
                .store
                .append(
                    &expected,
                    frontier.size(),
                    &frontier.root(),
                    &rows,
                    new_cp.as_ref(),
                )
                .await;
            match result {
                Ok(()) => {
                    self.frontier = frontier;
                    self.last_nodes = last;
                    self.uncertain = None;
                    if let Some(cp) = &cp {
                        self.checkpoint_written(cp);
                    }
                    if std::mem::take(&mut self.recovering)
                        && let Err(e) = self.checkpoint(true).await
                    {
                        tracing::warn!(error = %e, "recovery checkpoint failed");
                    }
                    return Ok(placed);
                }
                Err(WriteError::Conflict) if attempt == 0 && self.adopt_uncertain().await => {
                    continue;
                }
                Err(WriteError::Conflict) => {
                    let message = self.conflict_message();
                    self.alarm(message.clone()).await;
                    return Err(AuditError::FailedClosed(message));
                }
                Err(WriteError::Db(e)) => {
                    self.uncertain = Some((frontier, last));
                    self.recovering = true;
                    return Err(AuditError::Unavailable(e.to_string()));
                }
            }
        }
        Err(AuditError::Unavailable(
            "the audit head could not be settled".into(),
        ))
    }

    async fn checkpoint(&mut self, force: bool) -> Result<Option<SignedCheckpoint>, AuditError> {
        if let Some(why) = self.shared.refused() {
            return Err(AuditError::FailedClosed(why));
        }
        if !force && self.checkpointed == Some(self.frontier.size()) {
            return Ok(None);
        }
        for attempt in 0..2 {
            let cp = self.signed(&self.frontier);
            let new_cp = NewCheckpoint {
                size: cp.head.size,
                root: cp.head.root,
                note: cp.text.clone(),
            };
            match self.store.checkpoint(&self.expected(), &new_cp).await {
                Ok(()) => {
                    self.checkpoint_written(&cp);
                    return Ok(Some(cp));
                }
                Err(WriteError::Conflict) if attempt == 0 && self.adopt_uncertain().await => {
                    continue;
                }
                Err(WriteError::Conflict) => {
                    let message = self.conflict_message();
                    self.alarm(message.clone()).await;
                    return Err(AuditError::FailedClosed(message));
                }
                Err(WriteError::Db(e)) => return Err(AuditError::Unavailable(e.to_string())),
            }
        }
        Err(AuditError::Unavailable(
            "the audit head could not be settled".into(),
        ))
    }

    /// When the next timed checkpoint is due (the head moved since the last).
    fn checkpoint_deadline(&self) -> Option<Instant> {
        let interval = self.options.checkpoint_interval;
        (!interval.is_zero() && self.checkpointed != Some(self.frontier.size()))
            .then(|| self.last_checkpoint + interval)
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Job>, pending: Arc<AtomicUsize>) {
        let max_batch = self.options.max_batch.max(1);
        let mut backoff = BACKOFF_MIN;
        loop {
            let job = match self.checkpoint_deadline() {
                None => rx.recv().await,
                Some(at) => {
                    match tokio::time::timeout_at(at.into(), rx.recv()).await {
                        Ok(job) => job,
                        Err(_) => {
                            match self.checkpoint(false).await {
                                Ok(_) | Err(AuditError::FailedClosed(_)) => {}
                                Err(e) => {
                                    tracing::warn!(error = %e, "audit checkpoint failed");
                                    // Retry after another interval, not in a loop.
                                    self.last_checkpoint = Instant::now();
                                }
                            }
                            continue;
                        }
                    }
                }
            };
            let Some(job) = job else { break };
            let mut checkpoints = Vec::new();
            let mut waiters = Vec::new();
            let mut sealed = Vec::new();
            let mut next = Some(job);
            // Group commit: take everything already queued, up to max_batch.
            while let Some(job) = next.take() {
                match job {
                    Job::Append(entries, reply) => {
                        waiters.push((entries.len(), reply));
                        sealed.extend(entries);
                    }
                    Job::Checkpoint(force, reply) => checkpoints.push((force, reply)),
                }
                if sealed.len() < max_batch {
                    next = rx.try_recv().ok();
                }
            }
            if !sealed.is_empty() {
                let n = sealed.len();
                let result = self.append(&sealed).await;
                pending.fetch_sub(n, Ordering::Relaxed);
                match result {
                    Ok(placed) => {
                        backoff = BACKOFF_MIN;
                        // One signature for everything this commit appended.
                        let entries: Vec<(u64, Hash, Hash)> = placed
                            .into_iter()
                            .zip(&sealed)
                            .map(|((index, leaf), s)| (index, leaf, s.digest))
                            .collect();
                        let receipts =
                            Receipt::sign_batch(&self.keys, &self.chain.instance, &entries);
                        let mut it = receipts.into_iter();
                        for (n, reply) in waiters {
                            let _ = reply.send(Ok(it.by_ref().take(n).collect()));
                        }
                    }
                    Err(e) => {
                        let message = e.to_string();
                        let failed_closed = matches!(e, AuditError::FailedClosed(_));
                        if !failed_closed {
                            tracing::error!(error = %message, "audit batch not committed; its records are withheld");
                        }
                        for (_, reply) in waiters {
                            let err = if failed_closed {
                                AuditError::FailedClosed(message.clone())
                            } else {
                                AuditError::Unavailable(message.clone())
                            };
                            let _ = reply.send(Err(err));
                        }
                        if !failed_closed {
                            // Let the store recover before the next attempt.
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(BACKOFF_MAX);
                        }
                    }
                }
            }
            for (force, reply) in checkpoints {
                let _ = reply.send(self.checkpoint(force).await);
            }
        }
    }
}

#[cfg(test)]
mod tests;
