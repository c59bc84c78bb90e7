//! The tokio task that drives one connection: it reads into a buffer, feeds
//! the session, writes what the session wants written, and sleeps until the
//! session's next deadline. No protocol rules live here.
//!
//! # Back-pressure
//!
//! Incoming messages go to the application through a bounded channel
//! (`ClientBuilder::message_capacity`, default 1,024). When the application
//! does not take them and the channel is full, the loop holds the one
//! message it could not deliver and stops reading from the socket until
//! there is room again. Meanwhile it keeps writing: acknowledgements of
//! messages already taken in, our own publishes and PINGREQs still go out,
//! and the session does not count the unread PINGRESP against the broker.
//! The broker then holds further messages for us (its own in-flight window
//! for QoS 1/2), so memory stays bounded on both sides and nothing is lost.
//! Incoming QoS 1/2 messages are acknowledged when they enter the channel.

use std::collections::HashMap;
use std::pin::Pin;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::client::{ConnectionEvent, Message, Shared};
use crate::codec::{
    self, ConnAck, Disconnect, MqttString, Publish, SubAck, SubscribeProperties,
    SubscriptionOptions, UnsubAck, UnsubscribeProperties,
};
use crate::session::{CloseReason, Event, PublishOutcome, RequestError, RequestId, Session};

/// Anything the loop can run over: TCP, TLS, WebSocket.
pub(crate) trait Transport: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Transport for T {}

/// What the client handle asks of the loop.
pub(crate) enum Command {
    Publish {
        publish: Publish,
        done: oneshot::Sender<Result<PublishOutcome, RequestError>>,
    },
    Subscribe {
        filters: Vec<(MqttString, SubscriptionOptions)>,
        properties: SubscribeProperties,
        done: oneshot::Sender<Result<SubAck, RequestError>>,
    },
    Unsubscribe {
        filters: Vec<MqttString>,
        properties: UnsubscribeProperties,
        done: oneshot::Sender<Result<UnsubAck, RequestError>>,
    },
    Disconnect {
        disconnect: Disconnect,
        timeout: Duration,
        done: oneshot::Sender<()>,
    },
}

/// Someone waiting on a request's completion.
enum Waiter {
    Publish(oneshot::Sender<Result<PublishOutcome, RequestError>>),
    Subscribe(oneshot::Sender<Result<SubAck, RequestError>>),
    Unsubscribe(oneshot::Sender<Result<UnsubAck, RequestError>>),
}

/// The channels the loop reports through.
pub(crate) struct Outlets {
    pub(crate) messages: mpsc::Sender<Message>,
    pub(crate) events: broadcast::Sender<ConnectionEvent>,
    /// Answered once, with the first CONNACK or why there was none.
    pub(crate) connack: Option<oneshot::Sender<Result<ConnAck, CloseReason>>>,
    /// Connection facts the handles read without asking the loop.
    pub(crate) shared: Arc<Shared>,
}

pub(crate) struct EventLoop {
    session: Session,
    reader: ReadHalf<Pin<Box<dyn Transport>>>,
    writer: WriteHalf<Pin<Box<dyn Transport>>>,
    commands: mpsc::Receiver<Command>,
    outlets: Outlets,
    /// Bytes read and not yet decoded. Kept in `self` so nothing is lost if
    /// a future is cancelled between reads and decodes.
    read_buf: BytesMut,
    /// The chunk being written; the session batches what comes meanwhile.
    write_buf: Bytes,
    max_packet_size: usize,
    waiters: HashMap<RequestId, Waiter>,
    next_request: RequestId,
    /// A message the application had no room for; reading waits for it.
    stalled: Option<Message>,
    disconnect_done: Vec<oneshot::Sender<()>>,
    close_reason: Option<CloseReason>,
    commands_open: bool,
}

/// How long to keep flushing after the session closed.
const CLOSE_FLUSH: Duration = Duration::from_secs(5);

/// Read chunk: big enough to take many small packets per syscall.
const READ_CHUNK: usize = 64 * 1024;

impl EventLoop {
    pub(crate) fn new(
        session: Session,
        transport: Pin<Box<dyn Transport>>,
        commands: mpsc::Receiver<Command>,
        outlets: Outlets,
        max_packet_size: usize,
    ) -> Self {
        let (reader, writer) = tokio::io::split(transport);
        EventLoop {
            session,
            reader,
            writer,
            commands,
            outlets,
            read_buf: BytesMut::with_capacity(READ_CHUNK),
            write_buf: Bytes::new(),
            max_packet_size,
            waiters: HashMap::new(),
            next_request: 0,
            stalled: None,
            disconnect_done: Vec::new(),
            close_reason: None,
            commands_open: true,
        }
    }

    fn now() -> std::time::Instant {
        Instant::now().into_std()
    }

    /// Runs the connection to its end, then fails whatever is still waiting.
    pub(crate) async fn run(mut self) {
        self.session.handle_connect(Self::now());
        let reason = self.drive().await;
        tracing::debug!(%reason, "connection ended");
        self.session.abort_requests(reason.clone());
        self.drain_events();
        if let Some(tx) = self.outlets.connack.take() {
            let _ = tx.send(Err(reason.clone()));
        }
        let _ = self
            .outlets
            .events
            .send(ConnectionEvent::Disconnected(reason));
        for done in self.disconnect_done.drain(..) {
            let _ = done.send(());
        }
    }

