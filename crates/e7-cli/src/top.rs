//! `e7 top`: who is using the network right now, and what e7 decided for them.
//!
//! A full-screen view refreshed every `--interval` seconds from the module's per-program
//! statistics (STATS) and the rule table (QUERY): one row per program, sorted by traffic, with
//! the verdict of its latest packet, what decided it (the rule's `e7` line, or "no rule"), its
//! packet and byte rates since the last refresh, its totals and when it was last seen. Keys sort,
//! filter, move the selection and — for root — add an allow or block rule for the selected
//! program; the line shows the `e7` command that ran.
//!
//! Why the split: [`Top`] holds the state and answers keys (pure logic over the [`Kernel`]
//! trait, so the fake kernel drives it in unit tests and in the tmux test); [`draw`] renders it
//! with ratatui (tested on ratatui's in-memory backend at 80×24, what an ssh session gets);
//! [`run`] owns the terminal. When stdout is not a terminal, [`run`] prints the plain table of
//! `e7 stats` every interval instead (logs, pipes, `watch`).

use crate::error::CliError;
use crate::grammar::{self, Action};
use crate::kernel::{self, Change, Kernel, Op, ProgStat, RuleSet};
use crate::stats;
use e7_proto::qual::Qualifiers;
use e7_proto::{Const, Flag};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Cell, Paragraph, Row as TableRow, Table, TableState};
use ratatui::Frame;
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// How `e7 top` runs.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Time between refreshes.
    pub interval: Duration,
    /// Stop after this many refreshes (`None`: until `q` or Ctrl-C).
    pub count: Option<u64>,
}

/// The row order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// Most packets in all first.
    Traffic,
    /// Highest packet rate first.
    Rate,
    /// Most dropped packets first.
    Drops,
    /// Most recently seen first.
    Recent,
    /// By path.
    Name,
}

impl SortKey {
    /// The next order (the `s` key cycles).
    pub fn next(self) -> SortKey {
        match self {
            SortKey::Traffic => SortKey::Rate,
            SortKey::Rate => SortKey::Drops,
            SortKey::Drops => SortKey::Recent,
            SortKey::Recent => SortKey::Name,
            SortKey::Name => SortKey::Traffic,
        }
    }

    /// Its name on the screen.
    pub fn word(self) -> &'static str {
        match self {
            SortKey::Traffic => "traffic",
            SortKey::Rate => "rate",
            SortKey::Drops => "drops",
            SortKey::Recent => "recent",
            SortKey::Name => "name",
        }
    }
}

/// One program on the screen.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Its statistics.
    pub stat: ProgStat,
    /// Packets per second since the previous refresh.
    pub pkt_rate: f64,
    /// Bytes per second since the previous refresh.
    pub byte_rate: f64,
}

/// A key, as `e7 top` understands it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// A character.
    Char(char),
    /// Up arrow.
    Up,
    /// Down arrow.
    Down,
    /// Enter.
    Enter,
    /// Escape.
    Esc,
    /// Backspace.
    Backspace,
}

/// What the caller does after a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep going (redraw).
    Continue,
    /// Refresh now, then keep going.
    Refresh,
    /// Leave.
    Quit,
}

/// The state of the view.
#[derive(Debug)]
pub struct Top {
    all: Vec<ProgStat>,
    prev: HashMap<String, (u64, u64)>,
    rates: HashMap<String, (f64, f64)>,
    /// The rows shown: filtered and sorted.
    pub rows: Vec<Row>,
    /// The rule table at the last refresh (QUERY), for "decided by".
    pub rules: Option<RuleSet>,
    /// Row order.
    pub sort: SortKey,
    /// Only programs whose path contains this.
    pub filter: String,
    /// The filter being typed (after `/`), if any.
    pub editing: Option<String>,
    /// Index of the selected row.
    pub selected: usize,
    /// The last thing that happened (the `e7` line run, an error).
    pub message: String,
    /// The caller is root: the rule keys are offered.
    pub root: bool,
    /// Refreshes done.
    pub refreshes: u64,
}

impl Top {
    /// An empty view; `root`: offer the rule keys.
    pub fn new(root: bool) -> Top {
        Top {
            all: Vec::new(),
            prev: HashMap::new(),
            rates: HashMap::new(),
            rows: Vec::new(),
            rules: None,
            sort: SortKey::Traffic,
            filter: String::new(),
            editing: None,
            selected: 0,
            message: String::new(),
            root,
            refreshes: 0,
        }
    }

