//! What the `publish` and `subscribe` examples share: mosquitto-style option
//! parsing, the default client id, connecting with mosquitto's error lines
//! and exit codes, the `-d` packet trace and `-F` output formats.
//!
//! This file is not an example of its own: cargo only builds
//! `examples/*.rs` and `examples/*/main.rs`, and both examples pull it in
//! with `mod cli;`.
//!
//! The arguments are parsed by hand rather than with a parser crate because
//! mosquitto's flags do not fit one: `-D publish user-property KEY VALUE`
//! takes four values and `-D publish content-type TYPE` three, options can
//! repeat (`-t`), and a later flag may override an earlier one (`-D` switches
//! to MQTT 5.0, a later `-V 311` switches back). A loop over `argv` says all
//! of that exactly, with mosquitto's own error messages.

// Each example uses a different part of this module.
#![allow(dead_code)]

use std::ffi::OsString;
use std::fmt;
use std::io::Write;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use plover::codec::{
    ConnAck, ConnectProperties, ConnectReasonCode, Disconnect, DisconnectProperties,
    DisconnectReasonCode, MqttString, PayloadFormat, PublishProperties, SubscribeProperties,
    WillProperties,
};
use plover::topic::{validate_topic_filter, validate_topic_name};
use plover::transport::{TlsError, TlsOptions, TransportError, rustls};
use plover::{
    Client, ClientError, CloseReason, ConnectionEvent, ConnectionEvents, Message, ProtocolVersion,
    QoS,
};

/// Exit codes. mosquitto's clients return 1 for bad arguments and for a
/// broker they cannot reach, the CONNACK reason code when the broker refuses
/// the connection (so 5 for "not authorised" in 3.1.1, 135 in 5.0), and
/// otherwise a libmosquitto error number; these are the numbers used here.
pub mod exit {
    /// Everything went as asked.
    pub const OK: u8 = 0;
    /// Bad arguments, an unreachable broker, an unreadable file.
    pub const ERROR: u8 = 1;
    /// `MOSQ_ERR_PROTOCOL`: the broker broke the protocol.
    pub const PROTOCOL: u8 = 2;
    /// `MOSQ_ERR_CONN_LOST`: the connection dropped for good. Like
    /// mosquitto's clients, these examples reconnect after a connection
    /// drops; this is for when the client stops reconnecting (the broker
    /// refused us, or closed us for a reason retrying will not fix).
    pub const CONN_LOST: u8 = 7;
    /// `MOSQ_ERR_TIMEOUT`: `subscribe -W` ran out of time.
    pub const TIMEOUT: u8 = 27;
}

/// Which example is parsing: some flags belong to only one of them, and
/// mosquitto calls a flag of the other tool an unknown option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// `publish`, after `mosquitto_pub`.
    Publish,
    /// `subscribe`, after `mosquitto_sub`.
    Subscribe,
}

/// Where `publish` takes its message from (exactly one of `-m -f -l -s -n`).
#[derive(Debug, Clone)]
pub enum Source {
    /// `-m MESSAGE`: the argument's bytes, as given (not necessarily UTF-8).
    Message(Bytes),
    /// `-f FILE`: the whole file as one message.
    File(PathBuf),
    /// `-l`: each line of stdin is a message, until end of file.
    StdinLines,
    /// `-s`: all of stdin is one message.
    StdinWhole,
    /// `-n`: a zero-length message.
    Null,
}

/// MQTT 5.0 properties given with `-D COMMAND PROPERTY VALUE...`.
#[derive(Debug, Clone, Default)]
pub struct Properties {
    /// `-D connect ...`.
    pub connect: ConnectProperties,
    /// `-D publish ...`.
    pub publish: PublishProperties,
    /// `-D will ...`.
    pub will: WillProperties,
    /// `-D subscribe ...`.
    pub subscribe: SubscribeProperties,
    /// `-D disconnect ...`.
    pub disconnect: DisconnectProperties,
    /// True once any `-D` was given: they need MQTT 5.0.
    pub given: bool,
}

/// Everything the command line said.
#[derive(Debug, Clone)]
pub struct Config {
    /// The program name for messages (`publish`, `subscribe`).
    pub prog: String,
    /// Which example this is.
    pub tool: Tool,
    /// `-h`, default `localhost`.
    pub host: String,
    /// `-p`, default 1883, or 8883 with TLS (`--cafile`, `--capath`,
    /// `--tls-use-os-certs`) unless `-p` or `-L` set it.
    pub port: u16,
    /// True once `-p` or `-L` chose the port.
    pub port_set: bool,
    /// `-t`: publish uses the last one given (as mosquitto_pub does),
    /// subscribe all of them.
    pub topics: Vec<String>,
    /// `-q`, default 0.
    pub qos: QoS,
    /// `-i`.
    pub id: Option<String>,
    /// `-I`: the id is this prefix followed by the process id.
    pub id_prefix: Option<String>,
    /// `-V`, default 3.1.1 as in mosquitto 2.0; `-D` switches to 5.0.
    pub version: ProtocolVersion,
    /// `-u`.
    pub username: Option<String>,
    /// `-P`.
    pub password: Option<String>,
    /// `-k`, default 60. Any value is taken, 0 and 1 included.
    pub keepalive: u16,
    /// False with `-c`.
    pub clean_session: bool,
    /// `-x`, 5.0 only (mosquitto ignores it with 3.1.1).
    pub session_expiry: Option<u32>,
    /// `--will-topic`.
    pub will_topic: Option<String>,
    /// `--will-payload`.
    pub will_payload: Option<Bytes>,
    /// `--will-qos`.
    pub will_qos: QoS,
    /// `--will-retain`.
    pub will_retain: bool,
    /// `-D`.
    pub props: Properties,
    /// `-d`.
    pub debug: bool,
    /// `--quiet`: no runtime error messages (argument errors still print).
    pub quiet: bool,
    /// `-M`.
    pub max_inflight: Option<u16>,
    /// `publish`: the message source.
    pub source: Option<Source>,
    /// `publish -r`.
    pub retain: bool,
    /// `publish --repeat`, default 1.
    pub repeat: u32,
    /// `publish --repeat-delay`.
    pub repeat_delay: Duration,
    /// `subscribe -T`.
    pub filter_out: Vec<String>,
    /// `subscribe -C`.
    pub count: Option<u32>,
    /// `subscribe -W`.
    pub timeout: Option<u32>,
    /// `subscribe -v`.
    pub verbose: bool,
    /// `subscribe -R`.
    pub no_retain: bool,
    /// False with `subscribe -N`.
    pub eol: bool,
    /// `subscribe --retained-only`.
    pub retained_only: bool,
    /// `subscribe --retain-as-published` (5.0).
    pub retain_as_published: bool,
    /// `subscribe -F`.
    pub format: Option<Format>,
    /// `subscribe -E`.
    pub exit_after_sub: bool,
    /// `--cafile`.
    pub cafile: Option<PathBuf>,
    /// `--capath`.
    pub capath: Option<PathBuf>,
    /// `--cert`.
    pub cert: Option<PathBuf>,
    /// `--key`.
    pub key: Option<PathBuf>,
    /// `--insecure`.
    pub insecure: bool,
    /// `--tls-use-os-certs`, also set by `-L mqtts://` and `-L wss://`.
    pub tls_use_os_certs: bool,
    /// `--tls-alpn`.
    pub tls_alpn: Option<String>,
    /// `--tls-version`.
    pub tls_version: Option<String>,
    /// `-L ws://` or `-L wss://`: MQTT over WebSocket.
    pub websocket: bool,
}

impl Config {
    fn new(prog: String, tool: Tool) -> Config {
        Config {
            prog,
            tool,
            host: "localhost".into(),
            port: 1883,
            port_set: false,
            topics: Vec::new(),
            qos: QoS::AtMostOnce,
            id: None,
            id_prefix: None,
            version: ProtocolVersion::V311,
            username: None,
            password: None,
            keepalive: 60,
            clean_session: true,
            session_expiry: None,
            will_topic: None,
            will_payload: None,
            will_qos: QoS::AtMostOnce,
            will_retain: false,
            props: Properties::default(),
            debug: false,
            quiet: false,
            max_inflight: None,
            source: None,
            retain: false,
            repeat: 1,
            repeat_delay: Duration::ZERO,
            filter_out: Vec::new(),
            count: None,
            timeout: None,
            verbose: false,
            no_retain: false,
            eol: true,
            retained_only: false,
            retain_as_published: false,
            format: None,
            exit_after_sub: false,
            cafile: None,
            capath: None,
            cert: None,
            key: None,
            insecure: false,
            tls_use_os_certs: false,
            tls_alpn: None,
            tls_version: None,
            websocket: false,
        }
    }

    /// Whether to use TLS: as in mosquitto, a CA (`--cafile`, `--capath`)
    /// or `--tls-use-os-certs` (which `-L mqtts://` implies) turns it on;
    /// `--cert`, `--key` and `--insecure` alone do not.
    pub fn tls(&self) -> bool {
        self.cafile.is_some() || self.capath.is_some() || self.tls_use_os_certs
    }

    /// The client id: `-i`, else `-I` + pid, else `plover_pub_<pid>` /
    /// `plover_sub_<pid>` (mosquitto's tools use a random id; a pid is
    /// unique enough on one host and easy to find in a broker log).
    pub fn client_id(&self) -> String {
        let pid = std::process::id();
        match (&self.id, &self.id_prefix) {
            (Some(id), _) => id.clone(),
            (None, Some(prefix)) => format!("{prefix}{pid}"),
            (None, None) => match self.tool {
                Tool::Publish => format!("plover_pub_{pid}"),
                Tool::Subscribe => format!("plover_sub_{pid}"),
            },
        }
    }

