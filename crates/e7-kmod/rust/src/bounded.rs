//! The module's own bounded structures: the event queue, the subscriber set and the refill queue.
//!
//! Why bounded and fixed-size: all three are written from the netfilter hook (softirq included),
//! where nothing may allocate or loop without bound, and a misbehaving user (a subscriber that
//! never reads, a flood of unknown sockets) must cost a counter, never kernel memory. Each lives
//! in a `static` behind a BH-safe kernel rwlock (see `state.rs`).
#![forbid(unsafe_code)]

use e7_core::{Deferred, ExePath, SocketKey};

/// Capacity of the event queue.
pub const EVENT_QUEUE: usize = 128;
/// Capacity of the subscriber set.
pub const MAX_SUBSCRIBERS: usize = 8;
/// Capacity of the refill queue (sockets missed in softirq, resolved by the refill work).
pub const PENDING_SOCKETS: usize = 128;

/// One queued event: STATE, PROT and a copy of the executable path (copied only when queued),
/// and the uid of the packet's socket (whose share of the queue it counts against).
#[derive(Clone)]
pub struct EventRecord {
    /// The event's STATE value (`pending`, `allow`, `block`).
    pub state: u32,
    /// The packet's protocol.
    pub proto: u32,
    /// The uid of the packet's socket (initial user namespace).
    pub uid: u32,
    /// The executable.
    pub path: ExePath,
    /// Where the packet went and whether it had a socket (the event's DEST, DPORT, UID).
    pub peer: e7_proto::msg::EventPeer,
}

impl EventRecord {
    /// An empty record (placeholder for `const` initialisers).
    pub const EMPTY: EventRecord = EventRecord {
        state: 0,
        proto: 0,
        uid: 0,
        path: ExePath::EMPTY,
        peer: e7_proto::msg::EventPeer {
            dst: None,
            dport: None,
            uid: None,
        },
    };
}

/// What [`EventRing::push`] did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queued {
    /// Queued in a free slot.
    Yes,
    /// The queue was full: the newest event of the uid holding the most slots was dropped (count
    /// it in `evlost`) and this one queued last.
    Evicted,
    /// The queue was full and the event's uid holds at least as many slots as any other: the
    /// event is lost (count it in `evlost`).
    No,
}

/// A FIFO of at most `N` events, shared fairly between uids.
///
/// Why the share: the queue is one for the whole machine, and any user's programs can produce
/// events (a pending event per new program and protocol per second; with `drops`/`accepts` one
/// per packet). Plain FIFO let one user's flood fill it, so another user's events were refused
/// and counted in `evlost`: a flood silenced someone else. Now a full queue takes an event
/// from a uid holding fewer slots than the biggest holder by evicting that holder's newest
/// event, so a flood costs the flooder its own events and never someone else's (issue 8,
/// defect 5's principle): any uid always gets at least `N / (uids queued)` slots. A per-uid count
/// table (at most `N` uids: each holds a slot) keeps the choice O(N), bounded for softirq.
pub struct EventRing<const N: usize = EVENT_QUEUE> {
    slots: [EventRecord; N],
    /// A permutation of the slot indices: `order[..len]` the queued events, oldest first;
    /// `order[len..]` the free slots. Evicting from the middle moves indices, not paths.
    order: [usize; N],
    len: usize,
    /// (uid, queued events) of every uid with a queued event; `owners[..n_owners]` are valid.
    owners: [(u32, u32); N],
    n_owners: usize,
}

impl<const N: usize> Default for EventRing<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> EventRing<N> {
    /// An empty ring.
    pub const fn new() -> Self {
        let mut order = [0usize; N];
        let mut i = 0;
        while i < N {
            order[i] = i;
            i += 1;
        }
        EventRing {
            slots: [const { EventRecord::EMPTY }; N],
            order,
            len: 0,
            owners: [(0, 0); N],
            n_owners: 0,
        }
    }

    /// Queued events.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Events queued for `uid`.
    pub fn queued_for(&self, uid: u32) -> u32 {
        self.owner(uid)
            .and_then(|i| self.owners.get(i))
            .map_or(0, |o| o.1)
    }

    fn owner(&self, uid: u32) -> Option<usize> {
        self.owners
            .get(..self.n_owners)?
            .iter()
            .position(|o| o.0 == uid)
    }

