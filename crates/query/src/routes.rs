//! Which route a path names, before any parameter is looked at.
//!
//! Paths come from `request.uri().path()`, still percent-encoded: a Function URL and the
//! HTTP API's `$default` stage give `/files`; a named API Gateway stage gives
//! `/<stage>/files`, and the stage prefix is removed first ([`strip_stage`]).

/// A route of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /files?uri=...`
    File,
    /// `GET /tags/{name}/files`, with the name's path segment as it arrived (encoded).
    TagFiles {
        /// The `{name}` segment, still percent-encoded.
        raw_name: String,
    },
    /// `GET /jobs?status=...`
    Jobs,
    /// `GET /files/timeline.svg?uri=...`
    Timeline,
}

impl Route {
    /// The query parameters the route accepts; any other is refused.
    pub fn parameters(&self) -> &'static [&'static str] {
        match self {
            Route::File | Route::Timeline => &["uri"],
            Route::TagFiles { .. } => &["since", "until", "min_probability", "limit", "cursor"],
            Route::Jobs => &["status", "limit", "cursor"],
        }
    }

    /// The route's path template, for messages and logs.
    pub fn template(&self) -> &'static str {
        match self {
            Route::File => "/files",
            Route::TagFiles { .. } => "/tags/{name}/files",
            Route::Jobs => "/jobs",
            Route::Timeline => "/files/timeline.svg",
        }
    }
}

/// The route a path names, or `None` (a 404).
pub fn route(path: &str) -> Option<Route> {
    let segments: Vec<&str> = path.split('/').collect();
    match segments.as_slice() {
        ["", "files"] => Some(Route::File),
        ["", "jobs"] => Some(Route::Jobs),
        ["", "files", "timeline.svg"] => Some(Route::Timeline),
        ["", "tags", name, "files"] => Some(Route::TagFiles {
            raw_name: (*name).to_string(),
        }),
        _ => None,
    }
}

/// Removes an API Gateway stage prefix (`/<stage>`) from a path. The `$default` stage and
/// requests without a stage (Function URLs, tests) have none.
pub fn strip_stage<'a>(path: &'a str, stage: Option<&str>) -> &'a str {
    match stage {
        Some(stage) if !stage.is_empty() && stage != "$default" => path
            .strip_prefix('/')
            .and_then(|rest| rest.strip_prefix(stage))
            .filter(|rest| rest.starts_with('/'))
            .unwrap_or(path),
        _ => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_exact_path() {
        assert_eq!(route("/files"), Some(Route::File));
        assert_eq!(route("/jobs"), Some(Route::Jobs));
        assert_eq!(route("/files/timeline.svg"), Some(Route::Timeline));
        assert_eq!(route("/files/timeline.png"), None);
        assert_eq!(
            route("/tags/Baby%20cry/files"),
            Some(Route::TagFiles {
                raw_name: "Baby%20cry".into()
            })
        );
        assert_eq!(
            route("/tags//files"),
            Some(Route::TagFiles {
                raw_name: String::new()
            })
        );
        for unknown in [
            "",
            "/",
            "/files/",
            "/file",
            "/jobs/x",
            "/tags/Siren",
            "/tags/a/b/files",
        ] {
            assert_eq!(route(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn strips_named_stages_only() {
        assert_eq!(strip_stage("/prod/files", Some("prod")), "/files");
        assert_eq!(strip_stage("/files", Some("prod")), "/files");
        assert_eq!(
            strip_stage("/production/files", Some("prod")),
            "/production/files"
        );
        assert_eq!(strip_stage("/files", Some("$default")), "/files");
        assert_eq!(strip_stage("/files", None), "/files");
    }
}
