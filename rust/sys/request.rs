// SPDX-License-Identifier: GPL-2.0
//! A key construction as the request_key actor sees it: the authorisation key
//! (`.request_key_auth`) and what it records about the key under construction and its
//! requester.

use super::{
    bindings,
    keys::{DomainTag, Key, Kgid, Kuid},
    ns::{self, UserNamespace},
    task::{Pid, ThreadRef},
};
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

    /// The keyring the key under construction is linked into, if any: for the kernel's own
    /// requests, the cache of the type (such as dns_resolver's).
    pub(crate) fn dest_keyring(&self) -> Option<&Key> {
        // The authorisation record holds a count on its destination keyring, if any.
        let keyring = self.rka().dest_keyring;
        // SAFETY: As above: valid while the request is.
        (!keyring.is_null()).then(|| unsafe { Key::from_raw(keyring) })
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

    /// Whether the kernel made this request: the requester acts under override credentials
    /// (as `dns_query()`, the NFS idmapper and CIFS do) or is a kernel thread.
    pub(crate) fn is_kernel_originated(&self) -> bool {
        // SAFETY: The helpers read current's own credentials and flags.
        unsafe {
            bindings::keyagent_current_has_override_cred()
                || bindings::keyagent_current_is_kthread()
        }
    }

    /// Whether the requester is a kernel thread (which has no namespaces of its own).
    pub(crate) fn is_kernel_thread(&self) -> bool {
        // SAFETY: Reads current's flags.
        unsafe { bindings::keyagent_current_is_kthread() }
    }

    /// The domain tag of the requesting task's network namespace.
    pub(crate) fn requester_net_key_domain(&self) -> Option<DomainTag> {
        ns::current_net_key_domain()
    }

    /// The filesystem uid the request is made with.
    pub(crate) fn requester_fsuid(&self) -> Kuid {
        // SAFETY: As in `requester_session_keyring()`.
        Kuid(unsafe { (*bindings::keyagent_current_cred()).fsuid })
    }

    /// The user namespace of the credentials the request is made with.
    pub(crate) fn requester_user_ns(&self) -> UserNamespace<'_> {
        // SAFETY: As in `requester_session_keyring()`; credentials hold their user namespace.
        unsafe { UserNamespace::from_raw((*bindings::keyagent_current_cred()).user_ns) }
    }

    /// Whether the requester gained no privilege by exec and did not give up being dumpable:
    /// its process may be traced by its own user.
    pub(crate) fn requester_is_dumpable(&self) -> bool {
        // SAFETY: Reads current's mm.
        unsafe { bindings::keyagent_current_is_dumpable() }
    }

    /// Whether the requester is `thread`.
    pub(crate) fn requester_is(&self, thread: &ThreadRef) -> bool {
        thread.is_current()
    }

    /// The requesting thread.
    pub(crate) fn requester_pid(&self) -> &Pid {
        // SAFETY: The authorisation record holds a count on the requester's pid.
        unsafe { Pid::from_raw(self.rka().pid) }
    }

    /// The requester's filesystem uid as recorded with the request and passed to
    /// `/sbin/request-key`.
    pub(crate) fn recorded_fsuid(&self) -> Kuid {
        // SAFETY: The authorisation record holds a count on the requester's credentials.
        Kuid(unsafe { (*self.rka().cred).fsuid })
    }

    /// The requester's filesystem gid as recorded with the request.
    pub(crate) fn recorded_fsgid(&self) -> Kgid {
        // SAFETY: As in `recorded_fsuid()`.
        Kgid(unsafe { (*self.rka().cred).fsgid })
    }

    /// The callout information given to `request_key()`, empty if none.
    pub(crate) fn callout(&self) -> &[u8] {
        let rka = self.rka();
        if rka.callout_info.is_null() {
            return &[];
        }
        // SAFETY: The authorisation record owns its copy of the callout information, of
        // `callout_len` bytes, for as long as it lives.
        unsafe { core::slice::from_raw_parts(rka.callout_info.cast::<u8>(), rka.callout_len) }
    }

    /// Fails the construction with `error`, unless it has ended already. May sleep.
    pub(crate) fn fail(&self, error: Error) {
        // EBUSY only means that someone answered first.
        let _ = self
            .target()
            .reject(FAILURE_CACHE_SECS, error, self.authkey);
    }
}
