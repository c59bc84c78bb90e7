//! Malformed input, one row per rule: every way a peer can break the wire
//! format that the codec must refuse, with the exact error it must give.
//!
//! Each row is a whole frame (fixed header included) holding exactly one
//! defect, so the expected error is unambiguous. Expectations follow the
//! specifications (MQTT 3.1.1 and 5.0, statement ids quoted), not the current
//! code: a row that fails is a codec bug to fix, not a row to weaken.

use std::mem::discriminant;
use std::panic::{AssertUnwindSafe, catch_unwind};

use bytes::{Bytes, BytesMut};
use plover::codec::{
    DecodeError as E, DisconnectReasonCode, InvalidReasonCode, PacketType, PropertyId,
    ProtocolVersion, decode, decode_bytes, frame_len,
};
use plover::topic::TopicError;

const V3: ProtocolVersion = ProtocolVersion::V311;
const V5: ProtocolVersion = ProtocolVersion::V5;

/// The maximum packet size every row is decoded with. Small, so that the
/// "too large" row needs only a fixed header.
const MAX: usize = 256;

struct Row {
    name: &'static str,
    version: ProtocolVersion,
    bytes: &'static [u8],
    expected: E,
}

const fn flags(packet: PacketType, flags: u8) -> E {
    E::InvalidHeaderFlags { packet, flags }
}

const fn reason(packet: &'static str, code: u8) -> E {
    E::InvalidReasonCode(InvalidReasonCode { packet, code })
}

const fn not_allowed(packet: PacketType, property: PropertyId) -> E {
    E::PropertyNotAllowed { packet, property }
}

