//! Session tests for the MQTT 5.0 rules a client must honour on its own:
//! limits from CONNACK, topic aliases, message expiry of queued messages,
//! our own receive maximum, and the assigned client identifier.

use std::num::{NonZeroU16, NonZeroU32};
use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::*;
use crate::codec::{self, ConnAckProperties, PublishProperties, SubAckReasonCode};

const V5: ProtocolVersion = ProtocolVersion::V5;

/// A test string as whichever MQTT string type the caller wants
/// (`MqttString`, `TopicName` or `TopicFilter`).
fn s<T: for<'a> TryFrom<&'a str, Error: std::fmt::Debug>>(v: &str) -> T {
    T::try_from(v).expect("a valid test string")
}

/// A connected 5.0 session with the given CONNACK properties.
struct H {
    s: Session,
    now: Instant,
}

impl H {
    fn new(config: SessionConfig, props: ConnAckProperties) -> H {
        let now = Instant::now();
        let mut s = Session::new(config);
        s.handle_connect(now);
        let mut connack = ConnAck::new(false, ConnectReasonCode::Success);
        connack.properties = props;
        s.handle_packet(Packet::ConnAck(Box::new(connack)), now);
        let mut h = H { s, now };
        h.sent();
        h.events();
        h
    }

    fn connected(props: ConnAckProperties) -> H {
        H::new(SessionConfig::new(V5, s("v5-test")), props)
    }

    fn sent(&mut self) -> Vec<Packet> {
        let mut out = Vec::new();
        while let Some(bytes) = self.s.poll_transmit() {
            let mut buf = BytesMut::from(&bytes[..]);
            while let Some(p) = codec::decode(&mut buf, V5, usize::MAX).expect("valid bytes") {
                out.push(p);
            }
            assert!(buf.is_empty(), "partial packet transmitted");
        }
        out
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.s.poll_event()).collect()
    }

    fn publish(&mut self, request: RequestId, topic: &'static str, qos: QoS) {
        let p = Publish::new(s(topic), "x").with_qos(qos, None);
        self.s.handle_publish(request, p, self.now);
    }

    fn feed(&mut self, p: Packet) {
        self.s.handle_packet(p, self.now);
    }
}

fn done_error(events: &[Event]) -> Option<RequestError> {
    events.iter().find_map(|e| match e {
        Event::PublishDone { result: Err(e), .. } => Some(e.clone()),
        Event::SubscribeDone { result: Err(e), .. } => Some(e.clone()),
        _ => None,
    })
}

