// SPDX-License-Identifier: GPL-2.0
//! keyagent: answer `request_key()` upcalls with agent processes.
//!
//! A process registers as the agent for a key type by adding a `keyagent` key; constructions
//! requested by processes whose session keyring reaches that key, and, for agents scoped to a
//! network namespace, the kernel's own constructions in that namespace, go to the agent, as a
//! realtime signal or a record on its `/dev/keyagent` channel, instead of to
//! `/sbin/request-key`. See `README.md`.

mod agent;
mod broker;
mod channel;
mod delivery;
mod pending;
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
    device: Option<sys::chardev::Device<channel::Channel>>,
    hook: Option<sys::ftrace::ActorHook<broker::Broker>>,
    broker: Arc<broker::Broker>,
    isolation: Option<sys::ftrace::DomainIsolation>,
    _stats: sys::debugfs::Dir,
}

impl kernel::Module for KeyAgentModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let stats = stats::publish();
        // EINVAL: no such function to hook, dns_resolver is not loaded.
        let isolation = match sys::ftrace::DomainIsolation::install() {
            Ok(isolation) => Some(isolation),
            Err(e) if e == EINVAL => {
                pr_info!("dns_resolver is not loaded: agents cannot serve its kernel requests\n");
                None
            }
            Err(e) => return Err(e),
        };
        agent::set_dns_resolver_isolated(isolation.is_some());
        let broker = broker::Broker::new()?;
        let hook = sys::ftrace::ActorHook::install(broker.clone()).inspect_err(|e| {
            pr_err!("cannot hook the request_key actor: {:?}\n", e);
        })?;
        broker::Broker::publish(&broker);
        let device = sys::chardev::Device::register().inspect_err(|e| {
            broker::Broker::unpublish();
            pr_err!("cannot register /dev/keyagent: {:?}\n", e);
        })?;
        pr_info!("loaded: routing request_key() upcalls to registered agents\n");
        Ok(Self {
            device: Some(device),
            hook: Some(hook),
            broker,
            isolation,
            _stats: stats,
        })
    }
}

impl Drop for KeyAgentModule {
    fn drop(&mut self) {
        pr_info!("unloading\n");
        // First the device (no channel is open: open files hold the module), then the hook: no
        // new construction reaches the module. Then the broker: pending constructions fail, and
        // the caches agents answered into are flushed, before the isolation of dns_resolver
        // lookups goes. The fields drop after this: the broker (which unregisters the key type,
        // destroying every agent key), then the counters.
        drop(self.device.take());
        broker::Broker::unpublish();
        drop(self.hook.take());
        self.broker.shut_down();
        drop(self.isolation.take());
    }
}
