// SPDX-License-Identifier: GPL-2.0
//! Agents and the `keyagent` key type that registers them.
//!
//! `add_key("keyagent", TYPE, "SIGNAL[ SCOPE]", keyring)`, or `"fd N[ SCOPE]"` for a channel
//! (`crate::channel`), makes the calling thread the agent for key type TYPE. Every agent serves
//! the requesters whose session keyring reaches its key (and who trust it, see `crate::route`);
//! an agent registered with the scope `net` also serves the kernel's own constructions of TYPE
//! in the registrant's network namespace, if the registrant is admitted for that (see
//! [`admit_net_scope`]). The key's payload is the [`Agent`]; the key
//! cannot be updated (a second `add_key()` with the same description replaces it in that
//! keyring), reads back as its payload text, and stops routing when revoked, invalidated or
//! unlinked. Constructions already handed to the agent stay with it until they end.
//!
//! Every check is made before anything is created: a refused registration leaves nothing
//! behind. An agent is dropped in process context only: by the key's destruction (the garbage
//! collector), by `free_preparse` (the `add_key()` caller) or by the end of its last pending
//! construction; route lookups only borrow it.

use crate::channel::Channel;
use crate::delivery::{ChannelAgent, Delivery, SignalAgent};
use crate::sys::{
    chardev::Device,
    key_type::{KeyType, KeyTypeSlot, SeqFile},
    keys::{self, DomainTag, Key},
    ns::{self, NetRef, CAP_NET_ADMIN, CAP_SYS_ADMIN},
    params,
    request::Request,
};
use core::{
    fmt::Write,
    sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
};
use kernel::{
    c_str, new_spinlock,
    prelude::*,
    str::CStr,
    sync::{Arc, SpinLock},
};

/// Lowest and highest realtime signal of the kernel (`SIGRTMIN`, `SIGRTMAX`).
const SIGRTMIN: u32 = 32;
const SIGRTMAX: u32 = 64;

/// Longest key type name an agent may serve (`request_key()` takes at most 31 bytes).
const TYPE_NAME_MAX: usize = crate::sys::KEYAGENT_TYPE_NAME_MAX;

/// The scope word of agents that also serve the kernel's constructions in their network
/// namespace.
const NET_SCOPE: &[u8] = b"net";

/// The key types whose keys 6.12 tags with their network namespace (`KEY_TYPE_NET_DOMAIN`) and
/// finds only in that namespace: rxrpc's lookups compare the tag. dns_resolver's do not (see
/// `sys::ftrace::DomainIsolation`): it counts only while the module keeps its lookups apart
/// ([`set_dns_resolver_isolated`]). Routing checks the flag of the type itself at every
/// construction.
const PER_NAMESPACE_TYPES: &[&[u8]] = &[b"rxrpc", b"rxrpc_s"];

/// The dns_resolver key type.
const DNS_RESOLVER: &[u8] = b"dns_resolver";

/// Whether the module keeps dns_resolver lookups in their network namespace.
static DNS_RESOLVER_ISOLATED: AtomicBool = AtomicBool::new(false);

/// Records whether dns_resolver lookups are kept in their network namespace.
pub(crate) fn set_dns_resolver_isolated(isolated: bool) {
    DNS_RESOLVER_ISOLATED.store(isolated, Ordering::Relaxed);
}

/// Whether the kernel caches the keys of `type_name` per network namespace, finding them only
/// there.
fn cached_per_namespace(type_name: &[u8]) -> bool {
    PER_NAMESPACE_TYPES.contains(&type_name)
        || (type_name == DNS_RESOLVER && DNS_RESOLVER_ISOLATED.load(Ordering::Relaxed))
}

/// Which constructions of the kernel's an agent serves, besides its session's.
pub(crate) enum Scope {
    /// None: only requesters whose session keyring reaches the agent's key.
    Session,
    /// Those made in this network namespace.
    Net {
        net: NetRef,
        /// Whether the type's keys are cached per namespace or globally.
        cache: Cache,
    },
}

