// SPDX-License-Identifier: GPL-2.0
//! Key types implemented in Rust (`struct key_type`).
//!
//! A type implements [`KeyType`]; [`Registration`] fills a `struct key_type` with an adapter for
//! each operation the type implements and registers it. The payload of each key is a
//! [`ForeignOwnable`] kept in `payload.data[0]` from `instantiate` until `destroy`.

use super::{
    bindings, errno,
    keys::{key_ref_to_ptr, possessed, Key},
};
use core::{
    fmt,
    marker::PhantomData,
    sync::atomic::{AtomicBool, Ordering},
};
use kernel::{
    build_error,
    error::{from_result, to_result, Result},
    ffi,
    prelude::*,
    str::CStr,
    types::{ARef, ForeignOwnable, Opaque},
};

/// The operations of a key type. Each says in which context the keys core calls it.
#[vtable]
pub(crate) trait KeyType: Sized + 'static {
    /// What each key of the type carries.
    type Payload: ForeignOwnable + Send + Sync;

    /// The type's name, as given to `add_key()`.
    const NAME: &'static CStr;

    /// Checks the description of a key about to be allocated (`add_key()`, `request_key()`).
    /// Process context, no key locks held.
    fn vet_description(_description: &CStr) -> Result {
        build_error!(kernel::error::VTABLE_DEFAULT_ERROR)
    }

    /// Parses `add_key()`'s payload for a key with `description`. Called in the adding task's
    /// context before any keyring lock is taken; may sleep.
    fn preparse(description: &CStr, data: &[u8]) -> Result<Self::Payload>;

    /// Writes the type-specific part of the key's `/proc/keys` line. Called under RCU: must not
    /// sleep. `payload` is `None` for a negative key.
    fn describe(
        _key: &Key,
        _payload: Option<<Self::Payload as ForeignOwnable>::Borrowed<'_>>,
        _out: &mut SeqFile,
    ) {
        build_error!(kernel::error::VTABLE_DEFAULT_ERROR)
    }

    /// Fills `buf` with the key's content for `keyctl read` and returns the full length, which
    /// may exceed `buf`. Called with the key's semaphore read-locked; may sleep.
    fn read(
        _payload: <Self::Payload as ForeignOwnable>::Borrowed<'_>,
        _buf: &mut [u8],
    ) -> Result<usize> {
        build_error!(kernel::error::VTABLE_DEFAULT_ERROR)
    }
}

/// The `/proc/keys` output a `describe` writes to.
pub(crate) struct SeqFile(*mut bindings::seq_file);

impl SeqFile {
    /// Appends raw bytes.
    pub(crate) fn write_bytes(&mut self, bytes: &[u8]) {
        // SAFETY: `self.0` is the seq_file `describe` was called with; seq_write copies `bytes`
        // (and marks the file overflowed if they do not fit, so that the core retries).
        unsafe { bindings::seq_write(self.0, bytes.as_ptr().cast(), bytes.len()) };
    }
}

impl fmt::Write for SeqFile {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write_bytes(s.as_bytes());
        Ok(())
    }
}

/// Static storage for a `struct key_type`.
///
/// The keys core gives every key's semaphore the lockdep class embedded in its type, and lockdep
/// only accepts class keys in static memory: a key type must live in a `static`.
pub(crate) struct KeyTypeSlot {
    key_type: Opaque<bindings::key_type>,
    in_use: AtomicBool,
}

// SAFETY: The slot is written once, by the `Registration` that claimed it through `in_use`,
// before the type is registered; afterwards only the keys core reads it.
unsafe impl Sync for KeyTypeSlot {}

impl KeyTypeSlot {
    pub(crate) const fn new() -> Self {
        Self {
            key_type: Opaque::uninit(),
            in_use: AtomicBool::new(false),
        }
    }
}

/// A registered key type. Dropping it unregisters the type, which destroys every key of it.
pub(crate) struct Registration<T: KeyType> {
    slot: &'static KeyTypeSlot,
    _type: PhantomData<T>,
}