    /// Counts one more event of `uid` (a new owner if it had none; there is always room: at most
    /// one owner per slot).
    fn own(&mut self, uid: u32) {
        match self.owner(uid) {
            Some(i) => {
                if let Some(o) = self.owners.get_mut(i) {
                    o.1 = o.1.saturating_add(1);
                }
            }
            None => {
                if let Some(o) = self.owners.get_mut(self.n_owners) {
                    *o = (uid, 1);
                    self.n_owners += 1;
                }
            }
        }
    }

    /// Counts one event of `uid` less (the owner goes when it has none left).
    fn disown(&mut self, uid: u32) {
        let Some(i) = self.owner(uid) else { return };
        let last = self.n_owners.saturating_sub(1);
        let gone = match self.owners.get_mut(i) {
            Some(o) => {
                o.1 = o.1.saturating_sub(1);
                o.1 == 0
            }
            None => false,
        };
        if gone {
            if let Some(&moved) = self.owners.get(last) {
                if let Some(o) = self.owners.get_mut(i) {
                    *o = moved;
                }
            }
            self.n_owners = last;
        }
    }

    /// Removes the queued event at queue position `pos` (0 = oldest) from the order, keeping the
    /// others in order; its slot becomes the first free one. Returns that slot.
    fn unlink(&mut self, pos: usize) -> Option<usize> {
        let slot = *self.order.get(pos)?;
        let last = self.len.checked_sub(1)?;
        for i in pos..last {
            let next = self.order.get(i + 1).copied()?;
            *self.order.get_mut(i)? = next;
        }
        *self.order.get_mut(last)? = slot;
        self.len = last;
        Some(slot)
    }

    /// Queues an event of `uid` (see [`Queued`]; the type's docs say who gives way when full).
    pub fn push(&mut self, uid: u32, state: u32, proto: u32, path: &ExePath) -> Queued {
        self.push_peer(
            uid,
            state,
            proto,
            path,
            &e7_proto::msg::EventPeer::default(),
        )
    }

    /// [`EventRing::push`] with where the packet went.
    pub fn push_peer(
        &mut self,
        uid: u32,
        state: u32,
        proto: u32,
        path: &ExePath,
        peer: &e7_proto::msg::EventPeer,
    ) -> Queued {
        let outcome = if self.len < N {
            Queued::Yes
        } else {
            // Full: the biggest holder gives way, unless that is this uid (or a tie with it).
            let mine = self.queued_for(uid);
            let top = self
                .owners
                .get(..self.n_owners)
                .unwrap_or(&[])
                .iter()
                .copied()
                .max_by_key(|o| o.1);
            let Some((victim, held)) = top else {
                return Queued::No;
            };
            if held <= mine {
                return Queued::No;
            }
            // The victim's newest event (its flood's latest; its older ones keep their place).
            let queued = self.order.get(..self.len).unwrap_or(&[]);
            let newest = queued
                .iter()
                .rposition(|&i| self.slots.get(i).is_some_and(|s| s.uid == victim));
            if newest.and_then(|pos| self.unlink(pos)).is_none() {
                return Queued::No;
            }
            self.disown(victim);
            Queued::Evicted
        };
        let Some(slot) = self
            .order
            .get(self.len)
            .copied()
            .and_then(|i| self.slots.get_mut(i))
        else {
            return Queued::No;
        };
        slot.state = state;
        slot.proto = proto;
        slot.uid = uid;
        slot.path.clone_from(path);
        slot.peer = *peer;
        self.len += 1;
        self.own(uid);
        outcome
    }

    /// Moves the oldest event into `out`; false when empty.
    pub fn pop_into(&mut self, out: &mut EventRecord) -> bool {
        let Some(slot) = self
            .len
            .checked_sub(1)
            .and_then(|_| self.unlink(0))
            .and_then(|i| self.slots.get(i))
        else {
            return false;
        };
        out.clone_from(slot);
        self.disown(out.uid);
        true
    }

    /// Drops every queued event.
    pub fn clear(&mut self) {
        self.len = 0;
        self.n_owners = 0;
    }
}

/// The ports that receive events: admin clients that sent an admin command or SUBSCRIBE.
/// At most `N`; adding to a full set evicts the oldest subscription.
pub struct Subscribers<const N: usize = MAX_SUBSCRIBERS> {
    ports: [u32; N],
    since: [u32; N],
    clock: u32,
    len: usize,
}

