//! Lookups against real databases through mapping files whose column names
//! differ from the record fields and whose columns have native types (DATE,
//! NUMERIC/DECIMAL, BOOLEAN, a JSON-array text column): SQLite (a temporary
//! file), PostgreSQL (127.0.0.1:5432, user postgres) and MariaDB/MySQL
//! (127.0.0.1:3306, root). Each server test creates its own uniquely named
//! database and drops it afterwards, also when the test fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::mysql::MySqlConnection;
use sqlx::postgres::PgConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{AssertSqlSafe, ConnectOptions as _, Connection as _, Executor as _};
use xgate_adapter_sql::{Mapping, SqlDepartment, SqlError};
use xgate_catalog::Catalog;

const PERSON: &str = "11010519491231002X";
/// Has records in no table.
const NOBODY: &str = "110101199003070011";

const SETUP: &[&str] = &[
    "CREATE TABLE arrears_certs (cert_no VARCHAR(32) NOT NULL, person_id VARCHAR(18) NOT NULL, \
     person_name VARCHAR(64) NOT NULL, owes BOOLEAN NOT NULL, owed NUMERIC(12,2) NOT NULL, \
     office VARCHAR(64) NOT NULL, issued DATE NOT NULL)",
    "INSERT INTO arrears_certs VALUES ('000000000000000001', '11010519491231002X', '张三', \
     FALSE, 0, '北京市朝阳区税务局', '2024-03-01')",
    "INSERT INTO arrears_certs VALUES ('000000000000000002', '11010519491231002X', '张三', \
     TRUE, 1234.56, '北京市朝阳区税务局', '2025-01-31')",
    "INSERT INTO arrears_certs VALUES ('000000000000000003', '110101198001010014', '李四', \
     FALSE, 0, '北京市东城区税务局', '2024-05-06')",
    "CREATE TABLE operator_certs (cert VARCHAR(32) NOT NULL, pid VARCHAR(18) NOT NULL, \
     holder VARCHAR(64) NOT NULL, items TEXT NOT NULL, employer VARCHAR(64), \
     authority VARCHAR(64) NOT NULL, issued DATE NOT NULL, expires DATE NOT NULL, \
     state VARCHAR(16) NOT NULL)",
    "INSERT INTO operator_certs VALUES ('T11010519491231002X', '11010519491231002X', '张三', \
     '[\"boiler\",\"crane\"]', NULL, '北京市市场监督管理局', '2020-06-01', '2024-06-01', 'expired')",
];

/// A department's own layout: code columns, text dates `YYYYMMDD` (one
/// malformed), a numeric text column, an integer office number, a small
/// integer month.
const DEPT_SETUP: &[&str] = &[
    "CREATE TABLE dept_certs (cert_no VARCHAR(32) NOT NULL, person_id VARCHAR(18) NOT NULL, \
     person_name VARCHAR(64) NOT NULL, owes_code CHAR(1) NOT NULL, owed NUMERIC(12,2) NOT NULL, \
     owed_text VARCHAR(16) NOT NULL, office VARCHAR(64) NOT NULL, office_no INTEGER NOT NULL, \
     djrq VARCHAR(8) NOT NULL, month_no SMALLINT NOT NULL)",
    "INSERT INTO dept_certs VALUES ('000000000000000001', '11010519491231002X', '张三', 'Y', \
     12.5, '12.50', '北京市朝阳区税务局', 9, '20240301', 3)",
    "INSERT INTO dept_certs VALUES ('000000000000000002', 'BAD-DATE', '李四', 'N', \
     0, '0', '北京市东城区税务局', 9, '2024AB01', 3)",
    "INSERT INTO dept_certs VALUES ('000000000000000003', 'BAD-CODE', '王五', 'X', \
     0, '0', '北京市东城区税务局', 9, '20240301', 3)",
];

/// Tax's arrears certificates from [`DEPT_SETUP`]'s table, the fields
/// given as `fields` (the rest fixed).
fn dept_mapping(url: &str, fields: &str) -> String {
    format!(
        r#"department = "tax"

[database]
url = "{url}"

[[record_types]]
record_type = "no_tax_arrears_certificate"
query = "SELECT cert_no, person_id, person_name, owes_code, owed, owed_text, office, office_no, djrq, month_no FROM dept_certs WHERE person_id = :subject"

[record_types.fields]
certificate_no = "cert_no"
id_number = "person_id"
taxpayer_name = "person_name"
has_arrears = {{ column = "owes_code", values = {{ "Y" = true, "N" = false }} }}
{fields}
"#
    )
}

/// The 1-based line of `needle` in `source`.
fn line_of(source: &str, needle: &str) -> usize {
    source.lines().position(|l| l.starts_with(needle)).unwrap() + 1
}

/// The text of the bad-data error a lookup of arrears certificates gives.
async fn bad_data(dept: &SqlDepartment, subject: &str) -> String {
    match dept.lookup_id(subject, "no_tax_arrears_certificate").await {
        Err(xgate_adapter_sdk::LookupError::BadData(text)) => text,
        other => panic!("{subject}: not bad data: {other:?}"),
    }
}