impl<T: KeyType> Registration<T> {
    /// Registers the key type in `slot`. Fails with `EBUSY` if the slot is in use.
    pub(crate) fn register(slot: &'static KeyTypeSlot) -> Result<Self> {
        if slot.in_use.swap(true, Ordering::AcqRel) {
            return Err(EBUSY);
        }
        let key_type = slot.key_type.get();
        // SAFETY: We own the slot (`in_use`), nobody reads it before registration, and it is
        // static, so it stays put while registered.
        let ret = unsafe {
            key_type.write(Adapter::<T>::KEY_TYPE);
            to_result(bindings::register_key_type(key_type))
        };
        if let Err(e) = ret {
            slot.in_use.store(false, Ordering::Release);
            return Err(e);
        }
        Ok(Self {
            slot,
            _type: PhantomData,
        })
    }

    /// Searches `keyring`, which the caller possesses, and the keyrings nested in it that the
    /// current credentials may search, for a live key of this type with `description`. Does not
    /// sleep.
    pub(crate) fn search(&self, keyring: &Key, description: &CStr) -> Result<TypedKey<T>> {
        // SAFETY: The keyring and our key type are valid; `keyring_search()` only takes RCU and
        // returns an owned reference or an error pointer.
        let key_ref = unsafe {
            bindings::keyring_search(
                possessed(keyring),
                self.slot.key_type.get(),
                description.as_char_ptr(),
                true,
            )
        };
        let ptr = key_ref_to_ptr(key_ref)?;
        // SAFETY: `keyring_search()` gave us a count on a valid key of type `T`.
        let key = unsafe { Key::from_owned_raw(ptr) }.ok_or_else(errno::ENOKEY)?;
        Ok(TypedKey {
            key,
            _type: PhantomData,
        })
    }
}

impl<T: KeyType> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: The type was registered by `register()`.
        unsafe { bindings::unregister_key_type(self.slot.key_type.get()) };
        self.slot.in_use.store(false, Ordering::Release);
    }
}

/// An owned reference to a key known to be of type `T`.
pub(crate) struct TypedKey<T: KeyType> {
    key: ARef<Key>,
    _type: PhantomData<T>,
}

impl<T: KeyType> TypedKey<T> {
    /// The key's payload; `None` for a negative key.
    pub(crate) fn payload(&self) -> Option<<T::Payload as ForeignOwnable>::Borrowed<'_>> {
        let data = self.key.payload_data0();
        if data.is_null() {
            return None;
        }
        // SAFETY: A key of type `T` holds a `T::Payload` from `instantiate` until `destroy`, and
        // `destroy` runs only once the last reference, such as ours, is gone (or, for keys of a
        // type being unregistered, after every user of the type has stopped).
        Some(unsafe { T::Payload::borrow(data) })
    }

    /// Gives up the typed view.
    pub(crate) fn into_key(self) -> ARef<Key> {
        self.key
    }
}

struct Adapter<T: KeyType>(PhantomData<T>);

impl<T: KeyType> Adapter<T> {
    const KEY_TYPE: bindings::key_type = bindings::key_type {
        name: T::NAME.as_char_ptr(),
        vet_description: if T::HAS_VET_DESCRIPTION {
            Some(Self::vet_description)
        } else {
            None
        },
        preparse: Some(Self::preparse),
        free_preparse: Some(Self::free_preparse),
        instantiate: Some(bindings::generic_key_instantiate),
        destroy: Some(Self::destroy),
        describe: Some(Self::describe),
        read: if T::HAS_READ { Some(Self::read) } else { None },
        // SAFETY: All-zero is a valid `struct key_type`: null pointers and no operations.
        ..unsafe { core::mem::zeroed() }
    };

