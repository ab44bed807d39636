//! Per-node simulated clocks: skew, drift and jumps on top of madsim's single global time.
//!
//! madsim has one clock for the whole world, so per-node clock faults go through keel's `Clock`
//! seam. A [`SimClock`] maps global time to local time as
//! `local = anchor_local + (global − anchor_global) · rate`, never going backwards (a backward
//! jump stalls the clock until global time catches up, as a monotonic clock would appear).
//!
//! Sleepers do not poll. A sleeper inverts the map once to get the exact global instant at which
//! its local deadline arrives, and sleeps until then; a rate change or a jump bumps the clock's
//! epoch, which wakes every sleeper so it recomputes its instant under the new map. Between
//! faults a sleep costs one timer, whatever its length.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use keel::clock::{Clock, Instant, Sleep};

/// Smallest step a sleeper waits: absorbs float rounding in the inverse map, so a sleeper that
/// woke a hair before its local deadline never spins.
const SLEEP_STEP_MIN: Duration = Duration::from_micros(1);

/// A node's clock. Clones share the same time.
#[derive(Clone)]
pub struct SimClock {
    inner: Arc<Inner>,
}

struct Inner {
    origin: Instant,
    st: Mutex<State>,
    /// Bumped on every change of the map (rate change, jump): sleepers recompute.
    epoch: keel::watch::Sender<u64>,
}

struct State {
    anchor_global: Instant,
    anchor_local: Duration,
    rate: f64,
    last: Duration,
}

impl State {
    fn local(&mut self) -> Duration {
        let g = Instant::now().saturating_duration_since(self.anchor_global);
        let local = (self.anchor_local + g.mul_f64(self.rate)).max(self.last);
        self.last = local;
        local
    }

    /// The global instant at which local time reaches `local` under the current map.
    fn global_at(&self, local: Duration) -> Instant {
        let ahead = local.saturating_sub(self.anchor_local);
        self.anchor_global + ahead.div_f64(self.rate)
    }
}

impl SimClock {
    /// A clock at rate 1 whose local time starts `skew` ahead of the global origin.
    pub fn new(skew: Duration) -> Self {
        let now = Instant::now();
        let (epoch, _) = keel::watch::channel(0);
        SimClock {
            inner: Arc::new(Inner {
                origin: now,
                st: Mutex::new(State { anchor_global: now, anchor_local: skew, rate: 1.0, last: skew }),
                epoch,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.st.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn changed(&self) {
        self.inner.epoch.send_modify(|e| *e += 1);
    }

    /// Change the drift rate (1.0 = exact, 0.9 = runs 10 % slow).
    pub fn set_rate(&self, rate: f64) {
        {
            let mut st = self.lock();
            let local = st.local();
            st.anchor_global = Instant::now();
            st.anchor_local = local;
            st.rate = rate.clamp(0.05, 20.0);
        }
        self.changed();
    }

    /// Jump by `delta_ms` (negative: the clock stalls for that long).
    pub fn jump(&self, delta_ms: i64) {
        {
            let mut st = self.lock();
            let local = st.local();
            st.anchor_global = Instant::now();
            let d = Duration::from_millis(delta_ms.unsigned_abs());
            st.anchor_local = if delta_ms >= 0 { local + d } else { local.saturating_sub(d) };
            if delta_ms >= 0 {
                st.last = st.anchor_local;
            }
        }
        self.changed();
    }
}

impl Clock for SimClock {
    fn now(&self) -> Instant {
        let local = self.lock().local();
        self.inner.origin + local
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        let this = self.clone();
        let mut epoch = this.inner.epoch.subscribe();
        Box::pin(async move {
            let target = deadline.saturating_duration_since(this.inner.origin);
            loop {
                // Mark the current map as seen before reading it: a change after this wakes us.
                drop(epoch.borrow_and_update());
                let wake = {
                    let mut st = this.lock();
                    let now = st.local();
                    if now >= target {
                        return;
                    }
                    st.global_at(target).max(Instant::now() + SLEEP_STEP_MIN)
                };
                tokio::select! {
                    biased;
                    _ = tokio::time::sleep_until(wake) => {}
                    // The sender lives as long as the clock, which this future holds.
                    _ = epoch.changed() => {}
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sim<F: std::future::Future<Output = ()>>(f: F) {
        madsim::runtime::Runtime::with_seed_and_config(1, madsim::Config::default()).block_on(f);
    }

    fn global_ms(since: Instant) -> u128 {
        Instant::now().duration_since(since).as_millis()
    }

    #[test]
    fn a_slow_clock_wakes_a_sleeper_at_the_exact_global_instant() {
        sim(async {
            let c = SimClock::new(Duration::ZERO);
            c.set_rate(0.5);
            let start = Instant::now();
            c.sleep(Duration::from_secs(3)).await;
            assert_eq!(global_ms(start), 6_000, "3 s local at half speed is 6 s global");
        });
    }

    #[test]
    fn a_forward_jump_wakes_a_sleeper_at_once_and_a_backward_jump_delays_it() {
        sim(async {
            let c = SimClock::new(Duration::ZERO);
            let start = Instant::now();
            let c2 = c.clone();
            drop(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                c2.jump(10_000);
            }));
            c.sleep(Duration::from_secs(5)).await;
            assert_eq!(global_ms(start), 1_000, "the jump passed the deadline: wake at the jump");

            let start = Instant::now();
            let c2 = c.clone();
            drop(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                c2.jump(-2_000);
            }));
            c.sleep(Duration::from_secs(5)).await;
            assert_eq!(global_ms(start), 7_000, "a backward jump stalls the clock 2 s");
        });
    }

    #[test]
    fn a_rate_change_mid_sleep_moves_the_wake_instant() {
        sim(async {
            let c = SimClock::new(Duration::from_millis(997));
            let start = Instant::now();
            let c2 = c.clone();
            drop(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(2)).await;
                c2.set_rate(2.0);
            }));
            c.sleep(Duration::from_secs(10)).await;
            // 2 s at rate 1, then the remaining 8 s local at rate 2 = 4 s global.
            assert_eq!(global_ms(start), 6_000);
            assert!(c.now() >= start + Duration::from_secs(10), "local time reached the deadline");
        });
    }
}
