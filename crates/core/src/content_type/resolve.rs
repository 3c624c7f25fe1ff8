//! The decision: which Cochl content type an uploaded object is sent with, or
//! why it is not sent at all.
//!
//! Three facts are consulted in a fixed order (the user's `cochl-content-type`
//! metadata, a specific audio Content-Type header, the key's extension) so the
//! same object always gets the same answer, whatever S3 client uploaded it.

use std::collections::HashMap;

use super::cochl_type::{container_alias, media_type_of, CochlContentType, ParseContentTypeError};
use super::raw_pcm::{parse_raw_pcm, PcmParamsError, RAW_PCM_MEDIA_TYPE};

/// The user metadata key whose value overrides every other clue
/// (S3 header `x-amz-meta-cochl-content-type`). Looked up ignoring case.
pub const CONTENT_TYPE_METADATA_KEY: &str = "cochl-content-type";

/// What S3 tells us about an uploaded object, borrowed from the adapter's
/// HeadObject/event data so the decision stays free of the AWS SDK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectFacts<'a> {
    /// The object's Content-Type header, if any: the second clue, used when it
    /// names a specific audio type.
    pub content_type: Option<&'a str>,
    /// The decoded object key: its extension is the last clue.
    pub key: &'a str,
    /// The object's user metadata (keys without the `x-amz-meta-` prefix),
    /// where the user's `cochl-content-type` override is looked up.
    pub metadata: &'a HashMap<String, String>,
}

/// Why an object will not be sent to Cochl.Sense; stored with the rejected job.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
pub enum ContentTypeRejection {
    /// Neither the Content-Type header nor the extension says audio.
    #[error(
        "not an audio file: key {key:?} has {} and {}; upload an audio file (mp3, wav, ogg, flac, m4a, ...) or set the cochl-content-type metadata",
        describe_extension(.extension),
        describe_content_type(.content_type)
    )]
    NotAudio {
        /// The object key, so the user knows which upload was refused.
        key: String,
        /// The key's extension without the dot, as written, if any: one of
        /// the two clues that said "not audio".
        extension: Option<String>,
        /// The Content-Type header seen, if any: the other clue.
        content_type: Option<String>,
    },
    /// A `.pcm`/`.raw` object without a raw PCM content type: its rate,
    /// format and channels are unknown and Cochl cannot auto-detect them.
    #[error(
        "raw PCM without parameters: key {key:?} has extension \".{extension}\" but no rate, format or channels, and auto-detect cannot read raw PCM; upload it with Content-Type audio/x-raw; rate=..; format=..; channels=.. or set the cochl-content-type metadata"
    )]
    RawPcmWithoutParameters {
        /// The object key, so the user knows which upload was refused.
        key: String,
        /// The key's extension without the dot, as written: what marked the
        /// object as raw PCM.
        extension: String,
    },
    /// The Content-Type header is `audio/x-raw` with bad parameters.
    #[error("invalid Content-Type {content_type:?}: {error}")]
    InvalidPcmParameters {
        /// The Content-Type header as received, echoed in the message.
        content_type: String,
        /// Which parameter is wrong, and how.
        error: PcmParamsError,
    },
    /// The `cochl-content-type` metadata is not a Cochl content type.
    #[error("invalid cochl-content-type metadata {value:?}: {error}; fix or remove the metadata")]
    InvalidContentTypeOverride {
        /// The metadata value as received, echoed in the message.
        value: String,
        /// Why it is not a Cochl content type.
        error: ParseContentTypeError,
    },
}

impl ContentTypeRejection {
    /// A stable machine code for dashboards, filters and tests; never changes
    /// when the wording of the message does.
    pub fn code(&self) -> &'static str {
        match self {
            ContentTypeRejection::NotAudio { .. } => "not_audio",
            ContentTypeRejection::RawPcmWithoutParameters { .. } => "raw_pcm_without_parameters",
            ContentTypeRejection::InvalidPcmParameters { .. } => "invalid_pcm_parameters",
            ContentTypeRejection::InvalidContentTypeOverride { .. } => {
                "invalid_content_type_override"
            }
        }
    }
}

