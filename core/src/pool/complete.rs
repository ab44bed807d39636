//! The completion seam: the one place a finished job is recorded.
//!
//! A completion is one guarded transaction on the job map (sent through the node's group
//! commit, batch.rs): delete the record only if it still names this worker and attempt (so a
//! stale attempt's completion is rejected), and leave a tombstone `d/{job}` = `attempt|worker|ms`
//! so that a retry after an unknown outcome can tell "my earlier try landed" from "someone
//! else's attempt won". The sweeper removes tombstones after `done_retention`. Only after this
//! transaction applied does the worker hand the completion to the node's `keel::completer`
//! (batching, events): the completer's batch write cannot guard per key, so the fence stays here.
//!
//! **No pending-entry delete.** A run completes only after its ack applied, and the ack deleted
//! the attempt's pending entry `p/{job}` under the same record guard. A pending entry is only
//! ever written together with a record of a new attempt (dispatch, move, hand-back), and such a
//! record fails this guard. So while the guard holds there is no pending entry to delete. The one
//! exception is ABA after the store lost its data: the job dispatched again at attempt 1 to the
//! same worker id with the same payload has the same record value, and its fresh pending entry
//! outlives this completion. It is then an orphan (no record), which every sweep deletes
//! (`View::sweepable_pending`), so at most one sweep period later nothing is left either way.

use crate::error::StoreError;
use crate::mutants::{self, Mutant};
use crate::store::{Expect, Store};

use super::node::Core;
use super::state::{done_key, job_key};

/// Record the completion of `job` at the attempt whose record value is `record`; `done` is this
/// completion's tombstone value. `Ok(false)`: the attempt is stale, nothing was written.
pub(crate) async fn complete<S: Store>(
    core: &Core<S>,
    job: &str,
    record: &str,
    done: &str,
) -> Result<bool, StoreError> {
    let guards = vec![(job_key(job), Expect::Value(record.to_owned()))];
    let writes = vec![(job_key(job), None), (done_key(job), Some(done.to_owned()))];
    if core.job_txn(guards, writes).await?.applied {
        return Ok(true);
    }
    let (tomb, _) = core.store.map_get(&core.maps.jobs, &done_key(job)).await?;
    Ok(tomb.as_deref().is_some_and(|held| same_attempt(held, done)))
}

/// Whether the tombstone the store holds records this completion's attempt by this worker,
/// whatever store time it was stamped with. The worker may have run the attempt twice (the job
/// delivered to it again after a completion whose outcome was unknown, which landed meanwhile):
/// the store then holds the other run's tombstone, and the attempt is recorded all the same.
/// Taken for another attempt's, the completion's events would never be published (P14, which
/// found it at poolfeed seed 57). MC46 compares the whole value, as keel did.
fn same_attempt(held: &str, done: &str) -> bool {
    if mutants::active(Mutant::MC46) {
        return held == done;
    }
    owner(held).is_some() && owner(held) == owner(done)
}

/// `attempt|worker` of a tombstone `attempt|worker|ms` (worker ids contain no `|`).
fn owner(tombstone: &str) -> Option<&str> {
    tombstone.rsplit_once('|').map(|(attempt_worker, _)| attempt_worker)
}

#[cfg(test)]
mod tests {
    use super::same_attempt;

    #[test]
    fn a_tombstone_is_this_completions_by_attempt_and_worker_whatever_its_time() {
        assert!(same_attempt("3|n1.7.w2|1000", "3|n1.7.w2|1000"));
        assert!(same_attempt("3|n1.7.w2|1000", "3|n1.7.w2|1250"), "another run of the same attempt");
        assert!(!same_attempt("2|n1.7.w2|1000", "3|n1.7.w2|1000"), "another attempt");
        assert!(!same_attempt("3|n0.7.w2|1000", "3|n1.7.w2|1000"), "another worker");
        assert!(!same_attempt("garbage", "garbage"), "not a tombstone");
    }
}
