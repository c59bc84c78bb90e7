//! SUBSCRIBE, SUBACK, UNSUBSCRIBE and UNSUBACK (§3.8 to §3.11).

use std::num::NonZeroU16;

use bytes::BytesMut;

use super::error::{DecodeError, EncodeError};
use super::primitives::{
    MAX_VARIABLE_INT, Reader, Scratch, put_u8, put_u16, var_int_len, write_fixed_header_and_u16,
    write_small,
};
use super::properties::{AckProperties, SubscribeProperties, UnsubscribeProperties};
use super::reason::{InvalidReasonCode, SubAckReasonCode, UnsubAckReasonCode};
use super::topics::TopicFilter;
use super::{
    PacketType, ProtocolVersion, QoS, Sizes, props_block_len, read_packet_id, write_props_block,
};
use crate::topic::validate_read_filter;

/// The stack buffer a SUBSCRIBE is assembled in when it fits (see
/// `Subscribe::encode`): a few filters of a few dozen bytes.
const SMALL_SUBSCRIBE: usize = 128;

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

    pub(super) fn read(byte: u8, version: ProtocolVersion) -> Result<Self, DecodeError> {
        // 3.1.1 [MQTT-3.8.3-4] / 5.0 [MQTT-3.8.3-5]: reserved bits MUST be 0.
        let reserved = match version {
            ProtocolVersion::V311 => 0b1111_1100,
            ProtocolVersion::V5 => 0b1100_0000,
        };
        if byte & reserved != 0 {
            return Err(DecodeError::InvalidSubscriptionOptions(byte));
        }
        // 5.0 §3.8.3.1: "It is a Protocol Error if the Maximum QoS field
        // has the value 3" (3.1.1 calls the packet malformed).
        let qos = QoS::from_u8(byte & 0b11).ok_or(DecodeError::InvalidSubscriptionQoS)?;
        let retain_handling = match (byte >> 4) & 0b11 {
            0 => RetainHandling::SendAtSubscribe,
            1 => RetainHandling::SendAtSubscribeIfNew,
            2 => RetainHandling::DoNotSend,
            // "It is a Protocol Error to send a Retain Handling value of 3."
            _ => return Err(DecodeError::InvalidRetainHandling),
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
    pub filters: Vec<(TopicFilter, SubscriptionOptions)>,
    /// 5.0 properties (subscription identifier, user properties).
    pub properties: SubscribeProperties,
}

impl Subscribe {
    /// A SUBSCRIBE for one filter.
    pub fn new(packet_id: NonZeroU16, filter: TopicFilter, options: SubscriptionOptions) -> Self {
        Subscribe {
            packet_id,
            filters: vec![(filter, options)],
            properties: SubscribeProperties::default(),
        }
    }

    pub(super) fn read(r: &mut Reader<'_>, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let packet_id = read_packet_id(r, PacketType::Subscribe)?;
        let properties = match version {
            ProtocolVersion::V5 => SubscribeProperties::read(r, PacketType::Subscribe)?,
            ProtocolVersion::V311 => SubscribeProperties::default(),
        };
        let mut filters = Vec::with_capacity(r.count_entries(1));
        while !r.is_empty() {
            let (filter, plain) = r.filter()?;
            let options = SubscriptionOptions::read(r.u8()?, version)?;
            // Validation includes the `$share/{group}/` form, so what it
            // accepts with that prefix is a shared subscription.
            let shared =
                !plain && validate_read_filter(&filter).map_err(DecodeError::InvalidTopicFilter)?;
            // [MQTT-3.8.3-4] No Local on a shared subscription is a Protocol Error.
            if options.no_local && shared {
                return Err(DecodeError::NoLocalOnSharedSubscription);
            }
            filters.push((TopicFilter::from_checked(filter), options));
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

    /// What the filters' types do not already rule out: each `TopicFilter`
    /// was checked when it was made, so what is left is the list's length
    /// and one rule across a filter and its options.
    fn check_filters(&self, version: ProtocolVersion) -> Result<(), EncodeError> {
        if self.filters.is_empty() {
            return Err(EncodeError::EmptyPayload(PacketType::Subscribe));
        }
        // [MQTT-3.8.3-4] It is a Protocol Error to set No Local on a
        // shared subscription (the option exists only in 5.0).
        let bad = |(f, o): &(TopicFilter, SubscriptionOptions)| o.no_local && f.is_shared();
        if version == ProtocolVersion::V5 && self.filters.iter().any(bad) {
            return Err(EncodeError::NoLocalOnSharedSubscription);
        }
        Ok(())
    }

    pub(super) fn measure(&self, version: ProtocolVersion) -> Result<Sizes, EncodeError> {
        self.check_filters(version)?;
        let mut len = 2;
        let mut props = 0;
        if version == ProtocolVersion::V5 {
            props = self.properties.checked_len()?;
            len += props_block_len(version, props);
        }
        for (filter, _) in &self.filters {
            len += filter.wire_len() + 1;
        }
        Ok(Sizes {
            body: len,
            props,
            will_props: 0,
        })
    }

    /// `Packet::encode` for a SUBSCRIBE.
    ///
    /// One without properties that fits a block of 128 bytes (most: a few
    /// filters of a few dozen bytes) is written there in place, in one
    /// pass (`write_small`). Otherwise it is checked and measured first
    /// (`measure`), so that on error nothing is written; then each filter
    /// is appended with the options byte of the one before and its own
    /// length in one piece.
    #[inline(never)]
    pub(super) fn encode(
        &self,
        version: ProtocolVersion,
        buf: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        if version == ProtocolVersion::V311 || self.properties.is_empty() {
            self.check_filters(version)?;
            if write_small::<SMALL_SUBSCRIBE>(buf, 0x82, |s| self.assemble(version, s)) {
                return Ok(());
            }
        }
        self.encode_measured(version, buf)
    }

    /// The body of a checked SUBSCRIBE with no properties, if it fits.
    #[inline(always)]
    fn assemble(
        &self,
        version: ProtocolVersion,
        scratch: &mut Scratch<'_, SMALL_SUBSCRIBE>,
    ) -> Option<()> {
        scratch.put_u16(self.packet_id.get())?;
        if version == ProtocolVersion::V5 {
            // An empty property block.
            scratch.put_u8(0)?;
        }
        // One loop per version, so the options byte is made without a
        // test of the version for each filter.
        match version {
            ProtocolVersion::V311 => {
                for (filter, options) in &self.filters {
                    let byte = options.to_byte(ProtocolVersion::V311);
                    scratch.put_field(filter.as_bytes(), Some(byte))?;
                }
            }
            ProtocolVersion::V5 => {
                for (filter, options) in &self.filters {
                    let byte = options.to_byte(ProtocolVersion::V5);
                    scratch.put_field(filter.as_bytes(), Some(byte))?;
                }
            }
        }
        Some(())
    }

    /// `encode` for a SUBSCRIBE that does not fit `write_small`'s block.
    fn encode_measured(
        &self,
        version: ProtocolVersion,
        buf: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        let sizes = self.measure(version)?;
        let body = sizes.body;
        if body > MAX_VARIABLE_INT as usize {
            return Err(EncodeError::PacketTooLarge(body));
        }
        buf.reserve(1 + var_int_len(body) + body);
        write_fixed_header_and_u16(buf, 0x82, body, self.packet_id.get());
        if version == ProtocolVersion::V5 {
            write_props_block(buf, sizes.props, |b| self.properties.write(b));
        }
        let mut filters = self.filters.iter();
        let Some((first, options)) = filters.next() else {
            // `measure` refuses a SUBSCRIBE without filters.
            return Ok(());
        };
        let mut options = *options;
        buf.extend_from_slice(&(first.len() as u16).to_be_bytes());
        buf.extend_from_slice(first.as_bytes());
        for (filter, next_options) in filters {
            let [hi, lo] = (filter.len() as u16).to_be_bytes();
            buf.extend_from_slice(&[options.to_byte(version), hi, lo]);
            buf.extend_from_slice(filter.as_bytes());
            options = *next_options;
        }
        buf.extend_from_slice(&[options.to_byte(version)]);
        Ok(())
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
    pub(super) fn read(r: &mut Reader<'_>, version: ProtocolVersion) -> Result<Self, DecodeError> {
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

    pub(super) fn measure(&self, version: ProtocolVersion) -> Result<Sizes, EncodeError> {
        if self.reason_codes.is_empty() {
            return Err(EncodeError::EmptyPayload(PacketType::SubAck));
        }
        let mut len = 2 + self.reason_codes.len();
        let mut props = 0;
        if version == ProtocolVersion::V5 {
            props = self.properties.checked_len()?;
            len += props_block_len(version, props);
        }
        Ok(Sizes {
            body: len,
            props,
            will_props: 0,
        })
    }

    pub(super) fn write_body(&self, version: ProtocolVersion, sizes: &Sizes, buf: &mut BytesMut) {
        put_u16(buf, self.packet_id.get());
        if version == ProtocolVersion::V5 {
            write_props_block(buf, sizes.props, |b| self.properties.write(b));
        }
        for code in &self.reason_codes {
            let byte = match version {
                ProtocolVersion::V311 if code.is_error() => 0x80,
                _ => code.as_u8(),
            };
            put_u8(buf, byte);
        }
    }
}

/// A request to remove one or more subscriptions (§3.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    /// Identifier the UNSUBACK will answer with.
    pub packet_id: NonZeroU16,
    /// The filters to remove, exactly as they were subscribed; at least one.
    pub filters: Vec<TopicFilter>,
    /// 5.0 user properties.
    pub properties: UnsubscribeProperties,
}

impl Unsubscribe {
    pub(super) fn read(r: &mut Reader<'_>, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let packet_id = read_packet_id(r, PacketType::Unsubscribe)?;
        let properties = match version {
            ProtocolVersion::V5 => UnsubscribeProperties::read(r, PacketType::Unsubscribe)?,
            ProtocolVersion::V311 => UnsubscribeProperties::default(),
        };
        let mut filters = Vec::with_capacity(r.count_entries(0));
        while !r.is_empty() {
            let (filter, plain) = r.filter()?;
            if !plain {
                validate_read_filter(&filter).map_err(DecodeError::InvalidTopicFilter)?;
            }
            filters.push(TopicFilter::from_checked(filter));
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

    pub(super) fn measure(&self, version: ProtocolVersion) -> Result<Sizes, EncodeError> {
        if self.filters.is_empty() {
            return Err(EncodeError::EmptyPayload(PacketType::Unsubscribe));
        }
        let mut len = 2;
        let mut props = 0;
        if version == ProtocolVersion::V5 {
            props = self.properties.checked_len()?;
            len += props_block_len(version, props);
        }
        // Each `TopicFilter` was checked when it was made.
        for filter in &self.filters {
            len += filter.wire_len();
        }
        Ok(Sizes {
            body: len,
            props,
            will_props: 0,
        })
    }

    pub(super) fn write_body(&self, version: ProtocolVersion, sizes: &Sizes, buf: &mut BytesMut) {
        put_u16(buf, self.packet_id.get());
        if version == ProtocolVersion::V5 {
            write_props_block(buf, sizes.props, |b| self.properties.write(b));
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
    pub(super) fn read(r: &mut Reader<'_>, version: ProtocolVersion) -> Result<Self, DecodeError> {
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

    pub(super) fn measure(&self, version: ProtocolVersion) -> Result<Sizes, EncodeError> {
        if version == ProtocolVersion::V311 {
            return Ok(Sizes::body(2));
        }
        if self.reason_codes.is_empty() {
            return Err(EncodeError::EmptyPayload(PacketType::UnsubAck));
        }
        let props = self.properties.checked_len()?;
        Ok(Sizes {
            body: 2 + props_block_len(version, props) + self.reason_codes.len(),
            props,
            will_props: 0,
        })
    }

    pub(super) fn write_body(&self, version: ProtocolVersion, sizes: &Sizes, buf: &mut BytesMut) {
        put_u16(buf, self.packet_id.get());
        if version == ProtocolVersion::V311 {
            return;
        }
        write_props_block(buf, sizes.props, |b| self.properties.write(b));
        for code in &self.reason_codes {
            put_u8(buf, code.as_u8());
        }
    }
}

#[cfg(test)]
mod tests {
    //! Byte vectors for SUBSCRIBE, SUBACK, UNSUBSCRIBE and UNSUBACK, written
    //! by hand from the spec (§3.8 to §3.11) or captured from mosquitto
    //! 2.0.11's command-line tools. Each one is checked both ways: the bytes
    //! decode to the struct, the struct encodes to exactly the bytes, and
    //! `encoded_len` agrees.

    #[allow(unused_imports)]
    use crate::codec::test_vectors::{assert_encodes_to, assert_vector, hex, packet_bytes};

    use std::num::{NonZeroU16, NonZeroU32};

    use crate::codec::{
        AckProperties, MqttString, Packet, ProtocolVersion, QoS, RetainHandling, SubAck,
        SubAckReasonCode, Subscribe, SubscribeProperties, SubscriptionOptions, UnsubAck,
        UnsubAckReasonCode, Unsubscribe, UnsubscribeProperties, UserProperties,
    };

    use ProtocolVersion::{V5, V311};

    /// A test string as whichever MQTT string type the caller wants
    /// (`MqttString`, `TopicName` or `TopicFilter`).
    fn s<T: for<'a> TryFrom<&'a str, Error: std::fmt::Debug>>(v: &str) -> T {
        T::try_from(v).expect("a valid test string")
    }

    fn id(n: u16) -> NonZeroU16 {
        NonZeroU16::new(n).expect("non-zero packet id")
    }

    /// A SUBSCRIBE small enough to be assembled on the stack and one too
    /// big for that (written measured) come out the same way: checked
    /// against the layout written out by hand, for bodies on both sides of
    /// the stack buffer's size and of a one-byte remaining length.
    #[test]
    fn small_and_large_subscribes_encode_alike() {
        for v in [V311, V5] {
            for n in [1usize, 2, 5, 9, 12, 20] {
                for len in [1usize, 7, 15, 16, 17, 31, 32, 33, 60] {
                    let filters: Vec<_> = (0..n)
                        .map(|i| {
                            let text: String = (0..len)
                                .map(|j| (b'a' + ((i + j) % 26) as u8) as char)
                                .collect();
                            let qos = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce][i % 3];
                            (s(&text), SubscriptionOptions::new(qos))
                        })
                        .collect();
                    let subscribe = Subscribe {
                        packet_id: id(0x1234),
                        filters,
                        properties: SubscribeProperties::default(),
                    };
                    let mut body = vec![0x12, 0x34];
                    if v == V5 {
                        body.push(0);
                    }
                    for (f, o) in &subscribe.filters {
                        body.extend_from_slice(&(f.len() as u16).to_be_bytes());
                        body.extend_from_slice(f.as_bytes());
                        body.push(o.qos as u8);
                    }
                    let want = packet_bytes(0x82, &body);
                    let packet = Packet::Subscribe(subscribe);
                    let mut buf = bytes::BytesMut::from(&b"before"[..]);
                    packet.encode(v, &mut buf).unwrap();
                    assert_eq!(&buf[..6], b"before");
                    assert_eq!(buf[6..], want[..], "{v} {n} filters of {len}");
                    assert_eq!(packet.encoded_len(v), Ok(want.len()));
                }
            }
        }
    }

    /// The SUBSCRIBE of `mosquitto_sub -t home/+/temperature -t alarm/# -q 2`.
    fn mosquitto_sub_subscribe() -> Packet {
        let qos2 = SubscriptionOptions::new(QoS::ExactlyOnce);
        Packet::Subscribe(Subscribe {
            packet_id: id(1),
            filters: vec![(s("home/+/temperature"), qos2), (s("alarm/#"), qos2)],
            properties: SubscribeProperties::default(),
        })
    }

    // ---- SUBSCRIBE ----

    #[test]
    fn v311_subscribe_as_sent_by_mosquitto_sub_2_0_x() {
        // mosquitto_sub 2.0.11 -V mqttv311 -t home/+/temperature -t alarm/# -q 2
        assert_vector(
            V311,
            &[
                &[0x82],               // SUBSCRIBE (flags 0010, as [MQTT-3.8.1-1] requires)
                &[0x21],               // remaining length 33
                &[0x00, 0x01],         // packet id 1
                &[0x00, 0x12],         // filter length 18
                b"home/+/temperature", // filter
                &[0x02],               // requested QoS 2
                &[0x00, 0x07],         // filter length 7
                b"alarm/#",            // filter
                &[0x02],               // requested QoS 2
            ],
            mosquitto_sub_subscribe(),
        );
    }

    #[test]
    fn v5_subscribe_as_sent_by_mosquitto_sub_2_0_x() {
        // mosquitto_sub 2.0.11 -V mqttv5 -t home/+/temperature -t alarm/# -q 2
        assert_vector(
            V5,
            &[
                &[0x82],               // SUBSCRIBE
                &[0x22],               // remaining length 34
                &[0x00, 0x01],         // packet id 1
                &[0x00],               // property length 0
                &[0x00, 0x12],         // filter length 18
                b"home/+/temperature", // filter
                &[0x02],               // options: QoS 2, no option bits
                &[0x00, 0x07],         // filter length 7
                b"alarm/#",            // filter
                &[0x02],               // options: QoS 2, no option bits
            ],
            mosquitto_sub_subscribe(),
        );
    }

    #[test]
    fn v311_subscribe_with_three_filters_at_qos_0_1_and_2() {
        assert_vector(
            V311,
            &[
                &[0x82],       // SUBSCRIBE
                &[0x10],       // remaining length 16
                &[0x00, 0x0A], // packet id 10
                &[0x00, 0x01], // filter length 1
                b"a",          // filter "a"
                &[0x00],       // requested QoS 0
                &[0x00, 0x03], // filter length 3
                b"b/+",        // filter "b/+"
                &[0x01],       // requested QoS 1
                &[0x00, 0x01], // filter length 1
                b"#",          // filter "#"
                &[0x02],       // requested QoS 2
            ],
            Packet::Subscribe(Subscribe {
                packet_id: id(10),
                filters: vec![
                    (s("a"), SubscriptionOptions::new(QoS::AtMostOnce)),
                    (s("b/+"), SubscriptionOptions::new(QoS::AtLeastOnce)),
                    (s("#"), SubscriptionOptions::new(QoS::ExactlyOnce)),
                ],
                properties: SubscribeProperties::default(),
            }),
        );
    }

    #[test]
    fn v5_subscribe_with_every_option_and_properties() {
        let mut users = UserProperties::new();
        users.push(s("app"), s("web"));
        users.push(s("app"), s("cli"));
        let properties = SubscribeProperties {
            subscription_identifier: NonZeroU32::new(16_384),
            user_properties: users,
        };
        let filters = vec![
            (
                s("a/b"),
                SubscriptionOptions {
                    qos: QoS::AtLeastOnce,
                    no_local: true,
                    ..Default::default()
                },
            ),
            (
                s("c/#"),
                SubscriptionOptions {
                    qos: QoS::ExactlyOnce,
                    retain_as_published: true,
                    retain_handling: RetainHandling::SendAtSubscribeIfNew,
                    ..Default::default()
                },
            ),
            (
                s("$share/g/d/+"),
                SubscriptionOptions {
                    qos: QoS::AtMostOnce,
                    retain_handling: RetainHandling::DoNotSend,
                    ..Default::default()
                },
            ),
            (
                s("+"),
                SubscriptionOptions {
                    qos: QoS::ExactlyOnce,
                    no_local: true,
                    retain_as_published: true,
                    retain_handling: RetainHandling::DoNotSend,
                },
            ),
        ];
        assert_vector(
            V5,
            &[
                &[0x82],                   // SUBSCRIBE
                &[0x3C],                   // remaining length 60
                &[0x00, 0x10],             // packet id 16
                &[0x1A],                   // property length 26
                &[0x0B, 0x80, 0x80, 0x01], // subscription identifier 16384 (three bytes)
                &[0x26, 0x00, 0x03],       // user property, name length 3
                b"app",                    //   name "app"
                &[0x00, 0x03],             //   value length 3
                b"web",                    //   value "web"
                &[0x26, 0x00, 0x03],       // user property, name length 3
                b"app",                    //   name "app" again
                &[0x00, 0x03],             //   value length 3
                b"cli",                    //   value "cli"
                &[0x00, 0x03],             // filter length 3
                b"a/b",                    // filter "a/b"
                &[0x05],                   // options: QoS 1, no local
                &[0x00, 0x03],             // filter length 3
                b"c/#",                    // filter "c/#"
                &[0x1A],                   // options: QoS 2, retain as published, retain handling 1
                &[0x00, 0x0C],             // filter length 12
                b"$share/g/d/+",           // shared subscription: group "g", filter "d/+"
                &[0x20],                   // options: QoS 0, retain handling 2
                &[0x00, 0x01],             // filter length 1
                b"+",                      // filter "+"
                &[0x2E], // options: QoS 2, no local, retain as published, retain handling 2
            ],
            Packet::Subscribe(Subscribe {
                packet_id: id(16),
                filters,
                properties,
            }),
        );
    }

    #[test]
    fn v311_subscribe_does_not_carry_5_0_options() {
        let mut subscribe = Subscribe::new(
            id(2),
            s("a"),
            SubscriptionOptions {
                qos: QoS::AtLeastOnce,
                no_local: true,
                retain_as_published: true,
                retain_handling: RetainHandling::DoNotSend,
            },
        );
        subscribe.properties.subscription_identifier = NonZeroU32::new(1);
        assert_encodes_to(
            V311,
            Packet::Subscribe(subscribe),
            &[
                &[0x82],       // SUBSCRIBE
                &[0x06],       // remaining length 6
                &[0x00, 0x02], // packet id 2; no properties in 3.1.1
                &[0x00, 0x01], // filter length 1
                b"a",          // filter "a"
                &[0x01],       // requested QoS 1; the other bits are reserved in 3.1.1
            ],
        );
    }

    // ---- SUBACK ----

    #[test]
    fn v311_suback_with_grants_and_a_failure() {
        assert_vector(
            V311,
            &[
                &[0x90],       // SUBACK
                &[0x06],       // remaining length 6
                &[0x00, 0x0A], // packet id 10
                &[0x00],       // granted QoS 0
                &[0x01],       // granted QoS 1
                &[0x02],       // granted QoS 2
                &[0x80],       // failure
            ],
            Packet::SubAck(SubAck {
                packet_id: id(10),
                reason_codes: vec![
                    SubAckReasonCode::GrantedQoS0,
                    SubAckReasonCode::GrantedQoS1,
                    SubAckReasonCode::GrantedQoS2,
                    SubAckReasonCode::UnspecifiedError,
                ],
                properties: AckProperties::default(),
            }),
        );
    }

    #[test]
    fn v311_suback_writes_every_5_0_failure_as_0x80() {
        let properties = AckProperties {
            reason_string: Some(s("not in 3.1.1")),
            ..Default::default()
        };
        assert_encodes_to(
            V311,
            Packet::SubAck(SubAck {
                packet_id: id(3),
                reason_codes: vec![
                    SubAckReasonCode::GrantedQoS1,
                    SubAckReasonCode::NotAuthorized,
                    SubAckReasonCode::WildcardSubscriptionsNotSupported,
                ],
                properties,
            }),
            &[
                &[0x90],       // SUBACK
                &[0x05],       // remaining length 5
                &[0x00, 0x03], // packet id 3; no properties in 3.1.1
                &[0x01],       // granted QoS 1
                &[0x80],       // failure (was 0x87 not authorized)
                &[0x80],       // failure (was 0xA2 wildcards not supported)
            ],
        );
    }

    #[test]
    fn v5_suback_granting_qos2_twice_as_the_real_client_test_sends() {
        assert_vector(
            V5,
            &[
                &[0x90],       // SUBACK
                &[0x05],       // remaining length 5
                &[0x00, 0x01], // packet id 1
                &[0x00],       // property length 0
                &[0x02],       // granted QoS 2
                &[0x02],       // granted QoS 2
            ],
            Packet::SubAck(SubAck {
                packet_id: id(1),
                reason_codes: vec![SubAckReasonCode::GrantedQoS2; 2],
                properties: AckProperties::default(),
            }),
        );
    }

    #[test]
    fn v5_suback_with_every_failure_code_and_properties() {
        use SubAckReasonCode::*;
        let properties = AckProperties {
            reason_string: Some(s("partial")),
            user_properties: [(s::<MqttString>("n"), s::<MqttString>("2"))]
                .into_iter()
                .collect(),
        };
        assert_vector(
            V5,
            &[
                &[0x90],             // SUBACK
                &[0x20],             // remaining length 32
                &[0x00, 0x10],       // packet id 16
                &[0x11],             // property length 17
                &[0x1F, 0x00, 0x07], // reason string, length 7
                b"partial",          //   "partial"
                &[0x26, 0x00, 0x01], // user property, name length 1
                b"n",                //   name "n"
                &[0x00, 0x01],       //   value length 1
                b"2",                //   value "2"
                &[0x01],             // granted QoS 1
                &[0x80],             // unspecified error
                &[0x83],             // implementation specific error
                &[0x87],             // not authorized
                &[0x8F],             // topic filter invalid
                &[0x91],             // packet identifier in use
                &[0x97],             // quota exceeded
                &[0x9E],             // shared subscriptions not supported
                &[0xA1],             // subscription identifiers not supported
                &[0xA2],             // wildcard subscriptions not supported
                &[0x00],             // granted QoS 0
                &[0x02],             // granted QoS 2
            ],
            Packet::SubAck(SubAck {
                packet_id: id(16),
                reason_codes: vec![
                    GrantedQoS1,
                    UnspecifiedError,
                    ImplementationSpecificError,
                    NotAuthorized,
                    TopicFilterInvalid,
                    PacketIdentifierInUse,
                    QuotaExceeded,
                    SharedSubscriptionsNotSupported,
                    SubscriptionIdentifiersNotSupported,
                    WildcardSubscriptionsNotSupported,
                    GrantedQoS0,
                    GrantedQoS2,
                ],
                properties,
            }),
        );
    }

    // ---- UNSUBSCRIBE ----

    #[test]
    fn v311_unsubscribe_with_two_filters() {
        assert_vector(
            V311,
            &[
                &[0xA2],       // UNSUBSCRIBE (flags 0010, as [MQTT-3.10.1-1] requires)
                &[0x0A],       // remaining length 10
                &[0x00, 0x0B], // packet id 11
                &[0x00, 0x03], // filter length 3
                b"a/b",        // filter "a/b"
                &[0x00, 0x01], // filter length 1
                b"#",          // filter "#"
            ],
            Packet::Unsubscribe(Unsubscribe {
                packet_id: id(11),
                filters: vec![s("a/b"), s("#")],
                properties: UnsubscribeProperties::default(),
            }),
        );
    }

    #[test]
    fn v5_unsubscribe_with_user_property_and_shared_filter() {
        let mut properties = UnsubscribeProperties::default();
        properties.user_properties.push(s("reason"), s("done"));
        assert_vector(
            V5,
            &[
                &[0xA2],               // UNSUBSCRIBE
                &[0x32],               // remaining length 50
                &[0x00, 0x0C],         // packet id 12
                &[0x0F],               // property length 15
                &[0x26, 0x00, 0x06],   // user property, name length 6
                b"reason",             //   name "reason"
                &[0x00, 0x04],         //   value length 4
                b"done",               //   value "done"
                &[0x00, 0x12],         // filter length 18
                b"home/+/temperature", // filter
                &[0x00, 0x0A],         // filter length 10
                b"$share/g/x",         // shared subscription: group "g", filter "x"
            ],
            Packet::Unsubscribe(Unsubscribe {
                packet_id: id(12),
                filters: vec![s("home/+/temperature"), s("$share/g/x")],
                properties,
            }),
        );
    }

    // ---- UNSUBACK ----

    #[test]
    fn v311_unsuback() {
        assert_vector(
            V311,
            &[
                &[0xB0],       // UNSUBACK
                &[0x02],       // remaining length 2
                &[0x00, 0x0B], // packet id 11; 3.1.1 has no payload
            ],
            Packet::UnsubAck(UnsubAck {
                packet_id: id(11),
                reason_codes: Vec::new(),
                properties: AckProperties::default(),
            }),
        );
    }

    #[test]
    fn v5_unsuback_minimal() {
        assert_vector(
            V5,
            &[
                &[0xB0],       // UNSUBACK
                &[0x04],       // remaining length 4
                &[0x00, 0x0C], // packet id 12
                &[0x00],       // property length 0
                &[0x00],       // success
            ],
            Packet::UnsubAck(UnsubAck {
                packet_id: id(12),
                reason_codes: vec![UnsubAckReasonCode::Success],
                properties: AckProperties::default(),
            }),
        );
    }

    #[test]
    fn v5_unsuback_with_every_reason_code_and_a_reason_string() {
        use UnsubAckReasonCode::*;
        let properties = AckProperties {
            reason_string: Some(s("done")),
            ..Default::default()
        };
        assert_vector(
            V5,
            &[
                &[0xB0],             // UNSUBACK
                &[0x11],             // remaining length 17
                &[0x00, 0x0C],       // packet id 12
                &[0x07],             // property length 7
                &[0x1F, 0x00, 0x04], // reason string, length 4
                b"done",             //   "done"
                &[0x00],             // success
                &[0x11],             // no subscription existed
                &[0x80],             // unspecified error
                &[0x83],             // implementation specific error
                &[0x87],             // not authorized
                &[0x8F],             // topic filter invalid
                &[0x91],             // packet identifier in use
            ],
            Packet::UnsubAck(UnsubAck {
                packet_id: id(12),
                reason_codes: vec![
                    Success,
                    NoSubscriptionExisted,
                    UnspecifiedError,
                    ImplementationSpecificError,
                    NotAuthorized,
                    TopicFilterInvalid,
                    PacketIdentifierInUse,
                ],
                properties,
            }),
        );
    }
}
