//! The Cedar entities built once per policy set (record types, their views, requesters and
//! their groups) and the uids requests reuse, so a decision builds only the context.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;

use cedar_policy::{
    Entities, Entity, EntityId, EntityTypeName, EntityUid, RestrictedExpression, Schema,
};
use xgate_catalog::{Catalog, SharingClass};

use crate::data::Data;
use crate::schema::{
    ATTR_DEPARTMENT, ATTR_PREDICATE, ATTR_RECORD_TYPE, ATTR_SHARING_CLASS, ATTR_SUBJECT_KIND,
    ATTR_VIEW, READ, RECORD_TYPE, REQUESTER, REQUESTER_GROUP, SCREEN, VIEW,
};

/// A view as requests need it, keyed by `<record type>.<view>`.
#[derive(Debug)]
pub(crate) struct ViewEntry {
    /// Position of its record type in the catalog, which the policy index uses.
    pub(crate) type_index: usize,
    pub(crate) record_type: Arc<str>,
    pub(crate) view: Arc<str>,
    pub(crate) uid: EntityUid,
    pub(crate) not_shared: bool,
}

pub(crate) struct Built {
    pub(crate) entities: Entities,
    pub(crate) views: HashMap<Box<str>, ViewEntry>,
    /// The record type ids in catalog order.
    pub(crate) order: Vec<Arc<str>>,
    pub(crate) requester_type: EntityTypeName,
    pub(crate) read_action: EntityUid,
    pub(crate) screen_action: EntityUid,
}

/// `<record type>.<view>`, the id of a `View` entity.
pub(crate) fn view_id(record_type: &str, view: &str) -> String {
    format!("{record_type}.{view}")
}

/// Builds the entities (checked against the schema) and the cached uids.
pub(crate) fn build(catalog: &Catalog, data: &Data, schema: &Schema) -> Result<Built, String> {
    let type_name = |name: &str| {
        EntityTypeName::from_str(name).map_err(|e| format!("entity type `{name}`: {e}"))
    };
    let record_type_name = type_name(RECORD_TYPE)?;
    let view_type = type_name(VIEW)?;
    let requester_type = type_name(REQUESTER)?;
    let group_type = type_name(REQUESTER_GROUP)?;
    let read_action = EntityUid::from_type_name_and_id(type_name("Action")?, EntityId::new(READ));
    let screen_action =
        EntityUid::from_type_name_and_id(type_name("Action")?, EntityId::new(SCREEN));
    let string = |s: &str| RestrictedExpression::new_string(s.to_owned());

    let mut views = HashMap::new();
    let mut order = Vec::new();
    let mut entities = Vec::new();
    for (index, rt) in catalog.record_types().enumerate() {
        let type_uid =
            EntityUid::from_type_name_and_id(record_type_name.clone(), EntityId::new(&rt.id));
        let common = [
            (ATTR_DEPARTMENT.to_owned(), string(&rt.department)),
            (
                ATTR_SHARING_CLASS.to_owned(),
                string(rt.sharing_class.as_str()),
            ),
            (
                ATTR_SUBJECT_KIND.to_owned(),
                string(rt.subject_kind.as_str()),
            ),
        ];
        entities.push(
            Entity::new(
                type_uid.clone(),
                HashMap::from(common.clone()),
                HashSet::new(),
            )
            .map_err(|e| format!("record type `{}`: {e}", rt.id))?,
        );
        let id: Arc<str> = rt.id.as_str().into();
        order.push(Arc::clone(&id));
        for view in rt.views() {
            let vid = view_id(&rt.id, &view.name);
            let uid = EntityUid::from_type_name_and_id(view_type.clone(), EntityId::new(&vid));
            let mut attrs = HashMap::from(common.clone());
            attrs.insert(ATTR_RECORD_TYPE.to_owned(), string(&rt.id));
            attrs.insert(ATTR_VIEW.to_owned(), string(&view.name));
            attrs.insert(
                ATTR_PREDICATE.to_owned(),
                RestrictedExpression::new_bool(view.is_predicate()),
            );
            entities.push(
                Entity::new(uid.clone(), attrs, HashSet::from([type_uid.clone()]))
                    .map_err(|e| format!("view `{vid}`: {e}"))?,
            );
            views.insert(
                vid.into_boxed_str(),
                ViewEntry {
                    type_index: index,
                    record_type: Arc::clone(&id),
                    view: view.name.as_str().into(),
                    uid,
                    not_shared: rt.sharing_class == SharingClass::NotShared,
                },
            );
        }
    }
    for group in data.groups.keys() {
        let uid = EntityUid::from_type_name_and_id(group_type.clone(), EntityId::new(group));
        entities.push(Entity::new_no_attrs(uid, HashSet::new()));
    }
    for requester in &data.requesters {
        let uid =
            EntityUid::from_type_name_and_id(requester_type.clone(), EntityId::new(&requester.id));
        let parents = requester
            .groups
            .iter()
            .map(|g| EntityUid::from_type_name_and_id(group_type.clone(), EntityId::new(g)))
            .collect();
        entities.push(Entity::new_no_attrs(uid, parents));
    }
    let entities = Entities::from_entities(entities, Some(schema))
        .map_err(|e| format!("catalog entities do not fit the policy schema: {e}"))?;
    Ok(Built {
        entities,
        views,
        order,
        requester_type,
        read_action,
        screen_action,
    })
}
