//! V20: a completer run's close ends every producer's wait for room, judged at the instant the
//! bound passes.
//!
//! A producer whose completion finds the run's backlog full waits for room (`room_wait_begun`)
//! until a write makes some, the run closes, or its caller gives the completion up
//! (`room_wait_ended`: `accepted`, `closed`, `cancelled`). Once the run's intake closes (its
//! event channel closes at the same instant, `events_closed`) nothing will make room again, so
//! every producer still waiting must return at once, refused: within the clocks' late slack of
//! running time after the close (frozen time not counted), and with `closed`, never `accepted`
//! (nothing is accepted after the close: nor reported `accepted` by the producer's call), and no
//! producer begins a wait in a closed run, and no wait ends `closed` in a run still open. A close
//! that does not wake them (blind-spot hunt round 14, #4, MC115) leaves a producer parked on a
//! full backlog forever: a worker that never finishes its last job and never hands it back. The
//! wait is judged at the first event after its deadline (or at the history's end). A node's
//! start or crash forgets its runs.
//!
//! Room works the same way: each write announces the room it made (`room_made`: `room`
//! completions fit now) and wakes every producer waiting. Within the same slack, either the
//! room is taken (`room` acceptances in the run, by the waiters or anyone else) or none of the
//! producers waiting when it was made is still waiting. A write that wakes one waiter of
//! several (`notify_one`: blind-spot hunt round 8, #12 and round 22, #50, MC208) leaves the
//! others parked beside free room until the next write.

use std::collections::BTreeMap;

use keel::observe::CompleterEvent;

use crate::cadence::Clocks;
use crate::rules::reach;
use crate::{Entry, Fact, Span, Violation, plain};

/// A producer that was waiting for room when its run closed, due back by `due`.
struct Overdue<N> {
    node: N,
    key: (String, u64),
    producer: String,
    closed_at: u64,
    due: u64,
}

/// Room made while producers waited: they take it by `due`, or stop waiting.
struct RoomDue<N> {
    node: N,
    key: (String, u64),
    made_at: u64,
    room: usize,
    /// Acceptances in the run since the room was made.
    taken: usize,
    /// The producers waiting when it was made, and how many waits each still has open.
    waiting: BTreeMap<String, usize>,
    due: u64,
}

impl<N: std::fmt::Display> RoomDue<N> {
    fn violation(&self, at: u64) -> Violation {
        let left: Vec<&str> = self.waiting.keys().map(String::as_str).collect();
        Violation::new(
            "V20",
            at,
            format!(
                "{}: completer {} run {}: a write made room for {} at {:.3}s; by {:.3}s {} were accepted and producers {} still wait: room wakes every producer waiting for it",
                self.node,
                self.key.0,
                self.key.1,
                self.room,
                self.made_at as f64 / 1e6,
                self.due as f64 / 1e6,
                self.taken,
                left.join(", ")
            ),
        )
    }
}

