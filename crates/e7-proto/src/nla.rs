//! Checked netlink attribute (TLV) reading and writing, without allocation.
//!
//! A netlink attribute is `struct nlattr { u16 nla_len; u16 nla_type; }` in host byte order
//! (little-endian on every machine e7 runs on), followed by `nla_len - 4` payload bytes and zero
//! padding up to the next multiple of 4 (`NLA_ALIGN`). The two top bits of `nla_type` are flags:
//! `NLA_F_NESTED` marks nested payloads and `NLA_F_NET_BYTEORDER` a network-order payload; both
//! are masked off to get the attribute number.
//!
//! Following smoltcp's design, parsing happens in two steps: [`AttrIter`] is a checked view over
//! `&[u8]` that yields [`RawAttr`]s (number, nested bit, payload) and an error for any malformed
//! header, and the typed accessors ([`RawAttr::u32`], [`RawAttr::nul_str`], [`RawAttr::nested`])
//! check the payload. Every index is checked; no input makes these functions panic.
//!
//! [`Writer`] fills a caller-provided buffer (the kernel hands it the tail of an skb, the CLI a
//! stack array) and returns [`WriteError::Full`] instead of writing past its end. A failed put
//! leaves the buffer as it was.

use core::fmt;

use crate::schema::Attr;

/// Size of `struct nlattr`.
pub const NLA_HDRLEN: usize = 4;
/// Attribute alignment.
pub const NLA_ALIGNTO: usize = 4;
/// Type flag: the payload holds nested attributes.
pub const NLA_F_NESTED: u16 = 1 << 15;
/// Type flag: the payload is in network byte order.
pub const NLA_F_NET_BYTEORDER: u16 = 1 << 14;
/// Mask giving the attribute number.
pub const NLA_TYPE_MASK: u16 = !(NLA_F_NESTED | NLA_F_NET_BYTEORDER);

/// Rounds `len` up to the attribute alignment (`NLA_ALIGN`), saturating near `usize::MAX`.
pub const fn nla_align(len: usize) -> usize {
    match len.checked_add(NLA_ALIGNTO - 1) {
        Some(l) => l & !(NLA_ALIGNTO - 1),
        None => usize::MAX & !(NLA_ALIGNTO - 1),
    }
}

/// A malformed attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ParseError {
    /// Between 1 and 3 bytes remain: too few for an attribute header.
    TruncatedHeader {
        /// Offset of the partial header in the buffer being iterated.
        offset: usize,
        /// Bytes that remain.
        remaining: usize,
    },
    /// `nla_len` is smaller than the header itself.
    LengthTooShort {
        /// Offset of the attribute.
        offset: usize,
        /// The declared `nla_len`.
        nla_len: u16,
    },
    /// `nla_len` runs past the end of the buffer.
    LengthOverrun {
        /// Offset of the attribute.
        offset: usize,
        /// The declared `nla_len`.
        nla_len: u16,
        /// Bytes available from the attribute's start.
        remaining: usize,
    },
    /// A u32 attribute whose payload is not exactly 4 bytes.
    U32Size {
        /// Attribute number.
        kind: u16,
        /// Actual payload length.
        len: usize,
    },
    /// A u64 attribute whose payload is not exactly 8 bytes.
    U64Size {
        /// Attribute number.
        kind: u16,
        /// Actual payload length.
        len: usize,
    },
    /// A string attribute whose payload has no NUL terminator.
    MissingNul {
        /// Attribute number.
        kind: u16,
    },
    /// A string attribute longer than its limit.
    StringTooLong {
        /// Attribute number.
        kind: u16,
        /// Bytes before the NUL.
        len: usize,
        /// The limit.
        max_len: usize,
    },
    /// A string attribute with non-NUL bytes after its first NUL.
    InteriorNul {
        /// Attribute number.
        kind: u16,
        /// Offset of the first NUL in the payload.
        offset: usize,
    },
    /// A string attribute that is not UTF-8 where text is required.
    NotUtf8 {
        /// Attribute number.
        kind: u16,
    },
}

/// Formats an attribute number with its name when it has one: `PATH (2)`.
pub(crate) struct AttrName(pub(crate) u16);

