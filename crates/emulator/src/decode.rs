//! Decoding a request body into mono `f32` samples, as the model would before listening.
//!
//! The content type decides how (docs/cochl-contract.md, "Request contract"):
//! - `audio/wav`, `audio/mp3`, `audio/ogg`: decoded with symphonia's reader for that
//!   container, after checking the bytes really are that container; a WAV content type
//!   on MP3 bytes is a failure naming both.
//! - `application/octet-stream`: the container is sniffed by symphonia's probe (WAV, MP3,
//!   Ogg, FLAC). Raw PCM has no header and cannot be sniffed: it fails.
//! - `audio/x-raw; rate=..; format=..; channels=..`: parsed by
//!   [`cochl_core::content_type::parse_raw_pcm`] and decoded by hand for all 18 formats.
//!   Integers are scaled by 2^(bits-1); unsigned formats are offset binary (the midpoint
//!   is silence); `f16` is IEEE 754 half precision; `f24` is **the upper three bytes of an
//!   IEEE 754 single** (sign, 8-bit exponent, 15 mantissa bits: an `f32` whose lowest
//!   mantissa byte was dropped), since no standard 24-bit float exists. A body that is not
//!   a whole number of frames fails, and so does a non-finite float sample.
//!
//! Every channel is averaged into one and the result clamped to [-1, 1].

use std::io::Cursor;

use cochl_core::content_type::{
    parse_raw_pcm, ByteOrder, PcmFormat, PcmParamsError, PcmSpec, SampleEncoding,
};
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;
use symphonia::default::formats::{MpaReader, OggReader, WavReader};

/// Decoded audio: mono samples in [-1, 1] and their rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    /// Mono samples, every channel averaged, clamped to [-1, 1].
    pub samples: Vec<f32>,
    /// Samples per second, which turns the sample count into a duration.
    pub sample_rate: u32,
}

impl Audio {
    /// The real duration in seconds (samples / rate).
    pub fn duration_sec(&self) -> f64 {
        if self.sample_rate == 0 {
            return 0.0;
        }
        self.samples.len() as f64 / f64::from(self.sample_rate)
    }
}

/// Why a body could not be decoded; each message says what to fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// The content type is none of those Cochl.Sense accepts.
    #[error("unsupported content type {0:?}: expected audio/mp3, audio/wav, audio/ogg, application/octet-stream or audio/x-raw; rate=..; format=..; channels=..")]
    UnsupportedContentType(String),
    /// A raw PCM content type with bad parameters.
    #[error("{0}")]
    RawPcm(#[from] PcmParamsError),
    /// The input has no bytes.
    #[error("the input is empty (0 bytes)")]
    Empty,
    /// The bytes are not the container the content type names.
    #[error(
        "content type {content_type} does not match the data: expected {expected}, found {found}"
    )]
    ContainerMismatch {
        /// The request's content type, echoed in the message.
        content_type: String,
        /// The container the content type names.
        expected: &'static str,
        /// What the bytes look like, so the message can say what was sent instead.
        found: &'static str,
    },
    /// `application/octet-stream` bytes in no recognised container.
    #[error("application/octet-stream: the audio format could not be detected ({0}); raw PCM cannot be auto-detected, send it as audio/x-raw; rate=..; format=..; channels=..")]
    Undetected(String),
    /// The container was recognised but could not be read.
    #[error("could not read the {container} container: {message}")]
    Container {
        /// Which container's reader failed.
        container: &'static str,
        /// The reader's own explanation.
        message: String,
    },
    /// No decoder for the stream's codec, or the codec failed.
    #[error("could not decode the audio: {0}")]
    Codec(String),
    /// A raw PCM body that is not a whole number of frames.
    #[error("raw PCM body of {len} bytes is not a whole number of {frame_bytes}-byte frames ({format}, {channels} channel(s))")]
    PartialFrame {
        /// The body's length in bytes, which the frame size does not divide.
        len: usize,
        /// The frame size the content type implies (sample width times channels).
        frame_bytes: usize,
        /// The declared format, one of the two factors of the frame size.
        format: PcmFormat,
        /// The declared channel count, the other factor.
        channels: u8,
    },
    /// A float raw PCM sample that is NaN or infinite.
    #[error("raw PCM sample {index} is not a finite number")]
    NonFinite {
        /// Where the bad sample is (counted across interleaved channels).
        index: usize,
    },
    /// The stream decoded to no samples at all.
    #[error("the input contains no audio samples")]
    NoSamples,
}

