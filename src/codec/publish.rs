//! PUBLISH (§3.3) and the packets that acknowledge it: PUBACK, PUBREC,
//! PUBREL and PUBCOMP (§3.4 to §3.7).

use std::num::NonZeroU16;

use bytes::{Buf, Bytes, BytesMut};

use super::error::{DecodeError, EncodeError, refuse};
use super::primitives::{
    MAX_VARIABLE_INT, MqttString, Reader, Scratch, put_u16, var_int_len, write_fixed_header,
    write_fixed_header_and_u16, write_prefix, write_small,
};
use super::properties::{AckProperties, PublishProperties};
use super::reason::{InvalidReasonCode, PubAckReasonCode, PubRelReasonCode};
use super::topics::TopicName;
use super::{
    Packet, PacketType, ProtocolVersion, QoS, Sizes, fail, props_block_len, read_packet_id,
    write_props_block,
};
use crate::topic::{TopicError, validate_topic_name};

/// The block a small PUBLISH is written in (see `write_small`): a body of
/// up to 126 bytes.
const SMALL_PUBLISH: usize = 128;

/// The block the head of a larger PUBLISH is written in (see
/// `write_prefix`): any topic of up to 54 bytes.
const PUBLISH_HEAD: usize = 64;

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
    /// The topic name, checked when it was made. Empty
    /// ([`TopicName::empty`]) only in 5.0, when a Topic Alias stands in for it.
    pub topic: TopicName,
    /// Present exactly when `qos` is 1 or 2.
    pub packet_id: Option<NonZeroU16>,
    /// 5.0 properties; empty (and not sent) in 3.1.1.
    pub properties: PublishProperties,
    /// The application message, a slice of the input when decoded.
    pub payload: Bytes,
}

impl Publish {
    /// A QoS 0, not retained message.
    pub fn new(topic: TopicName, payload: impl Into<Bytes>) -> Self {
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

    /// Reads a whole PUBLISH, `buf[header_len..total]` (its first byte
    /// already checked and split into `flags`), and advances `buf` past it,
    /// also when it fails.
    ///
    /// Fields are read by index over `buf`; the packet keeps slices of it
    /// for the topic (and 5.0 properties that hold strings or lists) and
    /// the payload, which is split off `buf` itself: two reference-count
    /// increments in all for a 3.1.1 PUBLISH, none when `buf` is exactly
    /// the packet (the `BytesMut` path, where the payload takes over the
    /// frame).
    ///
    /// Inlined, through `decode_bytes` / `decode`, into the caller, and
    /// the packet is assembled in one expression at the end, so it is
    /// written straight into the caller's variable: a PUBLISH with its 5.0
    /// properties is a few hundred bytes, and copying it up through each
    /// call was a fifth of a decode.
    #[inline(never)]
    pub(super) fn read_packet(
        flags: u8,
        buf: &mut Bytes,
        header_len: usize,
        total: usize,
        version: ProtocolVersion,
    ) -> Result<Option<Packet>, DecodeError> {
        let mut r = Reader::new(buf, header_len, total);
        let head = match Head::read(flags, &mut r) {
            Ok(head) => head,
            Err(e) => return fail(buf, total, e),
        };
        // 5.0: most PUBLISHes carry no properties (a property length of 0),
        // and are then built as a 3.1.1 one is, without a property set to
        // read and move.
        let no_properties = version == ProtocolVersion::V311 || r.skip_zero_byte();
        if no_properties {
            if head.topic.is_empty() {
                return fail(
                    buf,
                    total,
                    match version {
                        // 3.1.1 has no aliases: [MQTT-4.7.3-1] topics are at
                        // least one character.
                        ProtocolVersion::V311 => DecodeError::InvalidTopicName(TopicError::Empty),
                        // 5.0 §3.3.2.3.4: an empty topic name needs a Topic Alias.
                        ProtocolVersion::V5 => DecodeError::EmptyTopicWithoutAlias,
                    },
                );
            }
            if let Err(e) = head.check_topic() {
                return fail(buf, total, e);
            }
            let payload_start = r.position();
            let payload = split_payload(buf, payload_start, total);
            return Ok(Some(Packet::Publish(Publish {
                dup: head.dup,
                qos: head.qos,
                retain: head.retain,
                topic: TopicName::from_checked(head.topic),
                packet_id: head.packet_id,
                properties: PublishProperties::default(),
                payload,
            })));
        }
        let properties = match PublishProperties::read(&mut r, PacketType::Publish) {
            Ok(properties) => properties,
            Err(e) => return fail(buf, total, e),
        };
        if head.topic.is_empty() {
            // 5.0 §3.3.2.3.4: an empty topic name with a Topic Alias means
            // "the topic this alias was set to"; without one it is an error.
            if properties.topic_alias.is_none() {
                return fail(buf, total, DecodeError::EmptyTopicWithoutAlias);
            }
        } else if let Err(e) = head.check_topic() {
            return fail(buf, total, e);
        }
        if let Some(response_topic) = &properties.response_topic {
            // [MQTT-3.3.2-14] The Response Topic MUST be a UTF-8 Encoded
            // String, and is a Topic Name, so no wildcards.
            if validate_topic_name(response_topic).is_err() {
                let e = DecodeError::InvalidPropertyValue(super::PropertyId::ResponseTopic);
                return fail(buf, total, e);
            }
        }
        let payload_start = r.position();
        let payload = split_payload(buf, payload_start, total);
        Ok(Some(Packet::Publish(Publish {
            dup: head.dup,
            qos: head.qos,
            retain: head.retain,
            topic: TopicName::from_checked(head.topic),
            packet_id: head.packet_id,
            properties,
            payload,
        })))
    }

    /// Checks what the wire cannot carry and measures the packet, in one
    /// walk (the properties are checked as they are measured).
    #[inline(always)]
    pub(super) fn measure(&self, version: ProtocolVersion) -> Result<Sizes, EncodeError> {
        // One test for both mistakes, which is never taken: a test per QoS
        // would mispredict when the QoS of successive messages varies.
        let has_id = self.packet_id.is_some();
        if has_id == (self.qos == QoS::AtMostOnce) {
            return refuse(if has_id {
                EncodeError::UnexpectedPacketId
            } else {
                EncodeError::MissingPacketId
            });
        }
        let v5 = version == ProtocolVersion::V5;
        // A `TopicName` was checked when it was made; the one thing left is
        // the empty name, which only a 5.0 Topic Alias makes valid.
        if self.topic.is_empty() && !(v5 && self.properties.topic_alias.is_some()) {
            return refuse(EncodeError::InvalidTopicName(TopicError::Empty));
        }
        let mut props = 0;
        if v5 {
            props = self.properties.checked_len()?;
            // [MQTT-3.3.2-14] The Response Topic is a Topic Name: no
            // wildcards. `read` refuses one, so never write one.
            if let Some(response_topic) = &self.properties.response_topic {
                validate_topic_name(response_topic).map_err(EncodeError::InvalidTopicName)?;
            }
        }
        let id_len = if self.packet_id.is_some() { 2 } else { 0 };
        Ok(Sizes {
            body: self.topic.wire_len()
                + id_len
                + props_block_len(version, props)
                + self.payload.len(),
            props,
            will_props: 0,
        })
    }

    /// Appends this PUBLISH to `buf`: exactly what [`Packet::encode`]
    /// writes for `Packet::Publish`, for a PUBLISH held where moving it
    /// into a [`Packet`] would cost a copy (it is a few hundred bytes).
    ///
    /// Checks and errors are those of [`Packet::encode`]; on error nothing
    /// is written.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use plover::codec::{Packet, ProtocolVersion, Publish, QoS};
    /// use std::num::NonZeroU16;
    ///
    /// let publish = Publish::new("a/b".try_into().unwrap(), "on")
    ///     .with_qos(QoS::AtLeastOnce, NonZeroU16::new(7));
    /// let mut buf = BytesMut::new();
    /// publish.encode(ProtocolVersion::V311, &mut buf).unwrap();
    /// assert_eq!(buf.len(), publish.encoded_len(ProtocolVersion::V311).unwrap());
    ///
    /// let mut whole = BytesMut::new();
    /// Packet::Publish(publish).encode(ProtocolVersion::V311, &mut whole).unwrap();
    /// assert_eq!(buf, whole);
    /// ```
    // Always inlined, so that `Packet::encode`, itself inlined, puts the
    // PUBLISH path into its caller.
    #[inline(always)]
    pub fn encode(&self, version: ProtocolVersion, buf: &mut BytesMut) -> Result<(), EncodeError> {
        let sizes = self.measure(version)?;
        // A small one (most: a short topic and a reading or a command) is
        // written in place whole, in one pass.
        if sizes.body <= SMALL_PUBLISH - 2
            && sizes.props == 0
            && write_small::<SMALL_PUBLISH>(
                buf,
                self.first_byte(),
                // Once `encode` is inlined into a caller's loop, LLVM
                // would otherwise leave this out of line (+40 instructions).
                #[inline(always)]
                |s| {
                    self.assemble_head(version, s)?;
                    s.put_small(&self.payload)
                },
            )
        {
            return Ok(());
        }
        self.write_head_measured(version, sizes, buf, self.payload.len())?;
        buf.extend_from_slice(&self.payload);
        Ok(())
    }

    /// `encode` in a function of its own, for `Packet::encode_long`.
    #[inline(never)]
    pub(super) fn encode_apart(
        &self,
        version: ProtocolVersion,
        buf: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        self.encode(version, buf)
    }

    /// The exact number of bytes [`encode`](Self::encode) writes.
    pub fn encoded_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        let body = self.measure(version)?.body;
        if body > MAX_VARIABLE_INT as usize {
            return refuse(EncodeError::PacketTooLarge(body));
        }
        Ok(1 + var_int_len(body) + body)
    }

