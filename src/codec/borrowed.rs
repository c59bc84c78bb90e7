//! The borrowing decoder: [`decode_slice`] reads a packet from a `&[u8]`
//! into a [`PacketRef`] whose strings and binary fields are `&str` /
//! `&[u8]` borrowed from that slice.
//!
//! It checks everything [`decode_bytes`](super::decode_bytes) checks, in
//! the same order, with the same errors; it only keeps less. Where the
//! owned decoder makes each kept field a `Bytes` (an atomic reference
//! count increment, and a decrement when it is dropped), this one keeps a
//! pointer and a length; repeated entries (a SUBSCRIBE's filters, a
//! SUBACK's reason codes, user properties) stay on the wire and are parsed
//! as they are iterated, and a packet's properties stay a checked block
//! ([`PropertiesRef`]) that `get()` parses. So it never allocates and never touches a
//! reference count, whatever the packet. That suits code that looks at a
//! packet and moves on (a proxy, a logger, a broker's router, a packet
//! capture), and it is what to use when the bytes are in a plain buffer.
//! [`PacketRef::to_packet`] makes an owned [`Packet`] when one is needed.
//!
//! The two decoders are kept in step by a differential test and fuzz
//! target that feed both the same bytes and compare the outcomes.

use std::num::NonZeroU16;

use super::connect::ConnectHeader;
use super::error::DecodeError;
use super::primitives::{MqttString, Reader};
use super::properties::{
    AckPropertiesRef, AuthPropertiesRef, ConnAckPropertiesRef, ConnectPropertiesRef,
    DisconnectPropertiesRef, PropValue, PropertiesRef, PublishPropertiesRef,
    SubscribePropertiesRef, UnsubscribePropertiesRef, WillPropertiesRef,
};
use super::publish::read_flags;
use super::reason::{
    AuthReasonCode, ConnectReasonCode, DisconnectReasonCode, InvalidReasonCode, PubAckReasonCode,
    PubRelReasonCode, SubAckReasonCode, UnsubAckReasonCode,
};
use super::subscribe::SubscriptionOptions;
use super::topics::{TopicFilter, TopicName};
use super::{
    Auth, ConnAck, Connect, Disconnect, LastWill, Packet, PacketType, PropertyId, ProtocolVersion,
    Publish, PublishResponse, QoS, SubAck, Subscribe, UnsubAck, Unsubscribe, check_first_byte,
    frame, read_packet_id, read_short,
};
use crate::topic::{TopicError, validate_filter_of_mqtt_string, validate_topic_name};

/// Decodes the packet at the front of `buf`, borrowing from it.
///
/// Returns `Ok(Some((packet, len)))` where `len` is how many bytes of
/// `buf` the packet took, `Ok(None)` when `buf` does not hold a whole
/// packet yet, and `Err(_)` when the bytes are not a valid packet, exactly
/// as [`decode_bytes`](super::decode_bytes) would for the same bytes. On
/// an error nothing says how long the bad packet was; the stream cannot be
/// resynchronised anyway (close the connection). It allocates nothing.
///
/// ```
/// use plover::codec::{self, PacketRef, ProtocolVersion};
///
/// // A QoS 1 PUBLISH of "21.5" to "home/temp", packet id 7, then a PINGREQ.
/// let wire = b"\x32\x11\x00\x09home/temp\x00\x0721.5\xc0\x00";
/// let (packet, len) = codec::decode_slice(wire, ProtocolVersion::V311, 1 << 20)
///     .unwrap()
///     .unwrap();
/// let PacketRef::Publish(publish) = packet else { panic!("a PUBLISH") };
/// assert_eq!(publish.topic, "home/temp");
/// assert_eq!(publish.payload, b"21.5");
/// assert_eq!(len, 19);
///
/// let (ping, _) = codec::decode_slice(&wire[len..], ProtocolVersion::V311, 1 << 20)
///     .unwrap()
///     .unwrap();
/// assert!(matches!(ping, PacketRef::PingReq));
/// ```
#[inline]
pub fn decode_slice(
    buf: &[u8],
    version: ProtocolVersion,
    max_packet_size: usize,
) -> Result<Option<(PacketRef<'_>, usize)>, DecodeError> {
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
    let mut r = Reader::borrowed(buf, header_len, total);
    if packet_type == PacketType::Publish {
        let publish = PublishRef::read(first & 0x0F, &mut r, version)?;
        return Ok(Some((PacketRef::Publish(publish), total)));
    }
    read_other(buf, header_len, &mut r, packet_type, version, total)
}

