//! P13, the node's job table against the store, judged at the instant (blind-spot hunt, round 4,
//! second half, #1); and P53, a sweep waiting for the table woken by its rebuild (below).
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

use std::collections::BTreeMap;

use keel::observe::PoolEvent;
use keel_checks::reach;

use super::RunView;
use crate::check::{Span, Violation};
use crate::history::{Event, Who, WorldEv, plain};

/// How long after a data-losing store restart a table may still hold what the store lost.
pub const AFTER_DATA_LOSS_US: u64 = 5_000_000;

/// **P98**: a pool node's router follows its job map: each node life that runs past its start by
/// more than two op timeouts (`node_started`'s `op_timeout_us`) and a second has opened its
/// watch of the job map (`watch_opened` of a map named `…:jobs`) or reported an open that failed
/// (`watch_open_failed`, P68 judges its retries) by its `node_stopping`. The router is the
/// node's only reader of the job map's feed; a router that never runs (hunt 47 A: the sweep's
/// `run_router` replaced by `()` survived, MC445) leaves every assignment to a remote worker,
/// every completion wait and every subscriber to the sweeps' slices, a sweep period late, and
/// the rules' slack (P1, P10's delivery bound) is a sweep period. A life with a disturbance
/// (`disturbed`: the audits' fault spans) in its first two op timeouts and a second is not judged.
pub fn routers_follow_their_job_map(events: &[Event], disturbed: &[Span]) -> Vec<Violation> {
    nodes_watch_their_map(events, disturbed, ":jobs", "P98", "its router never opened the job map's watch")
}

/// **P104**: a pool node follows its keep-alive map, P98's twin: each node life that runs past
/// its start by more than two op timeouts and a second has opened its watch of the keep-alive
/// map (`watch_opened` of a map named `…:keepalive`) or reported an open that failed by its
/// `node_stopping`. The follower keeps the replica a dispatch picks its worker from; without it
/// (hunt 48 A's survivor 156, `run_keepalive_follower` replaced by `()`, MC454) every dispatch
/// more than a keep-alive interval after the node's last read reads the keep-alive map and the
/// store's time again, the steady-state cost the replica exists to avoid, and every rule holds.
/// A life disturbed early is not judged, as in P98.
pub fn nodes_follow_their_keepalive_map(events: &[Event], disturbed: &[Span]) -> Vec<Violation> {
    nodes_watch_their_map(events, disturbed, ":keepalive", "P104", "it never opened the keep-alive map's watch")
}

/// P98 and P104: each node life that runs past its start by more than two op timeouts and a
/// second has opened (or failed to open) its watch of the map named `…{suffix}`.
fn nodes_watch_their_map(
    events: &[Event],
    disturbed: &[Span],
    suffix: &str,
    rule: &'static str,
    never: &str,
) -> Vec<Violation> {
    // node → (when its life's pool started, its op timeout, whether its router's watch opened or failed)
    let mut lives: BTreeMap<Who, (u64, u64, bool)> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        match e.pool() {
            Some(PoolEvent::NodeStarted { op_timeout_us, .. }) => {
                lives.insert(e.node, (e.t_us, *op_timeout_us, false));
            }
            Some(PoolEvent::WatchOpened { map, .. } | PoolEvent::WatchOpenFailed { map, .. })
                if plain(map).ends_with(suffix) =>
            {
                if let Some(l) = lives.get_mut(&e.node) {
                    l.2 = true;
                }
            }
            Some(PoolEvent::NodeStopping { .. }) => {
                let Some((start, op_us, seen)) = lives.remove(&e.node) else { continue };
                let due = start.saturating_add(op_us.saturating_mul(2)).saturating_add(1_000_000);
                let early = Span { start, end: due };
                if seen || e.t_us <= due || disturbed.iter().any(|d| d.overlap(&early).is_some()) {
                    continue;
                }
                if v.len() < 20 {
                    let what = format!(
                        "{}: its pool ran from {:.3}s to its stop and {never} nor reported an open that failed",
                        e.node,
                        start as f64 / 1e6
                    );
                    v.push(Violation::new(rule, e.t_us, what));
                }
            }
            _ => {}
        }
        if let Some(WorldEv::NodeCrash {}) = e.world() {
            lives.remove(&e.node);
        }
    }
    v
}