    /// Writes this PUBLISH to `buf` without its payload: everything up to
    /// where the payload starts, the fixed header announcing the whole
    /// packet. Appending [`payload`](Self::payload) to what it wrote gives
    /// exactly what [`Packet::encode`] writes, so a caller that sends
    /// buffers one after the other (vectored or not) can send a large
    /// payload from where it lies, with no copy.
    ///
    /// Checks and errors are those of [`Packet::encode`]; on error nothing
    /// is written.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use plover::codec::{Packet, ProtocolVersion, Publish};
    ///
    /// let publish = Publish::new("cam/1/jpeg".try_into().unwrap(), vec![0xFF; 100_000]);
    /// let mut head = BytesMut::new();
    /// publish.encode_head(ProtocolVersion::V311, &mut head).unwrap();
    /// assert_eq!(head.len(), 1 + 3 + 2 + 10);
    ///
    /// let mut whole = BytesMut::new();
    /// Packet::Publish(publish.clone()).encode(ProtocolVersion::V311, &mut whole).unwrap();
    /// assert_eq!(whole[..head.len()], head[..]);
    /// assert_eq!(whole[head.len()..], publish.payload[..]);
    /// ```
    pub fn encode_head(
        &self,
        version: ProtocolVersion,
        buf: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        self.write_head(version, buf, 0)
    }

    /// Measures the packet once and writes everything before the payload,
    /// having reserved room for that and `room_for_payload` more bytes.
    #[inline(always)]
    fn write_head(
        &self,
        version: ProtocolVersion,
        buf: &mut BytesMut,
        room_for_payload: usize,
    ) -> Result<(), EncodeError> {
        self.write_head_measured(version, self.measure(version)?, buf, room_for_payload)
    }

    /// `write_head` for a measured packet.
    #[inline(always)]
    fn write_head_measured(
        &self,
        version: ProtocolVersion,
        sizes: Sizes,
        buf: &mut BytesMut,
        room_for_payload: usize,
    ) -> Result<(), EncodeError> {
        let body = sizes.body;
        if body > MAX_VARIABLE_INT as usize {
            return refuse(EncodeError::PacketTooLarge(body));
        }
        // Room for the whole packet, and for `write_prefix`'s block, which
        // is cut back at once. The fixed header is taken at its longest, 5
        // bytes, rather than measured: `reserve` only needs a bound.
        let head = 5 + body - self.payload.len();
        // Asked only when the block does not fit: that is the test the
        // block's own growth makes, which the compiler then drops. A
        // buffer with room for the block but not the payload grows once,
        // for the payload.
        if buf.capacity() - buf.len() < PUBLISH_HEAD {
            buf.reserve((head + room_for_payload).max(PUBLISH_HEAD));
        }
        let first = self.first_byte();
        // Without properties (most), the head is written in place.
        if sizes.props == 0
            && write_prefix::<PUBLISH_HEAD>(buf, first, body, |s| self.assemble_head(version, s))
        {
            return Ok(());
        }
        // The fixed header and the topic's length in one piece.
        write_fixed_header_and_u16(buf, first, body, self.topic.len() as u16);
        buf.extend_from_slice(self.topic.as_bytes());
        self.write_rest(version, &sizes, buf);
        Ok(())
    }

