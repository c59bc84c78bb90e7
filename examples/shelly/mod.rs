//! What the Shelly examples share: the topics and JSON of a Shelly Plug S
//! Gen3 (Shelly's Gen2/Gen3 MQTT API), the broker options both command
//! lines take, the controller (`shelly_plug`) and the simulated plug
//! (`shelly_sim`), so that `showcase` can run the very same code in one
//! process.
//!
//! This directory is not an example of its own: cargo only builds
//! `examples/*.rs` and `examples/*/main.rs`, and the examples pull it in
//! with `mod shelly;`.
//!
//! What a Gen2/Gen3 device does over MQTT, with `<prefix>` its topic prefix
//! (by default its device id, `shellyplugsg3-<12 hex digits>`), all at QoS 1:
//!
//! | topic | what |
//! | --- | --- |
//! | `<prefix>/online` | retained `true` once connected; its will is `false` |
//! | `<prefix>/rpc` | JSON-RPC requests; answers go to `<src>/rpc` |
//! | `<prefix>/command/switch:0` | `on`, `off`, `toggle`, `status_update` |
//! | `<prefix>/command` | `status_update`: publish the status again |
//! | `<prefix>/status/switch:0` | the switch's full status, on every change |
//! | `<prefix>/events/rpc` | `NotifyStatus` frames with the fields that changed |

// Each example uses a different part of this module.
#![allow(dead_code)]

pub mod controller;
pub mod json;
pub mod sim;

use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use plover::codec::{ConnAck, ConnectReasonCode};
use plover::transport::{BrokerUrl, Scheme, TlsOptions, TransportError};
use plover::{Client, ClientError};

use json::Json;

/// The model name in a device id, as Shelly spells it for the Plug S Gen3.
pub const MODEL_PREFIX: &str = "shellyplugsg3";

/// The switch component a plug has (a Plug S has exactly one).
pub const SWITCH: &str = "switch:0";

/// A fresh device id: `shellyplugsg3-` and 12 lowercase hex digits (a real
/// device uses its MAC address).
pub fn random_device_id() -> String {
    format!("{MODEL_PREFIX}-{:012x}", random_u64() & 0xFFFF_FFFF_FFFF)
}

/// True if `id` looks like a Plug S Gen3's device id.
pub fn is_device_id(id: &str) -> bool {
    id.strip_prefix(MODEL_PREFIX)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|hex| {
            hex.len() == 12 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
}

/// 64 random bits without a random-number crate: std seeds every
/// `RandomState` from the operating system's randomness.
pub fn random_u64() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(now_unix_nanos());
    hasher.finish()
}

fn now_unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Seconds since 1970, as Shelly's `ts` fields carry them.
pub fn unix_time() -> f64 {
    now_unix_nanos() as f64 / 1e9
}

/// The topics of one device, from its topic prefix.
#[derive(Debug, Clone)]
pub struct Topics {
    pub prefix: String,
}

impl Topics {
    pub fn new(prefix: &str) -> Topics {
        Topics {
            prefix: prefix.trim_end_matches('/').to_owned(),
        }
    }

    /// `true`/`false`, retained: whether the device is connected.
    pub fn online(&self) -> String {
        format!("{}/online", self.prefix)
    }

    /// Where JSON-RPC requests go.
    pub fn rpc(&self) -> String {
        format!("{}/rpc", self.prefix)
    }

    /// `on`, `off`, `toggle` for the switch.
    pub fn switch_command(&self) -> String {
        format!("{}/command/{SWITCH}", self.prefix)
    }

    /// `status_update` for the whole device.
    pub fn command(&self) -> String {
        format!("{}/command", self.prefix)
    }

    /// The switch's full status.
    pub fn switch_status(&self) -> String {
        format!("{}/status/{SWITCH}", self.prefix)
    }

    /// `NotifyStatus` / `NotifyEvent` frames.
    pub fn events(&self) -> String {
        format!("{}/events/rpc", self.prefix)
    }

    /// What NotifyStatus frames name as their destination.
    pub fn events_dst(&self) -> String {
        format!("{}/events", self.prefix)
    }
}

/// Where an RPC caller `src` receives its answers.
pub fn response_topic(src: &str) -> String {
    format!("{src}/rpc")
}

