//! Runs one seed of one scenario in a fresh madsim runtime and judges it.

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::Once;
use std::time::Duration;

use crate::check::{Coverage, Violation};
use crate::history::{Event, History, Recorder, WorldEv, trace_hash};
use crate::linearize;
use crate::plan::{FaultPlan, Profile};
use crate::scenario::{RunView, Scenario};
use crate::timeline::Timeline;
use crate::world::World;
use keel::mutants::{self, Mutant};

/// What one run produced.
pub struct RunOutcome {
    /// Scenario name.
    pub scenario: &'static str,
    /// Scheduler seed.
    pub seed: u64,
    /// Mutant switched on, if any.
    pub mutant: Option<Mutant>,
    /// The fault plan that ran.
    pub plan: FaultPlan,
    /// Broken invariants (empty = pass).
    pub violations: Vec<Violation>,
    /// "Sometimes" situations reached.
    pub coverage: Coverage,
    /// The recorded history.
    pub events: Vec<Event>,
    /// Every node's lives, derived from the history.
    pub timeline: Timeline,
    /// Hash of the history.
    pub trace_hash: u64,
    /// Simulated time of the run.
    pub sim_time: Duration,
    /// When the nemesis healed, µs.
    pub heal_us: u64,
    /// Linearizability of the store operations the run recorded.
    pub linearizability: linearize::Report,
}

impl RunOutcome {
    /// Whether no invariant broke.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    /// The one-line replay of this run, as a `cargo sim` command and as a `cargo test` command.
    pub fn replay_line(&self) -> String {
        replay_line(self.scenario, self.seed, self.mutant, self.plan.profile)
    }
}

/// The one-line replay of a run of `scenario` under `seed`, `mutant` and `profile`.
pub(crate) fn replay_line(scenario: &str, seed: u64, mutant: Option<Mutant>, profile: Profile) -> String {
    let m = mutant.map(|m| format!(" --mutant {m:?}")).unwrap_or_default();
    let env_m = mutant.map(|m| format!("KEEL_SIM_MUTANT={m:?} ")).unwrap_or_default();
    let profile =
        if profile == Profile::Swarm { String::new() } else { format!(" --faults {profile:?}").to_lowercase() };
    format!(
        "replay: cargo sim replay --scenario {scenario} --seed {seed}{m}{profile}   |   {env_m}MADSIM_TEST_SEED={seed} MADSIM_TEST_NUM=1 cargo simtest --test scenarios {scenario}"
    )
}

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
    /// The length of this thread's longest history, and a margin: the next run's first capacity.
    static LAST_EVENTS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Keep panics inside simulations quiet and captured: they become `panic` violations.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = info.to_string();
            let in_sim = LAST_PANIC.with(|p| {
                let mut p = p.borrow_mut();
                let capturing = p.is_some();
                if capturing {
                    *p = Some(msg.clone());
                }
                capturing
            });
            if !in_sim {
                default(info);
            }
        }));
    });
}

/// Capture this thread's panics from here on (the hook keeps them quiet); what
/// [`end_panic_capture`] returns is the last one's message.
pub(crate) fn begin_panic_capture() {
    install_panic_hook();
    LAST_PANIC.with(|p| *p.borrow_mut() = Some(String::new()));
}

/// Stop capturing this thread's panics; the last captured message, or empty.
pub(crate) fn end_panic_capture() -> String {
    LAST_PANIC.with(|p| p.borrow_mut().take()).unwrap_or_default()
}

