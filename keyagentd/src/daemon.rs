//! The agent: registration, the event loop, handlers and shutdown.

use crate::config::{Action, Config};
use crate::keys::{self, Authority, Serial};
use crate::signals::{self, STOP_SIGNALS};
use crate::spawn::{self, Spawner};
use crate::template::Request;
use log::{debug, error, info, warn};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, killpg, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStringExt;
use std::time::{Duration, Instant};

/// `si_code` of the signals the keyagent module sends (include/keyagent.h).
pub const KEYAGENT_SI_CODE: i32 = -0x4b41;

/// Error for a construction whose handler exited 0 without answering, or
/// that no configuration line matches (what /sbin/request-key leaves too).
pub const ERROR_NO_ANSWER: Errno = Errno::ENOKEY;
/// Error for a handler that failed: non-zero exit, killed by a signal, or not
/// startable.
pub const ERROR_HANDLER_FAILED: Errno = Errno::EKEYREJECTED;
/// Error for a handler that exceeded `--handler-timeout`.
pub const ERROR_HANDLER_TIMEOUT: Errno = Errno::ETIMEDOUT;
/// Error for constructions pending when the daemon stops.
pub const ERROR_STOPPING: Errno = Errno::ECANCELED;

/// Where the module tells its answer timeout.
const MODULE_REQUEST_TIMEOUT: &str = "/sys/module/keyagent/parameters/request_timeout";

/// How long shutdown waits for killed handlers to be reaped.
const REAP_GRACE: Duration = Duration::from_secs(2);

/// What the daemon is asked to do.
pub struct Settings {
    pub types: Vec<String>,
    pub signal: i32,
    /// Also serve the kernel's own constructions in this network namespace.
    pub net_scope: bool,
    pub config: Config,
    pub handler_timeout: Duration,
    pub negative_timeout: u32,
    /// With a command: run it in a new session keyring, exit when it exits.
    pub command: Vec<OsString>,
}

/// A handler process and the construction it answers.
struct Handler {
    request: Request,
    label: String,
    received: Instant,
    deadline: Instant,
    /// The construction has been dealt with (timeout or shutdown); only the
    /// process remains to be reaped.
    settled: bool,
}

/// How a handler process ended.
enum HandlerEnd {
    Exited(i32),
    Signaled(Signal),
    TimedOut(Duration),
}

impl fmt::Display for HandlerEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandlerEnd::Exited(code) => write!(f, "exited {code}"),
            HandlerEnd::Signaled(signal) => write!(f, "killed by {signal}"),
            HandlerEnd::TimedOut(limit) => write!(f, "exceeded {}s, killed", limit.as_secs()),
        }
    }
}

struct Daemon {
    settings: Settings,
    signalfd: SignalFd,
    spawner: Spawner,
    agent_keys: Vec<(String, Serial)>,
    handlers: HashMap<Pid, Handler>,
    command: Option<Pid>,
    command_status: Option<i32>,
    stop_requested: bool,
}

/// Runs the daemon until it is stopped (0) or its command exits (the
/// command's status). Errors are start-up or fatal failures, already worded.
pub fn run(settings: Settings) -> Result<i32, String> {
    let signalfd = signals::block_and_open(settings.signal).map_err(|err| {
        format!(
            "cannot set up signal {} for reception: {err}",
            settings.signal
        )
    })?;
    let spawner = Spawner::new().map_err(|err| format!("cannot open /dev/null: {err}"))?;
    if !settings.command.is_empty() {
        let session = keys::join_new_session_keyring()
            .map_err(|err| format!("cannot join a new session keyring: {err}"))?;
        debug!("joined new session keyring {session}");
    }
    let mut daemon = Daemon {
        settings,
        signalfd,
        spawner,
        agent_keys: Vec::new(),
        handlers: HashMap::new(),
        command: None,
        command_status: None,
        stop_requested: false,
    };
    if let Err(err) = daemon.register() {
        daemon.shutdown();
        return Err(err);
    }
    warn_if_module_times_out_first(daemon.settings.handler_timeout);
    if daemon.settings.command.is_empty() {
        daemon.announce();
    } else if let Err(status) = daemon.start_command() {
        daemon.shutdown();
        return Ok(status);
    }
    daemon.serve()
}

