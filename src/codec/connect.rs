//! CONNECT (§3.1), with its will message, and CONNACK (§3.2).

use bytes::{BufMut, Bytes, BytesMut};

use super::error::{DecodeError, EncodeError};
use super::primitives::{MAX_FIELD_LEN, MqttString, Reader, binary_len, write_binary};
use super::properties::{ConnAckProperties, ConnectProperties, WillProperties};
use super::reason::{ConnectReasonCode, InvalidReasonCode};
use super::{PacketType, ProtocolVersion, QoS, props_block_len, write_props_block};
use crate::topic::validate_topic_name;

/// The first packet a client sends (§3.1).
///
/// Unlike every other packet, CONNECT says which protocol version it is
/// written in (`protocol`), so it is read and written in that version
/// whatever version the codec is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// The protocol version this connection will speak.
    pub protocol: ProtocolVersion,
    /// 3.1.1 "Clean Session" / 5.0 "Clean Start": discard any existing session.
    pub clean_start: bool,
    /// Seconds of silence after which the broker may drop us (0: never).
    pub keep_alive: u16,
    /// The client identifier; empty asks the broker to assign one.
    pub client_id: MqttString,
    /// The will message, published if we vanish without DISCONNECT.
    pub will: Option<LastWill>,
    /// User name for authentication.
    pub username: Option<MqttString>,
    /// Password (binary data) for authentication.
    pub password: Option<Bytes>,
    /// 5.0 properties; ignored for 3.1.1.
    pub properties: ConnectProperties,
}

/// A will message: what the broker publishes on our behalf if the
/// connection ends without a DISCONNECT (§3.1.2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastWill {
    /// Topic to publish the will to.
    pub topic: MqttString,
    /// The will payload.
    pub payload: Bytes,
    /// QoS of the will message.
    pub qos: QoS,
    /// Whether the will is retained.
    pub retain: bool,
    /// 5.0 will properties (delay, expiry, content type, ...).
    pub properties: WillProperties,
}

impl LastWill {
    /// A will with no 5.0 properties.
    pub fn new(topic: MqttString, payload: impl Into<Bytes>, qos: QoS, retain: bool) -> Self {
        LastWill {
            topic,
            payload: payload.into(),
            qos,
            retain,
            properties: WillProperties::default(),
        }
    }
}

impl Connect {
    /// A CONNECT for `client_id` with clean start, a 60 s keepalive and
    /// nothing else.
    pub fn new(protocol: ProtocolVersion, client_id: MqttString) -> Self {
        Connect {
            protocol,
            clean_start: true,
            keep_alive: 60,
            client_id,
            will: None,
            username: None,
            password: None,
            properties: ConnectProperties::default(),
        }
    }

    pub(super) fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        let name = r.string()?;
        let level = r.u8()?;
        let protocol = match (name.as_str(), ProtocolVersion::from_level(level)) {
            ("MQTT", Some(v)) => v,
            // MQTT 3.1 ("MQIsdp", level 3) and unknown levels are answered
            // with CONNACK 0x01 / 0x84 by a server; we name the level.
            ("MQTT" | "MQIsdp", _) => return Err(DecodeError::UnsupportedProtocolVersion(level)),
            _ => return Err(DecodeError::InvalidProtocolName),
        };
        let v5 = protocol == ProtocolVersion::V5;
        let flags = r.u8()?;
        // [MQTT-3.1.2-3] The reserved flag MUST be 0.
        if flags & 0x01 != 0 {
            return Err(DecodeError::InvalidConnectFlags(flags));
        }
        let clean_start = flags & 0x02 != 0;
        let has_will = flags & 0x04 != 0;
        let will_qos_bits = (flags >> 3) & 0b11;
        let will_retain = flags & 0x20 != 0;
        let has_password = flags & 0x40 != 0;
        let has_username = flags & 0x80 != 0;
        // [MQTT-3.1.2-11], [MQTT-3.1.2-13]: without a will, Will QoS and
        // Will Retain MUST be 0.
        if !has_will && (will_qos_bits != 0 || will_retain) {
            return Err(DecodeError::InvalidConnectFlags(flags));
        }
        // [MQTT-3.1.2-12] Will QoS 3 is not valid.
        let will_qos = QoS::from_u8(will_qos_bits).ok_or(DecodeError::InvalidQoS)?;
        // [MQTT-3.1.2-22] (3.1.1 only; 5.0 allows a password alone).
        if !v5 && has_password && !has_username {
            return Err(DecodeError::PasswordWithoutUsername);
        }
        let keep_alive = r.u16()?;
        let properties = if v5 {
            ConnectProperties::read(r, PacketType::Connect)?
        } else {
            ConnectProperties::default()
        };
        if properties.authentication_data.is_some() && properties.authentication_method.is_none() {
            return Err(DecodeError::AuthDataWithoutMethod);
        }
        let client_id = r.string()?;
        let will = if has_will {
            let properties = if v5 {
                WillProperties::read(r, PacketType::Connect)?
            } else {
                WillProperties::default()
            };
            let topic = r.string()?;
            // [MQTT-3.1.3-11] The Will Topic is a topic name.
            validate_topic_name(&topic).map_err(DecodeError::InvalidTopicName)?;
            let payload = r.binary()?;
            Some(LastWill {
                topic,
                payload,
                qos: will_qos,
                retain: will_retain,
                properties,
            })
        } else {
            None
        };
        let username = if has_username {
            Some(r.string()?)
        } else {
            None
        };
        let password = if has_password {
            Some(r.binary()?)
        } else {
            None
        };
        Ok(Connect {
            protocol,
            clean_start,
            keep_alive,
            client_id,
            will,
            username,
            password,
            properties,
        })
    }

    fn flags(&self) -> u8 {
        let mut flags = 0u8;
        if self.clean_start {
            flags |= 0x02;
        }
        if let Some(will) = &self.will {
            flags |= 0x04 | ((will.qos as u8) << 3);
            if will.retain {
                flags |= 0x20;
            }
        }
        if self.password.is_some() {
            flags |= 0x40;
        }
        if self.username.is_some() {
            flags |= 0x80;
        }
        flags
    }

    pub(super) fn body_len(&self) -> Result<usize, EncodeError> {
        let version = self.protocol;
        let v5 = version == ProtocolVersion::V5;
        if !v5 && self.password.is_some() && self.username.is_none() {
            return Err(EncodeError::NotInVersion {
                what: "a password without a user name",
                version,
            });
        }
        if self
            .password
            .as_ref()
            .is_some_and(|p| p.len() > MAX_FIELD_LEN)
        {
            return Err(EncodeError::BinaryTooLong);
        }
        // Protocol name "MQTT" (2 + 4), level, flags, keepalive.
        let mut len = 6 + 1 + 1 + 2;
        if v5 {
            self.properties.check()?;
            len += props_block_len(version, self.properties.wire_len());
        }
        len += self.client_id.wire_len();
        if let Some(will) = &self.will {
            validate_topic_name(&will.topic).map_err(EncodeError::InvalidTopicName)?;
            if will.payload.len() > MAX_FIELD_LEN {
                return Err(EncodeError::BinaryTooLong);
            }
            if v5 {
                will.properties.check()?;
                len += props_block_len(version, will.properties.wire_len());
            }
            len += will.topic.wire_len() + binary_len(&will.payload);
        }
        len += self.username.as_ref().map_or(0, |u| u.wire_len());
        len += self.password.as_ref().map_or(0, |p| binary_len(p));
        Ok(len)
    }

    pub(super) fn write_body(&self, buf: &mut BytesMut) {
        let v5 = self.protocol == ProtocolVersion::V5;
        write_binary(buf, b"MQTT");
        buf.put_u8(self.protocol.level());
        buf.put_u8(self.flags());
        buf.put_u16(self.keep_alive);
        if v5 {
            let len = self.properties.wire_len();
            write_props_block(buf, len, |b| self.properties.write(b));
        }
        self.client_id.write(buf);
        if let Some(will) = &self.will {
            if v5 {
                let len = will.properties.wire_len();
                write_props_block(buf, len, |b| will.properties.write(b));
            }
            will.topic.write(buf);
            write_binary(buf, &will.payload);
        }
        if let Some(username) = &self.username {
            username.write(buf);
        }
        if let Some(password) = &self.password {
            write_binary(buf, password);
        }
    }
}

