//! V18: `Lifecycle::started()` and `stopped()` return at the status they wait for, judged at
//! each return and where the status has held 2 ms.
//!
//! The completer scenario's stress runs one more service of its own on keel's `Lifecycle`
//! (`stress-life`): runs that end by themselves or are stopped (each drains a few ms once told,
//! and half the stops find it told already by its parent's token), started again, while a second
//! task awaits `started()` and `stopped()` in turn. The lifecycle reports each status change
//! (`run_started` once a run is running, `stop_begun` once a stop made it `Stopping`, `run_exited`
//! once it exited: `Stopped`), at the instant
//! it makes it. An await that returns while the status is not the one it waits for returned
//! early; one still pending once that status has held for 2 ms of running time (the node's
//! frozen time not counted) was not woken: a run's exit that forgets to wake its waiters (MC106)
//! leaves every `stopped()` parked until the next start (blind-spot hunt, round 13, #19: no
//! scenario awaited them). The node's crash or restart ends the judging.
//!
//! V46: `Lifecycle::join()` returns once the run current at its call exited, and not before.
//! The waiter joins between its `started()` and `stopped()` (a running run, which ends by itself
//! or by the runner's stop), and the status watcher joins the run whenever it sees it stopping,
//! as a supervisor waiting out a drain does. A join that returned while its run had not exited
//! returned early (MC373 takes a stopping run for gone, MC374 waits only for the status to leave
//! running); one still parked 2 ms of running time after the exit was not woken.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use keel::clock::Clock;
use keel::lifecycle::Lifecycle;
use keel::observe::LifecycleEvent;
use keel::shutdown::Shutdown;
use madsim::rand::{Rng, thread_rng};

use super::RunView;
use super::completer::{Rec, rec};
use crate::check::{Span, Violation};
use crate::history::{Who, WorldEv, plain};
use crate::world::NodeCtx;

/// The service's name in its lifecycle events.
pub const SERVICE: &str = "stress-life";
/// Runs of the service per node life.
const ROUNDS: usize = 4;
/// How long a waiter may stay parked once its status holds, in µs of running time.
const WAKE_SLACK_US: u64 = 2_000;
/// The awaits the workload records (`life_await_begun { what }`): V18's two,
const STARTED: &str = "started";
const STOPPED: &str = "stopped";
/// and V46's joins: the waiter's, after `started()`, and the watcher's, on seeing a stop begin.
const JOINED: &str = "joined";
const JOINED_STOPPING: &str = "joined_at_stopping";

/// The workload: a lifecycle started and stopped `ROUNDS` times (its runs sometimes ending by
/// themselves first), and a task awaiting `started()` and `stopped()` in turn until the runs end.
pub(super) fn exercise(ctx: NodeCtx, caller: Shutdown) -> impl Future<Output = ()> {
    let life = Arc::new(Lifecycle::new(SERVICE));
    let done = caller.child("stress-life-done");
    let (watch_life, watch_ctx, watch_done) = (life.clone(), ctx.clone(), done.clone());
    let runner = {
        let (life, ctx, caller, done) = (life.clone(), ctx.clone(), caller.clone(), done.clone());
        tokio::spawn(async move {
            for _ in 0..ROUNDS {
                let round = caller.child("stress-life-round");
                let (clock, run_ms, drain_ms) =
                    (ctx.clock.clone(), thread_rng().gen_range(0..40), thread_rng().gen_range(1..10));
                life.start(round.child("stress-life-run"), move |rc| async move {
                    tokio::select! {
                        biased; // fixed poll order: tokio's per-thread select RNG would break replay
                        _ = rc.shutdown.cancelled() => clock.sleep(Duration::from_millis(drain_ms)).await,
                        _ = clock.sleep(Duration::from_millis(run_ms)) => {}
                    }
                })
                .await;
                ctx.clock.sleep(Duration::from_millis(thread_rng().gen_range(0..40))).await;
                // Half the rounds, the run's parent is cancelled first (a process's root token at
                // its signal) and the stop finds the run's token cancelled and the run draining:
                // it still returns only at the exit (V5, MC163).
                if thread_rng().gen_bool(0.5) {
                    round.cancel();
                }
                life.stop().await;
                ctx.clock.sleep(Duration::from_millis(thread_rng().gen_range(0..20))).await;
            }
            done.cancel();
        })
    };
    let waiter = tokio::spawn(async move {
        for what in [STARTED, JOINED, STOPPED].into_iter().cycle() {
            ctx.record(Rec::LifeAwaitBegun { what: what.into() });
            let wait = async {
                match what {
                    STARTED => life.started().await,
                    JOINED => life.join().await,
                    _ => life.stopped().await,
                }
            };
            tokio::select! {
                biased; // fixed poll order: tokio's per-thread select RNG would break replay
                _ = wait => ctx.record(Rec::LifeAwaitEnded { what: what.into() }),
                _ = done.cancelled() => {
                    // Said, so V18 stops waiting for a return that will not come (completer seed
                    // 4550: a node stopping as the stress began; its runs end as they start).
                    ctx.record(Rec::LifeAwaitAbandoned { what: what.into() });
                    return;
                }
            }
        }
    });
    // V23: a reader of the status watch, as a health endpoint or a supervisor would hold one.
    let watcher = tokio::spawn(async move {
        let mut rx = watch_life.subscribe();
        loop {
            let seen = match *rx.borrow_and_update() {
                keel::lifecycle::Status::Stopped => "stopped",
                keel::lifecycle::Status::Running { .. } => "running",
                keel::lifecycle::Status::Stopping { .. } => "stopping",
            };
            watch_ctx.record(Rec::LifeWatchSeen { status: seen.into() });
            if seen == "stopping" {
                // V46: a supervisor waiting out the drain it saw begin.
                watch_ctx.record(Rec::LifeAwaitBegun { what: JOINED_STOPPING.into() });
                watch_life.join().await;
                watch_ctx.record(Rec::LifeAwaitEnded { what: JOINED_STOPPING.into() });
                // Then on to the watch: the exit's `Stopped` (or a later status) is news there.
            }
            tokio::select! {
                biased; // fixed poll order: tokio's per-thread select RNG would break replay
                r = rx.changed() => if r.is_err() { return },
                _ = watch_done.cancelled() => return,
            }
        }
    });
    async move {
        let _ = runner.await;
        let _ = waiter.await;
        let _ = watcher.await;
    }
}