#[test]
fn repeated_topics_travel_as_aliases_when_enabled() {
    let mut config = SessionConfig::new(V5, s("alias"));
    config.auto_topic_alias = true;
    let props = ConnAckProperties {
        topic_alias_maximum: Some(2),
        ..Default::default()
    };
    let mut h = H::new(config, props);
    for (i, topic) in ["a/1", "a/1", "a/2", "a/3", "a/2"].into_iter().enumerate() {
        h.publish(i as u64, topic, QoS::AtMostOnce);
    }
    let wire: Vec<(String, Option<u16>)> = h
        .sent()
        .into_iter()
        .map(|p| match p {
            Packet::Publish(p) => (p.topic.to_string(), p.properties.topic_alias),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        wire,
        [
            ("a/1".into(), Some(1)), // defines alias 1
            ("".into(), Some(1)),    // uses it
            ("a/2".into(), Some(2)), // defines alias 2: the maximum
            ("a/3".into(), None),    // no alias left: full topic
            ("".into(), Some(2)),
        ]
    );
}

#[test]
fn aliases_are_off_by_default_and_reset_on_reconnect() {
    let props = ConnAckProperties {
        topic_alias_maximum: Some(10),
        ..Default::default()
    };
    let mut h = H::connected(props.clone());
    h.publish(1, "t", QoS::AtMostOnce);
    h.publish(2, "t", QoS::AtMostOnce);
    assert!(
        h.sent()
            .iter()
            .all(|p| matches!(p, Packet::Publish(p) if p.properties.topic_alias.is_none()))
    );

    let mut config = SessionConfig::new(V5, s("alias"));
    config.auto_topic_alias = true;
    config.clean_start = false;
    let mut h = H::new(config, props.clone());
    h.publish(1, "t", QoS::AtLeastOnce);
    let first = h.sent();
    assert!(
        matches!(&first[..], [Packet::Publish(p)] if p.topic == "t" && p.properties.topic_alias == Some(1))
    );
    // The connection drops before the PUBACK; on the new connection the
    // message is resent with its full topic and no alias (aliases do not
    // survive a connection), and a new publish defines the alias afresh.
    h.s.handle_connection_lost(h.now);
    h.events();
    h.s.handle_connect(h.now);
    h.sent();
    let mut connack = ConnAck::new(true, ConnectReasonCode::Success);
    connack.properties = props;
    h.feed(Packet::ConnAck(Box::new(connack)));
    h.publish(2, "t", QoS::AtMostOnce);
    let after: Vec<_> = h
        .sent()
        .into_iter()
        .map(|p| match p {
            Packet::Publish(p) => (p.dup, p.topic.to_string(), p.properties.topic_alias),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        after,
        [(true, "t".into(), None), (false, "t".into(), Some(1))]
    );
}

#[test]
fn an_alias_above_the_brokers_maximum_is_refused_locally() {
    let mut h = H::connected(ConnAckProperties {
        topic_alias_maximum: Some(3),
        ..Default::default()
    });
    let props = PublishProperties {
        topic_alias: Some(4),
        ..Default::default()
    };
    h.s.handle_publish(7, Publish::new(s("t"), "x").with_properties(props), h.now);
    assert_eq!(h.sent(), vec![]);
    assert_eq!(
        done_error(&h.events()),
        Some(RequestError::TopicAliasInvalid {
            alias: 4,
            maximum: 3
        })
    );
}

#[test]
fn subscriptions_the_broker_cannot_serve_are_refused_locally() {
    let props = ConnAckProperties {
        wildcard_subscription_available: Some(false),
        shared_subscription_available: Some(false),
        subscription_identifiers_available: Some(false),
        ..Default::default()
    };
    let cases: [(&'static str, Option<u32>, RequestError); 4] = [
        ("a/+", None, RequestError::WildcardSubscriptionsNotSupported),
        ("a/#", None, RequestError::WildcardSubscriptionsNotSupported),
        (
            "$share/g/a",
            None,
            RequestError::SharedSubscriptionsNotSupported,
        ),
        (
            "a/b",
            Some(5),
            RequestError::SubscriptionIdentifiersNotSupported,
        ),
    ];
    for (filter, id, expected) in cases {
        let mut h = H::connected(props.clone());
        let properties = SubscribeProperties {
            subscription_identifier: id.and_then(NonZeroU32::new),
            ..Default::default()
        };
        h.s.handle_subscribe(
            1,
            vec![(s(filter), SubscriptionOptions::default())],
            properties,
            h.now,
        );
        assert_eq!(h.sent(), vec![], "{filter}");
        assert_eq!(done_error(&h.events()), Some(expected), "{filter}");
    }
    // A plain filter still goes out.
    let mut h = H::connected(props);
    h.s.handle_subscribe(
        1,
        vec![(s("a/b"), SubscriptionOptions::default())],
        Default::default(),
        h.now,
    );
    assert!(matches!(&h.sent()[..], [Packet::Subscribe(_)]));
}

#[test]
fn queued_messages_whose_expiry_passed_are_not_sent() {
    let mut h = H::connected(ConnAckProperties::default());
    h.s.handle_connection_lost(h.now);
    h.events();
    let t0 = h.now;
    let with_expiry = |secs| PublishProperties {
        message_expiry_interval: Some(secs),
        ..Default::default()
    };
    h.s.handle_publish(
        1,
        Publish::new(s("t"), "short")
            .with_qos(QoS::AtLeastOnce, None)
            .with_properties(with_expiry(5)),
        t0,
    );
    h.s.handle_publish(
        2,
        Publish::new(s("t"), "long")
            .with_qos(QoS::AtLeastOnce, None)
            .with_properties(with_expiry(60)),
        t0,
    );
    h.s.handle_publish(
        3,
        Publish::new(s("t"), "forever").with_qos(QoS::AtLeastOnce, None),
        t0,
    );
    // Back online 10 s later.
    let later = t0 + Duration::from_secs(10);
    h.now = later;
    h.s.handle_connect(later);
    h.sent();
    h.feed(Packet::ConnAck(Box::new(ConnAck::new(
        false,
        ConnectReasonCode::Success,
    ))));
    let events = h.events();
    assert!(events.iter().any(|e| matches!(
        e,
        Event::PublishDone {
            request: 1,
            result: Err(RequestError::MessageExpired)
        }
    )));
    let sent: Vec<_> = h
        .sent()
        .into_iter()
        .map(|p| match p {
            Packet::Publish(p) => (p.payload, p.properties.message_expiry_interval),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    // The survivor carries what is left of its lifetime.
    assert_eq!(sent, [("long".into(), Some(50)), ("forever".into(), None)]);
}

#[test]
fn a_broker_exceeding_our_receive_maximum_is_disconnected_with_0x93() {
    let mut config = SessionConfig::new(V5, s("rm"));
    config.connect_properties.receive_maximum = Some(2);
    let mut h = H::new(config, ConnAckProperties::default());
    let qos2 = |id| {
        Packet::Publish(Publish::new(s("t"), "x").with_qos(QoS::ExactlyOnce, NonZeroU16::new(id)))
    };
    h.feed(qos2(1));
    h.feed(qos2(2));
    // A redelivery of a held id is not a new message: still fine.
    let mut again = Publish::new(s("t"), "x").with_qos(QoS::ExactlyOnce, NonZeroU16::new(2));
    again.dup = true;
    h.feed(Packet::Publish(again));
    assert!(!h.s.is_closed());
    h.sent();
    h.feed(qos2(3));
    let sent = h.sent();
    assert!(
        matches!(&sent[..], [Packet::Disconnect(d)] if d.reason_code == DisconnectReasonCode::ReceiveMaximumExceeded),
        "{sent:?}"
    );
    assert!(h.events().contains(&Event::Closed(CloseReason::Protocol(
        ProtocolError::ReceiveMaximumExceeded
    ))));
}

#[test]
fn the_assigned_client_identifier_is_kept_for_reconnects() {
    let props = ConnAckProperties {
        assigned_client_identifier: Some(s("auto-42")),
        ..Default::default()
    };
    let mut h = H::new(SessionConfig::new(V5, MqttString::new()), props);
    assert_eq!(h.s.config().client_id, "auto-42");
    h.s.handle_connection_lost(h.now);
    h.s.handle_connect(h.now);
    match &h.sent()[..] {
        [Packet::Connect(c)] => assert_eq!(c.client_id, "auto-42"),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn granted_subscriptions_are_listed() {
    let mut h = H::connected(ConnAckProperties::default());
    let filters = vec![
        (s("a"), SubscriptionOptions::default()),
        (s("b"), SubscriptionOptions::default()),
    ];
    h.s.handle_subscribe(1, filters, Default::default(), h.now);
    let Packet::Subscribe(sub) = h.sent().remove(0) else {
        panic!("no SUBSCRIBE")
    };
    h.feed(Packet::SubAck(SubAck {
        packet_id: sub.packet_id,
        reason_codes: vec![
            SubAckReasonCode::GrantedQoS0,
            SubAckReasonCode::NotAuthorized,
        ],
        properties: AckProperties::default(),
    }));
    let listed: Vec<_> = h.s.subscriptions().map(|(f, _)| f.to_string()).collect();
    assert_eq!(listed, ["a"]);
}