/// The status of the plug's switch, as `Switch.GetStatus` returns it and
/// `<prefix>/status/switch:0` carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct SwitchStatus {
    pub id: u32,
    /// What changed the output last: `init`, `MQTT`, `timer`, `button`, ...
    pub source: String,
    pub output: bool,
    /// Active power, W.
    pub apower: f64,
    /// V.
    pub voltage: f64,
    /// A.
    pub current: f64,
    /// Hz.
    pub freq: f64,
    /// Energy counter, Wh.
    pub energy_total: f64,
    /// mWh in each of the last three whole minutes, newest first.
    pub energy_by_minute: [f64; 3],
    /// Unix time of the first second of the current minute.
    pub minute_ts: i64,
    /// The device's own temperature, °C.
    pub temperature_c: f64,
}

impl SwitchStatus {
    /// Shelly's JSON for it, with the precision a real device reports.
    pub fn to_json(&self) -> String {
        format!(
            concat!(
                r#"{{"id":{},"source":{},"output":{},"apower":{:.1},"voltage":{:.1},"#,
                r#""freq":{:.1},"current":{:.3},"aenergy":{{"total":{:.3},"#,
                r#""by_minute":[{:.3},{:.3},{:.3}],"minute_ts":{}}},"#,
                r#""temperature":{{"tC":{:.1},"tF":{:.1}}}}}"#
            ),
            self.id,
            json::string(&self.source),
            self.output,
            self.apower,
            self.voltage,
            self.freq,
            self.current,
            self.energy_total,
            self.energy_by_minute[0],
            self.energy_by_minute[1],
            self.energy_by_minute[2],
            self.minute_ts,
            self.temperature_c,
            self.temperature_c * 9.0 / 5.0 + 32.0,
        )
    }

    /// A status with nothing known yet, to [`merge`](Self::merge) into.
    pub fn unknown() -> SwitchStatus {
        SwitchStatus {
            id: 0,
            source: String::new(),
            output: false,
            apower: f64::NAN,
            voltage: f64::NAN,
            current: f64::NAN,
            freq: f64::NAN,
            energy_total: f64::NAN,
            energy_by_minute: [f64::NAN; 3],
            minute_ts: 0,
            temperature_c: f64::NAN,
        }
    }

    /// Reads a full status; `None` if `output` is missing (the one field
    /// every switch status has).
    pub fn from_json(value: &Json) -> Option<SwitchStatus> {
        value.get("output")?.as_bool()?;
        let mut status = SwitchStatus::unknown();
        status.merge(value);
        Some(status)
    }

    /// Takes the fields `value` has (a NotifyStatus frame carries only what
    /// changed) and keeps the rest.
    pub fn merge(&mut self, value: &Json) {
        let num = |key: &str| value.get(key).and_then(Json::as_f64);
        if let Some(id) = num("id") {
            self.id = id as u32;
        }
        if let Some(source) = value.get("source").and_then(Json::as_str) {
            self.source = source.to_owned();
        }
        if let Some(output) = value.get("output").and_then(Json::as_bool) {
            self.output = output;
        }
        for (key, field) in [
            ("apower", &mut self.apower),
            ("voltage", &mut self.voltage),
            ("current", &mut self.current),
            ("freq", &mut self.freq),
        ] {
            if let Some(v) = num(key) {
                *field = v;
            }
        }
        if let Some(energy) = value.get("aenergy") {
            if let Some(total) = energy.get("total").and_then(Json::as_f64) {
                self.energy_total = total;
            }
            if let Some(list) = energy.get("by_minute").and_then(Json::as_array) {
                for (slot, v) in self.energy_by_minute.iter_mut().zip(list) {
                    *slot = v.as_f64().unwrap_or(f64::NAN);
                }
            }
            if let Some(ts) = energy.get("minute_ts").and_then(Json::as_f64) {
                self.minute_ts = ts as i64;
            }
        }
        if let Some(t) = value
            .get("temperature")
            .and_then(|t| t.get("tC"))
            .and_then(Json::as_f64)
        {
            self.temperature_c = t;
        }
    }

    /// One line for people: `ON, drawing 60.2 W (230.1 V, 0.262 A, 50.0 Hz)`.
    pub fn summary(&self) -> String {
        let mut line = format!(
            "{}, drawing {} W",
            if self.output { "ON" } else { "OFF" },
            fixed(self.apower, 1)
        );
        if self.voltage.is_finite() {
            line.push_str(&format!(" ({} V", fixed(self.voltage, 1)));
            if self.current.is_finite() {
                line.push_str(&format!(", {} A", fixed(self.current, 3)));
            }
            if self.freq.is_finite() {
                line.push_str(&format!(", {} Hz", fixed(self.freq, 1)));
            }
            line.push(')');
        }
        line
    }

