//! The stand-in for the Cochl.Sense model: windows and a deterministic tag rule.
//!
//! **This is not Cochl.Sense.** The emulator cannot run the real model, so it tags
//! windows with a small, documented rule on signal features. The rule exists to give the
//! pipeline realistic, predictable results (a tone is found where a tone was recorded),
//! not to recognise sounds.
//!
//! # Windows
//! 2 s windows with a 1 s hop over the real decoded length `L` (seconds, rounded to 3
//! decimals as in `metadata.length_sec`): for `L >= 2`, windows `i = 0..floor(L)-1` cover
//! `[i, i+2)` (3.012 s gives 2 windows, as Cochl's example; 4 s gives 3). For
//! `0 < L < 2`, Cochl does not document its behaviour; the emulator returns one window
//! `[0, 2)` computed over the samples there are.
//!
//! # Features (per window)
//! - **level**: RMS of the window's samples in dB relative to full scale (an amplitude-1
//!   square wave is 0 dB; a sine with peak 0.5, "-6 dBFS", is -9 dB).
//!   Digital silence is -infinity.
//! - **crest factor**: peak absolute sample / RMS (a sine is 1.41, white noise 1.7 to 4,
//!   a few short bursts in silence 10 and more).
//! - **zero crossings**, counted only in *active* 50 ms blocks (block RMS at or above
//!   -60 dB), with positions interpolated between samples:
//!   - *dominant frequency* = crossings / (2 x active seconds);
//!   - *tonality* = the share of intervals between successive crossings that lie within
//!     10 % of the median interval (at least 20 intervals are needed, else 0). A steady
//!     pitch has regular crossings (close to 1); noise has irregular ones (about 0.2).
//!     (Per-block crossing *rates* are steady for white noise too, so the rule looks at
//!     the intervals instead.)
//!
//! # Tags
//! With `shift = 6 dB x sensitivity` (sensitivity from the custom attributes:
//! `tags_sensitivity[tag]`, else `default_sensitivity`, else 0; positive = more tags,
//! as Cochl's SageMaker guide says), a window gets, in this order:
//! - `Tone` when level >= -40 dB - shift and tonality >= 0.8;
//! - `Noise` when level >= -40 dB - shift, tonality < 0.8, dominant frequency > 1 kHz
//!   and crest factor < 8 (sustained broadband sound);
//! - `Knock` when crest factor >= 8 and level >= -50 dB - shift (impulsive sound).
//!
//! Sensitivity moves the level thresholds only. Each probability is
//! `1 - 0.5 * exp(-margin / 10 dB)` rounded to 6 decimals, where `margin` is the level
//! above its threshold (for `Knock`, the smaller of that and the crest factor's margin
//! above 8 in dB): 0.5 at the threshold, rising towards 1.
//!
//! A window with no tag alternates deterministically between Cochl's two spellings of
//! "nothing": `[]` for even window indexes and `[{"name": "Others", "probability": 0.0}]`
//! for odd ones, so consumers are exercised on both.

use cochl_core::result::OTHERS_TAG;
use cochl_core::sensitivity::{SensitivityConfig, SensitivityError};

use crate::decode::{decode, Audio, DecodeError};
use crate::output::{Metadata, ResultDocument, TagResult, WindowResult, INPUT_NAME};

/// Window length in seconds.
pub const WINDOW_SEC: u64 = 2;
/// Hop between window starts in seconds.
pub const HOP_SEC: u64 = 1;
/// Level threshold of `Tone` and `Noise` at sensitivity 0 (dB re full scale).
pub const TONE_NOISE_LEVEL_DB: f64 = -40.0;
/// Level threshold of `Knock` at sensitivity 0.
pub const KNOCK_LEVEL_DB: f64 = -50.0;
/// Crest factor at and above which a window is impulsive.
pub const KNOCK_CREST: f64 = 8.0;
/// Tonality at and above which a window has a steady pitch.
pub const TONAL_SHARE: f64 = 0.8;
/// Dominant frequency above which non-tonal sound is `Noise`.
pub const NOISE_MIN_HZ: f64 = 1000.0;
/// How far one sensitivity step moves a level threshold.
pub const SENSITIVITY_STEP_DB: f64 = 6.0;
/// Blocks quieter than this are ignored by the crossing features.
pub const ACTIVE_BLOCK_DB: f64 = -60.0;
/// Block length of the crossing features in seconds.
pub const BLOCK_SEC: f64 = 0.05;
/// Fewest crossing intervals for a tonality above 0.
pub const MIN_INTERVALS: usize = 20;

