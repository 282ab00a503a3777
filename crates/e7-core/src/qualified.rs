//! Qualified rules: rules that also say *where* (`to` a destination, `port`) and *who* (`user`).
//!
//! Why a second table next to [`RuleRing`](crate::RuleRing): an unqualified rule is found by
//! hashing the executable's path, O(1), and that lookup (the one every first packet of a program
//! makes) must not get slower because someone loaded a 10,000-line blocklist. Qualified rules live
//! here; the engine consults this table only when it holds rules (one atomic load otherwise), and
//! [`decide_rule`] picks the winner of both tables by the one precedence order
//! ([`Precedence`], README "Precedence").
//!
//! **Index.** Rules are kept in insertion order (QUERY lists them so) and indexed by a second array
//! of positions sorted by (destination class, prefix length, network, path hash). The destination
//! classes are `any`, the three scopes, IPv4 prefixes by length and IPv6 prefixes by length; a count
//! per class says which are in use. A lookup visits each class in use that the packet's
//! destination can be in — `any`, the packet's one scope, and one masked network per prefix length
//! in use in its family (at most 33 for IPv4, 129 for IPv6) — and finds that class's run with a
//! binary search (O(log N)). A run of at most [`SHORT_RUN`] rules is scanned; a longer one (many
//! rules naming the very same destination) is searched again by the path hash of the executable
//! and of each of its folders, so rules for other programs are never visited. Cost: O(L · log N)
//! with L the prefix lengths in use — a 10,000-prefix blocklist of /24s and /32s is two binary
//! searches of 14 steps — and no rule that cannot apply is looked at except during the search.
//!
//! **Edits.** Adding a rule shifts the 2-byte positions of the sorted index (O(N), 20 KiB for
//! 10,000 rules); removing compacts in O(N + path bytes). The key of a rule is (protocol, path,
//! qualifiers): adding an existing key with the other action flips it in place, as in the ring.
//!
//! **Storage.** `N` rules (default [`QUAL_RULES`] = 1,024, at most 65,534) of [`QualTable::ENTRY_BYTES`]
//! (90) bytes plus a path arena of `BYTES` (default [`QUAL_PATH_BYTES`] = 64 KiB). The default table is
//! 154 KiB, small enough for the default engine to live on a debug build's stack. A 10,000-line
//! blocklist needs [`BlocklistTable`] (`QualTable<16384, 262144>`, 1.7 MiB): blocklists name the
//! folder `/`, one byte each, so its arena rarely binds (3,000 rules with 80-byte paths also fit).
//! The kernel module picks its own capacities.

use core::fmt;

use crate::flags::Action;
use crate::path::{check_rule_path, hash_bytes, ExePath, PathError, PathHash};
use crate::rules::{MatchKind, RuleMatch};
use crate::schema::{validate_rule_protocol, ProtocolError, PROTO_ANY};
pub use e7_proto::nla::Writer;
pub use e7_proto::qual::{
    emit_qualifiers as emit_wire, legacy_path, parse_qualifiers as parse_wire, protocol_has_ports,
    Addr, Dest, PortRange, Ports, Precedence, QualError, QualWireError, Qualifiers, Scope,
    FEATURE_DEST, FEATURE_PORTS, FEATURE_USER, MAX_PORT_RANGES,
};

/// Default rule capacity of a [`QualTable`].
pub const QUAL_RULES: usize = 1024;
/// Default path arena of a [`QualTable`], in bytes.
pub const QUAL_PATH_BYTES: usize = 65_536;
/// A table sized for a 10,000-line `block any / to PREFIX` list: 16,384 rules, 256 KiB of paths.
pub type BlocklistTable = QualTable<16384, 262_144>;
/// A run of rules naming the same destination is scanned when at most this long, else searched by
/// path hash.
pub const SHORT_RUN: usize = 8;

