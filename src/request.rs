//! Request/response over MQTT: [`Client::request`] publishes a request and
//! waits for its answer; [`Client::respond`] answers one.
//!
//! # MQTT 5.0 (the first-class path)
//!
//! The requester publishes to the service's topic with two properties: a
//! Response Topic, where it listens for answers, and Correlation Data, 16
//! bytes unique to the request (8 random bytes chosen per client, then a
//! counter). The responder publishes its answer to that Response Topic with
//! the same Correlation Data, which is how the requester pairs answers with
//! requests, any number of them at once.
//!
//! The response topic is one per client, subscribed to once, on the first
//! request of a connection: `{Response Information}/{nonce}` when the
//! broker's CONNACK gave Response Information (ask for it with the CONNECT
//! property `request_response_information`), else
//! `plover/response/{client id}/{nonce}`, where `{nonce}` is 16 hex digits
//! chosen per [`Client`] and `+` or `#` in the client id become `_`.
//! Answers that come after their request gave up (timed out, or its future
//! was dropped) are logged at debug level and dropped.
//!
//! # MQTT 3.1.1 (a convention)
//!
//! 3.1.1 has no properties, so both go into the payload, as lines ending in
//! `\n` before the body (the body itself is left as it is):
//!
//! ```text
//! request:  plover-request/1\n{response topic}\n{correlation data as hex}\n{body}
//! response: plover-response/1\n{correlation data as hex}\n{body}
//! ```
//!
//! For example, a request for `ping` with correlation data `0x01 0xab`
//! answered by `pong`:
//!
//! ```text
//! plover-request/1\nplover/response/me/00112233445566ff\n01ab\nping
//! plover-response/1\n01ab\npong
//! ```
//!
//! The hex is written in lowercase and read in either case. Any client can
//! take part with nothing but a topic and a payload; plover's
//! [`Client::request`] writes the request form when it speaks 3.1.1, and
//! [`Client::respond`] answers in the form the request came in, whatever
//! version the responder speaks. [`Message::request_parts`] takes a request
//! apart in either form. A 3.1.1 responder cannot answer a 5.0 request: the
//! broker does not pass 5.0 properties on to 3.1.1 clients.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::oneshot;

use crate::client::{Client, ClientError, Connection, Message, PublishHandle, Shared};
use crate::codec::{
    MqttString, ProtocolVersion, PublishProperties, QoS, SubAckReasonCode, SubscribeProperties,
    SubscriptionOptions,
};
use crate::router::{RouteGuard, Sink};
use crate::topic::validate_topic_name;

/// The first line of a 3.1.1 request's payload (see the [module docs](self)).
pub const REQUEST_HEADER: &str = "plover-request/1";

/// The first line of a 3.1.1 response's payload (see the [module docs](self)).
pub const RESPONSE_HEADER: &str = "plover-response/1";

/// A request as the responder sees it: where to answer, with what
/// correlation data, and the request's own payload. See
/// [`Message::request_parts`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestParts {
    /// Where the answer goes.
    pub response_topic: MqttString,
    /// What the answer must carry back (5.0 allows a request without).
    pub correlation_data: Option<Bytes>,
    /// The request body: the payload, without the 3.1.1 convention's
    /// header lines.
    pub payload: Bytes,
    /// The request came in the 3.1.1 convention's form, so the answer goes
    /// back in it too.
    pub enveloped: bool,
}

impl Message {
    /// This message as a request: its 5.0 Response Topic and Correlation
    /// Data, or else the 3.1.1 convention's header lines (see
    /// [`request`](crate::request)); `None` when it is neither.
    ///
    /// ```
    /// # fn handle(msg: plover::Message) {
    /// if let Some(request) = msg.request_parts() {
    ///     println!("asked {:?}, answer to {}", request.payload, request.response_topic);
    /// }
    /// # }
    /// ```
    pub fn request_parts(&self) -> Option<RequestParts> {
        if let Some(topic) = &self.properties.response_topic {
            return Some(RequestParts {
                response_topic: topic.clone(),
                correlation_data: self.properties.correlation_data.clone(),
                payload: self.payload.clone(),
                enveloped: false,
            });
        }
        let (response_topic, correlation, payload) = parse_request(&self.payload)?;
        Some(RequestParts {
            response_topic,
            correlation_data: Some(correlation),
            payload,
            enveloped: true,
        })
    }
}

