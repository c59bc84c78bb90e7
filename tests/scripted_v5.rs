//! MQTT 5.0 rules that only a misbehaving broker can show, against a
//! scripted broker on loopback: overrunning our Receive Maximum, topic
//! aliases we never allowed (and ones we did), malformed packets.

mod common;
mod scripted;

use common::{client_id, within};
use plover::codec::{
    ConnAckProperties, ConnectProperties, DecodeError, DisconnectReasonCode, Packet, Publish,
    PublishProperties, QoS, TopicName,
};
use plover::session::ProtocolError;
use plover::{Client, CloseReason, ConnectionEvent, ProtocolVersion};
use scripted::Scripted;

fn client(connect_properties: ConnectProperties) -> Client {
    Client::builder(client_id("scripted-v5"))
        .protocol(ProtocolVersion::V5)
        .connect_properties(connect_properties)
        // The scripted broker takes one connection; a reconnect would only
        // knock on a closed door.
        .automatic_reconnect(false)
        .build()
}

fn publish(topic: &'static str, alias: Option<u16>, qos: QoS, id: u16) -> Packet {
    let props = PublishProperties {
        topic_alias: alias,
        ..Default::default()
    };
    let packet_id = if qos == QoS::AtMostOnce {
        None
    } else {
        id.try_into().ok()
    };
    Packet::Publish(
        // "" goes by its Topic Alias alone.
        Publish::new(
            if topic.is_empty() {
                TopicName::empty()
            } else {
                topic.try_into().unwrap()
            },
            "x",
        )
        .with_qos(qos, packet_id)
        .with_properties(props),
    )
}

/// The reason of the DISCONNECT the client sent last, before closing.
fn last_disconnect(packets: &[Packet]) -> Option<DisconnectReasonCode> {
    packets.iter().rev().find_map(|p| match p {
        Packet::Disconnect(d) => Some(d.reason_code),
        _ => None,
    })
}

async fn disconnected(events: &mut plover::ConnectionEvents) -> CloseReason {
    loop {
        match within("disconnect event", 10, events.recv()).await {
            Some(ConnectionEvent::Disconnected(reason)) => return reason,
            Some(_) => continue,
            None => panic!("event stream ended"),
        }
    }
}

#[tokio::test]
async fn a_broker_overrunning_our_receive_maximum_is_disconnected_with_0x93() {
    let broker = Scripted::start(|mut peer| async move {
        let connect = peer.handshake(ConnAckProperties::default()).await;
        assert_eq!(connect.properties.receive_maximum, Some(2));
        // Three QoS 2 messages, none released: one more than we allow.
        for id in 1..=3 {
            peer.send(publish("rm/t", None, QoS::ExactlyOnce, id)).await;
        }
        let received = peer.expect_closed().await;
        let pubrecs = received
            .iter()
            .filter(|p| matches!(p, Packet::PubRec(_)))
            .count();
        assert_eq!(pubrecs, 2, "{received:?}");
        assert_eq!(
            last_disconnect(&received),
            Some(DisconnectReasonCode::ReceiveMaximumExceeded)
        );
    })
    .await;
    let client = client(ConnectProperties {
        receive_maximum: Some(2),
        ..Default::default()
    });
    let mut events = client.connection_events();
    within("connect", 10, client.connect("127.0.0.1", broker.port, 60))
        .await
        .unwrap();
    assert_eq!(
        disconnected(&mut events).await,
        CloseReason::Protocol(ProtocolError::ReceiveMaximumExceeded)
    );
    broker.finish().await;
}

#[tokio::test]
async fn a_topic_alias_we_never_allowed_is_disconnected_with_0x94() {
    let broker = Scripted::start(|mut peer| async move {
        let connect = peer.handshake(ConnAckProperties::default()).await;
        assert_eq!(connect.properties.topic_alias_maximum, None);
        peer.send(publish("alias/t", Some(3), QoS::AtMostOnce, 0))
            .await;
        let received = peer.expect_closed().await;
        assert_eq!(
            last_disconnect(&received),
            Some(DisconnectReasonCode::TopicAliasInvalid)
        );
    })
    .await;
    let client = client(ConnectProperties::default());
    let mut messages = client.messages();
    let mut events = client.connection_events();
    within("connect", 10, client.connect("127.0.0.1", broker.port, 60))
        .await
        .unwrap();
    assert_eq!(
        disconnected(&mut events).await,
        CloseReason::Protocol(ProtocolError::TopicAliasInvalid(3))
    );
    broker.finish().await;
    // The offending message was not handed to the application.
    assert!(messages.try_recv().is_none());
}

#[tokio::test]
async fn topic_aliases_we_allowed_are_resolved() {
    let broker = Scripted::start(|mut peer| async move {
        let connect = peer.handshake(ConnAckProperties::default()).await;
        assert_eq!(connect.properties.topic_alias_maximum, Some(5));
        peer.send(publish("home/kitchen/temp", Some(5), QoS::AtLeastOnce, 1))
            .await;
        peer.expect_puback().await;
        // The alias alone now stands for the topic.
        peer.send(publish("", Some(5), QoS::AtLeastOnce, 2)).await;
        peer.expect_puback().await;
        // An alias used before it was defined is an error.
        peer.send(publish("", Some(4), QoS::AtMostOnce, 0)).await;
        let received = peer.expect_closed().await;
        assert_eq!(
            last_disconnect(&received),
            Some(DisconnectReasonCode::TopicAliasInvalid)
        );
    })
    .await;
    let client = client(ConnectProperties {
        topic_alias_maximum: Some(5),
        ..Default::default()
    });
    let mut messages = client.messages();
    within("connect", 10, client.connect("127.0.0.1", broker.port, 60))
        .await
        .unwrap();
    for _ in 0..2 {
        let msg = within("message", 10, messages.recv()).await.unwrap();
        assert_eq!(msg.topic, "home/kitchen/temp");
    }
    broker.finish().await;
}

#[tokio::test]
async fn a_malformed_packet_is_disconnected_with_0x81() {
    let broker = Scripted::start(|mut peer| async move {
        peer.handshake(ConnAckProperties::default()).await;
        // PUBLISH with both QoS bits set: "MUST NOT" [MQTT-3.3.1-4].
        peer.send_bytes(&[0x36, 0x05, 0x00, 0x01, b'a', 0x00, 0x01])
            .await;
        let received = peer.expect_closed().await;
        assert_eq!(
            last_disconnect(&received),
            Some(DisconnectReasonCode::MalformedPacket)
        );
    })
    .await;
    let client = client(ConnectProperties::default());
    let mut events = client.connection_events();
    within("connect", 10, client.connect("127.0.0.1", broker.port, 60))
        .await
        .unwrap();
    assert_eq!(
        disconnected(&mut events).await,
        CloseReason::Protocol(ProtocolError::Decode(DecodeError::InvalidQoS))
    );
    broker.finish().await;
}
