//! The chaos lane (`keel-chaos`): keel's lease, pool, rmap and completer workloads as separate OS processes over a
//! real `redis-server`, a nemesis executing a seeded plan of real faults, one merged history
//! stamped with the machine's monotonic clock, and the simulator's checkers (`keel-checks`) over it. See
//! docs/chaos.md.

pub mod check;
pub mod history;
pub mod node;
pub mod plan;
pub mod proxy;
pub mod recstore;
pub mod register;
pub mod runner;
