//! Property tests of the codec: arbitrary valid packets of every type, in
//! both protocol versions, survive encode → decode unchanged; decoded bytes
//! re-encode to themselves; a stream decodes the same whatever the chunking;
//! and no input, however mangled, makes `decode` panic.
//!
//! The strategies below build only packets the specs allow, so any failure
//! is a codec bug (or a strategy that is too generous; the comments say which
//! rule each restriction follows).

use std::num::{NonZeroU16, NonZeroU32};

use bytes::{Bytes, BytesMut};
use plover::codec::{
    AckProperties, Auth, AuthProperties, AuthReasonCode, ConnAck, ConnAckProperties, Connect,
    ConnectProperties, ConnectReasonCode, Disconnect, DisconnectProperties, DisconnectReasonCode,
    LastWill, MAX_VARIABLE_INT, MqttString, Packet, PayloadFormat, ProtocolVersion, PubAck,
    PubAckReasonCode, PubComp, PubRec, PubRel, PubRelReasonCode, Publish, PublishProperties, QoS,
    RetainHandling, SubAck, SubAckReasonCode, Subscribe, SubscribeProperties, SubscriptionOptions,
    TopicFilter, TopicName, UnsubAck, UnsubAckReasonCode, Unsubscribe, UnsubscribeProperties,
    UserProperties, WillProperties, decode, decode_bytes,
};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::Union;

const V3: ProtocolVersion = ProtocolVersion::V311;
const V5: ProtocolVersion = ProtocolVersion::V5;

// ---------------------------------------------------------------------------
// Primitive values
// ---------------------------------------------------------------------------

/// `s` as an `MqttString`, `TopicName` or `TopicFilter`, as the caller needs.
fn mqtt<T: TryFrom<String, Error: std::fmt::Debug>>(s: String) -> T {
    T::try_from(s).expect("strategies only build valid MQTT strings")
}

/// Any MQTT string: every character but U+0000 [MQTT-1.5.4-2], control
/// characters included (a receiver MAY refuse those, this codec does not).
fn any_string() -> impl Strategy<Value = MqttString> {
    "[^\\x00]{0,12}".prop_map(mqtt)
}

fn binary(max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..=max).prop_map(Bytes::from)
}

fn packet_id() -> impl Strategy<Value = NonZeroU16> {
    (1..=u16::MAX).prop_map(|n| NonZeroU16::new(n).expect("range starts at 1"))
}

/// Subscription Identifiers are variable byte integers from 1 (§3.8.2.1.2).
fn subscription_id() -> impl Strategy<Value = NonZeroU32> {
    // One range per encoded length (1 to 4 bytes), so each is exercised.
    prop_oneof![
        1..=127u32,
        128..=16_383u32,
        16_384..=2_097_151u32,
        2_097_152..=MAX_VARIABLE_INT,
        Just(MAX_VARIABLE_INT),
    ]
    .prop_map(|n| NonZeroU32::new(n).expect("ranges start at 1"))
}

fn qos() -> impl Strategy<Value = QoS> {
    select(vec![QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce])
}

fn version() -> impl Strategy<Value = ProtocolVersion> {
    select(vec![V3, V5])
}

// ---------------------------------------------------------------------------
// Topic names and filters (§4.7)
// ---------------------------------------------------------------------------

/// One level of a topic: printable characters other than the separator, the
/// wildcards and U+0000; possibly empty (`a//b` has an empty level).
fn level() -> impl Strategy<Value = String> {
    "[^\\p{C}+#/]{0,6}"
}

/// A topic name: 1 to 5 levels, sometimes a `$` topic such as `$SYS/...`.
/// As a `TopicName` for a PUBLISH or will, an `MqttString` for a
/// Response Topic property.
fn topic_name<T>() -> impl Strategy<Value = T>
where
    T: TryFrom<String, Error: std::fmt::Debug> + std::fmt::Debug,
{
    (any::<bool>(), vec(level(), 1..=5)).prop_map(|(system, levels)| {
        let mut name = levels.join("/");
        if system {
            name.insert(0, '$');
        }
        // [MQTT-4.7.3-1] at least one character.
        if name.is_empty() {
            name.push('t');
        }
        mqtt(name)
    })
}

