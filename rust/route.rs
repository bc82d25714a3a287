// SPDX-License-Identifier: GPL-2.0
//! Routing: which agent, if any, answers a construction.
//!
//! The rule today: the first live `keyagent` key whose description is the requested key's type,
//! found in the requester's session keyring or the keyrings nested in it, searching with the
//! requester's credentials (so possession and permissions apply). Requests without a session
//! keyring, such as the kernel's own under override credentials, are not routed. Routing never
//! sleeps: the hook asks it with preemption disabled.

use crate::{
    agent::AgentKeyType,
    sys::key_type::{Registration, TypedKey},
    sys::request::Request,
};

/// Where a construction goes.
pub(crate) enum Route {
    /// To the kernel's default actor, `/sbin/request-key`.
    Default,
    /// To the agent registered by this key.
    Agent(TypedKey<AgentKeyType>),
    /// Nowhere: the agent registered by this key has died.
    DeadAgent(TypedKey<AgentKeyType>),
}

/// Routes `request`, searching for agents registered with `key_type`.
pub(crate) fn route(key_type: &Registration<AgentKeyType>, request: &Request<'_>) -> Route {
    let Some(session) = request.requester_session_keyring() else {
        return Route::Default;
    };
    let Ok(agent_key) = key_type.search(session, request.type_name()) else {
        return Route::Default;
    };
    match agent_key.payload() {
        None => Route::Default,
        Some(agent) if agent.is_alive() => Route::Agent(agent_key),
        Some(_) => Route::DeadAgent(agent_key),
    }
}