/// Run `scenario` under `seed` (and `mutant`), with the plan derived from the seed unless given.
pub fn run(
    scenario: &dyn Scenario,
    seed: u64,
    mutant: Option<Mutant>,
    profile: Profile,
    plan: Option<FaultPlan>,
) -> RunOutcome {
    let plan = plan.unwrap_or_else(|| FaultPlan::generate(seed, profile, &scenario.plan_spec()));
    let what =
        format!("{} seed {seed}{}", scenario.name(), mutant.map(|m| format!(" (mutant {m:?})")).unwrap_or_default());
    // A run that never ends (a livelock: simulated time stopped) fails the process, loudly.
    let _watched = crate::watchdog::watch(what, scenario.replay_line(seed, mutant, plan.profile));
    let history = History::with_capacity(LAST_EVENTS.get());
    // madsim runs the whole simulation on this thread: the core's typed events land here.
    let observer = keel::observe::set_thread_observer(Some(Rc::new(Recorder::new(history.clone()))));
    let previous = mutants::set(mutant);
    begin_panic_capture();
    let _ = keel::assert::take_failures(); // only this run's
    let _ = crate::clock::take_spins();
    linearize::begin();

    let mut config = madsim::Config::default();
    let (lo, hi) = crate::world::SEND_LATENCY_MS;
    config.net.send_latency = Duration::from_millis(lo)..Duration::from_millis(hi);
    let rt = madsim::runtime::Runtime::with_seed_and_config(seed, config);
    let main = scenario.node_main();
    let settle = scenario.settle(&plan);
    let nodes = scenario.plan_spec().nodes;
    let op_timeout = scenario.op_timeout();
    let h = history.clone();
    let p = plan.clone();
    let result = catch_unwind(AssertUnwindSafe(|| {
        rt.block_on(async move {
            h.start();
            let world = World::build(h.clone(), nodes, op_timeout, p.knobs(), main);
            world.nemesis(&p).await;
            let heal_us = h.now_us();
            tokio::time::sleep(settle).await;
            let end_us = h.now_us();
            // The run's events end here: what the reaped tasks' drops would record is not
            // part of it (a killed node's tasks record nothing either).
            let events = h.take();
            world.reap();
            (heal_us, end_us, events)
        })
    }));
    // The recorder goes before the runtime: tearing it down drops the tasks still alive (those a
    // panic left behind among them), whose guards emit on their way out with no task to name
    // their node; recording them would panic in a drop and abort the whole sweep.
    keel::observe::set_thread_observer(observer);
    drop(rt);
    let panic_msg = end_panic_capture();
    mutants::set(previous);
    let linearizability = linearize::finish();

    let (result, events) = match result {
        Ok((heal_us, end_us, events)) => (Ok((heal_us, end_us)), events),
        Err(e) => (Err(e), history.take()),
    };
    // The largest so far: seeds differ (a roll-back or a long outage records more), and a
    // history that outgrows its room copies itself (`grow_one` was 3 % of an rmap sweep).
    LAST_EVENTS.set(LAST_EVENTS.get().max(events.len() + events.len() / 8));
    let last_us = events.last().map_or(0, |e| e.t_us);
    let (heal_us, end_us) = result.as_ref().map_or((last_us, last_us), |r| *r);
    let timeline = Timeline::derive(&events, end_us);
    let mut violations = match result {
        Ok(_) => {
            let view = RunView { plan: &plan, events: &events, timeline: &timeline, heal_us, end_us };
            scenario.check(&view)
        }
        // The simulated clock's spin detector panics to break a loop that never yields.
        Err(_) if panic_msg.contains("\nspin: ") => vec![Violation::new("spin", end_us, panic_msg)],
        Err(_) => vec![Violation::new("panic", end_us, panic_msg)],
    };
    // A keel assertion is a violation even when a catch_unwind in the core swallowed its panic;
    // so is a spin (the run's own failure above reports the one that ended it).
    for failure in keel::assert::take_failures() {
        violations.push(Violation::new("assert", end_us, failure));
    }
    for (at, spin) in crate::clock::take_spins() {
        if !violations.iter().any(|v| v.invariant == "spin") {
            violations.push(Violation::new("spin", history.us_at(at), spin));
        }
    }
    for v in &linearizability.violations {
        violations.push(Violation::new("L1", end_us, format!("store history not linearizable: {v}")));
    }
    violations.extend(refusals_reported(&events));
    violations.extend(writes_applied_as_their_kind_says(&events));
    violations.extend(scan_slices_right(&events));
    violations.extend(restarts_reported(&events));
    violations.extend(lease_refusals_right(&events));
    violations.extend(feeds_complete(&events));
    violations.extend(paused_nodes_silent(&events));
    violations.extend(jumps_keep_the_drift(&events));
    violations.extend(holds_served(&events));
    violations.extend(crate::fault_windows::store_faults_inside_their_windows(&events));
    if events.iter().any(|e| matches!(e.world(), Some(WorldEv::HistoryFull {} | WorldEv::SimError { .. }))) {
        violations.push(Violation::new("sim", end_us, "the simulator itself failed (history full or setup error)"));
    }
    RunOutcome {
        scenario: scenario.name(),
        seed,
        mutant,
        coverage: scenario.coverage(&events),
        trace_hash: trace_hash(&events),
        plan,
        violations,
        events,
        timeline,
        sim_time: Duration::from_micros(end_us),
        heal_us,
        linearizability,
    }
}

