//! Views of a record type: what the gateway may release of its records.
//!
//! A *field view* is a subset of the record's fields (`full` is all of them). A *predicate
//! view* computes one JSON value (a boolean) over all records of the subject without
//! releasing any of them, e.g. `owns_property_in_city(city)` or `no_tax_arrears`.
//!
//! Predicates are data, not code: each is a quantifier (`any`, `all`, `none`) over a
//! condition on one record, and conditions are a handful of declarative forms evaluated by
//! [`Cond::eval`]. Every record type implicitly has `full` (all fields) and `exists`
//! (true when there is at least one record); a catalog file declares the others:
//!
//! ```json
//! "views": [
//!   {"name": "summary", "description": "…", "fields": ["owner_name", "city"]},
//!   {"name": "owns_property_in_city", "description": "…",
//!    "params": [{"name": "city", "type": "string"}],
//!    "any": {"field": "city", "eq_param": "city"}}
//! ]
//! ```
//!
//! Condition forms: `{"field": F, "eq": VALUE}`, `{"field": F, "eq_param": P}`,
//! `{"field": F, "contains_param": P}` (a string field containing the parameter),
//! `{"field": F, "one_of": [VALUE, ..]}`, `{"field": F, "age_at_least_param": P}` (F a
//! `YYYY-MM-DD` date; whole years until today), `{"field": F, "date_not_before_today":
//! true}`, `{"all_of": [..]}`, `{"any_of": [..]}`, `{"not": COND}`. A record lacking the
//! field, or with a value of another shape, fails the condition.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use thiserror::Error;
use time::{Date, macros::format_description};

/// The implicit view of all fields.
pub const FULL: &str = "full";
/// The implicit predicate: at least one record.
pub const EXISTS: &str = "exists";

/// One named view of a record type.
#[derive(Clone, Debug, PartialEq)]
pub struct View {
    /// `^[a-z][a-z0-9_]*$`, unique within its record type.
    pub name: String,
    /// What the view releases or answers, for people choosing one.
    pub description: String,
    /// Fields or predicate.
    pub kind: ViewKind,
}

/// What a view releases.
#[derive(Clone, Debug, PartialEq)]
pub enum ViewKind {
    /// Each record reduced to these fields (`full`: all the schema's properties).
    Fields(Vec<String>),
    /// One value computed over all records.
    Predicate(Predicate),
}

/// A declarative yes/no over all records of one subject.
#[derive(Clone, Debug, PartialEq)]
pub struct Predicate {
    /// Parameters the request supplies (e.g. `city`), all required.
    pub params: Vec<Param>,
    /// How the per-record condition combines over the records.
    pub quantifier: Quantifier,
    /// The condition on one record.
    pub condition: Cond,
}

/// A predicate parameter.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Param {
    /// `^[a-z][a-z0-9_]*$`.
    pub name: String,
    /// The type its string value must parse as.
    #[serde(rename = "type")]
    pub ty: ParamType,
}

/// Type of a predicate parameter (parameters travel as strings).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamType {
    /// Any string.
    String,
    /// A non-negative decimal integer.
    Integer,
}

/// How a predicate combines its per-record condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quantifier {
    /// Some record satisfies it.
    Any,
    /// There is at least one record and every record satisfies it.
    All,
    /// No record satisfies it (true when there are no records).
    None,
}

/// A condition on one record.
#[derive(Clone, Debug, PartialEq)]
pub enum Cond {
    /// Always true (`exists`).
    True,
    /// `field == value` (JSON equality; `null` matches an explicit null).
    Eq(String, Value),
    /// `field == params[param]` (a string field).
    EqParam(String, String),
    /// The string `field` contains `params[param]` (a place in an address).
    ContainsParam(String, String),
    /// `field` is one of the values.
    OneOf(String, Vec<Value>),
    /// The date in `field` is at least `params[param]` whole years before today.
    AgeAtLeastParam(String, String),
    /// The date in `field` is today or later.
    DateNotBeforeToday(String),
    /// Every condition holds.
    AllOf(Vec<Cond>),
    /// Some condition holds.
    AnyOf(Vec<Cond>),
    /// The condition does not hold.
    Not(Box<Cond>),
}

/// What [`View::apply`] yields.
#[derive(Clone, Debug, PartialEq)]
pub enum ViewOutput {
    /// Field view: the records reduced to the view's fields.
    Records(Vec<Value>),
    /// Predicate: its value.
    Value(Value),
}

