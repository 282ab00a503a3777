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
//! `e7 monitor`, which scripts read, prints every event as it comes; only the console throttles.
//! Memory is bounded: at most [`MAX_KEYS`] keys are followed at once; an event of a new key beyond
//! that is printed at once, unthrottled (a flood of distinct programs is rare and still readable
//! one line each), rather than dropped.

use crate::exec::render_notice;
use crate::kernel::{Event, Notice};
use std::collections::HashMap;
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
            .map(|((state, prot, path), open)| (Event { state, prot, path }, open.more))
            .collect()
    }
}

/// The line for `more` events of `event`'s key that were counted in one window:
/// `event STATE PROTO PATH (N more)`, or the event's JSON object with `"more": N`.
pub fn render_more(event: &Event, more: u64, json: bool) -> String {
    let line = render_notice(&Notice::Event(event.clone()), json);
    if !json {
        return format!("{line} ({more} more)");
    }
    match serde_json::from_str::<serde_json::Value>(&line) {
        Ok(serde_json::Value::Object(mut map)) => {
            map.insert("more".into(), more.into());
            serde_json::Value::Object(map).to_string()
        }
        _ => line,
    }
}

/// Print the notices of `notices` with `print`, events throttled per key and `window` (the
/// console's printer thread; returns when the stream ends, after printing what was still counted).
pub fn print_notices(
    notices: Receiver<Notice>,
    json: bool,
    window: Duration,
    mut print: impl FnMut(String),
) {
    let mut throttle = Throttle::new(window);
    loop {
        let next = match throttle.next_deadline() {
            Some(deadline) => {
                notices.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            }
            None => notices
                .recv()
                .map_err(|_| RecvTimeoutError::Disconnected),
        };
        let now = Instant::now();
        match next {
            Ok(Notice::Event(event)) => {
                if throttle.offer(&event, now) {
                    print(render_notice(&Notice::Event(event), json));
                }
            }
            Ok(other) => print(render_notice(&other, json)),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                for (event, more) in throttle.flush() {
                    print(render_more(&event, more, json));
                }
                return;
            }
        }
        for (event, more) in throttle.due(now) {
            print(render_more(&event, more, json));
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
            render_more(&a, 3, false),
            "event block udp \"/opt/my app/x\" (3 more)"
        );
        assert_eq!(
            render_more(&a, 2, true),
            r#"{"event":"block","protocol":"udp","path":"/opt/my app/x","more":2}"#
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
        let printer = std::thread::spawn(move || {
            print_notices(rx, false, window, move |line| {
                let _ = out_tx.send((Instant::now(), line));
            })
        });
        let wait = Duration::from_secs(10);
        let (t1, l1) = out_rx.recv_timeout(wait).unwrap();
        assert_eq!(l1, "event block udp /opt/a/e7-probe");
        assert_eq!(out_rx.recv_timeout(wait).unwrap().1, "event pending tcp /opt/b/e7-probe");
        assert_eq!(
            out_rx.recv_timeout(wait).unwrap().1,
            "# kernel events were lost (the socket buffer was full)"
        );
        // The three counted events of `a`: one line, when the window is over.
        let (t4, l4) = out_rx.recv_timeout(wait).unwrap();
        assert_eq!(l4, "event block udp /opt/a/e7-probe (3 more)");
        assert!(t4 - t1 >= window - Duration::from_millis(20), "{:?}", t4 - t1);
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
}
