//! The clock seam: monotonic local time and sleeping.
//!
//! keel never reads a wall clock. Local deadlines (how long do *I* still hold the lease?) use this
//! monotonic clock; judgments that span nodes (is that worker stale?) use the store's time.
//! In simulation every node gets its own [`Clock`] with skew, drift, jumps and pauses.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use tokio::time::Instant;

/// A boxed sleep future, as returned by [`Clock::sleep_until`].
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Monotonic time for one node.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::time::Duration;
/// use keel::clock::{Clock, TokioClock};
/// let clock = TokioClock;
/// let t0 = clock.now();
/// clock.sleep(Duration::from_millis(1)).await;
/// assert!(clock.now() >= t0 + Duration::from_millis(1));
/// # }
/// ```
pub trait Clock: Send + Sync + 'static {
    /// The current local monotonic time. Never goes backwards for a given clock.
    fn now(&self) -> Instant;

    /// Completes once [`now`](Clock::now) has reached `deadline` (as measured by this clock).
    fn sleep_until(&self, deadline: Instant) -> Sleep;

    /// Completes after `duration` has elapsed on this clock.
    fn sleep(&self, duration: Duration) -> Sleep {
        self.sleep_until(self.now() + duration)
    }
}

/// The runtime's clock (tokio's, or madsim's simulated one under `cfg(madsim)`).
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioClock;

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        Box::pin(tokio::time::sleep_until(deadline))
    }
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now(&self) -> Instant {
        (**self).now()
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        (**self).sleep_until(deadline)
    }
}
