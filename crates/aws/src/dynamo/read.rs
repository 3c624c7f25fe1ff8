//! The reads behind the query API: one file with its detections, files with a tag (newest
//! first, in a time range, above a probability), and jobs by status.
//!
//! Listings page with opaque cursors ([`super::cursor`]). Every call makes a bounded number of
//! requests: DynamoDB applies `Limit` before a `FilterExpression`, so a listing that filters
//! may need several queries to fill a page; it stops after [`MAX_QUERY_REQUESTS`] and hands
//! back a cursor for where it stopped, so a page may be short (even empty) while more follow.
//! Clients page until `next_cursor` is absent.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::time::Duration;

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use cochl_core::detections::TagDetection;
use cochl_core::job::JobStatus;
use cochl_core::keys::S3Uri;
use cochl_core::time::{format_millis, parse_millis};

use super::cursor::{self, CursorKey};
use super::schema::{
    self, Item, ItemReader, GSI1_PK, GSI1_SK, GSI2_PK, GSI2_SK, JOB_SK, PK, SK, STATUS_INDEX,
    TAG_INDEX, TAG_SK_PREFIX,
};
use super::{DynamoStore, StoreError};
use crate::records::{JobRecord, Page, TagRecord};
use crate::retry::Backoff;

/// Query requests one listing call may make before it returns what it has and a cursor.
pub const MAX_QUERY_REQUESTS: u32 = 10;

/// Items a filtered listing asks DynamoDB to evaluate per query (at least; more when the page
/// needs more). Larger means fewer round trips over filtered-out items.
pub const FILTERED_QUERY_LIMIT: usize = 100;

/// Largest page a listing returns; larger requests are clamped.
pub const MAX_PAGE_SIZE: usize = 1000;

/// Query pages read for one file's items before giving up (each up to 1 MB).
pub const MAX_FILE_PAGES: u32 = 64;

/// BatchGetItem's limit on keys per request.
const BATCH_GET_LIMIT: usize = 100;

/// Upper end of an `until` bound on an index sort key `<timestamp>#<file hash>`: `$` is the
/// character after `#`, so every key stamped exactly `until` sorts below `until$`, and every
/// later timestamp differs from `until` within its fixed 24 characters, so sorts above.
const UNTIL_SENTINEL: char = '$';

/// What one file holds: its job and the detections of its current analysis.
#[derive(Debug, Clone, PartialEq)]
pub struct FileView {
    /// The file's job: its status, current analysis and, for a failure or rejection, why.
    pub job: JobRecord,
    /// Detections whose inference is the job's current one, parts merged in order, sorted by
    /// tag name. Tag items left by an older analysis are not included.
    pub tags: Vec<TagDetection>,
}

/// One file in the "files with tag X" listing.
#[derive(Debug, Clone, PartialEq)]
pub struct TagHit {
    /// The file whose current analysis found the tag.
    pub file: S3Uri,
    /// The analysis that found the tag.
    pub inference_id: String,
    /// When that analysis completed (the listing's order).
    pub completed_at: String,
    /// Highest probability of the tag in the file.
    pub max_probability: f64,
    /// Seconds covered by windows with the tag.
    pub detected_seconds: f64,
    /// Windows with the tag.
    pub windows: u32,
}

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The cursor was not one this listing handed out (edited, truncated, another listing's,
    /// or outside the requested time range). The client's mistake.
    #[error("bad cursor: {0}")]
    BadCursor(String),
    /// The table could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a listing call cost, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListingStats {
    /// Query requests made (at most [`MAX_QUERY_REQUESTS`]).
    pub queries: u32,
    /// Index items DynamoDB evaluated (before its filter).
    pub evaluated: usize,
    /// BatchGetItem requests made to check hits against their jobs.
    pub job_checks: u32,
    /// Index entries skipped because their file's current analysis is another one.
    pub stale: usize,
}