impl Client {
    /// Publishes a request to `topic` (QoS 1) and waits at most `timeout`
    /// for the answer, which it returns.
    ///
    /// With 5.0 the request carries a Response Topic and Correlation Data;
    /// with 3.1.1 they go into the payload by the convention the
    /// [`request`](crate::request) module describes. The first request of
    /// a connection subscribes to the client's response topic; after that,
    /// concurrent requests share it and are told apart by their correlation
    /// data. Answers never go to [`messages`](Self::messages).
    ///
    /// No answer in time is [`ClientError::Timeout`]; the request is then
    /// forgotten, and an answer that comes later is dropped. A publish the
    /// broker refuses fails at once.
    ///
    /// ```no_run
    /// # async fn run(client: plover::Client) -> Result<(), plover::ClientError> {
    /// use std::time::Duration;
    ///
    /// let answer = client.request("services/clock", "now?", Duration::from_secs(5)).await?;
    /// println!("the time is {:?}", answer.payload_str());
    /// # Ok(()) }
    /// ```
    ///
    /// With automatic resubscription turned off by
    /// [`ClientBuilder::resubscribe`](crate::ClientBuilder::resubscribe)
    /// (false), a reconnect that finds the broker without our session also
    /// loses the response subscription until the next `connect`.
    ///
    /// Cancel safety: dropping the future forgets the request (its answer
    /// will be dropped); the request itself may already have been sent.
    pub async fn request(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        timeout: Duration,
    ) -> Result<Message, ClientError> {
        self.request_with_properties(
            topic,
            payload,
            QoS::AtLeastOnce,
            PublishProperties::default(),
            timeout,
        )
        .await
    }

    /// [`request`](Self::request) with a QoS and 5.0 properties (content
    /// type, user properties, message expiry, ...). Any Response Topic and
    /// Correlation Data in `properties` are replaced by the client's.
    ///
    /// Cancel safety: as [`request`](Self::request).
    pub async fn request_with_properties(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        properties: PublishProperties,
        timeout: Duration,
    ) -> Result<Message, ClientError> {
        validate_topic_name(topic).map_err(ClientError::InvalidTopic)?;
        let payload = payload.into();
        tokio::time::timeout(timeout, self.request_now(topic, payload, qos, properties))
            .await
            .unwrap_or(Err(ClientError::Timeout(timeout)))
    }

    async fn request_now(
        &self,
        topic: &str,
        payload: Bytes,
        qos: QoS,
        mut properties: PublishProperties,
    ) -> Result<Message, ClientError> {
        let conn = self.connection()?;
        let requests = self.requests();
        let response_topic = requests.response_topic(self, &conn).await?;
        let correlation = requests.next_correlation();
        let (tx, mut rx) = oneshot::channel();
        // Registered before publishing, so even an instant answer finds it;
        // removed when this future ends, however it ends.
        let _waiting = requests.pending.wait_for(correlation.clone(), tx);
        let payload = match conn.version {
            ProtocolVersion::V5 => {
                properties.response_topic = Some(response_topic);
                properties.correlation_data = Some(correlation);
                payload
            }
            ProtocolVersion::V311 => request_envelope(&response_topic, &correlation, &payload),
        };
        let mut published = self
            .publish_with_properties(topic, payload, qos, false, properties)
            .await?;
        let mut acknowledged = false;
        loop {
            tokio::select! {
                answer = &mut rx => return answer.map_err(|_| ClientError::NotConnected),
                ack = &mut published, if !acknowledged => {
                    ack?;
                    acknowledged = true;
                }
            }
        }
    }

