//! Runtime switches that re-inject historical bugs, for the checker's mutant zoo.
//!
//! With feature `mutants` off (the default) [`active`] is a constant `false` and every mutant
//! branch is compiled out. With it on, the checker selects at most one mutant per thread (madsim
//! runs a whole simulation on one thread, so parallel seeds on other threads are unaffected).

/// A historical bug, named after SPEC's mutant ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Mutant {
    /// Sequin before the fix: crash on a transient store error while held; the crash cascades
    /// through the one-for-all supervisor and takes the owner's parent down with it.
    MS1,
    /// Sequin PR v1: retry at Sequin's keep interval (0.8 ttl) while believing past the TTL, and
    /// crash (with the same cascade) after 5 consecutive store errors.
    MS2,
    /// Sequin PR final: keep believing it holds, retrying with backoff ttl·2ⁿ capped at 1 h.
    MS3,
    /// Guarded work started before renewal is armed, with slow start-up.
    MS4,
    /// Release by plain delete, whoever holds the lease.
    MS5,
    /// Demotion leaves the old renew timer alive: it silently re-acquires without the work.
    MS6,
    /// Sequin: a renewal call hangs past the TTL (the client retries inside the call and nothing
    /// cuts it at the local deadline) while the owner keeps believing.
    MS7,
    /// Sequin `acquire_or_touch`: acquire and renew are one script that re-creates a lost key for
    /// whoever calls first, with no quarantine after data loss.
    MS8,
    /// pulse `ichan`: one shared bounded(100) notification channel, sent to under the replica lock.
    MP1,
    /// pulse #62: a waiter closes its channel on exit while the apply loop may still send.
    MP2,
    /// A blocking send to a waiter that stopped receiving.
    MP3,
    /// Keep-alive bumped into the future as the cleanup lock.
    MP4,
    /// Worker tasks bound to the caller's cancellation.
    MP6,
    /// Scan only the keep-alive map for stale workers.
    MP7,
    /// No stale-pending sweeper.
    MP8,
    /// Stale cleanup-lock takeover by delete-then-set.
    MP9,
    /// Remove the worker from the maps before requeueing its jobs (pulse #61).
    MP10,
    /// No resync after a feed reconnect.
    MP11,
    /// pulse #83: a cleaner judges every worker's keep-alive by its own `worker_ttl`, so a node
    /// configured with a shorter TTL requeues the jobs of live workers that beat more slowly.
    MP12,
    /// River #400: completer bound to the caller's cancellation (its token a child of the
    /// caller's instead of detached). Only that defence is off: the completer still waits for
    /// the producers registered when the cancellation drains it.
    MR1,
    /// Subscription manager returns on cancel without draining.
    MR3,
    /// River #258/#379: the group stops every service in parallel, so the completer drains (and
    /// its stop bound runs) while its producers are still stopping. Only the stop order is off:
    /// the completer still waits for registered producers.
    MR4,
    /// The event channel closed by a detached task after a restart reassigned it.
    MR5,
    // Checker-proof mutants (issue #10, helper "typed"): each fires one rule nothing else pins.
    /// A renewal that does not compare the token (a bare `PEXPIRE`): any renewal extends whoever
    /// holds the lease.
    MC1,
    /// A fence counter that starts again from zero when the store lost its data (a bare `INCR`
    /// on a missing key): fences go backwards across a data-losing restart.
    MC2,
    /// A `set_and_wait` waiter woken one revision early (`target > rev + 1`): the call returns
    /// before the replica has applied its write.
    MC3,
    /// A stale change applied anyway (no revision compare on the feed): the replica's revision and
    /// reads go back.
    MC4,
    /// A completer intake that never has room: producers wait forever, nothing is accepted.
    MC5,
    /// A completer intake that ignores its backlog bound.
    MC6,
    /// A completer stop that gives up at once and reports its bound reached (drain skipped).
    MC7,
    /// A pending-entry sweeper that does not compare the deadline: every unacknowledged
    /// dispatch is re-dispatched at the next sweep, inside its ack grace.
    MC8,
    /// The guard's validity as a flag the owner's driver clears at step-down, as the core had it
    /// before: a holder frozen past its deadline keeps writing as holder after it resumes, until
    /// its driver's timer task runs.
    MC9,
    /// A worker's graceful stop that hands its jobs back and returns without stopping the
    /// handlers still running past the drain deadline: the pool reports itself stopped while
    /// handler tasks run on.
    MC10,
    /// A lifecycle stop that cancels the run and returns without waiting for it to exit: the
    /// caller sees "stopped" while the service is still draining.
    MC11,
    /// A map follower that forwards every feed change to its subscribers, applied or skipped as
    /// stale: subscribers see revisions go back and changes twice.
    MC12,
    /// A cancelled `set_and_wait` whose write was not yet acknowledged leaves its waiter
    /// registered (the drop guard deregisters only armed waiters): the registry leaks a waiter
    /// per such cancellation until the map stops.
    MC13,
    /// A lease client that counts a grant's validity from the reply's arrival instead of the
    /// request's send (the timing Redlock's analysis warns against): the owner believes past
    /// the store's expiry by the round trip, less the drift margin.
    MC14,
    /// A pool worker that counts its keep-alive's validity from the beat's reply instead of its
    /// send: it goes on running jobs after a cleaner may have judged it dead.
    MC15,
    /// A completer flush that counts a timed-out batch write (an unknown outcome) as written: it
    /// emits the batch's events, each "durably written", for completions the store may never
    /// hold (blind-spot hunt, 2026-12-01: nothing compared the events with the store).
    MC16,
    /// A map subscription that drops a change on a full buffer without counting it: the
    /// subscriber misses changes and is told nothing was lost (blind-spot hunt, 2026-12-01).
    MC17,
    /// A lease owner's graceful shutdown that sends its release before stopping its guarded work
    /// (and before ending its belief): the store's grant is gone while the owner still believes
    /// and its work still writes, until the work stops (blind-spot hunt, 2026-12-01).
    MC18,
    /// A map resync that repairs its replica from a snapshot without handing the differences to
    /// the subscribers: each subscriber's picture of the map silently parts from the replica
    /// (blind-spot hunt, 2026-12-01, its gap "a resync's changes not sent to subscribers").
    MC19,
    /// A service group's stop that returns at the first service's stop error, leaving the
    /// services declared after it running (blind-spot hunt, 2026-12-01, its gap 10: the caller
    /// is told the group stopped).
    MC20,
    /// A cleaner that judges a keep-alive stale at exactly its `ms + ttl` (`<=` for `<`): the
    /// cleanup fences and requeues a worker whose keep-alive is still live at the store, by one
    /// millisecond (blind-spot hunt of the pool, 2026-12-01, its gap 1).
    MC21,
    /// The live test of a keep-alive that ignores its `stopping` mark: dispatches and moves go to
    /// a draining worker, which will not start them; they wait out the ack grace or the
    /// hand-back (blind-spot hunt of the pool, 2026-12-01, its gap 9).
    MC22,
    /// A cleanup requeue that, after its guarded move failed, re-reads the job's record and
    /// moves it even when it no longer names the cleaned worker (blind-spot hunt of the pool,
    /// 2026-12-01, #3): the cleanup of a dead worker takes a job off a live one (the job was
    /// handed back or re-dispatched meanwhile) or out of the queue, and gives it the next
    /// attempt. The live owner's run is fenced by the record change, so P2 sees a hand-off.
    MC23,
    /// A worker that deletes its job's pending entry `p/{job}` unguarded before its guarded ack
    /// (blind-spot hunt of the pool, 2026-12-01, #8): a stale attempt's early delete removes the
    /// pending entry of the attempt that replaced it, so that attempt's ack grace is never
    /// enforced (an unacked job waits for its worker's death instead of a re-dispatch).
    MC24,
    /// A pool worker's graceful stop that deregisters (deletes its keep-alive and registration)
    /// when its drain begins instead of after it: the drain's first beat is refused, the worker
    /// finds itself dead and stops its runs at once; the drain is lost and the orphan scan
    /// requeues the jobs (blind-spot hunt of the pool, 2026-12-01, its #7: P1 and P2 hold, the
    /// jobs run again elsewhere; P8 sees the drain cut short).
    MC25,
    /// A completer whose stop, when its bound runs out, closes its intake and drops what is still
    /// queued without reporting it: the caller is told fewer completions were lost than were
    /// (blind-spot hunt, 2026-12-01, its gap 9; reached once the scenario's stop bound is short
    /// enough for a store outage to outlast it).
    MC26,
    /// The pool's completion feed as it was until P10 found it (2026-12-01): a reconcile from
    /// a snapshot judges "delivered already" against the newest completion seen *so far within
    /// that snapshot*, so once a newer entry (earlier in key order) raised it, an older one the
    /// node never saw (it was cut off longer than the feed's horizon) is skipped: subscribers
    /// never get it.
    MC27,
    /// The pool's completion feed as it was until P10 found it a second time (2026-12-01): after
    /// the change feed reported a gap, the changes it delivers on reconnect raise the newest
    /// completion seen before any snapshot is read, and the reconcile that follows judges the
    /// completions lost in the gap "delivered already" (pool seeds 593 and 718 of poolfeed
    /// 300..800: a node cut off from the store for 6 s; seed 1407 since poolfeed's nodes also
    /// subscribe to their own completion events). Since 2026-12-03 the router reads nothing of
    /// its feed between a gap and its resync, so only a sweep's slices can raise the floor
    /// meanwhile: too rare for the sweeps (its corpus plan went stale); pinned by the unit test
    /// `pool::feed::tests::mc28_loses_what_the_gap_lost`.
    MC28,
    /// keel's lease store until the roll-back fault found it (2026-12-01): an acquire is
    /// quarantined only when the fence counter is missing. A restart that rolled the data back
    /// (AOF `everysec`, a failover to a lagging replica) kept an older counter and lost the last
    /// grants: the next acquire is granted at once, re-minting a lost grant's fence to a second
    /// holder while the first still believes it holds the lease.
    MC29,
    /// keel's map store until the roll-back fault reached maps (2026-12-02): a revision counter
    /// is seeded from store time only when it is missing. A restart that rolled the data back
    /// kept an older counter, so the next writes took again revisions that replicas,
    /// subscribers and `set_and_wait` callers had already seen for lost changes.
    MC30,
    /// A lease owner's graceful shutdown that rotates its token at the end of the grant before
    /// sending the release (as a step-down does before it competes again): the release names a
    /// token never granted and removes nothing, so the store keeps the grant until its TTL and
    /// a graceful hand-over waits as long as a crash's (blind-spot hunt, round 4, #3).
    MC31,
    /// A lifecycle stop called while another stop of the same run waits for its exit returns
    /// at once instead of waiting too: its caller is told "stopped" while the run still drains
    /// (blind-spot hunt, round 4, #8; MC11 is the first stop not waiting).
    MC37,
    /// A guard's `lost()` that waits for the deadline it read when it was called, forgetting
    /// that a renewal may move it meanwhile: it completes while the grant is still valid, and
    /// guarded work that stops on it stops (and is restarted) under a grant it still holds
    /// (blind-spot hunt, round 4, #2).
    MC32,
    /// A pool worker whose beat is refused by a value it wrote earlier (a beat whose reply was
    /// lost: "in doubt") adopts that value and counts the refused beat as a confirmation,
    /// extending its fence from this beat's send: it goes on running for up to a keep-alive
    /// interval after the keep-alive the store holds has expired (blind-spot hunt, round 4: P7
    /// credited the beats a worker sent, the refused one included, and saw nothing; P2 1 seed
    /// of 0..50).
    MC35,
    /// The pool's group commit answering a timed-out batch (its outcome unknown: it may have
    /// applied) to each caller as refused by its guards: a worker drops the run of a current
    /// attempt as stale, or gives up a completion that may not have landed, and the job runs
    /// again; a dispatch is told `Duplicate` (blind-spot hunt, round 4: reached on 45 of pool
    /// seeds 0..50, caught by nothing; P11 judges each `stale_rejected` against the store's
    /// refusals).
    MC36,
    /// The pool's job table confirming a key unchanged by a reconcile slice without refreshing
    /// its stamp: every key unchanged since before a pass looks unseen by it and is dropped at
    /// its end as "deleted behind keel's back", then found again by the next pass, so records,
    /// pending entries and tombstones vanish from every other sweep's view (blind-spot hunt,
    /// round 4, second half, #1: reached on every pool seed, caught by nothing; the harm is a
    /// delay inside P1's and P5's slack. P13 wants no difference between the table and the
    /// store that no write behind keel's back explains).
    MC38,
    /// A pool worker's graceful stop that leaves its next beat where the regular schedule put
    /// it instead of beating at once: the keep-alive is marked `stopping` only by the next
    /// regular beat (up to a keep-alive interval later), and meanwhile dispatches and moves go to
    /// the draining worker, which hands them back (blind-spot hunt, round 4, second half, #6:
    /// reached 84 times in 18 of pool seeds 0..50, caught by nothing; P12 wants the stopping
    /// beat sent at the stop).
    MC39,
    /// The store answers a re-acquire by the holder's own token `Granted` without refreshing
    /// the grant's expiry: the owner counts its deadline from the retry's send, the store its
    /// expiry from the first apply, so the belief outlives the grant (blind-spot hunt, round 4,
    /// #4).
    MC33,
    /// A joining replica that reads its snapshot before it opens the watch: the changes the
    /// store commits between the two are never on its feed, so it misses them until a later
    /// change's revision jump forces a resync, and a quiet map stays stale (blind-spot hunt,
    /// round 4, #6).
    MC34,
    /// A full subscriber that gives up the rest of a batch at its first full slot (the
    /// differences a resync hands on together), counting one drop for all of them: its dropped
    /// counter under-reports, so a subscriber that trusts it believes it saw every change but
    /// one (blind-spot hunt, round 4, #7; MC17 counts none).
    MC42,
    /// keel's own, until 2026-12-02: `set_and_wait` judges its write applied when a snapshot's
    /// revision is at or above the write's. Since a store restart re-seeds a map's revisions
    /// from store time, above every revision it lost, a write lost in the restart (a roll-back,
    /// or a restart without the data) was answered `Ok` from the resync that followed, not
    /// `DataLost` (found by the rmap scenario's caller check made strict under data loss).
    MC43,
    /// keel's own, until 2026-12-02: a resync keeps the feed it opened across failed snapshot
    /// attempts. When the failures are a store restart that rolled the data back, the feed
    /// still holds changes of the lost history published before the crash, numbered on from
    /// the restored revision: applied after the snapshot of the restored data, they put lost
    /// writes in the replica until the feed's gap, and its revision then goes back (R2; found
    /// at rmap seed 2016 by a sweep of 3000 seeds). Re-injected as keel was then: without
    /// MC45's check either, which now also holds such changes back wherever the store reports
    /// its restarts (the reopened feed is what protects a Redis user without `INFO`).
    MC44,
    /// keel's own, until 2026-12-02: a replica that loaded a snapshot the store took after a
    /// restart, before the map's next commit, applies the next revision from its feed. A feed
    /// opened before the restart (a resync's feed, kept because the snapshot succeeded at once)
    /// still holds changes of the history a roll-back lost, numbered on from the restored
    /// revision: applied, they put lost writes in the replica until the old feed's gap (found
    /// by the rmap model with store roll-backs, which explores the window the sweeps reach
    /// about never: the restart between a resync's start and its first snapshot).
    MC45,
    /// keel's own, until 2026-12-02: a completion recognises an earlier landed try of its attempt
    /// only by the exact tombstone value it stamped. When the worker ran the attempt twice (the
    /// job delivered to it again after a completion whose outcome was unknown, which landed
    /// meanwhile), the store holds the other run's tombstone, and the worker reports its
    /// recorded completion stale: its `completed` and completer events are never published
    /// (found by P14 at poolfeed seed 57). Re-injected with each retry stamping its tombstone
    /// afresh (blind-spot hunt, round 5, #20), which opens the same window on every lost reply.
    MC46,
    /// A completer whose drain does not cut a store write at the stop's bound: a write begun
    /// during the drain runs to its own op timeout, so a stop overruns its bound by up to that
    /// (blind-spot hunt, round 5, #7: V4 bounded only a whole group's stop, with seconds of
    /// room; each run's drain is now held to its own bound).
    MC47,
    /// A completer flush whose success does not reset its retry backoff: after the run's first
    /// failed write, every later error backs off at its longest at once and the retry budget
    /// runs out early, and every later batch is reported retried (blind-spot hunt, round 5,
    /// #11; V11 judges the flag against the failures).
    MC48,
    /// A replica's load (a join or a resync) that does not publish its revision to the
    /// `set_and_wait` registry: a call whose write the snapshot already holds, acknowledged after
    /// the load, parks until the next change is applied; on a quiet map it hangs, and under
    /// steady writes it returns late, which no end-of-run check sees (blind-spot hunt, round 5,
    /// rmap #3; R8 judges each waiter at the instant it parks).
    MC49,
    /// `Guard::lost()` deaf to the owner's step-down: it completes only at the local deadline,
    /// so work that waits on the signal alone (keel's own example, `guard.lost().await`) runs on
    /// after a release, a refused renewal or a stop, until the deadline the grant had (blind-spot
    /// hunt, round 5, lease #22: the scenario's work also polled `is_lost()`, which masked it).
    MC50,
    /// A lease owner whose wait between steps (the next poll for a free lease, the next renewal,
    /// a retry's backoff) does not listen for the stop: a stop waits for the wait to end, up to
    /// a poll interval or a renewal interval, and the grant is released that much later
    /// (blind-spot hunt, round 5, lease #19: nothing judged when the owner heard its stop).
    MC51,
    /// A completer drain that gives a batch up at its first failed write: a store blip during a
    /// stop reports the batch unflushed with most of the stop's bound left, where keel retries
    /// it until the next retry could not start inside the bound (blind-spot hunt, round 5,
    /// completer #14: V3 excuses completions unflushed when the store failed during the drain).
    MC52,
    /// A lease owner whose stop, cutting an acquire whose outcome it did not learn, does not
    /// release its token: the acquire may have landed, and the grant then blocks every other
    /// node for a TTL after a graceful stop, as after a crash (blind-spot hunt, round 5, lease
    /// #3: S7 judged only the grants the owner had published).
    MC53,
    /// A sweep that re-dispatches a job whose pending deadline passed without excluding the
    /// worker that did not acknowledge it: the least-loaded pick often names that worker again,
    /// and a job assigned to an unresponsive worker goes back to it until it dies (blind-spot
    /// hunt, round 6, #9).
    MC54,
    /// A sweep that re-dispatches a job whose pending deadline passed without its guard on the
    /// pending entry it read: a worker whose ack lands between the sweep's read and the move has
    /// its running job moved to another worker, which runs it again (blind-spot hunt, round 6,
    /// #1: P2 saw the second run on 2 of 900 seeds, when both runs' completions met).
    MC55,
    /// A cleanup that takes the dead worker's jobs from the sweep's view rather than from a read
    /// after its fence: a job given to the worker between that view and the fence is never
    /// requeued, and waits for the orphan scan (blind-spot hunt, round 6, #12).
    MC56,
    /// A run that publishes its completion event once its handler completed, whether or not
    /// the store recorded the completion: a fenced run's refused completion reaches the node's
    /// subscribers as done while the job runs again elsewhere (no scenario subscribed to a
    /// node's completion events before P19).
    MC57,
    /// A lifecycle start that finds a stop under way does nothing and returns, instead of
    /// waiting for the run's exit and starting a new one: `start()` returns with the service
    /// stopping, then stopped, and producers get `NotRunning` (blind-spot hunt, round 7, #10).
    MC58,
    /// A draining completer writes a partial batch only at its next flush tick, not at once:
    /// every drain round waits up to `flush_interval`, and the stop's bound is spent waiting
    /// (blind-spot hunt, round 7, #9).
    MC59,
    /// A replicated map's retry backoff (between snapshot or watch attempts) that does not
    /// listen for the map's stop: the stop, and the node's shutdown, wait out the backoff, up to
    /// `retry_max` (blind-spot hunt, round 7, #6).
    MC60,
    /// A lease owner that steps down at its deadline without releasing the grant's token: a
    /// grant whose renewals landed while their replies were lost outlives the owner's belief,
    /// and every node, the owner too, waits out its TTL (blind-spot hunt, round 7, #2).
    MC61,
    /// A lease acquisition whose outcome is unknown (a timeout, a lost reply) taken as refused:
    /// the next one goes under a fresh token, and when the first landed nobody believes in its
    /// grant or releases it; the lease is blocked for a TTL (blind-spot hunt, round 7, #1).
    MC62,
    /// A refused lease acquisition that waits the holder's whole remaining TTL instead of at
    /// most `poll_interval`: after a release (a graceful shutdown, a hand-over), the lease
    /// stays free for up to a TTL (blind-spot hunt, round 7, #13).
    MC63,
    /// A lease renewal that does not reset the store-error count: the first failure after a
    /// streak that ended in a renewal backs off as the streak's next one, up to `retry_max`,
    /// spending the grant's deadline on waits (blind-spot hunt, round 7, #3).
    MC64,
    /// A lease renewal period counted from the reply, not the send, as a loop that sleeps a
    /// period after each call returns: every renewal slips by its round trip, and under a slow
    /// store the grant's remaining time at the store shrinks by it each period.
    MC65,
    /// A lease acquisition error retried at once, as a retry loop that `continue`s on an error:
    /// a store outage is answered by every contender retrying at network speed (a retry storm
    /// against a store that is trying to recover).
    MC66,
    /// A completer flush that reads its `retried` flag after the success reset it: no batch is
    /// ever reported retried, so the `batch_flushed` lines (and the metric behind them) hide a
    /// store that fails writes (blind-spot hunt, round 8, #11).
    MC67,
    /// A pool cleanup that takes a refused fence (the worker beat again since the sweep judged
    /// it dead) for a fenced worker and moves its jobs: a live worker's runs are stopped and run
    /// again elsewhere, and two nodes may clean each other's live workers (blind-spot hunt,
    /// round 8, #1).
    MC68,
    /// A completer whose flush tick is re-armed from the instant read before the write, not
    /// after it: after any write slower than the flush interval, partial batches go out back to
    /// back, more and smaller writes exactly when the store is slow (blind-spot hunt, round 8,
    /// #14).
    MC69,
    /// A pool worker whose graceful drain ends only at its bound, even once its last run
    /// returned: every stop of a worker, and of the node and completer waiting on it, takes the
    /// whole `shutdown_deadline` (blind-spot hunt, round 8, #5).
    MC70,
    /// keel's own, found by P20: a pool worker's registration that writes its keep-alive
    /// unconditionally. A registration retried after more than a TTL overwrites the dead marker
    /// a cleaner fenced it with, and the worker runs while that cleanup moves its jobs.
    MC71,
    /// A worker slot whose restart backoff never starts over: a worker that lived a TTL and
    /// died is replaced after the backoff of every death before it, up to `restart_max`, as if
    /// it had died at once (the reset after a long life forgotten, as MC64 forgets it for a
    /// lease's renewals).
    MC72,
    /// A worker slot that counts the restart backoff from the dead incarnation's start, not
    /// from its death: an incarnation that lived longer than its backoff is replaced at once, so
    /// every worker of a node that lost the store comes back together, at network speed.
    MC73,
    /// A replica's load that diffs keys only: a value the store changed while the replica was
    /// behind is repaired in the replica but never handed to its subscribers, whose picture keeps
    /// the stale value until a later write of the key (blind-spot hunt, round 9, #2: the end-of-run
    /// R5 missed it when later writes covered the stale keys).
    MC74,
    /// A lifecycle whose start while running spawns a second run beside the first: the
    /// service's work runs twice at once, and the first run, no longer the current one, is never
    /// stopped (blind-spot hunt, round 9, #11: V2 saw it on 65 of 300 seeds, by its effects).
    MC75,
    /// A lease release that errored or timed out reported `released`: the logs say the lease was
    /// handed back while its grant may sit in the store until its TTL runs out (blind-spot hunt,
    /// round 9, #7).
    MC76,
    /// keel's own, found by R3 on a corpus plan re-shrunk on 2026-12-03: a `set_and_wait` armed
    /// after its replica loaded a snapshot past its write calls it applied without asking the
    /// snapshot's seedings whether a store restart lost it (the caller, descheduled across a
    /// roll-back and the resync after it, is told `Ok` for a lost write; MC43 fixed only the
    /// waiters armed before the load).
    MC77,
    /// A completer's drain that calls itself done once its backlog is empty, with producers still
    /// registered: the event channel closes under a producer that may still complete, and the
    /// stop reports nobody left (blind-spot hunt, round 9, #16: V1 took the producers left from
    /// the stop's own report, which the bug gets wrong).
    MC78,
    /// A lease driver that reports its guarded work stopped (`work_stopped`) as soon as it told
    /// the work to stop, before the work ended: the caller and the logs read the grant's work as
    /// over while its tail still runs (blind-spot hunt, round 9, #8).
    MC79,
    /// A replica's load that tells a waiter whose write is exactly the snapshot's revision that
    /// the store lost it (`<` for `<=`): `set_and_wait` fails `DataLost` for a write the store
    /// holds (blind-spot hunt, round 9, #1: R3 judged `DataLost` only in runs that lost no data).
    MC80,
    /// A replica whose restart flag (its snapshot taken after a store restart, before the map's
    /// next commit) survives the next load that clears it: every later change is held back as
    /// possibly lost and resynced for, a whole-map read per change (blind-spot hunt, round 9,
    /// #3: 11 000 resyncs in 4 of 50 seeds, and no rule judged why a replica resynced).
    MC81,
    /// A lost connection (`Disconnected`) classified as a permanent store error: a network blip
    /// is logged as an operator's problem, and a run of them fails the lease (blind-spot hunt,
    /// round 10, #6: the checker trusted keel's own classification).
    MC82,
    /// A completer whose retry backoff is jittered over `[0, exp]` instead of `[exp/2, exp]`:
    /// no floor, so a failing store meets retries at network speed (blind-spot hunt, round 10,
    /// #13: no rule judged the completer's retry timing).
    MC83,
    /// A completer whose retry backoff doubles without its `retry_max` cap: after a few
    /// failures in a row a batch waits far longer than the configured most (blind-spot hunt,
    /// round 10, #15: V12 saw it only when a drain gave a batch up).
    MC84,
    /// A worker whose first beat is scheduled a worker TTL after it registered, not a keep-alive
    /// interval: its own fence deadline passes first, so every new worker stops its runs while
    /// every beat it sent was applied (blind-spot hunt, round 10, #17: no rule judged when a
    /// worker beats).
    MC85,
    /// A completer that writes a full batch only once more than `batch_size` completions are
    /// queued (`>` for `>=`): exactly a batch's worth waits for the flush tick, a flush interval
    /// of latency on every full batch (blind-spot hunt, round 10, #14: V14 judged only partial
    /// batches).
    MC86,
    /// A completer that keeps registering producers after its drain began: the drain waits for
    /// producers who came after the stop and may be cut at its bound with their completions
    /// queued (blind-spot hunt, round 11, #18: no rule judged when a producer registers).
    MC87,
    /// A producer that leaves without waking the completer's run: a drain whose backlog is empty
    /// waits for its next flush tick (or its bound) instead of ending when its last producer
    /// left (blind-spot hunt, round 11, #17: no rule judged when a drain ends).
    MC88,
    /// A node's load index that keeps its per-worker counts when a sweep's snapshot replaces
    /// it: every count grows with each sweep, so least-loaded picks drift to whichever worker
    /// the stale counts favour (blind-spot hunt, round 11, #13: the index's own check was a
    /// `debug_assert`, compiled out of the simulator's release build).
    MC89,
    /// A replicated map whose watch backoff starts at nothing (and so stays there): a store
    /// that refuses feeds is asked again at network speed, forever (blind-spot hunt, round 11,
    /// #2: no rule judged when a map retries).
    MC90,
    /// A replicated map whose retry backoff doubles past `retry_max`: after a few failures in a
    /// row the map waits far longer than configured to reopen its feed or take its snapshot,
    /// its replica stale meanwhile (blind-spot hunt, round 11, #1; round 9, #4).
    MC91,
    /// A replicated map whose stop does not close its subscriptions: a consumer's `recv` waits
    /// for a change that can no longer come, and a service that stops its map and then awaits
    /// its consumers hangs (blind-spot hunt, round 11, #4).
    MC92,
    /// A subscription manager whose drain bound runs from its run's start, not from the stop
    /// request: stopped after running longer than the bound, it gives up on the completer's
    /// events at once and drops what the completer still flushes (blind-spot hunt, round 11,
    /// #5: V4 bounded the drain from above only).
    MC93,
    /// A worker whose registration retries double without their cap (the keep-alive
    /// interval): after a few failures in a row a new worker waits far longer than configured
    /// to join, its slot idle (blind-spot hunt, round 11, #11: no rule judged registration
    /// retries).
    MC94,
    /// A worker that retries a failed registration at once, its backoff ignored: a store
    /// outage is met by every starting worker retrying at network speed (blind-spot hunt, round
    /// 11, #20).
    MC95,
    /// A lease owner that does not extend its guards' deadline at a renewal: the guarded work
    /// reads its guard lost at the first grant's deadline while the owner goes on renewing,
    /// and is restarted against the same stale guard again and again (blind-spot hunt, round
    /// 12, #1: nothing judged a guard lost under a live grant).
    MC96,
    /// A worker that retries a failed completion at once, its backoff skipped: a store outage
    /// is met by every finished run retrying at network speed (blind-spot hunt, round 12, #17:
    /// no rule judged completion retries).
    MC97,
    /// A store whose batched transactions (`map_txns`) publish only the last transaction's
    /// changes on the map's feed, the others committed but never sent: the mechanism of a
    /// script that overwrites, not appends, the notifications it gathers per transaction.
    /// Every pool node's job table falls behind the store at each batch with a hole, and the
    /// sweeps mend what it missed a period later, so no job rule sees it (P25's proof).
    MC98,
    /// A completion feed that takes a change from the job map's feed as news whatever its age:
    /// a change buffered across a break comes after the gap's whole snapshot, which delivered
    /// the completion and then forgot it below the horizon, so it is delivered twice (keel's
    /// own, found 2026-12-03 by P10 on poolfeed seed 106 once the router stopped reading its
    /// feed while its table was out of sync).
    MC99,
    /// A cleanup that takes a worker with no keep-alive as fenced and moves its jobs: a worker
    /// cleaned once (or never registered) whose registration lands meanwhile is live, and the
    /// jobs dispatched to it are moved off it as it runs them (keel's own, found 2026-12-03 by
    /// P20 on poolfeed seed 1463: one cleaner's view predated another's cleanup of the worker,
    /// and the worker registered again between the two).
    MC100,
    /// A store whose renewal matches the token and not the grant's expiry: an expired grant is
    /// renewed back to life. Its owner stopped believing in it at its own deadline, so the lease
    /// is held for a TTL by nobody, and the owner's next acquisition finds itself the holder
    /// (blind-spot hunt, round 13, #1: the linearizability check uses the same store code as its
    /// specification, and no rule read the grant before the renewal).
    MC101,
    /// A draining worker's hand-back whose pick does not exclude the worker itself: its jobs
    /// can be handed back to it, and wait through its drain for a cleanup (blind-spot hunt, round
    /// 13, #15: the stopping mark on its keep-alive usually hides it, unless the stopping beat
    /// failed).
    MC102,
    /// A replica whose load never takes its revision back: after a store roll-back its reads
    /// report a revision the store no longer holds until the next commit (blind-spot hunt, round
    /// 13, #10: the re-seeded revisions above it hide it from every write).
    MC103,
    /// The same for the waiters' applied revision (blind-spot hunt, round 13, #9).
    MC104,
    /// A lease owner that believes in a fresh grant for its whole TTL from the send, the drift
    /// margin left out: a clock running slow keeps the belief past the store's grant (blind-spot
    /// hunt, round 13, #4: S6 saw it in 2 of 250 seeds, when a clock's drift made it matter).
    MC105,
    /// A run's exit that does not wake the lifecycle's `started()`/`stopped()` waiters: a
    /// `stopped()` stays parked until the next start (blind-spot hunt, round 13, #19: no
    /// scenario awaited them).
    MC106,
    /// A group whose failed start stops the services declared before the failed one (never
    /// started) instead of those after it (started first): the completer and the subscription
    /// manager a failed producer start left behind keep running (blind-spot hunt, round 13,
    /// #18: no service start failed in the simulator).
    MC107,
    /// A group that starts its services in declared order, producers before the completer they
    /// feed (blind-spot hunt, round 13, #17: seen only as the scenario's setup error).
    MC108,
    /// A replicated map whose anti-entropy timer starts over at every feed event, not at each
    /// load: a map written more often than its period never resyncs by itself (blind-spot hunt,
    /// round 13, #8: no scenario set `anti_entropy`).
    MC109,
    /// A group stop that keeps the last service's result, not the first error: an error of the
    /// completer's stop (completions it could not flush) is lost behind the subscription
    /// manager's `Ok` (blind-spot hunt, round 14, #15).
    MC110,
    /// A lease owner whose store-error count is never reset by a success: after its first
    /// error, every success reports a recovery (blind-spot hunt, round 14, #14: caught by a unit
    /// test, by no rule of the simulator).
    MC111,
    /// A dispatch whose pending entry's ack deadline is counted with the worker TTL, not the ack
    /// grace: a dispatch that never reaches its worker waits out a TTL before it is re-dispatched
    /// (blind-spot hunt, round 14, #10: P5 judged only re-dispatches that came too early).
    MC112,
    /// A pool router whose failed resync of its table is retried at once, not a sweep interval
    /// later: a store that fails snapshots is asked for the whole job map at network speed
    /// (blind-spot hunt, round 14, #19).
    MC113,
    /// A pool node that never writes the epoch marker: it adopts a missing one, so a store that
    /// loses the pool's data leaves the marker as every node holds it, missing, and no node
    /// reports the loss (blind-spot hunt, round 14, #25).
    MC114,
    /// A completer intake whose close does not wake the producers waiting for room: one parked
    /// on a full backlog when the stop's bound runs out, with no write left to make room, waits
    /// forever instead of returning `Closed` (blind-spot hunt, round 14, #4; round 12 #16 and
    /// round 13 #16: no producer was blocked on a full backlog when a stop's bound ran out).
    MC115,
    /// A cleaner whose failed requeue of a dead worker's job is retried at once, its backoff
    /// skipped: a failing store is asked again at network speed until the retries run out, and
    /// the cleanup gives up within milliseconds where its backoff would have outlasted the fault
    /// (blind-spot hunt, round 11, #12: no rule judged the requeue's retries).
    MC116,
    /// A pool router whose failed resync of its table waits the cleanup backoff's floor, not its
    /// sweep interval, and announces that wait: its retries are on time by what it says
    /// (blind-spot hunt, round 15, #1: P29 judged the wait the failure announced, not the one
    /// configured).
    MC117,
    /// A cleaner whose requeue makes one try more than `cleanup_retries` (blind-spot hunt, round
    /// 15, #8: P31 judged the retries' timing, not their number).
    MC118,
    /// A lease owner whose successful acquisition (granted, refused by a live holder, or
    /// quarantined) does not end its run of store errors: no `store_recovered` at the success, and
    /// the run goes on until a renewal or a time read succeeds (blind-spot hunt, round 15, #19: E2
    /// judged the recoveries that come, not the successes that should carry one).
    MC119,
    /// An rmap anti-entropy resync reported with reason `gap`: operators' gap counts rise on a
    /// healthy feed (blind-spot hunt, round 15, #16: R12 judged that the read happens, not what
    /// it is called).
    MC120,
    /// A move (re-dispatch, requeue, assignment, hand-back) that deletes the job's pending entry
    /// instead of writing its new owner's, yet reports it written: nothing holds the new owner
    /// to its ack grace (blind-spot hunt, round 15, #7: a redundant defence as run, judged
    /// nowhere).
    MC121,
    /// A dispatch that says its pending entry is written before its transaction: a refused
    /// dispatch (a duplicate) reports an entry the store never applied (blind-spot hunt, round
    /// 15, #22: nothing paired `pending_written` with what the store applied).
    MC122,
    /// A pool router whose wait between resync tries does not watch the node's stop: a router
    /// whose read failed keeps reading the whole job map after the stop was asked, and the stop
    /// waits until one succeeds (blind-spot hunt, round 15, #5: no rule judged what a stopping
    /// router may begin).
    MC123,
    /// A pool router that, on a hole in its feed, tries one resync and goes back to its feed
    /// whatever came of it, saying nothing (round 12's router, on the hole path): a failed try
    /// leaves the table out of sync until the next change (blind-spot hunt, round 15, #26: no
    /// rule judged when a hole's read begins).
    MC124,
    /// A lease owner's store-error log that never resets its count since the last summary: every
    /// warn line after the first counts from the first error of the run (blind-spot hunt, round
    /// 15, #17: only a unit test judged the counts).
    MC125,
    /// A lease owner's store-error log that never records when it last warned: a warn line per
    /// error, the rate limit gone (blind-spot hunt, round 15, #18: only a unit test judged it).
    MC126,
    /// A lease holder whose renewal the store refused (the token holds no grant: taken or
    /// expired) steps down saying its deadline ran out: operators look at the network when
    /// another process holds the key (blind-spot hunt, round 16, part A #12: `lost`'s reason was
    /// judged nowhere).
    MC127,
    /// A replica load that keeps its old seedings of the map's revisions instead of the
    /// snapshot's (a missed field): later revision jumps are judged against the seedings of a
    /// store history the load replaced (blind-spot hunt, round 16, part A #8: the convergence check
    /// compared entries and revision only).
    MC128,
    /// A dead worker's replacement that keeps the dead incarnation's id: the fenced id runs
    /// again, takes the records still naming it, and its events and the dead one's cannot be
    /// told apart (blind-spot hunt, round 16, part B #18: "the dead id is fenced for good" was judged
    /// nowhere).
    MC129,
    /// The store's refused conditional write whose outcome leaves out the value that refused it
    /// (a missed field): a caller that adopts the current value from a refusal (a keep-alive
    /// beat in doubt, a compare-and-set loop) reads "absent" (blind-spot hunt, round 16, part A #3:
    /// the linearizability check takes the store's own code as its specification, so it agreed).
    MC130,
    /// A lease guard whose validity is counted from the grant's publication plus the TTL, not
    /// the owner's deadline (the send plus the TTL less the drift margin): guarded work keeps
    /// writing past the owner's belief, on a grant the store may have expired (blind-spot hunt,
    /// round 16, part A #14: only a freeze across the deadline, S9's window, could show it).
    MC131,
    /// A lease renewal whose reply is handled at or past the local deadline (the owner froze
    /// with it in flight) extends the belief as one answered in time: the guard already read
    /// the grant lost and the work stopped, and the owner goes on renewing, on a grant another
    /// node may hold (keel's own, found by S16 at lease seed 3260 with a clock beyond its bound).
    MC132,
    /// A worker's completion that makes one try fewer than `cleanup_retries` before it gives up
    /// (`complete_failed`): a store fault one try longer than a completion's tries leaves the job
    /// to run again (blind-spot hunt, round 16, part B #3: P26 judged when each retry starts, not how
    /// many tries there were).
    MC133,
    /// A worker's completion that makes one try more than `cleanup_retries`: it holds the job
    /// past its configured tries (the twin of MC133, as MC118 is for the cleaner's requeues).
    MC134,
    /// A cleanup that finds the worker alive on its fresh re-read ends without releasing its
    /// cleanup lock: the lock stays until it expires, and no cleaner may clean the worker
    /// meanwhile if it dies (blind-spot hunt, round 16, part B #17: nothing judged that a cleanup
    /// releases the lock it took).
    MC135,
    /// A completer stop that reads the run's stop report before waiting for the run to exit: it
    /// returns the previous run's report (or none: `Ok`) while the run it stopped reports
    /// completions unflushed, events undelivered or producers left (blind-spot hunt, round 16,
    /// part B #14: V1/V3 judge the run's own report, V9 only a stop that failed).
    MC136,
    /// A worker that adopts an in-doubt keep-alive (an earlier beat whose reply was lost did
    /// land) without storing it as the value it last wrote: its next beat compares against the
    /// value before it, is refused, and the worker declares itself dead needlessly (a
    /// replacement, a cleanup and a requeue follow) (blind-spot hunt, round 16, part B #7: no rule asked
    /// why a worker declared itself dead).
    MC137,
    /// A completer stop that returns the report of whichever run ended last, not of the run it
    /// stopped (one shared report slot, as keel had it): a stop still waking from its run's exit
    /// while a restart runs and stops again returns the later run's report, `Ok` for a run that
    /// lost completions (found by V21 unmutated, the start/stop stress; blind-spot hunt, round
    /// 16, #14's rule).
    MC138,
    /// A worker that stops its run of a job only when the job's record is gone, not when the
    /// record moved on to a newer attempt on another worker: the stale handler runs on beside the
    /// new attempt's until it returns, its completion then refused (blind-spot hunt, round 16,
    /// part B #1: only a unit test caught it; P2 sees the overlap only past its hand-off
    /// allowance).
    MC139,
    /// A store whose snapshots never say it restarted since the map's last commit: a replica
    /// that loads one after a roll-back applies the changes a feed opened before the restart
    /// still carries, of the history the roll-back lost (blind-spot hunt, round 16, A #18: only
    /// the exhaustive rmap model caught it).
    MC140,
    /// A store whose watch of a map replaces the map's feed: every older watch of the map goes
    /// silent, with no gap (blind-spot hunt, round 16, A #5: R2 saw it on rmap at convergence, the
    /// pool's sweeps repaired it within every rule's slack).
    MC141,
    /// A lease holder whose wait between steps is not cut at its deadline: after a failed
    /// renewal whose backoff ends past the deadline, it still says `held`, then steps down and
    /// releases up to `retry_max` late (blind-spot hunt, round 17, A #16: inside the drift margin
    /// S6 allows; only a machine unit test caught it).
    MC142,
    /// A run asked to stop while its acknowledgement was in flight (its record moved on) starts
    /// its handler anyway: a stale handler beside the new attempt's (blind-spot hunt, round 17,
    /// B #11: no rule saw a run start after its stop was asked).
    MC143,
    /// A group commit whose call slot is released when its flush is spawned, not when it ends:
    /// `FLUSHES_IN_FLIGHT_MAX` no longer bounds the `map_txns` calls in flight on a node
    /// (blind-spot hunt, round 17, B #25: nothing counted them).
    MC144,
    /// `inspect` reports a pending dispatch's time left to its ack deadline as its time past it:
    /// an operator sees overdue entries as fresh (blind-spot hunt, round 17, B #14: the pool
    /// scenario's auditor took the report's figure as its measure of P5, so the bug blinded it).
    MC145,
    /// A failed group start that stops the services it started in start order, not stop order:
    /// the subscription manager before the completer that feeds it, the completer before the
    /// producers it waits for (blind-spot hunt, round 17, B #20: V19 judged only that none still
    /// ran at the return).
    MC146,
    /// A cleanup lock written to expire a worker TTL after its view, not `cleanup_lock_ttl`, while
    /// the cleaner's write budget still counts from the lock TTL: a slow cleanup writes on after
    /// its lock expired (blind-spot hunt, round 17, B #6: no rule read the lock's lifetime).
    MC147,
    /// A `set_and_wait` that fails `DataLost` naming its own write's revision, not the revision
    /// its replica reached in the resync that showed the loss: an operator reads a revision the
    /// store no longer has, or one the revisions were seeded past (blind-spot hunt, round 17,
    /// A #10: no rule read the revision of a `DataLost`).
    MC148,
    /// A guarded work's restart backoff that never grows: every restart of a grant waits the
    /// policy's `min`, so a work that fails at once restarts at a steady clip beside a store it may
    /// be hammering (the lease scenario's work never ended by itself: no rule saw the restart
    /// policy, S20).
    MC149,
    /// `LeaseHandle::state()` and `held()` read the owner's published state without judging its
    /// grant: from the step-down's start until the work stopped, the handle says `Held` (keel's own
    /// bug of round 17, found by S6 on the owner's events; no run read the handle, S21).
    MC150,
    /// `ReplicatedMap::joined()` that counts the join from zero (`>=` for `>`): it returns at once,
    /// before the map loaded anything, and the application reads an empty map as the truth (no
    /// run awaited `joined()`: R14).
    MC151,
    /// A drained worker's deregistration that deletes its keep-alive without comparing it with its
    /// last beat: a cleaner's dead marker written meanwhile goes with it, mid-cleanup (blind-spot
    /// hunt, round 18, B #4: no rule read how a keep-alive was deleted).
    MC152,
    /// A worker machine that takes job records while draining: its drain starts new runs it then
    /// cuts at its bound or hands back (blind-spot hunt, round 18, B #15: no rule judged the gate).
    MC153,
    /// A lease owner that steps down at its deadline and sits a whole TTL out before it competes
    /// again: a lease left free by a crashed holder waits a TTL longer for a new one (blind-spot
    /// hunt, round 18, A #25: S12's chains ended at a step-down, so the first attempt after it was
    /// never judged).
    MC154,
    /// A lease release that waits a TTL for its reply, not the op timeout: one lost reply holds a
    /// graceful stop, and the competing again after a step-down, for up to a TTL (blind-spot hunt,
    /// round 18, A #27: `release_ended` carried no duration, and no rule bounded a call).
    MC155,
    /// A lease owner refused by a quarantine that waits a whole poll before trying again, whatever
    /// the quarantine's time left: the lease sits free for up to a poll after the quarantine ends
    /// (blind-spot hunt, round 18, A #1: S12 allowed a poll after every refusal).
    MC156,
    /// A store that refuses an acquisition by the token that holds the live grant: a retried
    /// acquisition whose first reply was lost blocks the lease for a whole TTL (blind-spot hunt,
    /// round 18, A #3: lease operations are not in the linearizability history, and the store's
    /// state machine is its own specification).
    MC157,
    /// A store whose refusal reports the request's TTL as the grant's time left: contenders wait
    /// past the grant's end (blind-spot hunt, round 18, A #24: S12 judges by what the store said).
    MC158,
    /// The pool's list of known workers without those known only by a cleanup lock: a lock left by
    /// a failed release or a crashed cleaner is never cleaned, and `inspect` (which shares the
    /// list) does not show it (blind-spot hunt, round 18, B #23: the audit read `inspect`'s list).
    MC159,
    /// A run's completion event that carries the job's raw record (`attempt|owner|payload`) as its
    /// payload, not the payload it was dispatched with (blind-spot hunt, round 18, B #32: P19
    /// compared the events' job and attempt only).
    MC160,
    /// A lease holder that skips a renewal falling due within a quarter TTL of its deadline,
    /// waiting for the deadline instead: the grant lapses where a retry would have kept it
    /// (blind-spot hunt, round 18, A #39: S12's chain ended at the step-down unjudged).
    MC161,
    /// A worker that matches a run's end to its task by the job alone, not the run's number: when
    /// a replaced older run of a job ends, the newer run's task is forgotten, and the worker's
    /// fence, death or drain's end no longer stops it (blind-spot hunt, round 18, B #1: the run
    /// completed 0.4–0.5 s after its worker was fenced, seen by nothing).
    MC162,
    /// A lifecycle stop that finds its run's token already cancelled (its parent's shutdown got
    /// there first) and returns at once, taking the run for gone while it still drains
    /// (blind-spot hunt, round 18, A #21: V5 judged only the completer stress's own stops).
    MC163,
    /// A lease owner's stop that clears its grant without stepping down: its handle reads the
    /// published `Held` while a slow work stops and no renewal runs, past the grant's expiry at
    /// the store (keel's own until 2026-12-04, found by S1 and S6 once the lease scenario's n3
    /// finished its batch deaf to its stop).
    MC164,
    /// A lease owner's stop, heard between a step-down's end and the releases it queued, that
    /// drops them: the stepped-down grant's token is never released and the store keeps the grant
    /// for its TTL (keel's own until 2026-12-04, found by S7 at lease seed 2225; the blind-spot
    /// hunt's round 18 A #2, a stop during a step-down, was never reached before).
    MC165,
    /// A lease owner that reports its work stopped only when the work heeded the stop, not when
    /// it was aborted at `work_stop_timeout`: the owner goes on to `lost` or `released` with
    /// nothing said of the work it killed (blind-spot hunt, round 18, A #5).
    MC166,
    /// `inspect` reporting each worker's keep-alive age the wrong way round (the keep-alive's
    /// store time less the report's, 0 for every keep-alive written in the past): an operator sees
    /// every worker fresh, a dead one too (blind-spot hunt, round 18, B #26: P38 judged only the
    /// overdue figures, and the audit took its stale workers from the report under test).
    MC167,
    /// A completer run whose idle wait during a drain does not wake at the stop's bound, only at
    /// its next flush tick: the drain closes up to a flush interval past its bound (blind-spot
    /// hunt, round 18, A #13: V4 allowed a completer drain 100 ms of slack).
    MC168,
    /// A completer intake that wakes its run for a completion only while the run is open, not
    /// during its drain: a completion a producer hands in while the drain waits for it is written
    /// only at the next flush tick (blind-spot hunt, round 18, A #34: V13 judged only what was
    /// queued when the drain began).
    MC169,
    /// A subscription manager's close that sums its subscribers' drops over the map it just
    /// emptied: `subscriptions_closed` reports 0 dropped however many events full buffers lost
    /// (blind-spot hunt, round 18, A #29: no rule read the count).
    MC170,
    /// A replicated map whose `syncs()` counts its join only, not its resyncs: the count stops
    /// rising, and a caller waiting on it to see a repair waits forever (blind-spot hunt, round
    /// 18, A #10: nothing read it).
    MC171,
    /// A completer that, as a group's service, maps a stop error naming only producers left
    /// behind at the bound to `Ok`: the group's stop says all went well while the completer's own
    /// report says producers were cut off (blind-spot hunt, round 18, A #36: V9 read only the
    /// group's `stop_failed`).
    MC172,
    /// A completer that stores a completion as `kind␟attempt␟payload`, not the documented
    /// `attempt␟kind␟payload`: every reader of the completions map misreads it (blind-spot hunt,
    /// round 18, A #17: V8 compared the store with keel's own encoder, so it agreed).
    MC173,
    /// A sweep that deletes the completer-map entries of jobs without a record at the next
    /// slice, whatever the age of their tombstones: the payloads of jobs completed a moment ago
    /// are gone for every late reader (blind-spot hunt, round 18, B #35).
    MC174,
    /// A lease owner whose first acquisition waits a poll interval after its read of the store's
    /// time instead of going at once: every start (and restart) of a service sits a poll out with
    /// the lease free (blind-spot hunt, round 18, A #31: S12 had no event for the read's success).
    MC175,
    /// A pool worker's stops that wait `op_timeout` for each run before aborting it, not the
    /// `shutdown_deadline`: handlers that need their graceful window are cut (blind-spot hunt,
    /// round 19, #43: P43 accepted any abort).
    MC176,
    /// A lease owner that aborts its guarded work `op_timeout` after telling it to stop, not
    /// `work_stop_timeout`: a work that needs its graceful window to finish a batch or flush is
    /// cut (blind-spot hunt, round 19, #41: S15 and S23 judge that the end is reported, not when
    /// the abort may come).
    MC177,
    /// A lease owner whose stop ends the grant for its guards and its handle only once the work
    /// has stopped: while a slow work stops, `state()` reads `Held` of a grant its owner no
    /// longer renews (blind-spot hunt, round 19, #44: the scenario's application stopped reading
    /// its handle at the node's stop, so S21 never judged the window).
    MC178,
    /// A lifecycle whose run's exit is not published on its status watch: `subscribe()` readers
    /// see `Running` or `Stopping` forever while `status()` says `Stopped` (blind-spot hunt,
    /// round 19, #38: no scenario read the watch).
    MC179,
    /// A pool run asked to stop while its ack was in flight returns without reporting its end:
    /// the worker tracks a dead run, turns its attempt's redeliveries away and holds its drain
    /// to the bound (blind-spot hunt, round 19, #11: no event showed the worker's tracking).
    MC180,
    /// A pool worker's stop that gives each run its own bound from its turn in the wait, not one
    /// deadline for all: with several handlers deaf to their stop, aborts come a bound apart,
    /// seconds past the stop's deadline, while the cleaner requeues their jobs (blind-spot hunt,
    /// round 19, #1: P43 judged no abort early, none late).
    MC181,
    /// A pending dispatch taken as expired at its deadline's own millisecond: the ack grace is
    /// one millisecond short, and an ack landing in it races a re-dispatch (blind-spot hunt,
    /// round 18, B #8: P5 judged the grace with the deadline itself allowed).
    MC182,
    /// A `set_and_wait` that returns the revision its replica reached, not its write's: a caller
    /// matching the returned revision to a subscription's changes never finds its write
    /// (blind-spot hunt, round 20, #5: R3 judged only that the replica had reached the write).
    MC183,
    /// A resync that reports the revision its replica left read after the load (the new one):
    /// every `resynced` says the replica did not move (blind-spot hunt, round 20, #7: only a
    /// coverage goal noticed).
    MC184,
    /// A replicated map whose writes time out at its retry floor (`retry_min`), not its op
    /// timeout: under any latency writes fail that would have landed (blind-spot hunt, round 20,
    /// #56: no rule judged when a write's timeout fires).
    MC185,
    /// A replicated map whose `subscribers()` counts subscriptions whose receiver was dropped:
    /// an operator's gauge of live subscribers only grows (blind-spot hunt, round 20, #6: no
    /// scenario dropped a subscription and read the count).
    MC186,
    /// A lease whose quarantine answer does not end its row of errors: a `Failed` published
    /// before the store's restart stays published while the store answers (blind-spot hunt,
    /// round 20, #44: no scenario had permanent errors, no rule judged when `Failed` is left).
    MC187,
    /// A lease owner that leaves a `Failed` published during its start's time read in place: the
    /// time read's success ends the row before the phase is `Awaiting`, where leaving `Failed`
    /// is published (blind-spot hunt, round 20, #47).
    MC188,
    /// A lease whose transient errors do not break the row of permanent ones: a denial, a
    /// timeout and two more denials publish `Failed` as three in a row.
    MC189,
    /// A lease that publishes `Failed` while it holds the grant and renews through the errors:
    /// the service reads a failure while its guarded work runs.
    MC190,
    /// A lease that publishes `Failed` one permanent error late (`permanent_attempts + 1`).
    MC191,
    /// A pool start that retries every store error until its start timeout, permanent ones too:
    /// a node denied by the store's ACL spends its whole timeout before it says so.
    MC192,
    /// A watch's `wait_for` that looks at the close before the value: the last value sent just
    /// before the sender dropped is missed, so a worker handle's `join`/`stop` says `Panicked` for
    /// a worker that stopped (blind-spot hunt, round 21, #41: no scenario read the handle's exit).
    MC193,
    /// Dispatch's store-time estimate aged from its read's send, not its reply: every decision
    /// is stamped ahead of the store by the read's latency, pending deadlines included
    /// (blind-spot hunt, round 21, #3: P28 judged the estimate only against itself).
    MC194,
    /// A lease handle's `state()` that reads every grant ended before the owner published it as
    /// `Lost { Deadline }`, whatever the step-down's reason: an application told its lease
    /// expired when it was taken, or when its own work ended (blind-spot hunt, round 21, #19:
    /// the scenario recorded only whether the handle read held).
    MC195,
    /// A producer's `complete` that reports its completion `accepted` before it looks at the
    /// push's result: a closed run's refusal is logged and counted as an acceptance
    /// (blind-spot hunt, round 21, #40: no rule read `accepted` against the run's close).
    MC196,
    /// A failed group start that stops the services it started all at once, not one after the
    /// other in stop order: a completer drains while the producers that feed it still run
    /// (blind-spot hunt, round 21, #38: V19 judged the order of the exits only).
    MC197,
    /// The pool's change-feed watches (the router's on the job map, the follower's on the
    /// keep-alive map) opened without the op timeout: a watch request stuck behind a slow link
    /// holds the task until the store's own client gives up, or for good (found by E6 on
    /// unmutated keel when the simulated client stopped cutting calls at the op timeout).
    MC198,
    /// A worker whose fence fires during a beat stops its runs without polling the beat: the
    /// beat's calls wait out the stop's grace unpolled, past their op timeout, and the worker
    /// judges a reply seconds old (found by E6 on unmutated keel, as MC198).
    MC199,
    /// A completer write attempt outside a drain not cut at the op timeout: it waits as long as
    /// the store's client does (E6: the harness's client cuts only at four op timeouts).
    MC200,
    /// `ReplicatedMap::joined()` returning the replica's revision read when the call began (0
    /// before the join), not the one the join reached: an application that waits for its
    /// writes to show from that revision on waits from too early (blind-spot hunt, round 22,
    /// #45: R14 judged the join's timing and key count, not the revision returned).
    MC201,
    /// A worker's registration written before its first keep-alive (two awaits in the wrong
    /// order): for a round trip, or a retry's backoff when the keep-alive write then fails, the
    /// store holds a registered worker with no keep-alive, which a sweep takes for dead
    /// (blind-spot hunt, round 22, #27: no rule judged the two maps as a pair).
    MC202,
    /// A lease holder whose driver wakes past its deadline with a work restart due restarts the
    /// work and publishes `Held` again before it steps down: the application is handed a grant
    /// whose guard is already lost (blind-spot hunt, round 22, #9: nothing judged an act against
    /// the owner's own deadline).
    MC204,
    /// A replicated map's stop that marks its waiters' registry closed without completing the
    /// waiters registered: a `set_and_wait` in flight at the stop never returns (docs: it
    /// fails `Closed`), and `stopped` reports no waiter closed (blind-spot hunt, round 22, #48:
    /// R3 stopped judging a call at its node's stop).
    MC205,
    /// A worker's loop that hands its machine a delivered record before it takes in the run
    /// ends already queued: a repeated delivery of an attempt whose run just ended (its ack
    /// failed, and a sweep delivers the record again) is taken for the run still tracked and
    /// ignored, and the job waits for a re-dispatch (blind-spot hunt, round 22, #25).
    MC207,
    /// A completer write that makes room in the backlog and wakes only one of the producers
    /// waiting for it (`notify_one` for `notify_waiters`): the others wait for the next write
    /// although there is room for them (blind-spot hunt, round 8, #12 and round 22, #50: V20
    /// judged only that a close ends every wait, not that room does).
    MC208,
    /// A lease grant whose reply is handled after the belief it grants would end (the owner
    /// frozen with its acquire in flight) taken as held: `Held` published and the work started
    /// with a guard already lost, then a step-down at the next turn (found by S25 on unmutated
    /// lease seed 4963 of 0..6000, a 1.7 s pause; the renewal's twin is MC132).
    MC209,
    /// A sweep that reads the completer map's slice after the job map's (in its second batch of
    /// reads, as it did): an entry written since the job slice's revision is judged against a
    /// table that has not seen its job's tombstone yet, and deleted within moments of its job's
    /// completion (found by P44 on unmutated poolfeed seed 1340 of 500..1500: 173 ms after).
    MC210,
    /// A lease renewal that extends the belief by one renewal period from the old deadline
    /// instead of counting it from its own send: after one late renewal (a retry, a slow turn)
    /// the owner believes less than the store grants, for good, and steps down while the store
    /// still holds its grant (blind-spot hunt, round 23, B #21: S17 bounded the belief only from
    /// above).
    MC211,
    /// The lease's default drift margin a hundredth of the TTL, not a tenth: under the drift the
    /// default is documented to cover, a holder cut off from the store believes past the
    /// store's grant (blind-spot hunt, round 23, B #4: the scenario read its drift bound from
    /// the config under test, so its plans shrank their drift with the margin).
    MC212,
    /// A lease's guarded work given a shutdown token of its own instead of a child of the
    /// owner's: a node's graceful stop reaches the work only when the owner steps down, after a
    /// renewal in flight ends, and the work writes on meanwhile (blind-spot hunt, round 23, B
    /// #2: S10 lets the owner finish the renewal, and nothing judged the work).
    MC213,
    /// A shutdown token whose cancel wakes one of the tasks waiting on it (`notify_one` for
    /// `notify_waiters`): the others sleep on a cancelled token until something else wakes them
    /// (blind-spot hunt, round 23, B #17: the map's R9 and the completer's rules saw it, the
    /// lease scenario did not).
    MC214,
    /// The lease's default poll period the TTL, not the renewal period (ttl/3): consistent with
    /// itself, so every wait keeps the timing the owner announces, but a released or expired
    /// lease waits up to a TTL for its next holder (blind-spot hunt, round 23, B #30).
    MC215,
    /// A completer that takes its batches from the tail of its queue (newest first): a
    /// producer's later completions are written and announced before its earlier ones
    /// (blind-spot hunt, round 23, B #27: nothing judged the order of a subscriber's events).
    MC216,
    /// `SubscriptionManager::with_buffer` ignored: every subscriber gets the default buffer
    /// (1024), whatever the service asked for (blind-spot hunt, round 23, B #11: only a coverage
    /// goal noticed, by never seeing a buffer overflow).
    MC217,
    /// A cleanup whose write budget is counted from its own start, not from when its sweep
    /// began reading the view its lock is timed from: a cleanup reached late in a slow sweep
    /// fences, requeues and deletes past the expiry of its own lock, where another cleaner may
    /// already be doing the same (blind-spot hunt, round 23, A #13: nothing judged when a
    /// cleanup writes against its lock).
    MC218,
    /// A replicated map's subscriber buffer silently clamped to 32 changes, whatever
    /// `subscriber_buffer` asked: a subscriber drops with room its service configured
    /// (blind-spot hunt, round 23, B #10: nothing compared the buffer with the config).
    MC219,
    /// A lease handle that judges a published `Held` by whether the owner's driver has ended the
    /// grant, not by the local clock: read in the instant its node resumes from a freeze, before
    /// the driver's turn, it says `Held` for a grant whose deadline passed while frozen
    /// (blind-spot hunt, round 23, B #1).
    MC220,
    /// A job table rebuilt from a snapshot that wakes no sweep waiting for it: the sweep sleeps
    /// to its op timeout, then reads a whole snapshot of its own (blind-spot hunt, round 23,
    /// A #10: caught only once in 300 seeds, through a view whose halves ended up an op timeout
    /// apart).
    MC221,
    /// A service lifecycle whose run ends by itself and leaves the machine `Running`: the next
    /// start (or stop) finds the exit already reported and waits for it in a loop that never
    /// yields, so simulated time stops (blind-spot hunt, round 24, B #18: the whole `check`
    /// hung). Caught by the run watchdog, which fails the seed as a hang.
    MC222,
    /// `set_and_wait` that registers its waiter after its write: on a stopped map (or a full
    /// registry) the write lands, then the call says `Closed` (`TooManyWaiters`), and the
    /// application believes nothing was written (blind-spot hunt, round 24, B #11).
    MC223,
    /// A shutdown token's `child()` that does not check whether its parent is already
    /// cancelled: a child made after the cancel never stops (blind-spot hunt, round 24, B #14;
    /// keel's own tokens are cancelled again by their stops, so only a unit test sees it).
    MC224,
    /// A worker whose drain ran out with runs still going hands their jobs back before it stops
    /// them: the next owner starts a job the old run still writes (blind-spot hunt, round 24,
    /// A #28: P2 saw it only past its 100 ms hand-off, 3 of 200 seeds).
    MC225,
    /// A map's stop that empties its subscriber list without closing it: `subscribe()` on the
    /// stopped map adds a subscriber nothing ever ends, and its `recv` waits for good (keel's
    /// own bug, found by the blind-spot hunt's round 24, B, beside #11; fixed).
    MC226,
    /// A guard's `valid_fence()` that judges the local deadline alone, not the work's token:
    /// after a step-down or a stop, a writer that checks it right before each write (as
    /// documented) writes on until the deadline (blind-spot hunt, round 24, B #22: no run called
    /// `valid_fence`).
    MC227,
    /// `joined()` that judges the map's stop before its join: a stopped map that had joined
    /// says `Closed`, and an application that asks after the stop believes it never loaded
    /// (blind-spot hunt, round 24, B #34).
    MC228,
    /// A watch whose last sender is dropped without marking the channel closed: a receiver's
    /// `changed()` after the lease owner ended waits forever instead of failing `Closed`
    /// (blind-spot hunt, round 24, B #12: no run read a handle after its owner ended).
    MC229,
    /// A stop heard while the lease owner still makes its first attempt ends the owner without
    /// publishing `Released`: the handle reads `Awaiting` for good after the owner returned.
    MC230,
    /// `LeaseHandle::held()` that waits through a published `Failed`: a permanent store error
    /// (a denied ACL, wrong credentials) never reaches the caller, who waits until an operator
    /// fixes the store (blind-spot hunt, round 25, B #3).
    MC231,
    /// `set_and_wait` that reports a write the store lost as `Closed`: the caller believes the
    /// map stopped, not that its write is gone and must be made again (blind-spot hunt, round
    /// 25, B #18).
    MC232,
    /// A lease owner that, past a row of permanent errors, goes on trying at the backoff's pace
    /// instead of once a poll: a store that denied it for good is hammered at `retry_max`
    /// (blind-spot hunt, round 25, B #2).
    MC233,
    /// A lease owner that publishes `Failed` again at every permanent error past the row, not
    /// once per distinct error: each repeat pages an operator again for what they already know
    /// (blind-spot hunt, round 25, B #42).
    MC234,
    /// A cleanup whose read after the fence takes only the jobs fresh: its requeues pick their
    /// targets by the sweep view's keep-alives and store time, which may name a worker that died
    /// since (blind-spot hunt, round 25, A #8: P3 judged the move's own stale time).
    MC235,
    /// A completer run that announces events it could not hand over (`events_undelivered`) but
    /// leaves them out of its stop's report: the stop returns `Ok` with events lost (blind-spot
    /// hunt, round 25, B #36).
    MC236,
    /// A cleanup that calls a worker's jobs orphans when either its keep-alive or its
    /// registration is missing, not both: a fenced or half-deregistered worker's jobs are
    /// reported `orphan_requeued` (blind-spot hunt, round 25, A #27).
    MC237,
    /// A sweep that takes a completer-map entry exactly at its retention for old: deleted a
    /// millisecond early, at the boundary instant (blind-spot hunt, round 25, A #20: P44 judged
    /// at the store, after the round trips, never saw the decision's instant).
    MC238,
    /// A completer run that compares its flush tick with `>` where `>=` is meant: a wake exactly
    /// at the tick (every wake, once simulated clocks read their deadline exactly) skips it, so
    /// every partial batch waits a whole flush interval more (blind-spot hunt, round 26, B #1:
    /// inert while the clocks woke a hair past every deadline).
    MC239,
    /// A lease owner that compares its grant's deadline with `>` where `>=` is meant: woken
    /// exactly at the deadline it neither steps down nor waits, and re-arms the same due sleep
    /// forever (blind-spot hunt, round 25, B #5: inert while the clocks woke a hair late).
    MC240,
    /// A guard that reads valid at exactly its deadline (`<=` for `<`): guarded work checking its
    /// guard at the deadline instant is told it still holds, while `lost()` has completed
    /// (blind-spot hunt, round 26, B #8: inert while the clocks woke a hair late).
    MC241,
    /// A subscription manager that ignores `with_drain_timeout`: its stop waits the completer's
    /// stop timeout instead, and gives up on what the completer's channel still holds at a bound
    /// the operator did not set (blind-spot hunt, round 26, B #26: V4 judged the stop against
    /// the bound keel announced, consistent with itself).
    MC242,
    /// A lease driver that drops its guarded work's own result: a work that panicked (caught by
    /// the work's wrapper) is reported ended cleanly, restarted as `panicked: false`, and logged
    /// as a return (blind-spot hunt, round 26, B #29).
    MC243,
    /// A completer intake that reads its backlog before the written batch leaves it: every
    /// `room_made` reports the batch still in the backlog and the room it made understated by
    /// the batch (blind-spot hunt, round 26, B #24: two lines swapped; V13 read that backlog and
    /// nothing judged it).
    MC244,
    /// A worker's graceful stop that deregisters (keep-alive, then registration) before it hands
    /// its jobs back: from the delete on, every job it still holds is an orphan, left to a
    /// cleanup's orphan scan that may race the hand-back (blind-spot hunt, round 26, A #12: two
    /// commands swapped; nothing judged the order).
    MC245,
    /// A stopping worker's hand-back that gives up at its first failed move: every later job it
    /// holds stays on it after it deregisters, with no failure reported, until a cleanup's orphan
    /// scan (blind-spot hunt, round 26, A #4: a `return` after the warning).
    MC246,
    /// A node's keep-alive replica that updates the entries it holds in place but never inserts
    /// one: a worker registered after the replica's last snapshot is invisible to dispatch until
    /// the next gap, so jobs queue (or go to older workers) while it waits idle.
    MC247,
    /// A subscription manager that counts an event as offered before its subscriber's filter
    /// is asked: its close reports every event for every subscriber as delivered, the filtered
    /// ones included (blind-spot hunt, round 26, B #2: no rule read `delivered`).
    MC248,
    /// A completer whose retry jitter is seeded by its name and run only: every node's completer
    /// of one name (a pool's, on every node) draws the same waits and retries a failing store in
    /// lockstep (blind-spot hunt, round 27, B K1: keel as it was).
    MC249,
    /// A completer whose used-up retry budget cools down without its warning: the same waits, but
    /// `retry_budget_exhausted`, the line operators alert on, never comes (blind-spot hunt,
    /// round 27, B #11: V16 counted the failures and never asked for the warning).
    MC250,
    /// A completer builder whose `retry_budget` setter drops its value: the run announces and uses
    /// the default 8 where 6 was set, and every retry rule agrees with what it announces
    /// (blind-spot hunt, round 27, B #1).
    MC251,
    /// A lease work restart policy that drops its cap: the backoff never grows past `min`, and the
    /// owner announces `min` as its most (blind-spot hunt, round 27, B #5: S20 agreed with it).
    MC252,
    /// The store's write semantics: a `Delete` of an absent key applies. The caller is told it
    /// deleted something, the map's revision moves and every replica is sent a deletion of
    /// nothing (blind-spot hunt, round 27, B #4: L1's specification was this same code).
    MC253,
    /// The store's write semantics: a compare-and-set on a missing key applies, creating it (a
    /// lock taken over from a value someone deleted; blind-spot hunt, round 27, B #7: P2 saw it in
    /// the pool, nothing in rmap).
    MC254,
    /// Dispatch (and every move) picks the most-loaded live worker instead of the least: every job
    /// stays correct and most of them wait behind a few workers (blind-spot hunt, round 27, A #9:
    /// `max_by_key` for `min_by_key`; no rule judged balance).
    MC255,
    /// A sweep that assigns its queued jobs without asking first whether a worker lives: with
    /// none, every queued job is moved from the queue back into it under a new attempt, every
    /// sweep (blind-spot hunt, round 27, A #12).
    MC256,
    /// A pool node's completer stopped with its workers' drain as its bound: the completions a
    /// drain writes at its end miss the bound, and their events are given up (blind-spot hunt,
    /// round 27, A #3: P50 and P19 excused the refusals by the bound keel itself set).
    MC257,
    /// The completer's default flush interval ten times the documented 50 ms: partial batches
    /// wait half a second, and every rule agrees with the interval the run announces
    /// (blind-spot hunt, round 27, B #20).
    MC258,
    /// The pool's default cleanup lock lifetime one worker TTL, not the documented two: every
    /// cleanup's write budget shrinks from 2.5 s to 1 s in the scenario, more cleanups are
    /// abandoned half-way, and every rule agrees with the lifetime the node announces
    /// (blind-spot hunt, round 27, A #18).
    MC259,
    /// A supervised slot that replaces a dead worker without counting the incarnation:
    /// `WorkerHandle::incarnations()` stays 1 whatever the deaths (blind-spot hunt, round 27,
    /// A #14).
    MC260,
    /// The pool's list of known workers without the registrations: a worker left with a
    /// registration and no keep-alive (a deregistration or cleanup cut between its deletes) is
    /// never judged stale again, and `inspect`, which shares the list, does not show it
    /// (blind-spot hunt, round 27, A #10).
    MC261,
    /// The pool's router applies a change of the job map to its table without waking the sweeps
    /// waiting for the table to reach a revision: each such wait runs to its op timeout and the
    /// sweep then reads the whole job map itself (blind-spot hunt, round 27, A #1: P53 judged
    /// only the waits past a rebuild).
    MC262,
    /// A completer run's `unflushed` warning counted before the completions still queued at its
    /// stop's bound join the report: it warns only of batches given up after retries, and a stop
    /// that leaves its queue unwritten warns of nothing (blind-spot hunt, round 28, B #6).
    MC263,
    /// A replicated map's `stopped` counts the waiters it closed from the registry the close has
    /// just emptied: always 0, so an operator never learns that a stop cut `set_and_wait` calls
    /// short (blind-spot hunt, round 28, B #3).
    MC264,
    /// A `set_and_wait` cut short by its map's stop fails `Cancelled`, the error of a caller's
    /// own token, not `Closed`: a caller that cancelled nothing cannot tell a stopped map from
    /// its own cancellation (blind-spot hunt, round 28, B #11).
    MC265,
    /// A registered producer's completion that meets its run's close is refused `Stopping` (the
    /// error of a registration during a drain), not `Closed` (blind-spot hunt, round 28, B #10).
    MC266,
    /// `LeaseHandle::fence()` reads the state the owner's driver published without judging its
    /// grant (MC150's bug on the other reader): after a freeze it names a fence whose local
    /// deadline has passed, and a caller writes with it (blind-spot hunt, round 28, A #7).
    MC267,
    /// A producer whose caller gives its completion up while waiting for room (a timeout, a
    /// `select!`) is reported refused `closed` while the run goes on: an operator reads that the
    /// completer closed under it (blind-spot hunt, round 29, B #7).
    MC268,
    /// A worker's run end unroutes its job whichever run ended: an older, replaced run's end
    /// takes the route of the newer run the worker tracks, which then never hears that its job
    /// moved on and runs beside the next owner (blind-spot hunt, round 29, A #4).
    MC269,
    /// A lease release reports the call's bound (its op timeout) as its duration: every
    /// release reads as a flat op timeout on a latency dashboard, and an operator chasing slow
    /// stops blames the store (blind-spot hunt, round 29, B #12).
    MC270,
    /// A lifecycle stop that finds a stop of its run under way waits for the exit, but
    /// announces no `stop_returned`: the rules that judge the announced returns (V5) cannot see
    /// it, and an operator reads one return for two stops (blind-spot hunt, round 29, B #6).
    MC271,
    /// A replicated map's snapshot retry loop takes its start once, before the first attempt:
    /// every `snapshot_failed` after the first and the `resynced` that ends a retried snapshot
    /// report the whole retry, backoffs and watch re-opens included, as one read's duration
    /// (blind-spot hunt, round 27, B #16).
    MC272,
    /// A gap the job map's feed reports to a node's router is told to the job table but not to
    /// the completion feed: the resync's snapshot offers tombstones only above the horizon below
    /// the newest completion seen, so completions lost in a gap longer than the horizon never
    /// reach subscribers or `wait_for` (blind-spot hunt, round 27, A #7).
    MC273,
    /// A whole snapshot of the job map heals the completion feed's gaps counted once the
    /// snapshot is in, not before its request: a gap reported while the snapshot was read is
    /// taken as healed by a read that may predate what the gap lost, and the frozen floor goes
    /// (blind-spot hunt, round 27, A #2).
    MC274,
    /// A cleanup lock observed at its last live millisecond is taken over as expired: two
    /// cleaners of one dead worker overlap while the holder may still write within its budget
    /// (MC21's bug on the lock; blind-spot hunt, round 30, A #5).
    MC275,
    /// A replicated map's resync reports the waiters still parked after its load as those it
    /// woke (blind-spot hunt, round 30, B #2).
    MC276,
    /// A group commit of the pool's dispatches cut at its op timeout answered to each caller as
    /// `Unavailable` (the store applied nothing) instead of `Timeout` (it may have applied): a
    /// user who trusts `outcome()` gives up a job that runs (blind-spot hunt, round 30, A #2).
    MC277,
    /// The simulator's own bug, not keel's: the nemesis records a node's pause but does not
    /// freeze it, so every rule about a frozen process judges a run that never had one while the
    /// plan and the timeline say it did (blind-spot hunt, round 32, A #5; W1).
    MC278,
    /// A sweep's wait for its job table with a deadline already past (`began - op_timeout` for
    /// `began + op_timeout`): whenever the router lags the slice's revision by one change, the
    /// sweep gives up at once and reads a whole snapshot of the job map (cargo-mutants survivor
    /// of `await_table`, round 32).
    MC279,
    /// The simulated store draws a lost reply before it applies the request and drops the
    /// request with it: `ReplyLoss` makes lost requests, never the unknown outcomes (applied,
    /// reply lost) it exists for (blind-spot hunt, round 32, A #7; the fault-effect goal
    /// `reply_lost_after_apply`).
    MC280,
    /// The simulated store holds a reply delay before it applies the request instead of after:
    /// `ReplyDelay` slows requests and never opens the window "applied, reply not yet back"
    /// (blind-spot hunt, round 32, A #8; `reply_held_after_apply`).
    MC281,
    /// A roll-back restarts the store from its data as it is at the crash instead of its last
    /// checkpoint: it loses nothing while the history and the linearizability checker say it
    /// rolled back (blind-spot hunt, round 32, A #4; `rollback_kept_some_writes_lost_others`).
    MC282,
    /// A one-way partition cuts the other direction than its plan says: "requests arrive,
    /// replies do not" becomes the reverse, and the plan a failing seed prints (and the
    /// shrinker keeps) lies about the fault (blind-spot hunt, round 32, A #2;
    /// `cut_to_store_served_none`, `cut_from_store_served_requests`).
    MC283,
    /// A replicated map's snapshot cut at its backoff's cap (`retry_max`) instead of its op
    /// timeout: on a store slower than the cap but within the timeout the replica never resyncs
    /// (blind-spot hunt, round 33, B #11; R24).
    MC284,
    /// A replicated map's resync wakes the waiters its snapshot resolves before the replica has
    /// loaded it: `set_and_wait` can return while `get` on another thread still reads the old
    /// value (blind-spot hunt, round 33, B #2; the assertion at the wake).
    MC285,
    /// The simulator's nemesis records a refusal window (`StoreUnavailable`) without telling the
    /// store to refuse: keel's handling of a `LOADING` store goes untested while the plan says it
    /// was (the faults' own goals, round 33: `requests_refused_while_loading`).
    MC286,
    /// The simulated store ignores a latency spike it was told of: no request waits for it
    /// (`requests_slowed_by_a_spike`).
    MC287,
    /// A replicated map's calls and snapshots timed on the runtime's timer instead of the clock
    /// the map was given: with a drifting or jumped clock, or a test clock, writes are cut
    /// early or late against the timeout the service configured (blind-spot hunt, round 33,
    /// B #24; R18 in `rmapclock`, the one rmap scenario whose clocks drift and jump).
    MC288,
    /// A completer's store write timed out on the runtime's timer instead of the clock it was
    /// given: with a drifting or jumped clock, or a test clock, writes are cut early or late
    /// against the op timeout the service configured (`completerclock`, the completer scenario
    /// whose clocks drift and jump).
    MC289,
    /// A completer run's idle wait (its flush tick and its stop's bound) on the runtime's timer
    /// instead of its clock: ticks and the bound run late or early on a drifting clock and miss
    /// a jump (`completerclock`).
    MC290,
    /// The simulator's clock applies a jump's length in microseconds, not milliseconds (blind-spot
    /// hunt, round 32, A #9): a 2 s jump moves the clock 2 ms, and the plan a failing seed prints
    /// lies about the fault (`jump_moved_the_clock_by_its_delta`).
    MC291,
    /// The simulator's clock arms a sleeper's timer as if it ran at rate 1: on a drifting clock
    /// sleeps end late, and keel's deadlines are tested against a drift the clock does not
    /// keep (`drifted_clock_woke_sleepers_at_their_deadline`).
    MC292,
    /// A lease owner that stops its work without cancelling the work's token ("the validity
    /// already ended, the guard reads lost"): `Guard::lost()` wakes only at the old deadline, and
    /// sub-tasks watching `guard.shutdown()` run on for up to a TTL after a step-down (blind-spot
    /// hunt, round 34, A #6; S30).
    MC293,
    /// A lease owner that never aborts a work deaf to its stop: `work_stop_timeout` is not
    /// enforced, and a stuck work holds the step-down and `stop()` forever (blind-spot hunt,
    /// round 34, A #32; S29).
    MC294,
    /// A completer whose restarts keep the first run's backlog: from its second run on every
    /// producer registers on a closed intake and is refused "completer closed", and nothing is
    /// accepted until the process restarts (blind-spot hunt, round 34, B #26; V32).
    MC295,
    /// A lease owner's `permanent_error_attempts(n)` that drops its value: the owner keeps the
    /// default 3 attempts before `Failed`, whatever the user set (blind-spot hunt, round 34,
    /// A #13; S27 on the node that sets 2).
    MC296,
    /// A guard's `lost()` that compares the local deadline with `>`: at the deadline instant it
    /// waits again for the deadline it is at, and spins until the clock moves; in the simulator
    /// the spin's panic lands in the guarded work, whose panics keel's supervision catches
    /// (blind-spot hunt, round 34, A #7; the `spin` failure kept apart from the panic).
    MC297,
    /// A lease owner that counts its wait after a failed read of the store's time from the
    /// read's send, not its outcome: a read that timed out is tried again at once (blind-spot
    /// hunt, round 34, A #5; S13 on the read after it).
    MC298,
    /// A worker's beat that announces `stopping` and writes the plain keep-alive: a draining
    /// worker looks live to every dispatcher and sweep, and gets new jobs it only hands back
    /// (blind-spot hunt, round 35, B #14; P66 at the write).
    MC299,
    /// A pool start whose read of the store's time is retried at once after a failure, its
    /// backoff skipped: every node of a fleet starting while the store restarts or is cut off
    /// asks it again at network speed (round 35's hunt, B #18, left open then; P67 at the retry).
    MC320,
    /// A pool start whose backoff doubles without its cap (a sweep interval): after a long
    /// outage the node waits up to its whole start timeout for a store that is back (P67).
    MC321,
    /// A pool node's watch (the router's, the keep-alive follower's) whose failed open is tried
    /// again at once, not a sweep interval later: a node hammering a store that refuses or
    /// drops its watch requests (round 35's hunt, B #21, left open then; P68 at the retry).
    MC322,
    /// A pool node's keep-alive follower whose failed snapshot is tried again at once, not a
    /// keep-alive interval later: every node snapshots the whole keep-alive map at network speed
    /// while the store fails them (round 36; P69 at the retry).
    MC323,
    /// A lease owner that waits a whole poll after a failed acquisition, as after a refusal,
    /// instead of its backoff: every store blip delays a takeover (a crashed holder's successor,
    /// a released lease) by up to a poll (blind-spot hunt, round 36, A #3; S12, which judged a
    /// failed acquisition by the poll alone).
    MC300,
    /// A lease owner whose refused acquisition ends the row of permanent errors but keeps the
    /// count of errors in a row: the backoff after the next failed acquisition grows from the
    /// errors before the refusal, up to a poll (blind-spot hunt, round 36, A #4; S12).
    MC301,
    /// A lease owner that reads the store's time at start for its jitter but does not keep it as
    /// its tokens' incarnation: every process of an owner names its tokens `owner:0:n`, so a
    /// restarted process (or two processes under one owner name) shares tokens with an earlier
    /// one, re-acquires its grant without a new fence, and can renew or release it (blind-spot
    /// hunt, round 36, A #12; S31).
    MC302,
    /// A lease store whose renewal checks the data-loss quarantine as an acquisition does: after
    /// every restart of the store (even one that kept its data) the holder's renewal is refused
    /// while the store still holds its grant, so the holder steps down and the lease stays
    /// unheld for the quarantine (blind-spot hunt, round 36, A #33; L7).
    MC303,
    /// A lease owner that reads the store's time again a whole poll after a failed read at
    /// start, not after its backoff: every blip at start delays the owner's first acquisition
    /// by up to a poll (blind-spot hunt, round 36, A #34; S12, which judged the read by the poll
    /// alone).
    MC304,
    /// A completer drain that retries a failed write at once, without its backoff: every node
    /// stopping while the store fails writes back to back until its stop bound (blind-spot
    /// hunt, round 36, B #4; V33, which judges the drain's retries as V16 the others').
    MC310,
    /// A completer drain that writes everything still queued in one batch, past `batch_size`:
    /// the user's bound on one store transaction broken exactly at shutdown (blind-spot hunt,
    /// round 36, B #2; V34).
    MC311,
    /// A subscription manager started on its caller's child token, not a detached one: a
    /// cancelled caller starts the manager's drain bound before the group stops the producers
    /// and the completer, and the manager's run ends with the completer's channel, so its own
    /// stop finds nothing to request (blind-spot hunt, round 36, B #8; V35).
    MC312,
    /// A completer's hand-over of its event receiver that keeps one not yet taken: a manager
    /// started after two completer runs reads the older, dead run's channel, closes its
    /// subscribers at once, and the live run's events go undelivered (blind-spot hunt, round 36,
    /// B #9; V36).
    MC313,
    /// A subscription manager whose stop distributes what is buffered and closes, not waiting
    /// for the completer's channel to close: stopped while the completer still drains, it
    /// loses every event flushed after (blind-spot hunt, round 36, B #10; V37).
    MC314,
    /// A completer run's close that wakes one producer waiting for room (`notify_one`), not all:
    /// with two or more parked on a full backlog when the run closes, every other one waits
    /// forever, a worker that never hands its job back (blind-spot hunt, round 36, B #34; V20,
    /// once the burst producer hands its completions in from two tasks).
    MC315,
    /// A producer's registration during a completer's drain refused `Closed` (the run ended),
    /// not `Stopping`: a caller that waits out a stopping completer to register with its next
    /// run takes it for gone (blind-spot hunt, round 36, B #12; E8).
    MC316,
    /// A completer whose backoff, woken by the stop, gives its batch up: the batch is reported
    /// unflushed before the drain begins, with the whole stop bound left to retry it (blind-spot
    /// hunt, round 36, B #60; V12, which now judges every batch given up outside a drain).
    MC317,
    /// A completer that counts the events it could not hand to the subscription manager in
    /// batches, one per failed send, not events: its warning and its stop's report say one
    /// event lost for a whole batch (blind-spot hunt, round 36, B #41; V3 at the announcement).
    MC318,
    /// A completer run that gives a batch's hand-over up as soon as its stop is heard, announcing
    /// the events lost as if the subscription manager had gone, where it should wait for room
    /// until the stop's bound: a manager that starts late, or is behind, never gets a batch the
    /// completer had written (blind-spot hunt, round 36, B #14; V39, with a manager started late).
    MC324,
    /// A completer run whose hand-over waits for room until the stop's bound on the runtime's
    /// timer, not the run's clock: on a slow clock it gives the events up before its bound
    /// (blind-spot hunt, round 36, B #48; V38, `completerclock` with a manager started late).
    MC325,
    /// A completer run that makes a batch's room in its backlog once the batch is written, before
    /// its events are handed on: while the hand-over waits on a full channel, producers are
    /// accepted past the backlog's bound by up to a batch (blind-spot hunt, round 36, B #3; V7).
    MC326,
    /// A subscription manager that announces a subscriber gone (its receiver dropped) and keeps
    /// it: every later batch is offered to it again and counted delivered, its entry kept for the
    /// manager's life (found by `scripts/sim-coverage.sh`: no workload dropped a subscription
    /// mid-run; V40, with a consumer that quits).
    MC327,
    /// A replicated map's `stop()` that takes a map whose token is already cancelled (its
    /// parent's cancel reached it) as stopped and returns at once: the apply loop still runs, so
    /// a `set_and_wait` called right after is registered and its write reaches the store, and
    /// the waiters and subscriptions the stop promised to end are still open (blind-spot hunt,
    /// round 37, A #9; R26).
    MC330,
    /// A replicated map that hands a stale change (one at or below its replica's revision,
    /// skipped) to its waiters as an applied one: their revision goes back to the stale
    /// change's, so a `set_and_wait` armed before the next change, for a write the replica
    /// already holds, parks until that change (on a quiet map, for good) (blind-spot hunt, round
    /// 37, A #16; the keel assertion that the waiters follow the replica at every step).
    MC331,
    /// A replicated map whose `waiters()` counts only the armed `set_and_wait` calls (their
    /// write acknowledged), not those whose write is still in flight: with a slow store the
    /// figure an operator watches, or a test waits on, misses the calls stuck in it (blind-spot
    /// hunt, round 37, A #15; R27).
    MC332,
    /// A worker that takes a beat whose outcome is unknown (an error, a timeout) for landed: its
    /// next beat expects the value it sent, and when that write was lost the store refuses it
    /// over the worker's own older beat, and the live worker declares itself dead (blind-spot
    /// hunt, round 37, B #17; P70).
    MC340,
    /// A cleanup that releases its lock by a plain delete, not compare-and-delete: a cleaner whose
    /// lock expired and was taken over before its release removes the new holder's lock, and a
    /// third cleaner can lock the worker while the second still cleans it (blind-spot hunt, round
    /// 37, B #13; P71, P15).
    MC341,
    /// A move (a cleanup's requeue, a hand-back, a sweep's assignment) that does not note its pick
    /// in the view it picks from: every job of a dead or draining worker goes to the one worker
    /// least loaded at the view's read (blind-spot hunt, round 37, B #16; P72).
    MC342,
    /// `LeaseHandle::stop()` that cancels the owner's token and returns, trusting the owner to
    /// wind down by itself: the caller goes on (starts another owner, exits) while the work
    /// still runs and the grant is not yet released (round 38 coverage: no run called `stop()`;
    /// S40).
    MC343,
    /// `LeaseHandle::stop()` that aborts the owner's task, the quick way to stop a task: no
    /// release (the grant blocks every other node for a TTL), the work dropped mid-step, and
    /// the stop returns `Panicked` (round 38 coverage; S40, S7).
    MC344,
    /// The guarded work's token made a child of the owner's parent rather than of the owner's
    /// own token: a node's stop reaches it at once, a `stop()` of the handle only through the
    /// owner's step-down, while the work goes on writing (round 38 coverage; S26).
    MC345,
    /// A lease owner given a parent that waits on its parent's token alone: a node's stop is
    /// heard, a `stop()` of its handle never (round 38 coverage; S10, S41).
    MC346,
    /// `LeaseHandle::join()` that takes the owner's task out of the handle before awaiting it:
    /// a join dropped half-way (a health check's timeout) detaches the owner, and a later
    /// `stop()` or `join()` returns at once while it runs on (round 28's fix, re-injected:
    /// round 38 coverage; S40).
    MC347,
    /// `PoolNode::dispatch_and_wait` that registers its wait once the dispatch returned: a job
    /// that completes before the dispatch's reply arrives (a slow or retried reply) is waited
    /// for until the node stops (round 38 coverage: no run called `dispatch_and_wait`; P10).
    MC348,
    /// A worker whose registration finds its keep-alive holding the dead marker (a cleaner fenced
    /// it while its registration kept failing) retries forever: keel before round 38. It never
    /// fences itself, its own node's sweeps leave it to the others, and once they are gone its
    /// state stays and its slot never gets a working worker (found by P4 at poolfeed seed 217).
    MC349,
    /// A lease owner that keeps its token after a step-down for `taken` (the store said the grant
    /// is gone): its next grant is to the token of the one it lost, so a renewal or release of the
    /// old grant still in flight acts on the new one, and the key no longer tells the grants apart
    /// (blind-spot hunt, round 38, A #8; S32).
    MC350,
    /// A lease owner that arms its work's abort (`work_stop_timeout`) on the runtime's timer, not
    /// on the clock it was given: on a slow clock the work is aborted before its graceful window
    /// ran out, a few per cent early, within S24's drift slack (blind-spot hunt, round 38, A #11;
    /// S33).
    MC351,
    /// A shutdown token whose cancel stops walking its children at the first one already
    /// cancelled, taking the rest for cancelled with it: a live child registered after a part
    /// stopped early (its token still held) never hears its parent's cancel (blind-spot hunt,
    /// round 38, A #16; the lease scenario's nodes now hold such a token: S10, S26).
    MC352,
    /// A lease owner whose successful read of the store's time at start does not end its run of
    /// store errors: the recovery is reported late, at the next store answer, counting errors
    /// from before a success, and a summary between says the store still fails (blind-spot
    /// hunt, round 38, A #107; E2, which now reads `time_read`).
    MC353,
    /// A keep-alive follower that does not note a gap in its feed: its replica stays "in sync"
    /// with what the gap lost (a worker registered, beating or deleted meanwhile), and dispatch
    /// judges liveness on it until a later change happens to skip a revision (blind-spot hunt,
    /// round 38, B #17; P73).
    MC360,
    /// A lifecycle's `join()` that waits only for a running run: a run already stopping is taken
    /// for gone and the join returns while it still drains (a supervisor that joins the drain it
    /// saw begin moves on before it ended; V46).
    MC373,
    /// A lifecycle's `join()` written as "wait until it is no longer running": it returns when a
    /// stop begins, not when the run exited (V46).
    MC374,
    /// A lifecycle's `join()` written as `stopped()`: it waits for the status to read stopped,
    /// so a run started again in the instant of the exit, before the joiner is polled, keeps it
    /// parked until that next run ends (V46's wake).
    MC375,
    /// A worker slot that counts a replacement when its restart backoff begins, not once the
    /// new incarnation is spawned: a slot stopped during its backoff counts a replacement never
    /// made (`PoolNode::worker_replacements`; P82).
    MC376,
    /// A live worker counted when its slot's supervisor task first runs, not at the worker's
    /// spawn (keel's own until round 39): a read of `PoolNode::live_workers` right after
    /// `add_worker` misses the worker already registering (P82).
    MC377,
    /// A worker's death counted only when its slot goes on to a replacement: the death that ends
    /// a slot (stopped meanwhile, or without restarts) is reported by `worker_died` but missing
    /// from `PoolNode::worker_deaths` (P82).
    MC378,
    /// A map's stop that completes only the armed waiters: a call still writing when the map
    /// stops stays registered, and once its write is acknowledged it parks on a registry nothing
    /// will ever wake (blind-spot hunt, round 39, B #30; R30, judged at the `stopped`: R20 saw the
    /// hang on 1 seed of 200).
    MC365,
    /// A completer intake that refuses a registered producer's completion during the drain as if
    /// the run had closed: the drain the stop runs for turns away the very completions it waits
    /// for (blind-spot hunt, round 39, B #10; V42, judged at each refusal).
    MC366,
    /// A store whose lease release deletes the lease's fence counter with its grant (a cleanup
    /// of "everything the lease left"): the next acquisition finds the counter missing, as after
    /// a data loss, and is quarantined, so every handover after a graceful release waits out
    /// the quarantine; fences, seeded again from store time, still grow, so no fence rule sees
    /// it (blind-spot hunt, round 39, A #3; S34).
    MC354,
    /// The simulator's clock jump re-anchoring the node's clock at rate 1: a drift in force ends
    /// silently at the node's first jump, every drift rule after it judges a clock that runs
    /// true while the plan and the timeline say it drifts, and the drift's own coverage goal
    /// was reached before the jump (blind-spot hunt, round 39, A #15; W2).
    MC355,
    /// The simulated store's node-latency fault that records its reply latency (`held`'s
    /// `after_ms`) and does not hold the reply by it: the fault is half injected, and the
    /// goal that asks for unequal latencies each way reads the record (blind-spot hunt, round
    /// 39, A #17; W3).
    MC356,
    /// A store whose lease quarantine allows a millisecond of rounding grace at its end: an
    /// acquisition a millisecond before the quarantine ends is granted, so the quarantine is
    /// shorter than the `quarantine_ms` the caller asked for (blind-spot hunt, round 39, A #24;
    /// S34, which judges each grant and refusal against the quarantine the store node reckons).
    MC357,
    /// The simulator's reply-delay window whose end turns off the reply-loss switch instead of
    /// its own (a copy-paste slip in the world): the delay stays in force until the heal and a
    /// loss window under way ends early, while the plan, the timeline and the fault goals read
    /// the windows as recorded (blind-spot hunt, round 39, A #18, left then; W4, round 40).
    MC390,
    /// The simulator's refusal window whose end leaves the store refusing (`LOADING`) until the
    /// heal: the window recorded and its `store_answering` count read as planned, the store
    /// answering nothing for the rest of the fault window (round 40, W4).
    MC391,
    /// The simulator's latency spike whose end leaves its extra latency on until the heal
    /// (round 40, W4).
    MC392,
    /// The simulator's node-latency window whose end leaves the node's latency on until the
    /// heal (round 40, W4).
    MC393,
    /// The simulator's access denial whose last window's end records `access_restored` and
    /// leaves the node denied (`NOPERM`) until the heal (round 40, W4).
    MC394,
    /// The simulator's network slowdowns taken to end in the reverse order they began: the end
    /// of a window pops the slowdown begun last, so where two overlap and the first ends first,
    /// the network keeps the ended one's latency and drops the open one's (round 40, W4).
    MC395,
    /// A pool node's bound on completion waits checked past its last slot (`>` for `>=`): the
    /// node registers one wait more than `PoolConfigBuilder::max_waiters` allows, so a service
    /// sized by it holds more than it was told (blind-spot hunt, round 40, A #1; P74, judged at
    /// each registration and refusal).
    MC379,
    /// `keel::pool::inspect` scanning the completer's map under the meta map's kind (a
    /// copy-pasted row of its scan): every completion entry is reported corrupt, and an operator
    /// who runs `quarantine_corrupt` on the report moves them out of the pool (blind-spot hunt,
    /// round 40, A #2: no run called `inspect` itself, only its in-place twin; P75).
    MC380,
    /// The simulator's store answering a batch of reads (`Store::reads`) in reverse order: every
    /// scenario would judge keel against a store whose batches are not the ones keel runs on
    /// (checker proof for the store conformance suite on `SimStore`, round 41; caught by
    /// `reads_answer_as_the_single_reads_in_order` in `cargo simtest --lib store_conformance`).
    MC319,
    /// A replica's load that hands its subscribers the differences it found only when the
    /// revision moved: an anti-entropy resync that repairs values at the revision the replica
    /// already holds (an operator's `HSET` on the map's hash, bumping nothing) fixes the replica
    /// and tells no subscriber, whose mirror keeps the old values for good (blind-spot hunt,
    /// round 39, B #83, left open; round 41, A #2: no simulated store diverges at an equal
    /// revision, so a unit test proves it:
    /// `rmap::tests::an_anti_entropy_repair_at_the_same_revision_reaches_subscribers`).
    MC381,
    /// A replica that judges a change against the restart flag of its last snapshot before its
    /// revision: after a snapshot taken since a store restart, each stale change still in a feed
    /// opened before it (one the snapshot holds) is held back as possibly lost and resynced for,
    /// a whole-map read per change of the backlog, each reloading the same snapshot (blind-spot
    /// hunt, round 41, A #4; R10 excuses it, the replica being below the boot's seed floor;
    /// R29 judges each `after_restart` against the last load).
    MC382,
    /// A pool move's pending deadline counted from the store time of the view the move was
    /// decided on, not the newest the node knows: a view read long before its moves (a cleanup's
    /// requeues after their backoff, a drain's hand-backs) writes a deadline already spent, and a
    /// sweep re-dispatches the job inside its new worker's ack grace (round 15's bug, re-injected
    /// by blind-spot hunt, round 41, B #10: P5 and P28 judge the entry against its own stale
    /// `now_ms`; P76, judged at each `pending_written`).
    MC386,
    /// A replicated map's wait future that marks its waiter done at its first poll, not when it
    /// completes: a `set_and_wait` cancelled while parked leaves its waiter registered (no
    /// `waiter_cancelled`), counted by `waiters()` and against `max_waiters` until the replica
    /// reaches its write, and for good if the write was lost (blind-spot hunt, round 42, A #7;
    /// R27 counts from keel's own events, which the leak keeps consistent; R31 counts the calls).
    MC397,
    /// `set_and_wait_until` that looks at its token once, before the call, and then waits deaf
    /// to it: a caller's cancellation no longer ends the wait, which runs until the write is
    /// applied or the map stops, and reports the map's `Closed` for the caller's own cancel
    /// (blind-spot hunt, round 42, A #10; R23, judged at each failure of a call given a token).
    MC398,
    /// A pool sweep that re-delivers every record a local worker owns, the repeats of the runs it
    /// already has among them: with a worker's queue of delivered records small
    /// (`intake_buffer`), the repeats fill it first at every sweep and a record that needed the
    /// re-delivery (its ack or completion failed) is dropped each time, so its job is never run
    /// again (round 43, found by the `SmallBuffers` knob; P1).
    MC426,
    /// A worker's stop of all its runs (its fence, its drain) that leaves their routes behind:
    /// the node still counts the worker as running each job at its attempt, so once the worker
    /// recovers from the fence no sweep hands it those records again, and jobs whose runs the
    /// fence stopped are never run (round 43, pool seed 1 under the sweep's re-delivery that
    /// skips running jobs; P1).
    MC427,
    /// A sweep whose tombstone cutoff reads the worker TTL where it means the dedup window
    /// (`done_retention`): a completed key comes free, and a retried completion loses its own
    /// tombstone, as soon as one TTL has passed (round 44, the `ShortRetention` knob; P84).
    MC428,
    /// A sweep whose tombstone cutoff takes the dedup window in microseconds against a store
    /// time in milliseconds: no tombstone is ever old enough, and the job map grows by one
    /// tombstone per job for good (round 44, the `ShortRetention` knob; P85).
    MC429,
    /// A dispatch guarded by the job's record alone, not by its tombstone: a completed key sent
    /// again inside its dedup window is added as a new job and runs twice (round 44, the
    /// `ShortRetention` knob's dispatcher that sends keys again; P86).
    MC430,
    /// A sweep that keeps the completer map's entries for the whole dedup window, not the
    /// smaller of it and ten TTLs: under a long window the map grows by one entry (with its
    /// payload) per completed job for the window's length (round 44, hunt 44 A #53; P87).
    MC431,
    /// A completion's tombstone stamped with the store time read as its run began (one time
    /// read per run, taken before the handler instead of after it): the tombstone names the
    /// run's start, its dedup window ends a handler's run early, and a key added again inside
    /// the window is accepted (round 45; P93, judged at each tombstone's landing).
    MC432,
    /// A pool node's `wait_for` answered from the completions its feed remembers delivering
    /// (to deliver each once), before the store's tombstone is read: a key added again after
    /// its dedup window is answered with its earlier life's completion at once (round 45; P10,
    /// judged life by life on `poolfeed` with the `ShortRetention` knob).
    MC433,
    /// The completion feed resolving every wait of a job with a read's tombstones, also the
    /// waits registered after the read began: a sweep's slice read before a key's tombstone
    /// was swept answers the wait for the key's next life with the old life's completion
    /// (keel's own until round 45, found by poolfeed seed 419 with the `ShortRetention` knob;
    /// P10, judged life by life).
    MC434,
    /// The completion feed resolving every wait of a job with a change of its feed at once,
    /// also a change older than the wait's own read of the key: a change of a key's earlier
    /// life, held in the watch until after the wait for its next life registered, answers it
    /// (round 45; unreached by the simulator's runs: pinned by the unit test
    /// `a_change_older_than_the_waits_own_read_does_not_resolve_it`).
    MC435,
    /// A worker whose refused beat adopts whatever value the store holds, not only one of its
    /// own in-doubt writes: refused by a cleaner's dead marker it does not declare itself dead,
    /// beats again expecting the marker, and comes back to life over the fence if that beat
    /// lands before the cleanup deletes the keep-alive (hunt 46 A, the cargo-mutants sweep's
    /// in-doubt guard replaced by `true`; P88, judged at the store as each beat is handled).
    MC436,
    /// A cleanup that takes every fence for refused: the worker it has just fenced (its
    /// keep-alive the dead marker) is released as alive, its jobs left on a worker that can
    /// never run them until the next sweep's cleanup finds the marker (hunt 46 A, the
    /// cargo-mutants sweep's `&&` to `||` in the refused-fence test; P89, judged at each
    /// cleanup's end).
    MC437,
    /// A worker's stop of one run that looks the run up by a number it does not have: the
    /// superseded run is not asked to stop (its `run_stop_asked` says attempt 0) and goes on
    /// beside the job's new attempt (hunt 46 A, the cargo-mutants sweep's `==` to `!=` in the
    /// driver's run lookup; P37, whose stop now pays only if it reached the run).
    MC438,
    /// A worker that takes every failed registration attempt (a timeout, a store down) for the
    /// dead marker's refusal: it declares itself dead and its slot starts a fresh worker, each
    /// failure a needless death and a new id (hunt 46 A, the cargo-mutants sweep's guard
    /// replaced by `true`; P90, judged at the death).
    MC439,
    /// A worker driver that publishes none of its machine's state changes (registered, fenced,
    /// unfenced, stopping, dead, stopped): the operator sees no worker's state, and every rule
    /// keyed on those events judges nothing (hunt 46 A, the cargo-mutants sweep's `report`
    /// replaced by a no-op; P91, judged at each beat's end).
    MC440,
    /// A pool node's group commit whose flusher returns at once: every job transaction (a
    /// dispatch's add, an ack, a completion) fails "the group commit has stopped", nothing is
    /// ever added, and so nothing is lost (hunt 46 A, the cargo-mutants sweep's `flush_loop`
    /// replaced by a no-op; P92, judged at the run's end).
    MC441,
    /// A completion feed whose `recv` answers `None` at once, as if the node had stopped: every
    /// subscriber's stream ends before it got anything (hunt 46 A, the cargo-mutants sweep's
    /// `recv` replaced by `None`; P94, judged at each feed's end).
    MC442,
    /// A worker's graceful stop that hands its jobs back but never deregisters: its keep-alive
    /// (marked stopping) and registration stay until a cleaner judges them stale a worker TTL
    /// later and locks, fences and cleans a worker that stopped cleanly (hunt 46 A, the
    /// cargo-mutants sweep's `deregister` replaced by a no-op; P105, judged at `worker_stopped`).
    MC456,
    /// A deregistration that gives up when its keep-alive compare is refused though the store
    /// holds the worker's own beat whose reply was lost (the stopping beat's, typically): the
    /// registration goes, the keep-alive stays for a cleaner (keel before 2026-12-07; P106,
    /// judged at `worker_deregistered`).
    MC457,
    /// A completion feed's per-subscriber drop count moved at every offer instead of at each
    /// drop: `CompletionFeed::dropped` reads what the subscriber received as dropped, and P10
    /// excuses a listener's misses by that count (hunt 46 A, the cargo-mutants sweep's
    /// `dropped` replaced by 0 or 1 survived; P107, judged at each delivery the listener reads).
    MC458,
    /// A lease renewal's cut armed on the runtime's timer, not the owner's clock: on a node whose
    /// clock runs slow the renewal gives up before its op timeout (or its belief's end) has passed
    /// on that clock, and is retried against a store that would have answered (the lease's side
    /// of MC328; S43, judged at each failed renewal).
    MC459,
    /// A pool's default drift margin a quarter of the worker TTL instead of the tenth documented:
    /// every worker fences itself early, so a beat that is slow but in time stops its runs (hunt
    /// 44 A #4: no event carried the margin; P80, judged at `node_started`).
    MC460,
    /// A worker's fence deadline that keeps a keep-alive interval in reserve: every confirmed
    /// beat moves the fence to its send plus the TTL less the margin less an interval, so a beat
    /// slow by more than what is left stops every run of a worker the store still holds live
    /// (availability only: no safety rule sees it; P108, judged at each `fenced`).
    MC461,
    /// A sweep's data-loss test turned round: every sweep without a data loss marks the job
    /// table out of step, so every sweep finds a hole and rebuilds the table from a whole
    /// snapshot of the job map, the steady-state cost the table exists to avoid (hunt 47 A's
    /// survivor 994; P109, judged at each `table_awaited` that found a hole).
    MC462,
    /// P110 (hunt 47 A's survivor 520): a pool node's closing task a no-op: its stop returns
    /// without stopping its completer or its subscription manager, completions still queued in
    /// memory and the subscribers' feeds open.
    MC463,
    /// A pending entry nobody can read: `Pending::parse` answers `None`, so a sweep never finds
    /// an expired dispatch to re-dispatch, and every checker that read pending entries through
    /// keel's own decoder (`decode::pending`: P5's overdue audit, P38) went blind with it (hunt
    /// 48 A's survivors 783, 839, 840; P111, judged at each audit over the stored values).
    MC455,
    /// A map scan whose last slice hands out a cursor anyway: `StoreState::map_scan` says more
    /// follows after every non-empty slice, so every pass of a scan costs one more round trip
    /// for an empty slice, which no caller's outcome shows (hunt 48 B, the cargo-mutants sweep's
    /// match guard `range.next().is_some()` replaced by `true`; L8, judged at each slice served).
    MC464,
    /// An assignment that says no pending entry: `Pending::written` a no-op, so the store holds
    /// each dispatch's and move's entry but no event names it, and P28's deadline judgement sees
    /// nothing to judge (hunt 48 A's survivor 780; P112, judged at each `dispatched` or `moved`
    /// to a worker).
    MC465,
    /// A sweep that drops live pending entries: an entry whose job's record names its attempt
    /// and worker, still within its ack grace, is taken for a stale one (the record's match and
    /// the deadline judged in one pattern guard) and removed, guarded by its own value only. A
    /// dispatch that never reached its worker then waits for nothing: no entry, no re-dispatch,
    /// the job held by a live worker that never heard of it (P113, judged at each removal the
    /// store applies).
    MC466,
    /// A resync's load that publishes the snapshot's revision before it takes the registry's
    /// lock and installs the snapshot's seedings: a `set_and_wait` armed in between, for a write
    /// a store restart lost, reads the new revision with the old seedings and returns `Ok`
    /// (round 49's review, keel's own bug; R3; caught by the loom lane,
    /// `loom_rmap_catches_mc467`).
    MC467,
    /// A completer that takes in a completion whose key no store accepts (empty, or over
    /// `NAME_MAX_BYTES`): the store refuses its batch for good, the flush retries it without
    /// end, and the valid completions batched with it and every one after are never written
    /// (round 49's review, keel's own bug; caught by the unit lane,
    /// `completer::tests::a_completion_key_no_store_takes_is_refused_at_intake`).
    MC468,
    /// A node that never forgets a gone worker: `Core::unregister_local` a no-op, the ended
    /// incarnation's delivery channel and job routes kept, so the node's sweeps take a stale
    /// keep-alive it left behind for one of their own slow workers and never clean it up, and
    /// the node's memory grows with each incarnation (hunt 47 A's survivors 532–534, the
    /// cargo-mutants sweep's `unregister_local` replaced by `()`; P100, judged at each
    /// `worker_forgotten`).
    MC447,
    /// A worker's end that drops every worker's job routes with its own: `Core::unregister_local`
    /// clears the node's route table, so a job that another local worker still runs is no longer
    /// routed to it and a move of the job does not reach its run (hunt 47 A's survivors 533 and
    /// 534, `!=` to `==` and the `!` deleted in `unregister_local`; P100, judged at each
    /// `worker_forgotten`).
    MC448,
    /// A node's load index not told of its own writes: `Core::note_written` a no-op, so a
    /// dispatch or a move counts against its worker only once the router takes the change from
    /// the feed, and a burst of dispatches from one node, each ahead of the router, goes to the
    /// same worker (hunt 47 A's survivors 589–591, `note_written` replaced by `()` and its tests
    /// turned round: within P59's slack of 8 jobs in every run;
    /// `pool::tests::a_nodes_own_writes_count_in_its_load_index_at_once`).
    MC449,
    /// A sweep's drop of completer-map entries announced the wrong way round:
    /// `completer_entries_dropping` emitted for a sweep that drops none and not for one that
    /// drops some, so P44's decision side judges nothing and the events show drops that never
    /// came and none of those that did (hunt 47 A's survivor 1026, the `!` of
    /// `!gone.is_empty()` deleted; P101, judged at each announcement and each deletion).
    MC450,
    /// A completion feed that announces a resync at every read of the job map: `feed_resynced`
    /// emitted for a sweep's slice or a snapshot that brought no completion the change feed had
    /// missed, so an operator reads the feed as lossy when it lost nothing (hunt 47 A's survivors
    /// 594, 595, 597, the test of `observe_tombstones` turned round; P102, judged at each report).
    MC451,
    /// A dispatch that queues its job on the node's cached keep-alives: when the cache (not
    /// followed from the feed, a keep-alive interval old at most) names no live worker, the job
    /// is queued without the fresh read, so a worker that registered since the cache's read
    /// idles while the job waits for a sweep (hunt 47 A's survivor 556, the guard `read`
    /// replaced by `true`: within P58's hint lag in every run;
    /// `pool::tests::a_dispatch_reads_the_keepalives_again_before_it_queues`).
    MC452,
    /// A node that never checks its store's epoch marker: `Core::adopt_epoch` returns at once,
    /// at the node's start and at every sweep, so it holds no marker, reports no data loss and
    /// its sweeps never take one for a hole in the job table; P30 judges a node from its first
    /// check, so nothing judged it (hunt 48 A's survivor 571, the sweep's `adopt_epoch` replaced
    /// by `Ok(())`; P103, judged at each node's stop).
    MC453,
    /// A node that never follows its keep-alive map: `run_keepalive_follower` returns at once,
    /// so every dispatch more than a keep-alive interval after the node's last read reads the
    /// keep-alive map and the store's time again, the cost the followed replica exists to avoid
    /// (hunt 48 A's survivor 156, the sweep's `run_keepalive_follower` replaced by `()`; P104,
    /// judged at each node's stop).
    MC454,
    /// A completion feed that refuses every subscriber while its node runs: `Feed::subscribe`
    /// answers `None` as if the node had stopped or held its most subscribers, and
    /// `completions()` fails `TooManyWaiters` with none listening (hunt 47 A, the cargo-mutants
    /// sweep's `Feed::subscribe` replaced by `None`; P95, judged at each refusal).
    MC443,
    /// A graceful stop that never deregisters: `Worker::deregister` returns at once, the
    /// keep-alive (marked stopping) and the registration stay until a cleaner judges them stale
    /// a TTL later and cleans the worker up, while the worker reported `worker_stopped`
    /// ("stopped and deregistered") (hunt 46 A's survivor 1169, `deregister` replaced by `()`;
    /// P96, judged at each `worker_stopped`).
    MC444,
    /// A pool node whose router never runs: `run_router` returns at once, no watch of the job
    /// map is opened, and every assignment to a remote worker, every completion wait and every
    /// feed subscriber is left to the sweeps' slices, a sweep period late (hunt 47 A, the
    /// cargo-mutants sweep's `run_router` replaced by `()`; P98, judged at each node's stop).
    MC445,
    /// A node's job table that ignores the changes of the job map's feed: `JobTable::apply`
    /// takes none in, every sweep waits its op timeout for a table that never moves and reads a
    /// whole snapshot of the job map (hunt 47 A, the cargo-mutants sweep's `JobTable::apply`
    /// replaced by `None`; P99, judged at each timed-out table wait).
    MC446,
    /// A replicated map's `get` written as a range lookup where an exact one is meant: a key
    /// the replica lacks answers the value of the next key in order, so a reader sees a value
    /// no one wrote under that key, and a compare-and-set built on it is refused (hunt 45 A,
    /// the cargo-mutants sweep: `get` returning a wrong value survived every rule; R33).
    MC415,
    /// A map subscription's `recv` written with `try_recv`: an empty buffer reads as the end of
    /// the feed, so a consumer that keeps up is told at once that the map stopped and hears no
    /// change after (hunt 45 A, the cargo-mutants sweep: `recv` returning `None` survived every
    /// rule; R9's early side).
    MC416,
    /// A map's subscriber limit compared the wrong way round: every `subscribe()` under the
    /// limit is refused `TooManySubscribers` (hunt 45 A, the cargo-mutants sweep: the scenario
    /// gave up on a refused subscription silently; R33's refusal side).
    MC417,
    /// A completer intake whose drained test never answers yes (cargo-mutants' `drained -> bool
    /// with false`): every drain, with nothing queued and no producer left, waits out its whole
    /// stop bound and reports it reached, holding every stop (and the group's shutdown behind
    /// it) for the bound (hunt 45 A, the cargo-mutants sweep; V44).
    MC418,
    /// A lease handle's `fence()` that matches a running work only: while the lease is held and
    /// its work restarts it answers `None`, so a writer that reads it before a write stops for
    /// nothing (hunt 45 A, the cargo-mutants sweep: `fence() -> None` survived every rule; S35).
    MC419,
    /// A completer stop report whose clean test never answers yes (cargo-mutants' `is_clean ->
    /// bool with false`): every `stop()` returns an error listing nothing lost, and a group's
    /// shutdown reports the completer failed (hunt 45 A, the cargo-mutants sweep; V21's clean side).
    MC420,
    /// A lease release whose deadline is counted back from its send, not forward (cargo-mutants'
    /// `+` to `-` in the release): every release gives up at once and reports a timeout, so a
    /// graceful stop never hands the lease back and a successor waits out the TTL; the store may
    /// still apply the request it sent (hunt 45 A, id 165, left blind then; S42).
    MC421,
    /// A `set_and_wait` judged by a snapshot requested before its waiter was armed (cargo-mutants'
    /// `<` to `<=` in the registry's load, hunt 45 A id 689, survived 20 rmap seeds): a
    /// snapshot that may predate the write calls it lost, and the call fails `DataLost` for a
    /// write the store holds. Its window: a caller descheduled between its write's reply and
    /// its arm while a resync's snapshot, slowed by a latency fault, is in flight (R3; rmapclock
    /// seed 36, 2 of 0..150; never in rmap or rmapae 0..150).
    MC422,
    /// A completer run's intake bounded by its batch size while the run announces (and its
    /// config holds) the larger backlog: producers wait for room with the backlog a fraction
    /// full, so a pool's workers stall on every burst (round 46; V48, judged at each wait).
    MC424,
    /// A lease acquisition cut by the owner's own stop reported as the store timing out
    /// (`acquire_failed` with a timeout short of the op timeout, counted in the error run and
    /// logged as a store error at a graceful stop): keel before round 46 (S42).
    MC423,
    /// The default backlog cut down to a larger batch size instead of raised to it (`min` for
    /// `max`; hunt 44 A #23, left then as no event carried the backlog): a completer built with
    /// defaults queues one batch at most (round 46; V28, now judging the announced backlog).
    MC425,
    /// A pool node's store calls cut on the runtime's timer instead of the node's clock (the
    /// completer's MC289 and the map's MC288, in the pool's `Core::op`): on a node whose clock
    /// runs slow every call gives up before its op timeout has passed on that clock, and the
    /// node's completions, requeues and resyncs fail against a store that would have answered
    /// (round 46; P97).
    MC328,
    /// A pool node's completion wait whose drop leaves its registration behind: a `wait_for` or
    /// `dispatch_and_wait` given up (a node stop, a caller's timeout, the completion found in the
    /// store) stays counted against `max_waiters` and holds its reply slot until the job
    /// completes, for good if it never does (blind-spot hunt, round 42, A #17; P77, judged at
    /// each wait's return).
    MC399,
    /// A worker slot whose restart backoff does not listen for the slot's stop: a node stopped
    /// while a dead worker waits for its replacement ends the slot only once the backoff ran
    /// out, up to `restart_max` later, and its stop waits for it (blind-spot hunt, round 42,
    /// A #21; P78, judged at each slot's end after its node's stop).
    MC400,
    /// A pool node's router whose load index does not take a job record's deletion (the job
    /// completed, or its record went): the job stays counted against its last owner until the
    /// next sweep replaces the index, so a worker that just finished jobs looks busy and picks
    /// skew away from it by up to a sweep period's completions, which P59's slack of 8 jobs hides
    /// (blind-spot hunt, round 43, B #1; P83, the index checked against the job table after
    /// each change of the router).
    MC413,
    /// A pool node that notes its own dispatch's or move's pick in its load index after the
    /// router already took the write's change and a later one of the job (a quick job completed
    /// before the dispatch's reply came home): the completed job is put back, counted against
    /// its worker until the next sweep replaces the index (keel's own until round 43, found by
    /// P83 in blind-spot hunt round 43, B; 163 times in poolfeed seeds 0..200).
    MC414,
    /// A cleaner's requeue that reads the store error's class backwards: a transient error (a
    /// timeout, a refusal while the store loads, a lost connection) ends the requeue, and the
    /// dead worker's cleanup with it, at its first try, so the worker's jobs wait a sweep or more
    /// for the next cleanup, while a permanent one is retried to the last try (blind-spot hunt,
    /// round 43, A #4; E9, judged at each requeue given up or retried).
    MC401,
    /// A replicated map's write cut at its op timeout and reported as not applied (an
    /// `Unavailable` error: the call never left) instead of a timeout: the request went out and
    /// may have applied, so a caller that retries only what did not apply, or that takes the key
    /// as unchanged, is misled (blind-spot hunt, round 43, A #52; R32, judged at each plain write
    /// of the rmap scenario's writer that failed not applied).
    MC402,
    /// A pool start's "still waiting" warning paced from the start's beginning instead of the
    /// last warning: once the first `START_LOG_EVERY` is over, every retry of a store that is
    /// slow to come back warns again, flooding the operator's log (blind-spot hunt, round 43,
    /// A #65; P79, judged at each `start_waiting`).
    MC403,
    /// A pool start's backoff capped at the keep-alive interval instead of the sweep interval:
    /// the wrong setting read, announced and used alike, so a node whose store is back waits
    /// up to a keep-alive interval (three times the sweep's default) before it starts (blind-spot
    /// hunt, round 43, A's leftover, planted again in round 44, A #1; P67 judges the announced
    /// cap and agrees with it; P80 judges the announcement against the settings).
    MC404,
    /// `PoolConfig`'s default `cleanup_retries` backoff capped at a whole sweep interval instead
    /// of half of one: every requeue, completion and completer write of a pool left at its
    /// defaults retries up to twice as slowly (blind-spot hunt, round 44, A #2; P31, P26 and V16
    /// judge the announced cap; P80 the default).
    MC405,
    /// A pool's completer flushing every ttl/20 clamped at 500 ms instead of 50 ms: completion
    /// events of a pool with a long TTL reach their subscribers up to half a second late (hunt
    /// round 44, A #5; the completer's rules judge the announced period; P80 the pool's).
    MC406,
    /// A cleaner's requeue backoff capped at the sweep interval instead of `cleanup_backoff`'s
    /// max: a dead worker's jobs wait twice as long between tries (round 44, A #9; P31 judges
    /// the announced cap; P80 the setting).
    MC407,
    /// A run's completion retried with its backoff capped at the keep-alive interval instead of
    /// `cleanup_backoff`'s max (round 44, A #10; P26 judges the announced cap; P80 the setting).
    MC408,
    /// A worker's registration backoff starting at `cleanup_backoff`'s max instead of its min:
    /// a registration that fails once waits longer than configured (round 44, A #11; P24 judges
    /// the announced floor; P80 the setting).
    MC409,
    /// A pool node's keep-alive follower retrying a failed snapshot after a sweep interval
    /// instead of a keep-alive interval (round 44, A #12; P69 judges the announced wait; P80
    /// the setting).
    MC410,
    /// `PoolConfig`'s default `worker_restart` cap half a TTL instead of a TTL: replacements of
    /// dying workers come twice as fast as documented (round 44, A #17; P22 judges the announced
    /// policy; P80 the default).
    MC411,
    /// A completer's default store map named `{name}:completion` instead of
    /// `{name}:completions`: a pool's completions land in a map no reader of the pool's layout
    /// (`inspect`, the sweep's retention of completer entries, an operator) looks at, and every
    /// rule that reads back through the completer agrees with it (blind-spot hunt, round 44,
    /// A #15; V43, judged on the store's maps after quiescence).
    MC412,
    /// A completer run that makes its backlog's room when it takes a batch from the intake, not
    /// once the batch's flush is written and its events handed on: the bound no longer counts the
    /// batch in flight, so producers are accepted past it by up to a batch (blind-spot hunt,
    /// round 4, second half, #7: V7 trusted the backlog the intake reports, which is the count
    /// the bug gets wrong).
    MC40,
    /// A completer flush whose backoff between retries of a failed write does not listen for the
    /// stop: the drain begins only when the backoff ends, up to `retry_max` after the request
    /// (blind-spot hunt, round 4, second half, #8: V4's bounds have room for it).
    MC41,
    // Seed bugs re-injected (issue #10 item 6, helper "seeds"): each re-injects the mechanism of a
    // production bug of the seeds' projects at the place keel's design has the same mechanism.
    /// pulse #74: dispatch admission through a stale read. Whether the job already runs is read
    /// from the node's cached view (the load index, fed by the job feed and the sweeps), and the
    /// store guards only the pending "starting" entry: a node whose view lags admits a job that
    /// is running (acked, so no pending entry) a second time.
    MP15,
    /// pulse #87: a repeated delivery of a job the worker already runs is started again; the
    /// duplicate start fails and the failed-start cleanup deletes the job's record (its ownership
    /// and payload) while the first handler still runs: the job is lost.
    MP16,
    /// River: the subscription manager hands each event to each subscriber with a send that
    /// waits for room (Go's blocking `sub.listenChan <- event`; here `send().await`), instead of
    /// dropping and counting on a full buffer. One subscriber that stops reading stalls delivery
    /// to every other subscriber, backs the completer's channel up, and holds the manager's stop
    /// (its drain bound cannot fire while the manager waits inside the send) for as long as the
    /// subscriber does not read: forever if the subscriber waits for that stop.
    MR6,
    // Model-checking and linearizability (issue 15): keep this block last and contiguous.
    /// MemoryStore applies a map write as read, yield, unconditional write: not atomic.
    MM1,
}

#[cfg(feature = "mutants")]
std::thread_local! {
    static ACTIVE: std::cell::Cell<Option<Mutant>> = const { std::cell::Cell::new(None) };
}

/// Whether `m` is switched on for the current thread.
#[inline(always)]
pub fn active(m: Mutant) -> bool {
    #[cfg(feature = "mutants")]
    {
        ACTIVE.with(|a| a.get() == Some(m))
    }
    #[cfg(not(feature = "mutants"))]
    {
        let _ = m;
        false
    }
}

/// Switch on `m` (or none) for the current thread. Returns the previous switch.
#[cfg(feature = "mutants")]
pub fn set(m: Option<Mutant>) -> Option<Mutant> {
    ACTIVE.with(|a| a.replace(m))
}
