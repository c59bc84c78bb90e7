//! The packet codec: bytes to [`Packet`] and back, for MQTT 3.1.1 and 5.0.
//!
//! Pure functions with no I/O, no clock and no connection state. One packet
//! model serves both versions; the version is an argument of [`decode`] and
//! [`Packet::encode`], and fields that 3.1.1 lacks (properties, most reason
//! codes) are simply absent on the wire.
//!
//! # Decoding
//!
//! [`decode`] takes a buffer the network filled and returns:
//! - `Ok(Some(packet))` and removes the packet's bytes from the buffer;
//! - `Ok(None)` when the buffer does not hold a whole packet yet, leaving the
//!   buffer as it was (read more and call again);
//! - `Err(_)` when the bytes are not a valid packet. The stream cannot be
//!   resynchronised after that: close the connection (with 5.0, after a
//!   DISCONNECT carrying `DisconnectReasonCode::from(err)`).
//!
//! Decoding is zero-copy: topic names, payloads, strings and binary
//! properties of a decoded packet are slices of the input buffer (the buffer
//! is split, not copied), and strings are validated UTF-8 views. Decoding a
//! PUBLISH performs no heap allocation. The packet's size is checked against
//! the caller's maximum as soon as its fixed header is readable, before the
//! body is buffered.
//!
//! [`decode_slice`] is the borrowing alternative, for bytes in a plain
//! `&[u8]` and for code that inspects a packet and moves on (a proxy, a
//! logger, a router): it gives a [`PacketRef`] whose strings and binary
//! fields are `&str` / `&[u8]` borrowed from the input, checked exactly as
//! [`decode`] checks them (the same errors for the same bytes), and it
//! never allocates and never touches a reference count, for any packet.
//! [`PacketRef::to_packet`] copies one into an owned [`Packet`].
//!
//! # Encoding
//!
//! [`Packet::encode`] appends one packet to a `BytesMut`, reserving exactly
//! [`Packet::encoded_len`] bytes first. Encoding writes the shortest form the
//! spec allows (e.g. a 5.0 PUBACK with reason Success and no properties is
//! four bytes). On error nothing is appended.
//!
//! Topic names and filters are checked when they are made, not when they
//! are encoded: a [`Publish`] or [`LastWill`] holds a [`TopicName`], a
//! [`Subscribe`] or [`Unsubscribe`] holds [`TopicFilter`]s, and `try_from`
//! is where a wildcard in a name or a misplaced `#` is refused. What is
//! left for encoding to refuse is what the types allow and the wire does
//! not (a QoS 1 PUBLISH without a packet identifier, an empty topic name
//! without a Topic Alias, a field over 65,535 bytes, ...).
//!
//! ## The canonical form
//!
//! The bytes [`Packet::encode`] writes depend only on the packet value and
//! the version. Where the wire allows several encodings of the same packet,
//! it writes one, the *canonical form*:
//!
//! 1. Variable byte integers (remaining length, property lengths,
//!    subscription identifiers) take the fewest bytes. This is not a
//!    choice: [`decode`] refuses any other encoding ([MQTT-1.5.5-1]).
//! 2. A 5.0 property block lists, in this order: the single-valued
//!    properties that are set, in the order in which the packet's
//!    property struct declares its fields (for [`PublishProperties`]:
//!    payload format indicator, message expiry interval, topic alias,
//!    response topic, correlation data, content type); then a PUBLISH's
//!    subscription identifiers; then the user properties. Subscription
//!    identifiers and user properties keep their order among themselves
//!    (decoded ones are copied byte for byte).
//! 3. Where the spec lets a packet end early, it does: PUBACK, PUBREC,
//!    PUBREL and PUBCOMP with no properties end after the packet
//!    identifier when the reason code is Success (remaining length 2) and
//!    after the reason code otherwise (3), with no property length; a 5.0
//!    DISCONNECT with no properties has no body for Normal disconnection
//!    and only the reason code otherwise; an AUTH with reason Success and
//!    no properties has no body. Every other 5.0 packet carries its
//!    property length, 0 when there are no properties.
//!
//! Input that differs from the canonical form only in these respects
//! (properties in another order, an explicit Success reason code or an
//! empty property block where they may be left out) decodes to the same
//! packet as its canonical form. So decode → encode → decode gives back the
//! packet that was decoded, for any valid input; decode → encode gives back
//! the input bytes exactly when the input was canonical. A real-world
//! case: `mosquitto_pub -D publish user-property k v -D publish content-type
//! t` sends the user property first, and re-encoding moves the content type
//! before it.
//!
//! ```
//! use bytes::BytesMut;
//! use plover::codec::{self, Packet, ProtocolVersion, Publish, QoS};
//!
//! let publish = Publish::new("home/kitchen/temperature".try_into().unwrap(), "21.5")
//!     .with_qos(QoS::AtLeastOnce, 7.try_into().ok());
//! let mut buf = BytesMut::new();
//! Packet::Publish(publish.clone()).encode(ProtocolVersion::V5, &mut buf).unwrap();
//!
//! let decoded = codec::decode(&mut buf, ProtocolVersion::V5, 1 << 20).unwrap();
//! assert_eq!(decoded, Some(Packet::Publish(publish)));
//! assert!(buf.is_empty());
//! ```

