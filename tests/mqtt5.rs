//! MQTT 5.0 features against a real mosquitto: limits from CONNACK, topic
//! aliases, message expiry while offline, will delay, server keep alive.

mod common;
mod proxy;
mod scripted;

use std::collections::HashMap;
use std::time::Duration;

use common::{Broker, client_id, within};
use plover::codec::{ConnAckProperties, Packet, PublishProperties, WillProperties};
use plover::{Client, ClientError, ProtocolVersion, QoS};
use proxy::{Dir, Proxy};
use scripted::{Received, Scripted};

const V5: ProtocolVersion = ProtocolVersion::V5;

async fn connected(broker: &Broker, id: &str) -> Client {
    let client = Client::builder(id).protocol(V5).build();
    within("connect", 10, client.connect("127.0.0.1", broker.port, 30))
        .await
        .unwrap();
    client
}

/// mosquitto's `max_inflight_messages` is its Receive Maximum. With ours at
/// 50, the client must still keep at most 3 unacknowledged, and everything
/// gets through (mosquitto disconnects a client that overruns it).
#[tokio::test]
async fn the_brokers_receive_maximum_is_obeyed() {
    let broker = Broker::start_with("allow_anonymous true\nmax_inflight_messages 3\n");
    let client = Client::builder(client_id("rm"))
        .protocol(V5)
        .max_inflight_messages(50)
        .build();
    let connack = within("connect", 10, client.connect("127.0.0.1", broker.port, 30))
        .await
        .unwrap();
    assert_eq!(connack.properties.receive_maximum, Some(3));
    let mut handles = Vec::new();
    for i in 0..300u32 {
        let qos = if i % 2 == 0 {
            QoS::AtLeastOnce
        } else {
            QoS::ExactlyOnce
        };
        handles.push(
            client
                .publish("rm/t", i.to_be_bytes().to_vec(), qos, false)
                .await
                .unwrap(),
        );
    }
    for h in handles {
        within("ack", 20, h).await.unwrap();
    }
    assert!(
        client.is_connected(),
        "the broker dropped us: {}",
        broker.log()
    );
}

/// With automatic aliases, repeated topics travel as aliases and the
/// subscriber still sees every topic in full. The publisher goes through
/// the proxy from `tests/proxy`, which lists its PUBLISHes as they were on
/// the wire: without that, a client that never aliased would pass too.
#[tokio::test]
async fn automatic_topic_aliases_round_trip() {
    let broker = Broker::start_with("allow_anonymous true\nmax_topic_alias 2\nlog_type all\n");
    let proxy = Proxy::start(broker.port, 0xA11A5).await;
    let sub = connected(&broker, &client_id("alias-sub")).await;
    let mut messages = sub.messages();
    within("subscribe", 10, sub.subscribe("alias/#", QoS::AtLeastOnce))
        .await
        .unwrap();

    let publisher = Client::builder(client_id("alias-pub"))
        .protocol(V5)
        .topic_alias_auto(true)
        .build();
    let connack = within(
        "connect",
        10,
        publisher.connect("127.0.0.1", proxy.port, 30),
    )
    .await
    .unwrap();
    assert_eq!(connack.properties.topic_alias_maximum, Some(2));
    // Two topics that come back again and again, and a third for which
    // the broker's two aliases do not stretch.
    let topics = [
        "alias/a", "alias/b", "alias/a", "alias/b", "alias/c", "alias/a", "alias/b", "alias/c",
        "alias/a", "alias/b",
    ];
    for (i, topic) in topics.iter().enumerate() {
        let h = publisher
            .publish(topic, vec![i as u8], QoS::AtLeastOnce, false)
            .await
            .unwrap();
        within("puback", 10, h).await.unwrap();
    }
    for (i, topic) in topics.iter().enumerate() {
        let msg = within("message", 10, messages.recv()).await.unwrap();
        assert_eq!(
            (msg.topic.as_str(), &msg.payload[..]),
            (*topic, &[i as u8][..])
        );
    }
    assert!(publisher.is_connected(), "{}", broker.log());

    // What went on the wire: every PUBLISH acknowledged, so forwarded.
    let wire = proxy.publishes(Dir::ToBroker);
    assert_eq!(wire.len(), topics.len(), "{wire:?}");
    assert!(
        wire.iter().all(|p| p.connection == 0),
        "one connection: {wire:?}"
    );
    let mut defined: HashMap<u16, String> = HashMap::new();
    let mut by_alias = 0;
    for (p, topic) in wire.iter().zip(topics) {
        match (p.topic.as_str(), p.topic_alias) {
            (t, None) => assert_eq!(t, topic, "{wire:?}"),
            ("", Some(alias)) => {
                // The broker resolves it to the topic it was last set to.
                assert_eq!(
                    defined.get(&alias).map(String::as_str),
                    Some(topic),
                    "alias {alias} used before it stood for {topic}: {wire:?}"
                );
                by_alias += 1;
            }
            (t, Some(alias)) => {
                assert_eq!(t, topic, "{wire:?}");
                // Never above the broker's Topic Alias Maximum (§3.3.2.3.4).
                assert!((1..=2).contains(&alias), "alias {alias}: {wire:?}");
                defined.insert(alias, t.to_owned());
            }
        }
    }
    // alias/a and alias/b come back six times after their first PUBLISH.
    // The session hands out the broker's two aliases first come, first
    // served, and sends later topics (alias/c) in full, so all six go as
    // an alias and an empty topic.
    assert_eq!(
        by_alias, 6,
        "PUBLISHes that travelled as an alias with an empty topic: {wire:?}"
    );
    let _ = within("disconnect", 10, publisher.disconnect()).await;
}

