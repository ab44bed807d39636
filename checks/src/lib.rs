//! keel's invariant checkers over a history of keel's typed events, for any history that can
//! say, per entry, when it happened, on which node, which keel event it was (if one) and which
//! fact of the world it was (a node started or crashed, the store lost its data).
//!
//! The simulator (keel-sim) judges its madsim runs with these rules; the chaos lane
//! (`keel-chaos`, real processes over a real `redis-server`) judges its merged process histories
//! with the very same functions. Neither re-implements a rule: what differs between them is only
//! where the events come from and what a run's gates are (a simulated clock beyond its drift
//! bound, a real run's final settle). A checker matches on variants of `keel::observe`, never on
//! strings: renaming or removing an event breaks its build.

#![warn(missing_docs)]

mod anti_entropy;
mod backlogs;
mod batch_sizes;
mod batches;
mod beats;
mod cadence;
mod call_bounds;
mod cleanup_release;
mod completer_timeouts;
mod data_loss;
mod deregistrations;
mod drained_deadlines;
mod drop_counts;
mod error_summaries;
mod feed_gaps;
mod feed_news;
mod fences;
mod gone_subscribers;
mod handovers;
mod jitter;
mod lease_acts;
mod lease_belief;
mod lease_timeouts;
pub mod linearize;
mod lost_reasons;
mod node_stops;
mod pending;
mod permanent_errors;
mod pool_settings;
mod pool_timeouts;
mod record_gate;
mod redeliveries;
mod restart_holds;
mod restarts;
mod resync_reasons;
mod retries;
mod rmap_durations;
mod rmap_retries;
mod rmap_woken;
mod room_waits;
mod router_resync;
mod rules;
mod run_ends;
mod run_gate;
mod run_routes;
mod services;
mod sm_runs;
mod stop_reports;
mod store_errors;
mod superseded_runs;
mod tick_lateness;
mod verdict;
mod work_ends;
mod work_restarts;
mod worker_ids;
mod worker_retries;

pub use anti_entropy::rmap_anti_entropy_on_time;
pub use backlogs::completer_backlogs_keep_their_bound;
pub use batch_sizes::completer_batches_keep_their_size;
pub use batches::{completer_full_batches_write_at_once, completer_partial_batches_written_at_their_tick};
pub use beats::worker_beats_on_time;
pub use cadence::{Clocks, SteadyClocks, lease_attempts_on_time, steady_clocks};
pub use call_bounds::lease_calls_end_by_their_timeout;
pub use cleanup_release::{cleanup_locks_keep_their_ttl, cleanups_release_their_lock};
pub use completer_timeouts::completer_timeouts_take_the_op_timeout;
pub use data_loss::pool_data_losses_reported;
pub use deregistrations::graceful_stops_deregister;
pub use drained_deadlines::completer_deadlines_name_what_is_left;
pub use drop_counts::subscription_closes_count_drops;
pub use error_summaries::lease_error_summaries_keep_count;
pub use feed_gaps::feed_gaps_are_counted_and_healed_in_order;
pub use feed_news::feed_reports_say_something;
pub use fences::workers_fence_no_sooner_than_their_margin;
pub use gone_subscribers::subscribers_gone_once;
pub use handovers::completer_losses_need_a_gone_receiver;
pub use jitter::completer_retries_do_not_align;
pub use lease_acts::lease_acts_inside_the_belief;
pub use lease_belief::lease_beliefs_keep_their_margin;
pub use lease_timeouts::lease_timeouts_take_the_op_timeout;
pub use lost_reasons::lease_losses_name_their_cause;
pub use node_stops::node_stops_close_their_completions;
pub use pending::pending_deadlines_keep_the_ack_grace;
pub use permanent_errors::{
    PUBLISH_SLACK_US, cleaner_requeues_retry_transient_errors, is_permanent, lease_failures_follow_permanent_errors,
    pool_starts_end_at_a_permanent_error,
};
pub use pool_settings::{PoolSettings, pool_timings_follow_their_settings};
pub use pool_timeouts::pool_timeouts_take_the_op_timeout;
pub use record_gate::workers_closed_to_records;
pub use redeliveries::{REDELIVERY_STARTS_US, redeliveries_start_their_run};
pub use restart_holds::rmap_restarted_loads_hold_the_feed;
pub use restarts::pool_restarts_back_off;
pub use resync_reasons::rmap_resyncs_name_their_cause;
pub use retries::completer_retries_on_time;
pub use rmap_durations::{rmap_attempts_report_their_own_time, rmap_timeouts_take_the_op_timeout};
pub use rmap_retries::rmap_retries_on_time;
pub use rmap_woken::rmap_resyncs_count_their_woken;
pub use room_waits::completer_closes_wake_waiting_producers;
pub use router_resync::router_resyncs_retry_on_time;
pub use rules::{
    Belief, HANDOFF_US, HandlerRuns, beliefs, completer_channel, completer_drains, completer_drains_bounded,
    completer_drains_end_at_once, completer_drains_retry, completer_drains_write_at_once,
    completer_flushes_report_retries, completer_partial_batches_wait_for_the_tick, completer_reports_count_undelivered,
    completer_stops_heard, grant_order, group_stops, jobs_lost, pool_handler_runs, reach, redispatches_of_unacked_jobs,
    resource_fence_order, rmap_resyncs_report_the_revision_left, rmap_revisions, rmap_waiters_wake,
    subscription_drains_keep_their_bound, subscription_stops,
};
pub use run_ends::runs_report_their_end;
pub use run_gate::runs_stop_with_their_worker;
pub use run_routes::{gone_workers_are_forgotten, routes_outlive_their_newest_run};
pub use services::{
    group_starts, group_stops_hear_member_errors, services_run_one_at_a_time, stops_wait_for_their_run,
};
pub use sm_runs::subscription_runs_follow_their_stop_and_completer;
pub use stop_reports::completer_stops_return_their_report;
pub use store_errors::lease_recoveries_follow_errors;
pub use superseded_runs::superseded_runs_are_stopped;
pub use tick_lateness::completer_ticks_on_time;
pub use verdict::{Coverage, Span, Violation};
pub use work_ends::lease_work_ends_reported;
pub use work_restarts::lease_work_restarts_follow_the_policy;
pub use worker_ids::worker_ids_name_one_incarnation;
pub use worker_retries::{
    cleaner_requeues_retry_on_time, pool_keepalive_gaps_resync_at_once, pool_keepalive_resyncs_retry_on_time,
    pool_starts_retry_on_time, pool_watches_retry_on_time, worker_completions_retry_on_time,
    worker_registrations_retry_on_time,
};

