//! The sans-IO MQTT session: every protocol rule of the client side, with no
//! sockets, no tasks and no clock.
//!
//! In the style of `quinn-proto` and `rustls`, a [`Session`] is driven by
//! calls, and answers through queues:
//!
//! - inputs are `handle_*`: a new transport is up ([`handle_connect`]), a
//!   packet arrived ([`handle_packet`]), the user asked for something
//!   ([`handle_publish`], [`handle_subscribe`], [`handle_unsubscribe`],
//!   [`handle_disconnect`]), a deadline passed ([`handle_timeout`]), the
//!   transport broke ([`handle_connection_lost`]);
//! - outputs are `poll_*`: bytes to write ([`poll_transmit`]), the next
//!   deadline ([`poll_timeout`]), and [`Event`]s for the application
//!   ([`poll_event`]).
//!
//! After every `handle_*` call the driver drains all three outputs: it writes
//! what `poll_transmit` returns, hands out every event, and arms one timer
//! for `poll_timeout`. Time is always passed in as `now`, so tests can run
//! every flow, keepalive and timeouts included, in virtual time.
//!
//! Requests are identified by a [`RequestId`] the driver picks; their
//! completions come back as events carrying it. Packet identifiers are the
//! session's own business.
//!
//! [`handle_connect`]: Session::handle_connect
//! [`handle_packet`]: Session::handle_packet
//! [`handle_publish`]: Session::handle_publish
//! [`handle_subscribe`]: Session::handle_subscribe
//! [`handle_unsubscribe`]: Session::handle_unsubscribe
//! [`handle_disconnect`]: Session::handle_disconnect
//! [`handle_timeout`]: Session::handle_timeout
//! [`handle_connection_lost`]: Session::handle_connection_lost
//! [`poll_transmit`]: Session::poll_transmit
//! [`poll_timeout`]: Session::poll_timeout
//! [`poll_event`]: Session::poll_event

mod packet_ids;

use crate::id_map::IdMap;

use std::collections::{HashMap, HashSet, VecDeque};
use std::num::NonZeroU16;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::auth::{AuthError, Authenticator};
use crate::codec::{
    AckProperties, ConnAck, Connect, ConnectProperties, ConnectReasonCode, DecodeError, Disconnect,
    DisconnectReasonCode, EncodeError, LastWill, MqttString, Packet, PacketType, ProtocolVersion,
    PubAck, PubAckReasonCode, PubComp, PubRec, PubRel, PubRelReasonCode, Publish, QoS, SubAck,
    SubAckReasonCode, Subscribe, SubscribeProperties, SubscriptionOptions, TopicFilter, TopicName,
    UnsubAck, Unsubscribe, UnsubscribeProperties,
};
use crate::codec::{Auth, AuthReasonCode};
use packet_ids::PacketIds;

/// Identifies one user request (publish, subscribe, unsubscribe) across the
/// session's events. The driver chooses them; they only need to be unique
/// among requests in progress.
pub type RequestId = u64;

/// The request id of subscriptions the session re-establishes on its own
/// after the broker lost our session; drivers have no waiter for it.
pub const RESUBSCRIBE_REQUEST: RequestId = u64::MAX;

/// Payloads of at least this many bytes are transmitted from the message's
/// own buffer instead of being copied into the outgoing buffer (see
/// [`Session::poll_transmit`]). Below it, one copy and one write beat the
/// extra write a separate buffer costs; above it, the copy (and the memory
/// the outgoing buffer grows by) is what costs.
pub const ZERO_COPY_PAYLOAD: usize = 16 * 1024;

/// A subscription the broker granted, remembered for resubscribing.
#[derive(Debug, Clone, PartialEq)]
struct ActiveSubscription {
    filter: TopicFilter,
    options: SubscriptionOptions,
    properties: SubscribeProperties,
}

/// What the session needs to know to connect. `Debug` hides the password.
#[derive(Clone)]
pub struct SessionConfig {
    /// The protocol version to speak.
    pub version: ProtocolVersion,
    /// Client identifier; empty asks the broker to assign one.
    pub client_id: MqttString,
    /// Start a new session (3.1.1 Clean Session / 5.0 Clean Start). In 5.0
    /// only the first connection starts clean; reconnects ask to resume.
    pub clean_start: bool,
    /// Keepalive in seconds (0 turns keepalive off).
    pub keep_alive: u16,
    /// The will message.
    pub will: Option<LastWill>,
    /// User name.
    pub username: Option<MqttString>,
    /// Password.
    pub password: Option<Bytes>,
    /// 5.0 CONNECT properties.
    pub connect_properties: ConnectProperties,
    /// Most outgoing QoS 1/2 messages in flight at once (paho's
    /// `max_inflight_messages`); 5.0's Receive Maximum from the broker can
    /// lower it further.
    pub max_inflight: u16,
    /// How long to wait for CONNACK.
    pub connect_timeout: Duration,
    /// Subscribe again to every granted subscription when the broker
    /// answers a (re)connect without a session for us.
    pub resubscribe: bool,
    /// 5.0: replace repeated topics of outgoing PUBLISHes by Topic Aliases,
    /// up to the broker's Topic Alias Maximum (off by default: it saves
    /// bandwidth, but a captured stream is harder to read).
    pub auto_topic_alias: bool,
}

impl std::fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionConfig")
            .field("version", &self.version)
            .field("client_id", &self.client_id)
            .field("clean_start", &self.clean_start)
            .field("keep_alive", &self.keep_alive)
            .field("will", &self.will)
            .field("username", &self.username)
            .field("password", &crate::codec::redacted(&self.password))
            .field("connect_properties", &self.connect_properties)
            .field("max_inflight", &self.max_inflight)
            .field("connect_timeout", &self.connect_timeout)
            .field("resubscribe", &self.resubscribe)
            .field("auto_topic_alias", &self.auto_topic_alias)
            .finish()
    }
}

impl SessionConfig {
    /// Defaults: clean start, 60 s keepalive, 20 messages in flight, 30 s
    /// to connect.
    pub fn new(version: ProtocolVersion, client_id: MqttString) -> Self {
        SessionConfig {
            version,
            client_id,
            clean_start: true,
            keep_alive: 60,
            will: None,
            username: None,
            password: None,
            connect_properties: ConnectProperties::default(),
            max_inflight: 20,
            connect_timeout: Duration::from_secs(30),
            resubscribe: true,
            auto_topic_alias: false,
        }
    }
}

/// How an outgoing publish ended, when the broker answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishOutcome {
    /// The packet identifier it travelled with (none for QoS 0).
    pub packet_id: Option<NonZeroU16>,
    /// PUBACK's (QoS 1) or PUBREC's (QoS 2) reason code; Success for QoS 0.
    /// A code of 0x80 or above means the broker refused the message.
    pub reason_code: PubAckReasonCode,
    /// QoS 2: PUBCOMP's reason code, once the exchange completed.
    pub complete_reason: Option<PubRelReasonCode>,
    /// Reason string and user properties of the acknowledgement (5.0).
    pub properties: AckProperties,
}

/// Something the application should know.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The broker accepted the connection.
    Connected(Box<ConnAck>),
    /// A message arrived (already acknowledged to the broker, or about to be).
    Message(Publish),
    /// A publish finished. QoS 0 completes when it is handed to the
    /// transport; QoS 1 on PUBACK; QoS 2 on PUBCOMP (or on a failing PUBREC).
    PublishDone {
        /// The request.
        request: RequestId,
        /// The broker's answer, or why there will be none.
        result: Result<PublishOutcome, RequestError>,
    },
    /// A subscribe finished.
    SubscribeDone {
        /// The request.
        request: RequestId,
        /// The SUBACK, or why there will be none.
        result: Result<SubAck, RequestError>,
    },
    /// An unsubscribe finished.
    UnsubscribeDone {
        /// The request.
        request: RequestId,
        /// The UNSUBACK, or why there will be none.
        result: Result<UnsubAck, RequestError>,
    },
    /// A subscription the session re-established on its own (the broker
    /// had lost our session, see [`SessionConfig::resubscribe`]) did not
    /// come back. The session forgets it; nobody else would hear of it.
    ResubscribeFailed {
        /// The filter.
        filter: TopicFilter,
        /// Why.
        error: ResubscribeError,
    },
    /// The connection is over: write out what [`Session::poll_transmit`]
    /// still returns, then close the transport.
    Closed(CloseReason),
}

/// Why a subscription the client re-established on its own after a
/// reconnect did not come back.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ResubscribeError {
    /// The broker refused it (a SUBACK failure code).
    #[error("refused by the broker: {0}")]
    Refused(SubAckReasonCode),
    /// It could not be sent: the new connection's CONNACK rules it out
    /// (no wildcards, shared subscriptions or subscription identifiers),
    /// or it is larger than the broker accepts.
    #[error("not sent: {0}")]
    NotSent(RequestError),
}

