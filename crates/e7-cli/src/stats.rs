//! `e7 stats`: the module's per-program statistics as a table or JSON, and what `e7 top` shows
//! per row.
//!
//! The kernel reports, per program, packets and bytes accepted and dropped, when it was first and
//! last seen, and the verdict and reason of its latest packet (a STATS dump). Which *rule* decided
//! it is not on the wire (the kernel knows only "a rule matched"): it is found here in the rule
//! table (QUERY) the same way for the table, the JSON and `e7 top`, so all three agree.

use crate::grammar::{self, Action};
use crate::kernel::{ProgStat, Rule, RuleSet};
use e7_proto::stats::Reason;
use serde_json::{json, Value};

/// The plain rule that matches `path` and `prot` in `rules`, as the module picks it: an exact
/// path before any folder, a longer folder before a shorter one, the packet's own protocol before
/// `any`. Qualified rules are not considered (their match depends on the destination).
pub fn matching_rule<'a>(rules: &'a RuleSet, path: &str, prot: u32) -> Option<&'a Rule> {
    let any = e7_proto::Const::Any.value();
    rules
        .rules
        .iter()
        .filter(|r| r.qual.is_none() && (r.prot == prot || r.prot == any))
        .filter(|r| r.path == path || (r.path.ends_with('/') && path.starts_with(&r.path)))
        .max_by_key(|r| (r.path == path, r.path.len(), r.prot == prot))
}

/// What decided the program's latest packet, in words: the rule's `e7` line, `no rule`, or the
/// flag that applied.
pub fn decided_by(stat: &ProgStat, rules: Option<&RuleSet>) -> String {
    match stat.reason {
        Reason::Rule => match rules.and_then(|r| matching_rule(r, &stat.path, stat.prot)) {
            Some(r) => grammar::rule_line(r.action, r.prot, &r.path, &r.qual),
            None => "a rule (since changed)".into(),
        },
        Reason::NoRule => "no rule".into(),
        Reason::NsPath => "nspath flag".into(),
        Reason::LongPath => "longpath flag".into(),
        Reason::Other => "mode/other".into(),
    }
}

