//! Known-socket cache and active-socket cache behaviour.

use std::ops::ControlFlow;

use e7_core::{
    ActiveCache, ActiveLookup, CachedVerdict, Decision, EventKind, ExeTable, Identity, KnownSocket,
    ProcessTable, Reason, SocketCache, SocketKey, SocketOwner, TaskId, Verdict,
};

fn known(tgid: u32) -> KnownSocket {
    let mut t: ExeTable<4> = ExeTable::new();
    KnownSocket {
        inode: u64::from(tgid) * 10,
        owner: TaskId::tgid_only(tgid),
        uid: 1000,
        exe: Identity::Exe(t.intern(b"/bin/x").unwrap()),
    }
}

const ACCEPT: Decision = Decision {
    verdict: Verdict::Accept,
    event: None,
    squelch: false,
    reason: Reason::Rule,
};

#[test]
fn insert_lookup_forget() {
    let mut c: SocketCache<4, 2> = SocketCache::new();
    assert!(c.lookup(SocketKey(7)).is_none());
    assert_eq!(c.insert(SocketKey(7), known(1)), None);
    let (k, v) = c.lookup(SocketKey(7)).unwrap();
    assert_eq!(k, known(1));
    assert_eq!(v, CachedVerdict::EMPTY);
    assert_eq!(v.get(0), None, "no verdict cached yet");
    assert_eq!(c.len(), 1);
    assert!(c.forget(SocketKey(7)));
    assert!(!c.forget(SocketKey(7)));
    assert!(c.lookup(SocketKey(7)).is_none());
    assert!(c.is_empty());
}

#[test]
fn key_zero_is_a_valid_key() {
    let mut c: SocketCache<4, 2> = SocketCache::new();
    assert!(c.lookup(SocketKey(0)).is_none());
    c.insert(SocketKey(0), known(3));
    assert_eq!(c.lookup(SocketKey(0)).unwrap().0.owner.tgid, 3);
}

#[test]
fn verdict_is_tagged_with_generation() {
    let mut c: SocketCache = SocketCache::new();
    c.insert(SocketKey(1), known(1));
    assert!(c.store_verdict(SocketKey(1), CachedVerdict::new(ACCEPT, 41)));
    let (_, v) = c.lookup(SocketKey(1)).unwrap();
    assert_eq!(v.get(41), Some(ACCEPT));
    assert_eq!(
        v.get(42),
        None,
        "a policy change invalidates the cached verdict"
    );
    assert_eq!(v.raw(), Some((ACCEPT, 41)));
    assert!(!c.store_verdict(SocketKey(2), CachedVerdict::new(ACCEPT, 41)));
    // Re-inserting resets the verdict (the identity may have changed).
    c.insert(SocketKey(1), known(2));
    assert_eq!(c.lookup(SocketKey(1)).unwrap().1.get(41), None);
}

#[test]
fn every_decision_round_trips_through_the_cache_bits() {
    use e7_core::Reason::*;
    for verdict in [Verdict::Accept, Verdict::Drop] {
        for event in [
            None,
            Some(EventKind::Pending),
            Some(EventKind::Allow),
            Some(EventKind::Block),
        ] {
            for squelch in [false, true] {
                for reason in [
                    Disabled,
                    BlockMode,
                    Malformed,
                    UnknownProtocol,
                    UnknownProcess,
                    PathTooLong,
                    Rule,
                    NoRule,
                ] {
                    let d = Decision {
                        verdict,
                        event,
                        squelch,
                        reason,
                    };
                    assert_eq!(Decision::from_bits(d.to_bits()), Some(d));
                    for gen in [0, 1, u32::MAX] {
                        assert_eq!(CachedVerdict::new(d, gen).get(gen), Some(d));
                    }
                }
            }
        }
    }
}

#[test]
fn lru_eviction_inside_a_set() {
    // One set of 3 ways: pure LRU over the set.
    let mut c: SocketCache<1, 3> = SocketCache::new();
    c.insert(SocketKey(1), known(1));
    c.insert(SocketKey(2), known(2));
    c.insert(SocketKey(3), known(3));
    assert!(c.lookup(SocketKey(1)).is_some()); // 2 is now the LRU
    assert_eq!(c.insert(SocketKey(4), known(4)), Some(SocketKey(2)));
    assert!(c.lookup(SocketKey(2)).is_none());
    assert!(c.lookup(SocketKey(1)).is_some());
    assert_eq!(c.evictions(), 1);
    assert_eq!(c.len(), 3);
    // peek does not refresh: 3 stays the LRU.
    assert!(c.peek(SocketKey(3)).is_some());
    assert_eq!(c.insert(SocketKey(5), known(5)), Some(SocketKey(3)));
}

