//! How many whole-map snapshots keel's nodes read to rebuild a replica, counted from the debug
//! events keel logs for each (`job_table_rebuilt`, `keepalive_follower_resynced`): a
//! subscriber interested in those two events only, so every other log call site stays off.

use std::sync::atomic::{AtomicU64, Ordering};

use tracing::level_filters::LevelFilter;
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber, span};

/// Rebuilds of a node's job table from a whole snapshot of the job map.
static JOB_TABLE_REBUILDS: AtomicU64 = AtomicU64::new(0);
/// Rebuilds of a node's keep-alive replica from a whole snapshot of the keep-alive map.
static KEEPALIVE_RESYNCS: AtomicU64 = AtomicU64::new(0);

/// Whole snapshots read so far, by map.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Snapshots {
    pub jobs: u64,
    pub keepalive: u64,
}

impl Snapshots {
    /// Counted so far (by every node of this process).
    pub fn now() -> Self {
        Snapshots {
            jobs: JOB_TABLE_REBUILDS.load(Ordering::Relaxed),
            keepalive: KEEPALIVE_RESYNCS.load(Ordering::Relaxed),
        }
    }

    /// What was counted since `before`.
    pub fn since(self, before: Snapshots) -> Snapshots {
        Snapshots { jobs: self.jobs - before.jobs, keepalive: self.keepalive - before.keepalive }
    }
}

/// Install the counting subscriber for the whole process. Returns false if another one was
/// installed first (then nothing is counted).
pub fn install() -> bool {
    tracing::subscriber::set_global_default(Counter).is_ok()
}

fn counter(m: &Metadata<'_>) -> Option<&'static AtomicU64> {
    if !m.is_event() || m.target() != "keel::pool" {
        return None;
    }
    match m.name() {
        "job_table_rebuilt" => Some(&JOB_TABLE_REBUILDS),
        "keepalive_follower_resynced" => Some(&KEEPALIVE_RESYNCS),
        _ => None,
    }
}

struct Counter;

impl Subscriber for Counter {
    fn register_callsite(&self, m: &'static Metadata<'static>) -> Interest {
        if counter(m).is_some() { Interest::always() } else { Interest::never() }
    }

    fn enabled(&self, m: &Metadata<'_>) -> bool {
        counter(m).is_some()
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
        if let Some(c) = counter(e.metadata()) {
            c.fetch_add(1, Ordering::Relaxed);
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
            tracing::debug!(name: "job_table_rebuilt", target: "elsewhere", "not keel's");
            tracing::warn!(target: "keel::pool", "another event");
        });
        assert_eq!(Snapshots::now().since(before), Snapshots { jobs: 1, keepalive: 1 });
    }
}