/// V20 over keel's completer events: see the module's doc. `end_us` is the history's end; the
/// bound is `clocks.slacks.0` of running time after the close (`clocks.frozen` gives a node's
/// frozen spans; rates and jumps do not matter: the wake waits on no clock). The first 20
/// violations.
pub fn completer_closes_wake_waiting_producers<E: Entry>(
    events: &[E],
    end_us: u64,
    clocks: Clocks<impl Fn(&E::Node) -> Vec<Span>, impl Fn(&E::Node, u64, u64) -> bool>,
) -> Vec<Violation> {
    // (node, completer, run) → producer → its waits going on
    let mut waits: BTreeMap<(E::Node, String, u64), BTreeMap<String, usize>> = BTreeMap::new();
    // (node, completer, run) → the close's instant
    let mut closed: BTreeMap<(E::Node, String, u64), u64> = BTreeMap::new();
    let mut due: Vec<Overdue<E::Node>> = Vec::new();
    let mut rooms: Vec<RoomDue<E::Node>> = Vec::new();
    let mut holes: BTreeMap<E::Node, Vec<Span>> = BTreeMap::new();
    let mut v = Vec::new();
    let overdue = |o: &Overdue<E::Node>, at: u64| {
        Violation::new(
            "V20",
            at,
            format!(
                "{}: completer {} run {}: producer {} was waiting for room when the run closed at {:.3}s and has not returned by {:.3}s: a close wakes every producer waiting for room",
                o.node,
                o.key.0,
                o.key.1,
                o.producer,
                o.closed_at as f64 / 1e6,
                o.due as f64 / 1e6
            ),
        )
    };
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        due.retain(|o| {
            if o.due < t {
                v.push(overdue(o, t));
                return false;
            }
            true
        });
        rooms.retain(|r| {
            if r.due < t {
                v.push(r.violation(t));
                return false;
            }
            true
        });
        if matches!(e.fact(), Some(Fact::NodeStart | Fact::NodeCrash)) {
            waits.retain(|k, _| &k.0 != node);
            closed.retain(|k, _| &k.0 != node);
            due.retain(|o| &o.node != node);
            rooms.retain(|r| &r.node != node);
            continue;
        }
        let settled = |r: &RoomDue<E::Node>| r.taken >= r.room || r.waiting.is_empty();
        match e.completer() {
            Some(CompleterEvent::RoomWaitBegun { completer, run, producer }) => {
                let key = (node.clone(), plain(completer).to_owned(), *run);
                if let Some(&at) = closed.get(&key) {
                    v.push(Violation::new(
                        "V20",
                        t,
                        format!(
                            "{node}: completer {} run {run}: producer {} began waiting for room after the run closed at {:.3}s: a closed run refuses at once",
                            key.1,
                            plain(producer),
                            at as f64 / 1e6
                        ),
                    ));
                }
                *waits.entry(key).or_default().entry(plain(producer).to_owned()).or_default() += 1;
            }
            Some(CompleterEvent::RoomWaitEnded { completer, run, producer, outcome }) => {
                let key = (node.clone(), plain(completer).to_owned(), *run);
                let p = plain(producer);
                if let Some(n) = waits.get_mut(&key).and_then(|w| w.get_mut(p)) {
                    *n = n.saturating_sub(1);
                }
                for r in rooms.iter_mut().filter(|r| &r.node == node && r.key.0 == key.1 && r.key.1 == *run) {
                    if let Some(n) = r.waiting.get_mut(p) {
                        *n = n.saturating_sub(1);
                        if *n == 0 {
                            r.waiting.remove(p);
                        }
                    }
                }
                rooms.retain(|r| !settled(r));
                if let Some(i) =
                    due.iter().position(|o| &o.node == node && o.key.0 == key.1 && o.key.1 == *run && o.producer == p)
                {
                    due.remove(i);
                }
                // Refused `closed` only once the run closed (round 29 B #7: a caller that gave its
                // completion up was reported `closed` while the run went on, and an operator reads
                // "the completer closed under me").
                if plain(outcome) == "closed" && !closed.contains_key(&key) {
                    v.push(Violation::new(
                        "V20",
                        t,
                        format!(
                            "{node}: completer {} run {run}: producer {p}'s wait for room ended `closed` while the run was open",
                            key.1
                        ),
                    ));
                }
                if let Some(&at) = closed.get(&key)
                    && plain(outcome) == "accepted"
                {
                    v.push(Violation::new(
                        "V20",
                        t,
                        format!(
                            "{node}: completer {} run {run}: producer {p}'s completion was accepted after the run closed at {:.3}s: a closed run accepts nothing",
                            key.1,
                            at as f64 / 1e6
                        ),
                    ));
                }
            }
            // A completion handed over is `accepted` only if the intake took it: a closed run
            // takes none (the blind-spot hunt's round 21 #40, MC196: the event emitted before the
            // push's result was looked at tells the operator of a completion that was refused).
            Some(CompleterEvent::Accepted { completer, run, .. }) => {
                let key = (node.clone(), plain(completer).to_owned(), *run);
                for r in rooms.iter_mut().filter(|r| &r.node == node && r.key.0 == key.1 && r.key.1 == *run) {
                    r.taken += 1;
                }
                rooms.retain(|r| !settled(r));
                if let Some(&at) = closed.get(&key) {
                    v.push(Violation::new(
                        "V20",
                        t,
                        format!(
                            "{node}: completer {} run {run}: a completion was reported accepted after the run closed at {:.3}s: a closed run accepts nothing",
                            key.1,
                            at as f64 / 1e6
                        ),
                    ));
                }
            }
            Some(CompleterEvent::RoomMade { completer, run, room, .. }) => {
                let key = (node.clone(), plain(completer).to_owned(), *run);
                let waiting: BTreeMap<String, usize> = waits
                    .get(&key)
                    .into_iter()
                    .flatten()
                    .filter(|(_, n)| **n > 0)
                    .map(|(p, n)| (p.clone(), *n))
                    .collect();
                if *room > 0 && !waiting.is_empty() {
                    let hs = holes.entry(node.clone()).or_insert_with(|| (clocks.frozen)(node));
                    rooms.push(RoomDue {
                        node: node.clone(),
                        key: (key.1, *run),
                        made_at: t,
                        room: *room,
                        taken: 0,
                        waiting,
                        due: reach(t, clocks.slacks.0, hs),
                    });
                }
            }
            Some(CompleterEvent::EventsClosed { completer, run, .. }) => {
                let key = (node.clone(), plain(completer).to_owned(), *run);
                let hs = holes.entry(node.clone()).or_insert_with(|| (clocks.frozen)(node));
                let by = reach(t, clocks.slacks.0, hs);
                for (p, n) in waits.get(&key).into_iter().flatten() {
                    for _ in 0..*n {
                        due.push(Overdue {
                            node: node.clone(),
                            key: (key.1.clone(), *run),
                            producer: p.clone(),
                            closed_at: t,
                            due: by,
                        });
                    }
                }
                closed.insert(key, t);
            }
            _ => {}
        }
    }
    for o in &due {
        if o.due < end_us {
            v.push(overdue(o, end_us));
        }
    }
    for r in &rooms {
        if r.due < end_us {
            v.push(r.violation(end_us));
        }
    }
    v.truncate(20);
    v
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::test_entry::E as Ev;

    use crate::test_entry::completer_at as at;

    fn begun(t_ms: u64, p: &'static str) -> Ev {
        at(t_ms, CompleterEvent::RoomWaitBegun { completer: "c".into(), run: 1, producer: p.into() })
    }

    fn ended(t_ms: u64, p: &'static str, outcome: &'static str) -> Ev {
        at(
            t_ms,
            CompleterEvent::RoomWaitEnded {
                completer: "c".into(),
                run: 1,
                producer: p.into(),
                outcome: outcome.into(),
            },
        )
    }

    fn closed(t_ms: u64) -> Ev {
        let c = "c".into();
        at(t_ms, CompleterEvent::EventsClosed { completer: c, run: 1, unflushed: 0, undelivered: 0, producers_left: 1 })
    }

    fn other(t_ms: u64) -> Ev {
        at(t_ms, CompleterEvent::SmStarted { completer: "c".into(), run: 2, source_run: 2 })
    }

    fn judge(h: &[Ev]) -> Vec<(&'static str, u64)> {
        crate::test_entry::at_ms(&completer_closes_wake_waiting_producers(h, 1_000_000, crate::steady_clocks(2_000)))
    }

    /// Waits ended by room or by the close at once pass; one the close leaves waiting (MC115)
    /// is V20 at the first event after the bound, or at the history's end; an acceptance after
    /// the close, or a wait begun in a closed run, is V20 at once; a crash forgets the run.
    #[test]
    fn a_close_ends_every_wait_for_room() {
        assert_eq!(judge(&[begun(10, "p"), ended(20, "p", "accepted"), closed(30), other(500)]), []);
        assert_eq!(
            judge(&[
                begun(10, "p"),
                begun(11, "q"),
                closed(30),
                ended(30, "p", "closed"),
                ended(31, "q", "closed"),
                other(500)
            ]),
            []
        );
        assert_eq!(judge(&[begun(10, "p"), ended(15, "p", "cancelled"), closed(30), other(500)]), []);
        // A wait given up by its caller reported `closed` with the run open (round 29 B #7).
        assert_eq!(judge(&[begun(10, "p"), ended(15, "p", "closed"), closed(30), other(500)]), [("V20", 15)]);
        assert_eq!(judge(&[begun(10, "p"), closed(30), other(31), other(40), other(50)]), [("V20", 40)]);
        assert_eq!(
            judge(&[begun(10, "p"), begun(12, "p"), closed(30), ended(30, "p", "closed"), other(50)]),
            [("V20", 50)]
        );
        assert_eq!(judge(&[begun(10, "p"), closed(30)]), [("V20", 1_000)]);
        assert_eq!(judge(&[begun(10, "p"), closed(30), ended(31, "p", "accepted")]), [("V20", 31)]);
        // A completion reported accepted by a closed run (MC196) is V20 at the report.
        let accepted =
            |t_ms: u64| at(t_ms, CompleterEvent::Accepted { completer: "c".into(), run: 1, backlog: 1, queued: 1 });
        assert_eq!(judge(&[accepted(10), closed(30), accepted(31)]), [("V20", 31)]);
        assert_eq!(judge(&[closed(30), begun(31, "p"), ended(31, "p", "closed")]), [("V20", 31)]);
        let crash = Ev(31_000, "n1", None, Some(Fact::NodeCrash));
        assert_eq!(judge(&[begun(10, "p"), closed(30), crash, other(500)]), []);
    }

    /// Room made while producers wait is taken, or nobody is left waiting, within the slack:
    /// a write that woke one waiter of two with room for both (MC208) is V20 at the first event
    /// past the bound; room taken by another producer, a wait given up, or no room made at all
    /// pass.
    #[test]
    fn room_made_wakes_every_producer_waiting_for_it() {
        let made = |t_ms: u64, room: usize| {
            at(t_ms, CompleterEvent::RoomMade { completer: "c".into(), run: 1, n: 4, backlog: 16 - room, room })
        };
        let accepted =
            |t_ms: u64| at(t_ms, CompleterEvent::Accepted { completer: "c".into(), run: 1, backlog: 16, queued: 12 });
        let (p, q) = (begun(10, "p"), begun(11, "q"));
        // Both woken, both accepted.
        let both = [p.clone(), q.clone(), made(20, 4), ended(20, "p", "accepted"), accepted(20)];
        assert_eq!(judge(&[&both[..], &[ended(21, "q", "accepted"), accepted(21), other(500)]].concat()), []);
        // One woken (MC208): q parked beside room for three more.
        assert_eq!(judge(&[&both[..], &[other(21), other(30)]].concat()), [("V20", 30)]);
        assert_eq!(judge(&both), [("V20", 1_000)]);
        // Room for one, taken by p: q waits on with reason.
        assert_eq!(
            judge(&[p.clone(), q.clone(), made(20, 1), ended(20, "p", "accepted"), accepted(20), other(500)]),
            []
        );
        // The room taken by a producer that did not wait, or q giving its completion up.
        assert_eq!(judge(&[p.clone(), made(20, 1), accepted(20), other(500)]), []);
        assert_eq!(judge(&[p.clone(), made(20, 2), ended(21, "p", "cancelled"), other(500)]), []);
        // No room made (a write given up while the backlog was full again), or nobody waiting.
        assert_eq!(judge(&[p.clone(), made(20, 0), other(500)]), []);
        assert_eq!(judge(&[made(20, 4), other(500)]), []);
        // A crash forgets the room.
        let crash = Ev(21_000, "n1", None, Some(Fact::NodeCrash));
        assert_eq!(judge(&[p, made(20, 4), crash, other(500)]), []);
    }
}