/// A filter without the `$share/` prefix: literal levels and `+` anywhere,
/// `#` only as the whole last level [MQTT-4.7.1-2], [MQTT-4.7.1-3].
fn plain_filter() -> impl Strategy<Value = String> {
    let one = prop_oneof![3 => level().prop_map(Some), 1 => Just(None)];
    (vec(one, 0..=5), any::<bool>(), any::<bool>()).prop_map(|(levels, multi, system)| {
        let mut parts: Vec<String> = levels
            .into_iter()
            .map(|l| l.unwrap_or_else(|| "+".to_owned()))
            .collect();
        if multi || parts.is_empty() {
            parts.push("#".to_owned());
        }
        if system && parts[0] != "+" && parts[0] != "#" {
            parts[0].insert(0, '$');
        }
        let mut filter = parts.join("/");
        if filter.is_empty() {
            filter.push('f');
        }
        // Literal levels "$share" + anything would read as a shared
        // subscription with other rules; keep plain filters plain.
        if filter.starts_with("$share/") {
            filter.insert(0, 'x');
        }
        filter
    })
}

/// A topic filter and whether it is a shared subscription
/// (`$share/{ShareName}/{filter}`, §4.8.2).
fn filter() -> impl Strategy<Value = (TopicFilter, bool)> {
    prop_oneof![
        4 => plain_filter().prop_map(|f| (mqtt(f), false)),
        1 => ("[^\\p{C}+#/]{1,6}", plain_filter())
            .prop_map(|(group, f)| (mqtt(format!("$share/{group}/{f}")), true)),
    ]
}

// ---------------------------------------------------------------------------
// 5.0 properties
// ---------------------------------------------------------------------------

/// 0 to 3 pairs, names often repeated (User Property may appear many times
/// with the same name, §3.1.2.11.8).
fn user_properties() -> impl Strategy<Value = UserProperties> {
    let name = prop_oneof![
        2 => select(vec!["k", "dup", "ünï"]).prop_map(MqttString::from_static),
        1 => any_string(),
    ];
    vec((name, any_string()), 0..4).prop_map(|pairs| pairs.into_iter().collect())
}

fn payload_format() -> impl Strategy<Value = PayloadFormat> {
    select(vec![PayloadFormat::Unspecified, PayloadFormat::Utf8])
}

/// An Authentication Method with optional Authentication Data: data alone is
/// a Protocol Error (§3.1.2.11.10).
fn authentication() -> impl Strategy<Value = Option<(MqttString, Option<Bytes>)>> {
    option::of((any_string(), option::of(binary(16))))
}

fn connect_properties() -> impl Strategy<Value = ConnectProperties> {
    (
        option::of(any::<u32>()),
        option::of(1..=u16::MAX),
        option::of(1..=u32::MAX),
        option::of(any::<u16>()),
        option::of(any::<bool>()),
        option::of(any::<bool>()),
        authentication(),
        user_properties(),
    )
        .prop_map(
            |(expiry, receive, max_size, alias_max, rri, rpi, auth, users)| {
                let (method, data) = auth.map_or((None, None), |(m, d)| (Some(m), d));
                ConnectProperties {
                    session_expiry_interval: expiry,
                    receive_maximum: receive,
                    maximum_packet_size: max_size,
                    topic_alias_maximum: alias_max,
                    request_response_information: rri,
                    request_problem_information: rpi,
                    authentication_method: method,
                    authentication_data: data,
                    user_properties: users,
                }
            },
        )
}

fn will_properties() -> impl Strategy<Value = WillProperties> {
    (
        option::of(any::<u32>()),
        option::of(payload_format()),
        option::of(any::<u32>()),
        option::of(any_string()),
        option::of(topic_name()),
        option::of(binary(16)),
        user_properties(),
    )
        .prop_map(
            |(delay, format, expiry, content, response, correlation, users)| WillProperties {
                will_delay_interval: delay,
                payload_format_indicator: format,
                message_expiry_interval: expiry,
                content_type: content,
                response_topic: response,
                correlation_data: correlation,
                user_properties: users,
            },
        )
}

