//! `keel-sim`: the checker's command line (`cargo sim check | replay | mutants | plan`).

#[cfg(not(madsim))]
fn main() {
    eprintln!("keel-sim must be built with --cfg madsim: run it as `cargo sim <command>` from the repo root");
    std::process::exit(2);
}

#[cfg(madsim)]
fn main() {
    std::process::exit(cli::main());
}

#[cfg(madsim)]
mod cli {
    use std::io::IsTerminal;
    use std::ops::Range;
    use std::path::PathBuf;
    use std::time::{Duration, Instant};

    use clap::{Parser, Subcommand};
    use indicatif::{ProgressBar, ProgressStyle};
    use keel::mutants::Mutant;
    use keel_sim::history::Event;
    use keel_sim::plan::{FaultPlan, Profile};
    use keel_sim::runner;
    use keel_sim::scenario;
    use keel_sim::sweep::{self, Sweep, SweepOpts};
    use keel_sim::zoo::{self, ZOO};

    #[derive(Parser)]
    #[command(name = "cargo sim", about = "keel's deterministic simulation checker", version)]
    struct Cli {
        #[command(subcommand)]
        cmd: Cmd,
    }

    #[derive(Subcommand)]
    enum Cmd {
        /// Run every scenario (or one) over a seed range; exit 0 only if nothing failed.
        Check {
            /// Scenario name, or `all`.
            #[arg(long, default_value = "all", value_parser = parse_scenario_or_all)]
            scenario: String,
            /// Seed range `A..B` (B exclusive).
            #[arg(long, default_value = "0..200", value_parser = parse_range)]
            seeds: Range<u64>,
            /// Worker threads (default: all cores).
            #[arg(long)]
            jobs: Option<usize>,
            /// Switch on a historical bug.
            #[arg(long, value_parser = zoo::parse_mutant)]
            mutant: Option<Mutant>,
            /// How faults are chosen.
            #[arg(long, value_enum, default_value = "swarm")]
            faults: Profile,
            /// Skip the regression corpus (sim/regressions), replayed by default after the sweep.
            #[arg(long)]
            no_corpus: bool,
            /// Unmutated scheduler seeds per corpus entry besides its own.
            #[arg(long, default_value_t = keel_sim::corpus::EXTRA_SEEDS_DEFAULT)]
            corpus_seeds: u64,
        },
        /// Run one seed and print its per-node timeline; exit 1 if an invariant broke.
        Replay {
            /// Scenario name.
            #[arg(long, value_parser = parse_scenario)]
            scenario: String,
            /// Scheduler seed (also derives the plan unless --plan is given).
            #[arg(long)]
            seed: u64,
            /// Switch on a historical bug.
            #[arg(long, value_parser = zoo::parse_mutant)]
            mutant: Option<Mutant>,
            /// Run this fault plan (JSON, as written by --dump-plan or `cargo sim plan`).
            #[arg(long)]
            plan: Option<PathBuf>,
            /// Write the plan that ran to this file.
            #[arg(long)]
            dump_plan: Option<PathBuf>,
            /// How faults are chosen (ignored with --plan).
            #[arg(long, value_enum, default_value = "swarm")]
            faults: Profile,
            /// Show every event, including periodic renewals and writes.
            #[arg(long)]
            verbose: bool,
            /// Also write the run as one self-contained HTML timeline to this file.
            #[arg(long)]
            html: Option<PathBuf>,
        },
        /// Shrink a failing run to a minimal fault plan that still breaks the same invariant;
        /// `--save NAME` adds it to the regression corpus (sim/regressions/NAME.json).
        Shrink {
            /// Scenario name.
            #[arg(long, value_parser = parse_scenario, required_unless_present = "all_mutants")]
            scenario: Option<String>,
            /// Scheduler seed of the failing run.
            #[arg(long, required_unless_present = "all_mutants")]
            seed: Option<u64>,
            /// Switch on a historical bug.
            #[arg(long, value_parser = zoo::parse_mutant)]
            mutant: Option<Mutant>,
            /// Start from this fault plan (JSON) instead of the seed's.
            #[arg(long)]
            plan: Option<PathBuf>,
            /// Keep this invariant broken (default: the run's first violation).
            #[arg(long)]
            invariant: Option<String>,
            /// How faults are chosen (ignored with --plan).
            #[arg(long, value_enum, default_value = "swarm")]
            faults: Profile,
            /// Most candidate runs.
            #[arg(long, default_value_t = keel_sim::shrink::ATTEMPTS_MAX_DEFAULT)]
            attempts: u32,
            /// Save the minimal plan to the regression corpus under this name.
            #[arg(long, conflicts_with = "all_mutants")]
            save: Option<String>,
            /// Instead: shrink every zoo mutant's first failing seed; prints a markdown table.
            #[arg(long, conflicts_with_all = ["scenario", "seed", "plan", "invariant"])]
            all_mutants: bool,
            /// With --all-mutants: save each minimal plan to the corpus, named after its mutant.
            #[arg(long, requires = "all_mutants")]
            save_all: bool,
            /// Worker threads (finding each mutant's first failing seed).
            #[arg(long)]
            jobs: Option<usize>,
        },
        /// Run every mutant against its scenario; exit 0 only if all are caught and the
        /// unmutated core passes the same seeds.
        Mutants {
            /// Only this scenario's mutants.
            #[arg(long, value_parser = parse_scenario_or_all, default_value = "all")]
            scenario: String,
            /// Override each mutant's seed budget.
            #[arg(long)]
            budget: Option<u64>,
            /// First seed.
            #[arg(long, default_value_t = 0)]
            start: u64,
            /// Worker threads.
            #[arg(long)]
            jobs: Option<usize>,
            /// How faults are chosen.
            #[arg(long, value_enum, default_value = "swarm")]
            faults: Profile,
        },
        /// Measure the checker: throughput, seeds to catch each mutant (swarm vs uniform fault
        /// rates) and the Sequin outage; prints markdown for docs/benchmarks.md.
        Bench {
            /// Starting seeds per mutant (the median is reported).
            #[arg(long, default_value_t = 9)]
            starts: u64,
            /// Worker threads.
            #[arg(long)]
            jobs: Option<usize>,
            /// Instead: the lease scenario against a bare madsim program of the same shape, by
            /// seeds per CPU-second, interleaved on one thread; last line `lease/bare-madsim=<x>`.
            #[arg(long)]
            baseline: bool,
            /// Rounds of the baseline comparison (each runs both sides).
            #[arg(long, default_value_t = 5)]
            rounds: u64,
        },
        /// Print the fault plan of a seed as JSON.
        Plan {
            /// Scenario name.
            #[arg(long, value_parser = parse_scenario)]
            scenario: String,
            /// Seed.
            #[arg(long)]
            seed: u64,
            /// How faults are chosen.
            #[arg(long, value_enum, default_value = "swarm")]
            faults: Profile,
        },
    }

