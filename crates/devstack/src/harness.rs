//! What tests do with a running [`LocalStack`], in one place: wait for a state (bounded
//! polls, deadlines from [`testkit::wait`]), read the queues, count objects, talk to the
//! emulator's admin API, and account for dead letters. Test files only add what is their
//! own subject.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use aws_sdk_dynamodb::types::{AttributeValue, Select};
use cochl_aws::dynamo::schema;
use cochl_core::job::JobStatus;
use cochl_core::keys::{decode_event_key, S3Uri};
use serde_json::{json, Value};
use testkit::wait;

use crate::stack::LocalStack;

/// How long [`LocalStack::peek`] hides the messages it read.
pub const PEEK_HIDES: Duration = Duration::from_secs(10);

/// Messages the queues gave up on (moved to their dead-letter queues after
/// `maxReceiveCount` receives), and the files they name.
#[derive(Debug, Default, Clone)]
pub struct DeadLetters {
    /// Every message body read from the two dead-letter queues, in arrival order (as it
    /// was sent: an S3 notification, or the SNS envelope of a SageMaker notification).
    pub letters: Vec<Value>,
    /// Their message ids: the queues are peeked, not drained, so a redrive can move them.
    pub ids: BTreeSet<String>,
    /// The files those events name (`s3://bucket/key`).
    pub files: BTreeSet<String>,
}

impl DeadLetters {
    /// Whether a file's event is among the dead letters.
    pub fn names(&self, file: &S3Uri) -> bool {
        self.files.contains(&file.to_string())
    }
}

/// The files a dead-lettered message names: its S3 records' keys, or its SageMaker
/// notification's input location.
pub fn files_of_dead_letter(bucket: &str, dead: &Value) -> Result<Vec<S3Uri>> {
    let mut files = Vec::new();
    for record in dead["Records"].as_array().into_iter().flatten() {
        if let Some(key) = record["s3"]["object"]["key"].as_str() {
            files.push(S3Uri::new(bucket, &decode_event_key(key)?)?);
        }
    }
    if let Some(message) = dead["Message"].as_str() {
        let notification: Value = serde_json::from_str(message)?;
        if let Some(input) = notification["requestParameters"]["inputLocation"].as_str() {
            files.push(S3Uri::parse(input)?);
        }
    }
    Ok(files)
}

/// What a poll gathers between its checks. A mutex, not a `RefCell`, so the waits stay
/// `Send`; it is never held across an await.
fn lock<T>(state: &Mutex<T>) -> MutexGuard<'_, T> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

fn into_inner<T>(state: Mutex<T>) -> T {
    state.into_inner().unwrap_or_else(PoisonError::into_inner)
}

