//! `xgate fetch` and `xgate types`: calling the gateway by hand.

use std::time::Duration;

use anyhow::Context as _;
use serde_json::json;
use xgate_catalog::SubjectKind;
use xgate_proto::v1::exchange_client::ExchangeClient;
use xgate_proto::v1::{
    FetchRequest, ListRecordTypesRequest, RecordRequest, RecordResult, RecordTypeInfo, Relation,
    Representation, Subject, ViewInfo, ViewKind, ViewParamType,
};

use super::ClientTls;
use xgate_proto::kind::to_proto as proto_kind;
use xgate_proto::status_name;

#[derive(clap::Args, Debug)]
pub struct FetchArgs {
    #[command(flatten)]
    pub tls: ClientTls,
    /// The subject's ID number (resident ID or USCC).
    #[arg(long, required_unless_present = "code")]
    pub subject: Option<String>,
    /// A subject code (`XG1:...`, as scanned from the subject's app, or
    /// `@FILE` holding one) in place of `--subject`: the applicant's
    /// explicit request. Good for one fetch.
    #[arg(long)]
    pub code: Option<String>,
    /// The resident ID of an applicant acting for the subject ("family
    /// agency"); the gateway verifies `--relation` from the departments'
    /// records before the fetch.
    #[arg(long, requires = "relation")]
    pub applicant: Option<String>,
    /// The applicant's relation to the subject.
    #[arg(long, requires = "applicant", value_parser = ["spouse", "parent", "child", "guardian", "attorney"])]
    pub relation: Option<String>,
    /// `resident` or `uscc`; by default guessed from the number.
    #[arg(long, value_parser = ["resident", "uscc"])]
    pub kind: Option<String>,
    /// Record types, comma separated; or `all` for every type of the subject's kind.
    /// Each comes back at the most detailed field view granted.
    #[arg(long, value_delimiter = ',', required_unless_present_any = ["item", "view"])]
    pub types: Vec<String>,
    /// A record type at a named view, `TYPE.VIEW`, e.g. `real_estate_title.summary` or
    /// `resident_identity_card.age_at_least` (repeatable).
    #[arg(long)]
    pub view: Vec<String>,
    /// An approval item: fetch everything it needs ("one-click declaration").
    #[arg(long, conflicts_with_all = ["types", "view"])]
    pub item: Option<String>,
    /// A predicate parameter, `NAME=VALUE`, e.g. `n=60` or `city=亳州市` (repeatable).
    #[arg(long = "param")]
    pub params: Vec<String>,
    /// Purpose code, e.g. PF-WITHDRAWAL; with `--item`, the item's purpose by default.
    #[arg(long, required_unless_present = "item", default_value = "")]
    pub purpose: String,
    /// Approval case id.
    #[arg(long = "case")]
    pub case_id: String,
    /// Operator id of the official.
    #[arg(long = "operator")]
    pub operator_id: String,
    /// Deadline for the whole fetch.
    #[arg(long, default_value_t = 5000)]
    pub timeout_ms: u64,
    /// Print each result as its department answers (FetchStream).
    #[arg(long)]
    pub stream: bool,
    /// One JSON document on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Write the answer's audit receipt(s) to FILE, for
    /// `xgate audit verify --receipt FILE`.
    #[arg(long, value_name = "FILE")]
    pub receipt: Option<std::path::PathBuf>,
}

/// Guesses the kind of an ID number; a malformed number is sent as is and
/// the gateway explains what is wrong with it.
pub fn guess_kind(id: &str) -> SubjectKind {
    if xgate_catalog::ids::validate_resident_id(id).is_ok() {
        SubjectKind::ResidentId
    } else if xgate_catalog::ids::validate_uscc(id).is_ok() {
        SubjectKind::Uscc
    } else if id.chars().take(17).all(|c| c.is_ascii_digit()) {
        SubjectKind::ResidentId
    } else {
        SubjectKind::Uscc
    }
}

