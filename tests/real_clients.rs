//! What the real mosquitto command-line clients send, read with our codec.
//!
//! Each test listens on a loopback port, starts `mosquitto_pub` or
//! `mosquitto_sub` against it, and plays the broker by hand: it decodes what
//! the tool sends with `plover::codec::decode`, answers with packets the
//! codec encodes (CONNACK, PUBACK, SUBACK, PUBLISH, PUBREL) so the tool goes
//! on, and checks that every decoded packet carries exactly what the command
//! line asked for. A second, independent implementation is the best check
//! that we read the wire as the rest of the world writes it.
//!
//! The bytes these tools sent (mosquitto 2.0.11) are also kept as byte
//! vectors in `src/codec/*.rs`, so they are checked without the tools. Run
//! with `--nocapture` to see the bytes of each packet again.
//!
//! The tools are required, not optional: if they are missing the tests fail
//! and say how to install them (CI installs `mosquitto-clients`).
//!
//! Plain threads and blocking sockets with timeouts keep this free of an
//! async runtime; every wait is bounded, and the tool is killed when a test
//! ends, whether it passed or not.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::num::NonZeroU16;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use plover::codec::{
    self, ConnAck, Connect, ConnectReasonCode, DisconnectReasonCode, Packet, ProtocolVersion,
    PubAck, PubAckReasonCode, PubRel, PubRelReasonCode, Publish, QoS, SubAck, SubAckReasonCode,
    SubscriptionOptions, TopicFilter, TopicName,
};

/// How long any single step (accept, one packet, the tool's exit) may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// How often to look again while polling for a connection or an exit.
const POLL: Duration = Duration::from_millis(10);
/// Large enough for anything these tools send.
const MAX_PACKET: usize = 64 * 1024;

const PUB_CLIENT_ID: &str = "plover-capture";
const SUB_CLIENT_ID: &str = "plover-capture-sub";
const TOPIC: &str = "home/living-room/temperature";
const PAYLOAD: &str = "21.5";
const FILTERS: [&str; 2] = ["home/+/temperature", "alarm/#"];

fn hex(bytes: &[u8]) -> String {
    let parts: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    parts.join(" ")
}

fn version_flag(version: ProtocolVersion) -> &'static str {
    match version {
        ProtocolVersion::V311 => "mqttv311",
        ProtocolVersion::V5 => "mqttv5",
    }
}

/// A running command-line tool; killed and reaped when dropped.
struct Tool {
    name: &'static str,
    child: Child,
}

impl Tool {
    fn spawn(name: &'static str, args: &[&str]) -> Tool {
        let child = Command::new(name)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        match child {
            Ok(child) => Tool { name, child },
            Err(e) if e.kind() == ErrorKind::NotFound => panic!(
                "`{name}` is not on PATH. These tests drive the real mosquitto \
                 command-line clients: install them (Debian/Ubuntu: \
                 `apt-get install -y mosquitto-clients`; CI installs them)."
            ),
            Err(e) => panic!("cannot start `{name}`: {e}"),
        }
    }

    /// Kills the tool and returns what it printed, for a failure message.
    fn output_after_kill(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut out = String::new();
        let mut err = String::new();
        if let Some(mut pipe) = self.child.stdout.take() {
            let _ = pipe.read_to_string(&mut out);
        }
        if let Some(mut pipe) = self.child.stderr.take() {
            let _ = pipe.read_to_string(&mut err);
        }
        format!("{} stdout: {out:?}; stderr: {err:?}", self.name)
    }

    fn fail(&mut self, what: &str) -> ! {
        let output = self.output_after_kill();
        panic!("{what}\n{output}");
    }

    /// Waits (bounded) for the tool to exit by itself; returns its stdout.
    fn wait_for_success(&mut self) -> String {
        let deadline = Instant::now() + STEP_TIMEOUT;
        let status: ExitStatus = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => thread::sleep(POLL),
                Ok(None) => self.fail(&format!("{} did not exit in time", self.name)),
                Err(e) => self.fail(&format!("waiting for {}: {e}", self.name)),
            }
        };
        if !status.success() {
            self.fail(&format!("{} exited with {status}", self.name));
        }
        let mut out = String::new();
        if let Some(mut pipe) = self.child.stdout.take() {
            pipe.read_to_string(&mut out)
                .expect("read the tool's stdout");
        }
        out
    }
}

