//! P30: a pool node reports each store data loss it lives through, and only those, judged at
//! each check of the epoch marker and at each report.
//!
//! The pool keeps an epoch marker in the store: a store that lost its data (a restart without
//! persistence) lost the marker too, and a node that reads a missing or changed marker reports
//! the loss (`data_loss`) before it trusts its table again. Each successful check of the marker
//! says when its read began (`epoch_checked`: `took_us` of the node's clock before). From its
//! first check the node holds a marker; a store data loss (the world's fact) while it holds one
//! is owed a report, and the node's first check whose read surely began after the loss (the
//! read's whole duration, stretched by the slowest clock allowed, plus the slack of running
//! time, frozen time not counted, fits between the loss and the check) must come after that
//! report: a node that never writes the marker (MC114) reads the missing marker it always held
//! and reports nothing. A node that has not reached the store since the loss (cut off, the store
//! still down) is not judged until it has. A report itself clears what is owed and the marker
//! the node holds (its next check adopts the new one), and it needs a loss since the node's last
//! report or its start: one without any is a false alarm (a marker a node writes again after a
//! loss taken for another loss, a report repeated when writing the new marker failed). The node's
//! start, crash or stop ends the judging of what it held.

use std::collections::BTreeMap;

use keel::observe::PoolEvent;

use crate::cadence::{Clocks, Due, Verdicts};
use crate::rules::reach;
use crate::{Entry, Fact, Span, Violation, plain};

/// What one pool of one node holds and owes.
#[derive(Clone, Copy, Default)]
struct Pool {
    /// A store data loss since the pool's last report (or the node's start).
    lost: bool,
    /// The node holds a marker: a check since its last report.
    holds: bool,
    /// The first loss since it holds its marker, not reported yet.
    owed: Option<u64>,
}

/// One node since its start: whether the store lost its data since, and its pools.
#[derive(Default)]
struct Node<'a> {
    lost: bool,
    pools: BTreeMap<&'a str, Pool>,
}

/// P30 over keel's pool events and the world's facts: see the module's doc; `clocks` as for
/// [`crate::lease_attempts_on_time`] (the late slack is the slack of a read's duration). The
/// first 20 violations.
pub fn pool_data_losses_reported<E: Entry>(
    events: &[E],
    clocks: Clocks<impl Fn(&E::Node) -> Vec<Span>, impl Fn(&E::Node, u64, u64) -> bool>,
) -> Vec<Violation> {
    let mut verdicts = Verdicts::new(clocks);
    let mut nodes: BTreeMap<E::Node, Node<'_>> = BTreeMap::new();
    // A node first seen without its start (a history that begins after it): any loss so far
    // may be one it reports.
    let mut any_loss = false;
    // The last store data loss: one during a report's read may be unseen by it.
    let mut last_loss: Option<u64> = None;
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        match e.fact() {
            Some(Fact::NodeStart | Fact::NodeCrash) => {
                nodes.insert(node.clone(), Node::default());
                continue;
            }
            Some(Fact::StoreLostData) => {
                any_loss = true;
                last_loss = Some(t);
                for n in nodes.values_mut() {
                    n.lost = true;
                    for p in n.pools.values_mut() {
                        p.lost = true;
                        if p.holds && p.owed.is_none() {
                            p.owed = Some(t);
                        }
                    }
                }
                continue;
            }
            Some(Fact::StoreUp) | None => {}
        }
        let Some(ev) = e.pool() else { continue };
        let n = nodes.entry(node.clone()).or_insert_with(|| Node { lost: any_loss, pools: BTreeMap::new() });
        let (pool, took_us) = match ev {
            PoolEvent::NodeStopped { .. } => {
                n.pools.clear();
                continue;
            }
            PoolEvent::EpochChecked { pool, took_us } => (plain(pool), Ok(*took_us)),
            PoolEvent::DataLoss { pool, took_us, .. } => (plain(pool), Err(*took_us)),
            _ => continue,
        };
        let lost = n.lost;
        let p = n.pools.entry(pool).or_insert(Pool { lost, ..Pool::default() });
        // Whether a read that took `took_us` and ended now surely began after `at`: its whole
        // duration, stretched by the slowest clock, plus the slack, fits between them.
        let pace = verdicts.pace;
        let ran = |took_us: u64| pace.stretch(took_us).saturating_add(pace.late_slack_us);
        let began_after = |at: u64, took_us: u64, holes| reach(at, ran(took_us), holes) < t;
        let took_us = match took_us {
            Ok(took_us) => took_us,
            Err(read_us) => {
                if !p.lost && verdicts.v.len() < 20 {
                    verdicts.v.push(Violation::new(
                        "P30",
                        t,
                        format!(
                            "{node}: pool {pool}: a data loss reported, but the store lost no data since the node's last report or its start"
                        ),
                    ));
                }
                // A loss while the report's read was under way may be one it did not see (it
                // read a marker written after an earlier loss): the next report may name it
                // (poolloss seed 2998: a second restart 0.8 ms before the first one's report).
                let unseen = last_loss.is_some_and(|l| !began_after(l, read_us, verdicts.holes(node)));
                *p = Pool { lost: unseen, ..Pool::default() };
                continue;
            }
        };
        if let Some(lost_at) = p.owed
            && began_after(lost_at, took_us, verdicts.holes(node))
        {
            let d =
                Due { after: "a store data loss", latest: lost_at, wait_max_us: 0, earliest: lost_at, wait_min_us: 0 };
            verdicts.overdue("P30", node, &d, t, || {
                format!(
                    "{node}: pool {pool}: the store lost its data at {:.3}s while the node held an epoch marker, and its check of the marker that began after it ({took_us} µs before {:.3}s) reported no data loss",
                    lost_at as f64 / 1e6,
                    t as f64 / 1e6,
                )
            });
            p.owed = None;
        }
        p.holds = true;
    }
    verdicts.v
}

