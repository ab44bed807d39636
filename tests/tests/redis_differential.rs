//! One semantics, judged on random histories: the same sequence of store operations on a
//! `MemoryStore` and on a `RedisStore` must give the same answers, op by op, and the same watch
//! feed. The conformance suite (`redis_conformance.rs`) checks cases a person wrote; this checks
//! the interleavings nobody wrote (a compare-and-set on a key a transaction just deleted, an
//! append after a delete in one batch, a renewal by a token that released), and shrinks a
//! divergence to its shortest sequence.
//!
//! What differs by design is normalised away: both stores seed a map's revisions and a lease's
//! fences from store time (`now_ms * SEED_PER_MS`), and the two clocks differ, so revisions and
//! fences are compared modulo `SEED_PER_MS` (a case commits far fewer than that); a held lease's
//! remaining time is compared by kind; scan cursors are each store's own, so a full scan is
//! compared by what it returned in all. Every lease TTL is a minute and nothing waits, so no
//! answer depends on how long the case took.

use std::time::Duration;

use keel::StoreError;
use keel::store::{
    Acquire, Change, Expect, MAP_SCAN_START, MapSnapshot, MapTxn, MapWrite, MemoryStore, Read, ReadOut, RedisConfig,
    RedisStore, Renew, SEED_PER_MS, Store, Watch, WatchEvent,
};
use keel_tests::RedisServer;
use proptest::prelude::*;

/// Cases per property run (each a fresh key prefix on one server; ~3 s in all).
const CASES: u32 = 512;
/// Cases of the property with restarts.
const RESTART_CASES: u32 = 64;
/// Operations per case, at most.
const OPS_MAX: usize = 40;
/// The maps a case writes; each is watched from the start.
const MAPS: [&str; 2] = ["m0", "m1"];
/// Lease TTL: far longer than any case, so no grant expires inside one.
const TTL_MS: u64 = 60_000;
/// How long a watch may take to deliver the case's closing marker.
const FEED_WAIT: Duration = Duration::from_secs(5);
/// The key of the marker written to every map at the end of a case.
const MARKER: &str = "~end";

/// One store operation of a case, with arguments drawn from small sets so they collide.
#[derive(Clone, Debug)]
enum Op {
    Acquire {
        lease: usize,
        token: usize,
    },
    Renew {
        lease: usize,
        token: usize,
    },
    Release {
        lease: usize,
        token: usize,
    },
    Get {
        map: usize,
        key: String,
    },
    Snapshot {
        map: usize,
    },
    ScanAll {
        map: usize,
        count: usize,
    },
    Write {
        map: usize,
        key: String,
        write: MapWrite,
    },
    Txn {
        map: usize,
        txn: MapTxn,
    },
    Txns {
        map: usize,
        txns: Vec<MapTxn>,
    },
    Reads {
        reads: Vec<Read>,
    },
    /// A store restart (`kill -9` after a `SAVE`, or with the data gone).
    Restart {
        keep_data: bool,
    },
}

fn key() -> impl Strategy<Value = String> {
    // Mostly four keys that collide (one of them not ASCII); now and then a key both must
    // refuse: empty, or one byte past the longest name.
    prop_oneof![
        18 => (0..4u8).prop_map(|k| if k == 3 { "clé".to_owned() } else { format!("k{k}") }),
        1 => Just(String::new()),
        1 => Just("k".repeat(keel::store::NAME_MAX_BYTES + 1)),
    ]
}

fn value() -> impl Strategy<Value = String> {
    // An empty value and one holding the list separator are values like any other, until a
    // list operation meets them.
    let odd = format!("a{}b", keel::store::LIST_SEPARATOR);
    (0..5u8).prop_map(move |v| ["a", "b", "c", "", &odd][usize::from(v)].to_owned())
}

fn items() -> impl Strategy<Value = Vec<String>> {
    // Now and then an item both must refuse (empty, or holding the separator).
    let sep = keel::store::LIST_SEPARATOR.to_string();
    prop::collection::vec(
        prop_oneof![12 => (0..3u8).prop_map(|i| ["x", "y", "a"][usize::from(i)].to_owned()), 1 => Just(String::new()), 1 => Just(sep)],
        0..3,
    )
}

fn write() -> impl Strategy<Value = MapWrite> {
    prop_oneof![
        value().prop_map(MapWrite::Set),
        value().prop_map(MapWrite::SetIfAbsent),
        (value(), value()).prop_map(|(expected, new)| MapWrite::CompareAndSet { expected, new }),
        value().prop_map(MapWrite::CompareAndDelete),
        Just(MapWrite::Delete),
        items().prop_map(MapWrite::Append),
        items().prop_map(MapWrite::Remove),
    ]
}