mod borrowed;
mod connect;
mod disconnect;
mod error;
mod primitives;
mod properties;
mod publish;
mod reason;
mod subscribe;
mod topics;

use std::fmt;
use std::num::NonZeroU16;

use bytes::{Buf, Bytes, BytesMut};

pub use borrowed::{
    AckRef, AuthRef, ConnAckRef, ConnectRef, DisconnectRef, FiltersRef, LastWillRef, PacketRef,
    PubAckRef, PubCompRef, PubRecRef, PubRelRef, PublishRef, SubAckRef, SubscribeRef, UnsubAckRef,
    UnsubscribeRef, decode_slice,
};
pub(crate) use connect::redacted;
pub use connect::{ConnAck, Connect, LastWill};
pub use disconnect::{Auth, Disconnect};
use error::refuse;
pub use error::{DecodeError, EncodeError};

pub use primitives::{MAX_VARIABLE_INT, MqttString, StringError};
pub use properties::{
    AckProperties, AckPropertiesRef, AuthProperties, AuthPropertiesRef, ConnAckProperties,
    ConnAckPropertiesRef, ConnectProperties, ConnectPropertiesRef, DisconnectProperties,
    DisconnectPropertiesRef, PayloadFormat, PropertiesRef, PropertyId, PropertySet,
    PublishProperties, PublishPropertiesRef, SubscribeProperties, SubscribePropertiesRef,
    SubscriptionIdentifiers, SubscriptionIdentifiersRef, UnsubscribeProperties,
    UnsubscribePropertiesRef, UserProperties, UserPropertiesRef, WillProperties, WillPropertiesRef,
};
pub use publish::{PubAck, PubComp, PubRec, PubRel, Publish, PublishResponse};
pub use reason::{
    AuthReasonCode, ConnectReasonCode, DisconnectReasonCode, InvalidReasonCode, PubAckReasonCode,
    PubRelReasonCode, SubAckReasonCode, UnsubAckReasonCode,
};
pub use subscribe::{
    RetainHandling, SubAck, Subscribe, SubscriptionOptions, UnsubAck, Unsubscribe,
};
pub use topics::{IntoTopicName, TopicFilter, TopicName};

use primitives::{Reader, read_var_int, var_int_len, write_fixed_header, write_var_int};
pub(crate) use primitives::{has_nul, has_nul_or_wildcard, short_word};

/// The MQTT protocol version spoken on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProtocolVersion {
    /// MQTT 3.1.1 (protocol level 4), the version most devices speak.
    V311,
    /// MQTT 5.0 (protocol level 5).
    V5,
}

impl ProtocolVersion {
    /// The protocol level byte sent in CONNECT.
    pub const fn level(self) -> u8 {
        match self {
            ProtocolVersion::V311 => 4,
            ProtocolVersion::V5 => 5,
        }
    }

    /// The version for a CONNECT protocol level byte.
    pub const fn from_level(level: u8) -> Option<Self> {
        match level {
            4 => Some(ProtocolVersion::V311),
            5 => Some(ProtocolVersion::V5),
            _ => None,
        }
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProtocolVersion::V311 => "3.1.1",
            ProtocolVersion::V5 => "5.0",
        })
    }
}

/// Quality of service: how hard the sender and receiver try to deliver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(u8)]
pub enum QoS {
    /// QoS 0: at most once, fire and forget.
    #[default]
    AtMostOnce = 0,
    /// QoS 1: at least once, acknowledged by PUBACK; may be duplicated.
    AtLeastOnce = 1,
    /// QoS 2: exactly once, by the PUBREC / PUBREL / PUBCOMP handshake.
    ExactlyOnce = 2,
}

