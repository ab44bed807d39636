//! Linearizability of the store operations a run recorded.
//!
//! Every store operation a client sends is recorded as an invoke and, if the client learned its
//! outcome, a return. An operation whose reply never came (timeout, connection reset) stays open
//! forever: it may have been applied at any point after its invoke, or never. The records are
//! plain data with no simulator types in them, so any client (the simulator's `SimStore`, later
//! the real-Redis chaos lane) can produce them in the order things happened.
//!
//! [`check`] splits the records per map and per store lifetime (a data-losing restart starts a
//! new lifetime) and searches (Wing and Gong's search with Lowe's memo, see [`search`]) for an
//! order of the operations, consistent with real time, that explains every result under the store's sequential
//! specification, which is keel's own [`StoreState`]: the very code `MemoryStore` runs, so the
//! specification cannot drift from the implementation under test. Histories too large to check
//! within a run's budget are skipped and counted, never silently passed.
//!
//! Not covered: lease operations (their results depend on the store time at which they apply,
//! which a history does not pin down) and `time`/`watch` (no state).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use keel::store::{Expect, MapSnapshot, MapWrite, StoreState, TxnOutcome, WriteOutcome};
use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use stateright::semantics::SequentialSpec;

/// The checker's hasher for its own lookups (a key's name per record, a search state per step):
/// foldhash's fast hash, several times cheaper than SipHash on short keys. Fixed (no random
/// seed), so every run lays its tables out alike, and only ever asked for membership: no
/// iteration order of a table it hashes reaches a verdict. The keys are the run's own, not an
/// adversary's, so a fast hash's weakness against crafted collisions does not matter here.
type Fx = foldhash::fast::FixedState;

/// Most operations of one history (one map in one store lifetime) the checker takes on: the
/// search is exponential in the worst case. Larger histories are skipped and counted.
pub const HISTORY_OPS_MAX: usize = 100;
/// Most operations left open (outcome unknown) in one checked history: each may be placed
/// anywhere after its invoke, or nowhere, which multiplies the search.
pub const HISTORY_OPEN_MAX: usize = 2;
/// Most steps (candidate operations tried against the specification) the search may take on one
/// history. The ops and open limits keep most histories small, but a few dozen overlapping
/// operations on one key can still make the backtracking search run for hours (rmap seed 343
/// did); a history whose search runs out of steps is counted as over budget, never passed.
pub const SEARCH_STEPS_MAX: u64 = 200_000;

/// A map operation as the client sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum StoreOp {
    /// `map_get`.
    Get {
        /// Map.
        map: String,
        /// Key.
        key: String,
    },
    /// `map_snapshot`.
    Snapshot {
        /// Map.
        map: String,
    },
    /// `map_write`.
    Write {
        /// Map.
        map: String,
        /// Key.
        key: String,
        /// The write.
        write: MapWrite,
    },
    /// `map_txn`.
    Txn {
        /// Map.
        map: String,
        /// Guards.
        guards: Vec<(String, Expect)>,
        /// Writes.
        writes: Vec<(String, Option<String>)>,
    },
    /// Not a client's: the store process restarted keeping its keys ([`Record::Restart`]), at
    /// one instant between the operations before and after it. The map's next commit may take
    /// its revisions from store time again (a store cannot tell a restart that kept its data from
    /// one that rolled it back, so it jumps above any revision it may have lost).
    Restart {
        /// Map.
        map: String,
    },
}

impl StoreOp {
    /// The map the operation reads or writes.
    pub fn map(&self) -> &str {
        match self {
            StoreOp::Get { map, .. }
            | StoreOp::Snapshot { map }
            | StoreOp::Write { map, .. }
            | StoreOp::Txn { map, .. }
            | StoreOp::Restart { map } => map,
        }
    }
}

/// What a client learned of an operation.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum StoreRet {
    /// `map_get`'s value and revision.
    Get(Option<String>, u64),
    /// `map_snapshot`'s snapshot.
    Snapshot(MapSnapshot),
    /// `map_write`'s outcome.
    Write(WriteOutcome),
    /// `map_txn`'s outcome.
    Txn(TxnOutcome),
    /// An error that says the operation was certainly not applied.
    NotApplied,
}

/// One record of a history, in the order it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Record {
    /// A client sent operation `id`.
    Invoke {
        /// Unique per history.
        id: u64,
        /// The operation.
        op: StoreOp,
    },
    /// The client learned the outcome of operation `id`.
    Return {
        /// The invoked operation's id.
        id: u64,
        /// Its outcome.
        ret: StoreRet,
    },
    /// The store restarted and lost every key.
    Reset,
    /// The store restarted keeping every key (see [`StoreOp::Restart`]).
    Restart,
}

/// The verdict on one run's records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Histories (map × store lifetime) checked and found linearizable or not.
    pub checked: u64,
    /// Operations in the checked histories.
    pub ops: u64,
    /// Histories skipped: more than [`HISTORY_OPS_MAX`] operations or [`HISTORY_OPEN_MAX`] open.
    pub skipped: u64,
    /// Histories whose search ran out of [`SEARCH_STEPS_MAX`] steps: neither passed nor failed.
    pub over_budget: u64,
    /// Store lifetimes that started from a checkpoint, after a restart that rolled the data
    /// back (see [`Checker::rolled_back_to`]).
    pub from_checkpoint: u64,
    /// Non-linearizable histories, in words.
    pub violations: Vec<String>,
}

impl Report {
    /// Add another run's report.
    pub fn merge(&mut self, o: &Report) {
        self.checked += o.checked;
        self.ops += o.ops;
        self.skipped += o.skipped;
        self.over_budget += o.over_budget;
        self.from_checkpoint += o.from_checkpoint;
        self.violations.extend(o.violations.iter().cloned());
    }
}

/// The sequential specification of one map: keel's [`StoreState`].
///
/// The store seeds a map's first revision from its clock (`time_ms * 1000`), which a history
/// does not record. The specification runs at a fixed time ([`SPEC_TIME_MS`]) and learns the
/// constant offset from the first revision a client saw; every later revision must agree.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MapSpec {
    state: StoreState,
    /// Seen revision minus specified revision (either may be the larger).
    offset: Option<i128>,
    /// The store restarted since the map's last commit: the next commit may raise the offset.
    jump: bool,
    /// The commit that took the restart's jump was a write still in flight (no outcome seen),
    /// at this specified revision: the first revision seen at or past it may raise the offset.
    /// Without it, a read of the jumped revision after an open write (the first commit after a
    /// restart, its reply lost) found no order: a false L1 (poolloss seed 278, the cleanup map).
    open_jump: Option<u64>,
}

/// The store time at which the specification applies every write. Not 0: a store's clock is
/// past its epoch, and `StoreState` asserts that a map's seeded revision is not 0 (the revision
/// of a map that does not exist).
const SPEC_TIME_MS: u64 = 1;

impl MapSpec {
    fn new() -> Self {
        MapSpec { state: StoreState::default(), offset: None, jump: false, open_jump: None }
    }

    /// The map as a lifetime started: empty, or a checkpoint's (its revisions the store's own,
    /// and its next commit free to jump: the store restarted).
    fn starting_from(map: &str, start: Option<&MapSnapshot>) -> Self {
        match start {
            None => MapSpec::new(),
            Some(s) => MapSpec { state: StoreState::with_map(map, s), offset: Some(0), jump: true, open_jump: None },
        }
    }

    fn run(&mut self, op: &StoreOp) -> StoreRet {
        let r = match op {
            StoreOp::Get { map, key } => self.state.map_get(map, key).map(|(v, r)| StoreRet::Get(v, r)),
            StoreOp::Snapshot { map } => self.state.map_snapshot(map).map(StoreRet::Snapshot),
            StoreOp::Write { map, key, write } => {
                self.state.map_write(map, key, write, SPEC_TIME_MS).map(|o| StoreRet::Write(o.0))
            }
            StoreOp::Txn { map, guards, writes } => {
                self.state.map_txn(map, guards, writes, SPEC_TIME_MS).map(|o| StoreRet::Txn(o.0))
            }
            StoreOp::Restart { .. } => Ok(StoreRet::NotApplied),
        };
        r.unwrap_or(StoreRet::NotApplied)
    }

    /// Whether a seen revision matches a specified one, learning the offset on first sight. The
    /// first commit after a restart may raise it (`committed`: the operation took revisions).
    fn same_rev(&mut self, seen: u64, spec: u64, committed: bool) -> bool {
        match (seen, spec) {
            (0, 0) => true,
            (0, _) | (_, 0) => false,
            _ => {
                let diff = i128::from(seen) - i128::from(spec);
                let offset = self.offset.get_or_insert(diff);
                if committed && std::mem::take(&mut self.jump) && diff > *offset {
                    *offset = diff;
                }
                if self.open_jump.is_some_and(|at| spec >= at) {
                    self.open_jump = None;
                    if diff > *offset {
                        *offset = diff;
                    }
                }
                *offset == diff
            }
        }
    }
}

impl SequentialSpec for MapSpec {
    type Op = StoreOp;
    type Ret = StoreRet;

    /// An operation still in flight (no outcome seen): applied, and if it is the commit a
    /// restart lets jump, the jump waits for the first revision seen past it ([`MapSpec::open_jump`]).
    fn invoke(&mut self, op: &StoreOp) -> StoreRet {
        let before = self.state.map_rev(op.map());
        let r = self.run(op);
        let after = self.state.map_rev(op.map());
        if after != before && std::mem::take(&mut self.jump) {
            self.open_jump = Some(after);
        }
        r
    }

    fn is_valid_step(&mut self, op: &StoreOp, seen: &StoreRet) -> bool {
        if let StoreOp::Restart { .. } = op {
            self.jump = true;
            return true;
        }
        if *seen == StoreRet::NotApplied {
            return true; // certainly not applied: no effect, any order
        }
        let before = self.state.map_rev(op.map());
        let spec = self.run(op);
        let committed = self.state.map_rev(op.map()) != before;
        match (seen, spec) {
            (StoreRet::Get(v, r), StoreRet::Get(sv, sr)) => *v == sv && self.same_rev(*r, sr, false),
            (StoreRet::Snapshot(s), StoreRet::Snapshot(ss)) => {
                s.entries == ss.entries && self.same_rev(s.rev, ss.rev, false)
            }
            (StoreRet::Write(w), StoreRet::Write(sw)) => {
                w.applied == sw.applied && w.value == sw.value && self.same_rev(w.rev, sw.rev, committed)
            }
            (StoreRet::Txn(t), StoreRet::Txn(st)) => t.applied == st.applied && self.same_rev(t.rev, st.rev, committed),
            _ => false,
        }
    }
}

/// Check every map history in `records`: whole (values and revisions) when small enough,
/// else key by key (values). The records go through the same incremental [`Checker`] a
/// simulated run feeds as it goes.
pub fn check(records: Vec<Record>) -> Report {
    let mut c = Checker::default();
    for r in records {
        c.record(r);
    }
    c.finish()
}

/// The linearizability checker, fed records as they happen and judging as it goes, so that its
/// cost and memory follow what is in flight, not the run's length.
///
/// Histories are split per store lifetime, then per map. A map stays whole (values and
/// revisions judged together at the end) while it fits the limits; past [`HISTORY_OPS_MAX`]
/// operations it is judged key by key (P-compositionality: a map is linearizable on values iff
/// each key is). A key's history is judged incrementally: whenever none of its operations is in
/// flight (a quiescent point), every operation so far precedes, in real time, every operation to
/// come, so the records so far are searched for every order that explains them, the values the
/// key may hold after them are kept, and the records are dropped. The next stretch starts from
/// those values. This is exact (the same verdict as one search over the whole history), and the
/// limits now bound each stretch between two quiescent points, not the key's whole life.
///
/// A snapshot reads every key: it joins the stretch of every key with operations in flight
/// (and of every key whose stretch starts while it is), and a quiescent key's value in it is
/// judged on the spot against the values the key may hold. A key present in a snapshot that no
/// operation of the lifetime named is a value nobody wrote.
#[derive(Default)]
pub struct Checker {
    lifetime: usize,
    /// Map name → index in `maps`.
    names: BTreeMap<String, usize>,
    maps: Vec<(String, MapHist)>,
    /// Operations in flight: id → (map index, operation).
    open: BTreeMap<u64, (usize, StoreOp)>,
    /// Operations in flight at a reset: open forever in both lifetimes, whatever they return is
    /// dropped (they may equally have been applied before the restart). A write keeps its
    /// operation: still in flight at a later reset, it may land in that lifetime too.
    spanning: BTreeMap<u64, Option<StoreOp>>,
    /// The data the current lifetime started from: the checkpoint a roll-back restarted from
    /// (None: empty, at the start of a run or after a data loss).
    initial: Option<StoreState>,
    /// Restarts recorded into map histories: their ids count down from `u64::MAX`, clear of
    /// the clients' ids.
    restarts: u64,
    report: Report,
}

/// An outcome, owned or lent.
enum Ret<'a> {
    Owned(StoreRet),
    Snapshot(&'a MapSnapshot),
}

impl Ret<'_> {
    fn owned(self) -> StoreRet {
        match self {
            Ret::Owned(r) => r,
            Ret::Snapshot(s) => StoreRet::Snapshot(s.clone()),
        }
    }
}

/// One map's history in the current store lifetime.
enum MapHist {
    /// Small so far: every record kept, judged as a whole at the end. `sure` counts the
    /// operations certain to count against [`HISTORY_OPS_MAX`]: writes, and reads that returned
    /// (a read that never returns is dropped).
    /// `forever`: writes known open forever (given up on, or in flight at a reset).
    Whole { records: Records<StoreOp, StoreRet>, sure: usize, forever: Vec<u64> },
    /// Too large as a whole: judged key by key, as the records come.
    Keys(KeyHists),
}

impl Checker {
    /// Feed one record of a history (what a simulated run feeds call by call).
    pub fn record(&mut self, r: Record) {
        match r {
            Record::Invoke { id, op } => self.invoke(id, op),
            Record::Return { id, ret } => self.complete(id, ret),
            Record::Reset => self.reset(),
            Record::Restart => self.restart(),
        }
    }