fn txn() -> impl Strategy<Value = MapTxn> {
    let expect = prop_oneof![Just(Expect::Absent), value().prop_map(Expect::Value)];
    let guards = prop::collection::vec((key(), expect), 0..3);
    let writes = prop::collection::vec((key(), prop::option::of(value())), 0..4);
    (guards, writes).prop_map(|(guards, writes)| MapTxn { guards, writes })
}

fn read() -> impl Strategy<Value = Read> {
    let map = (0..MAPS.len()).prop_map(|m| MAPS[m].to_owned());
    prop_oneof![
        (map.clone(), key()).prop_map(|(map, key)| Read::Get { map, key }),
        map.prop_map(|map| Read::Snapshot { map }),
    ]
}

/// An operation; a restart with weight `restarts` (of 24 for the rest), none at 0.
fn op(restarts: u32) -> BoxedStrategy<Op> {
    let map = 0..MAPS.len();
    // With restarts, one lease of two tokens: its grants meet the restarts more often.
    let (leases, tokens): (usize, usize) = if restarts == 0 { (2, 3) } else { (1, 2) };
    let lease = move || (0..leases, 0..tokens);
    let store_op = prop_oneof![
        3 => lease().prop_map(|(lease, token)| Op::Acquire { lease, token }),
        2 => lease().prop_map(|(lease, token)| Op::Renew { lease, token }),
        3 => lease().prop_map(|(lease, token)| Op::Release { lease, token }),
        2 => (map.clone(), key()).prop_map(|(map, key)| Op::Get { map, key }),
        1 => map.clone().prop_map(|map| Op::Snapshot { map }),
        1 => (map.clone(), 1..4usize).prop_map(|(map, count)| Op::ScanAll { map, count }),
        8 => (map.clone(), key(), write()).prop_map(|(map, key, write)| Op::Write { map, key, write }),
        3 => (map.clone(), txn()).prop_map(|(map, txn)| Op::Txn { map, txn }),
        1 => (map, prop::collection::vec(txn(), 1..4)).prop_map(|(map, txns)| Op::Txns { map, txns }),
        1 => prop::collection::vec(read(), 1..4).prop_map(|reads| Op::Reads { reads }),
    ];
    if restarts == 0 {
        return store_op.boxed();
    }
    prop_oneof![restarts => any::<bool>().prop_map(|keep_data| Op::Restart { keep_data }), 24 => store_op].boxed()
}

/// A store-time-seeded number (a revision, a fence) without its seed.
fn unseeded(n: u64) -> u64 {
    n % SEED_PER_MS
}

/// An error by its kind: the two stores word their messages differently.
fn kind(e: &StoreError) -> String {
    format!("{e:?}").split([' ', '{', '(']).next().unwrap_or_default().to_owned()
}

fn snapshot(s: &MapSnapshot) -> String {
    let reseeds: Vec<_> = s.reseeds.iter().map(|r| (unseeded(r.kept), unseeded(r.seed))).collect();
    format!("rev {} {:?} reseeds {reseeds:?} restarted {}", unseeded(s.rev), s.entries, s.restarted_since_commit)
}

/// A full scan from the start, `count` at a time: every entry it returned, and the map's revision
/// as its last slice read it.
async fn scan_all<S: Store>(s: &S, map: &str, count: usize) -> Result<String, StoreError> {
    let (mut cursor, mut entries) = (MAP_SCAN_START.to_owned(), std::collections::BTreeMap::new());
    for _ in 0..1000 {
        let slice = s.map_scan(map, &cursor, count).await?;
        entries.extend(slice.entries.clone());
        if slice.is_last() {
            return Ok(format!("rev {} {entries:?}", unseeded(slice.rev)));
        }
        cursor = slice.next;
    }
    Ok("a scan that never ended".to_owned())
}