    /// Reads the statistics and the rules; rates are the change since the previous refresh over
    /// `elapsed`.
    pub fn refresh(&mut self, kernel: &mut dyn Kernel, elapsed: Duration) -> Result<(), CliError> {
        let list = kernel::stats(kernel)?;
        // QUERY needs no privilege; without it "decided by" just cannot name the rule.
        self.rules = kernel::query(kernel).ok();
        let secs = elapsed.as_secs_f64();
        self.rates.clear();
        for s in &list {
            let (p0, b0) = self
                .prev
                .get(&s.path)
                .copied()
                .unwrap_or((s.packets(), s.bytes()));
            let rate = |now: u64, then: u64| {
                if secs > 0.0 {
                    now.saturating_sub(then) as f64 / secs
                } else {
                    0.0
                }
            };
            self.rates
                .insert(s.path.clone(), (rate(s.packets(), p0), rate(s.bytes(), b0)));
        }
        self.prev = list
            .iter()
            .map(|s| (s.path.clone(), (s.packets(), s.bytes())))
            .collect();
        self.all = list;
        self.refreshes += 1;
        self.rebuild();
        Ok(())
    }

    /// The selected program's path, if any.
    pub fn selected_path(&self) -> Option<&str> {
        self.rows.get(self.selected).map(|r| r.stat.path.as_str())
    }

    /// Filters and sorts `all` into `rows`, keeping the selection on the same program.
    fn rebuild(&mut self) {
        let keep = self.selected_path().map(str::to_string);
        let mut rows: Vec<Row> = self
            .all
            .iter()
            .filter(|s| self.filter.is_empty() || s.path.contains(&self.filter))
            .map(|s| {
                let (pkt_rate, byte_rate) = self.rates.get(&s.path).copied().unwrap_or_default();
                Row {
                    stat: s.clone(),
                    pkt_rate,
                    byte_rate,
                }
            })
            .collect();
        let by_path = |a: &Row, b: &Row| a.stat.path.cmp(&b.stat.path);
        match self.sort {
            SortKey::Traffic => rows.sort_by(|a, b| {
                b.stat
                    .packets()
                    .cmp(&a.stat.packets())
                    .then(b.stat.bytes().cmp(&a.stat.bytes()))
                    .then(by_path(a, b))
            }),
            SortKey::Rate => rows.sort_by(|a, b| {
                b.pkt_rate
                    .total_cmp(&a.pkt_rate)
                    .then(b.stat.packets().cmp(&a.stat.packets()))
                    .then(by_path(a, b))
            }),
            SortKey::Drops => rows.sort_by(|a, b| {
                b.stat
                    .drop_packets
                    .cmp(&a.stat.drop_packets)
                    .then(by_path(a, b))
            }),
            SortKey::Recent => rows.sort_by(|a, b| {
                a.stat
                    .last_seen_ago
                    .cmp(&b.stat.last_seen_ago)
                    .then(by_path(a, b))
            }),
            SortKey::Name => rows.sort_by(by_path),
        }
        self.rows = rows;
        self.selected = keep
            .and_then(|p| self.rows.iter().position(|r| r.stat.path == p))
            .unwrap_or(self.selected)
            .min(self.rows.len().saturating_sub(1));
    }

    /// Adds an `action` rule for every protocol of the selected program; the message says which
    /// `e7` line ran, or why it failed.
    fn add_rule(&mut self, kernel: &mut dyn Kernel, action: Action) -> Flow {
        let Some(path) = self.selected_path().map(str::to_string) else {
            self.message = "no program selected".into();
            return Flow::Continue;
        };
        let any = Const::Any.value();
        let line = grammar::rule_line(action, any, &path, &Qualifiers::NONE);
        let change = Change::AddRule {
            action,
            prot: any,
            path,
        };
        self.message = match kernel.call(&Op::Change(change)) {
            Ok(_) => {
                // An admin request subscribes the socket to events; this view does not read
                // them, so leave at once rather than let them fill the buffer.
                let _ = kernel.call(&Op::Disconnect);
                format!("ran: e7 {line}")
            }
            Err(e) => format!("e7 {line}: {e}"),
        };
        Flow::Refresh
    }

