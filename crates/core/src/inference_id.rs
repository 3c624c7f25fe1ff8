//! The deterministic inference id.
//!
//! The id sent as `X-Amzn-SageMaker-Inference-Id` is derived from the object's identity, so
//! every delivery of the same S3 event computes the same id and the job table's conditional
//! write can refuse a second submission. SageMaker allows 1 to 64 printable ASCII characters
//! with no leading space; ours are `cochl-` plus 40 hex digits (160 bits of SHA-256).

use std::fmt;

use sha2::{Digest, Sha256};

use crate::job::ObjectVersion;

/// Prefix that makes our ids recognisable in SageMaker's logs and notifications.
pub const INFERENCE_ID_PREFIX: &str = "cochl-";

/// Longest inference id SageMaker accepts.
pub const MAX_INFERENCE_ID_LEN: usize = 64;

/// An inference id SageMaker accepts. Serialises as the bare string, as documents show it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct InferenceId(String);

/// Why a text is not a valid inference id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InferenceIdError {
    /// Empty, or longer than 64 characters.
    #[error("inference id must be 1 to 64 characters, got {0}")]
    Length(usize),
    /// Contains a character outside printable ASCII, or starts with a space.
    #[error("inference id {0:?} must be printable ASCII without a leading space")]
    Characters(String),
}

/// `cochl-` and the first 160 bits of a SHA-256 digest in hex.
fn hex_id(digest: &[u8]) -> String {
    let mut id = String::with_capacity(INFERENCE_ID_PREFIX.len() + 40);
    id.push_str(INFERENCE_ID_PREFIX);
    for byte in &digest[..20] {
        id.push_str(&format!("{byte:02x}"));
    }
    id
}

impl InferenceId {
    /// Derives the id of an upload from bucket, key and the upload's version.
    ///
    /// Each field is length-prefixed so no two identities share an input to the hash. The
    /// sequencer enters in its canonical form (trailing zeros trimmed), matching its equality.
    pub fn for_object(bucket: &str, key: &str, version: &ObjectVersion) -> Self {
        let mut hasher = Sha256::new();
        let (content_kind, content) = version.content_part();
        let order = match &version.sequencer {
            Some(sequencer) => format!("s:{}", sequencer.as_str().trim_end_matches('0')),
            None => format!("t:{}", version.event_time_ms),
        };
        for field in [bucket, key, content_kind, content, order.as_str()] {
            hasher.update((field.len() as u64).to_be_bytes());
            hasher.update(field.as_bytes());
        }
        InferenceId(hex_id(&hasher.finalize()))
    }

    /// Validates an id received from elsewhere (a notification, the table).
    pub fn parse(text: &str) -> Result<Self, InferenceIdError> {
        if text.is_empty() || text.len() > MAX_INFERENCE_ID_LEN {
            return Err(InferenceIdError::Length(text.chars().count()));
        }
        let printable = text.bytes().all(|b| (0x20..0x7f).contains(&b));
        if !printable || text.starts_with(' ') {
            return Err(InferenceIdError::Characters(text.to_string()));
        }
        Ok(InferenceId(text.to_string()))
    }

    /// The id as sent to SageMaker.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id of the `attempt`-th resubmission of this upload's request (after the earlier
    /// one expired in the endpoint's queue): the upload's own id plus `-r<attempt>`, so a
    /// late notification of an earlier attempt never settles the later one. Attempt 0 is the
    /// upload's own id. At most 64 characters: our ids are 46, and a foreign id is cut
    /// before the suffix.
    pub fn resubmission(&self, attempt: u32) -> InferenceId {
        let base = self.upload_id();
        if attempt == 0 {
            return InferenceId(base.to_string());
        }
        let suffix = format!("{RESUBMISSION_MARK}{attempt}");
        let room = MAX_INFERENCE_ID_LEN - suffix.len();
        let cut = base
            .char_indices()
            .nth(room)
            .map_or(base.len(), |(at, _)| at);
        InferenceId(format!("{}{suffix}", &base[..cut]))
    }

    /// The id of a reanalysis of this upload asked for by the backfill run `run` (an S3
    /// Batch Operations job id): a fresh id, different from the upload's and from any other
    /// run's, yet the same for every retry and duplicate of that run's task, so a run never
    /// starts two inferences of one file.
    pub fn reanalysis(&self, run: &str) -> InferenceId {
        let mut hasher = Sha256::new();
        for field in ["reanalysis", self.upload_id(), run] {
            hasher.update((field.len() as u64).to_be_bytes());
            hasher.update(field.as_bytes());
        }
        InferenceId(hex_id(&hasher.finalize()))
    }