/// Every packet but PUBLISH, out of line as in the owned decoder. Each arm
/// returns the whole result from where the packet is built, so that a
/// packet (a CONNECT is a few hundred bytes) is not copied on the way out.
#[inline(never)]
fn read_other<'a>(
    buf: &'a [u8],
    header_len: usize,
    r: &mut Reader<'a>,
    packet_type: PacketType,
    v: ProtocolVersion,
    total: usize,
) -> Result<Option<(PacketRef<'a>, usize)>, DecodeError> {
    let t = packet_type;
    // Acknowledgements and pings in their short forms, built in the result
    // as the owned decoder builds them (see `read_short`).
    if let Some(id) = read_short(buf, t, header_len, total) {
        let packet = match id? {
            None if t == PacketType::PingReq => PacketRef::PingReq,
            None => PacketRef::PingResp,
            Some(packet_id) => {
                let ack = AckRef {
                    packet_id,
                    reason_code: PubAckReasonCode::Success,
                    properties: PropertiesRef::default(),
                };
                let rel = AckRef {
                    packet_id,
                    reason_code: PubRelReasonCode::Success,
                    properties: PropertiesRef::default(),
                };
                match t {
                    PacketType::PubAck => PacketRef::PubAck(ack),
                    PacketType::PubRec => PacketRef::PubRec(ack),
                    PacketType::PubRel => PacketRef::PubRel(rel),
                    _ => PacketRef::PubComp(rel),
                }
            }
        };
        return Ok(Some((packet, total)));
    }
    // Reads the packet's fields, then checks that the packet ends exactly
    // where its remaining length says (after the fields, so that their
    // errors come first).
    macro_rules! read {
        ($variant:ident, $read:expr) => {{
            let packet = $read?;
            r.finish()?;
            Ok(Some((PacketRef::$variant(packet), total)))
        }};
    }
    match packet_type {
        // Built in the result itself: a CONNECT is 264 bytes, and moving
        // it there was a tenth of its decode.
        PacketType::Connect => ConnectRef::read_packet(r, total),
        PacketType::ConnAck => read!(ConnAck, ConnAckRef::read(r, v)),
        PacketType::PubAck => read!(PubAck, AckRef::read(r, v, t)),
        PacketType::PubRec => read!(PubRec, AckRef::read(r, v, t)),
        PacketType::PubRel => read!(PubRel, AckRef::read(r, v, t)),
        PacketType::PubComp => read!(PubComp, AckRef::read(r, v, t)),
        PacketType::Subscribe => read!(Subscribe, SubscribeRef::read(r, v)),
        PacketType::SubAck => read!(SubAck, SubAckRef::read(r, v)),
        PacketType::Unsubscribe => read!(Unsubscribe, UnsubscribeRef::read(r, v)),
        PacketType::UnsubAck => read!(UnsubAck, UnsubAckRef::read(r, v)),
        PacketType::PingReq => {
            r.finish()?;
            Ok(Some((PacketRef::PingReq, total)))
        }
        PacketType::PingResp => {
            r.finish()?;
            Ok(Some((PacketRef::PingResp, total)))
        }
        PacketType::Disconnect => read!(Disconnect, DisconnectRef::read(r, v)),
        PacketType::Auth => read!(Auth, AuthRef::read(r)),
        // Not reached: `decode_slice` reads PUBLISH itself.
        PacketType::Publish => Err(DecodeError::InvalidPacketType(PacketType::Publish as u8)),
    }
}

