//! The subject kind on the wire and in the catalog: one mapping, used by the
//! gateway, the adapter SDK and the clients.

use xgate_catalog::SubjectKind;

/// The wire value of a catalog subject kind.
pub fn to_proto(kind: SubjectKind) -> crate::v1::SubjectKind {
    match kind {
        SubjectKind::ResidentId => crate::v1::SubjectKind::ResidentId,
        SubjectKind::Uscc => crate::v1::SubjectKind::Uscc,
    }
}

/// The catalog subject kind of a wire value; `None` for UNSPECIFIED or an
/// unknown number.
pub fn from_proto(kind: i32) -> Option<SubjectKind> {
    match crate::v1::SubjectKind::try_from(kind) {
        Ok(crate::v1::SubjectKind::ResidentId) => Some(SubjectKind::ResidentId),
        Ok(crate::v1::SubjectKind::Uscc) => Some(SubjectKind::Uscc),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_unspecified() {
        for kind in [SubjectKind::ResidentId, SubjectKind::Uscc] {
            assert_eq!(from_proto(to_proto(kind) as i32), Some(kind));
        }
        assert_eq!(from_proto(crate::v1::SubjectKind::Unspecified as i32), None);
        assert_eq!(from_proto(99), None);
    }
}
