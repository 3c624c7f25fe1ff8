//! Opaque page cursors for the listings of the query API.
//!
//! A cursor carries DynamoDB's `LastEvaluatedKey` (the string attributes of the item a page
//! stopped at) back to the next request. It is the URL-safe base64 (no padding) of a small JSON
//! document holding a format version, the listing's scope (`tag:Siren`, `status:FAILED`), the
//! key, and a checksum: the first 16 hex digits of SHA-256 over version, scope and key.
//!
//! The checksum is not a secret signature: it catches cursors that were edited, truncated or
//! mixed up between listings, so they are refused as a client error instead of reaching
//! DynamoDB (which would answer a malformed start key with a `ValidationException`, i.e. a
//! 500). A client determined to forge a cursor can only forge a start position; the read side
//! ([`super::read`]) still checks that the key fits the listing it is used with.

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The key a cursor resumes from: attribute name to string value, in a fixed order.
pub type CursorKey = BTreeMap<String, String>;

/// Cursor format version; bump it when the document changes.
const VERSION: u32 = 1;

/// Longest cursor accepted. A key holds at most a 1024-byte S3 key (escaped in JSON at worst
/// six bytes a byte) plus short attributes, far below this.
pub const MAX_CURSOR_LEN: usize = 16 * 1024;

/// Hex digits of the checksum kept in a cursor.
const CHECKSUM_HEX: usize = 16;

/// Why a cursor was refused. Every variant is the client's mistake (a 400), never ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    /// Empty, or longer than any cursor we hand out.
    #[error("cursor is empty or longer than {MAX_CURSOR_LEN} characters")]
    Length,
    /// Not URL-safe base64 without padding.
    #[error("cursor is not valid URL-safe base64")]
    NotBase64,
    /// Decodes, but not to the document we write.
    #[error("cursor is malformed")]
    Malformed,
    /// Written by another format version.
    #[error("cursor has an unsupported version")]
    Version,
    /// The checksum does not match: edited or corrupted.
    #[error("cursor checksum does not match (edited or truncated)")]
    Checksum,
    /// Belongs to another listing (another tag, another status).
    #[error("cursor belongs to another listing")]
    OtherListing,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    v: u32,
    s: String,
    k: CursorKey,
    c: String,
}