/// **P103**: a pool node checks its store's epoch marker: each node life that runs past its
/// start by more than its sweep interval, two op timeouts and a second (`node_started`) has
/// reported a check (`epoch_checked`) or a loss (`data_loss`) by its `node_stopping`. The
/// marker is how a node learns that the store lost the pool's data; P30 judges each node from
/// its first check, so a node that never checks (hunt 48 A's survivor 571: `adopt_epoch`
/// replaced by `Ok(())`, MC453: the start's check and every sweep's) is judged by nothing,
/// reports no loss, and its sweeps never take a loss for a hole in the job table. A life with
/// a disturbance (`disturbed`: the audits' fault spans) in that first window is not judged.
pub fn nodes_check_their_epoch(events: &[Event], disturbed: &[Span]) -> Vec<Violation> {
    // node → (when its life's pool started, the window its first check is due in, whether one came)
    let mut lives: BTreeMap<Who, (u64, u64, bool)> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        match e.pool() {
            Some(PoolEvent::NodeStarted { op_timeout_us, sweep_interval_us, .. }) => {
                let window =
                    sweep_interval_us.saturating_add(op_timeout_us.saturating_mul(2)).saturating_add(1_000_000);
                lives.insert(e.node, (e.t_us, window, false));
            }
            Some(PoolEvent::EpochChecked { .. } | PoolEvent::DataLoss { .. }) => {
                if let Some(l) = lives.get_mut(&e.node) {
                    l.2 = true;
                }
            }
            Some(PoolEvent::NodeStopping { .. }) => {
                let Some((start, window, seen)) = lives.remove(&e.node) else { continue };
                let due = start.saturating_add(window);
                let early = Span { start, end: due };
                if seen || e.t_us <= due || disturbed.iter().any(|d| d.overlap(&early).is_some()) {
                    continue;
                }
                if v.len() < 20 {
                    let what = format!(
                        "{}: its pool ran from {:.3}s to its stop and never checked the store's epoch marker",
                        e.node,
                        start as f64 / 1e6
                    );
                    v.push(Violation::new("P103", e.t_us, what));
                }
            }
            _ => {}
        }
        if let Some(WorldEv::NodeCrash {}) = e.world() {
            lives.remove(&e.node);
        }
    }
    v
}

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

