//! Events of replicated maps (target `keel::rmap`).

use std::fmt;

use tracing::{debug, info, trace, warn};

use super::{Field, Text, events};

/// Why a replica loaded a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ResyncReason {
    /// The first load of a fresh replica.
    Join,
    /// The feed reported a gap (reconnect, lag).
    Gap,
    /// A change skipped revisions.
    RevJump,
    /// The periodic anti-entropy check.
    AntiEntropy,
    /// The last snapshot was taken after a store restart, before the map's next commit, and the
    /// feed brought the next revision: possibly a change the restart lost.
    Restart,
}

impl ResyncReason {
    /// Its name in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ResyncReason::Join => "join",
            ResyncReason::Gap => "gap",
            ResyncReason::RevJump => "rev_jump",
            ResyncReason::AntiEntropy => "anti_entropy",
            ResyncReason::Restart => "restart",
        }
    }
}

impl fmt::Display for ResyncReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Field for ResyncReason {
    type Static = ResyncReason;
    fn to_static(&self) -> Self {
        *self
    }
    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

events! {
    /// What a replica did or saw.
    #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
    pub enum RmapEvent<'a> {
        /// The map stopped; `waiters_closed` pending `set_and_wait` calls were woken.
        Stopped { map: Text<'a>, waiters_closed: usize } = "stopped",
        /// The feed reported a gap at local revision `rev`.
        Gap { map: Text<'a>, rev: u64 } = "gap",
        /// A change on the feed skipped revisions: `expected` was next.
        RevJump { map: Text<'a>, expected: u64 } = "gap",
        /// The feed brought revision `rev` after a snapshot the store took since a restart,
        /// before the map's next commit: possibly a change the restart rolled back, from a feed
        /// opened before it. Not applied; the replica resyncs.
        AfterRestart { map: Text<'a>, rev: u64 } = "after_restart",
        /// A change at or below the local revision was skipped.
        Stale { map: Text<'a>, rev: u64 } = "stale",
        /// A change was applied: the local revision is now `rev`.
        Applied { map: Text<'a>, rev: u64 } = "applied",
        /// Change `rev` was handed to the waiters and subscribers: its apply step is over, and the
        /// apply loop reads the feed again. An apply step that does not end keeps every read of
        /// the replica at a stale revision (R1).
        Notified { map: Text<'a>, rev: u64 } = "notified",
        /// A fresh replica loaded its first snapshot; `restarted`: the store took it after a
        /// restart, before the map's next commit (`MapSnapshot::restarted_since_commit`), so no
        /// change of the feed is applied until the next load (R28).
        Joined { map: Text<'a>, rev: u64, keys: usize, restarted: bool } = "joined",
        /// The replica reloaded from a snapshot: from `old_rev` to `rev`; the snapshot's read took
        /// `took_us` of the map's clock (an anti-entropy resync starts with that read: R12);
        /// `restarted` as for `joined`.
        Resynced { map: Text<'a>, reason: ResyncReason, rev: u64, old_rev: u64, changed: usize, woken: usize, took_us: u64, restarted: bool } = "resynced",
        /// The map's apply loop started, with its retry timing: a failed watch open or snapshot
        /// is retried after `retry_min_us`, doubling per failure in a row, at most `retry_max_us`
        /// (R11 judges each retry by it); and its anti-entropy period, `anti_entropy_us` (0: none),
        /// counted from each load (R12); and its store calls' timeout, `op_timeout_us` (a call
        /// cut by it took that long: R24).
        Started { map: Text<'a>, retry_min_us: u64, retry_max_us: u64, anti_entropy_us: u64, op_timeout_us: u64 } = "started",
        /// The feed was opened; the attempt took `took_us` of the map's clock.
        WatchOpened { map: Text<'a>, took_us: u64 } = "watch_opened",
        /// The feed could not be opened (retried); the attempt took `took_us`.
        WatchFailed { map: Text<'a>, error: Text<'a>, took_us: u64 } = "watch_failed",
        /// A snapshot failed (retried); the attempt took `took_us`.
        SnapshotFailed { map: Text<'a>, error: Text<'a>, took_us: u64 } = "snapshot_failed",
        /// A `set_and_wait` returns its write's revision `rev`; the replica is at `local_rev`.
        WaitReturned { map: Text<'a>, rev: u64, local_rev: u64 } = "wait_returned",
        /// A `set_and_wait` registered its waiter, before its write: the map counts it in
        /// `waiters()` until the waiter is armed unparked, woken, cancelled or closed (R27).
        WaiterRegistered { map: Text<'a> } = "waiter_registered",
        /// A `set_and_wait`'s write was acknowledged at `rev` and its waiter armed: `parked` when
        /// the replica had not yet reached `rev` (the call waits for the apply loop), else it
        /// returns at once. A waiter parks only below its replica's revision (R8).
        WaiterArmed { map: Text<'a>, rev: u64, parked: bool } = "waiter_armed",
        /// The apply loop collected a parked waiter of the write at `rev`: the replica reached it
        /// (`lost` false), or a snapshot showed the store lost it. Once the replica holds `rev`,
        /// no waiter of it stays parked (R8).
        WaiterWoken { map: Text<'a>, rev: u64, lost: bool } = "waiter_woken",
        /// A `set_and_wait` was cancelled and its waiter removed: `rev` is its write's revision
        /// when `armed`; `claimed` when the apply loop had already collected it.
        WaiterCancelled { map: Text<'a>, rev: u64, armed: bool, claimed: bool } = "waiter_cancelled",
    }
}

pub(super) fn log(e: &RmapEvent<'_>) {
    use RmapEvent as E;
    const T: &str = "keel::rmap";
    match e {
        E::Stopped { map, waiters_closed } => {
            info!(target: T, map = %map, kind = "stopped", waiters_closed, "replicated map stopped")
        }
        E::Gap { map, rev } => info!(target: T, map = %map, kind = "gap", rev, "feed reported a gap"),
        E::RevJump { map, expected } => {
            info!(target: T, map = %map, kind = "gap", expected, "revision jump on the feed")
        }
        E::AfterRestart { map, rev } => {
            info!(target: T, map = %map, kind = "after_restart", rev, "change after a store restart held back; resyncing")
        }
        E::Stale { map, rev } => trace!(target: T, map = %map, kind = "stale", rev, "stale change skipped"),
        E::Applied { map, rev } => trace!(target: T, map = %map, kind = "applied", rev, "change applied"),
        E::Notified { map, rev } => {
            trace!(target: T, map = %map, kind = "notified", rev, "change handed to waiters and subscribers")
        }
        E::Joined { map, rev, keys, restarted } => {
            info!(target: T, map = %map, kind = "joined", rev, keys, restarted, "replica joined")
        }
        E::Resynced { map, reason, rev, old_rev, changed, woken, took_us, restarted } => {
            info!(target: T, map = %map, kind = "resynced", reason = reason.as_str(), rev, old_rev, changed, woken, took_us, restarted, "replica resynced from a snapshot")
        }
        E::Started { map, retry_min_us, retry_max_us, anti_entropy_us, op_timeout_us } => {
            debug!(target: T, map = %map, kind = "started", retry_min_us, retry_max_us, anti_entropy_us, op_timeout_us, "apply loop started")
        }
        E::WatchOpened { map, took_us } => {
            trace!(target: T, map = %map, kind = "watch_opened", took_us, "feed opened")
        }
        E::WatchFailed { map, error, took_us } => {
            warn!(target: T, map = %map, kind = "watch_failed", error = %error, took_us, "cannot open the feed; retrying")
        }
        E::SnapshotFailed { map, error, took_us } => {
            debug!(target: T, map = %map, kind = "snapshot_failed", error = %error, took_us, "snapshot failed; retrying")
        }
        E::WaitReturned { map, rev, local_rev } => {
            trace!(target: T, map = %map, kind = "wait_returned", rev, local_rev, "set_and_wait returned")
        }
        E::WaiterRegistered { map } => {
            trace!(target: T, map = %map, kind = "waiter_registered", "set_and_wait registered")
        }
        E::WaiterArmed { map, rev, parked } => {
            trace!(target: T, map = %map, kind = "waiter_armed", rev, parked, "set_and_wait armed")
        }
        E::WaiterWoken { map, rev, lost } => {
            trace!(target: T, map = %map, kind = "waiter_woken", rev, lost, "set_and_wait woken")
        }
        E::WaiterCancelled { map, rev, armed, claimed } => {
            debug!(target: T, map = %map, kind = "waiter_cancelled", rev, armed, claimed, "set_and_wait cancelled; waiter removed")
        }
    }
}