    /// The rest of what the status says, for `status`.
    pub fn details(&self) -> String {
        let mut parts = Vec::new();
        if self.energy_total.is_finite() {
            parts.push(format!("energy used {} Wh", fixed(self.energy_total, 3)));
        }
        if self.temperature_c.is_finite() {
            parts.push(format!("device at {} °C", fixed(self.temperature_c, 1)));
        }
        if !self.source.is_empty() {
            parts.push(format!("last switched by {}", self.source));
        }
        parts.join(", ")
    }
}

/// `v` with `decimals` digits, or `?` when not known.
fn fixed(v: f64, decimals: usize) -> String {
    if v.is_finite() {
        format!("{v:.decimals$}")
    } else {
        "?".to_owned()
    }
}

/// A JSON-RPC request as Shelly expects it on `<prefix>/rpc`.
pub fn rpc_request(id: u64, src: &str, method: &str, params: Option<&str>) -> String {
    match params {
        Some(params) => format!(
            r#"{{"id":{id},"src":{},"method":{},"params":{params}}}"#,
            json::string(src),
            json::string(method)
        ),
        None => format!(
            r#"{{"id":{id},"src":{},"method":{}}}"#,
            json::string(src),
            json::string(method)
        ),
    }
}

/// Shelly's RPC error codes used here.
pub mod rpc_error {
    /// A parameter is missing, of the wrong type or out of range.
    pub const INVALID_ARGUMENT: i64 = -103;
    /// The component (e.g. `switch:1`) does not exist.
    pub const NOT_FOUND: i64 = -105;
    /// No such method.
    pub const NO_HANDLER: i64 = 404;
}

// ---------------------------------------------------------------------------
// The broker, from the command line and the environment.

/// How to reach the broker, from `--url`, or `--host`/`--port`, with
/// `--username`/`--password`, `--cafile` and `--no-tls`. Every one of them
/// can come from the environment instead (`SHELLY_MQTT_URL`,
/// `SHELLY_MQTT_HOST`, `SHELLY_MQTT_PORT`, `SHELLY_MQTT_USERNAME`,
/// `SHELLY_MQTT_PASSWORD`, `SHELLY_MQTT_CAFILE`), so that a password need
/// not appear in the shell's history; flags win over the environment.
///
/// A URL says the scheme and the port itself, so `--port` and `--no-tls`
/// with one are refused by [`check`](Self::check) rather than quietly
/// ignored (or quietly applied to a URL that says otherwise); `--cafile`
/// applies to a TLS URL and is refused with a plain one.
#[derive(Clone, Default)]
pub struct BrokerOptions {
    /// `mqtts://[user:password@]host[:port]` or `mqtt://...`.
    pub url: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// A private CA to trust instead of the Mozilla roots.
    pub cafile: Option<PathBuf>,
    /// Plain TCP (a local test broker); TLS is the default.
    pub no_tls: bool,
    /// `port` came from SHELLY_MQTT_PORT: it goes with a host from the
    /// environment, so a `--url` on the command line replaces it.
    port_from_env: bool,
    /// `url` came from SHELLY_MQTT_URL (for the error messages).
    url_from_env: bool,
}

impl std::fmt::Debug for BrokerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password, nor one inside the URL.
        f.write_str(&self.describe())
    }
}

