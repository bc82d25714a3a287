// SPDX-License-Identifier: GPL-2.0
//! Key types implemented in Rust (`struct key_type`).
//!
//! A type implements [`KeyType`]; [`Registration`] fills a `struct key_type` with an adapter for
//! each operation the type implements and registers it. The payload of each key is an
//! `Arc<T::Payload>` kept in `payload.data[0]` from `instantiate` until `destroy`; `update` may
//! replace it, dropping the old one only after an RCU grace period. Keys whose
//! payload asks for it are also kept in the registration's index, so that they can be found
//! without a keyring, from `instantiate` until `destroy`.
//!
//! Payloads are only ever handed out as new `Arc` references taken under RCU after checking that
//! the key is still of the type and not dead: unregistering a key type destroys the payloads of
//! keys that are still referenced, but only after marking them dead and waiting for an RCU grace
//! period.

use super::{
    bindings, errno,
    keys::{key_ref_to_ptr, possessed, Key},
    rcu,
};
use core::{
    fmt,
    marker::PhantomData,
    ptr::NonNull,
    sync::atomic::{AtomicBool, AtomicPtr, Ordering},
};
use kernel::{
    build_error,
    error::{from_result, to_result, Result},
    ffi, new_spinlock,
    prelude::*,
    rbtree::{RBTree, RBTreeNode},
    str::CStr,
    sync::{Arc, ArcBorrow, SpinLock},
    types::{ARef, Opaque},
};

