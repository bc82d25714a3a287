// SPDX-License-Identifier: GPL-2.0
//! Wait queues (`struct wait_queue_head`) that `poll()` can wait on too, which 6.12's `CondVar`
//! does not offer.

use super::{bindings, chardev::PollTable};
use kernel::{error::to_result, prelude::*, types::Opaque};

/// A wait queue whose waiters test a condition that needs no lock.
#[pin_data]
pub(crate) struct WaitQueue {
    #[pin]
    head: Opaque<bindings::wait_queue_head>,
}

// SAFETY: The wait queue has its own lock; it may be used from any thread.
unsafe impl Send for WaitQueue {}
// SAFETY: See `Send`.
unsafe impl Sync for WaitQueue {}

impl WaitQueue {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `init_waitqueue_head()` initialises the pinned head in place.
            head <- Opaque::ffi_init(|head| unsafe { bindings::keyagent_init_waitqueue(head) }),
        })
    }

    /// Wakes the readers waiting in [`WaitQueue::wait_until`] and in `poll()`.
    pub(crate) fn wake_readers(&self) {
        // SAFETY: The head is initialised and pinned.
        unsafe { bindings::keyagent_wake_up_readers(self.head.get()) }
    }

    /// Sleeps until `ready()` returns true or a signal arrives (`ERESTARTSYS`). `ready` runs
    /// with the task's state set to sleep: it must not sleep (take no mutex). May sleep.
    pub(crate) fn wait_until<F: Fn() -> bool>(&self, ready: F) -> Result {
        /// # Safety
        ///
        /// `data` must point to an `F`.
        unsafe extern "C" fn trampoline<F: Fn() -> bool>(data: *const core::ffi::c_void) -> bool {
            // SAFETY: `data` is the `&F` passed below, alive for the whole wait.
            let ready = unsafe { &*data.cast::<F>() };
            ready()
        }
        // SAFETY: The head is initialised and pinned; `ready` outlives the call, which calls
        // the trampoline only with it.
        to_result(unsafe {
            bindings::keyagent_wait_event(
                self.head.get(),
                Some(trampoline::<F>),
                (&ready as *const F).cast(),
            )
        })
    }

    /// Adds the queue to the queues `poll()` waits on.
    pub(crate) fn register_poll(&self, table: &PollTable<'_>) {
        // SAFETY: The head is initialised and pinned, and outlives the poll: the file that
        // `table` polls owns it (a channel lives as long as its files). `table` is valid for the
        // call of the file's `poll`.
        unsafe { bindings::keyagent_poll_wait(table.file, self.head.get(), table.table) }
    }
}
