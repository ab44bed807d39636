//! Batched reads: several reads of [`Store::reads`](super::Store::reads) in one round trip.
//!
//! A caller that reads several maps and the store's time in a row (the pool's sweeper reads
//! keep-alives, a slice of the job map, registrations, cleanup locks and the time on every
//! sweep) pays one round trip for all of them instead of one each, and the store does the same
//! work as for the single reads.

use super::{MapScan, MapSnapshot, StoreResult, check_name, check_scan};
use crate::error::StoreError;

/// One read of a [`Store::reads`](super::Store::reads) batch: the arguments of the single read
/// it stands for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Read {
    /// [`Store::time_ms`](super::Store::time_ms).
    Time,
    /// [`Store::map_get`](super::Store::map_get) of `key` in `map`.
    Get {
        /// The map.
        map: String,
        /// The key.
        key: String,
    },
    /// [`Store::map_snapshot`](super::Store::map_snapshot) of `map`.
    Snapshot {
        /// The map.
        map: String,
    },
    /// [`Store::map_scan`](super::Store::map_scan) of `map` from `cursor`.
    Scan {
        /// The map.
        map: String,
        /// Where the slice starts ([`MAP_SCAN_START`](super::MAP_SCAN_START) or a reply's `next`).
        cursor: String,
        /// How many entries to ask for.
        count: usize,
    },
}

/// The reply to one [`Read`], in the shape of the single read's reply.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ReadOut {
    /// Reply to [`Read::Time`].
    Time(u64),
    /// Reply to [`Read::Get`]: the value and the map's revision.
    Get(Option<String>, u64),
    /// Reply to [`Read::Snapshot`].
    Snapshot(MapSnapshot),
    /// Reply to [`Read::Scan`].
    Scan(MapScan),
}

/// Most reads one [`Store::reads`](super::Store::reads) call takes: the batch runs as one
/// atomic step of keel's stores (a `MULTI`/`EXEC` in Redis, which holds every other client off
/// while it runs), so a caller with more to read sends several batches.
pub const READS_MAX: usize = 16;

/// Validate a batch: its size and every read's arguments, with the single reads' errors.
pub(crate) fn check_reads(reads: &[Read]) -> StoreResult<()> {
    if reads.len() > READS_MAX {
        return Err(StoreError::invalid(format!("reads takes at most {READS_MAX} reads, got {}", reads.len())));
    }
    reads.iter().try_for_each(|r| match r {
        Read::Time => Ok(()),
        Read::Get { map, .. } | Read::Snapshot { map } => check_name("map", map),
        Read::Scan { map, count, .. } => check_scan(map, *count),
    })
}

/// The single reads a batch stands for, sent one by one in the batch's order: what
/// [`Store::reads`](super::Store::reads) does by default (not atomic), and what the conformance
/// suite compares a backend's batches with.
pub async fn one_by_one<S: super::Store>(store: &S, reads: &[Read]) -> StoreResult<Vec<ReadOut>> {
    let mut out = Vec::with_capacity(reads.len());
    for r in reads {
        out.push(match r {
            Read::Time => ReadOut::Time(store.time_ms().await?),
            Read::Get { map, key } => {
                let (v, rev) = store.map_get(map, key).await?;
                ReadOut::Get(v, rev)
            }
            Read::Snapshot { map } => ReadOut::Snapshot(store.map_snapshot(map).await?),
            Read::Scan { map, cursor, count } => ReadOut::Scan(store.map_scan(map, cursor, *count).await?),
        });
    }
    Ok(out)
}

/// The replies of a batch, taken in the order the reads were given. A reply of the wrong shape
/// or a missing one means the store broke the contract: a typed error, not a panic.
#[derive(Debug)]
pub struct ReadOuts(std::vec::IntoIter<ReadOut>);

impl ReadOuts {
    /// Wrap the replies of a batch.
    pub fn new(outs: Vec<ReadOut>) -> Self {
        ReadOuts(outs.into_iter())
    }

    fn next_out(&mut self, want: &str) -> StoreResult<ReadOut> {
        self.0.next().ok_or_else(|| shape_error(want, "no reply"))
    }

    /// The next reply, which must be a [`ReadOut::Time`].
    pub fn time(&mut self) -> StoreResult<u64> {
        match self.next_out("time")? {
            ReadOut::Time(t) => Ok(t),
            other => Err(shape_error("time", &format!("{other:?}"))),
        }
    }

    /// The next reply, which must be a [`ReadOut::Get`].
    pub fn get(&mut self) -> StoreResult<(Option<String>, u64)> {
        match self.next_out("get")? {
            ReadOut::Get(v, rev) => Ok((v, rev)),
            other => Err(shape_error("get", &format!("{other:?}"))),
        }
    }

    /// The next reply, which must be a [`ReadOut::Snapshot`].
    pub fn snapshot(&mut self) -> StoreResult<MapSnapshot> {
        match self.next_out("snapshot")? {
            ReadOut::Snapshot(s) => Ok(s),
            other => Err(shape_error("snapshot", &format!("{other:?}"))),
        }
    }

    /// The next reply, which must be a [`ReadOut::Scan`].
    pub fn scan(&mut self) -> StoreResult<MapScan> {
        match self.next_out("scan")? {
            ReadOut::Scan(s) => Ok(s),
            other => Err(shape_error("scan", &format!("{other:?}"))),
        }
    }
}

fn shape_error(want: &str, got: &str) -> StoreError {
    let got: String = got.chars().take(64).collect();
    StoreError::corrupt("reads", format!("expected a {want} reply in the batch, got {got}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_taken_in_order_and_a_wrong_shape_is_typed() {
        let mut outs = ReadOuts::new(vec![ReadOut::Time(5), ReadOut::Get(None, 2), ReadOut::Time(6)]);
        assert_eq!(outs.time().ok(), Some(5));
        assert_eq!(outs.get().ok(), Some((None, 2)));
        assert!(matches!(outs.snapshot(), Err(StoreError::Corrupt { .. })));
        assert!(matches!(outs.scan(), Err(StoreError::Corrupt { .. })), "past the end is an error too");
    }

    #[test]
    fn a_batch_is_validated_like_its_single_reads() {
        let scan = |count| Read::Scan { map: "m".into(), cursor: "0".into(), count };
        assert!(check_reads(&[Read::Time, scan(1)]).is_ok());
        assert!(matches!(check_reads(&[scan(0)]), Err(StoreError::Invalid { .. })));
        assert!(matches!(check_reads(&[Read::Snapshot { map: String::new() }]), Err(StoreError::Invalid { .. })));
        assert!(matches!(check_reads(&vec![Read::Time; READS_MAX + 1]), Err(StoreError::Invalid { .. })));
        assert!(check_reads(&vec![Read::Time; READS_MAX]).is_ok());
    }
}
