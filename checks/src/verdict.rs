//! Verdicts: invariant violations and "sometimes" coverage.

use std::collections::BTreeSet;
use std::fmt;

/// A broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The invariant id (`S1`, `R3`, `V1`, `P1`, `stall`, `panic`, …).
    pub invariant: &'static str,
    /// When it was observed: µs from the history's origin (simulated time in the simulator).
    pub t_us: u64,
    /// What happened.
    pub detail: String,
}

impl Violation {
    /// A violation of `invariant` at `t_us`.
    pub fn new(invariant: &'static str, t_us: u64, detail: impl Into<String>) -> Self {
        Violation { invariant, t_us, detail: detail.into() }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} violated at {:.6}s: {}", self.invariant, self.t_us as f64 / 1e6, self.detail)
    }
}

/// "Sometimes" situations reached by one run.
pub type Coverage = BTreeSet<&'static str>;

/// A time interval `[start, end)` in µs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// Start.
    pub start: u64,
    /// End (exclusive).
    pub end: u64,
}

impl Span {
    /// Overlap of two spans in µs.
    pub fn overlap(&self, o: &Span) -> Option<Span> {
        let s = Span { start: self.start.max(o.start), end: self.end.min(o.end) };
        (s.start < s.end).then_some(s)
    }

    /// Length of `self` not covered by any of `holes`.
    pub fn len_outside(&self, holes: &[Span]) -> u64 {
        self.outside(holes).iter().map(|g| g.end - g.start).sum()
    }

    /// The parts of `self` not covered by any of `holes`, in order.
    pub fn outside(&self, holes: &[Span]) -> Vec<Span> {
        let mut covered: Vec<Span> = holes.iter().filter_map(|h| h.overlap(self)).collect();
        covered.sort_by_key(|s| s.start);
        let mut gaps = Vec::new();
        let mut cursor = self.start;
        for c in covered {
            if c.start > cursor {
                gaps.push(Span { start: cursor, end: c.start });
            }
            cursor = cursor.max(c.end);
        }
        if self.end > cursor {
            gaps.push(Span { start: cursor, end: self.end });
        }
        gaps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_outside_holes() {
        let a = Span { start: 0, end: 100 };
        assert_eq!(a.overlap(&Span { start: 50, end: 150 }), Some(Span { start: 50, end: 100 }));
        assert_eq!(a.overlap(&Span { start: 100, end: 150 }), None);
        assert_eq!(a.len_outside(&[Span { start: 10, end: 20 }, Span { start: 15, end: 30 }]), 80);
        assert_eq!(a.len_outside(&[]), 100);
        let gaps = a.outside(&[Span { start: 30, end: 40 }, Span { start: 10, end: 20 }, Span { start: 35, end: 120 }]);
        assert_eq!(gaps, vec![Span { start: 0, end: 10 }, Span { start: 20, end: 30 }]);
        // Holes that abut the span's start or each other leave no empty gap.
        let gaps = a.outside(&[Span { start: 0, end: 10 }, Span { start: 10, end: 20 }, Span { start: 50, end: 100 }]);
        assert_eq!(gaps, vec![Span { start: 20, end: 50 }]);
    }
}
