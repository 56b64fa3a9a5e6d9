//! A synthetic department: its tables and record generator ([`DepartmentSpec`])
//! and, once seeded, the [`Department`] the adapter SDK serves
//! ([`TableDepartment`]): a lookup in the table of the asked record type, and
//! for screening batches one `IN (...)` query per few hundred subjects.

use std::path::Path;
use std::pin::Pin;

use serde_json::Value;
use xgate_adapter_sdk::{Department, LookupError, Subject};
use xgate_catalog::SubjectKind;

use crate::population::Population;
use crate::records::Records;
use crate::store::{self, SeedReport, Store, StoreError, Table};

/// What sets one synthetic department apart: everything else about its
/// adapter (database, lookups, command line) is shared.
#[derive(Debug)]
pub struct DepartmentSpec {
    /// The department id in the catalog, e.g. `tax`.
    pub id: &'static str,
    /// The department's name for people, e.g. `Taxation Bureau (税务局)`.
    pub name: &'static str,
    /// One table per record type, in catalog order.
    pub tables: &'static [Table],
    /// Every record the department holds about a population.
    pub generate: fn(&Population) -> Records,
}

impl DepartmentSpec {
    /// Creates the database at `path` (replacing any file there) from a
    /// population of `citizens` and `companies`.
    ///
    /// Boxed so the seeding (sqlx over SQLite) compiles once, here, not again
    /// in each binary that awaits it.
    #[inline(never)]
    pub fn seed<'a>(
        &'a self,
        path: &'a Path,
        citizens: u32,
        companies: u32,
    ) -> Pin<Box<dyn Future<Output = Result<SeedReport, StoreError>> + Send + 'a>> {
        Box::pin(self.seed_now(path, citizens, companies))
    }

    async fn seed_now(
        &self,
        path: &Path,
        citizens: u32,
        companies: u32,
    ) -> Result<SeedReport, StoreError> {
        let population = Population::generate(citizens, companies);
        store::seed(path, self.tables, (self.generate)(&population)).await
    }

    /// Opens the seeded database at `path` read-only.
    pub async fn open(&self, path: &Path) -> Result<TableDepartment, StoreError> {
        Ok(TableDepartment {
            department: self.id,
            store: Store::open_read_only(path, self.tables).await?,
            samples: sample_subjects(),
        })
    }
}

/// A department served from its seeded database, opened read-only.
#[derive(Clone, Debug)]
pub struct TableDepartment {
    department: &'static str,
    store: Store,
    /// The population's sample citizen and company, named in `Describe`.
    samples: Vec<Subject>,
}

/// [`crate::SAMPLE_CITIZEN`] and [`crate::SAMPLE_COMPANY`]: between them they
/// hold a record of every type (the first people of any population are the
/// same, so a tiny population names them).
fn sample_subjects() -> Vec<Subject> {
    let population = Population::generate(crate::SAMPLE_CITIZEN + 1, crate::SAMPLE_COMPANY + 1);
    let citizen = population
        .citizens
        .get(crate::SAMPLE_CITIZEN as usize)
        .map(|c| Subject {
            kind: SubjectKind::ResidentId,
            id: c.id_number.clone(),
        });
    let company = population
        .companies
        .get(crate::SAMPLE_COMPANY as usize)
        .map(|c| Subject {
            kind: SubjectKind::Uscc,
            id: c.uscc.clone(),
        });
    citizen.into_iter().chain(company).collect()
}

impl TableDepartment {
    /// The database, for reading whole tables.
    pub fn store(&self) -> &Store {
        &self.store
    }
}

impl Department for TableDepartment {
    fn department(&self) -> &str {
        self.department
    }

    fn record_types(&self) -> Vec<String> {
        self.store.record_types()
    }

    fn sample_subjects(&self) -> Vec<Subject> {
        self.samples.clone()
    }

    async fn lookup(
        &self,
        subject: &Subject,
        record_type: &str,
    ) -> Result<Vec<Value>, LookupError> {
        self.store
            .lookup(record_type, &subject.id)
            .await
            .map_err(|e| LookupError::Backend(e.to_string()))
    }

