//! [`SqlDepartment`]: a checked mapping over a connection pool, served as an
//! adapter SDK [`Department`].

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use sqlx::mysql::{MySql, MySqlConnectOptions, MySqlPool, MySqlPoolOptions, MySqlRow};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow, PgValueFormat, Postgres};
use sqlx::sqlite::{Sqlite, SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteRow};
use sqlx::{
    AssertSqlSafe, Decode, Executor as _, Row as _, SqlSafeStr as _, Statement as _, TypeInfo as _,
    ValueRef as _,
};
use xgate_adapter_sdk::{Department, LookupError, Subject, in_list, lookup_each};
use xgate_catalog::Catalog;

use crate::cell::{self, Cell, Kind, Verdict};
use crate::mapping::{
    BatchPlan, FieldPlan, Mapping, MappingError, PasswordSource, TypePlan, join_errors,
};
use crate::query::Dialect;

/// Why the adapter cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// The mapping is wrong (against the catalog, or against the database's
    /// actual columns); one error per problem, each naming its line.
    #[error("{}", join_errors(.0))]
    Mapping(Vec<MappingError>),
    /// Neither the mapping nor the command line gives a database URL.
    #[error("{0}: no database URL: set `url` in `[database]` or pass --database-url")]
    NoUrl(String),
    /// The URL is not one of the supported drivers, or is malformed.
    #[error("bad database URL `{url}`: {reason}")]
    BadUrl { url: String, reason: String },
    /// The password's environment variable or file cannot be read.
    #[error("database password: {0}")]
    Password(String),
    /// The database did not answer.
    #[error("cannot connect to `{url}`: {source}")]
    Connect {
        url: String,
        #[source]
        source: sqlx::Error,
    },
}

/// One connection pool per department, per driver, so each driver's native
/// types (DATE, NUMERIC, arrays, JSON) are decoded by their own rules.
#[derive(Debug, Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
    MySql(MySqlPool),
}

impl Pool {
    fn dialect(&self) -> Dialect {
        match self {
            Pool::Sqlite(_) => Dialect::Sqlite,
            Pool::Postgres(_) => Dialect::Postgres,
            Pool::MySql(_) => Dialect::MySql,
        }
    }
}

/// A record type ready to run: the driver's SQL and where each field's
/// column is in the result.
#[derive(Debug)]
struct Runnable {
    record_type: String,
    sql: Arc<str>,
    binds: usize,
    /// Field plans with the index of their column in the result.
    fields: Vec<(FieldPlan, usize)>,
    /// The batch query, when the mapping gives one.
    batch: Option<BatchRunnable>,
}

/// A batch query ready to run.
#[derive(Debug)]
struct BatchRunnable {
    /// The driver's SQL per list length ([`in_list::sizes`]; PostgreSQL: one
    /// statement, an array of any length).
    statements: Vec<(usize, Arc<str>)>,
    /// How many times the list is bound (MySQL: once per `IN (:subjects)`).
    repeats: usize,
    /// As [`Runnable::fields`], in the batch query's result.
    fields: Vec<(FieldPlan, usize)>,
    /// Where the row's subject ID is in the result.
    subject_at: usize,
    subject_column: String,
}

impl BatchRunnable {
    /// The statement for a list of `n` IDs.
    fn statement(&self, n: usize) -> Option<Arc<str>> {
        self.statements
            .iter()
            .find(|(size, _)| *size == n)
            .map(|(_, sql)| Arc::clone(sql))
    }
}

/// How a statement's parameters are bound.
enum Params<'a> {
    /// Each value, in order (`?1`, `?`, `$1`).
    Each(Vec<&'a str>),
    /// PostgreSQL: all values as one `text[]` (`= ANY($1)`).
    Array(&'a [&'a str]),
}

/// One row's cells in field order (a cell that cannot be read is kept as
/// its error).
type RowCells = Vec<Result<Cell, String>>;

/// A department served from a relational database through a mapping file.
#[derive(Debug, Clone)]
pub struct SqlDepartment {
    department: String,
    pool: Pool,
    timeout: Duration,
    types: Arc<Vec<Runnable>>,
    /// What the check found that works but may not be meant.
    warnings: Arc<Vec<MappingError>>,
}

impl SqlDepartment {
    /// Checks `mapping` against `catalog`, connects (the URL of
    /// `database_url_override`, else the mapping's), prepares every query and
    /// checks that it returns the mapped columns in types the fields can be
    /// made from. Every problem found is reported, each naming its line.
    pub async fn connect(
        mapping: &Mapping,
        catalog: &Catalog,
        database_url_override: Option<&str>,
    ) -> Result<SqlDepartment, SqlError> {
        let plans = mapping.plan(catalog).map_err(SqlError::Mapping)?;
        let spec = mapping.database();
        let (url, from_mapping) = match (database_url_override, &spec.url) {
            (Some(url), _) => (url.to_owned(), false),
            (None, Some(url)) => (url.clone(), true),
            (None, None) => return Err(SqlError::NoUrl(mapping.file().display().to_string())),
        };
        let base = if from_mapping {
            mapping.file().parent()
        } else {
            None
        };
        let password = spec.password.as_ref().map(read_password).transpose()?;
        let pool = open(
            &url,
            base,
            password.as_deref(),
            spec.max_connections,
            spec.statement_timeout,
        )
        .await?;
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        let mut types = Vec::new();
        for plan in plans {
            match prepare(&pool, &plan, mapping, &mut warnings).await {
                Ok(runnable) => types.push(runnable),
                Err(mut e) => errors.append(&mut e),
            }
        }
        if !errors.is_empty() {
            close(&pool).await;
            return Err(SqlError::Mapping(errors));
        }
        Ok(SqlDepartment {
            department: mapping.department().to_owned(),
            pool,
            timeout: spec.statement_timeout,
            types: Arc::new(types),
            warnings: Arc::new(warnings),
        })
    }

