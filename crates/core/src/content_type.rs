//! Which Cochl.Sense content type to send for an uploaded S3 object.
//!
//! Cochl.Sense needs a content type with every request (reference §1): one of
//! `audio/mp3`, `audio/wav`, `audio/ogg`, `application/octet-stream` (the model
//! auto-detects the format) or raw PCM described by
//! `audio/x-raw; rate=..; format=..; channels=..`. S3 objects arrive with a
//! Content-Type header that clients often get wrong or leave generic, so the
//! decision is made here, deterministically, from three facts in this order:
//!
//! 1. the user metadata `cochl-content-type` (an explicit override),
//! 2. the object's Content-Type header when it names a specific audio type,
//! 3. the key's extension.
//!
//! Anything that cannot be sent is a [`ContentTypeRejection`] with a stable
//! machine code and a reason a user can act on.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

/// How a sample's bits encode its amplitude: the part of a raw PCM format name
/// before the bit count (`s`, `u` or `f`). Headerless bytes cannot say it, so it
/// is fixed by the format the uploader names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SampleEncoding {
    /// Two's complement integers, zero is silence (`s..` formats).
    Signed,
    /// Offset binary integers, the midpoint is silence (`u..` formats).
    Unsigned,
    /// IEEE 754 floating point (`f..` formats).
    Float,
}

/// Which byte of a multi-byte sample comes first: the name's `le`/`be` suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ByteOrder {
    /// Least significant byte first (`..le` formats).
    Little,
    /// Most significant byte first (`..be` formats).
    Big,
}

/// A sample encoding Cochl.Sense accepts for raw PCM (the `format=` parameter).
///
/// Exists so that a raw PCM content type can only name a format the model
/// understands. Only the rows of [`PcmFormat::ALL`] exist (the fields are
/// private), so a value is always one of the 18 names Cochl documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PcmFormat {
    name: &'static str,
    bits: u8,
    encoding: SampleEncoding,
    byte_order: ByteOrder,
}

impl PcmFormat {
    /// The one table of raw PCM formats, in the order Cochl's documentation
    /// lists them: the GStreamer-style name (`s16le` = signed 16-bit little
    /// endian) with what it means. Parsing, messages and the emulator's decoder
    /// all read it.
    pub const ALL: [PcmFormat; 18] = {
        use ByteOrder::{Big, Little};
        use SampleEncoding::{Float, Signed, Unsigned};
        [
            row("s16le", 16, Signed, Little),
            row("s24le", 24, Signed, Little),
            row("s32le", 32, Signed, Little),
            row("s16be", 16, Signed, Big),
            row("s24be", 24, Signed, Big),
            row("s32be", 32, Signed, Big),
            row("u16le", 16, Unsigned, Little),
            row("u24le", 24, Unsigned, Little),
            row("u32le", 32, Unsigned, Little),
            row("u16be", 16, Unsigned, Big),
            row("u24be", 24, Unsigned, Big),
            row("u32be", 32, Unsigned, Big),
            row("f16le", 16, Float, Little),
            row("f24le", 24, Float, Little),
            row("f32le", 32, Float, Little),
            row("f16be", 16, Float, Big),
            row("f24be", 24, Float, Big),
            row("f32be", 32, Float, Big),
        ]
    };

    /// Bits one sample of one channel occupies (16, 24 or 32); a decoder reads
    /// `bits / 8` bytes per sample.
    pub fn bits(self) -> u32 {
        u32::from(self.bits)
    }

    /// How the sample's bits encode its amplitude; a decoder needs it to scale samples.
    pub fn encoding(self) -> SampleEncoding {
        self.encoding
    }

    /// Which byte comes first; a decoder needs it to assemble samples.
    pub fn byte_order(self) -> ByteOrder {
        self.byte_order
    }
}

/// One row of [`PcmFormat::ALL`]; a function so the table reads as a table.
const fn row(
    name: &'static str,
    bits: u8,
    encoding: SampleEncoding,
    byte_order: ByteOrder,
) -> PcmFormat {
    PcmFormat {
        name,
        bits,
        encoding,
        byte_order,
    }
}

/// Every format name, comma separated, for messages that list the choices.
fn format_names() -> String {
    PcmFormat::ALL.map(|format| format.name).join(", ")
}

impl fmt::Display for PcmFormat {
    /// Writes the lower-case name Cochl expects in the `format=` parameter.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl FromStr for PcmFormat {
    type Err = PcmParamsError;

    /// Parses a format name, ignoring ASCII case (`"S16LE"` is `s16le`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PcmFormat::ALL
            .into_iter()
            .find(|format| format.name.eq_ignore_ascii_case(s))
            .ok_or_else(|| PcmParamsError::UnknownFormat {
                value: s.to_owned(),
            })
    }
}

/// The media type of raw PCM content types.
const RAW_PCM_MEDIA_TYPE: &str = "audio/x-raw";
/// Lowest sample rate accepted in a raw PCM content type.
const MIN_RATE: u32 = 1;
/// Highest sample rate accepted in a raw PCM content type.
const MAX_RATE: u32 = 384_000;
/// Fewest channels accepted in a raw PCM content type.
const MIN_CHANNELS: u8 = 1;
/// Most channels accepted in a raw PCM content type.
const MAX_CHANNELS: u8 = 32;

