//! Handler configuration in the request-key.conf(5) format, read as keyutils
//! 1.6.3's /sbin/request-key reads it.
//!
//! A line is `OP TYPE DESCRIPTION CALLOUT PROGRAM [ARGS...]`, fields separated
//! by white space (no quoting). Blank lines and lines beginning with `#` or
//! white space are ignored. OP, TYPE, DESCRIPTION and CALLOUT may each hold
//! one `*`, which matches any run of characters (a second `*` is literal).
//! Of all the lines that match, the one whose wildcards skip the fewest
//! characters wins, comparing OP, then TYPE, DESCRIPTION and CALLOUT; on a
//! tie the line read first. PROGRAM `|PATH` is a piped handler. Only a whole
//! argument is a macro (`%k`, `%{TYPE:DESCRIPTION}`, ...).
//!
//! keyagentd adds the builtins `builtin:instantiate [TEXT]` and
//! `builtin:negate [SECONDS]` (request-key cannot run those lines, so they
//! change nothing it accepts); their arguments may be quoted and hold inline
//! substitutions.

use crate::template::{Arg, Macro, Template};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

/// The operations request-key looks lines up for: the kernel asks to create;
/// a piped handler that fails makes request-key look up `negate`.
pub const OP_CREATE: &str = "create";
pub const OP_NEGATE: &str = "negate";

/// Prefix of the programs the daemon runs itself.
const BUILTIN_PREFIX: &[u8] = b"builtin:";

/// request-key reads lines into a 4096 + 2 byte buffer and refuses longer ones.
const LINE_MAX: usize = 4096;

/// request-key fills an argv of 256 entries: the program and at most 253 arguments.
const ARGS_MAX: usize = 253;

/// A configuration error, located as `file:line` where it has a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub location: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.reason)
    }
}

impl std::error::Error for ConfigError {}

/// Where lines are read from: a file, or a directory whose `*.conf` files
/// are read in name order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub path: PathBuf,
    /// A missing path is skipped, as request-key skips a missing
    /// /etc/request-key.d or /etc/request-key.conf.
    pub optional: bool,
}

impl Source {
    pub fn required(path: impl Into<PathBuf>) -> Source {
        Source {
            path: path.into(),
            optional: false,
        }
    }

    /// What request-key reads: `DIR/request-key.d/*.conf`, then
    /// `DIR/request-key.conf` (DIR `/etc`, or the current directory for `-l`).
    pub fn request_key(dir: &Path) -> Vec<Source> {
        [dir.join("request-key.d"), dir.join("request-key.conf")]
            .into_iter()
            .map(|path| Source {
                path,
                optional: true,
            })
            .collect()
    }
}

/// What a matching line does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Run PROGRAM with ARGS as a child process, with the request's authority.
    Run {
        /// The absolute path executed.
        path: Vec<u8>,
        /// argv[0]: what follows the last `/` of PROGRAM, as request-key sets it.
        argv0: Vec<u8>,
        args: Vec<Arg>,
        /// `|PROGRAM`: callout information on stdin, the payload from stdout.
        piped: bool,
    },
    /// `builtin:instantiate [TEXT]`: instantiate the key with TEXT (default `%c`).
    Instantiate(Template),
    /// `builtin:negate [SECONDS]`: negate the key (ENOKEY) for SECONDS
    /// (default: the daemon's negative timeout).
    Negate(Option<u32>),
}

/// One configuration line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `file:line` of the line.
    pub origin: String,
    /// OP, TYPE, DESCRIPTION and CALLOUT.
    patterns: [Vec<u8>; 4],
    /// PROGRAM as written (with its `|`).
    program: String,
    pub action: Action,
}

/// How many characters a matching line's wildcards skip, per field.
pub type Wildness = [u32; 4];

impl Rule {
    /// The wildness of the line if it applies to this operation on this key.
    pub fn matches(
        &self,
        operation: &str,
        key_type: &str,
        description: &[u8],
        callout: &[u8],
    ) -> Option<Wildness> {
        let data: [&[u8]; 4] = [
            operation.as_bytes(),
            key_type.as_bytes(),
            description,
            callout,
        ];
        let mut wildness = [0; 4];
        for (i, datum) in data.iter().enumerate() {
            wildness[i] = wildcard_match(&self.patterns[i], datum)?;
        }
        Some(wildness)
    }

