//! The gateway's own database: adapter registrations, daily quota use and
//! the replicas sharing it, so they survive a restart. SQLite (a file path) for one box; PostgreSQL
//! (`postgres://...`) when several replicas share them.

use std::path::Path;
use std::str::FromStr as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

/// One adapter as registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub department: String,
    pub adapter_id: String,
    pub endpoints: Vec<String>,
    pub record_types: Vec<String>,
    pub registered_at: SystemTime,
    pub last_seen: SystemTime,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("gateway database `{path}`: {source}")]
    Open { path: String, source: sqlx::Error },
    #[error("gateway database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("gateway database: {0}")]
    Query(#[from] sqlx::Error),
    #[error(
        "gateway database holds a malformed registration of `{department}/{adapter_id}`: {message}"
    )]
    Corrupt {
        department: String,
        adapter_id: String,
        message: String,
    },
    /// A row or a value that cannot be what it should (a stored identity
    /// that does not parse, a failed random generator).
    #[error("gateway database: {0}")]
    Invalid(String),
}

/// What a heartbeat found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Touch {
    /// The registration is current; `last_seen` was updated.
    Alive,
    /// The adapter is not registered (never, or deregistered).
    Missing,
    /// The adapter's registration is a newer one, made at `registered_at`.
    Replaced { registered_at: SystemTime },
}

/// Registrations, persisted.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: Pool,
}

#[derive(Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Pg(PgPool),
}

/// The PostgreSQL registry table. Not a sqlx migration: the audit store may
/// share the database and owns its `_sqlx_migrations` table.
const PG_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS adapter_registrations (
    department    TEXT   NOT NULL,
    adapter_id    TEXT   NOT NULL,
    endpoints     TEXT   NOT NULL,
    record_types  TEXT   NOT NULL,
    registered_at BIGINT NOT NULL,
    last_seen     BIGINT NOT NULL,
    PRIMARY KEY (department, adapter_id)
)";

/// The PostgreSQL quota table (the SQLite one is migration 0002).
const PG_QUOTA_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS quota_use (
    requester   TEXT   NOT NULL,
    record_type TEXT   NOT NULL,
    day         TEXT   NOT NULL,
    used        BIGINT NOT NULL,
    day_limit   BIGINT NOT NULL,
    PRIMARY KEY (requester, record_type, day)
)";

/// The PostgreSQL replica table (the SQLite one is migration 0003).
const PG_REPLICA_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS gateway_replicas (
    instance       TEXT   NOT NULL PRIMARY KEY,
    address        TEXT   NOT NULL,
    policy_version TEXT   NOT NULL,
    started_at     BIGINT NOT NULL,
    last_seen      BIGINT NOT NULL
)";

/// The PostgreSQL table of used subject-code nonces (SQLite: migration 0004).
const PG_NONCE_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS code_nonces (
    nonce      TEXT   NOT NULL PRIMARY KEY,
    issuer     TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
)";

/// The PostgreSQL consent table (SQLite: migration 0005).
const PG_CONSENT_SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS consents (
    id            TEXT   NOT NULL PRIMARY KEY,
    subject_hmac  TEXT   NOT NULL,
    grantee       TEXT   NOT NULL,
    purpose       TEXT   NOT NULL,
    record_types  TEXT   NOT NULL,
    approval_item TEXT   NOT NULL,
    granted_at    BIGINT NOT NULL,
    valid_until   BIGINT NOT NULL,
    revoked_at    BIGINT,
    evidence      TEXT   NOT NULL,
    granted_by    TEXT   NOT NULL
)",
    "CREATE INDEX IF NOT EXISTS consents_by_subject ON consents (subject_hmac)",
];

/// A subject's consent, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub id: String,
    pub subject_hmac: String,
    /// A requester id, or `group:<requester group>`.
    pub grantee: String,
    pub purpose: String,
    pub record_types: Vec<String>,
    /// Empty for none.
    pub approval_item: String,
    pub granted_at: SystemTime,
    pub valid_until: SystemTime,
    pub revoked_at: Option<SystemTime>,
    /// `code:<issuer>:<nonce>` or `form:<reference>`.
    pub evidence: String,
    /// The identity URI that recorded it.
    pub granted_by: String,
}

impl Consent {
    /// Whether it lets `requester` (member of `groups`) fetch `record_type`
    /// for `purpose` (and `item`, when the consent names one) at `now`.
    pub fn covers(
        &self,
        requester: &str,
        groups: &[String],
        purpose: &str,
        item: Option<&str>,
        record_type: &str,
        now: SystemTime,
    ) -> bool {
        let grantee = match self.grantee.strip_prefix("group:") {
            Some(group) => groups.iter().any(|g| g == group),
            None => self.grantee == requester,
        };
        grantee
            && self.revoked_at.is_none()
            && now < self.valid_until
            && self.purpose == purpose
            && (self.approval_item.is_empty() || Some(self.approval_item.as_str()) == item)
            && self.record_types.iter().any(|t| t == record_type)
    }
}

