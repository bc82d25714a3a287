// SPDX-License-Identifier: GPL-2.0
//! The broker: the actor behind the hook. It asks routing (`crate::route`) where a construction
//! goes, hands routed constructions to their agents (`crate::delivery`), records them in the
//! table of pending constructions (`crate::pending`) and runs the reaper, which every
//! [`REAP_INTERVAL_MS`] while anything is pending ends what can be ended and invalidates the
//! keys of agents found dead. Unloading fails whatever is left.

use crate::{
    agent::{Agent, AgentKeyType},
    pending::{Pending, PendingTable},
    route::{route, Route},
    stats,
    sys::{
        errno,
        ftrace::{Actor, Claim},
        key_type::{Registration, TypedKey},
        keys::Key,
        params,
        rcu::Published,
        request::Request,
        time::ms_to_jiffies,
        work::{impl_has_delayed_work, DelayedWork},
    },
};
use kernel::{
    new_mutex, new_spinlock,
    prelude::*,
    sync::{Arc, ArcBorrow, Mutex, SpinLock},
    types::ARef,
};

/// How often pending constructions are checked, in milliseconds.
const REAP_INTERVAL_MS: u32 = 100;

/// The broker of the loaded module, published for [`agent_died`] while the channel device
/// exists.
static PUBLISHED: Published<Broker> = Published::new();

/// Tells the broker that an agent died, so that the reaper fails its constructions now rather
/// than at its next round. Called by a channel's release. May sleep.
pub(crate) fn agent_died() {
    if let Some(broker) = PUBLISHED.get() {
        DelayedWork::schedule(broker.as_arc_borrow(), 0);
    }
}

/// Routes and dispatches constructions; the actor behind the hook.
#[pin_data]
pub(crate) struct Broker {
    key_type: Registration<AgentKeyType>,
    #[pin]
    pending: PendingTable,
    /// Keys of agents found dead, to invalidate in process context.
    #[pin]
    retired: SpinLock<KVec<ARef<Key>>>,
    /// The keyrings into which the kernel linked keys of per-namespace types that agents
    /// answered (dns_resolver's cache), flushed at unload: without the module, every network
    /// namespace would find those answers.
    #[pin]
    answered_caches: Mutex<KVec<ARef<Key>>>,
    #[pin]
    reaper: DelayedWork<Broker>,
}

impl_has_delayed_work!(Broker, reaper, Broker::reap);

impl Broker {
    /// Registers the `keyagent` key type and returns the broker serving it.
    pub(crate) fn new() -> Result<Arc<Self>> {
        let key_type = Registration::register()?;
        Arc::pin_init(
            pin_init!(Self {
                key_type,
                pending <- PendingTable::new(),
                retired <- new_spinlock!(KVec::new()),
                answered_caches <- new_mutex!(KVec::new()),
                reaper <- DelayedWork::new(),
            }),
            GFP_KERNEL,
        )
    }

    /// Publishes the broker for [`agent_died`]. Undone by [`Broker::unpublish`].
    pub(crate) fn publish(this: &Arc<Self>) {
        PUBLISHED.publish(this);
    }

    /// Withdraws the broker published by [`Broker::publish`]. May sleep.
    pub(crate) fn unpublish() {
        PUBLISHED.withdraw();
    }

    /// Hands `request` to the agent registered by `agent_key`. May sleep.
    fn dispatch(
        this: ArcBorrow<'_, Self>,
        request: &Request<'_>,
        agent_key: TypedKey<AgentKeyType>,
    ) -> Result {
        let pool = agent_key.payload().ok_or_else(errno::ENOKEY)?;
        // The pool may have lost its live agents since the claim.
        let agent =
            Agent::choose(&pool, Some(request), None, false).ok_or_else(errno::EOWNERDEAD)?;
        let max = params::max_pending();
        if !agent.reserve_pending(max) {
            // Constructions the agent answered may still hold slots until the reaper runs.
            this.reap_pending();
            if !agent.reserve_pending(max) {
                stats::BUSY.inc();
                return Err(EBUSY);
            }
        }
        // From here on, dropping the entry gives the slot back and takes the authority back.
        let serial = request.target().serial();
        this.pending
            .insert(serial, Pending::new(request, agent.clone(), pool.clone()))?;
        if let Err(e) = agent.delivery().hand_over(request) {
            drop(this.pending.remove(serial));
            if e == errno::EOWNERDEAD() {
                if !pool.pool_is_alive() {
                    Self::retire(this, agent_key);
                }
            } else {
                stats::SIGNAL_FAILURES.inc();
            }
            return Err(e);
        }
        agent.count_sent();
        DelayedWork::schedule(this, ms_to_jiffies(REAP_INTERVAL_MS));
        if request.is_kernel_originated() && request.target().type_is_net_tagged() {
            if let Some(cache) = request.dest_keyring() {
                this.remember_cache(cache);
            }
        }
        Ok(())
    }

