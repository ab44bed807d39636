//! One history format for every process of a chaos run: JSON lines of typed events, each stamped
//! with `CLOCK_MONOTONIC` (one clock for every process of the machine), written with one `write`
//! per line so a `kill -9` loses at most the line being written.
//!
//! A line holds either keel's own typed event ([`Ev::Keel`]: `keel::observe::Event`, serialized
//! with keel's feature `serde`, the type the simulator records) or a fact of the workload, the
//! runner or the nemesis. [`View`] presents a merged history to the shared rules (`keel-checks`).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::plan::Fault;

/// Nanoseconds of `CLOCK_MONOTONIC`: the same clock in every process of this machine (it keeps
/// counting while a process is stopped), which is what makes instants of two processes comparable.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_MONOTONIC)");
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(ts.tv_nsec).unwrap_or(0)
}

/// What one process saw or did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Ev {
    // -- every app process --
    /// The process started (incarnation 0 first, +1 per restart by the nemesis).
    ProcStarted { incarnation: u32, pid: u32 },
    /// A graceful stop was asked (SIGTERM).
    Stopping,
    /// The graceful stop finished; the process exits 0 next.
    Stopped,
    /// keel's own typed event (`keel::observe`), as the core emitted it on this process' thread:
    /// the same type the simulator records, judged by the same rules (`keel-checks`).
    Keel(keel::observe::Event<'static>),
    // -- lease processes --
    /// The result of a protected write at the runner's fenced register, as the writer saw it.
    Wrote { fence: u64, accepted: bool },
    // -- replicated-map processes --
    /// `set_and_wait` of this process' own key returned `rev`; `visible`: right then the local
    /// replica had the value and a revision ≥ `rev` (R3).
    MapSet { key: String, rev: u64, visible: bool, replica_rev: u64 },
    /// The local replica's revision, sampled by the workload when it changed (a read for R2).
    MapRead { rev: u64 },
    /// The replica's content at the graceful stop (writes quiesced since SIGUSR1): revision,
    /// entries and a digest of every key and value.
    MapFinal { rev: u64, entries: usize, digest: u64 },
    /// SIGUSR1: this process stopped writing.
    Quiesced,
    /// The process' store was sent map operation `id` (unique in the node's history).
    StoreInvoke { id: u64, op: keel_checks::linearize::StoreOp },
    /// The store answered operation `id` (an error of unknown outcome records nothing).
    StoreReturn { id: u64, ret: keel_checks::linearize::StoreRet },
    // -- completer processes --
    /// A producer's `complete` returned Ok: the completer accepted `key` (run `run` is keel's).
    CompletionAccepted { key: String },
    /// The process' subscriber received the completion event of `key`.
    CompletionDelivered { key: String },
    /// The subscriber's channel closed (after the subscription manager's stop); `dropped`:
    /// events it dropped on overflow (documented, counted apart).
    SubscriberClosed { dropped: u64 },
    /// `Completer::stop` returned: `clean` is `Ok(())`, else its `StopError` as text.
    CompleterStopped { clean: bool, error: Option<String> },
    // -- the dispatcher --
    /// The dispatcher added the job (first time).
    Dispatched { job: String },
    /// The job was gone from the store (lost with Redis' data) and was dispatched again.
    Redispatched { job: String },
    /// The pool-wide completion feed reported the job's completion.
    Completed { job: String, attempt: u64 },
    /// The dispatcher's final wait ended with jobs still missing.
    GaveUp { missing: usize },
    // -- the runner --
    /// The register accepted or rejected `writer`'s write (the resource's own record).
    RegWrite { key: String, writer: String, fence: u64, accepted: bool },
    /// A fault of the plan begins (`target`: the process it hits, resolved at run time).
    Fault { cycle: u32, fault: Fault, target: Option<String> },
    /// The fault of `cycle` was healed.
    Healed { cycle: u32 },
    /// The runner sent SIGKILL to `node`.
    Killed { node: String },
    /// The runner sent SIGSTOP to `node`.
    Frozen { node: String },
    /// The runner sent SIGCONT to `node`.
    Thawed { node: String },
    /// The proxy of `node` starts (`on`) or stops dropping its traffic.
    Partition { node: String, on: bool },
    /// Redis is down (killed), or up again (`data`: with its AOF).
    RedisDown,
    /// Redis is up again.
    RedisUp { data: bool },
    /// `CLIENT PAUSE` for `ms`.
    RedisPaused { ms: u64 },
    /// A child process exited by itself (or after our signal) with this status.
    Exited { node: String, code: Option<i32>, signal: Option<i32> },
    /// The final settle began: no more faults.
    FinalSettle,
}

/// One line of a history file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// `CLOCK_MONOTONIC` in nanoseconds.
    pub t: u64,
    /// The process (`lease-0`, `worker-2`, `dispatcher`, `runner`, `register`).
    pub node: String,
    /// What happened (nested, not flattened: serde's flatten cannot round-trip every variant).
    pub ev: Ev,
}

/// A merged history as the shared rules read it: µs since the first line, and the node each
/// entry is about (the runner's `Killed`/`Exited` are about the process they name).
pub struct View<'a> {
    t_us: u64,
    node: &'a str,
    line: &'a Line,
}

