//! A worker's driver: runs the pure [`WorkerMachine`] (registration, keep-alive in store time
//! with self-fencing, runs of the jobs it is given, graceful stop: drain, hand back, deregister)
//! against the store and the runs' tasks. One run (ack, handler, fenced completion) is
//! [`run_job`]'s.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::debug;

use super::node::{Assign, Core, ms};
use super::run::{Ended, RunEnded, run_job};
use super::state::{DEAD, JobRecord, KeepAlive, job_key, pending_key};
use super::worker_machine::{BeatReply, Command, Report, Timing, WorkerMachine};
use super::{JobHandler, WorkerExit};
use std::time::Duration;

use crate::clock::{Clock, Instant};
use crate::completer::Producer;
use crate::error::StoreError;
use crate::mutants::{self, Mutant};
use crate::observe::{self, MoveKind, PoolEvent, Text};
use crate::shutdown::Shutdown;
use crate::store::{Expect, MapWrite, Store};

/// A run's task, as the driver keeps it (the machine tracks the run itself).
struct Task {
    run: u64,
    /// The attempt it runs (what its stop reports).
    attempt: u64,
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

/// What the driver keeps beside the machine: the runs' tasks and channels.
struct Io {
    done_tx: mpsc::UnboundedSender<Ended>,
    tasks: BTreeMap<String, Task>,
    /// Runs replaced by a newer attempt of their job on this worker: asked to stop, and still
    /// stopped (waited for, aborted past the bound) with the rest at a fence, a death or the
    /// drain's end, so a handler that ignores its stop cannot outlive its worker.
    replaced: Vec<(String, Task)>,
    /// MP10 (pulse #61): the jobs this worker removed from the maps when its stop began, kept in
    /// memory only until the hand-back writes them back.
    removed: Vec<(String, String)>,
}

impl<S: Store, H: JobHandler> Worker<S, H> {
    pub async fn run(mut self) -> WorkerExit {
        let exit = self.run_inner().await;
        self.core.unregister_local(&self.id);
        exit
    }

    /// The driver of the pure [`WorkerMachine`]: performs its commands against the store and the
    /// runs' tasks, feeds the replies back, and sleeps until its next timeout or an input.
    async fn run_inner(&mut self) -> WorkerExit {
        let cfg = self.core.cfg.clone();
        let timing = Timing {
            worker_ttl: cfg.worker_ttl,
            drift_margin: cfg.drift_margin,
            keepalive_interval: cfg.keepalive_interval,
            shutdown_deadline: cfg.shutdown_deadline,
            // MC409: the floor read from `cleanup_backoff`'s max.
            register_backoff_min: if crate::mutants::active(crate::mutants::Mutant::MC409) {
                cfg.cleanup_backoff.1
            } else {
                cfg.cleanup_backoff.0
            },
        };
        let mut m = WorkerMachine::new(timing, &self.id, self.core.clock.now());
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Ended>();
        let mut io = Io { done_tx, tasks: BTreeMap::new(), replaced: Vec::new(), removed: Vec::new() };
        let mut intake_open = true;
        loop {
            // Judge the time first: after an await the fence deadline may be long past.
            m.on_timeout(self.core.clock.now());
            let mut acted = false;
            while let Some(command) = m.poll_command() {
                acted = true;
                if let Some(how) = self.perform(&mut m, &mut io, command).await {
                    return how;
                }
            }
            if acted {
                continue; // judge the time again after the awaits
            }
            let wake = m.next_timeout();
            tokio::select! {
                biased; // a fixed poll order: tokio's random one is not reproducible across runs in a thread
                _ = self.token.cancelled(), if m.listens_for_stop() => m.on_stop(self.core.clock.now()),
                // MP6 only (see `WorkerMachine::listens_to_caller`).
                _ = self.caller.cancelled(), if m.listens_to_caller() => m.on_caller_stopped(self.core.clock.now()),
                _ = sleep_until(&*self.core.clock, wake), if wake.is_some() => {}
                a = self.intake.recv(), if intake_open && m.accepts_records() => match a {
                    Some((job, raw)) => {
                        // Every run's end received so far goes first: a run that ended must not
                        // count as the one a repeated delivery repeats.
                        // MC207: the record taken in first: a repeated delivery of a run that
                        // ended is taken for the run still tracked, and ignored.
                        while !mutants::active(Mutant::MC207)
                            && let Ok(e) = done_rx.try_recv()
                        {
                            ended(&self.core, &self.id, &mut m, &mut io, e);
                        }
                        let (attempt, owner) = raw.as_deref().and_then(JobRecord::head).unwrap_or((0, ""));
                        let (worker, job_text, owner) = ((&self.id).into(), (&job).into(), owner.into());
                        observe::emit(PoolEvent::RecordDelivered { job: job_text, worker, attempt, owner });
                        m.on_record(self.core.clock.now(), &job, raw);
                    }
                    None => intake_open = false,
                },
                d = done_rx.recv(), if m.listens_for_runs() => {
                    if let Some(e) = d {
                        ended(&self.core, &self.id, &mut m, &mut io, e);
                    }
                }
            }
        }
    }

