//! Session tests for the edges an audit found: a broker claiming a session
//! after a clean start, a connection lost while draining, QoS 0 that is
//! only done once its bytes leave, expiry of messages queued again, an
//! alias whose defining PUBLISH never left, resubscriptions that fail, and
//! keepalive while the application is not reading.

use std::num::NonZeroU16;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::*;
use crate::codec::{
    self, ConnAckProperties, PublishProperties, SubAckReasonCode, SubscriptionOptions,
};

const BOTH: [ProtocolVersion; 2] = [ProtocolVersion::V311, ProtocolVersion::V5];

/// A test string as whichever MQTT string type the caller wants
/// (`MqttString`, `TopicName` or `TopicFilter`).
fn s<T: for<'a> TryFrom<&'a str, Error: std::fmt::Debug>>(v: &str) -> T {
    T::try_from(v).expect("a valid test string")
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A session, its virtual clock, and helpers to play the broker.
struct H {
    s: Session,
    t0: Instant,
    now: Instant,
}

impl H {
    fn new(config: SessionConfig) -> H {
        let now = Instant::now();
        H {
            s: Session::new(config),
            t0: now,
            now,
        }
    }

    fn version(&self) -> ProtocolVersion {
        self.s.version()
    }

    fn at(&mut self, t: Duration) {
        self.now = self.t0 + t;
    }

    /// Opens a transport and answers the CONNECT with `connack`.
    fn connect_with(&mut self, connack: ConnAck) {
        self.s.handle_connect(self.now);
        let sent = self.sent();
        assert!(matches!(sent.as_slice(), [Packet::Connect(_)]), "{sent:?}");
        self.s
            .handle_packet(Packet::ConnAck(Box::new(connack)), self.now);
    }

    fn connect(&mut self, session_present: bool) {
        self.connect_with(ConnAck::new(session_present, ConnectReasonCode::Success));
    }

    fn sent(&mut self) -> Vec<Packet> {
        let mut out = Vec::new();
        while let Some(bytes) = self.s.poll_transmit() {
            let mut buf = BytesMut::from(&bytes[..]);
            while let Some(p) =
                codec::decode(&mut buf, self.version(), usize::MAX).expect("valid bytes")
            {
                out.push(p);
            }
            assert!(buf.is_empty(), "partial packet transmitted");
        }
        out
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.s.poll_event()).collect()
    }

    fn feed(&mut self, p: Packet) {
        self.s.handle_packet(p, self.now);
    }

    fn publish(&mut self, request: RequestId, publish: Publish) {
        self.s.handle_publish(request, publish, self.now);
    }
}

fn config(version: ProtocolVersion, clean_start: bool) -> SessionConfig {
    let mut config = SessionConfig::new(version, s("edges"));
    config.keep_alive = 10;
    config.clean_start = clean_start;
    config
}

fn message(qos: QoS, payload: &'static str) -> Publish {
    Publish::new(s("edges/t"), payload).with_qos(qos, None)
}

fn id(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).expect("non-zero")
}

#[test]
fn session_present_after_a_clean_start_is_a_protocol_error() {
    for v in BOTH {
        let mut h = H::new(config(v, true));
        h.connect(true);
        let events = h.events();
        assert_eq!(
            events,
            vec![Event::Closed(CloseReason::Protocol(
                ProtocolError::SessionPresentOnCleanStart
            ))],
            "{v}: no Connected, no resume into a session that cannot be ours"
        );
        let sent = h.sent();
        match v {
            // 5.0 says why before closing (0x82 Protocol Error).
            ProtocolVersion::V5 => assert!(
                matches!(&sent[..], [Packet::Disconnect(d)]
                    if d.reason_code == DisconnectReasonCode::ProtocolError),
                "{sent:?}"
            ),
            ProtocolVersion::V311 => assert_eq!(sent, vec![]),
        }
    }
    // Without a clean start, Session Present is the normal answer.
    let mut h = H::new(config(ProtocolVersion::V5, false));
    h.connect(true);
    assert!(matches!(h.events().as_slice(), [Event::Connected(_)]));
}