/// One MQTT control packet, borrowed from the bytes it was decoded from;
/// see [`decode_slice`]. Each variant mirrors the [`Packet`] variant of
/// the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // each variant is its packet; see the inner types
pub enum PacketRef<'a> {
    Connect(ConnectRef<'a>),
    ConnAck(ConnAckRef<'a>),
    Publish(PublishRef<'a>),
    PubAck(PubAckRef<'a>),
    PubRec(PubRecRef<'a>),
    PubRel(PubRelRef<'a>),
    PubComp(PubCompRef<'a>),
    Subscribe(SubscribeRef<'a>),
    SubAck(SubAckRef<'a>),
    Unsubscribe(UnsubscribeRef<'a>),
    UnsubAck(UnsubAckRef<'a>),
    PingReq,
    PingResp,
    Disconnect(DisconnectRef<'a>),
    /// MQTT 5.0 only.
    Auth(AuthRef<'a>),
}

impl PacketRef<'_> {
    /// This packet's type.
    pub fn packet_type(&self) -> PacketType {
        match self {
            PacketRef::Connect(_) => PacketType::Connect,
            PacketRef::ConnAck(_) => PacketType::ConnAck,
            PacketRef::Publish(_) => PacketType::Publish,
            PacketRef::PubAck(_) => PacketType::PubAck,
            PacketRef::PubRec(_) => PacketType::PubRec,
            PacketRef::PubRel(_) => PacketType::PubRel,
            PacketRef::PubComp(_) => PacketType::PubComp,
            PacketRef::Subscribe(_) => PacketType::Subscribe,
            PacketRef::SubAck(_) => PacketType::SubAck,
            PacketRef::Unsubscribe(_) => PacketType::Unsubscribe,
            PacketRef::UnsubAck(_) => PacketType::UnsubAck,
            PacketRef::PingReq => PacketType::PingReq,
            PacketRef::PingResp => PacketType::PingResp,
            PacketRef::Disconnect(_) => PacketType::Disconnect,
            PacketRef::Auth(_) => PacketType::Auth,
        }
    }

    /// An owned copy: the [`Packet`] that
    /// [`decode_bytes`](super::decode_bytes) gives for the same bytes.
    /// Strings and binary fields are copied.
    ///
    /// ```
    /// use plover::codec::{self, Packet, ProtocolVersion};
    /// use bytes::Bytes;
    ///
    /// let wire = b"\x30\x0d\x00\x09home/temp21.5";
    /// let (borrowed, _) = codec::decode_slice(wire, ProtocolVersion::V311, 1 << 20)
    ///     .unwrap()
    ///     .unwrap();
    /// let owned = codec::decode_bytes(&mut Bytes::from_static(wire), ProtocolVersion::V311, 1 << 20)
    ///     .unwrap()
    ///     .unwrap();
    /// assert_eq!(borrowed.to_packet(), owned);
    /// ```
    pub fn to_packet(&self) -> Packet {
        match self {
            PacketRef::Connect(p) => Packet::Connect(Box::new(p.to_connect())),
            PacketRef::ConnAck(p) => Packet::ConnAck(Box::new(p.to_connack())),
            PacketRef::Publish(p) => Packet::Publish(p.to_publish()),
            PacketRef::PubAck(p) => Packet::PubAck(p.to_ack()),
            PacketRef::PubRec(p) => Packet::PubRec(p.to_ack()),
            PacketRef::PubRel(p) => Packet::PubRel(p.to_ack()),
            PacketRef::PubComp(p) => Packet::PubComp(p.to_ack()),
            PacketRef::Subscribe(p) => Packet::Subscribe(p.to_subscribe()),
            PacketRef::SubAck(p) => Packet::SubAck(p.to_suback()),
            PacketRef::Unsubscribe(p) => Packet::Unsubscribe(p.to_unsubscribe()),
            PacketRef::UnsubAck(p) => Packet::UnsubAck(p.to_unsuback()),
            PacketRef::PingReq => Packet::PingReq,
            PacketRef::PingResp => Packet::PingResp,
            PacketRef::Disconnect(p) => Packet::Disconnect(p.to_disconnect()),
            PacketRef::Auth(p) => Packet::Auth(p.to_auth()),
        }
    }
}

fn own_str(s: &str) -> MqttString {
    MqttString::copy_checked(s)
}

/// [`Publish`], borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishRef<'a> {
    /// Set when this is a redelivery of a QoS 1/2 message.
    pub dup: bool,
    /// The QoS it is delivered with.
    pub qos: QoS,
    /// The retain flag.
    pub retain: bool,
    /// The topic name; may be empty in 5.0 when a Topic Alias stands in.
    pub topic: &'a str,
    /// Present exactly when `qos` is 1 or 2.
    pub packet_id: Option<NonZeroU16>,
    /// 5.0 properties; empty in 3.1.1.
    pub properties: PropertiesRef<'a, PublishPropertiesRef<'a>>,
    /// The application message.
    pub payload: &'a [u8],
}

impl<'a> PublishRef<'a> {
    /// The owned decoder's `Publish::read_packet`, borrowed.
    #[inline(always)]
    fn read(flags: u8, r: &mut Reader<'a>, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let (dup, qos, retain) = read_flags(flags)?;
        let (topic, check_topic) = r.topic_ref()?;
        let packet_id = match qos {
            QoS::AtMostOnce => None,
            _ => Some(read_packet_id(r, PacketType::Publish)?),
        };
        // [MQTT-3.3.2-2] no wildcards in a topic name; `topic_ref` found
        // none (nor U+0000) in its one pass unless `check_topic` is set.
        let check = |topic: &str| {
            if check_topic {
                validate_topic_name(topic).map_err(DecodeError::InvalidTopicName)?;
            }
            Ok::<(), DecodeError>(())
        };
        let no_properties = version == ProtocolVersion::V311 || r.skip_zero_byte();
        let properties = if no_properties {
            if topic.is_empty() {
                return Err(match version {
                    // 3.1.1 has no aliases: [MQTT-4.7.3-1].
                    ProtocolVersion::V311 => DecodeError::InvalidTopicName(TopicError::Empty),
                    // 5.0 §3.3.2.3.4: an empty topic name needs a Topic Alias.
                    ProtocolVersion::V5 => DecodeError::EmptyTopicWithoutAlias,
                });
            }
            check(topic)?;
            PropertiesRef::default()
        } else {
            let (checked, properties) = PublishPropertiesRef::read_block(r, PacketType::Publish)?;
            if topic.is_empty() {
                if checked.topic_alias.is_none() {
                    return Err(DecodeError::EmptyTopicWithoutAlias);
                }
            } else {
                check(topic)?;
            }
            // [MQTT-3.3.2-14] The Response Topic is a Topic Name.
            if let Some(response_topic) = checked.response_topic
                && validate_topic_name(response_topic).is_err()
            {
                return Err(DecodeError::InvalidPropertyValue(PropertyId::ResponseTopic));
            }
            properties
        };
        let payload = r.slice(r.remaining())?;
        Ok(PublishRef {
            dup,
            qos,
            retain,
            topic,
            packet_id,
            properties,
            payload,
        })
    }

    /// An owned copy.
    pub fn to_publish(&self) -> Publish {
        Publish {
            dup: self.dup,
            qos: self.qos,
            retain: self.retain,
            topic: TopicName::from_checked(own_str(self.topic)),
            packet_id: self.packet_id,
            properties: self.properties.get().to_owned_set(),
            payload: bytes::Bytes::copy_from_slice(self.payload),
        }
    }
}

/// [`PublishResponse`] (PUBACK, PUBREC, PUBREL, PUBCOMP), borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckRef<'a, R> {
    /// The packet identifier of the PUBLISH this answers.
    pub packet_id: NonZeroU16,
    /// The outcome; Success in 3.1.1.
    pub reason_code: R,
    /// 5.0 properties; empty in 3.1.1.
    pub properties: PropertiesRef<'a, AckPropertiesRef<'a>>,
}

/// PUBACK, borrowed.
pub type PubAckRef<'a> = AckRef<'a, PubAckReasonCode>;
/// PUBREC, borrowed.
pub type PubRecRef<'a> = AckRef<'a, PubAckReasonCode>;
/// PUBREL, borrowed.
pub type PubRelRef<'a> = AckRef<'a, PubRelReasonCode>;
/// PUBCOMP, borrowed.
pub type PubCompRef<'a> = AckRef<'a, PubRelReasonCode>;

impl<'a, R> AckRef<'a, R>
where
    R: Copy + TryFrom<u8, Error = InvalidReasonCode>,
{
    fn read(
        r: &mut Reader<'a>,
        version: ProtocolVersion,
        packet: PacketType,
    ) -> Result<Self, DecodeError> {
        let packet_id = read_packet_id(r, packet)?;
        let mut reason = 0u8;
        let mut properties = PropertiesRef::default();
        if version == ProtocolVersion::V5 {
            // §3.4.2.1 / §3.4.2.2: reason and property length may be left out.
            if !r.is_empty() {
                reason = r.u8()?;
            }
            if !r.is_empty() {
                properties = AckPropertiesRef::read_block(r, packet)?.1;
            }
        }
        Ok(AckRef {
            packet_id,
            reason_code: R::try_from(reason)?,
            properties,
        })
    }

    /// An owned copy.
    pub fn to_ack(&self) -> PublishResponse<R> {
        PublishResponse {
            packet_id: self.packet_id,
            reason_code: self.reason_code,
            properties: self.properties.get().to_owned_set(),
        }
    }
}

/// [`Connect`], borrowed. Its `Debug` output never shows the password.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ConnectRef<'a> {
    /// The protocol version the client asks for.
    pub protocol: ProtocolVersion,
    /// Clean Session (3.1.1) / Clean Start (5.0).
    pub clean_start: bool,
    /// Keepalive in seconds.
    pub keep_alive: u16,
    /// The client identifier.
    pub client_id: &'a str,
    /// The will message.
    pub will: Option<LastWillRef<'a>>,
    /// User name.
    pub username: Option<&'a str>,
    /// Password.
    pub password: Option<&'a [u8]>,
    /// 5.0 properties.
    pub properties: PropertiesRef<'a, ConnectPropertiesRef<'a>>,
}

impl std::fmt::Debug for ConnectRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectRef")
            .field("protocol", &self.protocol)
            .field("clean_start", &self.clean_start)
            .field("keep_alive", &self.keep_alive)
            .field("client_id", &self.client_id)
            .field("will", &self.will)
            .field("username", &self.username)
            .field("password", &self.password.map(|_| "<redacted>"))
            .field("properties", &self.properties)
            .finish()
    }
}

/// [`LastWill`], borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastWillRef<'a> {
    /// Topic to publish the will to.
    pub topic: &'a str,
    /// The will payload.
    pub payload: &'a [u8],
    /// QoS of the will message.
    pub qos: QoS,
    /// Whether the will is retained.
    pub retain: bool,
    /// 5.0 will properties.
    pub properties: PropertiesRef<'a, WillPropertiesRef<'a>>,
}

impl<'a> ConnectRef<'a> {
    /// Reads a CONNECT (the rest of `r`, a packet of `total` bytes) and
    /// returns it as [`decode_slice`]'s result.
    #[inline(always)]
    fn read_packet(
        r: &mut Reader<'a>,
        total: usize,
    ) -> Result<Option<(PacketRef<'a>, usize)>, DecodeError> {
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
        let (checked, properties) = if v5 {
            ConnectPropertiesRef::read_block(r, PacketType::Connect)?
        } else {
            Default::default()
        };
        if checked.authentication_data.is_some() && checked.authentication_method.is_none() {
            return Err(DecodeError::AuthDataWithoutMethod);
        }
        let client_id = r.str_ref()?;
        let will = if has_will {
            let (checked, properties) = if v5 {
                WillPropertiesRef::read_block(r, PacketType::Connect)?
            } else {
                Default::default()
            };
            if let Some(response_topic) = checked.response_topic {
                validate_topic_name(response_topic)
                    .map_err(|_| DecodeError::InvalidPropertyValue(PropertyId::ResponseTopic))?;
            }
            // [MQTT-3.1.3-11] The Will Topic is a topic name. The one
            // scan of `topic_ref` clears a valid one; the full check runs
            // (for its precise error) only on one it flags.
            let (topic, check_topic) = r.topic_ref()?;
            if check_topic {
                validate_topic_name(topic).map_err(DecodeError::InvalidTopicName)?;
            }
            let payload = r.binary_ref()?;
            Some(LastWillRef {
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
            Some(r.str_ref()?)
        } else {
            None
        };
        let password = if has_password {
            Some(r.binary_ref()?)
        } else {
            None
        };
        r.finish()?;
        Ok(Some((
            PacketRef::Connect(ConnectRef {
                protocol,
                clean_start,
                keep_alive,
                client_id,
                will,
                username,
                password,
                properties,
            }),
            total,
        )))
    }

    /// An owned copy.
    pub fn to_connect(&self) -> Connect {
        Connect {
            protocol: self.protocol,
            clean_start: self.clean_start,
            keep_alive: self.keep_alive,
            client_id: own_str(self.client_id),
            will: self.will.map(|w| LastWill {
                topic: TopicName::from_checked(own_str(w.topic)),
                payload: bytes::Bytes::copy_from_slice(w.payload),
                qos: w.qos,
                retain: w.retain,
                properties: w.properties.get().to_owned_set(),
            }),
            username: self.username.map(own_str),
            password: self.password.map(<bytes::Bytes as PropValue>::from_ref),
            properties: self.properties.get().to_owned_set(),
        }
    }
}

/// [`ConnAck`], borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnAckRef<'a> {
    /// Whether the broker resumed a session.
    pub session_present: bool,
    /// Accepted or why not (3.1.1 return codes as their 5.0 equivalents).
    pub reason_code: ConnectReasonCode,
    /// 5.0 properties.
    pub properties: PropertiesRef<'a, ConnAckPropertiesRef<'a>>,
}

impl<'a> ConnAckRef<'a> {
    fn read(r: &mut Reader<'a>, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let flags = r.u8()?;
        // [MQTT-3.2.2-1]
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
        // 3.1.1 [MQTT-3.2.2-4], 5.0 [MQTT-3.2.2-6]
        if session_present && reason_code != ConnectReasonCode::Success {
            return Err(DecodeError::InvalidConnAckFlags(flags));
        }
        let (checked, properties) = match version {
            ProtocolVersion::V5 => ConnAckPropertiesRef::read_block(r, PacketType::ConnAck)?,
            ProtocolVersion::V311 => Default::default(),
        };
        if checked.authentication_data.is_some() && checked.authentication_method.is_none() {
            return Err(DecodeError::AuthDataWithoutMethod);
        }
        Ok(ConnAckRef {
            session_present,
            reason_code,
            properties,
        })
    }

    /// An owned copy.
    pub fn to_connack(&self) -> ConnAck {
        ConnAck {
            session_present: self.session_present,
            reason_code: self.reason_code,
            properties: self.properties.get().to_owned_set(),
        }
    }
}

/// [`Subscribe`], borrowed: the filters are read as they are iterated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscribeRef<'a> {
    /// Identifier the SUBACK will answer with.
    pub packet_id: NonZeroU16,
    /// The filters and their options; at least one.
    pub filters: FiltersRef<'a>,
    /// 5.0 properties.
    pub properties: PropertiesRef<'a, SubscribePropertiesRef<'a>>,
}

impl<'a> SubscribeRef<'a> {
    fn read(r: &mut Reader<'a>, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let packet_id = read_packet_id(r, PacketType::Subscribe)?;
        let properties = match version {
            ProtocolVersion::V5 => SubscribePropertiesRef::read_block(r, PacketType::Subscribe)?.1,
            ProtocolVersion::V311 => PropertiesRef::default(),
        };
        let start = r.position();
        let mut n = 0usize;
        while !r.is_empty() {
            let filter = r.str_ref()?;
            let options = SubscriptionOptions::read(r.u8()?, version)?;
            let shared =
                validate_filter_of_mqtt_string(filter).map_err(DecodeError::InvalidTopicFilter)?;
            // [MQTT-3.8.3-4] No Local on a shared subscription is a Protocol Error.
            if options.no_local && shared {
                return Err(DecodeError::NoLocalOnSharedSubscription);
            }
            n += 1;
        }
        // 3.1.1 [MQTT-3.8.3-3] / 5.0 [MQTT-3.8.3-2]: at least one filter.
        if n == 0 {
            return Err(DecodeError::EmptyPayload(PacketType::Subscribe));
        }
        Ok(SubscribeRef {
            packet_id,
            filters: FiltersRef {
                wire: r.data_slice(start, r.position()),
                version,
                options: true,
            },
            properties,
        })
    }

    /// An owned copy.
    pub fn to_subscribe(&self) -> Subscribe {
        Subscribe {
            packet_id: self.packet_id,
            filters: (self.filters.iter())
                .map(|(f, o)| (TopicFilter::from_checked(own_str(f)), o))
                .collect(),
            properties: self.properties.get().to_owned_set(),
        }
    }
}

/// The topic filters of a SUBSCRIBE or UNSUBSCRIBE, as they lie on the
/// wire (checked when the packet was decoded).
#[derive(Clone, Copy)]
pub struct FiltersRef<'a> {
    wire: &'a [u8],
    version: ProtocolVersion,
    /// Whether each filter is followed by a subscription options byte
    /// (SUBSCRIBE) or not (UNSUBSCRIBE).
    options: bool,
}

impl<'a> FiltersRef<'a> {
    /// The filters with their subscription options (for an UNSUBSCRIBE's
    /// filters, the options are the default).
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, SubscriptionOptions)> + use<'a> {
        let mut r = Reader::borrowed(self.wire, 0, self.wire.len());
        let (options, version) = (self.options, self.version);
        // Checked when decoded: a failing read cannot happen, and would
        // end the iteration.
        std::iter::from_fn(move || {
            if r.is_empty() {
                return None;
            }
            let filter = r.str_ref().ok()?;
            let opts = if options {
                SubscriptionOptions::read(r.u8().ok()?, version).ok()?
            } else {
                SubscriptionOptions::default()
            };
            Some((filter, opts))
        })
    }

    /// The filters alone.
    pub fn names(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        self.iter().map(|(f, _)| f)
    }

    /// How many filters there are.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Never true for a decoded packet (at least one filter is required).
    pub fn is_empty(&self) -> bool {
        self.wire.is_empty()
    }
}

impl std::fmt::Debug for FiltersRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.options {
            f.debug_list().entries(self.iter()).finish()
        } else {
            f.debug_list().entries(self.names()).finish()
        }
    }
}

