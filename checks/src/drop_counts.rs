//! V22: a subscription manager's close reports the events its subscribers' full buffers dropped,
//! judged at the close.
//!
//! A subscriber whose buffer is full loses the event, counted for it (`subscriber_dropped`, one
//! per event; `Subscription::dropped` reads the count) so the manager never blocks on a slow
//! reader. At its close (`subscriptions_closed`) the manager reports the total over the
//! subscribers it closes: every drop since its previous close, but for the subscribers that went
//! away meanwhile (`subscriber_gone`: their receivers dropped, the manager forgot them). A total
//! summed over the wrong map (blind-spot hunt, round 18, A #29: always 0) tells operators no
//! subscriber lost anything. A node's start or crash forgets the counts.

use std::collections::{BTreeMap, BTreeSet};

use keel::observe::CompleterEvent;

use crate::{Entry, Fact, Violation, plain};

/// V22 over keel's completer events: see the module's doc. The first 20 violations.
pub fn subscription_closes_count_drops<E: Entry>(events: &[E]) -> Vec<Violation> {
    // (node, completer) → drops per subscriber since the manager's last close
    let mut drops: BTreeMap<(E::Node, &str), BTreeMap<u64, u64>> = BTreeMap::new();
    // (node, completer) → subscribers gone since the last close
    let mut gone: BTreeMap<(E::Node, &str), BTreeSet<u64>> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let node = e.node();
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            drops.retain(|(n, _), _| n != node);
            gone.retain(|(n, _), _| n != node);
            continue;
        }
        match e.completer() {
            Some(CompleterEvent::SubscriberDropped { completer, subscriber }) => {
                *drops.entry((node.clone(), plain(completer))).or_default().entry(*subscriber).or_default() += 1;
            }
            Some(CompleterEvent::SubscriberGone { completer, subscriber }) => {
                gone.entry((node.clone(), plain(completer))).or_default().insert(*subscriber);
            }
            Some(CompleterEvent::SubscriptionsClosed { completer, run, dropped, .. }) => {
                let key = (node.clone(), plain(completer));
                let left = gone.remove(&key).unwrap_or_default();
                let counted: u64 = drops
                    .remove(&key)
                    .unwrap_or_default()
                    .iter()
                    .filter(|(s, _)| !left.contains(s))
                    .map(|(_, n)| n)
                    .sum();
                if counted != *dropped && v.len() < 20 {
                    v.push(Violation::new(
                        "V22",
                        e.t_us(),
                        format!(
                            "{node}: the subscription manager of {} closed run {run} reporting {dropped} events dropped; its subscribers' subscriber_dropped since its last close count {counted}",
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
    use crate::test_entry::{E as Ev, at_ms};

    use crate::test_entry::completer_at as at;

    fn dropped(t_ms: u64, subscriber: u64) -> Ev {
        at(t_ms, CompleterEvent::SubscriberDropped { completer: "c".into(), subscriber })
    }

    fn closed(t_ms: u64, dropped: u64) -> Ev {
        let e = CompleterEvent::SubscriptionsClosed { completer: "c".into(), run: 1, subs: 2, delivered: 9, dropped };
        at(t_ms, e)
    }

    #[test]
    fn a_close_reporting_other_drops_than_its_subscribers_lost_fires_v22() {
        assert_eq!(at_ms(&subscription_closes_count_drops(&[dropped(1, 1), dropped(2, 2), closed(3, 2)])), []);
        assert_eq!(
            at_ms(&subscription_closes_count_drops(&[dropped(1, 1), dropped(2, 2), closed(3, 0)])),
            [("V22", 3)]
        );
        let gone = at(2, CompleterEvent::SubscriberGone { completer: "c".into(), subscriber: 2 });
        assert_eq!(at_ms(&subscription_closes_count_drops(&[dropped(1, 1), dropped(1, 2), gone, closed(3, 1)])), []);
        // The next close counts from the last.
        assert_eq!(at_ms(&subscription_closes_count_drops(&[dropped(1, 1), closed(3, 1), closed(5, 0)])), []);
    }
}
