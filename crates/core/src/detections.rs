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
//!
//! Windows are fed one at a time, so a 24 h result (86,400 windows) never has to exist as
//! a `Vec<Window>`: an [`OrderedMerger`] merges windows that come in Cochl's order as they
//! come and holds nothing per window; a [`WindowMerger`] takes any order and keeps a
//! compact copy. Both hand their distinct windows, in start order, to the same segmenter,
//! and [`merge_windows`] is a thin wrapper over them.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

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

/// One (de-duplicated) window in which a tag was heard.
#[derive(Debug, Clone, Copy)]
struct Hit {
    start: f64,
    end: f64,
    probability: f64,
}

/// Merges windows into per-tag detections, sorted by tag name.
///
/// The windows must have passed [`crate::result::CochlResult::validate`] (finite times,
/// probabilities in [0, 1]); invalid values give unspecified but panic-free output.
/// A thin wrapper over the incremental mergers, so a result parsed whole and one streamed
/// by [`crate::result::analyse`] go through one and the same algorithm: windows in order
/// (as Cochl writes them) go through an [`OrderedMerger`], any others through a
/// [`WindowMerger`].
pub fn merge_windows(windows: &[Window], options: &MergeOptions) -> Vec<TagDetection> {
    let mut ordered = OrderedMerger::new(options);
    for window in windows {
        ordered.push_window(window);
    }
    ordered.finish().unwrap_or_else(|_| {
        let mut merger = WindowMerger::with_capacity(options, windows.len());
        for window in windows {
            merger.push_window(window);
        }
        merger.finish()
    })
}

/// Merges windows that arrive in start order as they come, holding none of them.
///
/// This is the merger for Cochl's own results, whose windows come in start order with one
/// hop (1 s): each distinct window goes straight into its tags' segments, so the memory
/// held is the detections being built, whatever the length of the audio.
///
/// Merging on the fly is exact only if the windows come in start order (by
/// [`f64::total_cmp`]) and the hop (the smallest distance between two distinct window
/// starts, which decides whether a gap is bridged) is already the final one when the first
/// gap is judged. When either fails, [`finish`](Self::finish) says so and the windows must
/// go through a [`WindowMerger`] instead (the merger stops working at the first failure).
/// When it succeeds, it returns exactly what [`merge_windows`] returns.
#[derive(Debug)]
pub struct OrderedMerger<'o> {
    segmenter: Segmenter<'o>,
    /// The smallest distance between consecutive distinct starts so far.
    hop: Option<f64>,
    /// The hop the first bridging decision was made with; it must stay the hop.
    decided_with: Option<f64>,
    last_start: Option<f64>,
    windows: usize,
    broken: Option<NotInOrder>,
}

/// Why an [`OrderedMerger`] could not merge its windows on the fly.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NotInOrder {
    /// A window started before the window pushed before it.
    #[error("window {index} starts before the window before it")]
    Unsorted {
        /// Position of the window in arrival order.
        index: usize,
    },
    /// A window revealed a smaller hop after gaps had been judged with a larger one.
    #[error("window {index} changes the hop from {from} s to {to} s after gaps were judged")]
    HopChanged {
        /// Position of the window in arrival order.
        index: usize,
        /// The hop the gaps were judged with.
        from: f64,
        /// The smaller hop.
        to: f64,
    },
}

impl<'o> OrderedMerger<'o> {
    /// An empty merger.
    pub fn new(options: &'o MergeOptions) -> Self {
        Self {
            segmenter: Segmenter::new(options),
            hop: None,
            decided_with: None,
            last_start: None,
            windows: 0,
            broken: None,
        }
    }

    /// Adds one window: its span and its tags as `(name, probability)`.
    ///
    /// The names are only borrowed: a new name is copied once, a known one not at all.
    pub fn push<'n>(
        &mut self,
        start_time: f64,
        end_time: f64,
        tags: impl IntoIterator<Item = (&'n str, f64)>,
    ) {
        let index = self.windows;
        self.windows += 1;
        if self.broken.is_some() {
            return;
        }
        if self
            .last_start
            .is_some_and(|last| start_time.total_cmp(&last).is_lt())
        {
            self.broken = Some(NotInOrder::Unsorted { index });
            return;
        }
        self.last_start = Some(start_time);
        if let Some(open) = self.segmenter.open_start() {
            let distance = start_time - open;
            if open != start_time && distance > 0.0 {
                self.hop = Some(self.hop.map_or(distance, |h| h.min(distance)));
            }
        }
        let hop = self.hop.unwrap_or(DEFAULT_HOP);
        if let Some(from) = self.decided_with.filter(|used| *used != hop) {
            self.broken = Some(NotInOrder::HopChanged {
                index,
                from,
                to: hop,
            });
            return;
        }
        if self.segmenter.open(start_time, end_time, hop) && self.decided_with.is_none() {
            self.decided_with = Some(hop);
        }
        for (name, probability) in tags {
            self.segmenter.add_named(name, probability);
        }
    }

    /// Adds one parsed window.
    pub fn push_window(&mut self, window: &Window) {
        self.push(
            window.start_time,
            window.end_time,
            window.tags.iter().map(|t| (t.name.as_str(), t.probability)),
        );
    }

    /// Windows pushed so far, duplicates included.
    pub fn windows(&self) -> usize {
        self.windows
    }

    /// The per-tag detections, sorted by tag name; or why the windows must be merged by a
    /// [`WindowMerger`] instead.
    pub fn finish(self) -> Result<Vec<TagDetection>, NotInOrder> {
        match self.broken {
            Some(reason) => Err(reason),
            None => Ok(self.segmenter.finish(self.hop.unwrap_or(DEFAULT_HOP))),
        }
    }
}

