//! The tokio task that drives the client's connections: it opens the
//! transport, reads into a buffer, feeds the session, writes what the session
//! wants written, sleeps until the session's next deadline, and when a
//! connection breaks opens the next one after a backoff. No protocol rules
//! live here.
//!
//! # Back-pressure
//!
//! Incoming messages go to the application through a bounded channel
//! (`ClientBuilder::message_capacity`, default 1,024). When the application
//! does not take them and the channel is full, the loop holds the one
//! message it could not deliver and stops reading from the socket until
//! there is room again. The broker then holds further messages for us (its
//! own queue and in-flight window), so memory stays bounded on both sides
//! and nothing is lost.
//!
//! Meanwhile the loop keeps writing: acknowledgements of messages already
//! read, our own publishes, and a PINGREQ whenever a keepalive passes
//! without anything sent, so the broker does not take a slow reader for a
//! dead one. What cannot happen while reading is paused is reading: the
//! broker's acknowledgements of our publishes wait behind the unread
//! messages, so those publishes complete (and the in-flight window frees
//! up) once the application catches up; the session does not hold the
//! unread PINGRESPs against the broker either. A reconnect made meanwhile
//! still reads its CONNACK, then pauses again.
//!
//! Incoming QoS 1/2 messages are acknowledged as they are read, before the
//! application has them: a message in the channel (or the one held) is in
//! this process's memory only.
//!
//! Until [`Client::messages`](crate::Client::messages) is first called,
//! the messages no subscription stream or callback takes are buffered up to
//! the channel's capacity and then dropped with a warning rather than
//! stalling the connection: an application that never asks for them (one
//! that only uses callbacks, say) must not stop the client.
//!
//! # Routing
//!
//! A message goes to the subscription streams and callbacks the routing
//! table (`crate::router`) picks, or else to the catch-all channel. Each
//! subscription stream is a bounded channel of its own, and back-pressure
//! works the same way for all of them: callbacks and channels with room
//! get the message at once; if any target channel is full, the loop holds
//! the message for just the full ones and stops reading until each has
//! taken it. A stream whose receiver was dropped is skipped (a message
//! that had nowhere else to go then goes to the catch-all). With no routes
//! set up, delivery is the single `try_send` it always was.
//!
//! # Reconnecting
//!
//! When a connection ends for a reason that may pass (the network, a
//! keepalive timeout, the broker restarting or busy), the loop waits a
//! backoff delay — doubling from the minimum to the maximum, with random
//! jitter so a fleet of clients does not reconnect in lockstep — and
//! connects again. The delay starts over from the minimum only after a
//! connection stayed up for [`STABLE_CONNECTION`]: a broker that accepts
//! and then drops us at once (a session taken over by another client with
//! our id, a message we cannot take) must not be hammered. Requests go on being accepted meanwhile and wait in the
//! session; the session replays or resends what was in flight when the new
//! CONNACK arrives. A refusal that will not pass by retrying (bad
//! credentials, not authorised, banned, ...) or a `disconnect` ends the loop.

use crate::id_map::IdMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};
use tokio::time::Instant;
use tracing::Instrument;

use crate::client::{ConnectionEvent, EventHub, Message, Shared};
use crate::codec::{
    self, ConnAck, ConnectReasonCode, Disconnect, DisconnectReasonCode, Publish, SubAck,
    SubscribeProperties, SubscriptionOptions, TopicFilter, UnsubAck, UnsubscribeProperties,
};
use crate::queue;
use crate::router::{Router, Routing, Sink, Targets};
use crate::session::{CloseReason, Event, PublishOutcome, RequestError, RequestId, Session};
use crate::transport::{self, BoxTransport, Endpoint, TransportError};

/// Anything the loop can run over: TCP, TLS, WebSocket.
pub(crate) trait Transport: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Transport for T {}

