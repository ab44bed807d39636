//! When a node's clock is out of the configured drift bound: the one time a keel timing rule
//! (a lease's or a worker's local deadline) may break by design, so the rules that judge those
//! deadlines excuse that node's own belief, never another's.

use std::collections::BTreeMap;

use crate::check::Span;
use crate::history::{Event, Who, WorldEv};

/// The slowest rate a stall is timed at: a clock whose rate is said to be near zero stalls
/// past any run, and the span then ends with the run.
const STALL_RATE_MIN: f64 = 0.01;

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
    // Each node's clock rate in force (the heal sets every clock back to 1).
    let mut rate: BTreeMap<Who, f64> = BTreeMap::new();
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
        // A stall lasts until the clock has run the jump's length again: at rate r that takes
        // the length / r of global time (pool seed 1237 of poolfeed: a 3.4 s jump back at rate
        // 0.926 stalled the clock 3.7 s, and a stall timed at rate 1 ended 275 ms early, so P7
        // fired on a worker whose fence the stall had delayed). A rate change during a stall
        // re-times what is left of it.
        if let Some(WorldEv::ClockRate { rate_ppm, .. }) = e.world() {
            let new = (*rate_ppm as f64 / 1e6).max(STALL_RATE_MIN);
            let old = rate.insert(e.node, new).unwrap_or(1.0);
            if let Some(o) = open.get_mut(&e.node).filter(|o| o.stall_until > t) {
                let left_local = (o.stall_until - t) as f64 * old;
                o.stall_until = t + (left_local / new).ceil() as u64;
            }
        }
        if matches!(e.world(), Some(WorldEv::Heal {})) {
            rate.clear();
        }
        match e.world() {
            Some(WorldEv::ClockRate { beyond: true, .. }) => open.entry(e.node).or_insert(fresh).beyond_rate = true,
            Some(WorldEv::ClockJump { delta_ms, .. }) if *delta_ms < 0 => {
                let r = rate.get(&e.node).copied().unwrap_or(1.0);
                let o = open.entry(e.node).or_insert(fresh);
                let stall_us = (delta_ms.unsigned_abs() * 1000) as f64 / r;
                o.stall_until = o.stall_until.max(t + stall_us.ceil() as u64);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::test_history::at;

    /// A backward jump stalls the clock until it has run the jump's length again, at the rate in
    /// force: 3 s back at rate 0.5 is 6 s of global time; a rate change re-times the rest.
    #[test]
    fn a_stall_lasts_the_jump_at_the_clocks_rate() {
        let n = Who::Node(0);
        let rate = |t, ppm| at(t, n, WorldEv::ClockRate { rate_ppm: ppm, beyond: false });
        let jump = at(1_000, n, WorldEv::ClockJump { delta_ms: -3_000 });
        let spans = out_of_bound(&[rate(0, 500_000), jump.clone()], 60_000_000);
        assert_eq!(spans[&n], vec![Span { start: 1_000_000, end: 7_000_000 }]);
        // Back to rate 1 at 4 s: 1.5 s of the stall's clock time left, run at rate 1.
        let spans = out_of_bound(&[rate(0, 500_000), jump.clone(), rate(4_000, 1_000_000)], 60_000_000);
        assert_eq!(spans[&n], vec![Span { start: 1_000_000, end: 5_500_000 }]);
        // At rate 1 throughout: the jump's own length.
        assert_eq!(out_of_bound(&[jump], 60_000_000)[&n], vec![Span { start: 1_000_000, end: 4_000_000 }]);
    }
}
