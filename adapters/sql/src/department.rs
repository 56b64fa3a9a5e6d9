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

use crate::cell::{self, Cell, Kind};
use crate::mapping::{FieldPlan, Mapping, MappingError, TypePlan, join_errors};
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
        let pool = open(&url, base, spec.max_connections, spec.statement_timeout).await?;
        let mut errors = Vec::new();
        let mut types = Vec::new();
        for plan in plans {
            match prepare(&pool, &plan, mapping).await {
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
        })
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
            .map(|(n, cells)| record(runnable, cells).map_err(|e| row_error(record_type, n, &e)))
            .collect()
    }

    /// The cells of each row, in field order.
    async fn fetch(&self, t: &Runnable, id: &str) -> Result<Vec<Vec<Cell>>, sqlx::Error> {
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
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| bad(e.to_string()))?
            .options([
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
        let options = MySqlConnectOptions::from_str(&url).map_err(|e| bad(e.to_string()))?;
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
) -> Result<Runnable, Vec<MappingError>> {
    let (sql, binds) = plan.query.render(pool.dialect());
    let prepared = match pool {
        Pool::Sqlite(p) => p
            .prepare(AssertSqlSafe(sql.clone()).into_sql_str())
            .await
            .map(|s| columns(s.columns(), |_| None)),
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
        // (name, declared type, its kind); SQLite's types are per value.
        if let Some((_, type_name, Some(kind))) = columns.get(index) {
            match kind {
                Some(kind) if kind.can_make(field.ty) => {}
                _ => errors.push(mapping.error_at(
                    field.position,
                    format!(
                        "column `{}` has type `{type_name}`, which cannot make field `{}`: {}",
                        field.column,
                        field.field,
                        Kind::hint(field.ty)
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

/// The cells of each row in field order, decoded by `cell`.
fn cells<R>(
    rows: &[R],
    t: &Runnable,
    cell: fn(&R, usize) -> Result<Cell, String>,
) -> Result<Vec<Vec<Cell>>, sqlx::Error> {
    rows.iter()
        .map(|row| {
            t.fields
                .iter()
                .map(|(field, index)| {
                    cell(row, *index).map_err(|e| {
                        sqlx::Error::Decode(format!("column `{}`: {e}", field.column).into())
                    })
                })
                .collect()
        })
        .collect()
}

/// One record from one row's cells. NULL is JSON null where the schema
/// allows it, an absent field where the field is optional, else an error.
fn record(t: &Runnable, cells: Vec<Cell>) -> Result<Value, String> {
    let mut record = Map::new();
    for ((field, _), cell) in t.fields.iter().zip(cells) {
        if cell == Cell::Null {
            if field.nullable {
                record.insert(field.field.clone(), Value::Null);
            } else if field.required {
                return Err(format!(
                    "column `{}` is NULL, but field `{}` is required",
                    field.column, field.field
                ));
            }
            continue;
        }
        let value = cell::to_json(cell, field.ty, field.separator.as_deref(), &field.column)?;
        record.insert(field.field.clone(), value);
    }
    Ok(Value::Object(record))
}

fn row_error(record_type: &str, n: usize, error: &str) -> LookupError {
    LookupError::Backend(format!("row {} of `{record_type}`: {error}", n + 1))
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
        (Kind::Int, "INT2") => {
            <i16 as Decode<Postgres>>::decode(value).map(|i| Cell::Int(i.into()))
        }
        (Kind::Int, "INT4") => {
            <i32 as Decode<Postgres>>::decode(value).map(|i| Cell::Int(i.into()))
        }
        (Kind::Int, _) => <i64 as Decode<Postgres>>::decode(value).map(Cell::Int),
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
    if value.is_null() {
        return Ok(Cell::Null);
    }
    let ty = value.type_info().name().to_owned();
    let Some(kind) = Kind::mysql(&ty) else {
        return Err(format!("has type `{ty}`, which cannot be read"));
    };
    let decoded = match kind {
        Kind::Bool => <bool as Decode<MySql>>::decode(value).map(Cell::Bool),
        Kind::Int if ty.ends_with("UNSIGNED") => {
            <u64 as Decode<MySql>>::decode(value).and_then(|u| {
                i64::try_from(u)
                    .map(Cell::Int)
                    .map_err(|e| Box::new(e) as sqlx::error::BoxDynError)
            })
        }
        Kind::Int => <i64 as Decode<MySql>>::decode(value).map(Cell::Int),
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
            position: (1, 1),
        };
        (plan, 0)
    }

    #[test]
    fn null_is_null_absent_or_an_error_as_the_schema_says() {
        let t = Runnable {
            record_type: "t".into(),
            sql: Arc::from("SELECT 1"),
            binds: 1,
            fields: vec![
                field("nullable", FieldType::String, true, true),
                field("optional", FieldType::Integer, false, false),
                field("required", FieldType::Date, false, true),
            ],
        };
        let text = |s: &str| Cell::Text(s.into());
        let record = super::record(&t, vec![Cell::Null, Cell::Null, text("20240101")]).unwrap();
        assert_eq!(
            record,
            serde_json::json!({"nullable": null, "required": "2024-01-01"})
        );
        let record = super::record(&t, vec![text("x"), Cell::Int(3), text("2024-01-01")]).unwrap();
        assert_eq!(
            record,
            serde_json::json!({"nullable": "x", "optional": 3, "required": "2024-01-01"})
        );
        let err = super::record(&t, vec![text("x"), Cell::Int(3), Cell::Null]).unwrap_err();
        assert_eq!(
            err,
            "column `c_required` is NULL, but field `required` is required"
        );
        let err = row_error("t", 1, &err).to_string();
        assert!(err.contains("row 2 of `t`"), "{err}");
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
