//! Every application node's life in one run — up, crashed, paused, resumed, restarted, and which
//! incarnation ran when — derived once from the world's events and used by every scenario.
//!
//! Before it existed each scenario derived these spans itself, and they drifted: the lease
//! scenario treated a node that crashed while paused as paused until the end of the run, so an
//! overlap after its restart was never judged. Here a crash ends the frozen time, always.

use std::collections::BTreeMap;

use crate::check::Span;
use crate::history::{Event, Who, WorldEv};

/// How an incarnation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// Killed (a crash, or the kill that ends a graceful restart).
    Crashed,
    /// Still running when the run ended.
    RunEnd,
}

/// One incarnation of a node: from its start to its crash (or the end of the run).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Life {
    /// 1 for the first start, then one more per restart.
    pub incarnation: u32,
    /// When it started (µs).
    pub start: u64,
    /// When it ended (µs).
    pub end: u64,
    /// How it ended.
    pub how: End,
    /// When a graceful stop was requested, if one was.
    pub stop_requested: Option<u64>,
    /// Frozen intervals; one frozen when it crashed ends at the crash.
    pub pauses: Vec<Span>,
}

impl Life {
    /// Whether `t` falls in this incarnation.
    pub fn contains(&self, t: u64) -> bool {
        self.start <= t && t < self.end.max(self.start + 1)
    }

    /// Whether the node was frozen at `t`.
    pub fn paused_at(&self, t: u64) -> bool {
        self.pauses.iter().any(|p| p.start <= t && t < p.end)
    }
}

/// Every node's lives.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    lives: BTreeMap<Who, Vec<Life>>,
    end_us: u64,
}

impl Timeline {
    /// Derive the timeline from a run's history; `end_us` closes what is still open.
    pub fn derive(events: &[Event], end_us: u64) -> Timeline {
        let mut lives: BTreeMap<Who, Vec<Life>> = BTreeMap::new();
        // node → (open life, pause start)
        let mut open: BTreeMap<Who, (Life, Option<u64>)> = BTreeMap::new();
        for e in events {
            let Some(w) = e.world() else { continue };
            let t = e.t_us;
            match w {
                WorldEv::NodeStart {} => {
                    let n = lives.get(&e.node).map_or(0, Vec::len) + usize::from(open.contains_key(&e.node));
                    if let Some((mut l, paused)) = open.remove(&e.node) {
                        // A start without a recorded crash: the old incarnation ends here.
                        close(&mut l, paused, t, End::Crashed);
                        lives.entry(e.node).or_default().push(l);
                    }
                    let life = Life {
                        incarnation: u32::try_from(n + 1).unwrap_or(u32::MAX),
                        start: t,
                        end: end_us,
                        how: End::RunEnd,
                        stop_requested: None,
                        pauses: Vec::new(),
                    };
                    open.insert(e.node, (life, None));
                }
                WorldEv::NodeCrash {} => {
                    if let Some((mut l, paused)) = open.remove(&e.node) {
                        close(&mut l, paused, t, End::Crashed);
                        lives.entry(e.node).or_default().push(l);
                    }
                }
                WorldEv::NodePause {} => {
                    if let Some((_, p)) = open.get_mut(&e.node) {
                        p.get_or_insert(t);
                    }
                }
                WorldEv::NodeResume {} => {
                    if let Some((l, p)) = open.get_mut(&e.node)
                        && let Some(s) = p.take()
                    {
                        l.pauses.push(Span { start: s, end: t });
                    }
                }
                WorldEv::NodeStop {} => {
                    if let Some((l, _)) = open.get_mut(&e.node) {
                        l.stop_requested.get_or_insert(t);
                    }
                }
                _ => {}
            }
        }
        for (node, (mut l, paused)) in open {
            close(&mut l, paused, end_us, End::RunEnd);
            lives.entry(node).or_default().push(l);
        }
        Timeline { lives, end_us }
    }