/// A mapping that a database server (`server`) refuses with a message
/// containing `wants`, and SQLite accepts (it does not report that type).
async fn refused_by_servers(source: &str, server: bool, wants: &str) {
    match department(source).await {
        Err(SqlError::Mapping(errors)) if server => {
            assert!(errors[0].message.contains(wants), "{}", errors[0]);
        }
        Ok(d) if !server => d.close().await,
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("accepted, expected `{wants}`"),
    }
}

/// Column types are compared with field types at check time; bad data is
/// INVALID-worthy bad data naming the field, never the column. `server`:
/// PostgreSQL or MySQL, which report every column's type; SQLite reports
/// its declared type's affinity (SMALLINT is an 8-byte INTEGER there) and
/// nothing for NUMERIC columns, which are then checked row by row.
async fn types_checked_and_bad_data_named(url: &str, server: bool) {
    let good = "outstanding_amount_cny = \"owed\"\ntax_authority = \"office\"\nissue_date = { column = \"djrq\", type = \"date\" }";
    // VARCHAR -> number field: refused at its line
    let source = dept_mapping(url, &good.replace("= \"owed\"", "= \"owed_text\""));
    let Err(SqlError::Mapping(errors)) = department(&source).await else {
        panic!("a text column was accepted for a number field");
    };
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(
        errors[0].position.map(|p| p.0),
        Some(line_of(&source, "outstanding_amount_cny"))
    );
    assert!(
        errors[0]
            .message
            .contains("cannot make field `outstanding_amount_cny`: cast it"),
        "{}",
        errors[0]
    );
    // SMALLINT -> date field
    let source = dept_mapping(
        url,
        &good.replace("column = \"djrq\"", "column = \"month_no\""),
    );
    refused_by_servers(&source, server, "cannot make field `issue_date`").await;
    // INT -> string field: works, warned unless the mapping says so
    let source = dept_mapping(url, &good.replace("= \"office\"", "= \"office_no\""));
    let warned = department(&source).await.unwrap();
    let [warning] = warned.warnings() else {
        panic!("{:?}", warned.warnings());
    };
    assert_eq!(
        warning.position.map(|p| p.0),
        Some(line_of(&source, "tax_authority"))
    );
    assert!(warning.message.contains("from_number = true"), "{warning}");
    warned.close().await;
    let meant = dept_mapping(
        url,
        &good.replace(
            "tax_authority = \"office\"",
            "tax_authority = { column = \"office_no\", from_number = true }",
        ),
    );
    let meant = department(&meant).await.unwrap();
    assert!(meant.warnings().is_empty(), "{:?}", meant.warnings());
    meant.close().await;
    // a code map over a numeric column that holds no codes
    let source = dept_mapping(url, good).replace("column = \"owes_code\"", "column = \"owed\"");
    refused_by_servers(&source, server, "value map needs").await;

    // The good mapping: codes and text dates make valid records.
    let dept = department(&dept_mapping(url, good)).await.unwrap();
    assert!(dept.warnings().is_empty(), "{:?}", dept.warnings());
    let records = dept
        .lookup_id(PERSON, "no_tax_arrears_certificate")
        .await
        .unwrap();
    assert_valid("no_tax_arrears_certificate", &records);
    assert_eq!(records[0]["has_arrears"], true);
    assert_eq!(records[0]["issue_date"], "2024-03-01");
    // A malformed date and an unknown code are bad data naming the field.
    for (subject, field, problem) in [
        ("BAD-DATE", "issue_date", "holds text that is not a date"),
        (
            "BAD-CODE",
            "has_arrears",
            "holds a code its value map does not list",
        ),
    ] {
        let text = bad_data(&dept, subject).await;
        assert!(
            text.contains(&format!("field `{field}` {problem}")),
            "{subject}: {text}"
        );
        for column in ["djrq", "owes_code"] {
            assert!(!text.contains(column), "the column leaked: {text}");
        }
    }
    dept.close().await;
}

/// Tax's arrears certificates; `condition` is added to the WHERE clause.
fn tax_mapping(url: &str, condition: &str, timeout_ms: u64) -> String {
    format!(
        r#"department = "tax"

[database]
url = "{url}"
max_connections = 2
statement_timeout_ms = {timeout_ms}

[[record_types]]
record_type = "no_tax_arrears_certificate"
query = """
SELECT cert_no, person_id, person_name, owes, owed, office, issued
FROM arrears_certs
WHERE person_id = :subject {condition}
ORDER BY cert_no
"""

[record_types.fields]
certificate_no = "cert_no"
id_number = "person_id"
taxpayer_name = "person_name"
has_arrears = {{ column = "owes", type = "boolean" }}
outstanding_amount_cny = {{ column = "owed", type = "number" }}
tax_authority = "office"
issue_date = {{ column = "issued", type = "date" }}
"#
    )
}

/// Market regulation's operator certificates: a JSON-array text column, a
/// NULL in a nullable field, the subject bound twice.
fn market_mapping(url: &str) -> String {
    format!(
        r#"department = "market-regulation"

[database]
url = "{url}"

[[record_types]]
record_type = "special_equipment_operator_certificate"
query = "SELECT cert, pid, holder, items, employer, authority, issued, expires, state FROM operator_certs WHERE pid = :subject OR holder = :subject"

[record_types.fields]
certificate_no = "cert"
id_number = "pid"
name = "holder"
operation_items = {{ column = "items", type = "string_list" }}
employer_name = "employer"
issuing_authority = "authority"
issue_date = "issued"
valid_until = "expires"
status = "state"
"#
    )
}

