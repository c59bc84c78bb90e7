//! A slow consumer against a real mosquitto: when the application does not
//! take messages, the client stops reading, keeps the connection alive, and
//! loses nothing once the application catches up.

mod common;

use std::time::Duration;

use common::{Broker, client_id, within};
use plover::{Client, ConnectionEvent, ProtocolVersion, QoS};

async fn slow_consumer(version: ProtocolVersion) {
    // mosquitto would drop QoS 1 messages beyond its default queue of 1,000
    // for a client that stops reading; give it room for this test's burst.
    let broker = Broker::start_with("allow_anonymous true\nmax_queued_messages 10000\n");
    const N: u32 = 3_000;

    // A tiny message buffer, so the client has to stop reading early.
    let sub = Client::builder(client_id("slow"))
        .protocol(version)
        .message_capacity(8)
        .build();
    let mut messages = sub.messages();
    let mut events = sub.connection_events();
    within("connect", 10, sub.connect("127.0.0.1", broker.port, 1))
        .await
        .unwrap();
    within("subscribe", 10, sub.subscribe("slow/#", QoS::AtLeastOnce))
        .await
        .unwrap();

    let publisher = Client::builder(client_id("fast")).protocol(version).build();
    within(
        "connect",
        10,
        publisher.connect("127.0.0.1", broker.port, 30),
    )
    .await
    .unwrap();
    let mut handles = Vec::with_capacity(N as usize);
    for i in 0..N {
        let h = publisher
            .publish(
                "slow/data",
                i.to_be_bytes().to_vec(),
                QoS::AtLeastOnce,
                false,
            )
            .await
            .unwrap();
        handles.push(h);
    }
    for h in handles {
        within("puback", 30, h).await.unwrap();
    }

    // Take nothing for eight keepalive periods. With reads stopped, a
    // client that held the unread PINGRESP against the broker would declare
    // the connection dead; mosquitto drops a client it has not heard from
    // for 1.5 keepalives (checked only every few seconds, hence eight), so
    // our PINGREQs must go on meanwhile. The client cannot see such a drop
    // while it is not reading: the broker's log is the witness.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert!(sub.is_connected(), "the slow consumer lost its connection");
    let log = broker.log();
    assert!(
        !log.contains("exceeded timeout"),
        "mosquitto dropped the slow consumer for silence:\n{log}"
    );

    // Now catch up: every message, in order, exactly once.
    for expected in 0..N {
        let msg = within("message", 30, messages.recv())
            .await
            .expect("stream open");
        let got = u32::from_be_bytes(msg.payload[..].try_into().expect("4-byte payload"));
        assert_eq!(got, expected, "messages out of order or lost");
    }
    assert!(sub.is_connected());

    // The only connection event so far is the connect itself.
    match within("event", 5, events.recv()).await {
        Some(ConnectionEvent::Connected(_)) => {}
        other => panic!("expected Connected, got {other:?}"),
    }
    within("disconnect", 10, sub.disconnect()).await.unwrap();
    match within("event", 5, events.recv()).await {
        Some(ConnectionEvent::Disconnected(plover::CloseReason::Normal)) => {}
        other => panic!("expected a normal Disconnected, got {other:?}"),
    }
    within("disconnect", 10, publisher.disconnect())
        .await
        .unwrap();
}

#[tokio::test]
async fn slow_consumer_v311() {
    slow_consumer(ProtocolVersion::V311).await;
}

#[tokio::test]
async fn slow_consumer_v5() {
    slow_consumer(ProtocolVersion::V5).await;
}
