//! The writer: group commit, periodic checkpoints, key rotation; and the
//! whole-log operations built on a store (verify, export).

use std::io::BufRead;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::Stream;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::AuditError;
use crate::entry::{Entry, NewEntry};
use crate::keys::{Keys, PublicKey, PublicKeys};
use crate::store::{Filter, Store};
use crate::verify::{ChainCheck, Checkpoint, KEY_ROTATED, VerifyReport};

/// Entries read per page when verifying or exporting.
const PAGE: usize = 10_000;
/// First and largest pause of the writer after a failed commit.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Tuning of the writer.
#[derive(Debug, Clone)]
pub struct Options {
    /// Most entries committed in one transaction.
    pub max_batch: usize,
    /// Pause between checkpoints; none when zero.
    pub checkpoint_interval: Duration,
    /// Gateway instance id written into each entry's `gateway` field.
    pub instance: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_batch: 5_000,
            checkpoint_interval: Duration::from_secs(60),
            instance: String::new(),
        }
    }
}

/// Where appended entries landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendReceipt {
    pub first_seq: u64,
    pub last_seq: u64,
}

type Reply<T> = oneshot::Sender<Result<T, AuditError>>;

enum Job {
    Append(Vec<NewEntry>, Reply<AppendReceipt>),
    Checkpoint(Reply<Option<Checkpoint>>),
}

/// The audit log of one gateway process.
pub struct AuditLog {
    store: Store,
    keys: Arc<RwLock<Keys>>,
    tx: mpsc::Sender<Job>,
    /// Entries appended but not yet committed (or failed).
    pending: Arc<AtomicUsize>,
    instance: String,
    tasks: Vec<JoinHandle<()>>,
}

impl AuditLog {
    /// Opens the store at `url` and starts the writer (and the checkpoint
    /// timer when `options.checkpoint_interval` is not zero).
    pub async fn open(url: &str, keys: Keys, options: Options) -> Result<AuditLog, AuditError> {
        let store = Store::open(url).await?;
        Ok(AuditLog::with_store(store, keys, options))
    }

