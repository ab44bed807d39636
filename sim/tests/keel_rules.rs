//! keel's rules a service gets for free through the harness, each shown catching the bug it is
//! for: a handler that ignores its stop (P2), workers that end with the request that added them
//! (pulse PR #51, mutant MP6), leaving their jobs unfinished (P1), and the pool's, the
//! completer's, the map's and the group's rules at the instant on keel's own scenarios under
//! their mutants.

#![cfg(madsim)]

use std::sync::Arc;
use std::time::Duration;

use keel::clock::Clock;
use keel::lease::{LeaseConfig, LeaseOwner};
use keel::mutants::Mutant;
use keel::pool::{Job, JobHandler, JobOutcome, Pool, PoolConfig};
use keel::shutdown::Shutdown;
use keel_sim::harness::{FencedResource, Node, Sim};
use keel_sim::plan::FaultKind;

/// Sleeps for the payload's milliseconds; a careless one does not watch its stop.
struct Work {
    clock: Arc<dyn Clock>,
    honours_stop: bool,
}

impl JobHandler for Work {
    async fn run(&self, job: Job) -> JobOutcome {
        let d = Duration::from_millis(job.payload().parse().unwrap_or(500));
        if !self.honours_stop {
            self.clock.sleep(d).await; // the bug: a fenced worker's handler runs on
            return JobOutcome::Completed;
        }
        tokio::select! {
            biased;
            _ = job.stopped() => JobOutcome::Abandoned,
            _ = self.clock.sleep(d) => JobOutcome::Completed,
        }
    }
}

/// Every node runs two workers; node 0 dispatches 30 jobs of 0.3–2.6 s, one every 200 ms.
async fn pool_node(node: Node<()>, honours_stop: bool, busy: bool) {
    // The plan's knob: the smallest queue of delivered records a worker may have.
    let intake = if node.ctx().small_buffers() { 1 } else { 1024 };
    // The other knob: the shortest dedup window (one TTL), and keys sent again.
    let reuse = node.ctx().short_retention();
    let b = PoolConfig::builder("jobs", node.name()).worker_ttl(Duration::from_secs(1)).intake_buffer(intake);
    let Ok(cfg) = (if reuse { b.dedup_window(Duration::from_secs(1)) } else { b }).build() else {
        return;
    };
    let clock: Arc<dyn Clock> = Arc::new(node.clock());
    let Ok(pool) =
        Pool::new(node.store().await, cfg).with_clock(clock.clone()).with_parent(node.shutdown()).start().await
    else {
        return;
    };
    let request = Shutdown::new("add workers");
    for _ in 0..2 {
        let _ = pool.add_worker(Work { clock: clock.clone(), honours_stop }, &request);
    }
    request.cancel();
    if node.index() == 0 {
        // Busy: more jobs in flight per worker, so a queue meets repeats of running jobs.
        let (jobs, every_ms) = if busy { (60, 50) } else { (30, 200) };
        for i in 0..jobs {
            // With short windows every fourth dispatch sends a key three dispatches old again.
            let key = if reuse && i % 4 == 3 { i - 3 } else { i };
            let _ = pool.dispatch(&format!("job-{key}"), &(300 + i * 80).to_string()).await;
            clock.sleep(Duration::from_millis(every_ms)).await;
        }
    }
    node.shutdown().cancelled().await;
    pool.stop().await;
}

fn service(honours_stop: bool, kinds: &[FaultKind]) -> Sim {
    pool_service(honours_stop, false, kinds)
}

fn pool_service(honours_stop: bool, busy: bool, kinds: &[FaultKind]) -> Sim {
    Sim::new("jobs")
        .nodes(3)
        .faults(kinds)
        .window(Duration::from_secs(10))
        .settle(Duration::from_secs(15))
        .node(move |node| pool_node(node, honours_stop, busy))
        .check(|run| run.keel_jobs_completed(Duration::from_secs(12)))
}

/// The first seed of `seeds` whose run breaks `invariant`.
fn first_breaking(sim: &Sim, seeds: std::ops::Range<u64>, mutant: Option<Mutant>, invariant: &str) -> Option<u64> {
    seeds.into_iter().find(|&s| {
        let out = match mutant {
            Some(m) => sim.run_mutant(s, m),
            None => sim.run(s),
        };
        out.violations.iter().any(|v| v.invariant == invariant)
    })
}

#[test]
fn a_handler_that_ignores_its_stop_runs_twice_at_once_and_p2_sees_it() {
    let kinds = [FaultKind::NodePause, FaultKind::Partition];
    let careless = service(false, &kinds);
    let seed =
        first_breaking(&careless, 1..40, None, "P2").expect("a paused worker's handler ran on beside the next attempt");
    eprintln!("careless handler: seed {seed} broke P2");
    let careful = service(true, &kinds);
    let out = careful.run(seed);
    assert!(out.passed(), "the handler that honours its stop passes seed {seed}: {:?}", out.violations);
}

#[test]
fn workers_bound_to_the_request_that_added_them_mp6_strand_jobs_and_break_p1() {
    let kinds = [FaultKind::NodeCrash];
    let sim = service(true, &kinds);
    let seed = first_breaking(&sim, 1..20, Some(Mutant::MP6), "P1").expect("MP6's workers end with their request");
    eprintln!("MP6: seed {seed} broke P1");
    let out = sim.run(seed);
    assert!(out.passed(), "unmutated, seed {seed} passes: {:?}", out.violations);
}

