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
use std::collections::BTreeMap;

use keel::store::{Expect, MapSnapshot, MapWrite, StoreState, TxnOutcome, WriteOutcome};
use std::collections::HashSet;
use std::collections::hash_map::DefaultHasher;
use std::hash::{BuildHasherDefault, Hash};

use stateright::semantics::SequentialSpec;

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
}

impl StoreOp {
    /// The map the operation reads or writes.
    pub fn map(&self) -> &str {
        match self {
            StoreOp::Get { map, .. }
            | StoreOp::Snapshot { map }
            | StoreOp::Write { map, .. }
            | StoreOp::Txn { map, .. } => map,
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
}

/// The store time at which the specification applies every write. Not 0: a store's clock is
/// past its epoch, and `StoreState` asserts that a map's seeded revision is not 0 (the revision
/// of a map that does not exist).
const SPEC_TIME_MS: u64 = 1;

impl MapSpec {
    fn new() -> Self {
        MapSpec { state: StoreState::default(), offset: None }
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
        };
        r.unwrap_or(StoreRet::NotApplied)
    }

    /// Whether a seen revision matches a specified one, learning the offset on first sight.
    fn same_rev(&mut self, seen: u64, spec: u64) -> bool {
        match (seen, spec) {
            (0, 0) => true,
            (0, _) | (_, 0) => false,
            _ => {
                let diff = i128::from(seen) - i128::from(spec);
                *self.offset.get_or_insert(diff) == diff
            }
        }
    }
}

impl SequentialSpec for MapSpec {
    type Op = StoreOp;
    type Ret = StoreRet;

    fn invoke(&mut self, op: &StoreOp) -> StoreRet {
        self.run(op)
    }

