//! Per-node simulated clocks: skew, drift and jumps on top of madsim's single global time.
//!
//! madsim has one clock for the whole world, so per-node clock faults go through keel's `Clock`
//! seam. A [`SimClock`] maps global time to local time as
//! `local = anchor_local + (global − anchor_global) · rate`, never going backwards (a backward
//! jump stalls the clock until global time catches up, as a monotonic clock would appear).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use keel::clock::{Clock, Instant, Sleep};

/// Longest single sleep, so that jumps and rate changes are noticed promptly by sleepers.
const SLEEP_CHUNK: Duration = Duration::from_millis(50);

/// A node's clock. Clones share the same time.
#[derive(Clone)]
pub struct SimClock {
    inner: Arc<Inner>,
}

struct Inner {
    origin: Instant,
    st: Mutex<State>,
}

struct State {
    anchor_global: Instant,
    anchor_local: Duration,
    rate: f64,
    last: Duration,
}

impl SimClock {
    /// A clock at rate 1 whose local time starts `skew` ahead of the global origin.
    pub fn new(skew: Duration) -> Self {
        let now = Instant::now();
        SimClock {
            inner: Arc::new(Inner {
                origin: now,
                st: Mutex::new(State { anchor_global: now, anchor_local: skew, rate: 1.0, last: skew }),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.st.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn local(st: &mut State) -> Duration {
        let g = Instant::now().saturating_duration_since(st.anchor_global);
        let local = (st.anchor_local + g.mul_f64(st.rate)).max(st.last);
        st.last = local;
        local
    }

    /// Change the drift rate (1.0 = exact, 0.9 = runs 10 % slow).
    pub fn set_rate(&self, rate: f64) {
        let mut st = self.lock();
        let local = Self::local(&mut st);
        st.anchor_global = Instant::now();
        st.anchor_local = local;
        st.rate = rate.clamp(0.05, 20.0);
    }

    /// Jump by `delta_ms` (negative: the clock stalls for that long).
    pub fn jump(&self, delta_ms: i64) {
        let mut st = self.lock();
        let local = Self::local(&mut st);
        st.anchor_global = Instant::now();
        let d = Duration::from_millis(delta_ms.unsigned_abs());
        st.anchor_local = if delta_ms >= 0 { local + d } else { local.saturating_sub(d) };
        if delta_ms >= 0 {
            st.last = st.anchor_local;
        }
    }
}

impl Clock for SimClock {
    fn now(&self) -> Instant {
        let mut st = self.lock();
        self.inner.origin + Self::local(&mut st)
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        let this = self.clone();
        Box::pin(async move {
            loop {
                let (now, rate) = {
                    let mut st = this.lock();
                    (this.inner.origin + SimClock::local(&mut st), st.rate)
                };
                if now >= deadline {
                    return;
                }
                // Re-read the clock at least every SLEEP_CHUNK of global time.
                let wait = (deadline - now).div_f64(rate).min(SLEEP_CHUNK).max(Duration::from_micros(1));
                tokio::time::sleep(wait).await;
            }
        })
    }
}
