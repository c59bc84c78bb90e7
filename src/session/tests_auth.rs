//! Session tests for MQTT 5.0 enhanced authentication (§4.12, §4.12.1):
//! the AUTH exchange on connect and on re-authentication, driven by a
//! scripted authenticator and by [`ScramSha256`] against a small SCRAM
//! server written here from RFC 5802's formulas.
//!
//! As in `tests.rs`, the test plays the broker: what the session writes is
//! decoded with the real codec, and what the broker says is encoded and
//! decoded again first, so the session only sees what a decoder could hand
//! it. Time never moves; none of these rules involve it.

use std::num::{NonZeroU16, NonZeroU32};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use ring::{digest, hmac, pbkdf2};

use super::*;
use crate::auth::{ScramSha256, base64};
use crate::codec::{self, ConnAckProperties};

const V5: ProtocolVersion = ProtocolVersion::V5;
const METHOD: &str = "ECHO";

/// A test string as whichever MQTT string type the caller wants
/// (`MqttString`, `TopicName` or `TopicFilter`).
fn s<T: for<'a> TryFrom<&'a str, Error: std::fmt::Debug>>(v: &str) -> T {
    T::try_from(v).expect("a valid test string")
}

// ---- a scripted authenticator -----------------------------------------

/// What the authenticator was asked, shared with the test (the session
/// owns the authenticator itself).
#[derive(Debug, Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, entry: String) {
        self.0.lock().unwrap().push(entry);
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

fn shown(data: Option<&[u8]>) -> String {
    match data {
        Some(d) => String::from_utf8_lossy(d).into_owned(),
        None => "-".into(),
    }
}

/// Sends `hello-N` on the Nth start, answers a challenge `x` with `re:x`
/// (and fails on `bad`), and accepts any final data but `forged`.
#[derive(Debug)]
struct Echo {
    log: Log,
    starts: u32,
}

impl Echo {
    fn boxed(log: &Log) -> Option<Box<dyn Authenticator>> {
        Some(Box::new(Echo {
            log: log.clone(),
            starts: 0,
        }))
    }
}

impl Authenticator for Echo {
    fn method(&self) -> &str {
        METHOD
    }

    fn start(&mut self) -> Result<Option<Bytes>, AuthError> {
        self.starts += 1;
        self.log.push("start".into());
        Ok(Some(Bytes::from(format!("hello-{}", self.starts))))
    }

    fn step(&mut self, data: Option<&[u8]>) -> Result<Option<Bytes>, AuthError> {
        let data = shown(data);
        self.log.push(format!("step {data}"));
        if data == "bad" {
            return Err(AuthError::new("bad challenge"));
        }
        Ok(Some(Bytes::from(format!("re:{data}"))))
    }

    fn finish(&mut self, data: Option<&[u8]>) -> Result<(), AuthError> {
        let data = shown(data);
        self.log.push(format!("finish {data}"));
        if data == "forged" {
            return Err(AuthError::new("forged final data"));
        }
        Ok(())
    }
}

// ---- the harness ------------------------------------------------------

/// A 5.0 session that has sent its CONNECT.
struct H {
    s: Session,
    now: Instant,
}

impl H {
    fn connecting(authenticator: Option<Box<dyn Authenticator>>) -> H {
        let now = Instant::now();
        let mut s = Session::new(SessionConfig::new(V5, s("auth-test")));
        s.set_authenticator(authenticator);
        s.handle_connect(now);
        H { s, now }
    }