    /// What the check found that works but may not be what the department
    /// meant (a numeric column read as a string), each naming its line.
    pub fn warnings(&self) -> &[MappingError] {
        &self.warnings
    }

    /// Closes the pool (waits for connections in use to be returned).
    pub async fn close(&self) {
        close(&self.pool).await;
    }

    /// Runs `record_type`'s query for `subject_id` (bound, never spliced into
    /// the SQL) within the statement timeout.
    pub async fn lookup_id(
        &self,
        subject_id: &str,
        record_type: &str,
    ) -> Result<Vec<Value>, LookupError> {
        let runnable = self.runnable(record_type)?;
        let params = Params::Each(vec![subject_id; runnable.binds]);
        let rows = self
            .timed(record_type, &[subject_id], async {
                self.fetch(&runnable.sql, params, &runnable.fields, None)
                    .await
            })
            .await?;
        records(
            record_type,
            rows.into_iter().map(|(_, cells)| cells).collect(),
            &runnable.fields,
        )
    }

    /// [`Self::lookup_id`] for each of `subject_ids` (duplicates answered
    /// each), in their order, with the record type's `batch_query`: one
    /// statement per [`in_list::CHUNK`] distinct IDs, all bound, the rows
    /// handed back to their subjects by the subject column. Each subject's
    /// result is what `lookup_id` gives, provided the batch query selects
    /// what `query` does (same columns, same `ORDER BY`). A statement that
    /// fails or times out fails the subjects of its list; a row whose
    /// subject column names none of them (a mistaken `batch_subject`) fails
    /// them too, rather than giving a subject someone else's rows or none.
    /// Without a `batch_query`, one `lookup_id` per subject, one after
    /// another (the SDK's fallback, [`lookup_each`], runs a few at once).
    pub async fn lookup_ids(
        &self,
        subject_ids: &[&str],
        record_type: &str,
    ) -> Vec<Result<Vec<Value>, LookupError>> {
        let runnable = match self.runnable(record_type) {
            Ok(runnable) => runnable,
            Err(e) => return subject_ids.iter().map(|_| Err(e.clone())).collect(),
        };
        let Some(batch) = &runnable.batch else {
            let mut results = Vec::with_capacity(subject_ids.len());
            for id in subject_ids {
                results.push(self.lookup_id(id, record_type).await);
            }
            return results;
        };
        // Each subject once (a duplicate split over two lists would get its
        // rows twice), keyed as the database compares: see `subject_key`.
        let mut keys: Vec<String> = Vec::with_capacity(subject_ids.len());
        let mut distinct: Vec<&str> = Vec::new();
        let mut outcome: HashMap<String, Result<Vec<RowCells>, LookupError>> = HashMap::new();
        for id in subject_ids {
            let key = subject_key(id);
            if !outcome.contains_key(&key) {
                outcome.insert(key.clone(), Ok(Vec::new()));
                distinct.push(id);
            }
            keys.push(key);
        }
        for chunk in distinct.chunks(in_list::CHUNK) {
            let fetched = self.fetch_chunk(record_type, batch, chunk).await;
            let rows = match fetched {
                Ok(rows) => rows,
                Err(e) => {
                    for id in chunk {
                        outcome.insert(subject_key(id), Err(e.clone()));
                    }
                    continue;
                }
            };
            let listed: HashSet<String> = chunk.iter().map(|id| subject_key(id)).collect();
            let mut stray = false;
            for (subject, cells) in rows {
                let key = match subject {
                    Some(Ok(Cell::Text(text))) => subject_key(&text),
                    _ => String::new(),
                };
                match outcome.get_mut(&key) {
                    Some(Ok(of_subject)) if listed.contains(&key) => of_subject.push(cells),
                    _ => stray = true,
                }
            }
            if stray {
                tracing::warn!(
                    record_type,
                    column = batch.subject_column,
                    "the batch query returned a row whose subject column names no subject of the list"
                );
                let error = LookupError::Backend(format!(
                    "the batch query of `{record_type}` returned a row of no subject asked for; \
                     check its `batch_subject`"
                ));
                for id in chunk {
                    outcome.insert(subject_key(id), Err(error.clone()));
                }
            }
        }
        let mut records_of: HashMap<String, Result<Vec<Value>, LookupError>> = outcome
            .into_iter()
            .map(|(key, rows)| {
                let result = rows.and_then(|rows| records(record_type, rows, &batch.fields));
                (key, result)
            })
            .collect();
        // The last asker of a subject takes its records, earlier ones a copy.
        let mut remaining: HashMap<&str, usize> = HashMap::new();
        for key in &keys {
            *remaining.entry(key.as_str()).or_default() += 1;
        }
        keys.iter()
            .map(|key| {
                let left = remaining.get_mut(key.as_str()).map(|n| {
                    *n -= 1;
                    *n
                });
                let result = if left == Some(0) {
                    records_of.remove(key)
                } else {
                    records_of.get(key).cloned()
                };
                result.unwrap_or_else(|| Err(LookupError::Backend("no result".into())))
            })
            .collect()
    }

