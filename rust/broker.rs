// SPDX-License-Identifier: GPL-2.0
//! Dispatch: handing constructions to agents and seeing each one end.
//!
//! For a routed construction the broker links the authorisation key into the agent's process
//! keyring, records the construction as pending and signals the agent. A reaper, which runs
//! every [`REAP_INTERVAL_MS`] while anything is pending, ends each pending construction: when
//! the agent has answered it unlinks the authorisation key; when the agent has died or the
//! timeout has passed it fails the construction. Unloading fails whatever is left.

use crate::{
    agent::{Agent, AgentKeyType},
    route::{route, Route},
    stats::{self, Counter},
    sys::{
        errno,
        ftrace::Actor,
        key_type::{KeyTypeSlot, Registration, TypedKey},
        keys::Key,
        params,
        request::{Request, FAILURE_CACHE_SECS},
        time::{ms_to_jiffies, Jiffies},
        work::{impl_has_delayed_work, DelayedWork},
    },
};
use kernel::{
    error::Error,
    new_mutex, new_spinlock,
    prelude::*,
    rbtree::{RBTree, RBTreeNode},
    sync::{Arc, Mutex, SpinLock},
    types::ARef,
};

/// The `keyagent` key type.
static AGENT_KEY_TYPE: KeyTypeSlot = KeyTypeSlot::new();

/// How often pending constructions are checked, in milliseconds.
const REAP_INTERVAL_MS: u32 = 100;

/// `si_code` of the agent's signal (`KEYAGENT_SI_CODE` in `include/keyagent.h`).
const SI_CODE: i32 = crate::sys::KEYAGENT_SI_CODE;

/// A construction handed to an agent. It holds one of the agent's pending slots.
struct Pending {
    target: ARef<Key>,
    authkey: ARef<Key>,
    agent: Arc<Agent>,
    since: Jiffies,
}

/// What to do with a pending construction.
enum Verdict {
    Wait,
    /// The agent answered.
    Ended,
    /// Fail it with this error, counted here.
    Fail(Error, &'static Counter),
}

impl Pending {
    /// Records `request` for `agent`, whose pending slot the caller reserved.
    fn new(request: &Request<'_>, agent: Arc<Agent>) -> Self {
        Self {
            target: request.target().into(),
            authkey: request.authkey().into(),
            agent,
            since: Jiffies::now(),
        }
    }

    fn verdict(&self, timeout_ms: u32) -> Verdict {
        if !self.target.is_under_construction() {
            Verdict::Ended
        } else if !self.agent.is_alive() {
            if self.agent.first_death_report() {
                stats::DEAD_AGENTS.inc();
            }
            Verdict::Fail(errno::EOWNERDEAD(), &stats::ORPHANED)
        } else if self.since.elapsed_ms(timeout_ms) {
            Verdict::Fail(errno::ETIMEDOUT(), &stats::TIMEOUTS)
        } else {
            Verdict::Wait
        }
    }

    /// Ends the construction as `verdict` says (`Wait` is treated as `Ended`). May sleep.
    fn finish(self, verdict: Verdict) {
        match verdict {
            Verdict::Wait | Verdict::Ended => stats::ANSWERED.inc(),
            Verdict::Fail(error, counter) => {
                // EBUSY: the agent answered just now.
                if self
                    .target
                    .reject(FAILURE_CACHE_SECS, error, &self.authkey)
                    .is_ok()
                {
                    counter.inc();
                } else {
                    stats::ANSWERED.inc();
                }
            }
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        // The agent may have unlinked it already.
        let _ = self.agent.keyring().unlink(&self.authkey);
        self.agent.remove_pending();
    }
}

/// Routes and dispatches constructions; the actor behind the hook.
#[pin_data(PinnedDrop)]
pub(crate) struct Broker {
    key_type: Registration<AgentKeyType>,
    /// Constructions handed to agents, by serial of the key under construction.
    #[pin]
    pending: Mutex<RBTree<i32, Pending>>,
    /// Keys of agents found dead, to invalidate in process context.
    #[pin]
    retired: SpinLock<KVec<ARef<Key>>>,
    #[pin]
    reaper: DelayedWork<Broker>,
}

impl_has_delayed_work!(Broker, reaper, Broker::reap);

impl Broker {
    /// Registers the `keyagent` key type and returns the broker serving it.
    pub(crate) fn new() -> Result<Arc<Self>> {
        let key_type = Registration::register(&AGENT_KEY_TYPE)?;
        Arc::pin_init(
            pin_init!(Self {
                key_type,
                pending <- new_mutex!(RBTree::new()),
                retired <- new_spinlock!(KVec::new()),
                reaper <- DelayedWork::new(),
            }),
            GFP_KERNEL,
        )
    }

