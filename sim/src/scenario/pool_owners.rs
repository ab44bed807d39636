//! Rules on who may take a pool job off its owner, judged at the instant (blind-spot hunt of the
//! pool, 2026-12-01, #3 and #8: both bugs were reached on most seeds and caught by nothing, since
//! their harm shows only as a hand-off or as an absence).
//!
//! **P9**: a cleanup of worker w moves only records naming w. A cleanup's move is guarded by the
//! record it read, so the `from` of its `Moved` event is the owner the store held when the move
//! applied, and `cleaned` is the worker being cleaned: they must be the same. A cleanup that
//! moves a record naming another worker takes a job off a live owner (handed back or
//! re-dispatched meanwhile) or out of the queue; the owner's run is fenced by the record change,
//! so P2 sees only a hand-off (MC23).
//!
//! **P5 at the instant**: the pending entry `p/{job}` of attempt a for worker w is removed only by
//! a write guarded by the record of that attempt and worker (the ack, a move, a hand-back) or by
//! the entry itself (the sweep of a stale or expired entry). Any other removal can take the entry
//! of a newer attempt, whose ack grace is then never enforced: P5's audit judges the entries it
//! finds, and this one is gone (MC24: a worker that deletes the entry before its guarded ack).
//! The store node judges each removal as it applies it ([`RemovalJudge`], called from
//! `net::apply`) and records the unguarded ones; [`check`] reports them.
//!
//! **P11**: a worker is told its ack or completion of attempt a is stale (`stale_rejected`) only
//! when the store refused it: each `stale_rejected` of (job, worker, attempt) follows a refusal at
//! the store of a transaction guarded on the job's record naming that attempt and worker
//! ([`refused`], called from `net::apply`, records each; the worker's id names its node, and the
//! store's idea of a request's node is not used: a request sent just after a reconnect may be
//! applied before the connection's hello, under `world`).
//! An unknown outcome (a timeout, a lost reply) taken for a refusal drops a run whose attempt is
//! current, or gives up a completion that may not have landed, and the job runs again; P1 and
//! P2 see nothing (blind-spot hunt, round 4: the group commit that answers a timed-out batch
//! "refused", reached on 45 of pool seeds 0..50, caught by nothing; mutant MC36).
//!
//! **P86**: a job map never holds a job's record beside its tombstone
//! ([`records_apart_from_tombstones`]); the store node also records each tombstone deleted, with
//! its time, for P84 (`pool_cleanup::tombstones_kept_their_window`).

use std::collections::BTreeMap;

use keel::MemoryStore;
use keel::observe::{MoveKind, PoolEvent, StaleOp};
use keel::store::{Expect, MapWrite, Store};

use crate::check::Violation;
use crate::history::{Event, History, ServerEv, Who, plain};

/// Violations of P9, of P5 at the instant, of P11, of P14 and of P86.
pub fn check(events: &[Event]) -> Vec<Violation> {
    let mut v = cleanups_move_own_jobs(events);
    v.extend(pending_removals(events));
    v.extend(owners_get_pending_entries(events));
    v.extend(stale_rejections(events));
    v.extend(landed_completions_reported(events));
    v.extend(records_apart_from_tombstones(events));
    v.truncate(20);
    v
}

/// P11: every `stale_rejected` follows a refusal at the store of a transaction guarded on that
/// attempt's record (each refusal accounts for one rejection).
fn stale_rejections(events: &[Event]) -> Vec<Violation> {
    let mut refusals: BTreeMap<(&str, String, &str), usize> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        if let Some(ServerEv::JobGuardRefused { job, record, .. }) = e.server()
            && let Some((attempt, worker)) = record_owner(record)
        {
            *refusals.entry((job.as_str(), attempt.to_owned(), worker)).or_default() += 1;
            continue;
        }
        let Some(PoolEvent::StaleRejected { op, job, worker, attempt }) = e.pool() else { continue };
        match refusals.get_mut(&(plain(job), attempt.to_string(), plain(worker))) {
            Some(n) if *n > 0 => *n -= 1,
            _ => v.push(Violation::new(
                "P11",
                e.t_us,
                format!(
                    "{job}: {worker} ({}) was told its {} of attempt {attempt} is stale, but the store refused no transaction guarded by that attempt's record",
                    e.node,
                    op.as_str()
                ),
            )),
        }
    }
    v
}