    /// Operation `id` was sent.
    pub fn invoke(&mut self, id: u64, op: StoreOp) {
        let m = self.map_index(op.map());
        let (_, hist) = &mut self.maps[m];
        match hist {
            MapHist::Whole { records, sure, .. } => {
                if !op.is_read() {
                    *sure += 1;
                }
                records.push((id, Some(op.clone()), None));
            }
            MapHist::Keys(keys) => keys.invoke(id, &op),
        }
        self.open.insert(id, (m, op));
        self.maybe_split(m);
    }

    /// The client learned the outcome of operation `id`.
    pub fn complete(&mut self, id: u64, ret: StoreRet) {
        self.returned(id, Ret::Owned(ret));
    }

    /// The client learned snapshot `id`, lent: a key-by-key map judges it where it lies.
    pub fn complete_snapshot(&mut self, id: u64, snapshot: &MapSnapshot) {
        self.returned(id, Ret::Snapshot(snapshot));
    }

    fn returned(&mut self, id: u64, ret: Ret<'_>) {
        if self.spanning.remove(&id).is_some() {
            return;
        }
        let Some((m, op)) = self.open.remove(&id) else { return };
        let (map, hist) = &mut self.maps[m];
        match (hist, ret) {
            (MapHist::Whole { records, sure, .. }, ret) => {
                if op.is_read() {
                    *sure += 1;
                }
                records.push((id, None, Some(ret.owned())));
            }
            (MapHist::Keys(keys), Ret::Snapshot(s)) if op.is_snapshot() => {
                keys.snapshot_returned(id, Some(&s.entries), map, self.lifetime, &mut self.report)
            }
            (MapHist::Keys(keys), ret) => keys.complete(id, &op, &ret.owned(), map, self.lifetime, &mut self.report),
        }
        self.maybe_split(m);
    }

    /// The client gave up on operation `id` without learning its outcome: a write stays open
    /// forever (it may land at any later point, or never); a read constrains nothing and is
    /// dropped.
    pub fn abandon(&mut self, id: u64) {
        if self.spanning.remove(&id).is_some() {
            return;
        }
        let Some((m, op)) = self.open.remove(&id) else { return };
        let (map, hist) = &mut self.maps[m];
        match hist {
            MapHist::Whole { records, forever, .. } => {
                if op.is_read() {
                    records.retain(|r| r.0 != id);
                } else {
                    forever.push(id);
                }
            }
            MapHist::Keys(keys) => keys.abandon(id, &op, map, self.lifetime, &mut self.report),
        }
    }

    /// The store restarted and lost every key: judge the lifetime that ended and start a new one.
    /// Writes in flight stay open in both lifetimes.
    pub fn reset(&mut self) {
        self.new_lifetime(None);
    }

    /// Judge the lifetime that ended and start one from `initial`; writes in flight stay open
    /// in both (one may still land).
    fn new_lifetime(&mut self, initial: Option<StoreState>) {
        self.end_lifetime();
        self.lifetime += 1;
        self.initial = initial;
        // Writes in flight: those sent in the lifetime that ended, and those still in flight
        // from an earlier one (a call may wait out several restarts before it is sent).
        for (id, (_, op)) in std::mem::take(&mut self.open) {
            self.spanning.insert(id, (!op.is_read()).then_some(op));
        }
        let carried: Vec<(u64, StoreOp)> =
            self.spanning.iter().filter_map(|(id, op)| op.clone().map(|op| (*id, op))).collect();
        for (id, op) in carried {
            let m = self.map_index(op.map());
            let (map, hist) = &mut self.maps[m];
            match hist {
                MapHist::Whole { records, sure, forever } => {
                    *sure += 1;
                    records.push((id, Some(op), None));
                    forever.push(id);
                }
                MapHist::Keys(keys) => {
                    keys.invoke(id, &op);
                    keys.abandon(id, &op, map, self.lifetime, &mut self.report);
                }
            }
            self.maybe_split(m);
        }
    }

    /// The store restarted keeping every key: each map judged whole gets the restart at this
    /// instant, after which its next commit may take revisions from store time again. (A map
    /// judged key by key is judged on values only.)
    pub fn restart(&mut self) {
        for (map, hist) in &mut self.maps {
            if let MapHist::Whole { records, .. } = hist {
                self.restarts += 1;
                let id = u64::MAX - self.restarts;
                records.push((id, Some(StoreOp::Restart { map: map.clone() }), None));
                records.push((id, None, Some(StoreRet::NotApplied)));
            }
        }
    }

    /// The store restarted from `saved`, a checkpoint: everything written since is lost. Judge
    /// the lifetime that ended and start one from the checkpoint's values and revisions, each
    /// map's next commit free to jump (a restart). Writes in flight stay open in both lifetimes.
    pub fn rolled_back_to(&mut self, saved: &StoreState) {
        self.new_lifetime(Some(saved.clone()));
        self.report.from_checkpoint += 1;
    }

    /// Judge what is left (operations still in flight never returned) and return the verdict.
    pub fn finish(mut self) -> Report {
        self.end_lifetime();
        self.report
    }

    fn end_lifetime(&mut self) {
        for (_, m) in std::mem::take(&mut self.names) {
            let (map, hist) = std::mem::replace(&mut self.maps[m], (String::new(), MapHist::empty()));
            match hist {
                MapHist::Whole { records, forever, .. } => {
                    let records = without_open_reads(records);
                    let start = self.start_of(&map);
                    if fits(&records) {
                        match run_tester(MapSpec::starting_from(&map, start.as_ref()), &records) {
                            Verdict::Linearizable => {}
                            Verdict::OverBudget => {
                                self.report.over_budget += 1;
                                continue;
                            }
                            Verdict::Not(e) => self
                                .report
                                .violations
                                .push(format!("map {map:?} (store lifetime {}): {e}", self.lifetime)),
                        }
                        self.report.checked += 1;
                        self.report.ops += invokes(&records);
                    } else {
                        let mut keys =
                            KeyHists::replay(records, &forever, start.as_ref(), &map, self.lifetime, &mut self.report);
                        keys.finish(&map, self.lifetime, &mut self.report);
                    }
                }
                MapHist::Keys(mut keys) => keys.finish(&map, self.lifetime, &mut self.report),
            }
        }
        self.maps.clear();
    }

    /// Map `map` as the current lifetime started: its checkpoint, if it had one there.
    fn start_of(&self, map: &str) -> Option<MapSnapshot> {
        self.initial.as_ref().and_then(|s| s.map_snapshot(map).ok()).filter(|s| s.rev > 0)
    }

    fn map_index(&mut self, map: &str) -> usize {
        if let Some(m) = self.names.get(map) {
            return *m;
        }
        self.names.insert(map.to_owned(), self.maps.len());
        self.maps.push((map.to_owned(), MapHist::empty()));
        self.maps.len() - 1
    }

    /// A whole map past the limit goes key by key from here on, its records so far replayed.
    fn maybe_split(&mut self, m: usize) {
        if !matches!(&self.maps[m].1, MapHist::Whole { sure, .. } if *sure > HISTORY_OPS_MAX) {
            return;
        }
        // Read only when splitting: a checkpoint's map is copied out whole.
        let start = self.start_of(&self.maps[m].0);
        let (map, hist) = &mut self.maps[m];
        if let MapHist::Whole { records, forever, .. } = hist {
            let keys = KeyHists::replay(
                std::mem::take(records),
                forever,
                start.as_ref(),
                map,
                self.lifetime,
                &mut self.report,
            );
            *hist = MapHist::Keys(keys);
        }
    }
}

impl MapHist {
    fn empty() -> Self {
        MapHist::Whole { records: Vec::new(), sure: 0, forever: Vec::new() }
    }
}

/// Every key of one map judged on its own.
#[derive(Default)]
struct KeyHists {
    /// Key → index in `keys` (looked up for every record; iterated only in the order of
    /// `keys`, never of the hash).
    names: HashMap<String, usize, Fx>,
    keys: Vec<KeyHist>,
    /// Keys with records not yet judged (their stretch is open).
    active: BTreeSet<usize>,
    /// Snapshots in flight, oldest first.
    snapshots: Vec<u64>,
    /// Live keys that may hold a value, by name: a snapshot that lacks one of them reads it
    /// absent.
    holding: BTreeMap<String, usize>,
}

/// One key's history: what its judged records leave possible, and the stretch since.
struct KeyHist {
    name: String,
    /// The values the key may hold after its judged records, one per order that explains them.
    states: Vec<Option<String>>,
    /// The records since the last quiescent point.
    stretch: Records<KeyOp, KeyRet>,
    /// Invokes in `stretch`.
    invoked: usize,
    /// Operations of `stretch` not returned (writes given up on included).
    open: usize,
    /// Of those, reads (dropped if they never return).
    open_reads: usize,
    /// Of those, snapshots.
    open_snapshots: usize,
    /// Of those, writes the client gave up on: open forever.
    abandoned: usize,
    /// Invokes judged so far.
    judged: u64,
    /// Set once the key is failed or beyond the limits: its later records are not judged.
    verdict: Option<KeyVerdict>,
    /// Snapshots taken while the stretch held only writes open forever and no operation of
    /// the key came since: they join the stretch if one comes (they fall between the key's
    /// operations), else they lie past the key's last operation and are dropped at the end,
    /// so that a write given up on does not gather every later snapshot of the run.
    parked: Records<KeyOp, KeyRet>,
    /// Snapshots of `parked` still in flight.
    parked_open: Vec<u64>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyVerdict {
    Failed,
    Skipped,
    OverBudget,
}

impl KeyHist {
    fn new(name: &str) -> Self {
        KeyHist {
            name: name.to_owned(),
            states: vec![None],
            stretch: Vec::new(),
            invoked: 0,
            open: 0,
            open_reads: 0,
            open_snapshots: 0,
            abandoned: 0,
            judged: 0,
            verdict: None,
            parked: Vec::new(),
            parked_open: Vec::new(),
        }
    }

    fn live(&self) -> bool {
        self.verdict.is_none()
    }

    /// Every operation of the key itself returned or given up on: only snapshots and writes
    /// open forever keep the stretch open.
    fn idle(&self) -> bool {
        !self.stretch.is_empty() && self.open == self.open_snapshots + self.abandoned
    }

    fn push_snapshot_invoke(&mut self, id: u64) {
        self.push_invoke(id, KeyOp::Read);
        self.open_snapshots += 1;
    }

    /// A snapshot's invoke: parked while idle.
    fn snapshot_invoked(&mut self, id: u64) {
        if self.idle() {
            self.parked.push((id, Some(KeyOp::Read), None));
            self.parked_open.push(id);
        } else {
            self.push_snapshot_invoke(id);
        }
    }

    /// A snapshot's return, where its invoke went.
    fn snapshot_returned(&mut self, id: u64, seen: KeyRet) {
        if let Some(i) = self.parked_open.iter().position(|s| *s == id) {
            self.parked_open.swap_remove(i);
            self.parked.push((id, None, Some(seen)));
        } else {
            // A snapshot invoked before the key went idle returns into the stretch itself: the
            // snapshots parked meanwhile came before this return in real time, so they go first
            // (pool seed 547: one parked while an older one was in flight read the key's value
            // before a write given up on landed; the older one, returning later, saw it landed,
            // and its return ahead of the parked pair made the history look impossible).
            self.unpark();
            self.push_return(id, true, seen);
            self.open_snapshots -= 1;
        }
    }

    /// An operation of the key comes: the parked snapshots precede it in its stretch.
    fn unpark(&mut self) {
        for (id, op, ret) in std::mem::take(&mut self.parked) {
            match (op, ret) {
                (Some(op), _) => {
                    let open = self.parked_open.contains(&id);
                    self.stretch.push((id, Some(op), None));
                    self.invoked += 1;
                    if open {
                        self.open += 1;
                        self.open_reads += 1;
                        self.open_snapshots += 1;
                    }
                }
                (None, ret) => self.stretch.push((id, None, ret)),
            }
        }
        self.parked_open.clear();
    }

    fn push_invoke(&mut self, id: u64, op: KeyOp) {
        if op == KeyOp::Read {
            self.open_reads += 1;
        }
        self.stretch.push((id, Some(op), None));
        self.invoked += 1;
        self.open += 1;
    }

    fn push_return(&mut self, id: u64, read: bool, ret: KeyRet) {
        if read {
            self.open_reads -= 1;
        }
        self.stretch.push((id, None, Some(ret)));
        self.open -= 1;
    }

    /// Drop an open read's invoke (it will never return).
    fn drop_read(&mut self, id: u64, snapshot: bool) {
        if let Some(i) = self.parked_open.iter().position(|s| *s == id) {
            self.parked_open.swap_remove(i);
            self.parked.retain(|r| r.0 != id);
            return;
        }
        let before = self.stretch.len();
        self.stretch.retain(|r| r.0 != id);
        if self.stretch.len() < before {
            self.invoked -= 1;
            self.open -= 1;
            self.open_reads -= 1;
            if snapshot {
                self.open_snapshots -= 1;
            }
        }
    }

    /// Past the limits for good: more certain invokes than [`HISTORY_OPS_MAX`] without a
    /// quiescent point, or more writes open forever than [`HISTORY_OPEN_MAX`].
    fn beyond_limits(&self) -> bool {
        self.invoked - self.open_reads > HISTORY_OPS_MAX || self.abandoned > HISTORY_OPEN_MAX
    }

    fn set_verdict(&mut self, v: KeyVerdict) {
        self.verdict = Some(v);
        self.stretch = Vec::new();
        self.states = Vec::new();
        self.parked = Vec::new();
        self.parked_open = Vec::new();
    }

