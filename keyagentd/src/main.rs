//! keyagentd: answers request_key() upcalls through the keyagent module,
//! running request-key.conf-style handlers in the daemon's own namespaces.

mod config;
mod daemon;
mod keys;
mod signals;
mod spawn;
mod template;

use clap::{ArgAction, Parser};
use config::Config;
use log::{error, LevelFilter};
use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Exit status for usage and configuration errors.
const EXIT_USAGE: u8 = 2;
/// Exit status for failures to start or keep serving.
const EXIT_FAILURE: u8 = 1;

const AFTER_HELP: &str = "\
Registers as the keyagent agent for each TYPE (a \"keyagent\" key in the session
keyring), prints \"TYPE SERIAL\" for each agent key on stdout, then answers the
constructions of keys of those types requested by processes whose session
keyring holds the agent keys. Runs in the foreground until SIGTERM, SIGINT or
SIGHUP.

With -- COMMAND, the daemon first joins a new session keyring, registers there
and runs COMMAND in it (with KEYAGENTD_PID set); COMMAND's requests are served
by the daemon. Stop signals are passed on to COMMAND; when COMMAND exits the
daemon cleans up and exits with COMMAND's status (128+N if killed by signal N).
Nothing is printed on stdout in this mode.

HANDLERS
  --config names a request-key.conf-format file, or a directory whose *.conf
  files are read in name order. Each line is
      OP TYPE DESCRIPTION CALLOUT PROGRAM [ARGS...]
  '#' starts a comment; OP must match \"create\" (lines for other operations are
  accepted and never used); '*' in OP, TYPE, DESCRIPTION and CALLOUT matches any
  text; words may be quoted with \"...\" or '...'. The first matching line wins.
  PROGRAM is an absolute path, run as a child of the daemon (in its namespaces
  and its own process group, stdin /dev/null, stdout and stderr to the daemon's
  stderr) with authority over the construction assumed, so `keyctl instantiate`,
  `keyctl reject` and `keyctl negate` work as under /sbin/request-key. Handlers
  run concurrently. Or PROGRAM is a builtin:
      builtin:instantiate [TEXT]   instantiate with TEXT (default %c)
      builtin:negate [SECONDS]     negate (requests fail with ENOKEY)
  Substitutions anywhere in PROGRAM and ARGS: %k key serial, %t type,
  %d description, %c callout information, %u requester's uid, %g key's gid,
  %% a literal %. %T, %P and %S (the requester's thread, process and session
  keyrings) become 0: they are not reachable from the daemon, and the kernel
  has already linked the key where the requester asked. An unknown %x, or a
  malformed line, is refused at start-up as FILE:LINE: REASON.
  Without --config every request is answered by
      create * * * builtin:instantiate %c

ERRORS (how a construction fails, as seen by the requester)
  ENOKEY        no line matches, or the handler exited 0 without answering
  EKEYREJECTED  the handler exited non-zero, was killed, or could not start
  ETIMEDOUT     the handler ran longer than --handler-timeout (it is killed)
  ECANCELED     the daemon stopped while the construction was pending
  Negative results are cached for --negative-timeout seconds.

EXIT STATUS
  0 stopped by a signal; 1 could not register or serve (e.g. the keyagent
  module is not loaded); 2 usage or configuration error; with -- COMMAND,
  COMMAND's status (127 if it cannot be found, 126 if it cannot be run).";

/// Answer request_key() upcalls for key types through the keyagent module.
#[derive(Parser, Debug)]
#[command(name = "keyagentd", version, after_help = AFTER_HELP)]
struct Cli {
    /// Key type to answer constructions for (repeatable)
    #[arg(
        short = 't',
        long = "type",
        value_name = "TYPE",
        required_unless_present = "check"
    )]
    types: Vec<String>,

    /// Realtime signal the module notifies the daemon with (SIGRTMIN..SIGRTMAX)
    #[arg(short, long, value_name = "N", default_value_t = 40)]
    signal: i32,

    /// Which requesters to serve: session (those whose session keyring holds
    /// the agent keys) or net (those and the kernel's own requests in this
    /// network namespace, such as dns_query() for NFS and CIFS; needs
    /// CAP_NET_ADMIN over the namespace)
    #[arg(long, value_name = "SCOPE", default_value = "session", value_parser = ["session", "net"])]
    scope: String,

    /// Handler configuration: a request-key.conf-format file or a directory of
    /// *.conf files [default: instantiate every key with its callout information]
    #[arg(short, long, value_name = "PATH")]
    config: Option<PathBuf>,

    /// Seconds a handler may run before it is killed and the key rejected with ETIMEDOUT
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..=86400)
    )]
    handler_timeout: u64,

    /// Seconds a key rejected by the daemon stays negative (requests fail at once meanwhile)
    #[arg(long, value_name = "SECS", default_value_t = 1)]
    negative_timeout: u32,

    /// Check the configuration, print how many handler lines it has, and exit
    #[arg(long)]
    check: bool,

    /// More log output: -v debug, -vv trace [default: info]
    #[arg(short, long, action = ArgAction::Count)]
    verbose: u8,

    /// Less log output: -q warnings and errors, -qq errors only
    #[arg(short, long, action = ArgAction::Count, conflicts_with = "verbose")]
    quiet: u8,

    /// Command to run in a new session keyring served by the daemon
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<OsString>,
}

