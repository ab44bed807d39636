//! The recorded history of one run: every protocol-relevant event with its node and simulated time.
//!
//! Core code reports through `tracing` (events that carry a `kind` field, target `keel::…`);
//! the simulator's own components (store server, nemesis, resources) append directly. The
//! [`Recorder`] layer tags each event with the madsim node it ran on, read from the `node` span
//! madsim enters around every task poll.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event as TEvent, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// One recorded event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Simulated microseconds since the run started.
    pub t_us: u64,
    /// The node it happened on (`store`, `n0`, …, `nemesis`, `world`).
    pub node: String,
    /// What happened (`held`, `lost`, `grant`, `store_crash`, …).
    pub kind: String,
    /// Structured fields, sorted.
    pub fields: BTreeMap<String, String>,
}

impl Event {
    /// A field parsed as u64.
    pub fn u64(&self, k: &str) -> Option<u64> {
        self.fields.get(k).and_then(|v| v.parse().ok())
    }
    /// A field as text.
    pub fn str(&self, k: &str) -> Option<&str> {
        self.fields.get(k).map(String::as_str)
    }
    /// One canonical line (the unit of the trace hash).
    pub fn line(&self) -> String {
        let mut s = format!("{:>12.6}s {:<8} {}", self.t_us as f64 / 1e6, self.node, self.kind);
        for (k, v) in &self.fields {
            let _ = write!(s, " {k}={v}");
        }
        s
    }
}

/// Shared, append-only history of a run.
#[derive(Clone, Default)]
pub struct History {
    inner: Arc<Mutex<HistoryInner>>,
}

#[derive(Default)]
struct HistoryInner {
    origin: Option<tokio::time::Instant>,
    events: Vec<Event>,
}

/// Most events one run may record; past it the run fails loudly instead of eating memory.
pub const MAX_EVENTS: usize = 2_000_000;

impl History {
    /// Start the clock of the history at the current simulated instant.
    pub fn start(&self) {
        self.lock().origin = Some(tokio::time::Instant::now());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HistoryInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Simulated microseconds since [`start`](History::start).
    pub fn now_us(&self) -> u64 {
        let origin = self.lock().origin;
        origin.map_or(0, |o| u64::try_from(o.elapsed().as_micros()).unwrap_or(u64::MAX))
    }

    /// Append an event.
    pub fn record(&self, node: &str, kind: &str, fields: &[(&str, String)]) {
        let t_us = self.now_us();
        let fields = fields.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        self.push(Event { t_us, node: node.to_owned(), kind: kind.to_owned(), fields });
    }

    fn push(&self, e: Event) {
        let mut h = self.lock();
        if h.events.len() < MAX_EVENTS {
            h.events.push(e);
        } else if h.events.len() == MAX_EVENTS {
            h.events.push(Event {
                t_us: e.t_us,
                node: "world".into(),
                kind: "history_full".into(),
                fields: BTreeMap::new(),
            });
        }
    }

    /// A copy of every event so far.
    pub fn events(&self) -> Vec<Event> {
        self.lock().events.clone()
    }
}

/// FNV-1a over the canonical lines: the run's trace hash.
pub fn trace_hash(events: &[Event]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for e in events {
        for b in e.line().bytes().chain(std::iter::once(b'\n')) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The first index where two histories differ, with both lines (None if identical).
pub fn first_divergence(a: &[Event], b: &[Event]) -> Option<(usize, String, String)> {
    let n = a.len().max(b.len());
    (0..n).find_map(|i| {
        let (la, lb) = (a.get(i).map(Event::line), b.get(i).map(Event::line));
        (la != lb).then(|| (i, la.unwrap_or_else(|| "<end>".into()), lb.unwrap_or_else(|| "<end>".into())))
    })
}

/// A `tracing` layer that appends every event with a `kind` field to a [`History`].
pub struct Recorder {
    history: History,
}

impl Recorder {
    /// Record into `history`.
    pub fn new(history: History) -> Self {
        Recorder { history }
    }
}

struct NodeName(String);

#[derive(Default)]
struct Fields {
    kind: Option<String>,
    name: Option<String>,
    fields: BTreeMap<String, String>,
}

impl Visit for Fields {
    fn record_str(&mut self, f: &Field, v: &str) {
        match f.name() {
            "kind" => self.kind = Some(v.to_owned()),
            "name" => self.name = Some(v.to_owned()),
            "message" => {}
            n => {
                self.fields.insert(n.to_owned(), v.to_owned());
            }
        }
    }
    fn record_debug(&mut self, f: &Field, v: &dyn std::fmt::Debug) {
        self.record_str(f, &format!("{v:?}"));
    }
    fn record_u64(&mut self, f: &Field, v: u64) {
        self.record_str(f, &v.to_string());
    }
    fn record_i64(&mut self, f: &Field, v: i64) {
        self.record_str(f, &v.to_string());
    }
    fn record_bool(&mut self, f: &Field, v: bool) {
        self.record_str(f, &v.to_string());
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != "node" {
            return;
        }
        let mut f = Fields::default();
        attrs.record(&mut f);
        if let (Some(name), Some(span)) = (f.name, ctx.span(id)) {
            span.extensions_mut().insert(NodeName(name));
        }
    }

    fn on_event(&self, event: &TEvent<'_>, ctx: Context<'_, S>) {
        let target = event.metadata().target();
        if !target.starts_with("keel") {
            return;
        }
        let mut f = Fields::default();
        event.record(&mut f);
        let Some(kind) = f.kind else { return };
        let node = ctx
            .event_scope(event)
            .and_then(|scope| scope.from_root().find_map(|s| s.extensions().get::<NodeName>().map(|n| n.0.clone())))
            .unwrap_or_else(|| "?".into());
        let t_us = self.history.now_us();
        self.history.push(Event { t_us, node, kind, fields: f.fields });
    }
}