fn connack_properties() -> impl Strategy<Value = ConnAckProperties> {
    let limits = (
        option::of(any::<u32>()),
        option::of(1..=u16::MAX),
        // Maximum QoS is 0 or 1; absent means 2 (§3.2.2.3.4).
        option::of(select(vec![QoS::AtMostOnce, QoS::AtLeastOnce])),
        option::of(any::<bool>()),
        option::of(1..=u32::MAX),
        option::of(any::<u16>()),
        option::of(any::<u16>()),
    );
    let answers = (
        option::of(any_string()),
        option::of(any_string()),
        option::of(any::<bool>()),
        option::of(any::<bool>()),
        option::of(any::<bool>()),
        option::of(any_string()),
        option::of(any_string()),
        authentication(),
        user_properties(),
    );
    (limits, answers).prop_map(
        |(
            (expiry, receive, max_qos, retain, max_size, alias_max, keep_alive),
            (assigned, reason, wildcard, sub_ids, shared, response, reference, auth, users),
        )| {
            let (method, data) = auth.map_or((None, None), |(m, d)| (Some(m), d));
            ConnAckProperties {
                session_expiry_interval: expiry,
                receive_maximum: receive,
                maximum_qos: max_qos,
                retain_available: retain,
                maximum_packet_size: max_size,
                assigned_client_identifier: assigned,
                topic_alias_maximum: alias_max,
                reason_string: reason,
                wildcard_subscription_available: wildcard,
                subscription_identifiers_available: sub_ids,
                shared_subscription_available: shared,
                server_keep_alive: keep_alive,
                response_information: response,
                server_reference: reference,
                authentication_method: method,
                authentication_data: data,
                user_properties: users,
            }
        },
    )
}

fn publish_properties() -> impl Strategy<Value = PublishProperties> {
    (
        option::of(payload_format()),
        option::of(any::<u32>()),
        // [MQTT-3.3.2-8] a Topic Alias is never 0.
        option::of(1..=u16::MAX),
        // [MQTT-3.3.2-14] a Response Topic is a topic name.
        option::of(topic_name()),
        option::of(binary(16)),
        option::of(any_string()),
        vec(subscription_id(), 0..=3),
        user_properties(),
    )
        .prop_map(
            |(format, expiry, alias, response, correlation, content, ids, users)| {
                PublishProperties {
                    payload_format_indicator: format,
                    message_expiry_interval: expiry,
                    topic_alias: alias,
                    response_topic: response,
                    correlation_data: correlation,
                    content_type: content,
                    subscription_identifiers: ids.into_iter().collect(),
                    user_properties: users,
                }
            },
        )
}

fn ack_properties() -> impl Strategy<Value = AckProperties> {
    (option::of(any_string()), user_properties()).prop_map(|(reason, users)| AckProperties {
        reason_string: reason,
        user_properties: users,
    })
}

fn subscribe_properties() -> impl Strategy<Value = SubscribeProperties> {
    (option::of(subscription_id()), user_properties()).prop_map(|(id, users)| SubscribeProperties {
        subscription_identifier: id,
        user_properties: users,
    })
}

fn disconnect_properties() -> impl Strategy<Value = DisconnectProperties> {
    (
        option::of(any::<u32>()),
        option::of(any_string()),
        option::of(any_string()),
        user_properties(),
    )
        .prop_map(|(expiry, reason, reference, users)| DisconnectProperties {
            session_expiry_interval: expiry,
            reason_string: reason,
            server_reference: reference,
            user_properties: users,
        })
}

// ---------------------------------------------------------------------------
// Packets
// ---------------------------------------------------------------------------

fn will(v: ProtocolVersion) -> BoxedStrategy<LastWill> {
    let properties = match v {
        V5 => will_properties().boxed(),
        _ => Just(Default::default()).boxed(),
    };
    (topic_name(), binary(64), qos(), any::<bool>(), properties)
        .prop_map(|(topic, payload, qos, retain, properties)| LastWill {
            topic,
            payload,
            qos,
            retain,
            properties,
        })
        .boxed()
}

