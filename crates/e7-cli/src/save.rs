//! `e7 save FILE`: the current rules and settable flags as a script that `e7 run` restores exactly.
//!
//! The script starts with `clear` (so restoring over a populated table gives exactly the saved
//! table), adds the rules in precedence order, sets every settable flag, and sets `mode` last, so a
//! restore at boot turns filtering on only once the rules are in place.
//!
//! The file is replaced atomically: the text goes to a temporary file in the same directory, which
//! is fsynced, renamed over the target, and the directory is fsynced. A crash or error at any point
//! leaves either the old file or the new one, never half of either (the temporary file is removed
//! on error).

use crate::error::CliError;
use crate::grammar;
use crate::kernel::{self, Kernel, RuleSet};
use e7_proto::{Flag, ValueClass};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// What `save` captures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Rules and mode.
    pub rules: RuleSet,
    /// Every settable flag except `mode`, with its value, in index order.
    pub flags: Vec<(Flag, u32)>,
}

/// Read the rules and every settable flag from the kernel.
pub fn snapshot(kernel: &mut dyn Kernel) -> Result<Snapshot, CliError> {
    let rules = kernel::query(kernel)?;
    let mut flags = Vec::new();
    for flag in Flag::ALL.iter().copied() {
        if flag == Flag::Mode || flag.class() == ValueClass::ReadOnly {
            continue;
        }
        flags.push((flag, kernel::get(kernel, flag)?));
    }
    Ok(Snapshot { rules, flags })
}

/// The script text for a snapshot.
pub fn render(snap: &Snapshot) -> String {
    let mut out = String::new();
    out.push_str("# e7 rules, written by `e7 save`; restore with `e7 run FILE`\n");
    out.push_str("clear\n");
    for r in &snap.rules.rules {
        out.push_str(&grammar::rule_line(r.action, r.prot, &r.path, &r.qual));
        out.push('\n');
    }
    for (flag, value) in &snap.flags {
        out.push_str(&format!(
            "set {} {}\n",
            flag.alias(),
            grammar::value_word(*flag, *value)
        ));
    }
    out.push_str(&format!(
        "set mode {}\n",
        grammar::value_word(Flag::Mode, snap.rules.mode)
    ));
    out
}

fn temp_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "e7".to_string());
    let temp = format!(".{name}.tmp.{}", std::process::id());
    match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(temp),
        _ => PathBuf::from(temp),
    }
}

/// Replace `target` atomically with what `fill` writes (see the module docs). On error the old
/// file is untouched and the temporary file is removed.
pub fn write_atomic_with(
    target: &Path,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let temp = temp_path(target);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        // Keep the permissions of the file being replaced.
        if let Ok(meta) = fs::metadata(target) {
            file.set_permissions(meta.permissions())?;
        }
        fill(&mut file)?;
        file.flush()?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temp, target)?;
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Replace `target` atomically with `contents`.
pub fn write_atomic(target: &Path, contents: &[u8]) -> io::Result<()> {
    write_atomic_with(target, |f| f.write_all(contents))
}

/// `e7 save FILE`: snapshot the kernel and write the script atomically. Returns the snapshot.
pub fn save(kernel: &mut dyn Kernel, target: &Path) -> Result<Snapshot, CliError> {
    let snap = snapshot(kernel)?;
    write_atomic(target, render(&snap).as_bytes()).map_err(|e| {
        CliError::Failed(format!(
            "cannot save to `{}`: {e} (the old file, if any, is unchanged)",
            target.display()
        ))
    })?;
    Ok(snap)
}