fn init_logging(verbose: u8, quiet: u8) {
    let level = match (verbose, quiet) {
        (0, 0) => LevelFilter::Info,
        (1, _) => LevelFilter::Debug,
        (v, _) if v >= 2 => LevelFilter::Trace,
        (_, 1) => LevelFilter::Warn,
        _ => LevelFilter::Error,
    };
    let pid = std::process::id();
    env_logger::Builder::new()
        .filter_level(level)
        .target(env_logger::Target::Stderr)
        .format(move |buf, record| {
            let level = record.level().as_str().to_ascii_lowercase();
            writeln!(buf, "keyagentd[{pid}]: {level}: {}", record.args())
        })
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);

    let config = match &cli.config {
        None => Config::builtin_default(),
        Some(path) => match Config::load(path) {
            Ok(config) => config,
            Err(err) => {
                error!("{err}");
                return ExitCode::from(EXIT_USAGE);
            }
        },
    };
    if cli.check {
        println!("{} handler line(s)", config.rules().len());
        return ExitCode::SUCCESS;
    }
    for rule in config.rules() {
        if let config::Action::Run { program, .. } = &rule.action {
            let path = program.source();
            if !path.contains('%') && !std::path::Path::new(path).exists() {
                log::warn!("{}: {path} does not exist", rule.origin);
            }
        }
    }
    if config.rules().is_empty() {
        log::warn!("the configuration has no handler lines: every request will fail with ENOKEY");
    }
    for (index, key_type) in cli.types.iter().enumerate() {
        if cli.types[..index].contains(key_type) {
            error!("--type {key_type} given twice");
            return ExitCode::from(EXIT_USAGE);
        }
    }
    let usable = signals::usable_realtime_signals();
    if !usable.contains(&cli.signal) {
        error!(
            "--signal {}: not a realtime signal applications may use here ({}..{})",
            cli.signal,
            usable.start(),
            usable.end()
        );
        return ExitCode::from(EXIT_USAGE);
    }

    let settings = daemon::Settings {
        types: cli.types,
        signal: cli.signal,
        net_scope: cli.scope == "net",
        config,
        handler_timeout: Duration::from_secs(cli.handler_timeout),
        negative_timeout: cli.negative_timeout,
        command: cli.command,
    };
    match daemon::run(settings) {
        Ok(status) => ExitCode::from(status.clamp(0, 255) as u8),
        Err(err) => {
            error!("{err}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_options_and_command() {
        let cli = Cli::try_parse_from([
            "keyagentd",
            "-t",
            "user",
            "--type",
            "dns_resolver",
            "-s",
            "41",
            "-vv",
            "--",
            "sh",
            "-c",
            "exit 3",
        ])
        .unwrap();
        assert_eq!(cli.types, ["user", "dns_resolver"]);
        assert_eq!(cli.signal, 41);
        assert_eq!(cli.verbose, 2);
        assert_eq!(cli.handler_timeout, 10);
        assert_eq!(cli.command, ["sh", "-c", "exit 3"]);
        assert_eq!(cli.scope, "session");
        let cli =
            Cli::try_parse_from(["keyagentd", "-t", "dns_resolver", "--scope", "net"]).unwrap();
        assert_eq!(cli.scope, "net");
        assert!(Cli::try_parse_from(["keyagentd", "-t", "user", "--scope", "pid"]).is_err());
    }

    #[test]
    fn type_is_required_except_for_check() {
        assert!(Cli::try_parse_from(["keyagentd"]).is_err());
        assert!(Cli::try_parse_from(["keyagentd", "--check", "-c", "/x"]).is_ok());
        assert!(
            Cli::try_parse_from(["keyagentd", "-t", "user", "--handler-timeout", "0"]).is_err()
        );
    }
}
