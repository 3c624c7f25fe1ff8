//! Helpers and proptest strategies the tests of every `content_type` file share.

use std::collections::HashMap;

use proptest::prelude::*;

use super::raw_pcm::{MAX_CHANNELS, MAX_RATE, MIN_CHANNELS, MIN_RATE};
use super::{resolve_content_type, CochlContentType, ContentTypeRejection, ObjectFacts};
use super::{PcmFormat, PcmSpec};

/// A format by name, so tests read like the headers they write.
pub(super) fn pcm(name: &str) -> PcmFormat {
    name.parse().unwrap()
}

/// A spec by its three parameters, the format by name.
pub(super) fn spec(rate: u32, format: &str, channels: u8) -> PcmSpec {
    PcmSpec {
        rate,
        format: pcm(format),
        channels,
    }
}

/// Resolves the content type of an object described by its three facts.
pub(super) fn resolve(
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

/// User metadata holding one entry.
pub(super) fn meta(key: &str, value: &str) -> HashMap<String, String> {
    HashMap::from([(key.to_owned(), value.to_owned())])
}

/// Any of the 18 formats.
fn format_strategy() -> impl Strategy<Value = PcmFormat> {
    prop::sample::select(PcmFormat::ALL.to_vec())
}

/// Any valid spec, bounds included.
pub(super) fn spec_strategy() -> impl Strategy<Value = PcmSpec> {
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

/// Any content type Cochl accepts.
pub(super) fn content_type_strategy() -> impl Strategy<Value = CochlContentType> {
    prop_oneof![
        Just(CochlContentType::Mp3),
        Just(CochlContentType::Wav),
        Just(CochlContentType::Ogg),
        Just(CochlContentType::OctetStream),
        spec_strategy().prop_map(CochlContentType::RawPcm),
    ]
}

/// `text` with each ASCII letter upper- or lower-cased as `mask` (cycled) says,
/// to show parsing ignores case.
pub(super) fn random_case(text: &str, mask: &[bool]) -> String {
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

/// Every alias a Cochl content type is known by, with the type it names: the
/// mapping both the parser and the resolver must honour, written once.
pub(super) const ALIASES: [(&str, CochlContentType); 15] = [
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
