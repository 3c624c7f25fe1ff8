//! The parameters of a raw PCM content type (`audio/x-raw; rate=..; format=..; channels=..`).
//!
//! Headerless PCM carries no description of itself, so the rate, sample format
//! and channel count travel in the content type; this file reads and writes that
//! header syntax and says precisely what is wrong with a bad one.

use std::fmt;
use std::ops::RangeInclusive;

use super::pcm_format::{format_names, PcmFormat};

/// The media type that marks a content type as raw PCM with parameters.
pub(super) const RAW_PCM_MEDIA_TYPE: &str = "audio/x-raw";
/// Lowest sample rate Cochl accepts in a raw PCM content type.
pub(super) const MIN_RATE: u32 = 1;
/// Highest sample rate Cochl accepts in a raw PCM content type.
pub(super) const MAX_RATE: u32 = 384_000;
/// Fewest channels Cochl accepts in a raw PCM content type.
pub(super) const MIN_CHANNELS: u8 = 1;
/// Most channels Cochl accepts in a raw PCM content type.
pub(super) const MAX_CHANNELS: u8 = 32;

/// The parameters of a raw PCM content type: the model cannot guess them from
/// headerless bytes, so they must travel with the request.
///
/// Valid specs have `rate` in `1..=384000` and `channels` in `1..=32`;
/// [`parse_raw_pcm`] only builds valid ones. It displays as its canonical
/// header value, `audio/x-raw; rate=22050; format=s24le; channels=1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PcmSpec {
    /// Samples per second per channel, `1..=384000`; durations follow from it.
    pub rate: u32,
    /// How each sample is encoded, which the bytes themselves cannot say.
    pub format: PcmFormat,
    /// How many channels are interleaved in each frame, `1..=32`.
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

