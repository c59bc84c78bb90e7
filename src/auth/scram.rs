//! SCRAM-SHA-256 (RFC 5802, RFC 7677), client side, as MQTT brokers such as
//! EMQX run it over 5.0 enhanced authentication with the method name
//! `"SCRAM-SHA-256"`.
//!
//! The exchange, one message per step of the [`Authenticator`]:
//!
//! ```text
//! CONNECT  data = client-first   n,,n=user,r=<client nonce>
//! AUTH     data = server-first   r=<client nonce><server nonce>,s=<salt>,i=<iterations>
//! AUTH     data = client-final   c=biws,r=<both nonces>,p=<proof>
//! CONNACK  data = server-final   v=<server signature>          (or e=<error>)
//! ```
//!
//! The proof shows the broker we know the password without sending it; the
//! server signature shows us the broker knows it too (it holds the salted
//! keys), which is why a CONNACK Success whose signature does not check out
//! still fails the connection.
//!
//! Crypto is ring's (already in the build for rustls): PBKDF2, HMAC and
//! SHA-256, its system random generator for nonces, and `hmac::verify` for
//! the constant-time comparison of the server signature. The small base64
//! codec SCRAM needs is below, strict on input.

use std::fmt;
use std::num::NonZeroU32;

use bytes::Bytes;
use ring::rand::{SecureRandom, SystemRandom};
use ring::{digest, hmac, pbkdf2};

use super::{AuthError, Authenticator};

/// The GS2 header of client-first: no channel binding ("n"), no authzid.
const GS2_HEADER: &str = "n,,";
/// `c=` of client-final: base64 of [`GS2_HEADER`].
const CHANNEL_BINDING: &str = "c=biws";
/// Random bytes in our nonce (32 base64 characters).
const NONCE_BYTES: usize = 24;
/// SHA-256 output, and so the size of every key and signature here.
const KEY_LEN: usize = 32;

/// The client side of SCRAM-SHA-256 (RFC 5802 and RFC 7677) for MQTT 5.0
/// enhanced authentication, as EMQX and other brokers offer it under the
/// Authentication Method `"SCRAM-SHA-256"`.
///
/// ```
/// use plover::auth::ScramSha256;
/// use plover::{Client, ProtocolVersion};
///
/// let client = Client::builder("sensor-7")
///     .protocol(ProtocolVersion::V5)
///     .build();
/// // A fresh authenticator (and nonce) for every connection.
/// client.auth_set(|| ScramSha256::new("alice", "correct horse"));
/// ```
///
/// Each [`start`](Authenticator::start) (every connect and every
/// re-authentication) begins a new exchange with a fresh random nonce.
/// The exchange succeeds only once the broker has proved it knows the
/// password too, with the server signature of its final message: a broker
/// that accepts without one, or with a wrong one, fails the connection.
///
/// The server-final message is accepted in the CONNACK (or in the AUTH
/// Success that ends a re-authentication), as EMQX sends it, or in one more
/// AUTH "Continue authentication", which is then answered with no data.
///
/// # Password and user name
///
/// Both are used as their UTF-8 bytes **without SASLprep** (RFC 4013):
/// ASCII is unaffected, but a password or user name with characters that
/// SASLprep would map or normalize must be given in the form the broker
/// stored. In the user name, `=` and `,` are escaped as SCRAM requires.
///
/// # Limits
///
/// The broker chooses the PBKDF2 iteration count; counts from 1 to
/// [`MAX_ITERATIONS`](Self::MAX_ITERATIONS) are accepted (RFC 7677 asks
/// servers for at least 4,096). Anything larger is refused rather than
/// computed, since a hostile broker could otherwise make the client spin:
/// the key derivation runs on the client's event loop task.
///
/// `Debug` shows the user name and the stage of the exchange, never the
/// password or any key.
#[derive(Clone)]
pub struct ScramSha256 {
    username: String,
    password: Box<[u8]>,
    state: State,
    /// Tests pin the nonce to replay RFC 7677's example exchange.
    #[cfg(test)]
    fixed_nonce: Option<String>,
}

