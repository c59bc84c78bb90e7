//! MQTT over WebSocket (RFC 6455, MQTT 3.1.1 and 5.0 §6): the client
//! upgrade handshake over a stream we already opened (TCP, or our own TLS),
//! and [`WsStream`], which makes the framed connection look like the plain
//! byte stream the event loop reads and writes.
//!
//! MQTT does not care where frames begin and end: "a single WebSocket data
//! frame can contain multiple or partial MQTT Control Packets"
//! [MQTT-6.0.0-2]. So the adapter just concatenates the payloads of binary
//! frames on the way in and cuts the byte stream into binary frames on the
//! way out; the codec finds the packet boundaries as it does over TCP.
//!
//! tokio-tungstenite does the framing, masking, and the ping/pong and close
//! bookkeeping. We ask it for the handshake only (none of its TLS or
//! connect features): plover opens the TCP connection and runs TLS itself,
//! so `wss://` gets the same certificate checks and errors as `mqtts://`.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use futures_core::Stream;
use futures_sink::Sink;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::{Error as WsError, ProtocolError, SubProtocolError};
use tokio_tungstenite::tungstenite::handshake::client::{Response, generate_key};
use tokio_tungstenite::tungstenite::http::header::{self, HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::http::{Request, Uri};
use tokio_tungstenite::tungstenite::protocol::{Message, WebSocketConfig};

use super::{TransportError, WsOptions};

/// The WebSocket subprotocol MQTT registers with IANA. The client offers it
/// [MQTT-6.0.0-3] and the server must choose it [MQTT-6.0.0-4].
const SUBPROTOCOL: &str = "mqtt";

/// The most bytes one `poll_write` puts in one frame. It bounds what a single
/// write copies and buffers; a larger packet simply spans several frames,
/// which MQTT allows [MQTT-6.0.0-2].
const MAX_WRITE_FRAME: usize = 64 * 1024;

/// MQTT's own largest packet (1 byte of fixed header, 4 of remaining
/// length, 268,435,455 of body). tungstenite's defaults (16 MiB a frame,
/// 64 MiB a message) would cut off packets that MQTT and our
/// `max_packet_size` allow, so its limits are MQTT's; the codec then
/// enforces the user's maximum packet size as it does over TCP.
const MAX_MQTT_PACKET: usize = 268_435_460;

/// Request headers that belong to the WebSocket handshake itself: the
/// user's extra headers may not replace them. (`Host` may be replaced, e.g.
/// for a virtual host behind a proxy.) `Sec-WebSocket-Extensions` is here
/// because tungstenite implements no extensions: a server that agreed to
/// one (say permessage-deflate) would send frames we cannot read.
const RESERVED_HEADERS: [HeaderName; 6] = [
    header::CONNECTION,
    header::UPGRADE,
    header::SEC_WEBSOCKET_VERSION,
    header::SEC_WEBSOCKET_KEY,
    header::SEC_WEBSOCKET_PROTOCOL,
    header::SEC_WEBSOCKET_EXTENSIONS,
];

/// Runs the WebSocket upgrade over `stream` (already TLS when `secure`),
/// asking for `options.path` on `host:port` with the `mqtt` subprotocol and
/// the user's extra headers.
///
/// Fails with [`TransportError::WebSocket`] if the request cannot be built,
/// the server answers with anything but `101 Switching Protocols`, or it
/// does not agree to the `mqtt` subprotocol.
///
/// Cancel safety: not cancel-safe; a cancelled handshake leaves `stream`
/// half-used, and it is dropped.
pub(crate) async fn connect<S>(
    stream: S,
    host: &str,
    port: u16,
    secure: bool,
    options: &WsOptions,
) -> Result<WsStream<S>, TransportError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let request = build_request(host, port, secure, options)?;
    let config = WebSocketConfig::default()
        .max_frame_size(Some(MAX_MQTT_PACKET))
        .max_message_size(Some(MAX_MQTT_PACKET));
    let (ws, response) = tokio_tungstenite::client_async_with_config(request, stream, Some(config))
        .await
        .map_err(|e| handshake_error(e, &options.path))?;
    check_subprotocol(&response)?;
    Ok(WsStream::new(ws))
}