fn checksum(scope: &str, key: &CursorKey) -> String {
    // Serialising strings and a map of strings cannot fail; an empty body would only make
    // every checksum equal, never accept a cursor of another listing (the scope is compared).
    let body = serde_json::to_vec(&(VERSION, scope, key)).unwrap_or_default();
    let digest = Sha256::digest(&body);
    digest
        .iter()
        .take(CHECKSUM_HEX / 2)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Encodes the key a listing stopped at as an opaque cursor bound to `scope`.
pub fn encode(scope: &str, key: &CursorKey) -> String {
    let document = Document {
        v: VERSION,
        s: scope.to_string(),
        k: key.clone(),
        c: checksum(scope, key),
    };
    let json = serde_json::to_vec(&document).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

/// Decodes a cursor of the listing `scope` back into its key.
///
/// Anything that is not exactly a cursor [`encode`] wrote for this scope is refused; whether
/// the key's attributes fit the listing is the caller's check.
pub fn decode(scope: &str, cursor: &str) -> Result<CursorKey, CursorError> {
    if cursor.is_empty() || cursor.len() > MAX_CURSOR_LEN {
        return Err(CursorError::Length);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| CursorError::NotBase64)?;
    let document: Document = serde_json::from_slice(&bytes).map_err(|_| CursorError::Malformed)?;
    if document.v != VERSION {
        return Err(CursorError::Version);
    }
    if document.c != checksum(&document.s, &document.k) {
        return Err(CursorError::Checksum);
    }
    if document.s != scope {
        return Err(CursorError::OtherListing);
    }
    Ok(document.k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key() -> CursorKey {
        [
            ("pk", "FILE#audio-bucket/incoming/red flower+1%.wav"),
            ("sk", "TAG#Siren#00000"),
            ("gsi1pk", "TAG#Siren"),
            (
                "gsi1sk",
                "2026-11-25T10:16:02.000Z#00112233445566778899aabb",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    #[test]
    fn round_trips_and_is_url_safe() {
        let cursor = encode("tag:Siren", &key());
        assert!(cursor
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(decode("tag:Siren", &cursor), Ok(key()));
    }

    #[test]
    fn refuses_other_listings_and_garbage() {
        let cursor = encode("tag:Siren", &key());
        assert_eq!(
            decode("tag:Speech", &cursor),
            Err(CursorError::OtherListing)
        );
        assert_eq!(decode("tag:Siren", ""), Err(CursorError::Length));
        assert_eq!(decode("tag:Siren", "%%%"), Err(CursorError::NotBase64));
        assert_eq!(
            decode("tag:Siren", &cursor[..cursor.len() - 4]),
            Err(CursorError::Malformed)
        );
        let not_json = URL_SAFE_NO_PAD.encode(b"hello");
        assert_eq!(decode("tag:Siren", &not_json), Err(CursorError::Malformed));
        let padded = format!("{cursor}=");
        assert_eq!(decode("tag:Siren", &padded), Err(CursorError::NotBase64));
        let long = "A".repeat(MAX_CURSOR_LEN + 1);
        assert_eq!(decode("tag:Siren", &long), Err(CursorError::Length));
    }

    #[test]
    fn refuses_an_edited_key_with_the_old_checksum() {
        let mut document: Document = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(encode("tag:Siren", &key()))
                .expect("base64"),
        )
        .expect("json");
        document
            .k
            .insert("pk".into(), "FILE#audio-bucket/other.wav".into());
        let forged = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&document).expect("json"));
        assert_eq!(decode("tag:Siren", &forged), Err(CursorError::Checksum));
        document.v = 2;
        let future = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&document).expect("json"));
        assert_eq!(decode("tag:Siren", &future), Err(CursorError::Version));
    }

    /// One edit of a cursor's text: replace, insert or delete a character, or truncate.
    #[derive(Debug, Clone)]
    enum Edit {
        Replace(usize, char),
        Insert(usize, char),
        Delete(usize),
        Truncate(usize),
    }

    fn edit() -> impl Strategy<Value = Edit> {
        let position = 0usize..4096;
        let character = prop_oneof![
            proptest::char::range('A', 'Z'),
            proptest::char::range('a', 'z'),
            proptest::char::range('0', '9'),
            Just('-'),
            Just('_'),
            Just('='),
            any::<char>(),
        ];
        prop_oneof![
            (position.clone(), character.clone()).prop_map(|(i, c)| Edit::Replace(i, c)),
            (position.clone(), character).prop_map(|(i, c)| Edit::Insert(i, c)),
            position.clone().prop_map(Edit::Delete),
            position.prop_map(Edit::Truncate),
        ]
    }

    fn apply(cursor: &str, edits: &[Edit]) -> String {
        let mut chars: Vec<char> = cursor.chars().collect();
        for edit in edits {
            let len = chars.len();
            match *edit {
                Edit::Replace(i, c) if len > 0 => chars[i % len] = c,
                Edit::Insert(i, c) => chars.insert(i % (len + 1), c),
                Edit::Delete(i) if len > 0 => {
                    chars.remove(i % len);
                }
                Edit::Truncate(i) => chars.truncate(i % (len + 1)),
                _ => {}
            }
        }
        chars.into_iter().collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn edited_cursors_are_refused_or_unchanged(edits in proptest::collection::vec(edit(), 1..4)) {
            let cursor = encode("tag:Siren", &key());
            let edited = apply(&cursor, &edits);
            if let Ok(decoded) = decode("tag:Siren", &edited) {
                prop_assert_eq!(decoded, key());
            }
        }

        /// Arbitrary text is refused, for the first reason that applies: its length, then
        /// not being URL-safe base64 (judged by the base64 crate, not by `decode`), then
        /// whatever the decoded bytes lack (a random text carries no valid checksum).
        #[test]
        fn arbitrary_text_is_refused_for_its_first_fault(text in any::<String>()) {
            let result = decode("status:FAILED", &text);
            if text.is_empty() || text.len() > MAX_CURSOR_LEN {
                prop_assert_eq!(result, Err(CursorError::Length));
            } else if URL_SAFE_NO_PAD.decode(&text).is_err() {
                prop_assert_eq!(result, Err(CursorError::NotBase64));
            } else {
                prop_assert!(result.is_err(), "{result:?}");
            }
        }

        /// Random bytes in valid base64 are refused: as malformed unless they happen to be
        /// JSON, and then still refused (no version, checksum or scope could match).
        #[test]
        fn arbitrary_base64_is_refused(bytes in proptest::collection::vec(any::<u8>(), 1..256)) {
            let result = decode("status:FAILED", &URL_SAFE_NO_PAD.encode(&bytes));
            if serde_json::from_slice::<serde_json::Value>(&bytes).is_err() {
                prop_assert_eq!(result, Err(CursorError::Malformed));
            } else {
                prop_assert!(result.is_err(), "{result:?}");
            }
        }
    }
}
