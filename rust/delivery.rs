// SPDX-License-Identifier: GPL-2.0
//! Delivery: how an agent is told about a construction, and whether it can still be told.
//!
//! A signal agent receives the authorisation key in a keyring of the module's, linked into its
//! process keyring (where `keyctl_assume_authority()` finds it), and a realtime signal carrying
//! the serial of the key under construction (the RFC's ABI, `include/keyagent.h`). A channel
//! agent reads the construction from its `/dev/keyagent` file (`crate::channel`) and answers
//! through it; the authority stays with the module.

use crate::channel::{Channel, Unread};
use crate::sys::{
    keys::{self, Key},
    request::Request,
    task::ThreadRef,
};
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::{
    fmt,
    prelude::*,
    str::{CStr, CString},
    sync::Arc,
    types::ARef,
};

/// `si_code` of the agent's signal (`KEYAGENT_SI_CODE` in `include/keyagent.h`).
const SI_CODE: i32 = crate::sys::KEYAGENT_SI_CODE;

/// Numbers the agents' keyrings, whose descriptions must differ (a keyring replaces a link to
/// another keyring of the same description).
static NEXT_KEYRING_ID: AtomicU64 = AtomicU64::new(1);

/// An agent told by a realtime signal.
///
/// Its keyring is the module's own, kept out of the agent's key quota: the garbage collector
/// does not give back the quota of the links it removes, and every authorisation key dies after
/// its construction. The agent holds no reference to its process keyring (which may link the
/// agent's own key, a cycle the garbage collector could not break); only its serial counts.
pub(crate) struct SignalAgent {
    thread: ThreadRef,
    signal: u32,
    keyring: ARef<Key>,
    process_keyring_serial: i32,
}

impl SignalAgent {
    /// The calling thread as the agent for `type_name`, told with `signal`: makes the keyring
    /// that receives its authorisation keys and links it into its process keyring (created if
    /// it has none). The caller has validated everything else. May sleep.
    pub(crate) fn register_current(type_name: &CStr, signal: u32) -> Result<Self> {
        // Keyrings are created here, before the keys core takes the construction lock that
        // creating a keyring needs too.
        let process_keyring = keys::current_process_keyring()?;
        let name = CString::try_from_fmt(fmt!(
            "_keyagent:{}:{}",
            type_name.to_str().unwrap_or("?"),
            NEXT_KEYRING_ID.fetch_add(1, Ordering::Relaxed)
        ))?;
        let keyring = keys::new_keyring_in(&name, &process_keyring)?;
        Ok(Self {
            thread: ThreadRef::current(),
            signal,
            keyring,
            process_keyring_serial: process_keyring.serial(),
        })
    }

    /// The realtime signal the agent asked for.
    pub(crate) fn signal(&self) -> u32 {
        self.signal
    }

    /// The registering thread, which receives the signals.
    pub(crate) fn thread(&self) -> &ThreadRef {
        &self.thread
    }

    /// Whether the agent can still be told: its thread is alive, with the process keyring it
    /// registered with (not replaced by `execve()`). Does not sleep.
    pub(crate) fn is_alive(&self) -> bool {
        self.thread
            .process_keyring()
            .is_some_and(|keyring| keyring.serial() == self.process_keyring_serial)
    }

    /// Gives the agent the authority over `request` and signals it. Fails with `EOWNERDEAD` if
    /// the agent is found dead, `EAGAIN` if the signal cannot be queued. May sleep.
    pub(crate) fn hand_over(&self, request: &Request<'_>) -> Result {
        self.keyring.link(request.authkey())?;
        // Checked after linking, which may sleep, right before the signal: an agent that
        // exec'd meanwhile is not signalled.
        let sent = if self.is_alive() {
            self.thread.send_rt_signal(
                self.signal,
                SI_CODE,
                request.target().serial(),
                request.requester_pid(),
                request.recorded_fsuid(),
            )
        } else {
            Err(ESRCH)
        };
        sent.map_err(|e| {
            self.withdraw(request.authkey());
            if e == ESRCH {
                crate::sys::errno::EOWNERDEAD()
            } else {
                e
            }
        })
    }

    /// Takes the authority over a construction back from the agent. May sleep.
    pub(crate) fn withdraw(&self, authkey: &Key) {
        // The agent may have unlinked it already.
        let _ = self.keyring.unlink(authkey);
    }
}

impl Drop for SignalAgent {
    fn drop(&mut self) {
        // The agent's keyring goes with it: the garbage collector unlinks it from the process
        // keyring. Agents are dropped in process context only (see `crate::agent`).
        self.keyring.invalidate();
    }
}

/// An agent told through its channel.
pub(crate) struct ChannelAgent {
    channel: Arc<Channel>,
    /// The registering thread, which may not request keys of its own type.
    thread: ThreadRef,
}

impl ChannelAgent {
    /// The calling thread as the agent for a type, reading from `channel`.
    pub(crate) fn register_current(channel: Arc<Channel>) -> Self {
        Self {
            channel,
            thread: ThreadRef::current(),
        }
    }

    /// The registering thread.
    pub(crate) fn thread(&self) -> &ThreadRef {
        &self.thread
    }
}

/// How an agent is told.
pub(crate) enum Delivery {
    Signal(SignalAgent),
    Channel(ChannelAgent),
}

impl Delivery {
    /// Whether the agent can still be told. Does not sleep.
    pub(crate) fn is_alive(&self) -> bool {
        match self {
            Delivery::Signal(agent) => agent.is_alive(),
            Delivery::Channel(agent) => agent.channel.is_open(),
        }
    }

    /// The registering thread.
    pub(crate) fn thread(&self) -> &ThreadRef {
        match self {
            Delivery::Signal(agent) => agent.thread(),
            Delivery::Channel(agent) => agent.thread(),
        }
    }

    /// Whether `request` comes from the agent itself, which would wait for its own answer.
    pub(crate) fn is_requester(&self, request: &Request<'_>) -> bool {
        request.requester_is(self.thread())
    }

    /// Hands `request` over to the agent. May sleep.
    pub(crate) fn hand_over(&self, request: &Request<'_>) -> Result {
        match self {
            Delivery::Signal(agent) => agent.hand_over(request),
            Delivery::Channel(agent) => agent.channel.hand_over(request),
        }
    }

    /// Takes the construction of the key `serial` back if the agent has not read it yet (only a
    /// channel can tell). May sleep.
    pub(crate) fn take_unread(&self, serial: i32) -> Option<Unread> {
        match self {
            Delivery::Signal(_) => None,
            Delivery::Channel(agent) => agent.channel.take_unread(serial),
        }
    }

    /// Gives the agent, a channel, a construction another one had not read. May sleep.
    pub(crate) fn adopt(&self, unread: Unread) -> core::result::Result<(), Unread> {
        match self {
            Delivery::Signal(_) => Err(unread),
            Delivery::Channel(agent) => agent.channel.adopt(unread),
        }
    }

    /// Takes the authority over the construction of the key `serial` back. May sleep.
    pub(crate) fn withdraw(&self, serial: i32, authkey: &Key) {
        match self {
            Delivery::Signal(agent) => agent.withdraw(authkey),
            Delivery::Channel(agent) => agent.channel.withdraw(serial),
        }
    }
}