/// Apply `op` to `s` and describe the answer in store-neutral terms.
async fn apply<S: Store>(s: &S, op: &Op) -> String {
    let lease = |l: usize| format!("l{l}");
    let token = |t: usize| format!("t{t}");
    let err = |e: StoreError| format!("error {}", kind(&e));
    match op {
        Op::Acquire { lease: l, token: t } => match s.lease_acquire(&lease(*l), &token(*t), TTL_MS, 0).await {
            Ok(Acquire::Granted { fence }) => format!("granted {}", unseeded(fence)),
            Ok(Acquire::Held { .. }) => "held".to_owned(),
            Ok(Acquire::Quarantined { .. }) => "quarantined".to_owned(),
            Err(e) => err(e),
        },
        Op::Renew { lease: l, token: t } => match s.lease_renew(&lease(*l), &token(*t), TTL_MS).await {
            Ok(Renew::Renewed { fence }) => format!("renewed {}", unseeded(fence)),
            Ok(Renew::NotHolder) => "not holder".to_owned(),
            Err(e) => err(e),
        },
        Op::Release { lease: l, token: t } => match s.lease_release(&lease(*l), &token(*t)).await {
            Ok(released) => format!("released {released}"),
            Err(e) => err(e),
        },
        Op::Get { map, key } => match s.map_get(MAPS[*map], key).await {
            Ok((v, rev)) => format!("{v:?} at {}", unseeded(rev)),
            Err(e) => err(e),
        },
        Op::Snapshot { map } => s.map_snapshot(MAPS[*map]).await.map_or_else(err, |snap| snapshot(&snap)),
        Op::ScanAll { map, count } => scan_all(s, MAPS[*map], *count).await.unwrap_or_else(err),
        Op::Write { map, key, write } => match s.map_write(MAPS[*map], key, write.clone()).await {
            Ok(o) => format!("applied {} rev {} value {:?}", o.applied, unseeded(o.rev), o.value),
            Err(e) => err(e),
        },
        Op::Txn { map, txn } => match s.map_txn(MAPS[*map], &txn.guards, &txn.writes).await {
            Ok(o) => format!("applied {} rev {}", o.applied, unseeded(o.rev)),
            Err(e) => err(e),
        },
        Op::Txns { map, txns } => match s.map_txns(MAPS[*map], txns).await {
            Ok(os) => format!("{:?}", os.iter().map(|o| (o.applied, unseeded(o.rev))).collect::<Vec<_>>()),
            Err(e) => err(e),
        },
        Op::Restart { .. } => "restarted".to_owned(), // done by `diverges` on both stores
        Op::Reads { reads } => match s.reads(reads).await {
            Ok(outs) => outs
                .iter()
                .map(|o| match o {
                    ReadOut::Get(v, rev) => format!("{v:?} at {}", unseeded(*rev)),
                    ReadOut::Snapshot(snap) => snapshot(snap),
                    ReadOut::Time(_) | ReadOut::Scan(_) => "unexpected read".to_owned(),
                })
                .collect::<Vec<_>>()
                .join("; "),
            Err(e) => err(e),
        },
    }
}

/// The changes `w` delivered up to the case's marker, revisions unseeded.
async fn feed<W: Watch>(w: &mut W) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout(FEED_WAIT, w.next()).await {
            Err(_) => {
                seen.push("no marker within the wait".to_owned());
                return seen;
            }
            Ok(WatchEvent::Gap) => seen.push("gap".to_owned()),
            Ok(WatchEvent::Change(Change { key, value, rev })) => {
                if key == MARKER {
                    return seen;
                }
                seen.push(format!("{key}={value:?} at {}", unseeded(rev)));
            }
        }
    }
}

/// Run `ops` on both stores; the first divergence, if any.
async fn diverges(server: &RedisServer, case: u64, ops: &[Op]) -> Result<(), String> {
    let config = RedisConfig::builder(server.url())
        .key_prefix(format!("diff{case}"))
        .op_timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| format!("config: {e}"))?;
    let redis = RedisStore::connect(config).await.map_err(|e| format!("connect: {e}"))?;
    let memory = MemoryStore::new();
    let mut watches = Vec::new();
    for map in MAPS {
        let r = redis.watch(map).await.map_err(|e| format!("redis watch: {e}"))?;
        let m = memory.watch(map).await.map_err(|e| format!("memory watch: {e}"))?;
        watches.push((map, r, m));
    }
    let mut restarted = false;
    for (i, op) in ops.iter().enumerate() {
        if let Op::Restart { keep_data } = op {
            restart(server, &memory, *keep_data);
            keel_tests::wait_ready(&redis).await;
            restarted = true;
            continue;
        }
        let (m, r) = (apply(&memory, op).await, apply(&redis, op).await);
        if m != r {
            return Err(format!("op {i} {op:?}: memory says {m}, redis says {r}"));
        }
    }
    if restarted {
        // Around a restart a feed may say `Gap` where the other delivered changes (each store
        // tells its subscribers to resync in its own way): only the answers are compared.
        return Ok(());
    }
    for (map, r, m) in &mut watches {
        for s in [&redis as &dyn Marker, &memory] {
            s.mark(map).await?;
        }
        let (fm, fr) = (feed(m).await, feed(r).await);
        if fm != fr {
            return Err(format!("watch of {map}: memory delivered {fm:?}, redis {fr:?}"));
        }
    }
    Ok(())
}