/// A service that sizes its pool's queues by the plan's knob: with `SmallBuffers` on, MC426 (a
/// sweep re-sending the repeats of running jobs first) keeps a record whose completion failed
/// out of its worker's one-slot queue at every sweep and strands its job (P1); the same seed
/// with the knob off (every fault and the workload where they were) passes under the same
/// mutant, and unmutated
/// with the knob on passes too.
#[test]
fn the_small_buffers_knob_reaches_a_full_queue_and_mc426_strands_a_job_only_there() {
    let kinds = [FaultKind::StoreUnavailable, FaultKind::ReplyLoss, FaultKind::SmallBuffers];
    let sim = pool_service(true, true, &kinds);
    let seed =
        first_breaking(&sim, 1..100, Some(Mutant::MC426), "P1").expect("MC426 strands a job behind a full queue");
    eprintln!("MC426 with small buffers: seed {seed} broke P1");
    let out = sim.run(seed);
    assert!(out.passed(), "unmutated, seed {seed} passes: {:?}", out.violations);
    let roomy = pool_service(true, true, &kinds[..2]);
    let out = roomy.run_mutant(seed, Mutant::MC426);
    assert!(out.passed(), "the knob off, seed {seed} passes under MC426: {:?}", out.violations);
}

/// A service that sets its pool's dedup window by the plan's `ShortRetention` knob and sends
/// keys again: with the knob, MC430 (a dispatch guarded by the job's record alone, not its
/// tombstone) adds a completed key again inside its window, and the store sees the record
/// beside the tombstone (P86, free on any run with a pool); the same seed with the knob off
/// (no key sent again) passes under the same mutant, and unmutated with the knob on passes too.
#[test]
fn the_short_retention_knob_reuses_keys_and_mc430_adds_one_inside_its_window() {
    let kinds = [FaultKind::ReplyLoss, FaultKind::ShortRetention];
    let sim = pool_service(true, false, &kinds);
    let seed = first_breaking(&sim, 1..40, Some(Mutant::MC430), "P86").expect("MC430 adds a key beside its tombstone");
    eprintln!("MC430 with short windows: seed {seed} broke P86");
    let out = sim.run(seed);
    assert!(out.passed(), "unmutated, seed {seed} passes: {:?}", out.violations);
    let long = pool_service(true, false, &kinds[..1]);
    let out = long.run_mutant(seed, Mutant::MC430);
    assert!(out.passed(), "the knob off, seed {seed} passes under MC430: {:?}", out.violations);
}

/// A lease-led service: every node contends for the lease and, while it holds it, writes to a
/// fenced register every 100 ms.
async fn leader_node(node: Node<()>) {
    let Ok(cfg) = LeaseConfig::builder("leader", node.name()).ttl(Duration::from_secs(1)).build() else { return };
    let register = node.shared::<FencedResource>();
    let n = node.clone();
    let mut lease = LeaseOwner::new(node.store().await, cfg)
        .with_clock(Arc::new(node.clock()))
        .with_parent(node.shutdown())
        .start(move |guard| {
            let (n, register) = (n.clone(), register.clone());
            async move {
                while !guard.is_lost() {
                    register.write(&n, "register", guard.fence());
                    tokio::select! {
                        biased;
                        _ = guard.lost() => break,
                        _ = n.clock().sleep(Duration::from_millis(100)) => {}
                    }
                }
            }
        });
    let _ = lease.join().await;
}

#[test]
fn a_lease_led_service_under_store_roll_backs_keeps_one_leader_and_mc29_breaks_it() {
    // Opted in: a Redis under `appendfsync everysec` (or a failover) rolls back its last writes.
    let sim = Sim::new("leader")
        .nodes(3)
        .faults(&[FaultKind::StoreRollback, FaultKind::ReplyLoss])
        .window(Duration::from_secs(10))
        .settle(Duration::from_secs(5))
        .node(leader_node);
    // MC29, keel's lease store before the fix: a rolled-back grant's fence minted again.
    let seed = first_breaking(&sim, 0..40, Some(Mutant::MC29), "S1").expect("MC29 gives two nodes the lease");
    eprintln!("MC29: seed {seed} broke S1");
    for s in 0..30 {
        let out = sim.run(s);
        assert!(out.passed(), "unmutated, seed {s} passes: {:?}", out.violations);
    }
}

#[test]
fn a_lease_led_service_denied_by_its_store_says_so_and_mc191_breaks_e4() {
    // Opted in: an operator revokes a node's ACL for a while and gives it back (`NOPERM`). keel's
    // lease publishes `Failed` after `permanent_attempts` denials in a row and leaves it at the
    // store's next answer; E4, a free rule, judges both on the user's own service.
    let sim = Sim::new("leader")
        .nodes(3)
        .faults(&[FaultKind::AccessDenied, FaultKind::ReplyLoss])
        .window(Duration::from_secs(10))
        .settle(Duration::from_secs(5))
        .node(leader_node);
    // MC191: `Failed` published one denial late.
    let seed = first_breaking(&sim, 0..30, Some(Mutant::MC191), "E4").expect("MC191 publishes Failed late");
    eprintln!("MC191: seed {seed} broke E4");
    for s in 0..20 {
        let out = sim.run(s);
        assert!(out.passed(), "unmutated, seed {s} passes: {:?}", out.violations);
    }
}

/// The free rules over a finished run of a built-in scenario.
fn free_rules(out: &keel_sim::runner::RunOutcome) -> Vec<keel_sim::check::Violation> {
    let end_us = u64::try_from(out.sim_time.as_micros()).unwrap_or(u64::MAX);
    let view = keel_sim::scenario::RunView {
        plan: &out.plan,
        events: &out.events,
        timeline: &out.timeline,
        heal_us: out.heal_us,
        end_us,
    };
    keel_sim::keel_rules::free_rules(&view)
}

#[test]
fn the_free_rules_raise_no_alarm_on_keel_s_scenarios_and_catch_a_stop_that_lies_about_its_bound() {
    for name in ["pool", "completer", "lease"] {
        let scn = keel_sim::scenario::by_name(name).expect("built in");
        for seed in 0..12 {
            let out = keel_sim::runner::run(scn.as_ref(), seed, None, keel_sim::plan::Profile::Swarm, None);
            assert!(out.passed(), "{name} seed {seed}: {:?}", out.violations);
            assert_eq!(free_rules(&out), vec![], "{name} seed {seed}: a free rule disagrees with the scenario");
        }
    }
    // MC7: the completer's stop gives up at once and reports its bound reached.
    let scn = keel_sim::scenario::by_name("completer").expect("built in");
    let caught = (0..12).find(|&seed| {
        let out = keel_sim::runner::run(scn.as_ref(), seed, Some(Mutant::MC7), keel_sim::plan::Profile::Swarm, None);
        let v = free_rules(&out);
        v.iter().any(|v| v.invariant == "V4") && v.iter().any(|v| v.invariant == "V3")
    });
    assert!(caught.is_some(), "MC7 breaks the free V3 and V4 within 12 seeds");
}

