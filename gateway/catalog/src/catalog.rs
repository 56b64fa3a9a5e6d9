//! Loading and querying the catalog of departments and record types.

use std::{collections::HashMap, fmt, fs, ops::Range, path::Path, time::Duration};

use include_dir::{Dir, include_dir};
use jsonschema::{Draft, Validator};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::views::{self, View, ViewDoc};
use crate::{CatalogError, SchemaViolation, SharingClass, SubjectKind};

/// The repository's `records/` directory, embedded so the gateway runs without it on disk.
static BUILTIN: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/records");

/// A department that owns record types.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Department {
    /// Stable id, `^[a-z][a-z0-9-]*$`, e.g. `market-regulation`.
    pub id: String,
    /// Official English name.
    pub name: String,
    /// Official Chinese name.
    pub name_zh: String,
}

/// One kind of record a department keeps about a subject.
#[derive(Clone)]
pub struct RecordType {
    /// Stable id, `^[a-z][a-z0-9_]*$`, unique across the catalog, e.g. `business_licence`.
    pub id: String,
    /// English name.
    pub name: String,
    /// Chinese name.
    pub name_zh: String,
    /// Id of the owning department.
    pub department: String,
    /// The kind of subject whose records these are.
    pub subject_kind: SubjectKind,
    /// How long a fetched record may be served from cache; never zero.
    pub freshness: Duration,
    /// Whether the gateway may cache records of this type at all (`"cache": false` in the
    /// catalog JSON opts a sensitive type out: every fetch then asks the department).
    pub cache: bool,
    /// On what terms the record is shared.
    pub sharing_class: SharingClass,
    /// Working days the owning department has to dispose an objection
    /// against one of these records (`objection_due_working_days`, default 5).
    pub objection_due_working_days: u32,
    /// JSON Schema (draft 2020-12) of one record.
    pub schema: Value,
    validator: Validator,
    /// `full`, the declared field views, `exists`, the declared predicates.
    views: Vec<View>,
}

impl RecordType {
    /// Checks `record` against the schema, formats included, and reports the first violation.
    pub fn validate(&self, record: &Value) -> Result<(), SchemaViolation> {
        self.validator
            .validate(record)
            .map_err(|error| SchemaViolation {
                path: error.instance_path().as_str().to_owned(),
                // Masked: the offending value may be personal data, and this
                // message reaches logs and callers.
                message: error.masked_with("value").to_string(),
            })
    }

    /// The one record check, shared by the gateway, the conformance kit and the demo
    /// data's tests: `bytes` parse as a JSON object, satisfy the schema (formats
    /// included), and name `subject` in the subject field (which every catalog schema
    /// requires). A record about somebody else never passes, whatever the schema says.
    pub fn check_record(&self, bytes: &[u8], subject: &str) -> Result<Value, RecordProblem> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| RecordProblem::NotJson(e.to_string()))?;
        if !value.is_object() {
            return Err(RecordProblem::NotAnObject);
        }
        self.validate(&value)
            .map_err(|violation| RecordProblem::Schema {
                record_type: self.id.clone(),
                violation,
            })?;
        let field = self.subject_kind.record_field();
        if value.get(field).and_then(Value::as_str) != Some(subject) {
            return Err(RecordProblem::OtherSubject { field });
        }
        Ok(value)
    }

    /// Whether `record` satisfies the schema; cheaper than [`RecordType::validate`] when the
    /// reason is not needed.
    pub fn is_valid(&self, record: &Value) -> bool {
        self.validator.is_valid(record)
    }

    /// Checks `value` against the schema of the top-level field `field` (formats
    /// included): what an objection's "value believed correct" must satisfy. The
    /// message never repeats the value.
    pub fn validate_field(&self, field: &str, value: &Value) -> Result<(), String> {
        let schema = self
            .schema
            .get("properties")
            .and_then(|p| p.get(field))
            .ok_or_else(|| format!("`{}` has no field `{field}`", self.id))?;
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(schema)
            .map_err(|e| format!("the schema of `{}.{field}` does not compile: {e}", self.id))?;
        validator
            .validate(value)
            .map_err(|e| format!("not a valid `{field}`: {}", e.masked_with("value")))
    }

    /// The views: `full` first, then the declared field views, then `exists` and the
    /// declared predicates.
    pub fn views(&self) -> &[View] {
        &self.views
    }

    /// The view with this name.
    pub fn view(&self, name: &str) -> Option<&View> {
        self.views.iter().find(|v| v.name == name)
    }
}

