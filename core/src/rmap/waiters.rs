//! The per-call waiter registry of `set_and_wait` (the piece pulse #62 got wrong).
//!
//! Each call owns a [`Waiter`]: an entry in the registry plus a one-shot [`Cell`] shared with
//! the apply loop. The rules that make it race-free:
//! - A waiter is registered *before* its write, and armed with the write's revision after the
//!   reply. Arming reads the applied revision while holding the registry lock, and the apply loop
//!   publishes the applied revision *before* it takes that lock to collect satisfied waiters, so
//!   one of the two always sees the other (no lost wakeup).
//! - The apply loop removes satisfied entries under the lock and fills their cells after
//!   releasing it. A cell is never closed: filling a cell whose waiter has gone is a harmless
//!   write into memory the `Arc` frees later (no send on a closed channel), and it never waits for
//!   the waiter (a slow or cancelled caller cannot stall the loop).
//! - Dropping a waiter (cancellation at any await point) removes its entry, so nothing leaks.
//!
//! Mutants: MP2 closes the cell on drop *before* deregistering, and the apply loop then "sends
//! on a closed channel" (a panic, as in Go); MP3 makes delivery wait until the waiter took the
//! result, which blocks the apply loop forever once a waiter stops receiving.

use std::collections::{BTreeMap, BTreeSet};
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use crate::mutants::{self, Mutant};
use crate::observe::{RmapEvent, emit};
use crate::store::{MapSnapshot, Reseed};
use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::{Arc, Mutex, MutexGuard};

/// How a wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WaitResult {
    /// The replica applied (or loaded) this revision, ≥ the target.
    Reached(u64),
    /// A snapshot requested after the write was acknowledged holds an older revision: the store
    /// lost the write with its data. The replica now mirrors the store (at `rev`).
    Lost(u64),
    /// The map was closed before the replica caught up.
    Closed,
}

#[derive(Default)]
struct CellState {
    result: Option<WaitResult>,
    waker: Option<Waker>,
    taken: bool,
    closed: bool,
    sender: Option<Waker>,
}

