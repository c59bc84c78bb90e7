//! The `Client` handle: what applications call. Its methods mirror Python's
//! paho-mqtt (`connect`, `publish`, `subscribe`, `will_set`,
//! `username_pw_set`, ...) as async Rust, and every call that waits on the
//! broker gives back what the broker said.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::auth::Authenticator;
use crate::codec::{
    ConnAck, ConnectProperties, ConnectReasonCode, Disconnect, DisconnectReasonCode, EncodeError,
    LastWill, MqttString, ProtocolVersion, PubAckReasonCode, PubRelReasonCode, Publish,
    PublishProperties, QoS, StringError, SubAck, SubAckReasonCode, SubscribeProperties,
    SubscriptionOptions, UnsubAck, UnsubscribeProperties, WillProperties,
};
use crate::codec::{IntoTopicName, TopicFilter, TopicName};
use crate::eventloop::{Command, ConnectFailure, EventLoop, Outlets, PublishCommand, Reconnect};
use crate::queue;
use crate::request::Requests;
use crate::router::{RouteGuard, Routing, Sink, Subscription};
use crate::session::{
    CloseReason, PublishOutcome, RequestError, ResubscribeError, Session, SessionConfig,
};
use crate::topic::TopicError;
use crate::transport::{BrokerUrl, Endpoint, TlsOptions, TransportError, UrlError, WsOptions};

/// A message received from the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Message {
    /// The topic it was published to.
    pub topic: TopicName,
    /// The payload, shared with the buffer it was read into (no copy).
    pub payload: Bytes,
    /// The QoS it was delivered with.
    pub qos: QoS,
    /// True for a retained message sent because we subscribed (or, with
    /// 5.0 Retain As Published, as the publisher set it).
    pub retain: bool,
    /// True if the broker may have delivered it before.
    pub dup: bool,
    /// The packet identifier it came with (QoS 1 and 2), as tools such as
    /// `mosquitto_sub -F %m` show it.
    pub packet_id: Option<std::num::NonZeroU16>,
    /// 5.0 properties: content type, response topic, correlation data, user
    /// properties, message expiry, subscription identifiers, ...
    pub properties: PublishProperties,
}

impl Message {
    /// The payload as UTF-8 text, if it is.
    pub fn payload_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.payload).ok()
    }
}

impl From<Publish> for Message {
    fn from(p: Publish) -> Self {
        Message {
            topic: p.topic,
            payload: p.payload,
            qos: p.qos,
            retain: p.retain,
            dup: p.dup,
            packet_id: p.packet_id,
            properties: p.properties,
        }
    }
}

/// A change in the connection, like paho's `on_connect` / `on_disconnect`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ConnectionEvent {
    /// The broker accepted the connection; its CONNACK.
    Connected(Box<ConnAck>),
    /// The connection ended, and why.
    Disconnected(CloseReason),
    /// The client will try to connect again after `delay`. Attempts count
    /// 1, 2, ... from the last connection that stayed up for ten seconds;
    /// the delay doubles with each (see [`ClientBuilder::reconnect_delay`]).
    Reconnecting {
        /// Which attempt this will be.
        attempt: u32,
        /// How long the client waits first.
        delay: Duration,
        /// Why the last connection or attempt ended (e.g. "connection
        /// refused by 127.0.0.1:1883", "keepalive timeout: ...").
        cause: String,
    },
    /// After a reconnect that found the broker without our session, the
    /// client subscribed again to `filter` on its own (see
    /// [`ClientBuilder::resubscribe`]) and that failed: no messages come
    /// through it any more, until the application subscribes again.
    ResubscribeFailed {
        /// The filter that is no longer subscribed.
        filter: TopicFilter,
        /// Why.
        error: ResubscribeError,
    },
}

/// What [`Client::publish`] does when [`Client::max_queued_messages_set`]
/// messages are already waiting or in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueueFull {
    /// Wait for room (the default): `publish(..).await` returns once the
    /// message fits, which slows a fast publisher to the broker's pace.
    #[default]
    Wait,
    /// Fail at once with [`ClientError::QueueFull`].
    Error,
}

/// Everything that can go wrong using a [`Client`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// A topic name that cannot be published to (empty, wildcards, ...).
    #[error("invalid topic name: {0}")]
    InvalidTopic(TopicError),
    /// A topic filter that cannot be subscribed to.
    #[error("invalid topic filter: {0}")]
    InvalidFilter(TopicError),
    /// A client id, user name or other string MQTT cannot carry.
    #[error("invalid {what}: {error}")]
    InvalidString {
        /// Which argument.
        what: &'static str,
        /// What is wrong with it.
        error: StringError,
    },
    /// A publish larger than the broker accepts (its 5.0 Maximum Packet
    /// Size, or MQTT's 256 MiB).
    #[error("message of {size} bytes exceeds the maximum packet size of {max} bytes")]
    PacketTooLarge {
        /// Encoded size of the PUBLISH.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A QoS other than 0, 1 or 2 (from `QoS::try_from(n)?`).
    #[error(transparent)]
    InvalidQoS(#[from] crate::codec::InvalidQoS),
    /// Another argument the protocol cannot carry.
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// The packet could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// There is no connection (never connected, or it ended).
    #[error("not connected")]
    NotConnected,
    /// The queue of unfinished messages is full and the policy is
    /// [`QueueFull::Error`].
    #[error("too many messages queued ({0})")]
    QueueFull(usize),
    /// `connect` while a connection is already up.
    #[error("already connected")]
    AlreadyConnected,
    /// The network connection could not be made: host not found,
    /// connection refused, untrusted certificate, wrong host name, TLS
    /// handshake timeout, ...
    #[error("cannot connect: {0}")]
    Transport(#[from] TransportError),
    /// No CONNACK from the broker within the connect timeout.
    #[error("timed out waiting for the broker to accept the connection")]
    ConnectTimeout,
    /// A connection URL that cannot be used.
    #[error("invalid broker URL: {0}")]
    InvalidUrl(#[from] UrlError),
    /// The broker refused the connection.
    #[error("connection refused: {reason}{}{}", crate::session::fmt_reason_string(reason_string), server_reference.as_ref().map(|s| format!("; try {s}")).unwrap_or_default())]
    ConnectionRefused {
        /// Why (3.1.1 return codes map to these).
        reason: ConnectReasonCode,
        /// The broker's explanation (5.0).
        reason_string: Option<MqttString>,
        /// Another server to use (5.0, with 0x9C Use another server or
        /// 0x9D Server moved), if the broker named one. The client does
        /// not follow it on its own.
        server_reference: Option<MqttString>,
    },
    /// The connection ended before the broker answered.
    #[error("connection closed: {0}")]
    ConnectionClosed(CloseReason),
    /// The broker refused a QoS 1/2 publish (5.0 reason code ≥ 0x80).
    #[error(
        "publish refused: {reason}{}",
        crate::session::fmt_reason_string(reason_string)
    )]
    PublishRejected {
        /// The PUBACK or PUBREC reason code.
        reason: PubAckReasonCode,
        /// The broker's explanation.
        reason_string: Option<MqttString>,
    },
    /// The broker refused a QoS 2 publish at its last step: PUBCOMP with
    /// a 5.0 reason code ≥ 0x80 (0x92 Packet Identifier not found: the
    /// broker no longer knew the exchange).
    #[error(
        "publish not completed: {reason}{}",
        crate::session::fmt_reason_string(reason_string)
    )]
    PublishNotCompleted {
        /// The PUBCOMP reason code.
        reason: PubRelReasonCode,
        /// The broker's explanation.
        reason_string: Option<MqttString>,
    },
    /// The broker refused a subscription.
    #[error(
        "subscription refused: {reason}{}",
        crate::session::fmt_reason_string(reason_string)
    )]
    SubscribeRejected {
        /// The SUBACK reason code for the filter.
        reason: SubAckReasonCode,
        /// The broker's explanation (5.0).
        reason_string: Option<MqttString>,
    },
    /// No response came in time ([`Client::request`]).
    #[error("no response within {0:?}")]
    Timeout(Duration),
    /// The request could not be sent.
    #[error(transparent)]
    Request(RequestError),
}