/// The upgrade request: `GET path` with the handshake's headers, then the
/// user's.
fn build_request(
    host: &str,
    port: u16,
    secure: bool,
    options: &WsOptions,
) -> Result<Request<()>, TransportError> {
    let (scheme, default_port) = if secure { ("wss", 443) } else { ("ws", 80) };
    // An IPv6 literal needs brackets in a URI and in Host (RFC 3986 §3.2.2).
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    // RFC 6455 §4.1: Host carries the port only when it is not the
    // scheme's default, as browsers send it.
    let authority = if port == default_port {
        host
    } else {
        format!("{host}:{port}")
    };
    let path = match options.path.as_str() {
        "" => "/".to_owned(),
        p if p.starts_with('/') => p.to_owned(),
        p => format!("/{p}"),
    };
    let uri: Uri = format!("{scheme}://{authority}{path}")
        .parse()
        .map_err(|e| TransportError::WebSocket(format!("invalid request path {path:?}: {e}")))?;
    let invalid = |what: &str, e: &dyn std::fmt::Display| {
        TransportError::WebSocket(format!("invalid {what}: {e}"))
    };
    let mut request = Request::get(uri)
        .header(header::HOST, &authority)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_VERSION, "13")
        .header(header::SEC_WEBSOCKET_KEY, generate_key())
        .header(header::SEC_WEBSOCKET_PROTOCOL, SUBPROTOCOL)
        .body(())
        .map_err(|e| invalid("WebSocket request", &e))?;

    let headers = request.headers_mut();
    for (name, value) in &options.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| invalid(&format!("header name {name:?}"), &e))?;
        if RESERVED_HEADERS.contains(&name) {
            return Err(TransportError::WebSocket(format!(
                "header {name} is part of the WebSocket handshake and cannot be set"
            )));
        }
        let value = HeaderValue::from_str(value)
            .map_err(|e| invalid(&format!("value for header {name}"), &e))?;
        if name == header::HOST {
            headers.insert(name, value);
        } else {
            headers.append(name, value);
        }
    }
    Ok(request)
}

/// [MQTT-6.0.0-4]: the server must have chosen `mqtt`. tungstenite already
/// fails a handshake whose answer names a subprotocol we did not offer, or
/// none; checking again here keeps the rule next to its statement, whatever
/// tungstenite's version does.
fn check_subprotocol(response: &Response) -> Result<(), TransportError> {
    match response.headers().get(header::SEC_WEBSOCKET_PROTOCOL) {
        Some(p) if p.as_bytes() == SUBPROTOCOL.as_bytes() => Ok(()),
        Some(p) => Err(TransportError::WebSocket(format!(
            "the server chose the subprotocol {p:?}, not \"mqtt\" as MQTT requires"
        ))),
        None => Err(no_subprotocol()),
    }
}

fn no_subprotocol() -> TransportError {
    TransportError::WebSocket(
        "the server did not agree to the \"mqtt\" subprotocol (no Sec-WebSocket-Protocol: mqtt \
         in its answer); MQTT over WebSocket requires it"
            .to_owned(),
    )
}

/// Says what went wrong in the upgrade in terms of what to check.
fn handshake_error(e: WsError, path: &str) -> TransportError {
    let message = match e {
        WsError::Http(response) => {
            let status = response.status();
            format!(
                "the server answered HTTP {} {} instead of switching to WebSocket \
                 (is {path:?} the right path, and is this a WebSocket listener?)",
                status.as_u16(),
                status.canonical_reason().unwrap_or(""),
            )
        }
        WsError::Protocol(ProtocolError::SecWebSocketSubProtocolError(e)) => match e {
            SubProtocolError::NoSubProtocol => return no_subprotocol(),
            SubProtocolError::InvalidSubProtocol
            | SubProtocolError::ServerSentSubProtocolNoneRequested => format!(
                "the server chose a subprotocol other than \"mqtt\", which MQTT requires ({e})"
            ),
        },
        WsError::Io(e)
            if matches!(
                e.kind(),
                io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
            ) =>
        {
            format!(
                "the server closed the connection before answering the upgrade \
                 (is this a WebSocket listener, and does it accept the \"mqtt\" subprotocol?): {e}"
            )
        }
        WsError::Protocol(ProtocolError::HttparseError(e)) => {
            format!("the server's answer is not HTTP ({e}); is this a WebSocket listener?")
        }
        other => other.to_string(),
    };
    TransportError::WebSocket(message)
}