/// What a qualified lookup needs to know about a packet beyond its program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QualFacts {
    /// IP protocol.
    pub proto: u32,
    /// Destination address, if the host reported it (none: no destination- or port-qualified rule
    /// matches).
    pub dst: Option<Addr>,
    /// Destination port, for protocols with ports.
    pub dport: Option<u16>,
    /// The socket's uid, if there is a socket.
    pub uid: Option<u32>,
}

/// A qualified rule: protocol, path, qualifiers (not all unset), action.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct QualRule {
    proto: u32,
    path: ExePath,
    qual: Qualifiers,
    action: Action,
}

/// Why a qualified rule was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QualRuleError {
    /// Bad path.
    Path(PathError),
    /// Bad protocol.
    Protocol(ProtocolError),
    /// Bad qualifier (ports on a protocol without ports, ...).
    Qualifier(QualError),
    /// No qualifier at all: an unqualified rule belongs in the [`RuleRing`](crate::RuleRing).
    Unqualified,
}

impl fmt::Display for QualRuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QualRuleError::Path(e) => write!(f, "bad rule path: {e}"),
            QualRuleError::Protocol(e) => e.fmt(f),
            QualRuleError::Qualifier(e) => e.fmt(f),
            QualRuleError::Unqualified => {
                f.write_str("the rule has no `to`, `port` or `user`: it is an unqualified rule")
            }
        }
    }
}

impl QualRule {
    /// Validates and builds a qualified rule.
    pub fn new(
        proto: u32,
        path: &[u8],
        qual: Qualifiers,
        action: Action,
    ) -> Result<QualRule, QualRuleError> {
        validate_rule_protocol(proto).map_err(QualRuleError::Protocol)?;
        check_rule_path(path).map_err(QualRuleError::Path)?;
        qual.check(proto).map_err(QualRuleError::Qualifier)?;
        if qual.is_none() {
            return Err(QualRuleError::Unqualified);
        }
        let path = ExePath::new(path).map_err(QualRuleError::Path)?;
        Ok(QualRule {
            proto,
            path,
            qual,
            action,
        })
    }
    /// The protocol.
    pub fn proto(&self) -> u32 {
        self.proto
    }
    /// The path.
    pub fn path(&self) -> &ExePath {
        &self.path
    }
    /// The qualifiers.
    pub fn qualifiers(&self) -> &Qualifiers {
        &self.qual
    }
    /// The action.
    pub fn action(&self) -> Action {
        self.action
    }
}

/// The table (or its path arena) is full; the rule is handed back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QualFull(pub QualRule);

impl fmt::Display for QualFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "qualified rule table is full (or its path storage is): remove a rule before adding {}{}",
            self.0.path, self.0.qual
        )
    }
}

/// The qualified rule chosen by [`QualTable::lookup`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QualMatch {
    /// Its action.
    pub action: Action,
    /// Its precedence key.
    pub precedence: Precedence,
    /// Its position in the table's insertion order.
    pub position: usize,
}

/// A stored qualified rule, borrowed from the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QualRef<'a> {
    /// Protocol.
    pub proto: u32,
    /// Path bytes (absolute, canonical; folder if it ends in `/`).
    pub path: &'a [u8],
    /// Qualifiers.
    pub qual: Qualifiers,
    /// Action.
    pub action: Action,
}

impl QualRef<'_> {
    /// An owned copy.
    pub fn to_rule(&self) -> QualRule {
        QualRule {
            proto: self.proto,
            path: ExePath::new(self.path).unwrap_or(ExePath::EMPTY),
            qual: self.qual,
            action: self.action,
        }
    }
}

/// Destination sort key, compared as two integers: `cl` = class << 8 | prefix length (class 0 any,
/// 1 localhost, 2 lan, 3 internet, 4 IPv4, 5 IPv6), `net` = the network as a 128-bit number
/// (IPv4 in the low 32 bits) split in two words so the key stays 8-byte aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct DKey {
    cl: u16,
    net: [u64; 2],
}