/// Why a record fails [`RecordType::check_record`]. Messages never repeat the
/// record's values (they may be personal data).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordProblem {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("not a JSON object")]
    NotAnObject,
    #[error("breaks the `{record_type}` schema: {violation}")]
    Schema {
        record_type: String,
        violation: SchemaViolation,
    },
    /// The subject field names another subject (or is missing).
    #[error("belongs to another subject (`{field}` is not the requested subject's)")]
    OtherSubject { field: &'static str },
}

impl fmt::Debug for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordType")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("name_zh", &self.name_zh)
            .field("department", &self.department)
            .field("subject_kind", &self.subject_kind)
            .field("freshness", &self.freshness)
            .field("cache", &self.cache)
            .field("sharing_class", &self.sharing_class)
            .field(
                "objection_due_working_days",
                &self.objection_due_working_days,
            )
            .field("schema", &self.schema)
            .field("views", &self.views)
            .finish_non_exhaustive()
    }
}

/// One catalog file as written on disk.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    department: Department,
    record_types: Vec<RecordTypeDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordTypeDoc {
    id: String,
    name: String,
    name_zh: String,
    subject_kind: SubjectKind,
    freshness_seconds: u64,
    /// Absent means cacheable.
    #[serde(default = "cacheable")]
    cache: bool,
    sharing_class: SharingClass,
    schema: Value,
    #[serde(default)]
    views: Vec<ViewDoc>,
    /// Absent means [`DEFAULT_OBJECTION_DUE_DAYS`].
    #[serde(default = "default_objection_due")]
    objection_due_working_days: u32,
}

fn cacheable() -> bool {
    true
}

/// Working days a department has to dispose an objection against a record,
/// unless the record type's `objection_due_working_days` says otherwise.
pub const DEFAULT_OBJECTION_DUE_DAYS: u32 = 5;

fn default_objection_due() -> u32 {
    DEFAULT_OBJECTION_DUE_DAYS
}

/// All departments and record types, validated and with compiled schemas. Immutable once
/// built; share it behind an `Arc`.
#[derive(Clone, Debug)]
pub struct Catalog {
    departments: Vec<Department>,
    record_types: Vec<RecordType>,
    /// Department id -> its index in `departments` and its record types' range in
    /// `record_types` (one file per department, so its types are contiguous).
    department_index: HashMap<String, (usize, Range<usize>)>,
    type_index: HashMap<String, usize>,
}

impl Catalog {
    /// Loads every `*.json` file of `dir` (not of its subdirectories), in file-name order.
    /// Errors name files by their path.
    pub fn load_dir(dir: &Path) -> Result<Catalog, CatalogError> {
        let read_dir_error = |source| CatalogError::ReadDir {
            dir: dir.to_owned(),
            source,
        };
        let mut paths = Vec::new();
        for entry in fs::read_dir(dir).map_err(read_dir_error)? {
            let path = entry.map_err(read_dir_error)?.path();
            if path.extension().is_some_and(|e| e == "json") && path.is_file() {
                paths.push(path);
            }
        }
        paths.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
        let mut files = Vec::with_capacity(paths.len());
        for path in paths {
            let label = path.display().to_string();
            let contents = fs::read_to_string(&path).map_err(|source| CatalogError::ReadFile {
                file: label.clone(),
                source,
            })?;
            files.push((label, contents));
        }
        Self::build(files)
    }

    /// Builds a catalog from `(file name, contents)` pairs, taken in file-name order.
    pub fn from_sources(files: &[(String, String)]) -> Result<Catalog, CatalogError> {
        let mut files: Vec<(String, String)> = files.to_vec();
        files.sort_by(|a, b| a.0.cmp(&b.0));
        Self::build(files)
    }

    /// The catalog of the repository's `records/` directory, embedded at build time.
    pub fn builtin() -> Result<Catalog, CatalogError> {
        Self::build(Self::builtin_files())
    }

