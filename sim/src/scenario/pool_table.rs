//! P13, the node's job table against the store, judged at the instant (blind-spot hunt, round 4,
//! second half, #1).
//!
//! Each sweep compares one slice of the job map with the node's table (kept from the map's
//! change feed) and takes in what differs: entries the table did not hold as the store did are
//! `found`, and at a pass's end entries no slice of the pass saw are `dropped`. keel reports a
//! slice that changed the table (`table_reconciled`). Every write keel makes is a change on the
//! feed, and a hole in the feed (a gap, a missed revision, the store's data loss) rebuilds the
//! table from a snapshot before a slice is compared with it, so in a world where nothing
//! writes the store behind keel's back nothing is ever found or dropped: any report is a table
//! that diverged from the store, or a reconcile that mistakes keel's own writes for foreign ones.
//! A table that drops a key it holds rightly removes a record, a pending entry or a tombstone
//! from every sweep's view until the next pass finds it again; P1 and P5 only see the delay
//! when it exceeds their slack.
//!
//! Excused: a store restart that lost or rolled its data back (`store_crash` with `data_loss`),
//! from the crash until [`AFTER_DATA_LOSS_US`] after its restart: writes the feed delivered are
//! gone from the store without a change saying so, until the node's feed reports its gap and the
//! table is rebuilt.

use keel::observe::PoolEvent;

use super::RunView;
use crate::check::{Span, Violation};
use crate::history::{Event, WorldEv, plain};

/// How long after a data-losing store restart a table may still hold what the store lost.
pub const AFTER_DATA_LOSS_US: u64 = 5_000_000;

/// P13 (see the module's doc).
pub fn table_matches_store(run: &RunView<'_>) -> Vec<Violation> {
    let events = run.events;
    let losses = data_losses(events, run.end_us);
    let mut v = Vec::new();
    for e in events {
        let Some(PoolEvent::TableReconciled { pool, found, dropped }) = e.pool() else { continue };
        let at = Span { start: e.t_us, end: e.t_us + 1 };
        if losses.iter().any(|l| l.overlap(&at).is_some()) {
            continue;
        }
        v.push(Violation::new(
            "P13",
            e.t_us,
            format!(
                "{}: the job table of pool {} differed from the store with nothing written behind keel's back: {found} entries found, {dropped} dropped",
                e.node,
                plain(pool)
            ),
        ));
    }
    v.truncate(20);
    v
}

/// Spans from each data-losing store crash until [`AFTER_DATA_LOSS_US`] after its restart.
fn data_losses(events: &[Event], end_us: u64) -> Vec<Span> {
    let mut out = Vec::new();
    let mut lost_at: Option<u64> = None;
    for e in events {
        match e.world() {
            Some(WorldEv::StoreCrash { data_loss: true }) => lost_at = Some(lost_at.unwrap_or(e.t_us)),
            Some(WorldEv::StoreRestart {}) => {
                if let Some(start) = lost_at.take() {
                    out.push(Span { start, end: e.t_us + AFTER_DATA_LOSS_US });
                }
            }
            _ => {}
        }
    }
    out.extend(lost_at.map(|start| Span { start, end: end_us + 1 }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Who;
    use crate::scenario::test_history::{at, judge, pool};

    fn p13(events: &[Event]) -> Vec<Violation> {
        judge(events, 0, 60_000_000, table_matches_store)
    }

    fn reconciled(t_ms: u64, found: usize, dropped: usize) -> Event {
        pool(t_ms, PoolEvent::TableReconciled { pool: "p".into(), found, dropped })
    }

    #[test]
    fn a_table_that_differs_from_the_store_fires_p13_at_the_slice() {
        // A pass that dropped keys no write removed (MC38), and the next that found them again.
        let v = p13(&[reconciled(1_000, 0, 12), reconciled(1_150, 5, 0)]);
        assert_eq!(v.len(), 2, "{v:?}");
        assert_eq!((v[0].invariant, v[0].t_us), ("P13", 1_000_000));
        assert!(v[0].detail.contains("0 entries found, 12 dropped"), "{}", v[0].detail);
        assert_eq!(v[1].t_us, 1_150_000);
        // Nothing reported: nothing differed.
        assert!(p13(&[]).is_empty());
    }

    #[test]
    fn a_store_that_lost_data_excuses_the_table_until_it_is_rebuilt() {
        let lost = |data_loss| {
            vec![
                at(500, Who::Store, WorldEv::StoreCrash { data_loss }),
                at(800, Who::Store, WorldEv::StoreRestart {}),
                reconciled(1_000, 0, 3),
                reconciled(6_000, 1, 0),
            ]
        };
        let v = p13(&lost(true));
        assert_eq!(v.len(), 1, "excused until 5 s after the restart: {v:?}");
        assert_eq!(v[0].t_us, 6_000_000);
        // A restart that kept the data excuses nothing.
        assert_eq!(p13(&lost(false)).len(), 2);
        // A store still down at the end.
        assert!(
            p13(&[at(500, Who::Store, WorldEv::StoreCrash { data_loss: true }), reconciled(9_000, 1, 1)]).is_empty()
        );
    }
}
