//! Deterministic synthetic population (citizens and companies with valid ID
//! numbers) for seeding department databases.
//!
//! Every department adapter seeds its database from the same
//! [`Population`], drawing its own decisions from [`Rng::new`] salted with
//! `"<department>/<record type>"`, so the same people show up everywhere
//! with consistent names, ID numbers and addresses, and one department's
//! data never shifts when another's generator changes. [`store`] holds the
//! table-per-record-type SQL store the adapters share.

pub mod dates;
mod names;
mod population;
pub mod regions;
mod rng;
pub mod store;

pub use dates::REFERENCE_DATE;
pub use names::MINING_INDUSTRY;
pub use population::{
    Citizen, Company, DEFAULT_CITIZENS, DEFAULT_COMPANIES, GAPPY_CITIZEN, Gender, Population,
    SAMPLE_CITIZEN, SAMPLE_COMPANY, residential_address, street_address,
};
pub use rng::Rng;