fn catalog() -> Catalog {
    Catalog::builtin().unwrap()
}

/// `source` with `batch_query` (and `batch_subject` when given) added after
/// the query of its one record type: the query with `condition` (the WHERE
/// on the subject) replaced by `batch_condition`.
fn with_batch(
    source: &str,
    condition: &str,
    batch_condition: &str,
    subject: Option<&str>,
) -> String {
    let entry = source.find("query = ").unwrap();
    let (quote, start) = if source[entry..].starts_with("query = \"\"\"") {
        ("\"\"\"", entry + "query = \"\"\"".len())
    } else {
        ("\"", entry + "query = \"".len())
    };
    let end = start + source[start..].find(quote).unwrap() + quote.len();
    let query = &source[start..end];
    assert!(query.contains(condition), "{query}");
    let batch = query.replace(condition, batch_condition);
    let subject = subject.map_or(String::new(), |s| format!("batch_subject = \"{s}\"\n"));
    format!(
        "{}\nbatch_query = {quote}{batch}\n{subject}{}",
        &source[..end],
        &source[end..]
    )
}

/// A record type's answers compared as the SDK would answer them.
fn same(
    a: &Result<Vec<Value>, xgate_adapter_sdk::LookupError>,
    b: &Result<Vec<Value>, xgate_adapter_sdk::LookupError>,
) -> bool {
    match (a, b) {
        (Ok(a), Ok(b)) => a == b,
        (Err(a), Err(b)) => a.to_string() == b.to_string(),
        _ => false,
    }
}

/// `lookup_ids` gives each subject what `lookup_id` gives it.
async fn batch_is_single(dept: &SqlDepartment, record_type: &str, ids: &[&str]) {
    let batch = dept.lookup_ids(ids, record_type).await;
    assert_eq!(batch.len(), ids.len());
    for (id, result) in ids.iter().zip(&batch) {
        let single = dept.lookup_id(id, record_type).await;
        assert!(
            same(result, &single),
            "{record_type} {id}: {result:?} != {single:?}"
        );
    }
}