use keel::observe;

/// A fact of the world a rule needs besides keel's own events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fact {
    /// The node (re)started: a new incarnation, with fresh local state.
    NodeStart,
    /// The node was killed: whatever it was running ends here.
    NodeCrash,
    /// The store lost its data (a restart without its data): what it held is gone.
    StoreLostData,
    /// The store process is back after a crash: it serves again, whatever data it kept.
    StoreUp,
}

/// One entry of a history, as the rules read it.
pub trait Entry {
    /// How a node is named (`Who` in the simulator, a process name in the chaos lane).
    type Node: Clone + Ord + std::fmt::Display;
    /// When it happened, in µs from one origin shared by every node of the history.
    fn t_us(&self) -> u64;
    /// The node it happened on (for a [`Fact`] about a node: that node).
    fn node(&self) -> &Self::Node;
    /// The keel event, if it is one.
    fn keel(&self) -> Option<&observe::Event<'static>>;
    /// The world fact, if it is one.
    fn fact(&self) -> Option<Fact>;

    /// The job key a pool's store made free again, if this entry is that (the store deleted
    /// the job's completion tombstone: its dedup window passed, and a dispatch may add the key
    /// anew, attempts from 1). Only a history that sees the store's own writes has these (the
    /// simulator's store node); elsewhere none, and a key's attempts start anew at its next
    /// `dispatched`.
    fn freed_key(&self) -> Option<&str> {
        None
    }

    /// A lease event of keel.
    fn lease(&self) -> Option<&observe::LeaseEvent<'static>> {
        match self.keel() {
            Some(observe::Event::Lease(e)) => Some(e),
            _ => None,
        }
    }

    /// A replicated-map event of keel.
    fn rmap(&self) -> Option<&observe::RmapEvent<'static>> {
        match self.keel() {
            Some(observe::Event::Rmap(e)) => Some(e),
            _ => None,
        }
    }

    /// A pool event of keel.
    fn pool(&self) -> Option<&observe::PoolEvent<'static>> {
        match self.keel() {
            Some(observe::Event::Pool(e)) => Some(e),
            _ => None,
        }
    }

    /// A completer or subscription-manager event of keel.
    fn completer(&self) -> Option<&observe::CompleterEvent<'static>> {
        match self.keel() {
            Some(observe::Event::Completer(e)) => Some(e),
            _ => None,
        }
    }
}