    /// Connected with the Echo authenticator; CONNECT, CONNACK and the log
    /// are consumed.
    fn connected(log: &Log) -> H {
        let mut h = H::connecting(Echo::boxed(log));
        h.sent();
        h.feed(connack_with(
            ConnectReasonCode::Success,
            Some(METHOD),
            Some("ok"),
        ));
        assert!(h.s.is_connected());
        h.events();
        log.take();
        h
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

    /// The broker sends `p`, through the encoder and the decoder.
    fn feed(&mut self, p: Packet) {
        let mut buf = BytesMut::new();
        p.encode(V5, &mut buf).expect("encodable");
        let p = codec::decode(&mut buf, V5, usize::MAX)
            .expect("decodable")
            .expect("whole");
        self.s.handle_packet(p, self.now);
    }

    fn closed_with(&mut self) -> Option<CloseReason> {
        self.events().into_iter().find_map(|e| match e {
            Event::Closed(reason) => Some(reason),
            _ => None,
        })
    }
}

fn auth(code: AuthReasonCode, method: Option<&str>, data: Option<&str>) -> Packet {
    let mut a = Auth::new(code);
    a.properties.authentication_method = method.map(s);
    a.properties.authentication_data = data.map(|d| Bytes::copy_from_slice(d.as_bytes()));
    Packet::Auth(a)
}

fn connack_with(code: ConnectReasonCode, method: Option<&str>, data: Option<&str>) -> Packet {
    let mut c = ConnAck::new(false, code);
    c.properties = ConnAckProperties {
        authentication_method: method.map(s),
        authentication_data: data.map(|d| Bytes::copy_from_slice(d.as_bytes())),
        ..Default::default()
    };
    Packet::ConnAck(Box::new(c))
}

/// Reason code, method and data of an AUTH the session sent.
fn auth_sent(p: &Packet) -> (AuthReasonCode, Option<String>, Option<String>) {
    match p {
        Packet::Auth(a) => (
            a.reason_code,
            a.properties
                .authentication_method
                .as_ref()
                .map(|m| m.to_string()),
            a.properties
                .authentication_data
                .as_deref()
                .map(|d| shown(Some(d))),
        ),
        other => panic!("expected AUTH, got {other:?}"),
    }
}

fn expect(
    code: AuthReasonCode,
    data: Option<&str>,
) -> (AuthReasonCode, Option<String>, Option<String>) {
    (code, Some(METHOD.to_string()), data.map(str::to_string))
}

fn disconnect_code(sent: &[Packet]) -> Option<DisconnectReasonCode> {
    match sent {
        [Packet::Disconnect(d)] => Some(d.reason_code),
        _ => None,
    }
}

fn has_connected(events: &[Event]) -> bool {
    events.iter().any(|e| matches!(e, Event::Connected(_)))
}

// ---- connect ----------------------------------------------------------

#[test]
fn connect_carries_the_method_and_the_first_data() {
    let log = Log::default();
    let mut h = H::connecting(Echo::boxed(&log));
    match &h.sent()[..] {
        [Packet::Connect(c)] => {
            assert_eq!(c.properties.authentication_method.as_deref(), Some(METHOD));
            assert_eq!(
                c.properties.authentication_data.as_deref(),
                Some(&b"hello-1"[..])
            );
        }
        other => panic!("expected CONNECT, got {other:?}"),
    }
    assert_eq!(log.take(), ["start"]);
}

#[test]
fn without_an_authenticator_connect_has_no_method() {
    let mut h = H::connecting(None);
    match &h.sent()[..] {
        [Packet::Connect(c)] => {
            assert_eq!(c.properties.authentication_method, None);
            assert_eq!(c.properties.authentication_data, None);
        }
        other => panic!("expected CONNECT, got {other:?}"),
    }
}

#[test]
fn each_auth_continue_is_answered_then_connack_finishes() {
    let log = Log::default();
    let mut h = H::connecting(Echo::boxed(&log));
    h.sent();
    for challenge in ["one", "two"] {
        h.feed(auth(
            AuthReasonCode::ContinueAuthentication,
            Some(METHOD),
            Some(challenge),
        ));
        let sent = h.sent();
        assert_eq!(sent.len(), 1, "{sent:?}");
        // [MQTT-4.12.0-5]: the same method, every step.
        assert_eq!(
            auth_sent(&sent[0]),
            expect(
                AuthReasonCode::ContinueAuthentication,
                Some(&format!("re:{challenge}"))
            )
        );
        assert!(!h.s.is_connected());
        assert!(h.events().is_empty());
    }
    h.feed(connack_with(
        ConnectReasonCode::Success,
        Some(METHOD),
        Some("final"),
    ));
    assert!(h.s.is_connected());
    assert!(has_connected(&h.events()));
    assert_eq!(
        log.take(),
        ["start", "step one", "step two", "finish final"]
    );
}

#[test]
fn an_auth_continue_without_data_steps_with_none() {
    let log = Log::default();
    let mut h = H::connecting(Echo::boxed(&log));
    h.sent();
    h.feed(auth(
        AuthReasonCode::ContinueAuthentication,
        Some(METHOD),
        None,
    ));
    assert_eq!(
        auth_sent(&h.sent()[0]),
        expect(AuthReasonCode::ContinueAuthentication, Some("re:-"))
    );
}

#[test]
fn connack_without_final_data_finishes_with_none() {
    let log = Log::default();
    let mut h = H::connecting(Echo::boxed(&log));
    h.sent();
    h.feed(connack_with(ConnectReasonCode::Success, None, None));
    assert!(has_connected(&h.events()));
    assert_eq!(log.take(), ["start", "finish -"]);
}

#[test]
fn final_data_that_does_not_check_out_closes_without_connected() {
    let log = Log::default();
    let mut h = H::connecting(Echo::boxed(&log));
    h.sent();
    h.feed(connack_with(
        ConnectReasonCode::Success,
        Some(METHOD),
        Some("forged"),
    ));
    let events = h.events();
    assert!(!has_connected(&events), "{events:?}");
    assert_eq!(
        events,
        [Event::Closed(CloseReason::Authentication(AuthError::new(
            "forged final data"
        )))]
    );
    assert!(h.s.is_closed());
    assert!(!h.s.is_connected());
}

#[test]
fn a_failing_step_before_connack_closes_quietly() {
    let log = Log::default();
    let mut h = H::connecting(Echo::boxed(&log));
    h.sent();
    h.feed(auth(
        AuthReasonCode::ContinueAuthentication,
        Some(METHOD),
        Some("bad"),
    ));
    // Not connected yet: there is no DISCONNECT to send (nor an AUTH).
    assert_eq!(h.sent(), vec![]);
    assert_eq!(
        h.closed_with(),
        Some(CloseReason::Authentication(AuthError::new("bad challenge")))
    );
}

#[test]
fn a_failing_start_does_not_send_connect() {
    #[derive(Debug)]
    struct NoStart;
    impl Authenticator for NoStart {
        fn method(&self) -> &str {
            "NOSTART"
        }
        fn start(&mut self) -> Result<Option<Bytes>, AuthError> {
            Err(AuthError::new("no token"))
        }
        fn step(&mut self, _: Option<&[u8]>) -> Result<Option<Bytes>, AuthError> {
            unreachable!()
        }
        fn finish(&mut self, _: Option<&[u8]>) -> Result<(), AuthError> {
            unreachable!()
        }
    }
    let mut h = H::connecting(Some(Box::new(NoStart)));
    assert_eq!(h.sent(), vec![]);
    assert_eq!(
        h.closed_with(),
        Some(CloseReason::Authentication(AuthError::new("no token")))
    );
}

#[test]
fn auth_with_another_method_before_connack_is_a_protocol_error() {
    let log = Log::default();
    let mut h = H::connecting(Echo::boxed(&log));
    h.sent();
    h.feed(auth(
        AuthReasonCode::ContinueAuthentication,
        Some("OTHER"),
        Some("x"),
    ));
    // Before CONNACK the connection is just closed.
    assert_eq!(h.sent(), vec![]);
    assert_eq!(
        h.closed_with(),
        Some(CloseReason::Protocol(ProtocolError::AuthMethodMismatch))
    );
    assert_eq!(log.take(), ["start"], "the authenticator is not asked");
}

#[test]
fn connack_with_another_method_is_a_protocol_error() {
    let log = Log::default();
    let mut h = H::connecting(Echo::boxed(&log));
    h.sent();
    h.feed(connack_with(
        ConnectReasonCode::Success,
        Some("OTHER"),
        Some("x"),
    ));
    let events = h.events();
    assert!(!has_connected(&events));
    assert!(events.contains(&Event::Closed(CloseReason::Protocol(
        ProtocolError::AuthMethodMismatch
    ))));
    assert_eq!(log.take(), ["start"]);
}

#[test]
fn auth_without_an_authenticator_is_a_protocol_error() {
    // Before CONNACK: closed, nothing sent.
    let mut h = H::connecting(None);
    h.sent();
    h.feed(auth(
        AuthReasonCode::ContinueAuthentication,
        Some(METHOD),
        Some("x"),
    ));
    assert_eq!(h.sent(), vec![]);
    assert_eq!(
        h.closed_with(),
        Some(CloseReason::Protocol(ProtocolError::UnexpectedPacket(
            PacketType::Auth
        )))
    );
    // After CONNACK: DISCONNECT 0x82 first.
    let mut h = H::connecting(None);
    h.sent();
    h.feed(connack_with(ConnectReasonCode::Success, None, None));
    h.events();
    h.feed(auth(
        AuthReasonCode::ReAuthenticate,
        Some(METHOD),
        Some("x"),
    ));
    assert_eq!(
        disconnect_code(&h.sent()),
        Some(DisconnectReasonCode::ProtocolError)
    );
    assert_eq!(
        h.closed_with(),
        Some(CloseReason::Protocol(ProtocolError::UnexpectedPacket(
            PacketType::Auth
        )))
    );
}

#[test]
fn auth_the_client_did_not_ask_for_is_a_protocol_error() {
    let cases = [
        // Connected, no re-authentication under way.
        (true, AuthReasonCode::ContinueAuthentication),
        (true, AuthReasonCode::Success),
        // Only a client starts a re-authentication.
        (true, AuthReasonCode::ReAuthenticate),
        // A connect ends with CONNACK, not AUTH Success.
        (false, AuthReasonCode::Success),
        (false, AuthReasonCode::ReAuthenticate),
    ];
    for (connected, code) in cases {
        let log = Log::default();
        let mut h = if connected {
            H::connected(&log)
        } else {
            let mut h = H::connecting(Echo::boxed(&log));
            h.sent();
            h
        };
        h.feed(auth(code, Some(METHOD), Some("x")));
        let sent = h.sent();
        if connected {
            assert_eq!(
                disconnect_code(&sent),
                Some(DisconnectReasonCode::ProtocolError),
                "{code:?}"
            );
        } else {
            assert_eq!(sent, vec![], "{code:?}");
        }
        assert_eq!(
            h.closed_with(),
            Some(CloseReason::Protocol(ProtocolError::UnexpectedPacket(
                PacketType::Auth
            ))),
            "{code:?}"
        );
        assert!(
            !log.take()
                .iter()
                .any(|e| e.starts_with("step") || e.starts_with("finish")),
            "{code:?}"
        );
    }
}

#[test]
fn refusals_are_refused_and_skip_finish() {
    for (code, why) in [
        (ConnectReasonCode::BadAuthenticationMethod, "no such method"),
        (ConnectReasonCode::NotAuthorized, "wrong password"),
    ] {
        let log = Log::default();
        let mut h = H::connecting(Echo::boxed(&log));
        h.sent();
        let Packet::ConnAck(mut connack) = connack_with(code, Some(METHOD), None) else {
            unreachable!()
        };
        connack.properties.reason_string = Some(s(why));
        h.feed(Packet::ConnAck(connack));
        assert_eq!(
            h.closed_with(),
            Some(CloseReason::Refused {
                reason: code,
                reason_string: Some(s(why)),
                server_reference: None,
            })
        );
        assert_eq!(log.take(), ["start"], "{code:?}");
    }
}

#[test]
fn every_connect_starts_a_new_exchange() {
    let log = Log::default();
    let mut h = H::connected(&log);
    h.s.handle_connection_lost(h.now);
    h.events();
    h.s.handle_connect(h.now);
    match &h.sent()[..] {
        [Packet::Connect(c)] => {
            assert_eq!(
                c.properties.authentication_data.as_deref(),
                Some(&b"hello-2"[..])
            );
        }
        other => panic!("expected CONNECT, got {other:?}"),
    }
    assert_eq!(log.take(), ["start"]);
}

// ---- re-authentication -------------------------------------------------

/// A QoS 1 publish goes out and its PUBACK completes it.
fn publish_round_trip(h: &mut H, request: RequestId) {
    let p = Publish::new(s("auth/t"), "x").with_qos(QoS::AtLeastOnce, None);
    h.s.handle_publish(request, p, h.now);
    let id = match &h.sent()[..] {
        [Packet::Publish(p)] => p.packet_id.expect("QoS 1 has an id"),
        other => panic!("expected PUBLISH, got {other:?}"),
    };
    h.feed(Packet::PubAck(PubAck::new(id)));
    assert!(
        h.events().iter().any(|e| matches!(
            e,
            Event::PublishDone { request: r, result: Ok(_) } if *r == request
        )),
        "publish {request} did not complete"
    );
}

#[test]
fn reauthentication_runs_alongside_publishes() {
    let log = Log::default();
    let mut h = H::connected(&log);
    h.s.handle_reauthenticate(h.now);
    let sent = h.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        auth_sent(&sent[0]),
        expect(AuthReasonCode::ReAuthenticate, Some("hello-2"))
    );
    // §4.12.1: the client may go on sending other packets meanwhile.
    publish_round_trip(&mut h, 1);
    h.feed(auth(
        AuthReasonCode::ContinueAuthentication,
        Some(METHOD),
        Some("again"),
    ));
    assert_eq!(
        auth_sent(&h.sent()[0]),
        expect(AuthReasonCode::ContinueAuthentication, Some("re:again"))
    );
    publish_round_trip(&mut h, 2);
    h.feed(auth(AuthReasonCode::Success, Some(METHOD), Some("done")));
    assert_eq!(h.sent(), vec![]);
    assert!(h.events().is_empty(), "no Connected, no Closed");
    assert!(h.s.is_connected());
    assert_eq!(log.take(), ["start", "step again", "finish done"]);
    publish_round_trip(&mut h, 3);
    // And again, on the same connection.
    h.s.handle_reauthenticate(h.now);
    assert_eq!(
        auth_sent(&h.sent()[0]),
        expect(AuthReasonCode::ReAuthenticate, Some("hello-3"))
    );
    h.feed(auth(AuthReasonCode::Success, Some(METHOD), None));
    assert!(h.s.is_connected());
    assert_eq!(log.take(), ["start", "finish -"]);
    // Once over, another AUTH from the broker is not welcome.
    h.feed(auth(AuthReasonCode::Success, Some(METHOD), None));
    assert_eq!(
        disconnect_code(&h.sent()),
        Some(DisconnectReasonCode::ProtocolError)
    );
}

