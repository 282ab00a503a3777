//! The console/script line grammar: a tokenizer and a parser into [`Statement`].
//!
//! This is the grammar of the original `e7d` console (reference §4.3–4.4) with its bugs fixed (B12,
//! B13): every line either parses into a [`Statement`] or gives a [`SyntaxError`] that says what was
//! wrong and what would be right; nothing is ever read from a stale or missing token.
//!
//! ```text
//! allow|block [PROTO] [PATH] [QUALIFIERS]   add a rule (no argument: `block` = set mode block,
//!                                     `allow` = set mode disabled, as the original)
//! clear [allow|block] | [PROTO] PATH [QUALIFIERS]
//! QUALIFIERS: [to DEST] [port PORTS] [user USER], each at most once, in any order:
//!   DEST  = IPv4/IPv6 address or prefix, localhost, lan, internet, any
//!   PORTS = 53 | 1024-65535 | 80,443 (tcp, udp, udplite, sctp, any)
//!   USER  = a user name (resolved here, from /etc/passwd) or a uid
//! enable | disable                    set mode enabled / disabled
//! set FLAG VALUE    get FLAG          query [allow|block]
//! bye | disconnect  quit | exit       help
//! # comment                           (also after a command: `allow /x  # note`)
//! ```
//!
//! Tokens are separated by blanks; double quotes group a path with spaces (`"/opt/my app/run"`),
//! inside quotes `\"` and `\\` stand for `"` and `\`. A `#` starts a comment only at the start of a
//! token outside quotes, so `/usr/bin/c#` is a path. Keywords (commands, protocol, flag and value
//! aliases) are case-insensitive; paths are not.
//!
//! The alias tables are NOT repeated here: protocols, flags and values are resolved through
//! e7-proto ([`Const::from_alias`], [`Flag::from_alias`], [`Flag::validate`]), so the console, the
//! kernel and the C header can never disagree. The README's spellings (`disable`, `enable`,
//! `disconnect`) are accepted next to the original's (`disabled`, `enabled`, `bye`).

use crate::error::SyntaxError;
pub use crate::kernel::Change;
use e7_proto::qual::{Dest, Ports, Qualifiers};
use e7_proto::{Const, Flag, ValueClass};

/// Longest line accepted, in bytes (a 255-byte path plus a command, with generous room for
/// comments and quoting). Longer lines are refused with a clear error, never truncated.
pub const MAX_LINE_LEN: usize = 4096;

pub use e7_proto::Action;

/// The action named by `word` (`allow` or `block`, case-insensitive).
pub fn action_from_word(word: &str) -> Option<Action> {
    Action::from_alias(&word.to_ascii_lowercase())
}

/// What `clear` removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClearSpec {
    /// `clear`: every rule.
    All,
    /// `clear allow` / `clear block`: every rule with this action.
    Action(Action),
    /// `clear [PROTO] PATH`: the one rule with this protocol (`any` when not given) and path.
    Rule {
        /// The rule's protocol (ANY = 0xFFFF_FFFF when not given).
        prot: u32,
        /// The rule's path.
        path: String,
    },
    /// `clear [PROTO] PATH to ... port ... user ...`: the one qualified rule with exactly these.
    Qualified {
        /// The rule's protocol.
        prot: u32,
        /// The rule's path.
        path: String,
        /// Its qualifiers (at least one set).
        qual: Qualifiers,
    },
}

/// One parsed console/script line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Statement {
    /// A blank line or a comment: nothing to do.
    Empty,
    /// `allow|block [PROTO] PATH`, `enable`, `clear ...`, `set FLAG VALUE` (and the mode
    /// shortcuts `allow`, `block`, `disable`): a change, sent to the kernel as it is.
    Change(Change),
    /// `get FLAG`.
    Get(Flag),
    /// `query [allow|block]`: list rules, optionally only those with this action.
    Query(Option<Action>),
    /// `bye` / `disconnect`: tell the kernel to stop sending us events.
    Disconnect,
    /// `quit` / `exit`: leave the console (sends DISCONNECT on the way out).
    Quit,
    /// `help`: print the grammar.
    Help,
}

