//! Tests of the codec as a whole: framing, streaming, limits and the
//! zero-copy promise. Byte vectors of each packet live next to its code.

use std::num::{NonZeroU16, NonZeroU32};

use bytes::{Bytes, BytesMut};

use super::*;

fn id(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).unwrap()
}

/// A test string as whichever MQTT string type the caller wants
/// (`MqttString`, `TopicName` or `TopicFilter`).
fn s<T: for<'a> TryFrom<&'a str, Error: std::fmt::Debug>>(v: &str) -> T {
    T::try_from(v).expect("a valid test string")
}

fn encode(p: &Packet, v: ProtocolVersion) -> BytesMut {
    let mut buf = BytesMut::new();
    p.encode(v, &mut buf).unwrap();
    assert_eq!(buf.len(), p.encoded_len(v).unwrap(), "encoded_len of {p:?}");
    buf
}

fn sample_packets(v: ProtocolVersion) -> Vec<Packet> {
    let mut publish_props = PublishProperties::default();
    let mut suback_props = AckProperties::default();
    if v == ProtocolVersion::V5 {
        publish_props.content_type = Some(s("text/plain"));
        publish_props.message_expiry_interval = Some(30);
        publish_props.user_properties.push(s("k"), s("v"));
        suback_props.reason_string = Some(s("fine"));
    }
    let mut connect = Connect::new(v, s("plover-test"));
    connect.username = Some(s("user"));
    connect.password = Some(Bytes::from_static(b"secret"));
    connect.will = Some(LastWill::new(
        s("status"),
        "offline",
        QoS::AtLeastOnce,
        true,
    ));
    vec![
        Packet::Connect(Box::new(connect)),
        Packet::ConnAck(Box::new(ConnAck::new(true, ConnectReasonCode::Success))),
        Packet::Publish(
            Publish::new(s("a/b"), "payload")
                .with_qos(QoS::ExactlyOnce, Some(id(9)))
                .with_properties(publish_props),
        ),
        Packet::Publish(Publish::new(s("q0"), Bytes::new())),
        Packet::PubAck(PubAck::new(id(1))),
        Packet::PubRec(PubRec::new(id(2))),
        Packet::PubRel(PubRel::new(id(3))),
        Packet::PubComp(PubComp::new(id(4))),
        Packet::Subscribe(Subscribe::new(
            id(5),
            s("a/+/c"),
            SubscriptionOptions::new(QoS::AtLeastOnce),
        )),
        Packet::SubAck(SubAck {
            packet_id: id(5),
            reason_codes: vec![SubAckReasonCode::GrantedQoS1],
            properties: suback_props,
        }),
        Packet::Unsubscribe(Unsubscribe {
            packet_id: id(6),
            filters: vec![s("a/#")],
            properties: UnsubscribeProperties::default(),
        }),
        Packet::UnsubAck(UnsubAck {
            packet_id: id(6),
            reason_codes: if v == ProtocolVersion::V5 {
                vec![UnsubAckReasonCode::Success]
            } else {
                vec![]
            },
            properties: AckProperties::default(),
        }),
        Packet::PingReq,
        Packet::PingResp,
        Packet::Disconnect(Disconnect::default()),
    ]
}

#[test]
fn every_packet_round_trips_in_both_versions() {
    for v in [ProtocolVersion::V311, ProtocolVersion::V5] {
        for p in sample_packets(v) {
            let mut buf = encode(&p, v);
            let decoded = decode(&mut buf, v, usize::MAX).unwrap();
            assert_eq!(decoded.as_ref(), Some(&p), "{v}");
            assert!(buf.is_empty());
        }
    }
}

#[test]
fn partial_frames_need_more_and_consume_nothing() {
    let v = ProtocolVersion::V5;
    let mut stream = BytesMut::new();
    for p in sample_packets(v) {
        p.encode(v, &mut stream).unwrap();
    }
    let whole = stream.freeze();
    // Feed one byte at a time: every prefix that is not a whole packet
    // answers Ok(None) and leaves the buffer untouched.
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for &byte in whole.iter() {
        buf.extend_from_slice(&[byte]);
        let before = buf.clone();
        match decode(&mut buf, v, usize::MAX).unwrap() {
            Some(p) => got.push(p),
            None => assert_eq!(buf, before),
        }
    }
    assert!(buf.is_empty());
    assert_eq!(got, sample_packets(v));
}

