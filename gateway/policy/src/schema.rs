//! The Cedar schema every policy is validated against, generated here rather than kept as a
//! file so that it cannot drift from the entities and requests this crate builds.
//!
//! The shape: principal `Requester` (no attributes yet), resource `RecordType` with the
//! catalog's `department`, `sharing_class` and `subject_kind`, one action `read`, and the
//! request context as the record type `ReadContext`. New request facts (views, approval
//! items, time of day) are new attributes of `ReadContext`; new catalog facts are new
//! `RecordType` attributes, filled in [`crate::entities`].

use cedar_policy::{Schema, SchemaError, SchemaFragment, ToCedarSchemaError};
use serde_json::json;

/// Entity type of the calling approval systems.
pub(crate) const REQUESTER: &str = "Requester";
/// Entity type of the catalog's record types.
pub(crate) const RECORD_TYPE: &str = "RecordType";
/// The one action.
pub(crate) const READ: &str = "read";
/// `RecordType` attribute: the owning department's catalog id.
pub(crate) const ATTR_DEPARTMENT: &str = "department";
/// `RecordType` attribute: `unconditional`, `conditional` or `not_shared`.
pub(crate) const ATTR_SHARING_CLASS: &str = "sharing_class";
/// `RecordType` attribute: `resident_id` or `uscc`.
pub(crate) const ATTR_SUBJECT_KIND: &str = "subject_kind";
/// Context attribute: the purpose code the requester states.
pub(crate) const CONTEXT_PURPOSE: &str = "purpose";
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

/// The schema, and its human-readable form for `xgate policy schema`.
#[derive(Debug)]
pub(crate) struct GeneratedSchema {
    pub(crate) schema: Schema,
    pub(crate) text: String,
}

fn required_string() -> serde_json::Value {
    json!({ "type": "String", "required": true })
}

pub(crate) fn generate() -> Result<GeneratedSchema, SchemaGenError> {
    let json = json!({
        "": {
            "commonTypes": {
                CONTEXT_TYPE: {
                    "type": "Record",
                    "attributes": { CONTEXT_PURPOSE: required_string() }
                }
            },
            "entityTypes": {
                REQUESTER: {},
                RECORD_TYPE: {
                    "shape": {
                        "type": "Record",
                        "attributes": {
                            ATTR_DEPARTMENT: required_string(),
                            ATTR_SHARING_CLASS: required_string(),
                            ATTR_SUBJECT_KIND: required_string()
                        }
                    }
                }
            },
            "actions": {
                READ: {
                    "appliesTo": {
                        "principalTypes": [REQUESTER],
                        "resourceTypes": [RECORD_TYPE],
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
            "entity Requester",
            "entity RecordType",
            "department: __cedar::String",
            "sharing_class: __cedar::String",
            "subject_kind: __cedar::String",
            "type ReadContext",
            "purpose: __cedar::String",
            "action \"read\"",
        ] {
            assert!(text.contains(needle), "`{needle}` missing from:\n{text}");
        }
        // the text form parses back to the same schema
        let (reparsed, _) = Schema::from_cedarschema_str(text).unwrap();
        assert_eq!(
            reparsed.entity_types().count(),
            generated.schema.entity_types().count()
        );
    }
}
