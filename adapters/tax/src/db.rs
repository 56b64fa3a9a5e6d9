//! The bureau's database: one table per record type, named and laid out as
//! in the catalog. [`xgate_synth::store`] makes the SQL from these tables.

use xgate_synth::store::{Column, ColumnType, Table};

/// The department id in the catalog.
pub const DEPARTMENT: &str = "tax";

pub const TAX_PAYMENT_CERTIFICATE: &str = "tax_payment_certificate";
pub const TAX_REGISTRATION: &str = "tax_registration";
pub const INDIVIDUAL_INCOME_TAX_RECORD: &str = "individual_income_tax_record";
pub const VAT_EXEMPTION_STATUS: &str = "vat_exemption_status";
pub const TAXPAYER_CREDIT_RATING: &str = "taxpayer_credit_rating";
pub const NO_TAX_ARREARS_CERTIFICATE: &str = "no_tax_arrears_certificate";

use ColumnType::{Boolean, Date, Integer, Real, Text};

/// The tables, in catalog order.
pub static TABLES: &[Table] = &[
    Table {
        record_type: TAX_PAYMENT_CERTIFICATE,
        subject: "id_number",
        columns: &[
            Column::new("certificate_no", Text),
            Column::new("id_number", Text),
            Column::new("taxpayer_name", Text),
            Column::new("tax_type", Text),
            Column::new("tax_period_start", Date),
            Column::new("tax_period_end", Date),
            Column::new("amount_cny", Real),
            Column::new("payment_date", Date),
            Column::new("tax_authority", Text),
            Column::new("issue_date", Date),
        ],
    },
    Table {
        record_type: TAX_REGISTRATION,
        subject: "uscc",
        columns: &[
            Column::new("uscc", Text),
            Column::new("taxpayer_name", Text),
            Column::new("taxpayer_type", Text),
            Column::new("legal_representative", Text),
            Column::new("registered_address", Text),
            Column::new("industry", Text),
            Column::new("tax_authority", Text),
            Column::new("registration_date", Date),
            Column::new("status", Text),
        ],
    },
    Table {
        record_type: INDIVIDUAL_INCOME_TAX_RECORD,
        subject: "id_number",
        columns: &[
            Column::new("id_number", Text),
            Column::new("name", Text),
            Column::new("period", Text),
            Column::new("income_type", Text),
            Column::new("withholding_agent", Text),
            Column::new("withholding_agent_uscc", Text),
            Column::new("gross_income_cny", Real),
            Column::new("taxable_income_cny", Real),
            Column::new("tax_paid_cny", Real),
            Column::new("declaration_date", Date),
            Column::new("tax_authority", Text),
        ],
    },
    Table {
        record_type: VAT_EXEMPTION_STATUS,
        subject: "uscc",
        columns: &[
            Column::new("filing_no", Text),
            Column::new("uscc", Text),
            Column::new("taxpayer_name", Text),
            Column::new("exemption_code", Text),
            Column::new("exemption_item", Text),
            Column::new("policy_basis", Text),
            Column::new("valid_from", Date),
            Column::new("valid_until", Date),
            Column::new("status", Text),
        ],
    },
    Table {
        record_type: TAXPAYER_CREDIT_RATING,
        subject: "uscc",
        columns: &[
            Column::new("uscc", Text),
            Column::new("taxpayer_name", Text),
            Column::new("year", Integer),
            Column::new("rating", Text),
            Column::new("score", Real),
            Column::new("evaluation_date", Date),
            Column::new("tax_authority", Text),
        ],
    },
    Table {
        record_type: NO_TAX_ARREARS_CERTIFICATE,
        subject: "id_number",
        columns: &[
            Column::new("certificate_no", Text),
            Column::new("id_number", Text),
            Column::new("taxpayer_name", Text),
            Column::new("has_arrears", Boolean),
            Column::new("outstanding_amount_cny", Real),
            Column::new("tax_authority", Text),
            Column::new("issue_date", Date),
        ],
    },
];