/// Where the exchange is.
#[derive(Clone)]
enum State {
    /// No exchange under way (not started, finished, or failed).
    Idle,
    /// client-first sent; waiting for server-first.
    ClientFirstSent {
        nonce: String,
        client_first_bare: String,
    },
    /// client-final sent; waiting for server-final.
    ClientFinalSent {
        server_key: hmac::Key,
        auth_message: String,
    },
    /// server-final came in an AUTH Continue and checked out; waiting for
    /// the CONNACK (or AUTH Success).
    ServerVerified,
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::Idle => "idle",
            State::ClientFirstSent { .. } => "client-first sent",
            State::ClientFinalSent { .. } => "client-final sent",
            State::ServerVerified => "server verified",
        }
    }
}

impl fmt::Debug for ScramSha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramSha256")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("state", &self.state.name())
            .finish()
    }
}

impl ScramSha256 {
    /// The largest PBKDF2 iteration count accepted from a broker.
    pub const MAX_ITERATIONS: u32 = 1_000_000;

    /// SCRAM-SHA-256 for this user name and password (see the
    /// [type docs](Self) about SASLprep).
    pub fn new(username: impl Into<String>, password: impl AsRef<[u8]>) -> Self {
        ScramSha256 {
            username: username.into(),
            password: password.as_ref().into(),
            state: State::Idle,
            #[cfg(test)]
            fixed_nonce: None,
        }
    }

    /// The same, but with a fixed client nonce, to replay known exchanges.
    #[cfg(test)]
    pub(crate) fn with_nonce(
        username: impl Into<String>,
        password: impl AsRef<[u8]>,
        nonce: &str,
    ) -> Self {
        let mut scram = ScramSha256::new(username, password);
        scram.fixed_nonce = Some(nonce.to_owned());
        scram
    }

    fn fresh_nonce(&self) -> Result<String, AuthError> {
        #[cfg(test)]
        if let Some(nonce) = &self.fixed_nonce {
            return Ok(nonce.clone());
        }
        let mut bytes = [0u8; NONCE_BYTES];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| error("the system random number generator failed"))?;
        Ok(base64::encode(&bytes))
    }

    /// Answers server-first with client-final, keeping what checking
    /// server-final will need.
    fn client_final(
        &self,
        nonce: &str,
        client_first_bare: &str,
        server_first: &str,
    ) -> Result<(String, State), AuthError> {
        let first = parse_server_first(server_first)?;
        // RFC 5802 §5.1: the client MUST verify that the nonce starts with
        // the one it sent; otherwise this answers somebody else's exchange.
        if !first.nonce.starts_with(nonce) {
            return Err(error("the server nonce does not start with our nonce"));
        }
        let salted_password = salted_password(&self.password, &first.salt, first.iterations);
        let salted_key = hmac::Key::new(hmac::HMAC_SHA256, &salted_password);
        let client_key = hmac::sign(&salted_key, b"Client Key");
        let stored_key = digest::digest(&digest::SHA256, client_key.as_ref());
        let server_key = hmac::Key::new(
            hmac::HMAC_SHA256,
            hmac::sign(&salted_key, b"Server Key").as_ref(),
        );
        let without_proof = format!("{CHANNEL_BINDING},r={}", first.nonce);
        // The server-first part is the message exactly as received.
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let client_signature = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, stored_key.as_ref()),
            auth_message.as_bytes(),
        );
        let proof: Vec<u8> = client_key
            .as_ref()
            .iter()
            .zip(client_signature.as_ref())
            .map(|(k, s)| k ^ s)
            .collect();
        let client_final = format!("{without_proof},p={}", base64::encode(&proof));
        let next = State::ClientFinalSent {
            server_key,
            auth_message,
        };
        Ok((client_final, next))
    }
}

impl Authenticator for ScramSha256 {
    fn method(&self) -> &str {
        "SCRAM-SHA-256"
    }

    fn start(&mut self) -> Result<Option<Bytes>, AuthError> {
        self.state = State::Idle;
        let nonce = self.fresh_nonce()?;
        let client_first_bare = format!("n={},r={nonce}", escape_saslname(&self.username));
        let client_first = format!("{GS2_HEADER}{client_first_bare}");
        self.state = State::ClientFirstSent {
            nonce,
            client_first_bare,
        };
        Ok(Some(Bytes::from(client_first)))
    }