/// A borrowed entry is an entry: a caller can judge a filtered view of its history
/// (`Vec<&E>`) without copying it.
impl<T: Entry> Entry for &T {
    type Node = T::Node;
    fn t_us(&self) -> u64 {
        (**self).t_us()
    }
    fn node(&self) -> &Self::Node {
        (**self).node()
    }
    fn keel(&self) -> Option<&observe::Event<'static>> {
        (**self).keel()
    }
    fn fact(&self) -> Option<Fact> {
        (**self).fact()
    }
}

/// Remove and return the (job, attempt) of every run of `worker` in a map keyed by
/// (worker, job, attempt): what a worker's end leaves behind.
pub(crate) fn take_worker_runs<'a, V>(
    runs: &mut std::collections::BTreeMap<(&'a str, &'a str, u64), V>,
    worker: &'a str,
) -> Vec<(&'a str, u64)> {
    let left: Vec<(&str, u64)> = runs
        .range((worker, "", 0)..)
        .take_while(|((w, _, _), _)| *w == worker)
        .map(|((_, j, a), _)| (*j, *a))
        .collect();
    for (job, attempt) in &left {
        runs.remove(&(worker, *job, *attempt));
    }
    left
}

/// The text of a recorded keel field (recorded events are owned copies, never lazy).
pub fn plain<'a>(t: &'a observe::Text<'static>) -> &'a str {
    t.as_plain().unwrap_or_default()
}

/// The map of a replicated map's event its apply loop emits; `None` for the waiters' events,
/// which the callers' tasks emit.
pub(crate) fn apply_loop_map<'a>(ev: &'a observe::RmapEvent<'static>) -> Option<&'a str> {
    use observe::RmapEvent as R;
    match ev {
        R::WaiterRegistered { .. }
        | R::WaiterArmed { .. }
        | R::WaiterWoken { .. }
        | R::WaiterCancelled { .. }
        | R::WaitReturned { .. } => None,
        R::Stopped { map, .. }
        | R::Gap { map, .. }
        | R::RevJump { map, .. }
        | R::AfterRestart { map, .. }
        | R::Stale { map, .. }
        | R::Applied { map, .. }
        | R::Notified { map, .. }
        | R::Joined { map, .. }
        | R::Started { map, .. }
        | R::WatchOpened { map, .. }
        | R::WatchFailed { map, .. }
        | R::SnapshotFailed { map, .. }
        | R::Resynced { map, .. } => Some(plain(map)),
    }
}

/// Whether a store call that failed with `error` after `took_us` reports a timeout short of its
/// cut `bound_us`, the cut and the measure on one clock (a millisecond of rounding): the shared
/// test of V31, R24, S42 and P97, a call given up before its op timeout.
pub(crate) fn timed_out_short(error: &str, took_us: u64, bound_us: u64) -> bool {
    error.contains("timed out") && took_us + 1_000 < bound_us
}

/// How far before a call's failure (in op timeouts) a jump of its node's clock excuses a short
/// timeout (V31, S42, P97): the store client's own cut, on real time, may have ended the call.
pub(crate) const JUMP_WINDOW_TIMEOUTS: u64 = 10;

/// The lease and owner a lease event is about (every lease event names both).
pub(crate) fn lease_owner<'a>(ev: &'a observe::LeaseEvent<'static>) -> (&'a str, &'a str) {
    use observe::LeaseEvent as L;
    let (L::OwnerStarted { lease, owner, .. }
    | L::Granted { lease, owner, .. }
    | L::AcquireRefused { lease, owner, .. }
    | L::Quarantined { lease, owner, .. }
    | L::AcquireFailed { lease, owner, .. }
    | L::TimeFailed { lease, owner, .. }
    | L::TimeRead { lease, owner, .. }
    | L::StoreErrors { lease, owner, .. }
    | L::StoreRecovered { lease, owner, .. }
    | L::Failed { lease, owner, .. }
    | L::Awaiting { lease, owner }
    | L::WorkEnded { lease, owner, .. }
    | L::WorkRestarting { lease, owner, .. }
    | L::WorkRestarted { lease, owner, .. }
    | L::Renewed { lease, owner, .. }
    | L::RenewFailed { lease, owner, .. }
    | L::WorkStarted { lease, owner, .. }
    | L::SteppingDown { lease, owner, .. }
    | L::WorkStopped { lease, owner, .. }
    | L::Crashed { lease, owner, .. }
    | L::Held { lease, owner, .. }
    | L::Lost { lease, owner, .. }
    | L::Released { lease, owner }
    | L::RenewRefused { lease, owner, .. }
    | L::ReleaseEnded { lease, owner, .. }
    | L::Stopping { lease, owner }) = ev;
    (plain(lease), plain(owner))
}

