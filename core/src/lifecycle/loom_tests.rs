//! Loom model of the start/stop protocol: concurrent start, stop and restart over the pure
//! machine, with a run task per spawned run. Checks: at most one run alive, every run exits, no
//! deadlock (loom aborts on one), stopped at the end.

use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

use super::machine::{Action, Input, Machine, Status};

#[derive(Default)]
struct State {
    machine: Machine,
    cancelled: Vec<u64>,
    alive: usize,
    spawned: u64,
    tasks: Vec<thread::JoinHandle<()>>,
}

#[derive(Default)]
struct Harness {
    state: Mutex<State>,
    changed: Condvar,
}

fn still(status: Status, run: u64) -> bool {
    matches!(status, Status::Running { run: r } | Status::Stopping { run: r } if r == run)
}

fn start(h: &Arc<Harness>) {
    h.start_from(h.clone())
}

impl Harness {
    fn start_from(&self, this: Arc<Harness>) {
        let mut g = self.state.lock().unwrap();
        loop {
            match g.machine.on(Input::Start) {
                Action::Spawn { run } => {
                    g.alive += 1;
                    g.spawned += 1;
                    assert_eq!(g.alive, 1, "two runs alive at once");
                    let h = this.clone();
                    g.tasks.push(thread::spawn(move || h.run_task(run)));
                    return;
                }
                Action::AwaitExit { run } => {
                    while still(g.machine.status(), run) {
                        g = self.changed.wait(g).unwrap();
                    }
                }
                Action::Nothing => return,
                a => panic!("unexpected {a:?} on start"),
            }
        }
    }

    fn run_task(&self, run: u64) {
        let mut g = self.state.lock().unwrap();
        while !g.cancelled.contains(&run) {
            g = self.changed.wait(g).unwrap();
        }
        g.alive -= 1;
        assert_eq!(g.machine.on(Input::Exited { run }), Action::Finished { run });
        self.changed.notify_all();
    }

    fn stop(&self) {
        let mut g = self.state.lock().unwrap();
        let run = match g.machine.on(Input::Stop) {
            Action::CancelAndAwait { run } => {
                g.cancelled.push(run);
                self.changed.notify_all();
                run
            }
            Action::AwaitExit { run } => run,
            Action::Nothing => return,
            a => panic!("unexpected {a:?} on stop"),
        };
        while still(g.machine.status(), run) {
            g = self.changed.wait(g).unwrap();
        }
    }
}

#[test]
fn lifecycle_loom_concurrent_start_stop_restart() {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.max_threads = 5;
    b.check(|| {
        let h = Arc::new(Harness::default());
        let a = h.clone();
        let t1 = thread::spawn(move || {
            start(&a);
            a.stop();
        });
        // Concurrently: a stop (maybe before any start), then a restart.
        h.stop();
        start(&h);
        t1.join().unwrap();
        h.stop();
        let tasks = std::mem::take(&mut h.state.lock().unwrap().tasks);
        for t in tasks {
            t.join().unwrap();
        }
        let g = h.state.lock().unwrap();
        assert_eq!(g.machine.status(), Status::Stopped);
        assert_eq!(g.alive, 0);
        assert!((1..=2).contains(&g.spawned), "spawned {}", g.spawned);
    });
}