impl Scope {
    /// Whether two registrations serve the same constructions of the kernel's.
    fn same_as(&self, other: &Scope) -> bool {
        match (self, other) {
            (Scope::Session, Scope::Session) => true,
            (
                Scope::Net { net, cache },
                Scope::Net {
                    net: other_net,
                    cache: other_cache,
                },
            ) => net.key_domain() == other_net.key_domain() && cache == other_cache,
            _ => false,
        }
    }
}

/// Where the kernel caches the keys of a type an agent is scoped for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cache {
    /// Per network namespace: the answer is found only in the agent's namespace.
    PerNamespace,
    /// Globally: every requester, in any namespace, finds the answer.
    Global,
}

/// Most agents one key may have in its pool.
const POOL_MAX: usize = 32;

/// Whether a pool member that can be told may be handed a construction.
pub(crate) enum Availability {
    /// Some live member other than the requester serves.
    Serving,
    /// The only live members are the requester itself.
    OnlyRequester,
    /// No member is alive.
    Dead,
}

/// A registered agent: how it is told, what it serves, and its counters.
///
/// The agent that created a key is its payload; agents that register for the same type in the
/// same keyring later join it as `members` (with `pool`) or replace it and them (without).
/// Routing and dispatch choose among the payload agent and its members.
#[pin_data]
pub(crate) struct Agent {
    delivery: Delivery,
    scope: Scope,
    sent: AtomicU64,
    pending: AtomicUsize,
    death_reported: AtomicBool,
    key_retired: AtomicBool,
    /// Whether the registration asked to join the agents already serving (`pool`).
    joins: bool,
    #[pin]
    members: SpinLock<KVec<Arc<Agent>>>,
}

impl Agent {
    /// Calls `f` for every agent of the key whose payload is `self`: itself, then the members
    /// that joined it. Does not sleep.
    fn for_each_member(&self, mut f: impl FnMut(&Agent)) {
        f(self);
        for member in self.members.lock().iter() {
            f(member);
        }
    }

    /// Whether the pool of this key's agent can serve `request`. Does not sleep.
    pub(crate) fn availability(&self, request: &Request<'_>) -> Availability {
        let (mut alive, mut other) = (false, false);
        self.for_each_member(|agent| {
            if agent.is_alive() {
                alive = true;
                other |= !agent.delivery.is_requester(request);
            }
        });
        match (alive, other) {
            (_, true) => Availability::Serving,
            (true, false) => Availability::OnlyRequester,
            (false, false) => Availability::Dead,
        }
    }

    /// Whether any agent of the pool is alive. Does not sleep.
    pub(crate) fn pool_is_alive(&self) -> bool {
        let mut alive = false;
        self.for_each_member(|agent| alive |= agent.is_alive());
        alive
    }

    /// The live agent of `pool` (a key's payload) with the fewest pending constructions, not
    /// `except`, not the requester of `request`, and a channel if `channel_only`. Does not sleep.
    pub(crate) fn choose(
        pool: &Arc<Agent>,
        request: Option<&Request<'_>>,
        except: Option<&Agent>,
        channel_only: bool,
    ) -> Option<Arc<Agent>> {
        let eligible = |agent: &Agent| {
            agent.is_alive()
                && !except.is_some_and(|except| core::ptr::eq(except, agent))
                && !request.is_some_and(|request| agent.delivery.is_requester(request))
                && (!channel_only || matches!(agent.delivery, Delivery::Channel(_)))
        };
        let mut best: Option<(usize, Arc<Agent>)> = None;
        let mut consider = |agent: &Arc<Agent>| {
            if eligible(agent) && best.as_ref().map_or(true, |(n, _)| agent.pending() < *n) {
                best = Some((agent.pending(), agent.clone()));
            }
        };
        consider(pool);
        for member in pool.members.lock().iter() {
            consider(member);
        }
        best.map(|(_, agent)| agent)
    }

    /// Agents of the key, for `/proc/keys`. Does not sleep.
    fn member_count(&self) -> usize {
        let mut n = 0;
        self.for_each_member(|_| n += 1);
        n
    }

    /// How the agent is told.
    pub(crate) fn delivery(&self) -> &Delivery {
        &self.delivery
    }

