//! The node's replica of the job map, kept from its change feed, so a sweep reads no snapshot.
//!
//! Every node's router already follows the job map's feed (to hand records to its workers).
//! The table applies each change in revision order on top of a snapshot ("watch, then snapshot
//! at R, then apply changes above R", docs/rmap.md) and indexes what a sweep looks for, so a
//! sweep's cost grows with the jobs in flight and with what went stale, not with the
//! completion tombstones retained for the dedup window:
//!
//! - records and pending entries (jobs in flight) as they are, for the sweep's [`View`];
//! - tombstones by completion time, so "older than the retention" is a range, not a scan;
//! - the keys holding values keel did not write.
//!
//! A sweep first reads one slice of the map (with the map's current revision `R`) from the
//! store and uses the table only once it has applied every change up to `R` (else it resyncs
//! from a snapshot): its decisions are then made on a state at least as new as a snapshot read
//! at that point would have been, and every write they lead to is guarded by the exact values
//! it expects anyway.
//!
//! A value written behind keel's back (a plain `HSET`, a restore) makes no change on the feed.
//! The slices find it: each sweep compares one slice with the table ([`reconcile`]), and the
//! slices of a pass cover the whole map (`map_scan`'s contract: every key present for the whole
//! pass comes at least once). Each key carries a stamp, the revision at which the table last
//! knew its value to be the store's (its last change, or the slice that confirmed it); a slice
//! entry stamped below the slice's revision and differing from the table was written behind
//! keel's back and is taken in, unless the feed deleted it after the slice's revision (the table
//! remembers each deletion's revision until a slice past it has been compared: without that, a
//! slice read just before an ack or a completion brought the deleted pending entry or record
//! back, found by the simulator's P13). At the end of a pass, a key neither seen by the pass nor
//! changed after its first slice's revision was absent at some point of the pass with no change
//! saying so: it was deleted behind keel's back, and leaves the table.
//!
//! [`reconcile`]: JobTable::reconcile
//! [`View`]: super::state::View

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, DefaultHasher};

use super::state::{Tombstone, check_value};
use crate::mutants::{self, Mutant};
use crate::store::{Change, MAP_SCAN_START, MapScan, MapSnapshot};

/// A map by key for point lookups on the feed's hot path (every change of the job map, on every
/// node): a B-tree lookup among tens of thousands of keys sharing a prefix costs a few dozen
/// string comparisons, a hash lookup one hash and about one comparison. The hasher's keys are
/// fixed (`DefaultHasher::new`), so the same inserts give the same layout in every run, and no
/// caller lets its iteration order reach behaviour.
pub(crate) type KeyMap<V> = HashMap<String, V, BuildHasherDefault<DefaultHasher>>;

/// The job map as this node last saw it, with the indexes a sweep needs.
#[derive(Debug)]
pub(crate) struct JobTable {
    /// Where the table stands on the job map's feed.
    pos: FeedPos,
    /// Records (`j/`) and pending entries (`p/`) by key: the jobs in flight.
    live: BTreeMap<String, String>,
    /// Tombstones (`d/`) by key, and the same by completion time.
    tombs: KeyMap<String>,
    tombs_by_ms: BTreeSet<(u64, String)>,
    /// Keys whose value keel would not have written, with that value.
    corrupt: BTreeMap<String, String>,
    /// Every key held (in `live`, `tombs` or `corrupt`) with its stamp.
    stamps: KeyMap<Stamp>,
    /// Cursor of the next slice of the reconcile's pass ([`MAP_SCAN_START`]: a new pass).
    cursor: String,
    /// Number of the current pass (0: none yet since the last rebuild).
    pass: u64,
    /// Revision of the current pass's first slice.
    pass_rev: u64,
    /// Keys the feed deleted, with the deletion's revision, until a slice at or past it has
    /// been compared: a slice read before a deletion still holds the key, and must not bring
    /// it back as if written behind keel's back.
    deleted: KeyMap<u64>,
    /// Revision of the snapshot the table was built from: a slice read before it is older than
    /// the table's whole content (it may hold keys deleted before the snapshot) and is ignored.
    built_rev: u64,
}

/// Where a replica kept from a map's change feed stands (the job table, and the keep-alive
/// map followed by `cache.rs`): changes are applied in revision order on top of a snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FeedPos {
    /// Revision of the last change applied (or of the snapshot the replica was built from).
    rev: u64,
    /// Whether every change up to `rev` is applied: false before the first snapshot and after a
    /// gap or a missed revision, until the next snapshot.
    synced: bool,
}

