//! The checks every synthetic department passes, for the adapters' tests
//! (feature `testing`, for dev-dependencies only).
//!
//! `xgate_synth::department_tests!(SPEC);` in an adapter's test module runs
//! each check as a test of that module; [`Seeded`] and [`person`] /
//! [`company`] serve the department's own tests. A check returns `Err` when
//! the database or catalog fails and panics, as assertions do, when the
//! department does not do what it should.

use std::collections::{HashMap, HashSet};

use anyhow::Context;
use serde_json::Value;
use tempfile::TempDir;
use xgate_adapter_sdk::{AdapterService, Department, Subject};
use xgate_catalog::ids::{resident_id_check_char, uscc_check_char};
use xgate_catalog::{Catalog, RecordType, SubjectKind};

use crate::department::{DepartmentSpec, TableDepartment};
use crate::population::{
    Citizen, Company, GAPPY_CITIZEN, Population, SAMPLE_CITIZEN, SAMPLE_COMPANY,
};
use crate::store::{SeedReport, Table};

/// What a check returns.
pub type Outcome = anyhow::Result<()>;

/// A department seeded into a temporary file (removed on drop) and opened,
/// with the population it was seeded from.
#[derive(Debug)]
pub struct Seeded {
    pub department: TableDepartment,
    pub population: Population,
    pub report: SeedReport,
    _dir: TempDir,
}

impl Seeded {
    /// Seeds `spec`'s database from `citizens` and `companies` and opens it.
    pub async fn new(spec: &DepartmentSpec, citizens: u32, companies: u32) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join(format!("{}.db", spec.id));
        let report = spec.seed(&path, citizens, companies).await?;
        Ok(Seeded {
            department: spec.open(&path).await?,
            population: Population::generate(citizens, companies),
            report,
            _dir: dir,
        })
    }

    /// The citizen who holds every personal record type.
    pub fn sample_citizen(&self) -> anyhow::Result<&Citizen> {
        self.citizen(SAMPLE_CITIZEN)
    }

    /// The citizen with gaps.
    pub fn gappy_citizen(&self) -> anyhow::Result<&Citizen> {
        self.citizen(GAPPY_CITIZEN)
    }

    /// The company that holds every company record type.
    pub fn sample_company(&self) -> anyhow::Result<&Company> {
        usize::try_from(SAMPLE_COMPANY)
            .ok()
            .and_then(|i| self.population.companies.get(i))
            .context("the population has no sample company")
    }

    fn citizen(&self, index: u32) -> anyhow::Result<&Citizen> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.population.citizens.get(i))
            .with_context(|| format!("the population has no citizen {index}"))
    }

    /// The records of `record_type` about `subject`, as the SDK would serve them.
    pub async fn lookup(&self, subject: &Subject, record_type: &str) -> anyhow::Result<Vec<Value>> {
        Ok(self.department.lookup(subject, record_type).await?)
    }

    /// Every record of `record_type`, in insertion order.
    pub async fn all(&self, record_type: &str) -> anyhow::Result<Vec<Value>> {
        Ok(self.department.store().all_records(record_type).await?)
    }
}

/// A citizen as a subject.
pub fn person(id_number: &str) -> Subject {
    Subject {
        kind: SubjectKind::ResidentId,
        id: id_number.to_owned(),
    }
}

/// A company as a subject.
pub fn company(uscc: &str) -> Subject {
    Subject {
        kind: SubjectKind::Uscc,
        id: uscc.to_owned(),
    }
}

/// How many subjects the records are about: distinct values of `field`
/// (`id_number`, `uscc`).
pub fn holders(records: &[Value], field: &str) -> usize {
    records
        .iter()
        .map(|r| r[field].to_string())
        .collect::<HashSet<_>>()
        .len()
}

/// The kind of subject a table is looked up by.
fn kind_of(table: &Table) -> SubjectKind {
    if table.subject == SubjectKind::Uscc.record_field() {
        SubjectKind::Uscc
    } else {
        SubjectKind::ResidentId
    }
}

fn catalog_type<'a>(catalog: &'a Catalog, table: &Table) -> anyhow::Result<&'a RecordType> {
    catalog
        .record_type(table.record_type)
        .with_context(|| format!("`{}` is not in the catalog", table.record_type))
}