/// How a content type says to decode the body: which reader, or none (raw PCM).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFormat {
    /// `audio/wav`: the bytes must be RIFF/WAVE.
    Wav,
    /// `audio/mp3`: the bytes must be MPEG audio.
    Mp3,
    /// `audio/ogg`: the bytes must be an Ogg stream.
    Ogg,
    /// `application/octet-stream`: sniff the container.
    Detect,
    /// `audio/x-raw; ...`: headerless samples laid out as the parameters say.
    Raw(PcmSpec),
}

impl RequestFormat {
    /// Classifies a content type (media type compared without ASCII case, surrounding
    /// whitespace ignored). Only Cochl's list is accepted; parameters are only allowed
    /// on `audio/x-raw`.
    pub fn from_content_type(content_type: &str) -> Result<Self, DecodeError> {
        let trimmed = content_type.trim();
        let media_type = trimmed.split(';').next().unwrap_or_default().trim();
        if media_type.eq_ignore_ascii_case("audio/x-raw") {
            return Ok(RequestFormat::Raw(parse_raw_pcm(trimmed)?));
        }
        let format = match trimmed.to_ascii_lowercase().as_str() {
            "audio/wav" => RequestFormat::Wav,
            "audio/mp3" => RequestFormat::Mp3,
            "audio/ogg" => RequestFormat::Ogg,
            "application/octet-stream" => RequestFormat::Detect,
            _ => return Err(DecodeError::UnsupportedContentType(content_type.to_owned())),
        };
        Ok(format)
    }
}

/// A container recognised from its first bytes, for checks and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    /// `RIFF` then `WAVE`: a WAV file.
    Wav,
    /// An ID3v2 tag or an MPEG audio frame header: an MP3 file.
    Mp3,
    /// An `OggS` page header: an Ogg stream.
    Ogg,
    /// `fLaC`: a native FLAC stream, which only auto-detection accepts.
    Flac,
    /// Something else we can name (AIFF, MP4, Matroska).
    Other(&'static str),
    /// Nothing we recognise.
    Unknown,
}

impl Sniffed {
    /// A human name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Sniffed::Wav => "WAV",
            Sniffed::Mp3 => "MP3",
            Sniffed::Ogg => "Ogg",
            Sniffed::Flac => "FLAC",
            Sniffed::Other(name) => name,
            Sniffed::Unknown => "unrecognised bytes",
        }
    }
}

/// Recognises a container from its magic bytes.
pub fn sniff(bytes: &[u8]) -> Sniffed {
    let at = |range: std::ops::Range<usize>| bytes.get(range).unwrap_or_default();
    if at(0..4) == b"RIFF" && at(8..12) == b"WAVE" {
        Sniffed::Wav
    } else if at(0..4) == b"OggS" {
        Sniffed::Ogg
    } else if at(0..4) == b"fLaC" {
        Sniffed::Flac
    } else if at(0..3) == b"ID3" || is_mpeg_frame_header(at(0..4)) {
        Sniffed::Mp3
    } else if at(0..4) == b"FORM" && matches!(at(8..12), b"AIFF" | b"AIFC") {
        Sniffed::Other("AIFF")
    } else if at(4..8) == b"ftyp" {
        Sniffed::Other("MP4")
    } else if at(0..4) == [0x1a, 0x45, 0xdf, 0xa3] {
        Sniffed::Other("Matroska/WebM")
    } else {
        Sniffed::Unknown
    }
}

/// An MPEG audio frame header: 11 sync bits, a valid version, layer, bitrate and rate.
fn is_mpeg_frame_header(b: &[u8]) -> bool {
    let [b0, b1, b2, _] = b else {
        return false;
    };
    *b0 == 0xff
        && b1 & 0xe0 == 0xe0
        && (b1 >> 3) & 0x03 != 0x01 // reserved version
        && (b1 >> 1) & 0x03 != 0x00 // reserved layer
        && b2 >> 4 != 0x0f // bad bitrate index
        && (b2 >> 2) & 0x03 != 0x03 // reserved sample rate
}