#[test]
fn a_reauthentication_whose_finish_fails_disconnects_with_0x80() {
    let log = Log::default();
    let mut h = H::connected(&log);
    h.s.handle_reauthenticate(h.now);
    h.sent();
    h.feed(auth(AuthReasonCode::Success, Some(METHOD), Some("forged")));
    assert_eq!(
        disconnect_code(&h.sent()),
        Some(DisconnectReasonCode::UnspecifiedError)
    );
    assert_eq!(
        h.closed_with(),
        Some(CloseReason::Authentication(AuthError::new(
            "forged final data"
        )))
    );
    assert!(h.s.is_closed());
}

#[test]
fn a_reauthentication_whose_step_fails_disconnects_with_0x80() {
    let log = Log::default();
    let mut h = H::connected(&log);
    h.s.handle_reauthenticate(h.now);
    h.sent();
    h.feed(auth(
        AuthReasonCode::ContinueAuthentication,
        Some(METHOD),
        Some("bad"),
    ));
    assert_eq!(
        disconnect_code(&h.sent()),
        Some(DisconnectReasonCode::UnspecifiedError)
    );
    assert_eq!(
        h.closed_with(),
        Some(CloseReason::Authentication(AuthError::new("bad challenge")))
    );
}

#[test]
fn auth_with_another_method_during_reauthentication_disconnects_with_0x82() {
    let log = Log::default();
    let mut h = H::connected(&log);
    h.s.handle_reauthenticate(h.now);
    h.sent();
    h.feed(auth(
        AuthReasonCode::ContinueAuthentication,
        Some("OTHER"),
        Some("x"),
    ));
    assert_eq!(
        disconnect_code(&h.sent()),
        Some(DisconnectReasonCode::ProtocolError)
    );
    assert_eq!(
        h.closed_with(),
        Some(CloseReason::Protocol(ProtocolError::AuthMethodMismatch))
    );
}