    /// Prints a runtime error (not an argument error) unless `--quiet`.
    pub fn error(&self, line: impl fmt::Display) {
        if !self.quiet {
            eprintln!("{line}");
        }
    }
}

/// Why parsing stopped short of a [`Config`].
#[derive(Debug)]
pub enum Stop {
    /// `--help`.
    Help,
    /// A bad argument: the message (without "Error: ").
    Bad(String),
    /// `publish` without a topic or a message: mosquitto_pub prints the
    /// error and then its whole usage text.
    BadWithUsage(String),
}

fn bad<T>(message: impl Into<String>) -> Result<T, Stop> {
    Err(Stop::Bad(message.into()))
}

/// Parses the process's arguments; on `--help` or a bad argument prints
/// what mosquitto prints and returns the exit code (1 in both cases:
/// mosquitto's tools exit 1 after `--help` too).
pub fn parse_or_exit(tool: Tool) -> Result<Config, ExitCode> {
    let mut args = std::env::args_os();
    let prog = args
        .next()
        .map(PathBuf::from)
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| match tool {
            Tool::Publish => "publish".into(),
            Tool::Subscribe => "subscribe".into(),
        });
    match parse(tool, prog.clone(), args.collect()) {
        Ok(config) => Ok(config),
        Err(Stop::Help) => {
            print!("{}", usage(tool, &prog));
            Err(ExitCode::from(exit::ERROR))
        }
        Err(Stop::Bad(message)) => {
            eprintln!("Error: {message}");
            eprintln!();
            eprintln!("Use '{prog} --help' to see usage.");
            Err(ExitCode::from(exit::ERROR))
        }
        Err(Stop::BadWithUsage(message)) => {
            eprintln!("Error: {message}");
            print!("{}", usage(tool, &prog));
            Err(ExitCode::from(exit::ERROR))
        }
    }
}

/// A cursor over the arguments that knows how to ask for a flag's values.
struct Args {
    list: Vec<OsString>,
    next: usize,
}

impl Args {
    fn flag(&mut self) -> Option<OsString> {
        let arg = self.list.get(self.next).cloned();
        self.next += 1;
        arg
    }

    /// The value after `flag`, or mosquitto's "argument given but no ..."
    /// error naming `what`.
    fn value(&mut self, flag: &str, what: &str) -> Result<OsString, Stop> {
        match self.flag() {
            Some(v) => Ok(v),
            None => bad(format!("{flag} argument given but no {what} specified.")),
        }
    }

    /// The value as text: topics, ids and user names are MQTT strings.
    fn text(&mut self, flag: &str, what: &str) -> Result<String, Stop> {
        utf8(self.value(flag, what)?, flag)
    }

    /// The value as raw bytes: payloads may be anything the shell passes.
    fn bytes(&mut self, flag: &str, what: &str) -> Result<Bytes, Stop> {
        Ok(Bytes::from(self.value(flag, what)?.into_encoded_bytes()))
    }
}

fn utf8(value: OsString, flag: &str) -> Result<String, Stop> {
    value
        .into_string()
        .or_else(|_| bad(format!("Malformed UTF-8 in {flag} argument.")))
}

fn parse_qos(value: &str) -> Option<QoS> {
    match value {
        "0" => Some(QoS::AtMostOnce),
        "1" => Some(QoS::AtLeastOnce),
        "2" => Some(QoS::ExactlyOnce),
        _ => None,
    }
}

/// Parses the arguments after the program name.
pub fn parse(tool: Tool, prog: String, list: Vec<OsString>) -> Result<Config, Stop> {
    let is_pub = tool == Tool::Publish;
    let is_sub = tool == Tool::Subscribe;
    let mut c = Config::new(prog, tool);
    let mut args = Args { list, next: 0 };
    while let Some(raw) = args.flag() {
        let flag = raw.to_string_lossy().into_owned();
        // Flags of the other tool are unknown here, as in mosquitto.
        let unknown = || bad(format!("Unknown option '{flag}'."));
        match flag.as_str() {
            "--help" => return Err(Stop::Help),
            "-h" | "--host" => c.host = args.text("-h", "host")?,
            "-p" | "--port" => {
                let v = args.text("-p", "port")?;
                match v.parse::<u16>() {
                    Ok(port) if port > 0 => {
                        c.port = port;
                        c.port_set = true;
                    }
                    _ => return bad(format!("Invalid port given: {v}")),
                }
            }
            "-t" | "--topic" => {
                let topic = args.text("-t", "topic")?;
                add_topic(&mut c, topic)?;
            }
            "-L" | "--url" => {
                // mosquitto's own wording, with its extra blank line.
                let Some(url) = args.flag() else {
                    return bad("-L argument given but no URL specified.\n");
                };
                parse_url(&mut c, &utf8(url, "-L")?)?;
            }
            "--cafile" => c.cafile = Some(args.value("--cafile", "file")?.into()),
            "--capath" => c.capath = Some(args.value("--capath", "directory")?.into()),
            "--cert" => c.cert = Some(args.value("--cert", "file")?.into()),
            "--key" => c.key = Some(args.value("--key", "file")?.into()),
            "--insecure" => c.insecure = true,
            "--tls-use-os-certs" => c.tls_use_os_certs = true,
            "--tls-alpn" => c.tls_alpn = Some(args.text("--tls-alpn", "protocol")?),
            "--tls-version" => c.tls_version = Some(args.text("--tls-version", "version")?),
            "-q" | "--qos" => {
                let v = args.text("-q", "QoS")?;
                c.qos = parse_qos(&v).map_or_else(|| bad(format!("Invalid QoS given: {v}")), Ok)?;
            }
            "-i" | "--id" => {
                if c.id_prefix.is_some() {
                    return bad("-i and -I argument cannot be used together.");
                }
                c.id = Some(args.text("-i", "id")?);
            }
            "-I" | "--id-prefix" => {
                if c.id.is_some() {
                    return bad("-i and -I argument cannot be used together.");
                }
                c.id_prefix = Some(args.text("-I", "id prefix")?);
            }
            "-V" | "--protocol-version" => {
                let v = args.text("--protocol-version", "version")?;
                c.version = match v.as_str() {
                    "5" | "mqttv5" => ProtocolVersion::V5,
                    "311" | "mqttv311" => ProtocolVersion::V311,
                    "31" | "mqttv31" => {
                        return bad("MQTT v3.1 is not supported; use -V 311 or -V 5.");
                    }
                    _ => return bad("Invalid protocol version argument given."),
                };
            }
            "-u" | "--username" => c.username = Some(args.text("-u", "username")?),
            "-P" | "--pw" => c.password = Some(args.text("-P", "password")?),
            "-k" | "--keepalive" => {
                let v = args.text("-k", "keepalive")?;
                // mosquitto insists on 5..=65535; any u16 is a valid MQTT
                // keepalive, and short ones are handy for testing.
                c.keepalive = v.parse::<u16>().or_else(|_| {
                    bad("Invalid keepalive given, it must be between 0 and 65535 inclusive.")
                })?;
            }
            "-c" | "--disable-clean-session" => c.clean_session = false,
            "-x" | "--session-expiry-interval" => {
                let v = args.text("-x", "session expiry interval")?;
                c.session_expiry = Some(match v.as_str() {
                    "-1" | "∞" => u32::MAX,
                    _ => v
                        .parse::<u32>()
                        .or_else(|_| bad("session-expiry-interval not a number."))?,
                });
            }
            "--will-topic" => {
                let topic = args.text("--will-topic", "will topic")?;
                if validate_topic_name(&topic).is_err() {
                    return bad(format!(
                        "Invalid will topic '{topic}', does it contain '+' or '#'?"
                    ));
                }
                c.will_topic = Some(topic);
            }
            "--will-payload" => {
                c.will_payload = Some(args.bytes("--will-payload", "will payload")?)
            }
            "--will-qos" => {
                let v = args.text("--will-qos", "will QoS")?;
                c.will_qos =
                    parse_qos(&v).map_or_else(|| bad(format!("Invalid will QoS {v}.")), Ok)?;
            }
            "--will-retain" => c.will_retain = true,
            "-D" | "--property" => {
                parse_property(&mut args, &mut c.props)?;
                // As in mosquitto, a property makes the client speak 5.0; a
                // later -V 311 switches back, and is then refused below.
                c.version = ProtocolVersion::V5;
            }
            "-d" | "--debug" => c.debug = true,
            "--quiet" => c.quiet = true,
            // plover always sets TCP_NODELAY, so this is what it asks for.
            "--nodelay" => {}
            "-M" => {
                let v = args.text("-M", "max_inflight")?;
                match v.parse::<u16>() {
                    Ok(n) if n > 0 => c.max_inflight = Some(n),
                    _ => return bad("Maximum inflight messages must be greater than 0."),
                }
            }

            // publish
            "-m" | "--message" if is_pub => {
                one_source(&c)?;
                c.source = Some(Source::Message(args.bytes("-m", "message")?));
            }
            "-f" | "--file" if is_pub => {
                one_source(&c)?;
                c.source = Some(Source::File(args.value("-f", "file")?.into()));
            }
            "-l" | "--stdin-line" if is_pub => {
                one_source(&c)?;
                c.source = Some(Source::StdinLines);
            }
            "-s" | "--stdin-file" if is_pub => {
                one_source(&c)?;
                c.source = Some(Source::StdinWhole);
            }
            "-n" | "--null-message" if is_pub => {
                one_source(&c)?;
                c.source = Some(Source::Null);
            }
            "-r" | "--retain" if is_pub => c.retain = true,
            "--repeat" if is_pub => {
                let v = args.text("--repeat", "count")?;
                match v.parse::<u32>() {
                    Ok(n) if n > 0 => c.repeat = n,
                    _ => return bad("--repeat argument must be >0."),
                }
            }
            "--repeat-delay" if is_pub => {
                let v = args.text("--repeat-delay", "time")?;
                match v.parse::<f64>() {
                    Ok(s) if s >= 0.0 && s.is_finite() => {
                        c.repeat_delay = Duration::from_secs_f64(s)
                    }
                    _ => return bad("--repeat-delay argument must be >=0.0."),
                }
            }

            // subscribe
            "-T" | "--filter-out" if is_sub => {
                let filter = args.text("-T", "topic filter")?;
                if validate_topic_filter(&filter).is_err() {
                    return bad(format!(
                        "Invalid filter topic '{filter}', are all '+' and '#' wildcards correct?"
                    ));
                }
                c.filter_out.push(filter);
            }
            "-C" if is_sub => {
                let v = args.text("-C", "count")?;
                match v.parse::<u32>() {
                    Ok(n) if n > 0 => c.count = Some(n),
                    _ => return bad(format!("Invalid message count \"{v}\".")),
                }
            }
            "-W" if is_sub => {
                let v = args.text("-W", "timeout")?;
                match v.parse::<u32>() {
                    Ok(n) if n > 0 => c.timeout = Some(n),
                    _ => return bad(format!("Invalid timeout \"{v}\".")),
                }
            }
            "-v" | "--verbose" if is_sub => c.verbose = true,
            "-R" if is_sub => c.no_retain = true,
            "-N" if is_sub => c.eol = false,
            "--retained-only" if is_sub => c.retained_only = true,
            "--retain-as-published" if is_sub => c.retain_as_published = true,
            "-E" if is_sub => c.exit_after_sub = true,
            "-F" if is_sub => {
                let f = args.value("-F", "format")?;
                c.format = Some(Format::parse(&f.into_encoded_bytes())?);
            }
            _ => return unknown(),
        }
    }
    check(c)
}

