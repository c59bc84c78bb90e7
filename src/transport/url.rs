//! Connection URLs: `mqtt://`, `mqtts://`, `ws://`, `wss://`, with optional
//! `user:password@`, as an alternative to host + port.

use std::fmt;
use std::str::FromStr;

/// How a URL says to reach the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `mqtt://` (also `tcp://`): plain TCP, port 1883 by default.
    Mqtt,
    /// `mqtts://` (also `ssl://`, `tls://`): TLS, port 8883 by default.
    Mqtts,
    /// `ws://`: WebSocket, port 80 by default.
    Ws,
    /// `wss://`: WebSocket over TLS, port 443 by default.
    Wss,
}

impl Scheme {
    /// The port used when the URL names none.
    pub const fn default_port(self) -> u16 {
        match self {
            Scheme::Mqtt => 1883,
            Scheme::Mqtts => 8883,
            Scheme::Ws => 80,
            Scheme::Wss => 443,
        }
    }

    /// Whether the scheme uses TLS.
    pub const fn is_tls(self) -> bool {
        matches!(self, Scheme::Mqtts | Scheme::Wss)
    }

    /// Whether the scheme uses WebSocket.
    pub const fn is_websocket(self) -> bool {
        matches!(self, Scheme::Ws | Scheme::Wss)
    }
}

/// A parsed broker URL.
///
/// ```
/// use plover::transport::{BrokerUrl, Scheme};
///
/// let url: BrokerUrl = "mqtts://alice:s3cret@broker.example.com".parse().unwrap();
/// assert_eq!(url.scheme, Scheme::Mqtts);
/// assert_eq!(url.port, 8883);
/// assert_eq!(url.username.as_deref(), Some("alice"));
/// // The password never shows in Debug output or logs.
/// assert!(!format!("{url:?}").contains("s3cret"));
///
/// let ws: BrokerUrl = "wss://broker.example.com:8884/mqtt".parse().unwrap();
/// assert_eq!((ws.port, ws.path.as_str()), (8884, "/mqtt"));
///
/// // A '/' in a password may be written as it is.
/// let url: BrokerUrl = "mqtts://alice:ab/cd@broker.example.com".parse().unwrap();
/// assert_eq!(url.password.as_deref(), Some("ab/cd"));
/// ```
///
/// The user info ends at the last `@`, so a password may hold `/`, `:` and
/// `@` unencoded; an `@` in a WebSocket path must then be written `%40`.
/// Error messages never repeat the user info.
#[derive(Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    /// Transport to use.
    pub scheme: Scheme,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// Port, from the URL or the scheme's default.
    pub port: u16,
    /// WebSocket path (default `/mqtt`); empty for `mqtt://` and `mqtts://`.
    pub path: String,
    /// User name from `user@`, percent-decoded.
    pub username: Option<String>,
    /// Password from `user:password@`, percent-decoded.
    pub password: Option<String>,
}

impl fmt::Debug for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerUrl")
            .field("scheme", &self.scheme)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("path", &self.path)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl fmt::Display for BrokerUrl {
    /// The URL without its password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            Scheme::Mqtt => "mqtt",
            Scheme::Mqtts => "mqtts",
            Scheme::Ws => "ws",
            Scheme::Wss => "wss",
        };
        write!(f, "{scheme}://")?;
        if let Some(user) = &self.username {
            write!(f, "{user}@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}{}", self.host, self.port, self.path)
        } else {
            write!(f, "{}:{}{}", self.host, self.port, self.path)
        }
    }
}

/// Why a string is not a broker URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// No `scheme://` at the start.
    #[error("missing scheme: expected mqtt://, mqtts://, ws:// or wss://")]
    MissingScheme,
    /// A scheme other than the four supported ones.
    #[error("unsupported scheme {0:?}: expected mqtt, mqtts, ws or wss")]
    UnsupportedScheme(String),
    /// No host after the scheme.
    #[error("missing host")]
    MissingHost,
    /// A port that is not a number from 1 to 65535.
    #[error("invalid port {0:?}")]
    InvalidPort(String),
    /// A `%` escape that is not two hex digits, or not UTF-8 once decoded.
    #[error("invalid percent-encoding in the user name or password")]
    InvalidEscape,
    /// An IPv6 address without its closing `]`.
    #[error("unclosed '[' in the host")]
    UnclosedBracket,
}

