//! Events of lease ownership (target `keel::lease`).

use tracing::{debug, error, info, trace, warn};

use super::{Text, events};
use crate::lease::LostReason;

events! {
    /// What a lease owner did or saw.
    pub enum LeaseEvent<'a> {
        /// An acquisition attempt found the lease held by another owner.
        AcquireRefused { lease: Text<'a>, owner: Text<'a>, remaining_ms: u64 } = "acquire_refused",
        /// The store lost the lease's data; acquisitions wait out the quarantine.
        Quarantined { lease: Text<'a>, owner: Text<'a>, remaining_ms: u64 } = "quarantined",
        /// An acquisition attempt failed (store error); it is retried.
        AcquireFailed { lease: Text<'a>, owner: Text<'a>, error: Text<'a> } = "acquire_failed",
        /// The holder renewed its grant.
        Renewed { lease: Text<'a>, owner: Text<'a>, fence: u64 } = "renewed",
        /// A renewal failed (store error); it is retried before the deadline.
        RenewFailed { lease: Text<'a>, owner: Text<'a>, error: Text<'a> } = "renew_failed",
        /// The guarded work was started under `fence`.
        WorkStarted { lease: Text<'a>, owner: Text<'a>, fence: u64 } = "work_started",
        /// The guarded work under `fence` has stopped.
        WorkStopped { lease: Text<'a>, owner: Text<'a>, fence: u64 } = "work_stopped",
        /// The owner escalates a store error to its parent and exits.
        Crashed { lease: Text<'a>, owner: Text<'a>, error: Text<'a> } = "crashed",
        /// The owner now believes it holds the grant `fence`.
        Held { lease: Text<'a>, owner: Text<'a>, fence: u64 } = "held",
        /// The owner no longer believes it holds `fence`.
        Lost { lease: Text<'a>, owner: Text<'a>, fence: u64, reason: LostReason } = "lost",
        /// The owner released its grant (shutdown).
        Released { lease: Text<'a>, owner: Text<'a> } = "released",
    }
}

pub(super) fn log(e: &LeaseEvent<'_>) {
    use LeaseEvent as E;
    const T: &str = "keel::lease";
    match e {
        E::AcquireRefused { lease, owner, remaining_ms } => {
            debug!(target: T, lease = %lease, owner = %owner, remaining_ms, kind = "acquire_refused", "held by another owner")
        }
        E::Quarantined { lease, owner, remaining_ms } => {
            info!(target: T, lease = %lease, owner = %owner, remaining_ms, kind = "quarantined", "store lost the lease's data; waiting out the quarantine")
        }
        E::AcquireFailed { lease, owner, error } => {
            warn!(target: T, lease = %lease, owner = %owner, kind = "acquire_failed", error = %error, "acquire failed; retrying")
        }
        E::Renewed { lease, owner, fence } => {
            trace!(target: T, lease = %lease, owner = %owner, fence, kind = "renewed", "renewed")
        }
        E::RenewFailed { lease, owner, error } => {
            warn!(target: T, lease = %lease, owner = %owner, kind = "renew_failed", error = %error, "renewal failed; retrying before the deadline")
        }
        E::WorkStarted { lease, owner, fence } => {
            info!(target: T, lease = %lease, owner = %owner, fence, kind = "work_started", "guarded work started")
        }
        E::WorkStopped { lease, owner, fence } => {
            info!(target: T, lease = %lease, owner = %owner, fence, kind = "work_stopped", "guarded work stopped")
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
            };
            warn!(target: T, lease = %lease, owner = %owner, fence, reason = why, kind = "lost", "lease lost; guarded work stopped")
        }
        E::Released { lease, owner } => {
            info!(target: T, lease = %lease, owner = %owner, kind = "released", "lease released")
        }
    }
}
