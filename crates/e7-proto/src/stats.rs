//! Per-program statistics: the STATS command's entries (issue 12).
//!
//! Why a module of its own: the module keeps per-CPU counters per executable and a STATS dump
//! reports one NESTED entry per program that sent packets; the kernel writes the entries with
//! [`emit_entry`] and the CLI reads them with [`parse_entries`], so both sides share one
//! description of the entry. Counters are u64 (bytes overflow a u32 within minutes); times are
//! "seconds ago" at the moment the reply was built (the kernel's monotonic clock), so a reader
//! needs no clock of its own and no clock can disagree with another.

use crate::msg::MsgError;
use crate::nla::{AttrIter, WriteError, Writer};
use crate::{Attr, Command, Const};

/// Why a program's latest packet got its verdict: the text of the REASON attribute.
///
/// The words are the flags users know, so `e7 stats` can say which setting decided a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// A rule matched.
    Rule,
    /// No rule matched: the `unkrule` flag decided.
    NoRule,
    /// The executable has no verified path in the initial mount namespace: `nspath`.
    NsPath,
    /// The executable path is too long: `longpath`.
    LongPath,
    /// Anything else (mode `block`, a malformed packet, an owner not yet identified).
    Other,
}

impl Reason {
    /// Every reason.
    pub const ALL: &'static [Reason] = &[
        Reason::Rule,
        Reason::NoRule,
        Reason::NsPath,
        Reason::LongPath,
        Reason::Other,
    ];

    /// The wire text (at most 15 bytes: the REASON attribute's limit).
    pub const fn word(self) -> &'static str {
        match self {
            Reason::Rule => "rule",
            Reason::NoRule => "norule",
            Reason::NsPath => "nspath",
            Reason::LongPath => "longpath",
            Reason::Other => "other",
        }
    }

    /// The reason whose word is `w`.
    pub fn from_word(w: &[u8]) -> Option<Reason> {
        Reason::ALL
            .iter()
            .copied()
            .find(|r| r.word().as_bytes() == w)
    }
}

/// One program's statistics: one NESTED attribute of a STATS reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Entry<'a> {
    /// The executable's path (bytes: Linux paths need not be UTF-8).
    pub path: &'a [u8],
    /// The IP protocol of the program's latest packet.
    pub prot: u32,
    /// The verdict of the latest packet: [`Const::Allow`] or [`Const::Block`]'s value.
    pub state: u32,
    /// Why the latest packet got that verdict.
    pub reason: Reason,
    /// Packets accepted.
    pub accept_packets: u64,
    /// Bytes accepted (IP packet length).
    pub accept_bytes: u64,
    /// Packets dropped.
    pub drop_packets: u64,
    /// Bytes dropped.
    pub drop_bytes: u64,
    /// Seconds from the first counted packet to this reply.
    pub first_seen: u32,
    /// Seconds from the latest packet to this reply.
    pub last_seen: u32,
}

/// Writes one entry as a NESTED attribute; on [`WriteError::Full`] nothing of it is left in `w`.
pub fn emit_entry(w: &mut Writer<'_>, e: &Entry<'_>) -> Result<(), WriteError> {
    let start = w.len();
    let r = (|| {
        let nest = w.nest_start(Attr::Nested.value())?;
        w.put_str(Attr::Path.value(), e.path)?;
        w.put_u32(Attr::Prot.value(), e.prot)?;
        w.put_u32(Attr::State.value(), e.state)?;
        w.put_str(Attr::Reason.value(), e.reason.word())?;
        w.put_u64(Attr::AcceptPackets.value(), e.accept_packets)?;
        w.put_u64(Attr::AcceptBytes.value(), e.accept_bytes)?;
        w.put_u64(Attr::DropPackets.value(), e.drop_packets)?;
        w.put_u64(Attr::DropBytes.value(), e.drop_bytes)?;
        w.put_u32(Attr::FirstSeen.value(), e.first_seen)?;
        w.put_u32(Attr::LastSeen.value(), e.last_seen)?;
        w.nest_end(nest)
    })();
    if r.is_err() {
        w.rollback(start);
    }
    r
}

/// The attributes an entry carries (all required).
const ENTRY_ATTRS: &[Attr] = &[
    Attr::Path,
    Attr::Prot,
    Attr::State,
    Attr::Reason,
    Attr::AcceptPackets,
    Attr::AcceptBytes,
    Attr::DropPackets,
    Attr::DropBytes,
    Attr::FirstSeen,
    Attr::LastSeen,
];

