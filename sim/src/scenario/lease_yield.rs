//! A node that yields the lease: `LeaseHandle::stop()` while the node runs on.
//!
//! Every other lease run stops its owner through the node's token (the owner's parent), so
//! `stop()` itself, the owner's own token and a join dropped half-way never ran (round 37's
//! coverage): a `stop()` that returns before the owner ended, aborts it, or is never heard,
//! and a driver or work that listens to its parent rather than its owner, passed every rule. A
//! user meets them whenever a service hands its leadership off (a deploy, a drain, a node
//! leaving the election) without stopping the process. About one node life in six yields (never node n0's, so some node still contends), at a
//! time drawn from the run's seed and the life itself (so every other life keeps its schedule),
//! most of them once they hold the lease; each first reads the owner's end with a health
//! check's short join that gives up, then stops it.
//!
//! The stop rules of the node's own stop judge the yield too (S7: the grant released; S10: the
//! stop heard; S16, S21, S26: the work stopped at once). Here:
//!
//! - **S40**: `stop()` returns only once its owner ended: no event of the owner comes after it,
//!   and it returns an error only for an owner that failed or crashed before.
//! - **S41**: `stop()` returns within [`RETURN_BOUND_TTLS`] TTLs of the node's clock (stretched
//!   by the run's slowest clock rate, frozen time not counted, a node whose clock jumps
//!   meanwhile not judged): a step in flight, the work's stop (`work_stop_timeout`, one TTL) and
//!   the release.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use keel::clock::Clock;
use keel::lease::{Guard, LeaseError, LeaseHandle};
use keel::observe::LeaseEvent;

use super::RunView;
use super::lease::{Rec, rec};
use crate::check::{Span, Violation};
use crate::history::{Event, Who, WorldEv};
use crate::world::NodeCtx;

/// How long `stop()` may take, in TTLs of running time: a renewal in flight (cut at half a
/// renewal period), the work's stop (at most `work_stop_timeout`, a TTL) and the release.
pub(super) const RETURN_BOUND_TTLS: u64 = 2;

/// A yield comes this many TTLs before the fault window's end at the latest, so the stable
/// holder after the heal (S3) is another node's.
const BEFORE_HEAL_TTLS: u64 = 3;

/// The node that never yields: a run whose every node yielded would have no holder after the
/// heal (S3).
const NEVER_YIELDS: usize = 0;

/// The health check's join before the stop gives up after this long (the owner, not asked to
/// stop, does not end in it).
const HEALTH_JOIN: Duration = Duration::from_millis(1);

/// A node life's yield.
pub(super) struct Plan {
    /// How long after the life's start, on its own clock.
    pub after: Duration,
    /// Whether it then waits to hold the lease (a leader handing off), or yields as it is.
    pub as_leader: bool,
}

/// Whether and when a node life yields: about one life in six, half a TTL to four and a half
/// TTLs in; two in three of them as leaders.
pub(super) fn planned(life_us: u64, index: usize, ttl_us: u64) -> Option<Plan> {
    if index == NEVER_YIELDS {
        return None;
    }
    // Drawn from the run's seed, the life and the node, not from the run's generator: no other
    // life's schedule moves.
    let seed = madsim::runtime::Handle::try_current().map_or(0, |h| h.seed());
    let h = splitmix(seed ^ splitmix((life_us / 1000) << 8 | index as u64));
    if !h.is_multiple_of(6) {
        return None;
    }
    let h = h / 6;
    Some(Plan { after: Duration::from_micros(ttl_us / 2 + (h / 3) % (4 * ttl_us)), as_leader: !h.is_multiple_of(3) })
}

/// Wait to hold the lease, as a leader's hand-off does: false if the node stops first or the
/// owner ends.
pub(super) async fn leads(ctx: &NodeCtx, handle: &LeaseHandle) -> bool {
    // Recorded as the application's reads are (S21 judges this `held()` too).
    ctx.record(Rec::HeldAwaited {});
    let held = tokio::select! {
        biased; // fixed poll order: tokio's per-thread select RNG would break replay
        _ = ctx.shutdown.cancelled() => return false,
        r = handle.held() => r,
    };
    ctx.record(Rec::HeldReturned { fence: held.as_ref().map_or(0, |f| *f) });
    held.is_ok()
}

