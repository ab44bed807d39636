//! Events of the worker pool (target `keel::pool`).

use std::fmt;

use tracing::{debug, error, info, trace, warn};

use super::{Field, Text, events};

/// Why a job moved to another worker (its `kind` in logs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum MoveKind {
    /// A dead worker's job, requeued by its cleaner.
    Requeued,
    /// A job of a worker that never registered (or whose keep-alive vanished), requeued.
    OrphanRequeued,
    /// A job whose worker did not acknowledge it within the ack grace.
    Redispatched,
    /// A queued job (no live worker when it was added) assigned.
    Assigned,
    /// A job handed back by a stopping worker.
    HandedBack,
}

impl MoveKind {
    /// Its name in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            MoveKind::Requeued => "requeued",
            MoveKind::OrphanRequeued => "orphan_requeued",
            MoveKind::Redispatched => "redispatched",
            MoveKind::Assigned => "assigned",
            MoveKind::HandedBack => "handed_back",
        }
    }
}

impl fmt::Display for MoveKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which write of a stale attempt the store rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum StaleOp {
    /// The acknowledgement.
    Ack,
    /// The completion.
    Complete,
}

impl StaleOp {
    /// Its name in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            StaleOp::Ack => "ack",
            StaleOp::Complete => "complete",
        }
    }
}