// Byte notation in the comments: `|` separates fields; "s(x)" is a UTF-8
// string field (two length bytes, then x); "RL" is the remaining length;
// "props" is a 5.0 property block (its length, then the properties).
static ROWS: &[Row] = &[
    // ---- Fixed header flags [MQTT-2.1.3-1]: "Where a flag bit is marked as
    // "Reserved", it is reserved for future use and MUST be set to the value
    // listed"; 5.0 adds "If invalid flags are received it is a Malformed Packet".
    Row {
        name: "CONNECT with flags 1",
        version: V3,
        // 0x11 | RL 13 | s(MQTT) | level 4 | flags 02 | keepalive 60 | s(c)
        bytes: &[
            0x11, 0x0D, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x01,
            b'c',
        ],
        expected: flags(PacketType::Connect, 1),
    },
    Row {
        name: "CONNACK with flags 1",
        version: V3,
        // 0x21 | RL 2 | ack flags 0 | return code 0
        bytes: &[0x21, 0x02, 0x00, 0x00],
        expected: flags(PacketType::ConnAck, 1),
    },
    Row {
        name: "PUBACK with flags 2",
        version: V3,
        // 0x42 | RL 2 | packet id 1
        bytes: &[0x42, 0x02, 0x00, 0x01],
        expected: flags(PacketType::PubAck, 2),
    },
    Row {
        name: "PUBREC with flags 8",
        version: V5,
        // 0x58 | RL 2 | packet id 1
        bytes: &[0x58, 0x02, 0x00, 0x01],
        expected: flags(PacketType::PubRec, 8),
    },
    Row {
        name: "PUBREL with flags 0 instead of 2",
        version: V3,
        // 0x60 | RL 2 | packet id 1   [MQTT-3.6.1-1]: bits 3..0 MUST be 0,0,1,0
        bytes: &[0x60, 0x02, 0x00, 0x01],
        expected: flags(PacketType::PubRel, 0),
    },
    Row {
        name: "PUBCOMP with flags 2",
        version: V5,
        // 0x72 | RL 2 | packet id 1
        bytes: &[0x72, 0x02, 0x00, 0x01],
        expected: flags(PacketType::PubComp, 2),
    },
    Row {
        name: "SUBSCRIBE with flags 0 instead of 2",
        version: V3,
        // 0x80 | RL 6 | packet id 1 | s(a) | options 0   [MQTT-3.8.1-1]
        bytes: &[0x80, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x00],
        expected: flags(PacketType::Subscribe, 0),
    },
    Row {
        name: "SUBACK with flags 2",
        version: V3,
        // 0x92 | RL 3 | packet id 1 | granted QoS 0
        bytes: &[0x92, 0x03, 0x00, 0x01, 0x00],
        expected: flags(PacketType::SubAck, 2),
    },
    Row {
        name: "UNSUBSCRIBE with flags 0 instead of 2",
        version: V5,
        // 0xA0 | RL 6 | packet id 1 | props len 0 | s(a)   [MQTT-3.10.1-1]
        bytes: &[0xA0, 0x06, 0x00, 0x01, 0x00, 0x00, 0x01, b'a'],
        expected: flags(PacketType::Unsubscribe, 0),
    },
    Row {
        name: "UNSUBACK with flags 2",
        version: V3,
        // 0xB2 | RL 2 | packet id 1
        bytes: &[0xB2, 0x02, 0x00, 0x01],
        expected: flags(PacketType::UnsubAck, 2),
    },
    Row {
        name: "PINGREQ with flags 1",
        version: V3,
        // 0xC1 | RL 0
        bytes: &[0xC1, 0x00],
        expected: flags(PacketType::PingReq, 1),
    },
    Row {
        name: "PINGRESP with flags 4",
        version: V5,
        // 0xD4 | RL 0
        bytes: &[0xD4, 0x00],
        expected: flags(PacketType::PingResp, 4),
    },
    Row {
        name: "DISCONNECT with flags 2",
        version: V3,
        // 0xE2 | RL 0   [MQTT-3.14.1-1]
        bytes: &[0xE2, 0x00],
        expected: flags(PacketType::Disconnect, 2),
    },
    Row {
        name: "AUTH with flags 1",
        version: V5,
        // 0xF1 | RL 0   [MQTT-3.15.1-1]
        bytes: &[0xF1, 0x00],
        expected: flags(PacketType::Auth, 1),
    },
    // ---- Packet type (§2.1.2: 0 is "Reserved, Forbidden"; so is 15 in 3.1.1).
    Row {
        name: "packet type 0",
        version: V3,
        // 0x00 | RL 0
        bytes: &[0x00, 0x00],
        expected: E::InvalidPacketType(0),
    },
    Row {
        name: "packet type 0 in 5.0",
        version: V5,
        // 0x00 | RL 0
        bytes: &[0x00, 0x00],
        expected: E::InvalidPacketType(0),
    },
    Row {
        name: "AUTH (type 15) in a 3.1.1 stream",
        version: V3,
        // 0xF0 | RL 0
        bytes: &[0xF0, 0x00],
        expected: E::InvalidPacketType(15),
    },
    // ---- Remaining length (§1.5.5 / 3.1.1 §2.2.3): at most four bytes,
    // [MQTT-1.5.5-1] "MUST use the minimum number of bytes necessary".
    Row {
        name: "remaining length with a 5th byte",
        version: V3,
        // 0x30 | RL FF FF FF FF 01 (four continuation bytes)
        bytes: &[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
        expected: E::MalformedVariableInteger,
    },
    Row {
        name: "remaining length 0 encoded as 80 00",
        version: V3,
        // 0xC0 (PINGREQ) | RL 80 00
        bytes: &[0xC0, 0x80, 0x00],
        expected: E::MalformedVariableInteger,
    },
    Row {
        name: "remaining length 2 encoded as 82 00",
        version: V5,
        // 0x40 (PUBACK) | RL 82 00 | packet id 1
        bytes: &[0x40, 0x82, 0x00, 0x00, 0x01],
        expected: E::MalformedVariableInteger,
    },
    Row {
        name: "remaining length over the maximum packet size, body not sent",
        version: V3,
        // 0x30 | RL FE 01 = 254: 1 + 2 + 254 = 257 bytes > MAX (256); only the
        // fixed header is here: the size is refused before the body arrives.
        bytes: &[0x30, 0xFE, 0x01],
        expected: E::PacketTooLarge {
            size: 257,
            max: MAX,
        },
    },
    // ---- A field running past the remaining length.
    Row {
        name: "topic length past the end of the packet",
        version: V3,
        // 0x30 | RL 3 | topic length 5 but only "a"
        bytes: &[0x30, 0x03, 0x00, 0x05, b'a'],
        expected: E::UnexpectedEnd,
    },
    Row {
        name: "PUBACK with a one-byte packet id",
        version: V3,
        // 0x40 | RL 1 | 00
        bytes: &[0x40, 0x01, 0x00],
        expected: E::UnexpectedEnd,
    },
    Row {
        name: "CONNECT with the will flag but no will fields",
        version: V3,
        // 0x10 | RL 13 | s(MQTT) | 4 | flags 06 (will, clean) | 60 | s(c) | (will topic missing)
        bytes: &[
            0x10, 0x0D, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x06, 0x00, 0x3C, 0x00, 0x01,
            b'c',
        ],
        expected: E::UnexpectedEnd,
    },
    Row {
        name: "property value cut short by the property length",
        version: V5,
        // 0x30 | RL 6 | s(a) | props len 2: Topic Alias (0x23) with one of its two bytes
        bytes: &[0x30, 0x06, 0x00, 0x01, b'a', 0x02, 0x23, 0x00],
        expected: E::UnexpectedEnd,
    },
    Row {
        name: "property length cut short by the end of the packet",
        version: V5,
        // 0x40 | RL 4 | packet id 1 | reason 00 | props len 80 (continues past the end)
        bytes: &[0x40, 0x04, 0x00, 0x01, 0x00, 0x80],
        expected: E::UnexpectedEnd,
    },
    // ---- Bytes after the last field.
    Row {
        name: "PINGREQ with remaining length 1",
        version: V3,
        // 0xC0 | RL 1 | 00
        bytes: &[0xC0, 0x01, 0x00],
        expected: E::TrailingBytes,
    },
    Row {
        name: "3.1.1 PUBACK with 3 bytes",
        version: V3,
        // 0x40 | RL 3 | packet id 1 | 00 (a 5.0 reason code, not in 3.1.1)
        bytes: &[0x40, 0x03, 0x00, 0x01, 0x00],
        expected: E::TrailingBytes,
    },
    Row {
        name: "3.1.1 DISCONNECT with a body",
        version: V3,
        // 0xE0 | RL 1 | 00
        bytes: &[0xE0, 0x01, 0x00],
        expected: E::TrailingBytes,
    },
    Row {
        name: "3.1.1 UNSUBACK with a reason code",
        version: V3,
        // 0xB0 | RL 3 | packet id 1 | 00
        bytes: &[0xB0, 0x03, 0x00, 0x01, 0x00],
        expected: E::TrailingBytes,
    },
    Row {
        name: "3.1.1 CONNACK with 3 bytes",
        version: V3,
        // 0x20 | RL 3 | flags 0 | code 0 | 00
        bytes: &[0x20, 0x03, 0x00, 0x00, 0x00],
        expected: E::TrailingBytes,
    },
    Row {
        name: "5.0 PUBACK with a byte after its properties",
        version: V5,
        // 0x40 | RL 5 | packet id 1 | reason 00 | props len 0 | FF
        bytes: &[0x40, 0x05, 0x00, 0x01, 0x00, 0x00, 0xFF],
        expected: E::TrailingBytes,
    },
    Row {
        name: "5.0 AUTH with a byte after its properties",
        version: V5,
        // 0xF0 | RL 7 | reason 18 (continue) | props len 4:
        // Authentication Method s(X) | 00 (one byte too many)
        bytes: &[0xF0, 0x07, 0x18, 0x04, 0x15, 0x00, 0x01, b'X', 0x00],
        expected: E::TrailingBytes,
    },
    // ---- QoS 3 and DUP.
    Row {
        name: "PUBLISH with QoS 3",
        version: V3,
        // 0x36 (QoS bits 11) | RL 5 | s(a) | packet id 1
        // [MQTT-3.3.1-4] "A PUBLISH Packet MUST NOT have both QoS bits set to 1"
        bytes: &[0x36, 0x05, 0x00, 0x01, b'a', 0x00, 0x01],
        expected: E::InvalidQoS,
    },
    Row {
        name: "CONNECT with will QoS 3",
        version: V3,
        // 0x10 | RL 18 | s(MQTT) | 4 | flags 1E (will QoS 3, will, clean) | 60 | s(c) | s(t) | payload len 0
        // [MQTT-3.1.2-12] "It MUST NOT be 3 (0x03)"
        bytes: &[
            0x10, 0x12, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x1E, 0x00, 0x3C, 0x00, 0x01,
            b'c', 0x00, 0x01, b't', 0x00, 0x00,
        ],
        expected: E::InvalidQoS,
    },
    Row {
        name: "3.1.1 SUBSCRIBE with requested QoS 3",
        version: V3,
        // 0x82 | RL 6 | packet id 1 | s(a) | options 03   [MQTT-3-8.3-4]
        bytes: &[0x82, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x03],
        expected: E::InvalidSubscriptionQoS,
    },
    Row {
        name: "5.0 SUBSCRIBE with maximum QoS 3",
        version: V5,
        // 0x82 | RL 7 | packet id 1 | props len 0 | s(a) | options 03
        // §3.8.3.1 "It is a Protocol Error if the Maximum QoS field has the value 3."
        bytes: &[0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, b'a', 0x03],
        expected: E::InvalidSubscriptionQoS,
    },
    Row {
        name: "PUBLISH QoS 0 with DUP",
        version: V3,
        // 0x38 (DUP, QoS 0) | RL 3 | s(a)   [MQTT-3.3.1-2]
        bytes: &[0x38, 0x03, 0x00, 0x01, b'a'],
        expected: E::DupOnQoS0,
    },
    // ---- Packet identifier 0 [MQTT-2.2.1-3].
    Row {
        name: "PUBLISH QoS 1 with packet id 0",
        version: V3,
        // 0x32 | RL 5 | s(a) | packet id 0
        bytes: &[0x32, 0x05, 0x00, 0x01, b'a', 0x00, 0x00],
        expected: E::ZeroPacketId(PacketType::Publish),
    },
    Row {
        name: "PUBACK with packet id 0",
        version: V5,
        // 0x40 | RL 2 | packet id 0
        bytes: &[0x40, 0x02, 0x00, 0x00],
        expected: E::ZeroPacketId(PacketType::PubAck),
    },
    Row {
        name: "PUBREL with packet id 0",
        version: V3,
        // 0x62 | RL 2 | packet id 0
        bytes: &[0x62, 0x02, 0x00, 0x00],
        expected: E::ZeroPacketId(PacketType::PubRel),
    },
    Row {
        name: "PUBREC with packet id 0",
        version: V3,
        // 0x50 | RL 2 | packet id 0
        bytes: &[0x50, 0x02, 0x00, 0x00],
        expected: E::ZeroPacketId(PacketType::PubRec),
    },
    Row {
        name: "PUBCOMP with packet id 0",
        version: V5,
        // 0x70 | RL 2 | packet id 0
        bytes: &[0x70, 0x02, 0x00, 0x00],
        expected: E::ZeroPacketId(PacketType::PubComp),
    },
    Row {
        name: "PUBACK with packet id 0 and a reason code",
        version: V5,
        // 0x40 | RL 3 | packet id 0 | No matching subscribers
        bytes: &[0x40, 0x03, 0x00, 0x00, 0x10],
        expected: E::ZeroPacketId(PacketType::PubAck),
    },
    Row {
        name: "SUBSCRIBE with packet id 0",
        version: V3,
        // 0x82 | RL 6 | packet id 0 | s(a) | options 0
        bytes: &[0x82, 0x06, 0x00, 0x00, 0x00, 0x01, b'a', 0x00],
        expected: E::ZeroPacketId(PacketType::Subscribe),
    },
    Row {
        name: "UNSUBSCRIBE with packet id 0",
        version: V3,
        // 0xA2 | RL 5 | packet id 0 | s(a)
        bytes: &[0xA2, 0x05, 0x00, 0x00, 0x00, 0x01, b'a'],
        expected: E::ZeroPacketId(PacketType::Unsubscribe),
    },
    Row {
        name: "SUBACK with packet id 0",
        version: V3,
        // 0x90 | RL 3 | packet id 0 | granted QoS 0
        bytes: &[0x90, 0x03, 0x00, 0x00, 0x00],
        expected: E::ZeroPacketId(PacketType::SubAck),
    },
    Row {
        name: "UNSUBACK with packet id 0",
        version: V5,
        // 0xB0 | RL 4 | packet id 0 | props len 0 | Success
        bytes: &[0xB0, 0x04, 0x00, 0x00, 0x00, 0x00],
        expected: E::ZeroPacketId(PacketType::UnsubAck),
    },
    // ---- UTF-8 strings: [MQTT-1.5.4-1] "MUST be well-formed UTF-8 ... MUST NOT
    // include encodings of code points between U+D800 and U+DFFF";
    // [MQTT-1.5.4-2] "MUST NOT include an encoding of the null character U+0000".
    Row {
        name: "topic with an overlong encoding (C0 80)",
        version: V3,
        // 0x30 | RL 4 | topic len 2: C0 80 (overlong U+0000)
        bytes: &[0x30, 0x04, 0x00, 0x02, 0xC0, 0x80],
        expected: E::InvalidUtf8,
    },
    Row {
        name: "topic with the surrogate U+D800 (ED A0 80)",
        version: V5,
        // 0x30 | RL 6 | topic len 3: ED A0 80 | props len 0
        bytes: &[0x30, 0x06, 0x00, 0x03, 0xED, 0xA0, 0x80, 0x00],
        expected: E::InvalidUtf8,
    },
    Row {
        name: "topic with a truncated sequence (E2 82)",
        version: V3,
        // 0x30 | RL 4 | topic len 2: E2 82 (first two bytes of U+20AC)
        bytes: &[0x30, 0x04, 0x00, 0x02, 0xE2, 0x82],
        expected: E::InvalidUtf8,
    },
    Row {
        name: "topic with the byte FF",
        version: V3,
        // 0x30 | RL 3 | topic len 1: FF
        bytes: &[0x30, 0x03, 0x00, 0x01, 0xFF],
        expected: E::InvalidUtf8,
    },
    Row {
        name: "client id with an overlong '/' (C0 AF)",
        version: V3,
        // 0x10 | RL 14 | s(MQTT) | 4 | flags 02 | 60 | client id len 2: C0 AF
        bytes: &[
            0x10, 0x0E, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x02,
            0xC0, 0xAF,
        ],
        expected: E::InvalidUtf8,
    },
    Row {
        name: "reason string with the byte FF",
        version: V5,
        // 0x40 | RL 8 | packet id 1 | reason 80 | props len 4: Reason String (0x1F) len 1: FF
        bytes: &[0x40, 0x08, 0x00, 0x01, 0x80, 0x04, 0x1F, 0x00, 0x01, 0xFF],
        expected: E::InvalidUtf8,
    },
    Row {
        name: "topic containing U+0000",
        version: V3,
        // 0x30 | RL 5 | s("a\0b")
        bytes: &[0x30, 0x05, 0x00, 0x03, b'a', 0x00, b'b'],
        expected: E::NulInString,
    },
    Row {
        name: "client id containing U+0000",
        version: V3,
        // 0x10 | RL 15 | s(MQTT) | 4 | flags 02 | 60 | s("a\0b")
        bytes: &[
            0x10, 0x0F, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x03,
            b'a', 0x00, b'b',
        ],
        expected: E::NulInString,
    },
    Row {
        name: "user property value containing U+0000",
        version: V5,
        // 0x40 | RL 11 | packet id 1 | reason 00 | props len 7: User Property (0x26) s(k) s("\0")
        bytes: &[
            0x40, 0x0B, 0x00, 0x01, 0x00, 0x07, 0x26, 0x00, 0x01, b'k', 0x00, 0x01, 0x00,
        ],
        expected: E::NulInString,
    },
    // ---- Topic names [MQTT-3.3.2-2]: "MUST NOT contain wildcard characters".
    Row {
        name: "'+' in a PUBLISH topic name",
        version: V3,
        // 0x30 | RL 5 | s("a/+")
        bytes: &[0x30, 0x05, 0x00, 0x03, b'a', b'/', b'+'],
        expected: E::InvalidTopicName(TopicError::WildcardInName),
    },
    Row {
        name: "'#' in a PUBLISH topic name",
        version: V5,
        // 0x30 | RL 6 | s("a/#") | props len 0
        bytes: &[0x30, 0x06, 0x00, 0x03, b'a', b'/', b'#', 0x00],
        expected: E::InvalidTopicName(TopicError::WildcardInName),
    },
    Row {
        name: "'#' in a will topic",
        version: V3,
        // 0x10 | RL 20 | s(MQTT) | 4 | flags 06 | 60 | s(c) | s("a/#") | payload len 0
        // [MQTT-3.1.3-11] the Will Topic is a topic name
        bytes: &[
            0x10, 0x14, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x06, 0x00, 0x3C, 0x00, 0x01,
            b'c', 0x00, 0x03, b'a', b'/', b'#', 0x00, 0x00,
        ],
        expected: E::InvalidTopicName(TopicError::WildcardInName),
    },
    Row {
        name: "3.1.1 PUBLISH with an empty topic",
        version: V3,
        // 0x30 | RL 2 | s("")   [MQTT-4.7.3-1] "at least one character long"
        bytes: &[0x30, 0x02, 0x00, 0x00],
        expected: E::InvalidTopicName(TopicError::Empty),
    },
    Row {
        name: "5.0 PUBLISH with an empty topic and no topic alias",
        version: V5,
        // 0x30 | RL 3 | s("") | props len 0
        // §3.3.2.1 "It is a Protocol Error if the Topic Name is zero length and there is no Topic Alias."
        bytes: &[0x30, 0x03, 0x00, 0x00, 0x00],
        expected: E::EmptyTopicWithoutAlias,
    },
    // ---- Topic filters [MQTT-4.7.1-2], [MQTT-4.7.1-3], [MQTT-4.8.2-1], [MQTT-4.8.2-2].
    Row {
        name: "filter 'a/#/b'",
        version: V3,
        // 0x82 | RL 10 | packet id 1 | s("a/#/b") | options 0
        bytes: &[
            0x82, 0x0A, 0x00, 0x01, 0x00, 0x05, b'a', b'/', b'#', b'/', b'b', 0x00,
        ],
        expected: E::InvalidTopicFilter(TopicError::MisplacedMultiLevelWildcard),
    },
    Row {
        name: "filter 'a+'",
        version: V3,
        // 0xA2 | RL 6 | packet id 1 | s("a+")
        bytes: &[0xA2, 0x06, 0x00, 0x01, 0x00, 0x02, b'a', b'+'],
        expected: E::InvalidTopicFilter(TopicError::MisplacedSingleLevelWildcard),
    },
    // A filter is first a UTF-8 string: its string errors come first, and
    // before the options byte is read; its filter errors after.
    Row {
        name: "SUBSCRIBE filter with the byte FF",
        version: V3,
        // 0x82 | RL 6 | packet id 1 | filter len 1: FF | options 0
        bytes: &[0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 0xFF, 0x00],
        expected: E::InvalidUtf8,
    },
    Row {
        name: "UNSUBSCRIBE filter 'a/+/' then an overlong encoding (C0 80)",
        version: V3,
        // 0xA2 | RL 10 | packet id 1 | filter len 6: a / + / C0 80
        bytes: &[
            0xA2, 0x0A, 0x00, 0x01, 0x00, 0x06, b'a', b'/', b'+', b'/', 0xC0, 0x80,
        ],
        expected: E::InvalidUtf8,
    },
    Row {
        name: "SUBSCRIBE filter with U+0000 before a misplaced '#'",
        version: V3,
        // 0x82 | RL 8 | packet id 1 | s("a\0#") | options 0
        bytes: &[0x82, 0x08, 0x00, 0x01, 0x00, 0x03, b'a', 0x00, b'#', 0x00],
        expected: E::NulInString,
    },
    Row {
        name: "SUBSCRIBE filter 'a+' with no options byte",
        version: V3,
        // 0x82 | RL 6 | packet id 1 | s("a+"), and the packet ends
        bytes: &[0x82, 0x06, 0x00, 0x01, 0x00, 0x02, b'a', b'+'],
        expected: E::UnexpectedEnd,
    },
    Row {
        name: "filter '$share//x' (empty share name)",
        version: V5,
        // 0x82 | RL 15 | packet id 1 | props len 0 | s("$share//x") | options 0
        bytes: &[
            0x82, 0x0F, 0x00, 0x01, 0x00, 0x00, 0x09, b'$', b's', b'h', b'a', b'r', b'e', b'/',
            b'/', b'x', 0x00,
        ],
        expected: E::InvalidTopicFilter(TopicError::InvalidShareName),
    },
    Row {
        name: "filter '$share/g' (no filter after the share name)",
        version: V5,
        // 0xA2 | RL 13 | packet id 1 | props len 0 | s("$share/g")
        bytes: &[
            0xA2, 0x0D, 0x00, 0x01, 0x00, 0x00, 0x08, b'$', b's', b'h', b'a', b'r', b'e', b'/',
            b'g',
        ],
        expected: E::InvalidTopicFilter(TopicError::MissingSharedFilter),
    },
    // ---- Empty payloads.
    Row {
        name: "3.1.1 SUBSCRIBE with no filter",
        version: V3,
        // 0x82 | RL 2 | packet id 1   [MQTT-3.8.3-3]
        bytes: &[0x82, 0x02, 0x00, 0x01],
        expected: E::EmptyPayload(PacketType::Subscribe),
    },
    Row {
        name: "5.0 SUBSCRIBE with no filter",
        version: V5,
        // 0x82 | RL 3 | packet id 1 | props len 0
        // [MQTT-3.8.3-2] "A SUBSCRIBE packet with no Payload is a Protocol Error."
        bytes: &[0x82, 0x03, 0x00, 0x01, 0x00],
        expected: E::EmptyPayload(PacketType::Subscribe),
    },
    Row {
        name: "3.1.1 UNSUBSCRIBE with no filter",
        version: V3,
        // 0xA2 | RL 2 | packet id 1   [MQTT-3.10.3-2]
        bytes: &[0xA2, 0x02, 0x00, 0x01],
        expected: E::EmptyPayload(PacketType::Unsubscribe),
    },
    Row {
        name: "5.0 UNSUBSCRIBE with no filter",
        version: V5,
        // 0xA2 | RL 3 | packet id 1 | props len 0
        // [MQTT-3.10.3-2] "An UNSUBSCRIBE packet with no Payload is a Protocol Error."
        bytes: &[0xA2, 0x03, 0x00, 0x01, 0x00],
        expected: E::EmptyPayload(PacketType::Unsubscribe),
    },
    Row {
        name: "SUBACK with no return code",
        version: V3,
        // 0x90 | RL 2 | packet id 1
        bytes: &[0x90, 0x02, 0x00, 0x01],
        expected: E::EmptyPayload(PacketType::SubAck),
    },
    Row {
        name: "5.0 UNSUBACK with no reason code",
        version: V5,
        // 0xB0 | RL 3 | packet id 1 | props len 0
        bytes: &[0xB0, 0x03, 0x00, 0x01, 0x00],
        expected: E::EmptyPayload(PacketType::UnsubAck),
    },
    // ---- CONNECT (§3.1.2).
    Row {
        name: "CONNECT with protocol name MQTX",
        version: V3,
        // 0x10 | RL 13 | s(MQTX) | 4 | flags 02 | 60 | s(c)   [MQTT-3.1.2-1]
        bytes: &[
            0x10, 0x0D, 0x00, 0x04, b'M', b'Q', b'T', b'X', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x01,
            b'c',
        ],
        expected: E::InvalidProtocolName,
    },
    Row {
        name: "CONNECT with a protocol name that is not UTF-8",
        version: V3,
        // 0x10 | RL 13 | 00 04 'M' 'Q' 0xFF 'T' | 4 | flags 02 | 60 | s(c)
        bytes: &[
            0x10, 0x0D, 0x00, 0x04, b'M', b'Q', 0xFF, b'T', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x01,
            b'c',
        ],
        expected: E::InvalidUtf8,
    },
    Row {
        name: "CONNECT that ends after an unknown protocol name",
        version: V3,
        // 0x10 | RL 6 | s(MQTX), no level
        bytes: &[0x10, 0x06, 0x00, 0x04, b'M', b'Q', b'T', b'X'],
        expected: E::UnexpectedEnd,
    },
    Row {
        name: "CONNECT that ends after MQIsdp",
        version: V3,
        // 0x10 | RL 8 | s(MQIsdp), no level
        bytes: &[0x10, 0x08, 0x00, 0x06, b'M', b'Q', b'I', b's', b'd', b'p'],
        expected: E::UnexpectedEnd,
    },
    Row {
        name: "CONNECT MQTT level 3",
        version: V3,
        // 0x10 | RL 13 | s(MQTT) | level 3 | flags 02 | 60 | s(c)   [MQTT-3.1.2-2]
        bytes: &[
            0x10, 0x0D, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x03, 0x02, 0x00, 0x3C, 0x00, 0x01,
            b'c',
        ],
        expected: E::UnsupportedProtocolVersion(3),
    },
    Row {
        name: "CONNECT MQIsdp level 3 (MQTT 3.1)",
        version: V3,
        // 0x10 | RL 15 | s(MQIsdp) | level 3 | flags 02 | 60 | s(c)
        bytes: &[
            0x10, 0x0F, 0x00, 0x06, b'M', b'Q', b'I', b's', b'd', b'p', 0x03, 0x02, 0x00, 0x3C,
            0x00, 0x01, b'c',
        ],
        expected: E::UnsupportedProtocolVersion(3),
    },
    Row {
        name: "CONNECT MQTT level 6",
        version: V5,
        // 0x10 | RL 14 | s(MQTT) | level 6 | flags 02 | 60 | props len 0 | s(c)
        bytes: &[
            0x10, 0x0E, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x06, 0x02, 0x00, 0x3C, 0x00, 0x00,
            0x01, b'c',
        ],
        expected: E::UnsupportedProtocolVersion(6),
    },
    Row {
        name: "CONNECT with the reserved flag set",
        version: V3,
        // 0x10 | RL 13 | s(MQTT) | 4 | flags 03 (reserved bit 0, clean) | 60 | s(c)   [MQTT-3.1.2-3]
        bytes: &[
            0x10, 0x0D, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x03, 0x00, 0x3C, 0x00, 0x01,
            b'c',
        ],
        expected: E::InvalidConnectFlags(0x03),
    },
    Row {
        name: "CONNECT with will QoS 1 but no will flag",
        version: V5,
        // 0x10 | RL 14 | s(MQTT) | 5 | flags 0A (will QoS 1, clean) | 60 | props len 0 | s(c)   [MQTT-3.1.2-11]
        bytes: &[
            0x10, 0x0E, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x0A, 0x00, 0x3C, 0x00, 0x00,
            0x01, b'c',
        ],
        expected: E::InvalidConnectFlags(0x0A),
    },
    Row {
        name: "CONNECT with will retain but no will flag",
        version: V3,
        // 0x10 | RL 13 | s(MQTT) | 4 | flags 22 (will retain, clean) | 60 | s(c)   [MQTT-3.1.2-13]
        bytes: &[
            0x10, 0x0D, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x22, 0x00, 0x3C, 0x00, 0x01,
            b'c',
        ],
        expected: E::InvalidConnectFlags(0x22),
    },
    Row {
        name: "3.1.1 CONNECT with a password but no user name",
        version: V3,
        // 0x10 | RL 16 | s(MQTT) | 4 | flags 42 (password, clean) | 60 | s(c) | binary(p)   [MQTT-3.1.2-22]
        bytes: &[
            0x10, 0x10, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x42, 0x00, 0x3C, 0x00, 0x01,
            b'c', 0x00, 0x01, b'p',
        ],
        expected: E::PasswordWithoutUsername,
    },
    Row {
        name: "CONNECT with a byte after the last field",
        version: V3,
        // 0x10 | RL 14 | s(MQTT) | 4 | flags 02 | 60 | s(c) | 00
        bytes: &[
            0x10, 0x0E, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x01,
            b'c', 0x00,
        ],
        expected: E::TrailingBytes,
    },
    // ---- CONNACK (§3.2.2).
    Row {
        name: "3.1.1 CONNACK with reserved acknowledge flag bit 1",
        version: V3,
        // 0x20 | RL 2 | ack flags 02 | code 0   [MQTT-3.2.2-1]
        bytes: &[0x20, 0x02, 0x02, 0x00],
        expected: E::InvalidConnAckFlags(0x02),
    },
    Row {
        name: "5.0 CONNACK with reserved acknowledge flag bit 7",
        version: V5,
        // 0x20 | RL 3 | ack flags 80 | reason 0 | props len 0
        bytes: &[0x20, 0x03, 0x80, 0x00, 0x00],
        expected: E::InvalidConnAckFlags(0x80),
    },
    Row {
        name: "3.1.1 CONNACK refusing with session present",
        version: V3,
        // 0x20 | RL 2 | session present | code 5 (not authorized)   [MQTT-3.2.2-4]
        bytes: &[0x20, 0x02, 0x01, 0x05],
        expected: E::InvalidConnAckFlags(0x01),
    },
    Row {
        name: "5.0 CONNACK refusing with session present",
        version: V5,
        // 0x20 | RL 3 | session present | reason 87 | props len 0   [MQTT-3.2.2-6]
        bytes: &[0x20, 0x03, 0x01, 0x87, 0x00],
        expected: E::InvalidConnAckFlags(0x01),
    },
    Row {
        name: "3.1.1 CONNACK return code 6",
        version: V3,
        // 0x20 | RL 2 | flags 0 | code 6 (reserved in 3.1.1 §3.2.2.3)
        bytes: &[0x20, 0x02, 0x00, 0x06],
        expected: reason("CONNACK", 0x06),
    },
    Row {
        name: "5.0 CONNACK reason code 0x01",
        version: V5,
        // 0x20 | RL 3 | flags 0 | reason 01 (a 3.1.1 return code, not a 5.0 one) | props len 0
        bytes: &[0x20, 0x03, 0x00, 0x01, 0x00],
        expected: reason("CONNACK", 0x01),
    },
    // ---- Reason codes a packet may not carry.
    Row {
        name: "PUBACK reason code 0x92",
        version: V5,
        // 0x40 | RL 3 | packet id 1 | reason 92 (PUBREL/PUBCOMP only)
        bytes: &[0x40, 0x03, 0x00, 0x01, 0x92],
        expected: reason("PUBACK/PUBREC", 0x92),
    },
    Row {
        name: "PUBREC reason code 0x11",
        version: V5,
        // 0x50 | RL 3 | packet id 1 | reason 11 (UNSUBACK only)
        bytes: &[0x50, 0x03, 0x00, 0x01, 0x11],
        expected: reason("PUBACK/PUBREC", 0x11),
    },
    Row {
        name: "PUBREL reason code 0x10",
        version: V5,
        // 0x62 | RL 3 | packet id 1 | reason 10 (PUBACK only)
        bytes: &[0x62, 0x03, 0x00, 0x01, 0x10],
        expected: reason("PUBREL/PUBCOMP", 0x10),
    },
    Row {
        name: "PUBCOMP reason code 0x80",
        version: V5,
        // 0x70 | RL 3 | packet id 1 | reason 80
        bytes: &[0x70, 0x03, 0x00, 0x01, 0x80],
        expected: reason("PUBREL/PUBCOMP", 0x80),
    },
    Row {
        name: "5.0 SUBACK reason code 0x03",
        version: V5,
        // 0x90 | RL 4 | packet id 1 | props len 0 | reason 03
        bytes: &[0x90, 0x04, 0x00, 0x01, 0x00, 0x03],
        expected: reason("SUBACK", 0x03),
    },
    Row {
        name: "3.1.1 SUBACK return code 0x83 (valid in 5.0 only)",
        version: V3,
        // 0x90 | RL 3 | packet id 1 | 83   [MQTT-3.9.3-2]
        bytes: &[0x90, 0x03, 0x00, 0x01, 0x83],
        expected: reason("SUBACK", 0x83),
    },
    Row {
        name: "UNSUBACK reason code 0x10",
        version: V5,
        // 0xB0 | RL 4 | packet id 1 | props len 0 | reason 10
        bytes: &[0xB0, 0x04, 0x00, 0x01, 0x00, 0x10],
        expected: reason("UNSUBACK", 0x10),
    },
    Row {
        name: "DISCONNECT reason code 0x01",
        version: V5,
        // 0xE0 | RL 1 | reason 01   [MQTT-3.14.2-1]
        bytes: &[0xE0, 0x01, 0x01],
        expected: reason("DISCONNECT", 0x01),
    },
    Row {
        name: "AUTH reason code 0x01",
        version: V5,
        // 0xF0 | RL 7 | reason 01 | props len 5: Authentication Method (0x15) s(gs)   [MQTT-3.15.2-1]
        bytes: &[0xF0, 0x07, 0x01, 0x05, 0x15, 0x00, 0x02, b'g', b's'],
        expected: reason("AUTH", 0x01),
    },
    // ---- Subscription options (3.1.1 [MQTT-3-8.3-4]: bits 2-7 reserved;
    // 5.0 [MQTT-3.8.3-5]: bits 6-7 reserved; Retain Handling 3 is a Protocol Error).
    Row {
        name: "3.1.1 subscription options bit 2",
        version: V3,
        // 0x82 | RL 6 | packet id 1 | s(a) | options 04
        bytes: &[0x82, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x04],
        expected: E::InvalidSubscriptionOptions(0x04),
    },
    Row {
        name: "3.1.1 subscription options bit 7",
        version: V3,
        // 0x82 | RL 6 | packet id 1 | s(a) | options 80
        bytes: &[0x82, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x80],
        expected: E::InvalidSubscriptionOptions(0x80),
    },
    Row {
        name: "5.0 subscription options bit 6",
        version: V5,
        // 0x82 | RL 7 | packet id 1 | props len 0 | s(a) | options 40
        bytes: &[0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, b'a', 0x40],
        expected: E::InvalidSubscriptionOptions(0x40),
    },
    Row {
        name: "5.0 subscription options bit 7",
        version: V5,
        // 0x82 | RL 7 | packet id 1 | props len 0 | s(a) | options 81
        bytes: &[0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, b'a', 0x81],
        expected: E::InvalidSubscriptionOptions(0x81),
    },
    Row {
        name: "5.0 SUBSCRIBE retain handling 3",
        version: V5,
        // 0x82 | RL 7 | packet id 1 | props len 0 | s(a) | options 30
        bytes: &[0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, b'a', 0x30],
        expected: E::InvalidRetainHandling,
    },
    Row {
        name: "No Local on a shared subscription",
        version: V5,
        // 0x82 | RL 16 | packet id 1 | props len 0 | s("$share/g/a") | options 04 (No Local)   [MQTT-3.8.3-4]
        bytes: &[
            0x82, 0x10, 0x00, 0x01, 0x00, 0x00, 0x0A, b'$', b's', b'h', b'a', b'r', b'e', b'/',
            b'g', b'/', b'a', 0x04,
        ],
        expected: E::NoLocalOnSharedSubscription,
    },
    // ---- Properties (§2.2.2.2): "A Control Packet which contains an Identifier
    // which is not valid for its packet type ... is a Malformed Packet."
    Row {
        name: "unknown property 0x04",
        version: V5,
        // 0x30 | RL 6 | s(a) | props len 2: 04 00
        bytes: &[0x30, 0x06, 0x00, 0x01, b'a', 0x02, 0x04, 0x00],
        expected: E::UnknownProperty(0x04),
    },
    Row {
        name: "unknown property 0x7F",
        version: V5,
        // 0x40 | RL 6 | packet id 1 | reason 00 | props len 2: 7F 00
        bytes: &[0x40, 0x06, 0x00, 0x01, 0x00, 0x02, 0x7F, 0x00],
        expected: E::UnknownProperty(0x7F),
    },
    Row {
        name: "Topic Alias in CONNECT",
        version: V5,
        // 0x10 | RL 17 | s(MQTT) | 5 | flags 02 | 60 | props len 3: Topic Alias (0x23) 1 | s(c)
        bytes: &[
            0x10, 0x11, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02, 0x00, 0x3C, 0x03, 0x23,
            0x00, 0x01, 0x00, 0x01, b'c',
        ],
        expected: not_allowed(PacketType::Connect, PropertyId::TopicAlias),
    },
    Row {
        name: "Session Expiry Interval in PUBLISH",
        version: V5,
        // 0x30 | RL 9 | s(a) | props len 5: Session Expiry (0x11) 10
        bytes: &[
            0x30, 0x09, 0x00, 0x01, b'a', 0x05, 0x11, 0x00, 0x00, 0x00, 0x0A,
        ],
        expected: not_allowed(PacketType::Publish, PropertyId::SessionExpiryInterval),
    },
    Row {
        name: "Subscription Identifier in UNSUBSCRIBE",
        version: V5,
        // 0xA2 | RL 8 | packet id 1 | props len 2: Subscription Identifier (0x0B) 1 | s(a)
        bytes: &[0xA2, 0x08, 0x00, 0x01, 0x02, 0x0B, 0x01, 0x00, 0x01, b'a'],
        expected: not_allowed(PacketType::Unsubscribe, PropertyId::SubscriptionIdentifier),
    },
    Row {
        name: "Server Keep Alive in DISCONNECT",
        version: V5,
        // 0xE0 | RL 5 | reason 00 | props len 3: Server Keep Alive (0x13) 10
        bytes: &[0xE0, 0x05, 0x00, 0x03, 0x13, 0x00, 0x0A],
        expected: not_allowed(PacketType::Disconnect, PropertyId::ServerKeepAlive),
    },
    Row {
        name: "Content Type twice",
        version: V5,
        // 0x30 | RL 12 | s(a) | props len 8: Content Type (0x03) s(x), Content Type s(y)
        bytes: &[
            0x30, 0x0C, 0x00, 0x01, b'a', 0x08, 0x03, 0x00, 0x01, b'x', 0x03, 0x00, 0x01, b'y',
        ],
        expected: E::DuplicateProperty(PropertyId::ContentType),
    },
    Row {
        name: "Topic Alias twice",
        version: V5,
        // 0x30 | RL 10 | s(a) | props len 6: Topic Alias 1, Topic Alias 2
        bytes: &[
            0x30, 0x0A, 0x00, 0x01, b'a', 0x06, 0x23, 0x00, 0x01, 0x23, 0x00, 0x02,
        ],
        expected: E::DuplicateProperty(PropertyId::TopicAlias),
    },
    Row {
        name: "Topic Alias 0",
        version: V5,
        // 0x30 | RL 7 | s(a) | props len 3: Topic Alias 0   [MQTT-3.3.2-8]
        bytes: &[0x30, 0x07, 0x00, 0x01, b'a', 0x03, 0x23, 0x00, 0x00],
        expected: E::ZeroTopicAlias,
    },
    Row {
        name: "Receive Maximum 0 in CONNECT",
        version: V5,
        // 0x10 | RL 17 | s(MQTT) | 5 | flags 02 | 60 | props len 3: Receive Maximum (0x21) 0 | s(c)
        bytes: &[
            0x10, 0x11, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02, 0x00, 0x3C, 0x03, 0x21,
            0x00, 0x00, 0x00, 0x01, b'c',
        ],
        expected: E::InvalidPropertyValue(PropertyId::ReceiveMaximum),
    },
    Row {
        name: "Receive Maximum 0 in CONNACK",
        version: V5,
        // 0x20 | RL 6 | flags 0 | reason 0 | props len 3: Receive Maximum 0
        bytes: &[0x20, 0x06, 0x00, 0x00, 0x03, 0x21, 0x00, 0x00],
        expected: E::InvalidPropertyValue(PropertyId::ReceiveMaximum),
    },
    Row {
        name: "Maximum Packet Size 0",
        version: V5,
        // 0x20 | RL 8 | flags 0 | reason 0 | props len 5: Maximum Packet Size (0x27) 0
        bytes: &[0x20, 0x08, 0x00, 0x00, 0x05, 0x27, 0x00, 0x00, 0x00, 0x00],
        expected: E::InvalidPropertyValue(PropertyId::MaximumPacketSize),
    },
    Row {
        name: "Subscription Identifier 0 in SUBSCRIBE",
        version: V5,
        // 0x82 | RL 9 | packet id 1 | props len 2: Subscription Identifier 0 | s(a) | options 0
        bytes: &[
            0x82, 0x09, 0x00, 0x01, 0x02, 0x0B, 0x00, 0x00, 0x01, b'a', 0x00,
        ],
        expected: E::InvalidPropertyValue(PropertyId::SubscriptionIdentifier),
    },
    Row {
        name: "Subscription Identifier 0 in PUBLISH",
        version: V5,
        // 0x30 | RL 6 | s(a) | props len 2: Subscription Identifier 0
        bytes: &[0x30, 0x06, 0x00, 0x01, b'a', 0x02, 0x0B, 0x00],
        expected: E::InvalidPropertyValue(PropertyId::SubscriptionIdentifier),
    },
    Row {
        name: "Subscription Identifier as a non-minimal variable byte integer",
        version: V5,
        // 0x30 | RL 7 | s(a) | props len 3: Subscription Identifier 81 00   [MQTT-1.5.5-1]
        bytes: &[0x30, 0x07, 0x00, 0x01, b'a', 0x03, 0x0B, 0x81, 0x00],
        expected: E::MalformedVariableInteger,
    },
    Row {
        name: "property length as a non-minimal variable byte integer",
        version: V5,
        // 0x40 | RL 5 | packet id 1 | reason 00 | props len 80 00
        bytes: &[0x40, 0x05, 0x00, 0x01, 0x00, 0x80, 0x00],
        expected: E::MalformedVariableInteger,
    },
    Row {
        name: "Retain Available 2",
        version: V5,
        // 0x20 | RL 5 | flags 0 | reason 0 | props len 2: Retain Available (0x25) 2
        bytes: &[0x20, 0x05, 0x00, 0x00, 0x02, 0x25, 0x02],
        expected: E::InvalidPropertyValue(PropertyId::RetainAvailable),
    },
    Row {
        name: "Request Problem Information 2",
        version: V5,
        // 0x10 | RL 16 | s(MQTT) | 5 | flags 02 | 60 | props len 2: Request Problem Information (0x17) 2 | s(c)
        bytes: &[
            0x10, 0x10, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02, 0x00, 0x3C, 0x02, 0x17,
            0x02, 0x00, 0x01, b'c',
        ],
        expected: E::InvalidPropertyValue(PropertyId::RequestProblemInformation),
    },
    Row {
        name: "Maximum QoS 2",
        version: V5,
        // 0x20 | RL 5 | flags 0 | reason 0 | props len 2: Maximum QoS (0x24) 2
        bytes: &[0x20, 0x05, 0x00, 0x00, 0x02, 0x24, 0x02],
        expected: E::InvalidPropertyValue(PropertyId::MaximumQoS),
    },
    Row {
        name: "Payload Format Indicator 2",
        version: V5,
        // 0x30 | RL 6 | s(a) | props len 2: Payload Format Indicator (0x01) 2
        bytes: &[0x30, 0x06, 0x00, 0x01, b'a', 0x02, 0x01, 0x02],
        expected: E::InvalidPropertyValue(PropertyId::PayloadFormatIndicator),
    },
    Row {
        name: "property length past the end of PUBLISH",
        version: V5,
        // 0x30 | RL 5 | s(a) | props len 5, but one byte left: 01
        bytes: &[0x30, 0x05, 0x00, 0x01, b'a', 0x05, 0x01],
        expected: E::PropertyLengthOverrun,
    },
    Row {
        name: "property length past the end of SUBACK",
        version: V5,
        // 0x90 | RL 4 | packet id 1 | props len 9, but one byte left: 00
        bytes: &[0x90, 0x04, 0x00, 0x01, 0x09, 0x00],
        expected: E::PropertyLengthOverrun,
    },
    Row {
        name: "wildcard in a PUBLISH Response Topic",
        version: V5,
        // 0x30 | RL 10 | s(a) | props len 6: Response Topic (0x08) s("a/+")
        // [MQTT-3.3.2-14] "The Response Topic MUST NOT contain wildcard characters."
        bytes: &[
            0x30, 0x0A, 0x00, 0x01, b'a', 0x06, 0x08, 0x00, 0x03, b'a', b'/', b'+',
        ],
        expected: E::InvalidPropertyValue(PropertyId::ResponseTopic),
    },
    Row {
        name: "wildcard in a will Response Topic",
        version: V5,
        // 0x10 | RL 26 | s(MQTT) | 5 | flags 06 (will, clean) | 60 | props len 0 | s(c)
        //      | will props len 6: Response Topic s("a/#") | s(t) | payload len 0
        // §3.1.3.2.5 the Response Topic "is used as the Topic Name for a response
        // message"; [MQTT-3.3.2-14] / [MQTT-4.7.0-1]: no wildcards in a topic name.
        bytes: &[
            0x10, 0x1A, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x06, 0x00, 0x3C, 0x00, 0x00,
            0x01, b'c', 0x06, 0x08, 0x00, 0x03, b'a', b'/', b'#', 0x00, 0x01, b't', 0x00, 0x00,
        ],
        expected: E::InvalidPropertyValue(PropertyId::ResponseTopic),
    },
    Row {
        name: "Authentication Data without Authentication Method in CONNECT",
        version: V5,
        // 0x10 | RL 18 | s(MQTT) | 5 | flags 02 | 60 | props len 4: Authentication Data (0x16) binary(x) | s(c)
        // §3.1.2.11.10 "It is a Protocol Error to include Authentication Data if there is no Authentication Method."
        bytes: &[
            0x10, 0x12, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02, 0x00, 0x3C, 0x04, 0x16,
            0x00, 0x01, b'x', 0x00, 0x01, b'c',
        ],
        expected: E::AuthDataWithoutMethod,
    },
    Row {
        name: "Authentication Data without Authentication Method in CONNACK",
        version: V5,
        // 0x20 | RL 7 | flags 0 | reason 0 | props len 4: Authentication Data binary(x)
        bytes: &[0x20, 0x07, 0x00, 0x00, 0x04, 0x16, 0x00, 0x01, b'x'],
        expected: E::AuthDataWithoutMethod,
    },
    Row {
        name: "Authentication Data without Authentication Method in AUTH",
        version: V5,
        // 0xF0 | RL 6 | reason 18 (continue) | props len 4: Authentication Data binary(x)
        bytes: &[0xF0, 0x06, 0x18, 0x04, 0x16, 0x00, 0x01, b'x'],
        expected: E::AuthDataWithoutMethod,
    },
];

/// Decodes a row without letting a panic end the test, so one run reports
/// every row.
fn decode_row(row: &Row) -> Result<Result<Option<plover::codec::Packet>, E>, String> {
    let mut buf = BytesMut::from(row.bytes);
    catch_unwind(AssertUnwindSafe(|| decode(&mut buf, row.version, MAX)))
        .map_err(|_| "panicked".to_owned())
}

fn fail_with(what: &str, problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{} {what}:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

#[test]
fn the_table_is_large_and_its_names_are_unique() {
    assert!(ROWS.len() >= 45, "only {} rows", ROWS.len());
    let mut names: Vec<&str> = ROWS.iter().map(|r| r.name).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(names.len(), before, "duplicate row names");
}

#[test]
fn every_row_is_exactly_one_frame() {
    // A row whose bytes are longer or shorter than the frame its header
    // announces would test the wrong thing. Rows refused from the header
    // alone (too large, malformed remaining length) are exempt.
    let mut problems = Vec::new();
    for row in ROWS {
        match frame_len(row.bytes, MAX) {
            Ok(Some((_, total))) if total != row.bytes.len() => problems.push(format!(
                "{}: header announces {total} bytes, row has {}",
                row.name,
                row.bytes.len()
            )),
            Ok(None) => problems.push(format!("{}: fixed header incomplete", row.name)),
            _ => {}
        }
    }
    fail_with("rows are not one whole frame", &problems);
}

#[test]
fn every_malformed_row_is_refused_with_its_error() {
    let mut problems = Vec::new();
    for row in ROWS {
        match decode_row(row) {
            Ok(Err(got)) if got == row.expected => {}
            Ok(got) => problems.push(format!(
                "{} ({}): expected Err({:?}), got {got:?}",
                row.name, row.version, row.expected
            )),
            Err(panic) => problems.push(format!("{} ({}): {panic}", row.name, row.version)),
        }
        // The Bytes path must agree with the BytesMut path.
        let mut input = Bytes::from_static(row.bytes);
        let via_bytes = catch_unwind(AssertUnwindSafe(|| {
            decode_bytes(&mut input, row.version, MAX)
        }));
        match via_bytes {
            Ok(Err(got)) if got == row.expected => {}
            Ok(got) => problems.push(format!(
                "{} ({}): decode_bytes expected Err({:?}), got {got:?}",
                row.name, row.version, row.expected
            )),
            Err(_) => problems.push(format!(
                "{} ({}): decode_bytes panicked",
                row.name, row.version
            )),
        }
    }
    fail_with("rows decoded wrongly", &problems);
}

#[test]
fn too_large_is_decided_from_the_fixed_header_alone() {
    // Only three bytes of a 257-byte packet: the limit is enforced before
    // the body would be buffered, so the reader never waits for it.
    let mut buf = BytesMut::from(&[0x30, 0xFE, 0x01][..]);
    assert_eq!(
        decode(&mut buf, V5, 256),
        Err(E::PacketTooLarge {
            size: 257,
            max: 256
        })
    );
    // At exactly the limit it is not an error, just "need more".
    let mut buf = BytesMut::from(&[0x30, 0xFE, 0x01][..]);
    assert_eq!(decode(&mut buf, V5, 257), Ok(None));
    assert_eq!(&buf[..], &[0x30, 0xFE, 0x01]);
}

#[test]
fn a_bad_first_byte_is_refused_before_the_rest_arrives() {
    // A wrong packet type, wrong fixed-header flags or PUBLISH QoS 3 are
    // visible in the first byte; waiting for the body the remaining length
    // announces would only let a peer make us buffer garbage.
    let mut problems = Vec::new();
    for row in ROWS {
        let first_byte_error = matches!(
            row.expected,
            E::InvalidPacketType(_) | E::InvalidHeaderFlags { .. }
        ) || (row.expected == E::InvalidQoS && row.bytes[0] >> 4 == 3);
        if !first_byte_error {
            continue;
        }
        let mut buf = BytesMut::from(&row.bytes[..1]);
        let got = decode(&mut buf, row.version, MAX);
        if got != Err(row.expected) {
            problems.push(format!("{}: first byte alone gave {got:?}", row.name));
        }
    }
    fail_with("first bytes not refused at once", &problems);
}

#[test]
fn auth_without_an_authentication_method_is_refused() {
    // §3.15.2.2.2: "It is a Protocol Error to omit the Authentication Method
    // or to include it more than once." The one AUTH that carries no method
    // is the bare Success with Remaining Length 0 (§3.15.2.1), which is not
    // here. There is no dedicated DecodeError for this yet, so only the
    // outcome is pinned: refused, as a Protocol Error.
    let cases: &[(&str, &[u8])] = &[
        // 0xF0 | RL 2 | reason 18 (continue) | props len 0
        ("continue, empty properties", &[0xF0, 0x02, 0x18, 0x00]),
        // 0xF0 | RL 1 | reason 19 (re-authenticate), no property length
        ("re-authenticate, no properties", &[0xF0, 0x01, 0x19]),
        // 0xF0 | RL 7 | reason 00 | props len 5: Reason String s(ok)
        (
            "success with a reason string only",
            &[0xF0, 0x07, 0x00, 0x05, 0x1F, 0x00, 0x02, b'o', b'k'],
        ),
    ];
    let mut problems = Vec::new();
    for (name, bytes) in cases {
        match decode(&mut BytesMut::from(*bytes), V5, MAX) {
            Err(e) if DisconnectReasonCode::from(e) == DisconnectReasonCode::ProtocolError => {}
            other => problems.push(format!("{name}: expected a Protocol Error, got {other:?}")),
        }
    }
    fail_with("AUTH packets without a method accepted", &problems);
}

/// What the spec says the DISCONNECT reason must be for a row, where it says
/// so explicitly (the statement is quoted on the row).
const SPEC_REASONS: &[(&str, DisconnectReasonCode)] = &[
    // "If invalid flags are received it is a Malformed Packet" (§2.1.3).
    (
        "PUBREL with flags 0 instead of 2",
        DisconnectReasonCode::MalformedPacket,
    ),
    (
        "remaining length with a 5th byte",
        DisconnectReasonCode::MalformedPacket,
    ),
    (
        "remaining length 0 encoded as 80 00",
        DisconnectReasonCode::MalformedPacket,
    ),
    // [MQTT-3.3.1-4] "... it is a Malformed Packet."
    ("PUBLISH with QoS 3", DisconnectReasonCode::MalformedPacket),
    // §3.1.2.6 "A value of 3 (0x03) is a Malformed Packet."
    (
        "CONNECT with will QoS 3",
        DisconnectReasonCode::MalformedPacket,
    ),
    // §3.1.2.3 "If the reserved flag is not 0 it is a Malformed Packet."
    (
        "CONNECT with the reserved flag set",
        DisconnectReasonCode::MalformedPacket,
    ),
    // [MQTT-1.5.4-1] / [MQTT-1.5.4-2] "... it is a Malformed Packet."
    (
        "topic with the surrogate U+D800 (ED A0 80)",
        DisconnectReasonCode::MalformedPacket,
    ),
    (
        "client id containing U+0000",
        DisconnectReasonCode::MalformedPacket,
    ),
    // §2.2.2.2: an identifier not valid for the packet type is a Malformed Packet.
    (
        "unknown property 0x04",
        DisconnectReasonCode::MalformedPacket,
    ),
    (
        "Session Expiry Interval in PUBLISH",
        DisconnectReasonCode::MalformedPacket,
    ),
    // [MQTT-3.8.3-5] "MUST treat a SUBSCRIBE packet as malformed".
    (
        "5.0 subscription options bit 6",
        DisconnectReasonCode::MalformedPacket,
    ),
    // "It is a Protocol Error to include ... more than once."
    ("Content Type twice", DisconnectReasonCode::ProtocolError),
    // "It is a Protocol Error to include the Receive Maximum value of 0."
    (
        "Receive Maximum 0 in CONNECT",
        DisconnectReasonCode::ProtocolError,
    ),
    // "It is a Protocol Error if the Subscription Identifier has a value of 0."
    (
        "Subscription Identifier 0 in SUBSCRIBE",
        DisconnectReasonCode::ProtocolError,
    ),
    // "It is a Protocol Error to include a value other than 0 or 1."
    ("Retain Available 2", DisconnectReasonCode::ProtocolError),
    ("Maximum QoS 2", DisconnectReasonCode::ProtocolError),
    // [MQTT-3.8.3-4] "It is a Protocol Error to set the No Local bit to 1 on a Shared Subscription."
    (
        "No Local on a shared subscription",
        DisconnectReasonCode::ProtocolError,
    ),
    // "It is a Protocol Error to include Authentication Data if there is no Authentication Method."
    (
        "Authentication Data without Authentication Method in AUTH",
        DisconnectReasonCode::ProtocolError,
    ),
    // §3.8.3.1 "It is a Protocol Error to send a Retain Handling value of 3."
    (
        "5.0 SUBSCRIBE retain handling 3",
        DisconnectReasonCode::ProtocolError,
    ),
    // §3.8.3.1 "It is a Protocol Error if the Maximum QoS field has the value 3."
    (
        "5.0 SUBSCRIBE with maximum QoS 3",
        DisconnectReasonCode::ProtocolError,
    ),
    // [MQTT-3.8.3-2] "A SUBSCRIBE packet with no Payload is a Protocol Error."
    (
        "5.0 SUBSCRIBE with no filter",
        DisconnectReasonCode::ProtocolError,
    ),
    // [MQTT-3.10.3-2] "An UNSUBSCRIBE packet with no Payload is a Protocol Error."
    (
        "5.0 UNSUBSCRIBE with no filter",
        DisconnectReasonCode::ProtocolError,
    ),
    // The specific codes of §3.14.2.1.
    (
        "remaining length over the maximum packet size, body not sent",
        DisconnectReasonCode::PacketTooLarge,
    ),
    (
        "'+' in a PUBLISH topic name",
        DisconnectReasonCode::TopicNameInvalid,
    ),
    ("filter 'a/#/b'", DisconnectReasonCode::TopicFilterInvalid),
    (
        "filter '$share//x' (empty share name)",
        DisconnectReasonCode::TopicFilterInvalid,
    ),
    ("Topic Alias 0", DisconnectReasonCode::TopicAliasInvalid),
];

#[test]
fn every_error_maps_to_a_disconnect_reason() {
    let allowed = [
        DisconnectReasonCode::MalformedPacket,
        DisconnectReasonCode::ProtocolError,
        DisconnectReasonCode::TopicFilterInvalid,
        DisconnectReasonCode::TopicNameInvalid,
        DisconnectReasonCode::TopicAliasInvalid,
        DisconnectReasonCode::PacketTooLarge,
    ];
    let mut problems = Vec::new();
    for row in ROWS {
        let code = DisconnectReasonCode::from(row.expected);
        if !allowed.contains(&code) {
            problems.push(format!("{}: {:?} maps to {code}", row.name, row.expected));
        }
    }
    for (name, want) in SPEC_REASONS {
        let Some(row) = ROWS.iter().find(|r| r.name == *name) else {
            problems.push(format!("no row named {name:?}"));
            continue;
        };
        // What the codec actually returns, so a row that decodes wrongly is
        // not hidden behind the mapping of its expected error.
        let got = match decode_row(row) {
            Ok(Err(e)) => DisconnectReasonCode::from(e),
            other => {
                problems.push(format!("{name}: not refused ({other:?})"));
                continue;
            }
        };
        if got != *want {
            problems.push(format!(
                "{name}: DISCONNECT reason {got}, the spec says {want}"
            ));
        }
    }
    fail_with("wrong DISCONNECT reasons", &problems);
}

#[test]
fn every_strict_prefix_needs_more_or_fails_the_same_way() {
    let mut problems = Vec::new();
    for row in ROWS {
        for len in 0..row.bytes.len() {
            let prefix = &row.bytes[..len];
            let mut buf = BytesMut::from(prefix);
            let result = catch_unwind(AssertUnwindSafe(|| decode(&mut buf, row.version, MAX)));
            match result {
                Err(_) => problems.push(format!("{} [..{len}]: panicked", row.name)),
                Ok(Ok(None)) if buf[..] == *prefix => {}
                Ok(Ok(None)) => problems.push(format!(
                    "{} [..{len}]: Ok(None) changed the buffer",
                    row.name
                )),
                Ok(Err(e)) if discriminant(&e) == discriminant(&row.expected) => {}
                Ok(other) => problems.push(format!(
                    "{} [..{len}]: expected Ok(None) or {:?}, got {other:?}",
                    row.name, row.expected
                )),
            }
        }
    }
    fail_with("prefixes misbehaved", &problems);
}

#[test]
fn the_table_covers_every_decode_error() {
    // Every kind of error the codec defines today has at least one row.
    let kinds = [
        "PacketTooLarge",
        "MalformedVariableInteger",
        "InvalidPacketType",
        "InvalidHeaderFlags",
        "InvalidQoS",
        "DupOnQoS0",
        "UnexpectedEnd",
        "TrailingBytes",
        "ZeroPacketId",
        "InvalidUtf8",
        "NulInString",
        "InvalidTopicName",
        "InvalidTopicFilter",
        "EmptyPayload",
        "InvalidProtocolName",
        "UnsupportedProtocolVersion",
        "InvalidConnectFlags",
        "PasswordWithoutUsername",
        "InvalidConnAckFlags",
        "InvalidReasonCode",
        "InvalidSubscriptionOptions",
        "InvalidSubscriptionQoS",
        "InvalidRetainHandling",
        "NoLocalOnSharedSubscription",
        "UnknownProperty",
        "PropertyNotAllowed",
        "DuplicateProperty",
        "InvalidPropertyValue",
        "PropertyLengthOverrun",
        "ZeroTopicAlias",
        "EmptyTopicWithoutAlias",
        "AuthDataWithoutMethod",
    ];
    let missing: Vec<String> = kinds
        .iter()
        .filter(|kind| {
            !ROWS.iter().any(|row| {
                let shown = format!("{:?}", row.expected);
                shown == **kind
                    || shown.starts_with(&format!("{kind}("))
                    || shown.starts_with(&format!("{kind} {{"))
            })
        })
        .map(|kind| kind.to_string())
        .collect();
    fail_with("error kinds have no row", &missing);
}
