//! Query and path parameters: decoding, and validation into typed requests.
//!
//! Query strings are decoded as HTML forms and URLs do (`+` is a space, `%XX` a byte, the
//! bytes UTF-8), but strictly: a malformed escape or invalid UTF-8 is a 400 rather than a
//! silently replaced character, since an object key that decoded differently would be
//! another file. Every parameter problem is an [`ApiError::BadRequest`] naming the parameter.

use std::collections::BTreeMap;

use cochl_aws::dynamo::read::TagFilesParams;
use cochl_core::job::JobStatus;
use cochl_core::keys::{percent_decode, S3Uri};
use cochl_core::time::{format_millis, parse_millis};

use crate::errors::ApiError;

/// Page size when `limit` is absent.
pub const DEFAULT_LIMIT: usize = 25;
/// Largest `limit` accepted.
pub const MAX_LIMIT: usize = 100;
/// Longest tag name accepted.
pub const MAX_TAG_LEN: usize = 128;
/// Longest query string accepted (a cursor holds at most ~9 KB; a URI at most ~3.3 KB encoded).
pub const MAX_QUERY_LEN: usize = 32 * 1024;

/// Splits and decodes a raw query string into name/value pairs, in order. Empty pieces
/// (`a=1&&b=2`) are skipped; a name without `=` has the empty value.
pub fn parse_query(raw: &str) -> Result<Vec<(String, String)>, ApiError> {
    if raw.len() > MAX_QUERY_LEN {
        return Err(ApiError::BadRequest(format!(
            "query string longer than {MAX_QUERY_LEN} characters"
        )));
    }
    raw.split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
            let name = percent_decode(name, true).map_err(|e| {
                ApiError::BadRequest(format!("query parameter name {}: {e}", shown(name)))
            })?;
            let value = percent_decode(value, true).map_err(|e| ApiError::parameter(&name, e))?;
            Ok((name, value))
        })
        .collect()
}

/// A value quoted for a message, cut short so a huge parameter cannot flood the response.
fn shown(value: &str) -> String {
    const MAX: usize = 64;
    if value.chars().count() <= MAX {
        format!("{value:?}")
    } else {
        let head: String = value.chars().take(MAX).collect();
        format!("{head:?}...")
    }
}

/// The query parameters of one request, checked against the route's list: each at most once,
/// none unknown.
#[derive(Debug, Clone, Default)]
pub struct Params {
    values: BTreeMap<String, String>,
}

impl Params {
    /// Checks the pairs against `allowed`.
    pub fn new(pairs: Vec<(String, String)>, allowed: &[&str]) -> Result<Self, ApiError> {
        let mut values = BTreeMap::new();
        for (name, value) in pairs {
            if !allowed.contains(&name.as_str()) {
                let expected = if allowed.is_empty() {
                    "none".to_string()
                } else {
                    allowed.join(", ")
                };
                return Err(ApiError::BadRequest(format!(
                    "unknown parameter {} (this route accepts: {expected})",
                    shown(&name)
                )));
            }
            if values.contains_key(&name) {
                return Err(ApiError::parameter(&name, "is repeated; give it once"));
            }
            values.insert(name, value);
        }
        Ok(Params { values })
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    fn required(&self, name: &str, expected: &str) -> Result<&str, ApiError> {
        self.get(name)
            .ok_or_else(|| ApiError::parameter(name, format!("is required ({expected})")))
    }

    fn limit(&self) -> Result<usize, ApiError> {
        let Some(text) = self.get("limit") else {
            return Ok(DEFAULT_LIMIT);
        };
        match text.parse::<usize>() {
            Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
            _ => Err(ApiError::parameter(
                "limit",
                format!(
                    "must be an integer from 1 to {MAX_LIMIT}, got {}",
                    shown(text)
                ),
            )),
        }
    }

    fn cursor(&self) -> Result<Option<String>, ApiError> {
        match self.get("cursor") {
            Some("") => Err(ApiError::parameter("cursor", "is empty")),
            other => Ok(other.map(str::to_string)),
        }
    }

    /// An RFC 3339 timestamp, re-formatted as the table stores them.
    fn timestamp(&self, name: &str) -> Result<Option<(i64, String)>, ApiError> {
        self.get(name)
            .map(|text| {
                parse_millis(text)
                    .map(|ms| (ms, format_millis(ms)))
                    .map_err(|e| ApiError::parameter(name, e))
            })
            .transpose()
    }
}

/// `GET /files`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileParams {
    /// The file asked about.
    pub uri: S3Uri,
}