impl QoS {
    /// The QoS for a number 0, 1 or 2.
    pub const fn from_u8(value: u8) -> Option<Self> {
        match value {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }
}

/// A number that is not a QoS (only 0, 1 and 2 are).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid QoS {0}: must be 0, 1 or 2")]
pub struct InvalidQoS(pub u8);

/// ```
/// use plover::QoS;
///
/// assert_eq!(QoS::try_from(1), Ok(QoS::AtLeastOnce));
/// assert!(QoS::try_from(3).is_err());
/// ```
impl TryFrom<u8> for QoS {
    type Error = InvalidQoS;
    fn try_from(value: u8) -> Result<Self, InvalidQoS> {
        QoS::from_u8(value).ok_or(InvalidQoS(value))
    }
}

impl fmt::Display for QoS {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", *self as u8)
    }
}

/// The packet type, from the high four bits of the first byte (§2.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
#[allow(missing_docs)] // the spec's names
pub enum PacketType {
    Connect = 1,
    ConnAck = 2,
    Publish = 3,
    PubAck = 4,
    PubRec = 5,
    PubRel = 6,
    PubComp = 7,
    Subscribe = 8,
    SubAck = 9,
    Unsubscribe = 10,
    UnsubAck = 11,
    PingReq = 12,
    PingResp = 13,
    Disconnect = 14,
    Auth = 15,
}

impl PacketType {
    const fn from_u8(value: u8) -> Option<Self> {
        use PacketType::*;
        Some(match value {
            1 => Connect,
            2 => ConnAck,
            3 => Publish,
            4 => PubAck,
            5 => PubRec,
            6 => PubRel,
            7 => PubComp,
            8 => Subscribe,
            9 => SubAck,
            10 => Unsubscribe,
            11 => UnsubAck,
            12 => PingReq,
            13 => PingResp,
            14 => Disconnect,
            15 => Auth,
            _ => return None,
        })
    }

    /// The fixed header flags every packet but PUBLISH must carry (§2.1.3).
    fn required_flags(self) -> u8 {
        match self {
            // [MQTT-3.6.1-1], [MQTT-3.8.1-1], [MQTT-3.10.1-1]: bits 3,2,1,0 = 0,0,1,0.
            PacketType::PubRel | PacketType::Subscribe | PacketType::Unsubscribe => 0b0010,
            _ => 0,
        }
    }
}

impl fmt::Display for PacketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use PacketType::*;
        f.write_str(match self {
            Connect => "CONNECT",
            ConnAck => "CONNACK",
            Publish => "PUBLISH",
            PubAck => "PUBACK",
            PubRec => "PUBREC",
            PubRel => "PUBREL",
            PubComp => "PUBCOMP",
            Subscribe => "SUBSCRIBE",
            SubAck => "SUBACK",
            Unsubscribe => "UNSUBSCRIBE",
            UnsubAck => "UNSUBACK",
            PingReq => "PINGREQ",
            PingResp => "PINGRESP",
            Disconnect => "DISCONNECT",
            Auth => "AUTH",
        })
    }
}

/// One MQTT control packet, of either protocol version.
///
/// The large, rare packets (CONNECT, CONNACK) are boxed so that the common
/// ones (PUBLISH and its acknowledgements) do not pay for their size.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // each variant is its packet; see the inner types
pub enum Packet {
    Connect(Box<Connect>),
    ConnAck(Box<ConnAck>),
    Publish(Publish),
    PubAck(PubAck),
    PubRec(PubRec),
    PubRel(PubRel),
    PubComp(PubComp),
    Subscribe(Subscribe),
    SubAck(SubAck),
    Unsubscribe(Unsubscribe),
    UnsubAck(UnsubAck),
    PingReq,
    PingResp,
    Disconnect(Disconnect),
    /// MQTT 5.0 only.
    Auth(Auth),
}