/// The console help text (also printed for an unknown command).
pub const HELP: &str = "\
commands:
  allow|block [PROTO] PATH        add a rule: allow udp /usr/bin/ping, block /usr/bin/socat
    ... to DEST port PORTS user USER  qualifiers, each optional: allow tcp /usr/bin/firefox to any
                                  port 80,443; block any / to 10.0.0.0/8; block any / user guest
                                  (DEST: address, prefix, localhost, lan, internet, any)
  allow | block                   no argument: set mode disabled | set mode block
  clear                           remove every rule
  clear allow|block               remove every allow (block) rule
  clear [PROTO] PATH [QUALIFIERS] remove one rule: clear tcp /usr/bin/socat
  enable | disable                set mode enabled | disabled
  set FLAG VALUE                  set mode enabled, set unkrule block
  get FLAG                        get mode, get uptime
  query [allow|block]             list the rules
  bye | disconnect                stop receiving kernel events
  quit | exit                     leave
  # text                          comment
PROTO is any IP protocol by name (tcp, udp, icmp, icmpv6, sctp, udplite, gre, ...) or number
0-255, or any; PATH is absolute (links are resolved to the real path), a folder ends in /;
quote paths with spaces: allow tcp \"/opt/my app/bin/run\"";

/// Split a line into tokens (see the module docs). A `#` at the start of a token ends the line.
pub fn tokenize(line: &str) -> Result<Vec<String>, SyntaxError> {
    if line.len() > MAX_LINE_LEN {
        return Err(SyntaxError::new(format!(
            "line too long: {} bytes, at most {MAX_LINE_LEN} are accepted (a path has at most {} bytes)",
            line.len(),
            e7_proto::MAX_PATH_LEN
        )));
    }
    let mut tokens = Vec::new();
    let mut current: Option<String> = None;
    let mut quote_col: Option<usize> = None;
    let mut chars = line.chars().enumerate().peekable();
    while let Some((i, c)) = chars.next() {
        let col = i + 1;
        if quote_col.is_some() {
            match c {
                '"' => quote_col = None,
                '\\' if matches!(chars.peek(), Some((_, '"' | '\\'))) => {
                    if let Some((_, escaped)) = chars.next() {
                        current.get_or_insert_with(String::new).push(escaped);
                    }
                }
                c if c.is_control() && c != '\t' => return Err(control_char(c, col)),
                c => current.get_or_insert_with(String::new).push(c),
            }
            continue;
        }
        match c {
            ' ' | '\t' | '\r' | '\n' => {
                if let Some(tok) = current.take() {
                    tokens.push(tok);
                }
            }
            '#' if current.is_none() => break,
            '"' => {
                quote_col = Some(col);
                current.get_or_insert_with(String::new);
            }
            c if c.is_control() => return Err(control_char(c, col)),
            c => current.get_or_insert_with(String::new).push(c),
        }
    }
    if let Some(col) = quote_col {
        return Err(SyntaxError::new(format!(
            "mismatched quotes: the `\"` at column {col} is never closed"
        )));
    }
    if let Some(tok) = current.take() {
        tokens.push(tok);
    }
    Ok(tokens)
}

fn control_char(c: char, col: usize) -> SyntaxError {
    SyntaxError::new(format!(
        "control character U+{:04X} at column {col}; lines hold printable text only",
        u32::from(c)
    ))
}

/// Parse one console or script line.
pub fn parse_line(line: &str) -> Result<Statement, SyntaxError> {
    let tokens = tokenize(line)?;
    parse_tokens(&tokens)
}

/// Parse already split tokens (the one-shot subcommands pass their arguments here, so the command
/// line and the console share one grammar).
pub fn parse_tokens<S: AsRef<str>>(tokens: &[S]) -> Result<Statement, SyntaxError> {
    let Some((first, args)) = tokens.split_first() else {
        return Ok(Statement::Empty);
    };
    let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    let word = first.as_ref().to_ascii_lowercase();
    match word.as_str() {
        "allow" | "block" => {
            let action = if word == "allow" {
                Action::Allow
            } else {
                Action::Block
            };
            parse_rule(action, &args)
        }
        "clear" => parse_clear(&args),
        "enable" => {
            no_args("enable", &args)?;
            Ok(Statement::Change(Change::Enable))
        }
        "disable" => {
            no_args("disable", &args)?;
            Ok(Statement::Change(Change::Set {
                flag: Flag::Mode,
                value: Const::Disabled.value(),
            }))
        }
        "set" => {
            let [flag, value] = args.as_slice() else {
                return Err(arity("set", "FLAG VALUE", "set unkrule block", args.len()));
            };
            let flag = parse_flag(flag)?;
            let value = parse_flag_value(flag, value)?;
            Ok(Statement::Change(Change::Set { flag, value }))
        }
        "get" => {
            let [flag] = args.as_slice() else {
                return Err(arity("get", "FLAG", "get mode", args.len()));
            };
            Ok(Statement::Get(parse_flag(flag)?))
        }
        "query" => match args.as_slice() {
            [] => Ok(Statement::Query(None)),
            [filter] => match action_from_word(filter) {
                Some(action) => Ok(Statement::Query(Some(action))),
                None => Err(SyntaxError::new(format!(
                    "query: unknown filter `{filter}`; use `query`, `query allow` or `query block`"
                ))),
            },
            _ => Err(arity("query", "[allow|block]", "query allow", args.len())),
        },
        "bye" | "disconnect" => {
            no_args(&word, &args)?;
            Ok(Statement::Disconnect)
        }
        "quit" | "exit" => {
            no_args(&word, &args)?;
            Ok(Statement::Quit)
        }
        "help" | "?" => Ok(Statement::Help),
        _ => Err(SyntaxError::new(format!(
            "unknown command `{}`; commands are allow, block, clear, enable, disable, set, get, \
             query, bye, disconnect, quit, help",
            first.as_ref()
        ))),
    }
}

