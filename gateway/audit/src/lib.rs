//! xgate's tamper-evident audit log (v2).
//!
//! - **One entry per answer** ([`entry`]): a fetch, or one department batch
//!   of a stream, is one entry carrying all its per-record decisions,
//!   encoded canonically once, hashed once, stored as one blob. Auditor
//!   queries stay per record through a narrow index table written in the
//!   same transaction ([`store`]).
//! - **One chain per gateway instance**: the instance id lives in the key
//!   directory ([`keys`]); an instance lock keeps a second process of the
//!   same instance out. Several instances share one PostgreSQL store with
//!   no common lock: each moves only its own head row.
//! - **Each chain an RFC 6962 Merkle tree** ([`merkle`]): inclusion and
//!   consistency proofs verified in O(log n).
//! - **Fail closed**: the writer keeps the head it last committed and
//!   appends only by compare-and-set on it; a head that moved under it
//!   (entries deleted or rewritten while it runs) refuses every later
//!   append and raises a tamper alarm ([`AuditLog::alarms`]).
//! - **Checkpoints** as C2SP signed notes ([`note`]), at start-up, after
//!   recovery, and every N entries or T seconds; cosignatures for watchers.
//! - **Receipts** ([`receipt`]): per answer, signed by the instance key.
//! - **Verification** ([`verify`]): every chain, every checkpoint; against
//!   a checkpoint held outside the store; receipts; offline exports.
//!
//! Write before release: [`AuditLog::append`] resolves only after the
//! transaction holding the entries has committed; one writer task per
//! instance drains a queue into one transaction per batch (group commit).

pub mod entry;
pub mod keys;
mod log;
pub mod merkle;
pub mod note;
pub mod receipt;
pub mod rollup;
pub mod store;
pub mod verify;

pub use entry::{Decision, Entry, Kind, NewEntry, Verdict, answer_digest, digest_records};
pub use keys::{ALARM_FILE, InstanceLock, Keys, PublicKey, PublicKeys, SubjectKey};
pub use log::{AuditLog, KEY_ADDED, Options};
pub use note::{SignedCheckpoint, TreeHead};
pub use receipt::Receipt;
pub use store::{Cursor, Filter, Record, SqliteSync, Store};
pub use verify::{
    ReceiptReport, TrustedReport, VerifyReport, consistency_proof, entry_at, export_lines,
    inclusion_proof, latest_checkpoints, verify_export, verify_receipt, verify_store,
    verify_with_trusted,
};

/// Why an audit operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit store `{url}`: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error("audit store url `{0}` is neither `sqlite:` nor `postgres://`")]
    Url(String),
    #[error("audit store migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(
        "audit store `{0}` holds a v1 audit log (table `audit_entries`), which this version does not read: \
         export and verify it with the previous xgate binary (`xgate audit export > v1.jsonl`, \
         `xgate audit verify --export v1.jsonl`), then move the store aside and start with an empty one"
    )]
    V1Store(String),
    #[error("audit store: {0}")]
    Query(#[from] sqlx::Error),
    #[error("audit chain `{chain}` entry {index} is unreadable: {message}")]
    Corrupt {
        chain: String,
        index: u64,
        message: String,
    },
    #[error("audit key: {0}")]
    Key(String),
    #[error(
        "audit instance `{instance}` is already running (lock `{path}` held, {holder}); \
         a second process of one instance would fork its chain: give it its own key directory"
    )]
    InstanceLocked {
        instance: String,
        path: String,
        holder: String,
    },
    /// The batch holding the entries could not be committed.
    #[error("audit log unavailable: {0}")]
    Unavailable(String),
    /// The store's chain is not the one this writer committed: appends are
    /// refused until an operator has looked (see the tamper alarms).
    #[error("audit log failed closed: {0}")]
    FailedClosed(String),
    #[error("audit receipt: {0}")]
    Receipt(String),
    #[error("audit export line {line}: {message}")]
    Export { line: u64, message: String },
    #[error("audit export: {0}")]
    Io(#[from] std::io::Error),
}
