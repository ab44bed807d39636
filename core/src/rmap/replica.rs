//! The local replica as a pure state machine: entries plus the revision they reflect.
//!
//! Revision rules (SPEC §4): the replica loads a snapshot at revision R, then applies only
//! changes with rev > R, each exactly R+1, R+2, … (one store lifetime numbers a map's changes
//! consecutively). A change at or below the applied revision is stale (it was in the snapshot or
//! arrived twice) and is skipped; a change above R+1 means changes were missed, so the replica
//! must resync from a fresh snapshot rather than apply it.

use std::collections::BTreeMap;

use crate::mutants::{self, Mutant};
use crate::store::{Change, MapSnapshot, Reseed};

/// What [`Replica::apply`] did with a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Applied; the replica is now at the change's revision.
    Applied,
    /// At or below the applied revision: skipped.
    Stale,
    /// Changes between the applied revision and this one were missed: not applied, resync.
    Gap {
        /// The revision the replica expected next.
        expected: u64,
    },
    /// The next revision, after a snapshot taken since a store restart and before the map's
    /// next commit ([`MapSnapshot::restarted_since_commit`]): possibly a change the restart lost.
    /// Not applied, resync.
    AfterRestart,
}

/// Entries and the revision they reflect.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Replica {
    entries: BTreeMap<String, String>,
    rev: u64,
    /// Whether a snapshot was ever loaded (changes before that are meaningless).
    loaded: bool,
    /// The store's seedings of the map's revisions as of the last snapshot loaded: any later
    /// seeding is a revision jump on the feed, so a resync loads it.
    reseeds: Vec<Reseed>,
    /// The last snapshot loaded was taken after a store restart and before the map's next
    /// commit ([`MapSnapshot::restarted_since_commit`]): the feed may hold changes the restart
    /// lost, numbered on from that snapshot's revision, so no change is applied until a resync.
    restarted_since_commit: bool,
}

impl Replica {
    pub fn rev(&self) -> u64 {
        self.rev
    }

    pub fn is_loaded(&self) -> bool {
        self.loaded
    }

    pub fn entries(&self) -> &BTreeMap<String, String> {
        &self.entries
    }

    /// The replica as a snapshot of the map (what the store's snapshot at the same revision is).
    pub fn snapshot(&self) -> MapSnapshot {
        MapSnapshot {
            rev: self.rev,
            entries: self.entries.clone(),
            reseeds: self.reseeds.clone(),
            restarted_since_commit: self.restarted_since_commit,
        }
    }

    /// Apply one change from the feed, following the revision rules.
    pub fn apply(&mut self, c: &Change) -> Verdict {
        if !self.loaded {
            return Verdict::Gap { expected: 0 };
        }
        // MC382: the restart judged before the revision: a stale change after such a snapshot
        // (one the snapshot holds, still in a feed opened before it) resyncs too.
        if mutants::active(Mutant::MC382) && self.restarted_since_commit {
            return Verdict::AfterRestart;
        }
        if c.rev <= self.rev {
            if crate::mutants::active(crate::mutants::Mutant::MC4) && self.rev > 0 {
                // MC4: applied whatever its revision: the replica goes back to it.
                self.apply_unchecked(c);
                self.rev = c.rev;
                return Verdict::Applied;
            }
            return Verdict::Stale;
        }
        if c.rev != self.rev + 1 {
            return Verdict::Gap { expected: self.rev + 1 };
        }
        // MC45: keel before 2026-12-02 applied it. The store restarted after this snapshot's
        // history was last committed to, and any commit of the new process re-seeds the
        // counter (a jump, so a gap anyway): the next revision on the feed can only be a change
        // the restart lost, from a feed opened before it (or one from a store whose clock went
        // back, which the resync then loads).
        if self.restarted_since_commit && !mutants::active(Mutant::MC45) && !mutants::active(Mutant::MC44) {
            // (MC44 re-injects keel as it was then, without this check either.)
            return Verdict::AfterRestart;
        }
        let before = self.rev;
        self.apply_unchecked(c);
        crate::keel_assert!(self.rev == before + 1, "replica revision jumped from {before} to {}", self.rev);
        Verdict::Applied
    }

    /// Apply one change as the follower does: by the revision rules, except that MP11 applies a
    /// change past a gap instead of reporting it.
    pub fn on_change(&mut self, c: &Change) -> Verdict {
        match self.apply(c) {
            Verdict::Gap { .. } if mutants::active(Mutant::MP11) => {
                self.apply_unchecked(c);
                Verdict::Applied
            }
            v => v,
        }
    }

    /// Whether a gap reported by the feed makes the follower resync (MP11 carries on instead).
    pub fn resyncs_on_gap() -> bool {
        !mutants::active(Mutant::MP11)
    }

    /// Apply whatever the revision (only MP11 does this: it trusts a feed with holes).
    pub fn apply_unchecked(&mut self, c: &Change) {
        match &c.value {
            Some(v) => self.entries.insert(c.key.clone(), v.clone()),
            None => self.entries.remove(&c.key),
        };
        self.rev = self.rev.max(c.rev);
    }