#[test]
fn connection_lost_while_draining_ends_the_session_as_the_disconnect_would() {
    for v in BOTH {
        let mut h = H::new(config(v, true));
        h.connect(false);
        h.events();
        h.publish(1, message(QoS::AtLeastOnce, "in flight"));
        h.sent();
        let deadline = h.now + secs(5);
        h.s.handle_disconnect(Disconnect::default(), h.now, deadline);
        assert_eq!(h.sent(), vec![], "{v}: waits for the PUBACK first");
        h.s.handle_connection_lost(h.now);
        assert_eq!(
            h.events(),
            vec![Event::Closed(CloseReason::Normal)],
            "{v}: a final reason, so the driver does not reconnect"
        );
        assert!(h.s.is_closed());
        assert_eq!(h.s.poll_timeout(), None, "{v}: no drain deadline left");
        // The driver then fails what is left, as after any final close.
        h.s.abort_requests(CloseReason::Normal);
        assert_eq!(
            h.events(),
            vec![Event::PublishDone {
                request: 1,
                result: Err(RequestError::ConnectionClosed(CloseReason::Normal)),
            }]
        );
    }
}

#[test]
fn qos0_is_done_when_its_bytes_are_handed_out_and_fails_if_they_never_are() {
    for v in BOTH {
        let mut h = H::new(config(v, true));
        h.connect(false);
        h.events();
        h.publish(1, message(QoS::AtMostOnce, "one"));
        h.publish(2, message(QoS::AtMostOnce, "two"));
        assert_eq!(h.events(), vec![], "{v}: not done while only in our buffer");
        assert_eq!(h.sent().len(), 2);
        let done: Vec<RequestId> = h
            .events()
            .into_iter()
            .map(|e| match e {
                Event::PublishDone {
                    request,
                    result: Ok(outcome),
                } => {
                    assert_eq!(outcome.packet_id, None);
                    request
                }
                other => panic!("{v}: unexpected {other:?}"),
            })
            .collect();
        assert_eq!(done, vec![1, 2], "{v}: in order, once handed out");

        // Written into the buffer, then the connection goes before the
        // driver took the bytes: the caller hears it was not sent.
        h.publish(3, message(QoS::AtMostOnce, "three"));
        h.s.handle_connection_lost(h.now);
        let events = h.events();
        assert!(
            events.contains(&Event::PublishDone {
                request: 3,
                result: Err(RequestError::ConnectionClosed(CloseReason::ConnectionLost)),
            }),
            "{v}: {events:?}"
        );
    }
}

#[test]
fn discarded_transmit_fails_its_qos0_publishes() {
    let mut h = H::new(config(ProtocolVersion::V5, true));
    h.connect(false);
    h.events();
    h.publish(7, message(QoS::AtMostOnce, "never written"));
    h.s.discard_transmit();
    assert_eq!(h.s.poll_transmit(), None);
    assert_eq!(
        h.events(),
        vec![Event::PublishDone {
            request: 7,
            result: Err(RequestError::ConnectionClosed(CloseReason::ConnectionLost)),
        }]
    );
}

#[test]
fn a_message_queued_again_keeps_counting_its_expiry_from_when_it_was_sent() {
    let mut h = H::new(config(ProtocolVersion::V5, true));
    h.connect(false);
    h.events();
    let mut p = message(QoS::AtLeastOnce, "short-lived");
    p.properties = PublishProperties {
        message_expiry_interval: Some(5),
        ..PublishProperties::default()
    };
    h.publish(1, p);
    assert_eq!(h.sent().len(), 1);
    h.at(secs(1));
    h.s.handle_connection_lost(h.now);
    h.events();

    // Back within its lifetime, no session: sent again as new, with what
    // is left of its five seconds.
    h.at(secs(3));
    h.connect(false);
    h.events();
    let sent = h.sent();
    match &sent[..] {
        [Packet::Publish(p)] => {
            assert!(!p.dup);
            assert_eq!(p.properties.message_expiry_interval, Some(2));
        }
        other => panic!("expected the PUBLISH again, got {other:?}"),
    }
    // Lost again, and back only after its lifetime: not sent, and the
    // caller hears why.
    h.at(secs(4));
    h.s.handle_connection_lost(h.now);
    h.events();
    h.at(secs(60));
    h.connect(false);
    let events = h.events();
    assert!(
        events.contains(&Event::PublishDone {
            request: 1,
            result: Err(RequestError::MessageExpired),
        }),
        "{events:?}"
    );
    assert_eq!(h.sent(), vec![], "an expired message is not sent");
}

