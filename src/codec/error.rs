//! What can go wrong reading or writing a packet. Small `Copy` enums with no
//! I/O in them; a decode error maps to the MQTT 5 reason code a DISCONNECT
//! should carry.

use super::properties::PropertyId;
use super::reason::{DisconnectReasonCode, InvalidReasonCode};
use super::{PacketType, ProtocolVersion};
use crate::topic::TopicError;

/// Why bytes from the network are not a valid MQTT packet.
///
/// Every variant is a protocol violation by the peer; the connection cannot
/// continue after one (the stream position is lost). Use
/// `DisconnectReasonCode::from(err)` for the reason code to send in a 5.0
/// DISCONNECT before closing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The packet is larger than the maximum packet size the reader allows.
    /// Detected from the fixed header, before the body is buffered.
    #[error("packet of {size} bytes exceeds the maximum packet size of {max} bytes")]
    PacketTooLarge {
        /// Total size of the packet (fixed header included).
        size: usize,
        /// The limit it exceeded.
        max: usize,
    },
    /// A variable byte integer (such as the remaining length) is longer
    /// than four bytes or not minimally encoded.
    #[error("malformed variable byte integer")]
    MalformedVariableInteger,
    /// Packet type 0 (reserved), or AUTH (15) in an MQTT 3.1.1 stream.
    #[error("invalid packet type {0}")]
    InvalidPacketType(u8),
    /// The low four bits of the first byte are not what the packet type
    /// requires ([MQTT-2.1.3-1]).
    #[error("invalid fixed header flags 0x{flags:X} for {packet}")]
    InvalidHeaderFlags {
        /// The packet whose flags were wrong.
        packet: PacketType,
        /// The four flag bits found.
        flags: u8,
    },
    /// A QoS of 3, in a PUBLISH, a will or a subscription ([MQTT-3.3.1-4]).
    #[error("invalid QoS 3")]
    InvalidQoS,
    /// The DUP flag is set on a QoS 0 PUBLISH ([MQTT-3.3.1-2]).
    #[error("DUP flag set on a QoS 0 PUBLISH")]
    DupOnQoS0,
    /// A field runs past the end of the packet's remaining length.
    #[error("packet ends in the middle of a field")]
    UnexpectedEnd,
    /// Bytes are left after the last field of the packet.
    #[error("unexpected bytes after the end of the packet")]
    TrailingBytes,
    /// A packet identifier of 0 where a non-zero one is required ([MQTT-2.2.1-3]).
    #[error("packet identifier 0 in {0}")]
    ZeroPacketId(PacketType),
    /// A string is not well-formed UTF-8 ([MQTT-1.5.4-1]).
    #[error("string is not well-formed UTF-8")]
    InvalidUtf8,
    /// A string contains U+0000 ([MQTT-1.5.4-2]).
    #[error("string contains U+0000")]
    NulInString,
    /// A PUBLISH or will topic name is not valid (e.g. contains `+` or `#`).
    #[error("invalid topic name: {0}")]
    InvalidTopicName(TopicError),
    /// A SUBSCRIBE or UNSUBSCRIBE topic filter is not valid.
    #[error("invalid topic filter: {0}")]
    InvalidTopicFilter(TopicError),
    /// A SUBSCRIBE, UNSUBSCRIBE, SUBACK or 5.0 UNSUBACK with an empty payload
    /// ([MQTT-3.8.3-2], [MQTT-3.10.3-2]).
    #[error("{0} has an empty payload")]
    EmptyPayload(PacketType),
    /// CONNECT's protocol name is not "MQTT".
    #[error("invalid protocol name in CONNECT")]
    InvalidProtocolName,
    /// CONNECT's protocol level is neither 4 (3.1.1) nor 5 (5.0).
    #[error("unsupported protocol level {0}")]
    UnsupportedProtocolVersion(u8),
    /// CONNECT's reserved flag is set ([MQTT-3.1.2-3]), or its will QoS /
    /// will retain bits are set without the will flag ([MQTT-3.1.2-11],
    /// [MQTT-3.1.2-13]).
    #[error("invalid CONNECT flags 0x{0:02X}")]
    InvalidConnectFlags(u8),
    /// MQTT 3.1.1 CONNECT with the password flag but not the user name flag
    /// ([MQTT-3.1.2-22]).
    #[error("password without user name in an MQTT 3.1.1 CONNECT")]
    PasswordWithoutUsername,
    /// CONNACK acknowledge flags other than bit 0 are set ([MQTT-3.2.2-1]).
    #[error("invalid CONNACK flags 0x{0:02X}")]
    InvalidConnAckFlags(u8),
    /// A reason code the packet may not carry.
    #[error(transparent)]
    InvalidReasonCode(#[from] InvalidReasonCode),
    /// Reserved bits of subscription options are set ([MQTT-3.8.3-5]).
    #[error("invalid subscription options 0x{0:02X}")]
    InvalidSubscriptionOptions(u8),
    /// A subscription's Maximum QoS is 3.
    #[error("invalid maximum QoS 3 in subscription options")]
    InvalidSubscriptionQoS,
    /// A subscription's Retain Handling is 3.
    #[error("invalid retain handling 3 in subscription options")]
    InvalidRetainHandling,
    /// No Local on a shared subscription ([MQTT-3.8.3-4]).
    #[error("No Local set on a shared subscription")]
    NoLocalOnSharedSubscription,
    /// A property identifier that MQTT 5.0 does not define.
    #[error("unknown property identifier 0x{0:02X}")]
    UnknownProperty(u8),
    /// A property that this packet may not carry.
    #[error("property {property:?} is not allowed in {packet}")]
    PropertyNotAllowed {
        /// The packet (or "will properties") being read.
        packet: PacketType,
        /// The property found.
        property: PropertyId,
    },
    /// A property that may appear once appeared twice.
    #[error("property {0:?} appears more than once")]
    DuplicateProperty(PropertyId),
    /// A property with a value the spec forbids (0 for Receive Maximum,
    /// Maximum Packet Size or Subscription Identifier; a byte other than 0
    /// or 1 for a flag; Maximum QoS other than 0 or 1; ...).
    #[error("invalid value for property {0:?}")]
    InvalidPropertyValue(PropertyId),
    /// A property block whose length runs past the packet.
    #[error("property length exceeds the packet")]
    PropertyLengthOverrun,
    /// A Topic Alias of 0 ([MQTT-3.3.2-8]).
    #[error("topic alias 0")]
    ZeroTopicAlias,
    /// An empty topic name in a PUBLISH that has no Topic Alias to stand in
    /// for it.
    #[error("empty topic name without a topic alias")]
    EmptyTopicWithoutAlias,
    /// Authentication Data without an Authentication Method.
    #[error("authentication data without an authentication method")]
    AuthDataWithoutMethod,
    /// An AUTH other than the bare Success without an Authentication Method
    /// (§3.15.2.2.2).
    #[error("AUTH without an authentication method")]
    MissingAuthenticationMethod,
}

