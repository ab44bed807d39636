//! P64: a pool node's completion feed is told of every gap and hole of the job map's feed, and
//! a whole snapshot heals only the gaps reported before its request, judged at each.
//!
//! The completion feed delivers the completions the change feed brought; after a gap (the
//! store's feed reports one to the router: `router_gap`) or a hole (the table finds skipped
//! revisions: `feed_hole`) what the change feed delivers says nothing of what it lost, so the
//! completion feed freezes its snapshot floor as it was, until a whole snapshot read after the
//! gap is taken in. Two ways to lose completions for good, each a completion older than the
//! horizon that a node cut off that long never delivers to its subscribers or `wait_for`:
//!
//! - a gap or hole the completion feed is not told of: each `router_gap` and `feed_hole` reports
//!   the feed's count of gaps and holes since the node started (`feed_gaps`), which must be one
//!   more than the last (MC273: the router told the job table only; round 27 A #7 and #16);
//! - a heal that counts a gap reported while its snapshot was read: each `job_table_rebuilt`
//!   reports the count it heals (`feed_gaps`, read before the request) and its read's
//!   `took_us`; a gap reported after the latest instant the request can have left (its end less
//!   the read's duration at the fastest in-bound clock, with the early slack) must not be among
//!   them (MC274: the count read once the snapshot is in; round 27 A #2).
//!
//! A node's crash or restart, and a pool node's start, begin the count again.

use std::collections::BTreeMap;

use keel::observe::PoolEvent;

use crate::cadence::Clocks;
use crate::{Entry, Fact, Span, Violation, plain};

/// P64 over keel's pool events: see the module's doc. The first 20 violations.
pub fn feed_gaps_are_counted_and_healed_in_order<E: Entry>(
    events: &[E],
    clocks: Clocks<impl Fn(&E::Node) -> Vec<Span>, impl Fn(&E::Node, u64, u64) -> bool>,
) -> Vec<Violation> {
    // (node, pool) → the instants of the gaps and holes reported since the node started
    let mut gaps: BTreeMap<(E::Node, &str), Vec<u64>> = BTreeMap::new();
    let mut v = Vec::new();
    let mut flag = |t: u64, what: String| {
        if v.len() < 20 {
            v.push(Violation::new("P64", t, what));
        }
    };
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            gaps.retain(|k, _| &k.0 != node);
            continue;
        }
        let Some(p) = e.pool() else { continue };
        match p {
            PoolEvent::NodeStarted { pool, .. } => {
                gaps.insert((node.clone(), plain(pool)), Vec::new());
            }
            PoolEvent::RouterGap { pool, feed_gaps } | PoolEvent::FeedHole { pool, feed_gaps, .. } => {
                let seen = gaps.entry((node.clone(), plain(pool))).or_default();
                seen.push(t);
                if *feed_gaps != seen.len() as u64 {
                    let what = if matches!(p, PoolEvent::RouterGap { .. }) { "a gap" } else { "a hole" };
                    flag(
                        t,
                        format!(
                            "{node}: pool {pool}: {what} in the job map's feed left the completion feed told of {feed_gaps} gaps and holes, where the node has had {}",
                            seen.len(),
                            pool = plain(pool)
                        ),
                    );
                }
            }
            PoolEvent::TableRebuilt { pool, feed_gaps, took_us, why, .. } => {
                let Some(seen) = gaps.get(&(node.clone(), plain(pool))) else { continue };
                // The latest instant the read's request can have left.
                let read = (*took_us as f64 / clocks.rates.1) as u64;
                let latest = t.saturating_sub(read) + clocks.slacks.1;
                let before = seen.iter().filter(|&&g| g <= latest).count() as u64;
                if *feed_gaps > before && !(clocks.jumped)(node, t.saturating_sub(read), t) {
                    flag(
                        t,
                        format!(
                            "{node}: pool {pool}: a whole snapshot ({why}) read in {took_us} µs heals {feed_gaps} gaps and holes, but only {before} were reported before its request could have left",
                            pool = plain(pool),
                            why = plain(why)
                        ),
                    );
                }
            }
            _ => {}
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_entry::{E as Ev, at_ms, pool_at as at};

    fn gap(t_ms: u64, feed_gaps: u64) -> Ev {
        at(t_ms, PoolEvent::RouterGap { pool: "p".into(), feed_gaps })
    }

    fn hole(t_ms: u64, feed_gaps: u64) -> Ev {
        at(t_ms, PoolEvent::FeedHole { pool: "p".into(), expected: 4, rev: 6, feed_gaps })
    }

    fn rebuilt(t_ms: u64, feed_gaps: u64, took_ms: u64) -> Ev {
        let (pool, why, rev, entries, replaced) = ("p".into(), "sweep".into(), 9, 3, true);
        at(t_ms, PoolEvent::TableRebuilt { pool, why, rev, entries, replaced, feed_gaps, took_us: took_ms * 1000 })
    }

    fn judge(h: &[Ev]) -> Vec<(&'static str, u64)> {
        at_ms(&feed_gaps_are_counted_and_healed_in_order(h, crate::steady_clocks(2_000)))
    }

    #[test]
    fn every_gap_and_hole_counted_and_healed_after_passes() {
        assert!(judge(&[gap(10, 1), hole(20, 2), rebuilt(60, 2, 30), gap(70, 3), rebuilt(80, 2, 20)]).is_empty());
    }

    #[test]
    fn a_gap_the_completion_feed_was_not_told_of_is_caught() {
        assert_eq!(judge(&[gap(10, 1), gap(20, 1)]), [("P64", 20)]);
        assert_eq!(judge(&[gap(10, 0)]), [("P64", 10)]);
    }

    #[test]
    fn a_heal_that_counts_a_gap_reported_during_its_read_is_caught() {
        // Requested at 40 (80 less 40 ms), the gap at 60 came after.
        assert_eq!(judge(&[gap(10, 1), gap(60, 2), rebuilt(80, 2, 40)]), [("P64", 80)]);
        assert!(judge(&[gap(10, 1), gap(60, 2), rebuilt(80, 1, 40)]).is_empty());
    }
}
