// SPDX-License-Identifier: GPL-2.0
//! Thin abstractions over the kernel interfaces keyagent needs and 6.12's kernel crate does not
//! bind: keys and key types, authorisation keys, the ftrace hook, signals, namespaces, RCU,
//! delayed work, wait queues, the channel device and debugfs. Every binding and every `unsafe` block of the module lives under this module; the
//! module's logic, outside it, is safe Rust.

#[allow(
    dead_code,
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    unreachable_pub,
    unsafe_op_in_unsafe_fn,
    improper_ctypes,
    missing_docs,
    clippy::all,
    clippy::undocumented_unsafe_blocks
)]
mod bindings {
    use kernel::ffi;
    include!("bindings_generated.rs");
}

pub(crate) mod abi;
pub(crate) mod chardev;
pub(crate) mod debugfs;
pub(crate) mod errno;
pub(crate) mod ftrace;
pub(crate) mod key_type;
pub(crate) mod keys;
pub(crate) mod ns;
pub(crate) mod params;
pub(crate) mod rcu;
pub(crate) mod request;
pub(crate) mod task;
pub(crate) mod time;
pub(crate) mod wait;
pub(crate) mod work;

/// `si_code` of the signals sent to agents (from `include/keyagent.h`).
pub(crate) const KEYAGENT_SI_CODE: i32 = bindings::KEYAGENT_SI_CODE;

/// Longest key type name an agent may serve (from `include/keyagent.h`).
// CAST: A small constant.
pub(crate) const KEYAGENT_TYPE_NAME_MAX: usize = bindings::KEYAGENT_TYPE_NAME_MAX as usize;
