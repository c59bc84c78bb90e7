//! The client at the edges an audit found, end to end: a reader stalled
//! across a reconnect, a disconnect whose connection drops while it
//! drains, the offline queue's error policy beyond a thousand messages, an
//! application that never asks for `messages()`, what DISCONNECT and
//! PUBLISH cannot carry, a failing PUBCOMP, a broker sending us elsewhere,
//! our advertised maximum packet size, and the reconnect backoff under a
//! broker that drops us at once.
//!
//! mosquitto where it can show the behaviour; the scripted broker
//! (`tests/scripted`) for what it will not send on demand. Every wait is
//! bounded and only 127.0.0.1 is used.

mod common;
mod scripted;

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Broker, client_id, within};
use plover::codec::{
    ConnAck, ConnAckProperties, ConnectProperties, ConnectReasonCode, Disconnect,
    DisconnectProperties, DisconnectReasonCode, Packet, PubComp, PubRec, PubRelReasonCode, Publish,
    PublishProperties, SubscriptionIdentifiers,
};
use plover::{Client, ClientError, CloseReason, ConnectionEvent, ProtocolVersion, QoS, QueueFull};
use scripted::Listener;

const HOST: &str = "127.0.0.1";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A test string as whichever MQTT string type the caller wants
/// (`MqttString`, `TopicName` or `TopicFilter`).
fn s<T: for<'a> TryFrom<&'a str, Error: std::fmt::Debug>>(v: &str) -> T {
    T::try_from(v).expect("a valid test string")
}

type Log = Arc<Mutex<Vec<ConnectionEvent>>>;

/// Collects a client's connection events as they come.
fn record(client: &Client) -> Log {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut events = client.connection_events();
    let sink = log.clone();
    tokio::spawn(async move {
        while let Some(e) = events.recv().await {
            sink.lock().unwrap_or_else(|e| e.into_inner()).push(e);
        }
    });
    log
}

