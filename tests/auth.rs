//! MQTT 5.0 enhanced authentication with SCRAM-SHA-256, end to end: a
//! `Client` with `auth_set(|| ScramSha256::new(..))` against a scripted
//! broker on 127.0.0.1.
//!
//! mosquitto 2.0 cannot run SCRAM (its enhanced authentication needs a
//! plugin), so the broker here is a script: it decodes what the client
//! sends with `plover::codec::decode`, runs the server side of SCRAM
//! (RFC 5802 §3, written here from the formulas with ring, the same crypto
//! the client uses but not its code), and answers with packets encoded by
//! the codec. Every wait is bounded.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use plover::auth::ScramSha256;
use plover::codec::{
    self, Auth, AuthReasonCode, ConnAck, ConnectReasonCode, DisconnectReasonCode, MqttString,
    Packet, PubAck,
};
use plover::{Client, ClientError, CloseReason, ConnectionEvent, ProtocolVersion, QoS};
use ring::{digest, hmac, pbkdf2};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::timeout;

const V5: ProtocolVersion = ProtocolVersion::V5;
const METHOD: &str = "SCRAM-SHA-256";
const USER: &str = "alice";
const PASSWORD: &str = "correct horse battery staple";
/// The longest any single step may take before the test fails.
const WAIT: Duration = Duration::from_secs(10);

// ---- base64 (RFC 4648, standard alphabet, padded) ----------------------

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                char::from(B64[(n >> (18 - 6 * i) & 63) as usize])
            } else {
                '='
            });
        }
    }
    out
}

fn b64_decode(text: &str) -> Vec<u8> {
    let mut bits = 0u32;
    let mut nbits = 0;
    let mut out = Vec::new();
    for c in text.bytes().take_while(|&c| c != b'=') {
        let v = B64.iter().position(|&a| a == c).expect("base64") as u32;
        bits = bits << 6 | v;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
        }
    }
    out
}

// ---- the server side of SCRAM-SHA-256 ----------------------------------

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
        .as_ref()
        .to_vec()
}

/// What a broker stores for a user (RFC 5802 §3): salt, iteration count,
/// StoredKey and ServerKey, never the password.
struct ScramServer {
    salt: Vec<u8>,
    iterations: u32,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
    /// client-first-bare and server-first of the exchange under way.
    transcript: Option<(String, String)>,
    exchanges: usize,
}

impl ScramServer {
    fn for_password(password: &str) -> ScramServer {
        let salt = b"scripted broker salt".to_vec();
        let iterations = 4096;
        let mut salted = [0u8; 32];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            NonZeroU32::new(iterations).unwrap(),
            &salt,
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
            exchanges: 0,
        }
    }

    /// client-first -> server-first; returns the client nonce too.
    fn first(&mut self, client_first: &[u8]) -> (String, String) {
        let client_first = std::str::from_utf8(client_first).expect("UTF-8 client-first");
        let bare = client_first
            .strip_prefix("n,,")
            .expect("client-first starts with the gs2 header n,,");
        let rest = bare
            .strip_prefix(&format!("n={USER},r="))
            .unwrap_or_else(|| panic!("unexpected client-first-bare {bare}"));
        let client_nonce = rest.to_string();
        self.exchanges += 1;
        let server_first = format!(
            "r={client_nonce}srv{},s={},i={}",
            self.exchanges,
            b64_encode(&self.salt),
            self.iterations
        );
        self.transcript = Some((bare.to_string(), server_first.clone()));
        (server_first, client_nonce)
    }

    /// client-final -> the server signature, or `None` for a wrong proof.
    fn last(&mut self, client_final: &[u8]) -> Option<Vec<u8>> {
        let client_final = std::str::from_utf8(client_final).expect("UTF-8 client-final");
        let (bare, server_first) = self.transcript.take().expect("client-first came first");
        let (without_proof, proof) = client_final.rsplit_once(",p=").expect("a proof");
        let nonce = server_first.split(',').next().unwrap();
        assert_eq!(without_proof, format!("c=biws,{nonce}"));
        let auth_message = format!("{bare},{server_first},{without_proof}");
        let client_signature = hmac_sha256(&self.stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> = b64_decode(proof)
            .iter()
            .zip(&client_signature)
            .map(|(p, s)| p ^ s)
            .collect();
        if digest::digest(&digest::SHA256, &client_key).as_ref() != self.stored_key {
            return None;
        }
        Some(hmac_sha256(&self.server_key, auth_message.as_bytes()))
    }
}