    /// The upload's own id: this id without a resubmission suffix.
    fn upload_id(&self) -> &str {
        match self.0.rsplit_once(RESUBMISSION_MARK) {
            Some((base, attempt))
                if !base.is_empty()
                    && !attempt.is_empty()
                    && attempt.bytes().all(|b| b.is_ascii_digit()) =>
            {
                base
            }
            _ => &self.0,
        }
    }
}

/// Separates an upload's id from the number of a resubmission.
const RESUBMISSION_MARK: &str = "-r";

/// Read-only access to the validated text, so `Option<InferenceId>::as_deref()` gives the
/// `Option<&str>` that comparisons with notifications and documents want.
impl std::ops::Deref for InferenceId {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InferenceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resubmissions_number_the_upload_id() {
        let id = InferenceId::parse("cochl-0123456789abcdef0123456789abcdef01234567").unwrap();
        let first = id.resubmission(1);
        assert_eq!(first.as_str(), format!("{id}-r1"));
        assert_eq!(first.resubmission(2).as_str(), format!("{id}-r2"));
        assert_eq!(first.resubmission(0), id);
        assert_eq!(id.resubmission(0), id);
        let long = InferenceId::parse(&"x".repeat(64)).unwrap();
        let again = long.resubmission(3);
        assert_eq!(again.as_str().len(), 64);
        assert!(again.as_str().ends_with("-r3"));
        assert!(InferenceId::parse(again.as_str()).is_ok());
    }

    #[test]
    fn only_a_numbered_suffix_is_a_resubmission() {
        // `-r` and digits after a non-empty id: a resubmission, numbered afresh.
        let parse = |text: &str| InferenceId::parse(text).expect("valid");
        assert_eq!(parse("abc-r12").resubmission(3).as_str(), "abc-r3");
        assert_eq!(parse("abc-r7-r12").resubmission(0).as_str(), "abc-r7");
        // Anything else is part of the id: nothing before the mark, nothing or something
        // other than digits after it.
        for (text, next) in [
            ("-r5", "-r5-r1"),
            ("abc-r", "abc-r-r1"),
            ("abc-rx", "abc-rx-r1"),
            ("abc-r1x", "abc-r1x-r1"),
            ("abc", "abc-r1"),
        ] {
            assert_eq!(parse(text).resubmission(1).as_str(), next, "{text}");
            assert_eq!(parse(text).resubmission(0).as_str(), text, "{text}");
        }
    }