/// A request's view parameters do not fit the view.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ViewError {
    /// A declared parameter was not given.
    #[error("view `{view}` needs parameter `{param}`")]
    MissingParam {
        /// The view.
        view: String,
        /// The parameter.
        param: String,
    },
    /// A parameter the view does not declare.
    #[error("view `{view}` has no parameter `{param}`")]
    UnknownParam {
        /// The view.
        view: String,
        /// The parameter.
        param: String,
    },
    /// An integer parameter that is not one.
    #[error("parameter `{param}` of view `{view}` must be a non-negative integer")]
    NotInteger {
        /// The view.
        view: String,
        /// The parameter.
        param: String,
    },
}

impl View {
    /// Whether the view answers with a value instead of records.
    pub fn is_predicate(&self) -> bool {
        matches!(self.kind, ViewKind::Predicate(_))
    }

    /// The parameters the view takes (none for field views).
    pub fn params(&self) -> &[Param] {
        match &self.kind {
            ViewKind::Predicate(p) => &p.params,
            ViewKind::Fields(_) => &[],
        }
    }

    /// Checks that `params` are exactly the declared parameters, well typed.
    pub fn check_params(&self, params: &BTreeMap<String, String>) -> Result<(), ViewError> {
        let declared = self.params();
        if let Some(unknown) = params
            .keys()
            .find(|k| !declared.iter().any(|p| &p.name == *k))
        {
            return Err(ViewError::UnknownParam {
                view: self.name.clone(),
                param: unknown.clone(),
            });
        }
        for param in declared {
            let Some(value) = params.get(&param.name) else {
                return Err(ViewError::MissingParam {
                    view: self.name.clone(),
                    param: param.name.clone(),
                });
            };
            if param.ty == ParamType::Integer && value.parse::<u32>().is_err() {
                return Err(ViewError::NotInteger {
                    view: self.name.clone(),
                    param: param.name.clone(),
                });
            }
        }
        Ok(())
    }

    /// Field views: each record reduced to the view's fields. Predicates: one JSON value
    /// over all records. `today` is the date predicates compare dates with (the caller's
    /// local date). Errors: missing, unknown or ill-typed parameter.
    pub fn apply(
        &self,
        records: &[Value],
        params: &BTreeMap<String, String>,
        today: Date,
    ) -> Result<ViewOutput, ViewError> {
        self.check_params(params)?;
        match &self.kind {
            ViewKind::Fields(fields) => Ok(ViewOutput::Records(
                records.iter().map(|r| project(r, fields)).collect(),
            )),
            ViewKind::Predicate(p) => {
                let env = Env { params, today };
                let holds = |r: &Value| p.condition.eval(r, &env);
                let value = match p.quantifier {
                    Quantifier::Any => records.iter().any(holds),
                    Quantifier::All => !records.is_empty() && records.iter().all(holds),
                    Quantifier::None => !records.iter().any(holds),
                };
                Ok(ViewOutput::Value(Value::Bool(value)))
            }
        }
    }
}

fn project(record: &Value, fields: &[String]) -> Value {
    match record {
        Value::Object(map) => Value::Object(
            fields
                .iter()
                .filter_map(|f| map.get(f).map(|v| (f.clone(), v.clone())))
                .collect(),
        ),
        // Records are objects (schema-checked before views apply); anything else is
        // released as nothing rather than whole.
        _ => Value::Object(serde_json::Map::new()),
    }
}

/// What conditions read besides the record.
struct Env<'a> {
    params: &'a BTreeMap<String, String>,
    today: Date,
}

fn date_of(value: Option<&Value>) -> Option<Date> {
    let text = value?.as_str()?;
    Date::parse(text, format_description!("[year]-[month]-[day]")).ok()
}

/// Whole years from `birth` to `today` (a birthday counts on its day; 29 February
/// birthdays on 1 March in other years).
fn whole_years(birth: Date, today: Date) -> i32 {
    let mut years = today.year() - birth.year();
    if (u8::from(today.month()), today.day()) < (u8::from(birth.month()), birth.day()) {
        years -= 1;
    }
    years
}

