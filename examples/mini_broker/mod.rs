//! A minimal MQTT broker on 127.0.0.1, written with plover's own codec, so
//! that `showcase` runs on a machine without mosquitto. Enough for a demo,
//! not for real use.
//!
//! What it does: CONNECT/CONNACK in MQTT 3.1.1 and 5.0; SUBSCRIBE and
//! UNSUBSCRIBE with `+` and `#` (`plover::topic::matches`), 5.0
//! Subscription Identifiers, No Local, Retain As Published and Retain
//! Handling; PUBLISH at QoS 0, 1 and 2 from clients (delivered at QoS 0 or
//! 1), with PUBACK / PUBREC / PUBCOMP; retained messages; the will when a
//! client vanishes without DISCONNECT (or disconnects with 5.0's
//! "Disconnect with Will Message"); keepalive; PINGREQ; DISCONNECT.
//!
//! What it does not: authentication (anyone may connect), persistent
//! sessions (every CONNACK says "no session present", and nothing is kept
//! for a client that is away), redelivery, shared subscriptions, topic
//! aliases, will delays and message expiry. Each connection's outgoing
//! queue is unbounded, which a real broker cannot afford.
//!
//! This directory is not an example of its own: cargo only builds
//! `examples/*.rs` and `examples/*/main.rs`.

// Each includer uses a different part of it.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::num::{NonZeroU16, NonZeroU32};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::BytesMut;
use plover::codec::{
    ConnAck, ConnAckProperties, ConnectReasonCode, DisconnectReasonCode, MqttString, Packet,
    ProtocolVersion, PubAck, PubComp, PubRec, Publish, PublishProperties, QoS, RetainHandling,
    SubAck, SubAckReasonCode, SubscriptionIdentifiers, UnsubAck, UnsubAckReasonCode, decode,
};
use plover::topic::matches;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};

/// The largest packet accepted.
const MAX_PACKET: usize = 1 << 20;

/// How long a new connection may take to send its CONNECT.
const CONNECT_WAIT: Duration = Duration::from_secs(10);

