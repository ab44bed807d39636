//! Synchronisation primitives, swapped for loom's under `cfg(keel_loom)` so that the in-process
//! concurrency pieces (waiter registries, the completer's event channel, service lifecycle) can
//! be explored exhaustively by `cargo loomtest`.

#[cfg(keel_loom)]
#[allow(unused_imports)]
pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard, atomic};

#[cfg(not(keel_loom))]
#[allow(unused_imports)]
pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard, atomic};
