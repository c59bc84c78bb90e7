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
