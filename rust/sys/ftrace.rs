// SPDX-License-Identifier: GPL-2.0
//! The request_key actor hook.
//!
//! `construct_key()` calls the default actor, `call_sbin_request_key()`, for every key type that
//! has no `request_key` operation of its own. An ftrace ops filtered on that function (found by
//! name through ftrace's own records, with IPMODIFY) asks the [`Actor`] whether it claims the
//! construction. If it does, the callback hands the [`Claim`] to [`Actor::construct`] through
//! the actor's second argument (`aux`, which the default actor does not use) and execution
//! continues there instead of in the original, which otherwise runs untouched. The decision is
//! made once, before the original runs: the original is never called from here, so no recursion
//! guard is needed, and the construction goes where the callback decided.
//!
//! A second, independent hook ([`DomainIsolation`]) keeps dns_resolver lookups in their network
//! namespace, which 6.12 does not do itself (see there).
//!
//! The callbacks run with whatever preemption state ftrace's trampoline has, which is preemptible
//! on a `PREEMPT` kernel (the ops asks ftrace for no recursion protection, which would disable
//! preemption): nothing here depends on preemption being off, but nothing in the callback may
//! sleep, since ftrace frees trampolines after an RCU-tasks grace period and a task that sleeps
//! voluntarily inside one counts as having left it.

use super::{
    bindings,
    key_type::{KeyType, TypedKey},
    request::Request,
};
use core::{
    ffi::c_void,
    marker::PhantomData,
    ptr,
    sync::atomic::{AtomicPtr, Ordering},
};
use kernel::{
    c_str,
    error::{code::EBUSY, to_result, Error, Result},
    ffi,
    prelude::*,
    str::CStr,
    sync::{Arc, ArcBorrow},
    types::{ForeignOwnable, Opaque},
};

/// The function the hook intercepts.
const DEFAULT_ACTOR: &CStr = c_str!("call_sbin_request_key");

/// What the callback decided for a construction it claimed.
pub(crate) enum Claim<K: KeyType> {
    /// Hand it to the agent registered by this key.
    Agent(TypedKey<K>),
    /// Fail it at once with this error.
    Fail(Error),
}

impl<K: KeyType> Claim<K> {
    /// The claim as one machine word: a key pointer, or an errno in the `ERR_PTR` range.
    fn into_word(self) -> usize {
        match self {
            Claim::Agent(key) => key.into_raw() as usize,
            // CAST: A negative errno as an `ERR_PTR`-style word.
            Claim::Fail(error) => error.to_errno() as isize as usize,
        }
    }

    /// # Safety
    ///
    /// `word` must come from [`Claim::into_word`] of a `Claim<K>`, and be used once.
    unsafe fn from_word(word: usize) -> Self {
        // CAST: The inverse of `into_word`.
        let value = word as isize;
        if (-(bindings::MAX_ERRNO as isize)..0).contains(&value) {
            // CAST: In the errno range checked just above.
            Claim::Fail(Error::from_errno(value as i32))
        } else {
            // SAFETY: A non-error word is the key reference `into_word` gave up.
            Claim::Agent(unsafe { TypedKey::from_raw(word as *mut bindings::key) })
        }
    }
}

/// Decides and runs constructions in place of the default request_key actor.
pub(crate) trait Actor: Send + Sync + 'static {
    /// The type of the keys that register agents.
    type AgentType: KeyType;

    /// Whether to take over this construction, and how. Called from the ftrace callback in the
    /// requester's context: must not sleep (it may be preempted).
    fn claim(this: ArcBorrow<'_, Self>, request: &Request<'_>) -> Option<Claim<Self::AgentType>>;

    /// Runs a claimed construction in the requester's context; may sleep. On return the
    /// construction must have ended (the target instantiated or rejected) or be held by someone
    /// who will end it.
    fn construct(this: ArcBorrow<'_, Self>, request: &Request<'_>, claim: Claim<Self::AgentType>);
}

/// The actor of the installed hook (at most one per module), as `ForeignOwnable::into_foreign`.
static ACTOR: AtomicPtr<c_void> = AtomicPtr::new(ptr::null_mut());

/// The signature of an ftrace callback.
type Callback = unsafe extern "C" fn(
    ffi::c_ulong,
    ffi::c_ulong,
    *mut bindings::ftrace_ops,
    *mut bindings::ftrace_regs,
);

/// A registered `struct ftrace_ops` with IPMODIFY, filtered on one function.
struct Ops(Opaque<bindings::ftrace_ops>);

