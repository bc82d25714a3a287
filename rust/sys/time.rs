// SPDX-License-Identifier: GPL-2.0
//! Jiffies.

use super::bindings;

/// A point in time, in jiffies since boot.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Jiffies(u64);

impl Jiffies {
    /// Now.
    pub(crate) fn now() -> Self {
        // SAFETY: Reading the jiffies counter has no preconditions.
        Self(unsafe { bindings::keyagent_jiffies() })
    }

    /// Whether at least `ms` milliseconds have passed since `self`.
    pub(crate) fn elapsed_ms(self, ms: u32) -> bool {
        Self::now().0.wrapping_sub(self.0) >= ms_to_jiffies(ms)
    }
}

/// `ms` milliseconds in jiffies.
pub(crate) fn ms_to_jiffies(ms: u32) -> u64 {
    // SAFETY: A pure conversion.
    let jiffies = unsafe { bindings::keyagent_msecs_to_jiffies(ms) };
    // CAST: unsigned long is 64 bits wide on the 64-bit kernels Rust supports.
    jiffies as u64
}
