//! The apply loop: join, resync, apply changes, wake waiters, feed subscribers.
//!
//! Join = open the watch, *then* take a snapshot at revision R, then apply only changes above R
//! (the watch buffers what arrives while the snapshot is in flight). A `Gap` from the feed, a
//! revision jump, or the anti-entropy timer leads to a fresh snapshot. The replica lock is held
//! only for in-memory updates: waiters are woken and subscribers fed after it is released, and
//! neither can make the loop wait (R1).

use std::sync::Arc;
use std::time::Duration;

use crate::observe::{self, ResyncReason, RmapEvent, Text};

use super::Shared;
use super::config::RmapConfig;
use super::replica::{Replica, Verdict};
use super::waiters::Deliveries;
use crate::clock::Clock;
use crate::error::StoreError;
use crate::mutants::{self, Mutant};
use crate::shutdown::Shutdown;
use crate::store::{Change, MapSnapshot, Store, Watch, WatchEvent};

pub(super) struct Driver<S: Store> {
    pub store: S,
    pub cfg: Arc<RmapConfig>,
    pub clock: Arc<dyn Clock>,
    pub shutdown: Shutdown,
    pub shared: Arc<Shared>,
}

/// Run `fut` with a deadline on `clock` (an unknown outcome when it passes).
pub(super) async fn timed<T>(
    clock: &dyn Clock,
    after: Duration,
    op: &'static str,
    fut: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    // MC288: the deadline on the runtime's timer, not the map's clock.
    let deadline: crate::clock::Sleep = if crate::mutants::active(crate::mutants::Mutant::MC288) {
        Box::pin(tokio::time::sleep(after))
    } else {
        clock.sleep(after)
    };
    tokio::select! {
        biased;
        r = fut => r,
        _ = deadline => Err(StoreError::Timeout { op }),
    }
}

enum Next {
    Resync(ResyncReason),
    Stop,
}

/// What the apply step did with a change from the feed.
enum Step {
    /// Applied, or skipped as stale: follow on.
    Followed,
    /// Changes were missed (`expected` was next): resync.
    Missed { expected: u64 },
    /// Possibly a change a store restart lost (`Verdict::AfterRestart`): resync.
    AfterRestart,
}

impl<S: Store> Driver<S> {
    pub async fn run(self) {
        let name = self.cfg.name.clone();
        observe::emit(RmapEvent::Started {
            map: (&name).into(),
            retry_min_us: observe::micros(self.cfg.retry_min),
            retry_max_us: observe::micros(self.cfg.retry_max),
            anti_entropy_us: self.cfg.anti_entropy.map_or(0, observe::micros),
            op_timeout_us: observe::micros(self.cfg.op_timeout),
        });
        // MC34: the join's snapshot read before the watch is open.
        let mut early = if mutants::active(Mutant::MC34) { self.snapshot(None).await } else { None };
        if let Some(mut watch) = self.open_watch().await {
            let mut reason = ResyncReason::Join;
            while let Some((snap, seq, took_us)) = match early.take() {
                Some(s) => Some(s),
                None => self.snapshot(Some(&mut watch)).await,
            } {
                self.load(snap, seq, reason, took_us).await;
                match self.follow(&mut watch).await {
                    Next::Resync(why) => reason = why,
                    Next::Stop => break,
                }
            }
        }
        let d = self.shared.waiters.close();
        // MC264: counted from the registry the close just emptied.
        let woken = if mutants::active(Mutant::MC264) { self.shared.waiters.len() } else { d.len() };
        self.shared.waiters.deliver(d).await;
        if !mutants::active(Mutant::MC92) {
            // MC92: the subscriptions left open: every consumer waits for a change that cannot come.
            self.shared.subs.close();
        }
        observe::emit(RmapEvent::Stopped { map: (&name).into(), waiters_closed: woken });
    }

