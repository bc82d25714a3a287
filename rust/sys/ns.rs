// SPDX-License-Identifier: GPL-2.0
//! Credentials' namespaces: user namespaces (who is privileged over whom) and network
//! namespaces (whose key domain tags the keys of types cached per namespace).

use super::{
    bindings,
    keys::{DomainTag, Kuid},
};
use core::ptr::NonNull;

/// A user namespace, borrowed from credentials or a network namespace that hold it.
#[derive(Clone, Copy)]
pub(crate) struct UserNamespace<'a> {
    ns: &'a bindings::user_namespace,
}

impl<'a> UserNamespace<'a> {
    /// # Safety
    ///
    /// `ns` must be a valid user namespace that stays referenced for `'a`.
    pub(super) unsafe fn from_raw(ns: *const bindings::user_namespace) -> Self {
        Self {
            // SAFETY: The caller's promise.
            ns: unsafe { &*ns },
        }
    }

    /// The namespace this one was created in; `None` for the initial user namespace.
    pub(crate) fn parent(self) -> Option<UserNamespace<'a>> {
        // SAFETY: A namespace holds a reference on its parent.
        let parent = unsafe { bindings::keyagent_user_ns_parent(self.ns) };
        // SAFETY: See above: the parent lives at least as long as `self.ns`.
        (!parent.is_null()).then(|| unsafe { Self::from_raw(parent) })
    }

    /// The user that created the namespace: it has every capability in it.
    pub(crate) fn owner(self) -> Kuid {
        // SAFETY: Reads a field that never changes.
        Kuid(unsafe { bindings::keyagent_user_ns_owner(self.ns) })
    }

    /// The user that is root (uid 0) in the namespace, if uid 0 is mapped.
    pub(crate) fn root(self) -> Kuid {
        // SAFETY: Reads the namespace's uid map, which never changes once written.
        Kuid(unsafe { bindings::keyagent_user_ns_root(self.ns) })
    }

    /// Whether the current task has `cap` in this namespace (audited as a capability check).
    pub(crate) fn current_has(self, cap: u32) -> bool {
        // CAST: Capability numbers are small.
        // SAFETY: `ns_capable()` checks the current task's credentials against a valid
        // namespace.
        unsafe { bindings::ns_capable(self.ns as *const _ as *mut _, cap as i32) }
    }
}

/// `CAP_NET_ADMIN`.
pub(crate) const CAP_NET_ADMIN: u32 = bindings::CAP_NET_ADMIN;
/// `CAP_SYS_ADMIN`.
pub(crate) const CAP_SYS_ADMIN: u32 = bindings::CAP_SYS_ADMIN;

/// Whether the current task has `cap` in the initial user namespace.
pub(crate) fn current_capable(cap: u32) -> bool {
    // CAST: Capability numbers are small.
    // SAFETY: `capable()` checks the current task's credentials.
    unsafe { bindings::capable(cap as i32) }
}

/// An owned reference on a network namespace (`struct net`), which keeps it alive.
pub(crate) struct NetRef(NonNull<bindings::net>);

// SAFETY: Network namespaces are reference counted with atomics and may be released anywhere.
unsafe impl Send for NetRef {}
// SAFETY: Only immutable fields are read through `&self`.
unsafe impl Sync for NetRef {}

impl NetRef {
    /// The current task's network namespace; `None` if it has none (it is exiting).
    pub(crate) fn current() -> Option<Self> {
        // SAFETY: The helper reads current's own nsproxy and takes a reference, or returns null.
        NonNull::new(unsafe { bindings::keyagent_get_current_net() }).map(Self)
    }

    /// The domain tag of the keys made for this namespace.
    pub(crate) fn key_domain(&self) -> DomainTag {
        // SAFETY: We hold a reference; `key_domain` is set at creation and freed at the
        // namespace's death, which our reference prevents.
        DomainTag(unsafe { bindings::keyagent_net_key_domain(self.0.as_ptr()) })
    }

    /// The namespace's inode number, as `/proc/PID/ns/net` shows it.
    pub(crate) fn inum(&self) -> u32 {
        // SAFETY: We hold a reference; the inode number never changes.
        unsafe { bindings::keyagent_net_inum(self.0.as_ptr()) }
    }

    /// The user namespace that owns the network namespace.
    pub(crate) fn user_ns(&self) -> UserNamespace<'_> {
        // SAFETY: A network namespace holds a reference on its owning user namespace.
        unsafe { UserNamespace::from_raw(bindings::keyagent_net_user_ns(self.0.as_ptr())) }
    }
}

impl Drop for NetRef {
    fn drop(&mut self) {
        // SAFETY: We own one reference; `put_net()` may be called in any context.
        unsafe { bindings::keyagent_put_net(self.0.as_ptr()) }
    }
}

/// The domain tag of the current task's network namespace; `None` if it has none.
pub(crate) fn current_net_key_domain() -> Option<DomainTag> {
    // SAFETY: Current's nsproxy is only changed by current itself.
    let tag = unsafe { bindings::keyagent_current_net_key_domain() };
    (!tag.is_null()).then_some(DomainTag(tag))
}
