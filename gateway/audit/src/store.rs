//! The two stores, SQLite and PostgreSQL, with one behaviour.
//!
//! Tables (migrations `0002_audit_v2`): `audit_chains` (one head row per
//! chain), `audit_log` (one row per entry: leaf data and stored tree hashes
//! as blobs), `audit_records` (one narrow row per record decision, for
//! auditor queries), `audit_tree_checkpoints` (signed notes), `audit_keys`,
//! `audit_secrets`, `tamper_alarms`.
//!
//! An append is one transaction: a compare-and-set of the chain's head row
//! that also checks the chain's last stored entry is the one the writer
//! committed last, then the batch's entry rows and record rows in a few
//! statements (SQLite: cached multi-row INSERTs of fixed sizes; PostgreSQL:
//! one array per column through `UNNEST`), and the checkpoint when one is
//! due. Chains never share a row, so several gateways append to one
//! PostgreSQL store without a common lock.

use std::collections::HashMap;
use std::str::FromStr as _;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row as _};

use crate::AuditError;
use crate::entry::{Decision, Entry, Kind, Verdict, now_us};
use crate::keys::{PublicKey, SubjectKey};
use crate::merkle::{Hash, stored_at};

/// Bits of a gid that hold the index: chains of up to 2^40 entries, and
/// up to 2^23 chains.
pub const INDEX_BITS: u32 = 40;
/// Name of the shared subject key in `audit_secrets`.
const SUBJECT_SECRET: &str = "subject_hmac_key";
/// Row counts of the cached multi-row SQLite INSERTs, largest first.
const SQLITE_CHUNKS: [usize; 4] = [256, 32, 4, 1];

/// The global id of entry `index` of chain `chain`.
pub fn gid(chain: i64, index: u64) -> i64 {
    (chain << INDEX_BITS) | to_i64(index)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn hash_of(bytes: &[u8]) -> Option<Hash> {
    bytes.try_into().ok()
}

/// One embedded migration: version, description, SQL.
pub type EmbeddedMigration = (i64, &'static str, &'static str);

const SQLITE_MIGRATIONS: &[EmbeddedMigration] = &[
    (
        1,
        "audit",
        include_str!("../migrations/sqlite/0001_audit.sql"),
    ),
    (
        2,
        "audit v2",
        include_str!("../migrations/sqlite/0002_audit_v2.sql"),
    ),
    (
        3,
        "audit daily",
        include_str!("../migrations/sqlite/0003_audit_daily.sql"),
    ),
];

const PG_MIGRATIONS: &[EmbeddedMigration] = &[
    (
        1,
        "audit",
        include_str!("../migrations/postgres/0001_audit.sql"),
    ),
    (
        2,
        "audit v2",
        include_str!("../migrations/postgres/0002_audit_v2.sql"),
    ),
    (
        3,
        "audit daily",
        include_str!("../migrations/postgres/0003_audit_daily.sql"),
    ),
];

/// A sqlx migrator over migrations embedded with `include_str!`: what
/// `sqlx::migrate!` builds, without sqlx's proc-macro crate (which compiles
/// every database driver a second time, for the host, on a clean build).
/// Checksums are the file's SHA-384 either way, so databases migrated by the
/// macro stay valid.
pub fn embedded_migrator(migrations: &[EmbeddedMigration]) -> sqlx::migrate::Migrator {
    use sqlx::SqlSafeStr as _;
    sqlx::migrate::Migrator::with_migrations(
        migrations
            .iter()
            .map(|&(version, description, sql)| {
                sqlx::migrate::Migration::new(
                    version,
                    description.into(),
                    sqlx::migrate::MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
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

/// Which records a query selects; empty fields select everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub subject_hmac: Option<String>,
    pub requester: Option<String>,
    pub record_type: Option<String>,
    pub department: Option<String>,
    /// `permit` or `deny`.
    pub decision: Option<String>,
    pub kind: Option<Kind>,
    /// Inclusive lower bound, microseconds since the epoch.
    pub since_us: Option<i64>,
    /// Exclusive upper bound.
    pub until_us: Option<i64>,
}

/// A position in query order (time, entry, decision), for paging.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub time_us: i64,
    pub gid: i64,
    /// The decision's position, -1 for an entry without decisions.
    pub pos: i64,
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.time_us, self.gid, self.pos)
    }
}

impl std::str::FromStr for Cursor {
    type Err = AuditError;
    fn from_str(s: &str) -> Result<Cursor, AuditError> {
        let mut it = s.split('.').map(str::parse::<i64>);
        match (it.next(), it.next(), it.next(), it.next()) {
            (Some(Ok(time_us)), Some(Ok(gid)), Some(Ok(pos)), None) => {
                Ok(Cursor { time_us, gid, pos })
            }
            _ => Err(AuditError::Query(sqlx::Error::Protocol(format!(
                "`{s}` is not an audit page token"
            )))),
        }
    }
}

/// One record decision (or an entry without decisions) a query matched.
#[derive(Debug, Clone)]
pub struct Record {
    pub cursor: Cursor,
    pub entry: std::sync::Arc<Entry>,
    /// The decision's position in the entry; `None` for an admin event.
    pub position: Option<usize>,
}

impl Record {
    pub fn decision(&self) -> Option<&Decision> {
        self.entry.body.decisions.get(self.position?)
    }
}

/// A chain's head row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    /// The chain's number (the high bits of its gids).
    pub chain: i64,
    pub instance: String,
    pub size: u64,
    pub root: Hash,
}

/// A stored checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub id: i64,
    pub chain: i64,
    pub size: u64,
    pub root: Hash,
    pub time_us: i64,
    /// The signed note.
    pub note: String,
}