#[test]
fn the_broker_refusing_a_reauthentication_disconnects_us() {
    let log = Log::default();
    let mut h = H::connected(&log);
    h.s.handle_reauthenticate(h.now);
    h.sent();
    h.feed(Packet::Disconnect(Disconnect::new(
        DisconnectReasonCode::NotAuthorized,
    )));
    assert!(matches!(
        h.closed_with(),
        Some(CloseReason::ServerDisconnect {
            reason: DisconnectReasonCode::NotAuthorized,
            ..
        })
    ));
}

#[test]
fn reauthenticate_needs_a_connection_an_authenticator_and_no_exchange_under_way() {
    // No authenticator.
    let mut h = H::connecting(None);
    h.sent();
    h.feed(connack_with(ConnectReasonCode::Success, None, None));
    h.s.handle_reauthenticate(h.now);
    assert_eq!(h.sent(), vec![]);
    // Not connected yet.
    let log = Log::default();
    let mut h = H::connecting(Echo::boxed(&log));
    h.sent();
    h.s.handle_reauthenticate(h.now);
    assert_eq!(h.sent(), vec![]);
    assert_eq!(log.take(), ["start"]);
    // One at a time.
    let log = Log::default();
    let mut h = H::connected(&log);
    h.s.handle_reauthenticate(h.now);
    h.s.handle_reauthenticate(h.now);
    assert_eq!(h.sent().len(), 1);
    assert_eq!(log.take(), ["start"]);
    // Closed.
    h.s.handle_connection_lost(h.now);
    h.s.handle_reauthenticate(h.now);
    assert_eq!(h.sent(), vec![]);
}

