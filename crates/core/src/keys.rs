//! S3 object keys, `s3://` URIs and S3 event sequencers.
//!
//! Three small value types sit between the events the functions receive and the
//! calls they make:
//!
//! - [`decode_event_key`] turns the URL-encoded key of an S3 event record
//!   (`red+flower.wav`, or moto's `a%2Fb+c.wav`) back into the real object key, with
//!   [`percent_decode`], the one strict form decoder (the query API decodes its query
//!   strings and path segments with it too).
//! - [`S3Uri`] is a validated `s3://bucket/key` location, the form SageMaker
//!   uses for `InputLocation`, `OutputLocation` and `FailureLocation`.
//! - [`Sequencer`] orders S3 events for the same key the way S3 documents it:
//!   right-pad the shorter value with zeros, then compare as strings.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest object key S3 accepts, in UTF-8 bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// Shortest bucket name S3 accepts.
pub const MIN_BUCKET_LEN: usize = 3;

/// Longest bucket name S3 accepts.
pub const MAX_BUCKET_LEN: usize = 63;

/// Why a key, URI or sequencer was refused.
///
/// Every variant names the offending part so that a log line alone is enough
/// to find the bad event or configuration value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The event carried an empty key; S3 never sends one, so the record is broken.
    #[error("S3 event key is empty")]
    EmptyEventKey,
    /// A `%` was not followed by two hex digits.
    #[error("invalid percent escape `{escape}` at byte {position} of the S3 event key")]
    InvalidEscape {
        /// Byte offset of the `%` in the raw key.
        position: usize,
        /// The escape as it appears in the raw key (up to three characters).
        escape: String,
    },
    /// The decoded bytes are not UTF-8, so they cannot be an S3 key.
    #[error(
        "S3 event key does not decode to UTF-8: invalid byte at byte {position} of the raw key"
    )]
    InvalidUtf8 {
        /// Byte offset in the raw key where the first invalid byte came from.
        position: usize,
    },
    /// The URI does not start with `s3://`.
    #[error("`{uri}` is not an S3 URI: it must start with `s3://`")]
    MissingScheme {
        /// The URI as given.
        uri: String,
    },
    /// The URI names a bucket but no object (`s3://bucket` or `s3://bucket/`).
    #[error("S3 URI `{uri}` has no object key")]
    MissingKey {
        /// The URI as given.
        uri: String,
    },
    /// The bucket name breaks S3's naming rules.
    #[error("invalid S3 bucket name `{bucket}`: {reason}")]
    InvalidBucket {
        /// The bucket name as given.
        bucket: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// The object key is empty.
    #[error("S3 object key is empty")]
    EmptyKey,
    /// The object key is longer than [`MAX_KEY_BYTES`].
    #[error("S3 object key is {len} bytes long; the limit is {MAX_KEY_BYTES}")]
    KeyTooLong {
        /// Length of the key in UTF-8 bytes.
        len: usize,
    },
    /// The sequencer is empty or holds something other than hex digits.
    #[error("invalid S3 sequencer `{value}`: {reason}")]
    InvalidSequencer {
        /// The sequencer as given.
        value: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
}

/// Why percent-encoded text could not be decoded. Positions are byte offsets in the encoded
/// text, so a message points at the culprit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PercentDecodeError {
    /// A `%` was not followed by two hex digits.
    #[error("malformed percent escape `{escape}` at byte {position} ('%' must be followed by two hex digits)")]
    InvalidEscape {
        /// Byte offset of the `%`.
        position: usize,
        /// The escape as it appears in the text (up to three characters).
        escape: String,
    },
    /// The decoded bytes are not UTF-8.
    #[error("percent-encoding does not decode to UTF-8 (invalid byte from byte {position})")]
    InvalidUtf8 {
        /// Byte offset in the encoded text where the first invalid byte came from.
        position: usize,
    },
}

impl From<PercentDecodeError> for KeyError {
    fn from(error: PercentDecodeError) -> Self {
        match error {
            PercentDecodeError::InvalidEscape { position, escape } => {
                KeyError::InvalidEscape { position, escape }
            }
            PercentDecodeError::InvalidUtf8 { position } => KeyError::InvalidUtf8 { position },
        }
    }
}

