//! Operation decoder and model checks shared by the `core_ops` fuzz target (nightly, cargo-fuzz) and
//! the stable corpus replay test (`tests/fuzz_corpus.rs`). Hidden from the docs; not a stable API.
//!
//! Bytes decode into a sequence of operations on small instances of every structure (so that sets
//! fill, slots are reused and clocks wrap quickly). After every operation the results are checked
//! against simple models kept in fixed arrays (no allocation; the module is compiled only with the
//! test-only `fuzzing` feature, never into the kernel module):
//! - rules: an ordered list; lookups against a brute-force reading of the precedence rules;
//! - executables: an id never resolves to a path other than the one it was issued for;
//! - sockets: lookups agree with the model, a verdict is returned only for the destination it was
//!   stored for; an evicted entry is one of the least recently used of its set (wrap-safe),
//!   starting from a fuzz-chosen clock;
//! - active cache: answers agree with the snapshot of the last walk; walks respect the interval;
//! - squelch: never two permits for one key in one second.

use core::ops::ControlFlow;

use crate::active::{ActiveCache, ActiveLookup, ProcessTable, SocketOwner};
use crate::exe::{ExeId, ExeTable};
use crate::flags::Action;
use crate::host::TaskId;
use crate::path::ExePath;
use crate::rules::{AddOutcome, MatchKind, Rule, RuleRing};
use crate::schema::{PROTO_ANY, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};
use crate::socket::{CachedVerdict, DestKey, Identity, KnownSocket, SocketCache, SocketKey};
use crate::squelch::Squelch;

/// Paths the fuzzer picks from: nested folders, siblings and a prefix that is not a folder.
pub const PATHS: [&[u8]; 16] = [
    b"/",
    b"/usr/",
    b"/usr/bin/",
    b"/usr/bin/wget",
    b"/usr/bin/curl",
    b"/usr/bin/sub/",
    b"/usr/bin/sub/tool",
    b"/usr/binary",
    b"/opt/",
    b"/opt/app",
    b"/opt/app/",
    b"/opt/app/bin",
    b"/a",
    b"/b",
    b"/usr/lib/x",
    b"/usr/bin",
];

/// Protocols the harness uses: the common four, `any`, sctp (named by the schema), gre by number,
/// and 256, which is no IP protocol and must be refused.
const PROTOS: [u32; 8] = [
    PROTO_TCP,
    PROTO_UDP,
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_ANY,
    132,
    47,
    NOT_A_PROTOCOL,
];

const NOT_A_PROTOCOL: u32 = 256;

/// Ring capacity used by the harness.
pub const RULES: usize = 16;
const SETS: usize = 4;
const WAYS: usize = 2;
const EXES: usize = 4;
const ACTIVE: usize = 8;
const TABLE: usize = 24;
const MODEL_EXE_IDS: usize = 64;

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = self.data.get(self.pos).copied();
        self.pos = self.pos.saturating_add(1);
        b
    }
    fn u32(&mut self) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..4 {
            v = (v << 8) | u32::from(self.byte()?);
        }
        Some(v)
    }
}

#[derive(Clone, Copy)]
struct ModelRule {
    proto: u32,
    path: usize,
    action: Action,
}

#[derive(Clone, Copy)]
struct ModelSock {
    key: u64,
    tgid: u32,
    stamp: u32,
    /// The stored verdict (packed) and the destination word it was stored for.
    verdict: u64,
    dest: u64,
}

struct Table {
    pairs: [SocketOwner; TABLE],
    len: usize,
}

impl ProcessTable for Table {
    fn for_each_socket(&mut self, f: &mut dyn FnMut(SocketOwner) -> ControlFlow<()>) {
        for p in self.pairs.iter().take(self.len) {
            if f(*p).is_break() {
                return;
            }
        }
    }
}

