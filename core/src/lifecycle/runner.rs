//! The reusable runner of the start/stop protocol: one per service.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::watch;
use tokio::sync::Notify;

use super::machine::{Action, Input, Machine, Status};
use crate::observe::{self, LifecycleEvent};
use crate::shutdown::Shutdown;

/// What a run's task gets: its number and its own token.
#[derive(Clone, Debug)]
pub struct RunCtx {
    /// Run number (1, 2, … per restart).
    pub run: u64,
    /// Cancelled when the service is asked to stop.
    pub shutdown: Shutdown,
}

/// Runs a service's task under the keel start/stop rules: idempotent start and stop,
/// stop-before-start is a no-op, a stop waits for the task to exit, a start during a stop waits
/// for the stop and then starts a fresh run, and a panicking task still counts as exited (so no
/// stop ever hangs on it).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use keel::lifecycle::{Lifecycle, Status};
/// use keel::shutdown::Shutdown;
/// let life = Lifecycle::new("ticker");
/// life.stop().await; // stop before start: nothing happens
/// let started = life.start(Shutdown::new("ticker"), |ctx| async move { ctx.shutdown.cancelled().await }).await;
/// assert!(started);
/// assert!(!life.start(Shutdown::new("ticker"), |_| async {}).await); // already running
/// assert_eq!(life.status(), Status::Running { run: 1 });
/// life.stop().await;
/// life.stop().await; // idempotent
/// assert_eq!(life.status(), Status::Stopped);
/// # }
/// ```
#[derive(Clone)]
pub struct Lifecycle {
    shared: Arc<Shared>,
}

struct Shared {
    name: String,
    inner: Mutex<Inner>,
    status: watch::Sender<Status>,
    /// Wakes `started()`/`stopped()` waiters. A plain `Notify` (FIFO), not a watch: tokio's
    /// watch spreads waiters over notifiers picked by a per-thread RNG, which would make the
    /// wake-up order (and so a simulation's trace) differ between same-seed runs.
    changed: Notify,
}

/// One run's exit, signalled once.
#[derive(Default)]
struct Exit {
    done: std::sync::atomic::AtomicBool,
    notify: Notify,
}

impl Exit {
    fn signal(&self) {
        self.done.store(true, std::sync::atomic::Ordering::Release);
        self.notify.notify_waiters();
    }

    async fn wait(&self) {
        loop {
            let n = self.notify.notified();
            tokio::pin!(n);
            n.as_mut().enable();
            if self.done.load(std::sync::atomic::Ordering::Acquire) {
                return;
            }
            n.await;
        }
    }
}

#[derive(Default)]
struct Inner {
    machine: Machine,
    token: Option<Shutdown>,
    exited: Option<Arc<Exit>>,
}

/// Reports the run's exit when the task ends, however it ends (return, panic, abort).
struct ExitGuard {
    shared: Arc<Shared>,
    run: u64,
    done: Arc<Exit>,
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        {
            let mut inner = self.shared.lock();
            if let Action::Finished { .. } = inner.machine.on(Input::Exited { run: self.run }) {
                inner.token = None;
                inner.exited = None;
            }
            // MC179: the exit is not published on the status watch.
            if !crate::mutants::active(crate::mutants::Mutant::MC179) {
                self.shared.status.send_replace(inner.machine.status());
            }
        }
        self.done.signal();
        // MC106: the exit does not wake the started()/stopped() waiters.
        if !crate::mutants::active(crate::mutants::Mutant::MC106) {
            self.shared.changed.notify_waiters();
        }
        observe::emit(LifecycleEvent::RunExited { service: (&self.shared.name).into(), run: self.run });
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl std::fmt::Debug for Lifecycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lifecycle").field("name", &self.shared.name).field("status", &self.status()).finish()
    }
}

