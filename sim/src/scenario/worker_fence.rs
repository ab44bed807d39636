//! P7, the pool's self-fence judged at the instant: a worker goes on with a run, unfenced, only
//! while its keep-alive is live at the store.
//!
//! A cleaner judges a worker dead once the store's time passes its keep-alive's value plus the
//! worker TTL; the worker fences itself at `sent + worker_ttl − drift_margin` of its last
//! confirmed beat, where `sent` comes before the beat's read of store time, so with a clock
//! within the drift bound its belief ends first. A worker that believes longer (a fence timed
//! from the reply, a beat that hangs with nothing cutting it) breaks P2 only if a cleaner
//! requeues its job and another worker starts it inside the extra window; P7 sees it at once.
//!
//! The keep-alives counted are those the store *applied* (`ServerEv::KeepaliveWritten`, a write
//! whose reply was lost included), not every one a worker sent: a worker may count a beat as
//! confirmed only if its value landed, and a cleaner judges the value the store holds. Judged
//! from the values sent (until 2026-12-02), a worker that took a refused beat for a
//! confirmation kept itself live in the checker's eyes with the very beat the store refused
//! (blind-spot hunt, round 4: the in-doubt adoption that extends the fence, mutant MC35).

use std::collections::BTreeMap;

use keel::observe::PoolEvent;
use keel::pool::decode;

use super::RunView;
use crate::check::{Span, Violation};
use crate::history::{Event, ServerEv, Who, WorldEv, plain};

/// A run a worker believes it may go on with: from its handler's start until the handler
/// returns or the worker fences itself (or finds itself dead, or its node crashes), whichever
/// comes first. After the fence the handler's own lag in stopping is P2's hand-off.
struct Belief<'a> {
    worker: &'a str,
    job: &'a str,
    node: Who,
    span: Span,
}

/// A run: (worker, job, attempt).
type Run<'a> = (&'a str, &'a str, u64);

/// Runs going on: run → (node, start).
type Open<'a> = BTreeMap<Run<'a>, (Who, u64)>;

/// Close, at `t`, every open run that `hit` picks.
fn close_where<'a>(open: &mut Open<'a>, done: &mut Vec<Belief<'a>>, t: u64, hit: &dyn Fn(&Run<'_>, Who) -> bool) {
    open.retain(|k, (node, since)| {
        if hit(k, *node) {
            done.push(Belief { worker: k.0, job: k.1, node: *node, span: Span { start: *since, end: t } });
            return false;
        }
        true
    });
}

/// The keep-alives of each worker the store applied: worker → (store ms, TTL ms).
type Beats<'a> = BTreeMap<&'a str, Vec<(u64, u64)>>;

/// Every run's belief span and the keep-alives of each worker the store applied (a value
/// written without a TTL, which keel's workers never write, is judged by the TTL the worker
/// sends its beats with).
fn beliefs<'a>(events: &'a [Event], end_us: u64) -> (Vec<Belief<'a>>, Beats<'a>) {
    let mut open: Open<'a> = BTreeMap::new();
    let mut done = Vec::new();
    let mut sent_ttl: BTreeMap<&'a str, u64> = BTreeMap::new();
    for e in events {
        if let Some(PoolEvent::Keepalive { worker, ttl_ms, .. }) = e.pool() {
            sent_ttl.insert(plain(worker), *ttl_ms);
        }
    }
    let mut beats: Beats<'a> = BTreeMap::new();
    for e in events {
        let t = e.t_us;
        if matches!(e.world(), Some(WorldEv::NodeCrash {})) {
            close_where(&mut open, &mut done, t, &|_, node| node == e.node);
            continue;
        }
        if let Some(ServerEv::KeepaliveWritten { worker, value: Some(value), .. }) = e.server()
            && let Some((ms, ttl, _)) = decode::keepalive(value)
        {
            let ttl = ttl.or_else(|| sent_ttl.get(worker.as_str()).copied()).unwrap_or(0);
            beats.entry(worker.as_str()).or_default().push((ms, ttl));
            continue;
        }
        let Some(p) = e.pool() else { continue };
        match p {
            PoolEvent::Started { job, worker, attempt } => {
                open.insert((plain(worker), plain(job), *attempt), (e.node, t));
            }
            PoolEvent::HandlerReturned { job, worker, attempt, .. } | PoolEvent::Abandoned { job, worker, attempt } => {
                let (w, j) = (plain(worker), plain(job));
                close_where(&mut open, &mut done, t, &|k, _| *k == (w, j, *attempt));
            }
            PoolEvent::Fenced { worker, .. }
            | PoolEvent::WorkerDead { worker }
            | PoolEvent::WorkerStopped { worker }
            | PoolEvent::WorkerDied { worker, .. } => {
                let w = plain(worker);
                close_where(&mut open, &mut done, t, &|k, _| k.0 == w);
            }
            _ => {}
        }
    }
    close_where(&mut open, &mut done, end_us, &|_, _| true);
    (done, beats)
}