    /// Whether the line may be chosen for `operation` on a key of
    /// `key_type`, whatever its description and callout information.
    pub fn may_serve(&self, operation: &str, key_type: &str) -> bool {
        wildcard_match(&self.patterns[0], operation.as_bytes()).is_some()
            && wildcard_match(&self.patterns[1], key_type.as_bytes()).is_some()
    }

    /// What the line needs the construction's authority for, if anything:
    /// a program that is not piped answers itself (keyctl instantiate,
    /// reject, negate, as request-key's handlers do), `%S` is read from the
    /// authorisation key, `%{TYPE:DESCRIPTION}` is looked up with it.
    pub fn needs_authority(&self) -> Option<&'static str> {
        let args = match &self.action {
            Action::Run { piped: false, .. } => {
                return Some("runs a program, which may answer with the construction's authority")
            }
            Action::Run { args, .. } => args,
            Action::Instantiate(text) if text.uses(Macro::SessionKeyring) => {
                return Some("substitutes %S, the keyring recorded in the construction's authority")
            }
            Action::Instantiate(_) | Action::Negate(_) => return None,
        };
        for arg in args {
            match arg {
                Arg::Macro(Macro::SessionKeyring) => {
                    return Some(
                        "substitutes %S, the keyring recorded in the construction's authority",
                    )
                }
                Arg::KeySub { .. } => {
                    return Some("looks up %{TYPE:DESCRIPTION} with the construction's authority")
                }
                _ => {}
            }
        }
        None
    }

    /// Short name for logs: origin and program.
    pub fn label(&self) -> String {
        format!("{} {}", self.origin, self.program)
    }
}

/// The handler table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    rules: Vec<Rule>,
    /// Lines whose OP matches neither "create" nor "negate": request-key never
    /// reads past their first field, so neither does keyagentd.
    unused: Vec<String>,
}

impl Config {
    /// The configuration used without `--config`: instantiate every key with
    /// its callout information.
    pub fn builtin_default() -> Config {
        parse(b"create * * * builtin:instantiate %c\n", "(default)")
            .expect("the default configuration parses")
    }

    /// Reads the sources in order.
    pub fn load(sources: &[Source]) -> Result<Config, ConfigError> {
        let mut config = Config {
            rules: Vec::new(),
            unused: Vec::new(),
        };
        for source in sources {
            for file in files_of(source)? {
                let text = fs::read(&file).map_err(|err| ConfigError {
                    location: file.display().to_string(),
                    reason: format!("cannot read: {err}"),
                })?;
                let part = parse(&text, &file.display().to_string())?;
                config.rules.extend(part.rules);
                config.unused.extend(part.unused);
            }
        }
        Ok(config)
    }

    /// The line request-key would pick for this operation: the least wild
    /// match, the first read on a tie.
    pub fn find(
        &self,
        operation: &str,
        key_type: &str,
        description: &[u8],
        callout: &[u8],
    ) -> Option<(&Rule, Wildness)> {
        let mut best: Option<(&Rule, Wildness)> = None;
        for rule in &self.rules {
            if let Some(wildness) = rule.matches(operation, key_type, description, callout) {
                if best.is_none_or(|(_, least)| wildness < least) {
                    best = Some((rule, wildness));
                }
            }
        }
        best
    }

    /// The first line that may serve a construction of `key_type` and needs
    /// the construction's authority, and what for: a `create` line, or,
    /// since a failed piped handler runs the best `negate` line, a `negate`
    /// line when a piped `create` line may run.
    pub fn needs_authority(&self, key_type: &str) -> Option<(&Rule, &'static str)> {
        let create = || {
            self.rules
                .iter()
                .filter(|r| r.may_serve(OP_CREATE, key_type))
        };
        let piped = create().any(|r| matches!(r.action, Action::Run { piped: true, .. }));
        let negate = self
            .rules
            .iter()
            .filter(|r| piped && r.may_serve(OP_NEGATE, key_type));
        create()
            .chain(negate)
            .find_map(|rule| rule.needs_authority().map(|why| (rule, why)))
    }

    /// All lines that can be used, in reading order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Origins of the lines that can never be used.
    pub fn unused(&self) -> &[String] {
        &self.unused
    }
}

