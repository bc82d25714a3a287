//! `%` substitutions: request-key's whole-argument macros for programs, and
//! keyagentd's inline templates for the builtins.

use std::fmt;

/// The values the substitutions refer to, taken from one construction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The operation: "create", or "negate" when a piped handler failed.
    pub operation: &'static str,
    /// Serial of the key under construction.
    pub serial: i32,
    /// Its key type.
    pub key_type: String,
    /// Its description.
    pub description: Vec<u8>,
    /// The callout information, up to its first NUL (request-key reads it as
    /// a C string).
    pub callout: Vec<u8>,
    /// The key's uid and gid: the requester's fsuid and fsgid, as the daemon's
    /// user namespace sees them (request-key's `%u`, `%g`).
    pub uid: u32,
    pub gid: u32,
    /// The keyrings `%T`, `%P` and `%S` stand for (0: none).
    pub thread_keyring: i32,
    pub process_keyring: i32,
    pub session_keyring: i32,
    /// The requesting thread as the module reported it (logs only): pid in the
    /// daemon's pid namespace (0 if not visible there), uid.
    pub requester_pid: u32,
    pub requester_uid: u32,
}

/// One of request-key's single-letter macros.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Macro {
    Operation,
    Serial,
    KeyType,
    Description,
    Callout,
    Uid,
    Gid,
    ThreadKeyring,
    ProcessKeyring,
    SessionKeyring,
}

impl Macro {
    /// The macro `%C`, if `C` is one.
    pub fn from_letter(letter: u8) -> Option<Macro> {
        Some(match letter {
            b'o' => Macro::Operation,
            b'k' => Macro::Serial,
            b't' => Macro::KeyType,
            b'd' => Macro::Description,
            b'c' => Macro::Callout,
            b'u' => Macro::Uid,
            b'g' => Macro::Gid,
            b'T' => Macro::ThreadKeyring,
            b'P' => Macro::ProcessKeyring,
            b'S' => Macro::SessionKeyring,
            _ => return None,
        })
    }

    /// The value of the macro for a request.
    pub fn value(self, request: &Request) -> Vec<u8> {
        match self {
            Macro::Operation => request.operation.as_bytes().to_vec(),
            Macro::Serial => request.serial.to_string().into_bytes(),
            Macro::KeyType => request.key_type.as_bytes().to_vec(),
            Macro::Description => request.description.clone(),
            Macro::Callout => request.callout.clone(),
            Macro::Uid => request.uid.to_string().into_bytes(),
            Macro::Gid => request.gid.to_string().into_bytes(),
            Macro::ThreadKeyring => request.thread_keyring.to_string().into_bytes(),
            Macro::ProcessKeyring => request.process_keyring.to_string().into_bytes(),
            Macro::SessionKeyring => request.session_keyring.to_string().into_bytes(),
        }
    }
}

/// The letters of the macros, for error messages.
pub const KNOWN_MACROS: &str = "%o %k %t %d %c %u %g %T %P %S %{TYPE:DESCRIPTION} %%";

/// One argument of a program line, as request-key reads it: only a whole
/// argument is substituted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// Passed as written (`%%x` already reduced to `%x`).
    Literal(Vec<u8>),
    /// `%k` and the other single letters.
    Macro(Macro),
    /// `%{TYPE:DESCRIPTION}`: the payload of that key, looked up in the
    /// requester's keyrings when the handler runs.
    KeySub {
        key_type: String,
        description: String,
    },
}

impl Arg {
    /// Parses one argument word as request-key does; errors are the lines
    /// request-key refuses when it runs them.
    pub fn parse(word: &[u8]) -> Result<Arg, String> {
        let Some(rest) = word.strip_prefix(b"%") else {
            return Ok(Arg::Literal(word.to_vec()));
        };
        match rest {
            [] => Err("missing macro name after % (write %% for a literal %)".into()),
            [b'%', ..] => Ok(Arg::Literal(rest.to_vec())),
            [letter] => Macro::from_letter(*letter).map(Arg::Macro).ok_or_else(|| {
                format!(
                    "unsupported macro %{} (known: {KNOWN_MACROS})",
                    char::from(*letter)
                )
            }),
            [b'{', inner @ ..] => {
                let inner = String::from_utf8_lossy(inner);
                let Some((key_type, rest)) = inner.split_once(':') else {
                    return Err("keysub macro %{...} lacks ':'".into());
                };
                let Some((description, trailing)) = rest.split_once('}') else {
                    return Err("unterminated keysub macro %{...".into());
                };
                if !trailing.is_empty() {
                    return Err("keysub macro has trailing text after '}'".into());
                }
                if key_type.is_empty() {
                    return Err("keysub macro with an empty type".into());
                }
                if description.is_empty() {
                    return Err("keysub macro with an empty description".into());
                }
                Ok(Arg::KeySub {
                    key_type: key_type.to_string(),
                    description: description.to_string(),
                })
            }
            // "%ab": not a macro for request-key, passed as written.
            _ => Ok(Arg::Literal(word.to_vec())),
        }
    }
}

/// A piece of a builtin's template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var(Macro),
}

/// A builtin's text with inline `%` substitutions (keyagentd's own syntax:
/// builtins are not request-key programs), checked when the configuration
/// is loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    pieces: Vec<Piece>,
}