impl From<RequestError> for ClientError {
    fn from(e: RequestError) -> Self {
        match e {
            RequestError::ConnectionClosed(reason) => ClientError::ConnectionClosed(reason),
            RequestError::PacketTooLarge { size, max } => ClientError::PacketTooLarge { size, max },
            other => ClientError::Request(other),
        }
    }
}

impl From<CloseReason> for ClientError {
    fn from(reason: CloseReason) -> Self {
        match reason {
            CloseReason::Refused {
                reason,
                reason_string,
                server_reference,
            } => ClientError::ConnectionRefused {
                reason,
                reason_string,
                server_reference,
            },
            CloseReason::ConnectTimeout => ClientError::ConnectTimeout,
            other => ClientError::ConnectionClosed(other),
        }
    }
}

fn string(what: &'static str, s: &str) -> Result<MqttString, ClientError> {
    MqttString::try_from(s).map_err(|error| ClientError::InvalidString { what, error })
}

/// Settings gathered before `connect`, like paho's setters.
#[derive(Clone)]
struct Options {
    client_id: String,
    protocol: ProtocolVersion,
    clean_start: bool,
    will: Option<LastWill>,
    username: Option<MqttString>,
    password: Option<Bytes>,
    connect_properties: ConnectProperties,
    max_inflight: u16,
    connect_timeout: Duration,
    message_capacity: usize,
    max_packet_size: usize,
    tls: Option<TlsOptions>,
    websocket: Option<WsOptions>,
    reconnect: bool,
    retry_first_connect: bool,
    reconnect_min: Duration,
    reconnect_max: Duration,
    max_queued: usize,
    queue_full: QueueFull,
    queue_qos0_offline: bool,
    resubscribe: bool,
    auto_topic_alias: bool,
    authenticator: Option<AuthenticatorFactory>,
}

/// Makes the authenticator for a connection (see [`Client::auth_set`]).
type AuthenticatorFactory = Arc<dyn Fn() -> Box<dyn Authenticator> + Send + Sync>;

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("client_id", &self.client_id)
            .field("protocol", &self.protocol)
            .field("clean_start", &self.clean_start)
            .field("will", &self.will)
            .field("username", &self.username)
            .field("password", &crate::codec::redacted(&self.password))
            .field("connect_properties", &self.connect_properties)
            .field("max_inflight", &self.max_inflight)
            .field("connect_timeout", &self.connect_timeout)
            .field("message_capacity", &self.message_capacity)
            .field("max_packet_size", &self.max_packet_size)
            .field("tls", &self.tls)
            .field("websocket", &self.websocket)
            .field("reconnect", &self.reconnect)
            .field("retry_first_connect", &self.retry_first_connect)
            .field("reconnect_delay", &(self.reconnect_min, self.reconnect_max))
            .field("max_queued", &self.max_queued)
            .field("queue_full", &self.queue_full)
            .field("queue_qos0_offline", &self.queue_qos0_offline)
            .field("resubscribe", &self.resubscribe)
            .field("auto_topic_alias", &self.auto_topic_alias)
            .field(
                "authenticator",
                &self.authenticator.as_ref().map(|_| "<set>"),
            )
            .finish()
    }
}

/// Builds a [`Client`] with settings other than [`Client::new`]'s.
///
/// ```
/// use plover::{Client, codec::ProtocolVersion};
///
/// let client = Client::builder("kitchen-sensor")
///     .protocol(ProtocolVersion::V5)
///     .clean_start(false)
///     .max_inflight_messages(50)
///     .build();
/// ```
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    options: Options,
}

impl ClientBuilder {
    /// The MQTT version to speak (default 3.1.1, see [`Client::new`]).
    pub fn protocol(mut self, version: ProtocolVersion) -> Self {
        self.options.protocol = version;
        self
    }

    /// 3.1.1 Clean Session / 5.0 Clean Start (default true). With false the
    /// broker keeps our subscriptions and queues QoS 1/2 messages while we
    /// are away (in 5.0, also set a Session Expiry Interval with
    /// [`session_expiry`](Self::session_expiry)).
    ///
    /// In 5.0, true means a clean *first* start, as in paho's default: the
    /// first connection starts a new session and reconnects ask to resume
    /// it, so with a session expiry a dropped link loses nothing the broker
    /// kept. In 3.1.1 every connection uses the flag as set, since there it
    /// also decides whether the broker keeps the session at all.
    pub fn clean_start(mut self, clean: bool) -> Self {
        self.options.clean_start = clean;
        self
    }

    /// 5.0: seconds the broker keeps the session after a disconnect.
    pub fn session_expiry(mut self, seconds: u32) -> Self {
        self.options.connect_properties.session_expiry_interval = Some(seconds);
        self
    }

    /// 5.0 CONNECT properties, replacing any set so far.
    pub fn connect_properties(mut self, properties: ConnectProperties) -> Self {
        self.options.connect_properties = properties;
        self
    }

    /// Most outgoing QoS 1/2 messages awaiting acknowledgement at once
    /// (default 20, as paho). Further publishes wait their turn, in order.
    pub fn max_inflight_messages(mut self, n: u16) -> Self {
        self.options.max_inflight = n.max(1);
        self
    }

