//! V15: a service runs one run at a time, judged at each run's start; V19: a group starts its
//! services in order and a failed start leaves none of them running (`group_starts`).
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

/// Each lifecycle event of `events` with its node's state `S` (V9, V15, V19): a node's start or
/// crash forgets its state (what ran died with it).
pub(crate) fn each_lifecycle_event<'a, E: Entry, S: Default>(
    events: &'a [E],
    mut each: impl FnMut(&'a E, &mut S, &'a LifecycleEvent<'static>),
) {
    let mut nodes: BTreeMap<E::Node, S> = BTreeMap::new();
    for e in events {
        if matches!(e.fact(), Some(Fact::NodeStart | Fact::NodeCrash)) {
            nodes.remove(e.node());
            continue;
        }
        let Some(keel::observe::Event::Lifecycle(l)) = e.keel() else { continue };
        each(e, nodes.entry(e.node().clone()).or_default(), l);
    }
}

/// The lifecycle runs going on one node, by service name (V15, V19).
#[derive(Default)]
pub(crate) struct Runs<'a> {
    /// Name → its runs going.
    going: BTreeMap<&'a str, BTreeSet<u64>>,
    /// Names two lifecycles share (not judged).
    shared: BTreeSet<&'a str>,
}

impl<'a> Runs<'a> {
    /// Run `run` of `name` started: another run of the name still going, if the name is judged.
    pub(crate) fn started(&mut self, name: &'a str, run: u64) -> Option<u64> {
        let going = self.going.entry(name).or_default();
        if !going.insert(run) {
            self.shared.insert(name); // the same number twice: two lifecycles
            return None;
        }
        let other = going.iter().find(|r| **r != run).copied();
        other.filter(|_| !self.shared.contains(name))
    }

    pub(crate) fn exited(&mut self, name: &str, run: u64) {
        if let Some(going) = self.going.get_mut(name) {
            going.remove(&run);
        }
    }

    /// Whether run `run` of `name` is going, if the name is judged.
    pub(crate) fn is_going(&self, name: &str, run: u64) -> bool {
        !self.shared.contains(name) && self.going.get(name).is_some_and(|g| g.contains(&run))
    }

    /// A run of `name` going, if the name is judged.
    pub(crate) fn going(&self, name: &str) -> Option<u64> {
        let run = self.going.get(name).and_then(|g| g.first().copied());
        run.filter(|_| !self.shared.contains(name))
    }
}

/// V15 over keel's lifecycle events: see the module's doc. A node's start or crash forgets its
/// runs. The first 20 violations.
pub fn services_run_one_at_a_time<E: Entry>(events: &[E]) -> Vec<Violation> {
    let mut v = Vec::new();
    each_lifecycle_event(events, |e, node: &mut Runs<'_>, l| match l {
        LifecycleEvent::RunStarted { service, run } => {
            let name = plain(service);
            if let Some(other) = node.started(name, *run)
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
        LifecycleEvent::RunExited { service, run } => node.exited(plain(service), *run),
        _ => {}
    });
    v
}

/// V5 for every lifecycle: a stop returns only once the run it was called on exited, judged
/// where it returns. keel announces each stop that found a run (`stop_returned`, with the run it
/// cancelled or waited for) once it is done waiting, so a `run_exited` of that run must precede
/// it on that node. A stop that took a run its parent's shutdown had already cancelled for one
/// already gone (blind-spot hunt, round 18, A #21) let a group, a pool or a user's service go on
/// to the next step (a hand-back, a store's close, a process exit) while the run still drained.
/// A node's start or crash forgets its runs; a name two lifecycles share is not judged (see the
/// module's doc). The first 20 violations.
pub fn stops_wait_for_their_run<E: Entry>(events: &[E]) -> Vec<Violation> {
    let mut v = Vec::new();
    each_lifecycle_event(events, |e, node: &mut Runs<'_>, l| match l {
        LifecycleEvent::RunStarted { service, run } => {
            let _ = node.started(plain(service), *run);
        }
        LifecycleEvent::RunExited { service, run } => node.exited(plain(service), *run),
        LifecycleEvent::StopReturned { service, run } => {
            let name = plain(service);
            if node.is_going(name, *run) && v.len() < 20 {
                v.push(Violation::new(
                    "V5",
                    e.t_us(),
                    format!("{}: a stop of service {name} returned while its run {run} had not exited", e.node()),
                ));
            }
        }
        _ => {}
    });
    v
}

