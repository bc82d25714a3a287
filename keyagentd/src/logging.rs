//! Where log lines go: stderr (`keyagentd[PID]: LEVEL: MESSAGE`), the
//! journal (stderr lines with `<N>` priority prefixes, when stderr is the
//! service's journal stream), or syslog (datagrams to /dev/log, facility
//! daemon), as the handlers request-key runs log when stderr is not a
//! terminal.

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::sync::Mutex;

/// The syslog socket.
const SYSLOG_SOCKET: &str = "/dev/log";
/// syslog's LOG_DAEMON facility.
const FACILITY_DAEMON: u8 = 3 << 3;

/// What `--log` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Choice {
    /// stderr on a terminal; else the journal if stderr is its stream; else
    /// syslog if /dev/log accepts; else stderr
    Auto,
    /// stderr, as `keyagentd[PID]: LEVEL: MESSAGE`
    Stderr,
    /// syslog through /dev/log (stderr while it cannot be reached)
    Syslog,
}

/// Where lines go.
#[derive(Debug)]
enum Destination {
    Stderr,
    Journal,
    Syslog(Option<UnixDatagram>),
}

struct Logger {
    level: LevelFilter,
    pid: u32,
    destination: Mutex<Destination>,
}

/// syslog's severity of a level (also the journal's `<N>` prefix).
fn severity(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

fn connect_syslog() -> Option<UnixDatagram> {
    let socket = UnixDatagram::unbound().ok()?;
    socket.connect(SYSLOG_SOCKET).ok()?;
    Some(socket)
}

/// Whether stderr is the journal stream systemd gave this service
/// (`JOURNAL_STREAM=DEVICE:INODE`).
fn stderr_is_journal() -> bool {
    let Ok(value) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = value.split_once(':') else {
        return false;
    };
    let Ok(stat) = nix::sys::stat::fstat(std::io::stderr()) else {
        return false;
    };
    dev.parse() == Ok(stat.st_dev) && ino.parse() == Ok(stat.st_ino)
}

fn stderr_is_terminal() -> bool {
    nix::unistd::isatty(std::io::stderr()).unwrap_or(false)
}

fn choose(choice: Choice) -> Destination {
    match choice {
        Choice::Stderr => Destination::Stderr,
        Choice::Syslog => Destination::Syslog(connect_syslog()),
        Choice::Auto if stderr_is_terminal() => Destination::Stderr,
        Choice::Auto if stderr_is_journal() => Destination::Journal,
        Choice::Auto => match connect_syslog() {
            Some(socket) => Destination::Syslog(Some(socket)),
            None => Destination::Stderr,
        },
    }
}

/// One syslog datagram.
fn syslog_line(pid: u32, level: Level, message: &str) -> String {
    format!(
        "<{}>keyagentd[{pid}]: {message}",
        FACILITY_DAEMON | severity(level)
    )
}

fn stderr_line(pid: u32, level: Level, message: &str) -> String {
    format!(
        "keyagentd[{pid}]: {}: {message}\n",
        level.as_str().to_ascii_lowercase()
    )
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let message = record.args().to_string();
        let level = record.level();
        let mut destination = self.destination.lock().unwrap_or_else(|e| e.into_inner());
        match &mut *destination {
            Destination::Stderr => {
                let _ =
                    std::io::stderr().write_all(stderr_line(self.pid, level, &message).as_bytes());
            }
            Destination::Journal => {
                let line = format!("<{}>{message}\n", severity(level));
                let _ = std::io::stderr().write_all(line.as_bytes());
            }
            Destination::Syslog(socket) => {
                let datagram = syslog_line(self.pid, level, &message);
                // Reconnect once if syslog went away (restarted).
                for _ in 0..2 {
                    if socket.is_none() {
                        *socket = connect_syslog();
                    }
                    match socket {
                        Some(s) if s.send(datagram.as_bytes()).is_ok() => return,
                        _ => *socket = None,
                    }
                }
                let _ =
                    std::io::stderr().write_all(stderr_line(self.pid, level, &message).as_bytes());
            }
        }
    }

    fn flush(&self) {}
}

/// Installs the logger; returns where lines go, for the start-up message.
pub fn init(level: LevelFilter, choice: Choice) -> &'static str {
    let destination = choose(choice);
    let name = match destination {
        Destination::Stderr => "stderr",
        Destination::Journal => "the journal (stderr)",
        Destination::Syslog(Some(_)) => "syslog (/dev/log)",
        Destination::Syslog(None) => "syslog (/dev/log, unreachable: stderr meanwhile)",
    };
    let logger = Logger {
        level,
        pid: std::process::id(),
        destination: Mutex::new(destination),
    };
    if log::set_logger(Box::leak(Box::new(logger))).is_ok() {
        log::set_max_level(level);
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_formats() {
        assert_eq!(
            stderr_line(7, Level::Warn, "key 1: x"),
            "keyagentd[7]: warn: key 1: x\n"
        );
        assert_eq!(
            syslog_line(7, Level::Info, "hello"),
            "<30>keyagentd[7]: hello"
        );
        assert_eq!(syslog_line(7, Level::Error, "e"), "<27>keyagentd[7]: e");
        assert_eq!(severity(Level::Trace), 7);
    }

    #[test]
    fn syslog_datagrams_reach_the_socket() {
        let dir = std::env::temp_dir().join(format!("keyagentd-log-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log");
        let server = UnixDatagram::bind(&path).unwrap();
        let client = UnixDatagram::unbound().unwrap();
        client.connect(&path).unwrap();
        let logger = Logger {
            level: LevelFilter::Info,
            pid: 9,
            destination: Mutex::new(Destination::Syslog(Some(client))),
        };
        logger.log(
            &Record::builder()
                .args(format_args!("reloaded"))
                .level(Level::Info)
                .build(),
        );
        logger.log(
            &Record::builder()
                .args(format_args!("not sent"))
                .level(Level::Debug)
                .build(),
        );
        let mut buf = [0u8; 256];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"<30>keyagentd[9]: reloaded");
        server.set_nonblocking(true).unwrap();
        assert!(server.recv(&mut buf).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
