//! The bundled sample Cochl results merge into the detections a person reads off them.

use cochl_core::detections::{merge_windows, MergeOptions};
use cochl_core::result::CochlResult;

fn load(name: &str) -> CochlResult {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/results")
        .join(name);
    CochlResult::parse(&std::fs::read(path).expect("fixture")).expect("valid result")
}

fn spans(result: &CochlResult, margin: u32, tag: &str) -> Vec<(f64, f64)> {
    let options = MergeOptions {
        default_margin: margin,
        ..MergeOptions::default()
    };
    merge_windows(&result.data, &options)
        .into_iter()
        .find(|d| d.name == tag)
        .map(|d| d.segments.iter().map(|s| (s.start, s.end)).collect())
        .unwrap_or_default()
}

#[test]
fn reference_result_keeps_piano_below_one_half() {
    let result = load("reference-3s.json");
    let detections = merge_windows(&result.data, &MergeOptions::default());
    let names: Vec<&str> = detections.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["Drum", "Instrument", "Music", "Piano"]);
    assert_eq!(spans(&result, 0, "Piano"), vec![(1.0, 3.0)]);
}

#[test]
fn street_siren_splits_at_margin_zero_and_joins_at_one() {
    let result = load("street-12s.json");
    assert_eq!(spans(&result, 0, "Siren"), vec![(2.0, 6.0), (6.0, 9.0)]);
    assert_eq!(spans(&result, 1, "Siren"), vec![(2.0, 9.0)]);
    assert_eq!(spans(&result, 0, "Speech"), vec![(0.0, 3.0), (9.0, 12.0)]);
    assert!(spans(&result, 3, "Others").is_empty());
}
