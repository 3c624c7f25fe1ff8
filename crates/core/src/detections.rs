//! Merging Cochl's overlapping windows into per-tag detections.
//!
//! Cochl reports 2 s windows with a 1 s hop, so one sound lasting five seconds shows up in
//! four or five windows. Users want "Siren from 3 s to 9 s", not twenty rows. This follows
//! Cochl's own result summary: a tag's segment starts at the first window that has it and
//! ends at the end of the last window that has it; with an interval margin `m`, up to `m`
//! consecutive windows without the tag are bridged (`m = 0`: the first miss closes the
//! segment). `Others` is never a detection.
//!
//! Windows may arrive unsorted or duplicated: they are ordered by start time and windows
//! with the same start are merged (the higher probability of a tag wins). "Missing windows"
//! are counted in hops of time, the hop being the smallest distance between two window
//! starts, so a gap in the data is never silently bridged.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::result::{Window, OTHERS_TAG};

/// How windows are merged; the stack's configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MergeOptions {
    /// Missing windows bridged inside one segment, for tags without their own margin.
    pub default_margin: u32,
    /// Per-tag margins that override `default_margin`.
    pub tag_margins: BTreeMap<String, u32>,
    /// When set, a tag counts in a window only with at least this probability.
    /// Cochl already applies each tag's own threshold, so the default is none.
    pub min_probability: Option<f64>,
}

/// Why merge options were refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MergeOptionsError {
    /// The minimum probability is not a number in [0, 1].
    #[error("minimum probability must be a number in [0, 1], got {0}")]
    BadMinProbability(f64),
}

impl MergeOptions {
    /// Refuses a minimum probability that would silently drop everything or nothing.
    pub fn validate(&self) -> Result<(), MergeOptionsError> {
        match self.min_probability {
            Some(p) if !(0.0..=1.0).contains(&p) => Err(MergeOptionsError::BadMinProbability(p)),
            _ => Ok(()),
        }
    }

    /// The margin that applies to `tag`.
    pub fn margin_for(&self, tag: &str) -> u32 {
        self.tag_margins
            .get(tag)
            .copied()
            .unwrap_or(self.default_margin)
    }

    fn counts(&self, probability: f64) -> bool {
        self.min_probability.is_none_or(|min| probability >= min)
    }
}

/// One continuous stretch in which a tag was heard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// Start of the first window with the tag, in seconds.
    pub start: f64,
    /// End of the last window with the tag, in seconds.
    pub end: f64,
    /// Highest probability of the tag in the segment.
    pub max_probability: f64,
    /// Mean probability over the windows that had the tag (bridged gaps do not count).
    pub mean_probability: f64,
    /// Windows in the segment that had the tag.
    pub windows: u32,
}

/// Everything detected for one tag in one file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TagDetection {
    /// Cochl tag name.
    pub name: String,
    /// Highest probability of the tag anywhere in the file.
    pub max_probability: f64,
    /// Seconds covered by windows with the tag, overlap counted once.
    pub detected_seconds: f64,
    /// Windows that had the tag.
    pub windows: u32,
    /// The merged segments, in time order, never overlapping.
    pub segments: Vec<Segment>,
}

/// A window after ordering and de-duplication: its span and its tags by name.
struct DistinctWindow<'a> {
    start: f64,
    end: f64,
    tags: Vec<(&'a str, f64)>,
}

/// One window in which a tag was heard.
#[derive(Clone, Copy)]
struct Hit {
    start: f64,
    end: f64,
    probability: f64,
}

/// Merges windows into per-tag detections, sorted by tag name.
///
/// The windows must have passed [`crate::result::CochlResult::validate`] (finite times,
/// probabilities in [0, 1]); invalid values give unspecified but panic-free output.
pub fn merge_windows(windows: &[Window], options: &MergeOptions) -> Vec<TagDetection> {
    let distinct = distinct_windows(windows);
    let hop = smallest_hop(&distinct);
    let mut hits: BTreeMap<&str, Vec<Hit>> = BTreeMap::new();
    for window in &distinct {
        for &(name, probability) in &window.tags {
            if name != OTHERS_TAG && options.counts(probability) {
                hits.entry(name).or_default().push(Hit {
                    start: window.start,
                    end: window.end,
                    probability,
                });
            }
        }
    }
    hits.into_iter()
        .map(|(name, hits)| detect_tag(name, &hits, options.margin_for(name), hop))
        .collect()
}