pub async fn run(args: FetchArgs) -> anyhow::Result<()> {
    let channel = super::client::connect(&args.tls.gateway, &args.tls.files()).await?;
    let mut client = ExchangeClient::new(channel).max_decoding_message_size(64 * 1024 * 1024);
    let code = match args.code.as_deref() {
        Some(file) if file.starts_with('@') => Some(
            std::fs::read_to_string(&file[1..])
                .with_context(|| format!("reading the subject code from `{}`", &file[1..]))?
                .trim()
                .to_owned(),
        ),
        other => other.map(str::to_owned),
    };
    // The code's own subject (unverified: the gateway verifies) picks the
    // kind when only a code is given.
    let peeked = code.as_deref().and_then(xgate_code::peek_subject);
    let kind = match (args.kind.as_deref(), &args.subject, &peeked) {
        (Some("resident"), ..) => SubjectKind::ResidentId,
        (Some(_), ..) => SubjectKind::Uscc,
        (None, Some(subject), _) => guess_kind(subject),
        (None, None, Some((kind, _))) => *kind,
        (None, None, None) => SubjectKind::ResidentId,
    };
    let record_types = if args.types.iter().any(|t| t == "all") && args.types.len() == 1 {
        let list = client
            .list_record_types(ListRecordTypesRequest {
                subject_kind: proto_kind(kind) as i32,
                department: String::new(),
            })
            .await
            .context("listing record types")?
            .into_inner();
        list.record_types.into_iter().map(|t| t.id).collect()
    } else {
        args.types.clone()
    };
    let request = FetchRequest {
        subject: args.subject.as_ref().map(|id| Subject {
            kind: proto_kind(kind) as i32,
            id: id.clone(),
        }),
        subject_code: code.unwrap_or_default(),
        representation: args.applicant.as_ref().map(|applicant| Representation {
            applicant_id: applicant.clone(),
            relation: args
                .relation
                .as_deref()
                .map_or(Relation::Unspecified, relation) as i32,
        }),
        record_types,
        purpose: args.purpose.clone(),
        case_id: args.case_id.clone(),
        operator_id: args.operator_id.clone(),
        approval_item: args.item.clone().unwrap_or_default(),
        requests: args
            .view
            .iter()
            .map(|v| {
                let (record_type, view) = v.split_once('.').with_context(|| {
                    format!("--view `{v}`: expected TYPE.VIEW, e.g. real_estate_title.summary")
                })?;
                Ok(RecordRequest {
                    record_type: record_type.to_owned(),
                    view: view.to_owned(),
                    params: Default::default(),
                })
            })
            .collect::<anyhow::Result<_>>()?,
        params: args
            .params
            .iter()
            .map(|p| {
                p.split_once('=')
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .with_context(|| format!("--param `{p}`: expected NAME=VALUE"))
            })
            .collect::<anyhow::Result<_>>()?,
        // Integers stay integers, and the bytes are the ones the receipt signs.
        records_as_json: true,
    };
    let mut request = tonic::Request::new(request);
    request.set_timeout(Duration::from_millis(args.timeout_ms));
    let started = std::time::Instant::now();
    let mut receipts = Vec::new();
    let (request_id, results) = if args.stream {
        let mut stream = client
            .fetch_stream(request)
            .await
            .map_err(explain)?
            .into_inner();
        let mut results = Vec::new();
        let mut request_id = String::new();
        while let Some(item) = stream.message().await.map_err(explain)? {
            request_id = item.request_id;
            receipts.extend(item.receipt);
            if let Some(result) = item.result {
                if !args.json {
                    crate::outln!("{}", row(&result))?;
                }
                results.push(result);
            }
        }
        (request_id, results)
    } else {
        let response = client.fetch(request).await.map_err(explain)?.into_inner();
        receipts.extend(response.receipt);
        (response.request_id, response.results)
    };
    if let Some(path) = &args.receipt {
        let n = super::receipts::write(path, &request_id, &receipts)?;
        // On stderr: stdout may be the --json document.
        eprintln!("{n} audit receipt(s) written to {}", path.display());
    }
    let elapsed = started.elapsed();
    if args.json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&results_json(&request_id, &results, true))?
        )?;
    } else {
        if !args.stream {
            crate::outln!("{}", header())?;
            for result in &results {
                crate::outln!("{}", row(result))?;
            }
        }
        crate::outln!("{}", summary(&results, elapsed))?;
        crate::outln!("request id {request_id}")?;
    }
    Ok(())
}

/// A gRPC error as a readable message with its field violations.
pub fn explain(status: tonic::Status) -> anyhow::Error {
    let violations = xgate_proto::status::violations(&status);
    if violations.is_empty() {
        anyhow::anyhow!("{:?}: {}", status.code(), status.message())
    } else {
        let lines: Vec<String> = violations
            .iter()
            .map(|v| format!("  {}: {}", v.field, v.description))
            .collect();
        anyhow::anyhow!(
            "{:?}: the request was refused:\n{}",
            status.code(),
            lines.join("\n")
        )
    }
}

