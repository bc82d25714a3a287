// SPDX-License-Identifier: GPL-2.0
//! The table of constructions handed to agents and not yet ended, and how each one ends.
//!
//! A construction stays in the table from its hand-over until it ends: when the agent has
//! answered, the agent's authority over it is taken back; when the agent has died or the
//! timeout has passed, it is failed. Each entry holds one of its agent's pending slots.

use crate::{
    agent::Agent,
    stats::{self, Counter},
    sys::{
        errno,
        keys::Key,
        request::{Request, FAILURE_CACHE_SECS},
        time::Jiffies,
    },
};
use kernel::{
    error::Error,
    new_mutex,
    prelude::*,
    rbtree::{RBTree, RBTreeNode},
    sync::{Arc, Mutex},
    types::ARef,
};

/// A construction handed to an agent.
pub(crate) struct Pending {
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
    pub(crate) fn new(request: &Request<'_>, agent: Arc<Agent>) -> Self {
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
        self.agent
            .delivery()
            .withdraw(self.target.serial(), &self.authkey);
        self.agent.remove_pending();
    }
}

/// The pending constructions, by serial of the key under construction.
#[pin_data]
pub(crate) struct PendingTable {
    #[pin]
    map: Mutex<RBTree<i32, Pending>>,
}

impl PendingTable {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            map <- new_mutex!(RBTree::new()),
        })
    }

    /// Adds `pending` for the key `serial`. May sleep.
    pub(crate) fn insert(&self, serial: i32, pending: Pending) -> Result {
        let node = RBTreeNode::new(serial, pending, GFP_KERNEL)?;
        let _ = self.map.lock().insert(node);
        Ok(())
    }

    /// Takes the entry of `serial` out. May sleep.
    pub(crate) fn remove(&self, serial: i32) -> Option<Pending> {
        self.map.lock().remove(&serial)
    }

    /// Ends the constructions that can be ended, failing those older than `timeout_ms`, and
    /// returns whether any are left. May sleep.
    pub(crate) fn reap(&self, timeout_ms: u32) -> bool {
        let mut map = self.map.lock();
        let mut cursor = map.cursor_front();
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
        map.iter().next().is_some()
    }

    /// Fails every construction left with `ECANCELED`. May sleep.
    pub(crate) fn cancel_all(&self) {
        let mut map = self.map.lock();
        while let Some(first) = map.cursor_front() {
            let (_, node) = first.remove_current();
            node.to_key_value()
                .1
                .finish(Verdict::Fail(errno::ECANCELED(), &stats::CANCELLED));
        }
    }
}
