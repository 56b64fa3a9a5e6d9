//! [`SqlDepartment`]: a checked mapping over a connection pool, served as an
//! adapter SDK [`Department`].

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
use xgate_adapter_sdk::{Department, LookupError, Subject};
use xgate_catalog::Catalog;

use crate::cell::{self, Cell, Kind, Verdict};
use crate::mapping::{FieldPlan, Mapping, MappingError, PasswordSource, TypePlan, join_errors};
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
}

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
        let Some(runnable) = self.types.iter().find(|t| t.record_type == record_type) else {
            return Err(LookupError::Backend(format!(
                "record type `{record_type}` is not served by this adapter"
            )));
        };
        let started = Instant::now();
        let rows = tokio::time::timeout(self.timeout, self.fetch(runnable, subject_id))
            .await
            .map_err(|_| timed_out(record_type, self.timeout))?
            .map_err(|e| {
                if started.elapsed() >= self.timeout || is_timeout(&e) {
                    timed_out(record_type, self.timeout)
                } else {
                    LookupError::Backend(format!(
                        "the query of `{record_type}` failed: {}",
                        redact(&e, subject_id)
                    ))
                }
            })?;
        rows.into_iter()
            .enumerate()
            .map(|(n, cells)| {
                record(runnable, cells).map_err(|e| {
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

    /// The cells of each row, in field order.
    async fn fetch(
        &self,
        t: &Runnable,
        id: &str,
    ) -> Result<Vec<Vec<Result<Cell, String>>>, sqlx::Error> {
        let sql = AssertSqlSafe(Arc::clone(&t.sql));
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
                for _ in 0..t.binds {
                    query = query.bind(id);
                }
                let rows = query.fetch_all(&mut *conn).await;
                if let Ok(mut handle) = conn.lock_handle().await {
                    handle.remove_progress_handler();
                }
                cells(&rows?, t, sqlite_cell)
            }
            Pool::Postgres(pool) => {
                let mut query = sqlx::query(sql);
                for _ in 0..t.binds {
                    query = query.bind(id);
                }
                cells(&query.fetch_all(pool).await?, t, pg_cell)
            }
            Pool::MySql(pool) => {
                let mut query = sqlx::query(sql);
                for _ in 0..t.binds {
                    query = query.bind(id);
                }
                cells(&query.fetch_all(pool).await?, t, mysql_cell)
            }
        }
    }
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

/// Prepares `plan`'s query and finds each mapped column in its result.
async fn prepare(
    pool: &Pool,
    plan: &TypePlan,
    mapping: &Mapping,
    warnings: &mut Vec<MappingError>,
) -> Result<Runnable, Vec<MappingError>> {
    let (sql, binds) = plan.query.render(pool.dialect());
    let prepared = match pool {
        Pool::Sqlite(p) => p
            .prepare(AssertSqlSafe(sql.clone()).into_sql_str())
            .await
            .map(|s| columns(s.columns(), |t| (t != "NULL").then(|| Kind::sqlite(t)))),
        Pool::Postgres(p) => p
            .prepare(AssertSqlSafe(sql.clone()).into_sql_str())
            .await
            .map(|s| columns(s.columns(), |t| Some(Kind::postgres(t)))),
        Pool::MySql(p) => p
            .prepare(AssertSqlSafe(sql.clone()).into_sql_str())
            .await
            .map(|s| columns(s.columns(), |t| Some(Kind::mysql(t)))),
    };
    let columns = prepared.map_err(|e| {
        vec![mapping.error_at(
            plan.query_position,
            format!(
                "the query of `{}` is refused by the database: {e}",
                plan.record_type
            ),
        )]
    })?;
    let mut errors = Vec::new();
    let mut fields = Vec::new();
    for field in &plan.fields {
        let Some(index) = columns.iter().position(|c| c.0 == field.column) else {
            errors.push(mapping.error_at(
                field.position,
                format!(
                    "column `{}` (field `{}`) is not returned by the query of `{}`; it returns {}",
                    field.column,
                    field.field,
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
        Ok(Runnable {
            record_type: plan.record_type.clone(),
            sql: Arc::from(sql),
            binds,
            fields,
        })
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
    t: &Runnable,
    cell: fn(&R, usize) -> Result<Cell, String>,
) -> Result<Vec<Vec<Result<Cell, String>>>, sqlx::Error> {
    Ok(rows
        .iter()
        .map(|row| {
            t.fields
                .iter()
                .map(|(_, index)| cell(row, *index))
                .collect()
        })
        .collect())
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
fn record(t: &Runnable, cells: Vec<Result<Cell, String>>) -> Result<Value, RowError> {
    let mut record = Map::new();
    for ((field, _), cell) in t.fields.iter().zip(cells) {
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

/// The error's text with the subject ID masked: database messages may quote
/// a bound value.
fn redact(error: &sqlx::Error, subject_id: &str) -> String {
    let text = error.to_string();
    if subject_id.is_empty() {
        text
    } else {
        text.replace(subject_id, "***")
    }
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

    fn runnable(fields: Vec<(FieldPlan, usize)>) -> Runnable {
        Runnable {
            record_type: "t".into(),
            sql: Arc::from("SELECT 1"),
            binds: 1,
            fields,
        }
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
        let text = redact(&error, "11010519491231002X");
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
