//! V39: a completer announces a hand-over lost only once no subscription manager holds the run's
//! receiver, judged at each announcement.
//!
//! A completer run offers its event channel's receiver when it starts (`completer_started`); a
//! subscription manager run takes it (`sm_started`, naming the `source_run` it reads) and drops
//! it when it closes its subscribers (`subscriptions_closed`); a newer run's offer drops one
//! never taken. Only then can the run's send fail, and the run say so (`events_undelivered`, not
//! at the bound). While the receiver is held, by the offer or by a manager reading it, a batch
//! announced lost is one the completer gave up on its own: a hand-over given up when the stop is
//! heard (blind-spot hunt, round 36, B #14, MC324) drops a batch written and durable that a
//! manager starting late, or merely behind, would have read, and its stop reports it as if the
//! manager had gone. A node's crash or restart forgets what it held.

use std::collections::BTreeMap;

use keel::observe::CompleterEvent;

use crate::{Entry, Fact, Violation, plain};

/// Who holds a completer's receivers on one node.
#[derive(Default)]
struct Held {
    /// The run whose receiver waits, offered and not taken.
    offered: Option<u64>,
    /// The manager run reading a receiver, and the completer run it belongs to.
    taken: Option<(u64, u64)>,
}

/// V39 over keel's completer events: see the module's doc. The first 20 violations.
pub fn completer_losses_need_a_gone_receiver<E: Entry>(events: &[E]) -> Vec<Violation> {
    // (node, completer) → who holds its runs' receivers
    let mut held: BTreeMap<(E::Node, &str), Held> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let node = e.node();
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            held.retain(|k, _| &k.0 != node);
            continue;
        }
        use CompleterEvent as C;
        match e.completer() {
            Some(C::CompleterStarted { completer, run, .. }) => {
                held.entry((node.clone(), plain(completer))).or_default().offered = Some(*run);
            }
            Some(C::SmStarted { completer, run, source_run }) => {
                let h = held.entry((node.clone(), plain(completer))).or_default();
                if h.offered == Some(*source_run) {
                    h.offered = None;
                }
                h.taken = Some((*run, *source_run));
            }
            Some(C::SubscriptionsClosed { completer, run, .. }) => {
                if let Some(h) = held.get_mut(&(node.clone(), plain(completer)))
                    && h.taken.is_some_and(|(sm, _)| sm == *run)
                {
                    h.taken = None;
                }
            }
            Some(C::EventsUndelivered { completer, run, n }) => {
                let Some(h) = held.get(&(node.clone(), plain(completer))) else { continue };
                let holder = if h.offered == Some(*run) {
                    "its receiver waits, offered, for a subscription manager".to_owned()
                } else if let Some((sm, _)) = h.taken.filter(|&(_, source)| source == *run) {
                    format!("subscription manager run {sm} still reads its receiver")
                } else {
                    continue;
                };
                if v.len() < 20 {
                    v.push(Violation::new(
                        "V39",
                        e.t_us(),
                        format!(
                            "{node}: completer {} run {run} announced {n} events lost as undeliverable, but {holder}",
                            plain(completer)
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

    use super::*;
    use crate::test_entry::E as Ev;

    use crate::test_entry::completer_at as at;

    fn sm_started(t_ms: u64, sm: u64, source_run: u64) -> Ev {
        at(t_ms, CompleterEvent::SmStarted { completer: "c".into(), run: sm, source_run })
    }

    fn sm_closed(t_ms: u64, sm: u64) -> Ev {
        at(
            t_ms,
            CompleterEvent::SubscriptionsClosed { completer: "c".into(), run: sm, subs: 0, delivered: 0, dropped: 0 },
        )
    }

    fn lost(t_ms: u64, run: u64) -> Ev {
        at(t_ms, CompleterEvent::EventsUndelivered { completer: "c".into(), run, n: 3 })
    }

    fn judge(events: &[Ev]) -> Vec<u64> {
        completer_losses_need_a_gone_receiver(events).iter().map(|v| v.t_us / 1000).collect()
    }

    #[test]
    fn a_loss_while_the_receiver_is_offered_or_read_is_a_violation() {
        let started = crate::test_entry::completer_started(0, 1);
        // Offered, never taken: the late manager would have read it.
        assert_eq!(judge(&[started.clone(), lost(10, 1)]), [10]);
        // Taken by a manager still running.
        assert_eq!(judge(&[started.clone(), sm_started(5, 1, 1), lost(10, 1)]), [10]);
    }

    #[test]
    fn a_loss_once_the_receiver_is_gone_is_not() {
        let started = crate::test_entry::completer_started(0, 1);
        // The manager that read it closed (its drain bound ran out).
        assert!(judge(&[started.clone(), sm_started(5, 1, 1), sm_closed(8, 1), lost(10, 1)]).is_empty());
        // A newer run's offer dropped it untaken.
        let newer = crate::test_entry::completer_started(6, 2);
        assert!(judge(&[started.clone(), newer, lost(10, 1)]).is_empty());
        // Another manager run's close leaves the reader of run 1 reading.
        assert_eq!(judge(&[started, sm_started(5, 2, 1), sm_closed(8, 1), lost(10, 1)]), [10]);
    }

    /// A node's crash or restart forgets the receivers it held; another node's does not.
    #[test]
    fn a_crash_forgets_the_receivers_of_its_node_only() {
        let started = crate::test_entry::completer_started(0, 1);
        let fact = |node, f| Ev(5_000, node, None, Some(f));
        assert!(judge(&[started.clone(), fact("n1", Fact::NodeCrash), lost(10, 1)]).is_empty());
        assert!(judge(&[started.clone(), fact("n1", Fact::NodeStart), lost(10, 1)]).is_empty());
        assert_eq!(judge(&[started, fact("n2", Fact::NodeCrash), lost(10, 1)]), [10]);
    }
}