    /// How long `connect` waits for the TCP connection and the CONNACK
    /// (default 30 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.options.connect_timeout = timeout;
        self
    }

    /// How many received messages may wait for the application before the
    /// client stops reading from the network (default 1,024). See
    /// [`Client::messages`].
    pub fn message_capacity(mut self, n: usize) -> Self {
        self.options.message_capacity = n.max(1);
        self
    }

    /// The largest packet we accept from the broker (default 16 MiB);
    /// advertised in 5.0 as our Maximum Packet Size.
    pub fn max_packet_size(mut self, bytes: usize) -> Self {
        self.options.max_packet_size = bytes.clamp(16, 268_435_460);
        self
    }

    /// Connect over WebSocket (paho's `transport="websockets"`), with the
    /// default path `/mqtt`; see [`Client::ws_set_options`]. Needs the
    /// `websocket` feature.
    pub fn websockets(mut self) -> Self {
        self.options
            .websocket
            .get_or_insert_with(WsOptions::default);
        self
    }

    /// Reconnect automatically when a connection ends for a reason that may
    /// pass (default true). A refusal for good (bad credentials, not
    /// authorised, banned), a protocol version the broker does not speak,
    /// or [`Client::disconnect`] stop the client regardless.
    pub fn automatic_reconnect(mut self, on: bool) -> Self {
        self.options.reconnect = on;
        self
    }

    /// What `connect` does when the very first attempt fails (default
    /// false: it returns the error, as paho's `connect` raises). With true
    /// it keeps trying with the reconnect backoff until the broker accepts
    /// or refuses for good, and returns then.
    pub fn retry_first_connect(mut self, on: bool) -> Self {
        self.options.retry_first_connect = on;
        self
    }

    /// Reconnect backoff: start at `min`, double per failed attempt up to
    /// `max` (defaults 1 s and 120 s, as paho), with random jitter.
    pub fn reconnect_delay(mut self, min: Duration, max: Duration) -> Self {
        self.options.reconnect_min = min;
        self.options.reconnect_max = max.max(min);
        self
    }

    /// Most messages published but not finished (queued while offline,
    /// waiting for an in-flight slot, or awaiting their acknowledgement);
    /// default 1,000. See [`queue_full`](Self::queue_full).
    pub fn max_queued_messages(mut self, n: usize) -> Self {
        self.options.max_queued = n.max(1);
        self
    }

    /// What `publish` does when the queue is full (default: wait).
    pub fn queue_full(mut self, policy: QueueFull) -> Self {
        self.options.queue_full = policy;
        self
    }

    /// Queue QoS 0 messages published while disconnected, to send after
    /// reconnecting (default false: such a publish fails with
    /// [`ClientError::NotConnected`], as QoS 0 promises nothing anyway).
    pub fn queue_qos0_offline(mut self, on: bool) -> Self {
        self.options.queue_qos0_offline = on;
        self
    }

    /// 5.0: send repeated topics as Topic Aliases, up to the broker's Topic
    /// Alias Maximum (default false). Aliases are per connection and start
    /// afresh after a reconnect; messages resent after a reconnect carry
    /// their full topic.
    pub fn topic_alias_auto(mut self, on: bool) -> Self {
        self.options.auto_topic_alias = on;
        self
    }

    /// Subscribe again to everything subscribed when a reconnect finds the
    /// broker without our session (default true).
    pub fn resubscribe(mut self, on: bool) -> Self {
        self.options.resubscribe = on;
        self
    }

    /// The client.
    pub fn build(self) -> Client {
        Client::from_options(self.options)
    }
}

/// The live connection, once `connect` succeeded.
#[derive(Debug, Clone)]
pub(crate) struct Connection {
    commands: mpsc::Sender<Command>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) version: ProtocolVersion,
    /// Places in the queue of unfinished publishes.
    queue: Arc<tokio::sync::Semaphore>,
    max_queued: usize,
    queue_full: QueueFull,
    queue_qos0_offline: bool,
    /// The Session Expiry Interval our CONNECT asked for (5.0; 0 if none).
    session_expiry: u32,
}

/// State the event loop keeps current for the handles.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) connected: AtomicBool,
    /// The broker's Maximum Packet Size (5.0), or MQTT's limit.
    pub(crate) broker_max_packet: AtomicUsize,
    /// The latest CONNACK (Subscription Identifiers available, Response
    /// Information, assigned client id, ...).
    pub(crate) connack: Mutex<Option<Arc<ConnAck>>>,
}

impl Shared {
    fn new() -> Self {
        Shared {
            connected: AtomicBool::new(false),
            broker_max_packet: AtomicUsize::new(MAX_PACKET),
            connack: Mutex::new(None),
        }
    }

    /// The latest CONNACK, if one came.
    pub(crate) fn connack(&self) -> Option<Arc<ConnAck>> {
        self.connack
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// How many connection events a lagging `ConnectionEvents` receiver may
/// fall behind before it loses the oldest.
const EVENT_CAPACITY: usize = 16;

/// Where connection events go: a broadcast channel made when the first
/// [`ConnectionEvents`] receiver asks for one. Events sent before that had
/// nobody to hear them either way, and a client nobody watches (one of
/// thousands in a process, say) does not pay for the channel's slots,
/// which it allocates all at once.
#[derive(Debug, Default)]
pub(crate) struct EventHub {
    tx: Mutex<Option<broadcast::Sender<ConnectionEvent>>>,
}

impl EventHub {
    fn lock(&self) -> MutexGuard<'_, Option<broadcast::Sender<ConnectionEvent>>> {
        self.tx.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands `event` to every receiver there is.
    pub(crate) fn send(&self, event: ConnectionEvent) {
        if let Some(tx) = self.lock().as_ref() {
            let _ = tx.send(event);
        }
    }

    fn subscribe(&self) -> broadcast::Receiver<ConnectionEvent> {
        self.lock()
            .get_or_insert_with(|| broadcast::channel(EVENT_CAPACITY).0)
            .subscribe()
    }
}

/// MQTT's own limit: one byte of header, four of length, 268,435,455 of body.
const MAX_PACKET: usize = 268_435_460;

#[derive(Debug)]
struct Inner {
    options: Mutex<Options>,
    /// Shared by reference count, so a publish takes one increment to get
    /// at the connection rather than one per field.
    connection: Mutex<Option<Arc<Connection>>>,
    messages_tx: queue::Sender<Message>,
    messages_rx: Mutex<Option<queue::Receiver<Message>>>,
    /// Set once `messages()` took `messages_rx`.
    messages_taken: Arc<AtomicBool>,
    events: Arc<EventHub>,
    /// Subscription streams and message callbacks, shared with the loop.
    routing: Arc<Routing>,
    /// `request`'s response subscription and the requests awaiting answers.
    requests: Requests,
}

/// A handle to an MQTT client. Cheap to clone; every clone drives the same
/// connection, and it is `Send + Sync`.
///
/// ```no_run
/// use plover::{Client, codec::QoS};
///
/// # async fn run() -> Result<(), plover::ClientError> {
/// let client = Client::new("kitchen-sensor");
/// client.will_set("home/kitchen/status", "offline", QoS::AtLeastOnce, true)?;
/// client.connect("localhost", 1883, 60).await?;
///
/// // Resolves when the broker has acknowledged the message (PUBACK).
/// client.publish("home/kitchen/temperature", "21.5", QoS::AtLeastOnce, false).await?.await?;
///
/// let mut messages = client.messages();
/// client.subscribe("home/+/command", QoS::AtLeastOnce).await?;
/// while let Some(msg) = messages.recv().await {
///     println!("{} {:?}", msg.topic, msg.payload);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

// The promise above, kept by the compiler: a change that made `Client`
// lose `Send` or `Sync` fails to build here rather than in users' code.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Client>();
    assert_send_sync::<PublishHandle>();
    assert_send_sync::<Messages>();
    assert_send_sync::<ConnectionEvents>();
};

impl Client {
    /// A client with this client id, speaking MQTT 3.1.1 with a clean
    /// session.
    ///
    /// 3.1.1 is the default, as in paho-mqtt, because every broker and
    /// device speaks it; choose 5.0 with [`Client::builder`] for its
    /// reason codes, properties and flow control. An empty client id asks
    /// the broker to assign one (3.1.1 then requires a clean session).
    pub fn new(client_id: impl Into<String>) -> Client {
        Client::builder(client_id).build()
    }

    /// A builder for the settings `new` does not take.
    pub fn builder(client_id: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            options: Options {
                client_id: client_id.into(),
                protocol: ProtocolVersion::V311,
                clean_start: true,
                will: None,
                username: None,
                password: None,
                connect_properties: ConnectProperties::default(),
                max_inflight: 20,
                connect_timeout: Duration::from_secs(30),
                message_capacity: 1024,
                max_packet_size: 16 * 1024 * 1024,
                tls: None,
                websocket: None,
                reconnect: true,
                retry_first_connect: false,
                reconnect_min: Duration::from_secs(1),
                reconnect_max: Duration::from_secs(120),
                max_queued: 1000,
                queue_full: QueueFull::Wait,
                queue_qos0_offline: false,
                resubscribe: true,
                auto_topic_alias: false,
                authenticator: None,
            },
        }
    }