impl PartialEq for FiltersRef<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for FiltersRef<'_> {}

/// [`Unsubscribe`], borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnsubscribeRef<'a> {
    /// Identifier the UNSUBACK will answer with.
    pub packet_id: NonZeroU16,
    /// The filters (see [`FiltersRef::names`]); at least one.
    pub filters: FiltersRef<'a>,
    /// 5.0 properties.
    pub properties: PropertiesRef<'a, UnsubscribePropertiesRef<'a>>,
}

impl<'a> UnsubscribeRef<'a> {
    fn read(r: &mut Reader<'a>, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let packet_id = read_packet_id(r, PacketType::Unsubscribe)?;
        let properties = match version {
            ProtocolVersion::V5 => {
                UnsubscribePropertiesRef::read_block(r, PacketType::Unsubscribe)?.1
            }
            ProtocolVersion::V311 => PropertiesRef::default(),
        };
        let start = r.position();
        while !r.is_empty() {
            let filter = r.str_ref()?;
            validate_filter_of_mqtt_string(filter).map_err(DecodeError::InvalidTopicFilter)?;
        }
        // [MQTT-3.10.3-2] at least one Topic Filter.
        if r.position() == start {
            return Err(DecodeError::EmptyPayload(PacketType::Unsubscribe));
        }
        Ok(UnsubscribeRef {
            packet_id,
            filters: FiltersRef {
                wire: r.data_slice(start, r.position()),
                version,
                options: false,
            },
            properties,
        })
    }