/// Why a request did not get an answer from the broker.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The connection ended first.
    #[error("connection closed before the broker answered: {0}")]
    ConnectionClosed(CloseReason),
    /// The packet could not be written (e.g. it exceeds the broker's
    /// Maximum Packet Size).
    #[error("cannot send: {0}")]
    Encode(#[from] EncodeError),
    /// The packet is larger than the broker accepts.
    #[error("packet of {size} bytes exceeds the broker's maximum packet size of {max} bytes")]
    PacketTooLarge {
        /// Size of the packet.
        size: usize,
        /// The broker's limit.
        max: usize,
    },
    /// The broker's Maximum QoS (5.0 CONNACK) is below the QoS asked for.
    #[error("the broker supports QoS up to {maximum}, not {requested}")]
    QoSNotSupported {
        /// The QoS of the publish.
        requested: QoS,
        /// The broker's maximum.
        maximum: QoS,
    },
    /// The broker does not support retained messages (5.0 CONNACK).
    #[error("the broker does not support retained messages")]
    RetainNotSupported,
    /// The message's Message Expiry Interval passed while it waited to be
    /// sent, so it was not sent.
    #[error("the message expired before it could be sent")]
    MessageExpired,
    /// A Topic Alias above the broker's Topic Alias Maximum (5.0 CONNACK).
    #[error("topic alias {alias} exceeds the broker's maximum of {maximum}")]
    TopicAliasInvalid {
        /// The alias asked for.
        alias: u16,
        /// The broker's maximum (0: no aliases).
        maximum: u16,
    },
    /// A wildcard filter, and the broker said it does not support them.
    #[error("the broker does not support wildcard subscriptions")]
    WildcardSubscriptionsNotSupported,
    /// A `$share/` filter, and the broker said it does not support them.
    #[error("the broker does not support shared subscriptions")]
    SharedSubscriptionsNotSupported,
    /// A Subscription Identifier, and the broker said it does not support them.
    #[error("the broker does not support subscription identifiers")]
    SubscriptionIdentifiersNotSupported,
}

/// A rule the broker broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// Bytes that are not a valid packet.
    #[error("malformed packet from the broker: {0}")]
    Decode(#[from] DecodeError),
    /// A packet a broker must not send, or not now (e.g. a PUBLISH before
    /// CONNACK).
    #[error("unexpected {0} from the broker")]
    UnexpectedPacket(PacketType),
    /// An acknowledgement for a packet identifier we are not waiting on.
    #[error("{packet} for packet identifier {id}, which is not in use")]
    UnknownPacketId {
        /// The acknowledgement.
        packet: PacketType,
        /// Its identifier.
        id: u16,
    },
    /// A SUBACK or UNSUBACK whose number of reason codes differs from the
    /// number of filters requested.
    #[error("{0} has the wrong number of reason codes")]
    WrongReasonCount(PacketType),
    /// A Topic Alias above the maximum we allow, or one never defined.
    #[error("invalid topic alias {0}")]
    TopicAliasInvalid(u16),
    /// More unacknowledged QoS 2 PUBLISHes than our Receive Maximum.
    #[error("the broker exceeded our receive maximum")]
    ReceiveMaximumExceeded,
    /// An AUTH or CONNACK naming another Authentication Method than ours.
    #[error("the broker answered with another authentication method")]
    AuthMethodMismatch,
    /// A CONNACK saying Session Present to a clean start: the broker claims
    /// a session we asked it to discard ([MQTT-3.2.2-4] has the client
    /// close the connection).
    #[error("the broker claims a session present after a clean start")]
    SessionPresentOnCleanStart,
}

impl From<ProtocolError> for DisconnectReasonCode {
    fn from(e: ProtocolError) -> Self {
        match e {
            ProtocolError::Decode(d) => d.into(),
            ProtocolError::TopicAliasInvalid(_) => DisconnectReasonCode::TopicAliasInvalid,
            ProtocolError::ReceiveMaximumExceeded => DisconnectReasonCode::ReceiveMaximumExceeded,
            _ => DisconnectReasonCode::ProtocolError,
        }
    }
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CloseReason {
    /// We disconnected on purpose.
    #[error("disconnected by the client")]
    Normal,
    /// The broker refused the connection.
    #[error("connection refused: {reason}{}", fmt_reason_string(.reason_string))]
    Refused {
        /// Why (3.1.1 return codes are mapped to these).
        reason: ConnectReasonCode,
        /// The broker's explanation (5.0).
        reason_string: Option<MqttString>,
        /// Another server to use (5.0, with 0x9C Use another server or
        /// 0x9D Server moved), if the broker named one.
        server_reference: Option<MqttString>,
    },
    /// The broker sent DISCONNECT (5.0).
    #[error("disconnected by the broker: {reason}{}", fmt_reason_string(.reason_string))]
    ServerDisconnect {
        /// Why.
        reason: DisconnectReasonCode,
        /// The broker's explanation.
        reason_string: Option<MqttString>,
        /// Another server to use, if the broker named one.
        server_reference: Option<MqttString>,
    },
    /// No CONNACK came within the connect timeout.
    #[error("no CONNACK from the broker in time")]
    ConnectTimeout,
    /// No PINGRESP (or anything else) came back in time.
    #[error("keepalive timeout: the broker stopped answering")]
    KeepAliveTimeout,
    /// The broker broke the protocol.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The transport failed or was closed by the peer.
    #[error("connection lost")]
    ConnectionLost,
    /// Our CONNECT could not be encoded (e.g. a password over 65,535 bytes).
    #[error("cannot send CONNECT: {0}")]
    InvalidConnect(EncodeError),
    /// Our side of an enhanced authentication exchange failed (a wrong
    /// secret, or a broker whose final data did not check out).
    #[error(transparent)]
    Authentication(#[from] AuthError),
}

/// ` (the reason string)`, or nothing: for error messages.
pub(crate) fn fmt_reason_string(s: &Option<MqttString>) -> String {
    match s {
        Some(s) => format!(" ({s})"),
        None => String::new(),
    }
}

/// Where an outgoing QoS 1/2 publish is in its exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// QoS 1, PUBLISH sent.
    PublishSentQos1,
    /// QoS 2, PUBLISH sent.
    PublishSentQos2,
    /// QoS 2, PUBREL sent.
    PubRelSent,
}

#[derive(Debug)]
struct Inflight {
    request: RequestId,
    /// Boxed, as in `queued`: moved between the queue, this map and the
    /// events as a pointer, not as the few hundred bytes of a `Publish`.
    publish: Box<Publish>,
    stage: Stage,
    /// Order of first sending, for replay in the original order.
    seq: u64,
    /// QoS 2: the PUBREC, kept to report in the outcome.
    pubrec: Option<PubRec>,
    /// When it was first sent: its Message Expiry Interval counts from
    /// here if it has to be queued again as a new message.
    sent_at: Option<Instant>,
}

#[derive(Debug)]
struct PendingRequest {
    request: RequestId,
    packet: Packet,
    /// Filters asked for, to check the acknowledgement's count.
    filters: usize,
    /// Order of sending, to ask again in the same order after a reconnect.
    seq: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No transport.
    Idle,
    /// CONNECT sent, waiting for CONNACK.
    Connecting,
    /// CONNACK received.
    Connected,
    /// The user asked to disconnect; finishing what is in flight first.
    Draining,
    /// Over; the driver closes the transport.
    Closed,
}

/// The client side of an MQTT session. See the [module docs](self).
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    state: State,
    ids: PacketIds,
    inflight: IdMap<u16, Inflight>,
    next_seq: u64,
    /// Publishes waiting to be sent, in order, with when their Message
    /// Expiry Interval started counting (when queued, or when first sent
    /// for one queued again after a reconnect).
    queued: VecDeque<(RequestId, Box<Publish>, Option<Instant>)>,
    /// SUBSCRIBE / UNSUBSCRIBE waiting for their acknowledgement, by id.
    requests: IdMap<u16, PendingRequest>,
    /// Subscribe / unsubscribe requests waiting for a connection.
    queued_requests: VecDeque<(RequestId, Packet, usize)>,
    /// Incoming QoS 2 packet identifiers between PUBREC and PUBREL.
    incoming_qos2: HashSet<u16>,
    /// Topic aliases the broker defined on this connection.
    incoming_aliases: HashMap<u16, TopicName>,
    /// Granted subscriptions, in the order first granted.
    subscriptions: Vec<ActiveSubscription>,
    tx: BytesMut,
    /// Bytes to transmit before `tx`, in order: what `tx` held when a
    /// large payload was queued, then the payload itself, which is sent
    /// from where it lies instead of being copied into `tx`.
    tx_chunks: VecDeque<Bytes>,
    /// QoS 0 publishes written into `tx` and not yet handed out by
    /// `poll_transmit`: they complete when the driver takes the bytes, so
    /// the caller's queue bound also bounds `tx`.
    qos0_unsent: Vec<RequestId>,
    events: VecDeque<Event>,