    /// The rows of one list of (distinct) IDs, each with its subject cell,
    /// under the statement timeout.
    async fn fetch_chunk(
        &self,
        record_type: &str,
        batch: &BatchRunnable,
        chunk: &[&str],
    ) -> Result<Vec<(Option<Result<Cell, String>>, RowCells)>, LookupError> {
        let (sql, params) = match &self.pool {
            Pool::Postgres(_) => (batch.statement(in_list::CHUNK), Params::Array(chunk)),
            Pool::Sqlite(_) | Pool::MySql(_) => {
                let list = in_list::padded(chunk);
                let sql = batch.statement(list.len());
                let repeats = match self.pool {
                    Pool::MySql(_) => batch.repeats,
                    _ => 1,
                };
                (sql, Params::Each(list.repeat(repeats)))
            }
        };
        let sql = sql.ok_or_else(|| {
            LookupError::Backend(format!(
                "no batch statement of `{record_type}` for the list"
            ))
        })?;
        self.timed(record_type, chunk, async {
            self.fetch(&sql, params, &batch.fields, Some(batch.subject_at))
                .await
        })
        .await
    }

    fn runnable(&self, record_type: &str) -> Result<&Runnable, LookupError> {
        self.types
            .iter()
            .find(|t| t.record_type == record_type)
            .ok_or_else(|| {
                LookupError::Backend(format!(
                    "record type `{record_type}` is not served by this adapter"
                ))
            })
    }

    /// Runs `query` within the statement timeout; a timeout or a database
    /// error is a backend error naming the record type, never the IDs.
    async fn timed<T>(
        &self,
        record_type: &str,
        ids: &[&str],
        query: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, LookupError> {
        let started = Instant::now();
        tokio::time::timeout(self.timeout, query)
            .await
            .map_err(|_| timed_out(record_type, self.timeout))?
            .map_err(|e| {
                if started.elapsed() >= self.timeout || is_timeout(&e) {
                    timed_out(record_type, self.timeout)
                } else {
                    LookupError::Backend(format!(
                        "the query of `{record_type}` failed: {}",
                        redact(&e, ids)
                    ))
                }
            })
    }

    /// The cells of each row, in field order, and with `subject_at` the
    /// subject cell too.
    async fn fetch(
        &self,
        sql: &Arc<str>,
        params: Params<'_>,
        fields: &[(FieldPlan, usize)],
        subject_at: Option<usize>,
    ) -> Result<Vec<(Option<Result<Cell, String>>, RowCells)>, sqlx::Error> {
        let sql = AssertSqlSafe(Arc::clone(sql));
        // Only PostgreSQL binds an array; any other driver binds each value.
        let (values, array) = match params {
            Params::Each(values) => (values, None),
            Params::Array(values) => (values.to_vec(), Some(values)),
        };
        match &self.pool {
            Pool::Sqlite(pool) => {
                let mut conn = pool.acquire().await?;
                // SQLite has no statement timeout: a progress handler
                // interrupts the statement once the deadline has passed.
                let deadline = Instant::now() + self.timeout;
                conn.lock_handle()
                    .await?
                    .set_progress_handler(10_000, move || Instant::now() < deadline);
                let mut query = sqlx::query(sql);
                for value in values {
                    query = query.bind(value);
                }
                let rows = query.fetch_all(&mut *conn).await;
                if let Ok(mut handle) = conn.lock_handle().await {
                    handle.remove_progress_handler();
                }
                Ok(cells(&rows?, fields, subject_at, sqlite_cell))
            }
            Pool::Postgres(pool) => {
                let mut query = sqlx::query(sql);
                if let Some(ids) = array {
                    query = query.bind(ids);
                } else {
                    for value in values {
                        query = query.bind(value);
                    }
                }
                Ok(cells(
                    &query.fetch_all(pool).await?,
                    fields,
                    subject_at,
                    pg_cell,
                ))
            }
            Pool::MySql(pool) => {
                let mut query = sqlx::query(sql);
                for value in values {
                    query = query.bind(value);
                }
                Ok(cells(
                    &query.fetch_all(pool).await?,
                    fields,
                    subject_at,
                    mysql_cell,
                ))
            }
        }
    }
}

/// A subject ID as the database compares it, for handing rows back: MySQL's
/// usual collations ignore case and trailing blanks (a `CHAR` column pads),
/// so a row may name `...x` for `...X`; `query` would return that row too.
/// Valid IDs are upper case and blank-free, so distinct IDs keep distinct
/// keys.
fn subject_key(id: &str) -> String {
    id.trim_end_matches(' ').to_ascii_uppercase()
}

/// The records of one subject's rows; a row that makes none is bad data,
/// named by the row's place among the subject's rows and the catalog field.
fn records(
    record_type: &str,
    rows: Vec<RowCells>,
    fields: &[(FieldPlan, usize)],
) -> Result<Vec<Value>, LookupError> {
    rows.into_iter()
        .enumerate()
        .map(|(n, cells)| {
            record(fields, cells).map_err(|e| {
                // The column only in the adapter's log; the requester
                // learns the catalog field.
                tracing::warn!(
                    record_type,
                    row = n + 1,
                    column = e.column,
                    field = e.field,
                    problem = e.what,
                    "a row makes no valid record"
                );
                row_error(record_type, n, &e)
            })
        })
        .collect()
}

impl Department for SqlDepartment {
    fn department(&self) -> &str {
        &self.department
    }

