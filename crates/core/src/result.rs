//! The Cochl.Sense result document that SageMaker writes to S3.
//!
//! The shape is `{"metadata": {...}, "data": [{"tags": [{"name", "probability"}],
//! "start_time", "end_time"}]}`. Parsing is lenient where Cochl is loose (times as integers
//! or floats, unknown fields, absent metadata) and strict where a wrong value would turn into
//! a wrong detection (non-finite or negative times, a window that ends before it starts, a
//! probability outside [0, 1], a nameless tag): those are refused with the window's index.
//!
//! Two ways in, one set of rules: [`CochlResult::parse`] builds the whole document (the
//! emulator, tests and tools want it), [`analyse`] streams it straight into the window
//! merge with bounded memory (on-result, where a 24 h result is 20 MB of JSON).

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::detections::{MergeOptions, OrderedMerger, TagDetection, WindowMerger};

/// The pseudo-tag Cochl reports for a window in which nothing was detected.
pub const OTHERS_TAG: &str = "Others";

/// A parsed and validated Cochl result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CochlResult {
    /// What Cochl says about the input; `name` is always `sagemaker_input`, not the file.
    #[serde(default)]
    pub metadata: ResultMetadata,
    /// The analysis windows, 2 s long with a 1 s hop, in the order Cochl wrote them.
    pub data: Vec<Window>,
}

/// The `metadata` object of a result. Every field is optional: only `length_sec` is used.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResultMetadata {
    /// The content type Cochl decoded the input as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// The audio length in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length_sec: Option<f64>,
    /// The input size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_byte: Option<f64>,
    /// Always `sagemaker_input`; kept only for completeness.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// One analysis window and the tags detected in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// Tags detected in the window; empty, or just `Others`, when nothing was heard.
    #[serde(default)]
    pub tags: Vec<TagScore>,
    /// Window start in seconds from the beginning of the audio.
    pub start_time: f64,
    /// Window end in seconds.
    pub end_time: f64,
}

/// One detected tag in one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TagScore {
    /// Cochl tag name, an open-ended string such as `Siren` or `Gunshot_single`.
    pub name: String,
    /// The model's score in [0, 1]; already above the tag's own threshold.
    pub probability: f64,
}

impl TagScore {
    /// True for Cochl's "nothing detected" marker, which is never a detection.
    pub fn is_others(&self) -> bool {
        self.name == OTHERS_TAG
    }
}

/// Why a result document was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResultError {
    /// The document is empty (a zero-byte object).
    #[error("result is empty")]
    Empty,
    /// Not JSON, or JSON of the wrong shape.
    #[error("result is not a valid Cochl result: {0}")]
    Malformed(String),
    /// The metadata carries an impossible length.
    #[error("result metadata length_sec is {0}, expected a finite number >= 0")]
    BadLength(f64),
    /// One window holds an impossible value.
    #[error("result window {index}: {problem}")]
    BadWindow {
        /// Position of the window in `data`.
        index: usize,
        /// What is wrong with it.
        problem: String,
    },
}

impl CochlResult {
    /// Parses and validates a result document.
    pub fn parse(bytes: &[u8]) -> Result<Self, ResultError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ResultError::Empty);
        }
        let result: CochlResult =
            serde_json::from_slice(bytes).map_err(|e| ResultError::Malformed(e.to_string()))?;
        result.validate()?;
        Ok(result)
    }

    /// Checks every value that could otherwise produce a wrong detection.
    pub fn validate(&self) -> Result<(), ResultError> {
        check_length(self.metadata.length_sec)?;
        for (index, window) in self.data.iter().enumerate() {
            window
                .validate()
                .map_err(|problem| ResultError::BadWindow { index, problem })?;
        }
        Ok(())
    }

    /// The audio length: the metadata's, else the end of the last window.
    pub fn length_sec(&self) -> Option<f64> {
        self.metadata.length_sec.or_else(|| {
            self.data
                .iter()
                .map(|w| w.end_time)
                .fold(None, |acc: Option<f64>, end| {
                    Some(acc.map_or(end, |a| a.max(end)))
                })
        })
    }
}

impl Window {
    fn validate(&self) -> Result<(), String> {
        check_window(
            self.start_time,
            self.end_time,
            self.tags.iter().map(|t| (t.name.as_str(), t.probability)),
        )
    }
}

/// The metadata check of [`CochlResult::validate`], shared with [`analyse`].
fn check_length(length: Option<f64>) -> Result<(), ResultError> {
    match length {
        Some(length) if !length.is_finite() || length < 0.0 => Err(ResultError::BadLength(length)),
        _ => Ok(()),
    }
}

/// The window check of [`CochlResult::validate`], shared with [`analyse`] so both refuse
/// the same windows with the same words.
fn check_window<'a>(
    start: f64,
    end: f64,
    tags: impl IntoIterator<Item = (&'a str, f64)>,
) -> Result<(), String> {
    if !start.is_finite() || !end.is_finite() {
        return Err(format!("times must be finite, got {start}..{end}"));
    }
    if start < 0.0 {
        return Err(format!("start_time {start} is negative"));
    }
    if end <= start {
        return Err(format!("end_time {end} is not after start_time {start}"));
    }
    for (name, p) in tags {
        // `trim().is_empty()`, but stopping at the first visible character.
        if name.chars().all(char::is_whitespace) {
            return Err("a tag has an empty name".to_string());
        }
        if !(0.0..=1.0).contains(&p) {
            return Err(format!(
                "tag \"{name}\" has probability {p}, outside [0, 1]"
            ));
        }
    }
    Ok(())
}

/// What [`analyse`] makes of a result document.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    /// The audio length, as [`CochlResult::length_sec`] gives it: the metadata's, else the
    /// end of the last window.
    pub length_sec: Option<f64>,
    /// The windows in `data`, duplicates included.
    pub windows: usize,
    /// The per-tag detections, as [`merge_windows`](crate::detections::merge_windows)
    /// gives them for the parsed windows.
    pub detections: Vec<TagDetection>,
}