    /// Perform one command (feeding the machine its reply); returns the exit when it is one.
    async fn perform(&mut self, m: &mut WorkerMachine, io: &mut Io, command: Command) -> Option<WorkerExit> {
        let grace = self.core.cfg.shutdown_deadline;
        match command {
            Command::Register => match self.register().await {
                Registration::Fenced => m.on_register_fenced(self.core.clock.now()),
                Registration::Written(ka) => m.on_registered(self.core.clock.now(), Some(ka)),
                Registration::Failed => m.on_registered(self.core.clock.now(), None),
            },
            Command::Beat { expected, stopping } => {
                // The beat may hang (store down, partition, pause mid-request): the fence deadline
                // still fires while it is in flight, and nothing else is heard until it answers.
                let began = self.core.clock.now();
                let beat = self.beat(expected, stopping);
                tokio::pin!(beat);
                let reply = 'beat: loop {
                    let wake = m.next_timeout();
                    tokio::select! {
                        biased; // a fixed poll order: tokio's random one is not reproducible across runs in a thread
                        r = &mut beat => break r,
                        _ = sleep_until(&*self.core.clock, wake), if wake.is_some() => {
                            m.on_timeout(self.core.clock.now());
                            let mut answered = None;
                            while let Some(c) = m.poll_command() {
                                match c {
                                    Command::Report(r) => report(&self.id, r, self.beat_bound_ms()),
                                    Command::StopAll => {
                                        // The beat is polled while the runs stop, so its calls
                                        // keep their op timeout (E6) instead of waiting out the
                                        // stop's grace unpolled.
                                        let stop = stop_all(&self.core, &self.id, io, (grace, self.core.cfg.op_timeout));
                                        tokio::pin!(stop);
                                        // MC199: the runs stopped with the beat unpolled.
                                        while !mutants::active(Mutant::MC199) {
                                            tokio::select! {
                                                biased; // a fixed poll order: tokio's random one is not reproducible across runs in a thread
                                                () = &mut stop => break,
                                                r = &mut beat, if answered.is_none() => answered = Some(r),
                                            }
                                        }
                                        if mutants::active(Mutant::MC199) {
                                            stop.as_mut().await;
                                        }
                                    }
                                    c => crate::keel_assert!(false, "only the fence fires while a beat is in flight, got {c:?}"),
                                }
                            }
                            if let Some(r) = answered {
                                break 'beat r;
                            }
                        }
                    }
                };
                let now = self.core.clock.now();
                let took_us = crate::observe::micros(now.saturating_duration_since(began));
                let confirmed = matches!(reply, BeatReply::Applied { .. });
                observe::emit(PoolEvent::BeatEnded { worker: (&self.id).into(), took_us, confirmed });
                m.on_beat(now, reply);
            }
            Command::StartRun { job, raw, rec, run } => {
                let attempt = rec.attempt;
                self.core.local_run_started(&job, &self.id, attempt);
                let stop = Shutdown::new(format!("{}/{}", self.id, job));
                let ended = RunEnded { tx: io.done_tx.clone(), ended: Ended { job: job.clone(), run, attempt } };
                let task = tokio::spawn(run_job(
                    self.core.clone(),
                    self.handler.clone(),
                    self.id.clone(),
                    job.clone(),
                    raw,
                    rec,
                    stop.clone(),
                    ended,
                    self.producer.clone(),
                ));
                // A replaced run (an older attempt, asked to stop) goes on until it ends; the
                // stops of the whole worker still reach it.
                if let Some(old) = io.tasks.insert(job.clone(), Task { run, attempt, stop, task }) {
                    io.replaced.retain(|(_, t)| !t.task.is_finished());
                    io.replaced.push((job, old));
                }
            }
            Command::StopRun { job, run } => {
                // MC438: the run looked up by a number it does not have: no run is stopped.
                let task = io.tasks.get(&job).filter(|t| t.run == run && !mutants::active(Mutant::MC438));
                let attempt = task.map_or(0, |t| t.attempt);
                observe::emit(PoolEvent::RunStopAsked { job: (&job).into(), worker: (&self.id).into(), attempt });
                if let Some(t) = task {
                    t.stop.cancel();
                }
            }
            Command::StopAll => stop_all(&self.core, &self.id, io, (grace, self.core.cfg.op_timeout)).await,
            Command::DetachAll => {
                // MC10: the handlers' tasks go on, detached
                io.tasks.clear();
                io.replaced.clear();
            }
            Command::DuplicateStart { job, raw } => {
                tokio::spawn(failed_start_cleanup(self.core.clone(), job, raw));
            }
            Command::RemoveFromMaps => io.removed = self.remove_from_maps().await,
            Command::FinishProducer => drop(self.producer.take()),
            Command::HandBack => self.hand_back().await,
            Command::RequeueFromMemory => self.requeue_from_memory(std::mem::take(&mut io.removed)).await,
            Command::Deregister { expected, in_doubt } => self.deregister(&expected, &in_doubt).await,
            Command::Report(r) => report(&self.id, r, self.beat_bound_ms()),
            // MP6's exit drops the tasks here without stopping them: they keep running (zombies).
            Command::Exit(how) => return Some(how),
        }
        None
    }