/// L2: each write the store refused answered with the value that refused it, judged as the store
/// applied it (`ServerEv::RefusalMisreported`, recorded by the simulated store from a read apart
/// from the write's own path). A refusal that says "absent" while a value holds sends a
/// compare-and-set loop or a keep-alive beat in doubt after a value that is not there. The first
/// 20; every scenario, built-in or a user's.
fn refusals_reported(events: &[crate::history::Event]) -> Vec<Violation> {
    let wrong = events.iter().filter_map(|e| match e.server() {
        Some(crate::history::ServerEv::RefusalMisreported { map, key, told, held, by }) => Some(Violation::new(
            "L2",
            e.t_us,
            format!(
                "the store refused {by}'s write of {map}/{key} and answered that it held {told:?}; it held {held:?}"
            ),
        )),
        _ => None,
    });
    wrong.take(20).collect()
}

/// L8: each scan slice the store served holds the next keys after its cursor's, with their
/// values, and its cursor says more follows exactly when a key does, judged as the store served it
/// against a model apart from keel's (`net/scans.rs`; `ServerEv::ScanSliceWrong`). Hunt 48 B's
/// survivor 375 (MC464): a last slice that hands out a cursor, one more round trip per pass that
/// no outcome shows. The first 20; every scenario, built-in or a user's.
fn scan_slices_right(events: &[crate::history::Event]) -> Vec<Violation> {
    let wrong = events.iter().filter_map(|e| match e.server() {
        Some(crate::history::ServerEv::ScanSliceWrong { map, cursor, count, what, by }) => Some(Violation::new(
            "L8",
            e.t_us,
            format!("the store served {by} a slice of {map} from cursor {cursor} ({count} asked) that misstates the map: {what}"),
        )),
        _ => None,
    });
    wrong.take(20).collect()
}

/// L6: each map write the store applied (or refused) did what its kind says, judged as the store
/// applied it against a model of the kinds written apart from keel's (`net/writes.rs`;
/// `ServerEv::WriteMisapplied`). The first 20; every scenario, built-in or a user's.
fn writes_applied_as_their_kind_says(events: &[crate::history::Event]) -> Vec<Violation> {
    let wrong = events.iter().filter_map(|e| match e.server() {
        Some(crate::history::ServerEv::WriteMisapplied { map, key, write, before, applied, after, by }) => {
            Some(Violation::new(
                "L6",
                e.t_us,
                format!(
                    "{by}'s {write} on {map}/{key}, which held {before:?}, came out applied={applied} with {after:?}: not what a write of its kind does"
                ),
            ))
        }
        _ => None,
    });
    wrong.take(20).collect()
}