fn connect(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    let properties = match v {
        V5 => connect_properties().boxed(),
        _ => Just(ConnectProperties::default()).boxed(),
    };
    (
        any::<bool>(),
        any::<u16>(),
        any_string(),
        option::of(will(v)),
        option::of(any_string()),
        option::of(binary(16)),
        properties,
    )
        .prop_map(
            move |(clean_start, keep_alive, client_id, will, username, password, properties)| {
                // [MQTT-3.1.2-22] a 3.1.1 password needs a user name; 5.0 lifted that.
                let password = if v == V3 && username.is_none() {
                    None
                } else {
                    password
                };
                Packet::Connect(Box::new(Connect {
                    protocol: v,
                    clean_start,
                    keep_alive,
                    client_id,
                    will,
                    username,
                    password,
                    properties,
                }))
            },
        )
        .boxed()
}

fn connack(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    let (codes, properties) = match v {
        V5 => (
            ConnectReasonCode::ALL.to_vec(),
            connack_properties().boxed(),
        ),
        _ => (
            ConnectReasonCode::ALL
                .iter()
                .copied()
                .filter(|c| c.to_v311().is_some())
                .collect(),
            Just(ConnAckProperties::default()).boxed(),
        ),
    };
    (any::<bool>(), select(codes), properties)
        .prop_map(|(session_present, reason_code, properties)| {
            Packet::ConnAck(Box::new(ConnAck {
                // [MQTT-3.2.2-4] (3.1.1) / [MQTT-3.2.2-6] (5.0): a refusal has Session Present 0.
                session_present: session_present && reason_code == ConnectReasonCode::Success,
                reason_code,
                properties,
            }))
        })
        .boxed()
}

fn publish(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    let properties = match v {
        V5 => publish_properties().boxed(),
        _ => Just(PublishProperties::default()).boxed(),
    };
    (
        qos(),
        any::<bool>(),
        any::<bool>(),
        topic_name(),
        any::<bool>(),
        packet_id(),
        properties,
        binary(2047),
    )
        .prop_map(
            |(qos, dup, retain, topic, alias_only, id, properties, payload)| {
                // 5.0 §3.3.2.1: the topic may be empty when a Topic Alias stands in.
                let topic = if alias_only && properties.topic_alias.is_some() {
                    TopicName::empty()
                } else {
                    topic
                };
                let qos0 = qos == QoS::AtMostOnce;
                Packet::Publish(Publish {
                    // [MQTT-3.3.1-2] no DUP on QoS 0.
                    dup: dup && !qos0,
                    qos,
                    retain,
                    topic,
                    // A packet identifier exactly when QoS > 0 (§2.2.1).
                    packet_id: (!qos0).then_some(id),
                    properties,
                    payload,
                })
            },
        )
        .boxed()
}

/// PUBACK, PUBREC, PUBREL or PUBCOMP; 3.1.1 carries only the packet id.
fn publish_response(v: ProtocolVersion, which: u8) -> BoxedStrategy<Packet> {
    let properties = match v {
        V5 => ack_properties().boxed(),
        _ => Just(AckProperties::default()).boxed(),
    };
    let (ack_codes, rel_codes) = match v {
        V5 => (
            PubAckReasonCode::ALL.to_vec(),
            PubRelReasonCode::ALL.to_vec(),
        ),
        _ => (
            vec![PubAckReasonCode::Success],
            vec![PubRelReasonCode::Success],
        ),
    };
    (
        packet_id(),
        select(ack_codes),
        select(rel_codes),
        properties,
    )
        .prop_map(move |(packet_id, ack, rel, properties)| match which {
            0 => Packet::PubAck(PubAck {
                packet_id,
                reason_code: ack,
                properties,
            }),
            1 => Packet::PubRec(PubRec {
                packet_id,
                reason_code: ack,
                properties,
            }),
            2 => Packet::PubRel(PubRel {
                packet_id,
                reason_code: rel,
                properties,
            }),
            _ => Packet::PubComp(PubComp {
                packet_id,
                reason_code: rel,
                properties,
            }),
        })
        .boxed()
}

fn subscription_options(v: ProtocolVersion) -> BoxedStrategy<SubscriptionOptions> {
    match v {
        // 3.1.1 has only the requested QoS; the other bits are reserved.
        V3 => qos().prop_map(SubscriptionOptions::new).boxed(),
        _ => (
            qos(),
            any::<bool>(),
            any::<bool>(),
            select(vec![
                RetainHandling::SendAtSubscribe,
                RetainHandling::SendAtSubscribeIfNew,
                RetainHandling::DoNotSend,
            ]),
        )
            .prop_map(
                |(qos, no_local, retain_as_published, retain_handling)| SubscriptionOptions {
                    qos,
                    no_local,
                    retain_as_published,
                    retain_handling,
                },
            )
            .boxed(),
    }
}