impl fmt::Display for AttrName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Attr::from_value(self.0) {
            Some(a) => write!(f, "attribute {} ({})", a.short_name(), self.0),
            None => write!(f, "attribute type {}", self.0),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ParseError::TruncatedHeader { offset, remaining } => write!(
                f,
                "truncated attribute header at offset {offset}: {remaining} bytes left, \
                 expected at least {NLA_HDRLEN} (or none)"
            ),
            ParseError::LengthTooShort { offset, nla_len } => write!(
                f,
                "attribute at offset {offset} declares length {nla_len}: expected at least {NLA_HDRLEN}"
            ),
            ParseError::LengthOverrun { offset, nla_len, remaining } => write!(
                f,
                "attribute at offset {offset} declares length {nla_len} but only {remaining} bytes \
                 remain: the message is truncated"
            ),
            ParseError::U32Size { kind, len } => write!(
                f,
                "{} has a {len}-byte payload: expected exactly 4 bytes (u32)",
                AttrName(kind)
            ),
            ParseError::U64Size { kind, len } => write!(
                f,
                "{} has a {len}-byte payload: expected exactly 8 bytes (u64)",
                AttrName(kind)
            ),
            ParseError::MissingNul { kind } => {
                write!(f, "{} is not NUL-terminated: expected a NUL-terminated string", AttrName(kind))
            }
            ParseError::StringTooLong { kind, len, max_len } => write!(
                f,
                "{} is {len} bytes long: expected at most {max_len} bytes",
                AttrName(kind)
            ),
            ParseError::InteriorNul { kind, offset } => write!(
                f,
                "{} contains a NUL at offset {offset} followed by more text: expected one \
                 NUL-terminated string",
                AttrName(kind)
            ),
            ParseError::NotUtf8 { kind } => {
                write!(f, "{} is not valid UTF-8: expected UTF-8 text", AttrName(kind))
            }
        }
    }
}

impl core::error::Error for ParseError {}

/// One attribute as found in the buffer: number, nested bit and payload. Not yet validated
/// beyond its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RawAttr<'a> {
    /// Attribute number (`nla_type & NLA_TYPE_MASK`).
    pub kind: u16,
    /// Whether `NLA_F_NESTED` was set.
    pub nested: bool,
    /// Payload, `nla_len - 4` bytes, without padding.
    pub payload: &'a [u8],
}

impl<'a> RawAttr<'a> {
    /// The payload as a u32: it must be exactly 4 bytes.
    pub fn u32(&self) -> Result<u32, ParseError> {
        match <[u8; 4]>::try_from(self.payload) {
            Ok(b) => Ok(u32::from_ne_bytes(b)),
            Err(_) => Err(ParseError::U32Size {
                kind: self.kind,
                len: self.payload.len(),
            }),
        }
    }

    /// The payload as a u64: it must be exactly 8 bytes (copied: netlink aligns payloads to 4).
    pub fn u64(&self) -> Result<u64, ParseError> {
        match <[u8; 8]>::try_from(self.payload) {
            Ok(b) => Ok(u64::from_ne_bytes(b)),
            Err(_) => Err(ParseError::U64Size {
                kind: self.kind,
                len: self.payload.len(),
            }),
        }
    }

    /// The payload as a NUL-terminated string of at most `max_len` bytes, returned without the
    /// NUL. Any byte except NUL is accepted; bytes after the first NUL must all be NUL (padding).
    pub fn nul_str(&self, max_len: usize) -> Result<&'a [u8], ParseError> {
        let kind = self.kind;
        let nul = self
            .payload
            .iter()
            .position(|&b| b == 0)
            .ok_or(ParseError::MissingNul { kind })?;
        let (text, tail) = self.payload.split_at(nul);
        if text.len() > max_len {
            return Err(ParseError::StringTooLong {
                kind,
                len: text.len(),
                max_len,
            });
        }
        if tail.iter().any(|&b| b != 0) {
            return Err(ParseError::InteriorNul { kind, offset: nul });
        }
        Ok(text)
    }

    /// Like [`RawAttr::nul_str`], and the text must also be valid UTF-8.
    pub fn str(&self, max_len: usize) -> Result<&'a str, ParseError> {
        let bytes = self.nul_str(max_len)?;
        core::str::from_utf8(bytes).map_err(|_| ParseError::NotUtf8 { kind: self.kind })
    }

    /// The payload as nested attributes.
    pub fn nested(&self) -> AttrIter<'a> {
        AttrIter::new(self.payload)
    }

    /// The schema attribute, if the number is known.
    pub fn attr(&self) -> Option<Attr> {
        Attr::from_value(self.kind)
    }
}