fn no_args(command: &str, args: &[&str]) -> Result<(), SyntaxError> {
    if args.is_empty() {
        Ok(())
    } else {
        Err(SyntaxError::new(format!(
            "`{command}` takes no arguments, got {} (`{}`)",
            args.len(),
            args.join(" ")
        )))
    }
}

fn arity(command: &str, usage: &str, example: &str, got: usize) -> SyntaxError {
    SyntaxError::new(format!(
        "usage: {command} {usage} (for example `{example}`); got {got} argument{}",
        if got == 1 { "" } else { "s" }
    ))
}

/// The words that start a qualifier clause.
const QUALIFIER_WORDS: [&str; 3] = ["to", "port", "user"];

/// Splits `args` into the rule part and the qualifiers after it (`to`, `port`, `user`), parsed.
fn split_qualifiers<'a, 'b>(
    command: &str,
    args: &'b [&'a str],
) -> Result<(&'b [&'a str], Qualifiers), SyntaxError> {
    let at = args
        .iter()
        .position(|a| QUALIFIER_WORDS.contains(&a.to_ascii_lowercase().as_str()))
        .unwrap_or(args.len());
    let (rule, rest) = args.split_at(at);
    Ok((rule, parse_qualifiers(command, rest)?))
}

/// Parses `to DEST`, `port PORTS`, `user USER` clauses (each at most once, any order).
pub fn parse_qualifiers(command: &str, mut rest: &[&str]) -> Result<Qualifiers, SyntaxError> {
    let mut q = Qualifiers::NONE;
    let mut seen: Vec<String> = Vec::new();
    while let [word, tail @ ..] = rest {
        let w = word.to_ascii_lowercase();
        if !QUALIFIER_WORDS.contains(&w.as_str()) {
            return Err(SyntaxError::new(format!(
                "`{command}`: unexpected `{word}`; after the path come qualifiers: `to DEST`, \
                 `port PORTS`, `user USER` (quote a path that contains spaces)"
            )));
        }
        if seen.contains(&w) {
            return Err(SyntaxError::new(format!(
                "`{command}`: `{w}` is given twice; a rule has at most one `{w}` (a port list \
                 is written 80,443)"
            )));
        }
        let Some((value, tail)) = tail.split_first() else {
            let example = match w.as_str() {
                "to" => "to 10.0.0.0/8, to lan, to 2001:db8::/32",
                "port" => "port 443, port 80,443, port 1024-65535",
                _ => "user guest, user 1000",
            };
            return Err(SyntaxError::new(format!(
                "`{command}`: `{w}` needs a value: {example}"
            )));
        };
        match w.as_str() {
            "to" => {
                q.dest = Dest::parse(&value.to_ascii_lowercase())
                    .map_err(|e| SyntaxError::new(format!("destination `{value}`: {e}")))?;
            }
            "port" => {
                q.ports = Some(
                    Ports::parse(value)
                        .map_err(|e| SyntaxError::new(format!("port `{value}`: {e}")))?,
                );
            }
            _ => q.uid = Some(parse_user(value)?),
        }
        seen.push(w);
        rest = tail;
    }
    Ok(q)
}

/// A uid (decimal, not 4294967295 = -1) or a user name looked up in `/etc/passwd`.
pub fn parse_user(token: &str) -> Result<u32, SyntaxError> {
    if !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()) {
        return match token.parse::<u32>() {
            Ok(u) if u != u32::MAX => Ok(u),
            _ => Err(SyntaxError::new(format!(
                "uid `{token}` is out of range: a uid is 0..=4294967294"
            ))),
        };
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let uid = f.nth(1)?.parse::<u32>().ok()?;
            (name == token).then_some(uid)
        })
        .next()
        .ok_or_else(|| {
            SyntaxError::new(format!(
                "user `{token}` does not exist (not in /etc/passwd): give a user name or a uid"
            ))
        })
}

