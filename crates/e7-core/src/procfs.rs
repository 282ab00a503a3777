//! `/proc` implementations of [`ProcessTable`] for userspace embedders and tests (feature `std`).
//!
//! Why: the kernel walks tasks and file tables directly; userspace can only read `/proc/<pid>/fd/*`
//! symlinks, whose targets are `socket:[<inode>]` for sockets. Processes that exit or deny access
//! (other users' processes when not root) during the walk are skipped silently: a snapshot is
//! best-effort by nature. Chunks ([`ProcessTable::collect`]) resume by process id and descriptor
//! number ([`WalkCursor::at`]), like the kernel's walk, so a walk in chunks reads each process's
//! `fd` directory about once.

use core::ops::ControlFlow;
use std::fs;
use std::path::PathBuf;

use crate::active::{Chunk, ChunkEnd, ProcessTable, SocketOwner, WalkCursor};

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

/// The numeric entries of `dir` with their numbers, in ascending order.
fn numbered(dir: &std::path::Path) -> std::vec::Vec<(u32, PathBuf)> {
    let Ok(rd) = fs::read_dir(dir) else {
        return std::vec::Vec::new();
    };
    let mut v: std::vec::Vec<(u32, PathBuf)> = rd
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((n, e.path()))
        })
        .collect();
    v.sort_unstable_by_key(|(n, _)| *n);
    v
}

impl ProcessTable for ProcFsTable {
    fn collect(&mut self, from: WalkCursor, out: &mut [SocketOwner]) -> Chunk {
        let mut n = 0usize;
        for (tgid, proc_dir) in numbered(&self.root) {
            if tgid < from.tgid() {
                continue;
            }
            let first_fd = if tgid == from.tgid() { from.fd() } else { 0 };
            for (fd, link) in numbered(&proc_dir.join("fd")) {
                if fd < first_fd {
                    continue;
                }
                let Ok(target) = fs::read_link(&link) else {
                    continue;
                };
                let Some(inode) = parse_socket_link(target.as_os_str().as_encoded_bytes()) else {
                    continue;
                };
                match out.get_mut(n) {
                    Some(slot) => {
                        *slot = SocketOwner { inode, tgid };
                        n += 1;
                    }
                    None => {
                        return Chunk {
                            len: n,
                            end: ChunkEnd::More(WalkCursor::at(tgid, fd)),
                        }
                    }
                }
            }
        }
        Chunk {
            len: n,
            end: ChunkEnd::Done,
        }
    }

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
