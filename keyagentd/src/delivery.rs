//! How constructions reach the daemon: the keyagent module's realtime
//! signal, read with the daemon's other signals from one signalfd, or the
//! module's channel (channel.rs). Handler running (runner.rs, daemon.rs)
//! sees the same requests either way; only how they are read and answered
//! differs.

use crate::keys::Serial;
use crate::signals::{self, RELOAD_SIGNAL, STOP_SIGNALS};
use log::debug;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;
use std::os::fd::{AsFd, BorrowedFd};

/// How the daemon asks to receive constructions (`--delivery`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Choice {
    /// /dev/keyagent for the types whose lines the daemon answers itself
    /// (builtins, piped handlers), signals for the others, and for all if
    /// the module offers no channel
    Channel,
    /// signals for every type
    Signal,
}

/// How the constructions of one type reach the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The realtime signal; the daemon assumes each construction's authority.
    Signal,
    /// Records on the channel; the module keeps the authority.
    Channel,
}

impl std::fmt::Display for Via {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Via::Signal => "signal",
            Via::Channel => "channel",
        })
    }
}

/// `si_code` of the signals the keyagent module sends (include/keyagent.h).
pub const KEYAGENT_SI_CODE: i32 = -0x4b41;

/// A construction handed to the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notice {
    /// The key under construction.
    pub serial: Serial,
    /// The requesting thread in the daemon's pid namespace (0: not visible).
    pub pid: u32,
    /// The requester's fsuid in the daemon's user namespace.
    pub uid: u32,
}

/// What woke the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Construction(Notice),
    /// SIGCHLD: reap.
    ChildExited,
    /// SIGTERM or SIGINT.
    Stop(Signal),
    /// SIGHUP: reload the configuration.
    Reload,
    /// Nothing to do (a signal not from the module, an interrupted read).
    Nothing,
}

/// Constructions and control signals from one signalfd.
pub struct SignalDelivery {
    fd: SignalFd,
    signal: i32,
}

impl SignalDelivery {
    /// Blocks the signals the daemon handles and opens the signalfd.
    pub fn open(signal: i32) -> Result<SignalDelivery, Errno> {
        Ok(SignalDelivery {
            fd: signals::block_and_open(signal)?,
            signal,
        })
    }

    /// The descriptor to poll for readability.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Whether an event is waiting, so that `next` does not block.
    pub fn ready(&self) -> bool {
        let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
        matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
    }

    /// Reads one event, blocking until there is one.
    pub fn next(&self) -> Result<Event, Errno> {
        let info = match self.fd.read_signal() {
            Err(Errno::EINTR) | Ok(None) => return Ok(Event::Nothing),
            Err(err) => return Err(err),
            Ok(Some(info)) => info,
        };
        let signo = info.ssi_signo as i32;
        if signo == self.signal {
            if info.ssi_code == KEYAGENT_SI_CODE {
                return Ok(Event::Construction(Notice {
                    serial: info.ssi_int,
                    pid: info.ssi_pid,
                    uid: info.ssi_uid,
                }));
            }
            debug!(
                "ignoring signal {signo} from pid {} (not sent by the keyagent module)",
                info.ssi_pid
            );
            return Ok(Event::Nothing);
        }
        Ok(match Signal::try_from(signo) {
            Ok(Signal::SIGCHLD) => Event::ChildExited,
            Ok(signal) if signal == RELOAD_SIGNAL => Event::Reload,
            Ok(signal) if STOP_SIGNALS.contains(&signal) => Event::Stop(signal),
            _ => Event::Nothing,
        })
    }
}
