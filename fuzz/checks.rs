//! The properties the fuzz targets check, in one place, so that the fuzz
//! targets and `tests/fuzz_corpus.rs` (which replays the committed corpus in
//! `cargo test`) assert exactly the same things.
//!
//! Both include this file with `#[path]`; it may only use `plover` and
//! `bytes`, the two crates both sides depend on. Every loop here either
//! consumes input or stops, so no input can make a check hang.

// Each fuzz target uses only some of these checks.
#![allow(dead_code)]

use bytes::{Bytes, BytesMut};
use plover::codec::{self, DecodeError, DisconnectReasonCode, Packet, ProtocolVersion};

/// The largest packet the checks accept. Big enough for every packet type
/// and for payloads the fuzzer can build, small enough that a hostile
/// remaining length cannot make `decode` reserve much memory.
pub const MAX_PACKET_SIZE: usize = 1 << 20;

/// How a stream of packets ended.
pub type Ending = Result<(), DecodeError>;

/// The first byte of an input picks the protocol version for the targets
/// that are not tied to one.
pub fn version_from(selector: u8) -> ProtocolVersion {
    if selector & 1 == 0 {
        ProtocolVersion::V311
    } else {
        ProtocolVersion::V5
    }
}

/// Decodes packets from the front of `input` with [`codec::decode_bytes`]
/// until it needs more bytes (`Ok(())`) or fails (`Err`).
///
/// Along the way it checks what must hold for any input: a packet consumes
/// exactly the length its fixed header announced, `Ok(None)` leaves the
/// input untouched, and an error can be shown and mapped to a reason code.
pub fn decode_all(input: &[u8], version: ProtocolVersion) -> (Vec<Packet>, Ending) {
    let mut buf = Bytes::copy_from_slice(input);
    let mut packets = Vec::new();
    loop {
        let before = buf.clone();
        let framed = codec::frame_len(&buf, MAX_PACKET_SIZE);
        let borrowed = codec::decode_slice(&before, version, MAX_PACKET_SIZE);
        let owned = codec::decode_bytes(&mut buf, version, MAX_PACKET_SIZE);
        check_borrowed_agrees(&borrowed, &owned, before.len() - buf.len());
        match owned {
            Ok(Some(packet)) => {
                let consumed = before.len() - buf.len();
                match framed {
                    Ok(Some((_, total))) => assert_eq!(
                        consumed, total,
                        "decode_bytes consumed {consumed} bytes of a {total}-byte frame"
                    ),
                    other => panic!("decoded {packet:?} where frame_len said {other:?}"),
                }
                packets.push(packet);
            }
            Ok(None) => {
                assert_eq!(buf, before, "Ok(None) consumed bytes");
                assert!(
                    matches!(framed, Ok(None))
                        || matches!(framed, Ok(Some((_, t))) if t > buf.len()),
                    "Ok(None) with a complete frame: {framed:?}"
                );
                return (packets, Ok(()));
            }
            Err(err) => {
                exercise_error(err);
                return (packets, Err(err));
            }
        }
    }
}

