//! Built without the `websocket` feature, asking for WebSocket says so
//! with its own error rather than failing in some other way. (With the
//! feature, tests/websocket.rs runs instead and this compiles to nothing.)
#![cfg(not(feature = "websocket"))]

mod common;

use std::time::Duration;

use common::{client_id, within};
use plover::transport::TransportError;
use plover::{Client, ClientError};

/// Something listening, so the TCP connection succeeds and the missing
/// feature is the only thing that can fail.
async fn listener() -> (tokio::net::TcpListener, u16) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let port = listener.local_addr().expect("local addr").port();
    (listener, port)
}

fn client() -> Client {
    Client::builder(client_id("no-ws"))
        .automatic_reconnect(false)
        .connect_timeout(Duration::from_secs(5))
        .build()
}

fn assert_not_enabled(result: Result<plover::codec::ConnAck, ClientError>) {
    match result {
        Err(ClientError::Transport(TransportError::WebSocketNotEnabled)) => {}
        other => panic!("expected WebSocketNotEnabled, got {other:?}"),
    }
}

#[tokio::test]
async fn ws_url_without_the_feature_is_websocket_not_enabled() {
    let (_listener, port) = listener().await;
    for url in [
        format!("ws://127.0.0.1:{port}/mqtt"),
        format!("wss://127.0.0.1:{port}/mqtt"),
    ] {
        assert_not_enabled(within(&url, 10, client().connect_url(&url, 30)).await);
    }
}

#[tokio::test]
async fn websockets_builder_without_the_feature_is_websocket_not_enabled() {
    let (_listener, port) = listener().await;
    let ws = Client::builder(client_id("no-ws"))
        .automatic_reconnect(false)
        .connect_timeout(Duration::from_secs(5))
        .websockets()
        .build();
    assert_not_enabled(within("connect", 10, ws.connect("127.0.0.1", port, 30)).await);
}
