//! Loom models of the waiter registry and the apply/notify path (`cargo loomtest`).
//!
//! Each model runs the real [`Registry`]/[`Waiter`] code with loom's `Mutex`/atomics (via
//! `crate::sync`) and explores every interleaving of one apply thread and one waiter. Mutants MP2
//! and MP3 are shown to be caught in a child process (loom aborts on deadlock), which must fail.

use loom::future::block_on;
use loom::thread;

use super::waiters::{Registry, WaitResult};
use crate::sync::Arc;

const MUTANT_ENV: &str = "KEEL_LOOM_RMAP_MUTANT";

/// Mutant switches of this process: set by the parent when it re-executes a model.
fn switches() -> (bool, bool, bool) {
    let m = std::env::var(MUTANT_ENV).unwrap_or_default();
    (m == "MP2", m == "MP3", m == "MC467")
}

fn registry() -> Arc<Registry> {
    let (mp2, mp3, mc467) = switches();
    Arc::new(Registry::with_mutants(4, mp2, mp3, mc467))
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(f);
}

fn spawn_apply(reg: &Arc<Registry>, rev: u64) -> thread::JoinHandle<()> {
    let reg = reg.clone();
    thread::spawn(move || {
        let d = reg.applied_to(rev);
        block_on(reg.deliver(d));
    })
}

/// No lost wakeup: however arming and applying interleave, the waiter completes.
#[test]
fn loom_rmap_waiter_no_lost_wakeup() {
    model(|| {
        let reg = registry();
        let mut w = Registry::register(&reg).expect("open registry");
        let apply = spawn_apply(&reg, 1);
        w.arm(1);
        let r = block_on(w.wait());
        assert_eq!(r, WaitResult::Reached(1));
        drop(w);
        apply.join().expect("apply thread");
        assert_eq!(reg.len(), 0, "waiter leaked");
    });
}

/// No lost wakeup at a resync either: a waiter armed while the replica loads a snapshot that
/// holds its write completes. Hunt 33 B #29 published the load's revision after collecting its
/// waiters (round 31 B #16's bug, on the load path): an `arm()` between the two read the old
/// revision and parked, and no later load or change came on a quiet map.
#[test]
fn loom_rmap_waiter_no_lost_wakeup_at_a_load() {
    model(|| {
        let reg = registry();
        let mut w = Registry::register(&reg).expect("open registry");
        let seq = reg.begin_snapshot();
        let load = {
            let reg = reg.clone();
            thread::spawn(move || {
                let snap = crate::store::MapSnapshot { rev: 1, ..Default::default() };
                let d = reg.loaded(&snap, seq);
                block_on(reg.deliver(d));
            })
        };
        w.arm(1);
        let r = block_on(w.wait());
        assert_eq!(r, WaitResult::Reached(1));
        drop(w);
        load.join().expect("load thread");
        assert_eq!(reg.len(), 0, "waiter leaked");
    });
}

/// Cancellation at any point (before arming, after arming, while being delivered to) never
/// panics, never blocks the apply loop, and leaves no entry behind.
#[test]
fn loom_rmap_waiter_cancelled_anywhere() {
    model(|| {
        let reg = registry();
        let mut w = Registry::register(&reg).expect("open registry");
        let apply = spawn_apply(&reg, 1);
        w.arm(1);
        drop(w); // the caller's future is dropped before it receives
        apply.join().expect("apply thread");
        assert_eq!(reg.len(), 0, "waiter leaked");
    });
}

/// Closing the map races a waiter: it completes (Reached or Closed), nothing leaks.
#[test]
fn loom_rmap_close_races_waiter() {
    model(|| {
        let reg = registry();
        let mut w = Registry::register(&reg).expect("open registry");
        let closer = {
            let reg = reg.clone();
            thread::spawn(move || {
                let d = reg.close();
                block_on(reg.deliver(d));
            })
        };
        w.arm(5);
        let r = block_on(w.wait());
        assert!(matches!(r, WaitResult::Closed), "{r:?}");
        closer.join().expect("closer");
        assert_eq!(reg.len(), 0);
    });
}