impl Packet {
    /// This packet's type.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Connect(_) => PacketType::Connect,
            Packet::ConnAck(_) => PacketType::ConnAck,
            Packet::Publish(_) => PacketType::Publish,
            Packet::PubAck(_) => PacketType::PubAck,
            Packet::PubRec(_) => PacketType::PubRec,
            Packet::PubRel(_) => PacketType::PubRel,
            Packet::PubComp(_) => PacketType::PubComp,
            Packet::Subscribe(_) => PacketType::Subscribe,
            Packet::SubAck(_) => PacketType::SubAck,
            Packet::Unsubscribe(_) => PacketType::Unsubscribe,
            Packet::UnsubAck(_) => PacketType::UnsubAck,
            Packet::PingReq => PacketType::PingReq,
            Packet::PingResp => PacketType::PingResp,
            Packet::Disconnect(_) => PacketType::Disconnect,
            Packet::Auth(_) => PacketType::Auth,
        }
    }

    /// Measures everything after the fixed header, checking what the wire
    /// cannot carry; see [`Sizes`].
    fn measure(&self, version: ProtocolVersion) -> Result<Sizes, EncodeError> {
        match self {
            Packet::Connect(p) => p.measure(),
            Packet::ConnAck(p) => p.measure(version),
            Packet::Publish(p) => p.measure(version),
            Packet::PubAck(p) | Packet::PubRec(p) => p.measure(version),
            Packet::PubRel(p) | Packet::PubComp(p) => p.measure(version),
            Packet::Subscribe(p) => p.measure(version),
            Packet::SubAck(p) => p.measure(version),
            Packet::Unsubscribe(p) => p.measure(version),
            Packet::UnsubAck(p) => p.measure(version),
            Packet::PingReq | Packet::PingResp => Ok(Sizes::body(0)),
            Packet::Disconnect(p) => p.measure(version),
            Packet::Auth(p) => p.measure(version),
        }
    }

    /// The exact number of bytes [`encode`](Self::encode) will write.
    ///
    /// A CONNECT is always sized and written for the version it names.
    pub fn encoded_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        let body = self.measure(version)?.body;
        if body > MAX_VARIABLE_INT as usize {
            return refuse(EncodeError::PacketTooLarge(body));
        }
        Ok(1 + var_int_len(body) + body)
    }

    /// Appends this packet to `buf` as `version` lays it out.
    ///
    /// Grows `buf` at most once: into an empty buffer the whole packet is
    /// reserved before anything is written. On error nothing is written.
    /// A small packet (a PUBLISH of up to 128 bytes, most
    /// SUBSCRIBEs and CONNECTs) is written in place in a block of 128 or
    /// 256 bytes that is then cut back to the packet, so `buf` may grow
    /// by up to that much more than the packet needs.
    #[inline]
    pub fn encode(&self, version: ProtocolVersion, buf: &mut BytesMut) -> Result<(), EncodeError> {
        // PUBLISH, the packet sent most, is encoded where this is called:
        // in a loop over packets the registers its path needs are saved
        // once, not once a packet. The others go out of line.
        match self {
            Packet::Publish(p) => p.encode(version, buf),
            other => other.encode_other(version, buf),
        }
    }

    /// `encode` for every packet but PUBLISH.
    #[inline(never)]
    fn encode_other(
        &self,
        version: ProtocolVersion,
        buf: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        // The packets that follow a PUBLISH most, its acknowledgements,
        // without a jump per kind, and in 3.1.1 with nothing called on the
        // way (5.0 and a full buffer go the long way), so that no register
        // needs saving for them.
        if version == ProtocolVersion::V311
            && let Some(bytes) = self.short_ack_v311()
            && buf.capacity() - buf.len() >= bytes.len()
        {
            buf.extend_from_slice(&bytes);
            return Ok(());
        }
        self.encode_long(version, buf)
    }

    /// `encode_other` for all but the 3.1.1 acknowledgements (those too
    /// when the buffer is full).
    ///
    /// A dispatch and nothing else: every arm is a function of its own, so
    /// this one saves no registers and ends in a jump. With arms inlined
    /// here, every packet that came this way paid for the registers the
    /// largest arm needed (20 instructions for a SUBSCRIBE or a CONNECT).
    #[inline(never)]
    fn encode_long(&self, version: ProtocolVersion, buf: &mut BytesMut) -> Result<(), EncodeError> {
        let v = version;
        match self {
            // Not reached from `encode`, which takes PUBLISH itself.
            Packet::Publish(p) => p.encode_apart(v, buf),
            Packet::PubAck(p) => p.encode_apart(0x40, v, buf),
            Packet::PubRec(p) => p.encode_apart(0x50, v, buf),
            Packet::PubRel(p) => p.encode_apart(0x62, v, buf),
            Packet::PubComp(p) => p.encode_apart(0x70, v, buf),
            Packet::PingReq => encode_ping(0xC0, buf),
            Packet::PingResp => encode_ping(0xD0, buf),
            Packet::Connect(p) => p.encode(buf),
            Packet::ConnAck(p) => p.encode_apart(v, buf),
            Packet::Subscribe(p) => p.encode(v, buf),
            Packet::SubAck(p) => p.encode_apart(v, buf),
            Packet::Unsubscribe(p) => p.encode_apart(v, buf),
            Packet::UnsubAck(p) => p.encode_apart(v, buf),
            Packet::Disconnect(p) => p.encode_apart(v, buf),
            Packet::Auth(p) => p.encode_apart(v, buf),
        }
    }

    /// The four bytes of a 3.1.1 acknowledgement of a PUBLISH (its packet
    /// identifier alone), or `None` for any other packet.
    #[inline(always)]
    fn short_ack_v311(&self) -> Option<[u8; 4]> {
        // The first byte and the identifier each in a match of its own: the
        // first is a table lookup, the second the same load for all four
        // (they share a layout), so which of the four it is costs no
        // branch. A jump per kind mispredicts when kinds alternate, as
        // they do on a busy QoS 2 connection.
        let first = match self {
            Packet::PubAck(_) => 0x40,
            Packet::PubRec(_) => 0x50,
            Packet::PubRel(_) => 0x62,
            Packet::PubComp(_) => 0x70,
            _ => return None,
        };
        let id = match self {
            Packet::PubAck(p) | Packet::PubRec(p) => p.packet_id,
            Packet::PubRel(p) | Packet::PubComp(p) => p.packet_id,
            _ => return None,
        };
        let [hi, lo] = id.get().to_be_bytes();
        Some([first, 2, hi, lo])
    }

    /// Reads one packet other than PUBLISH, `buf[header_len..total]`, and
    /// advances `buf` past it, also when it fails.
    ///
    /// Out of line: PUBLISH, the packet that matters for speed, has its own
    /// path inlined into the caller (`Publish::read_packet`); the others
    /// share this one. Each is returned inside `Ok(Some(..))` where it is
    /// built, so it is not copied again on the way out.
    #[inline(never)]
    fn read_other(
        buf: &mut Bytes,
        packet_type: PacketType,
        header_len: usize,
        total: usize,
        version: ProtocolVersion,
    ) -> Result<Option<Packet>, DecodeError> {
        let (v, t) = (version, packet_type);
        if let Some(id) = read_short(buf, t, header_len, total) {
            buf.advance(total);
            return Ok(Some(short_packet(t, id?)));
        }
        let mut r = Reader::new(buf, header_len, total);
        // Reads the packet's fields, checks that the packet ends exactly
        // where its remaining length says (after the fields, so that their
        // errors come first), then lets go of `buf`'s bytes.
        macro_rules! read {
            ($read:expr) => {{
                let read = $read;
                match read.and_then(|value| r.finish().map(|()| value)) {
                    Ok(value) => {
                        buf.advance(total);
                        value
                    }
                    Err(e) => return fail(buf, total, e),
                }
            }};
        }
        // Each arm returns its packet from where it is built.
        match packet_type {
            PacketType::Connect => Ok(Some(Packet::Connect(read!(Connect::read(&mut r))))),
            PacketType::ConnAck => Ok(Some(Packet::ConnAck(Box::new(read!(ConnAck::read(
                &mut r, v
            )))))),
            PacketType::PubAck => Ok(Some(Packet::PubAck(read!(PubAck::read(&mut r, v, t))))),
            PacketType::PubRec => Ok(Some(Packet::PubRec(read!(PubRec::read(&mut r, v, t))))),
            PacketType::PubRel => Ok(Some(Packet::PubRel(read!(PubRel::read(&mut r, v, t))))),
            PacketType::PubComp => Ok(Some(Packet::PubComp(read!(PubComp::read(&mut r, v, t))))),
            PacketType::Subscribe => Ok(Some(Packet::Subscribe(read!(Subscribe::read(&mut r, v))))),
            PacketType::SubAck => Ok(Some(Packet::SubAck(read!(SubAck::read(&mut r, v))))),
            PacketType::Unsubscribe => Ok(Some(Packet::Unsubscribe(read!(Unsubscribe::read(
                &mut r, v
            ))))),
            PacketType::UnsubAck => Ok(Some(Packet::UnsubAck(read!(UnsubAck::read(&mut r, v))))),
            PacketType::PingReq => Ok(Some(read!(Ok(Packet::PingReq)))),
            PacketType::PingResp => Ok(Some(read!(Ok(Packet::PingResp)))),
            PacketType::Disconnect => {
                Ok(Some(Packet::Disconnect(read!(Disconnect::read(&mut r, v)))))
            }
            PacketType::Auth => Ok(Some(Packet::Auth(read!(Auth::read(&mut r))))),
            // Not reached: `read_packet` sends PUBLISH to `Publish::read_packet`.
            PacketType::Publish => {
                debug_assert!(false, "PUBLISH in read_other");
                let e = DecodeError::InvalidPacketType(PacketType::Publish as u8);
                fail(buf, total, e)
            }
        }
    }
}