pub fn header() -> String {
    format!(
        "{:<44} {:<22} {:<32} {:<12} {:>7}  DETAIL",
        "RECORD TYPE", "VIEW", "DEPARTMENT", "STATUS", "MS"
    )
}

pub fn row(r: &RecordResult) -> String {
    let detail = if !r.error.is_empty() {
        r.error.clone()
    } else if let Some(value) = &r.value {
        format!("= {}", xgate_proto::json::from_value(value))
    } else {
        format!("{} record(s)", record_count(r))
    };
    let detail = if r.from_cache {
        format!("{detail} (cached, {} old)", age(r.age_ms))
    } else {
        detail
    };
    format!(
        "{:<44} {:<22} {:<32} {:<12} {:>7.1}  {}",
        r.record_type,
        r.view,
        r.department,
        status_name(r.status),
        r.latency_us as f64 / 1000.0,
        detail
    )
}

/// A cached answer's age, e.g. `850 ms`, `42 s`, `3 min`.
fn age(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..120_000 => format!("{} s", ms / 1_000),
        _ => format!("{} min", ms / 60_000),
    }
}

/// Counts per status, e.g. `63 record types: 18 OK, 45 NO_SOURCE in 41.3 ms`.
pub fn summary(results: &[RecordResult], elapsed: Duration) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for r in results {
        let name = status_name(r.status);
        match counts.iter_mut().find(|(n, _)| *n == name) {
            Some((_, c)) => *c += 1,
            None => counts.push((name, 1)),
        }
    }
    counts.sort_by_key(|(name, _)| *name != "OK");
    let parts: Vec<String> = counts.iter().map(|(n, c)| format!("{c} {n}")).collect();
    format!(
        "{} record types: {} in {:.1} ms",
        results.len(),
        parts.join(", "),
        elapsed.as_secs_f64() * 1000.0
    )
}

/// Records released in either form (`records_json` when asked for).
fn record_count(r: &RecordResult) -> usize {
    r.records.len() + r.records_json.len()
}

/// The released records as JSON values; a `records_json` entry that is
/// not JSON (the gateway checked it, so never expected) shows as a string.
pub fn records(r: &RecordResult) -> Vec<serde_json::Value> {
    let from_json = r.records_json.iter().map(|bytes| {
        serde_json::from_slice(bytes)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(bytes).into()))
    });
    r.records
        .iter()
        .map(xgate_proto::json::struct_to_json)
        .chain(from_json)
        .collect()
}

/// Results as JSON (records included when `with_records`).
pub fn results_json(
    request_id: &str,
    results: &[RecordResult],
    with_records: bool,
) -> serde_json::Value {
    json!({
        "request_id": request_id,
        "results": results.iter().map(|r| result_json(r, with_records)).collect::<Vec<_>>(),
    })
}

pub fn result_json(r: &RecordResult, with_records: bool) -> serde_json::Value {
    let mut v = json!({
        "record_type": r.record_type,
        "department": r.department,
        "status": status_name(r.status),
        "latency_ms": (r.latency_us as f64 / 1000.0),
        "record_count": record_count(r),
        "error": r.error,
        "policy_ids": r.policy_ids,
        "view": r.view,
        "policy_set_version": r.policy_set_version,
        "from_cache": r.from_cache,
        "age_ms": r.age_ms,
    });
    if let Some(value) = &r.value {
        v["value"] = xgate_proto::json::from_value(value);
    }
    if with_records {
        v["records"] = records(r).into();
        if let Some(p) = &r.provenance {
            v["provenance"] = json!({
                "department": p.department,
                "adapter_id": p.adapter_id,
                "endpoint": p.endpoint,
                "retrieved_at": p.retrieved_at.map(|t| t.to_string()),
            });
        }
    }
    v
}

#[derive(clap::Args, Debug)]
#[command(mut_arg("cert", |a| a.help(
    "PEM client certificate of any identity the gateway's CA issued (requester, department, admin)"
)))]
pub struct TypesArgs {
    #[command(flatten)]
    pub tls: ClientTls,
    #[arg(long)]
    pub json: bool,
}