    /// Apply the feed until a resync is needed or the map stops.
    async fn follow(&self, watch: &mut S::Watch) -> Next {
        let name = &self.cfg.name;
        let mut next_ae = self.cfg.anti_entropy.map(|d| self.clock.now() + d);
        loop {
            if mutants::active(Mutant::MC109) {
                // MC109: the period counted from the last feed event, not from the load: a map
                // written more often than its period never checks itself.
                next_ae = self.cfg.anti_entropy.map(|d| self.clock.now() + d);
            }
            let ae = async {
                match next_ae {
                    Some(t) => self.clock.sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => return Next::Stop,
                // MC120: the anti-entropy check reported as a gap.
                _ = ae => return Next::Resync(if mutants::active(Mutant::MC120) { ResyncReason::Gap } else { ResyncReason::AntiEntropy }),
                ev = watch.next() => match ev {
                    WatchEvent::Gap => {
                        observe::emit(RmapEvent::Gap { map: name.into(), rev: self.shared.revision() });
                        if Replica::resyncs_on_gap() {
                            return Next::Resync(ResyncReason::Gap);
                        }
                        // MP11: carry on as if nothing was missed.
                    }
                    WatchEvent::Change(c) => match self.apply(c).await {
                        Step::Followed => {}
                        Step::Missed { expected } => {
                            observe::emit(RmapEvent::RevJump { map: name.into(), expected });
                            return Next::Resync(ResyncReason::RevJump);
                        }
                        Step::AfterRestart => return Next::Resync(ResyncReason::Restart),
                    },
                }
            }
        }
    }

    /// Apply one change, or say why a resync must come instead.
    async fn apply(&self, c: Change) -> Step {
        let mp1 = self.shared.mp1.as_ref();
        // MP1: the apply step holds the map's lock across the send to the shared channel.
        let gate = match mp1 {
            Some(m) => Some(m.gate.lock().await),
            None => None,
        };
        let verdict = self.shared.lock_replica().on_change(&c);
        match verdict {
            Verdict::Stale => {
                observe::emit(RmapEvent::Stale { map: (&self.cfg.name).into(), rev: c.rev });
                if mutants::active(Mutant::MC12) {
                    self.shared.subs.publish(std::slice::from_ref(&c)); // MC12: skipped, yet forwarded
                }
                if mutants::active(Mutant::MC331) {
                    // MC331: the skipped change handed to the waiters as an applied one.
                    let d = self.shared.waiters.applied_to(c.rev);
                    self.wake(d, c.rev).await;
                }
                self.waiters_at_the_replica();
                Step::Followed
            }
            Verdict::Gap { expected } => Step::Missed { expected },
            Verdict::AfterRestart => {
                observe::emit(RmapEvent::AfterRestart { map: (&self.cfg.name).into(), rev: c.rev });
                Step::AfterRestart
            }
            Verdict::Applied => {
                let rev = c.rev;
                observe::emit(RmapEvent::Applied { map: (&self.cfg.name).into(), rev });
                let d = self.shared.waiters.applied_to(c.rev);
                match mp1 {
                    Some(m) => {
                        // Blocks once 100 notifications are unconsumed, with the gate held.
                        let _ = m.tx.send(c).await;
                    }
                    None => {
                        self.shared.subs.publish(std::slice::from_ref(&c));
                    }
                }
                drop(gate);
                self.wake(d, rev).await;
                self.waiters_at_the_replica();
                observe::emit(RmapEvent::Notified { map: (&self.cfg.name).into(), rev });
                Step::Followed
            }
        }
    }

    /// Load `snap` (read in `took_us` of the map's clock) into the replica and its waiters.
    async fn load(&self, snap: MapSnapshot, seq: u64, reason: ResyncReason, took_us: u64) {
        let (rev, restarted) = (snap.rev, snap.restarted_since_commit);
        // What the waiters judge their writes by: the revision and the seedings, not the entries.
        let history =
            MapSnapshot { rev, entries: Default::default(), reseeds: snap.reseeds.clone(), ..Default::default() };
        // MC285: the waiters woken before the replica holds the snapshot.
        if mutants::active(Mutant::MC285) {
            let d = self.shared.waiters.loaded(&history, seq);
            self.wake(d, rev).await;
        }
        let (old_rev, diff) = {
            let mut r = self.shared.lock_replica();
            let old_rev = r.rev();
            let diff = r.load(snap);
            // MC184: the revision left read after the load.
            (if mutants::active(Mutant::MC184) { r.rev() } else { old_rev }, diff)
        };
        let d = self.shared.waiters.loaded(&history, seq);
        // The replica and its waiters follow the snapshot exactly, back too (a store that rolled
        // back): a revision kept above it is one the store no longer holds, reported to readers
        // until the next commit (blind-spot hunt, round 13, #9 and #10; MC49 is the waiters' own
        // mutant, proven by its waiter rule).
        let (local, waiters) = (self.shared.lock_replica().rev(), self.shared.waiters.applied());
        crate::keel_assert!(
            local == rev && (waiters == rev || mutants::active(Mutant::MC49)),
            "a load leaves the replica at {local} and its waiters at {waiters}, not at the snapshot's revision {rev}"
        );
        // MC276: the waiters still parked counted, not those the load woke.
        let woken = if mutants::active(Mutant::MC276) { self.shared.waiters.len() } else { d.len() };
        let (name, changed) = (&self.cfg.name, diff.len());
        if reason == ResyncReason::Join {
            observe::emit(RmapEvent::Joined { map: name.into(), rev, keys: self.shared.len(), restarted });
        } else {
            observe::emit(RmapEvent::Resynced {
                map: name.into(),
                reason,
                rev,
                old_rev,
                changed,
                woken,
                took_us,
                restarted,
            });
        }
        // MC19: the repair stays out of the subscribers' feeds. MC381: only when the revision moved.
        let unmoved = old_rev == rev && mutants::active(Mutant::MC381);
        if self.shared.mp1.is_none() && !(reason != ResyncReason::Join && mutants::active(Mutant::MC19)) && !unmoved {
            self.shared.subs.publish(&diff);
        }
        self.wake(d, rev).await;
        // MC171: only the join counted.
        if reason == ResyncReason::Join || !mutants::active(Mutant::MC171) {
            self.shared.syncs.send_modify(|n| *n += 1);
        }
    }

    /// Hand `d` to the waiters of revision `rev`: by now the replica holds it. A caller woken
    /// sooner returns `set_and_wait` before its write is in the replica, and its next read on
    /// another thread can miss it; on one thread the load ends before the caller runs, so no
    /// rule judging the return sees it (blind-spot hunt, round 33, B #2: the load's waiters
    /// woken before the load). Judged here, at the wake.
    async fn wake(&self, d: Deliveries, rev: u64) {
        let local = self.shared.lock_replica().rev();
        crate::keel_assert!(
            d.len() == 0 || local >= rev,
            "waiters of revision {rev} woken while the replica is at {local}"
        );
        self.shared.waiters.deliver(d).await;
    }

    /// After each step of the feed the waiters judge writes by the replica's own revision (as
    /// after each load, asserted there): one below it parks a `set_and_wait` whose write the
    /// replica holds until the next change, on a quiet map for good (R8's harm), and one above
    /// it wakes waiters early. Judged at every step, not only at an arm that falls in the window
    /// (blind-spot hunt, round 37, A #16: a stale change handed to the waiters moved their
    /// revision back; R8 saw no arm in it in 600 seeds).
    fn waiters_at_the_replica(&self) {
        if crate::assert::ENABLED {
            let (local, waiters) = (self.shared.lock_replica().rev(), self.shared.waiters.applied());
            crate::keel_assert!(
                local == waiters || mutants::active(Mutant::MC49),
                "a step of the feed leaves the replica at {local} and its waiters at {waiters}"
            );
        }
    }

    /// Wait out `wait` (false: the map stopped meanwhile), then double it up to `retry_max`.
    async fn backoff(&self, wait: &mut Duration) -> bool {
        if crate::mutants::active(crate::mutants::Mutant::MC60) {
            // MC60: the backoff sleeps through the stop and notices it only afterwards.
            self.clock.sleep(*wait).await;
            if self.shutdown.is_cancelled() {
                return false;
            }
            *wait = (*wait * 2).min(self.cfg.retry_max);
            return true;
        }
        tokio::select! {
            biased;
            _ = self.shutdown.cancelled() => return false,
            _ = self.clock.sleep(*wait) => {}
        }
        // MC91: the doubling without its cap.
        *wait = if mutants::active(Mutant::MC91) { *wait * 2 } else { (*wait * 2).min(self.cfg.retry_max) };
        true
    }

    /// The map's clock's time since `began`, in µs (an attempt's `took_us`).
    fn since(&self, began: crate::clock::Instant) -> u64 {
        observe::micros(self.clock.now().saturating_duration_since(began))
    }

    async fn open_watch(&self) -> Option<S::Watch> {
        // MC90: the watch's backoff starting at nothing: a failing store is retried at once, forever.
        let mut wait = if mutants::active(Mutant::MC90) { Duration::ZERO } else { self.cfg.retry_min };
        loop {
            let began = self.clock.now();
            let r = tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => return None,
                r = timed(&*self.clock, self.cfg.op_timeout, "watch", self.store.watch(&self.cfg.name)) => r,
            };
            let (map, took_us) = ((&self.cfg.name).into(), self.since(began));
            match r {
                Ok(w) => {
                    observe::emit(RmapEvent::WatchOpened { map, took_us });
                    return Some(w);
                }
                Err(e) => observe::emit(RmapEvent::WatchFailed { map, error: Text::display(&e), took_us }),
            }
            if !self.backoff(&mut wait).await {
                return None;
            }
        }
    }

