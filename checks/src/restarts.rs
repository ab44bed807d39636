//! P22: a worker slot replaces a dead worker when its restart backoff says, judged at each
//! replacement and at each replacement's deadline.
//!
//! A slot announces its backoff when it starts (`SlotStarted`: `restart_min`, `restart_max`,
//! `reset_after`). Each incarnation lives from the slot's start or its `WorkerReplaced` to its
//! `WorkerDied`; the wait before the next is jittered in `[b/2, b]`, `b = restart_min·2^n` capped
//! at `restart_max`, where `n` counts the incarnations in a row that died within `reset_after`
//! of their start. The rule follows each slot's chain of incarnations and its streak `n`: a death
//! surely young (its life shorter than `reset_after` at the fastest clock allowed) adds one, a
//! death surely old starts over, and one the clock's rate leaves in doubt keeps both (the streak
//! becomes a range). Then, from the death:
//!
//! - the replacement comes no sooner than `b/2` at the lowest streak, less the slack (a restart
//!   storm: a worker that dies at once is replaced at network speed, or a backoff that never
//!   grows because lives are counted from the slot's start, MC72);
//! - and no later than `b` at the highest streak, plus the slack of running time (a backoff that
//!   never starts over, or a slot that forgets its dead worker), unless the slot ended
//!   (`SlotEnded`), the node crashed or restarted, or the run ended first.
//!
//! A chain whose node's clock jumped meanwhile is not judged.

use std::collections::BTreeMap;

use keel::observe::PoolEvent;

use crate::cadence::Clocks;
use crate::rules::reach;
use crate::{Entry, Fact, Span, Violation, plain};

/// Doublings of the backoff before it stays at its max (keel's `RESTART_DOUBLINGS_MAX`).
const MAX_DOUBLINGS: u32 = 16;

/// A slot's backoff, as announced.
#[derive(Clone, Copy, Debug)]
struct Backoff {
    min_us: u64,
    max_us: u64,
    reset_after_us: u64,
}

impl Backoff {
    /// The ceiling `b` of the wait after `n` young deaths in a row.
    fn ceiling_us(&self, n: u32) -> u64 {
        self.min_us.saturating_mul(1u64 << n.min(MAX_DOUBLINGS)).min(self.max_us)
    }
}

/// The live incarnation of one slot.
#[derive(Clone, Copy, Debug)]
struct Incarnation {
    backoff: Backoff,
    /// When it started (global µs).
    born: u64,
    /// The streak of young deaths before it, as a range `lo..=hi`.
    streak: (u32, u32),
    /// Once it died: when, the streak its wait is judged with, and the replacement's deadline.
    died: Option<Death>,
}

#[derive(Clone, Copy, Debug)]
struct Death {
    at: u64,
    streak: (u32, u32),
    due: u64,
}