const V4_SLOT: usize = 4;
const V6_SLOT: usize = V4_SLOT + 33;
const SLOTS: usize = V6_SLOT + 129;
const CLASS_V4: u16 = 4;
const CLASS_V6: u16 = 5;

/// `v` with all but its first `len` of `bits` bits cleared.
fn keep_bits(v: u128, len: u8, bits: u32) -> u128 {
    let drop = bits.saturating_sub(u32::from(len));
    v.checked_shr(drop)
        .and_then(|x| x.checked_shl(drop))
        .unwrap_or(0)
}

impl DKey {
    const ANY: DKey = DKey { cl: 0, net: [0; 2] };

    fn prefix(class: u16, len: u8, net: u128) -> DKey {
        DKey {
            cl: (class << 8) | u16::from(len),
            net: [(net >> 64) as u64, net as u64],
        }
    }

    fn of(d: &Dest) -> DKey {
        match *d {
            Dest::Any => DKey::ANY,
            Dest::Scope(s) => DKey {
                cl: match s {
                    Scope::Localhost => 1,
                    Scope::Lan => 2,
                    Scope::Internet => 3,
                } << 8,
                net: [0; 2],
            },
            Dest::V4 { net, len } => {
                DKey::prefix(CLASS_V4, len, u128::from(u32::from_be_bytes(net)))
            }
            Dest::V6 { net, len } => DKey::prefix(CLASS_V6, len, u128::from_be_bytes(net)),
        }
    }

    fn class(&self) -> u16 {
        self.cl >> 8
    }

    fn len(&self) -> u8 {
        (self.cl & 0xff) as u8
    }

    fn net(&self) -> u128 {
        (u128::from(self.net[0]) << 64) | u128::from(self.net[1])
    }

    fn dest(&self) -> Dest {
        match self.class() {
            1 => Dest::Scope(Scope::Localhost),
            2 => Dest::Scope(Scope::Lan),
            3 => Dest::Scope(Scope::Internet),
            CLASS_V4 => Dest::V4 {
                net: (self.net() as u32).to_be_bytes(),
                len: self.len(),
            },
            CLASS_V6 => Dest::V6 {
                net: self.net().to_be_bytes(),
                len: self.len(),
            },
            _ => Dest::Any,
        }
    }

