//! Verdicts: invariant violations and "sometimes" coverage. The types live in `keel-checks`, the
//! rules' crate shared with the chaos lane (real processes over real Redis): one `Violation` for
//! every checker, simulated or real.

pub use keel_checks::{Coverage, Span, Violation};