/// Decodes percent-encoded text: `%XX` (either hex case) is a byte and, when
/// `plus_is_space`, `+` is a space, as in `application/x-www-form-urlencoded` text (S3
/// event keys, query strings; a URL path keeps its `+`). Other characters are kept as they
/// are. The decoded bytes must form UTF-8.
///
/// Strict on purpose: a malformed escape or invalid UTF-8 is an error, never a replacement
/// character, because a key that decoded differently would name another object.
///
/// # Errors
/// [`PercentDecodeError::InvalidEscape`] for `%` not followed by two hex digits,
/// [`PercentDecodeError::InvalidUtf8`] when the decoded bytes are not UTF-8.
pub fn percent_decode(encoded: &str, plus_is_space: bool) -> Result<String, PercentDecodeError> {
    let bytes = encoded.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    // For each decoded byte, the encoded offset it came from (to report UTF-8 errors).
    let mut origin: Vec<usize> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' if plus_is_space => {
                out.push(b' ');
                origin.push(i);
                i += 1;
            }
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex_value);
                let lo = bytes.get(i + 2).copied().and_then(hex_value);
                match (hi, lo) {
                    (Some(hi), Some(lo)) => {
                        out.push((hi << 4) | lo);
                        origin.push(i);
                        i += 3;
                    }
                    _ => {
                        // `encoded[i..]` starts at an ASCII `%`, so slicing there is safe.
                        let escape: String = encoded[i..].chars().take(3).collect();
                        return Err(PercentDecodeError::InvalidEscape {
                            position: i,
                            escape,
                        });
                    }
                }
            }
            b => {
                out.push(b);
                origin.push(i);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|e| {
        let bad = e.utf8_error().valid_up_to();
        PercentDecodeError::InvalidUtf8 {
            position: origin.get(bad).copied().unwrap_or(0),
        }
    })
}

/// Decodes the object key of an S3 event record into the real key.
///
/// S3 (and moto) write `Records[].s3.object.key` in URL-encoded form style:
/// `+` stands for a space and `%XX` (either hex case) for a byte, so
/// `red flower.wav` arrives as `red+flower.wav`, a literal `+` as `%2B`, and
/// moto even encodes `/` as `%2F`. Using the raw key would address a different
/// (usually missing) object, so every handler goes through this function.
///
/// Characters that are not escaped are kept as they are. The decoded bytes must
/// form valid UTF-8.
///
/// # Errors
/// [`KeyError::EmptyEventKey`] for an empty input, [`KeyError::InvalidEscape`]
/// for `%` not followed by two hex digits, [`KeyError::InvalidUtf8`] when the
/// decoded bytes are not UTF-8.
pub fn decode_event_key(raw: &str) -> Result<String, KeyError> {
    if raw.is_empty() {
        return Err(KeyError::EmptyEventKey);
    }
    Ok(percent_decode(raw, true)?)
}

/// Encodes a key the way S3 writes it into event records (the inverse of
/// [`decode_event_key`]).
///
/// Exists so that tests and local emulators can build realistic event records:
/// a space becomes `+`, the unreserved characters `A-Z a-z 0-9 - _ . ~` stay,
/// and every other byte of the UTF-8 form becomes `%XX` (upper-case hex).
pub fn encode_event_key(key: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(key.len() * 3);
    for &b in key.as_bytes() {
        match b {
            b' ' => out.push('+'),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0x0F)]));
            }
        }
    }
    out
}

/// Form-encodes a query parameter value (`application/x-www-form-urlencoded`, the encoding
/// S3 uses for event keys), for links to the query API: `s3://b/a b.wav` becomes
/// `s3%3A%2F%2Fb%2Fa+b.wav`.
pub fn encode_query_value(value: &str) -> String {
    encode_event_key(value)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Checks a bucket name against the S3 naming rules this project relies on:
/// 3 to 63 characters, lowercase letters, digits, `.` and `-`, starting and
/// ending with a letter or digit.
///
/// Exists so that configuration values and URIs from notifications are checked
/// once, at the boundary, instead of failing later inside an SDK call.
///
/// # Errors
/// [`KeyError::InvalidBucket`] naming the bucket and the broken rule.
pub fn validate_bucket(bucket: &str) -> Result<(), KeyError> {
    let fail = |reason| {
        Err(KeyError::InvalidBucket {
            bucket: bucket.to_owned(),
            reason,
        })
    };
    let len = bucket.len();
    if len < MIN_BUCKET_LEN {
        return fail("shorter than 3 characters");
    }
    if len > MAX_BUCKET_LEN {
        return fail("longer than 63 characters");
    }
    if !bucket
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return fail("only lowercase letters, digits, '.' and '-' are allowed");
    }
    let edge_ok = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !edge_ok(bucket.bytes().next()) {
        return fail("must start with a lowercase letter or digit");
    }
    if !edge_ok(bucket.bytes().last()) {
        return fail("must end with a lowercase letter or digit");
    }
    Ok(())
}