/// One gateway process using the database, as it last reported itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    /// The audit instance id (the name of its chain).
    pub instance: String,
    pub address: String,
    pub policy_version: String,
    pub started_at: SystemTime,
    pub last_seen: SystemTime,
}

/// The SQLite schema, in order.
const SQLITE_MIGRATIONS: &[xgate_audit::store::EmbeddedMigration] = &[
    (
        1,
        "registrations",
        include_str!("../migrations/0001_registrations.sql"),
    ),
    (
        2,
        "quota use",
        include_str!("../migrations/0002_quota_use.sql"),
    ),
    (
        3,
        "gateway replicas",
        include_str!("../migrations/0003_gateway_replicas.sql"),
    ),
    (
        4,
        "code nonces",
        include_str!("../migrations/0004_code_nonces.sql"),
    ),
    (
        5,
        "consents",
        include_str!("../migrations/0005_consents.sql"),
    ),
    (
        6,
        "evaluation",
        include_str!("../migrations/0006_evaluation.sql"),
    ),
    (
        7,
        "console sessions",
        include_str!("../migrations/0007_console_sessions.sql"),
    ),
    (
        8,
        "screening runs",
        include_str!("../migrations/0008_screening.sql"),
    ),
];

/// The `LISTEN` channel of registry changes; the payload is a department.
pub const CHANGES: &str = "xgate_registry";

/// The `LISTEN` channel of corrected records; the payload is
/// `<subject kind>\t<subject>\t<record type>`.
pub const CORRECTIONS: &str = "xgate_corrections";

/// Whether a `database` setting names a PostgreSQL server rather than a file.
pub fn is_postgres(database: &Path) -> bool {
    database
        .to_str()
        .is_some_and(|s| s.starts_with("postgres://") || s.starts_with("postgresql://"))
}

/// Runs `$body` with `$p` bound to whichever pool the store has: the SQL is
/// the same text for both backends, the types differ.
macro_rules! on_pool {
    ($store:expr, $p:ident => $body:expr) => {
        match &$store.pool {
            $crate::store::Pool::Sqlite($p) => $body,
            $crate::store::Pool::Pg($p) => $body,
        }
    };
}
pub(crate) use on_pool;

impl Store {
    /// Opens the registry: a PostgreSQL URL or a SQLite file path.
    pub async fn open(database: &Path) -> Result<Store, StoreError> {
        match database.to_str() {
            Some(url) if is_postgres(database) => Store::open_pg(url).await,
            _ => Store::open_sqlite(database).await,
        }
    }

    /// Connects to PostgreSQL and creates the table if missing. Replicas
    /// starting together serialise on an advisory lock: concurrent `CREATE
    /// TABLE IF NOT EXISTS` can still fail on the catalog's unique index.
    pub async fn open_pg(url: &str) -> Result<Store, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(|source| StoreError::Open {
                path: redact(url),
                source,
            })?;
        let mut tx = pool.begin().await?;
        // The registry's lock key, 0x7867_7265_6700 ("xgreg").
        sqlx::query("SELECT pg_advisory_xact_lock(132385696212736)")
            .execute(&mut *tx)
            .await?;
        sqlx::query(PG_SCHEMA).execute(&mut *tx).await?;
        sqlx::query(PG_QUOTA_SCHEMA).execute(&mut *tx).await?;
        sqlx::query(PG_REPLICA_SCHEMA).execute(&mut *tx).await?;
        sqlx::query(PG_NONCE_SCHEMA).execute(&mut *tx).await?;
        for statement in PG_CONSENT_SCHEMA
            .iter()
            .chain(crate::evaluation::store::PG_SCHEMA)
            .chain(crate::console::session::PG_SCHEMA)
            .chain(crate::screening::store::PG_SCHEMA)
        {
            sqlx::query(*statement).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(Store {
            pool: Pool::Pg(pool),
        })
    }

    /// Opens (creating if missing) the SQLite database and applies migrations.
    pub async fn open_sqlite(path: &Path) -> Result<Store, StoreError> {
        let display = path.display().to_string();
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{display}"))
            .map_err(|source| StoreError::Open {
                path: display.clone(),
                source,
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open {
                path: display,
                source,
            })?;
        xgate_audit::store::embedded_migrator(SQLITE_MIGRATIONS)
            .run(&pool)
            .await?;
        Ok(Store {
            pool: Pool::Sqlite(pool),
        })
    }

    /// Tells the other replicas that a department corrected a subject's
    /// records of `record_type` ([`CORRECTIONS`]); nothing to tell with SQLite.
    pub async fn announce_correction(
        &self,
        kind: &str,
        subject: &str,
        record_type: &str,
    ) -> Result<(), StoreError> {
        if let Pool::Pg(pool) = &self.pool {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CORRECTIONS)
                .bind(format!("{kind}\t{subject}\t{record_type}"))
                .execute(pool)
                .await?;
        }
        Ok(())
    }

