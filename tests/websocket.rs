//! MQTT over WebSocket end to end: plover clients on mosquitto's
//! `protocol websockets` listeners (plain `ws://` and TLS `wss://`, with
//! certificates made at test time), exchanging messages with plover clients
//! on the same broker's plain TCP listener, so every message crosses from
//! one transport to the other. Then the upgrade failures a user can meet:
//! a 404, a server that will not speak the `mqtt` subprotocol, a plain MQTT
//! port, and servers that stall in the TLS handshake or the upgrade.
//!
//! What mosquitto 2.0.11 (libwebsockets 4.1) does, which the setup follows:
//!
//! - It will not start with websockets listeners only ("Unable to start any
//!   listening sockets"); the harness's plain TCP listener comes first.
//! - `listener PORT 127.0.0.1` with `protocol websockets` binds *every*
//!   address unless `socket_domain ipv4` is set too, so it is, to keep the
//!   broker on loopback.
//! - It upgrades on any path, answers `Sec-WebSocket-Protocol: mqtt`, and
//!   closes the connection without an answer when offered only other
//!   subprotocols; so the refusal tests use small local servers.
//!
//! Every wait is bounded; only 127.0.0.1 is used.
#![cfg(feature = "websocket")]

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use common::{Broker, client_id, free_port, within};
use plover::transport::{TlsOptions, TransportError};
use plover::{Client, ClientError, Messages, ProtocolVersion, QoS};

const HOST: &str = "127.0.0.1";
/// Upper bound for one step (a connect, an acknowledgement, a message).
const STEP: u64 = 10;
const QOS_ALL: [QoS; 3] = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce];

/// Generates `mod $scenario { v311, v5 }` tests calling `$scenario(version)`.
macro_rules! both_versions {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn v311() {
                super::$scenario(plover::ProtocolVersion::V311).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn v5() {
                super::$scenario(plover::ProtocolVersion::V5).await;
            }
        }
    )*};
}

both_versions!(
    ws_via_builder,
    ws_via_url,
    ws_custom_headers_reach_the_broker,
    wss_via_url,
    wss_via_builder,
);

// ---------------------------------------------------------------------------
// Brokers.

/// A mosquitto with its plain TCP listener (`broker.port`) and a WebSocket
/// listener on the returned port; `ws_extra` goes into the WebSocket
/// listener's block, `prepare` writes files into the broker's directory.
fn ws_broker(ws_extra: &str, prepare: impl Fn(&std::path::Path)) -> (Broker, u16) {
    // The harness retries ports for its own listener only; a WebSocket
    // port taken meanwhile makes mosquitto exit, so pick again.
    for attempt in 0.. {
        let ws_port = free_port();
        let config = format!(
            "allow_anonymous true\n\
             listener {ws_port} {HOST}\n\
             socket_domain ipv4\n\
             protocol websockets\n\
             {ws_extra}"
        );
        let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Broker::start_with_files(&config, &prepare)
        }));
        match started {
            Ok(broker) => {
                wait_listening(ws_port);
                return (broker, ws_port);
            }
            Err(panic) if attempt >= 2 => std::panic::resume_unwind(panic),
            Err(_) => {}
        }
    }
    unreachable!()
}

/// The harness waits for the TCP listener; mosquitto opens the WebSocket
/// one just after it.
fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(STEP);
    while std::net::TcpStream::connect((HOST, port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the WebSocket listener on port {port} did not open"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn plain_ws_broker() -> (Broker, u16) {
    ws_broker("", |_| {})
}

/// A CA and a server certificate it signed for 127.0.0.1 and localhost.
struct Pki {
    ca: String,
    server_cert: String,
    server_key: String,
}

fn pki() -> &'static Pki {
    static PKI: std::sync::OnceLock<Pki> = std::sync::OnceLock::new();
    PKI.get_or_init(|| {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "plover websocket test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().expect("server key");
        let mut server_params =
            CertificateParams::new(vec![HOST.to_owned(), "localhost".to_owned()])
                .expect("server params");
        server_params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let server_cert = server_params
            .signed_by(&server_key, &issuer)
            .expect("server certificate");
        Pki {
            ca: ca_cert.pem(),
            server_cert: server_cert.pem(),
            server_key: server_key.serialize_pem(),
        }
    })
}

fn tls_ws_broker() -> (Broker, u16) {
    let pki = pki();
    ws_broker(
        "cafile {dir}/ca.pem\ncertfile {dir}/server.crt\nkeyfile {dir}/server.key\n",
        |dir| {
            for (name, text) in [
                ("ca.pem", &pki.ca),
                ("server.crt", &pki.server_cert),
                ("server.key", &pki.server_key),
            ] {
                std::fs::write(dir.join(name), text).expect("write a certificate file");
            }
        },
    )
}