    /// One `IN (...)` query per few hundred subjects instead of one query
    /// each ([`Store::lookup_many`]); each result is what `lookup` gives.
    async fn lookup_batch(
        &self,
        subjects: &[Subject],
        record_type: &str,
    ) -> Vec<Result<Vec<Value>, LookupError>> {
        let ids: Vec<&str> = subjects.iter().map(|s| s.id.as_str()).collect();
        match self.store.lookup_many(record_type, &ids).await {
            Ok(results) => results
                .into_iter()
                .map(|r| r.map_err(|e| LookupError::Backend(e.to_string())))
                .collect(),
            Err(e) => {
                let error = e.to_string();
                subjects
                    .iter()
                    .map(|_| Err(LookupError::Backend(error.clone())))
                    .collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use xgate_catalog::SubjectKind;

    use super::*;
    use crate::store::{Column, ColumnType};

    static TABLES: &[Table] = &[
        Table {
            record_type: "pet_licence",
            subject: "id_number",
            columns: &[
                Column::new("id_number", ColumnType::Text),
                Column::new("name", ColumnType::Text),
            ],
        },
        Table {
            record_type: "kennel_permit",
            subject: "uscc",
            columns: &[
                Column::new("uscc", ColumnType::Text),
                Column::new("places", ColumnType::Integer),
            ],
        },
    ];

    /// A licence per citizen named after its owner, a permit per company.
    fn generate(population: &Population) -> Records {
        let licences = population.citizens.iter().map(|c| {
            let record = json!({"id_number": c.id_number, "name": c.name});
            ("pet_licence", record)
        });
        let permits = population.companies.iter().map(|c| {
            let record = json!({"uscc": c.uscc, "places": c.index});
            ("kennel_permit", record)
        });
        licences.chain(permits).collect()
    }

    static PETS: DepartmentSpec = DepartmentSpec {
        id: "pets",
        name: "Pets Bureau",
        tables: TABLES,
        generate,
    };

    fn subject(kind: SubjectKind, id: &str) -> Subject {
        Subject {
            kind,
            id: id.to_owned(),
        }
    }

    #[test]
    fn names_the_sample_citizen_and_company() {
        let population = Population::generate(1, 1);
        let samples = sample_subjects();
        assert_eq!(
            samples,
            vec![
                subject(SubjectKind::ResidentId, &population.citizens[0].id_number),
                subject(SubjectKind::Uscc, &population.companies[0].uscc),
            ]
        );
    }

    #[tokio::test]
    async fn serves_the_seeded_tables() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pets.db");
        let report = PETS.seed(&path, 3, 2).await.unwrap();
        assert_eq!(
            report.counts,
            vec![("pet_licence", 3), ("kennel_permit", 2)]
        );

        let department = PETS.open(&path).await.unwrap();
        assert_eq!(department.department(), "pets");
        assert_eq!(
            department.record_types(),
            vec!["pet_licence", "kennel_permit"]
        );
        let population = Population::generate(3, 2);
        let owner = &population.citizens[1];
        let licences = department
            .lookup(
                &subject(SubjectKind::ResidentId, &owner.id_number),
                "pet_licence",
            )
            .await
            .unwrap();
        assert_eq!(
            licences,
            vec![json!({"id_number": owner.id_number, "name": owner.name})]
        );
        let kennel = &population.companies[1];
        let permits = department
            .lookup(&subject(SubjectKind::Uscc, &kennel.uscc), "kennel_permit")
            .await
            .unwrap();
        assert_eq!(permits, vec![json!({"uscc": kennel.uscc, "places": 1})]);
        assert_eq!(
            department
                .store()
                .all_records("pet_licence")
                .await
                .unwrap()
                .len(),
            3
        );
    }

    #[tokio::test]
    async fn a_batch_is_answered_as_the_single_lookups_are() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pets.db");
        PETS.seed(&path, 700, 3).await.unwrap();
        let department = PETS.open(&path).await.unwrap();
        let population = Population::generate(800, 3);
        // Seeded citizens, 100 unknown ones, and repeats.
        let mut subjects: Vec<Subject> = population
            .citizens
            .iter()
            .map(|c| subject(SubjectKind::ResidentId, &c.id_number))
            .collect();
        subjects.extend_from_within(..5);
        let batch = department.lookup_batch(&subjects, "pet_licence").await;
        assert_eq!(batch.len(), subjects.len());
        let mut found = 0;
        for (subject, result) in subjects.iter().zip(batch) {
            let single = department.lookup(subject, "pet_licence").await.unwrap();
            let result = result.unwrap();
            found += usize::from(!result.is_empty());
            assert_eq!(result, single, "{}", subject.id);
        }
        assert_eq!(found, 705);
        // A type with no table fails every subject, as it fails one.
        let batch = department.lookup_batch(&subjects[..2], "dog_licence").await;
        for result in batch {
            assert_eq!(
                result.unwrap_err().to_string(),
                "department backend failed: no table for record type `dog_licence`"
            );
        }
    }

    #[tokio::test]
    async fn store_failures_are_backend_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pets.db");
        assert!(matches!(
            PETS.open(&path).await,
            Err(StoreError::Missing { .. })
        ));
        PETS.seed(&path, 1, 0).await.unwrap();
        let department = PETS.open(&path).await.unwrap();
        let err = department
            .lookup(&subject(SubjectKind::ResidentId, "x"), "dog_licence")
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "department backend failed: no table for record type `dog_licence`"
        );
    }
}