    fn step(&mut self, data: Option<&[u8]>) -> Result<Option<Bytes>, AuthError> {
        // Whatever goes wrong leaves the exchange over (Idle).
        match std::mem::replace(&mut self.state, State::Idle) {
            State::ClientFirstSent {
                nonce,
                client_first_bare,
            } => {
                let server_first = text(data, "server-first-message")?;
                let (client_final, next) =
                    self.client_final(&nonce, &client_first_bare, server_first)?;
                self.state = next;
                Ok(Some(Bytes::from(client_final)))
            }
            // server-final as one more challenge (RFC 4422 allows a server
            // to send its "additional data with success" this way): check
            // it, and answer with nothing.
            State::ClientFinalSent {
                server_key,
                auth_message,
            } => {
                verify_server_final(data, &server_key, &auth_message)?;
                self.state = State::ServerVerified;
                Ok(None)
            }
            State::Idle => Err(error("a challenge before the exchange started")),
            State::ServerVerified => Err(error("a challenge after the server-final-message")),
        }
    }

    fn finish(&mut self, data: Option<&[u8]>) -> Result<(), AuthError> {
        match std::mem::replace(&mut self.state, State::Idle) {
            State::ClientFinalSent {
                server_key,
                auth_message,
            } => verify_server_final(data, &server_key, &auth_message),
            State::ServerVerified if data.is_none_or(<[u8]>::is_empty) => Ok(()),
            State::ServerVerified => Err(error("unexpected data after the server-final-message")),
            // Accepting here would let a broker that does not know the
            // password (or anybody in between) skip proving it.
            State::ClientFirstSent { .. } => Err(error(
                "the broker accepted before the exchange was complete, without proving it knows the password",
            )),
            State::Idle => Err(error(
                "the broker accepted an exchange that was not started",
            )),
        }
    }
}

fn error(message: &str) -> AuthError {
    AuthError::new(format!("SCRAM-SHA-256: {message}"))
}

/// The broker's data as text: every SCRAM message is UTF-8.
fn text<'a>(data: Option<&'a [u8]>, what: &str) -> Result<&'a str, AuthError> {
    let data = data.ok_or_else(|| error(&format!("no {what} from the broker")))?;
    std::str::from_utf8(data).map_err(|_| error(&format!("the {what} is not UTF-8")))
}

/// RFC 5802 §5.1: in a saslname, `=` is written `=3D` and `,` is `=2C`.
fn escape_saslname(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '=' => out.push_str("=3D"),
            ',' => out.push_str("=2C"),
            c => out.push(c),
        }
    }
    out
}

/// What server-first carries.
#[derive(Debug)]
struct ServerFirst<'a> {
    nonce: &'a str,
    salt: Vec<u8>,
    iterations: NonZeroU32,
}

/// Parses `[m=...,]r=<nonce>,s=<salt>,i=<count>[,extensions]` (RFC 5802
/// §7), in that order.
fn parse_server_first(message: &str) -> Result<ServerFirst<'_>, AuthError> {
    let mut attributes = message.split(',');
    let mut next = attributes.next().unwrap_or_default();
    // Not in RFC 5802's grammar for server-first, but servers do report
    // an unknown user or a bad request this way.
    if let Some(e) = next.strip_prefix("e=") {
        return Err(server_error(e));
    }
    // §5.1: "m" is reserved; its presence MUST fail the authentication.
    if next.starts_with("m=") {
        return Err(error("the server requires an unsupported extension (m=)"));
    }
    let nonce = next
        .strip_prefix("r=")
        .ok_or_else(|| malformed("server-first", "r="))?;
    if nonce.is_empty() || !nonce.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(error("the server nonce is not printable ASCII"));
    }
    next = attributes.next().unwrap_or_default();
    let salt = next
        .strip_prefix("s=")
        .ok_or_else(|| malformed("server-first", "s="))?;
    let salt = base64::decode(salt).ok_or_else(|| error("the salt is not valid base64"))?;
    next = attributes.next().unwrap_or_default();
    let count = next
        .strip_prefix("i=")
        .ok_or_else(|| malformed("server-first", "i="))?;
    let iterations = parse_iterations(count)?;
    // Anything after is an extension this client does not use.
    Ok(ServerFirst {
        nonce,
        salt,
        iterations,
    })
}