/// Parses, validates and merges a result document without ever holding its windows.
///
/// The answer is the one of [`CochlResult::parse`], then
/// [`merge_windows`](crate::detections::merge_windows) over its `data`
/// and [`CochlResult::length_sec`], but a 24 h result (86,400 windows, about 20 MB) never
/// becomes a `Vec<Window>` with a `String` per tag: each window is read into a reused
/// buffer whose tag names borrow from `bytes`, checked, and handed to an
/// [`OrderedMerger`], which holds only the detections being built. A document whose
/// windows are not in Cochl's order (start order, one hop) is read a second time into a
/// [`WindowMerger`], which keeps a compact copy of the windows (about 7 MB for 24 h):
/// slower and larger, same answer.
///
/// Errors are those of [`CochlResult::parse`], with the same precedence and messages: a
/// blank document is [`ResultError::Empty`]; any JSON or shape error is
/// [`ResultError::Malformed`] (serde's message, position included), even when it comes
/// after an impossible value; then [`ResultError::BadLength`]; then
/// [`ResultError::BadWindow`] for the first impossible window, by its index in `data`.
/// `metadata` may come before or after `data`; unknown fields are ignored; times may be
/// integers.
pub fn analyse(bytes: &[u8], options: &MergeOptions) -> Result<Analysis, ResultError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ResultError::Empty);
    }
    let walked = walk(bytes, OrderedMerger::new(options))?;
    let detections = match walked.merger.finish() {
        Ok(detections) => detections,
        Err(_not_in_order) => walk(bytes, WindowMerger::new(options))?.merger.finish(),
    };
    Ok(Analysis {
        length_sec: walked.length.or(walked.last_end),
        windows: walked.windows,
        detections,
    })
}

/// One pass over the document, every window checked and pushed into `merger`.
fn walk<M: Merger>(bytes: &[u8], merger: M) -> Result<Walk<'_, M>, ResultError> {
    let mut walk = Walk {
        merger,
        length: None,
        last_end: None,
        windows: 0,
        refused: None,
        tags: Vec::new(),
    };
    // The same parser either way. A document that is UTF-8 as a whole (checked at several
    // GB/s) is read as text, which spares the UTF-8 check of every key and name, a tenth of
    // the time; any other takes the byte path `CochlResult::parse` takes, for its errors.
    let parsed = match std::str::from_utf8(bytes) {
        Ok(text) => read(&mut serde_json::Deserializer::from_str(text), &mut walk),
        Err(_) => read(&mut serde_json::Deserializer::from_slice(bytes), &mut walk),
    };
    parsed.map_err(|e| ResultError::Malformed(e.to_string()))?;
    check_length(walk.length)?;
    match walk.refused.take() {
        Some(refused) => Err(refused),
        None => Ok(walk),
    }
}

/// The document and nothing after it, as `serde_json::from_slice` reads it.
fn read<'de, R: serde_json::de::Read<'de>, M: Merger>(
    de: &mut serde_json::Deserializer<R>,
    walk: &mut Walk<'de, M>,
) -> Result<(), serde_json::Error> {
    DocumentSeed(walk).deserialize(&mut *de)?;
    de.end()
}

/// Either merger, as [`analyse`] feeds it.
trait Merger {
    fn push<'n>(&mut self, start: f64, end: f64, tags: impl IntoIterator<Item = (&'n str, f64)>);
}

impl Merger for OrderedMerger<'_> {
    fn push<'n>(&mut self, start: f64, end: f64, tags: impl IntoIterator<Item = (&'n str, f64)>) {
        OrderedMerger::push(self, start, end, tags);
    }
}

impl Merger for WindowMerger<'_> {
    fn push<'n>(&mut self, start: f64, end: f64, tags: impl IntoIterator<Item = (&'n str, f64)>) {
        WindowMerger::push(self, start, end, tags);
    }
}

/// The state of one [`analyse`] pass over a document whose bytes live for `'de`.
struct Walk<'de, M> {
    merger: M,
    /// `metadata.length_sec`.
    length: Option<f64>,
    /// The latest window end, the length when the metadata has none.
    last_end: Option<f64>,
    /// Windows read so far; the next window's index.
    windows: usize,
    /// The first impossible window. Reading goes on after it: a later syntax error must
    /// still win, as it does in [`CochlResult::parse`].
    refused: Option<ResultError>,
    /// The current window's tags, reused from window to window; names borrow from the
    /// document unless they hold escapes.
    tags: Vec<(Cow<'de, str>, f64)>,
}

impl<M: Merger> Walk<'_, M> {
    /// Checks the window just read (its tags are in `self.tags`) and merges it.
    fn window_read(&mut self, start: f64, end: f64) {
        let index = self.windows;
        self.windows += 1;
        if self.refused.is_some() {
            return;
        }
        let tags = self.tags.iter().map(|(name, p)| (name.as_ref(), *p));
        if let Err(problem) = check_window(start, end, tags.clone()) {
            self.refused = Some(ResultError::BadWindow { index, problem });
            return;
        }
        self.merger.push(start, end, tags);
        self.last_end = Some(self.last_end.map_or(end, |last| last.max(end)));
    }
}

// The visitors below make the calls on the deserializer that `#[derive(Deserialize)]` makes
// for `CochlResult`, `Window` and `TagScore` (struct or sequence form, unknown fields
// ignored, duplicate and missing fields refused), so every malformed document gets the
// same serde error, at the same position, as from `CochlResult::parse`.

/// The fields of one struct, in declaration order, as the derive numbers them.
trait Fields {
    const NAMES: &'static [&'static str];
}

struct DocumentFields;
impl Fields for DocumentFields {
    const NAMES: &'static [&'static str] = &["metadata", "data"];
}