/// The service's status as its lifecycle events mark it.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
enum Status {
    #[default]
    Stopped,
    /// From `run_started`.
    Running,
    /// From `stop_begun` until `run_exited`: neither `started()` nor `stopped()` may return.
    Stopping,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::Stopped => "stopped",
            Status::Running => "running",
            Status::Stopping => "stopping",
        }
    }

    /// Whether an await for running (`started()`) or for stopped (`stopped()`) may return.
    fn holds(self, want_running: bool) -> bool {
        self == if want_running { Status::Running } else { Status::Stopped }
    }
}

/// One node's view of the service: its status and its pending await.
#[derive(Default)]
struct Waits {
    status: Status,
    /// The pending await: what it waits for, and since when its status holds (µs), if it does.
    pending: Option<(bool, Option<u64>)>,
}

/// The service's status change an event marks, if it marks one.
fn status_change(e: &crate::history::Event) -> Option<Status> {
    match e.core() {
        Some(keel::observe::Event::Lifecycle(l)) => match l {
            LifecycleEvent::RunStarted { service, .. } if plain(service) == SERVICE => Some(Status::Running),
            LifecycleEvent::StopBegun { service, .. } if plain(service) == SERVICE => Some(Status::Stopping),
            LifecycleEvent::RunExited { service, .. } if plain(service) == SERVICE => Some(Status::Stopped),
            _ => None,
        },
        _ => None,
    }
}

