//! A worker: registration, keep-alive in store time with self-fencing, ack-on-start, handler
//! runs, completion with attempt fencing, graceful stop (drain, hand back, deregister).

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::node::{Assign, Core, ms};
use super::run::{Ended, RunEnded, run_job};
use super::state::{JobRecord, KeepAlive, job_key, pending_key};
use super::{JobHandler, WorkerExit};
use std::time::Duration;

use crate::clock::{Clock, Instant};
use crate::completer::Producer;
use crate::error::StoreError;
use crate::mutants::{self, Mutant};
use crate::observe::{self, MoveKind, PoolEvent};
use crate::shutdown::Shutdown;
use crate::store::{Expect, MapWrite, Store};

struct Running {
    attempt: u64,
    /// This worker's number for the run. Its end is matched by this, never by the attempt: the
    /// same attempt runs again when a fence stopped the first run and, once unfenced, the record
    /// is announced again (or when an ack failed). The first run's end, still queued, must not
    /// untrack the second, which the next fence would then miss (P2, found by per-node latency
    /// on pool seed 135: the untracked run went on 0.63 s beside the requeued attempt).
    run: u64,
    stop: Shutdown,
    task: tokio::task::JoinHandle<()>,
}

pub(crate) struct Worker<S: Store, H: JobHandler> {
    pub core: Arc<Core<S>>,
    pub id: String,
    pub handler: Arc<H>,
    /// The worker's own token: cancelled by its handle or by the node's stop, never by the caller.
    pub token: Shutdown,
    /// The caller's request token (only the MP6 mutant binds anything to it).
    pub caller: Shutdown,
    pub intake: mpsc::Receiver<Assign>,
    /// This worker's producer of completion events (None if the completer was already stopping).
    pub producer: Option<Arc<Producer>>,
}

enum Beat {
    Ok,
    Failed,
    Dead,
}

impl<S: Store, H: JobHandler> Worker<S, H> {
    pub async fn run(mut self) -> WorkerExit {
        let exit = self.run_inner().await;
        self.core.unregister_local(&self.id);
        exit
    }

