//! P28: a pending dispatch is due the ack grace after its decision, judged at each write.
//!
//! A pool node announces its ack grace when it starts (`node_started`: `ack_grace_us`). Each
//! dispatch, re-dispatch, requeue or hand-back to a live worker writes a pending entry its worker
//! must acknowledge by `deadline_ms` (store time), and says so (`pending_written`, with `now_ms`,
//! the store time of the decision). The deadline is exactly the ack grace after it: one counted
//! with another duration (MC112: the worker TTL) leaves a dispatch that never reached its worker
//! waiting that much longer before a sweep re-dispatches it, which no rule of the sweep's side
//! sees (P5 judges re-dispatches that come too early). A node's crash or restart forgets its
//! grace until it announces it again.
//!
//! And a `pending_written` says what the store applied: it comes at the same instant as the
//! decision it belongs to (`dispatched` or `moved` of the same job, attempt and worker, emitted
//! once the transaction applied), before any other such event of the node. One said before
//! the transaction (MC122) reports entries a refused dispatch never wrote.
//!
//! P112 is the other direction: each `dispatched` or `moved` to a worker (not to the queue) comes
//! right after the `pending_written` of its own entry. Without it P28 judges nothing: an
//! assignment that says no entry (MC465, hunt 48 A's survivor 780) passes every deadline rule
//! while its worker's acknowledgement is owed by a time no event names.

use std::collections::BTreeMap;

use keel::observe::PoolEvent;

use crate::{Entry, Fact, Violation, plain};

