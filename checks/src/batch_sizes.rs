//! V34: a completer writes no batch larger than its `batch_size`, judged at each write.
//!
//! A run announces its batch size (`completer_started`) and every write reports how many
//! completions it carried (`batch_flushed`, `flush_failed`: `n`). The size is a user's bound on
//! one store transaction (a Redis `MULTI` of that many keys, a request size a proxy accepts), so
//! a write past it is one the store may refuse or stall on, at the worst moment: a drain that
//! writes everything still queued in one batch (blind-spot hunt, round 36, B #2, MC311) turns a
//! shutdown into one oversized write that fails, retries the same size and is given up at the
//! bound. Every other rule judged a batch's timing, none its size. A node's crash or restart
//! ends its runs.

use std::collections::BTreeMap;

use keel::observe::CompleterEvent;

use crate::{Entry, Fact, Violation, plain};

/// V34 over keel's completer events: see the module's doc. The first 20 violations.
pub fn completer_batches_keep_their_size<E: Entry>(events: &[E]) -> Vec<Violation> {
    // (node, completer, run) → batch size
    let mut runs: BTreeMap<(E::Node, &str, u64), usize> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let node = e.node();
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            runs.retain(|k, _| &k.0 != node);
            continue;
        }
        use CompleterEvent as C;
        let (completer, run, n, what) = match e.completer() {
            Some(C::CompleterStarted { completer, run, batch_size, .. }) => {
                runs.insert((node.clone(), plain(completer), *run), *batch_size);
                continue;
            }
            Some(C::BatchFlushed { completer, run, n, .. }) => (plain(completer), *run, *n, "wrote"),
            Some(C::FlushFailed { completer, run, n, .. }) => (plain(completer), *run, *n, "failed to write"),
            _ => continue,
        };
        let Some(&size) = runs.get(&(node.clone(), completer, run)) else { continue };
        if n > size && v.len() < 20 {
            v.push(Violation::new(
                "V34",
                e.t_us(),
                format!("{node}: completer {completer} run {run} {what} a batch of {n} completions, over its batch size {size}"),
            ));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use keel::Outcome;

    use super::*;
    use crate::test_entry::E as Ev;

    use crate::test_entry::completer_at as at;

    fn started() -> Ev {
        crate::test_entry::completer_started(0, 1)
    }

    fn flushed(t_ms: u64, n: usize) -> Ev {
        let e = CompleterEvent::BatchFlushed {
            completer: "c".into(),
            run: 1,
            n,
            rev: 1,
            retried: false,
            took_us: 1,
            attempt_us: 1,
        };
        at(t_ms, e)
    }

    fn failed(t_ms: u64, n: usize) -> Ev {
        let e = CompleterEvent::FlushFailed {
            completer: "c".into(),
            run: 1,
            n,
            error: "unavailable".into(),
            outcome: Outcome::NotApplied,
            took_us: 1,
        };
        at(t_ms, e)
    }

    #[test]
    fn a_batch_at_its_size_passes_one_past_it_is_judged_at_its_write() {
        assert!(completer_batches_keep_their_size(&[started(), flushed(5, 8), failed(6, 3)]).is_empty());
        let v = completer_batches_keep_their_size(&[started(), flushed(5, 8), failed(9, 16)]);
        assert_eq!(v.iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>(), [("V34", 9_000)]);
        let v = completer_batches_keep_their_size(&[started(), flushed(7, 9)]);
        assert_eq!(v.len(), 1, "one past the size");
    }

    #[test]
    fn a_restart_of_the_node_forgets_its_runs() {
        let restart = Ev(3_000, "n1", None, Some(Fact::NodeStart));
        assert!(completer_batches_keep_their_size(&[started(), restart, flushed(5, 16)]).is_empty());
    }
}