    /// The class-and-length slot counted in `QualTable::slots`.
    fn slot(&self) -> usize {
        let len = usize::from(self.len());
        match self.class() {
            CLASS_V4 => V4_SLOT.saturating_add(len),
            CLASS_V6 => V6_SLOT.saturating_add(len),
            c => usize::from(c),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct QMeta {
    key: DKey,
    hash: u32,
    proto: u32,
    ports: Option<Ports>,
    uid: Option<u32>,
    start: u32,
    len: u8,
    action: Action,
    /// Scratch for compaction: the position after the removal, or `u16::MAX`.
    newpos: u16,
}

impl QMeta {
    const EMPTY: QMeta = QMeta {
        key: DKey::ANY,
        hash: 0,
        proto: 0,
        ports: None,
        uid: None,
        start: 0,
        len: 0,
        action: Action::Allow,
        newpos: 0,
    };

    fn qual(&self) -> Qualifiers {
        Qualifiers {
            dest: self.key.dest(),
            ports: self.ports,
            uid: self.uid,
        }
    }
}

/// Qualified rules of capacity `N` with a destination index (see the module docs). Constructible
/// in a `static`; about `N` × [`QualTable::ENTRY_BYTES`] + `BYTES` bytes.
pub struct QualTable<const N: usize = QUAL_RULES, const BYTES: usize = QUAL_PATH_BYTES> {
    meta: [QMeta; N],
    /// Positions (into `meta`) sorted by (destination key, path hash).
    order: [u16; N],
    arena: [u8; BYTES],
    used: usize,
    len: usize,
    /// Rules per destination class and prefix length.
    slots: [u16; SLOTS],
    /// Prefix lengths in use: bit `l` of word 0 for IPv4 /l, bit `l % 64` of word `1 + l / 64`
    /// for IPv6 /l (kept equal to `slots[..] > 0`).
    lens: [u64; 4],
    /// Rules whose verdict depends on the destination or port (not `any` with no ports).
    per_dest: usize,
    generation: u32,
}

impl<const N: usize, const BYTES: usize> Default for QualTable<N, BYTES> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize, const BYTES: usize> QualTable<N, BYTES> {
    const CHECK: () = assert!(
        N >= 1 && N < 65535 && BYTES >= 1 && BYTES < u32::MAX as usize,
        "QualTable capacity must be 1..65535 rules and its arena 1..4 GiB"
    );
    /// Bytes per rule of capacity besides the path arena (metadata + sorted index).
    pub const ENTRY_BYTES: usize = core::mem::size_of::<QMeta>() + 2;

    /// An empty table.
    pub const fn new() -> Self {
        let () = Self::CHECK;
        QualTable {
            meta: [QMeta::EMPTY; N],
            order: [0; N],
            arena: [0; BYTES],
            used: 0,
            len: 0,
            slots: [0; SLOTS],
            lens: [0; 4],
            per_dest: 0,
            generation: 0,
        }
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.len
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Capacity `N`.
    pub const fn capacity(&self) -> usize {
        N
    }
    /// Path arena (used, available).
    pub fn path_bytes(&self) -> (usize, usize) {
        (self.used, BYTES)
    }
    /// Bumped (wrapping) on every change.
    pub fn generation(&self) -> u32 {
        self.generation
    }
    /// True when some rule's verdict depends on the packet's destination or port: then a socket
    /// whose destination is not fixed (unconnected UDP, raw) must be decided per packet.
    pub fn depends_on_destination(&self) -> bool {
        self.per_dest > 0
    }

    fn bump(&mut self) {
        self.generation = self.generation.wrapping_add(1);
    }

    fn path_of(&self, m: &QMeta) -> &[u8] {
        let start = m.start as usize;
        self.arena
            .get(start..start.saturating_add(usize::from(m.len)))
            .unwrap_or(&[])
    }

    fn view<'s>(&'s self, m: &QMeta) -> QualRef<'s> {
        QualRef {
            proto: m.proto,
            path: self.path_of(m),
            qual: m.qual(),
            action: m.action,
        }
    }

    /// The rules in insertion order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = QualRef<'_>> + '_ {
        self.meta
            .get(..self.len)
            .unwrap_or(&[])
            .iter()
            .map(|m| self.view(m))
    }

    /// The rule at `position` in insertion order.
    pub fn get(&self, position: usize) -> Option<QualRef<'_>> {
        self.meta
            .get(..self.len)?
            .get(position)
            .map(|m| self.view(m))
    }

    fn meta_at(&self, order_index: usize) -> Option<(usize, &QMeta)> {
        let pos = usize::from(*self.order.get(order_index)?);
        Some((pos, self.meta.get(pos)?))
    }

