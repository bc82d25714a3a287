// SPDX-License-Identifier: GPL-2.0
//! The channel: `/dev/keyagent`, an agent without signals (`include/keyagent.h`).
//!
//! Each open file is a [`Channel`]: a queue of the constructions handed to it. `read()` takes
//! whole request records off the queue, oldest first; `write()` answers the constructions read,
//! with the authority the module holds. The channel is the agent: when its last file reference
//! is closed it is dead, and the reaper fails its constructions at once.

use crate::{
    broker,
    sys::{
        abi::{Abi, AnswerHeader, RequestHeader},
        chardev::{poll_readable, poll_writable, DeviceFile, PollTable},
        errno,
        keys::{Key, Kgid, Kuid},
        request::Request,
        task::ThreadRef,
        wait::WaitQueue,
    },
};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use kernel::{
    alloc::KVVec,
    error::Error,
    new_mutex,
    prelude::*,
    rbtree::{RBTree, RBTreeNodeReservation},
    sync::{Arc, ArcBorrow, Mutex},
    types::ARef,
    uaccess::{UserSliceReader, UserSliceWriter},
};

/// A construction handed to a channel and not yet answered.
struct Entry {
    /// The order in which it was queued, while it has not been read.
    unread: Option<u64>,
    target: ARef<Key>,
    authkey: ARef<Key>,
    requester: ThreadRef,
    fsuid: Kuid,
    fsgid: Kgid,
    flags: u16,
    type_len: u16,
    description_len: u16,
    /// Type, description and callout, each followed by a NUL.
    strings: KVec<u8>,
}

impl Entry {
    fn record_len(&self) -> usize {
        Abi::align(Abi::REQUEST_HEADER + self.strings.len())
    }

    /// Writes the record, with the requester as the reader sees it. May sleep.
    fn write_record(&self, out: &mut UserSliceWriter) -> Result {
        let len = self.record_len();
        let header = RequestHeader {
            // CAST: At most `Abi::REQUEST_MAX`, checked when queued.
            size: len as u32,
            version: Abi::VERSION,
            flags: self.flags,
            serial: self.target.serial(),
            pid: self.requester.pid().nr_seen_by_current(),
            uid: self.fsuid.seen_by_current(),
            gid: self.fsgid.seen_by_current(),
            type_len: self.type_len,
            description_len: self.description_len,
            // CAST: Bounded as `size`.
            callout_len: (self.strings.len()
                - usize::from(self.type_len)
                - usize::from(self.description_len)
                - 3) as u32,
        };
        out.write(&header)?;
        out.write_slice(&self.strings)?;
        let pad = len - Abi::REQUEST_HEADER - self.strings.len();
        out.write_slice(&[0u8; Abi::ALIGN][..pad])
    }
}

/// The queue of one channel.
struct Queue {
    entries: RBTree<i32, Entry>,
    next_seq: u64,
}

/// An agent's channel: the object behind each open `/dev/keyagent`.
#[pin_data]
pub(crate) struct Channel {
    #[pin]
    queue: Mutex<Queue>,
    /// Records waiting to be read, for waiters that may not take the lock.
    unread: AtomicUsize,
    closed: AtomicBool,
    #[pin]
    readers: WaitQueue,
}

impl Channel {
    /// Whether the channel can still be handed constructions: a file of it is open.
    pub(crate) fn is_open(&self) -> bool {
        !self.closed.load(Ordering::Acquire)
    }