/// Decodes `bytes` as `content_type` into mono samples.
pub fn decode(bytes: &[u8], content_type: &str) -> Result<Audio, DecodeError> {
    let format = RequestFormat::from_content_type(content_type)?;
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    let (expected, container) = match format {
        RequestFormat::Raw(spec) => return decode_raw(bytes, spec),
        RequestFormat::Detect => return decode_detected(bytes),
        RequestFormat::Wav => (Sniffed::Wav, "WAV"),
        RequestFormat::Mp3 => (Sniffed::Mp3, "MP3"),
        RequestFormat::Ogg => (Sniffed::Ogg, "Ogg"),
    };
    let found = sniff(bytes);
    if found != expected {
        return Err(DecodeError::ContainerMismatch {
            content_type: content_type.trim().to_owned(),
            expected: expected.name(),
            found: found.name(),
        });
    }
    let source = stream(bytes);
    let options = format_options();
    let reader: Result<Box<dyn FormatReader>, SymphoniaError> = match format {
        RequestFormat::Wav => WavReader::try_new(source, &options).map(|r| Box::new(r) as _),
        RequestFormat::Mp3 => MpaReader::try_new(source, &options).map(|r| Box::new(r) as _),
        _ => OggReader::try_new(source, &options).map(|r| Box::new(r) as _),
    };
    let reader = reader.map_err(|e| DecodeError::Container {
        container,
        message: e.to_string(),
    })?;
    decode_reader(reader, container)
}

fn stream(bytes: &[u8]) -> MediaSourceStream {
    MediaSourceStream::new(Box::new(Cursor::new(bytes.to_vec())), Default::default())
}

fn format_options() -> FormatOptions {
    // Gapless: drop encoder delay and padding (MP3 LAME header, Vorbis), so the length
    // is the real one.
    FormatOptions {
        enable_gapless: true,
        ..Default::default()
    }
}

fn decode_detected(bytes: &[u8]) -> Result<Audio, DecodeError> {
    let probed = symphonia::default::get_probe()
        .format(
            &Hint::new(),
            stream(bytes),
            &format_options(),
            &MetadataOptions::default(),
        )
        .map_err(|e| DecodeError::Undetected(e.to_string()))?;
    let container = match sniff(bytes) {
        Sniffed::Unknown => "detected",
        other => other.name(),
    };
    decode_reader(probed.format, container)
}

/// Decodes the default track of a container into mono samples.
fn decode_reader(
    mut reader: Box<dyn FormatReader>,
    container: &'static str,
) -> Result<Audio, DecodeError> {
    let track = reader
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| DecodeError::Container {
            container,
            message: "no audio track".to_owned(),
        })?;
    let track_id = track.id;
    let mut sample_rate = track.codec_params.sample_rate.unwrap_or(0);
    let mut decoder = symphonia::default::get_codecs()
        .make(&track.codec_params, &DecoderOptions::default())
        .map_err(|e| DecodeError::Codec(e.to_string()))?;

    let mut samples = Vec::new();
    let mut decode_errors = 0usize;
    let mut packets = 0usize;
    loop {
        let packet = match reader.next_packet() {
            Ok(packet) => packet,
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                break
            }
            Err(SymphoniaError::ResetRequired) => break,
            Err(e) => {
                return Err(DecodeError::Container {
                    container,
                    message: e.to_string(),
                })
            }
        };
        if packet.track_id() != track_id {
            continue;
        }
        packets += 1;
        let decoded = match decoder.decode(&packet) {
            Ok(decoded) => decoded,
            // A corrupt packet is skipped, as players do; too many fail the input below.
            Err(SymphoniaError::DecodeError(_)) => {
                decode_errors += 1;
                continue;
            }
            Err(e) => return Err(DecodeError::Codec(e.to_string())),
        };
        let spec = *decoded.spec();
        sample_rate = spec.rate;
        let channels = spec.channels.count().max(1);
        let mut buf = SampleBuffer::<f32>::new(decoded.capacity() as u64, spec);
        buf.copy_interleaved_ref(decoded);
        mix_into(&mut samples, buf.samples(), channels);
    }
    if packets > 0 && decode_errors * 2 > packets {
        return Err(DecodeError::Codec(format!(
            "{decode_errors} of {packets} packets of the {container} stream are corrupt"
        )));
    }
    if samples.is_empty() || sample_rate == 0 {
        return Err(DecodeError::NoSamples);
    }
    Ok(Audio {
        samples,
        sample_rate,
    })
}

/// Averages interleaved frames of `channels` samples into `out`, clamped to [-1, 1].
fn mix_into(out: &mut Vec<f32>, interleaved: &[f32], channels: usize) {
    out.reserve(interleaved.len() / channels);
    for frame in interleaved.chunks_exact(channels) {
        let sum: f32 = frame.iter().sum();
        out.push((sum / channels as f32).clamp(-1.0, 1.0));
    }
}

