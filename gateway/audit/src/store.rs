//! The two stores, SQLite and PostgreSQL, with one behaviour: appends run in
//! one transaction that reads the head, links the batch and inserts it with
//! multi-row statements. On PostgreSQL a transaction-scoped advisory lock
//! serialises appends of several gateway processes, so `seq` is assigned
//! under it; on SQLite `BEGIN IMMEDIATE` does the same.

use std::str::FromStr as _;
use std::time::Duration;

use futures::TryStreamExt as _;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row as _};

use crate::AuditError;
use crate::entry::{Entry, GENESIS, Kind, NewEntry, decode_hash, link};
use crate::verify::Checkpoint;

/// Key of the PostgreSQL advisory lock that serialises appends ("xgat").
const APPEND_LOCK: i64 = 0x7867_6174;
/// The number of entry columns (`COLUMNS`).
const COLUMN_COUNT: usize = 24;
/// Rows per SQLite INSERT: under its 32766 bind limit at 24 columns.
const SQLITE_ROWS_PER_INSERT: usize = 1000;

/// Entry columns in table order (after `seq`).
const COLUMNS: &str = "seq, time_us, kind, gateway, request_id, trace_id, requester, operator_id, purpose, case_id, approval_item, subject_hmac, record_type, view, decision, policy_ids, policy_set_version, status, department, latency_us, event, detail, prev_hash, hash";

/// One entry as the row values, in `COLUMNS` order.
fn row_values(e: &Entry) -> [serde_json::Value; COLUMN_COUNT] {
    let n = &e.body;
    [
        to_i64(e.seq).into(),
        n.time_us.into(),
        n.kind.as_str().into(),
        n.gateway.as_str().into(),
        n.request_id.as_str().into(),
        n.trace_id.as_str().into(),
        n.requester.as_str().into(),
        n.operator_id.as_str().into(),
        n.purpose.as_str().into(),
        n.case_id.as_str().into(),
        n.approval_item.as_str().into(),
        n.subject_hmac.as_str().into(),
        n.record_type.as_str().into(),
        n.view.as_str().into(),
        n.decision.as_str().into(),
        serde_json::to_string(&n.policy_ids)
            .unwrap_or_default()
            .into(),
        n.policy_set_version.as_str().into(),
        n.status.as_str().into(),
        n.department.as_str().into(),
        to_i64(n.latency_us).into(),
        n.event.as_str().into(),
        n.detail.as_str().into(),
        e.prev_hash.as_str().into(),
        e.hash.as_str().into(),
    ]
}

/// Writing a batch of linked entries in one statement: binding ~24 values per
/// row costs more than the rest of an append together, so each backend gets
/// the whole batch through a handful of parameters instead.
trait InsertRows {
    async fn insert_rows(&mut self, entries: &[Entry]) -> Result<(), sqlx::Error>;
}

impl InsertRows for sqlx::SqliteConnection {
    /// Multi-row INSERTs of up to [`SQLITE_ROWS_PER_INSERT`] rows. (Tried: the
    /// whole batch as one JSON parameter unpacked by `json_each` — 2.6 times
    /// slower, the per-row `->>` extraction re-reads the row's JSON.)
    async fn insert_rows(&mut self, entries: &[Entry]) -> Result<(), sqlx::Error> {
        for chunk in entries.chunks(SQLITE_ROWS_PER_INSERT) {
            let mut qb = QueryBuilder::<sqlx::Sqlite>::new(format!(
                "INSERT INTO audit_entries ({COLUMNS}) "
            ));
            qb.push_values(chunk, |mut b, e| {
                for value in row_values(e) {
                    match value {
                        serde_json::Value::Number(n) => {
                            b.push_bind(n.as_i64().unwrap_or_default());
                        }
                        serde_json::Value::String(s) => {
                            b.push_bind(s);
                        }
                        other => {
                            b.push_bind(other.to_string());
                        }
                    }
                }
            });
            qb.build().execute(&mut *self).await?;
        }
        Ok(())
    }
}