/// All harness state: the structures under test and their models.
struct Harness {
    rules: RuleRing<RULES>,
    model_rules: [Option<ModelRule>; RULES],
    exes: ExeTable<EXES>,
    exe_ids: [(u64, usize); MODEL_EXE_IDS],
    exe_ids_len: usize,
    sockets: SocketCache<SETS, WAYS>,
    model_socks: [Option<ModelSock>; SETS * WAYS],
    active: ActiveCache<ACTIVE>,
    table: Table,
    walked: Table,
    last_walk: Option<u64>,
    squelch: Squelch<8>,
    squelch_model: [(u32, u64); 16],
    now_ms: u64,
}

/// Runs the operations encoded in `data`, checking every result against the models.
/// `Err` names the first disagreement (the fuzz target panics with it).
pub fn run(data: &[u8]) -> Result<(), &'static str> {
    let mut r = Reader { data, pos: 0 };
    let clock = r.u32().unwrap_or(u32::MAX - 8);
    let mut h = Harness {
        rules: RuleRing::new(),
        model_rules: [None; RULES],
        exes: ExeTable::new(),
        exe_ids: [(0, 0); MODEL_EXE_IDS],
        exe_ids_len: 0,
        sockets: SocketCache::with_clock(clock),
        model_socks: [None; SETS * WAYS],
        active: ActiveCache::with_limits(20, 100),
        table: Table {
            pairs: [SocketOwner { inode: 0, tgid: 0 }; TABLE],
            len: 0,
        },
        walked: Table {
            pairs: [SocketOwner { inode: 0, tgid: 0 }; TABLE],
            len: 0,
        },
        last_walk: None,
        squelch: Squelch::new(),
        squelch_model: [(0, u64::MAX); 16],
        now_ms: 0,
    };
    h.exes.set_clock(clock);
    h.rules.set_generation(clock);
    let mut ops = 0usize;
    while let Some(op) = r.byte() {
        ops = ops.wrapping_add(1);
        if ops > 4096 {
            break;
        }
        h.step(op, &mut r)?;
    }
    Ok(())
}

fn path_of(b: u8) -> usize {
    usize::from(b) % PATHS.len()
}

fn model_lookup(rules: &[Option<ModelRule>], proto: u32, exe: &[u8]) -> Option<(usize, ModelRule)> {
    // Score: exact beats folder, deeper folder beats shallower, specific protocol beats any.
    let mut best: Option<(usize, ModelRule, (bool, usize, bool))> = None;
    for (pos, r) in rules.iter().enumerate() {
        let Some(r) = r else { break };
        let rp = PATHS.get(r.path).copied().unwrap_or(b"");
        let folder = rp.last() == Some(&b'/');
        let matches_path = if folder {
            exe.len() > rp.len() && exe.starts_with(rp)
        } else {
            exe == rp
        };
        let matches_proto = r.proto == PROTO_ANY || (r.proto == proto && proto != PROTO_ANY);
        if !(matches_path && matches_proto) {
            continue;
        }
        let score = (!folder, rp.len(), r.proto != PROTO_ANY);
        if best.is_none_or(|(_, _, s)| score > s) {
            best = Some((pos, *r, score));
        }
    }
    best.map(|(p, r, _)| (p, r))
}

impl Harness {
    fn step(&mut self, op: u8, r: &mut Reader<'_>) -> Result<(), &'static str> {
        match op % 12 {
            0 => self.add_rule(r),
            1 => self.remove_rule(r),
            2 => self.clear_rules(r),
            3 => self.lookup_rule(r),
            4 => self.intern(r),
            5 => self.check_exes(),
            6 => self.insert_socket(r),
            7 => self.lookup_socket(r),
            8 => self.forget_socket(r),
            9 => self.active_op(r),
            10 => self.squelch_op(r),
            _ => {
                self.now_ms = self
                    .now_ms
                    .wrapping_add(u64::from(r.byte().unwrap_or(0)).wrapping_mul(7));
                Ok(())
            }
        }
    }

    fn model_rule_len(&self) -> usize {
        self.model_rules.iter().take_while(|x| x.is_some()).count()
    }

    fn check_rule_order(&self) -> Result<(), &'static str> {
        if self.rules.len() != self.model_rule_len() {
            return Err("rule count differs from model");
        }
        for (got, want) in self.rules.iter().zip(self.model_rules.iter()) {
            let Some(w) = want else {
                return Err("ring has more rules than model");
            };
            if got.proto() != w.proto
                || got.action() != w.action
                || Some(got.path().as_bytes()) != PATHS.get(w.path).copied()
            {
                return Err("rule order/content differs from model");
            }
        }
        Ok(())
    }