/// The operations of a key type. Each says in which context the keys core calls it.
#[vtable]
pub(crate) trait KeyType: Sized + Send + Sync + 'static {
    /// What each key of the type carries, shared as `Arc<Self::Payload>`.
    type Payload: Send + Sync;

    /// The type's name, as given to `add_key()`.
    const NAME: &'static CStr;

    /// The static storage the type is registered from.
    fn slot() -> &'static KeyTypeSlot;

    /// Checks the description of a key about to be allocated (`add_key()`, `request_key()`).
    /// Process context, no key locks held.
    fn vet_description(_description: &CStr) -> Result {
        build_error!(kernel::error::VTABLE_DEFAULT_ERROR)
    }

    /// Parses `add_key()`'s payload for a key with `description`, which has not been vetted
    /// yet. Called in the adding task's context before any keyring lock is taken; may sleep.
    fn preparse(description: &CStr, data: &[u8]) -> Result<Arc<Self::Payload>>;

    /// Whether a key with this payload goes into the registration's index.
    fn indexed(_payload: &Self::Payload) -> bool {
        false
    }

    /// Writes the type-specific part of the key's `/proc/keys` line. Called under RCU: must not
    /// sleep. `payload` is `None` for a negative, unfinished or dead key.
    fn describe(_key: &Key, _payload: Option<&Self::Payload>, _out: &mut SeqFile) {
        build_error!(kernel::error::VTABLE_DEFAULT_ERROR)
    }

    /// Updates the positive key `key`, whose payload is `current`, with `new` from `preparse`
    /// (`add_key()` of an existing description in the keyring, `keyctl update`), returning the
    /// key's new payload if it is to be replaced. Called with the key's semaphore write-locked,
    /// after the keys core checked write permission; may sleep.
    fn update(
        _key: &Key,
        _current: &Self::Payload,
        _new: Arc<Self::Payload>,
    ) -> Result<Option<Arc<Self::Payload>>> {
        build_error!(kernel::error::VTABLE_DEFAULT_ERROR)
    }

    /// Fills `buf` with the key's content for `keyctl read` and returns the full length, which
    /// may exceed `buf`. Called with the key's semaphore read-locked; may sleep.
    fn read(_payload: &Self::Payload, _buf: &mut [u8]) -> Result<usize> {
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

/// The keys of a type whose payload asked to be indexed, by serial.
///
/// # Invariants
///
/// Each entry is a key of the type that has not been destroyed: the adapter inserts it in
/// `instantiate` and removes it in `destroy`, both under `keys`' lock.
#[pin_data]
struct Index {
    #[pin]
    keys: SpinLock<RBTree<i32, IndexedKey>>,
}

/// A key in the index, without a reference: the index does not keep keys alive.
struct IndexedKey(NonNull<bindings::key>);

// SAFETY: Only a pointer to a key, which may be used from any thread under the index lock.
unsafe impl Send for IndexedKey {}

/// Static storage for a `struct key_type`.
///
/// The keys core gives every key's semaphore the lockdep class embedded in its type, and lockdep
/// only accepts class keys in static memory: a key type must live in a `static`.
pub(crate) struct KeyTypeSlot {
    key_type: Opaque<bindings::key_type>,
    in_use: AtomicBool,
    /// The registration's index while registered (`Arc::into_raw`), else null.
    index: AtomicPtr<Index>,
}

// SAFETY: The slot is written once, by the `Registration` that claimed it through `in_use`,
// before the type is registered; afterwards only the keys core reads it. `index` is atomic.
unsafe impl Sync for KeyTypeSlot {}

impl KeyTypeSlot {
    pub(crate) const fn new() -> Self {
        Self {
            key_type: Opaque::uninit(),
            in_use: AtomicBool::new(false),
            index: AtomicPtr::new(core::ptr::null_mut()),
        }
    }

    /// The index, while the type is registered.
    fn index(&self) -> Option<&Index> {
        let index = self.index.load(Ordering::Acquire);
        // SAFETY: The registration publishes its `Arc<Index>` before registering the type and
        // releases it only after unregistering it, once the keys core calls no adapter any more.
        (!index.is_null()).then(|| unsafe { &*index })
    }
}

/// A registered key type. Dropping it unregisters the type, which destroys every key of it.
pub(crate) struct Registration<T: KeyType> {
    index: Arc<Index>,
    _type: PhantomData<T>,
}

impl<T: KeyType> Registration<T> {
    /// Registers the key type. Fails with `EBUSY` if it is registered already.
    pub(crate) fn register() -> Result<Self> {
        let slot = T::slot();
        if slot.in_use.swap(true, Ordering::AcqRel) {
            return Err(EBUSY);
        }
        let index = Arc::pin_init(
            pin_init!(Index {
                keys <- new_spinlock!(RBTree::new()),
            }),
            GFP_KERNEL,
        );
        let index = match index {
            Ok(index) => index,
            Err(e) => {
                slot.in_use.store(false, Ordering::Release);
                return Err(e);
            }
        };
        slot.index
            .store(Arc::into_raw(index.clone()).cast_mut(), Ordering::Release);
        let key_type = slot.key_type.get();
        // SAFETY: We own the slot (`in_use`), nobody reads it before registration, and it is
        // static, so it stays put while registered.
        let ret = unsafe {
            key_type.write(Adapter::<T>::KEY_TYPE);
            to_result(bindings::register_key_type(key_type))
        };
        if let Err(e) = ret {
            Self::release_slot(slot);
            return Err(e);
        }
        Ok(Self {
            index,
            _type: PhantomData,
        })
    }

    fn release_slot(slot: &'static KeyTypeSlot) {
        let index = slot.index.swap(core::ptr::null_mut(), Ordering::AcqRel);
        if !index.is_null() {
            // SAFETY: `index` came from `Arc::into_raw` in `register()`; the type is not
            // registered, so no adapter uses it any more.
            drop(unsafe { Arc::from_raw(index) });
        }
        slot.in_use.store(false, Ordering::Release);
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
                T::slot().key_type.get(),
                description.as_char_ptr(),
                true,
            )
        };
        let ptr = key_ref_to_ptr(key_ref)?;
        // SAFETY: `keyring_search()` gave us a count on a valid key of type `T`.
        let key = unsafe { Key::from_owned_raw(ptr) }.ok_or_else(errno::ENOKEY)?;
        Ok(TypedKey::new(key))
    }

    /// Visits the indexed keys that are still usable (not revoked, invalidated, expired or
    /// dead) with their payloads, in serial order, until `visit` returns `true`, and returns
    /// that key. Runs under a spinlock: `visit` must not sleep.
    pub(crate) fn find_indexed(
        &self,
        mut visit: impl FnMut(&Key, &T::Payload) -> bool,
    ) -> Option<TypedKey<T>> {
        let keys = self.index.keys.lock();
        for (_, indexed) in keys.iter() {
            // SAFETY: By the `Index` invariant the key is not destroyed while it is in the
            // index, which we hold locked; a key whose last reference went away may still be
            // waiting for the garbage collector, hence only a conditional new reference.
            let Some(key) = (unsafe { Key::try_get_raw(indexed.0.as_ptr()) }) else {
                continue;
            };
            let key = TypedKey::<T>::new(key);
            if key.key().is_usable() && key.with_payload(|p| visit(key.key(), p)) == Some(true) {
                return Some(key);
            }
        }
        None
    }
}

