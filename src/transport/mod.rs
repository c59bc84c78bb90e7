//! Builds the byte stream a connection runs over: TCP, TLS (rustls), or
//! WebSocket (the `websocket` feature), from a host and port or a
//! connection URL. The event loop runs over any of them and knows none.

mod tls;
mod url;
#[cfg(feature = "websocket")]
mod ws;

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use tokio::net::TcpStream;

/// The rustls that plover uses, for building a `ClientConfig` for
/// [`TlsOptions::from_rustls_config`] with the same version.
pub use rustls;
pub use tls::{TlsError, TlsOptions};
pub use url::{BrokerUrl, Scheme, UrlError};

use crate::eventloop::Transport;

/// A transport ready for MQTT bytes.
pub(crate) type BoxTransport = Pin<Box<dyn Transport>>;

/// WebSocket settings (paho's `ws_set_options`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsOptions {
    /// The request path; brokers commonly serve MQTT on `/mqtt`.
    pub path: String,
    /// Extra HTTP headers for the upgrade request (e.g. authorization).
    pub headers: Vec<(String, String)>,
}

impl Default for WsOptions {
    fn default() -> Self {
        WsOptions {
            path: "/mqtt".to_owned(),
            headers: Vec::new(),
        }
    }
}

/// Where the broker is and how to talk to it.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) tls: Option<TlsOptions>,
    pub(crate) websocket: Option<WsOptions>,
}

/// Why the connection to the broker could not be made.
///
/// Each way of failing is its own variant, so a program (or a person
/// reading the message) can tell a typo in the host name from a firewall,
/// an untrusted certificate or a certificate for another host.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The host name could not be resolved.
    #[error("cannot resolve host {host:?}: {source}")]
    Resolve {
        /// The host name.
        host: String,
        /// What the resolver said.
        source: io::Error,
    },
    /// Nothing accepts connections at that address and port.
    #[error("connection refused by {addr}")]
    Refused {
        /// The address tried last.
        addr: SocketAddr,
    },
    /// The TCP connection did not complete in time.
    #[error("timed out connecting to {host}:{port}")]
    Timeout {
        /// The host.
        host: String,
        /// The port.
        port: u16,
    },
    /// The server's certificate does not chain to a trusted root (unknown
    /// CA, self-signed, expired, ...).
    #[error("the server's certificate is not trusted: {0}")]
    UntrustedCertificate(String),
    /// The server's certificate is valid but not for the name (or IP
    /// address) we connected to.
    #[error("the server's certificate is not valid for {host:?}")]
    HostnameMismatch {
        /// The name or address we asked for.
        host: String,
    },
    /// The TLS handshake did not complete in time.
    #[error("TLS handshake with {host} timed out")]
    TlsHandshakeTimeout {
        /// The host.
        host: String,
    },
    /// The TLS handshake failed for another reason (e.g. the server wants
    /// a client certificate, or no protocol version in common).
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    /// TLS settings that cannot be used (unreadable files, bad PEM, ...).
    #[error(transparent)]
    TlsConfig(#[from] TlsError),
    /// The WebSocket upgrade failed.
    #[error("WebSocket handshake failed: {0}")]
    WebSocket(String),
    /// The WebSocket upgrade (the HTTP request and its `101` answer) did
    /// not complete in time: something accepted the connection (and the
    /// TLS handshake, for `wss://`) but did not answer the upgrade.
    #[error("WebSocket upgrade with {host} timed out: no answer to the HTTP upgrade request")]
    WebSocketUpgradeTimeout {
        /// The host.
        host: String,
    },
    /// WebSocket was asked for but the crate was built without the
    /// `websocket` feature.
    #[error("WebSocket support is not compiled in (enable plover's `websocket` feature)")]
    WebSocketNotEnabled,
    /// Another I/O error.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

/// Opens the transport to `endpoint`, all of it within `timeout`.
///
/// One deadline covers the whole, and each stage (TCP, TLS, WebSocket
/// upgrade) runs under what is left of it with a timeout of its own, so
/// the error names the stage that stalled: [`TransportError::Timeout`]
/// for TCP, [`TransportError::TlsHandshakeTimeout`] for a server that
/// accepts the connection and then says nothing, and
/// [`TransportError::WebSocketUpgradeTimeout`] for one that does not
/// answer the HTTP upgrade.
pub(crate) async fn connect(
    endpoint: &Endpoint,
    timeout: Duration,
) -> Result<BoxTransport, TransportError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let tcp = tokio::time::timeout_at(deadline, connect_tcp(&endpoint.host, endpoint.port))
        .await
        .map_err(|_| TransportError::Timeout {
            host: endpoint.host.clone(),
            port: endpoint.port,
        })??;
    match (&endpoint.tls, &endpoint.websocket) {
        (None, None) => Ok(Box::pin(tcp)),
        (Some(tls), None) => {
            let stream = tls::connect(tcp, &endpoint.host, tls, left(deadline)).await?;
            Ok(Box::pin(stream))
        }
        (tls, Some(ws)) => connect_ws(tcp, endpoint, tls.as_ref(), ws, deadline).await,
    }
}

/// The time from now to `deadline` (zero once it has passed).
fn left(deadline: tokio::time::Instant) -> Duration {
    deadline.saturating_duration_since(tokio::time::Instant::now())
}

#[cfg(feature = "websocket")]
async fn connect_ws(
    tcp: TcpStream,
    endpoint: &Endpoint,
    tls_options: Option<&TlsOptions>,
    ws: &WsOptions,
    deadline: tokio::time::Instant,
) -> Result<BoxTransport, TransportError> {
    let host = endpoint.host.as_str();
    // The TLS handshake has its own timeout (the time left); the upgrade
    // gets what the handshake left over.
    let upgrade_timed_out = |_| TransportError::WebSocketUpgradeTimeout {
        host: host.to_owned(),
    };
    match tls_options {
        None => {
            let upgrade = ws::connect(tcp, host, endpoint.port, false, ws);
            let stream = tokio::time::timeout_at(deadline, upgrade)
                .await
                .map_err(upgrade_timed_out)??;
            Ok(Box::pin(stream))
        }
        Some(options) => {
            let tls = tls::connect(tcp, host, options, left(deadline)).await?;
            let upgrade = ws::connect(tls, host, endpoint.port, true, ws);
            let stream = tokio::time::timeout_at(deadline, upgrade)
                .await
                .map_err(upgrade_timed_out)??;
            Ok(Box::pin(stream))
        }
    }
}

#[cfg(not(feature = "websocket"))]
async fn connect_ws(
    _tcp: TcpStream,
    _endpoint: &Endpoint,
    _tls: Option<&TlsOptions>,
    _ws: &WsOptions,
    _deadline: tokio::time::Instant,
) -> Result<BoxTransport, TransportError> {
    Err(TransportError::WebSocketNotEnabled)
}

/// Resolves `host` and connects to the first address that answers.
async fn connect_tcp(host: &str, port: u16) -> Result<TcpStream, TransportError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|source| TransportError::Resolve {
            host: host.to_owned(),
            source,
        })?
        .collect();
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                // MQTT packets are small and latency matters more than
                // packing them into fewer segments.
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                last = Some(TransportError::Refused { addr });
            }
            Err(e) => last = Some(TransportError::Io(e)),
        }
    }
    Err(last.unwrap_or_else(|| TransportError::Resolve {
        host: host.to_owned(),
        source: io::Error::new(io::ErrorKind::NotFound, "no addresses"),
    }))
}
