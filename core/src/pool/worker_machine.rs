//! A worker as a pure machine: inputs in, [`Command`]s out, and its next timeout.
//!
//! No I/O, no clock, no runtime: the driver (`pool::worker`) stamps every input with local
//! monotonic time, performs the commands in order (awaiting each) and calls
//! [`WorkerMachine::on_timeout`] at the top of every turn of its loop and whenever
//! [`WorkerMachine::next_timeout`] passes. That keeps the worker's timing rules (SPEC §5: the
//! self-fence at `sent + worker_ttl − drift_margin` of the last confirmed beat, the drain bound)
//! in one place, tested instant by instant without a runtime.
//!
//! ```text
//! Registering ──registered──▶ Active ◀──────────── beat confirmed (unfence)
//!   │ stop: exit               │ │ fence deadline passed: fenced, stop all runs
//!   │                          │ └ beat answered by a value we never wrote: dead, stop all, exit
//!   │                          │ stop requested
//!   │                          ▼
//!   │                       Draining (beats go on, no new runs) ── runs ended / deadline ──▶
//!   │                          stop all, finish producer, hand back, deregister, exit
//! ```
//!
//! While a beat is in flight the machine waits for its reply and only its fence deadline can
//! fire (the beat may hang: store down, partition, pause mid-request).
//!
//! The worker's mutants are branches of this machine: MP6 (its loop bound to the caller's
//! request), MP10 (pulse #61: remove the worker's state and jobs from the maps when the stop
//! begins, stop beating, requeue from memory after the drain), MC25 (deregister when the stop
//! begins: the drain's first beat is refused and the runs stop at once), MP16 (pulse #87: a repeated
//! delivery starts the run again, and the failed start's cleanup deletes the record), MC10
//! (the handlers' tasks detached at the end of the drain instead of stopped) and MC35 (a refused
//! beat that adopts an earlier in-doubt value counted as a confirmation) and MC39 (a graceful
//! stop without its immediate stopping beat).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use super::WorkerExit;
use super::state::JobRecord;
use crate::clock::Instant;
use crate::keel_assert;
use crate::mutants::{self, Mutant};

/// Keep-alive values whose write's reply was lost that the worker remembers: a compare-and-set
/// that meets one of them adopts it (the write landed) instead of declaring the worker dead.
pub const BEATS_IN_DOUBT_MAX: usize = 16;

/// Timing rules, copied from the pool's config.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Timing {
    pub worker_ttl: Duration,
    pub drift_margin: Duration,
    pub keepalive_interval: Duration,
    pub shutdown_deadline: Duration,
    /// The first wait after a failed registration (doubling up to `keepalive_interval`).
    pub register_backoff_min: Duration,
}

/// What the driver must do next, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Read store time, write the keep-alive, then the registration; report with
    /// [`WorkerMachine::on_registered`].
    Register,
    /// Read store time and compare-and-set the keep-alive from `expected` to a new value
    /// (`stopping` marks a draining worker); report with [`WorkerMachine::on_beat`]. Until then
    /// the driver waits for the reply and for [`WorkerMachine::next_timeout`] only.
    Beat { expected: String, stopping: bool },
    /// Spawn run `run` of `job` (record `raw`, parsed `rec`); report its end with
    /// [`WorkerMachine::on_run_ended`].
    StartRun { job: String, raw: String, rec: JobRecord, run: u64 },
    /// Ask run `run` of `job` to stop (do not wait for it; its end is reported as usual).
    StopRun { job: String, run: u64 },
    /// Ask every run to stop and wait for each (aborting one that ignores the request for longer
    /// than the shutdown deadline). The machine no longer tracks them.
    StopAll,
    /// MC10: forget every run without stopping it (their tasks are detached, still running).
    DetachAll,
    /// MP16 (pulse #87): the failed-start cleanup of a duplicate start of `job` (record `raw`).
    DuplicateStart { job: String, raw: String },
    /// MP10 (pulse #61): delete the records of the jobs this worker owns, its keep-alive and its
    /// registration, keeping the jobs in the driver's memory.
    RemoveFromMaps,
    /// Finish this worker's producer of completion events (every run has ended or is detached).
    FinishProducer,
    /// Give every job this worker still owns to another live worker (or queue it).
    HandBack,
    /// MP10: write the jobs removed by [`Command::RemoveFromMaps`] back.
    RequeueFromMemory,
    /// Delete the keep-alive if it is still `expected` (or one of `in_doubt`: beats whose reply
    /// was lost, any of which may be what the store holds), then the registration.
    Deregister { expected: String, in_doubt: Vec<String> },
    /// Publish a state change.
    Report(Report),
    /// The worker is done.
    Exit(WorkerExit),
}