#[test]
fn a_reconnect_forgets_a_reauthentication_under_way() {
    let log = Log::default();
    let mut h = H::connected(&log);
    h.s.handle_reauthenticate(h.now);
    h.sent();
    h.s.handle_connection_lost(h.now);
    h.events();
    h.s.handle_connect(h.now);
    h.sent();
    h.feed(connack_with(ConnectReasonCode::Success, Some(METHOD), None));
    assert!(h.s.is_connected());
    h.events();
    // The old exchange's AUTH Success, arriving now, is unexpected.
    h.feed(auth(AuthReasonCode::Success, Some(METHOD), None));
    assert_eq!(
        disconnect_code(&h.sent()),
        Some(DisconnectReasonCode::ProtocolError)
    );
}

/// §3.15.2.1: "The Reason Code and Property Length can be omitted if the
/// Reason Code is 0x00 (Success) and there are no Properties", and the
/// codec accepts such an AUTH (it carries no Authentication Method). A
/// broker may end a re-authentication with it.
#[test]
fn a_bare_auth_success_ends_a_reauthentication() {
    let log = Log::default();
    let mut h = H::connected(&log);
    h.s.handle_reauthenticate(h.now);
    h.sent();
    // Encoded with Remaining Length 0.
    h.feed(auth(AuthReasonCode::Success, None, None));
    assert_eq!(h.sent(), vec![]);
    assert!(h.events().is_empty());
    assert!(h.s.is_connected());
    assert_eq!(log.take(), ["start", "finish -"]);
}

