//! The public harness on small services of its own: what a user's test sees.

#![cfg(madsim)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use keel_sim::harness::{Node, Sim};

/// A process-wide counter: the kind of state that survives from one run to the next in one test
/// process, so the same seed no longer gives the same run.
static CALLS: AtomicU64 = AtomicU64::new(0);

#[derive(Clone, Debug, PartialEq)]
enum Ev {
    Tick(u64),
    Done,
}

fn quiet(name: &str) -> Sim<Ev> {
    Sim::new(name).nodes(2).faults(&[]).window(Duration::from_secs(1)).settle(Duration::from_secs(1))
}

#[test]
fn a_sweep_whose_runs_cannot_be_replayed_fails_and_names_the_divergence() {
    let sim = quiet("leaky").node(|node: Node<Ev>| async move {
        node.record(Ev::Tick(CALLS.fetch_add(1, Ordering::Relaxed)));
    });
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sim.test())).expect_err("must fail");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("is not deterministic") && msg.contains("first divergence at event"), "{msg}");
}

#[test]
fn eventually_judges_follow_ups_by_the_deadline_and_passes_a_replayable_sweep() {
    let sim = quiet("ticks").node(|node: Node<Ev>| async move {
        node.record(Ev::Tick(node.index() as u64));
        if node.index() == 0 {
            node.record(Ev::Done);
        }
    });
    let out = sim.run(1);
    assert!(out.passed(), "{:?}", out.violations);
    let strict = sim.check(|run| {
        run.eventually("done", Duration::from_millis(100), |e| matches!(e, Ev::Tick(_)), |_, e| *e == Ev::Done)
    });
    // Both ticks have a Done by their deadline (node 1's tick is answered by node 0's Done).
    assert!(strict.run(1).passed());
    let never = quiet("never")
        .node(|node: Node<Ev>| async move { node.record(Ev::Tick(0)) })
        .check(|run| run.eventually("done", Duration::from_millis(100), |_| true, |_, e| *e == Ev::Done));
    let out = never.run(1);
    assert_eq!(out.violations.iter().filter(|v| v.invariant == "done").count(), 2, "{:?}", out.violations);
    strict.test();
}

#[derive(Clone, Debug, PartialEq)]
enum Ping {
    /// Answered, after this many ms.
    Answered(u64),
    Lost,
}