/// The flags [`BrokerOptions::flag`] takes, for usage texts.
pub const BROKER_USAGE: &str = "\
broker (each also from the environment variable in brackets):
  --url URL          mqtts://[USER:PASS@]HOST[:PORT], or mqtt://... for plain TCP;
                     the URL gives scheme and port, so not with --port or
                     --no-tls [SHELLY_MQTT_URL]
  --host HOST        the broker's host name, e.g. xxxxxxxx.s1.eu.hivemq.cloud
                     [SHELLY_MQTT_HOST]
  --port PORT        with --host: default 8883 (TLS), 1883 with --no-tls
                     [SHELLY_MQTT_PORT]
  --username USER    [SHELLY_MQTT_USERNAME]
  --password PASS    [SHELLY_MQTT_PASSWORD]
  --cafile FILE      trust this CA instead of the built-in Mozilla roots
                     (with --host, or an mqtts:// URL) [SHELLY_MQTT_CAFILE]
  --no-tls           with --host: plain TCP, for a broker on your own network";

/// A port number from 1 to 65535.
fn parse_port(v: &str) -> Option<u16> {
    v.parse::<u16>().ok().filter(|&p| p > 0)
}

impl BrokerOptions {
    /// Whatever the environment says. A port that is not a number is an
    /// error: ignored, it would quietly send the connection to the
    /// default port.
    pub fn from_env() -> Result<BrokerOptions, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let port = match var("SHELLY_MQTT_PORT") {
            Some(v) => Some(parse_port(&v).ok_or_else(|| {
                format!("SHELLY_MQTT_PORT must be a port number from 1 to 65535, not {v:?}")
            })?),
            None => None,
        };
        let url = var("SHELLY_MQTT_URL");
        Ok(BrokerOptions {
            url_from_env: url.is_some(),
            url,
            host: var("SHELLY_MQTT_HOST"),
            port_from_env: port.is_some(),
            port,
            username: var("SHELLY_MQTT_USERNAME"),
            password: var("SHELLY_MQTT_PASSWORD"),
            cafile: var("SHELLY_MQTT_CAFILE").map(PathBuf::from),
            no_tls: false,
        })
    }

    /// A plain, anonymous broker on `host:port` (the showcase's).
    pub fn plain(host: &str, port: u16) -> BrokerOptions {
        BrokerOptions {
            host: Some(host.to_owned()),
            port: Some(port),
            no_tls: true,
            ..BrokerOptions::default()
        }
    }

    /// Takes `flag` if it is a broker flag (`value` gives its argument);
    /// `Ok(false)` if it is not one.
    pub fn flag(
        &mut self,
        flag: &str,
        mut value: impl FnMut() -> Result<String, String>,
    ) -> Result<bool, String> {
        match flag {
            "--url" | "-L" => {
                // A URL given on the command line replaces a host (and
                // the port that goes with it) from the environment, and
                // the other way round.
                self.url = Some(value()?);
                self.url_from_env = false;
                self.host = None;
                if self.port_from_env {
                    self.port = None;
                    self.port_from_env = false;
                }
            }
            "--host" | "-h" => {
                self.host = Some(value()?);
                self.url = None;
                self.url_from_env = false;
            }
            "--port" | "-p" => {
                let v = value()?;
                self.port = Some(parse_port(&v).ok_or_else(|| {
                    format!("--port takes a port number from 1 to 65535, not {v:?}")
                })?);
                self.port_from_env = false;
            }
            "--username" | "-u" => self.username = Some(value()?),
            "--password" | "-P" => self.password = Some(value()?),
            "--cafile" => self.cafile = Some(PathBuf::from(value()?)),
            "--no-tls" => self.no_tls = true,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Refuses what contradicts a URL: it names the scheme (TLS or not)
    /// and the port, so `--port` or `--no-tls` next to it would be ignored
    /// or would override what it says, either way a surprise; and a CA
    /// file means nothing without TLS. Also a URL that does not parse.
    /// Call it once the flags are read.
    pub fn check(&self) -> Result<(), String> {
        let Some(url) = &self.url else {
            return Ok(());
        };
        let url_source = if self.url_from_env {
            "SHELLY_MQTT_URL"
        } else {
            "--url"
        };
        // UrlError never quotes the user name or password.
        let parsed: BrokerUrl = url
            .parse()
            .map_err(|e| format!("{url_source} is not a broker URL: {e}"))?;
        if self.port.is_some() {
            let port_source = if self.port_from_env {
                "SHELLY_MQTT_PORT"
            } else {
                "--port"
            };
            return Err(format!(
                "{port_source} goes with a host, not with {url_source}: put the port in the \
                 URL (mqtts://HOST:PORT)"
            ));
        }
        if self.no_tls {
            return Err(format!(
                "--no-tls does not go with {url_source}: the URL's scheme says whether to use \
                 TLS (mqtt:// plain, mqtts:// TLS)"
            ));
        }
        if self.cafile.is_some() && !parsed.scheme.is_tls() {
            return Err(format!(
                "--cafile (or SHELLY_MQTT_CAFILE) needs TLS, but {url_source} is a plain \
                 URL: use mqtts:// (or wss://)"
            ));
        }
        Ok(())
    }

    /// The URL, parsed (`None` without one, or if it is not a URL).
    fn parsed_url(&self) -> Option<BrokerUrl> {
        self.url.as_deref().and_then(|url| url.parse().ok())
    }

    fn uses_tls(&self) -> bool {
        match (&self.url, self.parsed_url()) {
            (Some(_), Some(url)) => url.scheme.is_tls(),
            (Some(_), None) => false,
            (None, _) => !self.no_tls,
        }
    }

    /// What it connects to, for people: never a password.
    pub fn describe(&self) -> String {
        let (scheme, host, port, user) = match (&self.url, self.parsed_url(), &self.host) {
            (Some(_), Some(url), _) => {
                let scheme = match url.scheme {
                    Scheme::Mqtt => "mqtt",
                    Scheme::Mqtts => "mqtts",
                    Scheme::Ws => "ws",
                    Scheme::Wss => "wss",
                };
                let user = url.username.clone().or_else(|| self.username.clone());
                (scheme, url.host, url.port, user)
            }
            (Some(_), None, _) => return "an invalid URL".to_owned(),
            (None, _, Some(host)) => {
                let (scheme, port) = if self.no_tls {
                    ("mqtt", self.port.unwrap_or(1883))
                } else {
                    ("mqtts", self.port.unwrap_or(8883))
                };
                (scheme, host.clone(), port, self.username.clone())
            }
            (None, _, None) => return "no broker".to_owned(),
        };
        let mut text = format!("{scheme}://{host}:{port}");
        if let Some(user) = user {
            text.push_str(&format!(" as user {user}"));
        }
        if self.uses_tls() {
            text.push_str(match &self.cafile {
                Some(_) => " (TLS, trusting the given CA)",
                None => " (TLS)",
            });
        }
        text
    }

    /// Applies the credentials and TLS settings to `client` and connects.
    /// Errors are explained for people (see [`explain`]).
    pub async fn connect(&self, client: &Client, keepalive: u16) -> Result<ConnAck, String> {
        self.check()?;
        if self.password.is_some() && self.username.is_none() {
            return Err("--password needs --username as well".to_owned());
        }
        if let Some(user) = &self.username {
            client
                .username_pw_set(user.as_str(), self.password.as_deref())
                .map_err(|e| e.to_string())?;
        }
        if self.uses_tls() {
            // The Mozilla roots by default, which is what HiveMQ Cloud's
            // Let's Encrypt certificate chains to; a private CA replaces them.
            let tls = match &self.cafile {
                Some(path) => TlsOptions::new()
                    .ca_file(path)
                    .map_err(|e| format!("cannot use CA file {}: {e}", path.display()))?,
                None => TlsOptions::new(),
            };
            client.tls_set(tls);
        }
        let result = match (&self.url, &self.host) {
            (Some(url), _) => client.connect_url(url, keepalive).await,
            (None, Some(host)) => {
                let port = self.port.unwrap_or(if self.no_tls { 1883 } else { 8883 });
                client.connect(host, port, keepalive).await
            }
            (None, None) => {
                return Err(
                    "no broker given: use --url or --host (or SHELLY_MQTT_URL / \
                            SHELLY_MQTT_HOST)"
                        .to_owned(),
                );
            }
        };
        result.map_err(|e| format!("{}: {}", self.describe(), explain(&e)))
    }
}

/// A client error with a hint at the usual cause.
pub fn explain(error: &ClientError) -> String {
    let hint = match error {
        ClientError::ConnectionRefused {
            reason: ConnectReasonCode::BadUserNameOrPassword | ConnectReasonCode::NotAuthorized,
            ..
        } => {
            " (check the user name and password; on HiveMQ Cloud they are the \
             credentials made under Access Management)"
        }
        ClientError::Transport(TransportError::UntrustedCertificate(_)) => {
            " (a broker with a private CA needs --cafile; a local plain broker needs --no-tls)"
        }
        ClientError::Transport(
            TransportError::Tls(_) | TransportError::TlsHandshakeTimeout { .. },
        ) => " (is this port TLS? a local plain broker needs --no-tls)",
        ClientError::Transport(TransportError::Refused { .. }) => {
            " (is the broker running, and is this its port?)"
        }
        ClientError::ConnectTimeout => " (is this an MQTT port? with TLS, is it the TLS port?)",
        _ => "",
    };
    format!("{error}{hint}")
}

/// Parses a duration in seconds (`1.5`), for `--timeout` and friends.
pub fn seconds(flag: &str, v: &str) -> Result<Duration, String> {
    v.parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("{flag} takes a number of seconds, not {v:?}"))
}