    /// An owned copy.
    pub fn to_unsubscribe(&self) -> Unsubscribe {
        Unsubscribe {
            packet_id: self.packet_id,
            filters: (self.filters.names())
                .map(|f| TopicFilter::from_checked(own_str(f)))
                .collect(),
            properties: self.properties.get().to_owned_set(),
        }
    }
}

/// [`SubAck`], borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubAckRef<'a> {
    /// The packet identifier of the SUBSCRIBE this answers.
    pub packet_id: NonZeroU16,
    /// One byte per filter, checked; see [`reason_codes`](Self::reason_codes).
    codes: &'a [u8],
    /// 5.0 properties.
    pub properties: PropertiesRef<'a, AckPropertiesRef<'a>>,
}

impl<'a> SubAckRef<'a> {
    fn read(r: &mut Reader<'a>, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let packet_id = read_packet_id(r, PacketType::SubAck)?;
        let properties = match version {
            ProtocolVersion::V5 => AckPropertiesRef::read_block(r, PacketType::SubAck)?.1,
            ProtocolVersion::V311 => PropertiesRef::default(),
        };
        let codes = r.slice(r.remaining())?;
        for &code in codes {
            // 3.1.1 [MQTT-3.9.3-2]: only 0x00, 0x01, 0x02 and 0x80.
            if version == ProtocolVersion::V311 && !matches!(code, 0x00..=0x02 | 0x80) {
                return Err(InvalidReasonCode {
                    packet: "SUBACK",
                    code,
                }
                .into());
            }
            SubAckReasonCode::try_from(code)?;
        }
        if codes.is_empty() {
            return Err(DecodeError::EmptyPayload(PacketType::SubAck));
        }
        Ok(SubAckRef {
            packet_id,
            codes,
            properties,
        })
    }

