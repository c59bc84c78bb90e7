//! The wire's basic data types (MQTT 5.0 §1.5, 3.1.1 §1.5): integers, variable
//! byte integers, UTF-8 strings and binary data, read from a zero-copy cursor
//! and written into a caller's buffer.

use std::fmt;
use std::ops::Deref;

use bytes::{Bytes, BytesMut};
use bytestring::ByteString;

use super::error::DecodeError;

/// The largest value a variable byte integer can carry (four bytes of seven
/// bits each), which is also the largest remaining length of a packet.
pub const MAX_VARIABLE_INT: u32 = 268_435_455;

/// The longest UTF-8 string or binary field: its length prefix is a `u16`.
pub const MAX_FIELD_LEN: usize = u16::MAX as usize;

/// The most entries a list is sized for before decoding into it; beyond
/// that it grows as it is filled (see [`Reader::count_entries`]).
const MAX_PRESIZE: usize = 256;

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Whether any byte of `chunk` is below `n` (`n` in every lane, `n` at
/// most 128): the "has less" test from the bit-twiddling folklore, eight
/// bytes per step. Exact as a yes/no answer.
#[inline(always)]
fn swar_any_below(chunk: u64, n: u64) -> bool {
    chunk.wrapping_sub(n) & !chunk & HI != 0
}

/// Whether any byte of `chunk` equals the byte repeated in `word`.
#[inline(always)]
fn swar_has(chunk: u64, word: u64) -> bool {
    swar_any_below(chunk ^ word, LO)
}

/// Fewer than eight bytes as a little-endian word (byte `i` in lane `i`),
/// the lanes past the end holding `fill`.
///
/// Two overlapping loads of the first and last two or four bytes, OR-ed
/// together (where they overlap they hold the same bytes), instead of a
/// byte loop or a `memcpy` call of a variable length.
#[inline(always)]
pub(crate) fn short_word(bytes: &[u8], fill: u8) -> u64 {
    debug_assert!(bytes.len() < 8);
    let n = bytes.len();
    let w = match (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) {
        (Some(&first), Some(&last)) => {
            u64::from(u32::from_le_bytes(first))
                | u64::from(u32::from_le_bytes(last)) << (8 * (n - 4))
        }
        _ => match (bytes.first_chunk::<2>(), bytes.last_chunk::<2>()) {
            (Some(&first), Some(&last)) => {
                u64::from(u16::from_le_bytes(first))
                    | u64::from(u16::from_le_bytes(last)) << (8 * (n - 2))
            }
            _ => bytes.first().map_or(0, |&b| u64::from(b)),
        },
    };
    // `n` is at most 7, so the shift is in range.
    w | (u64::from_ne_bytes([fill; 8]) & (!0u64 << (8 * n)))
}

/// Whether `test` holds for some eight-byte word of `bytes`, a short
/// string padded with `fill` (which `test` must not match). Words may
/// overlap: the last one is the last eight bytes, so that a tail needs no
/// copy.
#[inline(always)]
fn any_word(bytes: &[u8], fill: u8, test: impl Fn(u64) -> bool) -> bool {
    let Some(last) = bytes.last_chunk::<8>() else {
        return test(short_word(bytes, fill));
    };
    let (words, _) = bytes.as_chunks::<8>();
    words.iter().any(|w| test(u64::from_le_bytes(*w))) || test(u64::from_le_bytes(*last))
}

/// Whether `bytes` contains U+0000. The strings of a packet are short,
/// where this word-at-a-time loop beats a call to `memchr`.
#[inline]
pub(crate) fn has_nul(bytes: &[u8]) -> bool {
    any_word(bytes, 0xFF, |w| swar_has(w, 0))
}

/// Whether `bytes` contains U+0000, `+` or `#`: the characters a topic
/// name must not have ([MQTT-1.5.4-2], [MQTT-3.3.2-2]). One pass instead
/// of three, so the common case (a valid name) costs a few instructions
/// per eight bytes; callers redo the full check, with its precise error,
/// only when this says yes.
#[inline]
pub(crate) fn has_nul_or_wildcard(bytes: &[u8]) -> bool {
    // All three are below ',' (0x2C), and topic names are mostly letters,
    // digits, '/', '-' and '_', which are not: one "any byte below 0x2C"
    // test per word, and the exact test only for a word that has one.
    const BELOW: u64 = 0x2C2C_2C2C_2C2C_2C2C;
    const PLUS: u64 = 0x2B2B_2B2B_2B2B_2B2B;
    const HASH: u64 = 0x2323_2323_2323_2323;
    any_word(bytes, 0x2C, |w| {
        swar_any_below(w, BELOW) && (swar_has(w, 0) || swar_has(w, PLUS) || swar_has(w, HASH))
    })
}

/// A cursor over one packet body (or one property block) that borrows the
/// buffer the packet lies in.
///
/// Fields are read by index over the borrowed bytes; only the fields a
/// decoded packet keeps become `Bytes` (a slice of `src`: one reference
/// count increment each, no copy). Fields that are only checked (the user
/// properties while a property block is validated, say) never become
/// `Bytes` at all, and no intermediate `Bytes` for the frame or a property
/// block is made.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    /// The buffer the packet lies in, to slice kept fields from; `None`
    /// when reading borrowed input ([`super::decode_slice`]), which keeps
    /// no `Bytes`.
    src: Option<&'a Bytes>,
    /// `src` up to the end of what this reader may read.
    data: &'a [u8],
    /// The next byte to read; at most `data.len()`.
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader of `src[start..end]`; `start <= end <= src.len()`.
    #[inline]
    pub(crate) fn new(src: &'a Bytes, start: usize, end: usize) -> Self {
        let data = src.get(..end).unwrap_or_default();
        Reader {
            src: Some(src),
            data,
            pos: start.min(data.len()),
        }
    }

    /// A reader of `data[start..end]` with no `Bytes` behind it, for the
    /// borrowing decoder: fields are read as `&'a str` / `&'a [u8]`.
    #[inline]
    pub(crate) fn borrowed(data: &'a [u8], start: usize, end: usize) -> Self {
        let data = data.get(..end).unwrap_or_default();
        Reader {
            src: None,
            data,
            pos: start.min(data.len()),
        }
    }

    /// A reader of all of `src`.
    #[cfg(test)]
    pub(crate) fn whole(src: &'a Bytes) -> Self {
        Reader::new(src, 0, src.len())
    }

    /// Where the next read starts, as an index into the source buffer.
    #[inline]
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    #[inline]
    pub(crate) fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.pos == self.data.len()
    }

    /// Fails with [`DecodeError::TrailingBytes`] if anything is left: a
    /// packet must end exactly where its remaining length says.
    #[inline]
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }

    /// The next `N` bytes.
    #[inline(always)]
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let Some(&bytes) = self.data.get(self.pos..).and_then(<[u8]>::first_chunk::<N>) else {
            return Err(DecodeError::UnexpectedEnd);
        };
        self.pos += N;
        Ok(bytes)
    }

    #[inline]
    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        self.array::<1>().map(|[b]| b)
    }

    #[inline]
    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        self.array().map(u16::from_be_bytes)
    }

    #[inline]
    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        self.array().map(u32::from_be_bytes)
    }

    /// Skips the next byte if it is 0 (an empty property block), and says
    /// whether it did.
    #[inline(always)]
    pub(crate) fn skip_zero_byte(&mut self) -> bool {
        let zero = self.data.get(self.pos) == Some(&0);
        self.pos += usize::from(zero);
        zero
    }

    /// The next `n` bytes, borrowed; for fields that are checked, not kept.
    #[inline]
    pub(crate) fn slice(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let Some(bytes) = self.data.get(self.pos..).and_then(|rest| rest.get(..n)) else {
            return Err(DecodeError::UnexpectedEnd);
        };
        self.pos += n;
        Ok(bytes)
    }

    /// The next `n` bytes as a slice of the source buffer, for fields a
    /// packet keeps.
    #[inline]
    pub(crate) fn bytes(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        let start = self.pos;
        self.slice(n)?;
        Ok(self.src_slice(start, self.pos))
    }

    /// A reader of the next `n` bytes (a property block), which this
    /// reader skips.
    #[inline]
    pub(crate) fn sub(&mut self, n: usize) -> Result<Reader<'a>, DecodeError> {
        let start = self.pos;
        self.slice(n)?;
        Ok(Reader {
            src: self.src,
            data: self.data.get(..self.pos).unwrap_or_default(),
            pos: start,
        })
    }

    /// `src[start..end]` as a `Bytes` slice (a property block that a
    /// packet keeps, once it has been validated).
    #[inline]
    pub(crate) fn src_slice(&self, start: usize, end: usize) -> Bytes {
        match self.src {
            Some(src) => src.slice(start..end),
            // Not reached: the borrowing decoder keeps no `Bytes`. Should
            // it ever ask, a copy is still the right bytes.
            None => Bytes::copy_from_slice(self.data.get(start..end).unwrap_or_default()),
        }
    }

    /// `data[start..end]`, borrowed: a property block the borrowing
    /// decoder keeps.
    #[inline]
    pub(crate) fn data_slice(&self, start: usize, end: usize) -> &'a [u8] {
        self.data.get(start..end).unwrap_or_default()
    }

    /// How many entries of "a length-prefixed field, then `trailer` bytes"
    /// the rest holds, to size a list before decoding into it (so a
    /// SUBSCRIBE's filters take one allocation, not one per doubling).
    ///
    /// Only a size hint: it stops at the first entry that does not fit
    /// (decoding reports that one), and at [`MAX_PRESIZE`] so that a large
    /// packet of bad entries cannot make us reserve memory for all of them
    /// before the first is refused.
    pub(crate) fn count_entries(&self, trailer: usize) -> usize {
        let bytes = self.data.get(self.pos..).unwrap_or_default();
        let (mut pos, mut n) = (0, 0);
        while n < MAX_PRESIZE {
            let Some(&[hi, lo]) = bytes.get(pos..pos + 2) else {
                break;
            };
            pos += 2 + usize::from(u16::from_be_bytes([hi, lo])) + trailer;
            if pos > bytes.len() {
                break;
            }
            n += 1;
        }
        n
    }

    /// A variable byte integer (§1.5.5), at most four bytes, minimally encoded.
    #[inline]
    pub(crate) fn var_int(&mut self) -> Result<u32, DecodeError> {
        // One byte (below 128) is by far the most common: property
        // identifiers, short property blocks.
        if let Some(&b) = self.data.get(self.pos)
            && b < 0x80
        {
            self.pos += 1;
            return Ok(u32::from(b));
        }
        match read_var_int(self.data.get(self.pos..).unwrap_or_default())? {
            Some((value, len)) => {
                self.pos += len;
                Ok(value)
            }
            // Inside a packet body there is no "more to come": the body is
            // complete, so a variable integer cut short is malformed.
            None => Err(DecodeError::UnexpectedEnd),
        }
    }

    /// The length prefix of a binary field or string.
    #[inline]
    fn field_len(&mut self) -> Result<usize, DecodeError> {
        self.u16().map(usize::from)
    }

    /// Binary data: a two-byte length, then that many bytes (§1.5.6).
    // Always inlined: PUBLISH's topic goes through here, and when the
    // compiler chose to call it out of line (as small changes elsewhere
    // made it do), decoding took up to 7% more instructions.
    #[inline(always)]
    pub(crate) fn binary(&mut self) -> Result<Bytes, DecodeError> {
        let len = self.field_len()?;
        self.bytes(len)
    }

    /// A UTF-8 encoded string (§1.5.4): validated once, then a view.
    #[inline]
    pub(crate) fn string(&mut self) -> Result<MqttString, DecodeError> {
        let raw = self.binary()?;
        MqttString::from_wire(raw)
    }

    /// A topic filter of a SUBSCRIBE or UNSUBSCRIBE, checked as
    /// [`string`](Self::string) checks it (same errors), and whether it is
    /// known to be a valid filter that is not shared.
    ///
    /// Most filters do not start with `$`, have no U+0000 and have their
    /// wildcards in place; that is checked here, on the bytes as read
    /// ([`is_plain_valid_filter`](crate::topic::is_plain_valid_filter)),
    /// and only the UTF-8 check is left. For any other the answer is
    /// `false`, and the caller runs the full filter check (after whatever
    /// it reads next, so errors come in the order they always did).
    #[inline]
    pub(crate) fn filter(&mut self) -> Result<(MqttString, bool), DecodeError> {
        let len = self.field_len()?;
        let start = self.pos;
        let raw = self.slice(len)?;
        if crate::topic::is_plain_valid_filter(raw) {
            // No U+0000 (checked above): only the UTF-8 check is left.
            let s = ByteString::try_from(self.src_slice(start, self.pos))
                .map_err(|_| DecodeError::InvalidUtf8)?;
            return Ok((MqttString(s), true));
        }
        Ok((
            MqttString::from_wire(self.src_slice(start, self.pos))?,
            false,
        ))
    }

    /// A UTF-8 encoded string that is checked as [`string`](Self::string)
    /// checks it (same errors), but not kept: no `Bytes` is made.
    #[inline]
    pub(crate) fn skip_string(&mut self) -> Result<(), DecodeError> {
        let len = self.field_len()?;
        let raw = self.slice(len)?;
        check_wire_str(raw)
    }

    /// Binary data, borrowed.
    #[inline(always)]
    pub(crate) fn binary_ref(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.field_len()?;
        self.slice(len)
    }

    /// A UTF-8 encoded string, checked as [`string`](Self::string) checks
    /// it (same errors), borrowed.
    #[inline(always)]
    pub(crate) fn str_ref(&mut self) -> Result<&'a str, DecodeError> {
        wire_str(self.binary_ref()?)
    }

    /// A topic name, borrowed, and whether it needs the full topic-name
    /// check; the same checks and errors as [`topic_name`](Self::topic_name).
    #[inline(always)]
    pub(crate) fn topic_ref(&mut self) -> Result<(&'a str, bool), DecodeError> {
        let raw = self.binary_ref()?;
        if raw.is_empty() || has_nul_or_wildcard(raw) {
            return Ok((wire_str(raw)?, true));
        }
        let s = std::str::from_utf8(raw).map_err(|_| DecodeError::InvalidUtf8)?;
        Ok((s, false))
    }

    /// A topic name, and whether it needs the full topic-name check; see
    /// [`MqttString::topic_from_wire`].
    #[inline]
    pub(crate) fn topic_name(&mut self) -> Result<(MqttString, bool), DecodeError> {
        let raw = self.binary()?;
        MqttString::topic_from_wire(raw)
    }
}

