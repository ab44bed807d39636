//! Worker supervision: a worker slot keeps one live incarnation of its worker.
//!
//! A worker dies when the pool cleaned it up while it could not prove it was alive (a store
//! outage or pause longer than `worker_ttl`, a frozen process) or when its task panicked. Its
//! jobs have moved elsewhere by then; what is missing is the worker itself. The slot replaces it
//! with a **fresh incarnation** (a new worker id: the dead id is fenced for good) after a
//! jittered backoff that doubles while replacements keep dying and starts over once one has
//! lived a TTL. A graceful stop (the handle's or the node's) ends the slot: no replacement.
//!
//! The backoff is a pure value ([`RestartBackoff`]); the loop ([`run_slot`]) only spawns, awaits
//! and sleeps on the node's clock, so the simulator replays it.

use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::mpsc;
use tracing::debug;

use super::node::Core;
use super::{JobHandler, WorkerExit, worker};
use crate::clock::Instant;
use crate::mutants::{self, Mutant};
use crate::observe::{self, PoolEvent, Text};
use crate::shutdown::Shutdown;
use crate::store::Store;
use crate::watch;

/// What a worker slot's handle sees: the current incarnation and, once the slot ended, how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SlotState {
    /// The id of the current (or last) incarnation.
    pub id: String,
    /// Incarnations started so far (1 + replacements).
    pub incarnations: u64,
    /// Set once the slot has ended (no further incarnation).
    pub exit: Option<WorkerExit>,
}

/// Jittered exponential backoff between replacements of a dying worker.
#[derive(Debug)]
pub(crate) struct RestartBackoff {
    min: Duration,
    max: Duration,
    /// Consecutive short-lived incarnations.
    streak: u32,
    rng: ChaCha8Rng,
}

/// Doublings of the backoff before it stays at its max (2^16·min is past any sane max).
const RESTART_DOUBLINGS_MAX: u32 = 16;

impl RestartBackoff {
    pub fn new(min: Duration, max: Duration, seed: u64) -> Self {
        assert!(!min.is_zero() && min <= max, "restart backoff bounds: {min:?} .. {max:?}");
        RestartBackoff { min, max, streak: 0, rng: ChaCha8Rng::seed_from_u64(seed) }
    }

    /// The wait before the next incarnation, after one that lived `lived` (one that lived at
    /// least `reset_after` starts the doubling over). Always within `[min/2, max]`.
    pub fn next(&mut self, lived: Duration, reset_after: Duration) -> Duration {
        if lived >= reset_after && !mutants::active(Mutant::MC72) {
            self.streak = 0;
        }
        let exp = self.min.saturating_mul(1u32 << self.streak.min(RESTART_DOUBLINGS_MAX)).min(self.max);
        self.streak = self.streak.saturating_add(1);
        // Full jitter in [exp/2, exp]: the workers of every node that lost the store at once do
        // not come back in lockstep.
        let half = exp / 2;
        let jitter_us = self.rng.gen_range(0..=u64::try_from(half.as_micros()).unwrap_or(u64::MAX));
        let wait = half + Duration::from_micros(jitter_us);
        assert!(wait <= self.max && wait >= self.min / 2, "backoff {wait:?} outside its bounds");
        wait
    }
}