fn trust_test_ca() -> TlsOptions {
    TlsOptions::new()
        .ca_pem(pki().ca.as_bytes())
        .expect("the test CA loads")
}

// ---------------------------------------------------------------------------
// Clients.

fn builder(tag: &str, version: ProtocolVersion) -> plover::ClientBuilder {
    Client::builder(client_id(tag))
        .protocol(version)
        .automatic_reconnect(false)
        .connect_timeout(Duration::from_secs(STEP))
}

/// Connects `client` with `connect` (a `connect` or `connect_url` call),
/// panicking with the broker's log on failure.
async fn connected<F, T>(broker: &Broker, what: &str, connect: F) -> T
where
    F: std::future::Future<Output = Result<T, ClientError>>,
{
    within(&format!("{what}: connect"), STEP + 5, connect)
        .await
        .unwrap_or_else(|e| panic!("{what}: connect failed: {e}\nbroker log:\n{}", broker.log()))
}

/// A client on the broker's plain TCP listener.
async fn tcp_client(broker: &Broker, version: ProtocolVersion) -> (Client, Messages) {
    let client = builder("tcp", version).build();
    let messages = client.messages();
    connected(broker, "TCP client", client.connect(HOST, broker.port, 30)).await;
    (client, messages)
}

async fn subscribe(client: &Client, filter: &str) {
    let granted = within(
        &format!("SUBACK for {filter}"),
        STEP,
        client.subscribe(filter, QoS::ExactlyOnce),
    )
    .await
    .unwrap_or_else(|e| panic!("subscribe {filter}: {e}"));
    assert_eq!(granted, QoS::ExactlyOnce, "granted QoS for {filter}");
}

async fn publish_acked(client: &Client, topic: &str, payload: Bytes, qos: QoS) {
    let handle = within(
        &format!("queue publish to {topic}"),
        STEP,
        client.publish(topic, payload, qos, false),
    )
    .await
    .unwrap_or_else(|e| panic!("publish to {topic}: {e}"));
    within(&format!("acknowledgement from {topic}"), STEP, handle)
        .await
        .unwrap_or_else(|e| panic!("publish to {topic} failed: {e}"));
}

/// Payloads that show a transport altering bytes: every byte value,
/// nothing, invalid UTF-8.
fn payloads() -> Vec<(&'static str, Bytes)> {
    vec![
        ("every byte", (0..=255u8).collect::<Vec<u8>>().into()),
        ("empty", Bytes::new()),
        (
            "non-utf8",
            Bytes::from_static(&[0xff, 0xfe, 0x00, 0xc3, 0x28]),
        ),
    ]
}

/// 256 KiB: five WebSocket frames from plover (64 KiB each at most); one
/// frame from mosquitto, which takes it about six seconds to send (see
/// the report at the top), so only some scenarios carry it.
fn large_payload() -> (&'static str, Bytes) {
    let bytes: Vec<u8> = (0..256 * 1024u32)
        .map(|i| (i.wrapping_mul(31) >> 3) as u8)
        .collect();
    ("256 KiB", bytes.into())
}

/// Whether [`exchange`] also sends [`large_payload`] (at QoS 1) each way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Large {
    Yes,
    No,
}

/// `ws` (on a WebSocket) and a TCP client publish to each other at every
/// QoS; each message must arrive whole, exact and at its QoS.
async fn exchange(
    broker: &Broker,
    ws: &Client,
    ws_messages: &mut Messages,
    version: ProtocolVersion,
    large: Large,
) {
    let (tcp, mut tcp_messages) = tcp_client(broker, version).await;
    let tag = client_id("t");
    let to_ws = format!("plover/ws/{tag}/down");
    let to_tcp = format!("plover/ws/{tag}/up");
    subscribe(ws, &to_ws).await;
    subscribe(&tcp, &to_tcp).await;
    let mut cases: Vec<(QoS, (&str, Bytes))> = QOS_ALL
        .into_iter()
        .flat_map(|qos| payloads().into_iter().map(move |p| (qos, p)))
        .collect();
    if large == Large::Yes {
        cases.push((QoS::AtLeastOnce, large_payload()));
    }
    for (qos, (name, payload)) in cases {
        // mosquitto needs about six seconds for the large one (see the top).
        let secs = if payload.len() > 64 * 1024 {
            4 * STEP
        } else {
            STEP
        };
        for (from, topic, messages, direction) in [
            (&tcp, &to_ws, &mut *ws_messages, "TCP -> WebSocket"),
            (ws, &to_tcp, &mut tcp_messages, "WebSocket -> TCP"),
        ] {
            let what = format!("{direction}, {qos:?}, {name}");
            publish_acked(from, topic, payload.clone(), qos).await;
            let message = within(&what, secs, messages.recv())
                .await
                .unwrap_or_else(|| panic!("message stream ended while waiting for {what}"));
            assert_eq!(message.topic.as_str(), topic, "{what}");
            assert_eq!(message.qos, qos, "{what}");
            assert!(message.payload == payload, "{what}: payload differs");
        }
    }
    within("TCP client disconnect", STEP, tcp.disconnect())
        .await
        .expect("TCP client disconnects");
}