/// `GET /jobs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobsParams {
    /// The status listed.
    pub status: JobStatus,
    /// Page size.
    pub limit: usize,
    /// Where the previous page stopped.
    pub cursor: Option<String>,
}

/// Validates `GET /files` parameters.
pub fn file_params(params: &Params) -> Result<FileParams, ApiError> {
    let text = params.required("uri", "s3://bucket/key, percent-encoded")?;
    let uri = S3Uri::parse(text).map_err(|e| ApiError::parameter("uri", e))?;
    Ok(FileParams { uri })
}

/// Decodes and validates the `{name}` path segment: 1 to [`MAX_TAG_LEN`] printable ASCII
/// characters once percent-decoded.
pub fn tag_name(raw: &str) -> Result<String, ApiError> {
    let problem = || {
        ApiError::BadRequest(format!(
            "path parameter name: must be 1 to {MAX_TAG_LEN} printable ASCII characters"
        ))
    };
    let name = percent_decode(raw, false).map_err(|_| problem())?;
    let printable = name.bytes().all(|b| (0x20..=0x7e).contains(&b));
    if name.is_empty() || name.len() > MAX_TAG_LEN || !printable {
        return Err(problem());
    }
    Ok(name)
}

/// Validates `GET /tags/{name}/files` parameters into the store's listing parameters.
pub fn tag_files_params(raw_name: &str, params: &Params) -> Result<TagFilesParams, ApiError> {
    let name = tag_name(raw_name)?;
    let since = params.timestamp("since")?;
    let until = params.timestamp("until")?;
    if let (Some((since_ms, since_text)), Some((until_ms, until_text))) = (&since, &until) {
        if since_ms > until_ms {
            return Err(ApiError::BadRequest(format!(
                "parameters since and until: since ({since_text}) is later than until ({until_text})"
            )));
        }
    }
    let min_probability = params
        .get("min_probability")
        .map(|text| match text.parse::<f64>() {
            Ok(value) if value.is_finite() && (0.0..=1.0).contains(&value) => Ok(value),
            _ => Err(ApiError::parameter(
                "min_probability",
                format!("must be a number from 0 to 1, got {}", shown(text)),
            )),
        })
        .transpose()?;
    Ok(TagFilesParams {
        name,
        since: since.map(|(_, text)| text),
        until: until.map(|(_, text)| text),
        min_probability,
        limit: params.limit()?,
        cursor: params.cursor()?,
    })
}

