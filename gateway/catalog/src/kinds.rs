//! The two small enums every other crate matches on.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The kind of number that names a subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    /// A citizen, named by a GB 11643-1999 resident identity number.
    ResidentId,
    /// An organisation, named by a GB 32100-2015 unified social credit code.
    Uscc,
}

impl SubjectKind {
    /// The snake_case name used in the catalog files.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ResidentId => "resident_id",
            Self::Uscc => "uscc",
        }
    }

    /// The kind named `s` ([`SubjectKind::as_str`]).
    pub fn parse(s: &str) -> Option<SubjectKind> {
        [Self::ResidentId, Self::Uscc]
            .into_iter()
            .find(|k| k.as_str() == s)
    }

    /// The record property that holds the subject's own number, which every record of a
    /// type of this kind carries so the gateway can check the record is the subject's.
    pub const fn record_field(self) -> &'static str {
        match self {
            Self::ResidentId => "id_number",
            Self::Uscc => "uscc",
        }
    }
}

impl fmt::Display for SubjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether, and on what terms, a department shares a record type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SharingClass {
    /// Shared with any authorised caller.
    Unconditional,
    /// Shared only when the access policy's conditions (purpose, consent, ...) hold.
    Conditional,
    /// Never released through the gateway.
    NotShared,
}

impl SharingClass {
    /// The snake_case name used in the catalog files.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Unconditional => "unconditional",
            Self::Conditional => "conditional",
            Self::NotShared => "not_shared",
        }
    }
}

impl fmt::Display for SharingClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn serde_names_match_display() {
        for kind in [SubjectKind::ResidentId, SubjectKind::Uscc] {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{kind}\""));
            assert_eq!(serde_json::from_str::<SubjectKind>(&json).unwrap(), kind);
        }
        for class in [
            SharingClass::Unconditional,
            SharingClass::Conditional,
            SharingClass::NotShared,
        ] {
            let json = serde_json::to_string(&class).unwrap();
            assert_eq!(json, format!("\"{class}\""));
            assert_eq!(serde_json::from_str::<SharingClass>(&json).unwrap(), class);
        }
        assert_eq!(SubjectKind::ResidentId.to_string(), "resident_id");
        assert_eq!(SharingClass::NotShared.to_string(), "not_shared");
    }

    #[test]
    fn unknown_names_are_rejected() {
        assert!(serde_json::from_str::<SubjectKind>("\"ResidentId\"").is_err());
        assert!(serde_json::from_str::<SharingClass>("\"shared\"").is_err());
    }
}