/// `posit-number = %x31-39 *DIGIT`, within our limit.
fn parse_iterations(count: &str) -> Result<NonZeroU32, AuthError> {
    if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
        return Err(error("the iteration count is not a number"));
    }
    if count.starts_with('0') {
        // Zero itself, or a number with a leading zero: neither is a
        // posit-number.
        return Err(error("the iteration count is zero or has a leading zero"));
    }
    let too_many = || {
        error(&format!(
            "the iteration count {count} is above the limit of {}",
            ScramSha256::MAX_ITERATIONS
        ))
    };
    let n: u32 = count.parse().map_err(|_| too_many())?;
    if n > ScramSha256::MAX_ITERATIONS {
        return Err(too_many());
    }
    NonZeroU32::new(n).ok_or_else(|| error("the iteration count is zero"))
}

/// Checks `v=<ServerSignature>` (or reports `e=<error>`), RFC 5802 §7.
fn verify_server_final(
    data: Option<&[u8]>,
    server_key: &hmac::Key,
    auth_message: &str,
) -> Result<(), AuthError> {
    let message = text(data, "server-final-message")?;
    let first = message.split(',').next().unwrap_or_default();
    if let Some(e) = first.strip_prefix("e=") {
        return Err(server_error(e));
    }
    let verifier = first
        .strip_prefix("v=")
        .ok_or_else(|| malformed("server-final", "v= or e="))?;
    let signature = base64::decode(verifier)
        .ok_or_else(|| error("the server signature is not valid base64"))?;
    // Constant time: ring recomputes HMAC(ServerKey, AuthMessage) and
    // compares it without an early exit.
    hmac::verify(server_key, auth_message.as_bytes(), &signature).map_err(|_| {
        error("the server signature does not match: the broker does not know the password")
    })
}

fn server_error(value: &str) -> AuthError {
    error(&format!("the server says {value}"))
}

fn malformed(message: &str, expected: &str) -> AuthError {
    error(&format!("malformed {message} message: expected {expected}"))
}

/// SaltedPassword := Hi(password, salt, i), which is PBKDF2 with
/// HMAC-SHA-256 and one block of output.
fn salted_password(password: &[u8], salt: &[u8], iterations: NonZeroU32) -> [u8; KEY_LEN] {
    let mut out = [0u8; KEY_LEN];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        salt,
        password,
        &mut out,
    );
    out
}

