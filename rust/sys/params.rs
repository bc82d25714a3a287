// SPDX-License-Identifier: GPL-2.0
//! The module parameters (declared in C, `/sys/module/keyagent/parameters/`), read at the time
//! of use so that changes apply at once.

use super::bindings;

/// Seconds an agent has to answer a construction (at least 1).
pub(crate) fn request_timeout_secs() -> u32 {
    // SAFETY: The helper only reads an integer.
    unsafe { bindings::keyagent_param_request_timeout() }
}

/// Constructions one agent may have in flight.
pub(crate) fn max_pending() -> usize {
    // SAFETY: The helper only reads an integer.
    let max = unsafe { bindings::keyagent_param_max_pending() };
    // CAST: u32 always fits in usize on 64-bit kernels.
    max as usize
}