/// The packets that hold nothing of their input and are nothing but a
/// packet identifier or not even that: an acknowledgement of a PUBLISH
/// whose body is its packet identifier alone (every one in 3.1.1, and in
/// 5.0 a success with no properties, the usual answer), and a ping.
/// `input[header_len..total]` is the body. Gives the packet identifier
/// (`None` for a ping) for [`short_packet`] to build the packet from once
/// the caller has advanced its input past it, whatever the outcome; `None`
/// for any other packet, or a body of another length.
///
/// Built where it is returned. Through `read_other`'s general path an
/// acknowledgement came back from `PublishResponse::read` on the stack and
/// was moved into the `Packet` with the enum's tag in front, and the loads
/// of that second move straddled the stores of the first, which x86
/// cannot forward from: a PUBACK took half again mqtt-protocol's time for
/// the same instructions. A ping was built on the stack and all 248 bytes
/// of it copied out. The `BytesMut` path (`decode`) also needs no frame
/// of its own for these, and so no reference count.
#[inline(always)]
fn read_short(
    input: &[u8],
    packet_type: PacketType,
    header_len: usize,
    total: usize,
) -> Option<Result<Option<NonZeroU16>, DecodeError>> {
    let body = input.get(header_len..total)?;
    match (body.len(), packet_type) {
        (0, PacketType::PingReq | PacketType::PingResp) => Some(Ok(None)),
        (2, PacketType::PubAck | PacketType::PubRec | PacketType::PubRel | PacketType::PubComp) => {
            let id = u16::from_be_bytes(*body.first_chunk::<2>()?);
            Some(
                NonZeroU16::new(id)
                    .map(Some)
                    .ok_or(DecodeError::ZeroPacketId(packet_type)),
            )
        }
        _ => None,
    }
}

