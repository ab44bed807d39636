//! Per-node simulated clocks: skew, drift and jumps on top of madsim's single global time.
//!
//! madsim has one clock for the whole world, so per-node clock faults go through keel's `Clock`
//! seam. A [`SimClock`] maps global time to local time as
//! `local = anchor_local + (global − anchor_global) · rate`, never going backwards (a backward
//! jump stalls the clock until global time catches up, as a monotonic clock would appear).
//!
//! Sleepers do not poll. A sleeper inverts the map once to get the exact global instant at which
//! its local deadline arrives and arms one runtime timer for it; a rate change or a jump bumps
//! the clock's epoch and wakes every armed sleeper, which recomputes its instant under the new
//! map. Between faults a sleep costs one timer, whatever its length and however often its task
//! is polled.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
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
    global: GlobalTime,
    st: Mutex<State>,
}

/// The runtime's global time, read (and its timers armed) through a handle held since the clock
/// was made: the same instant `Instant::now()` returns under madsim, without its interposed
/// `clock_gettime`'s thread-local lookup and two reference-count round trips on every reading
/// (9 % of a lease run's CPU went there).
#[derive(Clone)]
pub struct GlobalTime(Option<madsim::time::TimeHandle>);

impl GlobalTime {
    pub fn current() -> Self {
        GlobalTime(madsim::time::TimeHandle::try_current())
    }

    pub fn now(&self) -> Instant {
        self.0.as_ref().map_or_else(Instant::now, madsim::time::TimeHandle::now_instant)
    }
}

struct State {
    anchor_global: Instant,
    anchor_local: Duration,
    rate: f64,
    last: Duration,
    /// Bumped on every change of the map (rate change, jump): armed sleepers recompute.
    epoch: u64,
    /// Wakers of the armed sleepers, by sleeper id (removed when a sleeper ends or drops).
    sleepers: BTreeMap<u64, Waker>,
    next_sleeper: u64,
}

impl State {
    /// Local time at global instant `now` (simulated time does not move within a poll, so a
    /// caller that also needs the global instant reads it once).
    fn local(&mut self, now: Instant) -> Duration {
        let g = now.saturating_duration_since(self.anchor_global);
        let advanced = if self.rate == 1.0 { g } else { g.mul_f64(self.rate) };
        let local = (self.anchor_local + advanced).max(self.last);
        self.last = local;
        local
    }

    /// The global instant at which local time reaches `local` under the current map.
    fn global_at(&self, local: Duration) -> Instant {
        let ahead = local.saturating_sub(self.anchor_local);
        self.anchor_global + if self.rate == 1.0 { ahead } else { ahead.div_f64(self.rate) }
    }
}

impl SimClock {
    /// A clock at rate 1 whose local time starts `skew` ahead of the global origin.
    pub fn new(skew: Duration) -> Self {
        let global = GlobalTime::current();
        let now = global.now();
        let st = State {
            anchor_global: now,
            anchor_local: skew,
            rate: 1.0,
            last: skew,
            epoch: 0,
            sleepers: BTreeMap::new(),
            next_sleeper: 0,
        };
        SimClock { inner: Arc::new(Inner { origin: now, global, st: Mutex::new(st) }) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.st.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Apply a change of the map and wake every armed sleeper to recompute its instant.
    fn change(&self, f: impl FnOnce(&mut State, Duration)) {
        let mut st = self.lock();
        let now = self.inner.global.now();
        let local = st.local(now);
        st.anchor_global = now;
        f(&mut st, local);
        st.epoch += 1;
        for w in st.sleepers.values() {
            w.wake_by_ref();
        }
    }

    /// Change the drift rate (1.0 = exact, 0.9 = runs 10 % slow).
    pub fn set_rate(&self, rate: f64) {
        self.change(|st, local| {
            st.anchor_local = local;
            st.rate = rate.clamp(0.05, 20.0);
        });
    }

    /// Jump by `delta_ms` (negative: the clock stalls for that long).
    pub fn jump(&self, delta_ms: i64) {
        self.change(|st, local| {
            let d = Duration::from_millis(delta_ms.unsigned_abs());
            st.anchor_local = if delta_ms >= 0 { local + d } else { local.saturating_sub(d) };
            if delta_ms >= 0 {
                st.last = st.anchor_local;
            }
        });
    }
}

impl Clock for SimClock {
    fn now(&self) -> Instant {
        let local = self.lock().local(self.inner.global.now());
        self.inner.origin + local
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        let id = {
            let mut st = self.lock();
            st.next_sleeper += 1;
            st.next_sleeper
        };
        let target = deadline.saturating_duration_since(self.inner.origin);
        Box::pin(ClockSleep { clock: self.clone(), target, id, armed: None, timer: QuietTimer::default() })
    }
}

/// A sleep until local time `target`: one timer at the exact global instant, re-armed only when
/// the map changes or the timer fired early by rounding. Spurious polls (a `select!` woken by
/// another branch) add no timer, unlike re-polling a runtime sleep, and a sleep dropped before
/// its instant (the losing branch of a `select!`) does not wake its task when the timer fires.
struct ClockSleep {
    clock: SimClock,
    target: Duration,
    id: u64,
    /// The armed timer's global instant and the map epoch it was computed under.
    armed: Option<(Instant, u64)>,
    timer: QuietTimer,
}

impl Future for ClockSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let mut st = this.clock.lock();
        let now = this.clock.inner.global.now();
        if st.local(now) >= this.target {
            st.sleepers.remove(&this.id);
            return Poll::Ready(());
        }
        if let Some((at, epoch)) = this.armed
            && epoch == st.epoch
            && now < at
        {
            this.timer.follow(cx); // the timer stands; a new task (if any) gets its wake-up
            return Poll::Pending;
        }
        let at = st.global_at(this.target).max(now + SLEEP_STEP_MIN);
        this.armed = Some((at, st.epoch));
        let relay = this.timer.relay(cx);
        st.sleepers.insert(this.id, relay.clone());
        drop(st);
        QuietTimer::arm(&this.clock.inner.global, at, &relay, cx)
    }
}