/// A rule statement: plain, or qualified when any qualifier is set. Ports are checked against the
/// protocol here, so `e7 check` reports `allow icmp /x port 53` before anything is sent.
fn rule_statement(
    action: Action,
    prot: u32,
    path: String,
    qual: Qualifiers,
) -> Result<Statement, SyntaxError> {
    qual.check(prot).map_err(|e| {
        SyntaxError::new(format!(
            "`{} {} {path}`: {e}",
            action.alias(),
            protocol_word(prot)
        ))
    })?;
    Ok(Statement::Change(if qual.is_none() {
        Change::AddRule { action, prot, path }
    } else {
        Change::AddQualified {
            action,
            prot,
            path,
            qual,
        }
    }))
}

fn parse_rule(action: Action, all: &[&str]) -> Result<Statement, SyntaxError> {
    let name = action.alias();
    let (args, qual) = split_qualifiers(name, all)?;
    if !qual.is_none() && args.is_empty() {
        return Err(SyntaxError::new(format!(
            "`{name}` needs [PROTO] PATH before the qualifiers: `{name} any / to 10.0.0.0/8`"
        )));
    }
    match args {
        // The original grammar: `block` alone is "set mode block", `allow` alone "set mode disabled".
        // Sent as SET mode so the kernel acks it cleanly (the original's ERROR reply was bug B2).
        [] => Ok(Statement::Change(Change::Set {
            flag: Flag::Mode,
            value: match action {
                Action::Allow => Const::Disabled.value(),
                Action::Block => Const::Block.value(),
            },
        })),
        [one] if one.starts_with('/') => {
            rule_statement(action, Const::Any.value(), parse_path(one)?, qual)
        }
        [one] => {
            let prot = parse_protocol(one)?;
            let proto = e7_proto::protocol_name(prot).unwrap_or("any");
            Err(SyntaxError::new(format!(
                "`{name} {one}` needs a PATH after the protocol: `{name} {proto} /usr/bin/ping` \
                 (a folder ends in `/`; `{name} {proto} /` covers every program)"
            )))
        }
        [prot, path] => {
            let prot = parse_protocol(prot)?;
            let path = parse_path(path)?;
            rule_statement(action, prot, path, qual)
        }
        _ => Err(SyntaxError::new(format!(
            "`{name}` takes at most 2 arguments ([PROTO] PATH) and then qualifiers (`to DEST`, \
             `port PORTS`, `user USER`), got {} (`{}` after the path); quote a path that \
             contains spaces: {name} tcp \"/opt/my app/run\"",
            args.len(),
            args.get(2).copied().unwrap_or("")
        ))),
    }
}

fn parse_clear(all: &[&str]) -> Result<Statement, SyntaxError> {
    let (args, qual) = split_qualifiers("clear", all)?;
    if !qual.is_none() {
        let (prot, path) =
            match args {
                [path] if path.starts_with('/') => (Const::Any.value(), parse_path(path)?),
                [prot, path] => (parse_protocol(prot)?, parse_path(path)?),
                _ => return Err(SyntaxError::new(
                    "usage: clear [PROTO] PATH to DEST port PORTS user USER (the qualified rule \
                     exactly as added, for example `clear any / to 10.0.0.0/8`)",
                )),
            };
        return Ok(Statement::Change(Change::Clear(ClearSpec::Qualified {
            prot,
            path,
            qual,
        })));
    }
    match args {
        [] => Ok(Statement::Change(Change::Clear(ClearSpec::All))),
        [one] => {
            if let Some(action) = action_from_word(one) {
                Ok(Statement::Change(Change::Clear(ClearSpec::Action(action))))
            } else if one.starts_with('/') {
                Ok(Statement::Change(Change::Clear(ClearSpec::Rule {
                    prot: Const::Any.value(),
                    path: parse_path(one)?,
                })))
            } else {
                let prot = parse_protocol(one)?;
                let proto = protocol_word(prot);
                Err(SyntaxError::new(format!(
                    "`clear {one}` needs the rule's PATH: `clear {proto} /usr/bin/ping`; \
                     `clear` alone removes every rule, `clear allow|block` every allow|block rule"
                )))
            }
        }
        [prot, path] => Ok(Statement::Change(Change::Clear(ClearSpec::Rule {
            prot: parse_protocol(prot)?,
            path: parse_path(path)?,
        }))),
        _ => Err(SyntaxError::new(format!(
            "usage: clear [allow|block] | [PROTO] PATH; got {} arguments; quote a path that \
             contains spaces",
            args.len()
        ))),
    }
}