/// SplitMix64's finaliser: a well-spread hash of `x`.
fn splitmix(x: u64) -> u64 {
    let x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Whether a yield due now still comes early enough (see [`BEFORE_HEAL_TTLS`]).
pub(super) fn in_time(ctx: &NodeCtx, window_us: u64, ttl_us: u64) -> bool {
    ctx.history.now_us() + BEFORE_HEAL_TTLS * ttl_us < window_us
}

/// Yield: a health check's join that gives up, then `stop()`; record what the latest work's
/// guard read right after the call, and what the stop returned.
pub(super) async fn yield_lease(ctx: &NodeCtx, mut handle: LeaseHandle, latest: &Mutex<Option<Guard>>) {
    let early = tokio::select! {
        biased; // fixed poll order: tokio's per-thread select RNG would break replay
        r = handle.join() => Some(r),
        _ = ctx.clock.sleep(HEALTH_JOIN) => None,
    };
    ctx.record(Rec::YieldAsked {});
    let r = match early {
        Some(r) => r,
        None => {
            let mut stop = std::pin::pin!(handle.stop());
            let first = futures::poll!(stop.as_mut());
            if let Some(g) = latest.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
                ctx.record(Rec::GuardAtYield { fence: g.fence(), lost: g.is_lost() });
            }
            match first {
                std::task::Poll::Ready(r) => r,
                std::task::Poll::Pending => stop.await,
            }
        }
    };
    // The error's class, not its text: a join error names the runtime's task id, which differs
    // between two runs of one seed in a process (the zoo's replay check).
    let error = match &r {
        Ok(()) => "",
        Err(LeaseError::Stopped) => "stopped",
        Err(LeaseError::Panicked(_)) => "panicked",
        Err(LeaseError::Escalated(_)) => "escalated",
        Err(LeaseError::Store(_)) => "store",
    };
    ctx.record(Rec::YieldReturned { error: error.to_owned() });
    match r {
        Ok(()) => ctx.record(Rec::OwnerExit {}),
        Err(_) => ctx.record(Rec::OwnerCrashed { error: format!("LeaseHandle::stop() failed: {error}") }),
    }
}

/// S40 and S41 over the run's events (see the module's doc). The first 20 violations.
pub fn check(run: &RunView<'_>, ttl_us: u64) -> Vec<Violation> {
    // The bound is on the node's clock: stretched by the slowest rate of the run (one beyond
    // the drift bound too: the owner's own timers run on it), and a node whose clock jumps
    // meanwhile is not judged.
    let slowest = crate::keel_rules::clock_rates(run).fold(1.0f64, f64::min);
    let bound_us = (RETURN_BOUND_TTLS * ttl_us) as f64 / slowest;
    let frozen = |n: Who| -> Vec<Span> { run.timeline.frozen(n).collect() };
    judge(run.events, run.end_us, |n, t| {
        let due = keel_checks::reach(t, bound_us as u64, &frozen(n));
        (!crate::keel_rules::clock_jumped(run, &n, t, due)).then_some(due)
    })
}

#[derive(Default)]
struct Life {
    /// The owner published `failed` or `crashed`.
    failed: bool,
    /// `stop()` asked at, and its bound.
    asked: Option<(u64, u64)>,
    /// `stop()` returned at.
    returned: Option<u64>,
}