/// The packet [`read_short`] found: `packet_type` is a ping (`packet_id`
/// `None`) or an acknowledgement of a PUBLISH.
#[inline(always)]
fn short_packet(packet_type: PacketType, packet_id: Option<NonZeroU16>) -> Packet {
    let Some(packet_id) = packet_id else {
        return match packet_type {
            PacketType::PingReq => Packet::PingReq,
            _ => Packet::PingResp,
        };
    };
    match packet_type {
        PacketType::PubAck => Packet::PubAck(PubAck::new(packet_id)),
        PacketType::PubRec => Packet::PubRec(PubRec::new(packet_id)),
        PacketType::PubRel => Packet::PubRel(PubRel::new(packet_id)),
        _ => Packet::PubComp(PubComp::new(packet_id)),
    }
}

/// Gives up on a packet: the input is advanced past it all the same, as
/// when the packet's bytes were split off before it was read.
#[cold]
fn fail<T>(buf: &mut Bytes, total: usize, e: DecodeError) -> Result<T, DecodeError> {
    buf.advance(total);
    Err(e)
}

/// Reads the packet `buf[..total]`, whose fixed header (`header_len`
/// bytes) is already checked, and advances `buf` past it.
#[inline(always)]
fn read_packet(
    buf: &mut Bytes,
    packet_type: PacketType,
    flags: u8,
    header_len: usize,
    total: usize,
    version: ProtocolVersion,
) -> Result<Option<Packet>, DecodeError> {
    if packet_type == PacketType::Publish {
        return Publish::read_packet(flags, buf, header_len, total, version);
    }
    Packet::read_other(buf, packet_type, header_len, total, version)
}

/// The packet type of each value of the first byte's high four bits.
const PACKET_TYPES: [Option<PacketType>; 16] = {
    let mut types = [None; 16];
    let mut bits = 0;
    while bits < 16 {
        types[bits] = PacketType::from_u8(bits as u8);
        bits += 1;
    }
    types
};

/// Checks the first byte of a packet: a known type for this version, with the
/// fixed-header flags that type requires.
///
/// Called as soon as one byte is buffered, so garbage is rejected at once
/// instead of after waiting for a body its remaining length announces.
#[inline(always)]
fn check_first_byte(first: u8, version: ProtocolVersion) -> Result<PacketType, DecodeError> {
    let type_bits = first >> 4;
    let flags = first & 0x0F;
    let Some(packet_type) = PACKET_TYPES[usize::from(type_bits)] else {
        return Err(DecodeError::InvalidPacketType(type_bits));
    };
    if packet_type == PacketType::Publish {
        // PUBLISH flags are checked when the packet is read, but for
        // [MQTT-3.3.1-4]: a PUBLISH MUST NOT have both QoS bits set to 1.
        if (flags >> 1) & 0b11 == 0b11 {
            return Err(DecodeError::InvalidQoS);
        }
        return Ok(packet_type);
    }
    // AUTH exists only in 5.0; in 3.1.1 type 15 is reserved.
    if packet_type == PacketType::Auth && version == ProtocolVersion::V311 {
        return Err(DecodeError::InvalidPacketType(type_bits));
    }
    // [MQTT-2.1.3-1] Reserved flag bits MUST be set to the listed values;
    // [MQTT-2.1.3-2] a receiver MUST close the connection otherwise.
    if flags != packet_type.required_flags() {
        return Err(DecodeError::InvalidHeaderFlags {
            packet: packet_type,
            flags,
        });
    }
    Ok(packet_type)
}

