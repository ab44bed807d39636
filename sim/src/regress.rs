//! The commands around shrinking, as `cargo sim` prints them: `shrink`, `shrink --all-mutants`
//! and the corpus replay of `check`. Kept out of `main.rs` so the command line only parses.
//! Each writes its report to `out` and returns the write error, if any (a closed pipe is the
//! caller's to handle: `cargo sim shrink … | head` must not panic).

use std::io::{self, Write};
use std::path::Path;
use std::time::Instant;

use keel::mutants::Mutant;

use crate::corpus::{self, Entry, Origin, Verdict};
use crate::plan::{FaultPlan, Profile};
use crate::scenario;
use crate::shrink::{self, Limits, Shrunk};
use crate::sweep::{self, SweepOpts};
use crate::zoo::ZOO;

/// The shrink command that reproduces a search (recorded in corpus entries).
fn command(scenario: &str, seed: u64, mutant: Option<Mutant>, profile: Profile) -> String {
    let m = mutant.map(|m| format!(" --mutant {m:?}")).unwrap_or_default();
    let p = if profile == Profile::Swarm { String::new() } else { format!(" --faults {profile:?}").to_lowercase() };
    format!("cargo sim shrink --scenario {scenario} --seed {seed}{m}{p}")
}

/// The corpus entry of a finished shrink.
pub fn entry(scenario: &str, mutant: Option<Mutant>, profile: Profile, s: &Shrunk) -> Entry {
    Entry {
        scenario: scenario.to_owned(),
        seed: s.seed,
        mutant: mutant.map(|m| format!("{m:?}")),
        invariant: s.invariant.to_owned(),
        origin: Origin {
            command: command(scenario, s.original_seed, mutant, profile),
            faults_before: s.original_faults,
        },
        plan: s.plan.clone(),
    }
}

/// `cargo sim shrink --scenario S --seed N [--mutant M] [--plan FILE] [--save NAME]`.
#[allow(clippy::too_many_arguments)]
pub fn shrink_one(
    name: &str,
    seed: u64,
    mutant: Option<Mutant>,
    profile: Profile,
    plan: Option<FaultPlan>,
    invariant: Option<&str>,
    limits: Limits,
    save: Option<&str>,
    corpus_dir: &Path,
    out: &mut dyn Write,
) -> io::Result<i32> {
    let Some(scn) = scenario::by_name(name) else { return Ok(2) };
    if let Some(n) = save
        && let Err(e) = corpus::check_name(n)
    {
        eprintln!("error: {e}");
        return Ok(2);
    }
    // Steps are printed as they are found; a failed write is reported once the search is over.
    let mut step_err: Option<io::Error> = None;
    let mut print = |s: &shrink::Step| {
        if step_err.is_none() {
            step_err = writeln!(out, "{s}").err();
        }
    };
    let found = shrink::shrink(scn.as_ref(), seed, mutant, profile, plan, invariant, limits, &mut print);
    if let Some(e) = step_err {
        return Err(e);
    }
    let s = match found {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot shrink {name} seed {seed}: {e}");
            return Ok(1);
        }
    };
    writeln!(
        out,
        "shrunk {name} seed {seed}{}: {} → {} faults, breaks {} under seed {}; {} runs in {:.2}s{}",
        mutant.map(|m| format!(" with {m:?}")).unwrap_or_default(),
        s.original_faults,
        s.plan.events.len(),
        s.invariant,
        s.seed,
        s.attempts,
        s.wall.as_secs_f64(),
        if s.hit_limit {
            format!(" (stopped at the limit of {} runs: may not be minimal)", limits.attempts_max)
        } else {
            String::new()
        }
    )?;
    write!(out, "minimal {}", s.plan)?;
    let file = match save {
        Some(n) => match corpus::save(corpus_dir, n, &entry(name, mutant, profile, &s)) {
            Ok(path) => {
                writeln!(out, "saved to the regression corpus: {}", shown(&path))?;
                Some(shown(&path))
            }
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(2);
            }
        },
        None => {
            let plan_path = std::env::temp_dir().join(format!("keel-sim-{name}-{seed}.minimal.json"));
            write_plan(&plan_path, &s.plan).then(|| plan_path.display().to_string())
        }
    };
    match file {
        Some(f) => writeln!(out, "replay: {}", s.replay_line(name, mutant, &f))?,
        None => writeln!(out, "plan JSON:\n{}", serde_json::to_string_pretty(&s.plan).unwrap_or_default())?,
    }
    Ok(0)
}

/// A path as the user typed it would be: relative to the working directory when under it.
fn shown(path: &Path) -> String {
    let cwd = std::env::current_dir().unwrap_or_default();
    path.strip_prefix(&cwd).unwrap_or(path).display().to_string()
}

fn write_plan(path: &Path, plan: &FaultPlan) -> bool {
    let r = serde_json::to_string_pretty(plan)
        .map_err(|e| e.to_string())
        .and_then(|j| std::fs::write(path, j + "\n").map_err(|e| e.to_string()));
    if let Err(e) = &r {
        eprintln!("warning: cannot write the minimal plan to {}: {e}", path.display());
    }
    r.is_ok()
}