    /// The first byte: the packet type and the flags.
    #[inline(always)]
    fn first_byte(&self) -> u8 {
        (PacketType::Publish as u8) << 4 | self.flags()
    }

    /// The variable header of a PUBLISH with no properties, if it fits:
    /// the topic name, the packet identifier and, in 5.0, an empty
    /// property block.
    #[inline(always)]
    fn assemble_head<const N: usize>(
        &self,
        version: ProtocolVersion,
        scratch: &mut Scratch<'_, N>,
    ) -> Option<()> {
        scratch.put_field(self.topic.as_bytes(), None)?;
        scratch.put_packet_id(self.packet_id.map_or(0, NonZeroU16::get))?;
        if version == ProtocolVersion::V5 {
            scratch.put_u8(0)?;
        }
        Some(())
    }

    /// What follows the topic name, up to the payload.
    #[inline(always)]
    fn write_rest(&self, version: ProtocolVersion, sizes: &Sizes, buf: &mut BytesMut) {
        if version == ProtocolVersion::V5 {
            // The packet identifier and a short property length in one piece.
            match (self.packet_id, u8::try_from(sizes.props)) {
                (Some(id), Ok(props)) if props < 0x80 => {
                    let [hi, lo] = id.get().to_be_bytes();
                    buf.extend_from_slice(&[hi, lo, props]);
                    if props > 0 {
                        self.properties.write(buf);
                    }
                }
                (id, _) => {
                    if let Some(id) = id {
                        put_u16(buf, id.get());
                    }
                    write_props_block(buf, sizes.props, |b| self.properties.write(b));
                }
            }
        } else if let Some(id) = self.packet_id {
            put_u16(buf, id.get());
        }
    }
}

/// What comes before a PUBLISH's properties: the fixed header's flags, the
/// topic name and the packet identifier.
struct Head {
    dup: bool,
    qos: QoS,
    retain: bool,
    topic: MqttString,
    /// The topic name has U+0000, a wildcard or nothing: worth the full
    /// check, with its precise error.
    check_topic: bool,
    packet_id: Option<NonZeroU16>,
}

impl Head {
    #[inline(always)]
    fn read(flags: u8, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let (dup, qos, retain) = read_flags(flags)?;
        let (topic, check_topic) = r.topic_name()?;
        let packet_id = match qos {
            QoS::AtMostOnce => None,
            _ => Some(read_packet_id(r, PacketType::Publish)?),
        };
        Ok(Head {
            dup,
            qos,
            retain,
            topic,
            check_topic,
            packet_id,
        })
    }

    /// [MQTT-3.3.2-2] The Topic Name MUST NOT contain wildcard characters.
    /// `topic_name` found none of them (nor U+0000) in its one pass unless
    /// `check_topic` is set. The name is not empty here.
    #[inline(always)]
    fn check_topic(&self) -> Result<(), DecodeError> {
        if self.check_topic {
            validate_topic_name(&self.topic).map_err(DecodeError::InvalidTopicName)?;
        }
        Ok(())
    }
}

/// A PUBLISH's fixed-header flags: DUP, QoS and RETAIN, checked (for both
/// decoders).
#[inline(always)]
pub(super) fn read_flags(flags: u8) -> Result<(bool, QoS, bool), DecodeError> {
    let dup = flags & 0b1000 != 0;
    // [MQTT-3.3.1-4] A PUBLISH MUST NOT have both QoS bits set to 1.
    let qos = QoS::from_u8((flags >> 1) & 0b11).ok_or(DecodeError::InvalidQoS)?;
    let retain = flags & 0b0001 != 0;
    // [MQTT-3.3.1-2] The DUP flag MUST be set to 0 for all QoS 0 messages.
    if dup && qos == QoS::AtMostOnce {
        return Err(DecodeError::DupOnQoS0);
    }
    Ok((dup, qos, retain))
}

/// `buf[start..total]` as the payload, `buf` advanced past `total`. When
/// `buf` is exactly the packet, the payload takes it over without touching
/// the reference count.
#[inline(always)]
fn split_payload(buf: &mut Bytes, start: usize, total: usize) -> Bytes {
    if total == buf.len() {
        let mut payload = std::mem::take(buf);
        payload.advance(start);
        return payload;
    }
    let payload = buf.slice(start..total);
    buf.advance(total);
    payload
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
        r: &mut Reader<'_>,
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

    /// `Packet::encode` for these four, `first` being the packet's first
    /// byte, in a function of its own (see `Packet::encode_long`). The
    /// packet identifier alone (always in 3.1.1; in 5.0 a success without
    /// properties) is written without measuring anything.
    #[inline(never)]
    pub(super) fn encode_apart(
        &self,
        first: u8,
        version: ProtocolVersion,
        buf: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        if version == ProtocolVersion::V311 || (self.is_success() && self.properties.is_empty()) {
            let [hi, lo] = self.packet_id.get().to_be_bytes();
            buf.extend_from_slice(&[first, 2, hi, lo]);
            return Ok(());
        }
        self.encode(first, version, buf)
    }

    #[inline(always)]
    pub(super) fn encode(
        &self,
        first: u8,
        version: ProtocolVersion,
        buf: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        let sizes = self.measure(version)?;
        if sizes.body == 2 {
            // The common case: the packet identifier alone.
            let [hi, lo] = self.packet_id.get().to_be_bytes();
            buf.extend_from_slice(&[first, 2, hi, lo]);
            return Ok(());
        }
        let body = sizes.body;
        if body > MAX_VARIABLE_INT as usize {
            return refuse(EncodeError::PacketTooLarge(body));
        }
        buf.reserve(1 + var_int_len(body) + body);
        write_fixed_header(buf, first, body);
        self.write_body(version, &sizes, buf);
        Ok(())
    }

    #[inline]
    pub(super) fn measure(&self, version: ProtocolVersion) -> Result<Sizes, EncodeError> {
        if version == ProtocolVersion::V311 {
            return Ok(Sizes::body(2));
        }
        // An empty set (no properties) measures 0.
        let props = self.properties.checked_len()?;
        let body = match (self.is_success(), props == 0) {
            (true, true) => 2,
            (false, true) => 3,
            (_, false) => 3 + props_block_len(version, props),
        };
        Ok(Sizes {
            body,
            props,
            will_props: 0,
        })
    }

    pub(super) fn write_body(&self, version: ProtocolVersion, sizes: &Sizes, buf: &mut BytesMut) {
        let [hi, lo] = self.packet_id.get().to_be_bytes();
        if version == ProtocolVersion::V311 || (self.is_success() && sizes.props == 0) {
            buf.extend_from_slice(&[hi, lo]);
            return;
        }
        buf.extend_from_slice(&[hi, lo, self.reason_code.into()]);
        if sizes.props > 0 {
            write_props_block(buf, sizes.props, |b| self.properties.write(b));
        }
    }
}