/// What [`MqttString::from_wire`] checks, on borrowed bytes.
pub(crate) fn check_wire_str(raw: &[u8]) -> Result<(), DecodeError> {
    wire_str(raw).map(drop)
}

/// Borrowed bytes as an MQTT string, checked as [`MqttString::from_wire`]
/// checks them (same errors).
#[inline]
pub(crate) fn wire_str(raw: &[u8]) -> Result<&str, DecodeError> {
    // [MQTT-1.5.4-1] ill-formed UTF-8 (including surrogates) is malformed.
    let s = std::str::from_utf8(raw).map_err(|_| DecodeError::InvalidUtf8)?;
    // [MQTT-1.5.4-2] U+0000 MUST NOT be included.
    if has_nul(raw) {
        return Err(DecodeError::NulInString);
    }
    Ok(s)
}

/// Reads a variable byte integer from the front of `buf`.
///
/// `Ok(None)` means `buf` ends before the integer does (more bytes may
/// come); the `usize` is how many bytes the integer took.
pub(crate) fn read_var_int(buf: &[u8]) -> Result<Option<(u32, usize)>, DecodeError> {
    let mut value: u32 = 0;
    for (i, &byte) in buf.iter().enumerate().take(4) {
        value |= u32::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            // [MQTT-1.5.5-1] The encoded value MUST use the minimum number of
            // bytes necessary: a last byte of zero after the first adds nothing.
            if i > 0 && byte == 0 {
                return Err(DecodeError::MalformedVariableInteger);
            }
            return Ok(Some((value, i + 1)));
        }
    }
    if buf.len() >= 4 {
        // A fifth byte would be needed: the continuation bit of the fourth
        // byte is set, which no valid encoding does.
        Err(DecodeError::MalformedVariableInteger)
    } else {
        Ok(None)
    }
}

