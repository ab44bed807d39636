//! E4: a lease owner publishes `Failed` exactly when its store keeps refusing it with a permanent
//! error, and leaves `Failed` at the store's first normal answer; judged at each event.
//!
//! keel's contract (`LeaseConfigBuilder::permanent_attempts`, announced as `owner_started`'s
//! `permanent_attempts`): `permanent_attempts` permanent store errors in a row while the lease is
//! not held are published as `Failed` (event `failed`, with the error and the count), once per
//! distinct error; a transient error breaks the row; any normal answer of the store (a grant, a
//! refusal by a live holder, a quarantine, the store's time, a renewal) ends it, and a published
//! `Failed` gives way to `Awaiting` (event `awaiting`) or, on a grant, to `Held`. Errors while held
//! count towards the row but publish nothing: the deadline bounds them.
//!
//! So, per owner:
//! - a `failed` comes only after `permanent_attempts` permanent errors in a row, the last one its
//!   error, with `attempts` that count, never again for the error already published, and never while held (a `Failed` an operator is paged for
//!   while the store is fine, or while the lease is held and working);
//! - the error that completes the row while not held, unless its `Failed` is already published,
//!   is published within [`PUBLISH_SLACK_US`] (a store that refuses the service for good, and
//!   nobody told: keel's promise that permanent errors surface within a bound);
//! - after a published `Failed`, the store's first normal answer is followed within
//!   [`PUBLISH_SLACK_US`] by `awaiting` or `held` (a service that stays `Failed` after the store
//!   came back, and its operator never hears it recovered).
//!
//! Which errors are permanent is the contract's list (`StoreError::is_transient`), restated from
//! the error's text: a denial (`NOPERM`, `WRONGPASS`, `NOAUTH`, a failed authentication), corrupt
//! data, an invalid argument, a misconfigured deployment. Both sides of a publication happen in
//! one step of the owner's driver, with no wait between, so the bound is slack for the
//! simulated scheduler only. A pending expectation is judged at the owner's next event past it;
//! a stop (`stopping`), a crash, or a new run of the owner (`owner_started`) drops it.

//!
//! E5, the pool's start (`Pool::start`): it retries a transient error until its start timeout,
//! and ends at once on a permanent one (`PoolError::Store`). So a `start_waiting` (the start's
//! warning that it is still retrying) with a permanent error, or a `start_failed` that calls a
//! permanent error transient (it ran out its timeout on it), is a start that retried what no
//! retry can fix: a node that spends its whole start timeout, or the whole of an operator's
//! ACL change, before it says what is wrong.
//!
//! E9, a cleaner's requeue of a dead worker's job: it retries a transient store error after its
//! backoff, up to the pool's `cleanup_retries` tries, and retries no permanent one. So a
//! `requeue_gave_up` on a transient error with tries left (not the re-read of a changed record,
//! whose error ends the requeue at once by design: `reread`) is a cleanup stopped by a blip, its
//! dead worker's jobs left owned until a later sweep cleans it again (MC401: the class read
//! backwards); and a `requeue_retry` on a permanent error spends the tries and their backoff on
//! what no retry fixes.

use std::cell::RefCell;
use std::collections::BTreeMap;

use keel::observe::{LeaseEvent, PoolEvent};

use crate::{Entry, Fact, Violation, plain};

/// How long after the step that calls for it a publication may come (µs).
pub const PUBLISH_SLACK_US: u64 = 1_000;

/// Whether a store error, by its text (`StoreError`'s `Display`), is permanent by keel's contract.
pub fn is_permanent(error: &str) -> bool {
    // A memo of the last few texts judged (per thread): a run's store errors are a handful of
    // texts repeated at every failed call, and the judgement (an uppercase copy and eight
    // substring searchers) was a fortieth of a lease sweep's CPU. The verdict is the text's
    // alone, so the memo changes no verdict.
    thread_local! {
        static SEEN: RefCell<(usize, Vec<(String, bool)>)> = const { RefCell::new((0, Vec::new())) };
    }
    const MEMO: usize = 8;
    SEEN.with(|seen| {
        let mut seen = seen.borrow_mut();
        if let Some(&(_, p)) = seen.1.iter().find(|(e, _)| e == error) {
            return p;
        }
        let p = judge_permanent(error);
        let (next, memo) = &mut *seen;
        if memo.len() < MEMO {
            memo.push((error.to_owned(), p));
        } else {
            memo[*next] = (error.to_owned(), p);
            *next = (*next + 1) % MEMO;
        }
        p
    })
}

