//! The completion seam: the one place a finished job is recorded.
//!
//! Today a completion is one guarded transaction on the job map: delete the record and its
//! pending entry only if the record still names this worker and attempt (so a stale attempt's
//! completion is rejected), and leave a tombstone `d/{job}` = `attempt|worker|ms` so that a retry
//! after an unknown outcome can tell "my earlier try landed" from "someone else's attempt won".
//! The sweeper removes tombstones after `done_retention`. Only after this transaction applied does
//! the worker hand the completion to the node's `keel::completer` (batching, events): the
//! completer's batch write cannot guard per key, so the fence stays here.

use crate::error::StoreError;
use crate::store::{Expect, Store};

use super::state::{Maps, done_key, job_key, pending_key};

/// Record the completion of `job` at the attempt whose record value is `record`; `done` is this
/// completion's tombstone value. `Ok(false)`: the attempt is stale, nothing was written.
pub(crate) async fn complete<S: Store>(
    store: &S,
    maps: &Maps,
    job: &str,
    record: &str,
    done: &str,
) -> Result<bool, StoreError> {
    let guards = [(job_key(job), Expect::Value(record.to_owned()))];
    let writes = [(job_key(job), None), (pending_key(job), None), (done_key(job), Some(done.to_owned()))];
    if store.map_txn(&maps.jobs, &guards, &writes).await?.applied {
        return Ok(true);
    }
    let (tomb, _) = store.map_get(&maps.jobs, &done_key(job)).await?;
    Ok(tomb.as_deref() == Some(done))
}