// ---------------------------------------------------------------------------
// ws:// and wss:// against mosquitto.

/// `ClientBuilder::websockets` + `connect(host, port)`.
async fn ws_via_builder(version: ProtocolVersion) {
    let (broker, ws_port) = plain_ws_broker();
    let id = client_id("ws-builder");
    let ws = Client::builder(id.as_str())
        .protocol(version)
        .automatic_reconnect(false)
        .websockets()
        .build();
    let mut messages = ws.messages();
    connected(&broker, "ws:// via builder", ws.connect(HOST, ws_port, 30)).await;
    exchange(&broker, &ws, &mut messages, version, Large::Yes).await;
    within("disconnect", STEP, ws.disconnect())
        .await
        .expect("disconnects");
    // A clean DISCONNECT over WebSocket: mosquitto saw the packet, not a
    // dropped connection.
    broker
        .wait_for_log(&format!("Client {id} disconnected."), STEP)
        .await;
}

/// `connect_url("ws://127.0.0.1:PORT/mqtt")`.
async fn ws_via_url(version: ProtocolVersion) {
    let (broker, ws_port) = plain_ws_broker();
    let ws = builder("ws-url", version).build();
    let mut messages = ws.messages();
    let url = format!("ws://{HOST}:{ws_port}/mqtt");
    connected(&broker, &url, ws.connect_url(&url, 30)).await;
    exchange(&broker, &ws, &mut messages, version, Large::No).await;
    within("disconnect", STEP, ws.disconnect())
        .await
        .expect("disconnects");
}

/// Extra headers and the path from `ws_set_options` are on the wire (seen
/// by a recording loopback proxy in front of mosquitto), and mosquitto
/// accepts such a request.
async fn ws_custom_headers_reach_the_broker(version: ProtocolVersion) {
    let (broker, ws_port) = plain_ws_broker();
    let (proxy_port, request) = recording_proxy(ws_port).await;
    let ws = builder("ws-headers", version).build();
    ws.ws_set_options(
        "/custom/path",
        &[
            ("Authorization", "Bearer not-a-secret"),
            ("X-Plover-Test", "plover 1"),
        ],
    );
    let mut messages = ws.messages();
    connected(
        &broker,
        "ws:// with headers",
        ws.connect(HOST, proxy_port, 30),
    )
    .await;
    let request = within("the recorded request", STEP, request)
        .await
        .expect("the proxy saw the request");
    let lines: Vec<String> = request.lines().map(str::to_ascii_lowercase).collect();
    assert_eq!(lines[0], "get /custom/path http/1.1", "{request}");
    for expected in [
        format!("host: {HOST}:{proxy_port}"),
        "sec-websocket-protocol: mqtt".to_owned(),
        "authorization: bearer not-a-secret".to_owned(),
        "x-plover-test: plover 1".to_owned(),
    ] {
        assert!(
            lines.contains(&expected),
            "{expected:?} missing from the request:\n{request}"
        );
    }
    exchange(&broker, &ws, &mut messages, version, Large::No).await;
    within("disconnect", STEP, ws.disconnect())
        .await
        .expect("disconnects");
}

/// `wss://` through `connect_url`, trusting the test CA via `tls_set`.
async fn wss_via_url(version: ProtocolVersion) {
    let (broker, wss_port) = tls_ws_broker();
    let ws = builder("wss-url", version).build();
    ws.tls_set(trust_test_ca());
    let mut messages = ws.messages();
    let url = format!("wss://{HOST}:{wss_port}/mqtt");
    connected(&broker, &url, ws.connect_url(&url, 30)).await;
    exchange(&broker, &ws, &mut messages, version, Large::Yes).await;
    within("disconnect", STEP, ws.disconnect())
        .await
        .expect("disconnects");
}