/// The batch queries of a database set up with [`SETUP`] and [`DEPT_SETUP`]
/// at `url`: the same answers as one query per subject (found, not found,
/// bad data, duplicates, hostile IDs, more subjects than one list holds),
/// a wrong subject column failing the list, its checks at start, and the
/// statement timeout; `slow` as for [`exercise`].
async fn batch_exercise(url: &str, slow: &str) {
    use xgate_adapter_sdk::{Department as _, Subject};
    let tax = department(&with_batch(
        &tax_mapping(url, "", 2000),
        "person_id = :subject",
        "person_id IN (:subjects)",
        None,
    ))
    .await
    .unwrap();
    let hostile = [
        "1' OR '1'='1",
        "x'); DROP TABLE arrears_certs; --",
        "' UNION SELECT cert, pid, holder, 1, 1, authority, issued FROM operator_certs --",
    ];
    let mut ids: Vec<String> = vec![PERSON.into(), NOBODY.into(), "110101198001010014".into()];
    ids.extend(hostile.iter().map(|h| (*h).to_owned()));
    ids.push(PERSON.into());
    // Three lists, the last one padded.
    ids.extend((0..1100).map(|n| format!("1101011990030{n:05}")));
    ids.push("110101198001010014".into());
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    for n in [1, 2, 8, ids.len()] {
        batch_is_single(&tax, "no_tax_arrears_certificate", &ids[..n]).await;
    }
    let batch = tax.lookup_ids(&ids, "no_tax_arrears_certificate").await;
    let found: Vec<usize> = batch
        .iter()
        .map(|r| r.as_ref().unwrap().len())
        .filter(|n| *n > 0)
        .collect();
    assert_eq!(found, [2, 1, 2, 1]);
    // Through the SDK's trait, as the server calls it.
    let subjects: Vec<Subject> = [PERSON, NOBODY]
        .iter()
        .map(|id| Subject {
            kind: xgate_catalog::SubjectKind::ResidentId,
            id: (*id).to_owned(),
        })
        .collect();
    let through = tax
        .lookup_batch(&subjects, "no_tax_arrears_certificate")
        .await;
    assert_eq!(through[0].as_ref().unwrap().len(), 2);
    assert!(through[1].as_ref().unwrap().is_empty());
    let unserved = tax.lookup_ids(&[PERSON], "tax_registration").await;
    assert!(
        unserved[0]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("not served")
    );
    tax.close().await;

    // The list bound twice (`OR`): MySQL binds it once per occurrence. (A
    // row found by `holder` goes to the subject its `pid` names: the only
    // subject whose record it can be.)
    let market = department(&with_batch(
        &market_mapping(url),
        "pid = :subject OR holder = :subject",
        "pid IN (:subjects) OR holder IN (:subjects)",
        None,
    ))
    .await
    .unwrap();
    batch_is_single(
        &market,
        "special_equipment_operator_certificate",
        &[NOBODY, PERSON, PERSON],
    )
    .await;
    market.close().await;

    // Bad data is the subject's own: the same text as alone.
    let good = "outstanding_amount_cny = \"owed\"\ntax_authority = \"office\"\nissue_date = { column = \"djrq\", type = \"date\" }";
    let dept = department(&with_batch(
        &dept_mapping(url, good),
        "person_id = :subject",
        "person_id IN (:subjects)",
        None,
    ))
    .await
    .unwrap();
    let ids = ["BAD-DATE", PERSON, "BAD-CODE", NOBODY];
    batch_is_single(&dept, "no_tax_arrears_certificate", &ids).await;
    let batch = dept.lookup_ids(&ids, "no_tax_arrears_certificate").await;
    assert!(matches!(
        batch[0],
        Err(xgate_adapter_sdk::LookupError::BadData(_))
    ));
    assert_eq!(batch[1].as_ref().unwrap().len(), 1);
    dept.close().await;

    // A subject column that names no subject of the list fails the list
    // rather than handing rows to the wrong subject (or to none).
    let mislabelled = department(&with_batch(
        &tax_mapping(url, "", 2000),
        "person_id = :subject",
        "person_id IN (:subjects)",
        Some("person_name"),
    ))
    .await
    .unwrap();
    let batch = mislabelled
        .lookup_ids(&[PERSON, NOBODY], "no_tax_arrears_certificate")
        .await;
    for result in &batch {
        let err = result.as_ref().unwrap_err().to_string();
        assert!(err.contains("of no subject asked for"), "{err}");
    }
    // ...but a list that returns no row has no stray row.
    let quiet = mislabelled
        .lookup_ids(&[NOBODY], "no_tax_arrears_certificate")
        .await;
    assert!(quiet[0].as_ref().unwrap().is_empty());
    mislabelled.close().await;

    // Checked at start: the subject column must be returned, as text; the
    // batch query must return the mapped columns; the database must take it.
    for (subject, condition, wants, line) in [
        (
            Some("nowhere"),
            "person_id IN (:subjects)",
            "column `nowhere` (the subject of each row) is not returned",
            "batch_subject",
        ),
        (
            Some("owes"),
            "person_id IN (:subjects)",
            "the subject of each row of the batch query of `no_tax_arrears_certificate` must be the ID as text",
            "batch_subject",
        ),
        (
            None,
            "person_id IN (:subjects) AND no_such_column = 1",
            "the batch query of `no_tax_arrears_certificate` is refused by the database",
            "batch_query",
        ),
    ] {
        let source = with_batch(
            &tax_mapping(url, "", 2000),
            "person_id = :subject",
            condition,
            subject,
        );
        let Err(SqlError::Mapping(errors)) = department(&source).await else {
            panic!("accepted: {source}");
        };
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].message.contains(wants), "{}", errors[0]);
        assert_eq!(
            errors[0].position.map(|p| p.0),
            Some(line_of(&source, line)),
            "{}",
            errors[0]
        );
    }
    let source = with_batch(
        &tax_mapping(url, "", 2000),
        "person_id = :subject",
        "person_id IN (:subjects)",
        None,
    )
    .replace(
        "batch_query = \"\"\"\nSELECT cert_no, person_id,",
        "batch_query = \"\"\"\nSELECT cert_no,",
    );
    let Err(SqlError::Mapping(errors)) = department(&source).await else {
        panic!("a batch query without the subject's column was accepted");
    };
    assert!(
        errors
            .iter()
            .any(|e| e.message.contains(
                "column `person_id` (field `id_number`) is not returned by the batch query"
            ) && e.position.map(|p| p.0) == Some(line_of(&source, "batch_query"))),
        "{errors:?}"
    );

    // The statement timeout holds for a list as for one subject.
    let slow_tax = department(&with_batch(
        &tax_mapping(url, slow, 300),
        "person_id = :subject",
        "person_id IN (:subjects)",
        None,
    ))
    .await
    .unwrap();
    let started = Instant::now();
    let batch = slow_tax
        .lookup_ids(&[PERSON, NOBODY], "no_tax_arrears_certificate")
        .await;
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    for result in batch {
        let err = result.unwrap_err().to_string();
        assert!(err.contains("statement timeout of 300 ms"), "{err}");
        assert!(!err.contains(PERSON) && !err.contains(NOBODY), "{err}");
    }
    slow_tax.close().await;
}

async fn department(source: &str) -> Result<SqlDepartment, SqlError> {
    let mapping = Mapping::parse(Path::new("test.toml"), source).unwrap();
    SqlDepartment::connect(&mapping, &catalog(), None).await
}

fn assert_valid(record_type: &str, records: &[Value]) {
    let catalog = catalog();
    let rt = catalog.record_type(record_type).unwrap();
    for record in records {
        rt.validate(record)
            .unwrap_or_else(|e| panic!("{record_type} record {record} is invalid: {e}"));
    }
}

