//! TEMPORARY stand-in for the views API (replaced by the real implementation on merge).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::RecordType;

#[derive(Clone, Debug)]
pub struct View {
    pub name: String,
    pub description: String,
    pub kind: ViewKind,
}

#[derive(Clone, Debug)]
pub enum ViewKind {
    Fields(Vec<String>),
    Predicate(Predicate),
}

#[derive(Clone, Debug, Default)]
pub struct Predicate {
    pub params: Vec<Param>,
}

#[derive(Clone, Debug)]
pub struct Param {
    pub name: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ViewOutput {
    Records(Vec<Value>),
    Value(Value),
}

#[derive(Clone, Debug, thiserror::Error)]
#[error("{0}")]
pub struct ViewError(pub String);

pub(crate) fn defaults(schema: &Value) -> Vec<View> {
    let fields = schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    vec![
        View {
            name: "full".into(),
            description: "all fields".into(),
            kind: ViewKind::Fields(fields),
        },
        View {
            name: "exists".into(),
            description: "whether a record exists".into(),
            kind: ViewKind::Predicate(Predicate::default()),
        },
    ]
}

impl RecordType {
    pub fn views(&self) -> &[View] {
        &self.views
    }

    pub fn view(&self, name: &str) -> Option<&View> {
        self.views.iter().find(|v| v.name == name)
    }
}

impl View {
    pub fn is_predicate(&self) -> bool {
        matches!(self.kind, ViewKind::Predicate(_))
    }

    pub fn check_params(&self, params: &BTreeMap<String, String>) -> Result<(), ViewError> {
        match params.keys().next() {
            Some(k) => Err(ViewError(format!("unknown parameter `{k}`"))),
            None => Ok(()),
        }
    }

    pub fn apply(
        &self,
        records: &[Value],
        params: &BTreeMap<String, String>,
        _today: time::Date,
    ) -> Result<ViewOutput, ViewError> {
        self.check_params(params)?;
        match &self.kind {
            ViewKind::Fields(fields) => Ok(ViewOutput::Records(
                records
                    .iter()
                    .map(|r| match r {
                        Value::Object(map) => Value::Object(
                            map.iter()
                                .filter(|(k, _)| fields.contains(k))
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .collect(),
                        ),
                        other => other.clone(),
                    })
                    .collect(),
            )),
            ViewKind::Predicate(_) => Ok(ViewOutput::Value(Value::Bool(!records.is_empty()))),
        }
    }
}