impl<T: KeyType> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: The type was registered by `register()`. Unregistering waits until the
        // garbage collector has destroyed every key of the type.
        unsafe { bindings::unregister_key_type(T::slot().key_type.get()) };
        Self::release_slot(T::slot());
    }
}

/// An owned reference to a key that was of type `T` when it was found. Its payload is handed
/// out only while the key still is of that type and not dead, so a `TypedKey` may safely
/// outlive the type's registration.
pub(crate) struct TypedKey<T: KeyType> {
    key: ARef<Key>,
    _type: PhantomData<T>,
}

impl<T: KeyType> TypedKey<T> {
    fn new(key: ARef<Key>) -> Self {
        Self {
            key,
            _type: PhantomData,
        }
    }

    /// The key.
    pub(crate) fn key(&self) -> &Key {
        &self.key
    }

    /// Runs `f` on the key's payload; `None` for a negative key, or one whose type was
    /// unregistered. `f` runs in an RCU read-side section: it must not sleep. Does not sleep.
    pub(crate) fn with_payload<R>(&self, f: impl FnOnce(&T::Payload) -> R) -> Option<R> {
        let _rcu = rcu::read_lock();
        let data = self.key.payload_data0();
        // SAFETY: We hold a reference on the key, so it is valid; its type pointer is stable
        // while we are in an RCU read-side section, as is a payload we find not yet dead.
        let ours = unsafe {
            (*self.key.as_ptr()).__bindgen_anon_3.index_key.type_ == T::slot().key_type.get()
        };
        if !ours || data.is_null() || self.key.is_dead() || !self.key.is_positive() {
            return None;
        }
        // SAFETY: A positive, live key of type `T` holds an `Arc<T::Payload>` from
        // `instantiate` until `destroy`. `destroy` runs when the last reference is gone (we hold
        // one) or, when the type is unregistered, only after the key was marked dead and an RCU
        // grace period passed; `update` drops a payload it replaced only after a grace period
        // too: not before we leave this read-side section.
        Some(f(unsafe { &*data.cast::<T::Payload>() }))
    }

    /// A new reference to the key's payload (see [`TypedKey::with_payload`]). Dropping it may
    /// drop the payload, if the key went away meanwhile.
    pub(crate) fn payload(&self) -> Option<Arc<T::Payload>> {
        let _rcu = rcu::read_lock();
        let ptr = self.with_payload(|payload| payload as *const T::Payload)?;
        // SAFETY: `ptr` is the payload of an `Arc<T::Payload>` the key holds, valid for the rest
        // of our read-side section (see `with_payload`), in which we take a new reference.
        Some(unsafe { ArcBorrow::from_raw(ptr) }.into())
    }

    /// Gives up the typed view.
    pub(crate) fn into_key(self) -> ARef<Key> {
        self.key
    }