#[test]
fn lru_is_correct_across_clock_wraparound() {
    for start in [u32::MAX - 3, u32::MAX - 2, u32::MAX - 1, u32::MAX, 0] {
        let mut c: SocketCache<1, 3> = SocketCache::with_clock(start);
        c.insert(SocketKey(1), known(1));
        c.insert(SocketKey(2), known(2));
        c.insert(SocketKey(3), known(3));
        // Refresh 1 and 3 after more inserts elsewhere would wrap the clock.
        assert!(c.lookup(SocketKey(1)).is_some());
        assert_eq!(
            c.insert(SocketKey(4), known(4)),
            Some(SocketKey(2)),
            "start {start}"
        );
        assert!(c.lookup(SocketKey(3)).is_some());
        assert_eq!(
            c.insert(SocketKey(5), known(5)),
            Some(SocketKey(1)),
            "start {start}"
        );
    }
}

#[test]
fn sets_are_independent() {
    let mut c: SocketCache<64, 2> = SocketCache::new();
    for k in 0..128u64 {
        c.insert(SocketKey(k), known(k as u32));
    }
    let present = (0..128u64)
        .filter(|&k| c.peek(SocketKey(k)).is_some())
        .count();
    assert_eq!(present, c.len());
    assert!(c.len() <= 128);
    // Sequential keys spread: far more than 2 sets are used.
    assert!(c.len() > 64, "only {} of 128 sequential keys kept", c.len());
}

#[test]
fn forget_tgid_and_clear() {
    let mut c: SocketCache<8, 4> = SocketCache::new();
    for k in 0..10u64 {
        c.insert(SocketKey(k), known(if k % 2 == 0 { 100 } else { 200 }));
    }
    assert_eq!(c.forget_tgid(100), 5);
    assert_eq!(c.len(), 5);
    assert!(c.iter().all(|(_, v)| v.owner.tgid == 200));
    c.clear();
    assert!(c.is_empty());
    assert_eq!(c.iter().count(), 0);
    assert!(c.lookup(SocketKey(1)).is_none());
}

#[test]
fn lookup_under_shared_reference_from_many_threads() {
    let mut c: SocketCache = SocketCache::new();
    for k in 0..512u64 {
        c.insert(SocketKey(k), known(k as u32));
    }
    let c = &c;
    std::thread::scope(|s| {
        for t in 0..4u32 {
            s.spawn(move || {
                for k in 0..512u64 {
                    if let Some((v, _)) = c.lookup(SocketKey(k)) {
                        assert_eq!(u64::from(v.owner.tgid), k);
                    }
                    c.store_verdict(SocketKey(k), CachedVerdict::new(ACCEPT, t));
                }
            });
        }
    });
    let (_, v) = c.lookup(SocketKey(3)).unwrap();
    assert!(v.raw().is_some_and(|(d, g)| d == ACCEPT && g < 4));
}

/// A fake process table that counts walks.
struct FakeTable {
    owners: Vec<SocketOwner>,
    walks: usize,
}

impl ProcessTable for FakeTable {
    fn for_each_socket(&mut self, f: &mut dyn FnMut(SocketOwner) -> ControlFlow<()>) {
        self.walks += 1;
        for o in &self.owners {
            if f(*o).is_break() {
                return;
            }
        }
    }
}

fn table(pairs: &[(u64, u32)]) -> FakeTable {
    FakeTable {
        owners: pairs
            .iter()
            .map(|&(inode, tgid)| SocketOwner { inode, tgid })
            .collect(),
        walks: 0,
    }
}

#[test]
fn active_walk_records_all_sockets() {
    let mut a: ActiveCache<64> = ActiveCache::with_limits(100, 1000);
    let mut t = table(&[(10, 1), (11, 1), (20, 2)]);
    assert_eq!(a.find(11, 0, &mut t), ActiveLookup::Owner(1));
    assert_eq!(t.walks, 1);
    // The storm case: other unknown inodes are answered from the same walk.
    assert_eq!(a.find(20, 1, &mut t), ActiveLookup::Owner(2));
    assert_eq!(a.find(10, 2, &mut t), ActiveLookup::Owner(1));
    assert_eq!(t.walks, 1);
    assert_eq!(a.len(), 3);
}