/// The first of seeds 0..12 of `scenario` with `mutant` on whose free rules report `invariant`.
fn caught_by_free_rules(scenario: &str, mutant: Mutant, invariant: &str) -> Option<u64> {
    caught_by_free_rules_within(scenario, mutant, invariant, 12)
}

/// The first of seeds 0..`seeds` of `scenario` with `mutant` on whose free rules report
/// `invariant`.
fn caught_by_free_rules_within(scenario: &str, mutant: Mutant, invariant: &str, seeds: u64) -> Option<u64> {
    let scn = keel_sim::scenario::by_name(scenario).expect("built in");
    (0..seeds).find(|&seed| {
        let out = keel_sim::runner::run(scn.as_ref(), seed, Some(mutant), keel_sim::plan::Profile::Swarm, None);
        free_rules(&out).iter().any(|v| v.invariant == invariant)
    })
}

#[test]
fn the_free_map_rules_raise_no_alarm_and_catch_an_early_wake_up_a_replica_going_back_and_reused_revisions() {
    let scn = keel_sim::scenario::by_name("rmap").expect("built in");
    for seed in 0..12 {
        let out = keel_sim::runner::run(scn.as_ref(), seed, None, keel_sim::plan::Profile::Swarm, None);
        assert!(out.passed(), "rmap seed {seed}: {:?}", out.violations);
        assert_eq!(free_rules(&out), vec![], "rmap seed {seed}: a free rule disagrees with the scenario");
    }
    // MC3: a set_and_wait waiter woken one revision early. MC4: a stale change applied.
    assert!(caught_by_free_rules("rmap", Mutant::MC3, "R3").is_some(), "MC3 breaks R3");
    assert!(caught_by_free_rules("rmap", Mutant::MC4, "R2").is_some(), "MC4 breaks R2");
    // MC30 (a map's revision counter kept as a store roll-back left it, so revisions are reused)
    // is the scenario's R5 (a subscriber given one revision twice) and its corpus plan: the free
    // R2 saw it only where it took a snapshot read before a data loss, and delivered after it,
    // for one read after the loss (rmap seeds 128, 208: the going back they flagged came after
    // a loss, which the store's roll-back allows until its first commit reseeds the counter).
    // MC34: a join that reads its snapshot before it opens the watch misses the changes between.
    assert!(caught_by_free_rules("rmap", Mutant::MC34, "R6").is_some(), "MC34 breaks R6");
    // MC49: a load that does not publish its revision parks a waiter whose write it holds (the
    // first at seed 58 since the scenario's subscribers come and go; 167 before that).
    assert!(caught_by_free_rules_within("rmap", Mutant::MC49, "R8", 180).is_some(), "MC49 breaks R8");
    // MC109: an anti-entropy timer that starts over at every feed event (R12 at the read, or
    // where the map still follows its feed past the deadline; rmapae seed 0: `rmap` sets no period).
    assert!(caught_by_free_rules("rmapae", Mutant::MC109, "R12").is_some(), "MC109 breaks R12");
    // MC120: an anti-entropy resync reported as a gap (R13 at the resync; rmapae seed 0).
    assert!(caught_by_free_rules("rmapae", Mutant::MC120, "R13").is_some(), "MC120 breaks R13");
    // MC184: a resync's `old_rev` read after the load (R17 at the resync).
    assert!(caught_by_free_rules("rmap", Mutant::MC184, "R17").is_some(), "MC184 breaks R17");
}

#[test]
fn the_free_deadline_rules_catch_a_lease_and_a_worker_timed_from_the_reply() {
    // MC14: a lease grant timed from the reply (S6); MC15: a worker's keep-alive timed from the
    // beat's reply (P7). Neither breaks S1 or P2 in these seeds: only the instant rules see them.
    // MC14 breaks 14 of lease seeds 0..200 (the first is seed 16 since the lease scenario's
    // plans take store roll-backs): 40 seeds to find one.
    assert!(caught_by_free_rules_within("lease", Mutant::MC14, "S6", 40).is_some(), "MC14 breaks S6");
    assert!(caught_by_free_rules("pool", Mutant::MC15, "P7").is_some(), "MC15 breaks P7");
}

#[test]
fn the_free_pool_rules_catch_a_draining_pick_a_foreign_cleanup_an_unguarded_ack_and_a_cut_drain() {
    // Judged from keel's pool events and the store's history alone, as a user's service is.
    // MC22: a draining worker picked (P3). MC23: a cleanup moves a record no longer naming its
    // worker (P9). MC24: the pending entry deleted unguarded before the ack (P5 at the store).
    // MC25: a graceful stop that deregisters as its drain begins (P8).
    assert!(caught_by_free_rules("pool", Mutant::MC22, "P3").is_some(), "MC22 breaks P3");
    assert!(caught_by_free_rules_within("pool", Mutant::MC23, "P9", 20).is_some(), "MC23 breaks P9");
    assert!(caught_by_free_rules("pool", Mutant::MC24, "P5").is_some(), "MC24 breaks P5");
    assert!(caught_by_free_rules("pool", Mutant::MC25, "P8").is_some(), "MC25 breaks P8");
}

#[test]
fn the_free_pool_rules_catch_a_refused_beat_taken_for_a_confirmation_and_a_lost_batch_taken_for_a_refusal() {
    // MC35: a worker whose beat is refused by a value it wrote earlier counts the refused beat
    // as a confirmation and runs on past the keep-alive the store holds (P7 credits only the
    // keep-alives the store applied). MC36: the group commit answers a timed-out batch as
    // refused, so a current attempt is reported stale (P11: no refusal at the store).
    assert!(caught_by_free_rules_within("pool", Mutant::MC35, "P7", 20).is_some(), "MC35 breaks P7");
    assert!(caught_by_free_rules_within("pool", Mutant::MC36, "P11", 20).is_some(), "MC36 breaks P11");
}

