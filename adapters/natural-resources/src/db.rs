//! The bureau's database: one table per record type, named and laid out as
//! in the catalog. [`xgate_synth::store`] makes the SQL from these tables.

use xgate_synth::store::{Column, ColumnType, Table};

/// The department id in the catalog.
pub const DEPARTMENT: &str = "natural-resources";

pub const REAL_ESTATE_TITLE: &str = "real_estate_title";
pub const REAL_ESTATE_MORTGAGE_REGISTRATION: &str = "real_estate_mortgage_registration";
pub const STATE_LAND_USE_RIGHT: &str = "state_land_use_right";
pub const CONSTRUCTION_LAND_PLANNING_PERMIT: &str = "construction_land_planning_permit";
pub const MINING_LICENCE: &str = "mining_licence";

use ColumnType::{Date, Real, Text};

/// The tables, in catalog order.
pub static TABLES: &[Table] = &[
    Table {
        record_type: REAL_ESTATE_TITLE,
        subject: "id_number",
        columns: &[
            Column::new("certificate_no", Text),
            Column::new("unit_no", Text),
            Column::new("owner_name", Text),
            Column::new("id_number", Text),
            Column::new("address", Text),
            Column::new("city", Text),
            Column::new("district", Text),
            Column::new("area_m2", Real),
            Column::new("usage", Text),
            Column::new("ownership_type", Text),
            Column::new("property_nature", Text),
            Column::new("registration_date", Date),
        ],
    },
    Table {
        record_type: REAL_ESTATE_MORTGAGE_REGISTRATION,
        subject: "id_number",
        columns: &[
            Column::new("proof_no", Text),
            Column::new("id_number", Text),
            Column::new("mortgagor_name", Text),
            Column::new("mortgagee", Text),
            Column::new("property_certificate_no", Text),
            Column::new("secured_amount_cny", Real),
            Column::new("mortgage_type", Text),
            Column::new("term_start", Date),
            Column::new("term_end", Date),
            Column::new("registration_date", Date),
            Column::new("status", Text),
        ],
    },
    Table {
        record_type: STATE_LAND_USE_RIGHT,
        subject: "uscc",
        columns: &[
            Column::new("certificate_no", Text),
            Column::new("uscc", Text),
            Column::new("holder_name", Text),
            Column::new("unit_no", Text),
            Column::new("location", Text),
            Column::new("city", Text),
            Column::new("land_area_m2", Real),
            Column::new("land_use", Text),
            Column::new("acquisition_method", Text),
            Column::new("term_start", Date),
            Column::nullable("term_end", Date),
            Column::new("registration_date", Date),
        ],
    },
    Table {
        record_type: CONSTRUCTION_LAND_PLANNING_PERMIT,
        subject: "uscc",
        columns: &[
            Column::new("permit_no", Text),
            Column::new("uscc", Text),
            Column::new("holder_name", Text),
            Column::new("project_name", Text),
            Column::new("location", Text),
            Column::new("city", Text),
            Column::new("land_area_m2", Real),
            Column::new("land_use", Text),
            Column::new("issuing_authority", Text),
            Column::new("issue_date", Date),
        ],
    },
    Table {
        record_type: MINING_LICENCE,
        subject: "uscc",
        columns: &[
            Column::new("licence_no", Text),
            Column::new("uscc", Text),
            Column::new("holder_name", Text),
            Column::new("mine_name", Text),
            Column::new("mineral", Text),
            Column::new("mining_method", Text),
            Column::new("production_scale_kt_per_year", Real),
            Column::new("mining_area_km2", Real),
            Column::new("valid_from", Date),
            Column::new("valid_until", Date),
            Column::new("issuing_authority", Text),
        ],
    },
];