impl InsertRows for sqlx::PgConnection {
    /// The batch as one array per column, zipped back into rows by `UNNEST`.
    async fn insert_rows(&mut self, entries: &[Entry]) -> Result<(), sqlx::Error> {
        let mut ints: [Vec<i64>; 3] = Default::default();
        let mut texts: Vec<Vec<String>> = (0..COLUMN_COUNT - 3)
            .map(|_| Vec::with_capacity(entries.len()))
            .collect();
        for e in entries {
            let mut t = 0;
            for (i, value) in row_values(e).into_iter().enumerate() {
                match (i, value) {
                    (0, v) => ints[0].push(v.as_i64().unwrap_or_default()),
                    (1, v) => ints[1].push(v.as_i64().unwrap_or_default()),
                    (19, v) => ints[2].push(v.as_i64().unwrap_or_default()),
                    (_, serde_json::Value::String(s)) => {
                        if let Some(column) = texts.get_mut(t) {
                            column.push(s);
                        }
                        t += 1;
                    }
                    (_, other) => {
                        if let Some(column) = texts.get_mut(t) {
                            column.push(other.to_string());
                        }
                        t += 1;
                    }
                }
            }
        }
        // Column order of COLUMNS: seq, time_us, 17 texts, latency_us, 4 texts.
        let mut params = Vec::with_capacity(COLUMN_COUNT);
        for i in 1..=COLUMN_COUNT {
            let ty = if i <= 2 || i == 20 { "int8" } else { "text" };
            params.push(format!("${i}::{ty}[]"));
        }
        let sql = format!(
            "INSERT INTO audit_entries ({COLUMNS}) SELECT * FROM UNNEST({})",
            params.join(", ")
        );
        let [seqs, times, latencies] = ints;
        let mut texts = texts.into_iter();
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(seqs).bind(times);
        for _ in 0..17 {
            query = query.bind(texts.next().unwrap_or_default());
        }
        query = query.bind(latencies);
        for column in texts {
            query = query.bind(column);
        }
        query.execute(self).await?;
        Ok(())
    }
}

/// Which entries a query selects; empty fields select everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub subject_hmac: Option<String>,
    pub requester: Option<String>,
    pub record_type: Option<String>,
    pub department: Option<String>,
    pub decision: Option<String>,
    pub kind: Option<Kind>,
    /// Inclusive lower bound, microseconds since the epoch.
    pub since_us: Option<i64>,
    /// Exclusive upper bound.
    pub until_us: Option<i64>,
}

/// An audit store.
#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same code on either pool, with `$db` naming the database type.
macro_rules! on_pool {
    ($store:expr, $pool:ident, $db:ident => $body:expr) => {
        match $store {
            Store::Sqlite($pool) => {
                #[allow(dead_code)]
                type $db = sqlx::Sqlite;
                $body
            }
            Store::Postgres($pool) => {
                #[allow(dead_code)]
                type $db = sqlx::Postgres;
                $body
            }
        }
    };
}