    /// Starts the writer on an open store.
    pub fn with_store(store: Store, keys: Keys, options: Options) -> AuditLog {
        let keys = Arc::new(RwLock::new(keys));
        let (tx, rx) = mpsc::channel(4096);
        let pending = Arc::new(AtomicUsize::new(0));
        let mut tasks = vec![tokio::spawn(writer(
            store.clone(),
            Arc::clone(&keys),
            rx,
            options.max_batch.max(1),
            Arc::clone(&pending),
        ))];
        if !options.checkpoint_interval.is_zero() {
            let tx = tx.clone();
            let every = options.checkpoint_interval;
            tasks.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let (reply, rx) = oneshot::channel();
                    if tx.send(Job::Checkpoint(reply)).await.is_err() {
                        break;
                    }
                    if let Ok(Err(e)) = rx.await {
                        tracing::warn!(error = %e, "audit checkpoint failed");
                    }
                }
            }));
        }
        AuditLog {
            store,
            keys,
            tx,
            pending,
            instance: options.instance,
            tasks,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// This process's instance id.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Runs `f` with the keys (subject HMAC, public key).
    pub fn with_keys<T>(&self, f: impl FnOnce(&Keys) -> T) -> Option<T> {
        self.keys.read().ok().map(|k| f(&k))
    }

    /// Hex HMAC of a subject under the gateway's subject key.
    pub fn subject_hmac(&self, kind: &str, id: &str) -> String {
        self.with_keys(|k| k.subject_hmac(kind, id))
            .unwrap_or_default()
    }

    /// Every public key this gateway signed with.
    pub fn trusted(&self) -> PublicKeys {
        self.with_keys(Keys::trusted).unwrap_or_default()
    }

    /// Entries waiting to be committed (queued or in the batch being
    /// written), for the queue-depth gauge.
    pub fn queue_depth(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    /// Appends `entries`; resolves once the batch holding them committed.
    pub async fn append(&self, mut entries: Vec<NewEntry>) -> Result<AppendReceipt, AuditError> {
        if entries.is_empty() {
            return Ok(AppendReceipt {
                first_seq: 0,
                last_seq: 0,
            });
        }
        for e in &mut entries {
            if e.gateway.is_empty() {
                e.gateway.clone_from(&self.instance);
            }
        }
        let (reply, rx) = oneshot::channel();
        let n = entries.len();
        self.pending.fetch_add(n, Ordering::Relaxed);
        if self.tx.send(Job::Append(entries, reply)).await.is_err() {
            self.pending.fetch_sub(n, Ordering::Relaxed);
            return Err(AuditError::Unavailable("the audit writer stopped".into()));
        }
        rx.await
            .map_err(|_| AuditError::Unavailable("the audit writer stopped".into()))?
    }

    /// Writes a signed checkpoint of the current head now (`None`: empty log).
    pub async fn checkpoint(&self) -> Result<Option<Checkpoint>, AuditError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job::Checkpoint(reply))
            .await
            .map_err(|_| AuditError::Unavailable("the audit writer stopped".into()))?;
        rx.await
            .map_err(|_| AuditError::Unavailable("the audit writer stopped".into()))?
    }

    /// Replaces the signing key: logs the rotation (old and new public
    /// key), checkpoints it with the old key, then switches; later
    /// checkpoints use the new key. Returns the new public key.
    pub async fn rotate_key(&self) -> Result<PublicKey, AuditError> {
        let (new, old_public) = {
            let keys = self
                .keys
                .read()
                .map_err(|_| AuditError::Key("key lock poisoned".into()))?;
            (keys.rotated()?, keys.public_key())
        };
        let new_public = new.public_key();
        self.append(vec![NewEntry::admin(
            KEY_ROTATED,
            json!({"old_public_key": old_public.to_string(), "new_public_key": new_public.to_string()}),
        )])
        .await?;
        self.checkpoint().await?;
        {
            let mut keys = self
                .keys
                .write()
                .map_err(|_| AuditError::Key("key lock poisoned".into()))?;
            new.save_rotation(&keys)?;
            *keys = new;
        }
        Ok(new_public)
    }

    /// Verifies the whole store against this gateway's public keys.
    pub async fn verify(&self) -> Result<VerifyReport, AuditError> {
        verify_store(&self.store, &self.trusted()).await
    }

    /// Entries matching `filter` after `after_seq`, at most `limit`.
    pub async fn query(
        &self,
        filter: &Filter,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<Entry>, AuditError> {
        self.store.query(filter, after_seq, limit).await
    }

    /// Final checkpoint, stops the writer, closes the store.
    pub async fn close(self) {
        if let Err(e) = self.checkpoint().await {
            tracing::warn!(error = %e, "final audit checkpoint failed");
        }
        for t in &self.tasks {
            t.abort();
        }
        self.store.close().await;
    }
}

