//! The rule ring: allow/block rules by (protocol, executable path or folder), in insertion order,
//! with O(1) lookup in the number of rules.
//!
//! **Rules.** A rule names an IP protocol (0–255: `tcp`, `udp`, `sctp`, ...) or `any`, an absolute canonical
//! path, and an action. A path ending in `/` is a *folder rule*.
//!
//! **Order and edits** (the original's ring semantics, bugs B3/B10/B14 fixed): rules are kept in
//! insertion order (QUERY lists them in that order); adding an existing (protocol, path) with the same
//! action is a no-op; with the opposite action it flips **in place** — also when the ring is full;
//! removing keeps the order of the others; when full, [`RuleRing::add`] hands the rule back in
//! [`Full`] (heapless style). Every change bumps [`RuleRing::generation`].
//!
//! **Matching** — decided and documented here:
//! - a folder rule matches every executable *below* that folder, recursively: `/usr/` matches
//!   `/usr/bin/wget` (the original only tried the immediate parent, and never matched the documented
//!   trailing-`/` form: bug B5); it does not match the folder path itself;
//! - precedence: an exact path rule beats any folder rule; a deeper folder beats a shallower one;
//!   for the same path, a rule naming the packet's protocol beats an `any` rule. Because (protocol,
//!   path) is unique, these three rules always pick exactly one rule — insertion order never matters
//!   for matching.
//!
//! **Index.** Exact lookups use a hash index over path hashes ([`PathHash`], table-free) in a fixed array: `N` buckets of two
//! entries (open addressing with linear probing over buckets, load factor ≤ ½), each entry a 16-bit
//! hash tag plus the rule's position. A folder lookup probes the executable's ancestor directories
//! (`/usr/bin/wget` → `/usr/bin/`, `/usr/`, `/`) in the same index, skipping lengths at which no
//! folder rule exists (a 256-bit set of folder-rule lengths); the hash of every ancestor and of the
//! whole path come from one incremental pass over the bytes. The cost depends on the path, not on
//! the number of rules. Removal shifts the later rules down (order-preserving) and rebuilds the index
//! in O(N); edits are rare admin operations, lookups are per packet.
//!
//! **Storage.** Paths are not stored inline (a 256-byte buffer per rule made the default ring
//! 276 KiB). Each rule is 16 bytes of metadata; its path lives in a byte arena of
//! `N` × [`PATH_BYTES_PER_RULE`] (80) bytes, back to back in insertion order, so a ring of capacity
//! `N` holds `N` rules whose paths average at most 80 bytes (fewer when they are longer: 321
//! rules of the longest, 255-byte paths), 104 bytes a rule in all. When either the rule slots or
//! the arena run out, [`RuleRing::add`] hands the rule back in [`Full`]. Removal compacts the
//! arena.

use crate::flags::Action;
use crate::path::{check_rule_path, hash_bytes, ExePath, PathError, PathHash};
use crate::schema::{validate_rule_protocol, ProtocolError, PROTO_ANY};
use core::fmt;

/// A rule: protocol (or `any`), executable path or folder (trailing `/`), action.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Rule {
    proto: u32,
    path: ExePath,
    action: Action,
}

/// Why a rule was refused by [`Rule::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleError {
    /// The path is not an absolute canonical path of at most 255 bytes.
    Path(PathError),
    /// The protocol is not one a rule can name.
    Protocol(ProtocolError),
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleError::Path(e) => write!(f, "bad rule path: {e}"),
            RuleError::Protocol(e) => e.fmt(f),
        }
    }
}

impl Rule {
    /// Validates and builds a rule.
    pub fn new(proto: u32, path: &[u8], action: Action) -> Result<Rule, RuleError> {
        validate_rule_protocol(proto).map_err(RuleError::Protocol)?;
        check_rule_path(path).map_err(RuleError::Path)?;
        let path = ExePath::new(path).map_err(RuleError::Path)?;
        Ok(Rule {
            proto,
            path,
            action,
        })
    }

    /// The protocol (6, 17, 1, 58 or `any` = 0xFFFF_FFFF).
    pub fn proto(&self) -> u32 {
        self.proto
    }

