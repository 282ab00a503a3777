//! Model-based property tests: each structure against a simple std model (Vec/HashMap) over random
//! operation sequences, with clocks and generations starting near `u32::MAX` so they wrap.
#![allow(
    clippy::result_large_err,
    reason = "RuleRing::add hands a full ring's rule back by value (heapless style)"
)]

use std::collections::HashMap;
use std::ops::ControlFlow;

use e7_core::{
    Action, ActiveCache, ActiveLookup, AddOutcome, ExeId, ExePath, ExeTable, Identity, KnownSocket,
    ProcessTable, Rule, RuleRing, SocketCache, SocketKey, SocketOwner, Squelch, PROTO_ANY,
    PROTO_TCP, PROTO_UDP,
};
use proptest::prelude::*;

const PATHS: &[&str] = &[
    "/",
    "/usr/",
    "/usr/bin/",
    "/usr/bin/wget",
    "/usr/bin/curl",
    "/usr/bin/x/",
    "/usr/bin/x/y",
    "/usr/binx",
    "/opt/a",
    "/opt/a/",
    "/opt/a/b",
];
const PROTOS: &[u32] = &[PROTO_TCP, PROTO_UDP, PROTO_ANY];

#[derive(Debug, Clone)]
enum RuleOp {
    Add(usize, usize, bool),
    Remove(usize, usize),
    Clear,
    ClearAction(bool),
    Lookup(usize, usize),
}

fn rule_op() -> impl Strategy<Value = RuleOp> {
    prop_oneof![
        4 => (0..PATHS.len(), 0..PROTOS.len(), any::<bool>()).prop_map(|(p, q, a)| RuleOp::Add(p, q, a)),
        2 => (0..PATHS.len(), 0..PROTOS.len()).prop_map(|(p, q)| RuleOp::Remove(p, q)),
        1 => Just(RuleOp::Clear),
        1 => any::<bool>().prop_map(RuleOp::ClearAction),
        4 => (0..PATHS.len(), 0..2usize).prop_map(|(p, q)| RuleOp::Lookup(p, q)),
    ]
}

fn act(a: bool) -> Action {
    if a {
        Action::Allow
    } else {
        Action::Block
    }
}

