//! Handler configuration in the request-key.conf format.
//!
//! Each line is `OP TYPE DESCRIPTION CALLOUT PROGRAM [ARGS...]`; `#` starts a
//! comment, `*` in OP, TYPE, DESCRIPTION and CALLOUT matches any run of
//! characters, and words may be quoted with `"..."` or `'...'`. The first line
//! whose OP matches `create` and whose patterns match the request wins.

use crate::template::Template;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

/// The operation the kernel asks for; lines for other operations never match.
const OPERATION: &str = "create";

/// Prefix of the programs the daemon runs itself.
const BUILTIN_PREFIX: &str = "builtin:";

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

/// What a matching line does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Run PROGRAM with ARGS as a child process, with the request's authority.
    Run {
        program: Template,
        args: Vec<Template>,
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
    operation: String,
    key_type: String,
    description: String,
    callout: String,
    pub action: Action,
}

impl Rule {
    /// True if the line applies to a construction of this key.
    pub fn matches(&self, key_type: &str, description: &[u8], callout: &[u8]) -> bool {
        glob_match(self.operation.as_bytes(), OPERATION.as_bytes())
            && glob_match(self.key_type.as_bytes(), key_type.as_bytes())
            && glob_match(self.description.as_bytes(), description)
            && glob_match(self.callout.as_bytes(), callout)
    }

    /// Short name for logs: origin and program.
    pub fn label(&self) -> String {
        let program = match &self.action {
            Action::Run { program, .. } => program.source().to_string(),
            Action::Instantiate(_) => "builtin:instantiate".to_string(),
            Action::Negate(_) => "builtin:negate".to_string(),
        };
        format!("{} {}", self.origin, program)
    }
}

/// The handler table: lines in file order, first match wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    rules: Vec<Rule>,
}

impl Config {
    /// The configuration used without `--config`: instantiate every key with
    /// its callout information.
    pub fn builtin_default() -> Config {
        let rules = parse("create * * * builtin:instantiate %c\n", "(default)")
            .expect("the default configuration parses");
        Config { rules }
    }

    /// Loads a file, or every `*.conf` file of a directory in name order.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let unreadable = |err: std::io::Error| ConfigError {
            location: path.display().to_string(),
            reason: format!("cannot read: {err}"),
        };
        let metadata = fs::metadata(path).map_err(unreadable)?;
        let files = if metadata.is_dir() {
            let mut files: Vec<PathBuf> = fs::read_dir(path)
                .map_err(unreadable)?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|ext| ext == "conf") && p.is_file())
                .collect();
            files.sort();
            files
        } else {
            vec![path.to_path_buf()]
        };
        let mut rules = Vec::new();
        for file in files {
            let text = fs::read_to_string(&file).map_err(|err| ConfigError {
                location: file.display().to_string(),
                reason: format!("cannot read: {err}"),
            })?;
            rules.extend(parse(&text, &file.display().to_string())?);
        }
        Ok(Config { rules })
    }

    /// The first line that applies to this construction.
    pub fn find(&self, key_type: &str, description: &[u8], callout: &[u8]) -> Option<&Rule> {
        self.rules
            .iter()
            .find(|rule| rule.matches(key_type, description, callout))
    }

    /// All lines, in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
}

/// Parses the text of one configuration file named `file`.
pub fn parse(text: &str, file: &str) -> Result<Vec<Rule>, ConfigError> {
    let mut rules = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let origin = format!("{file}:{}", index + 1);
        let error = |reason: String| ConfigError {
            location: origin.clone(),
            reason,
        };
        let words = split_words(line).map_err(error)?;
        if words.is_empty() {
            continue;
        }
        rules.push(parse_rule(words, origin.clone()).map_err(error)?);
    }
    Ok(rules)
}