/// The tables are the department's record types in the catalog, in its
/// order, each keyed by the type's subject and with exactly its schema's
/// fields.
pub fn tables_match_the_catalog(spec: &DepartmentSpec) -> Outcome {
    let catalog = Catalog::builtin()?;
    catalog
        .department(spec.id)
        .with_context(|| format!("department `{}` is not in the catalog", spec.id))?;
    let types: Vec<&RecordType> = catalog.types_of_department(spec.id).collect();
    assert_eq!(
        types.len(),
        spec.tables.len(),
        "record types of `{}`",
        spec.id
    );
    for (record_type, table) in types.iter().zip(spec.tables) {
        assert_eq!(record_type.id, table.record_type);
        assert_eq!(
            record_type.subject_kind.record_field(),
            table.subject,
            "subject of `{}`",
            table.record_type
        );
        table.check_schema(&record_type.schema)?;
    }
    Ok(())
}

/// The department serves exactly its catalog types, and the SDK accepts it.
pub async fn serves_exactly_the_catalog_types(spec: &DepartmentSpec) -> Outcome {
    let seeded = Seeded::new(spec, 5, 2).await?;
    let catalog = Catalog::builtin()?;
    let expected: Vec<String> = catalog
        .types_of_department(spec.id)
        .map(|t| t.id.clone())
        .collect();
    assert_eq!(seeded.department.department(), spec.id);
    assert_eq!(seeded.department.record_types(), expected);
    // Every type must be in the catalog under this department.
    AdapterService::new(seeded.department, &catalog)?;
    Ok(())
}

/// The same population always seeds the same rows.
pub async fn seeding_is_deterministic(spec: &DepartmentSpec) -> Outcome {
    let first = Seeded::new(spec, 60, 20).await?;
    let second = Seeded::new(spec, 60, 20).await?;
    assert_eq!(first.report, second.report);
    assert_eq!(first.report.counts.len(), spec.tables.len());
    for table in spec.tables {
        let rows = first.all(table.record_type).await?;
        assert_eq!(
            rows,
            second.all(table.record_type).await?,
            "{}",
            table.record_type
        );
    }
    Ok(())
}

/// Every table of the default population has records, all valid against
/// their catalog schema.
pub async fn every_record_of_the_default_population_validates(spec: &DepartmentSpec) -> Outcome {
    let seeded = Seeded::new(spec, 1000, 200).await?;
    let catalog = Catalog::builtin()?;
    for table in spec.tables {
        let record_type = catalog_type(&catalog, table)?;
        let records = seeded.all(table.record_type).await?;
        assert!(!records.is_empty(), "no `{}` at all", table.record_type);
        for record in &records {
            if let Err(violation) = record_type.validate(record) {
                anyhow::bail!("{}: {violation:?} in {record}", table.record_type);
            }
        }
    }
    Ok(())
}

/// The sample citizen holds every personal type and the sample company
/// every company type, each record theirs and valid.
pub async fn the_sample_subjects_hold_every_type(spec: &DepartmentSpec) -> Outcome {
    let seeded = Seeded::new(spec, 20, 5).await?;
    let catalog = Catalog::builtin()?;
    let citizen = seeded.sample_citizen()?;
    let firm = seeded.sample_company()?;
    for table in spec.tables {
        let subject = match kind_of(table) {
            SubjectKind::ResidentId => person(&citizen.id_number),
            SubjectKind::Uscc => company(&firm.uscc),
        };
        let records = seeded.lookup(&subject, table.record_type).await?;
        assert!(!records.is_empty(), "no `{}`", table.record_type);
        let record_type = catalog_type(&catalog, table)?;
        for record in &records {
            assert_eq!(record[table.subject], subject.id.as_str());
            if let Err(violation) = record_type.validate(record) {
                anyhow::bail!("{}: {violation:?} in {record}", table.record_type);
            }
        }
    }
    Ok(())
}