/// Warns if the module would fail constructions before a handler's time is up.
fn warn_if_module_times_out_first(handler_timeout: Duration) {
    let Ok(text) = std::fs::read_to_string(MODULE_REQUEST_TIMEOUT) else {
        return;
    };
    if let Ok(module_timeout) = text.trim().parse::<u64>() {
        if handler_timeout.as_secs() >= module_timeout {
            warn!(
                "--handler-timeout {}s is not below the module's request_timeout {module_timeout}s: \
                 slow handlers' constructions fail with ETIMEDOUT from the kernel",
                handler_timeout.as_secs()
            );
        }
    }
}

impl Daemon {
    /// Registers as the agent for every type.
    fn register(&mut self) -> Result<(), String> {
        for key_type in self.settings.types.clone() {
            match keys::register_agent(&key_type, self.settings.signal, self.settings.net_scope) {
                Ok(serial) => self.agent_keys.push((key_type, serial)),
                Err(err) => {
                    return Err(format!(
                        "cannot register as the agent for key type \"{key_type}\" (signal {}): {}",
                        self.settings.signal,
                        keys::explain_registration_error(err, self.settings.net_scope)
                    ));
                }
            }
        }
        let summary: Vec<String> = self
            .agent_keys
            .iter()
            .map(|(key_type, serial)| format!("{key_type} (agent key {serial})"))
            .collect();
        info!(
            "serving {}{} with signal {}; {} handler line(s)",
            summary.join(", "),
            if self.settings.net_scope {
                " and the kernel's requests in this network namespace"
            } else {
                ""
            },
            self.settings.signal,
            self.settings.config.rules().len()
        );
        Ok(())
    }

    /// Prints `TYPE SERIAL` for each agent key on stdout.
    fn announce(&self) {
        let mut stdout = std::io::stdout().lock();
        for (key_type, serial) in &self.agent_keys {
            let _ = writeln!(stdout, "{key_type} {serial}");
        }
        if let Err(err) = stdout.flush() {
            warn!("cannot write the agent keys to stdout: {err}");
        }
    }

    /// Starts the command; on failure returns the exit status to use.
    fn start_command(&mut self) -> Result<(), i32> {
        let argv = &self.settings.command;
        let env = [("KEYAGENTD_PID", std::process::id().to_string())];
        match spawn::command(argv, &env) {
            Ok(pid) => {
                info!("started {:?} (pid {pid})", argv[0]);
                self.command = Some(pid);
                Ok(())
            }
            Err(err) => {
                error!("cannot start {:?}: {}", argv[0], err.desc());
                Err(if err == Errno::ENOENT { 127 } else { 126 })
            }
        }
    }