    async fn run_inner(&mut self) -> WorkerExit {
        let cfg = self.core.cfg.clone();
        let Some((mut last, mut confirmed_until)) = self.register().await else {
            return WorkerExit::Stopped;
        };
        // MP6: the worker's loop is bound to the caller's request instead of its own token.
        let bound = if mutants::active(Mutant::MP6) { self.caller.clone() } else { self.token.clone() };
        let (done_tx, mut done_rx) = mpsc::channel::<Ended>(cfg.intake_buffer);
        let mut running: BTreeMap<String, Running> = BTreeMap::new();
        let mut runs: u64 = 0;
        let mut inflight: Vec<String> = Vec::new();
        let mut fenced = false;
        let mut drain_until: Option<Instant> = None;
        // MP10 (pulse #61): the jobs this worker removed from the maps when its stop began, kept
        // in memory only until the hand-back writes them back.
        let mut removed: Option<Vec<(String, String)>> = None;
        let mut next_beat = self.core.clock.now() + cfg.keepalive_interval;
        loop {
            if drain_until.is_none() && (self.token.is_cancelled() || bound.is_cancelled()) {
                if !self.token.is_cancelled() {
                    // MP6: the caller's request ended; its tasks stop without a word, the jobs'
                    // handlers keep running (a zombie) and nothing deregisters.
                    return WorkerExit::Stopped;
                }
                let deadline = self.core.clock.now() + cfg.shutdown_deadline;
                drain_until = Some(deadline);
                observe::emit(PoolEvent::WorkerStopping { worker: (&self.id).into(), running: running.len() });
                next_beat = self.core.clock.now();
                if mutants::active(Mutant::MP10) {
                    // MP10 (pulse #61): "remove worker immediately to avoid job requeuing by other
                    // nodes", then drain, and requeue from memory afterwards. It stops beating.
                    removed = Some(self.remove_from_maps().await);
                    next_beat = deadline;
                }
            }
            if let Some(d) = drain_until
                && (running.is_empty() || self.core.clock.now() >= d)
            {
                break;
            }
            // Fence before anything else (after a pause the deadline may be long past).
            if !fenced && self.core.clock.now() >= confirmed_until {
                // We can no longer prove we are alive: others may requeue our jobs soon, so stop
                // running them now (before our keep-alive goes stale in store time).
                fenced = true;
                observe::emit(PoolEvent::Fenced { worker: (&self.id).into(), running: running.len() });
                stop_all(&mut running, &*self.core.clock, cfg.shutdown_deadline).await;
            }
            let wake = next_beat.min(if fenced { next_beat } else { confirmed_until });
            tokio::select! {
            biased; // a fixed poll order: tokio's random one is not reproducible across runs in a thread
                    _ = self.token.cancelled(), if drain_until.is_none() => continue,
                    _ = bound.cancelled(), if drain_until.is_none() => continue,
                    _ = self.core.clock.sleep_until(wake) => {}
                    a = self.intake.recv(), if drain_until.is_none() && !fenced => {
                        if let Some((job, raw)) = a {
                            self.on_record(&mut running, &mut runs, &done_tx, job, raw);
                        }
                        continue;
                    }
                    d = done_rx.recv() => {
                        if let Some(e) = d && running.get(&e.job).is_some_and(|r| e.is_of(r)) {
                            running.remove(&e.job);
                        }
                        continue;
                    }
                }
            let now = self.core.clock.now();
            if now >= next_beat && removed.is_none() {
                let sent = now;
                // The beat may hang (store down, partition, pause mid-request): the fence
                // deadline still fires while it is in flight.
                let beat = self.beat(&mut last, &mut inflight, drain_until.is_some());
                tokio::pin!(beat);
                let result = loop {
                    tokio::select! {
                    biased; // a fixed poll order: tokio's random one is not reproducible across runs in a thread
                                    r = &mut beat => break r,
                                    _ = self.core.clock.sleep_until(confirmed_until), if !fenced => {
                                        fenced = true;
                                        observe::emit(PoolEvent::Fenced { worker: (&self.id).into(), running: running.len() });
                                        stop_all(&mut running, &*self.core.clock, cfg.shutdown_deadline).await;
                                    }
                                }
                };
                match result {
                    Beat::Ok => {
                        confirmed_until = sent + cfg.worker_ttl - cfg.drift_margin;
                        if fenced {
                            fenced = false;
                            observe::emit(PoolEvent::Unfenced { worker: (&self.id).into() });
                        }
                    }
                    Beat::Failed => {}
                    Beat::Dead => {
                        observe::emit(PoolEvent::WorkerDead { worker: (&self.id).into() });
                        stop_all(&mut running, &*self.core.clock, cfg.shutdown_deadline).await;
                        return WorkerExit::Dead;
                    }
                }
                next_beat = self.core.clock.now() + cfg.keepalive_interval;
            }
        }
        // Drain over: stop what still runs, hand back every job we own, deregister.
        if mutants::active(Mutant::MC10) {
            running.clear(); // MC10: the handlers' tasks are detached, still running
        } else {
            stop_all(&mut running, &*self.core.clock, cfg.shutdown_deadline).await;
        }
        // Every run has ended, so every completion of ours is in the completer: finish our
        // producer before deregistering (the completer's stop waits for it, then flushes).
        self.producer.take();
        if let Some(jobs) = removed {
            self.requeue_from_memory(jobs).await;
        } else {
            self.hand_back().await;
            self.deregister(&last).await;
        }
        observe::emit(PoolEvent::WorkerStopped { worker: (&self.id).into() });
        WorkerExit::Stopped
    }

    /// Write the keep-alive, then the registration. Returns the keep-alive value and the local
    /// deadline it confirms.
    async fn register(&self) -> Option<(String, Instant)> {
        let cfg = &self.core.cfg;
        let mut wait = cfg.cleanup_backoff.0;
        loop {
            if self.token.is_cancelled() {
                return None;
            }
            let sent = self.core.clock.now();
            let r: Result<String, StoreError> = async {
                let now = self.core.op("time", self.core.store.time_ms()).await?;
                let ka = KeepAlive { ms: now, ttl_ms: Some(ms(cfg.worker_ttl)), stopping: false }.encode();
                observe::emit(PoolEvent::Keepalive { worker: (&self.id).into(), ms: now });
                let set = self.core.store.map_write(&self.core.maps.keepalive, &self.id, MapWrite::Set(ka.clone()));
                self.core.op("map_write", set).await?;
                let reg = self.core.store.map_write(&self.core.maps.workers, &self.id, MapWrite::Set(cfg.node.clone()));
                self.core.op("map_write", reg).await?;
                Ok(ka)
            }
            .await;
            match r {
                Ok(ka) => {
                    observe::emit(PoolEvent::WorkerRegistered { worker: (&self.id).into() });
                    return Some((ka, sent + cfg.worker_ttl - cfg.drift_margin));
                }
                Err(e) => debug!(target: "keel::pool", worker = %self.id, error = %e, "registration failed; retrying"),
            }
            tokio::select! {
            biased; // a fixed poll order: tokio's random one is not reproducible across runs in a thread
                    _ = self.token.cancelled() => return None,
                    _ = self.core.clock.sleep(wait) => {}
                }
            wait = (wait * 2).min(cfg.keepalive_interval);
        }
    }

