//! Deciding, from what HeadObject says, whether and how an upload is sent to Cochl.
//!
//! Pure: the size limits, the content type and the sensitivity header, or a rejection with a
//! stable code and a reason the user can act on (it is stored with the REJECTED job).

use crate::objects::ObjectHead;
use cochl_core::content_type::{resolve_content_type, ObjectFacts};
use cochl_core::sensitivity::{SensitivityConfig, SENSITIVITY_METADATA_KEY};

/// How an accepted upload is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The Cochl content type header.
    pub content_type: String,
    /// The custom attributes header, if any sensitivity is set.
    pub custom_attributes: Option<String>,
    /// Object size in bytes.
    pub size: u64,
}

/// Why an upload is not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Stable machine code (`empty_object`, `too_large`, `not_audio`, ...).
    pub code: &'static str,
    /// The reason, for people.
    pub reason: String,
    /// The object's size, when known.
    pub size: Option<u64>,
    /// The Content-Type it was uploaded with.
    pub content_type: Option<String>,
}

/// Checks an upload against the limits and resolves its content type and sensitivity: the
/// stack default, overlaid by the object's metadata, overlaid by `requested` (a backfill
/// run's sensitivity: the run was started to apply it, so it wins).
pub fn inspect(
    head: Option<&ObjectHead>,
    key: &str,
    default_sensitivity: &SensitivityConfig,
    requested: &SensitivityConfig,
    max_object_bytes: u64,
) -> Result<Plan, Rejection> {
    let Some(head) = head else {
        return Err(Rejection {
            code: "object_missing",
            reason: "the object no longer exists (deleted before it could be submitted)".into(),
            size: None,
            content_type: None,
        });
    };
    let reject = |code: &'static str, reason: String| Rejection {
        code,
        reason,
        size: Some(head.size),
        content_type: head.content_type.clone(),
    };
    if head.size == 0 {
        return Err(reject(
            "empty_object",
            "the object is empty (0 bytes)".into(),
        ));
    }
    if head.size > max_object_bytes {
        return Err(reject(
            "too_large",
            format!(
                "the object is {} bytes, over the limit of {max_object_bytes} bytes",
                head.size
            ),
        ));
    }
    let facts = ObjectFacts {
        content_type: head.content_type.as_deref(),
        key,
        metadata: &head.metadata,
    };
    let content_type = resolve_content_type(&facts).map_err(|r| reject(r.code(), r.to_string()))?;
    let file_sensitivity = match head.metadata.get(SENSITIVITY_METADATA_KEY) {
        Some(text) => SensitivityConfig::parse(text).map_err(|e| {
            reject(
                "invalid_sensitivity",
                format!("metadata {SENSITIVITY_METADATA_KEY}: {e}"),
            )
        })?,
        None => SensitivityConfig::default(),
    };
    let custom_attributes = default_sensitivity
        .merged_with(&file_sensitivity)
        .and_then(|merged| merged.merged_with(requested))
        .and_then(|merged| merged.to_custom_attributes())
        .map_err(|e| reject("invalid_sensitivity", e.to_string()))?;
    Ok(Plan {
        content_type: content_type.header_value(),
        custom_attributes,
        size: head.size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn head(size: u64, content_type: Option<&str>, metadata: &[(&str, &str)]) -> ObjectHead {
        ObjectHead {
            size,
            content_type: content_type.map(str::to_string),
            etag: Some("e".into()),
            version_id: None,
            last_modified_ms: None,
            metadata: metadata
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>(),
        }
    }

    fn none() -> SensitivityConfig {
        SensitivityConfig::default()
    }

    #[test]
    fn plain_wav_is_sent_without_custom_attributes() {
        let plan = inspect(
            Some(&head(10, Some("audio/wav"), &[])),
            "incoming/a.wav",
            &none(),
            &none(),
            100,
        )
        .expect("accepted");
        assert_eq!(
            plan,
            Plan {
                content_type: "audio/wav".into(),
                custom_attributes: None,
                size: 10
            }
        );
    }

    #[test]
    fn raw_pcm_content_type_is_canonicalised() {
        let plan = inspect(
            Some(&head(
                10,
                Some("Audio/X-Raw;channels=2; FORMAT=f32le ;rate=48000"),
                &[],
            )),
            "incoming/a.pcm",
            &none(),
            &none(),
            100,
        )
        .expect("accepted");
        assert_eq!(
            plan.content_type,
            "audio/x-raw; rate=48000; format=f32le; channels=2"
        );
    }

    #[test]
    fn file_sensitivity_overrides_the_stack_default_per_tag() {
        let stack = SensitivityConfig::parse(
            r#"{"default_sensitivity": 1, "tags_sensitivity": {"Siren": 2}}"#,
        )
        .expect("valid");
        let plan = inspect(
            Some(&head(
                10,
                None,
                &[("sensitivity", r#"{"tags_sensitivity": {"Siren": -1}}"#)],
            )),
            "incoming/a.mp3",
            &stack,
            &none(),
            100,
        )
        .expect("accepted");
        assert_eq!(plan.content_type, "audio/mp3");
        assert_eq!(
            plan.custom_attributes.as_deref(),
            Some(r#"{"default_sensitivity":1,"tags_sensitivity":{"Siren":-1}}"#)
        );
    }

    #[test]
    fn a_requested_sensitivity_wins_over_the_metadata_and_the_default() {
        let stack = SensitivityConfig::parse(
            r#"{"default_sensitivity": 1, "tags_sensitivity": {"Siren": 2, "Dog_bark": 1}}"#,
        )
        .expect("valid");
        let requested = SensitivityConfig::parse(
            r#"{"default_sensitivity": -2, "tags_sensitivity": {"Siren": 0}}"#,
        )
        .expect("valid");
        let plan = inspect(
            Some(&head(
                10,
                None,
                &[(
                    "sensitivity",
                    r#"{"tags_sensitivity": {"Siren": -1, "Glass_break": 2}}"#,
                )],
            )),
            "archive/a.wav",
            &stack,
            &requested,
            100,
        )
        .expect("accepted");
        // default: stack 1, request -2 → -2. Siren: stack 2, metadata -1, request 0 → 0.
        // Dog_bark: only the stack's (1). Glass_break: only the metadata's (2).
        assert_eq!(
            plan.custom_attributes.as_deref(),
            Some(
                r#"{"default_sensitivity":-2,"tags_sensitivity":{"Dog_bark":1,"Glass_break":2,"Siren":0}}"#
            )
        );
    }

    #[test]
    fn every_rejection_has_its_code() {
        let cases: Vec<(Option<ObjectHead>, &str, &str)> = vec![
            (None, "incoming/a.wav", "object_missing"),
            (
                Some(head(0, Some("audio/wav"), &[])),
                "incoming/a.wav",
                "empty_object",
            ),
            (
                Some(head(101, Some("audio/wav"), &[])),
                "incoming/a.wav",
                "too_large",
            ),
            (
                Some(head(10, Some("text/plain"), &[])),
                "incoming/a.txt",
                "not_audio",
            ),
            (
                Some(head(10, None, &[])),
                "incoming/noextension",
                "not_audio",
            ),
            (
                Some(head(10, None, &[])),
                "incoming/a.pcm",
                "raw_pcm_without_parameters",
            ),
            (
                Some(head(
                    10,
                    Some("audio/x-raw; rate=0; format=s16le; channels=1"),
                    &[],
                )),
                "incoming/a.pcm",
                "invalid_pcm_parameters",
            ),
            (
                Some(head(10, None, &[("cochl-content-type", "video/mp4")])),
                "incoming/a.wav",
                "invalid_content_type_override",
            ),
            (
                Some(head(
                    10,
                    None,
                    &[("sensitivity", r#"{"default_sensitivity": 7}"#)],
                )),
                "incoming/a.wav",
                "invalid_sensitivity",
            ),
            (
                Some(head(10, None, &[("sensitivity", "not json")])),
                "incoming/a.wav",
                "invalid_sensitivity",
            ),
        ];
        for (head, key, code) in cases {
            let rejection = inspect(head.as_ref(), key, &none(), &none(), 100).expect_err(code);
            assert_eq!(rejection.code, code, "{key}: {}", rejection.reason);
            assert!(!rejection.reason.is_empty());
        }
    }

    #[test]
    fn merged_sensitivity_over_the_header_limit_is_rejected() {
        let tags: Vec<String> = (0..30)
            .map(|i| format!("\"Stack_tag_{i:03}\": 1"))
            .collect();
        let stack =
            SensitivityConfig::parse(&format!("{{\"tags_sensitivity\": {{{}}}}}", tags.join(",")))
                .expect("fits alone");
        let file_tags: Vec<String> = (0..30).map(|i| format!("\"File_tag_{i:03}\": 1")).collect();
        let metadata = format!("{{\"tags_sensitivity\": {{{}}}}}", file_tags.join(","));
        let rejection = inspect(
            Some(&head(10, Some("audio/wav"), &[("sensitivity", &metadata)])),
            "incoming/a.wav",
            &stack,
            &none(),
            100,
        )
        .expect_err("too long together");
        assert_eq!(rejection.code, "invalid_sensitivity");
        assert!(rejection.reason.contains("1024"), "{}", rejection.reason);
    }
}