// SAFETY: ftrace synchronises its use of a registered ops; we only register and unregister it.
unsafe impl Send for Ops {}
// SAFETY: See `Send`.
unsafe impl Sync for Ops {}

impl Ops {
    /// Registers `callback` at the entry of the function `name`, which it may redirect. Fails
    /// with ftrace's error if the function cannot be traced (`EINVAL` if it does not exist).
    fn register(name: &CStr, callback: Callback) -> Result<Pin<KBox<Self>>> {
        let ops = bindings::ftrace_ops {
            func: Some(callback),
            // SAFETY: A pure helper returning flag bits.
            flags: unsafe { bindings::keyagent_ftrace_ops_flags() },
            // SAFETY: All-zero is how C declares a static `struct ftrace_ops`; ftrace
            // initialises the rest in `ftrace_set_filter()`.
            ..unsafe { core::mem::zeroed() }
        };
        let ops = KBox::pin(Ops(Opaque::new(ops)), GFP_KERNEL)?;
        // ftrace may write into the filter while parsing it, and runs string functions on it:
        // give it a NUL-terminated copy.
        let mut filter = KVec::with_capacity(name.len_with_nul(), GFP_KERNEL)?;
        filter.extend_from_slice(name.as_bytes_with_nul(), GFP_KERNEL)?;
        // SAFETY: `ops` is pinned and initialised; `filter` is a writable buffer holding the
        // name and a NUL, of which ftrace reads `len` bytes (the name). `reset` = 1 replaces
        // any previous filter. ftrace copies what it keeps.
        let ret = unsafe {
            to_result(bindings::ftrace_set_filter(
                ops.0.get(),
                filter.as_mut_ptr(),
                // CAST: Function names are short.
                name.len() as ffi::c_int,
                1,
            ))
            .and_then(|()| to_result(bindings::register_ftrace_function(ops.0.get())))
        };
        if let Err(e) = ret {
            // SAFETY: The ops is not registered; free the filter hash it may have allocated.
            unsafe { bindings::ftrace_free_filter(ops.0.get()) };
            return Err(e);
        }
        Ok(ops)
    }

    /// Unregisters the ops and waits until no task runs module code entered through it.
    /// Returns `false`, keeping the ops allocated for good, if ftrace cannot remove it.
    fn unregister(ops: Pin<KBox<Self>>) -> bool {
        // SAFETY: The ops was registered by `register()`. Unregistering a dynamic ops waits
        // until no CPU runs its callback or trampoline.
        let ret = to_result(unsafe { bindings::unregister_ftrace_function(ops.0.get()) });
        if let Err(e) = ret {
            // ftrace has failed (it reports that itself) and may still call the ops: keep the
            // ops, and let the caller keep what it can reach.
            pr_err!(
                "cannot remove an ftrace hook ({:?}): its memory stays allocated\n",
                e
            );
            core::mem::forget(ops);
            return false;
        }
        // SAFETY: The ops is unregistered; its filter hash is ours to free. Then: tasks that
        // were redirected into module code before the hook went away may still be running it
        // (the actor's few instructions after its module reference drop, the stand-in cmp). An
        // RCU-tasks grace period ends only once every task has switched voluntarily or
        // returned to user space, so after it none runs that code.
        unsafe {
            bindings::ftrace_free_filter(ops.0.get());
            bindings::keyagent_synchronize_rcu_tasks();
        }
        true
    }
}