/// Checks an object key: 1 to [`MAX_KEY_BYTES`] bytes of UTF-8.
///
/// Any character is legal in an S3 key (spaces, `+`, `%`, `?`, `#`, repeated
/// slashes, unicode), so only the length is checked.
///
/// # Errors
/// [`KeyError::EmptyKey`] or [`KeyError::KeyTooLong`].
pub fn validate_key(key: &str) -> Result<(), KeyError> {
    if key.is_empty() {
        return Err(KeyError::EmptyKey);
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(KeyError::KeyTooLong { len: key.len() });
    }
    Ok(())
}

/// What follows `s3://` (matched case-insensitively, as S3 tools accept `S3://`) in a
/// location: `bucket/key`, or for a prefix `bucket` or `bucket/prefix`.
///
/// # Errors
/// [`KeyError::MissingScheme`] naming the text.
pub fn strip_s3_scheme(uri: &str) -> Result<&str, KeyError> {
    match uri.get(..5) {
        Some(scheme) if scheme.eq_ignore_ascii_case("s3://") => Ok(&uri[5..]),
        _ => Err(KeyError::MissingScheme {
            uri: uri.to_owned(),
        }),
    }
}

/// A validated S3 object location, written `s3://bucket/key`.
///
/// SageMaker takes and returns locations in this form (`InputLocation`,
/// `OutputLocation`, `FailureLocation`); holding them as a checked type means a
/// job record can never point at a malformed location. The key is kept
/// verbatim: no percent-encoding is applied or removed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct S3Uri {
    bucket: String,
    key: String,
}

impl S3Uri {
    /// Builds a location from a bucket and an already decoded key.
    ///
    /// # Errors
    /// [`KeyError::InvalidBucket`], [`KeyError::EmptyKey`] or [`KeyError::KeyTooLong`].
    pub fn new(bucket: impl Into<String>, key: impl Into<String>) -> Result<Self, KeyError> {
        let bucket = bucket.into();
        let key = key.into();
        validate_bucket(&bucket)?;
        validate_key(&key)?;
        Ok(Self { bucket, key })
    }

    /// Parses `s3://bucket/key` (the scheme is matched case-insensitively).
    ///
    /// Everything after the first `/` following the bucket is the key, kept
    /// verbatim, so `s3://b//x` has the key `/x`.
    ///
    /// # Errors
    /// [`KeyError::MissingScheme`], [`KeyError::MissingKey`] for `s3://bucket`
    /// and `s3://bucket/`, or any error of [`S3Uri::new`].
    pub fn parse(uri: &str) -> Result<Self, KeyError> {
        match strip_s3_scheme(uri)?.split_once('/') {
            Some((bucket, key)) if !key.is_empty() => Self::new(bucket, key),
            _ => Err(KeyError::MissingKey {
                uri: uri.to_owned(),
            }),
        }
    }

    /// The bucket name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The object key, decoded and verbatim.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Splits the location into `(bucket, key)` without copying.
    pub fn into_parts(self) -> (String, String) {
        (self.bucket, self.key)
    }
}