    fn from_options(options: Options) -> Client {
        let (messages_tx, messages_rx) = queue::channel(options.message_capacity);
        let events = Arc::new(EventHub::default());
        Client {
            inner: Arc::new(Inner {
                options: Mutex::new(options),
                connection: Mutex::new(None),
                messages_tx,
                messages_rx: Mutex::new(Some(messages_rx)),
                messages_taken: Arc::new(AtomicBool::new(false)),
                events,
                routing: Arc::new(Routing::new()),
                requests: Requests::new(),
            }),
        }
    }

    fn options(&self) -> MutexGuard<'_, Options> {
        // A panic while holding this lock cannot leave the options half
        // written (every update is a single assignment), so a poisoned lock
        // is still fine to use.
        self.inner.options.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn connection(&self) -> Result<Arc<Connection>, ClientError> {
        let guard = self
            .inner
            .connection
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match guard.as_ref() {
            Some(c) if !c.commands.is_closed() => Ok(c.clone()),
            _ => Err(ClientError::NotConnected),
        }
    }

    /// The protocol version this client speaks.
    pub fn protocol(&self) -> ProtocolVersion {
        self.options().protocol
    }

    /// Sets the user name and optional password for the next `connect`.
    ///
    /// ```
    /// # let client = plover::Client::new("id");
    /// client.username_pw_set("alice", Some("secret"))?;
    /// # Ok::<(), plover::ClientError>(())
    /// ```
    ///
    /// MQTT 5.0 also allows a password without a user name
    /// (`username_pw_set(None, Some("token"))`); 3.1.1 does not, and says so
    /// with [`ClientError::InvalidArgument`].
    pub fn username_pw_set<'a>(
        &self,
        username: impl Into<Option<&'a str>>,
        password: Option<&str>,
    ) -> Result<(), ClientError> {
        let username = username
            .into()
            .map(|u| string("user name", u))
            .transpose()?;
        let password = password.map(|p| Bytes::copy_from_slice(p.as_bytes()));
        if password.as_ref().is_some_and(|p| p.len() > 65_535) {
            return Err(ClientError::InvalidArgument(
                "password longer than 65535 bytes",
            ));
        }
        let mut o = self.options();
        if username.is_none() && password.is_some() && o.protocol == ProtocolVersion::V311 {
            // [MQTT-3.1.2-22]
            return Err(ClientError::InvalidArgument(
                "MQTT 3.1.1 has no password without a user name",
            ));
        }
        o.username = username;
        o.password = password;
        Ok(())
    }

    /// Sets the will: the message the broker publishes for us if we vanish
    /// without `disconnect`. Applies from the next `connect`.
    pub fn will_set(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Result<(), ClientError> {
        self.will_set_with_properties(topic, payload, qos, retain, WillProperties::default())
    }

    /// [`will_set`](Self::will_set) with 5.0 will properties (will delay,
    /// message expiry, content type, ...).
    pub fn will_set_with_properties(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
        properties: WillProperties,
    ) -> Result<(), ClientError> {
        let topic = TopicName::try_from(topic).map_err(ClientError::InvalidTopic)?;
        let payload = payload.into();
        if payload.len() > 65_535 {
            return Err(ClientError::InvalidArgument(
                "will payload longer than 65535 bytes",
            ));
        }
        let will = LastWill {
            topic,
            payload,
            qos,
            retain,
            properties,
        };
        self.options().will = Some(will);
        Ok(())
    }

    /// Uses MQTT 5.0 enhanced authentication from the next `connect`:
    /// `make` builds the [`Authenticator`] (e.g.
    /// [`ScramSha256`](crate::auth::ScramSha256)) that runs the AUTH
    /// exchange on connect, on every reconnect and on
    /// [`reauthenticate`](Self::reauthenticate). A failure on our side ends
    /// the connection with `CloseReason::Authentication` and is not retried.
    pub fn auth_set<A, F>(&self, make: F)
    where
        A: Authenticator + 'static,
        F: Fn() -> A + Send + Sync + 'static,
    {
        self.options().authenticator = Some(Arc::new(move || Box::new(make())));
    }

    /// Stops using enhanced authentication (from the next `connect`).
    pub fn auth_clear(&self) {
        self.options().authenticator = None;
    }

    /// Re-authenticates on the live connection (5.0 §4.12.1), e.g. before a
    /// token expires. Returns once the request is queued; a failed
    /// re-authentication ends the connection (see `connection_events`).
    pub async fn reauthenticate(&self) -> Result<(), ClientError> {
        let conn = self.connection()?;
        conn.commands
            .send(Command::Reauthenticate)
            .await
            .map_err(|_| ClientError::NotConnected)
    }

    /// Removes the will.
    pub fn will_clear(&self) {
        self.options().will = None;
    }

    /// Most outgoing QoS 1/2 messages in flight at once, from the next
    /// `connect` (paho's `max_inflight_messages_set`; default 20).
    pub fn max_inflight_messages_set(&self, n: u16) {
        self.options().max_inflight = n.max(1);
    }

    /// Most messages published and not finished, from the next `connect`
    /// (paho's `max_queued_messages_set`; default 1,000). See
    /// [`ClientBuilder::max_queued_messages`] and [`ClientBuilder::queue_full`].
    pub fn max_queued_messages_set(&self, n: usize) {
        self.options().max_queued = n.max(1);
    }

    /// Reconnect backoff bounds, from the next `connect` (paho's
    /// `reconnect_delay_set`; defaults 1 s and 120 s).
    pub fn reconnect_delay_set(&self, min: Duration, max: Duration) {
        let mut o = self.options();
        o.reconnect_min = min;
        o.reconnect_max = max.max(min);
    }

    /// Connects to `host:port` over TCP, sends CONNECT and waits for the
    /// broker's answer. `keepalive` is in seconds (0: none).
    ///
    /// On success the connection is driven by a background task (like
    /// paho's `loop_start`): nothing else needs polling. A refusal is
    /// [`ClientError::ConnectionRefused`] with the broker's reason code.
    ///
    /// Cancel safety: cancelling the future before it completes drops the
    /// half-made connection.
    pub async fn connect(
        &self,
        host: &str,
        port: u16,
        keepalive: u16,
    ) -> Result<ConnAck, ClientError> {
        if self.connection().is_ok() {
            return Err(ClientError::AlreadyConnected);
        }
        let options = self.options().clone();
        let endpoint = Endpoint {
            host: host.to_owned(),
            port,
            tls: options.tls.clone(),
            websocket: options.websocket.clone(),
        };
        self.start(endpoint, keepalive, options).await
    }

    /// Connects to the broker a URL names: `mqtt://host[:1883]`,
    /// `mqtts://host[:8883]`, `ws://host[:80][/mqtt]` or
    /// `wss://host[:443][/mqtt]`, optionally with `user:password@` (which
    /// replaces any set with [`username_pw_set`](Self::username_pw_set)).
    ///
    /// `mqtts` and `wss` verify the server against the Mozilla roots unless
    /// [`tls_set`](Self::tls_set) chose otherwise.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), plover::ClientError> {
    /// let client = plover::Client::new("dashboard");
    /// client.connect_url("mqtts://user:password@broker.example.com", 60).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// Cancel safety: as [`connect`](Self::connect).
    pub async fn connect_url(&self, url: &str, keepalive: u16) -> Result<ConnAck, ClientError> {
        if self.connection().is_ok() {
            return Err(ClientError::AlreadyConnected);
        }
        let url: BrokerUrl = url.parse()?;
        if let Some(user) = &url.username {
            self.username_pw_set(user.as_str(), url.password.as_deref())?;
        }
        let options = self.options().clone();
        let tls = match (url.scheme.is_tls(), &options.tls) {
            (true, Some(tls)) => Some(tls.clone()),
            (true, None) => Some(TlsOptions::new()),
            (false, _) => None,
        };
        let websocket = url.scheme.is_websocket().then(|| WsOptions {
            path: url.path.clone(),
            headers: options
                .websocket
                .as_ref()
                .map(|w| w.headers.clone())
                .unwrap_or_default(),
        });
        let endpoint = Endpoint {
            host: url.host.clone(),
            port: url.port,
            tls,
            websocket,
        };
        self.start(endpoint, keepalive, options).await
    }

    /// Uses TLS from the next `connect`, with these settings: which servers
    /// to trust (the Mozilla roots by default, or your CA), an optional
    /// client certificate for mutual TLS, ALPN, or a whole
    /// `rustls::ClientConfig`. See [`TlsOptions`].
    pub fn tls_set(&self, options: TlsOptions) {
        self.options().tls = Some(options);
    }

    /// Goes back to plain TCP (or plain WebSocket).
    pub fn tls_clear(&self) {
        self.options().tls = None;
    }

    /// WebSocket settings (paho's `ws_set_options`): the request path and
    /// extra headers. Also switches the client to WebSocket, as
    /// [`ClientBuilder::websockets`] does. Needs the `websocket` feature.
    pub fn ws_set_options(&self, path: &str, headers: &[(&str, &str)]) {
        self.options().websocket = Some(WsOptions {
            path: path.to_owned(),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        });
    }

    /// Starts the event loop for `endpoint` and waits for its first CONNACK.
    async fn start(
        &self,
        endpoint: Endpoint,
        keepalive: u16,
        options: Options,
    ) -> Result<ConnAck, ClientError> {
        let client_id = string("client id", &options.client_id)?;
        if options.authenticator.is_some() && options.protocol == ProtocolVersion::V311 {
            return Err(ClientError::InvalidArgument(
                "enhanced authentication (auth_set) needs MQTT 5.0",
            ));
        }
        if client_id.is_empty() && !options.clean_start && options.protocol == ProtocolVersion::V311
        {
            // [MQTT-3.1.3-7]: a zero-byte client id needs Clean Session 1.
            return Err(ClientError::InvalidArgument(
                "an empty client id requires a clean session in MQTT 3.1.1",
            ));
        }
        let mut connect_properties = options.connect_properties.clone();
        // What we tell a 5.0 broker we accept is what the decoder enforces:
        // a smaller Maximum Packet Size set in the CONNECT properties wins.
        let mut max_packet_size = options.max_packet_size;
        if options.protocol == ProtocolVersion::V5 {
            match connect_properties.maximum_packet_size {
                Some(advertised) => max_packet_size = advertised as usize,
                None => {
                    connect_properties.maximum_packet_size = u32::try_from(max_packet_size).ok();
                }
            }
        }
        let session_expiry = connect_properties.session_expiry_interval;
        let config = SessionConfig {
            version: options.protocol,
            client_id,
            clean_start: options.clean_start,
            keep_alive: keepalive,
            will: options.will.clone(),
            username: options.username.clone(),
            password: options.password.clone(),
            connect_properties,
            max_inflight: options.max_inflight,
            connect_timeout: options.connect_timeout,
            resubscribe: options.resubscribe,
            auto_topic_alias: options.auto_topic_alias,
        };
        let shared = Arc::new(Shared::new());
        let (commands, commands_rx) = mpsc::channel(256);
        let (connack_tx, connack_rx) = oneshot::channel();
        let outlets = Outlets {
            messages: self.inner.messages_tx.clone(),
            events: self.inner.events.clone(),
            connack: Some(connack_tx),
            shared: shared.clone(),
            messages_taken: self.inner.messages_taken.clone(),
            routing: self.inner.routing.clone(),
        };
        let reconnect = Reconnect {
            endpoint,
            connect_timeout: options.connect_timeout,
            enabled: options.reconnect,
            retry_first: options.retry_first_connect,
            min_delay: options.reconnect_min,
            max_delay: options.reconnect_max,
        };
        let mut session = Session::new(config);
        session.set_authenticator(options.authenticator.as_ref().map(|make| make()));
        let event_loop = EventLoop::new(session, commands_rx, outlets, reconnect, max_packet_size);
        *self
            .inner
            .connection
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(Connection {
            commands,
            shared,
            version: options.protocol,
            queue: Arc::new(tokio::sync::Semaphore::new(options.max_queued)),
            max_queued: options.max_queued,
            queue_full: options.queue_full,
            queue_qos0_offline: options.queue_qos0_offline,
            session_expiry: session_expiry.unwrap_or(0),
        }));
        tokio::spawn(event_loop.run());
        let result = match connack_rx.await {
            Ok(Ok(connack)) => return Ok(connack),
            Ok(Err(ConnectFailure::Transport(e))) => Err(ClientError::Transport(e)),
            Ok(Err(ConnectFailure::Closed(reason))) => Err(reason.into()),
            Err(_) => Err(ClientError::NotConnected),
        };
        // The loop answers before it has dropped its end of the command
        // channel; forget the failed connection now so that an immediate
        // second `connect` is not taken for a live one.
        *self
            .inner
            .connection
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
        result
    }

    /// True while connected to the broker.
    pub fn is_connected(&self) -> bool {
        self.connection()
            .is_ok_and(|c| c.shared.connected.load(Ordering::Acquire))
    }

    /// Publishes `payload` to `topic`.
    ///
    /// Returns once the message is queued, with a [`PublishHandle`] that
    /// resolves when the broker has it: QoS 0 when it is written to the
    /// network, QoS 1 on PUBACK, QoS 2 on PUBCOMP. Awaiting the handle is
    /// optional. Invalid arguments fail here, before anything is sent.
    ///
    /// `topic` is a `&str` or `String`, or a [`TopicName`] made once for a
    /// topic published to often (see [`IntoTopicName`]).
    ///
    /// Cancel safety: if this future is cancelled before it returns, the
    /// message may or may not have been queued.
    pub async fn publish(
        &self,
        topic: impl IntoTopicName,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Result<PublishHandle, ClientError> {
        self.publish_with_properties(topic, payload, qos, retain, PublishProperties::default())
            .await
    }

    /// [`publish`](Self::publish) with 5.0 properties (content type,
    /// response topic, correlation data, user properties, message expiry).
    ///
    /// Cancel safety: as [`publish`](Self::publish).
    pub async fn publish_with_properties(
        &self,
        topic: impl IntoTopicName,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
        properties: PublishProperties,
    ) -> Result<PublishHandle, ClientError> {
        let topic = topic.into_topic_name().map_err(ClientError::InvalidTopic)?;
        if !properties.subscription_identifiers.is_empty() {
            // [MQTT-3.3.4-6]: only the broker puts these in a PUBLISH.
            return Err(ClientError::InvalidArgument(
                "a client's PUBLISH cannot carry subscription identifiers",
            ));
        }
        let conn = self.connection()?;
        // Boxed once, here: the event loop and the session keep this box
        // until the message is done. Sized as it will travel (a QoS 1/2
        // packet id takes two bytes; the session assigns the real one).
        let publish = Box::new(Publish {
            dup: false,
            qos,
            retain,
            topic,
            packet_id: (qos != QoS::AtMostOnce).then_some(std::num::NonZeroU16::MIN),
            properties,
            payload: payload.into(),
        });
        let size = match publish.encoded_len(conn.version) {
            Ok(size) => size,
            // Over MQTT's own 256 MiB: the same error as over the broker's.
            Err(EncodeError::PacketTooLarge(remaining)) => {
                return Err(ClientError::PacketTooLarge {
                    // One byte of header and the longest length field.
                    size: remaining.saturating_add(5),
                    max: MAX_PACKET,
                });
            }
            Err(e) => return Err(e.into()),
        };
        let max = conn.shared.broker_max_packet.load(Ordering::Acquire);
        if size > max {
            return Err(ClientError::PacketTooLarge { size, max });
        }
        let online = conn.shared.connected.load(Ordering::Acquire);
        if qos == QoS::AtMostOnce && !online && !conn.queue_qos0_offline {
            return Err(ClientError::NotConnected);
        }
        let permit = match conn.queue_full {
            QueueFull::Wait => conn.queue.clone().acquire_owned().await.ok(),
            QueueFull::Error => Some(
                conn.queue
                    .clone()
                    .try_acquire_owned()
                    .map_err(|_| ClientError::QueueFull(conn.max_queued))?,
            ),
        };
        let (done, rx) = oneshot::channel();
        conn.commands
            .send(Command::Publish(PublishCommand {
                publish,
                done,
                permit,
            }))
            .await
            .map_err(|_| ClientError::NotConnected)?;
        Ok(PublishHandle { rx })
    }

    /// Subscribes to one filter and returns the QoS the broker granted.
    ///
    /// A refusal (SUBACK failure code) is [`ClientError::SubscribeRejected`].
    ///
    /// Cancel safety: cancelling after the request was queued does not
    /// withdraw it; the subscription may still be made.
    pub async fn subscribe(&self, filter: &str, qos: QoS) -> Result<QoS, ClientError> {
        let ack = self
            .subscribe_many(
                &[(filter, SubscriptionOptions::new(qos))],
                SubscribeProperties::default(),
            )
            .await?;
        let code = ack
            .reason_codes
            .first()
            .copied()
            .unwrap_or(SubAckReasonCode::UnspecifiedError);
        code.granted_qos()
            .ok_or_else(|| ClientError::SubscribeRejected {
                reason: code,
                reason_string: ack.properties.reason_string.clone(),
            })
    }

    /// Subscribes to several filters in one SUBSCRIBE, each with its own
    /// options (5.0: no local, retain as published, retain handling), and
    /// returns the SUBACK: one reason code per filter, in order.
    ///
    /// A 5.0 Subscription Identifier in `properties` may not be one that a
    /// live [`Subscription`] stream was numbered with by the client
    /// ([`ClientError::InvalidArgument`]): their messages could not be told
    /// apart.
    ///
    /// Cancel safety: as [`subscribe`](Self::subscribe).
    pub async fn subscribe_many(
        &self,
        filters: &[(&str, SubscriptionOptions)],
        properties: SubscribeProperties,
    ) -> Result<SubAck, ClientError> {
        let list = subscribe_list(filters)?;
        let conn = self.connection()?;
        if let Some(id) = properties.subscription_identifier {
            self.inner
                .routing
                .update(|t| t.note_caller_id(id))
                .map_err(|_| {
                    ClientError::InvalidArgument(
                        "subscription identifier in use by a subscription stream",
                    )
                })?;
        }
        Self::send_subscribe(&conn, list, properties).await
    }

    /// Sends a SUBSCRIBE and waits for its SUBACK.
    async fn send_subscribe(
        conn: &Connection,
        list: Vec<(TopicFilter, SubscriptionOptions)>,
        properties: SubscribeProperties,
    ) -> Result<SubAck, ClientError> {
        let (done, rx) = oneshot::channel();
        conn.commands
            .send(Command::Subscribe {
                filters: list,
                properties: Box::new(properties),
                done,
            })
            .await
            .map_err(|_| ClientError::NotConnected)?;
        Ok(rx.await.map_err(|_| ClientError::NotConnected)??)
    }

    /// Subscribes to one filter and returns the granted QoS with a
    /// [`Subscription`]: a stream of exactly the messages that arrive
    /// through this subscription.
    ///
    /// With MQTT 5.0 the client gives the SUBSCRIBE a fresh Subscription
    /// Identifier and routes by the identifiers each message carries, so
    /// overlapping subscriptions each get their own copy and nothing else
    /// (unless the broker's CONNACK said it has no Subscription
    /// Identifiers). With 3.1.1 it routes by matching the topic against the
    /// filter, `$share/{group}/` filters included, and a message matching
    /// several subscription streams goes to each of them.
    ///
    /// Messages that go to a subscription stream (or to a
    /// [message callback](Self::message_callback_add)) do not also go to
    /// [`messages`](Self::messages), which gets the rest. Dropping the
    /// stream stops routing to it but keeps the broker's subscription until
    /// [`unsubscribe`](Self::unsubscribe); its messages then go to
    /// `messages()`.
    ///
    /// ```no_run
    /// use plover::{Client, QoS};
    ///
    /// # async fn run(client: Client) -> Result<(), plover::ClientError> {
    /// let (_, mut alarms) = client.subscribe_stream("home/+/alarm", QoS::AtLeastOnce).await?;
    /// let (_, mut readings) = client.subscribe_stream("home/+/temperature", QoS::AtMostOnce).await?;
    /// loop {
    ///     tokio::select! {
    ///         Some(alarm) = alarms.recv() => println!("ALARM {}", alarm.topic),
    ///         Some(reading) = readings.recv() => println!("{} {:?}", reading.topic, reading.payload),
    ///         else => break,
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// A refusal is [`ClientError::SubscribeRejected`].
    ///
    /// Cancel safety: cancelling after the request was queued does not
    /// withdraw it; the subscription may still be made, and its messages
    /// then go to `messages()`.
    pub async fn subscribe_stream(
        &self,
        filter: &str,
        qos: QoS,
    ) -> Result<(QoS, Subscription), ClientError> {
        let (ack, subscription) = self
            .subscribe_many_stream(
                &[(filter, SubscriptionOptions::new(qos))],
                SubscribeProperties::default(),
            )
            .await?;
        let code = ack
            .reason_codes
            .first()
            .copied()
            .unwrap_or(SubAckReasonCode::UnspecifiedError);
        match code.granted_qos() {
            Some(granted) => Ok((granted, subscription)),
            None => Err(ClientError::SubscribeRejected {
                reason: code,
                reason_string: ack.properties.reason_string.clone(),
            }),
        }
    }

    /// [`subscribe_stream`](Self::subscribe_stream) for several filters in
    /// one SUBSCRIBE, with 5.0 options and properties; returns the SUBACK
    /// (one reason code per filter: check them) and one stream for all the
    /// filters.
    ///
    /// If `properties` carries a Subscription Identifier the client uses
    /// it rather than choosing one (it may not be one the client chose for
    /// another live stream). A 5.0 broker sends a message matching two
    /// filters of one SUBSCRIBE once per filter (mosquitto does), so the
    /// stream then gets it twice, as `messages()` would.
    ///
    /// Cancel safety: as [`subscribe_stream`](Self::subscribe_stream).
    pub async fn subscribe_many_stream(
        &self,
        filters: &[(&str, SubscriptionOptions)],
        properties: SubscribeProperties,
    ) -> Result<(SubAck, Subscription), ClientError> {
        let capacity = self.options().message_capacity;
        let (tx, rx) = queue::channel(capacity);
        let (ack, routed) = self
            .subscribe_routed(filters, properties, Sink::Stream(tx))
            .await?;
        let subscription = Subscription::new(rx, routed.filters, routed.identifier, routed.guard);
        Ok((ack, subscription))
    }

    /// Subscribes with a route for the SUBSCRIBE's messages into `sink`,
    /// made before the SUBSCRIBE goes out so that none (a retained message
    /// right after the SUBACK, say) is missed. The route lasts as long as
    /// the returned guard.
    pub(crate) async fn subscribe_routed(
        &self,
        filters: &[(&str, SubscriptionOptions)],
        mut properties: SubscribeProperties,
        sink: Sink,
    ) -> Result<(SubAck, Routed), ClientError> {
        let list = subscribe_list(filters)?;
        let conn = self.connection()?;
        // Route by identifier where the broker tags messages with them:
        // 5.0, unless its CONNACK said Subscription Identifiers are not
        // available (absent means available).
        let by_id = conn.version == ProtocolVersion::V5
            && conn
                .shared
                .connack()
                .is_none_or(|c| c.properties.subscription_identifiers_available != Some(false));
        let route_filters: Vec<TopicFilter> = list.iter().map(|(f, _)| f.clone()).collect();
        let caller_id = properties.subscription_identifier;
        let (id, identifier) = self.inner.routing.update(|t| {
            let identifier = match caller_id {
                Some(id) => {
                    t.note_caller_id(id).map_err(|_| {
                        ClientError::InvalidArgument(
                            "subscription identifier in use by a subscription stream",
                        )
                    })?;
                    by_id.then_some(id)
                }
                None if by_id => Some(t.allocate_subscription_id().ok_or(
                    ClientError::InvalidArgument("no subscription identifiers left"),
                )?),
                None => None,
            };
            let automatic = caller_id.is_none();
            let id = t.add_route(route_filters.clone(), identifier, automatic, sink);
            Ok::<_, ClientError>((id, identifier))
        })?;
        // From here on the guard removes the route if this future is
        // dropped or the subscribe fails.
        let guard = RouteGuard::new(&self.inner.routing, id);
        if caller_id.is_none() {
            properties.subscription_identifier = identifier;
        }
        let ack = Self::send_subscribe(&conn, list, properties).await?;
        Ok((
            ack,
            Routed {
                guard,
                filters: route_filters,
                identifier,
            },
        ))
    }

    /// The state of [`request`](Self::request).
    pub(crate) fn requests(&self) -> &Requests {
        &self.inner.requests
    }

    /// The client id set for this client (empty: the broker assigns one).
    pub(crate) fn configured_client_id(&self) -> String {
        self.options().client_id.clone()
    }

    /// Unsubscribes from one filter and waits for the UNSUBACK.
    ///
    /// Cancel safety: cancelling after the request was queued does not
    /// withdraw it.
    pub async fn unsubscribe(&self, filter: &str) -> Result<UnsubAck, ClientError> {
        self.unsubscribe_many(&[filter], UnsubscribeProperties::default())
            .await
    }

    /// Unsubscribes from several filters in one UNSUBSCRIBE.
    ///
    /// Cancel safety: as [`unsubscribe`](Self::unsubscribe).
    pub async fn unsubscribe_many(
        &self,
        filters: &[&str],
        properties: UnsubscribeProperties,
    ) -> Result<UnsubAck, ClientError> {
        if filters.is_empty() {
            return Err(ClientError::InvalidArgument(
                "unsubscribe needs at least one filter",
            ));
        }
        let mut list = Vec::with_capacity(filters.len());
        for filter in filters {
            list.push(TopicFilter::try_from(*filter).map_err(ClientError::InvalidFilter)?);
        }
        let conn = self.connection()?;
        let (done, rx) = oneshot::channel();
        conn.commands
            .send(Command::Unsubscribe {
                filters: list,
                properties: Box::new(properties),
                done,
            })
            .await
            .map_err(|_| ClientError::NotConnected)?;
        Ok(rx.await.map_err(|_| ClientError::NotConnected)??)
    }

    /// Disconnects cleanly: waits (up to 5 s) for messages in flight to be
    /// acknowledged, then sends DISCONNECT and closes the connection. The
    /// broker does not publish the will.
    ///
    /// Cancel safety: once the request is queued, cancelling only stops the
    /// waiting; the disconnect goes ahead.
    pub async fn disconnect(&self) -> Result<(), ClientError> {
        self.disconnect_with(Disconnect::default(), Duration::from_secs(5))
            .await
    }

    /// [`disconnect`](Self::disconnect) with a 5.0 reason code and
    /// properties (e.g. a new session expiry, or
    /// [`DisconnectWithWillMessage`](crate::codec::DisconnectReasonCode::DisconnectWithWillMessage) to have the will
    /// published), waiting at most `timeout` for messages in flight.
    /// Requests still unanswered then fail with
    /// [`ClientError::ConnectionClosed`]. If the connection drops while
    /// waiting, the client does not reconnect: the disconnect is done.
    ///
    /// What the protocol cannot carry fails at once with
    /// [`ClientError::InvalidArgument`]: any reason code or property with
    /// 3.1.1, and with 5.0 a non-zero session expiry when the CONNECT had
    /// none ([MQTT-3.14.2-2]).
    ///
    /// Cancel safety: as [`disconnect`](Self::disconnect).
    pub async fn disconnect_with(
        &self,
        disconnect: Disconnect,
        timeout: Duration,
    ) -> Result<(), ClientError> {
        let conn = self.connection()?;
        match conn.version {
            ProtocolVersion::V311 => {
                // A 3.1.1 DISCONNECT is two bytes: anything else asked for
                // (the will published, say) would silently not happen.
                if disconnect.reason_code != DisconnectReasonCode::NormalDisconnection
                    || disconnect.properties != Default::default()
                {
                    return Err(ClientError::InvalidArgument(
                        "an MQTT 3.1.1 DISCONNECT carries no reason code or properties",
                    ));
                }
            }
            ProtocolVersion::V5 => {
                // [MQTT-3.14.2-2]: a session that was to end with the
                // connection cannot be given a lifetime now.
                let asked = disconnect.properties.session_expiry_interval;
                if conn.session_expiry == 0 && asked.is_some_and(|s| s != 0) {
                    return Err(ClientError::InvalidArgument(
                        "a non-zero session expiry on DISCONNECT needs one on CONNECT",
                    ));
                }
            }
        }
        let (done, rx) = oneshot::channel();
        conn.commands
            .send(Command::Disconnect {
                disconnect: Box::new(disconnect),
                timeout,
                done,
            })
            .await
            .map_err(|_| ClientError::NotConnected)?;
        // The loop answers once the connection is closed; if it is already
        // gone, dropping the sender answers as well.
        let _ = rx.await;
        Ok(())
    }

    /// The stream of messages received from the broker, across
    /// subscriptions: all of them, except those that go to a
    /// [`Subscription`] stream ([`subscribe_stream`](Self::subscribe_stream))
    /// or to a [message callback](Self::message_callback_add) (paho's
    /// `on_message`).
    ///
    /// There is one such stream per client: messages are buffered from the
    /// moment the client is created (up to
    /// [`ClientBuilder::message_capacity`]), and the first call takes that
    /// buffer; later calls return a stream that ends at once. When the
    /// application does not keep up, the client stops reading from the
    /// network until there is room again (our acknowledgements, publishes
    /// and keepalive pings still go out), so the broker, not this process,
    /// holds the backlog. The broker's acknowledgements of our own
    /// publishes are read only once the application catches up.
    ///
    /// Until the first call, messages beyond the buffer's capacity are
    /// dropped with a warning instead: an application that never calls
    /// this (one that uses only [callbacks](Self::message_callback_add) or
    /// [`Subscription`] streams) must not bring the client to a halt.
    pub fn messages(&self) -> Messages {
        let rx = self
            .inner
            .messages_rx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if rx.is_none() {
            tracing::warn!("Client::messages() called more than once; the second stream is empty");
        }
        self.inner.messages_taken.store(true, Ordering::Release);
        Messages { rx }
    }

    /// Calls `callback` for every incoming message whose topic matches
    /// `filter` (paho's `message_callback_add`), replacing the callback set
    /// for the same filter before. Messages handled by a callback do not
    /// also go to [`messages`](Self::messages); a message matching several
    /// callbacks is given to each, and one that also belongs to a
    /// [`Subscription`] stream goes there too.
    ///
    /// Callbacks run on the client's event loop task, in the order the
    /// messages arrive: they must be quick and must not block (no blocking
    /// I/O, no waiting on the client). To do something slow, send the
    /// message on to a task of your own. A callback that panics is logged
    /// and the message counts as handled. It may be set before `connect`
    /// and lasts until removed. A callback that holds a clone of this
    /// `Client` keeps it from ever being dropped: dropping the other
    /// handles then does not end the connection, so remove the callback or
    /// call [`disconnect`](Self::disconnect).
    ///
    /// ```
    /// # let client = plover::Client::new("id");
    /// client.message_callback_add("sensors/+/temperature", |msg| {
    ///     println!("{} says {:?}", msg.topic, msg.payload_str());
    /// })?;
    /// # Ok::<(), plover::ClientError>(())
    /// ```
    pub fn message_callback_add(
        &self,
        filter: &str,
        callback: impl Fn(&Message) + Send + Sync + 'static,
    ) -> Result<(), ClientError> {
        let filter = TopicFilter::try_from(filter).map_err(ClientError::InvalidFilter)?;
        self.inner
            .routing
            .update(|t| t.add_callback(filter, Arc::new(callback)));
        Ok(())
    }

    /// Removes the callback set for exactly `filter` with
    /// [`message_callback_add`](Self::message_callback_add); its messages
    /// go to [`messages`](Self::messages) again. Returns whether there was
    /// one.
    pub fn message_callback_remove(&self, filter: &str) -> bool {
        self.inner.routing.update(|t| t.remove_callback(filter))
    }

    /// Connection events (connected, disconnected with the reason), like
    /// paho's `on_connect` and `on_disconnect`. Each call gives an
    /// independent receiver that sees events from then on.
    pub fn connection_events(&self) -> ConnectionEvents {
        ConnectionEvents {
            rx: self.inner.events.subscribe(),
        }
    }
}