/// The protocol names a rule may use, from the e7-proto schema (`icmp, tcp, udp, ..., any`); any
/// other IP protocol is named by its number 0..=255.
pub fn rule_protocol_aliases() -> Vec<&'static str> {
    e7_proto::validate::RULE_PROTOCOLS
        .iter()
        .map(|c| c.alias())
        .collect()
}

/// Parse a rule protocol: an alias (`udp`, case-insensitive) or a number (`17`), both checked by
/// e7-proto (`parse_protocol_token`, `validate_rule_protocol`).
pub fn parse_protocol(token: &str) -> Result<u32, SyntaxError> {
    if token.contains('/') {
        return Err(SyntaxError::new(format!(
            "path `{token}` is not absolute: a path starts with `/`"
        )));
    }
    let lower = token.to_ascii_lowercase();
    let value = e7_proto::parse_protocol_token(&lower).map_err(|e| {
        if !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()) {
            SyntaxError::new(format!(
                "protocol number `{token}` is too large: IP protocol numbers are 0..={}",
                e7_proto::MAX_IP_PROTOCOL
            ))
        } else {
            SyntaxError::new(e.to_string())
        }
    })?;
    e7_proto::validate_rule_protocol(value).map_err(|e| SyntaxError::new(e.to_string()))?;
    Ok(value)
}

/// Parse a rule path: absolute, at most 255 bytes, canonical (checked by e7-proto).
pub fn parse_path(token: &str) -> Result<String, SyntaxError> {
    if !token.starts_with('/') {
        return Err(SyntaxError::new(format!(
            "path `{token}` is not absolute: a path starts with `/` (a folder ends with `/`)"
        )));
    }
    e7_proto::validate_rule_path(token.as_bytes())
        .map_err(|e| SyntaxError::new(format!("path `{}`: {e}", shorten(token))))?;
    Ok(token.to_string())
}

fn shorten(s: &str) -> String {
    const KEEP: usize = 60;
    if s.chars().count() <= KEEP {
        s.to_string()
    } else {
        let head: String = s.chars().take(KEEP).collect();
        format!("{head}… ({} bytes)", s.len())
    }
}

/// Every flag alias, from e7-proto, for error messages.
pub fn flag_aliases() -> Vec<&'static str> {
    Flag::ALL.iter().map(|f| f.alias()).collect()
}

/// Parse a flag: its alias (`mode`, `unkrule`..., case-insensitive) or its index (e7-proto's
/// `parse_flag_token`).
pub fn parse_flag(token: &str) -> Result<Flag, SyntaxError> {
    e7_proto::parse_flag_token(&token.to_ascii_lowercase())
        .map_err(|e| SyntaxError::new(e.to_string()))
}

/// Parse a value for `set FLAG VALUE`: a constant alias (also the README's `enable`/`disable`) or a
/// number, checked against the flag's class by e7-proto (`Flag::parse_value`).
pub fn parse_flag_value(flag: Flag, token: &str) -> Result<u32, SyntaxError> {
    let lower = token.to_ascii_lowercase();
    let spelled = match lower.as_str() {
        "enable" => "enabled",
        "disable" => "disabled",
        other => other,
    };
    flag.parse_value(spelled).map_err(|e| {
        let mut message = e.to_string();
        if flag.class() == ValueClass::ReadOnly {
            message.push_str(&format!("; read it with `get {}`", flag.alias()));
        }
        SyntaxError::new(message)
    })
}