/// `websockets()` + `tls_set` + `connect(host, port)` is `wss://` too.
async fn wss_via_builder(version: ProtocolVersion) {
    let (broker, wss_port) = tls_ws_broker();
    let ws = builder("wss-builder", version).websockets().build();
    ws.tls_set(trust_test_ca());
    let mut messages = ws.messages();
    connected(
        &broker,
        "wss:// via builder",
        ws.connect(HOST, wss_port, 30),
    )
    .await;
    exchange(&broker, &ws, &mut messages, version, Large::No).await;
    within("disconnect", STEP, ws.disconnect())
        .await
        .expect("disconnects");
}

/// `wss://` checks the certificate as `mqtts://` does, with the same error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_with_an_untrusted_certificate_is_refused() {
    let (_broker, wss_port) = tls_ws_broker();
    let ws = builder("wss-untrusted", ProtocolVersion::V311).build();
    let e = refused(&ws, &format!("wss://{HOST}:{wss_port}/mqtt")).await;
    assert!(
        matches!(
            e,
            ClientError::Transport(TransportError::UntrustedCertificate(_))
        ),
        "{e:?}"
    );
}

// ---------------------------------------------------------------------------
// Failed upgrades.

/// Connects and expects a failure, which it returns.
async fn refused(client: &Client, url: &str) -> ClientError {
    match within(
        &format!("a connect to {url} that must fail"),
        STEP + 5,
        client.connect_url(url, 30),
    )
    .await
    {
        Ok(connack) => panic!("connected to {url} although it must fail: {connack:?}"),
        Err(e) => e,
    }
}

fn websocket_error(e: ClientError) -> String {
    match e {
        ClientError::Transport(TransportError::WebSocket(message)) => message,
        other => panic!("expected TransportError::WebSocket, got {other:?}"),
    }
}

/// One connection to a loopback port answered by `serve`.
async fn one_shot_server<F, Fut>(serve: F) -> u16
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let listener = TcpListener::bind((HOST, 0)).await.expect("bind");
    let port = listener.local_addr().expect("local addr").port();
    tokio::spawn(async move {
        if let Ok((socket, _)) = listener.accept().await {
            serve(socket).await;
        }
    });
    port
}

/// Reads an HTTP request head (to the blank line), bounded.
async fn read_head(socket: &mut TcpStream) -> Vec<u8> {
    let mut head = Vec::new();
    let mut chunk = [0; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
    }
    head
}

#[tokio::test]
async fn an_http_404_is_a_websocket_error_naming_status_and_path() {
    let port = one_shot_server(|mut socket| async move {
        read_head(&mut socket).await;
        let body = "no MQTT here\n";
        let response = format!(
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let _ = socket.write_all(response.as_bytes()).await;
        let _ = socket.shutdown().await;
    })
    .await;
    let client = builder("ws-404", ProtocolVersion::V311).build();
    let message = websocket_error(refused(&client, &format!("ws://{HOST}:{port}/wrong")).await);
    assert!(
        message.contains("404") && message.contains("Not Found") && message.contains("/wrong"),
        "{message}"
    );
}

/// A WebSocket server that completes the upgrade but does not choose `mqtt`
/// (answering `subprotocol`, or none): [MQTT-6.0.0-4] says it must.
async fn subprotocol_server(subprotocol: Option<&'static str>) -> u16 {
    use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
    use tokio_tungstenite::tungstenite::http::HeaderValue;
    one_shot_server(move |socket| async move {
        #[allow(
            clippy::result_large_err,
            reason = "the signature is tungstenite's Callback"
        )]
        let answer = move |_: &Request, mut response: Response| {
            if let Some(p) = subprotocol {
                response
                    .headers_mut()
                    .insert("sec-websocket-protocol", HeaderValue::from_static(p));
            }
            Ok::<_, ErrorResponse>(response)
        };
        if let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(socket, answer).await {
            // Hold the connection until the client gives up on it.
            while let Some(Ok(_)) = ws.next().await {}
        }
    })
    .await
}

#[tokio::test]
async fn a_server_that_does_not_choose_mqtt_is_refused() {
    for subprotocol in [None, Some("chat")] {
        let port = subprotocol_server(subprotocol).await;
        let client = builder("ws-subprotocol", ProtocolVersion::V5).build();
        let message = websocket_error(refused(&client, &format!("ws://{HOST}:{port}/mqtt")).await);
        assert!(
            message.contains("subprotocol") && message.contains("\"mqtt\""),
            "{subprotocol:?}: {message}"
        );
    }
}

