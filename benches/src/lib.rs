//! Benchmark scenarios for e7-core, shared by the criterion benches (`benches/core.rs`) and the
//! cachegrind driver (`--bin cg`), so both measure exactly the same operation.
//!
//! Each [`Scenario`] builds its state once ([`Scenario::setup`]) and then exposes one operation
//! ([`Prepared::op`]) — a single packet-path step such as a socket-cache hit or one rule lookup. The
//! cachegrind driver runs the setup plus N operations and subtracts a run with 0 operations, so the
//! reported instructions are per operation only.
//!
//! Rule sets: `n` rules, half exact executables (`/usr/bin/prog<i>`) and half folder rules
//! (`/opt/pkg<i>/`), alternating tcp/udp/any. Lookups: *exact* hits an exact rule, *folder* hits a
//! folder rule two levels above the executable, *miss* probes a path whose ancestors exist at lengths
//! used by folder rules but match none.

use std::boxed::Box;
use std::cell::RefCell;
use std::hint::black_box;
use std::ops::ControlFlow;

use e7_core::sync::Engine;
use e7_core::{
    decide, Action, ActiveCache, Addr, BlocklistTable, CachedVerdict, Deferred, Dest, ExeError,
    ExePath, ExeTable, Family, Flag, FlagValues, Host, Identity, KnownSocket, Mode, Packet,
    PacketFacts, Peer, ProcessTable, QualFacts, QualRule, QualTable, Qualifiers, Rule, RuleRing,
    SockInfo, SockKind, SocketCache, SocketKey, SocketOwner, TaskId, PROTO_ANY, PROTO_TCP,
    PROTO_UDP,
};

/// Rule-set sizes measured.
pub const RULE_COUNTS: [usize; 4] = [16, 128, 1024, 4096];

/// Blocklist sizes measured (`block any / to PREFIX` lines).
pub const PREFIX_COUNTS: [usize; 3] = [10, 1000, 10_000];

/// Prefix `i` of the benches' blocklist: a mix of /16, /24 and /32 (as real blocklists are),
/// spread over 20.0.0.0–83.255.255.255 without repeats.
pub fn blocklist_prefix(i: usize) -> String {
    let x = (i as u32).wrapping_mul(2_654_435_761) >> 6; // a bijection on 26 bits
    let (a, b, c) = (20 + (x >> 20), (x >> 12) & 255, (x >> 4) & 255);
    match i % 3 {
        0 => format!("{a}.{b}.0.0/16"),
        1 => format!("{a}.{b}.{c}.0/24"),
        _ => format!("{a}.{b}.{c}.{}", 1 + (x & 15)),
    }
}

/// An address inside blocklist prefix `i`.
pub fn blocklist_addr(i: usize) -> [u8; 4] {
    let p = blocklist_prefix(i);
    let host = p.split('/').next().unwrap_or("0.0.0.0");
    let mut a = host
        .parse::<std::net::Ipv4Addr>()
        .map_or([0; 4], |a| a.octets());
    if p.ends_with("/16") || p.ends_with("/24") {
        a[3] = 77;
    }
    a
}

/// The address the *miss* lookups send to (in no prefix of the list: below 20.0.0.0).
pub const UNLISTED: [u8; 4] = [9, 9, 9, 9];

/// Adds `n` blocklist rules to a qualified table.
pub fn fill_blocklist<const N: usize, const B: usize>(t: &mut QualTable<N, B>, n: usize) {
    for i in 0..n {
        let q = Qualifiers {
            dest: Dest::parse(&blocklist_prefix(i)).unwrap_or(Dest::Any),
            ..Qualifiers::NONE
        };
        if let Ok(r) = QualRule::new(PROTO_ANY, b"/", q, Action::Block) {
            let _ = t.add(r);
        }
    }
}

/// Which rule lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupKind {
    /// The executable has an exact rule.
    Exact,
    /// A folder rule above the executable matches.
    Folder,
    /// No rule matches.
    Miss,
}

