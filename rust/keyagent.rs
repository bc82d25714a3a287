// SPDX-License-Identifier: GPL-2.0
//! keyagent: answer `request_key()` upcalls with agent processes.
//!
//! A process registers as the agent for a key type by adding a `keyagent` key; constructions
//! requested by processes whose session keyring reaches that key go to the agent, as a realtime
//! signal, instead of to `/sbin/request-key`. See `README.md`.

mod agent;
mod broker;
mod route;
mod stats;
mod sys;

use kernel::{prelude::*, sync::Arc};

module! {
    type: KeyAgentModule,
    name: "keyagent",
    author: "The keyagent developers",
    description: "Answer request_key() upcalls with registered agent processes",
    license: "GPL",
}

struct KeyAgentModule {
    // Fields drop in declaration order, which is the teardown order: first the hook (no new
    // constructions reach the module), then the broker (pending constructions fail, the key
    // type is unregistered), then the counters.
    _hook: sys::ftrace::ActorHook<broker::Broker>,
    _broker: Arc<broker::Broker>,
    _stats: sys::debugfs::Dir,
}

impl kernel::Module for KeyAgentModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let stats = stats::publish();
        let broker = broker::Broker::new()?;
        let hook = sys::ftrace::ActorHook::install(broker.clone()).inspect_err(|e| {
            pr_err!("cannot hook the request_key actor: {:?}\n", e);
        })?;
        pr_info!("loaded: routing request_key() upcalls to registered agents\n");
        Ok(Self {
            _hook: hook,
            _broker: broker,
            _stats: stats,
        })
    }
}

impl Drop for KeyAgentModule {
    fn drop(&mut self) {
        pr_info!("unloading\n");
    }
}