#[cfg(test)]
mod tests {
    //! Byte vectors for PUBLISH and its four acknowledgements, written by
    //! hand from the spec (§3.3 to §3.7) or captured from mosquitto 2.0.11's
    //! command-line tools. Each one is checked both ways: the bytes decode to
    //! the struct, the struct encodes to exactly the bytes, and
    //! `encoded_len` agrees.

    use crate::codec::TopicName;
    #[allow(unused_imports)]
    use crate::codec::test_vectors::{
        assert_decodes_to_shorter, assert_encodes_to, assert_vector, hex,
    };

    use std::num::{NonZeroU16, NonZeroU32};

    use bytes::{Bytes, BytesMut};

    use crate::codec::{
        AckProperties, EncodeError, MqttString, Packet, PayloadFormat, ProtocolVersion, PubAck,
        PubAckReasonCode, PubComp, PubRec, PubRel, PubRelReasonCode, Publish, PublishProperties,
        QoS, SubscriptionIdentifiers, UserProperties, decode_bytes,
    };
    use crate::topic::TopicError;

    use ProtocolVersion::{V5, V311};

    /// A test string as whichever MQTT string type the caller wants
    /// (`MqttString`, `TopicName` or `TopicFilter`).
    fn s<T: for<'a> TryFrom<&'a str, Error: std::fmt::Debug>>(v: &str) -> T {
        T::try_from(v).expect("a valid test string")
    }

    fn id(n: u16) -> NonZeroU16 {
        NonZeroU16::new(n).expect("non-zero packet id")
    }

    // ---- PUBLISH, MQTT 3.1.1 ----

    #[test]
    fn v311_publish_qos0() {
        assert_vector(
            V311,
            &[
                &[0x30],       // PUBLISH, QoS 0
                &[0x07],       // remaining length 7
                &[0x00, 0x03], // topic length 3
                b"a/b",        // topic "a/b"
                b"hi",         // payload (the rest of the packet)
            ],
            Packet::Publish(Publish::new(s("a/b"), "hi")),
        );
    }

    #[test]
    fn v311_publish_qos0_with_empty_payload() {
        assert_vector(
            V311,
            &[
                &[0x30],       // PUBLISH, QoS 0
                &[0x05],       // remaining length 5
                &[0x00, 0x03], // topic length 3
                b"a/b",        // topic "a/b"; no payload
            ],
            Packet::Publish(Publish::new(s("a/b"), Bytes::new())),
        );
    }

    #[test]
    fn v311_publish_qos1_retained_as_sent_by_mosquitto_pub_2_0_x() {
        // mosquitto_pub 2.0.11 -V mqttv311 -i plover-capture
        //   -t home/living-room/temperature -m 21.5 -q 1 -r
        assert_vector(
            V311,
            &[
                &[0x33],                         // PUBLISH, QoS 1, retain
                &[0x24],                         // remaining length 36
                &[0x00, 0x1C],                   // topic length 28
                b"home/living-room/temperature", // topic
                &[0x00, 0x01],                   // packet id 1
                b"21.5",                         // payload
            ],
            Packet::Publish(
                Publish::new(s("home/living-room/temperature"), "21.5")
                    .with_qos(QoS::AtLeastOnce, Some(id(1)))
                    .with_retain(true),
            ),
        );
    }

    #[test]
    fn v311_publish_qos2_dup_with_binary_payload() {
        let mut expected = Publish::new(s("a/b"), Bytes::from_static(&[1, 2, 3]))
            .with_qos(QoS::ExactlyOnce, Some(id(0x1234)));
        expected.dup = true;
        assert_vector(
            V311,
            &[
                &[0x3C],       // PUBLISH, DUP, QoS 2
                &[0x0A],       // remaining length 10
                &[0x00, 0x03], // topic length 3
                b"a/b",        // topic "a/b"
                &[0x12, 0x34], // packet id 0x1234
                &[1, 2, 3],    // payload 01 02 03
            ],
            Packet::Publish(expected),
        );
    }

    #[test]
    fn v311_publish_qos1_dup_retained_with_the_highest_packet_id() {
        let mut expected = Publish::new(s("x"), Bytes::new())
            .with_qos(QoS::AtLeastOnce, Some(id(0xFFFF)))
            .with_retain(true);
        expected.dup = true;
        assert_vector(
            V311,
            &[
                &[0x3B],       // PUBLISH, DUP, QoS 1, retain
                &[0x05],       // remaining length 5
                &[0x00, 0x01], // topic length 1
                b"x",          // topic "x"
                &[0xFF, 0xFF], // packet id 65535; no payload
            ],
            Packet::Publish(expected),
        );
    }

    #[test]
    fn v311_publish_with_a_two_byte_remaining_length() {
        let payload = [0xAB; 200];
        assert_vector(
            V311,
            &[
                &[0x30],       // PUBLISH, QoS 0
                &[0xCB, 0x01], // remaining length 203: 0x4B + 1 * 128
                &[0x00, 0x01], // topic length 1
                b"t",          // topic "t"
                &payload,      // payload: 200 bytes of 0xAB
            ],
            Packet::Publish(Publish::new(s("t"), Bytes::copy_from_slice(&payload))),
        );
    }

