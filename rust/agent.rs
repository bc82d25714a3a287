// SPDX-License-Identifier: GPL-2.0
//! Agents and the `keyagent` key type that registers them.
//!
//! `add_key("keyagent", TYPE, SIGNAL, keyring)` makes the calling thread the agent for key type
//! TYPE for every requester whose session keyring reaches the new key. The key's payload is the
//! [`Agent`]; the key cannot be updated (a second `add_key()` with the same description
//! replaces it in that keyring), reads back as the signal number in decimal, and stops routing
//! when revoked, invalidated or unlinked. Constructions already handed to the agent stay with
//! it until they end.

use crate::sys::{
    key_type::{KeyType, SeqFile},
    keys::{self, Key},
    task::ThreadRef,
};
use core::{
    fmt::Write,
    sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
};
use kernel::{
    c_str, fmt,
    prelude::*,
    str::{CStr, CString},
    sync::{Arc, ArcBorrow},
    types::ARef,
};

/// Lowest and highest realtime signal of the kernel (`SIGRTMIN`, `SIGRTMAX`).
const SIGRTMIN: u32 = 32;
const SIGRTMAX: u32 = 64;

/// Longest key type name an agent may serve (`request_key()` takes at most 31 bytes).
const TYPE_NAME_MAX: usize = crate::sys::KEYAGENT_TYPE_NAME_MAX;

/// Numbers the agents' keyrings, whose descriptions must differ (a keyring replaces a link to
/// another keyring of the same description).
static NEXT_KEYRING_ID: AtomicU64 = AtomicU64::new(1);

/// A registered agent: the thread to signal, and the keyring that receives authorisation keys.
///
/// That keyring is the module's own, linked into the agent's process keyring (where
/// `keyctl_assume_authority()` finds its contents) and kept out of the agent's key quota: the
/// garbage collector does not give back the quota of the links it removes, and every
/// authorisation key dies after its construction. The agent holds no reference to its process
/// keyring (which may link the agent's own key); only the one it registered with counts.
pub(crate) struct Agent {
    signal: u32,
    thread: ThreadRef,
    keyring: ARef<Key>,
    process_keyring_serial: i32,
    sent: AtomicU64,
    pending: AtomicUsize,
    death_reported: AtomicBool,
    key_retired: AtomicBool,
}

impl Agent {
    /// The realtime signal the agent asked for.
    pub(crate) fn signal(&self) -> u32 {
        self.signal
    }

    /// The registering thread, which receives the signals.
    pub(crate) fn thread(&self) -> &ThreadRef {
        &self.thread
    }

    /// The keyring into which the agent's authorisation keys are linked.
    pub(crate) fn keyring(&self) -> &Key {
        &self.keyring
    }

    /// Whether the agent can still be served: its thread is alive, with the process keyring it
    /// registered with (not replaced by `execve()`). Does not sleep.
    pub(crate) fn is_alive(&self) -> bool {
        self.thread
            .process_keyring()
            .is_some_and(|keyring| keyring.serial() == self.process_keyring_serial)
    }

    /// Records a signal sent.
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

/// Parses the signal payload: a native 4-byte int, or 1 to 2 decimal digits with an optional
/// trailing newline (`keyctl add keyagent user 40 @s`, `echo 40 | keyctl padd ...`).
fn parse_signal(data: &[u8]) -> Result<u32> {
    let signal = match data {
        [a, b, c, d] => {
            let value = i32::from_ne_bytes([*a, *b, *c, *d]);
            u32::try_from(value).map_err(|_| EINVAL)?
        }
        _ => {
            let digits = data.strip_suffix(b"\n").unwrap_or(data);
            if digits.is_empty() || digits.len() > 2 || !digits.iter().all(u8::is_ascii_digit) {
                return Err(EINVAL);
            }
            digits.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0'))
        }
    };
    if !(SIGRTMIN..=SIGRTMAX).contains(&signal) {
        return Err(EINVAL);
    }
    Ok(signal)
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

/// The `keyagent` key type.
pub(crate) struct AgentKeyType;

#[vtable]
impl KeyType for AgentKeyType {
    type Payload = Arc<Agent>;
    const NAME: &'static CStr = c_str!("keyagent");

    fn vet_description(description: &CStr) -> Result {
        check_type_name(description)
    }

    fn preparse(description: &CStr, data: &[u8]) -> Result<Arc<Agent>> {
        let signal = parse_signal(data)?;
        // Keyrings are created here, before the keys core takes the construction lock that
        // creating a keyring needs too.
        let process_keyring = keys::current_process_keyring()?;
        let name = CString::try_from_fmt(fmt!(
            "_keyagent:{}:{}",
            description.to_str().unwrap_or("?"),
            NEXT_KEYRING_ID.fetch_add(1, Ordering::Relaxed)
        ))?;
        let keyring = keys::new_keyring_in(&name, &process_keyring)?;
        Ok(Arc::new(
            Agent {
                signal,
                thread: ThreadRef::current(),
                keyring,
                process_keyring_serial: process_keyring.serial(),
                sent: AtomicU64::new(0),
                pending: AtomicUsize::new(0),
                death_reported: AtomicBool::new(false),
                key_retired: AtomicBool::new(false),
            },
            GFP_KERNEL,
        )?)
    }

    fn describe(_key: &Key, agent: Option<ArcBorrow<'_, Agent>>, out: &mut SeqFile) {
        let Some(agent) = agent else { return };
        let _ = write!(
            out,
            ": pid {} sig {} {} sent {} pending {}",
            agent.thread.pid().nr_seen_by_current(),
            agent.signal,
            if agent.is_alive() { "alive" } else { "dead" },
            agent.sent.load(Ordering::Relaxed),
            agent.pending(),
        );
    }

    fn read(agent: ArcBorrow<'_, Agent>, buf: &mut [u8]) -> Result<usize> {
        // A realtime signal number always has two digits.
        // CAST: Each digit is below 10.
        let digits = [
            b'0' + (agent.signal / 10) as u8,
            b'0' + (agent.signal % 10) as u8,
        ];
        let n = digits.len().min(buf.len());
        buf[..n].copy_from_slice(&digits[..n]);
        Ok(digits.len())
    }
}