/// Runs the checks every driver must pass against a database set up with
/// [`SETUP`] at `url`; `count` counts a table's rows through another
/// connection; `slow` is a condition that makes the query run for seconds.
async fn exercise<F, Fut>(url: &str, slow: &str, count: F)
where
    F: Fn(&'static str) -> Fut,
    Fut: Future<Output = i64>,
{
    // Native types in differently named columns make schema-valid records.
    let tax = department(&tax_mapping(url, "", 2000)).await.unwrap();
    let records = tax
        .lookup_id(PERSON, "no_tax_arrears_certificate")
        .await
        .unwrap();
    assert_valid("no_tax_arrears_certificate", &records);
    assert_eq!(records.len(), 2, "{records:?}");
    let first = &records[0];
    assert_eq!(first["certificate_no"], "000000000000000001");
    assert_eq!(first["id_number"], PERSON);
    assert_eq!(first["taxpayer_name"], "张三");
    assert_eq!(first["has_arrears"], false);
    assert_eq!(first["outstanding_amount_cny"].as_f64(), Some(0.0));
    assert_eq!(first["tax_authority"], "北京市朝阳区税务局");
    assert_eq!(first["issue_date"], "2024-03-01");
    assert_eq!(records[1]["has_arrears"], true);
    assert_eq!(records[1]["outstanding_amount_cny"].as_f64(), Some(1234.56));
    assert_eq!(records[1]["issue_date"], "2025-01-31");

    let market = department(&market_mapping(url)).await.unwrap();
    let records = market
        .lookup_id(PERSON, "special_equipment_operator_certificate")
        .await
        .unwrap();
    assert_valid("special_equipment_operator_certificate", &records);
    assert_eq!(
        records,
        [json!({
            "certificate_no": "T11010519491231002X",
            "id_number": PERSON,
            "name": "张三",
            "operation_items": ["boiler", "crane"],
            "employer_name": null,
            "issuing_authority": "北京市市场监督管理局",
            "issue_date": "2020-06-01",
            "valid_until": "2024-06-01",
            "status": "expired",
        })]
    );

    // No rows: an empty vector (the SDK answers NOT_FOUND).
    let none = tax
        .lookup_id(NOBODY, "no_tax_arrears_certificate")
        .await
        .unwrap();
    assert!(none.is_empty(), "{none:?}");

    // Hostile subject IDs are bound as values: nothing matches, nothing runs.
    for hostile in [
        "1' OR '1'='1",
        "x'; DROP TABLE arrears_certs; --",
        "11010519491231002X' OR 1=1 --",
        "' UNION SELECT cert, pid, holder, 1, 1, authority, issued FROM operator_certs --",
        "\\'; DELETE FROM arrears_certs; --",
    ] {
        let found = tax
            .lookup_id(hostile, "no_tax_arrears_certificate")
            .await
            .unwrap();
        assert!(found.is_empty(), "{hostile}: {found:?}");
        let found = market
            .lookup_id(hostile, "special_equipment_operator_certificate")
            .await
            .unwrap();
        assert!(found.is_empty(), "{hostile}: {found:?}");
    }
    assert_eq!(count("arrears_certs").await, 3);
    assert_eq!(count("operator_certs").await, 1);
    let again = tax
        .lookup_id(PERSON, "no_tax_arrears_certificate")
        .await
        .unwrap();
    assert_eq!(again.len(), 2);

    // An unserved type is an error, not an empty answer.
    let err = tax.lookup_id(PERSON, "tax_registration").await.unwrap_err();
    assert!(err.to_string().contains("not served"), "{err}");
    tax.close().await;
    market.close().await;

    // The statement timeout cuts a slow query off quickly, every time (the
    // connection is given back usable), as a lookup error.
    let slow_tax = department(&tax_mapping(url, slow, 300)).await.unwrap();
    for _ in 0..2 {
        let started = Instant::now();
        let err = slow_tax
            .lookup_id(PERSON, "no_tax_arrears_certificate")
            .await
            .unwrap_err();
        let took = started.elapsed();
        assert!(took < Duration::from_millis(1500), "took {took:?}");
        assert!(
            err.to_string().contains("statement timeout of 300 ms"),
            "{err}"
        );
        assert!(!err.to_string().contains(PERSON), "{err}");
    }
    slow_tax.close().await;
}

/// A mapped column the query does not return is refused at start, naming
/// the mapping line.
async fn missing_column_is_refused(url: &str) {
    let source = tax_mapping(url, "", 2000).replace(
        "tax_authority = \"office\"",
        "tax_authority = \"office_name\"",
    );
    let line = source
        .lines()
        .position(|l| l.starts_with("tax_authority"))
        .unwrap()
        + 1;
    let Err(SqlError::Mapping(errors)) = department(&source).await else {
        panic!("a missing column was accepted");
    };
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].position, Some((line, 1)));
    assert!(
        errors[0]
            .message
            .contains("column `office_name` (field `tax_authority`) is not returned"),
        "{}",
        errors[0]
    );
}

mod sqlite {
    use super::*;

    async fn seeded(dir: &Path) -> String {
        let path = dir.join("dept.db");
        let mut conn = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .connect()
            .await
            .unwrap();
        for statement in SETUP.iter().chain(DEPT_SETUP) {
            conn.execute(*statement).await.unwrap();
        }
        conn.close().await.unwrap();
        format!("sqlite:{}", path.display())
    }

    async fn count(url: &str, table: &str) -> i64 {
        let mut conn = SqliteConnection::connect(url).await.unwrap();
        let n = sqlx::query_scalar(AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        n
    }

    #[tokio::test]
    async fn lookups_injection_and_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let url = seeded(dir.path()).await;
        // A recursive CTE that never ends.
        let slow = "AND (WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) \
                    SELECT count(*) FROM r) > 0";
        exercise(&url, slow, |table| count(&url, table)).await;
        missing_column_is_refused(&url).await;
    }

