//! The agent: registration, the event loop, handlers and shutdown.

use crate::config::{Action, Config, Rule, Source, OP_CREATE, OP_NEGATE};
use crate::delivery::{Event, Notice, SignalDelivery};
use crate::keys::{self, Authority, Serial};
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

struct Daemon {
    settings: Settings,
    delivery: SignalDelivery,
    spawner: Spawner,
    agent_keys: Vec<(String, Serial)>,
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
        for keyring in self.settings.links.clone() {
            for (key_type, serial) in &self.agent_keys {
                keys::link(*serial, keyring).map_err(|err| {
                    format!(
                        "cannot link agent key {serial} ({key_type}) into keyring {keyring}: {err}"
                    )
                })?;
            }
        }
        let summary: Vec<String> = self
            .agent_keys
            .iter()
            .map(|(key_type, serial)| format!("{key_type} (agent key {serial})"))
            .collect();
        info!(
            "serving {}{} with signal {}; {} handler line(s), at most {} handler(s) at once{}",
            summary.join(", "),
            if self.settings.net_scope {
                " and the kernel's requests in this network namespace"
            } else {
                ""
            },
            self.settings.signal,
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
            let streams = self.streams();
            // With no handler running, nothing is due but signals: block in
            // read() itself, one system call per signal instead of two.
            let (signal_ready, ready_streams) =
                if streams.is_empty() && self.next_deadline().is_none() {
                    (true, Vec::new())
                } else {
                    match self.wait(&streams) {
                        Ok(ready) => ready,
                        Err(err) => {
                            self.shutdown();
                            return Err(format!("poll: {err}"));
                        }
                    }
                };
            for (pid, stream) in ready_streams {
                self.service(pid, stream);
            }
            if signal_ready {
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

    /// Polls the delivery and the handler streams until one is ready or the
    /// next deadline; returns whether an event waits and the ready streams.
    fn wait(&self, streams: &[(Pid, RawFd, Stream)]) -> Result<(bool, Vec<(Pid, Stream)>), Errno> {
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
            Err(Errno::EINTR) => return Ok((false, Vec::new())),
            Err(err) => return Err(err),
        }
        let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
        let signal_ready = ready(&fds[0]);
        let ready_streams = streams
            .iter()
            .zip(&fds[1..])
            .filter(|(_, fd)| ready(fd))
            .map(|((pid, _, stream), _)| (*pid, *stream))
            .collect();
        Ok((signal_ready, ready_streams))
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
    fn reject(&self, authority: &Authority, why: Unanswered) -> String {
        let (error, timeout) = self.failure(why);
        reject_with(authority, timeout, error)
    }

    /// Handles one construction the module handed to this daemon.
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
        let request = match gather_request(&authority, notice) {
            Ok(request) => request,
            Err(err) => {
                let outcome = self.reject(&authority, Unanswered::Failed);
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
            let outcome = format!(
                "no matching handler; {}",
                self.reject(&authority, Unanswered::NoLine)
            );
            log_request(log::Level::Warn, &request, "-", &outcome, received);
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
        };
        if !matches!(job.rule.action, Action::Run { .. }) {
            self.run_builtin(&authority, &job);
            return;
        }
        drop(authority);
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
    fn run_builtin(&self, authority: &Authority, job: &Job) {
        let request = &job.request;
        let label = job.rule.label();
        let outcome = if self.settings.dry_run {
            format!(
                "dry run, not run; {}",
                self.reject(authority, Unanswered::Handler(HandlerEnd::Exited(0)))
            )
        } else {
            match &job.rule.action {
                Action::Instantiate(text) => match authority.instantiate(&text.expand(request)) {
                    Ok(()) => "instantiated".to_string(),
                    Err(err) => format!(
                        "instantiate failed ({err:?}); {}",
                        self.reject(authority, Unanswered::Failed)
                    ),
                },
                Action::Negate(timeout) => {
                    let timeout = timeout.unwrap_or(self.settings.negative_timeout);
                    match authority.reject(timeout, Errno::ENOKEY) {
                        Ok(()) => format!("negated for {timeout}s"),
                        Err(err) => format!("negate failed ({err:?})"),
                    }
                }
                Action::Run { .. } => unreachable!("not a builtin"),
            }
        };
        log_request(log::Level::Info, request, &label, &outcome, job.received);
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
        let authority = match Authority::assume(serial) {
            Ok(authority) => authority,
            Err(err) => {
                warn!(
                    "key {serial}: construction ended before its handler {label} started ({err:?}; \
                     waited {}ms)",
                    job.received.elapsed().as_millis()
                );
                return false;
            }
        };
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
        // The child inherits the authority assumed above.
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
        let Ok(authority) = Authority::assume(job.request.serial) else {
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
            let outcome = match Authority::assume(handler.job.request.serial) {
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
            self.cancel(job.request.serial);
        }

        // Requests signalled but not read yet.
        while self.delivery.ready() {
            match self.delivery.next() {
                Ok(Event::Construction(notice)) => self.cancel(notice.serial),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        // Anything else this process still holds an authorisation key for.
        for serial in keys::constructions_in_process_keyring() {
            self.cancel(serial);
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
    fn cancel(&self, serial: Serial) {
        if let Ok(authority) = Authority::assume(serial) {
            warn!(
                "key {serial}: daemon stopping; {}",
                reject_with(&authority, self.settings.negative_timeout, ERROR_STOPPING)
            );
        }
    }
}

/// Rejects; says what happened.
fn reject_with(authority: &Authority, timeout: u32, error: Errno) -> String {
    match authority.reject(timeout, error) {
        Ok(()) => format!("rejected with {error:?} for {timeout}s"),
        Err(err) => format!("could not reject with {error:?}: {err:?}"),
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