/// V9, the members' word: a service group's stop hears each completer's stop error. A
/// completer's `stop()` announces what it returns (`stop_returned`, `ok` false with losses or
/// producers left); as a group's service (`completer:{name}`) that error must reach the group
/// (its `stop_failed`) before the group's stop returns (`group_stopped`), or the caller is told
/// the group stopped clean while a member's report says otherwise (blind-spot hunt, round 18,
/// A #36: producers left behind mapped to `Ok`). A node's start or crash forgets. The first 20
/// violations.
pub fn group_stops_hear_member_errors<E: Entry>(events: &[E]) -> Vec<Violation> {
    // node → member services whose own stop failed and that no `stop_failed` reported yet
    let mut unheard: BTreeMap<E::Node, BTreeSet<String>> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let node = e.node();
        if matches!(e.fact(), Some(Fact::NodeStart | Fact::NodeCrash)) {
            unheard.remove(node);
            continue;
        }
        match (e.completer(), e.keel()) {
            (Some(keel::observe::CompleterEvent::StopReturned { completer, ok: false, .. }), _) => {
                unheard.entry(node.clone()).or_default().insert(format!("completer:{}", plain(completer)));
            }
            (_, Some(keel::observe::Event::Lifecycle(LifecycleEvent::StopFailed { service, .. }))) => {
                if let Some(u) = unheard.get_mut(node) {
                    u.remove(plain(service));
                }
            }
            // A failed start stops what it started and returns the start's error, not theirs.
            (_, Some(keel::observe::Event::Lifecycle(LifecycleEvent::GroupStartEnded { services, .. }))) => {
                if let Some(u) = unheard.get_mut(node) {
                    u.retain(|s| !services.iter().any(|g| plain(g) == s));
                }
            }
            (_, Some(keel::observe::Event::Lifecycle(LifecycleEvent::GroupStopped { services, .. }))) => {
                let Some(u) = unheard.get_mut(node) else { continue };
                for s in services.iter().map(plain) {
                    if u.remove(s) && v.len() < 20 {
                        v.push(Violation::new(
                            "V9",
                            e.t_us(),
                            format!("{node}: a group's stop returned without the error of its service {s}, whose own stop reported losses or producers left"),
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    v
}

/// V19: a service group starts its services last declared first, and a start that fails
/// leaves none of the services it started running. Judged at each service's start outcome
/// (`service_started`, `start_failed`: the next one due, counted from the group's
/// `group_start_begun`, is the last declared not yet started) and where the group's start
/// returns (`group_start_ended`): reported `ok` only with every service started; reported
/// failed, no lifecycle run a service of the group started since the start began (by its
/// `run_started`) is still going; and on the way, the services a failed start stopped again
/// exit in stop order (the declared order: at each `run_exited` of one, none declared before it
/// still runs; MC146, round 17 B #20). A node's start or crash forgets its groups and runs; a name
/// two lifecycles share is not judged (V15's module doc). The first 20 violations.
pub fn group_starts<E: Entry>(events: &[E]) -> Vec<Violation> {
    struct Start<'a> {
        services: Vec<&'a str>,
        /// Outcomes seen so far: the next due is `services[len - 1 - done]`.
        done: usize,
        failed: Option<&'a str>,
        /// Services whose run started since the start began.
        ran: BTreeSet<&'a str>,
    }
    impl Start<'_> {
        fn due(&self) -> Option<&str> {
            self.services.len().checked_sub(self.done + 1).map(|i| self.services[i])
        }
    }
    #[derive(Default)]
    struct Node<'a> {
        runs: Runs<'a>,
        starts: Vec<Start<'a>>,
    }
    let mut v = Vec::new();
    each_lifecycle_event(events, |e, node: &mut Node<'_>, l| {
        let mut fire = |what: String| {
            if v.len() < 20 {
                v.push(Violation::new("V19", e.t_us(), format!("{}: {what}", e.node())));
            }
        };
        match l {
            LifecycleEvent::RunStarted { service, run } => {
                let name = plain(service);
                node.runs.started(name, *run);
                for s in node.starts.iter_mut().filter(|s| s.services.contains(&name)) {
                    s.ran.insert(name);
                }
            }
            LifecycleEvent::RunExited { service, run } => {
                let name = plain(service);
                node.runs.exited(name, *run);
                // A failed start stops what it started in stop order (declared order): no
                // service it started and declared before this one may still run.
                for s in node.starts.iter().filter(|s| s.failed.is_some() && s.ran.contains(&name)) {
                    let Some(at) = s.services.iter().position(|n| *n == name) else { continue };
                    for earlier in s.services[..at].iter().filter(|n| s.ran.contains(*n)) {
                        if let Some(r) = node.runs.going(earlier) {
                            fire(format!(
                                "a failed group start stopped {name} while {earlier} (declared before it, run {r}) still ran: its stops go in declared order"
                            ));
                        }
                    }
                }
            }
            // And one after the other: a service's stop begins once every service it started
            // declared before it has exited (the blind-spot hunt's round 21 #38, MC197: a
            // rollback that stops them all at once, the completer draining while its producers
            // still run).
            LifecycleEvent::StopBegun { service, .. } => {
                let name = plain(service);
                for s in node.starts.iter().filter(|s| s.failed.is_some() && s.ran.contains(&name)) {
                    let Some(at) = s.services.iter().position(|n| *n == name) else { continue };
                    for earlier in s.services[..at].iter().filter(|n| s.ran.contains(*n)) {
                        if let Some(r) = node.runs.going(earlier) {
                            fire(format!(
                                "a failed group start began stopping {name} while {earlier} (declared before it, run {r}) still ran: each stop waits for the one before"
                            ));
                        }
                    }
                }
            }
            LifecycleEvent::GroupStartBegun { services } => node.starts.push(Start {
                services: services.iter().map(plain).collect(),
                done: 0,
                failed: None,
                ran: BTreeSet::new(),
            }),
            LifecycleEvent::ServiceStarted { service } | LifecycleEvent::StartFailed { service, .. } => {
                let name = plain(service);
                let failed = matches!(l, LifecycleEvent::StartFailed { .. });
                let start = match node.starts.iter().position(|s| s.due() == Some(name)) {
                    Some(i) => &mut node.starts[i],
                    None => match node.starts.iter_mut().rev().find(|s| s.services.contains(&name)) {
                        Some(s) => {
                            let due = s.due().unwrap_or("none").to_owned();
                            fire(format!(
                                "a group started {name} while {due} was due (a group starts its services last declared first)"
                            ));
                            s
                        }
                        None => return, // a service started outside a group's start
                    },
                };
                start.done += 1;
                if failed {
                    start.failed = Some(name);
                }
            }
            LifecycleEvent::GroupStartEnded { services, ok } => {
                let names: Vec<&str> = services.iter().map(plain).collect();
                let Some(i) = node.starts.iter().rposition(|s| s.services == names) else { return };
                let start = node.starts.remove(i);
                let n = start.services.len();
                match (ok, start.failed) {
                    (true, None) if start.done == n => {}
                    (true, _) => fire(format!(
                        "a group's start reported started with {} of its {n} services started ({})",
                        start.done,
                        start.failed.map_or_else(String::new, |f| format!("{f} failed"))
                    )),
                    (false, failed) => {
                        let failed = failed.unwrap_or("no service");
                        for name in &start.ran {
                            if let Some(run) = node.runs.going(name) {
                                fire(format!(
                                    "a group's start that failed at {failed} returned while {name}, which it started, still runs (run {run})"
                                ));
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    });
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

    /// A stop that returns before its run exited (MC163, MC11, MC37) is V5 where it returns; one
    /// after the exit passes, and so does a stop of a name two lifecycles share.
    #[test]
    fn a_stop_returned_before_its_run_exited_fires_v5() {
        let stop = |t_ms, run| at(t_ms, "n1", LifecycleEvent::StopReturned { service: "s".into(), run });
        assert!(stops_wait_for_their_run(&[started(1, "s", 1), exited(2, "s", 1), stop(2, 1)]).is_empty());
        let v = stops_wait_for_their_run(&[started(1, "s", 1), stop(2, 1), exited(3, "s", 1)]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!((v[0].invariant, v[0].t_us), ("V5", 2_000));
        let twins = [started(1, "s", 1), started(1, "s", 1), exited(2, "s", 1), stop(2, 1)];
        assert!(stops_wait_for_their_run(&twins).is_empty(), "two lifecycles of one name");
    }

    /// A completer's stop error the group's stop never heard (MC172) is V9 at the group's return.
    #[test]
    fn a_group_stop_deaf_to_a_members_stop_error_fires_v9() {
        let returned = Ev(
            1000,
            "n1",
            Some(Event::Completer(
                keel::observe::CompleterEvent::StopReturned {
                    completer: "c".into(),
                    run: 1,
                    ok: false,
                    unflushed: 0,
                    undelivered: 0,
                    producers_left: 1,
                }
                .to_static(),
            )),
            None,
        );
        let failed = at(2, "n1", LifecycleEvent::StopFailed { service: "completer:c".into(), error: "x".into() });
        let stopped = |failed: Option<&str>| {
            let services = vec!["completer:c".into()];
            at(3, "n1", LifecycleEvent::GroupStopped { services, failed: failed.map(Into::into) })
        };
        let heard = [returned.clone(), failed, stopped(Some("completer:c"))];
        assert!(group_stops_hear_member_errors(&heard).is_empty());
        let v = group_stops_hear_member_errors(&[returned, stopped(None)]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!((v[0].invariant, v[0].t_us), ("V9", 3_000));
    }

    fn group(t_ms: u64, e: LifecycleEvent<'static>) -> Ev {
        at(t_ms, "n1", e)
    }

    const GROUP: [&str; 3] = ["p0", "completer:jobs", "subscriptions:jobs"];

    fn begun(t_ms: u64) -> Ev {
        group(t_ms, LifecycleEvent::GroupStartBegun { services: GROUP.iter().map(|s| (*s).into()).collect() })
    }

    fn ended(t_ms: u64, ok: bool) -> Ev {
        group(t_ms, LifecycleEvent::GroupStartEnded { services: GROUP.iter().map(|s| (*s).into()).collect(), ok })
    }

    fn ok(t_ms: u64, service: &'static str) -> Ev {
        group(t_ms, LifecycleEvent::ServiceStarted { service: service.into() })
    }

    fn failed(t_ms: u64, service: &'static str) -> Ev {
        group(t_ms, LifecycleEvent::StartFailed { service: service.into(), error: "refused".into() })
    }

    /// Started last declared first and reported ok: no violation. A failed start that stopped
    /// what it started passes; one that left them running (MC107) is V19 at its return, once
    /// per service left; a start in declared order (MC108) is V19 at its first outcome.
    #[test]
    fn a_group_start_out_of_order_or_leaving_services_running_fires_v19() {
        let (subs, comp) = ("subscriptions:jobs", "completer:jobs");
        let good =
            [begun(1), started(2, subs, 1), ok(2, subs), started(3, comp, 1), ok(3, comp), ok(4, "p0"), ended(5, true)];
        assert!(group_starts(&good).is_empty());
        let stopped = [
            begun(1),
            started(2, subs, 1),
            ok(2, subs),
            started(3, comp, 1),
            ok(3, comp),
            failed(4, "p0"),
            exited(5, comp, 1),
            exited(6, subs, 1),
            ended(7, false),
        ];
        assert!(group_starts(&stopped).is_empty());
        // Stopped in start order (MC146): the subscription manager before the completer it follows.
        let mut reversed = stopped.clone();
        reversed[6] = exited(5, subs, 1);
        reversed[7] = exited(6, comp, 1);
        let v = group_starts(&reversed);
        assert_eq!(crate::test_entry::at_ms(&v), [("V19", 5)], "{v:?}");
        assert!(v[0].detail.contains("stopped subscriptions:jobs while completer:jobs"), "{}", v[0].detail);
        let left: Vec<Ev> = stopped.iter().filter(|e| e.0 < 5_000).cloned().chain([ended(7, false)]).collect();
        let v = group_starts(&left);
        assert_eq!(crate::test_entry::at_ms(&v), [("V19", 7), ("V19", 7)], "{v:?}");
        assert!(v[0].detail.contains("failed at p0 returned while completer:jobs, which it started, still runs"));
        let declared = [begun(1), failed(2, "p0"), ended(3, false)];
        let v = group_starts(&declared);
        assert_eq!(crate::test_entry::at_ms(&v), [("V19", 2)], "{v:?}");
        assert!(v[0].detail.contains("started p0 while subscriptions:jobs was due"), "{}", v[0].detail);
        // Reported ok with a service never started.
        let short = [begun(1), ok(2, subs), ok(3, comp), ended(4, true)];
        assert_eq!(crate::test_entry::at_ms(&group_starts(&short)), [("V19", 4)]);
        // Stops begun all at once (MC197): the subscription manager's stop begins while the
        // completer declared before it still runs.
        let stop_begun = |t_ms: u64, service: &'static str| {
            group(t_ms, LifecycleEvent::StopBegun { service: service.into(), run: 1 })
        };
        let mut at_once = stopped.to_vec();
        at_once.insert(6, stop_begun(4, comp));
        at_once.insert(7, stop_begun(4, subs));
        let v = group_starts(&at_once);
        assert_eq!(crate::test_entry::at_ms(&v), [("V19", 4)], "{v:?}");
        assert!(v[0].detail.contains("began stopping subscriptions:jobs while completer:jobs"), "{}", v[0].detail);
        // A crash forgets the group's start.
        let crash = Ev(4000, "n1", None, Some(Fact::NodeCrash));
        assert!(group_starts(&[begun(1), started(2, subs, 1), ok(2, subs), crash, ended(5, false)]).is_empty());
    }

    /// A completer's stop that returned `ok` false, as a member of a group.
    fn completer_stop_failed(t_ms: u64, completer: &'static str) -> Ev {
        let e = keel::observe::CompleterEvent::StopReturned {
            completer: completer.into(),
            run: 1,
            ok: false,
            unflushed: 0,
            undelivered: 0,
            producers_left: 1,
        };
        Ev(t_ms * 1000, "n1", Some(Event::Completer(e.to_static())), None)
    }

    /// A failed group start returns its own error, not its members': the stop errors of the
    /// services it started are heard by it, and only theirs (another member's error still must
    /// reach its group's stop).
    #[test]
    fn a_failed_group_start_hears_only_its_own_members_stop_errors() {
        let start_ended = group(3, LifecycleEvent::GroupStartEnded { services: vec!["completer:c".into()], ok: false });
        let stopped = |t_ms: u64, member: &'static str| {
            group(t_ms, LifecycleEvent::GroupStopped { services: vec![member.into()], failed: None })
        };
        let h = [completer_stop_failed(1, "c"), start_ended.clone(), stopped(4, "completer:c")];
        assert!(group_stops_hear_member_errors(&h).is_empty(), "{:?}", group_stops_hear_member_errors(&h));
        let h = [completer_stop_failed(1, "c"), completer_stop_failed(2, "d"), start_ended, stopped(4, "completer:d")];
        let v = group_stops_hear_member_errors(&h);
        assert_eq!(crate::test_entry::at_ms(&v), [("V9", 4)], "{v:?}");
        assert!(v[0].detail.contains("without the error of its service completer:d"), "{}", v[0].detail);
    }

    /// Each rule of this file reports its first 20 violations, no more.
    #[test]
    fn the_first_20_violations_are_reported() {
        const NAMES: [&str; 22] = [
            "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12", "s13", "s14", "s15",
            "s16", "s17", "s18", "s19", "s20", "s21",
        ];
        // V15: 21 runs started while run 1 still runs.
        let h: Vec<Ev> = (1..=22).map(|run| started(run, "s", run)).collect();
        let v = services_run_one_at_a_time(&h);
        assert_eq!(v.len(), 20, "{v:?}");
        assert_eq!((v[0].t_us, v[19].t_us), (2_000, 21_000));
        // V5: 21 stops returned while the run still runs.
        let mut h = vec![started(1, "s", 1)];
        h.extend((2..=22).map(|t_ms| at(t_ms, "n1", LifecycleEvent::StopReturned { service: "s".into(), run: 1 })));
        let v = stops_wait_for_their_run(&h);
        assert_eq!(v.len(), 20, "{v:?}");
        assert_eq!((v[0].t_us, v[19].t_us), (2_000, 21_000));
        // V9: 21 members' stop errors the group's stop never heard.
        let mut h: Vec<Ev> = NAMES[..21].iter().map(|c| completer_stop_failed(1, c)).collect();
        let members: Vec<String> = NAMES[..21].iter().map(|c| format!("completer:{c}")).collect();
        let services = members.iter().map(Into::into).collect();
        h.push(at(2, "n1", LifecycleEvent::GroupStopped { services, failed: None }));
        let v = group_stops_hear_member_errors(&h);
        assert_eq!(v.len(), 20, "{v:?}");
        assert!(v[19].detail.contains("its service completer:s19,"), "{}", v[19].detail);
        // V19: a group of 22 started in declared order, each outcome out of turn.
        let mut h =
            vec![group(1, LifecycleEvent::GroupStartBegun { services: NAMES.iter().map(|s| (*s).into()).collect() })];
        h.extend(NAMES.iter().zip(2..).map(|(s, t_ms)| ok(t_ms, s)));
        let v = group_starts(&h);
        assert_eq!(v.len(), 20, "{v:?}");
        assert_eq!((v[0].t_us, v[19].t_us), (2_000, 21_000));
    }

    /// Only a failed start's stops are judged for their order: a service of a start not (yet)
    /// failed that exits, or begins to stop, while one declared before it runs is no violation.
    #[test]
    fn a_start_that_has_not_failed_leaves_its_services_stops_unjudged() {
        let (subs, comp) = ("subscriptions:jobs", "completer:jobs");
        let going = [begun(1), started(2, subs, 1), ok(2, subs), started(3, comp, 1), ok(3, comp)];
        let stop_begun = group(4, LifecycleEvent::StopBegun { service: subs.into(), run: 1 });
        let h = [going.as_slice(), &[stop_begun, exited(5, subs, 1), ok(6, "p0"), ended(7, true)]].concat();
        assert!(group_starts(&h).is_empty(), "{:?}", group_starts(&h));
    }
}
