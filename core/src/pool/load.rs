//! The node's cached index of job owners, so a dispatch needs no snapshot of the job map.
//!
//! Least-loaded assignment needs each live worker's job count. Reading the whole job map per
//! dispatch made dispatch cost grow with the number of jobs, so each node keeps this index
//! instead: replaced from every sweep's full snapshot (the sweeper reads it anyway) and updated
//! from the job map's change feed and the node's own writes in between. It is only a load
//! *hint*: a lost feed event skews it until the next sweep, which can only make the choice less
//! balanced, never unsafe (liveness is judged from a fresh keep-alive read, duplicates by the
//! dispatch transaction's `Expect::Absent` guards).

use super::table::KeyMap;

/// Owner of every job record this node knows of, plus the per-owner counts (kept in step).
#[derive(Debug, Default)]
pub(crate) struct LoadIndex {
    owners: KeyMap<String>,
    counts: KeyMap<usize>,
}

impl LoadIndex {
    /// Record that `job` is owned by `owner` (`None`: the job is gone; empty: queued).
    /// Allocates only for a job or owner it does not hold yet: it runs per change of the feed.
    pub fn set(&mut self, job: &str, owner: Option<&str>) {
        let old = match owner {
            None => self.owners.remove(job),
            Some(o) => match self.owners.get_mut(job) {
                Some(held) if held == o => return, // re-announced: nothing moves
                Some(held) => Some(std::mem::replace(held, o.to_owned())),
                None => self.owners.insert(job.to_owned(), o.to_owned()),
            },
        };
        if let Some(old) = old
            && let Some(n) = self.counts.get_mut(&old)
        {
            *n -= 1;
            if *n == 0 {
                self.counts.remove(&old);
            }
        }
        if let Some(o) = owner {
            match self.counts.get_mut(o) {
                Some(n) => *n += 1,
                None => {
                    self.counts.insert(o.to_owned(), 1);
                }
            }
        }
        // Checked wherever keel is proven (a sum over the workers, not the jobs): a count left
        // out of step skews every later pick toward the wrong workers with nothing else to say.
        crate::keel_assert!(
            self.counts.values().sum::<usize>() == self.owners.len(),
            "load index out of step: counts add up to {}, {} jobs indexed",
            self.counts.values().sum::<usize>(),
            self.owners.len()
        );
    }

    /// Replace everything with a full snapshot's `(job, owner)` pairs.
    /// Every sweep replaces the index with mostly the pairs it holds: the strings of the jobs it
    /// holds already are reused, not copied again (the same index as `set` of each pair on an
    /// empty one).
    pub fn replace<'a>(&mut self, records: impl Iterator<Item = (&'a str, &'a str)>) {
        // MC89: the counts kept across a snapshot: every worker's load grows with each sweep.
        if crate::mutants::active(crate::mutants::Mutant::MC89) {
            self.owners.clear();
            for (job, owner) in records {
                self.set(job, Some(owner));
            }
            return;
        }
        let mut held = std::mem::take(&mut self.owners);
        self.counts.clear();
        for (job, owner) in records {
            if self.owners.contains_key(job) {
                self.set(job, Some(owner)); // a job named twice: the later pair moves it
                continue;
            }
            let (job, mut o) = held.remove_entry(job).unwrap_or_else(|| (job.to_owned(), String::new()));
            if o != owner {
                o.clear();
                o.push_str(owner);
            }
            self.owners.insert(job, o);
            match self.counts.get_mut(owner) {
                Some(n) => *n += 1,
                None => {
                    self.counts.insert(owner.to_owned(), 1);
                }
            }
        }
        crate::keel_assert!(
            self.counts.values().sum::<usize>() == self.owners.len(),
            "load index out of step after a replace: counts add up to {}, {} jobs indexed",
            self.counts.values().sum::<usize>(),
            self.owners.len()
        );
    }

    /// Whether this node knows a record of `job` (MP15's stale admission check).
    pub fn knows(&self, job: &str) -> bool {
        self.owners.contains_key(job)
    }

    /// The owner this node's index holds for `job` (`None`: not indexed).
    pub fn owner(&self, job: &str) -> Option<&str> {
        self.owners.get(job).map(String::as_str)
    }

    /// Jobs owned by `worker`.
    pub fn load(&self, worker: &str) -> usize {
        self.counts.get(worker).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_moves_deletes_and_snapshots() {
        let mut l = LoadIndex::default();
        l.set("a", Some("w1"));
        l.set("b", Some("w1"));
        l.set("c", Some(""));
        assert_eq!((l.load("w1"), l.load("w2"), l.load("")), (2, 0, 1));
        l.set("a", Some("w2")); // moved
        l.set("a", Some("w2")); // re-announced: no double count
        l.set("b", None); // completed
        l.set("zz", None); // unknown job gone: nothing to undo
        assert_eq!((l.load("w1"), l.load("w2")), (0, 1));
        l.replace([("x", "w3"), ("y", "w3")].into_iter());
        assert_eq!((l.load("w2"), l.load("w3"), l.load("")), (0, 2, 0));
        l.replace([("x", "w4"), ("y", "w3"), ("x", "w5"), ("z", "")].into_iter());
        assert_eq!(
            (l.load("w3"), l.load("w4"), l.load("w5"), l.load("")),
            (1, 0, 1, 1),
            "the later pair of a job wins"
        );
        assert!(l.knows("z") && !l.knows("a"));
    }
}