/// Inside [`on_pool!`]: begins the transaction every chain write runs in
/// (`BEGIN IMMEDIATE` on SQLite; the advisory append lock on PostgreSQL, so
/// several gateways take turns) and reads the head row `(seq, hash)` under it.
macro_rules! begin_at_head {
    ($store:expr, $pool:ident) => {{
        let mut tx = match $store {
            Store::Sqlite(_) => $pool.begin_with("BEGIN IMMEDIATE").await?,
            Store::Postgres(_) => $pool.begin().await?,
        };
        if matches!($store, Store::Postgres(_)) {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(APPEND_LOCK)
                .execute(&mut *tx)
                .await?;
        }
        let head = sqlx::query("SELECT seq, hash FROM audit_entries ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await?;
        (tx, head)
    }};
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// The URL without a password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}@{}", &url[..scheme + 3], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// SQLite's `synchronous` setting for the audit log (WAL mode either way).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSync {
    /// fsync at every commit: a committed entry survives power loss.
    #[default]
    Full,
    /// fsync only at WAL checkpoints: a committed entry survives a crash of
    /// the process, not of the machine; commits no longer wait on the disk.
    Normal,
}

impl Store {
    /// Opens `sqlite:PATH` (created if missing; WAL, synchronous=FULL) or
    /// `postgres://...`, and applies the backend's migrations.
    pub async fn open(url: &str) -> Result<Store, AuditError> {
        Store::open_with(url, SqliteSync::Full).await
    }

    /// [`Store::open`] with SQLite's `synchronous` setting chosen (ignored
    /// for PostgreSQL).
    pub async fn open_with(url: &str, sync: SqliteSync) -> Result<Store, AuditError> {
        let open = |source: sqlx::Error| AuditError::Open {
            url: redact(url),
            source,
        };
        let store = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(open)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(match sync {
                    SqliteSync::Full => SqliteSynchronous::Full,
                    SqliteSync::Normal => SqliteSynchronous::Normal,
                })
                .busy_timeout(Duration::from_secs(5));
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(5))
                .connect_with(options)
                .await
                .map_err(open)?;
            sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
            Store::Sqlite(pool)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options = PgConnectOptions::from_str(url).map_err(open)?;
            let pool = PgPoolOptions::new()
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(5))
                .connect_with(options)
                .await
                .map_err(open)?;
            sqlx::migrate!("./migrations/postgres").run(&pool).await?;
            Store::Postgres(pool)
        } else {
            return Err(AuditError::Url(redact(url)));
        };
        Ok(store)
    }

    pub async fn close(&self) {
        on_pool!(self, pool, _Db => pool.close().await)
    }

    /// Appends `bodies` in one transaction; returns them linked.
    pub async fn append(&self, bodies: Vec<NewEntry>) -> Result<Vec<Entry>, AuditError> {
        on_pool!(self, pool, Db => {
            let (mut tx, head) = begin_at_head!(self, pool);
            let (seq, hash) = match head {
                None => (0, GENESIS),
                Some(row) => {
                    let seq: i64 = row.try_get("seq")?;
                    let hash: String = row.try_get("hash")?;
                    let hash = decode_hash(&hash).ok_or(AuditError::Corrupt {
                        seq: to_u64(seq),
                        message: "stored hash is not 64 hex digits".into(),
                    })?;
                    (to_u64(seq), hash)
                }
            };
            let entries = link(seq, hash, bodies);
            InsertRows::insert_rows(&mut *tx, &entries).await?;
            tx.commit().await?;
            Ok(entries)
        })
    }

    /// Signs the current head with `sign` (giving the public key and the
    /// signature) and stores the checkpoint, under
    /// the append lock so the head cannot move meanwhile. `None` when empty.
    pub async fn checkpoint(
        &self,
        sign: impl FnOnce(&[u8]) -> Result<(String, Vec<u8>), AuditError>,
    ) -> Result<Option<Checkpoint>, AuditError> {
        on_pool!(self, pool, Db => {
            let (mut tx, head) = begin_at_head!(self, pool);
            let Some(row) = head else {
                return Ok(None);
            };
            let entries: i64 = row.try_get("seq")?;
            let head_hash: String = row.try_get("hash")?;
            let mut cp = Checkpoint {
                id: 0,
                entries: to_u64(entries),
                head_hash,
                time_us: crate::entry::now_us(),
                public_key: String::new(),
                signature: String::new(),
            };
            let (public_key, signature) = sign(&cp.message())?;
            cp.public_key = public_key;
            cp.signature = hex::encode(signature);
            let mut qb = QueryBuilder::<Db>::new(
                "INSERT INTO audit_checkpoints (entries, head_hash, time_us, public_key, signature) VALUES (",
            );
            qb.separated(", ")
                .push_bind(entries)
                .push_bind(cp.head_hash.clone())
                .push_bind(cp.time_us)
                .push_bind(cp.public_key.clone())
                .push_bind(cp.signature.clone());
            qb.push(") RETURNING id");
            let id: i64 = qb.build().fetch_one(&mut *tx).await?.try_get("id")?;
            cp.id = to_u64(id);
            tx.commit().await?;
            Ok(Some(cp))
        })
    }

    /// Entries matching `filter` with `seq > after_seq`, in seq order.
    pub async fn query(
        &self,
        filter: &Filter,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<Entry>, AuditError> {
        on_pool!(self, pool, Db => {
            let mut qb = QueryBuilder::<Db>::new(format!("SELECT {COLUMNS} FROM audit_entries WHERE seq > "));
            qb.push_bind(to_i64(after_seq));
            let text = [
                ("subject_hmac", &filter.subject_hmac),
                ("requester", &filter.requester),
                ("record_type", &filter.record_type),
                ("department", &filter.department),
                ("decision", &filter.decision),
            ];
            for (column, value) in text {
                if let Some(v) = value {
                    qb.push(format!(" AND {column} = ")).push_bind(v.clone());
                }
            }
            if let Some(kind) = filter.kind {
                qb.push(" AND kind = ").push_bind(kind.as_str());
            }
            if let Some(t) = filter.since_us {
                qb.push(" AND time_us >= ").push_bind(t);
            }
            if let Some(t) = filter.until_us {
                qb.push(" AND time_us < ").push_bind(t);
            }
            qb.push(" ORDER BY seq LIMIT ").push_bind(to_i64(limit as u64));
            let mut rows = qb.build().fetch(pool);
            let mut out = Vec::new();
            while let Some(row) = rows.try_next().await? {
                out.push(entry_of(&row)?);
            }
            Ok(out)
        })
    }

    /// Every checkpoint, oldest first.
    pub async fn checkpoints(&self) -> Result<Vec<Checkpoint>, AuditError> {
        on_pool!(self, pool, _Db => {
            let rows = sqlx::query(
                "SELECT id, entries, head_hash, time_us, public_key, signature FROM audit_checkpoints ORDER BY id",
            )
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(Checkpoint {
                        id: to_u64(row.try_get("id")?),
                        entries: to_u64(row.try_get("entries")?),
                        head_hash: row.try_get("head_hash")?,
                        time_us: row.try_get("time_us")?,
                        public_key: row.try_get("public_key")?,
                        signature: row.try_get("signature")?,
                    })
                })
                .collect()
        })
    }
}