    /// Whether the agent serves the kernel's constructions whose keys carry `tag` (a type cached
    /// per namespace) or that were made in the namespace of `tag` (a global type).
    pub(crate) fn serves_kernel_in(&self, tag: DomainTag, cache: Cache) -> bool {
        match &self.scope {
            Scope::Session => false,
            // An agent admitted for a global cache was admitted by the stronger rule: it may
            // serve a per-namespace type of its namespace too.
            Scope::Net { net, cache: own } => {
                net.key_domain() == tag && (*own == cache || *own == Cache::Global)
            }
        }
    }

    /// Whether the agent can still be served. Does not sleep.
    pub(crate) fn is_alive(&self) -> bool {
        self.delivery.is_alive()
    }

    /// Records a construction handed over.
    pub(crate) fn count_sent(&self) {
        self.sent.fetch_add(1, Ordering::Relaxed);
    }

    /// Constructions handed to the agent and not yet ended.
    pub(crate) fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    /// Takes a slot for one more pending construction if fewer than `max` are taken.
    pub(crate) fn reserve_pending(&self, max: usize) -> bool {
        self.pending
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }

    /// Gives back a slot taken by [`Agent::reserve_pending`].
    pub(crate) fn remove_pending(&self) {
        self.pending.fetch_sub(1, Ordering::Relaxed);
    }

    /// True the first time it is called: the agent's death is counted once.
    pub(crate) fn first_death_report(&self) -> bool {
        !self.death_reported.swap(true, Ordering::Relaxed)
    }

    /// True the first time it is called: the agent's key is queued for invalidation once.
    pub(crate) fn first_retirement(&self) -> bool {
        !self.key_retired.swap(true, Ordering::Relaxed)
    }

    /// Undoes [`Agent::first_retirement`] when the key could not be queued, so that the next
    /// request that finds the agent dead tries again.
    pub(crate) fn retirement_failed(&self) {
        self.key_retired.store(false, Ordering::Relaxed);
    }
}

/// How a registering agent asks to be told.
enum Told {
    /// By this realtime signal.
    Signal(u32),
    /// Through the channel open as this descriptor of the caller.
    Channel(i32),
}

/// What an `add_key()` payload asks for.
struct Registration {
    told: Told,
    net_scope: bool,
    pool: bool,
}

/// The word that makes a registration join the agents already serving the type in that
/// keyring instead of replacing them.
const POOL_WORD: &[u8] = b"pool";

/// Parses the payload: a native 4-byte int (the signal), or text: the signal in 1 or 2
/// decimal digits or `fd N` (N: a descriptor of `/dev/keyagent`, in decimal), then optionally
/// the words `net` (scope) and `pool`, each once, separated by single spaces, with an optional
/// trailing newline (`keyctl add keyagent user 40 @s`, `keyctl add keyagent dns_resolver "40
/// net" @s`, `echo 40 | keyctl padd ...`, `"fd 3"`, `"fd 3 net pool"`).
fn parse_payload(data: &[u8]) -> Result<Registration> {
    if let [a, b, c, d] = data {
        if !data.starts_with(b"fd ") {
            let value = i32::from_ne_bytes([*a, *b, *c, *d]);
            let signal = u32::try_from(value).map_err(|_| EINVAL)?;
            return check_signal(signal, false);
        }
    }
    let text = data.strip_suffix(b"\n").unwrap_or(data);
    let mut words = text.split(|&b| b == b' ');
    let mut first = words.next().ok_or(EINVAL)?;
    let channel = first == b"fd";
    if channel {
        first = words.next().ok_or(EINVAL)?;
    }
    let max_digits = if channel { 9 } else { 2 };
    if first.is_empty() || first.len() > max_digits || !first.iter().all(u8::is_ascii_digit) {
        return Err(EINVAL);
    }
    let number = first.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0'));
    let (mut net_scope, mut pool) = (false, false);
    for word in words {
        let flag = match word {
            NET_SCOPE => &mut net_scope,
            POOL_WORD => &mut pool,
            _ => return Err(EINVAL),
        };
        if *flag {
            return Err(EINVAL);
        }
        *flag = true;
    }
    let mut registration = if channel {
        // CAST: At most 9 digits.
        Registration {
            told: Told::Channel(number as i32),
            net_scope,
            pool,
        }
    } else {
        check_signal(number, net_scope)?
    };
    registration.pool = pool;
    Ok(registration)
}

