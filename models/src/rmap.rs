//! The rmap replica: the real [`Replica`] following a feed of the real [`StoreState`]'s changes.
//!
//! A writer runs a fixed script of writes (one-key writes and a two-key transaction). Every
//! change goes onto the replica's feed, which may deliver a change late (out of order),
//! deliver it twice, or lose it (the feed then reports a gap, as `Watch` promises). The replica
//! follows the feed with the follower's rules (`Replica::on_change`, `Replica::resyncs_on_gap`,
//! shared with `keel::rmap::driver`), resyncs from a snapshot when they say so, and may also
//! resync at any point (anti-entropy).
//!
//! The store persists a checkpoint at any point and may restart from it (a roll-back: a crash
//! under `appendfsync everysec`, a failover to a lagging replica), which loses the changes after
//! the checkpoint. The feed's connection breaks with the restart: what it already carried is
//! still delivered, then a gap (the watch resubscribes). A resync may come between the restart
//! and that gap: its snapshot is of the restored data, and the feed still holds lost changes
//! numbered on from the restored revision (keel's MC45).

use std::collections::BTreeMap;

use keel::mutants::{self, Mutant};
use keel::rmap::{Replica, Verdict};
use keel::store::{Change, MapWrite, StoreState, WatchEvent};
use stateright::{Model, Property};

use super::Explain;

const MAP: &str = "m";

/// Bounds of one rmap model.
#[derive(Clone, Debug)]
pub struct RmapModel {
    /// Changes delivered out of order, per run.
    pub late_max: u8,
    /// Changes delivered twice, per run.
    pub duplicates_max: u8,
    /// Changes lost (the feed reports a gap), per run.
    pub losses_max: u8,
    /// Resyncs not asked for by the feed (anti-entropy), per run.
    pub resyncs_max: u8,
    /// Store restarts from the last checkpoint (roll-backs), per run.
    pub rollbacks_max: u8,
    /// The historical bug switched on while exploring (None = the fixed code).
    pub mutant: Option<Mutant>,
}

impl Default for RmapModel {
    fn default() -> Self {
        RmapModel { late_max: 1, duplicates_max: 1, losses_max: 2, resyncs_max: 1, rollbacks_max: 1, mutant: None }
    }
}

/// The writer's script: `(key, value)` writes; a step with two pairs is one transaction.
fn script() -> Vec<Vec<(&'static str, Option<&'static str>)>> {
    vec![vec![("a", Some("1"))], vec![("b", Some("1"))], vec![("a", Some("2")), ("b", None)]]
}

/// The whole system.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State {
    /// Store time, ms (advances with each write).
    t_ms: u64,
    store: StoreState,
    /// What the store persisted last: a restart comes back with it.
    checkpoint: StoreState,
    /// Revisions `(kept, had]` the store acknowledged and then lost in its `n`-th restart.
    lost: Vec<(u64, u64, u8)>,
    /// Writes of the script done.
    written: usize,
    feed: Vec<WatchEvent>,
    replica: Replica,
    /// The follower decided to resync (or has not joined yet): it is fetching a snapshot.
    resyncing: bool,
    late: u8,
    duplicates: u8,
    losses: u8,
    resyncs: u8,
    rollbacks: u8,
    /// Restarts before the replica's last snapshot: a lost change applied before its restart's
    /// data was loaded was seen before the loss (nothing can tell yet); after, never.
    loaded_after: u8,
    /// The store rolled back since the replica last loaded a snapshot (a load may go back then).
    rolled_back_since_load: bool,
    /// History flag: the replica's revision went down (other than by loading the data a
    /// roll-back restored).
    went_back: bool,
    /// History flag: the replica applied a change the store had already lost.
    applied_lost: bool,
}

/// What can happen next.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// The writer applies its next write.
    Write,
    /// The feed delivers its event at this position (0 = in order, more = a late one overtaken).
    Deliver(usize),
    /// The feed delivers the event at this position and keeps a copy to deliver again.
    Duplicate(usize),
    /// The feed loses the change at this position and reports a gap instead.
    Lose(usize),
    /// The replica loads a fresh snapshot (asked for by the follower, or anti-entropy).
    Resync,
    /// The store persists its data (the checkpoint a roll-back returns to).
    Persist,
    /// The store restarts from its checkpoint, losing what came after it.
    Rollback,
}

impl RmapModel {
    fn deliver(st: &mut State, ev: WatchEvent) {
        let before = st.replica.rev();
        match ev {
            WatchEvent::Gap => {
                if Replica::resyncs_on_gap() {
                    st.resyncing = true;
                }
            }
            WatchEvent::Change(c) => match st.replica.on_change(&c) {
                Verdict::Gap { .. } | Verdict::AfterRestart => st.resyncing = true,
                Verdict::Applied => {
                    let lost = |&(kept, had, n): &(u64, u64, u8)| kept < c.rev && c.rev <= had && n <= st.loaded_after;
                    st.applied_lost |= st.lost.iter().any(lost);
                }
                Verdict::Stale => {}
            },
        }
        st.went_back |= st.replica.rev() < before;
    }

    fn quiescent(&self, st: &State) -> bool {
        st.written == script().len() && st.feed.is_empty() && !st.resyncing
    }
}

