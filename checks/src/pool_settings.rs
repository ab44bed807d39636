//! P80: a pool node's timings are the settings it was given, judged at each announcement.
//!
//! A pool node announces the timing of every retry and bound as it uses it: a failed read of
//! the store's time at start (`start_retry`: the backoff's floor and cap), a failed
//! registration (`register_failed`), a failed requeue or completion (`requeue_retry`,
//! `complete_retry`: the backoff and the tries allowed), a failed watch open or table resync
//! (`watch_open_failed`, `router_resync_failed`: the wait), a failed keep-alive snapshot
//! (`keepalive_resync_failed`), a worker's registration and stop (`worker_registered`,
//! `worker_stopping`: its beat period, its drain's bound), a worker slot's restart policy
//! (`slot_started`), its op timeout, dedup window and drift margin (`node_started`), and the node's completer's settings (`completer_started` of
//! `keel:pool:{pool}`). The rules of the retries themselves (P24, P26, P31, P67, P68, P69) judge
//! keel against what it announced, so a path that reads the wrong setting, announcing and using
//! it alike, passes them all: hunt 43 A planted a start whose backoff was capped at the
//! keep-alive interval instead of the sweep interval, and P67 agreed with it. This judges each
//! announcement against the settings the node was given, with the documented defaults
//! ([`PoolSettings::documented`], `PoolConfigBuilder`'s docs and docs/pool.md) for those it was
//! not.

use std::time::Duration;

use keel::observe::{CompleterEvent, PoolEvent};

use crate::{Entry, Violation, plain};

/// What a pool node was configured with, every default filled in as documented.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolSettings {
    /// The pool's name: its completer is `keel:pool:{pool}`.
    pub pool: String,
    /// `worker_ttl`.
    pub worker_ttl: Duration,
    /// `keepalive_interval` (default ttl/3).
    pub keepalive_interval: Duration,
    /// `sweep_interval` (default ttl/3).
    pub sweep_interval: Duration,
    /// `op_timeout` (default keepalive_interval/2).
    pub op_timeout: Duration,
    /// `cleanup_retries`' attempts (default 5).
    pub cleanup_retries: u32,
    /// `cleanup_retries`' backoff bounds (default: a quarter of the sweep interval, at most
    /// 20 ms, up to half the sweep interval).
    pub cleanup_backoff: (Duration, Duration),
    /// `shutdown_deadline` (default ttl).
    pub shutdown_deadline: Duration,
    /// `worker_restart` (default ttl/10 .. ttl; None: `no_worker_restart`).
    pub worker_restart: Option<(Duration, Duration)>,
    /// `start_timeout` (default 30 s).
    pub start_timeout: Duration,
    /// `dedup_window` (default 10·worker_ttl).
    pub dedup_window: Duration,
    /// `drift_margin` (default worker_ttl/10).
    pub drift_margin: Duration,
}

impl PoolSettings {
    /// Pool `pool` built with `worker_ttl` and, if given, `sweep_interval`, every other setting
    /// its documented default (`PoolConfigBuilder`). Set a field to what a builder set instead.
    pub fn documented(pool: &str, worker_ttl: Duration, sweep_interval: Option<Duration>) -> Self {
        let ms = Duration::from_millis;
        let keepalive_interval = worker_ttl / 3;
        let sweep_interval = sweep_interval.unwrap_or(worker_ttl / 3);
        let backoff_max = (sweep_interval / 2).clamp(ms(1), Duration::from_secs(3600));
        let backoff_min = (sweep_interval / 4).clamp(ms(1), ms(20)).min(backoff_max);
        PoolSettings {
            pool: pool.to_owned(),
            worker_ttl,
            keepalive_interval,
            sweep_interval,
            op_timeout: keepalive_interval / 2,
            cleanup_retries: 5,
            cleanup_backoff: (backoff_min, backoff_max),
            shutdown_deadline: worker_ttl,
            worker_restart: Some(((worker_ttl / 10).max(ms(1)), worker_ttl)),
            start_timeout: Duration::from_secs(30),
            dedup_window: worker_ttl * 10,
            drift_margin: worker_ttl / 10,
        }
    }