/// A byte count for people: `512 B`, `1.5 KiB`, `20.0 MiB`.
pub fn bytes_text(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// Seconds ago for people: `5s`, `3m`, `2h`, `4d`.
pub fn ago_text(secs: u32) -> String {
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m", secs / 60),
        3600..=86_399 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

/// The verdict word (`allow`/`block`).
pub fn verdict_word(a: Action) -> &'static str {
    a.alias()
}

/// One program as JSON (the fields of `e7 --json stats`).
pub fn stat_json(stat: &ProgStat, rules: Option<&RuleSet>) -> Value {
    let rule = match stat.reason {
        Reason::Rule => rules
            .and_then(|r| matching_rule(r, &stat.path, stat.prot))
            .map(|r| Value::String(grammar::rule_line(r.action, r.prot, &r.path, &r.qual))),
        _ => None,
    };
    json!({
        "path": stat.path,
        "protocol": grammar::protocol_word(stat.prot),
        "verdict": verdict_word(stat.verdict),
        "reason": stat.reason.word(),
        "rule": rule,
        "accepted": { "packets": stat.accept_packets, "bytes": stat.accept_bytes },
        "dropped": { "packets": stat.drop_packets, "bytes": stat.drop_bytes },
        "first_seen_secs_ago": stat.first_seen_ago,
        "last_seen_secs_ago": stat.last_seen_ago,
    })
}

/// Sorts by traffic: most packets first, then most bytes, then path (a stable, total order).
pub fn sort_by_traffic(stats: &mut [ProgStat]) {
    stats.sort_by(|a, b| {
        b.packets()
            .cmp(&a.packets())
            .then(b.bytes().cmp(&a.bytes()))
            .then(a.path.cmp(&b.path))
    });
}

/// The plain table of `e7 stats` (and of `e7 top` when stdout is not a terminal).
pub fn table(stats: &[ProgStat], rules: Option<&RuleSet>) -> String {
    let mut rows: Vec<[String; 8]> = vec![[
        "PROGRAM".into(),
        "PROTO".into(),
        "VERDICT".into(),
        "DECIDED BY".into(),
        "ACCEPTED".into(),
        "DROPPED".into(),
        "BYTES".into(),
        "LAST".into(),
    ]];
    for s in stats {
        rows.push([
            s.path.clone(),
            grammar::protocol_word(s.prot),
            verdict_word(s.verdict).into(),
            decided_by(s, rules),
            s.accept_packets.to_string(),
            s.drop_packets.to_string(),
            bytes_text(s.bytes()),
            ago_text(s.last_seen_ago),
        ]);
    }
    let mut widths = [0usize; 8];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for (i, (c, w)) in r.iter().zip(widths).enumerate() {
            // Numbers right-aligned, words left.
            let cell = if (4..=6).contains(&i) {
                format!("{c:>w$}")
            } else {
                format!("{c:<w$}")
            };
            line.push_str(&cell);
            if i + 1 < r.len() {
                line.push_str("  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    if stats.is_empty() {
        out.push_str("(no program has sent a packet while filtering was on)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use e7_proto::qual::Qualifiers;

    fn rule(action: Action, prot: u32, path: &str) -> Rule {
        Rule {
            action,
            prot,
            path: path.into(),
            qual: Qualifiers::NONE,
        }
    }

    fn stat(path: &str, prot: u32, reason: Reason) -> ProgStat {
        ProgStat {
            path: path.into(),
            prot,
            verdict: Action::Block,
            reason,
            accept_packets: 3,
            accept_bytes: 3000,
            drop_packets: 2,
            drop_bytes: 120,
            first_seen_ago: 100,
            last_seen_ago: 2,
        }
    }

    #[test]
    fn the_rule_that_decided_is_the_most_specific_match() {
        let set = RuleSet {
            mode: e7_proto::Const::Enabled.value(),
            rules: vec![
                rule(Action::Allow, e7_proto::Const::Any.value(), "/opt/"),
                rule(Action::Block, 17, "/opt/a/"),
                rule(Action::Allow, 6, "/opt/a/e7-probe"),
            ],
        };
        let s = stat("/opt/a/e7-probe", 17, Reason::Rule);
        assert_eq!(decided_by(&s, Some(&set)), "block udp /opt/a/");
        let s = stat("/opt/a/e7-probe", 6, Reason::Rule);
        assert_eq!(decided_by(&s, Some(&set)), "allow tcp /opt/a/e7-probe");
        let s = stat("/opt/b/x", 1, Reason::Rule);
        assert_eq!(decided_by(&s, Some(&set)), "allow any /opt/");
        assert_eq!(
            decided_by(&stat("/usr/bin/x", 1, Reason::NoRule), Some(&set)),
            "no rule"
        );
    }

    #[test]
    fn table_and_json_carry_the_counts() {
        let s = stat("/opt/a/e7-probe", 17, Reason::NoRule);
        let t = table(std::slice::from_ref(&s), None);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("PROGRAM"));
        assert!(lines[1].starts_with("/opt/a/e7-probe  udp    block"), "{t}");
        assert!(lines[1].contains("no rule"));
        assert!(lines[1].ends_with("2s"));
        let j = stat_json(&s, None);
        assert_eq!(j["accepted"]["packets"], 3);
        assert_eq!(j["dropped"]["bytes"], 120);
        assert_eq!(j["reason"], "norule");
        assert_eq!(j["rule"], Value::Null);
    }

    #[test]
    fn traffic_order_and_units() {
        let mut v = vec![
            stat("/b", 17, Reason::NoRule),
            stat("/a", 17, Reason::NoRule),
        ];
        v[0].accept_packets = 10;
        sort_by_traffic(&mut v);
        assert_eq!(v[0].path, "/b");
        assert_eq!(bytes_text(1023), "1023 B");
        assert_eq!(bytes_text(1536), "1.5 KiB");
        assert_eq!(ago_text(59), "59s");
        assert_eq!(ago_text(120), "2m");
    }
}
