//! CONNECT (§3.1), with its will message, and CONNACK (§3.2).

use bytes::{Bytes, BytesMut};

use super::error::{DecodeError, EncodeError, refuse};
use super::primitives::{
    MAX_FIELD_LEN, MqttString, Reader, Scratch, binary_len, check_wire_str, write_binary,
    write_small,
};
use super::properties::{ConnAckProperties, ConnectProperties, PropertyId, WillProperties};
use super::reason::{ConnectReasonCode, InvalidReasonCode};
use super::topics::TopicName;
use super::{PacketType, ProtocolVersion, QoS, Sizes, props_block_len, write_props_block};
use crate::topic::{TopicError, validate_topic_name};

/// The first packet a client sends (§3.1).
///
/// Unlike every other packet, CONNECT says which protocol version it is
/// written in (`protocol`), so it is read and written in that version
/// whatever version the codec is given.
///
/// Its `Debug` output shows whether a password is set, never the password.
#[derive(Clone, PartialEq, Eq)]
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
    pub topic: TopicName,
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
    pub fn new(topic: TopicName, payload: impl Into<Bytes>, qos: QoS, retain: bool) -> Self {
        LastWill {
            topic,
            payload: payload.into(),
            qos,
            retain,
            properties: WillProperties::default(),
        }
    }
}

impl std::fmt::Debug for Connect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connect")
            .field("protocol", &self.protocol)
            .field("clean_start", &self.clean_start)
            .field("keep_alive", &self.keep_alive)
            .field("client_id", &self.client_id)
            .field("will", &self.will)
            .field("username", &self.username)
            .field("password", &redacted(&self.password))
            .field("properties", &self.properties)
            .finish()
    }
}

/// What `Debug` shows for a secret: whether there is one.
pub(crate) fn redacted(secret: &Option<Bytes>) -> Option<&'static str> {
    secret.as_ref().map(|_| "<redacted>")
}

/// What comes before a CONNECT's properties (protocol name and level,
/// flags, keepalive), read and checked here for both decoders, the owned
/// one and `decode_slice`.
pub(super) struct ConnectHeader {
    pub(super) protocol: ProtocolVersion,
    pub(super) clean_start: bool,
    pub(super) has_will: bool,
    pub(super) will_qos: QoS,
    pub(super) will_retain: bool,
    pub(super) has_username: bool,
    pub(super) has_password: bool,
    pub(super) keep_alive: u16,
}