    // ---- PUBLISH, MQTT 5.0 ----

    #[test]
    fn v5_publish_qos1_retained_as_sent_by_mosquitto_pub_2_0_x() {
        // mosquitto_pub 2.0.11 -V mqttv5 -i plover-capture
        //   -t home/living-room/temperature -m 21.5 -q 1 -r
        assert_vector(
            V5,
            &[
                &[0x33],                         // PUBLISH, QoS 1, retain
                &[0x25],                         // remaining length 37
                &[0x00, 0x1C],                   // topic length 28
                b"home/living-room/temperature", // topic
                &[0x00, 0x01],                   // packet id 1
                &[0x00],                         // property length 0
                b"21.5",                         // payload
            ],
            Packet::Publish(
                Publish::new(s("home/living-room/temperature"), "21.5")
                    .with_qos(QoS::AtLeastOnce, Some(id(1)))
                    .with_retain(true),
            ),
        );
    }

    #[test]
    fn v5_publish_qos0_without_properties() {
        assert_vector(
            V5,
            &[
                &[0x30],       // PUBLISH, QoS 0
                &[0x08],       // remaining length 8
                &[0x00, 0x03], // topic length 3
                b"a/b",        // topic "a/b"
                &[0x00],       // property length 0
                b"hi",         // payload
            ],
            Packet::Publish(Publish::new(s("a/b"), "hi")),
        );
    }

    #[test]
    fn v5_publish_qos1_with_every_publish_property() {
        let mut users = UserProperties::new();
        users.push(s("a"), s("1"));
        users.push(s("a"), s("2"));
        users.push(s("b"), s(""));
        let subscription_identifiers: SubscriptionIdentifiers = [1, 200, 268_435_455]
            .into_iter()
            .map(|n| NonZeroU32::new(n).expect("non-zero"))
            .collect();
        let properties = PublishProperties {
            payload_format_indicator: Some(PayloadFormat::Utf8),
            message_expiry_interval: Some(60),
            topic_alias: Some(3),
            response_topic: Some(s("sensors/reply")),
            correlation_data: Some(Bytes::from_static(&[0xDE, 0xAD, 0xBE, 0xEF])),
            content_type: Some(s("application/json")),
            subscription_identifiers,
            user_properties: users,
        };
        assert_vector(
            V5,
            &[
                &[0x32],                                     // PUBLISH, QoS 1
                &[0x70],                                     // remaining length 112
                &[0x00, 0x0C],                               // topic length 12
                b"sensors/door",                             // topic
                &[0x00, 0x0A],                               // packet id 10
                &[0x52],                                     // property length 82
                &[0x01, 0x01],                               // payload format indicator: UTF-8
                &[0x02, 0x00, 0x00, 0x00, 0x3C],             // message expiry interval 60 s
                &[0x23, 0x00, 0x03],                         // topic alias 3
                &[0x08, 0x00, 0x0D],                         // response topic, length 13
                b"sensors/reply",                            //   "sensors/reply"
                &[0x09, 0x00, 0x04, 0xDE, 0xAD, 0xBE, 0xEF], // correlation data DE AD BE EF
                &[0x03, 0x00, 0x10],                         // content type, length 16
                b"application/json",                         //   "application/json"
                &[0x0B, 0x01],                               // subscription identifier 1
                &[0x0B, 0xC8, 0x01],                         // subscription identifier 200
                &[0x0B, 0xFF, 0xFF, 0xFF, 0x7F],             // subscription identifier 268435455
                &[0x26, 0x00, 0x01],                         // user property, name length 1
                b"a",                                        //   name "a"
                &[0x00, 0x01],                               //   value length 1
                b"1",                                        //   value "1"
                &[0x26, 0x00, 0x01],                         // user property, name length 1
                b"a",                                        //   name "a" again
                &[0x00, 0x01],                               //   value length 1
                b"2",                                        //   value "2"
                &[0x26, 0x00, 0x01],                         // user property, name length 1
                b"b",                                        //   name "b"
                &[0x00, 0x00],                               //   value: empty
                b"{\"open\":true}",                          // payload
            ],
            Packet::Publish(
                Publish::new(s("sensors/door"), "{\"open\":true}")
                    .with_qos(QoS::AtLeastOnce, Some(id(10)))
                    .with_properties(properties),
            ),
        );
    }

    #[test]
    fn v5_publish_qos2_with_empty_topic_and_topic_alias() {
        let properties = PublishProperties {
            topic_alias: Some(3),
            ..Default::default()
        };
        assert_vector(
            V5,
            &[
                &[0x34],             // PUBLISH, QoS 2
                &[0x0E],             // remaining length 14
                &[0x00, 0x00],       // topic: empty, the alias stands in for it
                &[0x00, 0x02],       // packet id 2
                &[0x03],             // property length 3
                &[0x23, 0x00, 0x03], // topic alias 3
                b"closed",           // payload
            ],
            Packet::Publish(
                Publish::new(TopicName::empty(), "closed")
                    .with_qos(QoS::ExactlyOnce, Some(id(2)))
                    .with_properties(properties),
            ),
        );
    }

    #[test]
    fn v5_publish_qos2_dup_retained_with_two_subscription_identifiers() {
        let properties = PublishProperties {
            subscription_identifiers: [5, 128]
                .into_iter()
                .map(|n| NonZeroU32::new(n).expect("non-zero"))
                .collect(),
            ..Default::default()
        };
        let mut expected = Publish::new(s("a/b"), Bytes::new())
            .with_qos(QoS::ExactlyOnce, Some(id(0x0100)))
            .with_retain(true)
            .with_properties(properties);
        expected.dup = true;
        assert_vector(
            V5,
            &[
                &[0x3D],             // PUBLISH, DUP, QoS 2, retain
                &[0x0D],             // remaining length 13
                &[0x00, 0x03],       // topic length 3
                b"a/b",              // topic "a/b"
                &[0x01, 0x00],       // packet id 256
                &[0x05],             // property length 5
                &[0x0B, 0x05],       // subscription identifier 5
                &[0x0B, 0x80, 0x01], // subscription identifier 128 (two bytes)
            ],
            Packet::Publish(expected),
        );
    }