/// An installed hook. Dropping it removes the hook and waits until no task runs module code
/// entered through it.
pub(crate) struct ActorHook<T: Actor> {
    ops: Option<Pin<KBox<Ops>>>,
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
        let ops = Ops::register(DEFAULT_ACTOR, Self::callback).inspect_err(|_| {
            Self::release_actor();
        })?;
        Ok(Self {
            ops: Some(ops),
            _actor: PhantomData,
        })
    }

    fn release_actor() {
        let foreign = ACTOR.swap(ptr::null_mut(), Ordering::AcqRel);
        if !foreign.is_null() {
            // SAFETY: `ACTOR` holds the `into_foreign()` of our `Arc<T>`, and nothing can
            // borrow it any more: the hook is not registered, and every task that entered the
            // module through it has left (see `Drop`).
            drop(unsafe { Arc::<T>::from_foreign(foreign) });
        }
    }

    /// The ftrace callback, entered on every call of the default actor. Rust code is not
    /// compiled with `__fentry__` calls and the C helpers it calls are `notrace`, so this
    /// cannot trace itself.
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
        match T::claim(actor, &request) {
            Some(claim) => {
                // SAFETY: `fregs` is the callback's register frame. `replacement` has the
                // signature of the function being entered, so it takes over the call with the
                // same first argument and the claim as its second, which `replacement` takes
                // back exactly once.
                unsafe {
                    bindings::keyagent_ftrace_set_arg1(fregs, claim.into_word() as _);
                    bindings::keyagent_ftrace_set_ip(fregs, Self::replacement as *const () as _);
                }
            }
            // SAFETY: Drops the reference taken above.
            None => unsafe { bindings::keyagent_module_put() },
        }
    }

    /// Runs in place of `call_sbin_request_key()` for a claimed construction, holding the module
    /// reference the callback took.
    ///
    /// # Safety
    ///
    /// Entered only through `callback`, with the authorisation key `construct_key()` passed to
    /// the actor and the claim the callback made.
    unsafe extern "C" fn replacement(
        authkey: *mut bindings::key,
        claim: *mut c_void,
    ) -> ffi::c_int {
        let foreign = ACTOR.load(Ordering::Acquire);
        if !foreign.is_null() {
            // SAFETY: The module reference held since the callback keeps the module, and thus
            // the hook and its actor, alive until the put below.
            let actor = unsafe { Arc::<T>::borrow(foreign) };
            // SAFETY: The callback made `claim` with `into_word` for this call only.
            let claim = unsafe { Claim::<T::AgentType>::from_word(claim as usize) };
            // SAFETY: We were entered as the actor, with the caller's authorisation key.
            T::construct(actor, &unsafe { Request::from_actor_arg(authkey) }, claim);
        }
        // SAFETY: Drops the reference the callback took. The instructions between the put and
        // the return are module text that the module may be unloading under us: `Drop` waits
        // for an RCU-tasks grace period after removing the hook, which this task can only pass
        // once it has left them.
        unsafe { bindings::keyagent_module_put() };
        0
    }
}

impl<T: Actor> Drop for ActorHook<T> {
    fn drop(&mut self) {
        if let Some(ops) = self.ops.take() {
            // If the hook cannot be removed, the actor stays too: ftrace may still enter it.
            if Ops::unregister(ops) {
                Self::release_actor();
            }
        }
    }
}

/// The function a dns_resolver lookup compares keys with.
const DNS_RESOLVER_CMP: &CStr = c_str!("dns_resolver_cmp");

/// Keeps dns_resolver lookups in the network namespace they are made in.
///
/// dns_resolver keys carry the domain tag of their network namespace, but dns_resolver's
/// lookups iterate over the keys (to compare descriptions case-insensitively), and 6.12's
/// keyring iterator, unlike its direct lookup, does not compare domain tags: a key made in one
/// namespace answers lookups in every other. This hook runs at the entry of `dns_resolver_cmp()`
/// and makes it report no match for a key of another domain than the search's, so that every
/// namespace has its own cache and an agent's answer is seen only where it was asked for.
pub(crate) struct DomainIsolation {
    ops: Option<Pin<KBox<Ops>>>,
}

impl DomainIsolation {
    /// Installs the hook; fails if dns_resolver is not loaded (`EINVAL`).
    pub(crate) fn install() -> Result<Self> {
        Ok(Self {
            ops: Some(Ops::register(DNS_RESOLVER_CMP, Self::callback)?),
        })
    }

    /// # Safety
    ///
    /// Called by ftrace only, at the entry of `dns_resolver_cmp(key, match_data)`.
    unsafe extern "C" fn callback(
        _ip: ffi::c_ulong,
        _parent_ip: ffi::c_ulong,
        _op: *mut bindings::ftrace_ops,
        fregs: *mut bindings::ftrace_regs,
    ) {
        // SAFETY: The arguments of `dns_resolver_cmp()`: a key its caller holds and the match
        // data of a keyring search context, both valid for the call. The stand-in has the same
        // signature and returns `false`; it is a notrace C function of this module, which
        // `Ops::unregister()` waits for tasks to leave.
        unsafe {
            let key = bindings::keyagent_ftrace_arg(fregs, 0) as *const bindings::key;
            let match_data = bindings::keyagent_ftrace_arg(fregs, 1) as *const c_void;
            if bindings::keyagent_search_crosses_domain(key, match_data) {
                bindings::keyagent_ftrace_set_ip(
                    fregs,
                    bindings::keyagent_no_match as *const () as _,
                );
            }
        }
    }
}

impl Drop for DomainIsolation {
    fn drop(&mut self) {
        if let Some(ops) = self.ops.take() {
            Ops::unregister(ops);
        }
    }
}