#[test]
fn size_limit_is_checked_before_the_body_arrives() {
    // A PUBLISH announcing 1,000 bytes of body; only the header is here.
    let mut buf = BytesMut::from(&[0x30, 0xE8, 0x07][..]);
    assert_eq!(
        decode(&mut buf, ProtocolVersion::V311, 1000),
        Err(DecodeError::PacketTooLarge {
            size: 1003,
            max: 1000
        })
    );
    // With a larger limit it just waits for more.
    assert_eq!(decode(&mut buf, ProtocolVersion::V311, 1003), Ok(None));
    assert_eq!(buf.len(), 3);
}

#[test]
fn decoded_publish_shares_the_input_buffer() {
    let p = Packet::Publish(Publish::new(s("t"), vec![7u8; 4096]));
    let mut input = encode(&p, ProtocolVersion::V311).freeze();
    let base = input.as_ptr() as usize;
    let Some(Packet::Publish(decoded)) =
        decode_bytes(&mut input, ProtocolVersion::V311, usize::MAX).unwrap()
    else {
        panic!("not a publish");
    };
    // Topic and payload point inside the original allocation.
    let topic_at = decoded.topic.as_ptr() as usize;
    let payload_at = decoded.payload.as_ptr() as usize;
    assert_eq!(topic_at, base + 5);
    assert_eq!(payload_at, base + 6);
}

#[test]
fn v5_only_features_are_refused_in_311() {
    let auth = Packet::Auth(Auth::new(AuthReasonCode::ContinueAuthentication));
    assert!(matches!(
        auth.encode(ProtocolVersion::V311, &mut BytesMut::new()),
        Err(EncodeError::NotInVersion { .. })
    ));
    let mut buf = BytesMut::from(&[0xF0, 0x00][..]);
    assert_eq!(
        decode(&mut buf, ProtocolVersion::V311, 100),
        Err(DecodeError::InvalidPacketType(15))
    );
    let refused = Packet::ConnAck(Box::new(ConnAck::new(false, ConnectReasonCode::Banned)));
    assert!(matches!(
        refused.encode(ProtocolVersion::V311, &mut BytesMut::new()),
        Err(EncodeError::NotInVersion { .. })
    ));
}

#[test]
fn encode_rejects_what_the_wire_cannot_carry() {
    let mut buf = BytesMut::new();
    let no_id = Packet::Publish(Publish::new(s("t"), "x").with_qos(QoS::AtLeastOnce, None));
    assert_eq!(
        no_id.encode(ProtocolVersion::V5, &mut buf),
        Err(EncodeError::MissingPacketId)
    );
    // A name with a wildcard cannot be made at all; the empty name can,
    // and is refused unless a 5.0 Topic Alias stands in for it.
    assert_eq!(
        TopicName::try_from("a/#"),
        Err(crate::topic::TopicError::WildcardInName)
    );
    for v in [ProtocolVersion::V311, ProtocolVersion::V5] {
        let nameless = Packet::Publish(Publish::new(TopicName::empty(), "x"));
        assert_eq!(
            nameless.encode(v, &mut buf),
            Err(EncodeError::InvalidTopicName(
                crate::topic::TopicError::Empty
            )),
            "{v}"
        );
    }
    let mut will = LastWill::new(TopicName::empty(), "x", QoS::AtMostOnce, false);
    let mut connect = Connect::new(ProtocolVersion::V5, s("c"));
    connect.will = Some(will.clone());
    assert_eq!(
        Packet::Connect(Box::new(connect.clone())).encode(ProtocolVersion::V5, &mut buf),
        Err(EncodeError::InvalidTopicName(
            crate::topic::TopicError::Empty
        )),
        "a will always needs a name"
    );
    will.topic = s("w");
    connect.will = Some(will);
    let named = Packet::Connect(Box::new(connect));
    assert!(
        named
            .encode(ProtocolVersion::V5, &mut BytesMut::new())
            .is_ok()
    );
    let props = SubscribeProperties {
        subscription_identifier: NonZeroU32::new(MAX_VARIABLE_INT + 1),
        ..Default::default()
    };
    let mut sub = Subscribe::new(id(1), s("x"), SubscriptionOptions::default());
    sub.properties = props;
    assert_eq!(
        Packet::Subscribe(sub).encode(ProtocolVersion::V5, &mut buf),
        Err(EncodeError::SubscriptionIdOutOfRange)
    );
    // [MQTT-3.8.3-4] No Local on a shared subscription, with properties
    // (the measured path) and without (the stack-assembled one); 3.1.1
    // has no No Local to write.
    let no_local = SubscriptionOptions {
        no_local: true,
        ..SubscriptionOptions::default()
    };
    let mut shared = Subscribe::new(id(1), s("a/b"), SubscriptionOptions::default());
    shared.filters.push((s("$share/g/a"), no_local));
    let with_props = Subscribe {
        properties: SubscribeProperties {
            subscription_identifier: NonZeroU32::new(1),
            ..Default::default()
        },
        ..shared.clone()
    };
    for sub in [shared.clone(), with_props] {
        assert_eq!(
            Packet::Subscribe(sub).encode(ProtocolVersion::V5, &mut buf),
            Err(EncodeError::NoLocalOnSharedSubscription)
        );
    }
    assert!(buf.is_empty(), "nothing is written on error");
    let v311 = Packet::Subscribe(shared);
    assert!(
        v311.encode(ProtocolVersion::V311, &mut BytesMut::new())
            .is_ok()
    );
}

