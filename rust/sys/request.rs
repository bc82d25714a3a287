// SPDX-License-Identifier: GPL-2.0
//! A key construction as the request_key actor sees it: the authorisation key
//! (`.request_key_auth`) and what it records about the key under construction and its
//! requester.

use super::{bindings, keys::Key, task::Pid};
use kernel::{error::Error, str::CStr};

/// How long a construction failed by the module stays negatively cached, in seconds.
pub(crate) const FAILURE_CACHE_SECS: u32 = 1;

/// A construction in progress, seen through its authorisation key.
///
/// # Invariants
///
/// `authkey` is a `.request_key_auth` key whose payload (`struct request_key_auth`) stays valid
/// while the reference is held: the actor is called with a count on it, and authorisation keys
/// are only invalidated, never revoked, before their construction ends.
pub(crate) struct Request<'a> {
    authkey: &'a Key,
}

impl<'a> Request<'a> {
    /// # Safety
    ///
    /// `authkey` must be the authorisation key the request_key actor was called with, used
    /// during that call only.
    pub(crate) unsafe fn from_actor_arg(authkey: *mut bindings::key) -> Self {
        // SAFETY: The actor's caller, `construct_key()`, holds a count on the key for the call.
        let authkey = unsafe { Key::from_raw(authkey) };
        Self { authkey }
    }

    fn rka(&self) -> &bindings::request_key_auth {
        // SAFETY: By the type invariant the payload of the authorisation key is a valid
        // `struct request_key_auth` for as long as `self.authkey` is.
        unsafe {
            &*self
                .authkey
                .payload_data0()
                .cast::<bindings::request_key_auth>()
        }
    }

    /// The authorisation key.
    pub(crate) fn authkey(&self) -> &'a Key {
        self.authkey
    }

    /// The key under construction.
    pub(crate) fn target(&self) -> &Key {
        // SAFETY: The authorisation record holds a count on its target key.
        unsafe { Key::from_raw(self.rka().target_key) }
    }

    /// The name of the type of the key under construction.
    pub(crate) fn type_name(&self) -> &CStr {
        self.target().type_name()
    }

    /// The session keyring of the requesting task, if it has one (kernel-internal requests
    /// under override credentials have none). The actor runs in the requester's context.
    pub(crate) fn requester_session_keyring(&self) -> Option<&Key> {
        // SAFETY: `current_cred()` is valid for the current task, which cannot change its own
        // credentials while it runs this code; the session keyring is held by those credentials.
        unsafe {
            let cred = bindings::keyagent_current_cred();
            let session = (*cred).session_keyring;
            (!session.is_null()).then(|| Key::from_raw(session))
        }
    }

    /// The requesting thread.
    pub(crate) fn requester_pid(&self) -> &Pid {
        // SAFETY: The authorisation record holds a count on the requester's pid.
        unsafe { Pid::from_raw(self.rka().pid) }
    }

    /// The requester's filesystem uid, as passed to `/sbin/request-key`.
    pub(crate) fn requester_fsuid(&self) -> bindings::kuid_t {
        // SAFETY: The authorisation record holds a count on the requester's credentials.
        unsafe { (*self.rka().cred).fsuid }
    }

    /// Fails the construction with `error`, unless it has ended already. May sleep.
    pub(crate) fn fail(&self, error: Error) {
        // EBUSY only means that someone answered first.
        let _ = self
            .target()
            .reject(FAILURE_CACHE_SECS, error, self.authkey);
    }
}
