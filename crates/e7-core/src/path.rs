//! Executable paths with a fixed capacity, and their hashes.
//!
//! Why fixed: the engine runs in softirq context with no allocator, so a path is an inline
//! `[u8; 255]` plus a length. The limit is the wire limit `MAX_PATH_LEN` (255 bytes); a longer
//! executable path is *not* truncated or silently allowed: the kernel reports it as
//! [`Identity::PathTooLong`](crate::Identity::PathTooLong) and the `longpath` flag decides.
//!
//! Hashing is [`PathHash`] (table-free FNV-1a with a finaliser), used by the executable table and
//! the rule index. Folder lookup needs the hash of every ancestor directory of a path (`/usr/bin/wget` →
//! `/usr/bin/`, `/usr/`, `/`): [`ExePath::ancestor_hashes`] computes all of them in one pass.

use core::fmt;

use crate::schema::validate_rule_path;

pub use crate::schema::{PathError, MAX_PATH_LEN};

/// Maximum number of ancestor directories of a path (`/a/b/c` has 3: `/a/b/`, `/a/`, `/`).
pub const MAX_DEPTH: usize = MAX_PATH_LEN.div_ceil(2);

/// An absolute path of at most [`MAX_PATH_LEN`] bytes, stored inline.
///
/// Not `Copy` on purpose: it is 256 bytes, so copies should be visible (`clone`, [`ExePath::set`]).
#[derive(Clone)]
pub struct ExePath {
    len: u8,
    bytes: [u8; MAX_PATH_LEN],
}

impl ExePath {
    /// The empty path (only useful as a placeholder in `const` initialisers; never valid input).
    pub const EMPTY: ExePath = ExePath {
        len: 0,
        bytes: [0; MAX_PATH_LEN],
    };

    /// Validates and copies an executable path: non-empty, absolute, no NUL, at most 255 bytes.
    pub fn new(path: &[u8]) -> Result<ExePath, PathError> {
        let mut p = ExePath::EMPTY;
        p.set(path)?;
        Ok(p)
    }

    /// Like [`ExePath::new`] for a kernel `d_path` result: a trailing `" (deleted)"` (the binary was
    /// replaced or removed since exec) is stripped first, so the process keeps its original identity.
    pub fn from_d_path(path: &[u8]) -> Result<ExePath, PathError> {
        ExePath::new(strip_deleted(path))
    }

    /// Overwrites this path in place with a validated copy of `path` (no 256-byte temporary).
    /// On error `self` is left unchanged.
    pub fn set(&mut self, path: &[u8]) -> Result<(), PathError> {
        validate_exe_path(path)?;
        let len = path.len();
        match (self.bytes.get_mut(..len), u8::try_from(len)) {
            (Some(dst), Ok(l)) => {
                dst.copy_from_slice(path);
                self.len = l;
                Ok(())
            }
            _ => Err(PathError::TooLong { len }),
        }
    }

    /// The path bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// True only for [`ExePath::EMPTY`].
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when the path ends with `/` (a folder rule).
    pub fn is_folder(&self) -> bool {
        self.as_bytes().last() == Some(&b'/')
    }

    /// The path's hash ([`hash_bytes`]).
    pub fn hash(&self) -> u32 {
        hash_bytes(self.as_bytes())
    }

    /// The ancestor directories, deepest first, each ending in `/`: for `/usr/bin/wget` this yields
    /// `/usr/bin/`, `/usr/`, `/`. A folder path does not yield itself (`/usr/` yields only `/`).
    pub fn ancestors(&self) -> Ancestors<'_> {
        let b = self.as_bytes();
        // Exclude the final byte so that a folder path does not yield itself.
        Ancestors {
            path: b,
            end: b.len().saturating_sub(1),
        }
    }

    /// Fills `out` with `(prefix_len, hash)` of every ancestor directory, **deepest first**, in one
    /// pass over the bytes; returns how many were written. Used by the rule index so that folder
    /// lookup costs one hashing pass however deep the path is.
    pub fn ancestor_hashes(&self, out: &mut [(u8, u32); MAX_DEPTH]) -> usize {
        let b = self.as_bytes();
        let last = b.len().saturating_sub(1);
        let mut h = PathHash::new();
        let mut n = 0usize;
        let mut start = 0usize;
        for (i, &c) in (0..b.len()).zip(b.iter()) {
            if c == b'/' && i < last {
                let seg = b.get(start..=i).unwrap_or(&[]);
                h.update(seg);
                start = i.saturating_add(1);
                if let (Some(slot), Ok(len)) = (out.get_mut(n), u8::try_from(i.saturating_add(1))) {
                    *slot = (len, h.finalize());
                    n = n.saturating_add(1);
                }
            }
        }
        // Collected shallowest first; reverse the filled prefix so the deepest comes first.
        if let Some(filled) = out.get_mut(..n) {
            filled.reverse();
        }
        n
    }
}