impl Model for RmapModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        mutants::set(self.mutant);
        vec![State {
            t_ms: 1,
            store: StoreState::default(),
            checkpoint: StoreState::default(),
            lost: Vec::new(),
            written: 0,
            feed: Vec::new(),
            replica: Replica::default(),
            resyncing: true, // join: subscribe, then snapshot
            late: 0,
            duplicates: 0,
            losses: 0,
            resyncs: 0,
            rollbacks: 0,
            loaded_after: 0,
            rolled_back_since_load: false,
            went_back: false,
            applied_lost: false,
        }]
    }

    fn actions(&self, st: &State, actions: &mut Vec<Action>) {
        if st.written < script().len() {
            actions.push(Action::Write);
        }
        if st.resyncing {
            actions.push(Action::Resync);
        } else {
            for k in 0..st.feed.len() {
                if k == 0 || st.late < self.late_max {
                    actions.push(Action::Deliver(k));
                }
                if st.duplicates < self.duplicates_max {
                    actions.push(Action::Duplicate(k));
                }
            }
            if st.resyncs < self.resyncs_max {
                actions.push(Action::Resync);
            }
        }
        if st.rollbacks < self.rollbacks_max {
            if st.checkpoint != st.store {
                actions.push(Action::Persist);
            }
            actions.push(Action::Rollback);
        }
        if st.losses < self.losses_max {
            for (k, ev) in st.feed.iter().enumerate() {
                if matches!(ev, WatchEvent::Change(_)) {
                    actions.push(Action::Lose(k));
                }
            }
        }
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        // The switch is per thread, and the checker explores in threads of its own.
        mutants::set(self.mutant);
        let mut st = last.clone();
        match action {
            Action::Write => {
                let step = script().into_iter().nth(st.written)?;
                st.t_ms += 1;
                let changes: Vec<Change> = if let [(k, v)] = step.as_slice() {
                    let w = v.map_or(MapWrite::Delete, |v| MapWrite::Set(v.to_owned()));
                    st.store.map_write(MAP, k, &w, st.t_ms).ok()?.1
                } else {
                    let writes: Vec<(String, Option<String>)> =
                        step.iter().map(|(k, v)| ((*k).to_owned(), v.map(str::to_owned))).collect();
                    st.store.map_txn(MAP, &[], &writes, st.t_ms).ok()?.1
                };
                st.feed.extend(changes.into_iter().map(WatchEvent::Change));
                st.written += 1;
            }
            Action::Deliver(k) => {
                let ev = st.feed.remove(k);
                if k > 0 {
                    st.late += 1;
                }
                Self::deliver(&mut st, ev);
            }
            Action::Duplicate(k) => {
                let ev = st.feed[k].clone();
                st.duplicates += 1;
                Self::deliver(&mut st, ev);
            }
            Action::Lose(k) => {
                st.feed[k] = WatchEvent::Gap;
                st.losses += 1;
            }
            Action::Resync => {
                if !st.resyncing {
                    st.resyncs += 1;
                }
                let before = st.replica.rev();
                let snap = st.store.map_snapshot(MAP).ok()?;
                let _ = st.replica.load(snap);
                st.went_back |= st.replica.rev() < before && !st.rolled_back_since_load;
                st.rolled_back_since_load = false;
                st.loaded_after = st.rollbacks;
                st.resyncing = false;
            }
            Action::Persist => st.checkpoint = st.store.clone(),
            Action::Rollback => {
                let (kept, had) = (st.checkpoint.map_rev(MAP), st.store.map_rev(MAP));
                if had > kept {
                    st.lost.push((kept, had, st.rollbacks + 1));
                }
                let mut restored = st.checkpoint.clone();
                restored.restart_after(&st.store);
                st.store = restored;
                // The old connection's events are still delivered, then the resubscription's gap.
                st.feed.push(WatchEvent::Gap);
                st.rollbacks += 1;
                st.rolled_back_since_load = true;
            }
        }
        Some(st)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always("R: the replica's revision never goes back", |_, st: &State| !st.went_back),
            Property::always("R8: after loading a restart's data, no change that restart lost", |_, st: &State| {
                !st.applied_lost
            }),
            Property::always("R2: after quiescence the replica equals the store", |m: &Self, st: &State| {
                if !m.quiescent(st) {
                    return true;
                }
                let Ok(snap) = st.store.map_snapshot(MAP) else { return false };
                st.replica.rev() == snap.rev && *st.replica.entries() == snap.entries
            }),
        ]
    }
}

impl Explain for RmapModel {
    fn describe(&self, st: &State) -> String {
        let show =
            |m: &BTreeMap<String, String>| m.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
        let snap = st.store.map_snapshot(MAP).unwrap_or_default();
        let feed: Vec<String> = st
            .feed
            .iter()
            .map(|e| match e {
                WatchEvent::Gap => "gap".to_owned(),
                WatchEvent::Change(c) => format!("{}@{}", c.key, c.rev % 1000),
            })
            .collect();
        format!(
            "store {{{}}}@{} | feed [{}] | replica {{{}}}@{}{}",
            show(&snap.entries),
            snap.rev % 1000,
            feed.join(" "),
            show(st.replica.entries()),
            st.replica.rev() % 1000,
            if st.resyncing { " (resyncing)" } else { "" }
        )
    }
}
