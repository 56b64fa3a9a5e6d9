//! The SQL store of a synthetic department database: one table per record
//! type, its columns named as the record's JSON fields.
//!
//! A department describes its tables once ([`Table`]); from that come the
//! DDL, the seeding inserts and the lookup queries, and the mapping of rows to
//! JSON records. The SQL is plain (standard column types, one parameter per
//! value, `WHERE <subject> = ?`), so pointing an adapter at PostgreSQL means
//! changing the placeholder style, not the schema.
//!
//! Screening asks about many subjects at once: [`Store::lookup_many`] reads
//! them with `WHERE <subject> IN (?, ?, ...)` (lists of at most
//! [`in_list::CHUNK`], padded to a few lengths so each is one cached
//! statement) and groups the rows back by the subject column, instead of a
//! query per subject.
//!
//! SQL text is built only from the names of static [`Table`] specs, checked
//! to be plain identifiers by [`Table::check`] before use (which is why
//! passing it through `AssertSqlSafe` is sound); every value, the subject
//! included, is a bound parameter.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow,
};
use sqlx::{AssertSqlSafe, Connection, Row};
use xgate_adapter_sdk::in_list;

/// The SQL type of a column and the JSON type of its field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnType {
    /// `TEXT`, a JSON string.
    Text,
    /// `DATE`, a JSON string `YYYY-MM-DD`.
    Date,
    /// `DOUBLE PRECISION`, a JSON number.
    Real,
    /// `BIGINT`, a JSON integer.
    Integer,
    /// `BOOLEAN`, a JSON boolean.
    Boolean,
    /// `TEXT` holding a JSON array of strings (`["废气","废水"]`), a JSON
    /// array of strings. SQL has no portable list type; JSON text reads back
    /// the same from SQLite, PostgreSQL and MySQL.
    TextList,
}

impl ColumnType {
    /// The SQL type name.
    pub const fn sql(self) -> &'static str {
        match self {
            Self::Text | Self::TextList => "TEXT",
            Self::Date => "DATE",
            Self::Real => "DOUBLE PRECISION",
            Self::Integer => "BIGINT",
            Self::Boolean => "BOOLEAN",
        }
    }

    /// The JSON Schema `type` of the field.
    pub const fn json_type(self) -> &'static str {
        match self {
            Self::Text | Self::Date => "string",
            Self::Real => "number",
            Self::Integer => "integer",
            Self::Boolean => "boolean",
            Self::TextList => "array",
        }
    }
}

/// One column, named as the record field it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub ty: ColumnType,
    /// Whether the field may be JSON `null` (SQL `NULL`).
    pub nullable: bool,
}

impl Column {
    /// A `NOT NULL` column.
    pub const fn new(name: &'static str, ty: ColumnType) -> Column {
        Column {
            name,
            ty,
            nullable: false,
        }
    }

    /// A column that may be `NULL`.
    pub const fn nullable(name: &'static str, ty: ColumnType) -> Column {
        Column {
            name,
            ty,
            nullable: true,
        }
    }
}

/// The table of one record type.
#[derive(Debug, PartialEq, Eq)]
pub struct Table {
    /// The catalog record type, e.g. `tax_registration`.
    pub record_type: &'static str,
    /// The column naming the subject: `id_number` or `uscc`.
    pub subject: &'static str,
    /// All record fields, in record order; the subject column among them.
    pub columns: &'static [Column],
}

impl Table {
    /// `CREATE TABLE` and `CREATE INDEX` on the subject column. The table is
    /// named after the record type; `row_id` keeps records in insertion order.
    pub fn create_sql(&self) -> [String; 2] {
        let columns: Vec<String> = self
            .columns
            .iter()
            .map(|c| {
                let null = if c.nullable { "" } else { " NOT NULL" };
                format!("    {} {}{null}", c.name, c.ty.sql())
            })
            .collect();
        [
            format!(
                "CREATE TABLE {} (\n    row_id INTEGER PRIMARY KEY,\n{}\n)",
                self.record_type,
                columns.join(",\n")
            ),
            format!(
                "CREATE INDEX {0}_by_subject ON {0} ({1})",
                self.record_type, self.subject
            ),
        ]
    }

