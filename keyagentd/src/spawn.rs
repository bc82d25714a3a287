//! Starting children with a clean signal state.
//!
//! The daemon blocks the signals it reads from its signalfd, and Rust ignores
//! SIGPIPE; a child would inherit both through fork and exec. posix_spawn
//! resets them in the child.

use nix::errno::Errno;
use nix::spawn::{posix_spawnp, PosixSpawnAttr, PosixSpawnFileActions, PosixSpawnFlags};
use nix::sys::signal::{SigSet, Signal};
use nix::unistd::Pid;
use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

fn c_string(bytes: &[u8]) -> Result<CString, Errno> {
    CString::new(bytes).map_err(|_| Errno::EINVAL)
}

/// Attributes with an empty signal mask and default SIGPIPE handling.
fn clean_signal_state(extra: PosixSpawnFlags) -> Result<PosixSpawnAttr, Errno> {
    let mut attr = PosixSpawnAttr::init()?;
    attr.set_flags(
        PosixSpawnFlags::POSIX_SPAWN_SETSIGMASK | PosixSpawnFlags::POSIX_SPAWN_SETSIGDEF | extra,
    )?;
    attr.set_sigmask(&SigSet::empty())?;
    attr.set_sigdefault(&SigSet::from(Signal::SIGPIPE))?;
    Ok(attr)
}

/// The daemon's environment plus `extra` (`NAME=value` entries).
fn environment(extra: &[(&str, String)]) -> Result<Vec<CString>, Errno> {
    let mut env = Vec::new();
    for (name, value) in std::env::vars_os() {
        if extra
            .iter()
            .any(|(extra_name, _)| OsStr::new(extra_name) == name)
        {
            continue;
        }
        let mut entry = name.into_vec();
        entry.push(b'=');
        entry.extend_from_slice(value.as_bytes());
        env.push(c_string(&entry)?);
    }
    for (name, value) in extra {
        env.push(c_string(format!("{name}={value}").as_bytes())?);
    }
    Ok(env)
}

/// The daemon's ends of a handler's standard streams, non-blocking.
pub struct HandlerIo {
    /// Piped handlers: their stdin, for the callout information.
    pub stdin: Option<OwnedFd>,
    /// Piped handlers: their stdout (the payload). Others: stdout and stderr.
    pub stdout: OwnedFd,
    /// Piped handlers: their stderr.
    pub stderr: Option<OwnedFd>,
}

/// A pipe whose ends are closed on exec; the first end is made non-blocking
/// when `nonblocking_read`, else the second.
fn pipe(nonblocking_read: bool) -> Result<(OwnedFd, OwnedFd), Errno> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let ours = if nonblocking_read { &read } else { &write };
    nix::fcntl::fcntl(
        ours,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )?;
    Ok((read, write))
}

/// Converts a posix_spawn*() return value.
fn check(ret: libc::c_int) -> Result<(), Errno> {
    if ret == 0 {
        Ok(())
    } else {
        Err(Errno::from_raw(ret))
    }
}

/// posix_spawn attributes and file actions, destroyed when dropped.
struct RawSpawn {
    attr: libc::posix_spawnattr_t,
    actions: libc::posix_spawn_file_actions_t,
}

impl RawSpawn {
    fn new() -> Result<Box<RawSpawn>, Errno> {
        // SAFETY: both are plain C structs, initialised right below before use.
        let mut raw: Box<RawSpawn> = Box::new(unsafe { std::mem::zeroed() });
        // SAFETY: initialising the zeroed structs in place.
        check(unsafe { libc::posix_spawnattr_init(&mut raw.attr) })?;
        if let Err(err) = check(unsafe { libc::posix_spawn_file_actions_init(&mut raw.actions) }) {
            // SAFETY: attr was initialised above.
            unsafe { libc::posix_spawnattr_destroy(&mut raw.attr) };
            return Err(err);
        }
        Ok(raw)
    }
}

impl Drop for RawSpawn {
    fn drop(&mut self) {
        // SAFETY: both were initialised in new().
        unsafe {
            libc::posix_spawn_file_actions_destroy(&mut self.actions);
            libc::posix_spawnattr_destroy(&mut self.attr);
        }
    }
}

/// The environment the kernel gives /sbin/request-key (and so its handlers).
pub const KERNEL_ENVIRONMENT: [&str; 2] = ["HOME=/", "PATH=/sbin:/bin:/usr/sbin:/usr/bin"];