impl Drop for Tool {
    fn drop(&mut self) {
        // Already exited is fine; this only makes sure nothing outlives the test.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Our end of the connection: a hand-played broker.
struct Broker {
    tool: Tool,
    stream: TcpStream,
    buf: BytesMut,
    /// The version to read and write in; a CONNECT names its own.
    version: ProtocolVersion,
}

impl Broker {
    /// Listens on a free loopback port, starts the tool with `args` (where
    /// "PORT" is replaced by the port) and accepts its connection.
    fn start(name: &'static str, args: &[&str]) -> Broker {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener
            .local_addr()
            .expect("local address")
            .port()
            .to_string();
        let args: Vec<&str> = args
            .iter()
            .map(|a| if *a == "PORT" { port.as_str() } else { a })
            .collect();
        let mut tool = Tool::spawn(name, &args);
        // Poll instead of blocking in accept(), so a tool that fails to
        // connect cannot hang the test.
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let deadline = Instant::now() + STEP_TIMEOUT;
        let stream = loop {
            match listener.accept() {
                Ok((stream, _)) => break stream,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => tool.fail(&format!("accept: {e}")),
            }
            if let Ok(Some(status)) = tool.child.try_wait() {
                tool.fail(&format!("{name} exited with {status} before connecting"));
            }
            if Instant::now() >= deadline {
                tool.fail(&format!("{name} did not connect in time"));
            }
            thread::sleep(POLL);
        };
        stream.set_nonblocking(false).expect("blocking stream");
        stream
            .set_read_timeout(Some(STEP_TIMEOUT))
            .expect("read timeout");
        stream
            .set_write_timeout(Some(STEP_TIMEOUT))
            .expect("write timeout");
        Broker {
            tool,
            stream,
            buf: BytesMut::new(),
            version: ProtocolVersion::V311,
        }
    }

    /// Reads the next whole packet the tool sends.
    fn receive(&mut self) -> Packet {
        let deadline = Instant::now() + STEP_TIMEOUT;
        let mut chunk = [0u8; 4096];
        // Each pass either returns or reads at least one byte, and no packet
        // here is anywhere near this many bytes.
        for _ in 0..MAX_PACKET {
            // Keep the raw bytes for the log before decode consumes them.
            let raw = match codec::frame_len(&self.buf, MAX_PACKET) {
                Ok(Some((_, total))) if self.buf.len() >= total => Some(self.buf[..total].to_vec()),
                _ => None,
            };
            match codec::decode(&mut self.buf, self.version, MAX_PACKET) {
                Ok(Some(packet)) => {
                    let raw = raw.unwrap_or_default();
                    eprintln!("{} sent {}", self.tool.name, hex(&raw));
                    return packet;
                }
                Ok(None) => {}
                Err(e) => {
                    let what = format!("cannot decode {}: {e}", hex(&self.buf));
                    self.tool.fail(&what);
                }
            }
            if Instant::now() >= deadline {
                self.tool.fail("timed out waiting for a packet");
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    let what = format!(
                        "connection closed; {} bytes of an unfinished packet: {}",
                        self.buf.len(),
                        hex(&self.buf)
                    );
                    self.tool.fail(&what);
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    self.tool.fail("timed out waiting for a packet");
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => self.tool.fail(&format!("read: {e}")),
            }
        }
        self.tool.fail("no whole packet arrived");
    }

    fn send(&mut self, packet: Packet) {
        let mut out = BytesMut::new();
        packet.encode(self.version, &mut out).expect("encode");
        if let Err(e) = self.stream.write_all(&out) {
            self.tool.fail(&format!("write: {e}"));
        }
    }

    /// Reads the CONNECT, checks what every test here expects of it, adopts
    /// its protocol version and accepts it.
    fn accept_connect(&mut self, version: ProtocolVersion, client_id: &str) -> Connect {
        let connect = match self.receive() {
            Packet::Connect(c) => *c,
            other => self.tool.fail(&format!("expected CONNECT, got {other:?}")),
        };
        assert_eq!(connect.protocol, version, "-V {}", version_flag(version));
        assert_eq!(connect.client_id, client_id, "-i");
        assert_eq!(connect.keep_alive, 60, "default keepalive (-k 60)");
        assert!(connect.clean_start, "clean start (no -c)");
        assert_eq!(connect.will, None, "no --will-*");
        assert_eq!(connect.username, None, "no -u");
        assert_eq!(connect.password, None, "no -P");
        assert_eq!(connect.properties.session_expiry_interval, None, "no -x");
        assert_eq!(connect.properties.authentication_method, None);
        assert!(
            connect.properties.user_properties.is_empty(),
            "no -D connect"
        );
        self.version = connect.protocol;
        self.send(Packet::ConnAck(Box::new(ConnAck::new(
            false,
            ConnectReasonCode::Success,
        ))));
        connect
    }

    /// Reads a DISCONNECT and checks it is a plain, normal one.
    fn expect_normal_disconnect(&mut self) {
        match self.receive() {
            Packet::Disconnect(d) => {
                assert_eq!(d.reason_code, DisconnectReasonCode::NormalDisconnection);
                assert!(d.properties.is_empty(), "{d:?}");
            }
            other => self
                .tool
                .fail(&format!("expected DISCONNECT, got {other:?}")),
        }
    }
}

/// `mosquitto_pub -t home/living-room/temperature -m 21.5 -q 1 -r`: CONNECT,
/// a retained QoS 1 PUBLISH, our PUBACK, DISCONNECT.
fn publish_with_mosquitto_pub(version: ProtocolVersion) {
    let mut broker = Broker::start(
        "mosquitto_pub",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            "PORT",
            "-V",
            version_flag(version),
            "-i",
            PUB_CLIENT_ID,
            "-t",
            TOPIC,
            "-m",
            PAYLOAD,
            "-q",
            "1",
            "-r",
        ],
    );
    broker.accept_connect(version, PUB_CLIENT_ID);

    let publish: Publish = match broker.receive() {
        Packet::Publish(p) => p,
        other => broker
            .tool
            .fail(&format!("expected PUBLISH, got {other:?}")),
    };
    assert_eq!(publish.topic, TOPIC, "-t");
    assert_eq!(publish.payload, PAYLOAD, "-m");
    assert_eq!(publish.qos, QoS::AtLeastOnce, "-q 1");
    assert!(publish.retain, "-r");
    assert!(!publish.dup, "a first delivery");
    assert!(publish.properties.is_empty(), "no -D publish: {publish:?}");
    let Some(packet_id) = publish.packet_id else {
        broker.tool.fail("a QoS 1 PUBLISH without a packet id");
    };
    broker.send(Packet::PubAck(PubAck::new(packet_id)));

    broker.expect_normal_disconnect();
    let stdout = broker.tool.wait_for_success();
    assert_eq!(stdout, "", "mosquitto_pub prints nothing on success");
}

/// `mosquitto_sub -t home/+/temperature -t alarm/# -q 2 -C 1`: CONNECT,
/// SUBSCRIBE, our SUBACK; then we deliver one QoS 2 message and it runs the
/// PUBREC / PUBREL / PUBCOMP exchange, prints the message and disconnects.
fn subscribe_with_mosquitto_sub(version: ProtocolVersion) {
    let mut broker = Broker::start(
        "mosquitto_sub",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            "PORT",
            "-V",
            version_flag(version),
            "-i",
            SUB_CLIENT_ID,
            "-t",
            FILTERS[0],
            "-t",
            FILTERS[1],
            "-q",
            "2",
            // Exit after one message, or after 10 s whatever happens.
            "-C",
            "1",
            "-W",
            "10",
        ],
    );
    broker.accept_connect(version, SUB_CLIENT_ID);