    fn add_rule(&mut self, r: &mut Reader<'_>) -> Result<(), &'static str> {
        let (Some(p), Some(q), Some(a)) = (r.byte(), r.byte(), r.byte()) else {
            return Ok(());
        };
        let path = path_of(p);
        let proto = PROTOS
            .get(usize::from(q) % PROTOS.len())
            .copied()
            .unwrap_or(0);
        let action = if a & 1 == 0 {
            Action::Allow
        } else {
            Action::Block
        };
        let gen = self.rules.generation();
        let rule = match Rule::new(proto, PATHS.get(path).copied().unwrap_or(b""), action) {
            Ok(rule) => rule,
            Err(_) => {
                return if proto == NOT_A_PROTOCOL {
                    Ok(())
                } else {
                    Err("valid rule refused")
                };
            }
        };
        if proto == NOT_A_PROTOCOL {
            return Err("protocol 256 accepted in a rule");
        }
        let len = self.model_rule_len();
        let existing = self
            .model_rules
            .iter_mut()
            .take(len)
            .flatten()
            .find(|m| m.proto == proto && m.path == path);
        let expect = match existing {
            Some(m) if m.action == action => AddOutcome::Unchanged,
            Some(m) => {
                m.action = action;
                AddOutcome::Flipped
            }
            None if len >= RULES => {
                return match self.rules.add(rule) {
                    Err(crate::rules::Full(back)) if back.proto() == proto => {
                        if self.rules.generation() != gen {
                            return Err("full add changed the generation");
                        }
                        self.check_rule_order()
                    }
                    _ => Err("full ring did not hand the rule back"),
                };
            }
            None => {
                if let Some(slot) = self.model_rules.get_mut(len) {
                    *slot = Some(ModelRule {
                        proto,
                        path,
                        action,
                    });
                }
                AddOutcome::Added
            }
        };
        if self.rules.add(rule) != Ok(expect) {
            return Err("add outcome differs from model");
        }
        let bumped = self.rules.generation() != gen;
        if bumped != (expect != AddOutcome::Unchanged) {
            return Err("generation bump differs from change");
        }
        self.check_rule_order()
    }

    fn remove_rule(&mut self, r: &mut Reader<'_>) -> Result<(), &'static str> {
        let (Some(p), Some(q)) = (r.byte(), r.byte()) else {
            return Ok(());
        };
        let path = path_of(p);
        let proto = PROTOS
            .get(usize::from(q) % PROTOS.len())
            .copied()
            .unwrap_or(0);
        let len = self.model_rule_len();
        let pos = self
            .model_rules
            .iter()
            .take(len)
            .position(|m| m.is_some_and(|m| m.proto == proto && m.path == path));
        if let Some(pos) = pos {
            let mut i = pos;
            while i.saturating_add(1) < RULES {
                let next = self.model_rules.get(i.saturating_add(1)).copied().flatten();
                if let Some(s) = self.model_rules.get_mut(i) {
                    *s = next;
                }
                i = i.wrapping_add(1);
            }
            if let Some(s) = self.model_rules.get_mut(RULES.saturating_sub(1)) {
                *s = None;
            }
        }
        let removed = self
            .rules
            .remove(proto, PATHS.get(path).copied().unwrap_or(b""));
        if removed != pos.is_some() {
            return Err("remove result differs from model");
        }
        self.check_rule_order()
    }

    fn clear_rules(&mut self, r: &mut Reader<'_>) -> Result<(), &'static str> {
        let Some(w) = r.byte() else { return Ok(()) };
        let len = self.model_rule_len();
        let (n, target) = match w % 3 {
            0 => (self.rules.clear(), None),
            1 => (self.rules.clear_action(Action::Allow), Some(Action::Allow)),
            _ => (self.rules.clear_action(Action::Block), Some(Action::Block)),
        };
        let mut kept = [None; RULES];
        let mut k = 0usize;
        for m in self.model_rules.iter().take(len).flatten() {
            if target.is_some_and(|t| t != m.action) {
                if let Some(s) = kept.get_mut(k) {
                    *s = Some(*m);
                }
                k = k.wrapping_add(1);
            }
        }
        self.model_rules = kept;
        if n != len.saturating_sub(k) {
            return Err("clear count differs from model");
        }
        self.check_rule_order()
    }

    fn lookup_rule(&mut self, r: &mut Reader<'_>) -> Result<(), &'static str> {
        let (Some(p), Some(q)) = (r.byte(), r.byte()) else {
            return Ok(());
        };
        let exe = PATHS.get(path_of(p)).copied().unwrap_or(b"/");
        // Packet protocols: the common four, sctp and gre (never `any` or 256).
        let packet_protos = [PROTO_TCP, PROTO_UDP, PROTO_ICMP, PROTO_ICMPV6, 132, 47];
        let proto = packet_protos
            .get(usize::from(q) % packet_protos.len())
            .copied()
            .unwrap_or(PROTO_TCP);
        let Ok(path) = ExePath::new(exe) else {
            return Err("dictionary path invalid");
        };
        let got = self.rules.lookup(proto, &path);
        let want = model_lookup(&self.model_rules, proto, exe);
        match (got, want) {
            (None, None) => Ok(()),
            (Some(g), Some((pos, m))) => {
                let kind_ok = match g.kind {
                    MatchKind::Exact => PATHS.get(m.path).copied() == Some(exe),
                    MatchKind::Folder { depth_len } => {
                        PATHS.get(m.path).map(|x| x.len()) == Some(depth_len)
                    }
                };
                if g.position == pos && g.action == m.action && g.proto == m.proto && kind_ok {
                    Ok(())
                } else {
                    Err("lookup picked a different rule than the model")
                }
            }
            _ => Err("lookup presence differs from model"),
        }
    }

    fn intern(&mut self, r: &mut Reader<'_>) -> Result<(), &'static str> {
        let Some(p) = r.byte() else { return Ok(()) };
        let path = path_of(p);
        let id = self
            .exes
            .intern(PATHS.get(path).copied().unwrap_or(b"/"))
            .map_err(|_| "valid exe path refused")?;
        if id.gen() == 0 {
            return Err("generation 0 issued");
        }
        let slot = self.exe_ids_len % MODEL_EXE_IDS;
        if let Some(s) = self.exe_ids.get_mut(slot) {
            *s = (id.to_u64(), path);
        }
        self.exe_ids_len = self.exe_ids_len.wrapping_add(1);
        self.check_exes()
    }

    fn check_exes(&mut self) -> Result<(), &'static str> {
        if self.exes.len() > EXES {
            return Err("exe table over capacity");
        }
        for &(raw, path) in self
            .exe_ids
            .iter()
            .take(self.exe_ids_len.min(MODEL_EXE_IDS))
        {
            let Some(id) = ExeId::from_u64(raw) else {
                return Err("issued id does not round-trip");
            };
            if let Some(p) = self.exes.get(id) {
                if Some(p.as_bytes()) != PATHS.get(path).copied() {
                    return Err("an id resolved to a different path");
                }
            }
        }
        for (id, p) in self.exes.iter() {
            if self.exes.find(p.as_bytes()) != Some(id) {
                return Err("find disagrees with iter");
            }
        }
        Ok(())
    }

    fn model_socket(&self, key: u64) -> Option<usize> {
        self.model_socks
            .iter()
            .position(|m| m.is_some_and(|m| m.key == key))
    }

    fn insert_socket(&mut self, r: &mut Reader<'_>) -> Result<(), &'static str> {
        let (Some(k), Some(t)) = (r.byte(), r.byte()) else {
            return Ok(());
        };
        let key = u64::from(k % 32);
        let tgid = u32::from(t);
        let evicted = self.sockets.insert(
            SocketKey(key),
            KnownSocket {
                inode: key,
                owner: TaskId::tgid_only(tgid),
                uid: 0,
                exe: Identity::Unknown,
            },
        );
        let now = self.sockets.clock_of(SocketKey(key));
        if let Some(ev) = evicted {
            let Some(ei) = self.model_socket(ev.0) else {
                return Err("evicted a key the model does not hold");
            };
            if self.model_socket(key).is_some() {
                return Err("evicted while the key was present");
            }
            let set = self.sockets.set_index(SocketKey(ev.0));
            if set != self.sockets.set_index(SocketKey(key)) {
                return Err("evicted from another set");
            }
            let ev_age = self
                .model_socks
                .get(ei)
                .copied()
                .flatten()
                .map_or(0, |m| now.wrapping_sub(m.stamp));
            for m in self.model_socks.iter().flatten() {
                if m.key != ev.0
                    && self.sockets.set_index(SocketKey(m.key)) == set
                    && now.wrapping_sub(m.stamp) > ev_age
                {
                    return Err("evicted an entry that was not the least recently used");
                }
            }
            if let Some(s) = self.model_socks.get_mut(ei) {
                *s = None;
            }
        }
        let entry = ModelSock {
            key,
            tgid,
            stamp: now,
            verdict: CachedVerdict::EMPTY.packed(),
            dest: DestKey::NONE.0,
        };
        match self.model_socket(key) {
            Some(i) => {
                if let Some(s) = self.model_socks.get_mut(i) {
                    *s = Some(entry);
                }
            }
            None => match self.model_socks.iter().position(|m| m.is_none()) {
                Some(i) => {
                    if let Some(s) = self.model_socks.get_mut(i) {
                        *s = Some(entry);
                    }
                }
                None => return Err("cache holds more entries than its capacity"),
            },
        }
        if self.sockets.len() != self.model_socks.iter().flatten().count() {
            return Err("socket count differs from model");
        }
        Ok(())
    }

    /// A lookup for one of four destination words (0: not read), or (high bit of the second byte)
    /// a verdict stored for one: in place when the entry holds that destination, else the entry
    /// rewritten for it (the engine's two steps).
    fn lookup_socket(&mut self, r: &mut Reader<'_>) -> Result<(), &'static str> {
        let Some(k) = r.byte() else { return Ok(()) };
        let key = u64::from(k % 32);
        let d = r.byte().unwrap_or(0);
        let dest = DestKey(u64::from(d & 3));
        if d & 0x80 != 0 {
            return self.store_socket_verdict(key, dest, u64::from(d));
        }
        let got = self.sockets.lookup_at(SocketKey(key), dest);
        let now = self.sockets.clock_of(SocketKey(key));
        match (got, self.model_socket(key)) {
            (None, None) => Ok(()),
            (Some((v, cv)), Some(i)) => {
                let slot = self.model_socks.get_mut(i).and_then(|s| s.as_mut());
                match slot {
                    Some(m) if m.tgid == v.owner.tgid => {
                        m.stamp = now;
                        let want = if m.dest == dest.0 {
                            m.verdict
                        } else {
                            CachedVerdict::EMPTY.packed()
                        };
                        if cv.packed() != want {
                            return Err("a verdict returned for another destination, or lost");
                        }
                        Ok(())
                    }
                    _ => Err("socket value differs from model"),
                }
            }
            _ => Err("socket presence differs from model"),
        }
    }

    fn store_socket_verdict(
        &mut self,
        key: u64,
        dest: DestKey,
        v: u64,
    ) -> Result<(), &'static str> {
        let verdict = CachedVerdict::from_packed((v << 32) | (1 << 40) | key);
        let Some(i) = self.model_socket(key) else {
            if self.sockets.store_verdict_at(SocketKey(key), verdict, dest) {
                return Err("stored a verdict for a socket the model does not hold");
            }
            return Ok(());
        };
        let Some(m) = self.model_socks.get_mut(i).and_then(|s| s.as_mut()) else {
            return Ok(());
        };
        let stored = self.sockets.store_verdict_at(SocketKey(key), verdict, dest);
        if stored != (m.dest == dest.0) {
            return Err("store_verdict_at ignored the entry's destination");
        }
        if !stored {
            let known = KnownSocket {
                inode: key,
                owner: TaskId::tgid_only(m.tgid),
                uid: 0,
                exe: Identity::Unknown,
            };
            if self
                .sockets
                .insert_with_verdict_at(SocketKey(key), known, verdict, dest)
                .is_some()
            {
                return Err("rewriting a present entry evicted another");
            }
            m.stamp = self.sockets.clock_of(SocketKey(key));
            m.dest = dest.0;
        }
        m.verdict = verdict.packed();
        Ok(())
    }

    fn forget_socket(&mut self, r: &mut Reader<'_>) -> Result<(), &'static str> {
        let Some(k) = r.byte() else { return Ok(()) };
        if k == 255 {
            self.sockets.clear();
            self.model_socks = [None; SETS * WAYS];
            return Ok(());
        }
        let key = u64::from(k % 32);
        let had = self.model_socket(key);
        if let Some(i) = had {
            if let Some(s) = self.model_socks.get_mut(i) {
                *s = None;
            }
        }
        if self.sockets.forget(SocketKey(key)) != had.is_some() {
            return Err("forget result differs from model");
        }
        Ok(())
    }

    fn active_op(&mut self, r: &mut Reader<'_>) -> Result<(), &'static str> {
        let (Some(a), Some(b)) = (r.byte(), r.byte()) else {
            return Ok(());
        };
        if a & 0x80 != 0 {
            // Mutate the process table: add or drop a pair.
            if self.table.len < TABLE && a & 1 == 0 {
                if let Some(s) = self.table.pairs.get_mut(self.table.len) {
                    *s = SocketOwner {
                        inode: u64::from(b % 40),
                        tgid: u32::from(a & 0x3F),
                    };
                }
                self.table.len = self.table.len.saturating_add(1);
            } else {
                self.table.len = self.table.len.saturating_sub(1);
            }
            return Ok(());
        }
        let inode = u64::from(b % 40);
        let before_walks = self.active.walks();
        let got = self.active.find(inode, self.now_ms, &mut self.table);
        let walked = self.active.walks() != before_walks;
        if walked {
            if let Some(last) = self.last_walk {
                if self.now_ms.saturating_sub(last) < 20 {
                    return Err("walked inside the minimum interval");
                }
            }
            self.last_walk = Some(self.now_ms);
            self.walked.pairs = self.table.pairs;
            self.walked.len = self.table.len;
        }
        let first_owner = self
            .walked
            .pairs
            .iter()
            .take(self.walked.len)
            .find(|p| p.inode == inode && inode != 0)
            .map(|p| p.tgid);
        match got {
            ActiveLookup::Owner(t) => {
                // Answers come from the last walk, and the first owner seen wins.
                if first_owner != Some(t) {
                    return Err("owner is not the first owner of the last walk");
                }
            }
            ActiveLookup::NotFound => {
                // Negative entries are reset by every walk, so NotFound means the last walk did
                // not see the inode.
                if first_owner.is_some() {
                    return Err("NotFound for an inode the last walk saw");
                }
            }
            ActiveLookup::RateLimited => {
                if walked {
                    return Err("rate limited yet walked");
                }
            }
        }
        if self.active.len() > ACTIVE {
            return Err("active cache over capacity");
        }
        Ok(())
    }

    fn squelch_op(&mut self, r: &mut Reader<'_>) -> Result<(), &'static str> {
        let (Some(a), Some(b)) = (r.byte(), r.byte()) else {
            return Ok(());
        };
        let Some(exe) = ExeId::from_u64(0x0001_0000 | u64::from(a % 8)) else {
            return Err("id construction");
        };
        let proto = if b & 1 == 0 { PROTO_TCP } else { PROTO_UDP };
        let sec = self.now_ms / 1000;
        let idx = usize::from(a % 8)
            .wrapping_mul(2)
            .wrapping_add(usize::from(b & 1));
        let permitted = self.squelch.permit(proto, exe, sec);
        if let Some(m) = self.squelch_model.get_mut(idx) {
            if permitted {
                if m.1 == sec {
                    return Err("two squelch permits for one key in one second");
                }
                *m = (1, sec);
            }
        }
        Ok(())
    }
}
