//! The bureau's database: one table per record type, named and laid out as
//! in the catalog. [`xgate_synth::store`] makes the SQL from these tables.

use xgate_synth::store::{Column, ColumnType, Table};

/// The department id in the catalog.
pub const DEPARTMENT: &str = "public-security";

pub const RESIDENT_IDENTITY_CARD: &str = "resident_identity_card";
pub const HOUSEHOLD_REGISTRATION: &str = "household_registration";
pub const RESIDENCE_PERMIT: &str = "residence_permit";
pub const NO_CRIMINAL_RECORD_CERTIFICATE: &str = "no_criminal_record_certificate";
pub const MOTOR_VEHICLE_REGISTRATION: &str = "motor_vehicle_registration";
pub const DRIVING_LICENCE: &str = "driving_licence";
pub const EXIT_ENTRY_RECORD: &str = "exit_entry_record";

use ColumnType::{Boolean, Date, Integer, Text};

/// The tables, in catalog order.
pub static TABLES: &[Table] = &[
    Table {
        record_type: RESIDENT_IDENTITY_CARD,
        subject: "id_number",
        columns: &[
            Column::new("id_number", Text),
            Column::new("name", Text),
            Column::new("gender", Text),
            Column::new("ethnicity", Text),
            Column::new("birth_date", Date),
            Column::new("address", Text),
            Column::new("issuing_authority", Text),
            Column::new("valid_from", Date),
            Column::nullable("valid_until", Date),
        ],
    },
    Table {
        record_type: HOUSEHOLD_REGISTRATION,
        subject: "id_number",
        columns: &[
            Column::new("id_number", Text),
            Column::new("name", Text),
            Column::new("household_no", Text),
            Column::new("household_type", Text),
            Column::new("relationship_to_head", Text),
            Column::nullable("father_id_number", Text),
            Column::nullable("mother_id_number", Text),
            Column::nullable("guardian_id_number", Text),
            Column::new("registered_address", Text),
            Column::new("native_place", Text),
            Column::new("police_station", Text),
            Column::new("registration_date", Date),
            Column::new("status", Text),
        ],
    },
    Table {
        record_type: RESIDENCE_PERMIT,
        subject: "id_number",
        columns: &[
            Column::new("id_number", Text),
            Column::new("name", Text),
            Column::new("permit_no", Text),
            Column::new("residence_address", Text),
            Column::new("residence_city", Text),
            Column::new("issuing_authority", Text),
            Column::new("valid_from", Date),
            Column::new("valid_until", Date),
            Column::new("status", Text),
        ],
    },
    Table {
        record_type: NO_CRIMINAL_RECORD_CERTIFICATE,
        subject: "id_number",
        columns: &[
            Column::new("certificate_no", Text),
            Column::new("id_number", Text),
            Column::new("name", Text),
            Column::new("has_criminal_record", Boolean),
            Column::new("purpose", Text),
            Column::new("issuing_authority", Text),
            Column::new("issue_date", Date),
            Column::new("valid_until", Date),
        ],
    },
    Table {
        record_type: MOTOR_VEHICLE_REGISTRATION,
        subject: "id_number",
        columns: &[
            Column::new("id_number", Text),
            Column::new("owner_name", Text),
            Column::new("certificate_no", Text),
            Column::new("plate_number", Text),
            Column::new("vehicle_type", Text),
            Column::new("brand_model", Text),
            Column::new("vin", Text),
            Column::new("color", Text),
            Column::new("fuel_type", Text),
            Column::new("registration_date", Date),
            Column::new("status", Text),
        ],
    },
    Table {
        record_type: DRIVING_LICENCE,
        subject: "id_number",
        columns: &[
            Column::new("id_number", Text),
            Column::new("name", Text),
            Column::new("file_no", Text),
            Column::new("licence_class", Text),
            Column::new("first_issue_date", Date),
            Column::new("valid_from", Date),
            Column::nullable("valid_until", Date),
            Column::new("issuing_authority", Text),
            Column::new("penalty_points", Integer),
            Column::new("status", Text),
        ],
    },
    Table {
        record_type: EXIT_ENTRY_RECORD,
        subject: "id_number",
        columns: &[
            Column::new("id_number", Text),
            Column::new("name", Text),
            Column::new("direction", Text),
            Column::new("crossing_date", Date),
            Column::new("port", Text),
            Column::new("country_or_region", Text),
            Column::new("document_type", Text),
            Column::new("document_no", Text),
            Column::new("flight_or_vehicle", Text),
        ],
    },
];