    /// `INSERT` of one row, `row_id` first.
    pub fn insert_sql(&self) -> String {
        let names: Vec<&str> = self.columns.iter().map(|c| c.name).collect();
        let marks = vec!["?"; names.len() + 1].join(", ");
        format!(
            "INSERT INTO {} (row_id, {}) VALUES ({marks})",
            self.record_type,
            names.join(", ")
        )
    }

    /// `SELECT` of a subject's rows, in insertion order.
    pub fn select_sql(&self) -> String {
        format!(
            "SELECT {} FROM {} WHERE {} = ? ORDER BY row_id",
            self.column_list(),
            self.record_type,
            self.subject
        )
    }

    /// `SELECT` of the rows of any of `n` subjects (`IN` with `n`
    /// parameters), in insertion order: each subject's rows in the order
    /// [`Self::select_sql`] gives them.
    pub fn select_many_sql(&self, n: usize) -> String {
        format!(
            "SELECT {} FROM {} WHERE {} IN ({}) ORDER BY row_id",
            self.column_list(),
            self.record_type,
            self.subject,
            vec!["?"; n.max(1)].join(", ")
        )
    }

    fn select_all_sql(&self) -> String {
        format!(
            "SELECT {} FROM {} ORDER BY row_id",
            self.column_list(),
            self.record_type
        )
    }

    fn column_list(&self) -> String {
        let names: Vec<&str> = self.columns.iter().map(|c| c.name).collect();
        names.join(", ")
    }

    /// Checks that every name is a plain lower-case SQL identifier and the
    /// subject is one of the columns. Only such names are ever put into SQL
    /// text; values always travel as bound parameters.
    pub fn check(&self) -> Result<(), StoreError> {
        let names = std::iter::once(self.record_type).chain(self.columns.iter().map(|c| c.name));
        for name in names {
            if !is_identifier(name) || name == "row_id" {
                return Err(StoreError::BadIdentifier {
                    name: name.to_owned(),
                });
            }
        }
        if !self.columns.iter().any(|c| c.name == self.subject) {
            return Err(StoreError::BadIdentifier {
                name: self.subject.to_owned(),
            });
        }
        Ok(())
    }

    /// Checks that the table holds exactly the fields of a record type's JSON
    /// Schema, each with the matching type, nullability and date format, and
    /// that every column is required.
    pub fn check_schema(&self, schema: &Value) -> Result<(), StoreError> {
        let mismatch = |detail: String| StoreError::SchemaMismatch {
            record_type: self.record_type.to_owned(),
            detail,
        };
        let properties = schema
            .get("properties")
            .and_then(Value::as_object)
            .ok_or_else(|| mismatch("the schema has no properties".to_owned()))?;
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if let Some(extra) = properties
            .keys()
            .find(|k| !self.columns.iter().any(|c| c.name == k.as_str()))
        {
            return Err(mismatch(format!("property `{extra}` has no column")));
        }
        for column in self.columns {
            let property = properties
                .get(column.name)
                .ok_or_else(|| mismatch(format!("column `{}` is not a property", column.name)))?;
            let expected = if column.nullable {
                serde_json::json!([column.ty.json_type(), "null"])
            } else {
                Value::from(column.ty.json_type())
            };
            if property.get("type") != Some(&expected) {
                return Err(mismatch(format!(
                    "property `{}` must have type {expected}",
                    column.name
                )));
            }
            let items = property.get("items").and_then(|i| i.get("type"));
            let string_items = items == Some(&Value::from("string"));
            if column.ty == ColumnType::TextList && !string_items {
                return Err(mismatch(format!(
                    "property `{}` must have items of type \"string\"",
                    column.name
                )));
            }
            let is_date = property.get("format").and_then(Value::as_str) == Some("date");
            if is_date != (column.ty == ColumnType::Date) {
                return Err(mismatch(format!(
                    "property `{}` disagrees on the date format",
                    column.name
                )));
            }
            if !required.contains(&column.name) {
                return Err(mismatch(format!(
                    "property `{}` is not required",
                    column.name
                )));
            }
        }
        Ok(())
    }