    /// One keep-alive: compare-and-set from the last value we wrote. A value we do not know means
    /// a cleaner took the worker (or the store lost it): the worker is dead.
    async fn beat(&self, last: &mut String, inflight: &mut Vec<String>, stopping: bool) -> Beat {
        let now = match self.core.op("time", self.core.store.time_ms()).await {
            Ok(t) => t,
            Err(_) => return Beat::Failed,
        };
        let new = KeepAlive { ms: now, ttl_ms: Some(ms(self.core.cfg.worker_ttl)), stopping }.encode();
        observe::emit(PoolEvent::Keepalive { worker: (&self.id).into(), ms: now });
        let cas = MapWrite::CompareAndSet { expected: last.clone(), new: new.clone() };
        match self.core.op("map_write", self.core.store.map_write(&self.core.maps.keepalive, &self.id, cas)).await {
            Ok(out) if out.applied => {
                *last = new;
                inflight.clear();
                Beat::Ok
            }
            Ok(out) => match out.value {
                // An earlier write whose reply was lost did land: adopt it and beat again next time.
                Some(v) if inflight.contains(&v) => {
                    *last = v;
                    inflight.clear();
                    Beat::Failed
                }
                _ => Beat::Dead,
            },
            Err(_) => {
                if inflight.len() < 16 {
                    inflight.push(new);
                }
                Beat::Failed
            }
        }
    }

    /// A job's record changed (or was re-announced): start it if it is ours at a newer attempt,
    /// stop our run of it if it moved on or is gone.
    fn on_record(
        &self,
        running: &mut BTreeMap<String, Running>,
        runs: &mut u64,
        done: &mpsc::Sender<Ended>,
        job: String,
        raw: Option<String>,
    ) {
        let rec = raw.as_deref().and_then(JobRecord::parse);
        let ours = rec.as_ref().filter(|r| r.owner == self.id);
        if let Some(r) = running.get(&job) {
            match ours {
                Some(rec) if r.attempt >= rec.attempt && !r.task.is_finished() => {
                    // A repeated delivery (a sweep's re-announcement) of the run we have: ignored.
                    // MP16 (pulse #87): started again instead; the duplicate start fails and its
                    // cleanup deletes the job's record while the first handler still runs.
                    if mutants::active(Mutant::MP16)
                        && rec.attempt == r.attempt
                        && let Some(raw) = raw.clone()
                    {
                        tokio::spawn(failed_start_cleanup(self.core.clone(), job, raw));
                    }
                    return;
                }
                Some(rec) => {
                    // A job's run is replaced only by a newer attempt (or after it finished).
                    crate::keel_assert!(rec.attempt > r.attempt || r.task.is_finished(), "attempts only grow per job");
                    r.stop.cancel()
                }
                None => {
                    // Moved to another worker or a newer attempt, or gone: our run is stale.
                    if !r.task.is_finished() && rec.is_none_or(|x| x.attempt > r.attempt) {
                        r.stop.cancel();
                    }
                    return;
                }
            }
        }
        let (Some(rec), Some(raw)) = (ours.cloned(), raw) else { return };
        let stop = Shutdown::new(format!("{}/{}", self.id, job));
        *runs += 1;
        let ended = RunEnded { tx: done.clone(), ended: Ended { job: job.clone(), run: *runs } };
        let task = tokio::spawn(run_job(
            self.core.clone(),
            self.handler.clone(),
            self.id.clone(),
            job.clone(),
            raw,
            rec.clone(),
            stop.clone(),
            ended,
            self.producer.clone(),
        ));
        running.insert(job, Running { attempt: rec.attempt, run: *runs, stop, task });
    }

