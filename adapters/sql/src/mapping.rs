//! The mapping file: parsing ([`Mapping::load`]) and the checks against the
//! catalog ([`Mapping::check`]). Every error names `file:line:col`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};
use serde_json::Value;
use toml::Spanned;
use xgate_catalog::Catalog;

use crate::query::{BatchQuery, ParsedQuery, QueryError};

/// Connections per department when the mapping does not say.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 4;
/// Statement timeout when the mapping does not say.
pub const DEFAULT_STATEMENT_TIMEOUT_MS: u64 = 2000;

/// One problem in a mapping file, at a place in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct MappingError {
    /// The mapping file, as given.
    pub file: PathBuf,
    /// 1-based line and column (in characters); `None` for a problem with the
    /// file as a whole (unreadable).
    pub position: Option<(usize, usize)>,
    /// What is wrong, lowercase, user input in backticks.
    pub message: String,
}

impl fmt::Display for MappingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, col)) => {
                write!(f, "{}:{line}:{col}: {}", self.file.display(), self.message)
            }
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// Joins errors one per line (for `anyhow` contexts and the `check` command).
pub fn join_errors(errors: &[MappingError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The value type a field is produced as (see the crate docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    String,
    Integer,
    Number,
    Boolean,
    Date,
    StringList,
}

impl FieldType {
    fn name(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Integer => "integer",
            FieldType::Number => "number",
            FieldType::Boolean => "boolean",
            FieldType::Date => "date",
            FieldType::StringList => "string_list",
        }
    }
}

/// A parsed mapping file (one department). Build with [`Mapping::load`] or
/// [`Mapping::parse`]; check with [`Mapping::check`].
#[derive(Debug, Clone)]
pub struct Mapping {
    file: PathBuf,
    /// Byte offset of the start of each line, to turn spans into positions.
    line_starts: Vec<usize>,
    source: String,
    raw: RawMapping,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMapping {
    department: Spanned<String>,
    database: Spanned<RawDatabase>,
    #[serde(default)]
    record_types: Vec<Spanned<RawRecordType>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    url: Option<Spanned<String>>,
    password_env: Option<Spanned<String>>,
    password_file: Option<Spanned<String>>,
    max_connections: Option<Spanned<u32>>,
    statement_timeout_ms: Option<Spanned<u64>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecordType {
    record_type: Spanned<String>,
    query: Spanned<String>,
    batch_query: Option<Spanned<String>>,
    batch_subject: Option<Spanned<String>>,
    fields: Spanned<BTreeMap<Spanned<String>, Spanned<FieldSpec>>>,
}

/// `field = "column"` or `field = { column = "...", type = "...",
/// separator = "...", from_number = true, values = { "code" = value } }`.
#[derive(Debug, Clone)]
struct FieldSpec {
    column: String,
    ty: Option<FieldType>,
    separator: Option<String>,
    from_number: bool,
    values: Option<BTreeMap<String, toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FullFieldSpec {
    column: String,
    #[serde(rename = "type")]
    ty: Option<FieldType>,
    separator: Option<String>,
    #[serde(default)]
    from_number: bool,
    values: Option<BTreeMap<String, toml::Value>>,
}

impl<'de> Deserialize<'de> for FieldSpec {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SpecVisitor;
        impl<'de> Visitor<'de> for SpecVisitor {
            type Value = FieldSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a column name or a table `{ column = \"...\", type = \"...\" }`")
            }
            fn visit_str<E: de::Error>(self, column: &str) -> Result<FieldSpec, E> {
                Ok(FieldSpec {
                    column: column.to_owned(),
                    ty: None,
                    separator: None,
                    from_number: false,
                    values: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<FieldSpec, A::Error> {
                let full = FullFieldSpec::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(FieldSpec {
                    column: full.column,
                    ty: full.ty,
                    separator: full.separator,
                    from_number: full.from_number,
                    values: full.values,
                })
            }
        }
        deserializer.deserialize_any(SpecVisitor)
    }
}

/// The database part of a checked mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseSpec {
    /// The URL as written (sqlite paths not yet resolved), if any.
    pub url: Option<String>,
    /// Where the password comes from, when not in the URL.
    pub password: Option<PasswordSource>,
    pub max_connections: u32,
    pub statement_timeout: Duration,
}

/// Where a database password is read from at start (never the mapping).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// An environment variable's value.
    Env(String),
    /// A file's content, a trailing newline dropped (a path relative to the
    /// mapping file's folder).
    File(PathBuf),
}

/// One record type of a checked mapping, ready to run.
#[derive(Debug, Clone)]
pub struct TypePlan {
    pub record_type: String,
    pub query: ParsedQuery,
    pub fields: Vec<FieldPlan>,
    /// The set-based form for screening batches, when the mapping gives one
    /// (else each subject of a batch is one run of `query`).
    pub batch: Option<BatchPlan>,
    /// Where the record type's `[[record_types]]` entry is, for messages.
    pub(crate) query_position: (usize, usize),
}

/// A record type's `batch_query` and the column that names each row's
/// subject, so its rows can be handed back to the subjects asked about.
#[derive(Debug, Clone)]
pub struct BatchPlan {
    pub query: BatchQuery,
    /// The result column holding each row's subject ID: `batch_subject`, by
    /// default the column of the record's subject field (`id_number`,
    /// `uscc`).
    pub subject_column: String,
    /// Where `batch_query` is, for messages.
    pub(crate) query_position: (usize, usize),
    /// Where the subject column is named, for messages.
    pub(crate) subject_position: (usize, usize),
}

/// One field of a record type: where it comes from and how NULL is treated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPlan {
    pub field: String,
    pub column: String,
    pub ty: FieldType,
    pub separator: Option<String>,
    /// The schema allows JSON null for the field.
    pub nullable: bool,
    /// The schema requires the field (a NULL then is an error unless nullable).
    pub required: bool,
    /// A numeric column makes this string field on purpose (no warning).
    pub from_number: bool,
    /// The value map: column code -> the field's value (checked against the
    /// schema); a code not in it is bad data.
    pub values: Option<BTreeMap<String, Value>>,
    /// Where the field is mapped, for messages.
    pub(crate) position: (usize, usize),
}

impl Mapping {
    /// Reads and parses a mapping file. Syntax errors and unknown keys are
    /// reported with their position; catalog checks are [`Mapping::check`]'s.
    pub fn load(path: &Path) -> Result<Mapping, MappingError> {
        let source = std::fs::read_to_string(path).map_err(|e| MappingError {
            file: path.to_owned(),
            position: None,
            message: format!("cannot read the mapping file: {e}"),
        })?;
        Mapping::parse(path, &source)
    }

    /// Parses mapping text; `file` names it in errors and anchors relative
    /// SQLite paths.
    pub fn parse(file: &Path, source: &str) -> Result<Mapping, MappingError> {
        let line_starts = std::iter::once(0)
            .chain(source.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        let mut mapping = Mapping {
            file: file.to_owned(),
            line_starts,
            source: source.to_owned(),
            raw: RawMapping {
                department: Spanned::new(0..0, String::new()),
                database: Spanned::new(
                    0..0,
                    RawDatabase {
                        url: None,
                        password_env: None,
                        password_file: None,
                        max_connections: None,
                        statement_timeout_ms: None,
                    },
                ),
                record_types: Vec::new(),
            },
        };
        match toml::from_str::<RawMapping>(source) {
            Ok(raw) => {
                mapping.raw = raw;
                Ok(mapping)
            }
            Err(e) => {
                let at = e.span().map_or(0, |s| s.start);
                Err(mapping.error(at, e.message().trim_end().to_owned()))
            }
        }
    }

    /// The mapping file's path.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The department id the mapping is for.
    pub fn department(&self) -> &str {
        self.raw.department.get_ref()
    }

    /// The record types mapped, in file order.
    pub fn record_types(&self) -> Vec<String> {
        self.raw
            .record_types
            .iter()
            .map(|rt| rt.get_ref().record_type.get_ref().clone())
            .collect()
    }

    /// The `[database]` settings, defaults filled in.
    pub fn database(&self) -> DatabaseSpec {
        let db = self.raw.database.get_ref();
        let password = match (&db.password_env, &db.password_file) {
            (Some(var), _) => Some(PasswordSource::Env(var.get_ref().clone())),
            (None, Some(file)) => {
                let path = Path::new(file.get_ref());
                Some(PasswordSource::File(match self.file.parent() {
                    Some(dir) if path.is_relative() => dir.join(path),
                    _ => path.to_owned(),
                }))
            }
            (None, None) => None,
        };
        DatabaseSpec {
            url: db.url.as_ref().map(|u| u.get_ref().clone()),
            password,
            max_connections: db
                .max_connections
                .as_ref()
                .map_or(DEFAULT_MAX_CONNECTIONS, |n| *n.get_ref()),
            statement_timeout: Duration::from_millis(
                db.statement_timeout_ms
                    .as_ref()
                    .map_or(DEFAULT_STATEMENT_TIMEOUT_MS, |n| *n.get_ref()),
            ),
        }
    }

    /// Checks the mapping against the catalog and reports every problem.
    pub fn check(&self, catalog: &Catalog) -> Result<(), Vec<MappingError>> {
        self.plan(catalog).map(|_| ())
    }

    /// Checks the mapping and resolves each record type into what the
    /// adapter runs.
    pub fn plan(&self, catalog: &Catalog) -> Result<Vec<TypePlan>, Vec<MappingError>> {
        let mut errors = Vec::new();
        let department = &self.raw.department;
        let known_department = catalog.department(department.get_ref()).is_some();
        if !known_department {
            errors.push(self.error(
                department.span().start,
                format!(
                    "unknown department `{}`; the catalog has {}",
                    department.get_ref(),
                    list(catalog.departments().map(|d| d.id.as_str()))
                ),
            ));
        }
        let db = self.raw.database.get_ref();
        if let Some(n) = &db.max_connections
            && *n.get_ref() == 0
        {
            errors.push(self.error(
                n.span().start,
                "`max_connections` must be at least 1".into(),
            ));
        }
        if let (Some(_), Some(file)) = (&db.password_env, &db.password_file) {
            errors.push(self.error(
                file.span().start,
                "give the password in `password_env` or `password_file`, not both".into(),
            ));
        }
        if let Some(url) = &db.url
            && url.get_ref().starts_with("sqlite:")
            && let Some(p) = db.password_env.as_ref().or(db.password_file.as_ref())
        {
            errors.push(self.error(p.span().start, "a SQLite database has no password".into()));
        }
        if let Some(ms) = &db.statement_timeout_ms
            && *ms.get_ref() == 0
        {
            errors.push(self.error(
                ms.span().start,
                "`statement_timeout_ms` must be at least 1".into(),
            ));
        }
        if self.raw.record_types.is_empty() {
            errors.push(self.error(
                self.source.len(),
                "no `[[record_types]]`: the mapping serves nothing".into(),
            ));
        }

        let mut plans = Vec::new();
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for entry in &self.raw.record_types {
            let entry = entry.get_ref();
            let id = entry.record_type.get_ref();
            let id_at = entry.record_type.span().start;
            if let Some(line) = seen.insert(id, self.position(id_at).0) {
                errors.push(self.error(
                    id_at,
                    format!("record type `{id}` is already mapped at line {line}"),
                ));
                continue;
            }
            let query = match ParsedQuery::parse(entry.query.get_ref()) {
                Ok(q) => Some(q),
                Err(e) => {
                    errors.push(self.query_error(&entry.query, &e));
                    None
                }
            };
            let Some(rt) = catalog.record_type(id) else {
                errors.push(self.error(id_at, format!("record type `{id}` is not in the catalog")));
                continue;
            };
            if known_department && rt.department != *department.get_ref() {
                errors.push(self.error(
                    id_at,
                    format!(
                        "record type `{id}` belongs to department `{}`, not `{}`",
                        rt.department,
                        department.get_ref()
                    ),
                ));
                continue;
            }
            let fields = self.plan_fields(id, &entry.fields, &rt.schema, &mut errors);
            let batch =
                self.plan_batch(entry, &fields, rt.subject_kind.record_field(), &mut errors);
            if let Some(query) = query {
                plans.push(TypePlan {
                    record_type: id.clone(),
                    query,
                    fields,
                    batch,
                    query_position: self.position(entry.query.span().start),
                });
            }
        }
        if errors.is_empty() {
            Ok(plans)
        } else {
            errors.sort_by_key(|e| e.position);
            Err(errors)
        }
    }

    fn plan_fields(
        &self,
        record_type: &str,
        fields: &Spanned<BTreeMap<Spanned<String>, Spanned<FieldSpec>>>,
        schema: &Value,
        errors: &mut Vec<MappingError>,
    ) -> Vec<FieldPlan> {
        let properties = schema.get("properties").and_then(Value::as_object);
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut plans = Vec::new();
        for (field, spec) in fields.get_ref() {
            let name = field.get_ref();
            let at = field.span().start;
            let Some(property) = properties.and_then(|p| p.get(name)) else {
                errors.push(self.error(
                    at,
                    format!(
                        "field `{name}` is not in the schema of `{record_type}`; its fields are {}",
                        list(properties.into_iter().flat_map(|p| p.keys().map(String::as_str)))
                    ),
                ));
                continue;
            };
            let schema_type = SchemaType::of(property);
            let spec_ref = spec.get_ref();
            let ty = match spec_ref.ty {
                Some(ty) => ty,
                None => match schema_type.default_field_type() {
                    Some(ty) => ty,
                    None => {
                        errors.push(self.error(
                            at,
                            format!(
                                "field `{name}` has schema type {}, which no mapping type produces",
                                schema_type.describe()
                            ),
                        ));
                        continue;
                    }
                },
            };
            if !schema_type.accepts(ty) {
                errors.push(self.error(
                    spec.span().start,
                    format!(
                        "field `{name}` is mapped as `{}`, but the schema wants {}",
                        ty.name(),
                        schema_type.describe()
                    ),
                ));
                continue;
            }
            if spec_ref.separator.is_some() && ty != FieldType::StringList {
                errors.push(self.error(
                    spec.span().start,
                    format!("`separator` only applies to `string_list`, not to field `{name}`"),
                ));
                continue;
            }
            if spec_ref.from_number && ty != FieldType::String {
                errors.push(self.error(
                    spec.span().start,
                    format!("`from_number` only applies to string fields, not to field `{name}`"),
                ));
                continue;
            }
            if spec_ref.separator.as_deref() == Some("") {
                errors.push(self.error(spec.span().start, "`separator` must not be empty".into()));
                continue;
            }
            if spec_ref.column.trim().is_empty() {
                errors
                    .push(self.error(spec.span().start, format!("field `{name}` names no column")));
                continue;
            }
            let values = match &spec_ref.values {
                None => None,
                Some(map) => match value_map(name, map, property) {
                    Ok(values) => Some(values),
                    Err(why) => {
                        errors.push(self.error(spec.span().start, why));
                        continue;
                    }
                },
            };
            plans.push(FieldPlan {
                field: name.clone(),
                column: spec_ref.column.clone(),
                ty,
                separator: spec_ref.separator.clone(),
                nullable: schema_type.nullable,
                required: required.contains(&name.as_str()),
                from_number: spec_ref.from_number,
                values,
                position: self.position(at),
            });
        }
        let missing: Vec<&str> = required
            .iter()
            .copied()
            .filter(|r| !fields.get_ref().keys().any(|f| f.get_ref() == r))
            .collect();
        if !missing.is_empty() {
            errors.push(self.error(
                fields.span().start,
                format!(
                    "required field{} {} of `{record_type}` not mapped",
                    if missing.len() == 1 { "" } else { "s" },
                    list(missing.into_iter())
                ),
            ));
        }
        plans
    }

    /// The batch form of `entry`, if it has a valid one: `batch_query`
    /// parsed, and the subject column (`batch_subject`, else the column of
    /// the record's subject field `subject_field`).
    fn plan_batch(
        &self,
        entry: &RawRecordType,
        fields: &[FieldPlan],
        subject_field: &str,
        errors: &mut Vec<MappingError>,
    ) -> Option<BatchPlan> {
        let Some(raw) = &entry.batch_query else {
            if let Some(subject) = &entry.batch_subject {
                errors.push(self.error(
                    subject.span().start,
                    "`batch_subject` names the subject column of a `batch_query`, and there is none".into(),
                ));
            }
            return None;
        };
        let query = BatchQuery::parse(raw.get_ref())
            .map_err(|e| errors.push(self.query_error(raw, &e)))
            .ok();
        let subject = match &entry.batch_subject {
            Some(column) if column.get_ref().trim().is_empty() => {
                errors.push(self.error(
                    column.span().start,
                    "`batch_subject` names no column".into(),
                ));
                None
            }
            Some(column) => Some((column.get_ref().clone(), self.position(column.span().start))),
            // Every schema requires the subject field: when it is not mapped
            // that is reported already.
            None => fields
                .iter()
                .find(|f| f.field == subject_field)
                .map(|f| (f.column.clone(), f.position)),
        };
        let (query, (subject_column, subject_position)) = (query?, subject?);
        Some(BatchPlan {
            query,
            subject_column,
            query_position: self.position(raw.span().start),
            subject_position,
        })
    }

    fn query_error(&self, query: &Spanned<String>, error: &QueryError) -> MappingError {
        // The query text starts after the opening quotes; point into it when
        // the string is written on one line, else at the string.
        let start = query.span().start;
        let raw = self.source.get(query.span()).unwrap_or_default();
        let at = match error.offset {
            Some(offset)
                if raw
                    .get(1..)
                    .is_some_and(|r| r.starts_with(query.get_ref().as_str())) =>
            {
                start + 1 + offset
            }
            Some(offset)
                if raw
                    .get(3..)
                    .is_some_and(|r| r.starts_with(query.get_ref().as_str())) =>
            {
                start + 3 + offset
            }
            Some(offset)
                if raw
                    .get(4..)
                    .is_some_and(|r| r.starts_with(query.get_ref().as_str())) =>
            {
                // `"""` followed by the newline the parser trims
                start + 4 + offset
            }
            _ => start,
        };
        self.error(at, error.message.clone())
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub(crate) fn position(&self, offset: usize) -> (usize, usize) {
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let line_start = self.line_starts.get(line - 1).copied().unwrap_or(0);
        let col = self
            .source
            .get(line_start..offset.min(self.source.len()))
            .map_or(0, |s| s.chars().count());
        (line, col + 1)
    }

    pub(crate) fn error(&self, offset: usize, message: String) -> MappingError {
        MappingError {
            file: self.file.clone(),
            position: Some(self.position(offset)),
            message,
        }
    }

    pub(crate) fn error_at(&self, position: (usize, usize), message: String) -> MappingError {
        MappingError {
            file: self.file.clone(),
            position: Some(position),
            message,
        }
    }
}

/// Checks a field's value map against its schema property: at least one
/// code, every value of the property's type, in its `enum` when it has one,
/// a `YYYY-MM-DD` date for a date field; gives the values as JSON.
fn value_map(
    field: &str,
    map: &BTreeMap<String, toml::Value>,
    property: &Value,
) -> Result<BTreeMap<String, Value>, String> {
    if map.is_empty() {
        return Err(format!("the value map of field `{field}` lists no code"));
    }
    let mut values = BTreeMap::new();
    for (code, value) in map {
        let json = match value {
            toml::Value::String(s) => Value::String(s.clone()),
            toml::Value::Integer(i) => Value::from(*i),
            toml::Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(Value::Number)
                .ok_or_else(|| {
                    format!("field `{field}`: code `{code}` maps to a number JSON cannot hold")
                })?,
            toml::Value::Boolean(b) => Value::Bool(*b),
            _ => {
                return Err(format!(
                    "field `{field}`: code `{code}` must map to a string, number or boolean"
                ));
            }
        };
        if let Err(why) = fits_property(&json, property) {
            return Err(format!(
                "field `{field}`: code `{code}` maps to {json}, {why}"
            ));
        }
        values.insert(code.clone(), json);
    }
    Ok(values)
}

/// Whether `value` is valid for a schema property (type, enum, date format).
fn fits_property(value: &Value, property: &Value) -> Result<(), String> {
    let types: Vec<&str> = match property.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let type_ok = types.is_empty()
        || types.iter().any(|t| match *t {
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            _ => false,
        });
    if !type_ok {
        return Err(format!("but the schema wants {}", types.join(" or ")));
    }
    if let Some(allowed) = property.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let listed: Vec<String> = allowed.iter().map(Value::to_string).collect();
        return Err(format!(
            "which the schema does not allow; it allows {}",
            listed.join(", ")
        ));
    }
    if property.get("format").and_then(Value::as_str) == Some("date")
        && let Some(s) = value.as_str()
        && time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).is_err()
    {
        return Err("which is not a date (YYYY-MM-DD)".into());
    }
    Ok(())
}

/// What a schema property accepts, reduced to what mapping types can make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SchemaType {
    base: Option<Base>,
    date: bool,
    nullable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Base {
    String,
    Integer,
    Number,
    Boolean,
    StringArray,
    Other,
}

impl SchemaType {
    fn of(property: &Value) -> SchemaType {
        let types: Vec<&str> = match property.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let nullable = types.contains(&"null");
        let base = types.iter().find(|t| **t != "null").map(|t| match *t {
            "string" => Base::String,
            "integer" => Base::Integer,
            "number" => Base::Number,
            "boolean" => Base::Boolean,
            "array"
                if property
                    .get("items")
                    .and_then(|i| i.get("type"))
                    .and_then(Value::as_str)
                    == Some("string") =>
            {
                Base::StringArray
            }
            _ => Base::Other,
        });
        SchemaType {
            base,
            date: property.get("format").and_then(Value::as_str) == Some("date"),
            nullable,
        }
    }

    fn default_field_type(self) -> Option<FieldType> {
        match self.base? {
            Base::String if self.date => Some(FieldType::Date),
            Base::String => Some(FieldType::String),
            Base::Integer => Some(FieldType::Integer),
            Base::Number => Some(FieldType::Number),
            Base::Boolean => Some(FieldType::Boolean),
            Base::StringArray => Some(FieldType::StringList),
            Base::Other => None,
        }
    }

    fn accepts(self, ty: FieldType) -> bool {
        matches!(
            (self.base, ty),
            (Some(Base::String), FieldType::String | FieldType::Date)
                | (Some(Base::Integer), FieldType::Integer)
                | (Some(Base::Number), FieldType::Number | FieldType::Integer)
                | (Some(Base::Boolean), FieldType::Boolean)
                | (Some(Base::StringArray), FieldType::StringList)
        )
    }

    fn describe(self) -> String {
        let base = match self.base {
            Some(Base::String) if self.date => "a date string",
            Some(Base::String) => "a string",
            Some(Base::Integer) => "an integer",
            Some(Base::Number) => "a number",
            Some(Base::Boolean) => "a boolean",
            Some(Base::StringArray) => "an array of strings",
            Some(Base::Other) | None => "an unsupported type",
        };
        if self.nullable {
            format!("{base} or null")
        } else {
            base.to_owned()
        }
    }
}

/// `a`, `b`, `c` (at most 12 shown).
fn list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let items: Vec<String> = items.map(|i| format!("`{i}`")).collect();
    if items.len() > 12 {
        format!("{}, ... ({} in all)", items[..12].join(", "), items.len())
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"department = "tax"

[database]
url = "sqlite:tax.db"
statement_timeout_ms = 500

[[record_types]]
record_type = "no_tax_arrears_certificate"
query = "SELECT * FROM certs WHERE pid = :subject"

[record_types.fields]
certificate_no = "cert_no"
id_number = "pid"
taxpayer_name = "holder"
has_arrears = { column = "owes", type = "boolean" }
outstanding_amount_cny = { column = "owed", type = "number" }
tax_authority = "office"
issue_date = { column = "issued", type = "date" }
"#;

    fn catalog() -> Catalog {
        Catalog::builtin().unwrap()
    }

    fn parse(source: &str) -> Mapping {
        Mapping::parse(Path::new("tax.toml"), source).unwrap()
    }

    /// The 1-based line of the first occurrence of `needle` in `source`.
    fn line_of(source: &str, needle: &str) -> usize {
        let at = source.find(needle).unwrap();
        source[..at].matches('\n').count() + 1
    }

    fn check_errors(source: &str) -> Vec<MappingError> {
        parse(source).check(&catalog()).unwrap_err()
    }

    #[test]
    fn a_good_mapping_checks_and_resolves_types_from_the_schema() {
        let mapping = parse(GOOD);
        assert_eq!(mapping.department(), "tax");
        assert_eq!(mapping.record_types(), ["no_tax_arrears_certificate"]);
        assert_eq!(
            mapping.database(),
            DatabaseSpec {
                url: Some("sqlite:tax.db".into()),
                password: None,
                max_connections: DEFAULT_MAX_CONNECTIONS,
                statement_timeout: Duration::from_millis(500),
            }
        );
        let plans = mapping.plan(&catalog()).unwrap();
        let [plan] = plans.as_slice() else {
            panic!("{plans:?}")
        };
        assert_eq!(plan.query.occurrences(), 1);
        let holder = plan
            .fields
            .iter()
            .find(|f| f.field == "taxpayer_name")
            .unwrap();
        assert_eq!((holder.ty, holder.required), (FieldType::String, true));
        assert_eq!(holder.position, (line_of(GOOD, "taxpayer_name"), 1));
        let issued = plan
            .fields
            .iter()
            .find(|f| f.field == "issue_date")
            .unwrap();
        assert_eq!(issued.ty, FieldType::Date);
    }

    #[test]
    fn a_missing_required_field_names_the_fields_table() {
        let source = GOOD.replace("tax_authority = \"office\"\n", "");
        let errors = check_errors(&source);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(
            errors[0].to_string(),
            format!(
                "tax.toml:{}:1: required field `tax_authority` of `no_tax_arrears_certificate` not mapped",
                line_of(&source, "[record_types.fields]")
            )
        );
    }

    #[test]
    fn a_wrong_type_names_the_field_line() {
        let source = GOOD.replace(
            r#"has_arrears = { column = "owes", type = "boolean" }"#,
            r#"has_arrears = { column = "owes", type = "number" }"#,
        );
        let errors = check_errors(&source);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(
            errors[0].position.unwrap().0,
            line_of(&source, "has_arrears")
        );
        assert!(
            errors[0]
                .message
                .contains("`has_arrears` is mapped as `number`, but the schema wants a boolean"),
            "{}",
            errors[0]
        );
        // a date field may be read as a plain string; a number may come from an integer
        let lenient = GOOD
            .replace(r#"type = "date""#, r#"type = "string""#)
            .replace(
                r#"column = "owed", type = "number""#,
                r#"column = "owed", type = "integer""#,
            );
        parse(&lenient).check(&catalog()).unwrap();
        // an unknown type name is a parse error at its place
        let unknown = GOOD.replace(r#"type = "date""#, r#"type = "datetime""#);
        let err = Mapping::parse(Path::new("tax.toml"), &unknown).unwrap_err();
        assert_eq!(err.position.unwrap().0, line_of(&unknown, "issue_date"));
        assert!(err.message.contains("unknown variant `datetime`"), "{err}");
    }

    #[test]
    fn unknown_and_foreign_record_types_name_their_line() {
        let unknown = GOOD.replace(
            "record_type = \"no_tax_arrears_certificate\"",
            "record_type = \"no_such_certificate\"",
        );
        let errors = check_errors(&unknown);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(
            errors[0].to_string(),
            format!(
                "tax.toml:{}:15: record type `no_such_certificate` is not in the catalog",
                line_of(&unknown, "record_type =")
            )
        );
        let foreign = GOOD.replace(
            "record_type = \"no_tax_arrears_certificate\"",
            "record_type = \"marriage_registration\"",
        );
        let errors = check_errors(&foreign);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(
            errors[0].position.unwrap().0,
            line_of(&foreign, "record_type =")
        );
        assert!(
            errors[0]
                .message
                .contains("belongs to department `civil-affairs`, not `tax`"),
            "{}",
            errors[0]
        );
        let department = GOOD.replace("department = \"tax\"", "department = \"taxes\"");
        let errors = check_errors(&department);
        assert_eq!(errors[0].position, Some((1, 14)));
        assert!(
            errors[0].message.starts_with("unknown department `taxes`"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn a_bad_query_parameter_names_the_query_line_and_column() {
        let source = GOOD.replace("pid = :subject", "pid = ?");
        let errors = check_errors(&source);
        assert_eq!(errors.len(), 1, "{errors:?}");
        let col = source
            .lines()
            .find(|l| l.starts_with("query"))
            .unwrap()
            .find('?')
            .unwrap()
            + 1;
        assert_eq!(errors[0].position, Some((line_of(&source, "query ="), col)));
        assert!(
            errors[0].message.contains("`:subject`, not `?`"),
            "{}",
            errors[0]
        );
        // in a multi-line string the line inside the string is named
        let multi = GOOD.replace(
            "query = \"SELECT * FROM certs WHERE pid = :subject\"",
            "query = \"\"\"\nSELECT *\nFROM certs\nWHERE pid = :pid\n\"\"\"",
        );
        let errors = check_errors(&multi);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].position, Some((line_of(&multi, "WHERE pid"), 13)));
        assert!(
            errors[0].message.contains("unknown parameter `:pid`"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn a_batch_query_is_checked_and_names_its_subject_column() {
        let batched = GOOD.replace(
            "query = \"SELECT * FROM certs WHERE pid = :subject\"",
            "query = \"SELECT * FROM certs WHERE pid = :subject\"\n\
             batch_query = \"SELECT * FROM certs WHERE pid IN (:subjects)\"",
        );
        assert_ne!(batched, GOOD);
        let plans = parse(&batched).plan(&catalog()).unwrap();
        let batch = plans[0].batch.as_ref().expect("a batch form");
        assert_eq!(batch.query.occurrences(), 1);
        // By default the column of the subject field (`id_number = "pid"`).
        assert_eq!(batch.subject_column, "pid");
        assert_eq!(batch.subject_position, (line_of(&batched, "id_number"), 1));
        let named = batched.replace("batch_query =", "batch_subject = \"person\"\nbatch_query =");
        let plans = parse(&named).plan(&catalog()).unwrap();
        let batch = plans[0].batch.as_ref().expect("a batch form");
        assert_eq!(batch.subject_column, "person");
        assert_eq!(
            batch.subject_position,
            (line_of(&named, "batch_subject"), 17)
        );
        // No batch query: no batch form (the SDK's one-by-one fallback).
        assert!(parse(GOOD).plan(&catalog()).unwrap()[0].batch.is_none());

        // A batch query that is not `IN (:subjects)`, at its line and column.
        let wrong = batched.replace("pid IN (:subjects)", "pid = :subjects");
        let errors = check_errors(&wrong);
        assert_eq!(errors.len(), 1, "{errors:?}");
        let line = line_of(&wrong, "batch_query");
        let col = wrong
            .lines()
            .nth(line - 1)
            .unwrap()
            .find(":subjects")
            .unwrap()
            + 1;
        assert_eq!(errors[0].position, Some((line, col)));
        assert!(
            errors[0].message.contains("`IN (:subjects)`"),
            "{}",
            errors[0]
        );
        // `batch_subject` without a batch query, or naming nothing.
        let lonely = GOOD.replace(
            "[record_types.fields]",
            "batch_subject = \"pid\"\n[record_types.fields]",
        );
        let errors = check_errors(&lonely);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(
            errors[0].position,
            Some((line_of(&lonely, "batch_subject"), 17))
        );
        assert!(errors[0].message.contains("there is none"), "{}", errors[0]);
        let empty = named.replace("batch_subject = \"person\"", "batch_subject = \" \"");
        assert!(check_errors(&empty)[0].message.contains("names no column"));
        // An unknown key is still refused.
        let typo = batched.replace("batch_query", "bulk_query");
        let err = Mapping::parse(Path::new("tax.toml"), &typo).unwrap_err();
        assert!(err.message.contains("unknown field `bulk_query`"), "{err}");
    }

    #[test]
    fn every_problem_is_reported_in_file_order() {
        let source = GOOD
            .replace("pid = :subject", "pid = 'x'")
            .replace("tax_authority = \"office\"", "tax_office = \"office\"")
            .replace("statement_timeout_ms = 500", "statement_timeout_ms = 0");
        let errors = check_errors(&source);
        let lines: Vec<usize> = errors.iter().map(|e| e.position.unwrap().0).collect();
        assert_eq!(
            lines,
            [
                line_of(&source, "statement_timeout_ms"),
                line_of(&source, "query ="),
                line_of(&source, "[record_types.fields]"),
                line_of(&source, "tax_office"),
            ],
            "{errors:?}"
        );
        assert!(
            errors[3]
                .message
                .contains("field `tax_office` is not in the schema")
        );
        assert!(errors[2].message.contains("`tax_authority`"));
    }

    #[test]
    fn syntax_errors_and_unknown_keys_name_their_place() {
        let err =
            Mapping::parse(Path::new("m.toml"), "department = \"tax\"\n[database\n").unwrap_err();
        assert_eq!(err.position.unwrap().0, 2, "{err}");
        let source = GOOD.replace("statement_timeout_ms", "timeout_ms");
        let err = Mapping::parse(Path::new("m.toml"), &source).unwrap_err();
        assert_eq!(
            err.position.unwrap().0,
            line_of(&source, "timeout_ms"),
            "{err}"
        );
        assert!(err.message.contains("unknown field `timeout_ms`"), "{err}");
        let source = GOOD.replace(r#"column = "owes", type"#, r#"col = "owes", type"#);
        let err = Mapping::parse(Path::new("m.toml"), &source).unwrap_err();
        assert_eq!(
            err.position.unwrap().0,
            line_of(&source, "has_arrears"),
            "{err}"
        );
        let err = Mapping::load(Path::new("/nonexistent/m.toml")).unwrap_err();
        assert_eq!(err.position, None);
        assert!(
            err.to_string()
                .starts_with("/nonexistent/m.toml: cannot read"),
            "{err}"
        );
    }

    #[test]
    fn optional_and_nullable_fields_are_marked() {
        let source = r#"department = "market-regulation"
[database]
[[record_types]]
record_type = "special_equipment_operator_certificate"
query = "SELECT * FROM t WHERE a = :subject OR b = :subject"
[record_types.fields]
certificate_no = "c"
id_number = "a"
name = "n"
operation_items = { column = "items", type = "string_list", separator = ";" }
employer_name = "e"
issuing_authority = "i"
issue_date = "d"
valid_until = "v"
status = "s"
"#;
        let mapping = parse(source);
        assert_eq!(mapping.database().url, None);
        let plans = mapping.plan(&catalog()).unwrap();
        let employer = plans[0]
            .fields
            .iter()
            .find(|f| f.field == "employer_name")
            .unwrap();
        assert!(employer.nullable);
        let items = plans[0]
            .fields
            .iter()
            .find(|f| f.field == "operation_items")
            .unwrap();
        assert_eq!(
            (items.ty, items.separator.as_deref()),
            (FieldType::StringList, Some(";"))
        );
        let bad_separator = source.replace(
            r#"name = "n""#,
            r#"name = { column = "n", separator = "," }"#,
        );
        let errors = check_errors(&bad_separator);
        assert!(
            errors[0].message.contains("`separator` only applies"),
            "{errors:?}"
        );
    }

    #[test]
    fn value_maps_are_checked_against_the_schema() {
        let coded = GOOD.replace(
            r#"has_arrears = { column = "owes", type = "boolean" }"#,
            r#"has_arrears = { column = "owes", values = { "Y" = true, "N" = false } }"#,
        );
        let plans = parse(&coded).plan(&catalog()).unwrap();
        let arrears = plans[0]
            .fields
            .iter()
            .find(|f| f.field == "has_arrears")
            .unwrap();
        let values = arrears.values.as_ref().unwrap();
        assert_eq!(values.get("Y"), Some(&Value::Bool(true)));
        // a value of the wrong type, at the field's line
        let wrong = coded.replace(r#""N" = false"#, r#""N" = "no""#);
        let errors = check_errors(&wrong);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(
            errors[0].position.unwrap().0,
            line_of(&wrong, "has_arrears")
        );
        assert!(
            errors[0].message.contains(
                "field `has_arrears`: code `N` maps to \"no\", but the schema wants boolean"
            ),
            "{}",
            errors[0]
        );
        // a value outside the schema's enum
        let source = r#"department = "civil-affairs"
[database]
[[record_types]]
record_type = "marriage_registration"
query = "SELECT * FROM m WHERE p = :subject"
[record_types.fields]
certificate_no = "c"
id_number = "p"
name = "n"
spouse_name = "sn"
spouse_id_number = "sp"
registration_date = "d"
registration_authority = "a"
status = { column = "s", values = { "1" = "married", "9" = "annulled" } }
"#;
        let errors = check_errors(source);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0]
                .message
                .contains("code `9` maps to \"annulled\", which the schema does not allow")
                && errors[0].message.contains("\"widowed\""),
            "{}",
            errors[0]
        );
        let empty = source.replace(
            r#"values = { "1" = "married", "9" = "annulled" }"#,
            "values = {}",
        );
        assert!(check_errors(&empty)[0].message.contains("lists no code"));
    }

    #[test]
    fn from_number_is_for_string_fields_only() {
        let ok = GOOD.replace(
            r#"taxpayer_name = "holder""#,
            r#"taxpayer_name = { column = "holder", from_number = true }"#,
        );
        let plans = parse(&ok).plan(&catalog()).unwrap();
        assert!(plans[0].fields.iter().any(|f| f.from_number));
        let bad = GOOD.replace(
            r#"type = "boolean" }"#,
            r#"type = "boolean", from_number = true }"#,
        );
        let errors = check_errors(&bad);
        assert!(
            errors[0]
                .message
                .contains("`from_number` only applies to string fields"),
            "{errors:?}"
        );
    }

    #[test]
    fn the_password_comes_from_one_place_relative_to_the_mapping() {
        let source = GOOD.replace(
            "url = \"sqlite:tax.db\"",
            "url = \"postgres://reader@db/tax\"\npassword_file = \"secrets/db\"",
        );
        let mapping = Mapping::parse(Path::new("/etc/xgate/tax.toml"), &source).unwrap();
        assert_eq!(
            mapping.database().password,
            Some(PasswordSource::File(PathBuf::from("/etc/xgate/secrets/db")))
        );
        mapping.check(&catalog()).unwrap();
        let both = source.replace("password_file", "password_env = \"X\"\npassword_file");
        assert!(check_errors(&both)[0].message.contains("not both"));
        let sqlite = GOOD.replace(
            "url = \"sqlite:tax.db\"",
            "url = \"sqlite:tax.db\"\npassword_env = \"X\"",
        );
        assert!(
            check_errors(&sqlite)[0]
                .message
                .contains("SQLite database has no password")
        );
    }
}
