//! V48: a completer run keeps the backlog it announced, judged at each acceptance and at each
//! producer's wait for room.
//!
//! A run announces its backlog bound when it starts (`completer_started`: `backlog`) and reports
//! the backlog it holds (queued and in flight) at every change: after each acceptance
//! (`accepted`) and each time a batch leaves it (`room_made`). An acceptance that leaves more than
//! the bound overruns it (V7 judges the scenario's own bound; this one holds on any service). And
//! a producer waits for room (`room_wait_begun`) only when it found the backlog full: the last
//! backlog the run reported is at the bound. An intake bounded by something else than the
//! announced backlog (its batch size, MC424) parks producers with most of the backlog free: a
//! pool's workers stall on every burst while the completer's settings say they should not. The
//! report and the wait are made in one step of the producer's task (no other task runs between
//! them), so the comparison is exact. A node's crash or restart ends the judging of its runs.

use std::collections::BTreeMap;

use keel::observe::CompleterEvent;

use crate::{Entry, Fact, Violation, plain};

/// V48 over keel's completer events: see the module's doc. The first 20 violations.
pub fn completer_backlogs_keep_their_bound<E: Entry>(events: &[E]) -> Vec<Violation> {
    // (node, completer, run) → (the announced bound, the backlog last reported)
    let mut runs: BTreeMap<(E::Node, &str, u64), (usize, usize)> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            runs.retain(|k, _| &k.0 != node);
            continue;
        }
        use CompleterEvent as C;
        let (completer, run) = match e.completer() {
            Some(C::CompleterStarted { completer, run, backlog, .. }) => {
                runs.insert((node.clone(), plain(completer), *run), (*backlog, 0));
                continue;
            }
            Some(
                C::Accepted { completer, run, .. }
                | C::RoomMade { completer, run, .. }
                | C::RoomWaitBegun { completer, run, .. },
            ) => (plain(completer), *run),
            _ => continue,
        };
        let Some((bound, last)) = runs.get_mut(&(node.clone(), completer, run)) else { continue };
        let broke = match e.completer() {
            Some(C::Accepted { backlog, .. }) => {
                *last = *backlog;
                (*backlog > *bound)
                    .then(|| format!("an acceptance left a backlog of {backlog}, over its bound of {bound}"))
            }
            Some(C::RoomMade { backlog, .. }) => {
                *last = *backlog;
                None
            }
            _ => (*last < *bound).then(|| {
                format!("a producer waits for room with the backlog at {last} of its bound of {bound}: it was not full")
            }),
        };
        if let Some(what) = broke
            && v.len() < 20
        {
            v.push(Violation::new("V48", t, format!("{node}: completer {completer} run {run}: {what}")));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use keel::observe::Event;

    use super::*;
    use crate::test_entry::{E as Ev, at_ms};

    fn at(t_ms: u64, e: CompleterEvent<'_>) -> Ev {
        Ev(t_ms * 1000, "n1", Some(Event::Completer(e.to_static())), None)
    }

    fn accepted(t_ms: u64, backlog: usize) -> Ev {
        at(t_ms, CompleterEvent::Accepted { completer: "c".into(), run: 1, backlog, queued: backlog })
    }

    fn wait(t_ms: u64) -> Ev {
        at(t_ms, CompleterEvent::RoomWaitBegun { completer: "c".into(), run: 1, producer: "p".into() })
    }

    fn room(t_ms: u64, backlog: usize) -> Ev {
        at(t_ms, CompleterEvent::RoomMade { completer: "c".into(), run: 1, n: 1, backlog, room: 3 - backlog })
    }

    #[test]
    fn a_wait_with_room_or_an_acceptance_past_the_bound_fires_v48() {
        // completer_started's backlog: replaced with 3 here.
        let mut started = crate::test_entry::completer_started(0, 1);
        if let Some(Event::Completer(CompleterEvent::CompleterStarted { backlog, .. })) = &mut started.2 {
            *backlog = 3;
        }
        let judge = |h: &[Ev]| at_ms(&completer_backlogs_keep_their_bound(h));
        let full = [started.clone(), accepted(1, 1), accepted(2, 2), accepted(3, 3)];
        assert_eq!(judge(&[full.as_slice(), &[wait(4)]].concat()), []);
        // Room made before the wait: the producer found room, yet waits.
        assert_eq!(judge(&[full.as_slice(), &[room(4, 2), wait(5)]].concat()), [("V48", 5)]);
        assert_eq!(judge(&[started.clone(), accepted(1, 1), wait(2)]), [("V48", 2)]);
        assert_eq!(judge(&[full.as_slice(), &[accepted(4, 4)]].concat()), [("V48", 4)]);
        // Another run, or none announced: not judged.
        assert_eq!(judge(&[accepted(1, 1), wait(2)]), []);
    }
}
