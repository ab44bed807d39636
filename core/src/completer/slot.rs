//! The slot holding the event channel's only persistent sender, tagged with the run that owns it.
//!
//! Rust closes a channel when its last sender drops, so "closing" is taking the sender out of
//! the slot. The run number makes a close by a stale run a no-op: River's racy test closed the
//! channel from a detached goroutine *after* a restart had reassigned it (mutant MR5).

use crate::sync::{Mutex, MutexGuard};

pub(crate) struct EventSlot<S> {
    inner: Mutex<Inner<S>>,
}

struct Inner<S> {
    run: u64,
    tx: Option<S>,
}

impl<S: Clone> EventSlot<S> {
    pub fn new() -> Self {
        EventSlot { inner: Mutex::new(Inner { run: 0, tx: None }) }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<S>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Install run `run`'s sender (a restart). Any older sender is dropped.
    pub fn install(&self, run: u64, tx: S) {
        let mut g = self.lock();
        debug_assert!(run > g.run, "runs only go forward");
        g.run = run;
        g.tx = Some(tx);
    }

    /// A sender for run `run`, if its channel is still open.
    pub fn sender(&self, run: u64) -> Option<S> {
        let g = self.lock();
        if g.run == run { g.tx.clone() } else { None }
    }

    /// Close run `run`'s channel. Returns whether this call closed it (false: already closed, or
    /// the slot belongs to a newer run, which must not be touched).
    pub fn close(&self, run: u64) -> bool {
        let mut g = self.lock();
        g.run == run && g.tx.take().is_some()
    }

    /// MR5: close whatever channel is installed now, whichever run owns it.
    pub fn close_current(&self) -> bool {
        self.lock().tx.take().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::EventSlot;

    /// A run gets its own sender only: an older run's late emit must not land in a newer run's
    /// channel, and its late close must not close it (round 34 B #37, MR5).
    #[test]
    fn only_the_installed_run_gets_or_closes_the_sender() {
        let slot = EventSlot::new();
        assert_eq!(slot.sender(0), None, "nothing installed");
        slot.install(1, "one");
        slot.install(2, "two");
        assert_eq!((slot.sender(1), slot.sender(3)), (None, None), "an older or a later run gets nothing");
        assert_eq!(slot.sender(2), Some("two"));
        assert!(!slot.close(1), "a stale run's close is a no-op");
        assert_eq!(slot.sender(2), Some("two"));
        assert!(slot.close(2));
        assert!(!slot.close(2), "closed once");
        assert_eq!(slot.sender(2), None);
    }
}
