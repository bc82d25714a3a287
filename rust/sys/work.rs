// SPDX-License-Identifier: GPL-2.0
//! Delayed work on the system workqueue (`struct delayed_work`), which 6.12's `workqueue`
//! module lacks.
//!
//! The work lives in a field of an `Arc`-owned `T`. Queueing it takes a reference on the owner
//! that the run (or a cancellation) gives back, so the owner cannot go away while the work is
//! queued or running, whatever its owner does.

use super::bindings;
use core::marker::PhantomData;
use kernel::{
    prelude::*,
    sync::{Arc, ArcBorrow},
    types::Opaque,
};

/// Work that a [`DelayedWork`] field of `Self` runs.
///
/// # Safety
///
/// `OFFSET` must be the offset of a `DelayedWork<Self>` field in `Self`; implement it with
/// [`impl_has_delayed_work!`], which checks that.
pub(crate) unsafe trait HasDelayedWork: Sized + Send + Sync + 'static {
    /// Offset of the `DelayedWork<Self>` field.
    const OFFSET: usize;

    /// The work. Runs in process context on the system workqueue; may sleep.
    fn run(this: ArcBorrow<'_, Self>);
}

/// Implements [`HasDelayedWork`] for `$type` with its field `$field` and the function `$run`.
macro_rules! impl_has_delayed_work {
    ($type:ty, $field:ident, $run:path) => {
        // The field must be a `DelayedWork` of the type, or this does not compile.
        const _: fn(&$type) -> &$crate::sys::work::DelayedWork<$type> = |owner| &owner.$field;
        // SAFETY: `OFFSET` is the offset of `$field`, a `DelayedWork<$type>` (checked above).
        unsafe impl $crate::sys::work::HasDelayedWork for $type {
            const OFFSET: usize = core::mem::offset_of!($type, $field);
            fn run(this: kernel::sync::ArcBorrow<'_, Self>) {
                $run(this)
            }
        }
    };
}
pub(crate) use impl_has_delayed_work;

/// A `struct delayed_work` embedded in a `T` that lives in an `Arc`.
#[repr(transparent)]
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

    /// The work item of `owner`.
    fn of(owner: *const T) -> *mut bindings::delayed_work {
        // The field is at `OFFSET` (by the trait's contract); `Opaque` is transparent.
        owner
            .cast::<u8>()
            .wrapping_add(T::OFFSET)
            .cast::<bindings::delayed_work>()
            .cast_mut()
    }

    /// Runs `owner`'s work after `delay` jiffies, unless it is queued already or disabled. The
    /// queued work holds a reference on `owner`. Does not sleep.
    pub(crate) fn schedule(owner: ArcBorrow<'_, T>, delay: u64) {
        let owner = Arc::into_raw(Arc::<T>::from(owner));
        // SAFETY: The work was initialised by `new()` and is pinned in the `Arc`-owned owner.
        // CAST: jiffies deltas fit in unsigned long on 64-bit kernels.
        let queued =
            unsafe { bindings::keyagent_schedule_delayed_work(Self::of(owner), delay as _) };
        if !queued {
            // SAFETY: Not queued: the reference taken above is still ours.
            drop(unsafe { Arc::from_raw(owner) });
        }
    }

    /// Cancels `owner`'s work, waits for a running instance to finish, and keeps it from being
    /// queued again. May sleep.
    pub(crate) fn disable_sync(owner: &T) {
        // SAFETY: The work was initialised by `new()`.
        let was_queued = unsafe { bindings::disable_delayed_work_sync(Self::of(owner)) };
        if was_queued {
            // SAFETY: A queued work holds the reference `schedule()` took on its owner (which is
            // therefore `Arc`-owned); cancelling it gives that reference back to us.
            drop(unsafe { Arc::from_raw(owner as *const T) });
        }
    }

    /// # Safety
    ///
    /// Called by the workqueue with the `work_struct` of a `DelayedWork<T>` embedded in a `T`,
    /// queued by `schedule()`.
    unsafe extern "C" fn run(work: *mut bindings::work_struct) {
        // `work` is the first member of `struct delayed_work`, which is all of our transparent
        // `Opaque` at `OFFSET` in `T`.
        let owner = work.cast::<u8>().wrapping_sub(T::OFFSET).cast::<T>();
        // SAFETY: `schedule()` gave the queued work a reference on the `Arc`-owned owner.
        let owner = unsafe { Arc::from_raw(owner) };
        T::run(owner.as_arc_borrow());
    }
}