    /// Answers `request` with `payload`: publishes it to the request's
    /// response topic with its correlation data, at the request's QoS.
    /// A request in the 3.1.1 convention's form is answered in that form
    /// (see [`request`](crate::request)).
    ///
    /// A message that is not a request (no Response Topic, no convention
    /// header) is [`ClientError::InvalidArgument`].
    ///
    /// ```no_run
    /// # async fn run(client: plover::Client) -> Result<(), plover::ClientError> {
    /// use plover::QoS;
    ///
    /// let (_, mut requests) = client.subscribe_stream("services/clock", QoS::AtLeastOnce).await?;
    /// while let Some(request) = requests.recv().await {
    ///     client.respond(&request, "12:00").await?;
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// Cancel safety: as [`publish`](Self::publish).
    pub async fn respond(
        &self,
        request: &Message,
        payload: impl Into<Bytes>,
    ) -> Result<PublishHandle, ClientError> {
        self.respond_with_properties(request, payload, request.qos, PublishProperties::default())
            .await
    }

    /// [`respond`](Self::respond) with a QoS and 5.0 properties; the
    /// Correlation Data is the request's, whatever `properties` holds.
    ///
    /// Cancel safety: as [`publish`](Self::publish).
    pub async fn respond_with_properties(
        &self,
        request: &Message,
        payload: impl Into<Bytes>,
        qos: QoS,
        mut properties: PublishProperties,
    ) -> Result<PublishHandle, ClientError> {
        let parts = request.request_parts().ok_or(ClientError::InvalidArgument(
            "not a request: the message has no response topic",
        ))?;
        let payload = payload.into();
        let payload = if parts.enveloped {
            properties.correlation_data = None;
            response_envelope(
                parts.correlation_data.as_deref().unwrap_or_default(),
                &payload,
            )
        } else {
            properties.correlation_data = parts.correlation_data;
            payload
        };
        self.publish_with_properties(&parts.response_topic, payload, qos, false, properties)
            .await
    }
}

// ---------------------------------------------------------------------------
// Matching answers to requests.

/// Requests waiting for their answer, by correlation data. The router hands
/// every message of the response subscription to [`Pending::dispatch`] on
/// the event loop task.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    waiting: Mutex<HashMap<Bytes, oneshot::Sender<Message>>>,
}

impl Pending {
    fn lock(&self) -> MutexGuard<'_, HashMap<Bytes, oneshot::Sender<Message>>> {
        // Every change is a single insert or remove: still whole after a panic.
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for the answer carrying `correlation`, until the returned
    /// guard is dropped.
    fn wait_for(&self, correlation: Bytes, tx: oneshot::Sender<Message>) -> Waiting<'_> {
        self.lock().insert(correlation.clone(), tx);
        Waiting {
            pending: self,
            correlation,
        }
    }

    /// Gives an answer to the request it belongs to. In the 3.1.1
    /// convention's form the requester gets the body as the payload and the
    /// correlation data as the property, as a 5.0 answer would have them.
    pub(crate) fn dispatch(&self, message: &Message) {
        let (correlation, answer) = match &message.properties.correlation_data {
            Some(correlation) => (correlation.clone(), message.clone()),
            None => match parse_response(&message.payload) {
                Some((correlation, body)) => {
                    let mut answer = message.clone();
                    answer.payload = body;
                    answer.properties.correlation_data = Some(correlation.clone());
                    (correlation, answer)
                }
                None => {
                    tracing::debug!(topic = %message.topic, "dropped a message without correlation data on the response topic");
                    return;
                }
            },
        };
        let waiter = self.lock().remove(&correlation);
        match waiter {
            Some(tx) => {
                if tx.send(answer).is_err() {
                    tracing::debug!("dropped a response: its request just gave up");
                }
            }
            None => tracing::debug!(
                topic = %message.topic,
                "dropped a response that matches no waiting request (late, or repeated)"
            ),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// A request's place in [`Pending`]; dropping it gives up on the answer.
struct Waiting<'a> {
    pending: &'a Pending,
    correlation: Bytes,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.pending.lock().remove(&self.correlation);
    }
}

/// Per-client request state, kept by the [`Client`].
pub(crate) struct Requests {
    pending: Arc<Pending>,
    /// Random per client: the first half of every correlation id, and the
    /// last level of the response topic.
    nonce: u64,
    counter: AtomicU64,
    /// The response subscription, made on the first request of a connection.
    response: tokio::sync::Mutex<Option<ResponseRoute>>,
}