fn subscribe(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    let properties = match v {
        V5 => subscribe_properties().boxed(),
        _ => Just(SubscribeProperties::default()).boxed(),
    };
    let entry = (filter(), subscription_options(v)).prop_map(|((filter, shared), mut options)| {
        // [MQTT-3.8.3-4] No Local on a shared subscription is a Protocol Error.
        if shared {
            options.no_local = false;
        }
        (filter, options)
    });
    (packet_id(), vec(entry, 1..=4), properties)
        .prop_map(|(packet_id, filters, properties)| {
            Packet::Subscribe(Subscribe {
                packet_id,
                filters,
                properties,
            })
        })
        .boxed()
}

fn suback(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    let (codes, properties) = match v {
        V5 => (SubAckReasonCode::ALL.to_vec(), ack_properties().boxed()),
        // 3.1.1 §3.9.3: 0x00, 0x01, 0x02 and 0x80 only.
        _ => (
            vec![
                SubAckReasonCode::GrantedQoS0,
                SubAckReasonCode::GrantedQoS1,
                SubAckReasonCode::GrantedQoS2,
                SubAckReasonCode::UnspecifiedError,
            ],
            Just(AckProperties::default()).boxed(),
        ),
    };
    (packet_id(), vec(select(codes), 1..=4), properties)
        .prop_map(|(packet_id, reason_codes, properties)| {
            Packet::SubAck(SubAck {
                packet_id,
                reason_codes,
                properties,
            })
        })
        .boxed()
}

fn unsubscribe(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    let users = match v {
        V5 => user_properties().boxed(),
        _ => Just(UserProperties::default()).boxed(),
    };
    (
        packet_id(),
        vec(filter().prop_map(|(f, _)| f), 1..=4),
        users,
    )
        .prop_map(|(packet_id, filters, user_properties)| {
            Packet::Unsubscribe(Unsubscribe {
                packet_id,
                filters,
                properties: UnsubscribeProperties { user_properties },
            })
        })
        .boxed()
}

fn unsuback(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    match v {
        V5 => (
            packet_id(),
            vec(select(UnsubAckReasonCode::ALL), 1..=4),
            ack_properties(),
        )
            .prop_map(|(packet_id, reason_codes, properties)| {
                Packet::UnsubAck(UnsubAck {
                    packet_id,
                    reason_codes,
                    properties,
                })
            })
            .boxed(),
        // 3.1.1's UNSUBACK is a packet identifier and nothing else.
        _ => packet_id()
            .prop_map(|packet_id| {
                Packet::UnsubAck(UnsubAck {
                    packet_id,
                    reason_codes: Vec::new(),
                    properties: AckProperties::default(),
                })
            })
            .boxed(),
    }
}

fn disconnect(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    match v {
        V5 => (select(DisconnectReasonCode::ALL), disconnect_properties())
            .prop_map(|(reason_code, properties)| {
                Packet::Disconnect(Disconnect {
                    reason_code,
                    properties,
                })
            })
            .boxed(),
        _ => Just(Packet::Disconnect(Disconnect::default())).boxed(),
    }
}

/// 5.0 only. An AUTH is either the bare Success (remaining length 0) or
/// carries its Authentication Method (§3.15.2.2.2: "It is a Protocol Error to
/// omit the Authentication Method").
fn auth() -> BoxedStrategy<Packet> {
    let full = (
        select(AuthReasonCode::ALL),
        any_string(),
        option::of(binary(32)),
        option::of(any_string()),
        user_properties(),
    )
        .prop_map(|(reason_code, method, data, reason, users)| {
            Packet::Auth(Auth {
                reason_code,
                properties: AuthProperties {
                    authentication_method: Some(method),
                    authentication_data: data,
                    reason_string: reason,
                    user_properties: users,
                },
            })
        });
    prop_oneof![
        1 => Just(Packet::Auth(Auth::new(AuthReasonCode::Success))),
        4 => full,
    ]
    .boxed()
}