/// What to list in [`DynamoStore::files_with_tag_counted`]; the query API's
/// `GET /tags/{name}/files` builds it from the request.
#[derive(Debug, Clone, PartialEq)]
pub struct TagFilesParams {
    /// The tag, as Cochl names it (already decoded from the path).
    pub name: String,
    /// Earliest completion time, inclusive, as the table stores times.
    pub since: Option<String>,
    /// Latest completion time, inclusive, as the table stores times.
    pub until: Option<String>,
    /// Lowest maximum probability listed; filtering happens in DynamoDB, after `Limit`.
    pub min_probability: Option<f64>,
    /// Page size (clamped to 1..=[`MAX_PAGE_SIZE`]).
    pub limit: usize,
    /// The `next_cursor` of the previous page, to continue where it stopped.
    pub cursor: Option<String>,
}

/// One listing over a secondary index: what it reads and how its pages and cursors are cut.
struct Listing {
    /// Binds cursors to this listing (`tag:<name>`, `status:<status>`), so a cursor handed
    /// out by one listing is refused by every other.
    scope: String,
    /// The secondary index read (`by-tag` or `by-status`).
    index: &'static str,
    /// The index's partition key attribute and the partition listed.
    index_pk: (&'static str, String),
    /// The index's sort key attribute (the listing's order).
    index_sk: &'static str,
    /// Page size, already clamped.
    limit: usize,
    /// Items each query asks DynamoDB to evaluate at least: a filtered listing asks for more
    /// than the page needs, since `Limit` applies before the filter.
    min_query_limit: usize,
}

impl Listing {
    /// The attributes of a start key on this index, as cursors store them.
    fn key_names(&self) -> [&'static str; 4] {
        [PK, SK, self.index_pk.0, self.index_sk]
    }

    /// The start key a client's cursor points at, once checked to belong to this listing
    /// (`table_sk` recognises the table sort keys the index holds, `range` the requested
    /// time range); `None` without a cursor.
    fn resume(
        &self,
        cursor: Option<&str>,
        table_sk: impl Fn(&str) -> bool,
        range: &SortRange,
    ) -> Result<Option<Item>, ReadError> {
        let Some(text) = cursor else {
            return Ok(None);
        };
        let key = cursor::decode(&self.scope, text).map_err(|e| bad_cursor(e.to_string()))?;
        let index_pk = (self.index_pk.0, self.index_pk.1.as_str());
        check_key(&key, index_pk, self.index_sk, table_sk, range)?;
        Ok(Some(start_key(key)))
    }
}

/// One query response's items as a listing admits them (see [`DynamoStore::paginate`]).
struct Admitted<T> {
    /// One entry per item, in order: `Ok(Some(_))` is listed, `Ok(None)` is a stale index
    /// entry to skip, and an error is reported only if the page reaches that item (as
    /// reading the items one by one would).
    entries: Vec<Result<Option<T>, StoreError>>,
    /// BatchGetItem requests made to decide.
    job_checks: u32,
}

/// Bounds of a listing on the `by-tag` index sort key.
#[derive(Debug, Clone)]
struct SortRange {
    low: Option<String>,
    high: Option<String>,
}

impl SortRange {
    fn new(since: Option<&str>, until: Option<&str>) -> Self {
        SortRange {
            low: since.map(str::to_string),
            high: until.map(|u| format!("{u}{UNTIL_SENTINEL}")),
        }
    }

    fn is_empty(&self) -> bool {
        matches!((&self.low, &self.high), (Some(low), Some(high)) if low > high)
    }