// ---- SCRAM-SHA-256 against a SCRAM server -----------------------------

/// The broker's half of SCRAM-SHA-256, from RFC 5802 §3: it stores only
/// StoredKey and ServerKey, recovers ClientKey from the proof and checks it
/// hashes to StoredKey.
struct ScramServer {
    salt: &'static [u8],
    iterations: u32,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
    /// client-first-bare and server-first, once seen.
    transcript: Option<(String, String)>,
    /// Change the signature in server-final, as a broker that does not
    /// know the password would have to.
    forge: bool,
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
        .as_ref()
        .to_vec()
}

impl ScramServer {
    fn new(password: &str) -> ScramServer {
        let salt = b"plover salt";
        let iterations = 4096;
        let mut salted = [0u8; 32];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            NonZeroU32::new(iterations).unwrap(),
            salt,
            password.as_bytes(),
            &mut salted,
        );
        let client_key = hmac_sha256(&salted, b"Client Key");
        ScramServer {
            salt,
            iterations,
            stored_key: digest::digest(&digest::SHA256, &client_key)
                .as_ref()
                .to_vec(),
            server_key: hmac_sha256(&salted, b"Server Key"),
            transcript: None,
            forge: false,
        }
    }

    /// client-first -> server-first.
    fn first(&mut self, client_first: &[u8]) -> String {
        let client_first = std::str::from_utf8(client_first).unwrap();
        let bare = client_first.strip_prefix("n,,").expect("gs2 header n,,");
        assert!(bare.starts_with("n=user,r="), "{bare}");
        let nonce = bare.rsplit("r=").next().unwrap();
        let server_first = format!(
            "r={nonce}server-part,s={},i={}",
            base64::encode(self.salt),
            self.iterations
        );
        self.transcript = Some((bare.to_string(), server_first.clone()));
        server_first
    }

    /// client-final -> server-final, or the error a broker would refuse with.
    fn last(&mut self, client_final: &[u8]) -> Result<String, &'static str> {
        let client_final = std::str::from_utf8(client_final).unwrap();
        let (bare, server_first) = self.transcript.take().expect("first came first");
        let (without_proof, proof) = client_final.rsplit_once(",p=").expect("a proof");
        let nonce = server_first.split(',').next().unwrap();
        assert_eq!(without_proof, format!("c=biws,{nonce}"));
        let auth_message = format!("{bare},{server_first},{without_proof}");
        let signature = hmac_sha256(&self.stored_key, auth_message.as_bytes());
        let proof = base64::decode(proof).expect("base64 proof");
        let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(p, s)| p ^ s).collect();
        if digest::digest(&digest::SHA256, &client_key).as_ref() != self.stored_key {
            return Err("invalid-proof");
        }
        let mut verifier = hmac_sha256(&self.server_key, auth_message.as_bytes());
        if self.forge {
            verifier[0] ^= 1;
        }
        Ok(format!("v={}", base64::encode(&verifier)))
    }
}

