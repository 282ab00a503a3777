//! ExePath validation/ancestors and ExeTable interning, generations, LRU eviction.

use e7_core::path::{check_rule_path, hash_bytes, strip_deleted, MAX_DEPTH};
use e7_core::{ExeId, ExePath, ExeTable, PathError};

#[test]
fn exe_path_validation() {
    assert_eq!(ExePath::new(b"").unwrap_err(), PathError::Empty);
    assert_eq!(
        ExePath::new(b"usr/bin").unwrap_err(),
        PathError::NotAbsolute
    );
    assert_eq!(
        ExePath::new(b"/a\0b").unwrap_err(),
        PathError::ContainsNul { offset: 2 }
    );
    let long = [b'a'; 256];
    let mut p = long;
    p[0] = b'/';
    assert_eq!(
        ExePath::new(&p).unwrap_err(),
        PathError::TooLong { len: 256 }
    );
    assert_eq!(ExePath::new(&p[..255]).unwrap().len(), 255);
    let ok = ExePath::new(b"/usr/bin/wget").unwrap();
    assert_eq!(ok.as_bytes(), b"/usr/bin/wget");
    assert!(!ok.is_folder());
    assert!(ExePath::new(b"/usr/bin/").unwrap().is_folder());
}

#[test]
fn error_messages_say_what_would_be_right() {
    let msg = PathError::TooLong { len: 300 }.to_string();
    assert!(msg.contains("300") && msg.contains("255"), "{msg}");
    let msg = PathError::NotAbsolute.to_string();
    assert!(msg.contains("start with /"), "{msg}");
    let msg = PathError::EmptyComponent { offset: 4 }.to_string();
    assert!(msg.contains("//") && msg.contains("offset 4"), "{msg}");
}

#[test]
fn set_keeps_old_value_on_error() {
    let mut p = ExePath::new(b"/bin/true").unwrap();
    assert!(p.set(b"relative").is_err());
    assert_eq!(p.as_bytes(), b"/bin/true");
    p.set(b"/bin/false").unwrap();
    assert_eq!(p.as_bytes(), b"/bin/false");
}

#[test]
fn deleted_suffix_is_stripped() {
    assert_eq!(strip_deleted(b"/usr/bin/x (deleted)"), b"/usr/bin/x");
    assert_eq!(strip_deleted(b"/usr/bin/x"), b"/usr/bin/x");
    assert_eq!(strip_deleted(b" (deleted)"), b" (deleted)");
    assert_eq!(
        ExePath::from_d_path(b"/opt/app (deleted)")
            .unwrap()
            .as_bytes(),
        b"/opt/app"
    );
}

#[test]
fn ancestors_deepest_first() {
    let p = ExePath::new(b"/usr/bin/wget").unwrap();
    let a: Vec<&[u8]> = p.ancestors().collect();
    assert_eq!(a, vec![&b"/usr/bin/"[..], b"/usr/", b"/"]);
    let f = ExePath::new(b"/usr/").unwrap();
    let a: Vec<&[u8]> = f.ancestors().collect();
    assert_eq!(a, vec![&b"/"[..]]);
    let root = ExePath::new(b"/").unwrap();
    assert_eq!(root.ancestors().count(), 0);
}

#[test]
fn ancestor_hashes_match_prefix_hashes() {
    let p = ExePath::new(b"/a/bb/ccc/dddd/e").unwrap();
    let mut out = [(0u8, 0u32); MAX_DEPTH];
    let n = p.ancestor_hashes(&mut out);
    let expect: Vec<(u8, u32)> = p
        .ancestors()
        .map(|a| (a.len() as u8, hash_bytes(a)))
        .collect();
    assert_eq!(&out[..n], &expect[..]);
    assert_eq!(n, 5);
}

#[test]
fn ancestor_hashes_of_deepest_possible_path() {
    // "/a/a/a/..." of 255 bytes has 127 ancestors + root.
    let mut v = Vec::new();
    while v.len() + 2 <= 255 {
        v.extend_from_slice(b"/a");
    }
    let p = ExePath::new(&v).unwrap();
    let mut out = [(0u8, 0u32); MAX_DEPTH];
    let n = p.ancestor_hashes(&mut out);
    assert_eq!(n, p.ancestors().count());
    assert!(n <= MAX_DEPTH);
}