/// L3: each snapshot says whether the store restarted since its map's last commit, judged as the
/// store serves it (`ServerEv::RestartMisreported`, recorded by the simulated store against its
/// own record of the map's revision at each boot). The first 20 violations.
fn restarts_reported(events: &[crate::history::Event]) -> Vec<Violation> {
    let wrong = events.iter().filter_map(|e| match e.server() {
        Some(crate::history::ServerEv::RestartMisreported { map, rev, told, by }) => Some(Violation::new(
            "L3",
            e.t_us,
            format!(
                "the store served {by} a snapshot of {map} at revision {rev} saying restarted_since_commit={told}; its own record says {}",
                !told
            ),
        )),
        _ => None,
    });
    wrong.take(20).collect()
}

/// L5: the store refuses an acquisition only for a live grant of another token, and says its time
/// left as it holds it (`ServerEv::LeaseRefusalWrong`, recorded by the simulated store against its
/// own grant at the refusal's instant). A refusal of the holder's own token makes a retried
/// acquisition (its first reply lost) block the lease for a TTL; a wrong time left makes a
/// contender wait past the grant's end. And L7 (round 36 A #33): the store refuses a renewal or a
/// release only when its token holds no live grant (`ServerEv::LeaseOwnRefused`, read before the
/// call at the same store instant): a holder whose renewal is refused steps down from a grant
/// the store keeps (MC303: the quarantine judged for renewals, so every store restart takes the
/// lease from its holder and leaves it unheld for a TTL). And S34 (round 39 A): the store
/// quarantines a lease exactly as its boots owe (`ServerEv::QuarantineWrong`, reckoned by the
/// store node at the call's store instant): a release that drops the lease's counter (MC354)
/// quarantined every handover after a graceful release. The first 20 violations.
fn lease_refusals_right(events: &[crate::history::Event]) -> Vec<Violation> {
    let wrong = events.iter().filter_map(|e| match e.server() {
        Some(crate::history::ServerEv::LeaseRefusalWrong { lease, token, remaining_ms, holder, valid_ms, by }) => {
            Some(Violation::new(
                "L5",
                e.t_us,
                format!(
                    "the store refused {by}'s acquisition of {lease} by token {token} with {remaining_ms} ms left; it holds {holder}'s grant with {valid_ms} ms left"
                ),
            ))
        }
        Some(crate::history::ServerEv::LeaseOwnRefused { op, lease, token, by }) => Some(Violation::new(
            "L7",
            e.t_us,
            format!("the store refused {by}'s {op} of {lease} by token {token}, the token of the live grant it held"),
        )),
        Some(crate::history::ServerEv::QuarantineWrong {
            lease,
            refused,
            remaining_ms,
            now_ms,
            from_ms,
            until_ms,
            by,
        }) => Some(Violation::new(
            "S34",
            e.t_us,
            if *refused {
                format!(
                    "the store refused {by}'s acquisition of {lease} at store ms {now_ms} as quarantined for {remaining_ms} ms more; the quarantine it owes ends in {from_ms}..={until_ms}"
                )
            } else {
                format!(
                    "the store granted {by}'s acquisition of {lease} at store ms {now_ms}, in the quarantine this boot's first acquisition of it began (until store ms {from_ms})"
                )
            },
        )),
        _ => None,
    });
    wrong.take(20).collect()
}

/// W1: a paused node does nothing: between its `node_pause` and its `node_resume` (or its
/// crash) no event of that node is recorded but the world's own. A pause that is recorded but
/// does not freeze the node (a simulator bug) leaves every rule about frozen processes (a GC
/// pause, a SIGSTOP: the owner that wakes past its deadline, the worker whose beats stop) judging
/// a run that never had one, while the plan and the timeline say it did (hunt 32 A #5: caught
/// only when the regression corpus went stale). The first 20 violations; every scenario, built-in
/// or a user's.
fn paused_nodes_silent(events: &[crate::history::Event]) -> Vec<Violation> {
    use crate::history::Who;
    let mut paused: std::collections::BTreeMap<Who, u64> = std::collections::BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        match e.world() {
            Some(WorldEv::NodePause {}) => {
                paused.insert(e.node, e.t_us);
            }
            Some(WorldEv::NodeResume {} | WorldEv::NodeCrash {} | WorldEv::NodeStart {}) => {
                paused.remove(&e.node);
            }
            Some(_) => {}
            None => {
                if let Some(since) = paused.get(&e.node)
                    && v.len() < 20
                {
                    v.push(Violation::new(
                        "W1",
                        e.t_us,
                        format!(
                            "{} was paused at {since} µs and not resumed, yet recorded: {}",
                            e.node,
                            e.line().trim()
                        ),
                    ));
                }
            }
        }
    }
    v
}

