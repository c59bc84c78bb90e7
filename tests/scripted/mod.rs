//! A scripted broker for behaviour a real broker will not show on demand:
//! a TCP listener on 127.0.0.1, port 0, that accepts one connection and
//! plays a script written as ordinary async code — expect a packet
//! (decoded with `plover::codec::decode`), send packets or raw bytes,
//! expect silence or the end of the connection. Every wait is bounded, and
//! a failed expectation panics with the packets seen so far.
//!
//! ```ignore
//! let broker = Scripted::start(|mut peer| async move {
//!     peer.handshake(ConnAckProperties::default()).await;
//!     let sub = peer.expect_subscribe().await;
//!     peer.suback(&sub).await;
//!     peer.send(Packet::Publish(Publish::new("a/b".try_into().unwrap(), "hi"))).await;
//!     peer.expect_disconnect().await;
//! })
//! .await;
//! client.connect("127.0.0.1", broker.port, 30).await?;
//! ...
//! broker.finish().await; // the script ran to its end (or its panic is raised here)
//! ```
//!
//! Scripts that must wait for the test (say, until it dropped something)
//! take a channel or `tokio::sync::Notify` into the closure.
#![allow(dead_code)] // each test binary uses a different part of it

use std::future::Future;
use std::time::Duration;

use bytes::BytesMut;
use plover::codec::{
    self, AckProperties, Auth, ConnAck, ConnAckProperties, Connect, ConnectReasonCode, Disconnect,
    Packet, PacketType, ProtocolVersion, PubAck, PubComp, PubRec, PubRel, Publish, SubAck,
    SubAckReasonCode, Subscribe, UnsubAck, Unsubscribe,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The default bound on every wait of a script.
pub const STEP: Duration = Duration::from_secs(10);

/// A listening scripted broker. Accept the connection with
/// [`accept`](Listener::accept) (or let [`Scripted::start`] do it).
pub struct Listener {
    listener: TcpListener,
    pub port: u16,
}

impl Listener {
    /// Listens on 127.0.0.1 on a free port.
    pub async fn bind() -> Listener {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local address").port();
        Listener { listener, port }
    }

    /// The next connection, within [`STEP`].
    pub async fn accept(&self) -> Peer {
        let (stream, _) = tokio::time::timeout(STEP, self.listener.accept())
            .await
            .expect("timed out waiting for the client to connect")
            .expect("accept");
        stream.set_nodelay(true).ok();
        Peer::new(stream)
    }

    /// The next connection if one comes within `within`: for checking
    /// that a client does *not* connect again.
    pub async fn try_accept(&self, within: Duration) -> Option<Peer> {
        match tokio::time::timeout(within, self.listener.accept()).await {
            Ok(Ok((stream, _))) => {
                stream.set_nodelay(true).ok();
                Some(Peer::new(stream))
            }
            _ => None,
        }
    }
}

/// A script running on its own task against one connection.
pub struct Scripted {
    /// Where the client should connect (on 127.0.0.1).
    pub port: u16,
    task: JoinHandle<()>,
}

impl Scripted {
    /// Listens, and runs `script` on the first connection.
    pub async fn start<F, Fut>(script: F) -> Scripted
    where
        F: FnOnce(Peer) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = Listener::bind().await;
        let port = listener.port;
        let task = tokio::spawn(async move {
            let peer = listener.accept().await;
            script(peer).await;
        });
        Scripted { port, task }
    }

    /// Waits (at most 30 s) for the script to end; a script that panicked
    /// fails the test here with its own message.
    pub async fn finish(self) {
        match tokio::time::timeout(Duration::from_secs(30), self.task).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Ok(Err(e)) => panic!("the script was cancelled: {e}"),
            Err(_) => panic!("the script did not finish within 30 s"),
        }
    }

    /// Stops the script where it is (and closes its connection).
    pub fn abort(self) {
        self.task.abort();
    }
}

/// What came, or did not, within a bounded wait.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // short-lived; a Box would only get in the way
pub enum Received {
    Packet(Packet),
    /// The client closed the connection.
    Closed,
    /// Nothing within the time.
    Nothing,
}