    /// The row's fields as a JSON object.
    fn record(&self, row: &SqliteRow) -> Result<Value, StoreError> {
        let mut record = Map::with_capacity(self.columns.len());
        for (index, column) in self.columns.iter().enumerate() {
            let value = match column.ty {
                ColumnType::Text | ColumnType::Date => {
                    row.try_get::<Option<String>, _>(index)?.map(Value::from)
                }
                ColumnType::Real => row.try_get::<Option<f64>, _>(index)?.map(Value::from),
                ColumnType::Integer => row.try_get::<Option<i64>, _>(index)?.map(Value::from),
                ColumnType::Boolean => row.try_get::<Option<bool>, _>(index)?.map(Value::from),
                ColumnType::TextList => row
                    .try_get::<Option<String>, _>(index)?
                    .map(|text| self.parse_list(column, &text))
                    .transpose()?,
            };
            record.insert(column.name.to_owned(), value.unwrap_or(Value::Null));
        }
        Ok(Value::Object(record))
    }
}

impl Table {
    /// A [`ColumnType::TextList`] cell back as a JSON array of strings; a
    /// cell that is anything else (written by another tool) is an error,
    /// not a record with a wrongly typed field.
    fn parse_list(&self, column: &Column, text: &str) -> Result<Value, StoreError> {
        match serde_json::from_str::<Value>(text) {
            Ok(list @ Value::Array(_)) if is_string_list(&list) => Ok(list),
            _ => Err(StoreError::BadList {
                record_type: self.record_type.to_owned(),
                field: column.name.to_owned(),
            }),
        }
    }
}

fn is_string_list(value: &Value) -> bool {
    value
        .as_array()
        .is_some_and(|items| items.iter().all(Value::is_string))
}

fn is_identifier(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database itself failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The database file could not be replaced.
    #[error("cannot remove `{}`: {source}", path.display())]
    Remove {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `serve` was pointed at a file that is not there.
    #[error("database `{}` does not exist; run `seed` first", path.display())]
    Missing { path: PathBuf },
    /// A table spec uses a name that is not a plain SQL identifier.
    #[error("`{name}` is not a plain lower-case sql identifier or not a column")]
    BadIdentifier { name: String },
    /// A record of a type with no table.
    #[error("no table for record type `{record_type}`")]
    UnknownRecordType { record_type: String },
    /// A record field has no column.
    #[error("record type `{record_type}` has no column `{field}`")]
    UnknownField { record_type: String, field: String },
    /// A record field does not fit its column.
    #[error("field `{field}` of record type `{record_type}` must be {expected}")]
    FieldType {
        record_type: String,
        field: String,
        expected: String,
    },
    /// A table does not match its record type's JSON Schema.
    #[error("table of record type `{record_type}` does not match its schema: {detail}")]
    SchemaMismatch { record_type: String, detail: String },
    /// A list column holds something other than a JSON array of strings.
    #[error("column `{field}` of table `{record_type}` does not hold a json array of strings")]
    BadList { record_type: String, field: String },
    /// Seeding was given something other than a JSON object.
    #[error("a record of type `{record_type}` is not a json object")]
    NotAnObject { record_type: String },
}

/// Rows written per record type, in table order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeedReport {
    pub counts: Vec<(&'static str, u64)>,
}

impl SeedReport {
    /// All rows written.
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|(_, n)| n).sum()
    }
}