    /// `(file name, contents)` of the embedded `records/*.json`, in file-name order.
    pub fn builtin_files() -> Vec<(String, String)> {
        let mut files: Vec<(String, String)> = BUILTIN
            .files()
            .filter(|f| f.path().extension().is_some_and(|e| e == "json"))
            .map(|f| {
                let name = f.path().display().to_string();
                let contents = String::from_utf8_lossy(f.contents()).into_owned();
                (name, contents)
            })
            .collect();
        files.sort_by(|a, b| a.0.cmp(&b.0));
        files
    }

    /// Builds from files already in catalog order.
    fn build(files: Vec<(String, String)>) -> Result<Catalog, CatalogError> {
        let options = jsonschema::options()
            .with_draft(Draft::Draft202012)
            .should_validate_formats(true)
            // A misspelt format would otherwise be ignored and never checked.
            .should_ignore_unknown_formats(false);
        let mut catalog = Catalog {
            departments: Vec::with_capacity(files.len()),
            record_types: Vec::new(),
            department_index: HashMap::new(),
            type_index: HashMap::new(),
        };
        // Which file defined each department and record type, for duplicate messages.
        let mut department_files: Vec<String> = Vec::with_capacity(files.len());
        for (file, contents) in files {
            let doc: FileDoc = parse(&file, &contents)?;
            let department = doc.department;
            check_department_id(&file, &department.id)?;
            if let Some((index, _)) = catalog.department_index.get(&department.id) {
                return Err(CatalogError::DuplicateDepartment {
                    id: department.id,
                    first_file: department_files.get(*index).cloned().unwrap_or_default(),
                    file,
                });
            }
            let first_type = catalog.record_types.len();
            for (position, doc) in doc.record_types.into_iter().enumerate() {
                let record_type = compile(&file, position + 1, &department.id, doc, &options)?;
                if let Some(&existing) = catalog.type_index.get(&record_type.id) {
                    let first_file = catalog
                        .record_types
                        .get(existing)
                        .and_then(|t| catalog.department_index.get(&t.department))
                        .and_then(|(index, _)| department_files.get(*index))
                        // Not yet indexed: the duplicate is inside the current file.
                        .unwrap_or(&file)
                        .clone();
                    return Err(CatalogError::DuplicateRecordType {
                        id: record_type.id,
                        first_file,
                        file,
                    });
                }
                catalog
                    .type_index
                    .insert(record_type.id.clone(), catalog.record_types.len());
                catalog.record_types.push(record_type);
            }
            let range = first_type..catalog.record_types.len();
            catalog
                .department_index
                .insert(department.id.clone(), (catalog.departments.len(), range));
            catalog.departments.push(department);
            department_files.push(file);
        }
        Ok(catalog)
    }

    /// The record type with this id.
    pub fn record_type(&self, id: &str) -> Option<&RecordType> {
        self.type_index
            .get(id)
            .and_then(|&i| self.record_types.get(i))
    }

    /// All record types: files in name order, each file's types in file order.
    pub fn record_types(&self) -> impl Iterator<Item = &RecordType> {
        self.record_types.iter()
    }

    /// The department with this id.
    pub fn department(&self, id: &str) -> Option<&Department> {
        self.department_index
            .get(id)
            .and_then(|(i, _)| self.departments.get(*i))
    }

    /// All departments, in file-name order.
    pub fn departments(&self) -> impl Iterator<Item = &Department> {
        self.departments.iter()
    }

    /// The record types of one department, in file order; none for an unknown department.
    pub fn types_of_department<'a>(
        &'a self,
        department: &'a str,
    ) -> impl Iterator<Item = &'a RecordType> + 'a {
        let range = self
            .department_index
            .get(department)
            .map_or(0..0, |(_, range)| range.clone());
        self.record_types.get(range).unwrap_or(&[]).iter()
    }

    /// Number of record types.
    pub fn len(&self) -> usize {
        self.record_types.len()
    }

    /// Whether the catalog has no record types.
    pub fn is_empty(&self) -> bool {
        self.record_types.is_empty()
    }
}

