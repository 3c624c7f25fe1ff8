//! Deterministic, realistic Cochl results and test audio, generated in memory.
//!
//! A result has one window per second of audio (2 s windows, 1 s hop), in exactly the
//! format of docs/cochl-contract.md ("Result document"): Python-style separators,
//! integer times, probabilities printed as `f32`. Sound sources switch on and off as
//! Markov chains, so tags form long detections; hierarchical pairs carry equal scores
//! (`Music`/`Instrument`, `Gunshot`/`Gunshot_single`, `Dog`/`Dog_bark`); an active tag
//! drops out of a single window now and then (flicker); every window holds 3 to 6 tags.

use std::fmt::Write as _;

use testkit::rng::SplitMix64;

/// A sound source: one tag, or a parent and child reported with equal scores.
struct Source {
    names: &'static [&'static str],
    /// Chance per window to switch on when off.
    on: f64,
    /// Chance per window to switch off when on.
    off: f64,
    active: bool,
    level: f64,
}

fn sources() -> Vec<Source> {
    let source = |names, on, off| Source {
        names,
        on,
        off,
        active: false,
        level: 0.6,
    };
    vec![
        source(&["Music", "Instrument"], 0.02, 0.01),
        source(&["Piano"], 0.03, 0.05),
        source(&["Speech"], 0.05, 0.04),
        source(&["Gunshot", "Gunshot_single"], 0.005, 0.5),
        source(&["Dog", "Dog_bark"], 0.01, 0.2),
        source(&["Siren"], 0.004, 0.03),
        source(&["Knock"], 0.01, 0.4),
        source(&["Laughter"], 0.01, 0.3),
        source(&["Cough"], 0.01, 0.5),
        source(&["Baby_cry"], 0.003, 0.05),
        source(&["Vehicle", "Car"], 0.02, 0.03),
        source(&["Footsteps"], 0.03, 0.1),
    ]
}

/// Background tags added when fewer than three tags are active.
const FILLERS: [&str; 3] = ["Noise", "Wind", "Crowd"];

/// Chance that an active tag is missing from one window.
const FLICKER: f64 = 0.04;

/// A Cochl result document for `windows` windows (audio of about `windows + 1` seconds).
pub fn cochl_result(windows: usize, seed: u64) -> Vec<u8> {
    let mut rng = SplitMix64(seed);
    let mut sources = sources();
    // About 26 tags' worth of text per window on average (measured, rounded up).
    let mut out = String::with_capacity(200 + windows * 260);
    let length = windows as f64 + 1.0;
    let _ = write!(
        out,
        "{{\"metadata\": {{\"content_type\": \"audio/wav\", \"length_sec\": {length}, \"size_byte\": {}, \"name\": \"sagemaker_input\"}}, \"data\": [",
        (length * 32_000.0) as u64 + 44
    );
    let mut tags: Vec<(&str, f32)> = Vec::with_capacity(12);
    for i in 0..windows {
        tags.clear();
        for source in sources.iter_mut() {
            let flip = rng.fraction();
            source.active = if source.active {
                flip >= source.off
            } else {
                flip < source.on
            };
            if !source.active {
                continue;
            }
            // The score drifts slowly while the source lasts.
            source.level = (source.level + (rng.fraction() - 0.5) * 0.1).clamp(0.35, 0.99);
            if rng.fraction() < FLICKER {
                continue;
            }
            let score = source.level as f32;
            for name in source.names {
                tags.push((name, score));
            }
        }
        let mut filler = 0;
        while tags.len() < 3 {
            tags.push((FILLERS[filler], (0.4 + rng.fraction() * 0.5) as f32));
            filler += 1;
        }
        if tags.len() > 6 {
            // Keep the six strongest; a pair cut in two by the limit goes as a whole.
            tags.sort_by(|a, b| b.1.total_cmp(&a.1));
            let cut = tags[6].1;
            tags.truncate(6);
            while tags.last().is_some_and(|t| t.1 == cut) && tags.len() > 3 {
                tags.pop();
            }
        }
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str("{\"tags\": [");
        for (j, (name, score)) in tags.iter().enumerate() {
            if j > 0 {
                out.push_str(", ");
            }
            let _ = write!(out, "{{\"name\": \"{name}\", \"probability\": {score}}}");
        }
        let _ = write!(out, "], \"start_time\": {i}, \"end_time\": {}}}", i + 2);
    }
    out.push_str("]}");
    out.into_bytes()
}

/// A 16-bit mono wav of `seconds` at `rate` Hz holding a tone of `hz` at half scale.
pub fn tone_wav(seconds: u32, rate: u32, hz: f64) -> Vec<u8> {
    let samples: Vec<f64> = (0..seconds * rate)
        .map(|n| 0.5 * (f64::from(n) / f64::from(rate) * hz * std::f64::consts::TAU).sin())
        .collect();
    testkit::audio::wav_s16_mono(rate, &samples)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cochl_core::result::CochlResult;

    #[test]
    fn results_parse_and_hold_three_to_six_tags_per_window() {
        let bytes = cochl_result(600, 7);
        assert_eq!(bytes, cochl_result(600, 7), "deterministic");
        let result = CochlResult::parse(&bytes).expect("valid result");
        assert_eq!(result.data.len(), 600);
        assert!(result.data.iter().all(|w| (3..=6).contains(&w.tags.len())));
        // Hierarchical pairs share their score.
        let paired = result.data.iter().any(|w| {
            let score = |n: &str| w.tags.iter().find(|t| t.name == n).map(|t| t.probability);
            score("Music").is_some() && score("Music") == score("Instrument")
        });
        assert!(paired);
    }

    #[test]
    fn the_wav_has_a_consistent_header() {
        let wav = tone_wav(10, 16_000, 1000.0);
        assert_eq!(wav.len(), 44 + 320_000);
        assert_eq!(&wav[..4], b"RIFF");
    }
}
