//! Errors of catalog loading and record validation.

use std::{fmt, io, path::PathBuf};

use thiserror::Error;

/// Why a catalog could not be loaded. Every variant names the file it concerns (as a path for
/// [`Catalog::load_dir`](crate::Catalog::load_dir), as the given name for
/// [`Catalog::from_sources`](crate::Catalog::from_sources)).
#[derive(Debug, Error)]
pub enum CatalogError {
    /// The catalog directory could not be listed.
    #[error("cannot read catalog directory `{}`: {source}", .dir.display())]
    ReadDir {
        /// The directory.
        dir: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A catalog file could not be read (or is not UTF-8).
    #[error("cannot read catalog file `{file}`: {source}")]
    ReadFile {
        /// The file.
        file: String,
        /// The underlying error.
        source: io::Error,
    },
    /// A file is not well-formed JSON.
    #[error("`{file}:{line}:{column}`: invalid json: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What the parser found.
        message: String,
    },
    /// A file is JSON but not of the catalog's shape: an unknown or missing field, a value of
    /// the wrong type, an unknown subject kind or sharing class.
    #[error("`{file}:{line}:{column}`: {message}")]
    Structure {
        /// The file.
        file: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A department id is the empty string.
    #[error("`{file}`: department id is empty")]
    EmptyDepartmentId {
        /// The file.
        file: String,
    },
    /// A department id has characters other than lower-case letters, digits and `-`.
    #[error("`{file}`: department id `{id}` does not match `^[a-z][a-z0-9-]*$`")]
    InvalidDepartmentId {
        /// The file.
        file: String,
        /// The id as given.
        id: String,
    },
    /// A record type id is the empty string.
    #[error("`{file}`: record type {position} has an empty id")]
    EmptyRecordTypeId {
        /// The file.
        file: String,
        /// 1-based position of the record type in its file.
        position: usize,
    },
    /// A record type id has characters other than lower-case letters, digits and `_`.
    #[error("`{file}`: record type id `{id}` does not match `^[a-z][a-z0-9_]*$`")]
    InvalidRecordTypeId {
        /// The file.
        file: String,
        /// The id as given.
        id: String,
    },
    /// Two files define the same department.
    #[error("`{file}`: department `{id}` is already defined in `{first_file}`")]
    DuplicateDepartment {
        /// The department id.
        id: String,
        /// The file that defined it first.
        first_file: String,
        /// The file that defines it again.
        file: String,
    },
    /// A record type id is used twice, in one file or in two.
    #[error("`{file}`: record type `{id}` is already defined in `{first_file}`")]
    DuplicateRecordType {
        /// The record type id.
        id: String,
        /// The file that defined it first.
        first_file: String,
        /// The file that defines it again.
        file: String,
    },
    /// A record type may be cached for zero seconds, which would make every read a miss.
    #[error("`{file}`: record type `{record_type}` has `freshness_seconds` 0, expected at least 1")]
    ZeroFreshness {
        /// The file.
        file: String,
        /// The record type id.
        record_type: String,
    },
    /// A record schema does not describe a JSON object.
    #[error(
        "`{file}`: schema of record type `{record_type}` must have `\"type\": \"object\"` at its root"
    )]
    SchemaNotObject {
        /// The file.
        file: String,
        /// The record type id.
        record_type: String,
    },
    /// A record schema does not require the subject field, so a record without it would
    /// pass the gateway's check that the record is the subject's.
    #[error(
        "`{file}`: schema of record type `{record_type}` must list `{field}` (the subject's number) in `required` as a `string` property"
    )]
    SubjectFieldNotRequired {
        /// The file.
        file: String,
        /// The record type id.
        record_type: String,
        /// The subject kind's record field (`id_number`, `uscc`).
        field: &'static str,
    },
    /// A record schema is not a valid JSON Schema (draft 2020-12) or uses an unknown format.
    #[error("`{file}`: schema of record type `{record_type}` does not compile: {reason}")]
    InvalidSchema {
        /// The file.
        file: String,
        /// The record type id.
        record_type: String,
        /// What the schema compiler reported.
        reason: String,
    },
    /// A declared view is malformed: unknown field or parameter, bad name, duplicate.
    #[error("`{file}`: record type `{record_type}`: {message}")]
    InvalidView {
        /// The file.
        file: String,
        /// The record type id.
        record_type: String,
        /// What is wrong.
        message: String,
    },
}

/// The first way in which a record breaks its type's schema.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub struct SchemaViolation {
    /// JSON pointer to the offending value inside the record; empty for the record itself.
    pub path: String,
    /// What is wrong with it, with the offending value masked as `value` (it
    /// may be personal data).
    pub message: String,
}

impl fmt::Display for SchemaViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "record: {}", self.message)
        } else {
            write!(f, "`{}`: {}", self.path, self.message)
        }
    }
}