impl LocalStack {
    /// Jobs in a status, counted on the by-status index (one `Select=COUNT` query per page
    /// of the index, not one read per file).
    pub async fn count_status(&self, status: JobStatus) -> Result<u64> {
        let mut count = 0;
        let mut start = None;
        loop {
            let output = self
                .store
                .client()
                .query()
                .table_name(self.store.table())
                .index_name(schema::STATUS_INDEX)
                .key_condition_expression("#ipk = :ipk")
                .expression_attribute_names("#ipk", schema::GSI2_PK)
                .expression_attribute_values(
                    ":ipk",
                    AttributeValue::S(schema::status_index_pk(status)),
                )
                .select(Select::Count)
                .set_exclusive_start_key(start)
                .send()
                .await
                .context("counting jobs")?;
            count += u64::try_from(output.count())?;
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(count),
            }
        }
    }

    /// The tag items a file has in the table, whatever analysis wrote them: (tag name,
    /// inference id) each, read consistently. Items of a superseded analysis show here until
    /// they are deleted, unlike in the query API, which reads only the current analysis.
    pub async fn tag_items(&self, file: &S3Uri) -> Result<Vec<(String, String)>> {
        let output = self
            .store
            .client()
            .query()
            .table_name(self.store.table())
            .key_condition_expression("pk = :pk AND begins_with(sk, :tag)")
            .expression_attribute_values(":pk", AttributeValue::S(schema::file_pk(file)))
            .expression_attribute_values(":tag", AttributeValue::S(schema::TAG_SK_PREFIX.into()))
            .consistent_read(true)
            .send()
            .await
            .context("reading the tag items")?;
        output
            .items()
            .iter()
            .map(|item| {
                let record = schema::tag_from_item(item)?;
                Ok((record.name, record.inference_id.to_string()))
            })
            .collect()
    }

    /// How many tag items a file has in the table ([`LocalStack::tag_items`]).
    pub async fn tag_item_count(&self, file: &S3Uri) -> Result<usize> {
        Ok(self.tag_items(file).await?.len())
    }

    /// The emulator's counters (`GET /_emulator/stats`).
    pub async fn emulator_stats(&self) -> Result<Value> {
        let (status, stats) = self.emulator_admin("GET", "/_emulator/stats", "").await?;
        ensure!(status == 200, "emulator stats answered {status}: {stats}");
        Ok(stats)
    }

    /// Every input location the emulator accepted a request for, in order
    /// (`GET /_emulator/input-locations`).
    pub async fn emulator_inputs(&self) -> Result<Vec<String>> {
        let (status, body) = self
            .emulator_admin("GET", "/_emulator/input-locations", "")
            .await?;
        ensure!(
            status == 200,
            "emulator input locations answered {status}: {body}"
        );
        Ok(body["input_locations"]
            .as_array()
            .context("input_locations")?
            .iter()
            .filter_map(|location| location.as_str().map(str::to_string))
            .collect())
    }

    /// Sets the emulator's faults (`POST /_emulator/faults`, e.g. `{"throttle_next": 2}`);
    /// returns the faults now in force.
    pub async fn emulator_faults(&self, faults: &str) -> Result<Value> {
        let (status, answer) = self
            .emulator_admin("POST", "/_emulator/faults", faults)
            .await?;
        ensure!(
            status == 200,
            "emulator faults {faults} answered {status}: {answer}"
        );
        Ok(answer)
    }

    /// Every key under a prefix of the stack's bucket (all pages).
    pub async fn keys_under(&self, prefix: &str) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let output = self
                .s3
                .list_objects_v2()
                .bucket(&self.resources.bucket)
                .prefix(prefix)
                .set_continuation_token(token)
                .send()
                .await
                .with_context(|| format!("listing {prefix}"))?;
            keys.extend(
                output
                    .contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
            match output.next_continuation_token() {
                Some(next) => token = Some(next.to_string()),
                None => return Ok(keys),
            }
        }
    }

    /// The messages of one of the stack's queues, left in the queue: message id and body.
    /// Pages through the queue ten at a time, hiding each page for [`PEEK_HIDES`] so the
    /// next receive gets the next page; then they are visible again (a redrive waits for
    /// them). Messages hidden by someone else are not seen.
    pub async fn peek(&self, queue: &str) -> Result<Vec<(String, String)>> {
        let url = self.queue_url(queue).await?;
        let mut seen = Vec::new();
        loop {
            let output = self
                .sqs
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(10)
                .visibility_timeout(PEEK_HIDES.as_secs() as i32)
                .send()
                .await
                .with_context(|| format!("peeking at {queue}"))?;
            let page = output.messages.unwrap_or_default();
            if page.is_empty() {
                return Ok(seen);
            }
            seen.extend(
                page.into_iter()
                    .map(|m| (m.message_id.unwrap_or_default(), m.body.unwrap_or_default())),
            );
        }
    }

    /// Messages one of the stack's queues holds, visible or in flight.
    pub async fn queue_depth(&self, queue: &str) -> Result<u64> {
        let url = self.queue_url(queue).await?;
        testkit::messaging::queue_depth(&self.sqs, &url).await
    }

    /// Drains a queue: receives until it answered empty twice in a row (long polls of 1 s)
    /// or `within` passed; returns the bodies as sent.
    pub async fn drain(&self, queue: &str, within: Duration) -> Result<Vec<String>> {
        let bodies = Mutex::new(Vec::new());
        let empty = AtomicUsize::new(0);
        // A queue still busy at the deadline gives what it had: the caller checks it.
        let _still_busy = wait::until(&format!("{queue} to be drained"), within, || async {
            let got = self.receive_raw(queue, 10, Duration::from_secs(1)).await?;
            if got.is_empty() {
                empty.fetch_add(1, Ordering::Relaxed);
            } else {
                empty.store(0, Ordering::Relaxed);
            }
            lock(&bodies).extend(got);
            Ok((empty.load(Ordering::Relaxed) >= 2).then_some(()))
        })
        .await
        .is_err();
        Ok(into_inner(bodies))
    }

    /// Drains the detections queue: how many notifications each file got. More than one for
    /// a file means a publish was retried (SNS, like the SDK's retries, is at least once);
    /// a file without one was never notified.
    pub async fn notifications_per_file(
        &self,
        within: Duration,
    ) -> Result<std::collections::BTreeMap<String, usize>> {
        let mut per_file = std::collections::BTreeMap::new();
        for body in self.drain(&self.resources.detections_queue, within).await? {
            let notification: Value = serde_json::from_str(&body)?;
            let file = notification["file"]
                .as_str()
                .context("a detection notification names its file")?;
            *per_file.entry(file.to_string()).or_default() += 1;
        }
        Ok(per_file)
    }

    /// A new queue (named after `prefix`) subscribed to one of the stack's topics; returns
    /// its name.
    pub async fn subscribed_queue(
        &self,
        topic_arn: &str,
        prefix: &str,
        raw: bool,
        filter_policy: Option<&str>,
    ) -> Result<String> {
        let (name, _) = testkit::messaging::subscribed_queue(
            &self.sns,
            &self.sqs,
            topic_arn,
            prefix,
            raw,
            filter_policy,
        )
        .await?;
        Ok(name)
    }

    /// With the event sources off: receives `count` messages of one of the stack's queues
    /// (within `within`) without deleting them, as the event source would hand them to the
    /// function: one `SqsEvent`, receipt handles and receive counts included.
    pub async fn receive_batch(
        &self,
        queue: &str,
        count: usize,
        within: Duration,
    ) -> Result<aws_lambda_events::sqs::SqsEvent> {
        let url = self.queue_url(queue).await?;
        let gathered = Mutex::new(Vec::new());
        let ready = wait::until(&format!("{count} messages on {queue}"), within, || async {
            let wanted = count.saturating_sub(lock(&gathered).len()).clamp(1, 10);
            let output = self
                .sqs
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(wanted as i32)
                .wait_time_seconds(1)
                .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send()
                .await
                .context("receiving")?;
            let mut gathered = lock(&gathered);
            gathered.extend(output.messages.unwrap_or_default());
            Ok((gathered.len() >= count).then_some(()))
        })
        .await;
        let gathered = into_inner(gathered);
        ready.with_context(|| format!("{} messages arrived", gathered.len()))?;
        Ok(crate::event_source::sqs_event(
            &testkit::messaging::queue_arn(queue),
            &gathered,
        ))
    }

    /// With the event sources off: receives S3 notifications from the submit queue until they carry
    /// `records` records, and gathers them into one event, as Lambda batches them.
    pub async fn s3_event(&self, records: usize, within: Duration) -> Result<Value> {
        let gathered = Mutex::new(Vec::new());
        let what = format!("S3 notifications of {records} records");
        let ready = wait::until(&what, within, || async {
            let bodies = self
                .receive(&self.resources.submit_queue, 1, Duration::from_secs(1))
                .await?;
            let mut gathered = lock(&gathered);
            for body in bodies {
                gathered.extend(body["Records"].as_array().into_iter().flatten().cloned());
            }
            Ok((gathered.len() >= records).then_some(()))
        })
        .await;
        let gathered = into_inner(gathered);
        ready.with_context(|| format!("{} records arrived", gathered.len()))?;
        Ok(json!({ "Records": gathered }))
    }

    /// The detection notification of one file, waiting for it for at most `within`; the
    /// notifications of other files received meanwhile are kept in `seen` for later calls.
    pub async fn detection_for(
        &self,
        file: &S3Uri,
        seen: &mut Vec<Value>,
        within: Duration,
    ) -> Result<Value> {
        let wanted = file.to_string();
        let kept = Mutex::new(std::mem::take(seen));
        let what = format!("the detection notification of {file}");
        let found = wait::until(&what, within, || async {
            {
                let mut kept = lock(&kept);
                if let Some(at) = kept.iter().position(|n| n["file"] == wanted.as_str()) {
                    return Ok(Some(kept.remove(at)));
                }
            }
            let more = self
                .receive(&self.resources.detections_queue, 1, Duration::from_secs(2))
                .await?;
            lock(&kept).extend(more);
            Ok(None)
        })
        .await;
        *seen = into_inner(kept);
        found
    }

    /// Waits (for at most `within`) until every file's job is terminal or its event is in
    /// a dead-letter queue, adding what the dead-letter queues hold to `dead` (they keep
    /// it, for a redrive).
    pub async fn settle(
        &self,
        files: &[S3Uri],
        dead: &mut DeadLetters,
        within: Duration,
    ) -> Result<()> {
        let found = Mutex::new(std::mem::take(dead));
        let settled = AtomicUsize::new(0);
        let what = format!("{} files to be terminal or dead-lettered", files.len());
        let outcome = wait::until_every(&what, within, Duration::from_millis(100), || async {
            for queue in [&self.resources.submit_dlq, &self.resources.results_dlq] {
                let letters = self.peek(queue).await?;
                let mut found = lock(&found);
                for (id, body) in letters {
                    if !found.ids.insert(id) {
                        continue;
                    }
                    let letter: Value = serde_json::from_str(&body).unwrap_or(Value::String(body));
                    for file in files_of_dead_letter(&self.resources.bucket, &letter)? {
                        found.files.insert(file.to_string());
                    }
                    found.letters.push(letter);
                }
            }
            let mut count = 0;
            for file in files {
                let terminal = self
                    .store
                    .get_job(file)
                    .await?
                    .is_some_and(|job| job.status.is_terminal());
                count += usize::from(terminal || lock(&found).names(file));
            }
            settled.store(count, Ordering::Relaxed);
            Ok((count == files.len()).then_some(()))
        })
        .await;
        *dead = into_inner(found);
        match outcome {
            Ok(()) => Ok(()),
            Err(error) => bail!(
                "{error}: {} of {} files terminal or dead-lettered",
                settled.load(Ordering::Relaxed),
                files.len()
            ),
        }
    }
}