/// The store node's record of refused transactions on a pool's job map, for P11 and P14: each
/// guard of a refused transaction on a job's record (`applied`: per transaction, in order), and
/// each refused completion whose attempt's own tombstone the store already holds (read after
/// the request applied: nothing runs between the apply and this read).
pub async fn refused<'a>(
    store: &MemoryStore,
    map: &str,
    txns: impl Iterator<Item = (&'a [(String, Expect)], &'a [(String, Option<String>)])>,
    applied: &[bool],
    history: &History,
    by: Who,
) {
    if !is_job_map(map) {
        return;
    }
    for ((guards, writes), _) in txns.zip(applied).filter(|(_, a)| !**a) {
        for (k, g) in guards {
            let (Some(job), Expect::Value(record)) = (k.strip_prefix("j/"), g) else { continue };
            history.record(Who::Store, ServerEv::JobGuardRefused { job: job.into(), record: record.clone(), by });
            let done = format!("d/{job}");
            if !writes.iter().any(|(w, v)| *w == done && v.is_some()) {
                continue; // not a completion
            }
            let Ok((Some(held), _)) = store.map_get(map, &done).await else { continue };
            if let Some((attempt, worker)) = record_owner(record)
                && record_owner(&held) == Some((attempt, worker))
            {
                let attempt = attempt.parse().unwrap_or(u64::MAX);
                let ev = ServerEv::CompletionHeld { job: job.into(), attempt, worker: worker.into(), by };
                history.record(Who::Store, ev);
            }
        }
    }
}

/// P14: a worker is never told its completion of attempt a is stale when the store holds that
/// attempt's own completion: an earlier try landed and its reply was lost. Told "stale", the
/// worker drops the completion's `completed` event and the node's completer never publishes it,
/// while the store says the job is done (blind-spot hunt, round 5: a retry that re-stamps its
/// tombstone no longer recognises its own; P11 holds, since the store did refuse the retry).
/// A store crash that loses data forgets what the store held.
fn landed_completions_reported(events: &[Event]) -> Vec<Violation> {
    let mut held: BTreeMap<(&str, u64, &str), u64> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        if let Some(ServerEv::CompletionHeld { job, attempt, worker, .. }) = e.server() {
            held.entry((job.as_str(), *attempt, worker.as_str())).or_insert(e.t_us);
            continue;
        }
        // A crash that loses data rolls the store back: what it held may be gone (poolloss
        // seed 335 with MC100's corpus plan: a completion held at 27.50 s, lost at 27.59 s, its
        // retry rightly told stale at 27.97 s).
        if let Some(crate::history::WorldEv::StoreCrash { data_loss: true }) = e.world() {
            held.clear();
            continue;
        }
        // A tombstone past its dedup window deleted: what the store held of that key is gone,
        // and its next life's attempts start from 1 again.
        if let Some(ServerEv::TombstoneDeleted { job, .. }) = e.server() {
            held.retain(|(j, _, _), _| *j != job.as_str());
            continue;
        }
        let Some(PoolEvent::StaleRejected { op: StaleOp::Complete, job, worker, attempt }) = e.pool() else { continue };
        if let Some(at) = held.remove(&(plain(job), *attempt, plain(worker))) {
            v.push(Violation::new(
                "P14",
                e.t_us,
                format!(
                    "{job}: {worker} ({}) was told its completion of attempt {attempt} is stale, but the store has held that attempt's own completion since {:.3}s (an earlier try landed): its completed event is lost",
                    e.node,
                    at as f64 / 1e6
                ),
            ));
        }
    }
    v
}

/// P86: a job map never holds a job's record beside its tombstone. A completion replaces the
/// record by the tombstone in one transaction, and a dispatch adds a record only where neither
/// is (a key stays taken for its dedup window). Both at once is a completed key added again
/// inside its window (its job runs twice, and its old tombstone answers the new life's waiters)
/// or a completion that left its job to be run again. The store node checks each job a
/// transaction writes, after it applies (`record_beside_tombstone`).
fn records_apart_from_tombstones(events: &[Event]) -> Vec<Violation> {
    let mut v = Vec::new();
    for e in events {
        let Some(ServerEv::RecordBesideTombstone { job, record, tombstone, by }) = e.server() else { continue };
        v.push(Violation::new(
            "P86",
            e.t_us,
            format!("{job}: after a transaction by {by} the job map holds both its record {record:?} and its tombstone {tombstone:?}: a completed key taken again inside its dedup window, or a completion that kept its record"),
        ));
    }
    v
}