impl PartialEq for ExePath {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}
impl Eq for ExePath {}

impl fmt::Debug for ExePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExePath({:?})", Lossy(self.as_bytes()))
    }
}

impl fmt::Display for ExePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", Lossy(self.as_bytes()))
    }
}

/// Displays bytes as UTF-8 with invalid sequences replaced, without allocating.
pub(crate) struct Lossy<'a>(pub(crate) &'a [u8]);
impl fmt::Display for Lossy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            f.write_str(chunk.valid())?;
            if !chunk.invalid().is_empty() {
                f.write_str("\u{FFFD}")?;
            }
        }
        Ok(())
    }
}
impl fmt::Debug for Lossy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// Iterator over the ancestor directories of a path, deepest first (see [`ExePath::ancestors`]).
pub struct Ancestors<'a> {
    path: &'a [u8],
    /// Search for the next `/` strictly before this index.
    end: usize,
}

impl<'a> Iterator for Ancestors<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let head = self.path.get(..self.end)?;
        let pos = head.iter().rposition(|&c| c == b'/')?;
        self.end = pos;
        self.path.get(..=pos)
    }
}

/// The hash of every path index in e7-core (rules, executables): [`PathHash`] over `b`.
pub fn hash_bytes(b: &[u8]) -> u32 {
    let mut h = PathHash::new();
    h.update(b);
    h.finalize()
}

/// Incremental path hash: FNV-1a over the bytes, then murmur3's 32-bit finaliser so that the
/// index's low bits (the bucket) and high bits (the tag) both depend on every byte.
///
/// Why not the CRC-32 (`crc.rs`) it replaced: the CRC's slicing-by-8 tables are 8 KiB, 28 cache lines
/// a cold rule lookup had to bring in before comparing a single path; this hash has no table at all
/// (a multiply per byte). It is never on the wire, only an index. Feeding a path in pieces gives the
/// same value as feeding it at once, which the folder lookup relies on (one pass over the path
/// yields every ancestor directory's hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathHash(u32);

impl Default for PathHash {
    fn default() -> Self {
        Self::new()
    }
}

impl PathHash {
    /// The hash of nothing yet.
    pub const fn new() -> Self {
        PathHash(0x811C_9DC5)
    }

    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        for &c in bytes {
            h = (h ^ u32::from(c)).wrapping_mul(0x0100_0193);
        }
        self.0 = h;
    }

    /// The hash of everything fed so far.
    pub const fn finalize(self) -> u32 {
        let mut h = self.0;
        h ^= h >> 16;
        h = h.wrapping_mul(0x85EB_CA6B);
        h ^= h >> 13;
        h = h.wrapping_mul(0xC2B2_AE35);
        h ^ (h >> 16)
    }
}

/// Removes a trailing `" (deleted)"` that the kernel's `d_path` appends for unlinked files.
pub fn strip_deleted(path: &[u8]) -> &[u8] {
    const SUFFIX: &[u8] = b" (deleted)";
    match path.strip_suffix(SUFFIX) {
        Some(rest) if !rest.is_empty() => rest,
        _ => path,
    }
}

/// Validation of an executable path (as produced by the kernel): non-empty, absolute, ≤ 255 bytes, no NUL.
pub fn validate_exe_path(path: &[u8]) -> Result<(), PathError> {
    if path.is_empty() {
        return Err(PathError::Empty);
    }
    if path.len() > MAX_PATH_LEN {
        return Err(PathError::TooLong { len: path.len() });
    }
    if path.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }
    if let Some(offset) = path.iter().position(|&c| c == 0) {
        return Err(PathError::ContainsNul { offset });
    }
    Ok(())
}

/// Validation of a rule path (e7-proto's rules: an executable path that is also canonical — no `//`,
/// `.` or `..` components). A trailing `/` makes it a folder rule.
pub fn check_rule_path(path: &[u8]) -> Result<(), PathError> {
    validate_rule_path(path)
}