const SCRAM: &str = "SCRAM-SHA-256";

fn scram_client() -> Option<Box<dyn Authenticator>> {
    Some(Box::new(ScramSha256::new("user", "pencil")))
}

/// The authentication data of the one packet the session sent.
fn data_sent(sent: &[Packet]) -> Bytes {
    match sent {
        [Packet::Connect(c)] => {
            assert_eq!(c.properties.authentication_method.as_deref(), Some(SCRAM));
            c.properties.authentication_data.clone().expect("data")
        }
        [Packet::Auth(a)] => {
            assert_eq!(a.properties.authentication_method.as_deref(), Some(SCRAM));
            a.properties.authentication_data.clone().expect("data")
        }
        other => panic!("expected one CONNECT or AUTH, got {other:?}"),
    }
}

/// Runs connect up to the client-final; returns it.
fn scram_until_client_final(h: &mut H, server: &mut ScramServer) -> Bytes {
    let client_first = data_sent(&h.sent());
    let server_first = server.first(&client_first);
    h.feed(auth(
        AuthReasonCode::ContinueAuthentication,
        Some(SCRAM),
        Some(&server_first),
    ));
    let sent = h.sent();
    assert_eq!(
        auth_sent(&sent[0]).0,
        AuthReasonCode::ContinueAuthentication
    );
    data_sent(&sent)
}

#[test]
fn scram_connects_and_reauthenticates() {
    let mut server = ScramServer::new("pencil");
    let mut h = H::connecting(scram_client());
    let client_final = scram_until_client_final(&mut h, &mut server);
    let server_final = server.last(&client_final).expect("the proof checks out");
    h.feed(connack_with(
        ConnectReasonCode::Success,
        Some(SCRAM),
        Some(&server_final),
    ));
    assert!(has_connected(&h.events()));
    assert!(h.s.is_connected());
    publish_round_trip(&mut h, 1);

    // Re-authentication: a new exchange, new nonce, same password.
    h.s.handle_reauthenticate(h.now);
    let sent = h.sent();
    assert_eq!(auth_sent(&sent[0]).0, AuthReasonCode::ReAuthenticate);
    let client_first = data_sent(&sent);
    let server_first = server.first(&client_first);
    h.feed(auth(
        AuthReasonCode::ContinueAuthentication,
        Some(SCRAM),
        Some(&server_first),
    ));
    let client_final = data_sent(&h.sent());
    publish_round_trip(&mut h, 2);
    let server_final = server.last(&client_final).expect("the proof checks out");
    h.feed(auth(
        AuthReasonCode::Success,
        Some(SCRAM),
        Some(&server_final),
    ));
    assert_eq!(h.sent(), vec![]);
    assert!(h.events().is_empty());
    assert!(h.s.is_connected());
    publish_round_trip(&mut h, 3);
}

#[test]
fn scram_with_a_wrong_password_is_refused_by_the_server() {
    let mut server = ScramServer::new("not pencil");
    let mut h = H::connecting(scram_client());
    let client_final = scram_until_client_final(&mut h, &mut server);
    assert_eq!(server.last(&client_final), Err("invalid-proof"));
}