/// Starts handler processes.
pub struct Spawner {
    devnull: OwnedFd,
    /// The kernel's environment for handlers, or the daemon's.
    kernel_environment: bool,
}

impl Spawner {
    pub fn new(kernel_environment: bool) -> std::io::Result<Spawner> {
        Ok(Spawner {
            devnull: File::open("/dev/null")?.into(),
            kernel_environment,
        })
    }

    /// Starts the program at `path` with `argv`, as request-key runs its
    /// handlers: in /, in its own process group, with a clean signal state.
    /// A piped handler gets three pipes; another stdin from /dev/null and one
    /// pipe for stdout and stderr.
    pub fn handler(
        &self,
        path: &[u8],
        argv: &[Vec<u8>],
        piped: bool,
    ) -> Result<(Pid, HandlerIo), Errno> {
        let path = c_string(path)?;
        let args = argv
            .iter()
            .map(|arg| c_string(arg))
            .collect::<Result<Vec<_>, _>>()?;
        let env = if self.kernel_environment {
            KERNEL_ENVIRONMENT
                .iter()
                .map(|entry| c_string(entry.as_bytes()))
                .collect::<Result<Vec<_>, _>>()?
        } else {
            environment(&[])?
        };
        let (stdin, child_stdin) = if piped {
            let (read, write) = pipe(false)?;
            (Some(write), Some(read))
        } else {
            (None, None)
        };
        let (stdout, child_stdout) = pipe(true)?;
        let (stderr, child_stderr) = if piped {
            let (read, write) = pipe(true)?;
            (Some(read), Some(write))
        } else {
            (None, None)
        };
        let stdin_fd = child_stdin
            .as_ref()
            .map_or(self.devnull.as_raw_fd(), |fd| fd.as_raw_fd());
        let stderr_fd = child_stderr
            .as_ref()
            .map_or(child_stdout.as_raw_fd(), |fd| fd.as_raw_fd());

        let mut raw = RawSpawn::new()?;
        let empty = *SigSet::empty().as_ref();
        let sigpipe = *SigSet::from(Signal::SIGPIPE).as_ref();
        // SAFETY: raw's structs are initialised; the sets and the path are
        // valid for the calls.
        unsafe {
            check(libc::posix_spawnattr_setflags(
                &mut raw.attr,
                (libc::POSIX_SPAWN_SETSIGMASK
                    | libc::POSIX_SPAWN_SETSIGDEF
                    | libc::POSIX_SPAWN_SETPGROUP) as libc::c_short,
            ))?;
            check(libc::posix_spawnattr_setsigmask(&mut raw.attr, &empty))?;
            check(libc::posix_spawnattr_setsigdefault(&mut raw.attr, &sigpipe))?;
            check(libc::posix_spawnattr_setpgroup(&mut raw.attr, 0))?;
            check(libc::posix_spawn_file_actions_adddup2(
                &mut raw.actions,
                stdin_fd,
                0,
            ))?;
            check(libc::posix_spawn_file_actions_adddup2(
                &mut raw.actions,
                child_stdout.as_raw_fd(),
                1,
            ))?;
            check(libc::posix_spawn_file_actions_adddup2(
                &mut raw.actions,
                stderr_fd,
                2,
            ))?;
            check(libc::posix_spawn_file_actions_addchdir_np(
                &mut raw.actions,
                c"/".as_ptr(),
            ))?;
        }
        let mut argv_p: Vec<*mut libc::c_char> =
            args.iter().map(|a| a.as_ptr().cast_mut()).collect();
        argv_p.push(std::ptr::null_mut());
        let mut env_p: Vec<*mut libc::c_char> = env.iter().map(|e| e.as_ptr().cast_mut()).collect();
        env_p.push(std::ptr::null_mut());
        let mut pid: libc::pid_t = 0;
        // SAFETY: every pointer is valid and NUL-terminated for the call.
        check(unsafe {
            libc::posix_spawn(
                &mut pid,
                path.as_ptr(),
                &raw.actions,
                &raw.attr,
                argv_p.as_ptr(),
                env_p.as_ptr(),
            )
        })?;
        Ok((
            Pid::from_raw(pid),
            HandlerIo {
                stdin,
                stdout,
                stderr,
            },
        ))
    }
}

