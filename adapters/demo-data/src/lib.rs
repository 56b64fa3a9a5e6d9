//! Synthetic databases of the seventeen departments served by the generic SQL adapter
//! (`xgate-adapter-sql`) in the demo: one [`DepartmentSpec`] per department (its tables and
//! its records about the shared synthetic population), and a mapping file per department
//! in `mappings/` that tells the SQL adapter how to read those tables.

use include_dir::{Dir, include_dir};
use xgate_synth::DepartmentSpec;

/// The `mappings/` folder, embedded so the demo can write it out anywhere.
static MAPPINGS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/mappings");

/// The SQL adapter's mapping file of a department (`mappings/<department>.toml`).
pub fn mapping(department: &str) -> Option<&'static str> {
    MAPPINGS
        .get_file(format!("{department}.toml"))
        .and_then(|f| f.contents_utf8())
}

pub mod agriculture_rural;
pub mod civil_affairs;
pub mod court;
pub mod disabled_persons_federation;
pub mod ecology_environment;
pub mod education;
pub mod emergency_management;
pub mod health;
pub mod housing_provident_fund;
pub mod housing_urban_rural;
pub mod human_resources_social_security;
mod issuing;
pub mod justice;
pub mod kin;
pub mod market_regulation;
pub mod medical_security;
pub mod transport;
pub mod veterans_affairs;
pub mod water_resources;

/// Every department, in catalog order.
pub static DEPARTMENTS: &[&DepartmentSpec] = &[
    &agriculture_rural::SPEC,
    &civil_affairs::SPEC,
    &court::SPEC,
    &disabled_persons_federation::SPEC,
    &ecology_environment::SPEC,
    &education::SPEC,
    &emergency_management::SPEC,
    &health::SPEC,
    &housing_provident_fund::SPEC,
    &housing_urban_rural::SPEC,
    &human_resources_social_security::SPEC,
    &justice::SPEC,
    &market_regulation::SPEC,
    &medical_security::SPEC,
    &transport::SPEC,
    &veterans_affairs::SPEC,
    &water_resources::SPEC,
];