#[test]
fn scram_with_a_forged_server_signature_fails_the_connect() {
    let mut server = ScramServer::new("pencil");
    server.forge = true;
    let mut h = H::connecting(scram_client());
    let client_final = scram_until_client_final(&mut h, &mut server);
    let server_final = server.last(&client_final).unwrap();
    h.feed(connack_with(
        ConnectReasonCode::Success,
        Some(SCRAM),
        Some(&server_final),
    ));
    let events = h.events();
    assert!(!has_connected(&events), "{events:?}");
    match &events[..] {
        [Event::Closed(CloseReason::Authentication(e))] => {
            assert!(e.0.contains("server signature does not match"), "{e}")
        }
        other => panic!("expected an authentication close, got {other:?}"),
    }
}

#[test]
fn scram_connack_without_server_final_fails_the_connect() {
    // A broker that skips the exchange altogether has proved nothing.
    let mut h = H::connecting(scram_client());
    h.sent();
    h.feed(connack_with(ConnectReasonCode::Success, Some(SCRAM), None));
    assert!(matches!(
        &h.events()[..],
        [Event::Closed(CloseReason::Authentication(_))]
    ));
}

#[test]
fn scram_server_final_in_an_auth_continue() {
    let mut server = ScramServer::new("pencil");
    let mut h = H::connecting(scram_client());
    let client_final = scram_until_client_final(&mut h, &mut server);
    let server_final = server.last(&client_final).unwrap();
    h.feed(auth(
        AuthReasonCode::ContinueAuthentication,
        Some(SCRAM),
        Some(&server_final),
    ));
    // Answered with an empty AUTH Continue.
    let sent = h.sent();
    assert_eq!(
        auth_sent(&sent[0]),
        (
            AuthReasonCode::ContinueAuthentication,
            Some(SCRAM.into()),
            None
        )
    );
    h.feed(connack_with(ConnectReasonCode::Success, Some(SCRAM), None));
    assert!(has_connected(&h.events()));
}

#[test]
fn scram_server_error_in_a_reauthentication_disconnects() {
    let mut server = ScramServer::new("pencil");
    let mut h = H::connecting(scram_client());
    let client_final = scram_until_client_final(&mut h, &mut server);
    let server_final = server.last(&client_final).unwrap();
    h.feed(connack_with(
        ConnectReasonCode::Success,
        Some(SCRAM),
        Some(&server_final),
    ));
    h.events();
    h.s.handle_reauthenticate(h.now);
    let client_first = data_sent(&h.sent());
    let server_first = server.first(&client_first);
    h.feed(auth(
        AuthReasonCode::ContinueAuthentication,
        Some(SCRAM),
        Some(&server_first),
    ));
    h.sent();
    h.feed(auth(
        AuthReasonCode::Success,
        Some(SCRAM),
        Some("e=other-error"),
    ));
    assert_eq!(
        disconnect_code(&h.sent()),
        Some(DisconnectReasonCode::UnspecifiedError)
    );
    match h.closed_with() {
        Some(CloseReason::Authentication(e)) => assert!(e.0.ends_with("other-error"), "{e}"),
        other => panic!("expected an authentication close, got {other:?}"),
    }
}

#[test]
fn packet_ids_are_unaffected_by_auth_packets() {
    // AUTH has no packet identifier; an exchange in the middle of QoS 1
    // traffic must not disturb the ids in use.
    let log = Log::default();
    let mut h = H::connected(&log);
    let p = Publish::new(s("auth/t"), "x").with_qos(QoS::AtLeastOnce, None);
    h.s.handle_publish(1, p, h.now);
    let first = match &h.sent()[..] {
        [Packet::Publish(p)] => p.packet_id,
        other => panic!("{other:?}"),
    };
    h.s.handle_reauthenticate(h.now);
    h.sent();
    h.feed(auth(AuthReasonCode::Success, Some(METHOD), None));
    h.feed(Packet::PubAck(PubAck::new(
        first.unwrap_or(NonZeroU16::MIN),
    )));
    assert!(h.events().iter().any(|e| matches!(
        e,
        Event::PublishDone {
            request: 1,
            result: Ok(_)
        }
    )));
    assert_eq!(h.s.inflight_len(), 0);
}
