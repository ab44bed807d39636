//! keel's metrics, through the [`metrics`](https://docs.rs/metrics) facade, recorded in one
//! place: [`record`] turns each typed event of [`keel::observe`](crate::observe) into counters and
//! gauges ([`observe::emit`](crate::observe::emit) calls it for every event, whoever observes
//! it). Only what no event carries is recorded where it happens: store errors by class (the
//! pool's one store-call wrapper) and the live-worker gauge.
//!
//! keel records; it bundles no exporter. Install a recorder (for example
//! `metrics-exporter-prometheus`, as `core/examples/pool_service.rs` does) to get the numbers;
//! without one every call is a no-op.
//!
//! | metric | kind | labels | from |
//! |---|---|---|---|
//! | `keel_pool_jobs_dispatched_total` | counter | | `dispatched` |
//! | `keel_pool_jobs_started_total` | counter | | `started` (a handler run, after its ack) |
//! | `keel_pool_jobs_completed_total` | counter | | `completed` (recorded, fenced) |
//! | `keel_pool_jobs_abandoned_total` | counter | | `abandoned` |
//! | `keel_pool_handlers_aborted_total` | counter | | `handler_aborted` |
//! | `keel_pool_jobs_moved_total` | counter | reason | `moved`: `requeued`, `orphan_requeued`, `redispatched`, `assigned`, `handed_back` |
//! | `keel_pool_stale_rejected_total` | counter | op | `stale_rejected` (`ack`, `complete`) |
//! | `keel_pool_complete_failed_total` | counter | | `complete_failed` (the job runs again) |
//! | `keel_pool_cleanups_total` | counter | | `worker_cleaned` |
//! | `keel_pool_workers_dead_total` | counter | | `worker_died` |
//! | `keel_pool_workers_replaced_total` | counter | | `worker_replaced` |
//! | `keel_pool_workers_fenced_total` | counter | | `fenced` |
//! | `keel_pool_workers_live` | gauge | | worker incarnations running on this process's nodes |
//! | `keel_pool_data_losses_total` | counter | | `data_loss` |
//! | `keel_pool_start_failures_total` | counter | permanent | `start_failed` |
//! | `keel_pool_feed_resynced_total` | counter | | `feed_resynced`: completions the change feed missed |
//! | `keel_pool_feed_dropped_total` | counter | | `feed_dropped`: dropped for full feed subscribers |
//! | `keel_pool_completion_events_dropped_total` | counter | | `completion_event_dropped` |
//! | `keel_lease_held_total` | counter | lease | `held` |
//! | `keel_lease_holding` | gauge | lease | 1 while held, 0 after `lost` or `released` |
//! | `keel_lease_lost_total` | counter | lease, reason | `lost` |
//! | `keel_lease_step_downs_total` | counter | lease | `released` (a voluntary step-down) |
//! | `keel_lease_grants_refused_total` | counter | lease, why | `quarantined` (data-loss quarantine), `acquire_refused` (held elsewhere) |
//! | `keel_lease_store_failures_total` | counter | lease, op | `acquire_failed`, `renew_failed` |
//! | `keel_completer_flushed_total` | counter | completer | completions written (`batch_flushed`) |
//! | `keel_completer_batches_total` | counter | completer | batches written |
//! | `keel_completer_flush_failures_total` | counter | completer | `flush_failed` |
//! | `keel_completer_unflushed_total` | counter | completer | completions not flushed within a stop bound |
//! | `keel_completer_backlog` | gauge | completer | completions waiting to be flushed (at each acceptance, and when a stop began) |
//! | `keel_completer_flush_seconds` | histogram | completer | one batch's flush latency, retries included (`batch_flushed`) |
//! | `keel_completer_subscriber_drops_total` | counter | | events dropped for full completer subscribers |
//! | `keel_store_errors_total` | counter | part, class | failed store calls by [`StoreError`] class |

use metrics::{counter, gauge, histogram};

use crate::error::StoreError;
use crate::observe::{CompleterEvent, Event, LeaseEvent, PoolEvent};

/// The class of a store error, as a label value.
pub fn error_class(e: &StoreError) -> &'static str {
    match e {
        StoreError::Unavailable { .. } => "unavailable",
        StoreError::Refused { .. } => "refused",
        StoreError::Timeout { .. } => "timeout",
        StoreError::Disconnected { .. } => "disconnected",
        StoreError::Corrupt { .. } => "corrupt",
        StoreError::Invalid { .. } => "invalid",
        StoreError::Misconfigured { .. } => "misconfigured",
    }
}

/// Count one failed store call of `part` (`pool`, …) by the error's class.
pub fn store_error(part: &'static str, e: &StoreError) {
    counter!("keel_store_errors_total", "part" => part, "class" => error_class(e)).increment(1);
}

/// Worker incarnations running on this process's pool nodes.
pub(crate) fn workers_live(n: u64) {
    gauge!("keel_pool_workers_live").set(n as f64);
}

/// Record the metrics of one event. Called by [`observe::emit`](crate::observe::emit).
pub fn record(e: &Event<'_>) {
    match e {
        Event::Pool(e) => pool(e),
        Event::Lease(e) => lease(e),
        Event::Completer(e) => completer(e),
        Event::Store(_) | Event::Rmap(_) | Event::Lifecycle(_) => {}
    }
}

