//! The key operations the daemon needs.
//!
//! `linux-keyutils` covers assuming authority, instantiating, reading,
//! invalidating and unlinking. It cannot add a key of a type it does not know
//! (`keyagent`), describe such keys, reject with a chosen error, or join a new
//! session keyring; those few calls are made here with `libc::syscall`.

use linux_keyutils::{Key, KeyError, KeyRing, KeyRingIdentifier, KeySerialId};
use nix::errno::Errno;
use std::cell::Cell;
use std::ffi::CString;

/// A key serial number, or one of the special `KEY_SPEC_*` ids.
pub type Serial = i32;

/// The type of the keys agents register with.
pub const AGENT_KEY_TYPE: &str = "keyagent";

/// The type of the authorisation keys the kernel creates for constructions.
const AUTH_KEY_TYPE: &str = ".request_key_auth";

fn errno_of(err: KeyError) -> Errno {
    match err {
        KeyError::AccessDenied => Errno::EACCES,
        KeyError::QuotaExceeded => Errno::EDQUOT,
        KeyError::BadAddress => Errno::EFAULT,
        KeyError::KeyExpired => Errno::EKEYEXPIRED,
        KeyError::KeyRevoked => Errno::EKEYREVOKED,
        KeyError::KeyRejected => Errno::EKEYREJECTED,
        KeyError::KeyDoesNotExist | KeyError::KeyringDoesNotExist => Errno::ENOKEY,
        KeyError::OutOfMemory => Errno::ENOMEM,
        KeyError::OperationNotSupported => Errno::EOPNOTSUPP,
        KeyError::PermissionDenied => Errno::EPERM,
        KeyError::MissingFileOrDirectory => Errno::ENOENT,
        KeyError::Unknown(code) => Errno::from_raw(code),
        _ => Errno::EINVAL,
    }
}

fn key(serial: Serial) -> Key {
    Key::from_id(KeySerialId::new(serial))
}

/// Gives the calling process its process keyring if it has none yet.
///
/// Registration needs one (the module links authorisation keys there), and
/// the module creates it during add_key() otherwise: that replaces the
/// caller's credentials while add_key() still uses the old ones (a
/// use-after-free the debug kernel's KASAN reports), so the daemon creates it
/// first.
pub fn ensure_process_keyring() -> Result<Serial, Errno> {
    // SAFETY: KEYCTL_GET_KEYRING_ID takes integers only.
    let serial = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            libc::KEYCTL_GET_KEYRING_ID as libc::c_long,
            libc::KEY_SPEC_PROCESS_KEYRING as libc::c_long,
            1 as libc::c_long,
        )
    };
    Errno::result(serial).map(|s| s as Serial)
}

/// How the module hands an agent its constructions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agent {
    /// This realtime signal, queued on the registering thread.
    Signal(i32),
    /// Records on this descriptor of the channel.
    Channel(std::os::fd::RawFd),
}

impl Agent {
    /// The `add_key()` payload registering this agent (with `net_scope`,
    /// also for the kernel's own constructions in its network namespace).
    pub fn payload(self, net_scope: bool) -> String {
        let agent = match self {
            Agent::Signal(signal) => signal.to_string(),
            Agent::Channel(fd) => format!("fd {fd}"),
        };
        if net_scope {
            agent + " net"
        } else {
            agent
        }
    }
}

/// Adds a `keyagent` key for `key_type` to the session keyring, making
/// `agent` the agent for that type (with `net_scope`, also for the kernel's
/// own constructions in its network namespace); returns the key's serial.
pub fn register_agent(key_type: &str, agent: Agent, net_scope: bool) -> Result<Serial, Errno> {
    let key_type_c = CString::new(AGENT_KEY_TYPE).expect("no NUL");
    let description = CString::new(key_type).map_err(|_| Errno::EINVAL)?;
    let payload = agent.payload(net_scope);
    // SAFETY: the type and description are NUL-terminated strings and the
    // payload a buffer of the given length, all alive during the call.
    let serial = unsafe {
        libc::syscall(
            libc::SYS_add_key,
            key_type_c.as_ptr(),
            description.as_ptr(),
            payload.as_ptr(),
            payload.len() as libc::c_long,
            libc::KEY_SPEC_SESSION_KEYRING as libc::c_long,
        )
    };
    Errno::result(serial).map(|s| s as Serial)
}

