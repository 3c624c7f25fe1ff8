//! Human-readable rendering of per-tag detections, as `make demo` prints them.

use std::fmt::Write;

use cochl_core::detections::TagDetection;

/// Renders detections as an aligned table, one row per tag, segments listed in time order.
pub fn render_detections(detections: &[TagDetection]) -> String {
    if detections.is_empty() {
        return "  (no tags detected)\n".to_string();
    }
    let width = detections
        .iter()
        .map(|d| d.name.len())
        .max()
        .unwrap_or(0)
        .max("tag".len());
    let mut out = String::new();
    let _ = writeln!(
        out,
        "  {:<width$}  {:>6}  {:>7}  {:>7}  segments (start-end s, max/mean p)",
        "tag", "max p", "seconds", "windows"
    );
    for detection in detections {
        let segments: Vec<String> = detection
            .segments
            .iter()
            .map(|s| {
                format!(
                    "{:.1}-{:.1} ({:.2}/{:.2})",
                    s.start, s.end, s.max_probability, s.mean_probability
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "  {:<width$}  {:>6.3}  {:>7.1}  {:>7}  {}",
            detection.name,
            detection.max_probability,
            detection.detected_seconds,
            detection.windows,
            segments.join(", ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use cochl_core::detections::Segment;

    #[test]
    fn renders_one_row_per_tag_with_segments() {
        let detections = vec![TagDetection {
            name: "Siren".into(),
            max_probability: 0.93,
            detected_seconds: 7.0,
            windows: 5,
            segments: vec![
                Segment {
                    start: 2.0,
                    end: 6.0,
                    max_probability: 0.93,
                    mean_probability: 0.81,
                    windows: 3,
                },
                Segment {
                    start: 6.0,
                    end: 9.0,
                    max_probability: 0.71,
                    mean_probability: 0.685,
                    windows: 2,
                },
            ],
        }];
        let table = render_detections(&detections);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].contains("max p") && lines[0].contains("segments"));
        assert!(lines[1].starts_with("  Siren"));
        assert!(lines[1].contains("0.930"));
        assert!(
            lines[1].contains("2.0-6.0 (0.93/0.81), 6.0-9.0 (0.71/0.69)"),
            "{}",
            lines[1]
        );
    }

    #[test]
    fn says_so_when_nothing_was_detected() {
        assert_eq!(render_detections(&[]), "  (no tags detected)\n");
    }
}
