//! SUBSCRIBE, SUBACK, UNSUBSCRIBE and UNSUBACK (§3.8 to §3.11).

use std::num::NonZeroU16;

use bytes::{BufMut, BytesMut};

use super::error::{DecodeError, EncodeError};
use super::primitives::{MqttString, Reader};
use super::properties::{AckProperties, SubscribeProperties, UnsubscribeProperties};
use super::reason::{InvalidReasonCode, SubAckReasonCode, UnsubAckReasonCode};
use super::{PacketType, ProtocolVersion, QoS, props_block_len, read_packet_id, write_props_block};
use crate::topic::{SharedFilter, validate_topic_filter};

/// When the broker sends retained messages for a new subscription (5.0
/// §3.8.3.1, bits 4 and 5 of the subscription options).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RetainHandling {
    /// 0: send retained messages at the time of the subscribe.
    #[default]
    SendAtSubscribe = 0,
    /// 1: send them only if the subscription did not exist already.
    SendAtSubscribeIfNew = 1,
    /// 2: do not send retained messages.
    DoNotSend = 2,
}

/// How one topic filter is subscribed (§3.8.3.1).
///
/// In 3.1.1 only `qos` exists; the other options are not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SubscriptionOptions {
    /// The highest QoS the broker may deliver with.
    pub qos: QoS,
    /// 5.0: do not send us messages we published ourselves.
    pub no_local: bool,
    /// 5.0: keep the retain flag as the publisher set it.
    pub retain_as_published: bool,
    /// 5.0: when to send retained messages.
    pub retain_handling: RetainHandling,
}

impl SubscriptionOptions {
    /// Options with this maximum QoS and every 5.0 option at its default.
    pub fn new(qos: QoS) -> Self {
        SubscriptionOptions {
            qos,
            ..Default::default()
        }
    }

    fn read(byte: u8, version: ProtocolVersion) -> Result<Self, DecodeError> {
        // 3.1.1 [MQTT-3.8.3-4] / 5.0 [MQTT-3.8.3-5]: reserved bits MUST be 0.
        let reserved = match version {
            ProtocolVersion::V311 => 0b1111_1100,
            ProtocolVersion::V5 => 0b1100_0000,
        };
        if byte & reserved != 0 {
            return Err(DecodeError::InvalidSubscriptionOptions(byte));
        }
        let qos = QoS::from_u8(byte & 0b11).ok_or(DecodeError::InvalidQoS)?;
        let retain_handling = match (byte >> 4) & 0b11 {
            0 => RetainHandling::SendAtSubscribe,
            1 => RetainHandling::SendAtSubscribeIfNew,
            2 => RetainHandling::DoNotSend,
            // "It is a Protocol Error to send a Retain Handling value of 3."
            _ => return Err(DecodeError::InvalidSubscriptionOptions(byte)),
        };
        Ok(SubscriptionOptions {
            qos,
            no_local: byte & 0b0100 != 0,
            retain_as_published: byte & 0b1000 != 0,
            retain_handling,
        })
    }

    fn to_byte(self, version: ProtocolVersion) -> u8 {
        let qos = self.qos as u8;
        match version {
            ProtocolVersion::V311 => qos,
            ProtocolVersion::V5 => {
                qos | (u8::from(self.no_local) << 2)
                    | (u8::from(self.retain_as_published) << 3)
                    | ((self.retain_handling as u8) << 4)
            }
        }
    }
}

/// A request to subscribe to one or more topic filters (§3.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// Identifier the SUBACK will answer with.
    pub packet_id: NonZeroU16,
    /// The filters and how each is subscribed; at least one.
    pub filters: Vec<(MqttString, SubscriptionOptions)>,
    /// 5.0 properties (subscription identifier, user properties).
    pub properties: SubscribeProperties,
}

impl Subscribe {
    /// A SUBSCRIBE for one filter.
    pub fn new(packet_id: NonZeroU16, filter: MqttString, options: SubscriptionOptions) -> Self {
        Subscribe {
            packet_id,
            filters: vec![(filter, options)],
            properties: SubscribeProperties::default(),
        }
    }

