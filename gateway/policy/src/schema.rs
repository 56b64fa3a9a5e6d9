//! The Cedar schema every policy is validated against, generated here rather than kept as a
//! file so that it cannot drift from the entities and requests this crate builds.
//!
//! The shape: principal `Requester` (member of `RequesterGroup`s, from `requesters.toml`),
//! actions `read` (a fetch) and `screen` (a screening run), resource `View` (id `<record type>.<view>`, member of its
//! `RecordType`, so `resource in RecordType::"x"` covers all views of `x`). Both `View`
//! and `RecordType` carry the catalog's `department`, `sharing_class` and `subject_kind`;
//! `View` also `record_type`, `view` and `predicate`. The context is `ReadContext`:
//! `purpose`, `item` (`""` when the request names no approval item), `now` (a datetime,
//! truncated to the minute) and `local_time` (the duration since local midnight, UTC+8,
//! truncated to the minute).

use cedar_policy::{Schema, SchemaError, SchemaFragment, ToCedarSchemaError};
use serde_json::json;

/// Entity type of the calling approval systems.
pub(crate) const REQUESTER: &str = "Requester";
/// Entity type of groups of requesters.
pub(crate) const REQUESTER_GROUP: &str = "RequesterGroup";
/// Entity type of the catalog's record types.
pub(crate) const RECORD_TYPE: &str = "RecordType";
/// Entity type of a record type's views, the resource of every request.
pub(crate) const VIEW: &str = "View";
/// The action of a fetch: reading a view.
pub(crate) const READ: &str = "read";
/// The action of a screening run: asking a predicate view of many subjects
/// for a screening item (`context.item` is its code).
pub(crate) const SCREEN: &str = "screen";
/// Attribute: the owning department's catalog id.
pub(crate) const ATTR_DEPARTMENT: &str = "department";
/// Attribute: `unconditional`, `conditional` or `not_shared`.
pub(crate) const ATTR_SHARING_CLASS: &str = "sharing_class";
/// Attribute: `resident_id` or `uscc`.
pub(crate) const ATTR_SUBJECT_KIND: &str = "subject_kind";
/// `View` attribute: the record type id.
pub(crate) const ATTR_RECORD_TYPE: &str = "record_type";
/// `View` attribute: the view name.
pub(crate) const ATTR_VIEW: &str = "view";
/// `View` attribute: whether the view is a predicate.
pub(crate) const ATTR_PREDICATE: &str = "predicate";
/// Context attribute: the purpose code the requester states.
pub(crate) const CONTEXT_PURPOSE: &str = "purpose";
/// Context attribute: the approval item code, `""` for none.
pub(crate) const CONTEXT_ITEM: &str = "item";
/// Context attribute: the request time (UTC, truncated to the minute).
pub(crate) const CONTEXT_NOW: &str = "now";
/// Context attribute: time since local midnight (truncated to the minute).
pub(crate) const CONTEXT_LOCAL_TIME: &str = "local_time";
/// Context attribute: whether the subject asked for this fetch themselves
/// (the fetch carries a verified subject code, the "resident code" scan).
pub(crate) const CONTEXT_EXPLICIT_REQUEST: &str = "explicit_request";
/// Context attribute: a consent of the subject on record covers the
/// requester, purpose (item) and record type.
pub(crate) const CONTEXT_CONSENT: &str = "consent";
/// Context attribute: the relation of an applicant acting for the subject,
/// verified by the gateway from the departments' records (`"spouse"`), or
/// `""` when the applicant is the subject.
pub(crate) const CONTEXT_REPRESENTATION: &str = "representation";
/// Name of the context's record type in the schema.
const CONTEXT_TYPE: &str = "ReadContext";

/// Why the generated schema was unusable; a bug in this module, never in the policies.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SchemaGenError {
    #[error("generated cedar schema is invalid: {0}")]
    Invalid(#[from] Box<SchemaError>),
    #[error("cannot render the generated cedar schema: {0}")]
    Render(#[from] Box<ToCedarSchemaError>),
}

/// The schema, and its human-readable form.
#[derive(Debug)]
pub(crate) struct GeneratedSchema {
    pub(crate) schema: Schema,
    pub(crate) text: String,
}

fn required(ty: &str) -> serde_json::Value {
    json!({ "type": ty, "required": true })
}

fn extension(name: &str) -> serde_json::Value {
    json!({ "type": "Extension", "name": name, "required": true })
}

pub(crate) fn generate() -> Result<GeneratedSchema, SchemaGenError> {
    let json = json!({
        "": {
            "commonTypes": {
                CONTEXT_TYPE: {
                    "type": "Record",
                    "attributes": {
                        CONTEXT_PURPOSE: required("String"),
                        CONTEXT_ITEM: required("String"),
                        CONTEXT_EXPLICIT_REQUEST: required("Boolean"),
                        CONTEXT_CONSENT: required("Boolean"),
                        CONTEXT_REPRESENTATION: required("String"),
                        CONTEXT_NOW: extension("datetime"),
                        CONTEXT_LOCAL_TIME: extension("duration")
                    }
                }
            },
            "entityTypes": {
                REQUESTER_GROUP: {},
                REQUESTER: { "memberOfTypes": [REQUESTER_GROUP] },
                RECORD_TYPE: {
                    "shape": {
                        "type": "Record",
                        "attributes": {
                            ATTR_DEPARTMENT: required("String"),
                            ATTR_SHARING_CLASS: required("String"),
                            ATTR_SUBJECT_KIND: required("String")
                        }
                    }
                },
                VIEW: {
                    "memberOfTypes": [RECORD_TYPE],
                    "shape": {
                        "type": "Record",
                        "attributes": {
                            ATTR_RECORD_TYPE: required("String"),
                            ATTR_VIEW: required("String"),
                            ATTR_PREDICATE: required("Boolean"),
                            ATTR_DEPARTMENT: required("String"),
                            ATTR_SHARING_CLASS: required("String"),
                            ATTR_SUBJECT_KIND: required("String")
                        }
                    }
                }
            },
            "actions": {
                READ: {
                    "appliesTo": {
                        "principalTypes": [REQUESTER],
                        "resourceTypes": [VIEW],
                        "context": { "type": CONTEXT_TYPE }
                    }
                },
                SCREEN: {
                    "appliesTo": {
                        "principalTypes": [REQUESTER],
                        "resourceTypes": [VIEW],
                        "context": { "type": CONTEXT_TYPE }
                    }
                }
            }
        }
    });
    let fragment = SchemaFragment::from_json_value(json.clone()).map_err(Box::new)?;
    let text = fragment.to_cedarschema().map_err(Box::new)?;
    let schema = Schema::from_json_value(json).map_err(Box::new)?;
    Ok(GeneratedSchema { schema, text })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_declares_the_request_shape() {
        let generated = generate().unwrap();
        let text = &generated.text;
        for needle in [
            "entity Requester in [RequesterGroup]",
            "entity View in [RecordType]",
            "predicate: __cedar::Bool",
            "now: __cedar::datetime",
            "local_time: __cedar::duration",
            "item: __cedar::String",
            "explicit_request: __cedar::Bool",
            "representation: __cedar::String",
            "action \"read\"",
            "action \"screen\"",
        ] {
            assert!(text.contains(needle), "`{needle}` missing from:\n{text}");
        }
        let (reparsed, _) = Schema::from_cedarschema_str(text).unwrap();
        assert_eq!(
            reparsed.entity_types().count(),
            generated.schema.entity_types().count()
        );
    }
}