    /// Tells the other replicas that `department`'s registrations changed
    /// (PostgreSQL `NOTIFY` on [`CHANGES`]); nothing to tell with SQLite.
    pub async fn announce(&self, department: &str) -> Result<(), StoreError> {
        if let Pool::Pg(pool) = &self.pool {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANGES)
                .bind(department)
                .execute(pool)
                .await?;
        }
        Ok(())
    }

    /// The PostgreSQL pool, when the registry lives there.
    pub fn pg_pool(&self) -> Option<&PgPool> {
        match &self.pool {
            Pool::Pg(pool) => Some(pool),
            Pool::Sqlite(_) => None,
        }
    }

    /// Inserts or overwrites a registration, `registered_at` included: the
    /// registry keeps the previous time unless the registration is replaced.
    pub async fn upsert(&self, r: &Registration) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO adapter_registrations
                 (department, adapter_id, endpoints, record_types, registered_at, last_seen)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (department, adapter_id) DO UPDATE SET
                 endpoints = excluded.endpoints,
                 record_types = excluded.record_types,
                 registered_at = excluded.registered_at,
                 last_seen = excluded.last_seen";
        macro_rules! run {
            ($pool:expr) => {
                sqlx::query(SQL)
                    .bind(&r.department)
                    .bind(&r.adapter_id)
                    .bind(json_list(&r.endpoints))
                    .bind(json_list(&r.record_types))
                    .bind(millis(r.registered_at))
                    .bind(millis(r.last_seen))
                    .execute($pool)
                    .await?
                    .rows_affected()
            };
        }
        match &self.pool {
            Pool::Sqlite(p) => run!(p),
            Pool::Pg(p) => run!(p),
        };
        Ok(())
    }

    /// Marks an adapter alive. With `registered_at`, only that registration
    /// of it: a heartbeat of a replaced registration keeps nothing alive.
    pub async fn touch(
        &self,
        department: &str,
        adapter_id: &str,
        registered_at: Option<SystemTime>,
        at: SystemTime,
    ) -> Result<Touch, StoreError> {
        const UPDATE: &str = "UPDATE adapter_registrations SET last_seen = $1
             WHERE department = $2 AND adapter_id = $3
               AND ($4 IS NULL OR registered_at = $4)";
        const UPDATE_PG: &str = "UPDATE adapter_registrations SET last_seen = $1
             WHERE department = $2 AND adapter_id = $3
               AND ($4::BIGINT IS NULL OR registered_at = $4)";
        const CURRENT: &str = "SELECT registered_at FROM adapter_registrations
             WHERE department = $1 AND adapter_id = $2";
        macro_rules! run {
            ($pool:expr, $update:expr) => {{
                let done = sqlx::query($update)
                    .bind(millis(at))
                    .bind(department)
                    .bind(adapter_id)
                    .bind(registered_at.map(millis))
                    .execute($pool)
                    .await?;
                if done.rows_affected() > 0 {
                    return Ok(Touch::Alive);
                }
                sqlx::query_scalar::<_, i64>(CURRENT)
                    .bind(department)
                    .bind(adapter_id)
                    .fetch_optional($pool)
                    .await?
            }};
        }
        let current = match &self.pool {
            Pool::Sqlite(p) => run!(p, UPDATE),
            Pool::Pg(p) => run!(p, UPDATE_PG),
        };
        Ok(current.map_or(Touch::Missing, |ms| Touch::Replaced {
            registered_at: from_millis(ms),
        }))
    }

    /// Removes a registration; false when there was none.
    pub async fn remove(&self, department: &str, adapter_id: &str) -> Result<bool, StoreError> {
        const SQL: &str =
            "DELETE FROM adapter_registrations WHERE department = $1 AND adapter_id = $2";
        let affected = on_pool!(self, p => sqlx::query(SQL)
            .bind(department)
            .bind(adapter_id)
            .execute(p)
            .await?
            .rows_affected());
        Ok(affected > 0)
    }

    /// Every registration, ordered by department and adapter id.
    pub async fn all(&self) -> Result<Vec<Registration>, StoreError> {
        const SQL: &str =
            "SELECT department, adapter_id, endpoints, record_types, registered_at, last_seen
             FROM adapter_registrations ORDER BY department, adapter_id";
        on_pool!(self, p => sqlx::query(SQL)
            .fetch_all(p)
            .await?
            .iter()
            .map(decode)
            .collect())
    }

    /// Takes one unit of each `(record type, limit)` for `requester` on `day`
    /// (`YYYY-MM-DD`), in one statement: a type is granted only while its
    /// count is below the limit, and concurrent takes on any replica serialise
    /// on the row, so the count never passes the limit. Returns the granted
    /// types. Types must be distinct; a zero limit is never granted.
    pub async fn take_quota(
        &self,
        requester: &str,
        day: &str,
        asks: &[(&str, u32)],
    ) -> Result<Vec<String>, StoreError> {
        match &self.pool {
            Pool::Sqlite(p) => {
                const SQL: &str = "INSERT INTO quota_use
                         (requester, record_type, day, used, day_limit)
                     SELECT $1, j.key, $2, 1, j.value FROM json_each($3) AS j WHERE j.value > 0
                     ON CONFLICT (requester, record_type, day) DO UPDATE
                         SET used = quota_use.used + 1, day_limit = excluded.day_limit
                         WHERE quota_use.used < excluded.day_limit
                     RETURNING record_type";
                let limits: serde_json::Map<String, serde_json::Value> = asks
                    .iter()
                    .map(|(t, l)| ((*t).to_owned(), (*l).into()))
                    .collect();
                Ok(sqlx::query_scalar(SQL)
                    .bind(requester)
                    .bind(day)
                    .bind(serde_json::Value::Object(limits).to_string())
                    .fetch_all(p)
                    .await?)
            }
            Pool::Pg(p) => {
                const SQL: &str = "INSERT INTO quota_use
                         (requester, record_type, day, used, day_limit)
                     SELECT $1, t, $2, 1, l FROM unnest($3::TEXT[], $4::BIGINT[]) AS a(t, l)
                     WHERE l > 0
                     ON CONFLICT (requester, record_type, day) DO UPDATE
                         SET used = quota_use.used + 1, day_limit = excluded.day_limit
                         WHERE quota_use.used < excluded.day_limit
                     RETURNING record_type";
                let types: Vec<&str> = asks.iter().map(|(t, _)| *t).collect();
                let limits: Vec<i64> = asks.iter().map(|(_, l)| i64::from(*l)).collect();
                Ok(sqlx::query_scalar(SQL)
                    .bind(requester)
                    .bind(day)
                    .bind(types)
                    .bind(limits)
                    .fetch_all(p)
                    .await?)
            }
        }
    }

    /// Units of `record_type` taken by `requester` on `day`.
    pub async fn quota_used(
        &self,
        requester: &str,
        record_type: &str,
        day: &str,
    ) -> Result<u64, StoreError> {
        const SQL: &str =
            "SELECT used FROM quota_use WHERE requester = $1 AND record_type = $2 AND day = $3";
        let used: Option<i64> = on_pool!(self, p => sqlx::query_scalar(SQL)
            .bind(requester)
            .bind(record_type)
            .bind(day)
            .fetch_optional(p)
            .await?);
        Ok(used.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
    }

    /// Forgets quota use of days before `day`.
    pub async fn forget_quota_before(&self, day: &str) -> Result<u64, StoreError> {
        const SQL: &str = "DELETE FROM quota_use WHERE day < $1";
        Ok(on_pool!(self, p => sqlx::query(SQL).bind(day).execute(p).await?.rows_affected()))
    }

    /// Records the use of a subject code's nonce; false when it was used
    /// before (a replay), on any replica sharing the database. Nonces of
    /// codes expired before `forget_before` (Unix seconds) are dropped now
    /// and then: on the uses whose nonce starts with a zero byte, 1 in 256.
    pub async fn use_code_nonce(
        &self,
        nonce: &str,
        issuer: &str,
        expires_at: i64,
        forget_before: i64,
    ) -> Result<bool, StoreError> {
        const USE: &str = "INSERT INTO code_nonces (nonce, issuer, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (nonce) DO NOTHING";
        const FORGET: &str = "DELETE FROM code_nonces WHERE expires_at < $1";
        let fresh = on_pool!(self, p => sqlx::query(USE)
            .bind(nonce)
            .bind(issuer)
            .bind(expires_at)
            .execute(p)
            .await?
            .rows_affected())
            == 1;
        if nonce.starts_with("00") {
            on_pool!(self, p => sqlx::query(FORGET).bind(forget_before).execute(p).await?.rows_affected());
        }
        Ok(fresh)
    }

    /// Records a consent.
    pub async fn grant_consent(&self, c: &Consent) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO consents (id, subject_hmac, grantee, purpose, record_types,
                 approval_item, granted_at, valid_until, revoked_at, evidence, granted_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9, $10)";
        on_pool!(self, p => sqlx::query(SQL)
            .bind(&c.id)
            .bind(&c.subject_hmac)
            .bind(&c.grantee)
            .bind(&c.purpose)
            .bind(json_list(&c.record_types))
            .bind(&c.approval_item)
            .bind(millis(c.granted_at))
            .bind(millis(c.valid_until))
            .bind(&c.evidence)
            .bind(&c.granted_by)
            .execute(p)
            .await?
            .rows_affected());
        Ok(())
    }

    /// Marks a consent revoked at `at` (a second revocation keeps the
    /// first time); the consent as it now is, `None` if there is none.
    pub async fn revoke_consent(
        &self,
        id: &str,
        at: SystemTime,
    ) -> Result<Option<Consent>, StoreError> {
        const SQL: &str =
            "UPDATE consents SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL";
        on_pool!(self, p => sqlx::query(SQL).bind(millis(at)).bind(id).execute(p).await?.rows_affected());
        self.consent(id).await
    }

    /// One consent by id.
    pub async fn consent(&self, id: &str) -> Result<Option<Consent>, StoreError> {
        const SQL: &str = "SELECT id, subject_hmac, grantee, purpose, record_types, approval_item,
                 granted_at, valid_until, revoked_at, evidence, granted_by
             FROM consents WHERE id = $1";
        let rows: Vec<ConsentRow> =
            on_pool!(self, p => sqlx::query_as(SQL).bind(id).fetch_all(p).await?);
        rows.into_iter().next().map(consent_of).transpose()
    }

    /// A subject's consents, newest first.
    pub async fn consents_of(&self, subject_hmac: &str) -> Result<Vec<Consent>, StoreError> {
        const SQL: &str = "SELECT id, subject_hmac, grantee, purpose, record_types, approval_item,
                 granted_at, valid_until, revoked_at, evidence, granted_by
             FROM consents WHERE subject_hmac = $1 ORDER BY granted_at DESC, id";
        let rows: Vec<ConsentRow> =
            on_pool!(self, p => sqlx::query_as(SQL).bind(subject_hmac).fetch_all(p).await?);
        rows.into_iter().map(consent_of).collect()
    }

    /// Records a replica's heartbeat (inserting it on its first), and
    /// forgets replicas silent since before `forget_before`.
    pub async fn beat_replica(
        &self,
        r: &Replica,
        forget_before: SystemTime,
    ) -> Result<(), StoreError> {
        const UPSERT: &str = "INSERT INTO gateway_replicas
                 (instance, address, policy_version, started_at, last_seen)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (instance) DO UPDATE SET
                 address = excluded.address,
                 policy_version = excluded.policy_version,
                 started_at = excluded.started_at,
                 last_seen = excluded.last_seen";
        const FORGET: &str = "DELETE FROM gateway_replicas WHERE last_seen < $1";
        on_pool!(self, p => {
            sqlx::query(UPSERT)
                .bind(&r.instance)
                .bind(&r.address)
                .bind(&r.policy_version)
                .bind(millis(r.started_at))
                .bind(millis(r.last_seen))
                .execute(p)
                .await?;
            sqlx::query(FORGET).bind(millis(forget_before)).execute(p).await?;
        });
        Ok(())
    }

    /// Removes a replica (it stopped cleanly).
    pub async fn leave_replica(&self, instance: &str) -> Result<(), StoreError> {
        const SQL: &str = "DELETE FROM gateway_replicas WHERE instance = $1";
        on_pool!(self, p => sqlx::query(SQL).bind(instance).execute(p).await?.rows_affected());
        Ok(())
    }

    /// Every replica, ordered by instance id.
    pub async fn replicas(&self) -> Result<Vec<Replica>, StoreError> {
        const SQL: &str = "SELECT instance, address, policy_version, started_at, last_seen
             FROM gateway_replicas ORDER BY instance";
        let rows: Vec<(String, String, String, i64, i64)> =
            on_pool!(self, p => sqlx::query_as(SQL).fetch_all(p).await?);
        Ok(rows
            .into_iter()
            .map(
                |(instance, address, policy_version, started_at, last_seen)| Replica {
                    instance,
                    address,
                    policy_version,
                    started_at: from_millis(started_at),
                    last_seen: from_millis(last_seen),
                },
            )
            .collect())
    }

    pub async fn close(&self) {
        on_pool!(self, p => p.close().await);
    }
}

type ConsentRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
    String,
    String,
);

fn consent_of(row: ConsentRow) -> Result<Consent, StoreError> {
    let (
        id,
        subject_hmac,
        grantee,
        purpose,
        types,
        approval_item,
        granted,
        until,
        revoked,
        evidence,
        granted_by,
    ) = row;
    let record_types = serde_json::from_str(&types).map_err(|e| StoreError::Corrupt {
        department: "consents".into(),
        adapter_id: id.clone(),
        message: format!("record_types: {e}"),
    })?;
    Ok(Consent {
        id,
        subject_hmac,
        grantee,
        purpose,
        record_types,
        approval_item,
        granted_at: from_millis(granted),
        valid_until: from_millis(until),
        revoked_at: revoked.map(from_millis),
        evidence,
        granted_by,
    })
}

/// One row of either backend as a registration.
fn decode<R>(row: &R) -> Result<Registration, StoreError>
where
    R: sqlx::Row,
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let department: String = row.try_get("department")?;
    let adapter_id: String = row.try_get("adapter_id")?;
    let corrupt = |message: String| StoreError::Corrupt {
        department: department.clone(),
        adapter_id: adapter_id.clone(),
        message,
    };
    let endpoints: String = row.try_get("endpoints")?;
    let record_types: String = row.try_get("record_types")?;
    Ok(Registration {
        endpoints: serde_json::from_str(&endpoints)
            .map_err(|e| corrupt(format!("endpoints: {e}")))?,
        record_types: serde_json::from_str(&record_types)
            .map_err(|e| corrupt(format!("record_types: {e}")))?,
        registered_at: from_millis(row.try_get("registered_at")?),
        last_seen: from_millis(row.try_get("last_seen")?),
        department,
        adapter_id,
    })
}