/// A stable seed from a string (FNV-1a): deterministic per slot, different across slots.
fn seed(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// Start one incarnation of the slot's worker: a fresh id, its local queue and completion
/// producer, its task. Returns its id and its task.
fn spawn_incarnation<S: Store, H: JobHandler>(
    core: &Arc<Core<S>>,
    handler: &Arc<H>,
    slot: &Shutdown,
    caller: &Shutdown,
    replaces: Option<&str>,
) -> (String, Shutdown, tokio::task::JoinHandle<WorkerExit>) {
    let id = match replaces {
        // MC129: a replacement named by the dead incarnation's id, the slot's id kept.
        Some(dead) if mutants::active(Mutant::MC129) => dead.to_owned(),
        _ => core.new_worker_id(),
    };
    let token = slot.child(&format!("worker:{id}"));
    let (tx, rx) = mpsc::channel(core.cfg.intake_buffer);
    core.register_local(&id, tx);
    // Registered before the worker runs, so the completer's drain waits for this worker.
    let producer = match core.completer.producer(&id) {
        Ok(p) => Some(Arc::new(p)),
        Err(e) => {
            debug!(target: "keel::pool", worker = %id, error = %e, "no completion events for this worker (node stopping)");
            None
        }
    };
    let w = worker::Worker {
        producer,
        core: core.clone(),
        id: id.clone(),
        handler: handler.clone(),
        token: token.clone(),
        caller: caller.child("worker"),
        intake: rx,
    };
    // Counted at its spawn, not when the slot's supervisor first runs: a read of
    // `live_workers()` right after `add_worker` sees the worker registering (MC377).
    if !mutants::active(Mutant::MC377) {
        core.live_workers_changed(1);
    }
    (id, token, tokio::spawn(w.run()))
}

/// Keep one incarnation of the worker alive until `slot` is cancelled (graceful stop) or an
/// incarnation ends on its own without dying (`Stopped`: only the MP6 mutant does that).
pub(crate) async fn run_slot<S: Store, H: JobHandler>(
    core: Arc<Core<S>>,
    handler: Arc<H>,
    slot: Shutdown,
    caller: Shutdown,
    state: watch::Sender<SlotState>,
    first: (String, Shutdown, tokio::task::JoinHandle<WorkerExit>),
) {
    let (mut id, mut token, mut task) = first;
    let mut backoff = core.cfg.worker_restart.map(|(min, max)| RestartBackoff::new(min, max, seed(&id)));
    loop {
        let born: Instant = core.clock.now();
        if mutants::active(Mutant::MC377) {
            core.live_workers_changed(1);
        }
        let exit = task.await.unwrap_or(WorkerExit::Panicked);
        core.live_workers_changed(-1);
        token.cancel();
        // A panicked task skipped its own clean-up of the node's local table.
        core.unregister_local(&id);
        let (kept, routes) = core.local_state_of(&id);
        observe::emit(PoolEvent::WorkerForgotten { worker: (&id).into(), kept, routes });
        let ended = match exit {
            WorkerExit::Stopped => true,
            WorkerExit::Dead | WorkerExit::Panicked => {
                // MC378: the death counted only when the slot goes on to a replacement.
                if !mutants::active(Mutant::MC378) {
                    core.worker_died();
                }
                observe::emit(PoolEvent::WorkerDied { worker: (&id).into(), exit: Text::debug(&exit) });
                slot.is_cancelled() || backoff.is_none()
            }
        };
        if ended {
            slot_ended(&state, &id, exit);
            return;
        }
        if mutants::active(Mutant::MC378) && !matches!(exit, WorkerExit::Stopped) {
            core.worker_died();
        }
        // MC376: the replacement counted when its backoff begins: a slot stopped meanwhile
        // counts one never made.
        if mutants::active(Mutant::MC376) {
            core.worker_replaced();
        }
        let Some(b) = backoff.as_mut() else { return };
        let lived = core.clock.now().saturating_duration_since(born);
        let wait = b.next(lived, core.cfg.worker_ttl);
        // MC73: the wait counted from the incarnation's start, not its death.
        let wake = if mutants::active(Mutant::MC73) { born + wait } else { core.clock.now() + wait };
        // MC400: the backoff deaf to the slot's stop; the stop is heard once it ran out.
        if mutants::active(Mutant::MC400) {
            core.clock.sleep_until(wake).await;
        }
        tokio::select! {
            biased; // a fixed poll order: tokio's random one is not reproducible across runs in a thread
            _ = slot.cancelled() => {
                slot_ended(&state, &id, exit);
                return;
            }
            _ = core.clock.sleep_until(wake) => {}
        }
        let old = std::mem::take(&mut id);
        (id, token, task) = spawn_incarnation(&core, &handler, &slot, &caller, Some(&old));
        if !mutants::active(Mutant::MC376) {
            core.worker_replaced();
        }
        let after_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        observe::emit(PoolEvent::WorkerReplaced { worker: (&id).into(), replaces: (&old).into(), after_ms });
        state.send_modify(|s| {
            s.id = id.clone();
            if !mutants::active(Mutant::MC260) {
                s.incarnations += 1; // MC260: the replacement not counted
            }
        });
    }
}

/// The slot ends with its last incarnation's exit: no further incarnation.
fn slot_ended(state: &watch::Sender<SlotState>, id: &str, exit: WorkerExit) {
    observe::emit(PoolEvent::SlotEnded { worker: id.into(), exit: Text::debug(&exit) });
    state.send_modify(|s| s.exit = Some(exit));
}

/// Start a supervised worker slot on `core`, as a child of `node`. Returns the first
/// incarnation's id, the slot's token and its state.
pub(crate) fn start_slot<S: Store, H: JobHandler>(
    core: &Arc<Core<S>>,
    node: &Shutdown,
    handler: H,
    caller: &Shutdown,
) -> (Shutdown, watch::Receiver<SlotState>) {
    let handler = Arc::new(handler);
    let slot = node.child("worker-slot");
    let caller = caller.child("worker");
    let first = spawn_incarnation(core, &handler, &slot, &caller, None);
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let (restart_min_ms, restart_max_ms) = core.cfg.worker_restart.map_or((0, 0), |(min, max)| (ms(min), ms(max)));
    observe::emit(PoolEvent::SlotStarted {
        worker: (&first.0).into(),
        restart_min_ms,
        restart_max_ms,
        reset_after_ms: ms(core.cfg.worker_ttl),
    });
    let (tx, rx) = watch::channel(SlotState { id: first.0.clone(), incarnations: 1, exit: None });
    tokio::spawn(run_slot(core.clone(), handler, slot.clone(), caller, tx, first));
    (slot, rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_bounds_and_resets_after_a_long_life() {
        let (min, max) = (Duration::from_millis(100), Duration::from_millis(1000));
        let ttl = Duration::from_secs(3);
        let mut b = RestartBackoff::new(min, max, 7);
        let short = Duration::from_millis(10);
        let waits: Vec<Duration> = (0..8).map(|_| b.next(short, ttl)).collect();
        for (i, w) in waits.iter().enumerate() {
            let exp = min.saturating_mul(1 << i).min(max);
            assert!(*w >= exp / 2 && *w <= exp, "wait {i} = {w:?} not in [{:?}, {exp:?}]", exp / 2);
        }
        assert!(waits[7] >= max / 2, "capped at max: {waits:?}");
        let after_long_life = b.next(ttl, ttl);
        assert!(after_long_life <= min, "a worker that lived a TTL starts the doubling over: {after_long_life:?}");
        let mut same = RestartBackoff::new(min, max, 7);
        assert_eq!(same.next(short, ttl), waits[0], "same seed, same waits (replayable)");
    }
}