    let subscribe = match broker.receive() {
        Packet::Subscribe(s) => s,
        other => broker
            .tool
            .fail(&format!("expected SUBSCRIBE, got {other:?}")),
    };
    let expected: Vec<(TopicFilter, SubscriptionOptions)> = FILTERS
        .iter()
        .map(|f| {
            let filter = TopicFilter::try_from(*f).expect("valid filter");
            // -q 2 and no 5.0 option flags (--nl, --rap, --retain-handling).
            (filter, SubscriptionOptions::new(QoS::ExactlyOnce))
        })
        .collect();
    assert_eq!(subscribe.filters, expected, "-t ... -t ... -q 2");
    assert!(subscribe.properties.is_empty(), "{subscribe:?}");
    broker.send(Packet::SubAck(SubAck {
        packet_id: subscribe.packet_id,
        reason_codes: vec![SubAckReasonCode::GrantedQoS2; FILTERS.len()],
        properties: Default::default(),
    }));

    // A QoS 2 message matching "alarm/#".
    let id = NonZeroU16::new(7).expect("non-zero");
    let message = Publish::new(TopicName::from_static("alarm/kitchen"), "smoke")
        .with_qos(QoS::ExactlyOnce, Some(id));
    broker.send(Packet::Publish(message));
    match broker.receive() {
        Packet::PubRec(r) => {
            assert_eq!(r.packet_id, id);
            assert_eq!(r.reason_code, PubAckReasonCode::Success);
            assert!(r.properties.is_empty());
        }
        other => broker.tool.fail(&format!("expected PUBREC, got {other:?}")),
    }
    broker.send(Packet::PubRel(PubRel::new(id)));
    match broker.receive() {
        Packet::PubComp(c) => {
            assert_eq!(c.packet_id, id);
            assert_eq!(c.reason_code, PubRelReasonCode::Success);
            assert!(c.properties.is_empty());
        }
        other => broker
            .tool
            .fail(&format!("expected PUBCOMP, got {other:?}")),
    }

    broker.expect_normal_disconnect();
    let stdout = broker.tool.wait_for_success();
    assert_eq!(stdout, "smoke\n", "mosquitto_sub prints the payload");
}

#[test]
fn mosquitto_pub_v311_retained_qos1_publish() {
    publish_with_mosquitto_pub(ProtocolVersion::V311);
}

#[test]
fn mosquitto_pub_v5_retained_qos1_publish() {
    publish_with_mosquitto_pub(ProtocolVersion::V5);
}

#[test]
fn mosquitto_sub_v311_two_filters_and_a_qos2_delivery() {
    subscribe_with_mosquitto_sub(ProtocolVersion::V311);
}

#[test]
fn mosquitto_sub_v5_two_filters_and_a_qos2_delivery() {
    subscribe_with_mosquitto_sub(ProtocolVersion::V5);
}