fn parse_rule(words: Vec<String>, origin: String) -> Result<Rule, String> {
    if words.len() < 5 {
        return Err(format!(
            "expected OP TYPE DESCRIPTION CALLOUT PROGRAM [ARGS...], found {} field{}",
            words.len(),
            if words.len() == 1 { "" } else { "s" }
        ));
    }
    let mut words = words.into_iter();
    let mut next = || words.next().expect("length checked");
    let (operation, key_type, description, callout) = (next(), next(), next(), next());
    for (name, value) in [("OP", &operation), ("TYPE", &key_type)] {
        if value.is_empty() {
            return Err(format!("empty {name}"));
        }
    }
    let program = next();
    let args: Vec<String> = words.collect();
    let action = if let Some(name) = program.strip_prefix(BUILTIN_PREFIX) {
        parse_builtin(name, &args)?
    } else if program.starts_with('|') {
        return Err("piped programs (|PROGRAM) are not supported".to_string());
    } else if !program.starts_with('/') {
        return Err(format!(
            "PROGRAM \"{program}\" must be an absolute path or builtin:NAME"
        ));
    } else {
        Action::Run {
            program: Template::parse(&program)?,
            args: args
                .iter()
                .map(|arg| Template::parse(arg))
                .collect::<Result<_, _>>()?,
        }
    };
    Ok(Rule {
        origin,
        operation,
        key_type,
        description,
        callout,
        action,
    })
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
            [seconds] => seconds.parse().map(|s| Action::Negate(Some(s))).map_err(|_| {
                format!("builtin:negate: \"{seconds}\" is not a number of seconds")
            }),
            _ => Err("builtin:negate takes at most one argument, SECONDS".into()),
        },
        _ => Err(format!(
            "unknown builtin \"{BUILTIN_PREFIX}{name}\" (known: builtin:instantiate, builtin:negate)"
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

/// Matches `text` against `pattern`, where `*` matches any run of bytes.
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // Position of the last `*` seen and of the text it currently absorbs up to.
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            backtrack = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((star, absorbed)) = backtrack {
            p = star + 1;
            t = absorbed + 1;
            backtrack = Some((star, absorbed + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::Request;

    fn request(key_type: &str, description: &str, callout: &str) -> Request {
        Request {
            serial: 77,
            key_type: key_type.into(),
            description: description.as_bytes().to_vec(),
            callout: callout.as_bytes().to_vec(),
            pid: 1,
            uid: 0,
            gid: 0,
        }
    }

    fn argv(rule: &Rule, req: &Request) -> Vec<String> {
        match &rule.action {
            Action::Run { program, args } => std::iter::once(program)
                .chain(args)
                .map(|t| String::from_utf8(t.expand(req)).unwrap())
                .collect(),
            other => panic!("not a program: {other:?}"),
        }
    }

    fn parse_err(text: &str) -> String {
        parse(text, "test.conf").unwrap_err().to_string()
    }

    #[test]
    fn globs() {
        assert!(glob_match(b"*", b""));
        assert!(glob_match(b"*", b"anything"));
        assert!(glob_match(b"user", b"user"));
        assert!(!glob_match(b"user", b"users"));
        assert!(glob_match(b"debug:*", b"debug:x"));
        assert!(!glob_match(b"debug:*", b"debu"));
        assert!(glob_match(b"*:pw", b"db:pw"));
        assert!(glob_match(b"a*b*c", b"aXXbYYbc"));
        assert!(!glob_match(b"a*b*c", b"aXXbYYb"));
        assert!(glob_match(b"**", b"x"));
        assert!(!glob_match(b"", b"x"));
    }

    #[test]
    fn words_and_quotes() {
        assert_eq!(split_words("  a  b\tc ").unwrap(), ["a", "b", "c"]);
        assert_eq!(
            split_words(r#"x "a b" 'c "d"' e"#).unwrap(),
            ["x", "a b", "c \"d\"", "e"]
        );
        assert_eq!(
            split_words(r#"pre"mid"post ''"#).unwrap(),
            ["premidpost", ""]
        );
        assert_eq!(
            split_words(r#""say \"hi\" \\ \n""#).unwrap(),
            [r#"say "hi" \ \n"#]
        );
        assert_eq!(split_words(r"a\ b").unwrap(), ["a b"]);
        assert_eq!(split_words("a b # comment 'x").unwrap(), ["a", "b"]);
        assert_eq!(split_words("a#b").unwrap(), ["a#b"]);
        assert_eq!(split_words("# only").unwrap(), Vec::<String>::new());
        assert!(split_words("'open").is_err());
        assert!(split_words("\"open").is_err());
        assert!(split_words("end\\").is_err());
    }

    #[test]
    fn request_key_conf_compatible() {
        let text = "\
# request-key.conf
#OP\tTYPE\tDESCRIPTION\tCALLOUT\tPROGRAM ARGS...

create  user    debug:*   negate    /bin/keyctl negate %k 30 %S
create  user    debug:*   rejected  /bin/keyctl reject %k 30 %c %S
create  user    *         *         /bin/keyctl instantiate %k %c %S
negate  *       *         *         /bin/keyctl negate %k 30 %S
";
        let rules = parse(text, "/etc/request-key.conf").unwrap();
        assert_eq!(rules.len(), 4);
        assert_eq!(rules[2].origin, "/etc/request-key.conf:6");
        let config = Config { rules };

        let req = request("user", "debug:1", "negate");
        let rule = config.find("user", &req.description, &req.callout).unwrap();
        assert_eq!(argv(rule, &req), ["/bin/keyctl", "negate", "77", "30", "0"]);

        let req = request("user", "db:pw", "secret");
        let rule = config.find("user", &req.description, &req.callout).unwrap();
        assert_eq!(rule.origin, "/etc/request-key.conf:6");
        assert_eq!(
            argv(rule, &req),
            ["/bin/keyctl", "instantiate", "77", "secret", "0"]
        );

        // The `negate` operation line never applies: the kernel only asks to create.
        assert!(config.find("logon", b"x", b"y").is_none());
    }

    #[test]
    fn first_match_wins() {
        let config = Config {
            rules: parse(
                "create user a* * /bin/first\ncreate user * * /bin/second\n",
                "f",
            )
            .unwrap(),
        };
        assert_eq!(config.find("user", b"abc", b"").unwrap().origin, "f:1");
        assert_eq!(config.find("user", b"xyz", b"").unwrap().origin, "f:2");
        assert!(config.find("dns_resolver", b"abc", b"").is_none());
    }

    #[test]
    fn quoted_shell_handler() {
        let rules = parse(
            r#"create user * * /bin/sh -c '/bin/keyctl instantiate %k "$(hostname):%c" 0'"#,
            "f",
        )
        .unwrap();
        let req = request("user", "d", "hi");
        assert_eq!(
            argv(&rules[0], &req),
            [
                "/bin/sh",
                "-c",
                r#"/bin/keyctl instantiate 77 "$(hostname):hi" 0"#
            ]
        );
        assert_eq!(rules[0].label(), "f:1 /bin/sh");
    }

    #[test]
    fn builtins() {
        let rules = parse(
            "create * * * builtin:instantiate\n\
             create * * * builtin:instantiate \"%t=%c\"\n\
             create * * * builtin:negate\n\
             create * * * builtin:negate 5\n",
            "f",
        )
        .unwrap();
        let req = request("user", "d", "cb");
        match &rules[0].action {
            Action::Instantiate(t) => assert_eq!(t.expand(&req), b"cb"),
            other => panic!("{other:?}"),
        }
        match &rules[1].action {
            Action::Instantiate(t) => assert_eq!(t.expand(&req), b"user=cb"),
            other => panic!("{other:?}"),
        }
        assert_eq!(rules[2].action, Action::Negate(None));
        assert_eq!(rules[3].action, Action::Negate(Some(5)));
        assert_eq!(rules[3].label(), "f:4 builtin:negate");
    }

    #[test]
    fn default_configuration() {
        let config = Config::builtin_default();
        assert_eq!(config.rules().len(), 1);
        let rule = config.find("dns_resolver", b"example.org", b"a").unwrap();
        assert_eq!(rule.origin, "(default):1");
        assert!(matches!(rule.action, Action::Instantiate(_)));
    }

    #[test]
    fn errors_name_file_and_line() {
        assert_eq!(
            parse_err("# ok\ncreate user *\n"),
            "test.conf:2: expected OP TYPE DESCRIPTION CALLOUT PROGRAM [ARGS...], found 3 fields"
        );
        assert_eq!(
            parse_err("\n\ncreate user * * /bin/x %k %y\n"),
            "test.conf:3: unknown substitution %y in \"%y\" (known: %k %t %d %c %u %g %T %P %S %%)"
        );
        assert!(parse_err("create user * * /bin/x 100%\n").starts_with("test.conf:1: lone %"));
        assert_eq!(
            parse_err("create user * * keyctl negate\n"),
            "test.conf:1: PROGRAM \"keyctl\" must be an absolute path or builtin:NAME"
        );
        assert_eq!(
            parse_err("create user * * |/bin/x\n"),
            "test.conf:1: piped programs (|PROGRAM) are not supported"
        );
        assert_eq!(
            parse_err("create user * * /bin/sh -c 'echo\n"),
            "test.conf:1: unterminated ' quote"
        );
        assert!(parse_err("create * * * builtin:frobnicate\n").contains("unknown builtin"));
        assert!(parse_err("create * * * builtin:negate soon\n").contains("not a number"));
        assert!(parse_err("create * * * builtin:instantiate a b\n").contains("at most one"));
        assert_eq!(parse_err("\"\" user * * /bin/x\n"), "test.conf:1: empty OP");
    }

    /// A scratch directory removed when dropped.
    struct ScratchDir(PathBuf);

    impl ScratchDir {
        fn new(name: &str) -> ScratchDir {
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
    fn directory_in_name_order() {
        let dir = ScratchDir::new("dir");
        fs::write(dir.0.join("20-b.conf"), "create user * * /bin/b\n").unwrap();
        fs::write(dir.0.join("10-a.conf"), "create user a* * /bin/a\n").unwrap();
        fs::write(dir.0.join("00-ignored.txt"), "not a config line\n").unwrap();
        let config = Config::load(&dir.0).unwrap();
        let origins: Vec<_> = config.rules().iter().map(|r| r.origin.clone()).collect();
        assert_eq!(
            origins,
            [
                format!("{}:1", dir.0.join("10-a.conf").display()),
                format!("{}:1", dir.0.join("20-b.conf").display()),
            ]
        );
    }

    #[test]
    fn file_errors() {
        let dir = ScratchDir::new("file");
        let bad = dir.0.join("bad.conf");
        fs::write(&bad, "create user * * /bin/ok\ncreate user\n").unwrap();
        let err = Config::load(&bad).unwrap_err();
        assert_eq!(err.location, format!("{}:2", bad.display()));

        let missing = dir.0.join("missing.conf");
        let err = Config::load(&missing).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{}: cannot read: ", missing.display())),
            "{err}"
        );
    }
}