impl From<DecodeError> for DisconnectReasonCode {
    /// The reason code to send in a 5.0 DISCONNECT after this error.
    ///
    /// The spec calls a packet that cannot be parsed a Malformed Packet
    /// (0x81) and one that parses but breaks a rule a Protocol Error (0x82);
    /// a few errors have a reason of their own.
    fn from(e: DecodeError) -> Self {
        use DecodeError::*;
        match e {
            PacketTooLarge { .. } => DisconnectReasonCode::PacketTooLarge,
            InvalidTopicName(_) | EmptyTopicWithoutAlias => DisconnectReasonCode::TopicNameInvalid,
            InvalidTopicFilter(_) => DisconnectReasonCode::TopicFilterInvalid,
            ZeroTopicAlias => DisconnectReasonCode::TopicAliasInvalid,
            // [MQTT-3.8.3-2], [MQTT-3.10.3-2]: "a SUBSCRIBE / UNSUBSCRIBE
            // packet with no Payload is a Protocol Error".
            EmptyPayload(PacketType::Subscribe | PacketType::Unsubscribe) => {
                DisconnectReasonCode::ProtocolError
            }
            DuplicateProperty(_)
            | InvalidPropertyValue(_)
            | InvalidSubscriptionQoS
            | InvalidRetainHandling
            | NoLocalOnSharedSubscription
            | AuthDataWithoutMethod
            | MissingAuthenticationMethod
            | UnsupportedProtocolVersion(_)
            | InvalidProtocolName => DisconnectReasonCode::ProtocolError,
            MalformedVariableInteger
            | InvalidPacketType(_)
            | InvalidHeaderFlags { .. }
            | InvalidQoS
            | DupOnQoS0
            | UnexpectedEnd
            | TrailingBytes
            | ZeroPacketId(_)
            | InvalidUtf8
            | NulInString
            | EmptyPayload(_)
            | InvalidConnectFlags(_)
            | PasswordWithoutUsername
            | InvalidConnAckFlags(_)
            | InvalidReasonCode(_)
            | InvalidSubscriptionOptions(_)
            | UnknownProperty(_)
            | PropertyNotAllowed { .. }
            | PropertyLengthOverrun => DisconnectReasonCode::MalformedPacket,
        }
    }
}