/// P28 over keel's pool events: see the module's doc. The first 20 violations.
pub fn pending_deadlines_keep_the_ack_grace<E: Entry>(events: &[E]) -> Vec<Violation> {
    let mut grace_ms: BTreeMap<(E::Node, &str), u64> = BTreeMap::new();
    // node → the pending entry it said it wrote and whose decision has not come yet: (job, attempt, worker, t)
    let mut said: BTreeMap<E::Node, (&str, u64, &str, u64)> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let node = e.node();
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            grace_ms.retain(|k, _| &k.0 != node);
            continue;
        }
        let Some(keel::observe::Event::Pool(p)) = e.keel() else { continue };
        let decision = match p {
            PoolEvent::Dispatched { job, worker, attempt, .. } | PoolEvent::Moved { job, worker, attempt, .. } => {
                Some((plain(job), *attempt, plain(worker)))
            }
            _ => None,
        };
        let written = match p {
            PoolEvent::PendingWritten { job, attempt, worker, .. } => Some((plain(job), *attempt, plain(worker))),
            _ => None,
        };
        if decision.is_some() || written.is_some() {
            let prior = said.remove(node);
            // P112: an assignment to a worker announced no entry of its own at its instant.
            if let Some(d @ (job, attempt, worker)) = decision
                && !worker.is_empty()
                && prior.map(|(j, a, w, t)| ((j, a, w), t)) != Some((d, e.t_us()))
                && v.len() < 20
            {
                v.push(Violation::new(
                    "P112",
                    e.t_us(),
                    format!("{node}: {job} (attempt {attempt}) assigned to {worker} with no pending entry said at that instant: nothing reports what its worker must acknowledge, or by when"),
                ));
            }
            if let Some((job, attempt, worker, t)) = prior
                && (decision != Some((job, attempt, worker)) || t != e.t_us())
                && v.len() < 20
            {
                v.push(Violation::new(
                    "P28",
                    e.t_us(),
                    format!("{node}: {job} (attempt {attempt}) said pending for {worker} at {:.6}s with no dispatch or move of it at that instant: an entry the store may never have applied", t as f64 / 1e6),
                ));
            }
            if let Some((job, attempt, worker)) = written {
                said.insert(node.clone(), (job, attempt, worker, e.t_us()));
            }
        }
        match p {
            PoolEvent::NodeStarted { pool, ack_grace_us, .. } => {
                grace_ms.insert((node.clone(), plain(pool)), ack_grace_us / 1000);
            }
            PoolEvent::PendingWritten { job, attempt, worker, now_ms, deadline_ms } => {
                // A node runs one pool in keel's scenarios; with several, any of their graces.
                let mut graces = grace_ms.iter().filter(|(k, _)| &k.0 == node).map(|(_, g)| *g).peekable();
                if graces.peek().is_none() || graces.any(|g| now_ms.saturating_add(g) == *deadline_ms) {
                    continue;
                }
                if v.len() < 20 {
                    v.push(Violation::new(
                        "P28",
                        e.t_us(),
                        format!(
                            "{node}: {job} (attempt {attempt}) pending for {worker} until {deadline_ms}, {} ms after its decision at {now_ms}: not its pool's ack grace",
                            deadline_ms.saturating_sub(*now_ms)
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use keel::observe::Event;

    use super::*;
    use crate::test_entry::E as Ev;

    fn at(t_ms: u64, e: PoolEvent<'_>) -> Ev {
        Ev(t_ms * 1000, "n1", Some(Event::Pool(e.to_static())), None)
    }

    fn started(t_ms: u64) -> Ev {
        at(
            t_ms,
            PoolEvent::NodeStarted {
                pool: "p".into(),
                node: "n1".into(),
                ack_grace_us: 500_000,
                sweep_interval_us: 100_000,
                cleanup_lock_ttl_us: 3_000_000,
                op_timeout_us: 1,
                dedup_window_us: 600_000_000,
                drift_margin_us: 150_000,
            },
        )
    }

    fn written(t_ms: u64, now_ms: u64, deadline_ms: u64) -> Ev {
        at(t_ms, PoolEvent::PendingWritten { job: "j".into(), attempt: 1, worker: "w".into(), now_ms, deadline_ms })
    }

    /// The grace after the decision passes; a TTL after it (MC112) is P28 at the write; before
    /// the node announced its grace, or after its crash, nothing is judged.
    #[test]
    fn a_pending_deadline_off_the_ack_grace_fires_p28() {
        assert!(pending_deadlines_keep_the_ack_grace(&[started(0), written(5, 1_000, 1_500)]).is_empty());
        let v = pending_deadlines_keep_the_ack_grace(&[started(0), written(5, 1_000, 2_500)]);
        assert_eq!(crate::test_entry::at_ms(&v), [("P28", 5)], "{v:?}");
        assert!(v[0].detail.contains("1500 ms after its decision at 1000"), "{}", v[0].detail);
        assert!(pending_deadlines_keep_the_ack_grace(&[written(5, 1_000, 2_500)]).is_empty());
        let crash = Ev(3000, "n1", None, Some(Fact::NodeCrash));
        assert!(pending_deadlines_keep_the_ack_grace(&[started(0), crash, written(5, 1_000, 2_500)]).is_empty());
    }

    /// A `pending_written` comes at the instant of its dispatch or move; one said before the
    /// transaction (MC122), or one with no decision of its own, is P28 at the node's next one.
    #[test]
    fn a_pending_entry_said_apart_from_its_decision_fires_p28() {
        let dispatched = |t_ms: u64| {
            at(t_ms, PoolEvent::Dispatched { job: "j".into(), worker: "w".into(), attempt: 1, now_ms: 1_000 })
        };
        let judge = |h: &[Ev]| crate::test_entry::at_ms(&pending_deadlines_keep_the_ack_grace(h));
        assert_eq!(judge(&[started(0), written(5, 1_000, 1_500), dispatched(5)]), []);
        assert_eq!(judge(&[started(0), written(5, 1_000, 1_500), dispatched(7)]), [("P112", 7), ("P28", 7)]);
        assert_eq!(judge(&[started(0), written(5, 1_000, 1_500), written(9, 1_000, 1_500)]), [("P28", 9)]);
    }

    /// An assignment to a worker with no entry said at its instant (MC465) is P112; one to the
    /// queue (no worker) owes none; one whose entry names another attempt is P112 and P28.
    #[test]
    fn an_assignment_without_its_pending_entry_fires_p112() {
        let judge = |h: &[Ev]| crate::test_entry::at_ms(&pending_deadlines_keep_the_ack_grace(h));
        let dispatched = |t_ms: u64, worker: &'static str, attempt: u64| {
            at(t_ms, PoolEvent::Dispatched { job: "j".into(), worker: worker.into(), attempt, now_ms: 1_000 })
        };
        assert_eq!(judge(&[started(0), dispatched(5, "w", 1)]), [("P112", 5)]);
        assert_eq!(judge(&[started(0), dispatched(5, "", 1)]), []);
        assert_eq!(judge(&[started(0), written(5, 1_000, 1_500), dispatched(5, "w", 1)]), []);
        assert_eq!(judge(&[started(0), written(5, 1_000, 1_500), dispatched(5, "w", 2)]), [("P112", 5), ("P28", 5)]);
        let moved = at(
            9,
            PoolEvent::Moved {
                kind: keel::observe::MoveKind::Requeued,
                job: "j".into(),
                from: "v".into(),
                worker: "w".into(),
                attempt: 1,
                now_ms: 1_000,
                cleaned: "v".into(),
            },
        );
        assert_eq!(judge(&[started(0), written(5, 1_000, 1_500), dispatched(5, "w", 1), moved]), [("P112", 9)]);
    }
}