struct ResponseRoute {
    topic: MqttString,
    /// The connection it was made on: a new `connect` needs a new one.
    connection: Weak<Shared>,
    _route: RouteGuard,
}

impl std::fmt::Debug for Requests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Requests")
            .field("pending", &self.pending.lock().len())
            .finish_non_exhaustive()
    }
}

impl Requests {
    pub(crate) fn new() -> Self {
        Requests {
            pending: Arc::default(),
            nonce: random_u64(),
            counter: AtomicU64::new(0),
            response: tokio::sync::Mutex::new(None),
        }
    }

    fn next_correlation(&self) -> Bytes {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut b = BytesMut::with_capacity(16);
        b.put_u64(self.nonce);
        b.put_u64(n);
        b.freeze()
    }

    /// The response topic, subscribed to on this connection.
    async fn response_topic(
        &self,
        client: &Client,
        conn: &Connection,
    ) -> Result<MqttString, ClientError> {
        let mut slot = self.response.lock().await;
        if let Some(route) = slot.as_ref() {
            let same = route
                .connection
                .upgrade()
                .is_some_and(|shared| Arc::ptr_eq(&shared, &conn.shared));
            if same {
                return Ok(route.topic.clone());
            }
        }
        // The old route (of an earlier connection) goes.
        *slot = None;
        let topic = self.topic_name(client, &conn.shared)?;
        let (ack, routed) = client
            .subscribe_routed(
                &[(&topic, SubscriptionOptions::new(QoS::AtLeastOnce))],
                SubscribeProperties::default(),
                Sink::Responses(self.pending.clone()),
            )
            .await?;
        let code = ack
            .reason_codes
            .first()
            .copied()
            .unwrap_or(SubAckReasonCode::UnspecifiedError);
        if code.granted_qos().is_none() {
            return Err(ClientError::SubscribeRejected {
                reason: code,
                reason_string: ack.properties.reason_string.clone(),
            });
        }
        let topic = MqttString::try_from(topic).map_err(|error| ClientError::InvalidString {
            what: "response topic",
            error,
        })?;
        *slot = Some(ResponseRoute {
            topic: topic.clone(),
            connection: Arc::downgrade(&conn.shared),
            _route: routed.guard,
        });
        Ok(topic)
    }

    /// See the [module docs](self) for the choice.
    fn topic_name(&self, client: &Client, shared: &Shared) -> Result<String, ClientError> {
        let connack = shared.connack();
        let info = connack
            .as_ref()
            .and_then(|c| c.properties.response_information.as_ref())
            .filter(|ri| validate_topic_name(ri).is_ok());
        let base = match info {
            Some(ri) => ri.trim_end_matches('/').to_owned(),
            None => {
                let mut id = client.configured_client_id();
                if id.is_empty() {
                    id = connack
                        .as_ref()
                        .and_then(|c| c.properties.assigned_client_identifier.as_deref())
                        .unwrap_or("anonymous")
                        .to_owned();
                }
                let id: String = id
                    .chars()
                    .map(|c| if matches!(c, '+' | '#') { '_' } else { c })
                    .collect();
                format!("plover/response/{id}")
            }
        };
        let topic = format!("{base}/{:016x}", self.nonce);
        validate_topic_name(&topic).map_err(ClientError::InvalidTopic)?;
        if topic.contains('\n') {
            // The 3.1.1 convention puts the topic on a line of its own.
            return Err(ClientError::InvalidArgument(
                "a response topic cannot contain a line break",
            ));
        }
        Ok(topic)
    }
}