fn events(log: &Log) -> Vec<ConnectionEvent> {
    log.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

fn connected_count(log: &Log) -> usize {
    events(log)
        .iter()
        .filter(|e| matches!(e, ConnectionEvent::Connected(_)))
        .count()
}

/// Waits (at most `secs`) until `f` holds for the events seen so far.
async fn wait_events(log: &Log, what: &str, secs: u64, f: impl Fn(&[ConnectionEvent]) -> bool) {
    within(what, secs, async {
        loop {
            if f(&events(log)) {
                return;
            }
            tokio::time::sleep(ms(10)).await;
        }
    })
    .await;
}

/// A reader that stopped taking messages is still a client that must come
/// back when its connection drops: the new connection's CONNACK is read
/// even while the held message waits, and reading pauses again after it.
#[tokio::test]
async fn a_stalled_reader_still_reads_the_connack_of_its_reconnect() {
    let listener = Listener::bind().await;
    let port = listener.port;
    let client = Client::builder(client_id("stalled"))
        .message_capacity(1)
        .reconnect_delay(ms(20), ms(100))
        .build();
    let mut messages = client.messages();
    let log = record(&client);

    let script = tokio::spawn(async move {
        let mut first = listener.accept().await;
        first.handshake(ConnAckProperties::default()).await;
        for n in 0..5u8 {
            let p = Publish::new(s("stalled/t"), vec![n]);
            first.send(Packet::Publish(p)).await;
        }
        // Gone, with the client holding a message it cannot deliver. It
        // finds out when its keepalive PINGREQs fail to go out.
        drop(first);
        let mut second = listener.accept().await;
        second.handshake(ConnAckProperties::default()).await;
        // The client stays, pinging, until the test disconnects it.
        second.expect_closed().await;
    });

    within("connect", 10, client.connect(HOST, port, 1))
        .await
        .expect("connected");
    // Nothing is read by the application until the client is back.
    wait_events(&log, "the second Connected", 15, |e| {
        e.iter()
            .filter(|e| matches!(e, ConnectionEvent::Connected(_)))
            .count()
            == 2
    })
    .await;
    assert!(client.is_connected());

    // Then the application catches up with what it was given before.
    let first = within("a message", 5, messages.recv())
        .await
        .expect("stream open");
    assert_eq!(first.payload, vec![0u8]);
    within("disconnect", 10, client.disconnect())
        .await
        .expect("disconnect");
    within("the script", 10, script)
        .await
        .expect("the script ran to its end");
}

/// `disconnect` waits for what is in flight; if the connection drops
/// meanwhile it is done, not left waiting for a reconnect that is not
/// coming (nor made).
#[tokio::test]
async fn a_disconnect_whose_connection_drops_while_draining_returns() {
    let listener = Listener::bind().await;
    let port = listener.port;
    let client = Client::builder(client_id("draining"))
        .reconnect_delay(ms(20), ms(100))
        .build();
    let script = tokio::spawn(async move {
        let mut peer = listener.accept().await;
        peer.handshake(ConnAckProperties::default()).await;
        let publish = peer.expect_publish().await;
        assert_eq!(publish.qos, QoS::AtLeastOnce);
        // No PUBACK: the client's disconnect waits for it. Then the link
        // goes.
        tokio::time::sleep(ms(300)).await;
        drop(peer);
        // No reconnect: the client was leaving.
        assert!(
            listener.try_accept(Duration::from_secs(1)).await.is_none(),
            "the client connected again after its disconnect"
        );
    });
    within("connect", 10, client.connect(HOST, port, 30))
        .await
        .expect("connected");
    let handle = within(
        "publish",
        5,
        client.publish("draining/t", "unacked", QoS::AtLeastOnce, false),
    )
    .await
    .expect("queued");
    within(
        "disconnect",
        10,
        client.disconnect_with(Disconnect::default(), Duration::from_secs(60)),
    )
    .await
    .expect("disconnect returns once the connection is gone");
    match within("the handle", 5, handle).await {
        Err(ClientError::ConnectionClosed(CloseReason::Normal)) => {}
        other => panic!("expected ConnectionClosed(Normal), got {other:?}"),
    }
    assert!(!client.is_connected());
    within("the script", 10, script)
        .await
        .expect("the script ran to its end");
}

/// `QueueFull::Error` fails at the configured bound, however large, and
/// never makes `publish` wait instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_error_policy_holds_at_a_queue_bound_above_a_thousand() {
    let mut broker = Broker::start();
    const BOUND: usize = 3_000;
    let client = Client::builder(client_id("queue-error"))
        .max_queued_messages(BOUND)
        .queue_full(QueueFull::Error)
        .reconnect_delay(Duration::from_secs(5), Duration::from_secs(10))
        .build();
    let log = record(&client);
    within("connect", 10, client.connect(HOST, broker.port, 30))
        .await
        .expect("connected");
    broker.kill();
    wait_events(&log, "the disconnect", 10, |e| {
        e.iter()
            .any(|e| matches!(e, ConnectionEvent::Disconnected(_)))
    })
    .await;

    let mut handles = Vec::with_capacity(BOUND);
    within("filling the queue without waiting", 30, async {
        for n in 0..BOUND {
            let handle = client
                .publish("queue/t", n.to_string(), QoS::AtLeastOnce, false)
                .await
                .unwrap_or_else(|e| panic!("publish {n} of {BOUND}: {e}"));
            handles.push(handle);
        }
    })
    .await;
    match within(
        "one more",
        5,
        client.publish("queue/t", "over", QoS::AtLeastOnce, false),
    )
    .await
    {
        Err(ClientError::QueueFull(n)) => assert_eq!(n, BOUND),
        other => panic!("expected QueueFull, got {other:?}"),
    }
    assert_eq!(handles.len(), BOUND);
}

