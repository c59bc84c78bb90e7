//! PUBLISH (§3.3) and the packets that acknowledge it: PUBACK, PUBREC,
//! PUBREL and PUBCOMP (§3.4 to §3.7).

use std::num::NonZeroU16;

use bytes::{BufMut, Bytes, BytesMut};

use super::error::{DecodeError, EncodeError};
use super::primitives::{MqttString, Reader};
use super::properties::{AckProperties, PublishProperties};
use super::reason::{InvalidReasonCode, PubAckReasonCode, PubRelReasonCode};
use super::{PacketType, ProtocolVersion, QoS, props_block_len, read_packet_id, write_props_block};
use crate::topic::{TopicError, validate_topic_name};

/// An application message (§3.3), in either direction.
///
/// ```
/// use plover::codec::{Publish, QoS};
/// use std::num::NonZeroU16;
///
/// let msg = Publish::new("sensors/door".try_into().unwrap(), &b"open"[..])
///     .with_qos(QoS::AtLeastOnce, NonZeroU16::new(1))
///     .with_retain(true);
/// assert_eq!(msg.payload, "open");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// Set when this is a redelivery of a QoS 1/2 message ([MQTT-3.3.1-1]).
    pub dup: bool,
    /// The QoS it is delivered with.
    pub qos: QoS,
    /// Whether the broker keeps it as the topic's retained message (or, from
    /// the broker, whether it is one).
    pub retain: bool,
    /// The topic name. May be empty in 5.0 when a Topic Alias stands in for it.
    pub topic: MqttString,
    /// Present exactly when `qos` is 1 or 2.
    pub packet_id: Option<NonZeroU16>,
    /// 5.0 properties; empty (and not sent) in 3.1.1.
    pub properties: PublishProperties,
    /// The application message, a slice of the input when decoded.
    pub payload: Bytes,
}

impl Publish {
    /// A QoS 0, not retained message.
    pub fn new(topic: MqttString, payload: impl Into<Bytes>) -> Self {
        Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic,
            packet_id: None,
            properties: PublishProperties::default(),
            payload: payload.into(),
        }
    }

    /// Sets the QoS and packet identifier (`None` for QoS 0).
    pub fn with_qos(mut self, qos: QoS, packet_id: Option<NonZeroU16>) -> Self {
        self.qos = qos;
        self.packet_id = packet_id;
        self
    }

    /// Sets the retain flag.
    pub fn with_retain(mut self, retain: bool) -> Self {
        self.retain = retain;
        self
    }

    /// Sets the 5.0 properties.
    pub fn with_properties(mut self, properties: PublishProperties) -> Self {
        self.properties = properties;
        self
    }

    pub(super) fn flags(&self) -> u8 {
        (u8::from(self.dup) << 3) | ((self.qos as u8) << 1) | u8::from(self.retain)
    }

    pub(super) fn read(
        flags: u8,
        r: &mut Reader,
        version: ProtocolVersion,
    ) -> Result<Self, DecodeError> {
        let dup = flags & 0b1000 != 0;
        // [MQTT-3.3.1-4] A PUBLISH MUST NOT have both QoS bits set to 1.
        let qos = QoS::from_u8((flags >> 1) & 0b11).ok_or(DecodeError::InvalidQoS)?;
        let retain = flags & 0b0001 != 0;
        // [MQTT-3.3.1-2] The DUP flag MUST be set to 0 for all QoS 0 messages.
        if dup && qos == QoS::AtMostOnce {
            return Err(DecodeError::DupOnQoS0);
        }
        let topic = r.string()?;
        let packet_id = match qos {
            QoS::AtMostOnce => None,
            _ => Some(read_packet_id(r, PacketType::Publish)?),
        };
        let properties = match version {
            ProtocolVersion::V5 => PublishProperties::read(r, PacketType::Publish)?,
            ProtocolVersion::V311 => PublishProperties::default(),
        };
        if topic.is_empty() {
            // 5.0 §3.3.2.3.4: an empty topic name with a Topic Alias means
            // "the topic this alias was set to"; without one it is an error.
            // 3.1.1 has no aliases: [MQTT-4.7.3-1] topics are at least one character.
            match version {
                ProtocolVersion::V5 if properties.topic_alias.is_some() => {}
                ProtocolVersion::V5 => return Err(DecodeError::EmptyTopicWithoutAlias),
                ProtocolVersion::V311 => {
                    return Err(DecodeError::InvalidTopicName(TopicError::Empty));
                }
            }
        } else {
            // [MQTT-3.3.2-2] The Topic Name MUST NOT contain wildcard characters.
            validate_topic_name(&topic).map_err(DecodeError::InvalidTopicName)?;
        }
        if let Some(response_topic) = &properties.response_topic {
            // [MQTT-3.3.2-14] The Response Topic MUST be a UTF-8 Encoded
            // String, and is a Topic Name, so no wildcards.
            validate_topic_name(response_topic)
                .map_err(|_| DecodeError::InvalidPropertyValue(super::PropertyId::ResponseTopic))?;
        }
        let payload = r.take_rest();
        Ok(Publish {
            dup,
            qos,
            retain,
            topic,
            packet_id,
            properties,
            payload,
        })
    }

    fn check(&self, version: ProtocolVersion) -> Result<(), EncodeError> {
        match (self.qos, self.packet_id) {
            (QoS::AtMostOnce, Some(_)) => return Err(EncodeError::UnexpectedPacketId),
            (QoS::AtLeastOnce | QoS::ExactlyOnce, None) => {
                return Err(EncodeError::MissingPacketId);
            }
            _ => {}
        }
        let alias = version == ProtocolVersion::V5 && self.properties.topic_alias.is_some();
        if !(self.topic.is_empty() && alias) {
            validate_topic_name(&self.topic).map_err(EncodeError::InvalidTopicName)?;
        }
        if version == ProtocolVersion::V5 {
            self.properties.check()?;
        }
        Ok(())
    }

    pub(super) fn body_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        self.check(version)?;
        let id_len = if self.packet_id.is_some() { 2 } else { 0 };
        let props = props_len(version, &self.properties);
        Ok(self.topic.wire_len() + id_len + props_block_len(version, props) + self.payload.len())
    }

    pub(super) fn write_body(&self, version: ProtocolVersion, buf: &mut BytesMut) {
        self.topic.write(buf);
        if let Some(id) = self.packet_id {
            buf.put_u16(id.get());
        }
        if version == ProtocolVersion::V5 {
            let len = self.properties.wire_len();
            write_props_block(buf, len, |b| self.properties.write(b));
        }
        buf.put_slice(&self.payload);
    }
}