    /// Give every job this worker still owns to another live worker (or queue it).
    async fn hand_back(&self) {
        let Ok(mut view) = self.core.view(false).await else {
            warn!(target: "keel::pool", worker = %self.id, "could not read jobs to hand back; the cleanup will requeue them");
            return;
        };
        let owned: Vec<(String, String)> =
            view.records().filter(|(_, r)| r.owner == self.id).map(|(j, r)| (j.to_owned(), r.encode())).collect();
        for (job, raw) in owned {
            if let Err(e) = self.core.move_job(&mut view, &job, &raw, None, &self.id, MoveKind::HandedBack).await {
                warn!(target: "keel::pool", worker = %self.id, job = %job, error = %e, "hand-back failed; the cleanup will requeue it");
            }
        }
    }

    /// MP10 (pulse #61, `removeWorkerFromMaps` on close): delete the records (and pending
    /// entries) of every job this worker owns, its keep-alive and its registration, keeping the
    /// jobs in memory. From here until [`requeue_from_memory`](Self::requeue_from_memory) a
    /// crash loses them, and a concurrent cleaner finds nothing to requeue.
    async fn remove_from_maps(&self) -> Vec<(String, String)> {
        let Ok(view) = self.core.view(false).await else { return Vec::new() };
        let owned: Vec<(String, String)> =
            view.records().filter(|(_, r)| r.owner == self.id).map(|(j, r)| (j.to_owned(), r.encode())).collect();
        let writes: Vec<(String, Option<String>)> =
            owned.iter().flat_map(|(j, _)| [(job_key(j), None), (pending_key(j), None)]).collect();
        let maps = &self.core.maps;
        let _ = self.core.op("map_txn", self.core.store.map_txn(&maps.jobs, &[], &writes)).await;
        let del = self.core.store.map_write(&maps.keepalive, &self.id, MapWrite::Delete);
        let _ = self.core.op("map_write", del).await;
        let del = self.core.store.map_write(&maps.workers, &self.id, MapWrite::Delete);
        let _ = self.core.op("map_write", del).await;
        owned
    }

    /// MP10: write the removed jobs back (each only if absent), to other workers.
    async fn requeue_from_memory(&self, jobs: Vec<(String, String)>) {
        let Ok(mut view) = self.core.view(false).await else { return };
        for (job, raw) in jobs {
            let _ = self.core.reinsert(&mut view, &job, &raw, &self.id).await;
        }
    }

    /// Delete the keep-alive (no dispatcher picks us from here on), then the registration.
    async fn deregister(&self, last: &str) {
        let maps = &self.core.maps;
        let del = self.core.store.map_write(&maps.keepalive, &self.id, MapWrite::CompareAndDelete(last.to_owned()));
        if self.core.op("map_write", del).await.is_err() {
            return; // left stale: the cleanup finishes it
        }
        let del = self.core.store.map_write(&maps.workers, &self.id, MapWrite::Delete);
        let _ = self.core.op("map_write", del).await;
    }
}

/// MP16 (pulse #87): the failed-start cleanup of a duplicate start. It deletes the job's record
/// and pending entry, guarded by the record it was delivered with, which is the record of the run
/// still going: the job disappears and nothing runs it again.
async fn failed_start_cleanup<S: Store>(core: Arc<Core<S>>, job: String, raw: String) {
    let guards = [(job_key(&job), Expect::Value(raw))];
    let writes = [(job_key(&job), None), (pending_key(&job), None)];
    let _ = core.op("map_txn", core.store.map_txn(&core.maps.jobs, &guards, &writes)).await;
}

/// Ask every running handler to stop and wait for it, aborting one that ignores the request
/// for longer than `grace` (so a stuck handler cannot wedge the worker).
async fn stop_all(running: &mut BTreeMap<String, Running>, clock: &dyn Clock, grace: Duration) {
    for r in running.values() {
        r.stop.cancel();
    }
    let deadline = clock.now() + grace;
    for (job, r) in std::mem::take(running) {
        let mut task = r.task;
        tokio::select! {
        biased; // a fixed poll order: tokio's random one is not reproducible across runs in a thread
            _ = &mut task => {}
            _ = clock.sleep_until(deadline) => {
                warn!(target: "keel::pool", job = %job, "handler ignored its stop; aborting it");
                task.abort();
            }
        }
    }
}

impl Ended {
    /// Whether this is the end of the tracked run `r` (by the run's number, see [`Running::run`]).
    fn is_of(&self, r: &Running) -> bool {
        r.run == self.run
    }
}