/// P9: every cleanup move took the job off the cleaned worker.
fn cleanups_move_own_jobs(events: &[Event]) -> Vec<Violation> {
    let mut v = Vec::new();
    for e in events {
        let Some(PoolEvent::Moved { kind, job, from, worker, attempt, cleaned, .. }) = e.pool() else { continue };
        if !matches!(kind, MoveKind::Requeued | MoveKind::OrphanRequeued) || plain(from) == plain(cleaned) {
            continue;
        }
        let off = if plain(from).is_empty() { "out of the queue".to_owned() } else { format!("off {from}") };
        v.push(Violation::new(
            "P9",
            e.t_us,
            format!(
                "{job}: the cleanup of {cleaned} moved it {off}, a record not naming {cleaned} (attempt {attempt}, to {worker:?})"
            ),
        ));
    }
    v
}

/// The store node's record of each applied transaction on a pool's job map: one pass over its
/// writes records both facts the pool rules read at the instant.
///
/// - **P32** (`owned_without_pending`): a write that gives a job's record an owner carries, in
///   the same transaction, the pending entry of that owner's attempt (dispatch, re-dispatch,
///   requeue, assignment, hand-back all do). Without it nothing holds the new owner to its ack
///   grace (blind-spot hunt, round 15, #7: a move that deleted the pending entry yet reported it
///   written).
/// - **`completion_landed`**: a write of a job's tombstone, seen or not by the worker that sent
///   it (pool seed 1191: a completion landed on its first try and every reply was lost).
pub fn applied_job_writes<'a>(
    map: &str,
    txns: impl Iterator<Item = &'a [(String, Option<String>)]>,
    applied: &[bool],
    history: &History,
    by: Who,
) {
    if !is_job_map(map) {
        return;
    }
    for (writes, _) in txns.zip(applied).filter(|(_, a)| **a) {
        for (k, v) in writes {
            let Some(value) = v.as_deref() else { continue };
            if let Some(job) = k.strip_prefix("j/") {
                owner_paired(job, value, writes, history, by);
            } else if let Some(job) = k.strip_prefix("d/") {
                completion_landed(job, value, history, by);
            }
        }
    }
}

/// The tombstones (`d/{job}`) the transactions `txns` delete, each with its value read before
/// the request applies (in place and at once: nothing runs between this read and the apply):
/// `(txn index, job, tombstone)`. Empty for any other map.
pub async fn tombstones_deleting<'a>(
    store: &MemoryStore,
    map: &str,
    txns: impl Iterator<Item = &'a [(String, Option<String>)]>,
) -> Vec<(usize, String, String)> {
    let mut out = Vec::new();
    if !is_job_map(map) {
        return out;
    }
    for (i, writes) in txns.enumerate() {
        for (k, _) in writes.iter().filter(|(_, v)| v.is_none()) {
            let Some(job) = k.strip_prefix("d/") else { continue };
            if let Ok((Some(tomb), _)) = store.map_get(map, k).await {
                out.push((i, job.to_owned(), tomb));
            }
        }
    }
    out
}

/// After the transactions `txns` applied (`applied`: per transaction, in order): each
/// tombstone of `deleting` ([`tombstones_deleting`]) its transaction removed, with the
/// store's time (P84), and each job whose record or tombstone a transaction wrote that now
/// holds both (P86). Read at once after the apply: nothing runs between.
pub async fn tombstone_writes<'a>(
    store: &MemoryStore,
    map: &str,
    txns: impl Iterator<Item = &'a [(String, Option<String>)]>,
    applied: &[bool],
    deleting: Vec<(usize, String, String)>,
    history: &History,
    by: Who,
) -> Result<(), keel::StoreError> {
    if !is_job_map(map) {
        return Ok(());
    }
    let gone: Vec<_> = deleting.into_iter().filter(|(i, _, _)| applied.get(*i) == Some(&true)).collect();
    if !gone.is_empty() {
        let now_ms = store.time_ms().await?;
        for (_, job, tomb) in gone {
            let completed_ms = keel::pool::decode::tombstone(&tomb).map_or(0, |(_, ms)| ms);
            history.record(Who::Store, ServerEv::TombstoneDeleted { job, completed_ms, now_ms, by });
        }
    }
    for (writes, _) in txns.zip(applied).filter(|(_, a)| **a) {
        for (k, _) in writes.iter().filter(|(_, v)| v.is_some()) {
            let Some(job) = k.strip_prefix("j/").or_else(|| k.strip_prefix("d/")) else { continue };
            let held = |key: String| async move { store.map_get(map, &key).await.ok().and_then(|(v, _)| v) };
            let (Some(record), Some(tombstone)) = (held(format!("j/{job}")).await, held(format!("d/{job}")).await)
            else {
                continue;
            };
            history.record(Who::Store, ServerEv::RecordBesideTombstone { job: job.into(), record, tombstone, by });
        }
    }
    Ok(())
}