/// Base64, RFC 4648 §4: the standard alphabet, padded. The decoder is
/// strict: no whitespace, no missing or misplaced padding, and no set bits
/// in the padding (§3.5), so every value has exactly one spelling.
pub(crate) mod base64 {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    /// `bytes` in base64.
    pub(crate) fn encode(bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                chunk.get(1).copied().unwrap_or(0),
                chunk.get(2).copied().unwrap_or(0),
            ];
            let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
            // One output character per 6 bits of input; '=' for the rest.
            for i in 0..4 {
                if i <= chunk.len() {
                    let index = (n >> (18 - 6 * i)) & 0x3f;
                    out.push(char::from(ALPHABET[index as usize]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    fn value(c: u8) -> Option<u32> {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        Some(v.into())
    }

    /// The bytes `text` spells, or `None` if it is not canonical base64.
    pub(crate) fn decode(text: &str) -> Option<Vec<u8>> {
        let text = text.as_bytes();
        if !text.len().is_multiple_of(4) {
            return None;
        }
        let mut out = Vec::with_capacity(text.len() / 4 * 3);
        let quads = text.len() / 4;
        for (q, quad) in text.chunks_exact(4).enumerate() {
            // Padding: only in the last quad, only at its end, at most two.
            let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
            if pad > 2 || (pad > 0 && q + 1 != quads) {
                return None;
            }
            let mut n = 0u32;
            for &c in &quad[..4 - pad] {
                n = n << 6 | value(c)?;
            }
            n <<= 6 * pad;
            let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
            let keep = 3 - pad;
            // Bits that fall into the padding must be zero.
            if bytes[keep..].iter().any(|&b| b != 0) {
                return None;
            }
            out.extend_from_slice(&bytes[..keep]);
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7677 §3, the example exchange for user "user", password "pencil".
    const CLIENT_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
    const CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    const SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    fn rfc_client() -> ScramSha256 {
        ScramSha256::with_nonce("user", "pencil", CLIENT_NONCE)
    }

    /// A client that has answered the RFC's server-first.
    fn after_client_final() -> ScramSha256 {
        let mut scram = rfc_client();
        scram.start().unwrap();
        scram.step(Some(SERVER_FIRST.as_bytes())).unwrap();
        scram
    }

    fn message(result: Result<impl fmt::Debug, AuthError>) -> String {
        result.expect_err("expected an AuthError").0
    }

    #[test]
    fn rfc_7677_example_exchange() {
        let mut scram = rfc_client();
        assert_eq!(scram.method(), "SCRAM-SHA-256");
        assert_eq!(
            scram.start().unwrap().as_deref(),
            Some(CLIENT_FIRST.as_bytes())
        );
        let client_final = scram.step(Some(SERVER_FIRST.as_bytes())).unwrap();
        assert_eq!(client_final.as_deref(), Some(CLIENT_FINAL.as_bytes()));
        scram.finish(Some(SERVER_FINAL.as_bytes())).unwrap();
    }

    #[test]
    fn server_final_may_come_as_a_challenge() {
        let mut scram = after_client_final();
        assert_eq!(scram.step(Some(SERVER_FINAL.as_bytes())).unwrap(), None);
        scram.finish(None).unwrap();
        // ... but not with anything else in the CONNACK after it.
        let mut scram = after_client_final();
        scram.step(Some(SERVER_FINAL.as_bytes())).unwrap();
        assert!(message(scram.finish(Some(b"v=again"))).contains("after the server-final"));
    }

    #[test]
    fn a_wrong_server_signature_fails() {
        let mut scram = after_client_final();
        // One bit off.
        let wrong = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G8=";
        let m = message(scram.finish(Some(wrong.as_bytes())));
        assert!(m.contains("server signature does not match"), "{m}");
        // A signature of the wrong length too.
        let mut scram = after_client_final();
        assert!(message(scram.finish(Some(b"v=AAAA"))).contains("does not match"));
    }

    #[test]
    fn a_missing_server_final_fails() {
        let mut scram = after_client_final();
        assert!(message(scram.finish(None)).contains("no server-final-message"));
        let mut scram = after_client_final();
        let m = message(scram.finish(Some(b"x=1")));
        assert!(m.contains("malformed server-final"), "{m}");
    }

    #[test]
    fn a_server_error_is_reported_with_its_text() {
        let mut scram = after_client_final();
        let m = message(scram.finish(Some(b"e=invalid-proof")));
        assert_eq!(m, "SCRAM-SHA-256: the server says invalid-proof");
        // In server-first too (unknown-user, as some servers do).
        let mut scram = rfc_client();
        scram.start().unwrap();
        assert!(message(scram.step(Some(b"e=unknown-user"))).ends_with("unknown-user"));
        // And as a challenge after client-final.
        let mut scram = after_client_final();
        assert!(message(scram.step(Some(b"e=other-error"))).ends_with("other-error"));
    }

    #[test]
    fn a_server_nonce_not_extending_ours_fails() {
        let mut scram = rfc_client();
        scram.start().unwrap();
        let other = "r=XXXXNGfwEbeRWgbNEkqO%hvYD,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let m = message(scram.step(Some(other.as_bytes())));
        assert!(m.contains("does not start with our nonce"), "{m}");
        // A prefix of ours is not ours either.
        let mut scram = rfc_client();
        scram.start().unwrap();
        let short = "r=rOprNGfw,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        assert!(message(scram.step(Some(short.as_bytes()))).contains("our nonce"));
    }

    #[test]
    fn malformed_server_first_messages_fail() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "expected r="),
            (b"s=W22Z,r=rOprNGfwEbeRWgbNEkqO,i=4096", "expected r="),
            (b"r=rOprNGfwEbeRWgbNEkqOx", "expected s="),
            (
                b"r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==",
                "expected i=",
            ),
            (
                b"r=rOprNGfwEbeRWgbNEkqOx,i=4096,s=W22ZaJ0SNY7soEsUEjb6gQ==",
                "expected s=",
            ),
            (
                b"r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ,i=4096",
                "salt is not valid base64",
            ),
            (
                b"r=rOprNGfwEbeRWgbNEkqOx,s=W22Z*J0S,i=4096",
                "salt is not valid base64",
            ),
            (b"r=rOprNGfwEbeRWgbNEkqO\x7f,s=W22Z,i=4096", "not printable"),
            (b"r=rOprNGfwEbeRWgbNEkqO x,s=W22Z,i=4096", "not printable"),
            (
                b"m=ext,r=rOprNGfwEbeRWgbNEkqOx,s=W22Z,i=4096",
                "unsupported extension",
            ),
            (b"r=rOprNGfwEbeRWgbNEkqOx,s=W22Z,i=", "not a number"),
            (b"r=rOprNGfwEbeRWgbNEkqOx,s=W22Z,i=-1", "not a number"),
            (b"r=rOprNGfwEbeRWgbNEkqOx,s=W22Z,i=4k", "not a number"),
            (b"r=rOprNGfwEbeRWgbNEkqOx,s=W22Z,i=0", "zero"),
            (b"r=rOprNGfwEbeRWgbNEkqOx,s=W22Z,i=04096", "leading zero"),
            (
                b"r=rOprNGfwEbeRWgbNEkqOx,s=W22Z,i=1000001",
                "above the limit",
            ),
            (
                b"r=rOprNGfwEbeRWgbNEkqOx,s=W22Z,i=99999999999999999999",
                "above the limit",
            ),
            (b"r=rOprNGfwEbeRWgbNEkqOx,s=W22Z,i=\xff", "not UTF-8"),
        ];
        for (server_first, expected) in cases {
            let mut scram = rfc_client();
            scram.start().unwrap();
            let m = message(scram.step(Some(server_first)));
            assert!(
                m.contains(expected),
                "{:?}: {m}",
                String::from_utf8_lossy(server_first)
            );
            // The exchange is over: a further step is out of order.
            assert!(scram.step(Some(SERVER_FIRST.as_bytes())).is_err());
        }
        let mut scram = rfc_client();
        scram.start().unwrap();
        assert!(message(scram.step(None)).contains("no server-first-message"));
    }

    #[test]
    fn iteration_counts_at_the_limits() {
        assert_eq!(parse_iterations("1").unwrap().get(), 1);
        assert_eq!(parse_iterations("4096").unwrap().get(), 4096);
        assert_eq!(
            parse_iterations("1000000").unwrap().get(),
            ScramSha256::MAX_ITERATIONS
        );
        assert!(parse_iterations("1000001").is_err());
        assert!(parse_iterations("4294967296").is_err());
    }

    #[test]
    fn extensions_after_the_iteration_count_are_ignored() {
        // The same exchange with an extension the client does not know:
        // the AuthMessage holds server-first as received, extension and
        // all, so the proof differs from the RFC's, but it must still be
        // produced.
        let mut scram = rfc_client();
        scram.start().unwrap();
        let with_ext = format!("{SERVER_FIRST},x=unknown");
        let answer = scram.step(Some(with_ext.as_bytes())).unwrap().unwrap();
        assert!(answer.starts_with(b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYD"));
        assert_ne!(answer, CLIENT_FINAL.as_bytes());
    }

    #[test]
    fn out_of_order_calls_are_errors() {
        let mut scram = rfc_client();
        assert!(message(scram.step(Some(SERVER_FIRST.as_bytes()))).contains("before the exchange"));
        assert!(message(scram.finish(Some(SERVER_FINAL.as_bytes()))).contains("not started"));
        // A broker accepting right after client-first has proved nothing.
        let mut scram = rfc_client();
        scram.start().unwrap();
        let m = message(scram.finish(None));
        assert!(m.contains("without proving"), "{m}");
        // Finished exchanges do not finish twice.
        let mut scram = after_client_final();
        scram.finish(Some(SERVER_FINAL.as_bytes())).unwrap();
        assert!(scram.finish(Some(SERVER_FINAL.as_bytes())).is_err());
        assert!(scram.step(Some(SERVER_FINAL.as_bytes())).is_err());
        // A challenge after the server-final challenge.
        let mut scram = after_client_final();
        scram.step(Some(SERVER_FINAL.as_bytes())).unwrap();
        assert!(message(scram.step(Some(b"r=x"))).contains("after the server-final"));
    }

    #[test]
    fn start_begins_afresh_every_time() {
        // A restart in the middle forgets the old exchange.
        let mut scram = after_client_final();
        assert_eq!(
            scram.start().unwrap().as_deref(),
            Some(CLIENT_FIRST.as_bytes())
        );
        assert_eq!(
            scram
                .step(Some(SERVER_FIRST.as_bytes()))
                .unwrap()
                .as_deref(),
            Some(CLIENT_FINAL.as_bytes())
        );
        scram.finish(Some(SERVER_FINAL.as_bytes())).unwrap();
        // Real nonces are 24 random bytes, new for every start.
        let mut scram = ScramSha256::new("user", "pencil");
        let a = scram.start().unwrap().unwrap();
        let b = scram.start().unwrap().unwrap();
        assert_ne!(a, b);
        let nonce = a.strip_prefix(b"n,,n=user,r=").unwrap();
        assert_eq!(nonce.len(), 32);
        assert_eq!(
            base64::decode(std::str::from_utf8(nonce).unwrap()).map(|n| n.len()),
            Some(NONCE_BYTES)
        );
    }

    #[test]
    fn user_names_are_escaped() {
        assert_eq!(escape_saslname("user"), "user");
        assert_eq!(escape_saslname("a=b,c"), "a=3Db=2Cc");
        assert_eq!(escape_saslname("=,=,"), "=3D=2C=3D=2C");
        assert_eq!(escape_saslname("é"), "é");
        let mut scram = ScramSha256::with_nonce("a,b=c", "pw", "nonce");
        assert_eq!(scram.start().unwrap().unwrap(), "n,,n=a=2Cb=3Dc,r=nonce");
    }

    #[test]
    fn debug_shows_no_secrets() {
        let mut scram = ScramSha256::with_nonce("user", "pencil", CLIENT_NONCE);
        scram.start().unwrap();
        scram.step(Some(SERVER_FIRST.as_bytes())).unwrap();
        let shown = format!("{scram:?}");
        assert!(!shown.contains("pencil"), "{shown}");
        assert!(!shown.contains("Key"), "{shown}");
        assert_eq!(
            shown,
            r#"ScramSha256 { username: "user", password: "<redacted>", state: "client-final sent" }"#
        );
    }

    #[test]
    fn base64_rfc_4648_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base64::encode(plain.as_bytes()), encoded);
            assert_eq!(base64::decode(encoded).as_deref(), Some(plain.as_bytes()));
        }
        let all: Vec<u8> = (0..=255).collect();
        let encoded = base64::encode(&all);
        assert!(encoded.contains('+') && encoded.contains('/'));
        assert_eq!(base64::decode(&encoded), Some(all));
    }

    #[test]
    fn base64_decoding_is_strict() {
        for bad in [
            "Zg",       // padding missing
            "Zg=",      // not a multiple of 4
            "Z===",     // three padding characters
            "====",     // nothing but padding
            "Zg==Zm8=", // padding in the middle
            "Z=g=",     // padding before data
            "Zh==",     // set bits in the padding
            "Zm9=",     // likewise, one pad
            "Zm9v\n",   // whitespace
            "Zm 9v",    // whitespace
            "Zm9-",     // URL-safe alphabet
            "Zm9_",     // URL-safe alphabet
            "é==",      // not ASCII
        ] {
            assert_eq!(base64::decode(bad), None, "{bad:?}");
        }
    }
}