    fn contains(&self, sort_key: &str) -> bool {
        self.low.as_deref().is_none_or(|low| sort_key >= low)
            && self.high.as_deref().is_none_or(|high| sort_key <= high)
    }
}

fn service(operation: &'static str, message: impl Into<String>) -> StoreError {
    StoreError::Service {
        operation,
        message: message.into(),
    }
}

fn bad_cursor(reason: impl Into<String>) -> ReadError {
    ReadError::BadCursor(reason.into())
}

/// The string attributes `names` of an item (or a `LastEvaluatedKey`) as a cursor key.
fn key_of(item: &Item, names: [&str; 4]) -> Result<CursorKey, StoreError> {
    names
        .iter()
        .map(|name| match item.get(*name) {
            Some(AttributeValue::S(value)) => Ok((name.to_string(), value.clone())),
            _ => Err(service(
                "Query",
                format!("key attribute {name} missing or not a string"),
            )),
        })
        .collect()
}

/// The cursor of the page that ends at `items[i]`: that item's key if more items of this
/// response follow, else where the query itself stopped (if it did not reach the end).
fn cursor_after(
    items: &[Item],
    i: usize,
    last_evaluated: Option<&Item>,
    key_names: [&str; 4],
    scope: &str,
) -> Result<Option<String>, StoreError> {
    let key = if i + 1 < items.len() {
        Some(key_of(&items[i], key_names)?)
    } else {
        last_evaluated
            .filter(|key| !key.is_empty())
            .map(|key| key_of(key, key_names))
            .transpose()?
    };
    Ok(key.map(|key| cursor::encode(scope, &key)))
}

/// The cursor to resume a listing that stopped before the end at `start`.
fn cursor_at(
    start: Option<Item>,
    key_names: [&str; 4],
    scope: &str,
) -> Result<Option<String>, StoreError> {
    Ok(start
        .map(|key| key_of(&key, key_names))
        .transpose()?
        .map(|key| cursor::encode(scope, &key)))
}

/// Converts a cursor key back into a DynamoDB start key.
fn start_key(key: CursorKey) -> Item {
    key.into_iter()
        .map(|(name, value)| (name, AttributeValue::S(value)))
        .collect()
}

/// True when `sort_key` is `<timestamp as format_millis writes it>#<24 hex digits>`, the
/// shape of both index sort keys.
fn is_index_sort_key(sort_key: &str) -> bool {
    let Some((stamp, hash)) = sort_key.split_once('#') else {
        return false;
    };
    let canonical_stamp = parse_millis(stamp).is_ok_and(|ms| format_millis(ms) == stamp);
    canonical_stamp
        && hash.len() == 24
        && hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// True when `sort_key` is the sort key of part 0 of `tag` of some analysis
/// (`TAG#<inference id>#<tag>#00000`).
fn is_first_tag_part(sort_key: &str, tag: &str) -> bool {
    let suffix = format!("#{tag}#{:05}", 0);
    sort_key
        .strip_prefix(TAG_SK_PREFIX)
        .and_then(|rest| rest.strip_suffix(&suffix))
        .is_some_and(|inference| !inference.is_empty() && !inference.contains('#'))
}

/// Checks that a decoded cursor key is a start key of exactly this listing.
fn check_key(
    key: &CursorKey,
    index_pk: (&str, &str),
    index_sk: &str,
    table_sk: impl Fn(&str) -> bool,
    range: &SortRange,
) -> Result<(), ReadError> {
    let expected: HashSet<&str> = [PK, SK, index_pk.0, index_sk].into_iter().collect();
    if key.len() != expected.len() || !key.keys().all(|k| expected.contains(k.as_str())) {
        return Err(bad_cursor("cursor key does not fit this listing"));
    }
    let get = |name: &str| key.get(name).map(String::as_str).unwrap_or_default();
    if get(index_pk.0) != index_pk.1 || !table_sk(get(SK)) {
        return Err(bad_cursor("cursor belongs to another listing"));
    }
    let pk = get(PK);
    if !pk.starts_with("FILE#") || pk.len() <= "FILE#".len() {
        return Err(bad_cursor("cursor key does not name a file"));
    }
    let sort_key = get(index_sk);
    if !is_index_sort_key(sort_key) {
        return Err(bad_cursor("cursor position is malformed"));
    }
    if !range.contains(sort_key) {
        return Err(bad_cursor("cursor lies outside the requested time range"));
    }
    Ok(())
}

/// Decodes one index item of the `by-tag` listing.
fn hit_from_item(item: &Item) -> Result<TagHit, StoreError> {
    let r = ItemReader::new(item);
    Ok(TagHit {
        file: r.file()?,
        inference_id: r.s("inference_id")?.to_string(),
        completed_at: r.s("completed_at")?.to_string(),
        max_probability: r.n("max_probability")?,
        detected_seconds: r.n("detected_seconds")?,
        windows: r.n("windows")?,
    })
}

/// Merges the parts of one tag, in part order, into its detection.
fn merge_parts(mut parts: Vec<TagRecord>) -> Option<TagDetection> {
    parts.sort_by_key(|part| part.part);
    let first = parts.first()?;
    let complete = parts.len() == first.parts as usize
        && parts
            .iter()
            .enumerate()
            .all(|(i, part)| part.part as usize == i);
    if !complete {
        tracing::warn!(
            file = %first.file,
            tag = %first.name,
            found = parts.len(),
            expected = first.parts,
            "tag parts incomplete; returning the parts found"
        );
    }
    let mut detection = TagDetection {
        name: first.name.clone(),
        max_probability: first.max_probability,
        detected_seconds: first.detected_seconds,
        windows: first.windows,
        segments: Vec::new(),
    };
    for part in parts {
        detection.segments.extend(part.segments);
    }
    Some(detection)
}

impl DynamoStore {
    /// Reads a file's job and the detections of its current analysis with strongly consistent
    /// reads of the file's partition (paged, at most [`MAX_FILE_PAGES`] pages).
    ///
    /// `None` when the table has no job for the file, or only the tombstone of a deleted
    /// upload: for a reader the file does not exist.
    pub async fn get_file(&self, file: &S3Uri) -> Result<Option<FileView>, StoreError> {
        let pk = schema::file_pk(file);
        let mut items: Vec<Item> = Vec::new();
        let mut start: Option<Item> = None;
        for page in 1..=MAX_FILE_PAGES {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_values(":pk", AttributeValue::S(pk.clone()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| StoreError::service("Query", e))?;
            items.extend(output.items.unwrap_or_default());
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
            if page == MAX_FILE_PAGES {
                return Err(service(
                    "Query",
                    format!("the items of {file} span more than {MAX_FILE_PAGES} pages"),
                ));
            }
        }
        let sort_key = |item: &Item| {
            item.get(SK)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default()
        };
        let Some(job_item) = items.iter().find(|item| sort_key(item) == JOB_SK) else {
            return Ok(None);
        };
        let job = schema::job_from_item(job_item)?;
        if job.status == JobStatus::Deleted {
            return Ok(None);
        }
        let mut by_tag: BTreeMap<String, Vec<TagRecord>> = BTreeMap::new();
        if let Some(current) = &job.inference_id {
            for item in items
                .iter()
                .filter(|item| sort_key(item).starts_with(TAG_SK_PREFIX))
            {
                let record = schema::tag_from_item(item)?;
                if &record.inference_id == current {
                    by_tag.entry(record.name.clone()).or_default().push(record);
                }
            }
        }
        let tags = by_tag.into_values().filter_map(merge_parts).collect();
        Ok(Some(FileView { job, tags }))
    }

    /// Files whose current analysis found `params.name`, newest analysis first, and what the
    /// call cost.
    ///
    /// `since` and `until` are inclusive bounds on the completion time, as
    /// [`cochl_core::time::format_millis`] writes timestamps; `min_probability` keeps files whose
    /// maximum probability for the tag is at least that. `limit` is clamped to
    /// 1..=[`MAX_PAGE_SIZE`].
    ///
    /// Queries the `by-tag` index newest first; filters on the maximum probability in
    /// DynamoDB; checks each hit against its file's job (one BatchGetItem per query response)
    /// so index entries of an analysis that is no longer the file's current, completed one
    /// are skipped; stops after [`MAX_QUERY_REQUESTS`] queries with a cursor.
    pub async fn files_with_tag_counted(
        &self,
        params: &TagFilesParams,
    ) -> Result<(Page<TagHit>, ListingStats), ReadError> {
        let tag = params.name.as_str();
        let listing = Listing {
            scope: format!("tag:{tag}"),
            index: TAG_INDEX,
            index_pk: (GSI1_PK, schema::tag_index_pk(tag)),
            index_sk: GSI1_SK,
            limit: params.limit.clamp(1, MAX_PAGE_SIZE),
            min_query_limit: match params.min_probability {
                Some(_) => FILTERED_QUERY_LIMIT,
                None => 1,
            },
        };
        let range = SortRange::new(params.since.as_deref(), params.until.as_deref());
        let start = listing.resume(
            params.cursor.as_deref(),
            |sk| is_first_tag_part(sk, tag),
            &range,
        )?;
        if range.is_empty() {
            let empty = Page {
                items: Vec::new(),
                next_cursor: None,
            };
            return Ok((empty, ListingStats::default()));
        }
        let projected = [
            PK,
            SK,
            GSI1_PK,
            GSI1_SK,
            "bucket",
            "key",
            "inference_id",
            "completed_at",
            "max_probability",
            "detected_seconds",
            "windows",
        ];
        let condition = match (&range.low, &range.high) {
            (Some(_), Some(_)) => "#ipk = :ipk AND #isk BETWEEN :low AND :high",
            (Some(_), None) => "#ipk = :ipk AND #isk >= :low",
            (None, Some(_)) => "#ipk = :ipk AND #isk <= :high",
            (None, None) => "#ipk = :ipk",
        };
        let mut request = self
            .index_query(&listing)
            .key_condition_expression(condition);
        if range.low.is_some() || range.high.is_some() {
            request = request.expression_attribute_names("#isk", GSI1_SK);
        }
        let mut projection = Vec::with_capacity(projected.len());
        for (i, name) in projected.iter().enumerate() {
            request = request.expression_attribute_names(format!("#p{i}"), *name);
            projection.push(format!("#p{i}"));
        }
        request = request.projection_expression(projection.join(", "));
        if let Some(low) = &range.low {
            request = request.expression_attribute_values(":low", AttributeValue::S(low.clone()));
        }
        if let Some(high) = &range.high {
            request = request.expression_attribute_values(":high", AttributeValue::S(high.clone()));
        }
        if let Some(min) = params.min_probability {
            request = request
                .filter_expression("#maxp >= :min")
                .expression_attribute_names("#maxp", "max_probability")
                .expression_attribute_values(":min", AttributeValue::N(min.to_string()));
        }
        self.paginate(&listing, start, request, |items: &[Item]| {
            let candidates = items
                .iter()
                .map(hit_from_item)
                .collect::<Result<Vec<_>, _>>();
            async move {
                let candidates = candidates?;
                let mut job_checks = 0;
                let current = self
                    .current_inferences(candidates.iter().map(|hit| &hit.file), &mut job_checks)
                    .await?;
                let entries = candidates
                    .into_iter()
                    .map(|hit| {
                        let pk = schema::file_pk(&hit.file);
                        let is_current =
                            current.get(&pk).map(String::as_str) == Some(hit.inference_id.as_str());
                        Ok(is_current.then_some(hit))
                    })
                    .collect();
                Ok(Admitted {
                    entries,
                    job_checks,
                })
            }
        })
        .await
    }

    /// A query of `listing`'s index for its partition, newest first; the caller adds the key
    /// condition and anything else the listing needs.
    fn index_query(&self, listing: &Listing) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .index_name(listing.index)
            .scan_index_forward(false)
            .expression_attribute_names("#ipk", listing.index_pk.0)
            .expression_attribute_values(":ipk", AttributeValue::S(listing.index_pk.1.clone()))
    }

    /// Pages through `listing` from `start` with `request` (sent once per query, with its
    /// `Limit` and start key set here) until the page is full, the index ends or
    /// [`MAX_QUERY_REQUESTS`] queries were made, and hands back the cursor where it stopped.
    ///
    /// `admit` reads one response's items (what it needs from them, before its future runs)
    /// into [`Admitted`] entries.
    async fn paginate<T, F>(
        &self,
        listing: &Listing,
        mut start: Option<Item>,
        request: QueryFluentBuilder,
        mut admit: impl FnMut(&[Item]) -> F,
    ) -> Result<(Page<T>, ListingStats), ReadError>
    where
        F: Future<Output = Result<Admitted<T>, StoreError>>,
    {
        let key_names = listing.key_names();
        let mut stats = ListingStats::default();
        let mut entries: Vec<T> = Vec::new();
        while stats.queries < MAX_QUERY_REQUESTS {
            // One more than the page needs, so a full page usually ends inside a response and
            // its cursor is the last listed item rather than where the query stopped.
            let query_limit = (listing.limit - entries.len() + 1).max(listing.min_query_limit);
            let output = request
                .clone()
                .limit(i32::try_from(query_limit).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| StoreError::service("Query", e))?;
            stats.queries += 1;
            stats.evaluated += usize::try_from(output.scanned_count).unwrap_or(0);
            let items = output.items.unwrap_or_default();
            let admitted = admit(&items).await?;
            stats.job_checks += admitted.job_checks;
            for (i, entry) in admitted.entries.into_iter().enumerate() {
                let Some(entry) = entry? else {
                    stats.stale += 1;
                    continue;
                };
                entries.push(entry);
                if entries.len() == listing.limit {
                    let next_cursor = cursor_after(
                        &items,
                        i,
                        output.last_evaluated_key.as_ref(),
                        key_names,
                        &listing.scope,
                    )?;
                    let page = Page {
                        items: entries,
                        next_cursor,
                    };
                    return Ok((page, stats));
                }
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => {
                    let page = Page {
                        items: entries,
                        next_cursor: None,
                    };
                    return Ok((page, stats));
                }
            }
        }
        let page = Page {
            items: entries,
            next_cursor: cursor_at(start, key_names, &listing.scope)?,
        };
        Ok((page, stats))
    }
    /// The inference of each file whose job is COMPLETED, read consistently from the job
    /// items, keyed by the file's partition key; counts its BatchGetItem requests in
    /// `job_checks`.
    async fn current_inferences<'a>(
        &self,
        files: impl Iterator<Item = &'a S3Uri>,
        job_checks: &mut u32,
    ) -> Result<HashMap<String, String>, StoreError> {
        let mut pks: Vec<String> = files.map(schema::file_pk).collect();
        pks.sort();
        pks.dedup();
        let mut current = HashMap::new();
        for chunk in pks.chunks(BATCH_GET_LIMIT) {
            let mut keys = Vec::with_capacity(chunk.len());
            for pk in chunk {
                keys.push(HashMap::from([
                    (PK.to_string(), AttributeValue::S(pk.clone())),
                    (SK.to_string(), AttributeValue::S(JOB_SK.to_string())),
                ]));
            }
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .projection_expression("#pk, #st, #inf")
                    .expression_attribute_names("#pk", PK)
                    .expression_attribute_names("#st", "status")
                    .expression_attribute_names("#inf", "inference_id")
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError::service("BatchGetItem", e))?,
            );
            let mut backoff = Backoff::new(Duration::from_millis(25), Duration::from_secs(1), 5);
            while let Some(request) = pending.take() {
                *job_checks += 1;
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| StoreError::service("BatchGetItem", e))?;
                let found = output
                    .responses
                    .as_ref()
                    .and_then(|tables| tables.get(&self.table));
                for item in found.into_iter().flatten() {
                    let r = ItemReader::new(item);
                    if r.s("status")? == JobStatus::Completed.as_str() {
                        if let Some(inference) = r.opt_s("inference_id")? {
                            current.insert(r.s(PK)?.to_string(), inference.to_string());
                        }
                    }
                }
                let left = output
                    .unprocessed_keys
                    .and_then(|mut tables| tables.remove(&self.table))
                    .filter(|left| !left.keys.is_empty());
                if let Some(left) = left {
                    let Some(delay) = backoff.next_delay() else {
                        return Err(StoreError::Unprocessed {
                            remaining: left.keys.len(),
                            attempts: backoff.attempts(),
                        });
                    };
                    tokio::time::sleep(delay).await;
                    pending = Some(left);
                }
            }
        }
        Ok(current)
    }

    /// Jobs in `status`, most recently changed first. `limit` is clamped to
    /// 1..=[`MAX_PAGE_SIZE`].
    pub async fn jobs_by_status(
        &self,
        status: JobStatus,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<JobRecord>, ReadError> {
        self.jobs_by_status_counted(status, limit, cursor)
            .await
            .map(|(page, _)| page)
    }

    /// [`DynamoStore::jobs_by_status`], also telling what the call cost.
    pub async fn jobs_by_status_counted(
        &self,
        status: JobStatus,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<(Page<JobRecord>, ListingStats), ReadError> {
        let listing = Listing {
            scope: format!("status:{status}"),
            index: STATUS_INDEX,
            index_pk: (GSI2_PK, schema::status_index_pk(status)),
            index_sk: GSI2_SK,
            limit: limit.clamp(1, MAX_PAGE_SIZE),
            min_query_limit: 1,
        };
        let everything = SortRange::new(None, None);
        let start = listing.resume(cursor, |sk| sk == JOB_SK, &everything)?;
        let request = self
            .index_query(&listing)
            .key_condition_expression("#ipk = :ipk");
        self.paginate(&listing, start, request, |items: &[Item]| {
            let entries = items
                .iter()
                .map(|item| Ok(Some(schema::job_from_item(item)?)))
                .collect();
            std::future::ready(Ok(Admitted {
                entries,
                job_checks: 0,
            }))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_bound_includes_its_millisecond_and_nothing_later() {
        let range = SortRange::new(
            Some("2026-01-01T00:00:00.000Z"),
            Some("2026-01-01T00:00:01.000Z"),
        );
        let hash = "0".repeat(24);
        let hex_max = "f".repeat(24);
        assert!(range.contains(&format!("2026-01-01T00:00:00.000Z#{hash}")));
        assert!(range.contains(&format!("2026-01-01T00:00:01.000Z#{hex_max}")));
        assert!(!range.contains(&format!("2026-01-01T00:00:01.001Z#{hash}")));
        assert!(!range.contains(&format!("2025-12-31T23:59:59.999Z#{hex_max}")));
        assert!(!range.is_empty());
        assert!(SortRange::new(
            Some("2026-01-02T00:00:00.000Z"),
            Some("2026-01-01T00:00:00.000Z")
        )
        .is_empty());
        assert!(!SortRange::new(
            Some("2026-01-01T00:00:00.000Z"),
            Some("2026-01-01T00:00:00.000Z")
        )
        .is_empty());
    }

    #[test]
    fn index_sort_keys_are_recognised() {
        let good = format!("2026-01-01T00:00:00.000Z#{}", "ab".repeat(12));
        assert!(is_index_sort_key(&good));
        for bad in [
            "2026-01-01T00:00:00.000Z".to_string(),
            format!("2026-01-01T00:00:00Z#{}", "ab".repeat(12)),
            format!("2026-01-01T00:00:00.000Z#{}", "AB".repeat(12)),
            format!("2026-01-01T00:00:00.000Z#{}", "ab".repeat(11)),
            format!("2026-13-01T00:00:00.000Z#{}", "ab".repeat(12)),
        ] {
            assert!(!is_index_sort_key(&bad), "{bad}");
        }
    }

    #[test]
    fn first_tag_parts_are_recognised_for_any_analysis() {
        assert!(is_first_tag_part(
            &schema::tag_sk("cochl-1", "Siren", 0),
            "Siren"
        ));
        assert!(!is_first_tag_part(
            &schema::tag_sk("cochl-1", "Siren", 1),
            "Siren"
        ));
        assert!(!is_first_tag_part(
            &schema::tag_sk("cochl-1", "Siren", 0),
            "Speech"
        ));
        assert!(!is_first_tag_part(
            &schema::tag_sk("cochl-1", "Big_Siren", 0),
            "Siren"
        ));
        assert!(!is_first_tag_part("TAG##Siren#00000", "Siren"));
        assert!(!is_first_tag_part("JOB", "Siren"));
    }

    fn tag_key(tag: &str, stamp: &str) -> CursorKey {
        [
            (PK, "FILE#b/k.wav".to_string()),
            (SK, schema::tag_sk("cochl-1", tag, 0)),
            (GSI1_PK, schema::tag_index_pk(tag)),
            (GSI1_SK, format!("{stamp}#{}", "0".repeat(24))),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    #[test]
    fn cursor_keys_must_fit_the_listing() {
        let all = SortRange::new(None, None);
        let check = |key: &CursorKey, range: &SortRange| {
            check_key(
                key,
                (GSI1_PK, "TAG#Siren"),
                GSI1_SK,
                |sk: &str| is_first_tag_part(sk, "Siren"),
                range,
            )
        };
        let key = tag_key("Siren", "2026-01-01T00:00:00.000Z");
        assert!(check(&key, &all).is_ok());
        assert!(check(&tag_key("Speech", "2026-01-01T00:00:00.000Z"), &all).is_err());
        let later = SortRange::new(Some("2026-01-01T00:00:00.001Z"), None);
        assert!(matches!(check(&key, &later), Err(ReadError::BadCursor(_))));
        let mut extra = key.clone();
        extra.insert("x".into(), "y".into());
        assert!(check(&extra, &all).is_err());
        let mut not_file = key.clone();
        not_file.insert(PK.into(), "ORPHAN#x".into());
        assert!(check(&not_file, &all).is_err());
        let mut missing = key;
        missing.remove(SK);
        assert!(check(&missing, &all).is_err());
    }
}