fn entry_of<R>(row: &R) -> Result<Entry, AuditError>
where
    R: sqlx::Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let seq = to_u64(row.try_get::<i64, _>("seq")?);
    let kind: String = row.try_get("kind")?;
    let policy_ids: String = row.try_get("policy_ids")?;
    let corrupt = |message: String| AuditError::Corrupt { seq, message };
    let s = |c: &str| row.try_get::<String, _>(c);
    Ok(Entry {
        seq,
        body: NewEntry {
            time_us: row.try_get("time_us")?,
            kind: Kind::parse(&kind).ok_or_else(|| corrupt(format!("unknown kind `{kind}`")))?,
            gateway: s("gateway")?,
            request_id: s("request_id")?,
            trace_id: s("trace_id")?,
            requester: s("requester")?,
            operator_id: s("operator_id")?,
            purpose: s("purpose")?,
            case_id: s("case_id")?,
            approval_item: s("approval_item")?,
            subject_hmac: s("subject_hmac")?,
            record_type: s("record_type")?,
            view: s("view")?,
            decision: s("decision")?,
            policy_ids: serde_json::from_str(&policy_ids)
                .map_err(|e| corrupt(format!("policy_ids: {e}")))?,
            policy_set_version: s("policy_set_version")?,
            status: s("status")?,
            department: s("department")?,
            latency_us: to_u64(row.try_get("latency_us")?),
            event: s("event")?,
            detail: s("detail")?,
        },
        prev_hash: s("prev_hash")?,
        hash: s("hash")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_passwords_only() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u@h:5432/db"
        );
        assert_eq!(redact("sqlite:/tmp/a.db"), "sqlite:/tmp/a.db");
    }

    async fn synchronous_of(store: &Store) -> i64 {
        let Store::Sqlite(pool) = store else {
            panic!("a SQLite store")
        };
        sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(pool)
            .await
            .expect("pragma")
    }

    #[tokio::test]
    async fn sqlite_synchronous_is_full_unless_normal_is_asked_for() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = |name: &str| format!("sqlite:{}", dir.path().join(name).display());
        // SQLite's numbering: 1 = NORMAL, 2 = FULL.
        let full = Store::open(&url("full.db")).await.expect("open");
        assert_eq!(synchronous_of(&full).await, 2);
        let normal = Store::open_with(&url("normal.db"), SqliteSync::Normal)
            .await
            .expect("open");
        assert_eq!(synchronous_of(&normal).await, 1);
    }
}