    fn is_valid_step(&mut self, op: &StoreOp, seen: &StoreRet) -> bool {
        if *seen == StoreRet::NotApplied {
            return true; // certainly not applied: no effect, any order
        }
        let spec = self.run(op);
        match (seen, spec) {
            (StoreRet::Get(v, r), StoreRet::Get(sv, sr)) => *v == sv && self.same_rev(*r, sr),
            (StoreRet::Snapshot(s), StoreRet::Snapshot(ss)) => s.entries == ss.entries && self.same_rev(s.rev, ss.rev),
            (StoreRet::Write(w), StoreRet::Write(sw)) => {
                w.applied == sw.applied && w.value == sw.value && self.same_rev(w.rev, sw.rev)
            }
            (StoreRet::Txn(t), StoreRet::Txn(st)) => t.applied == st.applied && self.same_rev(t.rev, st.rev),
            _ => false,
        }
    }
}

/// One history: the records of one map in one store lifetime.
#[derive(Default)]
struct Segment {
    records: Records<StoreOp, StoreRet>,
}

/// Check every map history in `records`: whole (values and revisions) when small enough,
/// else key by key (values).
pub fn check(records: Vec<Record>) -> Report {
    // Split per store lifetime, then per map. An operation still open at a reset stays open in
    // the next lifetime too (it may land after the restart); its result, if it comes, is
    // dropped there (it may equally have been applied before).
    let mut lifetimes: Vec<BTreeMap<String, Segment>> = vec![BTreeMap::new()];
    let mut open: BTreeMap<u64, StoreOp> = BTreeMap::new();
    let mut spanning: BTreeMap<u64, ()> = BTreeMap::new();
    for r in records {
        let Some(current) = lifetimes.last_mut() else { break };
        match r {
            Record::Invoke { id, op } => {
                open.insert(id, op.clone());
                current.entry(op.map().to_owned()).or_default().records.push((id, Some(op), None));
            }
            Record::Return { id, ret } => {
                let Some(op) = open.remove(&id) else { continue };
                if spanning.remove(&id).is_some() {
                    continue; // open across a reset: left open in both lifetimes
                }
                // Moved, not cloned: a snapshot's result is a whole map.
                current.entry(op.map().to_owned()).or_default().records.push((id, None, Some(ret)));
            }
            Record::Reset => {
                let mut next: BTreeMap<String, Segment> = BTreeMap::new();
                for (id, op) in &open {
                    spanning.insert(*id, ());
                    next.entry(op.map().to_owned()).or_default().records.push((*id, Some(op.clone()), None));
                }
                lifetimes.push(next);
            }
        }
    }
    let mut report = Report::default();
    for (n, lifetime) in lifetimes.into_iter().enumerate() {
        for (map, seg) in lifetime {
            let invoked = invokes(&seg.records);
            let records = without_open_reads(seg.records);
            if fits(&records) {
                match run_tester(MapSpec::new(), &records) {
                    Verdict::Linearizable => {}
                    Verdict::OverBudget => {
                        report.over_budget += 1;
                        continue;
                    }
                    Verdict::Not(e) => report.violations.push(format!("map {map:?} (store lifetime {n}): {e}")),
                }
                report.checked += 1;
                report.ops += invoked;
                continue;
            }
            // Too large as a whole: check each key on its own, on values only (revisions are
            // per map, so they cannot be checked per key).
            for (key, records) in per_key(&records) {
                if !fits(&records) {
                    report.skipped += 1;
                    continue;
                }
                match run_tester(KeySpec::default(), &records) {
                    Verdict::Linearizable => {}
                    Verdict::OverBudget => {
                        report.over_budget += 1;
                        continue;
                    }
                    Verdict::Not(e) => {
                        report.violations.push(format!("map {map:?} key {key:?} (store lifetime {n}): {e}"))
                    }
                }
                report.checked += 1;
                report.ops += invokes(&records);
            }
        }
    }
    report
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
    S::Op: Clone + std::fmt::Debug,
    S::Ret: Clone + std::fmt::Debug + PartialEq,
{
    match search(spec, records, SEARCH_STEPS_MAX) {
        Some(true) => Verdict::Linearizable,
        None => Verdict::OverBudget,
        Some(false) => {
            let ops: Vec<String> = records
                .iter()
                .map(|(id, op, ret)| match (op, ret) {
                    (Some(op), _) => format!("#{id} invoke {op:?}"),
                    (None, Some(ret)) => format!("#{id} return {ret:?}"),
                    (None, None) => String::new(),
                })
                .collect();
            Verdict::Not(format!("no sequential order explains these {} records: {}", ops.len(), ops.join("; ")))
        }
    }
}

/// One operation of a history: where its invoke and return sit in the records.
struct Placed<Op, Ret> {
    invoked_at: usize,
    /// `usize::MAX` while open: an open operation never has to precede anything.
    returned_at: usize,
    op: Op,
    ret: Option<Ret>,
}

/// Whether some order of the operations, consistent with real time, explains every returned
/// result: `Some(true)` yes, `Some(false)` no, `None` when `steps` ran out first.
///
/// Wing and Gong's search with Lowe's memo, as Porcupine does it: a search state is the set of
/// operations placed so far and the specification's state after them, and each state is
/// expanded once. An operation may go next when no unplaced operation returned before it was
/// invoked. Returned operations must all be placed; open ones may be placed (applied with an
/// unseen result) or left out (never applied). stateright's tester, used here before, has no
/// memo and copied the remaining history at every step: one history of rmap seed 343 took
/// 100 s.
fn search<S>(spec: S, records: &Records<S::Op, S::Ret>, steps: u64) -> Option<bool>
where
    S: SequentialSpec + Clone + Eq + Hash,
    S::Op: Clone,
    S::Ret: Clone,
{
    let mut ops: Vec<Placed<S::Op, S::Ret>> = Vec::new();
    let mut index: BTreeMap<u64, usize> = BTreeMap::new();
    for (at, (id, op, ret)) in records.iter().enumerate() {
        match (op, ret) {
            (Some(op), _) => {
                index.insert(*id, ops.len());
                ops.push(Placed { invoked_at: at, returned_at: usize::MAX, op: op.clone(), ret: None });
            }
            (None, Some(ret)) => {
                if let Some(p) = index.get(id).and_then(|i| ops.get_mut(*i)) {
                    p.returned_at = at;
                    p.ret = Some(ret.clone());
                }
            }
            (None, None) => {}
        }
    }
    // `fits` keeps histories at HISTORY_OPS_MAX operations, within one u128 of placed bits.
    assert!(ops.len() <= 128, "a history of {} operations reached the search", ops.len());
    let bit = |i: usize| 1u128 << i;
    let must: u128 = ops.iter().enumerate().filter(|(_, p)| p.ret.is_some()).fold(0, |m, (i, _)| m | bit(i));
    // A fixed hasher: the memo is only asked for membership, but nothing here may depend on
    // OS randomness.
    type Memo<S> = HashSet<(u128, S), BuildHasherDefault<DefaultHasher>>;
    let mut seen: Memo<S> = HashSet::default();
    let mut stack = vec![(0u128, spec)];
    let mut left = steps;
    while let Some((placed, state)) = stack.pop() {
        if placed & must == must {
            return Some(true);
        }
        left = left.checked_sub(1)?;
        let horizon = ops
            .iter()
            .enumerate()
            .filter(|(i, p)| placed & bit(*i) == 0 && p.ret.is_some())
            .map(|(_, p)| p.returned_at)
            .min()
            .unwrap_or(usize::MAX);
        let mut branches = Vec::new();
        for (i, p) in ops.iter().enumerate() {
            if placed & bit(i) != 0 || p.invoked_at > horizon {
                continue;
            }
            let mut next = state.clone();
            let valid = match &p.ret {
                Some(ret) => next.is_valid_step(&p.op, ret),
                None => {
                    next.invoke(&p.op);
                    true
                }
            };
            if !valid {
                continue;
            }
            if p.ret.is_some() && next == state {
                // A returned operation that fits here and changes nothing (a read) goes now,
                // without a branch: any order that places it later can place it here instead
                // (the states after are the same, and placing it early only frees what waits
                // for it). Without this, k reads overlapping a dead end are tried in all 2^k
                // subsets.
                branches = vec![(placed | bit(i), next)];
                break;
            }
            branches.push((placed | bit(i), next));
        }
        for b in branches {
            if seen.insert(b.clone()) {
                stack.push(b);
            }
        }
    }
    Some(false)
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

/// Split one map's records into one history per key. A snapshot reads every key; a key's
/// history takes the snapshots that overlap its own first to last operation (outside that window
/// they only repeat what the key's first or last operation already pins down).
///
/// Linear in the records plus what it outputs: an operation goes only to the keys it names (a
/// pool run's job map has thousands of keys and tens of thousands of records, and matching
/// every record against every key made this split most of the pool scenario's CPU), and a
/// snapshot to the keys whose window it overlaps, found by comparing indexes, not names.
fn per_key(records: &Records<StoreOp, StoreRet>) -> BTreeMap<String, Records<KeyOp, KeyRet>> {
    // Each key's slot, and the index range of its own records.
    let mut slot: BTreeMap<&str, usize> = BTreeMap::new();
    let mut window: Vec<(usize, usize)> = Vec::new();
    let mut ops: BTreeMap<u64, (&StoreOp, Vec<usize>)> = BTreeMap::new();
    for (i, (id, op, _)) in records.iter().enumerate() {
        if let Some(op) = op {
            let mut slots: Vec<usize> = op
                .key_names()
                .map(|k| {
                    let next = window.len();
                    let n = *slot.entry(k).or_insert(next);
                    if n == next {
                        window.push((i, i));
                    }
                    n
                })
                .collect();
            slots.sort_unstable();
            slots.dedup();
            ops.insert(*id, (op, slots));
        }
        if let Some((_, slots)) = ops.get(id) {
            for n in slots {
                window[*n].1 = i;
            }
        }
    }
    let names: Vec<&str> = {
        let mut names = vec![""; window.len()];
        for (k, n) in &slot {
            names[*n] = k;
        }
        names
    };
    let ends: BTreeMap<u64, usize> =
        records.iter().enumerate().filter(|(_, r)| r.2.is_some()).map(|(i, r)| (r.0, i)).collect();
    let mut started: BTreeMap<u64, usize> = BTreeMap::new();
    let mut histories: Vec<Records<KeyOp, KeyRet>> = vec![Vec::new(); window.len()];
    let mut overlapping: Vec<usize> = Vec::new();
    for (i, (id, op, ret)) in records.iter().enumerate() {
        let Some((full, slots)) = ops.get(id) else { continue };
        let first = *started.entry(*id).or_insert(i);
        let targets: &[usize] = if let StoreOp::Snapshot { .. } = full {
            let end = ends.get(id).copied().unwrap_or(usize::MAX);
            overlapping.clear();
            overlapping.extend((0..window.len()).filter(|n| window[*n].0 <= end && first <= window[*n].1));
            &overlapping
        } else {
            slots
        };
        for n in targets {
            let k = names[*n];
            let Some(kop) = full.on_key(k) else { continue };
            match (op, ret) {
                (Some(_), _) => histories[*n].push((*id, Some(kop), None)),
                (None, Some(ret)) => histories[*n].push((*id, None, Some(ret.on_key(k)))),
                (None, None) => {}
            }
        }
    }
    slot.into_iter().map(|(k, n)| (k.to_owned(), std::mem::take(&mut histories[n]))).collect()
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
            StoreOp::Snapshot { .. } => Box::new(std::iter::empty()),
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

thread_local! {
    /// The records of the run on this thread (madsim runs one simulation per thread).
    static RECORDS: RefCell<Option<(u64, Vec<Record>)>> = const { RefCell::new(None) };
}

/// Start recording on this thread (a run begins).
pub fn begin() {
    RECORDS.with(|r| *r.borrow_mut() = Some((0, Vec::new())));
}

/// Stop recording on this thread and return the records.
pub fn take() -> Vec<Record> {
    RECORDS.with(|r| r.borrow_mut().take().map(|(_, v)| v).unwrap_or_default())
}

/// Record an invoke; returns its id (None when not recording).
pub fn invoke(op: StoreOp) -> Option<u64> {
    RECORDS.with(|r| {
        let mut r = r.borrow_mut();
        let (next, records) = r.as_mut()?;
        *next += 1;
        records.push(Record::Invoke { id: *next, op });
        Some(*next)
    })
}

/// Record the outcome of operation `id`.
pub fn complete(id: u64, ret: StoreRet) {
    RECORDS.with(|r| {
        if let Some((_, records)) = r.borrow_mut().as_mut() {
            records.push(Record::Return { id, ret });
        }
    });
}

/// Record a data-losing store restart.
pub fn reset() {
    RECORDS.with(|r| {
        if let Some((_, records)) = r.borrow_mut().as_mut() {
            records.push(Record::Reset);
        }
    });
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
    fn a_snapshot_of_a_map_too_large_as_a_whole_is_judged_for_each_key_it_overlaps() {
        // The split sends a snapshot only to the keys whose own operations it overlaps: "k"'s
        // value in it is judged, so a value nobody wrote is caught key by key.
        let snap = |id: u64, k: &str| {
            let entries = [("k".to_owned(), k.to_owned())].into_iter().collect();
            Record::Return { id, ret: StoreRet::Snapshot(MapSnapshot { rev: 1, entries }) }
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
                Record::Reset => unreachable!(),
            })
            .collect();
        assert_eq!(search(MapSpec::new(), &seg, 3), None, "out of steps: no verdict");
        assert_eq!(search(MapSpec::new(), &seg, SEARCH_STEPS_MAX), Some(true));
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
}