    /// One reason code per filter of the SUBSCRIBE, in its order.
    pub fn reason_codes(&self) -> impl ExactSizeIterator<Item = SubAckReasonCode> + use<'a> {
        // Checked when decoded; the fallback is never used.
        self.codes
            .iter()
            .map(|&c| SubAckReasonCode::try_from(c).unwrap_or(SubAckReasonCode::UnspecifiedError))
    }

    /// An owned copy.
    pub fn to_suback(&self) -> SubAck {
        SubAck {
            packet_id: self.packet_id,
            reason_codes: self.reason_codes().collect(),
            properties: self.properties.get().to_owned_set(),
        }
    }
}

/// [`UnsubAck`], borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnsubAckRef<'a> {
    /// The packet identifier of the UNSUBSCRIBE this answers.
    pub packet_id: NonZeroU16,
    /// 5.0: one byte per filter, checked; none in 3.1.1.
    codes: &'a [u8],
    /// 5.0 properties.
    pub properties: PropertiesRef<'a, AckPropertiesRef<'a>>,
}

impl<'a> UnsubAckRef<'a> {
    fn read(r: &mut Reader<'a>, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let packet_id = read_packet_id(r, PacketType::UnsubAck)?;
        if version == ProtocolVersion::V311 {
            return Ok(UnsubAckRef {
                packet_id,
                codes: &[],
                properties: PropertiesRef::default(),
            });
        }
        let properties = AckPropertiesRef::read_block(r, PacketType::UnsubAck)?.1;
        let codes = r.slice(r.remaining())?;
        for &code in codes {
            UnsubAckReasonCode::try_from(code)?;
        }
        if codes.is_empty() {
            return Err(DecodeError::EmptyPayload(PacketType::UnsubAck));
        }
        Ok(UnsubAckRef {
            packet_id,
            codes,
            properties,
        })
    }