/// One strategy per packet type the version has, in packet type order.
fn each_type(v: ProtocolVersion) -> Vec<BoxedStrategy<Packet>> {
    let mut all = vec![
        connect(v),
        connack(v),
        publish(v),
        publish_response(v, 0),
        publish_response(v, 1),
        publish_response(v, 2),
        publish_response(v, 3),
        subscribe(v),
        suback(v),
        unsubscribe(v),
        unsuback(v),
        Just(Packet::PingReq).boxed(),
        Just(Packet::PingResp).boxed(),
        disconnect(v),
    ];
    if v == V5 {
        all.push(auth());
    }
    all
}

/// Any one packet of version `v`.
fn any_packet(v: ProtocolVersion) -> Union<BoxedStrategy<Packet>> {
    Union::new(each_type(v))
}

/// A version and one packet of every type it has.
fn one_of_each_type() -> impl Strategy<Value = (ProtocolVersion, Vec<Packet>)> {
    version().prop_flat_map(|v| (Just(v), each_type(v)))
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn encode(p: &Packet, v: ProtocolVersion) -> Result<BytesMut, TestCaseError> {
    let mut buf = BytesMut::new();
    p.encode(v, &mut buf)
        .map_err(|e| TestCaseError::fail(format!("encoding {p:?} in {v}: {e}")))?;
    Ok(buf)
}

/// Decodes every packet in `buf`, which must hold whole packets only.
fn decode_all(
    buf: &mut BytesMut,
    v: ProtocolVersion,
    max: usize,
) -> Result<Vec<Packet>, TestCaseError> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        match decode(buf, v, max) {
            Ok(Some(p)) => out.push(p),
            other => {
                return Err(TestCaseError::fail(format!(
                    "{} bytes left, decode gave {other:?}",
                    buf.len()
                )));
            }
        }
    }
    Ok(out)
}

