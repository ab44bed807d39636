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

/// A completer and its subscription manager (`buffer`: the subscribers' buffer, else the
/// default) started in that order, one subscriber, and `n` completions made by a producer now
/// gone; `extra` subscribes before the start.
async fn started_with(
    n: usize,
    buffer: Option<usize>,
    extra: impl FnOnce(&SubscriptionManager),
) -> (Completer<MemoryStore>, SubscriptionManager, Subscription) {
    let completer = Completer::new(MemoryStore::new(), cfg());
    let subs = SubscriptionManager::new(&completer);
    let subs = match buffer {
        Some(b) => subs.with_buffer(b),
        None => subs,
    };
    let sub = subs.subscribe(KindFilter::All);
    extra(&subs);
    let caller = Shutdown::new("app");
    subs.start(&caller).await;
    completer.start(&caller).await;
    let p = completer.producer("w").unwrap();
    for i in 0..n {
        p.complete(Completion::new(format!("j{i}"), 1, "ok", "")).await.unwrap();
    }
    drop(p);
    (completer, subs, sub)
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

/// Each loss alone makes the stop an error (cargo-mutants: `&&` → `||` in `StopError::is_clean`
/// survived the tests above, whose failing stops always lost two things at once).
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn each_kind_of_loss_alone_fails_the_stop() {
    // Only a producer left: it never finished, but nothing it completed was lost.
    let completer = Completer::new(MemoryStore::new(), cfg());
    completer.start(&Shutdown::new("app")).await;
    let idle = completer.producer("idle").unwrap();
    let err = completer.stop().await.unwrap_err();
    assert_eq!((err.producers_left, err.unflushed.len(), err.undelivered), (vec!["idle".to_owned()], 0, 0));
    assert_eq!(err.run, 1, "the report names its run (cargo-mutants: the field deleted survived)");
    drop(idle);

    // Only unflushed: every producer finished, but the store refused every write of the drain.
    // The write is retried until the next retry would pass the bound: with retries 10 ms apart
    // the stop takes its whole bound (cargo-mutants: `wake >= d` → `<` gave up at once).
    let store = crate::pool::regression::Mortal::new(&MemoryStore::new(), i64::MAX);
    let tight = CompleterConfig::builder("t")
        .batch_size(4)
        .flush_interval(Duration::from_millis(5))
        .retry_backoff(Duration::from_millis(10), Duration::from_millis(10))
        .stop_timeout(Duration::from_millis(500));
    let completer = Completer::new(store.clone(), tight.build().unwrap());
    completer.start(&Shutdown::new("app")).await;
    let p = completer.producer("w").unwrap();
    store.fail_with(Some(crate::StoreError::Timeout { op: "map_txn" }));
    let c = Completion::new("j", 1, "ok", "");
    p.complete(c.clone()).await.unwrap();
    drop(p);
    let began = tokio::time::Instant::now();
    let err = completer.stop().await.unwrap_err();
    let took = began.elapsed();
    assert!(took >= Duration::from_millis(490) && took <= Duration::from_millis(510), "{took:?}");
    assert_eq!((err.unflushed, err.undelivered, err.producers_left), (vec![c], 0, vec![]));
    // As a service it is named as its lifecycle's runs are (`completer:{name}`), so a group's
    // rules find its runs (cargo-mutants: `name -> ""` survived).
    assert_eq!(Service::name(&completer), "completer:t");
}

/// Completions are batched: one that finds the batch short waits (up to `flush_interval`) for
/// more, and a full batch is written at once without waiting for the interval (cargo-mutants:
/// `now >= next_tick` → `<` survived: a completer writing every completion alone passed).
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn completions_are_batched_by_size_and_interval() {
    use crate::observe::{Event, Observer};
    #[derive(Default)]
    struct Batches(std::sync::Mutex<Vec<(usize, tokio::time::Instant)>>);
    impl Observer for Batches {
        fn event(&self, e: &Event<'_>) {
            if let Event::Completer(CompleterEvent::BatchFlushed { n, .. }) = e {
                self.0.lock().unwrap().push((*n, tokio::time::Instant::now()));
            }
        }
    }
    let seen = std::rc::Rc::new(Batches::default());
    let before = crate::observe::set_thread_observer(Some(seen.clone()));
    let slow_tick = CompleterConfig::builder("t").batch_size(4).flush_interval(Duration::from_secs(3600));
    for (cfg, want) in [(cfg(), vec![3]), (slow_tick.build().unwrap(), vec![4])] {
        seen.0.lock().unwrap().clear();
        let completer = Completer::new(MemoryStore::new(), cfg);
        completer.start(&Shutdown::new("app")).await;
        let p = completer.producer("w").unwrap();
        let t0 = tokio::time::Instant::now();
        for i in 0..want[0] {
            p.complete(Completion::new(format!("j{i}"), 1, "ok", "")).await.unwrap();
            tokio::task::yield_now().await; // the driver sees each completion arrive
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let got = seen.0.lock().unwrap().clone();
        assert_eq!(got.iter().map(|b| b.0).collect::<Vec<_>>(), want, "one batch");
        assert!(got[0].1 - t0 <= Duration::from_millis(5), "flushed by the interval (5 ms) or at once when full");
        drop(p);
        completer.stop().await.unwrap();
    }
    crate::observe::set_thread_observer(before);
}

/// A batch written after failed attempts says so (`retried`, cargo-mutants: `failures() > 0`
/// → `<` survived), and nothing is lost once the store answers again.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_write_that_succeeds_after_failures_reports_its_retries() {
    use crate::observe::{Event, Observer};
    #[derive(Default)]
    struct Retried(std::sync::Mutex<Vec<bool>>);
    impl Observer for Retried {
        fn event(&self, e: &Event<'_>) {
            if let Event::Completer(CompleterEvent::BatchFlushed { retried, .. }) = e {
                self.0.lock().unwrap().push(*retried);
            }
        }
    }
    let seen = std::rc::Rc::new(Retried::default());
    let before = crate::observe::set_thread_observer(Some(seen.clone()));
    let store = crate::pool::regression::Mortal::new(&MemoryStore::new(), i64::MAX);
    let completer = Completer::new(store.clone(), cfg());
    completer.start(&Shutdown::new("app")).await;
    let p = completer.producer("w").unwrap();
    p.complete(Completion::new("first", 1, "ok", "")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    store.fail_with(Some(crate::StoreError::Timeout { op: "map_txn" }));
    p.complete(Completion::new("second", 1, "ok", "")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    store.fail_with(None);
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(p);
    completer.stop().await.unwrap();
    crate::observe::set_thread_observer(before);
    assert_eq!(*seen.0.lock().unwrap(), vec![false, true]);
    assert_eq!(store.map_snapshot("t:completions").await.unwrap().entries.len(), 2);
}

/// A subscriber that does not read loses what overflows its buffer, and each loss is counted:
/// delivered + dropped = offered (cargo-mutants: `dropped -> 0` survived).
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_full_subscriber_counts_what_it_dropped() {
    let (completer, subs, mut slow) = started_with(3, Some(1), |_| {}).await;
    completer.stop().await.unwrap();
    subs.stop().await;
    assert_eq!(drain(&mut slow).await, vec!["j0"]);
    assert_eq!(slow.dropped(), 2);
}

/// A subscriber that dropped its `Subscription` is forgotten at the first event offered to it:
/// one `subscriber_gone`, and the close counts no offers to it after that (round 28 B #4: the
/// gone one kept, every later event cloned and offered to a dead channel and counted as
/// delivered; no scenario's subscriber drops its receiver mid-run).
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_dropped_subscription_is_forgotten_once() {
    use std::cell::RefCell;
    use std::rc::Rc;

    use crate::observe::{self, CompleterEvent, Event, Observer};

    #[derive(Default)]
    struct Keep(RefCell<Vec<Event<'static>>>);
    impl Observer for Keep {
        fn event(&self, e: &Event<'_>) {
            self.0.borrow_mut().push(e.to_static());
        }
    }
    let keep = Rc::new(Keep::default());
    let before = observe::set_thread_observer(Some(keep.clone()));
    let (completer, subs, mut kept) = started_with(6, None, |subs| drop(subs.subscribe(KindFilter::All))).await;
    completer.stop().await.unwrap();
    subs.stop().await;
    observe::set_thread_observer(before);
    assert_eq!(drain(&mut kept).await.len(), 6);
    let events = keep.0.borrow();
    let gone = events.iter().filter(|e| matches!(e, Event::Completer(CompleterEvent::SubscriberGone { .. }))).count();
    assert_eq!(gone, 1, "the dropped subscription is forgotten once");
    let delivered = events.iter().find_map(|e| match e {
        Event::Completer(CompleterEvent::SubscriptionsClosed { delivered, .. }) => Some(*delivered),
        _ => None,
    });
    assert_eq!(delivered, Some(6 + 1), "six to the live one, and the one offer that found the other gone");
}

/// A manager stopped while its completer still runs keeps handing on what the completer
/// flushes until the completer closes its channel (within the manager's drain bound), so a
/// stop in that order loses nothing (round 28 B #15: a manager that handed on only what was
/// already buffered and closed its subscribers at once; every scenario stops the completer
/// first, so no sweep saw it).
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_manager_stopped_first_waits_for_its_completer() {
    let (completer, subs, mut all) = started_with(6, None, |_| {}).await;
    let completer_later = async {
        tokio::time::sleep(Duration::from_millis(1)).await;
        completer.stop().await
    };
    let ((), stopped) = tokio::join!(subs.stop(), completer_later);
    stopped.unwrap();
    assert_eq!(drain(&mut all).await.len(), 6);
}

/// A stop with nothing left to write and no producer returns at once, not at its bound; and a
/// manager whose completer closed its events ends at once too (paused time: what the test
/// reads is the runtime's own clock). cargo-mutants round 33: a drain never called done (every
/// shutdown waited out `stop_timeout`) and a run's event channel never closed (every manager
/// stop waited out its drain bound) passed every lane; the simulator judges neither bound.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn an_idle_stop_returns_at_once_and_so_does_its_manager() {
    let (completer, subs, mut sub) = started_with(3, None, |_| {}).await;
    let began = tokio::time::Instant::now();
    completer.stop().await.unwrap();
    let stopped = began.elapsed();
    subs.stop().await;
    let all = began.elapsed();
    assert_eq!(drain(&mut sub).await.len(), 3);
    assert!(stopped < Duration::from_millis(100), "the completer's stop took {stopped:?} of a 500 ms bound");
    assert!(all < Duration::from_millis(100), "its manager's stop ended {all:?} after");
}

/// A store slower than nothing but within the op timeout is written to on the first attempt:
/// the write waits for it (cargo-mutants round 33: a deadline computed `now - op_timeout` cut
/// every write outside a drain at once; the simulated store and `MemoryStore` answer on the
/// first poll, so only Redis saw it, where nothing was ever written).
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_write_waits_for_a_slow_store_within_its_op_timeout() {
    use crate::observe::{Event, Observer};
    #[derive(Default)]
    struct Flushed(std::sync::Mutex<Vec<(bool, bool)>>);
    impl Observer for Flushed {
        fn event(&self, e: &Event<'_>) {
            match e {
                Event::Completer(CompleterEvent::BatchFlushed { retried, .. }) => {
                    self.0.lock().unwrap().push((true, *retried))
                }
                Event::Completer(CompleterEvent::FlushFailed { .. }) => self.0.lock().unwrap().push((false, false)),
                _ => {}
            }
        }
    }
    let seen = std::rc::Rc::new(Flushed::default());
    let before = crate::observe::set_thread_observer(Some(seen.clone()));
    let store = crate::pool::regression::Mortal::new(&MemoryStore::new(), i64::MAX);
    let completer = Completer::new(store.clone(), cfg());
    completer.start(&Shutdown::new("app")).await;
    let p = completer.producer("w").unwrap();
    store.kill(); // every call hangs until the store is revived
    p.complete(Completion::new("slow", 1, "ok", "")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    store.revive();
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(p);
    completer.stop().await.unwrap();
    crate::observe::set_thread_observer(before);
    assert_eq!(*seen.0.lock().unwrap(), vec![(true, false)], "(flushed, retried) of each attempt");
}

/// A manager that starts late: the event channel backs up, and the completer's hand-over waits
/// for it, says so at both ends, and keeps the batch's room meanwhile. A stop with nobody
/// reading waits its whole bound on the hand-over, gives the batch up there (nothing of the
/// bound left on its clock) and reports it; a manager started after that still reads what the
/// channel held (hunt 36 B #3, #14, #48: none of this ran while managers started first).
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_full_event_channel_holds_the_hand_over_to_the_stop_bound() {
    use crate::observe::{Event, Observer};
    #[derive(Default)]
    struct Seen(std::sync::Mutex<Vec<String>>);
    impl Observer for Seen {
        fn event(&self, e: &Event<'_>) {
            let said = match e {
                Event::Completer(CompleterEvent::HandOverWaiting { n, .. }) => format!("waiting {n}"),
                Event::Completer(CompleterEvent::HandedOver { n, .. }) => format!("handed {n}"),
                Event::Completer(CompleterEvent::EventsUndeliveredAtBound { n, left_us, .. }) => {
                    format!("gave up {n} with {left_us} left")
                }
                Event::Completer(CompleterEvent::EventsUndelivered { n, .. }) => format!("lost {n}"),
                Event::Completer(CompleterEvent::Accepted { backlog, .. }) => format!("backlog {backlog}"),
                _ => return,
            };
            self.0.lock().unwrap().push(said);
        }
    }
    let seen = std::rc::Rc::new(Seen::default());
    let before = crate::observe::set_thread_observer(Some(seen.clone()));
    // One batch of room in the channel, batches of 2, a backlog of 4.
    let cfg = CompleterConfig::builder("t")
        .batch_size(2)
        .backlog(4)
        .event_buffer(1)
        .flush_interval(Duration::from_millis(5))
        .stop_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let completer = Arc::new(Completer::new(MemoryStore::new(), cfg));
    let subs = SubscriptionManager::new(&completer);
    let mut sub = subs.subscribe(KindFilter::All);
    completer.start(&Shutdown::new("app")).await;
    let p = completer.producer("w").unwrap();
    for i in 0..4 {
        p.complete(Completion::new(format!("j{i}"), 1, "ok", "")).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    // The first batch sits in the channel; the second's hand-over waits, holding its room: the
    // backlog still counts it, so two more fit, and a third finds no room.
    assert_eq!(seen.0.lock().unwrap().iter().filter(|s| s.starts_with("waiting")).count(), 1);
    for i in 4..6 {
        p.complete(Completion::new(format!("j{i}"), 1, "ok", "")).await.unwrap();
    }
    assert!(matches!(p.try_complete(Completion::new("j6", 1, "ok", "")), Err(TryCompleteError::Full(_))));
    drop(p);
    let began = tokio::time::Instant::now();
    let err = completer.stop().await.unwrap_err();
    let took = began.elapsed();
    assert!(took >= Duration::from_millis(300) && took <= Duration::from_millis(310), "{took:?}");
    assert_eq!((err.undelivered, err.unflushed.len()), (2, 2), "the waiting batch given up, the next unwritten");
    // Started now, the manager reads the batch the channel held, then the close.
    subs.start(&Shutdown::new("app")).await;
    assert_eq!(drain(&mut sub).await, ["j0", "j1"]);
    subs.stop().await;
    crate::observe::set_thread_observer(before);
    let said = seen.0.lock().unwrap().clone();
    assert!(said.contains(&"gave up 2 with 0 left".to_owned()), "{said:?}");
    assert!(!said.iter().any(|s| s.starts_with("lost") || s.starts_with("handed")), "{said:?}");
}

/// A completion whose key no store takes (empty, or over `NAME_MAX_BYTES`) is refused at intake
/// with a typed error, so it never holds up a batch: the store refuses such a write for good and
/// a batch is retried until written, so the valid completion batched with it, and every one after,
/// were never written while the completer ran (round 49's review; MC468 takes it in).
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_completion_key_no_store_takes_is_refused_at_intake() {
    async fn run() -> (Vec<String>, bool, StopError) {
        let store = MemoryStore::new();
        let completer = Completer::new(store.clone(), cfg());
        let caller = Shutdown::new("app");
        completer.start(&caller).await;
        let p = completer.producer("w").unwrap();
        let long = "k".repeat(crate::store::NAME_MAX_BYTES + 1);
        let refused = vec![
            p.complete(Completion::new("", 1, "ok", "")).await.err().map(|e| e.to_string()).unwrap_or_default(),
            p.try_complete(Completion::new(long, 1, "ok", "")).err().map(|e| e.to_string()).unwrap_or_default(),
        ];
        p.complete(Completion::new("good", 1, "ok", "")).await.unwrap();
        tokio::time::sleep(Duration::from_secs(60)).await;
        let stored = store.map_snapshot("t:completions").await.unwrap().entries.contains_key("good");
        drop(p);
        let stop = completer.stop().await.err().unwrap_or_default();
        (refused, stored, stop)
    }
    let (refused, stored, stop) = run().await;
    assert_eq!(
        refused,
        [
            "completion refused: completion key must not be empty",
            "completion refused: completion key longer than 1024 bytes"
        ]
    );
    assert!(stored, "the valid completion was written");
    assert_eq!(stop, StopError::default(), "nothing left unflushed");
    #[cfg(feature = "mutants")]
    {
        crate::mutants::set(Some(crate::mutants::Mutant::MC468));
        let (refused, stored, stop) = run().await;
        crate::mutants::set(None);
        assert_eq!(refused, ["", ""], "MC468 takes both in");
        assert!(!stored, "MC468: the valid completion is held up behind the refused batch");
        assert!(!stop.unflushed.is_empty(), "MC468: the batch is left unflushed at the stop: {stop:?}");
    }
}

/// A subscription manager's run follows one run of its completer: the completer's stop ends it
/// too (its subscribers closed), so a completer restarted alone hands its events to a channel
/// nobody reads and its producers park once `event_buffer` batches and the backlog fill; started
/// again with its manager (as a `ServiceGroup` does), everything flows (round 49's review: the
/// contract docs/lifecycle.md now states).
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_completer_restarted_alone_needs_its_manager_restarted() {
    async fn accepted(p: &Producer, n: usize) -> usize {
        let mut accepted = 0;
        for i in 0..n {
            let c = Completion::new(format!("j{i}"), 1, "ok", "");
            match tokio::time::timeout(Duration::from_secs(5), p.complete(c)).await {
                Ok(Ok(())) => accepted += 1,
                _ => break,
            }
        }
        accepted
    }
    let completer = Completer::new(MemoryStore::new(), cfg());
    let subs = SubscriptionManager::new(&completer);
    let caller = Shutdown::new("app");
    subs.start(&caller).await;
    completer.start(&caller).await;
    completer.stop().await.unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(subs.status(), Status::Stopped, "the manager's run ended with its completer's");
    completer.start(&caller).await;
    let p = completer.producer("w").unwrap();
    let alone = accepted(&p, 1000).await;
    assert!(alone < 1000, "restarted alone, the producers park behind the unread channel: {alone}");
    drop(p);
    let _ = completer.stop().await;
    subs.start(&caller).await;
    completer.start(&caller).await;
    let p = completer.producer("w").unwrap();
    assert_eq!(accepted(&p, 1000).await, 1000, "restarted with its manager, everything flows");
    drop(p);
    completer.stop().await.unwrap();
    subs.stop().await;
}