/// Creates the database at `path` (replacing any file there) with `tables`,
/// and writes `records` (record type, JSON record) in one transaction.
pub async fn seed(
    path: &Path,
    tables: &[Table],
    records: impl IntoIterator<Item = (&'static str, Value)>,
) -> Result<SeedReport, StoreError> {
    for table in tables {
        table.check()?;
    }
    remove_database(path)?;
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        // A rollback journal leaves one self-contained file that `serve` can
        // open read-only; WAL would need its side files to be writable.
        .journal_mode(SqliteJournalMode::Delete);
    let mut conn = SqliteConnection::connect_with(&options).await?;
    let inserts: Vec<Arc<str>> = tables.iter().map(|t| Arc::from(t.insert_sql())).collect();
    let mut counts: Vec<u64> = vec![0; tables.len()];

    let mut tx = conn.begin().await?;
    for table in tables {
        for statement in table.create_sql() {
            sqlx::query(AssertSqlSafe(statement))
                .execute(&mut *tx)
                .await?;
        }
    }
    for (record_type, record) in records {
        let position = tables
            .iter()
            .position(|t| t.record_type == record_type)
            .ok_or_else(|| StoreError::UnknownRecordType {
                record_type: record_type.to_owned(),
            })?;
        let (Some(table), Some(insert), Some(count)) = (
            tables.get(position),
            inserts.get(position),
            counts.get_mut(position),
        ) else {
            continue;
        };
        *count += 1;
        let row_id = i64::try_from(*count).unwrap_or(i64::MAX);
        insert_record(&mut tx, table, insert, row_id, &record).await?;
    }
    tx.commit().await?;
    conn.close().await?;

    Ok(SeedReport {
        counts: tables.iter().map(|t| t.record_type).zip(counts).collect(),
    })
}

fn remove_database(path: &Path) -> Result<(), StoreError> {
    let mut paths = vec![path.to_path_buf()];
    for suffix in ["-journal", "-wal", "-shm"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        paths.push(PathBuf::from(side));
    }
    for path in paths {
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(StoreError::Remove { path, source }),
        }
    }
    Ok(())
}

async fn insert_record(
    conn: &mut SqliteConnection,
    table: &Table,
    insert: &Arc<str>,
    row_id: i64,
    record: &Value,
) -> Result<(), StoreError> {
    let fields = record.as_object().ok_or_else(|| StoreError::NotAnObject {
        record_type: table.record_type.to_owned(),
    })?;
    if let Some(field) = fields
        .keys()
        .find(|k| !table.columns.iter().any(|c| c.name == k.as_str()))
    {
        return Err(StoreError::UnknownField {
            record_type: table.record_type.to_owned(),
            field: field.clone(),
        });
    }
    let mut query = sqlx::query(AssertSqlSafe(Arc::clone(insert))).bind(row_id);
    for column in table.columns {
        let value = fields.get(column.name).unwrap_or(&Value::Null);
        let mismatch = || {
            let null = if column.nullable { " or null" } else { "" };
            StoreError::FieldType {
                record_type: table.record_type.to_owned(),
                field: column.name.to_owned(),
                expected: match column.ty {
                    ColumnType::TextList => format!("a json array of strings{null}"),
                    _ => format!("a json {}{null}", column.ty.json_type()),
                },
            }
        };
        if value.is_null() {
            if !column.nullable {
                return Err(mismatch());
            }
            query = match column.ty {
                ColumnType::Text | ColumnType::Date | ColumnType::TextList => {
                    query.bind(None::<String>)
                }
                ColumnType::Real => query.bind(None::<f64>),
                ColumnType::Integer => query.bind(None::<i64>),
                ColumnType::Boolean => query.bind(None::<bool>),
            };
            continue;
        }
        query = match column.ty {
            ColumnType::Text | ColumnType::Date => {
                query.bind(value.as_str().ok_or_else(mismatch)?.to_owned())
            }
            ColumnType::Real => query.bind(value.as_f64().ok_or_else(mismatch)?),
            ColumnType::Integer => query.bind(value.as_i64().ok_or_else(mismatch)?),
            ColumnType::Boolean => query.bind(value.as_bool().ok_or_else(mismatch)?),
            ColumnType::TextList if is_string_list(value) => query.bind(value.to_string()),
            ColumnType::TextList => return Err(mismatch()),
        };
    }
    query.execute(conn).await?;
    Ok(())
}

/// A seeded database opened read-only, ready for lookups.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    tables: Vec<Statements>,
}

/// A table and its lookup SQL, built once.
#[derive(Clone, Debug)]
struct Statements {
    table: &'static Table,
    /// The subject column's position among the columns.
    subject_at: usize,
    select: Arc<str>,
    /// [`Table::select_many_sql`] for each of [`in_list::sizes`].
    select_many: Vec<(usize, Arc<str>)>,
}

impl Statements {
    fn new(table: &'static Table) -> Result<Statements, StoreError> {
        let subject_at = table
            .columns
            .iter()
            .position(|c| c.name == table.subject)
            .ok_or_else(|| StoreError::BadIdentifier {
                name: table.subject.to_owned(),
            })?;
        Ok(Statements {
            table,
            subject_at,
            select: Arc::from(table.select_sql()),
            select_many: in_list::sizes()
                .into_iter()
                .map(|n| (n, Arc::from(table.select_many_sql(n))))
                .collect(),
        })
    }