    #[test]
    fn an_id_reads_as_its_text() {
        let id = InferenceId::parse("cochl-1-r2").expect("valid");
        assert_eq!(&*id, "cochl-1-r2");
        assert_eq!(Some(id.clone()).as_deref(), Some("cochl-1-r2"));
        assert_eq!(id.len(), 10, "str methods through Deref");
        assert_eq!(id.to_string(), "cochl-1-r2");
        assert_eq!(serde_json::to_string(&id).expect("json"), r#""cochl-1-r2""#);
    }

    #[test]
    fn a_reanalysis_is_fresh_per_run_and_stable_within_one() {
        let id = InferenceId::parse("cochl-0123456789abcdef0123456789abcdef01234567").unwrap();
        let first = id.reanalysis("job-1");
        assert_ne!(first, id);
        assert_eq!(first, id.reanalysis("job-1"), "a retried task keeps its id");
        assert_ne!(first, id.reanalysis("job-2"), "another run gets another id");
        // A resubmission of the upload's request names the same upload.
        assert_eq!(id.resubmission(2).reanalysis("job-1"), first);
        assert!(first.as_str().starts_with(INFERENCE_ID_PREFIX));
        assert_eq!(first.as_str().len(), INFERENCE_ID_PREFIX.len() + 40);
        assert!(InferenceId::parse(first.as_str()).is_ok());
    }
    use crate::keys::Sequencer;
    use proptest::prelude::*;

    fn version(
        version_id: Option<&str>,
        etag: Option<&str>,
        sequencer: Option<&str>,
        time: i64,
    ) -> ObjectVersion {
        ObjectVersion {
            version_id: version_id.map(str::to_string),
            etag: etag.map(str::to_string),
            sequencer: sequencer.map(|s| Sequencer::parse(s).expect("hex")),
            event_time_ms: time,
        }
    }

    #[test]
    fn known_value_is_stable() {
        // Pinned so a change of the derivation (which would resubmit every file) is noticed.
        let id = InferenceId::for_object(
            "audio-bucket",
            "incoming/red flower.wav",
            &version(
                None,
                Some("9b2cf535f27731c974343645a3985328"),
                Some("0055AED6DCD90281E5"),
                0,
            ),
        );
        assert_eq!(id.as_str().len(), 46);
        assert!(id.as_str().starts_with("cochl-"));
        assert_eq!(id, InferenceId::parse(id.as_str()).expect("valid"));
        assert_eq!(
            id.as_str(),
            "cochl-ead451ffe6a07049ee98b084a2159ac605363867"
        );
    }

    #[test]
    fn every_identity_field_matters() {
        let base = version(None, Some("e1"), Some("0A"), 5);
        let id =
            |bucket: &str, key: &str, v: &ObjectVersion| InferenceId::for_object(bucket, key, v);
        let reference = id("b", "k", &base);
        assert_ne!(reference, id("c", "k", &base));
        assert_ne!(reference, id("b", "k2", &base));
        assert_ne!(
            reference,
            id("b", "k", &version(None, Some("e2"), Some("0A"), 5))
        );
        assert_ne!(
            reference,
            id("b", "k", &version(None, Some("e1"), Some("0B"), 5))
        );
        assert_ne!(
            reference,
            id("b", "k", &version(Some("v1"), Some("e1"), Some("0A"), 5))
        );
        // Event time only counts when there is no sequencer.
        assert_eq!(
            reference,
            id("b", "k", &version(None, Some("e1"), Some("0A"), 6))
        );
        assert_ne!(
            id("b", "k", &version(None, Some("e1"), None, 5)),
            id("b", "k", &version(None, Some("e1"), None, 6))
        );
        // Field boundaries cannot be shifted.
        assert_ne!(id("ab", "c", &base), id("a", "bc", &base));
    }

    #[test]
    fn padded_sequencers_give_the_same_id() {
        let a = InferenceId::for_object("b", "k", &version(None, Some("e"), Some("0A"), 1));
        let b = InferenceId::for_object("b", "k", &version(None, Some("e"), Some("0A000"), 1));
        assert_eq!(a, b);
    }

    #[test]
    fn parse_enforces_sagemaker_rules() {
        assert!(InferenceId::parse("a").is_ok());
        assert!(InferenceId::parse(&"x".repeat(64)).is_ok());
        assert_eq!(InferenceId::parse(""), Err(InferenceIdError::Length(0)));
        assert_eq!(
            InferenceId::parse(&"x".repeat(65)),
            Err(InferenceIdError::Length(65))
        );
        for bad in [" a", "a\tb", "café"] {
            assert!(
                matches!(
                    InferenceId::parse(bad),
                    Err(InferenceIdError::Characters(_))
                ),
                "{bad:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn ids_are_valid_and_deterministic(
            bucket in "[a-z0-9.-]{3,63}", key in any::<String>(),
            version_id in proptest::option::of(".{0,40}"), etag in proptest::option::of("[0-9a-f]{32}"),
            sequencer in proptest::option::of("[0-9A-F]{1,20}"), time in any::<i64>(),
        ) {
            let v = ObjectVersion {
                version_id, etag,
                sequencer: sequencer.map(|s| Sequencer::parse(&s).expect("hex")),
                event_time_ms: time,
            };
            let id = InferenceId::for_object(&bucket, &key, &v);
            prop_assert!(id.as_str().len() <= MAX_INFERENCE_ID_LEN);
            prop_assert_eq!(InferenceId::parse(id.as_str()), Ok(id.clone()));
            prop_assert_eq!(InferenceId::for_object(&bucket, &key, &v.clone()), id);
        }

        #[test]
        fn parse_accepts_exactly_what_sagemaker_does(
            text in prop_oneof![any::<String>(), "[ -~]{0,70}", " ?[!-~]{1,64}"]
        ) {
            // SageMaker's rule, spelled out: 1 to 64 bytes of printable ASCII (0x20 to 0x7e)
            // not starting with a space.
            let expected = if text.is_empty() || text.len() > 64 {
                Err(InferenceIdError::Length(text.chars().count()))
            } else if text.bytes().any(|b| !(b' '..=b'~').contains(&b)) || text.starts_with(' ') {
                Err(InferenceIdError::Characters(text.clone()))
            } else {
                Ok(text.clone())
            };
            prop_assert_eq!(InferenceId::parse(&text).map(|id| id.as_str().to_string()), expected);
        }
    }
}
