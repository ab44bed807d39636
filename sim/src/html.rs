//! A picture of one run: a self-contained HTML timeline (`cargo sim replay … --html FILE`).
//!
//! One file, no network: the page's script and style are embedded (`sim/src/html/`), and so is
//! the run, as JSON: one swimlane per node and one for the store (plus one for the nemesis),
//! belief intervals (`held` … `lost` of the core) and store grants, node down and frozen time
//! (from the timeline), every planned fault as a shaded window, every event as a tick coloured
//! by outcome, and each broken invariant as a vertical marker at its instant — the first one
//! carries `id="violation"`. Hover text is the event's own `line()` and `Debug` form, never a
//! re-parse. The page records `data-rendered="ok"` and the marker's box on `<body>` after
//! layout, so a headless browser can check that it rendered.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::history::{Ev, Event, ServerEv, Who, plain};
use crate::plan::Fault;
use crate::runner::RunOutcome;
use crate::shrink::duration_ms;
use crate::timeline::End;

/// Most events embedded in one page; past it the rest are left out (and the page says so).
pub const EVENTS_MAX: usize = 60_000;

const SCRIPT: &str = include_str!("html/timeline.js");
const STYLE: &str = include_str!("html/timeline.css");

/// A lane of the picture.
fn lane_name(w: Who) -> String {
    match w {
        Who::Store => "store".into(),
        Who::Node(i) => format!("n{i}"),
        Who::World | Who::Nemesis => "nemesis".into(),
    }
}

/// The event's kind (first word of its one-line form) and a coarse outcome for its colour.
fn kind_and_tone(ev: &Ev) -> (String, &'static str) {
    let text = ev.to_string();
    let kind = text.split_whitespace().next().unwrap_or_default().to_owned();
    // Contention (`acquire_refused`) and quarantine waits are the protocol working: not red.
    const BAD: [&str; 11] =
        ["failed", "lost", "crash", "dropped", "foreign", "backwards", "error", "timeout", "stall", "full", "rejected"];
    let tone = if BAD.iter().any(|b| kind.contains(b)) || text.contains("accepted=false") {
        "bad"
    } else if matches!(ev, Ev::World(_)) {
        "fault"
    } else if ["held", "grant", "accepted", "started", "renewed", "released", "complete"]
        .iter()
        .any(|g| kind.contains(g))
    {
        "good"
    } else {
        "plain"
    };
    (kind, tone)
}

/// The planned window of a fault: its lane, start and end (µs), label.
fn fault_window(at_ms: u64, f: &Fault, heal_us: u64) -> (String, u64, u64, String) {
    let start = at_ms * 1000;
    let end = duration_ms(f).map_or(heal_us, |d| (start + d * 1000).min(heal_us.max(start)));
    let lane = crate::shrink::node_of(f).map_or_else(|| "store".to_owned(), |n| format!("n{n}"));
    (lane, start, end, format!("fault at {at_ms} ms: {f:?}"))
}

