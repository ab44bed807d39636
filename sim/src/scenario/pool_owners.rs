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

use std::collections::BTreeMap;

use keel::MemoryStore;
use keel::observe::{MoveKind, PoolEvent};
use keel::store::{Expect, MapWrite, Store};

use crate::check::Violation;
use crate::history::{Event, History, ServerEv, Who, plain};

/// Violations of P9, of P5 at the instant and of P11.
pub fn check(events: &[Event]) -> Vec<Violation> {
    let mut v = cleanups_move_own_jobs(events);
    v.extend(pending_removals(events));
    v.extend(stale_rejections(events));
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

/// The store node's record of refused transactions on a pool's job map, for P11: each guard of
/// a refused transaction on a job's record (`applied`: per transaction, in order).
pub fn refused<'a>(
    map: &str,
    guards: impl Iterator<Item = &'a [(String, Expect)]>,
    applied: &[bool],
    history: &History,
    by: Who,
) {
    if !is_job_map(map) {
        return;
    }
    for (guards, _) in guards.zip(applied).filter(|(_, a)| !**a) {
        for (k, g) in guards {
            if let (Some(job), Expect::Value(record)) = (k.strip_prefix("j/"), g) {
                history.record(Who::Store, ServerEv::JobGuardRefused { job: job.into(), record: record.clone(), by });
            }
        }
    }
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

/// P5 at the instant: the store node's record of each unguarded pending-entry removal.
fn pending_removals(events: &[Event]) -> Vec<Violation> {
    let mut v = Vec::new();
    for e in events {
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
fn record_owner(v: &str) -> Option<(&str, &str)> {
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
    let (record, pending) = (format!("j/{job}"), format!("p/{job}"));
    let owner = pending_owner(entry);
    guards.iter().any(|(k, g)| match g {
        Expect::Value(v) if *k == record => owner.is_some() && record_owner(v) == owner,
        Expect::Value(v) if *k == pending => v == entry,
        _ => false,
    })
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
        let mut before = BTreeMap::new();
        for (_, writes) in txns.clone() {
            for (k, _) in writes.iter().filter(|(k, v)| v.is_none() && k.starts_with("p/")) {
                // In place and at once: nothing runs between this read and the request's apply.
                let value = store.map_get(map, k).await.ok()?.0;
                before.insert(k.clone(), value);
            }
        }
        let txns = txns.map(|(g, w)| (g.to_vec(), w.to_vec())).collect();
        Some(RemovalJudge { txns, before })
    }

    /// The request applied (`applied`: per transaction): record each removal of a pending entry
    /// that no guard of its transaction fenced.
    pub fn applied(mut self, applied: &[bool], history: &History, by: Who) {
        for ((guards, writes), _) in self.txns.iter().zip(applied).filter(|(_, a)| **a) {
            for (k, new) in writes {
                let Some(current) = self.before.get_mut(k) else { continue };
                if let (None, Some(entry)) = (new, current.as_deref()) {
                    let job = &k[2..];
                    if !fences(job, entry, guards) {
                        let guards = guards.iter().map(|(k, g)| format!("{k}={g:?}")).collect::<Vec<_>>().join(", ");
                        let ev = ServerEv::PendingRemovedUnguarded { job: job.into(), entry: entry.into(), guards, by };
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