    /// Gives up the reference as a raw pointer, for [`TypedKey::from_raw`].
    pub(crate) fn into_raw(self) -> *mut bindings::key {
        let ptr = self.key.as_ptr();
        core::mem::forget(self.key);
        ptr
    }

    /// # Safety
    ///
    /// `ptr` must come from [`TypedKey::into_raw`] of a `TypedKey<T>`, and be used once.
    pub(crate) unsafe fn from_raw(ptr: *mut bindings::key) -> Self {
        // SAFETY: `into_raw` gave up one count on a valid key.
        let key = unsafe { ARef::from_raw(NonNull::new_unchecked(ptr.cast::<Key>())) };
        Self::new(key)
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
        instantiate: Some(Self::instantiate),
        destroy: Some(Self::destroy),
        describe: Some(Self::describe),
        update: if T::HAS_UPDATE {
            Some(Self::update)
        } else {
            None
        },
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

    /// `payload.data[1]` of a preparsed payload: the credentials the keys core started the
    /// operation with.
    const CRED_SLOT: usize = 1;

    /// # Safety
    ///
    /// Called by `key_create_or_update()` with a valid preparsed payload.
    unsafe extern "C" fn preparse(prep: *mut bindings::key_preparsed_payload) -> ffi::c_int {
        // `__key_create_or_update()` goes on using the credentials it started with after
        // `preparse`, without a reference of its own; `preparse` may replace them (by creating
        // the process keyring). Keep them until `free_preparse`, which the keys core calls
        // after its last use of them.
        // SAFETY: `prep` is valid for the call and ours until `free_preparse`; the new
        // reference on current's credentials is released there.
        unsafe {
            (*prep).payload.data[Self::CRED_SLOT] =
                bindings::keyagent_get_current_cred().cast_mut().cast();
        }
        from_result(|| {
            // SAFETY: `prep` is valid for the call; `data`/`datalen` describe the caller's copy of
            // the payload and `orig_description` the proposed description.
            let (description, data) = unsafe {
                let prep = &*prep;
                // An empty description, or `keyctl update`, which gives none.
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
            // SAFETY: `prep` is valid and ours until `free_preparse`; `instantiate` moves
            // `data[0]` into the key and clears it here.
            unsafe {
                (*prep).payload.data[0] = Arc::into_raw(payload).cast_mut().cast();
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
        // `preparse` stored, `data[1]` the credentials `preparse` took a reference on.
        unsafe {
            let data = (*prep).payload.data[0];
            if !data.is_null() {
                drop(Arc::from_raw(data.cast::<T::Payload>()));
                (*prep).payload.data[0] = core::ptr::null_mut();
            }
            let cred = (*prep).payload.data[Self::CRED_SLOT];
            if !cred.is_null() {
                bindings::keyagent_put_cred(cred.cast());
                (*prep).payload.data[Self::CRED_SLOT] = core::ptr::null_mut();
            }
        }
    }

    /// # Safety
    ///
    /// Called by `__key_instantiate_and_link()` with the key construction mutex held, on a key
    /// of this type under construction and the payload `preparse` filled.
    unsafe extern "C" fn instantiate(
        key: *mut bindings::key,
        prep: *mut bindings::key_preparsed_payload,
    ) -> ffi::c_int {
        from_result(|| {
            // SAFETY: `prep` holds the payload `preparse` stored (a key of our type is only
            // instantiated from `add_key()`: our type has no `request_key` construction).
            let data = unsafe { (*prep).payload.data[0] };
            if data.is_null() {
                return Err(EINVAL);
            }
            // SAFETY: As above; borrowed until moved into the key below.
            let indexed = T::indexed(unsafe { &*data.cast::<T::Payload>() });
            let node = if indexed {
                // SAFETY: `key` is valid for the call.
                let serial = unsafe { (*key).serial };
                // SAFETY: `key` is valid and non-null.
                let raw = unsafe { NonNull::new_unchecked(key) };
                Some(RBTreeNode::new(serial, IndexedKey(raw), GFP_KERNEL)?)
            } else {
                None
            };
            // SAFETY: `key` and `prep` are valid; `generic_key_instantiate()` moves the payload
            // words into the key and clears them in `prep`: all but the credentials, which stay
            // for `free_preparse`.
            unsafe {
                let cred = (*prep).payload.data[Self::CRED_SLOT];
                (*prep).payload.data[Self::CRED_SLOT] = core::ptr::null_mut();
                let ret = bindings::generic_key_instantiate(key, prep);
                (*prep).payload.data[Self::CRED_SLOT] = cred;
                to_result(ret)?;
            }
            if let Some(node) = node {
                if let Some(index) = T::slot().index() {
                    // INVARIANT: The key is instantiated and not destroyed; `destroy` removes it.
                    let _ = index.keys.lock().insert(node);
                }
            }
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by `__key_update()` with the key's semaphore write-locked, on a key of this type,
    /// and a payload `preparse` filled.
    unsafe extern "C" fn update(
        key: *mut bindings::key,
        prep: *mut bindings::key_preparsed_payload,
    ) -> ffi::c_int {
        from_result(|| {
            // SAFETY: The keys core holds the key for the call.
            let key = unsafe { Key::from_raw(key) };
            let current = key.payload_data0();
            // SAFETY: `prep` is valid for the call; `data[0]` is the payload `preparse` stored,
            // which we take (`free_preparse` then finds null).
            let new = unsafe {
                let data = (*prep).payload.data[0];
                if data.is_null() || current.is_null() || !key.is_positive() {
                    return Err(EINVAL);
                }
                (*prep).payload.data[0] = core::ptr::null_mut();
                Arc::from_raw(data.cast::<T::Payload>())
            };
            // SAFETY: A positive key of our type holds an `Arc<T::Payload>`, which the write-
            // locked semaphore keeps from being destroyed for the call.
            let replacement = T::update(key, unsafe { &*current.cast::<T::Payload>() }, new)?;
            if let Some(replacement) = replacement {
                // SAFETY: The semaphore excludes other writers of the payload; readers read it
                // under RCU, so the old payload is dropped only after a grace period.
                unsafe {
                    let old = bindings::keyagent_key_replace_payload(
                        key.as_ptr(),
                        Arc::into_raw(replacement).cast_mut().cast(),
                    );
                    bindings::keyagent_synchronize_rcu();
                    drop(Arc::from_raw(old.cast::<T::Payload>()));
                }
            }
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by the key garbage collector, once per key of this type: when the last reference
    /// has gone, or, when the type is unregistered, with the key's semaphore write-locked.
    unsafe extern "C" fn destroy(key: *mut bindings::key) {
        // SAFETY: The key is valid for the call and was of our type (when the type is being
        // unregistered, its type pointer already names the dead type).
        unsafe {
            if let Some(index) = T::slot().index() {
                // INVARIANT: Removed before the key is freed.
                let _ = index.keys.lock().remove(&(*key).serial);
            }
            let data = (*key).__bindgen_anon_4.payload.data[0];
            if !data.is_null() {
                drop(Arc::from_raw(data.cast::<T::Payload>()));
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
        // A dead key's payload is destroyed after an RCU grace period, which cannot end before
        // we return: if it is not dead now, the payload stays for the call.
        let payload = if data.is_null() || key.is_dead() || !key.is_positive() {
            None
        } else {
            // SAFETY: A positive, live key of type `T` holds an `Arc<T::Payload>` (see above).
            Some(unsafe { &*data.cast::<T::Payload>() })
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
            // SAFETY: The keys core reads positive keys only, and the semaphore we are called
            // with excludes the destruction of a dead type's payloads, after which the key is no
            // longer of our type and this is not called.
            let n = T::read(unsafe { &*data.cast::<T::Payload>() }, buf)?;
            // CAST: A payload length fits in a long.
            Ok(n as ffi::c_long)
        })
    }
}