/// One connection, seen from the broker's side.
pub struct Peer {
    stream: TcpStream,
    buf: BytesMut,
    /// Learnt from the CONNECT; 5.0 until then (CONNECT itself decodes the
    /// same either way).
    pub version: ProtocolVersion,
    /// Answer PINGREQ with PINGRESP on the way, without showing it to the
    /// script (default true).
    pub answer_pings: bool,
    /// The bound on each wait (default [`STEP`]).
    pub timeout: Duration,
    /// The packets received so far, PINGREQs included.
    pub transcript: Vec<Packet>,
}

macro_rules! expect_packet {
    ($($(#[$meta:meta])* $name:ident => $variant:ident($ty:ty);)*) => {
        $(
            $(#[$meta])*
            pub async fn $name(&mut self) -> $ty {
                match self.recv().await {
                    Packet::$variant(p) => p,
                    other => self.fail(&format!(
                        "expected {}, got {other:?}",
                        stringify!($variant)
                    )),
                }
            }
        )*
    };
}

impl Peer {
    pub fn new(stream: TcpStream) -> Peer {
        Peer {
            stream,
            buf: BytesMut::with_capacity(4096),
            version: ProtocolVersion::V5,
            answer_pings: true,
            timeout: STEP,
            transcript: Vec::new(),
        }
    }

    /// Panics with `what` and the transcript.
    pub fn fail(&self, what: &str) -> ! {
        panic!(
            "scripted broker: {what}\npackets received so far:\n{:#?}",
            self.transcript
        )
    }

    /// The next packet, within `within`. Decode errors fail the script.
    pub async fn recv_within(&mut self, within: Duration) -> Received {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match codec::decode(&mut self.buf, self.version, usize::MAX) {
                Ok(Some(packet)) => {
                    if let Packet::Connect(c) = &packet {
                        self.version = c.protocol;
                    }
                    self.transcript.push(packet.clone());
                    if self.answer_pings && packet == Packet::PingReq {
                        self.send(Packet::PingResp).await;
                        continue;
                    }
                    return Received::Packet(packet);
                }
                Ok(None) => {}
                Err(e) => self.fail(&format!("the client sent a malformed packet: {e}")),
            }
            match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf)).await {
                Err(_) => return Received::Nothing,
                Ok(Ok(0)) | Ok(Err(_)) => return Received::Closed,
                Ok(Ok(_)) => {}
            }
        }
    }

    /// The next packet; fails on timeout or a closed connection.
    pub async fn recv(&mut self) -> Packet {
        match self.recv_within(self.timeout).await {
            Received::Packet(p) => p,
            Received::Closed => self.fail("the client closed the connection"),
            Received::Nothing => self.fail(&format!("nothing came within {:?}", self.timeout)),
        }
    }

    expect_packet! {
        /// Expects CONNECT (and speaks its version from then on).
        expect_connect => Connect(Box<Connect>);
        expect_publish => Publish(Publish);
        expect_puback => PubAck(PubAck);
        expect_pubrec => PubRec(PubRec);
        expect_pubrel => PubRel(PubRel);
        expect_pubcomp => PubComp(PubComp);
        expect_subscribe => Subscribe(Subscribe);
        expect_unsubscribe => Unsubscribe(Unsubscribe);
        expect_disconnect => Disconnect(Disconnect);
        /// Expects AUTH (5.0).
        expect_auth => Auth(Auth);
    }

    /// Expects a packet of this type, whatever it holds.
    pub async fn expect(&mut self, packet_type: PacketType) -> Packet {
        let p = self.recv().await;
        if p.packet_type() != packet_type {
            self.fail(&format!("expected {packet_type:?}, got {p:?}"));
        }
        p
    }

    /// Expects that nothing but PINGREQs comes for `quiet`.
    pub async fn expect_silence(&mut self, quiet: Duration) {
        match self.recv_within(quiet).await {
            Received::Nothing => {}
            Received::Closed => self.fail("expected silence, the client closed the connection"),
            Received::Packet(p) => self.fail(&format!("expected silence, got {p:?}")),
        }
    }

    /// Expects the client to close the connection (after a DISCONNECT, or
    /// without one); returns the packets that came first.
    pub async fn expect_closed(&mut self) -> Vec<Packet> {
        let mut before = Vec::new();
        loop {
            match self.recv_within(self.timeout).await {
                Received::Closed => return before,
                Received::Packet(p) => before.push(p),
                Received::Nothing => self.fail("the client did not close the connection"),
            }
        }
    }

    /// Writes a packet in the connection's version.
    pub async fn send(&mut self, packet: Packet) {
        let mut buf = BytesMut::new();
        if let Err(e) = packet.encode(self.version, &mut buf) {
            self.fail(&format!("cannot encode {packet:?}: {e}"));
        }
        self.send_bytes(&buf).await;
    }

    /// Writes raw bytes (a malformed packet, half a packet, ...).
    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        let write = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        };
        match tokio::time::timeout(self.timeout, write).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => self.fail(&format!("write failed: {e}")),
            Err(_) => self.fail("write timed out (the client is not reading)"),
        }
    }

    /// Sends a CONNACK accepting the connection, with these properties.
    pub async fn connack(&mut self, properties: ConnAckProperties) {
        let mut ack = ConnAck::new(false, ConnectReasonCode::Success);
        ack.properties = properties;
        self.send(Packet::ConnAck(Box::new(ack))).await;
    }

    /// Expects CONNECT and accepts it; returns the CONNECT.
    pub async fn handshake(&mut self, properties: ConnAckProperties) -> Connect {
        let connect = self.expect_connect().await;
        self.connack(properties).await;
        *connect
    }

    /// Grants every filter of `subscribe` the QoS it asked for.
    pub async fn suback(&mut self, subscribe: &Subscribe) {
        let reason_codes = subscribe
            .filters
            .iter()
            .map(|(_, o)| match o.qos {
                plover::QoS::AtMostOnce => SubAckReasonCode::GrantedQoS0,
                plover::QoS::AtLeastOnce => SubAckReasonCode::GrantedQoS1,
                plover::QoS::ExactlyOnce => SubAckReasonCode::GrantedQoS2,
            })
            .collect();
        self.send(Packet::SubAck(SubAck {
            packet_id: subscribe.packet_id,
            reason_codes,
            properties: AckProperties::default(),
        }))
        .await;
    }

    /// Expects SUBSCRIBE and grants it; returns the SUBSCRIBE.
    pub async fn accept_subscribe(&mut self) -> Subscribe {
        let subscribe = self.expect_subscribe().await;
        self.suback(&subscribe).await;
        subscribe
    }

    /// Answers `unsubscribe` with success for every filter.
    pub async fn unsuback(&mut self, unsubscribe: &Unsubscribe) {
        // 3.1.1's UNSUBACK has no reason codes.
        let n = match self.version {
            ProtocolVersion::V5 => unsubscribe.filters.len(),
            ProtocolVersion::V311 => 0,
        };
        let ack = UnsubAck {
            packet_id: unsubscribe.packet_id,
            reason_codes: vec![plover::codec::UnsubAckReasonCode::Success; n],
            properties: AckProperties::default(),
        };
        self.send(Packet::UnsubAck(ack)).await;
    }

    /// Completes the broker's side of a publish from the client: PUBACK for
    /// QoS 1, PUBREC / PUBREL / PUBCOMP for QoS 2, nothing for QoS 0.
    pub async fn ack_publish(&mut self, publish: &Publish) {
        let Some(id) = publish.packet_id else {
            return;
        };
        match publish.qos {
            plover::QoS::AtMostOnce => {}
            plover::QoS::AtLeastOnce => self.send(Packet::PubAck(PubAck::new(id))).await,
            plover::QoS::ExactlyOnce => {
                self.send(Packet::PubRec(PubRec::new(id))).await;
                let rel = self.expect_pubrel().await;
                self.send(Packet::PubComp(PubComp::new(rel.packet_id)))
                    .await;
            }
        }
    }
}
