//! A clock that only moves when told to.

use std::sync::Mutex;
use std::time::Duration;

use crate::watch;

use crate::clock::{Clock, Instant, Sleep};

/// A [`Clock`] whose time only moves by [`advance`](ManualClock::advance). Sleepers wake when
/// the time they wait for is reached.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::time::Duration;
/// use keel::clock::Clock;
/// use keel::testkit::ManualClock;
/// let clock = ManualClock::new();
/// let t0 = clock.now();
/// clock.advance(Duration::from_millis(250));
/// assert_eq!(clock.now() - t0, Duration::from_millis(250));
/// clock.sleep(Duration::ZERO).await; // already due
/// # }
/// ```
#[derive(Debug)]
pub struct ManualClock {
    start: Instant,
    // The offset is both read synchronously and awaited by sleepers: a watch does both.
    offset: watch::Sender<Duration>,
    lock: Mutex<()>,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl ManualClock {
    /// A clock standing at the runtime's current instant.
    pub fn new() -> Self {
        ManualClock { start: Instant::now(), offset: watch::channel(Duration::ZERO).0, lock: Mutex::new(()) }
    }

    /// Move time forward by `by`.
    pub fn advance(&self, by: Duration) {
        let _serial = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.offset.send_modify(|o| *o += by);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.start + *self.offset.borrow()
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        let mut rx = self.offset.subscribe();
        let start = self.start;
        Box::pin(async move {
            if rx.wait_for(|o| start + *o >= deadline).await.is_err() {
                // The clock is gone: its time will never move again.
                std::future::pending::<()>().await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::task::{Context, Poll, Waker};

    use super::*;

    fn ready(f: &mut Sleep) -> bool {
        matches!(f.as_mut().poll(&mut Context::from_waker(Waker::noop())), Poll::Ready(()))
    }

    /// `Clock::sleep` (the default every clock inherits) keeps the whole duration, sub-millisecond
    /// part included (the blind-spot hunt's round 17 A #19: one that dropped it was caught by
    /// nothing, since keel's own callers pass whole milliseconds).
    #[tokio::test(flavor = "current_thread")]
    async fn a_sleep_keeps_its_sub_millisecond_part() {
        let clock = ManualClock::new();
        let mut s = clock.sleep(Duration::from_micros(1_500));
        clock.advance(Duration::from_millis(1));
        assert!(!ready(&mut s), "1 ms of 1.5 ms");
        clock.advance(Duration::from_micros(499));
        assert!(!ready(&mut s), "1.499 ms of 1.5 ms");
        clock.advance(Duration::from_micros(1));
        assert!(ready(&mut s));
    }
}