impl FromStr for BrokerUrl {
    type Err = UrlError;

    fn from_str(s: &str) -> Result<Self, UrlError> {
        let (scheme, rest) = s.split_once("://").ok_or(UrlError::MissingScheme)?;
        // Text before "://" that cannot be a scheme is more likely a
        // password that happens to contain "://" (the real scheme left
        // out): never echo it.
        if !is_scheme(scheme) {
            return Err(UrlError::MissingScheme);
        }
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "mqtt" | "tcp" => Scheme::Mqtt,
            "mqtts" | "ssl" | "tls" => Scheme::Mqtts,
            "ws" => Scheme::Ws,
            "wss" => Scheme::Wss,
            other => return Err(UrlError::UnsupportedScheme(other.to_owned())),
        };
        // The user info ends at the last '@', and the authority at the
        // first '/' after it. RFC 3986 wants '/' and '@' in a password
        // percent-encoded, but people paste passwords as they are, and
        // cutting one at a '/' would send half of it to the host parser
        // (and into an error message). The price: a WebSocket path with
        // an '@' in it needs it written as %40 (paths are sent as given).
        let (userinfo, rest) = match rest.rfind('@') {
            Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
            None => (None, rest),
        };
        let (hostport, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(info) => match info.split_once(':') {
                Some((u, p)) => (Some(percent_decode(u)?), Some(percent_decode(p)?)),
                None => (Some(percent_decode(info)?), None),
            },
        };
        let (host, port) = split_host_port(hostport)?;
        if host.is_empty() {
            return Err(UrlError::MissingHost);
        }
        let port = match port {
            None => scheme.default_port(),
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => n,
                _ => return Err(UrlError::InvalidPort(p.to_owned())),
            },
        };
        let path = if scheme.is_websocket() {
            if path.is_empty() {
                "/mqtt".to_owned()
            } else {
                path.to_owned()
            }
        } else {
            String::new()
        };
        Ok(BrokerUrl {
            scheme,
            host: host.to_owned(),
            port,
            path,
            username,
            password,
        })
    }
}

/// RFC 3986: `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`.
fn is_scheme(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn split_host_port(s: &str) -> Result<(&str, Option<&str>), UrlError> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or(UrlError::UnclosedBracket)?;
        return match after.strip_prefix(':') {
            Some(port) => Ok((host, Some(port))),
            None if after.is_empty() => Ok((host, None)),
            None => Err(UrlError::InvalidPort(after.to_owned())),
        };
    }
    Ok(match s.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (s, None),
    })
}

