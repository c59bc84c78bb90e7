//! MQTT over WebSocket. (Stub: being implemented.)

use tokio::io::{AsyncRead, AsyncWrite};

use super::{TransportError, WsOptions};

/// Runs the WebSocket upgrade over `stream`.
pub(crate) async fn connect<S>(
    _stream: S,
    _host: &str,
    _port: u16,
    _secure: bool,
    _options: &WsOptions,
) -> Result<S, TransportError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    Err(TransportError::WebSocket("not implemented yet".to_owned()))
}
