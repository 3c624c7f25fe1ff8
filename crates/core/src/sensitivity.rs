//! Sensitivity settings and the SageMaker custom attributes header.
//!
//! Cochl.Sense reads its sensitivity from the `X-Amzn-SageMaker-Custom-Attributes`
//! header as `{"default_sensitivity": 1, "tags_sensitivity": {"Siren": 2}}`. Values are
//! integers in [-2, 2]; per Cochl's SageMaker guide a positive value makes more tags
//! appear. The stack has a default configuration (from the environment) and each file may
//! override it through its object metadata with the same JSON; the per-file value wins per
//! tag. SageMaker caps the header at 1024 printable ASCII characters, so an oversized or
//! non-ASCII result is refused here, before any call is made.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Object metadata key (S3 user metadata `x-amz-meta-sensitivity`) holding a per-file override.
pub const SENSITIVITY_METADATA_KEY: &str = "sensitivity";

/// Largest custom attributes header SageMaker accepts, in characters.
pub const MAX_CUSTOM_ATTRIBUTES_LEN: usize = 1024;

/// Why a sensitivity configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SensitivityError {
    /// The text is not JSON or not an object of the expected shape.
    #[error("sensitivity is not valid JSON of the form {{\"default_sensitivity\": n, \"tags_sensitivity\": {{\"Tag\": n}}}}: {0}")]
    Malformed(String),
    /// A field other than `default_sensitivity` and `tags_sensitivity` was given.
    #[error("sensitivity has an unknown field \"{0}\" (expected default_sensitivity and tags_sensitivity)")]
    UnknownField(String),
    /// A value is not an integer.
    #[error("sensitivity for {target} must be an integer in [-2, 2], got {value}")]
    NotInteger {
        /// `default` or `tag "Name"`.
        target: String,
        /// The value as written.
        value: String,
    },
    /// A value is an integer outside [-2, 2].
    #[error("sensitivity for {target} is {value}, outside [-2, 2]")]
    OutOfRange {
        /// `default` or `tag "Name"`.
        target: String,
        /// The offending value.
        value: i64,
    },
    /// A tag name is empty, too long or not printable ASCII.
    #[error("sensitivity tag name {0:?} must be 1 to 128 printable ASCII characters")]
    BadTagName(String),
    /// The serialised header would exceed SageMaker's limit.
    #[error("sensitivity custom attributes would be {len} characters, over SageMaker's limit of {MAX_CUSTOM_ATTRIBUTES_LEN}")]
    TooLong {
        /// Length of the serialised header.
        len: usize,
    },
}

/// One sensitivity value, an integer in [-2, 2]. Positive means more detections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Sensitivity(i8);

impl Sensitivity {
    /// The most conservative setting (fewest detections).
    pub const MIN: Sensitivity = Sensitivity(-2);
    /// The model's own default.
    pub const NEUTRAL: Sensitivity = Sensitivity(0);
    /// The most permissive setting (most detections).
    pub const MAX: Sensitivity = Sensitivity(2);

    /// Checks the range; the only way to build a value, so every value is valid.
    pub fn new(value: i64) -> Option<Self> {
        (-2..=2)
            .contains(&value)
            .then_some(Sensitivity(value as i8))
    }

    /// The integer sent to Cochl.
    pub fn get(self) -> i8 {
        self.0
    }
}

impl fmt::Display for Sensitivity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A default sensitivity and per-tag sensitivities, as Cochl's custom attributes carry them.
///
/// `default` is `None` when not set (the model then uses 0); an empty configuration sends
/// no header at all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SensitivityConfig {
    /// `default_sensitivity`, applied to every tag without its own value.
    #[serde(
        rename = "default_sensitivity",
        skip_serializing_if = "Option::is_none"
    )]
    pub default: Option<Sensitivity>,
    /// `tags_sensitivity`, by Cochl tag name (tag names are open-ended strings).
    #[serde(
        rename = "tags_sensitivity",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub tags: BTreeMap<String, Sensitivity>,
}