/// [`frame_len`] with the common cases inline: a complete remaining length
/// of one to three bytes (packets up to 2 MiB), minimally encoded. Anything
/// else (four bytes, not all there yet, malformed) goes to `frame_len`.
#[inline(always)]
fn frame(buf: &[u8], max_packet_size: usize) -> Result<Option<(usize, usize)>, DecodeError> {
    let low = |b: u8| usize::from(b & 0x7F);
    let (remaining, header_len) = match *buf {
        [_, a, ..] if a < 0x80 => (usize::from(a), 2),
        // [MQTT-1.5.5-1] a last byte of 0 would not be minimal: frame_len
        // reports it.
        [_, a, b, ..] if b < 0x80 && b != 0 => (low(a) | usize::from(b) << 7, 3),
        [_, a, b, c, ..] if b >= 0x80 && c < 0x80 && c != 0 => {
            (low(a) | low(b) << 7 | usize::from(c) << 14, 4)
        }
        _ => return frame_len(buf, max_packet_size),
    };
    let total = header_len + remaining;
    if total > max_packet_size {
        return Err(DecodeError::PacketTooLarge {
            size: total,
            max: max_packet_size,
        });
    }
    Ok(Some((header_len, total)))
}

/// Where the next packet in `buf` ends: `Ok(Some((header_len, total_len)))`,
/// or `Ok(None)` if the fixed header is not complete yet.
///
/// This is where the size limit is enforced: as soon as the remaining length
/// is known, before any of the body needs to be buffered.
pub fn frame_len(
    buf: &[u8],
    max_packet_size: usize,
) -> Result<Option<(usize, usize)>, DecodeError> {
    let Some(rest) = buf.get(1..) else {
        return Ok(None);
    };
    let Some((remaining, len_bytes)) = read_var_int(rest)? else {
        return Ok(None);
    };
    let header_len = 1 + len_bytes;
    let total = header_len + remaining as usize;
    if total > max_packet_size {
        return Err(DecodeError::PacketTooLarge {
            size: total,
            max: max_packet_size,
        });
    }
    Ok(Some((header_len, total)))
}

/// The most [`decode`] reserves ahead for a packet not yet received.
const MAX_EAGER_RESERVE: usize = 1 << 20;

/// Decodes the next packet from a buffer the network fills.
///
/// See the [module documentation](self) for the three outcomes. When the
/// packet is incomplete, `buf` keeps its contents and gains the capacity the
/// rest of the packet needs (up to 1 MiB), so the next reads do not
/// reallocate.
///
/// `max_packet_size` bounds the whole packet, fixed header included, as MQTT
/// 5.0's Maximum Packet Size does; pass `usize::MAX` for no limit of your
/// own (the protocol's own limit is 256 MiB).
#[inline]
pub fn decode(
    buf: &mut BytesMut,
    version: ProtocolVersion,
    max_packet_size: usize,
) -> Result<Option<Packet>, DecodeError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let packet_type = check_first_byte(first, version)?;
    let Some((header_len, total)) = frame(buf, max_packet_size)? else {
        return Ok(None);
    };
    if buf.len() < total {
        // Make room for the rest now so the next reads do not reallocate,
        // but never more than 1 MiB on the word of a header alone: a peer
        // announcing 256 MiB must send it before we commit that memory.
        buf.reserve((total - buf.len()).min(MAX_EAGER_RESERVE));
        return Ok(None);
    }
    // Acknowledgements and pings keep nothing of the input: read in place.
    if let Some(id) = read_short(buf, packet_type, header_len, total) {
        buf.advance(total);
        return Ok(Some(short_packet(packet_type, id?)));
    }
    // The packet's bytes become a `Bytes` of their own (which a PUBLISH's
    // payload then takes over), and are read as `decode_bytes` reads them.
    let mut frame = buf.split_to(total).freeze();
    read_packet(
        &mut frame,
        packet_type,
        first & 0x0F,
        header_len,
        total,
        version,
    )
}

