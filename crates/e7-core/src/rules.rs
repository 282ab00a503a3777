//! The rule ring: allow/block rules by (protocol, executable path or folder), in insertion order,
//! with O(1) lookup in the number of rules.
//!
//! **Rules.** A rule names a protocol (`tcp`, `udp`, `icmp`, `icmpv6` or `any`), an absolute canonical
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
    const EMPTY: Rule = Rule {
        proto: 0,
        path: ExePath::EMPTY,
        action: Action::Allow,
    };

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
            "rule table is full: remove a rule (clear) before adding {}",
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

/// Ordered rule set of capacity `N` (default 1024; power of two, at most 32768) with a hash index.
///
/// Memory ≈ `N × 276` bytes (≈ 276 KiB for 1024). Constructible in a `static`.
pub struct RuleRing<const N: usize = 1024> {
    rules: [Rule; N],
    hashes: [u32; N],
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
            rules: [const { Rule::EMPTY }; N],
            hashes: [0; N],
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
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &Rule> + '_ {
        self.rules.get(..self.len).unwrap_or(&[]).iter()
    }

    /// The rule at `position` in insertion order.
    pub fn get(&self, position: usize) -> Option<&Rule> {
        self.rules.get(..self.len)?.get(position)
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
            return match self.rules.get_mut(pos) {
                Some(r) if r.action == rule.action => Ok(AddOutcome::Unchanged),
                Some(r) => {
                    r.action = rule.action;
                    self.bump();
                    Ok(AddOutcome::Flipped)
                }
                None => Err(Full(rule)),
            };
        }
        if self.len >= N {
            return Err(Full(rule));
        }
        let pos = self.len;
        let folder = rule.is_folder();
        let plen = rule.path.len();
        match (self.rules.get_mut(pos), self.hashes.get_mut(pos)) {
            (Some(slot), Some(h)) => {
                *slot = rule;
                *h = hash;
            }
            _ => return Err(Full(rule)),
        }
        self.len = self.len.saturating_add(1);
        self.index_insert(pos, hash);
        self.note_kind(folder, plen);
        self.bump();
        Ok(AddOutcome::Added)
    }

    /// Removes the rule (proto, path) exactly (`any` removes only the `any` rule); keeps the order of
    /// the others. Returns whether a rule was removed.
    pub fn remove(&mut self, proto: u32, path: &[u8]) -> bool {
        let Some(pos) = self.find_exact(proto, path, hash_bytes(path)) else {
            return false;
        };
        // Shift the later rules down by one, pairwise, without panicking indexing.
        let mut i = pos;
        while i.saturating_add(1) < self.len {
            if let Some([a, b]) = self.rules.get_mut(i..i.saturating_add(2)) {
                core::mem::swap(a, b);
            }
            if let Some([a, b]) = self.hashes.get_mut(i..i.saturating_add(2)) {
                core::mem::swap(a, b);
            }
            i = i.wrapping_add(1);
        }
        self.len = self.len.saturating_sub(1);
        self.rebuild_index();
        self.bump();
        true
    }

    /// Removes every rule. Returns how many were removed.
    pub fn clear(&mut self) -> usize {
        let n = self.len;
        self.len = 0;
        self.rebuild_index();
        if n > 0 {
            self.bump();
        }
        n
    }

    /// Removes every rule with `action`, keeping the order of the rest (B10 fixed: every matching
    /// rule is removed). Returns how many were removed.
    pub fn clear_action(&mut self, action: Action) -> usize {
        let mut w = 0usize;
        for r in 0..self.len {
            let keep = self.rules.get(r).is_some_and(|x| x.action != action);
            if keep {
                if r != w {
                    if let Some([a, .., b]) = self.rules.get_mut(w..=r) {
                        core::mem::swap(a, b);
                    }
                    if let Some([a, .., b]) = self.hashes.get_mut(w..=r) {
                        core::mem::swap(a, b);
                    }
                }
                w = w.wrapping_add(1);
            }
        }
        let removed = self.len.saturating_sub(w);
        self.len = w;
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
    fn probe<'s>(&'s self, path: &[u8], hash: u32, mut f: impl FnMut(usize, &'s Rule) -> bool) {
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
                if let (Some(r), Some(&h)) = (self.rules.get(pos), self.hashes.get(pos)) {
                    if h == hash && r.path.as_bytes() == path && f(pos, r) {
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
            let (Some(r), Some(&h)) = (self.rules.get(pos), self.hashes.get(pos)) else {
                continue;
            };
            let (folder, plen) = (r.is_folder(), r.path.len());
            self.index_insert(pos, h);
            self.note_kind(folder, plen);
        }
    }
}
