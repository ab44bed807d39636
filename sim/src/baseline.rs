//! Bare madsim programs of the scenarios' shapes: the yardstick for what checking costs.
//!
//! `cargo sim bench --baseline` runs each scenario and its bare counterpart in one process,
//! interleaved, and reports seeds per CPU-second of each. A bare program has the scenario's
//! nodes, simulated network latency, RPC pattern and simulated length, and nothing else: no
//! keel, no history, no checks, no faults.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use madsim::net::Endpoint;
use madsim::runtime::{Handle, Runtime};

/// The store's address in the bare world (as in the real one).
const STORE: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 6379);

/// What a bare lease program does: `nodes` contenders for one lease of `ttl`, renewing every
/// ttl/3 while held and polling at the same period otherwise, each holder writing to a local
/// resource every 100 ms, for `length` of simulated time.
#[derive(Clone, Copy, Debug)]
pub struct BareLease {
    /// Contenders.
    pub nodes: usize,
    /// Lease TTL.
    pub ttl: Duration,
    /// Simulated length of one run.
    pub length: Duration,
}

#[derive(Debug)]
struct Req {
    node: usize,
}

#[derive(Debug)]
struct Reply {
    held: bool,
}

/// The madsim config every run uses (same network latency as the checker's world).
pub fn madsim_config() -> madsim::Config {
    let mut config = madsim::Config::default();
    let (lo, hi) = crate::world::SEND_LATENCY_MS;
    config.net.send_latency = Duration::from_millis(lo)..Duration::from_millis(hi);
    config
}

impl BareLease {
    /// Run one seed; returns how many requests the store answered (a sanity figure, and it
    /// keeps the work from being optimised away).
    pub fn run(&self, seed: u64) -> u64 {
        let rt = Runtime::with_seed_and_config(seed, madsim_config());
        let this = *self;
        rt.block_on(async move {
            let handle = Handle::current();
            let answered = Arc::new(AtomicU64::new(0));
            let ttl = this.ttl;
            let mut ids = vec![handle.create_node().name("store").ip(STORE.ip()).init(move || serve(ttl)).build().id()];
            for i in 0..this.nodes {
                let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 1, u8::try_from(i + 1).unwrap_or(255)));
                let answered = answered.clone();
                let node = handle
                    .create_node()
                    .name(format!("n{i}"))
                    .ip(ip)
                    .init(move || contend(i, ip, ttl, answered.clone()))
                    .build();
                ids.push(node.id());
            }
            tokio::time::sleep(this.length).await;
            crate::world::reap(ids); // as the scenario's runs end (`World::reap`)
            answered.load(Ordering::Relaxed)
        })
    }
}

