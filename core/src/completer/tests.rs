//! Unit tests of the completer and the subscription manager over `MemoryStore`.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::lifecycle::ServiceGroup;
use crate::store::MemoryStore;

fn cfg() -> CompleterConfig {
    CompleterConfig::builder("t")
        .batch_size(4)
        .backlog(8)
        .flush_interval(Duration::from_millis(5))
        .stop_timeout(Duration::from_millis(500))
        .build()
        .unwrap()
}

async fn drain(sub: &mut Subscription) -> Vec<String> {
    let mut keys = Vec::new();
    while let Some(e) = sub.recv().await {
        keys.push(e.completion.key);
    }
    keys
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn every_completion_reaches_matching_subscribers_before_close() {
    let store = MemoryStore::new();
    let completer = Arc::new(Completer::new(store.clone(), cfg()));
    let subs = Arc::new(SubscriptionManager::new(&completer));
    let mut all = subs.subscribe(KindFilter::All);
    let mut failed = subs.subscribe(KindFilter::only(["failed"]));
    let group = ServiceGroup::new().then(completer.clone()).then(subs.clone());
    let caller = Shutdown::new("app");
    group.start(&caller).await.unwrap();
    let p = completer.producer("w").unwrap();
    for i in 0..20 {
        let kind = if i % 5 == 0 { "failed" } else { "succeeded" };
        p.complete(Completion::new(format!("j{i}"), 1, kind, "")).await.unwrap();
    }
    drop(p);
    group.stop().await.unwrap();
    assert_eq!(drain(&mut all).await.len(), 20);
    assert_eq!(drain(&mut failed).await, vec!["j0", "j5", "j10", "j15"]);
    assert_eq!(store.map_snapshot("t:completions").await.unwrap().entries.len(), 20);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_cancelled_caller_does_not_cut_the_drain_short() {
    let completer = Arc::new(Completer::new(MemoryStore::new(), cfg()));
    let subs = SubscriptionManager::new(&completer);
    let mut all = subs.subscribe(KindFilter::All);
    let caller = Shutdown::new("app");
    subs.start(&caller).await;
    completer.start(&caller).await;
    let p = completer.producer("w").unwrap();
    caller.cancel();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // The producer is still finishing its work after the caller's cancellation.
    p.complete(Completion::new("late", 1, "succeeded", "")).await.unwrap();
    let stopping = {
        let c = completer.clone();
        tokio::spawn(async move { c.stop().await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    p.complete(Completion::new("later", 1, "succeeded", "")).await.unwrap();
    assert!(completer.producer("new").is_err(), "no new producers while stopping");
    drop(p);
    stopping.await.unwrap().unwrap();
    subs.stop().await;
    assert_eq!(drain(&mut all).await, vec!["late", "later"]);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn full_backlog_is_a_typed_error_and_stop_is_bounded() {
    let completer = Completer::new(MemoryStore::new(), cfg());
    // No subscription manager: events back up, the backlog fills.
    completer.start(&Shutdown::new("app")).await;
    let p = completer.producer("stuck").unwrap();
    let mut full = false;
    for i in 0..1000 {
        match p.try_complete(Completion::new(format!("j{i}"), 1, "ok", "")) {
            Ok(()) => {}
            Err(TryCompleteError::Full(c)) => {
                assert_eq!(c.key, format!("j{i}"));
                full = true;
                break;
            }
            Err(e) => panic!("{e}"),
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(full, "the backlog must push back");
    // The producer never finishes: the stop returns at its bound and says what is left.
    let err = completer.stop().await.unwrap_err();
    assert_eq!(err.producers_left, vec!["stuck".to_owned()]);
    assert!(err.undelivered + err.unflushed.len() > 0, "{err}");
    assert!(matches!(p.complete(Completion::new("x", 1, "ok", "")).await, Err(CompleteError::Closed)));
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn restart_gets_a_fresh_channel_and_old_producers_are_refused() {
    let completer = Completer::new(MemoryStore::new(), cfg());
    let subs = SubscriptionManager::new(&completer);
    let caller = Shutdown::new("app");
    for run in 1..=3u64 {
        let mut sub = subs.subscribe(KindFilter::All);
        subs.start(&caller).await;
        completer.start(&caller).await;
        let p = completer.producer("w").unwrap();
        assert_eq!(p.run(), run);
        p.complete(Completion::new(format!("r{run}"), run, "ok", "")).await.unwrap();
        drop(p);
        completer.stop().await.unwrap();
        completer.stop().await.unwrap(); // idempotent
        subs.stop().await;
        let got: Vec<(String, u64)> = {
            let mut v = Vec::new();
            while let Some(e) = sub.recv().await {
                v.push((e.completion.key, e.run));
            }
            v
        };
        assert_eq!(got, vec![(format!("r{run}"), run)]);
    }
    assert!(matches!(completer.producer("w"), Err(CompleteError::NotRunning) | Err(CompleteError::Closed)));
}

/// The unit-level teeth of the mutant switches (the simulator catches them under faults too).
#[cfg(feature = "mutants")]
mod mutants {
    use super::*;
    use crate::mutants::{Mutant, set};

    /// A producer that comes after the caller's cancellation (a worker still finishing its last
    /// job): Ok normally; under MR1 the cancellation already drained and closed the completer.
    async fn late_completion_after_caller_cancel() -> Result<(), CompleteError> {
        let completer = Completer::new(MemoryStore::new(), cfg());
        let caller = Shutdown::new("app");
        completer.start(&caller).await;
        caller.cancel();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let r = match completer.producer("w") {
            Ok(p) => p.complete(Completion::new("late", 1, "ok", "")).await,
            Err(e) => Err(e),
        };
        let _ = completer.stop().await;
        r
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn mr1_closes_the_completer_under_a_finishing_producer() {
        assert_eq!(late_completion_after_caller_cancel().await, Ok(()));
        set(Some(Mutant::MR1));
        let r = late_completion_after_caller_cancel().await;
        set(None);
        assert!(r.is_err(), "MR1: the caller's cancellation stopped the completer, yet {r:?}");
    }

    /// Events still buffered when the manager is stopped: all delivered normally, lost under MR3.
    async fn delivered_after_stop() -> usize {
        let completer = Completer::new(MemoryStore::new(), cfg());
        let subs = SubscriptionManager::new(&completer);
        let mut sub = subs.subscribe(KindFilter::All);
        let caller = Shutdown::new("app");
        completer.start(&caller).await;
        let p = completer.producer("w").unwrap();
        for i in 0..4 {
            p.complete(Completion::new(format!("j{i}"), 1, "ok", "")).await.unwrap();
        }
        drop(p);
        completer.stop().await.unwrap(); // the batch waits in the channel: no manager yet
        subs.start(&caller).await;
        subs.stop().await;
        drain(&mut sub).await.len()
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn mr3_loses_buffered_events() {
        assert_eq!(delivered_after_stop().await, 4);
        set(Some(Mutant::MR3));
        let n = delivered_after_stop().await;
        set(None);
        assert!(n < 4, "MR3 delivered {n}");
    }
}