/// What the client handle asks of the loop.
pub(crate) enum Command {
    /// Its `Publish` is boxed: it is a few hundred bytes, and the command
    /// channel allocates room for 32 commands of the largest kind up front,
    /// per client. The session keeps the same box until the message is
    /// done, so the message is never copied on its way.
    Publish(PublishCommand),
    // The rarer commands box their larger parts for the same reason.
    Subscribe {
        filters: Vec<(TopicFilter, SubscriptionOptions)>,
        properties: Box<SubscribeProperties>,
        done: oneshot::Sender<Result<SubAck, RequestError>>,
    },
    Unsubscribe {
        filters: Vec<TopicFilter>,
        properties: Box<UnsubscribeProperties>,
        done: oneshot::Sender<Result<UnsubAck, RequestError>>,
    },
    Disconnect {
        disconnect: Box<Disconnect>,
        timeout: Duration,
        done: oneshot::Sender<()>,
    },
    /// Start a 5.0 re-authentication.
    Reauthenticate,
}

/// A publish, as the client hands it to the loop.
pub(crate) struct PublishCommand {
    pub(crate) publish: Box<Publish>,
    pub(crate) done: oneshot::Sender<Result<PublishOutcome, RequestError>>,
    /// A place in the client's queue bound, given back on completion.
    pub(crate) permit: Option<OwnedSemaphorePermit>,
}

/// Someone waiting on a request's completion.
enum Waiter {
    Publish(
        oneshot::Sender<Result<PublishOutcome, RequestError>>,
        Option<OwnedSemaphorePermit>,
    ),
    Subscribe(oneshot::Sender<Result<SubAck, RequestError>>),
    Unsubscribe(oneshot::Sender<Result<UnsubAck, RequestError>>),
}

/// Why the first connection did not come up.
#[derive(Debug)]
pub(crate) enum ConnectFailure {
    Transport(TransportError),
    Closed(CloseReason),
}

/// The channels the loop reports through.
pub(crate) struct Outlets {
    pub(crate) messages: queue::Sender<Message>,
    pub(crate) events: Arc<EventHub>,
    /// Answered once, with the first CONNACK or why there was none.
    pub(crate) connack: Option<oneshot::Sender<Result<ConnAck, ConnectFailure>>>,
    /// Connection facts the handles read without asking the loop.
    pub(crate) shared: Arc<Shared>,
    /// Whether the application took the receiver of `messages`.
    pub(crate) messages_taken: Arc<AtomicBool>,
    /// Subscription streams and callbacks, kept current by the handles.
    pub(crate) routing: Arc<Routing>,
}

/// How to (re)open the transport, and when.
#[derive(Debug, Clone)]
pub(crate) struct Reconnect {
    pub(crate) endpoint: Endpoint,
    /// Time for opening the transport (TCP, TLS, WebSocket).
    pub(crate) connect_timeout: Duration,
    /// Reconnect after a connection ends for a passing reason.
    pub(crate) enabled: bool,
    /// Keep trying when the very first connection fails.
    pub(crate) retry_first: bool,
    pub(crate) min_delay: Duration,
    pub(crate) max_delay: Duration,
}

/// One open transport, split so reads and writes can wait at once.
struct Io {
    reader: ReadHalf<BoxTransport>,
    writer: WriteHalf<BoxTransport>,
}

pub(crate) struct EventLoop {
    session: Session,
    commands: mpsc::Receiver<Command>,
    outlets: Outlets,
    reconnect: Reconnect,
    /// Bytes read and not yet decoded. Kept in `self` so nothing is lost if
    /// a future is cancelled between reads and decodes.
    read_buf: BytesMut,
    /// Bytes the last read returned, to size the next reservation.
    last_read: usize,
    /// The chunk being written; the session batches what comes meanwhile.
    write_buf: Bytes,
    max_packet_size: usize,
    waiters: IdMap<RequestId, Waiter>,
    next_request: RequestId,
    /// A message some channel had no room for; reading waits for it.
    stalled: Option<Stalled>,
    /// The loop's copy of the routing table, and the version copied.
    router: Router<Sink>,
    router_version: u64,
    /// Scratch for routing, reused per message.
    targets: Targets,
    disconnect_done: Vec<oneshot::Sender<()>>,
    close_reason: Option<CloseReason>,
    commands_open: bool,
    /// Whether the current connection got its CONNACK.
    connected: bool,
    /// When it did.
    connected_at: Option<Instant>,
    /// What the transport said when the connection failed before CONNACK.
    pre_connack_failure: Option<TransportError>,
    /// Messages dropped because nobody took `Client::messages` yet.
    dropped_untaken: u64,
    /// Bytes were written since the last flush.
    unflushed: bool,
    /// State of the jitter generator (xorshift: no need for a real RNG).
    jitter: u64,
}

