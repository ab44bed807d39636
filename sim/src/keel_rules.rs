//! keel's rules judged from keel's own typed events alone: what any run that uses a part gets
//! for free, a user's service through the harness as much as keel's own scenarios.
//!
//! The rules themselves live in `keel-checks`, shared with the chaos lane (`keel-chaos`, real
//! processes over real Redis): the same functions judge a simulated run and a real one. What is
//! here is only the simulator's side: its history, its timeline (frozen time) and the gates its
//! fault plans set (a clock beyond its drift bound, a store that lost its data).

use std::time::Duration;

use keel::observe::{LeaseEvent, PoolEvent, RmapEvent};

use crate::check::{Span, Violation};
use crate::history::{Event, ServerEv, Who, WorldEv};
use crate::scenario::RunView;
use crate::timeline::Timeline;

pub use keel_checks::HANDOFF_US;

/// Every handler run of every job: job → (node, attempt, span). A run still going when its node
/// crashed ends at the crash; one still going at the end of the run ends there.
pub struct HandlerRuns<'a>(keel_checks::HandlerRuns<'a, Who>);

impl<'a> HandlerRuns<'a> {
    /// Runs from `events`: `start` and `stop` say which events begin and end a run of
    /// (job, attempt) on the event's node.
    pub fn collect(
        events: &'a [Event],
        end_us: u64,
        start: impl Fn(&'a Event) -> Option<(&'a str, u64)>,
        stop: impl Fn(&'a Event) -> Option<(&'a str, u64)>,
    ) -> Self {
        HandlerRuns(keel_checks::HandlerRuns::collect(events, end_us, start, stop))
    }

    /// P2: at most one running handler per job, except `handoff_us` of overlap, not counting
    /// time either runner's node was frozen (paused or crashed: it runs nothing meanwhile).
    pub fn overlaps(&self, timeline: &Timeline, handoff_us: u64) -> Vec<Violation> {
        self.0.overlaps(|n| timeline.frozen(*n).collect(), handoff_us)
    }
}

/// P2 over keel's pool events (`Started` to `HandlerReturned`). Runs whose clocks left the drift
/// bound are not judged: local deadlines may then be late by design (completions stay fenced).
pub fn pool_handlers_overlap(run: &RunView<'_>) -> Vec<Violation> {
    if run.plan.beyond_drift_bound() {
        return Vec::new();
    }
    keel_checks::pool_handler_runs(run.events, run.end_us).overlaps(|n| run.timeline.frozen(*n).collect(), HANDOFF_US)
}

/// Every pool rule judged from keel's own pool events and the store's history alone: what any
/// run with a keel pool gets, a user's service through the harness as much as keel's pool
/// scenario. P2 over keel's handler spans ([`pool_handlers_overlap`]) and the rules at the
/// instant ([`pool_instant_rules`]). P1 needs the caller's deadline
/// ([`crate::harness::Run::keel_jobs_completed`]).
pub fn pool_rules(run: &RunView<'_>) -> Vec<Violation> {
    let mut v = pool_handlers_overlap(run);
    v.extend(pool_instant_rules(run));
    v
}

/// The pool rules judged at the instant of the decision or the write that breaks them:
/// P2 at a run's start and at a cleanup lock's takeover, P3 (assignments, the pick of draining
/// workers, cleanups of live ones), P5 at the store, P7, P8, P9, P11 to P18, P20, P21, P22, P28 to P32, P35, P37, P42, P43, P45, P46, P48, P49, P50, P51, P52, P57, P58, P59, P60, P61, P63, P64, P65, P66, P67, P68, P69, P70, P71, P72, P73, P76, P79, P84 (by the announced window), P97, P105, P106, P108, P109, P110, E9. Each is in
/// `sim/src/scenario/`, with the mutant that proves it.
pub fn pool_instant_rules(run: &RunView<'_>) -> Vec<Violation> {
    use crate::scenario::{
        pool_cleanup, pool_deregister, pool_drain, pool_keepalive, pool_owners, pool_picks, pool_queue, pool_stopping,
        pool_table, worker_fence,
    };
    let events = run.events;
    let mut v = pool_picks::one_runner_per_attempt(events);
    v.extend(pool_picks::one_cleaner_per_lock(events));
    v.extend(pool_picks::cleaners_release_their_own_lock(events));
    v.extend(pool_picks::cleanup_locks_deleted_as_expected(events));
    v.extend(pool_picks::assignments_to_live_workers(events));
    v.extend(pool_picks::moves_go_somewhere(events));
    v.extend(crate::scenario::pool_drain_end::pool_completers_outlast_their_drains(events));
    v.extend(keel_checks::redispatches_of_unacked_jobs(events));
    v.extend(keel_checks::pending_deadlines_keep_the_ack_grace(events));
    v.extend(pool_cleanup::cleanups_requeue_fenced_jobs(events));
    v.extend(pool_cleanup::tombstones_kept_their_announced_window(events));
    v.extend(pool_cleanup::keepalives_deleted_as_expected(events));
    v.extend(pool_cleanup::completer_drops_are_announced(events));
    v.extend(pool_deregister::stops_hand_back_before_deregistering(events));
    v.extend(pool_deregister::deregistrations_leave_no_keepalive(events));
    v.extend(keel_checks::graceful_stops_deregister(events));
    v.extend(keel_checks::node_stops_close_their_completions(events));
    v.extend(pool_queue::dispatch_queues_only_without_live_workers(run));
    v.extend(pool_queue::dispatch_picks_the_least_loaded(run));
    v.extend(keel_checks::workers_closed_to_records(events));
    v.extend(keel_checks::runs_stop_with_their_worker(events));
    v.extend(keel_checks::runs_report_their_end(events));
    v.extend(pool_cleanup::cleanups_move_only_fenced_workers(events));
    v.extend(pool_cleanup::cleanup_moves(events));
    v.extend(pool_cleanup::fenced_cleanups_never_end_alive(events));
    v.extend(pool_keepalive::keepalive_rules(events, shortest_worker_ttl(events)));
    v.extend(worker_fence::worker_fence(run));
    v.extend(pool_drain::pool_drain(run));
    if !run.plan.beyond_drift_bound() {
        let slowest = clock_rates(run).fold(1.0f64, f64::min);
        v.extend(crate::scenario::pool_drain_end::drains_end_with_their_runs(run, slowest));
        let out_of_bound = crate::scenario::drift::out_of_bound(run.events, run.end_us);
        v.extend(crate::scenario::pool_stop_bound::stops_end_runs_by_their_bound(run, slowest, &out_of_bound));
        v.extend(pool_restarts_back_off(run));
        v.extend(worker_beats_on_time(run));
        let (_, fastest) = rate_bounds(run);
        v.extend(keel_checks::workers_fence_no_sooner_than_their_margin(events, fastest, |n, from, to| {
            clock_jumped(run, n, from, to)
        }));
        v.extend(worker_registrations_retry_on_time(run));
        v.extend(keel_checks::router_resyncs_retry_on_time(run.events, cadence(run)));
        v.extend(pool_data_losses_reported(run));
        v.extend(keel_checks::cleaner_requeues_retry_on_time(run.events, cadence(run)));
        v.extend(keel_checks::pool_starts_retry_on_time(run.events, cadence(run)));
        v.extend(keel_checks::pool_watches_retry_on_time(run.events, cadence(run)));
        v.extend(keel_checks::pool_keepalive_resyncs_retry_on_time(run.events, cadence(run)));
        v.extend(keel_checks::pool_keepalive_gaps_resync_at_once(run.events, cadence(run)));
        if !run.plan.has(|f| matches!(f, crate::plan::Fault::ClockJump { .. })) {
            v.extend(pool_cleanup::cleanups_write_under_their_lock(events));
        }
    }
    v.extend(worker_completions_retry_on_time(run));
    v.extend(keel_checks::cleanups_release_their_lock(run.events));
    v.extend(keel_checks::cleanup_locks_keep_their_ttl(run.events));
    v.extend(pool_stopping::stopping_beats(run));
    v.extend(pool_stopping::beats_land_as_announced(events));
    v.extend(pool_table::table_matches_store(run));
    v.extend(pool_table::sweeps_wake_on_rebuilt_tables(run));
    v.extend(pool_table::table_waits_last_their_timeout(run.events));
    v.extend(pool_table::table_holes_have_a_cause(run.events));
    v.extend(crate::scenario::pool_handback::handbacks_follow_their_runs(events));
    v.extend(crate::scenario::pool_stamps::stamps_never_lead_the_store(run));
    v.extend(crate::scenario::pool_stamps::pending_entries_count_from_the_store_now(run));
    v.extend(crate::scenario::pool_stamps::completions_stamp_their_store_time(run));
    v.extend(pool_owners::check(events));
    v.extend(crate::scenario::pool_pairs::check(events));
    v.extend(crate::scenario::pool_events::completion_events_never_refused(events));
    v.extend(keel_checks::redeliveries_start_their_run(events, run.end_us, |n| run.timeline.frozen(*n).collect()));
    v.extend(keel_checks::worker_ids_name_one_incarnation(events));
    v.extend(keel_checks::superseded_runs_are_stopped(events));
    v.extend(keel_checks::routes_outlive_their_newest_run(events));
    v.extend(keel_checks::gone_workers_are_forgotten(events));
    v.extend(keel_checks::feed_reports_say_something(events));
    v.extend(feed_gaps_are_counted_and_healed_in_order(run));
    v.extend(keel_checks::cleaner_requeues_retry_transient_errors(events));
    v.extend(pool_start_warnings_keep_their_pace(events));
    // P97: a call that reports a timeout waited the node's whole op timeout; a node whose clock
    // jumped or froze meanwhile, or any in a plan with clocks beyond their bound, is excused.
    let beyond = run.plan.beyond_drift_bound();
    v.extend(keel_checks::pool_timeouts_take_the_op_timeout(events, |n, from, to| {
        let span = Span { start: from, end: to };
        beyond || clock_unsteady(run, n, from, to) || run.timeline.frozen(*n).any(|s| s.overlap(&span).is_some())
    }));
    v
}