/// Decodes the next packet from the front of an immutable `Bytes`.
///
/// The same as [`decode`] for input that is already complete in memory (a
/// file, a capture, a fuzzer's input). Slicing a `Bytes` never allocates, so
/// this is the allocation-free path the benchmarks measure.
// Inlined into the caller's loop: the packet is then written straight
// into the caller's variable instead of being copied out (see `Packet::read`).
#[inline]
pub fn decode_bytes(
    buf: &mut Bytes,
    version: ProtocolVersion,
    max_packet_size: usize,
) -> Result<Option<Packet>, DecodeError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let packet_type = check_first_byte(first, version)?;
    let Some((header_len, total)) = frame(buf, max_packet_size)? else {
        return Ok(None);
    };
    if buf.len() < total {
        return Ok(None);
    }
    read_packet(buf, packet_type, first & 0x0F, header_len, total, version)
}

/// Reads a packet identifier, which must not be 0 ([MQTT-2.2.1-3]).
#[inline]
fn read_packet_id(r: &mut Reader<'_>, packet: PacketType) -> Result<NonZeroU16, DecodeError> {
    NonZeroU16::new(r.u16()?).ok_or(DecodeError::ZeroPacketId(packet))
}

/// Size of a 5.0 property block with its length prefix; 0 for 3.1.1.
fn props_block_len(version: ProtocolVersion, props_len: usize) -> usize {
    match version {
        ProtocolVersion::V5 => properties::block_len(props_len),
        ProtocolVersion::V311 => 0,
    }
}

/// `Packet::encode` for the packets written by `encode_packet`, each in a
/// function of its own (see `Packet::encode_long`).
macro_rules! encode_apart {
    ($($packet:ty => $first:literal),* $(,)?) => {$(
        impl $packet {
            #[inline(never)]
            fn encode_apart(&self, v: ProtocolVersion, buf: &mut BytesMut) -> Result<(), EncodeError> {
                encode_packet(buf, $first, self.measure(v), |s, b| self.write_body(v, s, b))
            }
        }
    )*};
}

encode_apart! {
    ConnAck => 0x20,
    SubAck => 0x90,
    Unsubscribe => 0xA2,
    UnsubAck => 0xB0,
    Disconnect => 0xE0,
}

impl Auth {
    #[inline(never)]
    fn encode_apart(&self, v: ProtocolVersion, buf: &mut BytesMut) -> Result<(), EncodeError> {
        encode_packet(buf, 0xF0, self.measure(v), |s, b| self.write_body(s, b))
    }
}

/// `Packet::encode` for PINGREQ and PINGRESP, whose first byte is `first`.
#[inline(never)]
fn encode_ping(first: u8, buf: &mut BytesMut) -> Result<(), EncodeError> {
    buf.extend_from_slice(&[first, 0]);
    Ok(())
}

/// `Packet::encode` for one packet, given its first byte, its measured
/// sizes (or why it cannot be written) and how to write its body: reserves
/// the packet's exact size, then writes the fixed header and the body.
#[inline(always)]
fn encode_packet(
    buf: &mut BytesMut,
    first: u8,
    sizes: Result<Sizes, EncodeError>,
    write_body: impl FnOnce(&Sizes, &mut BytesMut),
) -> Result<(), EncodeError> {
    let sizes = sizes?;
    let body = sizes.body;
    if body > MAX_VARIABLE_INT as usize {
        return refuse(EncodeError::PacketTooLarge(body));
    }
    buf.reserve(1 + var_int_len(body) + body);
    write_fixed_header(buf, first, body);
    let body_start = buf.len();
    write_body(&sizes, buf);
    debug_assert_eq!(
        buf.len() - body_start,
        body,
        "body size of packet {first:#04x}"
    );
    Ok(())
}

/// Writes a property block with its length prefix (5.0 only).
#[inline]
fn write_props_block(buf: &mut BytesMut, props_len: usize, write: impl FnOnce(&mut BytesMut)) {
    write_var_int(buf, props_len);
    if props_len > 0 {
        write(buf);
    }
}

/// What encoding a packet needs to know before it writes anything,
/// measured (and checked) in one walk over the packet: the size of the
/// body after the fixed header, and of each property block's contents
/// (without its length prefix), which the body announces before them.
/// Writing then uses these instead of measuring the properties again.
#[derive(Debug, Clone, Copy, Default)]
struct Sizes {
    /// Everything after the fixed header.
    body: usize,
    /// The packet's property block (5.0).
    props: usize,
    /// The will's property block (a 5.0 CONNECT with a will).
    will_props: usize,
}

impl Sizes {
    /// A body with no property block.
    fn body(body: usize) -> Self {
        Sizes {
            body,
            ..Sizes::default()
        }
    }
}

#[cfg(test)]
mod test_vectors;
#[cfg(test)]
mod tests;