    /// # Safety
    ///
    /// Called by `key_alloc()` with a NUL-terminated description.
    unsafe extern "C" fn vet_description(description: *const ffi::c_char) -> ffi::c_int {
        from_result(|| {
            // SAFETY: The keys core passes a NUL-terminated description.
            T::vet_description(unsafe { CStr::from_char_ptr(description) })?;
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by `key_create_or_update()` with a valid preparsed payload.
    unsafe extern "C" fn preparse(prep: *mut bindings::key_preparsed_payload) -> ffi::c_int {
        from_result(|| {
            // SAFETY: `prep` is valid for the call; `data`/`datalen` describe the caller's copy of
            // the payload and `orig_description` the proposed description.
            let (description, data) = unsafe {
                let prep = &*prep;
                if prep.orig_description.is_null() {
                    return Err(EINVAL);
                }
                let data: &[u8] = if prep.datalen == 0 {
                    &[]
                } else {
                    core::slice::from_raw_parts(prep.data.cast(), prep.datalen)
                };
                (CStr::from_char_ptr(prep.orig_description), data)
            };
            let payload = T::preparse(description, data)?;
            // SAFETY: `prep` is valid and ours until `free_preparse`; `generic_key_instantiate()`
            // moves `data[0]` into the key and clears it here.
            unsafe {
                (*prep).payload.data[0] = payload.into_foreign().cast_mut();
                (*prep).quotalen = 0;
            }
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by the keys core on a payload `preparse` filled, once.
    unsafe extern "C" fn free_preparse(prep: *mut bindings::key_preparsed_payload) {
        // SAFETY: `prep` is valid; `data[0]` is either null (moved into a key) or the payload
        // `preparse` stored.
        unsafe {
            let data = (*prep).payload.data[0];
            if !data.is_null() {
                drop(T::Payload::from_foreign(data));
                (*prep).payload.data[0] = core::ptr::null_mut();
            }
        }
    }

    /// # Safety
    ///
    /// Called by the key garbage collector, once per key of this type.
    unsafe extern "C" fn destroy(key: *mut bindings::key) {
        // SAFETY: `destroy` runs once, when the key is freed or its type goes away; `data[0]`
        // is null or the payload `preparse` made.
        unsafe {
            let data = (*key).__bindgen_anon_4.payload.data[0];
            if !data.is_null() {
                drop(T::Payload::from_foreign(data));
                (*key).__bindgen_anon_4.payload.data[0] = core::ptr::null_mut();
            }
        }
    }

    /// # Safety
    ///
    /// Called by `/proc/keys` under RCU, with a key of this type and its seq_file.
    unsafe extern "C" fn describe(key: *const bindings::key, m: *mut bindings::seq_file) {
        // SAFETY: The keys core holds the key (under RCU) for the call.
        let key = unsafe { Key::from_raw(key) };
        let mut out = SeqFile(m);
        out.write_bytes(key.description().as_bytes());
        if !T::HAS_DESCRIBE {
            return;
        }
        let data = key.payload_data0();
        let payload = if data.is_null() || key.is_under_construction() {
            None
        } else {
            // SAFETY: A positive key of type `T` holds a `T::Payload` until `destroy`, which
            // cannot run while `/proc/keys` holds the key.
            Some(unsafe { T::Payload::borrow(data) })
        };
        T::describe(key, payload, &mut out);
    }

    /// # Safety
    ///
    /// Called by `keyctl_read_key()` with the key's semaphore held and a kernel buffer.
    unsafe extern "C" fn read(
        key: *const bindings::key,
        buf: *mut ffi::c_char,
        len: usize,
    ) -> ffi::c_long {
        from_result(|| {
            // SAFETY: `keyctl_read_key()` holds the key's semaphore and passes a kernel buffer
            // of `len` bytes (possibly null when `len` is 0).
            let (key, buf) = unsafe {
                let buf: &mut [u8] = if buf.is_null() || len == 0 {
                    &mut []
                } else {
                    core::slice::from_raw_parts_mut(buf.cast(), len)
                };
                (Key::from_raw(key), buf)
            };
            let data = key.payload_data0();
            if data.is_null() {
                return Err(errno::ENOKEY());
            }
            // SAFETY: As in `describe`; the key is positive since the keys core only reads
            // positive keys.
            let n = T::read(unsafe { T::Payload::borrow(data) }, buf)?;
            // CAST: A payload length fits in a long.
            Ok(n as ffi::c_long)
        })
    }
}