/// Validates `GET /jobs` parameters.
pub fn jobs_params(params: &Params) -> Result<JobsParams, ApiError> {
    let expected = "one of SUBMITTED, COMPLETED, FAILED, REJECTED";
    let text = params.required("status", expected)?;
    // A deleted upload's tombstone is not a job anyone can list: the file no longer exists.
    let status = text
        .parse::<JobStatus>()
        .ok()
        .filter(|status| *status != JobStatus::Deleted)
        .ok_or_else(|| {
            ApiError::parameter("status", format!("must be {expected}, got {}", shown(text)))
        })?;
    Ok(JobsParams {
        status,
        limit: params.limit()?,
        cursor: params.cursor()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn params(query: &str, allowed: &[&str]) -> Result<Params, ApiError> {
        Params::new(parse_query(query)?, allowed)
    }

    // The decoding itself is tested with `cochl_core::keys::percent_decode`.
    #[test]
    fn decodes_like_a_form() {
        assert_eq!(
            parse_query("a=1&&b&c=%20").expect("valid"),
            vec![
                ("a".to_string(), "1".to_string()),
                ("b".to_string(), String::new()),
                ("c".to_string(), " ".to_string())
            ]
        );
        let err = parse_query("uri=%zz").expect_err("malformed escape");
        assert!(err.to_string().contains("uri"), "{err}");
    }

    #[test]
    fn refuses_unknown_and_repeated_parameters() {
        let err = params("uri=x&foo=1", &["uri"]).expect_err("unknown");
        assert!(err.to_string().contains("foo"), "{err}");
        let err = params("uri=x&uri=y", &["uri"]).expect_err("repeated");
        assert!(err.to_string().contains("uri") && err.to_string().contains("repeated"));
    }

    #[test]
    fn validates_each_tag_listing_parameter() {
        let allowed = ["since", "until", "min_probability", "limit", "cursor"];
        let ok = tag_files_params(
            "Siren",
            &params(
                "since=2026-11-24T01:00:00%2B01:00&until=2026-11-24&min_probability=0.5&limit=100",
                &allowed,
            )
            .expect("known"),
        )
        .expect("valid");
        assert_eq!(ok.since.as_deref(), Some("2026-11-24T00:00:00.000Z"));
        assert_eq!(ok.until.as_deref(), Some("2026-11-24T00:00:00.000Z"));
        assert_eq!(ok.min_probability, Some(0.5));
        assert_eq!(ok.limit, 100);
        for (query, parameter) in [
            ("since=yesterday", "since"),
            ("until=2026-02-30T00:00:00Z", "until"),
            ("since=2026-01-02&until=2026-01-01", "since and until"),
            ("min_probability=1.01", "min_probability"),
            ("min_probability=-0.1", "min_probability"),
            ("min_probability=NaN", "min_probability"),
            ("min_probability=", "min_probability"),
            ("limit=0", "limit"),
            ("limit=101", "limit"),
            ("limit=2.5", "limit"),
            ("limit=", "limit"),
            ("cursor=", "cursor"),
        ] {
            let err = tag_files_params("Siren", &params(query, &allowed).expect("known"))
                .expect_err(query);
            assert!(err.to_string().contains(parameter), "{query}: {err}");
        }
        for bad_name in ["", "%", "%C3%BC", "%0A", &"a".repeat(129)] {
            assert!(
                tag_files_params(bad_name, &Params::default()).is_err(),
                "{bad_name}"
            );
        }
        assert_eq!(
            tag_files_params("Baby%20cry%2Fx", &Params::default())
                .expect("valid")
                .name,
            "Baby cry/x"
        );
    }

    #[test]
    fn status_in_any_case_and_required() {
        let allowed = ["status", "limit", "cursor"];
        let jobs = jobs_params(&params("status=failed", &allowed).expect("known")).expect("valid");
        assert_eq!(jobs.status, JobStatus::Failed);
        assert_eq!(jobs.limit, DEFAULT_LIMIT);
        assert!(jobs_params(&Params::default())
            .expect_err("required")
            .to_string()
            .contains("status"));
        assert!(jobs_params(&params("status=DONE", &allowed).expect("known")).is_err());
        assert!(
            jobs_params(&params("status=deleted", &allowed).expect("known")).is_err(),
            "tombstones are not listed"
        );
    }

    proptest! {
        /// Without escapes, a query string splits as a plain model says: on `&`, empty pieces
        /// dropped, each at its first `=` (none: an empty value), `+` read as a space.
        #[test]
        fn text_without_escapes_splits_as_a_plain_model_does(text in "[a-z0-9=&+ .~-]{0,80}") {
            let expected: Vec<(String, String)> = text
                .split('&')
                .filter(|piece| !piece.is_empty())
                .map(|piece| {
                    let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
                    (name.replace('+', " "), value.replace('+', " "))
                })
                .collect();
            prop_assert_eq!(parse_query(&text), Ok(expected));
        }

        /// Any text is either split into at most one pair per `&`-separated piece, or refused
        /// as a bad request (never another kind of error): a malformed escape is the client's.
        #[test]
        fn arbitrary_text_is_split_or_refused_as_a_bad_request(text in any::<String>()) {
            match parse_query(&text) {
                Ok(pairs) => prop_assert!(pairs.len() <= text.split('&').count()),
                Err(error) => prop_assert!(matches!(error, ApiError::BadRequest(_)), "{error:?}"),
            }
        }
    }
}