/// An application that only uses callbacks never calls `messages()`:
/// messages no callback takes must not fill a buffer nobody drains and
/// stop the client.
#[tokio::test]
async fn a_callback_only_application_is_not_stalled_by_unclaimed_messages() {
    let broker = Broker::start();
    let client = Client::builder(client_id("callbacks"))
        .message_capacity(4)
        .build();
    let (tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    client
        .message_callback_add("edges/cb/#", move |m| {
            let _ = tx.send(m.payload.clone());
        })
        .expect("callback");
    within("connect", 10, client.connect(HOST, broker.port, 30))
        .await
        .expect("connected");
    within(
        "subscribe",
        10,
        client.subscribe("edges/#", QoS::AtLeastOnce),
    )
    .await
    .expect("subscribed");

    let publisher = Client::new(client_id("callbacks-pub"));
    within("connect", 10, publisher.connect(HOST, broker.port, 30))
        .await
        .expect("connected");
    for n in 0..40 {
        let topic = if n < 30 { "edges/other" } else { "edges/cb/x" };
        within(
            "publish",
            10,
            publisher.publish(topic, n.to_string(), QoS::AtLeastOnce, false),
        )
        .await
        .expect("queued")
        .await
        .expect("acknowledged");
    }
    for n in 30..40 {
        let payload = within("a callback", 10, seen.recv())
            .await
            .expect("callback channel open");
        assert_eq!(payload, n.to_string());
    }
    assert!(client.is_connected());
}

/// What a DISCONNECT cannot say fails at once instead of going out as
/// something else; the connection carries on.
#[tokio::test]
async fn disconnect_with_refuses_what_the_protocol_cannot_carry() {
    let broker = Broker::start();

    let v311 = Client::new(client_id("disc-311"));
    within("connect", 10, v311.connect(HOST, broker.port, 30))
        .await
        .expect("connected");
    let with_will = Disconnect::new(DisconnectReasonCode::DisconnectWithWillMessage);
    match v311.disconnect_with(with_will, ms(500)).await {
        Err(ClientError::InvalidArgument(_)) => {}
        other => panic!("3.1.1: expected InvalidArgument, got {other:?}"),
    }
    assert!(v311.is_connected(), "3.1.1: nothing was sent");

    let v5 = Client::builder(client_id("disc-5"))
        .protocol(ProtocolVersion::V5)
        .build();
    within("connect", 10, v5.connect(HOST, broker.port, 30))
        .await
        .expect("connected");
    let lengthen = Disconnect {
        properties: DisconnectProperties {
            session_expiry_interval: Some(60),
            ..DisconnectProperties::default()
        },
        ..Disconnect::default()
    };
    match v5.disconnect_with(lengthen.clone(), ms(500)).await {
        Err(ClientError::InvalidArgument(_)) => {}
        other => panic!("5.0: expected InvalidArgument, got {other:?}"),
    }
    assert!(v5.is_connected(), "5.0: nothing was sent");

    // With a session expiry on CONNECT, changing it is allowed.
    let persistent = Client::builder(client_id("disc-5-exp"))
        .protocol(ProtocolVersion::V5)
        .session_expiry(30)
        .build();
    within("connect", 10, persistent.connect(HOST, broker.port, 30))
        .await
        .expect("connected");
    within(
        "disconnect",
        10,
        persistent.disconnect_with(lengthen, ms(500)),
    )
    .await
    .expect("allowed");
    within("disconnect", 10, v311.disconnect())
        .await
        .expect("ok");
    within("disconnect", 10, v5.disconnect()).await.expect("ok");
}

/// Only a broker puts Subscription Identifiers in a PUBLISH.
#[tokio::test]
async fn a_publish_with_a_subscription_identifier_is_refused() {
    let broker = Broker::start();
    let client = Client::builder(client_id("pub-subid"))
        .protocol(ProtocolVersion::V5)
        .build();
    within("connect", 10, client.connect(HOST, broker.port, 30))
        .await
        .expect("connected");
    let mut ids = SubscriptionIdentifiers::new();
    ids.push(NonZeroU32::MIN);
    let properties = PublishProperties {
        subscription_identifiers: ids,
        ..PublishProperties::default()
    };
    match client
        .publish_with_properties("subid/t", "x", QoS::AtLeastOnce, false, properties)
        .await
    {
        Err(ClientError::InvalidArgument(_)) => {}
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

/// A QoS 2 exchange the broker ends with a failing PUBCOMP is not a
/// success.
#[tokio::test]
async fn a_failing_pubcomp_fails_the_publish() {
    let listener = Listener::bind().await;
    let port = listener.port;
    let script = tokio::spawn(async move {
        let mut peer = listener.accept().await;
        peer.handshake(ConnAckProperties::default()).await;
        let publish = peer.expect_publish().await;
        let id = publish.packet_id.expect("QoS 2 has an id");
        peer.send(Packet::PubRec(PubRec::new(id))).await;
        let rel = peer.expect_pubrel().await;
        let mut comp = PubComp::new(rel.packet_id);
        comp.reason_code = PubRelReasonCode::PacketIdentifierNotFound;
        comp.properties.reason_string = Some(s("lost it"));
        peer.send(Packet::PubComp(comp)).await;
        peer.expect_disconnect().await;
    });
    let client = Client::builder(client_id("pubcomp"))
        .protocol(ProtocolVersion::V5)
        .build();
    within("connect", 10, client.connect(HOST, port, 30))
        .await
        .expect("connected");
    let handle = within(
        "publish",
        5,
        client.publish("pubcomp/t", "x", QoS::ExactlyOnce, false),
    )
    .await
    .expect("queued");
    match within("the handle", 10, handle).await {
        Err(ClientError::PublishNotCompleted {
            reason,
            reason_string,
        }) => {
            assert_eq!(reason, PubRelReasonCode::PacketIdentifierNotFound);
            assert_eq!(reason_string.as_deref(), Some("lost it"));
        }
        other => panic!("expected PublishNotCompleted, got {other:?}"),
    }
    within("disconnect", 10, client.disconnect())
        .await
        .expect("disconnect");
    within("the script", 10, script).await.expect("script");
}

/// "Use another server": the refusal names it, and asking the same broker
/// again would not help, so the client does not, even when told to retry
/// its first connect.
#[tokio::test]
async fn a_broker_sending_us_elsewhere_is_final_and_names_the_server() {
    let listener = Listener::bind().await;
    let port = listener.port;
    let script = tokio::spawn(async move {
        let mut peer = listener.accept().await;
        peer.expect_connect().await;
        let mut ack = ConnAck::new(false, ConnectReasonCode::UseAnotherServer);
        ack.properties.server_reference = Some(s("mqtt2.example:1883"));
        peer.send(Packet::ConnAck(Box::new(ack))).await;
        assert!(
            listener.try_accept(Duration::from_secs(1)).await.is_none(),
            "the client asked the same broker again"
        );
    });
    let client = Client::builder(client_id("elsewhere"))
        .protocol(ProtocolVersion::V5)
        .retry_first_connect(true)
        .reconnect_delay(ms(20), ms(100))
        .build();
    match within("connect", 10, client.connect(HOST, port, 30)).await {
        Err(ClientError::ConnectionRefused {
            reason,
            server_reference,
            ..
        }) => {
            assert_eq!(reason, ConnectReasonCode::UseAnotherServer);
            assert_eq!(server_reference.as_deref(), Some("mqtt2.example:1883"));
        }
        other => panic!("expected ConnectionRefused, got {other:?}"),
    }
    within("the script", 10, script).await.expect("script");
}

/// "Server moved" on a live connection ends it for good too, with the
/// reference in the reason.
#[tokio::test]
async fn a_disconnect_naming_another_server_stops_the_client() {
    let listener = Listener::bind().await;
    let port = listener.port;
    let script = tokio::spawn(async move {
        let mut peer = listener.accept().await;
        peer.handshake(ConnAckProperties::default()).await;
        let mut bye = Disconnect::new(DisconnectReasonCode::ServerMoved);
        bye.properties.server_reference = Some(s("mqtt3.example"));
        peer.send(Packet::Disconnect(bye)).await;
        assert!(
            listener.try_accept(Duration::from_secs(1)).await.is_none(),
            "the client came back to a broker that said it moved"
        );
    });
    let client = Client::builder(client_id("moved"))
        .protocol(ProtocolVersion::V5)
        .reconnect_delay(ms(20), ms(100))
        .build();
    let log = record(&client);
    within("connect", 10, client.connect(HOST, port, 30))
        .await
        .expect("connected");
    wait_events(&log, "the disconnect", 10, |e| {
        e.iter()
            .any(|e| matches!(e, ConnectionEvent::Disconnected(_)))
    })
    .await;
    within("the script", 10, script).await.expect("script");
    let seen = events(&log);
    assert!(
        seen.iter().any(|e| matches!(
            e,
            ConnectionEvent::Disconnected(CloseReason::ServerDisconnect {
                reason: DisconnectReasonCode::ServerMoved,
                server_reference: Some(r),
                ..
            }) if r == "mqtt3.example"
        )),
        "{seen:?}"
    );
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, ConnectionEvent::Reconnecting { .. })),
        "{seen:?}"
    );
}

