//! The batching core, pure: store encoding of a batch and the retry/backoff policy.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::Completion;

/// Separator inside a stored completion value (ASCII unit separator).
const SEP: char = '\u{1f}';

/// The store value of a completion: `attempt␟kind␟payload`. Writing it is idempotent, so a
/// retry after an unknown outcome stores the same thing again.
pub(crate) fn encode(c: &Completion) -> String {
    if crate::mutants::active(crate::mutants::Mutant::MC173) {
        return format!("{}{SEP}{}{SEP}{}", c.kind, c.attempt, c.payload); // MC173: fields swapped
    }
    format!("{}{SEP}{}{SEP}{}", c.attempt, c.kind, c.payload)
}

/// The writes of one batch (the last completion of a key wins, as it would in sequence).
pub(crate) fn writes(batch: &[Completion]) -> Vec<(String, Option<String>)> {
    batch.iter().map(|c| (c.key.clone(), Some(encode(c)))).collect()
}

/// What to do after a failed write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Retry after this backoff.
    After(Duration),
    /// The batch used up its budget: cool down for this long, then start a fresh budget.
    CoolDown(Duration),
}

/// Jittered exponential backoff with a per-batch budget.
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    budget: u32,
    failures: u32,
    /// A write failed since the last success (a cool-down starts `failures` over, not this).
    retrying: bool,
    rng: ChaCha8Rng,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration, budget: u32, seed: u64) -> Self {
        Backoff { min, max, budget, failures: 0, retrying: false, rng: ChaCha8Rng::seed_from_u64(seed) }
    }

    /// Failed attempts of the current budget so far.
    #[cfg(test)]
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Whether a write failed since the last success: what a flush reports as `retried`, also
    /// after its budget cooled down and started over.
    pub fn retried(&self) -> bool {
        self.retrying
    }

    /// A write failed.
    pub fn failed(&mut self) -> Retry {
        self.retrying = true;
        self.failures += 1;
        if self.failures >= self.budget {
            self.failures = 0;
            // MC250: the cool-down taken as one more (long) retry: no warning.
            if crate::mutants::active(crate::mutants::Mutant::MC250) {
                return Retry::After(self.max);
            }
            return Retry::CoolDown(self.max);
        }
        let exp = self.min.saturating_mul(1u32 << self.failures.min(16));
        // MC84: the doubling never capped at `max`.
        let exp = if crate::mutants::active(crate::mutants::Mutant::MC84) { exp } else { exp.min(self.max) };
        // Full jitter in [exp/2, exp]: retries of many nodes do not align. MC83: in [0, exp],
        // a floor of nothing (a retry storm on a failing store).
        let half = exp / 2;
        let us = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let (floor, spread_us) = if crate::mutants::active(crate::mutants::Mutant::MC83) {
            (Duration::ZERO, us(exp))
        } else {
            (half, us(half))
        };
        let jitter = self.rng.gen_range(0..=spread_us);
        Retry::After(floor + Duration::from_micros(jitter))
    }

    /// The batch was written: the next batch starts a fresh budget.
    pub fn succeeded(&mut self) {
        self.failures = 0;
        self.retrying = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two completions of one key in a batch (a job dispatched again after its completion, its
    /// next attempt completed before the flush): the store ends with the later one, as writes in
    /// sequence would leave it (blind-spot hunt, round 42 B #23: a batch deduplicated by key
    /// keeping the first, so the store held the older attempt; no simulated batch held a key
    /// twice).
    #[test]
    fn the_last_completion_of_a_key_in_a_batch_wins() {
        let batch = [
            Completion::new("k", 1, "failed", "a"),
            Completion::new("j", 1, "completed", "b"),
            Completion::new("k", 2, "completed", "c"),
        ];
        let mut store = std::collections::BTreeMap::new();
        for (key, value) in writes(&batch) {
            store.insert(key, value);
        }
        assert_eq!(store.get("k").cloned().flatten(), Some(encode(&batch[2])));
        assert_eq!(store.get("j").cloned().flatten(), Some(encode(&batch[1])));
    }

    #[test]
    fn backoff_grows_within_bounds_then_cools_down() {
        let (min, max) = (Duration::from_millis(10), Duration::from_millis(100));
        let mut b = Backoff::new(min, max, 4, 7);
        let mut last = Duration::ZERO;
        for _ in 0..3 {
            match b.failed() {
                Retry::After(d) => {
                    assert!(d >= min / 2 && d <= max, "{d:?}");
                    last = d;
                }
                r => panic!("{r:?}"),
            }
        }
        assert!(last >= Duration::from_millis(40));
        assert_eq!(b.failed(), Retry::CoolDown(max));
        assert_eq!(b.failures(), 0);
        // A fresh budget, but the batch was retried: its flush says so (round 8 #11 found a
        // batch written after a cool-down reported not retried).
        assert!(b.retried());
        b.succeeded();
        assert!(!b.retried());
    }

    /// `failures` is what the flush reports as `retried`: it counts the batch's failed attempts
    /// and a success starts afresh (cargo-mutants: `failures -> 0` survived).
    #[test]
    fn failures_count_the_current_batch() {
        let mut b = Backoff::new(Duration::from_millis(10), Duration::from_millis(100), 8, 7);
        assert_eq!(b.failures(), 0);
        let _ = b.failed();
        let _ = b.failed();
        assert_eq!(b.failures(), 2);
        b.succeeded();
        assert_eq!(b.failures(), 0);
    }

    #[test]
    fn encoding_is_stable() {
        let c = Completion::new("job-1", 3, "succeeded", "{}");
        assert_eq!(encode(&c), "3\u{1f}succeeded\u{1f}{}");
        assert_eq!(writes(&[c]).len(), 1);
    }
}
