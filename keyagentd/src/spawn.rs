//! Starting children with a clean signal state.
//!
//! The daemon blocks the signals it reads from its signalfd, and Rust ignores
//! SIGPIPE; a child would inherit both through fork and exec. posix_spawn
//! resets them in the child.

use nix::errno::Errno;
use nix::spawn::{
    posix_spawn, posix_spawnp, PosixSpawnAttr, PosixSpawnFileActions, PosixSpawnFlags,
};
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

/// Starts handler processes.
pub struct Spawner {
    devnull: OwnedFd,
}

impl Spawner {
    pub fn new() -> std::io::Result<Spawner> {
        Ok(Spawner {
            devnull: File::open("/dev/null")?.into(),
        })
    }

    /// Starts `argv[0]` (an absolute path) in its own process group, with
    /// stdin from /dev/null and stdout going to the daemon's stderr.
    pub fn handler(&self, argv: &[OsString]) -> Result<Pid, Errno> {
        let args = argv
            .iter()
            .map(|arg| c_string(arg.as_bytes()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut actions = PosixSpawnFileActions::init()?;
        actions.add_dup2(self.devnull.as_raw_fd(), libc::STDIN_FILENO)?;
        actions.add_dup2(libc::STDERR_FILENO, libc::STDOUT_FILENO)?;
        let mut attr = clean_signal_state(PosixSpawnFlags::POSIX_SPAWN_SETPGROUP)?;
        attr.set_pgroup(Pid::from_raw(0))?;
        posix_spawn(
            args[0].as_c_str(),
            &actions,
            &attr,
            &args,
            &environment(&[])?,
        )
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

    #[test]
    fn handler_has_own_process_group_and_null_stdin() {
        let spawner = Spawner::new().unwrap();
        let script = r#"test "$(cut -d' ' -f5 /proc/$$/stat)" = $$ && ! read line"#;
        let pid = spawner.handler(&args(&["/bin/sh", "-c", script])).unwrap();
        assert_eq!(exit_code(pid), 0);
    }

    #[test]
    fn missing_programs_are_reported() {
        let spawner = Spawner::new().unwrap();
        assert_eq!(
            spawner.handler(&args(&["/nonexistent/handler"])),
            Err(Errno::ENOENT)
        );
        assert_eq!(
            command(&args(&["no-such-command-here"]), &[]),
            Err(Errno::ENOENT)
        );
    }
}