impl<const N: usize> Default for Subscribers<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Subscribers<N> {
    /// No subscribers.
    pub const fn new() -> Self {
        Subscribers {
            ports: [0; N],
            since: [0; N],
            clock: 0,
            len: 0,
        }
    }

    /// Number of subscribers.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nobody subscribed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `port` is subscribed.
    pub fn contains(&self, port: u32) -> bool {
        self.ports().contains(&port)
    }

    /// The subscribed ports (oldest first is not guaranteed).
    pub fn ports(&self) -> &[u32] {
        self.ports.get(..self.len).unwrap_or(&[])
    }

    /// Subscribes `port` (port 0 is the kernel and is ignored). Re-adding refreshes its age.
    /// Returns the port evicted to make room, if any.
    pub fn add(&mut self, port: u32) -> Option<u32> {
        if port == 0 || N == 0 {
            return None;
        }
        self.clock = self.clock.wrapping_add(1);
        let now = self.clock;
        if let Some(i) = self.ports().iter().position(|&p| p == port) {
            if let Some(s) = self.since.get_mut(i) {
                *s = now;
            }
            return None;
        }
        if self.len < N {
            if let (Some(p), Some(s)) = (self.ports.get_mut(self.len), self.since.get_mut(self.len))
            {
                *p = port;
                *s = now;
                self.len += 1;
            }
            return None;
        }
        // Full: replace the oldest (largest wrap-safe age).
        let mut victim = 0usize;
        let mut oldest = 0u32;
        for (i, &s) in self.since.iter().enumerate() {
            let age = now.wrapping_sub(s);
            if i == 0 || age > oldest {
                victim = i;
                oldest = age;
            }
        }
        let evicted = self.ports.get(victim).copied();
        if let (Some(p), Some(s)) = (self.ports.get_mut(victim), self.since.get_mut(victim)) {
            *p = port;
            *s = now;
        }
        evicted
    }

    /// Unsubscribes `port`; false if it was not subscribed.
    pub fn remove(&mut self, port: u32) -> bool {
        let Some(i) = self.ports().iter().position(|&p| p == port) else {
            return false;
        };
        // Move the last entry into the hole (order does not matter).
        let last = self.len.saturating_sub(1);
        if let (Some(&p), Some(&s)) = (self.ports.get(last), self.since.get(last)) {
            if let (Some(dp), Some(ds)) = (self.ports.get_mut(i), self.since.get_mut(i)) {
                *dp = p;
                *ds = s;
            }
        }
        self.len = last;
        true
    }

    /// Forgets everybody.
    pub fn clear(&mut self) {
        self.len = 0;
    }
}

/// A socket missed in softirq, waiting for the refill work to find its owner (e7-core's
/// [`Deferred`]).
pub type PendingSocket = Deferred;

/// A de-duplicating set of at most `N` pending sockets; full → the socket is not queued (its next
/// packet tries again).
pub struct Pending<const N: usize = PENDING_SOCKETS> {
    items: [PendingSocket; N],
    len: usize,
}

impl<const N: usize> Default for Pending<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Pending<N> {
    /// Empty.
    pub const fn new() -> Self {
        Pending {
            items: [Deferred {
                key: SocketKey(0),
                inode: 0,
                uid: 0,
            }; N],
            len: 0,
        }
    }

    /// Number of queued sockets.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues `s` unless the same socket is already queued; false if full.
    pub fn push(&mut self, s: PendingSocket) -> bool {
        let queued = self.items.get(..self.len).unwrap_or(&[]);
        if queued.iter().any(|q| q.key == s.key) {
            return true;
        }
        match self.items.get_mut(self.len) {
            Some(slot) => {
                *slot = s;
                self.len += 1;
                true
            }
            None => false,
        }
    }