/// `xgate types`: the catalog as the gateway serves it, with each type's views.
pub async fn types(args: TypesArgs) -> anyhow::Result<()> {
    let channel = super::client::connect(&args.tls.gateway, &args.tls.files()).await?;
    let mut client = ExchangeClient::new(channel);
    let list = client
        .list_record_types(ListRecordTypesRequest::default())
        .await
        .map_err(explain)?
        .into_inner();
    if args.json {
        let v: Vec<_> = list.record_types.iter().map(type_json).collect();
        crate::outln!("{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(());
    }
    crate::outln!(
        "{:<44} {:<32} {:<8} NAME",
        "RECORD TYPE",
        "DEPARTMENT",
        "SOURCE"
    )?;
    for t in &list.record_types {
        crate::outln!(
            "{:<44} {:<32} {:<8} {}",
            t.id,
            t.department,
            if t.has_source { "yes" } else { "-" },
            t.name
        )?;
        crate::outln!("    views: {}", views_line(&t.views))?;
    }
    Ok(())
}

/// One record type of `xgate types --json`, views included.
fn type_json(t: &RecordTypeInfo) -> serde_json::Value {
    let views: Vec<_> = t
        .views
        .iter()
        .map(|v| {
            let params: Vec<_> = v
                .params
                .iter()
                .map(|p| json!({"name": p.name, "type": param_type(p.r#type)}))
                .collect();
            json!({
                "name": v.name,
                "kind": if v.kind == ViewKind::Predicate as i32 { "predicate" } else { "fields" },
                "description": v.description,
                "fields": v.fields,
                "params": params,
            })
        })
        .collect();
    json!({
        "id": t.id,
        "name": t.name,
        "department": t.department,
        "has_source": t.has_source,
        "views": views,
    })
}

fn param_type(ty: i32) -> &'static str {
    match ViewParamType::try_from(ty) {
        Ok(ViewParamType::Integer) => "integer",
        _ => "string",
    }
}

/// A type's views on one line: `full`, field views with their fields in
/// brackets, predicates with their parameters in parentheses and a `?`
/// (they answer yes/no), e.g. `summary [name, gender] · age_at_least(n: integer)?`.
fn views_line(views: &[ViewInfo]) -> String {
    views
        .iter()
        .map(|v| {
            if v.kind == ViewKind::Predicate as i32 {
                let params: Vec<String> = v
                    .params
                    .iter()
                    .map(|p| format!("{}: {}", p.name, param_type(p.r#type)))
                    .collect();
                if params.is_empty() {
                    format!("{}?", v.name)
                } else {
                    format!("{}({})?", v.name, params.join(", "))
                }
            } else if v.name == xgate_catalog::FULL {
                v.name.clone()
            } else {
                format!("{} [{}]", v.name, v.fields.join(", "))
            }
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

/// The proto relation of a `--relation` value (clap admits only these).
fn relation(name: &str) -> Relation {
    match name {
        "spouse" => Relation::Spouse,
        "parent" => Relation::Parent,
        "child" => Relation::Child,
        "guardian" => Relation::Guardian,
        "attorney" => Relation::Attorney,
        _ => Relation::Unspecified,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xgate_proto::v1::RecordStatus;

    fn result(from_cache: bool, age_ms: u64) -> RecordResult {
        RecordResult {
            record_type: "driving_licence".into(),
            department: "public-security".into(),
            status: RecordStatus::Ok as i32,
            from_cache,
            age_ms,
            ..RecordResult::default()
        }
    }

    #[test]
    fn types_show_each_view_with_its_fields_or_parameters() {
        let catalog = xgate_catalog::Catalog::builtin().expect("catalog");
        let rt = catalog.record_type("real_estate_title").expect("type");
        let info = RecordTypeInfo {
            id: rt.id.clone(),
            views: rt.views().iter().map(xgate_proto::view::to_proto).collect(),
            ..RecordTypeInfo::default()
        };
        assert_eq!(
            views_line(&info.views),
            "full · summary [owner_name, address, city, district, area_m2] · exists? · \
             owns_property_in_city(city: string)? · owns_residential_property?"
        );
        let doc = type_json(&info);
        let views = doc["views"].as_array().expect("views");
        assert_eq!(views[1]["name"], "summary");
        assert_eq!(views[1]["kind"], "fields");
        assert_eq!(views[1]["fields"][0], "owner_name");
        assert_eq!(views[3]["kind"], "predicate");
        assert_eq!(
            views[3]["params"],
            json!([{"name": "city", "type": "string"}])
        );
    }

    #[test]
    fn cached_results_say_so_with_their_age() {
        assert!(row(&result(true, 42_500)).ends_with("0 record(s) (cached, 42 s old)"));
        assert!(row(&result(false, 0)).ends_with("0 record(s)"));
        let v = result_json(&result(true, 850), false);
        assert_eq!(v["from_cache"], true);
        assert_eq!(v["age_ms"], 850);
        assert_eq!(age(180_000), "3 min");
    }
}
