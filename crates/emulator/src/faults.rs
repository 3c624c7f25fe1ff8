//! Injected faults: what the admin API can make the emulator do wrong, deterministically.
//!
//! Front-door faults (throttling, unavailability) are decided once per invocation API
//! call, before validation, in this order: `throttle_next`, then `unavailable_next`, then
//! `throttle_ratio` (a draw from a seeded SplitMix64 generator, so the same seed and the
//! same sequence of calls always throttle the same calls). Inference faults and delays
//! are attached to an inference when it is accepted, except `drop_notifications_next`,
//! which is decided when an inference finishes: its notification is what it withholds,
//! so "the next N" means the next N to finish, inferences already queued or running
//! included.

use serde::{Deserialize, Serialize};
use testkit::rng::SplitMix64;

/// `failureReason` of an injected inference failure, after `ClientError: `.
pub const INJECTED_FAILURE: &str = "Received server error (500) from model (injected fault).";

/// The body of `POST /_emulator/faults`: every field optional; given fields replace the
/// current setting, others stay.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSettings {
    /// Answer this many next invocation calls with 429 `ThrottlingException`.
    pub throttle_next: Option<u64>,
    /// Answer this many next invocation calls with 503 `ServiceUnavailable`.
    pub unavailable_next: Option<u64>,
    /// Throttle this share of calls (in [0, 1]) at random, deterministically per seed.
    pub throttle_ratio: Option<f64>,
    /// Seed of the generator behind `throttle_ratio`; setting it restarts the sequence.
    pub seed: Option<u64>,
    /// Fail this many next accepted inferences with [`INJECTED_FAILURE`].
    pub fail_next_inferences: Option<u64>,
    /// Expire this many next accepted inferences: they fail, unprocessed, exactly as a
    /// request that outlived its `RequestTTLSeconds` in the queue does (without waiting
    /// the 60 s the shortest TTL would take).
    pub expire_next_inferences: Option<u64>,
    /// Withhold the SNS notification of this many next finished async inferences
    /// (success or failure, expiries included); their result or failure object is still
    /// written. Lets a test exercise a consumer's recovery from a lost notification.
    pub drop_notifications_next: Option<u64>,
    /// Delay every invocation API answer by this many milliseconds.
    pub latency_ms: Option<u64>,
    /// Add this many milliseconds to every inference's processing time.
    pub processing_delay_ms: Option<u64>,
}

/// A front-door fault to answer a call with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrontDoorFault {
    /// 429 `ThrottlingException`.
    Throttle,
    /// 503 `ServiceUnavailable`.
    Unavailable,
}

/// The current fault settings and the generator state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Faults {
    /// Calls still to throttle.
    pub throttle_next: u64,
    /// Calls still to refuse as unavailable.
    pub unavailable_next: u64,
    /// Share of calls throttled at random.
    pub throttle_ratio: f64,
    /// The generator's seed.
    pub seed: u64,
    /// Inferences still to fail.
    pub fail_next_inferences: u64,
    /// Inferences still to expire.
    pub expire_next_inferences: u64,
    /// Notifications still to withhold.
    pub drop_notifications_next: u64,
    /// Added answer latency in milliseconds.
    pub latency_ms: u64,
    /// Added processing time per inference in milliseconds.
    pub processing_delay_ms: u64,
    #[serde(skip)]
    rng: SplitMix64,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            throttle_next: 0,
            unavailable_next: 0,
            throttle_ratio: 0.0,
            seed: 0,
            fail_next_inferences: 0,
            expire_next_inferences: 0,
            drop_notifications_next: 0,
            latency_ms: 0,
            processing_delay_ms: 0,
            rng: SplitMix64(0),
        }
    }
}

impl Faults {
    /// Applies the given settings; refuses a ratio outside [0, 1] without changing anything.
    pub fn apply(&mut self, settings: &FaultSettings) -> Result<(), String> {
        if let Some(ratio) = settings.throttle_ratio {
            if !(0.0..=1.0).contains(&ratio) {
                return Err(format!("throttle_ratio {ratio} is outside [0, 1]"));
            }
            self.throttle_ratio = ratio;
        }
        if let Some(seed) = settings.seed {
            self.seed = seed;
            self.rng = SplitMix64(seed);
        }
        let set = |target: &mut u64, value: Option<u64>| {
            if let Some(value) = value {
                *target = value;
            }
        };
        set(&mut self.throttle_next, settings.throttle_next);
        set(&mut self.unavailable_next, settings.unavailable_next);
        set(
            &mut self.fail_next_inferences,
            settings.fail_next_inferences,
        );
        set(
            &mut self.expire_next_inferences,
            settings.expire_next_inferences,
        );
        set(
            &mut self.drop_notifications_next,
            settings.drop_notifications_next,
        );
        set(&mut self.latency_ms, settings.latency_ms);
        set(&mut self.processing_delay_ms, settings.processing_delay_ms);
        Ok(())
    }

