//! Our own messages on the submit queue (a resubmission, a backfill request) travel beside S3's
//! notifications as `{"<member>": {...}}`: one top-level member whose name says the kind, so a
//! reader tells them apart from `{"Records": [...]}` without guessing from the fields.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// The message body `{"<member>": <value>}`.
pub(crate) fn to_body<T: Serialize>(member: &str, value: &T) -> String {
    let mut envelope = serde_json::Map::new();
    envelope.insert(
        member.to_string(),
        serde_json::to_value(value).unwrap_or(Value::Null),
    );
    Value::Object(envelope).to_string()
}

/// Reads a body's `member`: `None` when the body has none (another kind of message),
/// `Some(Err)` when it has one that does not read as `T`.
pub(crate) fn from_body<T: DeserializeOwned>(
    body: &Value,
    member: &str,
) -> Option<Result<T, serde_json::Error>> {
    body.get(member)
        .map(|inner| serde_json::from_value(inner.clone()))
}
