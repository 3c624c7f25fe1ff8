//! What happened to one SageMaker notification: the invocation's answer and its log line.

use serde::Serialize;

/// The outcome of a notification that was handled. One that could not be handled is a
/// [`RecordError`](crate::error::RecordError) instead, so an outcome is always final.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum NotificationOutcome {
    /// Detections recorded, notification published, job COMPLETED.
    Completed {
        /// `s3://bucket/key` of the analysed file.
        file: String,
        /// The inference whose result was recorded.
        inference_id: String,
        /// Tags detected.
        tags: usize,
        /// DynamoDB requests made (the write-efficiency figure).
        dynamodb_requests: u32,
    },
    /// Notification published, job FAILED (an inference failure or an unusable result).
    Failed {
        /// `s3://bucket/key` of the file.
        file: String,
        /// The inference that failed.
        inference_id: String,
        /// Stable reason code (`inference_failed`, `malformed_result`, ...).
        reason_code: String,
    },
    /// The request expired in the endpoint's queue and was sent back to the submit queue
    /// (no notification yet: one goes out for the final outcome).
    Resubmitted {
        /// `s3://bucket/key` of the file.
        file: String,
        /// The inference that expired.
        inference_id: String,
        /// The resubmission this is (1 for the first).
        attempt: u32,
    },
    /// The job already holds this inference's outcome: a repeated notification.
    Duplicate {
        /// `s3://bucket/key` of the file.
        file: String,
    },
    /// The job now belongs to a newer upload: the outcome is history.
    Superseded {
        /// `s3://bucket/key` of the file.
        file: String,
        /// The inference the notification is about.
        inference_id: String,
    },
    /// No job knows the inference; the notification is kept as an orphan item.
    Orphan {
        /// The inference the notification names.
        inference_id: String,
    },
}
