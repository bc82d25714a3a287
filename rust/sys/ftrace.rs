// SPDX-License-Identifier: GPL-2.0
//! The request_key actor hook.
//!
//! `construct_key()` calls the default actor, `call_sbin_request_key()`, for every key type that
//! has no `request_key` operation of its own. An ftrace ops filtered on that function (found by
//! name through ftrace's own records, with IPMODIFY) asks the [`Actor`] whether it claims the
//! construction; if it does, execution continues in [`Actor::construct`] instead of the
//! original, which otherwise runs untouched. The decision is made before the original runs, so
//! the original is never called from here and no recursion guard is needed.

use super::{bindings, request::Request};
use core::{
    ffi::c_void,
    marker::PhantomData,
    ptr,
    sync::atomic::{AtomicPtr, Ordering},
};
use kernel::{
    error::{code::EBUSY, to_result, Result},
    ffi,
    prelude::*,
    sync::Arc,
    types::{ForeignOwnable, Opaque},
};

/// The function the hook intercepts.
const DEFAULT_ACTOR: &[u8] = b"call_sbin_request_key";

/// Decides and runs constructions in place of the default request_key actor.
pub(crate) trait Actor: Send + Sync + 'static {
    /// Whether to take over this construction. Called from the ftrace callback in the
    /// requester's context with preemption disabled: must not sleep.
    fn claims(&self, request: &Request<'_>) -> bool;

    /// Runs a claimed construction in the requester's context; may sleep. On return the
    /// construction must have ended (the target instantiated or rejected) or be held by someone
    /// who will end it.
    fn construct(&self, request: &Request<'_>);
}

/// The actor of the installed hook (at most one per module), as `ForeignOwnable::into_foreign`.
static ACTOR: AtomicPtr<c_void> = AtomicPtr::new(ptr::null_mut());

/// A `struct ftrace_ops`, owned by ftrace while registered.
struct Ops(Opaque<bindings::ftrace_ops>);

// SAFETY: ftrace synchronises its use of a registered ops; we only register and unregister it.
unsafe impl Send for Ops {}
// SAFETY: See `Send`.
unsafe impl Sync for Ops {}

/// An installed hook. Dropping it removes the hook and waits until no CPU is in its callback.
pub(crate) struct ActorHook<T: Actor> {
    ops: Pin<KBox<Ops>>,
    _actor: PhantomData<Arc<T>>,
}

impl<T: Actor> ActorHook<T> {
    /// Installs the hook with `actor`. Fails with `EBUSY` if one is installed already, and
    /// with ftrace's error if the default actor cannot be traced.
    pub(crate) fn install(actor: Arc<T>) -> Result<Self> {
        let foreign = actor.into_foreign().cast_mut();
        if ACTOR
            .compare_exchange(
                ptr::null_mut(),
                foreign,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_err()
        {
            // SAFETY: `foreign` came from `into_foreign()` just above and was not published.
            drop(unsafe { Arc::<T>::from_foreign(foreign) });
            return Err(EBUSY);
        }
        let ops = KBox::pin(Ops(Opaque::new(Self::ops())), GFP_KERNEL);
        let ops = match ops {
            Ok(ops) => ops,
            Err(e) => {
                Self::release_actor();
                return Err(e.into());
            }
        };
        let mut name = [0u8; DEFAULT_ACTOR.len()];
        name.copy_from_slice(DEFAULT_ACTOR);
        // SAFETY: `ops` is pinned and initialised; ftrace parses (and may modify) `name`, a
        // buffer of the given length. `reset` = 1 replaces any previous filter.
        let ret = unsafe {
            to_result(bindings::ftrace_set_filter(
                ops.0.get(),
                name.as_mut_ptr(),
                DEFAULT_ACTOR.len() as ffi::c_int,
                1,
            ))
            .and_then(|()| to_result(bindings::register_ftrace_function(ops.0.get())))
        };
        if let Err(e) = ret {
            // SAFETY: The ops is not registered; free the filter hash it may have allocated.
            unsafe { bindings::ftrace_free_filter(ops.0.get()) };
            Self::release_actor();
            return Err(e);
        }
        Ok(Self {
            ops,
            _actor: PhantomData,
        })
    }

    fn ops() -> bindings::ftrace_ops {
        bindings::ftrace_ops {
            func: Some(Self::callback),
            // SAFETY: A pure helper returning flag bits.
            flags: unsafe { bindings::keyagent_ftrace_ops_flags() },
            // SAFETY: All-zero is how C declares a static `struct ftrace_ops`; ftrace
            // initialises the rest in `ftrace_set_filter()`.
            ..unsafe { core::mem::zeroed() }
        }
    }

    fn release_actor() {
        let foreign = ACTOR.swap(ptr::null_mut(), Ordering::AcqRel);
        if !foreign.is_null() {
            // SAFETY: `ACTOR` holds the `into_foreign()` of our `Arc<T>`, and nothing can
            // borrow it any more: the hook is not registered.
            drop(unsafe { Arc::<T>::from_foreign(foreign) });
        }
    }

    /// The ftrace callback, entered on every call of the default actor with preemption off.
    /// Rust code is not compiled with `__fentry__` calls, so this cannot trace itself.
    ///
    /// # Safety
    ///
    /// Called by ftrace only, at the entry of the filtered function, with its register frame.
    unsafe extern "C" fn callback(
        _ip: ffi::c_ulong,
        _parent_ip: ffi::c_ulong,
        _op: *mut bindings::ftrace_ops,
        fregs: *mut bindings::ftrace_regs,
    ) {
        let foreign = ACTOR.load(Ordering::Acquire);
        if foreign.is_null() {
            return;
        }
        // SAFETY: The actor is published before the ops is registered and released only after
        // `unregister_ftrace_function()` has waited for every callback to return.
        let actor = unsafe { Arc::<T>::borrow(foreign) };
        // SAFETY: We are at the entry of `call_sbin_request_key(authkey, aux)`, whose caller
        // holds the authorisation key for the call.
        let request = unsafe {
            let authkey = bindings::keyagent_ftrace_arg(fregs, 0);
            Request::from_actor_arg(authkey as *mut bindings::key)
        };
        // A claimed construction runs module code after the callback returns: pin the module
        // first. If it is going away, the default actor keeps the request.
        // SAFETY: The helper takes a reference on this module if it is live.
        if !unsafe { bindings::keyagent_try_module_get() } {
            return;
        }
        if actor.claims(&request) {
            // SAFETY: `fregs` is the callback's register frame; `replacement` has the
            // signature of the function being entered, so it takes over the call.
            unsafe { bindings::keyagent_ftrace_set_ip(fregs, Self::replacement as *const () as _) };
        } else {
            // SAFETY: Drops the reference taken above.
            unsafe { bindings::keyagent_module_put() };
        }
    }

    /// Runs in place of `call_sbin_request_key()` for a claimed construction, holding the module
    /// reference the callback took.
    ///
    /// # Safety
    ///
    /// Entered only through `callback`, with the arguments `construct_key()` passed to the actor.
    unsafe extern "C" fn replacement(authkey: *mut bindings::key, _aux: *mut c_void) -> ffi::c_int {
        let foreign = ACTOR.load(Ordering::Acquire);
        if !foreign.is_null() {
            // SAFETY: The module reference held since the callback keeps the module, and thus
            // the hook and its actor, alive until the put below.
            let actor = unsafe { Arc::<T>::borrow(foreign) };
            // SAFETY: We were entered as the actor, with the caller's authorisation key.
            actor.construct(&unsafe { Request::from_actor_arg(authkey) });
        }
        // SAFETY: Drops the reference the callback took. The few instructions after it are
        // covered by `unregister_ftrace_function()`'s RCU-tasks wait at module exit.
        unsafe { bindings::keyagent_module_put() };
        0
    }
}

impl<T: Actor> Drop for ActorHook<T> {
    fn drop(&mut self) {
        // SAFETY: The ops was registered by `install()`. Unregistering a dynamic ops waits for
        // an RCU-tasks grace period, after which no CPU runs the callback or the trampoline.
        unsafe {
            bindings::unregister_ftrace_function(self.ops.0.get());
            bindings::ftrace_free_filter(self.ops.0.get());
        }
        Self::release_actor();
    }
}
