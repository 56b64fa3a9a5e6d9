//! The generic SQL adapter: serves any set of one department's catalog record
//! types from a relational database (SQLite, PostgreSQL, MySQL/MariaDB)
//! described by a mapping file, through the adapter SDK (mTLS, registration,
//! heartbeats, health, reflection).
//!
//! This crate owns the mapping file format ([`Mapping`]), its checks against
//! the catalog ([`Mapping::check`]) and against the database
//! ([`SqlDepartment::connect`]), and the lookups ([`SqlDepartment`], an SDK
//! [`Department`](xgate_adapter_sdk::Department)). The binary
//! `xgate-adapter-sql` wraps it (`serve` by default, `check`).
//!
//! # The mapping file
//!
//! ```toml
//! # Marriage registrations of the Civil Affairs Bureau.
//! department = "civil-affairs"              # catalog department id
//!
//! [database]
//! # sqlite:PATH (relative to this file), postgres://..., mysql://... (or
//! # mariadb://...). Optional here when --database-url (env
//! # XGATE_SQL_DATABASE_URL) is given; the flag wins.
//! url = "sqlite:civil-affairs.db"
//! max_connections = 4                       # optional, default 4
//! statement_timeout_ms = 2000               # optional, default 2000
//!
//! [[record_types]]
//! record_type = "marriage_registration"     # must belong to `department`
//! query = """
//! SELECT cert_no, person_id, person_name, partner_name, partner_id,
//!        reg_date, office, status
//! FROM marriages WHERE person_id = :subject
//! ORDER BY reg_date
//! """
//!
//! [record_types.fields]
//! # field = { column = "...", type = "..." } or the shorthand
//! # field = "column", whose type comes from the field's schema.
//! certificate_no = { column = "cert_no", type = "string" }
//! id_number = "person_id"
//! name = "person_name"
//! spouse_name = "partner_name"
//! spouse_id_number = "partner_id"
//! registration_date = { column = "reg_date", type = "date" }
//! registration_authority = "office"
//! status = "status"
//! ```
//!
//! Field types: `string`, `integer`, `number`, `boolean`, `date` (a native
//! DATE/DATETIME/TIMESTAMP column, text `YYYY-MM-DD`, `YYYY-MM-DD hh:mm:ss`
//! or `YYYYMMDD`, or an integer `YYYYMMDD`; always given as `YYYY-MM-DD`),
//! `string_list` (a text column holding a JSON array of strings, or with
//! `separator = ";"` a delimited string; a PostgreSQL `text[]`; a JSON
//! column). Numbers: PostgreSQL NUMERIC and MySQL DECIMAL are read exactly
//! and given as JSON numbers. A NULL column gives JSON null where the schema
//! allows null, leaves an optional field out, and is an error for a required
//! one.
//!
//! # The query
//!
//! Exactly one parameter, `:subject` (it may occur several times); the
//! adapter rewrites it to `?1` (SQLite), `$1` (PostgreSQL) or `?` (MySQL) and
//! binds the subject ID: the ID never becomes SQL text. `?`, `$1`, other
//! `:names` and a second statement are refused at start.
//!
//! # Checks at start (the adapter refuses to start, naming `file:line:col`)
//!
//! Unknown department or record type, a record type of another department,
//! a required schema field not mapped, a mapped field not in the schema, a
//! field type that cannot make the schema's type, a bad query parameter; then,
//! with the database connected: a query the database refuses, a mapped column
//! the query does not return, and (PostgreSQL, MySQL) a column whose declared
//! type cannot make its field (cast it in the query).
//!
//! # At run time
//!
//! One pool per department. Every query runs under the statement timeout:
//! a `tokio` timeout around it, plus the database's own (PostgreSQL
//! `statement_timeout`, MySQL `max_execution_time`, MariaDB
//! `max_statement_time`, a SQLite progress handler that interrupts the
//! statement). Connections are read-only: SQLite files are always opened
//! read-only (the adapter never writes, whatever the URL says); PostgreSQL
//! and MySQL sessions are set read-only (use a read-only account as well). A
//! timeout, a database error or a row that cannot make its record is a
//! [`LookupError`](xgate_adapter_sdk::LookupError) for that record type;
//! error texts never contain the subject ID or column values.

mod cell;
mod department;
mod mapping;
mod query;

pub use department::{SqlDepartment, SqlError};
pub use mapping::{
    DEFAULT_MAX_CONNECTIONS, DEFAULT_STATEMENT_TIMEOUT_MS, DatabaseSpec, FieldPlan, FieldType,
    Mapping, MappingError, TypePlan, join_errors,
};
pub use query::{Dialect, ParsedQuery, QueryError};

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// The mapping example of the crate docs parses and passes the catalog checks.
    #[test]
    fn the_documented_example_is_a_valid_mapping() {
        let docs: Vec<&str> = include_str!("lib.rs")
            .lines()
            .filter_map(|l| l.strip_prefix("//!"))
            .map(|l| l.strip_prefix(' ').unwrap_or(l))
            .collect();
        let start = docs.iter().position(|l| *l == "```toml").unwrap() + 1;
        let end = start + docs[start..].iter().position(|l| *l == "```").unwrap();
        let example = docs[start..end].join("\n");
        let mapping = Mapping::parse(Path::new("civil-affairs.toml"), &example).unwrap();
        mapping
            .check(&xgate_catalog::Catalog::builtin().unwrap())
            .unwrap();
        assert_eq!(mapping.record_types(), ["marriage_registration"]);
    }
}