#[test]
fn rule_path_canonical_form() {
    for ok in [&b"/"[..], b"/usr/bin/", b"/usr/bin/wget", b"/a.b/c..d/.e"] {
        assert_eq!(
            check_rule_path(ok),
            Ok(()),
            "{:?}",
            String::from_utf8_lossy(ok)
        );
    }
    for (bad, err) in [
        (&b"//"[..], PathError::EmptyComponent { offset: 0 }),
        (b"/usr//bin", PathError::EmptyComponent { offset: 4 }),
        (b"/usr/./bin", PathError::DotComponent { offset: 5 }),
        (b"/usr/../bin", PathError::DotComponent { offset: 5 }),
        (b"/usr/..", PathError::DotComponent { offset: 5 }),
        (b"/usr/.", PathError::DotComponent { offset: 5 }),
        (b"/.", PathError::DotComponent { offset: 1 }),
    ] {
        assert_eq!(
            check_rule_path(bad),
            Err(err),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    assert_eq!(check_rule_path(b"x"), Err(PathError::NotAbsolute));
}

#[test]
fn intern_stores_each_path_once() {
    let mut t: ExeTable<8> = ExeTable::new();
    let a = t.intern(b"/bin/a").unwrap();
    let b = t.intern(b"/bin/b").unwrap();
    assert_ne!(a, b);
    assert_eq!(t.intern(b"/bin/a").unwrap(), a);
    assert_eq!(t.len(), 2);
    assert_eq!(t.get(a).unwrap().as_bytes(), b"/bin/a");
    assert_eq!(t.find(b"/bin/b"), Some(b));
    assert_eq!(t.find(b"/bin/c"), None);
    assert_eq!(t.intern(b"bin/a"), Err(PathError::NotAbsolute));
}

#[test]
fn full_table_evicts_lru_and_old_ids_go_stale() {
    let mut t: ExeTable<4> = ExeTable::new();
    let ids: Vec<_> = (0..4)
        .map(|i| t.intern(format!("/p/{i}").as_bytes()).unwrap())
        .collect();
    // Use 0 again so 1 is the least recently used.
    assert_eq!(t.intern(b"/p/0").unwrap(), ids[0]);
    let new = t.intern(b"/p/new").unwrap();
    assert_eq!(t.evictions(), 1);
    assert_eq!(t.get(ids[1]), None, "evicted id must not resolve");
    assert_eq!(new.slot(), ids[1].slot(), "the LRU slot is reused");
    assert_ne!(new.gen(), ids[1].gen(), "reuse bumps the generation");
    assert_eq!(t.get(new).unwrap().as_bytes(), b"/p/new");
    assert!(t.get(ids[0]).is_some());
    assert!(!t.touch(ids[1]));
}

#[test]
fn touch_protects_from_eviction() {
    let mut t: ExeTable<2> = ExeTable::new();
    let a = t.intern(b"/a").unwrap();
    let _b = t.intern(b"/b").unwrap();
    assert!(t.touch(a)); // now /b is the least recently used
    let _c = t.intern(b"/c").unwrap();
    assert!(t.get(a).is_some());
    assert_eq!(t.find(b"/b"), None);
    // Re-interning an existing path is a use too.
    assert_eq!(t.intern(b"/a").unwrap(), a);
    let _d = t.intern(b"/d").unwrap();
    assert!(t.get(a).is_some());
    assert_eq!(t.find(b"/c"), None);
}

#[test]
fn lru_survives_clock_wrap() {
    let mut t: ExeTable<2> = ExeTable::new();
    t.set_clock(u32::MAX - 1);
    let old = t.intern(b"/old").unwrap(); // stamp u32::MAX
    let young = t.intern(b"/young").unwrap(); // stamp 0 (wrapped)
    let _ = t.intern(b"/third").unwrap(); // must evict /old, not /young
    assert_eq!(t.get(old), None);
    assert!(t.get(young).is_some());
}

#[test]
fn generation_never_zero_and_stale_ids_never_resolve_over_wrap() {
    let mut t: ExeTable<1> = ExeTable::new();
    let first = t.intern(b"/x").unwrap();
    let mut last = first;
    for i in 0..70_000u32 {
        let p = if i % 2 == 0 { &b"/y"[..] } else { b"/x" };
        let id = t.intern(p).unwrap();
        assert_ne!(id.gen(), 0);
        assert_eq!(t.get(last), None);
        last = id;
    }
    assert!(e7_core::ExeId::from_u64(last.to_u64()) == Some(last));
    assert_eq!(e7_core::ExeId::from_u64(5), None);
}

/// Issue 7 hole 9: with 16-bit generations, an id kept while its slot was reused 65,535 times named
/// another path (on the kernel module: a blocked program's cached id resolved to an allowed one).
/// Every id ever issued must resolve to its own path or to nothing.
#[test]
fn an_old_id_never_names_another_path_after_many_slot_reuses() {
    // Seven paths through four slots: every intern evicts (LRU), each slot is reused every 4
    // interns and gets the path 4 places further in the cycle. After 65,535 reuses (where a u16
    // generation came back) a slot holds another path than at the start (65,535 × 4 mod 7 = 4).
    const PATHS: [&[u8]; 7] = [
        b"/usr/bin/a",
        b"/usr/bin/b",
        b"/usr/bin/c",
        b"/usr/bin/d",
        b"/usr/bin/e",
        b"/usr/bin/f",
        b"/usr/bin/g",
    ];
    let mut t: ExeTable<4> = ExeTable::new();
    // One id per slot, from the first round (the ones a long-lived socket would hold).
    let mut kept = Vec::new();
    for (i, p) in PATHS.iter().enumerate().take(4) {
        kept.push((t.intern(p).unwrap(), i));
    }
    for round in 0..40_000usize {
        for (i, p) in PATHS.iter().enumerate() {
            let id = t.intern(p).unwrap();
            assert_eq!(t.get(id).map(|x| x.as_bytes()), Some(*p));
            if round % 1024 == 0 && i == 0 {
                kept.push((id, i));
            }
        }
        for &(id, i) in &kept {
            if let Some(got) = t.get(id) {
                assert_eq!(
                    got.as_bytes(),
                    PATHS[i],
                    "round {round}: an id issued for {:?} names another path (generation {})",
                    String::from_utf8_lossy(PATHS[i]),
                    id.gen()
                );
            }
        }
    }
    assert!(kept.iter().any(|(id, _)| id.gen() > u64::from(u16::MAX)));
}

/// A slot at its last generation is retired: never reused, so no id can come back.
#[test]
fn a_slot_at_its_last_generation_is_retired() {
    use e7_core::exe::MAX_GENERATION;
    let mut t: ExeTable<2> = ExeTable::new();
    t.set_free_slot_generation(0, MAX_GENERATION - 1);
    let a = t.intern(b"/a").unwrap();
    assert_eq!((a.slot(), a.gen()), (0, MAX_GENERATION));
    let b = t.intern(b"/b").unwrap();
    assert_eq!(b.slot(), 1);
    // Full: the LRU victim would be slot 0 (/a), but it is at its last generation: slot 1 goes.
    let c = t.intern(b"/c").unwrap();
    assert_eq!(c.slot(), 1);
    assert_eq!(t.get(a).map(|p| p.as_bytes()), Some(&b"/a"[..]));
    assert_eq!(t.get(b), None);
    // Removed, slot 0 stays free forever.
    assert!(t.remove(a));
    let d = t.intern(b"/d").unwrap();
    assert_eq!(d.slot(), 1);
    assert_eq!(t.get(a), None);
    assert_eq!(ExeId::from_u64(a.to_u64()), Some(a));
}

#[test]
fn remove_and_clear_make_ids_stale() {
    let mut t: ExeTable<4> = ExeTable::new();
    let a = t.intern(b"/a").unwrap();
    let b = t.intern(b"/b").unwrap();
    assert!(t.remove(a));
    assert!(!t.remove(a));
    assert_eq!(t.get(a), None);
    assert_eq!(t.find(b"/a"), None);
    assert_eq!(t.find(b"/b"), Some(b));
    t.clear();
    assert!(t.is_empty());
    assert_eq!(t.get(b), None);
    let b2 = t.intern(b"/b").unwrap();
    assert_ne!(
        b2, b,
        "an id from before clear() must never alias a new entry"
    );
}

#[test]
fn many_colliding_chains_stay_consistent() {
    let mut t: ExeTable<16> = ExeTable::new();
    let mut live = std::collections::HashMap::new();
    for i in 0..500u32 {
        let p = format!("/c/{}", i % 40);
        let id = t.intern(p.as_bytes()).unwrap();
        live.insert(p, id);
        for (p, id) in &live {
            if let Some(got) = t.get(*id) {
                assert_eq!(got.as_bytes(), p.as_bytes());
                assert_eq!(t.find(p.as_bytes()), Some(*id));
            }
        }
        assert!(t.len() <= 16);
    }
}