/// Two waiters, one apply: each gets its own wake-up (no stolen notification).
#[test]
fn loom_rmap_two_waiters_each_woken() {
    model(|| {
        let reg = registry();
        let mut a = Registry::register(&reg).expect("open");
        let b = Registry::register(&reg).expect("open");
        let other = thread::spawn(move || {
            let mut b = b;
            b.arm(1);
            block_on(b.wait())
        });
        let apply = spawn_apply(&reg, 1);
        a.arm(1);
        assert_eq!(block_on(a.wait()), WaitResult::Reached(1));
        assert_eq!(other.join().expect("b"), WaitResult::Reached(1));
        apply.join().expect("apply");
        assert_eq!(reg.len(), 0);
    });
}

/// Re-run `test` in a child process with `mutant` switched on; returns whether the child failed
/// and its output.
fn child(test: &str, mutant: &str) -> (bool, String) {
    let exe = std::env::current_exe().expect("test binary path");
    let out = std::process::Command::new(exe)
        .args(["--exact", test, "--test-threads=1", "--nocapture"])
        .env(MUTANT_ENV, mutant)
        .output()
        .expect("spawn the child test process");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains(test), "the child did not run {test}:\n{text}");
    (!out.status.success(), text)
}

fn in_child() -> bool {
    std::env::var(MUTANT_ENV).is_ok()
}

/// MP2 (pulse #62): the waiter closes its channel on exit while the apply loop may still send.
/// Loom finds the interleaving where the send hits the closed channel.
#[test]
fn loom_rmap_catches_mp2() {
    if in_child() {
        return;
    }
    let (failed, text) = child("rmap::loom_tests::loom_rmap_waiter_cancelled_anywhere", "MP2");
    assert!(failed && text.contains("send on a closed waiter channel"), "loom did not catch MP2:\n{text}");
}

/// MP3: a blocking send to a waiter that stopped receiving deadlocks the apply loop.
#[test]
fn loom_rmap_catches_mp3() {
    if in_child() {
        return;
    }
    let (failed, text) = child("rmap::loom_tests::loom_rmap_waiter_cancelled_anywhere", "MP3");
    assert!(failed && text.contains("deadlock"), "loom did not catch MP3 (apply loop blocked):\n{text}");
}

/// The unmutated model passes in a child process too (the harness itself is sound).
#[test]
fn loom_rmap_child_harness_passes_unmutated() {
    if in_child() {
        return;
    }
    let (failed, text) = child("rmap::loom_tests::loom_rmap_waiter_cancelled_anywhere", "none");
    assert!(!failed, "the unmutated model failed in the child:\n{text}");
}

/// A waiter armed while a resync loads a snapshot whose seedings show its write lost (acked at
/// 100 before a restart that kept 99 and re-seeded from 5000) must see `Lost`, whichever side of
/// the load it arms on (R3: `set_and_wait` never returns `Ok` for a write the store lost). Found
/// by review in round 49: `loaded` published the revision before it took the lock that updates
/// the seedings, and an arm in between read the new revision with the old seedings (MC467).
#[test]
fn loom_rmap_arm_during_a_reseeding_load_sees_the_loss() {
    model(|| {
        let reg = registry();
        let mut w = Registry::register(&reg).expect("open registry");
        let seq = reg.begin_snapshot();
        let load = {
            let reg = reg.clone();
            thread::spawn(move || {
                let snap = crate::store::MapSnapshot {
                    rev: 5003,
                    reseeds: vec![crate::store::Reseed { kept: 99, seed: 5000 }],
                    ..Default::default()
                };
                let d = reg.loaded(&snap, seq);
                block_on(reg.deliver(d));
            })
        };
        w.arm(100);
        let r = block_on(w.wait());
        load.join().expect("load thread");
        assert_eq!(r, WaitResult::Lost(5003), "a write the snapshot's seedings call lost");
    });
}

/// MC467 (round 49's review): the load's revision published before its seedings. Loom finds the
/// arm in between, which calls the lost write reached.
#[test]
fn loom_rmap_catches_mc467() {
    if in_child() {
        return;
    }
    let (failed, text) = child("rmap::loom_tests::loom_rmap_arm_during_a_reseeding_load_sees_the_loss", "MC467");
    assert!(failed && text.contains("Reached(5003)"), "loom did not catch MC467:\n{text}");
}