/// The files a source stands for, in reading order.
fn files_of(source: &Source) -> Result<Vec<PathBuf>, ConfigError> {
    let path = &source.path;
    let unreadable = |err: std::io::Error| ConfigError {
        location: path.display().to_string(),
        reason: format!("cannot read: {err}"),
    };
    let metadata = match fs::metadata(path) {
        Err(err) if source.optional && err.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Vec::new())
        }
        result => result.map_err(unreadable)?,
    };
    if !metadata.is_dir() {
        return Ok(vec![path.clone()]);
    }
    // As request-key: regular files (not symbolic links) named *.conf, not
    // starting with '.'. request-key takes them in readdir() order, which
    // the file system chooses; keyagentd sorts them by name.
    let mut files = Vec::new();
    for entry in fs::read_dir(path).map_err(unreadable)? {
        let entry = entry.map_err(unreadable)?;
        let name = entry.file_name();
        let name = name.as_encoded_bytes();
        if name.starts_with(b".") || name.len() < 5 || !name.ends_with(b".conf") {
            continue;
        }
        if entry.file_type().map_err(unreadable)?.is_file() {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// C's isspace() in the C locale, which request-key splits fields with.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// Splits off the next white-space separated word; returns it, whether white
/// space follows it, and the rest after that white space.
fn next_word(text: &[u8]) -> (&[u8], bool, &[u8]) {
    let start = text
        .iter()
        .position(|&b| !is_space(b))
        .unwrap_or(text.len());
    let text = &text[start..];
    let end = text.iter().position(|&b| is_space(b)).unwrap_or(text.len());
    let (word, rest) = text.split_at(end);
    let spaced = !rest.is_empty();
    let skip = rest
        .iter()
        .position(|&b| !is_space(b))
        .unwrap_or(rest.len());
    (word, spaced, &rest[skip..])
}

/// Parses the text of one configuration file named `file`.
pub fn parse(text: &[u8], file: &str) -> Result<Config, ConfigError> {
    let mut config = Config {
        rules: Vec::new(),
        unused: Vec::new(),
    };
    let lines = text.split_inclusive(|&b| b == b'\n');
    let mut number = 0;
    for raw in lines {
        number += 1;
        let origin = format!("{file}:{number}");
        let error = |reason: String| ConfigError {
            location: origin.clone(),
            reason,
        };
        if raw.len() >= LINE_MAX {
            return Err(error(format!(
                "line too long ({} bytes; request-key reads at most {})",
                raw.len(),
                LINE_MAX - 1
            )));
        }
        let line = raw.strip_suffix(b"\n").unwrap_or(raw);
        if line.is_empty() || line[0] == b'#' || is_space(line[0]) {
            continue;
        }
        match parse_line(line, origin.clone()).map_err(error)? {
            Some(rule) => config.rules.push(rule),
            None => config.unused.push(origin),
        }
    }
    Ok(config)
}

const SYNTAX: &str = "expected OP TYPE DESCRIPTION CALLOUT PROGRAM [ARGS...]";

/// Parses one line; `None` for a line whose OP can never match.
fn parse_line(line: &[u8], origin: String) -> Result<Option<Rule>, String> {
    let mut patterns: [Vec<u8>; 4] = Default::default();
    let mut rest = line;
    for (i, pattern) in patterns.iter_mut().enumerate() {
        let (word, spaced, after) = next_word(rest);
        // request-key needs white space after each of the four fields, and
        // stops at the first field that does not match: a line whose OP
        // matches neither operation is never read further.
        if !spaced || after.is_empty() && i == 3 {
            if i > 0 && !could_be_used(&patterns[0]) {
                return Ok(None);
            }
            return Err(format!("syntax error: {SYNTAX}"));
        }
        *pattern = word.to_vec();
        if i == 0 && !could_be_used(pattern) {
            return Ok(None);
        }
        rest = after;
    }
    let command = rest;
    let (program, _, args_text) = next_word(command);
    let program_text = String::from_utf8_lossy(program).into_owned();
    let action = if let Some(name) = program.strip_prefix(BUILTIN_PREFIX) {
        let name = String::from_utf8_lossy(name);
        let args = split_words(&String::from_utf8_lossy(args_text))?;
        parse_builtin(&name, &args)?
    } else {
        let (piped, path) = match program.strip_prefix(b"|") {
            Some(path) => (true, path),
            None => (false, program),
        };
        if path.is_empty() {
            return Err("no PROGRAM after '|'".into());
        }
        let Some(slash) = path.iter().rposition(|&b| b == b'/') else {
            return Err(format!(
                "PROGRAM \"{program_text}\" must be a path (request-key runs it with execv(), \
                 without searching PATH) or builtin:NAME"
            ));
        };
        let argv0 = path[slash + 1..].to_vec();
        // request-key runs in /, so a relative path is taken from there.
        let path = if path.starts_with(b"/") {
            path.to_vec()
        } else {
            [b"/", path].concat()
        };
        let mut args = Vec::new();
        let mut rest = args_text;
        while !rest.is_empty() {
            let (word, _, after) = next_word(rest);
            if word.is_empty() {
                break;
            }
            if args.len() == ARGS_MAX {
                return Err(format!(
                    "too many arguments (request-key takes at most {ARGS_MAX})"
                ));
            }
            args.push(Arg::parse(word)?);
            rest = after;
        }
        Action::Run {
            path,
            argv0,
            args,
            piped,
        }
    };
    Ok(Some(Rule {
        origin,
        patterns,
        program: program_text,
        action,
    }))
}

/// Whether an OP pattern matches an operation request-key looks lines up for.
fn could_be_used(op_pattern: &[u8]) -> bool {
    [OP_CREATE, OP_NEGATE]
        .iter()
        .any(|op| wildcard_match(op_pattern, op.as_bytes()).is_some())
}

fn parse_builtin(name: &str, args: &[String]) -> Result<Action, String> {
    match name {
        "instantiate" => match args {
            [] => Ok(Action::Instantiate(Template::parse("%c")?)),
            [text] => Ok(Action::Instantiate(Template::parse(text)?)),
            _ => Err("builtin:instantiate takes at most one argument, TEXT (quote it)".into()),
        },
        "negate" => match args {
            [] => Ok(Action::Negate(None)),
            [seconds] => seconds
                .parse()
                .map(|s| Action::Negate(Some(s)))
                .map_err(|_| format!("builtin:negate: \"{seconds}\" is not a number of seconds")),
            _ => Err("builtin:negate takes at most one argument, SECONDS".into()),
        },
        _ => Err(format!(
            "unknown builtin \"builtin:{name}\" (known: builtin:instantiate, builtin:negate)"
        )),
    }
}

/// Splits a line into words: whitespace separates words, `'...'` quotes
/// literally, `"..."` quotes with `\"` and `\\` escapes, a backslash outside
/// quotes escapes the next character, and `#` at the start of a word starts a
/// comment.
fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if let Some(done) = word.take() {
                    words.push(done);
                }
            }
            '#' if word.is_none() => break,
            '\'' => {
                let current = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => current.push(c),
                        None => return Err("unterminated ' quote".into()),
                    }
                }
            }
            '"' => {
                let current = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => current.push(c),
                            Some(c) => {
                                current.push('\\');
                                current.push(c);
                            }
                            None => return Err("unterminated \" quote".into()),
                        },
                        Some(c) => current.push(c),
                        None => return Err("unterminated \" quote".into()),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(c) => word.get_or_insert_with(String::new).push(c),
                None => return Err("backslash at the end of the line".into()),
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    if let Some(done) = word {
        words.push(done);
    }
    Ok(words)
}