impl fmt::Display for S3Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// The string conversions of a key type, all through its `parse` and `Display`: `str::parse`,
/// and the `try_from = "String", into = "String"` serde uses, so every way in is checked.
macro_rules! string_conversions {
    ($type:ty) => {
        impl FromStr for $type {
            type Err = KeyError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $type {
            type Error = KeyError;

            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl From<$type> for String {
            fn from(value: $type) -> Self {
                value.to_string()
            }
        }
    };
}

string_conversions!(S3Uri);

/// The `sequencer` of an S3 event record: a hex string that orders events for
/// the same key.
///
/// Delivery is at least once and unordered, so a handler that sees two events
/// for one key keeps the one with the greater sequencer. S3 documents the
/// comparison: right-pad the shorter value with `0`, then compare as strings.
/// Values are stored in upper case, so `0a` and `0A` are the same sequencer,
/// and equality follows the ordering (`0A` == `0A00`); hashing ignores trailing
/// zeros to stay consistent with that equality.
///
/// Sequencers only order events for the same key, and moto omits them: object
/// identity must not rely on them alone.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sequencer(String);

impl Sequencer {
    /// Parses a sequencer: non-empty, ASCII hex digits only (either case).
    ///
    /// # Errors
    /// [`KeyError::InvalidSequencer`] naming the value.
    pub fn parse(s: &str) -> Result<Self, KeyError> {
        if s.is_empty() {
            return Err(KeyError::InvalidSequencer {
                value: String::new(),
                reason: "empty",
            });
        }
        if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(KeyError::InvalidSequencer {
                value: s.to_owned(),
                reason: "only hex digits are allowed",
            });
        }
        Ok(Self(s.to_ascii_uppercase()))
    }

    /// The sequencer as stored (upper case, trailing zeros kept).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The value without trailing zeros: equal sequencers share it.
    fn significant(&self) -> &str {
        self.0.trim_end_matches('0')
    }
}

impl Ord for Sequencer {
    fn cmp(&self, other: &Self) -> Ordering {
        let a = self.0.as_bytes();
        let b = other.0.as_bytes();
        let len = a.len().max(b.len());
        for i in 0..len {
            let x = a.get(i).copied().unwrap_or(b'0');
            let y = b.get(i).copied().unwrap_or(b'0');
            match x.cmp(&y) {
                Ordering::Equal => {}
                unequal => return unequal,
            }
        }
        Ordering::Equal
    }
}

impl PartialOrd for Sequencer {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Sequencer {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Sequencer {}

impl Hash for Sequencer {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.significant().hash(state);
    }
}

impl fmt::Display for Sequencer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

string_conversions!(Sequencer);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::hash_map::DefaultHasher;

    fn hash_of<T: Hash>(t: &T) -> u64 {
        let mut h = DefaultHasher::new();
        t.hash(&mut h);
        h.finish()
    }

    // ---- decode_event_key -------------------------------------------------

    #[test]
    fn plus_is_space() {
        assert_eq!(
            decode_event_key("red+flower.wav").unwrap(),
            "red flower.wav"
        );
    }

    #[test]
    fn moto_encodes_slash() {
        assert_eq!(decode_event_key("a%2Fb+c.wav").unwrap(), "a/b c.wav");
        assert_eq!(decode_event_key("a%2fb").unwrap(), "a/b");
    }

    #[test]
    fn literal_plus_arrives_escaped() {
        assert_eq!(decode_event_key("%2B").unwrap(), "+");
        assert_eq!(decode_event_key("a%2Bb+c").unwrap(), "a+b c");
    }

    #[test]
    fn unicode_escapes_either_case() {
        assert_eq!(decode_event_key("caf%C3%A9.wav").unwrap(), "café.wav");
        assert_eq!(decode_event_key("caf%c3%a9.wav").unwrap(), "café.wav");
    }

    #[test]
    fn unescaped_characters_pass_through() {
        assert_eq!(
            decode_event_key("incoming/é x.wav").unwrap(),
            "incoming/é x.wav"
        );
        assert_eq!(decode_event_key("%25").unwrap(), "%");
    }

    #[test]
    fn empty_key_is_an_error() {
        assert_eq!(decode_event_key(""), Err(KeyError::EmptyEventKey));
    }

    #[test]
    fn invalid_escapes_are_named() {
        let cases = [
            ("%", 0, "%"),
            ("%2", 0, "%2"),
            ("%G1", 0, "%G1"),
            ("ab%1G", 2, "%1G"),
            ("a%+1", 1, "%+1"),
            ("x%é1", 1, "%é1"),
        ];
        for (raw, position, escape) in cases {
            assert_eq!(
                decode_event_key(raw),
                Err(KeyError::InvalidEscape {
                    position,
                    escape: escape.to_owned()
                }),
                "{raw}"
            );
        }
        let msg = decode_event_key("ab%G1").unwrap_err().to_string();
        assert!(msg.contains("%G1") && msg.contains("byte 2"), "{msg}");
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        // The position is in the raw key, not in the decoded bytes.
        let cases = [
            ("%FF", 0),
            ("ab+%C3", 3),
            ("%41%FF", 3),
            ("caf%C3%A9%FF", 9),
            ("a%C3%28", 1),
        ];
        for (raw, position) in cases {
            assert_eq!(
                decode_event_key(raw),
                Err(KeyError::InvalidUtf8 { position }),
                "{raw}"
            );
        }
    }

    #[test]
    fn percent_decode_is_strict_and_plus_is_optional() {
        assert_eq!(
            percent_decode("s3%3A%2F%2Fb%2Fa+b%2Bc%25%20%C3%BC", true),
            Ok("s3://b/a b+c% ü".to_string())
        );
        assert_eq!(percent_decode("a+b", false), Ok("a+b".to_string()));
        assert_eq!(percent_decode("", false), Ok(String::new()));
        assert!(matches!(
            percent_decode("%zz", true),
            Err(PercentDecodeError::InvalidEscape { position: 0, .. })
        ));
        assert!(matches!(
            percent_decode("%4", true),
            Err(PercentDecodeError::InvalidEscape { position: 0, .. })
        ));
        assert_eq!(
            percent_decode("%FF", true),
            Err(PercentDecodeError::InvalidUtf8 { position: 0 })
        );
    }

    #[test]
    fn query_values_are_form_encoded() {
        // The doc's example: a location as a query parameter of the query API.
        assert_eq!(
            encode_query_value("s3://b/a b.wav"),
            "s3%3A%2F%2Fb%2Fa+b.wav"
        );
        assert_eq!(encode_query_value("Siren"), "Siren");
        assert_eq!(encode_query_value(""), "");
    }

    #[test]
    fn a_location_splits_into_its_bucket_and_key() {
        let uri = S3Uri::parse("s3://bucket/incoming/a b.wav").unwrap();
        assert_eq!(
            uri.into_parts(),
            ("bucket".to_string(), "incoming/a b.wav".to_string())
        );
    }

    #[test]
    fn distinct_sequencers_hash_apart() {
        // Equal sequencers must hash alike (sequencer_equal_after_padding); different ones
        // should not all share one hash, or a set of them degrades to a list.
        let values = ["0", "1", "0A", "0B", "0A1", "0055AED6DCD90281E5", "FF"];
        let mut hashes: Vec<u64> = values.iter().map(|v| hash_of(&seq(v))).collect();
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(hashes.len(), values.len());
    }

    #[test]
    fn encode_examples() {
        assert_eq!(encode_event_key("red flower.wav"), "red+flower.wav");
        assert_eq!(encode_event_key("a/b+c"), "a%2Fb%2Bc");
        assert_eq!(encode_event_key("café"), "caf%C3%A9");
    }

    // ---- S3Uri --------------------------------------------------------------

    #[test]
    fn parse_and_display() {
        let uri = S3Uri::parse("s3://bucket/incoming/a.wav").unwrap();
        assert_eq!(uri.bucket(), "bucket");
        assert_eq!(uri.key(), "incoming/a.wav");
        assert_eq!(uri.to_string(), "s3://bucket/incoming/a.wav");
    }

    #[test]
    fn upper_case_scheme_is_accepted() {
        let uri = S3Uri::parse("S3://bucket/k").unwrap();
        assert_eq!(uri.to_string(), "s3://bucket/k");
    }

    #[test]
    fn keys_are_kept_verbatim() {
        for key in ["a b+c%20?x#y", "//double//slash", "é/日本.wav", "%2F", " "] {
            let uri = S3Uri::new("my-bucket.1", key).unwrap();
            assert_eq!(uri.key(), key);
            let text = uri.to_string();
            assert_eq!(text, format!("s3://my-bucket.1/{key}"));
            assert_eq!(text.parse::<S3Uri>().unwrap(), uri);
        }
    }

    #[test]
    fn missing_key_or_scheme() {
        for uri in ["s3://bucket", "s3://bucket/", "s3://"] {
            assert!(
                matches!(S3Uri::parse(uri), Err(KeyError::MissingKey { .. })),
                "{uri}"
            );
        }
        for uri in [
            "http://bucket/k",
            "s3:/bucket/k",
            "bucket/k",
            "",
            "s3:",
            "s4://b/k",
        ] {
            assert!(
                matches!(S3Uri::parse(uri), Err(KeyError::MissingScheme { .. })),
                "{uri}"
            );
        }
        // Multi-byte characters at the scheme boundary must not panic.
        assert!(S3Uri::parse("s3:é/x").is_err());
        assert!(S3Uri::parse("éééé").is_err());
    }

    #[test]
    fn key_length_limit() {
        let ok = "k".repeat(1024);
        assert_eq!(S3Uri::new("bucket", ok.clone()).unwrap().key(), ok);
        let too_long = "k".repeat(1025);
        assert_eq!(
            S3Uri::new("bucket", too_long.clone()),
            Err(KeyError::KeyTooLong { len: 1025 })
        );
        assert!(S3Uri::parse(&format!("s3://bucket/{too_long}")).is_err());
        // The limit counts bytes, not characters: 512 × 'é' = 1024 bytes.
        assert!(S3Uri::new("bucket", "é".repeat(512)).is_ok());
        assert!(S3Uri::new("bucket", format!("{}x", "é".repeat(512))).is_err());
        assert_eq!(S3Uri::new("bucket", ""), Err(KeyError::EmptyKey));
    }

    #[test]
    fn bucket_rules() {
        for good in ["abc", "a-b.c", "123", &"a".repeat(63), "my.bucket-2"] {
            assert!(validate_bucket(good).is_ok(), "{good}");
        }
        for bad in [
            "ab",
            "",
            &"a".repeat(64),
            "Bucket",
            "my_bucket",
            "-abc",
            "abc-",
            ".abc",
            "abc.",
            "a b",
            "bücket",
        ] {
            let err = S3Uri::new(bad, "k").unwrap_err();
            assert!(
                matches!(&err, KeyError::InvalidBucket { bucket, .. } if bucket == bad),
                "{bad}: {err:?}"
            );
            assert!(err.to_string().contains(bad));
            assert!(S3Uri::parse(&format!("s3://{bad}/k")).is_err(), "{bad}");
        }
    }

    #[test]
    fn serde_as_string() {
        let uri = S3Uri::new("bucket", "a b/c+d.wav").unwrap();
        let json = serde_json::to_string(&uri).unwrap();
        assert_eq!(json, r#""s3://bucket/a b/c+d.wav""#);
        assert_eq!(serde_json::from_str::<S3Uri>(&json).unwrap(), uri);
        assert!(serde_json::from_str::<S3Uri>(r#""s3://bucket""#).is_err());
        assert!(serde_json::from_str::<S3Uri>("17").is_err());
    }

    // ---- Sequencer ----------------------------------------------------------

    fn seq(s: &str) -> Sequencer {
        Sequencer::parse(s).unwrap()
    }

    #[test]
    fn sequencer_padding_order() {
        assert!(seq("0A") < seq("0A1"));
        assert!(seq("0A1") > seq("0A"));
        assert!(seq("0B") > seq("0A1"));
        assert!(seq("0055AED6DCD90281E5") < seq("0055AED6DCD90281E6"));
        assert!(seq("0055AED6DCD90281E5") < seq("0055AED6DCD90281E501"));
        assert!(seq("0055AED6DCD90281E5") > seq("0055AED6DCD9028"));
        // A plain length comparison would get this one wrong.
        assert!(seq("1") > seq("0FFFFF"));
    }

    #[test]
    fn sequencer_equal_after_padding() {
        assert_eq!(seq("0A"), seq("0A00"));
        assert_eq!(seq("0a"), seq("0A"));
        assert_eq!(seq("0"), seq("000"));
        assert_eq!(hash_of(&seq("0A")), hash_of(&seq("0a000")));
        assert_eq!(seq("0A").cmp(&seq("0A00")), Ordering::Equal);
        assert_ne!(seq("0A"), seq("0A01"));
    }

    #[test]
    fn sequencer_is_stored_upper_case() {
        assert_eq!(seq("0055aed6").as_str(), "0055AED6");
        assert_eq!(seq("0055aed6").to_string(), "0055AED6");
        assert_eq!("ab".parse::<Sequencer>().unwrap().as_str(), "AB");
    }

    #[test]
    fn sequencer_rejects_non_hex() {
        for bad in ["", "0G", "0x1F", " 1", "1 ", "é"] {
            let err = Sequencer::parse(bad).unwrap_err();
            assert!(matches!(&err, KeyError::InvalidSequencer { value, .. } if value == bad));
        }
    }

    #[test]
    fn sequencer_serde() {
        let s: Sequencer = serde_json::from_str(r#""0055aed6""#).unwrap();
        assert_eq!(s.as_str(), "0055AED6");
        assert_eq!(serde_json::to_string(&s).unwrap(), r#""0055AED6""#);
        assert!(serde_json::from_str::<Sequencer>(r#""zz""#).is_err());
    }

    // ---- properties ---------------------------------------------------------

    /// Form-encodes like S3 with a chosen hex case, independently of
    /// `encode_event_key`.
    fn form_encode(s: &str, upper: bool) -> String {
        let mut out = String::new();
        for &b in s.as_bytes() {
            if b == b' ' {
                out.push('+');
            } else if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                out.push(b as char);
            } else if upper {
                out.push_str(&format!("%{b:02X}"));
            } else {
                out.push_str(&format!("%{b:02x}"));
            }
        }
        out
    }

    /// Percent-decoding written the slow, obvious way: walk the characters; `%` must be
    /// followed by two hex digits, whose byte is taken; the bytes must be UTF-8. Errors
    /// name the encoded offset of the `%`, or of the escape or character that produced the
    /// first byte UTF-8 cannot accept.
    fn model_decode(text: &str, plus_is_space: bool) -> Result<String, PercentDecodeError> {
        let mut bytes: Vec<(usize, u8)> = Vec::new();
        let mut chars = text.char_indices();
        while let Some((at, c)) = chars.next() {
            match c {
                '+' if plus_is_space => bytes.push((at, b' ')),
                '%' => {
                    let hex: String = text[at + 1..].chars().take(2).collect();
                    if hex.len() != 2 || !hex.chars().all(|h| h.is_ascii_hexdigit()) {
                        return Err(PercentDecodeError::InvalidEscape {
                            position: at,
                            escape: format!("%{hex}"),
                        });
                    }
                    let byte = u8::from_str_radix(&hex, 16).expect("two hex digits");
                    bytes.push((at, byte));
                    chars.next();
                    chars.next();
                }
                other => {
                    let mut buffer = [0; 4];
                    for b in other.encode_utf8(&mut buffer).bytes() {
                        bytes.push((at, b));
                    }
                }
            }
        }
        let raw: Vec<u8> = bytes.iter().map(|(_, b)| *b).collect();
        match std::str::from_utf8(&raw) {
            Ok(decoded) => Ok(decoded.to_string()),
            Err(e) => Err(PercentDecodeError::InvalidUtf8 {
                position: bytes[e.valid_up_to()].0,
            }),
        }
    }

    fn reference_cmp(a: &str, b: &str) -> Ordering {
        let (a, b) = (a.to_ascii_uppercase(), b.to_ascii_uppercase());
        let len = a.len().max(b.len());
        let pad = |s: &str| format!("{s:0<len$}");
        pad(&a).cmp(&pad(&b))
    }

    fn arb_key_chars() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::collection::vec(any::<char>(), 1..64),
            prop::collection::vec(
                prop::sample::select(vec!['+', '%', ' ', '/', 'a', 'Z', '0', 'é', '日', '~']),
                1..32
            ),
        ]
        .prop_map(|v| v.into_iter().collect())
    }

    fn arb_bucket() -> impl Strategy<Value = String> {
        "[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
    }

    fn arb_sequencer() -> impl Strategy<Value = String> {
        prop_oneof![
            "[0-9A-Fa-f]{1,24}",
            "[01Aa]{1,6}",
            ("[0-9A-F]{1,6}", 0usize..4).prop_map(|(s, z)| format!("{s}{}", "0".repeat(z))),
        ]
    }

    proptest! {
        #[test]
        fn decode_inverts_form_encoding(s in arb_key_chars(), upper in any::<bool>()) {
            let encoded = form_encode(&s, upper);
            prop_assert_eq!(decode_event_key(&encoded), Ok(s.clone()));
            prop_assert_eq!(decode_event_key(&encode_event_key(&s)), Ok(s));
        }

        #[test]
        fn decode_of_text_without_escapes_is_the_text(raw in "[^%]{1,40}", plus in any::<bool>()) {
            // No `%`: nothing can fail, and only `+` (when it means a space) changes.
            let expected = if plus { raw.replace('+', " ") } else { raw.clone() };
            prop_assert_eq!(percent_decode(&raw, plus), Ok(expected));
            prop_assert_eq!(decode_event_key(&raw), Ok(raw.replace('+', " ")));
        }

        #[test]
        fn decode_agrees_with_a_character_by_character_model(
            raw in "[%+0-9a-fA-FgG/é]{0,12}", plus in any::<bool>()
        ) {
            prop_assert_eq!(percent_decode(&raw, plus), model_decode(&raw, plus));
            let expected = if raw.is_empty() {
                Err(KeyError::EmptyEventKey)
            } else {
                model_decode(&raw, true).map_err(KeyError::from)
            };
            prop_assert_eq!(decode_event_key(&raw), expected);
        }

        #[test]
        fn decode_of_any_text_agrees_with_the_model(text in any::<String>(), plus in any::<bool>()) {
            prop_assert_eq!(percent_decode(&text, plus), model_decode(&text, plus));
        }

        #[test]
        fn s3uri_round_trip(
            bucket in arb_bucket(),
            key in prop::collection::vec(any::<char>(), 1..=256)
                .prop_map(|v| v.into_iter().collect::<String>()),
        ) {
            prop_assume!(key.len() <= MAX_KEY_BYTES);
            let uri = S3Uri::new(bucket.clone(), key.clone()).unwrap();
            let text = uri.to_string();
            prop_assert_eq!(&text, &format!("s3://{bucket}/{key}"));
            let back = S3Uri::parse(&text).unwrap();
            prop_assert_eq!(back.bucket(), bucket.as_str());
            prop_assert_eq!(back.key(), key.as_str());
            let json = serde_json::to_string(&uri).unwrap();
            prop_assert_eq!(serde_json::from_str::<S3Uri>(&json).unwrap(), uri);
        }

        #[test]
        fn s3uri_parse_never_panics(raw in any::<String>()) {
            if let Ok(uri) = S3Uri::parse(&raw) {
                prop_assert!(validate_bucket(uri.bucket()).is_ok());
                prop_assert!(validate_key(uri.key()).is_ok());
            }
        }

        #[test]
        fn sequencer_matches_reference(a in arb_sequencer(), b in arb_sequencer()) {
            let (sa, sb) = (seq(&a), seq(&b));
            let expected = reference_cmp(&a, &b);
            prop_assert_eq!(sa.cmp(&sb), expected);
            prop_assert_eq!(sa.partial_cmp(&sb), Some(expected));
            prop_assert_eq!(sb.cmp(&sa), expected.reverse());
            prop_assert_eq!(sa == sb, expected == Ordering::Equal);
            if sa == sb {
                prop_assert_eq!(hash_of(&sa), hash_of(&sb));
            }
        }

        #[test]
        fn sequencer_trailing_zeros_do_not_matter(a in "[0-9A-F]{1,10}", za in 0usize..5, zb in 0usize..5) {
            let x = seq(&format!("{a}{}", "0".repeat(za)));
            let y = seq(&format!("{a}{}", "0".repeat(zb)));
            prop_assert_eq!(&x, &y);
            prop_assert_eq!(x.cmp(&y), Ordering::Equal);
            prop_assert_eq!(hash_of(&x), hash_of(&y));
        }

        #[test]
        fn sequencers_sort_as_their_padded_upper_case_text(
            values in prop::collection::vec(arb_sequencer(), 0..12)
        ) {
            // The expected order, built without `Sequencer`: upper-case each value and
            // right-pad it with zeros to the longest length, then sort the plain strings.
            let width = values.iter().map(String::len).max().unwrap_or(0);
            let padded = |s: &str| format!("{:0<width$}", s.to_ascii_uppercase());
            let mut expected: Vec<String> = values.iter().map(|s| padded(s)).collect();
            expected.sort();
            let mut sorted: Vec<Sequencer> = values.iter().map(|s| seq(s)).collect();
            sorted.sort();
            let got: Vec<String> = sorted.iter().map(|s| padded(s.as_str())).collect();
            prop_assert_eq!(got, expected);
            // `max` agrees, as "keep the greater sequencer" relies on it.
            let newest = values.iter().map(|s| seq(s)).max().map(|s| padded(s.as_str()));
            prop_assert_eq!(newest, values.iter().map(|s| padded(s)).max());
        }
    }
}