/// A topic from `-t` or from `-L`'s path: publish uses the last one given,
/// subscribe all of them, as in mosquitto.
fn add_topic(c: &mut Config, topic: String) -> Result<(), Stop> {
    if c.tool == Tool::Publish {
        if validate_topic_name(&topic).is_err() {
            return bad(format!(
                "Invalid publish topic '{topic}', does it contain '+' or '#'?"
            ));
        }
        c.topics = vec![topic];
    } else {
        if validate_topic_filter(&topic).is_err() {
            return bad(format!(
                "Invalid subscription topic '{topic}', are all '+' and '#' wildcards correct?"
            ));
        }
        c.topics.push(topic);
    }
    Ok(())
}

/// `-L scheme://[user[:password]@]host[:port]/topic`, read the way
/// mosquitto reads it: the path is the *topic* (for `ws://` and `wss://`
/// too, whose WebSocket path stays `/mqtt`), nothing is percent-decoded,
/// the user name ends at the first `:` and the user info at the first `@`.
/// `mqtts://` (and `wss://`) turn TLS on with the default roots, as
/// `--tls-use-os-certs` does; the scheme sets the port, which a later `-p`
/// can change.
///
/// One deliberate difference: mosquitto cuts the URL at its first `/`
/// before looking for the user info, so a password with a `/` in it is
/// split, half of it taken for the host and port (and printed in "Invalid
/// port given") and the rest for the topic. Here a password keeps its
/// `/`: when the text before the first `/` has a `:` (`user:pass...`) and
/// an `@` follows, the user info runs to that `@`. Without a `:` there
/// is no password to protect, and an `@` after the first `/` belongs to
/// the topic, as in mosquitto. The cost: `-L mqtt://host:1883/a@b` (a
/// port and an `@` in the topic, no user) reads `host:1883/a` as user
/// info and fails with "topic missing"; `-t` takes such a topic.
fn parse_url(c: &mut Config, url: &str) -> Result<(), Stop> {
    let schemes: [(&str, u16, bool, bool); 4] = [
        ("mqtt://", 1883, false, false),
        ("mqtts://", 8883, true, false),
        ("ws://", 80, false, true),
        ("wss://", 443, true, true),
    ];
    let Some((rest, port, tls, websocket)) = schemes.iter().find_map(|&(prefix, port, tls, ws)| {
        let head = url.get(..prefix.len())?;
        head.eq_ignore_ascii_case(prefix)
            .then(|| (&url[prefix.len()..], port, tls, ws))
    }) else {
        return bad("unsupported URL scheme.\n");
    };
    c.port = port;
    c.port_set = true;
    c.tls_use_os_certs |= tls;
    c.websocket = websocket;
    let first_slash = rest.find('/').unwrap_or(rest.len());
    let userinfo_end = rest
        .find('@')
        .filter(|&at| at < first_slash || rest[..first_slash].contains(':'));
    let (userinfo, rest) = match userinfo_end {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let Some((host_port, topic)) = rest.split_once('/') else {
        return bad("Invalid URL for -L argument specified - topic missing.");
    };
    add_topic(c, topic.to_owned())?;
    if let Some(userinfo) = userinfo {
        match userinfo.split_once(':') {
            Some((user, password)) => {
                c.username = Some(user.to_owned());
                c.password = Some(password.to_owned());
            }
            None => c.username = Some(userinfo.to_owned()),
        }
    }
    // `[::1]:1883` as well, which mosquitto cannot read.
    let (host, port) = match host_port
        .strip_prefix('[')
        .and_then(|v6| v6.split_once(']'))
    {
        Some((host, after)) => (host, after.strip_prefix(':')),
        None => match host_port.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        },
    };
    c.host = host.to_owned();
    if let Some(port) = port {
        match port.parse::<u16>() {
            Ok(p) if p > 0 => c.port = p,
            _ => return bad(format!("Invalid port given: {port}")),
        }
    }
    Ok(())
}

fn one_source(c: &Config) -> Result<(), Stop> {
    if c.source.is_some() {
        return bad("Only one type of message can be sent at once.");
    }
    Ok(())
}

/// The checks mosquitto makes once every argument is read, in its order.
fn check(mut c: Config) -> Result<Config, Stop> {
    if c.will_payload.is_some() && c.will_topic.is_none() {
        return bad("Will payload given, but no will topic given.");
    }
    if c.will_retain && c.will_topic.is_none() {
        return bad("Will retain given, but no will topic given.");
    }
    if c.cert.is_some() != c.key.is_some() {
        return bad("Both certfile and keyfile must be provided if one of them is set.");
    }
    if !c.port_set && c.tls() {
        c.port = 8883;
    }
    let no_fixed_id = c.id_prefix.is_some() || c.id.is_none();
    match c.version {
        ProtocolVersion::V5 => {
            // -c alone means "keep my session forever", as in mosquitto.
            if !c.clean_session && c.session_expiry.is_none() {
                c.session_expiry = Some(u32::MAX);
            }
            if c.session_expiry == Some(u32::MAX) && no_fixed_id {
                return bad(
                    "You must provide a client id if you are using an infinite session expiry interval.",
                );
            }
            if let Some(seconds) = c.session_expiry.filter(|s| *s > 0) {
                c.props.connect.session_expiry_interval = Some(seconds);
            }
        }
        _ => {
            if !c.clean_session && no_fixed_id {
                return bad("You must provide a client id if you are using the -c option.");
            }
            // mosquitto accepts these with 3.1.1 and then fails: it cannot
            // connect at all with CONNECT properties ("This feature is not
            // supported"), and silently drops a publish that has some. Both
            // are better said up front.
            if c.props.given {
                return bad(
                    "MQTT v5 properties (-D) cannot be used with MQTT v3.1.1; use -V 5 or leave out -V.",
                );
            }
        }
    }
    match c.tool {
        Tool::Subscribe => {
            if c.topics.is_empty() {
                return bad("You must specify a topic to subscribe to.");
            }
            if c.no_retain && c.retained_only {
                return bad("Combining '-R' and '--retained-only' makes no sense.");
            }
        }
        Tool::Publish => {
            if c.topics.is_empty() || c.source.is_none() {
                return Err(Stop::BadWithUsage(
                    "Both topic and message must be supplied.".into(),
                ));
            }
        }
    }
    Ok(c)
}

/// Every property name MQTT 5.0 defines, spelled as mosquitto spells them.
const PROPERTY_NAMES: &[&str] = &[
    "payload-format-indicator",
    "message-expiry-interval",
    "content-type",
    "response-topic",
    "correlation-data",
    "subscription-identifier",
    "session-expiry-interval",
    "assigned-client-identifier",
    "server-keep-alive",
    "authentication-method",
    "authentication-data",
    "request-problem-information",
    "will-delay-interval",
    "request-response-information",
    "response-information",
    "server-reference",
    "reason-string",
    "receive-maximum",
    "topic-alias-maximum",
    "topic-alias",
    "maximum-qos",
    "retain-available",
    "user-property",
    "maximum-packet-size",
    "wildcard-subscription-available",
    "subscription-identifier-available",
    "shared-subscription-available",
];