/// The parameters of a raw PCM content type: the model cannot guess them from
/// headerless bytes, so they must travel with the request.
///
/// Valid specs have `rate` in `1..=384000` and `channels` in `1..=32`;
/// [`parse_raw_pcm`] only builds valid ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PcmSpec {
    /// Samples per second per channel, `1..=384000`.
    pub rate: u32,
    /// Sample encoding.
    pub format: PcmFormat,
    /// Interleaved channel count, `1..=32`.
    pub channels: u8,
}

impl fmt::Display for PcmSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{RAW_PCM_MEDIA_TYPE}; rate={}; format={}; channels={}",
            self.rate, self.format, self.channels
        )
    }
}

/// Why a raw PCM content type (`audio/x-raw; ...`) was refused; each message
/// names the offending part so the uploader can fix it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
pub enum PcmParamsError {
    /// The media type before the first `;` is not `audio/x-raw`.
    #[error("raw PCM content type: media type {value:?} is not \"audio/x-raw\"")]
    NotRawPcm {
        /// The media type found.
        value: String,
    },
    /// Two `;` with nothing between them (a single trailing `;` is tolerated).
    #[error(
        "raw PCM content type: empty parameter (nothing between two ';') at parameter position {position}"
    )]
    EmptyParameter {
        /// 1-based position of the empty parameter after the media type.
        position: usize,
    },
    /// A parameter without `=`.
    #[error("raw PCM content type: parameter {parameter:?} has no '=' (expected name=value)")]
    MissingEquals {
        /// The parameter text as written.
        parameter: String,
    },
    /// A parameter with nothing before `=`.
    #[error("raw PCM content type: parameter {parameter:?} has an empty name")]
    EmptyName {
        /// The parameter text as written.
        parameter: String,
    },
    /// A parameter with nothing after `=`.
    #[error("raw PCM content type: parameter {name:?} has an empty value")]
    EmptyValue {
        /// The parameter name.
        name: String,
    },
    /// A parameter other than `rate`, `format`, `channels`.
    #[error(
        "raw PCM content type: unknown parameter {name:?} (expected only rate, format and channels)"
    )]
    UnknownParameter {
        /// The parameter name as written.
        name: String,
    },
    /// A parameter given more than once.
    #[error("raw PCM content type: duplicate parameter {name:?}")]
    DuplicateParameter {
        /// The canonical (lower-case) parameter name.
        name: &'static str,
    },
    /// A required parameter is absent.
    #[error(
        "raw PCM content type: missing parameter {name:?} (expected audio/x-raw; rate=<1..=384000>; format=<s16le, s24le, ...>; channels=<1..=32>)"
    )]
    MissingParameter {
        /// The canonical (lower-case) parameter name.
        name: &'static str,
    },
    /// `rate` or `channels` is not a decimal integer.
    #[error("raw PCM content type: {name} {value:?} is not an integer")]
    NotAnInteger {
        /// The canonical (lower-case) parameter name.
        name: &'static str,
        /// The value as written.
        value: String,
    },
    /// `rate` is an integer outside `1..=384000`.
    #[error("raw PCM content type: rate {value:?} is out of range 1..=384000")]
    RateOutOfRange {
        /// The value as written.
        value: String,
    },
    /// `channels` is an integer outside `1..=32`.
    #[error("raw PCM content type: channels {value:?} is out of range 1..=32")]
    ChannelsOutOfRange {
        /// The value as written.
        value: String,
    },
    /// `format` is not one of the 18 known names.
    #[error(
        "raw PCM content type: unknown format {value:?} (expected one of {names})",
        names = format_names()
    )]
    UnknownFormat {
        /// The value as written.
        value: String,
    },
}

