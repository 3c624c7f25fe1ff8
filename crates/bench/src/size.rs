//! Binary size: the zips `make package` leaves in target/lambda/<binary>/bootstrap.zip.

use crate::report::Report;

/// The Lambda binaries whose zipped size the bench reports.
pub const BINARIES: [&str; 3] = ["cochl-submit", "cochl-on-result", "cochl-query"];
const TARGET_BYTES: u64 = 6_000_000;

/// Reports each zip against the target, or that `make package` must run first.
pub fn run(report: &mut Report) {
    let root = testkit::workspace_root();
    for binary in BINARIES {
        let zip = root
            .join("target/lambda")
            .join(binary)
            .join("bootstrap.zip");
        match std::fs::metadata(&zip) {
            Ok(meta) => {
                let modified = meta
                    .modified()
                    .ok()
                    .and_then(|m| m.elapsed().ok())
                    .map(|age| format!(", built {} min ago", age.as_secs() / 60))
                    .unwrap_or_default();
                report.row(
                    "size",
                    &format!("{binary} bootstrap.zip (arm64)"),
                    format!("{:.2} MB{modified}", meta.len() as f64 / 1e6),
                    Some(("< 6 MB".into(), meta.len() < TARGET_BYTES)),
                );
            }
            Err(_) => report.note_row(
                "size",
                &format!("{binary} bootstrap.zip"),
                "not built: run `make package` first (arm64, ~13 min cold)".into(),
            ),
        }
    }
}
