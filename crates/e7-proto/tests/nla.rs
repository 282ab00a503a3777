//! The checked TLV reader and writer.

use e7_proto::nla::{
    nla_align, AttrIter, ParseError, RawAttr, WriteError, Writer, NLA_F_NESTED, NLA_F_NET_BYTEORDER,
};

/// Builds one attribute by hand: header, payload, zero padding.
fn attr(nla_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
    v.extend_from_slice(&nla_type.to_ne_bytes());
    v.extend_from_slice(payload);
    while v.len() % 4 != 0 {
        v.push(0);
    }
    v
}

fn all(buf: &[u8]) -> Vec<Result<RawAttr<'_>, ParseError>> {
    AttrIter::new(buf).collect()
}

#[test]
fn align() {
    assert_eq!([0, 1, 2, 3, 4, 5, 8].map(nla_align), [0, 4, 4, 4, 4, 8, 8]);
    assert_eq!(nla_align(usize::MAX), usize::MAX & !3);
}

#[test]
fn reads_attributes_and_masks_flag_bits() {
    let mut buf = attr(3, &7u32.to_ne_bytes());
    buf.extend(attr(2 | NLA_F_NET_BYTEORDER, b"/bin/ls\0"));
    buf.extend(attr(1 | NLA_F_NESTED, &attr(5, &1u32.to_ne_bytes())));
    let v = all(&buf);
    assert_eq!(v.len(), 3);
    let a = v[0].unwrap();
    assert_eq!((a.kind, a.nested, a.u32()), (3, false, Ok(7)));
    let b = v[1].unwrap();
    assert_eq!((b.kind, b.nested), (2, false));
    assert_eq!(b.nul_str(255), Ok(&b"/bin/ls"[..]));
    assert_eq!(b.str(255), Ok("/bin/ls"));
    let c = v[2].unwrap();
    assert_eq!((c.kind, c.nested), (1, true));
    let inner: Vec<_> = c.nested().map(|r| r.unwrap().u32().unwrap()).collect();
    assert_eq!(inner, [1]);
}

#[test]
fn empty_buffer_has_no_attributes() {
    assert!(all(&[]).is_empty());
    assert_eq!(AttrIter::check(&[]), Ok(()));
}

#[test]
fn last_attribute_may_omit_padding() {
    let mut buf = attr(2, b"ab\0");
    assert_eq!(buf.len(), 8);
    buf.truncate(7);
    let v = all(&buf);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].unwrap().nul_str(10), Ok(&b"ab"[..]));
}

#[test]
fn header_errors() {
    // 1..3 trailing bytes.
    for n in 1..4 {
        let mut buf = attr(3, &[0; 4]);
        buf.extend(std::iter::repeat_n(0xEE, n));
        let v = all(&buf);
        assert_eq!(v.len(), 2);
        assert_eq!(
            v[1],
            Err(ParseError::TruncatedHeader {
                offset: 8,
                remaining: n
            })
        );
    }
    // nla_len < 4.
    for len in 0u16..4 {
        let mut buf = len.to_ne_bytes().to_vec();
        buf.extend(3u16.to_ne_bytes());
        assert_eq!(
            all(&buf),
            [Err(ParseError::LengthTooShort {
                offset: 0,
                nla_len: len
            })]
        );
    }
    // nla_len past the end.
    let mut buf = attr(2, b"hello\0");
    buf.truncate(9);
    assert_eq!(
        all(&buf),
        [Err(ParseError::LengthOverrun {
            offset: 0,
            nla_len: 10,
            remaining: 9
        })]
    );
    // The iterator stops after the first error.
    let mut buf = vec![2, 0, 0, 0];
    buf.extend(attr(3, &[0; 4]));
    assert_eq!(all(&buf).len(), 1);
}