/// Node 1 echoes; node 0 pings it every 100 ms and waits 300 ms for each answer.
async fn pinger(node: Node<Ping>) {
    use keel::clock::Clock;
    use keel_sim::harness::Endpoint;
    // Runs until the simulation ends.
    let Ok(ep) = Endpoint::bind((node.ip(), 7000)).await else { return };
    let mut buf = [0u8; 8];
    if node.index() == 1 {
        while let Ok((_, from)) = ep.recv_from(1, &mut buf).await {
            let _ = ep.send_to(from, 2, b"pong").await;
        }
        return;
    }
    let peer = (Node::<Ping>::peer_ip(1), 7000);
    let clock = node.clock();
    loop {
        let sent = clock.now();
        let _ = ep.send_to(peer, 1, b"ping").await;
        let answered = tokio::select! {
            biased;
            r = ep.recv_from(2, &mut buf) => r.is_ok(),
            _ = clock.sleep(Duration::from_millis(300)) => false,
        };
        let rtt_ms = u64::try_from(clock.now().saturating_duration_since(sent).as_millis()).unwrap_or(u64::MAX);
        node.record(if answered { Ping::Answered(rtt_ms) } else { Ping::Lost });
        clock.sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn nodes_talk_to_each_other_and_a_partition_between_them_drops_their_messages() {
    use keel_sim::plan::FaultKind;
    let calm = Sim::<Ping>::new("pings").nodes(2).faults(&[]).window(Duration::from_secs(5)).node(pinger);
    let out = calm.run(1);
    let lost = |out: &keel_sim::runner::RunOutcome| out.events.iter().filter(|e| e.line().contains("Lost")).count();
    assert!(out.passed(), "{:?}", out.violations);
    assert!(out.events.iter().any(|e| e.line().contains("Answered")) && lost(&out) == 0, "calm: every ping answered");
    let cut = Sim::<Ping>::new("pings")
        .nodes(2)
        .faults(&[FaultKind::NodePartition])
        .window(Duration::from_secs(5))
        .node(pinger)
        .sometimes("a ping was lost", |run| run.events.iter().any(|e| e.ev == Ping::Lost))
        .check(|run| {
            // After the heal every ping is answered again.
            let late = run.events.iter().filter(|e| e.t_us > run.heal_us() + 400_000 && e.ev == Ping::Lost);
            late.map(|e| keel_sim::check::Violation::new("healed", e.t_us, "a ping lost after the heal")).collect()
        });
    cut.test();
}

#[test]
fn a_failing_seed_saves_its_fault_plan_and_the_plan_replays_the_same_run() {
    use keel_sim::plan::{FaultKind, FaultPlan, PlanSpec};
    use keel_sim::scenario::Scenario;
    let sim = Sim::<Ev>::new("crashes")
        .nodes(2)
        .faults(&[FaultKind::NodeCrash])
        .window(Duration::from_secs(5))
        .node(|node: Node<Ev>| async move { node.record(Ev::Tick(node.index() as u64)) })
        .check(|run| {
            // A rule this service breaks whenever a node starts twice (a crash restarts it).
            let ticks = run.events.iter().filter(|e| matches!(e.ev, Ev::Tick(_))).count();
            if ticks > 2 {
                vec![keel_sim::check::Violation::new("once", run.end_us(), "a node started twice")]
            } else {
                vec![]
            }
        });
    let err =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sim.test())).expect_err("a crash restarts a node");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    let seed: u64 =
        msg.split("seed ").nth(1).and_then(|s| s.split(' ').next()).and_then(|s| s.parse().ok()).expect(&msg);
    let file = msg.lines().find_map(|l| l.strip_prefix("plan: ")).expect(&msg);
    assert!(msg.contains("same trace hash") && msg.contains("replay: MADSIM_TEST_SEED="), "{msg}");
    let spec: PlanSpec = sim.plan_spec();
    let plan = FaultPlan::from_json(&std::fs::read_to_string(file).expect("plan saved"), &spec).expect("plan parses");
    let (from_seed, from_plan) = (sim.run(seed), sim.run_plan(seed, plan));
    assert_eq!(from_seed.trace_hash, from_plan.trace_hash, "the saved plan is the seed's own");
    assert_eq!(from_plan.violations.first().map(|v| v.invariant), Some("once"));
}

#[test]
fn network_latency_slows_traffic_between_nodes_and_ends_with_the_heal() {
    use keel_sim::plan::FaultKind;
    let slow = Sim::<Ping>::new("slow-pings")
        .nodes(2)
        .faults(&[FaultKind::NetworkLatency])
        .window(Duration::from_secs(5))
        .node(pinger)
        .sometimes("a ping took over 50 ms", |run| {
            run.events.iter().any(|e| matches!(e.ev, Ping::Answered(ms) if ms > 50))
        })
        .check(|run| {
            // Calm, a round trip is two messages of 1–5 ms each, plus the simulated hosts' own delays
            // (11–12 ms at most seen).
            let late = run
                .events
                .iter()
                .filter(|e| e.t_us > run.heal_us() + 400_000 && !matches!(e.ev, Ping::Answered(ms) if ms <= 20));
            late.map(|e| keel_sim::check::Violation::new("healed", e.t_us, format!("{:?} after the heal", e.ev)))
                .collect()
        });
    slow.test();
}