    // Per connection.
    now: Option<Instant>,
    keep_alive: Duration,
    inflight_limit: usize,
    broker_max_packet: usize,
    max_qos: QoS,
    retain_available: bool,
    /// CONNACK's Topic Alias Maximum: aliases we may use (0: none).
    broker_alias_max: u16,
    /// Topics given an alias on this connection.
    outgoing_aliases: HashMap<TopicName, u16>,
    wildcards_available: bool,
    shared_available: bool,
    subscription_ids_available: bool,
    last_sent: Option<Instant>,
    last_received: Option<Instant>,
    ping_sent: Option<Instant>,
    connect_deadline: Option<Instant>,
    drain_deadline: Option<Instant>,
    pending_disconnect: Option<Disconnect>,
    read_paused: bool,
    connack: Option<Box<ConnAck>>,
    /// The enhanced authentication method, if one is used.
    authenticator: Option<Box<dyn Authenticator>>,
    /// A re-authentication we started is under way.
    reauthenticating: bool,
    /// A CONNACK accepted us at least once.
    connected_once: bool,
}

impl Session {
    /// A session that is not connected yet.
    pub fn new(config: SessionConfig) -> Self {
        Session {
            keep_alive: Duration::from_secs(config.keep_alive.into()),
            inflight_limit: config.max_inflight.max(1).into(),
            config,
            state: State::Idle,
            ids: PacketIds::default(),
            inflight: IdMap::default(),
            next_seq: 0,
            queued: VecDeque::new(),
            requests: IdMap::default(),
            queued_requests: VecDeque::new(),
            incoming_qos2: HashSet::new(),
            incoming_aliases: HashMap::new(),
            subscriptions: Vec::new(),
            tx: BytesMut::new(),
            tx_chunks: VecDeque::new(),
            qos0_unsent: Vec::new(),
            events: VecDeque::new(),
            now: None,
            broker_max_packet: usize::MAX,
            max_qos: QoS::ExactlyOnce,
            retain_available: true,
            broker_alias_max: 0,
            outgoing_aliases: HashMap::new(),
            wildcards_available: true,
            shared_available: true,
            subscription_ids_available: true,
            last_sent: None,
            last_received: None,
            ping_sent: None,
            connect_deadline: None,
            drain_deadline: None,
            pending_disconnect: None,
            read_paused: false,
            connack: None,
            authenticator: None,
            reauthenticating: false,
            connected_once: false,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Mutable configuration; changes apply from the next connection.
    pub fn config_mut(&mut self) -> &mut SessionConfig {
        &mut self.config
    }

    /// The protocol version in use.
    pub fn version(&self) -> ProtocolVersion {
        self.config.version
    }

    /// True between CONNACK and the end of the connection.
    pub fn is_connected(&self) -> bool {
        matches!(self.state, State::Connected | State::Draining)
    }

    /// True once the connection is over (or never started).
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed | State::Idle)
    }

    /// The CONNACK of the current connection.
    pub fn connack(&self) -> Option<&ConnAck> {
        self.connack.as_deref()
    }

    /// The keepalive in force (the broker's Server Keep Alive wins in 5.0).
    pub fn keep_alive(&self) -> Duration {
        self.keep_alive
    }

    /// Outgoing QoS 1/2 messages sent and not yet acknowledged.
    pub fn inflight_len(&self) -> usize {
        self.inflight.len()
    }

    /// Publishes waiting for a connection or a free in-flight slot.
    pub fn queued_len(&self) -> usize {
        self.queued.len()
    }

    /// The topic filters the broker has granted and not been asked to
    /// remove, in the order first granted.
    pub fn subscriptions(&self) -> impl Iterator<Item = (&TopicFilter, &SubscriptionOptions)> {
        self.subscriptions.iter().map(|s| (&s.filter, &s.options))
    }

    /// Requests that have not completed: queued or in flight publishes,
    /// subscribes and unsubscribes.
    pub fn pending_requests(&self) -> usize {
        self.inflight.len() + self.queued.len() + self.requests.len() + self.queued_requests.len()
    }

    /// The Clean Start flag for the next CONNECT. In 5.0 a clean start
    /// means a clean *first* start, as paho's default
    /// (`MQTT_CLEAN_START_FIRST_ONLY`) has it: reconnects ask to resume,
    /// so a session given a Session Expiry Interval survives a dropped
    /// link (with none, the broker ended it with the link anyway). In
    /// 3.1.1 Clean Session also decides whether the broker keeps the
    /// session at all, so it stays as configured.
    fn clean_start_now(&self) -> bool {
        match self.config.version {
            ProtocolVersion::V5 => self.config.clean_start && !self.connected_once,
            ProtocolVersion::V311 => self.config.clean_start,
        }
    }

    // ---- inputs -------------------------------------------------------

    /// A new transport is up: send CONNECT.
    ///
    /// Requests already made (queued or in flight on an earlier connection)
    /// are kept; what happens to them depends on whether the broker resumes
    /// the session (see [`handle_packet`](Self::handle_packet) for CONNACK).
    pub fn handle_connect(&mut self, now: Instant) {
        self.now = Some(now);
        self.discard_transmit();
        self.state = State::Connecting;
        self.keep_alive = Duration::from_secs(self.config.keep_alive.into());
        self.inflight_limit = self.config.max_inflight.max(1).into();
        self.broker_max_packet = usize::MAX;
        self.max_qos = QoS::ExactlyOnce;
        self.retain_available = true;
        // Aliases live and die with a connection [MQTT-3.3.2-7].
        self.broker_alias_max = 0;
        self.outgoing_aliases.clear();
        self.wildcards_available = true;
        self.shared_available = true;
        self.subscription_ids_available = true;
        self.last_sent = Some(now);
        self.last_received = Some(now);
        self.ping_sent = None;
        self.connect_deadline = Some(now + self.config.connect_timeout);
        self.drain_deadline = None;
        self.read_paused = false;
        self.incoming_aliases.clear();
        self.connack = None;
        self.reauthenticating = false;
        let mut properties = self.config.connect_properties.clone();
        if let Some(auth) = self.authenticator.as_mut() {
            // §4.12: the method and its first data travel in CONNECT.
            match auth.start() {
                Ok(data) => {
                    properties.authentication_method = MqttString::try_from(auth.method()).ok();
                    properties.authentication_data = data;
                }
                Err(e) => {
                    self.close(CloseReason::Authentication(e));
                    return;
                }
            }
        }
        let connect = Connect {
            protocol: self.config.version,
            clean_start: self.clean_start_now(),
            keep_alive: self.config.keep_alive,
            client_id: self.config.client_id.clone(),
            will: self.config.will.clone(),
            username: self.config.username.clone(),
            password: self.config.password.clone(),
            properties,
        };
        if let Err(e) = self.send(&Packet::Connect(Box::new(connect))) {
            self.close(CloseReason::InvalidConnect(e));
        }
    }

    /// Uses this enhanced authentication method (5.0) from the next
    /// connection on; `None` for none.
    pub fn set_authenticator(&mut self, authenticator: Option<Box<dyn Authenticator>>) {
        self.authenticator = authenticator;
    }

    /// Starts a re-authentication (5.0 §4.12.1) on the live connection:
    /// AUTH "Re-authenticate" with the authenticator's fresh data. Does
    /// nothing without an authenticator or a connection. A failure ends
    /// the connection, as the broker would.
    pub fn handle_reauthenticate(&mut self, now: Instant) {
        self.now = Some(now);
        if self.state != State::Connected || self.reauthenticating {
            return;
        }
        let Some(auth) = self.authenticator.as_mut() else {
            return;
        };
        match auth.start() {
            Ok(data) => {
                let mut packet = Auth::new(AuthReasonCode::ReAuthenticate);
                packet.properties.authentication_method = MqttString::try_from(auth.method()).ok();
                packet.properties.authentication_data = data;
                self.reauthenticating = true;
                let _ = self.send(&Packet::Auth(packet));
            }
            Err(e) => self.fail_authentication(e),
        }
    }

    /// A packet arrived from the broker.
    pub fn handle_packet(&mut self, packet: Packet, now: Instant) {
        self.now = Some(now);
        if matches!(self.state, State::Idle | State::Closed) {
            // Bytes read after the connection ended belong to nobody.
            return;
        }
        self.last_received = Some(now);
        // Any packet shows the broker is alive, not just PINGRESP.
        self.ping_sent = None;
        if let Err(e) = self.dispatch(packet) {
            self.protocol_violation(e);
        }
    }

    /// The decoder rejected the broker's bytes: end the connection, telling
    /// the broker why (5.0).
    pub fn handle_decode_error(&mut self, error: DecodeError, now: Instant) {
        self.now = Some(now);
        self.protocol_violation(ProtocolError::Decode(error));
    }

