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

/// Longest `global_types` value the module keeps (with its NUL).
const GLOBAL_TYPES_MAX: usize = 256;

/// Whether `type_name` is listed in `global_types`: a key type with a global cache that the
/// administrator allows agents scoped to a network namespace to serve. Does not sleep.
pub(crate) fn global_type_allowed(type_name: &[u8]) -> bool {
    let mut buf = [0u8; GLOBAL_TYPES_MAX];
    // SAFETY: The helper copies at most `buf.len()` bytes, NUL included, under its lock.
    let len = unsafe { bindings::keyagent_param_global_types(buf.as_mut_ptr(), buf.len()) };
    buf[..len.min(buf.len())]
        .split(|&b| b == b',')
        .any(|listed| listed == type_name)
}
