//! xgate's tamper-evident audit log.
//!
//! Owns: the entry format and its canonical encoding ([`entry`]), the hash
//! chain `hash = SHA-256(prev_hash || canonical(entry) || seq)`, the
//! gateway's audit keys ([`keys`]: Ed25519 checkpoint signatures, HMAC of
//! subject IDs), the SQLite and PostgreSQL stores ([`store`]), the
//! group-committing writer ([`AuditLog`]), verification of a store or of an
//! exported file ([`verify`]) and the JSON-lines export.
//!
//! Write before release: [`AuditLog::append`] resolves only after the
//! transaction holding the entries has committed; a writer task drains a
//! queue into one transaction per batch (group commit), so many concurrent
//! fetches share one fsync.

pub mod entry;
pub mod keys;
mod log;
pub mod store;
pub mod verify;

pub use entry::{Entry, Kind, NewEntry};
pub use keys::{Keys, PublicKey, PublicKeys};
pub use log::{AppendReceipt, AuditLog, Options, export_lines, verify_export, verify_store};
pub use store::{Filter, SqliteSync, Store};
pub use verify::{Checkpoint, KEY_ROTATED, VerifyReport};

/// Why an audit operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit store `{url}`: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error("audit store url `{0}` is neither `sqlite:` nor `postgres://`")]
    Url(String),
    #[error("audit store migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("audit store: {0}")]
    Query(#[from] sqlx::Error),
    #[error("audit entry {seq} is unreadable: {message}")]
    Corrupt { seq: u64, message: String },
    #[error("audit key: {0}")]
    Key(String),
    /// The batch holding the entries could not be committed.
    #[error("audit log unavailable: {0}")]
    Unavailable(String),
    #[error("audit export line {line}: {message}")]
    Export { line: u64, message: String },
    #[error("audit export: {0}")]
    Io(#[from] std::io::Error),
}
