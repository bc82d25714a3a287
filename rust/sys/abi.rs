// SPDX-License-Identifier: GPL-2.0
//! The channel's records and constants, from `include/keyagent.h`.

use super::bindings;
use kernel::types::{AsBytes, FromBytes};

/// A request record's header (`struct keyagent_request`).
pub(crate) type RequestHeader = bindings::keyagent_request;
/// An answer record's header (`struct keyagent_answer`).
pub(crate) type AnswerHeader = bindings::keyagent_answer;

// SAFETY: A C struct of integers without padding: every byte is initialised.
unsafe impl AsBytes for RequestHeader {}
// SAFETY: A C struct of integers: every bit pattern is valid.
unsafe impl FromBytes for AnswerHeader {}

/// The Abi's constants.
pub(crate) struct Abi;

// CAST: Small constants of the header.
impl Abi {
    pub(crate) const VERSION: u16 = bindings::KEYAGENT_ABI_VERSION as u16;
    pub(crate) const ALIGN: usize = bindings::KEYAGENT_RECORD_ALIGN as usize;
    pub(crate) const REQUEST_MAX: usize = bindings::KEYAGENT_REQUEST_MAX as usize;
    pub(crate) const PAYLOAD_MAX: usize = bindings::KEYAGENT_PAYLOAD_MAX as usize;
    pub(crate) const WRITE_MAX: usize = bindings::KEYAGENT_WRITE_MAX as usize;
    pub(crate) const REQUEST_HEADER: usize = core::mem::size_of::<RequestHeader>();
    pub(crate) const ANSWER_HEADER: usize = core::mem::size_of::<AnswerHeader>();
    pub(crate) const REQUEST_KERNEL: u16 = bindings::KEYAGENT_REQUEST_KERNEL as u16;
    pub(crate) const OP_INSTANTIATE: u16 = bindings::KEYAGENT_OP_INSTANTIATE as u16;
    pub(crate) const OP_REJECT: u16 = bindings::KEYAGENT_OP_REJECT as u16;
    pub(crate) const OP_NEGATE: u16 = bindings::KEYAGENT_OP_NEGATE as u16;

    /// `len` rounded up to a whole number of record units.
    pub(crate) const fn align(len: usize) -> usize {
        len.div_ceil(Self::ALIGN) * Self::ALIGN
    }
}

// The layouts the header documents.
const _: () = assert!(Abi::REQUEST_HEADER == 32 && Abi::ANSWER_HEADER == 24);