    /// First index in `order[lo..hi]` whose (key, hash) is not less than `(key, hash)`.
    fn lower_bound(&self, mut lo: usize, mut hi: usize, key: &DKey, hash: Option<u32>) -> usize {
        while lo < hi {
            let mid = lo.wrapping_add(hi.wrapping_sub(lo) / 2);
            let less = match self.meta_at(mid) {
                Some((_, m)) => match hash {
                    None => m.key < *key,
                    Some(h) => (m.key, m.hash) < (*key, h),
                },
                None => false,
            };
            if less {
                lo = mid.wrapping_add(1);
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// First index in `order[lo..hi]` whose (key, hash) is greater than `(key, hash)`.
    fn upper_bound(&self, mut lo: usize, mut hi: usize, key: &DKey, hash: Option<u32>) -> usize {
        while lo < hi {
            let mid = lo.wrapping_add(hi.wrapping_sub(lo) / 2);
            let le = match self.meta_at(mid) {
                Some((_, m)) => match hash {
                    None => m.key <= *key,
                    Some(h) => (m.key, m.hash) <= (*key, h),
                },
                None => false,
            };
            if le {
                lo = mid.wrapping_add(1);
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Position of the rule with exactly this key.
    fn find(&self, proto: u32, path: &[u8], hash: u32, q: &Qualifiers) -> Option<usize> {
        let key = DKey::of(&q.dest);
        let lo = self.lower_bound(0, self.len, &key, Some(hash));
        let hi = self.upper_bound(lo, self.len, &key, Some(hash));
        (lo..hi).find_map(|i| {
            let (pos, m) = self.meta_at(i)?;
            (m.proto == proto && m.ports == q.ports && m.uid == q.uid && self.path_of(m) == path)
                .then_some(pos)
        })
    }

    /// Adds a rule: appended, or unchanged, or flipped in place (like the ring).
    #[allow(
        clippy::result_large_err,
        reason = "heapless style: a full table hands the rule back by value"
    )]
    pub fn add(&mut self, rule: QualRule) -> Result<crate::AddOutcome, QualFull> {
        use crate::AddOutcome;
        let bytes = rule.path.as_bytes();
        let hash = hash_bytes(bytes);
        if let Some(pos) = self.find(rule.proto, bytes, hash, &rule.qual) {
            return match self.meta.get_mut(pos) {
                Some(m) if m.action == rule.action => Ok(AddOutcome::Unchanged),
                Some(m) => {
                    m.action = rule.action;
                    self.bump();
                    Ok(AddOutcome::Flipped)
                }
                None => Err(QualFull(rule)),
            };
        }
        let (Ok(len), false) = (u8::try_from(bytes.len()), bytes.is_empty()) else {
            return Err(QualFull(rule));
        };
        if self.len >= N || self.used.saturating_add(bytes.len()) > BYTES {
            return Err(QualFull(rule));
        }
        let key = DKey::of(&rule.qual.dest);
        let at = self.upper_bound(0, self.len, &key, Some(hash));
        let pos = self.len;
        let Ok(pos16) = u16::try_from(pos) else {
            return Err(QualFull(rule));
        };
        let start = self.used;
        let Some(dst) = self.arena.get_mut(start..start.saturating_add(bytes.len())) else {
            return Err(QualFull(rule));
        };
        for (d, b) in dst.iter_mut().zip(bytes) {
            *d = *b;
        }
        if let Some(slot) = self.meta.get_mut(pos) {
            *slot = QMeta {
                key,
                hash,
                proto: rule.proto,
                ports: rule.qual.ports,
                uid: rule.qual.uid,
                start: u32::try_from(start).unwrap_or(u32::MAX),
                len,
                action: rule.action,
                newpos: 0,
            };
        }
        // Shift the sorted index right by one from `at` (backwards: no overlap problem).
        let mut i = pos;
        while i > at {
            let prev = self.order.get(i.wrapping_sub(1)).copied().unwrap_or(0);
            if let Some(o) = self.order.get_mut(i) {
                *o = prev;
            }
            i = i.wrapping_sub(1);
        }
        if let Some(o) = self.order.get_mut(at) {
            *o = pos16;
        }
        self.used = self.used.saturating_add(bytes.len());
        self.len = self.len.saturating_add(1);
        self.count(&key, rule.qual.ports.is_some(), true);
        self.bump();
        Ok(AddOutcome::Added)
    }

    fn count(&mut self, key: &DKey, ports: bool, add: bool) {
        let mut in_use = false;
        if let Some(c) = self.slots.get_mut(key.slot()) {
            *c = if add {
                c.saturating_add(1)
            } else {
                c.saturating_sub(1)
            };
            in_use = *c > 0;
        }
        let bit = match key.class() {
            CLASS_V4 => Some(usize::from(key.len())),
            CLASS_V6 => Some(64usize.saturating_add(usize::from(key.len()))),
            _ => None,
        };
        if let Some(b) = bit {
            if let Some(w) = self.lens.get_mut(b / 64) {
                if in_use {
                    *w |= 1u64 << (b % 64);
                } else {
                    *w &= !(1u64 << (b % 64));
                }
            }
        }
        if key.cl != 0 || ports {
            self.per_dest = if add {
                self.per_dest.saturating_add(1)
            } else {
                self.per_dest.saturating_sub(1)
            };
        }
    }

    /// Removes the rule with exactly this (protocol, path, qualifiers). Returns whether one was.
    pub fn remove(&mut self, proto: u32, path: &[u8], q: &Qualifiers) -> bool {
        let Some(pos) = self.find(proto, path, hash_bytes(path), q) else {
            return false;
        };
        self.retain(|p, _| p != pos);
        true
    }

    /// Removes every rule. Returns how many were.
    pub fn clear(&mut self) -> usize {
        let n = self.len;
        self.len = 0;
        self.used = 0;
        self.slots = [0; SLOTS];
        self.lens = [0; 4];
        self.per_dest = 0;
        if n > 0 {
            self.bump();
        }
        n
    }

    /// Removes every rule with `action`. Returns how many were.
    pub fn clear_action(&mut self, action: Action) -> usize {
        self.retain(|_, m| m.action != action)
    }

    /// Removes every rule for (protocol, path) whatever its qualifiers (the original's CLEAR of one
    /// rule names only protocol and path). Returns how many were.
    pub fn remove_all_for(&mut self, proto: u32, path: &[u8]) -> usize {
        let hash = hash_bytes(path);
        let mut n = 0usize;
        // Mark first (newpos), then compact, so `path_of` is read before anything moves.
        for r in 0..self.len {
            let hit = match self.meta.get(r) {
                Some(m) => m.proto == proto && m.hash == hash && self.path_of(m) == path,
                None => false,
            };
            if let Some(m) = self.meta.get_mut(r) {
                m.newpos = u16::from(hit);
            }
            n = n.saturating_add(usize::from(hit));
        }
        if n > 0 {
            self.retain(|_, m| m.newpos == 0);
        }
        n
    }

    /// Keeps the rules for which `keep(position, meta)` holds, in order; fixes the sorted index,
    /// the class counts and the arena. O(N + path bytes), no copy of the tables.
    fn retain(&mut self, mut keep: impl FnMut(usize, &QMeta) -> bool) -> usize {
        // 1. Decide, and give every kept rule its new position.
        let mut w = 0u16;
        for r in 0..self.len {
            let Some(m) = self.meta.get(r).copied() else {
                break;
            };
            let k = keep(r, &m);
            if !k {
                self.count(&m.key, m.ports.is_some(), false);
            }
            if let Some(mm) = self.meta.get_mut(r) {
                mm.newpos = if k { w } else { u16::MAX };
            }
            if k {
                w = w.wrapping_add(1);
            }
        }
        let removed = self.len.saturating_sub(usize::from(w));
        if removed == 0 {
            return 0;
        }
        // 2. The sorted index keeps its order; positions are renumbered.
        let mut o = 0usize;
        for i in 0..self.len {
            let np = self
                .order
                .get(i)
                .and_then(|&p| self.meta.get(usize::from(p)))
                .map_or(u16::MAX, |m| m.newpos);
            if np != u16::MAX {
                if let Some(slot) = self.order.get_mut(o) {
                    *slot = np;
                }
                o = o.wrapping_add(1);
            }
        }
        // 3. Compact metadata and arena forward (destination always below the source).
        let mut cursor = 0usize;
        let mut wr = 0usize;
        for r in 0..self.len {
            let Some(m) = self.meta.get(r).copied() else {
                break;
            };
            if m.newpos == u16::MAX {
                continue;
            }
            let need = usize::from(m.len);
            let from = m.start as usize;
            if from != cursor {
                for i in 0..need {
                    let byte = self.arena.get(from.wrapping_add(i)).copied().unwrap_or(0);
                    if let Some(d) = self.arena.get_mut(cursor.wrapping_add(i)) {
                        *d = byte;
                    }
                }
            }
            if let Some(slot) = self.meta.get_mut(wr) {
                *slot = QMeta {
                    start: u32::try_from(cursor).unwrap_or(u32::MAX),
                    ..m
                };
            }
            cursor = cursor.saturating_add(need);
            wr = wr.wrapping_add(1);
        }
        self.len = wr;
        self.used = cursor;
        self.bump();
        removed
    }

    /// The qualified rule that decides a packet from `exe` with `facts`, by [`Precedence`]
    /// (equal keys: the earlier rule), or `None`. See the module docs for the cost.
    pub fn lookup(&self, facts: &QualFacts, exe: &ExePath) -> Option<QualMatch> {
        if self.len == 0 {
            return None;
        }
        let exe = exe.as_bytes();
        let mut best: Option<QualMatch> = None;
        let mut visit = |key: DKey| {
            if let Some(m) = self.best_in(&key, facts, exe) {
                if best.is_none_or(|b| {
                    (m.precedence, core::cmp::Reverse(m.position))
                        > (b.precedence, core::cmp::Reverse(b.position))
                }) {
                    best = Some(m);
                }
            }
        };
        if self.slots.first().is_some_and(|&c| c > 0) {
            visit(DKey::ANY);
        }
        let Some(dst) = facts.dst.map(Addr::canonical) else {
            return best;
        };
        let scope = DKey::of(&Dest::Scope(Scope::of(dst)));
        if self.slots.get(scope.slot()).is_some_and(|&c| c > 0) {
            visit(scope);
        }
        // One visit per prefix length in use in the packet's family (a bit set, walked by
        // trailing zeros: lengths not in use cost nothing).
        let (words, bits, class, addr) = match dst {
            Addr::V4(a) => (
                self.lens.get(..1).unwrap_or(&[]),
                32u32,
                CLASS_V4,
                u128::from(u32::from_be_bytes(a)),
            ),
            Addr::V6(a) => (
                self.lens.get(1..).unwrap_or(&[]),
                128u32,
                CLASS_V6,
                u128::from_be_bytes(a),
            ),
        };
        for (w, &word) in words.iter().enumerate() {
            let mut word = word;
            while word != 0 {
                let bit = word.trailing_zeros();
                word &= word.wrapping_sub(1);
                let len = (w as u32).wrapping_mul(64).wrapping_add(bit) as u8;
                visit(DKey::prefix(class, len, keep_bits(addr, len, bits)));
            }
        }
        best
    }

    /// The best rule among those whose destination key is exactly `key`: one binary search for
    /// the run's start, then a scan of at most [`SHORT_RUN`] rules, or for a longer run a search by
    /// the path hash of the executable and each of its folders.
    fn best_in(&self, key: &DKey, facts: &QualFacts, exe: &[u8]) -> Option<QualMatch> {
        let lo = self.lower_bound(0, self.len, key, None);
        let mut best: Option<QualMatch> = None;
        let mut consider = |i: usize| {
            let Some((pos, m)) = self.meta_at(i) else {
                return;
            };
            if let Some(prec) = self.matches(m, facts, exe) {
                if best.is_none_or(|b| {
                    prec > b.precedence || (prec == b.precedence && pos < b.position)
                }) {
                    best = Some(QualMatch {
                        action: m.action,
                        precedence: prec,
                        position: pos,
                    });
                }
            }
        };
        let mut end = lo;
        while end < self.len && end.wrapping_sub(lo) <= SHORT_RUN {
            match self.meta_at(end) {
                Some((_, m)) if m.key == *key => end = end.wrapping_add(1),
                _ => break,
            }
        }
        if end.wrapping_sub(lo) <= SHORT_RUN {
            (lo..end).for_each(&mut consider);
        } else {
            let hi = self.upper_bound(end, self.len, key, None);
            for_each_candidate(exe, |hash| {
                let a = self.lower_bound(lo, hi, key, Some(hash));
                let b = self.upper_bound(a, hi, key, Some(hash));
                (a..b).for_each(&mut consider);
            });
        }
        best
    }

    /// The precedence of `m` for this packet, if it applies.
    fn matches(&self, m: &QMeta, facts: &QualFacts, exe: &[u8]) -> Option<Precedence> {
        let protocol = if m.proto == PROTO_ANY {
            false
        } else if m.proto == facts.proto {
            true
        } else {
            return None;
        };
        if let Some(p) = &m.ports {
            if !facts.dport.is_some_and(|d| p.contains(d)) || !protocol_has_ports(facts.proto) {
                return None;
            }
        }
        if m.uid.is_some() && m.uid != facts.uid {
            return None;
        }
        let program = program_rank(exe, self.path_of(m))?;
        Some(Precedence::of(
            &m.qual(),
            program,
            protocol,
            m.action == Action::Block,
        ))
    }
}

/// Calls `f(hash)` for the path hash of every rule path that can match `exe`: each folder above it
/// and, unless it is a folder, the path itself (one incremental hash pass; only a long run of rules
/// naming the same destination needs this).
fn for_each_candidate(exe: &[u8], mut f: impl FnMut(u32)) {
    let mut h = PathHash::new();
    let mut start = 0usize;
    let last = exe.len().saturating_sub(1);
    while let Some(rest) = exe.get(start..) {
        let Some(off) = rest.iter().position(|&b| b == b'/') else {
            break;
        };
        let slash = start.saturating_add(off);
        if slash >= last {
            break;
        }
        h.update(rest.get(..=off).unwrap_or(&[]));
        start = slash.saturating_add(1);
        f(h.finalize());
    }
    if exe.last().is_some_and(|&b| b != b'/') {
        f(hash_bytes(exe));
    }
}

/// [`Precedence::EXACT`] for the executable itself, the folder's length for a folder above it,
/// `None` otherwise (a folder rule never matches the folder path itself).
fn program_rank(exe: &[u8], rule: &[u8]) -> Option<u16> {
    if rule.last() == Some(&b'/') {
        (exe.len() > rule.len() && exe.starts_with(rule))
            .then(|| u16::try_from(rule.len()).unwrap_or(0))
    } else {
        (rule == exe).then_some(Precedence::EXACT)
    }
}

/// The rule (of either table) that decides a packet: the qualified match if its precedence is
/// higher than the unqualified one's, else the unqualified one. An unqualified rule's key has no
/// user, destination rank 0 and no ports, so any applicable qualified rule ranks above it.
pub fn decide_rule(plain: Option<RuleMatch>, qualified: Option<QualMatch>) -> Option<Action> {
    match (plain, qualified) {
        (Some(p), Some(q)) => {
            if q.precedence > plain_precedence(&p) {
                Some(q.action)
            } else {
                Some(p.action)
            }
        }
        (p, q) => p.map(|m| m.action).or(q.map(|m| m.action)),
    }
}

/// The precedence key of an unqualified match.
pub fn plain_precedence(m: &RuleMatch) -> Precedence {
    let program = match m.kind {
        MatchKind::Exact => Precedence::EXACT,
        MatchKind::Folder { depth_len } => u16::try_from(depth_len).unwrap_or(0),
    };
    Precedence::of(
        &Qualifiers::NONE,
        program,
        m.proto != PROTO_ANY,
        m.action == Action::Block,
    )
}
