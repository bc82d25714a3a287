//! keyagentd: answers request_key() upcalls through the keyagent module,
//! running request-key.conf-style handlers in the daemon's own namespaces.

mod channel;
mod config;
mod daemon;
mod delivery;
mod keys;
mod logging;
mod notify;
mod runner;
mod signals;
mod spawn;
mod template;

use clap::{ArgAction, Parser};
use config::{Action, Config, Source};
use log::{error, LevelFilter};
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use template::Arg;

/// Exit status for usage and configuration errors.
const EXIT_USAGE: u8 = 2;
/// Exit status for failures to start or keep serving.
const EXIT_FAILURE: u8 = 1;

const AFTER_HELP: &str = "\
Registers as the keyagent agent for each TYPE (a \"keyagent\" key in the session
keyring), prints \"TYPE SERIAL\" for each agent key on stdout, then answers the
constructions of keys of those types requested by processes whose session
keyring holds the agent keys, running the handlers of a request-key.conf(5)
configuration as /sbin/request-key would. Runs in the foreground until SIGTERM
or SIGINT; SIGHUP reloads the configuration (a file with errors is not taken:
the previous configuration stays, and the error is logged).

With -- COMMAND, the daemon first joins a new session keyring, registers there
and runs COMMAND in it (with KEYAGENTD_PID set); COMMAND's requests are served
by the daemon. SIGTERM and SIGINT are passed on to COMMAND; when COMMAND exits
the daemon cleans up and exits with COMMAND's status (128+N if killed by signal
N). Nothing is printed on stdout in this mode.