/// Parses `audio/x-raw; rate=..; format=..; channels=..` into a [`PcmSpec`].
///
/// The media type and parameter names ignore ASCII case, parameters may come
/// in any order with any whitespace around `;` and `=`, and one trailing `;`
/// is tolerated. Each of the three parameters is required exactly once; any
/// other parameter, quoting, or out-of-range value is an error naming it.
pub fn parse_raw_pcm(value: &str) -> Result<PcmSpec, PcmParamsError> {
    let mut segments = value.split(';');
    let media_type = segments.next().unwrap_or_default().trim();
    if !media_type.eq_ignore_ascii_case(RAW_PCM_MEDIA_TYPE) {
        return Err(PcmParamsError::NotRawPcm {
            value: media_type.to_owned(),
        });
    }
    let params: Vec<&str> = segments.collect();
    let mut rate = None;
    let mut format = None;
    let mut channels = None;
    for (index, raw) in params.iter().enumerate() {
        let param = raw.trim();
        if param.is_empty() {
            if index + 1 == params.len() {
                break; // a single trailing ';'
            }
            return Err(PcmParamsError::EmptyParameter {
                position: index + 1,
            });
        }
        let Some((name, val)) = param.split_once('=') else {
            return Err(PcmParamsError::MissingEquals {
                parameter: param.to_owned(),
            });
        };
        let (name, val) = (name.trim(), val.trim());
        if name.is_empty() {
            return Err(PcmParamsError::EmptyName {
                parameter: param.to_owned(),
            });
        }
        let canonical = ["rate", "format", "channels"]
            .into_iter()
            .find(|known| known.eq_ignore_ascii_case(name))
            .ok_or_else(|| PcmParamsError::UnknownParameter {
                name: name.to_owned(),
            })?;
        let already = match canonical {
            "rate" => rate.is_some(),
            "format" => format.is_some(),
            _ => channels.is_some(),
        };
        if already {
            return Err(PcmParamsError::DuplicateParameter { name: canonical });
        }
        if val.is_empty() {
            return Err(PcmParamsError::EmptyValue {
                name: canonical.to_owned(),
            });
        }
        match canonical {
            "rate" => {
                let n = parse_bounded(canonical, val, u64::from(MIN_RATE), u64::from(MAX_RATE))
                    .map_err(|e| {
                        e.unwrap_or_else(|| PcmParamsError::RateOutOfRange {
                            value: val.to_owned(),
                        })
                    })?;
                rate = u32::try_from(n).ok();
            }
            "format" => format = Some(val.parse::<PcmFormat>()?),
            _ => {
                let n = parse_bounded(
                    canonical,
                    val,
                    u64::from(MIN_CHANNELS),
                    u64::from(MAX_CHANNELS),
                )
                .map_err(|e| {
                    e.unwrap_or_else(|| PcmParamsError::ChannelsOutOfRange {
                        value: val.to_owned(),
                    })
                })?;
                channels = u8::try_from(n).ok();
            }
        }
    }
    let rate = rate.ok_or(PcmParamsError::MissingParameter { name: "rate" })?;
    let format = format.ok_or(PcmParamsError::MissingParameter { name: "format" })?;
    let channels = channels.ok_or(PcmParamsError::MissingParameter { name: "channels" })?;
    Ok(PcmSpec {
        rate,
        format,
        channels,
    })
}

/// Parses a decimal integer in `min..=max`. `Err(Some(_))` when the text is
/// not an integer, `Err(None)` when it is an integer out of range (including
/// negative or too large to represent).
fn parse_bounded(
    name: &'static str,
    value: &str,
    min: u64,
    max: u64,
) -> Result<u64, Option<PcmParamsError>> {
    let is_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = value.strip_prefix('-') {
        if is_digits(rest) {
            return Err(None);
        }
    }
    if !is_digits(value) {
        return Err(Some(PcmParamsError::NotAnInteger {
            name,
            value: value.to_owned(),
        }));
    }
    match value.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(None),
    }
}

/// The content type sent to Cochl.Sense with a request.
///
/// Exists so the rest of the pipeline handles one closed set of values the
/// model accepts, never a free-form header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CochlContentType {
    /// `audio/mp3`.
    Mp3,
    /// `audio/wav`.
    Wav,
    /// `audio/ogg`.
    Ogg,
    /// `application/octet-stream`: the model auto-detects the container (not raw PCM).
    OctetStream,
    /// `audio/x-raw; rate=..; format=..; channels=..`.
    RawPcm(PcmSpec),
}

impl CochlContentType {
    /// The exact header value to send, e.g. `audio/mp3` or
    /// `audio/x-raw; rate=22050; format=s24le; channels=1`.
    pub fn header_value(&self) -> String {
        self.to_string()
    }

