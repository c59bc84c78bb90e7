//! Per-subscription routing: `Client::subscribe_stream` streams, message
//! callbacks and the catch-all `Client::messages()`, against a real
//! mosquitto in both protocol versions, and against a scripted broker for
//! what mosquitto will not do on demand (one PUBLISH carrying two
//! Subscription Identifiers, identifiers of a subscription the client has
//! dropped, a broker without Subscription Identifiers).
//!
//! "Nothing else came" is checked without sleeping: after the messages
//! under test, each stream gets a last message (`.../end`) published after
//! them, and the next message a stream yields must be that one. mosquitto
//! delivers one publisher's messages to a subscriber in order.

mod common;
mod scripted;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::{Stream, StreamExt};
use plover::codec::{
    ConnAckProperties, Packet, PublishProperties, SubscribeProperties, SubscriptionIdentifiers,
    SubscriptionOptions,
};
use plover::{Client, ClientError, Message, ProtocolVersion, QoS};
use scripted::Scripted;

use common::{Broker, client_id, within};

const V3: ProtocolVersion = ProtocolVersion::V311;
const V5: ProtocolVersion = ProtocolVersion::V5;

async fn connected(version: ProtocolVersion, port: u16, tag: &str) -> Client {
    let client = Client::builder(client_id(tag)).protocol(version).build();
    within("connect", 10, client.connect("127.0.0.1", port, 30))
        .await
        .unwrap();
    client
}

async fn publish(client: &Client, topic: &str, payload: &str) {
    let handle = within(
        "publish",
        10,
        client.publish(topic, payload.to_owned(), QoS::AtLeastOnce, false),
    )
    .await
    .unwrap();
    within("puback", 10, handle).await.unwrap();
}

async fn next<S: Stream<Item = Message> + Unpin>(stream: &mut S, what: &str) -> Message {
    within(what, 10, stream.next())
        .await
        .unwrap_or_else(|| panic!("{what}: the stream ended"))
}

/// The topics of the next messages, up to and including `end`.
async fn topics_until<S: Stream<Item = Message> + Unpin>(
    stream: &mut S,
    end: &str,
    what: &str,
) -> Vec<String> {
    let mut topics = Vec::new();
    loop {
        let msg = next(stream, what).await;
        topics.push(msg.topic.to_string());
        if msg.topic == end {
            return topics;
        }
        assert!(topics.len() < 1000, "{what}: {end} never came");
    }
}

async fn subscribe_stream(client: &Client, filter: &str) -> plover::Subscription {
    let (granted, sub) = within(
        "subscribe",
        10,
        client.subscribe_stream(filter, QoS::AtLeastOnce),
    )
    .await
    .unwrap();
    assert_eq!(granted, QoS::AtLeastOnce);
    sub
}

