//! # keel-sim
//!
//! The deterministic simulation checker of keel: the real `keel` core under madsim, with a
//! simulated store server, per-node clocks, seeded swarm fault plans, invariant checks on every
//! run, "sometimes" coverage across sweeps, a mutant zoo of historical bugs, and one-line replay.
//!
//! Build it with `--cfg madsim` (the `cargo sim` and `cargo simtest` aliases do).

#[cfg(all(feature = "sim", not(madsim)))]
compile_error!(
    "keel-sim's `sim` feature needs `--cfg madsim`: run `cargo sim …` or `cargo simtest` from the repo root, or `cd sim && cargo test --features sim`"
);

#[cfg(madsim)]
pub mod baseline;
pub mod check;
pub mod corpus;
#[cfg(madsim)]
pub mod effects;
#[cfg(madsim)]
mod fault_windows;
pub use keel_checks::linearize;
pub mod plan;

#[cfg(madsim)]
pub mod clock;
#[cfg(madsim)]
pub mod harness;
#[cfg(madsim)]
pub mod history;
#[cfg(madsim)]
pub mod html;
#[cfg(madsim)]
pub mod keel_rules;
#[cfg(madsim)]
pub mod net;
#[cfg(madsim)]
pub mod regress;
#[cfg(madsim)]
pub mod runner;
#[cfg(madsim)]
pub mod scenario;
#[cfg(madsim)]
pub mod shrink;
/// The store conformance suite on the simulator's own store (`cargo simtest --lib`).
#[cfg(all(test, madsim))]
mod store_conformance;
#[cfg(madsim)]
pub mod sweep;
#[cfg(madsim)]
pub mod timeline;
pub mod watchdog;
#[cfg(madsim)]
pub mod world;
pub mod zoo;