struct WindowFields;
impl Fields for WindowFields {
    const NAMES: &'static [&'static str] = &["tags", "start_time", "end_time"];
}

struct TagFields;
impl Fields for TagFields {
    const NAMES: &'static [&'static str] = &["name", "probability"];
}

/// A field's position in `F::NAMES`, `F::NAMES.len()` for an unknown (ignored) field.
/// One type per struct, so the names are constants the compiler compares inline: keys
/// are matched 1.5 million times in a 24 h result.
struct FieldSeed<F>(PhantomData<F>);

impl<F> FieldSeed<F> {
    fn new() -> Self {
        Self(PhantomData)
    }
}

impl<'de, F: Fields> DeserializeSeed<'de> for FieldSeed<F> {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl<F: Fields> Visitor<'_> for FieldSeed<F> {
    type Value = usize;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("field identifier")
    }

    fn visit_u64<E: de::Error>(self, index: u64) -> Result<usize, E> {
        Ok(usize::try_from(index)
            .ok()
            .filter(|i| *i < F::NAMES.len())
            .unwrap_or(F::NAMES.len()))
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<usize, E> {
        self.visit_bytes(name.as_bytes())
    }

    fn visit_bytes<E: de::Error>(self, name: &[u8]) -> Result<usize, E> {
        Ok(F::NAMES
            .iter()
            .position(|field| field.as_bytes() == name)
            .unwrap_or(F::NAMES.len()))
    }
}

/// The whole document: `metadata` kept, `data` streamed.
struct DocumentSeed<'w, 'de, M>(&'w mut Walk<'de, M>);

impl<'de, M: Merger> DeserializeSeed<'de> for DocumentSeed<'_, 'de, M> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_struct("CochlResult", DocumentFields::NAMES, self)
    }
}

impl<'de, M: Merger> Visitor<'de> for DocumentSeed<'_, 'de, M> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("struct CochlResult")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let metadata: ResultMetadata = seq.next_element()?.unwrap_or_default();
        self.0.length = metadata.length_sec;
        if seq.next_element_seed(DataSeed(&mut *self.0))?.is_none() {
            return Err(de::Error::invalid_length(
                1,
                &"struct CochlResult with 2 elements",
            ));
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (mut metadata, mut data) = (false, false);
        while let Some(field) = map.next_key_seed(FieldSeed::<DocumentFields>::new())? {
            match field {
                0 => {
                    if metadata {
                        return Err(de::Error::duplicate_field("metadata"));
                    }
                    let value: ResultMetadata = map.next_value()?;
                    self.0.length = value.length_sec;
                    metadata = true;
                }
                1 => {
                    if data {
                        return Err(de::Error::duplicate_field("data"));
                    }
                    map.next_value_seed(DataSeed(&mut *self.0))?;
                    data = true;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if !data {
            return Err(de::Error::missing_field("data"));
        }
        Ok(())
    }
}

/// The `data` array, one window at a time.
struct DataSeed<'w, 'de, M>(&'w mut Walk<'de, M>);

impl<'de, M: Merger> DeserializeSeed<'de> for DataSeed<'_, 'de, M> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, M: Merger> Visitor<'de> for DataSeed<'_, 'de, M> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some((start, end)) = seq.next_element_seed(WindowSeed(&mut self.0.tags))? {
            self.0.window_read(start, end);
        }
        Ok(())
    }
}

/// One window: its tags into the buffer, its span returned.
struct WindowSeed<'t, 'de>(&'t mut Vec<(Cow<'de, str>, f64)>);

impl<'de> DeserializeSeed<'de> for WindowSeed<'_, 'de> {
    type Value = (f64, f64);

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(f64, f64), D::Error> {
        self.0.clear();
        deserializer.deserialize_struct("Window", WindowFields::NAMES, self)
    }
}

impl<'de> Visitor<'de> for WindowSeed<'_, 'de> {
    type Value = (f64, f64);

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("struct Window")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(f64, f64), A::Error> {
        let expected = &"struct Window with 3 elements";
        // `tags` has a default, so a missing element is no error.
        seq.next_element_seed(TagsSeed(&mut *self.0))?;
        let start = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(1, expected))?;
        let end = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(2, expected))?;
        Ok((start, end))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(f64, f64), A::Error> {
        let mut tags = false;
        let (mut start, mut end): (Option<f64>, Option<f64>) = (None, None);
        while let Some(field) = map.next_key_seed(FieldSeed::<WindowFields>::new())? {
            match field {
                0 => {
                    if tags {
                        return Err(de::Error::duplicate_field("tags"));
                    }
                    map.next_value_seed(TagsSeed(&mut *self.0))?;
                    tags = true;
                }
                1 => {
                    if start.is_some() {
                        return Err(de::Error::duplicate_field("start_time"));
                    }
                    start = Some(map.next_value()?);
                }
                2 => {
                    if end.is_some() {
                        return Err(de::Error::duplicate_field("end_time"));
                    }
                    end = Some(map.next_value()?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let start = start.ok_or_else(|| de::Error::missing_field("start_time"))?;
        let end = end.ok_or_else(|| de::Error::missing_field("end_time"))?;
        Ok((start, end))
    }
}

/// A window's `tags` array, appended to the buffer.
struct TagsSeed<'t, 'de>(&'t mut Vec<(Cow<'de, str>, f64)>);

impl<'de> DeserializeSeed<'de> for TagsSeed<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for TagsSeed<'_, 'de> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(tag) = seq.next_element_seed(TagSeed)? {
            self.0.push(tag);
        }
        Ok(())
    }
}

/// One `{"name", "probability"}` tag, its name borrowed when it can be.
struct TagSeed;

impl<'de> DeserializeSeed<'de> for TagSeed {
    type Value = (Cow<'de, str>, f64);

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_struct("TagScore", TagFields::NAMES, self)
    }
}