#[test]
fn active_negative_cache_and_rate_limit() {
    let mut a: ActiveCache<64> = ActiveCache::with_limits(100, 1000);
    let mut t = table(&[(10, 1)]);
    assert_eq!(a.find(99, 0, &mut t), ActiveLookup::NotFound);
    assert_eq!(t.walks, 1);
    // Known-negative: no walk, even after the interval.
    assert_eq!(a.find(99, 500, &mut t), ActiveLookup::NotFound);
    assert_eq!(t.walks, 1);
    // Another unknown inode inside the interval: rate limited, no walk.
    assert_eq!(a.find(77, 50, &mut t), ActiveLookup::RateLimited);
    assert_eq!(t.walks, 1);
    // After the interval it walks; a process now owns 77.
    t.owners.push(SocketOwner { inode: 77, tgid: 7 });
    assert_eq!(a.find(77, 150, &mut t), ActiveLookup::Owner(7));
    assert_eq!(t.walks, 2);
    // Negative entries expire after their TTL (and a walk resets them).
    t.owners.push(SocketOwner { inode: 99, tgid: 9 });
    assert_eq!(a.find(99, 2000, &mut t), ActiveLookup::Owner(9));
    assert_eq!(t.walks, 3);
}

#[test]
fn active_storm_of_unknown_inodes_costs_one_walk_per_interval() {
    let mut a: ActiveCache<64> = ActiveCache::with_limits(50, 1000);
    let mut t = table(&[(1, 1)]);
    for i in 0..10_000u64 {
        let _ = a.find(1_000_000 + i, i / 10, &mut t); // 10 lookups per ms for 1000 ms
    }
    assert!(t.walks <= 21, "{} walks", t.walks);
}

#[test]
fn active_overflow_counts_dropped_but_reports_target() {
    let mut a: ActiveCache<8> = ActiveCache::with_limits(0, 0);
    let pairs: Vec<(u64, u32)> = (1..=20).map(|i| (i, i as u32 + 100)).collect();
    let mut t = table(&pairs);
    assert_eq!(a.find(20, 0, &mut t), ActiveLookup::Owner(120));
    assert_eq!(a.len(), 8);
    assert_eq!(a.dropped(), 12);
    for i in 1..=20u64 {
        if let Some(tgid) = a.get(i) {
            assert_eq!(tgid, i as u32 + 100);
        }
    }
}

#[test]
fn active_inode_zero_is_never_looked_up() {
    let mut a: ActiveCache<8> = ActiveCache::new();
    let mut t = table(&[(0, 5)]);
    assert_eq!(a.find(0, 0, &mut t), ActiveLookup::NotFound);
    assert_eq!(t.walks, 0);
}

#[test]
fn active_first_owner_wins_and_clear_resets() {
    let mut a: ActiveCache<8> = ActiveCache::with_limits(1000, 1000);
    let mut t = table(&[(5, 1), (5, 2)]);
    assert_eq!(a.find(5, 0, &mut t), ActiveLookup::Owner(1));
    a.clear();
    assert!(a.is_empty());
    // After clear the rate limit is reset too.
    assert_eq!(a.find(6, 1, &mut t), ActiveLookup::NotFound);
    assert_eq!(t.walks, 2);
}

#[cfg(feature = "std")]
#[test]
fn procfs_table_finds_a_socket_of_this_process() {
    use std::os::unix::fs::MetadataExt;
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let _ = &sock;
    // The inode of our socket: stat /proc/self/fd/<fd>.
    use std::os::fd::AsRawFd;
    let ino = std::fs::metadata(format!("/proc/self/fd/{}", sock.as_raw_fd()))
        .unwrap()
        .ino();
    let mut a: ActiveCache = ActiveCache::new();
    let mut t = e7_core::ProcFsTable::new();
    assert_eq!(
        a.find(ino, 0, &mut t),
        ActiveLookup::Owner(std::process::id())
    );
}

#[test]
fn verdict_can_be_bound_to_a_protocol() {
    let v = CachedVerdict::for_proto(ACCEPT, 7, 17);
    assert_eq!(v.get_for(7, 17), Some(ACCEPT));
    assert_eq!(
        v.get_for(7, 6),
        None,
        "a verdict for udp is not one for tcp"
    );
    assert_eq!(v.get_for(8, 17), None);
    assert_eq!(v.get_for(7, 17 + 256), None);
    assert_eq!(v.get(7), Some(ACCEPT));
    let any = CachedVerdict::new(ACCEPT, 7);
    assert_eq!(any.get_for(7, 6), Some(ACCEPT));
    assert_eq!(CachedVerdict::EMPTY.get_for(0, 0), None);
}