/// 64 bits that differ between clients and runs. Not for secrets: they
/// only keep correlation data and response topics apart.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static CLIENTS: AtomicU64 = AtomicU64::new(0);
    // `RandomState` keys are seeded from the OS's randomness.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.write_u128(now);
    h.write_u32(std::process::id());
    h.write_u64(CLIENTS.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

// ---------------------------------------------------------------------------
// The 3.1.1 convention's payloads.

fn request_envelope(response_topic: &str, correlation: &[u8], body: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(
        REQUEST_HEADER.len() + response_topic.len() + 2 * correlation.len() + body.len() + 3,
    );
    b.put_slice(REQUEST_HEADER.as_bytes());
    b.put_u8(b'\n');
    b.put_slice(response_topic.as_bytes());
    b.put_u8(b'\n');
    put_hex(&mut b, correlation);
    b.put_u8(b'\n');
    b.put_slice(body);
    b.freeze()
}

fn response_envelope(correlation: &[u8], body: &[u8]) -> Bytes {
    let mut b =
        BytesMut::with_capacity(RESPONSE_HEADER.len() + 2 * correlation.len() + body.len() + 2);
    b.put_slice(RESPONSE_HEADER.as_bytes());
    b.put_u8(b'\n');
    put_hex(&mut b, correlation);
    b.put_u8(b'\n');
    b.put_slice(body);
    b.freeze()
}

/// The response topic, correlation data and body of a request in the
/// convention's form; the topic and body share the payload's buffer.
fn parse_request(payload: &Bytes) -> Option<(MqttString, Bytes, Bytes)> {
    let rest = header_rest(payload, REQUEST_HEADER)?;
    let (topic, rest) = split_line(rest)?;
    let (hex, body) = split_line(rest)?;
    let topic = std::str::from_utf8(topic).ok()?;
    validate_topic_name(topic).ok()?;
    let correlation = from_hex(hex)?;
    let topic = MqttString::try_from(payload.slice_ref(topic.as_bytes())).ok()?;
    Some((topic, correlation, payload.slice_ref(body)))
}

/// The correlation data and body of a response in the convention's form.
fn parse_response(payload: &Bytes) -> Option<(Bytes, Bytes)> {
    let rest = header_rest(payload, RESPONSE_HEADER)?;
    let (hex, body) = split_line(rest)?;
    Some((from_hex(hex)?, payload.slice_ref(body)))
}

/// What follows the header line, if the payload starts with it.
fn header_rest<'a>(payload: &'a [u8], header: &str) -> Option<&'a [u8]> {
    payload.strip_prefix(header.as_bytes())?.strip_prefix(b"\n")
}

fn split_line(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = s.iter().position(|&b| b == b'\n')?;
    Some((&s[..end], &s[end + 1..]))
}

fn put_hex(b: &mut BytesMut, data: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for &byte in data {
        b.put_u8(DIGITS[usize::from(byte >> 4)]);
        b.put_u8(DIGITS[usize::from(byte & 0x0f)]);
    }
}

