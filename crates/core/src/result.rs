//! The Cochl.Sense result document that SageMaker writes to S3.
//!
//! The shape is `{"metadata": {...}, "data": [{"tags": [{"name", "probability"}],
//! "start_time", "end_time"}]}`. Parsing is lenient where Cochl is loose (times as integers
//! or floats, unknown fields, absent metadata) and strict where a wrong value would turn into
//! a wrong detection (non-finite or negative times, a window that ends before it starts, a
//! probability outside [0, 1], a nameless tag): those are refused with the window's index.

use serde::{Deserialize, Serialize};

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
        if let Some(length) = self.metadata.length_sec {
            if !length.is_finite() || length < 0.0 {
                return Err(ResultError::BadLength(length));
            }
        }
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
        let (start, end) = (self.start_time, self.end_time);
        if !start.is_finite() || !end.is_finite() {
            return Err(format!("times must be finite, got {start}..{end}"));
        }
        if start < 0.0 {
            return Err(format!("start_time {start} is negative"));
        }
        if end <= start {
            return Err(format!("end_time {end} is not after start_time {start}"));
        }
        for tag in &self.tags {
            if tag.name.trim().is_empty() {
                return Err("a tag has an empty name".to_string());
            }
            let p = tag.probability;
            if !(0.0..=1.0).contains(&p) {
                return Err(format!(
                    "tag \"{}\" has probability {p}, outside [0, 1]",
                    tag.name
                ));
            }
        }
        Ok(())
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
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = CochlResult::parse(&bytes);
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
}