/// Replaces the calling process's session keyring with a new, empty one.
pub fn join_new_session_keyring() -> Result<Serial, Errno> {
    // SAFETY: a null name asks for a new anonymous keyring; no memory is passed.
    let serial = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            libc::KEYCTL_JOIN_SESSION_KEYRING as libc::c_long,
            std::ptr::null::<libc::c_char>(),
        )
    };
    Errno::result(serial).map(|s| s as Serial)
}

/// Stops an agent key from routing further constructions to this daemon:
/// invalidates it (which needs possession, so it comes first), else unlinks
/// it from the session keyring.
pub fn retire_agent_key(serial: Serial) -> Result<(), Errno> {
    let invalidated = key(serial).invalidate().map_err(errno_of);
    if invalidated.is_ok() {
        return Ok(());
    }
    KeyRing::from_special_id(KeyRingIdentifier::Session, false)
        .and_then(|session| session.unlink_key(key(serial)))
        .map_err(errno_of)
        .or(invalidated)
}

/// What `keyctl describe` reports about a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description {
    pub key_type: String,
    pub uid: u32,
    pub gid: u32,
    pub description: Vec<u8>,
}

impl Description {
    /// Parses the kernel's `type;uid;gid;perm;description`.
    fn parse(raw: &[u8]) -> Option<Description> {
        let mut fields = raw.splitn(5, |&b| b == b';');
        let key_type = String::from_utf8(fields.next()?.to_vec()).ok()?;
        let mut number =
            || -> Option<u32> { std::str::from_utf8(fields.next()?).ok()?.parse().ok() };
        let uid = number()?;
        let gid = number()?;
        fields.next()?;
        let description = fields.next()?.to_vec();
        Some(Description {
            key_type,
            uid,
            gid,
            description,
        })
    }
}

/// Describes any key, of any type (with authority assumed, also the key
/// under construction).
pub fn describe(serial: Serial) -> Result<Description, Errno> {
    let mut buffer = keyctl_into_buffer(libc::KEYCTL_DESCRIBE, serial)?;
    // The length includes the terminating NUL.
    buffer.pop();
    Description::parse(&buffer).ok_or(Errno::EINVAL)
}

/// A key's payload (a keyring's: the serials it links).
pub fn read(serial: Serial) -> Result<Vec<u8>, Errno> {
    keyctl_into_buffer(libc::KEYCTL_READ, serial)
}

/// Runs a keyctl operation that fills a buffer and returns the length it
/// needs, growing the buffer until the result fits. Small first: most
/// results are tens of bytes, and a large buffer costs more than a retry.
fn keyctl_into_buffer(operation: libc::c_uint, serial: Serial) -> Result<Vec<u8>, Errno> {
    let mut buffer = vec![0u8; 256];
    loop {
        // SAFETY: the kernel writes at most buffer.len() bytes into buffer.
        let needed = Errno::result(unsafe {
            libc::syscall(
                libc::SYS_keyctl,
                operation as libc::c_long,
                serial as libc::c_long,
                buffer.as_mut_ptr(),
                buffer.len() as libc::c_long,
            )
        })? as usize;
        if needed <= buffer.len() {
            buffer.truncate(needed);
            return Ok(buffer);
        }
        buffer.resize(needed, 0);
    }
}

/// Authority over one construction, assumed by the calling thread and
/// inherited by the children it starts; dropped when this value is dropped,
/// unless answering the construction already dropped it.
pub struct Authority {
    serial: Serial,
    held: Cell<bool>,
}

impl Authority {
    /// Assumes authority over the construction of `serial`. Fails
    /// (`EKEYREVOKED`, `ENOKEY`, `EPERM`) once that construction has ended.
    pub fn assume(serial: Serial) -> Result<Authority, Errno> {
        key(serial).assume_authority().map_err(errno_of)?;
        Ok(Authority {
            serial,
            held: Cell::new(true),
        })
    }

    /// Records the kernel's dropping of the authority, which a successful
    /// instantiate, reject or negate does.
    fn answered<T>(&self, result: Result<T, Errno>) -> Result<T, Errno> {
        if result.is_ok() {
            self.held.set(false);
        }
        result
    }

    /// The callout information of the construction.
    pub fn callout(&self) -> Result<Vec<u8>, Errno> {
        read(libc::KEY_SPEC_REQKEY_AUTH_KEY)
    }