#[test]
fn inline_framing_agrees_with_frame_len() {
    // Every fixed header of up to five bytes over values at the edges of
    // the variable byte integer encoding, complete or cut short, against
    // several limits.
    let values = [0x00u8, 0x01, 0x02, 0x7F, 0x80, 0x81, 0xFF];
    let mut level: Vec<Vec<u8>> = vec![vec![0x30]];
    let mut headers = level.clone();
    for _ in 0..4 {
        level = level
            .iter()
            .flat_map(|h| {
                values.iter().map(move |&v| {
                    let mut h = h.clone();
                    h.push(v);
                    h
                })
            })
            .collect();
        headers.extend(level.iter().cloned());
    }
    assert_eq!(headers.len(), 1 + 7 + 49 + 343 + 2401);
    for h in &headers {
        for max in [0, 2, 130, 16_386, 2_097_155, usize::MAX] {
            assert_eq!(frame(h, max), frame_len(h, max), "{h:02x?} max {max}");
        }
    }
}

#[test]
fn publish_stays_small() {
    // A PUBLISH is moved through channels and queues by value: keep it (and
    // the `Packet` enum, which it sizes) from growing unnoticed. 248 bytes
    // on 64-bit targets: two `Bytes` (topic, payload), the properties (three
    // optional `Bytes`-backed fields, two lists and four small options),
    // the flags and the packet identifier.
    if size_of::<usize>() == 8 {
        assert_eq!(size_of::<UserProperties>(), 32);
        assert_eq!(size_of::<PublishProperties>(), 176);
        assert_eq!(size_of::<Publish>(), 248);
        assert_eq!(size_of::<Packet>(), 248);
    }
}

#[test]
fn acknowledgements_and_pings_are_written_alike_whatever_room_the_buffer_has() {
    // The short forms take a path of their own when the buffer has room
    // and the general one when it has not; both must write the same.
    let failed = PubAck {
        reason_code: PubAckReasonCode::NoMatchingSubscribers,
        ..PubAck::new(id(0x0102))
    };
    let packets = [
        (Packet::PubAck(PubAck::new(id(0x0102))), vec![0x40, 2, 1, 2]),
        (Packet::PubRec(PubRec::new(id(0x0304))), vec![0x50, 2, 3, 4]),
        (Packet::PubRel(PubRel::new(id(0x0506))), vec![0x62, 2, 5, 6]),
        (
            Packet::PubComp(PubComp::new(id(0x0708))),
            vec![0x70, 2, 7, 8],
        ),
        (Packet::PingReq, vec![0xC0, 0]),
        (Packet::PingResp, vec![0xD0, 0]),
        (Packet::PubAck(failed), vec![0x40, 2, 1, 2]),
    ];
    for v in [ProtocolVersion::V311, ProtocolVersion::V5] {
        for (i, (packet, want)) in packets.iter().enumerate() {
            let mut want = want.clone();
            if v == ProtocolVersion::V5 && i == packets.len() - 1 {
                // 5.0 sends the failure's reason code.
                want = vec![0x40, 3, 1, 2, 0x10];
            }
            for free in [0, 1, 3, 4, 5, 64] {
                let mut buf = BytesMut::with_capacity(8 + free);
                buf.extend_from_slice(&[0xAA; 8]);
                assert_eq!(buf.capacity() - buf.len(), free, "setting up {free} free");
                assert_eq!(packet.encode(v, &mut buf), Ok(()), "{v:?} {packet:?}");
                assert_eq!(buf[..8], [0xAA; 8], "{v:?} {packet:?}, {free} free");
                assert_eq!(buf[8..], want[..], "{v:?} {packet:?}, {free} free");
            }
        }
    }
}
