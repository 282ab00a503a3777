//! The known-socket cache's lock-free read against concurrent writers: a reader gets a whole entry
//! as some writer left it, or nothing — never the key of one socket with the owner, identity or
//! verdict of another, or of another version of the same socket (issue 10: a lock-free read must
//! never return a verdict for another socket or a stale policy generation).
//!
//! Writers rewrite entries of a small cache (2 sets × 4 ways, 16 keys: constant evictions) with
//! values derived from (key, version); readers check every hit is one consistent version.
#![cfg(feature = "std")]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use e7_core::{
    CachedVerdict, Decision, ExeId, ExeTable, Identity, KnownSocket, Reason, SharedSockets,
    SocketKey, TaskId, Verdict,
};

type Cache = SharedSockets<parking_lot::RawRwLock, 2, 4>;

const KEYS: u64 = 16;

fn decision(v: u64) -> Decision {
    Decision {
        verdict: if v.is_multiple_of(2) {
            Verdict::Accept
        } else {
            Verdict::Drop
        },
        event: None,
        squelch: false,
        reason: Reason::Rule,
    }
}

fn ident(ids: &[ExeId], key: u64, v: u64) -> Identity {
    match (key + v) % 5 {
        0 => Identity::PathTooLong,
        1 => Identity::NoHostPath,
        2 => Identity::Unknown,
        n => Identity::Exe(ids[(n as usize + v as usize) % ids.len()]),
    }
}

/// Every field a function of (key, version): a mixed entry cannot pass [`check`].
fn entry(ids: &[ExeId], key: u64, v: u64) -> KnownSocket {
    KnownSocket {
        inode: (key << 40) | v,
        owner: TaskId {
            start_ns: key.wrapping_mul(0x9E37_79B9) ^ v,
            exec_id: v,
            tgid: key as u32,
            pad: 0,
        },
        uid: (key as u32).wrapping_mul(7).wrapping_add(v as u32),
        exe: ident(ids, key, v),
    }
}

fn verdict(key: u64, v: u64) -> CachedVerdict {
    CachedVerdict::for_proto(decision(v), ((key << 24) | v) as u32, (key % 200) as u32)
}

fn check(ids: &[ExeId], key: u64, got: &KnownSocket, cv: CachedVerdict) -> Result<(), String> {
    let v = got.owner.exec_id;
    let want = entry(ids, key, v);
    if *got != want {
        return Err(format!(
            "key {key}: mixed entry {got:?}, version {v} is {want:?}"
        ));
    }
    // Either no verdict yet (just inserted) or the one stored for this very version.
    if cv != CachedVerdict::EMPTY && cv != verdict(key, v) {
        return Err(format!(
            "key {key} version {v}: verdict {:?} of another version or socket",
            cv.raw()
        ));
    }
    Ok(())
}

#[test]
fn lock_free_readers_never_see_a_torn_or_mixed_entry() {
    let mut table: ExeTable<8> = ExeTable::new();
    let ids: Arc<Vec<ExeId>> = Arc::new(
        ["/bin/a", "/usr/bin/bb", "/opt/c/c", "/sbin/dddd"]
            .iter()
            .map(|p| table.intern(p.as_bytes()).unwrap())
            .collect(),
    );
    let cache: Arc<Cache> = Arc::new(Cache::new());
    let stop = Arc::new(AtomicBool::new(false));
    let version = Arc::new(AtomicU64::new(1));
    let writes = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();

    // Writers: insert (evicting), store the version's verdict, forget, now and then clear.
    for w in 0..2u64 {
        let (cache, stop, version, writes, ids) = (
            cache.clone(),
            stop.clone(),
            version.clone(),
            writes.clone(),
            ids.clone(),
        );
        handles.push(thread::spawn(move || {
            let mut i = w;
            while !stop.load(Relaxed) {
                i = i
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let key = 1 + (i >> 33) % KEYS;
                let v = version.fetch_add(1, Relaxed);
                let mut wr = cache.write();
                match (i >> 20) % 16 {
                    0 => {
                        wr.forget(SocketKey(key));
                    }
                    1 if (i >> 40).is_multiple_of(64) => wr.clear(),
                    _ => {
                        wr.insert(SocketKey(key), entry(&ids, key, v));
                        if (i >> 24).is_multiple_of(2) {
                            wr.store_verdict(SocketKey(key), verdict(key, v));
                        }
                    }
                }
                drop(wr);
                writes.fetch_add(1, Relaxed);
            }
        }));
    }
    // A verdict writer under the shared lock, as the engine's recompute path does.
    {
        let (cache, stop) = (cache.clone(), stop.clone());
        handles.push(thread::spawn(move || {
            let mut key = 1;
            while !stop.load(Relaxed) {
                key = 1 + key % KEYS;
                let rd = cache.read();
                if let Some((k, _)) = rd.peek(SocketKey(key)) {
                    rd.store_verdict(SocketKey(key), verdict(key, k.owner.exec_id));
                }
            }
        }));
    }
    // Readers: lock-free lookups, every hit checked.
    let hits = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for r in 0..2u64 {
        let (cache, stop, hits, ids) = (cache.clone(), stop.clone(), hits.clone(), ids.clone());
        readers.push(thread::spawn(move || -> Result<(), String> {
            let mut key = r;
            while !stop.load(Relaxed) {
                key = 1 + (key * 7 + 3) % KEYS;
                if let Some((got, cv)) = cache.lookup(SocketKey(key)) {
                    check(&ids, key, &got, cv)?;
                    hits.fetch_add(1, Relaxed);
                }
            }
            Ok(())
        }));
    }
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(1500) && writes.load(Relaxed) < 400_000 {
        thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    for r in readers {
        r.join().unwrap().unwrap();
    }
    let (h, w) = (hits.load(Relaxed), writes.load(Relaxed));
    assert!(
        h > 1000 && w > 1000,
        "too little overlap to mean anything: {h} hits, {w} writes"
    );
}

#[test]
fn a_lookup_after_a_write_sees_it() {
    // Sequential sanity of the lock-free read: every insert, verdict store and forget is seen by
    // the next lookup (no stale copy survives a completed write).
    let mut table: ExeTable<8> = ExeTable::new();
    let ids = vec![table.intern(b"/bin/a").unwrap()];
    let c = Cache::new();
    for v in 1..2000u64 {
        let key = 1 + v % KEYS;
        c.write().insert(SocketKey(key), entry(&ids, key, v));
        assert_eq!(
            c.lookup(SocketKey(key)),
            Some((entry(&ids, key, v), CachedVerdict::EMPTY))
        );
        c.read().store_verdict(SocketKey(key), verdict(key, v));
        assert_eq!(
            c.lookup(SocketKey(key)),
            Some((entry(&ids, key, v), verdict(key, v)))
        );
        if v.is_multiple_of(3) {
            assert!(c.write().forget(SocketKey(key)));
            assert_eq!(c.lookup(SocketKey(key)), None);
        }
    }
}