    /// One registration attempt: read store time, write the keep-alive, then the registration.
    /// Returns the keep-alive value written.
    ///
    /// The keep-alive is written if absent, or over a value of an earlier attempt of ours (one
    /// whose reply was lost), never over the dead marker: a registration that took longer than
    /// a TTL may have been judged dead and fenced by a cleaner, which is moving its jobs. Until
    /// that cleanup deleted the marker, the attempt fails and is retried; an unconditional write
    /// revived the worker mid-cleanup (found by P20 at pool seed 774; MC71 re-injects it).
    async fn register(&self) -> Registration {
        let cfg = &self.core.cfg;
        let r: Result<String, StoreError> = async {
            let now = self.core.op("time", self.core.store.time_ms()).await?;
            let ttl_ms = ms(cfg.worker_ttl);
            let ka = KeepAlive { ms: now, ttl_ms: Some(ttl_ms), stopping: false }.encode();
            observe::emit(PoolEvent::Keepalive { worker: (&self.id).into(), ms: now, ttl_ms, stopping: false });
            // MC202: the registration written before the first keep-alive.
            let early = mutants::active(Mutant::MC202);
            if !early {
                self.write_first_keepalive(&ka).await?;
            }
            let reg = self.core.store.map_write(&self.core.maps.workers, &self.id, MapWrite::Set(cfg.node.clone()));
            self.core.op("map_write", reg).await?;
            if early {
                self.write_first_keepalive(&ka).await?;
            }
            Ok(ka)
        }
        .await;
        match r {
            Ok(ka) => Registration::Written(ka),
            // `fenced` is the one error the registration makes itself: the dead marker's.
            // MC439: every failed attempt taken for the dead marker's.
            Err(e) if e == fenced(&self.id) || mutants::active(Mutant::MC439) => Registration::Fenced,
            Err(e) => {
                debug!(target: "keel::pool", worker = %self.id, error = %e, "registration failed; retrying");
                Registration::Failed
            }
        }
    }

    /// Write the registration's keep-alive `ka`: if absent, or over an earlier attempt's value;
    /// an error if the key holds the dead marker (the attempt is retried).
    async fn write_first_keepalive(&self, ka: &str) -> Result<(), StoreError> {
        let map = &self.core.maps.keepalive;
        let first = if mutants::active(Mutant::MC71) {
            MapWrite::Set(ka.to_owned()) // MC71: keel before 2026-12-03 wrote over the dead marker
        } else {
            MapWrite::SetIfAbsent(ka.to_owned())
        };
        let out = self.core.op("map_write", self.core.store.map_write(map, &self.id, first)).await?;
        match out.value {
            _ if out.applied => Ok(()),
            Some(v) if v == ka => Ok(()),
            Some(v) if v != DEAD => {
                let cas = MapWrite::CompareAndSet { expected: v, new: ka.to_owned() };
                let out = self.core.op("map_write", self.core.store.map_write(map, &self.id, cas)).await?;
                if out.applied { Ok(()) } else { Err(fenced(&self.id)) }
            }
            _ => Err(fenced(&self.id)),
        }
    }