    /// 5.0: one reason code per filter of the UNSUBSCRIBE, in its order;
    /// 3.1.1 has none.
    pub fn reason_codes(&self) -> impl ExactSizeIterator<Item = UnsubAckReasonCode> + use<'a> {
        // Checked when decoded; the fallback is never used.
        self.codes.iter().map(|&c| {
            UnsubAckReasonCode::try_from(c).unwrap_or(UnsubAckReasonCode::UnspecifiedError)
        })
    }

    /// An owned copy.
    pub fn to_unsuback(&self) -> UnsubAck {
        UnsubAck {
            packet_id: self.packet_id,
            reason_codes: self.reason_codes().collect(),
            properties: self.properties.get().to_owned_set(),
        }
    }
}

/// [`Disconnect`], borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DisconnectRef<'a> {
    /// Why the connection ends (Normal disconnection in 3.1.1).
    pub reason_code: DisconnectReasonCode,
    /// 5.0 properties.
    pub properties: PropertiesRef<'a, DisconnectPropertiesRef<'a>>,
}

impl<'a> DisconnectRef<'a> {
    fn read(r: &mut Reader<'a>, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let mut out = DisconnectRef {
            reason_code: DisconnectReasonCode::NormalDisconnection,
            properties: PropertiesRef::default(),
        };
        if version == ProtocolVersion::V5 {
            // §3.14.2.1 / §3.14.2.2: both may be left out.
            if !r.is_empty() {
                out.reason_code = DisconnectReasonCode::try_from(r.u8()?)?;
            }
            if !r.is_empty() {
                out.properties = DisconnectPropertiesRef::read_block(r, PacketType::Disconnect)?.1;
            }
        }
        Ok(out)
    }

    /// An owned copy.
    pub fn to_disconnect(&self) -> Disconnect {
        Disconnect {
            reason_code: self.reason_code,
            properties: self.properties.get().to_owned_set(),
        }
    }
}

/// [`Auth`], borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthRef<'a> {
    /// Continue, re-authenticate, or Success.
    pub reason_code: AuthReasonCode,
    /// The method and data of the exchange.
    pub properties: PropertiesRef<'a, AuthPropertiesRef<'a>>,
}