/// How many bytes `value` takes as a variable byte integer.
#[inline]
pub(crate) fn var_int_len(value: usize) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

// Writing. A packet either is written in place (`write_small`,
// `write_prefix`), or reserves its exact size before it writes, and each
// write below is one `BytesMut::extend_from_slice` of a fixed-size array,
// which compiles to a capacity check and a store. (The `BufMut` methods
// such as `put_u8` go through an out-of-line `put_slice` and a `memcpy`
// call for each byte or two.)

/// Writes one byte.
#[inline(always)]
pub(crate) fn put_u8(buf: &mut BytesMut, value: u8) {
    buf.extend_from_slice(&[value]);
}

/// Writes a big-endian two-byte integer.
#[inline(always)]
pub(crate) fn put_u16(buf: &mut BytesMut, value: u16) {
    buf.extend_from_slice(&value.to_be_bytes());
}

/// Writes `value` as a variable byte integer. Callers have checked it is at
/// most [`MAX_VARIABLE_INT`].
#[inline]
pub(crate) fn write_var_int(buf: &mut BytesMut, value: usize) {
    // One byte (below 128) is the common case: short property blocks,
    // small packets.
    if value < 0x80 {
        put_u8(buf, value as u8);
        return;
    }
    let mut bytes = [0u8; 4];
    let n = put_var_int(&mut bytes, value);
    buf.extend_from_slice(&bytes[..n]);
}

