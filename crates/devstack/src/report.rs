//! `make demo`'s HTML report (`target/demo/report.html`): per file, the table the demo prints
//! and the timeline the query API draws (`GET /files/timeline.svg`), in one page that needs
//! nothing but a browser.

use std::fmt::Write as _;

use serde_json::Value;

use cochl_query::table::render_document;

/// One analysed file: its query document and its timeline SVG.
#[derive(Debug, Clone)]
pub struct ReportEntry {
    /// `GET /files?uri=` document.
    pub document: Value,
    /// `GET /files/timeline.svg?uri=` image.
    pub timeline: String,
}

/// Escapes text for HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The whole page.
pub fn render_report(entries: &[ReportEntry]) -> String {
    let mut html = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Cochl.Sense local demo</title>\
         <style>body{font-family:sans-serif;margin:2em}pre{background:#f6f6f6;padding:1em;overflow-x:auto}\
         section{margin-bottom:3em}</style></head><body>\n<h1>Cochl.Sense local demo</h1>\n\
         <p>Tags come from the local emulator's stand-in rule, not from Cochl's model.</p>\n",
    );
    for entry in entries {
        let file = entry.document["file"].as_str().unwrap_or("?");
        let status = entry.document["status"].as_str().unwrap_or("?");
        let _ = writeln!(
            html,
            "<section><h2>{}</h2><p>{}</p><pre>{}</pre>{}</section>",
            escape(file),
            escape(status),
            escape(&render_document(&entry.document)),
            entry.timeline
        );
    }
    html.push_str("</body></html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_file_has_its_table_and_its_timeline() {
        let entries = [ReportEntry {
            document: json!({"file": "s3://b/incoming/a<b>.wav", "status": "COMPLETED", "length_sec": 2.0, "tags": []}),
            timeline: "<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>".into(),
        }];
        let html = render_report(&entries);
        assert!(
            html.contains("<h2>s3://b/incoming/a&lt;b&gt;.wav</h2>"),
            "{html}"
        );
        assert!(html.contains("<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>"));
        assert!(html.contains("COMPLETED"));
        assert_eq!(html.matches("<section>").count(), 1);
    }
}
