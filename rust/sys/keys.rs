// SPDX-License-Identifier: GPL-2.0
//! Keys and keyrings (`struct key`).

use super::bindings;
use core::ptr::NonNull;
use kernel::{
    error::{from_err_ptr, to_result, Error, Result},
    str::CStr,
    types::{ARef, AlwaysRefCounted, Opaque},
};

/// A key of any type: a keyring, an authorisation key, a key under construction.
///
/// # Invariants
///
/// A `&Key` always refers to a valid `struct key` whose usage count is held by someone for the
/// lifetime of the reference; an `ARef<Key>` owns one count.
#[repr(transparent)]
pub(crate) struct Key(Opaque<bindings::key>);

// SAFETY: A key's mutable state is guarded by the keys core's own locks and atomics, and its
// reference count may be dropped from any thread.
unsafe impl Send for Key {}
// SAFETY: All methods taking `&self` are safe to call concurrently; see `Send`.
unsafe impl Sync for Key {}

// SAFETY: `key_get()` and `key_put()` manage the usage count that keeps a key alive.
unsafe impl AlwaysRefCounted for Key {
    fn inc_ref(&self) {
        // SAFETY: By the type invariant the key is valid and already has a nonzero count.
        unsafe { bindings::keyagent_key_get(self.as_ptr()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The caller gives up one count it owned.
        unsafe { bindings::key_put(obj.cast().as_ptr()) }
    }
}

impl Key {
    /// Borrows a key.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a valid key whose usage count is held for the whole of `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *const bindings::key) -> &'a Key {
        // SAFETY: `Key` is a transparent wrapper of `struct key`; validity is the caller's promise.
        unsafe { &*ptr.cast() }
    }

    /// Takes ownership of a usage count the caller holds.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a valid key and the caller must own one count on it.
    pub(crate) unsafe fn from_owned_raw(ptr: *mut bindings::key) -> Option<ARef<Key>> {
        // SAFETY: The count is transferred to the `ARef`, as the caller promised.
        NonNull::new(ptr).map(|p| unsafe { ARef::from_raw(p.cast()) })
    }

    /// A new reference to a key whose count may have dropped to zero (waiting for the garbage
    /// collector); `None` in that case.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a key that has not been freed: one the garbage collector has not
    /// destroyed yet, which the caller knows by a lock that the type's `destroy` takes.
    pub(crate) unsafe fn try_get_raw(ptr: *mut bindings::key) -> Option<ARef<Key>> {
        // SAFETY: The key's memory is valid (caller's promise); the helper takes a count only if
        // the count is not zero, and that count is ours.
        unsafe {
            bindings::keyagent_key_tryget(ptr)
                .then(|| ARef::from_raw(NonNull::new_unchecked(ptr.cast())))
        }
    }

    pub(crate) fn as_ptr(&self) -> *mut bindings::key {
        self.0.get()
    }

    /// The key's serial number.
    pub(crate) fn serial(&self) -> i32 {
        // SAFETY: The serial is set at allocation and never changes.
        unsafe { (*self.as_ptr()).serial }
    }

    /// The key's description.
    pub(crate) fn description(&self) -> &CStr {
        // SAFETY: The description is a NUL-terminated string allocated with the key and never
        // changed while the key lives. bindgen names the anonymous index_key union `_3`.
        unsafe { CStr::from_char_ptr((*self.as_ptr()).__bindgen_anon_3.index_key.description) }
    }

    /// The name of the key's type.
    pub(crate) fn type_name(&self) -> &CStr {
        // SAFETY: The type of a live key is a registered key type whose name is a static string
        // (a dead key's type is the static `.dead` type).
        unsafe { CStr::from_char_ptr((*(*self.as_ptr()).__bindgen_anon_3.index_key.type_).name) }
    }

    /// The first payload word, as the key type stored it.
    pub(crate) fn payload_data0(&self) -> *const core::ffi::c_void {
        // SAFETY: Reading a pointer-sized word of a valid key; its meaning is the key type's.
        unsafe {
            core::ptr::read_volatile(&(*self.as_ptr()).__bindgen_anon_4.payload.data[0])
                .cast_const()
        }
    }

    /// The key's owner (`keyctl chown` changes it; only a privileged process may).
    pub(crate) fn owner(&self) -> Kuid {
        // SAFETY: A word of a valid key; `keyctl_chown_key()` changes it under the key's
        // semaphore, and either value is one the key had.
        Kuid(unsafe { core::ptr::read_volatile(&(*self.as_ptr()).uid) })
    }

    /// Whether the key can be used: not revoked, invalidated, expired or dead.
    pub(crate) fn is_usable(&self) -> bool {
        // SAFETY: `key_validate()` reads the flags and expiry of a valid key.
        unsafe { bindings::key_validate(self.as_ptr()) == 0 }
    }

    /// Whether the key's type is being unregistered (its payload is about to be destroyed).
    pub(crate) fn is_dead(&self) -> bool {
        // SAFETY: An atomic bit test on a valid key.
        unsafe { bindings::keyagent_key_is_dead(self.as_ptr()) }
    }

    /// Whether the key has been instantiated positively.
    pub(crate) fn is_positive(&self) -> bool {
        // SAFETY: `key_read_state()` is an acquire load of the key's state.
        let state = unsafe { bindings::keyagent_key_read_state(self.as_ptr()) };
        // CAST: The C enum's values are small.
        state == bindings::key_state_KEY_IS_POSITIVE as i16
    }

    /// Whether the key's type caches keys per network namespace (`KEY_TYPE_NET_DOMAIN`).
    pub(crate) fn type_is_net_tagged(&self) -> bool {
        // SAFETY: A live key's type is a registered key type (or the static dead type).
        unsafe {
            (*(*self.as_ptr()).__bindgen_anon_3.index_key.type_).flags
                & bindings::KEY_TYPE_NET_DOMAIN
                != 0
        }
    }

    /// The key's domain tag: for a type tagged per network namespace, that of the namespace the
    /// key was made for.
    pub(crate) fn domain_tag(&self) -> DomainTag {
        // SAFETY: The domain tag is set at allocation and never changes; we only compare it.
        DomainTag(unsafe { (*self.as_ptr()).__bindgen_anon_3.index_key.domain_tag }.cast_const())
    }

    /// Whether the key is still waiting to be instantiated, positively or negatively.
    pub(crate) fn is_under_construction(&self) -> bool {
        // SAFETY: `key_read_state()` is an acquire load of the key's state.
        let state = unsafe { bindings::keyagent_key_read_state(self.as_ptr()) };
        // CAST: KEY_IS_UNINSTANTIATED is 0 in the C enum.
        state == bindings::key_state_KEY_IS_UNINSTANTIATED as i16
    }

    /// Invalidates the key: it disappears from searches and is garbage collected. May sleep.
    pub(crate) fn invalidate(&self) {
        // SAFETY: The key is valid; `key_invalidate()` takes the key's semaphore itself.
        unsafe { bindings::key_invalidate(self.as_ptr()) }
    }

    /// Unlinks every key from this keyring. May sleep.
    pub(crate) fn clear(&self) -> Result {
        // SAFETY: The key is valid; `keyring_clear()` checks that it is a keyring.
        to_result(unsafe { bindings::keyring_clear(self.as_ptr()) })
    }

    /// Links `key` into this keyring. May sleep.
    pub(crate) fn link(&self, key: &Key) -> Result {
        // SAFETY: Both keys are valid; `key_link()` checks that `self` is a live keyring.
        to_result(unsafe { bindings::key_link(self.as_ptr(), key.as_ptr()) })
    }

    /// Unlinks `key` from this keyring. May sleep.
    pub(crate) fn unlink(&self, key: &Key) -> Result {
        // SAFETY: Both keys are valid; `key_unlink()` checks that `self` is a keyring.
        to_result(unsafe { bindings::key_unlink(self.as_ptr(), key.as_ptr()) })
    }

    /// Instantiates a key under construction with `payload`, through its type's `preparse` and
    /// `instantiate`, and disables `authkey`. Fails with the type's error if it refuses the
    /// payload, with `EBUSY` if the key was instantiated in the meantime. May sleep.
    pub(crate) fn instantiate(&self, payload: &[u8], authkey: &Key) -> Result {
        // SAFETY: Both keys are valid; the payload is a readable slice; a null keyring means
        // "link nowhere".
        to_result(unsafe {
            bindings::key_instantiate_and_link(
                self.as_ptr(),
                payload.as_ptr().cast(),
                payload.len(),
                core::ptr::null_mut(),
                authkey.as_ptr(),
            )
        })
    }

    /// Makes the key expire `secs` seconds from now (0: never). May sleep.
    pub(crate) fn set_timeout(&self, secs: u32) {
        // SAFETY: The key is valid; `key_set_timeout()` takes the key's semaphore itself.
        unsafe { bindings::key_set_timeout(self.as_ptr(), secs) }
    }

    /// Fails a key under construction with `error`, negatively caching the failure for
    /// `timeout_secs`, and disables `authkey`. Does nothing if the key was instantiated in the
    /// meantime (returns `EBUSY`). May sleep.
    pub(crate) fn reject(&self, timeout_secs: u32, error: Error, authkey: &Key) -> Result {
        // CAST: errno values are small negative integers.
        let errno = (-error.to_errno()) as u32;
        // SAFETY: Both keys are valid; a null keyring means "link nowhere".
        to_result(unsafe {
            bindings::key_reject_and_link(
                self.as_ptr(),
                timeout_secs,
                errno,
                core::ptr::null_mut(),
                authkey.as_ptr(),
            )
        })
    }
}

/// A group id in the kernel's global id space (`kgid_t`).
#[derive(Clone, Copy)]
pub(crate) struct Kgid(pub(super) bindings::kgid_t);

/// A user id in the kernel's global id space (`kuid_t`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Kuid(pub(super) bindings::kuid_t);

impl PartialEq for bindings::kuid_t {
    fn eq(&self, other: &Self) -> bool {
        self.val == other.val
    }
}

impl Eq for bindings::kuid_t {}

/// The identity of a key domain (`struct key_tag`), such as a network namespace's. Only
/// compared, never dereferenced.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct DomainTag(pub(super) *const bindings::key_tag);

// SAFETY: Only compared.
unsafe impl Send for DomainTag {}
// SAFETY: Only compared.
unsafe impl Sync for DomainTag {}

/// The calling process's keyring, created if it has none yet. May sleep.
///
/// Must not be called with the key construction mutex held (e.g. from a key type's
/// `instantiate`): creating the keyring instantiates it.
pub(crate) fn current_process_keyring() -> Result<ARef<Key>> {
    // SAFETY: `lookup_user_key()` acts on the current task's credentials and returns an owned
    // key reference or an error pointer.
    let key_ref = unsafe {
        bindings::lookup_user_key(
            bindings::KEY_SPEC_PROCESS_KEYRING,
            // CAST: A small flag value.
            bindings::key_lookup_flag_KEY_LOOKUP_CREATE as _,
            bindings::key_need_perm_KEY_NEED_SEARCH,
        )
    };
    let ptr = key_ref_to_ptr(key_ref)?;
    // SAFETY: `lookup_user_key()` gave us a count on a valid key.
    unsafe { Key::from_owned_raw(ptr) }.ok_or_else(super::errno::ENOKEY)
}

/// Creates a keyring owned by the current task's fsuid and fsgid, outside its key quota, and
/// links it into `dest`. Possessors may view, read and search it; nobody may change it. May
/// sleep; must not be called with the key construction mutex held.
pub(crate) fn new_keyring_in(description: &CStr, dest: &Key) -> Result<ARef<Key>> {
    let perm = bindings::KEY_POS_VIEW | bindings::KEY_POS_READ | bindings::KEY_POS_SEARCH;
    // SAFETY: `current_cred()` is valid for the current task; `keyring_alloc()` copies the
    // description and returns a new reference or an error pointer.
    let keyring = unsafe {
        let cred = bindings::keyagent_current_cred();
        bindings::keyring_alloc(
            description.as_char_ptr(),
            (*cred).fsuid,
            (*cred).fsgid,
            cred,
            perm | bindings::KEY_USR_VIEW,
            // CAST: A small flag value.
            bindings::KEY_ALLOC_NOT_IN_QUOTA as _,
            core::ptr::null_mut(),
            dest.as_ptr(),
        )
    };
    let keyring = from_err_ptr(keyring)?;
    // SAFETY: `keyring_alloc()` gave us a count on a valid key.
    unsafe { Key::from_owned_raw(keyring) }.ok_or_else(super::errno::ENOKEY)
}

/// Strips the possession bit of a `key_ref_t` (bit 0), mapping error pointers to errors.
pub(super) fn key_ref_to_ptr(key_ref: bindings::key_ref_t) -> Result<*mut bindings::key> {
    let raw = from_err_ptr(key_ref)?;
    Ok((raw as usize & !1usize) as *mut bindings::key)
}

/// A `key_ref_t` for `keyring`, marked possessed (bit 0).
pub(super) fn possessed(keyring: &Key) -> bindings::key_ref_t {
    (keyring.as_ptr() as usize | 1) as bindings::key_ref_t
}