    fn record_types(&self) -> Vec<String> {
        self.types.iter().map(|t| t.record_type.clone()).collect()
    }

    async fn lookup(
        &self,
        subject: &Subject,
        record_type: &str,
    ) -> Result<Vec<Value>, LookupError> {
        self.lookup_id(&subject.id, record_type).await
    }

    /// The `batch_query` of the type, set-based; a type without one takes
    /// the SDK's one-by-one fallback (a few lookups at once).
    async fn lookup_batch(
        &self,
        subjects: &[Subject],
        record_type: &str,
    ) -> Vec<Result<Vec<Value>, LookupError>> {
        let batched = self
            .types
            .iter()
            .any(|t| t.record_type == record_type && t.batch.is_some());
        if batched {
            let ids: Vec<&str> = subjects.iter().map(|s| s.id.as_str()).collect();
            self.lookup_ids(&ids, record_type).await
        } else {
            lookup_each(self, subjects, record_type).await
        }
    }
}

/// Opens the pool for `url`. SQLite is always opened read-only (the adapter
/// never writes); PostgreSQL and MySQL sessions are made read-only and get
/// the statement timeout as a server setting too.
async fn open(
    url: &str,
    base: Option<&Path>,
    password: Option<&str>,
    max_connections: u32,
    timeout: Duration,
) -> Result<Pool, SqlError> {
    let shown = hide_password(url);
    let bad = |reason: String| SqlError::BadUrl {
        url: shown.clone(),
        reason,
    };
    let connect_error = |source| SqlError::Connect {
        url: shown.clone(),
        source,
    };
    let millis = timeout.as_millis().max(1);
    if url.starts_with("sqlite:") {
        if password.is_some() {
            return Err(bad("a SQLite database has no password".into()));
        }
        let mut options = SqliteConnectOptions::from_str(url)
            .map_err(|e| bad(e.to_string()))?
            .read_only(true)
            .create_if_missing(false);
        let file = options.get_filename().to_owned();
        if let Some(base) = base
            && file.is_relative()
            && file.as_os_str() != ":memory:"
        {
            options = options.filename(base.join(file));
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(timeout)
            .connect_with(options)
            .await
            .map_err(connect_error)?;
        Ok(Pool::Sqlite(pool))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let mut options = PgConnectOptions::from_str(url).map_err(|e| bad(e.to_string()))?;
        if let Some(password) = password {
            options = options.password(password);
        }
        let options = options.options([
            ("statement_timeout", millis.to_string()),
            ("default_transaction_read_only", "on".to_owned()),
        ]);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(timeout)
            .connect_with(options)
            .await
            .map_err(connect_error)?;
        Ok(Pool::Postgres(pool))
    } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
        let url = url.replacen("mariadb://", "mysql://", 1);
        let mut options = MySqlConnectOptions::from_str(&url).map_err(|e| bad(e.to_string()))?;
        if let Some(password) = password {
            options = options.password(password);
        }
        let pool = MySqlPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(timeout)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    let version: String = sqlx::query_scalar("SELECT VERSION()")
                        .fetch_one(&mut *conn)
                        .await?;
                    // MariaDB names the setting differently, in seconds.
                    let limit = if version.contains("MariaDB") {
                        #[allow(clippy::cast_precision_loss)]
                        let seconds = millis as f64 / 1000.0;
                        format!("SET SESSION max_statement_time = {seconds}")
                    } else {
                        format!("SET SESSION max_execution_time = {millis}")
                    };
                    conn.execute(AssertSqlSafe(limit)).await?;
                    conn.execute("SET SESSION TRANSACTION READ ONLY").await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(connect_error)?;
        Ok(Pool::MySql(pool))
    } else {
        Err(bad(
            "use `sqlite:PATH`, `postgres://...` or `mysql://...`".into()
        ))
    }
}

/// The password from its environment variable or file (a trailing newline
/// dropped); never logged.
fn read_password(source: &PasswordSource) -> Result<String, SqlError> {
    match source {
        PasswordSource::Env(var) => std::env::var(var)
            .map_err(|_| SqlError::Password(format!("environment variable `{var}` is not set"))),
        PasswordSource::File(path) => std::fs::read_to_string(path)
            .map(|s| s.trim_end_matches(['\n', '\r']).to_owned())
            .map_err(|e| SqlError::Password(format!("cannot read `{}`: {e}", path.display()))),
    }
}

async fn close(pool: &Pool) {
    match pool {
        Pool::Sqlite(p) => p.close().await,
        Pool::Postgres(p) => p.close().await,
        Pool::MySql(p) => p.close().await,
    }
}

/// Prepares `plan`'s query (and batch query) and finds each mapped column in
/// its result.
async fn prepare(
    pool: &Pool,
    plan: &TypePlan,
    mapping: &Mapping,
    warnings: &mut Vec<MappingError>,
) -> Result<Runnable, Vec<MappingError>> {
    let (sql, binds) = plan.query.render(pool.dialect());
    let columns = describe(pool, &sql).await.map_err(|e| {
        vec![mapping.error_at(
            plan.query_position,
            format!(
                "the query of `{}` is refused by the database: {e}",
                plan.record_type
            ),
        )]
    })?;
    let fields = map_fields(plan, &columns, mapping, warnings, None);
    let batch = match &plan.batch {
        Some(batch) => prepare_batch(pool, plan, batch, mapping).await.map(Some),
        None => Ok(None),
    };
    match (fields, batch) {
        (Ok(fields), Ok(batch)) => Ok(Runnable {
            record_type: plan.record_type.clone(),
            sql: Arc::from(sql),
            binds,
            fields,
            batch,
        }),
        (Err(mut a), Err(b)) => {
            a.extend(b);
            Err(a)
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}

/// Prepares the batch query the same way, and finds the subject column,
/// which must hold text.
async fn prepare_batch(
    pool: &Pool,
    plan: &TypePlan,
    batch: &BatchPlan,
    mapping: &Mapping,
) -> Result<BatchRunnable, Vec<MappingError>> {
    let dialect = pool.dialect();
    let sizes = match dialect {
        // One statement for any number of IDs (one array).
        Dialect::Postgres => vec![in_list::CHUNK],
        Dialect::Sqlite | Dialect::MySql => in_list::sizes(),
    };
    let statements: Vec<(usize, Arc<str>)> = sizes
        .into_iter()
        .map(|n| (n, Arc::from(batch.query.render(dialect, n))))
        .collect();
    let first = statements
        .first()
        .map(|(_, sql)| sql.to_string())
        .unwrap_or_default();
    let columns = describe(pool, &first).await.map_err(|e| {
        vec![mapping.error_at(
            batch.query_position,
            format!(
                "the batch query of `{}` is refused by the database: {e}",
                plan.record_type
            ),
        )]
    })?;
    // Warnings were given for `query` already.
    let fields = map_fields(
        plan,
        &columns,
        mapping,
        &mut Vec::new(),
        Some(batch.query_position),
    );
    let subject_at = columns.iter().position(|c| c.0 == batch.subject_column);
    let subject = match subject_at.and_then(|i| columns.get(i).map(|c| (i, c))) {
        None => Err(mapping.error_at(
            batch.subject_position,
            format!(
                "column `{}` (the subject of each row) is not returned by the batch query of `{}`",
                batch.subject_column, plan.record_type
            ),
        )),
        // Text, or an SQLite expression (no declared type: read row by row).
        Some((i, (_, _, None | Some(Some(Kind::Text))))) => Ok(i),
        Some((_, (_, type_name, _))) => Err(mapping.error_at(
            batch.subject_position,
            format!(
                "column `{}` has type `{type_name}`; the subject of each row of the batch query \
                 of `{}` must be the ID as text",
                batch.subject_column, plan.record_type
            ),
        )),
    };
    match (fields, subject) {
        (Ok(fields), Ok(subject_at)) => Ok(BatchRunnable {
            statements,
            repeats: batch.query.occurrences(),
            fields,
            subject_at,
            subject_column: batch.subject_column.clone(),
        }),
        (Err(mut errors), Err(e)) => {
            errors.push(e);
            Err(errors)
        }
        (Err(errors), _) => Err(errors),
        (_, Err(e)) => Err(vec![e]),
    }
}

/// The columns a statement returns, with their types, as the database
/// describes them when preparing it.
async fn describe(pool: &Pool, sql: &str) -> Result<Vec<ColumnInfo>, sqlx::Error> {
    let sql = AssertSqlSafe(sql.to_owned()).into_sql_str();
    match pool {
        Pool::Sqlite(p) => p
            .prepare(sql)
            .await
            .map(|s| columns(s.columns(), |t| (t != "NULL").then(|| Kind::sqlite(t)))),
        Pool::Postgres(p) => p
            .prepare(sql)
            .await
            .map(|s| columns(s.columns(), |t| Some(Kind::postgres(t)))),
        Pool::MySql(p) => p
            .prepare(sql)
            .await
            .map(|s| columns(s.columns(), |t| Some(Kind::mysql(t)))),
    }
}

/// Finds each mapped field's column among `columns` and checks its type
/// against the field. `batch`: the position of the batch query, named
/// instead of the field's line when the batch query lacks a column.
fn map_fields(
    plan: &TypePlan,
    columns: &[ColumnInfo],
    mapping: &Mapping,
    warnings: &mut Vec<MappingError>,
    batch: Option<(usize, usize)>,
) -> Result<Vec<(FieldPlan, usize)>, Vec<MappingError>> {
    let mut errors = Vec::new();
    let mut fields = Vec::new();
    for field in &plan.fields {
        let Some(index) = columns.iter().position(|c| c.0 == field.column) else {
            errors.push(mapping.error_at(
                batch.unwrap_or(field.position),
                format!(
                    "column `{}` (field `{}`) is not returned by the {} of `{}`; it returns {}",
                    field.column,
                    field.field,
                    if batch.is_some() { "batch query" } else { "query" },
                    plan.record_type,
                    columns
                        .iter()
                        .map(|c| format!("`{}`", c.0))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
            continue;
        };
        // (name, declared type, its kind); a SQLite expression has no
        // declared type (`None`): its values are checked row by row.
        if let Some((_, type_name, Some(kind))) = columns.get(index) {
            let verdict = kind.map_or(Verdict::Refused, |k| {
                k.verdict(field.ty, field.values.is_some(), field.from_number)
            });
            match verdict {
                    Verdict::Fits => {}
                    Verdict::Warn => warnings.push(mapping.error_at(
                        field.position,
                        format!(
                            "column `{}` has type `{type_name}`: string field `{}` will hold its digits (`\"9\"`); if that is meant, say `from_number = true`, else map a text column",
                            field.column, field.field
                        ),
                    )),
                    Verdict::Refused => errors.push(mapping.error_at(
                        field.position,
                        format!(
                            "column `{}` has type `{type_name}`, which cannot make field `{}`: {}",
                            field.column,
                            field.field,
                            if field.values.is_some() {
                                "a value map needs a text, integer or boolean code column"
                            } else {
                                Kind::hint(field.ty)
                            }
                        ),
                    )),
                }
        }
        fields.push((field.clone(), index));
    }
    if errors.is_empty() {
        Ok(fields)
    } else {
        Err(errors)
    }
}

type ColumnInfo = (String, String, Option<Option<Kind>>);

fn columns<C: sqlx::Column>(
    columns: &[C],
    kind: impl Fn(&str) -> Option<Option<Kind>>,
) -> Vec<ColumnInfo> {
    columns
        .iter()
        .map(|c| {
            let type_name = c.type_info().name().to_owned();
            let k = kind(&type_name);
            (c.name().to_owned(), type_name, k)
        })
        .collect()
}

/// The cells of each row in field order, decoded by `cell`; a cell that
/// cannot be decoded is kept as its error (bad data of that field).
fn cells<R>(
    rows: &[R],
    fields: &[(FieldPlan, usize)],
    subject_at: Option<usize>,
    cell: fn(&R, usize) -> Result<Cell, String>,
) -> Vec<(Option<Result<Cell, String>>, RowCells)> {
    rows.iter()
        .map(|row| {
            let subject = subject_at.map(|index| cell(row, index));
            let cells = fields.iter().map(|(_, index)| cell(row, *index)).collect();
            (subject, cells)
        })
        .collect()
}

/// Why a row makes no record: the field (told to the requester), its column
/// (the adapter's log only) and what is wrong (never the value).
#[derive(Debug, Clone, PartialEq, Eq)]
struct RowError {
    field: String,
    column: String,
    what: String,
}

/// One record from one row's cells. NULL is JSON null where the schema
/// allows it, an absent field where the field is optional, else an error;
/// a coded field's value comes from its value map.
fn record(fields: &[(FieldPlan, usize)], cells: RowCells) -> Result<Value, RowError> {
    let mut record = Map::new();
    for ((field, _), cell) in fields.iter().zip(cells) {
        let fail = |what: String| RowError {
            field: field.field.clone(),
            column: field.column.clone(),
            what,
        };
        let cell = cell.map_err(fail)?;
        if cell == Cell::Null {
            if field.nullable {
                record.insert(field.field.clone(), Value::Null);
            } else if field.required {
                return Err(fail("is NULL, but the field is required".into()));
            }
            continue;
        }
        let value = match &field.values {
            Some(values) => cell::code(&cell)
                .and_then(|code| values.get(&code).cloned())
                .ok_or_else(|| fail("holds a code its value map does not list".into()))?,
            None => cell::to_json(cell, field.ty, field.separator.as_deref()).map_err(fail)?,
        };
        record.insert(field.field.clone(), value);
    }
    Ok(Value::Object(record))
}

/// Bad data: the requester is told the field, not the column.
fn row_error(record_type: &str, n: usize, error: &RowError) -> LookupError {
    LookupError::BadData(format!(
        "row {} of `{record_type}`: field `{}` {}",
        n + 1,
        error.field,
        error.what
    ))
}

fn timed_out(record_type: &str, timeout: Duration) -> LookupError {
    LookupError::Backend(format!(
        "the query of `{record_type}` took longer than the statement timeout of {} ms",
        timeout.as_millis()
    ))
}

/// Whether the database itself cut the statement off: PostgreSQL 57014
/// (`statement_timeout`), MySQL 3024 / MariaDB 1969, SQLite interrupted.
fn is_timeout(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => {
            matches!(db.code().as_deref(), Some("57014" | "HY000" | "70100"))
                && (db.message().contains("timeout")
                    || db.message().contains("interrupted")
                    || db.message().contains("maximum statement execution time")
                    || db.message().contains("max_statement_time")
                    || db.message().contains("canceling statement"))
                || db.message().contains("interrupted")
        }
        sqlx::Error::PoolTimedOut => true,
        _ => false,
    }
}

/// The error's text with the subject IDs masked: database messages may quote
/// a bound value.
fn redact(error: &sqlx::Error, subject_ids: &[&str]) -> String {
    let mut text = error.to_string();
    for id in subject_ids {
        if !id.is_empty() && text.contains(id) {
            text = text.replace(id, "***");
        }
    }
    text
}

/// `url` with any password replaced by `***`, for messages.
fn hide_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

fn sqlite_cell(row: &SqliteRow, index: usize) -> Result<Cell, String> {
    let value = row.try_get_raw(index).map_err(|e| e.to_string())?;
    if value.is_null() {
        return Ok(Cell::Null);
    }
    let ty = value.type_info().name().to_owned();
    let decoded = match ty.as_str() {
        "INTEGER" | "BOOLEAN" => <i64 as Decode<Sqlite>>::decode(value).map(Cell::Int),
        "REAL" | "NUMERIC" => <f64 as Decode<Sqlite>>::decode(value).map(Cell::Float),
        "TEXT" | "DATE" | "DATETIME" | "TIME" => {
            <String as Decode<Sqlite>>::decode(value).map(Cell::Text)
        }
        other => return Err(format!("holds a `{other}` value, which cannot be read")),
    };
    decoded.map_err(|e| e.to_string())
}

fn pg_cell(row: &PgRow, index: usize) -> Result<Cell, String> {
    let value = row.try_get_raw(index).map_err(|e| e.to_string())?;
    if value.is_null() {
        return Ok(Cell::Null);
    }
    let ty = value.type_info().name().to_owned();
    let Some(kind) = Kind::postgres(&ty) else {
        return Err(format!("has type `{ty}`, which cannot be read"));
    };
    let decoded = match (kind, ty.as_str()) {
        (Kind::Bool, _) => <bool as Decode<Postgres>>::decode(value).map(Cell::Bool),
        (Kind::SmallInt | Kind::Int, "INT2") => {
            <i16 as Decode<Postgres>>::decode(value).map(|i| Cell::Int(i.into()))
        }
        (Kind::Int, "INT4") => {
            <i32 as Decode<Postgres>>::decode(value).map(|i| Cell::Int(i.into()))
        }
        (Kind::SmallInt | Kind::Int, _) => <i64 as Decode<Postgres>>::decode(value).map(Cell::Int),
        (Kind::Float, "FLOAT4") => {
            <f32 as Decode<Postgres>>::decode(value).map(|f| Cell::Float(f.into()))
        }
        (Kind::Float, _) => <f64 as Decode<Postgres>>::decode(value).map(Cell::Float),
        (Kind::Decimal, _) => {
            return match value.format() {
                PgValueFormat::Binary => {
                    cell::pg_numeric(value.as_bytes().map_err(|e| e.to_string())?).map(Cell::Float)
                }
                PgValueFormat::Text => Ok(Cell::Text(
                    value.as_str().map_err(|e| e.to_string())?.to_owned(),
                )),
            };
        }
        (Kind::Text, _) => <String as Decode<Postgres>>::decode(value).map(Cell::Text),
        (Kind::Date, _) => <time::Date as Decode<Postgres>>::decode(value).map(Cell::Date),
        (Kind::DateTime, _) => <time::PrimitiveDateTime as Decode<Postgres>>::decode(value)
            .map(|d| Cell::Date(d.date())),
        (Kind::DateTimeTz, _) => <time::OffsetDateTime as Decode<Postgres>>::decode(value)
            .map(|d| Cell::Date(d.to_offset(time::UtcOffset::UTC).date())),
        (Kind::Json, _) => {
            <sqlx::types::Json<Value> as Decode<Postgres>>::decode(value).map(|j| Cell::Json(j.0))
        }
        (Kind::TextArray, _) => <Vec<String> as Decode<Postgres>>::decode(value).map(Cell::List),
    };
    decoded.map_err(|e| e.to_string())
}

fn mysql_cell(row: &MySqlRow, index: usize) -> Result<Cell, String> {
    let value = row.try_get_raw(index).map_err(|e| e.to_string())?;
    let ty = value.type_info().name().to_owned();
    if value.is_null() {
        // The driver calls a zero date NULL; its raw bytes say otherwise
        // (a NULL has none, a zero date a zero length byte).
        let zero = matches!(ty.as_str(), "DATE" | "DATETIME" | "TIMESTAMP")
            && <&[u8] as Decode<MySql>>::decode(value).is_ok();
        return Ok(if zero { Cell::ZeroDate } else { Cell::Null });
    }
    let Some(kind) = Kind::mysql(&ty) else {
        return Err(format!("has type `{ty}`, which cannot be read"));
    };
    let decoded = match kind {
        Kind::Bool => <bool as Decode<MySql>>::decode(value).map(Cell::Bool),
        Kind::Int | Kind::SmallInt if ty.ends_with("UNSIGNED") => {
            <u64 as Decode<MySql>>::decode(value).and_then(|u| {
                i64::try_from(u)
                    .map(Cell::Int)
                    .map_err(|e| Box::new(e) as sqlx::error::BoxDynError)
            })
        }
        Kind::Int | Kind::SmallInt => <i64 as Decode<MySql>>::decode(value).map(Cell::Int),
        Kind::Float if ty == "FLOAT" => {
            <f32 as Decode<MySql>>::decode(value).map(|f| Cell::Float(f.into()))
        }
        Kind::Float => <f64 as Decode<MySql>>::decode(value).map(Cell::Float),
        // DECIMAL comes as text on the wire: read exactly, then parsed.
        Kind::Decimal | Kind::Text | Kind::Json | Kind::TextArray => {
            <String as Decode<MySql>>::decode(value).map(Cell::Text)
        }
        Kind::Date => <time::Date as Decode<MySql>>::decode(value).map(Cell::Date),
        Kind::DateTime | Kind::DateTimeTz => {
            <time::PrimitiveDateTime as Decode<MySql>>::decode(value).map(|d| Cell::Date(d.date()))
        }
    };
    decoded.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::FieldType;

    fn field(name: &str, ty: FieldType, nullable: bool, required: bool) -> (FieldPlan, usize) {
        let plan = FieldPlan {
            field: name.into(),
            column: format!("c_{name}"),
            ty,
            separator: None,
            nullable,
            required,
            from_number: false,
            values: None,
            position: (1, 1),
        };
        (plan, 0)
    }

    fn runnable(fields: Vec<(FieldPlan, usize)>) -> Vec<(FieldPlan, usize)> {
        fields
    }

    #[test]
    fn null_is_null_absent_or_an_error_as_the_schema_says() {
        let t = runnable(vec![
            field("nullable", FieldType::String, true, true),
            field("optional", FieldType::Integer, false, false),
            field("required", FieldType::Date, false, true),
        ]);
        let text = |s: &str| Ok(Cell::Text(s.into()));
        let record =
            super::record(&t, vec![Ok(Cell::Null), Ok(Cell::Null), text("20240101")]).unwrap();
        assert_eq!(
            record,
            serde_json::json!({"nullable": null, "required": "2024-01-01"})
        );
        let record =
            super::record(&t, vec![text("x"), Ok(Cell::Int(3)), text("2024-01-01")]).unwrap();
        assert_eq!(
            record,
            serde_json::json!({"nullable": "x", "optional": 3, "required": "2024-01-01"})
        );
        let err = super::record(&t, vec![text("x"), Ok(Cell::Int(3)), Ok(Cell::Null)]).unwrap_err();
        assert_eq!(err.what, "is NULL, but the field is required");
        let err = row_error("t", 1, &err).to_string();
        assert!(err.contains("row 2 of `t`"), "{err}");
    }

    #[test]
    fn bad_data_is_bad_data_naming_the_field_not_the_column() {
        let t = runnable(vec![field(
            "registration_date",
            FieldType::Date,
            false,
            true,
        )]);
        for cell in [
            Ok(Cell::Text("2024-13-45".into())),
            Ok(Cell::ZeroDate),
            Ok(Cell::Null),
            Err("has type `BLOB`, which cannot be read".into()),
        ] {
            let err = super::record(&t, vec![cell.clone()]).unwrap_err();
            assert_eq!(err.column, "c_registration_date");
            let LookupError::BadData(text) = row_error("marriage_registration", 0, &err) else {
                panic!("not bad data: {cell:?}");
            };
            assert!(
                text.starts_with("row 1 of `marriage_registration`: field `registration_date` "),
                "{text}"
            );
            assert!(
                !text.contains("c_registration_date"),
                "the column leaked: {text}"
            );
        }
        let err = super::record(&t, vec![Ok(Cell::ZeroDate)]).unwrap_err();
        assert!(err.what.contains("zero date `0000-00-00`"), "{}", err.what);
    }

    #[test]
    fn a_value_map_turns_codes_into_values_and_refuses_unknown_codes() {
        let (mut plan, index) = field("has_arrears", FieldType::Boolean, false, true);
        plan.values = Some(
            [("1", true), ("0", false)]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), Value::Bool(v)))
                .collect(),
        );
        let t = runnable(vec![(plan, index)]);
        for (cell, want) in [
            (Cell::Text("1".into()), true),
            (Cell::Text("0 ".into()), false),
            (Cell::Int(1), true),
        ] {
            assert_eq!(
                super::record(&t, vec![Ok(cell)]).unwrap(),
                serde_json::json!({ "has_arrears": want })
            );
        }
        let err = super::record(&t, vec![Ok(Cell::Text("Y".into()))]).unwrap_err();
        let text = row_error("t", 0, &err).to_string();
        assert_eq!(
            text,
            "row 1 of `t`: field `has_arrears` holds a code its value map does not list"
        );
    }

    #[test]
    fn database_messages_lose_the_subject_id() {
        let error = sqlx::Error::Protocol("bad value 11010519491231002X here".into());
        let text = redact(&error, &["110101199003070011", "11010519491231002X"]);
        assert!(
            !text.contains("11010519491231002X") && text.contains("***"),
            "{text}"
        );
    }

    #[test]
    fn passwords_are_hidden_in_urls() {
        assert_eq!(
            hide_password("postgres://app:s3cret@db:5432/x"),
            "postgres://app:***@db:5432/x"
        );
        assert_eq!(
            hide_password("mysql://root@127.0.0.1/x"),
            "mysql://root@127.0.0.1/x"
        );
        assert_eq!(hide_password("sqlite:a.db"), "sqlite:a.db");
    }
}
