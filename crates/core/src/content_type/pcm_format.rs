//! The raw PCM sample formats Cochl.Sense accepts, in one table.
//!
//! Headerless PCM cannot say how its bytes encode samples, so the uploader names
//! a format (`format=s16le`). Everything about a format (its name, width,
//! encoding and byte order) is written once, in [`PcmFormat::ALL`]; parsing,
//! messages and the emulator's decoder all read it.

use std::fmt;
use std::str::FromStr;

use super::raw_pcm::PcmParamsError;

/// How a sample's bits encode its amplitude: the letter a format name starts
/// with. A decoder needs it to scale samples to [-1, 1].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SampleEncoding {
    /// Two's complement integers, so zero is silence (`s..` formats).
    Signed,
    /// Offset binary integers, so the midpoint is silence (`u..` formats).
    Unsigned,
    /// IEEE 754 floating point, already in [-1, 1] (`f..` formats).
    Float,
}

/// Which byte of a multi-byte sample comes first: the `le`/`be` a format name
/// ends with. A decoder needs it to assemble samples from bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ByteOrder {
    /// Least significant byte first (`..le` formats).
    Little,
    /// Most significant byte first (`..be` formats).
    Big,
}

/// A sample format Cochl.Sense accepts for raw PCM (the `format=` parameter).
///
/// Exists so that a raw PCM content type can only name a format the model
/// understands: the fields are private, so every value is a row of
/// [`PcmFormat::ALL`]. It displays as its name (`s16le`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PcmFormat {
    name: &'static str,
    bits: u8,
    encoding: SampleEncoding,
    byte_order: ByteOrder,
}

impl PcmFormat {
    /// The one table of raw PCM formats, in the order Cochl's documentation
    /// lists them: the GStreamer-style name (`s16le` = signed, 16 bits, little
    /// endian) and what it means.
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

    /// Bits one sample of one channel occupies (16, 24 or 32); a decoder cuts
    /// the body into samples of `bits / 8` bytes.
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

/// Builds one row of [`PcmFormat::ALL`], so the table reads as a table.
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

/// Every format name, comma separated, so a message can list the valid choices.
pub(super) fn format_names() -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content_type::testing::pcm;

    #[test]
    fn all_formats_are_distinct_and_parse_in_any_case() {
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
        assert!(msg.contains("s8le"), "{msg}");
        for format in PcmFormat::ALL {
            assert!(msg.contains(&format.to_string()), "{msg}");
        }
        assert!(" s16le".parse::<PcmFormat>().is_err());
        assert!("".parse::<PcmFormat>().is_err());
    }
}