/// Validates the filters of a SUBSCRIBE.
fn subscribe_list(
    filters: &[(&str, SubscriptionOptions)],
) -> Result<Vec<(TopicFilter, SubscriptionOptions)>, ClientError> {
    if filters.is_empty() {
        return Err(ClientError::InvalidArgument(
            "subscribe needs at least one filter",
        ));
    }
    let mut list = Vec::with_capacity(filters.len());
    for (filter, options) in filters {
        let filter = TopicFilter::try_from(*filter).map_err(ClientError::InvalidFilter)?;
        list.push((filter, *options));
    }
    Ok(list)
}

/// A subscription made with a route: see [`Client::subscribe_routed`].
pub(crate) struct Routed {
    pub(crate) guard: RouteGuard,
    pub(crate) filters: Vec<TopicFilter>,
    pub(crate) identifier: Option<std::num::NonZeroU32>,
}

/// Resolves when the broker has acknowledged a publish.
///
/// Output: the acknowledgement ([`PublishOutcome`]: packet id, reason code,
/// 5.0 properties), [`ClientError::PublishRejected`] when the broker
/// refused it, [`ClientError::PublishNotCompleted`] when a QoS 2 exchange
/// ended with a failing PUBCOMP, or [`ClientError::ConnectionClosed`] when
/// the connection ended first (the client had stopped for good: across
/// reconnects a publish is sent again, not failed). Dropping the handle does not cancel the publish.
#[derive(Debug)]
pub struct PublishHandle {
    rx: oneshot::Receiver<Result<PublishOutcome, RequestError>>,
}

