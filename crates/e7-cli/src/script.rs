//! Rule scripts: `e7 check FILE` (no kernel needed) and `e7 run FILE`.
//!
//! A script is console lines, one per line. Both commands report problems as `FILE:LINE: message`
//! (1-based line numbers), the format editors and CI logs understand.
//!
//! `run` checks the whole script first and applies nothing if any line is malformed, so a typo on
//! line 40 cannot leave the firewall with half a rule set; then it executes line by line and stops at
//! the first line the kernel refuses. Blank and comment lines are skipped without touching the
//! kernel (the original advanced one line per netlink wake-up and stalled on them, bug B12e).

use crate::error::{CliError, SyntaxError, EXIT_USAGE};
use crate::exec::{self, Report};
use crate::grammar::{self, Statement};
use crate::kernel::Kernel;
use std::fmt;
use std::io::Read;

/// A loaded script: its display name and its lines (a line that is not UTF-8 is kept as an error).
#[derive(Debug, Clone)]
pub struct Script {
    /// The name used in `NAME:LINE:` messages (the path as given, `<stdin>` for `-`).
    pub name: String,
    /// The lines, without their line terminators.
    pub lines: Vec<Result<String, SyntaxError>>,
}

/// One problem at one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Script name.
    pub file: String,
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// Why `run` stopped.
#[derive(Debug)]
pub enum RunFailure {
    /// The script could not be read.
    Unreadable(CliError),
    /// Malformed lines: nothing was sent to the kernel.
    Syntax(Vec<Diagnostic>),
    /// The kernel (or the connection) failed at this line; earlier lines were applied.
    Line {
        /// Where.
        at: Diagnostic,
        /// The error, for the exit code.
        error: CliError,
    },
}

impl RunFailure {
    /// The exit code: 2 for syntax errors, else the failing line's error code.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunFailure::Unreadable(e) => e.exit_code(),
            RunFailure::Syntax(_) => EXIT_USAGE,
            RunFailure::Line { error, .. } => error.exit_code(),
        }
    }

    /// The messages to print on stderr, one per line.
    pub fn messages(&self) -> Vec<String> {
        match self {
            RunFailure::Unreadable(e) => vec![e.to_string()],
            RunFailure::Syntax(d) => d.iter().map(ToString::to_string).collect(),
            RunFailure::Line { at, .. } => vec![at.to_string()],
        }
    }
}

impl Script {
    /// Split raw bytes into lines (`\n`, with an optional `\r` before it).
    pub fn from_bytes(name: &str, bytes: &[u8]) -> Script {
        let mut lines: Vec<Result<String, SyntaxError>> = bytes
            .split(|&b| b == b'\n')
            .map(|raw| {
                let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
                String::from_utf8(raw.to_vec()).map_err(|e| {
                    SyntaxError::new(format!(
                        "not valid UTF-8 (invalid byte at column {})",
                        e.utf8_error().valid_up_to() + 1
                    ))
                })
            })
            .collect();
        // A final newline does not start another line.
        if matches!(lines.last(), Some(Ok(l)) if l.is_empty()) {
            lines.pop();
        }
        Script {
            name: name.to_string(),
            lines,
        }
    }

    /// Read a script from a file, or from stdin for `-`.
    pub fn load(path: &str) -> Result<Script, CliError> {
        let mut bytes = Vec::new();
        if path == "-" {
            std::io::stdin()
                .lock()
                .read_to_end(&mut bytes)
                .map_err(|e| CliError::Failed(format!("cannot read the script from stdin: {e}")))?;
            Ok(Script::from_bytes("<stdin>", &bytes))
        } else {
            let bytes = std::fs::read(path)
                .map_err(|e| CliError::Failed(format!("cannot read script `{path}`: {e}")))?;
            Ok(Script::from_bytes(path, &bytes))
        }
    }

    /// Parse every line; the statements with their line numbers, or every error.
    pub fn parse(&self) -> Result<Vec<(usize, Statement)>, Vec<Diagnostic>> {
        let mut good = Vec::new();
        let mut bad = Vec::new();
        for (i, line) in self.lines.iter().enumerate() {
            let number = i + 1;
            match line
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|l| grammar::parse_line(l))
            {
                Ok(stmt) => good.push((number, stmt)),
                Err(e) => bad.push(Diagnostic {
                    file: self.name.clone(),
                    line: number,
                    message: e.message,
                }),
            }
        }
        if bad.is_empty() {
            Ok(good)
        } else {
            Err(bad)
        }
    }

    /// `e7 check`: every problem in the script (empty = valid).
    pub fn check(&self) -> Vec<Diagnostic> {
        self.parse().err().unwrap_or_default()
    }

    /// `e7 check`'s notes: rule paths that lead through a symbolic link and will be sent as the
    /// path the kernel sees ([`crate::resolve`]). Notes do not make a script invalid.
    pub fn notes(&self) -> Vec<Diagnostic> {
        let Ok(statements) = self.parse() else {
            return Vec::new();
        };
        statements
            .iter()
            .filter_map(|(line, stmt)| {
                crate::resolve::statement(stmt).map(|(_, note)| Diagnostic {
                    file: self.name.clone(),
                    line: *line,
                    message: note,
                })
            })
            .collect()
    }

    /// `e7 run`: check everything, then execute line by line, stopping at the first failure.
    /// `quit` ends the script early (successfully). `report` receives each line's result.
    pub fn run(
        &self,
        kernel: &mut dyn Kernel,
        report: &mut dyn FnMut(&Report),
    ) -> Result<usize, RunFailure> {
        let statements = self.parse().map_err(RunFailure::Syntax)?;
        let mut executed = 0;
        for (number, stmt) in statements {
            match stmt {
                Statement::Empty => continue,
                Statement::Quit => break,
                _ => {}
            }
            match exec::execute(kernel, &stmt) {
                Ok(r) => {
                    executed += 1;
                    report(&r);
                }
                Err(error) => {
                    return Err(RunFailure::Line {
                        at: Diagnostic {
                            file: self.name.clone(),
                            line: number,
                            message: error.to_string(),
                        },
                        error,
                    })
                }
            }
        }
        Ok(executed)
    }
}

/// The exit code of `e7 check`: 0 when clean, 2 with diagnostics.
pub fn check_exit_code(diagnostics: &[Diagnostic]) -> u8 {
    if diagnostics.is_empty() {
        0
    } else {
        EXIT_USAGE
    }
}