/// A stored entry row as read for verification or proofs.
#[derive(Debug, Clone)]
pub struct LeafRow {
    pub index: u64,
    pub data: Vec<u8>,
    pub nodes: Vec<u8>,
}

/// A raised tamper alarm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alarm {
    pub instance: String,
    pub time_us: i64,
    pub message: String,
}

/// What the writer expects the store's head of its chain to be.
#[derive(Debug, Clone)]
pub(crate) struct Expected {
    pub chain: i64,
    pub size: u64,
    pub root: Hash,
    /// Stored hashes of the last entry (`None` for an empty chain).
    pub last_nodes: Option<Vec<u8>>,
}

/// One entry of a batch, ready to insert.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub index: u64,
    pub time_us: i64,
    pub kind: Kind,
    pub subject: Option<String>,
    pub requester: String,
    pub data: Vec<u8>,
    pub nodes: Vec<u8>,
    /// One per decision.
    pub records: Vec<crate::rollup::RecordRow>,
}

/// A checkpoint to insert.
#[derive(Debug, Clone)]
pub(crate) struct NewCheckpoint {
    pub size: u64,
    pub root: Hash,
    pub note: String,
}

/// Why a chain write did not happen.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WriteError {
    /// The store's head is not the one expected: someone else wrote,
    /// truncated or rewrote the chain.
    #[error("the store's chain head is not the one this writer committed")]
    Conflict,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
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

/// Inserts a checkpoint row (inside the append transaction).
macro_rules! insert_checkpoint {
    ($tx:expr, $chain:expr, $cp:expr) => {
        sqlx::query(
            "INSERT INTO audit_tree_checkpoints (chain, size, root, time_us, note) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind($chain)
        .bind(to_i64($cp.size))
        .bind($cp.root.to_vec())
        .bind(now_us())
        .bind($cp.note.as_str())
        .execute($tx)
        .await?
    };
}
/// The head compare-and-set: moves the head from `expected` to the new
/// size and root only if the chain's last stored entry is the expected one.
const CAS_SQLITE: &str = "UPDATE audit_chains SET size = ?1, root = ?2 \
     WHERE chain = ?3 AND size = ?4 AND root = ?5 \
     AND (SELECT max(gid) FROM audit_log WHERE gid >= ?6 AND gid < ?7) IS ?8 \
     AND (SELECT nodes FROM audit_log WHERE gid = ?8) IS ?9";
const CAS_POSTGRES: &str = "UPDATE audit_chains SET size = $1, root = $2 \
     WHERE chain = $3 AND size = $4 AND root = $5 \
     AND (SELECT max(gid) FROM audit_log WHERE gid >= $6 AND gid < $7) IS NOT DISTINCT FROM $8::int8 \
     AND (SELECT nodes FROM audit_log WHERE gid = $8::int8) IS NOT DISTINCT FROM $9::bytea";

/// The multi-row INSERT of `rows` entry rows for SQLite.
fn sqlite_log_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO audit_log (gid, time_us, kind, subject, requester, data, nodes) VALUES ",
    );
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str("(?,?,?,?,?,?,?)");
    }
    sql
}

fn sqlite_records_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO audit_records (gid, pos, record_type, department, decision) VALUES ",
    );
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str("(?,?,?,?,?)");
    }
    sql
}

/// Splits `n` items into the fixed chunk sizes (so every statement text
/// repeats and stays in sqlx's prepared-statement cache).
fn chunk_sizes(mut n: usize) -> Vec<usize> {
    let mut out = Vec::new();
    for size in SQLITE_CHUNKS {
        while n >= size {
            out.push(size);
            n -= size;
        }
    }
    out
}