/// P79: a pool start that keeps retrying warns at its first failure and then once every
/// [`keel::pool::START_LOG_EVERY`], judged at each `start_waiting`: its `waited_ms` (from the
/// start's own beginning, on the node's clock) is at least that much past the previous warning's
/// of the same start. A pace counted from the wrong base (the start's beginning, not the last
/// warning) warns at every retry once the first period is over: an operator's log flooded by a
/// store that is merely slow to come back. A start ends at `start_failed`, `start_store_reached`
/// or the node's crash, restart or stop.
pub fn pool_start_warnings_keep_their_pace(events: &[Event]) -> Vec<Violation> {
    let every_ms = u64::try_from(keel::pool::START_LOG_EVERY.as_millis()).unwrap_or(u64::MAX);
    let mut last: std::collections::BTreeMap<(Who, String), u64> = std::collections::BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        if let Some(WorldEv::NodeStart {} | WorldEv::NodeCrash {} | WorldEv::NodeStop {}) = e.world() {
            last.retain(|(n, _), _| *n != e.node);
            continue;
        }
        match e.pool() {
            Some(PoolEvent::StartFailed { pool, .. } | PoolEvent::StartStoreReached { pool, .. }) => {
                last.remove(&(e.node, keel_checks::plain(pool).to_owned()));
            }
            Some(PoolEvent::StartWaiting { pool, attempts, waited_ms, .. }) => {
                let key = (e.node, keel_checks::plain(pool).to_owned());
                if let Some(prev) = last.insert(key, *waited_ms)
                    && waited_ms.saturating_sub(prev) + 1 < every_ms
                    && v.len() < 20
                {
                    v.push(Violation::new(
                        "P79",
                        e.t_us,
                        format!(
                            "{}: a start warned it still waits ({attempts} attempts, {waited_ms} ms) {} ms after its previous warning, more often than every {every_ms} ms",
                            e.node,
                            waited_ms.saturating_sub(prev)
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    v
}

/// P30: each pool node reports each store data loss it lives through, and only those
/// ([`keel_checks::pool_data_losses_reported`]). A store rolled back to an older snapshot may
/// lose the epoch marker too, which the history does not name as a data loss: such runs are not
/// judged.
fn pool_data_losses_reported(run: &RunView<'_>) -> Vec<Violation> {
    if run.plan.has(|f| matches!(f, crate::plan::Fault::StoreRollback { .. })) {
        return Vec::new();
    }
    keel_checks::pool_data_losses_reported(run.events, cadence(run))
}

/// Every rule a run gets for free from keel's own events (what `Sim` judges on every run of a
/// user's service unless `without_keel_rules`): the lease's S1 (exclusive grants), S11 to S14,
/// the pool's ([`pool_rules`]), the completer's and the subscription manager's, the service
/// group's and every service's (V15), the replicated map's.
pub fn free_rules(view: &RunView<'_>) -> Vec<Violation> {
    let mut v = crate::scenario::lease::lease_exclusive(view);
    v.extend(crate::scenario::lease_orphans::check(view));
    v.extend(crate::scenario::lease_release::check(view));
    v.extend(lease_attempts_on_time(view));
    v.extend(keel_checks::lease_beliefs_keep_their_margin(view.events, slowest_in_bound(view)));
    v.extend(keel_checks::lease_recoveries_follow_errors(view.events));
    v.extend(keel_checks::lease_failures_follow_permanent_errors(view.events));
    v.extend(lease_error_summaries(view));
    v.extend(lease_losses(view));
    v.extend(lease_work_restarts(view));
    v.extend(keel_checks::lease_work_ends_reported(view.events));
    v.extend(lease_calls_bounded(view));
    v.extend(lease_timeouts_take_the_op_timeout(view));
    v.extend(lease_acts(view));
    v.extend(pool_rules(view));
    v.extend(completer_drains(view));
    v.extend(keel_checks::completer_reports_count_undelivered(view.events));
    v.extend(subscription_stops(view));
    v.extend(subscription_drains_keep_their_bound(view));
    v.extend(completer_drains_bounded(view));
    v.extend(completer_drains_retry(view));
    v.extend(keel_checks::completer_channel(view.events));
    v.extend(keel_checks::completer_flushes_report_retries(view.events));
    v.extend(completer_retries_on_time(view));
    v.extend(keel_checks::completer_retries_do_not_align(view.events));
    v.extend(completer_full_batches_write_at_once(view));
    v.extend(completer_stops_heard(view));
    v.extend(completer_drains_write_at_once(view));
    v.extend(completer_timeouts_take_the_op_timeout(view));
    v.extend(completer_drains_end_at_once(view));
    v.extend(keel_checks::completer_deadlines_name_what_is_left(view.events));
    v.extend(completer_closes_wake_waiting_producers(view));
    v.extend(keel_checks::completer_stops_return_their_report(view.events));
    v.extend(keel_checks::subscription_closes_count_drops(view.events));
    v.extend(keel_checks::completer_batches_keep_their_size(view.events));
    v.extend(keel_checks::completer_backlogs_keep_their_bound(view.events));
    v.extend(keel_checks::completer_losses_need_a_gone_receiver(view.events));
    v.extend(keel_checks::subscribers_gone_once(view.events));
    v.extend(keel_checks::subscription_runs_follow_their_stop_and_completer(view.events));
    v.extend(completer_partial_batches_wait_for_the_tick(view));
    v.extend(completer_partial_batches_written_at_their_tick(view));
    v.extend(completer_ticks_on_time(view));
    v.extend(group_stops(view));
    v.extend(keel_checks::services_run_one_at_a_time(view.events));
    v.extend(keel_checks::group_starts(view.events));
    v.extend(keel_checks::stops_wait_for_their_run(view.events));
    v.extend(keel_checks::group_stops_hear_member_errors(view.events));
    v.extend(rmap_revisions(view.events, |_| None));
    v.extend(reseed_rules(view.events));
    v.extend(keel_checks::rmap_restarted_loads_hold_the_feed(view.events));
    v.extend(rmap_retries_on_time(view));
    v.extend(rmap_attempts_report_their_own_time(view));
    v.extend(rmap_timeouts_take_the_op_timeout(view));
    v.extend(keel_checks::rmap_resyncs_count_their_woken(view.events));
    v.extend(rmap_anti_entropy_on_time(view));
    v.extend(keel_checks::rmap_resyncs_name_their_cause(view.events));
    v.extend(keel_checks::rmap_resyncs_report_the_revision_left(view.events));
    v.extend(keel_checks::rmap_waiters_wake(view.events));
    v.extend(errors_transient_in_the_sim(view.events));
    v.extend(keel_checks::pool_starts_end_at_a_permanent_error(view.events));
    v
}

/// The shortest TTL any worker wrote a keep-alive with: the TTL a keep-alive value written without
/// one is judged by (the shortest: it never calls a value live that keel calls stale).
fn shortest_worker_ttl(events: &[Event]) -> u64 {
    events
        .iter()
        .filter_map(|e| match e.pool() {
            Some(PoolEvent::Keepalive { ttl_ms, .. }) => Some(*ttl_ms),
            _ => None,
        })
        .min()
        .unwrap_or(0)
}

/// P1 over keel's pool events: every job keel took in (`Dispatched`) is completed by `within`
/// after the later of its dispatch and the heal. Jobs whose deadline falls after the run's end
/// are not judged; runs with store data loss are not judged (the jobs went with the data).
pub fn pool_jobs_lost(run: &RunView<'_>, within: Duration) -> Vec<Violation> {
    if run.plan.loses_data() {
        return Vec::new();
    }
    let within_us = u64::try_from(within.as_micros()).unwrap_or(u64::MAX);
    keel_checks::jobs_lost(
        run.events,
        run.heal_us,
        run.end_us,
        within_us,
        |e| match e.pool() {
            Some(PoolEvent::Dispatched { job, .. }) => Some(keel_checks::plain(job)),
            _ => None,
        },
        // A completion the store applied counts though its worker never learnt it (every
        // reply lost: `complete_failed`); nothing runs the job again.
        |e| match (e.pool(), e.server()) {
            (Some(PoolEvent::Completed { job, .. }), _) => Some(keel_checks::plain(job)),
            (_, Some(ServerEv::CompletionLanded { job, .. })) => Some(job.as_str()),
            _ => None,
        },
    )
}

/// V3 and V4 over keel's completer events: a stop that began after the heal (the store
/// healthy) reports nothing unflushed or undelivered (V3); a stop that reports its bound reached
/// took at least that bound since its drain began (V4).
pub fn completer_drains(run: &RunView<'_>) -> Vec<Violation> {
    completer_drains_of(run, |_| true)
}

/// [`completer_drains`] over the completers `judged` names (a scenario leaves out the
/// completers it stresses on purpose).
pub fn completer_drains_of(run: &RunView<'_>, judged: impl Fn(&str) -> bool) -> Vec<Violation> {
    // A node's clock that jumps or runs fast reaches a local deadline early in simulated time:
    // V4 is judged in runs whose clocks only drift within the configured bound.
    use crate::plan::Fault;
    let clocks_tame = !run.plan.beyond_drift_bound() && !run.plan.has(|f| matches!(f, Fault::ClockJump { .. }));
    // Within the bound a clock may still run fast: its deadline comes at bound / rate.
    let fastest = clock_rates(run).fold(1.0f64, f64::max);
    let events: Vec<&Event> = run
        .events
        .iter()
        .filter(|e| {
            use keel::observe::CompleterEvent as C;
            match e.completer() {
                Some(
                    C::DrainStarted { completer, .. }
                    | C::StopDeadline { completer, .. }
                    | C::EventsClosed { completer, .. },
                ) => judged(keel_checks::plain(completer)),
                _ => true,
            }
        })
        .collect();
    keel_checks::completer_drains(&events, run.heal_us, clocks_tame, fastest)
}

/// V9 over keel's lifecycle events: a service group's stop returns only once every service of
/// the group stopped ([`keel_checks::group_stops`]).
pub fn group_stops(run: &RunView<'_>) -> Vec<Violation> {
    keel_checks::group_stops(run.events)
}

/// V4 for the subscription manager: a stop of one of its runs closes its subscriber channels
/// within its drain bound after the request ([`keel_checks::subscription_stops`]). Judged in
/// runs whose clocks stay within the drift bound (a backward jump stalls a clock for the jump's
/// length); the slowest rate in force stretches the bound; frozen time is not counted; 100 ms
/// of slack.
pub fn subscription_stops(run: &RunView<'_>) -> Vec<Violation> {
    if run.plan.beyond_drift_bound() {
        return Vec::new();
    }
    let slowest = clock_rates(run).fold(1.0f64, f64::min);
    keel_checks::subscription_stops(run.events, run.end_us, slowest, SUBSCRIPTION_STOP_SLACK_US, |n| {
        run.timeline.frozen(*n).collect()
    })
}

/// V4 for a completer run: its drain closes its event channel within the stop's bound, a store
/// write in flight at the bound cut there ([`keel_checks::completer_drains_bounded`]). Judged as
/// [`subscription_stops`], with the same slack.
pub fn completer_drains_bounded(run: &RunView<'_>) -> Vec<Violation> {
    if run.plan.beyond_drift_bound() {
        return Vec::new();
    }
    let slowest = clock_rates(run).fold(1.0f64, f64::min);
    keel_checks::completer_drains_bounded(run.events, run.end_us, slowest, COMPLETER_DRAIN_SLACK_US, |n| {
        run.timeline.frozen(*n).collect()
    })
}

/// V12: a drain gives a batch up only when its next retry could not start inside the stop's
/// bound ([`keel_checks::completer_drains_retry`]): judged against the fastest in-bound clock of
/// the plan, a run whose node's clock jumped during its drain excused, as is every run of a plan
/// with clocks beyond their bound.
pub fn completer_drains_retry(run: &RunView<'_>) -> Vec<Violation> {
    if run.plan.beyond_drift_bound() {
        return Vec::new();
    }
    let fastest = clock_rates(run).fold(1.0f64, f64::max);
    keel_checks::completer_drains_retry(run.events, fastest, COMPLETER_STOP_HEARD_SLACK_US, |n, from, to| {
        clock_jumped(run, n, from, to)
    })
}

/// V13: a drain writes what is queued at once ([`keel_checks::completer_drains_write_at_once`]):
/// its first write starts within [`COMPLETER_STOP_HEARD_SLACK_US`] of the drain's start, frozen
/// time not counted, the write's own duration stretched by the slowest in-bound clock of the
/// plan; a run whose node's clock jumped meanwhile is excused, as is every run of a plan with
/// clocks beyond their bound.
pub fn completer_drains_write_at_once(run: &RunView<'_>) -> Vec<Violation> {
    if run.plan.beyond_drift_bound() {
        return Vec::new();
    }
    let (slowest, fastest) = (clock_rates(run).fold(1.0f64, f64::min), clock_rates(run).fold(1.0f64, f64::max));
    keel_checks::completer_drains_write_at_once(
        run.events,
        (slowest, fastest),
        COMPLETER_STOP_HEARD_SLACK_US,
        |n| run.timeline.frozen(*n).collect(),
        |n, from, to| clock_jumped(run, n, from, to),
    )
}

/// V31: a completer's write that timed out waited its whole op timeout
/// ([`keel_checks::completer_timeouts_take_the_op_timeout`]); a jump of the node's clock shortly
/// before excuses it.
pub fn completer_timeouts_take_the_op_timeout(run: &RunView<'_>) -> Vec<Violation> {
    keel_checks::completer_timeouts_take_the_op_timeout(run.events, |n, from, to| clock_unsteady(run, n, from, to))
}

/// V17: a drain ends as soon as it can ([`keel_checks::completer_drains_end_at_once`]): its
/// channel closes within [`COMPLETER_STOP_HEARD_SLACK_US`] of running time of the latest of the
/// drain's start, its last producer's stop and its last write's end, frozen time not counted.
/// Judged in every run: the drain's end waits on no clock.
pub fn completer_drains_end_at_once(run: &RunView<'_>) -> Vec<Violation> {
    keel_checks::completer_drains_end_at_once(run.events, COMPLETER_STOP_HEARD_SLACK_US, |n| {
        run.timeline.frozen(*n).collect()
    })
}

/// V20: a completer run's close ends every producer's wait for room
/// ([`keel_checks::completer_closes_wake_waiting_producers`]): each producer waiting when the run
/// closes returns, refused, within [`COMPLETER_STOP_HEARD_SLACK_US`] of running time (frozen time
/// not counted), judged at the first event after that bound; nothing is accepted after the close.
pub fn completer_closes_wake_waiting_producers(run: &RunView<'_>) -> Vec<Violation> {
    keel_checks::completer_closes_wake_waiting_producers(run.events, run.end_us, cadence(run))
}

/// S12 and S13: a lease owner's store attempts come when its timing says
/// ([`keel_checks::lease_attempts_on_time`]): after a refusal within a poll, after a grant or a
/// renewal within a renewal period, after a failed renewal within the backoff of its streak
/// (S12), and not before the floor of the same waits (S13: no retry storm);
/// [`COMPLETER_STOP_HEARD_SLACK_US`] of running time past each, frozen time not counted, waits
/// and the attempts' own durations taken at the in-bound clock rates of the plan least
/// favourable to the verdict; a chain
/// whose node's clock jumped meanwhile is excused, as is every run of a plan with clocks beyond
/// their bound.
pub fn lease_attempts_on_time(run: &RunView<'_>) -> Vec<Violation> {
    if run.plan.beyond_drift_bound() {
        return Vec::new();
    }
    keel_checks::lease_attempts_on_time(run.events, cadence(run))
}

/// S20: guarded work that ends by itself is restarted after its backoff or ends the grant, as the
/// owner's work policy says ([`keel_checks::lease_work_restarts_follow_the_policy`]), at the
/// plan's in-bound clock rates least favourable to the verdict; a restart whose node's clock
/// jumped meanwhile is excused, and in a plan with clocks beyond their bound only what needs no
/// clock is judged.
pub fn lease_work_restarts(run: &RunView<'_>) -> Vec<Violation> {
    keel_checks::lease_work_restarts_follow_the_policy(run.events, counts_only_beyond_bound(run))
}

/// S22: each of a lease owner's store calls ends by its op timeout, on the owner's own clock
/// ([`keel_checks::lease_calls_end_by_their_timeout`]); a call across a freeze or a clock jump of
/// its node is excused.
pub fn lease_calls_bounded(run: &RunView<'_>) -> Vec<Violation> {
    keel_checks::lease_calls_end_by_their_timeout(run.events, cadence(run))
}

/// S42: a lease owner's call that reports a timeout waited its whole op timeout
/// ([`keel_checks::lease_timeouts_take_the_op_timeout`]); a jump of the node's clock shortly
/// before the failure, or the hold of a backward one, excuses it.
pub fn lease_timeouts_take_the_op_timeout(run: &RunView<'_>) -> Vec<Violation> {
    keel_checks::lease_timeouts_take_the_op_timeout(run.events, |n, from, to| clock_unsteady(run, n, from, to))
}

/// S25: a lease owner publishes `held` and starts or restarts its work only inside its belief
/// ([`keel_checks::lease_acts_inside_the_belief`]), on its clock at the plan's slowest in-bound
/// rate; an owner whose clock jumped meanwhile is excused, and in plans with clocks beyond their
/// bound nothing is judged.
pub fn lease_acts(run: &RunView<'_>) -> Vec<Violation> {
    keel_checks::lease_acts_inside_the_belief(run.events, counts_only_beyond_bound(run))
}

/// E3: a lease owner's store-error summaries count exactly and keep their pace
/// ([`keel_checks::lease_error_summaries_keep_count`]), at the plan's in-bound clock rates; in
/// plans with clocks beyond their bound only the counts are judged.
pub fn lease_error_summaries(run: &RunView<'_>) -> Vec<Violation> {
    keel_checks::lease_error_summaries_keep_count(run.events, counts_only_beyond_bound(run))
}

/// S18 and S19: a lease owner's step-down names its cause and begins by its deadline ([`keel_checks::lease_losses_name_their_cause`]),
/// a deadline no earlier than the belief at the plan's fastest in-bound clock; in plans with
/// clocks beyond their bound only the causes are judged.
pub fn lease_losses(run: &RunView<'_>) -> Vec<Violation> {
    keel_checks::lease_losses_name_their_cause(run.events, counts_only_beyond_bound(run))
}

/// [`cadence`], except that in a plan with clocks beyond their bound every clock counts as
/// jumped: each timing verdict is excused, and what a rule judges without time still is.
fn counts_only_beyond_bound<'a>(
    run: &'a RunView<'_>,
) -> keel_checks::Clocks<impl Fn(&Who) -> Vec<Span> + 'a, impl Fn(&Who, u64, u64) -> bool + 'a> {
    let beyond = run.plan.beyond_drift_bound();
    let keel_checks::Clocks { rates, slacks, frozen, jumped } = cadence(run);
    keel_checks::Clocks { rates, slacks, frozen, jumped: move |n: &Who, from, to| beyond || jumped(n, from, to) }
}

/// V16: a completer retries a failed write inside its backoff
/// ([`keel_checks::completer_retries_on_time`]): no sooner than half of it, no later than all of
/// it, [`COMPLETER_STOP_HEARD_SLACK_US`] of running time either side, frozen time not counted,
/// waits and durations at the plan's in-bound clock rates least favourable to the verdict; a
/// chain whose node's clock jumped meanwhile is excused, and plans with clocks beyond their
/// bound are not judged.
pub fn completer_retries_on_time(run: &RunView<'_>) -> Vec<Violation> {
    if run.plan.beyond_drift_bound() {
        return Vec::new();
    }
    keel_checks::completer_retries_on_time(run.events, cadence(run))
}

/// V4's floor: a subscription manager gives up on its drain only once its bound passed since
/// the stop request ([`keel_checks::subscription_drains_keep_their_bound`]), at the plan's
/// fastest in-bound clock, [`COMPLETER_STOP_HEARD_SLACK_US`] allowed; a run whose node's clock
/// jumped meanwhile is excused, and plans with clocks beyond their bound are not judged.
pub fn subscription_drains_keep_their_bound(run: &RunView<'_>) -> Vec<Violation> {
    if run.plan.beyond_drift_bound() {
        return Vec::new();
    }
    let (_, fastest) = rate_bounds(run);
    keel_checks::subscription_drains_keep_their_bound(
        run.events,
        fastest,
        COMPLETER_STOP_HEARD_SLACK_US,
        |n, from, to| clock_jumped(run, n, from, to),
    )
}

/// R11: a replicated map retries a failed watch open or snapshot after its backoff
/// ([`keel_checks::rmap_retries_on_time`]), judged as [`completer_retries_on_time`] judges the
/// completer's retries (keel's rmap backoff has no jitter: floor and most are one wait).
pub fn rmap_retries_on_time(run: &RunView<'_>) -> Vec<Violation> {
    if run.plan.beyond_drift_bound() {
        return Vec::new();
    }
    keel_checks::rmap_retries_on_time(run.events, cadence(run))
}

/// P64: a pool node's completion feed is told of every gap and hole, and a whole snapshot heals
/// only those reported before its request ([`keel_checks::feed_gaps_are_counted_and_healed_in_order`]),
/// on the clocks of [`rmap_retries_on_time`].
pub fn feed_gaps_are_counted_and_healed_in_order(run: &RunView<'_>) -> Vec<Violation> {
    if run.plan.beyond_drift_bound() {
        return Vec::new();
    }
    keel_checks::feed_gaps_are_counted_and_healed_in_order(run.events, cadence(run))
}

/// R24: a replicated map's store attempt reports no longer than its apply loop has been at it
/// ([`keel_checks::rmap_attempts_report_their_own_time`]), on the clocks of [`rmap_retries_on_time`].
pub fn rmap_attempts_report_their_own_time(run: &RunView<'_>) -> Vec<Violation> {
    if run.plan.beyond_drift_bound() {
        return Vec::new();
    }
    keel_checks::rmap_attempts_report_their_own_time(run.events, cadence(run))
}

/// R24's other side: a map's store attempt cut by its timeout took the map's op timeout
/// ([`keel_checks::rmap_timeouts_take_the_op_timeout`]). Not judged under clock faults: the
/// simulated client cuts a watch at the op timeout of global time, which a slow clock reads as
/// less.
pub fn rmap_timeouts_take_the_op_timeout(run: &RunView<'_>) -> Vec<Violation> {
    if run.plan.has(|f| matches!(f, crate::plan::Fault::ClockRate { .. } | crate::plan::Fault::ClockJump { .. })) {
        return Vec::new();
    }
    keel_checks::rmap_timeouts_take_the_op_timeout(run.events)
}

/// R12: a replicated map with an anti-entropy period reads a snapshot that period after each load
/// ([`keel_checks::rmap_anti_entropy_on_time`]), judged as [`rmap_retries_on_time`], and where the
/// limit passes when no read starts.
pub fn rmap_anti_entropy_on_time(run: &RunView<'_>) -> Vec<Violation> {
    if run.plan.beyond_drift_bound() {
        return Vec::new();
    }
    keel_checks::rmap_anti_entropy_on_time(run.events, cadence(run))
}

/// V14's other side: a full batch queued while its run is idle is written at once
/// ([`keel_checks::completer_full_batches_write_at_once`]), [`COMPLETER_STOP_HEARD_SLACK_US`] of
/// running time allowed, frozen time not counted, the write's duration at the plan's slowest
/// in-bound clock; plans with clocks beyond their bound are not judged.
pub fn completer_full_batches_write_at_once(run: &RunView<'_>) -> Vec<Violation> {
    if run.plan.beyond_drift_bound() {
        return Vec::new();
    }
    keel_checks::completer_full_batches_write_at_once(
        run.events,
        rate_bounds(run).0,
        COMPLETER_STOP_HEARD_SLACK_US,
        |n| run.timeline.frozen(*n).collect(),
    )
}

/// P23: a worker beats a keep-alive interval after registering and after each beat ended
/// ([`keel_checks::worker_beats_on_time`]), [`COMPLETER_STOP_HEARD_SLACK_US`] of running time
/// either side, frozen time not counted, the interval and each beat's own duration at the plan's
/// in-bound clock rates least favourable to the verdict; a chain whose node's clock jumped
/// meanwhile is excused (the caller leaves out plans with clocks beyond their bound).
fn worker_beats_on_time(run: &RunView<'_>) -> Vec<Violation> {
    keel_checks::worker_beats_on_time(run.events, cadence(run))
}

/// P24: a worker retries a failed registration after its backoff
/// ([`keel_checks::worker_registrations_retry_on_time`]), judged as [`worker_beats_on_time`]
/// judges beats (keel's registration backoff has no jitter: floor and most are one wait).
fn worker_registrations_retry_on_time(run: &RunView<'_>) -> Vec<Violation> {
    keel_checks::worker_registrations_retry_on_time(run.events, cadence(run))
}

/// P26: a worker retries a failed completion after its backoff, and makes exactly its tries
/// ([`keel_checks::worker_completions_retry_on_time`]), judged as P24; in plans with clocks
/// beyond their bound only the tries are counted.
fn worker_completions_retry_on_time(run: &RunView<'_>) -> Vec<Violation> {
    keel_checks::worker_completions_retry_on_time(run.events, counts_only_beyond_bound(run))
}

/// P22: a worker slot replaces a dead worker after its restart backoff
/// ([`keel_checks::pool_restarts_back_off`]): no sooner than the floor of its streak of young
/// deaths (no restart storm), no later than its ceiling unless the slot ended;
/// [`COMPLETER_STOP_HEARD_SLACK_US`] of running time either side, frozen time not counted, lives
/// and waits taken at the in-bound clock rates of the plan least favourable to the verdict; a
/// chain whose node's clock jumped meanwhile is excused (the caller leaves out plans with clocks
/// beyond their bound).
fn pool_restarts_back_off(run: &RunView<'_>) -> Vec<Violation> {
    keel_checks::pool_restarts_back_off(run.events, run.end_us, cadence(run))
}

/// V14: a partial batch waits for its flush tick
/// ([`keel_checks::completer_partial_batches_wait_for_the_tick`]): outside a drain, a write of
/// fewer than `batch_size` completions starts no earlier than a flush interval after the run's
/// previous write ended, at the fastest in-bound clock of the plan, less
/// [`COMPLETER_STOP_HEARD_SLACK_US`]; a run whose node's clock jumped meanwhile is excused, as is
/// every run of a plan with clocks beyond their bound.
pub fn completer_partial_batches_wait_for_the_tick(run: &RunView<'_>) -> Vec<Violation> {
    if run.plan.beyond_drift_bound() {
        return Vec::new();
    }
    let fastest = clock_rates(run).fold(1.0f64, f64::max);
    keel_checks::completer_partial_batches_wait_for_the_tick(
        run.events,
        fastest,
        COMPLETER_STOP_HEARD_SLACK_US,
        |n, from, to| clock_jumped(run, n, from, to),
    )
}

/// V26: a partial batch is written at its flush tick, not a tick later
/// ([`keel_checks::completer_partial_batches_written_at_their_tick`]): the tick counted at the
/// plan's in-bound clock rates least favourable to the verdict, [`COMPLETER_STOP_HEARD_SLACK_US`]
/// of running time allowed, frozen time not counted; a run whose node's clock jumped meanwhile is
/// excused, as is every run of a plan with clocks beyond their bound.
pub fn completer_partial_batches_written_at_their_tick(run: &RunView<'_>) -> Vec<Violation> {
    if run.plan.beyond_drift_bound() {
        return Vec::new();
    }
    keel_checks::completer_partial_batches_written_at_their_tick(
        run.events,
        rate_bounds(run),
        COMPLETER_STOP_HEARD_SLACK_US,
        |n| run.timeline.frozen(*n).collect(),
        |n, from, to| clock_jumped(run, n, from, to),
    )
}

/// Whether node `n`'s clock jumped between `from` and `to`.
/// V41: a partial batch taken at its flush tick is on time on the run's own clock
/// ([`keel_checks::completer_ticks_on_time`]): madsim's shortest sleep as the fastest clock of
/// the plan reads it, plus [`COMPLETER_TICK_SLACK_US`] of rounding; a node's frozen spans and its
/// clock's jumps excused.
pub fn completer_ticks_on_time(run: &RunView<'_>) -> Vec<Violation> {
    let fastest = clock_rates(run).fold(1.0f64, f64::max);
    keel_checks::completer_ticks_on_time(
        run.events,
        (MADSIM_SHORTEST_SLEEP_US * fastest) as u64 + COMPLETER_TICK_SLACK_US,
        |n| run.timeline.frozen(*n).collect(),
        |n, from, to| clock_jumped(run, n, from, to),
    )
}

/// Whether `n`'s clock jumped between `from` and `to`, or was held by a backward jump meanwhile:
/// a monotonic clock jumped back stands still until global time catches up (`sim/src/clock.rs`),
/// for the jump's length at the node's rate, counted here as up to one and a half times it. A
/// call that began in the hold measures nothing of the time it waited, and the simulated
/// client's own timeout, on global time, may end it (lease seed 3039: a time read 1 s long that
/// measured 0 µs, 776 ms after a jump of −2 268 ms). For the rules that compare a call's measured
/// duration with its op timeout (S42, S43, V31, P97).
pub(crate) fn clock_unsteady(run: &RunView<'_>, n: &Who, from: u64, to: u64) -> bool {
    clock_jumped(run, n, from, to)
        || run.events.iter().any(|e| {
            let Some(WorldEv::ClockJump { delta_ms }) = e.world() else { return false };
            let held_us = delta_ms.unsigned_abs().saturating_mul(1_500);
            e.node == *n && *delta_ms < 0 && e.t_us <= to && e.t_us.saturating_add(held_us) >= from
        })
}

pub(crate) fn clock_jumped(run: &RunView<'_>, n: &Who, from: u64, to: u64) -> bool {
    run.events
        .iter()
        .any(|e| e.node == *n && (from..=to).contains(&e.t_us) && matches!(e.world(), Some(WorldEv::ClockJump { .. })))
}

/// V10: a completer run's drain begins at its stop request, or once the store write it had in
/// flight then ended ([`keel_checks::completer_stops_heard`]), within
/// [`COMPLETER_STOP_HEARD_SLACK_US`] of running time, frozen time not counted. Judged in every
/// run: the drain's start waits on no clock.
pub fn completer_stops_heard(run: &RunView<'_>) -> Vec<Violation> {
    keel_checks::completer_stops_heard(run.events, run.end_us, COMPLETER_STOP_HEARD_SLACK_US, |n| {
        run.timeline.frozen(*n).collect()
    })
}

/// How soon a completer run that is not writing begins its drain after the stop request, in
/// simulated time. keel's run begins it at the request's instant (no simulated time passes); a
/// backoff between retries is at least 5 ms (half of the smallest `retry_min` keel's scenarios
/// configure), so one slept through a stop (MC41) is late by more than this.
pub const COMPLETER_STOP_HEARD_SLACK_US: u64 = 2_000;

/// V41's slack on a tick's lateness, read on the run's own clock, besides madsim's shortest
/// sleep: a clock's deadline wakes at a whole microsecond.
pub const COMPLETER_TICK_SLACK_US: u64 = 50;

/// madsim wakes no sleep sooner than this after it was armed (µs of global time): a wait
/// re-armed 0.2 ms before its tick, woken by a completion, wakes 0.8 ms past it.
const MADSIM_SHORTEST_SLEEP_US: f64 = 1_000.0;

/// Scheduling slack of the subscription manager's bounded stop in simulated time.
pub const SUBSCRIPTION_STOP_SLACK_US: u64 = 100_000;

/// Slack of a completer run's bounded drain in simulated time: keel's run closes its channel at
/// the bound's instant (its waits and a write in flight are cut there), so a wait that hears the
/// bound late (round 18 A #13: by 20 ms) is late by more than this.
pub const COMPLETER_DRAIN_SLACK_US: u64 = 2_000;

/// R2 on the way and R3 at the instant `set_and_wait` returns: [`keel_checks::rmap_revisions`]
/// over the simulator's history (a data-losing store crash is the data loss).
pub fn rmap_revisions<'a>(events: &'a [Event], read: impl Fn(&'a Event) -> Option<(&'a str, u64)>) -> Vec<Violation> {
    keel_checks::rmap_revisions(events, read)
}

/// R6, R10 and P25, free rules judged against the latest store boot's seed floor (`store_up`
/// `now_ms` × 1000): the store numbers a map's first commit, and the first after each restart
/// (data loss or roll-back, MC30's fix), from store time × 1000, so a replica revision at or
/// above that floor was committed since the store's last boot.
///
/// **R6**: a replica misses no change while it follows the feed. A change above the replica's
/// next revision with no gap from the feed (`RevJump`) is a store that re-seeded the map's
/// revision counter, allowed only while the replica's revision is below the floor: the map's
/// first commit after the replica joined an empty map, or the first after a restart. A jump
/// from at or above it means the replica missed changes the store made since its boot: judged
/// at the jump (MC34: a join that reads its snapshot before it opens the watch misses the
/// changes between the two; a quiet map would stay stale).
///
/// **R10**: a replica holds a change back as possibly lost in a restart (`after_restart`, and a
/// resync for it) only when its snapshot was taken after a store restart and before the map's
/// next commit. A replica whose revision is at or above the floor loaded a snapshot committed in
/// this boot: holding its next change back is a resync for nothing, and one whose restart flag
/// outlives the load that cleared it (MC81) resyncs at every change: a storm of whole-map reads.
/// Judged at the `after_restart`.
///
/// **P25**: a pool node's job table misses no change while it follows the job map's feed: R6
/// for the table (`feed_hole`). A store that loses a change from a batch's feed (MC98: only the
/// last transaction of a `map_txns` published) leaves every table behind; the pool's sweeps
/// would mend it a period later, so no other rule sees it.
pub fn reseed_rules(events: &[Event]) -> Vec<Violation> {
    let mut floor: u64 = 0;
    let mut v = Vec::new();
    for e in events {
        if let Some(ServerEv::StoreUp { now_ms }) = e.server() {
            floor = now_ms.saturating_mul(keel::store::SEED_PER_MS);
            continue;
        }
        match e.rmap() {
            Some(RmapEvent::RevJump { map, expected }) => {
                let local = expected.saturating_sub(1);
                if local >= floor {
                    v.push(Violation::new(
                        "R6",
                        e.t_us,
                        format!(
                            "{}: map {map} at revision {local} got a change above {expected} with no gap from the feed, and no store restart re-seeded the revisions since (the latest boot's floor is {floor}): changes were missed",
                            e.node
                        ),
                    ));
                }
            }
            Some(RmapEvent::AfterRestart { map, rev }) => {
                let local = rev.saturating_sub(1);
                if local >= floor && v.len() < 20 {
                    v.push(Violation::new(
                        "R10",
                        e.t_us,
                        format!(
                            "{}: map {map} at revision {local} held change {rev} back as possibly lost in a store restart, yet its revision was committed since the store's last boot (floor {floor}): a resync for nothing",
                            e.node
                        ),
                    ));
                }
            }
            _ => {}
        }
        if let Some(PoolEvent::FeedHole { pool, expected, rev, .. }) = e.pool() {
            let local = expected.saturating_sub(1);
            if local >= floor && v.len() < 20 {
                v.push(Violation::new(
                    "P25",
                    e.t_us,
                    format!(
                        "{}: pool {pool}'s job table at revision {local} got change {rev} from the feed with no gap reported, and no store restart re-seeded the revisions since (the latest boot's floor is {floor}): changes were missed",
                        e.node
                    ),
                ));
            }
        }
    }
    v
}

/// E1, a free rule: keel calls a store error permanent (an operator must act; the lease counts
/// it towards `Failed`, the pool's start and the cleaner give up at once) only when the store
/// denied, corrupted or was misconfigured. The simulated store does so only when a plan denies a
/// node (`FaultKind::AccessDenied`, answered with [`crate::net::DENIAL`]); its other faults are
/// crashes, refusals, timeouts, lost connections and slow replies, all transient. So every
/// `store_errors { permanent }`, `failed` and `start_failed { permanent }` whose error is not the
/// simulated denial is keel misreading a transient error (MC82: a lost connection taken for
/// permanent, so a network blip is logged for an operator and a run of them fails the lease), or
/// the service under test writing garbage under keel's keys. Judged at the event. (What keel does
/// with the denial itself, E4 judges.)
pub fn errors_transient_in_the_sim(events: &[Event]) -> Vec<Violation> {
    let mut v = Vec::new();
    for e in events {
        let (what, error) = match (e.lease(), e.pool()) {
            (Some(LeaseEvent::StoreErrors { op, permanent: true, error, .. }), _) => {
                (format!("the lease called its {op} error permanent: {error}"), error)
            }
            (Some(LeaseEvent::Failed { attempts, error, .. }), _) => {
                (format!("the lease failed after {attempts} permanent errors: {error}"), error)
            }
            (_, Some(PoolEvent::StartFailed { permanent: true, error, .. })) => {
                (format!("the pool's start gave up on a permanent error: {error}"), error)
            }
            _ => continue,
        };
        if keel_checks::plain(error).contains(crate::net::DENIAL) {
            continue; // the plan's own denial: permanent indeed
        }
        if v.len() < 20 {
            v.push(Violation::new("E1", e.t_us, format!("{}: {what}, yet the simulated store gives none", e.node)));
        }
    }
    v
}

/// E6, a free rule: every store call of a node ends by the op timeout the run declares
/// (`Sim::op_timeout`), on the node's own clock. The simulated client gives up on a call by
/// itself only after [`crate::net::CLIENT_TIMEOUT_FACTOR`] of them (a generous socket timeout),
/// so the bound is the caller's: a keel path (or a service's own code) that waits on the store
/// without a timeout of its own, or with a longer one, or that retries inside one call, goes on
/// past it and is recorded (`call_overran`). Judged at the call's end against the slowest
/// in-bound clock rate and [`COMPLETER_STOP_HEARD_SLACK_US`]; a call across a freeze or a clock
/// jump of its node is excused, and in plans with clocks beyond their bound every call is.
pub fn calls_end_by_the_op_timeout(run: &RunView<'_>) -> Vec<Violation> {
    let clocks = counts_only_beyond_bound(run);
    let mut v = Vec::new();
    for e in run.events {
        let Some(WorldEv::CallOverran { op, took_us, bound_us }) = e.world() else { continue };
        let limit = (*bound_us as f64 / clocks.rates.0) as u64 + clocks.slacks.0;
        let call = Span { start: e.t_us.saturating_sub(*took_us), end: e.t_us };
        if *took_us <= limit
            || (clocks.frozen)(&e.node).iter().any(|s| s.overlap(&call).is_some())
            || (clocks.jumped)(&e.node, call.start, call.end)
            || v.len() >= 20
        {
            continue;
        }
        v.push(Violation::new(
            "E6",
            e.t_us,
            format!(
                "{}: a {op} call went on for {took_us} µs, past the op timeout of {bound_us} µs: nothing cut it",
                e.node
            ),
        ));
    }
    v
}

/// How every cadence rule reads a run's clocks: the in-bound clock rates (slowest, fastest),
/// [`COMPLETER_STOP_HEARD_SLACK_US`] late and early, a node's frozen spans, and whether a node's
/// clock jumped between two instants.
fn cadence<'a>(
    run: &'a RunView<'_>,
) -> keel_checks::Clocks<impl Fn(&Who) -> Vec<Span> + 'a, impl Fn(&Who, u64, u64) -> bool + 'a> {
    keel_checks::Clocks {
        rates: rate_bounds(run),
        slacks: (COMPLETER_STOP_HEARD_SLACK_US, COMPLETER_STOP_HEARD_SLACK_US),
        frozen: move |n: &Who| run.timeline.frozen(*n).collect(),
        jumped: move |n: &Who, from, to| clock_jumped(run, n, from, to),
    }
}

/// The slowest and fastest rates of a node's clock the run's plan sets (1.0 among them: a clock
/// no fault touches runs at real time).
fn rate_bounds(run: &RunView<'_>) -> (f64, f64) {
    (clock_rates(run).fold(1.0f64, f64::min), clock_rates(run).fold(1.0f64, f64::max))
}

/// The slowest clock rate the run's plan sets within its drift bound (1.0 if none is slower):
/// what a lease's drift margin must cover (S17).
pub(crate) fn slowest_in_bound(run: &RunView<'_>) -> f64 {
    run.plan
        .events
        .iter()
        .filter_map(|t| match t.fault {
            crate::plan::Fault::ClockRate { rate, beyond: false, .. } => Some(rate),
            _ => None,
        })
        .fold(1.0f64, f64::min)
}

/// Every clock rate the run's plan sets (1.0, real time, is not among them unless set).
pub(crate) fn clock_rates<'a>(run: &'a RunView<'_>) -> impl Iterator<Item = f64> + 'a {
    run.plan.events.iter().filter_map(|t| match t.fault {
        crate::plan::Fault::ClockRate { rate, .. } => Some(rate),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Ev;

    /// R6: a revision jump is a re-seed only while the replica is below the latest boot's floor.
    /// The store booted at 1 000 ms (floor 1 000 000): a replica at 0 (joined an empty map) or at
    /// 1 000 005 after a restart at 2 000 ms (floor 2 000 000) may jump; one at 1 000 005 with no
    /// restart since missed changes (MC34).
    #[test]
    fn a_revision_jump_without_a_reseed_fires_r6() {
        let up = |t_ms: u64, now_ms: u64| Event {
            t_us: t_ms * 1000,
            node: Who::Store,
            ev: ServerEv::StoreUp { now_ms }.into(),
        };
        let jump = |t_ms: u64, expected: u64| {
            let r = RmapEvent::RevJump { map: "m".into(), expected };
            Event { t_us: t_ms * 1000, node: Who::Node(1), ev: Ev::Core(keel::observe::Event::Rmap(r.to_static())) }
        };
        // The map's first commit after a join to an empty map.
        assert!(reseed_rules(&[up(0, 1_000), jump(5, 1)]).is_empty());
        // Changes missed since the boot: R6 at the jump.
        let v = reseed_rules(&[up(0, 1_000), jump(5, 1_000_006)]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!((v[0].invariant, v[0].t_us), ("R6", 5_000));
        assert!(v[0].detail.contains("at revision 1000005"), "{}", v[0].detail);
        // A restart (data loss or a roll-back) since: the first commit re-seeds above its floor.
        assert!(reseed_rules(&[up(0, 1_000), up(1_000, 2_000), jump(1_500, 1_000_006)]).is_empty());
        // A replica already past the new floor (it resynced after the restart) that jumps again.
        let v = reseed_rules(&[up(0, 1_000), up(1_000, 2_000), jump(1_500, 2_000_004)]);
        assert_eq!(v.len(), 1, "{v:?}");
    }

    /// P25: R6 for a pool node's job table (`feed_hole`).
    #[test]
    fn a_feed_hole_without_a_reseed_fires_p25() {
        let up = |t_ms: u64, now_ms: u64| Event {
            t_us: t_ms * 1000,
            node: Who::Store,
            ev: ServerEv::StoreUp { now_ms }.into(),
        };
        let hole = |t_ms: u64, expected: u64| {
            let p = PoolEvent::FeedHole { pool: "p".into(), expected, rev: expected + 3, feed_gaps: 1 };
            Event { t_us: t_ms * 1000, node: Who::Node(2), ev: Ev::Core(keel::observe::Event::Pool(p.to_static())) }
        };
        // A table built from a snapshot of the empty map, at its first commit.
        assert!(reseed_rules(&[up(0, 1_000), hole(5, 1)]).is_empty());
        // Changes lost since the boot.
        let v = reseed_rules(&[up(0, 1_000), hole(5, 1_000_010)]);
        assert_eq!(v.iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>(), [("P25", 5_000)], "{v:?}");
        assert!(v[0].detail.contains("got change 1000013"), "{}", v[0].detail);
        // A restart since: the first commit re-seeds.
        assert!(reseed_rules(&[up(0, 1_000), up(1_000, 2_000), hole(1_500, 1_000_010)]).is_empty());
    }

    /// R10: a change held back as possibly lost in a restart only while the replica's revision
    /// is below the latest boot's floor (its snapshot predates the map's first commit since).
    #[test]
    fn a_change_held_back_for_a_restart_the_snapshot_postdates_fires_r10() {
        let up = |t_ms: u64, now_ms: u64| Event {
            t_us: t_ms * 1000,
            node: Who::Store,
            ev: ServerEv::StoreUp { now_ms }.into(),
        };
        let held = |t_ms: u64, rev: u64| {
            let r = RmapEvent::AfterRestart { map: "m".into(), rev };
            Event { t_us: t_ms * 1000, node: Who::Node(1), ev: Ev::Core(keel::observe::Event::Rmap(r.to_static())) }
        };
        // A snapshot at 1 000 005 taken after the restart at 2 000 ms, before the next commit.
        assert!(reseed_rules(&[up(0, 1_000), up(2_000, 2_000), held(2_100, 1_000_006)]).is_empty());
        // A snapshot at 2 000 040, committed since that boot: nothing a restart could have lost.
        let v = reseed_rules(&[up(0, 1_000), up(2_000, 2_000), held(2_500, 2_000_041)]);
        assert_eq!(v.iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>(), [("R10", 2_500_000)], "{v:?}");
    }

    /// E6: a call that ran 300 ms against a 250 ms op timeout fires at its end; one that ran
    /// 251 ms (within the slack), or across a freeze or a clock jump of its node, does not.
    #[test]
    fn a_call_past_the_op_timeout_fires_e6_unless_its_node_froze_or_jumped() {
        use crate::scenario::test_history::{at, judge};
        let n = Who::Node(0);
        let call = |t_ms: u64, took_ms: u64| {
            at(t_ms, n, WorldEv::CallOverran { op: "map_write".into(), took_us: took_ms * 1000, bound_us: 250_000 })
        };
        let start = at(0, n, WorldEv::NodeStart {});
        let judged = |events: Vec<Event>| {
            judge(&events, 0, 10_000_000, calls_end_by_the_op_timeout)
                .iter()
                .map(|v| (v.invariant, v.t_us))
                .collect::<Vec<_>>()
        };
        assert_eq!(judged(vec![start.clone(), call(1_000, 300), call(2_000, 251)]), [("E6", 1_000_000)]);
        let frozen = vec![
            start.clone(),
            at(800, n, WorldEv::NodePause {}),
            at(900, n, WorldEv::NodeResume {}),
            call(1_000, 300),
        ];
        assert_eq!(judged(frozen), []);
        let jumped = vec![start, at(900, n, WorldEv::ClockJump { delta_ms: -100 }), call(1_000, 300)];
        assert_eq!(judged(jumped), []);
    }
}
