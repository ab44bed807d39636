//! The mutant zoo: every historical bug, where it comes from, and the scenario that must catch it.

use keel::mutants::Mutant;

/// One entry of the zoo.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    /// The mutant.
    pub mutant: Mutant,
    /// Where the bug comes from.
    pub lineage: &'static str,
    /// The scenario that must catch it (`loom` = caught by the loom lane, not by a scenario).
    pub scenario: &'static str,
    /// Seeds tried before the mutant is declared escaped.
    pub budget: u64,
}

/// Scenario name of mutants caught by the loom lane (`cargo loomtest`) instead of a simulation.
pub const LOOM: &str = "loom";

/// Scenario name of mutants caught by the exhaustive models (`cargo modelcheck`) instead of a
/// simulation: their window is one the seeded sweeps reach too rarely to budget for.
pub const MODEL: &str = "model";

/// Scenario name of mutants caught by their fault plan in the regression corpus
/// (`sim/regressions/<id>.json`, judged by every `cargo sim check`): their window is one a
/// seeded sweep reaches once in hundreds of seeds, too rarely to budget for.
pub const CORPUS: &str = "corpus";

impl Entry {
    /// Whether a seeded sweep of a simulated scenario catches it (not the loom lane, the models
    /// or the corpus).
    pub fn simulated(&self) -> bool {
        self.scenario != LOOM && self.scenario != MODEL && self.scenario != CORPUS
    }
}