/// MC395 (the world's network slowdowns ended in the reverse order they began: where two
/// overlap and the first ends first, the network keeps the ended one's latency) is W4's, which
/// every run judges: network latency is drawn only for services whose nodes talk to each other,
/// so keel's own scenarios never take it, and this lane holds the mutant's proof.
#[test]
fn network_slowdowns_that_end_out_of_order_break_w4_and_in_order_do_not() {
    use keel::mutants::Mutant;
    use keel_sim::plan::FaultKind;
    let sim = Sim::<Ping>::new("slowdown-order").nodes(2).faults(&[FaultKind::NetworkLatency]).node(pinger);
    let w4 = |run: keel_sim::runner::RunOutcome| run.violations.iter().any(|v| v.invariant == "W4");
    let caught = (0..20).find(|&seed| w4(sim.run_mutant(seed, Mutant::MC395)));
    assert!(caught.is_some(), "MC395 escaped W4 in seeds 0..20");
    let seed = caught.unwrap_or_default();
    assert!(!w4(sim.run(seed)), "W4 fired on seed {seed} without the mutant");
}

#[derive(Clone, Debug, PartialEq)]
enum Feed {
    Change(String),
    Gap,
    Wrote(String),
}

/// Node 0 watches map `m`; node 1 writes key `before` at 200 ms and `after` at 600 ms.
async fn watcher(node: Node<Feed>) {
    use keel::clock::Clock;
    use keel::store::{MapWrite, Store, Watch, WatchEvent};
    let store = node.ctx().store().await;
    let clock = node.clock();
    if node.index() == 1 {
        let start = clock.now();
        for (key, at_ms) in [("before", 200), ("after", 600)] {
            clock.sleep_until(start + Duration::from_millis(at_ms)).await;
            if store.map_write("m", key, MapWrite::Set("v".into())).await.is_ok() {
                node.record(Feed::Wrote(key.into()));
            }
        }
        return;
    }
    let Ok(mut watch) = store.watch("m").await else { return };
    loop {
        match watch.next().await {
            WatchEvent::Change(c) => node.record(Feed::Change(c.key)),
            WatchEvent::Gap => node.record(Feed::Gap),
        }
    }
}

/// The simulator's own transport: a watch whose connection is killed (`FeedDisconnect`, at
/// 400 ms) reports a gap before anything committed after the kill, and never delivers such a
/// change on the dead connection (blind-spot hunt, round 15, #20: a forwarder that outlived its
/// connection was seen only through a stale corpus entry).
#[test]
fn a_killed_connection_ends_its_watch_with_a_gap_before_any_later_change() {
    use keel_sim::check::Violation;
    use keel_sim::plan::{Fault, FaultPlan, Profile, Timed};
    let sim = Sim::<Feed>::new("feed").nodes(2).faults(&[]).window(Duration::from_secs(1)).node(watcher).check(|run| {
        let seen: Vec<&Feed> = run.events.iter().map(|e| &e.ev).filter(|f| !matches!(f, Feed::Wrote(_))).collect();
        let wrote = run.events.iter().filter(|e| matches!(e.ev, Feed::Wrote(_))).count();
        let gap = seen.iter().position(|f| **f == Feed::Gap);
        let after = seen.iter().position(|f| **f == Feed::Change("after".into()));
        let mut v = Vec::new();
        if wrote != 2 || seen.first() != Some(&&Feed::Change("before".into())) || gap.is_none() {
            v.push(Violation::new(
                "setup",
                0,
                format!("both writes land, `before` is seen, the kill is a gap: {seen:?}"),
            ));
        }
        if after.is_some_and(|a| gap.is_none_or(|g| a < g)) {
            v.push(Violation::new(
                "forwarder",
                0,
                format!("a change committed after the kill came before its gap: {seen:?}"),
            ));
        }
        v
    });
    let plan = FaultPlan {
        seed: 1,
        profile: Profile::Calm,
        enabled: vec![],
        heal_at_ms: 1_000,
        events: vec![Timed { at_ms: 400, fault: Fault::FeedDisconnect }],
    };
    let out = sim.run_plan(1, plan);
    assert!(out.passed(), "{:?}", out.violations);
}