/// A WebSocket connection seen as a byte stream for MQTT: writes become
/// binary frames, reads return the payloads of binary frames in order.
///
/// Pings are answered by tungstenite as a side effect of reading; pongs are
/// skipped; a close frame reads as end of stream; a text frame is an error,
/// since "if any other type of data frame is received the recipient MUST
/// close the Network Connection" [MQTT-6.0.0-1] (the event loop drops the
/// connection on a read error).
pub(crate) struct WsStream<S> {
    inner: WebSocketStream<S>,
    /// The rest of the binary frame being read. `Bytes` from tungstenite,
    /// sliced as it is consumed: no copy beyond the one into the reader's
    /// buffer.
    frame: Bytes,
    /// Scratch for outgoing payloads. Each frame is split off it and frozen;
    /// tungstenite drops the frame once it has masked it into its own
    /// buffer, so the next `reserve` reuses the same allocation.
    out: BytesMut,
    /// Frames handed to tungstenite that may not have reached the stream.
    unflushed: bool,
    /// A close frame or the end of the stream was read.
    read_closed: bool,
    /// Our close frame has been sent (during `poll_shutdown`).
    close_sent: bool,
}

impl<S> WsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn new(inner: WebSocketStream<S>) -> Self {
        WsStream {
            inner,
            frame: Bytes::new(),
            out: BytesMut::new(),
            unflushed: false,
            read_closed: false,
            close_sent: false,
        }
    }

    /// Pushes what tungstenite buffered (our frames, or its automatic
    /// pong and close replies) into the stream, and flushes the stream.
    fn poll_flush_frames(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = ready!(Pin::new(&mut self.inner).poll_flush(cx)).map_err(write_error);
        if result.is_ok() {
            self.unflushed = false;
        }
        Poll::Ready(result)
    }
}

impl<S> AsyncRead for WsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // The event loop only calls `flush` when it closes, so a frame that
        // did not fit into the socket at `poll_write` time would otherwise
        // wait for the next write. Reading is what the loop always does, so
        // it keeps that frame moving; a write error shows on the next write.
        if this.unflushed {
            let _ = this.poll_flush_frames(cx);
        }
        loop {
            if !this.frame.is_empty() {
                let n = this.frame.len().min(buf.remaining());
                buf.put_slice(&this.frame[..n]);
                this.frame.advance(n);
                return Poll::Ready(Ok(()));
            }
            if this.read_closed {
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut this.inner).poll_next(cx)) {
                Some(Ok(Message::Binary(payload))) => this.frame = payload,
                // tungstenite queued the pong reply; its next read or flush
                // sends it. Pongs answer pings we never send.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Close(_))) | None => {
                    this.read_closed = true;
                    // Send tungstenite's queued close reply if the socket
                    // takes it now; the connection is over either way.
                    let _ = this.poll_flush_frames(cx);
                }
                Some(Ok(Message::Text(_))) => {
                    // [MQTT-6.0.0-1]
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "MQTT over WebSocket: the server sent a text frame; \
                         MQTT packets travel in binary frames only",
                    )));
                }
                Some(Err(e)) => return Poll::Ready(Err(read_error(e))),
            }
        }
    }
}

impl<S> AsyncWrite for WsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        // Backpressure: take a new frame only once the last one is in the
        // stream, as a TCP socket takes bytes only when its buffer has room.
        if this.unflushed {
            ready!(this.poll_flush_frames(cx))?;
        }
        ready!(Pin::new(&mut this.inner).poll_ready(cx)).map_err(write_error)?;
        let n = buf.len().min(MAX_WRITE_FRAME);
        this.out.reserve(n);
        this.out.extend_from_slice(&buf[..n]);
        let payload = this.out.split().freeze();
        // [MQTT-6.0.0-1]: binary frames.
        Pin::new(&mut this.inner)
            .start_send(Message::Binary(payload))
            .map_err(write_error)?;
        this.unflushed = true;
        // Send it now rather than when tungstenite's buffer fills: the event
        // loop does not flush after each write. If the stream is full, the
        // frame stays queued and the next read or write pushes it on.
        if let Poll::Ready(Err(e)) = this.poll_flush_frames(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_flush_frames(cx)
    }

    /// Sends a close frame (RFC 6455 §5.5.1) after anything still queued,
    /// then shuts the underlying stream down.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.close_sent {
            ready!(Pin::new(&mut this.inner).poll_close(cx)).map_err(write_error)?;
            this.close_sent = true;
            this.unflushed = false;
        }
        Pin::new(this.inner.get_mut()).poll_shutdown(cx)
    }
}

