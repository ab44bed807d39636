//! The store's data and its sequential semantics, pure and synchronous.
//!
//! [`StoreState`] is the one definition of what every store operation does to the data, given the
//! store time at which it is applied. [`MemoryStore`](super::MemoryStore) wraps it in a mutex with
//! a clock and change feeds; the model checker (`keel-models`, `cargo modelcheck`) embeds it as the
//! store of its models; the simulator's linearizability check uses it as the sequential
//! specification. One copy of the semantics, so none of them can drift from the others.

use std::collections::BTreeMap;

use super::{
    Acquire, Change, Expect, MAP_RESEEDS_MAX, MAP_SCAN_START, MapScan, MapSnapshot, MapTxn, MapWrite, Read, ReadOut,
    Renew, Reseed, SEED_PER_MS, StoreResult, TxnOutcome, WriteOutcome, apply_write, bad_cursor, check_items,
    check_name, check_quarantine, check_scan, check_ttl, check_txn_names, check_txns,
};
use crate::error::StoreError;

/// Every key of a store: lease holders, lease counters and maps.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct StoreState {
    holders: BTreeMap<String, Holder>,
    lease_meta: BTreeMap<String, LeaseMeta>,
    maps: BTreeMap<String, MapState>,
    /// The store process's incarnation: one more at every restart ([`StoreState::restarted`]).
    /// Not data (Redis's `run_id`): a restart that rolls the data back keeps counting up.
    boot: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Holder {
    token: String,
    fence: u64,
    expires_at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct LeaseMeta {
    fence: u64,
    quarantine_until_ms: u64,
    /// The incarnation the counter was last judged under.
    boot: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
struct MapState {
    rev: u64,
    entries: BTreeMap<String, String>,
    /// The incarnation the revision counter was last judged under.
    boot: u64,
    /// The last seedings of the revision counter, oldest first ([`MapSnapshot::reseeds`]).
    reseeds: Vec<Reseed>,
}

impl StoreState {
    /// The live holder of lease `name` at store time `now_ms`, as `(token, fence)`.
    pub fn lease_holder(&self, name: &str, now_ms: u64) -> Option<(&str, u64)> {
        self.holders.get(name).filter(|h| h.expires_at_ms > now_ms).map(|h| (h.token.as_str(), h.fence))
    }

    /// The live grant of lease `name` at store time `now_ms`, as `(token, fence, expiry ms)`.
    pub fn lease_grant(&self, name: &str, now_ms: u64) -> Option<(&str, u64, u64)> {
        self.holders
            .get(name)
            .filter(|h| h.expires_at_ms > now_ms)
            .map(|h| (h.token.as_str(), h.fence, h.expires_at_ms))
    }

    /// A store holding only map `map`, as `snapshot` shows it (entries and revision): where a
    /// checker's specification of that map starts after a roll-back to a checkpoint.
    pub fn with_map(map: &str, snapshot: &MapSnapshot) -> StoreState {
        let mut s = StoreState::default();
        let m = MapState {
            rev: snapshot.rev,
            entries: snapshot.entries.clone(),
            boot: 0,
            reseeds: snapshot.reseeds.clone(),
        };
        s.maps.insert(map.to_owned(), m);
        s
    }

    /// Set (or remove) `key` of map `map` behind the map's back, as an operator's `HSET` on its
    /// hash does: no revision is bumped and no change is published (a test's divergence at an
    /// unchanged revision, which only a replica's anti-entropy finds).
    #[cfg(test)]
    pub(crate) fn edit_unrevised(&mut self, map: &str, key: &str, value: Option<&str>) {
        let m = self.maps.entry(map.to_owned()).or_default();
        match value {
            Some(v) => m.entries.insert(key.to_owned(), v.to_owned()),
            None => m.entries.remove(key),
        };
    }

    /// The store process restarted (its data kept, or rolled back to what it had persisted):
    /// the next acquire of each lease is quarantined as after a data loss.
    pub fn restarted(&mut self) {
        self.boot += 1;
    }

    /// Whether this holds no key at all (whatever its incarnation).
    pub fn holds_nothing(&self) -> bool {
        self.holders.is_empty() && self.lease_meta.is_empty() && self.maps.is_empty()
    }

    /// Whether this holds the same keys and values as `other` (their incarnations aside).
    pub fn same_data(&self, other: &StoreState) -> bool {
        self.holders == other.holders && self.lease_meta == other.lease_meta && self.maps == other.maps
    }

    /// This data (kept, rolled back or empty) comes up in the restart of the process that held
    /// `before`: one incarnation after it.
    pub fn restart_after(&mut self, before: &StoreState) {
        self.boot = before.boot.max(self.boot) + 1;
    }

    fn live_holder(&mut self, name: &str, now_ms: u64) -> Option<&mut Holder> {
        if self.holders.get(name).is_some_and(|h| h.expires_at_ms <= now_ms) {
            self.holders.remove(name);
        }
        self.holders.get_mut(name)
    }

    /// [`Store::lease_acquire`](super::Store::lease_acquire) at store time `now`.
    pub fn lease_acquire(
        &mut self,
        name: &str,
        token: &str,
        ttl_ms: u64,
        quarantine_ms: u64,
        now: u64,
    ) -> StoreResult<Acquire> {
        check_name("lease name", name)?;
        check_name("lease token", token)?;
        check_ttl(ttl_ms)?;
        check_quarantine(quarantine_ms)?;
        let boot = self.boot;
        let meta = self.lease_meta.entry(name.to_owned()).or_insert_with(|| {
            // MC2: a counter that starts again at 0 when the store lost it (a bare INCR).
            let seed = if crate::mutants::active(crate::mutants::Mutant::MC2) { 0 } else { now * SEED_PER_MS };
            LeaseMeta { fence: seed, quarantine_until_ms: now + quarantine_ms, boot }
        });
        // MC29: only a missing counter is judged; a restart that kept an older one is not.
        if meta.boot != boot && !crate::mutants::active(crate::mutants::Mutant::MC29) {
            // The store restarted since this counter was judged, and a restart may have rolled
            // the data back (AOF `everysec`, an RDB file, a failover to a lagging replica) with
            // the last grants and the fences they were minted: their holders may still believe.
            // So as after a loss: quarantine, and fences from store time again, above the lost.
            meta.boot = boot;
            meta.quarantine_until_ms = meta.quarantine_until_ms.max(now + quarantine_ms);
            meta.fence = meta.fence.max(now * SEED_PER_MS);
        }
        // MC357: a millisecond of rounding grace on the quarantine's end: a grant a ms early.
        let grace = u64::from(crate::mutants::active(crate::mutants::Mutant::MC357));
        if now + grace < meta.quarantine_until_ms {
            return Ok(Acquire::Quarantined { remaining_ms: meta.quarantine_until_ms - now });
        }
        if let Some(h) = self.live_holder(name, now) {
            // MC157: the holder's own token refused.
            if h.token == token && !crate::mutants::active(crate::mutants::Mutant::MC157) {
                if !crate::mutants::active(crate::mutants::Mutant::MC33) {
                    h.expires_at_ms = now + ttl_ms; // MC33: granted again, the old expiry kept
                }
                return Ok(Acquire::Granted { fence: h.fence });
            }
            // MC158: the request's TTL said for the grant's time left.
            let left =
                if crate::mutants::active(crate::mutants::Mutant::MC158) { ttl_ms } else { h.expires_at_ms - now };
            return Ok(Acquire::Held { remaining_ms: left });
        }
        let meta = self.lease_meta.get_mut(name).ok_or_else(|| StoreError::corrupt(name, "lease meta vanished"))?;
        let before = meta.fence;
        meta.fence += 1;
        let fence = meta.fence;
        crate::keel_assert!(fence > before, "fences only grow per lease key: minted {fence} after {before}");
        self.holders.insert(name.to_owned(), Holder { token: token.to_owned(), fence, expires_at_ms: now + ttl_ms });
        Ok(Acquire::Granted { fence })
    }

    /// [`Store::lease_renew`](super::Store::lease_renew) at store time `now`.
    pub fn lease_renew(&mut self, name: &str, token: &str, ttl_ms: u64, now: u64) -> StoreResult<Renew> {
        check_name("lease name", name)?;
        check_ttl(ttl_ms)?;
        // MC303: the quarantine judged for renewals too (a grant kept across a restart refused).
        if crate::mutants::active(crate::mutants::Mutant::MC303)
            && self.lease_meta.get(name).is_some_and(|m| now < m.quarantine_until_ms || m.boot != self.boot)
        {
            return Ok(Renew::NotHolder);
        }
        let holder = if crate::mutants::active(crate::mutants::Mutant::MC101) {
            self.holders.get_mut(name) // MC101: the token matched, the grant's expiry not read
        } else {
            self.live_holder(name, now)
        };
        match holder {
            Some(h) if h.token == token || crate::mutants::active(crate::mutants::Mutant::MC1) => {
                h.expires_at_ms = now + ttl_ms;
                Ok(Renew::Renewed { fence: h.fence })
            }
            _ => Ok(Renew::NotHolder),
        }
    }

    /// [`Store::lease_release`](super::Store::lease_release) at store time `now`.
    pub fn lease_release(&mut self, name: &str, token: &str, now: u64) -> StoreResult<bool> {
        check_name("lease name", name)?;
        let mine = self.live_holder(name, now).is_some_and(|h| h.token == token);
        if mine {
            self.holders.remove(name);
            // MC354: the release drops the fence counter too: the next acquisition is
            // quarantined as after a data loss.
            if crate::mutants::active(crate::mutants::Mutant::MC354) {
                self.lease_meta.remove(name);
            }
        }
        Ok(mine)
    }

    /// Historical bug MS5: delete the lease whoever holds it.
    pub fn lease_delete_unchecked(&mut self, name: &str) {
        self.holders.remove(name);
    }

    /// [`Store::map_get`](super::Store::map_get).
    pub fn map_get(&self, map: &str, key: &str) -> StoreResult<(Option<String>, u64)> {
        check_name("map", map)?;
        let value = self.maps.get(map).and_then(|m| m.entries.get(key).cloned());
        Ok((value, self.map_rev(map)))
    }

    /// [`Store::map_snapshot`](super::Store::map_snapshot).
    pub fn map_snapshot(&self, map: &str) -> StoreResult<MapSnapshot> {
        check_name("map", map)?;
        Ok(self.maps.get(map).map_or_else(MapSnapshot::default, |m| MapSnapshot {
            rev: m.rev,
            entries: m.entries.clone(),
            reseeds: m.reseeds.clone(),
            // MC140: the flag never set: a replica loading such a snapshot applies a feed's
            // changes of a history the restart may have rolled back.
            restarted_since_commit: m.rev > 0
                && m.boot != self.boot
                && !crate::mutants::active(crate::mutants::Mutant::MC140),
        }))
    }

    /// [`Store::reads`](super::Store::reads) at store time `now`, in one step (the batch is
    /// already validated).
    pub fn reads(&self, reads: &[Read], now: u64) -> StoreResult<Vec<ReadOut>> {
        reads
            .iter()
            .map(|r| {
                Ok(match r {
                    Read::Time => ReadOut::Time(now),
                    Read::Get { map, key } => {
                        let (v, rev) = self.map_get(map, key)?;
                        ReadOut::Get(v, rev)
                    }
                    Read::Snapshot { map } => ReadOut::Snapshot(self.map_snapshot(map)?),
                    Read::Scan { map, cursor, count } => ReadOut::Scan(self.map_scan(map, cursor, *count)?),
                })
            })
            .collect()
    }

    /// Every map's revision (an inspection hook: the simulated store reads it at each boot).
    pub fn map_revs(&self) -> BTreeMap<String, u64> {
        self.maps.iter().map(|(name, m)| (name.clone(), m.rev)).collect()
    }

    /// The entries of map `map` whose key is `from` or after it, copied: an inspection hook
    /// (see `MemoryStore::map_entries_from`), no part of the [`Store`](super::Store) contract.
    pub fn map_entries_from(&self, map: &str, from: &str) -> BTreeMap<String, String> {
        let Some(m) = self.maps.get(map) else { return BTreeMap::new() };
        m.entries
            .range::<str, _>((std::ops::Bound::Included(from), std::ops::Bound::Unbounded))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// [`map_entries_from`](Self::map_entries_from)'s entries, borrowed, in key order.
    pub fn map_entries_borrowed_from<'a>(
        &'a self,
        map: &str,
        from: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.maps
            .get(map)
            .into_iter()
            .flat_map(move |m| m.entries.range::<str, _>((std::ops::Bound::Included(from), std::ops::Bound::Unbounded)))
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// [`Store::map_scan`](super::Store::map_scan): up to `count` entries in key order after
    /// the cursor's key. The cursor is [`MAP_SCAN_START`] or `k` and the hex of the last key
    /// returned, so a key present the whole pass is returned exactly once (a stronger form of
    /// the contract) and a slice never holds more than `count` entries.
    pub fn map_scan(&self, map: &str, cursor: &str, count: usize) -> StoreResult<MapScan> {
        use std::ops::Bound;
        check_scan(map, count)?;
        let after = if cursor == MAP_SCAN_START { None } else { Some(cursor_key(cursor)?) };
        let Some(m) = self.maps.get(map) else {
            return Ok(MapScan { rev: 0, entries: BTreeMap::new(), next: MAP_SCAN_START.to_owned() });
        };
        let from = after.as_ref().map_or(Bound::Unbounded, |k| Bound::Excluded(k.as_str()));
        let mut range = m.entries.range::<str, _>((from, Bound::Unbounded));
        let entries: BTreeMap<String, String> =
            range.by_ref().take(count).map(|(k, v)| (k.clone(), v.clone())).collect();
        let next = match entries.keys().next_back() {
            // MC464: the last slice hands out a cursor too (one more round trip per pass).
            Some(last) if range.next().is_some() || crate::mutants::active(crate::mutants::Mutant::MC464) => {
                let mut c = String::with_capacity(1 + 2 * last.len());
                c.push('k');
                // `{b:02x}` per byte, without a `format!` per byte.
                const HEX: &[u8; 16] = b"0123456789abcdef";
                last.bytes().for_each(|b| {
                    c.push(char::from(HEX[usize::from(b >> 4)]));
                    c.push(char::from(HEX[usize::from(b & 0xf)]));
                });
                c
            }
            _ => MAP_SCAN_START.to_owned(),
        };
        Ok(MapScan { rev: m.rev, entries, next })
    }

    /// [`Store::map_write`](super::Store::map_write) at store time `now`, with the changes to
    /// publish on the map's feed.
    pub fn map_write(
        &mut self,
        map: &str,
        key: &str,
        write: &MapWrite,
        now: u64,
    ) -> StoreResult<(WriteOutcome, Vec<Change>)> {
        check_name("map", map)?;
        check_name("key", key)?;
        if let MapWrite::Append(items) | MapWrite::Remove(items) = write {
            check_items(items)?;
        }
        let current = self.maps.get(map).and_then(|m| m.entries.get(key).cloned());
        Ok(match apply_write(current.as_deref(), write) {
            None => {
                // MC130: a refused write's outcome without the value that refused it.
                let value = if crate::mutants::active(crate::mutants::Mutant::MC130) { None } else { current };
                (WriteOutcome { applied: false, rev: self.map_rev(map), value }, Vec::new())
            }
            Some(new) => {
                let changes = self.commit(map, now, vec![(key.to_owned(), new.clone())]);
                let rev = self.map_rev(map);
                (WriteOutcome { applied: true, rev, value: new }, changes)
            }
        })
    }

    /// Write `value` to `key` unconditionally, whatever was read before: the second half of the
    /// non-atomic read-then-write of mutant [`Mutant::MM1`](crate::mutants::Mutant::MM1).
    pub fn map_put(&mut self, map: &str, key: &str, value: Option<String>, now: u64) -> (u64, Vec<Change>) {
        let changes = self.commit(map, now, vec![(key.to_owned(), value)]);
        (self.map_rev(map), changes)
    }

    /// [`Store::map_txn`](super::Store::map_txn) at store time `now`, with the changes to publish.
    pub fn map_txn(
        &mut self,
        map: &str,
        guards: &[(String, Expect)],
        writes: &[(String, Option<String>)],
        now: u64,
    ) -> StoreResult<(TxnOutcome, Vec<Change>)> {
        check_txn_names(map, guards, writes)?;
        let holds = guards.iter().all(|(k, expect)| {
            let cur = self.maps.get(map).and_then(|m| m.entries.get(k));
            match expect {
                Expect::Absent => cur.is_none(),
                Expect::Value(v) => cur == Some(v),
            }
        });
        if !holds || writes.is_empty() {
            return Ok((TxnOutcome { applied: holds && writes.is_empty(), rev: self.map_rev(map) }, Vec::new()));
        }
        let changes = self.commit(map, now, writes.to_vec());
        Ok((TxnOutcome { applied: true, rev: self.map_rev(map) }, changes))
    }

    /// [`Store::map_txns`](super::Store::map_txns) at store time `now`: each transaction judged
    /// and applied in order, as [`map_txn`](Self::map_txn) would; the changes of all of them, in
    /// revision order.
    pub fn map_txns(&mut self, map: &str, txns: &[MapTxn], now: u64) -> StoreResult<(Vec<TxnOutcome>, Vec<Change>)> {
        check_txns(map, txns)?;
        let mut outcomes = Vec::with_capacity(txns.len());
        let mut changes = Vec::new();
        for t in txns {
            let (out, mut c) = self.map_txn(map, &t.guards, &t.writes, now)?;
            outcomes.push(out);
            if crate::mutants::active(crate::mutants::Mutant::MC98) && !c.is_empty() {
                changes = c; // MC98: each transaction's changes replace the ones gathered before
                continue;
            }
            changes.append(&mut c);
        }
        Ok((outcomes, changes))
    }

    /// Apply `(key, new value)` pairs to a map, one revision each; returns the changes.
    fn commit(&mut self, map: &str, now_ms: u64, writes: Vec<(String, Option<String>)>) -> Vec<Change> {
        let boot = self.boot;
        // The map's name is copied only when the map is new (`entry` would copy it per commit).
        if !self.maps.contains_key(map) {
            self.maps.insert(map.to_owned(), MapState::default());
        }
        let Some(m) = self.maps.get_mut(map) else { unreachable!("inserted just above") };
        let kept = m.rev;
        if m.rev == 0 {
            m.rev = now_ms * SEED_PER_MS;
        } else if m.boot != boot && !crate::mutants::active(crate::mutants::Mutant::MC30) {
            // The store restarted since this counter was judged, and a restart may have rolled
            // the data back with the last revisions, which replicas, subscribers and waiters
            // already saw for other changes. Revisions from store time again, above the lost:
            // the jump is a gap to every replica, which resyncs.
            m.rev = m.rev.max(now_ms * SEED_PER_MS);
        }
        if m.rev != kept {
            // Remembered with the data, so a roll-back restores the seedings its data knew.
            if m.reseeds.len() >= MAP_RESEEDS_MAX {
                m.reseeds.remove(0);
            }
            m.reseeds.push(Reseed { kept, seed: m.rev });
        }
        m.boot = boot;
        let mut changes = Vec::with_capacity(writes.len());
        for (key, value) in writes {
            let before = m.rev;
            m.rev += 1;
            crate::keel_assert!(
                m.rev == before + 1 && before > 0,
                "map revisions are consecutive: {before} -> {}",
                m.rev
            );
            match &value {
                Some(v) => m.entries.insert(key.clone(), v.clone()),
                None => m.entries.remove(&key),
            };
            changes.push(Change { key, value, rev: m.rev });
        }
        changes
    }

    /// Map `map`'s revision: its last change's, 0 if it never had one.
    pub fn map_rev(&self, map: &str) -> u64 {
        self.maps.get(map).map_or(0, |m| m.rev)
    }
}

/// The key a [`StoreState::map_scan`] cursor resumes after: `k` and the key's bytes in hex.
fn cursor_key(cursor: &str) -> StoreResult<String> {
    let hex =
        cursor.strip_prefix('k').filter(|h| !h.is_empty() && h.len() % 2 == 0).ok_or_else(|| bad_cursor(cursor))?;
    let bytes: Option<Vec<u8>> =
        (0..hex.len()).step_by(2).map(|i| hex.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok())).collect();
    bytes.and_then(|b| String::from_utf8(b).ok()).ok_or_else(|| bad_cursor(cursor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_lives_exactly_its_ttl_and_waits_are_reported_exactly() {
        let mut s = StoreState::default();
        let t0 = 10_000;
        // A new lease key starts quarantined (the store may have lost an older holder).
        assert_eq!(s.lease_acquire("l", "a", 1000, 500, t0), Ok(Acquire::Quarantined { remaining_ms: 500 }));
        assert_eq!(s.lease_acquire("l", "a", 1000, 500, t0 + 200), Ok(Acquire::Quarantined { remaining_ms: 300 }));
        let Ok(Acquire::Granted { fence }) = s.lease_acquire("l", "a", 1000, 500, t0 + 500) else { panic!("granted") };
        assert_eq!(s.lease_grant("l", t0 + 500), Some(("a", fence, t0 + 1500)));
        assert_eq!(s.lease_acquire("l", "b", 1000, 500, t0 + 1100), Ok(Acquire::Held { remaining_ms: 400 }));
        assert_eq!(s.lease_holder("l", t0 + 1499), Some(("a", fence)));
        assert_eq!(s.lease_holder("l", t0 + 1500), None, "expired at exactly now + ttl");
        assert_eq!(s.lease_grant("l", t0 + 1500), None);
        assert_eq!(s.lease_holder("other", t0), None);
    }

    /// At its expiry millisecond a grant is gone for every operation, not only for reads: its
    /// own token's renewal finds it expired and its release finds nothing, and another token is
    /// granted (blind-spot hunt, round 23, A #1: a `<` for `<=` in the expiry kept it live for
    /// that millisecond, where a renewal revived it; the simulator never lands one there).
    #[test]
    fn a_grant_is_gone_for_every_operation_at_its_expiry() {
        let grant = |s: &mut StoreState, token: &str, now: u64| match s.lease_acquire("l", token, 1000, 0, now) {
            Ok(Acquire::Granted { fence }) => fence,
            r => panic!("{r:?}"),
        };
        let mut s = StoreState::default();
        let fence = grant(&mut s, "a", 10_000);
        assert_eq!(s.lease_renew("l", "a", 1000, 10_999), Ok(Renew::Renewed { fence }), "a millisecond before");
        assert_eq!(s.lease_renew("l", "a", 1000, 11_999), Ok(Renew::NotHolder), "at its expiry");
        let mut s = StoreState::default();
        grant(&mut s, "a", 10_000);
        assert_eq!(s.lease_release("l", "a", 11_000), Ok(false), "nothing left to release at its expiry");
        let mut s = StoreState::default();
        let fence = grant(&mut s, "a", 10_000);
        assert!(grant(&mut s, "b", 11_000) > fence, "another token granted at the expiry");
    }

    /// A restart that kept the data quarantines acquisitions, not the grant it kept: its holder
    /// renews it and releases it as before (round 36 A #33: MC303 judged the quarantine for
    /// renewals too, so every store restart took the lease from its holder for a TTL).
    #[test]
    fn a_restart_quarantines_acquisitions_and_keeps_the_grant_renewable() {
        let mut s = StoreState::default();
        let Ok(Acquire::Granted { fence }) = s.lease_acquire("l", "a", 1000, 0, 10_000) else { panic!("granted") };
        s.restarted();
        assert_eq!(s.lease_acquire("l", "b", 1000, 1000, 10_100), Ok(Acquire::Quarantined { remaining_ms: 1000 }));
        assert_eq!(s.lease_renew("l", "a", 1000, 10_200), Ok(Renew::Renewed { fence }), "the holder renews");
        assert_eq!(s.lease_release("l", "a", 10_300), Ok(true), "and releases");
        #[cfg(feature = "mutants")]
        {
            let mut s = StoreState::default();
            assert!(s.lease_acquire("l", "a", 1000, 0, 10_000).is_ok());
            s.restarted();
            crate::mutants::set(Some(crate::mutants::Mutant::MC303));
            let r = s.lease_renew("l", "a", 1000, 10_200);
            crate::mutants::set(None);
            assert_eq!(r, Ok(Renew::NotHolder), "MC303: the kept grant's renewal refused");
        }
    }

    /// A quarantine lasts exactly the `quarantine_ms` asked for, and only a missing counter or a
    /// restart begins one: a release keeps the fence counter, so the next acquisition after it
    /// is granted at once with a greater fence (round 39 A #3 and #24: MC354 dropped the counter
    /// with the grant, quarantining every handover; MC357 granted a millisecond early).
    #[test]
    fn a_quarantine_lasts_exactly_its_length_and_a_release_begins_none() {
        let run = || {
            let mut s = StoreState::default();
            let first = s.lease_acquire("l", "a", 1000, 500, 10_000);
            assert_eq!(first, Ok(Acquire::Quarantined { remaining_ms: 500 }), "a new counter is quarantined");
            let q = s.lease_acquire("l", "a", 1000, 500, 10_499);
            let Ok(Acquire::Granted { fence }) = s.lease_acquire("l", "a", 1000, 500, 10_500) else {
                panic!("granted")
            };
            let released = s.lease_release("l", "a", 10_600);
            (q, fence, released, s.lease_acquire("l", "b", 1000, 500, 10_601))
        };
        let (q, fence, released, next) = run();
        assert_eq!(q, Ok(Acquire::Quarantined { remaining_ms: 1 }), "a millisecond before its end");
        assert_eq!(released, Ok(true));
        assert_eq!(next, Ok(Acquire::Granted { fence: fence + 1 }), "a release begins no quarantine");
        #[cfg(feature = "mutants")]
        {
            use crate::mutants::{Mutant, set};
            set(Some(Mutant::MC354));
            let (_, _, _, next) = run();
            set(Some(Mutant::MC357));
            let (q, ..) = run();
            set(None);
            assert_eq!(next, Ok(Acquire::Quarantined { remaining_ms: 500 }), "MC354: the release dropped the counter");
            assert!(matches!(q, Ok(Acquire::Granted { .. })), "MC357: granted a millisecond early: {q:?}");
        }
    }

    /// What a roll-back's judge reads: a write since a checkpoint makes the data differ from
    /// it, a restart alone does not, and an empty store holds nothing whatever its incarnation.
    #[test]
    fn a_checkpoint_holds_the_same_data_until_a_write() {
        let mut s = StoreState::default();
        assert!(s.holds_nothing());
        s.map_put("m", "k", Some("v".into()), 1_000);
        assert!(!s.holds_nothing());
        let saved = s.clone();
        s.restarted();
        assert!(s.same_data(&saved), "a restart alone changes no key");
        assert_ne!(s, saved, "but the incarnation counts on");
        s.map_put("m", "k", Some("w".into()), 1_001);
        assert!(!s.same_data(&saved), "a write since the checkpoint");
        let mut t = StoreState::default();
        t.restarted();
        assert!(t.holds_nothing(), "an empty store, restarted, still holds nothing");
        assert!(t.lease_acquire("l", "a", 1000, 0, 5_000).is_ok());
        assert!(!t.holds_nothing() && !t.same_data(&StoreState::default()), "a lease counts as data");
    }

    /// Each restart's first commit adds a seeding; the store remembers the last
    /// `MAP_RESEEDS_MAX`, and a revision older than every one it remembers counts as lost.
    #[test]
    fn seedings_are_remembered_to_a_bound_and_older_revisions_count_as_lost() {
        let mut s = StoreState::default();
        let set =
            |s: &mut StoreState, now: u64| s.map_txn("m", &[], &[("k".into(), Some("v".into()))], now).unwrap().0.rev;
        let first = set(&mut s, 1);
        for i in 0..MAP_RESEEDS_MAX as u64 {
            s.restarted();
            set(&mut s, 10 + i);
        }
        let snap = s.map_snapshot("m").unwrap();
        assert_eq!(snap.reseeds.len(), MAP_RESEEDS_MAX);
        assert_eq!(snap.reseeds.first().map(|r| r.kept), Some(first), "the first seeding was dropped");
        assert!(snap.lost_in_restart(first), "older than every seeding remembered: {snap:?}");
        assert!(!snap.lost_in_restart(snap.rev));
        s.restarted();
        s.map_snapshot("m").unwrap();
        assert_eq!(s.map_snapshot("m").unwrap().reseeds, snap.reseeds, "reads add no seeding");
    }

    #[test]
    fn scan_cursors_resume_after_the_last_key_and_garbage_is_typed() {
        let mut s = StoreState::default();
        let writes = ["a", "b b", "ü"].map(|k| (k.to_owned(), Some(k.to_owned()))).to_vec();
        s.map_txn("m", &[], &writes, 1).unwrap();
        let first = s.map_scan("m", MAP_SCAN_START, 2).unwrap();
        assert_eq!(first.entries.keys().collect::<Vec<_>>(), ["a", "b b"]);
        assert_eq!(first.next, "k622062");
        let last = s.map_scan("m", &first.next, 2).unwrap();
        assert_eq!(last.entries.keys().collect::<Vec<_>>(), ["ü"]);
        assert!(last.is_last());
        let mut t = StoreState::default();
        let writes = ["\u{fe}", "\u{fe}z"].map(|k| (k.to_owned(), Some(k.to_owned()))).to_vec();
        t.map_txn("m", &[], &writes, 1).unwrap();
        assert_eq!(t.map_scan("m", MAP_SCAN_START, 1).unwrap().next, "kc3be", "lower-case hex, two digits a byte");
        for garbage in ["", "k", "k6", "kzz", "x61", "kff", "1"] {
            assert!(matches!(s.map_scan("m", garbage, 2), Err(StoreError::Invalid { .. })), "{garbage:?}");
        }
    }
}
