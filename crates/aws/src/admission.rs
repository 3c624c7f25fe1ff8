//! Giving back in-flight slots presumed leaked: submit does it when the endpoint looks full,
//! the sweeper on every run, so a lost notification never shrinks the endpoint's room for
//! longer than a slot's lease.

use cochl_core::inference_id::InferenceId;

use crate::dynamo::StoreError;
use crate::ports::JobStore;

/// Gives back up to `max` slots whose lease ended before `now` (seconds since the epoch);
/// returns the inferences whose slot this call freed (another reclaimer may free some).
pub async fn reclaim_leaked_slots<S: JobStore>(
    store: &S,
    now: i64,
    max: usize,
) -> Result<Vec<InferenceId>, StoreError> {
    let leaked = store.expired_slots(now, max).await?;
    let mut reclaimed = Vec::new();
    for inference_id in leaked {
        if store.release_slot(&inference_id).await? {
            tracing::warn!(inference_id = %inference_id, "reclaimed the in-flight slot of an inference whose notification never came");
            reclaimed.push(inference_id);
        }
    }
    Ok(reclaimed)
}