    pub(super) fn read(r: &mut Reader, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let packet_id = read_packet_id(r, PacketType::Subscribe)?;
        let properties = match version {
            ProtocolVersion::V5 => SubscribeProperties::read(r, PacketType::Subscribe)?,
            ProtocolVersion::V311 => SubscribeProperties::default(),
        };
        let mut filters = Vec::new();
        while !r.is_empty() {
            let filter = r.string()?;
            let options = SubscriptionOptions::read(r.u8()?, version)?;
            // Validation includes the `$share/{group}/` form, so what it
            // accepts with that prefix is a shared subscription.
            validate_topic_filter(&filter).map_err(DecodeError::InvalidTopicFilter)?;
            // [MQTT-3.8.3-4] No Local on a shared subscription is a Protocol Error.
            if options.no_local && SharedFilter::parse(&filter).is_ok_and(|s| s.is_some()) {
                return Err(DecodeError::NoLocalOnSharedSubscription);
            }
            filters.push((filter, options));
        }
        // 3.1.1 [MQTT-3.8.3-3] / 5.0 [MQTT-3.8.3-2]: at least one filter.
        if filters.is_empty() {
            return Err(DecodeError::EmptyPayload(PacketType::Subscribe));
        }
        Ok(Subscribe {
            packet_id,
            filters,
            properties,
        })
    }

    pub(super) fn body_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        if self.filters.is_empty() {
            return Err(EncodeError::EmptyPayload(PacketType::Subscribe));
        }
        let mut len = 2;
        if version == ProtocolVersion::V5 {
            self.properties.check()?;
            len += props_block_len(version, self.properties.wire_len());
        }
        for (filter, _) in &self.filters {
            validate_topic_filter(filter).map_err(EncodeError::InvalidTopicFilter)?;
            len += filter.wire_len() + 1;
        }
        Ok(len)
    }

    pub(super) fn write_body(&self, version: ProtocolVersion, buf: &mut BytesMut) {
        buf.put_u16(self.packet_id.get());
        if version == ProtocolVersion::V5 {
            let len = self.properties.wire_len();
            write_props_block(buf, len, |b| self.properties.write(b));
        }
        for (filter, options) in &self.filters {
            filter.write(buf);
            buf.put_u8(options.to_byte(version));
        }
    }
}

/// The broker's answer to SUBSCRIBE: one reason code per filter, in order (§3.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    /// The SUBSCRIBE's packet identifier.
    pub packet_id: NonZeroU16,
    /// Granted QoS or failure, one per filter of the SUBSCRIBE.
    ///
    /// 3.1.1 knows only the grants and 0x80 Failure: every failure is
    /// written as 0x80 ([`SubAckReasonCode::UnspecifiedError`]) there.
    pub reason_codes: Vec<SubAckReasonCode>,
    /// 5.0 properties (reason string, user properties).
    pub properties: AckProperties,
}

impl SubAck {
    pub(super) fn read(r: &mut Reader, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let packet_id = read_packet_id(r, PacketType::SubAck)?;
        let properties = match version {
            ProtocolVersion::V5 => AckProperties::read(r, PacketType::SubAck)?,
            ProtocolVersion::V311 => AckProperties::default(),
        };
        let mut reason_codes = Vec::with_capacity(r.remaining());
        while !r.is_empty() {
            let code = r.u8()?;
            // 3.1.1 §3.9.3: "SUBACK return codes other than 0x00, 0x01,
            // 0x02 and 0x80 are reserved and MUST NOT be used" [MQTT-3.9.3-2].
            if version == ProtocolVersion::V311 && !matches!(code, 0x00..=0x02 | 0x80) {
                return Err(InvalidReasonCode {
                    packet: "SUBACK",
                    code,
                }
                .into());
            }
            reason_codes.push(SubAckReasonCode::try_from(code)?);
        }
        if reason_codes.is_empty() {
            return Err(DecodeError::EmptyPayload(PacketType::SubAck));
        }
        Ok(SubAck {
            packet_id,
            reason_codes,
            properties,
        })
    }

    pub(super) fn body_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        if self.reason_codes.is_empty() {
            return Err(EncodeError::EmptyPayload(PacketType::SubAck));
        }
        let mut len = 2 + self.reason_codes.len();
        if version == ProtocolVersion::V5 {
            self.properties.check()?;
            len += props_block_len(version, self.properties.wire_len());
        }
        Ok(len)
    }

    pub(super) fn write_body(&self, version: ProtocolVersion, buf: &mut BytesMut) {
        buf.put_u16(self.packet_id.get());
        if version == ProtocolVersion::V5 {
            let len = self.properties.wire_len();
            write_props_block(buf, len, |b| self.properties.write(b));
        }
        for code in &self.reason_codes {
            let byte = match version {
                ProtocolVersion::V311 if code.is_error() => 0x80,
                _ => code.as_u8(),
            };
            buf.put_u8(byte);
        }
    }
}

