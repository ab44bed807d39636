//! The start/stop protocol as a pure state machine: `(status, input) -> (status, action)`.
//!
//! No I/O and no runtime: the [`Lifecycle`](super::Lifecycle) runner feeds it inputs under its
//! lock and performs the returned [`Action`]. Keeping the rules here (and only here) is what makes
//! every keel service agree on them, and lets the loom lane explore them exhaustively.
//!
//! ```text
//!            Start (spawn run n+1)           Stop (cancel run n)
//!  Stopped ───────────────────────▶ Running ─────────────────▶ Stopping
//!     ▲  ▲                            │                          │
//!     │  └──── Exited{n} (ended by itself)                       │
//!     └───────────────────────────── Exited{n} ◀─────────────────┘
//! ```

/// What a service is doing, as published on its status watch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// Not running (never started, or stopped). Start is allowed.
    Stopped,
    /// Run number `run` is running.
    Running {
        /// Run number, starting at 1; every (re)start gets a fresh one.
        run: u64,
    },
    /// Run `run` was asked to stop and has not exited yet.
    Stopping {
        /// Run number.
        run: u64,
    },
}

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Input {
    /// Someone called start.
    Start,
    /// Someone called stop.
    Stop,
    /// Run `run`'s task exited (finished, stopped or panicked).
    Exited { run: u64 },
}

/// What the runner must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Nothing (idempotent start/stop, stop before start).
    Nothing,
    /// Spawn run `run` with fresh channels and token.
    Spawn { run: u64 },
    /// Cancel run `run`'s token, then wait for it to exit.
    CancelAndAwait { run: u64 },
    /// Wait for run `run` to exit (a stop is already under way); a start retries afterwards.
    AwaitExit { run: u64 },
    /// Run `run` has exited: wake everyone waiting for it.
    Finished { run: u64 },
}

/// The start/stop state of one service.
#[derive(Clone, Debug)]
pub(crate) struct Machine {
    status: Status,
    runs: u64,
}

impl Default for Machine {
    fn default() -> Self {
        Machine { status: Status::Stopped, runs: 0 }
    }
}

impl Machine {
    pub fn status(&self) -> Status {
        self.status
    }

    pub fn on(&mut self, input: Input) -> Action {
        let (next, action) = match (self.status, input) {
            (Status::Stopped, Input::Start) => {
                self.runs += 1;
                (Status::Running { run: self.runs }, Action::Spawn { run: self.runs })
            }
            // MC75: a start while running spawns a second run beside the first.
            (Status::Running { .. }, Input::Start) if crate::mutants::active(crate::mutants::Mutant::MC75) => {
                self.runs += 1;
                (Status::Running { run: self.runs }, Action::Spawn { run: self.runs })
            }
            (s @ Status::Running { .. }, Input::Start) => (s, Action::Nothing),
            // MC58: a start during a stop does nothing (returns with the service not running).
            (s @ Status::Stopping { .. }, Input::Start) if crate::mutants::active(crate::mutants::Mutant::MC58) => {
                (s, Action::Nothing)
            }
            (s @ Status::Stopping { run }, Input::Start) => (s, Action::AwaitExit { run }),
            (Status::Stopped, Input::Stop) => (Status::Stopped, Action::Nothing),
            (Status::Running { run }, Input::Stop) => (Status::Stopping { run }, Action::CancelAndAwait { run }),
            (s @ Status::Stopping { run }, Input::Stop) => (s, Action::AwaitExit { run }),
            // MC222: a run that ends by itself leaves the machine running: the next start or stop
            // awaits an exit already reported, forever, without yielding (round 24 B #18).
            (s @ Status::Running { run }, Input::Exited { run: r })
                if r == run && crate::mutants::active(crate::mutants::Mutant::MC222) =>
            {
                (s, Action::Nothing)
            }
            (Status::Running { run } | Status::Stopping { run }, Input::Exited { run: r }) if r == run => {
                (Status::Stopped, Action::Finished { run })
            }
            (s, Input::Exited { run }) => {
                // Only the current run has a task whose exit can be reported.
                debug_assert!(false, "exit of run {run} reported in state {s:?}");
                (s, Action::Nothing)
            }
        };
        self.status = next;
        action
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_is_idempotent_and_stop_before_start_is_a_no_op() {
        let mut m = Machine::default();
        assert_eq!(m.on(Input::Stop), Action::Nothing);
        assert_eq!(m.on(Input::Start), Action::Spawn { run: 1 });
        assert_eq!(m.on(Input::Start), Action::Nothing);
        assert_eq!(m.status(), Status::Running { run: 1 });
    }

    #[test]
    fn stop_is_idempotent_and_restart_gets_a_fresh_run() {
        let mut m = Machine::default();
        m.on(Input::Start);
        assert_eq!(m.on(Input::Stop), Action::CancelAndAwait { run: 1 });
        assert_eq!(m.on(Input::Stop), Action::AwaitExit { run: 1 });
        assert_eq!(m.on(Input::Start), Action::AwaitExit { run: 1 });
        assert_eq!(m.on(Input::Exited { run: 1 }), Action::Finished { run: 1 });
        assert_eq!(m.on(Input::Stop), Action::Nothing);
        assert_eq!(m.on(Input::Start), Action::Spawn { run: 2 });
    }

    #[test]
    fn a_run_that_ends_by_itself_returns_to_stopped() {
        let mut m = Machine::default();
        m.on(Input::Start);
        assert_eq!(m.on(Input::Exited { run: 1 }), Action::Finished { run: 1 });
        assert_eq!(m.status(), Status::Stopped);
    }
}
