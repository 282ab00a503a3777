//! `/proc` implementations of [`ProcessTable`] for userspace embedders and tests (feature `std`).
//!
//! Why: the kernel walks tasks and file tables directly; userspace can only read `/proc/<pid>/fd/*`
//! symlinks, whose targets are `socket:[<inode>]` for sockets. Processes that exit or deny access
//! (other users' processes when not root) during the walk are skipped silently: a snapshot is
//! best-effort by nature.

use core::ops::ControlFlow;
use std::fs;
use std::path::PathBuf;

use crate::active::{ProcessTable, SocketOwner};

/// Walks `/proc/*/fd` (or another procfs root, for tests).
#[derive(Debug, Clone)]
pub struct ProcFsTable {
    root: PathBuf,
}

impl Default for ProcFsTable {
    fn default() -> Self {
        Self::new()
    }
}

impl ProcFsTable {
    /// The system's `/proc`.
    pub fn new() -> Self {
        Self::with_root("/proc")
    }

    /// A procfs-shaped directory tree rooted at `root`.
    pub fn with_root(root: impl Into<PathBuf>) -> Self {
        ProcFsTable { root: root.into() }
    }
}

/// Parses a `/proc/<pid>/fd/<n>` link target `socket:[12345]`.
pub fn parse_socket_link(target: &[u8]) -> Option<u64> {
    let inner = target.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    core::str::from_utf8(inner).ok()?.parse().ok()
}

impl ProcessTable for ProcFsTable {
    fn for_each_socket(&mut self, f: &mut dyn FnMut(SocketOwner) -> ControlFlow<()>) {
        let Ok(procs) = fs::read_dir(&self.root) else {
            return;
        };
        for p in procs.flatten() {
            let Some(tgid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(fds) = fs::read_dir(p.path().join("fd")) else {
                continue;
            };
            for fd in fds.flatten() {
                let Ok(target) = fs::read_link(fd.path()) else {
                    continue;
                };
                let Some(inode) = parse_socket_link(target.as_os_str().as_encoded_bytes()) else {
                    continue;
                };
                if f(SocketOwner { inode, tgid }).is_break() {
                    return;
                }
            }
        }
    }
}