/// A database URL without its password, for error messages.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}@{host}")
        }
        None => url.to_owned(),
    }
}

pub(crate) fn json_list(items: &[String]) -> String {
    serde_json::Value::from(items.to_vec()).to_string()
}

pub(crate) fn millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub(crate) fn from_millis(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Connection as _;

    const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";

    /// A database to open a store on: a SQLite file in a temporary
    /// directory, or a PostgreSQL database of its own, dropped at the end.
    enum Db {
        Sqlite(tempfile::TempDir),
        Pg(String),
    }

    impl Db {
        async fn sqlite() -> Db {
            Db::Sqlite(tempfile::tempdir().expect("tempdir"))
        }
        async fn pg() -> Db {
            let name = format!("xgate_registry_{}", uuid::Uuid::new_v4().simple());
            let mut conn = sqlx::PgConnection::connect(PG_ADMIN).await.expect("pg");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .expect("create db");
            Db::Pg(name)
        }
        fn database(&self) -> std::path::PathBuf {
            match self {
                Db::Sqlite(dir) => dir.path().join("gw.db"),
                Db::Pg(name) => format!("postgres://postgres@127.0.0.1:5432/{name}").into(),
            }
        }
        async fn open(&self) -> Store {
            Store::open(&self.database()).await.expect("open")
        }
        async fn drop_db(self) {
            if let Db::Pg(name) = self {
                let mut conn = sqlx::PgConnection::connect(PG_ADMIN).await.expect("pg");
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await
                .expect("drop db");
            }
        }
    }

    /// Runs one check on both backends.
    macro_rules! on_both {
        ($name:ident) => {
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    let db = super::Db::sqlite().await;
                    super::$name(&db).await;
                    db.drop_db().await;
                }
                #[tokio::test]
                async fn postgres() {
                    let db = super::Db::pg().await;
                    super::$name(&db).await;
                    db.drop_db().await;
                }
            }
        };
    }

    fn registration(types: &[&str]) -> Registration {
        let at = from_millis(1_700_000_000_000);
        Registration {
            department: "tax".into(),
            adapter_id: "tax".into(),
            endpoints: vec!["https://127.0.0.1:7001".into()],
            record_types: types.iter().map(|t| (*t).to_owned()).collect(),
            registered_at: at,
            last_seen: at,
        }
    }

    on_both!(registrations_persist_across_reopen);
    async fn registrations_persist_across_reopen(db: &Db) {
        let store = db.open().await;
        store
            .upsert(&registration(&["tax_registration"]))
            .await
            .expect("upsert");
        store.close().await;

        let store = db.open().await;
        assert_eq!(
            store.all().await.expect("all"),
            vec![registration(&["tax_registration"])]
        );
        store.close().await;
    }

    on_both!(upsert_overwrites_types_and_registration_time);
    async fn upsert_overwrites_types_and_registration_time(db: &Db) {
        let store = db.open().await;
        store
            .upsert(&registration(&["a_type"]))
            .await
            .expect("first");
        let mut second = registration(&["b_type", "c_type"]);
        second.registered_at = from_millis(1_800_000_000_000);
        second.last_seen = from_millis(1_800_000_000_000);
        store.upsert(&second).await.expect("second");
        let all = store.all().await.expect("all");
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].record_types, vec!["b_type", "c_type"]);
        assert_eq!(all[0].registered_at, from_millis(1_800_000_000_000));
        assert_eq!(all[0].last_seen, from_millis(1_800_000_000_000));
        store.close().await;
    }

    on_both!(touch_and_remove_report_missing_adapters);
    async fn touch_and_remove_report_missing_adapters(db: &Db) {
        let store = db.open().await;
        let now = SystemTime::now();
        assert_eq!(
            store.touch("tax", "tax", None, now).await.expect("touch"),
            Touch::Missing
        );
        store
            .upsert(&registration(&["a_type"]))
            .await
            .expect("upsert");
        assert_eq!(
            store.touch("tax", "tax", None, now).await.expect("touch"),
            Touch::Alive
        );
        assert!(store.remove("tax", "tax").await.expect("remove"));
        assert!(!store.remove("tax", "tax").await.expect("remove again"));
        assert!(store.all().await.expect("all").is_empty());
        store.close().await;
    }

    on_both!(a_heartbeat_of_a_replaced_registration_keeps_nothing_alive);
    async fn a_heartbeat_of_a_replaced_registration_keeps_nothing_alive(db: &Db) {
        let store = db.open().await;
        let first = registration(&["a_type"]);
        store.upsert(&first).await.expect("first");
        let first_at = Some(first.registered_at);
        let beat = from_millis(1_750_000_000_000);
        assert_eq!(
            store
                .touch("tax", "tax", first_at, beat)
                .await
                .expect("touch"),
            Touch::Alive
        );
        let mut second = registration(&["b_type"]);
        second.registered_at = from_millis(1_800_000_000_000);
        second.last_seen = second.registered_at;
        store.upsert(&second).await.expect("replace");
        let late = from_millis(1_900_000_000_000);
        assert_eq!(
            store
                .touch("tax", "tax", first_at, late)
                .await
                .expect("touch"),
            Touch::Replaced {
                registered_at: second.registered_at
            }
        );
        let all = store.all().await.expect("all");
        assert_eq!(
            all[0].last_seen, second.last_seen,
            "the old beat refreshed it"
        );
        assert_eq!(
            store
                .touch("tax", "tax", Some(second.registered_at), late)
                .await
                .expect("touch"),
            Touch::Alive
        );
        store.close().await;
    }

    on_both!(two_stores_on_one_database_see_each_others_changes);
    /// Replicas share the table: what one writes, another reads.
    async fn two_stores_on_one_database_see_each_others_changes(db: &Db) {
        let a = db.open().await;
        let b = db.open().await;
        a.upsert(&registration(&["a_type"])).await.expect("upsert");
        assert_eq!(b.all().await.expect("all").len(), 1);
        assert!(b.remove("tax", "tax").await.expect("remove"));
        assert!(a.all().await.expect("all").is_empty());
        a.close().await;
        b.close().await;
    }

    on_both!(concurrent_quota_takes_on_three_stores_never_pass_the_limit);
    async fn concurrent_quota_takes_on_three_stores_never_pass_the_limit(db: &Db) {
        // Three replicas' stores on one database, 300 takes at once against
        // a limit of 100: exactly 100 granted, whatever the interleaving.
        let stores = [db.open().await, db.open().await, db.open().await];
        let takes = (0..300).map(|i| {
            let store = stores[i % 3].clone();
            async move {
                store
                    .take_quota("hall", "2026-11-25", &[("tax_registration", 100)])
                    .await
                    .expect("take")
                    .len()
            }
        });
        let granted: usize = futures::future::join_all(takes).await.into_iter().sum();
        assert_eq!(granted, 100);
        assert_eq!(
            stores[0]
                .quota_used("hall", "tax_registration", "2026-11-25")
                .await
                .expect("used"),
            100
        );
        for store in stores {
            store.close().await;
        }
    }

    on_both!(replicas_are_listed_updated_forgotten_and_removed);
    async fn replicas_are_listed_updated_forgotten_and_removed(db: &Db) {
        let (a, b) = (db.open().await, db.open().await);
        let replica = |instance: &str, version: &str, seen: i64| Replica {
            instance: instance.into(),
            address: "127.0.0.1:1".into(),
            policy_version: version.into(),
            started_at: from_millis(1_000),
            last_seen: from_millis(seen),
        };
        let long_ago = from_millis(0);
        a.beat_replica(&replica("gw-a", "v1", 5_000), long_ago)
            .await
            .expect("beat");
        b.beat_replica(&replica("gw-b", "v1", 5_000), long_ago)
            .await
            .expect("beat");
        // A's next beat reports a new policy set; B sees it.
        a.beat_replica(&replica("gw-a", "v2", 7_000), long_ago)
            .await
            .expect("beat");
        assert_eq!(
            b.replicas().await.expect("replicas"),
            vec![replica("gw-a", "v2", 7_000), replica("gw-b", "v1", 5_000)]
        );
        // B's beat forgets replicas silent since before 6 s: A stays.
        b.beat_replica(&replica("gw-b", "v1", 9_000), from_millis(6_000))
            .await
            .expect("beat");
        assert_eq!(a.replicas().await.expect("replicas").len(), 2);
        a.beat_replica(&replica("gw-a", "v2", 9_500), from_millis(9_200))
            .await
            .expect("beat");
        assert_eq!(
            a.replicas().await.expect("replicas"),
            vec![replica("gw-a", "v2", 9_500)],
            "a replica silent past the bound is forgotten"
        );
        a.leave_replica("gw-a").await.expect("leave");
        assert!(b.replicas().await.expect("replicas").is_empty());
        a.close().await;
        b.close().await;
    }

    on_both!(a_code_nonce_is_accepted_once_across_stores);
    async fn a_code_nonce_is_accepted_once_across_stores(db: &Db) {
        let (a, b) = (db.open().await, db.open().await);
        let nonce = "0f".repeat(16);
        assert!(a.use_code_nonce(&nonce, "p", 100, 0).await.expect("use"));
        assert!(!b.use_code_nonce(&nonce, "p", 100, 0).await.expect("use"));
        assert!(!a.use_code_nonce(&nonce, "p", 100, 0).await.expect("use"));
        // Expired nonces are forgotten on a sampled use.
        let sampled = "00".repeat(16);
        assert!(
            b.use_code_nonce(&sampled, "p", 500, 200)
                .await
                .expect("use")
        );
        assert!(
            a.use_code_nonce(&nonce, "p", 100, 0).await.expect("use"),
            "forgotten after its code expired"
        );
        a.close().await;
        b.close().await;
    }

    on_both!(consents_are_recorded_listed_and_revoked_once);
    async fn consents_are_recorded_listed_and_revoked_once(db: &Db) {
        let (a, b) = (db.open().await, db.open().await);
        let consent = |id: &str, at: i64| Consent {
            id: id.into(),
            subject_hmac: "h1".into(),
            grantee: "group:bozhou-approval-bureaus".into(),
            purpose: "GENERAL-APPROVAL".into(),
            record_types: vec!["marriage_registration".into()],
            approval_item: String::new(),
            granted_at: from_millis(at),
            valid_until: from_millis(at + 1_000_000),
            revoked_at: None,
            evidence: "form:F-1".into(),
            granted_by: "xgate://platform/citizen-app".into(),
        };
        a.grant_consent(&consent("c1", 1_000)).await.expect("grant");
        a.grant_consent(&consent("c2", 2_000)).await.expect("grant");
        let listed = b.consents_of("h1").await.expect("list");
        assert_eq!(listed, vec![consent("c2", 2_000), consent("c1", 1_000)]);
        assert!(b.consents_of("h2").await.expect("list").is_empty());
        let revoked = b
            .revoke_consent("c1", from_millis(5_000))
            .await
            .expect("revoke")
            .expect("there");
        assert_eq!(revoked.revoked_at, Some(from_millis(5_000)));
        let again = a
            .revoke_consent("c1", from_millis(9_000))
            .await
            .expect("revoke")
            .expect("there");
        assert_eq!(
            again.revoked_at,
            Some(from_millis(5_000)),
            "the first time stays"
        );
        assert_eq!(
            a.revoke_consent("nope", from_millis(1))
                .await
                .expect("revoke"),
            None
        );
        a.close().await;
        b.close().await;
    }

    #[test]
    fn a_consent_covers_only_its_grantee_purpose_item_types_and_time() {
        let c = Consent {
            id: "c".into(),
            subject_hmac: "h".into(),
            grantee: "group:halls".into(),
            purpose: "P".into(),
            record_types: vec!["t".into()],
            approval_item: "I".into(),
            granted_at: from_millis(0),
            valid_until: from_millis(10_000),
            revoked_at: None,
            evidence: "form:x".into(),
            granted_by: "xgate://platform/p".into(),
        };
        let halls = ["halls".to_owned()];
        let now = from_millis(5_000);
        assert!(c.covers("r", &halls, "P", Some("I"), "t", now));
        assert!(
            !c.covers("r", &[], "P", Some("I"), "t", now),
            "not in the group"
        );
        assert!(
            !c.covers("r", &halls, "Q", Some("I"), "t", now),
            "another purpose"
        );
        assert!(
            !c.covers("r", &halls, "P", None, "t", now),
            "not for its item"
        );
        assert!(
            !c.covers("r", &halls, "P", Some("I"), "u", now),
            "another type"
        );
        assert!(
            !c.covers("r", &halls, "P", Some("I"), "t", from_millis(10_000)),
            "expired"
        );
        let revoked = Consent {
            revoked_at: Some(from_millis(1)),
            ..c.clone()
        };
        assert!(!revoked.covers("r", &halls, "P", Some("I"), "t", now));
        let direct = Consent {
            grantee: "r".into(),
            approval_item: String::new(),
            ..c
        };
        assert!(direct.covers("r", &[], "P", None, "t", now));
        assert!(!direct.covers("s", &[], "P", None, "t", now));
    }

    #[test]
    fn urls_are_told_from_paths_and_redacted() {
        assert!(is_postgres(Path::new("postgres://u@h/db")));
        assert!(is_postgres(Path::new("postgresql://u@h/db")));
        assert!(!is_postgres(Path::new("gateway.db")));
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u@h:5432/db"
        );
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }
}