/// Starts the `-- COMMAND` (looked up in PATH) with the daemon's stdio and
/// `extra_env` added to its environment.
pub fn command(argv: &[OsString], extra_env: &[(&str, String)]) -> Result<Pid, Errno> {
    let args = argv
        .iter()
        .map(|arg| c_string(arg.as_bytes()))
        .collect::<Result<Vec<_>, _>>()?;
    let actions = PosixSpawnFileActions::init()?;
    let attr = clean_signal_state(PosixSpawnFlags::empty())?;
    posix_spawnp(&args[0], &actions, &attr, &args, &environment(extra_env)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::wait::{waitpid, WaitStatus};

    fn exit_code(pid: Pid) -> i32 {
        match waitpid(pid, None).unwrap() {
            WaitStatus::Exited(_, code) => code,
            other => panic!("{other:?}"),
        }
    }

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn command_gets_clean_signals_and_extra_environment() {
        // Checked by grep itself: a shell could clear its signal mask.
        let nothing_blocked = ["grep", "-q", "^SigBlk:[[:space:]]*0*$", "/proc/self/status"];
        // SIGPIPE is bit 12 of the mask, in the fourth hex digit from the right.
        let sigpipe_default = [
            "grep",
            "-q",
            "^SigIgn:[[:space:]]*[0-9a-f]*[02468ace][0-9a-f][0-9a-f][0-9a-f]$",
            "/proc/self/status",
        ];
        let environment = ["sh", "-c", r#"test "$KEYAGENTD_TEST" = yes"#];
        SigSet::from(Signal::SIGUSR1).thread_block().unwrap();
        let extra = [("KEYAGENTD_TEST", "yes".to_string())];
        let pids: Vec<Pid> = [&nothing_blocked[..], &sigpipe_default, &environment]
            .iter()
            .map(|argv| command(&args(argv), &extra).unwrap())
            .collect();
        SigSet::from(Signal::SIGUSR1).thread_unblock().unwrap();
        let codes: Vec<i32> = pids.into_iter().map(exit_code).collect();
        assert_eq!(codes, [0, 0, 0]);
    }

    /// Everything a handler wrote on its stdout pipe, once it has exited.
    fn output(fd: OwnedFd) -> String {
        let mut text = String::new();
        let mut buf = [0u8; 4096];
        loop {
            match nix::unistd::read(&fd, &mut buf) {
                Ok(0) => return text,
                Ok(n) => text.push_str(std::str::from_utf8(&buf[..n]).unwrap()),
                Err(Errno::EAGAIN) => std::thread::sleep(std::time::Duration::from_millis(5)),
                Err(err) => panic!("{err}"),
            }
        }
    }

    fn bytes(list: &[&str]) -> Vec<Vec<u8>> {
        list.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn handler_runs_in_root_in_own_process_group_with_null_stdin() {
        let spawner = Spawner::new(true).unwrap();
        let script = r#"test "$(cut -d' ' -f5 /proc/$$/stat)" = $$ && ! read line && pwd && echo "$0" >&2 && echo "$HOME $PATH""#;
        let (pid, io) = spawner
            .handler(b"/bin/sh", &bytes(&["handler-name", "-c", script]), false)
            .unwrap();
        assert!(io.stdin.is_none() && io.stderr.is_none());
        assert_eq!(exit_code(pid), 0);
        assert_eq!(
            output(io.stdout),
            "/\nhandler-name\n/ /sbin:/bin:/usr/sbin:/usr/bin\n"
        );
    }

    #[test]
    fn piped_handler_gets_three_pipes() {
        let spawner = Spawner::new(true).unwrap();
        let script = "read line; echo \"out:$line\"; echo err >&2";
        let (pid, io) = spawner
            .handler(b"/bin/sh", &bytes(&["sh", "-c", script]), true)
            .unwrap();
        let stdin = io.stdin.unwrap();
        nix::unistd::write(&stdin, b"callout\n").unwrap();
        drop(stdin);
        assert_eq!(exit_code(pid), 0);
        assert_eq!(output(io.stdout), "out:callout\n");
        assert_eq!(output(io.stderr.unwrap()), "err\n");
    }

    #[test]
    fn missing_programs_are_reported() {
        let spawner = Spawner::new(true).unwrap();
        assert_eq!(
            spawner
                .handler(b"/nonexistent/handler", &bytes(&["handler"]), false)
                .err(),
            Some(Errno::ENOENT)
        );
        assert_eq!(
            command(&args(&["no-such-command-here"]), &[]),
            Err(Errno::ENOENT)
        );
    }
}