/// **V23**: a lifecycle's status watch (`Lifecycle::subscribe()`) shows each status as it is
/// made, and never one the service is not in.
///
/// A health endpoint or a supervisor holds the watch, not `status()`. The stress lifecycle's
/// watcher records each value it sees (`life_watch_seen`); judged at the instant: a value seen
/// is the status the lifecycle's events mark at that instant, and each status made is seen
/// within 2 ms of running time (the node's frozen time not counted) unless the next one
/// supersedes it first (a watch keeps only the latest). MC179 never publishes a run's exit
/// there: the watcher reads `Stopping` while the service is stopped. The node's crash, restart
/// or stop ends the judging, as for V18.
pub fn watch_follows_status(run: &RunView<'_>) -> Vec<Violation> {
    // node → (status now, and since when it is unseen)
    let mut nodes: std::collections::BTreeMap<Who, (Status, Option<u64>)> = Default::default();
    // Nodes stopping or crashed: their watcher has ended (until the next start).
    let mut ended = std::collections::BTreeSet::new();
    // The service's runs started in each node's life.
    let mut runs: std::collections::BTreeSet<(Who, u64)> = Default::default();
    let mut v = Vec::new();
    let unseen = |node: Who, status: Status, since: u64, v: &mut Vec<Violation>| {
        if v.len() < 20 {
            v.push(Violation::new(
                "V23",
                since + WAKE_SLACK_US,
                format!(
                    "{node}: {SERVICE}'s status watch did not show {} within {WAKE_SLACK_US} µs of the change (from {:.3}s)",
                    status.name(),
                    since as f64 / 1e6
                ),
            ));
        }
    };
    for e in run.events {
        match e.world() {
            Some(WorldEv::NodeStart {}) => {
                ended.remove(&e.node);
                nodes.remove(&e.node);
                runs.retain(|(n, _)| *n != e.node);
            }
            Some(WorldEv::NodeCrash {} | WorldEv::NodeStop {}) => {
                ended.insert(e.node);
                nodes.remove(&e.node);
            }
            _ => {}
        }
        // A killed incarnation's drop guards report in the crash's instant, after a restart's
        // start event in that instant: the old life's, not judged. So is a stop or an exit of
        // a run this life never started: a drop that came a microsecond after a restart's start
        // (completer seed 25 973).
        let dying = run.timeline.life_at(e.node, e.t_us).is_some_and(|l| l.end == e.t_us && e.t_us > l.start);
        let old_run = match e.core() {
            Some(keel::observe::Event::Lifecycle(
                LifecycleEvent::RunStarted { service, run }
                | LifecycleEvent::StopBegun { service, run }
                | LifecycleEvent::RunExited { service, run },
            )) if plain(service) == SERVICE => {
                let started =
                    matches!(e.core(), Some(keel::observe::Event::Lifecycle(LifecycleEvent::RunStarted { .. })));
                if started {
                    runs.insert((e.node, *run));
                }
                !runs.contains(&(e.node, *run))
            }
            _ => false,
        };
        if ended.contains(&e.node) || dying || old_run {
            continue;
        }
        let frozen = || run.timeline.frozen(e.node).collect::<Vec<Span>>();
        let (status, since) = nodes.entry(e.node).or_default();
        if let Some(s) = *since
            && (Span { start: s, end: e.t_us.max(s) }).len_outside(&frozen()) > WAKE_SLACK_US
        {
            unseen(e.node, *status, s, &mut v);
            *since = None;
        }
        if let Some(next) = status_change(e) {
            *status = next;
            *since = Some(e.t_us);
        } else if let Some(Rec::LifeWatchSeen { status: seen }) = rec(e) {
            if seen != status.name() && v.len() < 20 {
                v.push(Violation::new(
                    "V23",
                    e.t_us,
                    format!(
                        "{}: {SERVICE}'s status watch showed {seen} while the service is {}",
                        e.node,
                        status.name()
                    ),
                ));
            }
            *since = None;
        }
    }
    for (node, (status, since)) in nodes {
        if let Some(s) = since {
            let frozen: Vec<Span> = run.timeline.frozen(node).collect();
            if (Span { start: s, end: run.end_us.max(s) }).len_outside(&frozen) > WAKE_SLACK_US {
                unseen(node, status, s, &mut v);
            }
        }
    }
    v
}

/// V18 over a run: see the module's doc.
pub fn check(run: &RunView<'_>) -> Vec<Violation> {
    let mut nodes: std::collections::BTreeMap<Who, Waits> = Default::default();
    let mut v = Vec::new();
    let late = |node: Who, since: u64, t: u64| {
        let frozen: Vec<Span> = run.timeline.frozen(node).collect();
        Span { start: since, end: t.max(since) }.len_outside(&frozen) > WAKE_SLACK_US
    };
    for e in run.events {
        if matches!(e.world(), Some(WorldEv::NodeCrash {} | WorldEv::NodeStart {} | WorldEv::NodeStop {})) {
            nodes.remove(&e.node);
            continue;
        }
        let w = nodes.entry(e.node).or_default();
        if let Some(status) = status_change(e) {
            w.status = status;
            if let Some((want_running, since)) = &mut w.pending {
                if let Some(s) = *since
                    && late(e.node, s, e.t_us)
                    && v.len() < 20
                {
                    v.push(Violation::new("V18", s + WAKE_SLACK_US, unwoken(e.node, *want_running, s)));
                }
                *since = status.holds(*want_running).then_some(e.t_us);
            }
            continue;
        }
        match rec(e) {
            Some(Rec::LifeAwaitBegun { what }) if status_wait(what) => {
                let want_running = what == STARTED;
                w.pending = Some((want_running, w.status.holds(want_running).then_some(e.t_us)));
            }
            Some(Rec::LifeAwaitAbandoned { what }) if status_wait(what) => {
                // Given up, not returned: judged only for a wake it missed before.
                if let Some((want_running, Some(s))) = w.pending.take()
                    && late(e.node, s, e.t_us)
                    && v.len() < 20
                {
                    v.push(Violation::new("V18", s + WAKE_SLACK_US, unwoken(e.node, want_running, s)));
                }
            }
            Some(Rec::LifeAwaitEnded { what }) if status_wait(what) => {
                let Some((want_running, since)) = w.pending.take() else { continue };
                if !w.status.holds(want_running) && v.len() < 20 {
                    v.push(Violation::new(
                        "V18",
                        e.t_us,
                        format!(
                            "{}: {SERVICE}'s {what}() returned while its status was not the one it waits for",
                            e.node
                        ),
                    ));
                } else if let Some(s) = since
                    && late(e.node, s, e.t_us)
                    && v.len() < 20
                {
                    v.push(Violation::new("V18", s + WAKE_SLACK_US, unwoken(e.node, want_running, s)));
                }
            }
            _ => {}
        }
    }
    for (node, w) in nodes {
        if let Some((want_running, Some(s))) = w.pending
            && late(node, s, run.end_us)
            && v.len() < 20
        {
            v.push(Violation::new("V18", s + WAKE_SLACK_US, unwoken(node, want_running, s)));
        }
    }
    v
}