/// A one-shot slot shared by one waiter and the apply loop.
pub(crate) struct Cell {
    st: Mutex<CellState>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Cell {
    /// Fill the cell and wake its waiter. Never blocks.
    fn fill(&self, r: WaitResult) {
        let waker = {
            let mut st = lock(&self.st);
            if st.closed {
                // Only reachable under MP2: the historical bug panicked here (send on closed chan).
                panic!("rmap: send on a closed waiter channel (MP2)");
            }
            if st.result.is_none() && !st.taken {
                st.result = Some(r);
            }
            st.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn poll_take(&self, cx: &mut Context<'_>) -> Poll<WaitResult> {
        let (r, sender) = {
            let mut st = lock(&self.st);
            match st.result.take() {
                Some(r) => {
                    st.taken = true;
                    (r, st.sender.take())
                }
                None => {
                    st.waker = Some(cx.waker().clone());
                    return Poll::Pending;
                }
            }
        };
        if let Some(s) = sender {
            s.wake();
        }
        Poll::Ready(r)
    }

    /// MP3 only: completes once the waiter took the result.
    fn poll_taken(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut st = lock(&self.st);
        if st.taken {
            return Poll::Ready(());
        }
        st.sender = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// Whether a waiter armed when `acked_at_seq` snapshot requests had begun was armed before
/// snapshot request `seq` began: only such a snapshot can show that the store lost its write (an
/// earlier one may predate the write).
fn acked_before(acked_at_seq: u64, seq: u64) -> bool {
    if mutants::active(Mutant::MC422) {
        return acked_at_seq <= seq; // MC422: a snapshot requested before the ack judges the write
    }
    acked_at_seq < seq
}

struct Target {
    rev: u64,
    /// Snapshot requests started before the write was acknowledged.
    acked_at_seq: u64,
}

struct Entry {
    cell: Arc<Cell>,
    target: Option<Target>,
}

#[derive(Default)]
struct Waiters {
    next_id: u64,
    entries: BTreeMap<u64, Entry>,
    /// Armed entries by (target revision, id), to collect satisfied ones in order.
    armed: BTreeSet<(u64, u64)>,
    snap_seq: u64,
    closed: bool,
    /// The seedings of the last snapshot loaded: a waiter armed after that load, for a write the
    /// replica is past, judges its revision against them as the load judged the waiters then.
    reseeds: Vec<Reseed>,
}

/// Cells to fill, collected under the lock and filled after it is released.
#[must_use = "deliveries must be handed to Registry::deliver"]
pub(crate) struct Deliveries(Vec<(Arc<Cell>, WaitResult)>);

impl Deliveries {
    /// How many waiters complete.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

/// Why a waiter could not be registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RegisterError {
    Closed,
    Full,
}

/// The registry: waiters plus the replica's applied revision.
pub(crate) struct Registry {
    /// The map's name, for events.
    map: String,
    inner: Mutex<Waiters>,
    applied: AtomicU64,
    max_waiters: usize,
    mp2: bool,
    mp3: bool,
    /// MC467: a load publishes its revision before it takes the lock (see [`Registry::loaded`]).
    mc467: bool,
}

impl Registry {
    /// A registry with at most `max_waiters` live waiters; mutant switches read from
    /// [`crate::mutants`].
    pub(crate) fn new(map: &str, max_waiters: usize) -> Self {
        let r = Self::with_mutants(
            max_waiters,
            mutants::active(Mutant::MP2),
            mutants::active(Mutant::MP3),
            mutants::active(Mutant::MC467),
        );
        Registry { map: map.to_owned(), ..r }
    }

    pub(crate) fn with_mutants(max_waiters: usize, mp2: bool, mp3: bool, mc467: bool) -> Self {
        Registry {
            map: String::new(),
            inner: Mutex::new(Waiters::default()),
            applied: AtomicU64::new(0),
            max_waiters,
            mp2,
            mp3,
            mc467,
        }
    }

    /// A parked waiter of the write at `rev` was collected.
    fn woken(&self, rev: u64, lost: bool) {
        emit(RmapEvent::WaiterWoken { map: (&self.map).into(), rev, lost });
    }

    fn lock(&self) -> MutexGuard<'_, Waiters> {
        lock(&self.inner)
    }

    /// Live waiters (registered and not yet completed or dropped).
    pub(crate) fn len(&self) -> usize {
        let w = self.lock();
        // MC332: only the armed waiters counted, not the calls whose write is still in flight.
        if mutants::active(Mutant::MC332) { w.armed.len() } else { w.entries.len() }
    }

    /// Register a waiter (before writing).
    pub(crate) fn register(this: &Arc<Self>) -> Result<Waiter, RegisterError> {
        let mut w = this.lock();
        if w.closed {
            return Err(RegisterError::Closed);
        }
        if w.entries.len() >= this.max_waiters {
            return Err(RegisterError::Full);
        }
        w.next_id += 1;
        let id = w.next_id;
        let cell = Arc::new(Cell { st: Mutex::new(CellState::default()) });
        w.entries.insert(id, Entry { cell: cell.clone(), target: None });
        emit(RmapEvent::WaiterRegistered { map: (&this.map).into() });
        Ok(Waiter { reg: this.clone(), id, cell, done: false, armed: false, rev: 0 })
    }

    /// The revision the replica last published to its waiters.
    pub(crate) fn applied(&self) -> u64 {
        self.applied.load(Ordering::SeqCst)
    }

    /// The replica applied `rev` (in revision order): collect waiters with a target ≤ `rev`.
    pub(crate) fn applied_to(&self, rev: u64) -> Deliveries {
        // Published before taking the lock: an arm() that takes the lock after us sees it.
        self.applied.store(rev, Ordering::SeqCst);
        let mut w = self.lock();
        let mut out = Vec::new();
        while let Some(&(target, id)) = w.armed.first() {
            // MC3: woken one revision early.
            let early = u64::from(crate::mutants::active(crate::mutants::Mutant::MC3));
            if target > rev + early {
                break;
            }
            w.armed.pop_first();
            if let Some(e) = w.entries.remove(&id) {
                self.woken(target, false);
                out.push((e.cell, WaitResult::Reached(rev)));
            }
        }
        Deliveries(out)
    }

    /// A snapshot request is about to be sent; returns its sequence number for [`Self::loaded`].
    pub(crate) fn begin_snapshot(&self) -> u64 {
        let mut w = self.lock();
        w.snap_seq += 1;
        w.snap_seq
    }

    /// The replica loaded `snap`, requested as number `seq`. Waiters at or below its revision
    /// are done; waiters acknowledged before the request and above it lost their write, and so
    /// did any whose revision a store restart cut from the snapshot's history (a revision
    /// seeded from store time after a restart is above every revision it lost, so "at or
    /// below" alone would call a lost write applied).
    pub(crate) fn loaded(&self, snap: &MapSnapshot, seq: u64) -> Deliveries {
        let rev = snap.rev;
        if self.mc467 {
            self.applied.store(rev, Ordering::SeqCst); // MC467: published before the seedings
        }
        // Published under the lock, with the snapshot's seedings: an arm between the two would
        // read the new revision with the old seedings and call a write the restart lost applied
        // (review49; loom: `loom_rmap_arm_during_a_reseeding_load_sees_the_loss`).
        let mut w = self.lock();
        // MC49: the load does not publish its revision, so a waiter armed after it, for a write
        // the snapshot holds, parks until the next change is applied: on a quiet map, forever.
        if mutants::active(Mutant::MC104) {
            self.applied.fetch_max(rev, Ordering::SeqCst); // MC104: never back, past a roll-back
        } else if !mutants::active(Mutant::MC49) && !self.mc467 {
            self.applied.store(rev, Ordering::SeqCst);
        }
        w.reseeds.clone_from(&snap.reseeds);
        let mut out = Vec::new();
        let cut = |target: u64| {
            // MC43: keel before 2026-12-02: only "above the snapshot" counted as lost.
            !mutants::active(Mutant::MC43) && snap.lost_in_restart(target)
        };
        let done: Vec<(u64, u64)> = w
            .armed
            .iter()
            .copied()
            .filter(|&(target, id)| {
                target <= rev
                    || cut(target)
                    || w.entries
                        .get(&id)
                        .and_then(|e| e.target.as_ref())
                        .is_some_and(|t| acked_before(t.acked_at_seq, seq))
            })
            .collect();
        for key in done {
            w.armed.remove(&key);
            if let Some(e) = w.entries.remove(&key.1) {
                // MC80: a write at exactly the snapshot's revision called lost (`<` for `<=`).
                let within = if mutants::active(Mutant::MC80) { key.0 < rev } else { key.0 <= rev };
                // MC148: the loss named by the write's revision, not the snapshot's.
                let lost_at = if mutants::active(Mutant::MC148) { key.0 } else { rev };
                let r = if within && !cut(key.0) { WaitResult::Reached(rev) } else { WaitResult::Lost(lost_at) };
                self.woken(key.0, matches!(r, WaitResult::Lost(_)));
                out.push((e.cell, r));
            }
        }
        Deliveries(out)
    }

    /// Close the registry: every waiter completes with [`WaitResult::Closed`]; new ones are refused.
    pub(crate) fn close(&self) -> Deliveries {
        let mut w = self.lock();
        w.closed = true;
        w.armed.clear();
        // MC205: the registry closed, its registered waiters left waiting.
        if crate::mutants::active(crate::mutants::Mutant::MC205) {
            return Deliveries(Vec::new());
        }
        // MC365: only the armed waiters completed; a call still writing stays registered and,
        // once armed, parks on a registry nothing will wake.
        if mutants::active(Mutant::MC365) {
            let ids: Vec<u64> = w.entries.iter().filter(|(_, e)| e.target.is_some()).map(|(id, _)| *id).collect();
            let out = ids.into_iter().filter_map(|id| w.entries.remove(&id)).map(|e| (e.cell, WaitResult::Closed));
            return Deliveries(out.collect());
        }
        let entries = std::mem::take(&mut w.entries);
        Deliveries(entries.into_values().map(|e| (e.cell, WaitResult::Closed)).collect())
    }

    /// Fill the collected cells. Call with no lock held. Completes at once unless MP3 is active.
    pub(crate) async fn deliver(&self, d: Deliveries) {
        for (cell, r) in d.0 {
            cell.fill(r);
            if self.mp3 {
                // MP3: a blocking send, waiting for the waiter to receive.
                poll_fn(|cx| cell.poll_taken(cx)).await;
            }
        }
    }
}

/// One `set_and_wait` call's registration. Dropping it deregisters.
pub(crate) struct Waiter {
    reg: Arc<Registry>,
    id: u64,
    cell: Arc<Cell>,
    done: bool,
    armed: bool,
    /// The write's revision, once armed.
    rev: u64,
}

impl Waiter {
    /// The write was acknowledged at `rev`: wait for the replica to reach it.
    pub(crate) fn arm(&mut self, rev: u64) {
        let mut w = self.reg.lock();
        let Some(seq) = w.entries.contains_key(&self.id).then_some(w.snap_seq) else {
            return; // closed meanwhile: the cell already holds Closed
        };
        self.armed = true;
        self.rev = rev;
        let applied = self.reg.applied.load(Ordering::SeqCst);
        let early = u64::from(crate::mutants::active(crate::mutants::Mutant::MC3)); // MC3: one early
        let parked = applied + early < rev;
        emit(RmapEvent::WaiterArmed { map: (&self.reg.map).into(), rev, parked });
        if !parked {
            // A write the replica is past, unless a store restart lost it and the revisions
            // were seeded above it: the caller was slow to arm (descheduled across a resync).
            // MC77: keel before 2026-12-03 called every such write applied.
            let lost = !mutants::active(Mutant::MC77) && Reseed::lost(&w.reseeds, rev);
            w.entries.remove(&self.id);
            drop(w);
            if lost {
                self.reg.woken(rev, true);
            }
            // Our own cell, filled synchronously; nobody else can hold it now.
            let lost_at = if mutants::active(Mutant::MC148) { rev } else { applied }; // MC148, as above
            self.cell.fill(if lost { WaitResult::Lost(lost_at) } else { WaitResult::Reached(applied) });
            return;
        }
        if let Some(e) = w.entries.get_mut(&self.id) {
            e.target = Some(Target { rev, acked_at_seq: seq });
        }
        w.armed.insert((rev, self.id));
    }

    /// Wait for the outcome.
    pub(crate) fn wait(&mut self) -> WaitFuture<'_> {
        WaitFuture { w: self }
    }

    /// Deregister. Returns whether the apply loop had already claimed this waiter (cancelled
    /// while its completion was in flight).
    fn deregister(&mut self) -> bool {
        if self.reg.mp2 {
            // MP2: close the channel first, then deregister: the apply loop may still send.
            lock(&self.cell.st).closed = true;
        }
        let mut w = self.reg.lock();
        match w.entries.remove(&self.id) {
            Some(e) => {
                if let Some(t) = e.target {
                    w.armed.remove(&(t.rev, self.id));
                }
                false
            }
            None => true,
        }
    }
}

/// Future of [`Waiter::wait`].
pub(crate) struct WaitFuture<'a> {
    w: &'a mut Waiter,
}

impl Future for WaitFuture<'_> {
    type Output = WaitResult;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<WaitResult> {
        let r = self.w.cell.poll_take(cx);
        // MC397: done at the first poll: a caller that drops the wait later deregisters nothing.
        if r.is_ready() || mutants::active(Mutant::MC397) {
            self.w.done = true;
        }
        r
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if !self.armed && crate::mutants::active(crate::mutants::Mutant::MC13) {
            // MC13: only an armed waiter is deregistered; one cancelled before its write was
            // acknowledged stays registered for good.
            emit(RmapEvent::WaiterCancelled { map: (&self.reg.map).into(), rev: 0, armed: false, claimed: false });
            return;
        }
        let claimed = self.deregister();
        emit(RmapEvent::WaiterCancelled { map: (&self.reg.map).into(), rev: self.rev, armed: self.armed, claimed });
    }
}

#[cfg(all(test, not(keel_loom)))]
mod tests {
    use super::*;
    use crate::store::Reseed;