    /// The user wants to publish. `publish.packet_id` and `dup` are set by
    /// the session. Completion is reported as [`Event::PublishDone`].
    ///
    /// A `Box<Publish>` is taken as it is, a `Publish` is boxed: the
    /// session keeps each message boxed until it is done with it.
    pub fn handle_publish(
        &mut self,
        request: RequestId,
        publish: impl Into<Box<Publish>>,
        now: Instant,
    ) {
        let mut publish = publish.into();
        self.now = Some(now);
        publish.packet_id = None;
        publish.dup = false;
        self.queued.push_back((request, publish, Some(now)));
        self.pump();
    }

    /// The user wants to subscribe. Completion is [`Event::SubscribeDone`].
    pub fn handle_subscribe(
        &mut self,
        request: RequestId,
        filters: Vec<(TopicFilter, SubscriptionOptions)>,
        properties: SubscribeProperties,
        now: Instant,
    ) {
        self.now = Some(now);
        let n = filters.len();
        let placeholder = NonZeroU16::MIN;
        let packet = Packet::Subscribe(Subscribe {
            packet_id: placeholder,
            filters,
            properties,
        });
        self.queued_requests.push_back((request, packet, n));
        self.pump();
    }

    /// The user wants to unsubscribe. Completion is [`Event::UnsubscribeDone`].
    pub fn handle_unsubscribe(
        &mut self,
        request: RequestId,
        filters: Vec<TopicFilter>,
        properties: UnsubscribeProperties,
        now: Instant,
    ) {
        self.now = Some(now);
        let n = filters.len();
        let placeholder = NonZeroU16::MIN;
        let packet = Packet::Unsubscribe(Unsubscribe {
            packet_id: placeholder,
            filters,
            properties,
        });
        self.queued_requests.push_back((request, packet, n));
        self.pump();
    }

    /// The user wants to disconnect: finish what is queued and in flight,
    /// then send `disconnect`, giving up on the rest at `deadline`.
    ///
    /// If there is no connection, the session simply closes.
    pub fn handle_disconnect(&mut self, disconnect: Disconnect, now: Instant, deadline: Instant) {
        self.now = Some(now);
        match self.state {
            State::Connected | State::Draining => {
                self.state = State::Draining;
                self.pending_disconnect = Some(disconnect);
                self.drain_deadline = Some(deadline);
                self.finish_draining(false);
            }
            State::Connecting | State::Idle => self.close(CloseReason::Normal),
            State::Closed => {}
        }
    }

