//! The client end to end against a real mosquitto: the basics in both versions.

mod common;

use common::{Broker, client_id, within};
use plover::{Client, ProtocolVersion, QoS};

async fn pubsub_roundtrip(version: ProtocolVersion) {
    let broker = Broker::start();
    let sub = Client::builder(client_id("sub")).protocol(version).build();
    let mut messages = sub.messages();
    within("sub connect", 10, sub.connect("127.0.0.1", broker.port, 30))
        .await
        .unwrap();
    let granted = within("subscribe", 10, sub.subscribe("smoke/#", QoS::ExactlyOnce))
        .await
        .unwrap();
    assert_eq!(granted, QoS::ExactlyOnce);

    let publisher = Client::builder(client_id("pub")).protocol(version).build();
    within(
        "pub connect",
        10,
        publisher.connect("127.0.0.1", broker.port, 30),
    )
    .await
    .unwrap();
    for (i, qos) in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
        .into_iter()
        .enumerate()
    {
        let handle = publisher
            .publish(&format!("smoke/{i}"), vec![i as u8; 3], qos, false)
            .await
            .unwrap();
        let outcome = within("ack", 10, handle).await.unwrap();
        assert_eq!(outcome.packet_id.is_some(), qos != QoS::AtMostOnce);
    }
    for (i, qos) in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
        .into_iter()
        .enumerate()
    {
        let msg = within("message", 10, messages.recv()).await.unwrap();
        assert_eq!(msg.topic, format!("smoke/{i}").as_str());
        assert_eq!(&msg.payload[..], &[i as u8; 3]);
        assert_eq!(msg.qos, qos);
    }
    within("disconnect", 10, publisher.disconnect())
        .await
        .unwrap();
    within("disconnect", 10, sub.disconnect()).await.unwrap();
    assert!(!sub.is_connected());
}

#[tokio::test]
async fn pubsub_v311() {
    pubsub_roundtrip(ProtocolVersion::V311).await;
}

#[tokio::test]
async fn pubsub_v5() {
    pubsub_roundtrip(ProtocolVersion::V5).await;
}

/// A publish larger than the broker's Maximum Packet Size (5.0 CONNACK) is
/// refused before anything is sent, and the connection carries on.
#[tokio::test]
async fn publish_over_the_brokers_maximum_packet_size_is_refused_locally() {
    let broker = Broker::start_with("allow_anonymous true\nmax_packet_size 1000\n");
    let sub = Client::builder(client_id("sub"))
        .protocol(ProtocolVersion::V5)
        .build();
    let mut messages = sub.messages();
    within("connect", 10, sub.connect("127.0.0.1", broker.port, 30))
        .await
        .unwrap();
    within("subscribe", 10, sub.subscribe("big/#", QoS::AtLeastOnce))
        .await
        .unwrap();

    let client = Client::builder(client_id("big"))
        .protocol(ProtocolVersion::V5)
        .build();
    let connack = within("connect", 10, client.connect("127.0.0.1", broker.port, 30))
        .await
        .unwrap();
    assert_eq!(connack.properties.maximum_packet_size, Some(1000));
    match client
        .publish("big/one", vec![0u8; 2000], QoS::AtLeastOnce, false)
        .await
    {
        Err(plover::ClientError::PacketTooLarge { size, max: 1000 }) => assert!(size > 2000),
        other => panic!("expected PacketTooLarge, got {other:?}"),
    }
    // Still connected, and the next message is the first the subscriber sees.
    assert!(client.is_connected());
    let ok = client
        .publish("big/marker", "fits", QoS::AtLeastOnce, false)
        .await
        .unwrap();
    within("puback", 10, ok).await.unwrap();
    let first = within("marker", 10, messages.recv()).await.unwrap();
    assert_eq!(first.topic, "big/marker");
}

/// An empty client id asks the broker for one; 3.1.1 requires a clean
/// session for it, which the client checks before connecting.
#[tokio::test]
async fn empty_client_id_is_assigned_by_the_broker() {
    let broker = Broker::start();
    let v5 = Client::builder("").protocol(ProtocolVersion::V5).build();
    let connack = within("connect", 10, v5.connect("127.0.0.1", broker.port, 30))
        .await
        .unwrap();
    let assigned = connack
        .properties
        .assigned_client_identifier
        .expect("an assigned id");
    assert!(!assigned.is_empty());

    let v311 = Client::new("");
    within("connect", 10, v311.connect("127.0.0.1", broker.port, 30))
        .await
        .unwrap();
    assert!(v311.is_connected());

    let persistent = Client::builder("").clean_start(false).build();
    match persistent.connect("127.0.0.1", broker.port, 30).await {
        Err(plover::ClientError::InvalidArgument(_)) => {}
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    assert!(!persistent.is_connected());
}

/// A QoS read from a number is checked where it is converted.
#[test]
fn qos_from_a_number_is_checked() {
    fn parse(n: u8) -> Result<QoS, plover::ClientError> {
        Ok(QoS::try_from(n)?)
    }
    assert_eq!(parse(2).unwrap(), QoS::ExactlyOnce);
    assert!(matches!(
        parse(3),
        Err(plover::ClientError::InvalidQoS(plover::codec::InvalidQoS(
            3
        )))
    ));
}

/// The password shows nowhere in Debug output: not the client's, not a
/// CONNECT's.
#[test]
fn passwords_stay_out_of_debug_output() {
    let client = Client::new("secretive");
    client
        .username_pw_set("alice", Some("hunter2-s3cret"))
        .unwrap();
    let shown = format!("{client:?}");
    assert!(shown.contains("alice"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");

    let mut connect = plover::codec::Connect::new(ProtocolVersion::V5, "x".try_into().unwrap());
    connect.password = Some(bytes::Bytes::from_static(b"hunter2-s3cret"));
    let shown = format!("{connect:?} {connect:#?}");
    assert!(
        shown.contains("redacted") && !shown.contains("hunter2"),
        "{shown}"
    );
}