/// A checked iterator over the attributes in a buffer.
///
/// Yields `Err` once for the first malformed header and then stops. The final attribute may omit
/// its trailing padding (as the kernel allows); any other leftover bytes are an error.
#[derive(Clone, Debug)]
pub struct AttrIter<'a> {
    buf: &'a [u8],
    offset: usize,
    done: bool,
}

impl<'a> AttrIter<'a> {
    /// A view over `buf`, which holds zero or more attributes.
    pub const fn new(buf: &'a [u8]) -> Self {
        AttrIter {
            buf,
            offset: 0,
            done: false,
        }
    }

    /// Checks every header (not payloads) in the buffer.
    pub fn check(buf: &'a [u8]) -> Result<(), ParseError> {
        AttrIter::new(buf).try_for_each(|a| a.map(|_| ()))
    }
}

impl<'a> Iterator for AttrIter<'a> {
    type Item = Result<RawAttr<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let rest = self.buf.get(self.offset..).unwrap_or(&[]);
        if rest.is_empty() {
            self.done = true;
            return None;
        }
        let offset = self.offset;
        let header = match rest.get(..NLA_HDRLEN) {
            Some(h) => h,
            None => {
                self.done = true;
                return Some(Err(ParseError::TruncatedHeader {
                    offset,
                    remaining: rest.len(),
                }));
            }
        };
        let nla_len = u16::from_ne_bytes([header[0], header[1]]);
        let nla_type = u16::from_ne_bytes([header[2], header[3]]);
        let len = usize::from(nla_len);
        if len < NLA_HDRLEN {
            self.done = true;
            return Some(Err(ParseError::LengthTooShort { offset, nla_len }));
        }
        let payload = match rest.get(NLA_HDRLEN..len) {
            Some(p) => p,
            None => {
                self.done = true;
                return Some(Err(ParseError::LengthOverrun {
                    offset,
                    nla_len,
                    remaining: rest.len(),
                }));
            }
        };
        // Skip padding; a missing pad after the last attribute is fine.
        self.offset = offset.saturating_add(nla_align(len)).min(self.buf.len());
        Some(Ok(RawAttr {
            kind: nla_type & NLA_TYPE_MASK,
            nested: nla_type & NLA_F_NESTED != 0,
            payload,
        }))
    }
}

impl core::iter::FusedIterator for AttrIter<'_> {}

/// Why an attribute could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WriteError {
    /// The buffer has no room for it; nothing was written.
    Full,
    /// The attribute (or nest) would be longer than `nla_len` can express (65535 bytes), or a
    /// string is longer than its attribute's limit.
    TooLong,
    /// A string to be written contains a NUL byte.
    InteriorNul,
    /// The attribute number uses the flag bits (must be below 0x4000).
    BadKind,
    /// A nest token does not belong to the current buffer state (it was rolled back).
    BadNest,
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WriteError::Full => "the message buffer is full",
            WriteError::TooLong => {
                "the attribute is too long for netlink (or for its length limit)"
            }
            WriteError::InteriorNul => "a string attribute contains a NUL byte",
            WriteError::BadKind => "attribute numbers must be below 0x4000",
            WriteError::BadNest => "nest token does not match the buffer (it was rolled back)",
        })
    }
}

impl core::error::Error for WriteError {}

/// An open nest returned by [`Writer::nest_start`]; close it with [`Writer::nest_end`].
#[derive(Debug)]
#[must_use = "a nest must be closed with Writer::nest_end"]
pub struct Nest {
    start: usize,
}

