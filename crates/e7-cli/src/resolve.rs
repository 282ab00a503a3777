//! Rule paths as the kernel sees them.
//!
//! Why: the module names a program by the path of its executable as the kernel resolves it —
//! every symbolic link followed. On a merged-/usr system `/bin` is a link to `usr/bin`, so a rule
//! for `/bin/telnet` would be accepted and never match (the program is `/usr/bin/telnet`); a rule
//! for `/usr/bin/python3` would never match either (the executable is `/usr/bin/python3.11`). So
//! before a rule is added or removed (console, scripts, one-shot commands) its path is resolved on
//! this machine: the longest existing prefix is canonicalized (all links followed) and the rest
//! appended. When that changes the path, the rule is for the resolved path and a note says so
//! (`e7 check` prints the same note without changing anything). A path that resolves to something
//! a rule cannot name (longer than 255 bytes) is kept as written, with a warning that it will
//! never match.

use crate::grammar::{ClearSpec, Statement};
use crate::kernel::Change;
use std::path::{Component, Path, PathBuf};

/// A rule path after resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The path the rule should name.
    pub path: String,
    /// What changed and why, when something did (one line, no trailing newline).
    pub note: Option<String>,
}

/// Resolves a rule path (absolute, valid; a folder ends in `/`) against this machine's
/// filesystem. See the module docs.
pub fn rule_path(path: &str) -> Resolved {
    let unchanged = Resolved {
        path: path.to_string(),
        note: None,
    };
    let folder = path.ends_with('/');
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return unchanged; // `/`
    }
    let Some(real) = resolve_existing_prefix(Path::new(trimmed)) else {
        return unchanged;
    };
    let Some(mut real) = real.to_str().map(str::to_string) else {
        return unchanged; // not UTF-8: rules are text
    };
    if folder && !real.ends_with('/') {
        real.push('/');
    }
    if real == path {
        return unchanged;
    }
    if let Err(e) = e7_proto::validate_rule_path(real.as_bytes()) {
        return Resolved {
            path: path.to_string(),
            note: Some(format!(
                "warning: `{path}` leads through a symbolic link to `{real}`, which a rule cannot \
                 name ({e}); the kernel sees the program under that path, so this rule will never \
                 match"
            )),
        };
    }
    let what = if folder { "folder" } else { "program" };
    Resolved {
        note: Some(format!(
            "note: `{path}` leads through a symbolic link: the kernel sees this {what} as \
             `{real}`, so the rule is for `{real}`"
        )),
        path: real,
    }
}

/// The canonical form of `path` (every link followed) for its longest existing prefix, with the
/// remaining components appended; `None` when not even `/` resolves.
fn resolve_existing_prefix(path: &Path) -> Option<PathBuf> {
    let comps: Vec<Component<'_>> = path.components().collect();
    // Longest prefix first: usually the whole path exists.
    for keep in (1..=comps.len()).rev() {
        let prefix: PathBuf = comps.iter().take(keep).collect();
        if let Ok(mut real) = std::fs::canonicalize(&prefix) {
            for c in comps.iter().skip(keep) {
                real.push(c);
            }
            return Some(real);
        }
    }
    None
}