    #[tokio::test]
    async fn batch_queries_answer_as_single_queries() {
        let dir = tempfile::tempdir().unwrap();
        let url = seeded(dir.path()).await;
        let slow = "AND (WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) \
                    SELECT count(*) FROM r) > 0";
        batch_exercise(&url, slow).await;
        assert_eq!(count(&url, "arrears_certs").await, 3);
    }

    #[tokio::test]
    async fn column_types_are_checked_and_bad_data_names_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let url = seeded(dir.path()).await;
        types_checked_and_bad_data_named(&url, false).await;
    }

    #[tokio::test]
    async fn the_database_is_opened_read_only_and_relative_paths_follow_the_mapping() {
        let dir = tempfile::tempdir().unwrap();
        seeded(dir.path()).await;
        let mapping_path = dir.path().join("tax.toml");
        std::fs::write(&mapping_path, tax_mapping("sqlite:dept.db", "", 2000)).unwrap();
        let mapping = Mapping::load(&mapping_path).unwrap();
        let tax = SqlDepartment::connect(&mapping, &catalog(), None)
            .await
            .unwrap();
        let records = tax
            .lookup_id(PERSON, "no_tax_arrears_certificate")
            .await
            .unwrap();
        assert_eq!(records.len(), 2);
        // A query that writes is refused by the read-only connection.
        let writer = tax_mapping("sqlite:dept.db", "", 2000).replace(
            "SELECT cert_no, person_id, person_name, owes, owed, office, issued\nFROM arrears_certs\nWHERE person_id = :subject \nORDER BY cert_no",
            "DELETE FROM arrears_certs WHERE person_id = :subject RETURNING cert_no, person_id, person_name, owes, owed, office, issued",
        );
        assert!(writer.contains("DELETE"), "{writer}");
        std::fs::write(&mapping_path, writer).unwrap();
        let mapping = Mapping::load(&mapping_path).unwrap();
        let deleter = SqlDepartment::connect(&mapping, &catalog(), None)
            .await
            .unwrap();
        let err = deleter
            .lookup_id(PERSON, "no_tax_arrears_certificate")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("readonly"), "{err}");
        let url = format!("sqlite:{}", dir.path().join("dept.db").display());
        assert_eq!(count(&url, "arrears_certs").await, 3);
        // The command line URL wins over the mapping's.
        let mapping = Mapping::parse(
            Path::new("elsewhere/tax.toml"),
            &tax_mapping("sqlite:missing.db", "", 2000),
        )
        .unwrap();
        assert!(matches!(
            SqlDepartment::connect(&mapping, &catalog(), None).await,
            Err(SqlError::Connect { .. })
        ));
        SqlDepartment::connect(&mapping, &catalog(), Some(&url))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn the_binary_serves_a_checked_mapping_and_refuses_a_bad_one() {
        use std::io::{BufRead as _, BufReader};
        use std::process::Stdio;
        use xgate_proto::v1::department_adapter_client::DepartmentAdapterClient;
        use xgate_proto::v1::{LookupRequest, LookupStatus, Subject, SubjectKind};
        use xgate_tls::Identity;

        let dir = tempfile::tempdir().unwrap();
        seeded(dir.path()).await;
        let gateway = Identity::Gateway("main".into());
        let pki = xgate_tls::devpki::init(
            &dir.path().join("pki"),
            &[Identity::Department("tax".into()), gateway.clone()],
        )
        .unwrap();
        let files = pki.files(&Identity::Department("tax".into()));
        let mapping = dir.path().join("tax.toml");
        std::fs::write(&mapping, tax_mapping("sqlite:dept.db", "", 2000)).unwrap();
        let serve = |mapping: &Path| {
            Command::new(env!("CARGO_BIN_EXE_xgate-adapter-sql"))
                .arg("--mapping")
                .arg(mapping)
                .arg("--cert")
                .arg(&files.cert)
                .arg("--key")
                .arg(&files.key)
                .arg("--ca")
                .arg(&files.ca)
                .args(["--listen", "127.0.0.1:0"])
                .env_remove("XGATE_GATEWAY")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let mut child = serve(&mapping);
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let answers = async {
            let addr = line.trim().strip_prefix("listening on ")?.to_owned();
            xgate_tls::install_crypto_provider();
            let tls = pki.files(&gateway).client_config("127.0.0.1").ok()?;
            let channel = tonic::transport::Endpoint::from_shared(format!("https://{addr}"))
                .ok()?
                .tls_config(tls)
                .ok()?
                .connect()
                .await
                .ok()?;
            let mut client = DepartmentAdapterClient::new(channel);
            let request = |id: &str| LookupRequest {
                subject: Some(Subject {
                    kind: SubjectKind::ResidentId as i32,
                    id: id.to_owned(),
                }),
                record_types: vec!["no_tax_arrears_certificate".into()],
                request_id: "r1".into(),
                purpose: "test".into(),
            };
            let found = client.lookup(request(PERSON)).await;
            let hostile = client.lookup(request("1' OR '1'='1")).await;
            Some((found, hostile))
        }
        .await;
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(line.starts_with("listening on 127.0.0.1:"), "{line:?}");
        let (found, hostile) = answers.expect("a TLS connection to the adapter");
        let answer = found.unwrap().into_inner().answers.remove(0);
        assert_eq!(answer.status, LookupStatus::Found as i32, "{answer:?}");
        assert_eq!(answer.records_json.len(), 2);
        // The SDK refuses a malformed ID before the department sees it.
        assert_eq!(hostile.unwrap_err().code(), tonic::Code::InvalidArgument);
        assert_eq!(
            count(
                &format!("sqlite:{}", dir.path().join("dept.db").display()),
                "arrears_certs"
            )
            .await,
            3
        );

        let bad = dir.path().join("bad.toml");
        std::fs::write(
            &bad,
            tax_mapping("sqlite:dept.db", "", 2000).replace(":subject", ":id"),
        )
        .unwrap();
        let out = serve(&bad).wait_with_output().unwrap();
        // (blocking: the child exits by itself at once)
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(out.stdout.is_empty(), "{out:?}");
        assert!(stderr.contains("unknown parameter `:id`"), "{stderr}");
    }

    /// `xgate-adapter-sql check --mapping FILE`, the URL from the file.
    fn check(mapping: &Path) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_xgate-adapter-sql"))
            .args(["check", "--mapping"])
            .arg(mapping)
            .env_remove("XGATE_SQL_DATABASE_URL")
            .output()
            .unwrap()
    }

    #[test]
    fn the_check_command_reports_lines_and_exits_1() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(seeded(dir.path()));
        let good = dir.path().join("good.toml");
        std::fs::write(&good, tax_mapping("sqlite:dept.db", "", 2000)).unwrap();
        let out = check(&good);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{out:?}");
        assert!(stdout.contains("ok, 1 record type checked"), "{stdout}");
        assert!(!stdout.contains("warning"), "{stdout}");

        // An integer column read as a string: ok, with a warning naming the line.
        let warned = dir.path().join("warned.toml");
        let source = dept_mapping(
            "sqlite:dept.db",
            "outstanding_amount_cny = \"owed\"\ntax_authority = \"office_no\"\nissue_date = \"djrq\"",
        );
        std::fs::write(&warned, &source).unwrap();
        let out = check(&warned);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{out:?}");
        let line = line_of(&source, "tax_authority");
        assert!(
            stdout.contains(&format!(
                "warning: {}:{line}:1: column `office_no` has type `INTEGER`",
                warned.display()
            )),
            "{stdout}"
        );
        assert!(
            stdout.contains(
                "ok, 1 record type checked against the catalog and the database, 1 warning"
            ),
            "{stdout}"
        );

        let bad = dir.path().join("bad.toml");
        let source = tax_mapping("sqlite:dept.db", "", 2000)
            .replace("tax_authority = \"office\"\n", "")
            .replace("type = \"boolean\"", "type = \"string\"");
        std::fs::write(&bad, &source).unwrap();
        let out = check(&bad);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        let fields_line = source
            .lines()
            .position(|l| l == "[record_types.fields]")
            .unwrap()
            + 1;
        let arrears_line = source
            .lines()
            .position(|l| l.starts_with("has_arrears"))
            .unwrap()
            + 1;
        assert!(stderr.contains("the mapping has 2 problems"), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "bad.toml:{fields_line}:1: required field `tax_authority`"
            )),
            "{stderr}"
        );
        assert!(
            stderr.contains(&format!("bad.toml:{arrears_line}:15: field `has_arrears`")),
            "{stderr}"
        );
    }
}