/// Writes attributes into a caller-provided buffer.
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> Writer<'a> {
    /// A writer that fills `buf` from its start.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Writer { buf, len: 0 }
    }

    /// Bytes written so far (always a multiple of 4).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Total buffer size.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Bytes still free.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.len)
    }

    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    /// Consumes the writer, returning the written bytes.
    pub fn into_bytes(self) -> &'a [u8] {
        let len = self.len;
        let buf: &'a [u8] = self.buf;
        buf.get(..len).unwrap_or(&[])
    }

    /// Forgets everything written after `len` (a value previously returned by [`Writer::len`]).
    /// Nests opened after that point become invalid. Larger values are ignored.
    pub fn rollback(&mut self, len: usize) {
        if len < self.len {
            self.len = len;
        }
    }

    /// Reserves an attribute of `payload_len` bytes with raw type `nla_type`, writes its header
    /// and zero padding, and returns the payload offset. Nothing changes on error.
    fn reserve(&mut self, nla_type: u16, payload_len: usize) -> Result<usize, WriteError> {
        let nla_len = NLA_HDRLEN
            .checked_add(payload_len)
            .ok_or(WriteError::TooLong)?;
        let nla_len16 = u16::try_from(nla_len).map_err(|_| WriteError::TooLong)?;
        let total = nla_align(nla_len);
        let end = self.len.checked_add(total).ok_or(WriteError::Full)?;
        let region = self.buf.get_mut(self.len..end).ok_or(WriteError::Full)?;
        region.fill(0);
        let (hdr, _) = region.split_at_mut(NLA_HDRLEN);
        let (len_bytes, type_bytes) = hdr.split_at_mut(2);
        len_bytes.copy_from_slice(&nla_len16.to_ne_bytes());
        type_bytes.copy_from_slice(&nla_type.to_ne_bytes());
        let payload_at = self.len + NLA_HDRLEN;
        self.len = end;
        Ok(payload_at)
    }

    fn check_kind(kind: u16) -> Result<(), WriteError> {
        if kind & !NLA_TYPE_MASK != 0 {
            Err(WriteError::BadKind)
        } else {
            Ok(())
        }
    }

    /// Writes an attribute with an arbitrary payload.
    pub fn put_bytes(&mut self, kind: u16, payload: &[u8]) -> Result<(), WriteError> {
        Self::check_kind(kind)?;
        let at = self.reserve(kind, payload.len())?;
        if let Some(dst) = self.buf.get_mut(at..at + payload.len()) {
            dst.copy_from_slice(payload);
        }
        Ok(())
    }

    /// Writes a u32 attribute (host byte order).
    pub fn put_u32(&mut self, kind: u16, value: u32) -> Result<(), WriteError> {
        self.put_bytes(kind, &value.to_ne_bytes())
    }

    /// Writes a u64 attribute (host byte order, unpadded like `nla_put_u64` without a pad type).
    pub fn put_u64(&mut self, kind: u16, value: u64) -> Result<(), WriteError> {
        self.put_bytes(kind, &value.to_ne_bytes())
    }

    /// Writes a NUL-terminated string attribute. `s` must not contain NUL.
    pub fn put_str<S: AsRef<[u8]> + ?Sized>(&mut self, kind: u16, s: &S) -> Result<(), WriteError> {
        let s = s.as_ref();
        Self::check_kind(kind)?;
        if s.contains(&0) {
            return Err(WriteError::InteriorNul);
        }
        let at = self.reserve(kind, s.len().checked_add(1).ok_or(WriteError::TooLong)?)?;
        if let Some(dst) = self.buf.get_mut(at..at + s.len()) {
            dst.copy_from_slice(s);
        }
        // The NUL and padding are already zero.
        Ok(())
    }

    /// Writes a NUL-terminated string attribute from formatting arguments, truncated (at a UTF-8
    /// character boundary) to at most `max_len` bytes and to the space left in the buffer. NUL
    /// characters in the formatted text are replaced by spaces. Fails with
    /// [`WriteError::Full`] only if not even an empty string fits.
    pub fn put_fmt(
        &mut self,
        kind: u16,
        max_len: usize,
        args: fmt::Arguments<'_>,
    ) -> Result<(), WriteError> {
        Self::check_kind(kind)?;
        // Largest text t with align(HDR + t + 1) <= remaining, and HDR + t + 1 <= u16::MAX.
        let room = (self.remaining() & !(NLA_ALIGNTO - 1))
            .checked_sub(NLA_HDRLEN + 1)
            .ok_or(WriteError::Full)?;
        let limit = max_len
            .min(room)
            .min(usize::from(u16::MAX) - NLA_HDRLEN - 1);
        let start = self.len;
        let payload_at = start + NLA_HDRLEN;
        let region = self
            .buf
            .get_mut(payload_at..payload_at + limit)
            .ok_or(WriteError::Full)?;
        let mut sink = Truncating {
            buf: region,
            len: 0,
            limit,
        };
        // Truncation is not an error; a failing Display impl just ends the text early.
        let _ = fmt::write(&mut sink, args);
        let text_len = sink.len;
        let nla_len = NLA_HDRLEN + text_len + 1;
        let end = start + nla_align(nla_len);
        if let Some(pad) = self.buf.get_mut(payload_at + text_len..end) {
            pad.fill(0);
        }
        let nla_len16 = u16::try_from(nla_len).map_err(|_| WriteError::TooLong)?;
        let hdr = self
            .buf
            .get_mut(start..payload_at)
            .ok_or(WriteError::Full)?;
        let (len_bytes, type_bytes) = hdr.split_at_mut(2);
        len_bytes.copy_from_slice(&nla_len16.to_ne_bytes());
        type_bytes.copy_from_slice(&kind.to_ne_bytes());
        self.len = end;
        Ok(())
    }

    /// Opens a nested attribute (sets `NLA_F_NESTED`). Attributes written until the matching
    /// [`Writer::nest_end`] are its payload.
    pub fn nest_start(&mut self, kind: u16) -> Result<Nest, WriteError> {
        Self::check_kind(kind)?;
        let start = self.len;
        self.reserve(kind | NLA_F_NESTED, 0)?;
        Ok(Nest { start })
    }

    /// Closes a nest, fixing its `nla_len`. Fails with [`WriteError::TooLong`] if the nest exceeds
    /// 65535 bytes (the nest stays open; roll back to discard it).
    pub fn nest_end(&mut self, nest: Nest) -> Result<(), WriteError> {
        let len = self
            .len
            .checked_sub(nest.start)
            .ok_or(WriteError::BadNest)?;
        if len < NLA_HDRLEN {
            return Err(WriteError::BadNest);
        }
        let len16 = u16::try_from(len).map_err(|_| WriteError::TooLong)?;
        let hdr = self
            .buf
            .get_mut(nest.start..nest.start + 2)
            .ok_or(WriteError::BadNest)?;
        hdr.copy_from_slice(&len16.to_ne_bytes());
        Ok(())
    }

    /// Overwrites the `nla_len` of the attribute header at `at` (used to close nest chains).
    pub(crate) fn set_len_at(&mut self, at: usize, len: u16) -> Result<(), WriteError> {
        let hdr = self.buf.get_mut(at..at + 2).ok_or(WriteError::BadNest)?;
        hdr.copy_from_slice(&len.to_ne_bytes());
        Ok(())
    }

    /// Reads back the header at `at`: (`nla_len`, raw `nla_type`).
    pub(crate) fn header_at(&self, at: usize) -> Option<(u16, u16)> {
        let h = self.as_bytes().get(at..at.checked_add(NLA_HDRLEN)?)?;
        Some((
            u16::from_ne_bytes([h[0], h[1]]),
            u16::from_ne_bytes([h[2], h[3]]),
        ))
    }
}

/// A `fmt::Write` sink that stores at most `limit` bytes, cutting at a character boundary and
/// replacing NUL with a space.
struct Truncating<'b> {
    buf: &'b mut [u8],
    len: usize,
    limit: usize,
}

impl fmt::Write for Truncating<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for ch in s.chars() {
            let mut tmp = [0u8; 4];
            let enc = if ch == '\0' {
                " "
            } else {
                ch.encode_utf8(&mut tmp)
            };
            let end = self.len + enc.len();
            if end > self.limit {
                // Stop at this character: everything after it is dropped.
                self.limit = self.len;
                return Ok(());
            }
            match self.buf.get_mut(self.len..end) {
                Some(dst) => dst.copy_from_slice(enc.as_bytes()),
                None => {
                    self.limit = self.len;
                    return Ok(());
                }
            }
            self.len = end;
        }
        Ok(())
    }
}