    /// Judge a closed stretch (every operation in it returned): the values after it are every
    /// value some order explaining it, from some value before it, leaves.
    fn judge_closed(&mut self, stretch: &Records<KeyOp, KeyRet>) -> Result<(), String> {
        let mut left = SEARCH_STEPS_MAX;
        let mut after: Vec<Option<String>> = Vec::new();
        if let [(_, Some(op), None), (_, None, Some(ret))] = stretch.as_slice() {
            // One operation alone (most stretches): no order to search.
            for v in &self.states {
                let mut spec = KeySpec::holding(v);
                if spec.is_valid_step(op, ret) {
                    let e = spec.value();
                    if !after.contains(&e) {
                        after.push(e);
                    }
                }
            }
        } else if !fits(stretch) {
            // Reads open while the stretch grew do not count against the limit until they
            // return (they may be dropped), so a closed stretch can outgrow it: skipped, as
            // any history past the limits is (blind-spot hunt round 12: the search asserted).
            self.set_verdict(KeyVerdict::Skipped);
            return Ok(());
        } else {
            self.search_ends(stretch, &mut left, &mut after);
        }
        if !self.live() {
            return Ok(());
        }
        self.judged += invokes(stretch);
        if after.is_empty() {
            let e = format!("from {:?}, {}", self.states, unexplained(stretch));
            self.set_verdict(KeyVerdict::Failed);
            return Err(e);
        }
        self.states = after;
        Ok(())
    }

    /// Every value after `stretch` from every value before it, into `after` (the verdict set
    /// to over budget when the search runs out of steps).
    fn search_ends(&mut self, stretch: &Records<KeyOp, KeyRet>, left: &mut u64, after: &mut Vec<Option<String>>) {
        for v in &self.states {
            let Some(ends) = explore(KeySpec::holding(v), stretch, left, true) else {
                self.set_verdict(KeyVerdict::OverBudget);
                return;
            };
            for e in ends {
                let e = e.value();
                if !after.contains(&e) {
                    after.push(e);
                }
            }
        }
    }

    /// Judge the stretch at a quiescent point.
    fn cut(&mut self) -> Result<(), String> {
        let stretch = std::mem::take(&mut self.stretch);
        self.invoked = 0;
        self.judge_closed(&stretch)?;
        if !self.live() {
            return Ok(());
        }
        self.stretch = stretch;
        self.stretch.clear(); // keep the allocation
        // Parked snapshots came after every operation of the stretch had returned: each read
        // the key's value after it. One still in flight reads it when it returns.
        let parked = std::mem::take(&mut self.parked);
        self.parked_open.clear();
        for (id, _, ret) in parked {
            let Some(KeyRet::Read(seen)) = ret else { continue };
            if !self.states.contains(&seen) {
                let e = format!(
                    "snapshot #{id} saw {seen:?} after every operation on the key returned; it could only hold {:?}",
                    self.states
                );
                self.set_verdict(KeyVerdict::Failed);
                return Err(e);
            }
            self.states.retain(|s| *s == seen);
        }
        Ok(())
    }

    /// Judge what is left at the end of a lifetime: reads still open never returned and are
    /// dropped; the rest splits at its quiescent points, and the last part may hold writes open
    /// forever (then one explaining order is enough: nothing follows).
    fn finish(&mut self) -> Result<(), String> {
        if !self.live() || self.stretch.is_empty() {
            return Ok(());
        }
        let stretch = without_open_key_reads(std::mem::take(&mut self.stretch));
        let mut start = 0;
        let mut open = 0usize;
        for (i, (_, op, ret)) in stretch.iter().enumerate() {
            match (op, ret) {
                (Some(_), _) => open += 1,
                (None, Some(_)) => open -= 1,
                (None, None) => {}
            }
            if open == 0 {
                self.judge_closed(&stretch[start..=i].to_vec())?;
                if !self.live() {
                    return Ok(());
                }
                start = i + 1;
            }
        }
        let rest = stretch[start..].to_vec();
        if rest.is_empty() {
            return Ok(());
        }
        if !fits(&rest) {
            self.set_verdict(KeyVerdict::Skipped);
            return Ok(());
        }
        let mut left = SEARCH_STEPS_MAX;
        let mut exhausted = false;
        for v in &self.states {
            match explore(KeySpec::holding(v), &rest, &mut left, false) {
                Some(ends) if !ends.is_empty() => {
                    self.judged += invokes(&rest);
                    return Ok(());
                }
                Some(_) => {}
                None => exhausted = true,
            }
        }
        if exhausted {
            self.set_verdict(KeyVerdict::OverBudget);
            return Ok(());
        }
        self.judged += invokes(&rest);
        let e = format!("from {:?}, {}", self.states, unexplained(&rest));
        self.set_verdict(KeyVerdict::Failed);
        Err(e)
    }
}

impl KeyHists {
    /// The key histories of a whole map's records so far.
    fn replay(
        records: Records<StoreOp, StoreRet>,
        forever: &[u64],
        start: Option<&MapSnapshot>,
        map: &str,
        lifetime: usize,
        report: &mut Report,
    ) -> Self {
        let mut keys = KeyHists::default();
        for (k, v) in start.map(|s| &s.entries).into_iter().flatten() {
            let n = keys.slot(k);
            keys.keys[n].states = vec![Some(v.clone())];
            keys.refresh(n);
        }
        let mut ops: BTreeMap<u64, StoreOp> = BTreeMap::new();
        for (id, op, ret) in records {
            match (op, ret) {
                (Some(op), _) => {
                    keys.invoke(id, &op);
                    if forever.contains(&id) {
                        keys.abandon(id, &op, map, lifetime, report);
                    }
                    ops.insert(id, op);
                }
                (None, Some(ret)) => {
                    if let Some(op) = ops.remove(&id) {
                        keys.complete(id, &op, &ret, map, lifetime, report);
                    }
                }
                (None, None) => {}
            }
        }
        keys
    }

    fn slot(&mut self, k: &str) -> usize {
        if let Some(n) = self.names.get(k) {
            return *n;
        }
        self.names.insert(k.to_owned(), self.keys.len());
        self.keys.push(KeyHist::new(k));
        self.keys.len() - 1
    }

    fn violation(report: &mut Report, map: &str, key: &str, lifetime: usize, e: String) {
        report.violations.push(format!("map {map:?} key {key:?} (store lifetime {lifetime}): {e}"));
    }

    fn invoke(&mut self, id: u64, op: &StoreOp) {
        if let StoreOp::Snapshot { .. } = op {
            for n in &self.active {
                self.keys[*n].snapshot_invoked(id);
            }
            self.snapshots.push(id);
            return;
        }
        for k in op.distinct_keys() {
            let Some(kop) = op.on_key(k) else { continue };
            let n = self.slot(k);
            let key = &mut self.keys[n];
            if !key.live() {
                continue;
            }
            if key.stretch.is_empty() {
                // Snapshots in flight overlap whatever this key does from now on.
                for s in &self.snapshots {
                    key.push_snapshot_invoke(*s);
                }
                self.active.insert(n);
            }
            key.unpark();
            key.push_invoke(id, kop);
            if key.beyond_limits() {
                key.set_verdict(KeyVerdict::Skipped);
                self.active.remove(&n);
                self.refresh(n);
            }
        }
    }

    fn complete(&mut self, id: u64, op: &StoreOp, ret: &StoreRet, map: &str, lifetime: usize, report: &mut Report) {
        if let StoreOp::Snapshot { .. } = op {
            let entries = match ret {
                StoreRet::Snapshot(s) => Some(&s.entries),
                _ => None,
            };
            self.snapshot_returned(id, entries, map, lifetime, report);
            return;
        }
        let read = op.is_read();
        for k in op.distinct_keys() {
            let Some(&n) = self.names.get(k) else { continue };
            let key = &mut self.keys[n];
            if !key.live() {
                continue;
            }
            key.push_return(id, read, ret.on_key(k));
            if key.open == 0 {
                self.cut(n, map, lifetime, report);
            }
        }
    }

    /// Snapshot `id` returned: its entries, or `None` when certainly not applied.
    fn snapshot_returned(
        &mut self,
        id: u64,
        entries: Option<&BTreeMap<String, String>>,
        map: &str,
        lifetime: usize,
        report: &mut Report,
    ) {
        self.snapshots.retain(|s| *s != id);
        // Keys with a stretch in flight: the snapshot is one of its reads.
        let active: Vec<usize> = self.active.iter().copied().collect();
        for n in &active {
            let key = &mut self.keys[*n];
            let seen = match entries {
                Some(e) => KeyRet::Read(e.get(&key.name).cloned()),
                None => KeyRet::NotApplied,
            };
            key.snapshot_returned(id, seen);
        }
        // Quiescent keys: the value seen must be one the key may hold. Only the keys the
        // snapshot holds and the keys that may hold a value are looked at, not every key the
        // map ever had: the cost follows the snapshot, not the run's length.
        if let Some(entries) = entries {
            // One merge of two sorted sequences: the snapshot's entries and the keys that may
            // hold a value. A key in both reads its entry; one only held reads absent; an entry
            // of no held key is looked up (a key with a stretch open, or known absent).
            // Only the reads that tell something are kept for the second pass, which may change
            // a key: a quiescent live key that may hold something else than what was seen. The
            // rest (the common case: one value, the one seen) pass here. Each key comes at most
            // once, so judging it here or in turn is the same.
            let keys = &self.keys;
            let tells = |n: usize, seen: Option<&String>| {
                let key = &keys[n];
                key.stretch.is_empty() && key.live() && !key.states.iter().all(|s| s.as_ref() == seen)
            };
            let mut reads: Vec<(usize, Option<&String>)> = Vec::new();
            let mut held = self.holding.iter().peekable();
            for (k, v) in entries {
                // One comparison per step (keys of a map mostly share a long prefix).
                let mut found = None;
                while let Some((name, n)) = held.peek() {
                    match name.as_str().cmp(k.as_str()) {
                        std::cmp::Ordering::Less if tells(**n, None) => reads.push((**n, None)),
                        std::cmp::Ordering::Less => {}
                        std::cmp::Ordering::Equal => found = Some(**n),
                        std::cmp::Ordering::Greater => break,
                    }
                    held.next();
                    if found.is_some() {
                        break;
                    }
                }
                if let Some(n) = found {
                    if tells(n, Some(v)) {
                        reads.push((n, Some(v)));
                    }
                    continue;
                }
                match self.names.get(k.as_str()) {
                    Some(&n) if tells(n, Some(v)) => reads.push((n, Some(v))),
                    Some(_) => {}
                    None => report.violations.push(format!(
                        "map {map:?} (store lifetime {lifetime}): snapshot #{id} holds key {k:?} = {v:?}, which no operation of this lifetime wrote"
                    )),
                }
            }
            reads.extend(held.map(|(_, n)| (*n, None)).filter(|(n, _)| tells(*n, None)));
            for (n, seen) in reads {
                self.quiescent_read(n, id, seen, map, lifetime, report);
            }
        }
        for n in active {
            if self.keys[n].live() && self.keys[n].open == 0 {
                self.cut(n, map, lifetime, report);
            }
        }
    }

    /// A snapshot's read of quiescent key `n`: the value seen must be one the key may hold, and
    /// rules out the others.
    fn quiescent_read(
        &mut self,
        n: usize,
        id: u64,
        seen: Option<&String>,
        map: &str,
        lifetime: usize,
        report: &mut Report,
    ) {
        let key = &mut self.keys[n];
        if !key.live() || key.states.iter().all(|s| s.as_ref() == seen) {
            return; // the common case: one value, the one seen
        }
        if key.states.iter().any(|s| s.as_ref() == seen) {
            key.states.retain(|s| s.as_ref() == seen);
        } else {
            let e = format!(
                "snapshot #{id} saw {seen:?} while no operation on the key was in flight; it could only hold {:?}",
                key.states
            );
            key.judged += 1;
            key.set_verdict(KeyVerdict::Failed);
            let k = key.name.clone();
            Self::violation(report, map, &k, lifetime, e);
        }
        self.refresh(n);
    }

    /// Keep `holding` in step with key `n`'s values.
    fn refresh(&mut self, n: usize) {
        let key = &self.keys[n];
        if key.live() && key.states.iter().any(Option::is_some) {
            if !self.holding.contains_key(&key.name) {
                self.holding.insert(key.name.clone(), n);
            }
        } else {
            self.holding.remove(&key.name);
        }
    }

    /// Judge key `n`'s stretch at a quiescent point.
    fn cut(&mut self, n: usize, map: &str, lifetime: usize, report: &mut Report) {
        self.active.remove(&n);
        if let Err(e) = self.keys[n].cut() {
            let k = self.keys[n].name.clone();
            Self::violation(report, map, &k, lifetime, e);
        }
        self.refresh(n);
    }

    fn abandon(&mut self, id: u64, op: &StoreOp, map: &str, lifetime: usize, report: &mut Report) {
        let touched: Vec<usize> = match op {
            StoreOp::Snapshot { .. } => {
                self.snapshots.retain(|s| *s != id);
                self.active.iter().copied().collect()
            }
            _ => op.distinct_keys().filter_map(|k| self.names.get(k).copied()).collect(),
        };
        for n in touched {
            let key = &mut self.keys[n];
            if !key.live() {
                continue;
            }
            if op.is_read() {
                key.drop_read(id, op.is_snapshot());
                if key.stretch.is_empty() {
                    self.active.remove(&n);
                } else if key.open == 0 {
                    self.cut(n, map, lifetime, report);
                }
            } else {
                key.abandoned += 1;
                if key.beyond_limits() {
                    key.set_verdict(KeyVerdict::Skipped);
                    self.active.remove(&n);
                    self.refresh(n);
                }
            }
        }
    }

