//! P102: a completion feed's reports say something, judged at each report.
//!
//! A node's completion feed reports a read of the job map that brought completions its change
//! feed had missed (`feed_resynced`, with how many: a gap's or a hole's snapshot, a sweep's
//! slice), except the read at the node's start, whose completions are history; and the
//! completions it dropped for subscribers whose buffers were full (`feed_dropped`, with how
//! many: P107 compares the count with the subscribers' own). Each report is emitted only when
//! there is something to report: a `feed_resynced` of no completion, or of the start's read, and
//! a `feed_dropped` of no drop are false reports. Hunt 47 A's survivors 594, 595, 597 (the test
//! of `observe_tombstones` turned round: a resync announced at every read with nothing new, MC451)
//! and 599–601, 609–611 (the drop test turned round) emitted them freely. The side that is owed
//! (a resync that delivered news and said nothing) is not judged here: whether a delivery came
//! from a read or from a change is the node's own knowledge.

use keel::observe::PoolEvent;

use crate::{Entry, Violation};

/// P102 over keel's pool events: see the module's doc. The first 20 violations.
pub fn feed_reports_say_something<E: Entry>(events: &[E]) -> Vec<Violation> {
    let mut v = Vec::new();
    for e in events {
        let why = match e.pool() {
            Some(PoolEvent::FeedResynced { completions: 0, why }) => {
                format!("reported a resync ({why}) that brought no completion")
            }
            Some(PoolEvent::FeedResynced { why, .. }) if why.as_str() == "start" => {
                "reported its start's read as a resync (its completions are history)".to_owned()
            }
            Some(PoolEvent::FeedDropped { dropped: 0 }) => "reported a drop of no completion".to_owned(),
            _ => continue,
        };
        if v.len() < 20 {
            v.push(Violation::new("P102", e.t_us(), format!("{}: its completion feed {why}", e.node())));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_entry::{E as Ev, pool_at as at};

    fn p102(h: &[Ev]) -> Vec<(&'static str, u64)> {
        crate::test_entry::at_ms(&feed_reports_say_something(h))
    }

    #[test]
    fn reports_with_news_pass() {
        let h = [
            at(10, PoolEvent::FeedResynced { why: "gap".into(), completions: 2 }),
            at(20, PoolEvent::FeedDropped { dropped: 1 }),
        ];
        assert!(p102(&h).is_empty());
    }

    #[test]
    fn empty_reports_fire_p102() {
        assert_eq!(p102(&[at(10, PoolEvent::FeedResynced { why: "sweep".into(), completions: 0 })]), [("P102", 10)]);
        assert_eq!(p102(&[at(15, PoolEvent::FeedResynced { why: "start".into(), completions: 3 })]), [("P102", 15)]);
        assert_eq!(p102(&[at(20, PoolEvent::FeedDropped { dropped: 0 })]), [("P102", 20)]);
    }
}