#[test]
fn u32_payload_must_be_exactly_four_bytes() {
    for n in [0usize, 1, 3, 5, 8] {
        let buf = attr(4, &vec![1; n]);
        let a = all(&buf)[0].unwrap();
        assert_eq!(a.u32(), Err(ParseError::U32Size { kind: 4, len: n }));
    }
    let e = ParseError::U32Size { kind: 4, len: 2 }.to_string();
    assert_eq!(
        e,
        "attribute PROT (4) has a 2-byte payload: expected exactly 4 bytes (u32)"
    );
}

#[test]
fn string_rules() {
    let get = |payload: &[u8], max: usize| {
        let buf = attr(2, payload);
        let a = all(&buf)[0].unwrap();
        a.nul_str(max).map(|s| s.to_vec())
    };
    assert_eq!(get(b"\0", 5), Ok(vec![]));
    assert_eq!(get(b"abc\0", 3), Ok(b"abc".to_vec()));
    assert_eq!(
        get(b"abc\0\0\0", 3),
        Ok(b"abc".to_vec()),
        "trailing NUL padding is fine"
    );
    assert_eq!(
        get(b"\xff\x01\0", 3),
        Ok(b"\xff\x01".to_vec()),
        "any non-NUL byte is fine"
    );
    assert_eq!(get(b"abc", 9), Err(ParseError::MissingNul { kind: 2 }));
    assert_eq!(get(b"", 9), Err(ParseError::MissingNul { kind: 2 }));
    assert_eq!(
        get(b"abcd\0", 3),
        Err(ParseError::StringTooLong {
            kind: 2,
            len: 4,
            max_len: 3
        })
    );
    assert_eq!(
        get(b"ab\0cd\0", 9),
        Err(ParseError::InteriorNul { kind: 2, offset: 2 })
    );
    let buf = attr(2, b"\xff\0");
    assert_eq!(
        all(&buf)[0].unwrap().str(9),
        Err(ParseError::NotUtf8 { kind: 2 })
    );
    assert_eq!(
        ParseError::MissingNul { kind: 8 }.to_string(),
        "attribute MESSAGE (8) is not NUL-terminated: expected a NUL-terminated string"
    );
    assert_eq!(
        ParseError::StringTooLong {
            kind: 77,
            len: 300,
            max_len: 255
        }
        .to_string(),
        "attribute type 77 is 300 bytes long: expected at most 255 bytes"
    );
}

#[test]
fn writer_writes_what_the_reader_reads() {
    let mut buf = [0xAAu8; 64];
    let mut w = Writer::new(&mut buf);
    w.put_u32(3, 0xDEAD_BEEF).unwrap();
    w.put_str(2, "/x").unwrap();
    let n = w.nest_start(1).unwrap();
    w.put_u32(5, 1).unwrap();
    w.nest_end(n).unwrap();
    let bytes = w.as_bytes().to_vec();
    assert_eq!(bytes.len(), 8 + 8 + 12);
    let mut expected = attr(3, &0xDEAD_BEEFu32.to_ne_bytes());
    expected.extend(attr(2, b"/x\0"));
    expected.extend(attr(1 | NLA_F_NESTED, &attr(5, &1u32.to_ne_bytes())));
    assert_eq!(
        bytes, expected,
        "padding must be zero even over a dirty buffer"
    );
}

#[test]
fn writer_full_leaves_buffer_unchanged() {
    let mut buf = [0u8; 10];
    let mut w = Writer::new(&mut buf);
    w.put_u32(3, 1).unwrap();
    assert_eq!(w.put_u32(3, 2), Err(WriteError::Full));
    assert_eq!(w.put_str(2, "a"), Err(WriteError::Full));
    assert!(
        matches!(w.nest_start(1), Err(WriteError::Full)),
        "2 bytes left: no room for a header"
    );
    assert_eq!(w.len(), 8);
    assert_eq!(w.remaining(), 2);
    let mut buf = [0u8; 8];
    let mut w = Writer::new(&mut buf);
    assert_eq!(
        w.put_str(2, "abcd"),
        Err(WriteError::Full),
        "needs 12 bytes with NUL and padding"
    );
    assert!(w.is_empty());
    assert_eq!(w.put_str(2, "abc"), Ok(()));
    assert_eq!(w.remaining(), 0);
    assert_eq!(w.put_bytes(2, &[]), Err(WriteError::Full));
}