#[test]
fn the_free_completer_rule_catches_a_backoff_that_sleeps_through_the_stop() {
    // MC41: a retry's backoff that does not listen for the stop: the drain begins when the
    // backoff ends (V10, at the request + its slack).
    assert!(caught_by_free_rules("completer", Mutant::MC41, "V10").is_some(), "MC41 breaks V10");
    // MC59: a draining run writes its partial batch only at the next flush tick (V13 at its
    // first write; completer seed 0).
    assert!(caught_by_free_rules("completer", Mutant::MC59, "V13").is_some(), "MC59 breaks V13");
}

#[test]
fn the_free_lease_rule_catches_a_step_down_that_leaves_its_grant_behind() {
    // MC61: a step-down at the deadline that does not release the grant's token; the owner's
    // next acquisition is refused by its own grant (S11 at the store; lease seed 11).
    assert!(caught_by_free_rules_within("lease", Mutant::MC61, "S11", 20).is_some(), "MC61 breaks S11");
    // MC62: an acquisition of unknown outcome taken as refused; its landed grant, never
    // believed, refuses the owner's next token (lease seed 2).
    assert!(caught_by_free_rules("lease", Mutant::MC62, "S11").is_some(), "MC62 breaks S11");
}

#[test]
fn the_free_lease_rules_catch_attempts_that_come_late_or_early() {
    // MC63: a refused acquisition waits the holder's whole remaining TTL, not a poll (S12 at the
    // next attempt's outcome; lease seed 3, 37 of seeds 0..100).
    assert!(caught_by_free_rules("lease", Mutant::MC63, "S12").is_some(), "MC63 breaks S12");
    // MC64: a renewal that keeps the error count backs the next failure off as the old streak's
    // next (lease seed 12, 8 of seeds 0..60; seed 3 until round 45's `Hello` fix moved the lease
    // runs that meet a starting store).
    assert!(caught_by_free_rules_within("lease", Mutant::MC64, "S12", 20).is_some(), "MC64 breaks S12");
    // MC65: the renewal period counted from the reply: each renewal is late by its round trip
    // (lease seed 3, 33 of seeds 0..100).
    assert!(caught_by_free_rules("lease", Mutant::MC65, "S12").is_some(), "MC65 breaks S12");
    // MC66: an acquisition error retried at once, a retry storm (S13 at the early attempt's
    // outcome; lease seed 3, 37 of seeds 0..100).
    assert!(caught_by_free_rules("lease", Mutant::MC66, "S13").is_some(), "MC66 breaks S13");
}

