//! The closed set of content types Cochl.Sense accepts, and the aliases that name them.
//!
//! Clients spell the same container many ways (`audio/mpeg`, `audio/x-wav`,
//! `application/ogg`, ...); Cochl takes one spelling each. This file maps the
//! aliases onto [`CochlContentType`] and writes the one spelling back.

use std::fmt;
use std::str::FromStr;

use super::raw_pcm::{parse_raw_pcm, PcmParamsError, PcmSpec, RAW_PCM_MEDIA_TYPE};

/// The content type sent to Cochl.Sense with a request.
///
/// Exists so the rest of the pipeline handles one closed set of values the
/// model accepts, never a free-form header. It displays as the exact header
/// value to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CochlContentType {
    /// MPEG audio, which Cochl decodes when told `audio/mp3`.
    Mp3,
    /// RIFF/WAVE, which Cochl decodes when told `audio/wav`.
    Wav,
    /// An Ogg stream (Vorbis or Opus), which Cochl decodes when told `audio/ogg`.
    Ogg,
    /// `application/octet-stream`: audio in a container Cochl has no name for
    /// (FLAC, M4A, ...), left to the model's auto-detection (never raw PCM).
    OctetStream,
    /// Headerless samples, sent with the parameters the model cannot detect:
    /// `audio/x-raw; rate=..; format=..; channels=..`.
    RawPcm(PcmSpec),
}

impl CochlContentType {
    /// The exact header value to send, e.g. `audio/mp3` or
    /// `audio/x-raw; rate=22050; format=s24le; channels=1`.
    pub fn header_value(&self) -> String {
        self.to_string()
    }

    /// The media type without parameters (`audio/x-raw` for raw PCM), which
    /// is the whole header value for every other type.
    fn media_type(&self) -> &'static str {
        match self {
            CochlContentType::Mp3 => "audio/mp3",
            CochlContentType::Wav => "audio/wav",
            CochlContentType::Ogg => "audio/ogg",
            CochlContentType::OctetStream => "application/octet-stream",
            CochlContentType::RawPcm(_) => RAW_PCM_MEDIA_TYPE,
        }
    }
}

impl fmt::Display for CochlContentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CochlContentType::RawPcm(spec) => spec.fmt(f),
            other => f.write_str(other.media_type()),
        }
    }
}