    #[test]
    fn v5_publish_with_a_two_byte_property_length() {
        let long_value = [b'x'; 130];
        let mut properties = PublishProperties::default();
        properties.user_properties.push(
            s("k"),
            MqttString::try_from(Bytes::copy_from_slice(&long_value)).expect("valid string"),
        );
        assert_vector(
            V5,
            &[
                &[0x30],             // PUBLISH, QoS 0
                &[0x8D, 0x01],       // remaining length 141: 0x0D + 1 * 128
                &[0x00, 0x01],       // topic length 1
                b"t",                // topic "t"
                &[0x88, 0x01],       // property length 136: 0x08 + 1 * 128
                &[0x26, 0x00, 0x01], // user property, name length 1
                b"k",                //   name "k"
                &[0x00, 0x82],       //   value length 130
                &long_value,         //   value: 130 times "x"; no payload
            ],
            Packet::Publish(Publish::new(s("t"), Bytes::new()).with_properties(properties)),
        );
    }

    #[test]
    fn v5_publish_with_a_wildcard_response_topic_is_not_written() {
        // [MQTT-3.3.2-14] The Response Topic MUST NOT contain wildcards; the
        // decoder refuses such a PUBLISH, so the encoder must not write one.
        let properties = PublishProperties {
            response_topic: Some(s("replies/#")),
            ..Default::default()
        };
        let bad = Packet::Publish(Publish::new(s("a/b"), "hi").with_properties(properties));
        let mut out = BytesMut::new();
        assert_eq!(
            bad.encode(V5, &mut out),
            Err(EncodeError::InvalidTopicName(TopicError::WildcardInName))
        );
        assert!(out.is_empty(), "nothing is written on error");
        assert_eq!(
            bad.encoded_len(V5),
            Err(EncodeError::InvalidTopicName(TopicError::WildcardInName))
        );
        // 3.1.1 has no properties, so there is nothing wrong to write.
        assert_encodes_to(
            V311,
            bad,
            &[
                &[0x30],       // PUBLISH, QoS 0
                &[0x07],       // remaining length 7
                &[0x00, 0x03], // topic length 3
                b"a/b",        // topic "a/b"
                b"hi",         // payload
            ],
        );
    }

    #[test]
    fn v5_publish_in_mosquitto_pubs_property_order_reencodes_canonically() {
        // mosquitto_pub 2.0.11 -V mqttv5 -i cap -t a/b -m hi
        //   -D publish user-property k v -D publish content-type t
        // (captured from a 127.0.0.1 listener that answered its CONNECT):
        // mosquitto_pub sends properties in command-line order, so the user
        // property comes before the content type. The codec writes the
        // content type first (see "The canonical form" in the codec docs).
        let as_sent: &[&[u8]] = &[
            &[0x30],                   // PUBLISH, QoS 0
            &[0x13],                   // remaining length 19
            &[0x00, 0x03],             // topic length 3
            b"a/b",                    // topic "a/b"
            &[0x0B],                   // property length 11
            &[0x26, 0x00, 0x01, b'k'], // user property, name "k"
            &[0x00, 0x01, b'v'],       //   value "v"
            &[0x03, 0x00, 0x01, b't'], // content type "t"
            b"hi",                     // payload
        ];
        let canonical: &[&[u8]] = &[
            &[0x30],                   // PUBLISH, QoS 0
            &[0x13],                   // remaining length 19
            &[0x00, 0x03],             // topic length 3
            b"a/b",                    // topic "a/b"
            &[0x0B],                   // property length 11
            &[0x03, 0x00, 0x01, b't'], // content type "t"
            &[0x26, 0x00, 0x01, b'k'], // user property, name "k"
            &[0x00, 0x01, b'v'],       //   value "v"
            b"hi",                     // payload
        ];
        let mut properties = PublishProperties {
            content_type: Some(s("t")),
            ..Default::default()
        };
        properties.user_properties.push(s("k"), s("v"));
        let expected = Packet::Publish(Publish::new(s("a/b"), "hi").with_properties(properties));

        // decode -> encode -> decode gives the same packet ...
        let wire = Bytes::from(as_sent.concat());
        let decoded = decode_bytes(&mut wire.clone(), V5, usize::MAX);
        assert_eq!(decoded, Ok(Some(expected.clone())), "{}", hex(&wire));
        let mut reencoded = BytesMut::new();
        expected.encode(V5, &mut reencoded).expect("encode");
        let decoded_packet = decoded.ok().flatten().expect("a packet");
        let mut from_decoded = BytesMut::new();
        decoded_packet
            .encode(V5, &mut from_decoded)
            .expect("encode");
        assert_eq!(
            from_decoded, reencoded,
            "a decoded packet encodes as a built one"
        );
        let again = decode_bytes(&mut from_decoded.clone().freeze(), V5, usize::MAX);
        assert_eq!(again, Ok(Some(decoded_packet)));
        // ... whose bytes are the canonical form, not the input ...
        assert_eq!(hex(&from_decoded), hex(&canonical.concat()));
        assert_ne!(hex(&from_decoded), hex(&wire));
        // ... and canonical input round-trips byte for byte (which is also
        // what mosquitto_pub sends with the two -D options swapped).
        assert_vector(V5, canonical, expected);
    }

    // ---- PUBACK, PUBREC, PUBREL, PUBCOMP, MQTT 3.1.1 ----

    #[test]
    fn v311_puback() {
        assert_vector(
            V311,
            &[
                &[0x40],       // PUBACK
                &[0x02],       // remaining length 2
                &[0x00, 0x01], // packet id 1
            ],
            Packet::PubAck(PubAck::new(id(1))),
        );
    }

    #[test]
    fn v311_pubrec_as_sent_by_mosquitto_sub_2_0_x() {
        // mosquitto_sub 2.0.11 -V mqttv311 ... -q 2, receiving a QoS 2 PUBLISH with id 7.
        assert_vector(
            V311,
            &[
                &[0x50],       // PUBREC
                &[0x02],       // remaining length 2
                &[0x00, 0x07], // packet id 7
            ],
            Packet::PubRec(PubRec::new(id(7))),
        );
    }

    #[test]
    fn v311_pubrel() {
        assert_vector(
            V311,
            &[
                &[0x62],       // PUBREL (flags 0010, as [MQTT-3.6.1-1] requires)
                &[0x02],       // remaining length 2
                &[0x00, 0x07], // packet id 7
            ],
            Packet::PubRel(PubRel::new(id(7))),
        );
    }