/// A message whose expiry passes while the subscriber is away is not
/// delivered; one without expiry is.
#[tokio::test]
async fn messages_expire_while_the_subscriber_is_offline() {
    let broker = Broker::start();
    let id = client_id("expiry-sub");
    let persistent = || {
        Client::builder(&id)
            .protocol(V5)
            .clean_start(false)
            .session_expiry(300)
            .build()
    };
    let sub = persistent();
    within("connect", 10, sub.connect("127.0.0.1", broker.port, 30))
        .await
        .unwrap();
    within("subscribe", 10, sub.subscribe("expiry/#", QoS::AtLeastOnce))
        .await
        .unwrap();
    within("disconnect", 10, sub.disconnect()).await.unwrap();

    let publisher = connected(&broker, &client_id("expiry-pub")).await;
    let short = PublishProperties {
        message_expiry_interval: Some(1),
        ..Default::default()
    };
    let h = publisher
        .publish_with_properties("expiry/short", "gone", QoS::AtLeastOnce, false, short)
        .await
        .unwrap();
    within("puback", 10, h).await.unwrap();
    let h = publisher
        .publish("expiry/forever", "kept", QoS::AtLeastOnce, false)
        .await
        .unwrap();
    within("puback", 10, h).await.unwrap();
    // Let the one-second lifetime run out while nobody is there.
    tokio::time::sleep(Duration::from_millis(2200)).await;

    let sub = persistent();
    let mut messages = sub.messages();
    let connack = within("reconnect", 10, sub.connect("127.0.0.1", broker.port, 30))
        .await
        .unwrap();
    assert!(connack.session_present);
    let first = within("message", 10, messages.recv()).await.unwrap();
    assert_eq!(
        first.topic, "expiry/forever",
        "the expired message was delivered"
    );
}

/// A will with a delay is not published if the client comes back within
/// the delay (the new connection takes the session over), and is
/// published when it does not.
#[tokio::test]
async fn will_delay_lets_a_quick_reconnect_cancel_the_will() {
    let broker = Broker::start();
    let watcher = connected(&broker, &client_id("will-watch")).await;
    let mut messages = watcher.messages();
    within(
        "subscribe",
        10,
        watcher.subscribe("will/#", QoS::AtLeastOnce),
    )
    .await
    .unwrap();

    let id = client_id("will-delay");
    let start_dying_client = |delay: u32| {
        let id = id.clone();
        let port = broker.port;
        // Its own runtime, so shutting that down kills the connection
        // without a DISCONNECT, like a crash.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let c = Client::builder(&id)
                    .protocol(V5)
                    .clean_start(false)
                    .session_expiry(60)
                    .build();
                let props = WillProperties {
                    will_delay_interval: Some(delay),
                    ..Default::default()
                };
                c.will_set_with_properties("will/status", "gone", QoS::AtLeastOnce, false, props)
                    .unwrap();
                c.connect("127.0.0.1", port, 30).await.unwrap();
                // Leak the client into the runtime: shutting it down is the crash.
                std::mem::forget(c);
            });
            rt.shutdown_background();
        })
        .join()
        .unwrap();
    };

    // Dies with a 30 s will delay, and comes straight back: no will.
    start_dying_client(30);
    let back = Client::builder(&id)
        .protocol(V5)
        .clean_start(false)
        .session_expiry(60)
        .build();
    within("reconnect", 10, back.connect("127.0.0.1", broker.port, 30))
        .await
        .unwrap();
    within("disconnect", 10, back.disconnect()).await.unwrap();

    // Dies with a 1 s will delay and stays away: the will comes.
    start_dying_client(1);
    let marker = watcher
        .publish("will/marker", "m", QoS::AtLeastOnce, false)
        .await
        .unwrap();
    within("marker ack", 10, marker).await.unwrap();
    let first = within("marker", 10, messages.recv()).await.unwrap();
    assert_eq!(
        first.topic, "will/marker",
        "a will was published despite the reconnect"
    );
    let will = within("will", 15, messages.recv()).await.unwrap();
    assert_eq!(
        (will.topic.as_str(), &will.payload[..]),
        ("will/status", &b"gone"[..])
    );
}