/// P32's half of [`applied_job_writes`]: a record written with an owner and no pending entry.
fn owner_paired(job: &str, record: &str, writes: &[(String, Option<String>)], history: &History, by: Who) {
    let Some(owner) = record_owner(record).filter(|(_, w)| !w.is_empty()) else { return };
    let pending = format!("p/{job}");
    let paired = writes.iter().any(|(pk, pv)| *pk == pending && pv.as_deref().and_then(pending_owner) == Some(owner));
    if !paired {
        history.record(Who::Store, ServerEv::OwnedWithoutPending { job: job.into(), record: record.into(), by });
    }
}

/// The tombstone half of [`applied_job_writes`].
fn completion_landed(job: &str, tomb: &str, history: &History, by: Who) {
    let Some((attempt, worker)) = record_owner(tomb) else { return };
    let attempt = attempt.parse().unwrap_or(u64::MAX);
    let completed_ms = keel::pool::decode::tombstone(tomb).map_or(0, |(_, ms)| ms);
    let ev = ServerEv::CompletionLanded { job: job.into(), attempt, worker: worker.into(), completed_ms, by };
    history.record(Who::Store, ev);
}

/// P32 at the instant: the store node's record of each owner given without its pending entry.
fn owners_get_pending_entries(events: &[Event]) -> Vec<Violation> {
    let mut v = Vec::new();
    for e in events {
        let Some(ServerEv::OwnedWithoutPending { job, record, by }) = e.server() else { continue };
        v.push(Violation::new(
            "P32",
            e.t_us,
            format!("{job}: {by} gave its record {record:?} an owner without that attempt's pending entry: no ack grace holds the owner"),
        ));
    }
    v
}

/// P5 at the instant: the store node's record of each unguarded pending-entry removal; P113:
/// of each live one removed as if stale.
fn pending_removals(events: &[Event]) -> Vec<Violation> {
    let mut v = Vec::new();
    for e in events {
        if let Some(ServerEv::PendingRemovedLive { job, entry, by }) = e.server() {
            v.push(Violation::new(
                "P113",
                e.t_us,
                format!(
                    "{job}: {by} removed the pending entry {entry:?}, fenced by that value alone, while the job's record named its attempt and worker: a live dispatch's ack deadline dropped, so one that never reached its worker is never re-dispatched"
                ),
            ));
            continue;
        }
        let Some(ServerEv::PendingRemovedUnguarded { job, entry, guards, by }) = e.server() else { continue };
        let guards = if guards.is_empty() { "no guard" } else { guards.as_str() };
        v.push(Violation::new(
            "P5",
            e.t_us,
            format!(
                "{job}: {by} removed the pending entry {entry:?} with {guards}, none naming its attempt and worker: that attempt's ack grace is no longer enforced"
            ),
        ));
    }
    v
}

/// `(attempt, worker)` of a job record (`attempt|owner|payload`).
pub(super) fn record_owner(v: &str) -> Option<(&str, &str)> {
    let mut it = v.splitn(3, '|');
    Some((it.next()?, it.next()?))
}

/// `(attempt, worker)` of a pending entry (`attempt|worker|deadline_ms`).
fn pending_owner(v: &str) -> Option<(&str, &str)> {
    let (first, last) = (v.find('|')?, v.rfind('|')?);
    (first < last).then(|| (&v[..first], &v[first + 1..last]))
}

/// Whether `guards` fence the removal of `job`'s pending entry `entry`: a guard on the job's
/// record naming the entry's attempt and worker, or on the entry itself.
fn fences(job: &str, entry: &str, guards: &[(String, Expect)]) -> bool {
    let pending = format!("p/{job}");
    record_fences(job, entry, guards)
        || guards.iter().any(|(k, g)| matches!(g, Expect::Value(v) if *k == pending && v == entry))
}

