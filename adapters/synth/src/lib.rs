//! Deterministic synthetic population (citizens and companies with valid ID
//! numbers) for seeding department databases, and everything else the
//! synthetic department adapters share.
//!
//! Every department adapter seeds its database from the same
//! [`Population`], drawing its own decisions from [`Rng::new`] salted with
//! `"<department>/<record type>"` (what [`Person::rng`] and [`Firm::rng`]
//! give), so the same people show up everywhere with consistent names, ID
//! numbers and addresses, and one department's data never shifts when
//! another's generator changes.
//!
//! An adapter is then only its tables and its record generator, a
//! [`DepartmentSpec`]: [`store`] holds the table-per-record-type SQL store,
//! [`TableDepartment`] serves it through the adapter SDK (screening batches
//! with one `IN (...)` query per few hundred subjects), [`cli`] is the
//! `seed` / `serve` command line, and `testing` (feature `testing`) the
//! checks every department's tests run.

pub mod cli;
pub mod dates;
mod department;
pub mod family;
mod names;
mod population;
mod records;
pub mod regions;
mod rng;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use dates::REFERENCE_DATE;
pub use department::{DepartmentSpec, TableDepartment};
pub use names::MINING_INDUSTRY;
pub use population::{
    Citizen, Company, DEFAULT_CITIZENS, DEFAULT_COMPANIES, GAPPY_CITIZEN, Gender, Population,
    SAMPLE_CITIZEN, SAMPLE_COMPANY, residential_address, street_address,
};
pub use records::{Firm, Person, Records, round2, tagged};
pub use rng::Rng;
