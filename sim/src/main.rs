//! `keel-sim`: the checker's command line (`cargo sim check | replay | mutants | plan`).

#[cfg(not(madsim))]
fn main() {
    eprintln!("keel-sim must be built with --cfg madsim: run it as `cargo sim <command>` from the repo root");
    std::process::exit(2);
}

#[cfg(madsim)]
fn main() {
    // A seed's runtime is torn down and the next one built: with purging on, mimalloc returned
    // the freed pages to the OS and the kernel zeroed fresh ones for the next seed (clear_page
    // at 11 % of a lease run). The memory kept is one seed's peak per job thread.
    // SAFETY: sets a process-wide allocator option before any other thread exists.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    std::process::exit(cli::main());
}

/// `mi_option_purge_delay` in mimalloc v2's `mimalloc.h` (the crate names only its neighbours,
/// 14 and 16): milliseconds before freed memory is purged, -1 for never.
#[cfg(madsim)]
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// A sweep allocates and frees small objects at a high rate (messages, events, tasks, store
/// records): with glibc's allocator a quarter of an rmap run was malloc and free. The allocator
/// reaches no behaviour (nothing orders or hashes by address), so traces are unchanged.
#[cfg(madsim)]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `println!` that ends the process quietly when stdout is closed (`cargo sim plan … | head`): a
/// closed pipe is the reader's choice, not an error worth a panic. Exit 141, as a process killed by
/// SIGPIPE would, so a pipeline still tells a cut-short run from a complete one.
#[cfg(madsim)]
macro_rules! outln {
    () => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock()) {
            crate::cli::stdout_failed(e)
        }
    }};
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($t)*) {
            crate::cli::stdout_failed(e)
        }
    }};
}

/// `print!` with the same handling of a closed stdout as [`outln!`].
#[cfg(madsim)]
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = write!(std::io::stdout().lock(), $($t)*) {
            crate::cli::stdout_failed(e)
        }
    }};
}

#[cfg(madsim)]
mod cli {
    use std::io::IsTerminal;
    use std::ops::Range;
    use std::path::PathBuf;
    use std::time::Instant;

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
            /// Run this fault plan (JSON, as written by --dump-plan or `cargo sim plan`, or a
            /// regression corpus entry such as sim/regressions/MS5.json).
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