#[test]
fn the_free_completer_rules_catch_a_backoff_that_never_starts_over() {
    // MC48: a flush's success does not reset the retry backoff, so every later batch of the run
    // is reported retried (V11: only after a failed write since the last written batch).
    assert!(caught_by_free_rules_within("completer", Mutant::MC48, "V11", 30).is_some(), "MC48 breaks V11");
    // MC67: the flag read after the success reset it: a retried batch reported not retried
    // (V11's other side; completer seed 0).
    assert!(caught_by_free_rules("completer", Mutant::MC67, "V11").is_some(), "MC67 breaks V11");
    // MC69: the flush tick re-armed from before the write: partial batches back to back after a
    // slow write (V14 at the early write; completer seed 1).
    assert!(caught_by_free_rules("completer", Mutant::MC69, "V14").is_some(), "MC69 breaks V14");
    // MC54: a re-dispatch that does not exclude the worker that did not ack (pool seed 1).
    assert!(caught_by_free_rules("pool", Mutant::MC54, "P16").is_some(), "MC54 breaks P16");
    // MC55: a re-dispatch not guarded by the pending entry moves a job whose ack just landed
    // (pool seed 3; 24 of seeds 0..40).
    assert!(caught_by_free_rules("pool", Mutant::MC55, "P17").is_some(), "MC55 breaks P17");
    // MC56: a cleanup that takes the dead worker's jobs from the sweep's view leaves those given
    // to it before its fence (P18 at the store, when the keep-alive is deleted; pool seed 49,
    // 9 of seeds 0..200).
    assert!(caught_by_free_rules_within("pool", Mutant::MC56, "P18", 60).is_some(), "MC56 breaks P18");
    // MC68: a refused fence taken as done moves a live worker's jobs (P20 at the move; pool
    // seed 0).
    assert!(caught_by_free_rules("pool", Mutant::MC68, "P20").is_some(), "MC68 breaks P20");
    // MC70: a drain that ends only at its bound with nothing left to drain (P21 where the drain
    // ends; pool seed 8).
    assert!(caught_by_free_rules_within("pool", Mutant::MC70, "P21", 30).is_some(), "MC70 breaks P21");
    // MC72 and MC73: a restart backoff that never starts over (late), one counted from the dead
    // incarnation's start (early) (P22 at the replacement; pool seed 3 each).
    assert!(caught_by_free_rules("pool", Mutant::MC72, "P22").is_some(), "MC72 breaks P22");
    assert!(caught_by_free_rules("pool", Mutant::MC73, "P22").is_some(), "MC73 breaks P22");
    // MC76: a release that failed reported released (S14 at its release_ended; lease seed 0).
    assert!(caught_by_free_rules("lease", Mutant::MC76, "S14").is_some(), "MC76 breaks S14");
    // MC428: a sweep whose tombstone cutoff reads the worker TTL for the dedup window (P84 by
    // the window the deleting node announced, at the deletion; pool seed 0).
    assert!(caught_by_free_rules("pool", Mutant::MC428, "P84").is_some(), "MC428 breaks P84");
    // MC424: a completer run's intake bounded by its batch size while it announces its backlog
    // (V48 at the first wait for room with the backlog half free; completer seed 0).
    assert!(caught_by_free_rules("completer", Mutant::MC424, "V48").is_some(), "MC424 breaks V48");
    // MC328: the pool's calls cut on the runtime's timer give up early on a slow clock (P97 at
    // the failed call; pool seed 8).
    assert!(caught_by_free_rules("pool", Mutant::MC328, "P97").is_some(), "MC328 breaks P97");
    // MC421: a release whose deadline is counted back from its send gives up at once (S42 at
    // its release_ended; lease seed 0).
    assert!(caught_by_free_rules("lease", Mutant::MC421, "S42").is_some(), "MC421 breaks S42");
    // MC459: a renewal's cut on the runtime's timer gives up early on a slow clock, and the owner
    // goes on (S43 at the failed renewal; lease seed 1).
    assert!(caught_by_free_rules("lease", Mutant::MC459, "S43").is_some(), "MC459 breaks S43");
    // MC456: a graceful stop that never deregisters (P105 at its worker_stopped; pool seed 0).
    assert!(caught_by_free_rules("pool", Mutant::MC456, "P105").is_some(), "MC456 breaks P105");
    // MC461: a fence deadline that keeps a keep-alive interval in reserve (P108 at the fence;
    // pool seed 3).
    assert!(caught_by_free_rules("pool", Mutant::MC461, "P108").is_some(), "MC461 breaks P108");
    // MC75: a start while running spawns a second run beside the first (V15 at its start;
    // completer seed 0, the stress starts its services while they run).
    assert!(caught_by_free_rules("completer", Mutant::MC75, "V15").is_some(), "MC75 breaks V15");
    // MC107 and MC108: a group's failed start that stops what it never started, and a group
    // started in declared order (V19 at the start's return and at its first outcome; completer
    // seed 0 each, where a run's producer refuses to start).
    assert!(caught_by_free_rules("completer", Mutant::MC107, "V19").is_some(), "MC107 breaks V19");
    assert!(caught_by_free_rules("completer", Mutant::MC108, "V19").is_some(), "MC108 breaks V19");
    // MC110: a group stop that returns the last service's result (V9 at the return; completer
    // seed 2, where the completer's stop fails before the manager's succeeds).
    assert!(caught_by_free_rules("completer", Mutant::MC110, "V9").is_some(), "MC110 breaks V9");
    // MC111: a store-error count never reset (E2 at the second recovery; lease seed 0).
    assert!(caught_by_free_rules("lease", Mutant::MC111, "E2").is_some(), "MC111 breaks E2");
    // MC119: an acquisition's success that does not end the store-error run (E2 at the grant or
    // refusal with errors open and no recovery in its step; lease seed 0, every seed).
    assert!(caught_by_free_rules("lease", Mutant::MC119, "E2").is_some(), "MC119 breaks E2");
    // MC125: a store-error log whose count since the last summary is never reset; MC126: one
    // that never records its warn time, a summary per error (E3 at the summary; lease seed 3).
    assert!(caught_by_free_rules_within("lease", Mutant::MC125, "E3", 4).is_some(), "MC125 breaks E3");
    assert!(caught_by_free_rules_within("lease", Mutant::MC126, "E3", 4).is_some(), "MC126 breaks E3");
    // MC127: a refused renewal's step-down reported as a deadline (S18 at the `lost`; lease seed
    // 12, 56 of 0..200, since n3's work reads its guard only between writes: seed 0 before).
    assert!(caught_by_free_rules_within("lease", Mutant::MC127, "S18", 13).is_some(), "MC127 breaks S18");
    // MC112: a dispatch's ack deadline counted with the worker TTL (P28 at the write; pool seed 0).
    assert!(caught_by_free_rules("pool", Mutant::MC112, "P28").is_some(), "MC112 breaks P28");
    // MC113: a router's failed resync retried at once (P29 at the retry).
    assert!(caught_by_free_rules_within("pool", Mutant::MC113, "P29", 40).is_some(), "MC113 breaks P29");
    // MC116: a cleaner's failed requeue retried at once (P31 at the retry).
    assert!(caught_by_free_rules_within("pool", Mutant::MC116, "P31", 40).is_some(), "MC116 breaks P31");
    // MC117: a router's retry that waits and announces another wait than its sweep interval
    // (P29 at the failure, against `node_started`'s interval; pool seed 16).
    assert!(caught_by_free_rules_within("pool", Mutant::MC117, "P29", 40).is_some(), "MC117 breaks P29");
    // MC118: a requeue with one try more than `cleanup_retries` (P31 at the extra retry; pool seed 12).
    assert!(caught_by_free_rules_within("pool", Mutant::MC118, "P31", 40).is_some(), "MC118 breaks P31");
    // MC133: a completion given up after one try fewer than `cleanup_retries` (P26 at its
    // `complete_failed`; pool seed 0, 187 of 0..200). MC134: one try more (P26 at the extra try;
    // pool seed 0, 182 of 0..200).
    assert!(caught_by_free_rules_within("pool", Mutant::MC133, "P26", 3).is_some(), "MC133 breaks P26");
    assert!(caught_by_free_rules_within("pool", Mutant::MC134, "P26", 3).is_some(), "MC134 breaks P26");
    // MC135: a cleanup that finds the worker alive ends holding its cleanup lock (P34 at its
    // `cleanup_ended`; pool seed 0, 153 of 0..200).
    assert!(caught_by_free_rules_within("pool", Mutant::MC135, "P34", 3).is_some(), "MC135 breaks P34");
    // MC123: a router's wait between resync tries deaf to the stop (P33 at the read begun after
    // the stop was asked). Round 44's `ShortRetention` knob moved the pool seeds that reached it
    // (146 of 0..147 before; none of 0..500 since): judged on its corpus plan, pool seed 61's
    // without the knob, shrunk.
    let entry = keel_sim::corpus::load(std::path::Path::new(keel_sim::corpus::DIR))
        .expect("the corpus loads")
        .into_iter()
        .find(|(name, _)| name == "MC123")
        .expect("MC123's corpus plan")
        .1;
    let scn = keel_sim::scenario::by_name("pool").expect("built in");
    let out = keel_sim::runner::run(
        scn.as_ref(),
        entry.seed,
        Some(Mutant::MC123),
        keel_sim::plan::Profile::Swarm,
        Some(entry.plan),
    );
    assert!(free_rules(&out).iter().any(|v| v.invariant == "P33"), "MC123 breaks P33 on its corpus plan");
    // MC124: on a hole, one silent resync try and back to the feed (P29 at the next read, which
    // does not start at the hole; pool seed 12, 15 of 0..100).
    assert!(caught_by_free_rules_within("pool", Mutant::MC124, "P29", 13).is_some(), "MC124 breaks P29");
    // MC129: a dead worker's replacement that keeps the dead id (P36 at the replacement; pool seed 0).
    assert!(caught_by_free_rules("pool", Mutant::MC129, "P36").is_some(), "MC129 breaks P36");
    // MC121: a move that deletes the pending entry instead of writing it (P32 at the store's apply).
    assert!(caught_by_free_rules("pool", Mutant::MC121, "P32").is_some(), "MC121 breaks P32");
    // MC122: a dispatch's pending entry said before its transaction (P28 at the dispatch).
    assert!(caught_by_free_rules("pool", Mutant::MC122, "P28").is_some(), "MC122 breaks P28");
    // MC115: an intake's close that does not wake the producers waiting for room (V20 at the
    // first event after the close's bound; completer seed 0, 61 of 0..100: the burst producer
    // parks on a full backlog as the stop's bound runs out).
    assert!(caught_by_free_rules_within("completer", Mutant::MC115, "V20", 10).is_some(), "MC115 breaks V20");
    // MC136: a completer stop that reads its run's report before the run exits (V21 at the
    // stop's return: `Ok` while the run's `events_closed` lists completions unflushed; completer
    // seed 0, 97 of 0..100).
    assert!(caught_by_free_rules("completer", Mutant::MC136, "V21").is_some(), "MC136 breaks V21");
    // MC138: a stop that returns the last run's report, not its own run's (V21 at the stop's
    // return; completer seed 74 since round 19's stress-life drains moved the schedules, 25
    // before: the stress's second stop of a run wakes after a restart ran and stopped clean).
    assert!(caught_by_free_rules_within("completer", Mutant::MC138, "V21", 80).is_some(), "MC138 breaks V21");
    // MC137: an in-doubt beat adopted but not stored as the worker's last (P35 at the worker's
    // death, after the store refused its beat over its own landed one; pool seed 1, 36 of 0..100).
    assert!(caught_by_free_rules_within("pool", Mutant::MC137, "P35", 3).is_some(), "MC137 breaks P35");
    // MC139: a run whose job's record moved to a newer attempt on another worker left going
    // (P37 at the worker's next event after the delivery; pool seed 0, 13 of 0..60).
    assert!(caught_by_free_rules("pool", Mutant::MC139, "P37").is_some(), "MC139 breaks P37");
    // MC147: a cleanup lock written to live a worker TTL, not the lock TTL (P39 at the take;
    // pool seed 0, 58 of 0..60).
    assert!(caught_by_free_rules("pool", Mutant::MC147, "P39").is_some(), "MC147 breaks P39");
    // MC146: a failed group start that stops what it started in start order (V19 at the first
    // exit out of order; completer seed 0, 164 of 0..300).
    assert!(caught_by_free_rules("completer", Mutant::MC146, "V19").is_some(), "MC146 breaks V19");
    // MC142: a lease holder's wait not cut at its deadline (S19 where the deadline passes, on n3,
    // whose work does not end on its own; lease seed 3, 45 of 0..300).
    assert!(caught_by_free_rules_within("lease", Mutant::MC142, "S19", 4).is_some(), "MC142 breaks S19");
    // MC149: a guarded work's restart backoff that never grows (S20 at the early restart, on n1,
    // whose work ends by itself under a restart policy; lease seed 33, the first of 0..100).
    assert!(caught_by_free_rules_within("lease", Mutant::MC149, "S20", 40).is_some(), "MC149 breaks S20");
    // MC154: a TTL sat out after a deadline step-down (S12's link from the step-down; lease seed
    // 3). MC155: a release waiting a TTL for its reply (S22; lease seed 3).
    assert!(caught_by_free_rules("lease", Mutant::MC154, "S12").is_some(), "MC154 breaks S12");
    assert!(caught_by_free_rules("lease", Mutant::MC155, "S22").is_some(), "MC155 breaks S22");
    // MC152: a deregistration that deletes its keep-alive blind (P41 at the store; pool seed 1).
    // MC153: a draining worker handed records (P42 at the delivery; pool seed 8).
    assert!(caught_by_free_rules("pool", Mutant::MC152, "P41").is_some(), "MC152 breaks P41");
    assert!(caught_by_free_rules("pool", Mutant::MC153, "P42").is_some(), "MC153 breaks P42");
    // MC166: a work aborted at its stop timeout never reported stopped (S23 where the owner
    // leaves its grant; lease seed 2, on n3, whose work now and then finishes its batch deaf to
    // its stop).
    assert!(caught_by_free_rules("lease", Mutant::MC166, "S23").is_some(), "MC166 breaks S23");
    // MC169: a completion handed in during a drain that waits for the flush tick (V13 at the
    // late write; completer seed 1).
    assert!(caught_by_free_rules("completer", Mutant::MC169, "V13").is_some(), "MC169 breaks V13");
    // MC170: a subscription manager's close that reports 0 events dropped (V22 at the close;
    // completer seed 5, a stalled subscriber's full buffer).
    assert!(caught_by_free_rules("completer", Mutant::MC170, "V22").is_some(), "MC170 breaks V22");
    // MC172: a completer stop error (producers left at the bound) mapped to `Ok` for its group
    // (V9 at the group's return; completer seed 0).
    assert!(caught_by_free_rules("completer", Mutant::MC172, "V9").is_some(), "MC172 breaks V9");
    // MC175: the first acquisition a poll after the read of the store's time (S12 from the new
    // `time_read`; lease seed 3).
    assert!(caught_by_free_rules("lease", Mutant::MC175, "S12").is_some(), "MC175 breaks S12");
    // MC180: a pool run stopped right after its ack returns without reporting its end (P45 at
    // the ack: neither `started` nor `run_ended` follows; pool seed 22 since round 27's per-node
    // completer jitter moved the schedules, 3 before).
    assert!(caught_by_free_rules_within("pool", Mutant::MC180, "P45", 30).is_some(), "MC180 breaks P45");
    // MC181: a worker's stop that gives each run its own bound from its turn (P46 where the
    // stop's bound passes with a run still going).
    assert!(caught_by_free_rules("pool", Mutant::MC181, "P46").is_some(), "MC181 breaks P46");
    // MC163: a lifecycle stop that takes a run its parent already cancelled for gone (V5 where
    // the stop returns; completer seed 1, the stress-life service's stops). MC11 (a stop that
    // does not wait) in the pool: V5 at the node's stop of its completer (pool seed 0).
    assert!(caught_by_free_rules("completer", Mutant::MC163, "V5").is_some(), "MC163 breaks V5");
    assert!(caught_by_free_rules("pool", Mutant::MC11, "V5").is_some(), "MC11 breaks V5");
    // MC162: a run's end matched by its job alone, so an older run's end takes the newer run's
    // task and route: P63 at the instant the route goes (the newer run deaf to its job's
    // moves), or P43 at the worker's end with the run still going. A job must come back to the
    // same worker at a newer attempt while its older run still goes: rare (pool seed 558 of
    // 0..3000 for P43 before round 43's schedules; the route's rule sees it far sooner).
    let pool = keel_sim::scenario::by_name("pool").expect("built in");
    let caught = (0..40).find(|&seed| {
        let out = keel_sim::runner::run(pool.as_ref(), seed, Some(Mutant::MC162), keel_sim::plan::Profile::Swarm, None);
        free_rules(&out).iter().any(|v| v.invariant == "P63" || v.invariant == "P43")
    });
    assert!(caught.is_some(), "MC162 breaks P63 or P43 within 40 pool seeds");
    // MC114: the epoch marker never written (P30 at a node's first check of it after a store
    // data loss; `poolloss`: the pool's workload with data loss among its faults).
    assert!(caught_by_free_rules_within("poolloss", Mutant::MC114, "P30", 20).is_some(), "MC114 breaks P30");
    // MC78: a drain done on an empty backlog with producers still registered (V1 at the close,
    // counted from the producers' own events; pool seed 0).
    assert!(caught_by_free_rules("pool", Mutant::MC78, "V1").is_some(), "MC78 breaks V1");
    // MC82: a lost connection taken for a permanent store error (E1 at the lease's
    // store_errors; lease seed 0).
    assert!(caught_by_free_rules("lease", Mutant::MC82, "E1").is_some(), "MC82 breaks E1");
    // MC191: a row of permanent errors published as Failed one attempt late (E4 at the row's
    // third denial; lease seed 3, the plan's AccessDenied). MC187: a quarantine answer that
    // leaves a published Failed in place (E4 a millisecond after the answer).
    assert!(caught_by_free_rules("lease", Mutant::MC191, "E4").is_some(), "MC191 breaks E4");
    assert!(caught_by_free_rules_within("lease", Mutant::MC187, "E4", 30).is_some(), "MC187 breaks E4");
    // MC83 and MC84: a completer retry backoff without its floor (early) or its cap (late)
    // (V16 at the retry; completer seed 0 each).
    assert!(caught_by_free_rules("completer", Mutant::MC83, "V16").is_some(), "MC83 breaks V16");
    assert!(caught_by_free_rules("completer", Mutant::MC84, "V16").is_some(), "MC84 breaks V16");
    // MC86: a full batch held to the flush tick (V14 at its write; completer seed 0).
    assert!(caught_by_free_rules("completer", Mutant::MC86, "V14").is_some(), "MC86 breaks V14");
    // MC85: a worker's first beat a worker TTL after registering (P23 at that beat's end, after
    // the worker fenced itself; pool seed 3).
    assert!(caught_by_free_rules("pool", Mutant::MC85, "P23").is_some(), "MC85 breaks P23");
    // MC87: producers registered after the drain began (V1 at the registration; completer
    // seed 0, the stress's producer registers through its restarts).
    assert!(caught_by_free_rules("completer", Mutant::MC87, "V1").is_some(), "MC87 breaks V1");
    // MC88: a producer leaving does not wake the drain (V17 at the late close; pool seed 0).
    assert!(caught_by_free_rules("pool", Mutant::MC88, "V17").is_some(), "MC88 breaks V17");
    // MC90 and MC91: a map's watch backoff from nothing (early), its doubling past retry_max
    // (late) (R11 at the retry; rmap seeds 0 and 0).
    assert!(caught_by_free_rules("rmap", Mutant::MC90, "R11").is_some(), "MC90 breaks R11");
    assert!(caught_by_free_rules("rmap", Mutant::MC91, "R11").is_some(), "MC91 breaks R11");
    // MC93: a subscription manager's drain bound counted from its run's start (V4's floor at
    // its early give-up; completer seed 0).
    assert!(caught_by_free_rules("completer", Mutant::MC93, "V4").is_some(), "MC93 breaks V4");
    // MC94 and MC95: a worker's registration retries doubling past their cap (late) or at once
    // (early) (P24 at the retry; first at pool seeds 17 and 16 since the router waits out its
    // own resync).
    assert!(caught_by_free_rules_within("pool", Mutant::MC94, "P24", 30).is_some(), "MC94 breaks P24");
    assert!(caught_by_free_rules_within("pool", Mutant::MC95, "P24", 30).is_some(), "MC95 breaks P24");
    // MC97: a failed completion retried at once (P26 at the retry; first at pool seed 3).
    assert!(caught_by_free_rules("pool", Mutant::MC97, "P26").is_some(), "MC97 breaks P26");
    // MC98: a store whose batched transactions publish only the last one's changes (P25 at the
    // table's first hole; pool seed 0).
    assert!(caught_by_free_rules("pool", Mutant::MC98, "P25").is_some(), "MC98 breaks P25");
    // MC105 and MC14: a grant believed without its drift margin, or counted from the reply (S17
    // at the grant; lease seed 0 each).
    assert!(caught_by_free_rules("lease", Mutant::MC105, "S17").is_some(), "MC105 breaks S17");
    assert!(caught_by_free_rules("lease", Mutant::MC14, "S17").is_some(), "MC14 breaks S17");
    // MC102: a draining worker's hand-back that may pick the worker itself (P27 at the move;
    // first at pool seed 72 since the simulated client stopped cutting calls itself, E6).
    assert!(caught_by_free_rules_within("pool", Mutant::MC102, "P27", 80).is_some(), "MC102 breaks P27");
    // MP9: a stale cleanup lock taken over by delete, then set-if-absent (P15 at the delete).
    assert!(caught_by_free_rules("pool", Mutant::MP9, "P15").is_some(), "MP9 breaks P15");
    // MC340: a beat whose outcome is unknown taken for landed (P70 at the death; first at pool
    // seed 8). MC341: a cleanup lock released by a plain delete (P71 at the delete; pool seed 0).
    assert!(caught_by_free_rules_within("pool", Mutant::MC340, "P70", 20).is_some(), "MC340 breaks P70");
    assert!(caught_by_free_rules("pool", Mutant::MC341, "P71").is_some(), "MC341 breaks P71");
    // MC52: a drain gives a batch up at its first failed write (116 of seeds 0..200).
    assert!(caught_by_free_rules("completer", Mutant::MC52, "V12").is_some(), "MC52 breaks V12");
}

