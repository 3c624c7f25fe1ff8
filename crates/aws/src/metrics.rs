//! Metrics as CloudWatch Embedded Metric Format (EMF) log lines: one JSON object per line
//! whose `_aws` member declares which of its fields are metrics. CloudWatch Logs turns them
//! into metrics without an API call (and without a `PutMetricData` permission).
//!
//! The namespace is fixed and every dimension is bounded: the endpoint's name (one per
//! stack), a reason code (a closed set of codes in the code), and a tag name, capped by
//! [`tag_dimension`].

use std::collections::BTreeSet;
use std::sync::Mutex;

use serde_json::{json, Map, Value};

/// Namespace of every metric the functions emit (the template's alarms name it).
pub const NAMESPACE: &str = "CochlSense";

/// The admission-control line: `InFlightAtLimit` is 1 when a message was deferred because
/// the endpoint's in-flight count had reached the limit, 0 when a slot was granted;
/// `InFlight` is the count when known.
pub fn in_flight_line(
    endpoint: &str,
    at_limit: bool,
    in_flight: Option<u64>,
    timestamp_ms: i64,
) -> Value {
    let mut metrics = vec![json!({"Name": "InFlightAtLimit", "Unit": "Count"})];
    let mut line = json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["EndpointName"]],
                "Metrics": [],
            }],
        },
        "EndpointName": endpoint,
        "InFlightAtLimit": u8::from(at_limit),
    });
    if let Some(count) = in_flight {
        metrics.push(json!({"Name": "InFlight", "Unit": "Count"}));
        line["InFlight"] = json!(count);
    }
    line["_aws"]["CloudWatchMetrics"][0]["Metrics"] = Value::Array(metrics);
    line
}

/// What a metric counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Files, messages, windows.
    Count,
    /// A duration.
    Milliseconds,
    /// A size.
    Bytes,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Bytes => "Bytes",
        }
    }
}

/// One metric of a line: its name, value and unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metric<'a> {
    /// The metric's name in [`NAMESPACE`].
    pub name: &'a str,
    /// Its value.
    pub value: f64,
    /// Its unit.
    pub unit: Unit,
}

impl<'a> Metric<'a> {
    /// One of something.
    pub fn count(name: &'a str) -> Self {
        Metric {
            name,
            value: 1.0,
            unit: Unit::Count,
        }
    }
}

/// An EMF line: `metrics` under one dimension set made of every `dimensions` pair (none: the
/// metrics are the namespace's totals).
pub fn line(dimensions: &[(&str, &str)], metrics: &[Metric<'_>], timestamp_ms: i64) -> Value {
    let mut fields = Map::new();
    for (name, value) in dimensions {
        fields.insert((*name).to_string(), json!(value));
    }
    for metric in metrics {
        fields.insert(metric.name.to_string(), json!(metric.value));
    }
    let declared: Vec<Value> = metrics
        .iter()
        .map(|m| json!({"Name": m.name, "Unit": m.unit.as_str()}))
        .collect();
    let names: Vec<&str> = dimensions.iter().map(|(name, _)| *name).collect();
    fields.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [names],
                "Metrics": declared,
            }],
        }),
    );
    Value::Object(fields)
}

/// Distinct tag names one process reports as a dimension, at most.
pub const MAX_TAG_VALUES: usize = 100;
/// Where tags past the cap (or with a name no Cochl tag has) are counted.
pub const OTHER_TAG: &str = "Other";

/// The `Tag` dimension's value for a tag: its name while this process has reported fewer than
/// [`MAX_TAG_VALUES`] distinct names (Cochl's tags are a fixed vocabulary, so this is their
/// number in practice), [`OTHER_TAG`] beyond, and for a name that is not a plain tag name
/// (letters, digits, `_`, `-`, at most 64 characters): a result document cannot make the
/// metrics' cardinality grow without bound.
pub fn tag_dimension(name: &str) -> String {
    static SEEN: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let plain = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !plain {
        return OTHER_TAG.to_string();
    }
    let mut seen = SEEN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if seen.contains(name) || seen.len() < MAX_TAG_VALUES {
        seen.insert(name.to_string());
        name.to_string()
    } else {
        OTHER_TAG.to_string()
    }
}

/// Writes an EMF line: to stdout inside Lambda (where CloudWatch Logs reads it), to the debug
/// log elsewhere (tests and the local stack, which have no CloudWatch).
pub fn emit(line: &Value) {
    if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
        println!("{line}");
    } else {
        tracing::debug!(emf = %line, "metric");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_declared_metric_is_a_field_of_the_line() {
        for line in [
            in_flight_line("cochl-sense", true, Some(20), 1),
            in_flight_line("cochl-sense", false, None, 1),
        ] {
            let declared = &line["_aws"]["CloudWatchMetrics"][0];
            assert_eq!(declared["Namespace"], NAMESPACE);
            for dimension in declared["Dimensions"][0].as_array().unwrap() {
                assert!(line[dimension.as_str().unwrap()].is_string());
            }
            for metric in declared["Metrics"].as_array().unwrap() {
                assert!(line[metric["Name"].as_str().unwrap()].is_number(), "{line}");
            }
        }
        assert_eq!(in_flight_line("e", true, Some(20), 1)["InFlightAtLimit"], 1);
        assert_eq!(in_flight_line("e", false, Some(3), 1)["InFlight"], 3);
    }

    #[test]
    fn a_line_declares_its_dimensions_and_metrics() {
        let emitted = line(
            &[("Reason", "not_audio")],
            &[
                Metric::count("FilesRejected"),
                Metric {
                    name: "ResultBytes",
                    value: 2048.0,
                    unit: Unit::Bytes,
                },
            ],
            1_700_000_000_000,
        );
        let expected = json!({
            "_aws": {"Timestamp": 1_700_000_000_000_i64, "CloudWatchMetrics": [{
                "Namespace": "CochlSense",
                "Dimensions": [["Reason"]],
                "Metrics": [{"Name": "FilesRejected", "Unit": "Count"},
                            {"Name": "ResultBytes", "Unit": "Bytes"}]}]},
            "Reason": "not_audio",
            "FilesRejected": 1.0,
            "ResultBytes": 2048.0,
        });
        assert_eq!(emitted, expected);
        let totals = line(&[], &[Metric::count("FilesSubmitted")], 1);
        assert_eq!(
            totals["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([[]])
        );
    }

    #[test]
    fn the_tag_dimension_is_capped() {
        assert_eq!(tag_dimension("Siren"), "Siren");
        for odd in ["", "a b", "x\n", &"y".repeat(65), "ünï"] {
            assert_eq!(tag_dimension(odd), OTHER_TAG, "{odd:?}");
        }
        let names: Vec<String> = (0..2 * MAX_TAG_VALUES)
            .map(|i| format!("Tag_{i}"))
            .collect();
        let reported: BTreeSet<String> = names.iter().map(|n| tag_dimension(n)).collect();
        // Siren and the first names up to the cap keep their name; the rest are Other.
        assert!(reported.len() <= MAX_TAG_VALUES + 1, "{}", reported.len());
        assert!(reported.contains(OTHER_TAG));
        assert_eq!(
            tag_dimension("Siren"),
            "Siren",
            "a name seen before stays itself"
        );
    }
}