#[test]
fn a_qos2_message_past_pubrec_is_sent_again_when_the_session_is_gone() {
    for v in BOTH {
        let mut h = H::new(config(v, true));
        h.connect(false);
        h.events();
        h.publish(1, message(QoS::ExactlyOnce, "released?"));
        h.sent();
        h.feed(Packet::PubRec(codec::PubRec::new(id(1))));
        assert_eq!(h.sent(), vec![Packet::PubRel(codec::PubRel::new(id(1)))]);
        h.s.handle_connection_lost(h.now);
        h.events();

        h.connect(false);
        assert!(
            matches!(h.events().as_slice(), [Event::Connected(_)]),
            "{v}: not reported done without PUBCOMP"
        );
        let sent = h.sent();
        let again = match &sent[..] {
            [Packet::Publish(p)] => p.clone(),
            other => panic!("{v}: expected a new PUBLISH, got {other:?}"),
        };
        assert!(!again.dup, "{v}: a new message");
        assert_eq!(again.payload, "released?");
        let pid = again.packet_id.expect("QoS 2 has an id");
        h.feed(Packet::PubRec(codec::PubRec::new(pid)));
        h.sent();
        h.feed(Packet::PubComp(codec::PubComp::new(pid)));
        let events = h.events();
        assert!(
            matches!(&events[..], [Event::PublishDone { request: 1, result: Ok(o) }]
                if o.complete_reason == Some(PubRelReasonCode::Success)),
            "{v}: {events:?}"
        );
    }
}

#[test]
fn an_alias_is_only_used_once_the_publish_defining_it_was_sent() {
    let mut config = config(ProtocolVersion::V5, true);
    config.auto_topic_alias = true;
    let mut h = H::new(config);
    let mut ack = ConnAck::new(false, ConnectReasonCode::Success);
    ack.properties = ConnAckProperties {
        topic_alias_maximum: Some(4),
        maximum_packet_size: Some(64),
        ..ConnAckProperties::default()
    };
    h.connect_with(ack);
    h.events();

    // Too large for the broker: refused here, so it defines nothing.
    let big = Publish::new(s("edges/t"), vec![0u8; 100]).with_qos(QoS::AtMostOnce, None);
    h.publish(1, big);
    let events = h.events();
    assert!(
        matches!(
            &events[..],
            [Event::PublishDone {
                request: 1,
                result: Err(RequestError::PacketTooLarge { .. })
            }]
        ),
        "{events:?}"
    );
    assert_eq!(h.sent(), vec![]);

    // The next one to the topic carries the topic in full and defines
    // the alias; only the one after it may use the alias alone.
    h.publish(2, message(QoS::AtMostOnce, "a"));
    h.publish(3, message(QoS::AtMostOnce, "b"));
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
        vec![("edges/t".to_owned(), Some(1)), (String::new(), Some(1))]
    );
}

fn suback(packet_id: u16, reason_codes: Vec<SubAckReasonCode>) -> Packet {
    Packet::SubAck(codec::SubAck {
        packet_id: id(packet_id),
        reason_codes,
        properties: codec::AckProperties::default(),
    })
}

