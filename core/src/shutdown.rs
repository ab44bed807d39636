//! Shutdown tokens that form a tree.
//!
//! Cancelling a token cancels its whole subtree. A [`detached`](Shutdown::detached) child keeps
//! its place in the tree for naming and tracing but ignores the parent's cancellation (River's
//! `context.WithoutCancel`): the completer runs on one so that a cancelled caller cannot cut its
//! final flush short.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::Notify;

/// A cancellation token in a tree.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use keel::shutdown::Shutdown;
/// let root = Shutdown::new("service");
/// let child = root.child("worker");
/// let drain = root.detached("completer");
/// root.cancel();
/// child.cancelled().await; // returns at once
/// assert!(child.is_cancelled());
/// assert!(!drain.is_cancelled()); // detached: only its own cancel() stops it
/// # }
/// ```
#[derive(Clone)]
pub struct Shutdown {
    node: Arc<Node>,
}

struct Node {
    name: String,
    cancelled: AtomicBool,
    notify: Notify,
    children: Mutex<Vec<Weak<Node>>>,
    /// Held so that a cancel reaches this node through a parent token the application
    /// dropped: `root.child("a").child("b")` keeps `a`'s node alive as long as `b` lives.
    /// (Parents hold their children weakly, so there is no cycle.)
    _parent: Option<Arc<Node>>,
}

impl std::fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shutdown").field("name", &self.node.name).field("cancelled", &self.is_cancelled()).finish()
    }
}

impl Shutdown {
    /// A new root token.
    pub fn new(name: impl Into<String>) -> Self {
        Self::under(name.into(), None)
    }

    fn under(name: String, parent: Option<Arc<Node>>) -> Self {
        Shutdown {
            node: Arc::new(Node {
                name,
                cancelled: AtomicBool::new(false),
                notify: Notify::new(),
                children: Mutex::new(Vec::new()),
                _parent: parent,
            }),
        }
    }

    /// The token's path in the tree, e.g. `service/worker`.
    pub fn name(&self) -> &str {
        &self.node.name
    }

    /// A child cancelled with this token (and at once, if this one is already cancelled).
    pub fn child(&self, name: &str) -> Shutdown {
        let child = Shutdown::under(format!("{}/{}", self.node.name, name), Some(self.node.clone()));
        {
            let mut children = self.node.children.lock().unwrap_or_else(|p| p.into_inner());
            children.retain(|w| w.strong_count() > 0); // bound the list by live children
            children.push(Arc::downgrade(&child.node));
        }
        // Checked after registering, so a concurrent cancel() is never missed. MC224: not checked,
        // so a child made after its parent's cancel runs on (round 24 B #14).
        if self.is_cancelled() && !crate::mutants::active(crate::mutants::Mutant::MC224) {
            child.cancel();
        }
        child
    }

    /// A child that keeps this token's name but ignores its cancellation.
    pub fn detached(&self, name: &str) -> Shutdown {
        Shutdown::new(format!("{}/{}", self.node.name, name))
    }

    /// Cancel this token and every non-detached descendant. Idempotent.
    pub fn cancel(&self) {
        if self.node.cancelled.swap(true, Ordering::AcqRel) {
            return;
        }
        if crate::mutants::active(crate::mutants::Mutant::MC214) {
            // MC214: one waiter woken: the others sleep on a cancelled token.
            self.node.notify.notify_one();
        } else {
            self.node.notify.notify_waiters();
        }
        let children = std::mem::take(&mut *self.node.children.lock().unwrap_or_else(|p| p.into_inner()));
        for child in children.iter().filter_map(Weak::upgrade) {
            // MC352: the walk stops at a child already cancelled, as if the ones after it had
            // been cancelled with it: a live child registered after a stopped one runs on.
            if crate::mutants::active(crate::mutants::Mutant::MC352) && child.cancelled.load(Ordering::Acquire) {
                break;
            }
            Shutdown { node: child }.cancel();
        }
    }

    /// Whether [`cancel`](Shutdown::cancel) was called on this token or an ancestor it follows.
    pub fn is_cancelled(&self) -> bool {
        self.node.cancelled.load(Ordering::Acquire)
    }

    /// Completes once the token is cancelled.
    pub async fn cancelled(&self) {
        loop {
            let notified = self.node.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A child made after its parent was cancelled is born cancelled: a task handed a fresh
    /// child of a stopping service stops with it (round 24 B #14, MC224: keel's own tokens are
    /// all cancelled again by their stops, which masks it in every simulation).
    #[test]
    fn a_child_of_a_cancelled_parent_is_born_cancelled() {
        let born = || {
            let root = Shutdown::new("service");
            root.cancel();
            (root.child("late").is_cancelled(), root.child("late").child("later").is_cancelled())
        };
        assert_eq!(born(), (true, true));
        #[cfg(feature = "mutants")]
        {
            crate::mutants::set(Some(crate::mutants::Mutant::MC224));
            let mutated = born();
            crate::mutants::set(None);
            assert_eq!(mutated, (false, false), "MC224 leaves a late child running");
        }
    }

    /// A long-lived parent holds only its live children: one child per work start or lifecycle
    /// run, each dropped, does not grow its list (blind-spot hunt, round 34, A #41: without the
    /// clean-up an owner leaked one entry per restart).
    #[test]
    fn dropped_children_do_not_pile_up_in_their_parent() {
        let root = Shutdown::new("owner");
        let kept = root.child("kept");
        for _ in 0..10_000 {
            drop(root.child("work"));
        }
        let held = root.node.children.lock().unwrap_or_else(|p| p.into_inner()).len();
        assert!(held <= 2, "the parent holds {held} children for one live child");
        root.cancel();
        assert!(kept.is_cancelled());
    }

    /// A cancel reaches every live child, those registered after a child already cancelled
    /// (a part of the service stopped early whose token is still held) too (blind-spot hunt,
    /// round 38, A #16, MC352: the walk stopped at the first cancelled child).
    #[test]
    fn a_cancel_reaches_children_past_one_already_cancelled() {
        let reached = || {
            let root = Shutdown::new("service");
            let early = root.child("early");
            early.cancel();
            let late = root.child("late");
            root.cancel();
            late.is_cancelled()
        };
        assert!(reached());
        #[cfg(feature = "mutants")]
        {
            crate::mutants::set(Some(crate::mutants::Mutant::MC352));
            let mutated = reached();
            crate::mutants::set(None);
            assert!(!mutated, "MC352 leaves the late child running");
        }
    }

    /// The middle token of `root.child("a").child("b")` is dropped at once; the root's cancel
    /// still reaches `b` (before, `b` was cut off from the tree and never stopped).
    #[test]
    fn a_cancel_reaches_every_descendant_but_the_detached() {
        let root = Shutdown::new("service");
        let (a, b, d) = (root.child("a"), root.child("a").child("b"), root.detached("d"));
        root.cancel();
        assert!(a.is_cancelled() && b.is_cancelled());
        assert!(!d.is_cancelled());
        assert_eq!(b.name(), "service/a/b");
    }
}
