//! One run of one attempt, spawned by its worker: ack (fenced by the record), the handler, the
//! fenced completion with retries, and the completion event. Its end is reported to the worker's
//! loop by [`RunEnded`].

use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::debug;

use super::complete;
use super::feed::JobCompletion;
use super::node::Core;
use super::state::{JobRecord, job_key, pending_key};
use super::{Job, JobHandler, JobOutcome};

use crate::completer::{Completion, Producer};
use crate::mutants::{self, Mutant};
use crate::observe::{self, PoolEvent, StaleOp, Text};
use crate::shutdown::Shutdown;
use crate::store::{Expect, MapWrite, Store};

/// One run ended.
pub(crate) struct Ended {
    pub job: String,
    pub run: u64,
    pub attempt: u64,
}

/// Tells the worker's loop that one run ended.
pub(crate) struct RunEnded {
    pub tx: mpsc::UnboundedSender<Ended>,
    pub ended: Ended,
}

impl RunEnded {
    /// Report the run's end: in the logs (`run_ended`, P45), and to the worker's loop, which
    /// stops tracking the run (a run it still tracked would turn its attempt's redeliveries
    /// away and hold its drain to the bound). Queued at once, never waiting for room: the loop
    /// takes every queued end in before a delivered record, and an end still waiting for room
    /// was not queued yet, so a redelivery of its attempt was taken for a repeat of the run
    /// and ignored (round 43: pool runs with `intake_buffer(1)` stranded jobs, P51 and P1).
    /// Unbounded costs nothing: each run sends one end, and the runs are the worker's own.
    fn send(self, worker: &str) {
        let Ended { job, attempt, .. } = &self.ended;
        observe::emit(PoolEvent::RunEnded { job: job.into(), worker: worker.into(), attempt: *attempt });
        let _ = self.tx.send(self.ended); // a worker that has gone is no error
    }
}

/// One run of one attempt: ack, handler, completion.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run_job<S: Store, H: JobHandler>(
    core: Arc<Core<S>>,
    handler: Arc<H>,
    worker: String,
    job: String,
    raw: String,
    rec: JobRecord,
    stop: Shutdown,
    ended: RunEnded,
    events: Option<Arc<Producer>>,
) {
    let attempt = rec.attempt;
    if mutants::active(Mutant::MC24) {
        // MC24: the pending entry deleted before the guarded ack, unguarded: a stale attempt's
        // delete removes the entry of the attempt that replaced it.
        let key = pending_key(&job);
        let _ = core.op("map_write", core.store.map_write(&core.maps.jobs, &key, MapWrite::Delete)).await;
    }
    // Ack: only if the record still names this attempt; removes the pending entry.
    let guards = vec![(job_key(&job), Expect::Value(raw.clone()))];
    let writes = vec![(pending_key(&job), None)];
    let ack = core.job_txn(guards, writes);
    match core.op("map_txn", ack).await {
        Ok(out) if out.applied => {
            observe::emit(PoolEvent::Acked { job: (&job).into(), worker: (&worker).into(), attempt })
        }
        Ok(_) => {
            observe::emit(PoolEvent::StaleRejected {
                op: StaleOp::Ack,
                job: (&job).into(),
                worker: (&worker).into(),
                attempt,
            });
            ended.send(&worker);
            return;
        }
        Err(e) => {
            debug!(target: "keel::pool", job = %job, error = %e, "ack failed; the job is delivered again");
            ended.send(&worker);
            return;
        }
    }
    // MC143: a run asked to stop while its ack was in flight starts its handler anyway.
    if stop.is_cancelled() && !mutants::active(Mutant::MC143) {
        // MC180: the run returns without reporting its end.
        if !mutants::active(Mutant::MC180) {
            ended.send(&worker);
        }
        return;
    }
    // MC432: the completion's stamp taken from the node's store-time estimate as the run
    // begins (no time read to wait for at the end), not once its handler returned.
    let began_ms = if mutants::active(Mutant::MC432) { core.store_now_estimate() } else { None };
    observe::emit(PoolEvent::Started { job: (&job).into(), worker: (&worker).into(), attempt });
    let outcome = handler
        .run(Job {
            key: job.clone(),
            payload: rec.payload.clone(),
            attempt,
            worker: worker.clone(),
            stop: stop.clone(),
        })
        .await;
    let (completed, stopped) = (outcome == JobOutcome::Completed, stop.is_cancelled());
    observe::emit(PoolEvent::HandlerReturned {
        job: (&job).into(),
        worker: (&worker).into(),
        attempt,
        completed,
        stopped,
    });
    if completed && !stopped {
        let recorded = complete_with_retries(&core, &worker, &job, &raw, attempt, began_ms).await;
        // MC57: the event follows the handler's outcome, not the store's verdict on it.
        if (recorded || mutants::active(Mutant::MC57))
            && let Some(p) = &events
        {
            // MC160: the raw record as the event's payload.
            let payload = if mutants::active(Mutant::MC160) { raw.clone() } else { rec.payload.clone() };
            let c = Completion::new(job.clone(), attempt, super::COMPLETED, payload);
            offer_event(&core, p, c).await;
        }
    } else {
        observe::emit(PoolEvent::Abandoned { job: (&job).into(), worker: (&worker).into(), attempt });
    }
    ended.send(&worker);
}