impl PublishHandle {
    /// Waits for the acknowledgement (paho's `wait_for_publish`).
    ///
    /// Cancel safety: dropping the future only stops the waiting; the
    /// message is still delivered as if the handle had been dropped.
    pub async fn wait_for_publish(self) -> Result<PublishOutcome, ClientError> {
        self.await
    }
}

impl Future for PublishHandle {
    type Output = Result<PublishOutcome, ClientError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let result = match Pin::new(&mut self.rx).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(r) => r,
        };
        Poll::Ready(match result {
            Err(_) => Err(ClientError::NotConnected),
            Ok(Err(e)) => Err(e.into()),
            Ok(Ok(outcome)) if outcome.reason_code.is_error() => {
                Err(ClientError::PublishRejected {
                    reason: outcome.reason_code,
                    reason_string: outcome.properties.reason_string.clone(),
                })
            }
            Ok(Ok(outcome)) => match outcome.complete_reason {
                Some(reason) if reason.is_error() => Err(ClientError::PublishNotCompleted {
                    reason,
                    reason_string: outcome.properties.reason_string.clone(),
                }),
                _ => Ok(outcome),
            },
        })
    }
}

/// Incoming messages; see [`Client::messages`]. Also a
/// [`Stream`](futures_core::Stream).
#[derive(Debug)]
pub struct Messages {
    rx: Option<queue::Receiver<Message>>,
}