impl Template {
    /// Parses `source`; an unknown `%x` or a lone trailing `%` is an error.
    pub fn parse(source: &str) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut chars = source.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                text.push(c);
                continue;
            }
            let var = match chars.next() {
                Some('%') => {
                    text.push('%');
                    continue;
                }
                Some(other) => match u8::try_from(other).ok().and_then(Macro::from_letter) {
                    Some(var) => var,
                    None => {
                        return Err(format!(
                            "unknown substitution %{other} in \"{source}\" (known: %o %k %t %d %c %u %g %T %P %S %%)"
                        ))
                    }
                },
                None => {
                    return Err(format!(
                        "lone % at the end of \"{source}\" (write %% for a literal %)"
                    ))
                }
            };
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            pieces.push(Piece::Var(var));
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Template {
            source: source.to_string(),
            pieces,
        })
    }

    /// Whether the template substitutes `var`.
    pub fn uses(&self, var: Macro) -> bool {
        self.pieces.contains(&Piece::Var(var))
    }

    /// The template with the request's values substituted.
    pub fn expand(&self, request: &Request) -> Vec<u8> {
        let mut out = Vec::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.extend_from_slice(text.as_bytes()),
                Piece::Var(var) => out.extend(var.value(request)),
            }
        }
        out
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
pub fn test_request() -> Request {
    Request {
        operation: "create",
        serial: 123456,
        key_type: "user".into(),
        description: b"db:password".to_vec(),
        callout: b"hello world".to_vec(),
        uid: 1000,
        gid: 100,
        thread_keyring: 0,
        process_keyring: 0,
        session_keyring: 777,
        requester_pid: 42,
        requester_uid: 1000,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(source: &str) -> String {
        String::from_utf8(Template::parse(source).unwrap().expand(&test_request())).unwrap()
    }

    fn arg(word: &str) -> Result<Arg, String> {
        Arg::parse(word.as_bytes())
    }

    #[test]
    fn every_substitution() {
        assert_eq!(expand("%o"), "create");
        assert_eq!(expand("%k"), "123456");
        assert_eq!(expand("%t"), "user");
        assert_eq!(expand("%d"), "db:password");
        assert_eq!(expand("%c"), "hello world");
        assert_eq!(expand("%u"), "1000");
        assert_eq!(expand("%g"), "100");
        assert_eq!(expand("%T %P %S"), "0 0 777");
        assert_eq!(expand("100%%"), "100%");
    }

    #[test]
    fn substitutions_inside_text() {
        assert_eq!(expand("$(hostname):%c"), "$(hostname):hello world");
        assert_eq!(expand("key-%k-of-%u."), "key-123456-of-1000.");
        assert_eq!(expand("%%k is %k"), "%k is 123456");
        assert_eq!(expand(""), "");
    }

    #[test]
    fn binary_values_are_kept() {
        let mut req = test_request();
        req.callout = vec![0xff, b'a', 0x01];
        assert_eq!(
            Template::parse("<%c>").unwrap().expand(&req),
            b"<\xffa\x01>"
        );
    }

    #[test]
    fn unknown_substitution_is_refused() {
        let err = Template::parse("abc%z").unwrap_err();
        assert!(err.contains("unknown substitution %z"), "{err}");
        assert!(Template::parse("%K").is_err());
        assert!(Template::parse("50%").unwrap_err().contains("lone %"));
    }

    #[test]
    fn whole_argument_macros_as_request_key() {
        assert_eq!(arg("%k"), Ok(Arg::Macro(Macro::Serial)));
        assert_eq!(arg("%S"), Ok(Arg::Macro(Macro::SessionKeyring)));
        assert_eq!(arg("%o"), Ok(Arg::Macro(Macro::Operation)));
        // Only a whole argument is a macro.
        assert_eq!(arg("key-%k"), Ok(Arg::Literal(b"key-%k".to_vec())));
        assert_eq!(arg("%kx"), Ok(Arg::Literal(b"%kx".to_vec())));
        // "%%..." loses one %.
        assert_eq!(arg("%%k"), Ok(Arg::Literal(b"%k".to_vec())));
        assert_eq!(arg("%%"), Ok(Arg::Literal(b"%".to_vec())));
        assert_eq!(arg("plain"), Ok(Arg::Literal(b"plain".to_vec())));
        assert!(arg("%").unwrap_err().contains("missing macro name"));
        assert!(arg("%z").unwrap_err().contains("unsupported macro %z"));
    }

    #[test]
    fn keysub_macro() {
        assert_eq!(
            arg("%{user:db:pw}"),
            Ok(Arg::KeySub {
                key_type: "user".into(),
                description: "db:pw".into()
            })
        );
        assert!(arg("%{user}").unwrap_err().contains("lacks ':'"));
        assert!(arg("%{user:x").unwrap_err().contains("unterminated"));
        assert!(arg("%{user:x}y").unwrap_err().contains("trailing"));
        assert!(arg("%{:x}").unwrap_err().contains("empty type"));
        assert!(arg("%{user:}").unwrap_err().contains("empty description"));
    }

    #[test]
    fn macro_values() {
        let req = test_request();
        assert_eq!(Macro::Serial.value(&req), b"123456");
        assert_eq!(Macro::ThreadKeyring.value(&req), b"0");
        let mut negate = req.clone();
        negate.operation = "negate";
        assert_eq!(Macro::Operation.value(&negate), b"negate");
    }
}
