//! Loom models of the drain (no event lost, no send after close, closed exactly once) and of
//! the run-tagged event slot (a stale run's close cannot close a restarted run's channel: MR5).

use std::collections::VecDeque;

use loom::sync::{Arc, Mutex};
use loom::thread;

use super::Completion;
use super::intake::Intake;
use super::slot::EventSlot;

/// A channel whose sender handles count themselves, so a close and a send after it are visible.
#[derive(Default)]
struct Chan {
    senders: usize,
    closes: usize,
    queue: VecDeque<usize>,
    sent_after_close: bool,
}

struct Tx(Arc<Mutex<Chan>>);

impl Tx {
    fn new(chan: &Arc<Mutex<Chan>>) -> Tx {
        chan.lock().unwrap().senders += 1;
        Tx(chan.clone())
    }
    fn send(&self, n: usize) {
        let mut c = self.0.lock().unwrap();
        if c.closes > 0 {
            c.sent_after_close = true;
        }
        c.queue.push_back(n);
    }
}

impl Clone for Tx {
    fn clone(&self) -> Tx {
        Tx::new(&self.0)
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        let mut c = self.0.lock().unwrap();
        c.senders -= 1;
        if c.senders == 0 {
            c.closes += 1;
        }
    }
}

fn builder() -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b
}

#[test]
fn completer_loom_drain_loses_nothing_and_closes_once() {
    builder().check(|| {
        let intake = Arc::new(Intake::new(8));
        let slot = Arc::new(EventSlot::new());
        let chan = Arc::new(Mutex::new(Chan::default()));
        slot.install(1, Tx::new(&chan));
        let producers: Vec<_> = (0..2)
            .map(|i| {
                let id = intake.register("p", || {}).unwrap();
                let intake = intake.clone();
                thread::spawn(move || {
                    intake.try_push(Completion::new(format!("k{i}"), 1, "ok", "")).unwrap();
                    intake.deregister(id);
                })
            })
            .collect();
        // The driver's drain, stop already requested.
        let (di, ds) = (intake.clone(), slot.clone());
        let driver = thread::spawn(move || {
            di.begin_drain();
            while !di.drained() {
                let batch = di.take_batch(8);
                if batch.is_empty() {
                    thread::yield_now();
                    continue;
                }
                ds.sender(1).expect("the owner's channel is open until it closes it").send(batch.len());
                di.done(batch.len());
            }
            let left = di.close();
            assert!(left.is_empty(), "completions left behind by the drain");
            assert!(ds.close(1));
            assert!(!ds.close(1), "closed twice");
        });
        for p in producers {
            p.join().unwrap();
        }
        driver.join().unwrap();
        let c = chan.lock().unwrap();
        assert_eq!(c.queue.iter().sum::<usize>(), 2, "an event was lost");
        assert_eq!(c.closes, 1);
        assert!(!c.sent_after_close);
    });
}

/// The stop of run 1 closes its channel from a detached task while run 2 is being started.
/// With `mr5` the task closes whatever channel is installed (River's racy close).
fn restart_model(mr5: bool) {
    builder().check(move || {
        let slot = Arc::new(EventSlot::new());
        let (c1, c2) = (Arc::new(Mutex::new(Chan::default())), Arc::new(Mutex::new(Chan::default())));
        slot.install(1, Tx::new(&c1));
        let s = slot.clone();
        let closer = thread::spawn(move || {
            if mr5 {
                s.close_current();
            } else {
                s.close(1);
            }
        });
        slot.install(2, Tx::new(&c2));
        let tx = slot.sender(2);
        assert!(tx.is_some(), "run 2's channel was closed by run 1's stop");
        if let Some(tx) = tx {
            tx.send(1);
        }
        closer.join().unwrap();
        assert!(!c2.lock().unwrap().sent_after_close);
        assert_eq!(c1.lock().unwrap().closes, 1, "run 1's channel closed exactly once");
    });
}

#[test]
fn completer_loom_stale_close_cannot_touch_a_restarted_channel() {
    if std::env::var_os("KEEL_LOOM_MR5").is_some() {
        restart_model(true); // the child process of the test below
        return;
    }
    restart_model(false);
}

/// Loom catches MR5: the mutated model fails (loom reports the interleaving and the child exits
/// non-zero). Run in a child process because a loom failure aborts the process.
#[test]
fn completer_loom_catches_mr5() {
    if std::env::var_os("KEEL_LOOM_MR5").is_some() {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args(["--exact", "completer::loom_tests::completer_loom_stale_close_cannot_touch_a_restarted_channel"])
        .args(["--test-threads=1", "--nocapture"])
        .env("KEEL_LOOM_MR5", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "loom did not catch MR5");
    assert!(stderr.contains("run 2's channel was closed by run 1's stop"), "unexpected failure: {stderr}");
}