    /// The path.
    pub fn path(&self) -> &ExePath {
        &self.path
    }

    /// The action.
    pub fn action(&self) -> Action {
        self.action
    }

    /// True for a folder rule (path ends in `/`).
    pub fn is_folder(&self) -> bool {
        self.path.is_folder()
    }
}

/// What [`RuleRing::add`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddOutcome {
    /// Appended at the end.
    Added,
    /// The same rule already existed: nothing changed.
    Unchanged,
    /// The same (protocol, path) existed with the opposite action: flipped in place.
    Flipped,
}

/// The ring is full; the rule is handed back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Full(pub Rule);

impl fmt::Display for Full {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rule table is full (or its path storage is): remove a rule (clear) before adding {}",
            self.0.path
        )
    }
}

/// Which kind of rule matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchKind {
    /// A rule for exactly this executable path.
    Exact,
    /// A folder rule; `depth_len` is the folder path's length in bytes.
    Folder {
        /// Length of the matching folder path (longer = deeper).
        depth_len: usize,
    },
}

/// The rule chosen by [`RuleRing::lookup`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleMatch {
    /// Its action.
    pub action: Action,
    /// Its protocol (the packet's, or `any`).
    pub proto: u32,
    /// Its position in insertion order.
    pub position: usize,
    /// Exact or folder.
    pub kind: MatchKind,
}

/// Path arena bytes per rule of capacity (see the module docs): a ring of `N` rules stores
/// `N × 80` bytes of paths.
pub const PATH_BYTES_PER_RULE: usize = 80;

/// One stored rule without its path (16 bytes).
#[derive(Debug, Clone, Copy)]
struct Meta {
    hash: u32,
    proto: u32,
    /// Offset of the path in the arena.
    start: u32,
    /// Path length in bytes (1..=255).
    len: u8,
    action: Action,
}

impl Meta {
    const EMPTY: Meta = Meta {
        hash: 0,
        proto: 0,
        start: 0,
        len: 0,
        action: Action::Allow,
    };
}

/// A stored rule, borrowed from the ring ([`RuleRing::iter`], [`RuleRing::get`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleRef<'a> {
    proto: u32,
    action: Action,
    path: RulePath<'a>,
}

impl<'a> RuleRef<'a> {
    /// The protocol (6, 17, 1, 58 or `any` = 0xFFFF_FFFF).
    pub fn proto(&self) -> u32 {
        self.proto
    }
    /// The path.
    pub fn path(&self) -> RulePath<'a> {
        self.path
    }
    /// The action.
    pub fn action(&self) -> Action {
        self.action
    }
    /// True for a folder rule (path ends in `/`).
    pub fn is_folder(&self) -> bool {
        self.path.is_folder()
    }
    /// An owned copy (for example to add it to another ring).
    pub fn to_rule(&self) -> Rule {
        Rule {
            proto: self.proto,
            path: ExePath::new(self.path.0).unwrap_or(ExePath::EMPTY),
            action: self.action,
        }
    }
}

/// A rule's path as stored in the ring: validated bytes (absolute, canonical, ≤ 255).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RulePath<'a>(&'a [u8]);

impl<'a> RulePath<'a> {
    /// The bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }
    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// True for an empty path (never stored; for completeness).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// True for a folder path (ends in `/`).
    pub fn is_folder(&self) -> bool {
        self.0.last() == Some(&b'/')
    }
}

impl fmt::Display for RulePath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&crate::path::Lossy(self.0), f)
    }
}

impl fmt::Debug for RulePath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RulePath(\"{self}\")")
    }
}

/// Ordered rule set of capacity `N` (default 1024; power of two, at most 32768) with a hash index.
///
/// Memory ≈ `N × 104` bytes (≈ 104 KiB for 1024): 16 bytes of metadata, 8 of index and 80 of path
/// arena per rule. Constructible in a `static`.
pub struct RuleRing<const N: usize = 1024> {
    meta: [Meta; N],
    arena: [[u8; PATH_BYTES_PER_RULE]; N],
    /// Arena bytes in use (the paths of rules `0..len`, in order, back to back).
    used: usize,
    /// Entry = `(hash >> 16) << 16 | (position + 1)`; 0 = empty.
    index: [[u32; 2]; N],
    len: usize,
    exact_count: usize,
    folder_lens: [u64; 4],
    generation: u32,
}