/// Offer a recorded completion's event to the node's completer, which batches and publishes
/// it: given up after the op timeout when its backlog stays full (`completion_event_dropped`),
/// reported when refused (`completion_event_refused`: its run closed under the offer).
async fn offer_event<S: Store>(core: &Core<S>, p: &Producer, c: Completion) {
    let job = c.key.clone();
    tokio::select! {
        biased; // a fixed poll order: tokio's random one is not reproducible across runs in a thread
        r = p.complete(c) => if let Err(e) = r {
            observe::emit(PoolEvent::CompletionEventRefused { job: (&job).into(), error: Text::display(&e) });
        },
        _ = core.clock.sleep(core.cfg.op_timeout) => {
            observe::emit(PoolEvent::CompletionEventDropped { job: (&job).into() });
        }
    }
}

/// Record the completion (guarded by the attempt). Returns whether this attempt's completion is
/// recorded (by this call or an earlier try whose reply was lost).
/// `began_ms`: a stamp read before the run (MC432 only; `None` reads it now).
async fn complete_with_retries<S: Store>(
    core: &Core<S>,
    worker: &str,
    job: &str,
    raw: &str,
    attempt: u64,
    began_ms: Option<u64>,
) -> bool {
    // MC408: the backoff capped at the keep-alive interval, not `cleanup_backoff`'s max.
    let (min, max) = if crate::mutants::active(crate::mutants::Mutant::MC408) {
        (core.cfg.cleanup_backoff.0, core.cfg.keepalive_interval)
    } else {
        core.cfg.cleanup_backoff
    };
    let mut wait = min;
    let mut done: Option<String> = None;
    let tries_max = core.cfg.cleanup_retries;
    // MC133: one try fewer than configured; MC134: one more.
    let tries_made = tries_max - u32::from(mutants::active(Mutant::MC133)) + u32::from(mutants::active(Mutant::MC134));
    let mut tries = 0;
    for _ in 0..tries_made {
        tries += 1;
        let began = core.clock.now();
        let tried = async {
            // One tombstone for every try (MC46 stamps each try afresh, which keel before P14
            // took for another attempt's completion after a lost reply).
            if done.is_none() || mutants::active(Mutant::MC46) {
                // The node's store-time estimate (cache.rs: its error is small against what reads
                // a tombstone's time), a `TIME` read only when it is too old.
                done = None;
                let completed_ms = match began_ms {
                    Some(ms) => ms,
                    None => core.store_now_ms().await?,
                };
                let c = JobCompletion { job: job.to_owned(), attempt, worker: worker.to_owned(), completed_ms };
                done = Some(c.tombstone());
            }
            let tomb = done.as_deref().unwrap_or_default();
            core.op("map_txn", complete::complete(core, job, raw, tomb)).await
        };
        match tried.await {
            Ok(true) => {
                observe::emit(PoolEvent::Completed { job: job.into(), worker: worker.into(), attempt });
                return true;
            }
            Ok(false) => {
                observe::emit(PoolEvent::StaleRejected {
                    op: StaleOp::Complete,
                    job: job.into(),
                    worker: worker.into(),
                    attempt,
                });
                return false;
            }
            // Announced with the timing of its retry: P26 judges each retry's start.
            Err(e) => observe::emit(PoolEvent::CompleteRetry {
                job: job.into(),
                worker: worker.into(),
                attempt,
                error: Text::display(&e),
                took_us: observe::micros(core.clock.now().saturating_duration_since(began)),
                retry_min_us: observe::micros(min),
                retry_max_us: observe::micros(max),
                tries_max,
            }),
        }
        // MC97: a failed completion retried at once, its backoff skipped.
        core.clock.sleep(if mutants::active(Mutant::MC97) { std::time::Duration::ZERO } else { wait }).await;
        wait = (wait * 2).min(max);
    }
    observe::emit(PoolEvent::CompleteFailed { job: job.into(), worker: worker.into(), attempt, tries, tries_max });
    false
}