impl SensitivityConfig {
    /// Parses the JSON form used by both the stack setting and the per-file metadata.
    ///
    /// Blank text means "no configuration". Unknown fields, non-integers and values out of
    /// range are refused with an error naming the offending part, so a typo never silently
    /// turns into the default.
    pub fn parse(text: &str) -> Result<Self, SensitivityError> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        let value: Value =
            serde_json::from_str(text).map_err(|e| SensitivityError::Malformed(e.to_string()))?;
        let Value::Object(fields) = value else {
            return Err(SensitivityError::Malformed(
                "expected a JSON object".to_string(),
            ));
        };
        let mut config = Self::default();
        for (field, value) in fields {
            match field.as_str() {
                "default_sensitivity" => {
                    if !value.is_null() {
                        config.default = Some(sensitivity_value("default".to_string(), &value)?);
                    }
                }
                "tags_sensitivity" => {
                    config.tags = parse_tags(&value)?;
                }
                _ => return Err(SensitivityError::UnknownField(field)),
            }
        }
        config.validate_len()?;
        Ok(config)
    }

    /// True when nothing is set, so no custom attributes header is sent.
    pub fn is_empty(&self) -> bool {
        self.default.is_none() && self.tags.is_empty()
    }

    /// Overlays a per-file override on the stack default: the override's default wins if
    /// set, and its per-tag values win tag by tag; other stack tags stay.
    pub fn merged_with(&self, file: &SensitivityConfig) -> Result<Self, SensitivityError> {
        let mut merged = self.clone();
        if file.default.is_some() {
            merged.default = file.default;
        }
        for (tag, value) in &file.tags {
            merged.tags.insert(tag.clone(), *value);
        }
        merged.validate_len()?;
        Ok(merged)
    }

    /// The exact `X-Amzn-SageMaker-Custom-Attributes` value, or `None` when empty.
    ///
    /// Compact JSON, `default_sensitivity` first, tags in name order, so the same
    /// configuration always gives the same header.
    pub fn to_custom_attributes(&self) -> Result<Option<String>, SensitivityError> {
        if self.is_empty() {
            return Ok(None);
        }
        let header = self.render();
        if header.len() > MAX_CUSTOM_ATTRIBUTES_LEN {
            return Err(SensitivityError::TooLong { len: header.len() });
        }
        Ok(Some(header))
    }

    fn render(&self) -> String {
        // Serialising a struct of integers and ASCII-checked strings cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    fn validate_len(&self) -> Result<(), SensitivityError> {
        self.to_custom_attributes().map(|_| ())
    }
}

fn parse_tags(value: &Value) -> Result<BTreeMap<String, Sensitivity>, SensitivityError> {
    match value {
        Value::Null => Ok(BTreeMap::new()),
        Value::Object(tags) => tags
            .iter()
            .map(|(name, value)| {
                check_tag_name(name)?;
                let sensitivity = sensitivity_value(format!("tag \"{name}\""), value)?;
                Ok((name.clone(), sensitivity))
            })
            .collect(),
        other => Err(SensitivityError::Malformed(format!(
            "tags_sensitivity must be an object of tag name to integer, got {other}"
        ))),
    }
}

fn check_tag_name(name: &str) -> Result<(), SensitivityError> {
    let printable = name.bytes().all(|b| (0x20..0x7f).contains(&b));
    if name.is_empty() || name.len() > 128 || !printable {
        return Err(SensitivityError::BadTagName(name.to_string()));
    }
    Ok(())
}

fn sensitivity_value(target: String, value: &Value) -> Result<Sensitivity, SensitivityError> {
    let Some(integer) = value.as_i64() else {
        // Accept 1.0 as 1 (JSON writers may emit floats), refuse 1.5 and non-numbers.
        if let Some(float) = value.as_f64() {
            if float.fract() == 0.0 && float.abs() < 1e15 {
                let integer = float as i64;
                return Sensitivity::new(integer).ok_or(SensitivityError::OutOfRange {
                    target,
                    value: integer,
                });
            }
        }
        return Err(SensitivityError::NotInteger {
            target,
            value: value.to_string(),
        });
    };
    Sensitivity::new(integer).ok_or(SensitivityError::OutOfRange {
        target,
        value: integer,
    })
}

