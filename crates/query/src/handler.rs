//! The query function's handler: route → parameters → read → document.
//!
//! It never fails towards the Lambda runtime: every outcome, including a table failure, is an
//! HTTP response with a JSON body (see [`crate::errors`]).

use std::convert::Infallible;

use cochl_aws::dynamo::read::ReadError;
use cochl_aws::dynamo::DynamoStore;
use lambda_http::http::{Method, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};

use crate::documents::{
    json_response, FileDocument, JobDocument, JobsDocument, TagFileDocument, TagFilesDocument,
};
use crate::errors::ApiError;
use crate::params::{self, Params};
use crate::routes::{self, Route};

/// Answers one HTTP request from the job table.
pub async fn handle(store: &DynamoStore, request: Request) -> Result<Response<Body>, Infallible> {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let response = match respond(store, &request).await {
        Ok(response) => response,
        Err(error) => {
            match &error {
                ApiError::Internal(cause) => {
                    tracing::error!(%method, %path, error = %cause, "request failed")
                }
                other => tracing::info!(%method, %path, error = %other, "request refused"),
            }
            error.into_response()
        }
    };
    tracing::info!(%method, %path, status = response.status().as_u16(), "request answered");
    Ok(response)
}

async fn respond(store: &DynamoStore, request: &Request) -> Result<Response<Body>, ApiError> {
    let stage = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.stage.as_deref(),
        _ => None,
    };
    let path = routes::strip_stage(request.uri().path(), stage);
    let route =
        routes::route(path).ok_or_else(|| ApiError::NotFound(format!("no route for {path}")))?;
    if request.method() != Method::GET {
        return Err(ApiError::MethodNotAllowed {
            method: request.method().to_string(),
            path: route.template().to_string(),
        });
    }
    let params = Params::new(query_pairs(request)?, route.parameters())?;
    match route {
        Route::File => get_file(store, &params).await,
        Route::TagFiles { raw_name } => tag_files(store, &raw_name, &params).await,
        Route::Jobs => jobs(store, &params).await,
        Route::Timeline => timeline(store, &params).await,
    }
}

/// The query parameters of a request.
///
/// The raw query string (in the URI `lambda_http` builds from `rawQueryString`, or of a
/// hand-built request) is preferred: it is the only form that keeps repeated names and lets
/// a malformed escape be refused rather than replaced. Without one, the parameters
/// `lambda_http` extracted (`queryStringParameters`) are used.
fn query_pairs(request: &Request) -> Result<Vec<(String, String)>, ApiError> {
    if let Some(raw) = request.uri().query() {
        return params::parse_query(raw);
    }
    Ok(request
        .query_string_parameters_ref()
        .map(|map| {
            map.iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect()
        })
        .unwrap_or_default())
}

fn internal(error: impl std::error::Error) -> ApiError {
    ApiError::Internal(cochl_aws::error_chain(&error))
}

fn read_error(error: ReadError) -> ApiError {
    match error {
        ReadError::BadCursor(reason) => ApiError::parameter("cursor", reason),
        ReadError::Store(error) => internal(error),
    }
}

async fn get_file(store: &DynamoStore, params: &Params) -> Result<Response<Body>, ApiError> {
    let wanted = params::file_params(params)?;
    let view = store.get_file(&wanted.uri).await.map_err(internal)?;
    let view = view.ok_or_else(|| ApiError::NotFound(format!("no job for {}", wanted.uri)))?;
    Ok(json_response(StatusCode::OK, &FileDocument::from(&view)))
}

async fn timeline(store: &DynamoStore, params: &Params) -> Result<Response<Body>, ApiError> {
    let wanted = params::file_params(params)?;
    let view = store.get_file(&wanted.uri).await.map_err(internal)?;
    let view = view.ok_or_else(|| ApiError::NotFound(format!("no job for {}", wanted.uri)))?;
    let svg = crate::timeline::render(&wanted.uri.to_string(), view.job.length_sec, &view.tags);
    let mut response = Response::new(Body::Text(svg));
    response.headers_mut().insert(
        lambda_http::http::header::CONTENT_TYPE,
        lambda_http::http::HeaderValue::from_static("image/svg+xml"),
    );
    Ok(response)
}

async fn tag_files(
    store: &DynamoStore,
    raw_name: &str,
    params: &Params,
) -> Result<Response<Body>, ApiError> {
    let wanted = params::tag_files_params(raw_name, params)?;
    let (page, stats) = store
        .files_with_tag_counted(&wanted)
        .await
        .map_err(read_error)?;
    tracing::info!(
        tag = %wanted.name,
        hits = page.items.len(),
        queries = stats.queries,
        evaluated = stats.evaluated,
        job_checks = stats.job_checks,
        stale = stats.stale,
        "tag listing read"
    );
    let document = TagFilesDocument {
        tag: wanted.name,
        files: page.items.iter().map(TagFileDocument::from).collect(),
        next_cursor: page.next_cursor,
    };
    Ok(json_response(StatusCode::OK, &document))
}

async fn jobs(store: &DynamoStore, params: &Params) -> Result<Response<Body>, ApiError> {
    let wanted = params::jobs_params(params)?;
    let page = store
        .jobs_by_status(wanted.status, wanted.limit, wanted.cursor.as_deref())
        .await
        .map_err(read_error)?;
    let document = JobsDocument {
        status: wanted.status.as_str(),
        jobs: page.items.iter().map(JobDocument::from).collect(),
        next_cursor: page.next_cursor,
    };
    Ok(json_response(StatusCode::OK, &document))
}