/// What a runtime timer wakes: the task still waiting for it, or nobody once the waiting future
/// is gone. madsim timers cannot be cancelled; without this a dead timer (a call's timeout after
/// its reply came, a `select!`'s losing sleep) would run its task once for nothing.
#[derive(Default)]
struct Relay(Mutex<Option<Waker>>);

impl std::task::Wake for Relay {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(w) = self.0.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            w.wake_by_ref();
        }
    }
}

/// Runtime timers whose wake-ups die with this value (see [`Relay`]).
#[derive(Default)]
struct QuietTimer {
    relay: Option<Arc<Relay>>,
}

impl QuietTimer {
    /// Wake-ups of the timers already armed go to `cx`'s task from now on.
    fn follow(&mut self, cx: &Context<'_>) {
        if let Some(relay) = &self.relay {
            let mut w = relay.0.lock().unwrap_or_else(|p| p.into_inner());
            if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *w = Some(cx.waker().clone());
            }
        }
    }

    /// The waker its timers wake (forwarding to `cx`'s task).
    fn relay(&mut self, cx: &Context<'_>) -> Waker {
        let relay = self.relay.get_or_insert_with(Arc::default).clone();
        self.follow(cx);
        Waker::from(relay)
    }

    /// Arm one more runtime timer that wakes `relay` at global instant `at`. Always pending: an
    /// instant already passed wakes `cx`'s task at once.
    fn arm(global: &GlobalTime, at: Instant, relay: &Waker, cx: &Context<'_>) -> Poll<()> {
        // Polled once: registers one runtime timer.
        let mut timer = match &global.0 {
            Some(time) => time.sleep_until(at),
            None => madsim::time::sleep_until(at),
        };
        if Pin::new(&mut timer).poll(&mut Context::from_waker(relay)).is_ready() {
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

impl Drop for QuietTimer {
    fn drop(&mut self) {
        if let Some(relay) = &self.relay {
            relay.0.lock().unwrap_or_else(|p| p.into_inner()).take();
        }
    }
}

/// A sleep until global instant `at` (a runtime sleep, as `tokio::time::sleep_until`) that arms
/// one timer however often it is polled and does not wake its task once dropped.
pub struct QuietSleep<'a> {
    global: &'a GlobalTime,
    at: Instant,
    armed: bool,
    timer: QuietTimer,
}

/// A [`QuietSleep`] of `d` from now, read on `global`.
pub fn quiet_sleep(global: &GlobalTime, d: Duration) -> QuietSleep<'_> {
    QuietSleep { global, at: global.now() + d, armed: false, timer: QuietTimer::default() }
}

impl Future for QuietSleep<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        if this.global.now() >= this.at {
            return Poll::Ready(());
        }
        if this.armed {
            this.timer.follow(cx);
            return Poll::Pending;
        }
        this.armed = true;
        let relay = this.timer.relay(cx);
        QuietTimer::arm(this.global, this.at, &relay, cx)
    }
}

impl Drop for ClockSleep {
    fn drop(&mut self) {
        self.clock.lock().sleepers.remove(&self.id);
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