/// `ws://` to mosquitto's plain MQTT port: mosquitto reads the HTTP request
/// as a malformed packet and hangs up.
#[tokio::test]
async fn ws_to_a_plain_mqtt_port_is_a_websocket_error() {
    let broker = Broker::start();
    let client = builder("ws-to-tcp", ProtocolVersion::V311).build();
    let message =
        websocket_error(refused(&client, &format!("ws://{HOST}:{}/mqtt", broker.port)).await);
    assert!(message.contains("WebSocket listener"), "{message}");
}

/// A loopback proxy for one connection to `upstream` that hands over the
/// HTTP request head it forwarded.
async fn recording_proxy(upstream: u16) -> (u16, oneshot::Receiver<String>) {
    let (tx, rx) = oneshot::channel();
    let port = one_shot_server(move |mut client| async move {
        let Ok(mut server) = TcpStream::connect((HOST, upstream)).await else {
            return;
        };
        let head = read_head(&mut client).await;
        if server.write_all(&head).await.is_err() {
            return;
        }
        let _ = tx.send(String::from_utf8_lossy(&head).into_owned());
        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
    })
    .await;
    (port, rx)
}

// ---------------------------------------------------------------------------
// Servers that stall: each stage reports its own timeout.

/// Accepts connections on 127.0.0.1 and holds them, saying nothing, until
/// the returned task is aborted.
async fn silent_server() -> (u16, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind((HOST, 0)).await.expect("bind");
    let port = listener.local_addr().expect("local addr").port();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (port, task)
}

/// A client that gives the whole connect one second.
fn impatient(tag: &str) -> Client {
    builder(tag, ProtocolVersion::V311)
        .connect_timeout(Duration::from_secs(1))
        .build()
}

/// `wss://` to a server that never starts the TLS handshake: the TLS
/// stage's timeout, not a generic one.
#[tokio::test]
async fn wss_to_a_silent_server_is_a_tls_handshake_timeout() {
    let (port, server) = silent_server().await;
    let client = impatient("wss-silent");
    client.tls_set(trust_test_ca());
    match refused(&client, &format!("wss://{HOST}:{port}/mqtt")).await {
        ClientError::Transport(TransportError::TlsHandshakeTimeout { host }) => {
            assert_eq!(host, HOST);
        }
        other => panic!("expected TlsHandshakeTimeout, got {other:?}"),
    }
    server.abort();
}

/// `ws://` to a server that accepts the connection but never answers the
/// HTTP upgrade.
#[tokio::test]
async fn ws_to_a_silent_server_is_an_upgrade_timeout() {
    let (port, server) = silent_server().await;
    let client = impatient("ws-silent");
    let e = refused(&client, &format!("ws://{HOST}:{port}/mqtt")).await;
    match &e {
        ClientError::Transport(TransportError::WebSocketUpgradeTimeout { host }) => {
            assert_eq!(host, HOST);
        }
        other => panic!("expected WebSocketUpgradeTimeout, got {other:?}"),
    }
    assert!(e.to_string().contains("upgrade"), "{e}");
    server.abort();
}

/// `wss://` to a server that completes the TLS handshake and then never
/// answers the upgrade: the upgrade's timeout, after a TLS stage that
/// succeeded.
#[tokio::test]
async fn wss_with_a_stalled_upgrade_is_an_upgrade_timeout() {
    use plover::transport::rustls;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let certs =
        vec![CertificateDer::from_pem_slice(pki().server_cert.as_bytes()).expect("server cert")];
    let key = PrivateKeyDer::from_pem_slice(pki().server_key.as_bytes()).expect("server key");
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let (handshake_done, handshaken) = oneshot::channel();
    let port = one_shot_server(move |socket| async move {
        if let Ok(mut tls) = acceptor.accept(socket).await {
            let _ = handshake_done.send(());
            // Read the upgrade request and sit on it until the client
            // gives up.
            let mut sink = [0; 4096];
            while let Ok(n) = tls.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        }
    })
    .await;
    let client = impatient("wss-stalled");
    client.tls_set(trust_test_ca());
    match refused(&client, &format!("wss://{HOST}:{port}/mqtt")).await {
        ClientError::Transport(TransportError::WebSocketUpgradeTimeout { host }) => {
            assert_eq!(host, HOST);
        }
        other => panic!("expected WebSocketUpgradeTimeout, got {other:?}"),
    }
    // The TLS stage really did complete.
    within("the server's side of the handshake", STEP, handshaken)
        .await
        .expect("the TLS handshake completed");
}