/// A tungstenite error on the read side, as the `io::Error` the event loop
/// expects. A closed connection never gets here: the stream reports it as
/// its end, which `poll_read` turns into EOF.
fn read_error(e: WsError) -> io::Error {
    match e {
        WsError::Io(e) => e,
        WsError::Capacity(e) => io::Error::new(io::ErrorKind::InvalidData, e),
        WsError::Protocol(e) => io::Error::new(io::ErrorKind::InvalidData, e),
        WsError::Utf8(e) => io::Error::new(io::ErrorKind::InvalidData, e),
        other => io::Error::other(other),
    }
}

/// A tungstenite error on the write side as an `io::Error`.
fn write_error(e: WsError) -> io::Error {
    match e {
        WsError::Io(e) => e,
        WsError::ConnectionClosed | WsError::AlreadyClosed => io::Error::new(
            io::ErrorKind::BrokenPipe,
            "the WebSocket connection is closed",
        ),
        other => io::Error::other(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use futures::{SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
    use tokio_tungstenite::tungstenite::handshake::server::{
        ErrorResponse, Request as ServerRequest, Response as ServerResponse,
    };

    /// What the test server saw in the upgrade request.
    #[derive(Debug, Default, Clone)]
    struct Seen {
        path: String,
        host: String,
        protocol: String,
        extra: Vec<(String, String)>,
    }

    /// Connects our client to a tungstenite server over an in-memory pipe.
    /// `answer` decides the server's `Sec-WebSocket-Protocol` reply.
    async fn pair_with(
        options: WsOptions,
        port: u16,
        answer: Option<&'static str>,
    ) -> (
        Result<WsStream<DuplexStream>, TransportError>,
        Option<WebSocketStream<DuplexStream>>,
        Seen,
    ) {
        let (client_io, server_io) = tokio::io::duplex(1 << 20);
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Seen::default()));
        let seen2 = seen.clone();
        let server = tokio::spawn(async move {
            #[allow(
                clippy::result_large_err,
                reason = "the signature is tungstenite's Callback"
            )]
            let callback = move |req: &ServerRequest, mut resp: ServerResponse| {
                let header = |name: &str| {
                    req.headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                let mut s = seen2.lock().unwrap();
                s.path = req.uri().to_string();
                s.host = header("host");
                s.protocol = header("sec-websocket-protocol");
                s.extra = req
                    .headers()
                    .iter()
                    .filter(|(k, _)| k.as_str().starts_with("x-"))
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
                    .collect();
                if let Some(p) = answer {
                    resp.headers_mut()
                        .insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(p));
                }
                Ok::<_, ErrorResponse>(resp)
            };
            tokio_tungstenite::accept_hdr_async(server_io, callback)
                .await
                .ok()
        });
        let client = connect(client_io, "127.0.0.1", port, false, &options).await;
        let server = server.await.unwrap();
        let seen = seen.lock().unwrap().clone();
        (client, server, seen)
    }

    async fn pair() -> (WsStream<DuplexStream>, WebSocketStream<DuplexStream>) {
        let (client, server, _) = pair_with(WsOptions::default(), 1883, Some("mqtt")).await;
        (client.unwrap(), server.unwrap())
    }

    #[tokio::test]
    async fn request_names_path_host_subprotocol_and_extra_headers() {
        let options = WsOptions {
            path: "/ws/mqtt?x=1".to_owned(),
            headers: vec![
                ("X-Token".to_owned(), "abc".to_owned()),
                ("x-other".to_owned(), "1".to_owned()),
            ],
        };
        let (client, _server, seen) = pair_with(options, 8080, Some("mqtt")).await;
        client.unwrap();
        assert_eq!(seen.path, "/ws/mqtt?x=1");
        assert_eq!(seen.host, "127.0.0.1:8080");
        assert_eq!(seen.protocol, "mqtt");
        let mut extra = seen.extra;
        extra.sort();
        assert_eq!(
            extra,
            [
                ("x-other".to_owned(), "1".to_owned()),
                ("x-token".to_owned(), "abc".to_owned()),
            ]
        );
    }

    #[test]
    fn host_header_has_the_port_only_when_not_the_default() {
        let host = |host, port, secure| {
            let r = build_request(host, port, secure, &WsOptions::default()).unwrap();
            let h = r.headers()[header::HOST].to_str().unwrap().to_owned();
            (h, r.uri().to_string())
        };
        assert_eq!(host("example.com", 80, false).0, "example.com");
        assert_eq!(host("example.com", 443, true).0, "example.com");
        assert_eq!(host("example.com", 443, false).0, "example.com:443");
        assert_eq!(host("example.com", 80, true).0, "example.com:80");
        assert_eq!(
            host("::1", 8080, false),
            ("[::1]:8080".to_owned(), "ws://[::1]:8080/mqtt".to_owned())
        );
        assert_eq!(host("::1", 443, true).0, "[::1]");
    }

    #[test]
    fn bad_paths_and_headers_are_errors_not_panics() {
        let with = |path: &str, headers: &[(&str, &str)]| {
            build_request(
                "h",
                80,
                false,
                &WsOptions {
                    path: path.to_owned(),
                    headers: headers
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                },
            )
        };
        assert_eq!(with("mqtt", &[]).unwrap().uri().path(), "/mqtt");
        assert_eq!(with("", &[]).unwrap().uri().path(), "/");
        for bad in [
            with("/a b", &[]),
            with("/mqtt", &[("bad name", "v")]),
            with("/mqtt", &[("X-Ok", "bad\nvalue")]),
            with("/mqtt", &[("Sec-WebSocket-Protocol", "other")]),
            with("/mqtt", &[("upgrade", "h2c")]),
        ] {
            assert!(matches!(bad, Err(TransportError::WebSocket(_))), "{bad:?}");
        }
        // Host may be replaced (virtual hosting behind a proxy).
        let r = with("/mqtt", &[("Host", "broker.example")]).unwrap();
        assert_eq!(r.headers().get_all(header::HOST).iter().count(), 1);
        assert_eq!(r.headers()[header::HOST], "broker.example");
    }

    #[tokio::test]
    async fn a_server_without_the_mqtt_subprotocol_is_refused() {
        for answer in [None, Some("chat")] {
            let (client, _server, _) = pair_with(WsOptions::default(), 80, answer).await;
            match client {
                Err(TransportError::WebSocket(m)) => assert!(m.contains("\"mqtt\""), "{m}"),
                Err(e) => panic!("{answer:?}: unexpected error {e}"),
                Ok(_) => panic!("{answer:?}: connected"),
            }
        }
    }

    #[tokio::test]
    async fn several_packets_in_one_frame_and_one_packet_over_several_frames() {
        let (mut client, mut server) = pair().await;
        // Two PINGRESPs and the start of a PUBLISH in one frame, the rest of
        // the PUBLISH in the next two.
        let publish = [0x30, 0x07, 0x00, 0x01, b't', b'h', b'e', b'l', b'o'];
        let mut first = vec![0xd0, 0x00, 0xd0, 0x00];
        first.extend_from_slice(&publish[..3]);
        server.send(Message::binary(first)).await.unwrap();
        server
            .send(Message::binary(publish[3..6].to_vec()))
            .await
            .unwrap();
        server.send(Message::Ping(Bytes::new())).await.unwrap();
        server
            .send(Message::binary(publish[6..].to_vec()))
            .await
            .unwrap();
        let mut got = vec![0; 4 + publish.len()];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(got[..4], [0xd0, 0x00, 0xd0, 0x00]);
        assert_eq!(got[4..], publish);
        // tungstenite answered the ping for us.
        assert_eq!(
            server.next().await.unwrap().unwrap(),
            Message::Pong(Bytes::new())
        );
    }

    #[tokio::test]
    async fn a_small_read_buffer_keeps_the_rest_of_the_frame() {
        let (mut client, mut server) = pair().await;
        server
            .send(Message::binary(b"abcdefgh".to_vec()))
            .await
            .unwrap();
        let mut got = Vec::new();
        let mut chunk = [0; 3];
        while got.len() < 8 {
            let n = client.read(&mut chunk).await.unwrap();
            assert!(n > 0 && n <= 3);
            got.extend_from_slice(&chunk[..n]);
        }
        assert_eq!(got, b"abcdefgh");
    }

    #[tokio::test]
    async fn writes_are_binary_frames_and_large_writes_span_frames() {
        let (mut client, mut server) = pair().await;
        client.write_all(&[0xc0, 0x00]).await.unwrap();
        // No flush: the event loop does not call it between writes.
        assert_eq!(
            server.next().await.unwrap().unwrap(),
            Message::binary(vec![0xc0, 0x00])
        );

        let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let writer = {
            let big = big.clone();
            tokio::spawn(async move {
                client.write_all(&big).await.unwrap();
                client
            })
        };
        let mut got = Vec::new();
        let mut frames = 0;
        while got.len() < big.len() {
            match server.next().await.unwrap().unwrap() {
                Message::Binary(b) => {
                    assert!(b.len() <= MAX_WRITE_FRAME);
                    got.extend_from_slice(&b);
                    frames += 1;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(got, big);
        assert!(frames >= 5, "{frames} frames");
        writer.await.unwrap();
    }

    /// A frame the stream could not take at once must still go out when
    /// the caller only reads next (the event loop never flushes).
    #[tokio::test]
    async fn a_frame_left_queued_by_a_full_stream_goes_out_while_reading() {
        let (client_io, server_io) = tokio::io::duplex(1024);
        let server = tokio::spawn(async move {
            let mut server = WebSocketStream::from_raw_socket(
                server_io,
                tokio_tungstenite::tungstenite::protocol::Role::Server,
                None,
            )
            .await;
            let got = server.next().await.unwrap().unwrap();
            server
                .send(Message::binary(vec![0xd0, 0x00]))
                .await
                .unwrap();
            got
        });
        let mut client = WsStream::new(
            WebSocketStream::from_raw_socket(
                client_io,
                tokio_tungstenite::tungstenite::protocol::Role::Client,
                None,
            )
            .await,
        );
        let packet = vec![7u8; 10_000];
        // One write takes the whole packet though the pipe holds 1 KiB ...
        assert_eq!(client.write(&packet).await.unwrap(), packet.len());
        // ... and reading (with no flush) delivers the rest.
        let mut reply = [0; 2];
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            client.read_exact(&mut reply),
        )
        .await
        .expect("the queued frame was never sent")
        .unwrap();
        assert_eq!(reply, [0xd0, 0x00]);
        assert_eq!(server.await.unwrap(), Message::binary(packet));
    }

    #[tokio::test]
    async fn a_text_frame_is_an_error() {
        let (mut client, mut server) = pair().await;
        server.send(Message::text("{}")).await.unwrap();
        let e = client.read(&mut [0; 16]).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("text frame"), "{e}");
    }

    #[tokio::test]
    async fn a_close_frame_reads_as_end_of_stream() {
        let (mut client, mut server) = pair().await;
        server
            .send(Message::binary(vec![0xd0, 0x00]))
            .await
            .unwrap();
        server.close(None).await.unwrap();
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, [0xd0, 0x00]);
        // And it stays at the end.
        assert_eq!(client.read(&mut [0; 4]).await.unwrap(), 0);
        // Our side answered the close.
        assert!(matches!(
            server.next().await,
            Some(Ok(Message::Close(_))) | None
        ));
    }

    #[tokio::test]
    async fn shutdown_sends_a_close_frame() {
        let (mut client, mut server) = pair().await;
        client.write_all(&[0xe0, 0x00]).await.unwrap();
        client.shutdown().await.unwrap();
        assert_eq!(
            server.next().await.unwrap().unwrap(),
            Message::binary(vec![0xe0, 0x00])
        );
        assert!(matches!(server.next().await, Some(Ok(Message::Close(_)))));
    }

    #[tokio::test]
    async fn a_404_says_so() {
        let (client_io, mut server_io) = tokio::io::duplex(4096);
        let server = tokio::spawn(async move {
            let mut request = [0; 1024];
            let _ = server_io.read(&mut request).await;
            server_io
                .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                .await
                .unwrap();
            server_io
        });
        let result = connect(client_io, "127.0.0.1", 9001, false, &WsOptions::default()).await;
        match result {
            Err(TransportError::WebSocket(m)) => {
                assert!(m.contains("404") && m.contains("/mqtt"), "{m}")
            }
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("connected"),
        }
        drop(server.await);
    }
}
