// SPDX-License-Identifier: GPL-2.0
//! Delayed work on the system workqueue (`struct delayed_work`), which 6.12's `workqueue`
//! module lacks.

use super::bindings;
use core::marker::PhantomData;
use kernel::{prelude::*, types::Opaque};

/// Work that a [`DelayedWork`] field of `Self` runs.
///
/// # Safety
///
/// `OFFSET` must be the offset of a `DelayedWork<Self>` field in `Self`; implement it with
/// [`impl_has_delayed_work!`].
pub(crate) unsafe trait HasDelayedWork: Sized + Sync {
    /// Offset of the `DelayedWork<Self>` field.
    const OFFSET: usize;

    /// The work. Runs in process context on the system workqueue; may sleep.
    fn run(&self);
}

/// Implements [`HasDelayedWork`] for `$type` with its field `$field`.
macro_rules! impl_has_delayed_work {
    ($type:ty, $field:ident, $run:path) => {
        // SAFETY: `OFFSET` is the offset of the `DelayedWork<Self>` field `$field`.
        unsafe impl $crate::sys::work::HasDelayedWork for $type {
            const OFFSET: usize = core::mem::offset_of!($type, $field);
            fn run(&self) {
                $run(self)
            }
        }
    };
}
pub(crate) use impl_has_delayed_work;

/// A `struct delayed_work` embedded in a `T`.
///
/// The owner must call [`DelayedWork::cancel_sync`] before it is dropped or moved.
#[pin_data]
pub(crate) struct DelayedWork<T: HasDelayedWork> {
    #[pin]
    work: Opaque<bindings::delayed_work>,
    _owner: PhantomData<T>,
}

// SAFETY: The workqueue core synchronises access to the work item.
unsafe impl<T: HasDelayedWork> Send for DelayedWork<T> {}
// SAFETY: See `Send`.
unsafe impl<T: HasDelayedWork> Sync for DelayedWork<T> {}

impl<T: HasDelayedWork> DelayedWork<T> {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: The helper initialises the delayed work in place.
            work <- Opaque::ffi_init(|slot| unsafe {
                bindings::keyagent_init_delayed_work(slot, Some(Self::run))
            }),
            _owner: PhantomData,
        })
    }

    /// Runs the work after `delay` jiffies, unless it is queued already. Does not sleep.
    pub(crate) fn schedule(&self, delay: u64) {
        // SAFETY: The work was initialised by `new()` and is pinned in its owner.
        // CAST: jiffies deltas fit in unsigned long on 64-bit kernels.
        unsafe { bindings::keyagent_schedule_delayed_work(self.work.get(), delay as _) };
    }

    /// Cancels the work and waits for a running instance to finish. May sleep.
    pub(crate) fn cancel_sync(&self) {
        // SAFETY: The work was initialised by `new()`.
        unsafe { bindings::cancel_delayed_work_sync(self.work.get()) };
    }

    /// # Safety
    ///
    /// Called by the workqueue with the `work_struct` of a `DelayedWork<T>` embedded in a `T`.
    unsafe extern "C" fn run(work: *mut bindings::work_struct) {
        // `work` is the first member of `struct delayed_work`, which is the whole of our
        // transparent `Opaque` at offset 0 of `DelayedWork<T>`.
        let ptr = work.cast::<u8>().wrapping_sub(T::OFFSET).cast::<T>();
        // SAFETY: The work is embedded in a live `T` (at `OFFSET`), which cancels it before it
        // goes away.
        unsafe { &*ptr }.run();
    }
}