/// Writes a packet's fixed header: its first byte and the remaining length.
#[inline(always)]
pub(crate) fn write_fixed_header(buf: &mut BytesMut, first: u8, remaining: usize) {
    if remaining < 0x80 {
        buf.extend_from_slice(&[first, remaining as u8]);
    } else {
        put_u8(buf, first);
        write_var_int(buf, remaining);
    }
}

/// Writes a packet's fixed header followed by a two-byte integer (a topic's
/// length, a packet identifier): in one piece when the remaining length
/// takes one or two bytes (packets below 16 KiB).
#[inline(always)]
pub(crate) fn write_fixed_header_and_u16(
    buf: &mut BytesMut,
    first: u8,
    remaining: usize,
    value: u16,
) {
    let [hi, lo] = value.to_be_bytes();
    match remaining {
        0..=0x7F => buf.extend_from_slice(&[first, remaining as u8, hi, lo]),
        0x80..=0x3FFF => {
            let low = (remaining & 0x7F) as u8 | 0x80;
            buf.extend_from_slice(&[first, low, (remaining >> 7) as u8, hi, lo]);
        }
        _ => {
            write_fixed_header(buf, first, remaining);
            put_u16(buf, value);
        }
    }
}

/// What [`write_small`] leaves in front of the body while it is written:
/// the first byte and a remaining length of one byte.
const HEADER_ROOM: usize = 2;