/// A running broker; it stops when dropped.
pub struct MiniBroker {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl MiniBroker {
    /// Listens on a free port of 127.0.0.1.
    pub async fn start() -> io::Result<MiniBroker> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let task = tokio::spawn(async move {
            // The connections live in this set: when the accept loop is
            // aborted, dropping the set aborts them all.
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        if let Ok((stream, _)) = accepted {
                            let _ = stream.set_nodelay(true);
                            connections.spawn(serve(shared.clone(), stream));
                        }
                    }
                    // Reap finished connections as they end.
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        Ok(MiniBroker { addr, task })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Stops it: every connection is closed at once (no DISCONNECT).
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for MiniBroker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the connections share.
#[derive(Default)]
struct Shared {
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock, but a poisoned lock would
        // still hold consistent data: every change is finished in place.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Default)]
struct State {
    next_connection: u64,
    peers: HashMap<u64, Peer>,
    /// Client id to the connection that has it.
    by_client_id: HashMap<String, u64>,
    /// Topic to its retained message.
    retained: BTreeMap<String, Publish>,
}

/// A connected client, as the router sees it.
struct Peer {
    version: ProtocolVersion,
    outbox: mpsc::UnboundedSender<Packet>,
    subscriptions: Vec<Sub>,
    next_packet_id: u16,
    /// Closes the connection (another client took its client id).
    kick: Option<oneshot::Sender<()>>,
}

struct Sub {
    filter: String,
    qos: QoS,
    no_local: bool,
    retain_as_published: bool,
    identifier: Option<NonZeroU32>,
}

impl Peer {
    fn packet_id(&mut self) -> NonZeroU16 {
        self.next_packet_id = self.next_packet_id.wrapping_add(1).max(1);
        NonZeroU16::new(self.next_packet_id).unwrap_or(NonZeroU16::MIN)
    }

    /// Queues `message` for this client at `qos`.
    fn deliver(
        &mut self,
        message: &Publish,
        qos: QoS,
        retain: bool,
        identifiers: SubscriptionIdentifiers,
    ) {
        let packet_id = (qos != QoS::AtMostOnce).then(|| self.packet_id());
        let mut properties = message.properties.clone();
        properties.topic_alias = None;
        properties.subscription_identifiers = identifiers;
        let publish = Publish::new(message.topic.clone(), message.payload.clone())
            .with_qos(qos, packet_id)
            .with_retain(retain)
            .with_properties(properties);
        let _ = self.outbox.send(Packet::Publish(publish));
    }
}

impl State {
    /// Stores or clears the retained message, then delivers to every
    /// matching subscription: once per client, at the highest QoS granted
    /// among its matching subscriptions, carrying all their identifiers.
    fn publish(&mut self, from: Option<u64>, message: &Publish) {
        if message.retain {
            if message.payload.is_empty() {
                self.retained.remove(message.topic.as_str());
            } else {
                let mut kept = message.clone();
                kept.packet_id = None;
                kept.dup = false;
                self.retained.insert(message.topic.to_string(), kept);
            }
        }
        let topic = message.topic.as_str();
        for (id, peer) in self.peers.iter_mut() {
            let mut best: Option<QoS> = None;
            let mut identifiers = SubscriptionIdentifiers::new();
            let mut retain = false;
            for sub in &peer.subscriptions {
                if !matches(&sub.filter, topic) || (sub.no_local && from == Some(*id)) {
                    continue;
                }
                let qos = sub.qos.min(message.qos);
                best = Some(best.map_or(qos, |b| b.max(qos)));
                if let Some(identifier) = sub.identifier {
                    identifiers.push(identifier);
                }
                // Live messages go out with retain 0 unless the
                // subscription asked for the publisher's flag (5.0).
                retain |= sub.retain_as_published && message.retain;
            }
            if let Some(qos) = best {
                peer.deliver(message, qos, retain, identifiers);
            }
        }
    }
}

/// Why a connection ended.
enum End {
    /// DISCONNECT: no will.
    Clean,
    /// 5.0 DISCONNECT with "Disconnect with Will Message".
    WithWill,
    /// EOF, error, keepalive timeout, protocol violation, takeover.
    Abrupt,
}

async fn serve(shared: Arc<Shared>, stream: TcpStream) {
    let (mut reader, mut writer) = stream.into_split();
    let mut buf = BytesMut::with_capacity(4096);

    // The first packet must be CONNECT. It says its own protocol version,
    // and the codec reads it in that version whatever it is told.
    let connect = match tokio::time::timeout(CONNECT_WAIT, async {
        loop {
            match decode(&mut buf, ProtocolVersion::V5, MAX_PACKET) {
                Ok(Some(Packet::Connect(connect))) => return Some(connect),
                Ok(Some(_)) | Err(_) => return None,
                Ok(None) => match reader.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                },
            }
        }
    })
    .await
    {
        Ok(Some(connect)) => connect,
        _ => return,
    };
    let version = connect.protocol;

    // A client without an id gets one.
    let mut assigned = None;
    let client_id = if connect.client_id.is_empty() {
        let id = format!("mini-broker-{}", random_suffix());
        assigned = Some(id.clone());
        id
    } else {
        connect.client_id.to_string()
    };
    let will = connect.will.clone().map(|will| {
        let mut properties = PublishProperties::new();
        properties.payload_format_indicator = will.properties.payload_format_indicator;
        properties.content_type = will.properties.content_type.clone();
        properties.response_topic = will.properties.response_topic.clone();
        properties.correlation_data = will.properties.correlation_data.clone();
        properties.user_properties = will.properties.user_properties.clone();
        Publish::new(will.topic, will.payload)
            .with_qos(will.qos.min(QoS::AtLeastOnce), None)
            .with_retain(will.retain)
            .with_properties(properties)
    });

    // The writer: one task per connection encodes and sends what the
    // router and the reader queue, in order.
    let (outbox, mut queued) = mpsc::unbounded_channel::<Packet>();
    let write_task = tokio::spawn(async move {
        let mut out = BytesMut::with_capacity(4096);
        while let Some(packet) = queued.recv().await {
            out.clear();
            if packet.encode(version, &mut out).is_err() {
                continue;
            }
            // Send whatever else is queued along with it.
            while let Ok(more) = queued.try_recv() {
                let _ = more.encode(version, &mut out);
            }
            if writer.write_all(&out).await.is_err() {
                break;
            }
        }
        let _ = writer.shutdown().await;
    });

    let mut connack = ConnAck::new(false, ConnectReasonCode::Success);
    if version == ProtocolVersion::V5 {
        connack.properties = ConnAckProperties {
            assigned_client_identifier: assigned
                .as_deref()
                .and_then(|id| MqttString::try_from(id).ok()),
            shared_subscription_available: Some(false),
            ..ConnAckProperties::default()
        };
    }

    // Register, taking the client id over from a connection that has it.
    let (kick_tx, mut kick) = oneshot::channel();
    let me = {
        let mut state = shared.lock();
        state.next_connection += 1;
        let me = state.next_connection;
        if let Some(old) = state.by_client_id.insert(client_id.clone(), me)
            && let Some(kick) = state.peers.get_mut(&old).and_then(|p| p.kick.take())
        {
            let _ = kick.send(());
        }
        let _ = outbox.send(Packet::ConnAck(Box::new(connack)));
        state.peers.insert(
            me,
            Peer {
                version,
                outbox: outbox.clone(),
                subscriptions: Vec::new(),
                next_packet_id: 0,
                kick: Some(kick_tx),
            },
        );
        me
    };

    // Silence for one and a half keepalives ends the connection
    // [MQTT-3.1.2-24]; 0 means no keepalive.
    let idle = match connect.keep_alive {
        0 => None,
        secs => Some(Duration::from_millis(u64::from(secs) * 1500)),
    };
    let mut awaiting_pubrel = HashSet::new();
    let end = 'conn: loop {
        loop {
            match decode(&mut buf, version, MAX_PACKET) {
                Ok(Some(packet)) => {
                    if let Some(end) =
                        handle(&shared, me, &outbox, &mut awaiting_pubrel, version, packet)
                    {
                        break 'conn end;
                    }
                }
                Ok(None) => break,
                Err(_) => break 'conn End::Abrupt,
            }
        }
        let read = async {
            match idle {
                Some(limit) => tokio::time::timeout(limit, reader.read_buf(&mut buf))
                    .await
                    .unwrap_or(Ok(0)),
                None => reader.read_buf(&mut buf).await,
            }
        };
        tokio::select! {
            n = read => match n {
                Ok(0) | Err(_) => break End::Abrupt,
                Ok(_) => {}
            },
            _ = &mut kick => break End::Abrupt,
        }
    };

    {
        let mut state = shared.lock();
        state.peers.remove(&me);
        if state.by_client_id.get(&client_id) == Some(&me) {
            state.by_client_id.remove(&client_id);
        }
        if let (End::Abrupt | End::WithWill, Some(will)) = (end, will) {
            state.publish(None, &will);
        }
    }
    drop(outbox);
    let _ = write_task.await;
}

/// Handles one packet from a connected client; `Some` ends the connection.
fn handle(
    shared: &Shared,
    me: u64,
    outbox: &mpsc::UnboundedSender<Packet>,
    awaiting_pubrel: &mut HashSet<NonZeroU16>,
    version: ProtocolVersion,
    packet: Packet,
) -> Option<End> {
    match packet {
        Packet::Publish(publish) => {
            // No topic aliases were offered, so a topic must be there.
            if publish.topic.is_empty() {
                return Some(End::Abrupt);
            }
            let route = match (publish.qos, publish.packet_id) {
                (QoS::AtMostOnce, _) => true,
                (QoS::AtLeastOnce, Some(id)) => {
                    let _ = outbox.send(Packet::PubAck(PubAck::new(id)));
                    true
                }
                (QoS::ExactlyOnce, Some(id)) => {
                    // Delivered on the first PUBLISH; a resent one before
                    // the PUBREL is only acknowledged again.
                    let _ = outbox.send(Packet::PubRec(PubRec::new(id)));
                    awaiting_pubrel.insert(id)
                }
                _ => return Some(End::Abrupt),
            };
            if route {
                shared.lock().publish(Some(me), &publish);
            }
        }
        Packet::PubRel(rel) => {
            awaiting_pubrel.remove(&rel.packet_id);
            let _ = outbox.send(Packet::PubComp(PubComp::new(rel.packet_id)));
        }
        // Acknowledgements of what we sent: nothing is redelivered, so
        // nothing to do.
        Packet::PubAck(_) | Packet::PubRec(_) | Packet::PubComp(_) => {}
        Packet::Subscribe(subscribe) => {
            let mut state = shared.lock();
            let identifier = subscribe.properties.subscription_identifier;
            let mut codes = Vec::with_capacity(subscribe.filters.len());
            let mut retained = Vec::new();
            if let Some(peer) = state.peers.get_mut(&me) {
                for (filter, options) in &subscribe.filters {
                    // Deliveries are at QoS 0 or 1, so that is the most granted.
                    let qos = options.qos.min(QoS::AtLeastOnce);
                    let sub = Sub {
                        filter: filter.to_string(),
                        qos,
                        no_local: options.no_local,
                        retain_as_published: options.retain_as_published,
                        identifier,
                    };
                    let existed = match peer
                        .subscriptions
                        .iter_mut()
                        .find(|s| s.filter == sub.filter)
                    {
                        Some(old) => {
                            *old = sub;
                            true
                        }
                        None => {
                            peer.subscriptions.push(sub);
                            false
                        }
                    };
                    codes.push(match qos {
                        QoS::AtMostOnce => SubAckReasonCode::GrantedQoS0,
                        _ => SubAckReasonCode::GrantedQoS1,
                    });
                    let send_retained = match options.retain_handling {
                        RetainHandling::SendAtSubscribe => true,
                        RetainHandling::SendAtSubscribeIfNew => !existed,
                        RetainHandling::DoNotSend => false,
                    };
                    if send_retained {
                        retained.push((filter.to_string(), qos));
                    }
                }
            }
            let _ = outbox.send(Packet::SubAck(SubAck {
                packet_id: subscribe.packet_id,
                reason_codes: codes,
                properties: Default::default(),
            }));
            // Retained messages follow the SUBACK [MQTT-3.8.4-3], with the
            // retain flag set.
            let matching: Vec<(Publish, QoS)> = retained
                .iter()
                .flat_map(|(filter, qos)| {
                    state
                        .retained
                        .values()
                        .filter(|m| matches(filter, m.topic.as_str()))
                        .map(|m| (m.clone(), m.qos.min(*qos)))
                        .collect::<Vec<_>>()
                })
                .collect();
            if let Some(peer) = state.peers.get_mut(&me) {
                for (message, qos) in matching {
                    let mut ids = SubscriptionIdentifiers::new();
                    if let Some(id) = identifier {
                        ids.push(id);
                    }
                    peer.deliver(&message, qos, true, ids);
                }
            }
        }
        Packet::Unsubscribe(unsubscribe) => {
            let mut state = shared.lock();
            let mut codes = Vec::new();
            if let Some(peer) = state.peers.get_mut(&me) {
                for filter in &unsubscribe.filters {
                    let before = peer.subscriptions.len();
                    peer.subscriptions.retain(|s| s.filter != filter.as_str());
                    codes.push(if peer.subscriptions.len() < before {
                        UnsubAckReasonCode::Success
                    } else {
                        UnsubAckReasonCode::NoSubscriptionExisted
                    });
                }
            }
            if version == ProtocolVersion::V311 {
                codes.clear(); // 3.1.1's UNSUBACK has no reason codes
            }
            let _ = outbox.send(Packet::UnsubAck(UnsubAck {
                packet_id: unsubscribe.packet_id,
                reason_codes: codes,
                properties: Default::default(),
            }));
        }
        Packet::PingReq => {
            let _ = outbox.send(Packet::PingResp);
        }
        Packet::Disconnect(disconnect) => {
            return Some(
                if disconnect.reason_code == DisconnectReasonCode::DisconnectWithWillMessage {
                    End::WithWill
                } else {
                    End::Clean
                },
            );
        }
        // A second CONNECT [MQTT-3.1.0-2], AUTH (no enhanced
        // authentication here), or a packet only a broker sends.
        _ => return Some(End::Abrupt),
    }
    None
}

/// A number to make assigned client ids unique.
fn random_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u8(0);
    hasher.finish() & 0xFFFF_FFFF
}