/// Restart both stores alike. The memory store's clock is the machine's: a restart waits out
/// the millisecond, as Redis's restart takes several, so both seed revisions and fences from a
/// later store time (each seeds from `now_ms` and keeps what is above it).
fn restart(server: &RedisServer, memory: &MemoryStore, keep_data: bool) {
    if keep_data {
        server.restart_keeping_data();
        memory.restart();
    } else {
        server.restart_losing_data();
        memory.reset();
    }
    std::thread::sleep(Duration::from_millis(2));
}

/// Write the closing marker (object-safe, so both stores go through one loop).
trait Marker {
    fn mark<'a>(&'a self, map: &'a str) -> std::pin::Pin<Box<dyn Future<Output = Result<(), String>> + 'a>>;
}

impl<S: Store> Marker for S {
    fn mark<'a>(&'a self, map: &'a str) -> std::pin::Pin<Box<dyn Future<Output = Result<(), String>> + 'a>> {
        Box::pin(async move {
            self.map_write(map, MARKER, MapWrite::Set("x".into())).await.map(|_| ()).map_err(|e| format!("marker: {e}"))
        })
    }
}

/// Cases begun in this process: each case's key prefix.
static CASE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The histories' seed: `KEEL_DIFF_SEED`, else 0 (the same histories every run, so a red CI run
/// is a divergence anyone reproduces; set the variable to explore others).
fn seed() -> u64 {
    std::env::var("KEEL_DIFF_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// Run the property on one server; `Err` with proptest's shrunk report when the stores diverge.
fn run_property(server: &RedisServer, seed: u64, cases: u32, restarts: u32) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        rng_seed: proptest::test_runner::RngSeed::Fixed(seed),
        ..ProptestConfig::default()
    });
    runner
        .run(&prop::collection::vec(op(restarts), 1..OPS_MAX), |ops| {
            // Each case (and each shrinking step) on a key prefix no earlier case used, on
            // whichever server: a server's data outlives a property run.
            let n = CASE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            rt.block_on(diverges(server, n, &ops)).map_err(TestCaseError::fail)
        })
        .map_err(|e| e.to_string())
}

#[test]
fn redis_and_memory_answer_every_random_history_alike() {
    let Some(server) = RedisServer::start("redis_and_memory_answer_every_random_history_alike") else { return };
    if let Err(e) = run_property(&server, seed(), CASES, 0) {
        panic!("MemoryStore and RedisStore diverge (KEEL_DIFF_SEED={}): {e}", seed());
    }
}

/// The same across restarts that keep the data or lose it: reseeded revisions and fences, the
/// snapshots' seedings and restart flags, quarantines. Fewer cases: each restart of a real
/// server takes a few hundred milliseconds.
#[test]
fn redis_and_memory_answer_alike_across_restarts() {
    let Some(server) = RedisServer::start("redis_and_memory_answer_alike_across_restarts") else { return };
    if let Err(e) = run_property(&server, seed(), RESTART_CASES, 2) {
        panic!("MemoryStore and RedisStore diverge across restarts (KEEL_DIFF_SEED={}): {e}", seed());
    }
}

/// The property's teeth: a bug in one store's semantics (the memory store's, re-injected by
/// mutants) must be found, not averaged away by the normalisation above: a delete of an absent
/// key that applies (MC253), a compare-and-set that creates (MC254), and across restarts a map
/// whose revisions are not reseeded (MC30) and a lease counter a restart kept unjudged (MC29).
#[cfg(feature = "mutants")]
#[test]
fn redis_differential_finds_a_store_that_differs_in_writes_or_restarts() {
    use keel::mutants::{Mutant, set};
    let Some(server) = RedisServer::start("redis_differential_finds_a_store_that_differs") else { return };
    for (m, cases, restarts) in [
        (Mutant::MC253, CASES, 0),
        (Mutant::MC254, CASES, 0),
        (Mutant::MC30, RESTART_CASES, 2),
        (Mutant::MC29, RESTART_CASES, 2),
    ] {
        let before = set(Some(m));
        let found = run_property(&server, 0, cases, restarts); // the same histories every run
        set(before);
        let Err(report) = found else { panic!("{m:?}: the two stores answered {cases} random histories alike") };
        assert!(report.contains("memory says"), "{m:?}: {report}");
        eprintln!("{m:?} found: {report}");
    }
}