// ---- the scripted broker ------------------------------------------------

/// One client connection, seen from the broker.
struct Peer {
    stream: TcpStream,
    buf: BytesMut,
}

impl Peer {
    /// The next packet, or `None` when the client closed the connection.
    async fn read(&mut self) -> Option<Packet> {
        loop {
            if let Some(p) = codec::decode(&mut self.buf, V5, 1 << 20).expect("valid packet") {
                return Some(p);
            }
            let n = timeout(WAIT, self.stream.read_buf(&mut self.buf))
                .await
                .expect("the client went quiet")
                .unwrap_or(0);
            if n == 0 {
                return None;
            }
        }
    }

    async fn expect(&mut self) -> Packet {
        self.read().await.expect("the client closed the connection")
    }

    async fn send(&mut self, p: Packet) {
        let mut out = BytesMut::new();
        p.encode(V5, &mut out).expect("encodable");
        self.stream.write_all(&out).await.expect("write");
    }
}

/// A scripted broker on 127.0.0.1: runs `script` on the first connection
/// and counts every connection made (a client that retried would show).
struct Broker<R> {
    port: u16,
    connections: Arc<AtomicUsize>,
    script: JoinHandle<R>,
}

async fn broker<R, F, Fut>(script: F) -> Broker<R>
where
    R: Send + 'static,
    F: FnOnce(Peer) -> Fut + Send + 'static,
    Fut: Future<Output = R> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let (first_tx, first_rx) = oneshot::channel();
    let count = connections.clone();
    tokio::spawn(async move {
        let mut first = Some(first_tx);
        // Later connections are counted, then dropped.
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            if let Some(tx) = first.take() {
                let _ = tx.send(stream);
            }
        }
    });
    let script = tokio::spawn(async move {
        let stream = timeout(WAIT, first_rx)
            .await
            .expect("no client connected")
            .expect("listener alive");
        script(Peer {
            stream,
            buf: BytesMut::new(),
        })
        .await
    });
    Broker {
        port,
        connections,
        script,
    }
}

fn method() -> Option<MqttString> {
    Some(MqttString::from_static(METHOD))
}

fn auth(code: AuthReasonCode, data: impl Into<Bytes>) -> Packet {
    let mut a = Auth::new(code);
    a.properties.authentication_method = method();
    a.properties.authentication_data = Some(data.into());
    Packet::Auth(a)
}

fn connack(code: ConnectReasonCode, data: Option<String>) -> Packet {
    let mut c = ConnAck::new(false, code);
    c.properties.authentication_method = method();
    c.properties.authentication_data = data.map(Bytes::from);
    Packet::ConnAck(Box::new(c))
}

/// The authentication data of an AUTH with this reason code.
fn auth_data(p: Packet, code: AuthReasonCode) -> Bytes {
    match p {
        Packet::Auth(a) => {
            assert_eq!(a.reason_code, code);
            assert_eq!(a.properties.authentication_method.as_deref(), Some(METHOD));
            a.properties
                .authentication_data
                .expect("authentication data")
        }
        other => panic!("expected AUTH {code:?}, got {other:?}"),
    }
}