/// Appends a small packet, `first` and the body `fill` writes, in place.
///
/// Appending to a `BytesMut` piece by piece costs a capacity check and a
/// length update per piece, a call to `memcpy` per string, and the
/// packet's size before the first piece (for the fixed header), so a packet
/// is measured and then written. A packet of a few fields is mostly such
/// overhead. Here the output grows by a zeroed block of `N` bytes (at most
/// 256), `fill` writes the body into it through a [`Scratch`], each piece a
/// bounds check and a copy, the fixed header goes in front once the size
/// is known, and the block is cut back to the packet. The block lies in
/// the output already, so nothing is copied again.
///
/// Returns `false`, with nothing written, if the body does not fit (`fill`
/// says so by returning `None`).
#[inline(always)]
pub(crate) fn write_small<const N: usize>(
    buf: &mut BytesMut,
    first: u8,
    fill: impl FnOnce(&mut Scratch<'_, N>) -> Option<()>,
) -> bool {
    const { assert!(N > HEADER_ROOM + 1 && N <= 256) };
    let start = buf.len();
    let Some(block) = grow_by_block::<N>(buf) else {
        return false;
    };
    let mut scratch = Scratch {
        bytes: &mut *block,
        len: HEADER_ROOM,
    };
    let filled = fill(&mut scratch).is_some();
    let end = scratch.len;
    let body = end - HEADER_ROOM;
    let written = if !filled {
        0
    } else if body < 0x80 {
        block[0] = first;
        block[1] = body as u8;
        end
    } else if end < N {
        // A two-byte remaining length (the body is at most 254 bytes): the
        // body moves up by one.
        block.copy_within(HEADER_ROOM..end, HEADER_ROOM + 1);
        block[0] = first;
        block[1] = (body & 0x7F) as u8 | 0x80;
        block[2] = (body >> 7) as u8;
        end + 1
    } else {
        0
    };
    buf.truncate(start + written);
    written > 0
}

/// Appends the start of a packet whose body is `remaining` bytes long: the
/// fixed header, then what `fill` writes, in place as [`write_small`] does,
/// in a block of `N` bytes (at most 256). The caller appends the rest (a
/// PUBLISH's payload).
///
/// Returns `false`, with nothing written, if it does not fit.
#[inline(always)]
pub(crate) fn write_prefix<const N: usize>(
    buf: &mut BytesMut,
    first: u8,
    remaining: usize,
    fill: impl FnOnce(&mut Scratch<'_, N>) -> Option<()>,
) -> bool {
    const { assert!(N > 5 && N <= 256) };
    let start = buf.len();
    let Some(block) = grow_by_block::<N>(buf) else {
        return false;
    };
    block[0] = first;
    // A prefix is mostly a large PUBLISH's head, whose remaining length
    // takes two bytes below 16 KiB: those are written without the loop.
    let header = if (0x80..0x4000).contains(&remaining) {
        block[1] = (remaining & 0x7F) as u8 | 0x80;
        block[2] = (remaining >> 7) as u8;
        3
    } else {
        1 + put_var_int(&mut block[1..5], remaining)
    };
    let mut scratch = Scratch {
        bytes: block,
        len: header,
    };
    let written = match fill(&mut scratch) {
        Some(()) => scratch.len,
        None => 0,
    };
    buf.truncate(start + written);
    written > 0
}

/// Grows `buf` by `N` zeroes (a copy of fixed size, with no call to
/// `memset`) and returns them.
#[inline(always)]
fn grow_by_block<const N: usize>(buf: &mut BytesMut) -> Option<&mut [u8; N]> {
    buf.extend_from_slice(&[0; N]);
    // The last N bytes: one length test, where `start..` would take two.
    buf.last_chunk_mut::<N>()
}

/// Writes `value` (at most [`MAX_VARIABLE_INT`]) as a variable byte
/// integer at the start of `dst` and returns its length.
#[inline(always)]
fn put_var_int(dst: &mut [u8], value: usize) -> usize {
    let mut v = value;
    let mut n = 0;
    for slot in dst.iter_mut() {
        let byte = (v & 0x7F) as u8;
        v >>= 7;
        n += 1;
        if v == 0 {
            *slot = byte;
            break;
        }
        *slot = byte | 0x80;
    }
    n
}

/// A packet's body being written in place (see [`write_small`]): `N`
/// bytes, the first few of them the fixed header's.
///
/// The bytes are borrowed, not a field: kept apart from `len`, the
/// compiler can tell that writing them leaves `len` alone, and keeps `len`
/// in a register.
pub(crate) struct Scratch<'a, const N: usize> {
    bytes: &'a mut [u8; N],
    len: usize,
}

impl<const N: usize> Scratch<'_, N> {
    /// Appends `src`; `None` if it does not fit.
    #[inline(always)]
    pub(crate) fn put(&mut self, src: &[u8]) -> Option<()> {
        let end = self.len + src.len();
        self.bytes.get_mut(self.len..end)?.copy_from_slice(src);
        self.len = end;
        Some(())
    }

    /// Appends `src`, copied as [`copy_small`] does; `None` if it does
    /// not fit.
    #[inline(always)]
    pub(crate) fn put_small(&mut self, src: &[u8]) -> Option<()> {
        let end = self.len + src.len();
        copy_small(self.bytes.get_mut(self.len..end)?, src);
        self.len = end;
        Some(())
    }

    #[inline(always)]
    pub(crate) fn put_u8(&mut self, value: u8) -> Option<()> {
        self.put(&[value])
    }

    #[inline(always)]
    pub(crate) fn put_u16(&mut self, value: u16) -> Option<()> {
        self.put(&value.to_be_bytes())
    }

    /// Appends a packet identifier, if there is one: `id` is 0 for none
    /// (identifiers are never 0). The two bytes are written either way and
    /// counted only for an identifier, so no branch depends on whether
    /// there is one; `None` if two bytes do not fit, even without one.
    #[inline(always)]
    pub(crate) fn put_packet_id(&mut self, id: u16) -> Option<()> {
        let end = self.len + 2;
        self.bytes
            .get_mut(self.len..end)?
            .copy_from_slice(&id.to_be_bytes());
        self.len += 2 * usize::from(id != 0);
        Some(())
    }

    /// Appends a length-prefixed field, then `after` (a SUBSCRIBE's
    /// options byte) when given.
    #[inline(always)]
    pub(crate) fn put_field(&mut self, data: &[u8], after: Option<u8>) -> Option<()> {
        let n = data.len();
        let extra = usize::from(after.is_some());
        // One check that the whole piece fits; `dst` is then exactly as
        // long as the piece, which the writes below are checked against.
        let dst = self.bytes.get_mut(self.len..)?.get_mut(..n + 2 + extra)?;
        let (prefix, rest) = dst.split_at_mut(2);
        // Anything longer than a u16 would not have fitted.
        prefix.copy_from_slice(&(n as u16).to_be_bytes());
        let (text, rest) = rest.split_at_mut(n);
        copy_short(text, data);
        if let (Some(byte), Some(slot)) = (after, rest.first_mut()) {
            *slot = byte;
        }
        self.len += n + 2 + extra;
        Some(())
    }
}