/// P22 over keel's pool events: see the module's doc. `slowest` and `fastest` are the slowest and
/// fastest rates of a node's clock the history allows; `late_slack_us` of running time is allowed
/// past each ceiling, `early_slack_us` before each floor; `frozen` gives a node's frozen spans;
/// `jumped(node, from, to)` excuses a chain whose node's clock jumped meanwhile; a replacement due
/// after `end_us` is not judged. The first 20 violations.
pub fn pool_restarts_back_off<E: Entry>(
    events: &[E],
    end_us: u64,
    clocks: Clocks<impl Fn(&E::Node) -> Vec<Span>, impl Fn(&E::Node, u64, u64) -> bool>,
) -> Vec<Violation> {
    let Clocks { rates: (slowest, fastest), slacks: (late_slack_us, early_slack_us), frozen, jumped } = clocks;
    let (slowest, fastest) = (slowest.clamp(0.01, 1.0), fastest.max(1.0));
    let mut slots: BTreeMap<(E::Node, &str), Incarnation> = BTreeMap::new();
    let mut frozen_of: BTreeMap<E::Node, Vec<Span>> = BTreeMap::new(); // read once per node
    let mut v = Vec::new();
    let push = |v: &mut Vec<Violation>, t: u64, detail: String| {
        if v.len() < 20 {
            v.push(Violation::new("P22", t, detail));
        }
    };
    // A dead incarnation whose slot neither replaced it nor ended by its deadline, judged where
    // the chain ends (`until`: a crash, the slot's end, the run's end).
    let forgotten = |v: &mut Vec<Violation>, node: &E::Node, worker: &str, inc: &Incarnation, until: u64| {
        if let Some(d) = inc.died
            && d.due < until
            && !jumped(node, inc.born, d.due)
        {
            let detail = format!(
                "{node}: worker {worker} died at {:.3}s, but its slot neither replaced it nor ended within its backoff ({} µs at most)",
                d.at as f64 / 1e6,
                inc.backoff.ceiling_us(d.streak.1),
            );
            push(v, d.due, detail);
        }
    };
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            let gone: Vec<_> = slots.keys().filter(|k| &k.0 == node).cloned().collect();
            for k in gone {
                if let Some(inc) = slots.remove(&k) {
                    forgotten(&mut v, node, k.1, &inc, t);
                }
            }
            continue;
        }
        let Some(ev) = e.pool() else { continue };
        match ev {
            PoolEvent::SlotStarted { worker, restart_min_ms, restart_max_ms, reset_after_ms } => {
                let backoff = Backoff {
                    min_us: restart_min_ms.saturating_mul(1000),
                    max_us: restart_max_ms.saturating_mul(1000),
                    reset_after_us: reset_after_ms.saturating_mul(1000),
                };
                slots.insert(
                    (node.clone(), plain(worker)),
                    Incarnation { backoff, born: t, streak: (0, 0), died: None },
                );
            }
            PoolEvent::WorkerDied { worker, .. } => {
                let Some(inc) = slots.get_mut(&(node.clone(), plain(worker))) else { continue };
                let lived = t.saturating_sub(inc.born) as f64;
                let reset = inc.backoff.reset_after_us as f64;
                let (lo, hi) = inc.streak;
                // Its life on the node's clock lies within [lived·slowest, lived·fastest].
                let streak = if lived * slowest >= reset {
                    (0, 0) // surely old: the doubling starts over
                } else if lived * fastest < reset {
                    (lo, hi) // surely young
                } else {
                    (0, hi)
                };
                let wait = (inc.backoff.ceiling_us(streak.1) as f64 / slowest) as u64;
                let holes = frozen_of.entry(node.clone()).or_insert_with(|| frozen(node));
                let due = reach(t, wait.saturating_add(late_slack_us), holes);
                inc.died = Some(Death { at: t, streak, due });
            }
            PoolEvent::SlotEnded { worker, .. } => {
                if let Some(inc) = slots.remove(&(node.clone(), plain(worker))) {
                    forgotten(&mut v, node, plain(worker), &inc, t);
                }
            }
            PoolEvent::WorkerReplaced { worker, replaces, .. } => {
                let Some(old) = slots.remove(&(node.clone(), plain(replaces))) else { continue };
                let Some(d) = old.died else {
                    push(
                        &mut v,
                        t,
                        format!("{node}: worker {replaces} replaced by {worker} while alive (no worker_died)"),
                    );
                    continue;
                };
                if old.backoff.max_us == 0 {
                    push(
                        &mut v,
                        t,
                        format!("{node}: worker {replaces} replaced by {worker}, but its slot replaces none"),
                    );
                    continue;
                }
                let (lo, hi) = d.streak;
                if !jumped(node, old.born, t) {
                    let floor_us = old.backoff.ceiling_us(lo) / 2;
                    let floor = d.at.saturating_add((floor_us as f64 / fastest) as u64).saturating_sub(early_slack_us);
                    if t < floor || t > d.due {
                        let (bound, how) = if t < floor {
                            (format!("at least {floor_us} µs"), format!("{} µs early", floor - t))
                        } else {
                            (format!("at most {} µs", old.backoff.ceiling_us(hi)), format!("{} µs late", t - d.due))
                        };
                        push(
                            &mut v,
                            t,
                            format!(
                                "{node}: worker {replaces} died at {:.3}s after living {} µs (its slot's streak of young deaths {}..={} before, {lo}..={hi} after this death), so its replacement was to wait {bound}; {worker} came {} µs after, {how}",
                                d.at as f64 / 1e6,
                                d.at.saturating_sub(old.born),
                                old.streak.0,
                                old.streak.1,
                                t.saturating_sub(d.at),
                            ),
                        );
                    }
                }
                let streak = (lo.saturating_add(1), hi.saturating_add(1));
                slots.insert((node.clone(), plain(worker)), Incarnation { born: t, streak, died: None, ..old });
            }
            _ => {}
        }
    }
    for ((n, w), inc) in &slots {
        forgotten(&mut v, n, w, inc, end_us);
    }
    v.sort_by_key(|x| x.t_us);
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

    /// A slot with backoff 100 ms .. 1 s, reset after a 3 s life.
    fn slot(t_ms: u64, w: &'static str) -> Ev {
        at(
            t_ms,
            PoolEvent::SlotStarted {
                worker: w.into(),
                restart_min_ms: 100,
                restart_max_ms: 1000,
                reset_after_ms: 3000,
            },
        )
    }

    fn died(t_ms: u64, w: &'static str) -> Ev {
        at(t_ms, PoolEvent::WorkerDied { worker: w.into(), exit: "Dead".into() })
    }

    fn replaced(t_ms: u64, w: &'static str, old: &'static str) -> Ev {
        at(t_ms, PoolEvent::WorkerReplaced { worker: w.into(), replaces: old.into(), after_ms: 0 })
    }

    fn judge(h: &[Ev], end_ms: u64) -> Vec<Violation> {
        pool_restarts_back_off(h, end_ms * 1000, crate::steady_clocks(2_000))
    }

    /// Young deaths in a row double the wait: the third replacement waits at least 200 ms. One
    /// 120 ms after the third death (MC72: lives counted from the slot's start, so the backoff
    /// started over) comes early.
    #[test]
    fn a_backoff_grows_while_replacements_die_young() {
        // The first life is long (5 s): the streak starts at 0, so 50..100 ms.
        let h = [
            slot(0, "a"),
            died(5000, "a"),
            replaced(5080, "b", "a"),
            died(5200, "b"),
            replaced(5350, "c", "b"),
            died(5400, "c"),
            replaced(5700, "d", "c"),
        ];
        assert!(judge(&h, 9000).is_empty(), "{:?}", judge(&h, 9000));
        let mut early = h[..6].to_vec();
        early.push(replaced(5520, "d", "c"));
        let v = judge(&early, 9000);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!((v[0].invariant, v[0].t_us), ("P22", 5_520_000));
        assert!(v[0].detail.contains("at least 200000 µs"), "{}", v[0].detail);
    }

    /// A death after a life of `reset_after` starts the doubling over: a 1 s wait after it is
    /// late; a replacement that never comes while the slot goes on is late at its deadline.
    #[test]
    fn a_long_life_starts_the_backoff_over_and_a_replacement_is_due() {
        let h = [slot(0, "a"), died(200, "a"), replaced(300, "b", "a"), died(4000, "b"), replaced(5000, "c", "b")];
        let v = judge(&h, 9000);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].detail.contains("at most 100000 µs"), "{}", v[0].detail);
        // Never replaced: judged at the deadline, unless the slot ended or the run ended first.
        let v = judge(&h[..4], 9000);
        assert_eq!((v.len(), v[0].t_us), (1, 4_102_000), "{v:?}");
        assert!(judge(&h[..4], 4050).is_empty());
        let ended = at(4050, PoolEvent::SlotEnded { worker: "b".into(), exit: "Dead".into() });
        assert!(judge(&[h[0].clone(), h[1].clone(), h[2].clone(), h[3].clone(), ended], 9000).is_empty());
    }

    /// A life the clock's rate leaves in doubt allows both waits; a jump of the node's clock
    /// excuses the chain.
    #[test]
    fn doubt_allows_both_and_a_jump_excuses() {
        // Streak 1 (one young death), then a 2.9 s life: at rate 1.1 it may be 3.19 s (old).
        let h = [slot(0, "a"), died(100, "a"), replaced(190, "b", "a"), died(3090, "b"), replaced(3150, "c", "b")];
        assert!(!judge(&h, 9000).is_empty(), "at rate 1 the life is young: 100..200 ms");
        let lenient = |h: &[Ev]| {
            pool_restarts_back_off(h, 9_000_000, Clocks { rates: (1.0, 1.1), ..crate::steady_clocks(2_000) })
        };
        assert!(lenient(&h).is_empty(), "{:?}", lenient(&h));
        assert!(
            pool_restarts_back_off(&h, 9_000_000, {
                let mut jumping = crate::steady_clocks(2_000);
                jumping.jumped = |_, _, _| true;
                jumping
            })
            .is_empty()
        );
    }
}
