// SPDX-License-Identifier: GPL-2.0
//! Counters, readable in `/sys/kernel/debug/keyagent/`.

use crate::sys::debugfs;
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::c_str;

/// A monotonically increasing event counter.
pub(crate) struct Counter(AtomicU64);

impl Counter {
    const fn new() -> Self {
        Self(AtomicU64::new(0))
    }

    pub(crate) fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Constructions handed to an agent.
pub(crate) static ROUTED: Counter = Counter::new();
/// Constructions left to `/sbin/request-key` (no agent, or its agent was dead).
pub(crate) static FALLBACK: Counter = Counter::new();
/// Handed-over constructions the agent ended (instantiated, negated or rejected).
pub(crate) static ANSWERED: Counter = Counter::new();
/// Constructions failed because the agent did not answer in time.
pub(crate) static TIMEOUTS: Counter = Counter::new();
/// Agents found dead: at request time (fallback) or holding constructions (failed).
pub(crate) static DEAD_AGENTS: Counter = Counter::new();
/// Constructions failed because their agent died before answering.
pub(crate) static ORPHANED: Counter = Counter::new();
/// Signals that could not be queued.
pub(crate) static SIGNAL_FAILURES: Counter = Counter::new();
/// Constructions refused because the agent had `max_pending` in flight.
pub(crate) static BUSY: Counter = Counter::new();
/// Constructions failed because the module was unloaded.
pub(crate) static CANCELLED: Counter = Counter::new();
/// Session agents passed over because the requester does not trust their owner.
pub(crate) static UNTRUSTED: Counter = Counter::new();
/// Constructions made by the kernel (override credentials, kernel threads) handed to an agent.
pub(crate) static KERNEL_ROUTED: Counter = Counter::new();
/// Constructions made by the kernel left to `/sbin/request-key`.
pub(crate) static KERNEL_FALLBACK: Counter = Counter::new();
/// Constructions a dead channel had not read, handed to another agent of its pool.
pub(crate) static REHANDED: Counter = Counter::new();

/// The debugfs directory showing the counters.
pub(crate) fn publish() -> debugfs::Dir {
    let dir = debugfs::Dir::new(c_str!("keyagent"));
    dir.counter(c_str!("routed"), &ROUTED.0);
    dir.counter(c_str!("fallback"), &FALLBACK.0);
    dir.counter(c_str!("answered"), &ANSWERED.0);
    dir.counter(c_str!("timeouts"), &TIMEOUTS.0);
    dir.counter(c_str!("dead_agents"), &DEAD_AGENTS.0);
    dir.counter(c_str!("orphaned"), &ORPHANED.0);
    dir.counter(c_str!("signal_failures"), &SIGNAL_FAILURES.0);
    dir.counter(c_str!("busy"), &BUSY.0);
    dir.counter(c_str!("cancelled"), &CANCELLED.0);
    dir.counter(c_str!("untrusted"), &UNTRUSTED.0);
    dir.counter(c_str!("kernel_routed"), &KERNEL_ROUTED.0);
    dir.counter(c_str!("kernel_fallback"), &KERNEL_FALLBACK.0);
    dir.counter(c_str!("rehanded"), &REHANDED.0);
    dir
}
