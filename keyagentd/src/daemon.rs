//! The agent: registration, the event loop, handlers and shutdown.

use crate::channel::{self, Answer, Channel, Record, Verdict};
use crate::config::{Action, Config, Rule, Source, OP_CREATE, OP_NEGATE};
use crate::delivery::{Choice, Event, Notice, SignalDelivery, Via};
use crate::keys::{self, Agent, Authority, Serial};
use crate::notify;
use crate::runner::{HandlerEnd, Limiter, OutputLine, Process, Stream, PAYLOAD_MAX};
use crate::spawn::{self, Spawner};
use crate::template::{Arg, Request};
use log::{debug, error, info, warn};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, killpg, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Write;
use std::os::fd::{BorrowedFd, RawFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Error for constructions pending when the daemon stops.
pub const ERROR_STOPPING: Errno = Errno::ECANCELED;

/// How long the kernel keeps a key negative after /sbin/request-key left it
/// unanswered (`key_negative_timeout` in security/keys/request_key.c).
pub const KERNEL_NEGATIVE_TIMEOUT: u32 = 60;

/// Where the module tells its answer timeout.
const MODULE_REQUEST_TIMEOUT: &str = "/sys/module/keyagent/parameters/request_timeout";

/// How long shutdown waits for killed handlers to be reaped.
const REAP_GRACE: Duration = Duration::from_secs(2);

/// How a construction fails when nobody answered it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Errors {
    /// ENOKEY (no line, or the handler exited 0), EKEYREJECTED (the handler
    /// failed), ETIMEDOUT; negative for --negative-timeout
    Keyagentd,
    /// as the kernel fails it after /sbin/request-key: ENOKEY, negative for
    /// 60 s (ETIMEDOUT still for --handler-timeout)
    RequestKey,
}

/// Why nobody answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unanswered {
    /// No configuration line matches.
    NoLine,
    /// The handler ended as given without answering.
    Handler(HandlerEnd),
    /// The handler could not be run, or what it gave could not be used.
    Failed,
}

/// What the daemon is asked to do.
pub struct Settings {
    pub types: Vec<String>,
    /// Keyrings the agent keys are also linked into.
    pub links: Vec<Serial>,
    /// Handlers get the daemon's environment, not the kernel's.
    pub keep_env: bool,
    /// How constructions are asked to arrive.
    pub delivery: Choice,
    pub signal: i32,
    /// Also serve the kernel's own constructions in this network namespace.
    pub net_scope: bool,
    /// Where the configuration was read from (`None`: the built-in default),
    /// read again on SIGHUP.
    pub sources: Option<Vec<Source>>,
    pub config: Config,
    pub handler_timeout: Duration,
    pub negative_timeout: u32,
    pub max_handlers: usize,
    pub errors: Errors,
    /// Log what would run instead of running it (request-key's -d).
    pub dry_run: bool,
    /// With a command: run it in a new session keyring, exit when it exits.
    pub command: Vec<OsString>,
}

/// A construction waiting for, or holding, a handler slot.
struct Job {
    request: Request,
    rule: Rule,
    received: Instant,
    /// How it arrived, so how it is answered.
    via: Via,
}

/// One of the daemon's agent keys.
struct AgentKey {
    key_type: String,
    serial: Serial,
    via: Via,
}

/// How the daemon answers one construction.
enum Answerer {
    /// With keyctl, the construction's authority assumed by this thread.
    Authority(Authority),
    /// By a write to the channel it was read from.
    Channel(Rc<Channel>, Serial),
}

impl Answerer {
    /// Gives the verdict. The daemon's keys never expire: an instantiation's
    /// timeout is 0.
    fn give(&self, verdict: &Verdict) -> Result<(), Errno> {
        match self {
            Answerer::Authority(authority) => match verdict {
                Verdict::Instantiate { payload, .. } => authority.instantiate(payload),
                Verdict::Reject { error, timeout } => authority.reject(*timeout, *error),
                Verdict::Negate { timeout } => authority.reject(*timeout, Errno::ENOKEY),
            },
            Answerer::Channel(channel, serial) => channel.answer(&answer(*serial, verdict.clone())),
        }
    }

    fn instantiate(&self, payload: &[u8]) -> Result<(), Errno> {
        match self {
            Answerer::Authority(authority) => authority.instantiate(payload),
            Answerer::Channel(channel, serial) => channel.answer(&answer(
                *serial,
                Verdict::Instantiate {
                    payload: payload.to_vec(),
                    timeout: 0,
                },
            )),
        }
    }

    fn reject(&self, timeout: u32, error: Errno) -> Result<(), Errno> {
        self.give(&Verdict::Reject { error, timeout })
    }
}

/// The channel's answer record for a verdict; a rejection with ENOKEY is a
/// negation, as keyctl_negate() is keyctl_reject() with ENOKEY.
fn answer(serial: Serial, verdict: Verdict) -> Answer {
    let verdict = match verdict {
        Verdict::Reject {
            error: Errno::ENOKEY,
            timeout,
        } => Verdict::Negate { timeout },
        other => other,
    };
    Answer { serial, verdict }
}

/// An answer the daemon gives without a handler, and the words its log
/// line's outcome starts with.
struct Reply {
    verdict: Verdict,
    prefix: String,
}

/// What a reply to a channel record is about, for its log line.
enum About {
    Request {
        level: log::Level,
        request: Request,
        label: String,
        received: Instant,
    },
    /// A record that could not be read.
    Record { serial: Serial, problem: String },
}

/// A handler process and the construction it answers.
struct Handler {
    job: Job,
    process: Process,
    deadline: Instant,
    /// The construction has been dealt with (timeout or shutdown); only the
    /// process remains to be reaped.
    settled: bool,
}

/// What `Daemon::wait` found ready.
#[derive(Default)]
struct Ready {
    /// A signal waits.
    signal: bool,
    /// Records wait on the channel.
    channel: bool,
    /// Handler streams to service.
    streams: Vec<(Pid, Stream)>,
}