/// Render a path for a script line: bare when it re-tokenizes to itself, else double-quoted.
pub fn quote_path(path: &str) -> String {
    let plain = !path.is_empty()
        && !path.starts_with('#')
        && path
            .chars()
            .all(|c| !c.is_whitespace() && c != '"' && c != '\\' && !c.is_control());
    if plain {
        return path.to_string();
    }
    let mut out = String::with_capacity(path.len() + 2);
    out.push('"');
    for c in path.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// A protocol as a word: its alias, or its number when it has none.
pub fn protocol_word(prot: u32) -> String {
    match e7_proto::protocol_name(prot) {
        Some(name) => name.to_string(),
        None => prot.to_string(),
    }
}

/// The script line that adds this rule (`allow udp /usr/bin/ping`,
/// `allow tcp /usr/bin/firefox to any port 80,443`, `block any / user 1001`).
pub fn rule_line(action: Action, prot: u32, path: &str, qual: &Qualifiers) -> String {
    format!(
        "{} {} {}{qual}",
        action.alias(),
        protocol_word(prot),
        quote_path(path)
    )
}

/// A flag value as a word: the constant alias for classes that take aliases, else the number.
pub fn value_word(flag: Flag, value: u32) -> String {
    if flag.class() != ValueClass::ReadOnly {
        if let Ok(c) = Const::try_from(value) {
            if flag.validate(value).is_ok() {
                return c.alias().to_string();
            }
        }
    }
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(action: Action, prot: u32, path: &str) -> Statement {
        Statement::Change(Change::AddRule {
            action,
            prot,
            path: path.into(),
        })
    }

    fn err(line: &str) -> String {
        match parse_line(line) {
            Err(e) => e.message,
            Ok(s) => panic!("`{line}` parsed as {s:?}, expected an error"),
        }
    }

    const ANY: u32 = 0xFFFF_FFFF;

    #[test]
    fn every_readme_example_line_parses() {
        use Statement as S;
        let cases: Vec<(&str, Statement)> = vec![
            ("allow udp /bin/ping", rule(Action::Allow, 17, "/bin/ping")),
            (
                "allow tcp /bin/netcat",
                rule(Action::Allow, 6, "/bin/netcat"),
            ),
            (
                "allow tcp /usr/bin/socat",
                rule(Action::Allow, 6, "/usr/bin/socat"),
            ),
            (
                "clear tcp /usr/bin/socat",
                S::Change(Change::Clear(ClearSpec::Rule {
                    prot: 6,
                    path: "/usr/bin/socat".into(),
                })),
            ),
            (
                "allow /usr/lib/firefox/firefox",
                rule(Action::Allow, ANY, "/usr/lib/firefox/firefox"),
            ),
            (
                "clear allow",
                S::Change(Change::Clear(ClearSpec::Action(Action::Allow))),
            ),
            (
                "block udp /usr/bin/socat",
                rule(Action::Block, 17, "/usr/bin/socat"),
            ),
            (
                "clear block",
                S::Change(Change::Clear(ClearSpec::Action(Action::Block))),
            ),
            (
                "set mode disable",
                S::Change(Change::Set {
                    flag: Flag::Mode,
                    value: Const::Disabled.value(),
                }),
            ),
            ("get mode", S::Get(Flag::Mode)),
            ("# comment", S::Empty),
            ("query", S::Query(None)),
            ("query allow", S::Query(Some(Action::Allow))),
            ("query block", S::Query(Some(Action::Block))),
            ("quit", S::Quit),
            ("disconnect", S::Disconnect),
            ("allow any /bin/", rule(Action::Allow, ANY, "/bin/")),
            ("block tcp /usr/bin/", rule(Action::Block, 6, "/usr/bin/")),
        ];
        for (line, want) in cases {
            assert_eq!(parse_line(line), Ok(want), "line `{line}`");
        }
    }

    #[test]
    fn original_spellings_parse_too() {
        assert_eq!(
            parse_line("set mode disabled"),
            parse_line("set mode disable")
        );
        assert_eq!(parse_line("bye"), Ok(Statement::Disconnect));
        assert_eq!(parse_line("enable"), Ok(Statement::Change(Change::Enable)));
        assert_eq!(
            parse_line("set mode enable"),
            Ok(Statement::Change(Change::Set {
                flag: Flag::Mode,
                value: Const::Enabled.value()
            }))
        );
        assert_eq!(
            parse_line("block"),
            Ok(Statement::Change(Change::Set {
                flag: Flag::Mode,
                value: Const::Block.value()
            }))
        );
        assert_eq!(
            parse_line("allow"),
            Ok(Statement::Change(Change::Set {
                flag: Flag::Mode,
                value: Const::Disabled.value()
            }))
        );
        assert_eq!(
            parse_line("allow 17 /usr/bin/ping"),
            Ok(rule(Action::Allow, 17, "/usr/bin/ping"))
        );
        assert_eq!(
            parse_line("ALLOW UDP /usr/bin/ping"),
            Ok(rule(Action::Allow, 17, "/usr/bin/ping"))
        );
        assert_eq!(
            parse_line("clear"),
            Ok(Statement::Change(Change::Clear(ClearSpec::All)))
        );
        assert!(err("clear udp").contains("needs the rule's PATH"));
        assert_eq!(
            parse_line("clear /usr/bin/x"),
            Ok(Statement::Change(Change::Clear(ClearSpec::Rule {
                prot: ANY,
                path: "/usr/bin/x".into()
            })))
        );
        assert_eq!(
            parse_line("set unkrule 65280"),
            Ok(Statement::Change(Change::Set {
                flag: Flag::from_alias("unkrule").unwrap(),
                value: 0xFF00
            }))
        );
    }

    #[test]
    fn blank_and_comment_lines_are_empty() {
        for line in [
            "",
            "   ",
            "\t",
            "#",
            "# allow udp /x",
            "   # indented",
            "\r",
        ] {
            assert_eq!(parse_line(line), Ok(Statement::Empty), "line {line:?}");
        }
        assert_eq!(
            parse_line("allow udp /usr/bin/ping   # note"),
            Ok(rule(Action::Allow, 17, "/usr/bin/ping"))
        );
        // `#` inside a token or inside quotes is part of the path.
        assert_eq!(
            parse_line("allow /usr/bin/c#"),
            Ok(rule(Action::Allow, ANY, "/usr/bin/c#"))
        );
        assert_eq!(
            parse_line("allow \"/opt/#1/x\""),
            Ok(rule(Action::Allow, ANY, "/opt/#1/x"))
        );
    }

    #[test]
    fn quotes_group_paths_with_spaces() {
        assert_eq!(
            parse_line("allow tcp \"/opt/my app/run\""),
            Ok(rule(Action::Allow, 6, "/opt/my app/run"))
        );
        assert_eq!(
            parse_line("block \"/opt/a  b/\""),
            Ok(rule(Action::Block, ANY, "/opt/a  b/"))
        );
        assert_eq!(
            tokenize(r#"allow "/a \"q\" \\ b""#).unwrap(),
            vec!["allow".to_string(), r#"/a "q" \ b"#.to_string()]
        );
        // Quotes may join parts of one token, like a shell.
        assert_eq!(
            tokenize(r#"/opt/"my app"/x"#).unwrap(),
            vec!["/opt/my app/x"]
        );
        assert_eq!(tokenize(r#"a "" b"#).unwrap(), vec!["a", "", "b"]);
    }

    #[test]
    fn mismatched_quotes_are_a_clear_error() {
        let e = err("allow tcp \"/opt/my app/run");
        assert!(
            e.contains("mismatched quotes") && e.contains("column 11"),
            "{e}"
        );
        let e = err("\"");
        assert!(e.contains("column 1"), "{e}");
    }

    #[test]
    fn seven_or_more_tokens_are_refused_not_overflowed() {
        let e = err("allow tcp /a /b /c /d /e");
        assert!(
            e.contains("at most 2 arguments") && e.contains("got 6"),
            "{e}"
        );
        let e = err("set mode enabled now please thanks");
        assert!(e.starts_with("usage: set FLAG VALUE"), "{e}");
        let many = vec!["x"; 1000].join(" ");
        assert!(err(&format!("clear {many}")).contains("got 1000 arguments"));
        assert!(err(&format!("query {many}")).contains("usage: query"));
        assert!(err(&format!("quit {many}")).contains("takes no arguments"));
    }

    #[test]
    fn overlong_lines_are_refused() {
        let line = format!("allow /{}", "a".repeat(MAX_LINE_LEN));
        let e = err(&line);
        assert!(e.starts_with("line too long"), "{e}");
        // Within the line limit but over the path limit: e7-proto's path rule speaks.
        let line = format!("allow /{}", "a".repeat(300));
        let e = err(&line);
        assert!(e.starts_with("path `/aaaa"), "{e}");
        // The 255-byte path is fine.
        let path = format!("/{}", "a".repeat(254));
        assert_eq!(
            parse_line(&format!("allow {path}")),
            Ok(rule(Action::Allow, ANY, &path))
        );
    }

    #[test]
    fn any_ip_protocol_by_name_or_number() {
        for (line, prot) in [
            ("block sctp /x", 132),
            ("block SCTP /x", 132),
            ("block udplite /x", 136),
            ("block gre /x", 47),
            ("block 47 /x", 47),
            ("block 253 /x", 253),
            ("block 0 /x", 0),
            ("block 255 /x", 255),
        ] {
            assert_eq!(
                parse_line(line),
                Ok(rule(Action::Block, prot, "/x")),
                "{line}"
            );
        }
        // Saved with the name when the schema has one, else the number; both parse back.
        assert_eq!(
            rule_line(Action::Block, 132, "/x", &Qualifiers::NONE),
            "block sctp /x"
        );
        assert_eq!(
            rule_line(Action::Allow, 253, "/x", &Qualifiers::NONE),
            "allow 253 /x"
        );
        for prot in 0..=255u32 {
            let line = rule_line(Action::Allow, prot, "/x", &Qualifiers::NONE);
            assert_eq!(
                parse_line(&line),
                Ok(rule(Action::Allow, prot, "/x")),
                "{line}"
            );
        }
    }

    #[test]
    fn bad_words_name_the_valid_ones() {
        let e = err("allow foo /x");
        assert!(
            e.contains("`foo` is not a protocol") && e.contains("tcp, udp"),
            "{e}"
        );
        let e = err("allow block /x");
        assert!(e.contains("`block` is not a protocol"), "{e}");
        let e = err("allow 256 /x");
        assert!(
            e.contains("protocol 256 does not exist") && e.contains("0..=255"),
            "{e}"
        );
        let e = err("allow 99999999999 /x");
        assert!(e.contains("too large"), "{e}");
        let e = err("allow udp usr/bin/ping");
        assert!(e.contains("not absolute"), "{e}");
        let e = err("allow udp");
        assert!(
            e.contains("needs a PATH") && e.contains("allow udp /usr/bin/ping"),
            "{e}"
        );
        let e = err("get colour");
        assert!(
            e.contains("`colour` is not a flag") && e.contains("mode") && e.contains("unkrule"),
            "{e}"
        );
        let e = err("set mode allow");
        assert!(
            e.contains("not valid for flag `mode`") && e.contains("enabled"),
            "{e}"
        );
        let e = err("set unkrule enabled");
        assert!(e.contains("expected one of allow, block"), "{e}");
        let e = err("set unkrule maybe");
        assert!(
            e.contains("`maybe` is not a valid value for flag `unkrule`"),
            "{e}"
        );
        let e = err("set uptime 5");
        assert!(e.contains("read-only") && e.contains("get uptime"), "{e}");
        let e = err("frobnicate");
        assert!(
            e.contains("unknown command `frobnicate`") && e.contains("allow"),
            "{e}"
        );
        let e = err("query everything");
        assert!(e.contains("unknown filter"), "{e}");
        let e = err("allow /usr//bin/x");
        assert!(e.starts_with("path `/usr//bin/x`"), "{e}");
        let e = err("allow /usr/../bin/x");
        assert!(e.starts_with("path `/usr/../bin/x`"), "{e}");
        let e = err("allow tcp /x\u{1}");
        assert!(e.contains("control character U+0001"), "{e}");
    }

    #[test]
    fn quoting_round_trips() {
        for path in [
            "/usr/bin/ping",
            "/opt/my app/x",
            "/a\"b",
            "/a\\b",
            "/#x",
            "/a\tb/",
        ] {
            let line = format!("allow {}", quote_path(path));
            assert_eq!(
                tokenize(&line).unwrap(),
                vec!["allow".to_string(), path.to_string()]
            );
        }
        assert_eq!(quote_path("/usr/bin/ping"), "/usr/bin/ping");
        assert_eq!(
            rule_line(Action::Block, ANY, "/opt/a b", &Qualifiers::NONE),
            "block any \"/opt/a b\""
        );
        assert_eq!(
            rule_line(Action::Allow, 17, "/usr/bin/ping", &Qualifiers::NONE),
            "allow udp /usr/bin/ping"
        );
    }

    #[test]
    fn value_words_use_aliases_except_for_statistics() {
        assert_eq!(value_word(Flag::Mode, Const::Enabled.value()), "enabled");
        let uptime = Flag::from_alias("uptime").unwrap();
        assert_eq!(value_word(uptime, 6), "6");
        assert_eq!(value_word(Flag::Mode, 12345), "12345");
    }

    #[test]
    fn never_panics_on_arbitrary_lines() {
        let samples = [
            "\"\"\"",
            "\\",
            "\"\\",
            "# \"",
            "allow \"",
            "set",
            "set mode",
            "get",
            "clear a b c",
            "allow \"\"",
            "allow any \"\"",
            "clear \"\"",
            "\u{feff}allow /x",
            "allow /\u{e9}",
        ];
        for s in samples {
            let _ = parse_line(s);
        }
        // A cheap deterministic fuzz over a small alphabet.
        let alphabet = [
            'a', ' ', '"', '\\', '#', '/', 'l', 'o', 'w', 'u', 'd', 'p', '1',
        ];
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            let mut line = String::from("allow ");
            for _ in 0..(state % 24) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                line.push(alphabet[(state % alphabet.len() as u64) as usize]);
            }
            let _ = parse_line(&line);
            state = state.wrapping_add(1);
        }
    }
}