/// The extension clue, as the not-audio message states it.
fn describe_extension(extension: &Option<String>) -> String {
    match extension {
        Some(ext) => format!("extension {:?}", format!(".{ext}")),
        None => "no extension".to_owned(),
    }
}

/// The Content-Type clue, as the not-audio message states it (blank counts as none).
fn describe_content_type(content_type: &Option<String>) -> String {
    match content_type {
        Some(ct) if !ct.trim().is_empty() => format!("Content-Type {ct:?}"),
        _ => "no Content-Type".to_owned(),
    }
}

/// The extension of the key's last path segment, without the dot, as
/// written. A leading dot (`dir/.wav`) or a trailing dot is no extension.
fn key_extension(key: &str) -> Option<&str> {
    let name = key.rsplit('/').next().unwrap_or(key);
    match name.rfind('.') {
        Some(dot) if dot > 0 && dot + 1 < name.len() => Some(&name[dot + 1..]),
        _ => None,
    }
}

/// The user's override value: the exact key wins, else the first matching
/// key in sort order (so the choice never depends on hash order).
fn metadata_override(metadata: &HashMap<String, String>) -> Option<&str> {
    if let Some(value) = metadata.get(CONTENT_TYPE_METADATA_KEY) {
        return Some(value);
    }
    metadata
        .iter()
        .filter(|(k, _)| k.trim().eq_ignore_ascii_case(CONTENT_TYPE_METADATA_KEY))
        .min_by(|a, b| a.0.cmp(b.0))
        .map(|(_, v)| v.as_str())
}

