// SPDX-License-Identifier: GPL-2.0
//! A debugfs directory of read-only counters.

use super::bindings;
use core::sync::atomic::AtomicU64;
use kernel::str::CStr;

/// `/sys/kernel/debug/<name>/`, removed with everything in it on drop.
pub(crate) struct Dir(*mut bindings::dentry);

// SAFETY: debugfs entries may be created and removed from any thread.
unsafe impl Send for Dir {}
// SAFETY: See `Send`; `Dir` has no `&self` methods that mutate.
unsafe impl Sync for Dir {}

impl Dir {
    /// Creates the directory. Like all debugfs users, carries on if debugfs is unavailable.
    pub(crate) fn new(name: &CStr) -> Self {
        // SAFETY: `name` is NUL-terminated; a null parent means the debugfs root.
        Self(unsafe { bindings::debugfs_create_dir(name.as_char_ptr(), core::ptr::null_mut()) })
    }

    /// Adds a read-only file showing `value` in decimal.
    pub(crate) fn counter(&self, name: &CStr, value: &'static AtomicU64) {
        // SAFETY: `value` lives forever; debugfs reads it as a u64, which an aligned 64-bit
        // atomic is. An error dentry as parent is accepted (and ignored) by debugfs.
        unsafe {
            bindings::debugfs_create_u64(name.as_char_ptr(), 0o444, self.0, value.as_ptr());
        }
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        // SAFETY: Removes the directory created in `new()` (error pointers are ignored).
        unsafe { bindings::debugfs_remove(self.0) };
    }
}
