//! The store conformance suite on the simulator's own store: `SimStore`, the client every
//! scenario's nodes call, through the simulated network to the store node, its server and the
//! `MemoryStore` it serves, crashed and restarted by the world as a fault plan would.
//!
//! Every scenario judges keel against this store. A slip in its transport (a batch's replies
//! out of order, a transaction's guards dropped on the way, a watch that stays silent after a
//! restart, an error of the wrong class) would make the simulator check keel against a store
//! that is not the one keel runs on: one semantics for `MemoryStore`, `RedisStore` and this.

use std::sync::Arc;
use std::time::Duration;

use keel::testkit::conformance::Harness;

use crate::history::History;
use crate::net::SimStore;
use crate::world::{NodeMain, Persisted, World};

/// The op timeout of the client (a case waits on the store for nothing longer).
const OP_TIMEOUT: Duration = Duration::from_secs(1);

/// A world of one application node whose store client the cases drive.
pub struct SimHarness {
    world: Arc<World>,
    store: SimStore,
}

impl SimHarness {
    /// Build the world and connect node 0's client (the case runs on the test's task; the
    /// client's endpoint is node 0's).
    pub async fn start() -> Self {
        let history = History::default();
        history.start();
        crate::linearize::begin();
        let (tx, rx) = tokio::sync::oneshot::channel::<SimStore>();
        let tx = Arc::new(std::sync::Mutex::new(Some(tx)));
        let main: NodeMain = Arc::new(move |ctx| {
            let tx = tx.clone();
            Box::pin(async move {
                let store = ctx.store().await;
                let sender = tx.lock().unwrap_or_else(|p| p.into_inner()).take();
                if let Some(sender) = sender {
                    let _ = sender.send(store);
                }
                std::future::pending::<()>().await;
            })
        });
        let world = World::build(history, 1, OP_TIMEOUT, crate::plan::Knobs::default(), main);
        let store = match rx.await {
            Ok(store) => store,
            Err(_) => panic!("node 0 ended before it connected its store client"),
        };
        SimHarness { world, store }
    }

    /// Crash the store node keeping `data`, and start it again.
    async fn crash_and_restart(&self, data: Persisted) {
        self.world.kill_store(data);
        tokio::time::sleep(Duration::from_millis(1)).await;
        self.world.restart_store();
        // The server is up once it answers (its first calls may meet the old connection's end).
        let deadline = tokio::time::Instant::now() + 10 * OP_TIMEOUT;
        while keel::store::Store::time_ms(&self.store).await.is_err() {
            assert!(tokio::time::Instant::now() < deadline, "the simulated store did not come back");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Harness for SimHarness {
    type S = SimStore;

    fn store(&self) -> SimStore {
        self.store.clone()
    }

    async fn advance(&self, by: Duration) {
        tokio::time::sleep(by).await;
    }

    async fn lose_data(&self) {
        self.crash_and_restart(Persisted::Nothing).await;
    }

    async fn restart_keep_data(&self) {
        self.crash_and_restart(Persisted::All).await;
    }

    async fn checkpoint(&self) {
        self.world.checkpoint_store();
    }

    async fn restart_from_checkpoint(&self) {
        self.crash_and_restart(Persisted::Checkpoint).await;
    }
}

impl Drop for SimHarness {
    fn drop(&mut self) {
        self.world.reap();
        let _ = crate::linearize::finish();
    }
}

keel::conformance_tests!(SimHarness::start().await);

/// The suite's teeth on this store: a transport that answers a batch of reads in reverse order
/// (mutant MC319) fails the case that compares a batch with the single reads.
#[tokio::test]
async fn a_batch_of_reads_answered_in_reverse_fails_the_suite() {
    use futures::FutureExt;
    let before = keel::mutants::set(Some(keel::mutants::Mutant::MC319));
    let h = SimHarness::start().await;
    let case = keel::testkit::conformance::reads_answer_as_the_single_reads_in_order(&h);
    let outcome = std::panic::AssertUnwindSafe(case).catch_unwind().await;
    keel::mutants::set(before);
    assert!(!matches!(outcome, Ok(Ok(()))), "MC319: a batch answered in reverse passed the case");
}
