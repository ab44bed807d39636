//! Events of lease ownership (target `keel::lease`).

use tracing::{debug, error, info, trace, warn};

use super::{Text, events};
use crate::lease::LostReason;

events! {
    /// What a lease owner did or saw.
    #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
    pub enum LeaseEvent<'a> {
        /// The owner starts, with the timing of its attempts (µs): it renews every `renew_us`,
        /// polls a held lease every `poll_us` at most, and retries a failed renewal after at
        /// most `retry_min_us`·2^(n−1), capped at `retry_max_us`, for the n-th store error in a
        /// row.
        /// Every attempt's outcome below says how long it `took_us` (local clock, from the send):
        /// together they let a checker judge each attempt's start against the wait allowed.
        /// A grant or renewal is believed for at most `ttl_us` less `drift_margin_us` from the
        /// attempt's send (S17). Store errors are summarised once per `error_log_us` (E3). Guarded work
        /// that ends while held is restarted after a backoff from `work_restart_min_us` to
        /// `work_restart_max_us`, or (both 0) ends the grant (the work policy, S20). Every store
        /// call is cut at `op_timeout_us` (S22). A guarded work told to stop is aborted if it has
        /// not returned `work_stop_timeout_us` later, never sooner (S24). `permanent_attempts`
        /// permanent store errors in a row while not held are published as `Failed` (E4).
        OwnerStarted { lease: Text<'a>, owner: Text<'a>, renew_us: u64, poll_us: u64, retry_min_us: u64, retry_max_us: u64, ttl_us: u64, drift_margin_us: u64, error_log_us: u64, work_restart_min_us: u64, work_restart_max_us: u64, op_timeout_us: u64, work_stop_timeout_us: u64, permanent_attempts: u32 } = "owner_started",
        /// An acquisition attempt was granted `fence` (`Held` follows); the owner believes in the
        /// grant for `belief_us` from now (its local deadline, less the reply's instant).
        Granted { lease: Text<'a>, owner: Text<'a>, fence: u64, took_us: u64, belief_us: u64 } = "granted",
        /// An acquisition attempt found the lease held by another owner.
        AcquireRefused { lease: Text<'a>, owner: Text<'a>, remaining_ms: u64, took_us: u64 } = "acquire_refused",
        /// The store lost the lease's data; acquisitions wait out the quarantine.
        Quarantined { lease: Text<'a>, owner: Text<'a>, remaining_ms: u64, took_us: u64 } = "quarantined",
        /// An acquisition attempt failed (store error); it is retried.
        AcquireFailed { lease: Text<'a>, owner: Text<'a>, error: Text<'a>, took_us: u64 } = "acquire_failed",
        /// Reading the store's time at start failed (store error); it is retried.
        TimeFailed { lease: Text<'a>, owner: Text<'a>, error: Text<'a>, took_us: u64 } = "time_failed",
        /// Reading the store's time at start succeeded after `took_us`: the first acquisition
        /// follows at once (S12), and the count of errors in a row starts over.
        TimeRead { lease: Text<'a>, owner: Text<'a>, took_us: u64 } = "time_read",
        /// Store errors go on: the first after a success, then at most one every 10 s, with the
        /// number of errors since the previous one (`count`) and in a row (`total`).
        StoreErrors { lease: Text<'a>, owner: Text<'a>, op: Text<'a>, count: u64, total: u64, permanent: bool, error: Text<'a> } = "store_errors",
        /// The store answers again after `errors` errors in a row.
        StoreRecovered { lease: Text<'a>, owner: Text<'a>, errors: u64 } = "store_recovered",
        /// Permanent store errors persisted for `attempts` attempts: published as `Failed`.
        Failed { lease: Text<'a>, owner: Text<'a>, attempts: u32, error: Text<'a> } = "failed",
        /// The store answered normally after a published `Failed`: the state is `Awaiting` again.
        Awaiting { lease: Text<'a>, owner: Text<'a> } = "awaiting",
        /// The guarded work ended by itself while the lease is held (returned, or panicked).
        WorkEnded { lease: Text<'a>, owner: Text<'a>, fence: u64, panic: Option<Text<'a>> } = "work_ended",
        /// The ended work starts again after a backoff (restart number `restarts` of this grant).
        WorkRestarting { lease: Text<'a>, owner: Text<'a>, fence: u64, restarts: u32, panicked: bool } = "work_restarting",
        /// The ended work was started again under the same grant.
        WorkRestarted { lease: Text<'a>, owner: Text<'a>, fence: u64 } = "work_restarted",
        /// The holder renewed its grant, and believes in it for `belief_us` from now.
        Renewed { lease: Text<'a>, owner: Text<'a>, fence: u64, took_us: u64, belief_us: u64 } = "renewed",
        /// A renewal failed (store error); it is retried before the deadline.
        RenewFailed { lease: Text<'a>, owner: Text<'a>, error: Text<'a>, took_us: u64 } = "renew_failed",
        /// The guarded work was started under `fence`.
        WorkStarted { lease: Text<'a>, owner: Text<'a>, fence: u64 } = "work_started",
        /// The owner steps down from `fence` (for a loss, its work's end or its stop): its guards
        /// read lost from here, and its work is told to stop (`work_stopped` once it did).
        SteppingDown { lease: Text<'a>, owner: Text<'a>, fence: u64 } = "stepping_down",
        /// The guarded work under `fence` has stopped, `waited_us` after it was told to (local
        /// clock); `aborted` when it had not returned by `work_stop_timeout` and was aborted, which
        /// comes no sooner than that timeout on the owner's own clock (S33).
        WorkStopped { lease: Text<'a>, owner: Text<'a>, fence: u64, waited_us: u64, aborted: bool } = "work_stopped",
        /// The owner escalates a store error to its parent and exits.
        Crashed { lease: Text<'a>, owner: Text<'a>, error: Text<'a> } = "crashed",
        /// The owner now believes it holds the grant `fence`.
        Held { lease: Text<'a>, owner: Text<'a>, fence: u64 } = "held",
        /// The owner no longer believes it holds `fence`.
        Lost { lease: Text<'a>, owner: Text<'a>, fence: u64, reason: LostReason } = "lost",
        /// The owner released its grant (shutdown).
        Released { lease: Text<'a>, owner: Text<'a> } = "released",
        /// A renewal was refused: the store holds no grant of this owner's token.
        RenewRefused { lease: Text<'a>, owner: Text<'a>, took_us: u64 } = "renew_refused",
        /// A release ended: `released` when the store removed this owner's grant (else it was
        /// not the holder any more, or the call failed and the grant expires by its TTL);
        /// `error`: why the call failed (`None`: the store answered).
        ReleaseEnded { lease: Text<'a>, owner: Text<'a>, token: Text<'a>, released: bool, took_us: u64, error: Option<Text<'a>> } = "release_ended",
        /// The owner heard its stop (its token or its parent's was cancelled) and begins to shut
        /// down: stop the work, release. At the request, or once a renewal in flight ended.
        Stopping { lease: Text<'a>, owner: Text<'a> } = "stopping",
    }
}

pub(super) fn log(e: &LeaseEvent<'_>) {
    use LeaseEvent as E;
    const T: &str = "keel::lease";
    match e {
        E::OwnerStarted {
            lease,
            owner,
            renew_us,
            poll_us,
            retry_min_us,
            retry_max_us,
            ttl_us,
            drift_margin_us,
            error_log_us,
            work_restart_min_us,
            work_restart_max_us,
            op_timeout_us,
            work_stop_timeout_us,
            permanent_attempts,
        } => {
            debug!(target: T, lease = %lease, owner = %owner, renew_us, poll_us, retry_min_us, retry_max_us, ttl_us, drift_margin_us, error_log_us, work_restart_min_us, work_restart_max_us, op_timeout_us, work_stop_timeout_us, permanent_attempts, kind = "owner_started", "lease owner started")
        }
        E::Granted { lease, owner, fence, took_us, belief_us } => {
            debug!(target: T, lease = %lease, owner = %owner, fence, took_us, belief_us, kind = "granted", "acquisition granted")
        }
        E::AcquireRefused { lease, owner, remaining_ms, took_us } => {
            debug!(target: T, lease = %lease, owner = %owner, remaining_ms, took_us, kind = "acquire_refused", "held by another owner")
        }
        E::Quarantined { lease, owner, remaining_ms, took_us } => {
            warn!(target: T, lease = %lease, owner = %owner, remaining_ms, took_us, kind = "quarantined", "store lost the lease's data; waiting out the quarantine")
        }
        // Every store error at debug; `StoreErrors` summarises them at warn, rate-limited.
        E::AcquireFailed { lease, owner, error, took_us } => {
            debug!(target: T, lease = %lease, owner = %owner, took_us, kind = "acquire_failed", error = %error, "acquire failed; retrying")
        }
        E::TimeRead { lease, owner, took_us } => {
            debug!(target: T, lease = %lease, owner = %owner, took_us, kind = "time_read", "store time read")
        }
        E::TimeFailed { lease, owner, error, took_us } => {
            debug!(target: T, lease = %lease, owner = %owner, took_us, kind = "time_failed", error = %error, "store time unavailable; retrying")
        }
        E::StoreErrors { lease, owner, op, count, total, permanent: false, error } => {
            warn!(target: T, lease = %lease, owner = %owner, op = %op, count, total, kind = "store_errors", error = %error, "store errors; retrying (one line per 10 s at most; count = errors since the last line)")
        }
        E::StoreErrors { lease, owner, op, count, total, permanent: true, error } => {
            error!(target: T, lease = %lease, owner = %owner, op = %op, count, total, kind = "store_errors", error = %error, "permanent store error (credentials, ACL, corrupt key or invalid name): an operator must act; retrying")
        }
        E::StoreRecovered { lease, owner, errors } => {
            info!(target: T, lease = %lease, owner = %owner, errors, kind = "store_recovered", "store answering again")
        }
        E::Failed { lease, owner, attempts, error } => {
            error!(target: T, lease = %lease, owner = %owner, attempts, kind = "failed", error = %error, "the store keeps refusing the lease with a permanent error")
        }
        E::Awaiting { lease, owner } => {
            info!(target: T, lease = %lease, owner = %owner, kind = "awaiting", "the store answers again: awaiting the lease")
        }
        E::WorkEnded { lease, owner, fence, panic: None } => {
            warn!(target: T, lease = %lease, owner = %owner, fence, panicked = false, kind = "work_ended", "guarded work returned while the lease is held")
        }
        E::WorkEnded { lease, owner, fence, panic: Some(p) } => {
            error!(target: T, lease = %lease, owner = %owner, fence, panicked = true, panic = %p, kind = "work_ended", "guarded work panicked while the lease is held")
        }
        E::WorkRestarting { lease, owner, fence, restarts, panicked } => {
            info!(target: T, lease = %lease, owner = %owner, fence, restarts, panicked, kind = "work_restarting", "guarded work ended; restarting it after a backoff")
        }
        E::WorkRestarted { lease, owner, fence } => {
            info!(target: T, lease = %lease, owner = %owner, fence, kind = "work_restarted", "guarded work restarted")
        }
        E::Renewed { lease, owner, fence, took_us, belief_us } => {
            trace!(target: T, lease = %lease, owner = %owner, fence, took_us, belief_us, kind = "renewed", "renewed")
        }
        E::RenewFailed { lease, owner, error, took_us } => {
            debug!(target: T, lease = %lease, owner = %owner, took_us, kind = "renew_failed", error = %error, "renewal failed; retrying before the deadline")
        }
        E::WorkStarted { lease, owner, fence } => {
            info!(target: T, lease = %lease, owner = %owner, fence, kind = "work_started", "guarded work started")
        }
        E::SteppingDown { lease, owner, fence } => {
            debug!(target: T, lease = %lease, owner = %owner, fence, kind = "stepping_down", "stepping down: guards read lost, work told to stop")
        }
        E::WorkStopped { lease, owner, fence, waited_us, aborted } => {
            info!(target: T, lease = %lease, owner = %owner, fence, waited_us, aborted, kind = "work_stopped", "guarded work stopped")
        }
        E::Crashed { lease, owner, error } => {
            error!(target: T, lease = %lease, owner = %owner, kind = "crashed", error = %error, "escalating store error to the parent")
        }
        E::Held { lease, owner, fence } => {
            info!(target: T, lease = %lease, owner = %owner, fence, kind = "held", "lease held")
        }
        E::Lost { lease, owner, fence, reason } => {
            let why = match reason {
                LostReason::Deadline => "deadline",
                LostReason::Taken => "taken",
                LostReason::WorkEnded => "work_ended",
                LostReason::Stopped => "stopped",
            };
            warn!(target: T, lease = %lease, owner = %owner, fence, reason = why, kind = "lost", "lease lost; guarded work stopped")
        }
        E::Released { lease, owner } => {
            info!(target: T, lease = %lease, owner = %owner, kind = "released", "lease released")
        }
        E::RenewRefused { lease, owner, took_us } => {
            info!(target: T, lease = %lease, owner = %owner, took_us, kind = "renew_refused", "renewal refused: the store holds no grant of ours")
        }
        E::ReleaseEnded { lease, owner, token, released, took_us, error: None } => {
            debug!(target: T, lease = %lease, owner = %owner, token = %token, released, took_us, kind = "release_ended", "release ended")
        }
        // Best effort: the key expires by its TTL anyway.
        E::ReleaseEnded { lease, owner, token, released, took_us, error: Some(error) } => {
            warn!(target: T, lease = %lease, owner = %owner, token = %token, released, took_us, error = %error, kind = "release_ended", "release failed; the grant will expire by its TTL")
        }
        E::Stopping { lease, owner } => {
            debug!(target: T, lease = %lease, owner = %owner, kind = "stopping", "lease owner stopping")
        }
    }
}