impl Store {
    /// Opens `sqlite:PATH` (created if missing; WAL, synchronous=FULL) or
    /// `postgres://...`, and applies the backend's migrations.
    pub async fn open(url: &str) -> Result<Store, AuditError> {
        Store::open_with(url, SqliteSync::Full).await
    }

    /// [`Store::open`] with SQLite's `synchronous` setting chosen (ignored
    /// for PostgreSQL). A store holding a v1 log is refused.
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
            embedded_migrator(SQLITE_MIGRATIONS).run(&pool).await?;
            Store::Sqlite(pool)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options = PgConnectOptions::from_str(url).map_err(open)?;
            let pool = PgPoolOptions::new()
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(5))
                .connect_with(options)
                .await
                .map_err(open)?;
            embedded_migrator(PG_MIGRATIONS).run(&pool).await?;
            Store::Postgres(pool)
        } else {
            return Err(AuditError::Url(redact(url)));
        };
        let v1: i64 = on_pool!(&store, pool, _Db => {
            sqlx::query_scalar("SELECT count(*) FROM (SELECT 1 FROM audit_entries LIMIT 1) AS v1")
                .fetch_one(pool)
                .await?
        });
        if v1 > 0 {
            store.close().await;
            return Err(AuditError::V1Store(redact(url)));
        }
        Ok(store)
    }

    pub async fn close(&self) {
        on_pool!(self, pool, _Db => pool.close().await)
    }

    /// The head row of `instance`'s chain, created (empty) if missing.
    pub(crate) async fn register_chain(
        &self,
        instance: &str,
        empty_root: Hash,
    ) -> Result<ChainHead, AuditError> {
        on_pool!(self, pool, _Db => {
            sqlx::query("INSERT INTO audit_chains (instance, size, root) VALUES ($1, 0, $2) ON CONFLICT (instance) DO NOTHING")
                .bind(instance)
                .bind(empty_root.to_vec())
                .execute(pool)
                .await?;
        });
        self.chains()
            .await?
            .into_iter()
            .find(|c| c.instance == instance)
            .ok_or_else(|| AuditError::Unavailable("the chain row vanished".into()))
    }

    /// Every chain's head row, by chain number.
    pub async fn chains(&self) -> Result<Vec<ChainHead>, AuditError> {
        on_pool!(self, pool, _Db => {
            let rows = sqlx::query("SELECT chain, instance, size, root FROM audit_chains ORDER BY chain")
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|row| {
                    let chain: i64 = row.try_get("chain")?;
                    let root: Vec<u8> = row.try_get("root")?;
                    Ok(ChainHead {
                        chain,
                        instance: row.try_get("instance")?,
                        size: to_u64(row.try_get("size")?),
                        root: hash_of(&root).ok_or(AuditError::Corrupt {
                            chain: chain.to_string(),
                            index: 0,
                            message: "the head row's root is not 32 bytes".into(),
                        })?,
                    })
                })
                .collect()
        })
    }

    /// Adds `key` of `instance` to the trusted set; true if it was new.
    pub(crate) async fn register_key(
        &self,
        key: &PublicKey,
        instance: &str,
    ) -> Result<bool, AuditError> {
        let done = on_pool!(self, pool, _Db => {
            sqlx::query("INSERT INTO audit_keys (public_key, instance, added_us) VALUES ($1, $2, $3) ON CONFLICT (public_key) DO NOTHING")
                .bind(key.0.to_vec())
                .bind(instance)
                .bind(now_us())
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done == 1)
    }

    /// Every registered signing key with its instance.
    pub async fn keys(&self) -> Result<Vec<(PublicKey, String)>, AuditError> {
        on_pool!(self, pool, _Db => {
            let rows = sqlx::query("SELECT public_key, instance FROM audit_keys ORDER BY added_us")
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|row| {
                    let key: Vec<u8> = row.try_get("public_key")?;
                    let key = hash_of(&key).map(PublicKey).ok_or_else(|| {
                        AuditError::Key("a stored public key is not 32 bytes".into())
                    })?;
                    Ok((key, row.try_get("instance")?))
                })
                .collect()
        })
    }

    /// The subject key every instance shares: created on first use (from
    /// `seed`, a pre-v2 key file, when given, so old subject hashes stay
    /// searchable), then read by everyone.
    pub(crate) async fn subject_key(&self, seed: Option<&[u8]>) -> Result<SubjectKey, AuditError> {
        let fresh = match seed {
            Some(s) => s.to_vec(),
            None => SubjectKey::random_bytes()?.to_vec(),
        };
        let value: Vec<u8> = on_pool!(self, pool, _Db => {
            sqlx::query("INSERT INTO audit_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
                .bind(SUBJECT_SECRET)
                .bind(fresh)
                .execute(pool)
                .await?;
            sqlx::query_scalar("SELECT value FROM audit_secrets WHERE name = $1")
                .bind(SUBJECT_SECRET)
                .fetch_one(pool)
                .await?
        });
        Ok(SubjectKey::new(&value))
    }

    /// Appends `rows` (and `checkpoint`) to a chain whose head must be
    /// `expected`; moves the head to `(new_size, new_root)`.
    pub(crate) async fn append(
        &self,
        expected: &Expected,
        new_size: u64,
        new_root: &Hash,
        rows: &[Row],
        checkpoint: Option<&NewCheckpoint>,
    ) -> Result<(), WriteError> {
        match self {
            Store::Sqlite(pool) => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                cas_sqlite(&mut tx, expected, new_size, new_root).await?;
                insert_sqlite(&mut tx, expected.chain, rows).await?;
                if let Some(cp) = checkpoint {
                    insert_checkpoint!(&mut *tx, expected.chain, cp);
                }
                tx.commit().await?;
            }
            Store::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                cas_postgres(&mut tx, expected, new_size, new_root).await?;
                insert_postgres(&mut tx, expected.chain, rows).await?;
                if let Some(cp) = checkpoint {
                    insert_checkpoint!(&mut *tx, expected.chain, cp);
                }
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// Stores `checkpoint` if the chain's head is still `expected`.
    pub(crate) async fn checkpoint(
        &self,
        expected: &Expected,
        checkpoint: &NewCheckpoint,
    ) -> Result<(), WriteError> {
        self.append(
            expected,
            expected.size,
            &expected.root,
            &[],
            Some(checkpoint),
        )
        .await
    }

    /// Records a tamper alarm (in its own transaction).
    pub(crate) async fn record_alarm(
        &self,
        instance: &str,
        message: &str,
    ) -> Result<(), AuditError> {
        on_pool!(self, pool, _Db => {
            sqlx::query("INSERT INTO tamper_alarms (instance, time_us, message) VALUES ($1, $2, $3)")
                .bind(instance)
                .bind(now_us())
                .bind(message)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Every recorded tamper alarm, oldest first.
    pub async fn alarms(&self) -> Result<Vec<Alarm>, AuditError> {
        on_pool!(self, pool, _Db => {
            let rows = sqlx::query("SELECT instance, time_us, message FROM tamper_alarms ORDER BY id")
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|row| {
                    Ok(Alarm {
                        instance: row.try_get("instance")?,
                        time_us: row.try_get("time_us")?,
                        message: row.try_get("message")?,
                    })
                })
                .collect()
        })
    }

    /// Stored subtree hashes of `chain` (see [`crate::merkle`]), read in one
    /// query; missing ones are absent from the map.
    pub async fn subtrees(
        &self,
        chain: i64,
        wanted: &[(u32, u64)],
    ) -> Result<HashMap<(u32, u64), Hash>, AuditError> {
        if wanted.is_empty() {
            return Ok(HashMap::new());
        }
        let gids: Vec<i64> = wanted
            .iter()
            .map(|(l, k)| gid(chain, stored_at(*l, *k).0))
            .collect();
        let rows: Vec<(i64, Vec<u8>)> = on_pool!(self, pool, Db => {
            let mut qb = QueryBuilder::<Db>::new("SELECT gid, nodes FROM audit_log WHERE gid IN (");
            let mut list = qb.separated(", ");
            for g in &gids {
                list.push_bind(*g);
            }
            qb.push(")");
            let rows = qb.build().fetch_all(pool).await?;
            rows.iter()
                .map(|r| Ok((r.try_get("gid")?, r.try_get("nodes")?)))
                .collect::<Result<_, sqlx::Error>>()?
        });
        let by_gid: HashMap<i64, Vec<u8>> = rows.into_iter().collect();
        let mut out = HashMap::new();
        for (l, k) in wanted {
            let (leaf, pos) = stored_at(*l, *k);
            let hash = by_gid
                .get(&gid(chain, leaf))
                .and_then(|nodes| nodes.get(pos * 32..pos * 32 + 32))
                .and_then(hash_of);
            if let Some(h) = hash {
                out.insert((*l, *k), h);
            }
        }
        Ok(out)
    }

    /// Checkpoints of `chain` (every chain when `None`), oldest first.
    pub async fn checkpoints(
        &self,
        chain: Option<i64>,
    ) -> Result<Vec<StoredCheckpoint>, AuditError> {
        on_pool!(self, pool, Db => {
            let mut qb = QueryBuilder::<Db>::new(
                "SELECT id, chain, size, root, time_us, note FROM audit_tree_checkpoints",
            );
            if let Some(c) = chain {
                qb.push(" WHERE chain = ").push_bind(c);
            }
            qb.push(" ORDER BY id");
            let rows = qb.build().fetch_all(pool).await?;
            rows.iter().map(checkpoint_of).collect()
        })
    }

    /// The latest checkpoint of `chain`.
    pub async fn latest_checkpoint(
        &self,
        chain: i64,
    ) -> Result<Option<StoredCheckpoint>, AuditError> {
        on_pool!(self, pool, _Db => {
            let row = sqlx::query(
                "SELECT id, chain, size, root, time_us, note FROM audit_tree_checkpoints WHERE chain = $1 ORDER BY size DESC, id DESC LIMIT 1",
            )
            .bind(chain)
            .fetch_optional(pool)
            .await?;
            row.as_ref().map(checkpoint_of).transpose()
        })
    }

    /// Up to `limit` entry rows of `chain` from index `from`, in order.
    pub async fn leaves(
        &self,
        chain: i64,
        from: u64,
        limit: usize,
    ) -> Result<Vec<LeafRow>, AuditError> {
        let lo = gid(chain, from);
        let hi = gid(chain + 1, 0);
        on_pool!(self, pool, _Db => {
            let rows = sqlx::query(
                "SELECT gid, data, nodes FROM audit_log WHERE gid >= $1 AND gid < $2 ORDER BY gid LIMIT $3",
            )
            .bind(lo)
            .bind(hi)
            .bind(to_i64(limit as u64))
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| {
                    let g: i64 = row.try_get("gid")?;
                    Ok(LeafRow {
                        index: to_u64(g - (chain << INDEX_BITS)),
                        data: row.try_get("data")?,
                        nodes: row.try_get("nodes")?,
                    })
                })
                .collect()
        })
    }

    /// The entry row at `index` of `chain`.
    pub async fn leaf(&self, chain: i64, index: u64) -> Result<Option<LeafRow>, AuditError> {
        let rows = self.leaves(chain, index, 1).await?;
        Ok(rows.into_iter().find(|r| r.index == index))
    }

    /// The highest stored index of `chain`.
    pub async fn last_index(&self, chain: i64) -> Result<Option<u64>, AuditError> {
        let max: Option<i64> = on_pool!(self, pool, _Db => {
            sqlx::query_scalar("SELECT max(gid) FROM audit_log WHERE gid >= $1 AND gid < $2")
                .bind(gid(chain, 0))
                .bind(gid(chain + 1, 0))
                .fetch_one(pool)
                .await?
        });
        Ok(max.map(|g| to_u64(g - (chain << INDEX_BITS))))
    }

    /// The daily counts ([`crate::rollup`]) from day `since_day` on, summed
    /// over the days, of one department or (`""`) all.
    pub async fn daily_counts(
        &self,
        department: &str,
        since_day: i64,
    ) -> Result<crate::rollup::WindowCounts, AuditError> {
        const STATUSES: &str = "SELECT department, record_type, status, CAST(SUM(count) AS BIGINT)
             FROM audit_daily WHERE day >= $1 AND ($2 = '' OR department = $2)
             GROUP BY department, record_type, status";
        const LATENCIES: &str = "SELECT department, record_type, bucket, CAST(SUM(count) AS BIGINT)
             FROM audit_daily_latency WHERE day >= $1 AND ($2 = '' OR department = $2)
             GROUP BY department, record_type, bucket";
        let counts = on_pool!(self, pool, Db => crate::rollup::WindowCounts {
            statuses: sqlx::query_as(STATUSES).bind(since_day).bind(department).fetch_all(pool).await?,
            latencies: sqlx::query_as(LATENCIES).bind(since_day).bind(department).fetch_all(pool).await?,
        });
        Ok(counts)
    }

    /// Records matching `filter` after `after`, in (time, entry, position)
    /// order, at most `limit`. Entries are decoded from their stored leaf
    /// data; the index table only finds them.
    pub async fn query(
        &self,
        filter: &Filter,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<Record>, AuditError> {
        let decision = match &filter.decision {
            None => None,
            Some(d) => Some(
                Verdict::parse(d)
                    .ok_or_else(|| {
                        AuditError::Query(sqlx::Error::Protocol(format!(
                            "decision `{d}` is neither `permit` nor `deny`"
                        )))
                    })?
                    .code(),
            ),
        };
        let rows: Vec<(i64, i64, i64, Vec<u8>)> = on_pool!(self, pool, Db => {
            let mut qb = QueryBuilder::<Db>::new(
                "SELECT e.time_us, e.gid, COALESCE(r.pos, -1) AS pos, e.data FROM audit_log e LEFT JOIN audit_records r ON r.gid = e.gid WHERE 1 = 1",
            );
            if let Some(c) = after {
                qb.push(" AND (e.time_us, e.gid, COALESCE(r.pos, -1)) > (")
                    .push_bind(c.time_us)
                    .push(", ")
                    .push_bind(c.gid)
                    .push(", ")
                    .push_bind(c.pos)
                    .push(")");
            }
            if let Some(v) = &filter.subject_hmac {
                qb.push(" AND e.subject = ").push_bind(v.clone());
            }
            if let Some(v) = &filter.requester {
                qb.push(" AND e.requester = ").push_bind(v.clone());
            }
            if let Some(v) = &filter.record_type {
                qb.push(" AND r.record_type = ").push_bind(v.clone());
            }
            if let Some(v) = &filter.department {
                qb.push(" AND r.department = ").push_bind(v.clone());
            }
            if let Some(v) = decision {
                qb.push(" AND r.decision = ").push_bind(v);
            }
            if let Some(k) = filter.kind {
                qb.push(" AND e.kind = ").push_bind(k.code());
            }
            if let Some(t) = filter.since_us {
                qb.push(" AND e.time_us >= ").push_bind(t);
            }
            if let Some(t) = filter.until_us {
                qb.push(" AND e.time_us < ").push_bind(t);
            }
            qb.push(" ORDER BY e.time_us, e.gid, COALESCE(r.pos, -1) LIMIT ")
                .push_bind(to_i64(limit as u64));
            let rows = qb.build().fetch_all(pool).await?;
            rows.iter()
                .map(|r| Ok((r.try_get("time_us")?, r.try_get("gid")?, r.try_get("pos")?, r.try_get("data")?)))
                .collect::<Result<_, sqlx::Error>>()?
        });
        let mut decoded: HashMap<i64, std::sync::Arc<Entry>> = HashMap::new();
        let mut out = Vec::with_capacity(rows.len());
        for (time_us, g, pos, data) in rows {
            let entry = match decoded.get(&g) {
                Some(e) => std::sync::Arc::clone(e),
                None => {
                    let e = std::sync::Arc::new(Entry::decode(&data).map_err(|e| {
                        AuditError::Corrupt {
                            chain: (g >> INDEX_BITS).to_string(),
                            index: to_u64(g & ((1 << INDEX_BITS) - 1)),
                            message: e.to_string(),
                        }
                    })?);
                    decoded.insert(g, std::sync::Arc::clone(&e));
                    e
                }
            };
            out.push(Record {
                cursor: Cursor {
                    time_us,
                    gid: g,
                    pos,
                },
                entry,
                position: usize::try_from(pos).ok(),
            });
        }
        Ok(out)
    }
}

fn checkpoint_of<R>(row: &R) -> Result<StoredCheckpoint, AuditError>
where
    R: sqlx::Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Vec<u8>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let chain: i64 = row.try_get("chain")?;
    let root: Vec<u8> = row.try_get("root")?;
    Ok(StoredCheckpoint {
        id: row.try_get("id")?,
        chain,
        size: to_u64(row.try_get("size")?),
        root: hash_of(&root).ok_or(AuditError::Corrupt {
            chain: chain.to_string(),
            index: 0,
            message: "a checkpoint root is not 32 bytes".into(),
        })?,
        time_us: row.try_get("time_us")?,
        note: row.try_get("note")?,
    })
}

/// The gid and stored hashes of the expected last entry.
fn expected_last(e: &Expected) -> (Option<i64>, Option<Vec<u8>>) {
    match e.size {
        0 => (None, None),
        n => (Some(gid(e.chain, n - 1)), e.last_nodes.clone()),
    }
}

async fn cas_sqlite(
    tx: &mut sqlx::SqliteConnection,
    e: &Expected,
    new_size: u64,
    new_root: &Hash,
) -> Result<(), WriteError> {
    let (last, nodes) = expected_last(e);
    let done = sqlx::query(CAS_SQLITE)
        .bind(to_i64(new_size))
        .bind(new_root.to_vec())
        .bind(e.chain)
        .bind(to_i64(e.size))
        .bind(e.root.to_vec())
        .bind(gid(e.chain, 0))
        .bind(gid(e.chain + 1, 0))
        .bind(last)
        .bind(nodes)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if done == 1 {
        Ok(())
    } else {
        Err(WriteError::Conflict)
    }
}

async fn cas_postgres(
    tx: &mut sqlx::PgConnection,
    e: &Expected,
    new_size: u64,
    new_root: &Hash,
) -> Result<(), WriteError> {
    let (last, nodes) = expected_last(e);
    let done = sqlx::query(CAS_POSTGRES)
        .bind(to_i64(new_size))
        .bind(new_root.to_vec())
        .bind(e.chain)
        .bind(to_i64(e.size))
        .bind(e.root.to_vec())
        .bind(gid(e.chain, 0))
        .bind(gid(e.chain + 1, 0))
        .bind(last)
        .bind(nodes)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if done == 1 {
        Ok(())
    } else {
        Err(WriteError::Conflict)
    }
}

async fn insert_sqlite(
    tx: &mut sqlx::SqliteConnection,
    chain: i64,
    rows: &[Row],
) -> Result<(), sqlx::Error> {
    let mut rest = rows;
    for n in chunk_sizes(rows.len()) {
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        let sql = sqlite_log_sql(n);
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for r in chunk {
            q = q
                .bind(gid(chain, r.index))
                .bind(r.time_us)
                .bind(r.kind.code())
                .bind(r.subject.as_deref())
                .bind(r.requester.as_str())
                .bind(r.data.as_slice())
                .bind(r.nodes.as_slice());
        }
        q.execute(&mut *tx).await?;
    }
    clear_stale_sqlite(tx, chain, rows).await?;
    let records: Vec<(i64, i64, &crate::rollup::RecordRow)> = rows
        .iter()
        .flat_map(|r| {
            r.records
                .iter()
                .enumerate()
                .map(move |(pos, rec)| (gid(chain, r.index), pos as i64, rec))
        })
        .collect();
    let mut rest = records.as_slice();
    for n in chunk_sizes(records.len()) {
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sqlite_records_sql(n)));
        for (g, pos, r) in chunk {
            q = q
                .bind(*g)
                .bind(*pos)
                .bind(r.record_type.as_str())
                .bind(r.department.as_str())
                .bind(r.verdict.code());
        }
        q.execute(&mut *tx).await?;
    }
    let daily = daily_counts(rows);
    let mut rest = daily.statuses.as_slice();
    for n in chunk_sizes(rest.len()) {
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sqlite_daily_sql(
            "audit_daily",
            "status",
            n,
        )));
        for (k, count) in chunk {
            q = q
                .bind(k.day)
                .bind(k.department.as_str())
                .bind(k.record_type.as_str())
                .bind(k.status.as_str())
                .bind(*count);
        }
        q.execute(&mut *tx).await?;
    }
    let mut rest = daily.latencies.as_slice();
    for n in chunk_sizes(rest.len()) {
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sqlite_daily_sql(
            "audit_daily_latency",
            "bucket",
            n,
        )));
        for (k, count) in chunk {
            q = q
                .bind(k.day)
                .bind(k.department.as_str())
                .bind(k.record_type.as_str())
                .bind(k.bucket)
                .bind(*count);
        }
        q.execute(&mut *tx).await?;
    }
    Ok(())
}

