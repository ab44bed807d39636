//! The run watchdog: a seed that makes no progress fails loudly instead of hanging its sweep.
//!
//! A task that loops on futures that are always ready never hands control back to madsim's
//! executor: simulated time stops and the run never ends, so no simulated limit can see it (the
//! blind-spot hunt's round 24, B #18: a lifecycle that awaited an exit already reported hung the
//! whole `check`, and a CI run would have hung to its own timeout). One OS thread per process
//! watches the runs from outside the simulations, by wall time. It reads nothing inside a run,
//! so it cannot change what a seed does; it only decides that a run has gone on too long. A whole
//! seed takes well under a second here, so the limit is generous: `KEEL_SIM_HANG_SECS` seconds
//! (default [`LIMIT_DEFAULT`]). Past it the watchdog prints the run and its replay line and exits
//! the process with [`HANG_EXIT_CODE`]: a thread stuck in a poll cannot be stopped from outside.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The exit code of a process whose run made no progress.
pub const HANG_EXIT_CODE: i32 = 3;

/// A run's wall-time limit unless `KEEL_SIM_HANG_SECS` says otherwise.
pub const LIMIT_DEFAULT: Duration = Duration::from_secs(300);

/// How often the watchdog looks.
const LOOK_EVERY: Duration = Duration::from_millis(250);

/// A run in progress: since when, and what to print if it hangs.
struct Running {
    since: Instant,
    what: String,
    replay: String,
}

static RUNNING: Mutex<BTreeMap<u64, Running>> = Mutex::new(BTreeMap::new());
static NEXT: AtomicU64 = AtomicU64::new(0);

fn running() -> std::sync::MutexGuard<'static, BTreeMap<u64, Running>> {
    RUNNING.lock().unwrap_or_else(|p| p.into_inner())
}

/// A run under watch; dropping it ends the watch.
pub struct Watched(u64);

impl Drop for Watched {
    fn drop(&mut self) {
        running().remove(&self.0);
    }
}

/// Watch a run from now on: `what` names it, `replay` is its replay line.
pub fn watch(what: String, replay: String) -> Watched {
    let limit = *limit();
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        // Detached on purpose: it lives as long as the process and never joins.
        let _ = std::thread::Builder::new().name("keel-sim-watchdog".into()).spawn(move || look(limit));
    });
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    running().insert(id, Running { since: Instant::now(), what, replay });
    Watched(id)
}

/// The limit: `KEEL_SIM_HANG_SECS` (whole seconds, at least 1), read once; a value that is not
/// a number is reported and the default kept.
pub fn limit() -> &'static Duration {
    static LIMIT: OnceLock<Duration> = OnceLock::new();
    LIMIT.get_or_init(|| match std::env::var("KEEL_SIM_HANG_SECS") {
        Err(_) => LIMIT_DEFAULT,
        Ok(s) => match s.trim().parse::<u64>() {
            Ok(secs) => Duration::from_secs(secs.max(1)),
            Err(e) => {
                eprintln!(
                    "keel-sim: KEEL_SIM_HANG_SECS={s:?} is not a whole number of seconds ({e}); the watchdog keeps {} s",
                    LIMIT_DEFAULT.as_secs()
                );
                LIMIT_DEFAULT
            }
        },
    })
}

fn look(limit: Duration) {
    loop {
        std::thread::sleep(LOOK_EVERY);
        let hung = running().values().find(|r| r.since.elapsed() > limit).map(|r| (r.what.clone(), r.replay.clone()));
        if let Some((what, replay)) = hung {
            eprintln!(
                "\nHANG {what}: no progress for {} s of wall time (KEEL_SIM_HANG_SECS): a task loops without yielding, or the run cannot end\n  {replay}",
                limit.as_secs()
            );
            std::process::exit(HANG_EXIT_CODE);
        }
    }
}