    fn select_many(&self, n: usize) -> Arc<str> {
        match self.select_many.iter().find(|(size, _)| *size == n) {
            Some((_, sql)) => Arc::clone(sql),
            None => Arc::from(self.table.select_many_sql(n)),
        }
    }
}

impl Store {
    /// Opens the database at `path` read-only and checks that every table of
    /// `tables` is there.
    pub async fn open_read_only(
        path: &Path,
        tables: &'static [Table],
    ) -> Result<Store, StoreError> {
        if !path.is_file() {
            return Err(StoreError::Missing {
                path: path.to_path_buf(),
            });
        }
        for table in tables {
            table.check()?;
        }
        let options = SqliteConnectOptions::new().filename(path).read_only(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        let store = Store {
            pool,
            tables: tables
                .iter()
                .map(Statements::new)
                .collect::<Result<_, _>>()?,
        };
        // Fail at start-up, not on the first request, when a table is missing.
        for table in tables {
            store.lookup(table.record_type, "").await?;
        }
        Ok(store)
    }

    /// The record types this store holds, in table order.
    pub fn record_types(&self) -> Vec<String> {
        self.tables
            .iter()
            .map(|s| s.table.record_type.to_owned())
            .collect()
    }

    /// All records of `record_type` whose subject column equals `subject`,
    /// in insertion order; empty when there are none.
    pub async fn lookup(&self, record_type: &str, subject: &str) -> Result<Vec<Value>, StoreError> {
        let statements = self.table(record_type)?;
        let rows = sqlx::query(AssertSqlSafe(Arc::clone(&statements.select)))
            .bind(subject)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| statements.table.record(row))
            .collect()
    }

    /// [`Store::lookup`] for each of `subjects` (any number, duplicates
    /// answered each), in their order, with one `IN` query per
    /// [`in_list::CHUNK`] distinct subjects. A row that makes no record fails
    /// its own subject only, as it would alone; a failing query fails all.
    pub async fn lookup_many(
        &self,
        record_type: &str,
        subjects: &[&str],
    ) -> Result<Vec<Result<Vec<Value>, StoreError>>, StoreError> {
        let statements = self.table(record_type)?;
        // Each subject once, so a duplicate split over two lists does not
        // get its rows twice.
        let mut distinct: Vec<&str> = Vec::with_capacity(subjects.len());
        let mut rows_of: HashMap<&str, Vec<SqliteRow>> = HashMap::with_capacity(subjects.len());
        for &subject in subjects {
            if !rows_of.contains_key(subject) {
                rows_of.insert(subject, Vec::new());
                distinct.push(subject);
            }
        }
        for chunk in distinct.chunks(in_list::CHUNK) {
            let list = in_list::padded(chunk);
            let mut query = sqlx::query(AssertSqlSafe(statements.select_many(list.len())));
            for subject in list {
                query = query.bind(subject);
            }
            for row in query.fetch_all(&self.pool).await? {
                let subject: String = row.try_get(statements.subject_at)?;
                // `IN` matches as `=` does, so every row names one of the list.
                if let Some(rows) = rows_of.get_mut(subject.as_str()) {
                    rows.push(row);
                }
            }
        }
        Ok(subjects
            .iter()
            .map(|subject| {
                rows_of.get(*subject).map_or(Ok(Vec::new()), |rows| {
                    rows.iter()
                        .map(|row| statements.table.record(row))
                        .collect()
                })
            })
            .collect())
    }