/// Merges windows fed one at a time in any order, keeping only a compact copy of them.
///
/// No segment can be closed before the last window when windows may arrive unsorted or
/// duplicated: the hop that decides whether a gap is bridged is the smallest distance
/// between window starts over the whole result. So the merger keeps what the merge needs
/// and nothing more: per window its span (24 bytes), per tag occurrence an interned tag
/// id and the probability (12 bytes). Each distinct tag name is allocated once, however
/// many windows carry it; `Others` occurrences are dropped on arrival. For windows that
/// come in order, an [`OrderedMerger`] needs none of this.
///
/// [`finish`](Self::finish) returns exactly what [`merge_windows`] returns for the same
/// windows pushed in the same order.
#[derive(Debug)]
pub struct WindowMerger<'o> {
    segmenter: Segmenter<'o>,
    /// Window columns, in arrival order.
    starts: Vec<f64>,
    ends: Vec<f64>,
    /// Where each window's tags end in `tag_ids` and `probabilities`.
    tag_ends: Vec<usize>,
    /// Tag occurrence columns, `Others` left out.
    tag_ids: Vec<u32>,
    probabilities: Vec<f64>,
    /// True while no window started before the one pushed before it: the finish then
    /// needs no sort.
    sorted: bool,
}

impl<'o> WindowMerger<'o> {
    /// An empty merger.
    pub fn new(options: &'o MergeOptions) -> Self {
        Self::with_capacity(options, 0)
    }

    /// An empty merger with room for `windows` windows (and a typical number of tags each),
    /// for when the count is known up front.
    pub fn with_capacity(options: &'o MergeOptions, windows: usize) -> Self {
        /// Cochl reports three to six tags in a busy window and one in a quiet one.
        const TAGS_PER_WINDOW: usize = 4;
        let occurrences = windows.saturating_mul(TAGS_PER_WINDOW);
        Self {
            segmenter: Segmenter::new(options),
            starts: Vec::with_capacity(windows),
            ends: Vec::with_capacity(windows),
            tag_ends: Vec::with_capacity(windows),
            tag_ids: Vec::with_capacity(occurrences),
            probabilities: Vec::with_capacity(occurrences),
            sorted: true,
        }
    }

    /// Adds one window: its span and its tags as `(name, probability)`.
    ///
    /// The names are only borrowed: a new name is copied once, a known one not at all.
    pub fn push<'n>(
        &mut self,
        start_time: f64,
        end_time: f64,
        tags: impl IntoIterator<Item = (&'n str, f64)>,
    ) {
        if self
            .starts
            .last()
            .is_some_and(|last| start_time.total_cmp(last).is_lt())
        {
            self.sorted = false;
        }
        self.starts.push(start_time);
        self.ends.push(end_time);
        for (name, probability) in tags {
            if let Some(id) = self.segmenter.intern(name) {
                self.tag_ids.push(id);
                self.probabilities.push(probability);
            }
        }
        self.tag_ends.push(self.tag_ids.len());
    }

    /// Adds one parsed window.
    pub fn push_window(&mut self, window: &Window) {
        self.push(
            window.start_time,
            window.end_time,
            window.tags.iter().map(|t| (t.name.as_str(), t.probability)),
        );
    }

    /// Windows pushed so far, duplicates included.
    pub fn windows(&self) -> usize {
        self.starts.len()
    }

    /// The per-tag detections, sorted by tag name.
    pub fn finish(self) -> Vec<TagDetection> {
        let windows = self.starts.len();
        if self.sorted {
            self.merge(0..windows)
        } else {
            // A stable sort, so equal starts keep their arrival order.
            let mut order: Vec<usize> = (0..windows).collect();
            order.sort_by(|&a, &b| self.starts[a].total_cmp(&self.starts[b]));
            self.merge(order.into_iter())
        }
    }

    /// The windows in start order (`order` holds their indices) through the segmenter,
    /// with the hop of the whole result.
    fn merge(mut self, order: impl Iterator<Item = usize> + Clone) -> Vec<TagDetection> {
        let hop = self.smallest_hop(order.clone());
        for index in order {
            self.segmenter
                .open(self.starts[index], self.ends[index], hop);
            let first = index.checked_sub(1).map_or(0, |i| self.tag_ends[i]);
            let last = self.tag_ends[index];
            for (&id, &probability) in self.tag_ids[first..last]
                .iter()
                .zip(&self.probabilities[first..last])
            {
                self.segmenter.add(id, probability);
            }
        }
        self.segmenter.finish(hop)
    }

    /// The smallest distance between consecutive distinct window starts.
    fn smallest_hop(&self, order: impl Iterator<Item = usize>) -> f64 {
        let mut hop: Option<f64> = None;
        let mut previous: Option<f64> = None;
        for index in order {
            let start = self.starts[index];
            if let Some(previous) = previous {
                if previous == start {
                    continue;
                }
                let distance = start - previous;
                if distance > 0.0 {
                    hop = Some(hop.map_or(distance, |h| h.min(distance)));
                }
            }
            previous = Some(start);
        }
        hop.unwrap_or(DEFAULT_HOP)
    }
}

/// The hop when there are not two distinct window starts to measure it: Cochl's 1 s.
const DEFAULT_HOP: f64 = 1.0;

/// The one algorithm behind both mergers: windows fed in start order, those with the same
/// start merged into one (the latest end, a tag's highest probability), each such distinct
/// window handed to its tags' [`TagState`]s once the next start shows it is complete.
#[derive(Debug)]
struct Segmenter<'o> {
    options: &'o MergeOptions,
    names: Interner,
    /// By tag id.
    tags: Vec<TagState>,
    /// The distinct window being assembled: start and end, and its tags by id.
    open: Option<(f64, f64)>,
    open_tags: Vec<(u32, f64)>,
}