/// Sorts windows by start and merges those with the same start.
fn distinct_windows(windows: &[Window]) -> Vec<DistinctWindow<'_>> {
    let mut order: Vec<&Window> = windows.iter().collect();
    order.sort_by(|a, b| a.start_time.total_cmp(&b.start_time));
    let mut distinct: Vec<DistinctWindow<'_>> = Vec::with_capacity(order.len());
    for window in order {
        let tags = window.tags.iter().map(|t| (t.name.as_str(), t.probability));
        match distinct.last_mut() {
            Some(last) if last.start == window.start_time => {
                last.end = last.end.max(window.end_time);
                for (name, probability) in tags {
                    match last.tags.iter_mut().find(|(n, _)| *n == name) {
                        Some(existing) => existing.1 = existing.1.max(probability),
                        None => last.tags.push((name, probability)),
                    }
                }
            }
            _ => {
                let mut merged: Vec<(&str, f64)> = Vec::with_capacity(window.tags.len());
                for (name, probability) in tags {
                    match merged.iter_mut().find(|(n, _)| *n == name) {
                        Some(existing) => existing.1 = existing.1.max(probability),
                        None => merged.push((name, probability)),
                    }
                }
                distinct.push(DistinctWindow {
                    start: window.start_time,
                    end: window.end_time,
                    tags: merged,
                });
            }
        }
    }
    distinct
}