/// Reads CONNECT and plays SCRAM up to the client-final; returns what
/// `ScramServer::last` says about it.
async fn connect_exchange(peer: &mut Peer, server: &mut ScramServer) -> Option<Vec<u8>> {
    let client_first = match peer.expect().await {
        Packet::Connect(c) => {
            assert_eq!(c.properties.authentication_method.as_deref(), Some(METHOD));
            c.properties
                .authentication_data
                .expect("client-first in CONNECT")
        }
        other => panic!("expected CONNECT, got {other:?}"),
    };
    let (server_first, _) = server.first(&client_first);
    peer.send(auth(AuthReasonCode::ContinueAuthentication, server_first))
        .await;
    let client_final = auth_data(peer.expect().await, AuthReasonCode::ContinueAuthentication);
    server.last(&client_final)
}

fn scram_client(password: &'static str) -> Client {
    let client = Client::builder("scram-test")
        .protocol(V5)
        .connect_timeout(WAIT)
        // A retry would show up within this test's waits.
        .retry_first_connect(true)
        .reconnect_delay(Duration::from_millis(50), Duration::from_millis(100))
        .build();
    client.auth_set(move || ScramSha256::new(USER, password));
    client
}

/// Waits a little and checks that nobody connected again.
async fn assert_no_retry(connections: &AtomicUsize) {
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(connections.load(Ordering::SeqCst), 1, "the client retried");
}

// ---- the tests -----------------------------------------------------------

/// What the broker saw after the handshake.
#[derive(Debug, Default)]
struct Seen {
    publishes: usize,
    reauthentications: usize,
    nonces: Vec<String>,
    disconnect: Option<DisconnectReasonCode>,
}