/// The batch's access decisions counted for `audit_daily` and
/// `audit_daily_latency`.
fn daily_counts(rows: &[Row]) -> crate::rollup::Daily {
    crate::rollup::aggregate(
        rows.iter()
            .filter(|r| r.kind == Kind::Access)
            .flat_map(|r| r.records.iter().map(move |d| (r.time_us, d))),
    )
}

/// Adds counts to `table` keyed by (day, department, record type, `key`):
/// the multi-row upsert for SQLite (both names are this module's constants).
fn sqlite_daily_sql(table: &str, key: &str, rows: usize) -> String {
    let mut sql =
        format!("INSERT INTO {table} (day, department, record_type, {key}, count) VALUES ");
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str("(?,?,?,?,?)");
    }
    sql.push_str(&format!(
        " ON CONFLICT (day, department, record_type, {key}) DO UPDATE SET count = {table}.count + excluded.count"
    ));
    sql
}

/// Index rows left behind by deleted entries would collide (and mislead
/// queries): the batch's gid range is cleared first (normally a no-op
/// range probe).
async fn clear_stale_sqlite(
    tx: &mut sqlx::SqliteConnection,
    chain: i64,
    rows: &[Row],
) -> Result<(), sqlx::Error> {
    if let (Some(first), Some(last)) = (rows.first(), rows.last()) {
        sqlx::query("DELETE FROM audit_records WHERE gid >= ?1 AND gid <= ?2")
            .bind(gid(chain, first.index))
            .bind(gid(chain, last.index))
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

async fn insert_postgres(
    tx: &mut sqlx::PgConnection,
    chain: i64,
    rows: &[Row],
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let n = rows.len();
    let (mut gids, mut times, mut kinds, mut subjects, mut requesters, mut data, mut nodes) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut r_gids, mut r_pos, mut r_types, mut r_depts, mut r_decisions) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for r in rows {
        let g = gid(chain, r.index);
        gids.push(g);
        times.push(r.time_us);
        kinds.push(r.kind.code());
        subjects.push(r.subject.as_deref());
        requesters.push(r.requester.as_str());
        data.push(r.data.as_slice());
        nodes.push(r.nodes.as_slice());
        for (pos, d) in r.records.iter().enumerate() {
            r_gids.push(g);
            r_pos.push(pos as i64);
            r_types.push(d.record_type.as_str());
            r_depts.push(d.department.as_str());
            r_decisions.push(d.verdict.code());
        }
    }
    sqlx::query(
        "INSERT INTO audit_log (gid, time_us, kind, subject, requester, data, nodes) \
         SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::int2[], $4::text[], $5::text[], $6::bytea[], $7::bytea[])",
    )
    .bind(gids)
    .bind(times)
    .bind(kinds)
    .bind(subjects)
    .bind(requesters)
    .bind(data)
    .bind(nodes)
    .execute(&mut *tx)
    .await?;
    if let (Some(first), Some(last)) = (rows.first(), rows.last()) {
        // Index rows left behind by deleted entries would collide (and
        // mislead queries): the batch's gid range is cleared first.
        sqlx::query("DELETE FROM audit_records WHERE gid >= $1 AND gid <= $2")
            .bind(gid(chain, first.index))
            .bind(gid(chain, last.index))
            .execute(&mut *tx)
            .await?;
    }
    if !r_gids.is_empty() {
        sqlx::query(
            "INSERT INTO audit_records (gid, pos, record_type, department, decision) \
             SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::text[], $4::text[], $5::int2[])",
        )
        .bind(r_gids)
        .bind(r_pos)
        .bind(r_types)
        .bind(r_depts)
        .bind(r_decisions)
        .execute(&mut *tx)
        .await?;
    }
    // Keys are distinct (aggregated), as one upsert statement needs.
    let daily = daily_counts(rows);
    if !daily.statuses.is_empty() {
        let (mut days, mut depts, mut types, mut statuses, mut counts) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (k, n) in &daily.statuses {
            days.push(k.day);
            depts.push(k.department.as_str());
            types.push(k.record_type.as_str());
            statuses.push(k.status.as_str());
            counts.push(*n);
        }
        sqlx::query(
            "INSERT INTO audit_daily (day, department, record_type, status, count) \
             SELECT * FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::text[], $5::int8[]) \
             ON CONFLICT (day, department, record_type, status) \
             DO UPDATE SET count = audit_daily.count + excluded.count",
        )
        .bind(days)
        .bind(depts)
        .bind(types)
        .bind(statuses)
        .bind(counts)
        .execute(&mut *tx)
        .await?;
    }
    if !daily.latencies.is_empty() {
        let (mut days, mut depts, mut types, mut buckets, mut counts) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (k, n) in &daily.latencies {
            days.push(k.day);
            depts.push(k.department.as_str());
            types.push(k.record_type.as_str());
            buckets.push(k.bucket);
            counts.push(*n);
        }
        sqlx::query(
            "INSERT INTO audit_daily_latency (day, department, record_type, bucket, count) \
             SELECT * FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::int8[], $5::int8[]) \
             ON CONFLICT (day, department, record_type, bucket) \
             DO UPDATE SET count = audit_daily_latency.count + excluded.count",
        )
        .bind(days)
        .bind(depts)
        .bind(types)
        .bind(buckets)
        .bind(counts)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
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

    #[test]
    fn chunks_cover_any_batch_with_few_statement_shapes() {
        assert_eq!(chunk_sizes(0), Vec::<usize>::new());
        assert_eq!(chunk_sizes(262), vec![256, 4, 1, 1]);
        assert_eq!(chunk_sizes(37).iter().sum::<usize>(), 37);
    }

    #[test]
    fn cursors_round_trip_as_text() {
        let c = Cursor {
            time_us: 5,
            gid: gid(3, 9),
            pos: -1,
        };
        assert_eq!(c.to_string().parse::<Cursor>().expect("parse"), c);
        assert!("1.2".parse::<Cursor>().is_err());
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

    #[tokio::test]
    async fn a_v1_store_is_refused_with_the_migration_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite:{}", dir.path().join("v1.db").display());
        let store = Store::open(&url).await.expect("open empty");
        let Store::Sqlite(pool) = &store else {
            panic!("sqlite")
        };
        sqlx::query("INSERT INTO audit_entries VALUES (1, 0, 'access', '', '', '', '', '', '', '', '', '', '', '', '', '[]', '', '', '', 0, '', '', '', '')")
            .execute(pool)
            .await
            .expect("v1 row");
        store.close().await;
        let err = Store::open(&url).await.expect_err("refused");
        let text = err.to_string();
        assert!(text.contains("xgate audit export"), "{text}");
        assert!(text.contains("v1"), "{text}");
    }
}