/// The precedence rules read literally: exact > folder, deeper > shallower, specific > any.
fn model_lookup(model: &[(u32, &str, Action)], proto: u32, exe: &str) -> Option<(usize, Action)> {
    model
        .iter()
        .enumerate()
        .filter(|(_, (p, path, _))| {
            let path_ok = if path.ends_with('/') {
                exe.len() > path.len() && exe.starts_with(path)
            } else {
                exe == *path
            };
            path_ok && (*p == PROTO_ANY || *p == proto)
        })
        .max_by_key(|(_, (p, path, _))| (!path.ends_with('/'), path.len(), *p != PROTO_ANY))
        .map(|(i, (_, _, a))| (i, *a))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn rule_ring_matches_vec_model(ops in proptest::collection::vec(rule_op(), 1..80), gen0 in prop_oneof![Just(u32::MAX - 5), any::<u32>()]) {
        let mut ring: RuleRing<8> = RuleRing::new();
        ring.set_generation(gen0);
        let mut model: Vec<(u32, &str, Action)> = Vec::new();
        let mut expected_gen = gen0;
        for op in ops {
            match op {
                RuleOp::Add(p, q, a) => {
                    let (proto, path, action) = (PROTOS[q], PATHS[p], act(a));
                    let got = ring.add(Rule::new(proto, path.as_bytes(), action).unwrap());
                    let full = model.len() == 8;
                    match model.iter_mut().find(|(mp, mpath, _)| *mp == proto && *mpath == path) {
                        Some(m) if m.2 == action => prop_assert_eq!(got, Ok(AddOutcome::Unchanged)),
                        Some(m) => {
                            m.2 = action;
                            expected_gen = expected_gen.wrapping_add(1);
                            prop_assert_eq!(got, Ok(AddOutcome::Flipped));
                        }
                        None if full => prop_assert!(got.is_err()),
                        None => {
                            model.push((proto, path, action));
                            expected_gen = expected_gen.wrapping_add(1);
                            prop_assert_eq!(got, Ok(AddOutcome::Added));
                        }
                    }
                }
                RuleOp::Remove(p, q) => {
                    let (proto, path) = (PROTOS[q], PATHS[p]);
                    let pos = model.iter().position(|(mp, mpath, _)| *mp == proto && *mpath == path);
                    if let Some(i) = pos {
                        model.remove(i);
                        expected_gen = expected_gen.wrapping_add(1);
                    }
                    prop_assert_eq!(ring.remove(proto, path.as_bytes()), pos.is_some());
                }
                RuleOp::Clear => {
                    if !model.is_empty() {
                        expected_gen = expected_gen.wrapping_add(1);
                    }
                    prop_assert_eq!(ring.clear(), model.len());
                    model.clear();
                }
                RuleOp::ClearAction(a) => {
                    let before = model.len();
                    model.retain(|m| m.2 != act(a));
                    if model.len() != before {
                        expected_gen = expected_gen.wrapping_add(1);
                    }
                    prop_assert_eq!(ring.clear_action(act(a)), before - model.len());
                }
                RuleOp::Lookup(p, q) => {
                    let exe = PATHS[p];
                    let got = ring
                        .lookup(PROTOS[q], &ExePath::new(exe.as_bytes()).unwrap())
                        .map(|m| (m.position, m.action));
                    prop_assert_eq!(got, model_lookup(&model, PROTOS[q], exe), "lookup {} {}", PROTOS[q], exe);
                }
            }
            prop_assert_eq!(ring.generation(), expected_gen);
            let listed: Vec<(u32, String, Action)> =
                ring.iter().map(|r| (r.proto(), r.path().to_string(), r.action())).collect();
            let want: Vec<(u32, String, Action)> =
                model.iter().map(|(p, s, a)| (*p, s.to_string(), *a)).collect();
            prop_assert_eq!(listed, want);
        }
    }

    #[test]
    fn socket_cache_matches_lru_model(
        ops in proptest::collection::vec((0u8..3, 0u64..24, any::<u8>()), 1..200),
        clock0 in prop_oneof![Just(u32::MAX - 10), Just(u32::MAX), any::<u32>()],
    ) {
        // 2 sets x 3 ways; the model is a HashMap key -> (tgid, last use), plus the set function.
        let mut c: SocketCache<2, 3> = SocketCache::with_clock(clock0);
        let mut model: HashMap<u64, (u32, u32)> = HashMap::new();
        for (kind, key, val) in ops {
            let k = SocketKey(key);
            match kind {
                0 => {
                    let evicted = c.insert(k, KnownSocket { inode: key, owner: e7_core::TaskId::tgid_only(u32::from(val)), uid: 0, exe: Identity::Unknown });
                    let now = c.clock_of(k);
                    if let Some(ev) = evicted {
                        prop_assert!(!model.contains_key(&key), "evicted although the key was cached");
                        let set = c.set_index(ev);
                        prop_assert_eq!(set, c.set_index(k));
                        let ev_age = now.wrapping_sub(model[&ev.0].1);
                        for (mk, (_, stamp)) in &model {
                            if c.set_index(SocketKey(*mk)) == set {
                                prop_assert!(now.wrapping_sub(*stamp) <= ev_age, "victim was not LRU");
                            }
                        }
                        model.remove(&ev.0);
                    } else if !model.contains_key(&key) {
                        let in_set = model.keys().filter(|mk| c.set_index(SocketKey(**mk)) == c.set_index(k)).count();
                        prop_assert!(in_set < 3, "no eviction although the set was full");
                    }
                    model.insert(key, (u32::from(val), now));
                }
                1 => {
                    let got = c.lookup(k).map(|(v, _)| v.owner.tgid);
                    let now = c.clock_of(k);
                    prop_assert_eq!(got, model.get(&key).map(|m| m.0));
                    if let Some(m) = model.get_mut(&key) {
                        m.1 = now;
                    }
                }
                _ => {
                    prop_assert_eq!(c.forget(k), model.remove(&key).is_some());
                }
            }
            prop_assert_eq!(c.len(), model.len());
        }
    }

    #[test]
    fn exe_table_matches_strict_lru_model(
        ops in proptest::collection::vec((any::<bool>(), 0usize..9), 1..200),
        clock0 in prop_oneof![Just(u32::MAX - 3), any::<u32>()],
    ) {
        let mut t: ExeTable<4> = ExeTable::new();
        t.set_clock(clock0);
        // Model: live path -> (id, last use tick); every intern/touch is a use.
        let mut model: HashMap<String, (ExeId, u64)> = HashMap::new();
        let mut issued: Vec<(ExeId, String)> = Vec::new();
        let mut tick = 0u64;
        for (intern, p) in ops {
            let path = format!("/bin/p{p}");
            tick += 1;
            if intern {
                let id = t.intern(path.as_bytes()).unwrap();
                if let Some((mid, last)) = model.get_mut(&path) {
                    prop_assert_eq!(id, *mid, "a live path keeps its id");
                    *last = tick;
                } else {
                    if model.len() == 4 {
                        let victim = model.iter().min_by_key(|(_, (_, last))| *last).map(|(k, _)| k.clone()).unwrap();
                        model.remove(&victim);
                        prop_assert_eq!(t.find(victim.as_bytes()), None, "evicted the LRU path");
                    }
                    model.insert(path.clone(), (id, tick));
                }
                issued.push((id, path));
            } else if let Some((id, last)) = model.get_mut(&path) {
                prop_assert!(t.touch(*id));
                *last = tick;
            }
            prop_assert_eq!(t.len(), model.len());
            for (id, path) in &issued {
                let live = model.get(path).is_some_and(|(mid, _)| mid == id);
                match t.get(*id) {
                    Some(p) => {
                        prop_assert!(live, "stale id resolved");
                        prop_assert_eq!(p.as_bytes(), path.as_bytes());
                    }
                    None => prop_assert!(!live, "live id did not resolve"),
                }
            }
        }
    }

    #[test]
    fn squelch_matches_model_without_pressure(
        ops in proptest::collection::vec((0u16..4, any::<bool>(), 0u64..1500), 1..200),
    ) {
        // 4 keys total never exceed one set's ways, so the model is exact.
        let s: Squelch<4> = Squelch::new();
        let mut last: HashMap<(u16, bool), u64> = HashMap::new();
        let mut now = 0u64;
        for (k, udp, dt) in ops {
            now += dt;
            let key = (k % 2, udp);
            let id = ExeId::from_u64(0x0001_0000 | u64::from(key.0)).unwrap();
            let proto = if udp { PROTO_UDP } else { PROTO_TCP };
            let want = last.get(&key) != Some(&(now / 1000));
            prop_assert_eq!(s.permit(proto, id, now / 1000), want);
            if want {
                last.insert(key, now / 1000);
            }
        }
        prop_assert_eq!(s.pressure(), 0);
    }

    #[test]
    fn active_cache_agrees_with_last_walk(
        ops in proptest::collection::vec((0u8..3, 0u64..30, 0u32..5, 0u64..40), 1..150),
    ) {
        struct T(Vec<SocketOwner>, usize);
        impl ProcessTable for T {
            fn for_each_socket(&mut self, f: &mut dyn FnMut(SocketOwner) -> ControlFlow<()>) {
                self.1 += 1;
                for o in &self.0 {
                    if f(*o).is_break() {
                        return;
                    }
                }
            }
        }
        let mut a: ActiveCache<8> = ActiveCache::with_limits(25, 200);
        let mut table = T(Vec::new(), 0);
        let mut snapshot: Vec<SocketOwner> = Vec::new();
        let mut last_walk: Option<u64> = None;
        let mut now = 0u64;
        for (kind, inode, tgid, dt) in ops {
            now += dt;
            match kind {
                0 => table.0.push(SocketOwner { inode, tgid }),
                1 => { table.0.retain(|o| o.inode != inode); }
                _ => {
                    let walks = table.1;
                    let got = a.find(inode, now, &mut table);
                    if table.1 != walks {
                        prop_assert!(last_walk.is_none_or(|l| now - l >= 25), "walk inside the interval");
                        last_walk = Some(now);
                        snapshot = table.0.clone();
                    }
                    let first = snapshot.iter().find(|o| o.inode == inode && inode != 0).map(|o| o.tgid);
                    match got {
                        ActiveLookup::Owner(t) => prop_assert_eq!(Some(t), first),
                        ActiveLookup::NotFound => prop_assert_eq!(first, None),
                        ActiveLookup::RateLimited => {
                            prop_assert!(table.1 == walks);
                            prop_assert!(last_walk.is_some_and(|l| now - l < 25));
                        }
                    }
                }
            }
        }
    }
}
