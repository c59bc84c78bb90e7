//! The fault-injecting proxy's own bookkeeping (`tests/proxy`), checked
//! with scripted peers on both sides of it, so the resilience campaigns
//! can trust what it reports: a scripted broker upstream, and a raw client
//! (the same `Peer`, speaking from the other end) in front.

mod proxy;
mod scripted;

use std::time::Duration;

use plover::codec::{
    ConnAckProperties, Connect, Packet, PacketType, ProtocolVersion, PubRel, Publish, QoS,
};
use proxy::{Dir, Moment, Proxy};
use scripted::{Listener, Peer, Received};
use tokio::net::TcpStream;

/// A raw 5.0 client through the proxy, and the broker's side of the same
/// connection.
async fn link(proxy: &Proxy, upstream: &Listener) -> (Peer, Peer) {
    let stream = tokio::time::timeout(
        scripted::STEP,
        TcpStream::connect(("127.0.0.1", proxy.port)),
    )
    .await
    .expect("connect to the proxy in time")
    .expect("connect to the proxy");
    let mut client = Peer::new(stream);
    let mut broker = upstream.accept().await;
    let connect = Connect::new(ProtocolVersion::V5, "selftest".try_into().unwrap());
    client.send(Packet::Connect(Box::new(connect))).await;
    broker.handshake(ConnAckProperties::default()).await;
    client.expect(PacketType::ConnAck).await;
    (client, broker)
}

fn qos2(topic: &str, payload: &'static str, id: u16) -> Packet {
    let mut publish = Publish::new(topic.try_into().unwrap(), payload)
        .with_qos(QoS::ExactlyOnce, id.try_into().ok());
    publish.dup = true;
    Packet::Publish(publish)
}

fn pubrel(id: u16) -> Packet {
    Packet::PubRel(PubRel::new(id.try_into().unwrap()))
}

/// The broker sends a QoS 2 PUBLISH and its PUBREL, the proxy cuts just
/// before or just after the PUBREL, and on the next connection the broker
/// sends the PUBLISH again. Then, as a marker, a second message goes
/// through a whole PUBLISH / PUBREL / PUBLISH-again on that connection.
/// Returns what the proxy lists as sent again after a PUBREL, once the
/// marker is in it (one task forwards a connection's direction in order,
/// so everything before the marker has been counted by then).
async fn resend_after_a_cut_at_the_pubrel(moment: Moment) -> Vec<(String, Vec<u8>)> {
    let upstream = Listener::bind().await;
    let proxy = Proxy::start(upstream.port, 7).await;

    let (mut client, mut broker) = link(&proxy, &upstream).await;
    broker.send(qos2("st/x", "m", 7)).await;
    let publish = client.expect_publish().await;
    assert_eq!(publish.packet_id.map(|i| i.get()), Some(7));
    proxy.cut_on(Dir::ToClient, PacketType::PubRel, moment);
    broker.send(pubrel(7)).await;
    assert!(
        proxy.wait_cuts(1, Duration::from_secs(10)).await,
        "the PUBREL did not trigger the cut"
    );
    // Whatever got through arrives before the end of the stream.
    let mut got_pubrel = false;
    for _ in 0..4 {
        match client.recv_within(Duration::from_secs(5)).await {
            Received::Packet(Packet::PubRel(_)) => got_pubrel = true,
            Received::Packet(p) => panic!("unexpected {p:?}"),
            Received::Closed => break,
            Received::Nothing => panic!("the cut did not close the client's side"),
        }
    }
    assert_eq!(got_pubrel, moment == Moment::After, "{moment:?}");

    let (mut client, mut broker) = link(&proxy, &upstream).await;
    broker.send(qos2("st/x", "m", 7)).await;
    client.expect_publish().await;
    broker.send(qos2("st/marker", "end", 8)).await;
    broker.send(pubrel(8)).await;
    broker.send(qos2("st/marker", "end", 8)).await;
    for kind in [PacketType::Publish, PacketType::PubRel, PacketType::Publish] {
        client.expect(kind).await;
    }
    let mut listed = Vec::new();
    for _ in 0..500 {
        listed = proxy.republished_after_pubrel(Dir::ToClient);
        if listed.iter().any(|(topic, _)| topic == "st/marker") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        listed.iter().any(|(topic, _)| topic == "st/marker"),
        "the marker was never listed: {listed:?}"
    );
    assert!(proxy.republished_after_pubrel(Dir::ToBroker).is_empty());
    listed
        .into_iter()
        .map(|(topic, payload)| (topic, payload.to_vec()))
        .collect()
}

/// A PUBREL the cut kept from the client released nothing there: the
/// client still holds the identifier and must take the PUBLISH sent again
/// for a duplicate, so the proxy must not excuse a second delivery of it.
#[tokio::test]
async fn a_pubrel_cut_off_before_the_client_got_it_releases_nothing() {
    let listed = resend_after_a_cut_at_the_pubrel(Moment::Before).await;
    assert_eq!(
        listed,
        vec![("st/marker".to_owned(), b"end".to_vec())],
        "only the marker was sent again after a PUBREL the client got"
    );
}

/// A PUBREL forwarded whole before the cut did release the identifier:
/// the PUBLISH sent again afterwards is listed.
#[tokio::test]
async fn a_pubrel_forwarded_before_the_cut_counts() {
    let listed = resend_after_a_cut_at_the_pubrel(Moment::After).await;
    assert_eq!(
        listed,
        vec![
            ("st/x".to_owned(), b"m".to_vec()),
            ("st/marker".to_owned(), b"end".to_vec()),
        ]
    );
}