/// Whether a guard of `guards` on `job`'s record names the attempt and worker of its pending
/// entry `entry`: a removal the entry's own worker or a move of that attempt makes.
fn record_fences(job: &str, entry: &str, guards: &[(String, Expect)]) -> bool {
    let record = format!("j/{job}");
    let owner = pending_owner(entry);
    guards
        .iter()
        .any(|(k, g)| matches!(g, Expect::Value(v) if *k == record && owner.is_some() && record_owner(v) == owner))
}

/// Whether `map` is a pool's job map (`keel:pool:{name}:jobs`).
fn is_job_map(map: &str) -> bool {
    map.starts_with("keel:pool:") && map.ends_with(":jobs")
}

/// One transaction as the judge sees it: guards and writes (a map write is one transaction).
type Txn = (Vec<(String, Expect)>, Vec<(String, Option<String>)>);

/// The store node's judge of pending-entry removals in one request on a pool's job map: built
/// from the request before it is applied (reading the entries it may remove), told afterwards
/// which of its transactions applied. `None` where the request removes no pending entry.
pub struct RemovalJudge {
    txns: Vec<Txn>,
    /// The value of each pending key the request deletes, before it applies.
    before: BTreeMap<String, Option<String>>,
    /// The record of each job whose pending key the request deletes, before it applies (P113).
    records: BTreeMap<String, Option<String>>,
}

impl RemovalJudge {
    /// For a map write: a `Delete` (unguarded) or `CompareAndDelete` (guarded by the value) of
    /// a pending key.
    pub async fn write(store: &MemoryStore, map: &str, key: &str, write: &MapWrite) -> Option<RemovalJudge> {
        if !key.starts_with("p/") || !is_job_map(map) {
            return None; // most writes: keep-alive beats, locks
        }
        let guards = match write {
            MapWrite::Delete => Vec::new(),
            MapWrite::CompareAndDelete(v) => vec![(key.to_owned(), Expect::Value(v.clone()))],
            _ => return None,
        };
        Self::txns(store, map, std::iter::once((guards.as_slice(), &[(key.to_owned(), None)][..]))).await
    }