/// The Maximum Packet Size we advertise is the one we hold the broker to.
#[tokio::test]
async fn the_advertised_maximum_packet_size_is_enforced() {
    let listener = Listener::bind().await;
    let port = listener.port;
    let script = tokio::spawn(async move {
        let mut peer = listener.accept().await;
        let connect = peer.handshake(ConnAckProperties::default()).await;
        assert_eq!(connect.properties.maximum_packet_size, Some(100));
        let big = Publish::new(s("big/t"), vec![0u8; 200]);
        peer.send(Packet::Publish(big)).await;
        let before = peer.expect_closed().await;
        assert!(
            matches!(&before[..], [Packet::Disconnect(d)]
                if d.reason_code == DisconnectReasonCode::PacketTooLarge),
            "expected DISCONNECT 0x95, got {before:?}"
        );
    });
    let client = Client::builder(client_id("maxpacket"))
        .protocol(ProtocolVersion::V5)
        .automatic_reconnect(false)
        .connect_properties(ConnectProperties {
            maximum_packet_size: Some(100),
            ..ConnectProperties::default()
        })
        .build();
    let mut messages = client.messages();
    within("connect", 10, client.connect(HOST, port, 30))
        .await
        .expect("connected");
    within("the script", 10, script).await.expect("script");
    assert!(
        messages.try_recv().is_none(),
        "the oversized message was not delivered"
    );
}