/// A minimal history entry for the rules' unit tests: (µs, node, keel event or fact).
#[cfg(test)]
mod test_entry {
    use keel::observe::Event;

    use crate::{Entry, Fact};

    #[derive(Clone)]
    pub(crate) struct E(pub u64, pub &'static str, pub Option<Event<'static>>, pub Option<Fact>);

    /// An entry that may be the store's freeing of a job key ([`Entry::freed_key`]), around an
    /// [`E`] for everything else.
    pub(crate) struct Freed(pub E, pub Option<&'static str>);

    impl Freed {
        /// `e` itself, freeing nothing.
        pub(crate) fn of(e: E) -> Freed {
            Freed(e, None)
        }

        /// The store freed `job`'s key at `t_ms`.
        pub(crate) fn key(t_ms: u64, job: &'static str) -> Freed {
            Freed(E(t_ms * 1000, "store", None, None), Some(job))
        }
    }

    impl Entry for Freed {
        type Node = &'static str;
        fn t_us(&self) -> u64 {
            self.0.t_us()
        }
        fn node(&self) -> &&'static str {
            self.0.node()
        }
        fn keel(&self) -> Option<&Event<'static>> {
            self.0.keel()
        }
        fn fact(&self) -> Option<Fact> {
            self.0.fact()
        }
        fn freed_key(&self) -> Option<&str> {
            self.1
        }
    }

    /// Owner `a` of lease `L` starting on `n1` at 0 with a 1 s TTL, a 250 ms op timeout and the
    /// work restart bounds `restart` (µs; `None`: the step-down policy).
    pub(crate) fn owner_started(restart: Option<(u64, u64)>) -> E {
        let (work_restart_min_us, work_restart_max_us) = restart.unwrap_or((0, 0));
        let e = keel::observe::LeaseEvent::OwnerStarted {
            lease: "L".into(),
            owner: "a".into(),
            renew_us: 300_000,
            poll_us: 300_000,
            retry_min_us: 20_000,
            retry_max_us: 80_000,
            ttl_us: 1_000_000,
            drift_margin_us: 100_000,
            error_log_us: 10_000_000,
            work_restart_min_us,
            work_restart_max_us,
            op_timeout_us: 250_000,
            work_stop_timeout_us: 1_000_000,
            permanent_attempts: 3,
        };
        E(0, "n1", Some(Event::Lease(e.to_static())), None)
    }

    /// Run `run` of completer `c` starting on `n1` at `t_ms`: batches of 8, a 20 ms flush
    /// interval, retries from 10 to 200 ms with a budget of 6, a 200 ms op timeout.
    pub(crate) fn completer_started(t_ms: u64, run: u64) -> E {
        let e = keel::observe::CompleterEvent::CompleterStarted {
            completer: "c".into(),
            run,
            batch_size: 8,
            flush_interval_us: 20_000,
            retry_min_us: 10_000,
            retry_max_us: 200_000,
            retry_budget: 6,
            op_timeout_us: 200_000,
            backlog: 4096,
        };
        completer_at(t_ms, e)
    }

    /// Completer event `e` on `n1` at `t_ms`.
    pub(crate) fn completer_at(t_ms: u64, e: keel::observe::CompleterEvent<'_>) -> E {
        E(t_ms * 1000, "n1", Some(Event::Completer(e.to_static())), None)
    }

    /// Pool event `e` on `n1` at `t_ms`.
    pub(crate) fn pool_at(t_ms: u64, e: keel::observe::PoolEvent<'_>) -> E {
        E(t_ms * 1000, "n1", Some(Event::Pool(e.to_static())), None)
    }

    /// Worker `w` starts job `j`'s handler at `attempt` on `n1` at `t_ms`.
    pub(crate) fn run_started(t_ms: u64, attempt: u64) -> E {
        pool_at(t_ms, keel::observe::PoolEvent::Started { job: "j".into(), worker: "w".into(), attempt })
    }

    /// Each violation's invariant and instant in milliseconds: what a rule's test compares.
    pub(crate) fn at_ms(v: &[crate::Violation]) -> Vec<(&'static str, u64)> {
        v.iter().map(|v| (v.invariant, v.t_us / 1000)).collect()
    }

    impl Entry for E {
        type Node = &'static str;
        fn t_us(&self) -> u64 {
            self.0
        }
        fn node(&self) -> &&'static str {
            &self.1
        }
        fn keel(&self) -> Option<&Event<'static>> {
            self.2.as_ref()
        }
        fn fact(&self) -> Option<Fact> {
            self.3
        }
    }
}
