//! A subscription manager that starts late: the completer's event channel backs up.
//!
//! The manager drops for a full subscriber and never blocks, so with it running the completer's
//! hand-over of a written batch (`emit`) never waits, and every path of a completer whose channel
//! is full went unexercised (hunt 36 B #3, #14, #48: room made before a batch is handed on, a
//! hand-over given up when the stop is heard, its stop bound on the runtime's timer). A user
//! meets that channel full whenever its manager starts after its completer, or not at all for a
//! while: some runs of the completer scenario start theirs late. The completer fills the
//! channel, its hand-over waits, its backlog fills behind it and producers park; a stop in that
//! state runs the hand-over into the completer's stop bound.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use keel::clock::Clock;
use keel::completer::SubscriptionManager;
use keel::lifecycle::{Service, ServiceError};
use keel::shutdown::Shutdown;

use crate::world::NodeCtx;

/// How a run's manager starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Lateness {
    /// Late by this much of its node's clock (or at the group's stop, if that comes first).
    By(Duration),
    /// Only at the group's stop, after the completer's: a stop that finds the channel full
    /// waits its whole bound on it, while the nodes' clocks may drift (V38).
    UntilStop,
}

/// How a run's manager starts: at once (`None`), or late.
pub(super) fn lateness(life_us: u64, run: u64) -> Option<Lateness> {
    // Drawn from the node's life and the run, not from the run's generator, so every other
    // run's schedule stays as it was. About one run in four; a third of those wait for the stop.
    let h = (life_us / 1000).wrapping_mul(31).wrapping_add(run.wrapping_mul(7));
    if !h.is_multiple_of(4) {
        return None;
    }
    let h = h / 4;
    Some(if h.is_multiple_of(3) {
        Lateness::UntilStop
    } else {
        Lateness::By(Duration::from_millis(LATE_MIN_MS + (h / 3) % LATE_SPAN_MS))
    })
}

/// The shortest lateness: past the time four batches take to fill the channel.
const LATE_MIN_MS: u64 = 150;
/// Latenesses spread over this span above the shortest.
const LATE_SPAN_MS: u64 = 2_400;

/// The run's subscription manager, started as late as its [`Lateness`] says, or at the group's
/// stop if that comes first (so the run's subscribers still see their channels close).
pub(super) struct LateSubs {
    subs: Arc<SubscriptionManager>,
    ctx: NodeCtx,
    late: Lateness,
    /// The pending start: its cancel, and the task that starts the manager.
    pending: Mutex<Option<(Shutdown, tokio::task::JoinHandle<bool>)>>,
}

impl LateSubs {
    pub(super) fn new(subs: Arc<SubscriptionManager>, ctx: NodeCtx, late: Lateness) -> Self {
        LateSubs { subs, ctx, late, pending: Mutex::new(None) }
    }
}

impl Service for LateSubs {
    fn name(&self) -> &str {
        Service::name(&*self.subs)
    }

    fn start<'a>(&'a self, parent: &'a Shutdown) -> BoxFuture<'a, Result<(), ServiceError>> {
        Box::pin(async move {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            if pending.is_some() {
                return Ok(());
            }
            let cancel = Shutdown::new("late-subscriptions");
            let (subs, clock, late, parent, c) =
                (self.subs.clone(), self.ctx.clock.clone(), self.late, parent.clone(), cancel.clone());
            let task = tokio::spawn(async move {
                let Lateness::By(delay) = late else {
                    c.cancelled().await;
                    return false;
                };
                tokio::select! {
                    biased; // fixed poll order: tokio's per-thread select RNG would break replay
                    _ = c.cancelled() => false,
                    _ = clock.sleep(delay) => subs.start(&parent).await,
                }
            });
            *pending = Some((cancel, task));
            Ok(())
        })
    }

    fn stop(&self) -> BoxFuture<'_, Result<(), ServiceError>> {
        Box::pin(async move {
            let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some((cancel, task)) = pending {
                cancel.cancel();
                // Not started yet: start it now, so it reads what the completer left in the
                // channel and closes the run's subscribers (a detached start: no caller needed).
                if !task.await.unwrap_or(false) {
                    self.subs.start(&Shutdown::new("late-subscriptions")).await;
                }
            }
            self.subs.stop().await;
            Ok(())
        })
    }
}
