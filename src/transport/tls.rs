//! TLS over any stream, with rustls. (Stub: being implemented.)

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

use super::TransportError;

/// TLS settings (paho's `tls_set`).
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    _private: (),
}

impl TlsOptions {
    /// Verify the server against the Mozilla root certificates.
    pub fn new() -> Self {
        TlsOptions::default()
    }
}

/// Why TLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// Not built yet.
    #[error("TLS is not available yet")]
    NotAvailable,
}

/// Runs the TLS handshake over `stream` for `host`.
pub(crate) async fn connect<S>(
    _stream: S,
    _host: &str,
    _options: &TlsOptions,
    _timeout: Duration,
) -> Result<S, TransportError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    Err(TransportError::TlsConfig(TlsError::NotAvailable))
}
