//! A `Store` that records the map operations it forwards, for the linearizability check of the
//! merged history (`keel_checks::linearize`, the simulator's checker).
//!
//! Real-time order is what the check rests on: the invoke line is stamped (`CLOCK_MONOTONIC`)
//! before the request is handed to the store, the return line after its reply came back, so a
//! request's true span lies inside its recorded one. An error whose `Outcome` says the operation
//! was certainly not applied returns `NotApplied`; any other error leaves the operation open (it
//! may have been applied at any point after its invoke, or never).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use keel::Outcome;
use keel::store::{
    Acquire, Expect, MapScan, MapSnapshot, MapTxn, MapWrite, Read, ReadOut, Renew, Store, StoreResult, TxnOutcome,
    WriteOutcome,
};
use keel_checks::linearize::{StoreOp, StoreRet};

use super::history::{Ev, Recorder};

/// Bits of an operation id left for the per-incarnation counter: the incarnation fills the rest,
/// so ids stay unique across a node's restarts (the runner adds the node).
const OP_SEQ_BITS: u32 = 40;

/// `S` with its map operations recorded into the process' history.
#[derive(Clone)]
pub struct RecordingStore<S> {
    inner: S,
    rec: Arc<Recorder>,
    next: Arc<AtomicU64>,
}

impl<S: Store> RecordingStore<S> {
    /// Record `inner`'s map operations into `rec`, ids starting at this incarnation's range.
    pub fn new(inner: S, rec: Arc<Recorder>, incarnation: u32) -> Self {
        let first = u64::from(incarnation) << OP_SEQ_BITS;
        RecordingStore { inner, rec, next: Arc::new(AtomicU64::new(first)) }
    }

    async fn recorded<T>(
        &self,
        op: StoreOp,
        call: impl Future<Output = StoreResult<T>>,
        ret: impl FnOnce(&T) -> StoreRet,
    ) -> StoreResult<T> {
        self.recorded_each(vec![op], call, |v| vec![ret(v)]).await
    }

    /// Several operations sent in one request (a batch of transactions): each is its own record,
    /// all invoked before the request and returned after its reply, so the checker may order
    /// them anywhere inside that window (which the store's in-order application satisfies).
    async fn recorded_each<T>(
        &self,
        ops: Vec<StoreOp>,
        call: impl Future<Output = StoreResult<T>>,
        rets: impl FnOnce(&T) -> Vec<StoreRet>,
    ) -> StoreResult<T> {
        let ids: Vec<u64> = ops
            .into_iter()
            .map(|op| {
                let id = self.next.fetch_add(1, Ordering::Relaxed);
                self.rec.rec(Ev::StoreInvoke { id, op });
                id
            })
            .collect();
        let r = call.await;
        match &r {
            Ok(v) => ids.into_iter().zip(rets(v)).for_each(|(id, ret)| self.rec.rec(Ev::StoreReturn { id, ret })),
            Err(e) if e.outcome() == Outcome::NotApplied => {
                ids.into_iter().for_each(|id| self.rec.rec(Ev::StoreReturn { id, ret: StoreRet::NotApplied }))
            }
            Err(_) => {} // outcome unknown: left open
        }
        r
    }
}

impl<S: Store> Store for RecordingStore<S> {
    type Watch = S::Watch;

    fn time_ms(&self) -> impl Future<Output = StoreResult<u64>> + Send {
        self.inner.time_ms()
    }

    fn lease_acquire(
        &self,
        name: &str,
        token: &str,
        ttl_ms: u64,
        quarantine_ms: u64,
    ) -> impl Future<Output = StoreResult<Acquire>> + Send {
        self.inner.lease_acquire(name, token, ttl_ms, quarantine_ms)
    }

    fn lease_renew(&self, name: &str, token: &str, ttl_ms: u64) -> impl Future<Output = StoreResult<Renew>> + Send {
        self.inner.lease_renew(name, token, ttl_ms)
    }

    fn lease_release(&self, name: &str, token: &str) -> impl Future<Output = StoreResult<bool>> + Send {
        self.inner.lease_release(name, token)
    }