/// Why a packet cannot be written.
///
/// Encoding checks what the type system cannot: lengths that must fit the
/// wire's fields, identifiers that must be present, and values an older
/// protocol version cannot express. Nothing is written when it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The packet's remaining length would exceed 268,435,455 bytes.
    #[error("packet too large to encode: remaining length {0} exceeds 268435455")]
    PacketTooLarge(usize),
    /// A binary field (password, will payload, correlation or
    /// authentication data) is longer than 65,535 bytes.
    #[error("binary field longer than 65535 bytes")]
    BinaryTooLong,
    /// A QoS 1 or 2 PUBLISH without a packet identifier.
    #[error("QoS 1 and 2 PUBLISH packets need a packet identifier")]
    MissingPacketId,
    /// A QoS 0 PUBLISH with a packet identifier ([MQTT-2.2.1-2]).
    #[error("QoS 0 PUBLISH packets must not have a packet identifier")]
    UnexpectedPacketId,
    /// The DUP flag on a QoS 0 PUBLISH ([MQTT-3.3.1-2]).
    #[error("DUP flag set on a QoS 0 PUBLISH")]
    DupOnQoS0,
    /// A topic name that is not valid.
    #[error("invalid topic name: {0}")]
    InvalidTopicName(TopicError),
    /// A topic filter that is not valid.
    #[error("invalid topic filter: {0}")]
    InvalidTopicFilter(TopicError),
    /// A SUBSCRIBE, UNSUBSCRIBE or SUBACK with nothing in its payload.
    #[error("{0} needs at least one entry")]
    EmptyPayload(PacketType),
    /// Something the chosen protocol version cannot express (AUTH, or a
    /// CONNACK reason code 3.1.1 has no return code for, or a password
    /// without a user name in 3.1.1).
    #[error("{what} cannot be expressed in MQTT {version}")]
    NotInVersion {
        /// What could not be expressed.
        what: &'static str,
        /// The version it was being encoded for.
        version: ProtocolVersion,
    },
    /// A Subscription Identifier outside 1 to 268,435,455.
    #[error("subscription identifier out of range")]
    SubscriptionIdOutOfRange,
    /// A property value the receiver would have to reject: 0 for Receive
    /// Maximum, Maximum Packet Size or Topic Alias; Maximum QoS 2.
    #[error("invalid value for property {0:?}")]
    InvalidPropertyValue(PropertyId),
    /// Authentication Data without an Authentication Method.
    #[error("authentication data without an authentication method")]
    AuthDataWithoutMethod,
    /// No Local on a shared subscription ([MQTT-3.8.3-4]).
    #[error("No Local cannot be set on a shared subscription")]
    NoLocalOnSharedSubscription,
    /// An AUTH that needs an Authentication Method has none.
    #[error("AUTH without an authentication method")]
    MissingAuthenticationMethod,
    /// A refusing CONNACK with Session Present set ([MQTT-3.2.2-6]).
    #[error("a refusing CONNACK cannot have Session Present set")]
    SessionPresentOnRefusal,
}

/// `Err(error)`, made out of line, for the encoders' refusals.
///
/// `Packet::encode` puts a PUBLISH's path into its caller; with its errors
/// made there, the compiler worked out parts of them (the bytes of the
/// remaining length, for `PacketTooLarge`) before it knew whether there
/// was an error, on every packet: ten instructions of a 64-byte PUBLISH's
/// 185. Made here, an error costs its path a call and the others nothing.
/// Used where that measured better (callgrind, `benches/codec_counts.rs`);
/// in the property checks and SUBSCRIBE it changed what got inlined and
/// made the PUBLISH path longer instead.
#[cold]
#[inline(never)]
pub(crate) fn refuse<T>(error: EncodeError) -> Result<T, EncodeError> {
    Err(error)
}
