//! The table `make bench` prints, and the figures sections hand to each other (the cost
//! model reads the measured durations and memory).

use std::collections::BTreeMap;

/// One line of the table.
struct Row {
    section: String,
    measure: String,
    value: String,
    target: String,
    verdict: &'static str,
}

/// Rows in the order they were measured, and named figures.
#[derive(Default)]
pub struct Report {
    rows: Vec<Row>,
    figures: BTreeMap<String, f64>,
}

impl Report {
    /// A measured figure with its target (text, met) if it has one.
    pub fn row(
        &mut self,
        section: &str,
        measure: &str,
        value: String,
        target: Option<(String, bool)>,
    ) {
        let (target, verdict) = match target {
            Some((text, true)) => (text, "ok"),
            Some((text, false)) => (text, "MISSED"),
            None => (String::new(), ""),
        };
        eprintln!("  {section}: {measure}: {value} {target} {verdict}");
        self.rows.push(Row {
            section: section.into(),
            measure: measure.into(),
            value,
            target,
            verdict,
        });
    }

    /// A line without a target (context, assumptions).
    pub fn note_row(&mut self, section: &str, measure: &str, value: String) {
        self.row(section, measure, value, None);
    }

    /// Keeps a figure for a later section.
    pub fn record(&mut self, name: &str, value: f64) {
        self.figures.insert(name.into(), value);
    }

    /// A figure recorded earlier in this run.
    pub fn figure(&self, name: &str) -> Option<f64> {
        self.figures.get(name).copied()
    }

    /// The table, columns padded to their widest cell.
    pub fn render(&self) -> String {
        let header = ["section", "measure", "value", "target", ""];
        let cells: Vec<[&str; 5]> = self
            .rows
            .iter()
            .map(|r| {
                [
                    r.section.as_str(),
                    r.measure.as_str(),
                    r.value.as_str(),
                    r.target.as_str(),
                    r.verdict,
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for row in &cells {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let line = |row: &[&str; 5]| {
            let padded: Vec<String> = row
                .iter()
                .zip(widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            padded.join("  ").trim_end().to_string() + "\n"
        };
        let mut out = line(&header);
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        out.push_str(rule.join("  ").trim_end());
        out.push('\n');
        let mut previous = "";
        for row in &cells {
            if !previous.is_empty() && previous != row[0] {
                out.push('\n');
            }
            previous = row[0];
            out.push_str(&line(row));
        }
        out
    }
}

/// The median of some samples (the mean of the middle two for an even count).
pub fn median(samples: &[f64]) -> f64 {
    percentile(samples, 50.0)
}

/// A percentile by linear interpolation between closest ranks.
pub fn percentile(samples: &[f64], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = p / 100.0 * (sorted.len() - 1) as f64;
    let (low, high) = (rank.floor() as usize, rank.ceil() as usize);
    sorted[low] + (sorted[high] - sorted[low]) * (rank - low as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(percentile(&[0.0, 10.0], 95.0), 9.5);
        assert!(median(&[]).is_nan());
    }
}