/// The slowest rate `node`'s clock runs at within the drift bound in this run (1.0: none).
fn slowest_rate_within_bound(run: &RunView<'_>, node: Who) -> f64 {
    run.plan
        .events
        .iter()
        .filter_map(|t| match t.fault {
            crate::plan::Fault::ClockRate { node: n, rate, beyond: false } if Who::node(n) == node => Some(rate),
            _ => None,
        })
        .fold(1.0f64, f64::min)
        .max(0.5) // the plan draws within-bound rates from 1 ± the bound (0.1 in keel's scenarios)
}

/// P7: no worker goes on with a run, unfenced, while the store's time is past its last
/// keep-alive the store applied plus its TTL, beyond 1 ms (store time is whole
/// milliseconds), outside its node's frozen time and outside the time its node's clock is out of
/// the drift bound (until one TTL after it is back, in the node's clock at its slowest rate
/// within the bound: a beat sent before then may still time its fence with the bad clock, and
/// the rest of that fence's wait runs on a clock that may be slow; pool seed 1392: a backward
/// jump's stall, then 1.5 s at rate 0.926, fenced 24 ms past a plain TTL). The keep-alives
/// counted are every one the store applied, whether its reply reached the worker or not: never
/// a false alarm from a write whose reply was lost, and no credit for a beat that never landed.
pub fn worker_fence(run: &RunView<'_>) -> Vec<Violation> {
    let (beliefs, beats) = beliefs(run.events, run.end_us);
    if beliefs.is_empty() {
        return Vec::new();
    }
    let Some(store_clock) = super::StoreClock::of(run.events) else {
        return vec![Violation::new(
            "P7",
            0,
            "the store's start (and its clock) was not recorded: nothing to judge by",
        )];
    };
    let at_store = |ms: u64| store_clock.global_us(ms);
    let drift = super::drift::out_of_bound(run.events, run.end_us);
    let mut v = Vec::new();
    for b in beliefs {
        let written = beats.get(b.worker).map_or(&[][..], Vec::as_slice);
        let mut covered: Vec<Span> =
            written.iter().map(|(ms, ttl)| Span { start: at_store(*ms), end: at_store(ms + ttl) }).collect();
        covered.extend(run.timeline.frozen(b.node));
        let ttl_us = written.iter().map(|(_, ttl)| ttl * 1000).max().unwrap_or(0);
        let slowest = slowest_rate_within_bound(run, b.node);
        let after_us = (ttl_us as f64 / slowest).ceil() as u64;
        covered
            .extend(drift.get(&b.node).into_iter().flatten().map(|s| Span { start: s.start, end: s.end + after_us }));
        let gaps = b.span.outside(&covered);
        let outside: u64 = gaps.iter().map(|g| g.end - g.start).sum();
        if let Some(first) = gaps.first()
            && outside > 1_000
        {
            v.push(Violation::new(
                "P7",
                first.start,
                format!(
                    "{} ({}) ran {} unfenced for {:.3}s after its keep-alive had expired at the store",
                    b.worker,
                    b.node,
                    b.job,
                    outside as f64 / 1e6
                ),
            ));
        }
    }
    v.truncate(20);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::test_history::{at, judge, pool};

    fn p7(events: &[Event]) -> Vec<Violation> {
        judge(events, 0, 10_000_000, worker_fence)
    }

    /// Worker `w` beats at global `t` ms with store ms `ms` and the store applies it 1 ms later.
    fn beat(t: u64, w: &str, ms: u64) -> [Event; 2] {
        [
            pool(t, PoolEvent::Keepalive { worker: w.into(), ms, ttl_ms: 1_500, stopping: false }),
            at(
                t + 1,
                Who::Store,
                ServerEv::KeepaliveWritten { worker: w.into(), value: Some(format!("{ms}|1500")), now_ms: ms + 1 },
            ),
        ]
    }

    /// The store's clock reads 1 000 at the start: store ms = 1 000 + global ms. A keep-alive
    /// of store ms 1 100 is live until global 1 600 ms with a 1.5 s TTL.
    fn start() -> Vec<Event> {
        let mut v =
            vec![at(0, Who::Store, ServerEv::StoreUp { now_ms: 1_000 }), at(0, Who::Node(0), WorldEv::NodeStart {})];
        v.extend(beat(100, "w", 1_100));
        v.push(pool(200, PoolEvent::Started { job: "j".into(), worker: "w".into(), attempt: 1 }));
        v
    }

    #[test]
    fn a_run_that_outlives_its_workers_keepalive_unfenced_fires_p7() {
        let returned = |t| {
            pool(
                t,
                PoolEvent::HandlerReturned {
                    job: "j".into(),
                    worker: "w".into(),
                    attempt: 1,
                    completed: true,
                    stopped: false,
                },
            )
        };
        // Returned 100 ms after the keep-alive expired at the store.
        let mut late = start();
        late.push(returned(1_700));
        let v = p7(&late);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!((v[0].invariant, v[0].t_us), ("P7", 1_600_000));
        assert!(v[0].detail.contains("ran j unfenced for 0.100s"), "{}", v[0].detail);
        // Fenced before the expiry: the handler's lag after the fence is P2's hand-off.
        let mut fenced = start();
        fenced.extend([pool(1_590, PoolEvent::Fenced { worker: "w".into(), running: 1 }), returned(1_700)]);
        assert!(p7(&fenced).is_empty());
        // A later beat keeps it live; one by another worker does not.
        let mut beaten = start();
        beaten.extend(beat(900, "w", 1_900));
        beaten.push(returned(2_300));
        assert!(p7(&beaten).is_empty());
        let mut other = start();
        other.extend(beat(900, "x", 1_900));
        other.push(returned(2_300));
        assert_eq!(p7(&other)[0].t_us, 1_600_000);
        // A beat the worker sent that the store never applied (its compare-and-set refused, or
        // the request lost) keeps nothing live: the worker cannot have had it confirmed (MC35:
        // a refused beat that adopts an earlier in-doubt value, counted as a confirmation).
        let mut refused = start();
        refused.extend([
            pool(900, PoolEvent::Keepalive { worker: "w".into(), ms: 1_900, ttl_ms: 1_500, stopping: false }),
            returned(2_300),
        ]);
        let v = p7(&refused);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!((v[0].invariant, v[0].t_us), ("P7", 1_600_000));
        // The store's dead marker over the keep-alive is no keep-alive either.
        let mut marked = start();
        marked.extend([
            at(
                900,
                Who::Store,
                ServerEv::KeepaliveWritten { worker: "w".into(), value: Some("dead".into()), now_ms: 1_900 },
            ),
            returned(2_300),
        ]);
        assert_eq!(p7(&marked).len(), 1);
        // Frozen across the expiry, fenced at the resume: excused.
        let mut frozen = start();
        frozen.extend([
            at(1_000, Who::Node(0), WorldEv::NodePause {}),
            at(2_500, Who::Node(0), WorldEv::NodeResume {}),
            pool(2_500, PoolEvent::Fenced { worker: "w".into(), running: 1 }),
            returned(2_600),
        ]);
        assert!(p7(&frozen).is_empty(), "{:?}", p7(&frozen));
        // A node crash ends the run's belief.
        let mut crashed = start();
        crashed.push(at(1_500, Who::Node(0), WorldEv::NodeCrash {}));
        assert!(p7(&crashed).is_empty());
    }
}
