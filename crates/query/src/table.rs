//! Human-readable rendering of the query API's file document, as `make demo` and the `cochl`
//! CLI print it. It reads the JSON document (not [`crate::documents`]' types) because the CLI
//! has only what came over the wire.

use std::fmt::Write;

use serde_json::Value;

fn number(value: &Value) -> f64 {
    value.as_f64().unwrap_or(f64::NAN)
}

/// Renders a file document (`GET /files?uri=...`): a status line, then one row per tag
/// with its totals and segments in time order.
pub fn render_document(document: &Value) -> String {
    let mut out = String::new();
    let file = document["file"].as_str().unwrap_or("?");
    let status = document["status"].as_str().unwrap_or("?");
    let length = document
        .get("length_sec")
        .and_then(Value::as_f64)
        .map(|l| format!("  {l:.2} s"))
        .unwrap_or_default();
    let _ = writeln!(out, "{file}  {status}{length}");
    if let Some(reason) = document.get("reason").and_then(Value::as_str) {
        let code = document
            .get("reason_code")
            .and_then(Value::as_str)
            .unwrap_or("-");
        let _ = writeln!(out, "  reason ({code}): {reason}");
    }
    let tags = document["tags"].as_array().cloned().unwrap_or_default();
    if tags.is_empty() {
        if status == "COMPLETED" {
            out.push_str("  (no tags detected)\n");
        }
        return out;
    }
    let width = tags
        .iter()
        .filter_map(|t| t["name"].as_str())
        .map(str::len)
        .max()
        .unwrap_or(0)
        .max("tag".len());
    let _ = writeln!(
        out,
        "  {:<width$}  {:>6}  {:>7}  {:>7}  segments (start-end s, max/mean p)",
        "tag", "max p", "seconds", "windows"
    );
    for tag in &tags {
        let segments: Vec<String> = tag["segments"]
            .as_array()
            .map(|segments| {
                segments
                    .iter()
                    .map(|s| {
                        format!(
                            "{:.1}-{:.1} ({:.2}/{:.2})",
                            number(&s["start"]),
                            number(&s["end"]),
                            number(&s["max_probability"]),
                            number(&s["mean_probability"])
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {:<width$}  {:>6.3}  {:>7.1}  {:>7}  {}",
            tag["name"].as_str().unwrap_or("?"),
            number(&tag["max_probability"]),
            number(&tag["detected_seconds"]),
            tag["windows"].as_u64().unwrap_or(0),
            segments.join(", ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_one_row_per_tag_with_segments() {
        let document = json!({
            "file": "s3://b/incoming/a.wav", "status": "COMPLETED", "length_sec": 12.04,
            "inference_id": "cochl-1", "submitted_at": "t",
            "tags": [{"name": "Siren", "max_probability": 0.93, "detected_seconds": 7.0, "windows": 5,
                      "segments": [
                          {"start": 2.0, "end": 6.0, "max_probability": 0.93, "mean_probability": 0.81},
                          {"start": 6.0, "end": 9.0, "max_probability": 0.71, "mean_probability": 0.6849}]}]
        });
        let table = render_document(&document);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert_eq!(lines[0], "s3://b/incoming/a.wav  COMPLETED  12.04 s");
        assert!(lines[1].contains("max p") && lines[1].contains("segments"));
        assert!(lines[2].starts_with("  Siren"));
        assert!(lines[2].contains("0.930"));
        assert!(
            lines[2].contains("2.0-6.0 (0.93/0.81), 6.0-9.0 (0.71/0.68)"),
            "{}",
            lines[2]
        );
    }

    #[test]
    fn shows_reasons_and_empty_results() {
        let rejected = json!({"file": "s3://b/incoming/a.txt", "status": "REJECTED",
            "reason_code": "not_audio", "reason": "not an audio file", "tags": []});
        assert_eq!(
            render_document(&rejected),
            "s3://b/incoming/a.txt  REJECTED\n  reason (not_audio): not an audio file\n"
        );
        let silent = json!({"file": "s3://b/incoming/s.wav", "status": "COMPLETED", "length_sec": 3.0, "tags": []});
        assert_eq!(
            render_document(&silent),
            "s3://b/incoming/s.wav  COMPLETED  3.00 s\n  (no tags detected)\n"
        );
    }
}
