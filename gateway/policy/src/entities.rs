//! The Cedar entities built from the catalog once per policy set, and the uids requests
//! reuse, so a decision builds only the requester's uid and the context.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;

use cedar_policy::{
    Entities, Entity, EntityId, EntityTypeName, EntityUid, RestrictedExpression, Schema,
};
use xgate_catalog::{Catalog, SharingClass};

use crate::schema::{
    ATTR_DEPARTMENT, ATTR_SHARING_CLASS, ATTR_SUBJECT_KIND, READ, RECORD_TYPE, REQUESTER,
};

/// A record type as requests need it.
#[derive(Debug)]
pub(crate) struct RecordTypeEntry {
    /// Position in the catalog, which the policy index uses.
    pub(crate) index: usize,
    pub(crate) id: Arc<str>,
    pub(crate) uid: EntityUid,
    pub(crate) not_shared: bool,
}

pub(crate) struct Built {
    pub(crate) entities: Entities,
    pub(crate) record_types: HashMap<Box<str>, RecordTypeEntry>,
    /// The record type ids in catalog order.
    pub(crate) order: Vec<Arc<str>>,
    pub(crate) requester_type: EntityTypeName,
    pub(crate) read_action: EntityUid,
}

/// Builds the `RecordType` entities (checked against the schema) and the cached uids.
/// Requesters have no attributes, so no requester entity is needed.
pub(crate) fn build(catalog: &Catalog, schema: &Schema) -> Result<Built, String> {
    let type_name = |name: &str| {
        EntityTypeName::from_str(name).map_err(|e| format!("entity type `{name}`: {e}"))
    };
    let record_type = type_name(RECORD_TYPE)?;
    let requester_type = type_name(REQUESTER)?;
    let read_action = EntityUid::from_type_name_and_id(type_name("Action")?, EntityId::new(READ));

    let mut record_types = HashMap::new();
    let mut order = Vec::new();
    let mut entities = Vec::new();
    for (index, rt) in catalog.record_types().enumerate() {
        let uid = EntityUid::from_type_name_and_id(record_type.clone(), EntityId::new(&rt.id));
        let attrs = HashMap::from([
            (
                ATTR_DEPARTMENT.to_owned(),
                RestrictedExpression::new_string(rt.department.clone()),
            ),
            (
                ATTR_SHARING_CLASS.to_owned(),
                RestrictedExpression::new_string(rt.sharing_class.to_string()),
            ),
            (
                ATTR_SUBJECT_KIND.to_owned(),
                RestrictedExpression::new_string(rt.subject_kind.to_string()),
            ),
        ]);
        let entity = Entity::new(uid.clone(), attrs, HashSet::new())
            .map_err(|e| format!("record type `{}`: {e}", rt.id))?;
        entities.push(entity);
        let id: Arc<str> = rt.id.as_str().into();
        order.push(Arc::clone(&id));
        record_types.insert(
            rt.id.as_str().into(),
            RecordTypeEntry {
                index,
                id,
                uid,
                not_shared: rt.sharing_class == SharingClass::NotShared,
            },
        );
    }
    let entities = Entities::from_entities(entities, Some(schema))
        .map_err(|e| format!("catalog entities do not fit the policy schema: {e}"))?;
    Ok(Built {
        entities,
        record_types,
        order,
        requester_type,
        read_action,
    })
}
