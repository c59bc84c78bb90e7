//! Session flows in virtual time, against a scripted broker.
//!
//! The "broker" here is the test itself: it decodes whatever the session
//! writes with the real codec (so every assertion is about bytes that would
//! go on the wire), and answers with packets that it first encodes and
//! decodes again (so the session only ever sees what a real decoder could
//! hand it). Time is an `Instant` taken once and moved forward by adding
//! durations; nothing sleeps and nothing is compared with the wall clock.

use std::collections::HashSet;
use std::num::{NonZeroU16, NonZeroU32};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::*;
use crate::codec::{
    AckProperties, Auth, AuthReasonCode, ConnAck, ConnAckProperties, Connect, ConnectProperties,
    ConnectReasonCode, DecodeError, Disconnect, DisconnectProperties, DisconnectReasonCode,
    LastWill, MqttString, Packet, PacketType, PropertyId, ProtocolVersion, PubAck,
    PubAckReasonCode, PubComp, PubRec, PubRel, PubRelReasonCode, Publish, QoS, SubAck,
    SubAckReasonCode, Subscribe, SubscribeProperties, SubscriptionOptions, TopicFilter, UnsubAck,
    UnsubAckReasonCode, Unsubscribe, UnsubscribeProperties, UserProperties, WillProperties, decode,
};

use ProtocolVersion::{V5, V311};
use QoS::{AtLeastOnce as Q1, AtMostOnce as Q0, ExactlyOnce as Q2};

const BOTH: [ProtocolVersion; 2] = [V311, V5];

/// The topic every outgoing test publish goes to.
const TOPIC: &str = "plover/test";

// ---- small builders ----------------------------------------------------

/// A test string as whichever MQTT string type the caller wants
/// (`MqttString`, `TopicName` or `TopicFilter`).
fn s<T: for<'a> TryFrom<&'a str, Error: std::fmt::Debug>>(v: &str) -> T {
    T::try_from(v).expect("a valid test string")
}

fn id(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).expect("non-zero packet id")
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The configuration most tests use: a 10 s keepalive.
fn config(version: ProtocolVersion) -> SessionConfig {
    let mut config = SessionConfig::new(version, s("plover-test"));
    config.keep_alive = 10;
    config
}

/// An outgoing message as the user hands it to the session.
fn message(qos: QoS, payload: impl Into<Bytes>) -> Publish {
    Publish::new(s(TOPIC), payload).with_qos(qos, None)
}

/// An outgoing message as the session must write it.
fn on_wire(qos: QoS, payload: impl Into<Bytes>, packet_id: Option<u16>, dup: bool) -> Packet {
    let mut p = Publish::new(s(TOPIC), payload).with_qos(qos, packet_id.map(id));
    p.dup = dup;
    Packet::Publish(p)
}

/// A message from the broker.
fn incoming(
    topic: &'static str,
    payload: &'static str,
    qos: QoS,
    packet_id: Option<u16>,
) -> Publish {
    // "" is the name of a 5.0 PUBLISH that goes by its Topic Alias alone.
    let topic = if topic.is_empty() {
        TopicName::empty()
    } else {
        s(topic)
    };
    Publish::new(topic, payload).with_qos(qos, packet_id.map(id))
}

fn puback(n: u16) -> Packet {
    Packet::PubAck(PubAck::new(id(n)))
}

fn pubrec(n: u16) -> Packet {
    Packet::PubRec(PubRec::new(id(n)))
}

fn pubrel(n: u16) -> Packet {
    Packet::PubRel(PubRel::new(id(n)))
}

fn pubcomp(n: u16) -> Packet {
    Packet::PubComp(PubComp::new(id(n)))
}

fn connack(session_present: bool) -> ConnAck {
    ConnAck::new(session_present, ConnectReasonCode::Success)
}

fn reason_string(text: &'static str) -> AckProperties {
    AckProperties {
        reason_string: Some(s(text)),
        ..AckProperties::default()
    }
}

fn done(request: RequestId, outcome: PublishOutcome) -> Event {
    Event::PublishDone {
        request,
        result: Ok(outcome),
    }
}

fn failed(request: RequestId, error: RequestError) -> Event {
    Event::PublishDone {
        request,
        result: Err(error),
    }
}

/// The outcome of a QoS 0 publish.
fn sent_qos0() -> PublishOutcome {
    PublishOutcome {
        packet_id: None,
        reason_code: PubAckReasonCode::Success,
        complete_reason: None,
        properties: AckProperties::default(),
    }
}

/// The outcome of a QoS 1 publish acknowledged with Success.
fn acked(n: u16) -> PublishOutcome {
    PublishOutcome {
        packet_id: Some(id(n)),
        reason_code: PubAckReasonCode::Success,
        complete_reason: None,
        properties: AckProperties::default(),
    }
}

/// The outcome of a QoS 2 publish completed with Success.
fn completed(n: u16) -> PublishOutcome {
    PublishOutcome {
        complete_reason: Some(PubRelReasonCode::Success),
        ..acked(n)
    }
}

fn protocol_closed(e: ProtocolError) -> Event {
    Event::Closed(CloseReason::Protocol(e))
}

/// The three bytes of a 5.0 DISCONNECT with a reason code and no properties.
fn disconnect_bytes(code: u8) -> Vec<u8> {
    vec![0xE0, 0x01, code]
}

/// Decodes everything the session wrote; a partial or invalid packet fails
/// the test.
#[track_caller]
fn decode_all(version: ProtocolVersion, bytes: &[u8]) -> Vec<Packet> {
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while !buf.is_empty() {
        match decode(&mut buf, version, usize::MAX) {
            Ok(Some(p)) => out.push(p),
            Ok(None) => panic!(
                "the session wrote a partial packet ({} bytes left)",
                buf.len()
            ),
            Err(e) => panic!("the session wrote bytes that do not decode: {e}"),
        }
    }
    out
}

/// What the session produced, in the order it produced it.
#[derive(Debug, PartialEq)]
enum Out {
    Tx(Packet),
    Ev(Event),
}

/// A session, a virtual clock, and the broker's side of the conversation.
struct Harness {
    s: Session,
    t0: Instant,
    now: Instant,
}

impl Harness {
    fn new(config: SessionConfig) -> Self {
        let t0 = Instant::now();
        Harness {
            s: Session::new(config),
            t0,
            now: t0,
        }
    }

    fn version(&self) -> ProtocolVersion {
        self.s.version()
    }

    /// Moves the clock to `t0 + at`.
    fn at(&mut self, at: Duration) -> Instant {
        let t = self.t0 + at;
        assert!(t >= self.now, "virtual time runs forward");
        self.now = t;
        t
    }

    /// The raw bytes the session wants written.
    fn bytes(&mut self) -> Vec<u8> {
        let bytes = self
            .s
            .poll_transmit()
            .map(|b| b.to_vec())
            .unwrap_or_default();
        // Everything pending comes out at once.
        assert_eq!(self.s.poll_transmit(), None);
        bytes
    }