    /// The end of the lifetime: judge what is left and count every key.
    fn finish(&mut self, map: &str, lifetime: usize, report: &mut Report) {
        for key in &mut self.keys {
            if let Err(e) = key.finish() {
                Self::violation(report, map, &key.name, lifetime, e);
            }
            match key.verdict {
                None | Some(KeyVerdict::Failed) => {
                    report.checked += 1;
                    report.ops += key.judged;
                }
                Some(KeyVerdict::Skipped) => report.skipped += 1,
                Some(KeyVerdict::OverBudget) => report.over_budget += 1,
            }
        }
    }
}

/// Drop a key's reads that never returned.
fn without_open_key_reads(mut records: Records<KeyOp, KeyRet>) -> Records<KeyOp, KeyRet> {
    let returned: BTreeSet<u64> = records.iter().filter(|r| r.2.is_some()).map(|r| r.0).collect();
    records.retain(|(id, op, _)| returned.contains(id) || !matches!(op, Some(KeyOp::Read)));
    records
}

type Records<Op, Ret> = Vec<(u64, Option<Op>, Option<Ret>)>;

fn invokes<Op, Ret>(records: &Records<Op, Ret>) -> u64 {
    records.iter().filter(|r| r.1.is_some()).count() as u64
}

/// Whether a history is small enough for the tester (see the limits).
fn fits<Op, Ret>(records: &Records<Op, Ret>) -> bool {
    let returns = records.iter().filter(|r| r.2.is_some()).count() as u64;
    let invoked = invokes(records);
    invoked <= HISTORY_OPS_MAX as u64 && invoked - returns <= HISTORY_OPEN_MAX as u64
}
/// What the search found for one history.
enum Verdict {
    Linearizable,
    /// The search ran out of [`SEARCH_STEPS_MAX`] steps before finding an order or ruling all out.
    OverBudget,
    /// No order explains the history (the records, in words).
    Not(String),
}

fn run_tester<S>(spec: S, records: &Records<S::Op, S::Ret>) -> Verdict
where
    S: SequentialSpec + Clone + Eq + Hash,
    S::Op: Clone + std::fmt::Debug + Inert,
    S::Ret: Clone + std::fmt::Debug + PartialEq,
{
    match search(spec, records, SEARCH_STEPS_MAX) {
        Some(true) => Verdict::Linearizable,
        None => Verdict::OverBudget,
        Some(false) => Verdict::Not(unexplained(records)),
    }
}

/// A history no order explains, in words.
fn unexplained<Op: std::fmt::Debug, Ret: std::fmt::Debug>(records: &Records<Op, Ret>) -> String {
    let ops: Vec<String> = records
        .iter()
        .map(|(id, op, ret)| match (op, ret) {
            (Some(op), _) => format!("#{id} invoke {op:?}"),
            (None, Some(ret)) => format!("#{id} return {ret:?}"),
            (None, None) => String::new(),
        })
        .collect();
    format!("no sequential order explains these {} records: {}", ops.len(), ops.join("; "))
}

/// One operation of a history: where its invoke and return sit in the records.
struct Placed<'a, Op, Ret> {
    invoked_at: usize,
    /// `usize::MAX` while open: an open operation never has to precede anything.
    returned_at: usize,
    op: &'a Op,
    ret: Option<&'a Ret>,
}

/// Whether some order of the operations, consistent with real time, explains every returned
/// result: `Some(true)` yes, `Some(false)` no, `None` when `steps` ran out first.
/// An operation that, where it fits and changes nothing, changes nothing wherever it fits: the
/// search may place it at once (see [`explore`]).
trait Inert {
    fn inert(&self) -> bool;
}

impl Inert for StoreOp {
    /// Reads, and writes the store refused (their outcome fits only where they change nothing).
    /// Not a restart: a no-op only while a jump is already allowed.
    fn inert(&self) -> bool {
        !matches!(self, StoreOp::Restart { .. })
    }
}

impl Inert for KeyOp {
    /// A key's history has no restarts: values only.
    fn inert(&self) -> bool {
        true
    }
}

fn search<S>(spec: S, records: &Records<S::Op, S::Ret>, steps: u64) -> Option<bool>
where
    S: SequentialSpec + Clone + Eq + Hash,
    S::Op: Inert,
{
    let mut left = steps;
    explore(spec, records, &mut left, false).map(|ends| !ends.is_empty())
}

/// Wing and Gong's search with Lowe's memo, as Porcupine does it: a search state is the set of
/// operations placed so far and the specification's state after them, and each state is
/// expanded once. An operation may go next when no unplaced operation returned before it was
/// invoked. Returned operations must all be placed; open ones may be placed (applied with an
/// unseen result) or left out (never applied). stateright's tester, used here before, has no
/// memo and copied the remaining history at every step: one history of rmap seed 343 took
/// 100 s.
///
/// Returns the specification's states after explaining orders: with `all`, every distinct end
/// state over every order that places every operation (the records must then have none open:
/// a key's closed stretch); else the first found. Empty: no order explains the records. `None`:
/// `left` steps ran out first.
fn explore<S>(spec: S, records: &Records<S::Op, S::Ret>, left: &mut u64, all: bool) -> Option<Vec<S>>
where
    S: SequentialSpec + Clone + Eq + Hash,
    S::Op: Inert,
{
    let mut ops: Vec<Placed<'_, S::Op, S::Ret>> = Vec::new();
    let mut index: BTreeMap<u64, usize> = BTreeMap::new();
    for (at, (id, op, ret)) in records.iter().enumerate() {
        match (op, ret) {
            (Some(op), _) => {
                index.insert(*id, ops.len());
                ops.push(Placed { invoked_at: at, returned_at: usize::MAX, op, ret: None });
            }
            (None, Some(ret)) => {
                if let Some(p) = index.get(id).and_then(|i| ops.get_mut(*i)) {
                    p.returned_at = at;
                    p.ret = Some(ret);
                }
            }
            (None, None) => {}
        }
    }
    // `fits` keeps histories at HISTORY_OPS_MAX operations, within one u128 of placed bits.
    assert!(ops.len() <= 128, "a history of {} operations reached the search", ops.len());
    let bit = |i: usize| 1u128 << i;
    let every: u128 = (0..ops.len()).fold(0, |m, i| m | bit(i));
    let must: u128 = ops.iter().enumerate().filter(|(_, p)| p.ret.is_some()).fold(0, |m, (i, _)| m | bit(i));
    let goal = if all { every } else { must };
    // A fixed hasher: the memo is only asked for membership, but nothing here may depend on
    // OS randomness.
    type Memo<S> = HashSet<(u128, S), Fx>;
    let mut seen: Memo<S> = HashSet::default();
    let mut ends: Vec<S> = Vec::new();
    let mut stack = vec![(0u128, spec)];
    let mut branches = Vec::new();
    while let Some((placed, state)) = stack.pop() {
        if placed & goal == goal {
            if !ends.contains(&state) {
                ends.push(state);
            }
            if !all {
                break;
            }
            continue;
        }
        *left = left.checked_sub(1)?;
        let horizon = ops
            .iter()
            .enumerate()
            .filter(|(i, p)| placed & bit(*i) == 0 && p.ret.is_some())
            .map(|(_, p)| p.returned_at)
            .min()
            .unwrap_or(usize::MAX);
        branches.clear();
        for (i, p) in ops.iter().enumerate() {
            if placed & bit(i) != 0 || p.invoked_at > horizon {
                continue;
            }
            let mut next = state.clone();
            let valid = match p.ret {
                Some(ret) => next.is_valid_step(p.op, ret),
                None => {
                    next.invoke(p.op);
                    true
                }
            };
            if !valid {
                continue;
            }
            if p.ret.is_some() && next == state && p.op.inert() {
                // A returned operation that fits here and changes nothing (a read) goes now,
                // without a branch: any order that places it later can place it here instead
                // (the states after are the same, and placing it early only frees what waits
                // for it). Without this, k reads overlapping a dead end are tried in all 2^k
                // subsets. The end states reachable are the same too. Only for an operation
                // that changes nothing wherever it fits ([`Inert`]): a restart changes nothing
                // while the map's next commit may already jump, and lets a commit placed after
                // it jump again (placed at once, it hid the order that explains two restarts
                // around a commit in flight).
                branches.clear();
                branches.push((placed | bit(i), next));
                break;
            }
            branches.push((placed | bit(i), next));
        }
        for b in branches.drain(..) {
            if seen.insert(b.clone()) {
                stack.push(b);
            }
        }
    }
    Some(ends)
}

/// One map operation as seen by one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyOp {
    /// `map_get` of the key, or a `map_snapshot` (which reads every key).
    Read,
    /// `map_write` of the key.
    Write(MapWrite),
    /// The part of a `map_txn` about this key: its guard and write on it, and whether every
    /// guard of the transaction is on this key (then a refusal says this guard failed).
    Txn {
        /// The guard on this key.
        guard: Option<Expect>,
        /// The write to this key.
        write: Option<Option<String>>,
        /// Every guard of the transaction is on this key.
        sole: bool,
    },
}

/// What one key's client learned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyRet {
    /// The key's value.
    Read(Option<String>),
    /// Whether a write applied, and the value after it.
    Write(bool, Option<String>),
    /// Whether the transaction applied.
    Txn(bool),
    /// Certainly not applied.
    NotApplied,
}

/// The sequential specification of one key (its value), again keel's [`StoreState`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct KeySpec {
    state: StoreState,
}

const K: &str = "k";

impl SequentialSpec for KeySpec {
    type Op = KeyOp;
    type Ret = KeyRet;

    fn invoke(&mut self, op: &KeyOp) -> KeyRet {
        let r = match op {
            KeyOp::Read => self.state.map_get(K, K).map(|(v, _)| KeyRet::Read(v)),
            KeyOp::Write(w) => {
                self.state.map_write(K, K, w, SPEC_TIME_MS).map(|(o, _)| KeyRet::Write(o.applied, o.value))
            }
            KeyOp::Txn { guard, write, .. } => {
                let guards: Vec<(String, Expect)> = guard.iter().map(|g| (K.to_owned(), g.clone())).collect();
                let writes: Vec<(String, Option<String>)> = write.iter().map(|w| (K.to_owned(), w.clone())).collect();
                self.state.map_txn(K, &guards, &writes, SPEC_TIME_MS).map(|(o, _)| KeyRet::Txn(o.applied))
            }
        };
        r.unwrap_or(KeyRet::NotApplied)
    }

    fn is_valid_step(&mut self, op: &KeyOp, seen: &KeyRet) -> bool {
        match (op, seen) {
            (_, KeyRet::NotApplied) => true,
            // Refused by a guard on another key: nothing to check here, and no effect.
            (KeyOp::Txn { sole: false, .. }, KeyRet::Txn(false)) => true,
            _ => self.invoke(op) == *seen,
        }
    }
}

/// Drop reads that never returned: they constrain nothing and only slow the search.
fn without_open_reads(mut records: Records<StoreOp, StoreRet>) -> Records<StoreOp, StoreRet> {
    let returned: std::collections::BTreeSet<u64> = records.iter().filter(|r| r.2.is_some()).map(|r| r.0).collect();
    records.retain(|(id, op, _)| {
        returned.contains(id) || !matches!(op, Some(StoreOp::Get { .. } | StoreOp::Snapshot { .. }))
    });
    records
}

impl StoreOp {
    /// The keys the operation names (a snapshot names none: it reads whatever is there).
    fn key_names(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        match self {
            StoreOp::Get { key, .. } | StoreOp::Write { key, .. } => Box::new(std::iter::once(key.as_str())),
            StoreOp::Snapshot { .. } | StoreOp::Restart { .. } => Box::new(std::iter::empty()),
            StoreOp::Txn { guards, writes, .. } => {
                Box::new(guards.iter().map(|(k, _)| k.as_str()).chain(writes.iter().map(|(k, _)| k.as_str())))
            }
        }
    }

    /// What the operation does to key `k`, if anything.
    fn on_key(&self, k: &str) -> Option<KeyOp> {
        match self {
            StoreOp::Get { key, .. } => (key == k).then_some(KeyOp::Read),
            StoreOp::Snapshot { .. } => Some(KeyOp::Read),
            StoreOp::Write { key, write, .. } => (key == k).then(|| KeyOp::Write(write.clone())),
            StoreOp::Txn { guards, writes, .. } => {
                let guard = guards.iter().rev().find(|(g, _)| g == k).map(|(_, e)| e.clone());
                let write = writes.iter().rev().find(|(w, _)| w == k).map(|(_, v)| v.clone());
                let sole = guards.iter().all(|(g, _)| g == k);
                (guard.is_some() || write.is_some()).then_some(KeyOp::Txn { guard, write, sole })
            }
            StoreOp::Restart { .. } => None,
        }
    }
}

impl StoreRet {
    fn on_key(&self, k: &str) -> KeyRet {
        match self {
            StoreRet::Get(v, _) => KeyRet::Read(v.clone()),
            StoreRet::Snapshot(s) => KeyRet::Read(s.entries.get(k).cloned()),
            StoreRet::Write(w) => KeyRet::Write(w.applied, w.value.clone()),
            StoreRet::Txn(t) => KeyRet::Txn(t.applied),
            StoreRet::NotApplied => KeyRet::NotApplied,
        }
    }
}

impl StoreOp {
    fn is_snapshot(&self) -> bool {
        matches!(self, StoreOp::Snapshot { .. })
    }

    fn is_read(&self) -> bool {
        matches!(self, StoreOp::Get { .. } | StoreOp::Snapshot { .. })
    }

    /// The keys the operation names, each once (sorted; no allocation for a one-key operation,
    /// the most common record).
    fn distinct_keys(&self) -> impl Iterator<Item = &str> {
        let (one, many) = match self {
            StoreOp::Get { key, .. } | StoreOp::Write { key, .. } => (Some(key.as_str()), Vec::new()),
            _ => {
                let mut keys: Vec<&str> = self.key_names().collect();
                keys.sort_unstable();
                keys.dedup();
                (None, keys)
            }
        };
        one.into_iter().chain(many)
    }
}

impl KeySpec {
    /// The key holding `v`.
    fn holding(v: &Option<String>) -> Self {
        let mut s = KeySpec::default();
        if let Some(v) = v {
            // A value the store held, so a valid one: the write cannot be refused.
            let set = s.state.map_write(K, K, &MapWrite::Set(v.clone()), SPEC_TIME_MS);
            assert!(set.is_ok(), "a value the store held is refused by the specification: {v:?}");
        }
        s
    }

    fn value(&self) -> Option<String> {
        self.state.map_get(K, K).ok().and_then(|(v, _)| v)
    }
}

thread_local! {
    /// The checker of the run on this thread (madsim runs one simulation per thread).
    static CHECKER: RefCell<Option<(u64, Checker)>> = const { RefCell::new(None) };
}