#[test]
fn the_free_completer_rules_catch_a_drain_that_waits_past_its_bound() {
    // MC47: a store write begun during the drain is not cut at the stop's bound and runs to its
    // own op timeout (V4 for the run: its channel closes within its bound; seed 11 of 0..100).
    assert!(caught_by_free_rules_within("completer", Mutant::MC47, "V4", 30).is_some(), "MC47 breaks V4");
}

#[test]
fn the_free_pool_rules_catch_a_graceful_stop_whose_stopping_mark_waits_for_the_next_beat() {
    // MC39: a worker's graceful stop leaves its next beat on the regular schedule, so its
    // keep-alive is marked stopping up to a keep-alive interval late (P12: the stopping beat is
    // sent at the stop).
    assert!(caught_by_free_rules("pool", Mutant::MC39, "P12").is_some(), "MC39 breaks P12");
}

#[test]
fn the_free_pool_rules_catch_a_job_table_that_drops_what_it_confirmed() {
    // MC38: a reconcile slice that confirms a key unchanged does not refresh its stamp, so the
    // pass's end drops it as deleted behind keel's back and the next pass finds it again (P13:
    // nothing wrote behind keel's back, so nothing may be found or dropped).
    assert!(caught_by_free_rules("pool", Mutant::MC38, "P13").is_some(), "MC38 breaks P13");
}