/// [`is_permanent`] without the memo.
fn judge_permanent(error: &str) -> bool {
    const DENIALS: [&str; 5] = ["NOPERM", "WRONGPASS", "NOAUTH", "AUTHENTICATION FAILED", "INVALID PASSWORD"];
    const PERMANENT_KINDS: [&str; 3] =
        ["holds unexpected data", "invalid store argument", "store deployment cannot serve keel"];
    let upper = error.to_ascii_uppercase();
    DENIALS.iter().any(|d| upper.contains(d)) || PERMANENT_KINDS.iter().any(|k| error.contains(k))
}

/// One owner's row of errors and what it owes.
#[derive(Default)]
struct Owner {
    /// `owner_started`'s `permanent_attempts` (0 before it is known: nothing is judged).
    attempts: u32,
    /// Permanent errors in a row, and the last one's text.
    row: u32,
    last: Option<String>,
    held: bool,
    /// The error published as `Failed`, until it is left.
    published: Option<String>,
    /// A publication owed: by when (µs), and what.
    owed: Option<(u64, String)>,
}

/// E4 over keel's lease events: see the module's doc. The first 20 violations.
pub fn lease_failures_follow_permanent_errors<E: Entry>(events: &[E]) -> Vec<Violation> {
    let mut owners: BTreeMap<(E::Node, &str, &str), Owner> = BTreeMap::new();
    let mut v = Vec::new();
    let push = |v: &mut Vec<Violation>, t_us: u64, what: String| {
        if v.len() < 20 {
            v.push(Violation::new("E4", t_us, what));
        }
    };
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            owners.retain(|k, _| &k.0 != node);
            continue;
        }
        let Some(ev) = e.lease() else { continue };
        let (lease, owner) = crate::lease_owner(ev);
        let key = (node.clone(), lease, owner);
        if let LeaseEvent::OwnerStarted { permanent_attempts, .. } = ev {
            owners.insert(key, Owner { attempts: *permanent_attempts, ..Owner::default() });
            continue;
        }
        let Some(o) = owners.get_mut(&key) else { continue };
        if o.attempts == 0 {
            continue;
        }
        if let Some((by, what)) = &o.owed
            && t > *by
        {
            push(&mut v, *by, format!("{node}: lease {lease} owner {owner} {what}"));
            o.owed = None;
        }
        match ev {
            LeaseEvent::AcquireFailed { error, .. }
            | LeaseEvent::TimeFailed { error, .. }
            | LeaseEvent::RenewFailed { error, .. } => {
                let error = plain(error);
                if !is_permanent(error) {
                    o.row = 0;
                    continue;
                }
                o.row += 1;
                o.last = Some(error.to_owned());
                if o.row >= o.attempts && !o.held && o.published.as_deref() != Some(error) {
                    let what = format!(
                        "met {} permanent store errors in a row while not held ({error}), and published no Failed within {} µs",
                        o.row, PUBLISH_SLACK_US
                    );
                    o.owed = Some((t + PUBLISH_SLACK_US, what));
                }
            }
            LeaseEvent::Failed { attempts, error, .. } => {
                let error = plain(error);
                let wrong = if o.held {
                    Some("while it holds the lease".to_owned())
                } else if o.row < o.attempts {
                    Some(format!("after {} permanent errors in a row, not {}", o.row, o.attempts))
                } else if o.published.as_deref() == Some(error) {
                    // Once per distinct error: each repeat pages the operator again for what
                    // they already know (round 25 B #42, MC234).
                    Some(format!("again, the error it had published already (\"{error}\")"))
                } else if *attempts != o.row || o.last.as_deref() != Some(error) {
                    Some(format!(
                        "as {attempts} attempts ending in \"{error}\", where the row is {} ending in \"{}\"",
                        o.row,
                        o.last.as_deref().unwrap_or("")
                    ))
                } else {
                    None
                };
                if let Some(wrong) = wrong {
                    push(&mut v, t, format!("{node}: lease {lease} owner {owner} published Failed {wrong}"));
                }
                o.published = Some(error.to_owned());
                o.owed = None;
            }
            LeaseEvent::Granted { .. }
            | LeaseEvent::AcquireRefused { .. }
            | LeaseEvent::Quarantined { .. }
            | LeaseEvent::TimeRead { .. }
            | LeaseEvent::Renewed { .. }
            | LeaseEvent::RenewRefused { .. } => {
                o.row = 0;
                // A grant whose reply came after the belief it grants would end is never held
                // (`belief_us` 0: released, tried again; lease seed 36 340, a 1 s pause with the
                // acquire in flight).
                if let LeaseEvent::Granted { belief_us, .. } = ev {
                    o.held = *belief_us > 0;
                }
                if let Some(error) = &o.published {
                    let what = format!(
                        "left its published Failed ({error}) in place after the store answered normally, for over {} µs",
                        PUBLISH_SLACK_US
                    );
                    o.owed = Some((t + PUBLISH_SLACK_US, what));
                }
            }
            LeaseEvent::Awaiting { .. } | LeaseEvent::Held { .. } => {
                o.published = None;
                o.owed = None;
                o.held = matches!(ev, LeaseEvent::Held { .. });
            }
            LeaseEvent::SteppingDown { .. } | LeaseEvent::Lost { .. } | LeaseEvent::Released { .. } => {
                o.held = false;
            }
            LeaseEvent::Stopping { .. } | LeaseEvent::Crashed { .. } => {
                owners.remove(&key);
            }
            _ => {}
        }
    }
    v
}

