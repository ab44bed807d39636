//! Change subscriptions: one bounded buffer per subscriber, filled without ever waiting.
//!
//! Drop policy: when a subscriber's buffer is full, the apply loop **drops the new change for
//! that subscriber** and counts it in [`Subscription::dropped`]; other subscribers, readers and
//! the replica are unaffected (R1: the apply loop never blocks on a consumer). A subscriber that
//! sees its dropped count grow should re-read [`ReplicatedMap::snapshot`](super::ReplicatedMap::snapshot).
//! After a resync, subscribers receive the per-key differences the fresh snapshot brought, at the
//! snapshot's revision. When the map stops, every subscription ends (`recv` returns `None`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::store::Change;

/// A stream of a map's changes. Created by [`ReplicatedMap::subscribe`](super::ReplicatedMap::subscribe).
#[derive(Debug)]
pub struct Subscription {
    rx: mpsc::Receiver<Change>,
    dropped: Arc<AtomicU64>,
}

impl Subscription {
    /// The next change, or `None` once the map stopped.
    pub async fn recv(&mut self) -> Option<Change> {
        if crate::mutants::active(crate::mutants::Mutant::MC416) {
            // MC416: the wait written with `try_recv`: an empty buffer reads as the feed's end.
            return self.rx.try_recv().ok();
        }
        self.rx.recv().await
    }

    /// A buffered change, if any, without waiting.
    pub fn try_recv(&mut self) -> Option<Change> {
        self.rx.try_recv().ok()
    }

    /// Changes buffered and not yet received (what `try_recv` would return without waiting).
    pub fn pending(&self) -> usize {
        self.rx.len()
    }

    /// Changes dropped because this subscription's buffer was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

struct Sub {
    tx: mpsc::Sender<Change>,
    dropped: Arc<AtomicU64>,
}

/// Every live subscriber.
pub(crate) struct Subscribers {
    /// The live subscribers, and whether the map stopped (closed: a later subscription is born
    /// ended).
    list: Mutex<(Vec<Sub>, bool)>,
    buffer: usize,
    max: usize,
}

impl Subscribers {
    pub(crate) fn new(buffer: usize, max: usize) -> Self {
        Subscribers { list: Mutex::new((Vec::new(), false)), buffer: buffer.max(1), max }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Vec<Sub>, bool)> {
        self.list.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new subscription, or `None` when `max` subscribers are live.
    pub(crate) fn subscribe(&self) -> Option<Subscription> {
        let mut guard = self.lock();
        let (list, closed) = &mut *guard;
        if *closed {
            // The map stopped: the subscription ends at once, as every earlier one did. Kept in
            // the list, its sender would never be dropped and `recv` would wait for good (round
            // 24 B: keel's own bug, found beside #11).
            let (_, rx) = mpsc::channel(1);
            return Some(Subscription { rx, dropped: Arc::new(AtomicU64::new(0)) });
        }
        list.retain(|s| !s.tx.is_closed());
        // MC417: the limit's comparison turned round: every subscription under it refused.
        if (list.len() >= self.max) != crate::mutants::active(crate::mutants::Mutant::MC417) {
            return None;
        }
        // MC219: the buffer silently clamped to 32, whatever the config asked.
        let buffer =
            if crate::mutants::active(crate::mutants::Mutant::MC219) { self.buffer.min(32) } else { self.buffer };
        let (tx, rx) = mpsc::channel(buffer);
        let dropped = Arc::new(AtomicU64::new(0));
        list.push(Sub { tx, dropped: dropped.clone() });
        Some(Subscription { rx, dropped })
    }

    /// Offer changes to every subscriber without waiting. Returns how many were dropped.
    pub(crate) fn publish(&self, changes: &[Change]) -> u64 {
        if changes.is_empty() {
            return 0;
        }
        let mut lost = 0;
        let mut guard = self.lock();
        guard.0.retain(|s| {
            for c in changes {
                match s.tx.try_send(c.clone()) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        if !crate::mutants::active(crate::mutants::Mutant::MC17) {
                            s.dropped.fetch_add(1, Ordering::Relaxed); // MC17: dropped, uncounted
                        }
                        lost += 1;
                        if crate::mutants::active(crate::mutants::Mutant::MC42) {
                            break; // MC42: the rest of the batch skipped under the one drop counted
                        }
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => return false,
                }
            }
            true
        });
        lost
    }

    /// End every subscription.
    pub(crate) fn close(&self) {
        let mut guard = self.lock();
        guard.0.clear();
        // MC226: the list emptied, not closed: a later subscription is never ended (keel's own).
        guard.1 = !crate::mutants::active(crate::mutants::Mutant::MC226);
    }

    pub(crate) fn len(&self) -> usize {
        let mut guard = self.lock();
        // MC186: the subscriptions whose receiver went away still counted.
        if !crate::mutants::active(crate::mutants::Mutant::MC186) {
            guard.0.retain(|s| !s.tx.is_closed());
        }
        guard.0.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// At most `max` live subscriptions: the next is refused, and a dropped one makes room
    /// (hunt 33 B #21: `>` for `>=` let one more in, and nothing counted them).
    #[test]
    fn subscriptions_are_bounded_at_max_and_a_dropped_one_makes_room() {
        let subs = Subscribers::new(2, 3);
        let live: Vec<_> = (0..3).map(|_| subs.subscribe().expect("within the bound")).collect();
        assert!(subs.subscribe().is_none(), "a fourth subscription past max = 3");
        drop(live);
        assert!(subs.subscribe().is_some(), "room again once they ended");
    }

    fn changes(n: u64) -> Vec<Change> {
        (1..=n).map(|rev| Change { key: format!("k{rev}"), value: Some("v".into()), rev }).collect()
    }

    /// Five changes offered as one batch (a resync's differences) to a buffer of two: what the
    /// subscriber received, and what it was told it lost.
    fn offer_a_batch_of_five_to_a_buffer_of_two() -> (u64, u64) {
        let subs = Subscribers::new(2, 4);
        let Some(mut sub) = subs.subscribe() else { panic!("room for a subscriber") };
        let lost = subs.publish(&changes(5));
        let mut received = 0;
        while sub.try_recv().is_some() {
            received += 1;
        }
        assert_eq!(lost, sub.dropped(), "the map's count is the subscriber's");
        (received, sub.dropped())
    }

    /// Every change offered is received or counted: a batch that meets a full buffer counts each
    /// change it could not hand on, not one for the rest (MC42).
    #[test]
    fn received_plus_dropped_is_what_was_offered() {
        assert_eq!(offer_a_batch_of_five_to_a_buffer_of_two(), (2, 3));
    }

    #[cfg(feature = "mutants")]
    #[test]
    fn mc42_counts_one_drop_for_the_rest_of_a_batch() {
        let prev = crate::mutants::set(Some(crate::mutants::Mutant::MC42));
        let got = offer_a_batch_of_five_to_a_buffer_of_two();
        crate::mutants::set(prev);
        assert_eq!(got, (2, 1), "the test above would fail under MC42");
    }
}