    /// Queues `request` for reading. Fails with `EMSGSIZE` if its record would exceed
    /// `KEYAGENT_REQUEST_MAX` (never for `request_key(2)`, whose description and callout are
    /// shorter than a page), `EOWNERDEAD` if the channel is closed. May sleep.
    pub(crate) fn hand_over(&self, request: &Request<'_>) -> Result {
        let target = request.target();
        let type_name = request.type_name().as_bytes();
        let description = target.description().as_bytes();
        let callout = request.callout();
        let strings_len = type_name.len() + description.len() + callout.len() + 3;
        if Abi::align(Abi::REQUEST_HEADER + strings_len) > Abi::REQUEST_MAX {
            return Err(errno::EMSGSIZE());
        }
        let mut strings = KVec::with_capacity(strings_len, GFP_KERNEL)?;
        for part in [type_name, description, callout] {
            strings.extend_from_slice(part, GFP_KERNEL)?;
            strings.push(0, GFP_KERNEL)?;
        }
        let mut entry = Entry {
            unread: None,
            target: target.into(),
            authkey: request.authkey().into(),
            requester: request.requester_pid().to_owned(),
            fsuid: request.recorded_fsuid(),
            fsgid: request.recorded_fsgid(),
            flags: if request.is_kernel_originated() {
                Abi::REQUEST_KERNEL
            } else {
                0
            },
            // CAST: A type name is at most 31 bytes, a description less than a page.
            type_len: type_name.len() as u16,
            description_len: description.len() as u16,
            strings,
        };
        let reservation = RBTreeNodeReservation::new(GFP_KERNEL)?;
        let mut queue = self.queue.lock();
        if !self.is_open() {
            return Err(errno::EOWNERDEAD());
        }
        entry.unread = Some(queue.next_seq);
        queue.next_seq += 1;
        // A key is constructed once at a time: nothing was queued for it.
        let replaced = queue
            .entries
            .insert(reservation.into_node(target.serial(), entry));
        self.unread.fetch_add(1, Ordering::Release);
        drop(queue);
        drop(replaced);
        self.readers.wake_readers();
        Ok(())
    }

    /// Forgets the construction of the key `serial`, which has ended. May sleep.
    pub(crate) fn withdraw(&self, serial: i32) {
        let mut queue = self.queue.lock();
        let entry = queue.entries.remove(&serial);
        if entry.as_ref().is_some_and(|entry| entry.unread.is_some()) {
            self.unread.fetch_sub(1, Ordering::Release);
        }
        drop(queue);
        drop(entry);
    }

    /// Moves as many records as fit in `out` to the reader. May sleep.
    fn read_records(&self, out: &mut UserSliceWriter) -> Result<usize> {
        let mut queue = self.queue.lock();
        let mut written = 0;
        loop {
            let oldest = queue
                .entries
                .iter()
                .filter_map(|(serial, entry)| entry.unread.map(|seq| (seq, *serial)))
                .min();
            let Some((_, serial)) = oldest else { break };
            let Some(entry) = queue.entries.get_mut(&serial) else {
                break;
            };
            if entry.record_len() > out.len() {
                if written == 0 {
                    return Err(EINVAL);
                }
                break;
            }
            if let Err(e) = entry.write_record(out) {
                // The record stays unread.
                return if written == 0 { Err(e) } else { Ok(written) };
            }
            written += entry.record_len();
            entry.unread = None;
            self.unread.fetch_sub(1, Ordering::Release);
        }
        Ok(written)
    }

    /// The target and authorisation key of a construction this channel read.
    fn answerable(&self, serial: i32) -> Option<(ARef<Key>, ARef<Key>)> {
        let queue = self.queue.lock();
        let entry = queue.entries.get(&serial)?;
        if entry.unread.is_some() {
            return None;
        }
        Some((entry.target.clone(), entry.authkey.clone()))
    }

    /// Applies one validated answer whose payload `input` holds. May sleep.
    fn apply(&self, answer: &AnswerHeader, input: &mut UserSliceReader) -> Result {
        let (target, authkey) = self.answerable(answer.serial).ok_or(ENOENT)?;
        match answer.op {
            Abi::OP_INSTANTIATE => {
                let mut payload = KVVec::new();
                // CAST: At most `Abi::PAYLOAD_MAX`, checked.
                let len = answer.payload_len as usize;
                payload.reserve(len, GFP_KERNEL)?;
                payload.extend_with(len, 0, GFP_KERNEL)?;
                input.read_slice(&mut payload)?;
                target.instantiate(&payload, &authkey)?;
                if answer.timeout != 0 {
                    target.set_timeout(answer.timeout);
                }
            }
            op => {
                let error = if op == Abi::OP_NEGATE {
                    errno::ENOKEY()
                } else {
                    // CAST: Checked to be a valid errno.
                    Error::from_errno(-(answer.error as i32))
                };
                target.reject(answer.timeout, error, &authkey)?;
            }
        }
        self.withdraw(answer.serial);
        Ok(())
    }
}