/// Why a string is not a Cochl content type (see [`CochlContentType::from_str`]),
/// kept apart from the rejection so the override and the header can share it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
pub enum ParseContentTypeError {
    /// The value is empty or only whitespace.
    #[error("empty content type (expected audio/mp3, audio/wav, audio/ogg, application/octet-stream or audio/x-raw; rate=..; format=..; channels=..)")]
    Empty,
    /// The media type is not one Cochl accepts nor an alias of one.
    #[error("unsupported content type {value:?} (expected audio/mp3, audio/wav, audio/ogg, application/octet-stream to let Cochl auto-detect, or audio/x-raw; rate=..; format=..; channels=..)")]
    Unsupported {
        /// The value as written (trimmed), echoed in the message.
        value: String,
    },
    /// An `audio/x-raw` value with bad parameters.
    #[error(transparent)]
    RawPcm(#[from] PcmParamsError),
}

/// Media types meaning MP3 (lower case).
pub(super) const MP3_ALIASES: [&str; 5] = [
    "audio/mp3",
    "audio/mpeg",
    "audio/mpeg3",
    "audio/x-mp3",
    "audio/x-mpeg",
];
/// Media types meaning WAV (lower case).
pub(super) const WAV_ALIASES: [&str; 4] =
    ["audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"];
/// Media types meaning Ogg (lower case).
pub(super) const OGG_ALIASES: [&str; 4] =
    ["audio/ogg", "audio/opus", "audio/vorbis", "application/ogg"];
/// Media types meaning "some bytes" (lower case): only an explicit choice of
/// auto-detection, never evidence of audio.
pub(super) const OCTET_STREAM_ALIASES: [&str; 2] =
    ["application/octet-stream", "binary/octet-stream"];

/// The lower-cased, trimmed media type of a header value (parameters dropped),
/// the form the alias lists are written in.
pub(super) fn media_type_of(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Maps an MP3/WAV/Ogg alias (already lower-cased) to its Cochl type.
pub(super) fn container_alias(media_type: &str) -> Option<CochlContentType> {
    if MP3_ALIASES.contains(&media_type) {
        Some(CochlContentType::Mp3)
    } else if WAV_ALIASES.contains(&media_type) {
        Some(CochlContentType::Wav)
    } else if OGG_ALIASES.contains(&media_type) {
        Some(CochlContentType::Ogg)
    } else {
        None
    }
}

impl FromStr for CochlContentType {
    type Err = ParseContentTypeError;

    /// Parses a header value: the canonical forms, the MP3/WAV/Ogg aliases
    /// (`audio/mpeg`, `audio/x-wav`, `application/ogg`, ...),
    /// `binary/octet-stream`, and raw PCM via [`parse_raw_pcm`]. Case is
    /// ignored; parameters are ignored except on `audio/x-raw`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let media_type = media_type_of(s);
        if media_type.is_empty() {
            return Err(ParseContentTypeError::Empty);
        }
        if media_type == RAW_PCM_MEDIA_TYPE {
            return Ok(CochlContentType::RawPcm(parse_raw_pcm(s)?));
        }
        if OCTET_STREAM_ALIASES.contains(&media_type.as_str()) {
            return Ok(CochlContentType::OctetStream);
        }
        container_alias(&media_type).ok_or(ParseContentTypeError::Unsupported {
            value: s.trim().to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content_type::testing::{spec, ALIASES};

    #[test]
    fn canonical_header_values() {
        assert_eq!(CochlContentType::Mp3.header_value(), "audio/mp3");
        assert_eq!(CochlContentType::Wav.header_value(), "audio/wav");
        assert_eq!(CochlContentType::Ogg.header_value(), "audio/ogg");
        assert_eq!(
            CochlContentType::OctetStream.header_value(),
            "application/octet-stream"
        );
        let raw = CochlContentType::RawPcm(spec(22050, "s24le", 1));
        assert_eq!(
            raw.header_value(),
            "audio/x-raw; rate=22050; format=s24le; channels=1"
        );
        assert_eq!(raw.to_string(), raw.header_value());
        assert_eq!(raw.media_type(), "audio/x-raw");
    }

    #[test]
    fn the_alias_table_covers_every_alias() {
        let mut listed: Vec<&str> = ALIASES.iter().map(|(alias, _)| *alias).collect();
        let mut known: Vec<&str> = MP3_ALIASES
            .iter()
            .chain(&WAV_ALIASES)
            .chain(&OGG_ALIASES)
            .chain(&OCTET_STREAM_ALIASES)
            .copied()
            .collect();
        listed.sort_unstable();
        known.sort_unstable();
        assert_eq!(listed, known);
    }

    #[test]
    fn from_str_accepts_every_alias() {
        for (text, want) in ALIASES {
            assert_eq!(text.parse::<CochlContentType>(), Ok(want), "{text}");
            let upper = text.to_ascii_uppercase();
            assert_eq!(upper.parse::<CochlContentType>(), Ok(want), "{upper}");
            let with_params = format!("  {text} ; charset=binary");
            assert_eq!(
                with_params.parse::<CochlContentType>(),
                Ok(want),
                "{with_params}"
            );
        }
    }

    #[test]
    fn every_alias_is_sent_as_its_canonical_header() {
        // Alias as a client writes it, and the one header value Cochl is sent for it,
        // spelled out: nothing here comes from the parser or the alias lists.
        let expected = [
            ("audio/mp3", "audio/mp3"),
            ("audio/mpeg", "audio/mp3"),
            ("audio/mpeg3", "audio/mp3"),
            ("audio/x-mp3", "audio/mp3"),
            ("audio/x-mpeg", "audio/mp3"),
            ("audio/wav", "audio/wav"),
            ("audio/x-wav", "audio/wav"),
            ("audio/wave", "audio/wav"),
            ("audio/vnd.wave", "audio/wav"),
            ("audio/ogg", "audio/ogg"),
            ("audio/opus", "audio/ogg"),
            ("audio/vorbis", "audio/ogg"),
            ("application/ogg", "audio/ogg"),
            ("application/octet-stream", "application/octet-stream"),
            ("binary/octet-stream", "application/octet-stream"),
            ("AUDIO/X-WAV; codecs=1", "audio/wav"),
        ];
        for (alias, header) in expected {
            let parsed = alias.parse::<CochlContentType>();
            assert_eq!(
                parsed.as_ref().map(CochlContentType::header_value),
                Ok(header.to_string()),
                "{alias}"
            );
        }
        assert_eq!(expected.len() - 1, ALIASES.len(), "one row per alias");
    }

    #[test]
    fn from_str_rejects_unsupported_and_empty() {
        let err = "audio/flac".parse::<CochlContentType>().unwrap_err();
        assert_eq!(
            err,
            ParseContentTypeError::Unsupported {
                value: "audio/flac".into()
            }
        );
        assert!(err.to_string().contains("audio/flac"));
        assert_eq!(
            "  ".parse::<CochlContentType>(),
            Err(ParseContentTypeError::Empty)
        );
        assert_eq!(
            "mp3".parse::<CochlContentType>(),
            Err(ParseContentTypeError::Unsupported {
                value: "mp3".into()
            })
        );
        assert_eq!(
            "audio/x-raw; rate=0; format=s16le; channels=1".parse::<CochlContentType>(),
            Err(ParseContentTypeError::RawPcm(
                PcmParamsError::RateOutOfRange { value: "0".into() }
            ))
        );
    }
}