macro_rules! name_field {
    ($($t:ty),*) => {$(
        impl Field for $t {
            type Static = $t;
            fn to_static(&self) -> $t {
                *self
            }
            fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}
name_field!(MoveKind, StaleOp);

events! {
    /// What a pool node, its workers and its cleaners did.
    #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
    pub enum PoolEvent<'a> {
        /// A pool node started, with the timing its rules judge it by: its ack grace (P28),
        /// sweep interval (the wait between its router's resync tries, P29) and store operation
        /// timeout (a sweep's wait for its table, P65); and its dedup window, how long its sweeps
        /// keep a completed job's tombstone (P84); and its workers' drift margin, how long before
        /// the TTL measured from a beat's send a worker fences itself (P80 judges it).
        NodeStarted { pool: Text<'a>, node: Text<'a>, ack_grace_us: u64, sweep_interval_us: u64, cleanup_lock_ttl_us: u64, op_timeout_us: u64, dedup_window_us: u64, drift_margin_us: u64 } = "node_started",
        /// A pool node's stop was asked: from here its router starts no new read of the store
        /// (P33), and its workers drain.
        NodeStopping { pool: Text<'a>, node: Text<'a> } = "node_stopping",
        /// A pool node stopped.
        NodeStopped { node: Text<'a> } = "node_stopped",
        /// Completion events were not flushed before the node's stop bound.
        CompletionEventsUnflushed { error: Text<'a> } = "completion_events_unflushed",
        /// A wait for `job`'s completion was registered on this node (`wait_for`,
        /// `dispatch_and_wait`: the latter before its dispatch writes; P81).
        CompletionWaitRegistered { job: Text<'a> } = "completion_wait_registered",
        /// A wait for `job`'s completion was refused: the node had `waiting` waits registered,
        /// its most (`max`, [`PoolConfigBuilder::max_waiters`](crate::pool::PoolConfigBuilder::max_waiters));
        /// the call returns `TooManyWaiters` (P74).
        CompletionWaitRefused { job: Text<'a>, waiting: u64, max: u64 } = "completion_wait_refused",
        /// A registered wait for `job` left the node's registry: `resolved` by its completion,
        /// or given up (its caller returned or dropped it; P74).
        CompletionWaitEnded { job: Text<'a>, resolved: bool } = "completion_wait_ended",
        /// A new job was added, owned by `worker` (empty: queued), at store time `now_ms`.
        Dispatched { job: Text<'a>, worker: Text<'a>, attempt: u64, now_ms: u64 } = "dispatched",
        /// A dispatch's or a move's pending entry was written: `worker` must acknowledge attempt
        /// `attempt` by `deadline_ms` (store time), the ack grace after `now_ms`: the store time
        /// of the decision, or for a move the newest store time the node knew when it wrote
        /// (its last read plus the local time since; rule P28).
        PendingWritten { job: Text<'a>, attempt: u64, worker: Text<'a>, now_ms: u64, deadline_ms: u64 } = "pending_written",
        /// A job moved from `from` (the owner its guarded record named) to `worker` (empty:
        /// queued) under a new attempt. `cleaned`: the dead worker whose cleanup moved it
        /// (kinds `requeued` and `orphan_requeued`; empty for the others), so a checker can tell
        /// a cleanup that took a job off another worker (P9).
        Moved { kind: MoveKind, job: Text<'a>, from: Text<'a>, worker: Text<'a>, attempt: u64, now_ms: u64, cleaned: Text<'a> } = "moved",
        /// The store lost the pool's data (epoch marker missing or changed), seen by a read of
        /// the marker that took `took_us` of the node's clock: a loss during that read may be
        /// one the read did not see yet.
        DataLoss { pool: Text<'a>, old_epoch: Text<'a>, new_epoch: Option<Text<'a>>, took_us: u64 } = "data_loss",
        /// A stale pending entry (its attempt is gone) was removed.
        PendingSwept { job: Text<'a> } = "pending_swept",
        /// A sweep decided to drop `n` completer-map entries on its view at store time
        /// `now_ms`, the newest of their tombstones completed at `newest_done_ms` (None: none
        /// had one), with `retention_ms` of retention (P44 judges the decision's instant).
        CompleterEntriesDropping { n: usize, newest_done_ms: Option<u64>, now_ms: u64, retention_ms: u64 } = "completer_entries_dropping",
        /// A cleaner took the free cleanup lock of a dead worker, judged dead on a view at store
        /// time `now_ms` that held its keep-alive `keepalive` (None: none).
        CleanupLocked { worker: Text<'a>, lock: Text<'a>, keepalive: Option<Text<'a>>, now_ms: u64 } = "cleanup_locked",
        /// A cleaner took over an expired cleanup lock (`from`); `keepalive` and `now_ms` as for
        /// `CleanupLocked`.
        CleanupTakeover { worker: Text<'a>, from: Text<'a>, lock: Text<'a>, keepalive: Option<Text<'a>>, now_ms: u64 } = "cleanup_takeover",
        /// A cleaner replaced worker's keep-alive `keepalive`, judged stale at store time
        /// `now_ms`, by the dead marker (`None`: it set the marker where no keep-alive was):
        /// from here a late beat cannot revive it, nor a late registration.
        CleanupFenced { worker: Text<'a>, keepalive: Option<Text<'a>>, now_ms: u64 } = "cleanup_fenced",
        /// A cleaner's try to release its cleanup lock of `worker` (a compare-and-delete of
        /// exactly `lock`, the value it wrote) ended: `released`, whether the store deleted it
        /// (false: the lock was no longer ours, or the store failed, and the lock expires) (P34).
        CleanupReleased { worker: Text<'a>, lock: Text<'a>, released: bool } = "cleanup_released",
        /// A cleaner's cleanup of `worker` (with the lock value `lock` it writes: empty if it
        /// wrote none) ended: `outcome` is `cleaned`, `alive` (found alive on
        /// its fresh re-read, or it beat before its fence), `not_ours` (the lock was busy or the
        /// race for it lost), `lock_lifetime` (stopped before a write its lock could expire
        /// under: the lock is left to expire), `store_error` (a store call failed: the lock is
        /// left to expire) or `confused` (a driver bug). `locked`: it had taken the lock. A
        /// cleanup that took its lock releases it before it ends, unless it ended by its lock's
        /// lifetime, a store error or confusion (P34).
        CleanupEnded { worker: Text<'a>, lock: Text<'a>, outcome: Text<'a>, locked: bool } = "cleanup_ended",
        /// A dead worker's jobs were requeued and its state deleted.
        WorkerCleaned { worker: Text<'a>, orphan: bool } = "worker_cleaned",
        /// A worker is stopping with `running` handlers: it drains them for up to `drain_ms`
        /// of its local time (its `shutdown_deadline`), keeping its registration and keep-alive.
        /// Its drain ends once its runs returned and a keep-alive beat in flight ended: at most
        /// `beat_bound_ms` (two store calls of `op_timeout`) after the last run's end.
        WorkerStopping { worker: Text<'a>, running: usize, drain_ms: u64, beat_bound_ms: u64 } = "worker_stopping",
        /// A worker's keep-alive went unconfirmed past its local deadline: handlers stopped.
        Fenced { worker: Text<'a>, running: usize } = "fenced",
        /// A fenced worker's keep-alive was confirmed again.
        Unfenced { worker: Text<'a> } = "unfenced",
        /// A worker found itself cleaned up: it stops its jobs.
        WorkerDead { worker: Text<'a> } = "worker_dead",
        /// A worker stopped and deregistered.
        WorkerStopped { worker: Text<'a> } = "worker_stopped",
        /// A stopping worker deleted its keep-alive (compared against the last value it wrote,
        /// or one of its beats whose reply was lost) and then its registration, `took_us` from
        /// the first call; `error`: the call that failed (the rest is left to the cleanup).
        /// Every graceful stop reports one before `worker_stopped` (P105); one without an error
        /// leaves no keep-alive of the worker's own in the store (P106).
        WorkerDeregistered { worker: Text<'a>, error: Option<Text<'a>>, took_us: u64 } = "worker_deregistered",
        /// A stopping worker could not hand `job` back (empty: it could not read which jobs it
        /// holds, so none was handed back): `error` says why. The job stays on the worker until
        /// the cleanup requeues it as an orphan once the worker deregistered. Every other job
        /// the worker held when it marked itself stopping is off it by its deregistration (P57).
        HandBackFailed { worker: Text<'a>, job: Text<'a>, error: Text<'a> } = "hand_back_failed",
        /// A worker writes a keep-alive with store time `ms`, valid until store time
        /// `ms + ttl_ms` (its `worker_ttl`); `stopping`: marked as draining (no new jobs).
        Keepalive { worker: Text<'a>, ms: u64, ttl_ms: u64, stopping: bool } = "keepalive",
        /// A worker registered: it beats (reads store time, then writes its keep-alive) a
        /// keep-alive interval (`keepalive_interval_us`) after this, and again that long after
        /// each beat ends (rule P23).
        /// The registration attempt took `took_us` from its send.
        /// Its stops (at a fence, a death, the drain's end) wait `shutdown_deadline_us` for each
        /// run before aborting it (P43).
        WorkerRegistered { worker: Text<'a>, keepalive_interval_us: u64, shutdown_deadline_us: u64, took_us: u64 } = "worker_registered",
        /// A worker's registration attempt failed after `took_us`; it retries `retry_min_us`·2ⁿ
        /// after this (n: its failures in a row before this one), at most `retry_max_us` (P24).
        RegisterFailed { worker: Text<'a>, took_us: u64, retry_min_us: u64, retry_max_us: u64 } = "register_failed",
        /// A worker's beat ended (answered, refused, failed or not sent), `took_us` after it began;
        /// `confirmed`: the store applied it and said so, and the worker's fence moves to the
        /// beat's send plus its TTL less its drift margin (P108 judges the fence by it).
        BeatEnded { worker: Text<'a>, took_us: u64, confirmed: bool } = "beat_ended",
        /// A worker acknowledged its attempt.
        Acked { job: Text<'a>, worker: Text<'a>, attempt: u64 } = "acked",
        /// The store rejected a stale attempt's ack or completion.
        StaleRejected { op: StaleOp, job: Text<'a>, worker: Text<'a>, attempt: u64 } = "stale_rejected",
        /// A worker's driver handed its machine a job's record (routed, or re-announced by a
        /// sweep): the record's attempt and owner, attempt 0 when the record is gone or
        /// unreadable. With `started` and `handler_returned`, P37 judges that a run the record
        /// moves on is asked to stop at once.
        RecordDelivered { job: Text<'a>, worker: Text<'a>, attempt: u64, owner: Text<'a> } = "record_delivered",
        /// A worker asked its run of a job (at `attempt`; 0 when the run's task is gone) to stop:
        /// the job's record moved on or is gone. A run asked to stop before its handler started
        /// never starts it (P37).
        RunStopAsked { job: Text<'a>, worker: Text<'a>, attempt: u64 } = "run_stop_asked",
        /// A handler started.
        Started { job: Text<'a>, worker: Text<'a>, attempt: u64 } = "started",
        /// A handler returned (`completed`: it said so; the completion is recorded after this,
        /// fenced by its attempt; `stopped`: its run had been asked to stop, by a fence, a change
        /// of the job's record, or the worker's stop). With `Started`, the span a handler really
        /// ran.
        HandlerReturned { job: Text<'a>, worker: Text<'a>, attempt: u64, completed: bool, stopped: bool } = "handler_returned",
        /// A handler ignored its stop for the worker's `shutdown_deadline` after a fence, a death
        /// or a drain's end, and its task was aborted: the run ends here, without its
        /// `handler_returned` (P43).
        /// `waited_us`: the worker's local time from the stop's request to the abort.
        HandlerAborted { job: Text<'a>, worker: Text<'a>, attempt: u64, waited_us: u64 } = "handler_aborted",
        /// A run of `attempt` of a job on a worker ended (whatever its outcome: its ack refused
        /// or failed, asked to stop before its handler started, or its handler's outcome
        /// recorded or given up), and the worker stops tracking it. An `acked` run starts its
        /// handler or ends at once; by its worker's end every acked run has ended or was aborted
        /// (P45).
        RunEnded { job: Text<'a>, worker: Text<'a>, attempt: u64 } = "run_ended",
        /// A worker's node routes every change of `job`'s record to `worker` from here: the
        /// worker starts a run of the job at `attempt` (before its ack is sent, so a change the
        /// ack could miss is one the ack's guard refuses).
        RunRouted { job: Text<'a>, worker: Text<'a>, attempt: u64 } = "run_routed",
        /// The node stopped routing `job`'s changes to `worker`: the run the worker tracks of
        /// the job ended. An older run's end leaves a newer run routed (P63).
        RunUnrouted { job: Text<'a>, worker: Text<'a> } = "run_unrouted",
        /// A worker incarnation's task ended and its node forgot it: `kept` says whether the node
        /// still holds the worker's delivery channel (it must not: a node skips the cleanup of a
        /// stale worker it holds as its own, P100), `routes` how many job routes the node holds
        /// for all its workers after it (the gone worker's dropped, every other worker's kept:
        /// P100 compares them with the `run_routed` and `run_unrouted` it announced).
        WorkerForgotten { worker: Text<'a>, kept: bool, routes: usize } = "worker_forgotten",
        /// `job`'s record was not handed to local worker `worker` (its owner, or a worker
        /// running the job): the worker's queue of delivered records was full
        /// (`PoolConfig::intake_buffer`). The sweeps hand a record its owner does not run to it
        /// again; a record for a worker running an older attempt reaches it through its run's
        /// stale ack or completion.
        DeliveryDropped { job: Text<'a>, worker: Text<'a> } = "delivery_dropped",
        /// The completer's backlog was full: a completion event was dropped.
        CompletionEventDropped { job: Text<'a> } = "completion_event_dropped",
        /// The node's completer refused a recorded completion's event (`error`: its run had
        /// closed): the completion is recorded, and its event is lost (P50).
        CompletionEventRefused { job: Text<'a>, error: Text<'a> } = "completion_event_refused",
        /// A handler stopped before completing.
        Abandoned { job: Text<'a>, worker: Text<'a>, attempt: u64 } = "abandoned",
        /// The completion of an attempt was recorded.
        Completed { job: Text<'a>, worker: Text<'a>, attempt: u64 } = "completed",
        /// A try to record the completion failed after `took_us`; the next comes
        /// `retry_min_us`·2ⁿ later (n: the failed tries before this one), at most `retry_max_us`
        /// (the pool's `cleanup_backoff`), or, after the last of its `tries_max` tries (the
        /// pool's `cleanup_retries`), the completion is given up (`complete_failed`). Emitted for
        /// every failed try, the last one too (P26).
        CompleteRetry { job: Text<'a>, worker: Text<'a>, attempt: u64, error: Text<'a>, took_us: u64, retry_min_us: u64, retry_max_us: u64, tries_max: u32 } = "complete_retry",
        /// The completion could not be recorded after `tries` failed tries of the `tries_max` it
        /// was allowed (the pool's `cleanup_retries`): the job stays owned and runs again (P26
        /// judges that it gave up after exactly its allowed tries).
        CompleteFailed { job: Text<'a>, worker: Text<'a>, attempt: u64, tries: u32, tries_max: u32 } = "complete_failed",
        /// `Pool::start` is waiting for the store (at the first failure, then every 5 s).
        StartWaiting { pool: Text<'a>, node: Text<'a>, attempts: u32, waited_ms: u64, timeout_ms: u64, error: Text<'a> } = "start_waiting",
        /// `Pool::start` reached the store after `attempts` tries, the last taking `took_us`.
        StartStoreReached { pool: Text<'a>, node: Text<'a>, attempts: u32, took_us: u64 } = "start_store_reached",
        /// `Pool::start`'s read of the store's time failed after `took_us` (its `attempt`-th in
        /// a row) and is tried again: after `retry_min_us`·2ⁿ for the n-th failure from 0, at
        /// most `retry_max_us`, no jitter, and no later than the start's deadline,
        /// `remaining_us` away (P67 judges each try's start).
        StartRetry { pool: Text<'a>, node: Text<'a>, attempt: u32, took_us: u64, retry_min_us: u64, retry_max_us: u64, remaining_us: u64, error: Text<'a> } = "start_retry",
        /// `Pool::start` gave up: a permanent error, or the start timeout; its last try took
        /// `took_us`.
        StartFailed { pool: Text<'a>, node: Text<'a>, attempts: u32, waited_ms: u64, permanent: bool, took_us: u64, error: Text<'a> } = "start_failed",
        /// A worker slot started its first incarnation, `worker`. A dead incarnation is replaced
        /// after a jittered backoff in `[b/2, b]`, `b = restart_min_ms·2^n` capped at
        /// `restart_max_ms`, `n` the incarnations in a row that died within `reset_after_ms` of
        /// their start (0 and 0: the slot replaces none).
        SlotStarted { worker: Text<'a>, restart_min_ms: u64, restart_max_ms: u64, reset_after_ms: u64 } = "slot_started",
        /// A worker slot ended with its incarnation `worker` (stopped, or dead and not to be
        /// replaced: the slot stopped, or it replaces none).
        SlotEnded { worker: Text<'a>, exit: Text<'a> } = "slot_ended",
        /// A worker died (cleaned up by the pool, or its task panicked).
        WorkerDied { worker: Text<'a>, exit: Text<'a> } = "worker_died",
        /// A dead worker was replaced by a fresh incarnation after `after_ms`.
        WorkerReplaced { worker: Text<'a>, replaces: Text<'a>, after_ms: u64 } = "worker_replaced",
        /// The completion feed delivered completions the change feed missed, from a snapshot.
        FeedResynced { why: Text<'a>, completions: usize } = "feed_resynced",
        /// Completions dropped for full completion-feed subscribers.
        FeedDropped { dropped: u64 } = "feed_dropped",
        /// A slice of the job map's reconcile found `found` entries the node's table did not
        /// hold as the store did, and its pass's end dropped `dropped` the store no longer held:
        /// written or deleted behind keel's back, with no change on the feed (0 and 0 otherwise,
        /// and then not emitted).
        TableReconciled { pool: Text<'a>, found: usize, dropped: usize } = "table_reconciled",
        /// The job map's feed brought revision `rev` to a node's table in sync at `expected` - 1,
        /// with no gap reported: the revisions between were skipped. A store numbers a map's
        /// first commit, and the first after a restart, from its clock (so the first change after
        /// a snapshot of an empty map, or after a restart, skips); any other skip is a change the
        /// feed lost. The node resyncs its table from a snapshot at once.
        /// `feed_gaps`: the gaps and holes the node's completion feed has been told of since the
        /// node started, this one included (P64).
        FeedHole { pool: Text<'a>, expected: u64, rev: u64, feed_gaps: u64 } = "feed_hole",
        /// The job map's feed reported a gap to the node's router: the table and the completion
        /// feed were told, the latter's count of gaps and holes since the node started is now
        /// `feed_gaps` (P64), and the router resyncs from a whole snapshot.
        RouterGap { pool: Text<'a>, feed_gaps: u64 } = "router_gap",
        /// A node's job table was rebuilt from a whole snapshot of the job map at revision `rev`
        /// (`entries` entries), read because of `why` (a gap, a hole, a sweep's wait given up);
        /// `replaced`: the snapshot was newer than the table, which now holds it, and a sweep
        /// waiting for the table is woken (P53). In the steady state there are none: their cost
        /// grows with the retained tombstones.
        /// The snapshot's read took `took_us` of the node's clock, and was requested after the
        /// completion feed had been told of `feed_gaps` gaps and holes: those, and no later one,
        /// are healed by it (P64).
        TableRebuilt { pool: Text<'a>, why: Text<'a>, rev: u64, entries: usize, replaced: bool, feed_gaps: u64, took_us: u64 } = "job_table_rebuilt",
        /// A sweep waited for its node's table to hold every change up to the store's revision
        /// `rev`, for `waited_us` of the node's clock: `fresh` (it did), `hole` (the feed has a
        /// hole: the sweep rebuilds the table) or `timeout` (not within the op timeout: the sweep
        /// rebuilds it). Not emitted when the table was fresh at once. `table_rev`: the
        /// revision the table had applied when the wait ended (0: it had a hole).
        TableAwaited { pool: Text<'a>, rev: u64, waited_us: u64, outcome: Text<'a>, table_rev: u64 } = "table_awaited",
        /// The router's own resync of its table failed after `took_us` of the node's clock; it
        /// tries again `retry_us` later (its sweep interval), reading nothing of its feed (P29).
        RouterResyncFailed { pool: Text<'a>, took_us: u64, retry_us: u64, error: Text<'a> } = "router_resync_failed",
        /// The router's own resync of its table succeeded after `took_us` (P29 judges its start
        /// when a failed one came before).
        RouterResynced { pool: Text<'a>, took_us: u64 } = "router_resynced",
        /// A node's try to open its watch of `map` (the router's job map, the keep-alive
        /// follower's keep-alive map) failed after `took_us`; it tries again `retry_us` later
        /// (its sweep interval; P68 judges the next try's start).
        WatchOpenFailed { pool: Text<'a>, map: Text<'a>, took_us: u64, retry_us: u64, error: Text<'a> } = "watch_open_failed",
        /// A node's watch of `map` opened after `tries` tries, the last taking `took_us`.
        WatchOpened { pool: Text<'a>, map: Text<'a>, tries: u32, took_us: u64 } = "watch_opened",
        /// The keep-alive follower's snapshot of the keep-alive map (at its start, or after a
        /// gap in its feed) failed after `took_us`; it tries again `retry_us` later (the
        /// keep-alive interval; P69 judges the next try's start). Dispatch reads the keep-alive
        /// map itself meanwhile.
        KeepaliveResyncFailed { pool: Text<'a>, took_us: u64, retry_us: u64, error: Text<'a> } = "keepalive_resync_failed",
        /// The keep-alive follower rebuilt its replica from a snapshot of `entries` keep-alives
        /// that took `took_us`.
        KeepaliveResynced { pool: Text<'a>, entries: usize, took_us: u64 } = "keepalive_resynced",
        /// The keep-alive follower's feed reported a gap: its replica is out of sync, and it
        /// snapshots the keep-alive map again at once (P73 judges that the snapshot follows).
        KeepaliveGap { pool: Text<'a> } = "keepalive_gap",
        /// A cleaner's try to requeue `job` of the dead worker `worker` failed after `took_us`
        /// (a store error, or the record changed and still names the worker); the next comes
        /// `retry_min_us`·2ⁿ later (n: the failed tries before this one), at most `retry_max_us`
        /// (the pool's `cleanup_backoff`), up to `tries_max` tries in all (its `cleanup_retries`).
        /// Emitted only when a try follows (P31).
        RequeueRetry { job: Text<'a>, worker: Text<'a>, error: Text<'a>, took_us: u64, retry_min_us: u64, retry_max_us: u64, tries_max: u32 } = "requeue_retry",
        /// A requeue that was retried ended (`ok`: moved, or no longer the worker's; otherwise
        /// given up, and the cleanup with it) after its last try's `took_us` (P31 judges that
        /// try's start).
        RequeueEnded { job: Text<'a>, worker: Text<'a>, tries: u32, took_us: u64, ok: bool } = "requeue_ended",
        /// A cleaner gave up requeueing `job` of the dead worker `worker` after `tries` tries of
        /// the `tries_max` it may make (its `cleanup_retries`), on `error` (the cleanup stops
        /// there; the next sweep takes it up again). `reread`: the error was the re-read of a
        /// record that changed under the move, which ends the requeue at once by design (E9
        /// judges the others: a transient error with tries left is retried).
        RequeueGaveUp { job: Text<'a>, worker: Text<'a>, tries: u32, tries_max: u32, error: Text<'a>, reread: bool } = "requeue_gave_up",
        /// The node read the pool's epoch marker and adopted it (after a `data_loss` if it was
        /// missing or changed, after writing a fresh one if it was missing); the read began
        /// `took_us` of the node's clock before (P30 judges that a read after a store data loss
        /// reports the loss).
        EpochChecked { pool: Text<'a>, took_us: u64 } = "epoch_checked",
    }
}

pub(super) fn log(e: &PoolEvent<'_>) {
    use PoolEvent as E;
    const T: &str = "keel::pool";
    match e {
        E::NodeStarted {
            pool,
            node,
            ack_grace_us,
            sweep_interval_us,
            cleanup_lock_ttl_us,
            op_timeout_us,
            dedup_window_us,
            drift_margin_us,
        } => {
            info!(target: T, kind = "node_started", pool = %pool, node = %node, ack_grace_us, sweep_interval_us, cleanup_lock_ttl_us, op_timeout_us, dedup_window_us, drift_margin_us, "pool node started")
        }
        E::NodeStopping { pool, node } => {
            info!(target: T, kind = "node_stopping", pool = %pool, node = %node, "pool node stopping")
        }
        E::NodeStopped { node } => info!(target: T, kind = "node_stopped", node = %node, "pool node stopped"),
        E::CompletionEventsUnflushed { error } => {
            warn!(target: T, kind = "completion_events_unflushed", error = %error, "completion events not flushed before the bound (the completions themselves are recorded)")
        }
        E::CompletionWaitRegistered { job } => {
            debug!(target: T, kind = "completion_wait_registered", job = %job, "completion wait registered")
        }
        E::CompletionWaitRefused { job, waiting, max } => {
            debug!(target: T, kind = "completion_wait_refused", job = %job, waiting, max, "completion wait refused: the node has its most waiters")
        }
        E::CompletionWaitEnded { job, resolved } => {
            trace!(target: T, kind = "completion_wait_ended", job = %job, resolved, "completion wait ended")
        }
        E::Dispatched { job, worker, attempt, now_ms } => {
            debug!(target: T, kind = "dispatched", job = %job, worker = %worker, attempt, now_ms, "job dispatched")
        }
        E::PendingWritten { job, attempt, worker, now_ms, deadline_ms } => {
            trace!(target: T, kind = "pending_written", job = %job, attempt, worker = %worker, now_ms, deadline_ms, "pending dispatch written")
        }
        E::Moved { kind, job, from, worker, attempt, now_ms, cleaned } => {
            info!(target: T, kind = kind.as_str(), job = %job, from = %from, worker = %worker, attempt, now_ms, cleaned = %cleaned, "job moved")
        }
        E::DataLoss { pool, old_epoch, new_epoch, took_us } => {
            error!(target: T, kind = "data_loss", pool = %pool, old_epoch = %old_epoch, new_epoch = ?new_epoch.as_ref().map(|t| t.as_str()), took_us,
                "the store lost the pool's data (epoch marker missing or changed): jobs, workers and locks it held are gone")
        }
        E::PendingSwept { job } => debug!(target: T, kind = "pending_swept", job = %job, "stale pending entry removed"),
        E::CompleterEntriesDropping { n, newest_done_ms, now_ms, retention_ms } => {
            debug!(target: T, kind = "completer_entries_dropping", n, newest_done_ms = ?newest_done_ms, now_ms, retention_ms, "old completer-map entries dropped")
        }
        E::CleanupLocked { worker, lock, keepalive, now_ms } => {
            info!(target: T, kind = "cleanup_locked", worker = %worker, lock = %lock, keepalive = ?keepalive.as_ref().map(|t| t.as_str()), now_ms, "cleanup lock taken")
        }
        E::CleanupTakeover { worker, from, lock, keepalive, now_ms } => {
            info!(target: T, kind = "cleanup_takeover", worker = %worker, from = %from, lock = %lock, keepalive = ?keepalive.as_ref().map(|t| t.as_str()), now_ms, "stale cleanup lock taken over")
        }
        E::CleanupFenced { worker, keepalive, now_ms } => {
            info!(target: T, kind = "cleanup_fenced", worker = %worker, keepalive = ?keepalive.as_ref().map(|t| t.as_str()), now_ms, "stale keep-alive replaced by the dead marker")
        }
        E::CleanupReleased { worker, lock, released } => {
            debug!(target: T, kind = "cleanup_released", worker = %worker, lock = %lock, released, "cleanup lock released")
        }
        E::CleanupEnded { worker, lock, outcome, locked } => {
            debug!(target: T, kind = "cleanup_ended", worker = %worker, lock = %lock, outcome = %outcome, locked, "cleanup ended")
        }
        E::WorkerCleaned { worker, orphan } => {
            info!(target: T, kind = "worker_cleaned", worker = %worker, orphan, "dead worker cleaned up")
        }
        E::WorkerStopping { worker, running, drain_ms, beat_bound_ms } => {
            info!(target: T, kind = "worker_stopping", worker = %worker, running, drain_ms, beat_bound_ms, "worker stopping")
        }
        E::Fenced { worker, running } => {
            warn!(target: T, kind = "fenced", worker = %worker, running, "keep-alive unconfirmed past the local deadline; stopping handlers")
        }
        E::Unfenced { worker } => info!(target: T, kind = "unfenced", worker = %worker, "keep-alive confirmed again"),
        E::WorkerDead { worker } => {
            warn!(target: T, kind = "worker_dead", worker = %worker, "this worker was cleaned up (keep-alive gone or changed): stopping its jobs")
        }
        E::HandBackFailed { worker, job, error } => {
            warn!(target: T, kind = "hand_back_failed", worker = %worker, job = %job, error = %error, "hand-back failed; the cleanup will requeue the job once the worker deregistered")
        }
        E::WorkerStopped { worker } => {
            info!(target: T, kind = "worker_stopped", worker = %worker, "worker stopped and deregistered")
        }
        E::WorkerDeregistered { worker, error: None, took_us } => {
            debug!(target: T, kind = "worker_deregistered", worker = %worker, took_us, "keep-alive and registration deleted")
        }
        E::WorkerDeregistered { worker, error: Some(error), took_us } => {
            warn!(target: T, kind = "worker_deregistered", worker = %worker, error = %error, took_us, "deregistration failed; the cleanup finishes it")
        }
        E::Keepalive { worker, ms, ttl_ms, stopping } => {
            debug!(target: T, kind = "keepalive", worker = %worker, ms, ttl_ms, stopping, "keep-alive")
        }
        E::CompleteRetry { job, worker, attempt, error, took_us, retry_min_us, retry_max_us, tries_max } => {
            debug!(target: T, kind = "complete_retry", job = %job, worker = %worker, attempt, error = %error, took_us, retry_min_us, retry_max_us, tries_max, "completion try failed")
        }
        E::WorkerRegistered { worker, keepalive_interval_us, shutdown_deadline_us, took_us } => {
            info!(target: T, kind = "worker_registered", worker = %worker, keepalive_interval_us, shutdown_deadline_us, took_us, "worker registered")
        }
        E::RegisterFailed { worker, took_us, retry_min_us, retry_max_us } => {
            debug!(target: T, kind = "register_failed", worker = %worker, took_us, retry_min_us, retry_max_us, "registration failed; retrying")
        }
        E::BeatEnded { worker, took_us, confirmed } => {
            trace!(target: T, kind = "beat_ended", worker = %worker, took_us, confirmed, "keep-alive beat ended")
        }
        E::Acked { job, worker, attempt } => {
            debug!(target: T, kind = "acked", job = %job, worker = %worker, attempt, "acknowledged")
        }
        E::StaleRejected { op: StaleOp::Ack, job, worker, attempt } => {
            info!(target: T, kind = "stale_rejected", op = "ack", job = %job, worker = %worker, attempt, "stale attempt: ack rejected")
        }
        E::StaleRejected { op: StaleOp::Complete, job, worker, attempt } => {
            info!(target: T, kind = "stale_rejected", op = "complete", job = %job, worker = %worker, attempt, "stale attempt: completion rejected")
        }
        E::RecordDelivered { job, worker, attempt, owner } => {
            trace!(target: T, kind = "record_delivered", job = %job, worker = %worker, attempt, owner = %owner, "job record delivered to its worker")
        }
        E::RunStopAsked { job, worker, attempt } => {
            debug!(target: T, kind = "run_stop_asked", job = %job, worker = %worker, attempt, "run asked to stop: its record moved on")
        }
        E::Started { job, worker, attempt } => {
            debug!(target: T, kind = "started", job = %job, worker = %worker, attempt, "handler started")
        }
        E::HandlerReturned { job, worker, attempt, completed, stopped } => {
            debug!(target: T, kind = "handler_returned", job = %job, worker = %worker, attempt, completed, stopped, "handler returned")
        }
        E::HandlerAborted { job, worker, attempt, waited_us } => {
            warn!(target: T, kind = "handler_aborted", job = %job, worker = %worker, attempt, waited_us, "handler ignored its stop for the shutdown deadline; aborted")
        }
        E::RunEnded { job, worker, attempt } => {
            trace!(target: T, kind = "run_ended", job = %job, worker = %worker, attempt, "run ended")
        }
        E::RunRouted { job, worker, attempt } => {
            trace!(target: T, kind = "run_routed", job = %job, worker = %worker, attempt, "job's record changes routed to its worker")
        }
        E::RunUnrouted { job, worker } => {
            trace!(target: T, kind = "run_unrouted", job = %job, worker = %worker, "job's record changes no longer routed to the worker")
        }
        E::WorkerForgotten { worker, kept, routes } => {
            trace!(target: T, kind = "worker_forgotten", worker = %worker, kept, routes, "worker's channel and routes dropped by its node")
        }
        E::DeliveryDropped { job, worker } => {
            debug!(target: T, kind = "delivery_dropped", job = %job, worker = %worker, "worker queue full; record left to the next sweep")
        }
        E::CompletionEventDropped { job } => {
            warn!(target: T, kind = "completion_event_dropped", job = %job, "completer backlog full; completion event dropped (the completion is recorded)")
        }
        E::CompletionEventRefused { job, error } => {
            warn!(target: T, kind = "completion_event_refused", job = %job, error = %error, "completer refused a recorded completion's event; the event is lost (the completion is recorded)")
        }
        E::Abandoned { job, worker, attempt } => {
            debug!(target: T, kind = "abandoned", job = %job, worker = %worker, attempt, "handler stopped before completing")
        }
        E::Completed { job, worker, attempt } => {
            debug!(target: T, kind = "completed", job = %job, worker = %worker, attempt, "job completed")
        }
        E::StartWaiting { pool, node, attempts, waited_ms, timeout_ms, error } => {
            warn!(target: T, kind = "start_waiting", pool = %pool, node = %node, attempts, waited_ms, timeout_ms, error = %error, "pool start: waiting for the store")
        }
        E::StartStoreReached { pool, node, attempts, took_us } => {
            info!(target: T, kind = "start_store_reached", pool = %pool, node = %node, attempts, took_us, "pool start: the store answers")
        }
        E::StartRetry { pool, node, attempt, took_us, retry_min_us, retry_max_us, remaining_us, error } => {
            debug!(target: T, kind = "start_retry", pool = %pool, node = %node, attempt, took_us, retry_min_us, retry_max_us, remaining_us, error = %error, "pool start: the store's time unread; trying again")
        }
        E::StartFailed { pool, node, attempts, waited_ms, permanent, took_us, error } => {
            error!(target: T, kind = "start_failed", pool = %pool, node = %node, attempts, waited_ms, permanent, took_us, error = %error, "pool start failed")
        }
        E::SlotStarted { worker, restart_min_ms, restart_max_ms, reset_after_ms } => {
            debug!(target: T, kind = "slot_started", worker = %worker, restart_min_ms, restart_max_ms, reset_after_ms, "worker slot started")
        }
        E::SlotEnded { worker, exit } => {
            debug!(target: T, kind = "slot_ended", worker = %worker, exit = %exit, "worker slot ended")
        }
        E::WorkerDied { worker, exit } => {
            warn!(target: T, kind = "worker_died", worker = %worker, exit = %exit, "worker died; its jobs were moved by the pool")
        }
        E::WorkerReplaced { worker, replaces, after_ms } => {
            info!(target: T, kind = "worker_replaced", worker = %worker, replaces = %replaces, after_ms, "dead worker replaced by a fresh incarnation")
        }
        E::FeedResynced { why, completions } => {
            info!(target: T, kind = "feed_resynced", why = %why, completions, "completions missed by the feed delivered from the store")
        }
        E::FeedDropped { dropped } => {
            debug!(target: T, kind = "feed_dropped", dropped, "completion feed subscriber full: completions dropped")
        }
        E::TableReconciled { pool, found, dropped } => {
            warn!(target: T, kind = "table_reconciled", pool = %pool, found, dropped,
                "job map entries written or deleted behind keel's back (no change on the feed); the table follows the store")
        }
        E::FeedHole { pool, expected, rev, feed_gaps } => {
            info!(target: T, kind = "feed_hole", pool = %pool, expected, rev, feed_gaps, "job map feed skipped revisions; resyncing the table")
        }
        E::RouterGap { pool, feed_gaps } => {
            info!(target: T, kind = "router_gap", pool = %pool, feed_gaps, "job map feed reported a gap; resyncing the table")
        }
        E::TableRebuilt { pool, why, rev, entries, replaced, feed_gaps, took_us } => {
            debug!(target: T, kind = "job_table_rebuilt", pool = %pool, why = %why, rev, entries, replaced, feed_gaps, took_us,
                "job table rebuilt from a whole snapshot of the job map")
        }
        E::TableAwaited { pool, rev, waited_us, outcome, table_rev } => {
            trace!(target: T, kind = "table_awaited", pool = %pool, rev, waited_us, outcome = %outcome, table_rev, "sweep waited for the job table")
        }
        E::RouterResyncFailed { pool, took_us, retry_us, error } => {
            debug!(target: T, kind = "router_resync_failed", pool = %pool, took_us, retry_us, error = %error, "feed resync failed; retrying after a sweep interval")
        }
        E::RouterResynced { pool, took_us } => {
            debug!(target: T, kind = "router_resynced", pool = %pool, took_us, "router's table resynced from a snapshot")
        }
        E::WatchOpenFailed { pool, map, took_us, retry_us, error } => {
            debug!(target: T, kind = "watch_open_failed", pool = %pool, map = %map, took_us, retry_us, error = %error, "opening a watch failed; retrying after a sweep interval")
        }
        E::WatchOpened { pool, map, tries, took_us } => {
            trace!(target: T, kind = "watch_opened", pool = %pool, map = %map, tries, took_us, "watch opened")
        }
        E::KeepaliveResyncFailed { pool, took_us, retry_us, error } => {
            debug!(target: T, kind = "keepalive_resync_failed", pool = %pool, took_us, retry_us, error = %error, "keep-alive snapshot failed; dispatch reads the keep-alive map meanwhile")
        }
        E::KeepaliveResynced { pool, entries, took_us } => {
            debug!(target: T, kind = "keepalive_resynced", pool = %pool, entries, took_us, "keep-alive replica rebuilt from a whole snapshot of the keep-alive map")
        }
        E::KeepaliveGap { pool } => {
            debug!(target: T, kind = "keepalive_gap", pool = %pool, "keep-alive feed reported a gap; snapshotting the keep-alive map again")
        }
        E::RequeueRetry { job, worker, error, took_us, retry_min_us, retry_max_us, tries_max } => {
            debug!(target: T, kind = "requeue_retry", job = %job, worker = %worker, error = %error, took_us, retry_min_us, retry_max_us, tries_max, "requeue of a dead worker's job failed; retrying")
        }
        E::RequeueEnded { job, worker, tries, took_us, ok } => {
            debug!(target: T, kind = "requeue_ended", job = %job, worker = %worker, tries, took_us, ok, "retried requeue ended")
        }
        E::RequeueGaveUp { job, worker, tries, tries_max, error, reread } => {
            debug!(target: T, kind = "requeue_gave_up", job = %job, worker = %worker, tries, tries_max, error = %error, reread, "requeue of a dead worker's job given up; the next sweep cleans the worker again")
        }
        E::EpochChecked { pool, took_us } => {
            trace!(target: T, kind = "epoch_checked", pool = %pool, took_us, "epoch marker checked")
        }
        E::CompleteFailed { job, worker, attempt, tries, tries_max } => {
            warn!(target: T, kind = "complete_failed", job = %job, worker = %worker, attempt, tries, tries_max, "completion not confirmed after its tries; unless one landed unseen, the job stays owned and runs again")
        }
    }
}