    fn parse_range(s: &str) -> Result<Range<u64>, String> {
        let (a, b) = s.split_once("..").ok_or_else(|| format!("expected A..B, got {s:?}"))?;
        let a: u64 = a.trim().parse().map_err(|_| format!("bad range start {a:?}"))?;
        let b: u64 = b.trim().parse().map_err(|_| format!("bad range end {b:?}"))?;
        if a >= b {
            return Err(format!("empty seed range {a}..{b}"));
        }
        Ok(a..b)
    }

    fn scenario_names() -> Vec<&'static str> {
        scenario::all().iter().map(|s| s.name()).collect()
    }

    fn parse_scenario(s: &str) -> Result<String, String> {
        if scenario::by_name(s).is_some() {
            Ok(s.to_owned())
        } else {
            Err(format!("unknown scenario {s:?}; known: {}", scenario_names().join(", ")))
        }
    }

    fn parse_scenario_or_all(s: &str) -> Result<String, String> {
        if s == "all" { Ok(s.to_owned()) } else { parse_scenario(s) }
    }

    fn selected(s: &str) -> Vec<&'static str> {
        scenario_names().into_iter().filter(|n| s == "all" || *n == s).collect()
    }

    fn jobs(j: Option<usize>) -> usize {
        j.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1)
    }

    fn bar(len: u64, label: &str) -> ProgressBar {
        if !std::io::stderr().is_terminal() {
            return ProgressBar::hidden();
        }
        let pb = ProgressBar::new(len);
        let style = ProgressStyle::with_template("{prefix:>10} [{bar:40}] {pos}/{len} seeds  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        pb.set_style(style);
        pb.set_prefix(label.to_owned());
        pb
    }

    pub fn main() -> i32 {
        let cli = match Cli::try_parse() {
            Ok(c) => c,
            Err(e) => {
                let _ = e.print();
                return if e.use_stderr() { 2 } else { 0 };
            }
        };
        match cli.cmd {
            Cmd::Check { scenario, seeds, jobs: j, mutant, faults, no_corpus, corpus_seeds } => {
                let code = check(&scenario, seeds, jobs(j), mutant, faults);
                // The corpus is replayed unmutated: a --mutant sweep is about that mutant only.
                if no_corpus || mutant.is_some() || code == 2 {
                    return code;
                }
                let dir = std::path::Path::new(keel_sim::corpus::DIR);
                let held = keel_sim::regress::check_corpus(dir, &selected(&scenario), corpus_seeds);
                code.max(i32::from(!held))
            }
            Cmd::Replay { scenario, seed, mutant, plan, dump_plan, faults, verbose, html } => {
                replay(&scenario, seed, mutant, plan, dump_plan, faults, verbose, html)
            }
            Cmd::Shrink { all_mutants: true, attempts, save_all, jobs: j, .. } => {
                let limits = keel_sim::shrink::Limits { attempts_max: attempts, ..Default::default() };
                keel_sim::regress::shrink_all(limits, jobs(j), save_all, std::path::Path::new(keel_sim::corpus::DIR))
            }
            Cmd::Shrink { scenario, seed, mutant, plan, invariant, faults, attempts, save, .. } => {
                let (Some(scenario), Some(seed)) = (scenario, seed) else { return 2 };
                let plan = match plan.map(|p| read_plan(&p)).transpose() {
                    Ok(p) => p,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return 2;
                    }
                };
                let limits = keel_sim::shrink::Limits { attempts_max: attempts, ..Default::default() };
                let dir = std::path::Path::new(keel_sim::corpus::DIR);
                keel_sim::regress::shrink_one(
                    &scenario,
                    seed,
                    mutant,
                    faults,
                    plan,
                    invariant.as_deref(),
                    limits,
                    save.as_deref(),
                    dir,
                )
            }
            Cmd::Mutants { scenario, budget, start, jobs: j, faults } => {
                mutants(&scenario, budget, start, jobs(j), faults)
            }
            Cmd::Bench { baseline: true, rounds, .. } => bench_baseline(rounds.max(1)),
            Cmd::Bench { starts, jobs: j, .. } => bench(starts.max(1), jobs(j)),
            Cmd::Plan { scenario, seed, faults } => {
                let Some(scn) = scenario::by_name(&scenario) else { return 2 };
                let plan = FaultPlan::generate(seed, faults, &scn.plan_spec());
                match serde_json::to_string_pretty(&plan) {
                    Ok(j) => {
                        println!("{j}");
                        0
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        2
                    }
                }
            }
        }
    }

    fn check(which: &str, seeds: Range<u64>, jobs: usize, mutant: Option<Mutant>, faults: Profile) -> i32 {
        let mut rows: Vec<Sweep> = Vec::new();
        for name in selected(which) {
            let pb = bar(seeds.end - seeds.start, name);
            let opts = SweepOpts { seeds: seeds.clone(), jobs, mutant, profile: faults, stop_at_first_failure: false };
            let on_done = |o: &runner::RunOutcome| {
                if !o.passed() {
                    pb.suspend(|| {
                        for v in &o.violations {
                            println!("FAIL {} seed {}: {v}", o.scenario, o.seed);
                        }
                        println!("  {}", o.replay_line());
                    });
                }
                pb.inc(1);
            };
            let Some(sweep) = sweep::run(name, &opts, &on_done) else { return 2 };
            pb.finish_and_clear();
            rows.push(sweep);
        }
        let coverage_gate = mutant.is_none() && faults != Profile::Calm && seeds.end - seeds.start >= 100;
        println!();
        println!(
            "{:<10} {:>7} {:>8} {:>10} {:>8} {:>8}  coverage",
            "scenario", "seeds", "failures", "sim s", "wall s", "seeds/s"
        );
        let mut failed = false;
        for r in &rows {
            let cov = if r.missed_goals.is_empty() {
                format!("all {} goals reached", r.coverage.len())
            } else {
                format!("MISSED {}", r.missed_goals.join(", "))
            };
            println!(
                "{:<10} {:>7} {:>8} {:>10.1} {:>8.2} {:>8.1}  {cov}",
                r.scenario,
                r.seeds_run,
                r.failures.len(),
                r.sim_time.as_secs_f64(),
                r.wall.as_secs_f64(),
                r.seeds_per_sec()
            );
            failed |= !r.failures.is_empty() || (coverage_gate && !r.missed_goals.is_empty());
        }
        if !coverage_gate {
            println!("(coverage goals are enforced on unmutated sweeps of 100 seeds or more)");
        }
        i32::from(failed)
    }

    fn read_plan(path: &std::path::Path) -> Result<FaultPlan, String> {
        std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|s| serde_json::from_str::<FaultPlan>(&s).map_err(|e| e.to_string()))
            .map_err(|e| format!("cannot read plan {}: {e}", path.display()))
    }

    #[allow(clippy::too_many_arguments)]
    fn replay(
        name: &str,
        seed: u64,
        mutant: Option<Mutant>,
        plan_file: Option<PathBuf>,
        dump: Option<PathBuf>,
        faults: Profile,
        verbose: bool,
        html: Option<PathBuf>,
    ) -> i32 {
        let Some(scn) = scenario::by_name(name) else { return 2 };
        let plan = match plan_file {
            None => None,
            Some(path) => match std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|s| serde_json::from_str::<FaultPlan>(&s).map_err(|e| e.to_string()))
            {
                Ok(p) => Some(p),
                Err(e) => {
                    eprintln!("error: cannot read plan {}: {e}", path.display());
                    return 2;
                }
            },
        };
        let wall = Instant::now();
        let out = runner::run(scn.as_ref(), seed, mutant, faults, plan);
        let wall = wall.elapsed();
        if let Some(path) = dump {
            let written = serde_json::to_string_pretty(&out.plan)
                .map_err(|e| e.to_string())
                .and_then(|j| std::fs::write(&path, j).map_err(|e| e.to_string()));
            if let Err(e) = written {
                eprintln!("error: cannot write plan {}: {e}", path.display());
                return 2;
            }
        }
        if let Some(path) = html {
            if let Err(e) = std::fs::write(&path, keel_sim::html::page(&out)) {
                eprintln!("error: cannot write the HTML timeline {}: {e}", path.display());
                return 2;
            }
            eprintln!("timeline written to {}", path.display());
        }
        println!("scenario {name}, seed {seed}, mutant {}", mutant.map_or("none".into(), |m| format!("{m:?}")));
        print!("{}", out.plan);
        println!(
            "timeline (simulated time, node, event){}:",
            if verbose { "" } else { "; periodic events hidden, --verbose shows them" }
        );
        let nodes: std::collections::BTreeSet<String> = out.events.iter().map(|e| e.node.to_string()).collect();
        let col = |n: &str| nodes.iter().position(|x| x == n).unwrap_or(0);
        for e in out.events.iter().filter(|e| verbose || !is_quiet(e)) {
            let indent = " ".repeat(2 * col(&e.node.to_string()));
            println!("{indent}{}", e.line());
        }
        println!(
            "heal at {:.3}s, end at {:.3}s, wall {:.3}s",
            out.heal_us as f64 / 1e6,
            out.sim_time.as_secs_f64(),
            wall.as_secs_f64()
        );
        println!("coverage: {:?}", out.coverage);
        for v in &out.violations {
            println!("VIOLATION {v}");
        }
        if out.passed() {
            println!("result: pass");
        } else {
            println!("result: FAIL");
            println!("{}", out.replay_line());
        }
        println!("trace-hash: {:016x}", out.trace_hash);
        i32::from(!out.passed())
    }

    /// The distinct invariants a run broke, e.g. `S1+S3`.
    fn invariants(o: &runner::RunOutcome) -> String {
        let set: std::collections::BTreeSet<&str> = o.violations.iter().map(|v| v.invariant).collect();
        set.into_iter().collect::<Vec<_>>().join("+")
    }

    /// Periodic events, hidden from a timeline unless `--verbose` (a rejected write is shown).
    fn is_quiet(e: &Event) -> bool {
        use keel::observe::LeaseEvent;
        use keel_sim::history::{Ev, WorldEv};
        use keel_sim::scenario::{AppEv, lease};
        matches!(
            &e.ev,
            Ev::Core(keel::observe::Event::Lease(LeaseEvent::Renewed { .. } | LeaseEvent::AcquireRefused { .. }))
                | Ev::App(AppEv::Lease(lease::Rec::ResourceWrite { accepted: true, .. }))
                | Ev::World(WorldEv::NodeStart {})
        )
    }

    fn median(mut v: Vec<f64>) -> f64 {
        v.sort_by(f64::total_cmp);
        if v.is_empty() { f64::NAN } else { v[v.len() / 2] }
    }

    fn bench_baseline(rounds: u64) -> i32 {
        const PER_ROUND: u64 = 40;
        println!(
            "## Checking cost (cargo sim bench --baseline --rounds {rounds}: {PER_ROUND} seeds a side a round, one thread)\n"
        );
        let Some((checked, bare)) = keel_sim::baseline::compare_lease(rounds, PER_ROUND) else {
            eprintln!("error: this platform does not report thread CPU time (/proc/thread-self/schedstat)");
            return 2;
        };
        println!("| program | seeds | CPU s | seeds per CPU-s | simulated s per CPU-s |");
        println!("|---|---|---|---|---|");
        for (name, side) in [("lease scenario (swarm faults, every check)", checked), ("bare madsim, same shape", bare)]
        {
            println!(
                "| {name} | {} | {:.2} | {:.1} | {:.0} |",
                side.seeds,
                side.cpu.as_secs_f64(),
                side.seeds_per_cpu_s(),
                side.sim_per_cpu_s()
            );
        }
        println!("lease/bare-madsim={:.3}", checked.seeds_per_cpu_s() / bare.seeds_per_cpu_s());
        0
    }

    fn bench(starts: u64, jobs: usize) -> i32 {
        println!("## Simulator (cargo sim bench --starts {starts} --jobs {jobs})\n");
        println!("| scenario | seeds | wall s | seeds/s | simulated s per wall s |");
        println!("|---|---|---|---|---|");
        for name in scenario_names() {
            let opts =
                SweepOpts { seeds: 0..500, jobs, mutant: None, profile: Profile::Swarm, stop_at_first_failure: false };
            let Some(s) = sweep::run(name, &opts, &|_| {}) else { return 2 };
            println!(
                "| {name} | {} | {:.2} | {:.0} | {:.0} |",
                s.seeds_run,
                s.wall.as_secs_f64(),
                s.seeds_per_sec(),
                s.sim_time.as_secs_f64() / s.wall.as_secs_f64().max(1e-9)
            );
        }
        println!("\nSeeds to the first failure per mutant, median over {starts} starting seeds (budget 300):\n");
        println!("| mutant | swarm seeds | swarm wall ms | uniform seeds | uniform wall ms | uniform/swarm |");
        println!("|---|---|---|---|---|---|");
        for e in ZOO.iter().filter(|e| e.scenario != zoo::LOOM) {
            let mut cols = Vec::new();
            for profile in [Profile::Swarm, Profile::Uniform] {
                let (mut seeds, mut walls) = (Vec::new(), Vec::new());
                for k in 0..starts {
                    let start = 10_000 * (k + 1);
                    let opts = SweepOpts {
                        seeds: start..start + 300,
                        jobs,
                        mutant: Some(e.mutant),
                        profile,
                        stop_at_first_failure: true,
                    };
                    let t = Instant::now();
                    let Some(s) = sweep::run(e.scenario, &opts, &|_| {}) else { return 2 };
                    walls.push(t.elapsed().as_secs_f64() * 1e3);
                    seeds.push(s.first_failure().map_or(301.0, |f| (f.seed - start + 1) as f64));
                }
                cols.push((median(seeds), median(walls)));
            }
            let ratio = cols[1].0 / cols[0].0;
            println!(
                "| {:?} | {} | {:.0} | {} | {:.0} | {ratio:.2} |",
                e.mutant, cols[0].0, cols[0].1, cols[1].0, cols[1].1
            );
        }
        let Some(scn) = scenario::by_name("lease") else { return 2 };
        let mut walls = Vec::new();
        let mut passed = 0;
        let runs = 50;
        for seed in 0..runs {
            let plan = keel_sim::scenario::lease::sequin_outage_plan(seed, 1000);
            let t = Instant::now();
            let out = runner::run(scn.as_ref(), seed, None, Profile::Calm, Some(plan));
            walls.push(t.elapsed().as_secs_f64() * 1e3);
            passed += u32::from(out.passed() && out.coverage.contains("step_down_at_deadline"));
        }
        println!(
            "\nSequin outage (store down 5 s while held, ttl 1 s; 17 s simulated): {passed}/{runs} runs stepped down and recovered; median wall {:.1} ms per run (a real-time iptables test of the same outage: ~35 s).",
            median(walls)
        );
        0
    }

    fn mutants(which: &str, budget: Option<u64>, start: u64, jobs: usize, faults: Profile) -> i32 {
        let names = selected(which);
        let entries: Vec<_> = ZOO.iter().filter(|e| names.contains(&e.scenario)).collect();
        if entries.is_empty() {
            println!("no mutants for scenario {which}");
            return 0;
        }
        println!(
            "{:<5} {:<9} {:>8} {:>8} {:>8}  {:<9} lineage",
            "id", "verdict", "seeds", "broke", "wall s", "scenario"
        );
        for e in ZOO.iter().filter(|e| e.scenario == zoo::LOOM && which == "all") {
            println!(
                "{:<5} {:<9} (checked by `cargo loomtest`, not by a scenario)  {}",
                format!("{:?}", e.mutant),
                "loom-lane",
                e.lineage
            );
        }
        let mut all_caught = true;
        let mut max_seed: std::collections::BTreeMap<&str, u64> = Default::default();
        for e in &entries {
            let budget = budget.unwrap_or(e.budget);
            let opts = SweepOpts {
                seeds: start..start + budget,
                jobs,
                mutant: Some(e.mutant),
                profile: faults,
                stop_at_first_failure: true,
            };
            let t = Instant::now();
            let Some(sweep) = sweep::run(e.scenario, &opts, &|_| {}) else { return 2 };
            let wall = t.elapsed();
            let (verdict, seeds, inv) = match sweep.first_failure() {
                Some(f) => ("caught", (f.seed - start + 1).to_string(), invariants(f)),
                None => ("ESCAPED", format!(">{budget}"), "-".to_owned()),
            };
            if let Some(f) = sweep.first_failure() {
                let m = max_seed.entry(e.scenario).or_insert(0);
                *m = (*m).max(f.seed + 1);
            } else {
                all_caught = false;
            }
            println!(
                "{:<5} {:<9} {:>8} {:>8} {:>8.2}  {:<9} {}",
                format!("{:?}", e.mutant),
                verdict,
                seeds,
                inv,
                wall.as_secs_f64(),
                e.scenario,
                e.lineage
            );
        }
        let mut baseline_ok = true;
        for (scn, end) in max_seed {
            let opts = SweepOpts {
                seeds: start..end.max(start + 1),
                jobs,
                mutant: None,
                profile: faults,
                stop_at_first_failure: false,
            };
            let Some(sweep) = sweep::run(scn, &opts, &|_| {}) else { return 2 };
            let ok = sweep.failures.is_empty();
            baseline_ok &= ok;
            println!(
                "{:<5} {:<9} {:>8} {:>8} {:>8.2}  {:<9} unmutated core on the same seeds",
                "-",
                if ok { "pass" } else { "FAIL" },
                sweep.seeds_run,
                "-",
                sweep.wall.as_secs_f64(),
                scn
            );
            for f in &sweep.failures {
                println!("  {}", f.replay_line());
            }
        }
        let _ = Duration::ZERO;
        i32::from(!(all_caught && baseline_ok))
    }
}