impl Cond {
    fn eval(&self, record: &Value, env: &Env<'_>) -> bool {
        match self {
            Cond::True => true,
            Cond::Eq(field, value) => record.get(field) == Some(value),
            Cond::EqParam(field, param) => {
                let want = env.params.get(param).map(String::as_str);
                want.is_some() && record.get(field).and_then(Value::as_str) == want
            }
            Cond::ContainsParam(field, param) => {
                let want = env.params.get(param).map(String::as_str);
                match (record.get(field).and_then(Value::as_str), want) {
                    (Some(have), Some(want)) => !want.is_empty() && have.contains(want),
                    _ => false,
                }
            }
            Cond::OneOf(field, values) => record.get(field).is_some_and(|v| values.contains(v)),
            Cond::AgeAtLeastParam(field, param) => {
                let years = env.params.get(param).and_then(|n| n.parse::<i32>().ok());
                match (date_of(record.get(field)), years) {
                    (Some(birth), Some(n)) => whole_years(birth, env.today) >= n,
                    _ => false,
                }
            }
            Cond::DateNotBeforeToday(field) => {
                date_of(record.get(field)).is_some_and(|d| d >= env.today)
            }
            Cond::AllOf(conds) => conds.iter().all(|c| c.eval(record, env)),
            Cond::AnyOf(conds) => conds.iter().any(|c| c.eval(record, env)),
            Cond::Not(cond) => !cond.eval(record, env),
        }
    }
}

/// A view as written in a catalog file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ViewDoc {
    name: String,
    description: String,
    fields: Option<Vec<String>>,
    #[serde(default)]
    params: Vec<Param>,
    any: Option<CondDoc>,
    all: Option<CondDoc>,
    none: Option<CondDoc>,
}

/// A condition as written: exactly one form per object.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CondDoc {
    field: Option<String>,
    // `Option<Value>` would read `"eq": null` as absent.
    #[serde(default, deserialize_with = "some_value")]
    eq: Option<Value>,
    eq_param: Option<String>,
    contains_param: Option<String>,
    one_of: Option<Vec<Value>>,
    age_at_least_param: Option<String>,
    date_not_before_today: Option<bool>,
    all_of: Option<Vec<CondDoc>>,
    any_of: Option<Vec<CondDoc>>,
    not: Option<Box<CondDoc>>,
}

fn some_value<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// The implicit views of a record type with these schema properties.
pub(crate) fn implicit(properties: &[String]) -> (View, View) {
    (
        View {
            name: FULL.to_owned(),
            description: "every field of every record".to_owned(),
            kind: ViewKind::Fields(properties.to_vec()),
        },
        View {
            name: EXISTS.to_owned(),
            description: "whether the subject has at least one record".to_owned(),
            kind: ViewKind::Predicate(Predicate {
                params: Vec::new(),
                quantifier: Quantifier::Any,
                condition: Cond::True,
            }),
        },
    )
}

/// Checks a declared view against the record's schema properties; the error is a message
/// (lowercase, names in backticks) the caller places in its file.
pub(crate) fn compile(doc: ViewDoc, properties: &[String]) -> Result<View, String> {
    let name = doc.name;
    if !crate::catalog::is_id(&name, b'_') {
        return Err(format!(
            "view name `{name}` does not match `^[a-z][a-z0-9_]*$`"
        ));
    }
    if name == FULL || name == EXISTS {
        return Err(format!("view `{name}` is implicit and cannot be declared"));
    }
    let known = |field: &str| -> Result<(), String> {
        if properties.iter().any(|p| p == field) {
            Ok(())
        } else {
            Err(format!("view `{name}`: unknown field `{field}`"))
        }
    };
    let quantified = [
        (Quantifier::Any, doc.any),
        (Quantifier::All, doc.all),
        (Quantifier::None, doc.none),
    ]
    .into_iter()
    .filter_map(|(q, c)| c.map(|c| (q, c)))
    .collect::<Vec<_>>();
    match (doc.fields, quantified.len()) {
        (Some(fields), 0) => {
            if !doc.params.is_empty() {
                return Err(format!("view `{name}`: a field view takes no `params`"));
            }
            if fields.is_empty() {
                return Err(format!("view `{name}`: `fields` is empty"));
            }
            for (i, field) in fields.iter().enumerate() {
                known(field)?;
                if fields.get(..i).is_some_and(|before| before.contains(field)) {
                    return Err(format!("view `{name}`: field `{field}` listed twice"));
                }
            }
            Ok(View {
                name,
                description: doc.description,
                kind: ViewKind::Fields(fields),
            })
        }
        (None, 1) => {
            for (i, param) in doc.params.iter().enumerate() {
                if !crate::catalog::is_id(&param.name, b'_') {
                    return Err(format!(
                        "view `{name}`: parameter name `{}` does not match `^[a-z][a-z0-9_]*$`",
                        param.name
                    ));
                }
                if doc
                    .params
                    .get(..i)
                    .is_some_and(|b| b.iter().any(|p| p.name == param.name))
                {
                    return Err(format!(
                        "view `{name}`: parameter `{}` declared twice",
                        param.name
                    ));
                }
            }
            let mut used = Vec::new();
            let Some((quantifier, cond)) = quantified.into_iter().next() else {
                return Err(format!("view `{name}`: no predicate"));
            };
            let condition = compile_cond(cond, &name, &known, &doc.params, &mut used)?;
            if let Some(unused) = doc.params.iter().find(|p| !used.contains(&p.name)) {
                return Err(format!(
                    "view `{name}`: parameter `{}` is never used",
                    unused.name
                ));
            }
            Ok(View {
                name,
                description: doc.description,
                kind: ViewKind::Predicate(Predicate {
                    params: doc.params,
                    quantifier,
                    condition,
                }),
            })
        }
        _ => Err(format!(
            "view `{name}` must have exactly one of `fields`, `any`, `all`, `none`"
        )),
    }
}

