//! Signal reception: every signal the daemon handles is blocked and read
//! from one signalfd, so the event loop never runs in a signal handler.

use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// The signals that stop the daemon (or, with a command, are passed on to it).
pub const STOP_SIGNALS: [Signal; 2] = [Signal::SIGTERM, Signal::SIGINT];

/// The signal that reloads the configuration.
pub const RELOAD_SIGNAL: Signal = Signal::SIGHUP;

/// The realtime signals this libc leaves to applications.
pub fn usable_realtime_signals() -> std::ops::RangeInclusive<i32> {
    libc::SIGRTMIN()..=libc::SIGRTMAX()
}

/// Blocks the stop and reload signals, SIGCHLD and the realtime signal `agent_signal` in
/// the calling thread, and returns a (blocking) signalfd reading them.
///
/// Children started with `std::process::Command` get an empty signal mask
/// again, and the descriptor is close-on-exec.
pub fn block_and_open(agent_signal: i32) -> Result<SignalFd, Errno> {
    if !usable_realtime_signals().contains(&agent_signal) {
        return Err(Errno::EINVAL);
    }
    let mut set = SigSet::empty();
    for signal in STOP_SIGNALS {
        set.add(signal);
    }
    set.add(RELOAD_SIGNAL);
    set.add(Signal::SIGCHLD);
    // nix's SigSet only names the standard signals; add the realtime one
    // through libc.
    let mut raw = *set.as_ref();
    // SAFETY: raw is an initialised sigset_t and agent_signal a valid signal
    // number (checked above).
    if unsafe { libc::sigaddset(&mut raw, agent_signal) } != 0 {
        return Err(Errno::last());
    }
    // SAFETY: raw was initialised by SigSet::empty() and sigaddset().
    let set = unsafe { SigSet::from_sigset_t_unchecked(raw) };
    set.thread_block()?;
    SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC)
}