#[cfg(test)]
mod tests {
    use keel::observe::Event;

    use super::*;
    use crate::test_entry::E as Ev;

    fn at(t_ms: u64, node: &'static str, e: PoolEvent<'_>) -> Ev {
        Ev(t_ms * 1000, node, Some(Event::Pool(e.to_static())), None)
    }

    fn checked(t_ms: u64, node: &'static str, took_ms: u64) -> Ev {
        at(t_ms, node, PoolEvent::EpochChecked { pool: "p".into(), took_us: took_ms * 1000 })
    }

    fn reported(t_ms: u64, node: &'static str) -> Ev {
        reported_after(t_ms, node, 0)
    }

    /// A report whose read took `took_ms`.
    fn reported_after(t_ms: u64, node: &'static str, took_ms: u64) -> Ev {
        let new_epoch = None;
        at(
            t_ms,
            node,
            PoolEvent::DataLoss { pool: "p".into(), old_epoch: "n1.1".into(), new_epoch, took_us: took_ms * 1000 },
        )
    }

    fn fact(t_ms: u64, node: &'static str, f: Fact) -> Ev {
        Ev(t_ms * 1000, node, None, Some(f))
    }

    fn judge(h: &[Ev]) -> Vec<(&'static str, u64)> {
        crate::test_entry::at_ms(&pool_data_losses_reported(h, crate::steady_clocks(2_000)))
    }

    /// A loss reported before the node's first check after it passes, on every node; a check
    /// after it with no report (MC114) is P30 there, once; a check whose read may have begun
    /// before the loss is not judged yet.
    #[test]
    fn a_loss_reported_at_the_next_check_passes_and_a_check_without_a_report_fires_p30() {
        let loss = || fact(500, "store", Fact::StoreLostData);
        let ok = [
            checked(100, "n1", 5),
            checked(120, "n2", 5),
            loss(),
            reported(2_000, "n1"),
            checked(2_010, "n1", 20),
            reported(2_100, "n2"),
            checked(2_110, "n2", 20),
        ];
        assert_eq!(judge(&ok), []);
        let missed = [checked(100, "n1", 5), loss(), checked(2_000, "n1", 5), checked(2_150, "n1", 5)];
        assert_eq!(judge(&missed), [("P30", 2_000)]);
        let began_before = [checked(100, "n1", 5), loss(), checked(501, "n1", 5), reported(700, "n1")];
        assert_eq!(judge(&began_before), []);
        // A node that held no marker (it never checked one) is owed nothing.
        assert_eq!(judge(&[loss(), checked(2_000, "n1", 5)]), []);
        // Its restart ends what it held.
        let restarted = [checked(100, "n1", 5), loss(), fact(600, "n1", Fact::NodeStart), checked(2_000, "n1", 5)];
        assert_eq!(judge(&restarted), []);
    }

    /// A report needs a loss since the node's last report or its start: a second report of one
    /// loss, or one with none, is P30 at the report.
    #[test]
    fn a_report_without_a_loss_since_the_last_fires_p30() {
        let loss = fact(500, "store", Fact::StoreLostData);
        let twice = [
            fact(0, "n1", Fact::NodeStart),
            checked(100, "n1", 5),
            loss.clone(),
            reported(900, "n1"),
            reported(1_100, "n1"),
        ];
        assert_eq!(judge(&twice), [("P30", 1_100)]);
        assert_eq!(
            judge(&[fact(0, "n1", Fact::NodeStart), checked(100, "n1", 5), reported(900, "n1")]),
            [("P30", 900)]
        );
        // A second loss while the first one's report was being read may be unseen by it: the
        // next report may name it (poolloss seed 2998); one before the read began was seen.
        let second = |at_ms: u64| {
            [
                fact(0, "n1", Fact::NodeStart),
                checked(100, "n1", 5),
                loss.clone(),
                fact(at_ms, "store", Fact::StoreLostData),
                reported_after(900, "n1", 10),
                reported(1_500, "n1"),
            ]
        };
        assert_eq!(judge(&second(895)), []);
        assert_eq!(judge(&second(700)), [("P30", 1_500)]);
        // A loss before the node's start is not its to report.
        let before_start = [loss, fact(600, "n1", Fact::NodeStart), checked(700, "n1", 5), reported(900, "n1")];
        assert_eq!(judge(&before_start), [("P30", 900)]);
    }
}
