// SPDX-License-Identifier: GPL-2.0
//! Threads, by pid (`struct pid`), and the realtime signals sent to them.

use super::{
    bindings,
    keys::{Key, Kgid, Kuid},
};
use core::ptr::NonNull;
use kernel::{
    error::{code::ESRCH, to_result, Result},
    types::{ARef, Opaque},
};

/// A `struct pid`: the identity of a thread that may since have exited.
#[repr(transparent)]
pub(crate) struct Pid(Opaque<bindings::pid>);

impl Pid {
    /// # Safety
    ///
    /// `ptr` must be a valid `struct pid` whose count is held for the whole of `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::pid) -> &'a Pid {
        // SAFETY: `Pid` is a transparent wrapper; validity is the caller's promise.
        unsafe { &*ptr.cast() }
    }

    fn as_ptr(&self) -> *mut bindings::pid {
        self.0.get()
    }

    /// A new owned reference to this pid.
    pub(crate) fn to_owned(&self) -> ThreadRef {
        // SAFETY: The pid is valid; `get_pid()` takes a new count on it and returns it.
        ThreadRef(unsafe { NonNull::new_unchecked(bindings::keyagent_get_pid(self.as_ptr())) })
    }

    /// The pid number in the current task's pid namespace, 0 if it has none there.
    pub(crate) fn nr_seen_by_current(&self) -> i32 {
        // SAFETY: The pid is valid; `pid_vnr()` reads it under RCU.
        unsafe { bindings::pid_vnr(self.as_ptr()) }
    }
}

/// An owned reference to the `struct pid` of a thread.
pub(crate) struct ThreadRef(NonNull<bindings::pid>);

// SAFETY: `struct pid` is reference counted with atomics and read under RCU.
unsafe impl Send for ThreadRef {}
// SAFETY: See `Send`.
unsafe impl Sync for ThreadRef {}

impl ThreadRef {
    /// The calling thread.
    pub(crate) fn current() -> Self {
        // SAFETY: Takes a new count on the current thread's pid, which is never null.
        Self(unsafe { NonNull::new_unchecked(bindings::keyagent_get_current_pid()) })
    }

    /// Whether this is the calling thread.
    pub(crate) fn is_current(&self) -> bool {
        // SAFETY: We hold a count on the pid; the helper compares it with current's.
        unsafe { bindings::keyagent_current_pid_is(self.0.as_ptr()) }
    }

    pub(crate) fn pid(&self) -> &Pid {
        // SAFETY: We hold a count on the pid.
        unsafe { Pid::from_raw(self.0.as_ptr()) }
    }

    /// The thread's process keyring, if the thread exists, has not begun to exit and has one.
    /// Does not sleep.
    pub(crate) fn process_keyring(&self) -> Option<ARef<Key>> {
        // SAFETY: We hold a count on the pid; the helper looks the task up under RCU and
        // returns a new reference, or null.
        unsafe { Key::from_owned_raw(bindings::keyagent_pid_process_keyring(self.0.as_ptr())) }
    }

    /// Queues realtime signal `sig` on the thread with `si_code`, `si_int` = `value`, and
    /// `si_pid`/`si_uid` = `from`/`uid` as seen from the thread's pid and user namespaces (0 if
    /// `from` is not visible there, the overflow uid if `uid` is not mapped), like a
    /// `sigqueue()` from the current task. Fails with `EAGAIN` when the thread's user has
    /// `RLIMIT_SIGPENDING` signals queued, and with `ESRCH` when the thread is gone. Does not
    /// sleep.
    pub(crate) fn send_rt_signal(
        &self,
        sig: u32,
        si_code: i32,
        value: i32,
        from: &Pid,
        uid: Kuid,
    ) -> Result {
        // SAFETY: We hold a count on the pid; a non-null result is a task reference we own.
        let task =
            unsafe { bindings::get_pid_task(self.0.as_ptr(), bindings::pid_type_PIDTYPE_PID) };
        if task.is_null() {
            return Err(ESRCH);
        }
        let mut info = bindings::kernel_siginfo::default();
        // CAST: Signal numbers are at most _NSIG (64).
        let sig = sig as i32;
        // SAFETY: `task` is pinned by our reference, `from` is a valid pid; the helpers fill a
        // cleared siginfo, and `send_sig_info()` copies it.
        let ret = unsafe {
            let pid = bindings::keyagent_pid_seen_by(task, from.as_ptr());
            // The signal code translates the uid from our user namespace into the target's.
            let uid = bindings::keyagent_uid_for_siginfo(uid.0);
            bindings::keyagent_fill_rt_siginfo(&mut info, sig, si_code, pid, uid, value);
            let ret = bindings::send_sig_info(sig, &mut info, task);
            bindings::keyagent_put_task(task);
            ret
        };
        to_result(ret)
    }
}

impl Drop for ThreadRef {
    fn drop(&mut self) {
        // SAFETY: We own one count on the pid.
        unsafe { bindings::put_pid(self.0.as_ptr()) }
    }
}

impl Kuid {
    /// The id as the current task's user namespace sees it (the overflow uid if unmapped).
    pub(crate) fn seen_by_current(self) -> u32 {
        // SAFETY: Reads current's user namespace.
        unsafe { bindings::keyagent_uid_seen_by_current(self.0) }
    }
}

impl Kgid {
    /// The id as the current task's user namespace sees it (the overflow gid if unmapped).
    pub(crate) fn seen_by_current(self) -> u32 {
        // SAFETY: Reads current's user namespace.
        unsafe { bindings::keyagent_gid_seen_by_current(self.0) }
    }
}