/// Overwrites bytes of `wire`: each edit is (position modulo the length, new byte).
fn mutate(wire: &mut [u8], edits: &[(usize, u8)]) {
    if wire.is_empty() {
        return;
    }
    let len = wire.len();
    for &(at, byte) in edits {
        wire[at % len] = byte;
    }
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    })]

    /// decode(encode(p)) == p, the whole buffer is consumed, and
    /// `encoded_len` is exactly the number of bytes written.
    #[test]
    fn encode_then_decode_is_the_identity((v, packets) in one_of_each_type()) {
        for packet in packets {
            let mut buf = encode(&packet, v)?;
            prop_assert_eq!(packet.encoded_len(v), Ok(buf.len()), "encoded_len of {:?}", packet);
            let decoded = decode(&mut buf, v, usize::MAX);
            prop_assert_eq!(decoded, Ok(Some(packet)));
            prop_assert!(buf.is_empty(), "{} bytes left over", buf.len());
        }
    }

    /// Bytes that decode re-encode to themselves, on both decoding paths.
    #[test]
    fn decode_then_encode_reproduces_the_bytes((v, packets) in one_of_each_type()) {
        for packet in packets {
            let wire = encode(&packet, v)?.freeze();
            let decoded = decode(&mut BytesMut::from(&wire[..]), v, usize::MAX);
            let Ok(Some(decoded)) = decoded else {
                return Err(TestCaseError::fail(format!("{packet:?} decoded as {decoded:?}")));
            };
            prop_assert_eq!(&encode(&decoded, v)?[..], &wire[..], "re-encoding {:?}", decoded);

            let mut input = wire.clone();
            let via_bytes = decode_bytes(&mut input, v, usize::MAX);
            prop_assert_eq!(via_bytes.as_ref(), Ok(&Some(decoded.clone())));
            prop_assert!(input.is_empty());

            // The borrowing decoder reads the same packet, and all of it.
            let borrowed = plover::codec::decode_slice(&wire, v, usize::MAX);
            let Ok(Some((borrowed, len))) = borrowed else {
                return Err(TestCaseError::fail(format!("{packet:?}: decode_slice gave {borrowed:?}")));
            };
            prop_assert_eq!(len, wire.len());
            prop_assert_eq!(borrowed.to_packet(), decoded);
        }
    }

    /// A stream decodes to the same packets whether it arrives whole or in
    /// pieces of 1 to 63 bytes, and "need more" leaves the buffer untouched.
    /// The limit is the largest packet's size, so a packet exactly at the
    /// limit must pass.
    #[test]
    fn chunked_streams_decode_like_whole_ones(
        (v, packets) in version().prop_flat_map(|v| (Just(v), vec(any_packet(v), 1..20))),
        chunks in vec(1usize..64, 1..32),
    ) {
        let mut wire = BytesMut::new();
        let mut limit = 0;
        for p in &packets {
            let before = wire.len();
            p.encode(v, &mut wire)
                .map_err(|e| TestCaseError::fail(format!("encoding {p:?}: {e}")))?;
            limit = limit.max(wire.len() - before);
        }
        let wire = wire.freeze();

        let whole = decode_all(&mut BytesMut::from(&wire[..]), v, limit)?;
        prop_assert_eq!(&whole, &packets);

        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut sizes = chunks.iter().cycle();
        let mut pos = 0;
        while pos < wire.len() {
            let n = (*sizes.next().unwrap_or(&1)).min(wire.len() - pos);
            buf.extend_from_slice(&wire[pos..pos + n]);
            pos += n;
            loop {
                let before = buf.clone();
                match decode(&mut buf, v, limit) {
                    Ok(Some(p)) => got.push(p),
                    Ok(None) => {
                        prop_assert_eq!(&buf, &before, "Ok(None) changed the buffer");
                        break;
                    }
                    Err(e) => return Err(TestCaseError::fail(format!(
                        "error {e} at byte {pos} of {}", wire.len()
                    ))),
                }
            }
        }
        prop_assert!(buf.is_empty(), "{} bytes never decoded", buf.len());
        prop_assert_eq!(got, packets);
    }

    /// Random bytes never panic either decoder, whatever they hold; "need
    /// more" consumes nothing and a decoded packet consumes something.
    #[test]
    fn random_bytes_never_panic(
        bytes in vec(any::<u8>(), 0..512),
        v in version(),
        max in select(vec![16usize, 300, 1 << 20]),
    ) {
        let mut buf = BytesMut::from(&bytes[..]);
        loop {
            let before = buf.len();
            match decode(&mut buf, v, max) {
                Ok(Some(_)) => prop_assert!(buf.len() < before),
                Ok(None) => {
                    prop_assert_eq!(buf.len(), before);
                    break;
                }
                Err(_) => break,
            }
        }
        // No limit at all on the Bytes path: it never reserves, so a huge
        // announced length costs nothing.
        let mut input = Bytes::from(bytes);
        while let Ok(Some(_)) = decode_bytes(&mut input, v, usize::MAX) {}
    }

    /// Valid packets with a few bytes overwritten: decoding never panics,
    /// and whatever is accepted is a packet the codec can write back and
    /// read again unchanged.
    #[test]
    fn mangled_packets_never_panic_and_what_decodes_is_consistent(
        (v, packet) in version().prop_flat_map(|v| (Just(v), any_packet(v))),
        edits in vec((any::<usize>(), any::<u8>()), 1..4),
    ) {
        let mut wire = encode(&packet, v)?.to_vec();
        mutate(&mut wire, &edits);
        let mut buf = BytesMut::from(&wire[..]);
        let owned = decode(&mut buf, v, usize::MAX);
        // The borrowing decoder comes to the same verdict on the same bytes.
        let borrowed = plover::codec::decode_slice(&wire, v, usize::MAX);
        match (&borrowed, &owned) {
            (Ok(Some((b, len))), Ok(Some(o))) => {
                prop_assert_eq!(&b.to_packet(), o);
                prop_assert_eq!(*len, wire.len() - buf.len());
            }
            (Ok(None), Ok(None)) => {}
            (Err(b), Err(o)) => prop_assert_eq!(b, o),
            (b, o) => prop_assert!(false, "decode_slice gave {:?}, decode {:?}", b, o),
        }
        if let Ok(Some(decoded)) = owned {
            let mut again = encode(&decoded, v)?;
            let reread = decode(&mut again, v, usize::MAX);
            prop_assert_eq!(reread, Ok(Some(decoded)));
            prop_assert!(again.is_empty());
        }
    }
}