    /// Hands `request` to the agent registered by `agent_key`.
    fn dispatch(&self, request: &Request<'_>, agent_key: TypedKey<AgentKeyType>) -> Result {
        let agent: Arc<Agent> = agent_key.payload().ok_or_else(errno::ENOKEY)?.into();
        let max = params::max_pending();
        if !agent.reserve_pending(max) {
            // Constructions the agent answered may still hold slots until the reaper runs.
            self.reap_pending();
            if !agent.reserve_pending(max) {
                stats::BUSY.inc();
                return Err(EBUSY);
            }
        }
        // From here on, dropping `pending` gives the slot back and unlinks the auth key.
        let serial = request.target().serial();
        let pending = Pending::new(request, agent.clone());
        agent.keyring().link(request.authkey())?;
        let node = RBTreeNode::new(serial, pending, GFP_KERNEL)?;
        let _ = self.pending.lock().insert(node);

        let sent = agent.thread().send_rt_signal(
            agent.signal(),
            SI_CODE,
            serial,
            request.requester_pid(),
            request.requester_fsuid(),
        );
        if let Err(e) = sent {
            drop(self.pending.lock().remove(&serial));
            if e == ESRCH {
                self.retire(agent_key);
                return Err(errno::EOWNERDEAD());
            }
            stats::SIGNAL_FAILURES.inc();
            return Err(e);
        }
        agent.count_sent();
        self.reaper.schedule(ms_to_jiffies(REAP_INTERVAL_MS));
        Ok(())
    }

    /// Queues the key of a dead agent for invalidation. Does not sleep.
    fn retire(&self, agent_key: TypedKey<AgentKeyType>) {
        let Some(agent) = agent_key.payload().map(Arc::<Agent>::from) else {
            return;
        };
        if agent.first_death_report() {
            stats::DEAD_AGENTS.inc();
        }
        if !agent.first_retirement() {
            return;
        }
        let queued = self.retired.lock().push(agent_key.into_key(), GFP_ATOMIC);
        if queued.is_ok() {
            self.reaper.schedule(0);
        } else {
            // The key stays for now; the next request that finds the agent dead retries.
            agent.retirement_failed();
        }
    }

    /// Ends the pending constructions that can be ended. May sleep.
    fn reap_pending(&self) -> bool {
        let timeout_ms = params::request_timeout_secs().saturating_mul(1000);
        let mut pending = self.pending.lock();
        let mut cursor = pending.cursor_front();
        while let Some(current) = cursor {
            cursor = match current.current().1.verdict(timeout_ms) {
                Verdict::Wait => current.move_next(),
                verdict => {
                    let (next, node) = current.remove_current();
                    node.to_key_value().1.finish(verdict);
                    next
                }
            };
        }
        pending.iter().next().is_some()
    }

    /// Invalidates the keys of dead agents. May sleep.
    fn invalidate_retired(&self) {
        let retired = core::mem::take(&mut *self.retired.lock());
        for key in retired.iter() {
            key.invalidate();
        }
    }

    /// The reaper.
    fn reap(&self) {
        let busy = self.reap_pending();
        self.invalidate_retired();
        if busy {
            self.reaper.schedule(ms_to_jiffies(REAP_INTERVAL_MS));
        }
    }
}

impl Actor for Broker {
    fn claims(&self, request: &Request<'_>) -> bool {
        match route(&self.key_type, request) {
            Route::Agent(_) => true,
            Route::DeadAgent(agent_key) => {
                self.retire(agent_key);
                stats::FALLBACK.inc();
                false
            }
            Route::Default => {
                stats::FALLBACK.inc();
                false
            }
        }
    }

    fn construct(&self, request: &Request<'_>) {
        let result = match route(&self.key_type, request) {
            Route::Agent(agent_key) => {
                stats::ROUTED.inc();
                self.dispatch(request, agent_key)
            }
            Route::DeadAgent(agent_key) => {
                self.retire(agent_key);
                Err(errno::EOWNERDEAD())
            }
            // The agent key went away after the hook claimed the construction.
            Route::Default => Err(errno::ENOKEY()),
        };
        if let Err(e) = result {
            request.fail(e);
        }
    }
}

#[pinned_drop]
impl PinnedDrop for Broker {
    fn drop(self: Pin<&mut Self>) {
        // The hook is gone by now: nothing dispatches or schedules the reaper any more.
        self.reaper.cancel_sync();
        let mut pending = self.pending.lock();
        while let Some(first) = pending.cursor_front() {
            let (_, node) = first.remove_current();
            node.to_key_value()
                .1
                .finish(Verdict::Fail(errno::ECANCELED(), &stats::CANCELLED));
        }
        drop(pending);
        self.invalidate_retired();
        // The key type is unregistered when its field drops, after this.
    }
}
