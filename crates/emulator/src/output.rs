//! The result document in Cochl's exact format (docs/cochl-contract.md, "Result document").
//!
//! Serialised with the field order and number forms Cochl uses: window times are
//! integers (`"start_time": 0`), `length_sec` is rounded to 3 decimals, probabilities to 6.

use serde::Serialize;

/// The value of `metadata.name`: Cochl always writes this constant, never the file name.
pub const INPUT_NAME: &str = "sagemaker_input";

/// A complete result, as written to `<S3OutputPath>/<uuid>.out`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResultDocument {
    /// What was analysed.
    pub metadata: Metadata,
    /// One entry per 2 s window, 1 s apart.
    pub data: Vec<WindowResult>,
}

/// The `metadata` object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metadata {
    /// The request's content type, verbatim.
    pub content_type: String,
    /// The decoded duration in seconds, rounded to 3 decimals.
    pub length_sec: f64,
    /// The input's size in bytes.
    pub size_byte: u64,
    /// Always [`INPUT_NAME`].
    pub name: &'static str,
}

/// One window's tags.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowResult {
    /// Detected tags, `[]`, or `[{"name": "Others", "probability": 0.0}]`.
    pub tags: Vec<TagResult>,
    /// Window start, whole seconds.
    pub start_time: u64,
    /// Window end, whole seconds (start + 2).
    pub end_time: u64,
}

/// One tag in one window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TagResult {
    /// The tag name (`Tone`, `Noise`, `Knock`, or `Others`).
    pub name: String,
    /// The score, rounded to 6 decimals.
    pub probability: f64,
}

impl ResultDocument {
    /// The JSON bytes written to S3 and returned by `InvokeEndpoint`.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    /// Names of the detected tags (not `Others`) per window, for tests and logs.
    pub fn tag_names(&self) -> Vec<Vec<&str>> {
        self.data
            .iter()
            .map(|w| {
                w.tags
                    .iter()
                    .filter(|t| t.name != cochl_core::result::OTHERS_TAG)
                    .map(|t| t.name.as_str())
                    .collect()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cochl_core::result::CochlResult;

    #[test]
    fn serialises_like_cochl_and_parses_with_the_core() {
        let document = ResultDocument {
            metadata: Metadata {
                content_type: "audio/mp3".into(),
                length_sec: 3.012,
                size_byte: 12345,
                name: INPUT_NAME,
            },
            data: vec![
                WindowResult {
                    tags: vec![TagResult {
                        name: "Tone".into(),
                        probability: 0.519826,
                    }],
                    start_time: 0,
                    end_time: 2,
                },
                WindowResult {
                    tags: vec![TagResult {
                        name: "Others".into(),
                        probability: 0.0,
                    }],
                    start_time: 1,
                    end_time: 3,
                },
            ],
        };
        let json = String::from_utf8(document.to_json().unwrap()).unwrap();
        assert_eq!(
            json,
            r#"{"metadata":{"content_type":"audio/mp3","length_sec":3.012,"size_byte":12345,"name":"sagemaker_input"},"data":[{"tags":[{"name":"Tone","probability":0.519826}],"start_time":0,"end_time":2},{"tags":[{"name":"Others","probability":0.0}],"start_time":1,"end_time":3}]}"#
        );
        let parsed = CochlResult::parse(json.as_bytes()).unwrap();
        assert_eq!(parsed.length_sec(), Some(3.012));
        assert_eq!(parsed.data[1].start_time, 1.0);
        assert_eq!(document.tag_names(), vec![vec!["Tone"], vec![]]);
    }
}
