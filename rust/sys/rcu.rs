// SPDX-License-Identifier: GPL-2.0
//! RCU read-side critical sections.

use super::bindings;
use core::marker::PhantomData;

/// An RCU read-side critical section, left when dropped. Must not sleep while held.
pub(crate) struct ReadGuard(PhantomData<*mut ()>);

/// Enters an RCU read-side critical section.
pub(crate) fn read_lock() -> ReadGuard {
    // SAFETY: `rcu_read_lock()` has no preconditions; the guard unlocks it on the same thread
    // (it is neither `Send` nor `Sync`).
    unsafe { bindings::keyagent_rcu_read_lock() };
    ReadGuard(PhantomData)
}

impl Drop for ReadGuard {
    fn drop(&mut self) {
        // SAFETY: Pairs with the `rcu_read_lock()` of `read_lock()`.
        unsafe { bindings::keyagent_rcu_read_unlock() };
    }
}