/// The borrowing decoder must give what the owned one gives for the same
/// bytes: the same packet (as an owned copy) and length, the same "need
/// more", the same error.
pub fn check_borrowed_agrees(
    borrowed: &Result<Option<(codec::PacketRef<'_>, usize)>, DecodeError>,
    owned: &Result<Option<Packet>, DecodeError>,
    consumed: usize,
) {
    match (borrowed, owned) {
        (Ok(Some((b, len))), Ok(Some(o))) => {
            assert_eq!(&b.to_packet(), o, "decode_slice and decode_bytes disagree");
            assert_eq!(b.packet_type(), o.packet_type());
            assert_eq!(*len, consumed, "decode_slice's length for {o:?}");
        }
        (Ok(None), Ok(None)) => {}
        (Err(b), Err(o)) => assert_eq!(b, o, "decode_slice and decode_bytes fail differently"),
        (b, o) => panic!("decode_slice gave {b:?} where decode_bytes gave {o:?}"),
    }
}

/// Shows an error and maps it to the DISCONNECT reason code a 5.0
/// connection would send: neither may panic, and the code must be an error.
pub fn exercise_error(err: DecodeError) {
    assert!(!err.to_string().is_empty());
    let reason = DisconnectReasonCode::from(err);
    assert!(reason.is_error(), "{err:?} maps to {reason:?}");
}

/// Encodes a packet that was decoded in `version`; whatever decodes must be
/// encodable in the same version, and `encoded_len` must say how many bytes
/// `encode` writes.
pub fn encode_decoded(packet: &Packet, version: ProtocolVersion) -> Bytes {
    let expected = match packet.encoded_len(version) {
        Ok(n) => n,
        Err(e) => panic!("decoded {packet:?} but encoded_len({version}) fails: {e}"),
    };
    // Something in the buffer already: encode must append, not overwrite.
    let mut buf = BytesMut::from(&b"xy"[..]);
    if let Err(e) = packet.encode(version, &mut buf) {
        panic!("decoded {packet:?} but encode({version}) fails: {e}");
    }
    assert_eq!(&buf[..2], b"xy", "encode touched bytes before its own");
    let written = buf.split_off(2).freeze();
    assert_eq!(
        written.len(),
        expected,
        "encoded_len({version}) of {packet:?} is {expected} but encode wrote {}",
        written.len()
    );
    written
}

/// Decodes exactly one packet from `bytes`, which must be a whole packet.
pub fn decode_one(bytes: &Bytes, version: ProtocolVersion) -> Packet {
    let mut rest = bytes.clone();
    // No limit of our own: the size limit is not what is under test here.
    match codec::decode_bytes(&mut rest, version, usize::MAX) {
        Ok(Some(packet)) => {
            assert!(
                rest.is_empty(),
                "{} bytes left after re-decoding {packet:?}",
                rest.len()
            );
            packet
        }
        other => panic!("re-decoding {bytes:02x?} in {version} gave {other:?}"),
    }
}

/// decode(encode(p)) == p for a decoded packet `p`.
pub fn check_reencode(packet: &Packet, version: ProtocolVersion) {
    let bytes = encode_decoded(packet, version);
    let again = decode_one(&bytes, version);
    assert_eq!(
        &again, packet,
        "decode(encode(p)) != p in {version}; bytes {bytes:02x?}"
    );
}

/// The stricter round trip: decode(encode(p)) == p, and encoding that again
/// gives the very same bytes (encoding is canonical, so two equal packets
/// are one byte string). Also formats the packet, which walks its
/// zero-copy property lists.
pub fn check_canonical(packet: &Packet, version: ProtocolVersion) {
    let bytes = encode_decoded(packet, version);
    let again = decode_one(&bytes, version);
    assert_eq!(
        &again, packet,
        "decode(encode(p)) != p in {version}; bytes {bytes:02x?}"
    );
    let bytes_again = encode_decoded(&again, version);
    assert_eq!(
        bytes_again, bytes,
        "encoding is not canonical in {version} for {packet:?}"
    );
    assert!(!format!("{again:?}").is_empty());
}

/// Target `decode_v311` / `decode_v5`: decode a whole stream, and check
/// decode(encode(p)) == p for every packet in it.
pub fn check_stream(input: &[u8], version: ProtocolVersion) {
    let (packets, _) = decode_all(input, version);
    for packet in &packets {
        check_reencode(packet, version);
    }
}

/// Target `roundtrip`: decode the input as each version in turn, and for
/// every packet check decode → encode → decode → encode.
pub fn check_roundtrip(input: &[u8]) {
    for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
        let (packets, _) = decode_all(input, version);
        for packet in &packets {
            check_canonical(packet, version);
        }
    }
}

/// How many of the leading bytes of a `decode_chunked` input are chunk
/// sizes: the low four bits of the second byte, plus one.
fn chunk_header(input: &[u8]) -> Option<(ProtocolVersion, &[u8], &[u8])> {
    let (&selector, rest) = input.split_first()?;
    let (&count, rest) = rest.split_first()?;
    let count = usize::from(count & 0x0F) + 1;
    let split = count.min(rest.len());
    let (sizes, stream) = rest.split_at(split);
    Some((version_from(selector), sizes, stream))
}

/// Target `decode_chunked`: the first byte picks the version, the second
/// how many chunk sizes follow (1 to 16, each 1 to 64 bytes, used in turn),
/// and the rest is a stream fed to [`codec::decode`] in chunks of those
/// sizes, as a socket would deliver it. The packets and the way the stream
/// ends must be exactly those of [`codec::decode_bytes`] over the whole.
pub fn check_chunked(input: &[u8]) {
    let Some((version, sizes, stream)) = chunk_header(input) else {
        return;
    };
    let (expected, expected_end) = decode_all(stream, version);

    let mut got = Vec::new();
    let mut end: Ending = Ok(());
    let mut buf = BytesMut::new();
    let mut fed = 0;
    let mut turn = 0;
    'feed: while fed < stream.len() {
        let size = sizes
            .get(turn % sizes.len().max(1))
            .map_or(1, |b| usize::from(b % 64) + 1);
        turn += 1;
        let chunk = &stream[fed..(fed + size).min(stream.len())];
        fed += chunk.len();
        buf.extend_from_slice(chunk);
        loop {
            let before = buf.len();
            match codec::decode(&mut buf, version, MAX_PACKET_SIZE) {
                Ok(Some(packet)) => {
                    assert!(buf.len() < before, "Ok(Some) consumed nothing");
                    got.push(packet);
                }
                Ok(None) => {
                    assert_eq!(buf.len(), before, "Ok(None) consumed bytes");
                    // The unread bytes must still be the stream's own.
                    assert_eq!(&buf[..], &stream[fed - buf.len()..fed]);
                    break;
                }
                Err(err) => {
                    end = Err(err);
                    break 'feed;
                }
            }
        }
    }
    assert_eq!(
        got, expected,
        "chunked decode ({version}, sizes {sizes:?}) gave other packets"
    );
    assert_eq!(
        end, expected_end,
        "chunked decode ({version}, sizes {sizes:?}) ended otherwise"
    );
}