    /// The packets the session wants written.
    #[track_caller]
    fn sent(&mut self) -> Vec<Packet> {
        let bytes = self.bytes();
        decode_all(self.version(), &bytes)
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.s.poll_event()).collect()
    }

    /// Asserts the session neither wrote anything nor reported anything.
    #[track_caller]
    fn assert_quiet(&mut self) {
        assert_eq!(self.sent(), vec![], "nothing should be sent");
        assert_eq!(self.events(), vec![], "no event expected");
    }

    /// The broker sends `packet`; it goes through the codec both ways first.
    #[track_caller]
    fn feed(&mut self, packet: Packet) {
        let mut buf = BytesMut::new();
        packet
            .encode(self.version(), &mut buf)
            .expect("the broker's packet encodes");
        let mut decoded = decode_all(self.version(), &buf);
        assert_eq!(decoded.len(), 1);
        let packet = decoded.pop().expect("one packet");
        self.s.handle_packet(packet, self.now);
    }

    /// The broker sends raw bytes (one whole packet).
    #[track_caller]
    fn feed_bytes(&mut self, bytes: &[u8]) {
        let mut decoded = decode_all(self.version(), bytes);
        assert_eq!(decoded.len(), 1);
        let packet = decoded.pop().expect("one packet");
        self.s.handle_packet(packet, self.now);
    }

    /// Opens a transport, checks the session sent CONNECT, and answers
    /// `connack`. Returns what the session wrote and reported after the
    /// `Connected` event.
    #[track_caller]
    fn connect_ack(&mut self, connack: ConnAck) -> (Vec<Packet>, Vec<Event>) {
        self.s.handle_connect(self.now);
        let sent = self.sent();
        assert!(
            matches!(sent.as_slice(), [Packet::Connect(_)]),
            "expected CONNECT, got {sent:?}"
        );
        self.feed(Packet::ConnAck(Box::new(connack.clone())));
        let mut events = self.events();
        assert!(!events.is_empty(), "no Connected event");
        assert_eq!(events.remove(0), Event::Connected(Box::new(connack)));
        assert!(self.s.is_connected());
        (self.sent(), events)
    }

    /// Connects with nothing left over from an earlier connection.
    #[track_caller]
    fn connect(&mut self, session_present: bool) {
        let (sent, events) = self.connect_ack(connack(session_present));
        assert_eq!(sent, vec![]);
        assert_eq!(events, vec![]);
    }

    fn publish(&mut self, request: RequestId, qos: QoS, payload: impl Into<Bytes>) {
        self.s
            .handle_publish(request, message(qos, payload), self.now);
    }

    fn subscribe(&mut self, request: RequestId, filters: &[(&'static str, QoS)]) {
        let filters = filters
            .iter()
            .map(|(f, q)| (s(f), SubscriptionOptions::new(*q)))
            .collect();
        self.s
            .handle_subscribe(request, filters, SubscribeProperties::default(), self.now);
    }

    fn unsubscribe(&mut self, request: RequestId, filters: &[&'static str]) {
        let filters = filters.iter().map(|f| s(f)).collect();
        self.s
            .handle_unsubscribe(request, filters, UnsubscribeProperties::default(), self.now);
    }

    /// Fires the timer at the current time.
    fn tick(&mut self) {
        self.s.handle_timeout(self.now);
    }

    /// Drives the session the way the event loop does, firing each deadline
    /// `poll_timeout` names up to and including `t0 + end`, and logs what
    /// came out and when (relative to `t0`).
    #[track_caller]
    fn run_until(&mut self, end: Duration) -> Vec<(Duration, Out)> {
        let end = self.t0 + end;
        let mut log = Vec::new();
        for _ in 0..10_000 {
            let Some(deadline) = self.s.poll_timeout() else {
                break;
            };
            if deadline > end {
                break;
            }
            // A deadline already behind us fires now, as a real timer would.
            let at = deadline.max(self.now);
            self.now = at;
            self.s.handle_timeout(at);
            let mut outs: Vec<Out> = self.sent().into_iter().map(Out::Tx).collect();
            outs.extend(self.events().into_iter().map(Out::Ev));
            assert!(
                !outs.is_empty() || self.s.poll_timeout() != Some(deadline),
                "the timer at {:?} fired without effect and stays armed",
                deadline - self.t0
            );
            log.extend(outs.into_iter().map(|o| (at - self.t0, o)));
        }
        self.now = self.now.max(end);
        log
    }

    fn since_t0(&self, t: Option<Instant>) -> Option<Duration> {
        t.map(|t| t - self.t0)
    }
}

fn harness(version: ProtocolVersion) -> Harness {
    Harness::new(config(version))
}

/// `config` asking the broker to keep the session (no clean start), as a
/// session that is offered Session Present must.
fn persistent(version: ProtocolVersion) -> SessionConfig {
    let mut config = config(version);
    config.clean_start = false;
    config
}

/// A session connected at `t0` with a fresh broker session.
fn connected(version: ProtocolVersion) -> Harness {
    let mut h = harness(version);
    h.connect(false);
    h
}

fn connected_with(config: SessionConfig) -> Harness {
    let mut h = Harness::new(config);
    h.connect(false);
    h
}

// ---- CONNECT / CONNACK --------------------------------------------------

#[test]
fn v311_connect_carries_the_configuration() {
    let mut config = config(V311);
    config.clean_start = false;
    config.will = Some(LastWill::new(s("clients/c1/status"), "offline", Q1, true));
    config.username = Some(s("alice"));
    config.password = Some(Bytes::from_static(b"secret"));
    let mut h = Harness::new(config);
    h.s.handle_connect(h.now);

    let raw = h.bytes();
    assert_eq!(raw[0], 0x10, "CONNECT packet type");
    // Protocol name, level 4, flags (user name, password, will retain,
    // will QoS 1, will, no clean session), keepalive 10.
    assert_eq!(
        &raw[2..12],
        &[0, 4, b'M', b'Q', b'T', b'T', 4, 0b1110_1100, 0, 10]
    );
    let expected = Connect {
        protocol: V311,
        clean_start: false,
        keep_alive: 10,
        client_id: s("plover-test"),
        will: Some(LastWill::new(s("clients/c1/status"), "offline", Q1, true)),
        username: Some(s("alice")),
        password: Some(Bytes::from_static(b"secret")),
        properties: ConnectProperties::default(),
    };
    assert_eq!(
        decode_all(V311, &raw),
        vec![Packet::Connect(Box::new(expected))]
    );
    assert_eq!(h.events(), vec![]);
    assert!(!h.s.is_connected());
}

#[test]
fn v5_connect_carries_properties_and_will_properties() {
    let mut user_properties = UserProperties::new();
    user_properties.push(s("app"), s("plover-tests"));
    let properties = ConnectProperties {
        session_expiry_interval: Some(3600),
        receive_maximum: Some(16),
        maximum_packet_size: Some(65_536),
        topic_alias_maximum: Some(5),
        request_problem_information: Some(true),
        user_properties,
        ..ConnectProperties::default()
    };
    let mut will = LastWill::new(s("clients/c1/status"), "gone", Q0, false);
    will.properties = WillProperties {
        will_delay_interval: Some(30),
        content_type: Some(s("text/plain")),
        ..WillProperties::default()
    };
    let mut config = config(V5);
    config.client_id = s("");
    config.will = Some(will.clone());
    config.connect_properties = properties.clone();
    config.username = Some(s("bob"));
    let mut h = Harness::new(config);
    h.s.handle_connect(h.now);

    let raw = h.bytes();
    // Level 5; flags: user name, will, clean start; keepalive 10.
    assert_eq!(
        &raw[2..12],
        &[0, 4, b'M', b'Q', b'T', b'T', 5, 0b1000_0110, 0, 10]
    );
    let expected = Connect {
        protocol: V5,
        clean_start: true,
        keep_alive: 10,
        client_id: s(""),
        will: Some(will),
        username: Some(s("bob")),
        password: None,
        properties,
    };
    assert_eq!(
        decode_all(V5, &raw),
        vec![Packet::Connect(Box::new(expected))]
    );
}

#[test]
fn connack_success_reports_connected() {
    for v in BOTH {
        let mut h = harness(v);
        h.s.handle_connect(h.now);
        h.sent();
        assert!(!h.s.is_connected());
        let mut ack = connack(false);
        if v == V5 {
            ack.properties = ConnAckProperties {
                assigned_client_identifier: Some(s("auto-7f3a")),
                topic_alias_maximum: Some(10),
                ..ConnAckProperties::default()
            };
        }
        h.feed(Packet::ConnAck(Box::new(ack.clone())));
        assert_eq!(
            h.events(),
            vec![Event::Connected(Box::new(ack.clone()))],
            "{v}"
        );
        assert_eq!(h.sent(), vec![], "{v}");
        assert!(h.s.is_connected());
        assert!(!h.s.is_closed());
        assert_eq!(h.s.connack(), Some(&ack));
    }
}

#[test]
fn v311_refused_connack_maps_return_codes() {
    let cases = [
        (1, ConnectReasonCode::UnsupportedProtocolVersion),
        (2, ConnectReasonCode::ClientIdentifierNotValid),
        (3, ConnectReasonCode::ServerUnavailable),
        (4, ConnectReasonCode::BadUserNameOrPassword),
        (5, ConnectReasonCode::NotAuthorized),
    ];
    for (code, reason) in cases {
        let mut h = harness(V311);
        h.s.handle_connect(h.now);
        h.sent();
        h.feed_bytes(&[0x20, 0x02, 0x00, code]);
        assert_eq!(
            h.events(),
            vec![Event::Closed(CloseReason::Refused {
                reason,
                reason_string: None,
                server_reference: None,
            })],
            "return code {code}"
        );
        assert_eq!(h.sent(), vec![]);
        assert!(!h.s.is_connected());
        assert!(h.s.is_closed());
        assert_eq!(
            h.s.poll_timeout(),
            None,
            "no connect timeout after a refusal"
        );
    }
}

#[test]
fn v5_refused_connack_carries_reason_string() {
    let mut h = harness(V5);
    h.s.handle_connect(h.now);
    h.sent();
    let mut ack = ConnAck::new(false, ConnectReasonCode::NotAuthorized);
    ack.properties.reason_string = Some(s("client not in ACL"));
    h.feed(Packet::ConnAck(Box::new(ack)));
    assert_eq!(
        h.events(),
        vec![Event::Closed(CloseReason::Refused {
            reason: ConnectReasonCode::NotAuthorized,
            reason_string: Some(s("client not in ACL")),
            server_reference: None,
        })]
    );
    assert_eq!(h.sent(), vec![]);
    assert!(h.s.is_closed());
}

#[test]
fn no_connack_within_connect_timeout_closes_exactly_at_the_deadline() {
    for v in BOTH {
        let mut config = config(v);
        config.connect_timeout = secs(5);
        let mut h = Harness::new(config);
        h.s.handle_connect(h.now);
        h.sent();
        assert_eq!(h.since_t0(h.s.poll_timeout()), Some(secs(5)));

        // A timer firing early changes nothing.
        h.at(secs(5) - Duration::from_nanos(1));
        h.tick();
        h.assert_quiet();
        assert!(!h.s.is_closed());
        assert_eq!(h.since_t0(h.s.poll_timeout()), Some(secs(5)));

        h.at(secs(5));
        h.tick();
        assert_eq!(
            h.events(),
            vec![Event::Closed(CloseReason::ConnectTimeout)],
            "{v}"
        );
        assert_eq!(h.sent(), vec![]);
        assert_eq!(h.s.poll_timeout(), None);

        // A CONNACK that arrives after that belongs to nobody.
        h.feed(Packet::ConnAck(Box::new(connack(false))));
        h.assert_quiet();
        assert!(!h.s.is_connected());
    }
}

#[test]
fn connack_in_time_cancels_the_connect_timeout() {
    let mut config = config(V311);
    config.connect_timeout = secs(5);
    config.keep_alive = 0;
    let mut h = Harness::new(config);
    h.s.handle_connect(h.now);
    h.sent();
    h.at(secs(4));
    h.feed(Packet::ConnAck(Box::new(connack(false))));
    h.events();
    assert_eq!(h.s.poll_timeout(), None);
    h.at(secs(5));
    h.tick();
    h.assert_quiet();
    assert!(h.s.is_connected());
}

#[test]
fn publish_before_connack_is_a_protocol_error() {
    for v in BOTH {
        let mut h = harness(v);
        h.s.handle_connect(h.now);
        h.sent();
        h.feed(Packet::Publish(incoming("a/b", "early", Q1, Some(1))));
        assert_eq!(
            h.events(),
            vec![protocol_closed(ProtocolError::UnexpectedPacket(
                PacketType::Publish
            ))],
            "{v}: no Message, just the close"
        );
        assert!(
            !h.sent().iter().any(|p| matches!(p, Packet::PubAck(_))),
            "{v}: no PUBACK"
        );
        assert!(h.s.is_closed());
    }
}

#[test]
fn requests_made_before_connack_wait_for_it() {
    let mut h = harness(V311);
    h.publish(1, Q1, "first");
    h.subscribe(2, &[("a/#", Q1)]);
    h.publish(3, Q0, "second");
    assert_eq!(h.sent(), vec![], "no transport yet");
    assert_eq!(h.s.pending_requests(), 3);

    h.s.handle_connect(h.now);
    let sent = h.sent();
    assert!(
        matches!(sent.as_slice(), [Packet::Connect(_)]),
        "only CONNECT before CONNACK: {sent:?}"
    );

    h.feed(Packet::ConnAck(Box::new(connack(false))));
    // Subscribes and unsubscribes go first, then publishes in order.
    assert_eq!(
        h.sent(),
        vec![
            Packet::Subscribe(Subscribe::new(
                id(1),
                s("a/#"),
                SubscriptionOptions::new(Q1)
            )),
            on_wire(Q1, "first", Some(2), false),
            on_wire(Q0, "second", None, false),
        ]
    );
    assert_eq!(
        h.events(),
        vec![
            Event::Connected(Box::new(connack(false))),
            done(3, sent_qos0())
        ]
    );
}

// ---- packet identifiers -------------------------------------------------

#[test]
fn packet_ids_are_nonzero_unique_and_released_on_completion() {
    let mut h = connected(V5);
    for r in 0..4 {
        h.publish(r, Q1, "q1");
    }
    h.publish(4, Q2, "q2");
    h.publish(5, Q2, "q2");
    h.subscribe(6, &[("a", Q0)]);
    h.unsubscribe(7, &["b"]);

    let mut ids = Vec::new();
    for p in h.sent() {
        let pid = match p {
            Packet::Publish(p) => p.packet_id.expect("QoS > 0 has an id"),
            Packet::Subscribe(s) => s.packet_id,
            Packet::Unsubscribe(u) => u.packet_id,
            other => panic!("unexpected {other:?}"),
        };
        ids.push(pid.get());
    }
    assert_eq!(ids.len(), 8);
    assert!(ids.iter().all(|&i| i != 0));
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        8,
        "ids in flight are unique: {ids:?}"
    );
    assert_eq!(h.s.ids.in_use(), 8);

    // Answer everything; every identifier is released.
    for &i in &ids {
        match i {
            1..=4 => h.feed(puback(i)),
            5 | 6 => {
                h.feed(pubrec(i));
                h.feed(pubcomp(i));
            }
            7 => h.feed(Packet::SubAck(SubAck {
                packet_id: id(7),
                reason_codes: vec![SubAckReasonCode::GrantedQoS0],
                properties: AckProperties::default(),
            })),
            _ => h.feed(Packet::UnsubAck(UnsubAck {
                packet_id: id(i),
                reason_codes: vec![UnsubAckReasonCode::Success],
                properties: AckProperties::default(),
            })),
        }
    }
    assert_eq!(h.events().len(), 8);
    assert_eq!(h.s.ids.in_use(), 0);
    assert_eq!(h.s.pending_requests(), 0);
    assert!(h.s.is_connected(), "every answer matched");
}

// ---- outgoing publishes -------------------------------------------------

#[test]
fn qos0_publish_is_done_when_sent() {
    for v in BOTH {
        let mut h = connected(v);
        h.publish(1, Q0, "hello");
        assert_eq!(h.sent(), vec![on_wire(Q0, "hello", None, false)], "{v}");
        assert_eq!(h.events(), vec![done(1, sent_qos0())], "{v}");
        assert_eq!(h.s.inflight_len(), 0);
        assert_eq!(h.s.pending_requests(), 0);
    }
}

#[test]
fn qos1_publish_completes_on_puback() {
    for v in BOTH {
        let mut h = connected(v);
        h.publish(1, Q1, "hello");
        assert_eq!(h.sent(), vec![on_wire(Q1, "hello", Some(1), false)], "{v}");
        assert_eq!(h.events(), vec![], "{v}: not done before PUBACK");
        assert_eq!(h.s.inflight_len(), 1);

        let mut ack = PubAck::new(id(1));
        if v == V5 {
            ack.properties = reason_string("stored");
            ack.properties.user_properties.push(s("node"), s("b2"));
        }
        h.feed(Packet::PubAck(ack.clone()));
        let outcome = PublishOutcome {
            properties: ack.properties,
            ..acked(1)
        };
        assert_eq!(h.events(), vec![done(1, outcome)], "{v}");
        assert_eq!(h.sent(), vec![]);
        assert_eq!(h.s.inflight_len(), 0);
        assert_eq!(h.s.ids.in_use(), 0);
    }
}

#[test]
fn qos2_publish_runs_pubrec_pubrel_pubcomp() {
    for v in BOTH {
        let mut h = connected(v);
        h.publish(1, Q2, "once");
        assert_eq!(h.sent(), vec![on_wire(Q2, "once", Some(1), false)], "{v}");

        h.feed(pubrec(1));
        assert_eq!(h.bytes(), vec![0x62, 0x02, 0x00, 0x01], "{v}: PUBREL 1");
        assert_eq!(h.events(), vec![], "{v}: not done at PUBREC");
        assert_eq!(h.s.inflight_len(), 1, "{v}: still in flight until PUBCOMP");

        h.feed(pubcomp(1));
        assert_eq!(h.events(), vec![done(1, completed(1))], "{v}");
        assert_eq!(h.sent(), vec![]);
        assert_eq!(h.s.inflight_len(), 0);
        assert_eq!(h.s.ids.in_use(), 0);
    }
}

#[test]
fn qos2_repeated_pubrec_after_pubrel_is_answered_again() {
    let mut h = connected(V311);
    h.publish(1, Q2, "once");
    h.sent();
    h.feed(pubrec(1));
    assert_eq!(h.sent(), vec![pubrel(1)]);
    h.feed(pubrec(1));
    assert_eq!(h.sent(), vec![pubrel(1)]);
    assert_eq!(h.events(), vec![]);
    h.feed(pubcomp(1));
    assert_eq!(h.events(), vec![done(1, completed(1))]);
}

#[test]
fn v5_qos2_failing_pubrec_ends_the_exchange() {
    for code in [
        PubAckReasonCode::UnspecifiedError,
        PubAckReasonCode::QuotaExceeded,
    ] {
        let mut h = connected(V5);
        h.publish(1, Q2, "once");
        h.sent();
        let rec = PubRec {
            packet_id: id(1),
            reason_code: code,
            properties: reason_string("over quota"),
        };
        h.feed(Packet::PubRec(rec));
        assert_eq!(h.sent(), vec![], "{code}: no PUBREL after a failing PUBREC");
        let outcome = PublishOutcome {
            packet_id: Some(id(1)),
            reason_code: code,
            complete_reason: None,
            properties: reason_string("over quota"),
        };
        assert_eq!(h.events(), vec![done(1, outcome)]);
        assert_eq!(h.s.inflight_len(), 0);
        assert_eq!(h.s.ids.in_use(), 0);

        // The exchange is over: a PUBCOMP for it is not expected any more.
        h.feed(pubcomp(1));
        assert_eq!(
            h.events(),
            vec![protocol_closed(ProtocolError::UnknownPacketId {
                packet: PacketType::PubComp,
                id: 1
            })]
        );
    }
}

#[test]
fn v5_qos2_pubrec_with_success_class_reason_still_releases() {
    let mut h = connected(V5);
    h.publish(1, Q2, "once");
    h.sent();
    let rec = PubRec {
        packet_id: id(1),
        reason_code: PubAckReasonCode::NoMatchingSubscribers,
        properties: AckProperties::default(),
    };
    h.feed(Packet::PubRec(rec));
    assert_eq!(h.sent(), vec![pubrel(1)]);
    h.feed(pubcomp(1));
    let outcome = PublishOutcome {
        reason_code: PubAckReasonCode::NoMatchingSubscribers,
        ..completed(1)
    };
    assert_eq!(h.events(), vec![done(1, outcome)]);
}

#[test]
fn v5_puback_reasons_are_reported_as_is() {
    let mut h = connected(V5);
    h.publish(1, Q1, "a");
    h.publish(2, Q1, "b");
    h.sent();
    let mut denied = reason_string("acl: publish denied");
    denied.user_properties.push(s("rule"), s("deny-all"));
    h.feed(Packet::PubAck(PubAck {
        packet_id: id(1),
        reason_code: PubAckReasonCode::NoMatchingSubscribers,
        properties: reason_string("nobody is listening"),
    }));
    h.feed(Packet::PubAck(PubAck {
        packet_id: id(2),
        reason_code: PubAckReasonCode::NotAuthorized,
        properties: denied.clone(),
    }));
    assert_eq!(
        h.events(),
        vec![
            done(
                1,
                PublishOutcome {
                    reason_code: PubAckReasonCode::NoMatchingSubscribers,
                    properties: reason_string("nobody is listening"),
                    ..acked(1)
                }
            ),
            done(
                2,
                PublishOutcome {
                    reason_code: PubAckReasonCode::NotAuthorized,
                    properties: denied,
                    ..acked(2)
                }
            ),
        ]
    );
    assert!(
        h.s.is_connected(),
        "a refused message is not a protocol error"
    );
}

// ---- incoming publishes -------------------------------------------------

#[test]
fn incoming_qos0_is_delivered_without_answer() {
    for v in BOTH {
        let mut h = connected(v);
        let p = incoming("sensors/door", "open", Q0, None).with_retain(true);
        h.feed(Packet::Publish(p.clone()));
        assert_eq!(h.events(), vec![Event::Message(p)], "{v}");
        assert_eq!(h.sent(), vec![], "{v}");
    }
}

#[test]
fn incoming_qos1_is_delivered_and_acknowledged() {
    for v in BOTH {
        let mut h = connected(v);
        let p = incoming("sensors/door", "open", Q1, Some(7));
        h.feed(Packet::Publish(p.clone()));
        assert_eq!(h.events(), vec![Event::Message(p)], "{v}");
        assert_eq!(h.bytes(), vec![0x40, 0x02, 0x00, 0x07], "{v}: PUBACK 7");
    }
}

#[test]
fn incoming_qos2_is_delivered_once_and_released_by_pubrel() {
    for v in BOTH {
        let mut h = connected(v);
        let first = incoming("cmd/valve", "close", Q2, Some(7));
        h.feed(Packet::Publish(first.clone()));
        assert_eq!(h.events(), vec![Event::Message(first.clone())], "{v}");
        assert_eq!(h.bytes(), vec![0x50, 0x02, 0x00, 0x07], "{v}: PUBREC 7");

        // The broker did not see our PUBREC and sends the message again.
        let mut again = first;
        again.dup = true;
        h.feed(Packet::Publish(again));
        assert_eq!(
            h.events(),
            vec![],
            "{v}: [MQTT-4.3.3-9] not delivered twice"
        );
        assert_eq!(h.sent(), vec![pubrec(7)], "{v}: PUBREC again");

        h.feed(pubrel(7));
        assert_eq!(
            h.bytes(),
            vec![0x70, 0x02, 0x00, 0x07],
            "{v}: PUBCOMP 7, Success"
        );
        assert_eq!(h.events(), vec![]);

        // Id 7 is free: a new message with it is a new message.
        let next = incoming("cmd/valve", "open", Q2, Some(7));
        h.feed(Packet::Publish(next.clone()));
        assert_eq!(h.events(), vec![Event::Message(next)], "{v}");
        assert_eq!(h.sent(), vec![pubrec(7)]);
    }
}

#[test]
fn pubrel_for_an_unknown_id_gets_pubcomp() {
    let mut h = connected(V311);
    h.feed(pubrel(9));
    assert_eq!(h.bytes(), vec![0x70, 0x02, 0x00, 0x09]);
    assert_eq!(h.events(), vec![]);
    assert!(h.s.is_connected());

    let mut h = connected(V5);
    h.feed(pubrel(9));
    // 5.0: PUBCOMP 9 with 0x92 Packet Identifier not found.
    assert_eq!(h.bytes(), vec![0x70, 0x03, 0x00, 0x09, 0x92]);
    assert_eq!(h.events(), vec![]);
    assert!(h.s.is_connected());
}

// ---- subscribe / unsubscribe ---------------------------------------------

#[test]
fn subscribe_reports_per_filter_reason_codes() {
    for v in BOTH {
        let mut h = connected(v);
        let filters = vec![
            (s("a/+"), SubscriptionOptions::new(Q1)),
            (s("b/#"), SubscriptionOptions::new(Q2)),
            (s("secret/x"), SubscriptionOptions::new(Q0)),
        ];
        let properties = match v {
            V5 => SubscribeProperties {
                subscription_identifier: NonZeroU32::new(42),
                ..SubscribeProperties::default()
            },
            V311 => SubscribeProperties::default(),
        };
        h.s.handle_subscribe(10, filters.clone(), properties.clone(), h.now);
        assert_eq!(
            h.sent(),
            vec![Packet::Subscribe(Subscribe {
                packet_id: id(1),
                filters,
                properties
            })],
            "{v}"
        );
        assert_eq!(h.events(), vec![]);

        let (codes, properties) = match v {
            V311 => (
                vec![
                    SubAckReasonCode::GrantedQoS1,
                    SubAckReasonCode::GrantedQoS1,
                    SubAckReasonCode::UnspecifiedError,
                ],
                AckProperties::default(),
            ),
            V5 => (
                vec![
                    SubAckReasonCode::GrantedQoS1,
                    SubAckReasonCode::GrantedQoS2,
                    SubAckReasonCode::NotAuthorized,
                ],
                reason_string("secret/x: denied"),
            ),
        };
        let ack = SubAck {
            packet_id: id(1),
            reason_codes: codes,
            properties,
        };
        h.feed(Packet::SubAck(ack.clone()));
        assert_eq!(
            h.events(),
            vec![Event::SubscribeDone {
                request: 10,
                result: Ok(ack)
            }],
            "{v}"
        );
        assert_eq!(h.s.pending_requests(), 0);
        assert_eq!(h.s.ids.in_use(), 0);
    }
}

#[test]
fn concurrent_subscribes_answered_out_of_order() {
    let mut h = connected(V5);
    h.subscribe(100, &[("a", Q0)]);
    h.subscribe(200, &[("b", Q1)]);
    h.subscribe(300, &[("c", Q2)]);
    let sent: Vec<u16> = h
        .sent()
        .into_iter()
        .map(|p| match p {
            Packet::Subscribe(s) => s.packet_id.get(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(sent, vec![1, 2, 3]);

    let ack = |n: u16, code| SubAck {
        packet_id: id(n),
        reason_codes: vec![code],
        properties: AckProperties::default(),
    };
    h.feed(Packet::SubAck(ack(3, SubAckReasonCode::GrantedQoS2)));
    h.feed(Packet::SubAck(ack(1, SubAckReasonCode::GrantedQoS0)));
    h.feed(Packet::SubAck(ack(2, SubAckReasonCode::GrantedQoS1)));
    assert_eq!(
        h.events(),
        vec![
            Event::SubscribeDone {
                request: 300,
                result: Ok(ack(3, SubAckReasonCode::GrantedQoS2))
            },
            Event::SubscribeDone {
                request: 100,
                result: Ok(ack(1, SubAckReasonCode::GrantedQoS0))
            },
            Event::SubscribeDone {
                request: 200,
                result: Ok(ack(2, SubAckReasonCode::GrantedQoS1))
            },
        ]
    );
    assert!(h.s.is_connected());
}

#[test]
fn v311_unsubscribe_completes_on_unsuback_without_codes() {
    let mut h = connected(V311);
    h.unsubscribe(5, &["a/+", "b/#"]);
    assert_eq!(
        h.sent(),
        vec![Packet::Unsubscribe(Unsubscribe {
            packet_id: id(1),
            filters: vec![s("a/+"), s("b/#")],
            properties: UnsubscribeProperties::default(),
        })]
    );
    h.feed_bytes(&[0xB0, 0x02, 0x00, 0x01]);
    let ack = UnsubAck {
        packet_id: id(1),
        reason_codes: vec![],
        properties: AckProperties::default(),
    };
    assert_eq!(
        h.events(),
        vec![Event::UnsubscribeDone {
            request: 5,
            result: Ok(ack)
        }]
    );
    assert_eq!(h.s.pending_requests(), 0);
}

#[test]
fn v5_unsubscribe_reports_per_filter_reason_codes() {
    let mut h = connected(V5);
    h.unsubscribe(5, &["a/+", "b/#"]);
    h.sent();
    let ack = UnsubAck {
        packet_id: id(1),
        reason_codes: vec![
            UnsubAckReasonCode::Success,
            UnsubAckReasonCode::NoSubscriptionExisted,
        ],
        properties: reason_string("b/# was not subscribed"),
    };
    h.feed(Packet::UnsubAck(ack.clone()));
    assert_eq!(
        h.events(),
        vec![Event::UnsubscribeDone {
            request: 5,
            result: Ok(ack)
        }]
    );
}

#[test]
fn suback_with_wrong_number_of_codes_is_a_protocol_error() {
    for v in BOTH {
        let mut h = connected(v);
        h.subscribe(1, &[("a", Q1), ("b", Q1)]);
        h.sent();
        h.feed(Packet::SubAck(SubAck {
            packet_id: id(1),
            reason_codes: vec![SubAckReasonCode::GrantedQoS1],
            properties: AckProperties::default(),
        }));
        assert_eq!(
            h.events(),
            vec![protocol_closed(ProtocolError::WrongReasonCount(
                PacketType::SubAck
            ))],
            "{v}"
        );
        let expected = if v == V5 {
            disconnect_bytes(0x82)
        } else {
            vec![]
        };
        assert_eq!(h.bytes(), expected, "{v}");
    }

    let mut h = connected(V5);
    h.unsubscribe(1, &["a", "b"]);
    h.sent();
    h.feed(Packet::UnsubAck(UnsubAck {
        packet_id: id(1),
        reason_codes: vec![UnsubAckReasonCode::Success; 3],
        properties: AckProperties::default(),
    }));
    assert_eq!(
        h.events(),
        vec![protocol_closed(ProtocolError::WrongReasonCount(
            PacketType::UnsubAck
        ))]
    );
    assert_eq!(h.bytes(), disconnect_bytes(0x82));
}

#[test]
fn suback_for_an_id_not_awaiting_one_is_a_protocol_error() {
    // No request at all.
    let mut h = connected(V311);
    h.feed(Packet::SubAck(SubAck {
        packet_id: id(4),
        reason_codes: vec![SubAckReasonCode::GrantedQoS0],
        properties: AckProperties::default(),
    }));
    assert_eq!(
        h.events(),
        vec![protocol_closed(ProtocolError::UnknownPacketId {
            packet: PacketType::SubAck,
            id: 4
        })]
    );

    // The id belongs to an UNSUBSCRIBE, not a SUBSCRIBE.
    let mut h = connected(V5);
    h.unsubscribe(1, &["a"]);
    h.sent();
    h.feed(Packet::SubAck(SubAck {
        packet_id: id(1),
        reason_codes: vec![SubAckReasonCode::GrantedQoS0],
        properties: AckProperties::default(),
    }));
    assert_eq!(
        h.events(),
        vec![protocol_closed(ProtocolError::UnknownPacketId {
            packet: PacketType::SubAck,
            id: 1
        })]
    );
    assert_eq!(h.bytes(), disconnect_bytes(0x82));
}

// ---- keepalive ----------------------------------------------------------

#[test]
fn pingreq_goes_out_exactly_one_keepalive_after_the_last_activity() {
    for v in BOTH {
        let mut h = harness(v);
        h.s.handle_connect(h.now); // CONNECT written at 0 s
        h.sent();
        h.at(secs(1));
        h.feed(Packet::ConnAck(Box::new(connack(false)))); // CONNACK read at 1 s
        h.events();
        assert_eq!(h.since_t0(h.s.poll_timeout()), Some(secs(10)), "{v}");

        h.at(secs(10) - ms(1));
        h.tick();
        h.assert_quiet();

        h.at(secs(10));
        h.tick();
        assert_eq!(h.bytes(), vec![0xC0, 0x00], "{v}: PINGREQ");
        assert_eq!(h.events(), vec![]);
        assert_eq!(
            h.since_t0(h.s.poll_timeout()),
            Some(secs(15)),
            "{v}: PINGRESP due within half the keepalive"
        );
    }
}

#[test]
fn no_pingreq_while_traffic_flows_both_ways() {
    let mut h = connected(V311);
    let mut log = Vec::new();
    // A QoS 1 publish every 4 s, acknowledged a second later.
    for k in 0..15u16 {
        let t = u64::from(k) * 4;
        log.extend(h.run_until(secs(t + 1)));
        h.at(secs(t + 1));
        h.publish(k.into(), Q1, "tick");
        h.sent();
        log.extend(h.run_until(secs(t + 2)));
        h.at(secs(t + 2));
        h.feed(puback(k + 1));
        h.events();
    }
    assert_eq!(log, vec![], "no PINGREQ while both directions are busy");
    // Last publish at 57 s, its PUBACK at 58 s: the first ping is due at 67 s.
    let log = h.run_until(secs(67));
    assert_eq!(log, vec![(secs(67), Out::Tx(Packet::PingReq))]);
}

#[test]
fn pings_when_nothing_comes_in_even_while_sending() {
    let mut h = connected(V311);
    let mut log = Vec::new();
    for k in 1..=4u64 {
        log.extend(h.run_until(secs(3 * k)));
        h.at(secs(3 * k));
        h.publish(k, Q0, "one way");
        h.sent();
        h.events();
    }
    log.extend(h.run_until(secs(13)));
    // Nothing came in since the CONNACK at 0 s.
    assert_eq!(log, vec![(secs(10), Out::Tx(Packet::PingReq))]);
}

#[test]
fn pingresp_clears_the_ping_and_rearms_keepalive() {
    for v in BOTH {
        let mut h = connected(v);
        assert_eq!(
            h.run_until(secs(10)),
            vec![(secs(10), Out::Tx(Packet::PingReq))],
            "{v}"
        );
        h.at(secs(12));
        h.feed(Packet::PingResp);
        h.assert_quiet();
        // Next ping one keepalive after the PINGREQ was written.
        assert_eq!(h.since_t0(h.s.poll_timeout()), Some(secs(20)), "{v}");
        assert_eq!(
            h.run_until(secs(20)),
            vec![(secs(20), Out::Tx(Packet::PingReq))],
            "{v}"
        );
        h.at(secs(21));
        h.feed(Packet::PingResp);
        assert_eq!(h.run_until(secs(29)), vec![], "{v}");
        assert!(h.s.is_connected());
    }
}

#[test]
fn missing_pingresp_closes_after_half_the_keepalive() {
    for v in BOTH {
        let mut h = connected(v);
        let log = h.run_until(secs(60));
        assert_eq!(
            log,
            vec![
                (secs(10), Out::Tx(Packet::PingReq)),
                // 1.5 × keepalive after the last sign of life.
                (
                    secs(15),
                    Out::Ev(Event::Closed(CloseReason::KeepAliveTimeout))
                ),
            ],
            "{v}"
        );
        assert!(h.s.is_closed());
        assert_eq!(h.s.poll_timeout(), None);
    }
}

#[test]
fn keepalive_timeout_does_not_fire_early() {
    let mut h = connected(V5);
    h.run_until(secs(10));
    h.at(secs(15) - ms(1));
    h.tick();
    h.assert_quiet();
    assert!(h.s.is_connected());
    h.at(secs(15));
    h.tick();
    assert_eq!(
        h.events(),
        vec![Event::Closed(CloseReason::KeepAliveTimeout)]
    );
}

#[test]
fn any_packet_answers_a_ping() {
    let mut h = connected(V311);
    h.run_until(secs(10));
    h.at(secs(12));
    let p = incoming("a", "b", Q0, None);
    h.feed(Packet::Publish(p.clone()));
    assert_eq!(h.events(), vec![Event::Message(p)]);
    let log = h.run_until(secs(19));
    assert_eq!(log, vec![], "the PUBLISH answered the PINGREQ");
    assert!(h.s.is_connected());
    assert_eq!(h.since_t0(h.s.poll_timeout()), Some(secs(20)));
}

#[test]
fn keepalive_zero_arms_no_deadline() {
    for v in BOTH {
        let mut config = config(v);
        config.keep_alive = 0;
        let mut h = connected_with(config);
        assert_eq!(h.s.poll_timeout(), None, "{v}");
        h.at(secs(100_000));
        h.tick();
        h.assert_quiet();
        assert!(h.s.is_connected());
    }
}

#[test]
fn v5_server_keep_alive_overrides_ours() {
    let mut h = harness(V5);
    let mut ack = connack(false);
    ack.properties.server_keep_alive = Some(4);
    let (sent, events) = h.connect_ack(ack);
    assert_eq!((sent, events), (vec![], vec![]));
    assert_eq!(h.s.keep_alive(), secs(4));
    assert_eq!(
        h.run_until(secs(30)),
        vec![
            (secs(4), Out::Tx(Packet::PingReq)),
            (
                secs(6),
                Out::Ev(Event::Closed(CloseReason::KeepAliveTimeout))
            ),
        ]
    );

    // The next connection starts from our own value again.
    h.at(secs(40));
    h.connect(false);
    assert_eq!(h.s.keep_alive(), secs(10));
    assert_eq!(h.since_t0(h.s.poll_timeout()), Some(secs(50)));

    // Server Keep Alive 0 turns keepalive off.
    let mut h = harness(V5);
    let mut ack = connack(false);
    ack.properties.server_keep_alive = Some(0);
    h.connect_ack(ack);
    assert_eq!(h.s.poll_timeout(), None);
}

#[test]
fn paused_reads_suspend_the_pingresp_timeout() {
    let mut h = connected(V311);
    assert_eq!(
        h.run_until(secs(10)),
        vec![(secs(10), Out::Tx(Packet::PingReq))]
    );
    h.at(secs(11));
    h.s.handle_read_paused(true, h.now);
    // No timeout while we are not the ones listening, but a PINGREQ every
    // keepalive we sent nothing, so the broker keeps us.
    let pings: Vec<(Duration, Out)> = (2..=10)
        .map(|n| (secs(10 * n), Out::Tx(Packet::PingReq)))
        .collect();
    assert_eq!(
        h.run_until(secs(100)),
        pings,
        "no keepalive timeout while we are not reading, and pings go on"
    );
    assert!(h.s.is_connected());

    // Reading again at 100 s: the broker gets a fresh window from then.
    h.at(secs(100));
    h.s.handle_read_paused(false, h.now);
    let log = h.run_until(secs(200));
    let closed_at: Vec<Duration> = log
        .iter()
        .filter(|(_, o)| *o == Out::Ev(Event::Closed(CloseReason::KeepAliveTimeout)))
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(closed_at.len(), 1, "{log:?}");
    assert!(
        closed_at[0] >= secs(105) && closed_at[0] <= secs(115),
        "closed at {:?}: expected at least half a keepalive after resuming and at most 1.5 ×",
        closed_at[0]
    );
}

#[test]
fn a_pingresp_after_resuming_reads_keeps_the_connection() {
    let mut h = connected(V311);
    h.run_until(secs(10));
    h.at(secs(11));
    h.s.handle_read_paused(true, h.now);
    h.run_until(secs(100));
    h.at(secs(100));
    h.s.handle_read_paused(false, h.now);
    // The driver reads the PINGRESP that was waiting in the socket.
    let mut log = h.run_until(secs(101));
    h.at(secs(101));
    h.feed(Packet::PingResp);
    log.extend(h.run_until(secs(109)));
    assert!(!log.iter().any(|(_, o)| matches!(o, Out::Ev(_))), "{log:?}");
    assert!(h.s.is_connected());
}

// ---- flow control -------------------------------------------------------

#[test]
fn inflight_window_releases_one_publish_per_puback_in_order() {
    let mut config = config(V311);
    config.max_inflight = 3;
    let mut h = connected_with(config);
    for r in 0..10u64 {
        h.publish(r, Q1, format!("m{r}"));
    }
    assert_eq!(
        h.sent(),
        vec![
            on_wire(Q1, "m0", Some(1), false),
            on_wire(Q1, "m1", Some(2), false),
            on_wire(Q1, "m2", Some(3), false),
        ]
    );
    assert_eq!(h.s.inflight_len(), 3);
    assert_eq!(h.s.queued_len(), 7);

    for n in 1..=10u16 {
        h.feed(puback(n));
        assert_eq!(h.events(), vec![done(u64::from(n) - 1, acked(n))]);
        let expected = if n <= 7 {
            vec![on_wire(Q1, format!("m{}", n + 2), Some(n + 3), false)]
        } else {
            vec![]
        };
        assert_eq!(h.sent(), expected, "after PUBACK {n}");
        assert!(h.s.inflight_len() <= 3);
    }
    assert_eq!(h.s.pending_requests(), 0);
}

#[test]
fn qos0_behind_a_full_window_keeps_fifo_order() {
    let mut config = config(V311);
    config.max_inflight = 1;
    let mut h = connected_with(config);
    h.publish(1, Q1, "a");
    h.publish(2, Q1, "b");
    h.publish(3, Q0, "c");
    h.publish(4, Q1, "d");
    assert_eq!(h.sent(), vec![on_wire(Q1, "a", Some(1), false)]);
    assert_eq!(h.events(), vec![], "c waits behind b");

    h.feed(puback(1));
    assert_eq!(
        h.sent(),
        vec![
            on_wire(Q1, "b", Some(2), false),
            on_wire(Q0, "c", None, false)
        ]
    );
    assert_eq!(h.events(), vec![done(1, acked(1)), done(3, sent_qos0())]);

    h.feed(puback(2));
    assert_eq!(h.sent(), vec![on_wire(Q1, "d", Some(3), false)]);
    h.feed(puback(3));
    assert_eq!(h.events(), vec![done(2, acked(2)), done(4, acked(3))]);
}

#[test]
fn qos2_holds_its_slot_until_pubcomp() {
    let mut config = config(V5);
    config.max_inflight = 1;
    let mut h = connected_with(config);
    h.publish(1, Q2, "x");
    h.publish(2, Q2, "y");
    assert_eq!(h.sent(), vec![on_wire(Q2, "x", Some(1), false)]);
    h.feed(pubrec(1));
    assert_eq!(h.sent(), vec![pubrel(1)], "PUBREC does not free the slot");
    h.feed(pubcomp(1));
    assert_eq!(h.sent(), vec![on_wire(Q2, "y", Some(2), false)]);
}

#[test]
fn v5_receive_maximum_lowers_the_window() {
    let mut h = harness(V5);
    let mut ack = connack(false);
    ack.properties.receive_maximum = Some(2);
    h.connect_ack(ack);
    for r in 0..5u64 {
        h.publish(r, Q1, "m");
    }
    assert_eq!(h.sent().len(), 2);
    assert_eq!(h.s.inflight_len(), 2);
    h.feed(puback(1));
    assert_eq!(h.sent(), vec![on_wire(Q1, "m", Some(3), false)]);
    assert_eq!(h.s.inflight_len(), 2);

    // A Receive Maximum above ours does not raise our limit.
    let mut config = config(V5);
    config.max_inflight = 3;
    let mut h = Harness::new(config);
    let mut ack = connack(false);
    ack.properties.receive_maximum = Some(100);
    h.connect_ack(ack);
    for r in 0..5u64 {
        h.publish(r, Q1, "m");
    }
    assert_eq!(h.sent().len(), 3);
}

#[test]
fn v5_maximum_packet_size_fails_larger_publishes_without_sending() {
    const MAX: u32 = 64;
    let mut h = harness(V5);
    let mut ack = connack(false);
    ack.properties.maximum_packet_size = Some(MAX);
    h.connect_ack(ack);

    // The size of a QoS 1 PUBLISH to TOPIC with an n-byte payload.
    let size_of = |n: usize| {
        Packet::Publish(Publish::new(s(TOPIC), vec![0u8; n]).with_qos(Q1, Some(id(1))))
            .encoded_len(V5)
            .expect("encodable")
    };
    let fits = (0..200)
        .rfind(|&n| size_of(n) <= MAX as usize)
        .expect("some payload fits");
    assert_eq!(size_of(fits), MAX as usize);

    h.publish(1, Q1, vec![0u8; fits + 1]);
    assert_eq!(h.sent(), vec![], "nothing is written");
    assert_eq!(
        h.events(),
        vec![failed(
            1,
            RequestError::PacketTooLarge {
                size: MAX as usize + 1,
                max: MAX as usize
            }
        )]
    );
    assert_eq!(h.s.inflight_len(), 0);
    assert_eq!(h.s.ids.in_use(), 0, "the id is released");

    // Exactly the maximum is fine.
    h.publish(2, Q1, vec![0u8; fits]);
    let sent = h.sent();
    assert_eq!(sent.len(), 1);
    assert!(matches!(&sent[0], Packet::Publish(p) if p.payload.len() == fits));
    assert!(h.s.is_connected());

    // A refusal takes back only its own bytes: what was written before it
    // and not yet sent goes out whole, and so does what comes after.
    h.publish(3, Q1, vec![1u8; fits]);
    h.publish(4, Q1, vec![2u8; fits + 1]);
    h.publish(5, Q1, vec![3u8; fits]);
    let payloads: Vec<Vec<u8>> = h
        .sent()
        .into_iter()
        .map(|p| match p {
            Packet::Publish(p) => p.payload.to_vec(),
            other => panic!("sent {other:?}"),
        })
        .collect();
    assert_eq!(payloads, vec![vec![1u8; fits], vec![3u8; fits]]);
}

// ---- protocol errors ----------------------------------------------------

#[test]
fn puback_for_an_unknown_id_is_a_protocol_error() {
    for v in BOTH {
        let mut h = connected(v);
        h.publish(1, Q1, "m");
        h.sent();
        h.feed(puback(9));
        assert_eq!(
            h.events(),
            vec![protocol_closed(ProtocolError::UnknownPacketId {
                packet: PacketType::PubAck,
                id: 9
            })],
            "{v}"
        );
        let expected = if v == V5 {
            disconnect_bytes(0x82)
        } else {
            vec![]
        };
        assert_eq!(h.bytes(), expected, "{v}");
        assert!(h.s.is_closed());
        assert_eq!(h.s.poll_timeout(), None);
    }
}

#[test]
fn acknowledgements_of_the_wrong_kind_are_protocol_errors() {
    // PUBCOMP while the message still awaits PUBREC.
    for v in BOTH {
        let mut h = connected(v);
        h.publish(1, Q2, "m");
        h.sent();
        h.feed(pubcomp(1));
        assert_eq!(
            h.events(),
            vec![protocol_closed(ProtocolError::UnknownPacketId {
                packet: PacketType::PubComp,
                id: 1
            })],
            "{v}"
        );
        let expected = if v == V5 {
            disconnect_bytes(0x82)
        } else {
            vec![]
        };
        assert_eq!(h.bytes(), expected, "{v}");
    }
    // PUBACK for a QoS 2 message, PUBREC for a QoS 1 message.
    let cases = [
        (Q2, puback(1), PacketType::PubAck),
        (Q1, pubrec(1), PacketType::PubRec),
    ];
    for (qos, ack, packet) in cases {
        let mut h = connected(V5);
        h.publish(1, qos, "m");
        h.sent();
        h.feed(ack);
        assert_eq!(
            h.events(),
            vec![protocol_closed(ProtocolError::UnknownPacketId {
                packet,
                id: 1
            })]
        );
        assert_eq!(h.bytes(), disconnect_bytes(0x82));
    }
}

#[test]
fn packets_a_broker_never_sends_are_protocol_errors() {
    for v in BOTH {
        let cases = [
            Packet::ConnAck(Box::new(connack(false))),
            Packet::PingReq,
            Packet::Subscribe(Subscribe::new(id(1), s("a"), SubscriptionOptions::new(Q0))),
            Packet::Unsubscribe(Unsubscribe {
                packet_id: id(1),
                filters: vec![s("a")],
                properties: UnsubscribeProperties::default(),
            }),
        ];
        for packet in cases {
            let kind = packet.packet_type();
            let mut h = connected(v);
            h.feed(packet);
            assert_eq!(
                h.events(),
                vec![protocol_closed(ProtocolError::UnexpectedPacket(kind))],
                "{v} {kind}"
            );
            let expected = if v == V5 {
                disconnect_bytes(0x82)
            } else {
                vec![]
            };
            assert_eq!(h.bytes(), expected, "{v} {kind}");
        }
    }
    // An AUTH we did not ask for (5.0).
    let mut h = connected(V5);
    let mut auth = Auth::new(AuthReasonCode::ContinueAuthentication);
    auth.properties.authentication_method = Some(MqttString::from_static("SCRAM-SHA-256"));
    h.feed(Packet::Auth(auth));
    assert_eq!(
        h.events(),
        vec![protocol_closed(ProtocolError::UnexpectedPacket(
            PacketType::Auth
        ))]
    );
    assert_eq!(h.bytes(), disconnect_bytes(0x82));
}

#[test]
fn v311_disconnect_from_the_broker_is_a_protocol_error() {
    let mut h = connected(V311);
    h.feed_bytes(&[0xE0, 0x00]);
    assert_eq!(
        h.events(),
        vec![protocol_closed(ProtocolError::UnexpectedPacket(
            PacketType::Disconnect
        ))]
    );
    assert_eq!(
        h.sent(),
        vec![],
        "3.1.1 has no DISCONNECT for the client to answer with"
    );
    assert!(h.s.is_closed());
}

#[test]
fn decode_errors_close_with_the_mapped_reason() {
    let cases = [
        (DecodeError::InvalidPacketType(0), 0x81),
        (DecodeError::UnexpectedEnd, 0x81),
        (
            DecodeError::PacketTooLarge {
                size: 2000,
                max: 1000,
            },
            0x95,
        ),
        (
            DecodeError::DuplicateProperty(PropertyId::ReasonString),
            0x82,
        ),
        (DecodeError::ZeroTopicAlias, 0x94),
    ];
    for v in BOTH {
        for (error, code) in cases {
            let mut h = connected(v);
            h.s.handle_decode_error(error, h.now);
            assert_eq!(
                h.events(),
                vec![protocol_closed(ProtocolError::Decode(error))],
                "{v} {error}"
            );
            let expected = if v == V5 {
                disconnect_bytes(code)
            } else {
                vec![]
            };
            assert_eq!(h.bytes(), expected, "{v} {error}");
            assert!(h.s.is_closed());
        }
    }
}

#[test]
fn nothing_happens_after_the_connection_closed() {
    let mut h = connected(V5);
    h.feed(puback(3));
    h.events();
    h.sent();
    h.feed(Packet::Publish(incoming("a", "late", Q1, Some(1))));
    h.feed(Packet::PingResp);
    h.at(secs(100));
    h.tick();
    h.assert_quiet();
    assert_eq!(h.s.poll_timeout(), None);
}

#[test]
fn v5_topic_alias_when_we_allowed_none_is_invalid() {
    let mut h = connected(V5);
    let mut p = incoming("a/b", "x", Q0, None);
    p.properties.topic_alias = Some(1);
    h.feed(Packet::Publish(p));
    assert_eq!(
        h.events(),
        vec![protocol_closed(ProtocolError::TopicAliasInvalid(1))]
    );
    assert_eq!(h.bytes(), disconnect_bytes(0x94));
}

#[test]
fn v5_topic_alias_is_defined_then_resolved() {
    let mut config = persistent(V5);
    config.connect_properties.topic_alias_maximum = Some(5);
    let mut h = connected_with(config.clone());

    let mut define = incoming("sensors/kitchen/temp", "21.5", Q1, Some(1));
    define.properties.topic_alias = Some(3);
    h.feed(Packet::Publish(define.clone()));
    assert_eq!(h.events(), vec![Event::Message(define.clone())]);
    h.sent();

    let mut by_alias = incoming("", "21.7", Q0, None);
    by_alias.properties.topic_alias = Some(3);
    h.feed(Packet::Publish(by_alias.clone()));
    let mut resolved = by_alias;
    resolved.topic = s("sensors/kitchen/temp");
    assert_eq!(h.events(), vec![Event::Message(resolved)]);

    // Redefining the alias points it elsewhere.
    let mut redefine = incoming("sensors/hall/temp", "19.0", Q0, None);
    redefine.properties.topic_alias = Some(3);
    h.feed(Packet::Publish(redefine));
    h.events();
    let mut by_alias = incoming("", "19.1", Q0, None);
    by_alias.properties.topic_alias = Some(3);
    h.feed(Packet::Publish(by_alias));
    match h.events().as_slice() {
        [Event::Message(m)] => assert_eq!(m.topic, "sensors/hall/temp"),
        other => panic!("unexpected {other:?}"),
    }

    // An alias never defined on this connection is invalid ...
    let mut undefined = incoming("", "x", Q0, None);
    undefined.properties.topic_alias = Some(2);
    h.feed(Packet::Publish(undefined));
    assert_eq!(
        h.events(),
        vec![protocol_closed(ProtocolError::TopicAliasInvalid(2))]
    );
    assert_eq!(h.bytes(), disconnect_bytes(0x94));

    // ... and so is one above our maximum.
    let mut h = connected_with(config.clone());
    let mut too_high = incoming("a", "x", Q0, None);
    too_high.properties.topic_alias = Some(6);
    h.feed(Packet::Publish(too_high));
    assert_eq!(
        h.events(),
        vec![protocol_closed(ProtocolError::TopicAliasInvalid(6))]
    );

    // Aliases do not outlive their connection [MQTT-3.3.2-7].
    let mut h = connected_with(config);
    h.feed(Packet::Publish(define));
    h.events();
    h.sent();
    h.s.handle_connection_lost(h.now);
    h.events();
    h.connect(true);
    let mut by_alias = incoming("", "x", Q0, None);
    by_alias.properties.topic_alias = Some(3);
    h.feed(Packet::Publish(by_alias));
    assert_eq!(
        h.events(),
        vec![protocol_closed(ProtocolError::TopicAliasInvalid(3))]
    );
}

#[test]
fn v5_disconnect_from_the_broker_reports_its_reason() {
    let mut h = connected(V5);
    h.feed(Packet::Disconnect(Disconnect {
        reason_code: DisconnectReasonCode::UseAnotherServer,
        properties: DisconnectProperties {
            reason_string: Some(s("maintenance")),
            server_reference: Some(s("mqtt2.example:1883")),
            ..DisconnectProperties::default()
        },
    }));
    assert_eq!(
        h.events(),
        vec![Event::Closed(CloseReason::ServerDisconnect {
            reason: DisconnectReasonCode::UseAnotherServer,
            reason_string: Some(s("maintenance")),
            server_reference: Some(s("mqtt2.example:1883")),
        })]
    );
    assert_eq!(h.sent(), vec![], "no DISCONNECT back");
    assert!(h.s.is_closed());
    assert_eq!(h.s.poll_timeout(), None);
}

// ---- disconnect ---------------------------------------------------------

#[test]
fn disconnect_with_nothing_in_flight_goes_at_once() {
    let mut h = connected(V311);
    h.s.handle_disconnect(Disconnect::default(), h.now, h.now + secs(5));
    assert_eq!(h.bytes(), vec![0xE0, 0x00]);
    assert_eq!(h.events(), vec![Event::Closed(CloseReason::Normal)]);
    assert!(h.s.is_closed());
    assert_eq!(h.s.poll_timeout(), None);

    // Without a connection there is nothing to send.
    let mut h = harness(V311);
    h.s.handle_disconnect(Disconnect::default(), h.now, h.now + secs(5));
    assert_eq!(h.sent(), vec![]);
    assert_eq!(h.events(), vec![Event::Closed(CloseReason::Normal)]);
}

#[test]
fn v5_disconnect_carries_reason_and_session_expiry() {
    let mut h = connected(V5);
    let disconnect = Disconnect {
        reason_code: DisconnectReasonCode::DisconnectWithWillMessage,
        properties: DisconnectProperties {
            session_expiry_interval: Some(0),
            ..DisconnectProperties::default()
        },
    };
    h.s.handle_disconnect(disconnect.clone(), h.now, h.now + secs(5));
    // Reason 0x04, properties (5 bytes): Session Expiry Interval = 0.
    let raw = h.bytes();
    assert_eq!(
        raw,
        vec![0xE0, 0x07, 0x04, 0x05, 0x11, 0x00, 0x00, 0x00, 0x00]
    );
    assert_eq!(decode_all(V5, &raw), vec![Packet::Disconnect(disconnect)]);
    assert_eq!(h.events(), vec![Event::Closed(CloseReason::Normal)]);
}

#[test]
fn disconnect_waits_for_inflight_exchanges() {
    for v in BOTH {
        let mut h = connected(v);
        h.publish(1, Q1, "one");
        h.publish(2, Q2, "two");
        h.subscribe(3, &[("s", Q0)]);
        h.sent();
        h.s.handle_disconnect(Disconnect::default(), h.now, h.now + secs(30));
        h.assert_quiet();
        assert!(h.s.is_connected());

        h.feed(puback(1));
        assert_eq!(h.sent(), vec![], "{v}: QoS 2 and SUBSCRIBE still open");
        h.feed(Packet::SubAck(SubAck {
            packet_id: id(3),
            reason_codes: vec![SubAckReasonCode::GrantedQoS0],
            properties: AckProperties::default(),
        }));
        h.feed(pubrec(2));
        assert_eq!(
            h.sent(),
            vec![pubrel(2)],
            "{v}: the exchange goes on, DISCONNECT not yet"
        );
        assert!(h.s.is_connected());

        h.feed(pubcomp(2));
        assert_eq!(
            h.sent(),
            vec![Packet::Disconnect(Disconnect::default())],
            "{v}"
        );
        let events = h.events();
        assert_eq!(events.len(), 4, "{v}: {events:?}");
        assert_eq!(events[0], done(1, acked(1)));
        assert!(matches!(
            events[1],
            Event::SubscribeDone {
                request: 3,
                result: Ok(_)
            }
        ));
        assert_eq!(events[2], done(2, completed(2)));
        assert_eq!(
            events[3],
            Event::Closed(CloseReason::Normal),
            "{v}: closed last"
        );
    }
}

#[test]
fn disconnect_gives_up_at_the_deadline() {
    let mut h = connected(V5);
    h.at(secs(1));
    h.publish(1, Q1, "unanswered");
    h.publish(2, Q2, "half done");
    h.sent();
    h.feed(pubrec(2));
    h.sent();
    h.s.handle_disconnect(Disconnect::default(), h.now, h.now + secs(5));
    h.assert_quiet();
    assert_eq!(
        h.since_t0(h.s.poll_timeout()),
        Some(secs(6)),
        "the drain deadline comes before keepalive"
    );

    h.at(secs(6) - ms(1));
    h.tick();
    h.assert_quiet();

    h.at(secs(6));
    h.tick();
    assert_eq!(h.sent(), vec![Packet::Disconnect(Disconnect::default())]);
    assert_eq!(h.events(), vec![Event::Closed(CloseReason::Normal)]);
    assert!(h.s.is_closed());

    h.s.abort_requests(CloseReason::Normal);
    let closed = || RequestError::ConnectionClosed(CloseReason::Normal);
    assert_eq!(h.events(), vec![failed(1, closed()), failed(2, closed())]);
    assert_eq!(h.s.pending_requests(), 0);
    h.s.abort_requests(CloseReason::Normal);
    assert_eq!(h.events(), vec![], "each request fails once");
}

// ---- connection lost and resumed -------------------------------------------

/// A session with, on a first connection: A (QoS 1, id 1) and B (QoS 2,
/// id 2) unacknowledged, C (QoS 2, id 3) past PUBREC, D (QoS 1, id 4)
/// unacknowledged; then the connection breaks.
fn four_in_flight_then_lost(version: ProtocolVersion) -> Harness {
    let mut config = config(version);
    config.clean_start = false;
    let mut h = connected_with(config);
    h.publish(1, Q1, "A");
    h.publish(2, Q2, "B");
    h.publish(3, Q2, "C");
    h.publish(4, Q1, "D");
    assert_eq!(h.sent().len(), 4);
    h.feed(pubrec(3));
    assert_eq!(h.sent(), vec![pubrel(3)]);
    h.at(secs(2));
    h.s.handle_connection_lost(h.now);
    assert_eq!(h.events(), vec![Event::Closed(CloseReason::ConnectionLost)]);
    assert!(!h.s.is_connected());
    assert_eq!(h.s.poll_timeout(), None);
    h
}

#[test]
fn connection_lost_is_reported_once() {
    let mut h = four_in_flight_then_lost(V311);
    h.s.handle_connection_lost(h.now);
    assert_eq!(h.events(), vec![]);
    assert_eq!(
        h.s.pending_requests(),
        4,
        "requests are kept for the next connection"
    );
}

#[test]
fn resumed_session_resends_publish_with_dup_and_pubrel_in_order() {
    for v in BOTH {
        let mut h = four_in_flight_then_lost(v);
        h.publish(5, Q1, "E"); // made while offline
        h.at(secs(3));
        let (sent, events) = h.connect_ack(connack(true));
        assert_eq!(
            sent,
            vec![
                on_wire(Q1, "A", Some(1), true),
                on_wire(Q2, "B", Some(2), true),
                pubrel(3),
                on_wire(Q1, "D", Some(4), true),
                on_wire(Q1, "E", Some(5), false),
            ],
            "{v}"
        );
        assert_eq!(events, vec![], "{v}");

        h.feed(puback(1));
        h.feed(pubrec(2));
        assert_eq!(h.sent(), vec![pubrel(2)]);
        h.feed(pubcomp(2));
        h.feed(pubcomp(3));
        h.feed(puback(4));
        h.feed(puback(5));
        assert_eq!(
            h.events(),
            vec![
                done(1, acked(1)),
                done(2, completed(2)),
                done(3, completed(3)),
                done(4, acked(4)),
                done(5, acked(5))
            ],
            "{v}"
        );
        assert!(h.s.is_connected());
        assert_eq!(h.s.ids.in_use(), 0);
    }
}

#[test]
fn resumed_session_keeps_incoming_qos2_ids_held() {
    for v in BOTH {
        let mut config = config(v);
        config.clean_start = false;
        let mut h = connected_with(config);
        let p = incoming("cmd", "go", Q2, Some(7));
        h.feed(Packet::Publish(p.clone()));
        assert_eq!(h.events(), vec![Event::Message(p.clone())]);
        h.sent();
        h.s.handle_connection_lost(h.now);
        h.events();

        h.connect(true);
        let mut again = p;
        again.dup = true;
        h.feed(Packet::Publish(again));
        assert_eq!(
            h.events(),
            vec![],
            "{v}: not delivered twice across connections"
        );
        assert_eq!(h.sent(), vec![pubrec(7)]);
        h.feed(pubrel(7));
        assert_eq!(
            h.bytes(),
            vec![0x70, 0x02, 0x00, 0x07],
            "{v}: PUBCOMP Success, the id was held"
        );
    }
}

#[test]
fn new_session_resends_unacknowledged_publishes_as_new_messages() {
    for v in BOTH {
        let mut h = four_in_flight_then_lost(v);
        h.publish(5, Q1, "E");
        h.publish(6, Q0, "F");
        let (sent, events) = h.connect_ack(connack(false));

        // C was past PUBREC, but with the broker's session gone nobody can
        // release it: it goes again as a new message like the others, and
        // nothing is reported done without the broker's word. F (QoS 0) is
        // done once its bytes were handed out.
        assert_eq!(events, vec![], "{v}");
        assert_eq!(h.events(), vec![done(6, sent_qos0())], "{v}");
        let mut ids = Vec::new();
        let mut shape = Vec::new();
        for p in &sent {
            let Packet::Publish(p) = p else {
                panic!("{v}: only PUBLISH expected, got {p:?}")
            };
            assert!(!p.dup, "{v}: a new message has DUP = 0");
            ids.extend(p.packet_id.map(NonZeroU16::get));
            shape.push((p.payload.clone(), p.qos));
        }
        assert_eq!(
            shape,
            vec![
                (Bytes::from_static(b"A"), Q1),
                (Bytes::from_static(b"B"), Q2),
                (Bytes::from_static(b"C"), Q2),
                (Bytes::from_static(b"D"), Q1),
                (Bytes::from_static(b"E"), Q1),
                (Bytes::from_static(b"F"), Q0),
            ],
            "{v}: original order, before the newer ones"
        );
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 5, "{v}: {ids:?}");

        // Complete everything: every publish is reported exactly once.
        let mut all_done = 1;
        for p in sent {
            let Packet::Publish(p) = p else {
                unreachable!()
            };
            match (p.qos, p.packet_id) {
                (Q1, Some(i)) => h.feed(puback(i.get())),
                (Q2, Some(i)) => {
                    h.feed(pubrec(i.get()));
                    h.feed(pubcomp(i.get()));
                }
                _ => {}
            }
        }
        let events = h.events();
        all_done += events.len();
        let mut requests: Vec<RequestId> = events
            .iter()
            .map(|e| match e {
                Event::PublishDone {
                    request,
                    result: Ok(_),
                } => *request,
                other => panic!("{v}: unexpected {other:?}"),
            })
            .collect();
        requests.sort_unstable();
        assert_eq!(requests, vec![1, 2, 3, 4, 5], "{v}");
        assert_eq!(all_done, 6, "{v}: nothing lost, nothing reported twice");
        assert_eq!(h.s.pending_requests(), 0);
    }
}

#[test]
fn new_session_forgets_held_incoming_qos2_ids() {
    for v in BOTH {
        let mut h = connected(v);
        let p = incoming("cmd", "go", Q2, Some(7));
        h.feed(Packet::Publish(p.clone()));
        h.events();
        h.sent();
        h.s.handle_connection_lost(h.now);
        h.events();

        h.connect(false);
        // With the old session gone, id 7 is a new message.
        let fresh = incoming("cmd", "stop", Q2, Some(7));
        h.feed(Packet::Publish(fresh.clone()));
        assert_eq!(h.events(), vec![Event::Message(fresh)], "{v}");
        assert_eq!(h.sent(), vec![pubrec(7)]);
    }
}

#[test]
fn unanswered_subscribe_is_sent_again_after_reconnect() {
    let mut h = connected_with(persistent(V5));
    h.subscribe(1, &[("a/#", Q1)]);
    h.sent();
    h.s.handle_connection_lost(h.now);
    h.events();
    let (sent, _) = h.connect_ack(connack(true));
    let [Packet::Subscribe(sub)] = sent.as_slice() else {
        panic!("expected SUBSCRIBE, got {sent:?}")
    };
    assert_eq!(sub.filters, vec![(s("a/#"), SubscriptionOptions::new(Q1))]);
    let pid = sub.packet_id;
    h.feed(Packet::SubAck(SubAck {
        packet_id: pid,
        reason_codes: vec![SubAckReasonCode::GrantedQoS1],
        properties: AckProperties::default(),
    }));
    assert!(matches!(
        h.events().as_slice(),
        [Event::SubscribeDone {
            request: 1,
            result: Ok(_)
        }]
    ));
}

#[test]
fn unanswered_subscribe_and_unsubscribe_are_resent_in_their_order() {
    for sp in [true, false] {
        let mut h = connected_with(persistent(V311));
        h.subscribe(1, &[("a/#", Q1)]);
        h.unsubscribe(2, &["a/#"]);
        assert_eq!(h.sent().len(), 2);
        h.s.handle_connection_lost(h.now);
        h.events();
        h.subscribe(3, &[("b", Q0)]); // made while offline
        let (sent, _) = h.connect_ack(connack(sp));
        let filters: Vec<(PacketType, TopicFilter)> = sent
            .iter()
            .map(|p| match p {
                Packet::Subscribe(s) => (PacketType::Subscribe, s.filters[0].0.clone()),
                Packet::Unsubscribe(u) => (PacketType::Unsubscribe, u.filters[0].clone()),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        // Reversed, the broker would end up subscribed although the user
        // unsubscribed last; requests made offline come after.
        assert_eq!(
            filters,
            vec![
                (PacketType::Subscribe, s("a/#")),
                (PacketType::Unsubscribe, s("a/#")),
                (PacketType::Subscribe, s("b")),
            ],
            "session present {sp}"
        );
    }
}

#[test]
fn resend_order_survives_packet_id_wraparound() {
    let mut h = connected_with(persistent(V311));
    // Use up identifiers 1 to 65,533, so the next ones are 65,534, 65,535,
    // then 1 and 2 again: sending order and identifier order now differ.
    for n in 1..=65_533u16 {
        h.s.handle_publish(0, message(Q1, ""), h.now);
        h.s.handle_packet(puback(n), h.now);
    }
    h.s.poll_transmit();
    assert_eq!(h.events().len(), 65_533);
    h.subscribe(1, &[("a", Q0)]);
    h.unsubscribe(2, &["a"]);
    h.subscribe(3, &[("a", Q1)]);
    h.unsubscribe(4, &["a"]);
    let ids: Vec<u16> = h
        .sent()
        .iter()
        .map(|p| match p {
            Packet::Subscribe(s) => s.packet_id.get(),
            Packet::Unsubscribe(u) => u.packet_id.get(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(ids, vec![65_534, 65_535, 1, 2]);

    h.s.handle_connection_lost(h.now);
    h.events();
    let (sent, _) = h.connect_ack(connack(true));
    let order: Vec<(PacketType, Option<QoS>)> = sent
        .iter()
        .map(|p| match p {
            Packet::Subscribe(s) => (PacketType::Subscribe, Some(s.filters[0].1.qos)),
            Packet::Unsubscribe(_) => (PacketType::Unsubscribe, None),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        order,
        vec![
            (PacketType::Subscribe, Some(Q0)),
            (PacketType::Unsubscribe, None),
            (PacketType::Subscribe, Some(Q1)),
            (PacketType::Unsubscribe, None),
        ]
    );
}

// ---- abort ----------------------------------------------------------------

#[test]
fn abort_requests_fails_every_outstanding_request_exactly_once() {
    let mut config = persistent(V5);
    config.max_inflight = 2;
    let mut h = connected_with(config);
    h.publish(1, Q1, "in flight");
    h.publish(2, Q2, "in flight");
    h.publish(3, Q1, "queued behind the window");
    h.subscribe(4, &[("a", Q0)]);
    h.sent();
    h.s.handle_connection_lost(h.now);
    h.events();
    h.unsubscribe(5, &["b"]); // queued while offline
    h.publish(6, Q0, "queued while offline");
    assert_eq!(h.s.pending_requests(), 6);

    h.s.abort_requests(CloseReason::ConnectionLost);
    let err = RequestError::ConnectionClosed(CloseReason::ConnectionLost);
    let mut requests = Vec::new();
    for e in h.events() {
        match e {
            Event::PublishDone { request, result } => {
                assert_eq!(result, Err(err.clone()));
                requests.push(request);
            }
            Event::SubscribeDone { request, result } => {
                assert_eq!(result, Err(err.clone()));
                requests.push(request);
            }
            Event::UnsubscribeDone { request, result } => {
                assert_eq!(result, Err(err.clone()));
                requests.push(request);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    requests.sort_unstable();
    assert_eq!(requests, vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(h.s.pending_requests(), 0);
    assert_eq!(h.s.ids.in_use(), 0);

    h.s.abort_requests(CloseReason::ConnectionLost);
    assert_eq!(h.events(), vec![]);

    // Nothing is replayed on a later connection.
    let (sent, events) = h.connect_ack(connack(true));
    assert_eq!((sent, events), (vec![], vec![]));
}

// ---- limits the broker announces ------------------------------------------

#[test]
fn v5_maximum_qos_from_connack_refuses_higher_publishes() {
    let mut h = harness(V5);
    let mut ack = connack(false);
    ack.properties.maximum_qos = Some(Q1);
    h.connect_ack(ack);
    h.publish(1, Q2, "too high");
    h.publish(2, Q1, "fine");
    // [MQTT-3.2.2-11] never a PUBLISH above the broker's Maximum QoS; the
    // request is refused, not silently downgraded.
    assert_eq!(h.sent(), vec![on_wire(Q1, "fine", Some(1), false)]);
    assert_eq!(
        h.events(),
        vec![failed(
            1,
            RequestError::QoSNotSupported {
                requested: Q2,
                maximum: Q1
            }
        )]
    );
    assert_eq!(h.s.ids.in_use(), 1, "the refused publish took no id");

    // The limit belongs to that connection.
    h.s.handle_connection_lost(h.now);
    h.events();
    h.connect_ack(connack(false));
    h.sent();
    h.publish(3, Q2, "now allowed");
    let sent = h.sent();
    assert!(
        matches!(sent.as_slice(), [Packet::Publish(p)] if p.qos == Q2),
        "{sent:?}"
    );
}

#[test]
fn v5_retain_unavailable_from_connack_refuses_retained_publishes() {
    let mut h = harness(V5);
    let mut ack = connack(false);
    ack.properties.retain_available = Some(false);
    h.connect_ack(ack);
    h.s.handle_publish(1, message(Q1, "keep me").with_retain(true), h.now);
    h.s.handle_publish(2, message(Q0, "plain"), h.now);
    // [MQTT-3.2.2-14] no retained PUBLISH when Retain Available is 0.
    assert_eq!(h.sent(), vec![on_wire(Q0, "plain", None, false)]);
    assert_eq!(
        h.events(),
        vec![
            failed(1, RequestError::RetainNotSupported),
            done(2, sent_qos0())
        ]
    );
    assert_eq!(h.s.pending_requests(), 0);
}

// ---- resubscribing when the broker lost the session ------------------------

/// Subscription options that a resubscription must carry over as they
/// were: 5.0 flags set (3.1.1 has only the QoS).
fn fancy(version: ProtocolVersion, qos: QoS) -> SubscriptionOptions {
    let mut options = SubscriptionOptions::new(qos);
    if version == V5 {
        options.no_local = true;
        options.retain_as_published = true;
        options.retain_handling = crate::codec::RetainHandling::DoNotSend;
    }
    options
}

/// 5.0 SUBSCRIBE properties: a subscription identifier and a user
/// property; none in 3.1.1.
fn sub_props(
    version: ProtocolVersion,
    identifier: u32,
    origin: &'static str,
) -> SubscribeProperties {
    match version {
        V311 => SubscribeProperties::default(),
        V5 => {
            let mut user_properties = UserProperties::new();
            user_properties.push(s("origin"), s(origin));
            SubscribeProperties {
                subscription_identifier: NonZeroU32::new(identifier),
                user_properties,
            }
        }
    }
}

/// The refusal code a broker of this version sends in a SUBACK.
fn refused(version: ProtocolVersion) -> SubAckReasonCode {
    match version {
        V311 => SubAckReasonCode::UnspecifiedError,
        V5 => SubAckReasonCode::NotAuthorized,
    }
}

/// The SUBACK for `sub` with these codes.
fn suback_for(sub: &Subscribe, codes: Vec<SubAckReasonCode>) -> Packet {
    Packet::SubAck(SubAck {
        packet_id: sub.packet_id,
        reason_codes: codes,
        properties: AckProperties::default(),
    })
}

/// A SUBSCRIBE for `filters`, answered with `codes`; checks the user
/// request completes.
#[track_caller]
fn subscribe_answered(
    h: &mut Harness,
    request: RequestId,
    filters: Vec<(TopicFilter, SubscriptionOptions)>,
    properties: SubscribeProperties,
    codes: Vec<SubAckReasonCode>,
) {
    h.s.handle_subscribe(request, filters, properties, h.now);
    let sent = h.sent();
    let [Packet::Subscribe(sub)] = sent.as_slice() else {
        panic!("expected one SUBSCRIBE, got {sent:?}")
    };
    h.feed(suback_for(sub, codes));
    let events = h.events();
    assert!(
        matches!(
            events.as_slice(),
            [Event::SubscribeDone { request: r, result: Ok(_) }] if *r == request
        ),
        "{events:?}"
    );
}

/// Unsubscribes `filters` and answers with `codes` (none in 3.1.1).
#[track_caller]
fn unsubscribe_answered(
    h: &mut Harness,
    request: RequestId,
    filters: &[&'static str],
    codes: Vec<UnsubAckReasonCode>,
) {
    h.unsubscribe(request, filters);
    let sent = h.sent();
    let [Packet::Unsubscribe(unsub)] = sent.as_slice() else {
        panic!("expected one UNSUBSCRIBE, got {sent:?}")
    };
    h.feed(Packet::UnsubAck(UnsubAck {
        packet_id: unsub.packet_id,
        reason_codes: codes,
        properties: AckProperties::default(),
    }));
    let events = h.events();
    assert!(
        matches!(
            events.as_slice(),
            [Event::UnsubscribeDone { request: r, result: Ok(_) }] if *r == request
        ),
        "{events:?}"
    );
}

/// Splits what a reconnect sent into its SUBSCRIBEs and the rest, checking
/// that every SUBSCRIBE comes before anything else.
#[track_caller]
fn subscribes_first(sent: &[Packet]) -> (Vec<Subscribe>, Vec<Packet>) {
    let subscribes: Vec<Subscribe> = sent
        .iter()
        .take_while(|p| matches!(p, Packet::Subscribe(_)))
        .map(|p| match p {
            Packet::Subscribe(sub) => sub.clone(),
            _ => unreachable!(),
        })
        .collect();
    let rest = sent[subscribes.len()..].to_vec();
    assert!(
        !rest.iter().any(|p| matches!(p, Packet::Subscribe(_))),
        "a SUBSCRIBE after other packets: {sent:?}"
    );
    (subscribes, rest)
}

/// The state most resubscribe tests start from, on a clean session:
/// - request 1 subscribes `a/+` (fancy QoS 1), `denied/#` (refused) and
///   `b/#` (QoS 0) with properties P1 (5.0: subscription identifier 7);
/// - request 2 subscribes `c` (QoS 2) with P2 (identifier 9);
/// - request 3 subscribes `b/#` again at QoS 1 with P1, replacing it;
/// - request 4 subscribes `d`, request 5 unsubscribes it;
///
/// then the connection breaks and request 10 publishes at QoS 1 offline.
fn granted_then_lost(config: SessionConfig) -> Harness {
    let v = config.version;
    let mut h = connected_with(config);
    subscribe_answered(
        &mut h,
        1,
        vec![
            (s("a/+"), fancy(v, Q1)),
            (s("denied/#"), fancy(v, Q2)),
            (s("b/#"), SubscriptionOptions::new(Q0)),
        ],
        sub_props(v, 7, "first"),
        vec![
            SubAckReasonCode::GrantedQoS1,
            refused(v),
            SubAckReasonCode::GrantedQoS0,
        ],
    );
    subscribe_answered(
        &mut h,
        2,
        vec![(s("c"), SubscriptionOptions::new(Q2))],
        sub_props(v, 9, "second"),
        vec![SubAckReasonCode::GrantedQoS2],
    );
    subscribe_answered(
        &mut h,
        3,
        vec![(s("b/#"), SubscriptionOptions::new(Q1))],
        sub_props(v, 7, "first"),
        vec![SubAckReasonCode::GrantedQoS1],
    );
    subscribe_answered(
        &mut h,
        4,
        vec![(s("d"), SubscriptionOptions::new(Q1))],
        sub_props(v, 9, "second"),
        vec![SubAckReasonCode::GrantedQoS1],
    );
    let codes = match v {
        V311 => vec![],
        V5 => vec![UnsubAckReasonCode::Success],
    };
    unsubscribe_answered(&mut h, 5, &["d"], codes);
    h.at(secs(1));
    h.s.handle_connection_lost(h.now);
    assert_eq!(h.events(), vec![Event::Closed(CloseReason::ConnectionLost)]);
    h.publish(10, Q1, "queued offline");
    h
}

#[test]
fn resubscribe_sends_exactly_the_granted_filters_before_queued_publishes() {
    for v in BOTH {
        let mut h = granted_then_lost(config(v));
        h.at(secs(2));
        let (sent, events) = h.connect_ack(connack(false));
        assert_eq!(events, vec![], "{v}: nothing for the application yet");
        let (subscribes, rest) = subscribes_first(&sent);

        // Exactly the granted filters, as last granted, each with the
        // properties it was subscribed with; `denied/#` (refused) and `d`
        // (unsubscribed) are not among them.
        let mut got: Vec<(TopicFilter, SubscriptionOptions, SubscribeProperties)> = subscribes
            .iter()
            .flat_map(|sub| {
                sub.filters
                    .iter()
                    .map(|(f, o)| (f.clone(), *o, sub.properties.clone()))
            })
            .collect();
        got.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            got,
            vec![
                (s("a/+"), fancy(v, Q1), sub_props(v, 7, "first")),
                (
                    s("b/#"),
                    SubscriptionOptions::new(Q1),
                    sub_props(v, 7, "first")
                ),
                (
                    s("c"),
                    SubscriptionOptions::new(Q2),
                    sub_props(v, 9, "second")
                ),
            ],
            "{v}"
        );
        // Grouped by their original properties: a 5.0 subscription
        // identifier belongs to a whole SUBSCRIBE. 3.1.1 has no
        // properties, so one SUBSCRIBE carries them all.
        let groups: Vec<Vec<TopicFilter>> = subscribes
            .iter()
            .map(|sub| sub.filters.iter().map(|(f, _)| f.clone()).collect())
            .collect();
        let expected = match v {
            V311 => vec![vec![
                s::<TopicFilter>("a/+"),
                s::<TopicFilter>("b/#"),
                s::<TopicFilter>("c"),
            ]],
            V5 => vec![vec![s("a/+"), s("b/#")], vec![s("c")]],
        };
        assert_eq!(groups, expected, "{v}");
        let ids: HashSet<u16> = subscribes.iter().map(|sub| sub.packet_id.get()).collect();
        assert_eq!(ids.len(), subscribes.len(), "{v}: distinct packet ids");

        // Then the publish made offline, on an identifier of its own.
        let [Packet::Publish(p)] = rest.as_slice() else {
            panic!("{v}: expected the queued PUBLISH after the SUBSCRIBEs, got {rest:?}")
        };
        assert_eq!(p.payload, "queued offline");
        let pid = p.packet_id.expect("QoS 1");
        assert!(!ids.contains(&pid.get()), "{v}");

        // The resubscriptions complete as the session's own requests: the
        // application hears of nothing but its publish.
        for sub in &subscribes {
            let codes = sub
                .filters
                .iter()
                .map(|(_, o)| match o.qos {
                    Q0 => SubAckReasonCode::GrantedQoS0,
                    Q1 => SubAckReasonCode::GrantedQoS1,
                    Q2 => SubAckReasonCode::GrantedQoS2,
                })
                .collect();
            h.feed(suback_for(sub, codes));
        }
        h.feed(puback(pid.get()));
        let events = h.events();
        let mut user = Vec::new();
        for e in &events {
            match e {
                Event::SubscribeDone { request, result } => {
                    assert_eq!(*request, RESUBSCRIBE_REQUEST, "{v}: {events:?}");
                    assert!(result.is_ok(), "{v}");
                }
                Event::PublishDone { request, result } => {
                    assert!(result.is_ok(), "{v}");
                    user.push(*request);
                }
                other => panic!("{v}: unexpected {other:?}"),
            }
        }
        assert_eq!(user, vec![10], "{v}");
        assert_eq!(h.s.pending_requests(), 0, "{v}");
        assert_eq!(h.s.ids.in_use(), 0, "{v}");
        let filters: Vec<&str> = h.s.subscriptions().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            filters,
            vec!["a/+", "b/#", "c"],
            "{v}: the list is unchanged"
        );
    }
}

#[test]
fn no_resubscribe_when_turned_off() {
    for v in BOTH {
        let mut config = config(v);
        config.resubscribe = false;
        let mut h = granted_then_lost(config);
        let (sent, events) = h.connect_ack(connack(false));
        assert_eq!(events, vec![], "{v}");
        assert!(
            matches!(sent.as_slice(), [Packet::Publish(p)] if p.payload == "queued offline"),
            "{v}: only the queued publish, got {sent:?}"
        );
    }
}

#[test]
fn no_resubscribe_when_the_broker_kept_the_session() {
    for v in BOTH {
        let mut config = config(v);
        config.clean_start = false;
        let mut h = granted_then_lost(config);
        let (sent, events) = h.connect_ack(connack(true));
        assert_eq!(events, vec![], "{v}");
        assert!(
            matches!(sent.as_slice(), [Packet::Publish(p)] if p.payload == "queued offline"),
            "{v}: the broker has the subscriptions, got {sent:?}"
        );
    }
}

#[test]
fn unsubscribed_filters_are_not_resubscribed() {
    for v in BOTH {
        let mut h = connected(v);
        subscribe_answered(
            &mut h,
            1,
            vec![
                (s("x"), SubscriptionOptions::new(Q1)),
                (s("y"), SubscriptionOptions::new(Q1)),
                (s("z"), SubscriptionOptions::new(Q1)),
            ],
            SubscribeProperties::default(),
            vec![SubAckReasonCode::GrantedQoS1; 3],
        );
        // x: unsubscribed and acknowledged.
        let ok = match v {
            V311 => vec![],
            V5 => vec![UnsubAckReasonCode::Success],
        };
        unsubscribe_answered(&mut h, 2, &["x"], ok);
        // y (5.0): the broker refused to remove it, so it is still there.
        let mut expected = vec![s::<TopicFilter>("y"), s("z")];
        if v == V5 {
            unsubscribe_answered(&mut h, 3, &["y"], vec![UnsubAckReasonCode::NotAuthorized]);
        } else {
            unsubscribe_answered(&mut h, 3, &["y"], vec![]);
            expected.retain(|f| f != "y");
        }
        // z: unsubscribed, but the connection broke before the UNSUBACK.
        h.unsubscribe(4, &["z"]);
        assert_eq!(h.sent().len(), 1);
        h.s.handle_connection_lost(h.now);
        h.events();

        let (sent, events) = h.connect_ack(connack(false));
        assert_eq!(events, vec![], "{v}");
        let (subscribes, rest) = subscribes_first(&sent);
        let filters: Vec<TopicFilter> = subscribes
            .iter()
            .flat_map(|sub| sub.filters.iter().map(|(f, _)| f.clone()))
            .collect();
        assert_eq!(filters, expected, "{v}");
        // The unanswered UNSUBSCRIBE goes again after the resubscription,
        // so the broker ends up without z, as the application asked.
        let [Packet::Unsubscribe(unsub)] = rest.as_slice() else {
            panic!("{v}: expected the UNSUBSCRIBE again, got {rest:?}")
        };
        assert_eq!(unsub.filters, vec![s::<TopicFilter>("z")], "{v}");
    }
}

#[test]
fn an_interrupted_resubscription_is_sent_once() {
    for v in BOTH {
        let mut h = connected(v);
        subscribe_answered(
            &mut h,
            1,
            vec![(s("a/#"), SubscriptionOptions::new(Q1))],
            SubscribeProperties::default(),
            vec![SubAckReasonCode::GrantedQoS1],
        );
        h.s.handle_connection_lost(h.now);
        h.events();
        let (sent, _) = h.connect_ack(connack(false));
        assert_eq!(subscribes_first(&sent).0.len(), 1, "{v}: resubscribed");
        // Lost again before the SUBACK; the broker has no session again.
        h.s.handle_connection_lost(h.now);
        h.events();
        let (sent, events) = h.connect_ack(connack(false));
        let (subscribes, _) = subscribes_first(&sent);
        let filters: Vec<TopicFilter> = subscribes
            .iter()
            .flat_map(|sub| sub.filters.iter().map(|(f, _)| f.clone()))
            .collect();
        assert_eq!(
            filters,
            vec![s::<TopicFilter>("a/#")],
            "{v}: once, not {subscribes:?}"
        );
        assert_eq!(events, vec![], "{v}");
    }
}

// ---- resending across several reconnects --------------------------------------

/// Drives a connected session for `span` of quiet: PINGREQs are answered
/// with PINGRESP. Returns everything else it sent.
#[track_caller]
fn quiet_for(h: &mut Harness, span: Duration) -> Vec<Packet> {
    let end = h.now - h.t0 + span;
    let mut other = Vec::new();
    for _ in 0..100 {
        let Some(deadline) = h.s.poll_timeout() else {
            break;
        };
        if deadline > h.t0 + end {
            break;
        }
        h.now = deadline.max(h.now);
        h.s.handle_timeout(h.now);
        for p in h.sent() {
            match p {
                Packet::PingReq => h.feed(Packet::PingResp),
                p => other.push(p),
            }
        }
        assert_eq!(h.events(), vec![], "nothing happens while quiet");
    }
    h.at(end);
    other
}

#[test]
fn unacknowledged_qos1_is_resent_once_per_reconnect_and_completes_once() {
    for v in BOTH {
        let mut config = config(v);
        config.clean_start = false;
        let mut h = connected_with(config);
        h.publish(1, Q1, "only once");
        assert_eq!(h.sent(), vec![on_wire(Q1, "only once", Some(1), false)]);
        for round in 1..=3 {
            // No resending while connected ([MQTT-4.4.0-1]: only on
            // reconnect), however long the PUBACK takes.
            let idle = quiet_for(&mut h, secs(25));
            assert_eq!(idle, vec![], "{v} round {round}");
            h.s.handle_connection_lost(h.now);
            assert_eq!(
                h.events(),
                vec![Event::Closed(CloseReason::ConnectionLost)],
                "{v} round {round}"
            );
            let (sent, events) = h.connect_ack(connack(true));
            assert_eq!(
                sent,
                vec![on_wire(Q1, "only once", Some(1), true)],
                "{v} round {round}: the same id, DUP set, exactly once"
            );
            assert_eq!(events, vec![], "{v} round {round}");
        }
        h.feed(puback(1));
        assert_eq!(h.events(), vec![done(1, acked(1))], "{v}");
        assert_eq!(h.s.pending_requests(), 0);
        // Nothing left to resend on the next connection.
        h.s.handle_connection_lost(h.now);
        h.events();
        let (sent, events) = h.connect_ack(connack(true));
        assert_eq!((sent, events), (vec![], vec![]), "{v}");
    }
}

#[test]
fn unfinished_qos2_resends_publish_then_pubrel_across_reconnects_and_completes_once() {
    for v in BOTH {
        let mut config = config(v);
        config.clean_start = false;
        let mut h = connected_with(config);
        h.publish(1, Q2, "exactly once");
        assert_eq!(h.sent(), vec![on_wire(Q2, "exactly once", Some(1), false)]);
        // PUBREC lost twice: the PUBLISH goes again, DUP, same id.
        for round in 1..=2 {
            h.s.handle_connection_lost(h.now);
            h.events();
            let (sent, events) = h.connect_ack(connack(true));
            assert_eq!(
                sent,
                vec![on_wire(Q2, "exactly once", Some(1), true)],
                "{v} PUBREC round {round}"
            );
            assert_eq!(events, vec![]);
        }
        h.feed(pubrec(1));
        assert_eq!(h.sent(), vec![pubrel(1)]);
        // PUBCOMP lost twice: only the PUBREL goes again.
        for round in 1..=2 {
            h.s.handle_connection_lost(h.now);
            h.events();
            let (sent, events) = h.connect_ack(connack(true));
            assert_eq!(sent, vec![pubrel(1)], "{v} PUBCOMP round {round}");
            assert_eq!(events, vec![]);
        }
        h.feed(pubcomp(1));
        assert_eq!(h.events(), vec![done(1, completed(1))], "{v}");
        assert_eq!(h.s.pending_requests(), 0);
        assert_eq!(h.s.ids.in_use(), 0);
    }
}