/// Start recording on this thread (a run begins).
pub fn begin() {
    CHECKER.with(|r| *r.borrow_mut() = Some((0, Checker::default())));
}

/// Stop recording on this thread and return the verdict on what it recorded.
pub fn finish() -> Report {
    CHECKER.with(|r| r.borrow_mut().take().map(|(_, c)| c.finish()).unwrap_or_default())
}

/// Record an invoke; returns its id (None when not recording).
pub fn invoke(op: StoreOp) -> Option<u64> {
    CHECKER.with(|r| {
        let mut r = r.borrow_mut();
        let (next, checker) = r.as_mut()?;
        *next += 1;
        checker.invoke(*next, op);
        Some(*next)
    })
}

/// Record the outcome of operation `id`.
pub fn complete(id: u64, ret: StoreRet) {
    CHECKER.with(|r| {
        if let Some((_, checker)) = r.borrow_mut().as_mut() {
            checker.complete(id, ret);
        }
    });
}

/// Record the outcome of snapshot `id` without a copy of it (a key-by-key map judges it where
/// it lies; a small map keeps a copy with its records).
pub fn complete_snapshot(id: u64, snapshot: &MapSnapshot) {
    CHECKER.with(|r| {
        if let Some((_, checker)) = r.borrow_mut().as_mut() {
            checker.complete_snapshot(id, snapshot);
        }
    });
}

/// Record that the client gave up on operation `id` (see [`Checker::abandon`]).
pub fn abandon(id: u64) {
    CHECKER.with(|r| {
        if let Some((_, checker)) = r.borrow_mut().as_mut() {
            checker.abandon(id);
        }
    });
}

/// Record a data-losing store restart.
pub fn reset() {
    CHECKER.with(|r| {
        if let Some((_, checker)) = r.borrow_mut().as_mut() {
            checker.reset();
        }
    });
}

/// Record a store restart that kept every key (see [`Checker::restart`]).
pub fn restarted() {
    CHECKER.with(|r| {
        if let Some((_, checker)) = r.borrow_mut().as_mut() {
            checker.restart();
        }
    });
}

/// Record a store restart that rolled the data back to `saved` (see [`Checker::rolled_back_to`]).
pub fn rolled_back_to(saved: &StoreState) {
    CHECKER.with(|r| {
        if let Some((_, checker)) = r.borrow_mut().as_mut() {
            checker.rolled_back_to(saved);
        }
    });
}

/// One outcome for [`InFlight::complete_lent`]: owned, or a snapshot lent where it lies.
#[derive(Debug)]
pub enum Lent<'a> {
    /// Any outcome, owned.
    Owned(StoreRet),
    /// A snapshot's outcome, borrowed (see [`complete_snapshot`]).
    Snapshot(&'a MapSnapshot),
}

/// The records of one store call: invoked when it is sent, completed with its outcome, and
/// abandoned (open forever for a write, dropped for a read) when dropped first: the client
/// gave up on it, or its task died with its node.
pub struct InFlight {
    ids: Vec<u64>,
}

impl InFlight {
    /// Record the invokes of `ops` (nothing when not recording).
    pub fn invoke(ops: Vec<StoreOp>) -> Self {
        InFlight { ids: ops.into_iter().filter_map(invoke).collect() }
    }

    /// The outcomes, in the order of the invoked operations (any left without one are abandoned).
    pub fn complete(mut self, rets: Vec<StoreRet>) {
        let ids = std::mem::take(&mut self.ids);
        let mut rets = rets.into_iter();
        for id in ids {
            match rets.next() {
                Some(ret) => complete(id, ret),
                None => abandon(id),
            }
        }
    }

    /// The outcome of a lone snapshot, borrowed (see [`complete_snapshot`]).
    pub fn complete_snapshot(self, snapshot: &MapSnapshot) {
        self.complete_lent([Lent::Snapshot(snapshot)]);
    }