/// State changes the driver publishes (as `PoolEvent`s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Report {
    /// Registered: the first beat comes a keep-alive interval (`keepalive_interval_us`) after.
    /// The attempt took `took_us` from its send.
    Registered {
        keepalive_interval_us: u64,
        /// How long its stops wait for a run before aborting it (`shutdown_deadline`).
        shutdown_deadline_us: u64,
        took_us: u64,
    },
    /// A registration attempt failed after `took_us`: the next comes `retry_min_us`·2ⁿ later
    /// (n: the failures in a row before this one), at most `retry_max_us`.
    RegisterFailed {
        took_us: u64,
        retry_min_us: u64,
        retry_max_us: u64,
    },
    /// The fence deadline passed with `running` runs tracked.
    Fenced {
        running: usize,
    },
    Unfenced,
    /// The stop began with `running` runs tracked, drained for up to `drain_ms` (local time).
    Stopping {
        running: usize,
        drain_ms: u64,
    },
    Dead,
    Stopped,
}

/// How a beat's compare-and-set went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BeatReply {
    /// Applied: the keep-alive is `new`.
    Applied { new: String },
    /// Not applied: the keep-alive holds `current`.
    Rejected { current: Option<String> },
    /// The write's outcome is unknown (an error or a timeout): `new` may have landed.
    Unknown { new: String },
    /// Nothing written (store time unreadable).
    NotSent,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Run {
    attempt: u64,
    /// This worker's number for the run. Its end is matched by this, never by the attempt: the
    /// same attempt runs again when a fence stopped the first run and, once unfenced, the record
    /// is announced again (or when an ack failed). The first run's end, still queued, must not
    /// untrack the second, which the next fence would then miss (P2, found by per-node latency
    /// on pool seed 135: the untracked run went on 0.63 s beside the requeued attempt).
    run: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    Registering { next_attempt: Instant, wait: Duration, sent: Option<Instant> },
    Active,
    Done,
}

/// One worker incarnation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerMachine {
    t: Timing,
    id: String,
    phase: Phase,
    commands: VecDeque<Command>,
    /// The keep-alive value this worker wrote last (and knows landed).
    last: String,
    /// Values written whose reply was lost (at most [`BEATS_IN_DOUBT_MAX`]).
    in_doubt: Vec<String>,
    /// Until when the last confirmed beat proves this worker alive (local time).
    confirmed_until: Instant,
    next_beat: Instant,
    /// When the beat in flight was sent.
    beating: Option<Instant>,
    fenced: bool,
    drain_until: Option<Instant>,
    /// MP10: the worker's state and jobs were removed from the maps; it no longer beats.
    removed: bool,
    runs: BTreeMap<String, Run>,
    runs_started: u64,
}

impl WorkerMachine {
    /// A worker `id` that registers first (its first command is ready).
    pub fn new(t: Timing, id: &str, now: Instant) -> Self {
        keel_assert!(t.drift_margin < t.worker_ttl, "the drift margin is below the worker TTL");
        keel_assert!(t.keepalive_interval < t.worker_ttl, "beats come faster than the TTL");
        let wait = t.register_backoff_min;
        let mut m = WorkerMachine {
            t,
            id: id.to_owned(),
            phase: Phase::Registering { next_attempt: now, wait, sent: None },
            commands: VecDeque::new(),
            last: String::new(),
            in_doubt: Vec::new(),
            confirmed_until: now,
            next_beat: now,
            beating: None,
            fenced: false,
            drain_until: None,
            removed: false,
            runs: BTreeMap::new(),
            runs_started: 0,
        };
        m.on_timeout(now);
        m
    }

    /// The next command to perform, in order.
    pub fn poll_command(&mut self) -> Option<Command> {
        self.commands.pop_front()
    }