/// A database created for one test and dropped when the guard goes, even
/// when the test panics.
struct TempDatabase {
    admin_url: &'static str,
    drop_sql: String,
    url: String,
}

impl TempDatabase {
    async fn create(admin_url: &'static str, create: &str, drop: &str, base: &str) -> Self {
        let name = format!("xgate_sql_test_{}", uuid::Uuid::new_v4().simple());
        let create_sql = create.replace("{name}", &name);
        if admin_url.starts_with("postgres") {
            let mut conn = PgConnection::connect(admin_url)
                .await
                .expect("PostgreSQL on 127.0.0.1:5432");
            conn.execute(AssertSqlSafe(create_sql)).await.unwrap();
            conn.close().await.unwrap();
        } else {
            let mut conn = MySqlConnection::connect(admin_url)
                .await
                .expect("MariaDB/MySQL on 127.0.0.1:3306");
            conn.execute(AssertSqlSafe(create_sql)).await.unwrap();
            conn.close().await.unwrap();
        }
        TempDatabase {
            admin_url,
            drop_sql: drop.replace("{name}", &name),
            url: format!("{base}/{name}"),
        }
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url;
        let sql = self.drop_sql.clone();
        // Its own thread and runtime: this may run inside a runtime, or
        // while unwinding.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                if admin_url.starts_with("postgres") {
                    let mut conn = PgConnection::connect(admin_url).await.unwrap();
                    conn.execute(AssertSqlSafe(sql)).await.unwrap();
                } else {
                    let mut conn = MySqlConnection::connect(admin_url).await.unwrap();
                    conn.execute(AssertSqlSafe(sql)).await.unwrap();
                }
            });
        })
        .join();
        if dropped.is_err() && !std::thread::panicking() {
            panic!("could not drop the test database");
        }
    }
}

mod postgres {
    use super::*;

    const ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";