    /// A snapshot, retried until one is read. Each failed attempt reopens `watch` before the
    /// next: a failure may be the store restarting, and a feed opened before a restart may hold
    /// changes of a history the restart lost (a roll-back), published after the revision a later
    /// snapshot of the restored data is at and numbered on from it; applied after that snapshot,
    /// they would put lost writes in the replica, and resolve their waiters, until the feed's gap.
    async fn snapshot(&self, mut watch: Option<&mut S::Watch>) -> Option<(MapSnapshot, u64, u64)> {
        let mut wait = self.cfg.retry_min;
        // MC272: every attempt measured from the first one's start.
        let first = mutants::active(Mutant::MC272).then(|| self.clock.now());
        loop {
            let seq = self.shared.waiters.begin_snapshot();
            let began = first.unwrap_or_else(|| self.clock.now());
            // MC284: a snapshot cut at the backoff's cap, not the op timeout.
            let cut = if mutants::active(Mutant::MC284) { self.cfg.retry_max } else { self.cfg.op_timeout };
            let r = tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => return None,
                r = timed(&*self.clock, cut, "map_snapshot", self.store.map_snapshot(&self.cfg.name)) => r,
            };
            match r {
                Ok(s) => return Some((s, seq, self.since(began))),
                Err(e) => observe::emit(RmapEvent::SnapshotFailed {
                    map: (&self.cfg.name).into(),
                    error: Text::display(&e),
                    took_us: self.since(began),
                }),
            }
            if !self.backoff(&mut wait).await {
                return None;
            }
            if let Some(w) = watch.as_deref_mut()
                && !mutants::active(Mutant::MC44)
            {
                // MC44: keel before 2026-12-02 kept the feed it had.
                *w = self.open_watch().await?;
            }
        }
    }
}