/// The packets a client may put properties on, as `-D` names them.
const PROPERTY_COMMANDS: &[&str] = &[
    "connect",
    "publish",
    "puback",
    "pubrec",
    "pubrel",
    "pubcomp",
    "subscribe",
    "unsubscribe",
    "disconnect",
    "auth",
    "will",
];

/// Whether MQTT 5.0 allows the property on what a client sends with that
/// command (§2.2.2.2), so that "not allowed" and "not supported here" get
/// different messages.
fn property_allowed(command: &str, name: &str) -> bool {
    let allowed: &[&str] = match command {
        "connect" => &[
            "session-expiry-interval",
            "receive-maximum",
            "maximum-packet-size",
            "topic-alias-maximum",
            "request-response-information",
            "request-problem-information",
            "authentication-method",
            "authentication-data",
        ],
        "publish" => &[
            "payload-format-indicator",
            "message-expiry-interval",
            "topic-alias",
            "response-topic",
            "correlation-data",
            "content-type",
        ],
        "will" => &[
            "will-delay-interval",
            "payload-format-indicator",
            "message-expiry-interval",
            "response-topic",
            "correlation-data",
            "content-type",
        ],
        "puback" | "pubrec" | "pubrel" | "pubcomp" => &["reason-string"],
        "subscribe" => &["subscription-identifier"],
        "disconnect" => &[
            "session-expiry-interval",
            "reason-string",
            "server-reference",
        ],
        "auth" => &[
            "authentication-method",
            "authentication-data",
            "reason-string",
        ],
        _ => &[],
    };
    name == "user-property" || allowed.contains(&name)
}

/// `-D COMMAND PROPERTY VALUE` or `-D COMMAND user-property KEY VALUE`.
fn parse_property(args: &mut Args, props: &mut Properties) -> Result<(), Stop> {
    let not_enough = || bad("--property argument given but not enough arguments specified.");
    let Some(command) = args.flag() else {
        return not_enough();
    };
    let Some(name) = args.flag() else {
        return not_enough();
    };
    let Some(value) = args.flag() else {
        return not_enough();
    };
    // mosquitto takes the command in any case (PUBLISH, publish).
    let command = command.to_string_lossy().to_ascii_lowercase();
    let name = name.to_string_lossy().into_owned();
    if !PROPERTY_COMMANDS.contains(&command.as_str()) {
        return bad("Invalid command given in --property argument.");
    }
    if !PROPERTY_NAMES.contains(&name.as_str()) {
        return bad("Invalid property name given in --property argument.");
    }
    if !property_allowed(&command, &name) {
        return bad(format!(
            "{name} property not allowed for {command} in --property argument."
        ));
    }
    props.given = true;

    let out_of_range = |v: &OsString| {
        Stop::Bad(format!(
            "Property value ({}) out of range for property {name}.",
            v.to_string_lossy()
        ))
    };
    let string = |v: OsString| -> Result<MqttString, Stop> {
        let text = utf8(v, "-D")?;
        MqttString::try_from(text).or_else(|e| bad(format!("Invalid {name} property: {e}.")))
    };
    let number = |v: &OsString| -> Result<u32, Stop> {
        v.to_str()
            .and_then(|s| s.parse::<u32>().ok())
            .ok_or_else(|| out_of_range(v))
    };
    let small = |v: &OsString| -> Result<u16, Stop> {
        u16::try_from(number(v)?).map_err(|_| out_of_range(v))
    };
    let flag = |v: &OsString| -> Result<bool, Stop> {
        match number(v)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(out_of_range(v)),
        }
    };
    let format = |v: &OsString| -> Result<PayloadFormat, Stop> {
        Ok(if flag(v)? {
            PayloadFormat::Utf8
        } else {
            PayloadFormat::Unspecified
        })
    };

    if name == "user-property" {
        let Some(second) = args.flag() else {
            return not_enough();
        };
        let pair = (string(value)?, string(second)?);
        let list = match command.as_str() {
            "connect" => &mut props.connect.user_properties,
            "publish" => &mut props.publish.user_properties,
            "will" => &mut props.will.user_properties,
            "subscribe" => &mut props.subscribe.user_properties,
            "disconnect" => &mut props.disconnect.user_properties,
            _ => return unsupported(&command, &name),
        };
        list.push(pair.0, pair.1);
        return Ok(());
    }

    match (command.as_str(), name.as_str()) {
        ("connect", "session-expiry-interval") => {
            props.connect.session_expiry_interval = Some(number(&value)?)
        }
        ("connect", "receive-maximum") => match small(&value)? {
            0 => return Err(out_of_range(&value)),
            n => props.connect.receive_maximum = Some(n),
        },
        ("connect", "maximum-packet-size") => match number(&value)? {
            0 => return Err(out_of_range(&value)),
            n => props.connect.maximum_packet_size = Some(n),
        },
        ("connect", "topic-alias-maximum") => {
            props.connect.topic_alias_maximum = Some(small(&value)?)
        }
        ("connect", "request-response-information") => {
            props.connect.request_response_information = Some(flag(&value)?)
        }
        ("connect", "request-problem-information") => {
            props.connect.request_problem_information = Some(flag(&value)?)
        }
        ("publish", "payload-format-indicator") => {
            props.publish.payload_format_indicator = Some(format(&value)?)
        }
        ("publish", "message-expiry-interval") => {
            props.publish.message_expiry_interval = Some(number(&value)?)
        }
        ("publish", "content-type") => props.publish.content_type = Some(string(value)?),
        ("publish", "response-topic") => props.publish.response_topic = Some(string(value)?),
        ("publish", "correlation-data") => {
            props.publish.correlation_data = Some(Bytes::from(value.into_encoded_bytes()))
        }
        ("will", "will-delay-interval") => props.will.will_delay_interval = Some(number(&value)?),
        ("will", "payload-format-indicator") => {
            props.will.payload_format_indicator = Some(format(&value)?)
        }
        ("will", "message-expiry-interval") => {
            props.will.message_expiry_interval = Some(number(&value)?)
        }
        ("will", "content-type") => props.will.content_type = Some(string(value)?),
        ("will", "response-topic") => props.will.response_topic = Some(string(value)?),
        ("will", "correlation-data") => {
            props.will.correlation_data = Some(Bytes::from(value.into_encoded_bytes()))
        }
        ("subscribe", "subscription-identifier") => {
            // A variable byte integer: 1 to 268,435,455.
            match NonZeroU32::new(number(&value)?).filter(|n| n.get() <= 268_435_455) {
                Some(id) => props.subscribe.subscription_identifier = Some(id),
                None => return Err(out_of_range(&value)),
            }
        }
        ("disconnect", "session-expiry-interval") => {
            props.disconnect.session_expiry_interval = Some(number(&value)?)
        }
        _ => return unsupported(&command, &name),
    }
    Ok(())
}

fn unsupported(command: &str, name: &str) -> Result<(), Stop> {
    bad(format!(
        "the {name} property of {command} is not supported by this client."
    ))
}

/// `-d`: one line per packet, in the words of mosquitto's debug log
/// ("Client ID sending CONNECT"). plover does not expose its packets, so
/// the lines are written where the API shows the packet went or came: a
/// QoS 2 publish's PUBREC, PUBREL and PUBCOMP are reported together when
/// the exchange completes. mosquitto prints these to stdout; here they go
/// to stderr so they never mix with the messages `subscribe` prints.
#[derive(Debug, Clone)]
pub struct Trace {
    on: bool,
    id: String,
}

impl Trace {
    /// A trace for this configuration (silent without `-d`).
    pub fn new(config: &Config) -> Trace {
        Trace {
            on: config.debug,
            id: config.client_id(),
        }
    }

    /// True with `-d`.
    pub fn on(&self) -> bool {
        self.on
    }

    /// `Client <id> <what>`.
    pub fn client(&self, what: fmt::Arguments<'_>) {
        if self.on {
            eprintln!("Client {} {what}", self.id);
        }
    }

    /// A line of its own.
    pub fn line(&self, what: fmt::Arguments<'_>) {
        if self.on {
            eprintln!("{what}");
        }
    }
}

