//! How many whole-map snapshots keel's nodes read to rebuild a replica, counted from the debug
//! events keel logs for each (`job_table_rebuilt` with its `why`, `keepalive_follower_resynced`):
//! a subscriber interested in those two events only, so every other log call site stays off.

use std::sync::atomic::{AtomicU64, Ordering};

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber, span};

/// Why a job table is rebuilt (keel's `why` field), in the order of [`JOB_TABLE_REBUILDS`].
const WHYS: [&str; 4] = ["hole", "gap", "sweep", "start"];
/// Rebuilds of a node's job table from a whole snapshot of the job map, by [`WHYS`] (the last
/// slot: any other reason).
static JOB_TABLE_REBUILDS: [AtomicU64; WHYS.len() + 1] = [const { AtomicU64::new(0) }; WHYS.len() + 1];
/// Rebuilds of a node's keep-alive replica from a whole snapshot of the keep-alive map.
static KEEPALIVE_RESYNCS: AtomicU64 = AtomicU64::new(0);

/// Whole snapshots read so far, by map.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Snapshots {
    /// Of the job map, by [`WHYS`] (then any other reason).
    pub jobs_by_why: [u64; WHYS.len() + 1],
    pub keepalive: u64,
}

impl Snapshots {
    /// Counted so far (by every node of this process).
    pub fn now() -> Self {
        Snapshots {
            jobs_by_why: std::array::from_fn(|i| JOB_TABLE_REBUILDS[i].load(Ordering::Relaxed)),
            keepalive: KEEPALIVE_RESYNCS.load(Ordering::Relaxed),
        }
    }

    /// What was counted since `before`.
    pub fn since(self, before: Snapshots) -> Snapshots {
        Snapshots {
            jobs_by_why: std::array::from_fn(|i| self.jobs_by_why[i] - before.jobs_by_why[i]),
            keepalive: self.keepalive - before.keepalive,
        }
    }

    /// Of the job map, whatever the reason.
    pub fn jobs(&self) -> u64 {
        self.jobs_by_why.iter().sum()
    }

    /// `hole 1, sweep 2`: the job map's by reason, those counted only.
    pub fn jobs_why(&self) -> String {
        let names = WHYS.iter().copied().chain(["other"]);
        let parts: Vec<String> =
            names.zip(self.jobs_by_why).filter(|(_, n)| *n > 0).map(|(w, n)| format!("{w} {n}")).collect();
        parts.join(", ")
    }
}

/// Install the counting subscriber for the whole process. Returns false if another one was
/// installed first (then nothing is counted).
pub fn install() -> bool {
    tracing::subscriber::set_global_default(Counter).is_ok()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Counted {
    JobTable,
    Keepalive,
}

fn counted(m: &Metadata<'_>) -> Option<Counted> {
    if !m.is_event() || m.target() != "keel::pool" {
        return None;
    }
    match m.name() {
        "job_table_rebuilt" => Some(Counted::JobTable),
        "keepalive_follower_resynced" => Some(Counted::Keepalive),
        _ => None,
    }
}

/// The slot of [`JOB_TABLE_REBUILDS`] an event's `why` field names.
#[derive(Default)]
struct Why(Option<usize>);

impl Visit for Why {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "why" {
            self.0 = WHYS.iter().position(|w| *w == value);
        }
    }

    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

struct Counter;

impl Subscriber for Counter {
    fn register_callsite(&self, m: &'static Metadata<'static>) -> Interest {
        if counted(m).is_some() { Interest::always() } else { Interest::never() }
    }

    fn enabled(&self, m: &Metadata<'_>) -> bool {
        counted(m).is_some()
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::DEBUG)
    }

    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1) // never called: no span is enabled
    }

    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}

    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

    fn event(&self, e: &Event<'_>) {
        match counted(e.metadata()) {
            Some(Counted::JobTable) => {
                let mut why = Why::default();
                e.record(&mut why);
                JOB_TABLE_REBUILDS[why.0.unwrap_or(WHYS.len())].fetch_add(1, Ordering::Relaxed);
            }
            Some(Counted::Keepalive) => {
                KEEPALIVE_RESYNCS.fetch_add(1, Ordering::Relaxed);
            }
            None => {}
        }
    }

    fn enter(&self, _: &span::Id) {}

    fn exit(&self, _: &span::Id) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_two_named_events_only() {
        let before = Snapshots::now();
        tracing::subscriber::with_default(Counter, || {
            tracing::debug!(name: "job_table_rebuilt", target: "keel::pool", why = "hole", "rebuilt");
            tracing::debug!(name: "keepalive_follower_resynced", target: "keel::pool", "resynced");
            tracing::debug!(name: "job_table_rebuilt", target: "elsewhere", why = "hole", "not keel's");
            tracing::warn!(target: "keel::pool", "another event");
        });
        let got = Snapshots::now().since(before);
        assert_eq!(got, Snapshots { jobs_by_why: [1, 0, 0, 0, 0], keepalive: 1 });
        assert_eq!((got.jobs(), got.jobs_why().as_str()), (1, "hole 1"));
    }
}