/// The distance between consecutive window starts (Cochl's hop, 1 s); 1 s when unknown.
fn smallest_hop(distinct: &[DistinctWindow<'_>]) -> f64 {
    distinct
        .windows(2)
        .map(|pair| pair[1].start - pair[0].start)
        .filter(|d| *d > 0.0)
        .fold(None, |acc: Option<f64>, d| {
            Some(acc.map_or(d, |a| a.min(d)))
        })
        .unwrap_or(1.0)
}

/// Windows missing between two hits, counted in hops.
fn missing_between(previous: &Hit, next: &Hit, hop: f64) -> f64 {
    ((next.start - previous.start) / hop).round() - 1.0
}

fn detect_tag(name: &str, hits: &[Hit], margin: u32, hop: f64) -> TagDetection {
    let mut segments: Vec<Segment> = Vec::new();
    let mut sum = 0.0;
    let mut previous: Option<Hit> = None;
    for hit in hits {
        let bridged = previous.is_some_and(|p| missing_between(&p, hit, hop) <= f64::from(margin));
        match segments.last_mut() {
            Some(segment) if bridged => {
                segment.end = segment.end.max(hit.end);
                segment.max_probability = segment.max_probability.max(hit.probability);
                segment.windows += 1;
                sum += hit.probability;
            }
            _ => {
                close_segment(segments.last_mut(), sum);
                sum = hit.probability;
                segments.push(Segment {
                    start: hit.start,
                    end: hit.end,
                    max_probability: hit.probability,
                    mean_probability: hit.probability,
                    windows: 1,
                });
            }
        }
        previous = Some(*hit);
    }
    close_segment(segments.last_mut(), sum);
    TagDetection {
        name: name.to_string(),
        max_probability: hits.iter().map(|h| h.probability).fold(0.0, f64::max),
        detected_seconds: covered_seconds(hits),
        windows: hits.len() as u32,
        segments,
    }
}

/// Sets the segment's mean, rounded to 9 decimals so summing floats does not print as
/// `0.9774059999999999` (never above the segment's maximum).
fn close_segment(segment: Option<&mut Segment>, sum: f64) {
    if let Some(segment) = segment {
        let mean = sum / f64::from(segment.windows);
        segment.mean_probability = ((mean * 1e9).round() / 1e9).min(segment.max_probability);
    }
}

/// Length of the union of the hits' spans; `hits` are sorted by start.
fn covered_seconds(hits: &[Hit]) -> f64 {
    let mut total = 0.0;
    let mut current: Option<(f64, f64)> = None;
    for hit in hits {
        current = match current {
            Some((start, end)) if hit.start <= end => Some((start, end.max(hit.end))),
            Some((start, end)) => {
                total += end - start;
                Some((hit.start, hit.end))
            }
            None => Some((hit.start, hit.end)),
        };
    }
    if let Some((start, end)) = current {
        total += end - start;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::TagScore;
    use proptest::prelude::*;

    fn window(start: u32, tags: &[(&str, f64)]) -> Window {
        Window {
            start_time: f64::from(start),
            end_time: f64::from(start) + 2.0,
            tags: tags
                .iter()
                .map(|(name, probability)| TagScore {
                    name: name.to_string(),
                    probability: *probability,
                })
                .collect(),
        }
    }

    fn margin(m: u32) -> MergeOptions {
        MergeOptions {
            default_margin: m,
            ..Default::default()
        }
    }

    fn spans(detection: &TagDetection) -> Vec<(f64, f64)> {
        detection
            .segments
            .iter()
            .map(|s| (s.start, s.end))
            .collect()
    }

    #[test]
    fn consecutive_windows_form_one_segment() {
        let windows = [
            window(0, &[("Siren", 0.6)]),
            window(1, &[("Siren", 0.8)]),
            window(2, &[("Siren", 0.7)]),
        ];
        let detections = merge_windows(&windows, &margin(0));
        assert_eq!(detections.len(), 1);
        let siren = &detections[0];
        assert_eq!(siren.name, "Siren");
        assert_eq!(spans(siren), vec![(0.0, 4.0)]);
        assert_eq!(siren.windows, 3);
        assert_eq!(siren.max_probability, 0.8);
        assert_eq!(siren.detected_seconds, 4.0);
        let segment = &siren.segments[0];
        assert_eq!(segment.max_probability, 0.8);
        assert_eq!(
            segment.mean_probability, 0.7,
            "rounded, not 0.7000000000000001"
        );
        assert_eq!(segment.windows, 3);
    }

    #[test]
    fn margin_bridges_up_to_m_missing_windows() {
        // Siren in windows 0, 2 and 5: gaps of one and two missing windows.
        let windows: Vec<Window> = (0..7)
            .map(|i| match i {
                0 | 2 | 5 => window(i, &[("Siren", 0.5)]),
                _ => window(i, &[("Others", 0.0)]),
            })
            .collect();
        let by_margin = |m| spans(&merge_windows(&windows, &margin(m))[0]);
        assert_eq!(by_margin(0), vec![(0.0, 2.0), (2.0, 4.0), (5.0, 7.0)]);
        assert_eq!(by_margin(1), vec![(0.0, 4.0), (5.0, 7.0)]);
        assert_eq!(by_margin(2), vec![(0.0, 7.0)]);
        assert_eq!(by_margin(9), vec![(0.0, 7.0)]);
        let bridged = &merge_windows(&windows, &margin(2))[0];
        assert_eq!(bridged.windows, 3);
        assert_eq!(bridged.segments[0].windows, 3);
        assert_eq!(
            bridged.detected_seconds, 6.0,
            "0-2, 2-4 and 5-7 without the gap"
        );
    }

    #[test]
    fn per_tag_margin_overrides_the_default() {
        let windows = [
            window(0, &[("Siren", 0.5), ("Dog_bark", 0.9)]),
            window(1, &[]),
            window(2, &[("Siren", 0.5), ("Dog_bark", 0.9)]),
        ];
        let options = MergeOptions {
            default_margin: 0,
            tag_margins: [("Siren".to_string(), 1)].into(),
            min_probability: None,
        };
        let detections = merge_windows(&windows, &options);
        assert_eq!(detections[0].name, "Dog_bark");
        assert_eq!(detections[0].segments.len(), 2);
        assert_eq!(detections[1].name, "Siren");
        assert_eq!(spans(&detections[1]), vec![(0.0, 4.0)]);
    }

    #[test]
    fn others_and_empty_windows_are_never_detections() {
        let windows = [
            window(0, &[("Others", 0.0)]),
            window(1, &[]),
            window(2, &[("Others", 0.3)]),
        ];
        assert!(merge_windows(&windows, &margin(3)).is_empty());
    }

    #[test]
    fn min_probability_filters_windows() {
        let windows = [
            window(0, &[("Piano", 0.45)]),
            window(1, &[("Piano", 0.2)]),
            window(2, &[("Piano", 0.6)]),
        ];
        let no_filter = merge_windows(&windows, &margin(0));
        assert_eq!(
            spans(&no_filter[0]),
            vec![(0.0, 4.0)],
            "never re-threshold by default"
        );
        let options = MergeOptions {
            min_probability: Some(0.4),
            ..margin(0)
        };
        let filtered = merge_windows(&windows, &options);
        assert_eq!(spans(&filtered[0]), vec![(0.0, 2.0), (2.0, 4.0)]);
        assert_eq!(filtered[0].windows, 2);
        let all_gone = MergeOptions {
            min_probability: Some(0.9),
            ..margin(0)
        };
        assert!(merge_windows(&windows, &all_gone).is_empty());
    }

    #[test]
    fn unsorted_and_duplicated_windows_give_the_same_answer() {
        let sorted = [
            window(0, &[("Music", 0.9), ("Instrument", 0.9)]),
            window(1, &[("Music", 0.7)]),
            window(2, &[("Piano", 0.45)]),
        ];
        let shuffled = [
            window(2, &[("Piano", 0.45)]),
            window(0, &[("Music", 0.9), ("Instrument", 0.9)]),
            window(1, &[("Music", 0.7)]),
            window(0, &[("Music", 0.9), ("Instrument", 0.9)]),
            window(1, &[("Music", 0.7)]),
        ];
        assert_eq!(
            merge_windows(&sorted, &margin(0)),
            merge_windows(&shuffled, &margin(0))
        );
    }

    #[test]
    fn duplicated_start_keeps_the_higher_probability() {
        let windows = [window(0, &[("Knock", 0.4)]), window(0, &[("Knock", 0.8)])];
        let knock = &merge_windows(&windows, &margin(0))[0];
        assert_eq!(knock.windows, 1);
        assert_eq!(knock.max_probability, 0.8);
        assert_eq!(knock.segments[0].mean_probability, 0.8);
    }

    #[test]
    fn a_gap_in_the_data_is_not_bridged_at_margin_zero() {
        // Windows 3..=6 are absent from the data altogether.
        let windows = [
            window(0, &[("Cough", 0.5)]),
            window(1, &[("Cough", 0.5)]),
            window(7, &[("Cough", 0.5)]),
        ];
        let cough = &merge_windows(&windows, &margin(0))[0];
        assert_eq!(spans(cough), vec![(0.0, 3.0), (7.0, 9.0)]);
        assert_eq!(cough.detected_seconds, 5.0);
    }

    #[test]
    fn float_times_and_hierarchical_tags() {
        let windows = [
            Window {
                start_time: 0.0,
                end_time: 2.0,
                tags: vec![
                    TagScore {
                        name: "Gunshot".into(),
                        probability: 0.91,
                    },
                    TagScore {
                        name: "Gunshot_single".into(),
                        probability: 0.91,
                    },
                ],
            },
            Window {
                start_time: 1.0,
                end_time: 3.0,
                tags: vec![TagScore {
                    name: "Gunshot".into(),
                    probability: 0.5,
                }],
            },
        ];
        let detections = merge_windows(&windows, &margin(0));
        let names: Vec<&str> = detections.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["Gunshot", "Gunshot_single"]);
        assert_eq!(spans(&detections[0]), vec![(0.0, 3.0)]);
        assert_eq!(spans(&detections[1]), vec![(0.0, 2.0)]);
    }

    #[test]
    fn options_validation() {
        assert!(margin(0).validate().is_ok());
        for bad in [-0.1, 1.5, f64::NAN] {
            let options = MergeOptions {
                min_probability: Some(bad),
                ..margin(0)
            };
            assert!(options.validate().is_err(), "{bad}");
        }
    }

    /// Windows at whole-second starts `0..len`, each with some of a few tags.
    fn regular_windows() -> impl Strategy<Value = Vec<Window>> {
        let tags = proptest::sample::subsequence(vec!["Siren", "Speech", "Music", "Others"], 0..=4);
        proptest::collection::vec((tags, 0.0f64..=1.0), 0..60).prop_map(|rows| {
            rows.into_iter()
                .enumerate()
                .map(|(i, (tags, p))| {
                    let scored: Vec<(&str, f64)> = tags.into_iter().map(|t| (t, p)).collect();
                    window(i as u32, &scored)
                })
                .collect()
        })
    }

    /// A straightforward reference: walk the positions, count misses, close past the margin.
    fn reference_spans(windows: &[Window], tag: &str, m: u32) -> Vec<(f64, f64)> {
        let mut spans = Vec::new();
        let mut open: Option<(f64, f64)> = None;
        let mut misses = 0;
        for w in windows {
            let has = w.tags.iter().any(|t| t.name == tag);
            if has {
                open = Some(match open {
                    Some((s, _)) => (s, w.end_time),
                    None => (w.start_time, w.end_time),
                });
                misses = 0;
            } else if open.is_some() {
                misses += 1;
                if misses > m {
                    spans.extend(open.take());
                    misses = 0;
                }
            }
        }
        spans.extend(open);
        spans
    }

    proptest! {
        #[test]
        fn matches_the_reference_on_regular_windows(windows in regular_windows(), m in 0u32..4) {
            let detections = merge_windows(&windows, &margin(m));
            for tag in ["Siren", "Speech", "Music"] {
                let expected = reference_spans(&windows, tag, m);
                let got = detections.iter().find(|d| d.name == tag).map(spans).unwrap_or_default();
                prop_assert_eq!(got, expected, "tag {}", tag);
            }
            prop_assert!(detections.iter().all(|d| d.name != "Others"));
        }

        #[test]
        fn invariant_under_shuffle_and_duplication(
            windows in regular_windows(), m in 0u32..4, seed in any::<u64>(), dup in proptest::collection::vec(any::<prop::sample::Index>(), 0..10)
        ) {
            let mut noisy = windows.clone();
            if !windows.is_empty() {
                noisy.extend(dup.iter().map(|i| windows[i.index(windows.len())].clone()));
            }
            // A deterministic shuffle driven by the seed.
            let mut state = seed | 1;
            for i in (1..noisy.len()).rev() {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                noisy.swap(i, (state % (i as u64 + 1)) as usize);
            }
            prop_assert_eq!(merge_windows(&noisy, &margin(m)), merge_windows(&windows, &margin(m)));
        }

        #[test]
        fn segments_are_consistent(windows in regular_windows(), m in 0u32..4) {
            for d in merge_windows(&windows, &margin(m)) {
                let hits: Vec<&Window> = windows.iter().filter(|w| w.tags.iter().any(|t| t.name == d.name)).collect();
                prop_assert_eq!(d.windows as usize, hits.len());
                prop_assert_eq!(d.segments.iter().map(|s| s.windows).sum::<u32>(), d.windows);
                for pair in d.segments.windows(2) {
                    prop_assert!(pair[0].end <= pair[1].start, "segments overlap");
                }
                for hit in &hits {
                    prop_assert!(d.segments.iter().any(|s| s.start <= hit.start_time && hit.end_time <= s.end));
                }
                let total: f64 = d.segments.iter().map(|s| s.end - s.start).sum();
                prop_assert!(d.detected_seconds <= total + 1e-9);
                prop_assert!(d.detected_seconds >= 2.0 - 1e-9);
                prop_assert!(d.detected_seconds <= 2.0 * hits.len() as f64 + 1e-9);
                let max = d.segments.iter().map(|s| s.max_probability).fold(0.0, f64::max);
                prop_assert_eq!(d.max_probability, max);
                for s in &d.segments {
                    prop_assert!(s.mean_probability <= s.max_probability + 1e-12);
                    prop_assert!(s.mean_probability >= 0.0);
                }
            }
        }

        #[test]
        fn larger_margins_never_add_segments(windows in regular_windows(), m in 0u32..4) {
            let count = |m| merge_windows(&windows, &margin(m)).iter().map(|d| d.segments.len()).sum::<usize>();
            prop_assert!(count(m + 1) <= count(m));
        }

        #[test]
        fn never_panics_on_arbitrary_windows(
            raw in proptest::collection::vec((any::<f64>(), any::<f64>(), any::<f64>()), 0..30), m in any::<u32>()
        ) {
            let windows: Vec<Window> = raw.into_iter().map(|(s, e, p)| Window {
                start_time: s, end_time: e, tags: vec![TagScore { name: "Siren".into(), probability: p }],
            }).collect();
            let _ = merge_windows(&windows, &margin(m));
        }
    }
}