fn from_hex(hex: &[u8]) -> Option<Bytes> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    hex.chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect::<Option<Vec<u8>>>()
        .map(Bytes::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Publish;
    use crate::codec::TopicName;

    fn message(topic: &str, payload: impl Into<Bytes>, properties: PublishProperties) -> Message {
        Message::from(
            Publish::new(TopicName::try_from(topic).unwrap(), payload).with_properties(properties),
        )
    }

    #[test]
    fn the_documented_example_is_what_is_written() {
        let request = request_envelope(
            "plover/response/me/00112233445566ff",
            &[0x01, 0xab],
            b"ping",
        );
        assert_eq!(
            &request[..],
            b"plover-request/1\nplover/response/me/00112233445566ff\n01ab\nping"
        );
        let response = response_envelope(&[0x01, 0xab], b"pong");
        assert_eq!(&response[..], b"plover-response/1\n01ab\npong");
    }

    #[test]
    fn envelopes_round_trip() {
        let correlation = [0u8, 1, 0x7f, 0x80, 0xff];
        let body = b"line one\nline two\n\n";
        let request = request_envelope("a/b c/d", &correlation, body);
        let (topic, cd, got) = parse_request(&request).unwrap();
        assert_eq!(topic, "a/b c/d");
        assert_eq!(&cd[..], &correlation);
        assert_eq!(&got[..], body);

        let response = response_envelope(&correlation, b"");
        let (cd, got) = parse_response(&response).unwrap();
        assert_eq!(&cd[..], &correlation);
        assert!(got.is_empty());
    }

    #[test]
    fn upper_case_hex_is_read() {
        let (cd, body) =
            parse_response(&Bytes::from_static(b"plover-response/1\nABcd\nx")).unwrap();
        assert_eq!(&cd[..], &[0xab, 0xcd]);
        assert_eq!(&body[..], b"x");
    }

    #[test]
    fn malformed_envelopes_are_not_requests() {
        for bad in [
            &b""[..],
            b"hello",
            b"plover-request/1",
            b"plover-request/1\n",
            b"plover-request/1\na/b\n",
            b"plover-request/1\na/b\n0\nbody",
            b"plover-request/1\na/b\nzz\nbody",
            b"plover-request/1\na/+\n00\nbody",
            b"plover-request/1\n\n00\nbody",
            b"plover-request/2\na/b\n00\nbody",
            b"plover-response/1\n00\nbody",
        ] {
            assert!(parse_request(&Bytes::from_static(bad)).is_none(), "{bad:?}");
        }
        for bad in [
            &b"plover-response/1\n0\nbody"[..],
            b"plover-response/1\n00",
            b"plover-request/1\na\n00\n",
        ] {
            assert!(
                parse_response(&Bytes::from_static(bad)).is_none(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn request_parts_prefer_the_properties() {
        let props = PublishProperties {
            response_topic: Some(MqttString::try_from("reply/here").unwrap()),
            correlation_data: Some(Bytes::from_static(b"abc")),
            ..PublishProperties::default()
        };
        let parts = message("svc", "body", props).request_parts().unwrap();
        assert_eq!(parts.response_topic, "reply/here");
        assert_eq!(parts.correlation_data.as_deref(), Some(&b"abc"[..]));
        assert_eq!(&parts.payload[..], b"body");
        assert!(!parts.enveloped);

        let enveloped = request_envelope("reply/there", b"\x01", b"body");
        let parts = message("svc", enveloped, PublishProperties::default())
            .request_parts()
            .unwrap();
        assert_eq!(parts.response_topic, "reply/there");
        assert_eq!(parts.correlation_data.as_deref(), Some(&b"\x01"[..]));
        assert_eq!(&parts.payload[..], b"body");
        assert!(parts.enveloped);

        assert!(
            message("svc", "plain", PublishProperties::default())
                .request_parts()
                .is_none()
        );
    }

    #[test]
    fn answers_find_their_request_once() {
        let pending = Pending::default();
        let (tx1, mut rx1) = oneshot::channel();
        let (tx2, mut rx2) = oneshot::channel();
        let w1 = pending.wait_for(Bytes::from_static(b"one"), tx1);
        let _w2 = pending.wait_for(Bytes::from_static(b"two"), tx2);

        // 5.0: by the property.
        let props = PublishProperties {
            correlation_data: Some(Bytes::from_static(b"two")),
            ..PublishProperties::default()
        };
        pending.dispatch(&message("r", "second", props.clone()));
        assert_eq!(&rx2.try_recv().unwrap().payload[..], b"second");
        // A repeat finds nobody.
        pending.dispatch(&message("r", "again", props));
        assert_eq!(pending.len(), 1);

        // 3.1.1: by the envelope, unwrapped for the requester.
        pending.dispatch(&message(
            "r",
            response_envelope(b"one", b"first"),
            PublishProperties::default(),
        ));
        let answer = rx1.try_recv().unwrap();
        assert_eq!(&answer.payload[..], b"first");
        assert_eq!(
            answer.properties.correlation_data.as_deref(),
            Some(&b"one"[..])
        );
        drop(w1);
        assert_eq!(pending.len(), 0);
    }

    #[test]
    fn giving_up_forgets_the_request() {
        let pending = Pending::default();
        let (tx, _rx) = oneshot::channel();
        let waiting = pending.wait_for(Bytes::from_static(b"x"), tx);
        assert_eq!(pending.len(), 1);
        drop(waiting);
        assert_eq!(pending.len(), 0);
    }

    #[test]
    fn correlation_ids_are_unique_per_client_and_across_clients() {
        let a = Requests::new();
        let b = Requests::new();
        let ids: std::collections::HashSet<Bytes> = (0..100)
            .flat_map(|_| [a.next_correlation(), b.next_correlation()])
            .collect();
        assert_eq!(ids.len(), 200);
        assert!(ids.iter().all(|id| id.len() == 16));
        assert_ne!(a.nonce, b.nonce);
    }
}