/// The broker's answer to CONNECT (§3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnAck {
    /// Whether the broker resumed a session it had for this client id.
    pub session_present: bool,
    /// Accepted (Success) or why not. 3.1.1 return codes decode to their
    /// 5.0 equivalents.
    pub reason_code: ConnectReasonCode,
    /// 5.0 properties: the broker's limits and assignments.
    pub properties: ConnAckProperties,
}

impl ConnAck {
    /// A CONNACK with no properties.
    pub fn new(session_present: bool, reason_code: ConnectReasonCode) -> Self {
        ConnAck {
            session_present,
            reason_code,
            properties: ConnAckProperties::default(),
        }
    }

    pub(super) fn read(r: &mut Reader, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let flags = r.u8()?;
        // [MQTT-3.2.2-1] Bits 7-1 are reserved and MUST be 0.
        if flags & 0xFE != 0 {
            return Err(DecodeError::InvalidConnAckFlags(flags));
        }
        let session_present = flags & 0x01 != 0;
        let code = r.u8()?;
        let reason_code = match version {
            ProtocolVersion::V311 => {
                ConnectReasonCode::from_v311(code).ok_or(InvalidReasonCode {
                    packet: "CONNACK",
                    code,
                })?
            }
            ProtocolVersion::V5 => ConnectReasonCode::try_from(code)?,
        };
        // 3.1.1 [MQTT-3.2.2-4], 5.0 [MQTT-3.2.2-6]: a refusal MUST have
        // Session Present 0.
        if session_present && reason_code != ConnectReasonCode::Success {
            return Err(DecodeError::InvalidConnAckFlags(flags));
        }
        let properties = match version {
            ProtocolVersion::V5 => ConnAckProperties::read(r, PacketType::ConnAck)?,
            ProtocolVersion::V311 => ConnAckProperties::default(),
        };
        if properties.authentication_data.is_some() && properties.authentication_method.is_none() {
            return Err(DecodeError::AuthDataWithoutMethod);
        }
        Ok(ConnAck {
            session_present,
            reason_code,
            properties,
        })
    }

    pub(super) fn body_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        match version {
            ProtocolVersion::V311 => {
                if self.reason_code.to_v311().is_none() {
                    return Err(EncodeError::NotInVersion {
                        what: "this CONNACK reason code",
                        version,
                    });
                }
                Ok(2)
            }
            ProtocolVersion::V5 => {
                self.properties.check()?;
                Ok(2 + props_block_len(version, self.properties.wire_len()))
            }
        }
    }

    pub(super) fn write_body(&self, version: ProtocolVersion, buf: &mut BytesMut) {
        buf.put_u8(u8::from(self.session_present));
        match version {
            ProtocolVersion::V311 => buf.put_u8(self.reason_code.to_v311().unwrap_or(0x80)),
            ProtocolVersion::V5 => {
                buf.put_u8(self.reason_code.as_u8());
                let len = self.properties.wire_len();
                write_props_block(buf, len, |b| self.properties.write(b));
            }
        }
    }
}
