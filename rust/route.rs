// SPDX-License-Identifier: GPL-2.0
//! Routing: which agent, if any, answers a construction.
//!
//! Two rules, in this order:
//!
//! 1. **Session.** A requester with a session keyring is served by the first `keyagent` key
//!    with a live agent whose description is the requested type, found in that keyring or the keyrings
//!    nested in it with the requester's credentials (possession and permissions apply), if the
//!    requester trusts the key's owner (see [`trusts`]).
//! 2. **Kernel.** A construction the kernel makes (under override credentials, as
//!    `dns_query()`, the NFS idmapper and CIFS do, or from a kernel thread) that rule 1 left
//!    unanswered is served by a live agent registered with the scope `net` for the requested
//!    type in the right network namespace: for a type cached per namespace, the namespace the
//!    key is tagged with, even when a kernel thread asks (the caller named the namespace); for a
//!    global type listed in `global_types`, the requesting task's namespace, and never for a
//!    kernel thread (it has no namespace of its own to tell where the request comes from).
//!
//! A key's agents form a pool: the construction goes to its live agent with the fewest pending
//! constructions (`Agent::choose`, at dispatch). Everything else goes to `/sbin/request-key`. An agent that would be asked for its own key
//! type fails the construction with `EDEADLK` instead of waiting for itself. Routing never
//! sleeps: the hook asks it from its ftrace callback.

use crate::{
    agent::{Agent, AgentKeyType, Availability, Cache},
    stats,
    sys::{
        errno,
        key_type::{Registration, TypedKey},
        keys::{Key, Kuid},
        params,
        request::Request,
    },
};
use kernel::error::Error;

/// Where a construction goes.
pub(crate) enum Route {
    /// To the kernel's default actor, `/sbin/request-key`.
    Default,
    /// To the agent registered by this key.
    Agent(TypedKey<AgentKeyType>),
    /// Nowhere: the agent registered by this key has died.
    DeadAgent(TypedKey<AgentKeyType>),
    /// Nowhere: fail the construction at once.
    Fail(Error),
}

/// Routes `request`, searching for agents registered with `key_type`.
pub(crate) fn route(key_type: &Registration<AgentKeyType>, request: &Request<'_>) -> Route {
    if let Some(session) = request.requester_session_keyring() {
        let route = session_rule(key_type, request, session);
        if !matches!(route, Route::Default) {
            return route;
        }
    }
    if request.is_kernel_originated() {
        return kernel_rule(key_type, request);
    }
    Route::Default
}

fn session_rule(
    key_type: &Registration<AgentKeyType>,
    request: &Request<'_>,
    session: &Key,
) -> Route {
    let Ok(agent_key) = key_type.search(session, request.type_name()) else {
        return Route::Default;
    };
    if !trusts(request, agent_key.key().owner()) {
        stats::UNTRUSTED.inc();
        return Route::Default;
    }
    to_agent(agent_key, request)
}

/// Whether the requester trusts an agent whose key `owner` owns: the owner is the requester's
/// own user and the requester gained no privilege by exec (it is dumpable, so not a setuid or
/// setgid program), or the owner is privileged over the requester: root of the requester's
/// user namespace or of one above it, or the creator of one of them.
///
/// A requester that became more privileged than the user whose session keyring it kept (a
/// setuid program, `su` or `sudo` without a new session, a `seteuid()` back to root) therefore
/// does not reach that user's agents. Only a privileged process can give an agent key another
/// owner (`keyctl chown`): that is how root trusts another user's agent explicitly.
fn trusts(request: &Request<'_>, owner: Kuid) -> bool {
    if owner == request.requester_fsuid() && request.requester_is_dumpable() {
        return true;
    }
    let mut ns = Some(request.requester_user_ns());
    while let Some(user_ns) = ns {
        if user_ns.root() == owner || user_ns.owner() == owner {
            return true;
        }
        ns = user_ns.parent();
    }
    false
}

fn kernel_rule(key_type: &Registration<AgentKeyType>, request: &Request<'_>) -> Route {
    let target = request.target();
    let type_name = request.type_name();
    let (tag, cache) = if target.type_is_net_tagged() {
        (target.domain_tag(), Cache::PerNamespace)
    } else {
        if request.is_kernel_thread() || !params::global_type_allowed(type_name.as_bytes()) {
            return Route::Default;
        }
        let Some(tag) = request.requester_net_key_domain() else {
            return Route::Default;
        };
        (tag, Cache::Global)
    };
    let serves = |key: &Key, agent: &Agent| {
        key.description().as_bytes() == type_name.as_bytes() && agent.serves_kernel_in(tag, cache)
    };
    if let Some(agent_key) =
        key_type.find_indexed(|key, agent| serves(key, agent) && agent.pool_is_alive())
    {
        return to_agent(agent_key, request);
    }
    match key_type.find_indexed(serves) {
        Some(dead) => Route::DeadAgent(dead),
        None => Route::Default,
    }
}

/// The route to the agents of `agent_key`, one of which must be alive and not the requester
/// itself.
fn to_agent(agent_key: TypedKey<AgentKeyType>, request: &Request<'_>) -> Route {
    match agent_key.with_payload(|agent| agent.availability(request)) {
        None => Route::Default,
        Some(Availability::Dead) => Route::DeadAgent(agent_key),
        Some(Availability::OnlyRequester) => Route::Fail(errno::EDEADLK()),
        Some(Availability::Serving) => Route::Agent(agent_key),
    }
}