    /// The longest a beat takes: a read of store time and a compare-and-set, each cut at the
    /// operation timeout.
    fn beat_bound_ms(&self) -> u64 {
        ms(self.core.cfg.op_timeout).saturating_mul(2)
    }

    /// One keep-alive: compare-and-set from `expected`, the last value we know we wrote.
    async fn beat(&self, expected: String, stopping: bool) -> BeatReply {
        let Ok(now) = self.core.op("time", self.core.store.time_ms()).await else {
            return BeatReply::NotSent;
        };
        let ttl_ms = ms(self.core.cfg.worker_ttl);
        // MC299: the mark announced, not written.
        let written = stopping && !crate::mutants::active(crate::mutants::Mutant::MC299);
        let new = KeepAlive { ms: now, ttl_ms: Some(ttl_ms), stopping: written }.encode();
        observe::emit(PoolEvent::Keepalive { worker: (&self.id).into(), ms: now, ttl_ms, stopping });
        let cas = MapWrite::CompareAndSet { expected, new: new.clone() };
        match self.core.op("map_write", self.core.store.map_write(&self.core.maps.keepalive, &self.id, cas)).await {
            Ok(out) if out.applied => BeatReply::Applied { new },
            Ok(out) => BeatReply::Rejected { current: out.value },
            Err(_) => BeatReply::Unknown { new },
        }
    }

    /// Give every job this worker still owns to another live worker (or queue it).
    async fn hand_back(&self) {
        let mut view = match self.core.view(false).await {
            Ok(view) => view,
            Err(e) => return self.hand_back_failed("", &e),
        };
        let owned: Vec<(String, String)> =
            view.records().filter(|(_, r)| r.owner == self.id).map(|(j, r)| (j.to_owned(), r.encode())).collect();
        for (job, raw) in owned {
            // MC102: the pick does not exclude the worker handing back.
            let exclude = if mutants::active(Mutant::MC102) { "" } else { self.id.as_str() };
            if let Err(e) = self.core.move_job(&mut view, &job, &raw, None, exclude, MoveKind::HandedBack).await {
                if mutants::active(Mutant::MC246) {
                    return; // MC246: gives up, and says nothing
                }
                self.hand_back_failed(&job, &e);
            }
        }
    }