    async fn count(url: &str, table: &str) -> i64 {
        let mut conn = PgConnection::connect(url).await.unwrap();
        let n = sqlx::query_scalar(AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        n
    }

    #[tokio::test]
    async fn lookups_injection_timeout_and_column_types() {
        let db = TempDatabase::create(
            ADMIN,
            "CREATE DATABASE {name}",
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)",
            "postgres://postgres@127.0.0.1:5432",
        )
        .await;
        let mut conn = PgConnection::connect(&db.url).await.unwrap();
        for statement in SETUP.iter().chain(DEPT_SETUP) {
            conn.execute(*statement).await.unwrap();
        }
        conn.close().await.unwrap();
        types_checked_and_bad_data_named(&db.url, true).await;

        exercise(
            &db.url,
            "AND (SELECT count(*) FROM pg_sleep(5)) = 1",
            |table| count(&db.url, table),
        )
        .await;
        missing_column_is_refused(&db.url).await;
        batch_exercise(&db.url, "AND (SELECT count(*) FROM pg_sleep(5)) = 1").await;
        assert_eq!(count(&db.url, "arrears_certs").await, 3);

        // A column type the adapter cannot read is refused at start with a hint.
        let source = tax_mapping(&db.url, "", 2000).replace(
            "SELECT cert_no, person_id, person_name, owes, owed, office, issued",
            "SELECT cert_no, person_id, person_name, owes, owed::money AS owed, office, issued",
        );
        let line = source
            .lines()
            .position(|l| l.starts_with("outstanding_amount_cny"))
            .unwrap()
            + 1;
        let Err(SqlError::Mapping(errors)) = department(&source).await else {
            panic!("a MONEY column was accepted");
        };
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].position.map(|p| p.0), Some(line));
        assert!(
            errors[0].message.contains("has type `MONEY`")
                && errors[0]
                    .message
                    .contains("cast it to a double precision type"),
            "{}",
            errors[0]
        );
        // A query the database refuses names the query.
        let source = tax_mapping(&db.url, "", 2000).replace("FROM arrears_certs", "FROM nowhere");
        let Err(SqlError::Mapping(errors)) = department(&source).await else {
            panic!("a query on a missing table was accepted");
        };
        assert!(
            errors[0].message.contains("is refused by the database"),
            "{}",
            errors[0]
        );
    }
}

mod mysql {
    use super::*;

    const ADMIN: &str = "mysql://root@127.0.0.1:3306/mysql";

    async fn count(url: &str, table: &str) -> i64 {
        let mut conn = MySqlConnection::connect(url).await.unwrap();
        let n = sqlx::query_scalar(AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        n
    }

    #[tokio::test]
    async fn lookups_injection_and_timeout() {
        let db = TempDatabase::create(
            ADMIN,
            "CREATE DATABASE {name} CHARACTER SET utf8mb4",
            "DROP DATABASE IF EXISTS {name}",
            "mysql://root@127.0.0.1:3306",
        )
        .await;
        let mut conn = MySqlConnection::connect(&db.url).await.unwrap();
        for statement in SETUP.iter().chain(DEPT_SETUP) {
            conn.execute(*statement).await.unwrap();
        }
        conn.close().await.unwrap();

        exercise(&db.url, "AND SLEEP(5) = 0", |table| count(&db.url, table)).await;
        missing_column_is_refused(&db.url).await;
        types_checked_and_bad_data_named(&db.url, true).await;
        batch_exercise(&db.url, "AND SLEEP(5) = 0").await;
        assert_eq!(count(&db.url, "arrears_certs").await, 3);

        // MySQL's collation matches `...x` for `...X` (and ignores trailing
        // blanks): the batch hands such a row to the subject as `query` does.
        let mut conn = MySqlConnection::connect(&db.url).await.unwrap();
        conn.execute(
            "INSERT INTO arrears_certs VALUES ('000000000000000004', '11010519491231002x', \
             '张三', FALSE, 0, '北京市朝阳区税务局', '2025-02-01')",
        )
        .await
        .unwrap();
        conn.close().await.unwrap();
        let tax = department(&with_batch(
            &tax_mapping(&db.url, "", 2000),
            "person_id = :subject",
            "person_id IN (:subjects)",
            None,
        ))
        .await
        .unwrap();
        batch_is_single(&tax, "no_tax_arrears_certificate", &[NOBODY, PERSON]).await;
        let single = tax
            .lookup_id(PERSON, "no_tax_arrears_certificate")
            .await
            .unwrap();
        assert_eq!(single.len(), 3);
        tax.close().await;
    }

    #[tokio::test]
    async fn a_zero_date_is_named_not_taken_for_null() {
        let db = TempDatabase::create(
            ADMIN,
            "CREATE DATABASE {name} CHARACTER SET utf8mb4",
            "DROP DATABASE IF EXISTS {name}",
            "mysql://root@127.0.0.1:3306",
        )
        .await;
        let mut conn = MySqlConnection::connect(&db.url).await.unwrap();
        conn.execute("SET SESSION sql_mode = ''").await.unwrap();
        for statement in SETUP {
            conn.execute(*statement).await.unwrap();
        }
        conn.execute(
            "UPDATE arrears_certs SET issued = '0000-00-00' WHERE cert_no = '000000000000000002'",
        )
        .await
        .unwrap();
        conn.close().await.unwrap();
        let tax = department(&tax_mapping(&db.url, "", 2000)).await.unwrap();
        let text = bad_data(&tax, PERSON).await;
        assert_eq!(
            text,
            "row 2 of `no_tax_arrears_certificate`: field `issue_date` holds the zero date `0000-00-00`, which is not a date"
        );
        tax.close().await;
    }
}