    /// The media type without parameters (`audio/x-raw` for raw PCM).
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

/// Why a string is not a Cochl content type (see [`CochlContentType::from_str`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
pub enum ParseContentTypeError {
    /// The value is empty or only whitespace.
    #[error("empty content type (expected audio/mp3, audio/wav, audio/ogg, application/octet-stream or audio/x-raw; rate=..; format=..; channels=..)")]
    Empty,
    /// The media type is not one Cochl accepts nor an alias of one.
    #[error("unsupported content type {value:?} (expected audio/mp3, audio/wav, audio/ogg, application/octet-stream to let Cochl auto-detect, or audio/x-raw; rate=..; format=..; channels=..)")]
    Unsupported {
        /// The media type found.
        value: String,
    },
    /// An `audio/x-raw` value with bad parameters.
    #[error(transparent)]
    RawPcm(#[from] PcmParamsError),
}

const MP3_ALIASES: [&str; 5] = [
    "audio/mp3",
    "audio/mpeg",
    "audio/mpeg3",
    "audio/x-mp3",
    "audio/x-mpeg",
];
const WAV_ALIASES: [&str; 4] = ["audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"];
const OGG_ALIASES: [&str; 4] = ["audio/ogg", "audio/opus", "audio/vorbis", "application/ogg"];
const OCTET_STREAM_ALIASES: [&str; 2] = ["application/octet-stream", "binary/octet-stream"];

/// The lower-cased, trimmed media type of a header value (parameters dropped).
fn media_type_of(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Maps an MP3/WAV/Ogg alias (already lower-cased) to its Cochl type.
fn container_alias(media_type: &str) -> Option<CochlContentType> {
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

/// The user metadata key whose value overrides every other clue
/// (S3 header `x-amz-meta-cochl-content-type`). Looked up ignoring case.
const CONTENT_TYPE_METADATA_KEY: &str = "cochl-content-type";

/// What S3 tells us about an uploaded object, borrowed from the adapter's
/// HeadObject/event data so the decision stays free of the AWS SDK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectFacts<'a> {
    /// The object's Content-Type header, if any.
    pub content_type: Option<&'a str>,
    /// The decoded object key.
    pub key: &'a str,
    /// The object's user metadata (keys without the `x-amz-meta-` prefix).
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
        /// The object key.
        key: String,
        /// The key's extension without the dot, as written, if any.
        extension: Option<String>,
        /// The Content-Type header seen, if any.
        content_type: Option<String>,
    },
    /// A `.pcm`/`.raw` object without a raw PCM content type: its rate,
    /// format and channels are unknown and Cochl cannot auto-detect them.
    #[error(
        "raw PCM without parameters: key {key:?} has extension \".{extension}\" but no rate, format or channels, and auto-detect cannot read raw PCM; upload it with Content-Type audio/x-raw; rate=..; format=..; channels=.. or set the cochl-content-type metadata"
    )]
    RawPcmWithoutParameters {
        /// The object key.
        key: String,
        /// The key's extension without the dot, as written.
        extension: String,
    },
    /// The Content-Type header is `audio/x-raw` with bad parameters.
    #[error("invalid Content-Type {content_type:?}: {error}")]
    InvalidPcmParameters {
        /// The Content-Type header as received.
        content_type: String,
        /// What is wrong with it.
        error: PcmParamsError,
    },
    /// The `cochl-content-type` metadata is not a Cochl content type.
    #[error("invalid cochl-content-type metadata {value:?}: {error}; fix or remove the metadata")]
    InvalidContentTypeOverride {
        /// The metadata value as received.
        value: String,
        /// What is wrong with it.
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

fn describe_extension(extension: &Option<String>) -> String {
    match extension {
        Some(ext) => format!("extension {:?}", format!(".{ext}")),
        None => "no extension".to_owned(),
    }
}

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

    fn resolve(
        content_type: Option<&str>,
        key: &str,
        metadata: &HashMap<String, String>,
    ) -> Result<CochlContentType, ContentTypeRejection> {
        resolve_content_type(&ObjectFacts {
            content_type,
            key,
            metadata,
        })
    }

    fn meta(key: &str, value: &str) -> HashMap<String, String> {
        HashMap::from([(key.to_owned(), value.to_owned())])
    }

    fn pcm(name: &str) -> PcmFormat {
        name.parse().unwrap()
    }

    fn spec(rate: u32, format: &str, channels: u8) -> PcmSpec {
        PcmSpec {
            rate,
            format: pcm(format),
            channels,
        }
    }

    // ---- PcmFormat ----

    #[test]
    fn all_formats_are_distinct_and_round_trip_in_any_case() {
        let names: Vec<String> = PcmFormat::ALL.iter().map(|f| f.to_string()).collect();
        assert_eq!(
            names,
            [
                "s16le", "s24le", "s32le", "s16be", "s24be", "s32be", "u16le", "u24le", "u32le",
                "u16be", "u24be", "u32be", "f16le", "f24le", "f32le", "f16be", "f24be", "f32be"
            ]
        );
        for format in PcmFormat::ALL {
            let name = format.to_string();
            assert_eq!(name.parse::<PcmFormat>(), Ok(format));
            assert_eq!(name.to_ascii_uppercase().parse::<PcmFormat>(), Ok(format));
            let header = format!("audio/x-raw; rate=16000; format={format}; channels=2");
            let parsed = PcmSpec {
                rate: 16000,
                format,
                channels: 2,
            };
            assert_eq!(parse_raw_pcm(&header), Ok(parsed));
            let ct = CochlContentType::RawPcm(parsed);
            assert_eq!(ct.header_value(), header);
            assert_eq!(header.parse::<CochlContentType>(), Ok(ct));
        }
    }

    #[test]
    fn every_row_means_what_its_name_says() {
        for format in PcmFormat::ALL {
            let name = format.to_string();
            let bits: u32 = name[1..3].parse().unwrap();
            assert_eq!(format.bits(), bits, "{name}");
            let encoding = match &name[..1] {
                "s" => SampleEncoding::Signed,
                "u" => SampleEncoding::Unsigned,
                _ => SampleEncoding::Float,
            };
            assert_eq!(format.encoding(), encoding, "{name}");
            let byte_order = match &name[3..] {
                "le" => ByteOrder::Little,
                _ => ByteOrder::Big,
            };
            assert_eq!(format.byte_order(), byte_order, "{name}");
        }
        assert_eq!(pcm("u24be").bits(), 24);
        assert_eq!(pcm("f16be").encoding(), SampleEncoding::Float);
        assert_eq!(pcm("u32le").byte_order(), ByteOrder::Little);
    }

    #[test]
    fn unknown_format_names_value_and_lists_choices() {
        let err = "s8le".parse::<PcmFormat>().unwrap_err();
        assert_eq!(
            err,
            PcmParamsError::UnknownFormat {
                value: "s8le".into()
            }
        );
        let msg = err.to_string();
        assert!(msg.contains("\"s8le\""), "{msg}");
        for format in PcmFormat::ALL {
            assert!(msg.contains(&format.to_string()), "{msg}");
        }
        assert!(" s16le".parse::<PcmFormat>().is_err());
        assert!("".parse::<PcmFormat>().is_err());
    }

    #[test]
    fn spec_displays_as_its_header() {
        let s = spec(22050, "s24le", 2);
        assert_eq!(
            s.to_string(),
            "audio/x-raw; rate=22050; format=s24le; channels=2"
        );
        assert_eq!(parse_raw_pcm(&s.to_string()), Ok(s));
    }

    // ---- parse_raw_pcm ----

    #[test]
    fn parses_reference_example() {
        assert_eq!(
            parse_raw_pcm("audio/x-raw; rate=22050; format=s24le; channels=1"),
            Ok(spec(22050, "s24le", 1))
        );
    }

    #[test]
    fn parses_any_order_case_spacing_and_trailing_semicolon() {
        let want = Ok(spec(44100, "f32be", 2));
        for text in [
            "audio/x-raw;rate=44100;format=f32be;channels=2",
            "AUDIO/X-RAW; CHANNELS=2; Format=F32BE; Rate=44100",
            "  audio/x-raw  ;\tformat = f32be ;  channels\t=\t2 ; rate= 44100  ",
            "audio/x-raw; rate=44100; format=f32be; channels=2;",
            "audio/x-raw; rate=44100; format=f32be; channels=2 ; ",
            "audio/x-raw; rate=044100; format=f32be; channels=02",
        ] {
            assert_eq!(parse_raw_pcm(text), want, "{text}");
        }
    }

    #[test]
    fn rate_bounds() {
        let p =
            |r: &str| parse_raw_pcm(&format!("audio/x-raw; rate={r}; format=s16le; channels=1"));
        assert_eq!(p("1"), Ok(spec(1, "s16le", 1)));
        assert_eq!(p("384000"), Ok(spec(384_000, "s16le", 1)));
        for bad in ["0", "384001", "-1", "4294967296", "99999999999999999999999"] {
            let err = p(bad).unwrap_err();
            assert_eq!(err, PcmParamsError::RateOutOfRange { value: bad.into() });
            let msg = err.to_string();
            assert!(msg.contains(&format!("rate \"{bad}\"")), "{msg}");
            assert!(msg.contains("1..=384000"), "{msg}");
        }
        assert_eq!(
            p("0").unwrap_err().to_string(),
            "raw PCM content type: rate \"0\" is out of range 1..=384000"
        );
    }

    #[test]
    fn channel_bounds() {
        let p = |c: &str| {
            parse_raw_pcm(&format!(
                "audio/x-raw; rate=8000; format=u16be; channels={c}"
            ))
        };
        assert_eq!(p("1"), Ok(spec(8000, "u16be", 1)));
        assert_eq!(p("32"), Ok(spec(8000, "u16be", 32)));
        for bad in ["0", "33", "256", "-3", "18446744073709551616"] {
            let err = p(bad).unwrap_err();
            assert_eq!(
                err,
                PcmParamsError::ChannelsOutOfRange { value: bad.into() }
            );
            let msg = err.to_string();
            assert!(msg.contains(&format!("channels \"{bad}\"")), "{msg}");
            assert!(msg.contains("1..=32"), "{msg}");
        }
    }

    #[test]
    fn not_an_integer_names_parameter_and_value() {
        for (text, name, value) in [
            (
                "audio/x-raw; rate=22.05k; format=s16le; channels=1",
                "rate",
                "22.05k",
            ),
            (
                "audio/x-raw; rate=+8000; format=s16le; channels=1",
                "rate",
                "+8000",
            ),
            (
                "audio/x-raw; rate=\"8000\"; format=s16le; channels=1",
                "rate",
                "\"8000\"",
            ),
            (
                "audio/x-raw; rate=8000; format=s16le; channels=two",
                "channels",
                "two",
            ),
            (
                "audio/x-raw; rate=8 000; format=s16le; channels=1",
                "rate",
                "8 000",
            ),
        ] {
            let err = parse_raw_pcm(text).unwrap_err();
            assert_eq!(
                err,
                PcmParamsError::NotAnInteger {
                    name,
                    value: value.into()
                },
                "{text}"
            );
            let msg = err.to_string();
            assert!(msg.contains("not an integer"), "{msg}");
            assert!(msg.contains(name), "{msg}");
            assert!(msg.contains(&format!("{value:?}")), "{msg}");
        }
    }

    #[test]
    fn structural_errors_name_the_bad_part() {
        let cases: Vec<(&str, PcmParamsError, &str)> = vec![
            (
                "audio/x-raw; rate=8000; format=s16le",
                PcmParamsError::MissingParameter { name: "channels" },
                "missing parameter \"channels\"",
            ),
            (
                "audio/x-raw; format=s16le; channels=1",
                PcmParamsError::MissingParameter { name: "rate" },
                "missing parameter \"rate\"",
            ),
            (
                "audio/x-raw; rate=8000; channels=1",
                PcmParamsError::MissingParameter { name: "format" },
                "missing parameter \"format\"",
            ),
            (
                "audio/x-raw",
                PcmParamsError::MissingParameter { name: "rate" },
                "missing parameter \"rate\"",
            ),
            (
                "audio/x-raw; rate=8000; RATE=8000; format=s16le; channels=1",
                PcmParamsError::DuplicateParameter { name: "rate" },
                "duplicate parameter \"rate\"",
            ),
            (
                "audio/x-raw; rate=8000; format=s16le; channels=1; bits=16",
                PcmParamsError::UnknownParameter {
                    name: "bits".into(),
                },
                "unknown parameter \"bits\"",
            ),
            (
                "audio/x-raw; rate=8000;; format=s16le; channels=1",
                PcmParamsError::EmptyParameter { position: 2 },
                "empty parameter",
            ),
            (
                "audio/x-raw; rate=8000; format=s16le; channels=1;;",
                PcmParamsError::EmptyParameter { position: 4 },
                "empty parameter",
            ),
            (
                "audio/x-raw; rate; format=s16le; channels=1",
                PcmParamsError::MissingEquals {
                    parameter: "rate".into(),
                },
                "parameter \"rate\" has no '='",
            ),
            (
                "audio/x-raw; =8000; format=s16le; channels=1",
                PcmParamsError::EmptyName {
                    parameter: "=8000".into(),
                },
                "\"=8000\" has an empty name",
            ),
            (
                "audio/x-raw; rate= ; format=s16le; channels=1",
                PcmParamsError::EmptyValue {
                    name: "rate".into(),
                },
                "parameter \"rate\" has an empty value",
            ),
            (
                "audio/x-raw; rate=8000; format=s8le; channels=1",
                PcmParamsError::UnknownFormat {
                    value: "s8le".into(),
                },
                "unknown format \"s8le\" (expected one of s16le,",
            ),
            (
                "audio/wav; rate=8000; format=s16le; channels=1",
                PcmParamsError::NotRawPcm {
                    value: "audio/wav".into(),
                },
                "media type \"audio/wav\"",
            ),
            (
                "",
                PcmParamsError::NotRawPcm { value: "".into() },
                "media type \"\"",
            ),
        ];
        for (text, want, fragment) in cases {
            let err = parse_raw_pcm(text).unwrap_err();
            assert_eq!(err, want, "{text}");
            let msg = err.to_string();
            assert!(msg.starts_with("raw PCM content type: "), "{msg}");
            assert!(msg.contains(fragment), "{text}: {msg}");
        }
    }

    // ---- CochlContentType ----

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
    fn from_str_accepts_every_alias() {
        let cases: &[(&str, CochlContentType)] = &[
            ("audio/mp3", CochlContentType::Mp3),
            ("audio/mpeg", CochlContentType::Mp3),
            ("audio/mpeg3", CochlContentType::Mp3),
            ("audio/x-mp3", CochlContentType::Mp3),
            ("audio/x-mpeg", CochlContentType::Mp3),
            ("audio/wav", CochlContentType::Wav),
            ("audio/x-wav", CochlContentType::Wav),
            ("audio/wave", CochlContentType::Wav),
            ("audio/vnd.wave", CochlContentType::Wav),
            ("audio/ogg", CochlContentType::Ogg),
            ("audio/opus", CochlContentType::Ogg),
            ("audio/vorbis", CochlContentType::Ogg),
            ("application/ogg", CochlContentType::Ogg),
            ("application/octet-stream", CochlContentType::OctetStream),
            ("binary/octet-stream", CochlContentType::OctetStream),
        ];
        for (text, want) in cases {
            assert_eq!(text.parse::<CochlContentType>(), Ok(*want), "{text}");
            let upper = text.to_ascii_uppercase();
            assert_eq!(upper.parse::<CochlContentType>(), Ok(*want), "{upper}");
            let with_params = format!("  {text} ; charset=binary");
            assert_eq!(
                with_params.parse::<CochlContentType>(),
                Ok(*want),
                "{with_params}"
            );
        }
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
        assert!(err.to_string().contains("\"audio/flac\""));
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

    // ---- resolve_content_type: header ----

    #[test]
    fn header_aliases_resolve() {
        let m = no_meta();
        let cases: &[(&str, CochlContentType)] = &[
            ("audio/mp3", CochlContentType::Mp3),
            ("audio/mpeg", CochlContentType::Mp3),
            ("audio/mpeg3", CochlContentType::Mp3),
            ("audio/x-mp3", CochlContentType::Mp3),
            ("audio/x-mpeg", CochlContentType::Mp3),
            ("Audio/MPEG; charset=binary", CochlContentType::Mp3),
            ("audio/wav", CochlContentType::Wav),
            ("audio/x-wav", CochlContentType::Wav),
            ("audio/wave", CochlContentType::Wav),
            ("audio/vnd.wave", CochlContentType::Wav),
            ("audio/ogg", CochlContentType::Ogg),
            ("audio/opus", CochlContentType::Ogg),
            ("audio/vorbis", CochlContentType::Ogg),
            ("application/ogg", CochlContentType::Ogg),
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
        for (header, want) in cases {
            // the key's extension says something else: the header must win
            assert_eq!(resolve(Some(header), "in/x.txt", &m), Ok(*want), "{header}");
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
        let msg = err.to_string();
        assert!(msg.contains("channels \"40\""), "{msg}");
        assert!(msg.contains(header), "{msg}");

        let err = resolve(Some("audio/x-raw"), "a.pcm", &m).unwrap_err();
        assert_eq!(err.code(), "invalid_pcm_parameters");
        assert!(err.to_string().contains("missing parameter \"rate\""));
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
        assert_eq!(
            resolve(Some("audio/mpeg"), "song.wav", &m),
            Ok(CochlContentType::Mp3)
        );
        assert_eq!(
            resolve(Some("audio/wav"), "song.mp3", &m),
            Ok(CochlContentType::Wav)
        );
        assert_eq!(
            resolve(Some("audio/flac"), "song.pcm", &m),
            Ok(CochlContentType::OctetStream)
        );
        // a wrong, non-audio header loses to the extension
        assert_eq!(
            resolve(Some("text/plain"), "song.wav", &m),
            Ok(CochlContentType::Wav)
        );
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
            let msg = err.to_string();
            assert!(msg.contains(key), "{msg}");
            assert!(
                msg.contains("audio/x-raw; rate=..; format=..; channels=.."),
                "{msg}"
            );
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
        assert!(err.to_string().contains("\".PCM\""));
    }

    #[test]
    fn not_audio_names_extension_and_content_type() {
        let m = no_meta();
        for (header, key, ext_part, ct_part) in [
            (
                Some("text/plain"),
                "notes/readme.txt",
                "extension \".txt\"",
                "Content-Type \"text/plain\"",
            ),
            (
                Some("application/json"),
                "x.json",
                "extension \".json\"",
                "Content-Type \"application/json\"",
            ),
            (None, "pic.JPG", "extension \".JPG\"", "no Content-Type"),
            (
                Some("binary/octet-stream"),
                "noext",
                "no extension",
                "Content-Type \"binary/octet-stream\"",
            ),
            (Some(""), "dir/.wav", "no extension", "no Content-Type"),
            (None, "dir.wav/file", "no extension", "no Content-Type"),
            (None, "trailing.", "no extension", "no Content-Type"),
            (None, "", "no extension", "no Content-Type"),
        ] {
            let err = resolve(header, key, &m).unwrap_err();
            assert_eq!(err.code(), "not_audio", "{key}");
            let msg = err.to_string();
            assert!(msg.contains(ext_part), "{msg}");
            assert!(msg.contains(ct_part), "{msg}");
            assert!(msg.contains(&format!("{key:?}")), "{msg}");
        }
        assert_eq!(
            resolve(Some("text/plain"), "a/b.txt", &m),
            Err(ContentTypeRejection::NotAudio {
                key: "a/b.txt".into(),
                extension: Some("txt".into()),
                content_type: Some("text/plain".into()),
            })
        );
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
        for alias in MP3_ALIASES
            .iter()
            .chain(&WAV_ALIASES)
            .chain(&OGG_ALIASES)
            .chain(&OCTET_STREAM_ALIASES)
        {
            let m = meta(CONTENT_TYPE_METADATA_KEY, alias);
            let want = alias.parse::<CochlContentType>().unwrap();
            assert_eq!(
                resolve(Some("text/plain"), "x.txt", &m),
                Ok(want),
                "{alias}"
            );
        }
    }

    #[test]
    fn invalid_metadata_override_is_rejected_naming_value() {
        for (value, why) in [
            ("audio/flac", "unsupported content type"),
            ("wav", "unsupported content type"),
            ("", "empty content type"),
            (
                "audio/x-raw; rate=8000; format=s8le; channels=1",
                "unknown format \"s8le\"",
            ),
            (
                "audio/x-raw; rate=8000; format=s16le",
                "missing parameter \"channels\"",
            ),
        ] {
            let m = meta("Cochl-Content-Type", value);
            let err = resolve(Some("audio/wav"), "a.wav", &m).unwrap_err();
            assert_eq!(err.code(), "invalid_content_type_override", "{value}");
            let msg = err.to_string();
            assert!(msg.contains(&format!("{value:?}")), "{msg}");
            assert!(msg.contains(why), "{msg}");
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

    // ---- property tests ----

    fn format_strategy() -> impl Strategy<Value = PcmFormat> {
        prop::sample::select(PcmFormat::ALL.to_vec())
    }

    fn spec_strategy() -> impl Strategy<Value = PcmSpec> {
        (
            MIN_RATE..=MAX_RATE,
            format_strategy(),
            MIN_CHANNELS..=MAX_CHANNELS,
        )
            .prop_map(|(rate, format, channels)| PcmSpec {
                rate,
                format,
                channels,
            })
    }

    fn content_type_strategy() -> impl Strategy<Value = CochlContentType> {
        prop_oneof![
            Just(CochlContentType::Mp3),
            Just(CochlContentType::Wav),
            Just(CochlContentType::Ogg),
            Just(CochlContentType::OctetStream),
            spec_strategy().prop_map(CochlContentType::RawPcm),
        ]
    }

    fn random_case(text: &str, mask: &[bool]) -> String {
        text.chars()
            .zip(mask.iter().cycle())
            .map(|(c, upper)| {
                if *upper {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect()
    }

    proptest! {
        #[test]
        fn prop_valid_spec_parses_in_any_order_spacing_and_case(
            s in spec_strategy(),
            order in Just(vec![0usize, 1, 2]).prop_shuffle(),
            ws in prop::collection::vec("[ \t]{0,3}", 16),
            mask in prop::collection::vec(any::<bool>(), 1..64),
            trailing in any::<bool>(),
            zeros in 0usize..3,
        ) {
            let pad = "0".repeat(zeros);
            let params = [
                format!("rate{}={}{pad}{}", ws[0], ws[1], s.rate),
                format!("format{}={}{}", ws[2], ws[3], s.format),
                format!("channels{}={}{pad}{}", ws[4], ws[5], s.channels),
            ];
            let mut text = format!("{}audio/x-raw{}", ws[6], ws[7]);
            for (i, index) in order.iter().enumerate() {
                text.push_str(&format!(";{}{}{}", ws[8 + i], params[*index], ws[11 + i]));
            }
            if trailing {
                text.push_str(&format!(";{}", ws[14]));
            }
            let text = random_case(&text, &mask);
            prop_assert_eq!(parse_raw_pcm(&text), Ok(s));
            prop_assert_eq!(text.parse::<CochlContentType>(), Ok(CochlContentType::RawPcm(s)));
            let m = HashMap::new();
            prop_assert_eq!(
                resolve(Some(&text), "x.txt", &m),
                Ok(CochlContentType::RawPcm(s))
            );
        }

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
        fn prop_parsers_never_panic_on_arbitrary_text(text in any::<String>()) {
            let _ = parse_raw_pcm(&text);
            let _ = text.parse::<CochlContentType>();
            let _ = text.parse::<PcmFormat>();
            let raw = format!("audio/x-raw;{text}");
            if let Err(e) = parse_raw_pcm(&raw) {
                prop_assert!(!e.to_string().is_empty());
            }
        }

        #[test]
        fn prop_raw_pcm_never_panics_on_parameter_soup(
            parts in prop::collection::vec(
                prop_oneof![
                    Just("rate".to_owned()), Just("format".to_owned()), Just("channels".to_owned()),
                    Just("=".to_owned()), Just(";".to_owned()), Just(" ".to_owned()),
                    "[0-9]{1,25}", "-[0-9]{1,5}", "[su f][0-9]{2}[lb]e", "\\PC{0,3}",
                ],
                0..20,
            ),
        ) {
            let text = format!("audio/x-raw;{}", parts.concat());
            match parse_raw_pcm(&text) {
                Ok(s) => {
                    prop_assert!((MIN_RATE..=MAX_RATE).contains(&s.rate));
                    prop_assert!((MIN_CHANNELS..=MAX_CHANNELS).contains(&s.channels));
                    prop_assert_eq!(parse_raw_pcm(&s.to_string()), Ok(s));
                }
                Err(e) => prop_assert!(e.to_string().starts_with("raw PCM content type: ")),
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
                prop_assert!(!rejection.to_string().is_empty());
            }
        }

        #[test]
        fn prop_out_of_range_rate_is_named(
            rate in prop_oneof![Just(0u64), (u64::from(MAX_RATE) + 1)..u64::MAX],
            format in format_strategy(),
            channels in MIN_CHANNELS..=MAX_CHANNELS,
        ) {
            let text = format!("audio/x-raw; rate={rate}; format={format}; channels={channels}");
            let err = parse_raw_pcm(&text).unwrap_err();
            prop_assert_eq!(&err, &PcmParamsError::RateOutOfRange { value: rate.to_string() });
            let needle = format!("rate \"{rate}\"");
            prop_assert!(err.to_string().contains(&needle));
        }

        #[test]
        fn prop_out_of_range_channels_is_named(
            channels in prop_oneof![Just(0u64), (u64::from(MAX_CHANNELS) + 1)..u64::MAX],
            format in format_strategy(),
            rate in MIN_RATE..=MAX_RATE,
        ) {
            let text = format!("audio/x-raw; format={format}; channels={channels}; rate={rate}");
            let err = parse_raw_pcm(&text).unwrap_err();
            prop_assert_eq!(&err, &PcmParamsError::ChannelsOutOfRange { value: channels.to_string() });
            let needle = format!("channels \"{channels}\"");
            prop_assert!(err.to_string().contains(&needle));
            let m = HashMap::new();
            let rejection = resolve(Some(&text), "a.wav", &m).unwrap_err();
            prop_assert_eq!(rejection.code(), "invalid_pcm_parameters");
            prop_assert!(rejection.to_string().contains(&needle));
        }
    }
}