    /// Poll once: everything in these tests completes without waiting.
    fn block<F: Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("would block"),
        }
    }

    /// `waiters()` counts every call in flight: registered before its write, armed or not
    /// (blind-spot hunt, round 37, A #15: only the armed ones counted, so a slow store's calls
    /// were missing from the figure).
    #[test]
    fn the_count_holds_the_calls_still_writing() {
        let reg = Arc::new(Registry::with_mutants(8, false, false, false));
        let mut armed = Registry::register(&reg).unwrap();
        let writing = Registry::register(&reg).unwrap();
        armed.arm(5);
        assert_eq!(reg.len(), 2, "one parked, one still writing");
        drop(writing);
        assert_eq!(reg.len(), 1);
        block(reg.deliver(reg.applied_to(5)));
        assert_eq!((block(armed.wait()), reg.len()), (WaitResult::Reached(5), 0));
    }

    /// A close completes every call in the registry, the ones still writing included: armed
    /// after the close, such a call finds `Closed` in its cell and does not park (blind-spot
    /// hunt, round 39, B #30: a close of the armed waiters only left it parked for good, MC365).
    #[test]
    fn a_close_completes_the_calls_still_writing() {
        let run = || {
            let reg = Arc::new(Registry::with_mutants(8, false, false, false));
            let mut parked = Registry::register(&reg).unwrap();
            let mut writing = Registry::register(&reg).unwrap();
            parked.arm(5);
            let d = reg.close();
            let closed = d.len();
            block(reg.deliver(d));
            writing.arm(6);
            assert_eq!(block(parked.wait()), WaitResult::Closed);
            (closed, reg.len(), writing)
        };
        let (closed, left, mut writing) = run();
        assert_eq!((closed, left), (2, 0), "both calls closed, none left registered");
        assert_eq!(block(writing.wait()), WaitResult::Closed);
        #[cfg(feature = "mutants")]
        {
            crate::mutants::set(Some(Mutant::MC365));
            let (closed, left, _writing) = run();
            crate::mutants::set(None);
            assert_eq!((closed, left), (1, 1), "MC365: the call still writing stays registered");
        }
    }

    #[test]
    fn arm_after_apply_completes_at_once() {
        let reg = Arc::new(Registry::with_mutants(8, false, false, false));
        let mut w = Registry::register(&reg).unwrap();
        let d = reg.applied_to(10);
        assert_eq!(d.len(), 0, "an unarmed waiter is not collected");
        block(reg.deliver(d));
        w.arm(7);
        assert_eq!(block(w.wait()), WaitResult::Reached(10));
        assert_eq!(reg.len(), 0);
    }

    /// A write the replica loaded before its call armed completes at once (MC49 parks it).
    #[test]
    fn arm_after_load_completes_at_once() {
        let reg = Arc::new(Registry::with_mutants(8, false, false, false));
        let mut w = Registry::register(&reg).unwrap();
        let seq = reg.begin_snapshot();
        block(reg.deliver(reg.loaded(&MapSnapshot { rev: 12, ..Default::default() }, seq)));
        w.arm(10);
        assert_eq!(block(w.wait()), WaitResult::Reached(12));
        assert_eq!(reg.len(), 0);
    }

    #[test]
    fn apply_after_arm_wakes_in_target_order_and_drop_deregisters() {
        let reg = Arc::new(Registry::with_mutants(8, false, false, false));
        let mut a = Registry::register(&reg).unwrap();
        let mut b = Registry::register(&reg).unwrap();
        let c = Registry::register(&reg).unwrap();
        a.arm(5);
        b.arm(9);
        let d = reg.applied_to(6);
        assert_eq!(d.len(), 1);
        block(reg.deliver(d));
        assert_eq!(block(a.wait()), WaitResult::Reached(6));
        drop(c); // cancelled before its write
        assert_eq!(reg.len(), 1);
        drop(b); // cancelled while armed
        assert_eq!(reg.len(), 0);
        block(reg.deliver(reg.applied_to(20))); // nothing left, nothing sent
    }

    /// A call cancelled while parked (its wait polled, then dropped) deregisters its waiter
    /// (round 42 A #7: MC397 marked it done at its first poll, and the drop left it registered).
    #[test]
    fn a_wait_polled_then_dropped_deregisters() {
        fn left_after_cancel() -> usize {
            let reg = Arc::new(Registry::with_mutants(8, false, false, false));
            let mut w = Registry::register(&reg).expect("room");
            w.arm(5);
            {
                let mut f = std::pin::pin!(w.wait());
                let mut cx = Context::from_waker(Waker::noop());
                assert!(f.as_mut().poll(&mut cx).is_pending(), "parked: the replica is behind");
            }
            drop(w);
            reg.len()
        }
        assert_eq!(left_after_cancel(), 0);
        #[cfg(feature = "mutants")]
        {
            let prev = crate::mutants::set(Some(Mutant::MC397));
            let left = left_after_cancel();
            crate::mutants::set(prev);
            assert_eq!(left, 1, "MC397 leaves the waiter registered");
        }
    }

    #[test]
    fn snapshot_after_ack_without_the_write_reports_loss() {
        let reg = Arc::new(Registry::with_mutants(8, false, false, false));
        let mut before = Registry::register(&reg).unwrap();
        let seq_old = reg.begin_snapshot();
        before.arm(100); // acked after snapshot #1 was requested
        let mut after = Registry::register(&reg).unwrap();
        // Snapshot #1 (requested before the ack) at rev 0 says nothing about the write.
        block(reg.deliver(reg.loaded(&MapSnapshot::default(), seq_old)));
        assert_eq!(reg.len(), 2);
        let seq = reg.begin_snapshot();
        block(reg.deliver(reg.loaded(&MapSnapshot::default(), seq)));
        assert_eq!(block(before.wait()), WaitResult::Lost(0));
        after.arm(5);
        assert_eq!(reg.len(), 1, "acked after the request: still waiting");
        block(reg.deliver(reg.close()));
        assert_eq!(block(after.wait()), WaitResult::Closed);
        assert!(matches!(Registry::register(&reg), Err(RegisterError::Closed)));
    }

    /// A store restart lost writes at 100 and 101 (it kept 99) and seeded the map's revisions
    /// from 5000: a resync to 5003 is above both, yet neither write is in it.
    fn load_after_a_restart_that_lost_100_and_101() -> Vec<WaitResult> {
        let reg = Arc::new(Registry::with_mutants(8, false, false, false));
        let (mut lost, mut kept, mut late) =
            (Registry::register(&reg).unwrap(), Registry::register(&reg).unwrap(), Registry::register(&reg).unwrap());
        lost.arm(100);
        kept.arm(99);
        let seq = reg.begin_snapshot();
        late.arm(101); // acked after the request: the seedings still say it was lost
        let reseeds = vec![Reseed { kept: 0, seed: 90 }, Reseed { kept: 99, seed: 5000 }];
        block(reg.deliver(reg.loaded(&MapSnapshot { rev: 5003, reseeds, ..Default::default() }, seq)));
        assert_eq!(reg.len(), 0);
        vec![block(lost.wait()), block(kept.wait()), block(late.wait())]
    }

    #[test]
    fn a_write_lost_in_a_restart_is_lost_though_revisions_are_seeded_above_it() {
        let got = load_after_a_restart_that_lost_100_and_101();
        assert_eq!(got, [WaitResult::Lost(5003), WaitResult::Reached(5003), WaitResult::Lost(5003)]);
    }

    #[cfg(feature = "mutants")]
    #[test]
    fn mc43_calls_a_write_lost_in_a_restart_applied() {
        let prev = mutants::set(Some(Mutant::MC43));
        let got = load_after_a_restart_that_lost_100_and_101();
        mutants::set(prev);
        assert_eq!(got, [WaitResult::Reached(5003); 3], "the test above would fail under MC43");
    }

    /// A caller slow to arm (descheduled across a roll-back and the resync after it) arms for a
    /// write at 100 after the replica loaded 5003: the seedings say 100 was lost, so `DataLost`,
    /// not `Ok`; a write the snapshot's history holds (99) is reached.
    fn arm_after_a_load_that_lost_100() -> Vec<WaitResult> {
        let reg = Arc::new(Registry::with_mutants(8, false, false, false));
        let seq = reg.begin_snapshot();
        let reseeds = vec![Reseed { kept: 99, seed: 5000 }];
        block(reg.deliver(reg.loaded(&MapSnapshot { rev: 5003, reseeds, ..Default::default() }, seq)));
        let (mut lost, mut kept) = (Registry::register(&reg).unwrap(), Registry::register(&reg).unwrap());
        lost.arm(100);
        kept.arm(99);
        vec![block(lost.wait()), block(kept.wait())]
    }

    #[test]
    fn a_waiter_armed_after_the_load_that_lost_its_write_is_lost() {
        assert_eq!(arm_after_a_load_that_lost_100(), [WaitResult::Lost(5003), WaitResult::Reached(5003)]);
    }

    #[cfg(feature = "mutants")]
    #[test]
    fn mc77_calls_a_write_lost_before_the_arm_applied() {
        let prev = mutants::set(Some(Mutant::MC77));
        let got = arm_after_a_load_that_lost_100();
        mutants::set(prev);
        assert_eq!(got, [WaitResult::Reached(5003); 2], "the test above would fail under MC77");
    }

    #[test]
    fn registry_is_bounded() {
        let reg = Arc::new(Registry::with_mutants(1, false, false, false));
        let _a = Registry::register(&reg).unwrap();
        assert!(matches!(Registry::register(&reg), Err(RegisterError::Full)));
    }
}
