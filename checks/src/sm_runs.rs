//! A subscription manager's run follows its own stop and its completer's run (River's
//! `subscriptionManager`), judged at the instant:
//!
//! - **V35**: a manager drains (`sm_draining`) only once its own stop was requested
//!   (`sm_stop_requested` of that run). keel runs the manager on a token detached from its
//!   caller, as it runs the completer (SPEC §6: a cancelled caller cannot cut the drain short);
//!   one started on the caller's child (blind-spot hunt, round 36, B #8, MC312) begins its drain
//!   bound when the caller is cancelled, before the group stops its producers and completer, and
//!   gives up on the completer's events that bound after the cancel, not after its stop. Its
//!   run also ends by itself with the completer's channel, so its stop finds nothing running
//!   and announces no request: every rule judged from the request saw nothing.
//! - **V36**: a manager's run distributes the events of its completer's latest run: at its start
//!   (`sm_started`, which names the completer run it took, `source_run`) that is the last
//!   `completer_started` of that completer on the node. Each completer run hands its receiver
//!   over as it starts, replacing one not taken; a hand-over that keeps an older one (round 36,
//!   B #9, MC313) gives a manager started later a dead run's channel: it reads its close at
//!   once and closes its subscribers, and the live run's events go undelivered.
//! - **V37**: a manager closes its subscribers (`subscriptions_closed`) only once the completer
//!   run it distributes closed its event channel (`events_closed` of its `source_run`), or its
//!   drain bound ran out (`sm_drain_timeout`): on stop it keeps draining until that channel
//!   closes (SPEC §6). One that closes with what is buffered when its stop is heard (round 36, B
//!   #10, MC314) loses every event the completer still flushes, and its subscribers' channels
//!   close with completions accepted before the stop undelivered.
//!
//! A node's crash or restart ends its runs.

use std::collections::BTreeMap;

use keel::observe::CompleterEvent;

use crate::{Entry, Fact, Violation, plain};

/// One manager run, keyed by (node, completer, run).
#[derive(Default)]
struct SmRun {
    stop_requested: bool,
    /// The completer run it distributes, once it took one.
    source: Option<u64>,
    timed_out: bool,
}

