//! Arbitrary operation sequences on `MemoryStore`, checked step by step against a plain reference
//! model: lease grants, fences and quarantine; map values, revisions and txn guards; and the watch
//! feed (every applied change delivered once, in revision order; a gap after every reset).
//!
//! Time is a manual clock the input advances, so every run is deterministic.
#![no_main]

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use arbitrary::Arbitrary;
use keel::clock::{Clock, Instant, Sleep};
use keel::store::memory::MemoryWatch;
use keel::store::{
    Acquire, Change, Expect, LIST_SEPARATOR, MapWrite, MemoryStore, Renew, SEED_PER_MS, Store, Watch,
    WatchEvent,
};
use libfuzzer_sys::fuzz_target;

const BASE_MS: u64 = 1_000_000;
const LEASES: u8 = 2;
const MAPS: u8 = 2;
const KEYS: u8 = 4;
// Fences and revisions are seeded from store time (SEED_PER_MS per ms), so they stay increasing
// across a data loss as long as fewer than SEED_PER_MS were issued per ms on average and the restart
// takes at least a millisecond. Cap the ops (≤ 4 writes each) and let a reset take 1 ms.
const MAX_OPS: usize = 200;
const RESTART_MS: u64 = 1;

#[derive(Arbitrary, Debug)]
enum Op {
    Advance(u16),
    Acquire { lease: u8, token: u8, ttl_ms: u16, quarantine_ms: u8 },
    Renew { lease: u8, token: u8, ttl_ms: u16 },
    Release { lease: u8, token: u8 },
    Write { map: u8, key: u8, write: W },
    Txn { map: u8, guards: Vec<(u8, Option<u8>)>, writes: Vec<(u8, Option<u8>)> },
    Get { map: u8, key: u8 },
    Snapshot { map: u8 },
    Reset,
    Disconnect,
}

#[derive(Arbitrary, Debug)]
enum W {
    Set(u8),
    SetIfAbsent(u8),
    Cas(u8, u8),
    Cad(u8),
    Delete,
    Append(Vec<u8>),
    Remove(Vec<u8>),
}

/// A clock that only moves when the input says so.
struct ManualClock {
    origin: Instant,
    offset_ms: AtomicU64,
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.origin + Duration::from_millis(self.offset_ms.load(Ordering::Relaxed))
    }
    fn sleep_until(&self, _deadline: Instant) -> Sleep {
        Box::pin(std::future::pending())
    }
}

/// MemoryStore's operations never wait; poll once and insist on that.
fn ready<T>(fut: impl Future<Output = T>) -> T {
    let mut fut = std::pin::pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("a MemoryStore operation waited"),
    }
}

fn drain(watch: &mut MemoryWatch) -> Vec<WatchEvent> {
    let mut out = Vec::new();
    loop {
        let mut fut = std::pin::pin!(watch.next());
        match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(ev) => out.push(ev),
            Poll::Pending => return out,
        }
    }
}

fn value(n: u8) -> String {
    format!("v{}", n % 6)
}
fn item(n: u8) -> String {
    if n == 255 { String::new() } else { format!("i{}", n % 5) } // "" is invalid: exercises the error path
}

#[derive(Default)]
struct LeaseModel {
    meta: Option<(u64, u64)>, // (last fence, quarantine until ms)
    holder: Option<(String, u64, u64)>, // (token, fence, expires at ms)
    max_fence: u64,           // survives resets: fences must stay strictly increasing
}

#[derive(Default)]
struct MapModel {
    rev: u64,
    entries: BTreeMap<String, String>,
    max_rev: u64, // survives resets
}

struct Model {
    now_ms: u64,
    leases: Vec<LeaseModel>,
    maps: Vec<MapModel>,
    expected: Vec<VecDeque<WatchEvent>>,
}

impl Model {
    fn commit(&mut self, m: usize, writes: Vec<(String, Option<String>)>) -> u64 {
        let now = self.now_ms;
        let map = &mut self.maps[m];
        if map.rev == 0 {
            map.rev = now * SEED_PER_MS;
        }
        for (key, value) in writes {
            map.rev += 1;
            assert!(map.rev > map.max_rev, "revision {} not above {}", map.rev, map.max_rev);
            map.max_rev = map.rev;
            match &value {
                Some(v) => map.entries.insert(key.clone(), v.clone()),
                None => map.entries.remove(&key),
            };
            self.expected[m].push_back(WatchEvent::Change(Change { key, value, rev: map.rev }));
        }
        map.rev
    }

