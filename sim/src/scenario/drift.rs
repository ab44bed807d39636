//! When a node's clock is out of the configured drift bound: the one time a keel timing rule
//! (a lease's or a worker's local deadline) may break by design, so the rules that judge those
//! deadlines excuse that node's own belief, never another's.

use std::collections::BTreeMap;

use crate::check::Span;
use crate::history::{Event, Who, WorldEv};

/// Per node, the spans during which its clock was out of the bound: from the moment it leaves
/// it (a rate beyond the bound, or a backward jump, which stalls the monotonic clock) until it
/// is back within it (the rate within it again, or the heal, and every stall over; the end of
/// the run if never). A backward jump while a rate beyond the bound is in force does not bring
/// the clock back (lease seeds 1446 and 1762: the jump's end closed the excuse of a node still
/// at 0.79 and 0.54, and S1 fired on its belief).
pub fn out_of_bound(events: &[Event], end_us: u64) -> BTreeMap<Who, Vec<Span>> {
    /// A node whose clock left the bound.
    struct Out {
        since: u64,
        /// A rate beyond the bound is in force.
        beyond_rate: bool,
        /// When the rate last came back within the bound.
        rate_back: u64,
        /// The latest stall (backward jump) ends here.
        stall_until: u64,
    }
    impl Out {
        fn back(&self) -> Option<u64> {
            (!self.beyond_rate).then(|| self.rate_back.max(self.stall_until))
        }
    }
    let mut open: BTreeMap<Who, Out> = BTreeMap::new();
    let mut out: BTreeMap<Who, Vec<Span>> = BTreeMap::new();
    for e in events {
        let t = e.t_us;
        open.retain(|node, o| match o.back() {
            Some(back) if back <= t => {
                out.entry(*node).or_default().push(Span { start: o.since, end: back });
                false
            }
            _ => true,
        });
        let fresh = Out { since: t, beyond_rate: false, rate_back: t, stall_until: t };
        match e.world() {
            Some(WorldEv::ClockRate { beyond: true, .. }) => open.entry(e.node).or_insert(fresh).beyond_rate = true,
            Some(WorldEv::ClockJump { delta_ms, .. }) if *delta_ms < 0 => {
                let o = open.entry(e.node).or_insert(fresh);
                o.stall_until = o.stall_until.max(t + delta_ms.unsigned_abs() * 1000);
            }
            Some(WorldEv::ClockRate { beyond: false, .. }) => {
                if let Some(o) = open.get_mut(&e.node).filter(|o| o.beyond_rate) {
                    (o.beyond_rate, o.rate_back) = (false, t);
                }
            }
            Some(WorldEv::Heal {}) => {
                for o in open.values_mut().filter(|o| o.beyond_rate) {
                    (o.beyond_rate, o.rate_back) = (false, t);
                }
            }
            _ => {}
        }
    }
    for (node, o) in open {
        out.entry(node).or_default().push(Span { start: o.since, end: o.back().map_or(end_us, |b| b.min(end_us)) });
    }
    out
}