    /// Answers one key.
    pub fn key(&mut self, kernel: &mut dyn Kernel, key: Key) -> Flow {
        if let Some(text) = self.editing.as_mut() {
            match key {
                Key::Enter => {
                    self.filter = std::mem::take(text);
                    self.editing = None;
                    self.selected = 0;
                    self.rebuild();
                }
                Key::Esc => self.editing = None,
                Key::Backspace => {
                    text.pop();
                }
                Key::Char(c) if !c.is_control() => text.push(c),
                _ => {}
            }
            return Flow::Continue;
        }
        match key {
            Key::Char('q') | Key::Esc => return Flow::Quit,
            Key::Char('s') => {
                self.sort = self.sort.next();
                self.rebuild();
            }
            Key::Char('/') => self.editing = Some(self.filter.clone()),
            Key::Char('c') => {
                self.filter.clear();
                self.rebuild();
            }
            Key::Up | Key::Char('k') => self.selected = self.selected.saturating_sub(1),
            Key::Down | Key::Char('j') if self.selected + 1 < self.rows.len() => {
                self.selected += 1;
            }
            Key::Char('b') => return self.add_rule(kernel, Action::Block),
            Key::Char('a') => return self.add_rule(kernel, Action::Allow),
            Key::Char('r') => return Flow::Refresh,
            _ => {}
        }
        Flow::Continue
    }
}

/// `s` cut to `width` characters, keeping its end (a path's file name) behind a `…`.
fn tail(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let skip = n - (width - 1);
    std::iter::once('…').chain(s.chars().skip(skip)).collect()
}

/// "Decided by" for a narrow column: a rule as `ACTION PROTO …tail of its path`, else the words.
fn decided_short(s: &ProgStat, rules: Option<&RuleSet>, width: usize) -> String {
    if s.reason == e7_proto::stats::Reason::Rule {
        if let Some(r) = rules.and_then(|r| stats::matching_rule(r, &s.path, s.prot)) {
            let head = format!("{} {} ", r.action.alias(), grammar::protocol_word(r.prot));
            let room = width.saturating_sub(head.chars().count());
            return format!("{head}{}", tail(&r.path, room));
        }
    }
    tail(&stats::decided_by(s, rules), width)
}

/// A byte count for a narrow column (at most 6 characters): `980B`, `4.8K`, `115K`, `3.0M`.
fn bytes_short(n: f64) -> String {
    const UNITS: [&str; 6] = ["B", "K", "M", "G", "T", "P"];
    let mut v = n;
    let mut unit = 0;
    while v >= 999.5 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{v:.0}B")
    } else if v < 9.95 {
        format!("{v:.1}{}", UNITS[unit])
    } else {
        format!("{v:.0}{}", UNITS[unit])
    }
}

/// A count for a narrow column (at most 6 characters): `999999`, `1.2M`, `35M`.
fn count_short(n: u64) -> String {
    if n < 1_000_000 {
        return n.to_string();
    }
    let (v, unit) = if n < 1_000_000_000 {
        (n as f64 / 1e6, "M")
    } else {
        (n as f64 / 1e9, "G")
    };
    if v < 9.95 {
        format!("{v:.1}{unit}")
    } else {
        format!("{v:.0}{unit}")
    }
}

/// A rate for a narrow column: `0`, `12`, `3.4k`, `1.2M`.
fn rate_text(v: f64) -> String {
    if v < 10.0 {
        let r = (v * 10.0).round() / 10.0;
        if r == r.trunc() {
            format!("{r:.0}")
        } else {
            format!("{r:.1}")
        }
    } else if v < 1000.0 {
        format!("{v:.0}")
    } else if v < 1_000_000.0 {
        format!("{:.1}k", v / 1000.0)
    } else {
        format!("{:.1}M", v / 1_000_000.0)
    }
}

