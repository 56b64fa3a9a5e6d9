//! The record catalog: departments, record types, their JSON Schemas, and subject ID validation
//! (GB 11643, GB 32100).
//!
//! The catalog is data: one JSON file per department under `records/`, embedded in the binary
//! ([`Catalog::builtin`]) or read from a directory ([`Catalog::load_dir`]). Loading validates
//! everything up front — ids, duplicates, freshness, and that every schema compiles with format
//! checking on — so code that holds a [`Catalog`] never meets a half-valid one.
//!
//! ```
//! use serde_json::json;
//! use xgate_catalog::{Catalog, SubjectKind, ids};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! ids::validate(SubjectKind::ResidentId, "11010519491231002X")?;
//! assert_eq!(
//!     ids::validate_uscc("91350100M000100Y44").unwrap_err().to_string(),
//!     "check character is `4`, expected `3`"
//! );
//!
//! let catalog = Catalog::builtin()?;
//! let licence = catalog.record_type("business_licence").ok_or("no business licence")?;
//! assert_eq!(licence.subject_kind, SubjectKind::Uscc);
//! let violation = licence.validate(&json!({"uscc": "91350100M000100Y43"})).unwrap_err();
//! assert_eq!(violation.path, "");
//! # Ok(())
//! # }
//! ```

mod catalog;
mod error;
pub mod ids;
mod kinds;
pub mod views;

pub use catalog::{Catalog, Department, RecordProblem, RecordType};
pub use error::{CatalogError, SchemaViolation};
pub use kinds::{SharingClass, SubjectKind};
pub use views::{
    Cond, EXISTS, FULL, Param, ParamType, Predicate, Quantifier, View, ViewError, ViewKind,
    ViewOutput,
};