/// A session subscribed to `filters` whose connection dropped; it
/// reconnects to a broker without our session, with `props` in CONNACK.
fn resubscribing(filters: &[&'static str], props: ConnAckProperties) -> H {
    let mut h = H::new(config(ProtocolVersion::V5, true));
    h.connect(false);
    h.events();
    let list = filters
        .iter()
        .map(|f| (s(f), SubscriptionOptions::new(QoS::AtLeastOnce)))
        .collect();
    h.s.handle_subscribe(1, list, SubscribeProperties::default(), h.now);
    h.sent();
    h.feed(suback(
        1,
        vec![SubAckReasonCode::GrantedQoS1; filters.len()],
    ));
    h.events();
    h.s.handle_connection_lost(h.now);
    h.events();
    let mut connack = ConnAck::new(false, ConnectReasonCode::Success);
    connack.properties = props;
    h.connect_with(connack);
    h
}

#[test]
fn a_resubscription_the_broker_refuses_is_reported_and_forgotten() {
    let mut h = resubscribing(&["a/#", "b/#"], ConnAckProperties::default());
    h.events();
    let sent = h.sent();
    let pid = match &sent[..] {
        [Packet::Subscribe(sub)] => {
            assert_eq!(sub.filters.len(), 2);
            sub.packet_id
        }
        other => panic!("expected the resubscription, got {other:?}"),
    };
    h.feed(suback(
        pid.get(),
        vec![
            SubAckReasonCode::GrantedQoS1,
            SubAckReasonCode::NotAuthorized,
        ],
    ));
    assert_eq!(
        h.events(),
        vec![Event::ResubscribeFailed {
            filter: s("b/#"),
            error: ResubscribeError::Refused(SubAckReasonCode::NotAuthorized),
        }]
    );
    let left: Vec<String> = h.s.subscriptions().map(|(f, _)| f.to_string()).collect();
    assert_eq!(left, vec!["a/#"]);
}

#[test]
fn a_resubscription_the_new_connack_rules_out_is_reported_and_forgotten() {
    let props = ConnAckProperties {
        wildcard_subscription_available: Some(false),
        ..ConnAckProperties::default()
    };
    let mut h = resubscribing(&["a/#"], props);
    let events = h.events();
    assert!(
        events.iter().any(|e| *e
            == Event::ResubscribeFailed {
                filter: s("a/#"),
                error: ResubscribeError::NotSent(RequestError::WildcardSubscriptionsNotSupported),
            }),
        "{events:?}"
    );
    assert_eq!(h.sent(), vec![], "nothing the broker would refuse goes out");
    assert_eq!(h.s.subscriptions().count(), 0);
}

#[test]
fn pings_go_on_every_keepalive_while_reads_are_paused() {
    for v in BOTH {
        let mut h = H::new(config(v, true));
        h.connect(false);
        h.events();
        h.at(secs(1));
        h.s.handle_read_paused(true, h.now);
        let mut pings = Vec::new();
        for _ in 0..100 {
            let Some(deadline) = h.s.poll_timeout() else {
                break;
            };
            if deadline > h.t0 + secs(45) {
                break;
            }
            h.now = deadline;
            h.s.handle_timeout(h.now);
            for p in h.sent() {
                assert_eq!(p, Packet::PingReq, "{v}");
                pings.push(h.now - h.t0);
            }
            assert_eq!(h.events(), vec![], "{v}: no keepalive timeout");
        }
        assert_eq!(pings, vec![secs(10), secs(20), secs(30), secs(40)], "{v}");
        assert!(h.s.is_connected());
    }
}

/// The CONNECT the session writes next.
fn next_connect(h: &mut H) -> Box<codec::Connect> {
    h.s.handle_connect(h.now);
    match h.sent().pop() {
        Some(Packet::Connect(c)) => c,
        other => panic!("expected CONNECT, got {other:?}"),
    }
}

#[test]
fn a_5_0_clean_start_is_clean_only_the_first_time() {
    let mut config = config(ProtocolVersion::V5, true);
    config.connect_properties.session_expiry_interval = Some(300);
    let mut h = H::new(config);
    assert!(
        next_connect(&mut h).clean_start,
        "the first connection starts clean"
    );
    h.feed(Packet::ConnAck(Box::new(ConnAck::new(
        false,
        ConnectReasonCode::Success,
    ))));
    h.events();
    h.publish(1, message(QoS::AtLeastOnce, "in flight"));
    h.sent();
    h.s.handle_connection_lost(h.now);
    h.events();

    // The reconnect asks to resume, and a session the broker kept is
    // taken up: the unacknowledged PUBLISH goes again with DUP and its id.
    assert!(!next_connect(&mut h).clean_start, "a reconnect resumes");
    h.feed(Packet::ConnAck(Box::new(ConnAck::new(
        true,
        ConnectReasonCode::Success,
    ))));
    assert!(matches!(h.events().as_slice(), [Event::Connected(_)]));
    match h.sent().as_slice() {
        [Packet::Publish(p)] => {
            assert!(p.dup);
            assert_eq!(p.packet_id, Some(id(1)));
        }
        other => panic!("expected the PUBLISH again, got {other:?}"),
    }
}

#[test]
fn a_3_1_1_clean_session_stays_clean_on_every_connection() {
    // In 3.1.1 Clean Session 0 would also make the broker keep the
    // session forever, so reconnects keep the flag as configured.
    let mut h = H::new(config(ProtocolVersion::V311, true));
    assert!(next_connect(&mut h).clean_start);
    h.feed(Packet::ConnAck(Box::new(ConnAck::new(
        false,
        ConnectReasonCode::Success,
    ))));
    h.s.handle_connection_lost(h.now);
    assert!(next_connect(&mut h).clean_start);
}

#[test]
fn large_payloads_are_transmitted_from_their_own_buffer() {
    for v in BOTH {
        let mut h = H::new(config(v, true));
        h.connect(false);
        h.events();
        let big = bytes::Bytes::from(vec![0x5Au8; ZERO_COPY_PAYLOAD]);
        let small = Publish::new(s("edges/small"), "x");
        let large = Publish::new(s("edges/large"), big.clone()).with_qos(QoS::AtLeastOnce, None);
        h.publish(1, small.clone());
        h.publish(2, large.clone());
        h.publish(3, small.clone());

        let mut chunks = Vec::new();
        while let Some(chunk) = h.s.poll_transmit() {
            // QoS 0 completes only once every byte before it is handed out.
            let done = h
                .events()
                .iter()
                .any(|e| matches!(e, Event::PublishDone { .. }));
            chunks.push((chunk, done));
        }
        assert_eq!(
            chunks.len(),
            3,
            "{v}: what precedes, the payload, what follows"
        );
        assert!(
            chunks[..2].iter().all(|(_, done)| !done),
            "{v}: QoS 0 done too early"
        );
        assert!(chunks[2].1, "{v}: QoS 0 done once all is out");
        // The payload is the message's own buffer, not a copy.
        assert_eq!(chunks[1].0.as_ptr(), big.as_ptr(), "{v}: payload copied");
        assert_eq!(chunks[1].0.len(), big.len());

        // On the wire it is exactly the three packets, in order.
        let mut wire = BytesMut::new();
        for (chunk, _) in &chunks {
            wire.extend_from_slice(chunk);
        }
        let mut packets = Vec::new();
        while let Some(p) = codec::decode(&mut wire, v, usize::MAX).expect("valid bytes") {
            packets.push(p);
        }
        assert!(wire.is_empty());
        let topics: Vec<_> = packets
            .iter()
            .map(|p| match p {
                Packet::Publish(p) => (p.topic.to_string(), p.payload.len()),
                other => panic!("{v}: {other:?}"),
            })
            .collect();
        assert_eq!(
            topics,
            [
                ("edges/small".to_string(), 1),
                ("edges/large".to_string(), ZERO_COPY_PAYLOAD),
                ("edges/small".to_string(), 1),
            ],
            "{v}"
        );

        // A connection that cannot write them drops both buffers.
        h.publish(4, large.clone());
        h.s.discard_transmit();
        assert_eq!(h.s.poll_transmit(), None, "{v}");
    }
}
