//! keel's assertion macro: invariants written where they are produced *and* where they are
//! consumed (TigerBeetle's paired assertions), checked wherever keel is being proven.
//!
//! [`keel_assert!`](crate::keel_assert) is active under madsim (`cfg(madsim)`, whose checker runs
//! release builds), loom (`cfg(keel_loom)`), keel's own tests (`cfg(test)`), debug builds, and with
//! feature `assertions`. In a production release build it compiles to nothing: the condition is
//! type-checked but never evaluated.
//!
//! A failed assertion panics with `keel assertion failed: …`. It is also recorded on the failing
//! thread ([`take_failures`]) so that a checker sees it even when a `catch_unwind` on the way
//! (the lease owner's supervision of guarded work) swallows the panic: the simulator turns each
//! into an `assert` violation with its replay line.
//!
//! The cross-part rules asserted at both ends:
//!
//! | rule | produced | consumed |
//! |---|---|---|
//! | fences only grow per lease key | store, when minting | lease machine, on each grant |
//! | revisions are continuous per map | store, on each write | replica, on each applied change |
//! | attempts only grow per job | store, on each claim | pool worker, on each claim |
//! | completer backlog adds up | intake | flush |

/// Whether keel assertions are compiled in.
pub const ENABLED: bool = cfg!(any(madsim, keel_loom, test, debug_assertions, feature = "assertions"));

#[cfg(any(madsim, keel_loom, test, debug_assertions, feature = "assertions"))]
std::thread_local! {
    static FAILURES: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Assert a keel invariant (see the [module docs](crate::assert)). Compiled out of production
/// release builds.
///
/// ```
/// let fence = 7u64;
/// keel::keel_assert!(fence > 0, "fences start above zero, got {fence}");
/// ```
#[macro_export]
macro_rules! keel_assert {
    ($cond:expr $(,)?) => {
        $crate::keel_assert!($cond, "{}", stringify!($cond))
    };
    ($cond:expr, $($arg:tt)+) => {
        if $crate::assert::ENABLED && !$cond {
            $crate::assert::failed(file!(), line!(), format_args!($($arg)+))
        }
    };
}

/// Record a failed assertion and panic. Called by [`keel_assert!`](crate::keel_assert) only.
#[doc(hidden)]
#[cold]
pub fn failed(file: &str, line: u32, msg: std::fmt::Arguments<'_>) -> ! {
    let msg = format!("keel assertion failed at {file}:{line}: {msg}");
    #[cfg(any(madsim, keel_loom, test, debug_assertions, feature = "assertions"))]
    FAILURES.with(|f| f.borrow_mut().push(msg.clone()));
    panic!("{msg}")
}

/// The assertions that failed on this thread since the last call (a madsim simulation runs on
/// one thread). Always empty when assertions are compiled out.
pub fn take_failures() -> Vec<String> {
    #[cfg(any(madsim, keel_loom, test, debug_assertions, feature = "assertions"))]
    {
        FAILURES.with(|f| std::mem::take(&mut *f.borrow_mut()))
    }
    #[cfg(not(any(madsim, keel_loom, test, debug_assertions, feature = "assertions")))]
    {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_failed_assertion_panics_and_is_recorded() {
        const { assert!(super::ENABLED) };
        let _ = super::take_failures();
        crate::keel_assert!(1 + 1 == 2, "arithmetic");
        assert!(super::take_failures().is_empty());
        let r = std::panic::catch_unwind(|| crate::keel_assert!(1 > 2, "one is not above {}", 2));
        let msg = r.expect_err("panics").downcast::<String>().expect("message");
        assert!(msg.contains("keel assertion failed") && msg.contains("one is not above 2"), "{msg}");
        let failures = super::take_failures();
        assert_eq!(failures.len(), 1, "the failure is recorded even if the panic is caught");
        assert!(failures[0].contains("one is not above 2"));
    }
}
