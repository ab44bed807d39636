//! The regression corpus: minimal failing plans kept in `sim/regressions/*.json`.
//!
//! A seed means nothing once the code changes: the same seed explores other operations, so a
//! once-failing seed silently stops testing anything. A shrunk *plan* keeps its meaning (it is
//! a schedule of faults, independent of the scheduler), so every `cargo sim check` replays each
//! entry unmutated under its own scheduler seed and a few more (all must pass), and, for an
//! entry found through a mutant, with that mutant switched on (it must still break the recorded
//! invariant, or the entry has gone stale and tests nothing). The mutated run tries the entry's
//! own seed first, then the same extra seeds: a change of scheduling elsewhere (a clock, a
//! timer) moves a race by a few steps, and the plan still provokes the bug under a neighbour
//! seed; only a plan that provokes it under none of them is stale.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::plan::{FaultPlan, PlanSpec};

/// Where the corpus lives in the repository.
pub const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/regressions");

/// Extra scheduler seeds each entry is replayed under (unmutated), besides its own.
pub const EXTRA_SEEDS_DEFAULT: u64 = 3;

/// Most entries the corpus may hold; past it `check` refuses rather than running for hours.
pub const ENTRIES_MAX: usize = 500;

/// One saved regression.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Scenario name.
    pub scenario: String,
    /// Scheduler seed of the minimal failing run.
    pub seed: u64,
    /// The mutant that made it fail (`MS5`), if it was found through one.
    pub mutant: Option<String>,
    /// The invariant it broke.
    pub invariant: String,
    /// How it was found: the command that shrank it and the size of the original plan.
    pub origin: Origin,
    /// The minimal plan.
    pub plan: FaultPlan,
}

/// Where an entry came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Origin {
    /// The shrink command.
    pub command: String,
    /// Faults of the plan before shrinking.
    pub faults_before: usize,
}

/// A corpus file that cannot be used.
#[derive(Debug)]
pub struct CorpusError {
    /// The file (or directory).
    pub path: PathBuf,
    /// Why.
    pub error: String,
}

impl fmt::Display for CorpusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "regression corpus {}: {}", self.path.display(), self.error)
    }
}

impl std::error::Error for CorpusError {}

fn err(path: &Path, error: impl fmt::Display) -> CorpusError {
    CorpusError { path: path.to_owned(), error: error.to_string() }
}

/// A valid entry name: letters, digits, `-` and `_` (it becomes a file name).
pub fn check_name(name: &str) -> Result<(), String> {
    if !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        Ok(())
    } else {
        Err(format!("bad regression name {name:?}: use 1 to 64 letters, digits, '-' or '_'"))
    }
}

/// A plan file's plan: a bare fault plan (`cargo sim plan`, `--dump-plan`) or a corpus entry (its
/// `plan`), checked against the scenario — so `replay --plan sim/regressions/MS5.json` works.
pub fn plan_from_json(text: &str, spec: &PlanSpec) -> Result<FaultPlan, String> {
    match serde_json::from_str::<Entry>(text) {
        Ok(entry) => {
            entry.plan.validate(spec)?;
            Ok(entry.plan)
        }
        Err(_) => FaultPlan::from_json(text, spec),
    }
}

/// Every entry of the corpus in `dir`, by name (file stem), sorted.
pub fn load(dir: &Path) -> Result<Vec<(String, Entry)>, CorpusError> {
    let rd = std::fs::read_dir(dir).map_err(|e| err(dir, e))?;
    let mut paths = Vec::new();
    for d in rd {
        let p = d.map_err(|e| err(dir, e))?.path();
        if p.extension().is_some_and(|x| x == "json") {
            paths.push(p);
        }
    }
    if paths.len() > ENTRIES_MAX {
        return Err(err(dir, format!("{} entries, more than {ENTRIES_MAX}", paths.len())));
    }
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let name = p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let text = std::fs::read_to_string(&p).map_err(|e| err(&p, e))?;
            let entry: Entry = serde_json::from_str(&text).map_err(|e| err(&p, e))?;
            Ok((name, entry))
        })
        .collect()
}

/// Write `entry` as `dir/name.json` (pretty, one trailing newline); returns the path.
pub fn save(dir: &Path, name: &str, entry: &Entry) -> Result<PathBuf, CorpusError> {
    check_name(name).map_err(|e| err(dir, e))?;
    std::fs::create_dir_all(dir).map_err(|e| err(dir, e))?;
    let path = dir.join(format!("{name}.json"));
    let json = serde_json::to_string_pretty(entry).map_err(|e| err(&path, e))?;
    std::fs::write(&path, json + "\n").map_err(|e| err(&path, e))?;
    Ok(path)
}

#[cfg(madsim)]
pub use replay::*;

#[cfg(madsim)]
mod replay {
    use super::Entry;
    use crate::runner;
    use crate::scenario;
    use crate::zoo;