    /// The outcomes, in the order of the invoked operations, snapshots among them borrowed (a
    /// batch of reads); any left without one are abandoned.
    pub fn complete_lent<'a>(mut self, rets: impl IntoIterator<Item = Lent<'a>>) {
        let ids = std::mem::take(&mut self.ids);
        let mut rets = rets.into_iter();
        for id in ids {
            match rets.next() {
                Some(Lent::Owned(ret)) => complete(id, ret),
                Some(Lent::Snapshot(s)) => complete_snapshot(id, s),
                None => abandon(id),
            }
        }
    }

    /// Every operation certainly not applied.
    pub fn not_applied(mut self) {
        for id in std::mem::take(&mut self.ids) {
            complete(id, StoreRet::NotApplied);
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        for id in std::mem::take(&mut self.ids) {
            abandon(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cas(id: u64, expected: &str, new: &str) -> Record {
        let write = MapWrite::CompareAndSet { expected: expected.into(), new: new.into() };
        Record::Invoke { id, op: StoreOp::Write { map: "m".into(), key: "k".into(), write } }
    }

    fn set(id: u64, v: &str) -> Record {
        Record::Invoke { id, op: StoreOp::Write { map: "m".into(), key: "k".into(), write: MapWrite::Set(v.into()) } }
    }

    /// A write of key `o{id}` (one key per operation), to make a map too large to check whole.
    fn other(id: u64) -> Record {
        Record::Invoke {
            id,
            op: StoreOp::Write { map: "m".into(), key: format!("o{id}"), write: MapWrite::Set("x".into()) },
        }
    }

    fn other_done(id: u64) -> Record {
        Record::Return { id, ret: StoreRet::Write(WriteOutcome { applied: true, rev: id, value: Some("x".into()) }) }
    }

    fn wrote(id: u64, applied: bool, rev: u64, v: &str) -> Record {
        Record::Return { id, ret: StoreRet::Write(WriteOutcome { applied, rev, value: Some(v.into()) }) }
    }

    #[test]
    fn overlapping_writes_in_either_order_are_linearizable() {
        let h = [set(1, "a"), set(2, "b"), wrote(2, true, 5002, "b"), wrote(1, true, 5001, "a")];
        let r = check(h.to_vec());
        assert_eq!((r.checked, r.ops, r.skipped), (1, 2, 0));
        assert!(r.violations.is_empty(), "{:?}", r.violations);
    }

    #[test]
    fn two_compare_and_sets_from_one_value_cannot_both_apply() {
        // What a non-atomic compare-and-set produces (mutant MM1): both read "a", both write.
        let h = [
            set(1, "a"),
            wrote(1, true, 7001, "a"),
            cas(2, "a", "b"),
            cas(3, "a", "c"),
            wrote(2, true, 7002, "b"),
            wrote(3, true, 7003, "c"),
        ];
        let r = check(h.to_vec());
        assert_eq!(r.violations.len(), 1, "{r:?}");
        let ok =
            [set(1, "a"), wrote(1, true, 7001, "a"), cas(2, "a", "b"), cas(3, "a", "c"), wrote(2, true, 7002, "b")];
        let mut ok = ok.to_vec();
        ok.push(Record::Return {
            id: 3,
            ret: StoreRet::Write(WriteOutcome { applied: false, rev: 7002, value: Some("b".into()) }),
        });
        assert!(check(ok.to_vec()).violations.is_empty());
    }

    #[test]
    fn an_open_write_may_land_late_or_never() {
        // #2 never returned: a later read may see it or not, but not a value nobody wrote.
        let read = |id, v: Option<&str>, rev| Record::Return { id, ret: StoreRet::Get(v.map(Into::into), rev) };
        let get = |id| Record::Invoke { id, op: StoreOp::Get { map: "m".into(), key: "k".into() } };
        let base = vec![set(1, "a"), wrote(1, true, 9001, "a"), set(2, "b")];
        for (v, rev, ok) in [(Some("a"), 9001, true), (Some("b"), 9002, true), (Some("z"), 9002, false)] {
            let mut h = base.clone();
            h.extend([get(3), read(3, v, rev)]);
            assert_eq!(check(h.to_vec()).violations.is_empty(), ok, "read {v:?}@{rev}");
        }
    }

    #[test]
    fn a_stretch_that_outgrows_the_limit_through_reads_that_return_is_skipped() {
        // A write open while more reads than the limit are invoked and then return: the reads
        // did not count while open, and the closed stretch reached the search (which asserted).
        let read = |id, v: Option<&str>, rev| Record::Return { id, ret: StoreRet::Get(v.map(Into::into), rev) };
        let get = |id| Record::Invoke { id, op: StoreOp::Get { map: "m".into(), key: "k".into() } };
        let ids = 10..10 + 2 * HISTORY_OPS_MAX as u64;
        let mut h = vec![set(1, "a")];
        h.extend(ids.clone().map(get));
        h.extend(ids.map(|id| read(id, None, 0)));
        h.push(wrote(1, true, 9001, "a"));
        let r = check(h);
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        assert_eq!(r.skipped, 1, "past the limits: skipped, not searched");
    }

    #[test]
    fn a_map_too_large_as_a_whole_is_checked_key_by_key() {
        // Many writes to other keys make the map's history too large; key "k" alone still
        // shows the two compare-and-sets that both applied.
        let mut h: Vec<Record> = (100..100 + HISTORY_OPS_MAX as u64).flat_map(|i| [other(i), other_done(i)]).collect();
        h.extend([set(1, "a"), wrote(1, true, 1, "a"), cas(2, "a", "b"), cas(3, "a", "c")]);
        h.extend([wrote(2, true, 2, "b"), wrote(3, true, 3, "c")]);
        let r = check(h.to_vec());
        assert_eq!(r.checked, HISTORY_OPS_MAX as u64 + 1, "one history per key");
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        assert!(r.violations[0].contains("key \"k\""), "{}", r.violations[0]);
    }

    #[test]
    fn a_snapshot_of_a_map_too_large_as_a_whole_is_judged_for_every_key() {
        // "k"'s value in the snapshot is judged with the write it overlaps, so a value nobody
        // wrote is caught key by key; the other keys, quiescent, must show what they hold.
        let snap = |id: u64, k: &str| {
            let entries = (100..100 + HISTORY_OPS_MAX as u64)
                .map(|i| (format!("o{i}"), "x".to_owned()))
                .chain([("k".to_owned(), k.to_owned())])
                .collect();
            Record::Return { id, ret: StoreRet::Snapshot(MapSnapshot { rev: 1, entries, ..Default::default() }) }
        };
        for (seen, ok) in [("a", true), ("z", false)] {
            let mut h: Vec<Record> =
                (100..100 + HISTORY_OPS_MAX as u64).flat_map(|i| [other(i), other_done(i)]).collect();
            h.extend([set(1, "a"), Record::Invoke { id: 2, op: StoreOp::Snapshot { map: "m".into() } }]);
            h.extend([wrote(1, true, 1, "a"), snap(2, seen)]);
            let r = check(h);
            assert_eq!(r.violations.is_empty(), ok, "snapshot saw {seen:?}: {:?}", r.violations);
            if !ok {
                assert!(r.violations.iter().all(|v| v.contains("key \"k\"")), "{:?}", r.violations);
            }
        }
    }

    #[test]
    fn many_overlapping_operations_are_decided_and_a_spent_budget_is_not_a_verdict() {
        // 40 writers and 40 readers all in flight at once: orders explode, states do not.
        let get = |id| Record::Invoke { id, op: StoreOp::Get { map: "m".into(), key: "k".into() } };
        let mut h: Vec<Record> = (1..=40).map(|i| set(i, &format!("v{i}"))).collect();
        h.extend((41..=80).map(get));
        h.extend((1..=40).rev().map(|i| wrote(i, true, 100 + i, &format!("v{i}"))));
        h.extend((41..=80).map(|id| Record::Return { id, ret: StoreRet::Get(Some("v40".into()), 140) }));
        let r = check(h.to_vec());
        assert_eq!((r.checked, r.over_budget), (1, 0), "{r:?}");
        assert!(r.violations.is_empty(), "{:?}", r.violations);

        let seg: Records<StoreOp, StoreRet> = h
            .iter()
            .map(|r| match r {
                Record::Invoke { id, op } => (*id, Some(op.clone()), None),
                Record::Return { id, ret } => (*id, None, Some(ret.clone())),
                Record::Reset | Record::Restart => unreachable!(),
            })
            .collect();
        assert_eq!(search(MapSpec::new(), &seg, 3), None, "out of steps: no verdict");
        assert_eq!(search(MapSpec::new(), &seg, SEARCH_STEPS_MAX), Some(true));
    }

    fn get(id: u64) -> Record {
        Record::Invoke { id, op: StoreOp::Get { map: "m".into(), key: "k".into() } }
    }

    fn read(id: u64, v: Option<&str>) -> Record {
        Record::Return { id, ret: StoreRet::Get(v.map(Into::into), id) }
    }

    /// Enough writes of other keys to send map "m" key by key.
    fn crowd() -> Vec<Record> {
        (1000..1000 + HISTORY_OPS_MAX as u64).flat_map(|i| [other(i), other_done(i)]).collect()
    }

    /// A checker fed [`crowd`]: its map is judged key by key from the start.
    fn crowded() -> Checker {
        let mut c = Checker::default();
        crowd().into_iter().for_each(|r| c.record(r));
        c
    }

    #[test]
    fn a_long_key_history_is_judged_stretch_by_stretch() {
        // 3·HISTORY_OPS_MAX sequential writes of one key: too long for one search, but every
        // write returns before the next, so each is a stretch of its own, and a stale read at
        // the end is still caught.
        let n = 3 * HISTORY_OPS_MAX as u64;
        let mut h = crowd();
        for i in 1..=n {
            h.extend([set(i, &format!("v{i}")), wrote(i, true, i, &format!("v{i}"))]);
        }
        let ok = check([h.clone(), vec![get(n + 1), read(n + 1, Some(&format!("v{n}")))]].concat());
        assert_eq!((ok.skipped, ok.over_budget), (0, 0), "{ok:?}");
        assert!(ok.violations.is_empty(), "{:?}", ok.violations);
        assert_eq!(ok.ops, HISTORY_OPS_MAX as u64 + n + 1, "every operation judged");
        let stale = check([h, vec![get(n + 1), read(n + 1, Some("v1"))]].concat());
        assert_eq!(stale.violations.len(), 1, "{:?}", stale.violations);
    }

    #[test]
    fn every_value_an_order_leaves_is_carried_past_a_quiescent_point() {
        // Two overlapping sets: either may be last. A later read may see either, and pins it
        // down: a read of the other one after it is not linearizable.
        let both = [set(1, "a"), set(2, "b"), wrote(1, true, 1, "a"), wrote(2, true, 2, "b")];
        for (reads, ok) in [
            (vec![Some("a")], true),
            (vec![Some("b")], true),
            (vec![Some("c")], false),
            (vec![Some("a"), Some("a")], true),
            (vec![Some("a"), Some("b")], false),
        ] {
            let mut h = crowd();
            h.extend(both.clone());
            for (i, v) in reads.iter().enumerate() {
                h.extend([get(10 + i as u64), read(10 + i as u64, *v)]);
            }
            let r = check(h);
            assert_eq!(r.violations.is_empty(), ok, "reads {reads:?}: {:?}", r.violations);
        }
    }

    #[test]
    fn a_snapshot_of_a_quiescent_key_pins_down_its_value() {
        // Two overlapping sets leave "k" holding "a" or "b"; a snapshot after them that sees
        // "a" rules out "b" for a later read, one that sees "c" is a violation, and the keys
        // the snapshot agrees with (the crowd) tell nothing.
        let snap = |id: u64, k: &str| {
            let mut entries: BTreeMap<String, String> =
                (1000..1000 + HISTORY_OPS_MAX as u64).map(|i| (format!("o{i}"), "x".to_owned())).collect();
            entries.insert("k".into(), k.into());
            [
                Record::Invoke { id, op: StoreOp::Snapshot { map: "m".into() } },
                Record::Return { id, ret: StoreRet::Snapshot(MapSnapshot { rev: 1, entries, ..Default::default() }) },
            ]
        };
        let both = [set(1, "a"), set(2, "b"), wrote(1, true, 1, "a"), wrote(2, true, 2, "b")];
        for (seen, later, ok) in [("a", "a", true), ("b", "b", true), ("a", "b", false), ("c", "c", false)] {
            let mut h = crowd();
            h.extend(both.clone());
            h.extend(snap(5, seen));
            h.extend([get(6), read(6, Some(later))]);
            let r = check(h);
            assert_eq!(r.violations.is_empty(), ok, "snapshot {seen}, read {later}: {:?}", r.violations);
        }
    }

    #[test]
    fn a_snapshot_holding_a_key_nobody_wrote_is_caught() {
        let snap = |extra: bool| {
            let mut entries: BTreeMap<String, String> =
                (1000..1000 + HISTORY_OPS_MAX as u64).map(|i| (format!("o{i}"), "x".to_owned())).collect();
            if extra {
                entries.insert("ghost".into(), "boo".into());
            }
            Record::Return { id: 1, ret: StoreRet::Snapshot(MapSnapshot { rev: 1, entries, ..Default::default() }) }
        };
        for (extra, ok) in [(false, true), (true, false)] {
            let mut h = crowd();
            h.extend([Record::Invoke { id: 1, op: StoreOp::Snapshot { map: "m".into() } }, snap(extra)]);
            let r = check(h);
            assert_eq!(r.violations.is_empty(), ok, "{:?}", r.violations);
        }
    }

    #[test]
    fn a_write_given_up_on_does_not_gather_every_later_snapshot() {
        // Write #1 is abandoned (open forever); then 2·HISTORY_OPS_MAX snapshots, after the
        // key's last operation: the key is still judged, not skipped as too long. A later read
        // of the key brings the snapshots before it back into its stretch.
        let run = |read: Option<&str>| {
            let mut c = Checker::default();
            for r in crowd() {
                if let Record::Invoke { id, op } = r {
                    c.invoke(id, op);
                } else if let Record::Return { id, ret } = r {
                    c.complete(id, ret);
                }
            }
            c.invoke(1, StoreOp::Write { map: "m".into(), key: "k".into(), write: MapWrite::Set("a".into()) });
            c.abandon(1);
            let entries: BTreeMap<String, String> =
                (1000..1000 + HISTORY_OPS_MAX as u64).map(|i| (format!("o{i}"), "x".to_owned())).collect();
            for id in 2..2 + 2 * HISTORY_OPS_MAX as u64 {
                c.invoke(id, StoreOp::Snapshot { map: "m".into() });
                c.complete_snapshot(id, &MapSnapshot { rev: 1, entries: entries.clone(), ..Default::default() });
            }
            if let Some(v) = read {
                c.invoke(9999, StoreOp::Get { map: "m".into(), key: "k".into() });
                c.complete(9999, StoreRet::Get(Some(v.into()), 1));
            }
            c.finish()
        };
        let r = run(None);
        assert_eq!((r.skipped, r.violations.len()), (0, 0), "{r:?}");
        // The snapshots saw "k" absent; a read of "a" after them is fine (the write landed
        // late), but the 200 snapshots make the key's stretch too long: skipped, as before.
        let r = run(Some("a"));
        assert_eq!((r.skipped, r.violations.len()), (1, 0), "{r:?}");
    }

    #[test]
    fn a_snapshot_parked_while_idle_keeps_its_place_before_an_older_snapshots_return() {
        // Key by key (a crowded map): write #1 of "a" is sent, snapshot #2 is sent, #1 is given
        // up on (the key goes idle: only #2 and a write open forever keep its stretch open);
        // snapshot #3 is sent and returns without "k" (before #1 landed), then #2 returns with
        // "a" (after it landed); a read #4 then sees "a". Linearizable: #3, #1, #2, #4. Seeing
        // "z" is not.
        for (late, ok) in [("a", true), ("z", false)] {
            let mut c = crowded();
            let others: BTreeMap<String, String> =
                (1000..1000 + HISTORY_OPS_MAX as u64).map(|i| (format!("o{i}"), "x".to_owned())).collect();
            c.invoke(1, StoreOp::Write { map: "m".into(), key: "k".into(), write: MapWrite::Set("a".into()) });
            c.invoke(2, StoreOp::Snapshot { map: "m".into() });
            c.abandon(1);
            c.invoke(3, StoreOp::Snapshot { map: "m".into() });
            c.complete_snapshot(3, &MapSnapshot { rev: 1, entries: others.clone(), ..Default::default() });
            let mut with_k = others.clone();
            with_k.insert("k".into(), late.into());
            c.complete_snapshot(2, &MapSnapshot { rev: 2, entries: with_k, ..Default::default() });
            // A later read of the key brings the parked snapshot back into its stretch.
            c.invoke(4, StoreOp::Get { map: "m".into(), key: "k".into() });
            c.complete(4, StoreRet::Get(Some(late.into()), 2));
            let r = c.finish();
            assert_eq!(r.violations.is_empty(), ok, "late snapshot saw {late}: {:?}", r.violations);
        }
    }

    #[test]
    fn a_lent_snapshot_is_judged_as_an_owned_one() {
        // Small map (whole) and crowded map (key by key): the same verdicts either way.
        for crowded in [false, true] {
            for (seen, ok) in [("a", true), ("z", false)] {
                let mut c = Checker::default();
                let mut h = if crowded { crowd() } else { Vec::new() };
                h.extend([set(1, "a"), wrote(1, true, 1, "a")]);
                h.into_iter().for_each(|r| c.record(r));
                let mut entries: BTreeMap<String, String> = if crowded {
                    (1000..1000 + HISTORY_OPS_MAX as u64).map(|i| (format!("o{i}"), "x".to_owned())).collect()
                } else {
                    BTreeMap::new()
                };
                entries.insert("k".into(), seen.into());
                c.invoke(2, StoreOp::Snapshot { map: "m".into() });
                c.complete_snapshot(2, &MapSnapshot { rev: 1, entries, ..Default::default() });
                let r = c.finish();
                assert_eq!(r.violations.is_empty(), ok, "crowded {crowded}, saw {seen}: {:?}", r.violations);
            }
        }
    }

    #[test]
    fn an_abandoned_read_is_dropped_and_an_abandoned_write_stays_open() {
        // Read #2 given up on: the key's stretch closes without it. Write #3 given up on: a
        // later read may see it or not, never anything else.
        for (seen, ok) in [(Some("a"), true), (Some("b"), true), (Some("z"), false)] {
            let mut c = crowded();
            let inv = |c: &mut Checker, r: Record| c.record(r);
            inv(&mut c, set(1, "a"));
            inv(&mut c, get(2));
            inv(&mut c, wrote(1, true, 1, "a"));
            c.abandon(2);
            inv(&mut c, set(3, "b"));
            c.abandon(3);
            inv(&mut c, get(4));
            inv(&mut c, read(4, seen));
            let r = c.finish();
            assert_eq!(r.violations.is_empty(), ok, "read {seen:?}: {:?}", r.violations);
        }
    }

    #[test]
    fn a_roll_back_starts_a_lifetime_from_the_checkpoint_judged_whole_and_key_by_key() {
        // The checkpoint holds "a" at revision 1001; the write of "b" after it is lost.
        let mut saved = StoreState::default();
        let kept = saved.map_write("m", "k", &MapWrite::Set("a".into()), 1).map(|o| o.0.rev);
        assert_eq!(kept, Ok(1001));
        let got = |id, v: Option<&str>, rev| Record::Return { id, ret: StoreRet::Get(v.map(Into::into), rev) };
        let judge = |after: &[Record], big: bool| {
            let mut c = Checker::default();
            [set(1, "a"), wrote(1, true, 1001, "a"), set(2, "b"), wrote(2, true, 1002, "b")]
                .into_iter()
                .for_each(|r| c.record(r));
            c.rolled_back_to(&saved);
            after.iter().cloned().for_each(|r| c.record(r));
            if big {
                // Past the whole-map limit: judged key by key (values only).
                for id in 1000..1001 + HISTORY_OPS_MAX as u64 {
                    [other(id), other_done(id)].into_iter().for_each(|r| c.record(r));
                }
            }
            let r = c.finish();
            assert_eq!(r.from_checkpoint, 1);
            r.violations
        };
        // Read back at the checkpoint, then a commit that jumps (the store restarted).
        let fine =
            [get(3), got(3, Some("a"), 1001), set(4, "c"), wrote(4, true, 7001, "c"), get(5), got(5, Some("c"), 7001)];
        for big in [false, true] {
            assert_eq!(judge(&fine, big), Vec::<String>::new(), "key by key: {big}");
            assert_eq!(judge(&[get(3), got(3, Some("b"), 1002)], big).len(), 1, "the lost write read back ({big})");
            assert_eq!(judge(&[get(3), got(3, None, 1001)], big).len(), 1, "the checkpoint's value missing ({big})");
        }
        assert_eq!(judge(&[get(3), got(3, Some("a"), 1002)], false).len(), 1, "a revision the checkpoint did not have");
    }

    #[test]
    fn a_restart_that_kept_the_data_lets_the_next_commit_jump_once_and_only_upward() {
        let got = |id, v: &str, rev| Record::Return { id, ret: StoreRet::Get(Some(v.into()), rev) };
        let before = [set(1, "a"), wrote(1, true, 5001, "a")];
        // A read after the restart still sees the old revision; the next commits take `rev`, `rev + 1`.
        let judge = |restart: bool, rev: u64| {
            let mut h = before.to_vec();
            h.extend(restart.then_some(Record::Restart));
            h.extend([get(2), got(2, "a", 5001), set(3, "b"), wrote(3, true, rev, "b")]);
            h.extend([set(4, "c"), wrote(4, true, rev + 1, "c")]);
            check(h).violations.len()
        };
        assert_eq!(judge(true, 9001), 0, "a jump at the first commit after a restart");
        assert_eq!(judge(true, 5002), 0, "or none");
        assert_eq!(judge(false, 9001), 1, "no jump without a restart");
        assert_eq!(judge(true, 4001), 1, "never down");
        let mut twice = before.to_vec();
        twice.extend([
            Record::Restart,
            set(3, "b"),
            wrote(3, true, 9001, "b"),
            set(4, "c"),
            wrote(4, true, 12001, "c"),
        ]);
        assert_eq!(check(twice).violations.len(), 1, "one jump per restart");
    }

    /// Two restarts that kept the data, the second while a commit was in flight: the commit
    /// landed between them (it jumps after the first) and the next commit jumps after the
    /// second. The search placed the second restart at once, before the commit (a restart while
    /// a jump is already allowed changes nothing there), and found no order (a false L1 at
    /// completer seed 956 under a hunt bug that gave up its drain's retries).
    #[test]
    fn a_restart_during_a_commit_may_go_after_it() {
        let judge = |second_restart: bool| {
            let mut h = vec![set(1, "a"), wrote(1, true, 5001, "a"), Record::Restart, set(2, "b")];
            h.extend(second_restart.then_some(Record::Restart));
            h.extend([wrote(2, true, 9001, "b"), set(3, "c"), wrote(3, true, 12001, "c")]);
            check(h).violations
        };
        assert_eq!(judge(true), Vec::<String>::new());
        assert_eq!(judge(false).len(), 1, "one jump per restart still");
    }

    /// The first commit after a restart is a write whose outcome was never seen (its reply
    /// lost): a later read sees the jumped revision (poolloss seed 278, the cleanup map).
    #[test]
    fn an_open_write_may_take_the_restarts_jump() {
        let got = |id, v: &str, rev| Record::Return { id, ret: StoreRet::Get(Some(v.into()), rev) };
        let judge = |restart: bool, rev: u64| {
            let mut h = vec![set(1, "a"), wrote(1, true, 5001, "a")];
            h.extend(restart.then_some(Record::Restart));
            h.extend([set(2, "b"), get(3), got(3, "b", rev), set(4, "c"), wrote(4, true, rev + 1, "c")]);
            check(h).violations.len()
        };
        assert_eq!(judge(true, 9001), 0, "the open write jumped");
        assert_eq!(judge(true, 5002), 0, "or not");
        assert_eq!(judge(false, 9001), 1, "no jump without a restart");
        assert_eq!(judge(true, 4001), 1, "never down");
    }

    #[test]
    fn a_reset_starts_a_new_lifetime_and_large_histories_are_counted_as_skipped() {
        let h = [set(1, "a"), wrote(1, true, 1001, "a"), Record::Reset, set(2, "b"), wrote(2, true, 5001, "b")];
        let r = check(h.to_vec());
        assert_eq!((r.checked, r.skipped), (2, 0));
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        let big: Vec<Record> = (1..=HISTORY_OPS_MAX as u64 + 1).map(|i| set(i, "x")).collect();
        let r = check(big.to_vec());
        assert_eq!((r.checked, r.skipped), (0, 1));
    }

    /// Merging adds every count and keeps both reports' violations in order.
    #[test]
    fn reports_merge_by_summing() {
        let a =
            Report { checked: 1, ops: 2, skipped: 3, over_budget: 4, from_checkpoint: 5, violations: vec!["x".into()] };
        let b = Report {
            checked: 10,
            ops: 20,
            skipped: 30,
            over_budget: 40,
            from_checkpoint: 50,
            violations: vec!["y".into()],
        };
        let mut m = a.clone();
        m.merge(&b);
        let sum = Report {
            checked: 11,
            ops: 22,
            skipped: 33,
            over_budget: 44,
            from_checkpoint: 55,
            violations: vec!["x".into(), "y".into()],
        };
        assert_eq!(m, sum);
    }

    /// Revision 0 is the revision of a map that does not exist: a read of an empty store sees
    /// it, and sees nothing else.
    #[test]
    fn revision_zero_is_the_revision_of_no_map() {
        let get = |id| Record::Invoke { id, op: StoreOp::Get { map: "m".into(), key: "k".into() } };
        let read = |id, v: Option<&str>, rev| Record::Return { id, ret: StoreRet::Get(v.map(Into::into), rev) };
        let r = check(vec![get(1), read(1, None, 0)]);
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        assert_eq!(r.checked, 1);
        let r = check(vec![get(1), read(1, None, 5)]);
        assert_eq!(r.violations.len(), 1);
        assert!(
            r.violations[0].ends_with("no sequential order explains these 2 records: #1 invoke Get { map: \"m\", key: \"k\" }; #1 return Get(None, 5)"),
            "{}",
            r.violations[0]
        );
        let h = vec![set(1, "a"), wrote(1, true, 9001, "a"), get(2), read(2, Some("a"), 0)];
        assert_eq!(check(h).violations.len(), 1);
    }

    /// A transaction judged whole: guarded on `k`'s value, writing `k`; its outcome says
    /// whether it applied and the revision, both judged.
    #[test]
    fn transactions_are_judged_on_their_outcome_and_revision() {
        let txn = |id, expected: &str, new: &str| Record::Invoke {
            id,
            op: StoreOp::Txn {
                map: "m".into(),
                guards: vec![("k".into(), Expect::Value(expected.into()))],
                writes: vec![("k".into(), Some(new.into()))],
            },
        };
        let done = |id, applied, rev| Record::Return { id, ret: StoreRet::Txn(TxnOutcome { applied, rev }) };
        let judge = |tail: &[Record]| {
            let mut h = vec![set(1, "a"), wrote(1, true, 7001, "a")];
            h.extend_from_slice(tail);
            check(h).violations.len()
        };
        // One of two transactions from "a" applies; the other is refused at the new revision.
        assert_eq!(judge(&[txn(2, "a", "b"), txn(3, "a", "c"), done(2, true, 7002), done(3, false, 7002)]), 0);
        assert_eq!(judge(&[txn(2, "a", "b"), txn(3, "a", "c"), done(2, true, 7002), done(3, true, 7003)]), 1);
        // Applied, but at the revision it found: no commit took it.
        assert_eq!(judge(&[txn(2, "x", "b"), done(2, false, 7001)]), 0);
        assert_eq!(judge(&[txn(2, "x", "b"), done(2, true, 7001)]), 1);
    }

    /// A read given up on is dropped from a map judged whole, and only it: the rest is still
    /// judged.
    #[test]
    fn an_abandoned_read_leaves_the_rest_of_the_history_judged() {
        let mut c = Checker::default();
        c.record(set(1, "a"));
        c.record(wrote(1, true, 7001, "a"));
        c.record(get(9));
        c.record(cas(2, "a", "b"));
        c.record(cas(3, "a", "c"));
        c.record(wrote(2, true, 7002, "b"));
        c.abandon(9);
        c.record(wrote(3, true, 7003, "c"));
        let r = c.finish();
        assert_eq!((r.checked, r.ops, r.violations.len()), (1, 3, 1), "{r:?}");
    }

    /// A write in flight at a reset may land in the new lifetime (a read there may see it); a
    /// read in flight constrains nothing; the violation names its lifetime.
    #[test]
    fn a_write_in_flight_at_a_reset_stays_open_in_the_new_lifetime() {
        let got = |id, v: &str, rev| Record::Return { id, ret: StoreRet::Get(Some(v.into()), rev) };
        let h = vec![set(1, "a"), get(2), Record::Reset, get(3), got(3, "a", 5001), got(2, "z", 1)];
        let r = check(h);
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        let h = vec![set(1, "a"), wrote(1, true, 1001, "a"), Record::Reset, get(3), got(3, "a", 5001)];
        let r = check(h);
        assert_eq!(r.violations.len(), 1, "{r:?}");
        assert!(r.violations[0].contains("(store lifetime 1)"), "{}", r.violations[0]);
    }

    /// A write still in flight across two resets (its call waited out both restarts before it
    /// was sent) may land in the lifetime after the second: it stays open there too.
    #[test]
    fn a_write_in_flight_across_two_resets_stays_open_in_both_new_lifetimes() {
        let got = |id, v: &str, rev| Record::Return { id, ret: StoreRet::Get(Some(v.into()), rev) };
        let h = vec![set(1, "a"), Record::Reset, Record::Reset, get(3), got(3, "a", 5001)];
        let r = check(h);
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        // The same from a roll-back, and once the write returns it is dropped: a third lifetime
        // does not see it.
        let mut c = Checker::default();
        c.record(set(1, "a"));
        c.rolled_back_to(&StoreState::default());
        c.record(Record::Reset);
        c.record(wrote(1, true, 1001, "a"));
        c.record(Record::Reset);
        c.record(get(3));
        c.record(got(3, "a", 5001));
        let r = c.finish();
        assert_eq!(r.violations.len(), 1, "{r:?}");
        assert!(r.violations[0].contains("(store lifetime 3)"), "{}", r.violations[0]);
    }

    /// Two restarts that kept the data, each followed by a commit that jumps: each restart
    /// allows its own jump.
    #[test]
    fn each_restart_allows_its_own_jump() {
        let mut h = vec![set(1, "a"), wrote(1, true, 5001, "a"), Record::Restart, set(2, "b")];
        h.extend([wrote(2, true, 9001, "b"), Record::Restart, set(3, "c"), wrote(3, true, 12001, "c")]);
        let r = check(h);
        assert!(r.violations.is_empty(), "{:?}", r.violations);
    }

    /// A map goes key by key as soon as it holds more than [`HISTORY_OPS_MAX`] operations
    /// certain to count (writes when sent, reads when they return, writes carried over a
    /// reset), not at the end: the checker's memory follows what is in flight.
    #[test]
    fn a_map_splits_key_by_key_as_soon_as_it_outgrows_the_limit() {
        let split = |c: &Checker| matches!(c.maps.first(), Some((_, MapHist::Keys(_))));
        let n = HISTORY_OPS_MAX as u64;
        // Writes count when sent.
        let mut c = Checker::default();
        (1..=n).for_each(|i| c.record(other(i)));
        assert!(!split(&c));
        c.record(other(n + 1));
        assert!(split(&c));
        // Reads count when they return, not when sent.
        let mut c = Checker::default();
        (1..=n + 1).for_each(|i| c.record(get(i)));
        assert!(!split(&c));
        (1..=n).for_each(|i| c.record(read(i, None)));
        assert!(!split(&c));
        c.record(read(n + 1, None));
        assert!(split(&c));
        // Writes in flight at a reset count in the new lifetime.
        let mut c = Checker::default();
        (1..=n + 1).for_each(|i| c.record(other(i)));
        c.record(Record::Reset);
        assert!(split(&c));
    }

    /// A snapshot sent while a write of the key is in flight joins the key's stretch (it is
    /// not parked: the key is not idle), and what it saw of the key is judged there.
    #[test]
    fn a_snapshot_during_a_write_in_flight_is_judged_with_it() {
        for (seen, ok) in [(None, true), (Some("a"), true), (Some("z"), false)] {
            let mut c = crowded();
            let mut entries: BTreeMap<String, String> =
                (1000..1000 + HISTORY_OPS_MAX as u64).map(|i| (format!("o{i}"), "x".to_owned())).collect();
            if let Some(v) = seen {
                entries.insert("k".into(), v.into());
            }
            c.record(set(1, "a"));
            c.invoke(2, StoreOp::Snapshot { map: "m".into() });
            c.record(wrote(1, true, 1, "a"));
            c.complete_snapshot(2, &MapSnapshot { rev: 1, entries, ..Default::default() });
            let r = c.finish();
            assert_eq!(r.violations.is_empty(), ok, "snapshot saw {seen:?}: {:?}", r.violations);
        }
    }

    /// A roll-back to a checkpoint that lacks a map starts that map empty.
    #[test]
    fn a_roll_back_to_a_checkpoint_without_the_map_starts_it_empty() {
        let mut saved = StoreState::default();
        assert!(saved.map_write("n", "k", &MapWrite::Set("a".into()), 1).is_ok());
        let mut c = Checker::default();
        c.rolled_back_to(&saved);
        [get(1), Record::Return { id: 1, ret: StoreRet::Get(None, 0) }, set(2, "b"), wrote(2, true, 9001, "b")]
            .into_iter()
            .for_each(|r| c.record(r));
        let r = c.finish();
        assert_eq!((r.checked, r.violations.len()), (1, 0), "{r:?}");
    }

    /// A snapshot parked while the key was idle and still in flight when a read of the key
    /// comes joins the stretch open, before the read: the stretch stays open until it returns,
    /// and what it saw is judged there (with the write given up on landed or not).
    #[test]
    fn a_parked_snapshot_still_in_flight_joins_the_next_stretch_open() {
        for (seen, ok) in [(None, true), (Some("a"), true), (Some("z"), false)] {
            let mut c = crowded();
            let mut entries: BTreeMap<String, String> =
                (1000..1000 + HISTORY_OPS_MAX as u64).map(|i| (format!("o{i}"), "x".to_owned())).collect();
            if let Some(v) = seen {
                entries.insert("k".into(), v.into());
            }
            c.record(set(1, "a"));
            c.abandon(1);
            c.invoke(2, StoreOp::Snapshot { map: "m".into() });
            c.record(get(3));
            c.record(read(3, None));
            c.complete_snapshot(2, &MapSnapshot { rev: 1, entries, ..Default::default() });
            c.record(get(4));
            c.record(read(4, seen));
            let r = c.finish();
            assert_eq!(r.violations.is_empty(), ok, "snapshot saw {seen:?}: {:?}", r.violations);
            assert_eq!(r.skipped, 0, "{r:?}");
        }
    }

    /// A snapshot sent before the key went idle and returned into its stretch leaves the key
    /// idle: the snapshots after it are parked, not gathered into a stretch too long to judge.
    #[test]
    fn a_snapshot_returned_into_the_stretch_leaves_the_key_idle() {
        let mut c = crowded();
        let entries: BTreeMap<String, String> =
            (1000..1000 + HISTORY_OPS_MAX as u64).map(|i| (format!("o{i}"), "x".to_owned())).collect();
        c.record(set(1, "a"));
        c.invoke(2, StoreOp::Snapshot { map: "m".into() });
        c.abandon(1);
        c.complete_snapshot(2, &MapSnapshot { rev: 1, entries: entries.clone(), ..Default::default() });
        for id in 3..3 + 2 * HISTORY_OPS_MAX as u64 {
            c.invoke(id, StoreOp::Snapshot { map: "m".into() });
            c.complete_snapshot(id, &MapSnapshot { rev: 1, entries: entries.clone(), ..Default::default() });
        }
        let r = c.finish();
        assert_eq!((r.skipped, r.violations.len()), (0, 0), "{r:?}");
    }

    /// A read given up on leaves the key's stretch: the key's later operations close their
    /// own stretches (each judged), not one that grows past the limits.
    #[test]
    fn an_abandoned_read_does_not_hold_the_key_open() {
        let long = |c: &mut Checker| {
            for id in 10..10 + 2 * HISTORY_OPS_MAX as u64 {
                c.record(set(id, "b"));
                c.record(wrote(id, true, id, "b"));
            }
            c.record(get(9999));
            c.record(read(9999, Some("b")));
        };
        // A read of the key, given up on (the map already key by key).
        let mut c = crowded();
        c.record(other(5000));
        c.record(get(1));
        assert!(matches!(c.maps.first(), Some((_, MapHist::Keys(_)))));
        c.abandon(1);
        long(&mut c);
        let r = c.finish();
        assert_eq!((r.skipped, r.violations.len()), (0, 0), "{r:?}");
    }

    /// A snapshot parked behind an older one that is then given up on is judged at the cut:
    /// of the values two overlapping writes may leave, it keeps the one it saw.
    #[test]
    fn a_parked_snapshot_keeps_the_value_it_saw() {
        for (later, ok) in [("a", true), ("b", false)] {
            let mut c = crowded();
            c.record(other(5000));
            let entries: BTreeMap<String, String> =
                (1000..1000 + HISTORY_OPS_MAX as u64).map(|i| (format!("o{i}"), "x".to_owned())).collect();
            let mut with_a = entries.clone();
            with_a.insert("k".into(), "a".into());
            c.record(set(1, "a"));
            c.record(set(2, "b"));
            c.invoke(3, StoreOp::Snapshot { map: "m".into() });
            c.record(wrote(1, true, 1, "a"));
            c.record(wrote(2, true, 2, "b"));
            c.invoke(4, StoreOp::Snapshot { map: "m".into() });
            c.complete_snapshot(4, &MapSnapshot { rev: 2, entries: with_a, ..Default::default() });
            c.abandon(3);
            c.record(get(5));
            c.record(read(5, Some(later)));
            let r = c.finish();
            assert_eq!(r.violations.is_empty(), ok, "read {later}: {:?}", r.violations);
        }
    }

    /// A key's stretch with no quiescent point past [`HISTORY_OPS_MAX`] certain operations, or
    /// with more than [`HISTORY_OPEN_MAX`] writes given up on, is skipped, not searched.
    #[test]
    fn a_key_past_its_limits_is_skipped() {
        let n = HISTORY_OPS_MAX as u64;
        // Write #1 open while `extra` more writes of the key come and go.
        let overlapping = |extra: u64| {
            let mut c = crowded();
            c.record(other(5000));
            c.record(set(1, "a"));
            for id in 10..10 + extra {
                c.record(set(id, "b"));
                c.record(wrote(id, true, id, "b"));
            }
            c.record(wrote(1, true, 1, "a"));
            c.finish()
        };
        let r = overlapping(n - 1);
        assert_eq!((r.skipped, r.violations.len()), (0, 0), "{r:?}");
        let r = overlapping(n);
        assert_eq!((r.skipped, r.violations.len()), (1, 0), "{r:?}");
        // `given_up` writes of the key given up on.
        let abandoned = |given_up: u64| {
            let mut c = crowded();
            c.record(other(5000));
            for id in 1..=given_up {
                c.record(set(id, "a"));
                c.abandon(id);
            }
            c.finish()
        };
        let r = abandoned(HISTORY_OPEN_MAX as u64);
        assert_eq!((r.skipped, r.violations.len()), (0, 0), "{r:?}");
        let r = abandoned(HISTORY_OPEN_MAX as u64 + 1);
        assert_eq!((r.skipped, r.violations.len()), (1, 0), "{r:?}");
    }

    /// A key's last stretch, held open by a write given up on, is judged at the end and its
    /// operations counted, whether it passes or fails.
    #[test]
    fn a_last_stretch_with_a_write_given_up_on_counts_its_operations() {
        for (seen, ok) in [("b", true), ("z", false)] {
            let mut c = crowded();
            c.record(set(1, "a"));
            c.abandon(1);
            c.record(set(2, "b"));
            c.record(wrote(2, true, 2, "b"));
            c.record(get(3));
            c.record(read(3, Some(seen)));
            let r = c.finish();
            assert_eq!(r.violations.is_empty(), ok, "read {seen}: {:?}", r.violations);
            // The crowd's keys, one write each, and key "k"'s three operations.
            assert_eq!((r.checked, r.ops), (HISTORY_OPS_MAX as u64 + 1, HISTORY_OPS_MAX as u64 + 3), "{r:?}");
        }
    }

    /// A read that never returns holds its key's stretch open until the end; dropped there,
    /// the stretch splits at its quiescent points and every piece is judged, the last too.
    #[test]
    fn a_stretch_held_open_by_a_read_that_never_returns_is_judged_piece_by_piece() {
        for (seen, ok) in [("c", true), ("b", false)] {
            let mut c = crowded();
            c.record(other(5000));
            c.record(get(1));
            c.record(set(2, "b"));
            c.record(wrote(2, true, 2, "b"));
            c.record(set(3, "c"));
            c.record(wrote(3, true, 3, "c"));
            c.record(get(4));
            c.record(read(4, Some(seen)));
            let r = c.finish();
            assert_eq!(r.violations.is_empty(), ok, "read {seen}: {:?}", r.violations);
        }
    }

    /// A snapshot still in flight when a key's stretch starts is one of its reads, however many
    /// snapshots returned meanwhile: what it saw of the key is judged.
    #[test]
    fn a_snapshot_in_flight_joins_a_stretch_that_starts_after_others_returned() {
        for (seen, ok) in [(None, true), (Some("a"), true), (Some("z"), false)] {
            let mut c = crowded();
            c.record(other(5000));
            let mut entries: BTreeMap<String, String> =
                (1000..1000 + HISTORY_OPS_MAX as u64).map(|i| (format!("o{i}"), "x".to_owned())).collect();
            entries.insert("o5000".into(), "x".into());
            c.invoke(1, StoreOp::Snapshot { map: "m".into() });
            c.invoke(2, StoreOp::Snapshot { map: "m".into() });
            c.complete_snapshot(1, &MapSnapshot { rev: 1, entries: entries.clone(), ..Default::default() });
            c.record(set(3, "a"));
            c.record(wrote(3, true, 3, "a"));
            if let Some(v) = seen {
                entries.insert("k".into(), v.into());
            }
            c.complete_snapshot(2, &MapSnapshot { rev: 2, entries, ..Default::default() });
            let r = c.finish();
            assert_eq!(r.violations.is_empty(), ok, "snapshot saw {seen:?}: {:?}", r.violations);
        }
    }

    /// A snapshot of a quiescent key is judged on the spot, present or not: one that lacks a
    /// key holding a value, or holds a key deleted, is a violation.
    #[test]
    fn a_snapshot_is_judged_on_every_quiescent_key() {
        let entries: BTreeMap<String, String> =
            (1000..1000 + HISTORY_OPS_MAX as u64).map(|i| (format!("o{i}"), "x".to_owned())).collect();
        let with_k = |v: &str| {
            let mut e = entries.clone();
            e.insert("k".into(), v.into());
            e
        };
        let delete = |id| Record::Invoke {
            id,
            op: StoreOp::Write { map: "m".into(), key: "k".into(), write: MapWrite::CompareAndDelete("a".into()) },
        };
        let deleted =
            |id| Record::Return { id, ret: StoreRet::Write(WriteOutcome { applied: true, rev: id, value: None }) };
        for (gone, seen, ok) in
            [(false, Some("a"), true), (false, None, false), (true, None, true), (true, Some("a"), false)]
        {
            let mut c = crowded();
            c.record(set(1, "a"));
            c.record(wrote(1, true, 1, "a"));
            if gone {
                c.record(delete(2));
                c.record(deleted(2));
            }
            c.invoke(3, StoreOp::Snapshot { map: "m".into() });
            let e = seen.map_or_else(|| entries.clone(), with_k);
            c.complete_snapshot(3, &MapSnapshot { rev: 3, entries: e, ..Default::default() });
            let r = c.finish();
            assert_eq!(r.violations.is_empty(), ok, "deleted {gone}, snapshot saw {seen:?}: {:?}", r.violations);
            // The crowd's writes, key "k"'s own, and the snapshot where it failed the key.
            assert_eq!(r.ops, HISTORY_OPS_MAX as u64 + 1 + u64::from(gone) + u64::from(!ok), "{r:?}");
        }
    }

    /// A snapshot given up on leaves every stretch, and a read given up on while a write of
    /// its key returned closes the stretch: the key's later operations close their own
    /// stretches, not one that grows past the limits.
    #[test]
    fn abandoned_snapshots_and_reads_do_not_hold_stretches_open() {
        let long = |c: &mut Checker| {
            for id in 10..10 + 2 * HISTORY_OPS_MAX as u64 {
                c.record(set(id, "b"));
                c.record(wrote(id, true, id, "b"));
            }
        };
        let mut c = crowded();
        c.record(other(5000));
        c.invoke(1, StoreOp::Snapshot { map: "m".into() });
        c.abandon(1);
        long(&mut c);
        let r = c.finish();
        assert_eq!((r.skipped, r.violations.len()), (0, 0), "{r:?}");
        let mut c = crowded();
        c.record(other(5000));
        c.record(set(2, "a"));
        c.record(get(1));
        c.record(wrote(2, true, 2, "a"));
        c.abandon(1);
        long(&mut c);
        let r = c.finish();
        assert_eq!((r.skipped, r.violations.len()), (0, 0), "{r:?}");
    }

    /// The thread's recorder (what a simulated run feeds): nothing is recorded before
    /// `begin`; ids count from 1; `finish` judges what was recorded and stops recording.
    #[test]
    fn the_threads_recorder_judges_what_it_recorded() {
        let w = |v: &str| StoreOp::Write { map: "m".into(), key: "k".into(), write: MapWrite::Set(v.into()) };
        let out = |rev, v: &str| StoreRet::Write(WriteOutcome { applied: true, rev, value: Some(v.into()) });
        assert_eq!(invoke(w("a")), None);
        begin();
        assert_eq!(invoke(w("a")), Some(1));
        complete(1, out(7001, "a"));
        assert_eq!(invoke(w("b")), Some(2));
        complete(2, out(7001, "b"));
        let r = finish();
        assert_eq!((r.checked, r.ops, r.violations.len()), (1, 2, 1), "{r:?}");
        assert_eq!(invoke(w("c")), None);
        assert_eq!(finish(), Report::default());
    }

    /// Transactions judged key by key: two from one value cannot both apply; one refused by a
    /// guard on another key, or certainly not applied, changes nothing of this key.
    #[test]
    fn transactions_are_judged_key_by_key() {
        let txn = |id, guards: Vec<(&str, Expect)>, new: &str| Record::Invoke {
            id,
            op: StoreOp::Txn {
                map: "m".into(),
                guards: guards.into_iter().map(|(k, e)| (k.to_owned(), e)).collect(),
                writes: vec![("k".into(), Some(new.into()))],
            },
        };
        let a = || Expect::Value("a".into());
        let done = |id, applied| Record::Return { id, ret: StoreRet::Txn(TxnOutcome { applied, rev: id }) };
        let judge = |tail: Vec<Record>| {
            let mut c = crowded();
            c.record(other(5000));
            [set(1, "a"), wrote(1, true, 1, "a")].into_iter().chain(tail).for_each(|r| c.record(r));
            let r = c.finish();
            assert_eq!(r.skipped, 0, "{r:?}");
            r.violations.len()
        };
        let both =
            |second| vec![txn(2, vec![("k", a())], "b"), txn(3, vec![("k", a())], "c"), done(2, true), done(3, second)];
        assert_eq!(judge(both(false)), 0);
        assert_eq!(judge(both(true)), 1);
        // Refused by its guard on "j" (absent, expected "x"), or certainly not applied: "k"
        // still holds "a".
        let refused = vec![txn(2, vec![("k", a()), ("j", Expect::Value("x".into()))], "b"), done(2, false)];
        let lost = vec![txn(2, vec![("k", a())], "b"), Record::Return { id: 2, ret: StoreRet::NotApplied }];
        for mut h in [refused, lost] {
            h.extend([get(4), read(4, Some("a"))]);
            assert_eq!(judge(h), 0);
        }
    }

    /// A store call's records through the thread's recorder: completed, abandoned when it
    /// returns fewer outcomes or is dropped, a snapshot lent, every operation not applied;
    /// and the store's restarts: a reset starts a lifetime, a restart lets a commit jump.
    #[test]
    fn in_flight_calls_and_restarts_reach_the_threads_recorder() {
        let w = |k: &str, v: &str| StoreOp::Write { map: "m".into(), key: k.into(), write: MapWrite::Set(v.into()) };
        let out = |rev, v: &str| StoreRet::Write(WriteOutcome { applied: true, rev, value: Some(v.into()) });
        let g = || StoreOp::Get { map: "m".into(), key: "k".into() };
        begin();
        InFlight::invoke(vec![w("k", "a")]).complete(vec![out(5001, "a")]);
        // Write "b" given up on (no outcome): a later read may see it.
        InFlight::invoke(vec![w("k", "b")]).complete(vec![]);
        InFlight::invoke(vec![g()]).complete(vec![StoreRet::Get(Some("b".into()), 5002)]);
        // Dropped unanswered, then refused outright.
        drop(InFlight::invoke(vec![w("k", "c")]));
        InFlight::invoke(vec![w("k", "d")]).not_applied();
        let snap = MapSnapshot { rev: 5003, entries: [("k".to_owned(), "c".to_owned())].into(), ..Default::default() };
        InFlight::invoke(vec![StoreOp::Snapshot { map: "m".into() }]).complete_snapshot(&snap);
        let snap = MapSnapshot { rev: 5003, entries: [("k".to_owned(), "c".to_owned())].into(), ..Default::default() };
        InFlight::invoke(vec![g(), StoreOp::Snapshot { map: "m".into() }])
            .complete_lent([Lent::Owned(StoreRet::Get(Some("c".into()), 5003)), Lent::Snapshot(&snap)]);
        // A restart that kept the data: the next commit jumps.
        restarted();
        InFlight::invoke(vec![w("k", "e")]).complete(vec![out(9001, "e")]);
        let r = finish();
        assert_eq!((r.checked, r.violations.len()), (1, 0), "{r:?}");
        // The same, with a snapshot that saw a value nobody wrote, and without the restart.
        begin();
        InFlight::invoke(vec![w("k", "a")]).complete(vec![out(5001, "a")]);
        let snap = MapSnapshot { rev: 5001, entries: [("k".to_owned(), "z".to_owned())].into(), ..Default::default() };
        InFlight::invoke(vec![StoreOp::Snapshot { map: "m".into() }]).complete_snapshot(&snap);
        assert_eq!(finish().violations.len(), 1);
        begin();
        InFlight::invoke(vec![w("k", "a")]).complete(vec![out(5001, "a")]);
        InFlight::invoke(vec![w("k", "e")]).complete(vec![out(9001, "e")]);
        assert_eq!(finish().violations.len(), 1);
        // A reset: what was written is gone, and the next lifetime is judged on its own.
        begin();
        InFlight::invoke(vec![w("k", "a")]).complete(vec![out(5001, "a")]);
        reset();
        InFlight::invoke(vec![g()]).complete(vec![StoreRet::Get(None, 0)]);
        let r = finish();
        assert_eq!((r.checked, r.violations.len()), (2, 0), "{r:?}");
        // A roll-back to a checkpoint: counted.
        begin();
        rolled_back_to(&StoreState::default());
        assert_eq!(finish().from_checkpoint, 1);
    }
}