/// What a replica does with one change of its feed ([`FeedPos::step`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// The next revision: apply it.
    Apply,
    /// Already in the replica (at or below its revision), or the replica is out of sync and
    /// waits for a snapshot anyway: ignore it.
    Skip,
    /// Revisions were missed: the replica just fell out of sync and needs a snapshot.
    Hole,
}

impl FeedPos {
    /// The position of a replica built from a snapshot at `rev`.
    pub fn at_snapshot(rev: u64) -> Self {
        FeedPos { rev, synced: true }
    }

    /// Whether a snapshot at `rev` may replace the replica: unless the replica is in sync and
    /// already past it (the feed overtook the snapshot: going back would only make the next
    /// change look like a hole).
    pub fn takes_snapshot(&self, rev: u64) -> bool {
        !self.synced || rev >= self.rev
    }

    /// Place the change at revision `rev`. A change at or below the replica's revision is
    /// already in it (the snapshot included it); one past the next revision means changes were
    /// missed. (A map never written has revision 0 and a store may start a map's revisions
    /// anywhere, so the first change after a snapshot of an empty map also counts as a hole: one
    /// more snapshot per map and store lifetime, taken while the map is still small by whoever
    /// follows the feed, see `route.rs`.)
    pub fn step(&mut self, rev: u64) -> Step {
        if !self.synced || rev <= self.rev {
            return Step::Skip;
        }
        if rev != self.rev + 1 {
            self.synced = false;
            return Step::Hole;
        }
        self.rev = rev;
        Step::Apply
    }

    /// The feed reported a gap: out of sync until the next snapshot.
    pub fn gap(&mut self) {
        self.synced = false;
    }

    pub fn is_synced(&self) -> bool {
        self.synced
    }

    pub fn rev(&self) -> u64 {
        self.rev
    }
}

/// When the table last knew a key's value to be the store's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    /// The revision: of the key's last change, or of the slice or snapshot that showed it.
    rev: u64,
    /// The pass during which that happened.
    pass: u64,
}

/// What one slice of a pass changed in the table.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Reconciled {
    /// Keys of the slice whose value differed from the table's (written behind keel's back).
    pub found: usize,
    /// Keys dropped at the end of the pass (deleted behind keel's back).
    pub dropped: usize,
    /// Whether the slice ended its pass.
    pub pass_done: bool,
}

impl Default for JobTable {
    fn default() -> Self {
        JobTable {
            pos: FeedPos::default(),
            live: BTreeMap::new(),
            tombs: KeyMap::default(),
            tombs_by_ms: BTreeSet::new(),
            corrupt: BTreeMap::new(),
            stamps: KeyMap::default(),
            cursor: MAP_SCAN_START.to_owned(),
            pass: 0,
            pass_rev: 0,
            deleted: KeyMap::default(),
            built_rev: 0,
        }
    }
}

impl JobTable {
    /// Replace everything with `snap` (start, gap, or a sweep that could not wait), unless the
    /// table is in sync and already past it (the feed overtook the snapshot: going back would
    /// only make the next change look like a gap). Returns whether it replaced.
    pub fn replace(&mut self, snap: &MapSnapshot) -> bool {
        if !self.pos.takes_snapshot(snap.rev) {
            return false;
        }
        *self = JobTable { pos: FeedPos::at_snapshot(snap.rev), built_rev: snap.rev, ..JobTable::default() };
        self.stamps.reserve(snap.entries.len());
        for (k, v) in &snap.entries {
            self.set(k, Some(v), snap.rev);
        }
        true
    }

    /// The cursor the next slice of the reconcile's pass starts from.
    pub fn scan_cursor(&self) -> &str {
        &self.cursor
    }

    /// Entries held (records, pending entries, tombstones, garbage): the map's size as the
    /// table knows it.
    pub fn len(&self) -> usize {
        self.stamps.len()
    }