    /// Instantiates the key with `payload`, linking it nowhere else.
    pub fn instantiate(&self, payload: &[u8]) -> Result<(), Errno> {
        self.answered(
            key(self.serial)
                .instantiate(payload, KeySerialId::new(0))
                .map_err(errno_of),
        )
    }

    /// Negatively instantiates the key: requests fail with `error` for
    /// `timeout` seconds.
    pub fn reject(&self, timeout: u32, error: Errno) -> Result<(), Errno> {
        // SAFETY: KEYCTL_REJECT takes integers only.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_keyctl,
                libc::KEYCTL_REJECT as libc::c_long,
                self.serial as libc::c_long,
                libc::c_long::from(timeout),
                error as libc::c_long,
                0 as libc::c_long,
            )
        };
        self.answered(Errno::result(ret).map(drop))
    }
}

impl Drop for Authority {
    fn drop(&mut self) {
        if !self.held.get() {
            return;
        }
        if let Err(err) = key(0).assume_authority() {
            log::error!("cannot drop the authority over key {}: {err}", self.serial);
        }
    }
}

/// Serials of the keys whose construction this process holds an
/// authorisation key for: linked into its process keyring, where the module
/// puts them in `_keyagent:*` keyrings.
pub fn constructions_in_process_keyring() -> Vec<Serial> {
    let mut targets = Vec::new();
    for serial in keyring_contents(libc::KEY_SPEC_PROCESS_KEYRING) {
        let Ok(d) = describe(serial) else { continue };
        if d.key_type == "keyring" && d.description.starts_with(b"_keyagent:") {
            targets.extend(keyring_contents(serial).into_iter().filter_map(auth_target));
        } else if let Some(target) = auth_target(serial) {
            targets.push(target);
        }
    }
    targets
}

/// The serials linked in a keyring (empty if it cannot be read).
fn keyring_contents(keyring: Serial) -> Vec<Serial> {
    let Ok(contents) = read(keyring) else {
        return Vec::new();
    };
    contents
        .chunks_exact(4)
        .map(|chunk| Serial::from_ne_bytes(chunk.try_into().expect("4 bytes")))
        .collect()
}

/// The construction an authorisation key stands for, which its description
/// names in hex; `None` for other keys.
fn auth_target(serial: Serial) -> Option<Serial> {
    let d = describe(serial).ok()?;
    if d.key_type != AUTH_KEY_TYPE {
        return None;
    }
    let hex = std::str::from_utf8(&d.description).ok()?;
    u32::from_str_radix(hex, 16).ok().map(|s| s as Serial)
}

/// Looks a key up in the caller's keyrings and, with authority assumed, in
/// the requester's, without constructing it if it is missing (request-key's
/// `%{TYPE:DESCRIPTION}`); returns its payload.
pub fn look_up_payload(key_type: &str, description: &str) -> Result<Vec<u8>, Errno> {
    let key_type = CString::new(key_type).map_err(|_| Errno::EINVAL)?;
    let description = CString::new(description).map_err(|_| Errno::EINVAL)?;
    // SAFETY: NUL-terminated strings alive during the call; no callout, no
    // destination keyring.
    let serial = Errno::result(unsafe {
        libc::syscall(
            libc::SYS_request_key,
            key_type.as_ptr(),
            description.as_ptr(),
            std::ptr::null::<libc::c_char>(),
            0 as libc::c_long,
        )
    })? as Serial;
    read(serial)
}

/// The serial a special keyring id stands for (0 if there is none), e.g.
/// `KEY_SPEC_REQUESTOR_KEYRING`: with authority assumed, the keyring the
/// kernel links the key under construction into.
pub fn keyring_id(special: Serial) -> Result<Serial, Errno> {
    // SAFETY: KEYCTL_GET_KEYRING_ID takes integers only.
    let serial = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            libc::KEYCTL_GET_KEYRING_ID as libc::c_long,
            special as libc::c_long,
            0 as libc::c_long,
        )
    };
    Errno::result(serial).map(|s| s as Serial)
}

/// The keyring `@u`, `@us`, `@s`, `@p`, `@t` or a serial stands for.
pub fn parse_keyring(name: &str) -> Option<Serial> {
    Some(match name {
        "@t" => libc::KEY_SPEC_THREAD_KEYRING,
        "@p" => libc::KEY_SPEC_PROCESS_KEYRING,
        "@s" => libc::KEY_SPEC_SESSION_KEYRING,
        "@u" => libc::KEY_SPEC_USER_KEYRING,
        "@us" => libc::KEY_SPEC_USER_SESSION_KEYRING,
        _ => match name.parse::<Serial>() {
            Ok(serial) if serial > 0 => serial,
            _ => return None,
        },
    })
}