/// **P99**: a sweep's wait for its node's job table times out (`table_awaited`, `timeout`) only
/// when a fault could have held the job map's feed back: a disturbance (`disturbed`: the audits'
/// fault spans; a network latency, from its start to its end) within the wait or the second
/// before it. The router applies each change of the feed to the table as it comes, so in a calm
/// world a sweep finds its table fresh or waits a moment for it; a table that ignores the
/// changes (hunt 47 A: the sweep's `JobTable::apply` replaced by `None` survived, MC446) sends
/// every sweep to an op timeout's wait and a whole snapshot of the job map, the steady-state cost
/// the table exists to avoid, and P65 judged only that the wait lasted its op timeout. A wait that
/// ends after its node's stop began is not judged: the router may have stopped following the feed.
pub fn table_waits_time_out_only_under_faults(events: &[Event], disturbed: &[Span]) -> Vec<Violation> {
    let mut extra: Vec<Span> = Vec::new();
    let mut latency_from: Option<u64> = None;
    for e in events {
        match e.world() {
            Some(WorldEv::NetworkLatency { .. }) => latency_from = latency_from.or(Some(e.t_us)),
            Some(WorldEv::NetworkLatencyEnded { .. }) => {
                if let Some(start) = latency_from.take() {
                    extra.push(Span { start, end: e.t_us + 1 });
                }
            }
            _ => {}
        }
    }
    if let Some(start) = latency_from {
        extra.push(Span { start, end: u64::MAX });
    }
    let mut v = Vec::new();
    // Nodes whose stop began (this life: the world's request, or the pool's `node_stopping`):
    // the router follows the node's shutdown while its workers drain and its sweeps go on, so a
    // sweep's wait may run out on a table the feed no longer moves (pool seed 481).
    let mut stopping: std::collections::BTreeSet<Who> = std::collections::BTreeSet::new();
    for e in events {
        if let Some(WorldEv::NodeStart {} | WorldEv::NodeCrash {}) = e.world() {
            stopping.remove(&e.node);
            continue;
        }
        if matches!(e.pool(), Some(PoolEvent::NodeStopping { .. })) || matches!(e.world(), Some(WorldEv::NodeStop {})) {
            stopping.insert(e.node);
            continue;
        }
        let Some(PoolEvent::TableAwaited { waited_us, outcome, rev, table_rev, .. }) = e.pool() else { continue };
        if plain(outcome) != "timeout" || stopping.contains(&e.node) {
            continue;
        }
        let window = Span { start: e.t_us.saturating_sub(waited_us.saturating_add(1_000_000)), end: e.t_us + 1 };
        if disturbed.iter().chain(&extra).any(|d| d.overlap(&window).is_some()) {
            continue;
        }
        if v.len() < 20 {
            let what = format!(
                "{}: a sweep's wait for its job table at revision {rev} timed out after {:.3}s with the table at {table_rev}, and no fault held the feed back",
                e.node,
                *waited_us as f64 / 1e6
            );
            v.push(Violation::new("P99", e.t_us, what));
        }
    }
    v
}

/// **P109**: a sweep finds its node's job table out of step (`table_awaited`, `hole`) only after
/// a cause its node reported: a hole in the job map's feed (`feed_hole`), a gap the watch
/// reported (`router_gap`), a data loss of the store (`data_loss`), or a fresh life whose table
/// was not built yet, or a store that went back (a sweep reading a revision below the rebuild's,
/// a store crash that lost data); each `job_table_rebuilt` puts the table back in step (a snapshot the table
/// refuses is one it is already past, in step). A table marked out of step for no cause (hunt 47
/// A's survivor 994: the sweep's data-loss test turned round, MC462) sends every sweep to a whole
/// snapshot of the job map, and P99 judges only waits that time out. Per node life and pool; a
/// run whose store lost data is not judged.
pub fn table_holes_have_a_cause(events: &[Event]) -> Vec<Violation> {
    // (node, pool) → the revision of its table's last rebuild and whether a cause was reported
    // since (no entry: no rebuild yet in this life, the table starts out of step)
    let mut tables: BTreeMap<(Who, &str), (u64, bool)> = BTreeMap::new();
    let mut v = Vec::new();
    // A store that lost its data: each node finds out on its own paths (the router's gap, the
    // sweep's epoch, a revision gone back), some of which mark the table silently once another
    // reported the loss (poolloss seeds 2, 15, 36, 66, 86). Such runs are not judged.
    let lost = |e: &Event| {
        matches!(e.world(), Some(WorldEv::StoreCrash { data_loss: true }))
            || matches!(e.pool(), Some(PoolEvent::DataLoss { .. }))
    };
    if events.iter().any(lost) {
        return v;
    }
    for e in events {
        if let Some(WorldEv::NodeStart {} | WorldEv::NodeCrash {}) = e.world() {
            tables.retain(|(n, _), _| *n != e.node);
            continue;
        }
        match e.pool() {
            Some(
                PoolEvent::FeedHole { pool, .. } | PoolEvent::RouterGap { pool, .. } | PoolEvent::DataLoss { pool, .. },
            ) => {
                if let Some(t) = tables.get_mut(&(e.node, plain(pool))) {
                    t.1 = true;
                }
            }
            Some(PoolEvent::TableRebuilt { pool, rev, .. }) => {
                tables.insert((e.node, plain(pool)), (*rev, false));
            }
            // A sweep that read a revision below the rebuild's read a store that went back (a
            // data loss it found first: poolloss seed 2).
            Some(PoolEvent::TableAwaited { pool, outcome, rev, .. })
                if plain(outcome) == "hole"
                    && tables.get(&(e.node, plain(pool))).is_some_and(|&(built, caused)| !caused && *rev >= built)
                    && v.len() < 20 =>
            {
                let what = format!(
                    "{}: a sweep found its job table out of step (waiting for revision {rev}) with no feed hole, gap or data loss reported since its last rebuild",
                    e.node
                );
                v.push(Violation::new("P109", e.t_us, what));
            }
            _ => {}
        }
    }
    v
}