/// mosquitto's `max_keepalive` comes back as Server Keep Alive, which the
/// client then uses in place of its own (that it does is shown with a
/// scripted broker, in `a_shorter_server_keep_alive_...` below).
#[tokio::test]
async fn server_keep_alive_is_reported() {
    let broker = Broker::start_with("allow_anonymous true\nmax_keepalive 10\n");
    let client = Client::builder(client_id("ka")).protocol(V5).build();
    let connack = within("connect", 10, client.connect("127.0.0.1", broker.port, 600))
        .await
        .unwrap();
    assert_eq!(connack.properties.server_keep_alive, Some(10));
}

/// How a scripted broker's Server Keep Alive changes the client's pings:
/// the client asks for `asked` seconds, the CONNACK says `server`, and the
/// script watches for a PINGREQ during `watch` (answering it, so the
/// client has no reason to give up). Returns when the first PINGREQ came,
/// counted from the CONNACK, or None.
async fn first_ping(asked: u16, server: u16, watch: Duration) -> Option<Duration> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let broker = Scripted::start(move |mut peer| async move {
        let properties = ConnAckProperties {
            server_keep_alive: Some(server),
            ..Default::default()
        };
        let connect = peer.handshake(properties).await;
        assert_eq!(connect.keep_alive, asked, "the CONNECT's own keepalive");
        let acked = tokio::time::Instant::now();
        // PINGREQs are the point here: the script sees them itself.
        peer.answer_pings = false;
        let ping = match peer.recv_within(watch).await {
            Received::Packet(Packet::PingReq) => {
                let after = acked.elapsed();
                peer.send(Packet::PingResp).await;
                Some(after)
            }
            Received::Nothing => None,
            Received::Packet(p) => peer.fail(&format!("expected PINGREQ or nothing, got {p:?}")),
            Received::Closed => peer.fail("the client closed the connection"),
        };
        let _ = tx.send(ping);
        peer.answer_pings = true;
        peer.expect_disconnect().await;
    })
    .await;
    let client = Client::builder(client_id("server-ka"))
        .protocol(V5)
        // The script takes one connection.
        .automatic_reconnect(false)
        .build();
    let connack = within(
        "connect",
        10,
        client.connect("127.0.0.1", broker.port, asked),
    )
    .await
    .unwrap();
    assert_eq!(connack.properties.server_keep_alive, Some(server));
    let ping = within("the script watching for PINGREQ", 15, rx)
        .await
        .expect("the script reports");
    assert!(client.is_connected(), "the client gave up on the broker");
    within("disconnect", 10, client.disconnect()).await.unwrap();
    broker.finish().await;
    ping
}

/// [MQTT-3.2.2-21]: the client must use the Server Keep Alive in place of
/// its own. Asked for 60 s, told 1 s, it pings within about a second (the
/// bound leaves room for a slow machine, and is far below 60 s).
#[tokio::test]
async fn a_shorter_server_keep_alive_makes_the_client_ping_sooner() {
    let ping = first_ping(60, 1, Duration::from_millis(2500)).await;
    assert!(
        ping.is_some(),
        "no PINGREQ within 2.5 s of a CONNACK with Server Keep Alive 1 (the client asked 60)"
    );
}

/// The other way round: asked for 1 s, told 60 s, it must not ping on its
/// own 1 s schedule (nothing within 3 s).
#[tokio::test]
async fn a_longer_server_keep_alive_keeps_the_client_from_pinging() {
    let ping = first_ping(1, 60, Duration::from_secs(3)).await;
    assert_eq!(
        ping, None,
        "PINGREQ although the broker's Server Keep Alive is 60 s (the client asked 1)"
    );
}

/// A publish the broker refuses at QoS above its maximum never leaves the
/// client.
#[tokio::test]
async fn qos_above_the_brokers_maximum_is_refused_locally() {
    let broker = Broker::start_with("allow_anonymous true\nmax_qos 1\n");
    let client = connected(&broker, &client_id("maxqos")).await;
    let handle = client
        .publish("q/t", "x", QoS::ExactlyOnce, false)
        .await
        .unwrap();
    match within("result", 10, handle).await {
        Err(ClientError::Request(plover::session::RequestError::QoSNotSupported { .. })) => {}
        other => panic!("expected QoSNotSupported, got {other:?}"),
    }
    let ok = client
        .publish("q/t", "x", QoS::AtLeastOnce, false)
        .await
        .unwrap();
    within("puback", 10, ok).await.unwrap();
}