    async fn drive(&mut self) -> CloseReason {
        loop {
            self.drain_events();
            if let Some(reason) = self.close_reason.clone() {
                self.flush_and_close().await;
                return reason;
            }
            if self.write_buf.is_empty() {
                self.write_buf = self.session.poll_transmit().unwrap_or_default();
            }
            let deadline = self.session.poll_timeout().map(Instant::from_std);
            let reading = self.stalled.is_none();
            // Keep taking commands only while the session's queue is modest,
            // so a flood of publishes waits in the bounded command channel
            // (and so in the callers' awaits) rather than in memory here.
            let accepting = self.commands_open && self.session.queued_len() < 1024;

            tokio::select! {
                read = self.reader.read_buf(&mut self.read_buf), if reading => {
                    match read {
                        Ok(0) | Err(_) => {
                            if let Err(e) = &read {
                                tracing::debug!(error = %e, "read failed");
                            }
                            self.session.handle_connection_lost(Self::now());
                        }
                        Ok(_) => self.decode_packets(),
                    }
                }
                written = self.writer.write(&self.write_buf), if !self.write_buf.is_empty() => {
                    match written {
                        Ok(0) | Err(_) => self.session.handle_connection_lost(Self::now()),
                        Ok(n) => self.write_buf.advance(n),
                    }
                }
                command = self.commands.recv(), if accepting => match command {
                    Some(command) => self.handle_command(command),
                    None => {
                        // Every client handle is gone: say goodbye promptly.
                        self.commands_open = false;
                        let now = Self::now();
                        self.session.handle_disconnect(Disconnect::default(), now, now);
                    }
                },
                permit = self.outlets.messages.clone().reserve_owned(), if self.stalled.is_some() => {
                    if let (Ok(permit), Some(message)) = (permit, self.stalled.take()) {
                        permit.send(message);
                    }
                    self.session.handle_read_paused(false, Self::now());
                    // Packets already buffered go first.
                    self.decode_packets();
                }
                () = sleep_until(deadline), if deadline.is_some() => {
                    self.session.handle_timeout(Self::now());
                }
            }
            if self.session.is_closed() && self.close_reason.is_none() {
                // Closed without an event (never happens by design), or the
                // event is still queued: drain_events picks it up.
                self.drain_events();
            }
        }
    }

    /// Decodes and handles buffered packets until more bytes are needed or
    /// a message cannot be delivered.
    fn decode_packets(&mut self) {
        let version = self.session.version();
        while self.stalled.is_none() && self.close_reason.is_none() {
            match codec::decode(&mut self.read_buf, version, self.max_packet_size) {
                Ok(Some(packet)) => {
                    self.session.handle_packet(packet, Self::now());
                    self.drain_events();
                }
                Ok(None) => break,
                Err(e) => {
                    self.session.handle_decode_error(e, Self::now());
                    self.drain_events();
                    break;
                }
            }
        }
        if self.read_buf.capacity() - self.read_buf.len() < 1024 {
            self.read_buf.reserve(READ_CHUNK);
        }
    }

    fn handle_command(&mut self, command: Command) {
        let now = Self::now();
        let request = self.next_request;
        self.next_request = self.next_request.wrapping_add(1);
        match command {
            Command::Publish { publish, done } => {
                self.waiters.insert(request, Waiter::Publish(done));
                self.session.handle_publish(request, publish, now);
            }
            Command::Subscribe {
                filters,
                properties,
                done,
            } => {
                self.waiters.insert(request, Waiter::Subscribe(done));
                self.session
                    .handle_subscribe(request, filters, properties, now);
            }
            Command::Unsubscribe {
                filters,
                properties,
                done,
            } => {
                self.waiters.insert(request, Waiter::Unsubscribe(done));
                self.session
                    .handle_unsubscribe(request, filters, properties, now);
            }
            Command::Disconnect {
                disconnect,
                timeout,
                done,
            } => {
                self.disconnect_done.push(done);
                self.session
                    .handle_disconnect(disconnect, now, now + timeout);
            }
        }
    }

    /// Hands every session event to whoever waits for it.
    fn drain_events(&mut self) {
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::Connected(connack) => {
                    let max = connack
                        .properties
                        .maximum_packet_size
                        .map_or(usize::MAX, |m| m as usize);
                    self.outlets
                        .shared
                        .broker_max_packet
                        .store(max, Ordering::Release);
                    self.outlets.shared.connected.store(true, Ordering::Release);
                    if let Some(tx) = self.outlets.connack.take() {
                        let _ = tx.send(Ok((*connack).clone()));
                    }
                    let _ = self
                        .outlets
                        .events
                        .send(ConnectionEvent::Connected(connack));
                }
                Event::Message(publish) => self.deliver(Message::from(publish)),
                Event::PublishDone { request, result } => {
                    if let Some(Waiter::Publish(tx)) = self.waiters.remove(&request) {
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

    fn deliver(&mut self, message: Message) {
        match self.outlets.messages.try_send(message) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(message)) => {
                // Hold it and stop reading until the application makes room.
                self.stalled = Some(message);
                self.session.handle_read_paused(true, Self::now());
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::trace!("message dropped: nobody is listening for messages");
            }
        }
    }

    /// Writes what is left (a DISCONNECT, usually) and shuts the transport.
    async fn flush_and_close(&mut self) {
        let flush = async {
            loop {
                if self.write_buf.is_empty() {
                    match self.session.poll_transmit() {
                        Some(bytes) => self.write_buf = bytes,
                        None => break,
                    }
                }
                match self.writer.write(&self.write_buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => self.write_buf.advance(n),
                }
            }
            let _ = self.writer.flush().await;
            let _ = self.writer.shutdown().await;
        };
        if tokio::time::timeout(CLOSE_FLUSH, flush).await.is_err() {
            tracing::debug!("gave up flushing the closing connection");
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