impl LookupKind {
    /// All kinds.
    pub const ALL: [LookupKind; 3] = [LookupKind::Exact, LookupKind::Folder, LookupKind::Miss];

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            LookupKind::Exact => "exact",
            LookupKind::Folder => "folder",
            LookupKind::Miss => "miss",
        }
    }
}

/// A named benchmark scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Known-socket cache lookup of a cached socket + cached-verdict check (the per-packet fast path).
    CacheHit,
    /// Known-socket cache lookup of an unknown socket.
    CacheMiss,
    /// One active-socket table rebuild from a 1000-socket process table.
    ActiveRefill,
    /// One rule lookup in a ring of `n` rules.
    RuleLookup(LookupKind, usize),
    /// The whole decision for a packet of a known socket whose program has a rule allowing it
    /// (engine, shared locks, cached verdict: the allowed fast path).
    DecideCached,
    /// The same for a program with no rule for the protocol: cached no-rule verdict, a pending
    /// event squelched (the host wants events) — the no-rule fast path.
    DecideNoRule,
    /// The whole decision after a policy change: cached identity, rule lookup, verdict store.
    DecideRecompute,
    /// The whole decision for the first packet of a new socket of an already-identified program
    /// (each TCP connection's SYN): a socket-cache miss, the process image's identity and remembered
    /// verdict, the insert (evicting once the cache is full).
    DecideNewSocket,
    /// The pure decision function alone.
    DecidePure,
    /// One qualified-table lookup with `n` blocklist prefixes, destination in the list (`hit`) or
    /// not (`miss`: every prefix length in use is searched).
    PrefixLookup(bool, usize),
    /// [`Scenario::DecideCached`] with a 10,000-prefix blocklist loaded (the allowed program's
    /// connected socket: its cached packets must cost what they cost without the list).
    DecideCachedBlocklist,
    /// [`Scenario::DecideRecompute`] with the 10,000-prefix blocklist: a first-packet decision
    /// (ring lookup, then the qualified table).
    DecideRecomputeBlocklist,
}

impl Scenario {
    /// Every scenario.
    pub fn all() -> Vec<Scenario> {
        let mut v = vec![
            Scenario::CacheHit,
            Scenario::CacheMiss,
            Scenario::ActiveRefill,
        ];
        for n in RULE_COUNTS {
            for k in LookupKind::ALL {
                v.push(Scenario::RuleLookup(k, n));
            }
        }
        v.extend([
            Scenario::DecideCached,
            Scenario::DecideNoRule,
            Scenario::DecideRecompute,
            Scenario::DecideNewSocket,
            Scenario::DecidePure,
        ]);
        for n in PREFIX_COUNTS {
            v.push(Scenario::PrefixLookup(true, n));
            v.push(Scenario::PrefixLookup(false, n));
        }
        v.extend([
            Scenario::DecideCachedBlocklist,
            Scenario::DecideRecomputeBlocklist,
        ]);
        v
    }

    /// Stable name (`cache_hit`, `rule_miss_128`, ...).
    pub fn name(self) -> String {
        match self {
            Scenario::CacheHit => "cache_hit".into(),
            Scenario::CacheMiss => "cache_miss".into(),
            Scenario::ActiveRefill => "active_refill".into(),
            Scenario::RuleLookup(k, n) => format!("rule_{}_{n}", k.name()),
            Scenario::DecideCached => "decide_cached".into(),
            Scenario::DecideNoRule => "decide_norule".into(),
            Scenario::DecideRecompute => "decide_recompute".into(),
            Scenario::DecideNewSocket => "decide_new_socket".into(),
            Scenario::DecidePure => "decide_pure".into(),
            Scenario::PrefixLookup(hit, n) => {
                format!("prefix_{}_{n}", if hit { "hit" } else { "miss" })
            }
            Scenario::DecideCachedBlocklist => "decide_cached_blocklist".into(),
            Scenario::DecideRecomputeBlocklist => "decide_recompute_blocklist".into(),
        }
    }

