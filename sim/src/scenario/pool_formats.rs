//! **P111**: keel's decoders read the pool's stored values as their formats say, judged at each
//! audit over every value the store holds.
//!
//! Many pool rules and the auditor read the store's raw values through keel's own decoders
//! (`keel::pool::decode`): P5's overdue audit reads pending entries with `decode::pending`, P85
//! tombstones with `decode::tombstone`, the keep-alive rules beats with `decode::keepalive`. A
//! decoder that reads nothing blinds keel and the checker at once: hunt 48 A's survivors 783, 839
//! and 840 (a pending entry keel cannot parse) left expired dispatches never swept nor
//! re-dispatched, while the audit, reading through the same parser, saw no pending entry at all.
//! So the auditor reads each value a second time with the formats restated here, independently
//! of keel's code (`attempt|owner|payload`, `attempt|worker|ms`, `ms[|ttl_ms][|stopping]`,
//! `holder|expires_ms`), and a value on which keel's decoder and this one disagree is a
//! violation at the audit that read it. The store holds only values keel wrote (no run writes
//! garbage into the pool's maps), so both decoders must read every one.

use std::collections::BTreeMap;

use keel::pool::decode;

/// `attempt` as the formats write it: a decimal above 0.
fn attempt(s: &str) -> Option<u64> {
    s.parse().ok().filter(|a| *a > 0)
}

/// A job record `attempt|owner|payload`: `(attempt, owner)`.
fn job(v: &str) -> Option<(u64, String)> {
    let mut it = v.splitn(3, '|');
    let a = attempt(it.next()?)?;
    let owner = it.next()?;
    it.next()?;
    Some((a, owner.to_owned()))
}

/// A pending entry or a tombstone, `attempt|worker|ms` (the worker may hold no `|`, the last
/// two separators cut): `(attempt, worker, ms)`.
fn attempt_worker_ms(v: &str) -> Option<(u64, String, u64)> {
    let mut it = v.rsplitn(3, '|');
    let ms = it.next()?.parse().ok()?;
    let worker = it.next()?;
    Some((attempt(it.next()?)?, worker.to_owned(), ms))
}

/// A worker's beat `ms[|ttl_ms][|stopping]`: `(ms, ttl_ms, stopping)`; the dead marker is none.
fn keepalive(v: &str) -> Option<(u64, Option<u64>, bool)> {
    if v == decode::DEAD_MARKER {
        return None;
    }
    let (rest, stopping) = v.strip_suffix("|stopping").map_or((v, false), |r| (r, true));
    let (ms, ttl) = match rest.split_once('|') {
        Some((ms, ttl)) => (ms, Some(ttl.parse().ok().filter(|t| *t > 0)?)),
        None => (rest, None),
    };
    Some((ms.parse().ok()?, ttl, stopping))
}

/// A cleanup lock `holder|expires_ms`: `(holder, expires_ms)`.
fn cleanup_lock(v: &str) -> Option<(String, u64)> {
    let (holder, exp) = v.rsplit_once('|')?;
    Some((holder.to_owned(), exp.parse().ok()?))
}

/// One value keel's decoder read otherwise than its format says.
#[derive(Debug, PartialEq, Eq)]
pub struct Misread {
    /// Which decoder: `job`, `pending`, `tombstone`, `keepalive` or `cleanup_lock`.
    pub what: &'static str,
    pub key: String,
    pub raw: String,
    /// What keel's decoder read, and what the format says (debug renderings).
    pub keel: String,
    pub format: String,
}

fn compare<T: PartialEq + std::fmt::Debug>(
    out: &mut Vec<Misread>,
    what: &'static str,
    key: &str,
    raw: &str,
    keel: Option<T>,
    format: Option<T>,
) {
    if keel != format {
        let (keel, format) = (format!("{keel:?}"), format!("{format:?}"));
        out.push(Misread { what, key: key.to_owned(), raw: raw.to_owned(), keel, format });
    }
}

/// Every value of the job map (records `j/`, pending entries `p/`, tombstones `d/`), the
/// keep-alive map and the cleanup map on which keel's decoder and the format disagree.
pub fn misreads(
    jobs: &BTreeMap<String, String>,
    keepalives: &BTreeMap<String, String>,
    cleanup: &BTreeMap<String, String>,
) -> Vec<Misread> {
    let mut out = Vec::new();
    for (k, raw) in jobs {
        if k.starts_with("j/") {
            compare(&mut out, "job", k, raw, decode::job(raw), job(raw));
        } else if k.starts_with("p/") {
            compare(&mut out, "pending", k, raw, decode::pending(raw), attempt_worker_ms(raw));
        } else if k.starts_with("d/") {
            let format = attempt_worker_ms(raw).map(|(a, _, ms)| (a, ms));
            compare(&mut out, "tombstone", k, raw, decode::tombstone(raw), format);
        }
    }
    for (k, raw) in keepalives {
        compare(&mut out, "keepalive", k, raw, decode::keepalive(raw), keepalive(raw));
    }
    for (k, raw) in cleanup {
        compare(&mut out, "cleanup_lock", k, raw, decode::cleanup_lock(raw), cleanup_lock(raw));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    /// Values as keel writes them: both decoders read them alike.
    #[test]
    fn keels_values_read_alike() {
        let jobs = map(&[
            ("j/a", "3|n1.17.2|payload|with|bars"),
            ("j/b", "1||queued"),
            ("p/a", "3|n1.17.2|1767225600300"),
            ("d/c", "2|n0.17.1|1767225600100"),
            ("epoch", "whatever the marker holds"),
        ]);
        let keepalives = map(&[
            ("n1.17.2", "1767225600000|1500"),
            ("n0.17.1", "1767225600000|1500|stopping"),
            ("n2.17.1", "1767225600000"),
            ("n3.17.1", decode::DEAD_MARKER),
        ]);
        let cleanup = map(&[("n3.17.1", "n0.17.1|1767225603000")]);
        assert_eq!(misreads(&jobs, &keepalives, &cleanup), []);
    }

    /// A value the format reads and keel's decoder does not (or reads otherwise) is a misread.
    #[test]
    fn the_formats_read_what_keel_must() {
        assert_eq!(attempt_worker_ms("3|n1.17.2|1767225600300"), Some((3, "n1.17.2".to_owned(), 1_767_225_600_300)));
        assert_eq!(job("3|w|p|q"), Some((3, "w".to_owned())));
        assert_eq!(job("0|w|p"), None, "attempts start at 1");
        assert_eq!(keepalive("5|7|stopping"), Some((5, Some(7), true)));
        assert_eq!(keepalive("5"), Some((5, None, false)));
        assert_eq!(cleanup_lock("a|b|9"), Some(("a|b".to_owned(), 9)));
        // A value keel's decoder reads otherwise (hunt 48 A's survivors 783, 839, 840: a
        // pending entry keel cannot parse) is a misread naming both readings.
        let raw = "3|n1.17.2|1767225600300";
        let mut out = Vec::new();
        compare(&mut out, "pending", "p/x", raw, None, attempt_worker_ms(raw));
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].what, out[0].keel.as_str()), ("pending", "None"));
    }
}
