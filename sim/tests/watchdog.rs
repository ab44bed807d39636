//! The run watchdog: a seed whose simulation stops making progress fails its process loudly,
//! with the seed and its replay line, instead of hanging the sweep (and CI) for good.
#![cfg(madsim)]

use std::process::Command;

/// MC222 (round 24 B #18) leaves the lifecycle `Running` after its run ended by itself; the
/// next start awaits an exit already reported in a loop that never yields, and simulated time
/// stops. Before the watchdog the whole `check` hung.
#[test]
fn a_seed_that_stops_making_progress_fails_its_sweep_as_a_hang() {
    let out = Command::new(env!("CARGO_BIN_EXE_keel-sim"))
        .args(["check", "--scenario", "completer", "--seeds", "0..4", "--jobs", "1", "--no-corpus"])
        .args(["--mutant", "MC222"])
        .env("KEEL_SIM_HANG_SECS", "3")
        .output()
        .expect("keel-sim runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(keel_sim::watchdog::HANG_EXIT_CODE), "stderr: {stderr}");
    assert!(stderr.contains("\nHANG completer seed "), "{stderr}");
    assert!(stderr.contains("(mutant MC222): no progress for 3 s"), "{stderr}");
    assert!(stderr.contains("replay: cargo sim replay --scenario completer --seed "), "{stderr}");
    assert!(stderr.contains("--mutant MC222"), "{stderr}");
}

/// The same seeds without the mutant end, and the watchdog says nothing.
#[test]
fn seeds_that_end_are_left_alone() {
    let out = Command::new(env!("CARGO_BIN_EXE_keel-sim"))
        .args(["check", "--scenario", "completer", "--seeds", "0..4", "--jobs", "1", "--no-corpus"])
        .env("KEEL_SIM_HANG_SECS", "30")
        .output()
        .expect("keel-sim runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    assert!(!stderr.contains("HANG"), "{stderr}");
}