    /// The scenario with this name.
    pub fn from_name(name: &str) -> Option<Scenario> {
        Scenario::all().into_iter().find(|s| s.name() == name)
    }

    /// Builds the state.
    pub fn setup(self) -> Prepared {
        match self {
            Scenario::CacheHit | Scenario::CacheMiss => {
                let mut c: Box<SocketCache> = Box::new(SocketCache::new());
                let mut t: ExeTable<16> = ExeTable::new();
                let exe = Identity::Exe(
                    t.intern(b"/usr/bin/wget")
                        .unwrap_or_else(|_| unreachable!()),
                );
                let d = decide(&enabled(), &tcp(), &exe, Some(Action::Allow));
                // 1024 cookies, as the kernel hands them out (sequential).
                for k in 0..1024u64 {
                    let key = SocketKey(1_000_000 + k * 3);
                    c.insert(
                        key,
                        KnownSocket {
                            inode: k,
                            owner: TaskId::tgid_only(100),
                            uid: 1000,
                            exe,
                        },
                    );
                    c.store_verdict(key, CachedVerdict::for_proto(d, 5, PROTO_TCP));
                }
                let key = if self == Scenario::CacheHit {
                    SocketKey(1_000_000 + 512 * 3)
                } else {
                    SocketKey(7)
                };
                Prepared::Sockets { cache: c, key }
            }
            Scenario::ActiveRefill => Prepared::Active {
                cache: Box::new(ActiveCache::with_limits(0, 0)),
                table: FakeTable::new(1000),
            },
            Scenario::RuleLookup(kind, n) => {
                let exe = Box::new(
                    ExePath::new(lookup_path(kind, n).as_bytes()).unwrap_or(ExePath::EMPTY),
                );
                let rules = match n {
                    16 => Rules::R16(filled::<16>()),
                    128 => Rules::R128(filled::<128>()),
                    1024 => Rules::R1024(filled::<1024>()),
                    _ => Rules::R4096(filled::<4096>()),
                };
                Prepared::Rules { rules, exe }
            }
            Scenario::PrefixLookup(hit, n) => {
                let mut table: Box<BlocklistTable> = Box::new(QualTable::new());
                fill_blocklist(&mut table, n);
                let dst = if hit { blocklist_addr(n / 2) } else { UNLISTED };
                Prepared::Prefixes {
                    table,
                    facts: QualFacts {
                        proto: PROTO_TCP,
                        dst: Some(Addr::V4(dst)),
                        dport: Some(443),
                        uid: Some(1000),
                    },
                    exe: Box::new(ExePath::new(ALLOWED_EXE).unwrap_or(ExePath::EMPTY)),
                }
            }
            Scenario::DecideCached
            | Scenario::DecideNoRule
            | Scenario::DecideRecompute
            | Scenario::DecideNewSocket
            | Scenario::DecideCachedBlocklist
            | Scenario::DecideRecomputeBlocklist => {
                let e = new_engine();
                let _ = e.flags.set(Flag::Mode, e7_core::Const::Enabled.value());
                e.edit_rules(|r| fill(r, 128));
                let blocklist = matches!(
                    self,
                    Scenario::DecideCachedBlocklist | Scenario::DecideRecomputeBlocklist
                );
                if blocklist {
                    e.edit_qualified(|t| fill_blocklist(t, 10_000));
                }
                // prog6 has an allowing tcp rule (exact, 6 % 3 == 0: tcp, 6 % 5 != 0: allow);
                // prog4 only a udp rule, so its tcp packets match no rule.
                let exe: &'static [u8] = if matches!(
                    self,
                    Scenario::DecideCached
                        | Scenario::DecideNewSocket
                        | Scenario::DecideCachedBlocklist
                        | Scenario::DecideRecomputeBlocklist
                ) {
                    ALLOWED_EXE
                } else {
                    NORULE_EXE
                };
                let host = BenchHost::with_exe(0, exe);
                let pkt = if blocklist {
                    Packet {
                        peer: Peer {
                            dst: Some(Addr::V4(UNLISTED)),
                            dport: Some(443),
                            routed: false,
                        },
                        ..packet()
                    }
                } else {
                    packet()
                };
                // Warm: identify once.
                let _ = e.decide_packet(&host, &pkt);
                Prepared::Engine {
                    engine: e,
                    recompute: matches!(
                        self,
                        Scenario::DecideRecompute | Scenario::DecideRecomputeBlocklist
                    ),
                    new_socket: self == Scenario::DecideNewSocket,
                    host,
                    pkt: Box::new(pkt),
                }
            }
            Scenario::DecidePure => Prepared::Pure,
        }
    }
}