    /// Decides the fault, if any, for one invocation API call.
    pub fn front_door(&mut self) -> Option<FrontDoorFault> {
        if self.throttle_next > 0 {
            self.throttle_next -= 1;
            return Some(FrontDoorFault::Throttle);
        }
        if self.unavailable_next > 0 {
            self.unavailable_next -= 1;
            return Some(FrontDoorFault::Unavailable);
        }
        if self.throttle_ratio > 0.0 && self.rng.fraction() < self.throttle_ratio {
            return Some(FrontDoorFault::Throttle);
        }
        None
    }

    /// Whether the inference being accepted must expire (counts one down).
    pub fn take_expiry(&mut self) -> bool {
        let expire = self.expire_next_inferences > 0;
        self.expire_next_inferences = self.expire_next_inferences.saturating_sub(1);
        expire
    }

    /// Whether the inference being accepted must fail (counts one down).
    pub fn take_inference_failure(&mut self) -> bool {
        if self.fail_next_inferences > 0 {
            self.fail_next_inferences -= 1;
            true
        } else {
            false
        }
    }

    /// Whether the notification of the inference that just finished must be withheld
    /// (counts one down). Asked only when there is a notification to publish, so an
    /// outcome without a configured topic does not use up the fault.
    pub fn take_notification_drop(&mut self) -> bool {
        if self.drop_notifications_next > 0 {
            self.drop_notifications_next -= 1;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(json: &str) -> FaultSettings {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn counted_faults_come_first_then_stop() {
        let mut faults = Faults::default();
        faults
            .apply(&settings(r#"{"throttle_next": 2, "unavailable_next": 1}"#))
            .unwrap();
        let decisions: Vec<_> = (0..5).map(|_| faults.front_door()).collect();
        assert_eq!(
            decisions,
            [
                Some(FrontDoorFault::Throttle),
                Some(FrontDoorFault::Throttle),
                Some(FrontDoorFault::Unavailable),
                None,
                None
            ]
        );
    }

    #[test]
    fn the_ratio_is_deterministic_per_seed() {
        let draws = |seed: u64| {
            let mut faults = Faults::default();
            faults
                .apply(&FaultSettings {
                    throttle_ratio: Some(0.5),
                    seed: Some(seed),
                    ..Default::default()
                })
                .unwrap();
            (0..1000)
                .map(|_| faults.front_door().is_some())
                .collect::<Vec<_>>()
        };
        let first = draws(42);
        assert_eq!(first, draws(42));
        assert_ne!(first, draws(43));
        let throttled = first.iter().filter(|t| **t).count();
        assert!((430..=570).contains(&throttled), "{throttled}");
    }

    #[test]
    fn refuses_bad_settings() {
        let mut faults = Faults::default();
        assert!(faults
            .apply(&FaultSettings {
                throttle_ratio: Some(1.5),
                throttle_next: Some(3),
                ..Default::default()
            })
            .is_err());
        assert_eq!(faults, Faults::default());
        assert!(serde_json::from_str::<FaultSettings>(r#"{"throttle": 1}"#).is_err());
    }

    #[test]
    fn inference_failures_count_down() {
        let mut faults = Faults::default();
        faults
            .apply(&settings(r#"{"fail_next_inferences": 1}"#))
            .unwrap();
        assert!(faults.take_inference_failure());
        assert!(!faults.take_inference_failure());
    }

    #[test]
    fn notification_drops_count_down_and_keep_other_settings() {
        let mut faults = Faults::default();
        faults
            .apply(&settings(
                r#"{"drop_notifications_next": 2, "fail_next_inferences": 1}"#,
            ))
            .unwrap();
        // A partial update leaves the other counters as they are.
        faults.apply(&settings(r#"{"latency_ms": 3}"#)).unwrap();
        assert_eq!(faults.drop_notifications_next, 2);
        assert_eq!(faults.fail_next_inferences, 1);
        assert!(faults.take_notification_drop());
        assert!(faults.take_notification_drop());
        assert!(!faults.take_notification_drop());
        assert_eq!(faults.drop_notifications_next, 0);
    }
}