/// `dst.copy_from_slice(src)` for the short strings of a small packet: up
/// to 32 bytes as two overlapping fixed-size copies (a few register moves)
/// instead of a call to `memcpy`, which for a topic filter's dozen or two
/// bytes costs more than the copy.
#[inline(always)]
fn copy_short(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    // Callers pass equal lengths. Saying so lets the compiler drop the
    // length checks of the fixed-size copies below; unequal lengths get
    // `copy_from_slice`'s own (panicking) check, as they would without
    // this function.
    if dst.len() != n {
        return dst.copy_from_slice(src);
    }
    if (16..=32).contains(&n) {
        dst[..16].copy_from_slice(&src[..16]);
        dst[n - 16..].copy_from_slice(&src[n - 16..]);
    } else if (8..16).contains(&n) {
        dst[..8].copy_from_slice(&src[..8]);
        dst[n - 8..].copy_from_slice(&src[n - 8..]);
    } else if (4..8).contains(&n) {
        dst[..4].copy_from_slice(&src[..4]);
        dst[n - 4..].copy_from_slice(&src[n - 4..]);
    } else {
        dst.copy_from_slice(src);
    }
}

/// `dst.copy_from_slice(src)` for up to 128 bytes, as two overlapping
/// fixed-size copies, without a call to `memcpy`: [`copy_short`] up to 32
/// bytes, then blocks of 32 or 64.
#[inline(always)]
fn copy_small(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    if dst.len() != n {
        return dst.copy_from_slice(src);
    }
    if (65..=128).contains(&n) {
        dst[..64].copy_from_slice(&src[..64]);
        dst[n - 64..].copy_from_slice(&src[n - 64..]);
    } else if (33..=64).contains(&n) {
        dst[..32].copy_from_slice(&src[..32]);
        dst[n - 32..].copy_from_slice(&src[n - 32..]);
    } else {
        copy_short(dst, src);
    }
}

/// Writes a length-prefixed field. Callers have checked the length fits a `u16`.
#[inline]
pub(crate) fn write_binary(buf: &mut BytesMut, data: &[u8]) {
    put_u16(buf, data.len() as u16);
    buf.extend_from_slice(data);
}

/// Wire size of a length-prefixed field.
pub(crate) fn binary_len(data: &[u8]) -> usize {
    2 + data.len()
}

/// Why a value cannot be an MQTT UTF-8 string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StringError {
    /// Longer than 65,535 bytes, the most a two-byte length prefix can say.
    #[error("string is longer than 65535 bytes")]
    TooLong,
    /// Contains U+0000, which MQTT strings must not ([MQTT-1.5.4-2]).
    #[error("string contains the null character U+0000")]
    ContainsNul,
    /// The bytes are not well-formed UTF-8 ([MQTT-1.5.4-1]).
    #[error("string is not well-formed UTF-8")]
    InvalidUtf8,
}

/// An MQTT UTF-8 encoded string: well-formed UTF-8, no U+0000, at most
/// 65,535 bytes.
///
/// It is a cheap, reference-counted view: a decoded string points into the
/// buffer the packet was read from, and cloning one never copies. It
/// dereferences to `&str`.
///
/// ```
/// use plover::codec::MqttString;
///
/// let topic = MqttString::try_from("home/kitchen/light").unwrap();
/// assert!(topic.starts_with("home/"));
/// assert_eq!(topic, "home/kitchen/light");
///
/// // U+0000 is not allowed in an MQTT string.
/// assert!(MqttString::try_from("a\0b").is_err());
/// ```
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MqttString(ByteString);

impl MqttString {
    /// An empty string.
    pub const fn new() -> Self {
        MqttString(ByteString::from_static(""))
    }

    /// Wraps a string literal, checking it once.
    ///
    /// # Panics
    ///
    /// If `s` contains U+0000 or is longer than 65,535 bytes; this is meant
    /// for literals, use `try_from` for anything else.
    pub fn from_static(s: &'static str) -> Self {
        match check(s) {
            Ok(()) => MqttString(ByteString::from_static(s)),
            Err(e) => panic!("invalid MQTT string literal: {e}"),
        }
    }

    /// The string as `&str`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The UTF-8 bytes, sharing this string's storage.
    pub fn into_bytes(self) -> Bytes {
        self.0.into_bytes()
    }

    /// A copy of a string the borrowing decoder checked (so it is an MQTT
    /// string already).
    pub(crate) fn copy_checked(s: &str) -> Self {
        MqttString(ByteString::from(s))
    }

    /// Validates bytes that came off the wire, without copying them.
    pub(crate) fn from_wire(raw: Bytes) -> Result<Self, DecodeError> {
        // [MQTT-1.5.4-1] ill-formed UTF-8 (including surrogates) is malformed.
        let s = ByteString::try_from(raw).map_err(|_| DecodeError::InvalidUtf8)?;
        // [MQTT-1.5.4-2] U+0000 MUST NOT be included.
        if has_nul(s.as_bytes()) {
            return Err(DecodeError::NulInString);
        }
        Ok(MqttString(s))
    }