/// The page of `out` (title says scenario, seed, mutant, verdict).
pub fn page(out: &RunOutcome) -> String {
    let nodes = out
        .timeline
        .nodes()
        .filter_map(Who::index)
        .max()
        .map_or(0, |m| m + 1)
        .max(out.plan.events.iter().filter_map(|e| crate::shrink::node_of(&e.fault)).max().map_or(0, |m| m + 1));
    let mut lanes: Vec<String> = vec!["store".into()];
    lanes.extend((0..nodes).map(|i| format!("n{i}")));
    lanes.push("nemesis".into());
    let end_us = out.sim_time.as_micros() as u64;

    let mut spans: Vec<Value> = Vec::new();
    for e in &out.plan.events {
        let (lane, start, end, label) = fault_window(e.at_ms, &e.fault, out.heal_us);
        spans.push(json!({"lane": lane, "start": start, "end": end, "cls": "fault", "label": label}));
    }
    for node in out.timeline.nodes() {
        let lane = lane_name(node);
        let lives = out.timeline.lives(node);
        for (k, l) in lives.iter().enumerate() {
            for p in &l.pauses {
                spans.push(json!({"lane": lane, "start": p.start, "end": p.end, "cls": "paused",
                    "label": format!("frozen (incarnation {})", l.incarnation)}));
            }
            if l.how == End::Crashed {
                let up_again = lives.get(k + 1).map_or(end_us, |n| n.start);
                spans.push(json!({"lane": lane, "start": l.end, "end": up_again, "cls": "down",
                    "label": format!("down after incarnation {}", l.incarnation)}));
            }
        }
    }
    spans.extend(belief_spans(&out.events, out, end_us));
    spans.extend(grant_spans(&out.events, end_us));

    let events: Vec<Value> = out
        .events
        .iter()
        .take(EVENTS_MAX)
        .map(|e| {
            let (kind, tone) = kind_and_tone(&e.ev);
            json!({"t": e.t_us, "lane": lane_name(e.node), "kind": kind, "tone": tone,
                "line": e.line(), "debug": format!("{:?}", e.ev)})
        })
        .collect();
    let violations: Vec<Value> = out
        .violations
        .iter()
        .map(|v| json!({"t": v.t_us, "invariant": v.invariant, "detail": v.detail, "line": v.to_string()}))
        .collect();
    let mutant = out.mutant.map_or("none".to_owned(), |m| format!("{m:?}"));
    let verdict = if out.passed() { "pass".to_owned() } else { format!("FAIL ({} violations)", out.violations.len()) };
    let title = format!("keel-sim: {} seed {} mutant {mutant}: {verdict}", out.scenario, out.seed);
    let data = json!({
        "title": title,
        "scenario": out.scenario,
        "seed": out.seed,
        "mutant": mutant,
        "end_us": end_us,
        "heal_us": out.heal_us,
        "lanes": lanes,
        "spans": spans,
        "events": events,
        "events_total": out.events.len(),
        "violations": violations,
        "plan": out.plan.to_string(),
        "replay": out.replay_line(),
    });
    // `</` inside a script element would end it: JSON allows `<\/`.
    let data = data.to_string().replace("</", "<\\/");
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>{}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n<script type=\"application/json\" id=\"run-data\">{data}</script>\n<script>\n{SCRIPT}</script>\n</body></html>\n",
        escape(&title)
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// What each node believed: from `held` to `lost` (or the end of that incarnation).
fn belief_spans(events: &[Event], out: &RunOutcome, end_us: u64) -> Vec<Value> {
    let mut open: BTreeMap<(Who, String, u64), u64> = BTreeMap::new();
    let mut spans = Vec::new();
    let close = |node: Who, lease: &str, fence: u64, start: u64, end: u64| {
        json!({"lane": lane_name(node), "start": start, "end": end, "cls": "belief",
            "label": format!("{node} believes it holds {lease} (fence {fence})")})
    };
    for e in events {
        use keel::observe::LeaseEvent as L;
        match e.lease() {
            Some(L::Held { lease, fence, .. }) => {
                open.entry((e.node, plain(lease).to_owned(), *fence)).or_insert(e.t_us);
            }
            Some(L::Lost { lease, fence, .. }) => {
                if let Some(start) = open.remove(&(e.node, plain(lease).to_owned(), *fence)) {
                    spans.push(close(e.node, plain(lease), *fence, start, e.t_us));
                }
            }
            _ => {}
        }
    }
    for ((node, lease, fence), start) in open {
        // A belief still open ends with the incarnation that held it.
        let end = out.timeline.life_at(node, start).map_or(end_us, |l| l.end);
        spans.push(close(node, &lease, fence, start, end));
    }
    spans
}

/// What the store granted: from a grant until it expires at the store (its last grant or
/// renewal plus the TTL), the next grant of that lease, or an unchecked delete of it, whichever
/// comes first (releases are not server events: a released grant is drawn to its expiry).
fn grant_spans(events: &[Event], end_us: u64) -> Vec<Value> {
    /// A grant drawn so far: to whom, its fence, since when, valid until.
    type Open = (Who, u64, u64, u64);
    let mut open: BTreeMap<String, Open> = BTreeMap::new();
    let mut spans = Vec::new();
    let close = |lease: &str, (to, fence, start, until): Open, end: u64| {
        json!({"lane": lane_name(to), "start": start, "end": end.min(until), "cls": "grant",
            "label": format!("store granted {lease} to {to} (fence {fence}); drawn until it expires at the store (as the store holds it after the last grant or renewal) or the next grant")})
    };
    for e in events {
        match e.server() {
            Some(ServerEv::Grant { lease, fence, valid_ms, to, .. }) => {
                let g = (*to, *fence, e.t_us, e.t_us + valid_ms * 1000);
                if let Some(g) = open.insert(lease.clone(), g) {
                    spans.push(close(lease, g, e.t_us));
                }
            }
            Some(ServerEv::Renewal { lease, fence, valid_ms, .. }) => {
                if let Some(g) = open.get_mut(lease)
                    && g.1 == *fence
                {
                    g.3 = g.3.max(e.t_us + valid_ms * 1000);
                }
            }
            Some(ServerEv::ForeignDelete { fence, .. }) => {
                let deleted: Vec<String> = open.iter().filter(|(_, g)| g.1 == *fence).map(|(l, _)| l.clone()).collect();
                for lease in deleted {
                    if let Some(g) = open.remove(&lease) {
                        spans.push(close(&lease, g, e.t_us));
                    }
                }
            }
            _ => {}
        }
    }
    for (lease, g) in open {
        spans.push(close(&lease, g, end_us));
    }
    spans
}
