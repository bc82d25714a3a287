//! `%` substitutions in handler programs and arguments, as in request-key.conf.

use std::fmt;

/// The values a template can refer to, taken from one construction request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Serial of the key under construction.
    pub serial: i32,
    /// Its key type.
    pub key_type: String,
    /// Its description.
    pub description: Vec<u8>,
    /// The callout information the requester passed.
    pub callout: Vec<u8>,
    /// The requester's pid, as seen from the daemon's pid namespace (0 if not visible).
    pub pid: u32,
    /// The requester's uid, as seen from the daemon's user namespace.
    pub uid: u32,
    /// The key's gid, from its description.
    pub gid: u32,
}

/// One substitution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variable {
    Serial,
    KeyType,
    Description,
    Callout,
    Uid,
    Gid,
    /// `%T`, `%P`, `%S`: the requester's thread, process and session keyrings.
    /// They cannot be reached from the daemon, so they expand to `0` ("no keyring").
    RequesterKeyring,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var(Variable),
}

/// A string with `%` substitutions, checked when the configuration is loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    pieces: Vec<Piece>,
}

/// The substitutions a template may use, for error messages.
pub const KNOWN_SUBSTITUTIONS: &str = "%k %t %d %c %u %g %T %P %S %%";

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
                Some('k') => Variable::Serial,
                Some('t') => Variable::KeyType,
                Some('d') => Variable::Description,
                Some('c') => Variable::Callout,
                Some('u') => Variable::Uid,
                Some('g') => Variable::Gid,
                Some('T' | 'P' | 'S') => Variable::RequesterKeyring,
                Some(other) => {
                    return Err(format!(
                    "unknown substitution %{other} in \"{source}\" (known: {KNOWN_SUBSTITUTIONS})"
                ))
                }
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

    /// The text as written in the configuration.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The template with the request's values substituted.
    pub fn expand(&self, request: &Request) -> Vec<u8> {
        let mut out = Vec::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.extend_from_slice(text.as_bytes()),
                Piece::Var(Variable::Serial) => out.extend(request.serial.to_string().bytes()),
                Piece::Var(Variable::KeyType) => out.extend_from_slice(request.key_type.as_bytes()),
                Piece::Var(Variable::Description) => out.extend_from_slice(&request.description),
                Piece::Var(Variable::Callout) => out.extend_from_slice(&request.callout),
                Piece::Var(Variable::Uid) => out.extend(request.uid.to_string().bytes()),
                Piece::Var(Variable::Gid) => out.extend(request.gid.to_string().bytes()),
                Piece::Var(Variable::RequesterKeyring) => out.push(b'0'),
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
mod tests {
    use super::*;

    fn request() -> Request {
        Request {
            serial: 123456,
            key_type: "user".into(),
            description: b"db:password".to_vec(),
            callout: b"hello world".to_vec(),
            pid: 42,
            uid: 1000,
            gid: 100,
        }
    }

    fn expand(source: &str) -> String {
        String::from_utf8(Template::parse(source).unwrap().expand(&request())).unwrap()
    }

    #[test]
    fn every_substitution() {
        assert_eq!(expand("%k"), "123456");
        assert_eq!(expand("%t"), "user");
        assert_eq!(expand("%d"), "db:password");
        assert_eq!(expand("%c"), "hello world");
        assert_eq!(expand("%u"), "1000");
        assert_eq!(expand("%g"), "100");
        assert_eq!(expand("%T %P %S"), "0 0 0");
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
        let mut req = request();
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
    }

    #[test]
    fn lone_percent_is_refused() {
        let err = Template::parse("50%").unwrap_err();
        assert!(err.contains("lone %"), "{err}");
    }
}