    /// What replaying one entry found.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum Verdict {
        /// Every unmutated run passed and the mutant (if any) still breaks the invariant.
        Pass {
            /// Unmutated scheduler seeds run.
            seeds: Vec<u64>,
            /// The seed under which the mutant broke the invariant (None: no mutant).
            caught_under: Option<u64>,
        },
        /// An unmutated run broke an invariant: the bug is back (or the scenario is wrong).
        Regressed {
            /// Its scheduler seed.
            seed: u64,
            /// The violations.
            violations: Vec<String>,
        },
        /// With its mutant on, the plan no longer breaks the recorded invariant: the entry tests
        /// nothing any more and must be shrunk again.
        Stale {
            /// What the mutated run under the entry's own seed did instead.
            got: String,
            /// Seeds tried with the mutant on.
            seeds: Vec<u64>,
        },
        /// The entry names a scenario or mutant this build does not have.
        Unusable {
            /// Why.
            why: String,
        },
    }

    impl Verdict {
        /// Whether this entry is fine.
        pub fn ok(&self) -> bool {
            matches!(self, Verdict::Pass { .. })
        }
    }

    /// Replay `entry`: unmutated under its seed and `extra_seeds` more, then with its mutant.
    pub fn replay(entry: &Entry, extra_seeds: u64) -> Verdict {
        let Some(scn) = scenario::by_name(&entry.scenario) else {
            return Verdict::Unusable { why: format!("no scenario {:?} in this build", entry.scenario) };
        };
        if let Err(e) = entry.plan.validate(&scn.plan_spec()) {
            return Verdict::Unusable { why: format!("its plan does not fit the scenario: {e}") };
        }
        let mutant = match entry.mutant.as_deref().map(zoo::parse_mutant).transpose() {
            Ok(m) => m,
            Err(e) => return Verdict::Unusable { why: e },
        };
        let seeds: Vec<u64> = (0..=extra_seeds).map(|k| entry.seed.wrapping_add(k)).collect();
        for &seed in &seeds {
            let out = runner::run(scn.as_ref(), seed, None, entry.plan.profile, Some(entry.plan.clone()));
            if !out.passed() {
                return Verdict::Regressed { seed, violations: out.violations.iter().map(|v| v.to_string()).collect() };
            }
        }
        let mut caught_under = None;
        if let Some(m) = mutant {
            let mut got = None;
            for &seed in &seeds {
                let out = runner::run(scn.as_ref(), seed, Some(m), entry.plan.profile, Some(entry.plan.clone()));
                if out.violations.iter().any(|v| v.invariant == entry.invariant) {
                    caught_under = Some(seed);
                    break;
                }
                got.get_or_insert(out);
            }
            if let (None, Some(out)) = (caught_under, got) {
                let got = if out.passed() {
                    "the run passes".to_owned()
                } else {
                    let broke: std::collections::BTreeSet<&str> = out.violations.iter().map(|v| v.invariant).collect();
                    format!("it breaks {} instead", broke.into_iter().collect::<Vec<_>>().join(", "))
                };
                return Verdict::Stale { got, seeds };
            }
        }
        Verdict::Pass { seeds, caught_under }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Fault, Profile, Timed};

    fn entry() -> Entry {
        Entry {
            scenario: "lease".into(),
            seed: 4,
            mutant: Some("MS5".into()),
            invariant: "S5".into(),
            origin: Origin {
                command: "cargo sim shrink --scenario lease --seed 1 --mutant MS5".into(),
                faults_before: 9,
            },
            plan: FaultPlan {
                seed: 1,
                profile: Profile::Swarm,
                enabled: vec![],
                heal_at_ms: 500,
                events: vec![Timed { at_ms: 10, fault: Fault::NodePause { node: 1, ms: 300 } }],
            },
        }
    }

    #[test]
    fn save_then_load_round_trips_and_names_are_checked() {
        let dir = std::env::temp_dir().join(format!("keel-corpus-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = save(&dir, "ms5-pause", &entry()).expect("saved");
        assert!(path.ends_with("ms5-pause.json"));
        std::fs::write(dir.join("notes.txt"), "not an entry").expect("write");
        let loaded = load(&dir).expect("loaded");
        assert_eq!(loaded, vec![("ms5-pause".to_owned(), entry())]);
        assert!(save(&dir, "../escape", &entry()).is_err());
        assert!(check_name("").is_err());
        let spec = PlanSpec { nodes: 3, kinds: vec![], window_ms: 1000, unit_ms: 100, drift_bound: 0.1 };
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(plan_from_json(&text, &spec), Ok(entry().plan), "an entry is read as its plan");
        let bare = serde_json::to_string(&entry().plan).expect("json");
        assert_eq!(plan_from_json(&bare, &spec), Ok(entry().plan));
        let small = PlanSpec { nodes: 1, ..spec };
        assert!(plan_from_json(&text, &small).is_err(), "node 1 does not exist in a one-node scenario");
        std::fs::write(dir.join("broken.json"), "{").expect("write");
        let e = load(&dir).expect_err("a broken entry is an error, not skipped");
        assert!(e.to_string().contains("broken.json"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
