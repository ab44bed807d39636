//! The completion seam: the one place a finished job is recorded.
//!
//! Today a completion is one guarded transaction on the job map (delete the record and its
//! pending entry only if the record still names this worker and attempt), so a stale attempt's
//! completion is rejected. `keel::completer` (SPEC §6) is meant to plug in here: batch these
//! writes, retry them, and publish completion events, without the pool changing.

use crate::error::StoreError;
use crate::store::{Expect, Store};

use super::state::{Maps, job_key, pending_key};

/// Record the completion of `job` at the attempt whose record value is `record`.
/// `Ok(false)`: the attempt is stale (the job moved or was completed), nothing was written.
pub(crate) async fn complete<S: Store>(store: &S, maps: &Maps, job: &str, record: &str) -> Result<bool, StoreError> {
    let guards = [(job_key(job), Expect::Value(record.to_owned()))];
    let writes = [(job_key(job), None), (pending_key(job), None)];
    Ok(store.map_txn(&maps.jobs, &guards, &writes).await?.applied)
}