fn pool(e: &PoolEvent<'_>) {
    use PoolEvent as E;
    let name = match e {
        E::Dispatched { .. } => "keel_pool_jobs_dispatched_total",
        E::Started { .. } => "keel_pool_jobs_started_total",
        E::Completed { .. } => "keel_pool_jobs_completed_total",
        E::Abandoned { .. } => "keel_pool_jobs_abandoned_total",
        E::HandlerAborted { .. } => "keel_pool_handlers_aborted_total",
        E::CompleteFailed { .. } => "keel_pool_complete_failed_total",
        E::WorkerCleaned { .. } => "keel_pool_cleanups_total",
        E::WorkerDied { .. } => "keel_pool_workers_dead_total",
        E::WorkerReplaced { .. } => "keel_pool_workers_replaced_total",
        E::Fenced { .. } => "keel_pool_workers_fenced_total",
        E::DataLoss { .. } => "keel_pool_data_losses_total",
        E::CompletionEventDropped { .. } => "keel_pool_completion_events_dropped_total",
        E::Moved { kind, .. } => {
            counter!("keel_pool_jobs_moved_total", "reason" => kind.as_str()).increment(1);
            return;
        }
        E::StaleRejected { op, .. } => {
            counter!("keel_pool_stale_rejected_total", "op" => op.as_str()).increment(1);
            return;
        }
        E::StartFailed { permanent, .. } => {
            counter!("keel_pool_start_failures_total", "permanent" => if *permanent { "true" } else { "false" })
                .increment(1);
            return;
        }
        E::FeedResynced { completions, .. } => {
            counter!("keel_pool_feed_resynced_total").increment(*completions as u64);
            return;
        }
        E::FeedDropped { dropped } => {
            counter!("keel_pool_feed_dropped_total").increment(*dropped);
            return;
        }
        _ => return,
    };
    counter!(name).increment(1);
}

fn lease(e: &LeaseEvent<'_>) {
    use LeaseEvent as E;
    match e {
        E::Held { lease, .. } => {
            counter!("keel_lease_held_total", "lease" => lease.to_string()).increment(1);
            gauge!("keel_lease_holding", "lease" => lease.to_string()).set(1.0);
        }
        E::Lost { lease, reason, .. } => {
            // Debug form: a new reason needs no change here (losses are rare: the format is free).
            let reason = format!("{reason:?}").to_lowercase();
            counter!("keel_lease_lost_total", "lease" => lease.to_string(), "reason" => reason).increment(1);
            gauge!("keel_lease_holding", "lease" => lease.to_string()).set(0.0);
        }
        E::Released { lease, .. } => {
            counter!("keel_lease_step_downs_total", "lease" => lease.to_string()).increment(1);
            gauge!("keel_lease_holding", "lease" => lease.to_string()).set(0.0);
        }
        E::Quarantined { lease, .. } => {
            counter!("keel_lease_grants_refused_total", "lease" => lease.to_string(), "why" => "quarantine")
                .increment(1);
        }
        E::AcquireRefused { lease, .. } => {
            counter!("keel_lease_grants_refused_total", "lease" => lease.to_string(), "why" => "held").increment(1);
        }
        E::AcquireFailed { lease, .. } => {
            counter!("keel_lease_store_failures_total", "lease" => lease.to_string(), "op" => "acquire").increment(1);
        }
        E::RenewFailed { lease, .. } => {
            counter!("keel_lease_store_failures_total", "lease" => lease.to_string(), "op" => "renew").increment(1);
        }
        _ => {}
    }
}

fn completer(e: &CompleterEvent<'_>) {
    use CompleterEvent as E;
    match e {
        E::BatchFlushed { completer, n, took_us, .. } => {
            counter!("keel_completer_flushed_total", "completer" => completer.to_string()).increment(*n as u64);
            counter!("keel_completer_batches_total", "completer" => completer.to_string()).increment(1);
            histogram!("keel_completer_flush_seconds", "completer" => completer.to_string())
                .record(*took_us as f64 / 1e6);
        }
        // The backlog moves both ways: up with each acceptance, down with each write.
        E::Accepted { completer, backlog, .. } | E::RoomMade { completer, backlog, .. } => {
            gauge!("keel_completer_backlog", "completer" => completer.to_string()).set(*backlog as f64);
        }
        E::FlushFailed { completer, .. } => {
            counter!("keel_completer_flush_failures_total", "completer" => completer.to_string()).increment(1);
        }
        E::Unflushed { completer, unflushed, .. } => {
            counter!("keel_completer_unflushed_total", "completer" => completer.to_string())
                .increment(*unflushed as u64);
        }
        E::DrainStarted { completer, pending, .. } => {
            gauge!("keel_completer_backlog", "completer" => completer.to_string()).set(*pending as f64);
        }
        E::SubscriberDropped { .. } => counter!("keel_completer_subscriber_drops_total").increment(1),
        E::SubscriberGone { .. } => {}
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_store_error_has_a_class() {
        let all = [
            StoreError::Unavailable { reason: String::new() },
            StoreError::Refused { reason: String::new() },
            StoreError::Timeout { op: "x" },
            StoreError::Disconnected { reason: String::new() },
            StoreError::Corrupt { key: String::new(), detail: String::new() },
            StoreError::Invalid { detail: String::new() },
            StoreError::Misconfigured { detail: String::new() },
        ];
        let classes: std::collections::BTreeSet<&str> = all.iter().map(error_class).collect();
        assert_eq!(classes.len(), all.len(), "one class each");
    }
}