/// A request to remove one or more subscriptions (§3.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    /// Identifier the UNSUBACK will answer with.
    pub packet_id: NonZeroU16,
    /// The filters to remove, exactly as they were subscribed; at least one.
    pub filters: Vec<MqttString>,
    /// 5.0 user properties.
    pub properties: UnsubscribeProperties,
}

impl Unsubscribe {
    pub(super) fn read(r: &mut Reader, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let packet_id = read_packet_id(r, PacketType::Unsubscribe)?;
        let properties = match version {
            ProtocolVersion::V5 => UnsubscribeProperties::read(r, PacketType::Unsubscribe)?,
            ProtocolVersion::V311 => UnsubscribeProperties::default(),
        };
        let mut filters = Vec::new();
        while !r.is_empty() {
            let filter = r.string()?;
            validate_topic_filter(&filter).map_err(DecodeError::InvalidTopicFilter)?;
            filters.push(filter);
        }
        // [MQTT-3.10.3-2] The payload MUST contain at least one Topic Filter.
        if filters.is_empty() {
            return Err(DecodeError::EmptyPayload(PacketType::Unsubscribe));
        }
        Ok(Unsubscribe {
            packet_id,
            filters,
            properties,
        })
    }

    pub(super) fn body_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        if self.filters.is_empty() {
            return Err(EncodeError::EmptyPayload(PacketType::Unsubscribe));
        }
        let mut len = 2;
        if version == ProtocolVersion::V5 {
            self.properties.check()?;
            len += props_block_len(version, self.properties.wire_len());
        }
        for filter in &self.filters {
            validate_topic_filter(filter).map_err(EncodeError::InvalidTopicFilter)?;
            len += filter.wire_len();
        }
        Ok(len)
    }

    pub(super) fn write_body(&self, version: ProtocolVersion, buf: &mut BytesMut) {
        buf.put_u16(self.packet_id.get());
        if version == ProtocolVersion::V5 {
            let len = self.properties.wire_len();
            write_props_block(buf, len, |b| self.properties.write(b));
        }
        for filter in &self.filters {
            filter.write(buf);
        }
    }
}

/// The broker's answer to UNSUBSCRIBE (§3.11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubAck {
    /// The UNSUBSCRIBE's packet identifier.
    pub packet_id: NonZeroU16,
    /// 5.0: one result per filter, in order. 3.1.1 has none (empty).
    pub reason_codes: Vec<UnsubAckReasonCode>,
    /// 5.0 properties (reason string, user properties).
    pub properties: AckProperties,
}

impl UnsubAck {
    pub(super) fn read(r: &mut Reader, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let packet_id = read_packet_id(r, PacketType::UnsubAck)?;
        if version == ProtocolVersion::V311 {
            return Ok(UnsubAck {
                packet_id,
                reason_codes: Vec::new(),
                properties: AckProperties::default(),
            });
        }
        let properties = AckProperties::read(r, PacketType::UnsubAck)?;
        let mut reason_codes = Vec::with_capacity(r.remaining());
        while !r.is_empty() {
            reason_codes.push(UnsubAckReasonCode::try_from(r.u8()?)?);
        }
        if reason_codes.is_empty() {
            return Err(DecodeError::EmptyPayload(PacketType::UnsubAck));
        }
        Ok(UnsubAck {
            packet_id,
            reason_codes,
            properties,
        })
    }

    pub(super) fn body_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        if version == ProtocolVersion::V311 {
            return Ok(2);
        }
        if self.reason_codes.is_empty() {
            return Err(EncodeError::EmptyPayload(PacketType::UnsubAck));
        }
        self.properties.check()?;
        Ok(2 + props_block_len(version, self.properties.wire_len()) + self.reason_codes.len())
    }

    pub(super) fn write_body(&self, version: ProtocolVersion, buf: &mut BytesMut) {
        buf.put_u16(self.packet_id.get());
        if version == ProtocolVersion::V311 {
            return;
        }
        let len = self.properties.wire_len();
        write_props_block(buf, len, |b| self.properties.write(b));
        for code in &self.reason_codes {
            buf.put_u8(code.as_u8());
        }
    }
}