    /// The end of the run (µs).
    pub fn end_us(&self) -> u64 {
        self.end_us
    }

    /// Every life of `node`, in order.
    pub fn lives(&self, node: Who) -> &[Life] {
        self.lives.get(&node).map_or(&[], Vec::as_slice)
    }

    /// The life of `node` at `t`, if it was up (running or frozen) then.
    ///
    /// At a restart in the instant of a crash, the instant belongs to the old life: madsim drops
    /// the killed incarnation's tasks lazily, so their `Drop` guards report in that instant,
    /// after the new incarnation's start event (completer seed 196: a dying run's events were
    /// taken for the new incarnation's).
    pub fn life_at(&self, node: Who, t: u64) -> Option<&Life> {
        let lives = self.lives(node);
        let i = lives.iter().position(|l| l.contains(t))?;
        match i.checked_sub(1).map(|p| &lives[p]) {
            Some(prev) if lives[i].start == t && prev.end == t && prev.how == End::Crashed => Some(prev),
            _ => Some(&lives[i]),
        }
    }

    /// Whether `node` was up and not frozen at `t`.
    pub fn running_at(&self, node: Who, t: u64) -> bool {
        self.life_at(node, t).is_some_and(|l| !l.paused_at(t))
    }

    /// Every frozen interval of `node`, across its lives.
    pub fn frozen(&self, node: Who) -> impl Iterator<Item = Span> + '_ {
        self.lives(node).iter().flat_map(|l| l.pauses.iter().copied())
    }

    /// Every node with at least one life.
    pub fn nodes(&self) -> impl Iterator<Item = Who> + '_ {
        self.lives.keys().copied()
    }
}

fn close(l: &mut Life, paused: Option<u64>, t: u64, how: End) {
    if let Some(s) = paused {
        l.pauses.push(Span { start: s, end: t });
    }
    l.end = t;
    l.how = how;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Ev;

    fn ev(t_us: u64, node: u8, w: WorldEv) -> Event {
        Event { t_us, node: Who::Node(node), ev: Ev::World(w) }
    }

    #[test]
    fn a_crash_while_paused_ends_the_frozen_time_and_the_life() {
        let events = [
            ev(0, 0, WorldEv::NodeStart {}),
            ev(100, 0, WorldEv::NodePause {}),
            ev(300, 0, WorldEv::NodeCrash {}),
            ev(500, 0, WorldEv::NodeStart {}),
            ev(700, 0, WorldEv::NodePause {}),
        ];
        let tl = Timeline::derive(&events, 1000);
        let lives = tl.lives(Who::Node(0));
        assert_eq!(lives.len(), 2);
        assert_eq!(lives[0].pauses, vec![Span { start: 100, end: 300 }]);
        assert_eq!((lives[0].end, lives[0].how), (300, End::Crashed));
        assert_eq!(lives[1].incarnation, 2);
        assert_eq!(lives[1].pauses, vec![Span { start: 700, end: 1000 }], "still frozen at the end");
        assert!(tl.running_at(Who::Node(0), 600));
        assert!(!tl.running_at(Who::Node(0), 400), "down between the crash and the restart");
        assert!(!tl.running_at(Who::Node(0), 200), "frozen");
    }

    #[test]
    fn the_instant_of_a_restart_at_a_crash_belongs_to_the_dying_life() {
        let events =
            [ev(0, 0, WorldEv::NodeStart {}), ev(300, 0, WorldEv::NodeCrash {}), ev(300, 0, WorldEv::NodeStart {})];
        let tl = Timeline::derive(&events, 1000);
        let at = |t| tl.life_at(Who::Node(0), t).map(|l| l.incarnation);
        assert_eq!(at(299), Some(1));
        assert_eq!(at(300), Some(1), "the killed tasks' drop guards report in the crash instant");
        assert_eq!(at(301), Some(2));
    }
}
