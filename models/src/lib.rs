//! Exhaustive models of keel's protocols, checked with stateright (`cargo modelcheck`).
//!
//! Each model drives the *real* pure machines of `keel` (the lease [`Machine`], the rmap
//! [`Replica`], the pool's [`Cleanup`]) against a store that is the real [`StoreState`]: the sequential core that
//! `MemoryStore` itself runs. Nothing of the protocol is restated here; a model only chooses the
//! order of events (deliveries, losses, timer firings, crashes, restarts, clock ticks) and checks
//! invariants after each. Breadth-first search makes every counterexample a shortest one.
//!
//! [`Machine`]: keel::lease::Machine
//! [`Replica`]: keel::rmap::Replica
//! [`Cleanup`]: keel::pool::Cleanup
//! [`StoreState`]: keel::store::StoreState

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use stateright::{Checker, HasDiscoveries, Model};

pub mod cleanup;
pub mod lease;
pub mod rmap;

/// What one exhaustive run measured.
#[derive(Clone, Debug)]
pub struct Figures {
    /// The model's name and bounds.
    pub name: String,
    /// States generated (with revisits).
    pub states: usize,
    /// Distinct states.
    pub unique: usize,
    /// Longest path explored.
    pub depth: usize,
    /// Wall time.
    pub elapsed: Duration,
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} states, {} unique, depth {}, {:.2} s",
            self.name,
            self.states,
            self.unique,
            self.depth,
            self.elapsed.as_secs_f64()
        )
    }
}

/// A property that failed, with its shortest counterexample as readable steps.
#[derive(Clone, Debug)]
pub struct Violation {
    /// The property's name.
    pub property: &'static str,
    /// Number of steps of the counterexample.
    pub steps: usize,
    /// The counterexample, one numbered line per step.
    pub trace: String,
}

/// A model that can say, in words, what a step did and what a state is.
pub trait Explain:
    Model<
        State: Clone + std::fmt::Debug + std::hash::Hash + PartialEq + Send + Sync + 'static,
        Action: Clone + std::fmt::Debug + PartialEq + Send + Sync + 'static,
    > + Send
    + Sync
    + 'static
{
    /// One line about the state (after a step).
    fn describe(&self, state: &Self::State) -> String;
}

/// Explore every state of `model` breadth-first (one thread), stopping at the first violation;
/// each violated property is then reported with a shortest counterexample.
///
/// Breadth-first order alone does not give the shortest one: stateright checks states in blocks
/// and keeps the *last* violation of a block. So the length found first is only an upper bound,
/// and a binary search over depth-bounded runs finds the least number of steps that still breaks
/// the property (every violation within that bound then has exactly that many steps).
pub fn explore<M: Explain + Clone>(name: &str, model: M) -> (Figures, Vec<Violation>) {
    let started = Instant::now();
    let checker = model.clone().checker().threads(1).finish_when(HasDiscoveries::AnyFailures).spawn_bfs().join();
    let figures = Figures {
        name: name.to_owned(),
        states: checker.state_count(),
        unique: checker.unique_state_count(),
        depth: checker.max_depth(),
        elapsed: started.elapsed(),
    };
    let mut violations = Vec::new();
    for p in model.properties() {
        let Some(path) = checker.discovery(p.name) else { continue };
        let mut steps = path.into_vec();
        let (mut lo, mut hi) = (0, steps.len().saturating_sub(1));
        while lo < hi {
            let mid = (lo + hi) / 2;
            match within(&model, p.name, mid) {
                Some(shorter) => {
                    hi = shorter.len().saturating_sub(1).min(mid);
                    steps = shorter;
                }
                None => lo = mid + 1,
            }
        }
        violations.push(explain(&model, p.name, &steps));
    }
    (figures, violations)
}

type Steps<M> = Vec<(<M as Model>::State, Option<<M as Model>::Action>)>;

/// A violation of `property` in at most `steps_max` steps, if there is one.
fn within<M: Explain + Clone>(model: &M, property: &'static str, steps_max: usize) -> Option<Steps<M>> {
    let only = HasDiscoveries::AnyOf([property].into_iter().collect());
    // Depth counts states: the initial one is depth 1, and states at the target are not checked.
    let checker =
        model.clone().checker().threads(1).target_max_depth(steps_max + 2).finish_when(only).spawn_bfs().join();
    checker.discovery(property).map(|p| p.into_vec())
}

fn explain<M: Explain>(m: &M, property: &'static str, steps: &Steps<M>) -> Violation {
    let mut trace = String::new();
    let n = steps.iter().filter(|(_, a)| a.is_some()).count();
    let _ = writeln!(trace, "  initial: {}", m.describe(&steps[0].0));
    // Each element holds a state and the action taken from it; the next element's state is the
    // result.
    for (i, w) in steps.windows(2).enumerate() {
        if let Some(a) = &w[0].1 {
            let _ = writeln!(trace, "  {:>2}. {:<28} -> {}", i + 1, format!("{a:?}"), m.describe(&w[1].0));
        }
    }
    Violation { property, steps: n, trace }
}