/// W2: a clock jump moves the clock's time, not its rate (round 39 A #15): at each
/// `clock_jumped`, the rate the node's clock runs at after the jump, read from its map
/// (`rate_ppm`), is the one its last `clock_rate` set (1 ppm either side: the read-back
/// truncates to the µs), or 1 before any and after its drift ended (`clock_drift_ended`, the
/// heal). A jump that re-anchors the clock at rate 1 (MC355) silently ends the drift in force:
/// every rule that judges a drifting clock then judges one that runs true, and the timeline says
/// it drifted. The first 20 violations; every scenario, built-in or a user's.
fn jumps_keep_the_drift(events: &[crate::history::Event]) -> Vec<Violation> {
    const TRUE_PPM: i64 = 1_000_000;
    let mut rates: std::collections::BTreeMap<crate::history::Who, i64> = std::collections::BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        match e.world() {
            Some(WorldEv::ClockRate { rate_ppm, .. }) => {
                rates.insert(e.node, *rate_ppm);
            }
            Some(WorldEv::ClockDriftEnded { .. }) => {
                rates.remove(&e.node);
            }
            Some(WorldEv::ClockJumped { rate_ppm, .. }) => {
                let set = rates.get(&e.node).copied().unwrap_or(TRUE_PPM);
                if rate_ppm.abs_diff(set) > 1 && v.len() < 20 {
                    v.push(Violation::new(
                        "W2",
                        e.t_us,
                        format!(
                            "{}'s clock runs at {rate_ppm} ppm after its jump; its last rate set was {set} ppm",
                            e.node
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    v
}

/// W3: the store's latency faults hold what they record (round 39 A #17): each request and reply
/// a node latency or a reply delay owes a hold (`held`'s `before_ms`, `after_ms` and
/// `delay_ms`) is held that long, measured by the store node around its own waits
/// (`ServerEv::HoldShort`, `sim/src/net.rs`). A hold recorded and not served (MC356: a node's
/// reply latency dropped) passed every sweep with every goal reached, the goals reading the
/// record. The first 20 violations; every scenario, built-in or a user's.
fn holds_served(events: &[crate::history::Event]) -> Vec<Violation> {
    let short = events.iter().filter_map(|e| match e.server() {
        Some(crate::history::ServerEv::HoldShort { to, side, held_us, owed_ms }) => Some(Violation::new(
            "W3",
            e.t_us,
            format!(
                "the {side} of {to}'s call was held {held_us} µs by the store's faults, which owed it {owed_ms} ms"
            ),
        )),
        _ => None,
    });
    short.take(20).collect()
}

/// L4: a watch's feed carries each change of its map in revision order, or a gap, judged at the
/// store node as its forwarders take each event and as the map commits (`ServerEv::FeedLost`,
/// `sim/src/net/feeds.rs`). The first 20 violations.
fn feeds_complete(events: &[crate::history::Event]) -> Vec<Violation> {
    let lost = events.iter().filter_map(|e| match e.server() {
        Some(crate::history::ServerEv::FeedLost { map, why, by }) => {
            Some(Violation::new("L4", e.t_us, format!("{by}'s feed of {map} lost a change without a gap: {why}")))
        }
        _ => None,
    });
    lost.take(20).collect()
}
