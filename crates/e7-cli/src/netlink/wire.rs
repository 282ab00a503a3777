//! Netlink framing: encoding one generic-netlink request and splitting a received datagram into
//! messages (acks with their extack text, dump ends, overruns, generic-netlink messages).
//!
//! This is plain byte handling with no I/O so it is unit-tested with hand-made datagrams. Every
//! length comes from the peer and is checked; a malformed message is reported, never indexed past.
//! Attribute (TLV) payloads are walked with e7-proto's checked [`AttrIter`].

use e7_proto::nla::{nla_align, AttrIter, Writer};

/// `NLMSG_ERROR`: an ack (error 0) or an error.
pub const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`: the end of a dump.
pub const NLMSG_DONE: u16 = 3;
/// `NLMSG_OVERRUN`: data lost.
pub const NLMSG_OVERRUN: u16 = 4;
/// `GENL_ID_CTRL`: the generic-netlink controller family.
pub const GENL_ID_CTRL: u16 = 0x10;
/// `CTRL_CMD_NEWFAMILY`: the controller's answer to GETFAMILY.
pub const CTRL_CMD_NEWFAMILY: u8 = 1;
/// `CTRL_CMD_GETFAMILY`.
pub const CTRL_CMD_GETFAMILY: u8 = 3;
/// `CTRL_ATTR_FAMILY_ID` (u16).
pub const CTRL_ATTR_FAMILY_ID: u16 = 1;
/// `CTRL_ATTR_FAMILY_NAME` (NUL string).
pub const CTRL_ATTR_FAMILY_NAME: u16 = 2;

/// `NLM_F_REQUEST`.
pub const NLM_F_REQUEST: u16 = 0x1;
/// `NLM_F_MULTI`: part of a multipart (dump) reply.
pub const NLM_F_MULTI: u16 = 0x2;
/// `NLM_F_ACK`: ask for an ack.
pub const NLM_F_ACK: u16 = 0x4;
/// `NLM_F_DUMP_INTR` (on a dump message): the dumped table changed between two messages of
/// the dump, which may therefore have skipped or repeated an entry.
pub const NLM_F_DUMP_INTR: u16 = 0x10;
/// `NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`).
pub const NLM_F_DUMP: u16 = 0x300;
/// `NLM_F_CAPPED` (in an ack): the echoed request is only its header.
pub const NLM_F_CAPPED: u16 = 0x100;
/// `NLM_F_ACK_TLVS` (in an ack): extended-ack attributes follow.
pub const NLM_F_ACK_TLVS: u16 = 0x200;
/// `NLMSGERR_ATTR_MSG`: the extack error text.
pub const NLMSGERR_ATTR_MSG: u16 = 1;

const NLMSG_HDRLEN: usize = 16;
const GENL_HDRLEN: usize = 4;

/// One message out of a received datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// `NLMSG_ERROR`: the answer to a request sent with `NLM_F_ACK` (errno 0) or its error.
    Ack {
        /// Sequence number of the request.
        seq: u32,
        /// Positive errno, 0 for success.
        errno: i32,
        /// The extended-ack message, when the kernel gave one.
        text: Option<String>,
    },
    /// `NLMSG_DONE`: the end of a dump (errno non-zero when the dump failed).
    Done {
        /// Sequence number of the dump request.
        seq: u32,
        /// Positive errno, 0 for success.
        errno: i32,
        /// The extended-ack message, if any.
        text: Option<String>,
        /// `NLM_F_DUMP_INTR` was set on it: the dump is inconsistent (the kernel checks
        /// consistency on `NLMSG_DONE` too).
        interrupted: bool,
    },
    /// `NLMSG_OVERRUN`.
    Overrun,
    /// A generic-netlink message of some family.
    Genl {
        /// Netlink message type = family id.
        family: u16,
        /// Netlink flags.
        flags: u16,
        /// Sequence number (0 for unsolicited messages).
        seq: u32,
        /// Generic-netlink command.
        cmd: u8,
        /// The attributes (everything after the genl header).
        attrs: Vec<u8>,
    },
}

/// Encode one generic-netlink request. `attrs` is a finished attribute buffer.
pub fn encode(family: u16, flags: u16, seq: u32, cmd: u8, version: u8, attrs: &[u8]) -> Vec<u8> {
    let len = NLMSG_HDRLEN + GENL_HDRLEN + attrs.len();
    let mut out = Vec::with_capacity(nla_align(len));
    out.extend_from_slice(&(len as u32).to_ne_bytes());
    out.extend_from_slice(&family.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel
    out.push(cmd);
    out.push(version);
    out.extend_from_slice(&0u16.to_ne_bytes());
    out.extend_from_slice(attrs);
    out.resize(nla_align(len), 0);
    out
}

/// Encode the controller request that resolves a family name to its id.
pub fn encode_get_family(seq: u32, name: &str) -> Vec<u8> {
    let mut buf = [0u8; 64];
    let mut w = Writer::new(&mut buf);
    // The name is a compile-time constant far shorter than the buffer.
    let attrs: &[u8] = match w.put_str(CTRL_ATTR_FAMILY_NAME, name) {
        Ok(()) => w.into_bytes(),
        Err(_) => &[],
    };
    encode(
        GENL_ID_CTRL,
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        CTRL_CMD_GETFAMILY,
        1,
        attrs,
    )
}

/// The family id in a controller `NEWFAMILY` answer.
pub fn family_id(attrs: &[u8]) -> Option<u16> {
    AttrIter::new(attrs).filter_map(Result::ok).find_map(|a| {
        if a.kind == CTRL_ATTR_FAMILY_ID {
            <[u8; 2]>::try_from(a.payload).ok().map(u16::from_ne_bytes)
        } else {
            None
        }
    })
}

fn u32_at(buf: &[u8], at: usize) -> Option<u32> {
    buf.get(at..at + 4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_ne_bytes)
}

fn u16_at(buf: &[u8], at: usize) -> Option<u16> {
    buf.get(at..at + 2)
        .and_then(|b| <[u8; 2]>::try_from(b).ok())
        .map(u16::from_ne_bytes)
}

fn ext_text(tlvs: &[u8]) -> Option<String> {
    AttrIter::new(tlvs).filter_map(Result::ok).find_map(|a| {
        if a.kind == NLMSGERR_ATTR_MSG {
            let text = a.payload.split(|&b| b == 0).next().unwrap_or(&[]);
            Some(String::from_utf8_lossy(text).into_owned())
        } else {
            None
        }
    })
}

/// Parse an `NLMSG_ERROR` payload: errno, then the echoed request, then extack TLVs.
fn parse_error(flags: u16, payload: &[u8]) -> Result<(i32, Option<String>), String> {
    let error = u32_at(payload, 0).ok_or("truncated netlink error message")? as i32;
    let mut text = None;
    if flags & NLM_F_ACK_TLVS != 0 {
        let echoed = if flags & NLM_F_CAPPED != 0 {
            NLMSG_HDRLEN
        } else {
            u32_at(payload, 4).unwrap_or(NLMSG_HDRLEN as u32) as usize
        };
        let start = 4 + nla_align(echoed);
        if let Some(tlvs) = payload.get(start..) {
            text = ext_text(tlvs);
        }
    }
    Ok((error.saturating_neg(), text))
}

/// Split one received datagram into its messages. A malformed message ends the walk with an
/// `Err` describing it (the messages before it are kept).
pub fn parse_datagram(buf: &[u8]) -> Vec<Result<Message, String>> {
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < buf.len() {
        let Some(len) = u32_at(buf, offset).map(|l| l as usize) else {
            out.push(Err(format!("truncated netlink header at byte {offset}")));
            break;
        };
        if len < NLMSG_HDRLEN || offset + len > buf.len() {
            out.push(Err(format!(
                "bad netlink message length {len} at byte {offset} of a {}-byte datagram",
                buf.len()
            )));
            break;
        }
        let msg = &buf[offset..offset + len];
        let kind = u16_at(msg, 4).unwrap_or(0);
        let flags = u16_at(msg, 6).unwrap_or(0);
        let seq = u32_at(msg, 8).unwrap_or(0);
        let payload = msg.get(NLMSG_HDRLEN..).unwrap_or(&[]);
        let parsed = match kind {
            NLMSG_ERROR => {
                parse_error(flags, payload).map(|(errno, text)| Message::Ack { seq, errno, text })
            }
            NLMSG_DONE => {
                let errno = u32_at(payload, 0).map_or(0, |e| (e as i32).saturating_neg());
                let text = if flags & NLM_F_ACK_TLVS != 0 {
                    payload.get(4..).and_then(ext_text)
                } else {
                    None
                };
                Ok(Message::Done {
                    seq,
                    errno,
                    text,
                    interrupted: flags & NLM_F_DUMP_INTR != 0,
                })
            }
            NLMSG_OVERRUN => Ok(Message::Overrun),
            1 => {
                // NLMSG_NOOP: skip.
                offset += nla_align(len);
                continue;
            }
            family => match payload.get(..GENL_HDRLEN) {
                Some(hdr) => Ok(Message::Genl {
                    family,
                    flags,
                    seq,
                    cmd: hdr.first().copied().unwrap_or(0),
                    attrs: payload.get(GENL_HDRLEN..).unwrap_or(&[]).to_vec(),
                }),
                None => Err(format!(
                    "generic netlink message of {len} bytes is too short for its header"
                )),
            },
        };
        let failed = parsed.is_err();
        out.push(parsed);
        if failed {
            break;
        }
        offset += nla_align(len);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(seq: u32, error: i32, flags: u16, ext: Option<&str>) -> Vec<u8> {
        let request = encode(0x20, NLM_F_REQUEST | NLM_F_ACK, seq, 4, 1, &[0u8; 8]);
        let mut payload = error.to_ne_bytes().to_vec();
        if flags & NLM_F_CAPPED != 0 {
            payload.extend_from_slice(&request[..16]);
        } else {
            payload.extend_from_slice(&request);
        }
        if let Some(text) = ext {
            let mut buf = [0u8; 128];
            let mut w = Writer::new(&mut buf);
            w.put_str(NLMSGERR_ATTR_MSG, text).unwrap();
            payload.extend_from_slice(w.as_bytes());
        }
        let len = 16 + payload.len();
        let mut out = (len as u32).to_ne_bytes().to_vec();
        out.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        out.extend_from_slice(&flags.to_ne_bytes());
        out.extend_from_slice(&seq.to_ne_bytes());
        out.extend_from_slice(&7u32.to_ne_bytes());
        out.extend_from_slice(&payload);
        out.resize(nla_align(out.len()), 0);
        out
    }

    #[test]
    fn request_encoding_has_headers_and_padding() {
        let m = encode(
            0x1c,
            NLM_F_REQUEST | NLM_F_ACK,
            9,
            4,
            1,
            &[1, 2, 3, 4, 5, 6, 7, 8],
        );
        assert_eq!(m.len(), 28);
        assert_eq!(u32_at(&m, 0), Some(28));
        assert_eq!(u16_at(&m, 4), Some(0x1c));
        assert_eq!(u16_at(&m, 6), Some(5));
        assert_eq!(u32_at(&m, 8), Some(9));
        assert_eq!(&m[16..20], &[4, 1, 0, 0]);
        let g = encode_get_family(1, "eftirlit");
        // 16 + 4 + attr(4 + 9 = 13, padded to 16 by the writer)
        assert_eq!(u32_at(&g, 0), Some(16 + 4 + 16));
        assert_eq!(g.len(), 36);
    }

    #[test]
    fn acks_errors_and_extack_text_are_parsed() {
        let msgs = parse_datagram(&ack(3, 0, 0, None));
        assert_eq!(
            msgs,
            vec![Ok(Message::Ack {
                seq: 3,
                errno: 0,
                text: None
            })]
        );
        let msgs = parse_datagram(&ack(4, -1, 0, None));
        assert_eq!(
            msgs,
            vec![Ok(Message::Ack {
                seq: 4,
                errno: 1,
                text: None
            })]
        );
        for flags in [NLM_F_ACK_TLVS, NLM_F_ACK_TLVS | NLM_F_CAPPED] {
            let msgs = parse_datagram(&ack(5, -22, flags, Some("path must be absolute")));
            assert_eq!(
                msgs,
                vec![Ok(Message::Ack {
                    seq: 5,
                    errno: 22,
                    text: Some("path must be absolute".into())
                })]
            );
        }
    }

    #[test]
    fn several_messages_in_one_datagram() {
        let mut d = encode(0x1c, NLM_F_MULTI, 8, 7, 1, &[]);
        d.extend(ack(8, 0, 0, None));
        let mut done = vec![20, 0, 0, 0];
        done.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
        done.extend_from_slice(&NLM_F_MULTI.to_ne_bytes());
        done.extend_from_slice(&8u32.to_ne_bytes());
        done.extend_from_slice(&0u32.to_ne_bytes());
        done.extend_from_slice(&0i32.to_ne_bytes());
        d.extend(done);
        let msgs = parse_datagram(&d);
        assert_eq!(msgs.len(), 3);
        assert!(matches!(
            msgs[0],
            Ok(Message::Genl {
                family: 0x1c,
                cmd: 7,
                seq: 8,
                flags: NLM_F_MULTI,
                ..
            })
        ));
        assert!(matches!(
            msgs[1],
            Ok(Message::Ack {
                seq: 8,
                errno: 0,
                ..
            })
        ));
        assert_eq!(
            msgs[2],
            Ok(Message::Done {
                seq: 8,
                errno: 0,
                text: None,
                interrupted: false
            })
        );
    }

    #[test]
    fn dump_intr_is_kept_on_parts_and_seen_on_done() {
        let mut d = encode(0x1c, NLM_F_MULTI | NLM_F_DUMP_INTR, 8, 7, 1, &[]);
        let mut done = vec![20, 0, 0, 0];
        done.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
        done.extend_from_slice(&(NLM_F_MULTI | NLM_F_DUMP_INTR).to_ne_bytes());
        done.extend_from_slice(&8u32.to_ne_bytes());
        done.extend_from_slice(&0u32.to_ne_bytes());
        done.extend_from_slice(&0i32.to_ne_bytes());
        d.extend(done);
        let msgs = parse_datagram(&d);
        assert!(matches!(
            msgs[0],
            Ok(Message::Genl { flags, .. }) if flags & NLM_F_DUMP_INTR != 0
        ));
        assert_eq!(
            msgs[1],
            Ok(Message::Done {
                seq: 8,
                errno: 0,
                text: None,
                interrupted: true
            })
        );
    }

    #[test]
    fn malformed_datagrams_are_errors_not_panics() {
        assert!(parse_datagram(&[]).is_empty());
        assert!(parse_datagram(&[1, 2, 3]).first().unwrap().is_err());
        let mut m = encode(0x1c, 0, 0, 8, 1, &[]);
        m[0] = 200; // length beyond the datagram
        assert!(parse_datagram(&m).first().unwrap().is_err());
        let mut m = encode(0x1c, 0, 0, 8, 1, &[]);
        m[0] = 17; // shorter than the genl header
        assert!(parse_datagram(&m[..17]).first().unwrap().is_err());
        // Every truncation of a valid ack parses or errors, never panics.
        let a = ack(5, -22, NLM_F_ACK_TLVS, Some("x"));
        for cut in 0..a.len() {
            let _ = parse_datagram(&a[..cut]);
        }
    }

    #[test]
    fn family_id_is_read_from_the_controller_answer() {
        let mut buf = [0u8; 64];
        let mut w = Writer::new(&mut buf);
        w.put_str(CTRL_ATTR_FAMILY_NAME, "eftirlit").unwrap();
        w.put_bytes(CTRL_ATTR_FAMILY_ID, &0x1cu16.to_ne_bytes())
            .unwrap();
        assert_eq!(family_id(w.as_bytes()), Some(0x1c));
        assert_eq!(family_id(&[]), None);
    }
}