/// `cargo sim shrink --all-mutants`: every zoo mutant's first failing seed, shrunk; prints the
/// markdown table of docs/benchmarks.md and, with `save`, seeds the corpus (one entry per
/// mutant, named after it).
pub fn shrink_all(limits: Limits, jobs: usize, save: bool, corpus_dir: &Path, out: &mut dyn Write) -> io::Result<i32> {
    writeln!(out, "## Shrinking (cargo sim shrink --all-mutants, at most {} runs each)\n", limits.attempts_max)?;
    writeln!(
        out,
        "| mutant | scenario | seed | invariant | faults before | faults after | runs | minimal seed | wall s |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|---|---|")?;
    let mut reductions = Vec::new();
    let mut failed = false;
    for e in ZOO.iter().filter(|e| e.simulated()) {
        let opts = SweepOpts {
            seeds: 0..e.budget,
            jobs,
            mutant: Some(e.mutant),
            profile: Profile::Swarm,
            stop_at_first_failure: true,
        };
        let Some(sw) = sweep::run(e.scenario, &opts, &|_| {}) else { return Ok(2) };
        let Some(seed) = sw.first_failure().map(|f| f.seed) else {
            writeln!(
                out,
                "| {:?} | {} | - | escaped in {} seeds | - | - | - | - | - |",
                e.mutant, e.scenario, e.budget
            )?;
            failed = true;
            continue;
        };
        let Some(scn) = scenario::by_name(e.scenario) else { return Ok(2) };
        let t = Instant::now();
        let s =
            match shrink::shrink(scn.as_ref(), seed, Some(e.mutant), Profile::Swarm, None, None, limits, &mut |_| {}) {
                Ok(s) => s,
                Err(err) => {
                    eprintln!("error: {:?} seed {seed}: {err}", e.mutant);
                    failed = true;
                    continue;
                }
            };
        let wall = t.elapsed().as_secs_f64();
        let before = s.original_faults as f64;
        reductions.push(if before > 0.0 { 1.0 - s.plan.events.len() as f64 / before } else { 0.0 });
        writeln!(
            out,
            "| {:?} | {} | {seed} | {} | {} | {}{} | {} | {} | {wall:.1} |",
            e.mutant,
            e.scenario,
            s.invariant,
            s.original_faults,
            s.plan.events.len(),
            if s.hit_limit { " (limit)" } else { "" },
            s.attempts,
            s.seed
        )?;
        if save {
            let name = format!("{:?}", e.mutant);
            if let Err(err) = corpus::save(corpus_dir, &name, &entry(e.scenario, Some(e.mutant), Profile::Swarm, &s)) {
                eprintln!("error: {err}");
                return Ok(2);
            }
        }
    }
    reductions.sort_by(f64::total_cmp);
    let median = reductions.get(reductions.len() / 2).copied().unwrap_or(f64::NAN);
    writeln!(out, "\nmedian reduction in faults: {:.0} % over {} mutants", median * 100.0, reductions.len())?;
    Ok(i32::from(failed))
}

/// Replay the corpus in `dir` for the scenarios in `scenarios` (each entry unmutated under its
/// seed and `extra_seeds` more, then with its mutant); prints one line per entry. True if every
/// entry held.
pub fn check_corpus(dir: &Path, scenarios: &[&str], extra_seeds: u64, out: &mut dyn Write) -> io::Result<bool> {
    let entries = match corpus::load(dir) {
        Ok(e) => e,
        Err(e) => {
            writeln!(out, "FAIL {e}")?;
            return Ok(false);
        }
    };
    let entries: Vec<_> = entries.into_iter().filter(|(_, e)| scenarios.contains(&e.scenario.as_str())).collect();
    let t = Instant::now();
    let mut ok = 0;
    for (name, e) in &entries {
        let m = e.mutant.as_deref().map(|m| format!(" --mutant {m}")).unwrap_or_default();
        match corpus::replay(e, extra_seeds) {
            Verdict::Pass { caught_under, .. } => {
                ok += 1;
                if let Some(other) = caught_under.filter(|&c| c != e.seed) {
                    writeln!(
                        out,
                        "note: corpus {name}: with{m} the plan breaks {} under seed {other}, no longer under its own seed {}; shrink it again to refresh it ({} --save {name})",
                        e.invariant, e.seed, e.origin.command
                    )?;
                }
            }
            Verdict::Regressed { seed, violations } => {
                writeln!(out, "FAIL corpus {name}: the unmutated core breaks its plan under seed {seed}:")?;
                for v in violations {
                    writeln!(out, "  {v}")?;
                }
                writeln!(
                    out,
                    "  replay: cargo sim replay --scenario {} --seed {seed} --plan {}",
                    e.scenario,
                    shown(&dir.join(format!("{name}.json")))
                )?;
            }
            Verdict::Stale { got, seeds } => writeln!(
                out,
                "FAIL corpus {name}: STALE: with{m} the plan no longer breaks {} under seeds {seeds:?} (under its own seed {}: {got}); the entry tests nothing any more: shrink again and save over it ({} --save {name})",
                e.invariant, e.seed, e.origin.command
            )?,
            Verdict::Unusable { why } => writeln!(out, "FAIL corpus {name}: {why}")?,
        }
    }
    writeln!(
        out,
        "corpus: {ok}/{} entries held (each unmutated under {} seeds, and with its mutant under one of them) in {:.1}s, {}",
        entries.len(),
        extra_seeds + 1,
        t.elapsed().as_secs_f64(),
        shown(dir)
    )?;
    Ok(ok == entries.len())
}
