//! Verdicts: invariant violations and "sometimes" coverage. The types live in `keel-checks`, the
//! rules' crate shared with the chaos lane (real processes over real Redis): one `Violation` for
//! every checker, simulated or real.

pub use keel_checks::{Coverage, Span, Violation};

/// L2: each write the store refused answered with the value that refused it, judged as the store
/// applied it (`ServerEv::RefusalMisreported`, recorded by the simulated store from a read apart
/// from the write's own path). A refusal that says "absent" while a value holds sends a
/// compare-and-set loop or a keep-alive beat in doubt after a value that is not there. The first
/// 20; every scenario, built-in or a user's.
pub fn refusals_reported(events: &[crate::history::Event]) -> Vec<Violation> {
    let wrong = events.iter().filter_map(|e| match e.server() {
        Some(crate::history::ServerEv::RefusalMisreported { map, key, told, held, by }) => Some(Violation::new(
            "L2",
            e.t_us,
            format!(
                "the store refused {by}'s write of {map}/{key} and answered that it held {told:?}; it held {held:?}"
            ),
        )),
        _ => None,
    });
    wrong.take(20).collect()
}