/// Every mutant with a scenario that exists in this build.
pub const ZOO: &[Entry] = &[
    Entry {
        mutant: Mutant::MS1,
        lineage: "Sequin #2072: MutexOwner crashes on a transient Redis error; the one-for-all supervisor cascade takes the runtime down",
        scenario: "lease",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MS2,
        lineage: "Sequin PR #2131 v1: 5 errors at the keep interval (0.8 ttl), believing past the TTL, then the crash cascade",
        scenario: "lease",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MS3,
        lineage: "Sequin PR #2131 final: backoff ttl*2^n capped at 1 h, no step-down",
        scenario: "lease",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MS4,
        lineage: "guarded work started before renewal is armed (slow start-up)",
        scenario: "lease",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MS5,
        lineage: "release by plain DEL (Redlock-style unlock without token check)",
        scenario: "lease",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MS6,
        lineage: "demotion leaves the old renew timer alive (silent re-acquire)",
        scenario: "lease",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MS7,
        lineage: "Sequin MutexOwner: a keep call (Redix command) hangs past the lock expiry while the owner believes",
        scenario: "lease",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MS8,
        lineage: "Sequin Mutex.acquire_or_touch: SET of a vanished key for whoever comes first, no quarantine after data loss",
        scenario: "lease",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MP1,
        lineage: "pulse rmap ichan: one shared bounded(100) channel sent to under the map lock",
        scenario: "rmap",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MP11,
        lineage: "pulse rmap: no resync after a feed reconnect (changes in the gap lost)",
        scenario: "rmap",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MP2,
        lineage: "pulse #62: waiter closes its channel on exit while the apply loop may still send",
        scenario: LOOM,
        budget: 0,
    },
    Entry {
        mutant: Mutant::MP3,
        lineage: "pulse rmap: blocking send to a waiter that stopped receiving",
        scenario: LOOM,
        budget: 0,
    },
    Entry {
        mutant: Mutant::MR1,
        lineage: "River #400: completer bound to the caller's cancellation (drains, its bound running, while producers finish)",
        scenario: "completer",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MR3,
        lineage: "River #379 review: subscription manager returns on cancel without draining",
        scenario: "completer",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MR4,
        lineage: "River #258/#379: services stopped in parallel (the completer drains while its producers still stop)",
        scenario: "completer",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MR6,
        lineage: "River: the subscription manager sends each event to each subscriber with a send that waits for room; one subscriber that stops reading stalls every other one and the manager's stop",
        scenario: "completer",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MR5,
        lineage: "River #379: channel closed by a detached goroutine after a restart reassigned it (also caught by the loom lane)",
        scenario: "completer",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MP4,
        lineage: "pulse before PR #51: the stale keep-alive moved to last-seen + ttl as the cleanup claim (the dead worker looks alive; the claim expires mid-cleanup and another cleaner claims it too)",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MP6,
        lineage: "pulse PR #51: worker goroutines bound to the caller's context",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MP7,
        lineage: "pulse PR #51: stale scan of the keep-alive map only (orphaned jobs)",
        scenario: "pool",
        budget: 100,
    },
    Entry { mutant: Mutant::MP8, lineage: "pulse PR #51: no stale-pending sweeper", scenario: "pool", budget: 100 },
    Entry {
        mutant: Mutant::MP9,
        lineage: "pulse PR #51: stale cleanup-lock takeover by delete-then-set",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MP10,
        lineage: "pulse #61: a closing node removes its workers (and their jobs) from the maps before requeueing the jobs from memory",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC1,
        lineage: "a renewal that does not compare the token (bare PEXPIRE): fires the store's lease judge",
        scenario: "lease",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC2,
        lineage: "fence counter restarted from zero after data loss (bare INCR): fences go backwards",
        scenario: "lease",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC3,
        lineage: "set_and_wait waiter woken one revision early: returns before its write is applied",
        scenario: "rmap",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC4,
        lineage: "stale feed change applied without a revision compare: the replica goes back",
        scenario: "rmap",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC5,
        lineage: "completer intake that never has room: nothing is accepted (passed every older invariant)",
        scenario: "completer",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC6,
        lineage: "completer intake that ignores its backlog bound",
        scenario: "completer",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC7,
        lineage: "completer stop that gives up at once and reports its bound reached",
        scenario: "completer",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC8,
        lineage: "pending sweeper without the deadline compare: re-dispatch inside the ack grace",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC9,
        lineage: "guard validity as a flag the driver clears: a holder resumed past its deadline writes as holder",
        scenario: "lease",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC10,
        lineage: "graceful worker stop that leaves its handlers running: the pool says stopped, handlers run on",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC11,
        lineage: "lifecycle stop that cancels and returns without waiting for the run to exit",
        scenario: "completer",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC12,
        lineage: "map follower forwarding stale (skipped) feed changes to its subscribers",
        scenario: "rmap",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC13,
        lineage: "a set_and_wait cancelled before its write was acknowledged leaves its waiter registered",
        scenario: "rmap",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC14,
        lineage: "a lease client that times its grant from the reply instead of the request (Kleppmann's Redlock analysis): belief outlives the store's grant by the round trip",
        scenario: "lease",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC15,
        lineage: "a pool worker that times its self-fence from the beat's reply instead of its send: it runs on after cleaners may judge it dead",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC16,
        lineage: "checker proof (blind-spot hunt): a flush that counts a timed-out batch write as written emits events for completions the store may not hold",
        scenario: "completer",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC17,
        lineage: "checker proof (blind-spot hunt): a map subscription that drops a change on a full buffer without counting it",
        scenario: "rmap",
        budget: 50,
    },
    Entry {
        mutant: Mutant::MC20,
        lineage: "checker proof (blind-spot hunt): a service group's stop that returns at the first stop error, leaving later services running",
        scenario: "completer",
        budget: 200,
    },
    Entry {
        mutant: Mutant::MC19,
        lineage: "checker proof (blind-spot hunt): a map resync that repairs its replica without handing the differences to subscribers",
        scenario: "rmap",
        budget: 50,
    },
    Entry {
        mutant: Mutant::MC18,
        lineage: "checker proof (blind-spot hunt): a lease owner's shutdown that releases before stopping its work: belief and work outlive the grant",
        scenario: "lease",
        budget: 200,
    },
    Entry {
        mutant: Mutant::MC26,
        lineage: "checker proof (blind-spot hunt): a completer stop whose bound ran out drops the completions still queued without reporting them",
        scenario: "completer",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC27,
        lineage: "a completion feed whose reconcile floor rises within one snapshot: a node cut off longer than the horizon never gets what it missed (found by P10)",
        scenario: "poolfeed",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC29,
        lineage: "keel's own (found by the roll-back fault): a store restart that rolled back its last grants is not quarantined, and a lost grant's fence is minted again",
        scenario: "lease",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC30,
        lineage: "keel's own (found by the roll-back fault): a store restart that rolled back a map's last revisions does not re-seed its counter, and new changes take lost revisions again",
        scenario: "rmap",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC31,
        lineage: "checker proof (blind-spot hunt, round 4): a lease owner's graceful stop that rotates its token before the release: the release removes nothing, the grant lingers to its TTL",
        scenario: "lease",
        budget: 200,
    },
    Entry {
        mutant: Mutant::MC32,
        lineage: "checker proof (blind-spot hunt, round 4): a guard's lost() that waits for the deadline it first read, forgetting renewals: guarded work stops under a valid grant",
        scenario: "lease",
        budget: 200,
    },
    Entry {
        mutant: Mutant::MC37,
        lineage: "checker proof (blind-spot hunt, round 4): a lifecycle stop called while another stop of the run waits returns at once, before the run exited",
        scenario: "completer",
        budget: 200,
    },
    Entry {
        mutant: Mutant::MC40,
        lineage: "checker proof (blind-spot hunt, round 4, second half, #7): a completer run that makes room as it takes a batch: producers accepted past the bound by up to a batch",
        scenario: "completer",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC41,
        lineage: "checker proof (blind-spot hunt, round 4, second half, #8): a retry's backoff that does not listen for the stop: the drain begins only when the backoff ends",
        scenario: "completer",
        budget: 200,
    },
    Entry {
        mutant: Mutant::MC33,
        lineage: "checker proof (blind-spot hunt, round 4): the store answers a re-acquire by the holder's token Granted without refreshing the expiry: the owner's belief outlives the grant",
        scenario: "lease",
        budget: 200,
    },
    Entry {
        mutant: Mutant::MC34,
        lineage: "checker proof (blind-spot hunt, round 4): a joining replica that reads its snapshot before it opens the watch misses the changes between the two until a revision jump",
        scenario: "rmap",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC42,
        lineage: "checker proof (blind-spot hunt, round 4): a full subscriber skips the rest of a batch (a resync's differences) and counts one drop",
        scenario: "rmap",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC43,
        lineage: "keel's own (found when the caller's R3 check went strict under data loss): set_and_wait calls a write lost in a store restart applied, since the revisions seeded after the restart are above it",
        scenario: "rmap",
        budget: 300,
    },
    Entry {
        mutant: Mutant::MC44,
        lineage: "keel's own (found at rmap seed 2016 of a 3000-seed sweep): a resync keeps its feed across failed snapshots; after a roll-back the feed's changes of the lost history are applied on the restored snapshot",
        scenario: "rmap",
        budget: 2100,
    },
    Entry {
        mutant: Mutant::MC45,
        lineage: "keel's own (found by the rmap model with store roll-backs): a replica that loaded a snapshot taken after a restart, before the next commit, applies its old feed's changes of the lost history",
        scenario: MODEL,
        budget: 0,
    },
    Entry {
        mutant: Mutant::MC46,
        lineage: "keel's own (found by P14 at poolfeed seed 57): a completion knows its landed earlier try only by the exact tombstone; re-injected with each retry stamping afresh (blind-spot hunt, round 5, #20)",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC47,
        lineage: "checker proof (blind-spot hunt, round 5, #7): a drain's store write not cut at the stop bound runs to its op timeout, past the bound",
        scenario: "completer",
        budget: 200,
    },
    Entry {
        mutant: Mutant::MC48,
        lineage: "checker proof (blind-spot hunt, round 5, #11): a flush's success does not reset its retry backoff: later errors back off at their longest, later batches are reported retried",
        scenario: "completer",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC49,
        lineage: "checker proof (blind-spot hunt, round 5, rmap #3): a replica's load does not publish its revision to the waiters; a set_and_wait whose write the snapshot holds parks until the next change",
        scenario: "rmap",
        budget: 300,
    },
    Entry {
        mutant: Mutant::MC50,
        lineage: "checker proof (blind-spot hunt, round 5, lease #22): Guard::lost() deaf to the owner's step-down, complete only at the local deadline",
        scenario: "lease",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC51,
        lineage: "checker proof (blind-spot hunt, round 5, lease #19): a lease owner's wait between steps does not listen for the stop; the stop and the release wait for it",
        scenario: "lease",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC52,
        lineage: "checker proof (blind-spot hunt, round 5, completer #14): a drain gives a batch up at its first failed write, with most of the stop's bound left",
        scenario: "completer",
        budget: 200,
    },
    Entry {
        mutant: Mutant::MC53,
        lineage: "checker proof (blind-spot hunt, round 5, lease #3): a stop that cuts an acquire of unknown outcome does not release its token; a landed grant blocks the others for a TTL",
        scenario: "lease",
        budget: 300,
    },
    Entry {
        mutant: Mutant::MC54,
        lineage: "checker proof (blind-spot hunt, round 6, #9): a re-dispatch that does not exclude the worker that did not acknowledge the job, which often gets it back",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC55,
        lineage: "checker proof (blind-spot hunt, round 6, #1): a re-dispatch not guarded by the pending entry it read moves a job whose ack just landed; the job runs twice",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC56,
        lineage: "checker proof (blind-spot hunt, round 6, #12): a cleanup that takes the dead worker's jobs from the sweep's view misses those given to it before its fence",
        scenario: "pool",
        budget: 300,
    },
    Entry {
        mutant: Mutant::MC57,
        lineage: "checker proof (no scenario subscribed to a node's completion events): a run publishes its event when its handler completed, whether or not the store recorded the completion",
        scenario: "poolfeed",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC58,
        lineage: "checker proof (blind-spot hunt, round 7, #10): a lifecycle start that finds a stop under way does nothing, and returns with the service not running",
        scenario: "completer",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC59,
        lineage: "checker proof (blind-spot hunt, round 7, #9): a draining completer writes its partial batch only at the next flush tick",
        scenario: "completer",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC60,
        lineage: "checker proof (blind-spot hunt, round 7, #6): a replicated map's retry backoff sleeps through the map's stop",
        scenario: "rmap",
        budget: 200,
    },
    Entry {
        mutant: Mutant::MC61,
        lineage: "checker proof (blind-spot hunt, round 7, #2): a lease owner steps down at its deadline without releasing the grant's token; a grant whose renewals landed blocks every node for a TTL",
        scenario: "lease",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC62,
        lineage: "checker proof (blind-spot hunt, round 7, #1): a lease acquisition of unknown outcome taken as refused; a grant that landed is orphaned",
        scenario: "lease",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC63,
        lineage: "checker proof (blind-spot hunt, round 7, #13): a refused lease acquisition waits the holder's whole remaining TTL, not a poll; a release is seen a TTL late",
        scenario: "lease",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC64,
        lineage: "checker proof (blind-spot hunt, round 7, #3): a lease renewal that keeps the store-error count; the next failure backs off as the old streak's next",
        scenario: "lease",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC65,
        lineage: "checker proof: a lease renewal period counted from the reply, not the send (a loop that sleeps a period after each call); each renewal slips by its round trip",
        scenario: "lease",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC66,
        lineage: "checker proof: a lease acquisition error retried at once (a retry loop that continues on an error): a store outage meets a retry storm",
        scenario: "lease",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC67,
        lineage: "checker proof (blind-spot hunt, round 8, #11): a completer flush reads its retried flag after the success reset it; retries are never reported",
        scenario: "completer",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC68,
        lineage: "checker proof (blind-spot hunt, round 8, #1): a pool cleanup that takes a refused fence for a fenced worker; a live worker's jobs are moved",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC69,
        lineage: "checker proof (blind-spot hunt, round 8, #14): a completer flush tick re-armed from the instant read before the write; partial batches go out back to back when the store is slow",
        scenario: "completer",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC70,
        lineage: "checker proof (blind-spot hunt, round 8, #5): a pool worker's drain ends only at its bound, with no run left; every graceful stop takes the whole shutdown deadline",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC71,
        lineage: "keel's own (found by P20 at pool seed 774): a worker registration that writes its keep-alive unconditionally revives a worker a cleaner fenced mid-registration",
        scenario: CORPUS,
        budget: 1,
    },
    Entry {
        mutant: Mutant::MC72,
        lineage: "checker proof: a worker slot whose restart backoff never starts over after a long life; a healthy worker's replacement waits out every earlier death's doubling",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC73,
        lineage: "checker proof: a worker slot that counts the restart backoff from the dead incarnation's start; a long-lived worker is replaced at once (a restart storm)",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC74,
        lineage: "checker proof (blind-spot hunt, round 9, #2): a replica's load that diffs keys only; a value repaired by a resync never reaches the subscribers",
        scenario: "rmap",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC75,
        lineage: "checker proof (blind-spot hunt, round 9, #11): a lifecycle whose start while running spawns a second run beside the first",
        scenario: "completer",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC76,
        lineage: "checker proof (blind-spot hunt, round 9, #7): a lease release that errored or timed out reported released",
        scenario: "lease",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC77,
        lineage: "keel's own (found by R3 on MC44's re-shrunk corpus plan): a set_and_wait armed after its replica loaded a snapshot past its write calls a write a store restart lost applied",
        scenario: CORPUS,
        budget: 1,
    },
    Entry {
        mutant: Mutant::MC78,
        lineage: "checker proof (blind-spot hunt, round 9, #16): a completer's drain done on an empty backlog with producers still registered",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC79,
        lineage: "checker proof (blind-spot hunt, round 9, #8): a lease driver that reports its guarded work stopped before the work ended",
        scenario: "lease",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC80,
        lineage: "checker proof (blind-spot hunt, round 9, #1): a waiter whose write is exactly the snapshot's revision told DataLost",
        scenario: "rmap",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC81,
        lineage: "checker proof (blind-spot hunt, round 9, #3): a replica's restart flag that outlives the load that cleared it: a resync per change",
        scenario: "rmap",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC82,
        lineage: "checker proof (blind-spot hunt, round 10, #6): a lost connection classified as a permanent store error",
        scenario: "lease",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC83,
        lineage: "checker proof (blind-spot hunt, round 10, #13): a completer retry backoff jittered down to nothing",
        scenario: "completer",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC84,
        lineage: "checker proof (blind-spot hunt, round 10, #15): a completer retry backoff that doubles past retry_max",
        scenario: "completer",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC85,
        lineage: "checker proof (blind-spot hunt, round 10, #17): a worker's first beat a worker TTL after registering",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC86,
        lineage: "checker proof (blind-spot hunt, round 10, #14): a completer that holds a full batch to the flush tick",
        scenario: "completer",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC87,
        lineage: "checker proof (blind-spot hunt, round 11, #18): a completer that registers producers after its drain began",
        scenario: "completer",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC88,
        lineage: "checker proof (blind-spot hunt, round 11, #17): a producer leaving does not wake the completer's drain",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC89,
        lineage: "checker proof (blind-spot hunt, round 11, #13): a load index whose counts survive the sweep's snapshot",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC90,
        lineage: "checker proof (blind-spot hunt, round 11, #2): a replicated map's watch backoff starting at nothing",
        scenario: "rmap",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC91,
        lineage: "checker proof (blind-spot hunt, round 11, #1): a replicated map's retry backoff doubling past retry_max",
        scenario: "rmap",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC92,
        lineage: "checker proof (blind-spot hunt, round 11, #4): a replicated map whose stop leaves its subscriptions open",
        scenario: "rmap",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC93,
        lineage: "checker proof (blind-spot hunt, round 11, #5): a subscription manager's drain bound counted from its run's start",
        scenario: "completer",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC94,
        lineage: "checker proof (blind-spot hunt, round 11, #11): a worker's registration retries doubling past the keep-alive interval",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC95,
        lineage: "checker proof (blind-spot hunt, round 11, #20): a worker that retries a failed registration at once",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC96,
        lineage: "checker proof (blind-spot hunt, round 12, #1): a lease owner whose renewals do not extend its guards' deadline",
        scenario: "lease",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC97,
        lineage: "checker proof (blind-spot hunt, round 12, #17): a worker that retries a failed completion at once",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC98,
        lineage: "checker proof (the pool router's feed holes, round 12 #18): a store whose batched transactions publish only the last one's changes",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC99,
        lineage: "keel's own (found 2026-12-03 by P10, poolfeed seed 106): a late feed change behind the reconcile that delivered and forgot it, delivered again",
        scenario: CORPUS,
        budget: 1,
    },
    Entry {
        mutant: Mutant::MC100,
        lineage: "keel's own (found 2026-12-03 by P20, poolfeed seed 1463): a cleanup that takes a missing keep-alive for a fence moves the jobs of a worker that registered meanwhile",
        scenario: CORPUS,
        budget: 1,
    },
    Entry {
        mutant: Mutant::MC101,
        lineage: "checker proof (blind-spot hunt, round 13, #1): a store whose renewal matches the token, not the grant's expiry: an expired grant revived",
        scenario: "lease",
        budget: 200,
    },
    Entry {
        mutant: Mutant::MC102,
        lineage: "checker proof (blind-spot hunt, round 13, #15): a draining worker's hand-back that may pick the worker itself",
        scenario: "pool",
        budget: 200,
    },
    Entry {
        mutant: Mutant::MC103,
        lineage: "checker proof (blind-spot hunt, round 13, #10): a replica's load that never takes its revision back past a store roll-back",
        scenario: "rmap",
        budget: 200,
    },
    Entry {
        mutant: Mutant::MC104,
        lineage: "checker proof (blind-spot hunt, round 13, #9): the waiters' applied revision never taken back by a load past a store roll-back",
        scenario: "rmap",
        budget: 200,
    },
    Entry {
        mutant: Mutant::MC105,
        lineage: "checker proof (blind-spot hunt, round 13, #4): a lease grant believed for its whole TTL, the drift margin left out",
        scenario: "lease",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC106,
        lineage: "checker proof (blind-spot hunt, round 13, #19): a run's exit that does not wake the lifecycle's started()/stopped() waiters",
        scenario: "completer",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC107,
        lineage: "checker proof (blind-spot hunt, round 13, #18): a group's failed start that stops the services never started, not those it started",
        scenario: "completer",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC108,
        lineage: "checker proof (blind-spot hunt, round 13, #17): a group that starts its services in declared order, producers before their completer",
        scenario: "completer",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC109,
        lineage: "checker proof (blind-spot hunt, round 13, #8): a replicated map's anti-entropy timer that starts over at every feed event, so a busy map never checks itself",
        scenario: "rmapae",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC110,
        lineage: "checker proof (blind-spot hunt, round 14, #15): a group stop that returns the last service's result, an earlier stop error lost behind an Ok",
        scenario: "completer",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC111,
        lineage: "checker proof (blind-spot hunt, round 14, #14): a lease owner's store-error count never reset, so every success after an error reports a recovery",
        scenario: "lease",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC112,
        lineage: "checker proof (blind-spot hunt, round 14, #10): a dispatch's ack deadline counted with the worker TTL, not the ack grace",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC113,
        lineage: "checker proof (blind-spot hunt, round 14, #19): a pool router's failed resync of its table retried at once, not a sweep interval later",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC114,
        lineage: "checker proof (blind-spot hunt, round 14, #25): a pool node that never writes the epoch marker, so no node reports a store data loss",
        scenario: "poolloss",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC115,
        lineage: "checker proof (blind-spot hunt, round 14, #4): a completer intake's close that does not wake the producers waiting for room: one parked on a full backlog at the stop's bound waits forever",
        scenario: "completer",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC116,
        lineage: "checker proof (blind-spot hunt, round 11, #12): a cleaner's failed requeue of a dead worker's job retried at once, its backoff skipped",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC117,
        lineage: "checker proof (blind-spot hunt, round 15, #1): a pool router's failed resync retried after the cleanup backoff's floor, announced as its wait, not after its sweep interval",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC118,
        lineage: "checker proof (blind-spot hunt, round 15, #8): a cleaner's requeue that makes one try more than cleanup_retries",
        scenario: "pool",
        budget: 300,
    },
    Entry {
        mutant: Mutant::MC119,
        lineage: "checker proof (blind-spot hunt, round 15, #19): a lease owner's successful acquisition that does not end its run of store errors",
        scenario: "lease",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC120,
        lineage: "checker proof (blind-spot hunt, round 15, #16): an rmap anti-entropy resync reported with reason gap",
        scenario: "rmapae",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC121,
        lineage: "checker proof (blind-spot hunt, round 15, #7): a move that deletes the job's pending entry instead of writing its new owner's",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC122,
        lineage: "checker proof (blind-spot hunt, round 15, #22): a dispatch that says its pending entry is written before its transaction",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC123,
        lineage: "checker proof (blind-spot hunt, round 15, #5): a router's wait between resync tries deaf to the node's stop",
        scenario: "pool",
        budget: 200,
    },
    Entry {
        mutant: Mutant::MC124,
        lineage: "checker proof (blind-spot hunt, round 15, #26): on a hole in its feed, a router that tries one resync, silently, and goes back to its feed",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC125,
        lineage: "checker proof (blind-spot hunt, round 15, #17): a lease's store-error log whose count since the last summary is never reset",
        scenario: "lease",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC126,
        lineage: "checker proof (blind-spot hunt, round 15, #18): a lease's store-error log that never records its warn time: a warn line per error",
        scenario: "lease",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC127,
        lineage: "checker proof (blind-spot hunt, round 16, part A #12): a refused renewal's step-down reported as a deadline",
        scenario: "lease",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC128,
        lineage: "checker proof (blind-spot hunt, round 16, part A #8): a replica load that keeps its old seedings, not the snapshot's",
        scenario: "rmap",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC129,
        lineage: "checker proof (blind-spot hunt, round 16, part B #18): a dead worker's replacement that keeps the dead incarnation's id",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC130,
        lineage: "checker proof (blind-spot hunt, round 16, part A #3): a refused write's outcome without the value that refused it",
        scenario: "rmap",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC131,
        lineage: "checker proof (blind-spot hunt, round 16, part A #14): a lease guard valid from its publication plus the TTL, not to the owner's deadline",
        scenario: "lease",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC132,
        lineage: "keel's own (found 2026-12-04 by S16, lease seed 3260): a renewal answered past the deadline, after a freeze, extends the belief a guard already read lost",
        scenario: CORPUS,
        budget: 1,
    },
    Entry {
        mutant: Mutant::MC133,
        lineage: "checker proof (blind-spot hunt, round 16, part B #3): a worker's completion that makes one try fewer than cleanup_retries before it gives up",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC134,
        lineage: "checker proof (blind-spot hunt, round 16, part B #3): a worker's completion that makes one try more than cleanup_retries",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC135,
        lineage: "checker proof (blind-spot hunt, round 16, part B #17): a cleanup that finds the worker alive on its fresh re-read ends without releasing its cleanup lock",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC136,
        lineage: "checker proof (blind-spot hunt, round 16, part B #14): a completer stop that reads the run's report before waiting for the run to exit",
        scenario: "completer",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC138,
        lineage: "checker proof (blind-spot hunt, round 16, part B #14's rule, unmutated): a completer stop that returns the last run's report, not its own run's",
        scenario: "completer",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC137,
        lineage: "checker proof (blind-spot hunt, round 16, part B #7): an in-doubt beat value adopted but not stored as the worker's last keep-alive",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC139,
        lineage: "checker proof (blind-spot hunt, round 16, part B #1): a worker that stops its run only when the job's record is gone, not when it moved to a newer attempt elsewhere",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC140,
        lineage: "checker proof (blind-spot hunt, round 16, A #18): a store whose snapshots never say it restarted since the map's last commit",
        scenario: "rmap",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC141,
        lineage: "checker proof (blind-spot hunt, round 16, A #5): a store whose watch of a map replaces the map's feed, silencing the older watches",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC142,
        lineage: "checker proof (blind-spot hunt, round 17, A #16): a lease holder's wait between steps not cut at its deadline",
        scenario: "lease",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC143,
        lineage: "checker proof (blind-spot hunt, round 17, B #11): a run asked to stop while its ack was in flight starts its handler anyway",
        scenario: "pool",
        budget: 240, // first caught at pool seed 212: a record moving on during an ack is rare
    },
    Entry {
        mutant: Mutant::MC144,
        lineage: "checker proof (blind-spot hunt, round 17, B #25): a group commit's call slot released when its flush is spawned, not when it ends",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC145,
        lineage: "checker proof (blind-spot hunt, round 17, B #14): inspect reports a pending dispatch's time left as its time overdue",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC146,
        lineage: "checker proof (blind-spot hunt, round 17, B #20): a failed group start that stops what it started in start order",
        scenario: "completer",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC147,
        lineage: "checker proof (blind-spot hunt, round 17, B #6): a cleanup lock written to live a worker TTL, not cleanup_lock_ttl",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC148,
        lineage: "checker proof (blind-spot hunt, round 17, A #10): a set_and_wait's DataLost names its write's revision, not the replica's",
        scenario: "rmap",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC149,
        lineage: "checker proof (coverage of the lease scenario): a guarded work's restart backoff that never grows",
        scenario: "lease",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC150,
        lineage: "checker proof (keel's own bug of round 17): the lease handle reads the published state, its grant not judged",
        scenario: "lease",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC151,
        lineage: "checker proof (coverage of the rmap scenario): joined() returns before the map joined",
        scenario: "rmap",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC152,
        lineage: "checker proof (blind-spot hunt, round 18, B #4): a drained worker's deregistration deletes its keep-alive without comparing",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC153,
        lineage: "checker proof (blind-spot hunt, round 18, B #15): a draining worker still takes job records and starts runs",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC154,
        lineage: "checker proof (blind-spot hunt, round 18, A #25): an owner stepped down at its deadline sits a TTL out before competing",
        scenario: "lease",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC155,
        lineage: "checker proof (blind-spot hunt, round 18, A #27): a lease release that waits a TTL for its reply, not the op timeout",
        scenario: "lease",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MP15,
        lineage: "pulse #74: dispatch admission from the node's cached view plus the pending guard: a lagging node admits a running job again",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MP16,
        lineage: "pulse #87: a repeated delivery started again; the failed duplicate start's cleanup deletes the running job's record",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC21,
        lineage: "checker proof (blind-spot hunt of the pool): a keep-alive judged stale at its last live millisecond (`<=` for `<`): a live worker fenced",
        scenario: "pool",
        budget: 300,
    },
    Entry {
        mutant: Mutant::MC22,
        lineage: "checker proof (blind-spot hunt of the pool): the live test ignores `stopping`: jobs go to draining workers",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC23,
        lineage: "checker proof (blind-spot hunt of the pool, #3): a cleanup requeue that re-reads a changed record and moves it even when it no longer names the cleaned worker",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC24,
        lineage: "checker proof (blind-spot hunt of the pool, #8): a worker that deletes its job's pending entry unguarded before its guarded ack",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC25,
        lineage: "checker proof (blind-spot hunt of the pool, #7): a graceful stop that deregisters when its drain begins: the drain is lost",
        scenario: "pool",
        budget: 50,
    },
    Entry {
        mutant: Mutant::MC35,
        lineage: "checker proof (blind-spot hunt, round 4): a refused beat that adopts an earlier in-doubt keep-alive counted as a confirmation: the fence is extended past the keep-alive the store holds",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC36,
        lineage: "checker proof (blind-spot hunt, round 4): the group commit answers a timed-out batch as refused: a worker takes an unknown outcome for a stale rejection",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC38,
        lineage: "checker proof (blind-spot hunt, round 4, second half, #1): a reconcile slice that confirms a key unchanged without refreshing its stamp: the pass's end drops it, the next pass finds it again",
        scenario: "pool",
        budget: 100,
    },
    Entry {
        mutant: Mutant::MC39,
        lineage: "checker proof (blind-spot hunt, round 4, second half, #6): a graceful worker stop without its immediate stopping beat: the mark waits for the next regular beat",
        scenario: "pool",
        budget: 100,
    },
];

/// Parse a mutant id (`MS3`).
pub fn parse_mutant(s: &str) -> Result<Mutant, String> {
    ZOO.iter().map(|e| e.mutant).find(|m| format!("{m:?}").eq_ignore_ascii_case(s)).ok_or_else(|| {
        let ids: Vec<String> = ZOO.iter().map(|e| format!("{:?}", e.mutant)).collect();
        format!("unknown mutant {s:?}; known: {}", ids.join(", "))
    })
}