/// The protocol of rule `i` in [`fill`]: tcp, udp, any in turn.
pub fn rule_proto(i: usize) -> u32 {
    [PROTO_TCP, PROTO_UDP, PROTO_ANY][i % 3]
}

/// The executable path a lookup scenario asks about (for a tcp packet): the newest matching rule of
/// the wanted kind, so a lookup cannot stop early by luck of insertion order.
pub fn lookup_path(kind: LookupKind, n: usize) -> String {
    let newest = |parity: usize| {
        (0..n)
            .rev()
            .find(|&i| i % 2 == parity && rule_proto(i) != PROTO_UDP)
            .unwrap_or(0)
    };
    match kind {
        LookupKind::Exact => format!("/usr/bin/prog{}", newest(0)),
        LookupKind::Folder => format!("/opt/pkg{}/bin/tool", newest(1)),
        LookupKind::Miss => "/usr/local/bin/unknown-tool".into(),
    }
}

/// Adds `n` rules: even i exact `/usr/bin/prog<i>`, odd i folder `/opt/pkg<i>/`.
#[allow(
    clippy::result_large_err,
    reason = "RuleRing::add hands a full ring's rule back by value"
)]
pub fn fill<const N: usize>(r: &mut RuleRing<N>, n: usize) {
    for i in 0..n {
        let proto = rule_proto(i);
        let action = if i % 5 == 0 {
            Action::Block
        } else {
            Action::Allow
        };
        let path = if i % 2 == 0 {
            format!("/usr/bin/prog{i}")
        } else {
            format!("/opt/pkg{i}/")
        };
        if let Ok(rule) = Rule::new(proto, path.as_bytes(), action) {
            let _ = r.add(rule);
        }
    }
}

fn filled<const N: usize>() -> Box<RuleRing<N>> {
    let mut r: Box<RuleRing<N>> = Box::new(RuleRing::new());
    fill(&mut r, N);
    r
}

/// Boxed rings of the measured sizes.
pub enum Rules {
    /// 16 rules.
    R16(Box<RuleRing<16>>),
    /// 128 rules.
    R128(Box<RuleRing<128>>),
    /// 1024 rules.
    R1024(Box<RuleRing<1024>>),
    /// 4096 rules.
    R4096(Box<RuleRing<4096>>),
}

/// The engine type of the decision scenarios: the defaults, with a qualified-rule table that holds
/// the 10,000-prefix blocklist (e7-core's [`BlocklistTable`] capacities).
pub type BenchEngine = Engine<parking_lot::RawRwLock, 1024, 128, 8, 256, 1024, 16384, 262_144>;

fn new_engine() -> Box<BenchEngine> {
    #[allow(
        clippy::declare_interior_mutable_const,
        reason = "a fresh copy per use is what is wanted"
    )]
    const FRESH: BenchEngine = Engine::new();
    Box::new(FRESH)
}

fn enabled() -> FlagValues {
    FlagValues {
        mode: Mode::Enabled,
        ..FlagValues::DEFAULT
    }
}