    /// Moves every queued socket into `out` (which has room for `N`) and returns how many.
    pub fn take_all(&mut self, out: &mut [PendingSocket; N]) -> usize {
        let n = self.len;
        if let (Some(src), Some(dst)) = (self.items.get(..n), out.get_mut(..n)) {
            dst.copy_from_slice(src);
        }
        self.len = 0;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> ExePath {
        ExePath::new(p.as_bytes()).unwrap()
    }

    #[test]
    fn event_ring_is_fifo_and_bounded() {
        let mut r: EventRing<3> = EventRing::new();
        assert_eq!(r.push(7, 1, 6, &path("/a")), Queued::Yes);
        assert_eq!(r.push(7, 2, 17, &path("/b")), Queued::Yes);
        assert_eq!(r.push(7, 3, 1, &path("/c")), Queued::Yes);
        assert_eq!(
            r.push(7, 4, 1, &path("/d")),
            Queued::No,
            "a full ring refuses its only user"
        );
        let mut out = EventRecord::EMPTY;
        assert!(r.pop_into(&mut out));
        assert_eq!(
            (out.state, out.proto, out.path.as_bytes()),
            (1, 6, &b"/a"[..])
        );
        assert_eq!(
            r.push(7, 5, 58, &path("/e")),
            Queued::Yes,
            "room again after a pop (wraps)"
        );
        let mut seen = std::vec::Vec::new();
        while r.pop_into(&mut out) {
            seen.push((out.state, out.path.as_bytes().to_vec()));
        }
        assert_eq!(
            seen,
            [
                (2, b"/b".to_vec()),
                (3, b"/c".to_vec()),
                (5, b"/e".to_vec())
            ]
        );
        assert!(r.is_empty());
        assert_eq!(r.queued_for(7), 0);
    }

    #[test]
    fn a_full_event_ring_makes_the_biggest_holder_give_way() {
        let mut r: EventRing<4> = EventRing::new();
        for i in 0..4 {
            assert_eq!(r.push(1000, i, 17, &path("/flood")), Queued::Yes);
        }
        assert_eq!(
            r.push(1000, 9, 17, &path("/flood")),
            Queued::No,
            "the flooder loses its own"
        );
        assert_eq!(r.push(2000, 20, 6, &path("/victim")), Queued::Evicted);
        assert_eq!(r.push(2000, 21, 6, &path("/victim")), Queued::Evicted);
        assert_eq!(
            r.push(2000, 22, 6, &path("/victim")),
            Queued::No,
            "2 and 2: a tie refuses the newcomer, no ping-pong"
        );
        assert_eq!((r.queued_for(1000), r.queued_for(2000)), (2, 2));
        // The flooder's oldest two stay; everyone's events keep their order.
        let mut out = EventRecord::EMPTY;
        let mut seen = std::vec::Vec::new();
        while r.pop_into(&mut out) {
            seen.push((out.uid, out.state));
        }
        assert_eq!(seen, [(1000, 0), (1000, 1), (2000, 20), (2000, 21)]);
        assert_eq!((r.queued_for(1000), r.queued_for(2000)), (0, 0));
        assert_eq!(r.n_owners, 0);
    }

    #[test]
    fn subscribers_evict_oldest_and_refresh() {
        let mut s: Subscribers<3> = Subscribers::new();
        assert_eq!(s.add(0), None);
        assert!(s.is_empty(), "port 0 (the kernel) is never a subscriber");
        assert_eq!(s.add(10), None);
        assert_eq!(s.add(11), None);
        assert_eq!(s.add(12), None);
        assert_eq!(s.add(10), None, "re-adding refreshes, evicts nothing");
        assert_eq!(s.add(13), Some(11), "11 is now the oldest");
        assert!(s.contains(10) && s.contains(12) && s.contains(13) && !s.contains(11));
        assert!(s.remove(12));
        assert!(!s.remove(12));
        assert_eq!(s.len(), 2);
        assert_eq!(s.add(14), None);
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn subscribers_age_is_wrap_safe() {
        let mut s: Subscribers<2> = Subscribers::new();
        s.clock = u32::MAX - 1;
        s.add(1); // stamp MAX
        s.add(2); // stamp 0 (wrapped)
        assert_eq!(s.add(3), Some(1), "the pre-wrap stamp is the older one");
    }

    #[test]
    fn pending_dedups_and_bounds() {
        let mut p: Pending<2> = Pending::new();
        let a = PendingSocket {
            key: SocketKey(1),
            inode: 10,
            uid: 0,
        };
        let b = PendingSocket {
            key: SocketKey(2),
            inode: 20,
            uid: 0,
        };
        let c = PendingSocket {
            key: SocketKey(3),
            inode: 30,
            uid: 0,
        };
        assert!(p.push(a));
        assert!(p.push(a), "duplicate is accepted without a second slot");
        assert!(p.push(b));
        assert!(!p.push(c), "full");
        let mut out = [PendingSocket::default(); 2];
        assert_eq!(p.take_all(&mut out), 2);
        assert_eq!(out, [a, b]);
        assert!(p.is_empty());
    }
}
