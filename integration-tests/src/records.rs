//! Sample records for fixture adapters: valid against the catalog once the subject's number
//! replaces [`SUBJECT`].

use serde_json::{Value, json};

/// Stands for the looked-up subject's ID number in a fixture record; fixtures replace every
/// top-level string value equal to it.
pub const SUBJECT: &str = "$SUBJECT";

/// A valid `tax_payment_certificate`.
pub fn tax_payment_certificate() -> Value {
    json!({
        "certificate_no": "334160000000012345",
        "id_number": SUBJECT,
        "taxpayer_name": "张伟",
        "tax_type": "individual_income_tax",
        "tax_period_start": "2025-01-01",
        "tax_period_end": "2025-12-31",
        "amount_cny": 1234.5,
        "payment_date": "2026-01-15",
        "tax_authority": "国家税务总局亳州市谯城区税务局",
        "issue_date": "2026-02-01"
    })
}

/// A valid `individual_income_tax_record`.
pub fn individual_income_tax_record() -> Value {
    json!({
        "id_number": SUBJECT,
        "name": "张伟",
        "period": "2025-12",
        "income_type": "wages_and_salaries",
        "withholding_agent": "亳州市示例科技有限公司",
        "withholding_agent_uscc": "91341600MA2N000001",
        "gross_income_cny": 12000,
        "taxable_income_cny": 7000,
        "tax_paid_cny": 210,
        "declaration_date": "2026-01-10",
        "tax_authority": "国家税务总局亳州市谯城区税务局"
    })
}

/// A valid `no_tax_arrears_certificate`.
pub fn no_tax_arrears_certificate() -> Value {
    json!({
        "certificate_no": "334160000000067890",
        "id_number": SUBJECT,
        "taxpayer_name": "张伟",
        "has_arrears": false,
        "outstanding_amount_cny": 0,
        "tax_authority": "国家税务总局亳州市谯城区税务局",
        "issue_date": "2026-02-01"
    })
}

/// The personal record types of the tax department, each with one valid record.
pub fn personal_tax_records() -> Vec<(&'static str, Value)> {
    vec![
        ("tax_payment_certificate", tax_payment_certificate()),
        (
            "individual_income_tax_record",
            individual_income_tax_record(),
        ),
        ("no_tax_arrears_certificate", no_tax_arrears_certificate()),
    ]
}

/// A driving licence of subject `id` that the catalog schema accepts.
pub fn driving_licence(id: &str) -> Value {
    serde_json::json!({
        "id_number": id,
        "name": "张海燕",
        "file_no": "341600123456",
        "licence_class": "C1",
        "first_issue_date": "2005-06-01",
        "valid_from": "2021-06-01",
        "valid_until": "2031-06-01",
        "issuing_authority": "亳州市公安局交通警察支队",
        "penalty_points": 0,
        "status": "valid"
    })
}

/// `record` about subject `id`: every top-level [`SUBJECT`] replaced.
pub fn about(mut record: Value, id: &str) -> Value {
    if let Value::Object(map) = &mut record {
        for value in map.values_mut() {
            if value.as_str() == Some(SUBJECT) {
                *value = Value::String(id.to_owned());
            }
        }
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;
    use xgate_catalog::Catalog;

    const CITIZEN: &str = "11010519491231002X";

    #[test]
    fn samples_are_valid_once_about_a_subject() {
        let catalog = Catalog::builtin().expect("catalog");
        let samples = personal_tax_records();
        let types: Vec<&str> = samples.iter().map(|(t, _)| *t).collect();
        let mut expected: Vec<String> = crate::client::types_of(
            &catalog,
            xgate_catalog::SubjectKind::ResidentId,
            Some("tax"),
        );
        expected.sort();
        let mut sorted: Vec<String> = types.iter().map(|t| (*t).to_owned()).collect();
        sorted.sort();
        assert_eq!(sorted, expected, "every personal tax type has a sample");
        for (record_type, record) in samples {
            let rt = catalog.record_type(record_type).expect("known type");
            assert!(
                !rt.is_valid(&record),
                "{record_type}: placeholder must not pass"
            );
            let record = about(record, CITIZEN);
            assert_eq!(record["id_number"], CITIZEN);
            rt.validate(&record)
                .unwrap_or_else(|v| panic!("{record_type}: {v}"));
        }
    }
}