/// Draws the view (any size; laid out for 80×24 and up).
pub fn draw(f: &mut Frame<'_>, top: &Top, mode: Option<u32>) {
    let area = f.area();
    let [head, body, detail, msg, help] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(2),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let mode = mode.map_or("?".into(), |m| grammar::value_word(Flag::Mode, m));
    let filter = match &top.editing {
        Some(t) => format!("  filter: {t}_"),
        None if !top.filter.is_empty() => format!("  filter: {}", top.filter),
        None => String::new(),
    };
    f.render_widget(
        Paragraph::new(format!(
            "e7 top  mode {mode}  {} programs  sort: {}{filter}",
            top.rows.len(),
            top.sort.word()
        ))
        .style(Style::default().add_modifier(Modifier::BOLD)),
        head,
    );

    // Fixed columns; the program gets what is left.
    let fixed: [u16; 8] = [5, 16, 5, 6, 6, 6, 6, 4];
    let spacing = 1u16;
    // One more column for the selection mark (`>`), which plain text captures show too.
    let used: u16 = fixed.iter().sum::<u16>() + spacing * fixed.len() as u16 + 1;
    let prog_w = body.width.saturating_sub(used).max(8);
    let header = TableRow::new(
        [
            "PROGRAM",
            "VERD",
            "DECIDED BY",
            "PKT/s",
            "B/s",
            "PKTS",
            "DROP",
            "BYTES",
            "LAST",
        ]
        .map(Cell::from),
    )
    .style(Style::default().add_modifier(Modifier::REVERSED));
    let rows = top.rows.iter().map(|r| {
        let s = &r.stat;
        TableRow::new([
            Cell::from(tail(&s.path, usize::from(prog_w))),
            Cell::from(stats::verdict_word(s.verdict)),
            Cell::from(decided_short(s, top.rules.as_ref(), 16)),
            Cell::from(Line::from(rate_text(r.pkt_rate)).right_aligned()),
            Cell::from(Line::from(bytes_short(r.byte_rate)).right_aligned()),
            Cell::from(Line::from(count_short(s.packets())).right_aligned()),
            Cell::from(Line::from(count_short(s.drop_packets)).right_aligned()),
            Cell::from(Line::from(bytes_short(s.bytes() as f64)).right_aligned()),
            Cell::from(Line::from(stats::ago_text(s.last_seen_ago)).right_aligned()),
        ])
    });
    let widths = std::iter::once(Constraint::Length(prog_w))
        .chain(fixed.iter().map(|&w| Constraint::Length(w)))
        .collect::<Vec<_>>();
    let table = Table::new(rows, widths)
        .header(header)
        .column_spacing(spacing)
        .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED))
        .highlight_symbol(">")
        .highlight_spacing(ratatui::widgets::HighlightSpacing::Always);
    let mut state = TableState::default();
    if !top.rows.is_empty() {
        state.select(Some(top.selected));
    }
    f.render_stateful_widget(table, body, &mut state);

    let detail_text = match top.rows.get(top.selected) {
        Some(r) => {
            let s = &r.stat;
            format!(
                "{} {}: {} by {}; {} accepted ({}), {} dropped ({}); first {} ago",
                grammar::protocol_word(s.prot),
                s.path,
                stats::verdict_word(s.verdict),
                stats::decided_by(s, top.rules.as_ref()),
                s.accept_packets,
                stats::bytes_text(s.accept_bytes),
                s.drop_packets,
                stats::bytes_text(s.drop_bytes),
                stats::ago_text(s.first_seen_ago)
            )
        }
        None => "no program has sent a packet while filtering was on".into(),
    };
    f.render_widget(Paragraph::new(detail_text), detail);
    f.render_widget(Paragraph::new(top.message.as_str()), msg);
    let keys = if top.root {
        "q quit  s sort  / filter  c clear  ↑↓ select  b block  a allow  r refresh"
    } else {
        "q quit  s sort  / filter  c clear  ↑↓ select  r refresh  (root: b block, a allow)"
    };
    f.render_widget(
        Paragraph::new(keys).style(Style::default().add_modifier(Modifier::DIM)),
        help,
    );
}

/// The smallest terminal the view is drawn in (else: the plain table).
pub const MIN_WIDTH: u16 = 60;
/// See [`MIN_WIDTH`].
pub const MIN_HEIGHT: u16 = 10;

/// `e7 top`: the full-screen view on a terminal, else the plain table every interval.
pub fn run(kernel: &mut dyn Kernel, opts: Options) -> Result<(), CliError> {
    if !std::io::stdout().is_terminal() {
        return plain(kernel, opts);
    }
    // A terminal that does not know its size (a serial console says 0×0) cannot hold the view.
    match crossterm::terminal::size() {
        Ok((w, h)) if w >= MIN_WIDTH && h >= MIN_HEIGHT => {}
        other => {
            let size = other.map_or("unknown".into(), |(w, h)| format!("{w}×{h}"));
            eprintln!(
                "e7 top: the terminal's size is {size} (need {MIN_WIDTH}×{MIN_HEIGHT}; on a serial \
                 console set it with `stty cols 80 rows 24`); printing the table every interval"
            );
            return plain(kernel, opts);
        }
    }
    let root = nix::unistd::geteuid().is_root();
    let mut top = Top::new(root);
    // The first read fails before the screen is taken (not loaded, not permitted).
    top.refresh(kernel, Duration::ZERO)?;
    let mut terminal = ratatui::init();
    let r = screen(kernel, &mut top, opts, &mut terminal);
    ratatui::restore();
    r
}

