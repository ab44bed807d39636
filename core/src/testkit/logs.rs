//! A `tracing` subscriber that keeps what keel logs: each event's level, target and `kind`
//! field. Install it with `tracing::subscriber::set_default` (or `with_default`) on the thread
//! a test runs on.

use std::sync::{Arc, Mutex, MutexGuard};

/// One logged event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogLine {
    /// Its level.
    pub level: Option<tracing::Level>,
    /// Its target (`keel::lease`, `keel::pool`, …).
    pub target: String,
    /// Its `kind` field (empty: none).
    pub kind: String,
}

/// Keeps every event logged while installed (cloned handles share the lines).
///
/// A test that an alert of a user's service reaches the operator at `warn`:
///
/// ```
/// use keel::testkit::LogCapture;
///
/// let logs = LogCapture::default();
/// tracing::subscriber::with_default(logs.clone(), || {
///     // the code under test, which logs through `tracing`
///     tracing::warn!(target: "my_service", kind = "queue_full", "queue full; dropping");
/// });
/// assert_eq!(logs.count("queue_full"), 1);
/// assert_eq!(logs.last().and_then(|l| l.level), Some(tracing::Level::WARN));
/// ```
#[derive(Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<LogLine>>>);

impl LogCapture {
    fn lines(&self) -> MutexGuard<'_, Vec<LogLine>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many events of `kind` were logged.
    pub fn count(&self, kind: &str) -> usize {
        self.lines().iter().filter(|l| l.kind == kind).count()
    }

    /// The last event logged.
    pub fn last(&self) -> Option<LogLine> {
        self.lines().last().cloned()
    }
}

impl tracing::field::Visit for LogLine {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "kind" {
            value.clone_into(&mut self.kind);
        }
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "kind" {
            self.kind = format!("{value:?}").trim_matches('"').to_owned();
        }
    }
}

impl tracing::Subscriber for LogCapture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, e: &tracing::Event<'_>) {
        let meta = e.metadata();
        let mut line = LogLine { level: Some(*meta.level()), target: meta.target().to_owned(), kind: String::new() };
        e.record(&mut line);
        self.lines().push(line);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}