#[test]
fn writer_refuses_bad_input() {
    let mut buf = [0u8; 128];
    let mut w = Writer::new(&mut buf);
    assert_eq!(w.put_str(2, "a\0b"), Err(WriteError::InteriorNul));
    assert_eq!(w.put_u32(0x4000, 1), Err(WriteError::BadKind));
    assert_eq!(w.put_u32(0x8001, 1), Err(WriteError::BadKind));
    assert!(w.nest_start(0x8001).is_err());
    assert!(w.is_empty());
    let big = vec![1u8; 70_000];
    let mut large = vec![0u8; 80_000];
    let mut w = Writer::new(&mut large);
    assert_eq!(w.put_bytes(2, &big), Err(WriteError::TooLong));
    assert!(w.is_empty());
}

#[test]
fn nest_longer_than_u16_is_refused() {
    let mut large = vec![0u8; 90_000];
    let mut w = Writer::new(&mut large);
    let n = w.nest_start(1).unwrap();
    for _ in 0..2 {
        w.put_bytes(2, &vec![7u8; 40_000]).unwrap();
    }
    assert_eq!(w.nest_end(n), Err(WriteError::TooLong));
}

#[test]
fn rollback_and_stale_nest() {
    let mut buf = [0u8; 64];
    let mut w = Writer::new(&mut buf);
    w.put_u32(3, 1).unwrap();
    let mark = w.len();
    let n = w.nest_start(1).unwrap();
    w.put_u32(5, 1).unwrap();
    w.rollback(mark);
    assert_eq!(w.len(), 8);
    assert_eq!(w.nest_end(n), Err(WriteError::BadNest));
    w.rollback(1000);
    assert_eq!(w.len(), 8);
    let bytes = w.into_bytes();
    assert_eq!(bytes.len(), 8);
}

#[test]
fn put_fmt_truncates_at_char_boundary() {
    let mut buf = [0u8; 64];
    let mut w = Writer::new(&mut buf);
    w.put_fmt(8, 5, format_args!("{}{}", "ab", "cdéf")).unwrap();
    let a = AttrIter::new(w.as_bytes()).next().unwrap().unwrap();
    assert_eq!(
        a.str(255),
        Ok("abcd"),
        "é would cross the limit: stop before it"
    );
    // Buffer-limited: 16 bytes total leaves room for 11 text bytes.
    let mut buf = [0u8; 16];
    let mut w = Writer::new(&mut buf);
    w.put_fmt(8, 255, format_args!("{}", "x".repeat(40)))
        .unwrap();
    let a = AttrIter::new(w.as_bytes()).next().unwrap().unwrap();
    assert_eq!(a.str(255).unwrap().len(), 11);
    assert_eq!(w.len(), 16);
    // NUL in the text becomes a space.
    let mut buf = [0u8; 32];
    let mut w = Writer::new(&mut buf);
    w.put_fmt(8, 255, format_args!("a\0b")).unwrap();
    let a = AttrIter::new(w.as_bytes()).next().unwrap().unwrap();
    assert_eq!(a.str(255), Ok("a b"));
    // Not even an empty string fits.
    let mut buf = [0u8; 7];
    let mut w = Writer::new(&mut buf);
    assert_eq!(w.put_fmt(8, 255, format_args!("")), Err(WriteError::Full));
}

#[test]
fn put_fmt_pads_with_zeros() {
    let mut buf = [0xAAu8; 32];
    let mut w = Writer::new(&mut buf);
    w.put_fmt(8, 255, format_args!("abcde")).unwrap();
    assert_eq!(w.as_bytes(), attr(8, b"abcde\0").as_slice());
}