    /// The reference semantics of one write, on a list-of-items view of the value.
    fn apply(current: Option<&String>, write: &W) -> Result<Option<Option<String>>, ()> {
        let items_of = |v: &str| v.split(LIST_SEPARATOR).map(str::to_owned).collect::<Vec<_>>();
        Ok(match write {
            W::Set(v) => Some(Some(value(*v))),
            W::SetIfAbsent(v) => current.is_none().then(|| Some(value(*v))),
            W::Cas(e, v) => (current == Some(&value(*e))).then(|| Some(value(*v))),
            W::Cad(e) => (current == Some(&value(*e))).then_some(None),
            W::Delete => current.is_some().then_some(None),
            W::Append(new) | W::Remove(new) if new.iter().any(|&n| item(n).is_empty()) => return Err(()),
            W::Append(new) => {
                if new.is_empty() {
                    None
                } else {
                    let mut items = current.map(|c| items_of(c)).unwrap_or_default();
                    items.extend(new.iter().map(|&n| item(n)));
                    Some(Some(items.join(&LIST_SEPARATOR.to_string())))
                }
            }
            W::Remove(gone) => {
                let Some(cur) = current else { return Ok(None) };
                let before = items_of(cur);
                let gone: Vec<String> = gone.iter().map(|&n| item(n)).collect();
                let kept: Vec<String> = before.iter().filter(|i| !gone.contains(i)).cloned().collect();
                if kept.len() == before.len() {
                    None
                } else if kept.is_empty() {
                    Some(None)
                } else {
                    Some(Some(kept.join(&LIST_SEPARATOR.to_string())))
                }
            }
        })
    }

    fn to_write(w: &W) -> MapWrite {
        match w {
            W::Set(v) => MapWrite::Set(value(*v)),
            W::SetIfAbsent(v) => MapWrite::SetIfAbsent(value(*v)),
            W::Cas(e, v) => MapWrite::CompareAndSet { expected: value(*e), new: value(*v) },
            W::Cad(e) => MapWrite::CompareAndDelete(value(*e)),
            W::Delete => MapWrite::Delete,
            W::Append(items) => MapWrite::Append(items.iter().map(|&n| item(n)).collect()),
            W::Remove(items) => MapWrite::Remove(items.iter().map(|&n| item(n)).collect()),
        }
    }
}

fn valid_ttl(ttl_ms: u64) -> bool {
    ttl_ms > 0
}

