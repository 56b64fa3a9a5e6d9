//! A catalog view on the wire (`ViewInfo` in `ListRecordTypes`): one mapping,
//! used by the gateway and read back by the clients.

use xgate_catalog::{ParamType, View, ViewKind};

use crate::v1;

/// The wire description of a catalog view: its name, kind, the fields a field
/// view keeps or the parameters a predicate needs.
pub fn to_proto(view: &View) -> v1::ViewInfo {
    let (kind, fields, params) = match &view.kind {
        ViewKind::Fields(fields) => (v1::ViewKind::Fields, fields.clone(), Vec::new()),
        ViewKind::Predicate(predicate) => (
            v1::ViewKind::Predicate,
            Vec::new(),
            predicate
                .params
                .iter()
                .map(|p| v1::ViewParam {
                    name: p.name.clone(),
                    r#type: match p.ty {
                        ParamType::String => v1::ViewParamType::String,
                        ParamType::Integer => v1::ViewParamType::Integer,
                    } as i32,
                })
                .collect(),
        ),
    };
    v1::ViewInfo {
        name: view.name.clone(),
        description: view.description.clone(),
        kind: kind as i32,
        fields,
        params,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use xgate_catalog::Catalog;

    fn views_of(record_type: &str) -> Vec<v1::ViewInfo> {
        let catalog = Catalog::builtin().expect("builtin catalog");
        let rt = catalog.record_type(record_type).expect("known type");
        rt.views().iter().map(to_proto).collect()
    }

    fn named<'a>(views: &'a [v1::ViewInfo], name: &str) -> &'a v1::ViewInfo {
        views.iter().find(|v| v.name == name).expect(name)
    }

    #[test]
    fn field_views_carry_their_fields_and_predicates_their_params() {
        let views = views_of("real_estate_title");
        let names: Vec<&str> = views.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "full",
                "summary",
                "exists",
                "owns_property_in_city",
                "owns_residential_property"
            ]
        );

        let summary = named(&views, "summary");
        assert_eq!(summary.kind, v1::ViewKind::Fields as i32);
        assert_eq!(
            summary.fields,
            ["owner_name", "address", "city", "district", "area_m2"]
        );
        assert!(summary.params.is_empty());
        assert!(!summary.description.is_empty());

        let in_city = named(&views, "owns_property_in_city");
        assert_eq!(in_city.kind, v1::ViewKind::Predicate as i32);
        assert!(in_city.fields.is_empty());
        assert_eq!(
            in_city.params,
            [v1::ViewParam {
                name: "city".into(),
                r#type: v1::ViewParamType::String as i32
            }]
        );

        let exists = named(&views, "exists");
        assert_eq!(exists.kind, v1::ViewKind::Predicate as i32);
        assert!(exists.params.is_empty());
        // `full` keeps every property of the schema.
        assert!(
            named(&views, "full")
                .fields
                .contains(&"owner_name".to_owned())
        );
    }

    #[test]
    fn integer_parameters_are_typed() {
        let views = views_of("resident_identity_card");
        let age = named(&views, "age_at_least");
        assert_eq!(
            age.params,
            [v1::ViewParam {
                name: "n".into(),
                r#type: v1::ViewParamType::Integer as i32
            }]
        );
    }
}