/// Creates the client from the configuration and connects it. On failure
/// prints mosquitto's lines for it and returns the exit code.
///
/// Also returns the client's [`Link`], made before connecting so that no
/// connection event is missed (a drop right after the CONNACK included).
pub async fn connect(config: &Config, trace: &mut Trace) -> Result<(Client, Link), ExitCode> {
    let mut builder = Client::builder(config.client_id())
        .protocol(config.version)
        .clean_start(config.clean_session)
        .connect_properties(config.props.connect.clone())
        .connect_timeout(CONNECT_TIMEOUT)
        // Reconnecting is on by default. A QoS 0 line read while the
        // client is between connections waits for the next one instead of
        // failing: nothing typed into `publish -l` is dropped for timing.
        .queue_qos0_offline(true);
    if let Some(n) = config.max_inflight {
        builder = builder.max_inflight_messages(n);
    }
    if config.websocket {
        builder = builder.websockets();
    }
    let client = builder.build();
    let link = Link::new(&client);
    let credentials = match (&config.username, &config.password) {
        // MQTT 5 allows a password alone; for 3.1.1 the client refuses it,
        // as mosquitto_pub does.
        (user, Some(password)) => client.username_pw_set(user.as_deref(), Some(password)),
        (Some(user), None) => client.username_pw_set(user.as_str(), None),
        (None, None) => Ok(()),
    };
    if credentials.is_err() {
        config.error("Error: Problem setting username and/or password.");
        return Err(ExitCode::from(exit::ERROR));
    }
    if let Some(topic) = &config.will_topic {
        let will = client.will_set_with_properties(
            topic,
            config.will_payload.clone().unwrap_or_default(),
            config.will_qos,
            config.will_retain,
            config.props.will.clone(),
        );
        if let Err(e) = will {
            config.error(format_args!("Error: Problem setting will: {e}."));
            return Err(ExitCode::from(exit::ERROR));
        }
    }

    match tls_options(config) {
        Ok(Some(tls)) => {
            // plover's own warning goes to `tracing`, which these tools do
            // not show; say it here, once, where the user sees it.
            if config.insecure {
                config.error(
                    "Warning: --insecure: the broker's certificate is not checked against \
                     its host name (a trusted CA must still have signed it)",
                );
            }
            client.tls_set(tls);
        }
        Ok(None) => {}
        Err(TlsSetup::FileNotFound) => {
            config.error("Error: Problem setting TLS options: File not found.");
            return Err(ExitCode::from(exit::ERROR));
        }
        Err(TlsSetup::InvalidOption) => {
            config.error("Error: Problem setting TLS options, check the options are valid.");
            return Err(ExitCode::from(exit::ERROR));
        }
        Err(TlsSetup::Failed(why)) => {
            // mosquitto finds bad PEM only when it connects, and says this.
            trace.line(format_args!("TLS error: {why}"));
            config.error("Unable to connect (A TLS error occurred.).");
            return Err(ExitCode::from(exit::ERROR));
        }
    }

    trace.client(format_args!("sending CONNECT"));
    match client
        .connect(&config.host, config.port, config.keepalive)
        .await
    {
        Ok(connack) => {
            if let Some(id) = connack.properties.assigned_client_identifier.as_ref() {
                trace.id = id.to_string();
            }
            trace.client(format_args!(
                "received CONNACK ({})",
                connack_code(config, &connack)
            ));
            Ok((client, link))
        }
        Err(ClientError::ConnectionRefused {
            reason,
            reason_string,
            ..
        }) => {
            let code = match config.version {
                ProtocolVersion::V311 => reason.to_v311().unwrap_or(reason.as_u8()),
                _ => reason.as_u8(),
            };
            trace.client(format_args!("received CONNACK ({code})"));
            refused(config, reason, code, reason_string.as_deref());
            Err(ExitCode::from(code))
        }
        Err(ClientError::Transport(e)) => {
            trace.line(format_args!("connect failed: {e}"));
            match e {
                // mosquitto prints strerror(errno): "Connection refused".
                TransportError::Refused { .. } => config.error("Error: Connection refused"),
                TransportError::Io(e) => config.error(format_args!("Error: {}", strerror(&e))),
                TransportError::Resolve { .. } => {
                    config.error("Unable to connect (Lookup error.).")
                }
                TransportError::Timeout { .. }
                | TransportError::TlsHandshakeTimeout { .. }
                | TransportError::WebSocketUpgradeTimeout { .. } => {
                    config.error("Error: Connection timed out")
                }
                // mosquitto's words for every failed handshake (it says
                // which with -d, as the trace line above does). It prints
                // them this way when the handshake fails inside its
                // connect call and as "Error: A TLS error occurred." (exit
                // 8) when it fails later in its loop, depending on timing.
                TransportError::UntrustedCertificate(_)
                | TransportError::HostnameMismatch { .. }
                | TransportError::Tls(_)
                | TransportError::TlsConfig(_) => {
                    config.error("Unable to connect (A TLS error occurred.).")
                }
                other => config.error(format_args!("Error: {other}")),
            }
            Err(ExitCode::from(exit::ERROR))
        }
        Err(ClientError::ConnectTimeout) => {
            config.error("Error: Connection timed out");
            Err(ExitCode::from(exit::ERROR))
        }
        Err(ClientError::ConnectionClosed(reason)) => Err(lost(config, trace, &reason)),
        Err(other) => {
            config.error(format_args!("Error: {other}"));
            Err(ExitCode::from(exit::ERROR))
        }
    }
}

/// Why the TLS settings could not be made, sorted by what mosquitto prints.
enum TlsSetup {
    /// A file named by `--cafile`, `--cert` or `--key` cannot be read.
    FileNotFound,
    /// An option value mosquitto would not take (`--tls-version tlsv1.1`).
    InvalidOption,
    /// Anything else: bad PEM, a key that is not the certificate's, no CA
    /// in `--capath`.
    Failed(String),
}

impl From<TlsError> for TlsSetup {
    fn from(e: TlsError) -> Self {
        match e {
            TlsError::ReadFile { .. } => TlsSetup::FileNotFound,
            other => TlsSetup::Failed(other.to_string()),
        }
    }
}

/// The CA files `--capath` names: every `*.pem`, `*.crt` and `*.cer`
/// file, and OpenSSL's hashed names (`1a2b3c4d.0`), in name order.
fn capath_files(dir: &Path) -> Result<Vec<PathBuf>, TlsSetup> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| TlsSetup::Failed(format!("cannot read --capath {}: {e}", dir.display())))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let hashed = name.len() >= 10
                && name.as_bytes()[..8].iter().all(u8::is_ascii_hexdigit)
                && name.as_bytes()[8] == b'.'
                && name.as_bytes()[9..].iter().all(u8::is_ascii_digit);
            let ext = path
                .extension()
                .map(|e| e.to_string_lossy().to_ascii_lowercase());
            path.is_file() && (hashed || matches!(ext.as_deref(), Some("pem" | "crt" | "cer")))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// The TLS settings the flags ask for, or `None` for plain MQTT.
///
/// Which CAs count follows mosquitto (OpenSSL), which trusts the union of
/// what it was given: `--cafile` and `--capath` alone trust only their
/// certificates; with `--tls-use-os-certs` (or `-L mqtts://`) they are
/// added to the default roots, which here are the Mozilla roots compiled
/// into plover rather than the operating system's store.
fn tls_options(c: &Config) -> Result<Option<TlsOptions>, TlsSetup> {
    if !c.tls() {
        return Ok(None);
    }
    let mut tls = match c.tls_version.as_deref() {
        None => TlsOptions::new(),
        Some(version) => TlsOptions::from_rustls_config(one_tls_version(version)?),
    };
    let mut cas: Vec<(PathBuf, bool)> = c.cafile.iter().map(|f| (f.clone(), true)).collect();
    if let Some(dir) = &c.capath {
        cas.extend(capath_files(dir)?.into_iter().map(|f| (f, false)));
    }
    // The first CA replaces the default roots unless those are wanted too.
    let mut replace = !c.tls_use_os_certs;
    for (file, required) in cas {
        let next = if replace {
            tls.clone().ca_file(&file)
        } else {
            tls.clone().add_ca_file(&file)
        };
        match next {
            Ok(next) => {
                tls = next;
                replace = false;
            }
            // A capath file without a certificate (a key, a CRL) is not
            // one of the CAs; skip it as OpenSSL would never look at it.
            Err(TlsError::NoCertificate { .. }) if !required => {}
            Err(e) => return Err(e.into()),
        }
    }
    if replace && !c.tls_use_os_certs {
        // Only --capath, and nothing in it: trust nothing, rather than the
        // default roots.
        return Err(TlsSetup::Failed(
            "no CA certificate found in --capath".to_owned(),
        ));
    }
    if let (Some(cert), Some(key)) = (&c.cert, &c.key) {
        tls = tls.client_cert_files(cert, key)?;
    }
    if let Some(protocol) = &c.tls_alpn {
        tls = tls.alpn(&[protocol.as_bytes()]);
    }
    if c.insecure {
        // As mosquitto's --insecure (OpenSSL without host name checking):
        // the chain must still end at a trusted CA.
        tls = tls.dangerous_skip_hostname_verification();
    }
    Ok(Some(tls))
}

