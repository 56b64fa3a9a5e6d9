//! Conversions between JSON values and `google.protobuf.Struct`.
//!
//! Records travel from adapters as JSON bytes (validated against the catalog
//! schema as JSON, exactly) and reach approval systems as `Struct`s.

use prost_types::{ListValue, Struct, Value, value::Kind};

/// A JSON object as a `Struct`; `None` when `value` is not an object.
pub fn object_to_struct(value: serde_json::Value) -> Option<Struct> {
    match value {
        serde_json::Value::Object(map) => Some(map_to_struct(map)),
        _ => None,
    }
}

fn map_to_struct(map: serde_json::Map<String, serde_json::Value>) -> Struct {
    Struct {
        fields: map.into_iter().map(|(k, v)| (k, to_value(v))).collect(),
    }
}

/// A JSON value as a protobuf `Value`. Numbers become doubles (the only
/// number `Struct` has); integers beyond 2^53 lose precision, so catalog
/// schemas keep such identifiers as strings.
pub fn to_value(value: serde_json::Value) -> Value {
    let kind = match value {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(f64::NAN)),
        serde_json::Value::String(s) => Kind::StringValue(s),
        serde_json::Value::Array(items) => Kind::ListValue(ListValue {
            values: items.into_iter().map(to_value).collect(),
        }),
        serde_json::Value::Object(map) => Kind::StructValue(map_to_struct(map)),
    };
    Value { kind: Some(kind) }
}

/// A `Struct` back as a JSON object. Whole doubles print as integers.
pub fn struct_to_json(s: &Struct) -> serde_json::Value {
    serde_json::Value::Object(
        s.fields
            .iter()
            .map(|(k, v)| (k.clone(), from_value(v)))
            .collect(),
    )
}

/// A protobuf `Value` as JSON.
pub fn from_value(value: &Value) -> serde_json::Value {
    match &value.kind {
        None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
        Some(Kind::BoolValue(b)) => serde_json::Value::Bool(*b),
        Some(Kind::NumberValue(n)) => number(*n),
        Some(Kind::StringValue(s)) => serde_json::Value::String(s.clone()),
        Some(Kind::ListValue(list)) => {
            serde_json::Value::Array(list.values.iter().map(from_value).collect())
        }
        Some(Kind::StructValue(s)) => struct_to_json(s),
    }
}

fn number(n: f64) -> serde_json::Value {
    // 2^53: the largest range in which every integer is exact in an f64.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    if n.fract() == 0.0 && n.abs() <= EXACT {
        #[allow(clippy::cast_possible_truncation)]
        return serde_json::Value::from(n as i64);
    }
    serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, serde_json::Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_a_record() {
        let record = json!({
            "certificate_no": "皖(2021)亳州市不动产权第0012345号",
            "area_m2": 98.5,
            "floors": 3,
            "mortgaged": false,
            "co_owners": ["张三", "李四"],
            "address": {"city": "亳州市", "district": null}
        });
        let s = object_to_struct(record.clone()).expect("object");
        assert_eq!(struct_to_json(&s), record);
    }

    #[test]
    fn only_objects_become_structs() {
        assert!(object_to_struct(json!([1, 2])).is_none());
        assert!(object_to_struct(json!("x")).is_none());
    }
}
