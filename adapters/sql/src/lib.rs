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
//! # sqlite:PATH (relative to this file), postgres://USER@HOST:PORT/DB,
//! # mysql://USER@HOST:PORT/DB (or mariadb://...). Optional here when
//! # --database-url (env XGATE_SQL_DATABASE_URL) is given; the flag wins.
//! url = "sqlite:civil-affairs.db"
//! # PostgreSQL / MySQL only, instead of a password in the URL: the name of
//! # an environment variable, or a file (relative to this file) holding it.
//! # password_env = "CIVIL_DB_PASSWORD"
//! # password_file = "/run/secrets/civil-db"
//! max_connections = 4                       # optional, default 4
//! statement_timeout_ms = 2000               # optional, default 2000
//!
//! [[record_types]]
//! record_type = "marriage_registration"     # must belong to `department`
//! query = """
//! SELECT cert_no, person_id, person_name, partner_name, partner_id,
//!        reg_date, office, state_code
//! FROM marriages WHERE person_id = :subject
//! ORDER BY reg_date
//! """
//! # optional, for screening: the rows of a list of subjects at once
//! batch_query = """
//! SELECT cert_no, person_id, person_name, partner_name, partner_id,
//!        reg_date, office, state_code
//! FROM marriages WHERE person_id IN (:subjects)
//! ORDER BY reg_date
//! """
//! # the column naming each row's subject; default: the column of the
//! # subject field (here `id_number`, so `person_id`)
//! # batch_subject = "person_id"
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
//! # a code column: each code the column holds -> the field's value
//! status = { column = "state_code", values = { "1" = "married", "2" = "divorced", "3" = "widowed" } }
//! ```
//!
//! Field options: `column` (required), `type`, `separator` (`string_list`
//! only), `from_number = true` (a string field read from a numeric column
//! on purpose, see below), `values` (a value map, see below).
//!
//! Field types: `string`, `integer`, `number`, `boolean`, `date` (a native
//! DATE/DATETIME/TIMESTAMP column, text `YYYY-MM-DD`, `YYYY-MM-DD hh:mm:ss`,
//! `YYYY-MM-DDThh:mm:ss...` or `YYYYMMDD`, or an integer `YYYYMMDD`; always
//! given as `YYYY-MM-DD`; a time of day is dropped), `string_list` (a text
//! column holding a JSON array of strings, or with `separator = ";"` a
//! delimited string; a PostgreSQL `text[]`; a JSON column). Numbers:
//! PostgreSQL NUMERIC and MySQL DECIMAL are read exactly and given as JSON
//! numbers. A NULL column gives JSON null where the schema allows null,
//! leaves an optional field out, and is bad data for a required one. MySQL's
//! zero date (`0000-00-00`) is not NULL: it is bad data (write
//! `NULLIF(col, '0000-00-00')` in the query to make it NULL).
//!
//! Value maps: `values = { "code" = value, ... }` turns the codes a column
//! holds (text, trailing blanks dropped; an integer or boolean as written,
//! `1`/`0`) into the field's values: strings, numbers or booleans, each
//! checked at start against the field's schema (its type, its `enum`, a
//! `YYYY-MM-DD` date). A code the map does not list is bad data naming the
//! field.
//!
//! # The query
//!
//! Exactly one parameter, `:subject` (it may occur several times); the
//! adapter rewrites it to `?1` (SQLite), `$1` (PostgreSQL) or `?` (MySQL) and
//! binds the subject ID: the ID never becomes SQL text. `?`, `$1`, other
//! `:names` and a second statement are refused at start.
//!
//! # The batch query
//!
//! Screening asks about up to a thousand subjects at once (`BatchLookup`).
//! Without a `batch_query` each of them is one run of `query` (a few at a
//! time); with one, the adapter asks for a list of subjects per statement.
//! `batch_query` selects what `query` selects, in the same order, for every
//! subject of the list: write the condition on the subject as
//! `<column> IN (:subjects)` (it may occur several times; `NOT IN` is
//! refused). The adapter binds the IDs: `IN (?1, ..., ?n)` on SQLite,
//! `IN (?, ..., ?)` on MySQL (lists of at most 500, padded to a power of two
//! so each length is one prepared statement), `= ANY($1)` with one `text[]`
//! on PostgreSQL. The rows go back to their subjects by the column
//! `batch_subject` names (by default the column of the record's subject
//! field, `id_number` or `uscc`), compared as the database compares (case
//! and trailing blanks aside), so each subject gets exactly the records
//! `query` gives it; a row whose subject column names none of the list
//! fails the list (ERROR, not someone else's records). A `query` that also
//! finds rows by another column (`OR holder_id = :subject`) has no exact
//! batch form: a row goes to the subject its subject column names (the
//! only subject whose record it can be). The batch query is checked at
//! start as `query` is (parameters, columns and their types), and the
//! subject column must hold text.
//!
//! # Checks at start (the adapter refuses to start, naming `file:line:col`)
//!
//! Unknown department or record type, a record type of another department,
//! a required schema field not mapped, a mapped field not in the schema, a
//! field type that cannot make the schema's type, a value map with a value
//! the schema refuses, a bad query parameter; then, with the database
//! connected: a query the database refuses, a mapped column the query does
//! not return, and a column whose type cannot make its field on any row
//! (PostgreSQL and MySQL/MariaDB: the type the database reports for the
//! statement's column; SQLite: the declared type's affinity, not checked
//! for an expression): text to an integer, number or boolean field (cast it
//! in the query, or give a value map), a TINYINT/SMALLINT/MEDIUMINT/YEAR to a
//! date, a date to a number, a floating point number to a string, a value
//! map over a column that holds no codes. An integer column making a string
//! field works (`9` becomes `"9"`) but is warned about unless the field says
//! `from_number = true`.
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
//! timeout or a database error is a
//! [`LookupError::Backend`](xgate_adapter_sdk::LookupError) for that record
//! type (the requester gets UNAVAILABLE: it may pass). A row that cannot make
//! its record is [`LookupError::BadData`](xgate_adapter_sdk::LookupError)
//! (INVALID: asking again does not help); its text names the row and the
//! catalog field, the column only in the adapter's log. Error texts never
//! contain the subject ID or column values.