/// request-key's match(): the pattern has at most one wildcard, its first
/// `*` (any later `*` is literal). Returns how many characters of `datum`
/// the wildcard skipped (0 for an exact match), or `None`.
pub fn wildcard_match(pattern: &[u8], datum: &[u8]) -> Option<u32> {
    let Some(star) = pattern.iter().position(|&b| b == b'*') else {
        return (pattern == datum).then_some(0);
    };
    let fixed = pattern.len() - 1;
    if datum.len() < fixed {
        return None;
    }
    let (prefix, suffix) = (&pattern[..star], &pattern[star + 1..]);
    if datum.starts_with(prefix) && datum.ends_with(suffix) {
        Some((datum.len() - fixed) as u32)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::{test_request, Macro};

    /// Debian's /etc/request-key.conf (keyutils 1.6.3), without its comments.
    const STOCK: &str = "\
create  dns_resolver *\t\t*               /sbin/key.dns_resolver %k
create\tuser\tdebug:*\t\tnegate\t\t/bin/keyctl negate %k 30 %S
create  user    debug:*         rejected        /bin/keyctl reject %k 30 %c %S
create  user    debug:*         expired         /bin/keyctl reject %k 30 %c %S
create  user    debug:*         revoked         /bin/keyctl reject %k 30 %c %S
create\tuser\tdebug:loop:*\t*\t\t|/bin/cat
create\tuser\tdebug:*\t\t*\t\t/usr/share/keyutils/request-key-debug.sh %k %d %c %S
negate\t*\t*\t\t*\t\t/bin/keyctl negate %k 30 %S
";

    fn config(text: &str) -> Config {
        parse(text.as_bytes(), "f").unwrap()
    }

    fn chosen(config: &Config, op: &str, key_type: &str, desc: &str, callout: &str) -> String {
        config
            .find(op, key_type, desc.as_bytes(), callout.as_bytes())
            .map_or("none".to_string(), |(rule, _)| rule.origin.clone())
    }

    fn parse_err(text: &str) -> String {
        parse(text.as_bytes(), "test.conf").unwrap_err().to_string()
    }

    #[test]
    fn request_key_match() {
        assert_eq!(wildcard_match(b"*", b""), Some(0));
        assert_eq!(wildcard_match(b"*", b"anything"), Some(8));
        assert_eq!(wildcard_match(b"user", b"user"), Some(0));
        assert_eq!(wildcard_match(b"user", b"users"), None);
        assert_eq!(wildcard_match(b"debug:*", b"debug:x"), Some(1));
        assert_eq!(wildcard_match(b"debug:*", b"debug:"), Some(0));
        assert_eq!(wildcard_match(b"debug:*", b"debu"), None);
        assert_eq!(wildcard_match(b"*:pw", b"db:pw"), Some(2));
        assert_eq!(wildcard_match(b"a*c", b"abbc"), Some(2));
        assert_eq!(wildcard_match(b"ab*bc", b"abc"), None);
        // One wildcard only: a second '*' is literal, as in request-key.
        assert_eq!(wildcard_match(b"a*b*c", b"aXXbYYbc"), None);
        assert_eq!(wildcard_match(b"a*b*c", b"aXXb*c"), Some(2));
        assert_eq!(wildcard_match(b"**", b"x*"), Some(1));
        assert_eq!(wildcard_match(b"**", b"x"), None);
        assert_eq!(wildcard_match(b"", b"x"), None);
    }

    #[test]
    fn stock_configuration_as_request_key_chooses() {
        let stock = config(STOCK);
        assert_eq!(stock.rules().len(), 8);
        assert!(stock.unused().is_empty());
        assert_eq!(
            chosen(&stock, "create", "dns_resolver", "example.org", ""),
            "f:1"
        );
        assert_eq!(chosen(&stock, "create", "user", "debug:x", "negate"), "f:2");
        assert_eq!(
            chosen(&stock, "create", "user", "debug:x", "rejected"),
            "f:3"
        );
        assert_eq!(
            chosen(&stock, "create", "user", "debug:x", "expired"),
            "f:4"
        );
        assert_eq!(
            chosen(&stock, "create", "user", "debug:x", "revoked"),
            "f:5"
        );
        // debug:loop:* skips less of the description than debug:*.
        assert_eq!(
            chosen(&stock, "create", "user", "debug:loop:1", "abc"),
            "f:6"
        );
        // DESCRIPTION ranks before CALLOUT: debug:loop:* beats an exact "negate".
        assert_eq!(
            chosen(&stock, "create", "user", "debug:loop:1", "negate"),
            "f:6"
        );
        assert_eq!(chosen(&stock, "create", "user", "debug:spoon", "x"), "f:7");
        assert_eq!(chosen(&stock, "create", "user", "other", "x"), "none");
        assert_eq!(chosen(&stock, "negate", "user", "debug:loop:1", "x"), "f:8");

        let (rule, _) = stock.find("create", "user", b"debug:loop:1", b"x").unwrap();
        assert_eq!(rule.label(), "f:6 |/bin/cat");
        match &rule.action {
            Action::Run {
                path,
                argv0,
                args,
                piped,
            } => {
                assert_eq!(
                    (path.as_slice(), argv0.as_slice()),
                    (&b"/bin/cat"[..], &b"cat"[..])
                );
                assert!(args.is_empty() && *piped);
            }
            other => panic!("{other:?}"),
        }
        let (rule, _) = stock.find("create", "user", b"debug:x", b"spoon").unwrap();
        match &rule.action {
            Action::Run {
                argv0, args, piped, ..
            } => {
                assert_eq!(argv0, b"request-key-debug.sh");
                assert!(!piped);
                assert_eq!(
                    args,
                    &[
                        Macro::Serial,
                        Macro::Description,
                        Macro::Callout,
                        Macro::SessionKeyring
                    ]
                    .map(Arg::Macro)
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn least_wild_then_first() {
        let c = config(
            "create user * * /bin/any\n\
             create user a* * /bin/a\n\
             create user ab* * /bin/ab\n\
             create * abc * /bin/anytype\n\
             create user ab* * /bin/ab-again\n\
             cr* user abc * /bin/wild-op\n",
        );
        // The TYPE column ranks before DESCRIPTION: "user" exactly beats "*".
        assert_eq!(chosen(&c, "create", "user", "abc", ""), "f:3");
        assert_eq!(chosen(&c, "create", "user", "axx", ""), "f:2");
        assert_eq!(chosen(&c, "create", "user", "zzz", ""), "f:1");
        assert_eq!(chosen(&c, "create", "logon", "abc", ""), "f:4");
        let (_, wildness) = c.find("create", "user", b"abcd", b"cb").unwrap();
        assert_eq!(wildness, [0, 0, 2, 2]);
    }

    #[test]
    fn request_key_line_syntax() {
        let c = config(
            "# comment\n\
             \n\
             \x20create user * * /bin/indented-is-a-comment\n\
             \tcreate user * * /bin/so-is-this\n\
             create\tuser\t*\t*\t/bin/echo don't \"quote\" # not-a-comment %%k key-%k 100%\n",
        );
        assert_eq!(c.rules().len(), 1);
        assert_eq!(c.rules()[0].origin, "f:5");
        match &c.rules()[0].action {
            Action::Run { args, .. } => {
                let words: Vec<&[u8]> = args
                    .iter()
                    .map(|a| match a {
                        Arg::Literal(w) => w.as_slice(),
                        other => panic!("{other:?}"),
                    })
                    .collect();
                assert_eq!(
                    words,
                    [
                        &b"don't"[..],
                        b"\"quote\"",
                        b"#",
                        b"not-a-comment",
                        b"%k",
                        b"key-%k",
                        b"100%"
                    ]
                );
            }
            other => panic!("{other:?}"),
        }
        // A relative program is taken from /, where request-key runs.
        let c = config("create user * * sbin/handler %k\r\n");
        match &c.rules()[0].action {
            Action::Run { path, argv0, .. } => {
                assert_eq!(
                    (path.as_slice(), argv0.as_slice()),
                    (&b"/sbin/handler"[..], &b"handler"[..])
                );
            }
            other => panic!("{other:?}"),
        }
        // A last line without a newline is a whole line.
        assert_eq!(config("create user * * /bin/x %S").rules().len(), 1);
    }

    #[test]
    fn lines_request_key_never_reads_are_accepted() {
        let c = config(
            "update user\n\
             frob\tuser * *\n\
             reate user * * /bin/x %z\n\
             create user * * /bin/used\n",
        );
        assert_eq!(c.rules().len(), 1);
        assert_eq!(c.unused(), ["f:1", "f:2", "f:3"]);
    }

    #[test]
    fn builtins_keep_keyagentd_syntax() {
        let c = config(
            "create * * * builtin:instantiate\n\
             create * * * builtin:instantiate \"%t=%c %o\"\n\
             create * * * builtin:negate\n\
             create * * * builtin:negate 5\n",
        );
        let req = test_request();
        match &c.rules()[0].action {
            Action::Instantiate(t) => assert_eq!(t.expand(&req), b"hello world"),
            other => panic!("{other:?}"),
        }
        match &c.rules()[1].action {
            Action::Instantiate(t) => assert_eq!(t.expand(&req), b"user=hello world create"),
            other => panic!("{other:?}"),
        }
        assert_eq!(c.rules()[2].action, Action::Negate(None));
        assert_eq!(c.rules()[3].action, Action::Negate(Some(5)));
        assert_eq!(c.rules()[3].label(), "f:4 builtin:negate");
    }

    #[test]
    fn default_configuration() {
        let config = Config::builtin_default();
        assert_eq!(config.rules().len(), 1);
        let (rule, _) = config
            .find("create", "dns_resolver", b"example.org", b"a")
            .unwrap();
        assert_eq!(rule.origin, "(default):1");
        assert!(matches!(rule.action, Action::Instantiate(_)));
    }

    #[test]
    fn errors_name_file_and_line() {
        let syntax = "syntax error: expected OP TYPE DESCRIPTION CALLOUT PROGRAM [ARGS...]";
        assert_eq!(
            parse_err("# ok\ncreate user *\n"),
            format!("test.conf:2: {syntax}")
        );
        assert_eq!(parse_err("create\n"), format!("test.conf:1: {syntax}"));
        assert_eq!(
            parse_err("create user * *   \n"),
            format!("test.conf:1: {syntax}")
        );
        assert_eq!(
            parse_err("negate * * *\n"),
            format!("test.conf:1: {syntax}")
        );
        assert!(parse_err("\n\ncreate user * * /bin/x %k %y\n")
            .starts_with("test.conf:3: unsupported macro %y"));
        assert!(
            parse_err("create user * * /bin/x %\n").starts_with("test.conf:1: missing macro name")
        );
        assert!(parse_err("create user * * /bin/x %{user}\n").contains("lacks ':'"));
        assert!(parse_err("create user * * keyctl negate\n")
            .starts_with("test.conf:1: PROGRAM \"keyctl\" must be a path"));
        assert_eq!(
            parse_err("create user * * | /bin/cat\n"),
            "test.conf:1: no PROGRAM after '|'"
        );
        assert!(
            parse_err(&format!("create user * * /bin/x{}\n", " a".repeat(254)))
                .contains("too many arguments")
        );
        assert!(parse(
            format!("create user * * /bin/x{}\n", " a".repeat(253)).as_bytes(),
            "f"
        )
        .is_ok());
        let long = format!("create user * * /bin/{}\n", "x".repeat(4080));
        assert!(parse_err(&long).contains("line too long"));
        assert!(parse_err("create * * * builtin:frobnicate\n").contains("unknown builtin"));
        assert!(parse_err("create * * * builtin:negate soon\n").contains("not a number"));
        assert!(parse_err("create * * * builtin:instantiate a b\n").contains("at most one"));
        assert!(parse_err("create * * * builtin:instantiate 'open\n").contains("unterminated"));
    }

    #[test]
    fn words_and_quotes_of_builtins() {
        assert_eq!(split_words("  a  b\tc ").unwrap(), ["a", "b", "c"]);
        assert_eq!(
            split_words(r#"x "a b" 'c "d"' e"#).unwrap(),
            ["x", "a b", "c \"d\"", "e"]
        );
        assert_eq!(
            split_words(r#""say \"hi\" \\ \n""#).unwrap(),
            [r#"say "hi" \ \n"#]
        );
        assert_eq!(split_words("a b # comment 'x").unwrap(), ["a", "b"]);
        assert!(split_words("'open").is_err());
        assert!(split_words("end\\").is_err());
    }

    /// A scratch directory removed when dropped.
    pub struct ScratchDir(pub PathBuf);

    impl ScratchDir {
        pub fn new(name: &str) -> ScratchDir {
            let dir =
                std::env::temp_dir().join(format!("keyagentd-test-{}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            ScratchDir(dir)
        }
    }

    impl Drop for ScratchDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn request_key_files_and_order() {
        let dir = ScratchDir::new("dir");
        let d = dir.0.join("request-key.d");
        fs::create_dir(&d).unwrap();
        fs::write(d.join("20-b.conf"), "create user * * /bin/b\n").unwrap();
        fs::write(d.join("10-a.conf"), "create user a* * /bin/a\n").unwrap();
        fs::write(d.join("00-ignored.txt"), "not a config line\n").unwrap();
        fs::write(d.join(".hidden.conf"), "not a config line\n").unwrap();
        std::os::unix::fs::symlink(d.join("20-b.conf"), d.join("30-link.conf")).unwrap();
        fs::write(
            dir.0.join("request-key.conf"),
            "create user * * /bin/main\n",
        )
        .unwrap();
        let config = Config::load(&Source::request_key(&dir.0)).unwrap();
        let origins: Vec<_> = config.rules().iter().map(|r| r.origin.clone()).collect();
        assert_eq!(
            origins,
            [
                format!("{}:1", d.join("10-a.conf").display()),
                format!("{}:1", d.join("20-b.conf").display()),
                format!("{}:1", dir.0.join("request-key.conf").display()),
            ]
        );
        // Equally wild: the directory's line is read first and wins.
        let (rule, _) = config.find("create", "user", b"zz", b"").unwrap();
        assert_eq!(rule.origin, origins[1]);

        // request-key skips what is missing.
        let empty = ScratchDir::new("empty");
        assert!(Config::load(&Source::request_key(&empty.0))
            .unwrap()
            .rules()
            .is_empty());
    }

    #[test]
    fn file_errors() {
        let dir = ScratchDir::new("file");
        let bad = dir.0.join("bad.conf");
        fs::write(&bad, "create user * * /bin/ok\ncreate user\n").unwrap();
        let err = Config::load(&[Source::required(&bad)]).unwrap_err();
        assert_eq!(err.location, format!("{}:2", bad.display()));

        let missing = dir.0.join("missing.conf");
        let err = Config::load(&[Source::required(&missing)])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("{}: cannot read: ", missing.display())),
            "{err}"
        );
    }

    /// The origin of the line that keeps `key_type` off the channel.
    fn authority_line(config: &Config, key_type: &str) -> Option<String> {
        config
            .needs_authority(key_type)
            .map(|(rule, _)| rule.origin.clone())
    }

    #[test]
    fn lines_that_need_the_authority() {
        let lines = config(
            "create user a:* * builtin:instantiate \"%t %c %T %P\"\n\
             create user b:* * builtin:negate 5\n\
             create user c:* * |/bin/cat %k %d %c\n\
             create user d:* * |/bin/cat %S\n\
             create user e:* * |/bin/cat %{user:x}\n\
             create user f:* * /bin/keyctl instantiate %k x 0\n\
             create user g:* * builtin:instantiate \"in %S\"\n",
        );
        let why: Vec<Option<&str>> = lines.rules().iter().map(Rule::needs_authority).collect();
        assert_eq!(why[..3], [None, None, None]);
        assert!(why[3].unwrap().contains("%S"));
        assert!(why[4].unwrap().contains("%{TYPE:DESCRIPTION}"));
        assert!(why[5].unwrap().contains("runs a program"));
        assert!(why[6].unwrap().contains("%S"));
    }

    #[test]
    fn types_whose_lines_need_the_authority() {
        // The stock configuration answers with keyctl for every type (its
        // negate line runs when the piped |/bin/cat fails).
        let stock = config(STOCK);
        assert_eq!(authority_line(&stock, "user").as_deref(), Some("f:2"));
        assert_eq!(
            authority_line(&stock, "dns_resolver").as_deref(),
            Some("f:1")
        );
        assert_eq!(authority_line(&stock, "logon"), None);
        assert_eq!(authority_line(&Config::builtin_default(), "user"), None);

        let mixed = config(
            "create user * * builtin:instantiate %c\n\
             create logon * * |/bin/cat\n\
             negate * * * /bin/keyctl negate %k 30 %S\n\
             create big_key * * builtin:negate\n\
             negate big_key * * builtin:negate\n\
             c* ceph * * /sbin/ceph-handler %k\n\
             delete rxrpc * * /bin/whatever\n",
        );
        // Builtins only: the negate line never runs.
        assert_eq!(authority_line(&mixed, "user"), None);
        // A piped line, and a negate line with keyctl for its failures.
        assert_eq!(authority_line(&mixed, "logon").as_deref(), Some("f:3"));
        assert_eq!(authority_line(&mixed, "big_key"), None);
        // OP is a pattern too; a line whose OP never matches is never used.
        assert_eq!(authority_line(&mixed, "ceph").as_deref(), Some("f:6"));
        assert_eq!(authority_line(&mixed, "rxrpc"), None);
    }
}