impl<const N: usize> Default for RuleRing<N> {
    fn default() -> Self {
        Self::new()
    }
}

const fn tag(hash: u32) -> u32 {
    hash & 0xFFFF_0000
}

impl<const N: usize> RuleRing<N> {
    const CHECK: () = assert!(
        N.is_power_of_two() && N <= 32768,
        "RuleRing capacity must be a power of two <= 32768"
    );
    const MASK: usize = N.wrapping_sub(1);

    /// An empty ring, generation 0.
    pub const fn new() -> Self {
        let () = Self::CHECK;
        RuleRing {
            meta: [Meta::EMPTY; N],
            arena: [[0; PATH_BYTES_PER_RULE]; N],
            used: 0,
            index: [[0; 2]; N],
            len: 0,
            exact_count: 0,
            folder_lens: [0; 4],
            generation: 0,
        }
    }

    /// Capacity N.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Path storage: (bytes used, bytes available) of the arena (`N` × [`PATH_BYTES_PER_RULE`]).
    /// [`RuleRing::add`] fails when either the rules or these bytes run out.
    pub fn path_bytes(&self) -> (usize, usize) {
        (self.used, N.saturating_mul(PATH_BYTES_PER_RULE))
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are no rules.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when no rule can be added (flips still work).
    pub fn is_full(&self) -> bool {
        self.len >= N
    }

    /// Bumped (wrapping) on every change.
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// Starts the generation at `v` (tests use it for wrap-around).
    pub fn set_generation(&mut self, v: u32) {
        self.generation = v;
    }

    fn bump(&mut self) {
        self.generation = self.generation.wrapping_add(1);
    }

    /// The rules in insertion order (QUERY: `iter().skip(cursor)`).
    pub fn iter(&self) -> impl ExactSizeIterator<Item = RuleRef<'_>> + '_ {
        self.meta
            .get(..self.len)
            .unwrap_or(&[])
            .iter()
            .map(|m| self.view(m))
    }

    /// The rule at `position` in insertion order.
    pub fn get(&self, position: usize) -> Option<RuleRef<'_>> {
        self.meta
            .get(..self.len)?
            .get(position)
            .map(|m| self.view(m))
    }