    /// Records `cache` among the keyrings to flush at unload. May sleep.
    fn remember_cache(&self, cache: &Key) {
        let mut caches = self.answered_caches.lock();
        if !caches.iter().any(|known| known.serial() == cache.serial()) {
            // Without memory the cache is not flushed at unload: its answers then stay until
            // they expire.
            let _ = caches.push(cache.into(), GFP_KERNEL);
        }
    }

    /// Queues the key of a dead agent for invalidation. Does not sleep.
    fn retire(this: ArcBorrow<'_, Self>, agent_key: TypedKey<AgentKeyType>) {
        let first = agent_key.with_payload(|agent| {
            if agent.first_death_report() {
                stats::DEAD_AGENTS.inc();
            }
            agent.first_retirement()
        });
        if first != Some(true) {
            return;
        }
        let mut retired = this.retired.lock();
        if retired.reserve(1, GFP_ATOMIC).is_err() {
            drop(retired);
            // The key stays for now; the next request that finds the agent dead retries.
            agent_key.with_payload(|agent| agent.retirement_failed());
            return;
        }
        // Cannot fail: the space is reserved.
        let _ = retired.push(agent_key.into_key(), GFP_ATOMIC);
        drop(retired);
        DelayedWork::schedule(this, 0);
    }

    /// Ends the pending constructions that can be ended; whether any are left. May sleep.
    fn reap_pending(&self) -> bool {
        let timeout_ms = params::request_timeout_secs().saturating_mul(1000);
        self.pending.reap(timeout_ms, params::max_pending())
    }

    /// Invalidates the keys of dead agents. May sleep.
    fn invalidate_retired(&self) {
        let retired = core::mem::take(&mut *self.retired.lock());
        for key in retired.iter() {
            key.invalidate();
        }
    }

    /// The reaper.
    fn reap(this: ArcBorrow<'_, Self>) {
        let busy = this.reap_pending();
        this.invalidate_retired();
        if busy {
            DelayedWork::schedule(this, ms_to_jiffies(REAP_INTERVAL_MS));
        }
    }

    /// Stops the reaper and fails every pending construction with `ECANCELED`. Called once the
    /// hook is gone, so that nothing dispatches or schedules the reaper any more. May sleep.
    pub(crate) fn shut_down(&self) {
        DelayedWork::disable_sync(self);
        self.pending.cancel_all();
        self.invalidate_retired();
        for cache in core::mem::take(&mut *self.answered_caches.lock()).iter() {
            let _ = cache.clear();
        }
    }
}

impl Actor for Broker {
    type AgentType = AgentKeyType;

    fn claim(this: ArcBorrow<'_, Self>, request: &Request<'_>) -> Option<Claim<AgentKeyType>> {
        let fallback = || {
            stats::FALLBACK.inc();
            if request.is_kernel_originated() {
                stats::KERNEL_FALLBACK.inc();
            }
        };
        match route(&this.key_type, request) {
            Route::Agent(agent_key) => Some(Claim::Agent(agent_key)),
            Route::Fail(error) => Some(Claim::Fail(error)),
            Route::DeadAgent(agent_key) => {
                Self::retire(this, agent_key);
                fallback();
                None
            }
            Route::Default => {
                fallback();
                None
            }
        }
    }

    fn construct(this: ArcBorrow<'_, Self>, request: &Request<'_>, claim: Claim<AgentKeyType>) {
        let result = match claim {
            Claim::Agent(agent_key) => {
                stats::ROUTED.inc();
                if request.is_kernel_originated() {
                    stats::KERNEL_ROUTED.inc();
                }
                Self::dispatch(this, request, agent_key)
            }
            Claim::Fail(error) => Err(error),
        };
        if let Err(e) = result {
            request.fail(e);
        }
    }
}