/// **P65**: a sweep that gives up waiting for its node's job table (`table_awaited`, `timeout`)
/// waited its whole op timeout (the pool's `op_timeout_us`, announced at `node_started`), on the
/// node's own clock as keel measures it, 1 ms of slack. A wait cut short sends every sweep whose
/// router lags its slice's revision by one change to a whole snapshot of the job map: the
/// steady-state cost the table exists to avoid, and no other rule sees it (cargo-mutants survivor
/// of `await_table`, round 32: a deadline of `began - op_timeout`; MC279). A node's restart
/// announces its timing again.
pub fn table_waits_last_their_timeout(events: &[Event]) -> Vec<Violation> {
    // (node, pool) → the op timeout its node announced
    let mut timeouts: BTreeMap<(Who, &str), u64> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        match e.pool() {
            Some(PoolEvent::NodeStarted { pool, op_timeout_us, .. }) => {
                timeouts.insert((e.node, plain(pool)), *op_timeout_us);
            }
            Some(PoolEvent::TableAwaited { pool, rev, waited_us, outcome, .. }) if plain(outcome) == "timeout" => {
                let Some(&bound) = timeouts.get(&(e.node, plain(pool))) else { continue };
                if waited_us.saturating_add(TIMEOUT_WAIT_SLACK_US) < bound && v.len() < 20 {
                    v.push(Violation::new(
                        "P65",
                        e.t_us,
                        format!(
                            "{}: a sweep gave up waiting for pool {}'s table to reach revision {rev} after {waited_us} µs, short of its op timeout of {bound} µs: it reads a whole snapshot of the job map instead",
                            e.node,
                            plain(pool),
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    v
}

/// How much shorter than its op timeout a timed-out table wait may be reported (µs rounding).
const TIMEOUT_WAIT_SLACK_US: u64 = 1_000;

/// Running time a sweep waiting for its table has to wake once a rebuild made the table fresh.
const REBUILT_WAKES_US: u64 = 2_000;

/// **P53**: a sweep waiting for its node's job table (`table_awaited`) is woken by a rebuild of
/// the table that makes it fresh (`job_table_rebuilt`, replaced, at a revision at least the one
/// awaited), within 2 ms of running time, frozen time not counted. A wait that ran to its op
/// timeout past such a rebuild missed the wake-up: the sweep then reads a whole snapshot of its
/// own, and its view's halves end up an op timeout apart (blind-spot hunt, round 23, A #10,
/// MC221: caught once in 300 seeds by P16, through a live worker made to look stale).
///
/// Only rebuilds surely inside the wait are judged: later than its end less 90 % of its length
/// (the node's clock runs within 10 % of the global one while in its drift bound); a node whose
/// clock left its bound during the wait is not judged.
pub fn sweeps_wake_on_rebuilt_tables(run: &RunView<'_>) -> Vec<Violation> {
    let drift = super::drift::out_of_bound(run.events, run.end_us);
    // (node, pool) → the rebuilds that replaced its table: (when, revision)
    let mut rebuilt: BTreeMap<(Who, &str), Vec<(u64, u64)>> = BTreeMap::new();
    let mut v = Vec::new();
    for e in run.events {
        if let Some(WorldEv::NodeCrash {} | WorldEv::NodeStart {}) = e.world() {
            rebuilt.retain(|k, _| k.0 != e.node);
        }
        match e.pool() {
            Some(PoolEvent::TableRebuilt { pool, rev, replaced: true, .. }) => {
                rebuilt.entry((e.node, plain(pool))).or_default().push((e.t_us, *rev));
            }
            Some(PoolEvent::TableAwaited { pool, rev, waited_us, outcome, table_rev })
                if plain(outcome) == "timeout" =>
            {
                // The table had applied the awaited revision when the wait timed out: the change
                // that got it there was applied before the timer fired (nothing runs between the
                // wake and the report), and its wake-up was lost (round 27 A #1, MC262).
                if table_rev >= rev && v.len() < 20 {
                    v.push(Violation::new(
                        "P53",
                        e.t_us,
                        format!(
                            "{}: a sweep waited {} ms for pool {}'s table to reach revision {rev} and gave up at its op timeout, though the table had applied revision {table_rev}: the change that got it there did not wake it",
                            e.node,
                            waited_us / 1000,
                            plain(pool),
                        ),
                    ));
                    continue;
                }
                let since = e.t_us.saturating_sub(waited_us * 9 / 10);
                let wait = Span { start: e.t_us.saturating_sub(*waited_us * 2), end: e.t_us + 1 };
                if drift.get(&e.node).into_iter().flatten().any(|s| s.overlap(&wait).is_some()) {
                    continue;
                }
                let frozen: Vec<Span> = run.timeline.frozen(e.node).collect();
                let missed = rebuilt
                    .get(&(e.node, plain(pool)))
                    .into_iter()
                    .flatten()
                    .find(|&&(t, r)| t > since && r >= *rev && reach(t, REBUILT_WAKES_US, &frozen) < e.t_us);
                if let Some(&(t, r)) = missed
                    && v.len() < 20
                {
                    v.push(Violation::new(
                        "P53",
                        e.t_us,
                        format!(
                            "{}: a sweep waited {} ms for pool {}'s table to reach revision {rev} and gave up at its op timeout, though the table was rebuilt at revision {r} {} ms before: the rebuild did not wake it",
                            e.node,
                            waited_us / 1000,
                            plain(pool),
                            (e.t_us - t) / 1000
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
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
    /// P99: a table wait that times out with no fault near it fires; one with a disturbance in
    /// it or in the second before it does not, nor one that ends `fresh`.
    #[test]
    fn a_table_wait_that_times_out_in_a_calm_world_fires_p99() {
        use crate::history::Ev;
        let awaited = |t_ms: u64, outcome: &str| Event {
            t_us: t_ms * 1000,
            node: Who::Node(0),
            ev: Ev::Core(keel::observe::Event::Pool(
                PoolEvent::TableAwaited {
                    pool: "sim".into(),
                    rev: 9,
                    waited_us: 250_000,
                    outcome: outcome.into(),
                    table_rev: 3,
                }
                .to_static(),
            )),
        };
        let p99 = |events: &[Event], disturbed: &[Span]| {
            table_waits_time_out_only_under_faults(events, disturbed)
                .iter()
                .map(|v| (v.invariant, v.t_us))
                .collect::<Vec<_>>()
        };
        assert_eq!(p99(&[awaited(5_000, "timeout")], &[]), [("P99", 5_000_000)]);
        assert_eq!(p99(&[awaited(5_000, "fresh")], &[]), []);
        assert_eq!(
            p99(&[awaited(5_000, "timeout")], &[Span { start: 3_900_000, end: 4_000_000 }]),
            [],
            "a fault just before"
        );
        assert_eq!(p99(&[awaited(5_000, "timeout")], &[Span { start: 0, end: 3_000_000 }]), [("P99", 5_000_000)]);
        let stopping = Event {
            t_us: 4_900_000,
            node: Who::Node(0),
            ev: Ev::Core(keel::observe::Event::Pool(
                PoolEvent::NodeStopping { pool: "sim".into(), node: "n0".into() }.to_static(),
            )),
        };
        assert_eq!(p99(&[stopping, awaited(5_000, "timeout")], &[]), [], "its node's stop began");
    }

    /// P109: a hole found after a rebuild with no cause since fires; one after a feed hole, a
    /// gap or a data loss, or before the life's first rebuild, does not.
    #[test]
    fn a_hole_with_no_cause_since_the_last_rebuild_fires_p109() {
        use crate::history::Ev;
        let ev = |t_ms: u64, e: PoolEvent<'_>| Event {
            t_us: t_ms * 1000,
            node: Who::Node(0),
            ev: Ev::Core(keel::observe::Event::Pool(e.to_static())),
        };
        let hole = |t_ms| {
            ev(
                t_ms,
                PoolEvent::TableAwaited {
                    pool: "sim".into(),
                    rev: 9,
                    waited_us: 0,
                    outcome: "hole".into(),
                    table_rev: 0,
                },
            )
        };
        let rebuilt = |t_ms| {
            let e = PoolEvent::TableRebuilt {
                pool: "sim".into(),
                why: "sweep".into(),
                rev: 5,
                entries: 1,
                replaced: true,
                feed_gaps: 0,
                took_us: 1,
            };
            ev(t_ms, e)
        };
        let gap = |t_ms| ev(t_ms, PoolEvent::RouterGap { pool: "sim".into(), feed_gaps: 1 });
        let p109 = |events: &[Event]| {
            table_holes_have_a_cause(events).iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>()
        };
        assert_eq!(p109(&[hole(10)]), [], "before the life's first rebuild");
        assert_eq!(p109(&[rebuilt(10), hole(20)]), [("P109", 20_000)]);
        assert_eq!(p109(&[rebuilt(10), gap(15), hole(20)]), []);
        assert_eq!(p109(&[rebuilt(10), gap(15), rebuilt(18), hole(20)]), [("P109", 20_000)]);
    }

    /// P98: a node life whose router never opened the job map's watch fires at its stop; an
    /// open (or a failed one) of the job map, a stop within its first op timeouts, or a
    /// disturbance early in its life does not; the keep-alive map's watch does not count.
    #[test]
    fn a_node_whose_router_never_watched_its_job_map_fires_p98() {
        use crate::history::Ev;
        let ev = |t_ms: u64, e: PoolEvent<'_>| Event {
            t_us: t_ms * 1000,
            node: Who::Node(0),
            ev: Ev::Core(keel::observe::Event::Pool(e.to_static())),
        };
        let started = ev(
            0,
            PoolEvent::NodeStarted {
                pool: "sim".into(),
                node: "n0".into(),
                ack_grace_us: 0,
                sweep_interval_us: 0,
                cleanup_lock_ttl_us: 0,
                op_timeout_us: 250_000,
                dedup_window_us: 0,
                drift_margin_us: 0,
            },
        );
        let opened =
            |map: &str| ev(10, PoolEvent::WatchOpened { pool: "sim".into(), map: map.into(), tries: 1, took_us: 1 });
        let stopping = |t_ms| ev(t_ms, PoolEvent::NodeStopping { pool: "sim".into(), node: "n0".into() });
        let p98 = |events: &[Event], disturbed: &[Span]| {
            routers_follow_their_job_map(events, disturbed).iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>()
        };
        assert_eq!(p98(&[started.clone(), stopping(5_000)], &[]), [("P98", 5_000_000)]);
        assert_eq!(
            p98(&[started.clone(), opened("keel:pool:sim:keepalive"), stopping(5_000)], &[]),
            [("P98", 5_000_000)]
        );
        assert_eq!(p98(&[started.clone(), opened("keel:pool:sim:jobs"), stopping(5_000)], &[]), []);
        assert_eq!(p98(&[started.clone(), stopping(1_200)], &[]), [], "stopped within its first op timeouts");
        assert_eq!(p98(&[started.clone(), stopping(5_000)], &[Span { start: 100_000, end: 200_000 }]), [], "disturbed");
        let p104 = |events: &[Event]| {
            nodes_follow_their_keepalive_map(events, &[]).iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>()
        };
        assert_eq!(p104(&[started.clone(), opened("keel:pool:sim:jobs"), stopping(5_000)]), [("P104", 5_000_000)]);
        assert_eq!(p104(&[started, opened("keel:pool:sim:keepalive"), stopping(5_000)]), []);
    }

    /// P103: a node life that never checked its epoch marker fires at its stop; a check, a
    /// reported loss, a stop within its first sweep and op timeouts, or a disturbance early in
    /// its life does not.
    #[test]
    fn a_node_that_never_checked_its_epoch_fires_p103() {
        use crate::history::Ev;
        let ev = |t_ms: u64, e: PoolEvent<'_>| Event {
            t_us: t_ms * 1000,
            node: Who::Node(0),
            ev: Ev::Core(keel::observe::Event::Pool(e.to_static())),
        };
        let started = ev(
            0,
            PoolEvent::NodeStarted {
                pool: "sim".into(),
                node: "n0".into(),
                ack_grace_us: 0,
                sweep_interval_us: 500_000,
                cleanup_lock_ttl_us: 0,
                op_timeout_us: 250_000,
                dedup_window_us: 0,
                drift_margin_us: 0,
            },
        );
        let checked = ev(600, PoolEvent::EpochChecked { pool: "sim".into(), took_us: 1 });
        let stopping = |t_ms| ev(t_ms, PoolEvent::NodeStopping { pool: "sim".into(), node: "n0".into() });
        let p103 = |events: &[Event], disturbed: &[Span]| {
            nodes_check_their_epoch(events, disturbed).iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>()
        };
        assert_eq!(p103(&[started.clone(), stopping(5_000)], &[]), [("P103", 5_000_000)]);
        assert_eq!(p103(&[started.clone(), checked, stopping(5_000)], &[]), []);
        assert_eq!(p103(&[started.clone(), stopping(1_900)], &[]), [], "stopped within its first sweep");
        assert_eq!(p103(&[started, stopping(5_000)], &[Span { start: 100_000, end: 200_000 }]), [], "disturbed");
    }

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
    fn a_sweep_left_waiting_past_a_rebuild_of_its_table_fires_p53() {
        let p53 = |events: &[Event]| judge(events, 0, 60_000_000, sweeps_wake_on_rebuilt_tables);
        let rebuilt = |t_ms, rev| {
            let (why, feed_gaps, took_us) = ("gap".into(), 1, 2_000);
            pool(
                t_ms,
                PoolEvent::TableRebuilt { pool: "p".into(), why, rev, entries: 3, replaced: true, feed_gaps, took_us },
            )
        };
        let gave_up = |t_ms, rev| {
            pool(
                t_ms,
                PoolEvent::TableAwaited {
                    pool: "p".into(),
                    rev,
                    waited_us: 250_000,
                    outcome: "timeout".into(),
                    table_rev: 0,
                },
            )
        };
        // Rebuilt at revision 10 at 1.1 s; the sweep waiting for 9 gave up at 1.25 s (MC221).
        let v = p53(&[rebuilt(1_100, 10), gave_up(1_250, 9)]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!((v[0].invariant, v[0].t_us), ("P53", 1_250_000));
        // A rebuild short of the revision awaited, one within the 2 ms of the end, and one
        // before the wait began wake nothing.
        assert!(p53(&[rebuilt(1_100, 8), gave_up(1_250, 9)]).is_empty());
        assert!(p53(&[rebuilt(1_249, 10), gave_up(1_250, 9)]).is_empty());
        assert!(p53(&[rebuilt(990, 10), gave_up(1_250, 9)]).is_empty());
        // A change applied during the wait that reached the revision and woke nothing (MC262):
        // the table reports it at the timeout.
        let applied = |table_rev| {
            let e = PoolEvent::TableAwaited {
                pool: "p".into(),
                rev: 9,
                waited_us: 250_000,
                outcome: "timeout".into(),
                table_rev,
            };
            pool(1_250, e)
        };
        let v = p53(&[applied(9)]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].detail.contains("had applied revision 9"), "{}", v[0].detail);
        assert!(p53(&[applied(8)]).is_empty());
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