impl<'a> View<'a> {
    /// The views of `lines` (merged, in order).
    pub fn of(lines: &'a [Line]) -> Vec<View<'a>> {
        let t0 = lines.first().map_or(0, |l| l.t);
        lines
            .iter()
            .map(|l| {
                let node = match &l.ev {
                    Ev::Killed { node } | Ev::Exited { node, .. } => node.as_str(),
                    _ => l.node.as_str(),
                };
                View { t_us: (l.t - t0) / 1_000, node, line: l }
            })
            .collect()
    }

    /// The line.
    pub fn line(&self) -> &'a Line {
        self.line
    }
}

impl<'a> keel_checks::Entry for View<'a> {
    type Node = &'a str;
    fn t_us(&self) -> u64 {
        self.t_us
    }
    fn node(&self) -> &&'a str {
        &self.node
    }
    fn keel(&self) -> Option<&keel::observe::Event<'static>> {
        match &self.line.ev {
            Ev::Keel(e) => Some(e),
            _ => None,
        }
    }
    fn fact(&self) -> Option<keel_checks::Fact> {
        use keel_checks::Fact;
        match &self.line.ev {
            Ev::ProcStarted { .. } => Some(Fact::NodeStart),
            Ev::Killed { .. } | Ev::Exited { .. } => Some(Fact::NodeCrash),
            // Recorded before the kill: no replica can resync against the emptied store earlier.
            Ev::Fault { fault: Fault::RedisKillLose { .. }, .. } => Some(Fact::StoreLostData),
            _ => None,
        }
    }
}

/// Appends lines to one history file, one `write` per line.
#[derive(Debug)]
pub struct Recorder {
    node: String,
    file: Mutex<File>,
}

impl Recorder {
    /// Open (append, create) `path` for `node`.
    pub fn open(path: &Path, node: &str) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Recorder { node: node.to_owned(), file: Mutex::new(file) })
    }

    /// Record `ev` now.
    pub fn rec(&self, ev: Ev) {
        self.rec_as(&self.node, ev);
    }

    /// Record `ev` now on behalf of `node` (the runner writes for the register and its children).
    pub fn rec_as(&self, node: &str, ev: Ev) {
        let line = Line { t: now_ns(), node: node.to_owned(), ev };
        let mut text = serde_json::to_string(&line).unwrap_or_default();
        text.push('\n');
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        // A failed write is loud: a history with holes must not pass as complete.
        if let Err(e) = f.write_all(text.as_bytes()) {
            eprintln!("keel-chaos: history write failed for {node}: {e}");
        }
    }
}

/// Read every history file of `dir` and merge the lines by timestamp (stable: a file's own order
/// is kept for equal stamps). A torn last line (a process killed mid-write) is skipped and counted.
pub fn merge(dir: &Path) -> std::io::Result<(Vec<Line>, usize)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    let (mut lines, mut torn) = (Vec::new(), 0usize);
    for f in files {
        for l in BufReader::new(File::open(&f)?).lines() {
            match serde_json::from_str::<Line>(&l?) {
                Ok(line) => lines.push(line),
                Err(_) => torn += 1,
            }
        }
    }
    lines.sort_by_key(|l| l.t);
    Ok((lines, torn))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_line_round_trips() {
        let evs = [
            Ev::Stopped,
            Ev::Exited { node: "a".into(), code: None, signal: Some(9) },
            Ev::Fault { cycle: 1, fault: Fault::ClientPause { ms: 5 }, target: None },
            Ev::Keel(keel::observe::Event::Lease(keel::observe::LeaseEvent::Lost {
                lease: "l".into(),
                owner: "o".into(),
                fence: 3,
                reason: keel::lease::LostReason::Deadline,
            })),
            Ev::Keel(keel::observe::Event::Pool(keel::observe::PoolEvent::Moved {
                kind: keel::observe::MoveKind::OrphanRequeued,
                job: "j".into(),
                from: "w1".into(),
                worker: "w2".into(),
                attempt: 2,
                now_ms: 10,
                cleaned: "w1".into(),
            })),
            Ev::RegWrite { key: "k".into(), writer: "w".into(), fence: u64::MAX, accepted: false },
            Ev::StoreInvoke {
                id: 1 << 40,
                op: keel_checks::linearize::StoreOp::Txn {
                    map: "m".into(),
                    guards: vec![("k".into(), keel::store::Expect::Value("v".into()))],
                    writes: vec![("k".into(), None)],
                },
            },
            Ev::StoreReturn {
                id: 1,
                ret: keel_checks::linearize::StoreRet::Snapshot(keel::store::MapSnapshot {
                    rev: 3,
                    entries: [("k".to_owned(), "v".to_owned())].into(),
                    ..Default::default()
                }),
            },
            Ev::StoreReturn { id: 2, ret: keel_checks::linearize::StoreRet::NotApplied },
        ];
        for ev in evs {
            let line = Line { t: 1, node: "n".into(), ev };
            let text = serde_json::to_string(&line).expect("serialize");
            assert_eq!(serde_json::from_str::<Line>(&text).expect("parse"), line, "{text}");
        }
    }
}