/// Decides the Cochl content type for an object: metadata override, then a
/// specific audio Content-Type header, then the key's extension.
///
/// A generic (`application/octet-stream`, `binary/octet-stream`, absent,
/// empty) or non-audio header falls through to the extension, because S3
/// clients often set wrong headers. Audio types Cochl has no name for
/// (FLAC, AAC, M4A, ...) are sent as `application/octet-stream`.
pub fn resolve_content_type(
    object: &ObjectFacts<'_>,
) -> Result<CochlContentType, ContentTypeRejection> {
    if let Some(value) = metadata_override(object.metadata) {
        return value.parse::<CochlContentType>().map_err(|error| {
            ContentTypeRejection::InvalidContentTypeOverride {
                value: value.to_owned(),
                error,
            }
        });
    }

    if let Some(header) = object.content_type {
        let media_type = media_type_of(header);
        if media_type == RAW_PCM_MEDIA_TYPE {
            return parse_raw_pcm(header)
                .map(CochlContentType::RawPcm)
                .map_err(|error| ContentTypeRejection::InvalidPcmParameters {
                    content_type: header.to_owned(),
                    error,
                });
        }
        if let Some(found) = container_alias(&media_type) {
            return Ok(found);
        }
        if let Some(subtype) = media_type.strip_prefix("audio/") {
            if !subtype.is_empty() && subtype != "*" {
                return Ok(CochlContentType::OctetStream);
            }
        }
    }

    let extension = key_extension(object.key);
    let lowered = extension.map(str::to_ascii_lowercase);
    match lowered.as_deref() {
        Some("mp3") => Ok(CochlContentType::Mp3),
        Some("wav" | "wave") => Ok(CochlContentType::Wav),
        Some("ogg" | "oga" | "opus") => Ok(CochlContentType::Ogg),
        Some("flac" | "m4a" | "aac" | "wma" | "aiff" | "aif" | "webm" | "mp4" | "amr" | "3gp") => {
            Ok(CochlContentType::OctetStream)
        }
        Some("pcm" | "raw") => Err(ContentTypeRejection::RawPcmWithoutParameters {
            key: object.key.to_owned(),
            extension: extension.unwrap_or_default().to_owned(),
        }),
        _ => Err(ContentTypeRejection::NotAudio {
            key: object.key.to_owned(),
            extension: extension.map(str::to_owned),
            content_type: object.content_type.map(str::to_owned),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content_type::testing::{content_type_strategy, meta, resolve, spec, ALIASES};
    use proptest::prelude::*;

    /// The stable rejection codes, spelled out: dashboards and the REJECTED jobs
    /// depend on them, so changing one must fail a test.
    const CODES: [&str; 4] = [
        "not_audio",
        "raw_pcm_without_parameters",
        "invalid_pcm_parameters",
        "invalid_content_type_override",
    ];

    fn no_meta() -> HashMap<String, String> {
        HashMap::new()
    }

    #[test]
    fn header_aliases_resolve() {
        let m = no_meta();
        // An octet-stream header says nothing about the bytes: it falls through
        // (generic_or_non_audio_header_falls_through_to_extension).
        let containers = ALIASES
            .into_iter()
            .filter(|(_, want)| *want != CochlContentType::OctetStream);
        let more = [
            ("Audio/MPEG; charset=binary", CochlContentType::Mp3),
            ("audio/ogg; codecs=opus", CochlContentType::Ogg),
            ("audio/flac", CochlContentType::OctetStream),
            ("audio/x-flac", CochlContentType::OctetStream),
            ("audio/aac", CochlContentType::OctetStream),
            ("audio/mp4", CochlContentType::OctetStream),
            ("audio/x-m4a", CochlContentType::OctetStream),
            ("audio/m4a", CochlContentType::OctetStream),
            ("audio/x-ms-wma", CochlContentType::OctetStream),
            ("audio/aiff", CochlContentType::OctetStream),
            ("audio/x-aiff", CochlContentType::OctetStream),
            ("audio/webm", CochlContentType::OctetStream),
            ("audio/amr", CochlContentType::OctetStream),
            ("AUDIO/Something-New", CochlContentType::OctetStream),
        ];
        for (header, want) in containers.chain(more) {
            // the key's extension says something else: the header must win
            assert_eq!(resolve(Some(header), "in/x.txt", &m), Ok(want), "{header}");
        }
    }

    #[test]
    fn raw_pcm_header_resolves_and_rejects() {
        let m = no_meta();
        assert_eq!(
            resolve(
                Some("audio/X-RAW;channels=2;rate=48000;format=S32LE"),
                "a.wav",
                &m
            ),
            Ok(CochlContentType::RawPcm(spec(48000, "s32le", 2)))
        );
        let header = "audio/x-raw; rate=48000; format=s32le; channels=40";
        let err = resolve(Some(header), "a.pcm", &m).unwrap_err();
        assert_eq!(err.code(), "invalid_pcm_parameters");
        assert_eq!(
            err,
            ContentTypeRejection::InvalidPcmParameters {
                content_type: header.into(),
                error: PcmParamsError::ChannelsOutOfRange { value: "40".into() },
            }
        );
        assert!(err.to_string().contains(header), "{err}");

        let err = resolve(Some("audio/x-raw"), "a.pcm", &m).unwrap_err();
        assert_eq!(err.code(), "invalid_pcm_parameters");
        assert_eq!(
            err,
            ContentTypeRejection::InvalidPcmParameters {
                content_type: "audio/x-raw".into(),
                error: PcmParamsError::MissingParameter { name: "rate" },
            }
        );
    }

    #[test]
    fn generic_or_non_audio_header_falls_through_to_extension() {
        let m = no_meta();
        for header in [
            None,
            Some(""),
            Some("   "),
            Some("application/octet-stream"),
            Some("binary/octet-stream"),
            Some("Binary/Octet-Stream"),
            Some("text/plain"),
            Some("text/plain; charset=utf-8"),
            Some("image/jpeg"),
            Some("application/json"),
            Some("audio/"),
            Some("audio/*"),
            Some("video/mp4"),
        ] {
            assert_eq!(resolve(header, "x/y.wav", &m), Ok(CochlContentType::Wav));
            assert_eq!(resolve(header, "x/y.MP3", &m), Ok(CochlContentType::Mp3));
            assert_eq!(
                resolve(header, "x/y.flac", &m),
                Ok(CochlContentType::OctetStream)
            );
        }
    }

    #[test]
    fn header_beats_extension() {
        let m = no_meta();
        for (header, key, want) in [
            ("audio/mpeg", "song.wav", CochlContentType::Mp3),
            ("audio/wav", "song.mp3", CochlContentType::Wav),
            ("audio/flac", "song.pcm", CochlContentType::OctetStream),
            // a wrong, non-audio header loses to the extension
            ("text/plain", "song.wav", CochlContentType::Wav),
        ] {
            assert_eq!(resolve(Some(header), key, &m), Ok(want), "{header} {key}");
        }
    }

    // ---- resolve_content_type: extension ----

    #[test]
    fn every_extension() {
        let m = no_meta();
        let cases: &[(&str, CochlContentType)] = &[
            ("mp3", CochlContentType::Mp3),
            ("wav", CochlContentType::Wav),
            ("wave", CochlContentType::Wav),
            ("ogg", CochlContentType::Ogg),
            ("oga", CochlContentType::Ogg),
            ("opus", CochlContentType::Ogg),
            ("flac", CochlContentType::OctetStream),
            ("m4a", CochlContentType::OctetStream),
            ("aac", CochlContentType::OctetStream),
            ("wma", CochlContentType::OctetStream),
            ("aiff", CochlContentType::OctetStream),
            ("aif", CochlContentType::OctetStream),
            ("webm", CochlContentType::OctetStream),
            ("mp4", CochlContentType::OctetStream),
            ("amr", CochlContentType::OctetStream),
            ("3gp", CochlContentType::OctetStream),
        ];
        for (ext, want) in cases {
            for key in [
                format!("clip.{ext}"),
                format!("a/b.c/clip.{}", ext.to_ascii_uppercase()),
                format!("dir/name.tar.{ext}"),
            ] {
                assert_eq!(resolve(None, &key, &m), Ok(*want), "{key}");
            }
        }
    }

    #[test]
    fn raw_extensions_need_parameters() {
        let m = no_meta();
        for key in ["in/a.pcm", "in/a.raw", "in/A.PCM", "in/a.Raw"] {
            let err = resolve(Some("application/octet-stream"), key, &m).unwrap_err();
            assert_eq!(err.code(), "raw_pcm_without_parameters", "{key}");
            let extension = key.rsplit('.').next().unwrap_or_default();
            assert_eq!(
                err,
                ContentTypeRejection::RawPcmWithoutParameters {
                    key: key.into(),
                    extension: extension.into(),
                }
            );
            // the key, and the two ways to say what the samples are
            let msg = err.to_string();
            assert!(msg.contains(key), "{msg}");
            assert!(msg.contains("audio/x-raw"), "{msg}");
            assert!(msg.contains("cochl-content-type"), "{msg}");
        }
        let err = resolve(None, "in/a.PCM", &m).unwrap_err();
        assert_eq!(
            err,
            ContentTypeRejection::RawPcmWithoutParameters {
                key: "in/a.PCM".into(),
                extension: "PCM".into()
            }
        );
        assert!(err.to_string().contains(".PCM"));
    }

    #[test]
    fn not_audio_names_extension_and_content_type() {
        let m = no_meta();
        for (header, key, extension) in [
            (Some("text/plain"), "notes/readme.txt", Some("txt")),
            (Some("application/json"), "x.json", Some("json")),
            (None, "pic.JPG", Some("JPG")),
            (Some("binary/octet-stream"), "noext", None),
            (Some(""), "dir/.wav", None),
            (None, "dir.wav/file", None),
            (None, "trailing.", None),
            (None, "", None),
        ] {
            let err = resolve(header, key, &m).unwrap_err();
            assert_eq!(err.code(), "not_audio", "{key}");
            assert_eq!(
                err,
                ContentTypeRejection::NotAudio {
                    key: key.into(),
                    extension: extension.map(str::to_owned),
                    content_type: header.map(str::to_owned),
                },
                "{key}"
            );
            // the message names the key and both clues it found
            let msg = err.to_string();
            assert!(msg.contains(key), "{msg}");
            if let Some(extension) = extension {
                assert!(msg.contains(&format!(".{extension}")), "{msg}");
            }
            if let Some(header) = header.filter(|h| !h.is_empty()) {
                assert!(msg.contains(header), "{msg}");
            }
        }
    }

    #[test]
    fn not_audio_messages_word_for_word() {
        let m = no_meta();
        let tail = "upload an audio file (mp3, wav, ogg, flac, m4a, ...) or set the cochl-content-type metadata";
        for (header, key, clues) in [
            (
                Some("text/plain"),
                "notes/readme.txt",
                r#"extension ".txt" and Content-Type "text/plain""#,
            ),
            (
                Some("  "),
                "notes/readme",
                "no extension and no Content-Type",
            ),
            (None, "x.JSON", r#"extension ".JSON" and no Content-Type"#),
        ] {
            let err = resolve(header, key, &m).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("not an audio file: key {key:?} has {clues}; {tail}")
            );
        }
    }

    #[test]
    fn key_extension_rules() {
        assert_eq!(key_extension("a/b.wav"), Some("wav"));
        assert_eq!(key_extension("a.b/c"), None);
        assert_eq!(key_extension("a/.wav"), None);
        assert_eq!(key_extension(".wav"), None);
        assert_eq!(key_extension("a/b."), None);
        assert_eq!(key_extension("a/b.tar.GZ"), Some("GZ"));
        assert_eq!(key_extension("a/"), None);
    }

    // ---- resolve_content_type: metadata override ----

    #[test]
    fn metadata_override_wins_over_header_and_extension() {
        let m = meta(CONTENT_TYPE_METADATA_KEY, "audio/ogg");
        assert_eq!(
            resolve(Some("audio/mpeg"), "a.wav", &m),
            Ok(CochlContentType::Ogg)
        );
        let m = meta(
            "Cochl-Content-Type",
            "audio/x-raw; rate=16000; format=s16le; channels=1",
        );
        assert_eq!(
            resolve(Some("audio/mpeg"), "a.pcm", &m),
            Ok(CochlContentType::RawPcm(spec(16000, "s16le", 1)))
        );
        let m = meta("COCHL-CONTENT-TYPE", "application/octet-stream");
        assert_eq!(
            resolve(None, "a.txt", &m),
            Ok(CochlContentType::OctetStream)
        );
        // the override also rescues a bad raw header
        let m = meta(CONTENT_TYPE_METADATA_KEY, "audio/wav");
        assert_eq!(
            resolve(Some("audio/x-raw; rate=0"), "a.raw", &m),
            Ok(CochlContentType::Wav)
        );
        // other metadata is ignored
        let m = meta("cochl-sensitivity", "2");
        assert_eq!(resolve(None, "a.wav", &m), Ok(CochlContentType::Wav));
    }

    #[test]
    fn metadata_override_accepts_every_alias() {
        for (alias, want) in ALIASES {
            let m = meta(CONTENT_TYPE_METADATA_KEY, alias);
            assert_eq!(
                resolve(Some("text/plain"), "x.txt", &m),
                Ok(want),
                "{alias}"
            );
        }
    }

    #[test]
    fn invalid_metadata_override_is_rejected_naming_value() {
        let unsupported = |value: &str| ParseContentTypeError::Unsupported {
            value: value.into(),
        };
        for (value, why) in [
            ("audio/flac", unsupported("audio/flac")),
            ("wav", unsupported("wav")),
            ("", ParseContentTypeError::Empty),
            (
                "audio/x-raw; rate=8000; format=s8le; channels=1",
                ParseContentTypeError::RawPcm(PcmParamsError::UnknownFormat {
                    value: "s8le".into(),
                }),
            ),
            (
                "audio/x-raw; rate=8000; format=s16le",
                ParseContentTypeError::RawPcm(PcmParamsError::MissingParameter {
                    name: "channels",
                }),
            ),
        ] {
            let m = meta("Cochl-Content-Type", value);
            let err = resolve(Some("audio/wav"), "a.wav", &m).unwrap_err();
            assert_eq!(err.code(), "invalid_content_type_override", "{value}");
            assert_eq!(
                err,
                ContentTypeRejection::InvalidContentTypeOverride {
                    value: value.into(),
                    error: why,
                }
            );
            // the message names the value and where it came from
            let msg = err.to_string();
            assert!(msg.contains(value), "{msg}");
            assert!(msg.contains("cochl-content-type"), "{msg}");
        }
    }

    #[test]
    fn metadata_key_choice_is_deterministic() {
        let mut m = HashMap::new();
        m.insert("Cochl-Content-Type".to_owned(), "audio/wav".to_owned());
        m.insert("cochl-content-type".to_owned(), "audio/mp3".to_owned());
        m.insert("COCHL-CONTENT-TYPE".to_owned(), "audio/ogg".to_owned());
        assert_eq!(resolve(None, "a.txt", &m), Ok(CochlContentType::Mp3));
        m.remove("cochl-content-type");
        // "COCHL-..." sorts before "Cochl-..."
        assert_eq!(resolve(None, "a.txt", &m), Ok(CochlContentType::Ogg));
    }

    #[test]
    fn rejection_codes_are_stable_and_distinct() {
        let m = no_meta();
        let bad_meta = meta(CONTENT_TYPE_METADATA_KEY, "text/plain");
        let rejections = [
            resolve(None, "a.txt", &m).unwrap_err(),
            resolve(None, "a.pcm", &m).unwrap_err(),
            resolve(Some("audio/x-raw; rate=1"), "a.pcm", &m).unwrap_err(),
            resolve(None, "a.wav", &bad_meta).unwrap_err(),
        ];
        let codes: Vec<&str> = rejections.iter().map(|r| r.code()).collect();
        assert_eq!(codes, CODES);
    }

    proptest! {
        #[test]
        fn prop_content_type_round_trips(ct in content_type_strategy()) {
            let header = ct.header_value();
            prop_assert_eq!(&header, &ct.to_string());
            prop_assert_eq!(header.parse::<CochlContentType>(), Ok(ct));
            // the override and the header both resolve to it
            let m = meta(CONTENT_TYPE_METADATA_KEY, &header);
            prop_assert_eq!(resolve(None, "x.txt", &m), Ok(ct));
            if ct != CochlContentType::OctetStream {
                prop_assert_eq!(resolve(Some(&header), "x.txt", &HashMap::new()), Ok(ct));
            }
        }

        #[test]
        fn prop_resolve_never_panics(
            content_type in proptest::option::of(any::<String>()),
            key in any::<String>(),
            meta_entries in prop::collection::hash_map(
                prop_oneof![Just("cochl-content-type".to_owned()), Just("Cochl-Content-Type".to_owned()), any::<String>()],
                any::<String>(),
                0..3,
            ),
        ) {
            let facts = ObjectFacts { content_type: content_type.as_deref(), key: &key, metadata: &meta_entries };
            if let Err(rejection) = resolve_content_type(&facts) {
                prop_assert!(CODES.contains(&rejection.code()));
                // The message quotes what the user must fix: the key, the header or the
                // metadata value (as `{:?}` writes it).
                let message = rejection.to_string();
                let named = match &rejection {
                    ContentTypeRejection::NotAudio { key: named, .. }
                    | ContentTypeRejection::RawPcmWithoutParameters { key: named, .. } => {
                        prop_assert_eq!(named, &key);
                        named
                    }
                    ContentTypeRejection::InvalidPcmParameters { content_type: named, .. } => {
                        prop_assert_eq!(Some(named.as_str()), content_type.as_deref());
                        named
                    }
                    ContentTypeRejection::InvalidContentTypeOverride { value: named, .. } => {
                        prop_assert!(meta_entries.values().any(|v| v == named));
                        named
                    }
                };
                prop_assert!(message.contains(&format!("{named:?}")), "{}", message);
            }
        }

    }
}