    /// Like [`from_wire`](Self::from_wire) for a topic name: also says
    /// whether the name needs the full topic-name check (it is empty, or
    /// has `+` or `#`). Checking for U+0000 and the wildcards in one pass
    /// keeps a valid name, the common case, to a single scan after UTF-8.
    #[inline]
    pub(crate) fn topic_from_wire(raw: Bytes) -> Result<(Self, bool), DecodeError> {
        if raw.is_empty() || has_nul_or_wildcard(&raw) {
            return Ok((MqttString::from_wire(raw)?, true));
        }
        let s = ByteString::try_from(raw).map_err(|_| DecodeError::InvalidUtf8)?;
        Ok((MqttString(s), false))
    }

    /// Wire size: two length bytes and the UTF-8 bytes.
    #[inline]
    pub(crate) fn wire_len(&self) -> usize {
        2 + self.0.len()
    }

    #[inline]
    pub(crate) fn write(&self, buf: &mut BytesMut) {
        write_binary(buf, self.0.as_bytes());
    }
}

fn check(s: &str) -> Result<(), StringError> {
    if s.len() > MAX_FIELD_LEN {
        Err(StringError::TooLong)
    } else if has_nul(s.as_bytes()) {
        Err(StringError::ContainsNul)
    } else {
        Ok(())
    }
}

impl TryFrom<&str> for MqttString {
    type Error = StringError;
    fn try_from(s: &str) -> Result<Self, StringError> {
        check(s)?;
        Ok(MqttString(ByteString::from(s)))
    }
}

impl TryFrom<String> for MqttString {
    type Error = StringError;
    fn try_from(s: String) -> Result<Self, StringError> {
        check(&s)?;
        Ok(MqttString(ByteString::from(s)))
    }
}

impl TryFrom<&String> for MqttString {
    type Error = StringError;
    fn try_from(s: &String) -> Result<Self, StringError> {
        MqttString::try_from(s.as_str())
    }
}

impl TryFrom<Bytes> for MqttString {
    type Error = StringError;
    fn try_from(b: Bytes) -> Result<Self, StringError> {
        let s = ByteString::try_from(b).map_err(|_| StringError::InvalidUtf8)?;
        check(&s)?;
        Ok(MqttString(s))
    }
}