    /// For transactions (one, or a batch applied in order).
    pub async fn txns<'a>(
        store: &MemoryStore,
        map: &str,
        txns: impl Iterator<Item = (&'a [(String, Expect)], &'a [(String, Option<String>)])> + Clone,
    ) -> Option<RemovalJudge> {
        let removes = |w: &[(String, Option<String>)]| w.iter().any(|(k, v)| v.is_none() && k.starts_with("p/"));
        if !is_job_map(map) || !txns.clone().any(|(_, w)| removes(w)) {
            return None;
        }
        let (mut before, mut records) = (BTreeMap::new(), BTreeMap::new());
        for (_, writes) in txns.clone() {
            for (k, _) in writes.iter().filter(|(k, v)| v.is_none() && k.starts_with("p/")) {
                // In place and at once: nothing runs between these reads and the request's apply.
                let value = store.map_get(map, k).await.ok()?.0;
                before.insert(k.clone(), value);
                let record = format!("j/{}", &k[2..]);
                let value = store.map_get(map, &record).await.ok()?.0;
                records.insert(record, value);
            }
        }
        let txns = txns.map(|(g, w)| (g.to_vec(), w.to_vec())).collect();
        Some(RemovalJudge { txns, before, records })
    }

    /// The request applied (`applied`: per transaction): record each removal of a pending entry
    /// that no guard of its transaction fenced (P5), and each fenced by its own value alone while
    /// the job's record named its attempt and worker (P113).
    pub fn applied(mut self, applied: &[bool], history: &History, by: Who) {
        for ((guards, writes), _) in self.txns.iter().zip(applied).filter(|(_, a)| **a) {
            for (k, new) in writes {
                if let Some(record) = self.records.get_mut(k) {
                    *record = new.clone(); // a record this request wrote before a later removal
                    continue;
                }
                let Some(current) = self.before.get_mut(k) else { continue };
                if let (None, Some(entry)) = (new, current.as_deref()) {
                    let job = &k[2..];
                    if !fences(job, entry, guards) {
                        let guards = guards.iter().map(|(k, g)| format!("{k}={g:?}")).collect::<Vec<_>>().join(", ");
                        let ev = ServerEv::PendingRemovedUnguarded { job: job.into(), entry: entry.into(), guards, by };
                        history.record(Who::Store, ev);
                    } else if !record_fences(job, entry, guards)
                        && let Some(Some(record)) = self.records.get(&format!("j/{job}"))
                        && pending_owner(entry).is_some_and(|owner| record_owner(record) == Some(owner))
                    {
                        let ev = ServerEv::PendingRemovedLive { job: job.into(), entry: entry.into(), by };
                        history.record(Who::Store, ev);
                    }
                }
                *current = new.clone();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::test_history::pool;

    fn moved(kind: MoveKind, from: &str, cleaned: &str) -> Event {
        pool(
            100,
            PoolEvent::Moved {
                kind,
                job: "j".into(),
                from: from.into(),
                worker: "x".into(),
                attempt: 3,
                now_ms: 1_100,
                cleaned: cleaned.into(),
            },
        )
    }

    #[test]
    fn a_stale_rejection_the_store_never_made_fires_p11() {
        use crate::scenario::test_history::at;
        use keel::observe::StaleOp;
        let refused = |t, by, record: &str| {
            at(t, Who::Store, ServerEv::JobGuardRefused { job: "j".into(), record: record.into(), by })
        };
        let rejected =
            |t| pool(t, PoolEvent::StaleRejected { op: StaleOp::Ack, job: "j".into(), worker: "w".into(), attempt: 2 });
        assert!(check(&[refused(100, Who::Node(0), "2|w|x"), rejected(110)]).is_empty(), "refused, then told so");
        // An unknown outcome taken for a refusal (MC36): no refusal at the store.
        let v = check(&[rejected(110)]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!((v[0].invariant, v[0].t_us), ("P11", 110_000));
        assert!(v[0].detail.contains("w (n0) was told its ack of attempt 2 is stale"), "{}", v[0].detail);
        // One refusal accounts for one rejection; another attempt's or another worker's is
        // none; nor is one that comes after. (The request's node as the store saw it is not
        // judged: a request right after a reconnect may come before the connection's hello.)
        assert_eq!(check(&[refused(100, Who::Node(0), "2|w|x"), rejected(110), rejected(120)]).len(), 1);
        assert!(check(&[refused(100, Who::World, "2|w|x"), rejected(110)]).is_empty());
        assert_eq!(check(&[refused(100, Who::Node(0), "1|w|x"), rejected(110)]).len(), 1);
        assert_eq!(check(&[refused(100, Who::Node(0), "2|v|x"), rejected(110)]).len(), 1);
        assert_eq!(check(&[rejected(110), refused(120, Who::Node(0), "2|w|x")]).len(), 1);
    }

    /// P14 from the store's side: a refused completion is marked "held" only where the store
    /// holds that attempt's own tombstone; and a `stale_rejected` of that completion fires.
    #[test]
    fn a_landed_completion_reported_stale_fires_p14() {
        use keel::observe::StaleOp;
        madsim::runtime::Runtime::with_seed_and_config(1, madsim::Config::default()).block_on(async {
            let store = MemoryStore::new();
            let map = "keel:pool:sim:jobs";
            let put = |k: &str, v: &str| (k.to_owned(), Some(v.to_owned()));
            // Attempt 2 of w completed (the record deleted, its tombstone left).
            store.map_txn(map, &[], &[put("d/j", "2|w|500")]).await.unwrap();
            let history = History::default();
            let completion = |record: &str, tomb: &str| -> Txn {
                (vec![("j/j".into(), value(record))], vec![("j/j".into(), None), put("d/j", tomb)])
            };
            // The retry of that completion, with a tombstone stamped afresh (MC46); a stale
            // attempt's completion; another worker's; an ack (no tombstone written).
            let txns = [
                completion("2|w|x", "2|w|600"),
                completion("1|w|x", "1|w|600"),
                completion("2|v|x", "2|v|600"),
                (vec![("j/j".into(), value("2|w|x"))], vec![("p/j".into(), None)]),
            ];
            let each = txns.iter().map(|(g, w)| (&g[..], &w[..]));
            refused(&store, map, each, &[false; 4], &history, Who::Node(1)).await;
            let rejected = |t, attempt, worker: &str| {
                let ev =
                    PoolEvent::StaleRejected { op: StaleOp::Complete, job: "j".into(), worker: worker.into(), attempt };
                pool(t, ev)
            };
            let mut events = history.take();
            let held = events.iter().filter(|e| matches!(e.server(), Some(ServerEv::CompletionHeld { .. }))).count();
            assert_eq!(held, 1, "only attempt 2 of w is held: {events:?}");
            events.extend([rejected(200, 2, "w"), rejected(210, 1, "w"), rejected(220, 2, "v")]);
            let v = check(&events);
            assert_eq!(v.len(), 1, "{v:?}");
            assert_eq!((v[0].invariant, v[0].t_us), ("P14", 200_000));
            assert!(v[0].detail.contains("w (n0) was told its completion of attempt 2 is stale"), "{}", v[0].detail);
            // An ack told stale is P11's business, not P14's.
            let ack = pool(
                230,
                PoolEvent::StaleRejected { op: StaleOp::Ack, job: "j".into(), worker: "w".into(), attempt: 2 },
            );
            assert!(landed_completions_reported(&[events[0].clone(), ack]).is_empty());
        });
    }

    #[test]
    fn a_cleanup_that_moves_a_record_naming_another_worker_fires_p9() {
        let v = check(&[moved(MoveKind::Requeued, "live", "dead")]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!((v[0].invariant, v[0].t_us), ("P9", 100_000));
        assert!(
            v[0].detail.contains("the cleanup of dead moved it off live, a record not naming dead"),
            "{}",
            v[0].detail
        );
        let queued = check(&[moved(MoveKind::OrphanRequeued, "", "dead")]);
        assert!(queued[0].detail.contains("moved it out of the queue"), "{}", queued[0].detail);
        // Its own worker's records; moves that are not cleanups name no cleaned worker.
        assert!(check(&[moved(MoveKind::Requeued, "dead", "dead")]).is_empty());
        assert!(check(&[moved(MoveKind::OrphanRequeued, "gone", "gone")]).is_empty());
        for kind in [MoveKind::Redispatched, MoveKind::HandedBack, MoveKind::Assigned] {
            assert!(check(&[moved(kind, "w", "")]).is_empty(), "{kind}");
        }
    }

    fn value(v: &str) -> Expect {
        Expect::Value(v.to_owned())
    }

    #[test]
    fn a_pending_entry_is_fenced_by_its_own_attempts_record_or_by_itself() {
        let entry = "2|w|5000";
        // The ack and a move of attempt 2 of w; the sweep's guard on the entry itself.
        assert!(fences("j", entry, &[("j/j".into(), value("2|w|300"))]));
        assert!(fences("j", entry, &[("j/j".into(), value("2|w|300")), ("p/j".into(), value(entry))]));
        assert!(fences("j", entry, &[("p/j".into(), value(entry))]));
        // No guard; a record of another attempt or worker (a stale ack); another job's record;
        // another entry; absence guards.
        assert!(!fences("j", entry, &[]));
        assert!(!fences("j", entry, &[("j/j".into(), value("1|w|300"))]));
        assert!(!fences("j", entry, &[("j/j".into(), value("2|v|300"))]));
        assert!(!fences("j", entry, &[("j/k".into(), value("2|w|300"))]));
        assert!(!fences("j", entry, &[("p/j".into(), value("1|w|4000"))]));
        assert!(!fences("j", entry, &[("j/j".into(), Expect::Absent), ("p/j".into(), Expect::Absent)]));
        assert_eq!(pending_owner("12|n0.1.w2|99"), Some(("12", "n0.1.w2")));
        assert_eq!(pending_owner("12"), None);
        assert!(is_job_map("keel:pool:sim:jobs") && !is_job_map("keel:pool:sim:keepalive"));
    }

    /// P113: a removal fenced by the entry alone is a stale entry's (the sweep's): one whose
    /// job's record names the entry's attempt and worker, at the store as the removal applies, is
    /// a live entry dropped (MC466). A stale entry's removal, the ack's and a removal after the
    /// same batch moved the record on pass.
    #[test]
    fn a_live_pending_entry_removed_as_stale_fires_p113() {
        madsim::runtime::Runtime::with_seed_and_config(1, madsim::Config::default()).block_on(async {
            let store = MemoryStore::new();
            let map = "keel:pool:sim:jobs";
            let put = |k: &str, v: &str| (k.to_owned(), Some(v.to_owned()));
            store.map_txn(map, &[], &[put("j/j", "3|v|10"), put("p/j", "3|v|900")]).await.unwrap();
            store.map_txn(map, &[], &[put("j/k", "4|w|10"), put("p/k", "3|v|900")]).await.unwrap();
            let history = History::default();
            let by_itself =
                |job: &str| -> Txn { (vec![(format!("p/{job}"), value("3|v|900"))], vec![(format!("p/{job}"), None)]) };
            let ack: Txn =
                (vec![("j/j".into(), value("3|v|10")), ("p/j".into(), value("3|v|900"))], vec![("p/j".into(), None)]);
            for txn in [by_itself("j"), by_itself("k"), ack] {
                let judge = RemovalJudge::txns(&store, map, std::iter::once((&txn.0[..], &txn.1[..]))).await.unwrap();
                judge.applied(&[true], &history, Who::Node(1));
            }
            // A batch whose first transaction moves j's record on (attempt 4 of x): the removal
            // after it is of a stale entry.
            let batch: Vec<Txn> = vec![(vec![], vec![put("j/j", "4|x|10")]), by_itself("j")];
            let judge = RemovalJudge::txns(&store, map, batch.iter().map(|(g, w)| (&g[..], &w[..]))).await.unwrap();
            judge.applied(&[true, true], &history, Who::Node(2));
            let v = check(&history.take());
            assert_eq!(v.iter().map(|v| v.invariant).collect::<Vec<_>>(), ["P113"], "{v:?}");
            assert!(v[0].detail.contains("j: n1 removed the pending entry \"3|v|900\""), "{}", v[0].detail);
        });
    }

    /// The judge on a store: a removal recorded only where it removed an entry without a
    /// fence; a batch judged in order (an entry written earlier in the batch is what a later
    /// transaction removes).
    #[test]
    fn the_store_judge_records_unguarded_removals_of_an_entry() {
        madsim::runtime::Runtime::with_seed_and_config(1, madsim::Config::default()).block_on(async {
            let store = MemoryStore::new();
            let map = "keel:pool:sim:jobs";
            let put = |k: &str, v: &str| (k.to_owned(), Some(v.to_owned()));
            store.map_txn(map, &[], &[put("j/j", "3|v|10"), put("p/j", "3|v|900")]).await.unwrap();
            let history = History::default();
            // A stale attempt's unguarded delete: the entry of attempt 3 of v is gone.
            let judge = RemovalJudge::write(&store, map, "p/j", &MapWrite::Delete).await.unwrap();
            judge.applied(&[true], &history, Who::Node(1));
            // The ack of attempt 3 of v: fenced. A write that is not a removal: no judge.
            let ack: Txn = (vec![("j/j".into(), value("3|v|10"))], vec![("p/j".into(), None)]);
            let judge = RemovalJudge::txns(&store, map, std::iter::once((&ack.0[..], &ack.1[..]))).await.unwrap();
            judge.applied(&[true], &history, Who::Node(1));
            assert!(RemovalJudge::write(&store, map, "p/j", &MapWrite::Set("x".into())).await.is_none());
            assert!(RemovalJudge::write(&store, "keel:pool:sim:workers", "p/j", &MapWrite::Delete).await.is_none());
            // A batch: the first transaction (refused) would remove nothing fenced; the second
            // writes attempt 4's entry, the third (a stale ack of attempt 3) removes it.
            let batch: Vec<Txn> = vec![
                (vec![], vec![("p/j".into(), None)]),
                (vec![], vec![put("p/j", "4|w|950")]),
                (vec![("j/j".into(), value("3|v|10"))], vec![("p/j".into(), None)]),
            ];
            let judge = RemovalJudge::txns(&store, map, batch.iter().map(|(g, w)| (&g[..], &w[..]))).await.unwrap();
            judge.applied(&[false, true, true], &history, Who::Node(2));
            let v = check(&history.take());
            assert_eq!(v.len(), 2, "{v:?}");
            assert!(v.iter().all(|v| v.invariant == "P5"));
            assert!(v[0].detail.contains("n1 removed the pending entry \"3|v|900\" with no guard"), "{}", v[0].detail);
            assert!(v[1].detail.contains("\"4|w|950\" with j/j=Value(\"3|v|10\")"), "{}", v[1].detail);
        });
    }
}