impl<'o> Segmenter<'o> {
    fn new(options: &'o MergeOptions) -> Self {
        Self {
            options,
            names: Interner::default(),
            tags: Vec::new(),
            open: None,
            open_tags: Vec::new(),
        }
    }

    /// The start of the distinct window being assembled.
    fn open_start(&self) -> Option<f64> {
        self.open.map(|(start, _)| start)
    }

    /// Starts the next window: merged into the open distinct window when it has the same
    /// start, else the open one is handed on (its gaps judged with `hop`) and this one
    /// opened. True when a gap was judged.
    fn open(&mut self, start: f64, end: f64, hop: f64) -> bool {
        match &mut self.open {
            Some((open_start, open_end)) if *open_start == start => {
                *open_end = open_end.max(end);
                false
            }
            _ => {
                let judged = self.hand_on(hop);
                self.open = Some((start, end));
                judged
            }
        }
    }

    /// The id of a tag name (see [`Interner::intern`]); a new tag gets its state, with
    /// its margin.
    fn intern(&mut self, name: &str) -> Option<u32> {
        let id = self.names.intern(name)?;
        if self.tags.len() <= id as usize {
            self.tags.push(TagState::new(self.options.margin_for(name)));
        }
        Some(id)
    }

    /// Adds a tag, by name, to the open window; `Others` is never a detection.
    fn add_named(&mut self, name: &str, probability: f64) {
        if let Some(id) = self.intern(name) {
            self.add(id, probability);
        }
    }

    /// Adds a tag, by id, to the open window; a tag repeated keeps its highest probability.
    fn add(&mut self, id: u32, probability: f64) {
        match self.open_tags.iter_mut().find(|(known, _)| *known == id) {
            Some(existing) => existing.1 = existing.1.max(probability),
            None => self.open_tags.push((id, probability)),
        }
    }

    /// Hands the open window to its tags. True when a gap was judged.
    fn hand_on(&mut self, hop: f64) -> bool {
        let Some((start, end)) = self.open.take() else {
            return false;
        };
        let mut judged = false;
        for &(id, probability) in &self.open_tags {
            if !self.options.counts(probability) {
                continue;
            }
            if let Some(state) = self.tags.get_mut(id as usize) {
                let hit = Hit {
                    start,
                    end,
                    probability,
                };
                judged |= state.add(hit, hop);
            }
        }
        self.open_tags.clear();
        judged
    }

    fn finish(mut self, hop: f64) -> Vec<TagDetection> {
        self.hand_on(hop);
        let names = self.names.into_names();
        let mut detected: Vec<(Arc<str>, TagState)> = names
            .into_iter()
            .zip(self.tags)
            .filter(|(_, state)| state.windows > 0)
            .collect();
        detected.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        detected
            .into_iter()
            .map(|(name, state)| state.finish(name.to_string()))
            .collect()
    }
}

/// Tag names, each allocated once (shared by the table and the list), numbered in order
/// of first appearance. `Others` gets no number: it is never a detection, so its
/// occurrences are dropped at once.
#[derive(Debug)]
struct Interner {
    ids: HashMap<Arc<str>, u32, BuildHasherDefault<NameHasher>>,
    /// By id.
    names: Vec<Arc<str>>,
    /// A direct-mapped cache in front of `ids`: the slot comes from a name's length and
    /// its first and last bytes, the id found there is checked with one comparison. A
    /// result has a few dozen distinct names met hundreds of thousands of times, so this
    /// usually finds the id without hashing the name.
    recent: [u32; RECENT_SLOTS],
}

/// Slots in [`Interner::recent`], a power of two.
const RECENT_SLOTS: usize = 64;

impl Default for Interner {
    fn default() -> Self {
        Self {
            ids: HashMap::default(),
            names: Vec::new(),
            recent: [u32::MAX; RECENT_SLOTS],
        }
    }
}

impl Interner {
    /// The id of `name`: `None` for `Others`, and once 2^32 names are known (tens of GiB
    /// of distinct names, beyond any Lambda) for any further new name.
    fn intern(&mut self, name: &str) -> Option<u32> {
        let bytes = name.as_bytes();
        let first = usize::from(bytes.first().copied().unwrap_or(0));
        let last = usize::from(bytes.last().copied().unwrap_or(0));
        let slot = (bytes.len().wrapping_mul(31) ^ first.wrapping_mul(7) ^ last.wrapping_mul(131))
            % RECENT_SLOTS;
        let cached = self.recent.get(slot).copied().unwrap_or(u32::MAX);
        if self
            .names
            .get(cached as usize)
            .is_some_and(|known| **known == *name)
        {
            return Some(cached);
        }
        if name == OTHERS_TAG {
            return None;
        }
        let id = match self.ids.get(name) {
            Some(&id) => id,
            None => {
                let id = u32::try_from(self.names.len()).ok()?;
                let name: Arc<str> = name.into();
                self.ids.insert(Arc::clone(&name), id);
                self.names.push(name);
                id
            }
        };
        if let Some(entry) = self.recent.get_mut(slot) {
            *entry = id;
        }
        Some(id)
    }

    /// The names, indexed by id.
    fn into_names(self) -> Vec<Arc<str>> {
        self.names
    }
}

/// The interner's hash: FxHash's multiply-rotate over 8-byte words. Tag names are short
/// and few, and SipHash over them was a measurable share of [`crate::result::analyse`].
/// Unkeyed is harmless here: names that collide on purpose would cost time, never a
/// wrong detection.
#[derive(Debug, Default, Clone, Copy)]
struct NameHasher(u64);

impl NameHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut le = [0u8; 8];
            le.copy_from_slice(word);
            self.add(u64::from_le_bytes(le));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            // Byte by byte: a variable-length copy would cost a `memcpy` call per name.
            self.add(rest.iter().fold(0, |word, &b| (word << 8) | u64::from(b)));
        }
    }

    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }

    fn finish(&self) -> u64 {
        // The table picks buckets from the low bits, which the multiply mixes least.
        self.0.rotate_left(26)
    }
}