    /// Writing to stdout failed: a closed pipe ends the process quietly, anything else is an
    /// error (exit 2).
    pub fn stdout_failed(e: std::io::Error) -> ! {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(141);
        }
        eprintln!("error: cannot write to stdout: {e}");
        std::process::exit(2)
    }

    /// Parse the command line: the command, or the exit code and message of a bad one (2, or 0
    /// for --help and --version). Never panics, whatever the arguments.
    fn parse<I, T>(args: I) -> Result<Cli, (i32, String)>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Cli::try_parse_from(args).map_err(|e| (if e.use_stderr() { 2 } else { 0 }, e.render().to_string()))
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
        let cli = match parse(std::env::args_os()) {
            Ok(c) => c,
            Err((0, help)) => {
                out!("{help}");
                return 0;
            }
            Err((code, msg)) => {
                eprint!("{msg}");
                return code;
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
                let held =
                    keel_sim::regress::check_corpus(dir, &selected(&scenario), corpus_seeds, &mut std::io::stdout())
                        .unwrap_or_else(|e| stdout_failed(e));
                code.max(i32::from(!held))
            }
            Cmd::Replay { scenario, seed, mutant, plan, dump_plan, faults, verbose, html } => {
                replay(&scenario, seed, mutant, plan, dump_plan, faults, verbose, html)
            }
            Cmd::Shrink { all_mutants: true, attempts, save_all, jobs: j, .. } => {
                let limits = keel_sim::shrink::Limits { attempts_max: attempts, ..Default::default() };
                let dir = std::path::Path::new(keel_sim::corpus::DIR);
                keel_sim::regress::shrink_all(limits, jobs(j), save_all, dir, &mut std::io::stdout())
                    .unwrap_or_else(|e| stdout_failed(e))
            }
            Cmd::Shrink { scenario, seed, mutant, plan, invariant, faults, attempts, save, .. } => {
                let (Some(scenario), Some(seed)) = (scenario, seed) else { return 2 };
                let Some(scn) = scenario::by_name(&scenario) else { return 2 };
                let plan = match plan.map(|p| read_plan(&p, &scn.plan_spec())).transpose() {
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
                    &mut std::io::stdout(),
                )
                .unwrap_or_else(|e| stdout_failed(e))
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
                        outln!("{j}");
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
                            outln!("FAIL {} seed {}: {v}", o.scenario, o.seed);
                        }
                        outln!("  {}", o.replay_line());
                    });
                }
                pb.inc(1);
            };
            let Some(sweep) = sweep::run(name, &opts, &on_done) else { return 2 };
            pb.finish_and_clear();
            rows.push(sweep);
        }
        let coverage_gate = mutant.is_none() && faults != Profile::Calm && seeds.end - seeds.start >= 100;
        outln!();
        outln!(
            "{:<10} {:>7} {:>8} {:>10} {:>8} {:>8}  coverage",
            "scenario",
            "seeds",
            "failures",
            "sim s",
            "wall s",
            "seeds/s"
        );
        let mut failed = false;
        for r in &rows {
            let cov = if r.missed_goals.is_empty() {
                format!("all {} goals reached", r.coverage.len())
            } else {
                format!("MISSED {}", r.missed_goals.join(", "))
            };
            outln!(
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
        for r in &rows {
            let l = &r.linearizability;
            println!(
                "{:<10} linearizability: {} store histories checked ({} map operations), {} skipped as too large (> {} ops or > {} open), {} over the search budget ({} steps), {} not linearizable",
                r.scenario,
                l.checked,
                l.ops,
                l.skipped,
                keel_sim::linearize::HISTORY_OPS_MAX,
                keel_sim::linearize::HISTORY_OPEN_MAX,
                l.over_budget,
                keel_sim::linearize::SEARCH_STEPS_MAX,
                l.violations.len()
            );
            if l.from_checkpoint > 0 {
                println!(
                    "{:<10} linearizability: {} store lifetimes judged from the checkpoint a roll-back restarted from",
                    r.scenario, l.from_checkpoint
                );
            }
        }
        if !coverage_gate {
            outln!("(coverage goals are enforced on unmutated sweeps of 100 seeds or more)");
        }
        i32::from(failed)
    }

    fn read_plan(path: &std::path::Path, spec: &keel_sim::plan::PlanSpec) -> Result<FaultPlan, String> {
        std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|s| keel_sim::corpus::plan_from_json(&s, spec))
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
                .and_then(|s| keel_sim::corpus::plan_from_json(&s, &scn.plan_spec()))
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
        outln!("scenario {name}, seed {seed}, mutant {}", mutant.map_or("none".into(), |m| format!("{m:?}")));
        out!("{}", out.plan);
        outln!(
            "timeline (simulated time, node, event){}:",
            if verbose { "" } else { "; periodic events hidden, --verbose shows them" }
        );
        let nodes: std::collections::BTreeSet<String> = out.events.iter().map(|e| e.node.to_string()).collect();
        let col = |n: &str| nodes.iter().position(|x| x == n).unwrap_or(0);
        for e in out.events.iter().filter(|e| verbose || !is_quiet(e)) {
            let indent = " ".repeat(2 * col(&e.node.to_string()));
            outln!("{indent}{}", e.line());
        }
        outln!(
            "heal at {:.3}s, end at {:.3}s, wall {:.3}s",
            out.heal_us as f64 / 1e6,
            out.sim_time.as_secs_f64(),
            wall.as_secs_f64()
        );
        outln!("coverage: {:?}", out.coverage);
        for v in &out.violations {
            outln!("VIOLATION {v}");
        }
        if out.passed() {
            outln!("result: pass");
        } else {
            outln!("result: FAIL");
            outln!("{}", out.replay_line());
        }
        outln!("trace-hash: {:016x}", out.trace_hash);
        i32::from(!out.passed())
    }

    /// The distinct invariants a run broke, e.g. `S1+S3`.
    fn invariants(o: &runner::RunOutcome) -> String {
        let set: std::collections::BTreeSet<&str> = o.violations.iter().map(|v| v.invariant).collect();
        set.into_iter().collect::<Vec<_>>().join("+")
    }

    /// Periodic events, hidden from a timeline unless `--verbose` (a rejected write is shown),
    /// and the store's record of each completion that landed (its worker's `completed` says it,
    /// and a `complete_failed` of a job that then never runs again).
    fn is_quiet(e: &Event) -> bool {
        use keel::observe::LeaseEvent;
        use keel_sim::history::{Ev, ServerEv, WorldEv};
        use keel_sim::scenario::{AppEv, lease};
        matches!(
            &e.ev,
            Ev::Core(keel::observe::Event::Lease(LeaseEvent::Renewed { .. } | LeaseEvent::AcquireRefused { .. }))
                | Ev::App(AppEv::Lease(lease::Rec::ResourceWrite { accepted: true, .. }))
                | Ev::World(WorldEv::NodeStart {})
                | Ev::Server(ServerEv::CompletionLanded { .. })
        )
    }

    fn median(mut v: Vec<f64>) -> f64 {
        v.sort_by(f64::total_cmp);
        if v.is_empty() { f64::NAN } else { v[v.len() / 2] }
    }

    fn bench_baseline(rounds: u64) -> i32 {
        const PER_ROUND: u64 = 40;
        outln!(
            "## Checking cost (cargo sim bench --baseline --rounds {rounds}: {PER_ROUND} seeds a side a round, one thread)\n"
        );
        // The rmap comparison first: the last line stays the lease ratio.
        let (Some(rmap), Some(lease)) =
            (keel_sim::baseline::compare_rmap(rounds, PER_ROUND), keel_sim::baseline::compare_lease(rounds, PER_ROUND))
        else {
            eprintln!("error: this platform does not report thread CPU time (/proc/thread-self/schedstat)");
            return 2;
        };
        outln!("| program | seeds | CPU s | seeds per CPU-s | simulated s per CPU-s | store calls per simulated s |");
        outln!("|---|---|---|---|---|---|");
        for (scenario, c) in [("rmap", rmap), ("lease", lease)] {
            for (name, side) in [
                (format!("{scenario} scenario (swarm faults, every check)"), c.checked),
                ("the same runs without the checker (no history, no checks)".to_owned(), c.unchecked),
                ("the same seeds without faults (calm plans, every check)".to_owned(), c.calm),
                ("bare madsim, same shape (no faults)".to_owned(), c.bare),
            ] {
                outln!(
                    "| {name} | {} | {:.2} | {:.1} | {:.0} | {:.1} |",
                    side.seeds,
                    side.cpu.as_secs_f64(),
                    side.seeds_per_cpu_s(),
                    side.sim_per_cpu_s(),
                    side.calls_per_sim_s()
                );
            }
        }
        outln!();
        for (scenario, c) in [("rmap", rmap), ("lease", lease)] {
            outln!(
                "the checker's share of the {scenario} scenario's CPU: {:.0} %",
                100.0 * (1.0 - c.unchecked.cpu.as_secs_f64() / c.checked.cpu.as_secs_f64().max(1e-9))
            );
        }
        for (scenario, c) in [("rmap", rmap), ("lease", lease)] {
            // Like for like on faults (the bare programs run none), per simulated second: the
            // bare runs last the swarm runs' mean, and a plan's settle depends on its faults.
            outln!("{scenario}-calm/bare-madsim={:.3}", c.calm.sim_per_cpu_s() / c.bare.sim_per_cpu_s());
        }
        outln!("rmap/bare-madsim={:.3}", rmap.ratio());
        outln!("lease/bare-madsim={:.3}", lease.ratio());
        0
    }

    fn bench(starts: u64, jobs: usize) -> i32 {
        outln!("## Simulator (cargo sim bench --starts {starts} --jobs {jobs})\n");
        outln!("| scenario | seeds | wall s | seeds/s | simulated s per wall s |");
        outln!("|---|---|---|---|---|");
        for name in scenario_names() {
            let opts =
                SweepOpts { seeds: 0..500, jobs, mutant: None, profile: Profile::Swarm, stop_at_first_failure: false };
            let Some(s) = sweep::run(name, &opts, &|_| {}) else { return 2 };
            outln!(
                "| {name} | {} | {:.2} | {:.0} | {:.0} |",
                s.seeds_run,
                s.wall.as_secs_f64(),
                s.seeds_per_sec(),
                s.sim_time.as_secs_f64() / s.wall.as_secs_f64().max(1e-9)
            );
        }
        outln!("\nSeeds to the first failure per mutant, median over {starts} starting seeds (budget 300):\n");
        outln!("| mutant | swarm seeds | swarm wall ms | uniform seeds | uniform wall ms | uniform/swarm |");
        outln!("|---|---|---|---|---|---|");
        for e in ZOO.iter().filter(|e| e.simulated()) {
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
            outln!(
                "| {:?} | {} | {:.0} | {} | {:.0} | {ratio:.2} |",
                e.mutant,
                cols[0].0,
                cols[0].1,
                cols[1].0,
                cols[1].1
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
        outln!(
            "\nSequin outage (store down 5 s while held, ttl 1 s; 17 s simulated): {passed}/{runs} runs stepped down and recovered; median wall {:.1} ms per run (a real-time iptables test of the same outage: ~35 s).",
            median(walls)
        );
        0
    }

    fn mutants(which: &str, budget: Option<u64>, start: u64, jobs: usize, faults: Profile) -> i32 {
        let names = selected(which);
        let entries: Vec<_> = ZOO.iter().filter(|e| names.contains(&e.scenario)).collect();
        if entries.is_empty() {
            outln!("no mutants for scenario {which}");
            return 0;
        }
        outln!("{:<5} {:<9} {:>8} {:>8} {:>8}  {:<9} lineage", "id", "verdict", "seeds", "broke", "wall s", "scenario");
        for e in ZOO.iter().filter(|e| !e.simulated() && which == "all") {
            let (lane, by) = if e.scenario == zoo::LOOM {
                ("loom-lane", "cargo loomtest")
            } else if e.scenario == zoo::CORPUS {
                ("corpus", "cargo sim check: its plan in sim/regressions")
            } else if e.scenario == zoo::UNIT {
                ("unit-lane", "cargo test -p keel --all-features")
            } else if e.scenario == zoo::HANG {
                ("hang-lane", "cargo simtest --test watchdog")
            } else if e.scenario == zoo::HARNESS {
                ("harness-lane", "cargo simtest --test harness")
            } else if e.scenario == zoo::CONFORMANCE {
                ("conformance-lane", "cargo simtest --lib store_conformance")
            } else {
                ("model-lane", "cargo modelcheck")
            };
            outln!("{:<5} {lane:<9} (checked by `{by}`, not by a scenario)  {}", format!("{:?}", e.mutant), e.lineage);
        }
        let mut all_caught = true;
        let mut max_seed: std::collections::BTreeMap<&str, u64> = Default::default();
        for e in &entries {
            let budget = budget.unwrap_or(e.budget);
            let proof = zoo::goal_proof(e.mutant);
            let opts = SweepOpts {
                seeds: start..start + budget,
                jobs,
                mutant: Some(e.mutant),
                profile: faults,
                // A fault's mutant is judged on the goals of the whole sweep.
                stop_at_first_failure: proof.is_none(),
            };
            let t = Instant::now();
            let Some(sweep) = sweep::run(e.scenario, &opts, &|_| {}) else { return 2 };
            let missed = match proof {
                Some(goals) => {
                    let Some(base) = sweep::run(e.scenario, &SweepOpts { mutant: None, ..opts }, &|_| {}) else {
                        return 2;
                    };
                    let gone = |g: &&&str| sweep.missed_goals.contains(*g) && !base.missed_goals.contains(*g);
                    goals.iter().filter(gone).copied().collect::<Vec<_>>()
                }
                None => Vec::new(),
            };
            // A catch counts only if its replay line reproduces it: the same seed, alone and
            // unplanned, fails again with the same trace hash (what a user's replay would see).
            let replays = |f: &runner::RunOutcome| {
                scenario::by_name(e.scenario).is_some_and(|scn| {
                    let again = runner::run(scn.as_ref(), f.seed, Some(e.mutant), faults, None);
                    !again.passed() && again.trace_hash == f.trace_hash
                })
            };
            let wall = t.elapsed();
            let (verdict, seeds, inv) = match sweep.first_failure() {
                Some(f) if !replays(f) => ("NO-REPLAY", (f.seed - start + 1).to_string(), invariants(f)),
                Some(f) => ("caught", (f.seed - start + 1).to_string(), invariants(f)),
                None if !missed.is_empty() => ("caught", budget.to_string(), format!("goal {}", missed.join(","))),
                None => ("ESCAPED", format!(">{budget}"), "-".to_owned()),
            };
            if let Some(f) = sweep.first_failure() {
                let m = max_seed.entry(e.scenario).or_insert(0);
                *m = (*m).max(f.seed + 1);
            }
            all_caught &= verdict == "caught";
            outln!(
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
            outln!(
                "{:<5} {:<9} {:>8} {:>8} {:>8.2}  {:<9} unmutated core on the same seeds",
                "-",
                if ok { "pass" } else { "FAIL" },
                sweep.seeds_run,
                "-",
                sweep.wall.as_secs_f64(),
                scn
            );
            for f in &sweep.failures {
                outln!("  {}", f.replay_line());
            }
        }
        i32::from(!(all_caught && baseline_ok))
    }

    #[cfg(test)]
    mod tests {
        use rand::{Rng, SeedableRng};
        use rand_chacha::ChaCha8Rng;

        use super::parse;

        /// Arbitrary argument vectors: words of the real grammar mixed with garbage. Every one
        /// parses, or is exit 2 with a message (0 for help/version), never a panic.
        #[test]
        fn any_argv_parses_or_is_exit_2_with_a_message() {
            const WORDS: &[&str] = &[
                "check",
                "replay",
                "mutants",
                "bench",
                "plan",
                "--scenario",
                "--seed",
                "--seeds",
                "--jobs",
                "--mutant",
                "--plan",
                "--dump-plan",
                "--faults",
                "--verbose",
                "--budget",
                "--start",
                "--starts",
                "lease",
                "pool",
                "rmap",
                "completer",
                "all",
                "swarm",
                "calm",
                "uniform",
                "MS1",
                "MP4",
                "0",
                "1",
                "-1",
                "5..2",
                "0..",
                "..",
                "18446744073709551616",
                "99999999999999999999999",
                "0..18446744073709551615",
                "",
                "-",
                "--",
                "é",
                "\u{0}",
                "--help",
                "-h",
                "--version",
                "help",
            ];
            let mut rng = ChaCha8Rng::seed_from_u64(0x6b65656c);
            for case in 0..20_000 {
                let n = rng.gen_range(0..7);
                let mut argv = vec!["cargo-sim".to_owned()];
                for _ in 0..n {
                    let w = if rng.gen_bool(0.85) {
                        WORDS[rng.gen_range(0..WORDS.len())].to_owned()
                    } else {
                        (0..rng.gen_range(0..6)).map(|_| char::from(rng.gen_range(0x20u8..0x7f))).collect()
                    };
                    argv.push(w);
                }
                match parse(argv.clone()) {
                    Ok(_) => {}
                    Err((code, msg)) => {
                        assert!(code == 2 || code == 0, "case {case} {argv:?}: exit {code}");
                        assert!(!msg.trim().is_empty(), "case {case} {argv:?}: no message");
                    }
                }
            }
        }
    }
}