/// Decodes headerless PCM described by `spec`.
fn decode_raw(bytes: &[u8], spec: PcmSpec) -> Result<Audio, DecodeError> {
    let width = sample_bytes(spec.format);
    let frame_bytes = width * usize::from(spec.channels);
    if bytes.len() % frame_bytes != 0 {
        return Err(DecodeError::PartialFrame {
            len: bytes.len(),
            frame_bytes,
            format: spec.format,
            channels: spec.channels,
        });
    }
    let mut interleaved = Vec::with_capacity(bytes.len() / width);
    for (index, sample) in bytes.chunks_exact(width).enumerate() {
        let value = pcm_sample(sample, spec.format);
        if !value.is_finite() {
            return Err(DecodeError::NonFinite { index });
        }
        interleaved.push(value);
    }
    let mut samples = Vec::new();
    mix_into(&mut samples, &interleaved, usize::from(spec.channels));
    Ok(Audio {
        samples,
        sample_rate: spec.rate,
    })
}

/// Bytes one sample of one channel occupies in `format` (2, 3 or 4): the unit a raw body
/// is cut into.
fn sample_bytes(format: PcmFormat) -> usize {
    format.bits() as usize / 8
}

/// Decodes one sample of `format` (2, 3 or 4 bytes) to `f32` (not yet clamped).
pub fn pcm_sample(bytes: &[u8], format: PcmFormat) -> f32 {
    let bits = 8 * bytes.len() as u32;
    let raw = match format.byte_order() {
        ByteOrder::Big => bytes.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)),
        ByteOrder::Little => bytes
            .iter()
            .rev()
            .fold(0u32, |acc, b| (acc << 8) | u32::from(*b)),
    };
    let scale = 2f64.powi(bits as i32 - 1);
    let value = match format.encoding() {
        SampleEncoding::Float => {
            return match bits {
                16 => f16_to_f32(raw as u16),
                24 => f32::from_bits(raw << 8),
                _ => f32::from_bits(raw),
            }
        }
        // Sign-extend from `bits` to 32.
        SampleEncoding::Signed => f64::from(((raw << (32 - bits)) as i32) >> (32 - bits)),
        SampleEncoding::Unsigned => f64::from(raw) - scale,
    };
    (value / scale) as f32
}

