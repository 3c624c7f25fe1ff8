//! Function settings for handler tests against the in-memory doubles: the values every flow
//! test starts from, so a test states only what it changes.

use cochl_aws::settings::ResultSettings;
use cochl_core::detections::MergeOptions;

/// on-result's (and the sweeper's) settings: default merge, results up to 1 MiB, two
/// expiry resubmissions, the doubles' queue.
pub fn result_settings() -> ResultSettings {
    ResultSettings {
        table_name: "jobs".into(),
        detections_topic_arn: "arn:aws:sns:us-east-1:123456789012:detections".into(),
        merge: MergeOptions::default(),
        query_url: None,
        max_result_bytes: 1 << 20,
        concurrency: 4,
        max_expiry_resubmits: 2,
        submit_queue_url: "memory".into(),
    }
}
