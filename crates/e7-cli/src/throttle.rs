//! The console's event lines: at most one per (state, protocol, program) per second.
//!
//! Why: the kernel rate-limits only `pending` events (flag `squelch`: one per program and protocol
//! per second). With `drops` or `accepts` on, every packet a rule decides is an event, and one TCP
//! connection is several packets: a busy program would scroll the console away faster than a
//! person can read it, and push the prompt out of sight. The console is read by a person, so it
//! coalesces: the first event of a key (state, protocol, path) is printed at once; the events of
//! that key that follow within the window (a second) are counted, and when the window ends they
//! are printed as one line, `event block udp /opt/a/e7-probe (3 more)`, which opens the next
//! window. A key whose window ends with nothing counted is forgotten, so its next event is again
//! printed at once. Nothing is hidden: every event is a line of its own or counted in one.
//!
//! While the console runs an interactive shell (`!`), events are held rather than printed over
//! the shell's prompt: counted per key, and shown when the shell exits, after a line
//! `# while the shell ran:`, as one line per key with its count (`... (12 events)`). In the shell,
//! `e7 monitor` shows them live.
//!
//! `e7 monitor`, which scripts read, prints every event as it comes; only the console throttles.
//! Memory is bounded: at most [`MAX_KEYS`] keys are followed at once; an event of a new key beyond
//! that is printed at once, unthrottled (a flood of distinct programs is rare and still readable
//! one line each), rather than dropped.

use crate::exec::render_notice;
use crate::kernel::{Event, Notice};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How many keys the console follows at once (see the module docs).
pub const MAX_KEYS: usize = 1024;

/// The window of the console: one line per key per second.
pub const CONSOLE_WINDOW: Duration = Duration::from_secs(1);

/// (state, protocol, path): what makes two events "the same" for the reader.
type Key = (u32, u32, String);

struct Open {
    /// When this key's window ends.
    until: Instant,
    /// Events of the key counted since its last line.
    more: u64,
}

/// Coalesces events per key and window (see the module docs). Time is passed in, so the
/// behaviour is tested without sleeping.
pub struct Throttle {
    window: Duration,
    open: HashMap<Key, Open>,
}

impl Throttle {
    /// A throttle with windows of `window`.
    pub fn new(window: Duration) -> Self {
        Throttle {
            window,
            open: HashMap::new(),
        }
    }

    /// An event arrived at `now`: `true` when it is to be printed now, `false` when it was
    /// counted into its key's window (it comes out of [`Throttle::due`] later).
    pub fn offer(&mut self, event: &Event, now: Instant) -> bool {
        let key = (event.state, event.prot, event.path.clone());
        if let Some(open) = self.open.get_mut(&key) {
            open.more += 1;
            return false;
        }
        if self.open.len() < MAX_KEYS {
            self.open.insert(
                key,
                Open {
                    until: now + self.window,
                    more: 0,
                },
            );
        }
        true
    }

    /// The coalesced lines due at `now`: `(event, count)` for each key whose window has ended with
    /// events counted (that key's next window starts now); keys whose window ended with nothing
    /// counted are forgotten.
    pub fn due(&mut self, now: Instant) -> Vec<(Event, u64)> {
        let mut lines = Vec::new();
        let window = self.window;
        self.open.retain(|(state, prot, path), open| {
            if open.until > now {
                return true;
            }
            if open.more == 0 {
                return false;
            }
            lines.push((
                Event {
                    state: *state,
                    prot: *prot,
                    path: path.clone(),
                    peer: Default::default(),
                },
                open.more,
            ));
            open.more = 0;
            open.until = now + window;
            true
        });
        lines
    }

    /// When the earliest open window ends (`None`: nothing open).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.open.values().map(|o| o.until).min()
    }

    /// Every count still held, whatever the time (the stream ended).
    pub fn flush(&mut self) -> Vec<(Event, u64)> {
        self.open
            .drain()
            .filter(|(_, open)| open.more > 0)
            .map(|((state, prot, path), open)| {
                (
                    Event {
                        state,
                        prot,
                        path,
                        peer: Default::default(),
                    },
                    open.more,
                )
            })
            .collect()
    }
}