fn percent_decode(s: &str) -> Result<String, UrlError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(UrlError::InvalidEscape)?;
            let hex = std::str::from_utf8(hex).map_err(|_| UrlError::InvalidEscape)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| UrlError::InvalidEscape)?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| UrlError::InvalidEscape)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> BrokerUrl {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn default_ports_and_paths() {
        let cases = [
            ("mqtt://h", Scheme::Mqtt, 1883, ""),
            ("tcp://h", Scheme::Mqtt, 1883, ""),
            ("mqtts://h", Scheme::Mqtts, 8883, ""),
            ("ssl://h", Scheme::Mqtts, 8883, ""),
            ("ws://h", Scheme::Ws, 80, "/mqtt"),
            ("wss://h", Scheme::Wss, 443, "/mqtt"),
            (
                "wss://h:8884/custom/path",
                Scheme::Wss,
                8884,
                "/custom/path",
            ),
            ("MQTT://h:1999", Scheme::Mqtt, 1999, ""),
        ];
        for (s, scheme, port, path) in cases {
            let url = parse(s);
            assert_eq!(
                (url.scheme, url.port, url.path.as_str()),
                (scheme, port, path),
                "{s}"
            );
            assert_eq!(url.host, "h");
        }
    }

    #[test]
    fn credentials_are_percent_decoded_and_redacted() {
        let url = parse("mqtts://us%40er:p%3Ass@word@host.example:8883");
        assert_eq!(url.username.as_deref(), Some("us@er"));
        assert_eq!(url.password.as_deref(), Some("p:ss@word"));
        assert_eq!(url.host, "host.example");
        let shown = format!("{url:?} {url}");
        assert!(!shown.contains("p:ss"), "{shown}");
        let user_only = parse("mqtt://bob@h");
        assert_eq!(
            (user_only.username.as_deref(), user_only.password),
            (Some("bob"), None)
        );
    }

    #[test]
    fn a_slash_in_the_password_stays_in_the_password() {
        let url = parse("mqtts://alice:ab/cd@host");
        assert_eq!(url.username.as_deref(), Some("alice"));
        assert_eq!(url.password.as_deref(), Some("ab/cd"));
        assert_eq!((url.host.as_str(), url.port), ("host", 8883));
        // With a port and a WebSocket path after it, and more slashes.
        let url = parse("wss://bob:a/b//c@broker.example:8884/mqtt/v1");
        assert_eq!(url.password.as_deref(), Some("a/b//c"));
        assert_eq!(
            (url.host.as_str(), url.port, url.path.as_str()),
            ("broker.example", 8884, "/mqtt/v1")
        );
        // A '/' in the path alone is still the path.
        assert_eq!(parse("ws://h:9001/a/b").path, "/a/b");
    }

    #[test]
    fn errors_never_echo_the_user_info() {
        const SECRET: &str = "s3cr/et";
        let bad = [
            format!("mqtts://alice:{SECRET}@host:x"),
            format!("mqtts://alice:{SECRET}@host:0/"),
            format!("mqtts://alice:{SECRET}@"),
            format!("mqtts://alice:{SECRET}@[::1"),
            format!("mqtts://alice:{SECRET}@[::1]x"),
            format!("mqtts://alice:{SECRET}%zz@host"),
            format!("alice:{SECRET}://x@host"),
            format!("http://alice:{SECRET}@host"),
            format!("alice:{SECRET}@host"),
        ];
        for url in &bad {
            let e = url.parse::<BrokerUrl>().expect_err(url);
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains("s3cr"), "{url}: {shown}");
            assert!(!shown.contains("alice"), "{url}: {shown}");
        }
        // Before the fix this one was InvalidPort("ab").
        assert_eq!(
            "mqtts://alice:ab/cd@host:x".parse::<BrokerUrl>(),
            Err(UrlError::InvalidPort("x".into()))
        );
    }

    #[test]
    fn ipv6_hosts() {
        let url = parse("mqtt://[::1]:1884");
        assert_eq!((url.host.as_str(), url.port), ("::1", 1884));
        assert_eq!(parse("mqtts://[fe80::1]").port, 8883);
        assert_eq!(url.to_string(), "mqtt://[::1]:1884");
    }

    #[test]
    fn bad_urls_are_typed_errors() {
        let cases = [
            ("localhost:1883", UrlError::MissingScheme),
            ("http://h", UrlError::UnsupportedScheme("http".into())),
            ("mqtt://", UrlError::MissingHost),
            ("mqtt://:1883", UrlError::MissingHost),
            ("mqtt://h:0", UrlError::InvalidPort("0".into())),
            ("mqtt://h:65536", UrlError::InvalidPort("65536".into())),
            ("mqtt://h:x", UrlError::InvalidPort("x".into())),
            ("mqtt://[::1", UrlError::UnclosedBracket),
            ("mqtt://u:%zz@h", UrlError::InvalidEscape),
            ("mqtt://u:%4@h", UrlError::InvalidEscape),
        ];
        for (s, expected) in cases {
            assert_eq!(s.parse::<BrokerUrl>(), Err(expected), "{s}");
        }
    }
}
