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

/// The watchdog outlives an idle moment: a run watched after a second with nothing running
/// (between two tests of a user's suite) is still failed when it hangs (hunt 32 A #15: a
/// watchdog thread that ended when it found no run left every later hang to hang CI).
#[test]
fn a_hang_after_an_idle_moment_is_still_seen() {
    let out = Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--exact", "idle_then_hang_child", "--nocapture", "--test-threads", "1"])
        .env(IDLE_CHILD, "1")
        .env("KEEL_SIM_HANG_SECS", "1")
        .output()
        .expect("the child runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(keel_sim::watchdog::HANG_EXIT_CODE), "stderr: {stderr}");
    assert!(stderr.contains("HANG the second run: no progress for 1 s"), "{stderr}");
}

const IDLE_CHILD: &str = "KEEL_WATCHDOG_IDLE_CHILD";

/// The child of the test above (it does nothing in a plain test run, where the variable is not
/// set): a run that ends, an idle second and a half, then a run that never does.
#[test]
fn idle_then_hang_child() {
    if std::env::var_os(IDLE_CHILD).is_none() {
        return;
    }
    drop(keel_sim::watchdog::watch("the first run".into(), "replay 1".into()));
    std::thread::sleep(std::time::Duration::from_millis(1_500));
    let _hung = keel_sim::watchdog::watch("the second run".into(), "replay 2".into());
    std::thread::sleep(std::time::Duration::from_secs(20));
    panic!("the watchdog let a run go on for 20 s past its 1 s limit");
}