/// What a count on an event line means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// Events that followed a line already printed for the key, within one window:
    /// `(N more)`, JSON `"more": N`.
    More,
    /// Every event of the key that came while the events were held: `(N events)`, JSON
    /// `"held": N`.
    Held,
}

/// The line for `n` events of `event`'s key: `event STATE PROTO PATH (N more)` or
/// `(N events)`, or the event's JSON object with `"more": N` or `"held": N`.
pub fn render_count(event: &Event, n: u64, count: Count, json: bool) -> String {
    let line = render_notice(&Notice::Event(event.clone()), json);
    if !json {
        return match count {
            Count::More => format!("{line} ({n} more)"),
            Count::Held => format!("{line} ({n} event{})", if n == 1 { "" } else { "s" }),
        };
    }
    let field = match count {
        Count::More => "more",
        Count::Held => "held",
    };
    match serde_json::from_str::<serde_json::Value>(&line) {
        Ok(serde_json::Value::Object(mut map)) => {
            map.insert(field.into(), n.into());
            serde_json::Value::Object(map).to_string()
        }
        _ => line,
    }
}

/// Events held while the console runs an interactive shell: a count per key, bounded by
/// [`MAX_KEYS`] (beyond it, events of new keys are only counted in total).
#[derive(Default)]
struct Held {
    keys: HashMap<Key, u64>,
    /// Order of first arrival, to print in that order.
    order: Vec<Key>,
    /// Events of keys beyond the bound.
    others: u64,
    /// Other notices (lost events, disconnect, failures), printed as they are, in order.
    notices: Vec<Notice>,
}

impl Held {
    fn add(&mut self, event: Event) {
        let key = (event.state, event.prot, event.path);
        if let Some(n) = self.keys.get_mut(&key) {
            *n += 1;
        } else if self.keys.len() < MAX_KEYS {
            self.keys.insert(key.clone(), 1);
            self.order.push(key);
        } else {
            self.others += 1;
        }
    }

    fn is_empty(&self) -> bool {
        self.order.is_empty() && self.others == 0 && self.notices.is_empty()
    }

    /// The lines to print when the events are shown again (empty when nothing came).
    fn lines(&mut self, json: bool) -> Vec<String> {
        if self.is_empty() {
            return Vec::new();
        }
        let mut lines = Vec::new();
        if !json {
            lines.push("# while the shell ran:".to_string());
        }
        for (state, prot, path) in self.order.drain(..) {
            let n = self.keys.remove(&(state, prot, path.clone())).unwrap_or(0);
            let event = Event {
                state,
                prot,
                path,
                peer: Default::default(),
            };
            lines.push(render_count(&event, n, Count::Held, json));
        }
        for notice in self.notices.drain(..) {
            lines.push(render_notice(&notice, json));
        }
        if self.others > 0 {
            lines.push(if json {
                serde_json::json!({ "held_others": self.others }).to_string()
            } else {
                format!("# and {} events of other programs", self.others)
            });
            self.others = 0;
        }
        lines
    }
}

/// How often a printer holding events looks whether it may show them again.
const HOLD_POLL: Duration = Duration::from_millis(100);