mod cell;
pub mod cli;
mod department;
mod mapping;
mod query;

pub use department::{SqlDepartment, SqlError};
pub use mapping::{
    BatchPlan, DEFAULT_MAX_CONNECTIONS, DEFAULT_STATEMENT_TIMEOUT_MS, DatabaseSpec, FieldPlan,
    FieldType, Mapping, MappingError, PasswordSource, TypePlan, join_errors,
};
pub use query::{BatchQuery, Dialect, ParsedQuery, QueryError};

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
        let plans = mapping
            .plan(&xgate_catalog::Catalog::builtin().unwrap())
            .unwrap();
        assert_eq!(mapping.record_types(), ["marriage_registration"]);
        let batch = plans[0].batch.as_ref().expect("the example's batch query");
        assert_eq!(batch.subject_column, "person_id");
        let status = plans[0]
            .fields
            .iter()
            .find(|f| f.field == "status")
            .unwrap();
        let values = status.values.as_ref().expect("the example's value map");
        assert_eq!(values.get("2"), Some(&serde_json::json!("divorced")));
        // the commented password lines are the documented keys
        for key in ["password_env", "password_file"] {
            let line = docs
                .iter()
                .find_map(|l| l.strip_prefix(&format!("# {key} = ")))
                .unwrap_or_else(|| panic!("no `{key}` in the example"));
            let source = example.replace(
                "url = \"sqlite:civil-affairs.db\"",
                &format!("url = \"postgres://reader@db/civil\"\n{key} = {line}"),
            );
            let mapping = Mapping::parse(Path::new("civil-affairs.toml"), &source).unwrap();
            assert!(mapping.database().password.is_some(), "{key}");
        }
    }
}
