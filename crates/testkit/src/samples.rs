//! The sample Lambda events in `events/` (the payloads `cargo lambda invoke` sends), so the
//! functions' parsers are tested against the very files developers invoke them with.

use serde_json::Value;

use crate::workspace_root;

/// The sample event `events/<name>` as JSON.
///
/// # Panics
/// When the file is missing or is not JSON: the samples are part of the repository, so
/// either is a broken checkout or a bad edit that the calling test should report.
pub fn event(name: &str) -> Value {
    let path = workspace_root().join("events").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("sample event {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("sample event {name} is not JSON: {e}"))
}