async fn subscribe(client: &Client, filter: &str) {
    within("subscribe", 10, client.subscribe(filter, QoS::AtLeastOnce))
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------
// Against mosquitto.

async fn disjoint_streams(version: ProtocolVersion) {
    let broker = Broker::start();
    let client = connected(version, broker.port, "disjoint").await;
    let mut messages = client.messages();
    let mut a = subscribe_stream(&client, "rt/a/#").await;
    let mut b = subscribe_stream(&client, "rt/b/#").await;
    subscribe(&client, "rt/c/#").await;
    match version {
        V5 => assert!(a.identifier().is_some() && a.identifier() != b.identifier()),
        V3 => assert_eq!((a.identifier(), b.identifier()), (None, None)),
    }
    assert_eq!(a.filters(), ["rt/a/#"]);

    let publisher = connected(version, broker.port, "pub").await;
    for topic in ["rt/a/1", "rt/b/1", "rt/c/1", "rt/a/2", "rt/b/2", "rt/c/2"] {
        publish(&publisher, topic, "x").await;
    }
    for end in ["rt/a/end", "rt/b/end", "rt/c/end"] {
        publish(&publisher, end, "").await;
    }
    assert_eq!(
        topics_until(&mut a, "rt/a/end", "stream a").await,
        ["rt/a/1", "rt/a/2", "rt/a/end"]
    );
    assert_eq!(
        topics_until(&mut b, "rt/b/end", "stream b").await,
        ["rt/b/1", "rt/b/2", "rt/b/end"]
    );
    assert_eq!(
        topics_until(&mut messages, "rt/c/end", "messages()").await,
        ["rt/c/1", "rt/c/2", "rt/c/end"]
    );
}

#[tokio::test]
async fn disjoint_streams_get_only_their_own_messages_v311() {
    disjoint_streams(V3).await;
}

#[tokio::test]
async fn disjoint_streams_get_only_their_own_messages_v5() {
    disjoint_streams(V5).await;
}

async fn overlapping_streams(version: ProtocolVersion) {
    let broker = Broker::start();
    let client = connected(version, broker.port, "overlap").await;
    let mut messages = client.messages();
    let mut plus = subscribe_stream(&client, "ov/+").await;
    let mut hash = subscribe_stream(&client, "ov/#").await;
    subscribe(&client, "ovm/#").await;

    let publisher = connected(version, broker.port, "pub").await;
    publish(&publisher, "ov/x", "both").await;
    publish(&publisher, "ov/y/z", "hash only").await;
    publish(&publisher, "ov/end", "").await;
    publish(&publisher, "ovm/end", "").await;
    // 3.1.1: mosquitto sends one copy, which goes to both streams. 5.0: it
    // sends one copy per subscription, each with its identifier.
    assert_eq!(
        topics_until(&mut plus, "ov/end", "ov/+").await,
        ["ov/x", "ov/end"]
    );
    assert_eq!(
        topics_until(&mut hash, "ov/end", "ov/#").await,
        ["ov/x", "ov/y/z", "ov/end"]
    );
    // None of them also went to messages().
    assert_eq!(
        topics_until(&mut messages, "ovm/end", "messages()").await,
        ["ovm/end"]
    );
}

#[tokio::test]
async fn overlapping_streams_each_get_the_message_once_v311() {
    overlapping_streams(V3).await;
}

#[tokio::test]
async fn overlapping_streams_each_get_the_message_once_v5() {
    overlapping_streams(V5).await;
}

/// A plain `subscribe` overlapping a stream: with 3.1.1 the one copy goes
/// to the stream; with 5.0 the broker's second copy, which carries no
/// identifier, came through the plain subscription and goes to messages().
async fn plain_and_stream_overlap(version: ProtocolVersion) {
    let broker = Broker::start();
    let client = connected(version, broker.port, "plain").await;
    let mut messages = client.messages();
    let mut stream = subscribe_stream(&client, "po/s/#").await;
    subscribe(&client, "po/#").await;

    let publisher = connected(version, broker.port, "pub").await;
    publish(&publisher, "po/s/1", "").await;
    publish(&publisher, "po/s/end", "").await;
    publish(&publisher, "po/end", "").await;
    assert_eq!(
        topics_until(&mut stream, "po/s/end", "stream").await,
        ["po/s/1", "po/s/end"]
    );
    let rest = topics_until(&mut messages, "po/end", "messages()").await;
    match version {
        V3 => assert_eq!(rest, ["po/end"]),
        V5 => assert_eq!(rest, ["po/s/1", "po/s/end", "po/end"]),
    }
}

#[tokio::test]
async fn plain_subscription_overlapping_a_stream_v311() {
    plain_and_stream_overlap(V3).await;
}

#[tokio::test]
async fn plain_subscription_overlapping_a_stream_v5() {
    plain_and_stream_overlap(V5).await;
}

async fn callbacks(version: ProtocolVersion) {
    let broker = Broker::start();
    let client = Client::builder(client_id("callbacks"))
        .protocol(version)
        .build();
    let (tx, mut called) = tokio::sync::mpsc::unbounded_channel();
    // Set before connecting: callbacks belong to the client, not a
    // connection.
    client
        .message_callback_add("cb/+/x", move |msg| {
            let _ = tx.send(msg.topic.to_string());
        })
        .unwrap();
    within("connect", 10, client.connect("127.0.0.1", broker.port, 30))
        .await
        .unwrap();
    let mut messages = client.messages();
    subscribe(&client, "cb/#").await;

    let publisher = connected(version, broker.port, "pub").await;
    publish(&publisher, "cb/1/x", "").await;
    publish(&publisher, "cb/2/y", "").await;
    publish(&publisher, "cb/3/x", "").await;
    publish(&publisher, "cb/mark", "").await;
    // Everything before the mark has been handled once it is out.
    assert_eq!(
        topics_until(&mut messages, "cb/mark", "messages()").await,
        ["cb/2/y", "cb/mark"]
    );
    let mut got = Vec::new();
    while let Ok(topic) = called.try_recv() {
        got.push(topic);
    }
    assert_eq!(got, ["cb/1/x", "cb/3/x"]);

    assert!(client.message_callback_remove("cb/+/x"));
    assert!(!client.message_callback_remove("cb/+/x"));
    publish(&publisher, "cb/4/x", "").await;
    publish(&publisher, "cb/end", "").await;
    assert_eq!(
        topics_until(&mut messages, "cb/end", "messages()").await,
        ["cb/4/x", "cb/end"]
    );
    assert!(called.try_recv().is_err());
}

#[tokio::test]
async fn callbacks_take_matching_messages_from_messages_v311() {
    callbacks(V3).await;
}

#[tokio::test]
async fn callbacks_take_matching_messages_from_messages_v5() {
    callbacks(V5).await;
}

#[tokio::test]
async fn callbacks_and_streams_both_get_a_message_they_share() {
    let broker = Broker::start();
    let client = connected(V3, broker.port, "both").await;
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    client
        .message_callback_add("cs/#", move |_| {
            seen.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    // A second callback for the same filter replaces the first.
    let replaced = Arc::new(AtomicUsize::new(0));
    let r = replaced.clone();
    client
        .message_callback_add("cs/+", move |_| {
            r.fetch_add(100, Ordering::SeqCst);
        })
        .unwrap();
    let seen = replaced.clone();
    client
        .message_callback_add("cs/+", move |_| {
            seen.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    let mut stream = subscribe_stream(&client, "cs/#").await;
    let publisher = connected(V3, broker.port, "pub").await;
    publish(&publisher, "cs/1", "").await;
    publish(&publisher, "cs/2/3", "").await;
    assert_eq!(next(&mut stream, "stream").await.topic, "cs/1");
    assert_eq!(next(&mut stream, "stream").await.topic, "cs/2/3");
    assert_eq!(count.load(Ordering::SeqCst), 2);
    assert_eq!(replaced.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_panicking_callback_does_not_stop_the_client() {
    let broker = Broker::start();
    let client = connected(V5, broker.port, "panic").await;
    let mut messages = client.messages();
    client
        .message_callback_add("pn/boom", |_| panic!("callback panics on purpose"))
        .unwrap();
    subscribe(&client, "pn/#").await;
    let publisher = connected(V5, broker.port, "pub").await;
    publish(&publisher, "pn/boom", "").await;
    publish(&publisher, "pn/ok", "").await;
    assert_eq!(next(&mut messages, "messages()").await.topic, "pn/ok");
    assert!(client.is_connected());
}

#[tokio::test]
async fn invalid_callback_filters_are_refused() {
    let client = Client::new("x");
    assert!(matches!(
        client.message_callback_add("a/#/b", |_| {}),
        Err(ClientError::InvalidFilter(_))
    ));
}

async fn full_stream_stalls(version: ProtocolVersion) {
    const N: u32 = 200;
    let broker = Broker::start();
    let client = Client::builder(client_id("stall"))
        .protocol(version)
        .message_capacity(4)
        .build();
    within("connect", 10, client.connect("127.0.0.1", broker.port, 2))
        .await
        .unwrap();
    let mut messages = client.messages();
    let mut slow = subscribe_stream(&client, "fs/s/#").await;
    let mut fast = subscribe_stream(&client, "fs/f/#").await;
    subscribe(&client, "fs/m/#").await;

    let publisher = connected(version, broker.port, "pub").await;
    for i in 0..N {
        let h = publisher
            .publish(
                "fs/s/data",
                i.to_be_bytes().to_vec(),
                QoS::AtLeastOnce,
                false,
            )
            .await
            .unwrap();
        if i % 50 == 49 {
            within("puback", 10, h).await.unwrap();
        }
    }
    publish(&publisher, "fs/f/after", "").await;
    publish(&publisher, "fs/m/after", "").await;

    // Nobody reads `slow`: the client holds what does not fit and stops
    // reading, so the later messages to the other streams wait (at the
    // broker or in the socket), for longer than a keepalive.
    let waited = tokio::time::timeout(Duration::from_secs(3), messages.next()).await;
    assert!(
        waited.is_err(),
        "messages() got {waited:?} while a subscription stream was full"
    );
    assert!(fast.try_recv().is_none());
    assert!(
        client.is_connected(),
        "a stalled client lost its connection"
    );

    // Draining `slow` lets everything through: all of it, in order, once.
    for expected in 0..N {
        let msg = next(&mut slow, "slow stream").await;
        let got = u32::from_be_bytes(msg.payload[..].try_into().unwrap());
        assert_eq!(got, expected, "lost or reordered");
    }
    assert_eq!(next(&mut fast, "fast stream").await.topic, "fs/f/after");
    assert_eq!(next(&mut messages, "messages()").await.topic, "fs/m/after");
    assert!(slow.try_recv().is_none());
    assert!(client.is_connected());
}

#[tokio::test]
async fn a_full_subscription_stream_stalls_reading_and_loses_nothing_v311() {
    full_stream_stalls(V3).await;
}

#[tokio::test]
async fn a_full_subscription_stream_stalls_reading_and_loses_nothing_v5() {
    full_stream_stalls(V5).await;
}

async fn dropped_stream(version: ProtocolVersion) {
    let broker = Broker::start();
    let client = connected(version, broker.port, "dropped").await;
    let mut messages = client.messages();
    let stream = subscribe_stream(&client, "dr/#").await;
    drop(stream);
    let publisher = connected(version, broker.port, "pub").await;
    publish(&publisher, "dr/1", "").await;
    // The broker subscription stays until unsubscribe; its messages now
    // go to messages().
    assert_eq!(next(&mut messages, "messages()").await.topic, "dr/1");
    within("unsubscribe", 10, client.unsubscribe("dr/#"))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_dropped_streams_messages_go_to_messages_v311() {
    dropped_stream(V3).await;
}

#[tokio::test]
async fn a_dropped_streams_messages_go_to_messages_v5() {
    dropped_stream(V5).await;
}

async fn shared_subscription(version: ProtocolVersion) {
    let broker = Broker::start();
    let client = connected(version, broker.port, "shared").await;
    let mut messages = client.messages();
    let mut shared = subscribe_stream(&client, "$share/g/sh/t/#").await;
    let mut other = subscribe_stream(&client, "sh/u/#").await;
    subscribe(&client, "shm/#").await;
    let publisher = connected(version, broker.port, "pub").await;
    publish(&publisher, "sh/t/1", "").await;
    publish(&publisher, "sh/u/1", "").await;
    publish(&publisher, "sh/t/end", "").await;
    publish(&publisher, "sh/u/end", "").await;
    publish(&publisher, "shm/end", "").await;
    assert_eq!(
        topics_until(&mut shared, "sh/t/end", "shared stream").await,
        ["sh/t/1", "sh/t/end"]
    );
    assert_eq!(
        topics_until(&mut other, "sh/u/end", "other stream").await,
        ["sh/u/1", "sh/u/end"]
    );
    assert_eq!(
        topics_until(&mut messages, "shm/end", "messages()").await,
        ["shm/end"]
    );
}

#[tokio::test]
async fn shared_subscriptions_route_to_their_stream_v5() {
    shared_subscription(V5).await;
}

#[tokio::test]
async fn shared_subscriptions_route_to_their_stream_v311() {
    shared_subscription(V3).await;
}

async fn retained_on_subscribe(version: ProtocolVersion) {
    let broker = Broker::start();
    let publisher = connected(version, broker.port, "pub").await;
    let handle = publisher
        .publish("rr/kept", "retained", QoS::AtLeastOnce, true)
        .await
        .unwrap();
    within("puback", 10, handle).await.unwrap();
    let client = connected(version, broker.port, "retained").await;
    // The broker sends the retained message right after the SUBACK: the
    // route must already be in place.
    let mut stream = subscribe_stream(&client, "rr/#").await;
    let msg = next(&mut stream, "retained message").await;
    assert_eq!(msg.topic, "rr/kept");
    assert!(msg.retain);
}

#[tokio::test]
async fn retained_messages_reach_the_new_stream_v311() {
    retained_on_subscribe(V3).await;
}

#[tokio::test]
async fn retained_messages_reach_the_new_stream_v5() {
    retained_on_subscribe(V5).await;
}

#[tokio::test]
async fn several_filters_in_one_stream_v5() {
    let broker = Broker::start();
    let client = connected(V5, broker.port, "many").await;
    let (ack, mut stream) = within(
        "subscribe",
        10,
        client.subscribe_many_stream(
            &[
                ("mf/a", SubscriptionOptions::new(QoS::AtLeastOnce)),
                ("mf/b", SubscriptionOptions::new(QoS::AtMostOnce)),
            ],
            SubscribeProperties::default(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(ack.reason_codes.len(), 2);
    assert_eq!(stream.filters(), ["mf/a", "mf/b"]);
    let publisher = connected(V5, broker.port, "pub").await;
    publish(&publisher, "mf/a", "").await;
    publish(&publisher, "mf/b", "").await;
    let a = next(&mut stream, "stream").await;
    let b = next(&mut stream, "stream").await;
    assert_eq!((a.topic.as_str(), a.qos), ("mf/a", QoS::AtLeastOnce));
    assert_eq!((b.topic.as_str(), b.qos), ("mf/b", QoS::AtMostOnce));
    let id = stream.identifier().unwrap();
    assert_eq!(
        a.properties
            .subscription_identifiers
            .iter()
            .collect::<Vec<_>>(),
        [id]
    );
}

#[tokio::test]
async fn subscribe_stream_needs_a_connection() {
    let client = Client::new(client_id("offline"));
    assert!(matches!(
        client.subscribe_stream("a", QoS::AtMostOnce).await,
        Err(ClientError::NotConnected)
    ));
}

// ---------------------------------------------------------------------------
// Against a scripted broker.

fn ids(list: &[NonZeroU32]) -> PublishProperties {
    PublishProperties {
        subscription_identifiers: list.iter().copied().collect::<SubscriptionIdentifiers>(),
        ..PublishProperties::default()
    }
}

fn publish_packet(topic: &str, properties: PublishProperties) -> Packet {
    Packet::Publish(
        plover::codec::Publish::new(plover::codec::TopicName::try_from(topic).unwrap(), "x")
            .with_properties(properties),
    )
}

async fn scripted_client(port: u16) -> Client {
    let client = Client::builder(client_id("scripted")).protocol(V5).build();
    within("connect", 10, client.connect("127.0.0.1", port, 60))
        .await
        .unwrap();
    client
}

#[tokio::test]
async fn one_publish_with_two_identifiers_reaches_both_streams_once() {
    let broker = Scripted::start(|mut peer| async move {
        peer.handshake(ConnAckProperties::default()).await;
        let first = peer.accept_subscribe().await;
        let second = peer.accept_subscribe().await;
        let a = first
            .properties
            .subscription_identifier
            .expect("an identifier");
        let b = second
            .properties
            .subscription_identifier
            .expect("an identifier");
        assert_ne!(a, b);
        // One copy for both subscriptions, as a broker may send it, and the
        // identifiers repeated for good measure.
        let publish = plover::codec::Publish::new("a/b".try_into().unwrap(), "both")
            .with_properties(ids(&[b, a, b]))
            .with_qos(QoS::AtLeastOnce, 1.try_into().ok());
        peer.send(Packet::Publish(publish)).await;
        peer.expect_puback().await;
        peer.send(publish_packet("a/end", ids(&[a, b]))).await;
        peer.send(publish_packet("m", PublishProperties::default()))
            .await;
        peer.expect_disconnect().await;
    })
    .await;
    let client = scripted_client(broker.port).await;
    let mut messages = client.messages();
    let mut plus = subscribe_stream(&client, "a/+").await;
    let mut hash = subscribe_stream(&client, "a/#").await;
    assert_eq!(
        topics_until(&mut plus, "a/end", "a/+").await,
        ["a/b", "a/end"]
    );
    assert_eq!(
        topics_until(&mut hash, "a/end", "a/#").await,
        ["a/b", "a/end"]
    );
    assert_eq!(topics_until(&mut messages, "m", "messages()").await, ["m"]);
    within("disconnect", 10, client.disconnect()).await.unwrap();
    broker.finish().await;
}

#[tokio::test]
async fn identifiers_of_a_dropped_stream_go_to_messages() {
    let (dropped_tx, dropped_rx) = tokio::sync::oneshot::channel::<()>();
    let broker = Scripted::start(|mut peer| async move {
        peer.handshake(ConnAckProperties::default()).await;
        let sub = peer.accept_subscribe().await;
        let id = sub
            .properties
            .subscription_identifier
            .expect("an identifier");
        dropped_rx.await.expect("the test dropped the stream");
        peer.send(publish_packet("d/1", ids(&[id]))).await;
        peer.expect_disconnect().await;
    })
    .await;
    let client = scripted_client(broker.port).await;
    let mut messages = client.messages();
    let stream = subscribe_stream(&client, "d/#").await;
    let id = stream.identifier().unwrap();
    drop(stream);
    dropped_tx.send(()).unwrap();
    let msg = next(&mut messages, "messages()").await;
    assert_eq!(msg.topic, "d/1");
    assert_eq!(
        msg.properties
            .subscription_identifiers
            .iter()
            .collect::<Vec<_>>(),
        [id]
    );
    within("disconnect", 10, client.disconnect()).await.unwrap();
    broker.finish().await;
}

#[tokio::test]
async fn without_subscription_identifiers_streams_route_by_topic() {
    let broker = Scripted::start(|mut peer| async move {
        peer.handshake(ConnAckProperties {
            subscription_identifiers_available: Some(false),
            ..ConnAckProperties::default()
        })
        .await;
        for _ in 0..2 {
            let sub = peer.accept_subscribe().await;
            assert_eq!(
                sub.properties.subscription_identifier, None,
                "the broker said it has no Subscription Identifiers"
            );
        }
        peer.send(publish_packet("t/1", PublishProperties::default()))
            .await;
        peer.send(publish_packet("t/end", PublishProperties::default()))
            .await;
        peer.expect_disconnect().await;
    })
    .await;
    let client = scripted_client(broker.port).await;
    let mut one = subscribe_stream(&client, "t/+").await;
    let mut all = subscribe_stream(&client, "#").await;
    assert_eq!(one.identifier(), None);
    assert_eq!(
        topics_until(&mut one, "t/end", "t/+").await,
        ["t/1", "t/end"]
    );
    assert_eq!(topics_until(&mut all, "t/end", "#").await, ["t/1", "t/end"]);
    within("disconnect", 10, client.disconnect()).await.unwrap();
    broker.finish().await;
}

#[tokio::test]
async fn caller_chosen_identifiers_are_kept_and_automatic_ones_protected() {
    let broker = Scripted::start(|mut peer| async move {
        peer.handshake(ConnAckProperties::default()).await;
        let mine = peer.accept_subscribe().await;
        assert_eq!(
            mine.properties.subscription_identifier.map(NonZeroU32::get),
            Some(42)
        );
        let auto = peer.accept_subscribe().await;
        let auto_id = auto.properties.subscription_identifier.unwrap();
        assert_ne!(auto_id.get(), 42);
        peer.send(publish_packet("c/1", ids(&[NonZeroU32::new(42).unwrap()])))
            .await;
        peer.send(publish_packet("c/2", ids(&[auto_id]))).await;
        // The refused subscribe_many sends nothing: DISCONNECT comes next.
        peer.expect_disconnect().await;
    })
    .await;
    let client = scripted_client(broker.port).await;
    let (_, mut mine) = client
        .subscribe_many_stream(
            &[("c/#", SubscriptionOptions::new(QoS::AtMostOnce))],
            SubscribeProperties {
                subscription_identifier: NonZeroU32::new(42),
                ..SubscribeProperties::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(mine.identifier().map(NonZeroU32::get), Some(42));
    let mut auto = subscribe_stream(&client, "c/#").await;
    assert_eq!(next(&mut mine, "caller's id").await.topic, "c/1");
    assert_eq!(next(&mut auto, "automatic id").await.topic, "c/2");
    // A plain subscribe may not reuse an identifier a live stream has.
    let clash = client
        .subscribe_many(
            &[("z", SubscriptionOptions::new(QoS::AtMostOnce))],
            SubscribeProperties {
                subscription_identifier: auto.identifier(),
                ..SubscribeProperties::default()
            },
        )
        .await;
    assert!(
        matches!(clash, Err(ClientError::InvalidArgument(_))),
        "{clash:?}"
    );
    within("disconnect", 10, client.disconnect()).await.unwrap();
    broker.finish().await;
}