    /// Compare one slice, read from [`scan_cursor`](Self::scan_cursor) `from`, with the table
    /// (which must hold every change up to the slice's revision), take in what was written
    /// behind keel's back, and move the pass on. A slice read from another cursor (the table was
    /// rebuilt, or another sweep moved the pass on meanwhile) is ignored.
    pub fn reconcile(&mut self, from: &str, slice: &MapScan) -> Reconciled {
        let mut out = Reconciled::default();
        if from != self.cursor || !self.is_fresh(slice.rev) || slice.rev < self.built_rev {
            return out;
        }
        if from == MAP_SCAN_START {
            self.pass += 1;
            self.pass_rev = slice.rev;
        }
        let seen = Stamp { rev: slice.rev, pass: self.pass };
        for (k, v) in &slice.entries {
            let same = self.value(k) == Some(v.as_str());
            match self.stamps.get_mut(k) {
                Some(stamp) if stamp.rev > slice.rev => continue, // changed since: the table is newer
                None if self.deleted.get(k).is_some_and(|&rev| rev > slice.rev) => continue, // deleted since
                // MC38: confirmed unchanged, but the stamp is left where it was: the key looks
                // unseen by the pass, and its end drops it.
                Some(_) if same && mutants::active(Mutant::MC38) => {}
                Some(stamp) if same => *stamp = seen,
                _ => {
                    out.found += 1;
                    self.set(k, Some(v), slice.rev);
                }
            }
        }
        // Every slice compared from here on is read at or past this one's revision (its cursor
        // exists only from now on): deletions up to it are of no more use.
        self.deleted.retain(|_, rev| *rev > slice.rev);
        self.cursor = slice.next.clone();
        if slice.is_last() {
            // Not seen by this pass, and known only from before its first slice.
            let (pass, pass_rev) = (self.pass, self.pass_rev);
            let mut gone: Vec<String> = self
                .stamps
                .iter()
                .filter(|(_, s)| s.pass < pass && s.rev <= pass_rev)
                .map(|(k, _)| k.clone())
                .collect();
            gone.sort_unstable(); // in key order, as a B-tree's would be, not the hash map's

            out.dropped = gone.len();
            for k in gone {
                self.set(&k, None, slice.rev);
            }
            out.pass_done = true;
        }
        out
    }

    /// The value the table holds for `key`, wherever it is kept (records, pending entries,
    /// tombstones, garbage).
    pub fn value(&self, key: &str) -> Option<&str> {
        let held = if key.starts_with("d/") { self.tombs.get(key) } else { self.live.get(key) };
        held.or_else(|| self.corrupt.get(key)).map(String::as_str)
    }

    /// Apply one change from the feed, in revision order ([`FeedPos::step`]). Returns the
    /// revision it expected when it found a hole: the table just fell out of sync, and stays so
    /// until the next snapshot (whoever follows the feed takes it at once: while it reads, its
    /// feed buffers the changes made meanwhile, none is dropped as they would be by a table
    /// waiting out of sync).
    pub fn apply(&mut self, c: Change) -> Option<u64> {
        // MC446: the change ignored, the table left where its last snapshot put it.
        if crate::mutants::active(crate::mutants::Mutant::MC446) {
            return None;
        }
        let expected = self.pos.rev() + 1;
        match self.pos.step(c.rev) {
            Step::Apply => match c.value {
                Some(v) => self.put(c.key, v, c.rev),
                None => {
                    self.drop_key(&c.key);
                    self.deleted.insert(c.key, c.rev);
                }
            },
            Step::Skip => {}
            Step::Hole => return Some(expected),
        }
        None
    }

    /// The feed reported a gap: out of sync until the next snapshot.
    pub fn gap(&mut self) {
        self.pos.gap();
    }

    /// Whether the table follows the feed without a hole (false before the first snapshot and
    /// after a gap or a missed revision, until the next snapshot).
    pub fn is_synced(&self) -> bool {
        self.pos.is_synced()
    }

    /// The revision of the last change applied while in sync (0 while the table has a hole).
    pub fn applied_rev(&self) -> u64 {
        if self.pos.is_synced() { self.pos.rev() } else { 0 }
    }

    /// Whether every change up to the store's revision `store_rev` is applied (the table may
    /// be ahead: changes made after the store's revision was read keep arriving).
    pub fn is_fresh(&self, store_rev: u64) -> bool {
        self.pos.is_synced() && self.pos.rev() >= store_rev
    }

    fn set(&mut self, key: &str, value: Option<&str>, stamp: u64) {
        match value {
            Some(v) => self.put(key.to_owned(), v.to_owned(), stamp),
            None => self.drop_key(key),
        }
    }

