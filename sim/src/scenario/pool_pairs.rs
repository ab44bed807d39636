//! **P49**: a worker is registered only once the store has its keep-alive, judged at the store
//! as each registration (a set of `workers[w]` in a pool's workers map) applies (blind-spot
//! hunt, round 22, #27). A registration written before the worker's first keep-alive is, for a
//! round trip (a retry's backoff when the keep-alive write then fails), a registered worker with
//! no keep-alive, which a sweep takes for dead and fences. So a registration may land only while
//! the keep-alive map holds something for `w`, or once the store has applied a keep-alive of
//! `w` at some point in the run: a registration sent before a cleanup and delivered after it
//! (an outcome the worker never learned) lands on a keep-alive the cleanup deleted, and a store
//! roll-back may lose a keep-alive the registration followed. Both are races of the blind set,
//! not the order this rule is about.
//!
//! Not judged (tried, and left): a registration deleted while its keep-alive is live (#28, the
//! worker deleting its registration before its keep-alive). Unmutated keel does it in two races
//! of its own: a graceful deregistration whose compare-and-delete of the keep-alive is refused
//! (a beat of unknown outcome landed) goes on to delete the registration, and a cleanup's
//! deletion of a registration can follow the worker's re-registration after its keep-alive was
//! deleted (pool seeds 61, 268, poolfeed 86, poolloss 44 of 0..300). Both leave a keep-alive
//! the sweeps clean as a worker's with no registration.

use std::collections::BTreeSet;
use std::sync::Mutex;

use keel::pool::decode;
use keel::store::{MapWrite, MemoryStore, Store, StoreResult};

use crate::check::Violation;
use crate::history::{Event, History, ServerEv, Who};

/// The workers whose keep-alive the store applied at some point in the run, per keep-alive map.
#[derive(Default)]
pub struct KeptAlive(Mutex<BTreeSet<(String, String)>>);

impl KeptAlive {
    /// A write to keep-alive `key` of `map` applied, leaving `value`.
    pub fn written(&self, map: &str, key: &str, value: Option<&str>) {
        if value.is_some_and(|v| decode::keepalive(v).is_some()) {
            self.0.lock().unwrap_or_else(|p| p.into_inner()).insert((map.to_owned(), key.to_owned()));
        }
    }

    fn ever(&self, map: &str, key: &str) -> bool {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).contains(&(map.to_owned(), key.to_owned()))
    }
}

/// A registration about to apply, with what P49 needs from before it.
pub struct PairJudge {
    worker: String,
    keepalive_known: bool,
}

impl PairJudge {
    /// Read what P49 needs before `write` to `key` of `map` applies (nothing unless `map` is a
    /// pool's workers map and the write sets `key`).
    pub async fn write(
        store: &MemoryStore,
        kept: &KeptAlive,
        (map, key): (&str, &str),
        write: &MapWrite,
    ) -> StoreResult<Option<Self>> {
        let Some(pool) = map.strip_prefix("keel:pool:").and_then(|m| m.strip_suffix(":workers")) else {
            return Ok(None);
        };
        if !matches!(write, MapWrite::Set(_)) {
            return Ok(None);
        }
        let keepalive = format!("keel:pool:{pool}:keepalive");
        let held = store.map_get(&keepalive, key).await?.0;
        Ok(Some(PairJudge { worker: key.to_owned(), keepalive_known: held.is_some() || kept.ever(&keepalive, key) }))
    }

    /// The registration applied (or not): record it if the store never had the worker's keep-alive.
    pub fn applied(self, applied: bool, history: &History, by: Who) {
        if applied && !self.keepalive_known {
            history.record(Who::Store, ServerEv::RegisteredWithoutKeepalive { worker: self.worker, by });
        }
    }
}

/// P49 over the run's events: the store node's record of each breach.
pub fn check(events: &[Event]) -> Vec<Violation> {
    let mut v = Vec::new();
    for e in events {
        let Some(ServerEv::RegisteredWithoutKeepalive { worker, by }) = e.server() else { continue };
        let why = format!(
            "{by} registered worker {worker} before the store ever had a keep-alive of it: a sweep takes it for dead"
        );
        if v.len() < 20 {
            v.push(Violation::new("P49", e.t_us, why));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::test_history::at;

    /// Each registration the store node records as made before any keep-alive is reported at
    /// its instant.
    #[test]
    fn a_registration_before_any_keepalive_fires_p49() {
        let by = Who::Node(0);
        let events = [at(10, Who::Store, ServerEv::RegisteredWithoutKeepalive { worker: "w".into(), by })];
        let v = check(&events);
        assert_eq!(v.iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>(), [("P49", 10_000)]);
        assert_eq!(check(&[]), []);
    }

    /// The store's memory: a keep-alive value (not the dead marker, not a deletion) makes the
    /// worker known for the rest of the run.
    #[test]
    fn a_worker_is_known_once_its_keepalive_applied() {
        let kept = KeptAlive::default();
        kept.written("ka", "w", Some(decode::DEAD_MARKER));
        kept.written("ka", "w", None);
        assert!(!kept.ever("ka", "w"));
        kept.written("ka", "w", Some("1000|1500"));
        kept.written("ka", "w", None);
        assert!(kept.ever("ka", "w") && !kept.ever("ka", "v"));
    }
}