    /// When [`on_timeout`](Self::on_timeout) must be called next (None: only an input can move
    /// the machine).
    pub fn next_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Registering { next_attempt, sent: None, .. } => Some(next_attempt),
            Phase::Registering { sent: Some(_), .. } | Phase::Done => None,
            Phase::Active if self.beating.is_some() => (!self.fenced).then_some(self.confirmed_until),
            Phase::Active => {
                let mut t = self.drain_until;
                if !self.removed {
                    t = Some(t.map_or(self.next_beat, |d| d.min(self.next_beat)));
                }
                if !self.fenced {
                    t = Some(t.map_or(self.confirmed_until, |d| d.min(self.confirmed_until)));
                }
                t
            }
        }
    }

    /// Whether the driver must listen for the worker's stop.
    pub fn listens_for_stop(&self) -> bool {
        match self.phase {
            Phase::Registering { sent, .. } => sent.is_none(),
            Phase::Active => self.drain_until.is_none() && self.beating.is_none(),
            Phase::Done => false,
        }
    }

    /// Whether the driver must listen for the end of the caller's request (only MP6 binds the
    /// worker to it; otherwise the caller's token, once cancelled, would be ready forever).
    pub fn listens_to_caller(&self) -> bool {
        mutants::active(Mutant::MP6) && self.listens_for_stop() && self.phase == Phase::Active
    }

    /// Whether the driver may deliver job records (never while fenced, draining or beating).
    pub fn accepts_records(&self) -> bool {
        // MC153: the drain forgotten.
        let undrained = self.drain_until.is_none() || mutants::active(Mutant::MC153);
        self.phase == Phase::Active && !self.fenced && undrained && self.beating.is_none()
    }

    /// Whether the driver must listen for runs' ends.
    pub fn listens_for_runs(&self) -> bool {
        self.phase == Phase::Active && self.beating.is_none()
    }

    #[cfg(test)]
    pub fn is_fenced(&self) -> bool {
        self.fenced
    }

    #[cfg(test)]
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// The runs tracked now, as (job, attempt, run number).
    #[cfg(test)]
    pub fn runs(&self) -> impl Iterator<Item = (&str, u64, u64)> {
        self.runs.iter().map(|(j, r)| (j.as_str(), r.attempt, r.run))
    }

    /// Time passed: register, end the drain, fence, or beat, whichever is due (at most one step
    /// that the driver awaits, so the next is judged by the time after it).
    pub fn on_timeout(&mut self, now: Instant) {
        match self.phase {
            Phase::Registering { next_attempt, wait, sent: None } if now >= next_attempt => {
                self.phase = Phase::Registering { next_attempt, wait, sent: Some(now) };
                self.commands.push_back(Command::Register);
            }
            Phase::Registering { .. } | Phase::Done => {}
            Phase::Active => {
                // MC70: the drain ends only at its bound, even with no run left.
                let idle = self.runs.is_empty() && !mutants::active(Mutant::MC70);
                if self.beating.is_none()
                    && let Some(d) = self.drain_until
                    && (idle || now >= d)
                {
                    return self.finish();
                }
                // Fence before anything else (after a pause the deadline may be long past): we can
                // no longer prove we are alive, others may requeue our jobs soon, so stop running
                // them now (before our keep-alive goes stale in store time).
                if !self.fenced && now >= self.confirmed_until {
                    self.fenced = true;
                    self.commands.push_back(Command::Report(Report::Fenced { running: self.runs.len() }));
                    self.stop_all();
                    return;
                }
                if self.beating.is_none() && !self.removed && now >= self.next_beat {
                    self.beating = Some(now);
                    let stopping = self.drain_until.is_some();
                    self.commands.push_back(Command::Beat { expected: self.last.clone(), stopping });
                }
            }
        }
    }

    /// The registration found its keep-alive key holding the dead marker (a cleaner fenced the
    /// worker while its registration kept failing): no registration of this id can succeed, so
    /// the worker is dead, as after a beat refused by a value it never wrote, and its slot gets
    /// a fresh worker. Found in round 38 (poolfeed seed 217): retried forever, the worker never
    /// fenced itself, and with the other nodes gone nobody cleaned it (P4); MC349.
    pub fn on_register_fenced(&mut self, now: Instant) {
        if mutants::active(Mutant::MC349) {
            return self.on_registered(now, None);
        }
        let Phase::Registering { sent: Some(_), .. } = self.phase else {
            keel_assert!(false, "a registration reply without a registration in flight");
            return;
        };
        self.commands.push_back(Command::Report(Report::Dead));
        self.stop_all();
        self.exit(WorkerExit::Dead);
    }

    /// The registration's outcome: the keep-alive value written, or None if it failed.
    pub fn on_registered(&mut self, now: Instant, keepalive: Option<String>) {
        let Phase::Registering { wait, sent: Some(sent), .. } = self.phase else {
            keel_assert!(false, "a registration reply without a registration in flight");
            return;
        };
        let took_us = crate::observe::micros(now.saturating_duration_since(sent));
        match keepalive {
            Some(ka) => {
                self.last = ka;
                self.confirmed_until = self.confirmed_from(sent, now) + self.t.worker_ttl - self.t.drift_margin;
                if mutants::active(Mutant::MC461) {
                    self.confirmed_until -= self.t.keepalive_interval; // MC461, below
                }
                // MC85: the first beat a whole worker TTL after registering: the worker's own
                // fence deadline passes first, and it stops its runs while every beat it sent
                // was applied.
                let first = if mutants::active(Mutant::MC85) { self.t.worker_ttl } else { self.t.keepalive_interval };
                self.next_beat = now + first;
                self.phase = Phase::Active;
                let keepalive_interval_us = crate::observe::micros(self.t.keepalive_interval);
                let shutdown_deadline_us = crate::observe::micros(self.t.shutdown_deadline);
                let r = Report::Registered { keepalive_interval_us, shutdown_deadline_us, took_us };
                self.commands.push_back(Command::Report(r));
            }
            None => {
                // MC94: the doubling without its cap. MC95: the retry at once, its wait ignored.
                let next =
                    if mutants::active(Mutant::MC94) { wait * 2 } else { (wait * 2).min(self.t.keepalive_interval) };
                let next_attempt = if mutants::active(Mutant::MC95) { now } else { now + wait };
                self.phase = Phase::Registering { next_attempt, wait: next, sent: None };
                self.commands.push_back(Command::Report(Report::RegisterFailed {
                    took_us,
                    retry_min_us: crate::observe::micros(self.t.register_backoff_min),
                    retry_max_us: crate::observe::micros(self.t.keepalive_interval),
                }));
            }
        }
    }

    /// Where a confirmed keep-alive's validity is counted from: the beat's send, which comes
    /// before its read of store time (the value a cleaner judges). MC15 counts it from the
    /// reply, as a worker that times its liveness from the answer does: it goes on running for
    /// the round trip, less the drift margin, after cleaners may have judged it dead.
    fn confirmed_from(&self, sent: Instant, replied: Instant) -> Instant {
        if mutants::active(Mutant::MC15) { replied } else { sent }
    }

    /// The beat's reply.
    pub fn on_beat(&mut self, now: Instant, reply: BeatReply) {
        let Some(sent) = self.beating.take() else {
            keel_assert!(false, "a beat reply without a beat in flight");
            return;
        };
        keel_assert!(self.phase == Phase::Active, "beats only while registered");
        match reply {
            BeatReply::Applied { new } => {
                self.last = new;
                self.in_doubt.clear();
                let until = self.confirmed_from(sent, now) + self.t.worker_ttl - self.t.drift_margin;
                // MC461: a keep-alive interval kept in reserve: the worker fences itself a beat
                // early, so a beat slow by more than the margin's slack stops every run.
                let until = if mutants::active(Mutant::MC461) { until - self.t.keepalive_interval } else { until };
                keel_assert!(until >= self.confirmed_until, "a later beat confirms a later deadline");
                self.confirmed_until = until;
                if self.fenced {
                    self.fenced = false;
                    self.commands.push_back(Command::Report(Report::Unfenced));
                }
            }
            // An earlier write whose reply was lost did land: adopt it and beat again next time.
            // MC436: whatever the store holds adopted, the dead marker too.
            BeatReply::Rejected { current: Some(v) }
                if self.in_doubt.contains(&v) || mutants::active(Mutant::MC436) =>
            {
                // MC137: adopted but not stored: the next beat compares against the value before.
                if !mutants::active(Mutant::MC137) {
                    self.last = v;
                }
                self.in_doubt.clear();
                if mutants::active(Mutant::MC35) {
                    // MC35: the refused beat counted as a confirmation, as if the adopted value
                    // had been written by this beat: the fence moves to this beat's send + TTL,
                    // past the adopted value's own (it was written a beat or more earlier).
                    let until = self.confirmed_from(sent, now) + self.t.worker_ttl - self.t.drift_margin;
                    if until > self.confirmed_until {
                        self.confirmed_until = until;
                    }
                    if self.fenced {
                        self.fenced = false;
                        self.commands.push_back(Command::Report(Report::Unfenced));
                    }
                }
            }
            // A value we never wrote: a cleaner took the worker (or the store lost it).
            BeatReply::Rejected { .. } => {
                self.commands.push_back(Command::Report(Report::Dead));
                self.stop_all();
                return self.exit(WorkerExit::Dead);
            }
            BeatReply::Unknown { new } => {
                // MC340: the beat taken for landed.
                if mutants::active(Mutant::MC340) {
                    self.last.clone_from(&new);
                }
                if self.in_doubt.len() < BEATS_IN_DOUBT_MAX {
                    self.in_doubt.push(new);
                }
            }
            BeatReply::NotSent => {}
        }
        self.next_beat = now + self.t.keepalive_interval;
    }

    /// A job's record changed or was announced again (`raw` None: it is gone). Start it if it is
    /// ours at a newer attempt, stop our run of it if it moved on or is gone. The driver reports
    /// every run's end that it has received before it delivers a record.
    pub fn on_record(&mut self, _now: Instant, job: &str, raw: Option<String>) {
        if !self.accepts_records() {
            keel_assert!(false, "records are delivered only to an active, unfenced, undrained worker");
            return;
        }
        let rec = raw.as_deref().and_then(JobRecord::parse);
        let ours = rec.as_ref().filter(|r| r.owner == self.id);
        if let Some(r) = self.runs.get(job) {
            match ours {
                Some(rec) if r.attempt >= rec.attempt => {
                    // A repeated delivery (a sweep's re-announcement) of the run we have: ignored.
                    // MP16 (pulse #87): started again instead; the duplicate start fails and its
                    // cleanup deletes the job's record while the first handler still runs.
                    if mutants::active(Mutant::MP16)
                        && rec.attempt == r.attempt
                        && let Some(raw) = raw
                    {
                        self.commands.push_back(Command::DuplicateStart { job: job.to_owned(), raw });
                    }
                    return;
                }
                // A newer attempt of ours replaces the run (started below).
                Some(_) => {
                    let run = r.run;
                    self.commands.push_back(Command::StopRun { job: job.to_owned(), run });
                }
                None => {
                    // Moved to another worker or a newer attempt, or gone: our run is stale.
                    // MC139: only a record that is gone stops the run.
                    let moved_on = if mutants::active(Mutant::MC139) {
                        rec.is_none()
                    } else {
                        rec.is_none_or(|x| x.attempt > r.attempt)
                    };
                    if moved_on {
                        let run = r.run;
                        self.commands.push_back(Command::StopRun { job: job.to_owned(), run });
                    }
                    return;
                }
            }
        }
        let (Some(rec), Some(raw)) = (ours.cloned(), raw) else { return };
        self.start(job, raw, rec);
    }

    /// Run `run` of `job` ended (its end is matched by the run's number, see [`Run::run`]).
    pub fn on_run_ended(&mut self, _now: Instant, job: &str, run: u64) {
        keel_assert!(run <= self.runs_started, "only started runs end");
        if self.runs.get(job).is_some_and(|r| r.run == run) {
            self.runs.remove(job);
        }
    }

    /// The worker's own stop (its handle's, or its node's): drain, then hand back and
    /// deregister. Before registration: exit.
    pub fn on_stop(&mut self, now: Instant) {
        match self.phase {
            Phase::Registering { .. } => self.exit(WorkerExit::Stopped),
            Phase::Done => {}
            Phase::Active if self.drain_until.is_some() => {}
            Phase::Active => {
                keel_assert!(self.beating.is_none(), "the stop is heard between beats");
                let deadline = now + self.t.shutdown_deadline;
                self.drain_until = Some(deadline);
                let drain_ms = u64::try_from(self.t.shutdown_deadline.as_millis()).unwrap_or(u64::MAX);
                self.commands.push_back(Command::Report(Report::Stopping { running: self.runs.len(), drain_ms }));
                // One beat right away marks the keep-alive as stopping. MC39 leaves the next beat
                // on its regular schedule: the mark waits up to a keep-alive interval.
                if !mutants::active(Mutant::MC39) {
                    self.next_beat = now;
                }
                if mutants::active(Mutant::MC25) {
                    // MC25: deregister as the drain begins (the keep-alive this worker wrote last,
                    // then the registration): the beat that follows is refused and the worker
                    // finds itself dead, stopping its runs at once.
                    self.commands.push_back(self.deregister());
                }
                if mutants::active(Mutant::MP10) {
                    // MP10 (pulse #61): "remove worker immediately to avoid job requeuing by other
                    // nodes", then drain, and requeue from memory afterwards. It stops beating.
                    self.removed = true;
                    self.next_beat = deadline;
                    self.commands.push_back(Command::RemoveFromMaps);
                }
            }
        }
    }

    /// The caller's request ended. Nothing to the worker, which outlives it; MP6 binds the loop
    /// to it: the worker exits without a word, its handlers keep running (zombies) and nothing
    /// deregisters.
    pub fn on_caller_stopped(&mut self, _now: Instant) {
        if mutants::active(Mutant::MP6) && self.phase == Phase::Active && self.drain_until.is_none() {
            self.runs.clear();
            self.exit(WorkerExit::Stopped);
        }
    }

    fn start(&mut self, job: &str, raw: String, rec: JobRecord) {
        keel_assert!(self.accepts_records(), "never start a run while fenced, draining or beating");
        keel_assert!(rec.owner == self.id, "only our own records start runs");
        self.runs_started += 1;
        let run = self.runs_started;
        let replaced = self.runs.insert(job.to_owned(), Run { attempt: rec.attempt, run });
        if let Some(old) = replaced {
            keel_assert!(old.attempt < rec.attempt, "attempts only grow per job: {} then {}", old.attempt, rec.attempt);
        }
        self.commands.push_back(Command::StartRun { job: job.to_owned(), raw, rec, run });
    }

    fn stop_all(&mut self) {
        self.runs.clear();
        self.commands.push_back(Command::StopAll);
    }

    /// Drain over: stop what still runs, finish the producer (every completion of ours is then
    /// in the completer: its stop waits for the producer, then flushes), hand back every job we
    /// own, deregister.
    fn finish(&mut self) {
        // MC225: runs still going at the bound have their jobs handed back before they are
        // stopped: the next owner starts a job its old run still writes (round 24 A #28).
        let hand_back_first = mutants::active(Mutant::MC225) && !self.runs.is_empty() && !self.removed;
        if mutants::active(Mutant::MC10) {
            self.runs.clear();
            self.commands.push_back(Command::DetachAll);
        } else if !hand_back_first {
            self.stop_all();
        }
        self.commands.push_back(Command::FinishProducer);
        if hand_back_first {
            self.commands.push_back(Command::HandBack);
            self.stop_all();
            self.commands.push_back(self.deregister());
        } else if self.removed {
            self.commands.push_back(Command::RequeueFromMemory);
        } else if mutants::active(Mutant::MC245) {
            self.commands.push_back(self.deregister());
            self.commands.push_back(Command::HandBack);
        } else {
            self.commands.push_back(Command::HandBack);
            // MC456: the graceful stop leaves its keep-alive and registration to a cleaner, which
            // takes them a worker TTL and a sweep later (a lock, a fence, an orphan scan).
            if !mutants::active(Mutant::MC456) {
                self.commands.push_back(self.deregister());
            }
        }
        self.commands.push_back(Command::Report(Report::Stopped));
        self.exit(WorkerExit::Stopped);
    }

    fn deregister(&self) -> Command {
        Command::Deregister { expected: self.last.clone(), in_doubt: self.in_doubt.clone() }
    }

    fn exit(&mut self, how: WorkerExit) {
        keel_assert!(self.phase != Phase::Done, "a worker exits once");
        self.phase = Phase::Done;
        self.commands.push_back(Command::Exit(how));
    }
}

#[cfg(test)]
#[path = "worker_machine_tests.rs"]
mod tests;