fuzz_target!(|ops: Vec<Op>| {
    let clock = Arc::new(ManualClock { origin: Instant::now(), offset_ms: AtomicU64::new(0) });
    let store = MemoryStore::with_clock(clock.clone(), BASE_MS);
    let names = |prefix: &str, n: u8| (0..n).map(|i| format!("{prefix}-{i}")).collect::<Vec<_>>();
    let (lease_names, map_names) = (names("lease", LEASES), names("map", MAPS));
    let mut watches: Vec<MemoryWatch> =
        map_names.iter().map(|m| ready(store.watch(m)).expect("watch on a valid map name")).collect();
    let mut model = Model {
        now_ms: BASE_MS,
        leases: (0..LEASES).map(|_| LeaseModel::default()).collect(),
        maps: (0..MAPS).map(|_| MapModel::default()).collect(),
        expected: (0..MAPS).map(|_| VecDeque::new()).collect(),
    };

    for op in ops.iter().take(MAX_OPS) {
        let now = model.now_ms;
        match op {
            Op::Advance(ms) => {
                clock.offset_ms.fetch_add(u64::from(*ms), Ordering::Relaxed);
                model.now_ms += u64::from(*ms);
            }
            Op::Acquire { lease, token, ttl_ms, quarantine_ms } => {
                let (l, token) = (usize::from(lease % LEASES), format!("t{}", token % 3));
                let (ttl_ms, q_ms) = (u64::from(*ttl_ms), u64::from(*quarantine_ms));
                let got = ready(store.lease_acquire(&lease_names[l], &token, ttl_ms, q_ms));
                if !valid_ttl(ttl_ms) {
                    assert!(got.is_err(), "ttl 0 accepted: {got:?}");
                    continue;
                }
                let lm = &mut model.leases[l];
                let (fence, quarantine_until) = *lm.meta.get_or_insert((now * SEED_PER_MS, now + q_ms));
                let live = lm.holder.clone().filter(|h| h.2 > now);
                let want = if now < quarantine_until {
                    Acquire::Quarantined { remaining_ms: quarantine_until - now }
                } else if let Some((holder, f, exp)) = live {
                    if holder == token {
                        lm.holder = Some((holder, f, now + ttl_ms));
                        Acquire::Granted { fence: f }
                    } else {
                        Acquire::Held { remaining_ms: exp - now }
                    }
                } else {
                    let fence = fence + 1;
                    assert!(fence > lm.max_fence, "fence {fence} not above {}", lm.max_fence);
                    lm.max_fence = fence;
                    lm.meta = Some((fence, quarantine_until));
                    lm.holder = Some((token, fence, now + ttl_ms));
                    Acquire::Granted { fence }
                };
                assert_eq!(got.as_ref().ok(), Some(&want), "acquire {op:?} at {now}");
            }
            Op::Renew { lease, token, ttl_ms } => {
                let (l, token) = (usize::from(lease % LEASES), format!("t{}", token % 3));
                let ttl_ms = u64::from(*ttl_ms);
                let got = ready(store.lease_renew(&lease_names[l], &token, ttl_ms));
                if !valid_ttl(ttl_ms) {
                    assert!(got.is_err(), "ttl 0 accepted: {got:?}");
                    continue;
                }
                let lm = &mut model.leases[l];
                let want = match lm.holder.clone().filter(|h| h.2 > now) {
                    Some((holder, f, _)) if holder == token => {
                        lm.holder = Some((holder, f, now + ttl_ms));
                        Renew::Renewed { fence: f }
                    }
                    _ => Renew::NotHolder,
                };
                assert_eq!(got.as_ref().ok(), Some(&want), "renew {op:?} at {now}");
            }
            Op::Release { lease, token } => {
                let (l, token) = (usize::from(lease % LEASES), format!("t{}", token % 3));
                let got = ready(store.lease_release(&lease_names[l], &token));
                let lm = &mut model.leases[l];
                let mine = lm.holder.as_ref().is_some_and(|h| h.2 > now && h.0 == token);
                if mine {
                    lm.holder = None;
                }
                assert_eq!(got.ok(), Some(mine), "release {op:?} at {now}: never a foreign token");
            }
            Op::Write { map, key, write } => {
                let (m, key) = (usize::from(map % MAPS), format!("k{}", key % KEYS));
                let got = ready(store.map_write(&map_names[m], &key, Model::to_write(write)));
                let current = model.maps[m].entries.get(&key).cloned();
                match Model::apply(current.as_ref(), write) {
                    Err(()) => assert!(got.is_err(), "invalid list item accepted: {got:?}"),
                    Ok(None) => {
                        let got = got.expect("a valid write");
                        assert!(!got.applied, "{op:?} applied but should not be");
                        assert_eq!((got.rev, got.value), (model.maps[m].rev, current));
                    }
                    Ok(Some(new)) => {
                        let rev = model.commit(m, vec![(key, new.clone())]);
                        let got = got.expect("a valid write");
                        assert!(got.applied, "{op:?} not applied");
                        assert_eq!((got.rev, got.value), (rev, new));
                    }
                }
            }
            Op::Txn { map, guards, writes } => {
                let m = usize::from(map % MAPS);
                let key = |k: &u8| format!("k{}", k % KEYS);
                let guards: Vec<(String, Expect)> = guards
                    .iter()
                    .take(4)
                    .map(|(k, v)| (key(k), v.map_or(Expect::Absent, |v| Expect::Value(value(v)))))
                    .collect();
                let writes: Vec<(String, Option<String>)> =
                    writes.iter().take(4).map(|(k, v)| (key(k), v.map(value))).collect();
                let got = ready(store.map_txn(&map_names[m], &guards, &writes)).expect("a valid txn");
                let holds = guards.iter().all(|(k, e)| match e {
                    Expect::Absent => !model.maps[m].entries.contains_key(k),
                    Expect::Value(v) => model.maps[m].entries.get(k) == Some(v),
                });
                if holds && !writes.is_empty() {
                    let rev = model.commit(m, writes);
                    assert!(got.applied && got.rev == rev, "txn {got:?}, want rev {rev}");
                } else {
                    assert_eq!((got.applied, got.rev), (holds, model.maps[m].rev), "txn {op:?}");
                }
            }
            Op::Get { map, key } => {
                let (m, key) = (usize::from(map % MAPS), format!("k{}", key % KEYS));
                let got = ready(store.map_get(&map_names[m], &key)).expect("a valid get");
                assert_eq!(got, (model.maps[m].entries.get(&key).cloned(), model.maps[m].rev));
            }
            Op::Snapshot { map } => {
                let m = usize::from(map % MAPS);
                let snap = ready(store.map_snapshot(&map_names[m])).expect("a valid snapshot");
                assert_eq!((snap.rev, &snap.entries), (model.maps[m].rev, &model.maps[m].entries));
            }
            Op::Reset => {
                clock.offset_ms.fetch_add(RESTART_MS, Ordering::Relaxed);
                model.now_ms += RESTART_MS;
                store.reset();
                for l in &mut model.leases {
                    (l.meta, l.holder) = (None, None);
                }
                for (m, e) in model.maps.iter_mut().zip(&mut model.expected) {
                    (m.rev, m.entries) = (0, BTreeMap::new());
                    e.push_back(WatchEvent::Gap);
                }
            }
            Op::Disconnect => {
                store.disconnect_watchers();
                model.expected.iter_mut().for_each(|e| e.push_back(WatchEvent::Gap));
            }
        }
        for (watch, expected) in watches.iter_mut().zip(&mut model.expected) {
            let got = drain(watch);
            let want: Vec<WatchEvent> = expected.drain(..).collect();
            assert_eq!(got, want, "watch feed after {op:?}");
        }
    }
});