    /// A deadline from [`poll_timeout`](Self::poll_timeout) passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = Some(now);
        match self.state {
            State::Connecting => {
                if self.connect_deadline.is_some_and(|d| now >= d) {
                    self.close(CloseReason::ConnectTimeout);
                }
            }
            State::Connected | State::Draining => {
                if self.state == State::Draining && self.drain_deadline.is_some_and(|d| now >= d) {
                    self.finish_draining(true);
                    return;
                }
                self.keepalive_tick(now);
            }
            State::Idle | State::Closed => {}
        }
    }

    /// The driver stopped (or resumed) reading from the transport because
    /// the application is not taking messages. While reads are paused a
    /// missing PINGRESP is not held against the broker: we are the ones not
    /// listening.
    pub fn handle_read_paused(&mut self, paused: bool, now: Instant) {
        self.now = Some(now);
        if self.read_paused && !paused {
            // Give the broker a fresh window from the moment we listen again.
            self.last_received = Some(now);
            self.ping_sent = None;
        }
        self.read_paused = paused;
    }

    /// The transport failed or the peer closed it.
    ///
    /// Requests in progress are kept for the next connection; call
    /// [`abort_requests`](Self::abort_requests) if there will be none.
    ///
    /// A connection lost while draining for a
    /// [`handle_disconnect`](Self::handle_disconnect) ends the session as
    /// that disconnect would have ([`CloseReason::Normal`]): the user asked
    /// to leave, so there is no reconnecting to finish the drain.
    pub fn handle_connection_lost(&mut self, now: Instant) {
        self.now = Some(now);
        match self.state {
            State::Idle | State::Closed => {}
            State::Draining => {
                self.pending_disconnect = None;
                self.drain_deadline = None;
                self.events.push_back(Event::Closed(CloseReason::Normal));
            }
            State::Connecting | State::Connected => {
                self.events
                    .push_back(Event::Closed(CloseReason::ConnectionLost));
            }
        }
        self.state = State::Idle;
        self.discard_transmit();
        self.ping_sent = None;
        self.connect_deadline = None;
    }

    /// Fails every request still in progress with `reason`, so no caller
    /// waits forever. Used when the connection is over for good.
    pub fn abort_requests(&mut self, reason: CloseReason) {
        self.fail_unsent_qos0(reason.clone());
        let err = || RequestError::ConnectionClosed(reason.clone());
        let mut inflight: Vec<_> = self.inflight.drain().map(|(_, i)| i).collect();
        inflight.sort_by_key(|i| i.seq);
        for i in inflight {
            if let Some(id) = i.publish.packet_id {
                self.ids.release(id);
            }
            self.events.push_back(Event::PublishDone {
                request: i.request,
                result: Err(err()),
            });
        }
        for (request, _, _) in std::mem::take(&mut self.queued) {
            self.events.push_back(Event::PublishDone {
                request,
                result: Err(err()),
            });
        }
        // Sent requests hold a packet identifier; queued ones do not have
        // one yet (theirs is a placeholder).
        let mut pending: Vec<(u16, PendingRequest)> = self.requests.drain().collect();
        pending.sort_by_key(|(id, _)| *id);
        for (id, r) in &pending {
            if let Some(id) = NonZeroU16::new(*id) {
                self.ids.release(id);
            }
            self.events
                .push_back(failed_event(r.request, &r.packet, err()));
        }
        for (request, packet, _) in std::mem::take(&mut self.queued_requests) {
            self.events.push_back(failed_event(request, &packet, err()));
        }
    }

    // ---- outputs ------------------------------------------------------

    /// Bytes to write to the transport, in order; `None` when there are none.
    /// Returns everything pending at once, so writes are batched.
    ///
    /// QoS 0 publishes complete here ([`Event::PublishDone`]), as their
    /// bytes are handed out: until then they count against the caller's
    /// queue bound, so a slow link holds back a QoS 0 flood instead of
    /// letting it pile up in memory.
    ///
    /// A payload of [`ZERO_COPY_PAYLOAD`] bytes or more comes out as a
    /// buffer of its own (the message's `Bytes`, not a copy), after one
    /// with what precedes it: call until `None`.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        let out = match self.tx_chunks.pop_front() {
            Some(chunk) => chunk,
            None if !self.tx.is_empty() => self.tx.split().freeze(),
            None => return None,
        };
        if self.tx_chunks.is_empty() && self.tx.is_empty() {
            for request in std::mem::take(&mut self.qos0_unsent) {
                self.events.push_back(Event::PublishDone {
                    request,
                    result: Ok(qos0_outcome()),
                });
            }
        }
        Some(out)
    }

    /// Throws away what [`poll_transmit`](Self::poll_transmit) would have
    /// returned, for a driver that could not write it (the connection is
    /// gone): QoS 0 publishes among it fail with `ConnectionClosed`.
    pub fn discard_transmit(&mut self) {
        self.tx.clear();
        self.tx_chunks.clear();
        self.fail_unsent_qos0(CloseReason::ConnectionLost);
    }

    fn fail_unsent_qos0(&mut self, reason: CloseReason) {
        for request in std::mem::take(&mut self.qos0_unsent) {
            self.events.push_back(Event::PublishDone {
                request,
                result: Err(RequestError::ConnectionClosed(reason.clone())),
            });
        }
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Connecting => self.connect_deadline,
            State::Connected | State::Draining => {
                let keepalive = self.keepalive_deadline();
                match (keepalive, self.drain_deadline) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
            State::Idle | State::Closed => None,
        }
    }

    // ---- keepalive ----------------------------------------------------

    /// How long to wait for PINGRESP after PINGREQ: half the keepalive, so
    /// a dead connection is noticed within 1.5 × keepalive of the last sign
    /// of life.
    fn ping_timeout(&self) -> Duration {
        self.keep_alive / 2
    }

    fn keepalive_deadline(&self) -> Option<Instant> {
        if self.keep_alive.is_zero() {
            return None;
        }
        if self.read_paused {
            // We are not reading, so a PINGRESP could not be seen and its
            // absence proves nothing. But the broker must still hear from
            // us within the keepalive [MQTT-3.1.2-23], or it drops us after
            // one and a half of it [MQTT-3.1.2-24]: ping whenever a whole
            // keepalive passed without our sending anything.
            return Some(self.last_sent? + self.keep_alive);
        }
        match self.ping_sent {
            Some(sent) => Some(sent + self.ping_timeout()),
            None => {
                // [MQTT-3.1.2-23] the client must send something within the
                // keepalive; PINGREQ if nothing else went out. We also ping
                // when nothing came in for a keepalive (as paho does), so a
                // half-open connection is found even while we keep sending.
                let quiet_since = match (self.last_sent, self.last_received) {
                    (Some(a), Some(b)) => a.min(b),
                    (a, b) => a.or(b)?,
                };
                Some(quiet_since + self.keep_alive)
            }
        }
    }

    fn keepalive_tick(&mut self, now: Instant) {
        let Some(deadline) = self.keepalive_deadline() else {
            return;
        };
        if now < deadline {
            return;
        }
        if self.read_paused {
            let _ = self.send(&Packet::PingReq);
            return;
        }
        if self.ping_sent.is_some() {
            self.close(CloseReason::KeepAliveTimeout);
        } else {
            let _ = self.send(&Packet::PingReq);
            self.ping_sent = Some(now);
        }
    }

    // ---- internals ----------------------------------------------------

    fn now(&self) -> Option<Instant> {
        self.now
    }

    /// Encodes a packet for the transport. Our own packets were validated
    /// when they were requested; a failure here is reported to the caller.
    fn send(&mut self, packet: &Packet) -> Result<(), EncodeError> {
        if let Packet::Publish(p) = packet {
            return self.send_publish(p);
        }
        let result = packet.encode(self.config.version, &mut self.tx);
        self.sent(packet.packet_type(), result)
    }

    /// [`send`](Self::send) for a PUBLISH held outside a `Packet`.
    fn send_publish(&mut self, p: &Publish) -> Result<(), EncodeError> {
        let result = if p.payload.len() >= ZERO_COPY_PAYLOAD {
            // Everything before the payload, with what `tx` held, goes
            // out as one buffer; the payload follows as it is.
            p.encode_head(self.config.version, &mut self.tx).map(|()| {
                self.tx_chunks.push_back(self.tx.split().freeze());
                self.tx_chunks.push_back(p.payload.clone());
            })
        } else {
            p.encode(self.config.version, &mut self.tx)
        };
        self.sent(PacketType::Publish, result)
    }

    /// Notes a packet written (for keepalive) or why it could not be.
    fn sent(
        &mut self,
        packet: PacketType,
        result: Result<(), EncodeError>,
    ) -> Result<(), EncodeError> {
        if result.is_ok() {
            self.last_sent = self.now();
        } else {
            tracing::error!(%packet, ?result, "cannot encode packet");
        }
        result
    }

    fn protocol_violation(&mut self, error: ProtocolError) {
        tracing::warn!(%error, "protocol violation by the broker; closing the connection");
        if self.config.version == ProtocolVersion::V5 && self.is_connected() {
            // 5.0 §4.13: the receiver of a malformed packet or protocol
            // error MAY send DISCONNECT with the reason code before closing.
            let _ = self.send(&Packet::Disconnect(Disconnect::new(error.into())));
        }
        self.close(CloseReason::Protocol(error));
    }

    fn close(&mut self, reason: CloseReason) {
        if self.state == State::Closed {
            return;
        }
        self.state = State::Closed;
        self.connect_deadline = None;
        self.drain_deadline = None;
        self.ping_sent = None;
        self.events.push_back(Event::Closed(reason));
    }

    fn dispatch(&mut self, packet: Packet) -> Result<(), ProtocolError> {
        let connecting = self.state == State::Connecting;
        match packet {
            Packet::ConnAck(connack) if connecting => {
                self.on_connack(connack);
                Ok(())
            }
            // §4.12: AUTH may come before CONNACK, and after it while a
            // re-authentication we started is under way.
            Packet::Auth(auth)
                if self.authenticator.is_some() && (connecting || self.reauthenticating) =>
            {
                self.on_auth(auth)
            }
            // [MQTT-3.2.0-1] The first packet from the server MUST be CONNACK.
            other if connecting => Err(ProtocolError::UnexpectedPacket(other.packet_type())),
            Packet::Publish(p) => self.on_publish(p),
            Packet::PubAck(ack) => self.on_puback(ack),
            Packet::PubRec(rec) => self.on_pubrec(rec),
            Packet::PubRel(rel) => {
                self.on_pubrel(rel);
                Ok(())
            }
            Packet::PubComp(comp) => self.on_pubcomp(comp),
            Packet::SubAck(ack) => self.on_suback(ack),
            Packet::UnsubAck(ack) => self.on_unsuback(ack),
            Packet::PingResp => Ok(()),
            Packet::Disconnect(d) if self.config.version == ProtocolVersion::V5 => {
                self.close(CloseReason::ServerDisconnect {
                    reason: d.reason_code,
                    reason_string: d.properties.reason_string,
                    server_reference: d.properties.server_reference,
                });
                Ok(())
            }
            // A broker never sends CONNECT, SUBSCRIBE, UNSUBSCRIBE or
            // PINGREQ; a second CONNACK, a 3.1.1 DISCONNECT, or AUTH we did
            // not ask for are errors too.
            other => Err(ProtocolError::UnexpectedPacket(other.packet_type())),
        }
    }

    fn on_connack(&mut self, connack: Box<ConnAck>) {
        if connack.reason_code != ConnectReasonCode::Success {
            self.close(CloseReason::Refused {
                reason: connack.reason_code,
                reason_string: connack.properties.reason_string.clone(),
                server_reference: connack.properties.server_reference.clone(),
            });
            return;
        }
        if let Some(auth) = self.authenticator.as_mut() {
            // [MQTT-4.12.0-5]: the method in CONNACK is the one we asked for.
            let method = connack.properties.authentication_method.as_deref();
            if method.is_some_and(|m| m != auth.method()) {
                self.protocol_violation(ProtocolError::AuthMethodMismatch);
                return;
            }
            // The broker's final word may prove it knows the secret too.
            let data = connack.properties.authentication_data.as_deref();
            if let Err(e) = auth.finish(data) {
                // The broker considers the connection open: say goodbye
                // (0x80; 5.0 gives the client no "not authorized").
                let goodbye = Disconnect::new(DisconnectReasonCode::UnspecifiedError);
                let _ = self.send(&Packet::Disconnect(goodbye));
                self.close(CloseReason::Authentication(e));
                return;
            }
        }
        self.state = State::Connected;
        self.connect_deadline = None;
        if connack.session_present && self.clean_start_now() {
            // Resuming would replay our in-flight messages into a session
            // that cannot be the one we had; the broker is confused.
            self.protocol_violation(ProtocolError::SessionPresentOnCleanStart);
            return;
        }
        self.connected_once = true;
        let props = &connack.properties;
        if let Some(keep_alive) = props.server_keep_alive {
            // [MQTT-3.2.2-21] the client MUST use the server's value.
            self.keep_alive = Duration::from_secs(keep_alive.into());
        }
        if let Some(max) = props.receive_maximum {
            // [MQTT-3.3.4-7] never more unacknowledged QoS>0 PUBLISHes than this.
            self.inflight_limit = self.inflight_limit.min(max.into());
        }
        if let Some(max) = props.maximum_packet_size {
            self.broker_max_packet = max as usize;
        }
        self.max_qos = props.maximum_qos.unwrap_or(QoS::ExactlyOnce);
        self.retain_available = props.retain_available.unwrap_or(true);
        self.broker_alias_max = props.topic_alias_maximum.unwrap_or(0);
        self.wildcards_available = props.wildcard_subscription_available.unwrap_or(true);
        self.shared_available = props.shared_subscription_available.unwrap_or(true);
        self.subscription_ids_available = props.subscription_identifiers_available.unwrap_or(true);
        if self.config.client_id.is_empty()
            && let Some(id) = &props.assigned_client_identifier
        {
            // Keep the broker's choice, so a reconnect resumes this
            // session instead of being given a new identity.
            self.config.client_id = id.clone();
        }
        let session_present = connack.session_present;
        self.connack = Some(connack.clone());
        self.events.push_back(Event::Connected(connack));
        self.resume(session_present);
        self.pump();
    }

    /// After CONNACK: carry on with what the previous connection left.
    fn resume(&mut self, session_present: bool) {
        let mut inflight: Vec<Inflight> = self.inflight.drain().map(|(_, i)| i).collect();
        inflight.sort_by_key(|i| i.seq);
        if session_present {
            // [MQTT-4.4.0-1] resend unacknowledged PUBLISH (with DUP) and
            // PUBREL packets, in their original order, with their ids.
            for mut i in inflight {
                match i.stage {
                    Stage::PublishSentQos1 | Stage::PublishSentQos2 => {
                        i.publish.dup = true;
                        let _ = self.send_publish(&i.publish);
                    }
                    Stage::PubRelSent => {
                        let id = i.publish.packet_id.unwrap_or(NonZeroU16::MIN);
                        let _ = self.send(&Packet::PubRel(PubRel::new(id)));
                    }
                }
                if let Some(id) = i.publish.packet_id {
                    self.inflight.insert(id.get(), i);
                }
            }
        } else {
            // The broker has no session: its half of every exchange is gone.
            // Incoming QoS 2 ids it might redeliver are forgotten with it.
            self.incoming_qos2.clear();
            // Every unfinished publish goes again as a new message, first
            // in line and in its original order; none is dropped and none
            // is reported done without the broker's word. That includes a
            // QoS 2 message the broker had acknowledged with PUBREC: with
            // the session gone we cannot know whether it was passed on
            // (brokers that deliver on PUBREL, as mosquitto does, did not),
            // so for this one case exactly-once becomes at-least-once. Its
            // expiry keeps counting from when it was first sent.
            for i in inflight.into_iter().rev() {
                if let Some(id) = i.publish.packet_id {
                    self.ids.release(id);
                }
                let mut p = i.publish;
                p.dup = false;
                p.packet_id = None;
                self.queued.push_front((i.request, p, i.sent_at));
            }
        }
        // SUBSCRIBE / UNSUBSCRIBE without an answer: ask again, in the
        // order first asked (a subscribe then unsubscribe of one filter must
        // not end up subscribed), ahead of requests made while offline.
        let mut pending: Vec<(u16, PendingRequest)> = self.requests.drain().collect();
        let resubscribing = !session_present && self.config.resubscribe;
        if resubscribing {
            // Our own resubscriptions are regenerated below from the
            // granted list; keeping the interrupted ones as well would ask
            // twice (and each SUBSCRIBE resends retained messages).
            for (id, r) in &pending {
                if r.request == RESUBSCRIBE_REQUEST
                    && let Some(nz) = NonZeroU16::new(*id)
                {
                    self.ids.release(nz);
                }
            }
            pending.retain(|(_, r)| r.request != RESUBSCRIBE_REQUEST);
            self.queued_requests
                .retain(|(r, _, _)| *r != RESUBSCRIBE_REQUEST);
        }
        pending.sort_by_key(|(_, r)| r.seq);
        for (id, r) in pending.into_iter().rev() {
            if let Some(nz) = NonZeroU16::new(id) {
                self.ids.release(nz);
            }
            self.queued_requests
                .push_front((r.request, r.packet, r.filters));
        }
        if resubscribing {
            self.queue_resubscribe();
        }
    }

    /// Asks again for every granted subscription, ahead of anything else,
    /// one SUBSCRIBE per run of subscriptions that share their properties
    /// (5.0 subscription identifiers are per SUBSCRIBE).
    fn queue_resubscribe(&mut self) {
        let mut packets: Vec<(Vec<(TopicFilter, SubscriptionOptions)>, SubscribeProperties)> =
            Vec::new();
        for sub in &self.subscriptions {
            match packets.last_mut() {
                Some((filters, props)) if *props == sub.properties => {
                    filters.push((sub.filter.clone(), sub.options));
                }
                _ => packets.push((
                    vec![(sub.filter.clone(), sub.options)],
                    sub.properties.clone(),
                )),
            }
        }
        for (filters, properties) in packets.into_iter().rev() {
            let n = filters.len();
            let packet_id = NonZeroU16::MIN; // placeholder until sent
            let packet = Packet::Subscribe(Subscribe {
                packet_id,
                filters,
                properties,
            });
            self.queued_requests
                .push_front((RESUBSCRIBE_REQUEST, packet, n));
        }
    }

    /// Sends whatever may be sent now: queued subscribes/unsubscribes, then
    /// queued publishes up to the in-flight limit, in order.
    fn pump(&mut self) {
        if !self.is_connected() {
            return;
        }
        while let Some((request, mut packet, filters)) = self.queued_requests.pop_front() {
            let Some(id) = self.ids.allocate() else {
                self.queued_requests.push_front((request, packet, filters));
                break;
            };
            match &mut packet {
                Packet::Subscribe(s) => s.packet_id = id,
                Packet::Unsubscribe(u) => u.packet_id = id,
                _ => {}
            }
            let checked = match self.subscribe_refusal(&packet) {
                Some(e) => Err(e),
                None => self.check_and_send(&packet),
            };
            match checked {
                Ok(()) => {
                    let seq = self.next_seq;
                    self.next_seq += 1;
                    let pending = PendingRequest {
                        request,
                        packet,
                        filters,
                        seq,
                    };
                    self.requests.insert(id.get(), pending);
                }
                Err(e) if request == RESUBSCRIBE_REQUEST => {
                    self.ids.release(id);
                    if let Packet::Subscribe(sub) = packet {
                        for (filter, _) in sub.filters {
                            let error = ResubscribeError::NotSent(e.clone());
                            self.lose_subscription(filter, error);
                        }
                    }
                }
                Err(e) => {
                    self.ids.release(id);
                    self.events.push_back(failed_event(request, &packet, e));
                }
            }
        }
        while let Some((request, front, since)) = self.queued.front() {
            if let Some(e) = self.refusal(front, *since) {
                let request = *request;
                self.queued.pop_front();
                self.events.push_back(Event::PublishDone {
                    request,
                    result: Err(e),
                });
                continue;
            }
            let id = if front.qos == QoS::AtMostOnce {
                None
            } else {
                if self.inflight.len() >= self.inflight_limit {
                    break;
                }
                match self.ids.allocate() {
                    Some(id) => Some(id),
                    None => break,
                }
            };
            let Some((request, mut publish, since)) = self.queued.pop_front() else {
                break;
            };
            publish.packet_id = id;
            if let (Some(interval), Some(since), Some(now)) =
                (publish.properties.message_expiry_interval, since, self.now)
            {
                // Pass on what is left of the lifetime, as a broker does for
                // the messages it keeps ([MQTT-3.3.2-6] for the server side).
                let waited = now.saturating_duration_since(since).as_secs();
                let left = u64::from(interval).saturating_sub(waited);
                publish.properties.message_expiry_interval =
                    Some(left.try_into().unwrap_or(u32::MAX));
            }
            let aliased = self.with_topic_alias(&publish);
            let new_alias = aliased.as_ref().and_then(|(_, defined)| *defined);
            let sent = match &aliased {
                Some((wire, _)) => self.check_and_send(wire),
                None => self.check_and_send_publish(&publish),
            };
            if let Err(e) = sent {
                if let Some(id) = id {
                    self.ids.release(id);
                }
                self.events.push_back(Event::PublishDone {
                    request,
                    result: Err(e),
                });
                continue;
            }
            if let Some(alias) = new_alias {
                // Only now that the broker has been told what the alias
                // stands for may later PUBLISHes use it.
                self.outgoing_aliases.insert(publish.topic.clone(), alias);
            }
            match id {
                None => self.qos0_unsent.push(request),
                Some(id) => {
                    let stage = if publish.qos == QoS::AtLeastOnce {
                        Stage::PublishSentQos1
                    } else {
                        Stage::PublishSentQos2
                    };
                    let seq = self.next_seq;
                    self.next_seq += 1;
                    self.inflight.insert(
                        id.get(),
                        Inflight {
                            request,
                            publish,
                            stage,
                            seq,
                            pubrec: None,
                            sent_at: self.now,
                        },
                    );
                }
            }
        }
        if self.state == State::Draining {
            self.finish_draining(false);
        }
    }

    /// Why the broker's CONNACK forbids this SUBSCRIBE, if it does: it is
    /// refused here with a clear error rather than by the broker with a
    /// DISCONNECT ([MQTT-3.2.2-13] and the 5.0 "... Available" properties).
    fn subscribe_refusal(&self, packet: &Packet) -> Option<RequestError> {
        let Packet::Subscribe(sub) = packet else {
            return None;
        };
        if !self.subscription_ids_available && sub.properties.subscription_identifier.is_some() {
            return Some(RequestError::SubscriptionIdentifiersNotSupported);
        }
        for (filter, _) in &sub.filters {
            if !self.shared_available && filter.starts_with("$share/") {
                return Some(RequestError::SharedSubscriptionsNotSupported);
            }
            if !self.wildcards_available && crate::topic::is_wildcard(filter) {
                return Some(RequestError::WildcardSubscriptionsNotSupported);
            }
        }
        None
    }

    /// The PUBLISH as it goes on the wire: with automatic topic aliases
    /// (5.0, when enabled and the broker allows any), a topic sent before
    /// on this connection travels as its alias and an empty topic name.
    /// The original, with its topic, is what is kept for resending.
    /// `None` when the PUBLISH goes as it is (no alias: the usual case,
    /// which then costs no copy).
    ///
    /// Also returns the alias this PUBLISH defines, if it is the topic's
    /// first: the caller records it once the packet was actually sent, so
    /// a PUBLISH refused here (too large, say) leaves no alias behind that
    /// the broker never learned.
    fn with_topic_alias(&self, publish: &Publish) -> Option<(Packet, Option<u16>)> {
        let eligible = self.config.auto_topic_alias
            && self.config.version == ProtocolVersion::V5
            && self.broker_alias_max > 0
            && publish.properties.topic_alias.is_none();
        if !eligible {
            return None;
        }
        let mut wire = publish.clone();
        let mut defined = None;
        match self.outgoing_aliases.get(&publish.topic) {
            Some(&alias) => {
                wire.topic = TopicName::empty();
                wire.properties.topic_alias = Some(alias);
            }
            None => {
                // Hand out aliases 1..=maximum, first come first served;
                // topics beyond that travel in full.
                let next = self.outgoing_aliases.len() + 1;
                match u16::try_from(next) {
                    Ok(alias) if alias <= self.broker_alias_max => {
                        wire.properties.topic_alias = Some(alias);
                        defined = Some(alias);
                    }
                    _ => return None,
                }
            }
        }
        Some((Packet::Publish(wire), defined))
    }

    /// Why the broker's CONNACK forbids sending this publish, if it does.
    fn refusal(&self, publish: &Publish, since: Option<Instant>) -> Option<RequestError> {
        if let (Some(interval), Some(since), Some(now)) =
            (publish.properties.message_expiry_interval, since, self.now)
        {
            // A message whose lifetime ran out while it waited (offline, or
            // behind the in-flight window) is not sent at all.
            if now.saturating_duration_since(since) >= Duration::from_secs(interval.into()) {
                return Some(RequestError::MessageExpired);
            }
        }
        if let Some(alias) = publish.properties.topic_alias
            && alias > self.broker_alias_max
        {
            return Some(RequestError::TopicAliasInvalid {
                alias,
                maximum: self.broker_alias_max,
            });
        }
        if publish.qos > self.max_qos {
            // [MQTT-3.2.2-11] never above the broker's Maximum QoS. Refused
            // rather than downgraded: a silent downgrade would weaken the
            // delivery guarantee the caller asked for.
            return Some(RequestError::QoSNotSupported {
                requested: publish.qos,
                maximum: self.max_qos,
            });
        }
        if publish.retain && !self.retain_available {
            // [MQTT-3.2.2-14] no RETAIN when Retain Available is 0.
            return Some(RequestError::RetainNotSupported);
        }
        None
    }

    /// Sends a packet unless it is larger than the broker accepts.
    fn check_and_send(&mut self, packet: &Packet) -> Result<(), RequestError> {
        if let Packet::Publish(p) = packet {
            return self.check_and_send_publish(p);
        }
        self.write_checked(packet.packet_type(), |v, tx| packet.encode(v, tx))
    }

    /// [`check_and_send`](Self::check_and_send) for a PUBLISH held outside
    /// a `Packet`. A large one, whose payload is not copied into `tx`, is
    /// measured before it is sent.
    fn check_and_send_publish(&mut self, p: &Publish) -> Result<(), RequestError> {
        if p.payload.len() >= ZERO_COPY_PAYLOAD {
            let size = p.encoded_len(self.config.version)?;
            let max = self.broker_max_packet;
            if size > max {
                return Err(RequestError::PacketTooLarge { size, max });
            }
            self.send_publish(p)?;
            return Ok(());
        }
        self.write_checked(PacketType::Publish, |v, tx| p.encode(v, tx))
    }

    /// Writes a packet into `tx`, then measures it by what was written and
    /// takes it back out if it is larger than the broker accepts: one pass
    /// over the packet, not a measuring pass and a writing one.
    fn write_checked(
        &mut self,
        packet: PacketType,
        encode: impl FnOnce(ProtocolVersion, &mut BytesMut) -> Result<(), EncodeError>,
    ) -> Result<(), RequestError> {
        let before = self.tx.len();
        let written = encode(self.config.version, &mut self.tx);
        if written.is_ok() {
            let size = self.tx.len() - before;
            let max = self.broker_max_packet;
            if size > max {
                self.tx.truncate(before);
                return Err(RequestError::PacketTooLarge { size, max });
            }
        }
        self.sent(packet, written)?;
        Ok(())
    }

    fn finish_draining(&mut self, deadline_passed: bool) {
        if self.state != State::Draining {
            return;
        }
        if !deadline_passed && self.pending_requests() > 0 {
            return;
        }
        let disconnect = self.pending_disconnect.take().unwrap_or_default();
        let _ = self.send(&Packet::Disconnect(disconnect));
        self.close(CloseReason::Normal);
    }

    /// An AUTH from the broker during an exchange.
    fn on_auth(&mut self, packet: Auth) -> Result<(), ProtocolError> {
        let Some(auth) = self.authenticator.as_mut() else {
            return Err(ProtocolError::UnexpectedPacket(PacketType::Auth));
        };
        // [MQTT-4.12.0-5]: the Authentication Method stays the same. The
        // one exception is the bare AUTH Success (§3.15.2.1: Remaining
        // Length 0), which carries no properties at all.
        match packet.properties.authentication_method.as_deref() {
            Some(m) if m == auth.method() => {}
            None if packet.reason_code == AuthReasonCode::Success => {}
            _ => return Err(ProtocolError::AuthMethodMismatch),
        }
        let data = packet.properties.authentication_data.as_deref();
        match packet.reason_code {
            AuthReasonCode::ContinueAuthentication => match auth.step(data) {
                Ok(answer) => {
                    let mut reply = Auth::new(AuthReasonCode::ContinueAuthentication);
                    reply.properties.authentication_method =
                        MqttString::try_from(auth.method()).ok();
                    reply.properties.authentication_data = answer;
                    let _ = self.send(&Packet::Auth(reply));
                }
                Err(e) => self.fail_authentication(e),
            },
            // A re-authentication ends with AUTH Success (a connect ends
            // with CONNACK instead).
            AuthReasonCode::Success if self.reauthenticating => {
                self.reauthenticating = false;
                if let Err(e) = auth.finish(data) {
                    self.fail_authentication(e);
                }
            }
            _ => return Err(ProtocolError::UnexpectedPacket(PacketType::Auth)),
        }
        Ok(())
    }

    /// Our side of the exchange failed: end the connection, telling a
    /// connected broker why (0x80: 5.0 has no client-side "not authorized").
    fn fail_authentication(&mut self, error: AuthError) {
        tracing::warn!(%error, "enhanced authentication failed");
        if self.is_connected() {
            let _ = self.send(&Packet::Disconnect(Disconnect::new(
                DisconnectReasonCode::UnspecifiedError,
            )));
        }
        self.close(CloseReason::Authentication(error));
    }

    fn on_publish(&mut self, mut publish: Publish) -> Result<(), ProtocolError> {
        self.resolve_alias(&mut publish)?;
        match (publish.qos, publish.packet_id) {
            (QoS::AtMostOnce, _) => self.events.push_back(Event::Message(publish)),
            (QoS::AtLeastOnce, Some(id)) => {
                self.events.push_back(Event::Message(publish));
                let _ = self.send(&Packet::PubAck(PubAck::new(id)));
            }
            (QoS::ExactlyOnce, Some(id)) => {
                // [MQTT-4.3.3-9]: until PUBREL, a PUBLISH with this id is the
                // same message again and must not be delivered twice.
                let receive_maximum = self
                    .config
                    .connect_properties
                    .receive_maximum
                    .unwrap_or(u16::MAX);
                let is_new = !self.incoming_qos2.contains(&id.get());
                if is_new && self.incoming_qos2.len() >= usize::from(receive_maximum) {
                    // [MQTT-3.3.4-9]: the broker must not send more QoS>0
                    // PUBLISHes we have not acknowledged than we allow;
                    // 0x93 Receive Maximum exceeded.
                    return Err(ProtocolError::ReceiveMaximumExceeded);
                }
                if self.incoming_qos2.insert(id.get()) {
                    self.events.push_back(Event::Message(publish));
                }
                let _ = self.send(&Packet::PubRec(PubRec::new(id)));
            }
            // The decoder guarantees an id for QoS 1/2.
            (_, None) => return Err(ProtocolError::UnexpectedPacket(PacketType::Publish)),
        }
        Ok(())
    }

    /// Replaces a 5.0 Topic Alias by the topic it stands for.
    fn resolve_alias(&mut self, publish: &mut Publish) -> Result<(), ProtocolError> {
        let Some(alias) = publish.properties.topic_alias else {
            return Ok(());
        };
        let max = self
            .config
            .connect_properties
            .topic_alias_maximum
            .unwrap_or(0);
        // [MQTT-3.3.2-10]: an alias above our Topic Alias Maximum (0 if we
        // sent none) is a protocol error, 0x94 Topic Alias invalid.
        if alias == 0 || alias > max {
            return Err(ProtocolError::TopicAliasInvalid(alias));
        }
        if publish.topic.is_empty() {
            match self.incoming_aliases.get(&alias) {
                Some(topic) => publish.topic = topic.clone(),
                None => return Err(ProtocolError::TopicAliasInvalid(alias)),
            }
        } else {
            self.incoming_aliases.insert(alias, publish.topic.clone());
        }
        Ok(())
    }

    fn take_inflight(
        &mut self,
        packet: PacketType,
        id: NonZeroU16,
        stage: Stage,
    ) -> Result<Inflight, ProtocolError> {
        match self.inflight.get(&id.get()) {
            Some(i) if i.stage == stage => {}
            _ => {
                return Err(ProtocolError::UnknownPacketId {
                    packet,
                    id: id.get(),
                });
            }
        }
        self.inflight
            .remove(&id.get())
            .ok_or(ProtocolError::UnknownPacketId {
                packet,
                id: id.get(),
            })
    }

    fn complete_publish(&mut self, inflight: &Inflight, outcome: PublishOutcome) {
        if let Some(id) = inflight.publish.packet_id {
            self.ids.release(id);
        }
        self.events.push_back(Event::PublishDone {
            request: inflight.request,
            result: Ok(outcome),
        });
        self.pump();
    }

    fn on_puback(&mut self, ack: PubAck) -> Result<(), ProtocolError> {
        let inflight =
            self.take_inflight(PacketType::PubAck, ack.packet_id, Stage::PublishSentQos1)?;
        let outcome = PublishOutcome {
            packet_id: Some(ack.packet_id),
            reason_code: ack.reason_code,
            complete_reason: None,
            properties: ack.properties,
        };
        self.complete_publish(&inflight, outcome);
        Ok(())
    }

    fn on_pubrec(&mut self, rec: PubRec) -> Result<(), ProtocolError> {
        let id = rec.packet_id;
        match self.inflight.get_mut(&id.get()) {
            Some(i) if i.stage == Stage::PublishSentQos2 => {
                if rec.reason_code.is_error() {
                    // §4.3.3: a PUBREC with a failure reason ends the exchange.
                    let inflight =
                        self.take_inflight(PacketType::PubRec, id, Stage::PublishSentQos2)?;
                    let outcome = outcome_from_pubrec(Some(id), Some(rec), None);
                    self.complete_publish(&inflight, outcome);
                } else {
                    i.stage = Stage::PubRelSent;
                    i.pubrec = Some(rec);
                    let _ = self.send(&Packet::PubRel(PubRel::new(id)));
                }
                Ok(())
            }
            // A PUBREC repeated after we sent PUBREL (e.g. our PUBREL was
            // lost with a connection): answer with PUBREL again.
            Some(i) if i.stage == Stage::PubRelSent => {
                let _ = self.send(&Packet::PubRel(PubRel::new(id)));
                Ok(())
            }
            _ => Err(ProtocolError::UnknownPacketId {
                packet: PacketType::PubRec,
                id: id.get(),
            }),
        }
    }

    fn on_pubrel(&mut self, rel: PubRel) {
        let id = rel.packet_id;
        let mut comp = PubComp::new(id);
        if !self.incoming_qos2.remove(&id.get()) {
            // 5.0 §4.3.3: answer a PUBREL we hold no state for with 0x92;
            // 3.1.1 can only say PUBCOMP, which is also what it expects.
            comp.reason_code = PubRelReasonCode::PacketIdentifierNotFound;
        }
        let _ = self.send(&Packet::PubComp(comp));
    }

    fn on_pubcomp(&mut self, comp: PubComp) -> Result<(), ProtocolError> {
        let inflight =
            self.take_inflight(PacketType::PubComp, comp.packet_id, Stage::PubRelSent)?;
        let outcome =
            outcome_from_pubrec(Some(comp.packet_id), inflight.pubrec.clone(), Some(comp));
        self.complete_publish(&inflight, outcome);
        Ok(())
    }

    fn take_request(
        &mut self,
        packet: PacketType,
        id: NonZeroU16,
        count: usize,
    ) -> Result<(RequestId, Packet), ProtocolError> {
        let expected = match self.requests.get(&id.get()) {
            Some(r) if r.packet.packet_type() == request_type_for(packet) => r.filters,
            _ => {
                return Err(ProtocolError::UnknownPacketId {
                    packet,
                    id: id.get(),
                });
            }
        };
        // 3.1.1 UNSUBACK carries no codes.
        let counted =
            !(packet == PacketType::UnsubAck && self.config.version == ProtocolVersion::V311);
        if counted && count != expected {
            return Err(ProtocolError::WrongReasonCount(packet));
        }
        let r = self
            .requests
            .remove(&id.get())
            .ok_or(ProtocolError::UnknownPacketId {
                packet,
                id: id.get(),
            })?;
        self.ids.release(id);
        Ok((r.request, r.packet))
    }

    fn on_suback(&mut self, ack: SubAck) -> Result<(), ProtocolError> {
        let (request, packet) =
            self.take_request(PacketType::SubAck, ack.packet_id, ack.reason_codes.len())?;
        let ours = request == RESUBSCRIBE_REQUEST;
        if let Packet::Subscribe(sub) = packet {
            for ((filter, options), code) in sub.filters.into_iter().zip(&ack.reason_codes) {
                if code.is_error() {
                    if ours {
                        self.lose_subscription(filter, ResubscribeError::Refused(*code));
                    }
                    continue;
                }
                let properties = sub.properties.clone();
                let entry = ActiveSubscription {
                    filter,
                    options,
                    properties,
                };
                match self
                    .subscriptions
                    .iter_mut()
                    .find(|s| s.filter == entry.filter)
                {
                    // Subscribing again to a filter replaces its options [MQTT-3.8.4-3].
                    Some(existing) => *existing = entry,
                    None => self.subscriptions.push(entry),
                }
            }
        }
        if !ours {
            self.events.push_back(Event::SubscribeDone {
                request,
                result: Ok(ack),
            });
        }
        self.pump();
        Ok(())
    }

    /// A resubscription failed: forget the subscription and say so.
    fn lose_subscription(&mut self, filter: TopicFilter, error: ResubscribeError) {
        tracing::warn!(%filter, %error, "could not subscribe again after reconnecting");
        self.subscriptions.retain(|s| s.filter != filter);
        self.events
            .push_back(Event::ResubscribeFailed { filter, error });
    }

    fn on_unsuback(&mut self, ack: UnsubAck) -> Result<(), ProtocolError> {
        let (request, packet) =
            self.take_request(PacketType::UnsubAck, ack.packet_id, ack.reason_codes.len())?;
        if let Packet::Unsubscribe(unsub) = packet {
            // Forget a filter unless the broker says it could not remove it
            // (3.1.1's UNSUBACK carries no codes: it always succeeded).
            for (i, filter) in unsub.filters.iter().enumerate() {
                let failed = ack.reason_codes.get(i).is_some_and(|c| c.is_error());
                if !failed {
                    self.subscriptions.retain(|s| &s.filter != filter);
                }
            }
        }
        self.events.push_back(Event::UnsubscribeDone {
            request,
            result: Ok(ack),
        });
        self.pump();
        Ok(())
    }
}