    /// Every record of `record_type`, in insertion order.
    pub async fn all_records(&self, record_type: &str) -> Result<Vec<Value>, StoreError> {
        let table = self.table(record_type)?.table;
        let rows = sqlx::query(AssertSqlSafe(table.select_all_sql()))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|row| table.record(row)).collect()
    }

    fn table(&self, record_type: &str) -> Result<&Statements, StoreError> {
        self.tables
            .iter()
            .find(|s| s.table.record_type == record_type)
            .ok_or_else(|| StoreError::UnknownRecordType {
                record_type: record_type.to_owned(),
            })
    }

    /// Closes the connections.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const PETS: Table = Table {
        record_type: "pet_licence",
        subject: "id_number",
        columns: &[
            Column::new("id_number", ColumnType::Text),
            Column::new("name", ColumnType::Text),
            Column::new("born", ColumnType::Date),
            Column::nullable("died", ColumnType::Date),
            Column::new("weight_kg", ColumnType::Real),
            Column::new("legs", ColumnType::Integer),
            Column::new("vaccinated", ColumnType::Boolean),
        ],
    };
    static TABLES: &[Table] = &[PETS];

    fn cat(owner: &str, name: &str) -> Value {
        json!({"id_number": owner, "name": name, "born": "2020-02-29", "died": null,
               "weight_kg": 4.25, "legs": 4, "vaccinated": true})
    }

    #[test]
    fn sql_is_plain() {
        let [create, index] = PETS.create_sql();
        assert!(
            create.starts_with("CREATE TABLE pet_licence (\n    row_id INTEGER PRIMARY KEY,\n")
        );
        assert!(
            create.contains("    died DATE,\n")
                && create.contains("weight_kg DOUBLE PRECISION NOT NULL")
        );
        assert_eq!(
            index,
            "CREATE INDEX pet_licence_by_subject ON pet_licence (id_number)"
        );
        assert_eq!(
            PETS.select_sql(),
            "SELECT id_number, name, born, died, weight_kg, legs, vaccinated FROM pet_licence \
             WHERE id_number = ? ORDER BY row_id"
        );
        assert!(
            PETS.insert_sql()
                .ends_with("VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
        );
    }

    #[test]
    fn identifiers_are_checked() {
        PETS.check().unwrap();
        let bad = Table {
            record_type: "pets; DROP TABLE x",
            subject: "id_number",
            columns: PETS.columns,
        };
        assert!(matches!(bad.check(), Err(StoreError::BadIdentifier { .. })));
        let no_subject = Table {
            record_type: "pets",
            subject: "owner",
            columns: PETS.columns,
        };
        assert!(matches!(
            no_subject.check(),
            Err(StoreError::BadIdentifier { .. })
        ));
    }

    #[test]
    fn tables_are_checked_against_schemas() {
        let mut schema = json!({"type": "object", "required": [], "properties": {
            "id_number": {"type": "string"}, "name": {"type": "string"},
            "born": {"type": "string", "format": "date"},
            "died": {"type": ["string", "null"], "format": "date"},
            "weight_kg": {"type": "number"}, "legs": {"type": "integer"},
            "vaccinated": {"type": "boolean"}}});
        schema["required"] = json!([
            "id_number",
            "name",
            "born",
            "died",
            "weight_kg",
            "legs",
            "vaccinated"
        ]);
        PETS.check_schema(&schema).unwrap();

        let mut wrong_type = schema.clone();
        wrong_type["properties"]["legs"] = json!({"type": "number"});
        let err = PETS.check_schema(&wrong_type).unwrap_err().to_string();
        assert!(
            err.ends_with("property `legs` must have type \"integer\""),
            "{err}"
        );

        let mut not_nullable = schema.clone();
        not_nullable["properties"]["died"] = json!({"type": "string", "format": "date"});
        assert!(PETS.check_schema(&not_nullable).is_err());

        let mut no_format = schema.clone();
        no_format["properties"]["born"] = json!({"type": "string"});
        assert!(PETS.check_schema(&no_format).is_err());

        let mut extra = schema.clone();
        extra["properties"]["colour"] = json!({"type": "string"});
        assert!(PETS.check_schema(&extra).is_err());

        let mut optional = schema;
        optional["required"] = json!(["id_number"]);
        assert!(PETS.check_schema(&optional).is_err());
    }

    #[tokio::test]
    async fn records_round_trip_in_order_and_lookups_bind_parameters() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pets.db");
        let records = vec![
            ("pet_licence", cat("A", "Tom")),
            ("pet_licence", cat("B", "Kitty")),
            ("pet_licence", cat("A", "Felix")),
        ];
        let report = seed(&path, TABLES, records.clone()).await.unwrap();
        assert_eq!(report.counts, vec![("pet_licence", 3)]);
        assert_eq!(report.total(), 3);

        let store = Store::open_read_only(&path, TABLES).await.unwrap();
        assert_eq!(store.record_types(), vec!["pet_licence"]);
        let a = store.lookup("pet_licence", "A").await.unwrap();
        assert_eq!(a, vec![cat("A", "Tom"), cat("A", "Felix")]);
        assert!(store.lookup("pet_licence", "C").await.unwrap().is_empty());
        assert!(
            store
                .lookup("pet_licence", "' OR 1=1 --")
                .await
                .unwrap()
                .is_empty()
        );
        assert!(matches!(
            store.lookup("dog_licence", "A").await,
            Err(StoreError::UnknownRecordType { .. })
        ));
        let all = store.all_records("pet_licence").await.unwrap();
        assert_eq!(all, records.into_iter().map(|(_, r)| r).collect::<Vec<_>>());
        store.close().await;

        // Re-seeding replaces the file rather than appending to it.
        seed(&path, TABLES, vec![("pet_licence", cat("C", "Luna"))])
            .await
            .unwrap();
        let store = Store::open_read_only(&path, TABLES).await.unwrap();
        assert_eq!(
            store.all_records("pet_licence").await.unwrap(),
            vec![cat("C", "Luna")]
        );
    }

    #[tokio::test]
    async fn lookup_many_answers_each_subject_as_lookup_does() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pets.db");
        let mut records = vec![
            ("pet_licence", cat("A", "Tom")),
            ("pet_licence", cat("B", "Kitty")),
            ("pet_licence", cat("A", "Felix")),
        ];
        // More subjects than one IN list holds.
        for n in 0..700 {
            records.push(("pet_licence", cat(&format!("P{n}"), "Rex")));
        }
        seed(&path, TABLES, records).await.unwrap();
        let store = Store::open_read_only(&path, TABLES).await.unwrap();
        let mut subjects: Vec<String> = vec!["A".into(), "C".into(), "B".into(), "A".into()];
        subjects.push("' OR 1=1 --".into());
        subjects.extend((0..700).rev().map(|n| format!("P{n}")));
        subjects.push("A".into());
        let ids: Vec<&str> = subjects.iter().map(String::as_str).collect();
        for n in [1, 3, 4, 600, ids.len()] {
            let many = store.lookup_many("pet_licence", &ids[..n]).await.unwrap();
            assert_eq!(many.len(), n);
            for (subject, result) in ids.iter().zip(many) {
                let single = store.lookup("pet_licence", subject).await.unwrap();
                assert_eq!(result.unwrap(), single, "{subject}");
            }
        }
        assert!(
            store
                .lookup_many("pet_licence", &[])
                .await
                .unwrap()
                .is_empty()
        );
        assert!(matches!(
            store.lookup_many("dog_licence", &["A"]).await,
            Err(StoreError::UnknownRecordType { .. })
        ));
    }

    #[tokio::test]
    async fn bad_records_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pets.db");
        let mut extra = cat("A", "Tom");
        extra["colour"] = json!("black");
        let err = seed(&path, TABLES, vec![("pet_licence", extra)])
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "record type `pet_licence` has no column `colour`"
        );

        let mut wrong = cat("A", "Tom");
        wrong["legs"] = json!("four");
        let err = seed(&path, TABLES, vec![("pet_licence", wrong)])
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "field `legs` of record type `pet_licence` must be a json integer"
        );

        let mut missing = cat("A", "Tom");
        missing.as_object_mut().unwrap().remove("name");
        assert!(matches!(
            seed(&path, TABLES, vec![("pet_licence", missing)]).await,
            Err(StoreError::FieldType { .. })
        ));
        assert!(matches!(
            seed(&path, TABLES, vec![("dog_licence", cat("A", "Rex"))]).await,
            Err(StoreError::UnknownRecordType { .. })
        ));
    }

    const TAGS: Table = Table {
        record_type: "tag_list",
        subject: "id_number",
        columns: &[
            Column::new("id_number", ColumnType::Text),
            Column::new("tags", ColumnType::TextList),
            Column::nullable("aliases", ColumnType::TextList),
        ],
    };
    static TAG_TABLES: &[Table] = &[TAGS];

    fn tags_schema() -> Value {
        json!({"type": "object", "required": ["id_number", "tags", "aliases"], "properties": {
            "id_number": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
            "aliases": {"type": ["array", "null"], "items": {"type": "string"}}}})
    }

    #[test]
    fn list_columns_are_text_and_match_string_array_schemas() {
        let [create, _] = TAGS.create_sql();
        assert!(
            create.contains("    tags TEXT NOT NULL,\n    aliases TEXT\n"),
            "{create}"
        );
        TAGS.check_schema(&tags_schema()).unwrap();

        let mut numbers = tags_schema();
        numbers["properties"]["tags"]["items"] = json!({"type": "integer"});
        let err = TAGS.check_schema(&numbers).unwrap_err().to_string();
        assert!(
            err.ends_with("property `tags` must have items of type \"string\""),
            "{err}"
        );

        let mut no_items = tags_schema();
        no_items["properties"]["tags"] = json!({"type": "array"});
        assert!(TAGS.check_schema(&no_items).is_err());

        let mut text = tags_schema();
        text["properties"]["tags"] = json!({"type": "string"});
        assert!(TAGS.check_schema(&text).is_err());
    }

    #[tokio::test]
    async fn list_columns_round_trip_as_json_arrays() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tags.db");
        let records = vec![
            (
                "tag_list",
                json!({"id_number": "A", "tags": ["废气", "废水"], "aliases": null}),
            ),
            (
                "tag_list",
                json!({"id_number": "A", "tags": [], "aliases": ["a \"b\", c"]}),
            ),
        ];
        seed(&path, TAG_TABLES, records.clone()).await.unwrap();
        let store = Store::open_read_only(&path, TAG_TABLES).await.unwrap();
        let found = store.lookup("tag_list", "A").await.unwrap();
        assert_eq!(
            found,
            records.into_iter().map(|(_, r)| r).collect::<Vec<_>>()
        );

        // The column holds plain JSON text, readable by any SQL client.
        let options = SqliteConnectOptions::new().filename(&path);
        let mut conn = SqliteConnection::connect_with(&options).await.unwrap();
        let text: String = sqlx::query_scalar("SELECT tags FROM tag_list WHERE row_id = 1")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            json!(["废气", "废水"])
        );
        sqlx::query("UPDATE tag_list SET tags = '{\"not\": \"a list\"}' WHERE row_id = 2")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        let store = Store::open_read_only(&path, TAG_TABLES).await.unwrap();
        let err = store.lookup("tag_list", "A").await.unwrap_err().to_string();
        assert_eq!(
            err,
            "column `tags` of table `tag_list` does not hold a json array of strings"
        );
        // In a batch the bad row fails its own subject only.
        let many = store.lookup_many("tag_list", &["B", "A"]).await.unwrap();
        assert!(many[0].as_ref().unwrap().is_empty());
        assert_eq!(many[1].as_ref().unwrap_err().to_string(), err);
    }

    #[tokio::test]
    async fn list_fields_must_be_arrays_of_strings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tags.db");
        for tags in [json!("废气"), json!([1, 2]), json!(null)] {
            let record = json!({"id_number": "A", "tags": tags, "aliases": null});
            let err = seed(&path, TAG_TABLES, vec![("tag_list", record)])
                .await
                .unwrap_err();
            assert_eq!(
                err.to_string(),
                "field `tags` of record type `tag_list` must be a json array of strings"
            );
        }
        let record = json!({"id_number": "A", "tags": ["x"], "aliases": [true]});
        let err = seed(&path, TAG_TABLES, vec![("tag_list", record)])
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "field `aliases` of record type `tag_list` must be a json array of strings or null"
        );
    }

    #[tokio::test]
    async fn opening_a_missing_or_empty_database_fails_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none.db");
        let err = Store::open_read_only(&path, TABLES).await.unwrap_err();
        assert!(
            err.to_string()
                .ends_with("does not exist; run `seed` first"),
            "{err}"
        );
        seed(&path, &[], Vec::new()).await.unwrap();
        assert!(matches!(
            Store::open_read_only(&path, TABLES).await,
            Err(StoreError::Database(_))
        ));
    }
}