impl Lifecycle {
    /// A stopped lifecycle for the service `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Lifecycle {
            shared: Arc::new(Shared {
                name: name.into(),
                inner: Mutex::new(Inner::default()),
                status: watch::channel(Status::Stopped).0,
                changed: Notify::new(),
            }),
        }
    }

    /// The name its runs are reported under (`run_started`, `run_exited`).
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The current status.
    pub fn status(&self) -> Status {
        self.shared.lock().machine.status()
    }

    /// A watch of the status (the `started`/`stopped` signals).
    pub fn subscribe(&self) -> watch::Receiver<Status> {
        self.shared.status.subscribe()
    }

    async fn wait_status(&self, ok: impl Fn(Status) -> bool) {
        loop {
            let n = self.shared.changed.notified();
            tokio::pin!(n);
            n.as_mut().enable();
            if ok(self.status()) {
                return;
            }
            n.await;
        }
    }

    /// Completes once a run is running.
    pub async fn started(&self) {
        self.wait_status(|s| matches!(s, Status::Running { .. })).await
    }

    /// Completes once no run is running or stopping.
    pub async fn stopped(&self) {
        self.wait_status(|s| s == Status::Stopped).await
    }

    /// Start a run on `token` unless one is running. If a stop is under way, waits for it and
    /// then starts. Returns whether this call started a run. `run` is called at most once.
    pub async fn start<F, Fut>(&self, token: Shutdown, run: F) -> bool
    where
        F: FnOnce(RunCtx) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        loop {
            let wait = {
                let mut inner = self.shared.lock();
                match inner.machine.on(Input::Start) {
                    Action::Spawn { run: n } => {
                        let done = Arc::new(Exit::default());
                        inner.token = Some(token.clone());
                        inner.exited = Some(done.clone());
                        self.shared.status.send_replace(inner.machine.status());
                        self.shared.changed.notify_waiters();
                        let guard = ExitGuard { shared: self.shared.clone(), run: n, done };
                        let fut = run(RunCtx { run: n, shutdown: token });
                        observe::emit(LifecycleEvent::RunStarted { service: (&self.shared.name).into(), run: n });
                        // review49: spawned once the lock is released (the run is recorded
                        // already): a runtime shutting down drops the task inside `spawn`, and
                        // the guard's drop takes this lock.
                        drop(inner);
                        tokio::spawn(async move {
                            let _guard = guard;
                            fut.await;
                        });
                        return true;
                    }
                    Action::AwaitExit { .. } => inner.exited.clone(),
                    _ => return false,
                }
            };
            if let Some(exit) = wait {
                exit.wait().await;
            }
        }
    }

    /// Ask the running run to stop and wait until it exited. Idempotent; a no-op when stopped.
    /// Concurrent stops all wait for the same exit.
    pub async fn stop(&self) {
        let (run, wait) = {
            let mut inner = self.shared.lock();
            match inner.machine.on(Input::Stop) {
                Action::CancelAndAwait { run } => {
                    self.shared.status.send_replace(inner.machine.status());
                    self.shared.changed.notify_waiters();
                    observe::emit(LifecycleEvent::StopBegun { service: (&self.shared.name).into(), run });
                    match &inner.token {
                        // MC163: a token already cancelled (by the parent) taken for a run
                        // already gone: the stop returns while the run still drains.
                        Some(t) if t.is_cancelled() && crate::mutants::active(crate::mutants::Mutant::MC163) => {
                            (Some(run), None)
                        }
                        t => {
                            t.iter().for_each(Shutdown::cancel);
                            (Some(run), inner.exited.clone())
                        }
                    }
                }
                // MC37: a second stop of the same run does not wait for its exit.
                Action::AwaitExit { run } if crate::mutants::active(crate::mutants::Mutant::MC37) => (Some(run), None),
                // MC271: a stop that joins one under way waits, but announces no return.
                Action::AwaitExit { .. } if crate::mutants::active(crate::mutants::Mutant::MC271) => {
                    (None, inner.exited.clone())
                }
                Action::AwaitExit { run } => (Some(run), inner.exited.clone()),
                _ => (None, None),
            }
        };
        // MC11: cancelled, not waited for.
        if let Some(exit) = wait.filter(|_| !crate::mutants::active(crate::mutants::Mutant::MC11)) {
            exit.wait().await;
        }
        if let Some(run) = run {
            observe::emit(LifecycleEvent::StopReturned { service: (&self.shared.name).into(), run });
        }
    }

    /// Wait for the current run (if any) to exit, without asking it to stop (e.g. a run that
    /// follows its parent's token).
    pub async fn join(&self) {
        // MC374: "joined" taken as "no longer running": returns when a stop begins.
        if crate::mutants::active(crate::mutants::Mutant::MC374) {
            return self.wait_status(|s| !matches!(s, Status::Running { .. })).await;
        }
        // MC375: "joined" taken as "stopped".
        if crate::mutants::active(crate::mutants::Mutant::MC375) {
            return self.stopped().await;
        }
        let wait = {
            let inner = self.shared.lock();
            // MC373: a stopping run taken for gone.
            let stopping = matches!(inner.machine.status(), Status::Stopping { .. });
            if stopping && crate::mutants::active(crate::mutants::Mutant::MC373) { None } else { inner.exited.clone() }
        };
        if let Some(exit) = wait {
            exit.wait().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn concurrent_start_stop_never_hangs_and_restarts_fresh() {
        let life = Lifecycle::new("svc");
        let runs = Arc::new(std::sync::atomic::AtomicU64::new(0));
        for round in 0..20u64 {
            let mut tasks = Vec::new();
            for i in 0..4u64 {
                let (l, r) = (life.clone(), runs.clone());
                tasks.push(tokio::spawn(async move {
                    if (i + round) % 2 == 0 {
                        l.start(Shutdown::new("svc"), move |ctx| async move {
                            r.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            ctx.shutdown.cancelled().await;
                        })
                        .await;
                    } else {
                        l.stop().await;
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        }
        life.stop().await;
        assert_eq!(life.status(), Status::Stopped);
        assert!(runs.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    }

    /// The `stop_returned` announcements of one thread's lifecycles.
    #[derive(Default)]
    struct Returns(std::cell::RefCell<Vec<u64>>);

    impl crate::observe::Observer for Returns {
        fn event(&self, e: &crate::observe::Event<'_>) {
            if let crate::observe::Event::Lifecycle(LifecycleEvent::StopReturned { run, .. }) = e {
                self.0.borrow_mut().push(*run);
            }
        }
    }

    /// A lifecycle running run 1, which once told to stop drains until `release` is notified.
    async fn a_run_that_drains_until_released() -> (Lifecycle, Arc<tokio::sync::Notify>) {
        let life = Lifecycle::new("svc");
        let release = Arc::new(tokio::sync::Notify::new());
        let r = release.clone();
        life.start(Shutdown::new("svc"), move |ctx| async move {
            ctx.shutdown.cancelled().await;
            r.notified().await;
        })
        .await;
        (life, release)
    }

    /// Two stops of one run, the second finding the first under way: the runs each announces
    /// as it returns.
    async fn two_stops_announce() -> Vec<u64> {
        let seen = std::rc::Rc::new(Returns::default());
        let before = crate::observe::set_thread_observer(Some(seen.clone()));
        let (life, release) = a_run_that_drains_until_released().await;
        let (a, b) = (life.clone(), life.clone());
        let first = tokio::spawn(async move { a.stop().await });
        tokio::task::yield_now().await;
        let second = tokio::spawn(async move { b.stop().await });
        tokio::task::yield_now().await;
        release.notify_one();
        first.await.unwrap();
        second.await.unwrap();
        crate::observe::set_thread_observer(before);
        seen.0.take()
    }

    /// Every stop that found a run announces its return, also one that joined a stop under way:
    /// V5 judges only the returns announced, so an unannounced one is a stop it cannot see
    /// (round 29 B #6, MC271: a second stop waited, then returned silently).
    #[tokio::test(flavor = "current_thread")]
    async fn a_stop_that_joins_one_under_way_announces_its_return() {
        assert_eq!(two_stops_announce().await, [1, 1]);
        #[cfg(feature = "mutants")]
        {
            crate::mutants::set(Some(crate::mutants::Mutant::MC271));
            let mutated = two_stops_announce().await;
            crate::mutants::set(None);
            assert_eq!(mutated, [1], "MC271 announces only the first stop's return");
        }
    }

    /// The contract, at the instant: no stop returns before the run it was called on exited,
    /// also a stop that finds a stop of that run under way (MC37 returns at once).
    #[tokio::test(flavor = "current_thread")]
    async fn every_stop_waits_for_the_exit_also_one_that_finds_a_stop_under_way() {
        let (life, release) = a_run_that_drains_until_released().await;
        let (a, b) = (life.clone(), life.clone());
        let first = tokio::spawn(async move { a.stop().await });
        tokio::task::yield_now().await;
        assert_eq!(life.status(), Status::Stopping { run: 1 });
        let second = tokio::spawn(async move { b.stop().await });
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!first.is_finished() && !second.is_finished(), "a stop returned while run 1 drains");
        release.notify_one();
        first.await.unwrap();
        second.await.unwrap();
        assert_eq!(life.status(), Status::Stopped);
    }

    /// Whether joins called while run 1 runs and while it stops both wait for its exit: the
    /// stop's drain is held until released, so a join that returns before is seen unfinished.
    async fn joins_wait_for_the_exit() -> bool {
        let (life, release) = a_run_that_drains_until_released().await;
        let l = life.clone();
        let running = tokio::spawn(async move { l.join().await });
        tokio::task::yield_now().await;
        let l = life.clone();
        let stop = tokio::spawn(async move { l.stop().await });
        tokio::task::yield_now().await;
        assert_eq!(life.status(), Status::Stopping { run: 1 });
        let l = life.clone();
        let stopping = tokio::spawn(async move { l.join().await });
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        let waited = !running.is_finished() && !stopping.is_finished();
        release.notify_one();
        for task in [running, stop, stopping] {
            task.await.unwrap();
        }
        assert_eq!(life.status(), Status::Stopped);
        life.join().await; // no run: at once
        waited
    }

    /// `join()` returns once the run current at its call exited: called while it runs and while
    /// it drains a stop (V46; MC373 takes a stopping run for gone, MC374 returns at the stop).
    #[tokio::test(flavor = "current_thread")]
    async fn a_join_returns_once_its_run_exited_also_one_called_while_it_stops() {
        assert!(joins_wait_for_the_exit().await, "a join returned while run 1 drained");
        #[cfg(feature = "mutants")]
        for m in [crate::mutants::Mutant::MC373, crate::mutants::Mutant::MC374] {
            crate::mutants::set(Some(m));
            let waited = joins_wait_for_the_exit().await;
            crate::mutants::set(None);
            assert!(!waited, "{m:?} returns a join before the exit");
        }
    }

    /// review49: a start while the runtime shuts down. tokio's `spawn` on a runtime whose task
    /// list is closed drops the future at once, on the caller's thread: the run's exit guard then
    /// locks the lifecycle that `start` still holds (std Mutex, not re-entrant).
    #[test]
    fn a_start_during_runtime_shutdown_does_not_deadlock() {
        use futures::FutureExt;
        struct StartOnDrop(Lifecycle);
        impl Drop for StartOnDrop {
            fn drop(&mut self) {
                let _ = self.0.start(Shutdown::new("late"), |_| async {}).now_or_never();
            }
        }
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
            let d = StartOnDrop(Lifecycle::new("svc"));
            rt.spawn(async move {
                let _d = d;
                std::future::pending::<()>().await
            });
            drop(rt);
            let _ = tx.send(());
        });
        assert!(
            rx.recv_timeout(std::time::Duration::from_secs(5)).is_ok(),
            "the runtime's drop hung: the exit guard re-locked the lifecycle inside start"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_panicking_run_counts_as_exited() {
        let life = Lifecycle::new("svc");
        life.start(Shutdown::new("svc"), |_| async { panic!("boom") }).await;
        life.stopped().await;
        life.stop().await;
        assert!(life.start(Shutdown::new("svc"), |ctx| async move { ctx.shutdown.cancelled().await }).await);
        assert_eq!(life.status(), Status::Running { run: 2 });
        life.stop().await;
    }
}