/// One tag's detection, built hit by hit in time order.
#[derive(Debug)]
struct TagState {
    /// Missing windows bridged inside one segment of this tag.
    margin: u32,
    segments: Vec<Segment>,
    /// Sum of the probabilities in the open (last) segment.
    sum: f64,
    previous: Option<Hit>,
    max_probability: f64,
    windows: usize,
    /// Seconds covered by closed stretches of overlapping hits, and the open stretch.
    covered: f64,
    stretch: Option<(f64, f64)>,
}

impl TagState {
    fn new(margin: u32) -> Self {
        Self {
            margin,
            segments: Vec::new(),
            sum: 0.0,
            previous: None,
            max_probability: 0.0,
            windows: 0,
            covered: 0.0,
            stretch: None,
        }
    }

    /// Extends the open segment when at most the tag's margin of hops is missing since the
    /// previous hit, else opens a new one. True when a gap was judged (there was a
    /// previous hit).
    fn add(&mut self, hit: Hit, hop: f64) -> bool {
        let bridged = self
            .previous
            .is_some_and(|p| missing_between(&p, &hit, hop) <= f64::from(self.margin));
        match self.segments.last_mut() {
            Some(segment) if bridged => {
                segment.end = segment.end.max(hit.end);
                segment.max_probability = segment.max_probability.max(hit.probability);
                segment.windows += 1;
                self.sum += hit.probability;
            }
            _ => {
                close_segment(self.segments.last_mut(), self.sum);
                self.sum = hit.probability;
                self.segments.push(Segment {
                    start: hit.start,
                    end: hit.end,
                    max_probability: hit.probability,
                    mean_probability: hit.probability,
                    windows: 1,
                });
            }
        }
        let judged = self.previous.is_some();
        self.previous = Some(hit);
        self.max_probability = self.max_probability.max(hit.probability);
        self.windows += 1;
        self.stretch = match self.stretch {
            Some((start, end)) if hit.start <= end => Some((start, end.max(hit.end))),
            Some((start, end)) => {
                self.covered += end - start;
                Some((hit.start, hit.end))
            }
            None => Some((hit.start, hit.end)),
        };
        judged
    }

    fn finish(mut self, name: String) -> TagDetection {
        close_segment(self.segments.last_mut(), self.sum);
        if let Some((start, end)) = self.stretch {
            self.covered += end - start;
        }
        TagDetection {
            name,
            max_probability: self.max_probability,
            detected_seconds: self.covered,
            windows: self.windows as u32,
            segments: self.segments,
        }
    }
}

/// Windows missing between two hits, counted in hops.
///
/// The two shortcuts give the very value of `(distance / hop).round()` and matter to
/// [`crate::result::analyse`]'s time: consecutive windows are one hop apart (`x / x` is
/// exactly 1), and a whole quotient needs no `round`, a libm call.
fn missing_between(previous: &Hit, next: &Hit, hop: f64) -> f64 {
    let distance = next.start - previous.start;
    if distance == hop && hop.is_finite() {
        return 0.0;
    }
    let hops = distance / hop;
    let rounded = if hops as i64 as f64 == hops {
        hops
    } else {
        hops.round()
    };
    rounded - 1.0
}