    /// Replace the state by a snapshot. Returns the per-key differences as changes at the
    /// snapshot's revision (what subscribers are told). The revision may go *down*: after the
    /// store lost its data, the store is the authority and the replica converges to it.
    pub fn load(&mut self, snap: MapSnapshot) -> Vec<Change> {
        let rev = snap.rev;
        let mut diff = Vec::new();
        for (k, v) in &snap.entries {
            // MC74: only keys the replica lacks count as differences, not changed values.
            let differs = match mutants::active(Mutant::MC74) {
                true => !self.entries.contains_key(k),
                false => self.entries.get(k) != Some(v),
            };
            if differs {
                diff.push(Change { key: k.clone(), value: Some(v.clone()), rev });
            }
        }
        for k in self.entries.keys() {
            if !snap.entries.contains_key(k) {
                diff.push(Change { key: k.clone(), value: None, rev });
            }
        }
        diff.sort_by(|a, b| a.key.cmp(&b.key));
        self.entries = snap.entries;
        // MC128: the snapshot's seedings not taken; the replica judges later jumps by old ones.
        if !mutants::active(Mutant::MC128) {
            self.reseeds = snap.reseeds;
        }
        // MC81: the flag kept once set: every later change is held back and resynced for.
        self.restarted_since_commit =
            snap.restarted_since_commit || (mutants::active(Mutant::MC81) && self.restarted_since_commit);
        // MC103: the revision never goes back, past a roll-back.
        self.rev = if mutants::active(Mutant::MC103) { self.rev.max(rev) } else { rev };
        self.loaded = true;
        diff
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(key: &str, value: Option<&str>, rev: u64) -> Change {
        Change { key: key.into(), value: value.map(Into::into), rev }
    }

    fn snap(rev: u64, kv: &[(&str, &str)]) -> MapSnapshot {
        MapSnapshot { rev, entries: kv.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect(), ..Default::default() }
    }

    #[test]
    fn after_a_snapshot_taken_since_a_restart_no_change_applies_until_a_resync() {
        let mut r = Replica::default();
        r.load(MapSnapshot { restarted_since_commit: true, ..snap(10, &[("a", "1")]) });
        // The next revision may be a change the restart rolled back, from a feed opened before it.
        assert_eq!(r.apply(&ch("a", Some("lost"), 11)), Verdict::AfterRestart);
        assert_eq!(r.apply(&ch("a", Some("0"), 10)), Verdict::Stale);
        assert_eq!((r.rev(), r.entries().get("a").map(String::as_str)), (10, Some("1")));
        assert!(r.snapshot().restarted_since_commit, "the replica's snapshot is the store's");
        // After a commit the store's snapshot says no more, and the feed is followed again.
        r.load(snap(5000, &[("a", "2")]));
        assert_eq!(r.apply(&ch("a", Some("3"), 5001)), Verdict::Applied);
        assert!(!r.snapshot().restarted_since_commit);
    }

    /// A snapshot at the revision the replica already holds still carries news: that the store
    /// restarted since (hunt 33 B #17: a load skipped when the revision had not moved kept the
    /// replica following a feed that may carry a rolled-back history, MC45's window).
    #[test]
    fn a_snapshot_at_the_same_revision_still_says_the_store_restarted() {
        let mut r = Replica::default();
        r.load(snap(10, &[("a", "1")]));
        r.load(MapSnapshot { restarted_since_commit: true, ..snap(10, &[("a", "1")]) });
        assert!(r.snapshot().restarted_since_commit);
        assert_eq!(r.apply(&ch("a", Some("lost"), 11)), Verdict::AfterRestart);
    }

    #[test]
    fn applies_only_the_next_revision() {
        let mut r = Replica::default();
        assert_eq!(r.apply(&ch("a", Some("1"), 1)), Verdict::Gap { expected: 0 }, "nothing before the snapshot");
        r.load(snap(10, &[("a", "1")]));
        assert_eq!(r.apply(&ch("a", Some("0"), 9)), Verdict::Stale);
        assert_eq!(r.apply(&ch("a", Some("1"), 10)), Verdict::Stale);
        assert_eq!(r.apply(&ch("b", Some("2"), 11)), Verdict::Applied);
        assert_eq!(r.apply(&ch("a", None, 13)), Verdict::Gap { expected: 12 });
        assert_eq!(r.rev(), 11);
        assert_eq!(r.entries().get("a").map(String::as_str), Some("1"), "a gap change is not applied");
        assert_eq!(r.apply(&ch("a", None, 12)), Verdict::Applied);
        assert!(!r.entries().contains_key("a"));
    }

    #[test]
    fn load_diffs_and_may_go_back_after_data_loss() {
        let mut r = Replica::default();
        let d = r.load(snap(50, &[("a", "1"), ("b", "2")]));
        assert_eq!(d.len(), 2);
        let d = r.load(snap(0, &[("b", "2"), ("c", "3")]));
        assert_eq!(d, vec![ch("a", None, 0), ch("c", Some("3"), 0)]);
        assert_eq!(r.rev(), 0);
        assert!(r.is_loaded());
    }
}
