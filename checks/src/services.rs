//! V15: a service runs one run at a time, judged at each run's start.
//!
//! A lifecycle numbers its runs 1, 2, 3… and starts run n+1 only once run n exited: a start
//! while a run is going does nothing, a start during a stop waits for the run to exit. A second
//! run started beside the first (a start that spawns again while running) runs the service's
//! work twice at once: two completers flushing one backlog, two subscription managers closing
//! one set of channels.
//!
//! Runs are told apart by their service's name, so two services of one name on one node cannot
//! be: once two runs of a name with the same number were going at once (two lifecycles started
//! together), the name is not judged again in that node's life. Two services of one name whose
//! run numbers differ are reported; keel's own services are named apart (`completer:{name}`,
//! `subscriptions:{completer}`), and a user's services should be too.

use std::collections::{BTreeMap, BTreeSet};

use keel::observe::LifecycleEvent;

use crate::{Entry, Fact, Violation, plain};

/// V15 over keel's lifecycle events: see the module's doc. A node's start or crash forgets its
/// runs. The first 20 violations.
pub fn services_run_one_at_a_time<E: Entry>(events: &[E]) -> Vec<Violation> {
    #[derive(Default)]
    struct Runs<'a> {
        /// Name → its runs going.
        going: BTreeMap<&'a str, BTreeSet<u64>>,
        /// Names two lifecycles share (not judged).
        shared: BTreeSet<&'a str>,
    }
    let mut nodes: BTreeMap<E::Node, Runs<'_>> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        if matches!(e.fact(), Some(Fact::NodeStart | Fact::NodeCrash)) {
            nodes.remove(e.node());
            continue;
        }
        let Some(keel::observe::Event::Lifecycle(l)) = e.keel() else { continue };
        let node = nodes.entry(e.node().clone()).or_default();
        match l {
            LifecycleEvent::RunStarted { service, run } => {
                let name = plain(service);
                let going = node.going.entry(name).or_default();
                if !going.insert(*run) {
                    node.shared.insert(name); // the same number twice: two lifecycles
                } else if let Some(other) = going.iter().find(|r| *r != run)
                    && !node.shared.contains(name)
                    && v.len() < 20
                {
                    v.push(Violation::new(
                        "V15",
                        e.t_us(),
                        format!(
                            "{}: service {name} started run {run} while its run {other} still runs (two services of one name must be named apart)",
                            e.node()
                        ),
                    ));
                }
            }
            LifecycleEvent::RunExited { service, run } => {
                if let Some(going) = node.going.get_mut(plain(service)) {
                    going.remove(run);
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

    fn at(t_ms: u64, node: &'static str, e: LifecycleEvent<'_>) -> Ev {
        Ev(t_ms * 1000, node, Some(Event::Lifecycle(e.to_static())), None)
    }

    fn started(t_ms: u64, service: &'static str, run: u64) -> Ev {
        at(t_ms, "n1", LifecycleEvent::RunStarted { service: service.into(), run })
    }

    fn exited(t_ms: u64, service: &'static str, run: u64) -> Ev {
        at(t_ms, "n1", LifecycleEvent::RunExited { service: service.into(), run })
    }

    /// Runs one after another pass; run 2 started while run 1 still runs (MC75) is V15 at its
    /// start; two lifecycles of one name started together are not judged; a crash forgets.
    #[test]
    fn a_second_run_beside_the_first_fires_v15() {
        let h = [started(1, "s", 1), exited(2, "s", 1), started(3, "s", 2), started(3, "t", 1)];
        assert!(services_run_one_at_a_time(&h).is_empty());
        let v = services_run_one_at_a_time(&[started(1, "s", 1), started(2, "s", 2)]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!((v[0].invariant, v[0].t_us), ("V15", 2_000));
        assert!(v[0].detail.contains("run 2 while its run 1 still runs"), "{}", v[0].detail);
        let twins = [started(1, "s", 1), started(1, "s", 1), exited(2, "s", 1), started(3, "s", 2)];
        assert!(services_run_one_at_a_time(&twins).is_empty(), "two lifecycles of one name");
        let crash = Ev(2000, "n1", None, Some(Fact::NodeCrash));
        assert!(services_run_one_at_a_time(&[started(1, "s", 1), crash, started(3, "s", 1)]).is_empty());
    }
}