/// A broker that accepts and drops us at once (another client with our id
/// taking the session over, say) sees the backoff grow, not start over.
#[tokio::test]
async fn quick_drops_do_not_reset_the_backoff() {
    let listener = Listener::bind().await;
    let port = listener.port;
    let client = Client::builder(client_id("flap"))
        .reconnect_delay(ms(10), Duration::from_secs(2))
        .build();
    let log = record(&client);
    let script = tokio::spawn(async move {
        for _ in 0..5 {
            let mut peer = listener.accept().await;
            peer.handshake(ConnAckProperties::default()).await;
            drop(peer);
        }
    });
    within("connect", 10, client.connect(HOST, port, 30))
        .await
        .expect("connected");
    within("the script", 20, script).await.expect("script");
    wait_events(&log, "four reconnects", 10, |e| {
        e.iter()
            .filter(|e| matches!(e, ConnectionEvent::Reconnecting { .. }))
            .count()
            >= 4
    })
    .await;
    let attempts: Vec<u32> = events(&log)
        .iter()
        .filter_map(|e| match e {
            ConnectionEvent::Reconnecting { attempt, .. } => Some(*attempt),
            _ => None,
        })
        .take(4)
        .collect();
    assert_eq!(attempts, vec![1, 2, 3, 4], "{:?}", events(&log));
    assert!(connected_count(&log) >= 4);
    let _ = within("disconnect", 10, client.disconnect()).await;
}