/// Why a raw PCM content type (`audio/x-raw; ...`) was refused; each variant
/// keeps the offending part so the message can name it and the uploader fix it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
pub enum PcmParamsError {
    /// The media type before the first `;` is not `audio/x-raw`.
    #[error("raw PCM content type: media type {value:?} is not \"audio/x-raw\"")]
    NotRawPcm {
        /// The media type found instead, echoed in the message.
        value: String,
    },
    /// Two `;` with nothing between them (a single trailing `;` is tolerated).
    #[error(
        "raw PCM content type: empty parameter (nothing between two ';') at parameter position {position}"
    )]
    EmptyParameter {
        /// 1-based position of the empty parameter after the media type, so
        /// the uploader can find it.
        position: usize,
    },
    /// A parameter without `=`.
    #[error("raw PCM content type: parameter {parameter:?} has no '=' (expected name=value)")]
    MissingEquals {
        /// The parameter text as written, echoed in the message.
        parameter: String,
    },
    /// A parameter with nothing before `=`.
    #[error("raw PCM content type: parameter {parameter:?} has an empty name")]
    EmptyName {
        /// The parameter text as written, echoed in the message.
        parameter: String,
    },
    /// A parameter with nothing after `=`.
    #[error("raw PCM content type: parameter {name:?} has an empty value")]
    EmptyValue {
        /// Which parameter (lower case) lacks its value.
        name: String,
    },
    /// A parameter other than `rate`, `format`, `channels`: Cochl takes no other.
    #[error(
        "raw PCM content type: unknown parameter {name:?} (expected only rate, format and channels)"
    )]
    UnknownParameter {
        /// The parameter name as written, echoed in the message.
        name: String,
    },
    /// A parameter given more than once, which would make the value ambiguous.
    #[error("raw PCM content type: duplicate parameter {name:?}")]
    DuplicateParameter {
        /// Which parameter (lower case) is repeated.
        name: &'static str,
    },
    /// A required parameter is absent.
    #[error(
        "raw PCM content type: missing parameter {name:?} (expected audio/x-raw; rate=<{MIN_RATE}..={MAX_RATE}>; format=<s16le, s24le, ...>; channels=<{MIN_CHANNELS}..={MAX_CHANNELS}>)"
    )]
    MissingParameter {
        /// Which parameter (lower case) is missing.
        name: &'static str,
    },
    /// `rate` or `channels` is not a decimal integer.
    #[error("raw PCM content type: {name} {value:?} is not an integer")]
    NotAnInteger {
        /// Which parameter (lower case) holds the bad value.
        name: &'static str,
        /// The value as written, echoed in the message.
        value: String,
    },
    /// `rate` is an integer outside `1..=384000`.
    #[error("raw PCM content type: rate {value:?} is out of range {MIN_RATE}..={MAX_RATE}")]
    RateOutOfRange {
        /// The value as written (it may not fit any integer type), echoed in the message.
        value: String,
    },
    /// `channels` is an integer outside `1..=32`.
    #[error(
        "raw PCM content type: channels {value:?} is out of range {MIN_CHANNELS}..={MAX_CHANNELS}"
    )]
    ChannelsOutOfRange {
        /// The value as written (it may not fit any integer type), echoed in the message.
        value: String,
    },
    /// `format` is not one of the 18 names of [`PcmFormat::ALL`].
    #[error(
        "raw PCM content type: unknown format {value:?} (expected one of {names})",
        names = format_names()
    )]
    UnknownFormat {
        /// The value as written, echoed in the message.
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
                let range = u64::from(MIN_RATE)..=u64::from(MAX_RATE);
                let n = parse_bounded(canonical, val, range, |value| {
                    PcmParamsError::RateOutOfRange { value }
                })?;
                rate = u32::try_from(n).ok();
            }
            "format" => format = Some(val.parse::<PcmFormat>()?),
            _ => {
                let range = u64::from(MIN_CHANNELS)..=u64::from(MAX_CHANNELS);
                let n = parse_bounded(canonical, val, range, |value| {
                    PcmParamsError::ChannelsOutOfRange { value }
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

/// Parses a decimal integer in `range`. Text that is not an integer is
/// [`PcmParamsError::NotAnInteger`]; an integer out of range (including a
/// negative one or one too large to represent) is `out_of_range(value)`.
fn parse_bounded(
    name: &'static str,
    value: &str,
    range: RangeInclusive<u64>,
    out_of_range: fn(String) -> PcmParamsError,
) -> Result<u64, PcmParamsError> {
    let is_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let negative = value.strip_prefix('-').is_some_and(is_digits);
    if !negative && !is_digits(value) {
        return Err(PcmParamsError::NotAnInteger {
            name,
            value: value.to_owned(),
        });
    }
    match value.parse::<u64>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(out_of_range(value.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content_type::testing::{random_case, resolve, spec, spec_strategy, ALIASES};
    use crate::content_type::{CochlContentType, ParseContentTypeError};
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[test]
    fn every_format_round_trips_through_a_header() {
        for format in PcmFormat::ALL {
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
    fn spec_displays_as_its_header() {
        let s = spec(22050, "s24le", 2);
        assert_eq!(
            s.to_string(),
            "audio/x-raw; rate=22050; format=s24le; channels=2"
        );
        assert_eq!(parse_raw_pcm(&s.to_string()), Ok(s));
    }

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
            assert!(msg.contains(bad) && msg.contains("384000"), "{msg}");
        }
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
            assert!(msg.contains(bad) && msg.contains("32"), "{msg}");
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
            // (a quoted value is echoed escaped: look for what is inside the quotes)
            let bare = value.trim_matches('"');
            assert!(msg.contains(name) && msg.contains(bare), "{msg}");
        }
    }

    /// The part of the header an error is about: what its message must name.
    fn named_part(err: &PcmParamsError) -> String {
        use PcmParamsError::*;
        match err {
            NotRawPcm { value }
            | RateOutOfRange { value }
            | ChannelsOutOfRange { value }
            | UnknownFormat { value } => value.clone(),
            EmptyParameter { position } => position.to_string(),
            MissingEquals { parameter } | EmptyName { parameter } => parameter.clone(),
            EmptyValue { name } | UnknownParameter { name } => name.clone(),
            DuplicateParameter { name } | MissingParameter { name } | NotAnInteger { name, .. } => {
                (*name).to_owned()
            }
        }
    }

    #[test]
    fn structural_errors_name_the_bad_part() {
        use PcmParamsError::*;
        let owned = |s: &str| s.to_owned();
        for (text, want) in [
            (
                "audio/x-raw; rate=8000; format=s16le",
                MissingParameter { name: "channels" },
            ),
            (
                "audio/x-raw; format=s16le; channels=1",
                MissingParameter { name: "rate" },
            ),
            (
                "audio/x-raw; rate=8000; channels=1",
                MissingParameter { name: "format" },
            ),
            ("audio/x-raw", MissingParameter { name: "rate" }),
            (
                "audio/x-raw; rate=8000; RATE=8000; format=s16le; channels=1",
                DuplicateParameter { name: "rate" },
            ),
            (
                "audio/x-raw; rate=8000; format=s16le; channels=1; bits=16",
                UnknownParameter {
                    name: owned("bits"),
                },
            ),
            (
                "audio/x-raw; rate=8000;; format=s16le; channels=1",
                EmptyParameter { position: 2 },
            ),
            (
                "audio/x-raw; rate=8000; format=s16le; channels=1;;",
                EmptyParameter { position: 4 },
            ),
            (
                "audio/x-raw; rate; format=s16le; channels=1",
                MissingEquals {
                    parameter: owned("rate"),
                },
            ),
            (
                "audio/x-raw; =8000; format=s16le; channels=1",
                EmptyName {
                    parameter: owned("=8000"),
                },
            ),
            (
                "audio/x-raw; rate= ; format=s16le; channels=1",
                EmptyValue {
                    name: owned("rate"),
                },
            ),
            (
                "audio/x-raw; rate=8000; format=s8le; channels=1",
                UnknownFormat {
                    value: owned("s8le"),
                },
            ),
            (
                "audio/wav; rate=8000; format=s16le; channels=1",
                NotRawPcm {
                    value: owned("audio/wav"),
                },
            ),
            ("", NotRawPcm { value: owned("") }),
        ] {
            let err = parse_raw_pcm(text).unwrap_err();
            assert_eq!(err, want, "{text}");
            let msg = err.to_string();
            assert!(msg.contains(&named_part(&err)), "{text}: {msg}");
        }
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
        fn prop_parsers_answer_arbitrary_text_as_their_contracts_say(text in any::<String>()) {
            // Only `audio/x-raw` (any case) before the first `;` can be raw PCM.
            let media_type = text.split(';').next().unwrap_or_default().trim();
            if !media_type.eq_ignore_ascii_case("audio/x-raw") {
                prop_assert_eq!(
                    parse_raw_pcm(&text),
                    Err(PcmParamsError::NotRawPcm { value: media_type.to_owned() })
                );
            }
            // A format is one of the 18 names, in any case, and nothing else.
            let names = [
                "s16le", "s24le", "s32le", "s16be", "s24be", "s32be", "u16le", "u24le", "u32le",
                "u16be", "u24be", "u32be", "f16le", "f24le", "f32le", "f16be", "f24be", "f32be",
            ];
            let lower = text.to_ascii_lowercase();
            match text.parse::<PcmFormat>() {
                Ok(format) => prop_assert_eq!(format.to_string(), lower),
                Err(e) => {
                    prop_assert!(!names.contains(&lower.as_str()));
                    prop_assert_eq!(e, PcmParamsError::UnknownFormat { value: text.clone() });
                }
            }
            // A content type: empty, raw PCM, an alias, or unsupported, by its media type.
            let media = media_type.to_ascii_lowercase();
            let expected = if media.is_empty() {
                Err(ParseContentTypeError::Empty)
            } else if media == "audio/x-raw" {
                parse_raw_pcm(&text).map(CochlContentType::RawPcm).map_err(ParseContentTypeError::RawPcm)
            } else {
                ALIASES
                    .iter()
                    .find(|(alias, _)| *alias == media)
                    .map(|(_, kind)| *kind)
                    .ok_or(ParseContentTypeError::Unsupported { value: text.trim().to_owned() })
            };
            prop_assert_eq!(text.parse::<CochlContentType>(), expected);
            // Behind a raw PCM media type, arbitrary parameters are refused (they would have
            // to name rate, format and channels) or make a spec that writes itself back.
            let raw = format!("audio/x-raw;{text}");
            if let Ok(spec) = parse_raw_pcm(&raw) {
                prop_assert_eq!(parse_raw_pcm(&spec.to_string()), Ok(spec));
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
                // Refused for a reason the soup can produce: never NotRawPcm, the media
                // type is right.
                Err(e) => prop_assert!(!matches!(e, PcmParamsError::NotRawPcm { .. }), "{}", e),
            }
        }

        #[test]
        fn prop_out_of_range_rate_and_channels_are_named(
            s in spec_strategy(),
            rate in prop_oneof![Just(0u64), (u64::from(MAX_RATE) + 1)..u64::MAX],
            channels in prop_oneof![Just(0u64), (u64::from(MAX_CHANNELS) + 1)..u64::MAX],
        ) {
            let (rate, channels) = (rate.to_string(), channels.to_string());
            let format = s.format;
            for (text, want, bad) in [
                (
                    format!("audio/x-raw; rate={rate}; format={format}; channels={}", s.channels),
                    PcmParamsError::RateOutOfRange { value: rate.clone() },
                    &rate,
                ),
                (
                    format!("audio/x-raw; format={format}; channels={channels}; rate={}", s.rate),
                    PcmParamsError::ChannelsOutOfRange { value: channels.clone() },
                    &channels,
                ),
            ] {
                let err = parse_raw_pcm(&text).unwrap_err();
                prop_assert_eq!(&err, &want);
                prop_assert!(err.to_string().contains(bad.as_str()));
                let rejection = resolve(Some(&text), "a.wav", &HashMap::new()).unwrap_err();
                prop_assert_eq!(rejection.code(), "invalid_pcm_parameters");
                prop_assert!(rejection.to_string().contains(bad.as_str()));
            }
        }
    }
}
