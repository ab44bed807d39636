//! The local replica as a pure state machine: entries plus the revision they reflect.
//!
//! Revision rules (SPEC §4): the replica loads a snapshot at revision R, then applies only
//! changes with rev > R, each exactly R+1, R+2, … (one store lifetime numbers a map's changes
//! consecutively). A change at or below the applied revision is stale (it was in the snapshot or
//! arrived twice) and is skipped; a change above R+1 means changes were missed, so the replica
//! must resync from a fresh snapshot rather than apply it.

use std::collections::BTreeMap;

use crate::store::{Change, MapSnapshot};

/// What [`Replica::apply`] did with a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Applied; the replica is now at the change's revision.
    Applied,
    /// At or below the applied revision: skipped.
    Stale,
    /// Changes between the applied revision and this one were missed: not applied, resync.
    Gap {
        /// The revision the replica expected next.
        expected: u64,
    },
}

/// Entries and the revision they reflect.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Replica {
    entries: BTreeMap<String, String>,
    rev: u64,
    /// Whether a snapshot was ever loaded (changes before that are meaningless).
    loaded: bool,
}

impl Replica {
    pub(crate) fn rev(&self) -> u64 {
        self.rev
    }

    pub(crate) fn is_loaded(&self) -> bool {
        self.loaded
    }

    pub(crate) fn entries(&self) -> &BTreeMap<String, String> {
        &self.entries
    }

    /// Apply one change from the feed, following the revision rules.
    pub(crate) fn apply(&mut self, c: &Change) -> Verdict {
        if !self.loaded {
            return Verdict::Gap { expected: 0 };
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
        let before = self.rev;
        self.apply_unchecked(c);
        crate::keel_assert!(self.rev == before + 1, "replica revision jumped from {before} to {}", self.rev);
        Verdict::Applied
    }

    /// Apply whatever the revision (only MP11 does this: it trusts a feed with holes).
    pub(crate) fn apply_unchecked(&mut self, c: &Change) {
        match &c.value {
            Some(v) => self.entries.insert(c.key.clone(), v.clone()),
            None => self.entries.remove(&c.key),
        };
        self.rev = self.rev.max(c.rev);
    }

    /// Replace the state by a snapshot. Returns the per-key differences as changes at the
    /// snapshot's revision (what subscribers are told). The revision may go *down*: after the
    /// store lost its data, the store is the authority and the replica converges to it.
    pub(crate) fn load(&mut self, snap: MapSnapshot) -> Vec<Change> {
        let rev = snap.rev;
        let mut diff = Vec::new();
        for (k, v) in &snap.entries {
            if self.entries.get(k) != Some(v) {
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
        self.rev = rev;
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
        MapSnapshot { rev, entries: kv.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect() }
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