/// V35, V36 and V37 over keel's completer events: see the module's doc. The first 20
/// violations.
pub fn subscription_runs_follow_their_stop_and_completer<E: Entry>(events: &[E]) -> Vec<Violation> {
    let mut sms: BTreeMap<(E::Node, &str, u64), SmRun> = BTreeMap::new();
    // (node, completer) → its latest run started
    let mut latest: BTreeMap<(E::Node, &str), u64> = BTreeMap::new();
    // (node, completer, run) of completer runs whose event channel closed
    let mut closed: BTreeMap<(E::Node, &str, u64), ()> = BTreeMap::new();
    let mut v = Vec::new();
    let push = |v: &mut Vec<Violation>, id, t, detail: String| {
        if v.len() < 20 {
            v.push(Violation::new(id, t, detail));
        }
    };
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            sms.retain(|k, _| &k.0 != node);
            latest.retain(|k, _| &k.0 != node);
            closed.retain(|k, _| &k.0 != node);
            continue;
        }
        use CompleterEvent as C;
        match e.completer() {
            Some(C::CompleterStarted { completer, run, .. }) => {
                latest.insert((node.clone(), plain(completer)), *run);
            }
            Some(C::EventsClosed { completer, run, .. }) => {
                closed.insert((node.clone(), plain(completer), *run), ());
            }
            Some(C::SmStopRequested { completer, run, .. }) => {
                sms.entry((node.clone(), plain(completer), *run)).or_default().stop_requested = true;
            }
            Some(C::SmDraining { completer, run }) => {
                let c = plain(completer);
                if !sms.get(&(node.clone(), c, *run)).is_some_and(|s| s.stop_requested) {
                    push(
                        &mut v,
                        "V35",
                        t,
                        format!(
                            "{node}: subscription manager of {c} run {run} began draining with no stop of it requested: it follows another token than its own"
                        ),
                    );
                }
            }
            Some(C::SmStarted { completer, run, source_run }) => {
                let c = plain(completer);
                let last = latest.get(&(node.clone(), c)).copied();
                if last.is_some_and(|l| l != *source_run) {
                    push(
                        &mut v,
                        "V36",
                        t,
                        format!(
                            "{node}: subscription manager of {c} run {run} took completer run {source_run}'s events, where the completer's latest run is {}",
                            last.unwrap_or(0)
                        ),
                    );
                }
                sms.entry((node.clone(), c, *run)).or_default().source = Some(*source_run);
            }
            Some(C::SmDrainTimeout { completer, run }) => {
                sms.entry((node.clone(), plain(completer), *run)).or_default().timed_out = true;
            }
            Some(C::SubscriptionsClosed { completer, run, .. }) => {
                let c = plain(completer);
                let Some(sm) = sms.remove(&(node.clone(), c, *run)) else { continue };
                if let Some(source) = sm.source
                    && !sm.timed_out
                    && !closed.contains_key(&(node.clone(), c, source))
                {
                    push(
                        &mut v,
                        "V37",
                        t,
                        format!(
                            "{node}: subscription manager of {c} run {run} closed its subscribers before completer run {source}, whose events it distributes, closed its channel, and before its drain bound ran out"
                        ),
                    );
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

    fn started(t_ms: u64, run: u64) -> Ev {
        crate::test_entry::completer_started(t_ms, run)
    }

    fn sm_started(t_ms: u64, source_run: u64) -> Ev {
        at(t_ms, CompleterEvent::SmStarted { completer: "c".into(), run: 1, source_run })
    }

    fn asked(t_ms: u64) -> Ev {
        at(t_ms, CompleterEvent::SmStopRequested { completer: "c".into(), run: 1, bound_ms: 100 })
    }

    fn draining(t_ms: u64) -> Ev {
        at(t_ms, CompleterEvent::SmDraining { completer: "c".into(), run: 1 })
    }

    fn events_closed(t_ms: u64, run: u64) -> Ev {
        let e = CompleterEvent::EventsClosed {
            completer: "c".into(),
            run,
            unflushed: 0,
            undelivered: 0,
            producers_left: 0,
        };
        at(t_ms, e)
    }

    fn subs_closed(t_ms: u64) -> Ev {
        at(
            t_ms,
            CompleterEvent::SubscriptionsClosed { completer: "c".into(), run: 1, subs: 2, delivered: 0, dropped: 0 },
        )
    }

    fn ids(v: &[Violation]) -> Vec<(&'static str, u64)> {
        v.iter().map(|v| (v.invariant, v.t_us / 1000)).collect()
    }

    #[test]
    fn keels_order_passes() {
        let h = [started(1, 1), sm_started(1, 1), events_closed(5, 1), asked(6), draining(6), subs_closed(6)];
        assert!(subscription_runs_follow_their_stop_and_completer(&h).is_empty());
        // A drain bound run out excuses a close before the completer's.
        let timeout = at(9, CompleterEvent::SmDrainTimeout { completer: "c".into(), run: 1 });
        let h = [started(1, 1), sm_started(1, 1), asked(6), draining(6), timeout, subs_closed(9)];
        assert!(subscription_runs_follow_their_stop_and_completer(&h).is_empty());
    }

    #[test]
    fn a_drain_with_no_stop_requested_is_v35() {
        let h = [started(1, 1), sm_started(1, 1), draining(3), events_closed(5, 1), subs_closed(5)];
        assert_eq!(ids(&subscription_runs_follow_their_stop_and_completer(&h)), [("V35", 3)]);
    }

    #[test]
    fn a_stale_source_is_v36() {
        let h = [started(1, 1), events_closed(2, 1), started(3, 2), sm_started(4, 1)];
        assert_eq!(ids(&subscription_runs_follow_their_stop_and_completer(&h)), [("V36", 4)]);
        let h = [started(1, 1), events_closed(2, 1), started(3, 2), sm_started(4, 2)];
        assert!(subscription_runs_follow_their_stop_and_completer(&h).is_empty());
    }

    #[test]
    fn a_close_before_the_completers_is_v37() {
        let h = [started(1, 1), sm_started(1, 1), asked(4), draining(4), subs_closed(4), events_closed(5, 1)];
        assert_eq!(ids(&subscription_runs_follow_their_stop_and_completer(&h)), [("V37", 4)]);
        // A restart of the node forgets the run.
        let restart = Ev(3_000, "n1", None, Some(Fact::NodeStart));
        let h = [started(1, 1), sm_started(1, 1), restart, asked(4), subs_closed(4)];
        assert!(subscription_runs_follow_their_stop_and_completer(&h).is_empty());
    }
}