/// The statement with its rule path resolved (adding or removing one rule), and the note to show;
/// `None` when nothing changes.
pub fn statement(stmt: &Statement) -> Option<(Statement, String)> {
    match stmt {
        Statement::Change(Change::AddRule { action, prot, path }) => {
            let r = rule_path(path);
            let note = r.note?;
            Some((
                Statement::Change(Change::AddRule {
                    action: *action,
                    prot: *prot,
                    path: r.path,
                }),
                note,
            ))
        }
        Statement::Change(Change::AddQualified {
            action,
            prot,
            path,
            qual,
        }) => {
            let r = rule_path(path);
            let note = r.note?;
            Some((
                Statement::Change(Change::AddQualified {
                    action: *action,
                    prot: *prot,
                    path: r.path,
                    qual: *qual,
                }),
                note,
            ))
        }
        Statement::Change(Change::Clear(ClearSpec::Qualified { prot, path, qual })) => {
            let r = rule_path(path);
            let note = r.note?;
            Some((
                Statement::Change(Change::Clear(ClearSpec::Qualified {
                    prot: *prot,
                    path: r.path,
                    qual: *qual,
                })),
                note,
            ))
        }
        Statement::Change(Change::Clear(ClearSpec::Rule { prot, path })) => {
            let r = rule_path(path);
            let note = r.note?;
            Some((
                Statement::Change(Change::Clear(ClearSpec::Rule {
                    prot: *prot,
                    path: r.path,
                })),
                note,
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grammar::{parse_line, Action};
    use std::os::unix::fs::symlink;

    /// A fresh directory under the system temp dir (canonical, removed on drop).
    struct TempTree(PathBuf);

    impl TempTree {
        fn new(tag: &str) -> TempTree {
            let base = std::fs::canonicalize(std::env::temp_dir()).unwrap();
            let dir = base.join(format!("e7-resolve-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempTree(dir)
        }
        fn p(&self, rel: &str) -> String {
            format!("{}/{rel}", self.0.display())
        }
    }

    impl Drop for TempTree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A merged-/usr layout: `bin -> usr/bin`, `usr/bin/telnet`, `usr/bin/python3 -> python3.11`.
    fn merged_usr(tag: &str) -> TempTree {
        let t = TempTree::new(tag);
        std::fs::create_dir_all(t.0.join("usr/bin")).unwrap();
        std::fs::write(t.0.join("usr/bin/telnet"), b"").unwrap();
        std::fs::write(t.0.join("usr/bin/python3.11"), b"").unwrap();
        symlink("python3.11", t.0.join("usr/bin/python3")).unwrap();
        symlink("usr/bin", t.0.join("bin")).unwrap();
        t
    }

    #[test]
    fn a_program_behind_a_directory_link_resolves_to_the_real_path() {
        let t = merged_usr("dir");
        let r = rule_path(&t.p("bin/telnet"));
        assert_eq!(r.path, t.p("usr/bin/telnet"));
        let note = r.note.unwrap();
        assert!(
            note.contains(&t.p("bin/telnet")) && note.contains(&t.p("usr/bin/telnet")),
            "{note}"
        );
    }

    #[test]
    fn a_program_link_resolves_to_its_target() {
        let t = merged_usr("file");
        assert_eq!(
            rule_path(&t.p("usr/bin/python3")).path,
            t.p("usr/bin/python3.11")
        );
        assert_eq!(
            rule_path(&t.p("bin/python3")).path,
            t.p("usr/bin/python3.11")
        );
    }

    #[test]
    fn folders_and_not_yet_installed_programs_resolve_by_their_existing_prefix() {
        let t = merged_usr("prefix");
        let r = rule_path(&t.p("bin/"));
        assert_eq!(r.path, t.p("usr/bin/"));
        assert!(r.note.unwrap().contains("folder"));
        assert_eq!(rule_path(&t.p("bin/newtool")).path, t.p("usr/bin/newtool"));
        assert_eq!(
            rule_path(&t.p("bin/sub/dir/")).path,
            t.p("usr/bin/sub/dir/")
        );
    }

    #[test]
    fn real_and_unknown_paths_are_left_alone() {
        let t = merged_usr("plain");
        for p in [
            t.p("usr/bin/telnet"),
            t.p("usr/bin/"),
            t.p("nope/x"),
            "/".to_string(),
        ] {
            assert_eq!(
                rule_path(&p),
                Resolved {
                    path: p.clone(),
                    note: None
                }
            );
        }
    }

    #[test]
    fn a_link_to_a_path_too_long_for_a_rule_is_kept_with_a_warning() {
        let t = merged_usr("long");
        let deep = t.0.join("d".repeat(200)).join("e".repeat(100));
        std::fs::create_dir_all(&deep).unwrap();
        symlink(&deep, t.0.join("short")).unwrap();
        let r = rule_path(&t.p("short/prog"));
        assert_eq!(r.path, t.p("short/prog"));
        let note = r.note.unwrap();
        assert!(
            note.starts_with("warning:") && note.contains("never match"),
            "{note}"
        );
    }

    #[test]
    fn rules_and_clears_are_rewritten_other_statements_are_not() {
        let t = merged_usr("stmt");
        let line = format!("block any {}", t.p("bin/telnet"));
        let (s, note) = statement(&parse_line(&line).unwrap()).unwrap();
        assert_eq!(
            s,
            Statement::Change(Change::AddRule {
                action: Action::Block,
                prot: u32::MAX,
                path: t.p("usr/bin/telnet"),
            })
        );
        assert!(note.starts_with("note:"));
        let (s, _) =
            statement(&parse_line(&format!("clear tcp {}", t.p("bin/"))).unwrap()).unwrap();
        assert_eq!(
            s,
            Statement::Change(Change::Clear(ClearSpec::Rule {
                prot: 6,
                path: t.p("usr/bin/"),
            }))
        );
        for line in ["query", "set mode enabled", "clear allow"] {
            assert_eq!(statement(&parse_line(line).unwrap()), None, "{line}");
        }
        let real = format!("allow udp {}", t.p("usr/bin/telnet"));
        assert_eq!(statement(&parse_line(&real).unwrap()), None);
    }
}