/// A rustls config speaking only the TLS version `--tls-version` names,
/// trusting the Mozilla roots (the CA flags then change that, on top).
fn one_tls_version(version: &str) -> Result<Arc<rustls::ClientConfig>, TlsSetup> {
    let versions: &[&'static rustls::SupportedProtocolVersion] = match version {
        "tlsv1.3" => &[&rustls::version::TLS13],
        "tlsv1.2" => &[&rustls::version::TLS12],
        // tlsv1.1 and older: rustls does not speak them.
        _ => return Err(TlsSetup::InvalidOption),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| TlsSetup::Failed(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn connack_code(config: &Config, connack: &ConnAck) -> u8 {
    match config.version {
        ProtocolVersion::V311 => connack
            .reason_code
            .to_v311()
            .unwrap_or(connack.reason_code.as_u8()),
        _ => connack.reason_code.as_u8(),
    }
}

/// mosquitto's lines for a refused connection.
fn refused(config: &Config, reason: ConnectReasonCode, code: u8, reason_string: Option<&str>) {
    match config.version {
        ProtocolVersion::V311 => {
            // libmosquitto's mosquitto_connack_string().
            let text = match code {
                1 => "Connection Refused: unacceptable protocol version.",
                2 => "Connection Refused: identifier rejected.",
                3 => "Connection Refused: broker unavailable.",
                4 => "Connection Refused: bad user name or password.",
                5 => "Connection Refused: not authorised.",
                _ => "Connection Refused: unknown reason.",
            };
            config.error(format_args!("Connection error: {text}"));
            if config.tool == Tool::Publish {
                config.error("Error: The connection was refused.");
            }
        }
        _ => {
            // mosquitto_reason_string() is the specification's name, which
            // is also plover's description().
            if reason == ConnectReasonCode::UnsupportedProtocolVersion {
                config.error(format_args!(
                    "Connection error: {}. Try connecting to an MQTT v5 broker, or use MQTT v3.x mode.",
                    reason.description()
                ));
            } else {
                config.error(format_args!("Connection error: {}", reason.description()));
            }
            if let Some(why) = reason_string {
                config.error(why);
            }
            if config.tool == Tool::Publish {
                // What mosquitto_pub 2.0 prints next, because the broker
                // closes the socket right after a 5.0 refusal.
                config.error(
                    "Error: A network protocol error occurred when communicating with the broker.",
                );
            }
        }
    }
}

/// `Connection refused (os error 111)` -> `Connection refused`, as C's
/// strerror() says it.
pub fn strerror(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// How long opening the transport, and then the CONNACK, may each take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long after a `Disconnected` event the `Reconnecting` that announces
/// the next attempt may take. The client sends it at once; if none comes,
/// the client has stopped for good.
const FOLLOW_UP: Duration = Duration::from_secs(2);

/// Follows a client's connection events for a tool that keeps going
/// across reconnects (as mosquitto's do), and says when the client has
/// stopped for good. Tracing with `-d` shows the drops and the attempts.
pub struct Link {
    events: ConnectionEvents,
    /// Connections seen; the first `Connected` is not a reconnect.
    connected: u32,
    /// When to conclude the client stopped, and with what reason, if no
    /// further event comes first.
    give_up: Option<(tokio::time::Instant, CloseReason)>,
}

impl Link {
    /// Starts following `client` (call before `connect`, so that nothing
    /// can happen unseen).
    pub fn new(client: &Client) -> Link {
        Link {
            events: client.connection_events(),
            connected: 0,
            give_up: None,
        }
    }

    /// Resolves once the client has stopped for good, with why; while it
    /// reconnects this stays pending. Cancel safe: what it learned is kept
    /// in `self`, so it can sit in a `select!` loop.
    pub async fn stopped(&mut self, trace: &Trace) -> CloseReason {
        loop {
            let deadline = self.give_up.as_ref().map(|(at, _)| *at);
            tokio::select! {
                event = self.events.recv() => match event {
                    Some(ConnectionEvent::Disconnected(reason)) => {
                        trace.line(format_args!("connection lost: {reason}"));
                        let at = tokio::time::Instant::now() + FOLLOW_UP;
                        self.give_up = Some((at, reason));
                    }
                    Some(ConnectionEvent::Reconnecting { attempt, delay, cause }) => {
                        trace.line(format_args!(
                            "reconnecting in {delay:.1?} (attempt {attempt}): {cause}"
                        ));
                        // The attempt reports back (Connected, or
                        // Disconnected) within the delay and the connect
                        // timeouts; if it never does, the client is gone.
                        let at = tokio::time::Instant::now()
                            + delay
                            + 2 * CONNECT_TIMEOUT
                            + Duration::from_secs(5);
                        self.give_up = Some((at, CloseReason::ConnectionLost));
                    }
                    Some(ConnectionEvent::Connected(_)) => {
                        self.connected += 1;
                        if self.connected > 1 {
                            trace.line(format_args!("reconnected"));
                        }
                        self.give_up = None;
                    }
                    Some(_) => {}
                    None => return CloseReason::ConnectionLost,
                },
                () = sleep_until(deadline) => {
                    let (_, reason) = self.give_up.take().unwrap_or((
                        tokio::time::Instant::now(),
                        CloseReason::ConnectionLost,
                    ));
                    return reason;
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Reports a connection that ended under us and returns the exit code.
pub fn lost(config: &Config, trace: &Trace, reason: &CloseReason) -> ExitCode {
    match reason {
        CloseReason::Normal => ExitCode::from(exit::OK),
        CloseReason::Protocol(e) => {
            trace.line(format_args!("protocol error: {e}"));
            config.error(
                "Error: A network protocol error occurred when communicating with the broker.",
            );
            ExitCode::from(exit::PROTOCOL)
        }
        CloseReason::ServerDisconnect {
            reason,
            reason_string,
            ..
        } => {
            trace.client(format_args!("received DISCONNECT ({})", reason.as_u8()));
            if let Some(why) = reason_string {
                trace.line(format_args!("{why}"));
            }
            config.error("Error: The connection was lost.");
            ExitCode::from(exit::CONN_LOST)
        }
        CloseReason::Refused {
            reason,
            reason_string,
            ..
        } => {
            let code = match config.version {
                ProtocolVersion::V311 => reason.to_v311().unwrap_or(reason.as_u8()),
                _ => reason.as_u8(),
            };
            refused(config, *reason, code, reason_string.as_deref());
            ExitCode::from(code)
        }
        other => {
            // Keepalive timeout, transport failure, CONNACK never came.
            trace.line(format_args!("connection ended: {other}"));
            config.error("Error: The connection was lost.");
            ExitCode::from(exit::CONN_LOST)
        }
    }
}

/// Sends DISCONNECT (with the `-D disconnect` properties) and waits for the
/// connection to close.
pub async fn disconnect(client: &Client, config: &Config, trace: &Trace, with_will: bool) {
    // mosquitto_sub leaves with "Disconnect with Will Message" when -W runs
    // out or it is interrupted, so its will is published then (5.0 only;
    // 3.1.1's DISCONNECT has no reason code and always discards the will).
    let reason = if with_will && config.version == ProtocolVersion::V5 {
        DisconnectReasonCode::DisconnectWithWillMessage
    } else {
        DisconnectReasonCode::NormalDisconnection
    };
    let mut packet = Disconnect::new(reason);
    packet.properties = config.props.disconnect.clone();
    trace.client(format_args!("sending DISCONNECT"));
    let _ = client.disconnect_with(packet, Duration::from_secs(5)).await;
}

/// A subscribe `-F` format, checked when parsed as mosquitto checks it.
#[derive(Debug, Clone)]
pub struct Format(Vec<Piece>);

#[derive(Debug, Clone)]
enum Piece {
    Text(Vec<u8>),
    /// `%[0|-][width][.precision]X`.
    Field {
        conversion: u8,
        zero: bool,
        left: bool,
        width: usize,
        precision: Option<usize>,
    },
    /// `@X`: a strftime conversion, in UTC.
    Time(u8),
}

impl Format {
    /// Parses a format, with mosquitto's errors for bad ones.
    pub fn parse(format: &[u8]) -> Result<Format, Stop> {
        let incomplete = || bad("Incomplete format specifier.");
        let mut pieces = Vec::new();
        let mut text = Vec::new();
        let mut i = 0;
        while i < format.len() {
            let b = format[i];
            i += 1;
            match b {
                b'%' => {
                    let (mut zero, mut left) = (false, false);
                    match format.get(i) {
                        None => return incomplete(),
                        Some(b'0') => zero = true,
                        Some(b'-') => left = true,
                        _ => {}
                    }
                    if zero || left {
                        i += 1;
                    }
                    let mut width = 0usize;
                    while let Some(d) = format.get(i).filter(|d| d.is_ascii_digit()) {
                        width = width
                            .saturating_mul(10)
                            .saturating_add(usize::from(d - b'0'));
                        i += 1;
                    }
                    let mut precision = None;
                    if format.get(i) == Some(&b'.') {
                        i += 1;
                        let mut p = 0usize;
                        while let Some(d) = format.get(i).filter(|d| d.is_ascii_digit()) {
                            p = p.saturating_mul(10).saturating_add(usize::from(d - b'0'));
                            i += 1;
                        }
                        precision = Some(p);
                    }
                    let Some(&conversion) = format.get(i) else {
                        return incomplete();
                    };
                    i += 1;
                    if !b"%ACDEFIjlmPpqRrStUxX".contains(&conversion) {
                        return bad(format!(
                            "Invalid format specifier '{}'.",
                            char::from(conversion)
                        ));
                    }
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                    pieces.push(Piece::Field {
                        conversion,
                        zero,
                        left,
                        width,
                        precision,
                    });
                }
                b'@' => {
                    let Some(&conversion) = format.get(i) else {
                        return incomplete();
                    };
                    i += 1;
                    if conversion == b'@' {
                        text.push(b'@');
                    } else {
                        pieces.push(Piece::Text(std::mem::take(&mut text)));
                        pieces.push(Piece::Time(conversion));
                    }
                }
                b'\\' => {
                    let Some(&escape) = format.get(i) else {
                        return bad("Incomplete escape specifier.");
                    };
                    i += 1;
                    text.push(match escape {
                        b'\\' => b'\\',
                        b'0' => 0,
                        b'a' => 0x07,
                        b'e' => 0x1b,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'v' => 0x0b,
                        other => {
                            return bad(format!(
                                "Invalid escape specifier '{}'.",
                                char::from(other)
                            ));
                        }
                    });
                }
                other => text.push(other),
            }
        }
        pieces.push(Piece::Text(text));
        pieces.retain(|p| !matches!(p, Piece::Text(t) if t.is_empty()));
        Ok(Format(pieces))
    }

    /// The bytes to print for a message (without the final newline).
    pub fn render(&self, message: &Message, now: SystemTime) -> Vec<u8> {
        let mut out = Vec::new();
        for piece in &self.0 {
            match piece {
                Piece::Text(t) => out.extend_from_slice(t),
                Piece::Time(c) => out.extend_from_slice(strftime(*c, now).as_bytes()),
                Piece::Field {
                    conversion,
                    zero,
                    left,
                    width,
                    precision,
                } => {
                    let c = *conversion;
                    // An absent 5.0 property prints nothing; mosquitto
                    // still pads it to the width, except for %R, %D, %P.
                    let mut value = match field(c, message, now) {
                        Some(value) => value,
                        None if b"ACEFS".contains(&c) => Vec::new(),
                        None => continue,
                    };
                    // Which conversions take a width, a precision and zero
                    // padding is what mosquitto_sub 2.0 does, measured.
                    let width = if b"ACEFIlmpRStxX".contains(&c) {
                        *width
                    } else {
                        0
                    };
                    if let Some(p) = precision.filter(|_| b"CIRt".contains(&c)) {
                        value.truncate(p);
                    }
                    // Two mosquitto 2.0 quirks, kept so output matches: a
                    // width also caps %p, and %x/%X print only
                    // min(length, width) / 2 payload bytes.
                    if width > 0 && c == b'p' {
                        value.truncate(width);
                    }
                    if width > 0 && (c == b'x' || c == b'X') {
                        value.truncate(message.payload.len().min(width) / 2 * 2);
                    }
                    let pad = width.saturating_sub(value.len());
                    if pad == 0 {
                        out.extend_from_slice(&value);
                    } else if *left {
                        out.extend_from_slice(&value);
                        out.resize(out.len() + pad, b' ');
                    } else {
                        let fill = if *zero && b"AEFlmpSxX".contains(&c) {
                            b'0'
                        } else {
                            b' '
                        };
                        out.resize(out.len() + pad, fill);
                        out.extend_from_slice(&value);
                    }
                }
            }
        }
        out
    }
}

/// One `%` conversion's value; `None` for a 5.0 property the message lacks.
fn field(conversion: u8, m: &Message, now: SystemTime) -> Option<Vec<u8>> {
    let p = &m.properties;
    let text = |s: String| Some(s.into_bytes());
    match conversion {
        b'%' => text("%".into()),
        b'A' => p.topic_alias.map(|a| a.to_string().into_bytes()),
        b'C' => p.content_type.as_ref().map(|s| s.as_bytes().to_vec()),
        b'D' => p.correlation_data.as_ref().map(|d| d.to_vec()),
        b'E' => p
            .message_expiry_interval
            .map(|e| e.to_string().into_bytes()),
        b'F' => p.payload_format_indicator.map(|f| {
            match f {
                PayloadFormat::Utf8 => "1",
                _ => "0",
            }
            .into()
        }),
        b'I' => text(iso8601(now, false)),
        b'j' => Some(json(m, now)),
        b'l' => text(m.payload.len().to_string()),
        // plover's Message does not carry the packet identifier, so there
        // is no message id to print; 0 is what mosquitto prints for QoS 0.
        b'm' => text(m.packet_id.map_or(0, |id| id.get()).to_string()),
        b'P' => {
            if p.user_properties.is_empty() {
                return None;
            }
            let pairs: Vec<String> = p
                .user_properties
                .iter()
                .map(|(k, v)| format!("{k}:{v}"))
                .collect();
            text(pairs.join(" "))
        }
        b'p' => Some(m.payload.to_vec()),
        b'q' => text((m.qos as u8).to_string()),
        b'R' => p.response_topic.as_ref().map(|s| s.as_bytes().to_vec()),
        b'r' => text(u8::from(m.retain).to_string()),
        b'S' => p
            .subscription_identifiers
            .iter()
            .next()
            .map(|id| id.to_string().into_bytes()),
        b't' => Some(m.topic.as_bytes().to_vec()),
        b'U' => {
            let t = now.duration_since(UNIX_EPOCH).unwrap_or_default();
            text(format!("{}.{:09}", t.as_secs(), t.subsec_nanos()))
        }
        b'x' => text(m.payload.iter().map(|b| format!("{b:02x}")).collect()),
        b'X' => text(m.payload.iter().map(|b| format!("{b:02X}")).collect()),
        _ => None,
    }
}

/// `%j`: mosquitto's JSON line ("mid" only for QoS 1 and 2, as mosquitto).
fn json(m: &Message, now: SystemTime) -> Vec<u8> {
    let mut s = String::new();
    s.push_str(&format!(
        "{{\"tst\":\"{}\",\"topic\":{},\"qos\":{},\"retain\":{},\"payloadlen\":{}",
        iso8601(now, true),
        json_string(m.topic.as_bytes()),
        m.qos as u8,
        u8::from(m.retain),
        m.payload.len()
    ));
    if let Some(id) = m.packet_id {
        s.push_str(&format!(",\"mid\":{id}"));
    }
    let p = &m.properties;
    // mosquitto_sub lists properties in the order they came on the wire;
    // plover's Message does not keep that order, so this is the order a
    // mosquitto broker forwards a plover publisher's properties in (the
    // broker moves message expiry to the end when it counts it down).
    let mut props = Vec::new();
    if let Some(f) = p.payload_format_indicator {
        props.push(format!(
            "\"payload-format-indicator\":{}",
            u8::from(f == PayloadFormat::Utf8)
        ));
    }
    if let Some(a) = p.topic_alias {
        props.push(format!("\"topic-alias\":{a}"));
    }
    if let Some(r) = &p.response_topic {
        props.push(format!("\"response-topic\":{}", json_string(r.as_bytes())));
    }
    if let Some(d) = &p.correlation_data {
        props.push(format!("\"correlation-data\":{}", json_string(d)));
    }
    if let Some(c) = &p.content_type {
        props.push(format!("\"content-type\":{}", json_string(c.as_bytes())));
    }
    if !p.user_properties.is_empty() {
        let pairs: Vec<String> = p
            .user_properties
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}:{}",
                    json_string(k.as_bytes()),
                    json_string(v.as_bytes())
                )
            })
            .collect();
        props.push(format!("\"user-properties\":{{{}}}", pairs.join(",")));
    }
    if let Some(e) = p.message_expiry_interval {
        props.push(format!("\"message-expiry-interval\":{e}"));
    }
    if let Some(id) = p.subscription_identifiers.iter().next() {
        props.push(format!("\"subscription-identifier\":{id}"));
    }
    if !props.is_empty() {
        s.push_str(&format!(",\"properties\":{{{}}}", props.join(",")));
    }
    if m.payload.is_empty() {
        s.push_str(",\"payload\":null}");
    } else {
        s.push_str(&format!(",\"payload\":{}}}", json_string(&m.payload)));
    }
    s.into_bytes()
}

fn json_string(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    for c in String::from_utf8_lossy(bytes).chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A UTC calendar time, computed here because std has no calendar and the
/// examples take no date crate. Times print in UTC ("+0000"): finding the
/// local zone would need the C library.
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
    weekday: u32,
    yearday: u32,
    epoch: u64,
}

fn civil(now: SystemTime) -> Civil {
    let t = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = t.as_secs();
    let days = (secs / 86_400) as i64;
    let rem = (secs % 86_400) as u32;
    // Days since 1970-01-01 to a proleptic Gregorian date, counting in
    // 400-year eras that start on March 1st so leap days fall at the end.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    const BEFORE: [u32; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let yearday = BEFORE[(month - 1) as usize] + day + u32::from(leap && month > 2);
    Civil {
        year,
        month,
        day,
        hour: rem / 3_600,
        minute: rem / 60 % 60,
        second: rem % 60,
        nanos: t.subsec_nanos(),
        // 1970-01-01 was a Thursday.
        weekday: ((days + 4).rem_euclid(7)) as u32,
        yearday,
        epoch: secs,
    }
}

/// `%I` (`2016-08-10T09:47:38+0000`) or, for `%j`, mosquitto's
/// `2020-05-06T22:12:00.000000Z+0000`.
fn iso8601(now: SystemTime, json: bool) -> String {
    let c = civil(now);
    let date = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    );
    if json {
        format!("{date}.{:06}Z+0000", c.nanos / 1_000)
    } else {
        format!("{date}+0000")
    }
}

/// `@X`: what strftime's `%X` gives, in UTC, for the common conversions,
/// and mosquitto's `@N` (nanoseconds).
fn strftime(conversion: u8, now: SystemTime) -> String {
    const DAYS: [&str; 7] = [
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
    ];
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let c = civil(now);
    let day = DAYS[c.weekday as usize];
    let month = MONTHS[(c.month - 1) as usize];
    let hour12 = if c.hour.is_multiple_of(12) {
        12
    } else {
        c.hour % 12
    };
    match conversion {
        b'Y' => c.year.to_string(),
        b'y' => format!("{:02}", c.year.rem_euclid(100)),
        b'C' => format!("{:02}", c.year.div_euclid(100)),
        b'm' => format!("{:02}", c.month),
        b'd' => format!("{:02}", c.day),
        b'e' => format!("{:2}", c.day),
        b'j' => format!("{:03}", c.yearday),
        b'H' => format!("{:02}", c.hour),
        b'I' => format!("{hour12:02}"),
        b'M' => format!("{:02}", c.minute),
        b'S' => format!("{:02}", c.second),
        b'p' => if c.hour < 12 { "AM" } else { "PM" }.into(),
        b'a' => day[..3].into(),
        b'A' => day.into(),
        b'b' | b'h' => month[..3].into(),
        b'B' => month.into(),
        b'u' => (if c.weekday == 0 { 7 } else { c.weekday }).to_string(),
        b'w' => c.weekday.to_string(),
        b'F' => format!("{:04}-{:02}-{:02}", c.year, c.month, c.day),
        b'T' => format!("{:02}:{:02}:{:02}", c.hour, c.minute, c.second),
        b'R' => format!("{:02}:{:02}", c.hour, c.minute),
        b'D' => format!("{:02}/{:02}/{:02}", c.month, c.day, c.year.rem_euclid(100)),
        b's' => c.epoch.to_string(),
        b'N' => format!("{:09}", c.nanos),
        b'z' => "+0000".into(),
        b'Z' => "UTC".into(),
        b'n' => "\n".into(),
        b't' => "\t".into(),
        b'%' => "%".into(),
        // strftime leaves a conversion it does not know as it was written.
        other => format!("%{}", char::from(other)),
    }
}

/// Writes to stdout and flushes, as mosquitto_sub does after every message
/// so that a pipe sees each one at once. An error means stdout is gone
/// (e.g. `| head -1` exited).
pub fn emit(bytes: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()
}

/// The `--help` text.
fn usage(tool: Tool, prog: &str) -> String {
    let pad = " ".repeat(prog.len());
    let common_flags = format!(
        "{pad}        [-c] [-k keepalive] [-q qos] [-x session-expiry]
{pad}        [-i id] [-I id_prefix] [-M max_inflight]
{pad}        [-d] [--quiet] [--nodelay]
{pad}        [-V protocol-version]
{pad}        [--will-topic [--will-payload payload] [--will-qos qos] [--will-retain]]
{pad}        [-D command identifier value]
{pad}        [{{--cafile file | --capath dir}} [--cert file] [--key file]
{pad}          [--insecure] [--tls-alpn protocol] [--tls-version version]]
{pad}        [--tls-use-os-certs]
"
    );
    let common_help =
        " -c : disable clean session/enable persistent client mode: the broker keeps the
      session (subscriptions, queued QoS 1/2 messages) after we disconnect.
      Requires -i. With MQTT v5 the session never expires unless -x says otherwise.
 -d : enable debug messages: a line per packet sent or received, on stderr
      (mosquitto's clients print them on stdout, mixed with the messages).
 -D : define an MQTT v5 property; implies -V 5. Supported:
        -D connect session-expiry-interval|receive-maximum|maximum-packet-size|
                   topic-alias-maximum|request-response-information|
                   request-problem-information VALUE
        -D publish payload-format-indicator|message-expiry-interval|content-type|
                   response-topic|correlation-data VALUE
        -D will    will-delay-interval|payload-format-indicator|message-expiry-interval|
                   content-type|response-topic|correlation-data VALUE
        -D subscribe subscription-identifier VALUE
        -D disconnect session-expiry-interval VALUE
        -D connect|publish|will|subscribe|disconnect user-property KEY VALUE
 -h : mqtt host to connect to. Defaults to localhost.
 -i : id to use for this client. Defaults to plover_pub_ or plover_sub_ followed by
      the process id.
 -I : define the client id as id_prefix appended with the process id.
 -k : keep alive in seconds for this client. Defaults to 60. Any value from 0 (no
      keepalive) to 65535 is accepted, small ones too; mosquitto's clients reject
      values below 5.
 -L : specify user, password, hostname, port and topic as a URL in the form:
      mqtt(s)://[username[:password]@]host[:port]/topic
      As in mosquitto the path is the topic, and nothing is percent-decoded.
      mqtts:// turns on TLS as --tls-use-os-certs does (add --cafile for a private
      CA). ws:// and wss:// work the same way for MQTT over WebSocket (path /mqtt),
      when plover is built with its websocket feature.
 -M : the maximum inflight messages for QoS 1/2. Defaults to 20.
 -p : network port to connect to. Defaults to 1883 for plain MQTT and 8883 for MQTT over TLS.
 -P : provide a password (requires -u).
 -q : quality of service level to use. Defaults to 0.
 -u : provide a username
 -V : specify the version of the MQTT protocol to use when connecting.
      Can be mqttv5 (or 5) or mqttv311 (or 311). Defaults to mqttv311.
 -x : set the session-expiry-interval property on the CONNECT packet (MQTT v5 only):
      0-4294967294 seconds, or -1, 4294967295 or ∞ for a session that does not expire.
 --help : display this message (and exit 1, as mosquitto's clients do).
 --nodelay : accepted for compatibility; plover always disables Nagle's algorithm.
 --quiet : don't print error messages.
 --will-payload : payload for the client Will. Empty if not given.
 --will-qos : QoS level for the client Will.
 --will-retain : if given, make the client Will retained.
 --will-topic : the topic on which to publish the client Will.
 --cafile : path to a file containing trusted CA certificates (PEM) to enable encrypted
            communication. Only these CAs are trusted (with --tls-use-os-certs, these
            and the default roots).
 --capath : path to a directory containing trusted CA certificates to enable encrypted
            communication: every *.pem, *.crt and *.cer file in it, and OpenSSL's hashed
            names (no c_rehash needed).
 --cert : client certificate for authentication, if required by server (PEM, with any
          intermediate certificates after it).
 --key : client private key for authentication, if required by server (PEM: PKCS#8,
         PKCS#1 or SEC1; encrypted keys are not supported).
 --insecure : do not check that the server's certificate is for the host name (or
              address) connected to; it must still be signed by a trusted CA and be
              valid. Anyone with a certificate from a trusted CA can then pretend to be
              the broker: with --tls-use-os-certs that is anyone with a domain name.
              Use only with --cafile naming a private CA; a certificate that lists the
              name used is the safe way. A warning is printed (unless --quiet).
 --tls-alpn : TLS application layer protocol negotiation protocol.
 --tls-use-os-certs : trust the default roots: the Mozilla root certificates compiled into
                      plover (webpki-roots), not the operating system's store. Public
                      brokers' certificates (HiveMQ Cloud's, for one) chain to them.
 --tls-version : TLS protocol version, tlsv1.3 or tlsv1.2 (rustls speaks no older one).
                 By default either, preferring tlsv1.3.
";
    match tool {
        Tool::Publish => format!(
            "{prog} is a simple MQTT client, built on plover, that will publish a message on a
single topic and exit. It takes mosquitto_pub's options and gives its output and
exit codes.

Usage: {prog} {{[-h host] [-p port] [-u username] [-P password] -t topic | -L URL}}
{pad}        {{-f file | -l | -n | -m message | -s}}
{pad}        [-r] [--repeat N] [--repeat-delay time]
{common_flags}       {prog} --help

 -f : send the contents of a file as the message.
 -l : read messages from stdin, sending a separate message for each line.
 -m : message payload to send.
 -n : send a null (zero length) message.
 -r : message should be retained.
 -s : read message from stdin, sending the entire input as a message.
 -t : mqtt topic to publish to.
 --repeat : if publish mode is -f, -m, -n or -s, then repeat the publish N times.
 --repeat-delay : if using --repeat, wait time seconds between publishes. Defaults to 0.
{common_help}
Exit status: 0 once every message was sent and, at QoS 1 and 2, acknowledged,
across reconnects; 1 for bad arguments or an unreachable broker; the CONNACK
reason code when the broker refuses the connection; 7 if the client stops
reconnecting first.
"
        ),
        Tool::Subscribe => format!(
            "{prog} is a simple MQTT client, built on plover, that will subscribe to a set of
topics and print all messages it receives. It takes mosquitto_sub's options and
gives its output and exit codes.

Usage: {prog} {{[-h host] [-p port] [-u username] [-P password] -t topic | -L URL [-t topic]}}
{pad}        [-C msg_count] [-E] [-R] [--retained-only] [-T filter_out]
{pad}        [-F format] [-N] [-v] [-W timeout_secs] [--retain-as-published]
{common_flags}       {prog} --help

 -C : disconnect and exit after receiving the 'msg_count' messages.
 -E : exit once all subscriptions have been acknowledged by the broker.
 -F : output format: %t topic, %p payload, %q qos, %r retained flag, %l payload
      length, %m message id, %x/%X payload
      in hex, %I ISO-8601 time, %U unix time, %j JSON, %% a %; MQTT v5: %A topic
      alias, %C content type, %D correlation data, %E message expiry, %F payload
      format, %P user properties, %R response topic, %S subscription id;
      @X strftime conversions (UTC), @N nanoseconds; \\n \\t \\0 \\e ... escapes.
 -N : do not add an end of line character when printing the payload.
 -R : do not print stale messages (those with retain set).
 -t : mqtt topic to subscribe to. May be repeated multiple times.
 -T : topic string to filter out of results. May be repeated.
 -v : print published messages verbosely.
 -W : Specifies a timeout in seconds how long to process incoming MQTT messages.
 --retain-as-published : keep the publisher's retain flag (MQTT v5).
 --retained-only : only handle messages with the retained flag set, and exit when the
                   first non-retained message is received.
{common_help}
Exit status: 0 on success; 27 when -W runs out; 1 for bad arguments or an
unreachable broker; the CONNACK reason code when the broker refuses the
connection; 7 if the client stops reconnecting.
"
        ),
    }
}
