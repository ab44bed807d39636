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

impl<S: Store> Core<S> {
    /// Clean up stale worker `w` by driving the pure [`Cleanup`] machine: lock, re-judge, fence,
    /// requeue every job (with retries), then delete its state and release. Idempotent: a crash
    /// at any step leaves a state that the next cleaner finishes.
    /// `read_at`: when the sweep began reading `view` (the lock expires a lock TTL after the
    /// view's store time, so the machine counts its budget from then).
    pub async fn cleanup(&self, view: &View, w: &str, read_at: Instant) -> Result<(), StoreError> {
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
                    self.release(w, &lock).await;
                    Reply::Done
                }
                Command::Finish(outcome) => {
                    return match outcome {
                        Outcome::Cleaned => {
                            observe::emit(PoolEvent::WorkerCleaned { worker: w.into(), orphan });
                            Ok(())
                        }
                        Outcome::LockLifetime => Err(StoreError::Timeout { op: "cleanup lock lifetime" }),
                        Outcome::Alive => {
                            debug!(target: "keel::pool", worker = w, "worker is alive on a fresh read; left alone");
                            Ok(())
                        }
                        Outcome::NotOurs | Outcome::Confused => Ok(()),
                    };
                }
            };
            command = machine.on(reply, self.clock.now().saturating_duration_since(read_at));
        }
    }

    pub(crate) async fn requeue_with_retries(
        &self,
        view: &mut View,
        job: &str,
        raw: &str,
        w: &str,
        kind: MoveKind,
    ) -> Result<(), StoreError> {
        let (min, max) = self.cfg.cleanup_backoff;
        let mut wait = min;
        let mut raw = raw.to_owned();
        for attempt in 1..=self.cfg.cleanup_retries {
            match self.move_job(view, job, &raw, None, w, kind).await {
                Ok(true) => return Ok(()),
                Ok(false) => {
                    // The record changed under us: re-read it; done if w no longer owns it.
                    let (cur, _) = self.op("map_get", self.store.map_get(&self.maps.jobs, &job_key(job))).await?;
                    match cur.as_deref().and_then(JobRecord::parse) {
                        // MC23: moved whoever it names now (a live owner, or none: queued).
                        Some(r) if r.owner == w || mutants::active(Mutant::MC23) => raw = r.encode(),
                        _ => return Ok(()),
                    }
                }
                Err(e) if attempt == self.cfg.cleanup_retries || !e.is_transient() => return Err(e),
                Err(e) => debug!(target: "keel::pool", job, error = %e, "requeue failed; retrying"),
            }
            self.clock.sleep(wait).await;
            wait = (wait * 2).min(max);
        }
        Err(StoreError::Timeout { op: "requeue" })
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
        let pending = (!target.is_empty()).then(|| Pending::due(new.attempt, &target, view.now_ms, self.cfg.ack_grace));
        if let Some(p) = &pending {
            writes.push((pending_key(job), Some(p.encode())));
        }
        let out =
            self.op("map_txn", self.store.map_txn(&self.maps.jobs, &[(job_key(job), Expect::Absent)], &writes)).await?;
        if out.applied {
            view.jobs.insert(job_key(job), new.encode());
            if let Some(p) = &pending {
                p.written(job, view.now_ms);
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

    pub(crate) async fn release(&self, w: &str, mine: &str) {
        let del = self.store.map_write(&self.maps.cleanup, w, MapWrite::CompareAndDelete(mine.to_owned()));
        if let Err(e) = self.op("map_write", del).await {
            debug!(target: "keel::pool", worker = w, error = %e, "cleanup lock release failed; it expires");
        }
    }
}