fn compile_cond(
    doc: CondDoc,
    view: &str,
    known: &dyn Fn(&str) -> Result<(), String>,
    params: &[Param],
    used: &mut Vec<String>,
) -> Result<Cond, String> {
    let mut param = |p: String, ty: Option<ParamType>| -> Result<String, String> {
        match params.iter().find(|d| d.name == p) {
            None => Err(format!("view `{view}`: undeclared parameter `{p}`")),
            Some(d) if ty.is_some_and(|t| t != d.ty) => Err(format!(
                "view `{view}`: parameter `{p}` must be of type integer"
            )),
            Some(_) => {
                used.push(p.clone());
                Ok(p)
            }
        }
    };
    let mut forms: Vec<Cond> = Vec::new();
    let field = doc.field;
    let with_field = |what: &str| -> Result<String, String> {
        let f = field
            .clone()
            .ok_or_else(|| format!("view `{view}`: `{what}` needs a `field`"))?;
        known(&f)?;
        Ok(f)
    };
    if let Some(v) = doc.eq {
        forms.push(Cond::Eq(with_field("eq")?, v));
    }
    if let Some(p) = doc.eq_param {
        forms.push(Cond::EqParam(with_field("eq_param")?, param(p, None)?));
    }
    if let Some(p) = doc.contains_param {
        forms.push(Cond::ContainsParam(
            with_field("contains_param")?,
            param(p, None)?,
        ));
    }
    if let Some(vs) = doc.one_of {
        forms.push(Cond::OneOf(with_field("one_of")?, vs));
    }
    if let Some(p) = doc.age_at_least_param {
        forms.push(Cond::AgeAtLeastParam(
            with_field("age_at_least_param")?,
            param(p, Some(ParamType::Integer))?,
        ));
    }
    if let Some(flag) = doc.date_not_before_today {
        if !flag {
            return Err(format!(
                "view `{view}`: `date_not_before_today` must be `true`"
            ));
        }
        forms.push(Cond::DateNotBeforeToday(with_field(
            "date_not_before_today",
        )?));
    }
    let has_field_form = !forms.is_empty();
    if let Some(docs) = doc.all_of {
        let conds = docs
            .into_iter()
            .map(|d| compile_cond(d, view, known, params, used))
            .collect::<Result<_, _>>()?;
        forms.push(Cond::AllOf(conds));
    }
    if let Some(docs) = doc.any_of {
        let conds = docs
            .into_iter()
            .map(|d| compile_cond(d, view, known, params, used))
            .collect::<Result<_, _>>()?;
        forms.push(Cond::AnyOf(conds));
    }
    if let Some(d) = doc.not {
        forms.push(Cond::Not(Box::new(compile_cond(
            *d, view, known, params, used,
        )?)));
    }
    if field.is_some() && !has_field_form {
        return Err(format!("view `{view}`: `field` without a comparison"));
    }
    if forms.len() != 1 {
        return Err(format!(
            "view `{view}`: a condition must have exactly one form (`eq`, `eq_param`, `one_of`, \
             `age_at_least_param`, `date_not_before_today`, `all_of`, `any_of`, `not`)"
        ));
    }
    forms
        .pop()
        .ok_or_else(|| format!("view `{view}`: empty condition"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