impl ConnectHeader {
    #[inline(always)]
    pub(super) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        // The protocol name is compared as bytes, not made into a string;
        // any other name is still checked as a string first, so that
        // malformed UTF-8 is reported as such.
        let name_len = usize::from(r.u16()?);
        let name = r.slice(name_len)?;
        // The name is compared once; each arm reads the level itself.
        let protocol = match name {
            b"MQTT" => {
                let level = r.u8()?;
                match ProtocolVersion::from_level(level) {
                    Some(v) => v,
                    // Unknown levels are answered with CONNACK 0x01 / 0x84
                    // by a server; we name the level.
                    None => return Err(DecodeError::UnsupportedProtocolVersion(level)),
                }
            }
            // MQTT 3.1 (level 3), likewise.
            b"MQIsdp" => return Err(DecodeError::UnsupportedProtocolVersion(r.u8()?)),
            _ => {
                check_wire_str(name)?;
                r.u8()?;
                return Err(DecodeError::InvalidProtocolName);
            }
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
        Ok(ConnectHeader {
            protocol,
            clean_start,
            has_will,
            will_qos,
            will_retain,
            has_username,
            has_password,
            keep_alive,
        })
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

    /// Reads a CONNECT, boxed where it is built (it is a few hundred
    /// bytes; `Packet::Connect` holds it boxed).
    pub(super) fn read(r: &mut Reader<'_>) -> Result<Box<Self>, DecodeError> {
        let ConnectHeader {
            protocol,
            clean_start,
            has_will,
            will_qos,
            will_retain,
            has_username,
            has_password,
            keep_alive,
        } = ConnectHeader::read(r)?;
        let v5 = protocol == ProtocolVersion::V5;
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
            // The will's Response Topic becomes the Response Topic of the
            // PUBLISH the will turns into: a Topic Name, so no wildcards, as
            // [MQTT-3.3.2-14] requires (checked the same way there).
            if let Some(response_topic) = &properties.response_topic {
                validate_topic_name(response_topic)
                    .map_err(|_| DecodeError::InvalidPropertyValue(PropertyId::ResponseTopic))?;
            }
            // [MQTT-3.1.3-11] The Will Topic is a topic name. The one
            // scan of `topic_name` clears a valid one; the full check runs
            // (for its precise error) only on one it flags.
            let (topic, check_topic) = r.topic_name()?;
            if check_topic {
                validate_topic_name(&topic).map_err(DecodeError::InvalidTopicName)?;
            }
            let payload = r.binary()?;
            Some(LastWill {
                topic: TopicName::from_checked(topic),
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
        Ok(Box::new(Connect {
            protocol,
            clean_start,
            keep_alive,
            client_id,
            will,
            username,
            password,
            properties,
        }))
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

    /// `Packet::encode` for a CONNECT.
    ///
    /// One without 5.0 properties that fits a block of 256 bytes (most: a
    /// client id, perhaps a will and credentials of a few dozen bytes) is
    /// written there in place, in one pass (`write_small`). Anything else, and
    /// anything `measure` would refuse, is written measured, so each
    /// error is the one `measure` reports.
    #[inline(never)]
    pub(super) fn encode(&self, buf: &mut BytesMut) -> Result<(), EncodeError> {
        let v5 = self.protocol == ProtocolVersion::V5;
        let plain = if v5 {
            self.properties.is_empty() && self.will.as_ref().is_none_or(|w| w.properties.is_empty())
        } else {
            self.password.is_none() || self.username.is_some()
        };
        if plain
            && self.will.as_ref().is_none_or(|w| !w.topic.is_empty())
            && write_small::<256>(buf, 0x10, |s| self.assemble(v5, s))
        {
            return Ok(());
        }
        super::encode_packet(buf, 0x10, self.measure(), |s, b| self.write_body(s, b))
    }

    /// The body of a CONNECT with no properties, if it fits. A field too
    /// long for the wire does not fit.
    #[inline(always)]
    fn assemble(&self, v5: bool, scratch: &mut Scratch<'_, 256>) -> Option<()> {
        let [ka_hi, ka_lo] = self.keep_alive.to_be_bytes();
        let level = self.protocol.level();
        scratch.put(&[
            0,
            4,
            b'M',
            b'Q',
            b'T',
            b'T',
            level,
            self.flags(),
            ka_hi,
            ka_lo,
        ])?;
        if v5 {
            scratch.put_u8(0)?;
        }
        scratch.put_field(self.client_id.as_bytes(), None)?;
        if let Some(will) = &self.will {
            if v5 {
                scratch.put_u8(0)?;
            }
            scratch.put_field(will.topic.as_bytes(), None)?;
            scratch.put_field(&will.payload, None)?;
        }
        if let Some(username) = &self.username {
            scratch.put_field(username.as_bytes(), None)?;
        }
        if let Some(password) = &self.password {
            scratch.put_field(password, None)?;
        }
        Some(())
    }

    pub(super) fn measure(&self) -> Result<Sizes, EncodeError> {
        let version = self.protocol;
        let v5 = version == ProtocolVersion::V5;
        if !v5 && self.password.is_some() && self.username.is_none() {
            return refuse(EncodeError::NotInVersion {
                what: "a password without a user name",
                version,
            });
        }
        if self
            .password
            .as_ref()
            .is_some_and(|p| p.len() > MAX_FIELD_LEN)
        {
            return refuse(EncodeError::BinaryTooLong);
        }
        // Protocol name "MQTT" (2 + 4), level, flags, keepalive.
        let mut len = 6 + 1 + 1 + 2;
        let mut props = 0;
        let mut will_props = 0;
        if v5 {
            props = self.properties.checked_len()?;
            check_auth(
                &self.properties.authentication_method,
                &self.properties.authentication_data,
            )?;
            len += props_block_len(version, props);
        }
        len += self.client_id.wire_len();
        if let Some(will) = &self.will {
            // [MQTT-3.1.3-11] The Will Topic is a topic name: a `TopicName`
            // was checked when made, and only a PUBLISH with a Topic Alias
            // may have an empty one.
            if will.topic.is_empty() {
                return refuse(EncodeError::InvalidTopicName(TopicError::Empty));
            }
            if will.payload.len() > MAX_FIELD_LEN {
                return refuse(EncodeError::BinaryTooLong);
            }
            if v5 {
                will_props = will.properties.checked_len()?;
                // As `read` checks: a Topic Name, so no wildcards.
                if let Some(response_topic) = &will.properties.response_topic {
                    validate_topic_name(response_topic).map_err(EncodeError::InvalidTopicName)?;
                }
                len += props_block_len(version, will_props);
            }
            len += will.topic.wire_len() + binary_len(&will.payload);
        }
        len += self.username.as_ref().map_or(0, |u| u.wire_len());
        len += self.password.as_ref().map_or(0, |p| binary_len(p));
        Ok(Sizes {
            body: len,
            props,
            will_props,
        })
    }

    pub(super) fn write_body(&self, sizes: &Sizes, buf: &mut BytesMut) {
        let v5 = self.protocol == ProtocolVersion::V5;
        // Protocol name, level, flags and keepalive: ten bytes in one piece.
        let [ka_hi, ka_lo] = self.keep_alive.to_be_bytes();
        buf.extend_from_slice(&[
            0,
            4,
            b'M',
            b'Q',
            b'T',
            b'T',
            self.protocol.level(),
            self.flags(),
            ka_hi,
            ka_lo,
        ]);
        if v5 {
            write_props_block(buf, sizes.props, |b| self.properties.write(b));
        }
        self.client_id.write(buf);
        if let Some(will) = &self.will {
            if v5 {
                write_props_block(buf, sizes.will_props, |b| will.properties.write(b));
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

    pub(super) fn read(r: &mut Reader<'_>, version: ProtocolVersion) -> Result<Self, DecodeError> {
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

    pub(super) fn measure(&self, version: ProtocolVersion) -> Result<Sizes, EncodeError> {
        // 3.1.1 [MQTT-3.2.2-4], 5.0 [MQTT-3.2.2-6]: a refusal MUST have
        // Session Present 0, and our decoder holds the broker to it.
        if self.session_present && self.reason_code != ConnectReasonCode::Success {
            return refuse(EncodeError::SessionPresentOnRefusal);
        }
        match version {
            ProtocolVersion::V311 => {
                if self.reason_code.to_v311().is_none() {
                    return refuse(EncodeError::NotInVersion {
                        what: "this CONNACK reason code",
                        version,
                    });
                }
                Ok(Sizes::body(2))
            }
            ProtocolVersion::V5 => {
                let props = self.properties.checked_len()?;
                check_auth(
                    &self.properties.authentication_method,
                    &self.properties.authentication_data,
                )?;
                Ok(Sizes {
                    body: 2 + props_block_len(version, props),
                    props,
                    will_props: 0,
                })
            }
        }
    }

    pub(super) fn write_body(&self, version: ProtocolVersion, sizes: &Sizes, buf: &mut BytesMut) {
        let session_present = u8::from(self.session_present);
        match version {
            ProtocolVersion::V311 => {
                let code = self.reason_code.to_v311().unwrap_or(0x80);
                buf.extend_from_slice(&[session_present, code]);
            }
            ProtocolVersion::V5 => {
                buf.extend_from_slice(&[session_present, self.reason_code.as_u8()]);
                write_props_block(buf, sizes.props, |b| self.properties.write(b));
            }
        }
    }
}

/// "It is a Protocol Error to include Authentication Data if there is no
/// Authentication Method": refuse to write what the receiver must reject.
pub(super) fn check_auth(
    method: &Option<MqttString>,
    data: &Option<Bytes>,
) -> Result<(), EncodeError> {
    if data.is_some() && method.is_none() {
        return refuse(EncodeError::AuthDataWithoutMethod);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! Byte vectors for CONNECT and CONNACK, written by hand from the spec
    //! (§3.1, §3.2) or captured from mosquitto 2.0.11's command-line tools.
    //! Each one is checked both ways: the bytes decode to the struct, the
    //! struct encodes to exactly the bytes, and `encoded_len` agrees.

    #[allow(unused_imports)]
    use crate::codec::test_vectors::{assert_vector, hex, packet_bytes};

    use bytes::{Bytes, BytesMut};

    use crate::codec::{
        ConnAck, ConnAckProperties, Connect, ConnectProperties, ConnectReasonCode, DecodeError,
        EncodeError, LastWill, MqttString, Packet, PayloadFormat, PropertyId, ProtocolVersion, QoS,
        TopicName, UserProperties, WillProperties, decode_bytes,
    };
    use crate::topic::TopicError;

    use ProtocolVersion::{V5, V311};

    /// A test string as whichever MQTT string type the caller wants
    /// (`MqttString`, `TopicName` or `TopicFilter`).
    fn s<T: for<'a> TryFrom<&'a str, Error: std::fmt::Debug>>(v: &str) -> T {
        T::try_from(v).expect("a valid test string")
    }

    fn connect(c: Connect) -> Packet {
        Packet::Connect(Box::new(c))
    }

    fn connack(c: ConnAck) -> Packet {
        Packet::ConnAck(Box::new(c))
    }

    /// A CONNECT small enough to be assembled on the stack and one too big
    /// for that (written measured) come out the same way: checked against
    /// the layout written out by hand, with and without a will and
    /// credentials, for fields on both sides of the stack buffer's size.
    #[test]
    fn small_and_large_connects_encode_alike() {
        let field = |n: usize, b: u8| -> Vec<u8> { (0..n).map(|i| b + (i % 20) as u8).collect() };
        let put = |out: &mut Vec<u8>, data: &[u8]| {
            out.extend_from_slice(&(data.len() as u16).to_be_bytes());
            out.extend_from_slice(data);
        };
        for v in [V311, V5] {
            for len in [0usize, 5, 40, 100, 200, 300] {
                for (will, creds) in [(false, false), (true, false), (false, true), (true, true)] {
                    let id = String::from_utf8(field(len.max(1), b'a')).unwrap();
                    let mut connect = Connect::new(v, s(&id));
                    connect.keep_alive = 0x1234;
                    let mut flags = 0x02;
                    let mut tail = Vec::new();
                    if will {
                        let topic = String::from_utf8(field(len.max(1), b'A')).unwrap();
                        let payload = field(len, 0x80);
                        if v == V5 {
                            tail.push(0);
                        }
                        put(&mut tail, topic.as_bytes());
                        put(&mut tail, &payload);
                        connect.will =
                            Some(LastWill::new(s(&topic), payload, QoS::ExactlyOnce, true));
                        flags |= 0x04 | 0x10 | 0x20;
                    }
                    if creds {
                        let user = String::from_utf8(field(len, b'k')).unwrap();
                        let password = field(len, 0x01);
                        put(&mut tail, user.as_bytes());
                        put(&mut tail, &password);
                        connect.username = Some(s(&user));
                        connect.password = Some(Bytes::from(password));
                        flags |= 0xC0;
                    }
                    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', v.level(), flags, 0x12, 0x34];
                    if v == V5 {
                        body.push(0);
                    }
                    put(&mut body, id.as_bytes());
                    body.extend_from_slice(&tail);
                    let want = packet_bytes(0x10, &body);
                    let packet = Packet::Connect(Box::new(connect));
                    let mut buf = BytesMut::new();
                    packet.encode(v, &mut buf).unwrap();
                    assert_eq!(
                        buf[..],
                        want[..],
                        "{v} fields of {len}, will {will}, creds {creds}"
                    );
                    assert_eq!(packet.encoded_len(v), Ok(want.len()));
                }
            }
        }
    }

    /// What the stack-assembled path leaves to the measured one is
    /// refused with the error `measure` gives.
    #[test]
    fn connects_that_cannot_be_written_are_refused_either_way() {
        let mut no_user = Connect::new(V311, s("c"));
        no_user.password = Some(Bytes::from_static(b"pw"));
        assert!(matches!(
            Packet::Connect(Box::new(no_user)).encode(V311, &mut BytesMut::new()),
            Err(EncodeError::NotInVersion { .. })
        ));
        let mut nameless_will = Connect::new(V311, s("c"));
        nameless_will.will = Some(LastWill::new(
            TopicName::empty(),
            "x",
            QoS::AtMostOnce,
            false,
        ));
        assert_eq!(
            Packet::Connect(Box::new(nameless_will)).encode(V311, &mut BytesMut::new()),
            Err(EncodeError::InvalidTopicName(TopicError::Empty))
        );
        let mut long = Connect::new(V5, s("c"));
        long.username = Some(s("u"));
        long.password = Some(Bytes::from(vec![0; 65_536]));
        let mut buf = BytesMut::new();
        assert_eq!(
            Packet::Connect(Box::new(long)).encode(V5, &mut buf),
            Err(EncodeError::BinaryTooLong)
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn v311_connect_as_sent_by_mosquitto_pub_2_0_x() {
        // mosquitto_pub 2.0.11 -V mqttv311 -i plover-capture
        //   -t home/living-room/temperature -m 21.5 -q 1 -r
        assert_vector(
            V311,
            &[
                &[0x10],           // CONNECT
                &[0x1A],           // remaining length 26
                &[0x00, 0x04],     // protocol name length 4
                b"MQTT",           // protocol name
                &[0x04],           // protocol level 4: MQTT 3.1.1
                &[0x02],           // flags: clean session
                &[0x00, 0x3C],     // keep alive 60 s
                &[0x00, 0x0E],     // client id length 14
                b"plover-capture", // client id
            ],
            connect(Connect::new(V311, s("plover-capture"))),
        );
    }

    #[test]
    fn v311_connect_with_empty_client_id_as_sent_by_mosquitto_sub_2_0_x() {
        // mosquitto_sub 2.0.11 -V mqttv311 -t home/+/temperature -t alarm/# -q 2
        // (no -i: the 2.0 tools leave the id to the broker).
        assert_vector(
            V311,
            &[
                &[0x10],       // CONNECT
                &[0x0C],       // remaining length 12
                &[0x00, 0x04], // protocol name length 4
                b"MQTT",       // protocol name
                &[0x04],       // protocol level 4: MQTT 3.1.1
                &[0x02],       // flags: clean session
                &[0x00, 0x3C], // keep alive 60 s
                &[0x00, 0x00], // client id: empty
            ],
            connect(Connect::new(V311, MqttString::new())),
        );
    }

    #[test]
    fn v5_connect_as_sent_by_mosquitto_pub_2_0_x() {
        // mosquitto_pub 2.0.11 -V mqttv5 -i plover-capture
        //   -t home/living-room/temperature -m 21.5 -q 1 -r
        let mut expected = Connect::new(V5, s("plover-capture"));
        expected.properties.receive_maximum = Some(20);
        assert_vector(
            V5,
            &[
                &[0x10],             // CONNECT
                &[0x1E],             // remaining length 30
                &[0x00, 0x04],       // protocol name length 4
                b"MQTT",             // protocol name
                &[0x05],             // protocol level 5: MQTT 5.0
                &[0x02],             // flags: clean start
                &[0x00, 0x3C],       // keep alive 60 s
                &[0x03],             // property length 3
                &[0x21, 0x00, 0x14], // receive maximum 20 (libmosquitto's max inflight)
                &[0x00, 0x0E],       // client id length 14
                b"plover-capture",   // client id
            ],
            connect(expected),
        );
    }

    #[test]
    fn v5_connect_with_empty_client_id_as_sent_by_mosquitto_sub_2_0_x() {
        // mosquitto_sub 2.0.11 -V mqttv5 -t home/+/temperature -t alarm/# -q 2 -C 1
        let mut expected = Connect::new(V5, MqttString::new());
        expected.properties.receive_maximum = Some(1);
        assert_vector(
            V5,
            &[
                &[0x10],             // CONNECT
                &[0x10],             // remaining length 16
                &[0x00, 0x04],       // protocol name length 4
                b"MQTT",             // protocol name
                &[0x05],             // protocol level 5: MQTT 5.0
                &[0x02],             // flags: clean start
                &[0x00, 0x3C],       // keep alive 60 s
                &[0x03],             // property length 3
                &[0x21, 0x00, 0x01], // receive maximum 1
                &[0x00, 0x00],       // client id: empty
            ],
            connect(expected),
        );
    }

    #[test]
    fn v311_connect_with_will_username_and_password() {
        let expected = Connect {
            protocol: V311,
            clean_start: true,
            keep_alive: 300,
            client_id: s("dev-7"),
            will: Some(LastWill::new(
                s("dev/7/status"),
                "offline",
                QoS::AtLeastOnce,
                true,
            )),
            username: Some(s("alice")),
            // Binary, and not UTF-8: the password is not a string.
            password: Some(Bytes::from_static(&[0x00, 0xFF, b's', b'3'])),
            properties: ConnectProperties::default(),
        };
        assert_vector(
            V311,
            &[
                &[0x10],                   // CONNECT
                &[0x35],                   // remaining length 53
                &[0x00, 0x04],             // protocol name length 4
                b"MQTT",                   // protocol name
                &[0x04],                   // protocol level 4: MQTT 3.1.1
                &[0xEE], // flags: user name, password, will retain, will QoS 1, will, clean session
                &[0x01, 0x2C], // keep alive 300 s
                &[0x00, 0x05], // client id length 5
                b"dev-7", // client id
                &[0x00, 0x0C], // will topic length 12
                b"dev/7/status", // will topic
                &[0x00, 0x07], // will payload length 7
                b"offline", // will payload
                &[0x00, 0x05], // user name length 5
                b"alice", // user name
                &[0x00, 0x04], // password length 4
                &[0x00, 0xFF, b's', b'3'], // password (binary)
            ],
            connect(expected),
        );
    }

    #[test]
    fn v311_connect_resuming_a_session_with_a_qos2_will_and_username_only() {
        let expected = Connect {
            protocol: V311,
            clean_start: false,
            keep_alive: 0,
            client_id: s("c"),
            will: Some(LastWill::new(s("w"), Bytes::new(), QoS::ExactlyOnce, false)),
            username: Some(s("u")),
            password: None,
            properties: ConnectProperties::default(),
        };
        assert_vector(
            V311,
            &[
                &[0x10],       // CONNECT
                &[0x15],       // remaining length 21
                &[0x00, 0x04], // protocol name length 4
                b"MQTT",       // protocol name
                &[0x04],       // protocol level 4: MQTT 3.1.1
                &[0x94],       // flags: user name, will QoS 2, will (no clean session)
                &[0x00, 0x00], // keep alive 0: off
                &[0x00, 0x01], // client id length 1
                b"c",          // client id
                &[0x00, 0x01], // will topic length 1
                b"w",          // will topic
                &[0x00, 0x00], // will payload: empty
                &[0x00, 0x01], // user name length 1
                b"u",          // user name
            ],
            connect(expected),
        );
    }

    #[test]
    fn v5_connect_with_every_property_a_will_with_every_property_and_credentials() {
        let properties = ConnectProperties {
            session_expiry_interval: Some(3600),
            receive_maximum: Some(10),
            maximum_packet_size: Some(65_536),
            topic_alias_maximum: Some(5),
            request_response_information: Some(true),
            request_problem_information: Some(false),
            authentication_method: Some(s("token")),
            authentication_data: Some(Bytes::from_static(&[1, 2, 3])),
            // The same name twice: both kept, in order.
            user_properties: [
                (s::<MqttString>("region"), s::<MqttString>("eu")),
                (s::<MqttString>("region"), s::<MqttString>("us")),
            ]
            .into_iter()
            .collect(),
        };
        let will_properties = WillProperties {
            will_delay_interval: Some(60),
            payload_format_indicator: Some(PayloadFormat::Utf8),
            message_expiry_interval: Some(300),
            content_type: Some(s("text/plain")),
            response_topic: Some(s("dev/7/reply")),
            correlation_data: Some(Bytes::from_static(&[0xCA, 0xFE])),
            user_properties: [(s::<MqttString>("k"), s::<MqttString>("v"))]
                .into_iter()
                .collect(),
        };
        let expected = Connect {
            protocol: V5,
            clean_start: true,
            keep_alive: 30,
            client_id: s("dev-7"),
            will: Some(LastWill {
                topic: s("dev/7/status"),
                payload: Bytes::from_static(b"offline"),
                qos: QoS::ExactlyOnce,
                retain: true,
                properties: will_properties,
            }),
            username: Some(s("alice")),
            password: Some(Bytes::from_static(&[0x00, 0xFF, b's', b'3'])),
            properties,
        };
        assert_vector(
            V5,
            &[
                &[0x10],                         // CONNECT
                &[0xA6, 0x01],                   // remaining length 166 (two bytes)
                &[0x00, 0x04],                   // protocol name length 4
                b"MQTT",                         // protocol name
                &[0x05],                         // protocol level 5: MQTT 5.0
                &[0xF6], // flags: user name, password, will retain, will QoS 2, will, clean start
                &[0x00, 0x1E], // keep alive 30 s
                &[0x3C], // property length 60
                &[0x11, 0x00, 0x00, 0x0E, 0x10], // session expiry interval 3600 s
                &[0x21, 0x00, 0x0A], // receive maximum 10
                &[0x27, 0x00, 0x01, 0x00, 0x00], // maximum packet size 65536
                &[0x22, 0x00, 0x05], // topic alias maximum 5
                &[0x19, 0x01], // request response information: yes
                &[0x17, 0x00], // request problem information: no
                &[0x15, 0x00, 0x05], // authentication method, length 5
                b"token", //   "token"
                &[0x16, 0x00, 0x03, 1, 2, 3], // authentication data 01 02 03
                &[0x26, 0x00, 0x06], // user property, name length 6
                b"region", //   name "region"
                &[0x00, 0x02], //   value length 2
                b"eu",   //   value "eu"
                &[0x26, 0x00, 0x06], // user property, name length 6
                b"region", //   name "region" again
                &[0x00, 0x02], //   value length 2
                b"us",   //   value "us"
                &[0x00, 0x05], // client id length 5
                b"dev-7", // client id
                &[0x33], // will property length 51
                &[0x18, 0x00, 0x00, 0x00, 0x3C], // will delay interval 60 s
                &[0x01, 0x01], // payload format indicator: UTF-8
                &[0x02, 0x00, 0x00, 0x01, 0x2C], // message expiry interval 300 s
                &[0x03, 0x00, 0x0A], // content type, length 10
                b"text/plain", //   "text/plain"
                &[0x08, 0x00, 0x0B], // response topic, length 11
                b"dev/7/reply", //   "dev/7/reply"
                &[0x09, 0x00, 0x02, 0xCA, 0xFE], // correlation data CA FE
                &[0x26, 0x00, 0x01], // user property, name length 1
                b"k",    //   name "k"
                &[0x00, 0x01], //   value length 1
                b"v",    //   value "v"
                &[0x00, 0x0C], // will topic length 12
                b"dev/7/status", // will topic
                &[0x00, 0x07], // will payload length 7
                b"offline", // will payload
                &[0x00, 0x05], // user name length 5
                b"alice", // user name
                &[0x00, 0x04], // password length 4
                &[0x00, 0xFF, b's', b'3'], // password (binary)
            ],
            connect(expected),
        );
    }

    #[test]
    fn v5_will_with_a_wildcard_response_topic_is_refused_both_ways() {
        // The will's Response Topic is the Topic Name a response goes to:
        // no wildcards, as for a PUBLISH's ([MQTT-3.3.2-14]).
        let wire = [
            &[0x10][..],         // CONNECT
            &[0x19],             // remaining length 25
            &[0x00, 0x04],       // protocol name length 4
            b"MQTT",             // protocol name
            &[0x05],             // protocol level 5: MQTT 5.0
            &[0x06],             // flags: will (QoS 0), clean start
            &[0x00, 0x3C],       // keep alive 60 s
            &[0x00],             // property length 0
            &[0x00, 0x01],       // client id length 1
            b"c",                // client id
            &[0x06],             // will property length 6
            &[0x08, 0x00, 0x03], // response topic, length 3
            b"a/#",              //   "a/#": a wildcard
            &[0x00, 0x01],       // will topic length 1
            b"t",                // will topic
            &[0x00, 0x00],       // will payload: empty
        ]
        .concat();
        assert_eq!(
            decode_bytes(&mut Bytes::from(wire), V5, usize::MAX),
            Err(DecodeError::InvalidPropertyValue(PropertyId::ResponseTopic))
        );
        let mut will = LastWill::new(s("t"), Bytes::new(), QoS::AtMostOnce, false);
        will.properties.response_topic = Some(s("a/#"));
        let mut c = Connect::new(V5, s("c"));
        c.will = Some(will);
        let mut out = BytesMut::new();
        let refused = EncodeError::InvalidTopicName(TopicError::WildcardInName);
        assert_eq!(connect(c.clone()).encode(V5, &mut out), Err(refused));
        assert_eq!(connect(c.clone()).encoded_len(V5), Err(refused));
        assert!(out.is_empty(), "nothing is written on error");
        // Without the wildcard the same packet is fine.
        if let Some(w) = c.will.as_mut() {
            w.properties.response_topic = Some(s("a/b"));
        }
        assert!(connect(c).encode(V5, &mut out).is_ok());
    }

    #[test]
    fn v5_connect_with_a_password_and_no_user_name() {
        // 5.0 dropped 3.1.1's [MQTT-3.1.2-22]: a password alone is fine.
        let mut expected = Connect::new(V5, MqttString::new());
        expected.password = Some(Bytes::from_static(b"pw"));
        assert_vector(
            V5,
            &[
                &[0x10],       // CONNECT
                &[0x11],       // remaining length 17
                &[0x00, 0x04], // protocol name length 4
                b"MQTT",       // protocol name
                &[0x05],       // protocol level 5: MQTT 5.0
                &[0x42],       // flags: password, clean start
                &[0x00, 0x3C], // keep alive 60 s
                &[0x00],       // property length 0
                &[0x00, 0x00], // client id: empty
                &[0x00, 0x02], // password length 2
                b"pw",         // password
            ],
            connect(expected),
        );
    }

    #[test]
    fn v311_connack_return_codes_0_to_5_map_to_connect_reason_codes() {
        // 3.1.1 §3.2.2.3, Table 3.1, and the 5.0 code each one became.
        let table = [
            (0x00, ConnectReasonCode::Success),                    // accepted
            (0x01, ConnectReasonCode::UnsupportedProtocolVersion), // unacceptable protocol version
            (0x02, ConnectReasonCode::ClientIdentifierNotValid),   // identifier rejected
            (0x03, ConnectReasonCode::ServerUnavailable),          // server unavailable
            (0x04, ConnectReasonCode::BadUserNameOrPassword),      // bad user name or password
            (0x05, ConnectReasonCode::NotAuthorized),              // not authorized
        ];
        for (code, reason) in table {
            assert_vector(
                V311,
                &[
                    &[0x20], // CONNACK
                    &[0x02], // remaining length 2
                    &[0x00], // acknowledge flags: no session present
                    &[code], // return code
                ],
                connack(ConnAck::new(false, reason)),
            );
        }
    }

    #[test]
    fn v311_connack_with_session_present() {
        assert_vector(
            V311,
            &[
                &[0x20], // CONNACK
                &[0x02], // remaining length 2
                &[0x01], // acknowledge flags: session present
                &[0x00], // return code 0: accepted
            ],
            connack(ConnAck::new(true, ConnectReasonCode::Success)),
        );
    }

    #[test]
    fn v5_connack_minimal_success_and_session_present() {
        assert_vector(
            V5,
            &[
                &[0x20], // CONNACK
                &[0x03], // remaining length 3
                &[0x00], // acknowledge flags: no session present
                &[0x00], // reason code 0x00: success
                &[0x00], // property length 0
            ],
            connack(ConnAck::new(false, ConnectReasonCode::Success)),
        );
        assert_vector(
            V5,
            &[
                &[0x20], // CONNACK
                &[0x03], // remaining length 3
                &[0x01], // acknowledge flags: session present
                &[0x00], // reason code 0x00: success
                &[0x00], // property length 0
            ],
            connack(ConnAck::new(true, ConnectReasonCode::Success)),
        );
    }

    #[test]
    fn v5_connack_with_every_property() {
        let mut users = UserProperties::new();
        users.push(s("node"), s("n1"));
        users.push(s("zone"), s("a"));
        let properties = ConnAckProperties {
            session_expiry_interval: Some(120),
            receive_maximum: Some(20),
            maximum_qos: Some(QoS::AtLeastOnce),
            retain_available: Some(false),
            maximum_packet_size: Some(4096),
            assigned_client_identifier: Some(s("auto-4F2A91")),
            topic_alias_maximum: Some(10),
            reason_string: Some(s("welcome")),
            wildcard_subscription_available: Some(false),
            subscription_identifiers_available: Some(false),
            shared_subscription_available: Some(true),
            server_keep_alive: Some(30),
            response_information: Some(s("replies/4F")),
            server_reference: Some(s("broker2:1883")),
            authentication_method: Some(s("token")),
            authentication_data: Some(Bytes::from_static(&[0xAB, 0xCD])),
            user_properties: users,
        };
        assert_vector(
            V5,
            &[
                &[0x20],                         // CONNACK
                &[0x76],                         // remaining length 118
                &[0x00],                         // acknowledge flags: no session present
                &[0x00],                         // reason code 0x00: success
                &[0x73],                         // property length 115
                &[0x11, 0x00, 0x00, 0x00, 0x78], // session expiry interval 120 s
                &[0x21, 0x00, 0x14],             // receive maximum 20
                &[0x24, 0x01],                   // maximum QoS 1
                &[0x25, 0x00],                   // retain available: no
                &[0x27, 0x00, 0x00, 0x10, 0x00], // maximum packet size 4096
                &[0x12, 0x00, 0x0B],             // assigned client identifier, length 11
                b"auto-4F2A91",                  //   "auto-4F2A91"
                &[0x22, 0x00, 0x0A],             // topic alias maximum 10
                &[0x1F, 0x00, 0x07],             // reason string, length 7
                b"welcome",                      //   "welcome"
                &[0x28, 0x00],                   // wildcard subscription available: no
                &[0x29, 0x00],                   // subscription identifiers available: no
                &[0x2A, 0x01],                   // shared subscription available: yes
                &[0x13, 0x00, 0x1E],             // server keep alive 30 s
                &[0x1A, 0x00, 0x0A],             // response information, length 10
                b"replies/4F",                   //   "replies/4F"
                &[0x1C, 0x00, 0x0C],             // server reference, length 12
                b"broker2:1883",                 //   "broker2:1883"
                &[0x15, 0x00, 0x05],             // authentication method, length 5
                b"token",                        //   "token"
                &[0x16, 0x00, 0x02, 0xAB, 0xCD], // authentication data AB CD
                &[0x26, 0x00, 0x04],             // user property, name length 4
                b"node",                         //   name "node"
                &[0x00, 0x02],                   //   value length 2
                b"n1",                           //   value "n1"
                &[0x26, 0x00, 0x04],             // user property, name length 4
                b"zone",                         //   name "zone"
                &[0x00, 0x01],                   //   value length 1
                b"a",                            //   value "a"
            ],
            connack(ConnAck {
                session_present: false,
                reason_code: ConnectReasonCode::Success,
                properties,
            }),
        );
    }

    #[test]
    fn v5_connack_refusals_with_reason_string_and_server_reference() {
        let mut refused = ConnAck::new(false, ConnectReasonCode::BadUserNameOrPassword);
        refused.properties.reason_string = Some(s("denied"));
        assert_vector(
            V5,
            &[
                &[0x20],             // CONNACK
                &[0x0C],             // remaining length 12
                &[0x00],             // acknowledge flags: no session present
                &[0x86],             // reason code 0x86: bad user name or password
                &[0x09],             // property length 9
                &[0x1F, 0x00, 0x06], // reason string, length 6
                b"denied",           //   "denied"
            ],
            connack(refused),
        );
        let mut moved = ConnAck::new(false, ConnectReasonCode::UseAnotherServer);
        moved.properties.server_reference = Some(s("other:1883"));
        assert_vector(
            V5,
            &[
                &[0x20],             // CONNACK
                &[0x10],             // remaining length 16
                &[0x00],             // acknowledge flags: no session present
                &[0x9C],             // reason code 0x9C: use another server
                &[0x0D],             // property length 13
                &[0x1C, 0x00, 0x0A], // server reference, length 10
                b"other:1883",       //   "other:1883"
            ],
            connack(moved),
        );
    }
}