/// Valid numbers of no synthetic subject, and strings made to break out of a
/// query, find nothing, and change nothing.
pub async fn unknown_and_hostile_subjects_find_nothing(spec: &DepartmentSpec) -> Outcome {
    let seeded = Seeded::new(spec, 20, 5).await?;
    let mut rows = HashMap::new();
    for table in spec.tables {
        rows.insert(
            table.record_type,
            seeded.all(table.record_type).await?.len(),
        );
    }
    // Valid Beijing numbers: every synthetic subject is registered in Anhui.
    let body = "11010519900307001";
    let stranger = format!("{body}{}", resident_id_check_char(body).context("check")?);
    let body = "91110105MA0123456";
    let stranger_company = format!("{body}{}", uscc_check_char(body).context("check")?);
    for table in spec.tables {
        let kind = kind_of(table);
        let stranger = match kind {
            SubjectKind::ResidentId => stranger.clone(),
            SubjectKind::Uscc => stranger_company.clone(),
        };
        let ids = [
            stranger,
            "' OR 1=1 --".to_owned(),
            "\" OR \"\"=\"".to_owned(),
            format!("1; DROP TABLE {}", table.record_type),
            format!("x' UNION SELECT * FROM {} --", table.record_type),
        ];
        for id in ids {
            let subject = Subject { kind, id };
            let records = seeded.lookup(&subject, table.record_type).await?;
            assert!(records.is_empty(), "{} {}", subject.id, table.record_type);
        }
    }
    for table in spec.tables {
        let now = seeded.all(table.record_type).await?.len();
        assert_eq!(
            Some(&now),
            rows.get(table.record_type),
            "{}",
            table.record_type
        );
    }
    Ok(())
}

/// A screening batch (every subject of a population, strangers and repeats
/// among them, more than the SDK's chunk) gets, per subject, exactly what
/// single lookups give.
pub async fn batch_lookups_are_single_lookups(spec: &DepartmentSpec) -> Outcome {
    let seeded = Seeded::new(spec, 300, 60).await?;
    let body = "11010519900307001";
    let stranger = person(&format!(
        "{body}{}",
        resident_id_check_char(body).context("check")?
    ));
    let body = "91110105MA0123456";
    let stranger_company = company(&format!(
        "{body}{}",
        uscc_check_char(body).context("check")?
    ));
    for table in spec.tables {
        let mut subjects: Vec<Subject> = match kind_of(table) {
            SubjectKind::ResidentId => {
                let mut all: Vec<Subject> = seeded
                    .population
                    .citizens
                    .iter()
                    .map(|c| person(&c.id_number))
                    .collect();
                all.push(stranger.clone());
                all
            }
            SubjectKind::Uscc => {
                let mut all: Vec<Subject> = seeded
                    .population
                    .companies
                    .iter()
                    .map(|c| company(&c.uscc))
                    .collect();
                all.push(stranger_company.clone());
                all
            }
        };
        subjects.extend_from_within(..3);
        let batch = seeded
            .department
            .lookup_batch(&subjects, table.record_type)
            .await;
        assert_eq!(batch.len(), subjects.len(), "{}", table.record_type);
        let mut found = 0;
        for (subject, result) in subjects.iter().zip(batch) {
            let single = seeded.lookup(subject, table.record_type).await?;
            let result = result?;
            found += usize::from(!result.is_empty());
            assert_eq!(result, single, "{} of {}", table.record_type, subject.id);
        }
        assert!(found > 0, "no `{}` in the batch", table.record_type);
    }
    Ok(())
}

/// Runs each check of [`testing`](crate::testing) on a department as a test
/// of the calling module, under the check's name:
/// `xgate_synth::department_tests!(crate::TAX);`. Needs `tokio` (`macros`,
/// `rt-multi-thread`) in the calling crate.
#[macro_export]
macro_rules! department_tests {
    ($spec:expr) => {
        #[test]
        fn tables_match_the_catalog() -> $crate::testing::Outcome {
            $crate::testing::tables_match_the_catalog(&$spec)
        }

        #[tokio::test]
        async fn serves_exactly_the_catalog_types() -> $crate::testing::Outcome {
            $crate::testing::serves_exactly_the_catalog_types(&$spec).await
        }

        #[tokio::test]
        async fn seeding_is_deterministic() -> $crate::testing::Outcome {
            $crate::testing::seeding_is_deterministic(&$spec).await
        }

        #[tokio::test]
        async fn every_record_of_the_default_population_validates() -> $crate::testing::Outcome {
            $crate::testing::every_record_of_the_default_population_validates(&$spec).await
        }

        #[tokio::test]
        async fn the_sample_subjects_hold_every_type() -> $crate::testing::Outcome {
            $crate::testing::the_sample_subjects_hold_every_type(&$spec).await
        }

        #[tokio::test]
        async fn unknown_and_hostile_subjects_find_nothing() -> $crate::testing::Outcome {
            $crate::testing::unknown_and_hostile_subjects_find_nothing(&$spec).await
        }

        #[tokio::test]
        async fn batch_lookups_are_single_lookups() -> $crate::testing::Outcome {
            $crate::testing::batch_lookups_are_single_lookups(&$spec).await
        }
    };
}