#[test]
fn one_users_churn_evicts_only_its_own_entries() {
    // Issue 7, hole #1: an unprivileged user churning sockets must not evict another user's live
    // sockets (their next softirq packet could not be identified at once).
    let mut c: SocketCache<1, 8> = SocketCache::new();
    let live = |k: u64| KnownSocket {
        uid: 1000,
        ..known(k as u32)
    };
    for k in 0..3u64 {
        c.insert(SocketKey(k), live(k));
    }
    for k in 100..10_000u64 {
        let churn = KnownSocket {
            uid: 65534,
            ..known(k as u32)
        };
        let evicted = c.insert(SocketKey(k), churn);
        assert!(
            evicted.is_none_or(|e| e.0 >= 100),
            "the churner evicted a live socket of another user: {evicted:?}"
        );
    }
    for k in 0..3u64 {
        assert!(
            c.peek(SocketKey(k)).is_some(),
            "socket {k} survived the churn"
        );
    }
    // A user holding more than half of the set pays for its own inserts first, then shares.
    let mut c: SocketCache<1, 4> = SocketCache::new();
    for k in 0..4u64 {
        c.insert(SocketKey(k), live(k));
    }
    let evicted = c.insert(
        SocketKey(50),
        KnownSocket {
            uid: 7,
            ..known(50)
        },
    );
    assert_eq!(
        evicted,
        Some(SocketKey(0)),
        "the heaviest uid's LRU entry goes"
    );
    let evicted = c.insert(
        SocketKey(51),
        KnownSocket {
            uid: 7,
            ..known(51)
        },
    );
    assert_eq!(
        evicted,
        Some(SocketKey(1)),
        "uid 1000 still holds the most entries"
    );
    let evicted = c.insert(
        SocketKey(52),
        KnownSocket {
            uid: 7,
            ..known(52)
        },
    );
    assert_eq!(
        evicted,
        Some(SocketKey(50)),
        "a tie: the inserting uid evicts its own"
    );
}

#[test]
fn default_collect_resumes_by_ordinal_and_ends() {
    let pairs: Vec<(u64, u32)> = (1..=150).map(|i| (i, i as u32)).collect();
    let mut t = table(&pairs);
    let mut buf = [SocketOwner::default(); 64];
    let mut from = e7_core::WalkCursor::START;
    let mut got = Vec::new();
    loop {
        let c = t.collect(from, &mut buf);
        got.extend_from_slice(&buf[..c.len]);
        match c.end {
            e7_core::ChunkEnd::More(next) => from = next,
            e7_core::ChunkEnd::Done => break,
            e7_core::ChunkEnd::Refused => panic!("refused"),
        }
    }
    assert_eq!(got.len(), 150);
    assert!(got.iter().zip(1..).all(|(o, i)| o.inode == i));
}

#[test]
fn active_slices_resume_and_only_a_fresh_complete_cycle_is_authoritative() {
    let mut a: ActiveCache<64> = ActiveCache::with_limits(10, 1000);
    let s = a.begin_slice(0).unwrap();
    assert!(s.fresh && s.from == e7_core::WalkCursor::START);
    assert_eq!(a.begin_slice(0), None, "one slice at a time");
    a.merge(&[SocketOwner { inode: 5, tgid: 1 }]);
    a.end_slice(1, e7_core::SliceEnd::Paused(e7_core::WalkCursor(7)));
    assert!(a.in_cycle());
    assert_eq!(
        a.begin_slice(5),
        None,
        "interval from the end of the last slice"
    );
    let s = a.begin_slice(11).unwrap();
    assert!(!s.fresh, "a resumed cycle");
    assert_eq!(s.from, e7_core::WalkCursor(7));
    assert_eq!(a.get(5), Some(1), "a resumed cycle keeps what it merged");
    a.end_slice(12, e7_core::SliceEnd::Complete);
    assert!(!a.in_cycle());
    assert_eq!(a.walk_stats().cycles, 1);
    assert_eq!(a.walk_stats().max_merge, 1);
    let s = a.begin_slice(30).unwrap();
    assert!(s.fresh);
    assert_eq!(a.get(5), None, "a fresh cycle starts from an empty table");
    a.end_slice(30, e7_core::SliceEnd::Refused);
    assert!(a.in_cycle(), "refused: the cycle stays where it was");
}

#[cfg(feature = "std")]
#[test]
fn procfs_collect_in_small_chunks_sees_every_socket_of_this_process() {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    let socks: Vec<_> = (0..10)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    let mut want: Vec<u64> = socks
        .iter()
        .map(|s| {
            std::fs::metadata(format!("/proc/self/fd/{}", s.as_raw_fd()))
                .unwrap()
                .ino()
        })
        .collect();
    want.sort_unstable();
    let me = std::process::id();
    let mut t = e7_core::ProcFsTable::new();
    let mut buf = [SocketOwner::default(); 3];
    let mut from = e7_core::WalkCursor::START;
    let mut got = Vec::new();
    for _ in 0..100_000 {
        let c = t.collect(from, &mut buf);
        got.extend(
            buf[..c.len]
                .iter()
                .filter(|o| o.tgid == me)
                .map(|o| o.inode),
        );
        match c.end {
            e7_core::ChunkEnd::More(next) => from = next,
            _ => break,
        }
    }
    got.sort_unstable();
    got.dedup();
    for ino in &want {
        assert!(got.contains(ino), "socket inode {ino} not collected");
    }
}