impl Deref for MqttString {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for MqttString {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for MqttString {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for MqttString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for MqttString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl PartialEq<str> for MqttString {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for MqttString {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl From<MqttString> for String {
    fn from(s: MqttString) -> String {
        s.as_str().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_at_a_time_scans_agree_with_byte_by_byte() {
        // Every position in strings of 0 to 40 bytes, for each byte that
        // matters and its neighbours (which must not match).
        for len in 0..40 {
            for pos in 0..len {
                for b in [0u8, b'+', b'#', 1, b'*', b'"', b'$', 0x80, 0xFF, b'a'] {
                    let mut v = vec![b'x'; len];
                    v[pos] = b;
                    assert_eq!(has_nul(&v), v.contains(&0), "{v:?}");
                    let want = v.iter().any(|&c| c == 0 || c == b'+' || c == b'#');
                    assert_eq!(has_nul_or_wildcard(&v), want, "{v:?}");
                }
            }
            assert!(!has_nul_or_wildcard(&vec![b'a'; len]));
        }
    }

    #[test]
    fn short_copies_copy_every_length() {
        let src: Vec<u8> = (1..=40).collect();
        for n in 0..=40 {
            let mut dst = vec![0u8; n];
            copy_short(&mut dst, &src[..n]);
            assert_eq!(dst, src[..n], "{n} bytes");
        }
    }

    #[test]
    fn small_packets_are_written_in_place_with_their_header() {
        let mut buf = BytesMut::from(&b"before"[..]);
        // 200 + 53 bytes: a two-byte remaining length, the body moved up.
        let written = write_small::<256>(&mut buf, 0x82, |s| {
            s.put(&[7; 200])?;
            assert_eq!(s.put_field(&[8; 60], Some(9)), None, "263 > 254");
            s.put_field(&[8; 50], Some(9))
        });
        assert!(written);
        assert_eq!(buf[..6], *b"before");
        let packet = &buf[6..];
        assert_eq!(packet[..3], [0x82, 0xFD, 0x01], "253 as a two-byte length");
        assert_eq!(packet.len(), 3 + 253);
        assert_eq!(packet[3..3 + 200], [7; 200]);
        assert_eq!(packet[3 + 200..3 + 202], [0, 50]);
        assert_eq!(packet[packet.len() - 1], 9);

        // A body of 254 bytes would need 257.
        let mut buf = BytesMut::from(&b"kept"[..]);
        assert!(!write_small::<256>(&mut buf, 0x82, |s| s.put(&[1; 254])));
        assert_eq!(buf, b"kept"[..], "nothing written");
        assert!(!write_small::<256>(&mut buf, 0x82, |s| s.put(&[1; 255])));
        assert_eq!(buf, b"kept"[..], "nothing written");

        // A one-byte remaining length, at every size it covers.
        for n in 0..0x80 {
            let mut buf = BytesMut::new();
            assert!(write_small::<256>(&mut buf, 0x30, |s| s.put_small(&vec![5; n])));
            assert_eq!(buf[..2], [0x30, n as u8]);
            assert_eq!(buf[2..], vec![5; n]);
        }
    }

    #[test]
    fn prefixes_carry_the_whole_remaining_length() {
        for (remaining, header) in [
            (0, &[0x30, 0][..]),
            (127, &[0x30, 0x7F]),
            (128, &[0x30, 0x80, 0x01]),
            (16_383, &[0x30, 0xFF, 0x7F]),
            (16_384, &[0x30, 0x80, 0x80, 0x01]),
            (2_097_152, &[0x30, 0x80, 0x80, 0x80, 0x01]),
            (MAX_VARIABLE_INT as usize, &[0x30, 0xFF, 0xFF, 0xFF, 0x7F]),
        ] {
            let mut buf = BytesMut::from(&b"x"[..]);
            assert!(write_prefix::<64>(&mut buf, 0x30, remaining, |s| s.put_field(b"a/b", None)));
            let mut want = b"x".to_vec();
            want.extend_from_slice(header);
            want.extend_from_slice(&[0, 3, b'a', b'/', b'b']);
            assert_eq!(buf, want[..], "{remaining}");
        }
        let mut buf = BytesMut::from(&b"kept"[..]);
        assert!(!write_prefix::<64>(&mut buf, 0x30, 70_000, |s| s.put(&[1; 61])));
        assert_eq!(buf, b"kept"[..], "nothing written");
    }

    #[test]
    fn small_copies_copy_every_length() {
        let src: Vec<u8> = (0..=130).collect();
        for n in 0..=130 {
            let mut dst = vec![0xEEu8; n];
            copy_small(&mut dst, &src[..n]);
            assert_eq!(dst, src[..n], "{n} bytes");
        }
    }

    #[test]
    fn short_words_hold_the_bytes_then_the_fill() {
        let bytes = [1u8, 2, 3, 4, 5, 6, 7];
        for n in 0..8 {
            let mut want = [0xEEu8; 8];
            want[..n].copy_from_slice(&bytes[..n]);
            assert_eq!(
                short_word(&bytes[..n], 0xEE),
                u64::from_le_bytes(want),
                "{n}"
            );
        }
    }

    fn var_int_bytes(v: usize) -> Vec<u8> {
        let mut b = BytesMut::new();
        write_var_int(&mut b, v);
        b.to_vec()
    }

    #[test]
    fn var_int_boundaries_from_the_spec_table() {
        // §1.5.5's table: the smallest and largest value of each length.
        let cases: &[(usize, &[u8])] = &[
            (0, &[0x00]),
            (127, &[0x7F]),
            (128, &[0x80, 0x01]),
            (16_383, &[0xFF, 0x7F]),
            (16_384, &[0x80, 0x80, 0x01]),
            (2_097_151, &[0xFF, 0xFF, 0x7F]),
            (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
            (268_435_455, &[0xFF, 0xFF, 0xFF, 0x7F]),
        ];
        for &(value, bytes) in cases {
            assert_eq!(var_int_bytes(value), bytes, "encoding {value}");
            assert_eq!(var_int_len(value), bytes.len(), "length of {value}");
            assert_eq!(
                read_var_int(bytes).unwrap(),
                Some((value as u32, bytes.len())),
                "decoding {value}"
            );
        }
    }

    #[test]
    fn var_int_partial_and_malformed() {
        assert_eq!(read_var_int(&[]).unwrap(), None);
        assert_eq!(read_var_int(&[0x80]).unwrap(), None);
        assert_eq!(read_var_int(&[0xFF, 0xFF, 0xFF]).unwrap(), None);
        assert_eq!(
            read_var_int(&[0xFF, 0xFF, 0xFF, 0xFF, 0x01]),
            Err(DecodeError::MalformedVariableInteger)
        );
        assert_eq!(
            read_var_int(&[0x80, 0x00]),
            Err(DecodeError::MalformedVariableInteger)
        );
    }

    #[test]
    fn strings_are_checked() {
        assert_eq!(MqttString::try_from("a\0"), Err(StringError::ContainsNul));
        let long = "x".repeat(65_536);
        assert_eq!(
            MqttString::try_from(long.as_str()),
            Err(StringError::TooLong)
        );
        assert!(MqttString::try_from("x".repeat(65_535)).is_ok());
        assert_eq!(
            MqttString::try_from(Bytes::from_static(&[0xC0, 0x80])),
            Err(StringError::InvalidUtf8)
        );
        // A decoded string is a view into the input: same pointer.
        let input = Bytes::from_static(b"\x00\x03abc");
        let mut r = Reader::whole(&input);
        let s = r.string().unwrap();
        assert_eq!(s, "abc");
        assert_eq!(s.as_ptr(), input[2..].as_ptr());
    }

    #[test]
    fn reader_never_reads_past_the_end() {
        let short = Bytes::from_static(&[0x00, 0x05, b'a']);
        let mut r = Reader::whole(&short);
        assert_eq!(r.string(), Err(DecodeError::UnexpectedEnd));
        let one = Bytes::from_static(&[0x01]);
        let mut r = Reader::whole(&one);
        assert_eq!(r.u16(), Err(DecodeError::UnexpectedEnd));
        assert_eq!(r.u8(), Ok(1));
        assert_eq!(r.u8(), Err(DecodeError::UnexpectedEnd));
        assert_eq!(r.u32(), Err(DecodeError::UnexpectedEnd));
    }
}