impl<'a> AuthRef<'a> {
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let mut out = AuthRef {
            reason_code: AuthReasonCode::Success,
            properties: PropertiesRef::default(),
        };
        // §3.15.2.1: may be left out for Success without properties.
        if r.is_empty() {
            return Ok(out);
        }
        out.reason_code = AuthReasonCode::try_from(r.u8()?)?;
        let mut checked = AuthPropertiesRef::default();
        if !r.is_empty() {
            (checked, out.properties) = AuthPropertiesRef::read_block(r, PacketType::Auth)?;
        }
        if checked.authentication_data.is_some() && checked.authentication_method.is_none() {
            return Err(DecodeError::AuthDataWithoutMethod);
        }
        // §3.15.2.2.2: the Authentication Method may not be left out.
        if checked.authentication_method.is_none() {
            return Err(DecodeError::MissingAuthenticationMethod);
        }
        Ok(out)
    }

    /// An owned copy.
    pub fn to_auth(&self) -> Auth {
        Auth {
            reason_code: self.reason_code,
            properties: self.properties.get().to_owned_set(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU16;

    use bytes::{Bytes, BytesMut};

    use super::*;
    use crate::codec::{
        ConnectProperties, PublishProperties, SubscriptionOptions, UserProperties, decode_bytes,
    };

    /// A test string as whichever MQTT string type the caller wants
    /// (`MqttString`, `TopicName` or `TopicFilter`).
    fn s<T: for<'a> TryFrom<&'a str, Error: std::fmt::Debug>>(v: &str) -> T {
        T::try_from(v).expect("a valid test string")
    }

    fn wire(packet: &Packet, version: ProtocolVersion) -> Bytes {
        let mut buf = BytesMut::new();
        packet.encode(version, &mut buf).expect("encodes");
        buf.freeze()
    }

    #[test]
    fn a_publish_borrows_its_fields_and_parses_its_properties_on_demand() {
        let props = PublishProperties {
            content_type: Some(s("text/plain")),
            topic_alias: Some(3),
            user_properties: [(s::<MqttString>("unit"), s::<MqttString>("celsius"))]
                .into_iter()
                .collect(),
            ..PublishProperties::default()
        };
        let packet = Packet::Publish(
            Publish::new(s("home/temp"), "21.5")
                .with_qos(QoS::AtLeastOnce, NonZeroU16::new(9))
                .with_properties(props),
        );
        let bytes = wire(&packet, ProtocolVersion::V5);
        let (borrowed, len) = decode_slice(&bytes, ProtocolVersion::V5, usize::MAX)
            .expect("valid")
            .expect("complete");
        assert_eq!(len, bytes.len());
        let PacketRef::Publish(p) = borrowed else {
            panic!("not a PUBLISH: {borrowed:?}");
        };
        assert_eq!((p.topic, p.payload), ("home/temp", &b"21.5"[..]));
        assert!(bytes.as_ptr_range().contains(&p.topic.as_ptr()));
        assert!(!p.properties.is_empty());
        // The block as it came: its length first.
        let block = p.properties.as_bytes();
        assert_eq!(usize::from(block[0]), block.len() - 1);
        let set = p.properties.get();
        assert_eq!(set.content_type, Some("text/plain"));
        assert_eq!(set.topic_alias, Some(3));
        assert_eq!(set.user_properties.get("unit"), Some("celsius"));
        assert_eq!(set.user_properties.len(), 1);
        assert_eq!(borrowed.to_packet(), packet);
    }

    #[test]
    fn without_properties_the_set_is_empty_in_both_versions() {
        for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
            let packet = Packet::Publish(Publish::new(s("a/b"), "x"));
            let bytes = wire(&packet, version);
            let (PacketRef::Publish(p), _) = decode_slice(&bytes, version, usize::MAX)
                .expect("valid")
                .expect("complete")
            else {
                panic!("not a PUBLISH");
            };
            assert!(p.properties.is_empty(), "{version}");
            assert_eq!(p.properties.get(), PublishPropertiesRef::default());
        }
    }

    #[test]
    fn filters_and_reason_codes_are_read_as_they_are_iterated() {
        let mut subscribe = Subscribe::new(
            NonZeroU16::MIN,
            s("a/+/c"),
            SubscriptionOptions::new(QoS::ExactlyOnce),
        );
        subscribe
            .filters
            .push((s("$share/g/x/#"), SubscriptionOptions::new(QoS::AtMostOnce)));
        let bytes = wire(&Packet::Subscribe(subscribe), ProtocolVersion::V311);
        let (PacketRef::Subscribe(sub), _) = decode_slice(&bytes, ProtocolVersion::V311, 1 << 10)
            .expect("valid")
            .expect("complete")
        else {
            panic!("not a SUBSCRIBE");
        };
        assert_eq!(sub.filters.len(), 2);
        let read: Vec<_> = sub.filters.iter().map(|(f, o)| (f, o.qos)).collect();
        assert_eq!(
            read,
            [
                ("a/+/c", QoS::ExactlyOnce),
                ("$share/g/x/#", QoS::AtMostOnce)
            ]
        );

        let suback = Packet::SubAck(SubAck {
            packet_id: NonZeroU16::MIN,
            reason_codes: vec![
                SubAckReasonCode::GrantedQoS2,
                SubAckReasonCode::UnspecifiedError,
            ],
            properties: Default::default(),
        });
        let bytes = wire(&suback, ProtocolVersion::V311);
        let (PacketRef::SubAck(ack), _) = decode_slice(&bytes, ProtocolVersion::V311, 1 << 10)
            .expect("valid")
            .expect("complete")
        else {
            panic!("not a SUBACK");
        };
        let codes: Vec<_> = ack.reason_codes().collect();
        assert_eq!(
            codes,
            [
                SubAckReasonCode::GrantedQoS2,
                SubAckReasonCode::UnspecifiedError
            ]
        );
    }

    #[test]
    fn a_connect_hides_its_password_and_reads_its_properties() {
        let mut connect = Connect::new(ProtocolVersion::V5, s("client-7"));
        connect.username = Some(s("alice"));
        connect.password = Some(Bytes::from_static(b"hunter2"));
        connect.properties = ConnectProperties {
            session_expiry_interval: Some(60),
            user_properties: UserProperties::default(),
            ..ConnectProperties::default()
        };
        let packet = Packet::Connect(Box::new(connect));
        let bytes = wire(&packet, ProtocolVersion::V5);
        let (borrowed, _) = decode_slice(&bytes, ProtocolVersion::V5, 1 << 10)
            .expect("valid")
            .expect("complete");
        let PacketRef::Connect(c) = borrowed else {
            panic!("not a CONNECT");
        };
        assert_eq!((c.client_id, c.username), ("client-7", Some("alice")));
        assert_eq!(c.password, Some(&b"hunter2"[..]));
        assert_eq!(c.properties.get().session_expiry_interval, Some(60));
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("<redacted>"),
            "{shown}"
        );
        assert_eq!(borrowed.to_packet(), packet);
    }

    #[test]
    fn incomplete_input_needs_more_and_bad_input_fails_as_decode_bytes_does() {
        let bytes = wire(
            &Packet::Publish(Publish::new(s("a"), "xyz")),
            ProtocolVersion::V311,
        );
        for end in 0..bytes.len() {
            assert_eq!(
                decode_slice(&bytes[..end], ProtocolVersion::V311, 1 << 10),
                Ok(None),
                "{end} bytes"
            );
        }
        // A wildcard in a topic name.
        static BAD: [u8; 6] = [0x30, 0x04, 0x00, 0x01, b'#', b'x'];
        let owned = decode_bytes(
            &mut Bytes::from_static(&BAD),
            ProtocolVersion::V311,
            1 << 10,
        );
        let borrowed = decode_slice(&BAD, ProtocolVersion::V311, 1 << 10);
        assert!(owned.is_err());
        assert_eq!(borrowed.map(|p| p.map(|(p, _)| p.to_packet())), owned);
    }
}