impl<'de> Visitor<'de> for TagSeed {
    type Value = (Cow<'de, str>, f64);

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("struct TagScore")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let expected = &"struct TagScore with 2 elements";
        let name = seq
            .next_element_seed(NameSeed)?
            .ok_or_else(|| de::Error::invalid_length(0, expected))?;
        let probability = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(1, expected))?;
        Ok((name, probability))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut name, mut probability): (Option<Cow<'de, str>>, Option<f64>) = (None, None);
        while let Some(field) = map.next_key_seed(FieldSeed::<TagFields>::new())? {
            match field {
                0 => {
                    if name.is_some() {
                        return Err(de::Error::duplicate_field("name"));
                    }
                    name = Some(map.next_value_seed(NameSeed)?);
                }
                1 => {
                    if probability.is_some() {
                        return Err(de::Error::duplicate_field("probability"));
                    }
                    probability = Some(map.next_value()?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let name = name.ok_or_else(|| de::Error::missing_field("name"))?;
        let probability = probability.ok_or_else(|| de::Error::missing_field("probability"))?;
        Ok((name, probability))
    }
}

/// A tag name: borrowed from the document, copied only when it holds escapes.
struct NameSeed;

impl<'de> DeserializeSeed<'de> for NameSeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_string(self)
    }
}

impl<'de> Visitor<'de> for NameSeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, name: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(name))
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(name.to_owned()))
    }

    fn visit_string<E: de::Error>(self, name: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const REFERENCE: &str = r#"{"metadata": {"content_type": "audio/mp3", "length_sec": 3.012, "size_byte": 12345, "name": "sagemaker_input"},
 "data": [
   {"tags": [{"name": "Drum", "probability": 0.51982635}], "start_time": 0, "end_time": 2},
   {"tags": [{"name": "Instrument", "probability": 0.9662908}, {"name": "Piano", "probability": 0.44879228},
             {"name": "Music", "probability": 0.9662908}], "start_time": 1, "end_time": 3}]}"#;

    #[test]
    fn parses_the_reference_result() {
        let result = CochlResult::parse(REFERENCE.as_bytes()).expect("valid");
        assert_eq!(result.metadata.length_sec, Some(3.012));
        assert_eq!(result.metadata.content_type.as_deref(), Some("audio/mp3"));
        assert_eq!(result.data.len(), 2);
        assert_eq!(result.data[1].start_time, 1.0);
        assert_eq!(result.data[1].end_time, 3.0);
        assert_eq!(result.data[1].tags[1].name, "Piano");
        assert_eq!(result.data[1].tags[1].probability, 0.44879228);
    }

    #[test]
    fn float_times_unknown_fields_and_empty_windows_are_accepted() {
        let text = r#"{"metadata": {"length_sec": 4.5, "extra": {"a": 1}}, "version": 2,
            "data": [
              {"tags": [], "start_time": 0.0, "end_time": 2.0, "confidence": "x"},
              {"tags": [{"name": "Others", "probability": 0.0}], "start_time": 1.5, "end_time": 3.5},
              {"start_time": 2, "end_time": 4}
            ]}"#;
        let result = CochlResult::parse(text.as_bytes()).expect("valid");
        assert_eq!(result.data.len(), 3);
        assert!(result.data[0].tags.is_empty());
        assert!(result.data[1].tags[0].is_others());
        assert!(result.data[2].tags.is_empty());
    }

    #[test]
    fn no_windows_is_a_valid_result() {
        let result = CochlResult::parse(br#"{"metadata": {"length_sec": 1.2}, "data": []}"#)
            .expect("a short file has no windows");
        assert!(result.data.is_empty());
        assert_eq!(result.length_sec(), Some(1.2));
    }

    #[test]
    fn length_falls_back_to_the_last_window() {
        let result = CochlResult::parse(
            br#"{"data": [{"tags": [], "start_time": 1, "end_time": 3}, {"tags": [], "start_time": 0, "end_time": 2}]}"#,
        )
        .expect("valid");
        assert_eq!(result.length_sec(), Some(3.0));
    }

    fn refused(text: &str) -> ResultError {
        CochlResult::parse(text.as_bytes()).expect_err(text)
    }

    #[test]
    fn empty_and_malformed_documents_are_refused() {
        assert_eq!(refused(""), ResultError::Empty);
        assert_eq!(refused("  \n"), ResultError::Empty);
        assert!(matches!(refused("{"), ResultError::Malformed(_)));
        assert!(matches!(refused("[]"), ResultError::Malformed(_)));
        assert!(
            matches!(refused(r#"{"metadata": {}}"#), ResultError::Malformed(m) if m.contains("data"))
        );
        assert!(matches!(
            refused(r#"{"data": [{"tags": [], "start_time": "0", "end_time": 2}]}"#),
            ResultError::Malformed(_)
        ));
        // JSON has no NaN or Infinity literal; serde refuses them and huge exponents.
        assert!(matches!(
            refused(r#"{"data": [{"tags": [], "start_time": NaN, "end_time": 2}]}"#),
            ResultError::Malformed(_)
        ));
        assert!(matches!(
            refused(r#"{"data": [{"tags": [], "start_time": 0, "end_time": 1e999}]}"#),
            ResultError::Malformed(_)
        ));
    }

    #[test]
    fn impossible_values_are_refused_with_the_window_index() {
        let cases = [
            (
                r#"{"tags": [], "start_time": -1, "end_time": 1}"#,
                "negative",
            ),
            (
                r#"{"tags": [], "start_time": 3, "end_time": 1}"#,
                "not after",
            ),
            (
                r#"{"tags": [], "start_time": 1, "end_time": 1}"#,
                "not after",
            ),
            (
                r#"{"tags": [{"name": "Siren", "probability": 1.2}], "start_time": 0, "end_time": 2}"#,
                "probability 1.2",
            ),
            (
                r#"{"tags": [{"name": "Siren", "probability": -0.1}], "start_time": 0, "end_time": 2}"#,
                "probability -0.1",
            ),
            (
                r#"{"tags": [{"name": " ", "probability": 0.5}], "start_time": 0, "end_time": 2}"#,
                "empty name",
            ),
        ];
        for (window, expected) in cases {
            let text = format!(
                r#"{{"data": [{{"tags": [], "start_time": 0, "end_time": 2}}, {window}]}}"#
            );
            match refused(&text) {
                ResultError::BadWindow { index, problem } => {
                    assert_eq!(index, 1, "{window}");
                    assert!(problem.contains(expected), "{problem} vs {expected}");
                }
                other => panic!("{window}: unexpected {other:?}"),
            }
        }
        assert_eq!(
            refused(r#"{"metadata": {"length_sec": -3}, "data": []}"#),
            ResultError::BadLength(-3.0)
        );
    }

    #[test]
    fn field_and_name_seeds_read_every_form_a_deserializer_may_offer() {
        // JSON always names fields with strings and lends tag names as `&str`, but the
        // seeds answer as serde's derive does for any deserializer (here serde's own value
        // deserializers, which offer integers as field ids and owned strings): field `i` by
        // its position, an unknown position as an ignored field, anything else refused.
        use serde::de::value::Error as ValueError;
        use serde::de::IntoDeserializer;
        let by_index = |i: u64| {
            FieldSeed::<TagFields>::new()
                .deserialize(IntoDeserializer::<ValueError>::into_deserializer(i))
        };
        assert_eq!(by_index(0), Ok(0), "name");
        assert_eq!(by_index(1), Ok(1), "probability");
        assert_eq!(by_index(2), Ok(2), "unknown");
        assert_eq!(by_index(u64::MAX), Ok(2), "unknown");
        let by_name = |name: &str| {
            FieldSeed::<TagFields>::new()
                .deserialize(IntoDeserializer::<ValueError>::into_deserializer(name))
        };
        assert_eq!(by_name("probability"), Ok(1));
        assert_eq!(by_name("confidence"), Ok(2));
        let refused = FieldSeed::<TagFields>::new()
            .deserialize(IntoDeserializer::<ValueError>::into_deserializer(true))
            .expect_err("not an identifier");
        assert!(
            refused.to_string().contains("expected field identifier"),
            "{refused}"
        );
        let name = NameSeed.deserialize(IntoDeserializer::<ValueError>::into_deserializer(
            "Siren".to_string(),
        ));
        assert_eq!(name, Ok(Cow::<str>::Owned("Siren".to_string())));
    }

    #[test]
    fn others_is_the_only_marker_of_nothing_heard() {
        let tag = |name: &str| TagScore {
            name: name.into(),
            probability: 0.5,
        };
        assert!(tag("Others").is_others());
        assert!(!tag("Siren").is_others());
        assert!(!tag("others").is_others(), "Cochl's name, case and all");
    }

    #[test]
    fn a_length_of_zero_is_accepted_and_below_zero_refused() {
        let zero = CochlResult::parse(br#"{"metadata": {"length_sec": 0}, "data": []}"#);
        assert_eq!(zero.map(|r| r.length_sec()), Ok(Some(0.0)));
        let tiny = -f64::from_bits(1);
        let result = CochlResult {
            metadata: ResultMetadata {
                length_sec: Some(tiny),
                ..Default::default()
            },
            data: vec![],
        };
        assert_eq!(result.validate(), Err(ResultError::BadLength(tiny)));
    }

    #[test]
    fn validate_refuses_non_finite_values_built_in_code() {
        let result = CochlResult {
            metadata: ResultMetadata::default(),
            data: vec![Window {
                tags: vec![],
                start_time: f64::NAN,
                end_time: 2.0,
            }],
        };
        assert!(matches!(
            result.validate(),
            Err(ResultError::BadWindow { index: 0, .. })
        ));
        let result = CochlResult {
            metadata: ResultMetadata {
                length_sec: Some(f64::INFINITY),
                ..Default::default()
            },
            data: vec![],
        };
        assert!(matches!(result.validate(), Err(ResultError::BadLength(_))));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_are_refused_for_what_they_are(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let result = CochlResult::parse(&bytes);
            if bytes.iter().all(u8::is_ascii_whitespace) {
                prop_assert_eq!(result, Err(ResultError::Empty));
            } else if serde_json::from_slice::<CochlResult>(&bytes).is_err() {
                prop_assert!(matches!(result, Err(ResultError::Malformed(_))));
            } else if let Ok(parsed) = result {
                prop_assert_eq!(parsed.validate(), Ok(()));
            }
        }

        #[test]
        fn parse_never_panics_on_near_valid_documents(
            start in any::<f64>(), end in any::<f64>(), p in any::<f64>(), name in ".{0,8}"
        ) {
            let doc = serde_json::json!({"data": [{"tags": [{"name": name, "probability": p}], "start_time": start, "end_time": end}]});
            if let Ok(result) = CochlResult::parse(doc.to_string().as_bytes()) {
                let w = &result.data[0];
                prop_assert!(w.start_time >= 0.0 && w.end_time > w.start_time);
                prop_assert!((0.0..=1.0).contains(&w.tags[0].probability));
            }
        }

        #[test]
        fn valid_documents_round_trip(
            windows in proptest::collection::vec((0u32..1000, proptest::collection::vec(("[A-Z][a-z_]{1,10}", 0.0f64..=1.0), 0..4)), 0..20)
        ) {
            let result = CochlResult {
                metadata: ResultMetadata { length_sec: Some(windows.len() as f64 + 1.0), ..Default::default() },
                data: windows.into_iter().map(|(i, tags)| Window {
                    start_time: f64::from(i),
                    end_time: f64::from(i) + 2.0,
                    tags: tags.into_iter().map(|(name, probability)| TagScore { name, probability }).collect(),
                }).collect(),
            };
            let text = serde_json::to_vec(&result).expect("serialises");
            prop_assert_eq!(CochlResult::parse(&text).expect("own output parses"), result);
        }
    }

    // --- analyse: the streaming parse and merge -----------------------------------------

    use crate::detections::{merge_windows, MergeOptions, Segment, TagDetection};

    /// `analyse` as the parse-then-merge path answers it.
    fn parsed_then_merged(text: &[u8], options: &MergeOptions) -> Result<Analysis, ResultError> {
        let result = CochlResult::parse(text)?;
        Ok(Analysis {
            length_sec: result.length_sec(),
            windows: result.data.len(),
            detections: merge_windows(&result.data, options),
        })
    }

    #[test]
    fn analyse_merges_two_overlapping_windows() {
        // Siren in both windows; Dog_bark only in the second; Others never counts. The
        // metadata comes after the data and the second window carries an unknown field.
        let text = r#"{"data": [
            {"tags": [{"name": "Siren", "probability": 0.6}, {"name": "Others", "probability": 0.1}],
             "start_time": 0, "end_time": 2},
            {"start_time": 1, "confidence": [1, 2], "end_time": 3,
             "tags": [{"name": "Dog_bark", "probability": 0.9}, {"name": "Siren", "probability": 0.8}]}
          ], "metadata": {"length_sec": 3.5, "name": "sagemaker_input"}}"#;
        let analysis = analyse(text.as_bytes(), &MergeOptions::default()).expect("valid");
        let expected = Analysis {
            length_sec: Some(3.5),
            windows: 2,
            detections: vec![
                // Alphabetical: Dog_bark before Siren.
                TagDetection {
                    name: "Dog_bark".into(),
                    max_probability: 0.9,
                    detected_seconds: 2.0,
                    windows: 1,
                    segments: vec![Segment {
                        start: 1.0,
                        end: 3.0,
                        max_probability: 0.9,
                        mean_probability: 0.9,
                        windows: 1,
                    }],
                },
                // Windows 0-2 and 1-3 are adjacent (no hop missing): one segment 0-3,
                // covering 3 s; mean (0.6 + 0.8) / 2 = 0.7 after rounding.
                TagDetection {
                    name: "Siren".into(),
                    max_probability: 0.8,
                    detected_seconds: 3.0,
                    windows: 2,
                    segments: vec![Segment {
                        start: 0.0,
                        end: 3.0,
                        max_probability: 0.8,
                        mean_probability: 0.7,
                        windows: 2,
                    }],
                },
            ],
        };
        assert_eq!(analysis, expected);
        assert_eq!(
            Ok(analysis),
            parsed_then_merged(text.as_bytes(), &MergeOptions::default())
        );
    }

    #[test]
    fn analyse_takes_the_length_from_the_windows_without_metadata() {
        let text = br#"{"data": [{"tags": [], "start_time": 1, "end_time": 3}, {"start_time": 0, "end_time": 2}]}"#;
        let analysis = analyse(text, &MergeOptions::default()).expect("valid");
        assert_eq!(analysis.length_sec, Some(3.0));
        assert_eq!(analysis.windows, 2);
        assert!(analysis.detections.is_empty());
        let empty = analyse(br#"{"data": []}"#, &MergeOptions::default()).expect("valid");
        assert_eq!(empty.length_sec, None);
        assert_eq!(empty.windows, 0);
    }

    #[test]
    fn analyse_reads_escaped_tag_names() {
        let text = br#"{"data": [{"tags": [{"name": "Caf\u00e9 \"noise\"", "probability": 0.5}], "start_time": 0, "end_time": 2}]}"#;
        let analysis = analyse(text, &MergeOptions::default()).expect("valid");
        assert_eq!(analysis.detections[0].name, "Café \"noise\"");
    }

    /// Documents both paths must refuse, each for the same reason and with the same words.
    const REFUSED: &[&str] = &[
        "",
        " \n\t",
        "not json",
        "{",
        "[]",
        "[{}]",
        "null",
        "42",
        r#"{"metadata": {}}"#,
        r#"{"data": null}"#,
        r#"{"data": {}}"#,
        r#"{"data": [], "data": []}"#,
        r#"{"metadata": {}, "data": [], "metadata": {}}"#,
        r#"{"data": []} trailing"#,
        r#"{"data": [1]}"#,
        r#"{"data": [[]]}"#,
        r#"{"data": [[[], 0]]}"#,
        r#"{"data": [{"tags": [], "start_time": "0", "end_time": 2}]}"#,
        r#"{"data": [{"tags": [], "end_time": 2}]}"#,
        r#"{"data": [{"tags": [], "start_time": 0}]}"#,
        r#"{"data": [{"tags": [], "start_time": 0, "start_time": 1, "end_time": 2}]}"#,
        r#"{"data": [{"tags": [], "tags": [], "start_time": 0, "end_time": 2}]}"#,
        r#"{"data": [{"tags": null, "start_time": 0, "end_time": 2}]}"#,
        r#"{"data": [{"tags": [{"probability": 0.5}], "start_time": 0, "end_time": 2}]}"#,
        r#"{"data": [{"tags": [{"name": "Siren"}], "start_time": 0, "end_time": 2}]}"#,
        r#"{"data": [{"tags": [{"name": 1, "probability": 0.5}], "start_time": 0, "end_time": 2}]}"#,
        r#"{"data": [{"tags": [{"name": "A", "name": "B", "probability": 0.5}], "start_time": 0, "end_time": 2}]}"#,
        r#"{"data": [{"tags": [["Siren"]], "start_time": 0, "end_time": 2}]}"#,
        r#"{"data": [{"tags": [1], "start_time": 0, "end_time": 2}]}"#,
        r#"{"data": [{"tags": ["Siren"], "start_time": 0, "end_time": 2}]}"#,
        r#"{"data": [{"tags": [{"name": "Siren", "probability": 0.5}], "start_time": 0, "end_time": 2}], "x": 1, "data": []}"#,
        r#"{"data": [{"tags": [], "start_time": NaN, "end_time": 2}]}"#,
        r#"{"data": [{"tags": [], "start_time": 0, "end_time": 1e999}]}"#,
        r#"{"data": [{"tags": [], "start_time": -1, "end_time": 1}]}"#,
        r#"{"data": [{"tags": [], "start_time": 0, "end_time": 2}, {"tags": [], "start_time": 3, "end_time": 1}]}"#,
        r#"{"data": [{"tags": [], "start_time": 1, "end_time": 1}]}"#,
        r#"{"data": [{"tags": [{"name": "Siren", "probability": 1.2}], "start_time": 0, "end_time": 2}]}"#,
        r#"{"data": [{"tags": [{"name": "Siren", "probability": -0.1}], "start_time": 0, "end_time": 2}]}"#,
        r#"{"data": [{"tags": [{"name": " ", "probability": 0.5}], "start_time": 0, "end_time": 2}]}"#,
        r#"{"data": [{"tags": [{"name": "", "probability": 0.5}], "start_time": 0, "end_time": 2}]}"#,
        r#"{"metadata": {"length_sec": -3}, "data": []}"#,
        r#"{"metadata": {"length_sec": "3"}, "data": []}"#,
        r#"{"metadata": 3, "data": []}"#,
        // Precedence: a syntax error after an impossible window wins, as in `parse`.
        r#"{"data": [{"tags": [], "start_time": -1, "end_time": 1}, {"tags": [], "start_time": 0}]}"#,
        r#"{"data": [{"tags": [], "start_time": -1, "end_time": 1}]"#,
        // Precedence: a bad length, even after the data, wins over a bad window.
        r#"{"data": [{"tags": [], "start_time": -1, "end_time": 1}], "metadata": {"length_sec": -1}}"#,
        // The first impossible window is the one reported.
        r#"{"data": [{"tags": [], "start_time": 0, "end_time": 2}, {"tags": [], "start_time": 2, "end_time": 1}, {"tags": [], "start_time": -1, "end_time": 1}]}"#,
    ];

    #[test]
    fn analyse_refuses_what_parse_refuses_with_the_same_error() {
        let options = MergeOptions::default();
        for text in REFUSED {
            let expected = CochlResult::parse(text.as_bytes()).expect_err(text);
            assert_eq!(analyse(text.as_bytes(), &options), Err(expected), "{text}");
        }
        // Spot checks that the cases refuse for the intended reason.
        let kind = |text: &str| analyse(text.as_bytes(), &options).expect_err(text);
        assert_eq!(kind(""), ResultError::Empty);
        assert!(matches!(kind("not json"), ResultError::Malformed(_)));
        assert!(matches!(
            kind(r#"{"metadata": {}}"#),
            ResultError::Malformed(m) if m.contains("missing field `data`")
        ));
        assert!(matches!(
            kind(r#"{"data": [{"tags": [], "start_time": 0, "end_time": 1e999}]}"#),
            ResultError::Malformed(m) if m.contains("out of range")
        ));
        assert!(matches!(
            kind(r#"{"data": [{"start_time": 0, "end_time": 2}, {"start_time": 3, "end_time": 1}]}"#),
            ResultError::BadWindow { index: 1, problem } if problem.contains("not after")
        ));
        assert!(matches!(
            kind(r#"{"data": [{"tags": [{"name": " ", "probability": 0.5}], "start_time": 0, "end_time": 2}]}"#),
            ResultError::BadWindow { index: 0, problem } if problem.contains("empty name")
        ));
        assert!(matches!(
            kind(r#"{"data": [{"start_time": -1, "end_time": 1}, {"start_time": 0}]}"#),
            ResultError::Malformed(m) if m.contains("missing field `end_time`")
        ));
        assert_eq!(
            kind(
                r#"{"data": [{"start_time": -1, "end_time": 1}], "metadata": {"length_sec": -1}}"#
            ),
            ResultError::BadLength(-1.0)
        );
        assert!(matches!(
            kind(
                r#"{"data": [{"start_time": 0, "end_time": 2}, {"start_time": 2, "end_time": 1}, {"start_time": -1, "end_time": 1}]}"#
            ),
            ResultError::BadWindow { index: 1, .. }
        ));
    }

    #[test]
    fn analyse_refuses_invalid_utf8_as_parse_does() {
        // Not UTF-8 as a whole: read byte-wise, as `parse` reads it, for the same error.
        let options = MergeOptions::default();
        for text in [
            &b"{\"data\": [{\"tags\": [{\"name\": \"Sir\xffen\", \"probability\": 0.5}], \"start_time\": 0, \"end_time\": 2}]}"[..],
            &b"{\"data\": [], \"x\xff\": 1}"[..],
            &b"{\"data\": []}\xff"[..],
        ] {
            let expected = CochlResult::parse(text).expect_err("not UTF-8");
            assert!(matches!(expected, ResultError::Malformed(_)));
            assert_eq!(analyse(text, &options), Err(expected));
        }
    }

    #[test]
    fn analyse_accepts_the_sequence_forms_parse_accepts() {
        // serde's derive reads a struct from an array too; both paths must agree on it.
        let options = MergeOptions::default();
        for text in [
            r#"[{"length_sec": 4}, [[[{"name": "Siren", "probability": 0.5}], 0, 2], [[["Knock", 1.0]], 1, 3]]]"#,
            r#"[{}, [[[], 0, 2]]]"#,
            r#"{"data": [[[{"name": "Siren", "probability": 0.5}], 0, 2]]}"#,
        ] {
            let expected = parsed_then_merged(text.as_bytes(), &options);
            assert!(expected.is_ok(), "{text}: {expected:?}");
            assert_eq!(analyse(text.as_bytes(), &options), expected, "{text}");
        }
    }

    /// Tag names as they appear in the JSON text: plain, `Others`, and escaped ones (which
    /// the streaming parse cannot borrow).
    const NAMES: [&str; 7] = [
        r#""Siren""#,
        r#""Speech""#,
        r#""Music""#,
        r#""Others""#,
        r#""Dog_bark""#,
        r#""Caf\u00e9""#,
        r#""Tab\tbed""#,
    ];

    /// A time as Cochl might print it: an integer when whole (if `integer`), else a float.
    fn time_text(t: f64, integer: bool) -> String {
        if integer && t.fract() == 0.0 {
            format!("{}", t as u64)
        } else {
            serde_json::to_string(&t).expect("finite")
        }
    }

    /// The fields of an object in a rotated order (so every field gets to be first).
    fn object(mut fields: Vec<String>, rotate: usize) -> String {
        if !fields.is_empty() {
            let len = fields.len();
            fields.rotate_left(rotate % len);
        }
        format!("{{{}}}", fields.join(", "))
    }

    /// Generated valid windows: start (in half seconds, so repeats and unsorted starts
    /// occur), duration, tags, whether to print integers, field order, an unknown field.
    type GeneratedWindow = (u16, u8, Vec<(usize, f64)>, bool, usize, bool, bool);

    fn window_text(w: &GeneratedWindow) -> String {
        let (start, duration, tags, integer, rotate, extra, no_tags) = w;
        let start = f64::from(*start) / 2.0;
        let end = start + f64::from(*duration) / 2.0 + 0.5;
        let tags: Vec<String> = tags
            .iter()
            .map(|(name, p)| {
                let p = serde_json::to_string(p).expect("finite");
                format!(r#"{{"name": {}, "probability": {p}}}"#, NAMES[*name])
            })
            .collect();
        let mut fields = vec![
            format!(r#""start_time": {}"#, time_text(start, *integer)),
            format!(r#""end_time": {}"#, time_text(end, *integer)),
        ];
        if !(*no_tags && tags.is_empty()) {
            fields.push(format!(r#""tags": [{}]"#, tags.join(", ")));
        }
        if *extra {
            fields.push(r#""confidence": {"x": [1, "y", null]}"#.to_string());
        }
        object(fields, *rotate)
    }

    fn generated_window() -> impl Strategy<Value = GeneratedWindow> {
        (
            0u16..80,
            0u8..6,
            proptest::collection::vec((0..NAMES.len(), 0.0f64..=1.0), 0..5),
            any::<bool>(),
            0usize..4,
            proptest::bool::weighted(0.1),
            any::<bool>(),
        )
    }

    /// A whole document: windows, `length_sec` (or none), metadata present, field order
    /// of the document, an unknown top-level field, the windows' order.
    fn generated_document() -> impl Strategy<Value = String> {
        (
            proptest::collection::vec(generated_window(), 0..40),
            proptest::option::of(0u32..100),
            any::<bool>(),
            0usize..3,
            any::<bool>(),
            0u8..3,
        )
            .prop_map(|(mut windows, length, metadata, rotate, extra, order)| {
                match order {
                    // In start order: merged in one pass unless the hop shrinks late.
                    1 => windows.sort_by_key(|w| w.0),
                    // One window a second, as Cochl writes them: merged in one pass.
                    2 => windows
                        .iter_mut()
                        .zip(0u16..)
                        .for_each(|(w, i)| w.0 = 2 * i),
                    _ => {}
                }
                let data: Vec<String> = windows.iter().map(window_text).collect();
                let mut fields = vec![format!(r#""data": [{}]"#, data.join(", "))];
                if metadata {
                    let length = length
                        .map(|l| format!(r#", "length_sec": {}"#, f64::from(l) / 4.0))
                        .unwrap_or_default();
                    fields.push(format!(
                        r#""metadata": {{"content_type": "audio/wav"{length}, "size_byte": 1000}}"#
                    ));
                }
                if extra {
                    fields.push(r#""version": {"major": 2}"#.to_string());
                }
                object(fields, rotate)
            })
    }

    fn generated_options() -> impl Strategy<Value = MergeOptions> {
        (
            0u32..3,
            proptest::option::of(0u32..3),
            proptest::option::of(0.0f64..=1.0),
        )
            .prop_map(|(default_margin, siren, min_probability)| MergeOptions {
                default_margin,
                tag_margins: siren
                    .map(|m| ("Siren".to_string(), m))
                    .into_iter()
                    .collect(),
                min_probability,
            })
    }

    proptest! {
        #[test]
        fn analyse_equals_parse_then_merge(text in generated_document(), options in generated_options()) {
            let expected = parsed_then_merged(text.as_bytes(), &options);
            prop_assert!(expected.is_ok(), "generated documents are valid: {:?}\n{}", expected, text);
            prop_assert_eq!(analyse(text.as_bytes(), &options), expected, "{}", text);
        }

        #[test]
        fn analyse_and_parse_agree_on_damaged_documents(
            text in generated_document(),
            cut in any::<prop::sample::Index>(),
            at in any::<prop::sample::Index>(),
            byte in prop::sample::select(b"{}[],:\"-0e. x".to_vec()),
        ) {
            let options = MergeOptions::default();
            let bytes = text.into_bytes();
            let truncated = &bytes[..cut.index(bytes.len() + 1)];
            prop_assert_eq!(analyse(truncated, &options), parsed_then_merged(truncated, &options));
            let mut changed = bytes.clone();
            changed[at.index(bytes.len())] = byte;
            prop_assert_eq!(analyse(&changed, &options), parsed_then_merged(&changed, &options));
        }

        #[test]
        fn analyse_and_parse_agree_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let options = MergeOptions::default();
            prop_assert_eq!(analyse(&bytes, &options), parsed_then_merged(&bytes, &options));
        }
    }
}