fn tcp() -> PacketFacts {
    PacketFacts::new(PROTO_TCP, Family::Ipv4)
}

/// The benches' socket: cache key 42, inode 4242.
#[derive(Debug, Clone, Copy)]
pub struct BenchSock {
    key: u64,
    inode: u64,
}

/// A TCP packet of [`BenchSock`] sent in task context by process 77.
fn packet() -> Packet<BenchSock> {
    Packet {
        peer: e7_core::Peer::UNKNOWN,
        sk: Some(BenchSock {
            key: 42,
            inode: 4242,
        }),
        proto: PROTO_TCP,
        uid: 1000,
        family: Family::Ipv4,
        malformed: false,
        in_task: true,
    }
}

/// A process table of `n` sockets.
pub struct FakeTable(Vec<SocketOwner>);

impl FakeTable {
    /// `n` sockets over 50 processes.
    pub fn new(n: u64) -> Self {
        FakeTable(
            (0..n)
                .map(|i| SocketOwner {
                    inode: 10_000 + i * 7,
                    tgid: (i % 50) as u32 + 1,
                })
                .collect(),
        )
    }
}

impl ProcessTable for FakeTable {
    fn for_each_socket(&mut self, f: &mut dyn FnMut(SocketOwner) -> ControlFlow<()>) {
        for o in &self.0 {
            if f(*o).is_break() {
                return;
            }
        }
    }
}

/// The executable of the decision scenarios whose tcp packets a rule allows.
pub const ALLOWED_EXE: &[u8] = b"/usr/bin/prog6";
/// The executable of the decision scenarios whose tcp packets match no rule.
pub const NORULE_EXE: &[u8] = b"/usr/bin/prog4";