fn parse(file: &str, contents: &str) -> Result<FileDoc, CatalogError> {
    serde_json::from_str(contents).map_err(|error| {
        let (line, column) = (error.line(), error.column());
        let full = error.to_string();
        // serde_json appends the position; it is shown in front instead.
        let message = full
            .strip_suffix(&format!(" at line {line} column {column}"))
            .unwrap_or(&full)
            .to_owned();
        let file = file.to_owned();
        match error.classify() {
            serde_json::error::Category::Data => CatalogError::Structure {
                file,
                line,
                column,
                message,
            },
            _ => CatalogError::Syntax {
                file,
                line,
                column,
                message,
            },
        }
    })
}

fn check_department_id(file: &str, id: &str) -> Result<(), CatalogError> {
    if id.is_empty() {
        return Err(CatalogError::EmptyDepartmentId {
            file: file.to_owned(),
        });
    }
    if !is_id(id, b'-') {
        return Err(CatalogError::InvalidDepartmentId {
            file: file.to_owned(),
            id: id.to_owned(),
        });
    }
    Ok(())
}

/// Whether `id` matches `^[a-z][a-z0-9<separator>]*$`.
pub(crate) fn is_id(id: &str, separator: u8) -> bool {
    let mut bytes = id.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == separator)
}

fn compile(
    file: &str,
    position: usize,
    department: &str,
    doc: RecordTypeDoc,
    options: &jsonschema::ValidationOptions<'_>,
) -> Result<RecordType, CatalogError> {
    if doc.id.is_empty() {
        return Err(CatalogError::EmptyRecordTypeId {
            file: file.to_owned(),
            position,
        });
    }
    if !is_id(&doc.id, b'_') {
        return Err(CatalogError::InvalidRecordTypeId {
            file: file.to_owned(),
            id: doc.id,
        });
    }
    if doc.freshness_seconds == 0 {
        return Err(CatalogError::ZeroFreshness {
            file: file.to_owned(),
            record_type: doc.id,
        });
    }
    if doc.schema.get("type").and_then(Value::as_str) != Some("object") {
        return Err(CatalogError::SchemaNotObject {
            file: file.to_owned(),
            record_type: doc.id,
        });
    }
    let validator = options
        .build(&doc.schema)
        .map_err(|error| CatalogError::InvalidSchema {
            file: file.to_owned(),
            record_type: doc.id.clone(),
            reason: error.to_string(),
        })?;
    let field = doc.subject_kind.record_field();
    let required = doc
        .schema
        .get("required")
        .and_then(Value::as_array)
        .is_some_and(|r| r.iter().any(|f| f.as_str() == Some(field)));
    let string = doc
        .schema
        .pointer(&format!("/properties/{field}/type"))
        .and_then(Value::as_str)
        == Some("string");
    if !(required && string) {
        return Err(CatalogError::SubjectFieldNotRequired {
            file: file.to_owned(),
            record_type: doc.id,
            field,
        });
    }
    let properties: Vec<String> = doc
        .schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    let (full, exists) = views::implicit(&properties);
    let mut fields = vec![full];
    let mut predicates = vec![exists];
    for view in doc.views {
        let view =
            views::compile(view, &properties).map_err(|message| CatalogError::InvalidView {
                file: file.to_owned(),
                record_type: doc.id.clone(),
                message,
            })?;
        if fields
            .iter()
            .chain(&predicates)
            .any(|v| v.name == view.name)
        {
            return Err(CatalogError::InvalidView {
                file: file.to_owned(),
                record_type: doc.id,
                message: format!("view `{}` is declared twice", view.name),
            });
        }
        if view.is_predicate() {
            predicates.push(view);
        } else {
            fields.push(view);
        }
    }
    fields.extend(predicates);
    Ok(RecordType {
        id: doc.id,
        name: doc.name,
        name_zh: doc.name_zh,
        department: department.to_owned(),
        subject_kind: doc.subject_kind,
        freshness: Duration::from_secs(doc.freshness_seconds),
        cache: doc.cache,
        sharing_class: doc.sharing_class,
        objection_due_working_days: doc.objection_due_working_days,
        schema: doc.schema,
        validator,
        views: fields,
    })
}

#[cfg(test)]
mod tests;