    /// Forget `key`: its value and its stamp.
    fn drop_key(&mut self, key: &str) {
        if self.stamps.remove(key).is_some() {
            self.unset(key);
        }
    }

    /// Take `key` out of the value maps (its stamp stays).
    fn unset(&mut self, key: &str) {
        if key.starts_with("d/") {
            if let Some(old) = self.tombs.remove(key)
                && let Some(ms) = Tombstone::ms_of(&old)
            {
                self.tombs_by_ms.remove(&(ms, key.to_owned()));
            }
        } else {
            self.live.remove(key);
        }
        self.corrupt.remove(key);
    }

    /// Hold `key` = `v` (taken out of the value maps first), stamped `stamp`. Owned: a change from
    /// the feed moves its strings in, the per-change upkeep allocates only the stamp's key (and a
    /// tombstone's time index entry). Only a key with a stamp is in a value map (every key held
    /// has one), so a new key skips the value maps' removals: a change costs one lookup per map it
    /// touches.
    fn put(&mut self, key: String, v: String, stamp: u64) {
        let stamp = Stamp { rev: stamp, pass: self.pass };
        if self.stamps.insert(key.clone(), stamp).is_some() {
            self.unset(&key);
        }
        if check_value("jobs", &key, &v).is_err() {
            self.corrupt.insert(key, v);
            return;
        }
        if key.starts_with("d/") {
            if let Some(ms) = Tombstone::ms_of(&v) {
                self.tombs_by_ms.insert((ms, key.clone()));
            }
            self.tombs.insert(key, v);
        } else {
            self.live.insert(key, v);
        }
    }

    /// Records and pending entries (the job part of a sweep's view): the jobs in flight.
    pub fn live(&self) -> &BTreeMap<String, String> {
        &self.live
    }