#[test]
fn the_free_pool_rules_catch_a_landed_completion_reported_stale() {
    // MC46: a completion retry stamps its tombstone afresh, so after a lost reply it takes its
    // own landed completion for another attempt's (P14: the store holds that attempt's own
    // completion when it refuses the retry).
    assert!(caught_by_free_rules("pool", Mutant::MC46, "P14").is_some(), "MC46 breaks P14");
}

#[test]
fn the_free_group_rule_catches_a_group_stop_that_returns_at_the_first_error() {
    // MC20: a service group's stop returns at the first service's stop error; the services
    // after it are never asked to stop and run on (V9, at `GroupStopped`).
    assert!(caught_by_free_rules("completer", Mutant::MC20, "V9").is_some(), "MC20 breaks V9");
}

#[test]
fn a_service_s_own_pool_gets_the_store_side_rules_for_free() {
    // MC24 in a user's service: its workers delete their pending entries unguarded. Nothing the
    // service checks sees it (every job still completes); P5 at the store does, at the write.
    let sim = service(true, &[FaultKind::NodePause, FaultKind::Partition]);
    let seed = first_breaking(&sim, 0..10, Some(Mutant::MC24), "P5").expect("MC24 breaks P5 in the service");
    eprintln!("MC24 in the service: seed {seed} broke P5");
    let out = sim.run(seed);
    assert!(out.passed(), "unmutated, seed {seed} passes: {:?}", out.violations);
}