/// The refresh/key loop on the terminal.
fn screen(
    kernel: &mut dyn Kernel,
    top: &mut Top,
    opts: Options,
    terminal: &mut ratatui::DefaultTerminal,
) -> Result<(), CliError> {
    use crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
    let io = |e: std::io::Error| CliError::Failed(format!("terminal: {e}"));
    let mut last = Instant::now();
    loop {
        let mode = kernel::get(kernel, Flag::Mode).ok();
        terminal.draw(|f| draw(f, top, mode)).map_err(io)?;
        if opts.count.is_some_and(|n| top.refreshes >= n) {
            return Ok(());
        }
        let due = last + opts.interval;
        let mut flow = Flow::Continue;
        let wait = due.saturating_duration_since(Instant::now());
        if event::poll(wait).map_err(io)? {
            if let Event::Key(k) = event::read().map_err(io)? {
                if k.kind != KeyEventKind::Release {
                    let key = match k.code {
                        KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => {
                            return Ok(())
                        }
                        KeyCode::Char(c) => Some(Key::Char(c)),
                        KeyCode::Up => Some(Key::Up),
                        KeyCode::Down => Some(Key::Down),
                        KeyCode::Enter => Some(Key::Enter),
                        KeyCode::Esc => Some(Key::Esc),
                        KeyCode::Backspace => Some(Key::Backspace),
                        _ => None,
                    };
                    if let Some(key) = key {
                        flow = top.key(kernel, key);
                    }
                }
            }
        }
        match flow {
            Flow::Quit => return Ok(()),
            Flow::Refresh => {}
            Flow::Continue if Instant::now() < due => continue,
            Flow::Continue => {}
        }
        let now = Instant::now();
        if let Err(e) = top.refresh(kernel, now - last) {
            top.message = format!("refresh failed: {e}");
        }
        last = now;
    }
}