async fn writer(
    store: Store,
    keys: Arc<RwLock<Keys>>,
    mut rx: mpsc::Receiver<Job>,
    max_batch: usize,
    pending: Arc<AtomicUsize>,
) {
    let mut backoff = BACKOFF_MIN;
    let mut dirty = false;
    while let Some(job) = rx.recv().await {
        let mut checkpoints = Vec::new();
        let mut waiters = Vec::new();
        let mut bodies = Vec::new();
        let mut next = Some(job);
        // Group commit: take everything already queued, up to max_batch.
        while let Some(job) = next.take() {
            match job {
                Job::Append(entries, reply) => {
                    waiters.push((entries.len(), reply));
                    bodies.extend(entries);
                }
                Job::Checkpoint(reply) => checkpoints.push(reply),
            }
            if bodies.len() < max_batch {
                next = rx.try_recv().ok();
            }
        }
        if !bodies.is_empty() {
            let n = bodies.len();
            let appended = store.append(bodies).await;
            pending.fetch_sub(n, Ordering::Relaxed);
            match appended {
                Ok(entries) => {
                    dirty = true;
                    backoff = BACKOFF_MIN;
                    let mut it = entries.iter();
                    for (n, reply) in waiters {
                        let chunk: Vec<&Entry> = it.by_ref().take(n).collect();
                        let receipt = AppendReceipt {
                            first_seq: chunk.first().map_or(0, |e| e.seq),
                            last_seq: chunk.last().map_or(0, |e| e.seq),
                        };
                        let _ = reply.send(Ok(receipt));
                    }
                }
                Err(e) => {
                    let message = e.to_string();
                    tracing::error!(error = %message, "audit batch not committed; its records are withheld");
                    for (_, reply) in waiters {
                        let _ = reply.send(Err(AuditError::Unavailable(message.clone())));
                    }
                    // Let the store recover before the next attempt.
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
        for reply in checkpoints {
            let result = if dirty {
                let keys = Arc::clone(&keys);
                store
                    .checkpoint(move |m| {
                        let k = keys
                            .read()
                            .map_err(|_| AuditError::Key("key lock poisoned".into()))?;
                        Ok((k.public_key().to_string(), k.sign(m)))
                    })
                    .await
            } else {
                Ok(None)
            };
            if matches!(result, Ok(Some(_))) {
                dirty = false;
            }
            let _ = reply.send(result);
        }
    }
}

/// Verifies the store at `store` against `anchors`.
pub async fn verify_store(store: &Store, anchors: &PublicKeys) -> Result<VerifyReport, AuditError> {
    let mut check = ChainCheck::new(store.checkpoints().await?);
    let mut after = 0;
    loop {
        let page = match store.query(&Filter::default(), after, PAGE).await {
            Ok(page) => page,
            Err(AuditError::Corrupt { seq, message }) => {
                check.unreadable(seq, message);
                break;
            }
            Err(e) => return Err(e),
        };
        let Some(last) = page.last() else { break };
        after = last.seq;
        for e in &page {
            check.push(e);
        }
    }
    Ok(check.finish(anchors))
}

/// One line of an export.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
enum Line {
    Format(String),
    Checkpoint(Checkpoint),
    Entry(Box<Entry>),
}

/// The export format tag (first line).
pub const EXPORT_FORMAT: &str = "xgate-audit-export/1";

enum ExportState {
    Start,
    Checkpoints(Vec<Checkpoint>),
    Entries(u64),
    Done,
}

/// The whole log as JSON lines (no trailing newline): a format line, every
/// checkpoint, then every entry with its hashes — all offline verification
/// needs besides a public key.
pub fn export_lines(store: Store) -> impl Stream<Item = Result<Vec<String>, AuditError>> {
    futures::stream::unfold(ExportState::Start, move |state| {
        let store = store.clone();
        async move {
            let lines = |items: Vec<Line>| -> Result<Vec<String>, AuditError> {
                items
                    .iter()
                    .map(|l| serde_json::to_string(l).map_err(|e| AuditError::Io(e.into())))
                    .collect()
            };
            match state {
                ExportState::Done => None,
                ExportState::Start => match store.checkpoints().await {
                    Ok(cps) => Some((
                        lines(vec![Line::Format(EXPORT_FORMAT.into())]),
                        ExportState::Checkpoints(cps),
                    )),
                    Err(e) => Some((Err(e), ExportState::Done)),
                },
                ExportState::Checkpoints(cps) => Some((
                    lines(cps.into_iter().map(Line::Checkpoint).collect()),
                    ExportState::Entries(0),
                )),
                ExportState::Entries(after) => {
                    match store.query(&Filter::default(), after, PAGE).await {
                        Ok(page) if page.is_empty() => None,
                        Ok(page) => {
                            let last = page.last().map_or(after, |e| e.seq);
                            Some((
                                lines(page.into_iter().map(|e| Line::Entry(Box::new(e))).collect()),
                                ExportState::Entries(last),
                            ))
                        }
                        Err(e) => Some((Err(e), ExportState::Done)),
                    }
                }
            }
        }
    })
}

/// Verifies an export read from `reader`, trusting `anchors` (offline).
pub fn verify_export(
    reader: impl BufRead,
    anchors: &PublicKeys,
) -> Result<VerifyReport, AuditError> {
    let mut checkpoints = Vec::new();
    let mut check: Option<ChainCheck> = None;
    let mut saw_format = false;
    for (n, line) in reader.lines().enumerate() {
        let n = n as u64 + 1;
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed: Line = serde_json::from_str(&line).map_err(|e| AuditError::Export {
            line: n,
            message: e.to_string(),
        })?;
        match parsed {
            Line::Format(f) if f == EXPORT_FORMAT && n == 1 => saw_format = true,
            Line::Format(f) => {
                return Err(AuditError::Export {
                    line: n,
                    message: format!("unexpected format line `{f}`"),
                });
            }
            Line::Checkpoint(cp) if check.is_none() => checkpoints.push(cp),
            Line::Checkpoint(_) => {
                return Err(AuditError::Export {
                    line: n,
                    message: "checkpoints must precede the entries".into(),
                });
            }
            Line::Entry(e) => check
                .get_or_insert_with(|| ChainCheck::new(std::mem::take(&mut checkpoints)))
                .push(&e),
        }
    }
    if !saw_format {
        return Err(AuditError::Export {
            line: 1,
            message: format!("not an xgate audit export (no `{EXPORT_FORMAT}` line)"),
        });
    }
    Ok(check
        .unwrap_or_else(|| ChainCheck::new(checkpoints))
        .finish(anchors))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt as _;
    use sqlx::Connection as _;

    fn options() -> Options {
        Options {
            max_batch: 100,
            checkpoint_interval: Duration::ZERO,
            instance: "test".into(),
        }
    }

    fn access(i: usize, keys: &Keys) -> NewEntry {
        let mut e = NewEntry::access();
        e.request_id = format!("req-{i}");
        e.subject_hmac = keys.subject_hmac("resident_id", "341602197703051725");
        e.requester = if i.is_multiple_of(2) { "a" } else { "b" }.into();
        e.decision = "permit".into();
        e.status = "OK".into();
        e
    }

    /// A PostgreSQL database of its own, dropped by [`PgDb::drop_db`].
    struct PgDb {
        name: String,
    }

    const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";

    impl PgDb {
        async fn create() -> PgDb {
            let name = format!("xgate_audit_{}", uuid::Uuid::new_v4().simple());
            let mut conn = sqlx::PgConnection::connect(PG_ADMIN).await.expect("pg");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .expect("create db");
            PgDb { name }
        }
        fn url(&self) -> String {
            format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
        }
        async fn drop_db(self) {
            let mut conn = sqlx::PgConnection::connect(PG_ADMIN).await.expect("pg");
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE {} WITH (FORCE)",
                self.name
            )))
            .execute(&mut conn)
            .await
            .expect("drop db");
        }
    }

    async fn exec(store: &Store, sql: &'static str) {
        match store {
            Store::Sqlite(p) => sqlx::query(sql).execute(p).await.map(|_| ()),
            Store::Postgres(p) => sqlx::query(sql).execute(p).await.map(|_| ()),
        }
        .expect(sql);
    }

    /// Concurrent appends, a checkpoint, verification, and each kind of
    /// tampering with a row, detected and named.
    async fn behaves(url: &str) {
        let keys = Keys::generate().expect("keys");
        let log = Arc::new(AuditLog::open(url, keys, options()).await.expect("open"));
        let calls = (0..20).map(|c| {
            let log = Arc::clone(&log);
            async move {
                let batch = (0..5)
                    .map(|i| log.with_keys(|k| access(c * 5 + i, k)).expect("keys"))
                    .collect();
                log.append(batch).await.expect("append")
            }
        });
        let receipts = futures::future::join_all(calls).await;
        let mut seqs: Vec<u64> = receipts
            .iter()
            .flat_map(|r| r.first_seq..=r.last_seq)
            .collect();
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=100).collect::<Vec<_>>());
        let cp = log.checkpoint().await.expect("checkpoint").expect("some");
        assert_eq!(cp.entries, 100);
        assert!(
            log.checkpoint().await.expect("idle").is_none(),
            "nothing new"
        );
        let report = log.verify().await.expect("verify");
        assert!(report.is_ok(), "{report}");
        assert_eq!((report.entries, report.checkpoints_verified), (100, 1));

        // Filtered query.
        let filter = Filter {
            requester: Some("a".into()),
            ..Filter::default()
        };
        let a = log.query(&filter, 0, 1000).await.expect("query");
        assert_eq!(a.len(), 50);
        assert!(a.iter().all(|e| e.body.requester == "a"));

        // Export and verify offline, with only the public key.
        let lines: Vec<String> = export_lines(log.store().clone())
            .map(|r| r.expect("export"))
            .collect::<Vec<_>>()
            .await
            .concat();
        let text = lines.join("\n");
        let offline = verify_export(text.as_bytes(), &log.trusted()).expect("export verify");
        assert!(offline.is_ok(), "{offline}");
        assert_eq!(offline.entries, 100);
        let tampered = text.replacen("\"req-7\"", "\"req-X\"", 1);
        let offline = verify_export(tampered.as_bytes(), &log.trusted()).expect("parse");
        assert!(offline.first_bad.is_some());

        let store = log.store().clone();
        let anchors = log.trusted();
        let first_bad = || async {
            verify_store(&store, &anchors)
                .await
                .expect("verify")
                .first_bad
        };
        exec(
            &store,
            "UPDATE audit_entries SET purpose = 'X' WHERE seq = 40",
        )
        .await;
        let bad = first_bad().await.expect("edit");
        assert_eq!(bad.0, 40, "{bad:?}");
        exec(
            &store,
            "UPDATE audit_entries SET purpose = '' WHERE seq = 40",
        )
        .await;
        assert_eq!(first_bad().await, None);

        exec(
            &store,
            "UPDATE audit_entries SET seq = seq + 1000 WHERE seq IN (30, 31)",
        )
        .await;
        exec(&store, "UPDATE audit_entries SET seq = 31 WHERE seq = 1030").await;
        exec(&store, "UPDATE audit_entries SET seq = 30 WHERE seq = 1031").await;
        assert_eq!(first_bad().await.expect("reorder").0, 30);
        exec(
            &store,
            "UPDATE audit_entries SET seq = seq + 1000 WHERE seq IN (30, 31)",
        )
        .await;
        exec(&store, "UPDATE audit_entries SET seq = 31 WHERE seq = 1030").await;
        exec(&store, "UPDATE audit_entries SET seq = 30 WHERE seq = 1031").await;
        assert_eq!(first_bad().await, None);

        exec(&store, "DELETE FROM audit_entries WHERE seq = 100").await;
        assert_eq!(first_bad().await.expect("delete tail").0, 100);
        exec(&store, "DELETE FROM audit_entries WHERE seq = 20").await;
        assert_eq!(first_bad().await.expect("delete").0, 20);

        let log = Arc::into_inner(log).expect("sole owner");
        log.close().await;
    }

    #[tokio::test]
    async fn sqlite_store_behaves() {
        let dir = tempfile::tempdir().expect("tempdir");
        behaves(&format!("sqlite:{}", dir.path().join("audit.db").display())).await;
    }

    #[tokio::test]
    async fn postgres_store_behaves() {
        let db = PgDb::create().await;
        behaves(&db.url()).await;
        db.drop_db().await;
    }

    #[tokio::test]
    async fn two_writers_share_one_postgres_chain() {
        let db = PgDb::create().await;
        let a = AuditLog::open(&db.url(), Keys::generate().expect("k"), options())
            .await
            .expect("a");
        let b = AuditLog::open(&db.url(), Keys::generate().expect("k"), options())
            .await
            .expect("b");
        let ka = Keys::generate().expect("k");
        let writes = (0..40).map(|i| {
            let log = if i % 2 == 0 { &a } else { &b };
            let e = access(i, &ka);
            async move { log.append(vec![e.clone(), e]).await.expect("append") }
        });
        futures::future::join_all(writes).await;
        a.checkpoint().await.expect("cp a");
        b.append(vec![access(99, &ka)]).await.expect("append");
        b.checkpoint().await.expect("cp b");
        let mut anchors = a.trusted();
        anchors.0.extend(b.trusted().0);
        let report = verify_store(a.store(), &anchors).await.expect("verify");
        assert!(report.is_ok(), "{report}");
        assert_eq!((report.entries, report.checkpoints_verified), (81, 2));
        a.close().await;
        b.close().await;
        db.drop_db().await;
    }

    #[tokio::test]
    async fn chain_verifies_across_a_key_rotation_from_either_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = Keys::load_or_create(&dir.path().join("keys")).expect("keys");
        let first = keys.public_key();
        let url = format!("sqlite:{}", dir.path().join("audit.db").display());
        let log = AuditLog::open(&url, keys, options()).await.expect("open");
        log.append(vec![access(1, &Keys::generate().expect("k"))])
            .await
            .expect("append");
        let newest = log.rotate_key().await.expect("rotate");
        log.append(vec![access(2, &Keys::generate().expect("k"))])
            .await
            .expect("append");
        log.checkpoint().await.expect("cp");
        for anchor in [first, newest] {
            let report = verify_store(log.store(), &PublicKeys(vec![anchor]))
                .await
                .expect("verify");
            assert!(report.is_ok(), "{anchor}: {report}");
            assert_eq!(report.checkpoints_verified, 2);
        }
        let stranger = Keys::generate().expect("k").trusted();
        assert!(
            !verify_store(log.store(), &stranger)
                .await
                .expect("v")
                .is_ok()
        );
        log.close().await;
    }

    #[tokio::test]
    async fn a_failed_commit_fails_its_waiters_and_the_writer_recovers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite:{}", dir.path().join("audit.db").display());
        let keys = Keys::generate().expect("keys");
        let e = access(1, &keys);
        let log = AuditLog::open(&url, keys, options()).await.expect("open");
        exec(
            log.store(),
            "CREATE TRIGGER block BEFORE INSERT ON audit_entries BEGIN SELECT RAISE(ABORT, 'blocked'); END",
        )
        .await;
        let err = log.append(vec![e.clone()]).await.expect_err("blocked");
        assert!(matches!(err, AuditError::Unavailable(_)), "{err}");
        exec(log.store(), "DROP TRIGGER block").await;
        let receipt = log.append(vec![e]).await.expect("recovered");
        assert_eq!(receipt.first_seq, 1);
        log.close().await;
    }

    #[tokio::test]
    async fn queue_depth_counts_entries_until_their_batch_commits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite:{}", dir.path().join("audit.db").display());
        let keys = Keys::generate().expect("keys");
        let entries: Vec<NewEntry> = (0..3).map(|i| access(i, &keys)).collect();
        let log = Arc::new(AuditLog::open(&url, keys, options()).await.expect("open"));
        assert_eq!(log.queue_depth(), 0);
        // Another connection holds the write lock: the batch cannot commit.
        let mut blocker = sqlx::SqliteConnection::connect(&url)
            .await
            .expect("connect");
        sqlx::query("BEGIN EXCLUSIVE")
            .execute(&mut blocker)
            .await
            .expect("lock");
        let append = tokio::spawn({
            let log = Arc::clone(&log);
            async move { log.append(entries).await }
        });
        let mut seen = 0;
        for _ in 0..400 {
            seen = log.queue_depth();
            if seen == 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(seen, 3);
        sqlx::query("COMMIT")
            .execute(&mut blocker)
            .await
            .expect("unlock");
        append.await.expect("task").expect("committed");
        assert_eq!(log.queue_depth(), 0);
    }

    #[test]
    fn exports_without_the_format_line_are_refused() {
        let err = verify_export("{\"entry\":1}".as_bytes(), &PublicKeys::default())
            .expect_err("malformed");
        assert!(err.to_string().contains("line 1"), "{err}");
    }
}
