//! Metrics as CloudWatch Embedded Metric Format (EMF) log lines: one JSON object per line
//! whose `_aws` member declares which of its fields are metrics. CloudWatch Logs turns them
//! into metrics without an API call (and without a `PutMetricData` permission).
//!
//! The namespace is fixed and the only dimension is the endpoint's name, so cardinality is
//! bounded by the stacks one account runs.

use serde_json::{json, Value};

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
}