#[test]
fn the_free_completer_rules_catch_round_36s_drain_and_manager_bugs() {
    // MC310: a drain that retries a failed write at once (V33 at the retry; completer seed 0).
    assert!(caught_by_free_rules("completer", Mutant::MC310, "V33").is_some(), "MC310 breaks V33");
    // MC311: a drain that writes everything queued in one batch (V34 at the write; seed 1).
    assert!(caught_by_free_rules("completer", Mutant::MC311, "V34").is_some(), "MC311 breaks V34");
    // MC312–MC314: a subscription manager on its caller's token (V35), handed a stale receiver
    // (V36), closing before its completer (V37); completer seed 0 each.
    assert!(caught_by_free_rules("completer", Mutant::MC312, "V35").is_some(), "MC312 breaks V35");
    assert!(caught_by_free_rules("completer", Mutant::MC313, "V36").is_some(), "MC313 breaks V36");
    assert!(caught_by_free_rules("completer", Mutant::MC314, "V37").is_some(), "MC314 breaks V37");
    // MC315: a close that wakes one of the two burst tasks parked on the full backlog (V20).
    assert!(caught_by_free_rules("completer", Mutant::MC315, "V20").is_some(), "MC315 breaks V20");
    // MC317: a batch given up before the drain (V12 at its room); MC318: events undelivered
    // counted in batches (V3 at the announcement); completer seed 0 each.
    assert!(caught_by_free_rules("completer", Mutant::MC317, "V12").is_some(), "MC317 breaks V12");
    assert!(caught_by_free_rules("completer", Mutant::MC318, "V3").is_some(), "MC318 breaks V3");
}