/// Print the notices of `notices` with `print`, events throttled per key and `window` (the
/// console's printer thread; returns when the stream ends, after printing what was still counted).
/// While `hold` is set nothing is printed: events are counted per key and shown, with their
/// counts, once it is cleared (see the module docs).
pub fn print_notices(
    notices: Receiver<Notice>,
    json: bool,
    window: Duration,
    hold: &AtomicBool,
    mut print: impl FnMut(String),
) {
    let mut throttle = Throttle::new(window);
    let mut held = Held::default();
    loop {
        let holding = hold.load(Ordering::Relaxed);
        if !holding {
            for line in held.lines(json) {
                print(line);
            }
        }
        let wait = match (holding, throttle.next_deadline()) {
            (true, _) => Some(HOLD_POLL),
            (false, Some(deadline)) => Some(deadline.saturating_duration_since(Instant::now())),
            (false, None) => None,
        };
        let next = match wait {
            Some(wait) => notices.recv_timeout(wait),
            None => notices.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        let now = Instant::now();
        // Looked at again: the hold may have begun while this thread waited.
        let holding = hold.load(Ordering::Relaxed);
        match next {
            Ok(Notice::Event(event)) if holding => held.add(event),
            Ok(notice) if holding => held.notices.push(notice),
            Ok(Notice::Event(event)) => {
                if throttle.offer(&event, now) {
                    print(render_notice(&Notice::Event(event), json));
                }
            }
            Ok(other) => print(render_notice(&other, json)),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                for line in held.lines(json) {
                    print(line);
                }
                for (event, more) in throttle.flush() {
                    print(render_count(&event, more, Count::More, json));
                }
                return;
            }
        }
        if !holding {
            for (event, more) in throttle.due(now) {
                print(render_count(&event, more, Count::More, json));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use e7_proto::Const;

    fn ev(state: Const, prot: u32, path: &str) -> Event {
        Event {
            state: state.value(),
            prot,
            path: path.into(),
            peer: Default::default(),
        }
    }

    #[test]
    fn first_event_prints_the_rest_of_the_second_is_counted() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut t = Throttle::new(s);
        let a = ev(Const::Block, 17, "/opt/a/e7-probe");
        assert!(t.offer(&a, t0));
        for i in 1..=5 {
            assert!(!t.offer(&a, t0 + Duration::from_millis(100 * i)));
        }
        // Another state, protocol or program is another key: printed at once.
        assert!(t.offer(&ev(Const::Pending, 17, "/opt/a/e7-probe"), t0));
        assert!(t.offer(&ev(Const::Block, 6, "/opt/a/e7-probe"), t0));
        assert!(t.offer(&ev(Const::Block, 17, "/opt/b/e7-probe"), t0));
        assert_eq!(t.next_deadline(), Some(t0 + s));
        assert!(t.due(t0 + Duration::from_millis(999)).is_empty());
        // The window ends: one line with the five counted; the keys with nothing counted go.
        assert_eq!(t.due(t0 + s), vec![(a.clone(), 5)]);
        assert_eq!(t.next_deadline(), Some(t0 + 2 * s));
        // A steady stream: one line per window, never two within a second.
        assert!(!t.offer(&a, t0 + Duration::from_millis(1500)));
        assert!(!t.offer(&a, t0 + Duration::from_millis(1600)));
        assert!(t.due(t0 + Duration::from_millis(1999)).is_empty());
        assert_eq!(t.due(t0 + 2 * s), vec![(a.clone(), 2)]);
        // Quiet for a whole window: forgotten, and the next event is printed at once.
        assert!(t.due(t0 + 3 * s).is_empty());
        assert_eq!(t.next_deadline(), None);
        assert!(t.offer(&a, t0 + 3 * s));
    }

    #[test]
    fn flush_returns_what_is_still_counted_and_keys_are_bounded() {
        let t0 = Instant::now();
        let mut t = Throttle::new(Duration::from_secs(1));
        let a = ev(Const::Allow, 6, "/usr/bin/curl");
        assert!(t.offer(&a, t0));
        assert!(!t.offer(&a, t0));
        assert!(t.offer(&ev(Const::Allow, 6, "/x"), t0));
        assert_eq!(t.flush(), vec![(a, 1)]);
        assert_eq!(t.next_deadline(), None);

        for i in 0..MAX_KEYS {
            assert!(t.offer(&ev(Const::Pending, 17, &format!("/p/{i}")), t0));
        }
        // Beyond the bound: printed every time, never counted, never dropped.
        let extra = ev(Const::Pending, 17, "/p/extra");
        assert!(t.offer(&extra, t0));
        assert!(t.offer(&extra, t0));
        assert_eq!(t.open.len(), MAX_KEYS);
    }

    #[test]
    fn coalesced_lines_say_how_many_more() {
        let a = ev(Const::Block, 17, "/opt/my app/x");
        assert_eq!(
            render_count(&a, 3, Count::More, false),
            "event block udp \"/opt/my app/x\" (3 more)"
        );
        assert_eq!(
            render_count(&a, 2, Count::More, true),
            r#"{"event":"block","protocol":"udp","path":"/opt/my app/x","more":2}"#
        );
        assert_eq!(
            render_count(&a, 1, Count::Held, false),
            "event block udp \"/opt/my app/x\" (1 event)"
        );
        assert_eq!(
            render_count(&a, 7, Count::Held, true),
            r#"{"event":"block","protocol":"udp","path":"/opt/my app/x","held":7}"#
        );
    }

    #[test]
    fn printer_prints_first_events_at_once_and_the_count_after_the_window() {
        let (tx, rx) = std::sync::mpsc::channel();
        let a = ev(Const::Block, 17, "/opt/a/e7-probe");
        let b = ev(Const::Pending, 6, "/opt/b/e7-probe");
        for _ in 0..4 {
            tx.send(Notice::Event(a.clone())).unwrap();
        }
        tx.send(Notice::Event(b.clone())).unwrap();
        tx.send(Notice::Lost).unwrap();
        let (out_tx, out_rx) = std::sync::mpsc::channel();
        let window = Duration::from_millis(300);
        static NO_HOLD: AtomicBool = AtomicBool::new(false);
        let printer = std::thread::spawn(move || {
            print_notices(rx, false, window, &NO_HOLD, move |line| {
                let _ = out_tx.send((Instant::now(), line));
            })
        });
        let wait = Duration::from_secs(10);
        let (t1, l1) = out_rx.recv_timeout(wait).unwrap();
        assert_eq!(l1, "event block udp /opt/a/e7-probe");
        assert_eq!(
            out_rx.recv_timeout(wait).unwrap().1,
            "event pending tcp /opt/b/e7-probe"
        );
        assert_eq!(
            out_rx.recv_timeout(wait).unwrap().1,
            "# kernel events were lost (the socket buffer was full)"
        );
        // The three counted events of `a`: one line, when the window is over.
        let (t4, l4) = out_rx.recv_timeout(wait).unwrap();
        assert_eq!(l4, "event block udp /opt/a/e7-probe (3 more)");
        assert!(
            t4 - t1 >= window - Duration::from_millis(20),
            "{:?}",
            t4 - t1
        );
        // Once `b`'s window has ended with nothing counted, its next event prints at once. Then
        // the stream ends: the count still held is printed, and the printer returns.
        std::thread::sleep(2 * window);
        for _ in 0..3 {
            tx.send(Notice::Event(b.clone())).unwrap();
        }
        drop(tx);
        let lines: Vec<String> = out_rx.iter().map(|(_, l)| l).collect();
        assert_eq!(
            lines,
            vec![
                "event pending tcp /opt/b/e7-probe".to_string(),
                "event pending tcp /opt/b/e7-probe (2 more)".to_string()
            ]
        );
        printer.join().unwrap();
    }

    #[test]
    fn held_events_are_shown_with_their_counts_when_the_hold_ends() {
        static HOLD: AtomicBool = AtomicBool::new(true);
        let (tx, rx) = std::sync::mpsc::channel();
        let (out_tx, out_rx) = std::sync::mpsc::channel();
        let printer = std::thread::spawn(move || {
            print_notices(rx, false, Duration::from_millis(50), &HOLD, move |line| {
                let _ = out_tx.send(line);
            })
        });
        let a = ev(Const::Block, 17, "/opt/a/e7-probe");
        let b = ev(Const::Pending, 1, "/usr/bin/e7-probe");
        for e in [&a, &b, &a, &a] {
            tx.send(Notice::Event(e.clone())).unwrap();
        }
        tx.send(Notice::Lost).unwrap();
        // Held: nothing is printed however long the hold lasts.
        assert!(out_rx.recv_timeout(Duration::from_millis(400)).is_err());
        HOLD.store(false, Ordering::Relaxed);
        let wait = Duration::from_secs(10);
        let lines: Vec<String> = (0..4).map(|_| out_rx.recv_timeout(wait).unwrap()).collect();
        assert_eq!(
            lines,
            [
                "# while the shell ran:",
                "event block udp /opt/a/e7-probe (3 events)",
                "event pending icmp /usr/bin/e7-probe (1 event)",
                "# kernel events were lost (the socket buffer was full)",
            ]
        );
        // Live again: the next event is printed at once.
        tx.send(Notice::Event(a.clone())).unwrap();
        assert_eq!(
            out_rx.recv_timeout(wait).unwrap(),
            "event block udp /opt/a/e7-probe"
        );
        drop(tx);
        printer.join().unwrap();
        assert!(out_rx.recv_timeout(Duration::from_millis(10)).is_err());
    }
}
