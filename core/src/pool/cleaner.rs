//! The cleaner's driver: runs the pure [`Cleanup`] machine against the store (one command per
//! store call), requeueing a dead worker's jobs with retries.

use tracing::debug;

use super::cleanup::{Attempt, Cleanup, Command, LockMap, Outcome, Reply, fence_write};
use super::node::Core;
use super::state::{JobRecord, Pending, View, job_key, pending_key};
use crate::clock::Instant;
use crate::error::StoreError;
use crate::mutants::{self, Mutant};
use crate::observe::{self, MoveKind, PoolEvent, Text};
use crate::store::{Expect, MapWrite, Store};

/// How one try of a requeue went.
enum Try {
    /// The move's outcome: done (moved, or no longer the worker's), or its store error.
    Moved(Result<(), StoreError>),
    /// The record changed and still names the worker: try again from the record as read.
    Changed,
}

impl<S: Store> Core<S> {
    /// Clean up stale worker `w` by driving the pure [`Cleanup`] machine: lock, re-judge, fence,
    /// requeue every job (with retries), then delete its state and release. Idempotent: a crash
    /// at any step leaves a state that the next cleaner finishes.
    /// `read_at`: when the sweep began reading `view` (the lock expires a lock TTL after the
    /// view's store time, so the machine counts its budget from then).
    /// Ends with `cleanup_ended` (its outcome, and whether it took the lock: P34 judges that a
    /// cleanup that took it released it).
    pub async fn cleanup(&self, view: &View, w: &str, read_at: Instant) -> Result<(), StoreError> {
        let (mut locked, mut lock) = (false, String::new());
        let ended = self.cleanup_steps(view, w, read_at, (&mut locked, &mut lock)).await;
        let outcome = match &ended {
            Ok(Outcome::Cleaned) => "cleaned",
            Ok(Outcome::Alive) => "alive",
            Ok(Outcome::NotOurs) => "not_ours",
            Ok(Outcome::LockLifetime) => "lock_lifetime",
            Ok(Outcome::Confused) => "confused",
            Err(_) => "store_error",
        };
        observe::emit(PoolEvent::CleanupEnded {
            worker: w.into(),
            lock: (&lock).into(),
            outcome: outcome.into(),
            locked,
        });
        match ended {
            Ok(Outcome::LockLifetime) => Err(StoreError::Timeout { op: "cleanup lock lifetime" }),
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The steps of [`cleanup`](Self::cleanup), to its outcome; `taken`: whether the lock was
    /// taken, as the machine last said, and the lock value it writes.
    async fn cleanup_steps(
        &self,
        view: &View,
        w: &str,
        read_at: Instant,
        taken: (&mut bool, &mut String),
    ) -> Result<Outcome, StoreError> {
        // MC218: the write budget counted from the cleanup's own start, not from the view's read
        // (the lock expires a lock TTL after the view's store time): a cleanup reached late in
        // a slow sweep writes on past its lock.
        let read_at = if crate::mutants::active(crate::mutants::Mutant::MC218) { self.clock.now() } else { read_at };
        let start = super::cleanup::Start {
            now_ms: view.now_ms,
            keepalive: view.keepalive.get(w).map(String::as_str),
            lock: view.cleanup.get(w).map(String::as_str),
            holder: format!("{}.{}", self.cfg.node, self.incarnation),
            ttl_ms: self.ttl_ms(),
            lock_ttl: self.cfg.cleanup_lock_ttl,
            op_timeout: self.cfg.op_timeout,
            since_view: self.clock.now().saturating_duration_since(read_at),
        };
        let (mut machine, mut command) = Cleanup::start(&start);
        taken.1.clone_from(&machine.lock);
        let orphan = view.is_orphan_owner(w);
        let kind = if orphan { MoveKind::OrphanRequeued } else { MoveKind::Requeued };
        let mut fresh = View::default();
        let mut judged_ms = start.now_ms; // the store time of the last re-judge's read
        loop {
            let reply = match command {
                Command::Lock { map, write } => {
                    let map = match map {
                        LockMap::Cleanup => &self.maps.cleanup,
                        LockMap::Keepalive => &self.maps.keepalive,
                    };
                    let attempt = machine.attempt().cloned();
                    let out = self.op("map_write", self.store.map_write(map, w, write)).await?;
                    if out.applied && attempt.is_some() {
                        // What the cleanup was started on: the view's keep-alive and store time.
                        let (lock, keepalive, now_ms) =
                            (Text::from(&machine.lock), start.keepalive.map(Text::from), start.now_ms);
                        match attempt {
                            Some(Attempt::Take) => {
                                observe::emit(PoolEvent::CleanupLocked { worker: w.into(), lock, keepalive, now_ms })
                            }
                            Some(Attempt::TakeOver(from)) => observe::emit(PoolEvent::CleanupTakeover {
                                worker: w.into(),
                                from: (&from).into(),
                                lock,
                                keepalive,
                                now_ms,
                            }),
                            _ => {}
                        }
                    }
                    Reply::Written { applied: out.applied, value: out.value }
                }
                Command::ReadKeepalive => {
                    Reply::Keepalive(self.op("map_get", self.store.map_get(&self.maps.keepalive, w)).await?.0)
                }
                Command::ReadTime => {
                    judged_ms = self.op("time", self.store.time_ms()).await?;
                    Reply::Time(judged_ms)
                }
                Command::Fence { expected } => {
                    let fence = fence_write(expected.as_deref());
                    let out = self.op("map_write", self.store.map_write(&self.maps.keepalive, w, fence)).await?;
                    if out.applied {
                        let keepalive = expected.as_ref().map(Text::from);
                        observe::emit(PoolEvent::CleanupFenced { worker: w.into(), keepalive, now_ms: judged_ms });
                    }
                    Reply::Written { applied: out.applied, value: out.value }
                }
                Command::ReadOwned => {
                    // MC56: the jobs the sweep's view had, not those the store holds after the fence.
                    fresh = if mutants::active(Mutant::MC56) { view.clone() } else { self.view(false).await? };
                    if mutants::active(Mutant::MC235) {
                        // MC235: only the jobs fresh; the targets judged by the sweep's keep-alives and time.
                        (fresh.keepalive, fresh.now_ms) = (view.keepalive.clone(), view.now_ms);
                    }
                    Reply::Owned(
                        fresh
                            .records()
                            .filter(|(_, r)| r.owner == w)
                            .map(|(j, r)| (j.to_owned(), r.encode()))
                            .collect(),
                    )
                }
                Command::Requeue { job, raw } => {
                    self.requeue_with_retries(&mut fresh, &job, &raw, w, kind).await?;
                    Reply::Done
                }
                Command::DeleteKeepalive { expected } => {
                    let write = MapWrite::CompareAndDelete(expected);
                    let out = self.op("map_write", self.store.map_write(&self.maps.keepalive, w, write)).await?;
                    Reply::Written { applied: out.applied, value: out.value }
                }
                Command::DeleteWorker => {
                    let out =
                        self.op("map_write", self.store.map_write(&self.maps.workers, w, MapWrite::Delete)).await?;
                    Reply::Written { applied: out.applied, value: out.value }
                }
                Command::Release { lock } => {
                    let released = self.release(w, &lock).await;
                    observe::emit(PoolEvent::CleanupReleased { worker: w.into(), lock: (&lock).into(), released });
                    Reply::Done
                }
                Command::Finish(outcome) => {
                    match outcome {
                        Outcome::Cleaned => observe::emit(PoolEvent::WorkerCleaned { worker: w.into(), orphan }),
                        Outcome::Alive => {
                            debug!(target: "keel::pool", worker = w, "worker is alive on a fresh read; left alone")
                        }
                        Outcome::LockLifetime | Outcome::NotOurs | Outcome::Confused => {}
                    }
                    return Ok(outcome);
                }
            };
            command = machine.on(reply, self.clock.now().saturating_duration_since(read_at));
            *taken.0 = machine.locked;
        }
    }

    /// Requeue `job` of the dead worker `w`, retrying a failed try (a transient store error, or
    /// a record that changed and still names `w`) after the pool's `cleanup_backoff`, doubling,
    /// up to `cleanup_retries` tries. Each failed try that a retry follows is a `requeue_retry`,
    /// and a requeue that was retried ends with `requeue_ended` (P31 judges each retry's start).
    pub(crate) async fn requeue_with_retries(
        &self,
        view: &mut View,
        job: &str,
        raw: &str,
        w: &str,
        kind: MoveKind,
    ) -> Result<(), StoreError> {
        // MC407: the backoff capped at the sweep interval, not `cleanup_backoff`'s max.
        let (min, max) = if crate::mutants::active(crate::mutants::Mutant::MC407) {
            (self.cfg.cleanup_backoff.0, self.cfg.sweep_interval)
        } else {
            self.cfg.cleanup_backoff
        };
        let mut wait = min;
        let mut raw = raw.to_owned();
        let mut tries = 0;
        loop {
            tries += 1;
            let began = self.clock.now();
            let tried = self.requeue_try(view, job, &mut raw, w, kind).await;
            let took_us = observe::micros(self.clock.now().saturating_duration_since(began));
            // MC118: one try more than configured.
            let last = tries >= self.cfg.cleanup_retries + u32::from(mutants::active(Mutant::MC118));
            let error = match tried {
                Ok(Try::Changed) if !last => "the record changed and still names the worker".to_owned(),
                // MC401: the class read backwards: a transient error ends the requeue at its
                // first try, a permanent one is retried to the last.
                Ok(Try::Moved(Err(e))) if !last && (e.is_transient() != mutants::active(Mutant::MC401)) => {
                    e.to_string()
                }
                ended => {
                    let reread = ended.is_err();
                    let result = match ended {
                        Ok(Try::Moved(result)) => result,
                        Ok(Try::Changed) => Err(StoreError::Timeout { op: "requeue" }),
                        Err(e) => Err(e),
                    };
                    if tries > 1 {
                        let (job, worker, ok) = (job.into(), w.into(), result.is_ok());
                        observe::emit(PoolEvent::RequeueEnded { job, worker, tries, took_us, ok });
                    }
                    if let Err(e) = &result {
                        let (job, worker, error) = (job.into(), w.into(), Text::display(e));
                        let tries_max = self.cfg.cleanup_retries;
                        observe::emit(PoolEvent::RequeueGaveUp { job, worker, tries, tries_max, error, reread });
                    }
                    return result;
                }
            };
            let (retry_min_us, retry_max_us) = (observe::micros(min), observe::micros(max));
            let (job, worker, error, tries_max) =
                (job.into(), w.into(), error.as_str().into(), self.cfg.cleanup_retries);
            observe::emit(PoolEvent::RequeueRetry {
                job,
                worker,
                error,
                took_us,
                retry_min_us,
                retry_max_us,
                tries_max,
            });
            // MC116: a failed requeue retried at once, its backoff skipped.
            self.clock.sleep(if mutants::active(Mutant::MC116) { std::time::Duration::ZERO } else { wait }).await;
            wait = (wait * 2).min(max);
        }
    }

    /// One try of [`requeue_with_retries`](Self::requeue_with_retries): the move, and on a
    /// conflict a re-read of the record (whose error ends the requeue at once).
    async fn requeue_try(
        &self,
        view: &mut View,
        job: &str,
        raw: &mut String,
        w: &str,
        kind: MoveKind,
    ) -> Result<Try, StoreError> {
        match self.move_job(view, job, raw, None, w, kind).await {
            Ok(true) => Ok(Try::Moved(Ok(()))),
            Ok(false) => {
                // The record changed under us: re-read it; done if w no longer owns it.
                let (cur, _) = self.op("map_get", self.store.map_get(&self.maps.jobs, &job_key(job))).await?;
                match cur.as_deref().and_then(JobRecord::parse) {
                    // MC23: moved whoever it names now (a live owner, or none: queued).
                    Some(r) if r.owner == w || mutants::active(Mutant::MC23) => {
                        *raw = r.encode();
                        Ok(Try::Changed)
                    }
                    _ => Ok(Try::Moved(Ok(()))),
                }
            }
            Err(e) => Ok(Try::Moved(Err(e))),
        }
    }

    /// MP10 (pulse #61): write `job` back from memory (the stopping worker removed its state and
    /// its job records from the maps first), to another worker. A crash before this loses the
    /// job: nothing in the store remembers it.
    pub async fn reinsert(&self, view: &mut View, job: &str, raw: &str, w: &str) -> Result<(), StoreError> {
        let Some(rec) = JobRecord::parse(raw) else { return Ok(()) };
        view.jobs.remove(&job_key(job));
        let target = view.pick_worker(self.ttl_ms(), w).unwrap_or_default();
        let new = rec.moved_to(&target);
        let mut writes = vec![(job_key(job), Some(new.encode()))];
        let since_ms = self.pending_since_ms(view.now_ms);
        let pending = (!target.is_empty()).then(|| Pending::due(new.attempt, &target, since_ms, self.cfg.ack_grace));
        if let Some(p) = &pending {
            writes.push((pending_key(job), Some(p.encode())));
        }
        let out =
            self.op("map_txn", self.store.map_txn(&self.maps.jobs, &[(job_key(job), Expect::Absent)], &writes)).await?;
        if out.applied {
            view.jobs.insert(job_key(job), new.encode());
            if let Some(p) = &pending {
                p.written(job, since_ms);
            }
            observe::emit(PoolEvent::Moved {
                kind: MoveKind::HandedBack,
                job: job.into(),
                from: w.into(),
                worker: (&target).into(),
                attempt: new.attempt,
                now_ms: view.now_ms,
                cleaned: "".into(),
            });
            self.route(job, Some(&new.encode()));
        }
        Ok(())
    }

    /// Best effort: delete the cleanup lock of `w` if it is exactly `mine`. Returns whether the
    /// store deleted it.
    pub(crate) async fn release(&self, w: &str, mine: &str) -> bool {
        // MC341: deleted without comparing.
        let how =
            if mutants::active(Mutant::MC341) { MapWrite::Delete } else { MapWrite::CompareAndDelete(mine.to_owned()) };
        let del = self.store.map_write(&self.maps.cleanup, w, how);
        match self.op("map_write", del).await {
            Ok(out) => out.applied,
            Err(e) => {
                debug!(target: "keel::pool", worker = w, error = %e, "cleanup lock release failed; it expires");
                false
            }
        }
    }
}