async fn serve(ttl: Duration) {
    let Ok(ep) = Endpoint::bind(STORE).await else { return };
    let lease = std::sync::Arc::new(std::sync::Mutex::new(None::<(usize, tokio::time::Instant)>));
    while let Ok((tx, mut rx, _)) = ep.accept1().await {
        let lease = lease.clone();
        tokio::spawn(async move {
            while let Ok(msg) = rx.recv().await {
                let Ok(req) = msg.downcast::<Req>() else { continue };
                let now = tokio::time::Instant::now();
                let held = {
                    let mut l = lease.lock().unwrap_or_else(|p| p.into_inner());
                    match *l {
                        Some((holder, until)) if holder != req.node && until > now => false,
                        _ => {
                            *l = Some((req.node, now + ttl));
                            true
                        }
                    }
                };
                if tx.send(Box::new(Reply { held })).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// One contender, until the run ends: counts the store's answers into `answered`.
async fn contend(node: usize, ip: IpAddr, ttl: Duration, answered: Arc<AtomicU64>) {
    let Ok(ep) = Endpoint::bind(SocketAddr::new(ip, 10_000)).await else { return };
    let Ok((tx, mut rx)) = ep.connect1(STORE).await else { return };
    let period = ttl / 3;
    let mut writes = 0u64;
    loop {
        if tx.send(Box::new(Req { node })).await.is_err() {
            return;
        }
        let Ok(msg) = rx.recv().await else { return };
        let held = msg.downcast::<Reply>().map(|r| r.held).unwrap_or(false);
        answered.fetch_add(1, Ordering::Relaxed);
        if held {
            // The guarded work: a resource write every 100 ms (three per renewal period).
            for _ in 0..3 {
                writes = std::hint::black_box(writes + 1);
                tokio::time::sleep(period / 3).await;
            }
        } else {
            tokio::time::sleep(period).await;
        }
    }
}

/// What a bare replicated-map program does, in the rmap scenario's shape: `nodes` nodes, each
/// with a local copy of one map fed by the store's change stream, a writer every 10–40 ms, two
/// lanes of write-then-wait-for-my-revision every 0.3–2.5 s, a reader every 250 ms and two
/// subscribers of the local changes (64-slot buffers, overflow dropped), writing for `write_for`
/// of a run of `length` simulated time. No keel: a map, a revision and the messages.
#[derive(Clone, Copy, Debug)]
pub struct BareRmap {
    /// Nodes, each with its own copy.
    pub nodes: usize,
    /// Hot keys the writers share.
    pub hot_keys: u32,
    /// How long the writers write.
    pub write_for: Duration,
    /// Simulated length of one run.
    pub length: Duration,
}

/// A bare map request: subscribe this connection to the changes, or write.
#[derive(Debug)]
enum MapReq {
    Subscribe,
    Set { key: String, value: String },
}

/// A change the bare store pushes to every subscribed connection; also a write's reply.
#[derive(Clone, Debug)]
struct MapChange {
    rev: u64,
    key: String,
    value: String,
}

/// One bare node's copy of the map: entries, the revision applied, and who waits for one.
struct BareReplica {
    entries: std::sync::Mutex<(std::collections::BTreeMap<String, String>, u64)>,
    applied: tokio::sync::watch::Sender<u64>,
    subs: Vec<tokio::sync::mpsc::Sender<MapChange>>,
}

impl BareRmap {
    /// Run one seed; returns how many changes the nodes applied in all and how many writes the
    /// store answered.
    pub fn run(&self, seed: u64) -> (u64, u64) {
        let rt = Runtime::with_seed_and_config(seed, madsim_config());
        let this = *self;
        rt.block_on(async move {
            let handle = Handle::current();
            let applied = Arc::new(AtomicU64::new(0));
            let answered = Arc::new(AtomicU64::new(0));
            let mut ids = vec![handle.create_node().name("store").ip(STORE.ip()).init(serve_map).build().id()];
            for i in 0..this.nodes {
                let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 1, u8::try_from(i + 1).unwrap_or(255)));
                let counts = (applied.clone(), answered.clone());
                let node = handle
                    .create_node()
                    .name(format!("n{i}"))
                    .ip(ip)
                    .init(move || replicate(this, ip, counts.clone()))
                    .build();
                ids.push(node.id());
            }
            tokio::time::sleep(this.length).await;
            crate::world::reap(ids); // as the scenario's runs end (`World::reap`)
            (applied.load(Ordering::Relaxed), answered.load(Ordering::Relaxed))
        })
    }
}

async fn serve_map() {
    let Ok(ep) = Endpoint::bind(STORE).await else { return };
    type Feeds = Vec<madsim::net::Sender>;
    let state = Arc::new(std::sync::Mutex::new((std::collections::BTreeMap::<String, String>::new(), 0u64)));
    let feeds: Arc<tokio::sync::Mutex<Feeds>> = Arc::default();
    while let Ok((tx, mut rx, _)) = ep.accept1().await {
        let (state, feeds) = (state.clone(), feeds.clone());
        tokio::spawn(async move {
            while let Ok(msg) = rx.recv().await {
                let Ok(req) = msg.downcast::<MapReq>() else { continue };
                match *req {
                    MapReq::Subscribe => {
                        feeds.lock().await.push(tx);
                        return;
                    }
                    MapReq::Set { key, value } => {
                        let change = {
                            let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
                            s.1 += 1;
                            s.0.insert(key.clone(), value.clone());
                            MapChange { rev: s.1, key, value }
                        };
                        for feed in feeds.lock().await.iter() {
                            let _ = feed.send(Box::new(change.clone())).await;
                        }
                        if tx.send(Box::new(change)).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }
}

/// One bare node: its copy fed by the change stream, and the workload on it.
async fn replicate(shape: BareRmap, ip: IpAddr, (applied, answered): (Arc<AtomicU64>, Arc<AtomicU64>)) {
    let Ok(ep) = Endpoint::bind(SocketAddr::new(ip, 10_000)).await else { return };
    let Ok((feed_tx, mut feed_rx)) = ep.connect1(STORE).await else { return };
    if feed_tx.send(Box::new(MapReq::Subscribe)).await.is_err() {
        return;
    }
    let mut subs = Vec::new();
    for _ in 0..2 {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<MapChange>(64);
        subs.push(tx);
        tokio::spawn(async move {
            let mut last = 0;
            while let Some(c) = rx.recv().await {
                last = std::hint::black_box(c.rev.max(last));
            }
        });
    }
    let replica = Arc::new(BareReplica {
        entries: std::sync::Mutex::new((std::collections::BTreeMap::new(), 0)),
        applied: tokio::sync::watch::channel(0).0,
        subs,
    });
    let start = tokio::time::Instant::now();
    let r = replica.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let e = r.entries.lock().unwrap_or_else(|p| p.into_inner());
            std::hint::black_box((e.0.len(), e.1));
        }
    });
    for lane in 0..3u32 {
        let (r, answered) = (replica.clone(), answered.clone());
        let Ok((tx, mut rx)) = ep.connect1(STORE).await else { return };
        tokio::spawn(async move {
            let mut n = 0u64;
            while start.elapsed() < shape.write_for {
                let pause = if lane == 0 { rand_ms(10, 40) } else { rand_ms(300, 2_500) };
                tokio::time::sleep(pause).await;
                n += 1;
                let key_no = madsim::rand::Rng::gen_range(&mut madsim::rand::thread_rng(), 0..shape.hot_keys);
                let key = if lane == 0 { format!("k{key_no}") } else { format!("w-{ip}-{lane}-{n}") };
                if tx.send(Box::new(MapReq::Set { key, value: format!("{ip}-{n}") })).await.is_err() {
                    return;
                }
                let Ok(msg) = rx.recv().await else { return };
                answered.fetch_add(1, Ordering::Relaxed);
                let Ok(written) = msg.downcast::<MapChange>() else { continue };
                if lane != 0 {
                    // set_and_wait: until the copy applied the write's revision.
                    let mut seen = r.applied.subscribe();
                    let _ = seen.wait_for(|rev| *rev >= written.rev).await;
                }
            }
        });
    }
    while let Ok(msg) = feed_rx.recv().await {
        let Ok(c) = msg.downcast::<MapChange>() else { continue };
        {
            let mut e = replica.entries.lock().unwrap_or_else(|p| p.into_inner());
            if c.rev <= e.1 {
                continue;
            }
            e.1 = c.rev;
            e.0.insert(c.key.clone(), c.value.clone());
        }
        applied.fetch_add(1, Ordering::Relaxed);
        replica.applied.send_replace(c.rev);
        for s in &replica.subs {
            let _ = s.try_send((*c).clone());
        }
    }
}

fn rand_ms(lo: u64, hi: u64) -> Duration {
    use madsim::rand::Rng;
    Duration::from_millis(madsim::rand::thread_rng().gen_range(lo..hi))
}

/// CPU time this thread has used (Linux `/proc/thread-self/schedstat`; `None` elsewhere).
/// Read only between runs, never inside a simulation.
pub fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// One side of a comparison: seeds run, CPU spent, simulated time covered.
#[derive(Clone, Copy, Debug, Default)]
pub struct Side {
    /// Seeds run.
    pub seeds: u64,
    /// CPU time of this thread spent on them.
    pub cpu: Duration,
    /// Simulated time covered.
    pub sim: Duration,
    /// Store round trips asked for (keel's store calls; the bare program's answered requests).
    pub calls: u64,
}

impl Side {
    /// Seeds per CPU-second.
    pub fn seeds_per_cpu_s(&self) -> f64 {
        self.seeds as f64 / self.cpu.as_secs_f64().max(1e-9)
    }

    /// Simulated seconds per CPU-second.
    pub fn sim_per_cpu_s(&self) -> f64 {
        self.sim.as_secs_f64() / self.cpu.as_secs_f64().max(1e-9)
    }

    /// Store round trips per simulated second: the same shape has about the same traffic.
    pub fn calls_per_sim_s(&self) -> f64 {
        self.calls as f64 / self.sim.as_secs_f64().max(1e-9)
    }
}

/// One seed of `scenario` exactly as the runner simulates it (same plan, world, nemesis and
/// settle), but with no observer, a history that keeps nothing and no checks: what keel itself
/// costs under madsim.
pub fn run_unchecked(scenario: &dyn crate::scenario::Scenario, seed: u64) -> Duration {
    use crate::plan::{FaultPlan, Profile};
    let plan = FaultPlan::generate(seed, Profile::Swarm, &scenario.plan_spec());
    let rt = Runtime::with_seed_and_config(seed, madsim_config());
    let (main, settle) = (scenario.node_main(), scenario.settle(&plan));
    let (nodes, op_timeout) = (scenario.plan_spec().nodes, scenario.op_timeout());
    // Quiet like a checked run: the lease scenario's guarded work panics on purpose (S20), and
    // printing a backtrace per panic cost more than the whole checker.
    crate::runner::begin_panic_capture();
    let sim = rt.block_on(async move {
        let start = tokio::time::Instant::now();
        let history = crate::history::History::discarding();
        history.start();
        let world = crate::world::World::build(history, nodes, op_timeout, plan.knobs(), main);
        world.nemesis(&plan).await;
        tokio::time::sleep(settle).await;
        world.reap();
        start.elapsed()
    });
    crate::runner::end_panic_capture();
    sim
}

/// One comparison: a scenario (its default shape, swarm faults, every check), the same runs
/// without the checker ([`run_unchecked`]), the same seeds with no faults (every check: the
/// fault-free share the bare program has), and the bare program of the same shape.
#[derive(Clone, Copy, Debug, Default)]
pub struct Comparison {
    /// Swarm faults, every check (what `cargo sim check` runs).
    pub checked: Side,
    /// The same runs without the checker.
    pub unchecked: Side,
    /// The same seeds without faults (calm plans), every check.
    pub calm: Side,
    /// The bare program, for the checked runs' mean simulated length.
    pub bare: Side,
}

impl Comparison {
    /// Seeds per CPU-second of the checked scenario over the bare program's (the target ratio).
    pub fn ratio(&self) -> f64 {
        self.checked.seeds_per_cpu_s() / self.bare.seeds_per_cpu_s()
    }
}

/// Run `run` on each of `seeds` and add its CPU time, store calls and simulated time (what `run`
/// returns) to `side`. `None` where thread CPU time cannot be read.
fn measure(side: &mut Side, seeds: std::ops::Range<u64>, mut run: impl FnMut(u64) -> Duration) -> Option<()> {
    let (t, calls) = (thread_cpu()?, crate::net::calls_made());
    for seed in seeds.clone() {
        side.sim += run(seed);
    }
    side.cpu += thread_cpu()? - t;
    side.calls += crate::net::calls_made() - calls;
    side.seeds += seeds.end - seeds.start;
    Some(())
}

/// [`Comparison`] of `scn` against `bare_run` (run for the given simulated length, the checked
/// runs' mean; it returns the store calls it made), interleaved in `rounds` rounds of
/// `per_round` seeds on this thread.
fn compare(
    scn: &dyn crate::scenario::Scenario,
    bare_run: impl Fn(u64, Duration) -> u64,
    rounds: u64,
    per_round: u64,
) -> Option<Comparison> {
    use crate::plan::Profile;
    let mut c = Comparison::default();
    for r in 0..rounds {
        let seeds = r * per_round..(r + 1) * per_round;
        let before = c.checked.sim;
        measure(&mut c.checked, seeds.clone(), |seed| {
            crate::runner::run(scn, seed, None, Profile::Swarm, None).sim_time
        })?;
        measure(&mut c.unchecked, seeds.clone(), |seed| run_unchecked(scn, seed))?;
        measure(&mut c.calm, seeds.clone(), |seed| crate::runner::run(scn, seed, None, Profile::Calm, None).sim_time)?;
        // Same simulated length per seed as the checked runs just had, on average.
        let length = (c.checked.sim - before) / u32::try_from(per_round.max(1)).unwrap_or(u32::MAX);
        let mut calls = 0;
        measure(&mut c.bare, seeds, |seed| {
            calls += std::hint::black_box(bare_run(seed, length));
            length
        })?;
        c.bare.calls += calls;
    }
    Some(c)
}

/// The lease scenario against [`BareLease`] of the same node count and TTL (see [`compare`]).
pub fn compare_lease(rounds: u64, per_round: u64) -> Option<Comparison> {
    let shape = crate::scenario::lease::LeaseScenario::default();
    let ttl = Duration::from_millis(shape.ttl_ms);
    let bare = |seed, length| BareLease { nodes: shape.nodes, ttl, length }.run(seed);
    compare(&shape.clone().sim(), bare, rounds, per_round)
}

/// The rmap scenario against [`BareRmap`] of the same node count, hot keys and write window
/// (see [`compare`]).
pub fn compare_rmap(rounds: u64, per_round: u64) -> Option<Comparison> {
    let shape = crate::scenario::rmap::RmapScenario::default();
    let write_for = Duration::from_millis(shape.window_ms);
    let bare = |seed, length| {
        let (applied, answered) =
            BareRmap { nodes: shape.nodes, hot_keys: shape.hot_keys, write_for, length }.run(seed);
        std::hint::black_box(applied);
        answered
    };
    compare(&shape.clone().sim(), bare, rounds, per_round)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bare_lease_program_renews_and_is_deterministic() {
        let p = BareLease { nodes: 4, ttl: Duration::from_secs(1), length: Duration::from_secs(10) };
        let a = p.run(7);
        // The holder renews ~3 times a second, three pollers poll ~3 times a second each.
        assert!((100..=140).contains(&a), "answered {a}");
        assert_eq!(a, p.run(7), "same seed, same run");
    }

    #[test]
    fn the_bare_map_program_replicates_and_is_deterministic() {
        let p = BareRmap { nodes: 4, hot_keys: 24, write_for: Duration::from_secs(5), length: Duration::from_secs(6) };
        let (a, w) = p.run(7);
        // ~40 writes a second from each of 4 writers (plus a few waits), each applied by 4 copies.
        assert!((2_000..=4_000).contains(&a), "applied {a}");
        assert!((500..=1_000).contains(&w) && a >= 4 * w - 40, "{w} writes answered, {a} applied");
        assert_eq!((a, w), p.run(7), "same seed, same run");
    }
}
