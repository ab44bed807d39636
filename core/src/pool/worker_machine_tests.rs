//! The worker's rules, instant by instant, with no runtime: each test feeds the machine inputs
//! stamped with a fake local clock and checks the commands it asks for.

use std::time::Duration;

use super::*;
use crate::clock::Instant;
use crate::observe::micros;

const TTL: Duration = Duration::from_millis(6000);
const MARGIN: Duration = Duration::from_millis(500);
const INTERVAL: Duration = Duration::from_millis(2000);
const DRAIN: Duration = Duration::from_millis(DRAIN_MS);
const DRAIN_MS: u64 = 3000;
const BACKOFF: Duration = Duration::from_millis(100);
const ME: &str = "w1";

fn timing() -> Timing {
    Timing {
        worker_ttl: TTL,
        drift_margin: MARGIN,
        keepalive_interval: INTERVAL,
        shutdown_deadline: DRAIN,
        register_backoff_min: BACKOFF,
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn drain(m: &mut WorkerMachine) -> Vec<Command> {
    std::iter::from_fn(|| m.poll_command()).collect()
}

fn rec(attempt: u64, owner: &str) -> String {
    JobRecord { attempt, owner: owner.into(), payload: "p".into() }.encode()
}

/// A machine registered at `t0` with keep-alive "ka0" (confirmed until t0 + ttl − margin).
fn registered() -> (WorkerMachine, Instant) {
    let t0 = Instant::now();
    let mut m = WorkerMachine::new(timing(), ME, t0);
    assert_eq!(drain(&mut m), [Command::Register]);
    m.on_registered(t0, Some("ka0".into()));
    let keepalive_interval_us = crate::observe::micros(timing().keepalive_interval);
    let shutdown_deadline_us = crate::observe::micros(timing().shutdown_deadline);
    let r = Report::Registered { keepalive_interval_us, shutdown_deadline_us, took_us: 0 };
    assert_eq!(drain(&mut m), [Command::Report(r)]);
    (m, t0)
}

/// Deliver `job` at `attempt` (ours) and return the run number it started.
fn start(m: &mut WorkerMachine, now: Instant, job: &str, attempt: u64) -> u64 {
    m.on_record(now, job, Some(rec(attempt, ME)));
    match drain(m).as_slice() {
        [Command::StartRun { job: j, run, rec: r, .. }] if j == job && r.attempt == attempt => *run,
        other => panic!("expected a start of {job}, got {other:?}"),
    }
}

/// Beat at `now` (due) and answer it with `reply` at `at`.
fn beat(m: &mut WorkerMachine, now: Instant, at: Instant, reply: BeatReply) -> Vec<Command> {
    m.on_timeout(now);
    assert!(matches!(drain(m).as_slice(), [Command::Beat { .. }]), "a beat is due at {now:?}");
    m.on_beat(at, reply);
    drain(m)
}

#[test]
fn registration_retries_with_a_doubling_backoff_capped_at_the_interval() {
    let t0 = Instant::now();
    let mut m = WorkerMachine::new(timing(), ME, t0);
    let mut at = t0;
    let mut waits = Vec::new();
    for _ in 0..7 {
        assert_eq!(drain(&mut m), [Command::Register]);
        assert_eq!(m.next_timeout(), None, "nothing fires while a registration is in flight");
        m.on_registered(at, None);
        let (took_us, retry_min_us, retry_max_us) = (0, micros(BACKOFF), micros(INTERVAL));
        let failed = Report::RegisterFailed { took_us, retry_min_us, retry_max_us };
        assert_eq!(drain(&mut m), [Command::Report(failed)], "announced with the timing it retries by");
        let next = m.next_timeout().expect("a retry is scheduled");
        waits.push(next - at);
        m.on_timeout(next - ms(1));
        assert_eq!(drain(&mut m), [], "no retry before its time");
        at = next;
        m.on_timeout(at);
    }
    assert_eq!(waits, [ms(100), ms(200), ms(400), ms(800), ms(1600), ms(2000), ms(2000)]);
}

/// A registration that finds the dead marker is the worker's death, not an error to retry: no
/// registration of its id can succeed again (round 38, poolfeed seed 217; MC349 retried it).
#[test]
fn a_registration_refused_by_the_dead_marker_is_the_workers_death() {
    let t0 = Instant::now();
    let run = || {
        let mut m = WorkerMachine::new(timing(), ME, t0);
        assert_eq!(drain(&mut m), [Command::Register]);
        m.on_register_fenced(t0 + ms(5));
        drain(&mut m)
    };
    assert_eq!(run(), [Command::Report(Report::Dead), Command::StopAll, Command::Exit(WorkerExit::Dead)]);
    #[cfg(feature = "mutants")]
    {
        crate::mutants::set(Some(crate::mutants::Mutant::MC349));
        let commands = run();
        crate::mutants::set(None);
        assert!(matches!(commands[..], [Command::Report(Report::RegisterFailed { .. })]), "MC349: {commands:?}");
    }
}

#[test]
fn a_stop_before_registration_exits_without_a_word() {
    let t0 = Instant::now();
    let mut m = WorkerMachine::new(timing(), ME, t0);
    assert_eq!(drain(&mut m), [Command::Register]);
    m.on_registered(t0, None);
    assert!(matches!(drain(&mut m)[..], [Command::Report(Report::RegisterFailed { .. })]));
    assert!(m.listens_for_stop());
    m.on_stop(t0 + ms(10));
    assert_eq!(drain(&mut m), [Command::Exit(WorkerExit::Stopped)]);
    assert!(m.is_done());
}

#[test]
fn it_fences_exactly_at_ttl_minus_the_drift_margin_after_the_registrations_send() {
    let t0 = Instant::now();
    let mut m = WorkerMachine::new(timing(), ME, t0);
    drain(&mut m);
    // The registration's reply comes late: the deadline counts from its send.
    m.on_registered(t0 + ms(900), Some("ka0".into()));
    drain(&mut m);
    let fence = t0 + TTL - MARGIN;
    m.on_timeout(t0 + ms(900) + INTERVAL);
    let cmds = drain(&mut m);
    assert_eq!(cmds, [Command::Beat { expected: "ka0".into(), stopping: false }]);
    // The beat hangs: only the fence deadline can fire, and it does, exactly then.
    assert_eq!(m.next_timeout(), Some(fence));
    assert!(!m.accepts_records() && !m.listens_for_stop(), "nothing else is heard during a beat");
    m.on_timeout(fence - ms(1));
    assert_eq!(drain(&mut m), []);
    m.on_timeout(fence);
    assert_eq!(drain(&mut m), [Command::Report(Report::Fenced { running: 0 }), Command::StopAll]);
    assert!(m.is_fenced());
    assert_eq!(m.next_timeout(), None, "fenced with a beat in flight: only its reply moves the machine");
}

#[test]
fn a_hanging_beat_fences_the_worker_and_stops_its_runs() {
    let (mut m, t0) = registered();
    start(&mut m, t0 + ms(10), "a", 1);
    start(&mut m, t0 + ms(20), "b", 3);
    m.on_timeout(t0 + INTERVAL);
    assert!(matches!(drain(&mut m).as_slice(), [Command::Beat { .. }]));
    m.on_timeout(t0 + TTL - MARGIN);
    assert_eq!(drain(&mut m), [Command::Report(Report::Fenced { running: 2 }), Command::StopAll]);
    assert_eq!(m.runs().count(), 0, "the stopped runs are no longer tracked");
    // The beat finally answers, applied: unfenced, confirmed from the beat's send (t0 + 2 s).
    m.on_beat(t0 + ms(6000), BeatReply::Applied { new: "ka1".into() });
    assert_eq!(drain(&mut m), [Command::Report(Report::Unfenced)]);
    assert!(!m.is_fenced() && m.accepts_records());
    assert_eq!(m.next_timeout(), Some(t0 + ms(2000) + TTL - MARGIN), "the next fence is due before the next beat");
    // The next beat expects the value the confirmed beat wrote.
    m.on_timeout(t0 + ms(2000) + TTL - MARGIN);
    assert_eq!(drain(&mut m), [Command::Report(Report::Fenced { running: 0 }), Command::StopAll]);
    m.on_timeout(t0 + ms(8000));
    assert_eq!(drain(&mut m), [Command::Beat { expected: "ka1".into(), stopping: false }]);
}

#[test]
fn a_confirmed_beat_moves_the_fence_and_schedules_the_next_beat() {
    let (mut m, t0) = registered();
    assert_eq!(m.next_timeout(), Some(t0 + INTERVAL));
    let cmds = beat(&mut m, t0 + INTERVAL, t0 + INTERVAL + ms(50), BeatReply::Applied { new: "ka1".into() });
    assert_eq!(cmds, []);
    assert_eq!(m.next_timeout(), Some(t0 + INTERVAL + ms(50) + INTERVAL));
    // Silence from here: the fence falls at the beat's send + ttl − margin, not its reply.
    let fence = t0 + INTERVAL + TTL - MARGIN;
    for (beat_at, reply_at) in [(ms(4050), ms(4060)), (ms(6060), ms(6070))] {
        assert_eq!(beat(&mut m, t0 + beat_at, t0 + reply_at, BeatReply::NotSent), []);
    }
    m.on_timeout(fence - ms(1));
    assert_eq!(drain(&mut m), []);
    m.on_timeout(fence);
    assert_eq!(drain(&mut m), [Command::Report(Report::Fenced { running: 0 }), Command::StopAll]);
}

#[test]
fn a_value_it_never_wrote_means_dead() {
    let (mut m, t0) = registered();
    start(&mut m, t0, "a", 1);
    let cmds = beat(&mut m, t0 + INTERVAL, t0 + INTERVAL, BeatReply::Rejected { current: Some("dead".into()) });
    assert_eq!(cmds, [Command::Report(Report::Dead), Command::StopAll, Command::Exit(WorkerExit::Dead)]);
    assert!(m.is_done() && m.next_timeout().is_none());
    // A keep-alive that vanished is dead too.
    let (mut m, t0) = registered();
    let cmds = beat(&mut m, t0 + INTERVAL, t0 + INTERVAL, BeatReply::Rejected { current: None });
    assert_eq!(cmds.last(), Some(&Command::Exit(WorkerExit::Dead)));
}

#[test]
fn it_adopts_a_value_whose_reply_was_lost() {
    let (mut m, t0) = registered();
    // The write of "ka1" timed out, but it landed.
    assert_eq!(beat(&mut m, t0 + INTERVAL, t0 + INTERVAL, BeatReply::Unknown { new: "ka1".into() }), []);
    let cmds = beat(&mut m, t0 + ms(4000), t0 + ms(4000), BeatReply::Rejected { current: Some("ka1".into()) });
    assert_eq!(cmds, [], "adopted, not dead");
    // Adoption does not confirm: the deadline still counts from the registration.
    assert_eq!(m.next_timeout(), Some(t0 + TTL - MARGIN));
    m.on_timeout(t0 + ms(6000));
    assert_eq!(drain(&mut m), [Command::Report(Report::Fenced { running: 0 }), Command::StopAll]);
    // The fence is one step; the beat that was due comes at the next, from the adopted value.
    m.on_timeout(t0 + ms(6000));
    assert_eq!(drain(&mut m), [Command::Beat { expected: "ka1".into(), stopping: false }]);
}

/// A beat whose outcome is unknown is in doubt, not landed: the next beat expects the last value
/// known to have landed (blind-spot hunt, round 37, B #17, MC340: taken for landed, a lost
/// write made the next beat expect a value the store never held, and the live worker died).
#[test]
fn a_beat_whose_outcome_is_unknown_is_not_taken_for_landed() {
    let (mut m, t0) = registered();
    assert_eq!(beat(&mut m, t0 + INTERVAL, t0 + INTERVAL, BeatReply::Unknown { new: "ka1".into() }), []);
    m.on_timeout(t0 + INTERVAL * 2);
    assert_eq!(drain(&mut m), [Command::Beat { expected: "ka0".into(), stopping: false }]);
    m.on_beat(t0 + INTERVAL * 2, BeatReply::Applied { new: "ka2".into() });
    assert_eq!(drain(&mut m), [], "the write of ka1 was lost: ka0 held, and replaced");
}

/// A confirmed beat ends the doubt: a value written before it, whose reply was lost, is no
/// longer one the worker may adopt (the store went back to it: rolled back, the worker is
/// dead) (blind-spot hunt, round 37, B #6).
#[test]
fn a_confirmed_beat_forgets_the_values_in_doubt() {
    let (mut m, t0) = registered();
    assert_eq!(beat(&mut m, t0 + INTERVAL, t0 + INTERVAL, BeatReply::Unknown { new: "ka1".into() }), []);
    let cmds = beat(&mut m, t0 + INTERVAL * 2, t0 + INTERVAL * 2, BeatReply::Applied { new: "ka2".into() });
    assert_eq!(cmds, []);
    let cmds = beat(&mut m, t0 + INTERVAL * 3, t0 + INTERVAL * 3, BeatReply::Rejected { current: Some("ka1".into()) });
    assert_eq!(cmds.last(), Some(&Command::Exit(WorkerExit::Dead)), "ka1 is no longer in doubt");
}

#[test]
fn values_in_doubt_are_bounded() {
    let (mut m, t0) = registered();
    let mut now = t0;
    for i in 0..=BEATS_IN_DOUBT_MAX {
        now += INTERVAL;
        m.on_timeout(now);
        if drain(&mut m).contains(&Command::StopAll) {
            m.on_timeout(now); // fenced first (no beat confirms), then the beat
            drain(&mut m);
        }
        m.on_beat(now, BeatReply::Unknown { new: format!("v{i}") });
        assert_eq!(drain(&mut m), []);
    }
    now += INTERVAL;
    let last = format!("v{BEATS_IN_DOUBT_MAX}");
    let cmds = beat(&mut m, now, now, BeatReply::Rejected { current: Some(last) });
    assert_eq!(cmds.last(), Some(&Command::Exit(WorkerExit::Dead)), "a value past the bound is not remembered");
}

#[test]
fn a_repeated_delivery_is_ignored_and_a_newer_attempt_replaces_the_run() {
    let (mut m, t0) = registered();
    let r1 = start(&mut m, t0, "a", 1);
    m.on_record(t0 + ms(1), "a", Some(rec(1, ME)));
    assert_eq!(drain(&mut m), [], "a re-announcement of the run we have");
    m.on_record(t0 + ms(2), "a", Some(rec(2, ME)));
    let cmds = drain(&mut m);
    assert_eq!(cmds[0], Command::StopRun { job: "a".into(), run: r1 });
    assert!(matches!(&cmds[1..], [Command::StartRun { run, rec, .. }] if *run == r1 + 1 && rec.attempt == 2));
    // An older attempt delivered late changes nothing.
    m.on_record(t0 + ms(3), "a", Some(rec(1, ME)));
    assert_eq!(drain(&mut m), []);
    assert_eq!(m.runs().collect::<Vec<_>>(), [("a", 2, r1 + 1)]);
}

#[test]
fn a_moved_or_vanished_record_stops_the_stale_run() {
    let (mut m, t0) = registered();
    let ra = start(&mut m, t0, "a", 1);
    let rb = start(&mut m, t0, "b", 1);
    let rc = start(&mut m, t0, "c", 4);
    m.on_record(t0, "a", Some(rec(2, "w2")));
    m.on_record(t0, "b", None);
    m.on_record(t0, "c", Some("garbage".into()));
    assert_eq!(
        drain(&mut m),
        [
            Command::StopRun { job: "a".into(), run: ra },
            Command::StopRun { job: "b".into(), run: rb },
            Command::StopRun { job: "c".into(), run: rc }
        ]
    );
    #[cfg(feature = "mutants")]
    {
        let (mut m, t0) = registered();
        start(&mut m, t0, "a", 1);
        crate::mutants::set(Some(crate::mutants::Mutant::MC139));
        m.on_record(t0, "a", Some(rec(2, "w2")));
        crate::mutants::set(None);
        assert_eq!(drain(&mut m), [], "MC139: a record moved to another worker does not stop the run");
    }
    // A record of another owner at our own attempt (an old announcement) does not stop it.
    let rd = start(&mut m, t0, "d", 5);
    m.on_record(t0, "d", Some(rec(5, "w2")));
    assert_eq!(drain(&mut m), []);
    // Stopped runs stay tracked until they end; a stale end does not untrack a newer run.
    assert_eq!(m.runs().count(), 4);
    m.on_run_ended(t0, "a", ra);
    let ra2 = start(&mut m, t0, "a", 3);
    m.on_run_ended(t0, "a", ra);
    assert_eq!(m.runs().find(|r| r.0 == "a"), Some(("a", 3, ra2)));
    let _ = rd;
}

#[test]
fn the_same_attempt_runs_again_once_its_first_run_ended() {
    // P2, pool seed 135: the first run's end is matched by its number, so a second run of the
    // same attempt (after a fence, or a failed ack) is tracked, and the next fence stops it.
    let (mut m, t0) = registered();
    let r1 = start(&mut m, t0, "a", 1);
    m.on_run_ended(t0 + ms(5), "a", r1);
    let r2 = start(&mut m, t0 + ms(6), "a", 1);
    assert!(r2 > r1);
    m.on_run_ended(t0 + ms(7), "a", r1);
    assert_eq!(m.runs().collect::<Vec<_>>(), [("a", 1, r2)], "the stale end leaves the second run tracked");
    m.on_timeout(t0 + INTERVAL);
    drain(&mut m);
    m.on_timeout(t0 + TTL - MARGIN);
    assert_eq!(drain(&mut m), [Command::Report(Report::Fenced { running: 1 }), Command::StopAll]);
}

#[test]
fn records_are_refused_while_fenced_and_the_fence_stops_every_run() {
    let (mut m, t0) = registered();
    start(&mut m, t0, "a", 1);
    // A pause: the machine is woken long after its beat was due; the fence comes first.
    m.on_timeout(t0 + ms(5600));
    assert_eq!(drain(&mut m), [Command::Report(Report::Fenced { running: 1 }), Command::StopAll]);
    assert!(!m.accepts_records());
    // Fenced, the next wake is the (overdue) beat only.
    assert_eq!(m.next_timeout(), Some(t0 + INTERVAL));
    m.on_timeout(t0 + ms(5600));
    assert_eq!(drain(&mut m), [Command::Beat { expected: "ka0".into(), stopping: false }]);
}

#[test]
fn a_stop_drains_with_a_stopping_beat_and_ends_when_the_runs_end() {
    let (mut m, t0) = registered();
    let r = start(&mut m, t0, "a", 1);
    let stop = t0 + ms(100);
    m.on_stop(stop);
    assert_eq!(drain(&mut m), [Command::Report(Report::Stopping { running: 1, drain_ms: DRAIN_MS })]);
    assert!(!m.accepts_records() && !m.listens_for_stop());
    m.on_timeout(stop);
    assert_eq!(drain(&mut m), [Command::Beat { expected: "ka0".into(), stopping: true }]);
    m.on_beat(stop + ms(10), BeatReply::Applied { new: "ka1".into() });
    drain(&mut m);
    m.on_timeout(stop + ms(500));
    assert_eq!(drain(&mut m), [], "still draining");
    m.on_run_ended(stop + ms(600), "a", r);
    m.on_timeout(stop + ms(600));
    assert_eq!(
        drain(&mut m),
        [
            Command::StopAll,
            Command::FinishProducer,
            Command::HandBack,
            Command::Deregister { expected: "ka1".into(), in_doubt: vec![] },
            Command::Report(Report::Stopped),
            Command::Exit(WorkerExit::Stopped)
        ]
    );
}

/// A stopping beat whose reply was lost may be what the store holds: the deregistration is
/// handed it besides the last value seen land, so it deletes the keep-alive over it (P106, MC457).
#[test]
fn a_deregistration_carries_the_beats_in_doubt() {
    let (mut m, t0) = registered();
    let r = start(&mut m, t0, "a", 1);
    let stop = t0 + ms(100);
    m.on_stop(stop);
    drain(&mut m);
    m.on_timeout(stop);
    assert_eq!(drain(&mut m), [Command::Beat { expected: "ka0".into(), stopping: true }]);
    m.on_beat(stop + ms(10), BeatReply::Unknown { new: "ka1".into() });
    m.on_run_ended(stop + ms(20), "a", r);
    m.on_timeout(stop + ms(20));
    let commands = drain(&mut m);
    assert!(
        commands.contains(&Command::Deregister { expected: "ka0".into(), in_doubt: vec!["ka1".into()] }),
        "{commands:?}"
    );
}

/// The stopping mark is written at the stop, not by the next regular beat: until it lands,
/// dispatchers and cleanups may give the draining worker jobs it only hands back (P12).
#[test]
fn a_stop_between_beats_asks_for_its_stopping_beat_at_once() {
    let (mut m, t0) = registered();
    start(&mut m, t0, "a", 1);
    // Mid-interval: the next regular beat is due at t0 + INTERVAL.
    let stop = t0 + INTERVAL / 2;
    m.on_stop(stop);
    assert_eq!(m.next_timeout(), Some(stop), "the stopping beat is due at the stop");
    drain(&mut m);
    m.on_timeout(stop);
    assert_eq!(drain(&mut m), [Command::Beat { expected: "ka0".into(), stopping: true }]);
}

#[test]
fn a_drain_ends_at_the_shutdown_deadline() {
    let (mut m, t0) = registered();
    start(&mut m, t0, "a", 1);
    m.on_stop(t0);
    drain(&mut m);
    let mut now;
    loop {
        let next = m.next_timeout().expect("a draining worker has a timeout");
        assert!(next <= t0 + DRAIN, "the drain deadline is a timeout");
        now = next;
        m.on_timeout(now);
        let cmds = drain(&mut m);
        if cmds.first() == Some(&Command::StopAll) {
            assert_eq!(cmds.last(), Some(&Command::Exit(WorkerExit::Stopped)));
            break;
        }
        if let [Command::Beat { stopping, .. }] = cmds.as_slice() {
            assert!(stopping);
            m.on_beat(now, BeatReply::Applied { new: "x".into() });
            drain(&mut m);
        }
    }
    assert_eq!(now, t0 + DRAIN);
}

/// The first command of a stopping worker that breaks its drain, with its instant: a stopping
/// worker keeps its registration and keep-alive, and stops no run, until its runs ended or its
/// drain deadline passed (P8 in the pool scenario, here without a fault: every beat applied).
/// Drives a worker with one run that never ends, stopped at `t0`, stepping local time by `STEP`
/// until the deadline.
fn drain_breach() -> Option<(Duration, Command)> {
    const STEP: Duration = Duration::from_millis(50);
    let (mut m, t0) = registered();
    start(&mut m, t0, "a", 1);
    let mut beats = 0;
    m.on_stop(t0);
    let mut now = t0;
    while now < t0 + DRAIN {
        m.on_timeout(now);
        while let Some(c) = m.poll_command() {
            match c {
                Command::Beat { stopping, .. } => {
                    assert!(stopping, "a draining worker's beats mark it stopping");
                    beats += 1;
                    m.on_beat(now, BeatReply::Applied { new: format!("ka{beats}") });
                }
                Command::Deregister { .. }
                | Command::RemoveFromMaps
                | Command::StopAll
                | Command::StopRun { .. }
                | Command::DetachAll
                | Command::Report(Report::Dead | Report::Fenced { .. } | Report::Stopped)
                | Command::Exit(_) => return Some((now - t0, c)),
                _ => {}
            }
        }
        now += STEP;
    }
    assert!(beats >= 2, "a drain beats on: {beats}");
    None
}

#[test]
fn a_stopping_worker_keeps_its_registration_and_its_runs_until_the_drain_deadline() {
    assert_eq!(drain_breach(), None);
}

#[test]
fn a_stop_while_fenced_hands_back_at_once() {
    let (mut m, t0) = registered();
    start(&mut m, t0, "a", 1);
    m.on_timeout(t0 + INTERVAL);
    drain(&mut m);
    m.on_timeout(t0 + TTL - MARGIN);
    drain(&mut m); // fenced, runs stopped
    m.on_beat(t0 + ms(5600), BeatReply::NotSent);
    m.on_stop(t0 + ms(5700));
    assert_eq!(drain(&mut m), [Command::Report(Report::Stopping { running: 0, drain_ms: DRAIN_MS })]);
    m.on_timeout(t0 + ms(5700));
    let cmds = drain(&mut m);
    assert_eq!(cmds[..3], [Command::StopAll, Command::FinishProducer, Command::HandBack]);
    assert_eq!(cmds.last(), Some(&Command::Exit(WorkerExit::Stopped)));
}

#[test]
fn the_callers_request_ending_is_nothing_to_the_worker() {
    let (mut m, t0) = registered();
    start(&mut m, t0, "a", 1);
    assert!(!m.listens_to_caller(), "no mutant is on in this thread");
    m.on_caller_stopped(t0);
    assert_eq!(drain(&mut m), []);
    assert!(!m.is_done() && m.runs().count() == 1);
}

#[cfg(feature = "mutants")]
mod mutants_are_branches {
    use super::*;
    use crate::mutants;

    fn with<T>(m: Mutant, f: impl FnOnce() -> T) -> T {
        let prev = mutants::set(Some(m));
        let out = f();
        mutants::set(prev);
        out
    }

    #[test]
    fn mp6_exits_on_the_callers_request_leaving_its_handlers_running() {
        with(Mutant::MP6, || {
            let (mut m, t0) = registered();
            start(&mut m, t0, "a", 1);
            assert!(m.listens_to_caller());
            m.on_caller_stopped(t0 + ms(1));
            // No stop of the runs, no hand-back, no deregistration, no event: a zombie.
            assert_eq!(drain(&mut m), [Command::Exit(WorkerExit::Stopped)]);
        });
    }

    #[test]
    fn mp10_removes_its_state_first_stops_beating_and_requeues_from_memory_after_the_drain() {
        with(Mutant::MP10, || {
            let (mut m, t0) = registered();
            let r = start(&mut m, t0, "a", 1);
            m.on_stop(t0 + ms(10));
            assert_eq!(
                drain(&mut m),
                [Command::Report(Report::Stopping { running: 1, drain_ms: DRAIN_MS }), Command::RemoveFromMaps]
            );
            assert_eq!(drain_breach(), Some((Duration::ZERO, Command::RemoveFromMaps)), "it breaks the drain contract");
            // No beat from here: the next wake is the drain deadline.
            assert_eq!(m.next_timeout(), Some(t0 + ms(10) + DRAIN));
            m.on_timeout(t0 + ms(2010));
            assert_eq!(drain(&mut m), [], "it stopped beating");
            m.on_run_ended(t0 + ms(2500), "a", r);
            m.on_timeout(t0 + ms(2500));
            assert_eq!(
                drain(&mut m),
                [
                    Command::StopAll,
                    Command::FinishProducer,
                    Command::RequeueFromMemory,
                    Command::Report(Report::Stopped),
                    Command::Exit(WorkerExit::Stopped)
                ]
            );
        });
    }

    #[test]
    fn mp16_starts_a_repeated_delivery_again_whose_cleanup_deletes_the_record() {
        with(Mutant::MP16, || {
            let (mut m, t0) = registered();
            start(&mut m, t0, "a", 1);
            m.on_record(t0 + ms(1), "a", Some(rec(1, ME)));
            assert_eq!(drain(&mut m), [Command::DuplicateStart { job: "a".into(), raw: rec(1, ME) }]);
            // An older attempt is not a duplicate.
            start(&mut m, t0, "b", 2);
            m.on_record(t0 + ms(1), "b", Some(rec(1, ME)));
            assert_eq!(drain(&mut m), []);
        });
    }

    #[test]
    fn mc25_deregisters_as_its_drain_begins() {
        with(Mutant::MC25, || {
            let (mut m, t0) = registered();
            start(&mut m, t0, "a", 1);
            m.on_stop(t0);
            assert_eq!(
                drain(&mut m),
                [
                    Command::Report(Report::Stopping { running: 1, drain_ms: DRAIN_MS }),
                    Command::Deregister { expected: "ka0".into(), in_doubt: vec![] }
                ]
            );
            // The drain contract, instant by instant: broken at the stop itself.
            assert_eq!(
                drain_breach(),
                Some((Duration::ZERO, Command::Deregister { expected: "ka0".into(), in_doubt: vec![] }))
            );
            // The beat after it is refused (the keep-alive is gone): dead, every run stopped.
            m.on_timeout(t0);
            assert!(matches!(drain(&mut m).as_slice(), [Command::Beat { stopping: true, .. }]));
            m.on_beat(t0 + ms(1), BeatReply::Rejected { current: None });
            assert_eq!(
                drain(&mut m),
                [Command::Report(Report::Dead), Command::StopAll, Command::Exit(WorkerExit::Dead)]
            );
        });
    }

    #[test]
    fn mc39_leaves_the_stopping_beat_to_the_regular_schedule() {
        with(Mutant::MC39, || {
            let (mut m, t0) = registered();
            start(&mut m, t0, "a", 1);
            let stop = t0 + INTERVAL / 2;
            m.on_stop(stop);
            drain(&mut m);
            m.on_timeout(stop);
            assert_eq!(drain(&mut m), [], "no beat at the stop");
            assert_eq!(m.next_timeout(), Some(t0 + INTERVAL));
            m.on_timeout(t0 + INTERVAL);
            assert_eq!(drain(&mut m), [Command::Beat { expected: "ka0".into(), stopping: true }]);
        });
    }

    #[test]
    fn mc340_takes_a_beat_whose_outcome_is_unknown_for_landed_and_dies_over_its_own_beat() {
        with(Mutant::MC340, || {
            let (mut m, t0) = registered();
            assert_eq!(beat(&mut m, t0 + INTERVAL, t0 + INTERVAL, BeatReply::Unknown { new: "ka1".into() }), []);
            m.on_timeout(t0 + INTERVAL * 2);
            assert_eq!(drain(&mut m), [Command::Beat { expected: "ka1".into(), stopping: false }]);
            m.on_beat(t0 + INTERVAL * 2, BeatReply::Rejected { current: Some("ka0".into()) });
            assert_eq!(drain(&mut m).last(), Some(&Command::Exit(WorkerExit::Dead)), "dead over its own ka0");
        });
    }

    #[test]
    fn mc10_detaches_the_handlers_at_the_end_of_the_drain() {
        with(Mutant::MC10, || {
            let (mut m, t0) = registered();
            start(&mut m, t0, "a", 1);
            m.on_stop(t0);
            drain(&mut m);
            m.on_timeout(t0);
            drain(&mut m); // the stopping beat
            m.on_beat(t0, BeatReply::Applied { new: "ka1".into() });
            m.on_timeout(t0 + DRAIN);
            let cmds = drain(&mut m);
            assert_eq!(cmds[..2], [Command::DetachAll, Command::FinishProducer]);
            assert!(!cmds.contains(&Command::StopAll));
        });
    }
}

/// A registered worker hears its runs' ends (the driver feeds them only while it listens), and
/// not during a beat; a second stop during a drain changes nothing (cargo-mutants, round 35 A:
/// `listens_for_runs` inverted left every finished run tracked and every drain waiting out its
/// deadline, seen in the simulator only by P21 on a few seeds; the second stop's guard dropped
/// would restart the drain and report `Stopping` twice).
#[test]
fn a_registered_worker_hears_runs_end_and_a_second_stop_changes_nothing() {
    let (mut m, t0) = registered();
    assert!(m.listens_for_runs(), "registered, no beat in flight");
    start(&mut m, t0 + ms(5), "j", 1);
    assert!(m.listens_for_runs());
    m.on_timeout(t0 + INTERVAL);
    assert_eq!(drain(&mut m), [Command::Beat { expected: "ka0".into(), stopping: false }]);
    assert!(!m.listens_for_runs(), "not during a beat");
    m.on_beat(t0 + INTERVAL + ms(5), BeatReply::Applied { new: "ka1".into() });
    drain(&mut m);
    assert!(m.listens_for_runs(), "after the beat");
    let stop = t0 + INTERVAL + ms(10);
    m.on_stop(stop);
    let first = drain(&mut m);
    assert!(matches!(first[..], [Command::Report(Report::Stopping { running: 1, .. }), ..]), "{first:?}");
    let bound = m.next_timeout();
    m.on_stop(stop + ms(10));
    assert_eq!(drain(&mut m), [], "a second stop reports nothing");
    assert_eq!(m.next_timeout(), bound, "and keeps the drain's bound");
}

/// A record naming another incarnation of the same node's worker slot (same node, same number,
/// another start) is not ours: worker ids are unique per incarnation, and a record of the dead
/// incarnation belongs to its cleanup, never to its successor (blind-spot hunt, round 42 B #12:
/// ids compared by node and slot number only; the node's router hands records by exact id, so
/// no simulated run delivered such a record).
#[test]
fn a_record_of_another_incarnation_of_the_slot_is_not_ours() {
    let t0 = Instant::now();
    let me = "n1.1767225600031.2";
    let mut m = WorkerMachine::new(timing(), me, t0);
    assert_eq!(drain(&mut m), [Command::Register]);
    m.on_registered(t0, Some("ka0".into()));
    drain(&mut m);
    for other in ["n1.1767225600007.2", "n1.1767225600031.3", "n2.1767225600031.2"] {
        m.on_record(t0, "j", Some(rec(1, other)));
        assert_eq!(drain(&mut m), [], "a record of {other} started a run of {me}");
    }
    m.on_record(t0, "j", Some(rec(1, me)));
    assert!(matches!(drain(&mut m).as_slice(), [Command::StartRun { .. }]), "our own record starts a run");
}