fn check_signal(signal: u32, net_scope: bool) -> Result<Registration> {
    if !(SIGRTMIN..=SIGRTMAX).contains(&signal) {
        return Err(EINVAL);
    }
    Ok(Registration {
        told: Told::Signal(signal),
        net_scope,
        pool: false,
    })
}

/// Checks the name of the key type an agent wants to serve.
fn check_type_name(name: &CStr) -> Result {
    let bytes = name.as_bytes();
    let printable = bytes.iter().all(|b| b.is_ascii_graphic());
    let reserved = [c_str!("keyagent"), c_str!("keyring")]
        .iter()
        .any(|r| r.as_bytes() == bytes);
    if bytes.is_empty() || bytes.len() > TYPE_NAME_MAX || !printable || bytes[0] == b'.' || reserved
    {
        return Err(EINVAL);
    }
    Ok(())
}

/// Admits the calling task as an agent for the kernel's constructions of `type_name` in its
/// network namespace:
///
/// - a type cached per namespace: with `CAP_NET_ADMIN` or `CAP_SYS_ADMIN` over the user
///   namespace that owns the network namespace (a container's root serves its container);
/// - a global type: only if the administrator listed it in `global_types`, and with
///   `CAP_SYS_ADMIN` in the initial user namespace.
///
/// Fails with `EPERM` without the capability, `EACCES` for a global type not listed, and
/// `EOPNOTSUPP` for dns_resolver when the module cannot keep its lookups per namespace (the
/// dns_resolver module was not loaded before it).
fn admit_net_scope(type_name: &CStr) -> Result<Scope> {
    let net = NetRef::current().ok_or(ESRCH)?;
    let name = type_name.as_bytes();
    let cache = if cached_per_namespace(name) {
        let owner = net.user_ns();
        if !(owner.current_has(CAP_NET_ADMIN) || owner.current_has(CAP_SYS_ADMIN)) {
            return Err(EPERM);
        }
        Cache::PerNamespace
    } else if name == DNS_RESOLVER {
        return Err(crate::sys::errno::EOPNOTSUPP());
    } else if params::global_type_allowed(name) {
        if !ns::current_capable(CAP_SYS_ADMIN) {
            return Err(EPERM);
        }
        Cache::Global
    } else {
        return Err(EACCES);
    };
    Ok(Scope::Net { net, cache })
}

/// The `keyagent` key type.
pub(crate) struct AgentKeyType;

static AGENT_KEY_TYPE: KeyTypeSlot = KeyTypeSlot::new();

#[vtable]
impl KeyType for AgentKeyType {
    type Payload = Agent;
    const NAME: &'static CStr = c_str!("keyagent");