/// A service's own store calls, cut at the op timeout on its node's clock or not (`cut`):
/// node 0 writes key `k` every 100 ms for the run's window.
async fn writer(node: Node<Feed>, cut: bool) {
    use keel::clock::Clock;
    use keel::store::{MapWrite, Store};
    let store = node.ctx().store().await;
    let clock = node.clock();
    if node.index() != 0 {
        return;
    }
    for _ in 0..10 {
        let write = store.map_write("m", "k", MapWrite::Set("v".into()));
        let wrote = if cut {
            tokio::select! {
                biased;
                r = write => r.is_ok(),
                () = clock.sleep(Duration::from_millis(200)) => false,
            }
        } else {
            write.await.is_ok()
        };
        if wrote {
            node.record(Feed::Wrote("k".into()));
        }
        clock.sleep(Duration::from_millis(100)).await;
    }
}

/// E6 on a service's own code: the simulated client gives up on a call only at four op
/// timeouts, so a write the service does not bound itself goes on through a 1 s latency spike
/// and is reported at its end; the same writes cut at the op timeout pass.
#[test]
fn a_store_call_the_service_does_not_bound_breaks_e6() {
    use keel_sim::plan::{Fault, FaultPlan, Profile, Timed};
    let plan = || FaultPlan {
        seed: 1,
        profile: Profile::Calm,
        enabled: vec![],
        heal_at_ms: 1_000,
        events: vec![Timed { at_ms: 300, fault: Fault::LatencySpike { ms: 400, extra_ms: 1_000 } }],
    };
    let sim = |cut: bool| {
        Sim::<Feed>::new("writes")
            .nodes(1)
            .faults(&[])
            .window(Duration::from_secs(1))
            .op_timeout(Duration::from_millis(200))
            .node(move |node| writer(node, cut))
    };
    let out = sim(true).run_plan(1, plan());
    assert!(out.passed(), "{:?}", out.violations);
    let out = sim(false).run_plan(1, plan());
    let e6: Vec<_> = out.violations.iter().filter(|v| v.invariant == "E6").collect();
    assert!(!e6.is_empty() && e6[0].detail.contains("map_write"), "{:?}", out.violations);
}

/// The faults' own goals (`Sim::fault_effects`): a service that writes through lost replies
/// sees a reply lost after its write applied, and a sweep whose service never meets the fault
/// fails, naming the effect it never saw, instead of passing with the fault untested.
#[test]
fn a_fault_that_meets_no_call_fails_the_sweep_that_asked_for_its_effect() {
    use keel_sim::plan::FaultKind;
    let sim = |calls: bool| {
        Sim::<Feed>::new("effects")
            .nodes(1)
            .faults(&[FaultKind::ReplyLoss])
            .window(Duration::from_secs(1))
            .op_timeout(Duration::from_millis(200))
            .fault_effects()
            .seeds(20)
            .node(move |node| async move {
                if calls {
                    writer(node, true).await;
                }
            })
    };
    sim(true).test();
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sim(false).test())).expect_err("must fail");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("never reached these goals: reply_lost_after_apply"), "{msg}");
}

/// A plan replayed under another seed is another schedule: the run's seed drives madsim's
/// scheduler and network, the plan only the faults. `replay --seed N --plan F` and a corpus
/// entry whose seed is not its plan's rely on it (hunt 32 A #12: the scheduler seeded from the
/// plan's seed ran one schedule under every seed, and only stale corpus entries noticed).
#[test]
fn one_plan_under_two_seeds_is_two_schedules() {
    let sim =
        Sim::<Feed>::new("writes").nodes(1).faults(&[]).window(Duration::from_secs(1)).node(|node| writer(node, true));
    let plan = sim.run(1).plan;
    let (a, again, b) = (sim.run_plan(1, plan.clone()), sim.run_plan(1, plan.clone()), sim.run_plan(2, plan));
    assert!(a.passed() && b.passed(), "{:?} {:?}", a.violations, b.violations);
    assert_eq!(a.trace_hash, again.trace_hash, "one seed, one plan: one run");
    assert_ne!(a.trace_hash, b.trace_hash, "the plan's seed ran under seed 2");
}