fn unwoken(node: Who, want_running: bool, since: u64) -> String {
    let what = if want_running { "started" } else { "stopped" };
    format!(
        "{node}: {SERVICE}'s {what}() still parked {} µs after its status held (from {:.3}s): a status change that did not wake its waiters",
        WAKE_SLACK_US,
        since as f64 / 1e6
    )
}

/// Whether an await is V18's (`started()` or `stopped()`), not a join.
fn status_wait(what: &str) -> bool {
    what == STARTED || what == STOPPED
}

/// **V46** over a run: see the module's doc. Judged per node and per joining task, at each
/// join's return and 2 ms of running time after its run's exit; the node's crash, restart or
/// stop ends the judging.
pub fn joins_follow_their_run(run: &RunView<'_>) -> Vec<Violation> {
    /// A join under way: the run current at its call, if any, and when that run exited.
    struct Join {
        run: Option<u64>,
        exited: Option<u64>,
    }
    // node → the service's run now (from `run_started` to `run_exited`)
    let mut current: std::collections::BTreeMap<Who, u64> = Default::default();
    // (node, which join) → the join under way
    let mut joins: std::collections::BTreeMap<(Who, String), Join> = Default::default();
    let mut v = Vec::new();
    let late = |node: Who, since: u64, t: u64| {
        let frozen: Vec<Span> = run.timeline.frozen(node).collect();
        Span { start: since, end: t.max(since) }.len_outside(&frozen) > WAKE_SLACK_US
    };
    let unwoken = |node: Who, what: &str, r: u64, since: u64| {
        Violation::new(
            "V46",
            since + WAKE_SLACK_US,
            format!(
                "{node}: {SERVICE}'s join() ({what}) still parked {WAKE_SLACK_US} µs after run {r} exited (at {:.3}s): an exit that did not wake its joiners",
                since as f64 / 1e6
            ),
        )
    };
    for e in run.events {
        if matches!(e.world(), Some(WorldEv::NodeCrash {} | WorldEv::NodeStart {} | WorldEv::NodeStop {})) {
            current.remove(&e.node);
            joins.retain(|(n, _), _| *n != e.node);
            continue;
        }
        match e.core() {
            Some(keel::observe::Event::Lifecycle(LifecycleEvent::RunStarted { service, run: r }))
                if plain(service) == SERVICE =>
            {
                current.insert(e.node, *r);
            }
            Some(keel::observe::Event::Lifecycle(LifecycleEvent::RunExited { service, run: r }))
                if plain(service) == SERVICE =>
            {
                if current.get(&e.node) == Some(r) {
                    current.remove(&e.node);
                }
                for ((n, _), j) in joins.iter_mut() {
                    if *n == e.node && j.run == Some(*r) && j.exited.is_none() {
                        j.exited = Some(e.t_us);
                    }
                }
            }
            _ => {}
        }
        match rec(e) {
            Some(Rec::LifeAwaitBegun { what }) if !status_wait(what) => {
                let j = Join { run: current.get(&e.node).copied(), exited: None };
                joins.insert((e.node, what.clone()), j);
            }
            Some(Rec::LifeAwaitEnded { what } | Rec::LifeAwaitAbandoned { what }) if !status_wait(what) => {
                let returned = matches!(rec(e), Some(Rec::LifeAwaitEnded { .. }));
                let Some(j) = joins.remove(&(e.node, what.clone())) else { continue };
                let Some(r) = j.run else { continue };
                match j.exited {
                    None if returned && v.len() < 20 => v.push(Violation::new(
                        "V46",
                        e.t_us,
                        format!("{}: {SERVICE}'s join() ({what}) returned while run {r}, current at its call, had not exited", e.node),
                    )),
                    Some(s) if late(e.node, s, e.t_us) && v.len() < 20 => v.push(unwoken(e.node, what, r, s)),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    for ((node, what), j) in joins {
        if let (Some(r), Some(s)) = (j.run, j.exited)
            && late(node, s, run.end_us)
            && v.len() < 20
        {
            v.push(unwoken(node, &what, r, s));
        }
    }
    v
}