    #[test]
    fn v311_pubcomp_as_sent_by_mosquitto_sub_2_0_x() {
        // mosquitto_sub 2.0.11 -V mqttv311 ... -q 2, after our PUBREL for id 7.
        assert_vector(
            V311,
            &[
                &[0x70],       // PUBCOMP
                &[0x02],       // remaining length 2
                &[0x00, 0x07], // packet id 7
            ],
            Packet::PubComp(PubComp::new(id(7))),
        );
    }

    #[test]
    fn v311_acks_do_not_carry_5_0_reason_codes_or_properties() {
        let props = AckProperties {
            reason_string: Some(s("ignored")),
            ..Default::default()
        };
        let puback = PubAck {
            packet_id: id(3),
            reason_code: PubAckReasonCode::QuotaExceeded,
            properties: props.clone(),
        };
        assert_encodes_to(
            V311,
            Packet::PubAck(puback),
            &[
                &[0x40],       // PUBACK
                &[0x02],       // remaining length 2
                &[0x00, 0x03], // packet id 3; reason and properties are 5.0 only
            ],
        );
        let pubrel = PubRel {
            packet_id: id(3),
            reason_code: PubRelReasonCode::PacketIdentifierNotFound,
            properties: props,
        };
        assert_encodes_to(
            V311,
            Packet::PubRel(pubrel),
            &[
                &[0x62],       // PUBREL
                &[0x02],       // remaining length 2
                &[0x00, 0x03], // packet id 3
            ],
        );
    }

    // ---- PUBACK, PUBREC, PUBREL, PUBCOMP, MQTT 5.0 ----

    #[test]
    fn v5_puback_remaining_length_2_is_success_without_properties() {
        assert_vector(
            V5,
            &[
                &[0x40],       // PUBACK
                &[0x02],       // remaining length 2: reason and properties omitted
                &[0x00, 0x01], // packet id 1
            ],
            Packet::PubAck(PubAck::new(id(1))),
        );
    }

    #[test]
    fn v5_puback_remaining_length_3_has_a_reason_and_no_property_length() {
        let mut expected = PubAck::new(id(1));
        expected.reason_code = PubAckReasonCode::NoMatchingSubscribers;
        assert_vector(
            V5,
            &[
                &[0x40],       // PUBACK
                &[0x03],       // remaining length 3: no property length
                &[0x00, 0x01], // packet id 1
                &[0x10],       // reason code 0x10: no matching subscribers
            ],
            Packet::PubAck(expected),
        );
    }

    #[test]
    fn v5_puback_remaining_length_4_or_more_has_properties() {
        let mut refused = PubAck::new(id(1));
        refused.reason_code = PubAckReasonCode::NotAuthorized;
        refused.properties.reason_string = Some(s("denied"));
        assert_vector(
            V5,
            &[
                &[0x40],             // PUBACK
                &[0x0D],             // remaining length 13
                &[0x00, 0x01],       // packet id 1
                &[0x87],             // reason code 0x87: not authorized
                &[0x09],             // property length 9
                &[0x1F, 0x00, 0x06], // reason string, length 6
                b"denied",           //   "denied"
            ],
            Packet::PubAck(refused),
        );
        // Success with properties: the reason byte must be written anyway,
        // since the properties come after it.
        let mut ok = PubAck::new(id(2));
        ok.properties.user_properties.push(s("k"), s("v"));
        assert_vector(
            V5,
            &[
                &[0x40],             // PUBACK
                &[0x0B],             // remaining length 11
                &[0x00, 0x02],       // packet id 2
                &[0x00],             // reason code 0x00: success
                &[0x07],             // property length 7
                &[0x26, 0x00, 0x01], // user property, name length 1
                b"k",                //   name "k"
                &[0x00, 0x01],       //   value length 1
                b"v",                //   value "v"
            ],
            Packet::PubAck(ok),
        );
    }

    #[test]
    fn v5_puback_with_explicit_empty_properties_decodes_and_is_written_shorter() {
        // §3.4.2.1 lets the sender omit the reason and property length, but
        // does not oblige it to: the long forms are valid and mean the same.
        assert_decodes_to_shorter(
            V5,
            &[
                &[0x40],       // PUBACK
                &[0x04],       // remaining length 4
                &[0x00, 0x01], // packet id 1
                &[0x00],       // reason code 0x00: success
                &[0x00],       // property length 0
            ],
            Packet::PubAck(PubAck::new(id(1))),
            &[
                &[0x40],       // PUBACK
                &[0x02],       // remaining length 2
                &[0x00, 0x01], // packet id 1
            ],
        );
        let mut expected = PubAck::new(id(1));
        expected.reason_code = PubAckReasonCode::NoMatchingSubscribers;
        assert_decodes_to_shorter(
            V5,
            &[
                &[0x40],       // PUBACK
                &[0x04],       // remaining length 4
                &[0x00, 0x01], // packet id 1
                &[0x10],       // reason code 0x10: no matching subscribers
                &[0x00],       // property length 0
            ],
            Packet::PubAck(expected),
            &[
                &[0x40],       // PUBACK
                &[0x03],       // remaining length 3
                &[0x00, 0x01], // packet id 1
                &[0x10],       // reason code 0x10: no matching subscribers
            ],
        );
    }

    #[test]
    fn v5_pubrec_as_sent_by_mosquitto_sub_2_0_x() {
        // mosquitto_sub 2.0.11 -V mqttv5 ... -q 2, receiving a QoS 2 PUBLISH
        // with id 7: the shortest form.
        assert_vector(
            V5,
            &[
                &[0x50],       // PUBREC
                &[0x02],       // remaining length 2
                &[0x00, 0x07], // packet id 7
            ],
            Packet::PubRec(PubRec::new(id(7))),
        );
    }