/// Checks a whole write: every record well formed and for a construction this channel read,
/// no serial twice. Returns the headers. May sleep.
fn validate(channel: &Channel, mut input: UserSliceReader) -> Result<KVec<AnswerHeader>> {
    let total = input.len();
    if !(Abi::ANSWER_HEADER..=Abi::WRITE_MAX).contains(&total) {
        return Err(EINVAL);
    }
    let mut headers = KVec::<AnswerHeader>::new();
    while !input.is_empty() {
        if input.len() < Abi::ANSWER_HEADER {
            return Err(EINVAL);
        }
        let header: AnswerHeader = input.read()?;
        let size = header.size as usize;
        let payload = header.payload_len as usize;
        let well_formed = header.version == Abi::VERSION
            && size % Abi::ALIGN == 0
            && size <= Abi::ANSWER_HEADER + input.len()
            && payload <= Abi::PAYLOAD_MAX
            && size == Abi::align(Abi::ANSWER_HEADER + payload)
            && match header.op {
                Abi::OP_INSTANTIATE | Abi::OP_NEGATE => header.error == 0,
                Abi::OP_REJECT => (1..4096).contains(&header.error) && payload == 0,
                _ => false,
            }
            && (header.op == Abi::OP_INSTANTIATE || payload == 0);
        if !well_formed || headers.iter().any(|h| h.serial == header.serial) {
            return Err(EINVAL);
        }
        input.skip(payload)?;
        let mut pad = [0u8; Abi::ALIGN];
        let pad = &mut pad[..size - Abi::ANSWER_HEADER - payload];
        input.read_slice(pad)?;
        if pad.iter().any(|&b| b != 0) {
            return Err(EINVAL);
        }
        headers.push(header, GFP_KERNEL)?;
    }
    if headers
        .iter()
        .any(|h| channel.answerable(h.serial).is_none())
    {
        return Err(ENOENT);
    }
    Ok(headers)
}

impl DeviceFile for Channel {
    fn open() -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Self {
                queue <- new_mutex!(Queue {
                    entries: RBTree::new(),
                    next_seq: 0,
                }),
                unread: AtomicUsize::new(0),
                closed: AtomicBool::new(false),
                readers <- WaitQueue::new(),
            }),
            GFP_KERNEL,
        )
    }

    fn release(this: Arc<Self>) {
        this.closed.store(true, Ordering::Release);
        // The agent keys may keep the channel; its constructions are failed by the reaper,
        // which finds it dead.
        broker::agent_died();
    }

    fn read(this: ArcBorrow<'_, Self>, mut out: UserSliceWriter, nonblock: bool) -> Result<usize> {
        loop {
            let written = this.read_records(&mut out)?;
            if written > 0 {
                return Ok(written);
            }
            if nonblock {
                return Err(EAGAIN);
            }
            this.readers
                .wait_until(|| this.unread.load(Ordering::Acquire) > 0)?;
        }
    }

    fn write(this: ArcBorrow<'_, Self>, input: UserSliceReader) -> Result<usize> {
        let headers = validate(&this, input.clone_reader())?;
        let mut input = input;
        let mut applied = 0;
        for header in headers.iter() {
            input.skip(Abi::ANSWER_HEADER)?;
            if let Err(e) = this.apply(header, &mut input) {
                return if applied == 0 { Err(e) } else { Ok(applied) };
            }
            let pad = header.size as usize - Abi::ANSWER_HEADER - header.payload_len as usize;
            input.skip(pad)?;
            applied += header.size as usize;
        }
        Ok(applied)
    }

    fn poll(this: ArcBorrow<'_, Self>, table: &PollTable<'_>) -> u32 {
        this.readers.register_poll(table);
        let mut mask = poll_writable();
        if this.unread.load(Ordering::Acquire) > 0 {
            mask |= poll_readable();
        }
        mask
    }
}

crate::sys::chardev::declare_device_files!(crate::channel::Channel);
