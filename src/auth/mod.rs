//! MQTT 5.0 enhanced authentication (§4.12): the [`Authenticator`] trait
//! that drives an AUTH exchange, on connect and on re-authentication.
//!
//! The session calls the authenticator; the authenticator only turns bytes
//! into bytes. It never sees a socket, which is why an exchange can be
//! tested against a scripted broker, or with no broker at all.
//!
//! The exchange, as the session runs it:
//!
//! 1. [`start`](Authenticator::start): the Authentication Data for CONNECT
//!    (or for an AUTH "Re-authenticate"), sent with
//!    [`method`](Authenticator::method) as the Authentication Method.
//! 2. For every AUTH "Continue authentication" from the broker,
//!    [`step`](Authenticator::step) with its data; what it returns goes
//!    back in our AUTH "Continue authentication".
//! 3. On CONNACK Success (or AUTH Success after a re-authentication),
//!    [`finish`](Authenticator::finish) with the broker's final data, so
//!    the client can check the broker too (as SCRAM's server signature
//!    does).
//!
//! An error from any step ends the connection with
//! [`CloseReason::Authentication`](crate::session::CloseReason::Authentication),
//! and the client does not retry: a wrong secret does not get better.
//!
//! [`ScramSha256`] is the one method built in (RFC 5802/7677, as EMQX and
//! other brokers offer it as `"SCRAM-SHA-256"`); anything else can be
//! plugged in by implementing [`Authenticator`].

use std::fmt;

use bytes::Bytes;

mod scram;

pub use scram::ScramSha256;
/// The base64 codec SCRAM uses, for the session tests' SCRAM server.
#[cfg(test)]
pub(crate) use scram::base64;

/// Why an authentication exchange failed on our side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("authentication failed: {0}")]
pub struct AuthError(pub String);

impl AuthError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        AuthError(message.into())
    }
}

/// One side of an MQTT 5.0 enhanced authentication method (SCRAM, Kerberos,
/// a challenge-response of your own, ...). See the [module docs](self).
///
/// ```
/// use bytes::Bytes;
/// use plover::auth::{AuthError, Authenticator};
///
/// /// Answers the broker's challenge with the challenge reversed.
/// #[derive(Debug)]
/// struct Mirror;
///
/// impl Authenticator for Mirror {
///     fn method(&self) -> &str {
///         "MIRROR"
///     }
///     fn start(&mut self) -> Result<Option<Bytes>, AuthError> {
///         Ok(None)
///     }
///     fn step(&mut self, challenge: Option<&[u8]>) -> Result<Option<Bytes>, AuthError> {
///         let challenge = challenge.ok_or_else(|| AuthError::new("no challenge"))?;
///         Ok(Some(challenge.iter().rev().copied().collect()))
///     }
///     fn finish(&mut self, _data: Option<&[u8]>) -> Result<(), AuthError> {
///         Ok(())
///     }
/// }
/// ```
pub trait Authenticator: Send + fmt::Debug {
    /// The Authentication Method name, e.g. `"SCRAM-SHA-256"`.
    fn method(&self) -> &str;

    /// Begins an exchange (each connect, and each re-authentication) and
    /// returns the data to send with it, if the method has any.
    fn start(&mut self) -> Result<Option<Bytes>, AuthError>;

    /// The broker continued the exchange with `data`: returns our answer.
    fn step(&mut self, data: Option<&[u8]>) -> Result<Option<Bytes>, AuthError>;

    /// The broker accepted, with `data` (e.g. a server signature to
    /// verify): returns an error if the broker itself does not check out.
    fn finish(&mut self, data: Option<&[u8]>) -> Result<(), AuthError>;
}
