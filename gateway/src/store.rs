//! The gateway's own SQLite database: adapter registrations, so they
//! survive a restart.

use std::path::Path;
use std::str::FromStr as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::Row as _;
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
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating if missing) the database and applies migrations.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
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
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Store { pool })
    }

    /// Inserts or overwrites a registration, `registered_at` included: the
    /// registry keeps the previous time unless the registration is replaced.
    pub async fn upsert(&self, r: &Registration) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO adapter_registrations
                 (department, adapter_id, endpoints, record_types, registered_at, last_seen)
             VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (department, adapter_id) DO UPDATE SET
                 endpoints = excluded.endpoints,
                 record_types = excluded.record_types,
                 registered_at = excluded.registered_at,
                 last_seen = excluded.last_seen",
        )
        .bind(&r.department)
        .bind(&r.adapter_id)
        .bind(json_list(&r.endpoints))
        .bind(json_list(&r.record_types))
        .bind(millis(r.registered_at))
        .bind(millis(r.last_seen))
        .execute(&self.pool)
        .await?;
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
        let done = sqlx::query(
            "UPDATE adapter_registrations SET last_seen = ?
             WHERE department = ? AND adapter_id = ? AND (? IS NULL OR registered_at = ?)",
        )
        .bind(millis(at))
        .bind(department)
        .bind(adapter_id)
        .bind(registered_at.map(millis))
        .bind(registered_at.map(millis))
        .execute(&self.pool)
        .await?;
        if done.rows_affected() > 0 {
            return Ok(Touch::Alive);
        }
        let current: Option<i64> = sqlx::query_scalar(
            "SELECT registered_at FROM adapter_registrations WHERE department = ? AND adapter_id = ?",
        )
        .bind(department)
        .bind(adapter_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(current.map_or(Touch::Missing, |ms| Touch::Replaced {
            registered_at: from_millis(ms),
        }))
    }

    /// Removes a registration; false when there was none.
    pub async fn remove(&self, department: &str, adapter_id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "DELETE FROM adapter_registrations WHERE department = ? AND adapter_id = ?",
        )
        .bind(department)
        .bind(adapter_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Every registration, ordered by department and adapter id.
    pub async fn all(&self) -> Result<Vec<Registration>, StoreError> {
        let rows = sqlx::query(
            "SELECT department, adapter_id, endpoints, record_types, registered_at, last_seen
             FROM adapter_registrations ORDER BY department, adapter_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
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
            })
            .collect()
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn json_list(items: &[String]) -> String {
    serde_json::Value::from(items.to_vec()).to_string()
}

fn millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn from_millis(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[tokio::test]
    async fn registrations_persist_across_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("gw.db");
        let store = Store::open(&path).await.expect("open");
        store
            .upsert(&registration(&["tax_registration"]))
            .await
            .expect("upsert");
        store.close().await;

        let store = Store::open(&path).await.expect("reopen");
        assert_eq!(
            store.all().await.expect("all"),
            vec![registration(&["tax_registration"])]
        );
    }

    #[tokio::test]
    async fn upsert_overwrites_types_and_registration_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("gw.db")).await.expect("open");
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
    }

    #[tokio::test]
    async fn touch_and_remove_report_missing_adapters() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("gw.db")).await.expect("open");
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
    }

    #[tokio::test]
    async fn a_heartbeat_of_a_replaced_registration_keeps_nothing_alive() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("gw.db")).await.expect("open");
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
    }
}