fn request_type_for(ack: PacketType) -> PacketType {
    match ack {
        PacketType::SubAck => PacketType::Subscribe,
        _ => PacketType::Unsubscribe,
    }
}

/// The failure event for a subscribe or unsubscribe request.
fn failed_event(request: RequestId, packet: &Packet, e: RequestError) -> Event {
    match packet {
        Packet::Subscribe(_) => Event::SubscribeDone {
            request,
            result: Err(e),
        },
        _ => Event::UnsubscribeDone {
            request,
            result: Err(e),
        },
    }
}

/// The outcome of a QoS 0 publish: sent, and that is all MQTT says of it.
fn qos0_outcome() -> PublishOutcome {
    PublishOutcome {
        packet_id: None,
        reason_code: PubAckReasonCode::Success,
        complete_reason: None,
        properties: AckProperties::default(),
    }
}

fn outcome_from_pubrec(
    packet_id: Option<NonZeroU16>,
    rec: Option<PubRec>,
    comp: Option<PubComp>,
) -> PublishOutcome {
    let (reason_code, mut properties) = match rec {
        Some(r) => (r.reason_code, r.properties),
        None => (PubAckReasonCode::Success, AckProperties::default()),
    };
    let complete_reason = comp.map(|c| {
        // PUBCOMP's reason string, if any, is the more recent word.
        if c.properties.reason_string.is_some() {
            properties = c.properties;
        }
        c.reason_code
    });
    PublishOutcome {
        packet_id,
        reason_code,
        complete_reason,
        properties,
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_auth;
#[cfg(test)]
mod tests_edges;
#[cfg(test)]
mod tests_v5;