/// Links a key into a keyring.
pub fn link(serial: Serial, keyring: Serial) -> Result<(), Errno> {
    // SAFETY: KEYCTL_LINK takes integers only.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            libc::KEYCTL_LINK as libc::c_long,
            serial as libc::c_long,
            keyring as libc::c_long,
        )
    };
    Errno::result(ret).map(drop)
}

/// Unlinks a key from a keyring.
pub fn unlink(serial: Serial, keyring: Serial) -> Result<(), Errno> {
    // SAFETY: KEYCTL_UNLINK takes integers only.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            libc::KEYCTL_UNLINK as libc::c_long,
            serial as libc::c_long,
            keyring as libc::c_long,
        )
    };
    Errno::result(ret).map(drop)
}

/// Why registration failed, in words (`net_scope`: registering with `--scope net`).
pub fn explain_registration_error(err: Errno, net_scope: bool) -> String {
    let reason = match err {
        Errno::EPERM if net_scope => {
            "serving the kernel's requests needs CAP_NET_ADMIN or CAP_SYS_ADMIN over the user \
             namespace that owns this network namespace (types cached per namespace, such as \
             dns_resolver), or CAP_SYS_ADMIN in the initial user namespace (global types)"
        }
        Errno::EACCES if net_scope => {
            "the kernel caches this type globally and the administrator has not listed it in \
             the keyagent module's global_types parameter"
        }
        Errno::ENODEV => "the keyagent module is not loaded (key type keyagent not registered)",
        Errno::EINVAL => {
            "invalid type name, signal or channel descriptor (1-31 printable characters, no \
             space, not starting with '.', not keyagent or keyring; signal SIGRTMIN..SIGRTMAX)"
        }
        Errno::EACCES => "no permission to add keys to the session keyring",
        Errno::EDQUOT => "the user's key quota is exhausted",
        Errno::EKEYREVOKED | Errno::EKEYEXPIRED => "the session keyring is revoked or expired",
        Errno::ENOMEM => "out of memory",
        Errno::ENOSYS => "the kernel has no key management (CONFIG_KEYS)",
        _ => "",
    };
    if reason.is_empty() {
        format!("{err:?}: {}", err.desc())
    } else {
        format!("{err:?}: {reason}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_descriptions() {
        let d = Description::parse(b"user;1000;100;3f010000;db;pw").unwrap();
        assert_eq!(d.key_type, "user");
        assert_eq!((d.uid, d.gid), (1000, 100));
        assert_eq!(d.description, b"db;pw");
        assert!(Description::parse(b"user;x;0;0;d").is_none());
        assert!(Description::parse(b"user;0;0").is_none());
    }

    #[test]
    fn registration_payloads() {
        assert_eq!(Agent::Signal(40).payload(false), "40");
        assert_eq!(Agent::Signal(41).payload(true), "41 net");
        assert_eq!(Agent::Channel(3).payload(false), "fd 3");
        assert_eq!(Agent::Channel(12).payload(true), "fd 12 net");
    }

    #[test]
    fn keyring_names() {
        assert_eq!(parse_keyring("@u"), Some(libc::KEY_SPEC_USER_KEYRING));
        assert_eq!(
            parse_keyring("@us"),
            Some(libc::KEY_SPEC_USER_SESSION_KEYRING)
        );
        assert_eq!(parse_keyring("123"), Some(123));
        assert_eq!(parse_keyring("-3"), None);
        assert_eq!(parse_keyring("@x"), None);
    }

    #[test]
    fn explains_registration_errors() {
        assert!(explain_registration_error(Errno::ENODEV, false).contains("module is not loaded"));
        assert!(
            explain_registration_error(Errno::EINVAL, false).starts_with("EINVAL: invalid type")
        );
        assert!(explain_registration_error(Errno::EACCES, false).contains("permission"));
        assert!(explain_registration_error(Errno::EBUSY, false).starts_with("EBUSY: "));
        assert!(explain_registration_error(Errno::EACCES, true).contains("global_types"));
        assert!(explain_registration_error(Errno::EPERM, true).contains("CAP_NET_ADMIN"));
    }
}