/// A message waiting for room in channels that were full.
struct Stalled {
    message: Message,
    /// The full channels, in order; the first is waited on.
    waiting: Vec<queue::Sender<Message>>,
}

/// How long to keep flushing after the session closed.
const CLOSE_FLUSH: Duration = Duration::from_secs(5);

/// Read chunk: big enough to take many small packets per syscall.
const READ_CHUNK: usize = 64 * 1024;

/// The read buffer a connection starts with. An idle client needs little;
/// the first read that fills it grows it to `READ_CHUNK`.
const READ_START: usize = 1024;

/// Most commands taken from the channel at once, before the loop looks at
/// the socket again.
const COMMAND_BATCH: usize = 64;

/// How long a connection must stay up before the reconnect backoff starts
/// over from its minimum.
pub(crate) const STABLE_CONNECTION: Duration = Duration::from_secs(10);

impl EventLoop {
    pub(crate) fn new(
        session: Session,
        commands: mpsc::Receiver<Command>,
        outlets: Outlets,
        reconnect: Reconnect,
        max_packet_size: usize,
    ) -> Self {
        let (router, router_version) = outlets.routing.snapshot();
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9E37_79B9, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id()).rotate_left(32);
        EventLoop {
            session,
            commands,
            outlets,
            reconnect,
            read_buf: BytesMut::with_capacity(READ_START),
            last_read: 0,
            write_buf: Bytes::new(),
            max_packet_size,
            waiters: IdMap::default(),
            next_request: 0,
            stalled: None,
            router,
            router_version,
            targets: Targets::default(),
            disconnect_done: Vec::new(),
            close_reason: None,
            commands_open: true,
            connected: false,
            connected_at: None,
            pre_connack_failure: None,
            dropped_untaken: 0,
            unflushed: false,
            jitter: seed | 1,
        }
    }

    fn now() -> std::time::Instant {
        Instant::now().into_std()
    }

    /// Runs connections until the client is done with them, then fails
    /// whatever is still waiting.
    ///
    /// The loop lives in a box and the future borrows it: an `async fn`
    /// taking `self` by value keeps two copies of it in its state (the
    /// argument and the local it is moved into), a couple of KiB more in
    /// every client's task.
    pub(crate) fn run(self) -> impl std::future::Future<Output = ()> + Send {
        let mut this = Box::new(self);
        async move { this.run_boxed().await }
    }

    async fn run_boxed(&mut self) {
        let mut attempt: u32 = 0;
        let mut ever_connected = false;
        let reason = loop {
            let span = tracing::info_span!(
                "mqtt_connection",
                attempt,
                host = %self.reconnect.endpoint.host,
                port = self.reconnect.endpoint.port
            );
            let retry = if ever_connected {
                self.reconnect.enabled
            } else {
                self.reconnect.retry_first
            };
            // Boxed: opening a TLS or WebSocket transport is a large
            // future, and inline it would make every client's task that
            // much bigger for its whole life, not just while connecting.
            let transport = Box::pin(
                transport::connect(&self.reconnect.endpoint, self.reconnect.connect_timeout)
                    .instrument(span.clone()),
            )
            .await;
            let mut cause = None;
            let reason = match transport {
                Ok(io) => {
                    let reason = Box::pin(self.run_connection(io).instrument(span.clone())).await;
                    if self.connected {
                        ever_connected = true;
                        let lasted = self.connected_at.map(|at| at.elapsed());
                        if lasted.is_some_and(|d| d >= STABLE_CONNECTION) {
                            attempt = 0;
                        }
                    }
                    // Every end of a connection the application has seen
                    // start is reported, a refused reconnect included; the
                    // very first attempt's failure is `connect`'s result.
                    if ever_connected {
                        self.outlets
                            .events
                            .send(ConnectionEvent::Disconnected(reason.clone()));
                    }
                    reason
                }
                Err(e) if !retry => {
                    if let Some(tx) = self.outlets.connack.take() {
                        let _ = tx.send(Err(ConnectFailure::Transport(e)));
                    }
                    break CloseReason::ConnectionLost;
                }
                Err(e) => {
                    span.in_scope(|| tracing::info!(error = %e, "cannot reach the broker"));
                    cause = Some(e.to_string());
                    CloseReason::ConnectionLost
                }
            };
            // Once a connection has been accepted, reconnecting follows the
            // `automatic_reconnect` setting, not the first-connect one.
            let retry = if ever_connected {
                self.reconnect.enabled
            } else {
                self.reconnect.retry_first
            };
            if !retry || is_final(&reason) || !self.commands_open {
                break reason;
            }
            attempt = attempt.saturating_add(1);
            let delay = self.backoff(attempt);
            let cause = cause.unwrap_or_else(|| reason.to_string());
            span.in_scope(|| tracing::info!(%reason, ?delay, attempt, "reconnecting"));
            self.outlets.events.send(ConnectionEvent::Reconnecting {
                attempt,
                delay,
                cause,
            });
            if let Some(reason) = Box::pin(self.wait_offline(delay)).await {
                break reason;
            }
        };
        tracing::debug!(%reason, "client stopped");
        self.session.abort_requests(reason.clone());
        self.drain_events();
        if let Some(tx) = self.outlets.connack.take() {
            // A transport that knew better than "connection lost" (a
            // broker that wanted a client certificate, say) speaks for
            // itself.
            let failure = match (self.pre_connack_failure.take(), &reason) {
                (Some(e), CloseReason::ConnectionLost) => ConnectFailure::Transport(e),
                _ => ConnectFailure::Closed(reason),
            };
            let _ = tx.send(Err(failure));
        }
        for done in self.disconnect_done.drain(..) {
            let _ = done.send(());
        }
    }

    /// Delay before reconnect attempt `attempt` (1, 2, ...): the minimum
    /// doubled per attempt up to the maximum, then a random point in its
    /// upper half.
    fn backoff(&mut self, attempt: u32) -> Duration {
        let base = self
            .reconnect
            .min_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.reconnect.max_delay);
        self.jitter ^= self.jitter << 13;
        self.jitter ^= self.jitter >> 7;
        self.jitter ^= self.jitter << 17;
        let fraction = (self.jitter >> 11) as f64 / (1u64 << 53) as f64;
        base.mul_f64(0.5 + fraction / 2.0)
    }

    /// Between connections: keep taking requests (they wait in the session)
    /// until `delay` passes. Returns why to stop instead, if the client
    /// disconnected or went away.
    async fn wait_offline(&mut self, delay: Duration) -> Option<CloseReason> {
        let until = Instant::now() + delay;
        loop {
            // The callers' queue bound (a permit per unfinished publish)
            // is what limits what waits in the session.
            let accepting = self.commands_open;
            let stalled_channel = self.stalled_channel();
            tokio::select! {
                () = tokio::time::sleep_until(until) => return None,
                command = self.commands.recv(), if accepting => match command {
                    Some(command) => self.handle_commands(command),
                    None => {
                        self.commands_open = false;
                        return Some(CloseReason::Normal);
                    }
                },
                permit = room(stalled_channel), if self.stalled.is_some() => {
                    self.on_room(permit);
                }
            }
            self.drain_events();
            if let Some(reason) = self.close_reason.take() {
                // Only a disconnect closes an idle session.
                return Some(reason);
            }
        }
    }

    /// Drives one connection from CONNECT to its end.
    async fn run_connection(&mut self, transport: BoxTransport) -> CloseReason {
        let (reader, writer) = tokio::io::split(transport);
        let mut io = Io { reader, writer };
        self.read_buf.clear();
        self.write_buf = Bytes::new();
        self.close_reason = None;
        self.connected = false;
        self.connected_at = None;
        self.pre_connack_failure = None;
        self.session.handle_connect(Self::now());
        let reason = self.drive(&mut io).await;
        // (Smaller than `drive`, so inline costs this boxed future nothing.)
        self.flush_and_close(&mut io).await;
        self.close_reason = None;
        reason
    }

    async fn drive(&mut self, io: &mut Io) -> CloseReason {
        // One timer for the connection, moved only when the session's next
        // deadline changes: a fresh `sleep_until` per turn of the loop
        // registered and removed a timer entry for every packet.
        let timer = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(timer);
        let mut armed: Option<Instant> = None;
        loop {
            self.drain_events();
            if let Some(reason) = self.close_reason.clone() {
                return reason;
            }
            if self.write_buf.is_empty() {
                self.write_buf = self.session.poll_transmit().unwrap_or_default();
            }
            let deadline = self.session.poll_timeout().map(Instant::from_std);
            if deadline != armed {
                if let Some(at) = deadline {
                    timer.as_mut().reset(at);
                }
                armed = deadline;
            }
            // A held message pauses reading, except for a new connection's
            // CONNACK: without it the connection would never come up.
            let reading = self.stalled.is_none() || !self.connected;
            let stalled_channel = self.stalled_channel();
            let accepting = self.commands_open;

            tokio::select! {
                read = io.reader.read_buf(&mut self.read_buf), if reading => {
                    match read {
                        Ok(0) | Err(_) => {
                            if let Err(e) = read {
                                self.note_io_failure(e, "read failed");
                            }
                            self.session.handle_connection_lost(Self::now());
                        }
                        Ok(n) => {
                            self.last_read = n;
                            self.decode_packets();
                        }
                    }
                }
                written = write_or_flush(&mut io.writer, &self.write_buf),
                    if !self.write_buf.is_empty() || self.unflushed =>
                {
                    match written {
                        Ok(Some(0)) => self.session.handle_connection_lost(Self::now()),
                        Err(e) => {
                            self.note_io_failure(e, "write failed");
                            self.session.handle_connection_lost(Self::now());
                        }
                        Ok(Some(n)) => {
                            self.write_buf.advance(n);
                            self.unflushed = true;
                        }
                        Ok(None) => self.unflushed = false,
                    }
                }
                command = self.commands.recv(), if accepting => match command {
                    Some(command) => self.handle_commands(command),
                    None => {
                        // Every client handle is gone: say goodbye promptly.
                        self.commands_open = false;
                        let now = Self::now();
                        self.session.handle_disconnect(Disconnect::default(), now, now);
                    }
                },
                permit = room(stalled_channel), if self.stalled.is_some() => {
                    self.on_room(permit);
                    if self.stalled.is_none() {
                        self.session.handle_read_paused(false, Self::now());
                        // Packets already buffered go first.
                        self.decode_packets();
                    }
                }
                () = &mut timer, if armed.is_some() => {
                    // Fired: re-armed with the session's next deadline.
                    armed = None;
                    self.session.handle_timeout(Self::now());
                }
            }
        }
    }

    /// Decodes and handles buffered packets until more bytes are needed or
    /// a message cannot be delivered.
    fn decode_packets(&mut self) {
        let version = self.session.version();
        // One clock read for what one read brought in.
        let now = Self::now();
        while (self.stalled.is_none() || !self.connected) && self.close_reason.is_none() {
            match codec::decode(&mut self.read_buf, version, self.max_packet_size) {
                Ok(Some(packet)) => {
                    self.session.handle_packet(packet, now);
                    self.drain_events();
                }
                Ok(None) => break,
                Err(e) => {
                    self.session.handle_decode_error(e, now);
                    self.drain_events();
                    break;
                }
            }
        }
        if self.read_buf.capacity() - self.read_buf.len() < 1024 {
            // Grow to big reads only for a connection that makes them: an
            // idle one (pings, the odd message) stays small.
            let chunk = if self.last_read >= READ_START {
                READ_CHUNK
            } else {
                READ_START
            };
            self.read_buf.reserve(chunk);
        }
    }

    /// Handles `first` and whatever else the handles have queued meanwhile
    /// (up to a batch), at one instant: one clock read and one write for
    /// a burst of publishes rather than one each.
    ///
    /// A QoS 2 publish ends the batch. Measured against mosquitto 2.0.11
    /// at a fixed 5,000 msg/s, five QoS 2 PUBLISHes in one write had their
    /// PUBRECs held back until the next write a millisecond later (p50
    /// latency 141 µs → 1.19 ms); QoS 0 and 1 batches showed no such delay
    /// and save about a quarter of the publisher's CPU per message.
    fn handle_commands(&mut self, first: Command) {
        let now = Self::now();
        let mut more = batches(&first);
        self.handle_command(first, now);
        for _ in 1..COMMAND_BATCH {
            if !more {
                break;
            }
            match self.commands.try_recv() {
                Ok(command) => {
                    more = batches(&command);
                    self.handle_command(command, now);
                }
                Err(_) => break,
            }
        }
    }

    fn handle_command(&mut self, command: Command, now: std::time::Instant) {
        let request = self.next_request;
        // Wraps long before reaching the session's reserved id.
        self.next_request = (self.next_request + 1) % (u64::MAX / 2);
        match command {
            Command::Publish(command) => {
                let PublishCommand {
                    publish,
                    done,
                    permit,
                } = command;
                self.waiters.insert(request, Waiter::Publish(done, permit));
                self.session.handle_publish(request, publish, now);
            }
            Command::Subscribe {
                filters,
                properties,
                done,
            } => {
                self.waiters.insert(request, Waiter::Subscribe(done));
                self.session
                    .handle_subscribe(request, filters, *properties, now);
            }
            Command::Unsubscribe {
                filters,
                properties,
                done,
            } => {
                self.waiters.insert(request, Waiter::Unsubscribe(done));
                self.session
                    .handle_unsubscribe(request, filters, *properties, now);
            }
            Command::Disconnect {
                disconnect,
                timeout,
                done,
            } => {
                self.disconnect_done.push(done);
                self.session
                    .handle_disconnect(*disconnect, now, now + timeout);
            }
            Command::Reauthenticate => self.session.handle_reauthenticate(now),
        }
    }

    /// Hands every session event to whoever waits for it.
    fn drain_events(&mut self) {
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::Connected(connack) => {
                    self.connected = true;
                    self.connected_at = Some(Instant::now());
                    if self.stalled.is_some() {
                        // Still holding a message from before: stay paused.
                        self.session.handle_read_paused(true, Self::now());
                    }
                    let max = connack
                        .properties
                        .maximum_packet_size
                        .map_or(usize::MAX, |m| m as usize);
                    self.outlets
                        .shared
                        .broker_max_packet
                        .store(max, Ordering::Release);
                    self.outlets.shared.connected.store(true, Ordering::Release);
                    *self
                        .outlets
                        .shared
                        .connack
                        .lock()
                        .unwrap_or_else(|e| e.into_inner()) = Some(Arc::new((*connack).clone()));
                    if let Some(tx) = self.outlets.connack.take() {
                        let _ = tx.send(Ok((*connack).clone()));
                    }
                    self.outlets
                        .events
                        .send(ConnectionEvent::Connected(connack));
                }
                Event::Message(publish) => self.deliver(Message::from(publish)),
                Event::PublishDone { request, result } => {
                    // Dropping the waiter gives its queue permit back.
                    if let Some(Waiter::Publish(tx, _permit)) = self.waiters.remove(&request) {
                        let _ = tx.send(result);
                    }
                }
                Event::SubscribeDone { request, result } => {
                    if let Some(Waiter::Subscribe(tx)) = self.waiters.remove(&request) {
                        let _ = tx.send(result);
                    }
                }
                Event::UnsubscribeDone { request, result } => {
                    if let Some(Waiter::Unsubscribe(tx)) = self.waiters.remove(&request) {
                        let _ = tx.send(result);
                    }
                }
                Event::ResubscribeFailed { filter, error } => {
                    self.outlets
                        .events
                        .send(ConnectionEvent::ResubscribeFailed { filter, error });
                }
                Event::Closed(reason) => {
                    self.outlets
                        .shared
                        .connected
                        .store(false, Ordering::Release);
                    if self.close_reason.is_none() {
                        self.close_reason = Some(reason);
                    }
                }
            }
        }
    }

    /// Hands a message to its subscription streams and callbacks, or to
    /// the catch-all; see "Routing" in the module docs.
    fn deliver(&mut self, message: Message) {
        let version = self.outlets.routing.version();
        if version != self.router_version {
            (self.router, self.router_version) = self.outlets.routing.snapshot();
        }
        if self.router.is_empty() {
            self.deliver_to_all_messages(message);
            return;
        }
        self.router.route_into(
            &message.topic,
            message.properties.subscription_identifiers.iter(),
            &mut self.targets,
        );
        let mut handled = false;
        for &i in &self.targets.callbacks {
            let Some(callback) = self.router.callback(i) else {
                continue;
            };
            handled = true;
            // A panicking callback must not take the connection down with
            // it; the panic hook has already reported it.
            let call = std::panic::AssertUnwindSafe(|| callback(&message));
            if std::panic::catch_unwind(call).is_err() {
                tracing::error!(topic = %message.topic, "a message callback panicked");
            }
        }
        let mut waiting = Vec::new();
        for &i in &self.targets.streams {
            match self.router.sink(i) {
                Some(Sink::Stream(tx)) => match tx.try_send(message.clone()) {
                    Ok(()) => handled = true,
                    Err(queue::TrySendError::Full(_)) => {
                        handled = true;
                        waiting.push(tx.clone());
                    }
                    // Dropped a moment ago; the table will follow.
                    Err(queue::TrySendError::Closed(_)) => {}
                },
                Some(Sink::Responses(pending)) => {
                    handled = true;
                    pending.dispatch(&message);
                }
                None => {}
            }
        }
        if !handled {
            self.deliver_to_all_messages(message);
        } else if !waiting.is_empty() {
            self.stall(message, waiting);
        }
    }

    /// The catch-all channel, [`Client::messages`](crate::Client::messages).
    fn deliver_to_all_messages(&mut self, message: Message) {
        match self.outlets.messages.try_send(message) {
            Ok(()) => {}
            Err(queue::TrySendError::Full(message)) => {
                if !self.outlets.messages_taken.load(Ordering::Acquire) {
                    // Nobody asked for these yet, and maybe nobody will:
                    // stalling would stop the client for good.
                    self.dropped_untaken += 1;
                    if self.dropped_untaken == 1 || self.dropped_untaken.is_power_of_two() {
                        tracing::warn!(
                            topic = %message.topic,
                            dropped = self.dropped_untaken,
                            "message dropped: Client::messages() was never called and its buffer is full"
                        );
                    }
                    return;
                }
                let tx = self.outlets.messages.clone();
                self.stall(message, vec![tx]);
            }
            Err(queue::TrySendError::Closed(_)) => {
                tracing::trace!("message dropped: nobody is listening for messages");
            }
        }
    }

    /// Logs why a read or write failed; before CONNACK, keeps the
    /// transport's own explanation if it carries one, for `connect`.
    fn note_io_failure(&mut self, e: std::io::Error, what: &'static str) {
        if self.connected {
            tracing::debug!(error = %e, "{what}");
            return;
        }
        // Before CONNACK this is often the only word on why (e.g. a TLS
        // 1.3 alert that the broker wants a client certificate).
        tracing::warn!(error = %e, "connection failed before CONNACK");
        if let Some(inner) = e.into_inner()
            && let Ok(transport) = inner.downcast::<TransportError>()
        {
            self.pre_connack_failure = Some(*transport);
        }
    }

    /// Holds `message` for the channels in `waiting` and stops reading
    /// until they have all taken it.
    fn stall(&mut self, message: Message, waiting: Vec<queue::Sender<Message>>) {
        self.stalled = Some(Stalled { message, waiting });
        self.session.handle_read_paused(true, Self::now());
    }

    /// The channel the stalled message waits on first.
    fn stalled_channel(&self) -> Option<queue::Sender<Message>> {
        self.stalled
            .as_ref()
            .and_then(|s| s.waiting.first().cloned())
    }

    /// The first full channel has room (`Some`) or was closed (`None`):
    /// deliver there, and to every other waiting channel that has room now.
    fn on_room(&mut self, permit: Option<queue::OwnedPermit<Message>>) {
        let Some(stalled) = self.stalled.as_mut() else {
            return;
        };
        if !stalled.waiting.is_empty() {
            stalled.waiting.remove(0);
        }
        if let Some(permit) = permit {
            permit.send(stalled.message.clone());
        }
        let message = &stalled.message;
        stalled
            .waiting
            .retain(|tx| match tx.try_send(message.clone()) {
                Ok(()) | Err(queue::TrySendError::Closed(_)) => false,
                Err(queue::TrySendError::Full(_)) => true,
            });
        if stalled.waiting.is_empty() {
            self.stalled = None;
        }
    }

    /// Writes what is left (a DISCONNECT, usually) and shuts the transport.
    async fn flush_and_close(&mut self, io: &mut Io) {
        let flush = async {
            loop {
                if self.write_buf.is_empty() {
                    match self.session.poll_transmit() {
                        Some(bytes) => self.write_buf = bytes,
                        None => break,
                    }
                }
                match io.writer.write(&self.write_buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => self.write_buf.advance(n),
                }
            }
            let _ = io.writer.flush().await;
            let _ = io.writer.shutdown().await;
        };
        if tokio::time::timeout(CLOSE_FLUSH, flush).await.is_err() {
            tracing::debug!("gave up flushing the closing connection");
        }
        self.write_buf = Bytes::new();
        // Whatever the session queued for this connection is gone with it.
        self.session.discard_transmit();
        if !self.session.is_closed() {
            self.session.handle_connection_lost(Self::now());
            self.drain_events();
        }
    }
}