    /// `job` (empty: the listing of our jobs) could not be handed back: the cleanup requeues it
    /// once we deregistered.
    fn hand_back_failed(&self, job: &str, e: &StoreError) {
        observe::emit(PoolEvent::HandBackFailed {
            worker: self.id.as_str().into(),
            job: job.into(),
            error: Text::display(e),
        });
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
    ///
    /// The keep-alive is compared against the last value this worker saw written; if the store
    /// holds one of its beats whose reply was lost instead (the stopping beat's, typically), it
    /// is deleted over that one. Keel before 2026-12-07 left it there: the registration went,
    /// the keep-alive stayed (marked stopping) until a cleaner judged it stale a TTL later and
    /// fenced, locked and cleaned a worker that had stopped cleanly (P106, MC457).
    async fn deregister(&self, last: &str, in_doubt: &[String]) {
        // MC444: nothing deleted, nothing reported: the cleanup left to find the worker stale.
        if mutants::active(Mutant::MC444) {
            return;
        }
        let began = self.core.clock.now();
        let maps = &self.core.maps;
        let r: Result<(), StoreError> = async {
            // MC152: deleted without comparing.
            let how = if mutants::active(Mutant::MC152) {
                MapWrite::Delete
            } else {
                MapWrite::CompareAndDelete(last.to_owned())
            };
            let out = self.core.op("map_write", self.core.store.map_write(&maps.keepalive, &self.id, how)).await?;
            let held = out.value.filter(|v| !out.applied && in_doubt.contains(v));
            // MC457: the refusal taken as final though the store holds our own lost beat.
            if let Some(v) = held.filter(|_| !mutants::active(Mutant::MC457)) {
                let del = self.core.store.map_write(&maps.keepalive, &self.id, MapWrite::CompareAndDelete(v));
                self.core.op("map_write", del).await?;
            }
            let del = self.core.store.map_write(&maps.workers, &self.id, MapWrite::Delete);
            self.core.op("map_write", del).await?;
            Ok(())
        }
        .await;
        let took_us = crate::observe::micros(self.core.clock.now().saturating_duration_since(began));
        let error = r.as_ref().err().map(|e| Text::display(e));
        observe::emit(PoolEvent::WorkerDeregistered { worker: (&self.id).into(), error, took_us });
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

/// A run ended: the machine untracks it if it is the tracked run of its job (by the run's
/// number), and its task is forgotten (and the node stops routing the job's changes here).
fn ended<S: Store>(core: &Core<S>, id: &str, m: &mut WorkerMachine, io: &mut Io, e: Ended) {
    // MC162: matched by the job alone, so an older run's end forgets the newer run's task.
    if io.tasks.get(&e.job).is_some_and(|t| t.run == e.run || mutants::active(Mutant::MC162)) {
        io.tasks.remove(&e.job);
        core.local_run_ended(&e.job, id);
    } else if mutants::active(Mutant::MC269) {
        // MC269: the route goes with any run's end, the newer run's too.
        core.local_run_ended(&e.job, id);
    }
    m.on_run_ended(core.clock.now(), &e.job, e.run);
}

/// A registration that found its keep-alive fenced (or changed under it): retried later.
/// How a registration attempt ended.
enum Registration {
    /// Its keep-alive `ka` written and the worker registered.
    Written(String),
    /// The keep-alive key holds the dead marker: a cleaner fenced this id.
    Fenced,
    /// A store error: retried after the machine's backoff.
    Failed,
}

fn fenced(id: &str) -> StoreError {
    StoreError::Unavailable { reason: format!("worker {id} is being cleaned up: its keep-alive holds the dead marker") }
}

/// Publish the machine's state change (`beat_bound_ms`: see `PoolEvent::WorkerStopping`).
fn report(id: &str, r: Report, beat_bound_ms: u64) {
    // MC440: no state change published.
    if mutants::active(Mutant::MC440) {
        return;
    }
    let worker = Text::from(id);
    observe::emit(match r {
        Report::Registered { keepalive_interval_us, shutdown_deadline_us, took_us } => {
            PoolEvent::WorkerRegistered { worker, keepalive_interval_us, shutdown_deadline_us, took_us }
        }
        Report::RegisterFailed { took_us, retry_min_us, retry_max_us } => {
            PoolEvent::RegisterFailed { worker, took_us, retry_min_us, retry_max_us }
        }
        Report::Fenced { running } => PoolEvent::Fenced { worker, running },
        Report::Unfenced => PoolEvent::Unfenced { worker },
        Report::Stopping { running, drain_ms } => {
            PoolEvent::WorkerStopping { worker, running, drain_ms, beat_bound_ms }
        }
        Report::Dead => PoolEvent::WorkerDead { worker },
        Report::Stopped => PoolEvent::WorkerStopped { worker },
    });
}

/// Sleep until `wake` (never, if None: the branch is disabled then).
async fn sleep_until(clock: &dyn Clock, wake: Option<Instant>) {
    match wake {
        Some(at) => clock.sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Ask every running handler to stop and wait for it, aborting one that ignores the request
/// for longer than `grace` (so a stuck handler cannot wedge the worker, nor outlive it).
async fn stop_all<S: Store>(core: &Core<S>, worker: &str, io: &mut Io, (grace, op_timeout): (Duration, Duration)) {
    let clock = &*core.clock;
    let running: Vec<(String, Task)> = std::mem::take(&mut io.tasks).into_iter().chain(io.replaced.drain(..)).collect();
    for (_, r) in &running {
        r.stop.cancel();
    }
    let asked = clock.now();
    // MC176: the bound the operation timeout, not the shutdown deadline (handlers cut early).
    let grace = if mutants::active(Mutant::MC176) { op_timeout } else { grace };
    let deadline = asked + grace;
    for (job, r) in running {
        let mut task = r.task;
        tokio::select! {
        biased; // a fixed poll order: tokio's random one is not reproducible across runs in a thread
            _ = &mut task => {}
            // MC181: each run's bound counted from its own turn in the wait.
            _ = clock.sleep_until(if mutants::active(Mutant::MC181) { clock.now() + grace } else { deadline }) => {
                task.abort();
                let (job, worker) = ((&job).into(), worker.into());
                let waited_us = crate::observe::micros(clock.now().saturating_duration_since(asked));
                observe::emit(PoolEvent::HandlerAborted { job, worker, attempt: r.attempt, waited_us });
            }
        }
        // Untracked here, so its end (if it comes) finds no task to unroute: the route goes now.
        // A route left behind told the sweeps the worker still ran the attempt, and they never
        // handed the record back once the worker, fenced then recovered, could run it again
        // (round 43: pool seed 1, four jobs stranded after a self-fence, P1).
        // MC427: the routes of the runs a stop-all stopped left in place.
        if !mutants::active(Mutant::MC427) {
            core.local_run_ended(&job, worker);
        }
    }
}