    #[cfg(feature = "mutants")]
    fn lease_delete_unchecked(&self, name: &str) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.lease_delete_unchecked(name)
    }

    fn map_get(&self, map: &str, key: &str) -> impl Future<Output = StoreResult<(Option<String>, u64)>> + Send {
        let op = StoreOp::Get { map: map.to_owned(), key: key.to_owned() };
        self.recorded(op, self.inner.map_get(map, key), |(v, rev)| StoreRet::Get(v.clone(), *rev))
    }

    fn map_snapshot(&self, map: &str) -> impl Future<Output = StoreResult<MapSnapshot>> + Send {
        let op = StoreOp::Snapshot { map: map.to_owned() };
        self.recorded(op, self.inner.map_snapshot(map), |s| StoreRet::Snapshot(s.clone()))
    }

    /// Forwarded, not recorded: a slice's keys are known only from its reply, after the
    /// invoke line must be stamped, and a pass of slices is no linearizable read (HSCAN's
    /// contract: keys present throughout come at least once). A read changes nothing, so leaving
    /// it out hides no write from the check (the simulator's recorder does the same).
    fn map_scan(&self, map: &str, cursor: &str, count: usize) -> impl Future<Output = StoreResult<MapScan>> + Send {
        self.inner.map_scan(map, cursor, count)
    }

    fn map_write(
        &self,
        map: &str,
        key: &str,
        write: MapWrite,
    ) -> impl Future<Output = StoreResult<WriteOutcome>> + Send {
        let op = StoreOp::Write { map: map.to_owned(), key: key.to_owned(), write: write.clone() };
        self.recorded(op, self.inner.map_write(map, key, write), |w| StoreRet::Write(w.clone()))
    }

    fn map_txn(
        &self,
        map: &str,
        guards: &[(String, Expect)],
        writes: &[(String, Option<String>)],
    ) -> impl Future<Output = StoreResult<TxnOutcome>> + Send {
        let op = StoreOp::Txn { map: map.to_owned(), guards: guards.to_vec(), writes: writes.to_vec() };
        self.recorded(op, self.inner.map_txn(map, guards, writes), |t| StoreRet::Txn(t.clone()))
    }

    fn map_txns(&self, map: &str, txns: &[MapTxn]) -> impl Future<Output = StoreResult<Vec<TxnOutcome>>> + Send {
        let ops = txns
            .iter()
            .map(|t| StoreOp::Txn { map: map.to_owned(), guards: t.guards.clone(), writes: t.writes.clone() })
            .collect();
        self.recorded_each(ops, self.inner.map_txns(map, txns), |outs| {
            outs.iter().map(|t| StoreRet::Txn(t.clone())).collect()
        })
    }

    /// The batch's gets and snapshots, each its own record sharing the batch's window (as a
    /// `map_txns` batch); its time and scans are forwarded unrecorded, as alone.
    fn reads(&self, reads: &[Read]) -> impl Future<Output = StoreResult<Vec<ReadOut>>> + Send {
        let ops = reads
            .iter()
            .filter_map(|r| match r {
                Read::Get { map, key } => Some(StoreOp::Get { map: map.clone(), key: key.clone() }),
                Read::Snapshot { map } => Some(StoreOp::Snapshot { map: map.clone() }),
                Read::Time | Read::Scan { .. } => None,
            })
            .collect();
        self.recorded_each(ops, self.inner.reads(reads), |outs| {
            outs.iter()
                .filter_map(|o| match o {
                    ReadOut::Get(v, rev) => Some(StoreRet::Get(v.clone(), *rev)),
                    ReadOut::Snapshot(s) => Some(StoreRet::Snapshot(s.clone())),
                    ReadOut::Time(_) | ReadOut::Scan(_) => None,
                })
                .collect()
        })
    }

    fn watch(&self, map: &str) -> impl Future<Output = StoreResult<Self::Watch>> + Send {
        self.inner.watch(map)
    }
}