/// Parses one entry nest (validated: every attribute present once, of its kind).
pub fn parse_entry(payload: &[u8]) -> Result<Entry<'_>, MsgError> {
    let command = Command::Stats;
    let mut slots: [Option<crate::nla::RawAttr<'_>>; ENTRY_ATTRS.len()] = [None; ENTRY_ATTRS.len()];
    for raw in AttrIter::new(payload) {
        let raw = raw?;
        let attr = Attr::from_value(raw.kind).ok_or(MsgError::UnknownAttr {
            command,
            kind: raw.kind,
        })?;
        let i = ENTRY_ATTRS
            .iter()
            .position(|&a| a == attr)
            .ok_or(MsgError::UnexpectedAttr {
                command,
                attr,
                request: false,
            })?;
        let slot = slots.get_mut(i).ok_or(MsgError::UnexpectedAttr {
            command,
            attr,
            request: false,
        })?;
        if slot.is_some() {
            return Err(MsgError::DuplicateAttr { command, attr });
        }
        *slot = Some(raw);
    }
    let get = |attr: Attr| {
        ENTRY_ATTRS
            .iter()
            .position(|&a| a == attr)
            .and_then(|i| slots.get(i).copied().flatten())
            .ok_or(MsgError::MissingAttr { command, attr })
    };
    let u64_of = |attr: Attr| -> Result<u64, MsgError> { Ok(get(attr)?.u64()?) };
    let u32_of = |attr: Attr| -> Result<u32, MsgError> { Ok(get(attr)?.u32()?) };
    let state = u32_of(Attr::State)?;
    if state != Const::Allow.value() && state != Const::Block.value() {
        return Err(MsgError::BadState {
            command,
            value: state,
            expected: &[Const::Allow, Const::Block],
        });
    }
    let reason_text = get(Attr::Reason)?.nul_str(15)?;
    Ok(Entry {
        path: get(Attr::Path)?.nul_str(crate::MAX_PATH_LEN)?,
        prot: u32_of(Attr::Prot)?,
        state,
        reason: Reason::from_word(reason_text).unwrap_or(Reason::Other),
        accept_packets: u64_of(Attr::AcceptPackets)?,
        accept_bytes: u64_of(Attr::AcceptBytes)?,
        drop_packets: u64_of(Attr::DropPackets)?,
        drop_bytes: u64_of(Attr::DropBytes)?,
        first_seen: u32_of(Attr::FirstSeen)?,
        last_seen: u32_of(Attr::LastSeen)?,
    })
}

/// A validated STATS message: iterate its entries with [`StatsReply::entries`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StatsReply<'a> {
    attrs: &'a [u8],
}

impl<'a> StatsReply<'a> {
    /// The entries of this message, in order (validated when the message was parsed).
    pub fn entries(&self) -> impl Iterator<Item = Entry<'a>> + 'a {
        AttrIter::new(self.attrs)
            .filter_map(|raw| raw.ok())
            .filter(|raw| raw.kind == Attr::Nested.value())
            .filter_map(|raw| parse_entry(raw.payload).ok())
    }
}

/// Parses and validates a STATS message body: only NESTED entries, each a valid [`Entry`].
pub fn parse_entries(attrs: &[u8]) -> Result<StatsReply<'_>, MsgError> {
    let command = Command::Stats;
    for raw in AttrIter::new(attrs) {
        let raw = raw?;
        if raw.kind != Attr::Nested.value() {
            let attr = Attr::from_value(raw.kind).ok_or(MsgError::UnknownAttr {
                command,
                kind: raw.kind,
            })?;
            return Err(MsgError::UnexpectedAttr {
                command,
                attr,
                request: false,
            });
        }
        parse_entry(raw.payload)?;
    }
    Ok(StatsReply { attrs })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Entry<'static> {
        Entry {
            path: b"/opt/a/e7-probe",
            prot: 17,
            state: Const::Block.value(),
            reason: Reason::Rule,
            accept_packets: 5,
            accept_bytes: 5 * 60,
            drop_packets: 1 << 33,
            drop_bytes: u64::MAX,
            first_seen: 90,
            last_seen: 3,
        }
    }

    #[test]
    fn entries_round_trip() {
        let mut buf = [0u8; 1024];
        let mut w = Writer::new(&mut buf);
        emit_entry(&mut w, &sample()).unwrap();
        let mut other = sample();
        other.path = b"/usr/bin/e7-probe";
        other.state = Const::Allow.value();
        other.reason = Reason::NoRule;
        emit_entry(&mut w, &other).unwrap();
        let n = w.len();
        let reply = parse_entries(&buf[..n]).unwrap();
        let crate::msg::Reply::Stats(via_reply) =
            crate::msg::parse_reply(Command::Stats.value(), &buf[..n]).unwrap()
        else {
            panic!("STATS parses as a STATS reply");
        };
        assert!(via_reply.entries().eq(reply.entries()));
        let mut got = reply.entries();
        assert_eq!(got.next(), Some(sample()));
        assert_eq!(got.next(), Some(other));
        assert_eq!(got.next(), None);
    }

    #[test]
    fn full_buffer_leaves_nothing() {
        let mut buf = [0u8; 64];
        let mut w = Writer::new(&mut buf);
        assert_eq!(emit_entry(&mut w, &sample()), Err(WriteError::Full));
        assert_eq!(w.len(), 0);
    }

    #[test]
    fn missing_or_bad_attributes_are_refused() {
        let mut buf = [0u8; 512];
        let mut w = Writer::new(&mut buf);
        let nest = w.nest_start(Attr::Nested.value()).unwrap();
        w.put_str(Attr::Path.value(), "/bin/x").unwrap();
        w.nest_end(nest).unwrap();
        let n = w.len();
        assert!(matches!(
            parse_entries(&buf[..n]),
            Err(MsgError::MissingAttr { .. })
        ));
        let mut bad = sample();
        bad.state = 7;
        let mut buf = [0u8; 512];
        let mut w = Writer::new(&mut buf);
        emit_entry(&mut w, &bad).unwrap();
        let n = w.len();
        assert!(matches!(
            parse_entries(&buf[..n]),
            Err(MsgError::BadState { value: 7, .. })
        ));
    }

    #[test]
    fn reason_words_fit_the_attribute() {
        for r in Reason::ALL {
            assert!(r.word().len() <= 15);
            assert_eq!(Reason::from_word(r.word().as_bytes()), Some(*r));
        }
    }
}