impl<'de> Deserialize<'de> for SensitivityConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        SensitivityConfig::parse(&value.to_string()).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(v: i64) -> Sensitivity {
        Sensitivity::new(v).expect("in range")
    }

    #[test]
    fn parses_the_reference_example() {
        let config = SensitivityConfig::parse(
            r#"{"default_sensitivity": 1, "tags_sensitivity": {"Siren": 2, "Laughter": -2}}"#,
        )
        .expect("valid");
        assert_eq!(config.default, Some(s(1)));
        assert_eq!(config.tags.get("Siren"), Some(&s(2)));
        assert_eq!(config.tags.get("Laughter"), Some(&s(-2)));
        assert_eq!(
            config.to_custom_attributes().expect("fits").as_deref(),
            Some(r#"{"default_sensitivity":1,"tags_sensitivity":{"Laughter":-2,"Siren":2}}"#)
        );
    }

    #[test]
    fn empty_config_sends_no_header() {
        for text in [
            "",
            "  ",
            "{}",
            r#"{"tags_sensitivity": {}}"#,
            r#"{"default_sensitivity": null}"#,
        ] {
            let config = SensitivityConfig::parse(text).expect(text);
            assert!(config.is_empty(), "{text}");
            assert_eq!(config.to_custom_attributes(), Ok(None), "{text}");
        }
    }

    #[test]
    fn default_only_and_tags_only_render_exactly() {
        let default_only = SensitivityConfig::parse(r#"{"default_sensitivity": -2}"#).expect("ok");
        assert_eq!(
            default_only.to_custom_attributes().expect("ok").as_deref(),
            Some(r#"{"default_sensitivity":-2}"#)
        );
        let tags_only =
            SensitivityConfig::parse(r#"{"tags_sensitivity": {"Dog_bark": 0}}"#).expect("ok");
        assert_eq!(
            tags_only.to_custom_attributes().expect("ok").as_deref(),
            Some(r#"{"tags_sensitivity":{"Dog_bark":0}}"#)
        );
    }

    #[test]
    fn out_of_range_values_are_refused_with_the_target() {
        let err = SensitivityConfig::parse(r#"{"default_sensitivity": 3}"#).unwrap_err();
        assert_eq!(
            err,
            SensitivityError::OutOfRange {
                target: "default".into(),
                value: 3
            }
        );
        let err = SensitivityConfig::parse(r#"{"tags_sensitivity": {"Siren": -3}}"#).unwrap_err();
        assert!(err.to_string().contains("tag \"Siren\" is -3"), "{err}");
    }

    #[test]
    fn non_integers_are_refused() {
        for text in [
            r#"{"default_sensitivity": 1.5}"#,
            r#"{"default_sensitivity": "1"}"#,
            r#"{"default_sensitivity": true}"#,
            r#"{"tags_sensitivity": {"Siren": [1]}}"#,
        ] {
            let err = SensitivityConfig::parse(text).unwrap_err();
            assert!(
                matches!(err, SensitivityError::NotInteger { .. }),
                "{text}: {err}"
            );
        }
        let whole_float =
            SensitivityConfig::parse(r#"{"default_sensitivity": 2.0}"#).expect("2.0 is 2");
        assert_eq!(whole_float.default, Some(s(2)));
    }

    #[test]
    fn malformed_and_unknown_fields_are_refused() {
        for text in ["{", "[1]", r#"{"tags_sensitivity": 1}"#] {
            assert!(
                matches!(
                    SensitivityConfig::parse(text),
                    Err(SensitivityError::Malformed(_))
                ),
                "{text}"
            );
        }
        assert_eq!(
            SensitivityConfig::parse(r#"{"default": 1}"#),
            Err(SensitivityError::UnknownField("default".into()))
        );
    }

    #[test]
    fn every_value_at_and_beyond_the_range_boundaries() {
        // [-2, 2]: the boundaries are accepted, one past them refused, for the default and
        // for a tag, as integers and as whole floats.
        for (value, accepted) in [
            (-3, false),
            (-2, true),
            (-1, true),
            (0, true),
            (1, true),
            (2, true),
            (3, false),
        ] {
            assert_eq!(Sensitivity::new(value).is_some(), accepted, "{value}");
            for text in [
                format!(r#"{{"default_sensitivity": {value}}}"#),
                format!(r#"{{"default_sensitivity": {value}.0}}"#),
            ] {
                let expected = if accepted {
                    Ok(Some(s(value)))
                } else {
                    Err(SensitivityError::OutOfRange {
                        target: "default".into(),
                        value,
                    })
                };
                assert_eq!(
                    SensitivityConfig::parse(&text).map(|c| c.default),
                    expected,
                    "{text}"
                );
            }
            let text = format!(r#"{{"tags_sensitivity": {{"Siren": {value}}}}}"#);
            let expected = if accepted {
                Ok(Some(s(value)))
            } else {
                Err(SensitivityError::OutOfRange {
                    target: "tag \"Siren\"".into(),
                    value,
                })
            };
            assert_eq!(
                SensitivityConfig::parse(&text).map(|c| c.tags.get("Siren").copied()),
                expected,
                "{text}"
            );
        }
        assert_eq!(Sensitivity::MIN.get(), -2);
        assert_eq!(Sensitivity::NEUTRAL.get(), 0);
        assert_eq!(Sensitivity::MAX.get(), 2);
        assert_eq!(s(-2).to_string(), "-2");
        // Integers that do not fit an i8 are refused as out of range, not wrapped.
        for value in [130, 254, 256, -254, i64::MAX, i64::MIN] {
            assert_eq!(Sensitivity::new(value), None, "{value}");
        }
        // Whole floats beyond 1e15 are not integers JSON writers meant; fractions never are.
        for text in ["1e15", "-1e15", "2.5", "-0.5"] {
            assert!(
                matches!(
                    SensitivityConfig::parse(&format!(r#"{{"default_sensitivity": {text}}}"#)),
                    Err(SensitivityError::NotInteger { value, .. }) if value == text || value.parse::<f64>().ok() == text.parse::<f64>().ok()
                ),
                "{text}"
            );
        }
        assert_eq!(
            SensitivityConfig::parse(r#"{"default_sensitivity": 1e14}"#),
            Err(SensitivityError::OutOfRange {
                target: "default".into(),
                value: 100_000_000_000_000
            })
        );
    }

    #[test]
    fn tag_names_at_and_beyond_their_limits() {
        let config_with = |name: &str| {
            SensitivityConfig::parse(&format!(r#"{{"tags_sensitivity": {{"{name}": 1}}}}"#))
        };
        // 1 to 128 characters: both ends accepted, 0 and 129 refused.
        for len in [1, 2, 127, 128] {
            let name = "N".repeat(len);
            assert_eq!(
                config_with(&name).map(|c| c.tags.into_keys().collect::<Vec<_>>()),
                Ok(vec![name.clone()]),
                "{len}"
            );
        }
        for len in [0, 129, 200] {
            let name = "N".repeat(len);
            assert_eq!(
                config_with(&name),
                Err(SensitivityError::BadTagName(name)),
                "{len}"
            );
        }
        // Printable ASCII is 0x20 (space) to 0x7e (~); 0x1f and 0x7f are control characters.
        for (name, accepted) in [
            (" ", true),
            ("~", true),
            ("a b~!", true),
            ("\u{1f}", false),
            ("\u{7f}", false),
            ("é", false),
        ] {
            let text = serde_json::json!({ "tags_sensitivity": { name: 1 } }).to_string();
            let parsed = SensitivityConfig::parse(&text);
            if accepted {
                assert_eq!(parsed.map(|c| c.tags[name]), Ok(s(1)), "{name:?}");
            } else {
                assert_eq!(
                    parsed,
                    Err(SensitivityError::BadTagName(name.into())),
                    "{name:?}"
                );
            }
        }
    }

    #[test]
    fn serde_reads_a_configuration_with_the_same_rules_as_parse() {
        // A document that embeds a configuration (a backfill request, the stack's settings)
        // gets exactly what `parse` gives, refusals included.
        let read = |json: &str| serde_json::from_str::<SensitivityConfig>(json);
        let config = read(r#"{"default_sensitivity": 1, "tags_sensitivity": {"Siren": -2}}"#)
            .expect("valid");
        assert_eq!(config.default, Some(s(1)));
        assert_eq!(config.tags.get("Siren"), Some(&s(-2)));
        assert_eq!(read("{}").expect("empty"), SensitivityConfig::default());
        let refused = read(r#"{"default_sensitivity": 3}"#).expect_err("out of range");
        assert!(
            refused.to_string().contains("sensitivity for default is 3"),
            "{refused}"
        );
        assert!(read(r#"{"default": 1}"#).is_err());
    }

    #[test]
    fn bad_tag_names_are_refused() {
        for text in [
            r#"{"tags_sensitivity": {"": 1}}"#,
            r#"{"tags_sensitivity": {"Sirène": 1}}"#,
            r#"{"tags_sensitivity": {"a\nb": 1}}"#,
        ] {
            assert!(
                matches!(
                    SensitivityConfig::parse(text),
                    Err(SensitivityError::BadTagName(_))
                ),
                "{text}"
            );
        }
    }

    #[test]
    fn per_file_override_wins_per_tag() {
        let stack = SensitivityConfig::parse(
            r#"{"default_sensitivity": 1, "tags_sensitivity": {"Siren": 2, "Speech": -1}}"#,
        )
        .expect("ok");
        let file = SensitivityConfig::parse(r#"{"tags_sensitivity": {"Siren": -2, "Knock": 1}}"#)
            .expect("ok");
        let merged = stack.merged_with(&file).expect("fits");
        assert_eq!(merged.default, Some(s(1)), "stack default kept");
        assert_eq!(merged.tags["Siren"], s(-2), "file wins");
        assert_eq!(merged.tags["Speech"], s(-1), "stack tag kept");
        assert_eq!(merged.tags["Knock"], s(1), "file tag added");

        let file_default = SensitivityConfig::parse(r#"{"default_sensitivity": -1}"#).expect("ok");
        assert_eq!(
            stack.merged_with(&file_default).expect("ok").default,
            Some(s(-1))
        );
    }

    #[test]
    fn oversized_header_is_refused_at_parse_and_merge() {
        let many: Vec<String> = (0..60)
            .map(|i| format!("\"Tag_number_{i:03}\": 1"))
            .collect();
        let text = format!("{{\"tags_sensitivity\": {{{}}}}}", many.join(","));
        let err = SensitivityConfig::parse(&text).unwrap_err();
        assert!(
            matches!(err, SensitivityError::TooLong { len } if len > 1024),
            "{err}"
        );

        let half = |range: std::ops::Range<usize>| {
            let tags: Vec<String> = range.map(|i| format!("\"Tag_number_{i:03}\": 1")).collect();
            SensitivityConfig::parse(&format!("{{\"tags_sensitivity\": {{{}}}}}", tags.join(",")))
                .expect("each half fits")
        };
        let err = half(0..30).merged_with(&half(30..60)).unwrap_err();
        assert!(matches!(err, SensitivityError::TooLong { .. }));
    }

    #[test]
    fn exactly_1024_characters_is_accepted() {
        // {"tags_sensitivity":{"<name>":1}} is 27 characters plus the name.
        let name = "A".repeat(MAX_CUSTOM_ATTRIBUTES_LEN - 27);
        let mut config = SensitivityConfig::default();
        config.tags.insert(name.clone(), s(1));
        // Names over 128 characters are refused when parsed, but the length rule is what
        // guards the header, so check it on a hand-built configuration.
        let header = config.to_custom_attributes().expect("fits").expect("some");
        assert_eq!(header.len(), 1024);
        config.tags.insert(format!("{name}B"), s(1));
        assert!(config.to_custom_attributes().is_err());
    }

    fn config_strategy() -> impl Strategy<Value = SensitivityConfig> {
        (
            proptest::option::of(-2i64..=2),
            proptest::collection::btree_map("[A-Z][a-z_]{0,15}", -2i64..=2, 0..8),
        )
            .prop_map(|(default, tags)| SensitivityConfig {
                default: default.map(s),
                tags: tags.into_iter().map(|(k, v)| (k, s(v))).collect(),
            })
    }

    proptest! {
        #[test]
        fn header_round_trips(config in config_strategy()) {
            match config.to_custom_attributes().expect("small configs fit") {
                None => prop_assert!(config.is_empty()),
                Some(header) => {
                    prop_assert!(header.len() <= MAX_CUSTOM_ATTRIBUTES_LEN);
                    prop_assert!(header.bytes().all(|b| (0x20..0x7f).contains(&b)));
                    prop_assert_eq!(SensitivityConfig::parse(&header).expect("own output parses"), config);
                }
            }
        }

        #[test]
        fn merge_prefers_the_file_value(stack in config_strategy(), file in config_strategy()) {
            let merged = stack.merged_with(&file).expect("small configs fit");
            prop_assert_eq!(merged.default, file.default.or(stack.default));
            for (tag, value) in &merged.tags {
                let expected = file.tags.get(tag).or(stack.tags.get(tag)).copied();
                prop_assert_eq!(Some(*value), expected);
            }
            prop_assert_eq!(merged.tags.len(), stack.tags.keys().chain(file.tags.keys()).collect::<std::collections::BTreeSet<_>>().len());
        }

        #[test]
        fn integers_outside_range_are_always_refused(
            v in prop_oneof![Just(-3), Just(3), Just(i64::MIN), Just(i64::MAX), i64::MIN..=-3, 3..=i64::MAX]
        ) {
            let text = format!("{{\"default_sensitivity\": {v}}}");
            prop_assert_eq!(
                SensitivityConfig::parse(&text),
                Err(SensitivityError::OutOfRange { target: "default".into(), value: v })
            );
            let text = format!("{{\"tags_sensitivity\": {{\"Siren\": {v}}}}}");
            prop_assert_eq!(
                SensitivityConfig::parse(&text),
                Err(SensitivityError::OutOfRange { target: "tag \"Siren\"".into(), value: v })
            );
        }

        #[test]
        fn parse_of_any_text_accepts_only_what_it_can_send(text in any::<String>()) {
            // Blank text is no configuration; text that is not a JSON object is refused as
            // malformed; anything accepted renders within SageMaker's limit.
            let object = serde_json::from_str::<Value>(&text).is_ok_and(|v| v.is_object());
            match SensitivityConfig::parse(&text) {
                Ok(config) => {
                    prop_assert!(text.trim().is_empty() || object, "accepted {:?}", text);
                    prop_assert_eq!(config.is_empty(), config.to_custom_attributes() == Ok(None));
                    let fits = config
                        .to_custom_attributes()
                        .is_ok_and(|h| h.is_none_or(|h| h.len() <= MAX_CUSTOM_ATTRIBUTES_LEN));
                    prop_assert!(fits);
                    if text.trim().is_empty() {
                        prop_assert!(config.is_empty());
                    }
                }
                Err(SensitivityError::Malformed(_)) => prop_assert!(!object),
                Err(other) => prop_assert!(object, "{:?} refused as {:?}", text, other),
            }
        }

        #[test]
        fn accepted_configs_always_fit(text in r#"\{"default_sensitivity": ?-?[0-3], "tags_sensitivity": \{("[A-Za-z_]{1,40}": ?-?[0-3], ){0,40}"Z": 0\}\}"#) {
            if let Ok(config) = SensitivityConfig::parse(&text) {
                let header = config.to_custom_attributes().expect("accepted config renders");
                prop_assert!(header.is_some_and(|h| h.len() <= MAX_CUSTOM_ATTRIBUTES_LEN));
            }
        }
    }
}