/// IEEE 754 half precision to single precision (exact: every half is a single).
pub fn f16_to_f32(half: u16) -> f32 {
    let negative = half & 0x8000 != 0;
    let exponent = u32::from((half >> 10) & 0x1f);
    let mantissa = u32::from(half & 0x03ff);
    let sign = u32::from(negative) << 31;
    match exponent {
        0 => {
            // Zero or subnormal: mantissa * 2^-24.
            let magnitude = mantissa as f32 * (1.0 / 16_777_216.0);
            if negative {
                -magnitude
            } else {
                magnitude
            }
        }
        0x1f => f32::from_bits(sign | 0x7f80_0000 | (mantissa << 13)),
        _ => f32::from_bits(sign | ((exponent + 112) << 23) | (mantissa << 13)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn sample(name: &str) -> Vec<u8> {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../samples")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn pcm(name: &str) -> PcmFormat {
        name.parse().unwrap()
    }

    fn rms(samples: &[f32]) -> f64 {
        let sum: f64 = samples.iter().map(|s| f64::from(*s).powi(2)).sum();
        (sum / samples.len() as f64).sqrt()
    }

    #[test]
    fn decodes_the_wav_sample() {
        let audio = decode(&sample("tone-1khz.wav"), "audio/wav").unwrap();
        assert_eq!(audio.sample_rate, 16_000);
        assert_eq!(audio.samples.len(), 64_000);
        // A sine with peak 0.5 has an RMS of 0.5/sqrt(2).
        assert!((rms(&audio.samples) - 0.353_55).abs() < 1e-3);
    }

    #[test]
    fn decodes_the_mp3_sample_to_its_real_length() {
        let audio = decode(&sample("street.mp3"), "audio/mp3").unwrap();
        assert_eq!(audio.sample_rate, 16_000);
        assert!(
            (audio.duration_sec() - 5.0).abs() < 0.001,
            "{}",
            audio.duration_sec()
        );
        // Silence first, the tone in the middle.
        assert!(rms(&audio.samples[..16_000]) < 0.01);
        assert!((rms(&audio.samples[32_000..48_000]) - 0.3535).abs() < 0.02);
    }

    #[test]
    fn decodes_the_ogg_sample() {
        let audio = decode(&sample("knocks.ogg"), "audio/ogg").unwrap();
        assert_eq!(audio.sample_rate, 16_000);
        assert!(
            (audio.duration_sec() - 4.0).abs() < 0.001,
            "{}",
            audio.duration_sec()
        );
    }

    #[test]
    fn decodes_the_raw_pcm_sample() {
        let audio = decode(
            &sample("tone-440hz-s16le-16k-mono.pcm"),
            "audio/x-raw; rate=16000; format=s16le; channels=1",
        )
        .unwrap();
        assert_eq!(audio.samples.len(), 48_000);
        assert!((rms(&audio.samples) - 0.353_55).abs() < 1e-3);
    }

    #[test]
    fn decodes_the_silence_sample_to_zeros() {
        let audio = decode(&sample("silence.wav"), "audio/wav").unwrap();
        assert_eq!(audio.samples.len(), 48_000);
        assert!(audio.samples.iter().all(|s| *s == 0.0));
    }

    #[test]
    fn octet_stream_sniffs_containers_but_not_raw_pcm() {
        for name in ["tone-1khz.wav", "street.mp3", "knocks.ogg"] {
            let bytes = sample(name);
            let detected = decode(&bytes, "application/octet-stream").unwrap();
            let ext = name.rsplit('.').next().unwrap();
            let declared = decode(&bytes, &format!("audio/{ext}")).unwrap();
            assert_eq!(detected, declared, "{name}");
        }
        let err = decode(
            &sample("tone-440hz-s16le-16k-mono.pcm"),
            "application/octet-stream",
        )
        .unwrap_err();
        assert!(matches!(err, DecodeError::Undetected(_)), "{err}");
    }

    #[test]
    fn a_content_type_must_match_the_container() {
        let err = decode(&sample("street.mp3"), "audio/wav").unwrap_err();
        assert_eq!(
            err.to_string(),
            "content type audio/wav does not match the data: expected WAV, found MP3"
        );
        let err = decode(&sample("tone-1khz.wav"), "audio/ogg").unwrap_err();
        assert!(err.to_string().contains("found WAV"), "{err}");
        let err = decode(&sample("knocks.ogg"), "audio/mp3").unwrap_err();
        assert!(err.to_string().contains("found Ogg"), "{err}");
        let err = decode(b"this is not audio at all", "audio/wav").unwrap_err();
        assert!(
            err.to_string().contains("found unrecognised bytes"),
            "{err}"
        );
    }

    #[test]
    fn refuses_empty_truncated_and_unsupported_inputs() {
        assert_eq!(decode(b"", "audio/wav"), Err(DecodeError::Empty));
        assert!(matches!(
            decode(b"abc", "audio/flac"),
            Err(DecodeError::UnsupportedContentType(_))
        ));
        assert!(matches!(
            decode(b"abc", "audio/x-raw; rate=16000; format=s17le; channels=1"),
            Err(DecodeError::RawPcm(_))
        ));
        // A WAV header with its data cut off decodes to nothing.
        let wav = sample("tone-1khz.wav");
        assert!(decode(&wav[..44], "audio/wav").is_err());
    }

    #[test]
    fn raw_pcm_needs_whole_frames() {
        let err = decode(
            &[0u8; 7],
            "audio/x-raw; rate=8000; format=s16le; channels=2",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "raw PCM body of 7 bytes is not a whole number of 4-byte frames (s16le, 2 channel(s))"
        );
        assert!(decode(
            &[0u8; 10],
            "audio/x-raw; rate=8000; format=s24be; channels=1"
        )
        .is_err());
        assert!(decode(
            &[0u8; 9],
            "audio/x-raw; rate=8000; format=s24be; channels=1"
        )
        .is_ok());
    }

    /// Encodes a value in [-1, 1) in `format`, the inverse of `pcm_sample`.
    fn encode(value: f32, format: PcmFormat) -> Vec<u8> {
        let width = sample_bytes(format);
        let bits = format.bits();
        let raw: u32 = if format.encoding() == SampleEncoding::Float {
            match bits {
                16 => u32::from(f32_to_f16(value)),
                24 => value.to_bits() >> 8,
                _ => value.to_bits(),
            }
        } else {
            let scale = 2f64.powi(bits as i32 - 1);
            let max = scale - 1.0;
            let level = (f64::from(value) * scale).round().clamp(-scale, max) as i64;
            let offset = match format.encoding() {
                SampleEncoding::Unsigned => scale as i64,
                _ => 0,
            };
            ((level + offset) as u64 & ((1u64 << bits) - 1)) as u32
        };
        let be = raw.to_be_bytes();
        let mut bytes = be[4 - width..].to_vec();
        if format.byte_order() == ByteOrder::Little {
            bytes.reverse();
        }
        bytes
    }

    /// Single to half precision (round to nearest even; no overflow handling), for tests.
    fn f32_to_f16(value: f32) -> u16 {
        let bits = value.to_bits();
        let sign = ((bits >> 16) & 0x8000) as u16;
        if value.abs() < 2f32.powi(-14) {
            // Subnormal half: a multiple of 2^-24.
            return sign | (value.abs() * 2f32.powi(24)).round() as u16;
        }
        let exponent = ((bits >> 23) & 0xff) as i32 - 127 + 15;
        assert!(
            (1..31).contains(&exponent),
            "test values stay in half's normal range"
        );
        let mantissa = bits & 0x7f_ffff;
        let mut half = (exponent as u32) << 10 | (mantissa >> 13);
        let rest = mantissa & 0x1fff;
        if rest > 0x1000 || (rest == 0x1000 && half & 1 == 1) {
            half += 1;
        }
        sign | half as u16
    }

    #[test]
    fn every_raw_format_round_trips() {
        // A 440 Hz sine at 0.7 plus the extremes and exact zero.
        let mut values: Vec<f32> = (0..400)
            .map(|i| 0.7 * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / 8000.0).sin())
            .collect();
        values.extend([0.0, -1.0, 0.999, -0.5, 0.25]);
        for format in PcmFormat::ALL {
            // Tolerance: one integer step, or the float format's precision.
            let tolerance = match (format.encoding(), format.bits()) {
                (SampleEncoding::Float, 16) => 1e-3,
                (SampleEncoding::Float, 24) => 1e-4,
                (SampleEncoding::Float, _) => 0.0,
                (_, bits) => 1.0 / 2f32.powi(bits as i32 - 1),
            };
            for channels in [1u8, 2] {
                let mut bytes = Vec::new();
                for value in &values {
                    for _ in 0..channels {
                        bytes.extend(encode(*value, format));
                    }
                }
                let content_type =
                    format!("audio/x-raw; rate=8000; format={format}; channels={channels}");
                let audio = decode(&bytes, &content_type).unwrap();
                assert_eq!(audio.samples.len(), values.len(), "{format}");
                assert_eq!(audio.sample_rate, 8000);
                for (decoded, original) in audio.samples.iter().zip(&values) {
                    assert!(
                        (decoded - original).abs() <= tolerance,
                        "{format}: {original} decoded as {decoded}"
                    );
                }
            }
        }
    }

    #[test]
    fn unsigned_is_offset_binary_and_signed_is_twos_complement() {
        assert_eq!(pcm_sample(&[0x00, 0x80], pcm("u16le")), 0.0);
        assert_eq!(pcm_sample(&[0x00, 0x00], pcm("u16le")), -1.0);
        assert_eq!(pcm_sample(&[0x80, 0x00, 0x00], pcm("u24be")), 0.0);
        assert_eq!(pcm_sample(&[0x80, 0x00, 0x00], pcm("s24be")), -1.0);
        assert_eq!(pcm_sample(&[0x00, 0x00, 0x00, 0x40], pcm("s32le")), 0.5);
        assert_eq!(pcm_sample(&[0xff, 0xff], pcm("s16be")), -1.0 / 32768.0);
    }

    #[test]
    fn half_and_24_bit_floats_follow_their_definitions() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xb800), -0.5);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x8000), -0.0);
        assert!(f16_to_f32(0x7c00).is_infinite());
        assert!(f16_to_f32(0x7e00).is_nan());
        // f24 = the upper three bytes of an f32: 0.5f32 is 0x3f000000.
        assert_eq!(pcm_sample(&[0x3f, 0x00, 0x00], pcm("f24be")), 0.5);
        assert_eq!(pcm_sample(&[0x00, 0x80, 0xbf], pcm("f24le")), -1.0);
        let err = decode(
            &[0x00, 0x7c],
            "audio/x-raw; rate=8000; format=f16le; channels=1",
        )
        .unwrap_err();
        assert_eq!(err, DecodeError::NonFinite { index: 0 });
    }
}