struct Daemon {
    settings: Settings,
    delivery: SignalDelivery,
    /// The module's channel, once a type is served through it; open until
    /// the daemon exits.
    channel: Option<Rc<Channel>>,
    /// The module offers no channel.
    channel_unavailable: bool,
    read_buffer: Vec<u8>,
    spawner: Spawner,
    agent_keys: Vec<AgentKey>,
    handlers: HashMap<Pid, Handler>,
    /// Exited handlers whose output pipe is still open (their own children
    /// hold it): read until it ends, so that those children never get SIGPIPE.
    draining: HashMap<Pid, (Serial, Process)>,
    limiter: Limiter<Job>,
    command: Option<Pid>,
    command_status: Option<i32>,
    stop_requested: bool,
}

/// Runs the daemon until it is stopped (0) or its command exits (the
/// command's status). Errors are start-up or fatal failures, already worded.
pub fn run(settings: Settings) -> Result<i32, String> {
    let delivery = SignalDelivery::open(settings.signal).map_err(|err| {
        format!(
            "cannot set up signal {} for reception: {err}",
            settings.signal
        )
    })?;
    let spawner =
        Spawner::new(!settings.keep_env).map_err(|err| format!("cannot open /dev/null: {err}"))?;
    if !settings.command.is_empty() {
        let session = keys::join_new_session_keyring()
            .map_err(|err| format!("cannot join a new session keyring: {err}"))?;
        debug!("joined new session keyring {session}");
    }
    let limiter = Limiter::new(settings.max_handlers);
    let mut daemon = Daemon {
        settings,
        delivery,
        channel: None,
        channel_unavailable: false,
        read_buffer: vec![0; channel::READ_BUFFER],
        spawner,
        agent_keys: Vec::new(),
        handlers: HashMap::new(),
        draining: HashMap::new(),
        limiter,
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
    notify::notify("READY=1");
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
        match keys::ensure_process_keyring() {
            Ok(keyring) => debug!("process keyring {keyring}"),
            Err(err) => warn!("cannot create a process keyring before registering: {err}"),
        }
        for key_type in self.settings.types.clone() {
            let (via, why) = self.delivery_for(&key_type)?;
            if let Some(why) = why {
                info!(
                    "{key_type}: delivered by signal {}: {why}",
                    self.settings.signal
                );
            }
            let serial = self.register_type(&key_type, via)?;
            self.agent_keys.push(AgentKey {
                key_type,
                serial,
                via,
            });
        }
        for keyring in self.settings.links.clone() {
            for agent in &self.agent_keys {
                keys::link(agent.serial, keyring).map_err(|err| {
                    format!(
                        "cannot link agent key {} ({}) into keyring {keyring}: {err}",
                        agent.serial, agent.key_type
                    )
                })?;
            }
        }
        let summary: Vec<String> = self
            .agent_keys
            .iter()
            .map(|agent| {
                format!(
                    "{} (agent key {}, {})",
                    agent.key_type,
                    agent.serial,
                    self.describe_via(agent.via)
                )
            })
            .collect();
        info!(
            "serving {}{}; {} handler line(s), at most {} handler(s) at once{}",
            summary.join(", "),
            if self.settings.net_scope {
                " and the kernel's requests in this network namespace"
            } else {
                ""
            },
            self.settings.config.rules().len(),
            self.settings.max_handlers,
            if self.settings.dry_run {
                "; dry run: no handler is run"
            } else {
                ""
            }
        );
        Ok(())
    }

    /// How a delivery is named in logs.
    fn describe_via(&self, via: Via) -> String {
        match via {
            Via::Signal => format!("signal {}", self.settings.signal),
            Via::Channel => format!("channel {}", channel::DEVICE),
        }
    }

    /// How constructions of `key_type` should reach the daemon under the
    /// current configuration, and why by signal when the channel was asked
    /// for. Opens the channel the first time a type can use it; errors are
    /// failures to open it other than its absence.
    fn delivery_for(&mut self, key_type: &str) -> Result<(Via, Option<String>), String> {
        if self.settings.delivery == Choice::Signal {
            return Ok((Via::Signal, None));
        }
        if let Some((rule, why)) = self.settings.config.needs_authority(key_type) {
            return Ok((
                Via::Signal,
                Some(format!(
                    "the line {} {why}: the channel keeps the authority in the module",
                    rule.label()
                )),
            ));
        }
        if self.channel.is_some() {
            return Ok((Via::Channel, None));
        }
        if self.channel_unavailable {
            return Ok((Via::Signal, None));
        }
        match Channel::open() {
            Ok(opened) => {
                debug!(
                    "opened {} as descriptor {}",
                    channel::DEVICE,
                    opened.raw_fd()
                );
                self.channel = Some(Rc::new(opened));
                Ok((Via::Channel, None))
            }
            Err(err) if channel::unavailable(err) => {
                info!(
                    "{}: {err}: the keyagent module offers no channel; delivering by signal {}",
                    channel::DEVICE,
                    self.settings.signal
                );
                self.channel_unavailable = true;
                Ok((Via::Signal, None))
            }
            Err(err) => Err(format!(
                "cannot open {}: {err} (--delivery signal does without it)",
                channel::DEVICE
            )),
        }
    }

    /// Adds the agent key for `key_type`.
    fn register_type(&self, key_type: &str, via: Via) -> Result<Serial, String> {
        let agent = match via {
            Via::Signal => Agent::Signal(self.settings.signal),
            Via::Channel => Agent::Channel(self.channel.as_ref().expect("open").raw_fd()),
        };
        keys::register_agent(key_type, agent, self.settings.net_scope).map_err(|err| {
            format!(
                "cannot register as the agent for key type \"{key_type}\" ({}): {}",
                self.describe_via(via),
                keys::explain_registration_error(err, self.settings.net_scope)
            )
        })
    }

    /// After a reload: moves each type whose lines now need another delivery
    /// to it, with a new agent key.
    fn redeliver(&mut self) {
        for index in 0..self.agent_keys.len() {
            let key_type = self.agent_keys[index].key_type.clone();
            let current = self.agent_keys[index].via;
            match self.delivery_for(&key_type) {
                Ok((via, _)) if via == current => {}
                Ok((via, why)) => self.replace_agent_key(index, via, why),
                Err(err) => error!("SIGHUP: {key_type}: {err}; still delivered by {current}"),
            }
        }
    }

    /// Replaces the agent of `agent_keys[index]` by one for `via`. The module
    /// updates the agent key in place (same serial, the new agent replacing
    /// the old); an older module makes a new key, which replaces the old one
    /// in the session keyring and the --link keyrings, and the old one is
    /// invalidated. Constructions already handed over the old way are still
    /// answered that way.
    fn replace_agent_key(&mut self, index: usize, via: Via, why: Option<String>) {
        let AgentKey {
            key_type,
            serial: old,
            via: old_via,
        } = &self.agent_keys[index];
        let (key_type, old, old_via) = (key_type.clone(), *old, *old_via);
        // The process keyring keeps the old key possessed, so that it can be
        // invalidated once it is linked nowhere else.
        let kept = keys::link(old, libc::KEY_SPEC_PROCESS_KEYRING);
        if let Err(err) = &kept {
            debug!("cannot keep agent key {old} in the process keyring: {err}");
        }
        let serial = match self.register_type(&key_type, via) {
            Ok(serial) => serial,
            Err(err) => {
                if kept.is_ok() {
                    let _ = keys::unlink(old, libc::KEY_SPEC_PROCESS_KEYRING);
                }
                error!("SIGHUP: {err}; {key_type} still delivered by {old_via}");
                return;
            }
        };
        for keyring in self.settings.links.clone() {
            if let Err(err) = keys::link(serial, keyring) {
                warn!("SIGHUP: cannot link agent key {serial} ({key_type}) into keyring {keyring}: {err}");
            }
        }
        if serial == old {
            // The module updated the key in place: the new agent replaced the old one in it.
            if kept.is_ok() {
                let _ = keys::unlink(old, libc::KEY_SPEC_PROCESS_KEYRING);
            }
        } else if let Err(err) = keys::retire_agent_key(old) {
            warn!("SIGHUP: cannot invalidate the replaced agent key {old} ({key_type}): {err}");
        }
        info!(
            "SIGHUP: {key_type}: now delivered by {} (agent key {serial}, replacing {old}){}",
            self.describe_via(via),
            why.map(|why| format!(": {why}")).unwrap_or_default()
        );
        self.agent_keys[index] = AgentKey {
            key_type,
            serial,
            via,
        };
    }

    /// Prints `TYPE SERIAL` for each agent key on stdout.
    fn announce(&self) {
        let mut stdout = std::io::stdout().lock();
        for agent in &self.agent_keys {
            let _ = writeln!(stdout, "{} {}", agent.key_type, agent.serial);
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
            let streams = self.streams();
            // With no handler running and no channel, nothing is due but
            // signals: block in read() itself, one system call per signal
            // instead of two.
            let ready =
                if self.channel.is_none() && streams.is_empty() && self.next_deadline().is_none() {
                    Ready {
                        signal: true,
                        ..Ready::default()
                    }
                } else {
                    match self.wait(&streams) {
                        Ok(ready) => ready,
                        Err(err) => {
                            self.shutdown();
                            return Err(format!("poll: {err}"));
                        }
                    }
                };
            for (pid, stream) in ready.streams {
                self.service(pid, stream);
            }
            if ready.channel {
                if let Err(err) = self.read_channel() {
                    self.shutdown();
                    return Err(err);
                }
            }
            if ready.signal {
                match self.delivery.next() {
                    Ok(event) => self.on_event(event),
                    Err(err) => {
                        self.shutdown();
                        return Err(format!("reading signals: {err}"));
                    }
                }
            }
            self.expire_handlers();
        }
    }

    /// The handler streams to watch.
    fn streams(&self) -> Vec<(Pid, RawFd, Stream)> {
        let mut streams = Vec::new();
        for (pid, handler) in &self.handlers {
            for (fd, stream) in handler.process.poll_set() {
                streams.push((*pid, fd, stream));
            }
        }
        for (pid, (_, process)) in &self.draining {
            for (fd, stream) in process.poll_set() {
                streams.push((*pid, fd, stream));
            }
        }
        streams
    }

    /// Polls the signals, the channel and the handler streams until one is
    /// ready or the next deadline; returns whether a signal waits, whether
    /// records do, and the ready streams.
    fn wait(&self, streams: &[(Pid, RawFd, Stream)]) -> Result<Ready, Errno> {
        let timeout = match self.next_deadline() {
            None => PollTimeout::NONE,
            Some(deadline) => {
                let wait = deadline.saturating_duration_since(Instant::now());
                // Round up, so the deadline has passed when poll returns.
                PollTimeout::try_from(wait.as_nanos().div_ceil(1_000_000))
                    .unwrap_or(PollTimeout::MAX)
            }
        };
        let mut fds = vec![PollFd::new(self.delivery.fd(), PollFlags::POLLIN)];
        if let Some(channel) = &self.channel {
            fds.push(PollFd::new(channel.fd(), PollFlags::POLLIN));
        }
        let first_stream = fds.len();
        for (_, fd, stream) in streams {
            // SAFETY: the descriptors belong to self.handlers, which is not
            // changed while `fds` lives.
            let fd = unsafe { BorrowedFd::borrow_raw(*fd) };
            let flags = match stream {
                Stream::Stdin => PollFlags::POLLOUT,
                _ => PollFlags::POLLIN,
            };
            fds.push(PollFd::new(fd, flags));
        }
        match poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(Errno::EINTR) => return Ok(Ready::default()),
            Err(err) => return Err(err),
        }
        let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
        let signal_ready = ready(&fds[0]);
        let channel_ready = first_stream > 1 && ready(&fds[1]);
        let ready_streams = streams
            .iter()
            .zip(&fds[first_stream..])
            .filter(|(_, fd)| ready(fd))
            .map(|((pid, _, stream), _)| (*pid, *stream))
            .collect();
        Ok(Ready {
            signal: signal_ready,
            channel: channel_ready,
            streams: ready_streams,
        })
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.handlers
            .values()
            .filter(|h| !h.settled)
            .map(|h| h.deadline)
            .min()
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Construction(notice) => self.on_request(notice),
            Event::ChildExited => self.reap(),
            Event::Stop(signal) => self.on_stop_signal(signal),
            Event::Reload => self.reload(),
            Event::Nothing => {}
        }
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

    /// SIGHUP: reads the configuration again; keeps the old one if the new
    /// one has errors.
    fn reload(&mut self) {
        let Some(sources) = &self.settings.sources else {
            info!("SIGHUP: no configuration file to reload (built-in default)");
            return;
        };
        notify::notify("RELOADING=1");
        let result = Config::load(sources);
        notify::notify("READY=1");
        match result {
            Ok(config) => {
                info!(
                    "SIGHUP: configuration reloaded: {} handler line(s) (was {})",
                    config.rules().len(),
                    self.settings.config.rules().len()
                );
                self.settings.config = config;
                self.redeliver();
            }
            Err(err) => error!("SIGHUP: {err}; keeping the previous configuration"),
        }
    }

    /// The error and negative timeout for a construction nobody answered.
    fn failure(&self, why: Unanswered) -> (Errno, u32) {
        let negative = self.settings.negative_timeout;
        match (self.settings.errors, why) {
            (_, Unanswered::Handler(HandlerEnd::TimedOut(_))) => (Errno::ETIMEDOUT, negative),
            (Errors::RequestKey, _) => (Errno::ENOKEY, KERNEL_NEGATIVE_TIMEOUT),
            (Errors::Keyagentd, Unanswered::NoLine) => (Errno::ENOKEY, negative),
            (Errors::Keyagentd, Unanswered::Handler(HandlerEnd::Exited(0))) => {
                (Errno::ENOKEY, negative)
            }
            (Errors::Keyagentd, _) => (Errno::EKEYREJECTED, negative),
        }
    }

    /// Rejects the construction unless it has already ended; says what happened.
    fn reject(&self, answerer: &Answerer, why: Unanswered) -> String {
        let (error, timeout) = self.failure(why);
        reject_with(answerer, timeout, error)
    }

    /// The reply failing a construction nobody answered.
    fn failure_reply(&self, why: Unanswered, prefix: String) -> Reply {
        let (error, timeout) = self.failure(why);
        Reply {
            verdict: Verdict::Reject { error, timeout },
            prefix,
        }
    }

    /// Says what became of a reply given with `result`; a failed
    /// instantiation is followed by a rejection.
    fn outcome(&self, answerer: &Answerer, reply: &Reply, result: Result<(), Errno>) -> String {
        let what = match (&reply.verdict, result) {
            (Verdict::Instantiate { .. }, Ok(())) => "instantiated".to_string(),
            (Verdict::Instantiate { .. }, Err(err)) => format!(
                "instantiate failed ({err:?}); {}",
                self.reject(answerer, Unanswered::Failed)
            ),
            (Verdict::Negate { timeout }, Ok(())) => format!("negated for {timeout}s"),
            (Verdict::Negate { .. }, Err(err)) => format!("negate failed ({err:?})"),
            (Verdict::Reject { error, timeout }, result) => rejected(*error, *timeout, result),
        };
        format!("{}{what}", reply.prefix)
    }

    /// Gives a reply now and logs the request's line.
    fn answer_now(
        &self,
        answerer: &Answerer,
        request: &Request,
        label: &str,
        reply: Reply,
        level: log::Level,
        received: Instant,
    ) {
        let result = answerer.give(&reply.verdict);
        let outcome = self.outcome(answerer, &reply, result);
        log_request(level, request, label, &outcome, received);
    }

    /// The answer of a `builtin:` line (in a dry run, the failure).
    fn builtin_reply(&self, job: &Job) -> Reply {
        if self.settings.dry_run {
            return self.failure_reply(
                Unanswered::Handler(HandlerEnd::Exited(0)),
                "dry run, not run; ".to_string(),
            );
        }
        let verdict = match &job.rule.action {
            Action::Instantiate(text) => Verdict::Instantiate {
                payload: text.expand(&job.request),
                timeout: 0,
            },
            Action::Negate(timeout) => Verdict::Negate {
                timeout: timeout.unwrap_or(self.settings.negative_timeout),
            },
            Action::Run { .. } => unreachable!("not a builtin"),
        };
        Reply {
            verdict,
            prefix: String::new(),
        }
    }

    /// The reply to a construction read from the channel whose line needs
    /// the authority the module keeps (its type was registered for the
    /// channel under an earlier configuration).
    fn no_authority_reply(&self, why: &str) -> Reply {
        self.failure_reply(
            Unanswered::Failed,
            format!(
                "the line {why}: the channel keeps the authority in the module (the configuration \
                 changed after this construction was handed over); "
            ),
        )
    }

    /// Handles one construction the module signalled.
    fn on_request(&mut self, notice: Notice) {
        let Notice { serial, pid, uid } = notice;
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
        let request = gather_request(&authority, notice);
        let answerer = Answerer::Authority(authority);
        let request = match request {
            Ok(request) => request,
            Err(err) => {
                let outcome = self.reject(&answerer, Unanswered::Failed);
                error!("key {serial} from pid {pid} uid {uid}: cannot read the request ({err}); {outcome}");
                return;
            }
        };
        debug!(
            "key {serial}: callout {:?}, %S {}",
            String::from_utf8_lossy(&request.callout),
            request.session_keyring
        );
        let Some((rule, wildness)) = self.settings.config.find(
            OP_CREATE,
            &request.key_type,
            &request.description,
            &request.callout,
        ) else {
            let reply = self.failure_reply(Unanswered::NoLine, "no matching handler; ".into());
            self.answer_now(&answerer, &request, "-", reply, log::Level::Warn, received);
            return;
        };
        debug!(
            "key {serial}: {} matches, wildness {wildness:?}",
            rule.origin
        );
        let job = Job {
            request,
            rule: rule.clone(),
            received,
            via: Via::Signal,
        };
        if !matches!(job.rule.action, Action::Run { .. }) {
            self.run_builtin(&answerer, &job);
            return;
        }
        drop(answerer);
        self.submit(job);
    }

    /// Reads the records waiting on the channel and handles them; the
    /// answers given at once go back in one write.
    fn read_channel(&mut self) -> Result<(), String> {
        let Some(channel) = self.channel.clone() else {
            return Ok(());
        };
        let records = match channel.read(&mut self.read_buffer) {
            Ok(records) => records,
            Err(Errno::EAGAIN) => return Ok(()),
            Err(err) => return Err(format!("reading {}: {err}", channel::DEVICE)),
        };
        let mut replies = Vec::new();
        for record in records {
            match record {
                Ok(record) => replies.extend(self.on_record(record)),
                Err(err) => {
                    error!("{}: {err}", channel::DEVICE);
                    if let Some(serial) = err.serial {
                        let problem = format!("unreadable record ({})", err.reason);
                        let reply = self.failure_reply(Unanswered::Failed, String::new());
                        replies.push((serial, reply, About::Record { serial, problem }));
                    }
                }
            }
        }
        self.give_replies(&channel, replies);
        Ok(())
    }

    /// Handles one construction read from the channel: returns the reply to
    /// give at once, or starts (or queues) its handler.
    fn on_record(&mut self, record: Record) -> Option<(Serial, Reply, About)> {
        let received = Instant::now();
        let request = request_from_record(&record);
        let serial = request.serial;
        debug!(
            "key {serial}: from the channel{}: callout {:?}",
            if record.by_kernel() {
                " (the kernel's own request)"
            } else {
                ""
            },
            String::from_utf8_lossy(&request.callout)
        );
        let about = |level, request, label| About::Request {
            level,
            request,
            label,
            received,
        };
        let Some((rule, wildness)) = self.settings.config.find(
            OP_CREATE,
            &request.key_type,
            &request.description,
            &request.callout,
        ) else {
            let reply = self.failure_reply(Unanswered::NoLine, "no matching handler; ".into());
            return Some((serial, reply, about(log::Level::Warn, request, "-".into())));
        };
        debug!(
            "key {serial}: {} matches, wildness {wildness:?}",
            rule.origin
        );
        let label = rule.label();
        if let Some(why) = rule.needs_authority() {
            let reply = self.no_authority_reply(why);
            return Some((serial, reply, about(log::Level::Warn, request, label)));
        }
        let job = Job {
            request,
            rule: rule.clone(),
            received,
            via: Via::Channel,
        };
        if !matches!(job.rule.action, Action::Run { .. }) {
            let reply = self.builtin_reply(&job);
            return Some((serial, reply, about(log::Level::Info, job.request, label)));
        }
        self.submit(job);
        None
    }

    /// Gives the replies to channel records in as few writes as fit, and
    /// logs each.
    fn give_replies(&self, channel: &Rc<Channel>, replies: Vec<(Serial, Reply, About)>) {
        if replies.is_empty() {
            return;
        }
        let answers: Vec<Answer> = replies
            .iter()
            .map(|(serial, reply, _)| answer(*serial, reply.verdict.clone()))
            .collect();
        let results = channel.answer_all(&answers);
        for ((serial, reply, about), result) in replies.into_iter().zip(results) {
            let answerer = Answerer::Channel(channel.clone(), serial);
            let outcome = self.outcome(&answerer, &reply, result);
            match about {
                About::Request {
                    level,
                    request,
                    label,
                    received,
                } => log_request(level, &request, &label, &outcome, received),
                About::Record { serial, problem } => {
                    error!("key {serial}: {problem}; {outcome}")
                }
            }
        }
    }

    /// A construction whose handler is to run: starts it if a slot is free,
    /// else queues it.
    fn submit(&mut self, job: Job) {
        let serial = job.request.serial;
        if let Some(job) = self.limiter.submit(job) {
            self.start_in_slot(job);
        } else {
            debug!(
                "key {serial}: queued ({} handler(s) running, {} waiting)",
                self.limiter.running(),
                self.limiter.waiting()
            );
        }
    }

    /// Runs a `builtin:` line.
    fn run_builtin(&self, answerer: &Answerer, job: &Job) {
        let reply = self.builtin_reply(job);
        self.answer_now(
            answerer,
            &job.request,
            &job.rule.label(),
            reply,
            log::Level::Info,
            job.received,
        );
    }

    /// How to answer a construction that arrived `via`: for a signalled
    /// one, its authority, assumed (an error once the construction has
    /// ended).
    fn answerer(&self, serial: Serial, via: Via) -> Result<Answerer, Errno> {
        match via {
            Via::Signal => Authority::assume(serial).map(Answerer::Authority),
            Via::Channel => Ok(Answerer::Channel(
                self.channel
                    .clone()
                    .expect("constructions read from the channel"),
                serial,
            )),
        }
    }

    /// Starts `job`, which holds a handler slot; if it cannot start, the
    /// slot goes to the next queued job, and so on.
    fn start_in_slot(&mut self, job: Job) {
        let mut next = Some(job);
        while let Some(job) = next {
            if self.start(job) {
                return;
            }
            next = self.limiter.release();
        }
    }

    /// Starts the job's handler; false if it ended without a process (the
    /// construction is then settled).
    fn start(&mut self, job: Job) -> bool {
        let serial = job.request.serial;
        let label = job.rule.label();
        let authority = match self.answerer(serial, job.via) {
            Ok(answerer) => answerer,
            Err(err) => {
                warn!(
                    "key {serial}: construction ended before its handler {label} started ({err:?}; \
                     waited {}ms)",
                    job.received.elapsed().as_millis()
                );
                return false;
            }
        };
        if job.via == Via::Channel {
            if let Some(why) = job.rule.needs_authority() {
                let reply = self.no_authority_reply(why);
                self.answer_now(
                    &authority,
                    &job.request,
                    &label,
                    reply,
                    log::Level::Warn,
                    job.received,
                );
                return false;
            }
        }
        if !matches!(job.rule.action, Action::Run { .. }) {
            self.run_builtin(&authority, &job);
            return false;
        }
        let Action::Run {
            path,
            argv0,
            args,
            piped,
        } = &job.rule.action
        else {
            unreachable!("checked above");
        };
        let argv = match expand_args(argv0, args, &job.request) {
            Ok(argv) => argv,
            Err(err) => {
                let outcome = format!("{err}; {}", self.reject(&authority, Unanswered::Failed));
                log_request(
                    log::Level::Warn,
                    &job.request,
                    &label,
                    &outcome,
                    job.received,
                );
                return false;
            }
        };
        if self.settings.dry_run {
            let shown: Vec<String> = argv
                .iter()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            let outcome = format!(
                "dry run: would run {}{} {shown:?}; {}",
                if *piped { "|" } else { "" },
                String::from_utf8_lossy(path),
                self.reject(&authority, Unanswered::Handler(HandlerEnd::Exited(0)))
            );
            log_request(
                log::Level::Info,
                &job.request,
                &label,
                &outcome,
                job.received,
            );
            return false;
        }
        // A signalled construction's handler inherits the authority assumed
        // above; a handler for the channel has none.
        match self.spawner.handler(path, &argv, *piped) {
            Ok((pid, io)) => {
                debug!("key {serial}: handler pid {pid}: {label} {argv:?}");
                let input = if *piped {
                    job.request.callout.clone()
                } else {
                    Vec::new()
                };
                let process = Process::new(io, input);
                self.handlers.insert(
                    pid,
                    Handler {
                        job,
                        process,
                        deadline: Instant::now() + self.settings.handler_timeout,
                        settled: false,
                    },
                );
                true
            }
            Err(err) => {
                let outcome = format!(
                    "cannot start {}: {}; {}",
                    String::from_utf8_lossy(path),
                    err.desc(),
                    self.reject(&authority, Unanswered::Failed)
                );
                log_request(
                    log::Level::Warn,
                    &job.request,
                    &label,
                    &outcome,
                    job.received,
                );
                false
            }
        }
    }

    /// Moves a handler's I/O along; finishes it when it is done.
    fn service(&mut self, pid: Pid, stream: Stream) {
        if let Some((serial, process)) = self.draining.get_mut(&pid) {
            let mut lines = Vec::new();
            process.service(stream, &mut lines);
            log_output(*serial, &lines);
            if process.poll_set().is_empty() {
                self.draining.remove(&pid);
            }
            return;
        }
        let Some(handler) = self.handlers.get_mut(&pid) else {
            return;
        };
        let mut lines = Vec::new();
        handler.process.service(stream, &mut lines);
        log_output(handler.job.request.serial, &lines);
        if handler.process.finished() {
            self.finish(pid);
        }
    }

    /// Reaps every exited child.
    fn reap(&mut self) {
        loop {
            let end = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, HandlerEnd::Exited(code)),
                Ok(WaitStatus::Signaled(pid, signal, _)) => (pid, HandlerEnd::Signaled(signal)),
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => break,
                Ok(_) | Err(Errno::EINTR) => continue,
                Err(err) => {
                    error!("waitpid: {err}");
                    break;
                }
            };
            self.on_exit(end.0, end.1);
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
        let Some(handler) = self.handlers.get_mut(&pid) else {
            debug!("reaped pid {pid} ({end})");
            return;
        };
        handler.process.ended(end);
        if handler.process.finished() {
            self.finish(pid);
        }
    }

    /// A handler is done: settles its construction and gives its slot on.
    fn finish(&mut self, pid: Pid) {
        let Some(mut handler) = self.handlers.remove(&pid) else {
            return;
        };
        let serial = handler.job.request.serial;
        let mut lines = Vec::new();
        if handler.settled || handler.process.piped() {
            handler.process.close(&mut lines);
        } else {
            // What it wrote so far; its own children may still write.
            handler.process.drain(&mut lines);
        }
        log_output(serial, &lines);
        let end = handler.process.end().expect("finished handlers have ended");
        let follow_up = if handler.settled {
            debug!("key {serial}: handler pid {pid} {end}");
            None
        } else {
            self.settle(&handler, end)
        };
        if !handler.process.poll_set().is_empty() {
            self.draining.insert(pid, (serial, handler.process));
        }
        if let Some(follow_up) = follow_up {
            // The negate line runs in the slot the piped handler had.
            if self.start(follow_up) {
                return;
            }
        }
        if let Some(next) = self.limiter.release() {
            self.start_in_slot(next);
        }
    }

    /// Checks whether the handler answered, and answers for it as request-key
    /// would: a piped handler's payload, or its `negate` line (returned as
    /// a job to run), or a rejection.
    fn settle(&self, handler: &Handler, end: HandlerEnd) -> Option<Job> {
        let job = &handler.job;
        let label = job.rule.label();
        let log = |level, outcome: &str| {
            log_request(level, &job.request, &label, outcome, job.received);
        };
        // Whether a handler answered itself shows when the authority can
        // no longer be assumed. A channel construction's handler cannot
        // answer itself (it has no authority), and is piped.
        let Ok(authority) = self.answerer(job.request.serial, job.via) else {
            log(log::Level::Info, &format!("answered (handler {end})"));
            return None;
        };
        if !handler.process.piped() {
            let outcome = format!(
                "not answered (handler {end}); {}",
                self.reject(&authority, Unanswered::Handler(end))
            );
            log(log::Level::Warn, &outcome);
            return None;
        }
        let (payload, overflow) = handler.process.payload();
        match end {
            // request-key gives up as soon as its buffer is full, whatever
            // the handler does next.
            _ if overflow => {
                let outcome = format!(
                    "handler wrote more than {PAYLOAD_MAX} bytes (it {end}); {}",
                    self.reject(&authority, Unanswered::Failed)
                );
                log(log::Level::Warn, &outcome);
                None
            }
            HandlerEnd::Exited(0) => {
                let outcome = match authority.instantiate(payload) {
                    Ok(()) => format!(
                        "instantiated with {} byte(s) from the handler's stdout (handler exited 0)",
                        payload.len()
                    ),
                    Err(err) => format!(
                        "instantiate failed ({err:?}); {}",
                        self.reject(&authority, Unanswered::Failed)
                    ),
                };
                log(log::Level::Info, &outcome);
                None
            }
            HandlerEnd::TimedOut(_) => {
                let outcome = format!(
                    "not answered (handler {end}); {}",
                    self.reject(&authority, Unanswered::Handler(end))
                );
                log(log::Level::Warn, &outcome);
                None
            }
            _ if job.request.operation == OP_NEGATE => {
                let outcome = format!(
                    "negate handler {end}; {}",
                    self.reject(&authority, Unanswered::Handler(end))
                );
                log(log::Level::Warn, &outcome);
                None
            }
            _ => {
                let request = &job.request;
                let Some((rule, _)) = self.settings.config.find(
                    OP_NEGATE,
                    &request.key_type,
                    &request.description,
                    &request.callout,
                ) else {
                    let outcome = format!(
                        "handler {end}, no negate line; {}",
                        self.reject(&authority, Unanswered::Failed)
                    );
                    log(log::Level::Warn, &outcome);
                    return None;
                };
                log(
                    log::Level::Info,
                    &format!("handler {end}; running the negate line {}", rule.label()),
                );
                let mut request = request.clone();
                request.operation = OP_NEGATE;
                Some(Job {
                    request,
                    rule: rule.clone(),
                    received: job.received,
                    via: job.via,
                })
            }
        }
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
            kill_handler(pid, self.handlers[&pid].process.end().is_some());
            let end = HandlerEnd::TimedOut(self.settings.handler_timeout);
            let handler = self.handlers.get_mut(&pid).expect("listed above");
            let mut lines = Vec::new();
            handler.process.close(&mut lines);
            log_output(handler.job.request.serial, &lines);
            let handler = &self.handlers[&pid];
            let _ = self.settle(handler, end);
            let handler = self.handlers.get_mut(&pid).expect("listed above");
            handler.settled = true;
        }
    }

    fn retire_agent_keys(&mut self) {
        for AgentKey {
            key_type, serial, ..
        } in self.agent_keys.drain(..)
        {
            match keys::retire_agent_key(serial) {
                Ok(()) => debug!("invalidated agent key {serial} ({key_type})"),
                Err(err) => warn!("cannot invalidate agent key {serial} ({key_type}): {err}"),
            }
        }
    }

    /// Leaves nothing under construction: no new constructions, handlers
    /// killed, everything pending rejected with ECANCELED.
    fn shutdown(&mut self) {
        notify::notify("STOPPING=1");
        self.retire_agent_keys();
        let (peak_running, peak_waiting) = self.limiter.peaks();
        debug!(
            "stopping: at most {peak_running} handler(s) ran at once (limit {}), at most {peak_waiting} waited",
            self.settings.max_handlers
        );

        let pids: Vec<Pid> = self.handlers.keys().copied().collect();
        for pid in pids {
            kill_handler(pid, self.handlers[&pid].process.end().is_some());
            let handler = self.handlers.get_mut(&pid).expect("listed above");
            if handler.settled {
                continue;
            }
            handler.settled = true;
            let handler = &self.handlers[&pid];
            let outcome = match self.answerer(handler.job.request.serial, handler.job.via) {
                Err(_) => "answered".to_string(),
                Ok(authority) => format!(
                    "daemon stopping, handler killed; {}",
                    reject_with(&authority, self.settings.negative_timeout, ERROR_STOPPING)
                ),
            };
            log_request(
                log::Level::Warn,
                &handler.job.request,
                &handler.job.rule.label(),
                &outcome,
                handler.job.received,
            );
        }
        for job in self.limiter.drain() {
            self.cancel(job.request.serial, job.via);
        }

        // Requests signalled but not read yet.
        while self.delivery.ready() {
            match self.delivery.next() {
                Ok(Event::Construction(notice)) => self.cancel(notice.serial, Via::Signal),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        // Records not read yet; what is queued after this fails with
        // EOWNERDEAD when the channel is closed.
        self.cancel_unread_records();
        // Anything else this process still holds an authorisation key for.
        for serial in keys::constructions_in_process_keyring() {
            self.cancel(serial, Via::Signal);
        }

        let give_up = Instant::now() + REAP_GRACE;
        loop {
            self.reap();
            let alive = self.handlers.values().any(|h| h.process.end().is_none());
            if !alive || Instant::now() >= give_up {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        for (pid, handler) in &self.handlers {
            if handler.process.end().is_none() {
                warn!("handler pid {pid} did not exit after SIGKILL");
            }
        }
    }

    /// Rejects a pending construction with ECANCELED, if it is still pending.
    fn cancel(&self, serial: Serial, via: Via) {
        let Ok(answerer) = self.answerer(serial, via) else {
            return;
        };
        let timeout = self.settings.negative_timeout;
        match answerer.reject(timeout, ERROR_STOPPING) {
            // The channel tells only now that it has ended.
            Err(Errno::ENOENT) if via == Via::Channel => {
                debug!("key {serial}: daemon stopping; construction already ended")
            }
            result => warn!(
                "key {serial}: daemon stopping; {}",
                rejected(ERROR_STOPPING, timeout, result)
            ),
        }
    }

    /// Rejects with ECANCELED every construction waiting on the channel.
    fn cancel_unread_records(&mut self) {
        let Some(channel) = self.channel.clone() else {
            return;
        };
        let mut serials = Vec::new();
        while let Ok(records) = channel.read(&mut self.read_buffer) {
            let before = serials.len();
            serials.extend(records.iter().filter_map(|record| match record {
                Ok(record) => Some(record.serial),
                Err(err) => err.serial,
            }));
            if serials.len() == before {
                break;
            }
        }
        let timeout = self.settings.negative_timeout;
        let verdict = Verdict::Reject {
            error: ERROR_STOPPING,
            timeout,
        };
        let answers: Vec<Answer> = serials
            .iter()
            .map(|&serial| answer(serial, verdict.clone()))
            .collect();
        for (serial, result) in serials.iter().zip(channel.answer_all(&answers)) {
            warn!(
                "key {serial}: daemon stopping; {}",
                rejected(ERROR_STOPPING, timeout, result)
            );
        }
    }
}

/// Rejects; says what happened.
fn reject_with(answerer: &Answerer, timeout: u32, error: Errno) -> String {
    rejected(error, timeout, answerer.reject(timeout, error))
}

/// Says what became of a rejection.
fn rejected(error: Errno, timeout: u32, result: Result<(), Errno>) -> String {
    match result {
        Ok(()) => format!("rejected with {error:?} for {timeout}s"),
        Err(err) => format!("could not reject with {error:?}: {err:?}"),
    }
}

/// What the handlers need to know about a construction read from the
/// channel: all of it is in the record. `%S` is 0 (lines using it are
/// served by signal: see `Rule::needs_authority`).
fn request_from_record(record: &Record) -> Request {
    let mut callout = record.callout.clone();
    // request-key reads it as a C string.
    if let Some(nul) = callout.iter().position(|&b| b == 0) {
        callout.truncate(nul);
    }
    Request {
        operation: OP_CREATE,
        serial: record.serial,
        key_type: String::from_utf8_lossy(&record.key_type).into_owned(),
        description: record.description.clone(),
        callout,
        uid: record.uid,
        gid: record.gid,
        thread_keyring: 0,
        process_keyring: 0,
        session_keyring: 0,
        requester_pid: record.pid.max(0) as u32,
        requester_uid: record.uid,
    }
}

/// Reads what the handlers need to know about a construction.
fn gather_request(authority: &Authority, notice: Notice) -> Result<Request, String> {
    let mut callout = authority
        .callout()
        .map_err(|err| format!("reading the callout information: {err}"))?;
    // request-key reads it as a C string.
    if let Some(nul) = callout.iter().position(|&b| b == 0) {
        callout.truncate(nul);
    }
    let key = keys::describe(notice.serial).map_err(|err| format!("describing the key: {err}"))?;
    // The keyring the kernel links the key into: the requester's session
    // keyring unless it asked for another destination (see the README).
    let session_keyring = keys::keyring_id(libc::KEY_SPEC_REQUESTOR_KEYRING).unwrap_or(0);
    Ok(Request {
        operation: OP_CREATE,
        serial: notice.serial,
        key_type: key.key_type,
        description: key.description,
        callout,
        uid: key.uid,
        gid: key.gid,
        thread_keyring: 0,
        process_keyring: 0,
        session_keyring,
        requester_pid: notice.pid,
        requester_uid: notice.uid,
    })
}

/// The argv of a handler: argv[0], then each argument with its macro
/// substituted. `%{TYPE:DESCRIPTION}` is looked up now, with the authority
/// assumed, so in the requester's keyrings too.
fn expand_args(argv0: &[u8], args: &[Arg], request: &Request) -> Result<Vec<Vec<u8>>, String> {
    let mut argv = vec![argv0.to_vec()];
    for arg in args {
        argv.push(match arg {
            Arg::Literal(text) => text.clone(),
            Arg::Macro(var) => var.value(request),
            Arg::KeySub {
                key_type,
                description,
            } => {
                let payload = keys::look_up_payload(key_type, description).map_err(|err| {
                    format!("%{{{key_type}:{description}}}: key not found or unreadable ({err:?})")
                })?;
                if let Some(b) = payload.iter().find(|b| !(0x20..0x7f).contains(*b)) {
                    return Err(format!(
                        "%{{{key_type}:{description}}}: payload not printable ('{b:02x}')"
                    ));
                }
                payload
            }
        });
    }
    Ok(argv)
}

/// Kills a handler and everything it started.
/// Kills a handler and everything it started; once it has been reaped, its
/// pid may belong to another process, so then only its process group is
/// signalled.
fn kill_handler(pid: Pid, reaped: bool) {
    if killpg(pid, Signal::SIGKILL).is_err() && !reaped {
        let _ = kill(pid, Signal::SIGKILL);
    }
}

/// Logs what a handler wrote: a piped handler's stderr as warnings (request-key
/// logs it as errors), other output at info.
fn log_output(serial: Serial, lines: &[OutputLine]) {
    for line in lines {
        let text = String::from_utf8_lossy(&line.text);
        if line.stderr {
            warn!("key {serial}: handler stderr: {text}");
        } else {
            info!("key {serial}: handler output: {text}");
        }
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
        request.requester_pid,
        request.requester_uid,
        since.elapsed().as_millis()
    );
}