    fn serve(&mut self) -> Result<i32, String> {
        loop {
            if let Some(status) = self.command_status {
                self.shutdown();
                return Ok(status);
            }
            if self.stop_requested {
                self.shutdown();
                return Ok(0);
            }
            // With no handler running, nothing is due but signals: block in
            // read() itself, one system call per signal instead of two.
            let readable = match self.next_deadline() {
                None => true,
                Some(deadline) => {
                    let wait = deadline.saturating_duration_since(Instant::now());
                    // Round up, so the deadline has passed when poll returns.
                    let timeout = PollTimeout::try_from(wait.as_nanos().div_ceil(1_000_000))
                        .unwrap_or(PollTimeout::MAX);
                    let mut fds = [PollFd::new(self.signalfd.as_fd(), PollFlags::POLLIN)];
                    match poll(&mut fds, timeout) {
                        Ok(n) => n > 0,
                        Err(Errno::EINTR) => false,
                        Err(err) => {
                            self.shutdown();
                            return Err(format!("poll: {err}"));
                        }
                    }
                }
            };
            if readable {
                if let Err(err) = self.read_signal() {
                    self.shutdown();
                    return Err(format!("reading signals: {err}"));
                }
            }
            self.expire_handlers();
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.handlers
            .values()
            .filter(|h| !h.settled)
            .map(|h| h.deadline)
            .min()
    }

    /// Waits for one signal and handles it; returns early (EINTR) without.
    fn read_signal(&mut self) -> Result<(), Errno> {
        let info = match self.signalfd.read_signal() {
            Err(Errno::EINTR) => None,
            result => result?,
        };
        if let Some(info) = info {
            let signo = info.ssi_signo as i32;
            if signo == self.settings.signal {
                if info.ssi_code == KEYAGENT_SI_CODE {
                    self.on_request(info.ssi_int, info.ssi_pid, info.ssi_uid);
                } else {
                    debug!(
                        "ignoring signal {signo} from pid {} (not sent by the keyagent module)",
                        info.ssi_pid
                    );
                }
            } else if signo == Signal::SIGCHLD as i32 {
                self.reap();
            } else if let Ok(signal) = Signal::try_from(signo) {
                if STOP_SIGNALS.contains(&signal) {
                    self.on_stop_signal(signal);
                }
            }
        }
        Ok(())
    }

    fn on_stop_signal(&mut self, signal: Signal) {
        match self.command {
            Some(pid) if self.command_status.is_none() => {
                info!("{signal}: passing it on to the command (pid {pid})");
                let _ = kill(pid, signal);
            }
            _ => {
                info!("{signal}: stopping");
                self.stop_requested = true;
            }
        }
    }

    /// Rejects the construction unless it has already ended; says what happened.
    fn reject(&self, authority: &Authority, error: Errno) -> String {
        match authority.reject(self.settings.negative_timeout, error) {
            Ok(()) => format!("rejected with {error:?}"),
            Err(err) => format!("could not reject with {error:?}: {err:?}"),
        }
    }

    /// Handles one construction the module handed to this daemon.
    fn on_request(&mut self, serial: Serial, pid: u32, uid: u32) {
        let received = Instant::now();
        let authority = match Authority::assume(serial) {
            Ok(authority) => authority,
            Err(err) => {
                warn!(
                    "key {serial} from pid {pid} uid {uid}: construction ended before it could be \
                     handled ({err:?})"
                );
                return;
            }
        };
        let request = match gather_request(&authority, serial, pid, uid) {
            Ok(request) => request,
            Err(err) => {
                let outcome = self.reject(&authority, ERROR_HANDLER_FAILED);
                error!("key {serial} from pid {pid} uid {uid}: cannot read the request ({err}); {outcome}");
                return;
            }
        };
        debug!(
            "key {serial}: callout {:?}",
            String::from_utf8_lossy(&request.callout)
        );
        let Some(rule) =
            self.settings
                .config
                .find(&request.key_type, &request.description, &request.callout)
        else {
            let outcome = format!(
                "no matching handler; {}",
                self.reject(&authority, ERROR_NO_ANSWER)
            );
            log_request(log::Level::Warn, &request, "-", &outcome, received);
            return;
        };
        let label = rule.label();
        match rule.action.clone() {
            Action::Instantiate(text) => {
                let outcome = match authority.instantiate(&text.expand(&request)) {
                    Ok(()) => "instantiated".to_string(),
                    Err(err) => format!(
                        "instantiate failed ({err:?}); {}",
                        self.reject(&authority, ERROR_HANDLER_FAILED)
                    ),
                };
                log_request(log::Level::Info, &request, &label, &outcome, received);
            }
            Action::Negate(timeout) => {
                let timeout = timeout.unwrap_or(self.settings.negative_timeout);
                let outcome = match authority.reject(timeout, ERROR_NO_ANSWER) {
                    Ok(()) => format!("negated for {timeout}s"),
                    Err(err) => format!("negate failed ({err:?})"),
                };
                log_request(log::Level::Info, &request, &label, &outcome, received);
            }
            Action::Run { program, args } => {
                let argv: Vec<OsString> = std::iter::once(&program)
                    .chain(&args)
                    .map(|t| OsString::from_vec(t.expand(&request)))
                    .collect();
                // The child inherits the authority assumed above.
                match self.spawner.handler(&argv) {
                    Ok(pid) => {
                        debug!("key {serial}: handler pid {pid}: {argv:?}");
                        self.handlers.insert(
                            pid,
                            Handler {
                                request,
                                label,
                                received,
                                deadline: received + self.settings.handler_timeout,
                                settled: false,
                            },
                        );
                    }
                    Err(err) => {
                        let outcome = format!(
                            "cannot start {:?}: {}; {}",
                            argv[0],
                            err.desc(),
                            self.reject(&authority, ERROR_HANDLER_FAILED)
                        );
                        log_request(log::Level::Warn, &request, &label, &outcome, received);
                    }
                }
            }
        }
    }

    /// Reaps every exited child.
    fn reap(&mut self) {
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => self.on_exit(pid, HandlerEnd::Exited(code)),
                Ok(WaitStatus::Signaled(pid, signal, _)) => {
                    self.on_exit(pid, HandlerEnd::Signaled(signal))
                }
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => break,
                Ok(_) | Err(Errno::EINTR) => continue,
                Err(err) => {
                    error!("waitpid: {err}");
                    break;
                }
            }
        }
    }

    fn on_exit(&mut self, pid: Pid, end: HandlerEnd) {
        if self.command == Some(pid) {
            let status = match end {
                HandlerEnd::Exited(code) => code,
                HandlerEnd::Signaled(signal) => 128 + signal as i32,
                HandlerEnd::TimedOut(_) => unreachable!("the command has no time limit"),
            };
            info!("command (pid {pid}) {end}");
            self.command_status = Some(status);
            return;
        }
        let Some(handler) = self.handlers.remove(&pid) else {
            debug!("reaped pid {pid} ({end})");
            return;
        };
        if handler.settled {
            debug!("key {}: handler pid {pid} {end}", handler.request.serial);
            return;
        }
        self.settle(&handler, &end);
    }

    /// Checks whether the handler answered; rejects the key if it did not.
    fn settle(&self, handler: &Handler, end: &HandlerEnd) {
        let (level, outcome) = match Authority::assume(handler.request.serial) {
            Err(_) => (log::Level::Info, format!("answered (handler {end})")),
            Ok(authority) => {
                let error = match end {
                    HandlerEnd::Exited(0) => ERROR_NO_ANSWER,
                    HandlerEnd::TimedOut(_) => ERROR_HANDLER_TIMEOUT,
                    _ => ERROR_HANDLER_FAILED,
                };
                let outcome = format!(
                    "not answered (handler {end}); {}",
                    self.reject(&authority, error)
                );
                (log::Level::Warn, outcome)
            }
        };
        log_request(
            level,
            &handler.request,
            &handler.label,
            &outcome,
            handler.received,
        );
    }

    /// Kills handlers past their deadline and rejects their keys.
    fn expire_handlers(&mut self) {
        let now = Instant::now();
        let expired: Vec<Pid> = self
            .handlers
            .iter()
            .filter(|(_, h)| !h.settled && h.deadline <= now)
            .map(|(pid, _)| *pid)
            .collect();
        for pid in expired {
            kill_handler(pid);
            let end = HandlerEnd::TimedOut(self.settings.handler_timeout);
            self.settle(&self.handlers[&pid], &end);
            if let Some(handler) = self.handlers.get_mut(&pid) {
                handler.settled = true;
            }
        }
    }

    fn retire_agent_keys(&mut self) {
        for (key_type, serial) in self.agent_keys.drain(..) {
            match keys::retire_agent_key(serial) {
                Ok(()) => debug!("invalidated agent key {serial} ({key_type})"),
                Err(err) => warn!("cannot invalidate agent key {serial} ({key_type}): {err}"),
            }
        }
    }

    /// Leaves nothing under construction: no new constructions, handlers
    /// killed, everything pending rejected with ECANCELED.
    fn shutdown(&mut self) {
        self.retire_agent_keys();

        let pids: Vec<Pid> = self.handlers.keys().copied().collect();
        for pid in pids {
            kill_handler(pid);
            let handler = self.handlers.get_mut(&pid).expect("listed above");
            if handler.settled {
                continue;
            }
            handler.settled = true;
            let handler = &self.handlers[&pid];
            let outcome = match Authority::assume(handler.request.serial) {
                Err(_) => "answered".to_string(),
                Ok(authority) => format!(
                    "daemon stopping, handler killed; {}",
                    self.reject(&authority, ERROR_STOPPING)
                ),
            };
            log_request(
                log::Level::Warn,
                &handler.request,
                &handler.label,
                &outcome,
                handler.received,
            );
        }

        // Requests signalled but not read yet.
        while self.signal_queued() {
            let Ok(Some(info)) = self.signalfd.read_signal() else {
                break;
            };
            if info.ssi_signo as i32 == self.settings.signal && info.ssi_code == KEYAGENT_SI_CODE {
                self.cancel(info.ssi_int);
            }
        }
        // Anything else this process still holds an authorisation key for.
        for serial in keys::constructions_in_process_keyring() {
            self.cancel(serial);
        }

        let give_up = Instant::now() + REAP_GRACE;
        loop {
            self.reap();
            if self.handlers.is_empty() || Instant::now() >= give_up {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        for pid in self.handlers.keys() {
            warn!("handler pid {pid} did not exit after SIGKILL");
        }
    }

    /// Whether a signal is queued, so that reading the signalfd does not block.
    fn signal_queued(&self) -> bool {
        let mut fds = [PollFd::new(self.signalfd.as_fd(), PollFlags::POLLIN)];
        matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
    }

    /// Rejects a pending construction with ECANCELED, if it is still pending.
    fn cancel(&self, serial: Serial) {
        if let Ok(authority) = Authority::assume(serial) {
            warn!(
                "key {serial}: daemon stopping; {}",
                self.reject(&authority, ERROR_STOPPING)
            );
        }
    }
}

/// Reads what the handlers need to know about a construction.
fn gather_request(
    authority: &Authority,
    serial: Serial,
    pid: u32,
    uid: u32,
) -> Result<Request, String> {
    let callout = authority
        .callout()
        .map_err(|err| format!("reading the callout information: {err}"))?;
    let key = keys::describe(serial).map_err(|err| format!("describing the key: {err}"))?;
    Ok(Request {
        serial,
        key_type: key.key_type,
        description: key.description,
        callout,
        pid,
        uid,
        gid: key.gid,
    })
}

/// Kills a handler and everything it started.
fn kill_handler(pid: Pid) {
    if killpg(pid, Signal::SIGKILL).is_err() {
        let _ = kill(pid, Signal::SIGKILL);
    }
}

/// The one log line per request.
fn log_request(level: log::Level, request: &Request, handler: &str, outcome: &str, since: Instant) {
    log::log!(
        level,
        "key {} type={} description={:?} requester=pid:{},uid:{} handler={handler:?} outcome={outcome:?} duration={}ms",
        request.serial,
        request.key_type,
        String::from_utf8_lossy(&request.description),
        request.pid,
        request.uid,
        since.elapsed().as_millis()
    );
}