    fn slot() -> &'static KeyTypeSlot {
        &AGENT_KEY_TYPE
    }

    fn vet_description(description: &CStr) -> Result {
        check_type_name(description)
    }

    fn preparse(description: &CStr, data: &[u8]) -> Result<Arc<Agent>> {
        // The keys core vets the description only after this: check it first.
        check_type_name(description)?;
        let registration = parse_payload(data)?;
        let scope = if registration.net_scope {
            admit_net_scope(description)?
        } else {
            Scope::Session
        };
        let delivery =
            match registration.told {
                Told::Signal(signal) => {
                    Delivery::Signal(SignalAgent::register_current(description, signal)?)
                }
                Told::Channel(fd) => Delivery::Channel(ChannelAgent::register_current(
                    Device::<Channel>::object_of_fd(fd)?,
                )),
            };
        Arc::pin_init(
            pin_init!(Agent {
                delivery,
                scope,
                sent: AtomicU64::new(0),
                pending: AtomicUsize::new(0),
                death_reported: AtomicBool::new(false),
                key_retired: AtomicBool::new(false),
                joins: registration.pool,
                members <- new_spinlock!(KVec::new()),
            }),
            GFP_KERNEL,
        )
    }

    /// Another registration for the type in a keyring that has the key already: the new agent
    /// joins the key's pool (`pool`) or replaces every agent serving it. It must be made by the
    /// key's owner (`EPERM`) with the same scope (`EINVAL`), and the pool holds at most
    /// [`POOL_MAX`] live agents (`ENOSPC`). Dead agents leave the pool here.
    fn update(key: &Key, current: &Agent, new: Arc<Agent>) -> Result<Option<Arc<Agent>>> {
        if keys::current_fsuid() != key.owner() {
            return Err(EPERM);
        }
        if !current.scope.same_as(&new.scope) {
            return Err(EINVAL);
        }
        if !new.joins {
            return Ok(Some(new));
        }
        let capacity = current.members.lock().len() + 1;
        let mut members = KVec::with_capacity(capacity, GFP_KERNEL)?;
        let mut members_lock = current.members.lock();
        let live = members_lock.iter().filter(|agent| agent.is_alive()).count();
        if live + usize::from(current.is_alive()) >= POOL_MAX {
            return Err(ENOSPC);
        }
        for agent in members_lock.iter().filter(|agent| agent.is_alive()) {
            // Cannot fail: the capacity covers every member and the new one.
            let _ = members.push(agent.clone(), GFP_ATOMIC);
        }
        let _ = members.push(new, GFP_ATOMIC);
        // The members that leave are dropped here, after the lock, in process context.
        let old = core::mem::replace(&mut *members_lock, members);
        drop(members_lock);
        drop(old);
        Ok(None)
    }

    fn indexed(agent: &Agent) -> bool {
        matches!(agent.scope, Scope::Net { .. })
    }

    fn describe(_key: &Key, agent: Option<&Agent>, out: &mut SeqFile) {
        let Some(pool) = agent else { return };
        let members = pool.member_count();
        describe_agent(pool, out);
        if members > 1 {
            let _ = write!(out, " members {}", members);
        }
    }

    fn read(pool: &Agent, buf: &mut [u8]) -> Result<usize> {
        read_agent(pool, buf)
    }
}

/// The `/proc/keys` text of one agent.
fn describe_agent(agent: &Agent, out: &mut SeqFile) {
    let _ = write!(
        out,
        ": pid {}",
        agent.delivery.thread().pid().nr_seen_by_current()
    );
    let _ = match &agent.delivery {
        Delivery::Signal(signal_agent) => write!(out, " sig {}", signal_agent.signal()),
        Delivery::Channel(_) => write!(out, " chan"),
    };
    let _ = write!(
        out,
        " {} sent {} pending {}",
        if agent.is_alive() { "alive" } else { "dead" },
        agent.sent.load(Ordering::Relaxed),
        agent.pending(),
    );
    let _ = match &agent.scope {
        Scope::Session => write!(out, " scope session"),
        Scope::Net { net, cache } => write!(
            out,
            " scope net:[{}]{}",
            net.inum(),
            if *cache == Cache::Global {
                " global"
            } else {
                ""
            }
        ),
    };
}

/// The `keyctl read` text of one agent.
fn read_agent(agent: &Agent, buf: &mut [u8]) -> Result<usize> {
    // A realtime signal number always has two digits; a channel reads back as "chan".
    let digits = match &agent.delivery {
        Delivery::Signal(signal_agent) => {
            let signal = signal_agent.signal();
            // CAST: Each digit is below 10.
            [b'0' + (signal / 10) as u8, b'0' + (signal % 10) as u8, 0, 0]
        }
        Delivery::Channel(_) => *b"chan",
    };
    let digits = &digits[..digits.iter().position(|&b| b == 0).unwrap_or(4)];
    let scope: &[u8] = match agent.scope {
        Scope::Session => b"",
        Scope::Net { .. } => b" net",
    };
    let text = Iterator::chain(digits.iter(), scope.iter());
    for (out, byte) in buf.iter_mut().zip(text.clone()) {
        *out = *byte;
    }
    Ok(text.count())
}
