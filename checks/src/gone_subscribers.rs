//! V40: a subscription manager forgets a subscriber found gone, judged at each `subscriber_gone`.
//!
//! A subscriber whose receiver was dropped is found gone at the next event offered to it, and
//! the manager removes it then (`subscriber_gone`, once per subscriber id). A manager that
//! announces it and keeps it (a removal dropped) offers it every later batch again, counts those
//! offers as delivered (V27's figure grows without a reader) and keeps its entry for the
//! manager's life: the same id announced gone twice. Ids are never reused within a manager; a
//! node's crash or restart starts over.

use std::collections::BTreeSet;

use keel::observe::CompleterEvent;

use crate::{Entry, Fact, Violation, plain};

/// V40 over keel's completer events: see the module's doc. The first 20 violations.
pub fn subscribers_gone_once<E: Entry>(events: &[E]) -> Vec<Violation> {
    // (node, completer, subscriber id) found gone
    let mut gone: BTreeSet<(E::Node, &str, u64)> = BTreeSet::new();
    let mut v = Vec::new();
    for e in events {
        let node = e.node();
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            gone.retain(|k| &k.0 != node);
            continue;
        }
        if let Some(CompleterEvent::SubscriberGone { completer, subscriber }) = e.completer()
            && !gone.insert((node.clone(), plain(completer), *subscriber))
            && v.len() < 20
        {
            v.push(Violation::new(
                "V40",
                e.t_us(),
                format!(
                    "{node}: the subscription manager of completer {} found subscriber {subscriber} gone again: it kept a subscriber it had found gone",
                    plain(completer)
                ),
            ));
        }
    }
    v
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::test_entry::E as Ev;

    fn gone(t_ms: u64, subscriber: u64) -> Ev {
        let e = CompleterEvent::SubscriberGone { completer: "c".into(), subscriber };
        crate::test_entry::completer_at(t_ms, e)
    }

    #[test]
    fn a_subscriber_found_gone_twice_is_a_violation() {
        assert!(subscribers_gone_once(&[gone(1, 1), gone(2, 2)]).is_empty());
        let v = subscribers_gone_once(&[gone(1, 1), gone(2, 2), gone(3, 1)]);
        assert_eq!(v.iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>(), [("V40", 3_000)]);
    }
}