    #[test]
    fn v5_pubrec_with_reason_only_and_with_properties() {
        let mut in_use = PubRec::new(id(7));
        in_use.reason_code = PubAckReasonCode::PacketIdentifierInUse;
        assert_vector(
            V5,
            &[
                &[0x50],       // PUBREC
                &[0x03],       // remaining length 3
                &[0x00, 0x07], // packet id 7
                &[0x91],       // reason code 0x91: packet identifier in use
            ],
            Packet::PubRec(in_use),
        );
        let mut full = PubRec::new(id(8));
        full.reason_code = PubAckReasonCode::QuotaExceeded;
        full.properties.reason_string = Some(s("full"));
        full.properties.user_properties.push(s("retry"), s("later"));
        assert_vector(
            V5,
            &[
                &[0x50],             // PUBREC
                &[0x1A],             // remaining length 26
                &[0x00, 0x08],       // packet id 8
                &[0x97],             // reason code 0x97: quota exceeded
                &[0x16],             // property length 22
                &[0x1F, 0x00, 0x04], // reason string, length 4
                b"full",             //   "full"
                &[0x26, 0x00, 0x05], // user property, name length 5
                b"retry",            //   name "retry"
                &[0x00, 0x05],       //   value length 5
                b"later",            //   value "later"
            ],
            Packet::PubRec(full),
        );
    }

    #[test]
    fn v5_pubrel_remaining_lengths_2_3_and_more() {
        assert_vector(
            V5,
            &[
                &[0x62],       // PUBREL
                &[0x02],       // remaining length 2
                &[0x00, 0x07], // packet id 7
            ],
            Packet::PubRel(PubRel::new(id(7))),
        );
        let mut not_found = PubRel::new(id(7));
        not_found.reason_code = PubRelReasonCode::PacketIdentifierNotFound;
        assert_vector(
            V5,
            &[
                &[0x62],       // PUBREL
                &[0x03],       // remaining length 3
                &[0x00, 0x07], // packet id 7
                &[0x92],       // reason code 0x92: packet identifier not found
            ],
            Packet::PubRel(not_found.clone()),
        );
        not_found.properties.reason_string = Some(s("gone"));
        assert_vector(
            V5,
            &[
                &[0x62],             // PUBREL
                &[0x0B],             // remaining length 11
                &[0x00, 0x07],       // packet id 7
                &[0x92],             // reason code 0x92: packet identifier not found
                &[0x07],             // property length 7
                &[0x1F, 0x00, 0x04], // reason string, length 4
                b"gone",             //   "gone"
            ],
            Packet::PubRel(not_found),
        );
    }

    #[test]
    fn v5_pubcomp_as_sent_by_mosquitto_sub_2_0_x_and_with_properties() {
        // mosquitto_sub 2.0.11 -V mqttv5 ... -q 2, after our PUBREL for id 7.
        assert_vector(
            V5,
            &[
                &[0x70],       // PUBCOMP
                &[0x02],       // remaining length 2
                &[0x00, 0x07], // packet id 7
            ],
            Packet::PubComp(PubComp::new(id(7))),
        );
        let mut done = PubComp::new(id(9));
        done.properties.reason_string = Some(s("done"));
        assert_vector(
            V5,
            &[
                &[0x70],             // PUBCOMP
                &[0x0B],             // remaining length 11
                &[0x00, 0x09],       // packet id 9
                &[0x00],             // reason code 0x00: success
                &[0x07],             // property length 7
                &[0x1F, 0x00, 0x04], // reason string, length 4
                b"done",             //   "done"
            ],
            Packet::PubComp(done),
        );
    }

    /// A PUBLISH without properties is written in place when it is small
    /// (whole) or its topic is short (the head), and piece by piece
    /// otherwise. Every topic and payload length around those limits and
    /// around the remaining length's change from two bytes to three, at
    /// each QoS and in both versions, gives the bytes the spec lays out.
    #[test]
    fn publish_bytes_are_the_same_on_each_side_of_the_in_place_limits() {
        fn var_int(mut v: usize) -> Vec<u8> {
            let mut out = Vec::new();
            loop {
                let byte = (v & 0x7F) as u8;
                v >>= 7;
                out.push(if v > 0 { byte | 0x80 } else { byte });
                if v == 0 {
                    return out;
                }
            }
        }
        // 16,376 to 16,384: a remaining length of 16,383 (the last of two
        // bytes) or 16,384 (the first of three) for each QoS and version.
        let payload_lens = (0..=140)
            .chain([200, 1024])
            .chain(16_376..=16_384)
            .chain([70_000]);
        for payload_len in payload_lens {
            for topic_len in [
                1, 15, 16, 32, 33, 50, 51, 52, 53, 54, 57, 58, 59, 60, 61, 62, 63, 64, 65, 100,
                121, 122, 123, 124, 125, 126,
            ] {
                for (qos, packet_id) in [
                    (QoS::AtMostOnce, None),
                    (QoS::ExactlyOnce, Some(id(0x1234))),
                ] {
                    for version in [V311, V5] {
                        let topic: String = (0..topic_len)
                            .map(|i| (b'a' + (i % 26) as u8) as char)
                            .collect();
                        let payload: Vec<u8> = (0..payload_len).map(|i| i as u8).collect();
                        let publish = Publish::new(s(&topic), payload.clone())
                            .with_qos(qos, packet_id)
                            .with_retain(true);

                        let mut body = vec![0, topic_len as u8];
                        body.extend_from_slice(topic.as_bytes());
                        if packet_id.is_some() {
                            body.extend_from_slice(&[0x12, 0x34]);
                        }
                        if version == V5 {
                            body.push(0);
                        }
                        let head_len = 1 + var_int(body.len() + payload_len).len() + body.len();
                        let mut want = vec![0x30 | (qos as u8) << 1 | 1];
                        want.extend(var_int(body.len() + payload_len));
                        want.extend_from_slice(&body);
                        want.extend_from_slice(&payload);

                        let what = format!(
                            "{version:?} QoS {qos:?}, topic {topic_len}, payload {payload_len}"
                        );
                        let mut buf = BytesMut::from(&b"before"[..]);
                        publish.encode(version, &mut buf).unwrap();
                        assert_eq!(buf[..6], *b"before", "{what}");
                        assert_eq!(buf[6..], want[..], "{what}");
                        assert_eq!(publish.encoded_len(version).unwrap(), want.len(), "{what}");

                        let mut head = BytesMut::from(&b"before"[..]);
                        publish.encode_head(version, &mut head).unwrap();
                        assert_eq!(head[6..], want[..head_len], "head: {what}");
                    }
                }
            }
        }
    }
}
