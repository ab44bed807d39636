//! The nemesis' fault plan: `cycles` faults drawn from a seed (ChaCha8), each followed by a heal
//! and a settle. Same seed, same plan; the plan is printed so a run can be repeated. Which
//! process a "holder" fault hits is resolved at run time (the last writer the register accepted)
//! and recorded in the history.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Who an app-process fault hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// The lease process that last wrote to the register (the believed holder).
    Holder,
    /// Lease process `i`.
    Lease(u8),
    /// Pool worker process `i`.
    Worker(u8),
    /// Replicated-map process `i`.
    Rmap(u8),
}

/// One fault of the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// `kill -9` Redis, down for `down_ms`, restart with its AOF.
    RedisKillKeep { down_ms: u64 },
    /// `kill -9` Redis, down for `down_ms`, restart with its data deleted.
    RedisKillLose { down_ms: u64 },
    /// `CLIENT PAUSE ms` (longer than the TTLs).
    ClientPause { ms: u64 },
    /// SIGSTOP the target for `ms`, then SIGCONT.
    Freeze { target: Target, ms: u64 },
    /// `kill -9` the target, restart it after `down_ms`.
    KillApp { target: Target, down_ms: u64 },
    /// Blackhole the target's proxy to Redis for `ms`, then cut its connections.
    Partition { target: Target, ms: u64 },
}

impl Fault {
    /// Its kind, for the figures.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::RedisKillKeep { .. } => "redis_kill_keep_data",
            Fault::RedisKillLose { .. } => "redis_kill_lose_data",
            Fault::ClientPause { .. } => "client_pause",
            Fault::Freeze { .. } => "sigstop_app",
            Fault::KillApp { .. } => "kill9_app",
            Fault::Partition { .. } => "partition_app",
        }
    }

    /// Every kind, in the figures' order.
    pub const KINDS: [&'static str; 6] =
        ["redis_kill_keep_data", "redis_kill_lose_data", "client_pause", "sigstop_app", "kill9_app", "partition_app"];
}

/// The lease and worker processes the plan may hit.
pub const LEASE_PROCS: u8 = 3;
/// Pool worker processes.
pub const WORKER_PROCS: u8 = 3;
/// Replicated-map processes.
pub const RMAP_PROCS: u8 = 3;

/// The plan of `cycles` faults for `seed`: kinds are dealt round-robin from a seeded shuffle so
/// that every kind occurs in any 6 consecutive cycles; targets and lengths are drawn.
pub fn plan(seed: u64, cycles: u32, ttl_ms: u64) -> Vec<Fault> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::new();
    let mut deck: Vec<u8> = Vec::new();
    for _ in 0..cycles {
        if deck.is_empty() {
            deck = (0..6).collect();
            for i in (1..deck.len()).rev() {
                deck.swap(i, rng.gen_range(0..=i));
            }
        }
        let kind = deck.pop().unwrap_or(0);
        // Past the TTL, by 30–150 %.
        let past = ttl_ms + rng.gen_range(ttl_ms * 3 / 10..=ttl_ms * 3 / 2);
        let target = match rng.gen_range(0..5u8) {
            0 | 1 => Target::Holder,
            2 => Target::Lease(rng.gen_range(0..LEASE_PROCS)),
            3 => Target::Worker(rng.gen_range(0..WORKER_PROCS)),
            _ => Target::Rmap(rng.gen_range(0..RMAP_PROCS)),
        };
        out.push(match kind {
            0 => Fault::RedisKillKeep { down_ms: past },
            1 => Fault::RedisKillLose { down_ms: past },
            2 => Fault::ClientPause { ms: past },
            3 => Fault::Freeze { target, ms: past },
            4 => Fault::KillApp { target, down_ms: rng.gen_range(200..=ttl_ms) },
            _ => Fault::Partition { target, ms: past },
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_plan_and_every_kind_in_six_cycles() {
        let a = plan(7, 12, 1000);
        assert_eq!(a, plan(7, 12, 1000));
        assert_ne!(a, plan(8, 12, 1000));
        for w in [&a[..6], &a[6..]] {
            let mut kinds: Vec<_> = w.iter().map(Fault::kind).collect();
            kinds.sort();
            kinds.dedup();
            assert_eq!(kinds.len(), 6, "{w:?}");
        }
    }
}