    fn view<'s>(&'s self, m: &Meta) -> RuleRef<'s> {
        RuleRef {
            proto: m.proto,
            action: m.action,
            path: RulePath(self.path_of(m)),
        }
    }

    /// The stored path of `m`.
    fn path_of(&self, m: &Meta) -> &[u8] {
        let start = m.start as usize;
        self.arena
            .as_flattened()
            .get(start..start.saturating_add(usize::from(m.len)))
            .unwrap_or(&[])
    }

    /// Adds a rule (see the module docs for duplicate/flip/full behaviour).
    #[allow(
        clippy::result_large_err,
        reason = "heapless style: a full ring hands the rule back by value, nothing allocates"
    )]
    pub fn add(&mut self, rule: Rule) -> Result<AddOutcome, Full> {
        let bytes = rule.path.as_bytes();
        let hash = hash_bytes(bytes);
        if let Some(pos) = self.find_exact(rule.proto, bytes, hash) {
            return match self.meta.get_mut(pos) {
                Some(m) if m.action == rule.action => Ok(AddOutcome::Unchanged),
                Some(m) => {
                    m.action = rule.action;
                    self.bump();
                    Ok(AddOutcome::Flipped)
                }
                None => Err(Full(rule)),
            };
        }
        let (Ok(len), false) = (u8::try_from(bytes.len()), bytes.is_empty()) else {
            return Err(Full(rule));
        };
        let meta = Meta {
            hash,
            proto: rule.proto,
            start: u32::try_from(self.used).unwrap_or(u32::MAX),
            len,
            action: rule.action,
        };
        let need = bytes.len();
        if self.len >= N || self.used.saturating_add(need) > N.saturating_mul(PATH_BYTES_PER_RULE) {
            return Err(Full(rule));
        }
        let at = self.used;
        let (Some(dst), Some(slot)) = (
            self.arena
                .as_flattened_mut()
                .get_mut(at..at.saturating_add(bytes.len())),
            self.meta.get_mut(self.len),
        ) else {
            return Err(Full(rule));
        };
        for (d, b) in dst.iter_mut().zip(bytes) {
            *d = *b;
        }
        *slot = meta;
        let pos = self.len;
        self.used = self.used.saturating_add(need);
        self.len = self.len.saturating_add(1);
        self.index_insert(pos, hash);
        self.note_kind(rule.is_folder(), bytes.len());
        self.bump();
        Ok(AddOutcome::Added)
    }

    /// Removes the rule (proto, path) exactly (`any` removes only the `any` rule); keeps the order of
    /// the others. Returns whether a rule was removed.
    pub fn remove(&mut self, proto: u32, path: &[u8]) -> bool {
        let Some(pos) = self.find_exact(proto, path, hash_bytes(path)) else {
            return false;
        };
        self.compact(|p, _| p != pos);
        self.rebuild_index();
        self.bump();
        true
    }

    /// Keeps the rules for which `keep(position, rule)` is true, in order, moving their metadata
    /// and arena chunks down over the removed ones; returns how many were removed. (No copy of
    /// the tables: this runs on a kernel stack.)
    fn compact(&mut self, mut keep: impl FnMut(usize, &Meta) -> bool) -> usize {
        let mut w = 0usize;
        let mut cursor = 0usize;
        for r in 0..self.len {
            let Some(m) = self.meta.get(r).copied() else {
                break;
            };
            if !keep(r, &m) {
                continue;
            }
            let need = usize::from(m.len);
            let from = m.start as usize;
            if from != cursor {
                // Forward, byte by byte: the destination is always below the source, and this
                // cannot panic (no `copy_within` bounds assertion in the kernel object).
                let arena = self.arena.as_flattened_mut();
                for i in 0..need {
                    let byte = arena.get(from.wrapping_add(i)).copied().unwrap_or(0);
                    if let Some(d) = arena.get_mut(cursor.wrapping_add(i)) {
                        *d = byte;
                    }
                }
            }
            if let Some(slot) = self.meta.get_mut(w) {
                *slot = Meta {
                    start: u32::try_from(cursor).unwrap_or(u32::MAX),
                    ..m
                };
            }
            cursor = cursor.saturating_add(need);
            w = w.wrapping_add(1);
        }
        let removed = self.len.saturating_sub(w);
        self.len = w;
        self.used = cursor;
        removed
    }

    /// Removes every rule. Returns how many were removed.
    pub fn clear(&mut self) -> usize {
        let n = self.len;
        self.len = 0;
        self.used = 0;
        self.rebuild_index();
        if n > 0 {
            self.bump();
        }
        n
    }

    /// Removes every rule with `action`, keeping the order of the rest (B10 fixed: every matching
    /// rule is removed). Returns how many were removed.
    pub fn clear_action(&mut self, action: Action) -> usize {
        let removed = self.compact(|_, m| m.action != action);
        if removed > 0 {
            self.rebuild_index();
            self.bump();
        }
        removed
    }

    /// The rule that decides a packet of protocol `proto` from executable `exe` (precedence in the
    /// module docs), or `None`.
    pub fn lookup(&self, proto: u32, exe: &ExePath) -> Option<RuleMatch> {
        if self.len == 0 {
            return None;
        }
        let bytes = exe.as_bytes();
        // A path ending in `/` names a folder, never an executable: folder rules match only paths
        // strictly below them, so such a path gets no exact match.
        if self.exact_count > 0 && !exe.is_folder() {
            if let Some(m) = self.find_best(proto, bytes, hash_bytes(bytes), MatchKind::Exact) {
                return Some(m);
            }
        }
        if self.folder_lens == [0; 4] {
            return None;
        }
        // One pass over the path: the hash is extended segment by segment, so every ancestor
        // directory's hash is available when its `/` is reached. Ancestors are probed (shallow to
        // deep; the deepest hit is kept) only at lengths where some folder rule exists, so most
        // paths probe once or not at all.
        let mut h = PathHash::new();
        let mut folder: Option<RuleMatch> = None;
        let last = bytes.len().saturating_sub(1);
        let mut start = 0usize;
        while let Some(rest) = bytes.get(start..) {
            let Some(off) = rest.iter().position(|&c| c == b'/') else {
                break;
            };
            let slash = start.saturating_add(off);
            if slash >= last {
                break;
            }
            let len = slash.saturating_add(1);
            h.update(rest.get(..=off).unwrap_or(&[]));
            start = len;
            if self.has_folder_len(len) {
                let prefix = bytes.get(..len).unwrap_or(&[]);
                let kind = MatchKind::Folder { depth_len: len };
                if let Some(m) = self.find_best(proto, prefix, h.finalize(), kind) {
                    folder = Some(m);
                }
            }
        }
        folder
    }

    /// Position of the rule with exactly (proto, path).
    fn find_exact(&self, proto: u32, path: &[u8], hash: u32) -> Option<usize> {
        let mut found = None;
        self.probe(path, hash, |pos, r| {
            if r.proto == proto {
                found = Some(pos);
                true
            } else {
                false
            }
        });
        found
    }

    /// Best rule for (packet proto, path): the specific protocol over `any`.
    fn find_best(&self, proto: u32, path: &[u8], hash: u32, kind: MatchKind) -> Option<RuleMatch> {
        let mut any = None;
        let mut specific = None;
        self.probe(path, hash, |pos, r| {
            if r.proto == proto && proto != PROTO_ANY {
                specific = Some((pos, r));
                true
            } else {
                if r.proto == PROTO_ANY {
                    any = Some((pos, r));
                }
                false
            }
        });
        specific.or(any).map(|(position, r)| RuleMatch {
            action: r.action,
            proto: r.proto,
            position,
            kind,
        })
    }

    /// Calls `f(position, rule)` for every rule whose path equals `path`, until `f` returns true.
    fn probe<'s>(&'s self, path: &[u8], hash: u32, mut f: impl FnMut(usize, &'s Meta) -> bool) {
        let mut b = hash as usize;
        for _ in 0..N {
            let Some(bucket) = self.index.get(b & Self::MASK) else {
                return;
            };
            for &e in bucket {
                if e == 0 {
                    return;
                }
                if tag(e) != tag(hash) {
                    continue;
                }
                let pos = ((e & 0xFFFF) as usize).wrapping_sub(1);
                if let Some(m) = self.meta.get(pos) {
                    if m.hash == hash && self.path_of(m) == path && f(pos, m) {
                        return;
                    }
                }
            }
            b = b.wrapping_add(1);
        }
    }

    fn index_insert(&mut self, pos: usize, hash: u32) {
        let entry = tag(hash) | ((pos as u32).wrapping_add(1) & 0xFFFF);
        let mut b = hash as usize;
        for _ in 0..N {
            if let Some(bucket) = self.index.get_mut(b & Self::MASK) {
                for e in bucket.iter_mut() {
                    if *e == 0 {
                        *e = entry;
                        return;
                    }
                }
            }
            b = b.wrapping_add(1);
        }
    }

    fn has_folder_len(&self, len: usize) -> bool {
        self.folder_lens
            .get(len / 64)
            .is_some_and(|w| w & (1u64 << (len % 64)) != 0)
    }

    fn note_kind(&mut self, folder: bool, len: usize) {
        if folder {
            if let Some(w) = self.folder_lens.get_mut(len / 64) {
                *w |= 1u64 << (len % 64);
            }
        } else {
            self.exact_count = self.exact_count.saturating_add(1);
        }
    }

    fn rebuild_index(&mut self) {
        for b in self.index.iter_mut() {
            *b = [0; 2];
        }
        self.exact_count = 0;
        self.folder_lens = [0; 4];
        for pos in 0..self.len {
            let Some(m) = self.meta.get(pos).copied() else {
                continue;
            };
            let folder = self.path_of(&m).last() == Some(&b'/');
            self.index_insert(pos, m.hash);
            self.note_kind(folder, usize::from(m.len));
        }
    }
}