fn props_len(version: ProtocolVersion, props: &PublishProperties) -> usize {
    match version {
        ProtocolVersion::V5 => props.wire_len(),
        ProtocolVersion::V311 => 0,
    }
}

/// The shape PUBACK, PUBREC, PUBREL and PUBCOMP share: a packet identifier
/// and, in 5.0, a reason code and properties.
///
/// Use it through its aliases [`PubAck`], [`PubRec`], [`PubRel`] and
/// [`PubComp`]. In 3.1.1 the reason code and properties are not on the wire:
/// they decode as Success and empty, and are not written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishResponse<R> {
    /// The packet identifier of the PUBLISH this answers.
    pub packet_id: NonZeroU16,
    /// The outcome.
    pub reason_code: R,
    /// 5.0 properties (reason string, user properties).
    pub properties: AckProperties,
}

/// Acknowledges a QoS 1 PUBLISH (§3.4).
pub type PubAck = PublishResponse<PubAckReasonCode>;
/// First answer to a QoS 2 PUBLISH (§3.5).
pub type PubRec = PublishResponse<PubAckReasonCode>;
/// Releases a QoS 2 PUBLISH after PUBREC (§3.6).
pub type PubRel = PublishResponse<PubRelReasonCode>;
/// Completes a QoS 2 exchange (§3.7).
pub type PubComp = PublishResponse<PubRelReasonCode>;

impl PublishResponse<PubAckReasonCode> {
    /// A successful PUBACK or PUBREC for `packet_id`.
    pub fn new(packet_id: NonZeroU16) -> Self {
        PublishResponse {
            packet_id,
            reason_code: PubAckReasonCode::Success,
            properties: AckProperties::default(),
        }
    }
}

impl PublishResponse<PubRelReasonCode> {
    /// A successful PUBREL or PUBCOMP for `packet_id`.
    pub fn new(packet_id: NonZeroU16) -> Self {
        PublishResponse {
            packet_id,
            reason_code: PubRelReasonCode::Success,
            properties: AckProperties::default(),
        }
    }
}

impl<R> PublishResponse<R>
where
    R: Copy + PartialEq + Into<u8> + TryFrom<u8, Error = InvalidReasonCode>,
{
    fn is_success(&self) -> bool {
        self.reason_code.into() == 0
    }

    pub(super) fn read(
        r: &mut Reader,
        version: ProtocolVersion,
        packet: PacketType,
    ) -> Result<Self, DecodeError> {
        let packet_id = read_packet_id(r, packet)?;
        let mut reason = 0u8;
        let mut properties = AckProperties::default();
        if version == ProtocolVersion::V5 {
            // §3.4.2.1: "The Reason Code and Property Length can be omitted
            // if the Reason Code is 0x00 (Success) and there are no
            // Properties"; §3.4.2.2: "If the Remaining Length is less than
            // 4 there is no Property Length and the value of 0 is used."
            if !r.is_empty() {
                reason = r.u8()?;
            }
            if !r.is_empty() {
                properties = AckProperties::read(r, packet)?;
            }
        }
        Ok(PublishResponse {
            packet_id,
            reason_code: R::try_from(reason)?,
            properties,
        })
    }

    pub(super) fn body_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        if version == ProtocolVersion::V311 {
            return Ok(2);
        }
        self.properties.check()?;
        Ok(match (self.is_success(), self.properties.is_empty()) {
            (true, true) => 2,
            (false, true) => 3,
            (_, false) => 3 + props_block_len(version, self.properties.wire_len()),
        })
    }

    pub(super) fn write_body(&self, version: ProtocolVersion, buf: &mut BytesMut) {
        buf.put_u16(self.packet_id.get());
        if version == ProtocolVersion::V311 || (self.is_success() && self.properties.is_empty()) {
            return;
        }
        buf.put_u8(self.reason_code.into());
        if !self.properties.is_empty() {
            let len = self.properties.wire_len();
            write_props_block(buf, len, |b| self.properties.write(b));
        }
    }
}