    /// Keys holding a value keel would not have written.
    pub fn corrupt(&self) -> impl Iterator<Item = (&str, &str)> {
        self.corrupt.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Tombstones whose completion time is before `before_ms`: `(job, raw value)`, oldest
    /// first, at most `max` of them. A range of the time index: its cost does not grow with
    /// the tombstones retained.
    pub fn tombstones_before(&self, before_ms: u64, max: usize) -> Vec<(String, String)> {
        self.tombs_by_ms
            .range(..(before_ms, String::new()))
            .take(max)
            .filter_map(|(_, key)| Some((key.strip_prefix("d/")?.to_owned(), self.tombs.get(key)?.clone())))
            .collect()
    }

    /// The tombstone of `job`, if the table has one.
    #[cfg(test)]
    pub fn tombstone(&self, job: &str) -> Option<&str> {
        self.tombstone_at(&format!("d/{job}"))
    }

    /// The tombstone at `key` (`d/{job}`), if the table has one: for a caller that builds the
    /// keys of many lookups in one buffer.
    pub fn tombstone_at(&self, key: &str) -> Option<&str> {
        self.tombs.get(key).map(String::as_str)
    }

    /// Whether the table holds `key` in flight (a record or pending entry).
    #[cfg(test)]
    pub fn has_live(&self, key: &str) -> bool {
        self.live.contains_key(key)
    }

    /// Tombstones held.
    #[cfg(test)]
    pub fn tombstone_count(&self) -> usize {
        self.tombs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(rev: u64, key: &str, value: Option<&str>) -> Change {
        Change { key: key.into(), value: value.map(str::to_owned), rev }
    }

    fn snap(rev: u64, entries: &[(&str, &str)]) -> MapSnapshot {
        MapSnapshot {
            rev,
            entries: entries.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn applies_changes_in_revision_order_on_top_of_a_snapshot() {
        let mut t = JobTable::default();
        assert!(!t.is_fresh(0), "never synced");
        t.replace(&snap(5, &[("j/a", "1|w1|x"), ("d/b", "1|w1|100")]));
        assert!(t.is_fresh(5) && t.is_fresh(4));
        assert!(!t.is_fresh(6));
        t.apply(change(4, "j/a", None)); // included in the snapshot already
        assert!(t.has_live("j/a"));
        t.apply(change(6, "j/a", None));
        t.apply(change(7, "d/a", Some("1|w1|150")));
        assert!(t.is_fresh(7));
        assert!(!t.has_live("j/a"));
        assert_eq!(t.tombstone("a"), Some("1|w1|150"));
        assert_eq!(
            t.tombstones_before(151, 10),
            vec![("b".into(), "1|w1|100".into()), ("a".into(), "1|w1|150".into())]
        );
        assert_eq!(t.tombstones_before(150, 10).len(), 1, "strictly before");
        assert_eq!(t.tombstones_before(151, 1).len(), 1, "bounded");
    }

    #[test]
    fn a_missed_revision_or_a_gap_puts_it_out_of_sync_until_the_next_snapshot() {
        let mut t = JobTable::default();
        t.replace(&snap(5, &[]));
        t.apply(change(7, "j/a", Some("1|w1|x"))); // 6 was missed
        assert!(!t.is_fresh(7));
        t.apply(change(8, "j/b", Some("1|w1|x")));
        assert!(!t.has_live("j/b"), "nothing applied while out of sync");
        assert!(t.replace(&snap(8, &[("j/a", "1|w1|x"), ("j/b", "1|w1|x")])));
        assert!(t.is_fresh(8));
        assert!(!t.replace(&snap(6, &[])), "an older snapshot does not take the table back");
        assert!(t.has_live("j/b"));
        t.gap();
        assert!(!t.is_fresh(8));
        // A store rolled back (a restore, a failover to a replica behind) serves revisions below
        // the table's: out of sync, the table must take them, or it never resyncs.
        assert!(t.replace(&snap(6, &[("j/c", "1|w1|x")])), "out of sync: an older snapshot is taken");
        assert!(t.is_fresh(6) && t.has_live("j/c") && !t.has_live("j/b"));
    }

    #[test]
    fn a_hole_is_reported_once_when_the_table_falls_out_of_sync() {
        let mut t = JobTable::default();
        assert_eq!(t.apply(change(1, "j/a", Some("1|w1|x"))), None, "never synced: waiting for a snapshot already");
        t.replace(&snap(0, &[]));
        // The first change after a snapshot of an empty map: a store may start anywhere.
        assert_eq!(t.apply(change(41, "j/a", Some("1|w1|x"))), Some(1), "the first revision of a map is a hole");
        assert_eq!(t.apply(change(43, "j/b", Some("1|w1|x"))), None, "reported once: the resync is under way");
        assert!(!t.is_synced());
        t.replace(&snap(42, &[("j/a", "1|w1|x")]));
        assert_eq!(t.apply(change(42, "j/a", Some("1|w1|x"))), None, "in the snapshot");
        assert_eq!(t.apply(change(43, "j/b", Some("1|w1|x"))), None, "the next revision");
        assert!(t.is_fresh(43) && t.has_live("j/b"));
        assert_eq!(t.apply(change(45, "j/c", Some("1|w1|x"))), Some(44), "44 was missed");
        t.gap();
        assert_eq!(t.apply(change(46, "j/c", Some("1|w1|x"))), None, "a gap is resynced by whoever reported it");
    }

    #[test]
    fn rewritten_and_deleted_tombstones_leave_the_time_index() {
        let mut t = JobTable::default();
        t.replace(&snap(1, &[("d/a", "1|w1|100")]));
        t.apply(change(2, "d/a", Some("2|w2|300")));
        assert_eq!(t.tombstones_before(200, 10), vec![]);
        t.apply(change(3, "d/a", None));
        assert_eq!(t.tombstones_before(400, 10), vec![]);
        assert_eq!(t.tombstone_count(), 0);
    }

    fn slice(rev: u64, entries: &[(&str, &str)], next: &str) -> MapScan {
        let entries = entries.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        MapScan { rev, entries, next: next.into() }
    }

    #[test]
    fn a_pass_of_slices_finds_values_written_and_deleted_behind_keels_back() {
        let mut t = JobTable::default();
        t.replace(&snap(5, &[("j/a", "1|w1|x"), ("d/b", "1|w1|100"), ("j/gone", "1|w1|x")]));
        // Behind keel's back (no revision, no change): j/a rewritten to garbage, d/c added,
        // j/gone deleted. Keel's own change at 6 rewrites d/b after the first slice is read.
        let first = slice(5, &[("j/a", "garbage"), ("d/b", "1|w1|100")], "7");
        assert_eq!(t.scan_cursor(), MAP_SCAN_START);
        let r = t.reconcile(MAP_SCAN_START, &first);
        assert_eq!(r, Reconciled { found: 1, dropped: 0, pass_done: false });
        assert!(!t.has_live("j/a"));
        assert_eq!(t.corrupt().collect::<Vec<_>>(), [("j/a", "garbage")]);
        t.apply(change(6, "d/b", Some("2|w2|200")));
        // A slice from a stale cursor is ignored, and so is one the table has not caught up with.
        assert_eq!(t.reconcile(MAP_SCAN_START, &slice(6, &[("d/x", "1|w1|1")], "9")), Reconciled::default());
        assert_eq!(t.reconcile("7", &slice(9, &[("d/x", "1|w1|1")], "9")), Reconciled::default());
        // The last slice, read at 6: keel's change of d/b, d/c added behind keel's back, and no
        // j/gone.
        let last = slice(6, &[("d/b", "2|w2|200"), ("d/c", "1|w1|150")], MAP_SCAN_START);
        let r = t.reconcile("7", &last);
        assert_eq!(r, Reconciled { found: 1, dropped: 1, pass_done: true }, "d/c taken in, j/gone dropped");
        assert_eq!(t.tombstone("c"), Some("1|w1|150"));
        assert!(!t.has_live("j/gone"));
        assert_eq!(t.len(), 3);
        assert_eq!(t.scan_cursor(), MAP_SCAN_START, "the next sweep starts a new pass");
    }

    #[test]
    fn a_slice_older_than_a_keys_last_change_does_not_undo_it() {
        let mut t = JobTable::default();
        t.replace(&snap(5, &[("j/a", "1|w1|x")]));
        t.apply(change(6, "j/a", Some("2|w2|x")));
        t.apply(change(7, "j/b", Some("1|w1|x")));
        // Read at 5 (before both changes), applied after them: neither undone nor dropped.
        let r = t.reconcile(MAP_SCAN_START, &slice(5, &[("j/a", "1|w1|x")], MAP_SCAN_START));
        assert_eq!(r, Reconciled { found: 0, dropped: 0, pass_done: true });
        assert!(t.has_live("j/a") && t.has_live("j/b"));
        assert_eq!(t.value("j/a"), Some("2|w2|x"));
        // A pass that starts at 7 and does not see j/b (changed at 7, before the pass) drops it: it
        // was deleted behind keel's back.
        let r = t.reconcile(MAP_SCAN_START, &slice(7, &[("j/a", "2|w2|x")], MAP_SCAN_START));
        assert_eq!(r, Reconciled { found: 0, dropped: 1, pass_done: true });
        assert!(!t.has_live("j/b"));
    }

    #[test]
    fn a_slice_read_before_a_deletion_or_a_rebuild_brings_nothing_back() {
        let mut t = JobTable::default();
        t.replace(&snap(5, &[("j/a", "1|w1|x"), ("p/a", "1|w1|900")]));
        // Read at 5, compared after the feed deleted p/a at 6 (the ack): not found again.
        t.apply(change(6, "p/a", None));
        let r = t.reconcile(MAP_SCAN_START, &slice(5, &[("j/a", "1|w1|x"), ("p/a", "1|w1|900")], MAP_SCAN_START));
        assert_eq!(r, Reconciled { found: 0, dropped: 0, pass_done: true });
        assert!(!t.has_live("p/a"));
        // Nor is anything dropped by the next pass: the table holds what the store does.
        let r = t.reconcile(MAP_SCAN_START, &slice(6, &[("j/a", "1|w1|x")], MAP_SCAN_START));
        assert_eq!(r, Reconciled { found: 0, dropped: 0, pass_done: true });
        // A slice read before the snapshot the table was rebuilt from is ignored: keys it holds
        // may have been deleted before the snapshot.
        t.replace(&snap(9, &[("j/a", "1|w1|x")]));
        let r = t.reconcile(MAP_SCAN_START, &slice(8, &[("j/a", "1|w1|x"), ("j/b", "1|w1|x")], MAP_SCAN_START));
        assert_eq!(r, Reconciled::default());
        assert!(!t.has_live("j/b"));
    }

    #[test]
    fn values_keel_did_not_write_are_kept_apart() {
        let mut t = JobTable::default();
        t.replace(&snap(1, &[("j/a", "garbage"), ("d/b", "x|y")]));
        assert_eq!(t.corrupt().count(), 2);
        assert!(!t.has_live("j/a"));
        t.apply(change(2, "j/a", Some("1|w1|x")));
        assert_eq!(t.corrupt().count(), 1);
        assert!(t.has_live("j/a"));
    }
}