/// Sets the segment's mean, rounded to 9 decimals so summing floats does not print as
/// `0.9774059999999999` (never above the segment's maximum).
fn close_segment(segment: Option<&mut Segment>, sum: f64) {
    if let Some(segment) = segment {
        let mean = sum / f64::from(segment.windows);
        segment.mean_probability = ((mean * 1e9).round() / 1e9).min(segment.max_probability);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::TagScore;
    use proptest::prelude::*;
    use std::hash::Hash;

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

    /// The largest `f64` below a positive `p`: the closest a probability can come to a
    /// threshold without reaching it.
    fn just_below(p: f64) -> f64 {
        f64::from_bits(p.to_bits() - 1)
    }

    /// The smallest `f64` above a non-negative `p`.
    fn just_above(p: f64) -> f64 {
        f64::from_bits(p.to_bits() + 1)
    }

    /// The file of the golden tests. Window `i` covers [i, i + 2) s (Cochl's 2 s windows
    /// with a 1 s hop); `<0.5` is [`just_below`]`(0.5)`.
    ///
    /// | i | Siren      | Dog_bark   | others      |
    /// |---|------------|------------|-------------|
    /// | 0 | 0.6        | 0.9        |             |
    /// | 1 | 0.8        | 0.5        |             |
    /// | 2 | 0.7        |            | Others 0.3  |
    /// | 3 | <0.5       |            |             |
    /// | 4 | 0.5        | <0.5       |             |
    /// | 5 |            |            | Knock 0.2   |
    /// | 6 |            |            |             |
    /// | 7 | 0.9        | 0.6        |             |
    /// | 8 | 1.0        |            |             |
    /// | 9 |            | 0.7        |             |
    fn golden_windows() -> Vec<Window> {
        let below = just_below(0.5);
        vec![
            window(0, &[("Siren", 0.6), ("Dog_bark", 0.9)]),
            window(1, &[("Siren", 0.8), ("Dog_bark", 0.5)]),
            window(2, &[("Siren", 0.7), ("Others", 0.3)]),
            window(3, &[("Siren", below)]),
            window(4, &[("Siren", 0.5), ("Dog_bark", below)]),
            window(5, &[("Knock", 0.2)]),
            window(6, &[]),
            window(7, &[("Siren", 0.9), ("Dog_bark", 0.6)]),
            window(8, &[("Siren", 1.0)]),
            window(9, &[("Dog_bark", 0.7)]),
        ]
    }

    /// Margin 1 by default, 0 for Dog_bark, and a minimum probability of 0.5.
    fn golden_options() -> MergeOptions {
        MergeOptions {
            default_margin: 1,
            tag_margins: [("Dog_bark".to_string(), 0)].into(),
            min_probability: Some(0.5),
        }
    }

    /// Every field of every segment and every per-tag total of [`golden_windows`], worked
    /// out by hand. `min_probability` is inclusive (a tag counts with *at least* that
    /// probability, `MergeOptions::min_probability`): 0.5 counts, the float just below does
    /// not, so window 3 is a missing Siren window and window 4 a missing Dog_bark one.
    /// Knock (0.2) never reaches the minimum and `Others` is never a detection.
    fn golden_detections() -> Vec<TagDetection> {
        vec![
            // Dog_bark, margin 0: counted in windows 0, 1, 7 and 9.
            TagDetection {
                name: "Dog_bark".into(),
                // max(0.9, 0.5, 0.6, 0.7)
                max_probability: 0.9,
                // [0, 3) + [7, 9) + [9, 11): 3 + 2 + 2 s. Windows 7 and 9 touch at 9 s but
                // are two segments (window 8 is missing at margin 0).
                detected_seconds: 7.0,
                windows: 4,
                segments: vec![
                    // Windows 0 and 1: [0, 1 + 2); windows 2 to 6 missing (5 > 0) close it.
                    Segment {
                        start: 0.0,
                        end: 3.0,
                        max_probability: 0.9,
                        // (0.9 + 0.5) / 2
                        mean_probability: 0.7,
                        windows: 2,
                    },
                    // Window 7 alone: [7, 9); window 8 missing (1 > 0) closes it.
                    Segment {
                        start: 7.0,
                        end: 9.0,
                        max_probability: 0.6,
                        mean_probability: 0.6,
                        windows: 1,
                    },
                    // Window 9 alone: [9, 11).
                    Segment {
                        start: 9.0,
                        end: 11.0,
                        max_probability: 0.7,
                        mean_probability: 0.7,
                        windows: 1,
                    },
                ],
            },
            // Siren, margin 1: counted in windows 0, 1, 2, 4, 7 and 8.
            TagDetection {
                name: "Siren".into(),
                // max(0.6, 0.8, 0.7, 0.5, 0.9, 1.0)
                max_probability: 1.0,
                // [0, 6) + [7, 10): 6 + 3 s (the bridged window 3 is inside [2, 4) ∪ [4, 6)
                // only because windows 2 and 4 cover it; the gap 6-7 is not counted).
                detected_seconds: 9.0,
                windows: 6,
                segments: vec![
                    // Windows 0, 1, 2, then window 3 missing (1 ≤ margin 1) bridged to
                    // window 4: [0, 4 + 2). Windows 5 and 6 missing (2 > 1) close it.
                    Segment {
                        start: 0.0,
                        end: 6.0,
                        max_probability: 0.8,
                        // (0.6 + 0.8 + 0.7 + 0.5) / 4 = 2.6 / 4; the bridged window does
                        // not count.
                        mean_probability: 0.65,
                        windows: 4,
                    },
                    // Windows 7 and 8: [7, 8 + 2).
                    Segment {
                        start: 7.0,
                        end: 10.0,
                        max_probability: 1.0,
                        // (0.9 + 1.0) / 2
                        mean_probability: 0.95,
                        windows: 2,
                    },
                ],
            },
        ]
    }

    #[test]
    fn golden_file_every_field_of_every_segment() {
        let options = golden_options();
        assert_eq!(options.validate(), Ok(()));
        assert_eq!(
            merge_windows(&golden_windows(), &options),
            golden_detections()
        );
    }

    #[test]
    fn golden_file_in_any_order_through_both_mergers() {
        let options = golden_options();
        // In order: merged on the fly by the OrderedMerger.
        let mut ordered = OrderedMerger::new(&options);
        golden_windows().iter().for_each(|w| ordered.push_window(w));
        assert_eq!(ordered.windows(), 10);
        assert_eq!(ordered.finish(), Ok(golden_detections()));
        // Reversed, and every window twice: only a WindowMerger can merge it, and the
        // answer is the same.
        let mut shuffled = golden_windows();
        shuffled.reverse();
        shuffled.extend(golden_windows());
        let mut ordered = OrderedMerger::new(&options);
        shuffled.iter().for_each(|w| ordered.push_window(w));
        assert_eq!(ordered.finish(), Err(NotInOrder::Unsorted { index: 1 }));
        let mut merger = WindowMerger::new(&options);
        shuffled.iter().for_each(|w| merger.push_window(w));
        assert_eq!(merger.windows(), 20);
        assert_eq!(merger.finish(), golden_detections());
        assert_eq!(merge_windows(&shuffled, &options), golden_detections());
    }

    #[test]
    fn golden_file_at_the_extreme_thresholds() {
        // min_probability 1.0 is accepted, and only a certainty counts: Siren's window 8.
        let certain = MergeOptions {
            min_probability: Some(1.0),
            ..golden_options()
        };
        assert_eq!(certain.validate(), Ok(()));
        assert_eq!(
            merge_windows(&golden_windows(), &certain),
            vec![TagDetection {
                name: "Siren".into(),
                max_probability: 1.0,
                detected_seconds: 2.0,
                windows: 1,
                segments: vec![Segment {
                    start: 8.0,
                    end: 10.0,
                    max_probability: 1.0,
                    mean_probability: 1.0,
                    windows: 1,
                }],
            }]
        );
        // min_probability 0.0 is accepted and everything counts, a probability of 0 too.
        let everything = MergeOptions {
            min_probability: Some(0.0),
            ..golden_options()
        };
        assert_eq!(everything.validate(), Ok(()));
        let zeros = [window(0, &[("Siren", 0.0)]), window(1, &[("Siren", 0.0)])];
        let zero_siren = vec![TagDetection {
            name: "Siren".into(),
            max_probability: 0.0,
            detected_seconds: 3.0,
            windows: 2,
            segments: vec![Segment {
                start: 0.0,
                end: 3.0,
                max_probability: 0.0,
                mean_probability: 0.0,
                windows: 2,
            }],
        }];
        assert_eq!(merge_windows(&zeros, &everything), zero_siren);
        // ... exactly as with no minimum at all; the smallest positive minimum drops them.
        assert_eq!(merge_windows(&zeros, &margin(0)), zero_siren);
        let above_zero = MergeOptions {
            min_probability: Some(just_above(0.0)),
            ..margin(0)
        };
        assert_eq!(merge_windows(&zeros, &above_zero), vec![]);
        // On the golden file, minimum 0 counts every window the table shows: Knock's too,
        // and window 3 now joins Siren's first segment (5 windows), window 4 Dog_bark's
        // second ([4, 6), margin 0 after windows 2 and 3 are missing).
        let all = merge_windows(&golden_windows(), &everything);
        let names: Vec<&str> = all.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["Dog_bark", "Knock", "Siren"]);
        assert_eq!(
            spans(&all[0]),
            vec![(0.0, 3.0), (4.0, 6.0), (7.0, 9.0), (9.0, 11.0)]
        );
        assert_eq!(spans(&all[1]), vec![(5.0, 7.0)]);
        assert_eq!(spans(&all[2]), vec![(0.0, 6.0), (7.0, 10.0)]);
        assert_eq!(all[2].segments[0].windows, 5);
    }

    #[test]
    fn thresholds_outside_zero_to_one_are_refused_by_value() {
        for bad in [
            -0.1,
            // The negative number closest to 0.
            -f64::from_bits(1),
            just_above(1.0),
            1.5,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            let options = MergeOptions {
                min_probability: Some(bad),
                ..margin(0)
            };
            assert_eq!(
                options.validate(),
                Err(MergeOptionsError::BadMinProbability(bad)),
                "{bad}"
            );
        }
        let nan = MergeOptions {
            min_probability: Some(f64::NAN),
            ..margin(0)
        };
        assert!(
            matches!(nan.validate(), Err(MergeOptionsError::BadMinProbability(p)) if p.is_nan())
        );
        // No minimum at all is valid.
        assert_eq!(MergeOptions::default().validate(), Ok(()));
    }

    #[test]
    fn a_nan_probability_is_refused_before_any_merge() {
        // `merge_windows` takes windows that passed `CochlResult::validate`; a NaN
        // probability never gets there: validation names the window and the tag.
        let mut data = golden_windows();
        data[2].tags.push(TagScore {
            name: "Siren".into(),
            probability: f64::NAN,
        });
        let result = crate::result::CochlResult {
            metadata: Default::default(),
            data,
        };
        assert_eq!(
            result.validate(),
            Err(crate::result::ResultError::BadWindow {
                index: 2,
                problem: "tag \"Siren\" has probability NaN, outside [0, 1]".into(),
            })
        );
    }

    #[test]
    fn gaps_are_counted_in_hops_of_the_data_not_in_seconds() {
        // Windows every 0.5 s (hop 0.5): Siren at 0 s and at 1.5 s has the windows at 0.5 s
        // and 1 s missing between: 1.5 / 0.5 - 1 = 2 hops, bridged from margin 2 on.
        let half = |start: f64, tags: &[(&str, f64)]| Window {
            start_time: start,
            end_time: start + 2.0,
            ..window(0, tags)
        };
        let windows = [
            half(0.0, &[("Siren", 0.5)]),
            half(0.5, &[]),
            half(1.0, &[]),
            half(1.5, &[("Siren", 0.5)]),
        ];
        let by_margin = |m| spans(&merge_windows(&windows, &margin(m))[0]);
        assert_eq!(by_margin(1), vec![(0.0, 2.0), (1.5, 3.5)]);
        assert_eq!(by_margin(2), vec![(0.0, 3.5)]);
        // A start off the grid counts the nearest whole number of hops: hop 1 (0 to 1),
        // Siren at 1 s and 3.4 s: 2.4 hops is 2, so one window missing, bridged at margin 1;
        // at 3.6 s, 2.6 hops is 3, two missing.
        for (late, bridged_at_1) in [(3.4, true), (3.6, false)] {
            let windows = [
                half(0.0, &[]),
                half(1.0, &[("Siren", 0.5)]),
                half(late, &[("Siren", 0.5)]),
            ];
            let segments = merge_windows(&windows, &margin(1))[0].segments.len();
            assert_eq!(segments == 1, bridged_at_1, "{late}");
            let none = merge_windows(&windows, &margin(0))[0].segments.len();
            assert_eq!(none, 2, "{late}");
        }
    }

    #[test]
    fn the_name_hash_tells_tag_names_apart_and_spreads_them() {
        // The interner's hash exists for speed: names that collide cost a comparison each,
        // names in one bucket a scan. A thousand tag-like names must all hash apart and use
        // most of the 128 buckets a table of that size starts with (the low bits).
        let hash = |name: &str| {
            let mut hasher = NameHasher::default();
            name.hash(&mut hasher);
            hasher.finish()
        };
        let mut names: Vec<String> = (0..1000).map(|i| format!("Tag_{i}")).collect();
        names.extend(
            [
                "Siren",
                "Speech",
                "Dog_bark",
                "Gunshot_single",
                "Glass_break_and_shatter",
            ]
            .map(String::from),
        );
        let mut hashes: Vec<u64> = names.iter().map(|n| hash(n)).collect();
        let mut buckets: Vec<u64> = hashes.iter().map(|h| h & 127).collect();
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(hashes.len(), names.len(), "every name its own hash");
        buckets.sort_unstable();
        buckets.dedup();
        assert!(
            buckets.len() >= 120,
            "{} of 128 buckets used",
            buckets.len()
        );
        // Names of 8 bytes (a whole word, no remainder) and 16 hash apart too.
        assert_ne!(hash("Knocking"), hash("Knockinh"));
        assert_ne!(hash("Knocking_loudly_"), hash("Knocking_loudly!"));
    }

    #[test]
    fn a_mean_rounded_up_is_capped_at_the_segment_maximum() {
        // One window at 0.1234567896: the mean rounded to 9 decimals would be 0.12345679,
        // above the only probability there is; the documented cap keeps it at the maximum.
        let p = 0.123_456_789_6;
        let windows = [window(0, &[("Siren", p)]), window(1, &[("Siren", p)])];
        let siren = &merge_windows(&windows, &margin(0))[0];
        assert_eq!(siren.segments[0].max_probability, p);
        assert_eq!(siren.segments[0].mean_probability, p);
        // A mean that rounds down is rounded: (0.1 + 0.2) / 2 is 0.15000000000000002.
        let windows = [window(0, &[("Siren", 0.1)]), window(1, &[("Siren", 0.2)])];
        let siren = &merge_windows(&windows, &margin(0))[0];
        assert_eq!(siren.segments[0].mean_probability, 0.15);
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
                // Each segment against the windows it spans, worked out here: a regular
                // window `i` covers [i, i + 2) and scores all its tags with one probability.
                for s in &d.segments {
                    let inside: Vec<(f64, f64, f64)> = hits
                        .iter()
                        .filter(|w| s.start <= w.start_time && w.end_time <= s.end)
                        .map(|w| (w.start_time, w.end_time, w.tags[0].probability))
                        .collect();
                    prop_assert_eq!(s.windows as usize, inside.len());
                    prop_assert_eq!(s.start, inside[0].0);
                    prop_assert_eq!(s.end, inside[inside.len() - 1].1);
                    let highest = inside.iter().map(|h| h.2).fold(0.0, f64::max);
                    prop_assert_eq!(s.max_probability, highest);
                    let mean = inside.iter().map(|h| h.2).sum::<f64>() / inside.len() as f64;
                    // Rounded to 9 decimals, so within half a billionth of the true mean.
                    prop_assert!(
                        (s.mean_probability - mean).abs() <= 0.5e-9 + 1e-15,
                        "mean {} of {:?}", s.mean_probability, inside
                    );
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
            // The values are unspecified for windows that would fail validation, but the
            // shape is not: at most one detection, of the only tag there is, whose segments
            // share out its windows, no more than were pushed.
            let detections = merge_windows(&windows, &margin(m));
            prop_assert!(detections.len() <= 1);
            for d in &detections {
                prop_assert_eq!(d.name.as_str(), "Siren");
                prop_assert!(!d.segments.is_empty());
                prop_assert!(d.windows as usize <= windows.len());
                prop_assert_eq!(d.segments.iter().map(|s| s.windows).sum::<u32>(), d.windows);
            }
        }
    }

    #[test]
    fn the_merger_fed_by_hand_equals_merge_windows() {
        let windows = [
            window(1, &[("Siren", 0.8), ("Others", 0.2)]),
            window(0, &[("Siren", 0.6), ("Siren", 0.7)]),
            window(3, &[("Dog_bark", 0.9)]),
        ];
        let options = margin(1);
        let mut merger = WindowMerger::new(&options);
        for w in &windows {
            let names: Vec<String> = w.tags.iter().map(|t| t.name.clone()).collect();
            // Names only borrowed, and only for the call.
            merger.push(
                w.start_time,
                w.end_time,
                names
                    .iter()
                    .map(String::as_str)
                    .zip(w.tags.iter().map(|t| t.probability)),
            );
        }
        assert_eq!(merger.windows(), 3);
        let detections = merger.finish();
        assert_eq!(detections, merge_windows(&windows, &options));
        let names: Vec<&str> = detections.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["Dog_bark", "Siren"]);
        // Siren: windows 0 and 1 (0.7 wins over 0.6 in window 0), 0-3.
        assert_eq!(spans(&detections[1]), vec![(0.0, 3.0)]);
        assert_eq!(detections[1].segments[0].mean_probability, 0.75);
    }

    #[test]
    fn names_that_share_a_cache_slot_keep_their_own_ids() {
        // Same length, first and last byte: the same slot of the interner's cache.
        let mut names = Interner::default();
        let siren = names.intern("Sxxxn");
        let seven = names.intern("Syyyn");
        assert_ne!(siren, seven);
        for _ in 0..3 {
            assert_eq!(names.intern("Sxxxn"), siren);
            assert_eq!(names.intern("Syyyn"), seven);
        }
        assert_eq!(names.intern("Others"), None);
        assert_eq!(names.intern(""), Some(2));
        let names = names.into_names();
        let names: Vec<&str> = names.iter().map(|n| n.as_ref()).collect();
        assert_eq!(names, ["Sxxxn", "Syyyn", ""]);
    }

    #[test]
    fn an_empty_merger_detects_nothing() {
        let options = MergeOptions::default();
        assert!(WindowMerger::new(&options).finish().is_empty());
        assert!(merge_windows(&[], &options).is_empty());
    }

    /// The merge as it was before [`WindowMerger`] (windows sorted and de-duplicated into
    /// a `Vec`, hits collected per tag, then segmented), kept as an oracle: the merger must
    /// answer exactly as it did, floats to the last bit.
    mod before_the_merger {
        use super::super::*;

        struct DistinctWindow<'a> {
            start: f64,
            end: f64,
            tags: Vec<(&'a str, f64)>,
        }

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

        fn detect_tag(name: &str, hits: &[Hit], margin: u32, hop: f64) -> TagDetection {
            let mut segments: Vec<Segment> = Vec::new();
            let mut sum = 0.0;
            let mut previous: Option<Hit> = None;
            for hit in hits {
                // Its own count of missing windows, not the merger's `missing_between`:
                // whole hops between the two starts, minus the one that is no gap at all.
                let bridged = previous.is_some_and(|p| {
                    ((hit.start - p.start) / hop).round() - 1.0 <= f64::from(margin)
                });
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
    }

    /// Irregular windows: starts and lengths in quarter seconds (repeats, unsorted, gaps,
    /// odd hops), a few tags with duplicates inside a window.
    fn irregular_windows() -> impl Strategy<Value = Vec<Window>> {
        let tag = (
            prop::sample::select(vec!["Siren", "Speech", "Music", "Others", "Knock"]),
            0.0f64..=1.0,
        );
        let window = (0u32..120, 1u32..12, proptest::collection::vec(tag, 0..5));
        proptest::collection::vec(window, 0..50).prop_map(|rows| {
            rows.into_iter()
                .map(|(start, length, tags)| Window {
                    start_time: f64::from(start) / 4.0,
                    end_time: f64::from(start + length) / 4.0,
                    tags: tags
                        .into_iter()
                        .map(|(name, probability)| TagScore {
                            name: name.to_string(),
                            probability,
                        })
                        .collect(),
                })
                .collect()
        })
    }

    fn any_options() -> impl Strategy<Value = MergeOptions> {
        (
            0u32..4,
            proptest::option::of(0u32..4),
            proptest::option::of(0.0f64..=1.0),
        )
            .prop_map(|(default_margin, knock, min_probability)| MergeOptions {
                default_margin,
                tag_margins: knock
                    .map(|m| ("Knock".to_string(), m))
                    .into_iter()
                    .collect(),
                min_probability,
            })
    }

    #[test]
    fn the_ordered_merger_refuses_what_it_cannot_merge_on_the_fly() {
        let options = margin(0);
        let unsorted = [window(1, &[("Siren", 0.5)]), window(0, &[("Siren", 0.5)])];
        let mut ordered = OrderedMerger::new(&options);
        unsorted.iter().for_each(|w| ordered.push_window(w));
        assert_eq!(ordered.finish(), Err(NotInOrder::Unsorted { index: 1 }));
        // Starts 0, 2, 4 judge Siren's gaps with a 2 s hop; start 5 makes it 1 s, so
        // 0 and 2 must not have been joined at margin 0.
        let shrinking = [
            window(0, &[("Siren", 0.5)]),
            window(2, &[("Siren", 0.5)]),
            window(4, &[]),
            window(5, &[]),
        ];
        let mut ordered = OrderedMerger::new(&options);
        shrinking.iter().for_each(|w| ordered.push_window(w));
        assert_eq!(ordered.windows(), 4);
        assert_eq!(
            ordered.finish(),
            Err(NotInOrder::HopChanged {
                index: 3,
                from: 2.0,
                to: 1.0
            })
        );
        let siren = &merge_windows(&shrinking, &options)[0];
        assert_eq!(spans(siren), vec![(0.0, 2.0), (2.0, 4.0)]);
        // A hop that shrinks before any gap is judged is no reason to refuse.
        let settled = [
            window(0, &[("Siren", 0.5)]),
            window(2, &[]),
            window(3, &[("Siren", 0.5)]),
        ];
        let mut ordered = OrderedMerger::new(&options);
        settled.iter().for_each(|w| ordered.push_window(w));
        let detections = ordered.finish().expect("in order");
        assert_eq!(spans(&detections[0]), vec![(0.0, 2.0), (3.0, 5.0)]);
    }

    proptest! {
        #[test]
        fn both_mergers_answer_as_before(
            mut windows in irregular_windows(), options in any_options(), sort in any::<bool>()
        ) {
            if sort {
                windows.sort_by(|a, b| a.start_time.total_cmp(&b.start_time));
            }
            let expected = before_the_merger::merge_windows(&windows, &options);
            let mut merger = WindowMerger::new(&options);
            let mut ordered = OrderedMerger::new(&options);
            for w in &windows {
                merger.push_window(w);
                ordered.push_window(w);
            }
            prop_assert_eq!(merger.windows(), windows.len());
            prop_assert_eq!(&merger.finish(), &expected);
            match ordered.finish() {
                Ok(detections) => prop_assert_eq!(&detections, &expected),
                Err(NotInOrder::Unsorted { .. }) => prop_assert!(!sort),
                Err(NotInOrder::HopChanged { .. }) => {}
            }
        }

        #[test]
        fn answers_as_before_the_merger(windows in irregular_windows(), options in any_options()) {
            prop_assert_eq!(
                merge_windows(&windows, &options),
                before_the_merger::merge_windows(&windows, &options)
            );
        }

        #[test]
        fn answers_as_before_the_merger_on_arbitrary_values(
            raw in proptest::collection::vec((any::<f64>(), any::<f64>(), any::<f64>(), any::<bool>()), 0..30),
            m in 0u32..3,
        ) {
            let windows: Vec<Window> = raw.into_iter().map(|(s, e, p, knock)| Window {
                start_time: s, end_time: e,
                tags: vec![TagScore { name: if knock { "Knock" } else { "Siren" }.into(), probability: p }],
            }).collect();
            // Debug text, so NaN compares equal to NaN.
            prop_assert_eq!(
                format!("{:?}", merge_windows(&windows, &margin(m))),
                format!("{:?}", before_the_merger::merge_windows(&windows, &margin(m)))
            );
        }
    }
}
