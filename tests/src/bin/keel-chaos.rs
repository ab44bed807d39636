//! `keel-chaos`: keel's workloads as OS processes over a real Redis under a seeded fault plan,
//! judged by the real-world checkers (docs/chaos.md).
//!
//! `cargo run --release -p keel-tests --bin keel-chaos -- --cycles 10 --seed 1 [--mutant MS3] [--json out.json]`
//! Exit 0: every checker passed; 1: a checker failed (or the run could not complete); 2: bad
//! arguments or a missing redis-server.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use keel_tests::chaos::{check, history, node, plan, runner};

/// Most cycles one run takes (a bound on every loop of the run).
const CYCLES_MAX: u32 = 10_000;

#[derive(Parser, Debug)]
#[command(name = "keel-chaos", about = "keel's workloads as OS processes over a real Redis, under a seeded fault plan")]
struct Cli {
    /// Fault cycles (each: one fault, its heal, a settle).
    #[arg(long, default_value_t = 10)]
    cycles: u32,
    /// Seed of the fault plan.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Jobs the dispatcher adds (default: 60 per cycle).
    #[arg(long)]
    jobs: Option<u32>,
    /// A zoo mutant switched on in every app process (needs feature `mutants`).
    #[arg(long)]
    mutant: Option<String>,
    /// Write the figures as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Keep the run directory (histories, logs, Redis data) and print its path.
    #[arg(long)]
    keep: bool,
    /// Judge the histories of a kept run's `events` directory again (with the same --seed and
    /// --cycles as the run) instead of running; crashes and hung stops are not re-judged.
    #[arg(long)]
    judge: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// One app process (spawned by the runner).
    Node {
        #[arg(long)]
        role: String,
        #[arg(long)]
        id: String,
        #[arg(long)]
        redis_port: u16,
        #[arg(long)]
        events: PathBuf,
        #[arg(long)]
        register_port: u16,
        #[arg(long, default_value_t = 0)]
        incarnation: u32,
        #[arg(long, default_value_t = 1000)]
        ttl_ms: u64,
        #[arg(long, default_value_t = 0)]
        jobs: u32,
        #[arg(long, default_value_t = 100)]
        dispatch_every_ms: u64,
        #[arg(long)]
        mutant: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Cmd::Node {
        role,
        id,
        redis_port,
        events,
        register_port,
        incarnation,
        ttl_ms,
        jobs,
        dispatch_every_ms,
        mutant,
    }) = cli.cmd
    {
        let args = node::NodeArgs {
            role,
            id,
            redis_port,
            events,
            register_port,
            incarnation,
            ttl: Duration::from_millis(ttl_ms),
            jobs,
            dispatch_every: Duration::from_millis(dispatch_every_ms.max(1)),
            mutant,
        };
        return ExitCode::from(u8::try_from(node::run(args)).unwrap_or(1));
    }
    if cli.cycles == 0 || cli.cycles > CYCLES_MAX {
        eprintln!("keel-chaos: --cycles must be in 1..={CYCLES_MAX}");
        return ExitCode::from(2);
    }
    if cli.mutant.is_some() && !cfg!(feature = "mutants") {
        eprintln!("keel-chaos: --mutant needs keel-tests built with --features mutants");
        return ExitCode::from(2);
    }
    if let Some(events) = &cli.judge {
        let plan = plan::plan(cli.seed, cli.cycles, u64::try_from(runner::TTL.as_millis()).unwrap_or(1000));
        let (lines, torn) = match history::merge(events) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("keel-chaos: reading {}: {e}", events.display());
                return ExitCode::from(2);
            }
        };
        let outcome = runner::RunOutcome { panics: runner::panics(events), ..runner::RunOutcome::default() };
        let mut figures = check::check(&lines, &outcome, &plan, cli.seed, cli.mutant);
        figures.torn_lines = torn;
        print!("{}", check::table(&figures));
        return if figures.failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) };
    }
    let dir = std::env::temp_dir().join(format!("keel-chaos-{}", std::process::id()));
    let events = dir.join("events");
    if let Err(e) = std::fs::create_dir_all(&events) {
        eprintln!("keel-chaos: cannot create {}: {e}", events.display());
        return ExitCode::from(2);
    }
    let plan = plan::plan(cli.seed, cli.cycles, u64::try_from(runner::TTL.as_millis()).unwrap_or(1000));
    println!("keel-chaos: seed {} cycles {} mutant {}", cli.seed, cli.cycles, cli.mutant.as_deref().unwrap_or("none"));
    println!("plan (repeat it with the same --seed and --cycles):");
    for (i, f) in plan.iter().enumerate() {
        println!("  {i:>3} {f:?}");
    }
    let rec = match history::Recorder::open(&events.join("runner.jsonl"), "runner") {
        Ok(r) => Arc::new(r),
        Err(e) => {
            eprintln!("keel-chaos: history: {e}");
            return ExitCode::from(2);
        }
    };
    let jobs = cli.jobs.unwrap_or(cli.cycles.saturating_mul(runner::JOBS_PER_CYCLE));
    let args = runner::RunArgs { plan: plan.clone(), jobs, mutant: cli.mutant.clone(), dir: events.clone() };
    let outcome = match runner::run(&args, &rec) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("keel-chaos: the run failed: {e}");
            eprintln!("keel-chaos: run directory kept: {}", dir.display());
            return ExitCode::from(if e.contains("redis-server not found") { 2 } else { 1 });
        }
    };
    let (lines, torn) = match history::merge(&events) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("keel-chaos: reading the histories: {e}");
            return ExitCode::from(1);
        }
    };
    let mut figures = check::check(&lines, &outcome, &plan, cli.seed, cli.mutant);
    figures.torn_lines = torn;
    print!("{}", check::table(&figures));
    if let Some(path) = &cli.json {
        let text = serde_json::to_string_pretty(&figures).unwrap_or_default();
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("keel-chaos: cannot write {}: {e}", path.display());
            return ExitCode::from(1);
        }
    }
    if cli.keep || !figures.failures.is_empty() {
        println!("run directory (histories, child logs, redis data): {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    if figures.failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) }
}