/// Why an input could not be analysed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AnalysisError {
    /// The custom attributes are not a valid sensitivity configuration.
    #[error("invalid custom attributes: {0}")]
    CustomAttributes(#[from] SensitivityError),
    /// The audio could not be decoded.
    #[error("{0}")]
    Decode(#[from] DecodeError),
}

/// Analyses one input as the endpoint would: decode, window, tag.
///
/// `custom_attributes` is the `X-Amzn-SageMaker-Custom-Attributes` header, parsed with
/// [`SensitivityConfig::parse`] (blank means none).
pub fn analyse(
    bytes: &[u8],
    content_type: &str,
    custom_attributes: Option<&str>,
) -> Result<ResultDocument, AnalysisError> {
    let sensitivity = match custom_attributes {
        Some(text) => SensitivityConfig::parse(text)?,
        None => SensitivityConfig::default(),
    };
    let audio = decode(bytes, content_type)?;
    Ok(analyse_audio(
        &audio,
        content_type,
        bytes.len() as u64,
        &sensitivity,
    ))
}

/// Windows and tags decoded audio (the pure part of [`analyse`]).
pub fn analyse_audio(
    audio: &Audio,
    content_type: &str,
    size_byte: u64,
    sensitivity: &SensitivityConfig,
) -> ResultDocument {
    let length_sec = round_to(audio.duration_sec(), 3);
    let rate = audio.sample_rate as usize;
    let data = window_starts(audio.duration_sec())
        .into_iter()
        .map(|start| {
            let from = (start as usize * rate).min(audio.samples.len());
            let to = ((start + WINDOW_SEC) as usize * rate).min(audio.samples.len());
            let features = Features::of(&audio.samples[from..to], audio.sample_rate);
            let mut tags = tag(&features, sensitivity);
            if tags.is_empty() && start % 2 == 1 {
                tags.push(TagResult {
                    name: OTHERS_TAG.to_owned(),
                    probability: 0.0,
                });
            }
            WindowResult {
                tags,
                start_time: start,
                end_time: start + WINDOW_SEC,
            }
        })
        .collect();
    ResultDocument {
        metadata: Metadata {
            content_type: content_type.to_owned(),
            length_sec,
            size_byte,
            name: INPUT_NAME,
        },
        data,
    }
}

/// Start times of the windows for audio of `length_sec` seconds (see the module doc).
pub fn window_starts(length_sec: f64) -> Vec<u64> {
    let rounded = round_to(length_sec, 3);
    if rounded >= WINDOW_SEC as f64 {
        // `rounded` is at most ~1e10 for any real input, so the cast is exact.
        let whole = rounded.floor() as u64;
        (0..=whole - WINDOW_SEC).step_by(HOP_SEC as usize).collect()
    } else if length_sec > 0.0 {
        vec![0]
    } else {
        Vec::new()
    }
}

/// Rounds to `decimals` decimal places.
pub fn round_to(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// The signal features of one window (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Features {
    /// RMS level in dB re full scale; `-inf` for digital silence.
    pub level_db: f64,
    /// Peak / RMS; 0 for digital silence.
    pub crest: f64,
    /// Share of zero-crossing intervals within 10 % of the median, in [0, 1].
    pub tonality: f64,
    /// Zero crossings per second / 2 over the active blocks, in Hz.
    pub dominant_hz: f64,
}

impl Features {
    /// Computes the features of a window of samples.
    pub fn of(samples: &[f32], sample_rate: u32) -> Features {
        if samples.is_empty() {
            return Features {
                level_db: f64::NEG_INFINITY,
                crest: 0.0,
                tonality: 0.0,
                dominant_hz: 0.0,
            };
        }
        let power: f64 =
            samples.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / samples.len() as f64;
        let rms = power.sqrt();
        let peak = samples.iter().fold(0f64, |m, s| m.max(f64::from(s.abs())));
        let level_db = if rms > 0.0 {
            20.0 * rms.log10()
        } else {
            f64::NEG_INFINITY
        };
        let crest = if rms > 0.0 { peak / rms } else { 0.0 };
        let (tonality, dominant_hz) = crossing_features(samples, sample_rate);
        Features {
            level_db,
            crest,
            tonality,
            dominant_hz,
        }
    }
}

/// Tonality and dominant frequency from zero crossings in active blocks.
fn crossing_features(samples: &[f32], sample_rate: u32) -> (f64, f64) {
    let block = ((f64::from(sample_rate) * BLOCK_SEC).round() as usize).max(1);
    let floor = 10f64.powf(ACTIVE_BLOCK_DB / 20.0);
    let active: Vec<bool> = samples
        .chunks(block)
        .map(|chunk| {
            let power: f64 =
                chunk.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / chunk.len() as f64;
            power.sqrt() >= floor
        })
        .collect();
    let active_samples: usize = samples
        .chunks(block)
        .zip(&active)
        .filter(|(_, active)| **active)
        .map(|(chunk, _)| chunk.len())
        .sum();
    let mut crossings = 0usize;
    let mut intervals: Vec<f64> = Vec::new();
    let mut previous: Option<f64> = None;
    for i in 1..samples.len() {
        if !(active[i / block] && active[(i - 1) / block]) {
            // A quiet stretch ends a run: no interval spans it.
            previous = None;
            continue;
        }
        let (a, b) = (f64::from(samples[i - 1]), f64::from(samples[i]));
        if (a < 0.0) == (b < 0.0) {
            continue;
        }
        // Linear interpolation of where the signal crosses zero.
        let at = (i - 1) as f64 + a / (a - b);
        if let Some(last) = previous {
            intervals.push(at - last);
        }
        crossings += 1;
        previous = Some(at);
    }
    let dominant_hz = if active_samples > 0 {
        crossings as f64 * f64::from(sample_rate) / (2.0 * active_samples as f64)
    } else {
        0.0
    };
    if intervals.len() < MIN_INTERVALS {
        return (0.0, dominant_hz);
    }
    let mut sorted = intervals.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let steady = intervals
        .iter()
        .filter(|i| (*i - median).abs() <= 0.1 * median)
        .count();
    (steady as f64 / intervals.len() as f64, dominant_hz)
}

/// The sensitivity that applies to `tag`: its own, else the default, else 0.
fn sensitivity_of(config: &SensitivityConfig, tag: &str) -> f64 {
    config
        .tags
        .get(tag)
        .copied()
        .or(config.default)
        .map_or(0.0, |s| f64::from(s.get()))
}

/// The probability for a margin (dB) above a threshold: 0.5 at 0, towards 1 above.
pub fn probability(margin_db: f64) -> f64 {
    round_to(1.0 - 0.5 * (-margin_db.max(0.0) / 10.0).exp(), 6)
}

/// Applies the tag rule to one window's features.
pub fn tag(features: &Features, sensitivity: &SensitivityConfig) -> Vec<TagResult> {
    let threshold =
        |base: f64, tag: &str| base - SENSITIVITY_STEP_DB * sensitivity_of(sensitivity, tag);
    let mut tags = Vec::new();
    let tonal = features.tonality >= TONAL_SHARE;
    let impulsive = features.crest >= KNOCK_CREST;

    let tone_margin = features.level_db - threshold(TONE_NOISE_LEVEL_DB, "Tone");
    if tone_margin >= 0.0 && tonal {
        tags.push(("Tone", tone_margin));
    }
    let noise_margin = features.level_db - threshold(TONE_NOISE_LEVEL_DB, "Noise");
    if noise_margin >= 0.0 && !tonal && features.dominant_hz > NOISE_MIN_HZ && !impulsive {
        tags.push(("Noise", noise_margin));
    }
    let knock_margin = features.level_db - threshold(KNOCK_LEVEL_DB, "Knock");
    if knock_margin >= 0.0 && impulsive {
        let crest_margin = 20.0 * (features.crest / KNOCK_CREST).log10();
        tags.push(("Knock", knock_margin.min(crest_margin)));
    }
    tags.into_iter()
        .map(|(name, margin)| TagResult {
            name: name.to_owned(),
            probability: probability(margin),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: u32 = 16_000;

    fn sine(freq: f64, peak: f64, seconds: f64) -> Vec<f32> {
        let n = (seconds * f64::from(RATE)) as usize;
        (0..n)
            .map(|i| {
                (peak * (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(RATE)).sin())
                    as f32
            })
            .collect()
    }

    /// Uniform white noise, the same for the same seed.
    fn noise(peak: f64, seconds: f64, seed: u64) -> Vec<f32> {
        let mut rng = testkit::rng::SplitMix64(seed);
        let n = (seconds * f64::from(RATE)) as usize;
        (0..n).map(|_| (peak * rng.unit()) as f32).collect()
    }

    /// Silence with a 20 ms noise burst every second from 0.5 s.
    fn clicks(seconds: f64) -> Vec<f32> {
        let mut samples = vec![0f32; (seconds * f64::from(RATE)) as usize];
        let burst = noise(0.5, 0.02, 7);
        let mut start = RATE as usize / 2;
        while start + burst.len() <= samples.len() {
            samples[start..start + burst.len()].copy_from_slice(&burst);
            start += RATE as usize;
        }
        samples
    }

    fn names(samples: &[f32], sensitivity: &SensitivityConfig) -> Vec<String> {
        tag(&Features::of(samples, RATE), sensitivity)
            .into_iter()
            .map(|t| t.name)
            .collect()
    }

    fn sensitivity(json: &str) -> SensitivityConfig {
        SensitivityConfig::parse(json).unwrap()
    }

    #[test]
    fn window_counts_follow_cochl() {
        assert_eq!(window_starts(3.012), vec![0, 1]);
        assert_eq!(window_starts(4.0), vec![0, 1, 2]);
        assert_eq!(window_starts(2.0), vec![0]);
        assert_eq!(window_starts(1.0), vec![0]);
        assert_eq!(window_starts(0.001), vec![0]);
        assert_eq!(window_starts(0.0), Vec::<u64>::new());
        // Rounded to milliseconds first, as metadata.length_sec is.
        assert_eq!(window_starts(4.9999), vec![0, 1, 2, 3]);
        assert_eq!(window_starts(60.5).len(), 59);
    }

    #[test]
    fn silence_gets_no_tag() {
        let features = Features::of(&vec![0.0; 32_000], RATE);
        assert_eq!(features.level_db, f64::NEG_INFINITY);
        assert!(names(
            &vec![0.0; 32_000],
            &sensitivity("{\"default_sensitivity\": 2}")
        )
        .is_empty());
    }

    #[test]
    fn a_loud_steady_sine_is_a_tone() {
        let samples = sine(1000.0, 0.5, 2.0);
        let features = Features::of(&samples, RATE);
        assert!((features.level_db - (-9.03)).abs() < 0.05, "{features:?}");
        assert!((features.crest - 2f64.sqrt()).abs() < 0.01, "{features:?}");
        assert!(features.tonality > 0.99, "{features:?}");
        assert!((features.dominant_hz - 1000.0).abs() < 5.0, "{features:?}");
        let tags = tag(&features, &SensitivityConfig::default());
        assert_eq!(tags.len(), 1);
        assert_eq!(tags[0].name, "Tone");
        assert_eq!(tags[0].probability, probability(40.0 - 9.0309));
        assert!(tags[0].probability > 0.97 && tags[0].probability <= 1.0);
    }

    #[test]
    fn white_noise_is_noise() {
        let samples = noise(0.25, 2.0, 42);
        let features = Features::of(&samples, RATE);
        assert!(features.tonality < 0.5, "{features:?}");
        assert!(features.dominant_hz > 3000.0, "{features:?}");
        assert_eq!(names(&samples, &SensitivityConfig::default()), ["Noise"]);
    }

    #[test]
    fn short_bursts_are_knocks() {
        let samples = clicks(2.0);
        let features = Features::of(&samples, RATE);
        assert!(features.crest > 10.0, "{features:?}");
        assert_eq!(names(&samples, &SensitivityConfig::default()), ["Knock"]);
    }

    #[test]
    fn positive_sensitivity_finds_quieter_tones() {
        // RMS -45 dB: below the -40 dB threshold, above -40 - 6 and -40 - 12.
        let peak = 10f64.powf(-45.0 / 20.0) * 2f64.sqrt();
        let quiet = sine(440.0, peak, 2.0);
        assert!(names(&quiet, &SensitivityConfig::default()).is_empty());
        assert_eq!(
            names(&quiet, &sensitivity(r#"{"tags_sensitivity": {"Tone": 2}}"#)),
            ["Tone"]
        );
        assert_eq!(
            names(&quiet, &sensitivity(r#"{"default_sensitivity": 1}"#)),
            ["Tone"]
        );
        assert!(names(&quiet, &sensitivity(r#"{"default_sensitivity": -2}"#)).is_empty());
        // A tag's own value wins over the default.
        assert!(names(
            &quiet,
            &sensitivity(r#"{"default_sensitivity": 2, "tags_sensitivity": {"Tone": -2}}"#)
        )
        .is_empty());
        // And negative sensitivity hides a tone that is found at 0.
        let louder = sine(440.0, 10f64.powf(-35.0 / 20.0) * 2f64.sqrt(), 2.0);
        assert_eq!(names(&louder, &SensitivityConfig::default()), ["Tone"]);
        assert!(names(
            &louder,
            &sensitivity(r#"{"tags_sensitivity": {"Tone": -2}}"#)
        )
        .is_empty());
    }

    #[test]
    fn probabilities_are_monotone_and_bounded() {
        assert_eq!(probability(0.0), 0.5);
        assert_eq!(probability(-3.0), 0.5);
        let mut last = 0.0;
        for margin in 0..100 {
            let p = probability(f64::from(margin));
            assert!(p >= last && p > 0.0 && p <= 1.0);
            last = p;
        }
    }

    #[test]
    fn empty_windows_alternate_between_the_two_spellings() {
        let audio = Audio {
            samples: vec![0.0; 4 * RATE as usize],
            sample_rate: RATE,
        };
        let document = analyse_audio(&audio, "audio/wav", 128_044, &SensitivityConfig::default());
        assert_eq!(document.data.len(), 3);
        assert!(document.data[0].tags.is_empty());
        assert_eq!(
            document.data[1].tags,
            vec![TagResult {
                name: "Others".into(),
                probability: 0.0
            }]
        );
        assert!(document.data[2].tags.is_empty());
        assert_eq!(document.metadata.length_sec, 4.0);
        assert_eq!(document.metadata.size_byte, 128_044);
    }

    #[test]
    fn short_audio_gets_one_window() {
        let audio = Audio {
            samples: sine(1000.0, 0.5, 1.0),
            sample_rate: RATE,
        };
        let document = analyse_audio(&audio, "audio/wav", 1, &SensitivityConfig::default());
        assert_eq!(document.data.len(), 1);
        assert_eq!(
            (document.data[0].start_time, document.data[0].end_time),
            (0, 2)
        );
        assert_eq!(document.tag_names(), vec![vec!["Tone"]]);
    }

    fn sample(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../samples")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn the_samples_get_the_documented_tags() {
        let cases: [(&str, &str, &[&[&str]]); 5] = [
            (
                "tone-1khz.wav",
                "audio/wav",
                &[&["Tone"], &["Tone"], &["Tone"]],
            ),
            (
                "street.mp3",
                "audio/mp3",
                &[&["Tone"], &["Tone"], &["Noise"], &["Noise"]],
            ),
            (
                "knocks.ogg",
                "audio/ogg",
                &[&["Knock"], &["Knock"], &["Knock"]],
            ),
            (
                "tone-440hz-s16le-16k-mono.pcm",
                "audio/x-raw; rate=16000; format=s16le; channels=1",
                &[&["Tone"], &["Tone"]],
            ),
            ("silence.wav", "audio/wav", &[&[], &[]]),
        ];
        for (name, content_type, expected) in cases {
            let bytes = sample(name);
            let document = analyse(&bytes, content_type, None).unwrap();
            assert_eq!(document.tag_names(), expected, "{name}");
            assert_eq!(document.metadata.content_type, content_type);
            assert_eq!(document.metadata.size_byte, bytes.len() as u64);
            assert_eq!(document.metadata.name, "sagemaker_input");
            for (i, window) in document.data.iter().enumerate() {
                assert_eq!(
                    (window.start_time, window.end_time),
                    (i as u64, i as u64 + 2)
                );
                for tag in &window.tags {
                    assert!(
                        tag.probability > 0.0 && tag.probability <= 1.0 || tag.name == "Others"
                    );
                }
            }
        }
        let silence = analyse(&sample("silence.wav"), "audio/wav", None).unwrap();
        assert!(silence.data[0].tags.is_empty());
        assert_eq!(silence.data[1].tags[0].name, "Others");
        assert_eq!(silence.metadata.length_sec, 3.0);
    }

    #[test]
    fn invalid_custom_attributes_fail_before_decoding() {
        let err = analyse(b"", "audio/wav", Some("{not json")).unwrap_err();
        assert!(matches!(err, AnalysisError::CustomAttributes(_)), "{err}");
        let err = analyse(b"", "audio/wav", Some(r#"{"default_sensitivity": 3}"#)).unwrap_err();
        assert!(
            err.to_string().starts_with("invalid custom attributes: "),
            "{err}"
        );
    }
}