/// A fake host: process 77 sends on every socket and runs one executable (default
/// [`NORULE_EXE`]); walks see a [`FakeTable`].
pub struct BenchHost(RefCell<FakeTable>, &'static [u8]);

impl BenchHost {
    /// A host whose process table has `n` sockets, running [`NORULE_EXE`].
    pub fn new(n: u64) -> Self {
        Self::with_exe(n, NORULE_EXE)
    }

    /// A host whose process table has `n` sockets and whose sender runs `exe`.
    pub fn with_exe(n: u64, exe: &'static [u8]) -> Self {
        BenchHost(RefCell::new(FakeTable::new(n)), exe)
    }
}

const SENDER: TaskId = TaskId {
    start_ns: 1,
    exec_id: 1,
    tgid: 77,
    pad: 0,
};

impl Host for BenchHost {
    type Sock<'s> = BenchSock;
    fn now_ms(&self) -> u64 {
        1
    }
    fn sock_key(&self, sk: BenchSock) -> SocketKey {
        SocketKey(sk.key)
    }
    fn sock_info(&self, sk: BenchSock) -> SockInfo {
        SockInfo {
            inode: sk.inode,
            kind: SockKind::User,
        }
    }
    fn sender_holds(&self, _sk: BenchSock) -> Option<TaskId> {
        Some(SENDER)
    }
    fn sender(&self, _sk: BenchSock) -> Option<TaskId> {
        Some(SENDER)
    }
    fn sender_exe(&self, _sk: BenchSock, out: &mut ExePath) -> Result<TaskId, ExeError> {
        out.set(self.1)
            .map(|()| SENDER)
            .map_err(|_| ExeError::NoExe(SENDER))
    }
    fn task_exe(&self, tgid: u32, out: &mut ExePath) -> Result<TaskId, ExeError> {
        let task = TaskId { tgid, ..SENDER };
        out.set(self.1)
            .map(|()| task)
            .map_err(|_| ExeError::NoExe(task))
    }
    fn for_each_socket(&self, f: &mut dyn FnMut(SocketOwner) -> ControlFlow<()>) {
        if let Ok(mut t) = self.0.try_borrow_mut() {
            t.for_each_socket(f);
        }
    }
    fn defer(&self, _s: Deferred) {}
    fn wants_events(&self) -> bool {
        true
    }
}

/// A scenario's state, ready to run its operation.
pub enum Prepared {
    /// Socket-cache scenarios.
    Sockets {
        /// The cache (1024 sockets).
        cache: Box<SocketCache>,
        /// The key looked up.
        key: SocketKey,
    },
    /// Active-cache refill.
    Active {
        /// The cache.
        cache: Box<ActiveCache>,
        /// The process table walked.
        table: FakeTable,
    },
    /// Rule lookups.
    Rules {
        /// The ring.
        rules: Rules,
        /// The executable looked up.
        exe: Box<ExePath>,
    },
    /// Whole-engine decisions.
    Engine {
        /// The engine.
        engine: Box<BenchEngine>,
        /// Bump the policy generation before each decision (forces recomputation).
        recompute: bool,
        /// Give each decision's packet a socket never seen before (a new connection).
        new_socket: bool,
        /// The host (process 77 sends).
        host: BenchHost,
        /// The packet decided.
        pkt: Box<Packet<BenchSock>>,
    },
    /// Qualified-table lookups.
    Prefixes {
        /// The table.
        table: Box<BlocklistTable>,
        /// The packet's facts.
        facts: QualFacts,
        /// The sender.
        exe: Box<ExePath>,
    },
    /// The pure decision function.
    Pure,
}

impl Prepared {
    /// Runs the scenario's operation once; the returned value only defeats dead-code elimination.
    #[inline(never)]
    pub fn op(&mut self) -> u64 {
        match self {
            Prepared::Sockets { cache, key } => match cache.lookup(black_box(*key)) {
                Some((k, v)) => {
                    u64::from(k.owner.tgid)
                        + v.get_for(5, PROTO_TCP)
                            .map_or(0, |d| u64::from(d.to_bits()))
                }
                None => 1,
            },
            Prepared::Active { cache, table } => cache
                .walk(black_box(10_000 + 999 * 7), 0, table)
                .map_or(0, u64::from),
            Prepared::Rules { rules, exe } => {
                let exe: &ExePath = black_box(exe);
                let m = match rules {
                    Rules::R16(r) => r.lookup(PROTO_TCP, exe),
                    Rules::R128(r) => r.lookup(PROTO_TCP, exe),
                    Rules::R1024(r) => r.lookup(PROTO_TCP, exe),
                    Rules::R4096(r) => r.lookup(PROTO_TCP, exe),
                };
                m.map_or(0, |m| m.position as u64 + 1)
            }
            Prepared::Prefixes { table, facts, exe } => table
                .lookup(black_box(facts), black_box(exe))
                .map_or(0, |m| m.position as u64 + 1),
            Prepared::Engine {
                engine,
                recompute,
                new_socket,
                host,
                pkt,
            } => {
                if *new_socket {
                    if let Some(sk) = pkt.sk.as_mut() {
                        sk.key = sk.key.wrapping_add(1);
                    }
                }
                if *recompute {
                    // A decision-relevant flag change invalidates every cached verdict.
                    let v = engine.flags.get(Flag::Drops);
                    let flip = if v == e7_core::Const::Enabled.value() {
                        e7_core::Const::Disabled.value()
                    } else {
                        e7_core::Const::Enabled.value()
                    };
                    let _ = engine.flags.set(Flag::Drops, flip);
                }
                let out = engine.decide_packet(&*host, black_box(&**pkt));
                (u64::from(out.decision.to_bits()) << 1) | u64::from(out.cached)
            }
            Prepared::Pure => {
                let d = decide(
                    black_box(&enabled()),
                    black_box(&tcp()),
                    black_box(&Identity::Unknown),
                    black_box(Some(Action::Allow)),
                );
                u64::from(d.to_bits())
            }
        }
    }
}