/// E5 over keel's pool events: see the module's doc. Judged at each event; the first 20.
pub fn pool_starts_end_at_a_permanent_error<E: Entry>(events: &[E]) -> Vec<Violation> {
    let mut v = Vec::new();
    for e in events {
        let what = match e.pool() {
            Some(PoolEvent::StartWaiting { pool, attempts, error, .. }) if is_permanent(plain(error)) => {
                format!("pool {}'s start retries a permanent error ({attempts} attempts): {error}", plain(pool))
            }
            Some(PoolEvent::StartFailed { pool, attempts, permanent: false, error, .. })
                if is_permanent(plain(error)) =>
            {
                format!(
                    "pool {}'s start ran out its timeout ({attempts} attempts) on a permanent error: {error}",
                    plain(pool)
                )
            }
            _ => continue,
        };
        if v.len() < 20 {
            v.push(Violation::new("E5", e.t_us(), format!("{}: {what}", e.node())));
        }
    }
    v
}

/// E9 over keel's pool events: see the module's doc. Judged at each event; the first 20.
pub fn cleaner_requeues_retry_transient_errors<E: Entry>(events: &[E]) -> Vec<Violation> {
    let mut v = Vec::new();
    for e in events {
        let what = match e.pool() {
            Some(PoolEvent::RequeueGaveUp { job, worker, tries, tries_max, error, reread: false })
                if tries < tries_max && !is_permanent(plain(error)) =>
            {
                format!(
                    "a cleaner gave up requeueing {} of dead worker {} after {tries} of its {tries_max} tries, on a transient error: {error}",
                    plain(job),
                    plain(worker)
                )
            }
            Some(PoolEvent::RequeueRetry { job, worker, error, .. }) if is_permanent(plain(error)) => {
                format!(
                    "a cleaner retries requeueing {} of dead worker {} after a permanent error: {error}",
                    plain(job),
                    plain(worker)
                )
            }
            _ => continue,
        };
        if v.len() < 20 {
            v.push(Violation::new("E9", e.t_us(), format!("{}: {what}", e.node())));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use keel::observe::Event;

    use super::*;
    use crate::test_entry::{E as Ev, at_ms, owner_started};

    const DENIED: &str = "store refused the operation (not applied): NOPERM User a has no permissions";
    const TIMEOUT: &str = "store operation lease_acquire timed out (outcome unknown)";

    fn at(t_ms: u64, e: LeaseEvent<'_>) -> Ev {
        Ev(t_ms * 1000, "n1", Some(Event::Lease(e.to_static())), None)
    }

    fn acquire_failed(t_ms: u64, error: &str) -> Ev {
        at(t_ms, LeaseEvent::AcquireFailed { lease: "L".into(), owner: "a".into(), error: error.into(), took_us: 0 })
    }

    fn renew_failed(t_ms: u64, error: &str) -> Ev {
        at(t_ms, LeaseEvent::RenewFailed { lease: "L".into(), owner: "a".into(), error: error.into(), took_us: 0 })
    }

    fn failed(t_ms: u64, attempts: u32) -> Ev {
        at(t_ms, LeaseEvent::Failed { lease: "L".into(), owner: "a".into(), attempts, error: DENIED.into() })
    }

    fn refused(t_ms: u64) -> Ev {
        at(t_ms, LeaseEvent::AcquireRefused { lease: "L".into(), owner: "a".into(), remaining_ms: 1, took_us: 0 })
    }

    fn quarantined(t_ms: u64) -> Ev {
        at(t_ms, LeaseEvent::Quarantined { lease: "L".into(), owner: "a".into(), remaining_ms: 1, took_us: 0 })
    }

    fn awaiting(t_ms: u64) -> Ev {
        at(t_ms, LeaseEvent::Awaiting { lease: "L".into(), owner: "a".into() })
    }

    fn held(t_ms: u64) -> Ev {
        granted(t_ms, 900_000)
    }

    fn granted(t_ms: u64, belief_us: u64) -> Ev {
        at(t_ms, LeaseEvent::Granted { lease: "L".into(), owner: "a".into(), fence: 1, took_us: 0, belief_us })
    }

    fn e4(h: &[Ev]) -> Vec<(&'static str, u64)> {
        at_ms(&lease_failures_follow_permanent_errors(h))
    }

    /// The owner (`permanent_attempts` 3) meets three denials in a row and publishes Failed in the
    /// same step; the store's next answer is followed by Awaiting. Nothing to judge.
    #[test]
    fn a_row_of_denials_published_and_left_is_clean() {
        let h = [
            owner_started(None),
            acquire_failed(10, DENIED),
            acquire_failed(20, DENIED),
            acquire_failed(30, DENIED),
            failed(30, 3),
            acquire_failed(40, DENIED), // the same error: not published again
            refused(50),
            awaiting(50),
        ];
        assert_eq!(e4(&h), []);
    }

    /// The row completed and no Failed by the owner's next event (MC191: one attempt late) is
    /// E4 at the bound; a Failed after a transient error broke the row (MC189) is E4 at it.
    #[test]
    fn a_row_unpublished_or_a_broken_row_published_fires_e4() {
        let late = [
            owner_started(None),
            acquire_failed(10, DENIED),
            acquire_failed(20, DENIED),
            acquire_failed(30, DENIED),
            acquire_failed(40, DENIED),
            failed(40, 4),
        ];
        assert_eq!(e4(&late), [("E4", 31)]);
        let broken = [
            owner_started(None),
            acquire_failed(10, DENIED),
            acquire_failed(20, TIMEOUT),
            acquire_failed(30, DENIED),
            acquire_failed(40, DENIED),
            failed(40, 3),
        ];
        assert_eq!(e4(&broken), [("E4", 40)]);
    }

    /// A row met while held publishes nothing; a Failed then (MC190) is E4. After the grant ends,
    /// the row goes on, and its next denial is owed a Failed.
    #[test]
    fn a_failed_while_held_fires_e4() {
        let mut h = vec![
            owner_started(None),
            held(5),
            renew_failed(10, DENIED),
            renew_failed(20, DENIED),
            renew_failed(30, DENIED),
        ];
        assert_eq!(e4(&h), []);
        h.push(failed(30, 3));
        assert_eq!(e4(&h), [("E4", 30)]);
        h.pop();
        h.push(at(40, LeaseEvent::Released { lease: "L".into(), owner: "a".into() }));
        h.push(acquire_failed(50, DENIED));
        h.push(failed(50, 4));
        assert_eq!(e4(&h), []);
        // A grant that came too late to believe in (`belief_us` 0) is never held: a row after
        // it is owed its Failed (lease seed 36 340).
        let late = [
            owner_started(None),
            granted(5, 0),
            acquire_failed(10, DENIED),
            acquire_failed(20, DENIED),
            acquire_failed(30, DENIED),
            failed(30, 3),
        ];
        assert_eq!(e4(&late), []);
        // The same Failed published again at the row's next error: once per distinct error.
        let mut again = late.to_vec();
        again.extend([acquire_failed(40, DENIED), failed(40, 4)]);
        assert_eq!(e4(&again), [("E4", 40)]);
    }

    /// A quarantine answer after a published Failed, with no Awaiting by the owner's next event
    /// (MC187), is E4 at the bound; a stop drops what is owed.
    #[test]
    fn a_failed_left_in_place_fires_e4() {
        let row = [
            owner_started(None),
            acquire_failed(10, DENIED),
            acquire_failed(20, DENIED),
            acquire_failed(30, DENIED),
            failed(30, 3),
        ];
        let mut h = row.to_vec();
        h.extend([quarantined(40), refused(60), awaiting(60)]);
        assert_eq!(e4(&h), [("E4", 41)]);
        let mut h = row.to_vec();
        h.extend([quarantined(40), at(40, LeaseEvent::Stopping { lease: "L".into(), owner: "a".into() }), refused(60)]);
        assert_eq!(e4(&h), []);
    }

    /// A start that warns it still retries a denial (MC192), or gives up on one as on a timeout,
    /// is E5 at the event; a start that gives up on it at once, or retries a timeout, is not.
    #[test]
    fn a_start_that_retries_a_permanent_error_fires_e5() {
        let pool = |t_ms: u64, e: PoolEvent<'_>| Ev(t_ms * 1000, "n1", Some(Event::Pool(e.to_static())), None);
        let waiting = |t_ms: u64, error: &str| {
            let (p, n) = ("p".into(), "n1".into());
            pool(
                t_ms,
                PoolEvent::StartWaiting {
                    pool: p,
                    node: n,
                    attempts: 1,
                    waited_ms: 0,
                    timeout_ms: 30_000,
                    error: error.into(),
                },
            )
        };
        let failed = |t_ms: u64, permanent: bool, error: &str| {
            let (p, n) = ("p".into(), "n1".into());
            pool(
                t_ms,
                PoolEvent::StartFailed {
                    pool: p,
                    node: n,
                    attempts: 1,
                    waited_ms: 0,
                    permanent,
                    took_us: 0,
                    error: error.into(),
                },
            )
        };
        let e5 = |h: &[Ev]| at_ms(&pool_starts_end_at_a_permanent_error(h));
        assert_eq!(e5(&[waiting(1, TIMEOUT), failed(2, true, DENIED), failed(3, false, TIMEOUT)]), []);
        assert_eq!(e5(&[waiting(1, DENIED), failed(2, false, DENIED)]), [("E5", 1), ("E5", 2)]);
    }

    /// A requeue given up on a transient error with tries left (MC401), or retried after a
    /// permanent one, is E9 at the event; one given up at its last try, on a permanent error,
    /// or at the re-read of a changed record, and one retried after a timeout, are not.
    #[test]
    fn a_requeue_that_gives_up_a_transient_error_early_fires_e9() {
        let pool = |t_ms: u64, e: PoolEvent<'_>| Ev(t_ms * 1000, "n1", Some(Event::Pool(e.to_static())), None);
        let gave_up = |t_ms: u64, tries: u32, error: &str, reread: bool| {
            let (job, worker) = ("j".into(), "w".into());
            pool(t_ms, PoolEvent::RequeueGaveUp { job, worker, tries, tries_max: 3, error: error.into(), reread })
        };
        let retry = |t_ms: u64, error: &str| {
            let (job, worker) = ("j".into(), "w".into());
            let e = PoolEvent::RequeueRetry {
                job,
                worker,
                error: error.into(),
                took_us: 0,
                retry_min_us: 1,
                retry_max_us: 2,
                tries_max: 3,
            };
            pool(t_ms, e)
        };
        let e9 = |h: &[Ev]| at_ms(&cleaner_requeues_retry_transient_errors(h));
        let fine = [
            retry(1, TIMEOUT),
            gave_up(2, 3, TIMEOUT, false),
            gave_up(3, 1, DENIED, false),
            gave_up(4, 1, TIMEOUT, true),
        ];
        assert_eq!(e9(&fine), []);
        assert_eq!(e9(&[gave_up(5, 1, TIMEOUT, false), retry(6, DENIED)]), [("E9", 5), ("E9", 6)]);
    }

    /// The contract's permanent errors, by their text; transient ones are not.
    #[test]
    fn permanent_errors_are_the_contracts_list() {
        assert!(is_permanent(DENIED));
        assert!(is_permanent("store unavailable (not applied): auth: invalid password for user app"));
        assert!(is_permanent("key \"l/x\" holds unexpected data: not a number"));
        assert!(!is_permanent(TIMEOUT));
        assert!(!is_permanent("store refused the operation (not applied): LOADING store is starting"));
        assert!(!is_permanent("connection lost after send (outcome unknown): reset"));
        // The memo answers as the judgement does, past its size and on repeats.
        let texts: Vec<String> =
            (0..20).map(|i| if i % 3 == 0 { format!("{DENIED} #{i}") } else { format!("{TIMEOUT} #{i}") }).collect();
        for _ in 0..3 {
            for t in &texts {
                assert_eq!(is_permanent(t), judge_permanent(t), "{t}");
            }
        }
    }
}