CONFIGURATION
  -R reads what /sbin/request-key reads: /etc/request-key.d/*.conf, then
  /etc/request-key.conf (each skipped if missing); -l the same names in the
  current directory; -c a file, or a directory whose *.conf files are read in
  name order (repeatable, read in the order given). Lines are read as keyutils'
  request-key reads them:
      OP TYPE DESCRIPTION CALLOUT PROGRAM [ARGS...]
  white-space separated, no quoting; a line beginning with '#' or white space is
  a comment. OP, TYPE, DESCRIPTION and CALLOUT hold at most one '*' wildcard;
  the matching line whose wildcards skip the fewest characters wins (OP first,
  then TYPE, DESCRIPTION, CALLOUT), the first read on a tie. PROGRAM runs in /,
  as a child of the daemon (its namespaces, its own process group), with
  argv[0] the part after the last '/', the construction's authority assumed,
  the kernel's environment for request-key (HOME=/ PATH=/sbin:/bin:/usr/sbin:
  /usr/bin; --keep-env: the daemon's), stdin /dev/null and its output logged.
  |PROGRAM is piped: the callout information on its stdin, the key instantiated
  with its stdout (at most 32768 bytes) if it exits 0, else the best 'negate'
  line runs. Whole arguments are substituted: %o operation, %k key serial, %t
  type, %d description, %c callout information, %u and %g the key's
  (requester's) uid and gid, %T and %P 0, %S the keyring the key is linked into
  (the requester's session keyring unless it asked for another),
  %{TYPE:DESCRIPTION} the payload of that key in the requester's keyrings,
  %%... a literal %.... keyagentd's builtins:
      builtin:instantiate [TEXT]   instantiate with TEXT (default %c)
      builtin:negate [SECONDS]     negate (requests fail with ENOKEY)
  take quoted arguments with inline substitutions. Errors are refused at
  start-up as FILE:LINE: REASON (lines whose OP can never match are ignored, as
  request-key ignores them). Without a configuration every request is answered
  by
      create * * * builtin:instantiate %c

DELIVERY (--delivery channel, the default, or signal)
  With signals the daemon assumes each construction's authority (as request-key
  does), and its handlers inherit it: programs such as key.dns_resolver,
  request-key-debug.sh and keyctl answer with it themselves, and %S and
  %{TYPE:DESCRIPTION} are read through it. The channel (/dev/keyagent) hands
  over each construction as a record, and the module keeps the authority: the
  daemon answers with a write, and nothing it runs holds the authority. So a
  type is served by the channel only if every line that may run for it is a
  builtin or a piped |PROGRAM (answered with its stdout) using neither %S nor
  %{TYPE:DESCRIPTION}; counting, for a type with a piped line, the negate lines
  its failures run. Any other type is served by signal (-s), as it is when the
  module offers no /dev/keyagent; the log says which and why. A reload that
  changes this moves the type with a new agent key (logged). Debian's stock
  request-key.conf answers every type with keyctl: with -R, all go by signal.

ERRORS (how a construction nobody answered fails; --errors request-key:
ENOKEY for 60 s in every case but ETIMEDOUT)
  ENOKEY        no line matches, or the handler exited 0 without answering
  EKEYREJECTED  the handler exited non-zero, was killed, or could not start
  ETIMEDOUT     the handler ran longer than --handler-timeout (it is killed)
  ECANCELED     the daemon stopped while the construction was pending
  Negative results are cached for --negative-timeout seconds.

DEBUGGING (request-key's -d, -D, -l, -n, -v)
  -d serves but runs no handler: logs what would run and fails the request.
  -D KEYDESC [--callout INFO] prints the line chosen for a key described as
  TYPE;UID;GID;PERM;DESCRIPTION and the command it would run, and exits.
  -n logs to stderr only; -v more detail.

EXIT STATUS
  0 stopped by a signal; 1 could not register or serve (e.g. the keyagent
  module is not loaded, or /dev/keyagent exists but cannot be opened); 2 usage or configuration error; with -- COMMAND,
  COMMAND's status (127 if it cannot be found, 126 if it cannot be run).";

/// Answer request_key() upcalls through the keyagent module with request-key.conf handlers.
#[derive(Parser, Debug)]
#[command(name = "keyagentd", version, after_help = AFTER_HELP)]
struct Cli {
    /// Key type to answer constructions for (repeatable)
    #[arg(
        short = 't',
        long = "type",
        value_name = "TYPE",
        required_unless_present_any = ["check", "test_key"]
    )]
    types: Vec<String>,

    /// How the module hands constructions over (see DELIVERY)
    #[arg(long, value_name = "HOW", value_enum, default_value_t = delivery::Choice::Channel)]
    delivery: delivery::Choice,

    /// Realtime signal the module notifies the daemon with, for the types
    /// delivered by signal (SIGRTMIN..SIGRTMAX)
    #[arg(short, long, value_name = "N", default_value_t = 40)]
    signal: i32,

    /// Which requesters to serve: session (those whose session keyring holds
    /// the agent keys) or net (those and the kernel's own requests in this
    /// network namespace, such as dns_query() for NFS and CIFS; needs
    /// CAP_NET_ADMIN over the namespace)
    #[arg(long, value_name = "SCOPE", default_value = "session", value_parser = ["session", "net"])]
    scope: String,

    /// Handler configuration: a request-key.conf-format file or a directory of
    /// *.conf files (repeatable) [default: instantiate every key with its callout information]
    #[arg(short, long, value_name = "PATH")]
    config: Vec<PathBuf>,

    /// Read what /sbin/request-key reads: /etc/request-key.d/*.conf, then /etc/request-key.conf
    #[arg(short = 'R', long, conflicts_with = "local")]
    request_key_config: bool,

    /// Read request-key.d/*.conf and request-key.conf in the current directory (request-key -l)
    #[arg(short, long)]
    local: bool,

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

    /// Also link the agent keys into KEYRING (@u, @us, @s or a serial), so that
    /// requesters whose session keyrings nest it are served (repeatable)
    #[arg(long, value_name = "KEYRING")]
    link: Vec<String>,

    /// Give handlers the daemon's environment instead of the kernel's
    /// HOME=/ PATH=/sbin:/bin:/usr/sbin:/usr/bin
    #[arg(long)]
    keep_env: bool,

    /// Most handler processes running at once; further constructions wait in order
    #[arg(
        long,
        value_name = "N",
        default_value_t = 32,
        value_parser = clap::value_parser!(u64).range(1..=4096)
    )]
    max_handlers: u64,

    /// How constructions nobody answered fail
    #[arg(long, value_name = "STYLE", value_enum, default_value_t = daemon::Errors::Keyagentd)]
    errors: daemon::Errors,

    /// Run no handler: log what would run and fail the request (request-key -d)
    #[arg(short = 'd', long)]
    dry_run: bool,

    /// Check the configuration, print how many handler lines it has, and exit
    #[arg(long)]
    check: bool,

    /// Print the line and command chosen for a key described as
    /// TYPE;UID;GID;PERM;DESCRIPTION, and exit (request-key -D)
    #[arg(short = 'D', long = "test-key", value_name = "KEYDESC")]
    test_key: Option<String>,

    /// The callout information for --test-key
    #[arg(long, value_name = "INFO", default_value = "", requires = "test_key")]
    callout: String,

    /// Where log lines go
    #[arg(long, value_name = "WHERE", value_enum, default_value_t = logging::Choice::Auto)]
    log: logging::Choice,

    /// Log to stderr only, never syslog (request-key -n); same as --log stderr
    #[arg(short = 'n', conflicts_with = "log")]
    no_syslog: bool,

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

fn level(verbose: u8, quiet: u8) -> LevelFilter {
    match (verbose, quiet) {
        (0, 0) => LevelFilter::Info,
        (1, _) => LevelFilter::Debug,
        (v, _) if v >= 2 => LevelFilter::Trace,
        (_, 1) => LevelFilter::Warn,
        _ => LevelFilter::Error,
    }
}

/// The configuration sources the options name (`None`: the built-in default).
fn sources(cli: &Cli) -> Result<Option<Vec<Source>>, String> {
    let mut sources = Vec::new();
    if cli.request_key_config {
        sources.extend(Source::request_key(std::path::Path::new("/etc")));
    }
    if cli.local {
        let here = std::env::current_dir().map_err(|err| format!("current directory: {err}"))?;
        sources.extend(Source::request_key(&here));
    }
    for path in &cli.config {
        // Absolute, so that a reload reads the same file.
        let path = std::path::absolute(path).unwrap_or_else(|_| path.clone());
        sources.push(Source::required(path));
    }
    Ok((!sources.is_empty()).then_some(sources))
}

/// `-D`: what request-key -d -v would say about a key.
fn test_key(config: &Config, keydesc: &str, callout: &str) -> Result<String, String> {
    let fields: Vec<&str> = keydesc.splitn(5, ';').collect();
    let [key_type, uid, gid, _perm, description] = fields[..] else {
        return Err(format!(
            "-D {keydesc:?}: expected TYPE;UID;GID;PERM;DESCRIPTION (e.g. user;0;0;1f0000;debug:1234)"
        ));
    };
    let number = |text: &str| {
        text.parse::<u32>()
            .map_err(|_| format!("-D: {text:?} is not a number"))
    };
    let request = template::Request {
        operation: config::OP_CREATE,
        serial: 0,
        key_type: key_type.to_string(),
        description: description.as_bytes().to_vec(),
        callout: callout.as_bytes().to_vec(),
        uid: number(uid)?,
        gid: number(gid)?,
        thread_keyring: 0,
        process_keyring: 0,
        session_keyring: 0,
        requester_pid: 0,
        requester_uid: 0,
    };
    let Some((rule, wildness)) = config.find(
        config::OP_CREATE,
        key_type,
        description.as_bytes(),
        callout.as_bytes(),
    ) else {
        return Ok("no matching line: the request fails with ENOKEY\n".to_string());
    };
    let mut out = format!(
        "line: {} (wildness {},{},{},{})\n",
        rule.label(),
        wildness[0],
        wildness[1],
        wildness[2],
        wildness[3]
    );
    match &rule.action {
        Action::Run {
            path,
            argv0,
            args,
            piped,
        } => {
            out += &format!(
                "{} {}\n",
                if *piped { "pipe through" } else { "run" },
                String::from_utf8_lossy(path)
            );
            out += &format!("argv[0] = {:?}\n", String::from_utf8_lossy(argv0));
            for (i, arg) in args.iter().enumerate() {
                let value = match arg {
                    Arg::Literal(text) => String::from_utf8_lossy(text).into_owned(),
                    Arg::Macro(var) => String::from_utf8_lossy(&var.value(&request)).into_owned(),
                    Arg::KeySub {
                        key_type,
                        description,
                    } => format!("<payload of {key_type} key {description:?}>"),
                };
                out += &format!("argv[{}] = {value:?}\n", i + 1);
            }
            if *piped {
                out += &format!("stdin: {callout:?}\n");
            }
        }
        Action::Instantiate(text) => {
            out += &format!(
                "instantiate with {:?}\n",
                String::from_utf8_lossy(&text.expand(&request))
            );
        }
        Action::Negate(seconds) => {
            out += &match seconds {
                Some(s) => format!("negate for {s}s\n"),
                None => "negate for --negative-timeout\n".to_string(),
            };
        }
    }
    Ok(out)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let choice = if cli.no_syslog {
        logging::Choice::Stderr
    } else {
        cli.log
    };
    let destination = logging::init(level(cli.verbose, cli.quiet), choice);

    let sources = match sources(&cli) {
        Ok(sources) => sources,
        Err(err) => {
            error!("{err}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let config = match &sources {
        None => Config::builtin_default(),
        Some(sources) => match Config::load(sources) {
            Ok(config) => config,
            Err(err) => {
                error!("{err}");
                return ExitCode::from(EXIT_USAGE);
            }
        },
    };
    for origin in config.unused() {
        log::debug!("{origin}: OP matches neither create nor negate: never used");
    }
    if let Some(keydesc) = &cli.test_key {
        return match test_key(&config, keydesc, &cli.callout) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                error!("{err}");
                ExitCode::from(EXIT_USAGE)
            }
        };
    }
    if cli.check {
        println!("{} handler line(s)", config.rules().len());
        return ExitCode::SUCCESS;
    }
    for rule in config.rules() {
        if let Action::Run { path, .. } = &rule.action {
            let path = String::from_utf8_lossy(path);
            if !std::path::Path::new(&*path).exists() {
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
    log::debug!("logging to {destination}");

    let mut links = Vec::new();
    for name in &cli.link {
        match keys::parse_keyring(name) {
            Some(serial) => links.push(serial),
            None => {
                error!("--link {name}: not @u, @us, @s, @p, @t or a key serial");
                return ExitCode::from(EXIT_USAGE);
            }
        }
    }

    let settings = daemon::Settings {
        types: cli.types,
        links,
        keep_env: cli.keep_env,
        delivery: cli.delivery,
        signal: cli.signal,
        net_scope: cli.scope == "net",
        sources,
        config,
        handler_timeout: Duration::from_secs(cli.handler_timeout),
        negative_timeout: cli.negative_timeout,
        max_handlers: cli.max_handlers as usize,
        errors: cli.errors,
        dry_run: cli.dry_run,
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
        assert_eq!(cli.delivery, delivery::Choice::Channel);
        let cli = Cli::try_parse_from(["keyagentd", "-t", "user", "--delivery", "signal"]).unwrap();
        assert_eq!(cli.delivery, delivery::Choice::Signal);
        assert!(Cli::try_parse_from(["keyagentd", "-t", "user", "--delivery", "pipe"]).is_err());
        let cli =
            Cli::try_parse_from(["keyagentd", "-t", "dns_resolver", "--scope", "net"]).unwrap();
        assert_eq!(cli.scope, "net");
        assert!(Cli::try_parse_from(["keyagentd", "-t", "user", "--scope", "pid"]).is_err());
        assert_eq!(cli.max_handlers, 32);
        assert_eq!(cli.errors, daemon::Errors::Keyagentd);
        assert_eq!(cli.log, logging::Choice::Auto);
    }

    #[test]
    fn test_key_explains_like_request_key_d() {
        let config = config::parse(
            b"create user debug:* * /usr/share/keyutils/request-key-debug.sh %k %d %c %S\n\
              create user debug:loop:* * |/bin/cat\n",
            "f",
        )
        .unwrap();
        let out = test_key(&config, "user;0;0;1f0000;debug:1234", "spoon").unwrap();
        assert_eq!(
            out,
            [
                "line: f:1 /usr/share/keyutils/request-key-debug.sh (wildness 0,0,4,5)",
                "run /usr/share/keyutils/request-key-debug.sh",
                "argv[0] = \"request-key-debug.sh\"",
                "argv[1] = \"0\"",
                "argv[2] = \"debug:1234\"",
                "argv[3] = \"spoon\"",
                "argv[4] = \"0\"",
                "",
            ]
            .join("\n")
        );
        let out = test_key(&config, "user;0;0;1f0000;debug:loop:x", "abc").unwrap();
        assert!(
            out.starts_with("line: f:2 |/bin/cat (wildness 0,0,1,3)\npipe through /bin/cat\n"),
            "{out}"
        );
        assert!(out.ends_with("stdin: \"abc\"\n"), "{out}");
        assert!(test_key(&config, "logon;0;0;0;x", "")
            .unwrap()
            .starts_with("no matching line"));
        assert!(test_key(&config, "user", "").is_err());
    }

    #[test]
    fn type_is_required_except_for_check() {
        assert!(Cli::try_parse_from(["keyagentd"]).is_err());
        assert!(Cli::try_parse_from(["keyagentd", "--check", "-c", "/x"]).is_ok());
        assert!(Cli::try_parse_from(["keyagentd", "-R", "-D", "user;0;0;0;x"]).is_ok());
        assert!(Cli::try_parse_from(["keyagentd", "-t", "user", "--max-handlers", "0"]).is_err());
        assert!(Cli::try_parse_from(["keyagentd", "-t", "user", "-n", "--log", "syslog"]).is_err());
        assert!(
            Cli::try_parse_from(["keyagentd", "-t", "user", "--handler-timeout", "0"]).is_err()
        );
    }
}