/// Not a terminal: the `e7 stats` table every interval, sorted by traffic.
fn plain(kernel: &mut dyn Kernel, opts: Options) -> Result<(), CliError> {
    let start = Instant::now();
    let mut n = 0u64;
    loop {
        let mut list = kernel::stats(kernel)?;
        let rules = kernel::query(kernel).ok();
        stats::sort_by_traffic(&mut list);
        let mut out = std::io::stdout().lock();
        let text = format!(
            "e7 top  {:.0}s  {} programs\n{}\n",
            start.elapsed().as_secs_f64(),
            list.len(),
            stats::table(&list, rules.as_ref())
        );
        if out
            .write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            // The reader went away (`e7 top | head`): done.
            return Ok(());
        }
        n += 1;
        if opts.count.is_some_and(|c| n >= c) {
            return Ok(());
        }
        std::thread::sleep(opts.interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeKernel;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    fn screen_text(top: &Top, k: &mut FakeKernel) -> String {
        let mode = kernel::get(k, Flag::Mode).ok();
        let mut t = Terminal::new(TestBackend::new(80, 24)).unwrap();
        t.draw(|f| draw(f, top, mode)).unwrap();
        let buf = t.backend().buffer().clone();
        let mut out = String::new();
        for y in 0..buf.area.height {
            for x in 0..buf.area.width {
                out.push_str(buf[(x, y)].symbol());
            }
            out.push('\n');
        }
        out
    }

    fn enabled() -> FakeKernel {
        let mut k = FakeKernel::new();
        k.flags[Flag::Mode.index() as usize] = Const::Enabled.value();
        k
    }

    #[test]
    fn rows_are_sorted_by_traffic_with_rates_and_the_block_key_blocks() {
        let mut k = enabled();
        k.traffic("/usr/bin/e7-probe", 6, 3, 60);
        k.traffic("/opt/a/e7-probe", 17, 10, 100);
        let mut top = Top::new(true);
        top.refresh(&mut k, Duration::ZERO).unwrap();
        k.traffic("/opt/a/e7-probe", 17, 4, 100);
        top.refresh(&mut k, Duration::from_secs(2)).unwrap();
        assert_eq!(top.rows[0].stat.path, "/opt/a/e7-probe");
        assert_eq!(top.rows[0].stat.accept_packets, 14);
        assert_eq!(top.rows[0].pkt_rate, 2.0);
        assert_eq!(top.rows[1].pkt_rate, 0.0);
        let text = screen_text(&top, &mut k);
        assert!(text.lines().count() == 24 && text.lines().all(|l| l.chars().count() == 80));
        let row = text
            .lines()
            .find(|l| l.starts_with(">/opt/a/e7-probe"))
            .unwrap_or_else(|| panic!("no row for /opt/a/e7-probe:\n{text}"));
        assert!(
            row.contains("allow") && row.contains("no rule") && row.contains(" 14 "),
            "{row}"
        );

        assert_eq!(top.key(&mut k, Key::Char('b')), Flow::Refresh);
        assert_eq!(top.message, "ran: e7 block any /opt/a/e7-probe");
        assert!(k
            .rules
            .iter()
            .any(|r| r.path == "/opt/a/e7-probe" && r.action == Action::Block));
        assert_eq!(k.traffic("/opt/a/e7-probe", 17, 2, 100), Action::Block);
        top.refresh(&mut k, Duration::from_secs(2)).unwrap();
        let text = screen_text(&top, &mut k);
        let row = text
            .lines()
            .find(|l| l.starts_with(">/opt/a/e7-probe"))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(row.contains("block block any …"), "{row}");
        assert!(text.contains("ran: e7 block any /opt/a/e7-probe"), "{text}");
    }

    #[test]
    fn filter_sort_and_selection_keys() {
        let mut k = enabled();
        k.traffic("/opt/a/e7-probe", 17, 1, 10);
        k.traffic("/opt/b/e7-probe", 17, 5, 10);
        k.traffic("/usr/bin/curl", 6, 3, 10);
        let mut top = Top::new(false);
        top.refresh(&mut k, Duration::ZERO).unwrap();
        assert_eq!(top.selected_path(), Some("/opt/b/e7-probe"));
        top.key(&mut k, Key::Down);
        assert_eq!(top.selected_path(), Some("/usr/bin/curl"));
        top.key(&mut k, Key::Char('s')); // rate: all 0 → packets
        top.key(&mut k, Key::Char('s')); // drops
        top.key(&mut k, Key::Char('s')); // recent
        top.key(&mut k, Key::Char('s')); // name
        assert_eq!(top.sort, SortKey::Name);
        assert_eq!(top.rows[0].stat.path, "/opt/a/e7-probe");
        assert_eq!(
            top.selected_path(),
            Some("/usr/bin/curl"),
            "selection follows the program"
        );
        for c in "/opt/".chars() {
            top.key(&mut k, Key::Char(c));
        }
        // `/` started the filter; the rest were typed into it.
        assert_eq!(top.editing.as_deref(), Some("opt/"));
        top.key(&mut k, Key::Enter);
        assert_eq!(top.rows.len(), 2);
        assert!(top.rows.iter().all(|r| r.stat.path.starts_with("/opt/")));
        top.key(&mut k, Key::Char('c'));
        assert_eq!(top.rows.len(), 3);
        assert_eq!(top.key(&mut k, Key::Char('q')), Flow::Quit);
    }

    #[test]
    fn an_unprivileged_block_key_reports_the_refusal() {
        let mut k = enabled();
        k.flags[Flag::StatsUnpriv.index() as usize] = Const::Enabled.value();
        k.traffic("/opt/a/e7-probe", 17, 1, 10);
        k.privileged = false;
        let mut top = Top::new(false);
        top.refresh(&mut k, Duration::ZERO).unwrap();
        top.key(&mut k, Key::Char('b'));
        assert!(
            top.message.starts_with("e7 block any /opt/a/e7-probe: "),
            "{}",
            top.message
        );
        assert!(k.rules.is_empty());
        k.flags[Flag::StatsUnpriv.index() as usize] = Const::Disabled.value();
        assert!(
            top.refresh(&mut k, Duration::ZERO).is_err(),
            "admin only again"
        );
    }

    #[test]
    fn long_paths_keep_their_file_name() {
        assert_eq!(tail("/very/long/path/to/prog", 10), "…h/to/prog");
        assert_eq!(tail("/a", 10), "/a");
        assert_eq!(rate_text(0.0), "0");
        assert_eq!(rate_text(2.5), "2.5");
        assert_eq!(rate_text(2.0), "2");
        assert_eq!(rate_text(1234.0), "1.2k");
        assert_eq!(bytes_short(980.0), "980B");
        assert_eq!(bytes_short(117_600.0), "115K");
        assert_eq!(bytes_short(4_915.0), "4.8K");
        assert_eq!(bytes_short(3_150_000.0), "3.0M");
        assert_eq!(count_short(999_999), "999999");
        assert_eq!(count_short(1_234_567), "1.2M");
        assert!(bytes_short(1e18).len() <= 6);
    }
}
