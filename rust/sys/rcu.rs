// SPDX-License-Identifier: GPL-2.0
//! RCU read-side critical sections, and `Arc`s published under RCU.

use super::bindings;
use core::{
    marker::PhantomData,
    sync::atomic::{AtomicPtr, Ordering},
};
use kernel::sync::{Arc, ArcBorrow};

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

/// Waits until every RCU read-side critical section that has begun has ended. May sleep.
pub(crate) fn synchronize() {
    // SAFETY: `synchronize_rcu()` has no preconditions besides process context.
    unsafe { bindings::keyagent_synchronize_rcu() }
}

/// An `Arc<T>` published in a static for code that cannot be handed one (such as a file's
/// release), read under RCU: [`Published::withdraw`] waits for readers before dropping it.
pub(crate) struct Published<T>(AtomicPtr<T>);

impl<T: Send + Sync> Published<T> {
    pub(crate) const fn new() -> Self {
        Self(AtomicPtr::new(core::ptr::null_mut()))
    }

    /// Publishes `value`, replacing (and withdrawing) what was published. May sleep.
    pub(crate) fn publish(&self, value: &Arc<T>) {
        let raw = Arc::into_raw(value.clone()).cast_mut();
        self.release(self.0.swap(raw, Ordering::AcqRel));
    }

    /// Withdraws what was published, once no reader can still see it. May sleep.
    pub(crate) fn withdraw(&self) {
        self.release(self.0.swap(core::ptr::null_mut(), Ordering::AcqRel));
    }

    fn release(&self, old: *mut T) {
        if old.is_null() {
            return;
        }
        synchronize();
        // SAFETY: `publish` made `old` from an `Arc` whose reference it kept; it is no longer
        // published, and every reader that loaded it has left its read-side section.
        drop(unsafe { Arc::from_raw(old) });
    }

    /// A new reference to what is published, if anything. Does not sleep.
    pub(crate) fn get(&self) -> Option<Arc<T>> {
        let _rcu = read_lock();
        let raw = self.0.load(Ordering::Acquire);
        // SAFETY: A pointer loaded under RCU stays a live `Arc` until the section ends
        // (`release` waits for it), so a borrow of it may take a new reference.
        (!raw.is_null()).then(|| unsafe { ArcBorrow::from_raw(raw) }.into())
    }
}
