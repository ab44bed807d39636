//! What guarded work holds: the grant's fence and its validity, judged at the moment it is read.
//!
//! A process can be frozen (GC pause, SIGSTOP, a VM migration) at any instant. When it resumes
//! past its local deadline, the owner's driver has not run yet: if the guard's validity were a
//! flag the driver flips, the work would keep acting as holder until the driver's timer task is
//! scheduled (12–19 ms on real Redis after SIGCONT). So a guard compares the deadline with the
//! clock itself, on every read: the first read after the freeze already says "lost".

use std::sync::{Arc, Mutex};

use super::LostReason;
use crate::clock::{Clock, Instant};
use crate::mutants::{self, Mutant};
use crate::shutdown::Shutdown;

/// One grant's local deadline, shared by the driver (which extends it after each successful
/// renewal and ends it at step-down) and by every guard of that grant (which read it).
pub(crate) struct Validity {
    fence: u64,
    clock: Arc<dyn Clock>,
    /// `None` once the owner stepped down: a grant never becomes valid again.
    deadline: Mutex<Option<Instant>>,
    /// Why the owner stepped down from it, once it did (its handle reads the loss from then on,
    /// while the work is still stopping).
    lost_for: Mutex<Option<LostReason>>,
}

impl Validity {
    pub(super) fn new(fence: u64, clock: Arc<dyn Clock>, deadline: Instant) -> Arc<Self> {
        Arc::new(Validity { fence, clock, deadline: Mutex::new(Some(deadline)), lost_for: Mutex::new(None) })
    }

    pub(super) fn fence(&self) -> u64 {
        self.fence
    }

    /// The local instant the grant stops being valid (`None` once ended).
    pub(super) fn deadline(&self) -> Option<Instant> {
        *self.deadline.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the grant is still valid at this instant of the local clock.
    pub(super) fn is_valid(&self) -> bool {
        if mutants::active(Mutant::MC9) {
            return self.deadline().is_some(); // MC9: only the driver's step-down ends it
        }
        // MC241: valid at the deadline instant itself.
        self.deadline()
            .is_some_and(|d| if mutants::active(Mutant::MC241) { self.clock.now() <= d } else { self.clock.now() < d })
    }

    /// A renewal moved the deadline (only forwards; an ended grant stays ended).
    pub(super) fn extend(&self, to: Instant) {
        let mut d = self.deadline.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(d) = d.as_mut() {
            *d = (*d).max(to);
        }
    }

    /// The owner stepped down (or is stopping): the grant is over for good.
    pub(super) fn end(&self) {
        *self.deadline.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The owner steps down from the grant for `reason`: over for good, and said so.
    pub(super) fn lose(&self, reason: LostReason) {
        *self.lost_for.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason);
        self.end();
    }

    /// Why the owner stepped down from it (a deadline that merely passed says nothing here).
    pub(super) fn lost_for(&self) -> Option<LostReason> {
        *self.lost_for.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Given to guarded work while the lease is held.
///
/// **What a guarded writer must do.** Right before each write to a protected resource, check
/// [`valid_fence`](Guard::valid_fence) (or [`is_lost`](Guard::is_lost)), and pass the fence to
/// the resource, which must reject a fence lower than the highest it has accepted. The check
/// alone is not enough: the process can freeze between the check and the write, and resume
/// after another owner was granted the lease. Only the resource's fence check closes that gap;
/// the local check keeps a resumed stale holder from even trying.
#[derive(Clone)]
pub struct Guard {
    pub(super) validity: Arc<Validity>,
    pub(super) shutdown: Shutdown,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard").field("fence", &self.fence()).field("lost", &self.is_lost()).finish()
    }
}

impl Guard {
    /// The grant's fencing token. Protected resources must reject fences lower than the highest
    /// they have seen.
    pub fn fence(&self) -> u64 {
        self.validity.fence()
    }

    /// The fence if the grant is still valid at this instant (local deadline not reached, owner
    /// not stepping down), else `None`. Call it right before each protected write.
    pub fn valid_fence(&self) -> Option<u64> {
        if mutants::active(Mutant::MC227) {
            // MC227: the deadline alone judged: a step-down or a stop (the work's token) unheard.
            return self.validity.is_valid().then(|| self.fence());
        }
        (!self.is_lost()).then(|| self.fence())
    }

    /// Completes when the work must stop: the local deadline passed (even if the owner's driver
    /// has not noticed yet), or the owner is stepping down or stopping.
    pub async fn lost(&self) {
        if mutants::active(Mutant::MC9) {
            return self.shutdown.cancelled().await; // MC9: the driver's step-down alone
        }
        loop {
            let Some(deadline) = self.validity.deadline() else { return };
            // MC297: `>` where `>=` is meant: at the deadline instant the loop waits for it again.
            let now = self.validity.clock.now();
            if now >= deadline && !(mutants::active(Mutant::MC297) && now == deadline) {
                return;
            }
            // MC50: deaf to the owner's step-down; only the deadline ends the wait.
            let hear_step_down = !mutants::active(Mutant::MC50);
            tokio::select! {
                biased; // fixed poll order: tokio's per-thread select RNG would break replay
                _ = self.shutdown.cancelled(), if hear_step_down => return,
                // A renewal may have moved the deadline meanwhile: look again.
                _ = self.validity.clock.sleep_until(deadline) => {}
            }
            if mutants::active(Mutant::MC32) {
                return; // MC32: the deadline read at the call, renewals since forgotten
            }
        }
    }

    /// Whether the work must stop, judged now against the local deadline.
    pub fn is_lost(&self) -> bool {
        self.shutdown.is_cancelled() || !self.validity.is_valid()
    }

    /// The work's shutdown token (for passing to sub-tasks). It is cancelled when the owner
    /// steps down, which can be later than the deadline after a freeze: sub-tasks that write
    /// must check the guard, not only this token.
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }
}