impl Messages {
    /// The next message; `None` once the client is gone.
    ///
    /// Cancel safe: a message is never lost to a cancelled `recv`.
    pub async fn recv(&mut self) -> Option<Message> {
        match &mut self.rx {
            Some(rx) => rx.recv().await,
            None => None,
        }
    }

    /// A message that has already arrived, without waiting; `None` if
    /// there is none right now.
    pub fn try_recv(&mut self) -> Option<Message> {
        self.rx.as_mut().and_then(|rx| rx.try_recv().ok())
    }
}

impl futures_core::Stream for Messages {
    type Item = Message;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        match &mut self.rx {
            Some(rx) => rx.poll_recv(cx),
            None => Poll::Ready(None),
        }
    }
}

/// Connection events; see [`Client::connection_events`].
#[derive(Debug)]
pub struct ConnectionEvents {
    rx: broadcast::Receiver<ConnectionEvent>,
}

impl ConnectionEvents {
    /// The next event; `None` once the client is gone. If this receiver
    /// fell more than 16 events behind, the oldest are skipped.
    ///
    /// Cancel safe.
    pub async fn recv(&mut self) -> Option<ConnectionEvent> {
        loop {
            match self.rx.recv().await {
                Ok(event) => return Some(event),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::debug!(skipped = n, "connection events receiver lagged");
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}