#[tokio::test]
async fn scram_connects_publishes_and_reauthenticates() {
    let (reauthenticated_tx, reauthenticated_rx) = oneshot::channel::<()>();
    let broker = broker(|mut peer| async move {
        let mut server = ScramServer::for_password(PASSWORD);
        let mut seen = Seen::default();
        let signature = connect_exchange(&mut peer, &mut server)
            .await
            .expect("the proof checks out");
        peer.send(connack(
            ConnectReasonCode::Success,
            Some(format!("v={}", b64_encode(&signature))),
        ))
        .await;
        let mut reauthenticated = Some(reauthenticated_tx);
        // From here the client may interleave PUBLISHes with a
        // re-authentication: react to whatever comes.
        while let Some(p) = peer.read().await {
            match p {
                Packet::Publish(p) => {
                    seen.publishes += 1;
                    let id = p.packet_id.expect("QoS 1");
                    peer.send(Packet::PubAck(PubAck::new(id))).await;
                }
                Packet::Auth(a) if a.reason_code == AuthReasonCode::ReAuthenticate => {
                    let client_first = a.properties.authentication_data.expect("client-first");
                    let (server_first, nonce) = server.first(&client_first);
                    seen.nonces.push(nonce);
                    peer.send(auth(AuthReasonCode::ContinueAuthentication, server_first))
                        .await;
                }
                Packet::Auth(a) => {
                    let client_final =
                        auth_data(Packet::Auth(a), AuthReasonCode::ContinueAuthentication);
                    let signature = server.last(&client_final).expect("the proof checks out");
                    seen.reauthentications += 1;
                    let server_final = format!("v={}", b64_encode(&signature));
                    peer.send(auth(AuthReasonCode::Success, server_final)).await;
                    if let Some(tx) = reauthenticated.take() {
                        let _ = tx.send(());
                    }
                }
                Packet::Disconnect(d) => {
                    seen.disconnect = Some(d.reason_code);
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        seen
    })
    .await;

    let client = scram_client(PASSWORD);
    let mut events = client.connection_events();
    let connack = timeout(WAIT, client.connect("127.0.0.1", broker.port, 60))
        .await
        .expect("connect in time")
        .expect("SCRAM connect");
    assert_eq!(
        connack.properties.authentication_method.as_deref(),
        Some(METHOD)
    );
    assert!(client.is_connected());

    let publish = |n: u32| {
        let client = client.clone();
        async move {
            let handle = client
                .publish("auth/test", format!("message {n}"), QoS::AtLeastOnce, false)
                .await
                .expect("queued");
            timeout(WAIT, handle)
                .await
                .expect("PUBACK in time")
                .expect("PUBACK")
        }
    };
    publish(1).await;

    client
        .reauthenticate()
        .await
        .expect("re-authentication queued");
    timeout(WAIT, reauthenticated_rx)
        .await
        .expect("re-authentication in time")
        .expect("broker alive");
    // The client has the AUTH Success before this PUBACK: the connection
    // survived the server signature check.
    publish(2).await;
    assert!(client.is_connected());

    timeout(WAIT, client.disconnect())
        .await
        .expect("disconnect in time")
        .expect("disconnect");
    let seen = timeout(WAIT, broker.script)
        .await
        .expect("script done")
        .expect("script passed");
    assert_eq!(seen.publishes, 2);
    assert_eq!(seen.reauthentications, 1);
    assert_eq!(seen.nonces.len(), 1);
    assert_eq!(
        seen.disconnect,
        Some(DisconnectReasonCode::NormalDisconnection)
    );
    // Connected, then our own disconnect: nothing in between.
    let mut all = Vec::new();
    while let Ok(Some(e)) = timeout(Duration::from_millis(100), events.recv()).await {
        all.push(e);
    }
    assert!(
        matches!(
            &all[..],
            [
                ConnectionEvent::Connected(_),
                ConnectionEvent::Disconnected(CloseReason::Normal)
            ]
        ),
        "{all:?}"
    );
    assert_eq!(broker.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_wrong_password_is_refused_and_not_retried() {
    let broker = broker(|mut peer| async move {
        let mut server = ScramServer::for_password(PASSWORD);
        let verdict = connect_exchange(&mut peer, &mut server).await;
        assert!(verdict.is_none(), "a wrong password must not check out");
        let Packet::ConnAck(mut refusal) = connack(ConnectReasonCode::NotAuthorized, None) else {
            unreachable!()
        };
        refusal.properties.reason_string = Some(MqttString::from_static("invalid-proof"));
        peer.send(Packet::ConnAck(refusal)).await;
        // The client closes.
        assert!(peer.read().await.is_none());
    })
    .await;

    let client = scram_client("wrong password");
    let result = timeout(WAIT, client.connect("127.0.0.1", broker.port, 60))
        .await
        .expect("an answer in time");
    match result {
        Err(ClientError::ConnectionRefused {
            reason,
            reason_string,
            ..
        }) => {
            assert_eq!(reason, ConnectReasonCode::NotAuthorized);
            assert_eq!(reason_string.as_deref(), Some("invalid-proof"));
        }
        other => panic!("expected ConnectionRefused, got {other:?}"),
    }
    assert!(!client.is_connected());
    timeout(WAIT, broker.script)
        .await
        .expect("script done")
        .expect("script passed");
    assert_no_retry(&broker.connections).await;
}

#[tokio::test]
async fn a_broker_with_a_wrong_server_signature_fails_the_connect() {
    let broker = broker(|mut peer| async move {
        let mut server = ScramServer::for_password(PASSWORD);
        let mut signature = connect_exchange(&mut peer, &mut server)
            .await
            .expect("the proof checks out");
        // What a broker that does not hold our keys would have to do:
        // accept, with a signature it cannot compute.
        signature[7] ^= 0x20;
        peer.send(connack(
            ConnectReasonCode::Success,
            Some(format!("v={}", b64_encode(&signature))),
        ))
        .await;
        // The client hangs up without a word (it was never connected).
        peer.read().await
    })
    .await;

    let client = scram_client(PASSWORD);
    let mut events = client.connection_events();
    let result = timeout(WAIT, client.connect("127.0.0.1", broker.port, 60))
        .await
        .expect("an answer in time");
    match result {
        Err(ClientError::ConnectionClosed(CloseReason::Authentication(e))) => {
            assert!(
                e.to_string().contains("server signature does not match"),
                "{e}"
            );
        }
        other => panic!("expected an authentication failure, got {other:?}"),
    }
    assert!(!client.is_connected());
    let after = timeout(WAIT, broker.script)
        .await
        .expect("script done")
        .expect("script passed");
    // The broker took the connection as open, so the client says goodbye
    // (DISCONNECT 0x80) rather than just hanging up, and sends nothing else.
    match after {
        Some(Packet::Disconnect(d)) => {
            assert_eq!(d.reason_code, DisconnectReasonCode::UnspecifiedError)
        }
        other => panic!("expected DISCONNECT 0x80 after the CONNACK, got {other:?}"),
    }
    assert_no_retry(&broker.connections).await;
    // No Connected event for a broker that did not prove itself.
    while let Ok(Some(e)) = timeout(Duration::from_millis(50), events.recv()).await {
        assert!(!matches!(e, ConnectionEvent::Connected(_)), "{e:?}");
    }
}

#[tokio::test]
async fn a_failed_reauthentication_disconnects_and_does_not_reconnect() {
    let broker = broker(|mut peer| async move {
        let mut server = ScramServer::for_password(PASSWORD);
        let signature = connect_exchange(&mut peer, &mut server)
            .await
            .expect("the proof checks out");
        peer.send(connack(
            ConnectReasonCode::Success,
            Some(format!("v={}", b64_encode(&signature))),
        ))
        .await;
        let client_first = auth_data(peer.expect().await, AuthReasonCode::ReAuthenticate);
        let (server_first, _) = server.first(&client_first);
        peer.send(auth(AuthReasonCode::ContinueAuthentication, server_first))
            .await;
        let client_final = auth_data(peer.expect().await, AuthReasonCode::ContinueAuthentication);
        let mut signature = server.last(&client_final).expect("the proof checks out");
        signature[0] ^= 1;
        peer.send(auth(
            AuthReasonCode::Success,
            format!("v={}", b64_encode(&signature)),
        ))
        .await;
        // The client tells us why it leaves.
        match peer.expect().await {
            Packet::Disconnect(d) => d.reason_code,
            other => panic!("expected DISCONNECT, got {other:?}"),
        }
    })
    .await;

    let client = scram_client(PASSWORD);
    let mut events = client.connection_events();
    timeout(WAIT, client.connect("127.0.0.1", broker.port, 60))
        .await
        .expect("connect in time")
        .expect("SCRAM connect");
    client.reauthenticate().await.expect("queued");
    let code = timeout(WAIT, broker.script)
        .await
        .expect("script done")
        .expect("script passed");
    assert_eq!(code, DisconnectReasonCode::UnspecifiedError);
    let disconnected = timeout(WAIT, async {
        loop {
            match events.recv().await {
                Some(ConnectionEvent::Disconnected(reason)) => return reason,
                Some(_) => continue,
                None => panic!("client gone"),
            }
        }
    })
    .await
    .expect("a Disconnected event");
    assert!(
        matches!(disconnected, CloseReason::Authentication(_)),
        "{disconnected:?}"
    );
    // automatic_reconnect is on, but a failed authentication is final.
    assert_no_retry(&broker.connections).await;
    assert!(!client.is_connected());
}

#[tokio::test]
async fn a_broker_without_the_method_refuses_with_0x8c() {
    let broker = broker(|mut peer| async move {
        assert!(matches!(peer.expect().await, Packet::Connect(_)));
        let Packet::ConnAck(mut refusal) =
            connack(ConnectReasonCode::BadAuthenticationMethod, None)
        else {
            unreachable!()
        };
        refusal.properties.authentication_method = None;
        peer.send(Packet::ConnAck(refusal)).await;
    })
    .await;
    let client = scram_client(PASSWORD);
    let result = timeout(WAIT, client.connect("127.0.0.1", broker.port, 60))
        .await
        .expect("an answer in time");
    assert!(
        matches!(
            result,
            Err(ClientError::ConnectionRefused {
                reason: ConnectReasonCode::BadAuthenticationMethod,
                ..
            })
        ),
        "{result:?}"
    );
    assert_no_retry(&broker.connections).await;
}