    /// The node's completer's flush period: ttl/20, from 1 ms to 50 ms.
    fn completer_flush(&self) -> Duration {
        (self.worker_ttl / 20).clamp(Duration::from_millis(1), Duration::from_millis(50))
    }
}

fn us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// P80 over keel's pool and completer events of the nodes configured with `want`: see the
/// module's doc. The first 20 violations.
pub fn pool_timings_follow_their_settings<E: Entry>(events: &[E], want: &PoolSettings) -> Vec<Violation> {
    let mut v = Vec::new();
    let backoff = (us(want.cleanup_backoff.0), us(want.cleanup_backoff.1));
    let completer = format!("keel:pool:{}", want.pool);
    for e in events {
        // (what, announced, configured)
        let mut figures: Vec<(&str, u64, u64)> = Vec::new();
        match e.keel() {
            Some(keel::observe::Event::Pool(p)) => match p {
                PoolEvent::NodeStarted { op_timeout_us, dedup_window_us, drift_margin_us, .. } => {
                    figures.push(("op timeout", *op_timeout_us, us(want.op_timeout)));
                    figures.push(("dedup window", *dedup_window_us, us(want.dedup_window)));
                    figures.push(("drift margin", *drift_margin_us, us(want.drift_margin)));
                }
                PoolEvent::StartRetry { retry_min_us, retry_max_us, remaining_us, .. } => {
                    figures.push(("start's backoff floor (cleanup_backoff's min)", *retry_min_us, backoff.0));
                    let cap = us(want.sweep_interval.max(want.cleanup_backoff.0));
                    figures.push(("start's backoff cap (the sweep interval)", *retry_max_us, cap));
                    // What is left of the start's bound can be no more than the bound.
                    if *remaining_us > us(want.start_timeout) {
                        figures.push(("start's remaining wait", *remaining_us, us(want.start_timeout)));
                    }
                }
                PoolEvent::RegisterFailed { retry_min_us, retry_max_us, .. } => {
                    figures.push(("registration's backoff floor (cleanup_backoff's min)", *retry_min_us, backoff.0));
                    let cap = us(want.keepalive_interval);
                    figures.push(("registration's backoff cap (the keep-alive interval)", *retry_max_us, cap));
                }
                PoolEvent::RequeueRetry { retry_min_us, retry_max_us, tries_max, .. } => {
                    figures.push(("requeue's backoff floor (cleanup_backoff)", *retry_min_us, backoff.0));
                    figures.push(("requeue's backoff cap (cleanup_backoff)", *retry_max_us, backoff.1));
                    figures.push((
                        "requeue's tries (cleanup_retries)",
                        u64::from(*tries_max),
                        u64::from(want.cleanup_retries),
                    ));
                }
                PoolEvent::CompleteRetry { retry_min_us, retry_max_us, tries_max, .. } => {
                    figures.push(("completion's backoff floor (cleanup_backoff)", *retry_min_us, backoff.0));
                    figures.push(("completion's backoff cap (cleanup_backoff)", *retry_max_us, backoff.1));
                    figures.push((
                        "completion's tries (cleanup_retries)",
                        u64::from(*tries_max),
                        u64::from(want.cleanup_retries),
                    ));
                }
                PoolEvent::RouterResyncFailed { retry_us, .. } | PoolEvent::WatchOpenFailed { retry_us, .. } => {
                    figures.push(("watch or table retry (the sweep interval)", *retry_us, us(want.sweep_interval)));
                }
                PoolEvent::KeepaliveResyncFailed { retry_us, .. } => {
                    figures.push((
                        "keep-alive snapshot retry (the keep-alive interval)",
                        *retry_us,
                        us(want.keepalive_interval),
                    ));
                }
                PoolEvent::WorkerRegistered { keepalive_interval_us, shutdown_deadline_us, .. } => {
                    figures.push(("keep-alive interval", *keepalive_interval_us, us(want.keepalive_interval)));
                    figures.push(("shutdown deadline", *shutdown_deadline_us, us(want.shutdown_deadline)));
                }
                PoolEvent::WorkerStopping { drain_ms, beat_bound_ms, .. } => {
                    figures.push((
                        "drain's bound in ms (the shutdown deadline)",
                        *drain_ms,
                        ms(want.shutdown_deadline),
                    ));
                    figures.push(("beat's bound in ms (two op timeouts)", *beat_bound_ms, ms(want.op_timeout) * 2));
                }
                PoolEvent::SlotStarted { restart_min_ms, restart_max_ms, reset_after_ms, .. } => {
                    let (min, max) = want.worker_restart.map_or((0, 0), |(a, b)| (ms(a), ms(b)));
                    figures.push(("restart backoff's floor in ms (worker_restart)", *restart_min_ms, min));
                    figures.push(("restart backoff's cap in ms (worker_restart)", *restart_max_ms, max));
                    figures.push((
                        "restart backoff's reset in ms (the worker TTL)",
                        *reset_after_ms,
                        ms(want.worker_ttl),
                    ));
                }
                _ => {}
            },
            Some(keel::observe::Event::Completer(CompleterEvent::CompleterStarted {
                completer: c,
                batch_size,
                flush_interval_us,
                retry_min_us,
                retry_max_us,
                retry_budget,
                op_timeout_us,
                backlog: 4096,
                ..
            })) if plain(c) == completer => {
                figures.push(("completer's batch size (128)", *batch_size as u64, 128));
                figures.push((
                    "completer's flush period (ttl/20, 1 to 50 ms)",
                    *flush_interval_us,
                    us(want.completer_flush()),
                ));
                figures.push(("completer's backoff floor (cleanup_backoff)", *retry_min_us, backoff.0));
                figures.push(("completer's backoff cap (cleanup_backoff)", *retry_max_us, backoff.1));
                figures.push(("completer's retry budget (8)", u64::from(*retry_budget), 8));
                figures.push(("completer's op timeout (the pool's)", *op_timeout_us, us(want.op_timeout)));
            }
            _ => {}
        }
        for (what, announced, configured) in figures {
            if announced != configured && v.len() < 20 {
                v.push(Violation::new(
                    "P80",
                    e.t_us(),
                    format!("{}: a {what} of {announced}, where its settings make it {configured}", e.node()),
                ));
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_entry::{E as Ev, at_ms, pool_at};

    fn settings() -> PoolSettings {
        PoolSettings::documented("p", Duration::from_millis(1500), Some(Duration::from_millis(150)))
    }

    fn start_retry(t_ms: u64, max_us: u64) -> Ev {
        let (pool, node, error) = ("p".into(), "n1".into(), "x".into());
        let e = PoolEvent::StartRetry {
            pool,
            node,
            attempt: 1,
            took_us: 1,
            retry_min_us: 20_000,
            retry_max_us: max_us,
            remaining_us: 29_000_000,
            error,
        };
        pool_at(t_ms, e)
    }

    #[test]
    fn the_documented_defaults() {
        let s = settings();
        let ms = Duration::from_millis;
        assert_eq!((s.keepalive_interval, s.op_timeout), (ms(500), ms(250)));
        assert_eq!(s.cleanup_backoff, (ms(20), ms(75)));
        assert_eq!(s.worker_restart, Some((ms(150), ms(1500))));
        assert_eq!(s.completer_flush(), ms(50));
    }

    /// The start's backoff capped at the sweep interval passes; one capped at the keep-alive
    /// interval (MC404, hunt 43 A's leftover) is P80 at its first announcement, though P67,
    /// which judges the announced cap, agrees with it.
    #[test]
    fn a_start_backoff_capped_by_the_wrong_setting_fires_p80() {
        let s = settings();
        assert!(pool_timings_follow_their_settings(&[start_retry(5, 150_000)], &s).is_empty());
        let v = pool_timings_follow_their_settings(&[start_retry(5, 500_000), start_retry(25, 500_000)], &s);
        assert_eq!(at_ms(&v), [("P80", 5), ("P80", 25)]);
    }

    #[test]
    fn every_announcement_is_judged() {
        let s = settings();
        let retry = |min_us, max_us, tries_max| PoolEvent::RequeueRetry {
            job: "j".into(),
            worker: "w".into(),
            error: "x".into(),
            took_us: 1,
            retry_min_us: min_us,
            retry_max_us: max_us,
            tries_max,
        };
        let judge = |e: PoolEvent<'_>| at_ms(&pool_timings_follow_their_settings(&[pool_at(7, e)], &s));
        let announced = |dedup_window_us, drift_margin_us| PoolEvent::NodeStarted {
            pool: "p".into(),
            node: "n1".into(),
            ack_grace_us: 1,
            sweep_interval_us: 1,
            cleanup_lock_ttl_us: 1,
            op_timeout_us: 250_000,
            dedup_window_us,
            drift_margin_us,
        };
        let started = |dedup_window_us| announced(dedup_window_us, 150_000);
        // The dedup window's default: 10 worker TTLs.
        assert_eq!(judge(started(15_000_000)), []);
        assert_eq!(judge(started(1_500_000)), [("P80", 7)]);
        // The drift margin's default: a tenth of the TTL (MC460: a quarter).
        assert_eq!(judge(announced(15_000_000, 375_000)), [("P80", 7)]);
        assert_eq!(judge(retry(20_000, 75_000, 5)), []);
        assert_eq!(judge(retry(20_000, 150_000, 5)), [("P80", 7)]);
        assert_eq!(judge(retry(20_000, 75_000, 4)), [("P80", 7)]);
        let reg = |max_us| PoolEvent::RegisterFailed {
            worker: "w".into(),
            took_us: 1,
            retry_min_us: 20_000,
            retry_max_us: max_us,
        };
        assert_eq!(judge(reg(500_000)), []);
        assert_eq!(judge(reg(75_000)), [("P80", 7)]);
        let ka =
            |retry_us| PoolEvent::KeepaliveResyncFailed { pool: "p".into(), took_us: 1, retry_us, error: "x".into() };
        assert_eq!(judge(ka(500_000)), []);
        assert_eq!(judge(ka(150_000)), [("P80", 7)]);
        let slot = |max_ms, reset_ms| PoolEvent::SlotStarted {
            worker: "w".into(),
            restart_min_ms: 150,
            restart_max_ms: max_ms,
            reset_after_ms: reset_ms,
        };
        assert_eq!(judge(slot(1500, 1500)), []);
        assert_eq!(judge(slot(750, 1500)), [("P80", 7)]);
        assert_eq!(judge(slot(1500, 500)), [("P80", 7)]);
        let stopping = |drain_ms, beat_ms| PoolEvent::WorkerStopping {
            worker: "w".into(),
            running: 1,
            drain_ms,
            beat_bound_ms: beat_ms,
        };
        assert_eq!(judge(stopping(1500, 500)), []);
        assert_eq!(judge(stopping(1500, 1000)), [("P80", 7)]);
    }

    /// The pool's completer runs the pool's backoff and a flush of ttl/20 at most 50 ms; another
    /// completer is not judged.
    #[test]
    fn the_pools_completer_is_judged_and_no_other() {
        let s = settings();
        let started = |name: &str, flush_us| {
            crate::test_entry::completer_at(
                3,
                CompleterEvent::CompleterStarted {
                    completer: name.into(),
                    run: 1,
                    batch_size: 128,
                    flush_interval_us: flush_us,
                    retry_min_us: 20_000,
                    retry_max_us: 75_000,
                    retry_budget: 8,
                    op_timeout_us: 250_000,
                    backlog: 4096,
                },
            )
        };
        assert!(pool_timings_follow_their_settings(&[started("keel:pool:p", 50_000)], &s).is_empty());
        let v = pool_timings_follow_their_settings(&[started("keel:pool:p", 75_000)], &s);
        assert_eq!(at_ms(&v), [("P80", 3)]);
        assert!(pool_timings_follow_their_settings(&[started("other", 75_000)], &s).is_empty());
    }
}