/// Whether a command may be followed by more in the same batch (see
/// `EventLoop::handle_commands`).
fn batches(command: &Command) -> bool {
    matches!(command, Command::Publish(p) if p.publish.qos != crate::codec::QoS::ExactlyOnce)
}

/// Whether a connection's end is one that retrying will not fix.
fn is_final(reason: &CloseReason) -> bool {
    use ConnectReasonCode as C;
    match reason {
        CloseReason::Normal | CloseReason::InvalidConnect(_) | CloseReason::Authentication(_) => {
            true
        }
        // Refusals that say something about us, not about the broker's load.
        CloseReason::Refused { reason, .. } => matches!(
            reason,
            C::MalformedPacket
                | C::ProtocolError
                | C::UnsupportedProtocolVersion
                | C::ClientIdentifierNotValid
                | C::BadUserNameOrPassword
                | C::NotAuthorized
                | C::Banned
                | C::BadAuthenticationMethod
                | C::TopicNameInvalid
                | C::PacketTooLarge
                | C::PayloadFormatInvalid
                | C::RetainNotSupported
                | C::QoSNotSupported
                // The broker sends us elsewhere (its Server Reference is
                // in the reason): asking it again will not help.
                | C::UseAnotherServer
                | C::ServerMoved
        ),
        CloseReason::ServerDisconnect { reason, .. } => matches!(
            reason,
            DisconnectReasonCode::NotAuthorized
                | DisconnectReasonCode::UseAnotherServer
                | DisconnectReasonCode::ServerMoved
        ),
        _ => false,
    }
}

/// Writes some of `buf`, or, when it is empty, flushes: free on TCP, and
/// what pushes a WebSocket frame (or TLS record) out even while reads are
/// paused for a slow consumer. `Ok(None)` means flushed.
async fn write_or_flush(
    writer: &mut WriteHalf<BoxTransport>,
    buf: &[u8],
) -> std::io::Result<Option<usize>> {
    if buf.is_empty() {
        writer.flush().await.map(|()| None)
    } else {
        writer.write(buf).await.map(Some)
    }
}

/// Waits for room in `tx`; `None` if it closed (or there is no channel,
/// which the callers' preconditions rule out).
async fn room(tx: Option<queue::Sender<Message>>) -> Option<queue::OwnedPermit<Message>> {
    match tx {
        Some(tx) => tx.reserve_owned().await.ok(),
        None => std::future::pending().await,
    }
}