/// `due`: by when a stop asked of a node at an instant returns, if that is judged.
fn judge(events: &[Event], end_us: u64, due: impl Fn(Who, u64) -> Option<u64>) -> Vec<Violation> {
    let mut lives: BTreeMap<Who, Life> = BTreeMap::new();
    let mut v = Vec::new();
    let late = |n: Who, (at, by): (u64, u64)| {
        Violation::new(
            "S41",
            by,
            format!(
                "{n}: LeaseHandle::stop() asked at {:.3}s had not returned {RETURN_BOUND_TTLS} TTLs of running time later: the owner does not hear its own stop, or never ends",
                at as f64 / 1e6
            ),
        )
    };
    for e in events {
        let n = e.node;
        let overdue: Vec<Who> =
            lives.iter().filter(|(_, l)| l.asked.is_some_and(|a| a.1 < e.t_us)).map(|(n, _)| *n).collect();
        for o in overdue {
            if let Some(a) = lives.get_mut(&o).and_then(|l| l.asked.take()) {
                v.push(late(o, a));
            }
        }
        if matches!(e.world(), Some(WorldEv::NodeStart {} | WorldEv::NodeCrash {})) {
            lives.remove(&n);
            continue;
        }
        if let Some(ev) = e.lease() {
            let life = lives.entry(n).or_default();
            if let Some(at) = life.returned.take() {
                v.push(Violation::new(
                    "S40",
                    e.t_us,
                    format!(
                        "{n}: LeaseHandle::stop() returned at {:.3}s and its owner still ran: {} {} µs later",
                        at as f64 / 1e6,
                        ev.kind(),
                        e.t_us - at
                    ),
                ));
            }
            if matches!(ev, LeaseEvent::Failed { .. } | LeaseEvent::Crashed { .. }) {
                life.failed = true;
            }
            continue;
        }
        match rec(e) {
            Some(Rec::YieldAsked {}) => {
                lives.entry(n).or_default().asked = due(n, e.t_us).map(|d| (e.t_us, d));
            }
            Some(Rec::YieldReturned { error }) => {
                let life = lives.entry(n).or_default();
                life.asked = None;
                life.returned = Some(e.t_us);
                if !error.is_empty() && !life.failed {
                    v.push(Violation::new(
                        "S40",
                        e.t_us,
                        format!("{n}: LeaseHandle::stop() returned an error ({error}) for an owner that had neither failed nor crashed: a graceful stop returns Ok"),
                    ));
                }
            }
            _ => {}
        }
    }
    v.extend(lives.into_iter().filter_map(|(n, l)| l.asked.filter(|a| a.1 < end_us).map(|a| late(n, a))));
    v.truncate(20);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Ev;
    use crate::scenario::AppEv;

    fn at(t_ms: u64, ev: Ev) -> Event {
        Event { t_us: t_ms * 1000, node: Who::Node(0), ev }
    }

    fn app(t_ms: u64, r: Rec) -> Event {
        at(t_ms, Ev::App(AppEv::Lease(r)))
    }

    fn owner(t_ms: u64, ev: LeaseEvent<'_>) -> Event {
        at(t_ms, Ev::Core(keel::observe::Event::Lease(ev.to_static())))
    }

    fn released(t_ms: u64) -> Event {
        owner(t_ms, LeaseEvent::Released { lease: "l".into(), owner: "n0".into() })
    }

    fn returned(t_ms: u64, error: &str) -> Event {
        app(t_ms, Rec::YieldReturned { error: error.into() })
    }

    fn run(events: &[Event]) -> Vec<&'static str> {
        judge(events, 10_000_000, |_, t| Some(t + 2_000_000)).iter().map(|v| v.invariant).collect()
    }

    #[test]
    fn a_stop_returns_once_its_owner_ended_and_in_time() {
        let asked = app(100, Rec::YieldAsked {});
        assert!(run(&[asked.clone(), released(300), returned(300, "")]).is_empty());
        assert_eq!(run(&[asked.clone(), returned(150, ""), released(300)]), ["S40"], "MC343's early return");
        assert_eq!(run(&[asked.clone(), returned(150, "panicked")]), ["S40"], "MC344's abort");
        let failed =
            owner(50, LeaseEvent::Failed { lease: "l".into(), owner: "n0".into(), attempts: 3, error: "e".into() });
        assert!(run(&[failed, asked.clone(), returned(150, "store")]).is_empty(), "a failed owner's error");
        assert_eq!(run(&[asked.clone(), released(2_500)]), ["S41"], "never returned: judged past its bound");
        assert_eq!(run(std::slice::from_ref(&asked)), ["S41"], "never returned: judged at the end");
        let crash = at(1_000, Ev::World(WorldEv::NodeCrash {}));
        assert!(run(&[asked, crash]).is_empty(), "a crash ends the wait");
    }
}
