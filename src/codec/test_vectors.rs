//! Byte-vector assertions shared by the packet families' tests: each vector
//! is checked both ways (both decode paths, encode, and the size known up
//! front).

use bytes::{Bytes, BytesMut};

use super::{Packet, ProtocolVersion, decode, decode_bytes};

/// Bytes as space-separated hex, for readable failure messages.
/// A whole packet as written out by hand: `first`, the body's length as a
/// variable byte integer (the reference layout of §1.5.5, one byte at a
/// time), then the body.
pub(crate) fn packet_bytes(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let mut rest = body.len();
    loop {
        let byte = (rest & 0x7F) as u8;
        rest >>= 7;
        out.push(if rest > 0 { byte | 0x80 } else { byte });
        if rest == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    let parts: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    parts.join(" ")
}

/// Checks one byte vector, given as its fields in wire order.
#[track_caller]
pub(crate) fn assert_vector(version: ProtocolVersion, fields: &[&[u8]], expected: Packet) {
    let wire = fields.concat();
    // (a) The immutable path consumes exactly the packet ...
    let mut input = Bytes::from(wire.clone());
    let decoded = decode_bytes(&mut input, version, usize::MAX);
    assert_eq!(
        decoded,
        Ok(Some(expected.clone())),
        "decoding {}",
        hex(&wire)
    );
    assert!(input.is_empty(), "{} bytes left over", input.len());
    // ... and so does the streaming one, with a limit of exactly the
    // packet's size (the limit includes the fixed header).
    let mut stream = BytesMut::from(&wire[..]);
    let streamed = decode(&mut stream, version, wire.len());
    assert_eq!(
        streamed,
        Ok(Some(expected.clone())),
        "streaming {}",
        hex(&wire)
    );
    assert!(stream.is_empty());
    // (b) Encoding writes exactly these bytes.
    let mut out = BytesMut::new();
    expected.encode(version, &mut out).expect("encode");
    assert_eq!(hex(&out), hex(&wire), "encoding {expected:?}");
    // (c) The size is known before writing.
    assert_eq!(expected.encoded_len(version), Ok(wire.len()));
}

/// For a valid but longer-than-needed form: it decodes to `expected`,
/// which encodes to the shortest form, `canonical`.
#[track_caller]
pub(crate) fn assert_decodes_to_shorter(
    version: ProtocolVersion,
    long: &[&[u8]],
    expected: Packet,
    canonical: &[&[u8]],
) {
    let wire = long.concat();
    let decoded = decode_bytes(&mut Bytes::from(wire.clone()), version, usize::MAX);
    assert_eq!(
        decoded,
        Ok(Some(expected.clone())),
        "decoding {}",
        hex(&wire)
    );
    assert_vector(version, canonical, expected);
}

/// What `expected` encodes to in `version`, when it is not what it
/// decodes from (a field that version does not carry).
#[track_caller]
pub(crate) fn assert_encodes_to(version: ProtocolVersion, expected: Packet, fields: &[&[u8]]) {
    let wire = fields.concat();
    let mut out = BytesMut::new();
    expected.encode(version, &mut out).expect("encode");
    assert_eq!(hex(&out), hex(&wire), "encoding {expected:?}");
    assert_eq!(expected.encoded_len(version), Ok(wire.len()));
}
