//! Interoperability with a second, independent client: Python's paho-mqtt
//! 2.x, through a real mosquitto, in both directions and both versions.
//!
//! - paho subscribes and plover publishes: the script prints every message
//!   it receives as one JSON line (sorted keys, no spaces, ASCII only), and
//!   the test compares each line with the exact line it expects, so an
//!   extra, missing or altered field (topic, payload bytes, QoS, retain,
//!   every 5.0 property) fails the test.
//! - paho publishes and plover receives: the test checks every field of
//!   what arrives, including a retained message sent on subscribe.
//!
//! paho comes from a virtualenv under `target/paho-venv`, created on first
//! use (`common::paho_python`). Every wait is bounded; the Python process
//! is killed if the test times out or fails (`kill_on_drop`), and the
//! scripts carry their own watchdog as well.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use common::{Broker, TempDir, client_id, paho_python, within};
use plover::codec::{
    PayloadFormat, PublishProperties, RetainHandling, SubscribeProperties, SubscriptionOptions,
};
use plover::{Client, Message, Messages, ProtocolVersion, QoS};

const HOST: &str = "127.0.0.1";
const STEP: u64 = 15;

/// paho subscribes to argv[4] at QoS 2, prints `{"ready":[codes]}` once the
/// SUBACK is in, then one JSON line per message, and leaves after argv[5]
/// messages.
const PAHO_SUBSCRIBER: &str = r#"
import json, os, sys, threading
import paho.mqtt.client as mqtt

# Never outlive the test, whatever happens.
watchdog = threading.Timer(60, lambda: os._exit(3))
watchdog.daemon = True
watchdog.start()

host, port, proto, client_id, topic_filter, count = (
    sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]))
version = mqtt.MQTTv5 if proto == "5" else mqtt.MQTTv311

def out(obj):
    print(json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True), flush=True)

def plain(value):
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value

def on_connect(client, userdata, flags, reason_code, properties):
    if reason_code.is_failure:
        out({"error": str(reason_code)})
        os._exit(2)
    client.subscribe(topic_filter, qos=2)

def on_subscribe(client, userdata, mid, reason_code_list, properties):
    out({"ready": [rc.value for rc in reason_code_list]})

received = 0
def on_message(client, userdata, msg):
    global received
    record = {
        "topic": msg.topic,
        "payload": msg.payload.hex(),
        "qos": msg.qos,
        "retain": bool(msg.retain),
    }
    if version == mqtt.MQTTv5:
        props = msg.properties.json() if msg.properties is not None else {}
        record["properties"] = {k: plain(v) for k, v in props.items()}
    out(record)
    received += 1
    if received == count:
        client.disconnect()

client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=version)
client.on_connect = on_connect
client.on_subscribe = on_subscribe
client.on_message = on_message
client.connect(host, port, keepalive=30)
client.loop_forever()
"#;

/// paho publishes a fixed set of messages (see `paho_publishes`), waiting
/// for each to complete, then prints `{"done":N}` and disconnects.
const PAHO_PUBLISHER: &str = r#"
import json, os, sys, threading
import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes

watchdog = threading.Timer(60, lambda: os._exit(3))
watchdog.daemon = True
watchdog.start()

host, port, proto, client_id = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
v5 = proto == "5"
version = mqtt.MQTTv5 if v5 else mqtt.MQTTv311

connected = threading.Event()
def on_connect(client, userdata, flags, reason_code, properties):
    if reason_code.is_failure:
        print("connect failed: %s" % reason_code, file=sys.stderr, flush=True)
        os._exit(2)
    connected.set()

client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=version)
client.on_connect = on_connect
client.connect(host, port, keepalive=30)
client.loop_start()
if not connected.wait(15):
    print("no CONNACK", file=sys.stderr, flush=True)
    os._exit(2)

def props(**kwargs):
    if not v5:
        return None
    p = Properties(PacketTypes.PUBLISH)
    for name, value in kwargs.items():
        setattr(p, name, value)
    return p

messages = [
    ("interop/b/q1", bytes(range(256)), 1, False, None),
    ("interop/b/q2", b"\xff\x00\xfe\x80", 2, False, None),
    ("interop/b/empty", b"", 2, False, None),
    ("interop/b/retained", b"kept \xc3\xa9", 1, True, props(
        ContentType="text/plain; charset=utf-8",
        PayloadFormatIndicator=1,
        UserProperty=[("origin", "paho"), ("n", "1"), ("n", "2")],
    )),
    ("interop/b/props", b'{"ok":true}', 2, False, props(
        ContentType="application/json",
        ResponseTopic="interop/b/reply",
        CorrelationData=b"\x00\x01\xfe\xff",
        PayloadFormatIndicator=1,
        MessageExpiryInterval=3600,
        UserProperty=[("k", "v1"), ("a", "x"), ("k", "v2"), ("k", "v1")],
    )),
]
for topic, payload, qos, retain, properties in messages:
    info = client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
    info.wait_for_publish(timeout=15)
    if not info.is_published():
        print("publish to %s did not complete" % topic, file=sys.stderr, flush=True)
        os._exit(2)
print(json.dumps({"done": len(messages)}), flush=True)
client.disconnect()
client.loop_stop()
"#;

// ---------------------------------------------------------------------------
// The Python side.

/// A running script: its stdout line by line, its stderr collected for
/// failure messages. Killed when dropped.
struct Script {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    stderr: Arc<Mutex<String>>,
    _dir: TempDir,
}

impl Script {
    fn start(source: &str, args: &[String]) -> Script {
        let python: PathBuf = paho_python();
        let dir = TempDir::new("paho");
        let path = dir.path().join("script.py");
        std::fs::write(&path, source).expect("write the paho script");
        let mut child = Command::new(python)
            .arg("-u")
            .arg(&path)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start python");
        let stdout = child.stdout.take().expect("stdout");
        let mut stderr_pipe = child.stderr.take().expect("stderr");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let _ = stderr_pipe.read_to_end(&mut buf).await;
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf));
        });
        Script {
            child,
            lines: BufReader::new(stdout).lines(),
            stderr,
            _dir: dir,
        }
    }

    /// Kills the script and fails the test with what it said.
    async fn fail(&mut self, why: String) -> ! {
        let _ = self.child.kill().await;
        // Let the stderr reader see the end of the pipe.
        tokio::time::sleep(Duration::from_millis(100)).await;
        panic!(
            "{why}\npython stderr:\n{}",
            self.stderr.lock().unwrap().as_str()
        );
    }

    async fn line(&mut self, what: &str) -> String {
        match tokio::time::timeout(Duration::from_secs(STEP), self.lines.next_line()).await {
            Ok(Ok(Some(line))) => line,
            Ok(Ok(None)) => self.fail(format!("python exited before {what}")).await,
            Ok(Err(e)) => self.fail(format!("reading python's output: {e}")).await,
            Err(_) => {
                self.fail(format!("timed out after {STEP} s waiting for {what}"))
                    .await
            }
        }
    }

    async fn finish(mut self) {
        match tokio::time::timeout(Duration::from_secs(STEP), self.child.wait()).await {
            Ok(Ok(status)) if status.success() => {}
            Ok(Ok(status)) => self.fail(format!("python exited with {status}")).await,
            Ok(Err(e)) => self.fail(format!("waiting for python: {e}")).await,
            Err(_) => self.fail("python did not exit".to_string()).await,
        }
    }
}

fn proto_arg(version: ProtocolVersion) -> String {
    match version {
        ProtocolVersion::V311 => "311".into(),
        ProtocolVersion::V5 => "5".into(),
    }
}

// ---------------------------------------------------------------------------
// Just enough JSON to write the lines we expect, byte for byte as Python's
// `json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=True)`.

enum Json {
    Str(String),
    Int(u64),
    Bool(bool),
    List(Vec<Json>),
    Object(BTreeMap<String, Json>),
}

impl Json {
    fn str(s: &str) -> Json {
        Json::Str(s.to_string())
    }

    fn hex(bytes: &[u8]) -> Json {
        Json::Str(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    fn object<const N: usize>(fields: [(&str, Json); N]) -> Json {
        Json::Object(
            fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )
    }

    fn write(&self, out: &mut String) {
        match self {
            Json::Str(s) => {
                out.push('"');
                for c in s.chars() {
                    match c {
                        '"' => out.push_str("\\\""),
                        '\\' => out.push_str("\\\\"),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        '\t' => out.push_str("\\t"),
                        '\u{8}' => out.push_str("\\b"),
                        '\u{c}' => out.push_str("\\f"),
                        ' '..='~' => out.push(c),
                        _ => {
                            let mut units = [0u16; 2];
                            for unit in c.encode_utf16(&mut units) {
                                out.push_str(&format!("\\u{unit:04x}"));
                            }
                        }
                    }
                }
                out.push('"');
            }
            Json::Int(n) => out.push_str(&n.to_string()),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::List(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            // BTreeMap orders keys by bytes; for the ASCII keys used here
            // that is Python's sort_keys order.
            Json::Object(fields) => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    Json::Str(k.clone()).write(out);
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
        }
    }

    fn line(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }
}

/// A test string as whichever MQTT string type the caller wants
/// (`MqttString`, `TopicName` or `TopicFilter`).
fn s<T: for<'a> TryFrom<&'a str, Error: std::fmt::Debug>>(v: &str) -> T {
    T::try_from(v).expect("a valid test string")
}

// ---------------------------------------------------------------------------
// (a) plover publishes, paho receives.

struct Outgoing {
    topic: &'static str,
    payload: Bytes,
    qos: QoS,
    properties: PublishProperties,
    /// How paho reports the 5.0 properties (its names as keys).
    expected_properties: Vec<(&'static str, Json)>,
}

fn outgoing(version: ProtocolVersion) -> Vec<Outgoing> {
    let v5 = version == ProtocolVersion::V5;
    let mut out = Vec::new();
    for (topic, payload, qos) in [
        (
            "interop/a/q0",
            Bytes::from_static(b"plain text"),
            QoS::AtMostOnce,
        ),
        (
            "interop/a/q1",
            (0..=255u8).rev().collect::<Vec<u8>>().into(),
            QoS::AtLeastOnce,
        ),
        (
            "interop/a/q2",
            Bytes::from_static(&[0xff, 0x00, 0xc3, 0x28]),
            QoS::ExactlyOnce,
        ),
        ("interop/a/empty", Bytes::new(), QoS::ExactlyOnce),
    ] {
        let mut properties = PublishProperties::default();
        let mut expected_properties = Vec::new();
        if v5 {
            // Repeated and out-of-order names, and non-ASCII text.
            let users = [
                ("unit", "celsius"),
                ("sensor", "t\u{e9}l\u{e9}-1"),
                ("unit", "kelvin"),
                ("unit", "celsius"),
            ];
            for (k, v) in users {
                properties.user_properties.push(s(k), s(v));
            }
            properties.content_type = Some(s("application/x-plover; v=1"));
            expected_properties.push((
                "UserProperty",
                Json::List(
                    users
                        .iter()
                        .map(|(k, v)| Json::List(vec![Json::str(k), Json::str(v)]))
                        .collect(),
                ),
            ));
            expected_properties.push(("ContentType", Json::str("application/x-plover; v=1")));
            if qos == QoS::ExactlyOnce {
                properties.response_topic = Some(s("interop/a/reply"));
                properties.correlation_data = Some(Bytes::from_static(&[0, 0xff, 7]));
                expected_properties.push(("ResponseTopic", Json::str("interop/a/reply")));
                expected_properties.push(("CorrelationData", Json::hex(&[0, 0xff, 7])));
            }
            if qos == QoS::AtMostOnce {
                properties.payload_format_indicator = Some(PayloadFormat::Utf8);
                expected_properties.push(("PayloadFormatIndicator", Json::Int(1)));
            }
        }
        out.push(Outgoing {
            topic,
            payload,
            qos,
            properties,
            expected_properties,
        });
    }
    out
}

async fn paho_receives(version: ProtocolVersion) {
    let broker = Broker::start();
    let messages = outgoing(version);
    let mut script = Script::start(
        PAHO_SUBSCRIBER,
        &[
            HOST.to_string(),
            broker.port.to_string(),
            proto_arg(version),
            client_id("paho-sub"),
            "interop/a/#".to_string(),
            messages.len().to_string(),
        ],
    );
    let ready = script.line("paho's SUBACK").await;
    assert_eq!(ready, r#"{"ready":[2]}"#, "paho subscribed at QoS 2");

    let publisher = Client::builder(client_id("plover-pub"))
        .protocol(version)
        .build();
    within("connect", STEP, publisher.connect(HOST, broker.port, 30))
        .await
        .unwrap();
    for m in &messages {
        let handle = publisher
            .publish_with_properties(
                m.topic,
                m.payload.clone(),
                m.qos,
                false,
                m.properties.clone(),
            )
            .await
            .unwrap();
        within("publish completion", STEP, handle).await.unwrap();
    }

    for m in messages {
        let mut expected = Json::object([
            ("topic", Json::str(m.topic)),
            ("payload", Json::hex(&m.payload)),
            ("qos", Json::Int(m.qos as u64)),
            ("retain", Json::Bool(false)),
        ]);
        if let (ProtocolVersion::V5, Json::Object(fields)) = (version, &mut expected) {
            let properties = m
                .expected_properties
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            fields.insert("properties".to_string(), Json::Object(properties));
        }
        let expected = expected.line();
        let got = script.line(&format!("paho's report of {}", m.topic)).await;
        assert_eq!(got, expected, "what paho received on {}", m.topic);
    }
    script.finish().await;
    within("disconnect", STEP, publisher.disconnect())
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------
// (b) paho publishes, plover receives.

async fn next(messages: &mut Messages, what: &str) -> Message {
    within(what, STEP, messages.recv())
        .await
        .unwrap_or_else(|| panic!("message stream ended while waiting for {what}"))
}

fn user_pairs(p: &PublishProperties) -> Vec<(String, String)> {
    p.user_properties
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Checks the retained message's payload and (5.0) properties.
fn check_retained(version: ProtocolVersion, msg: &Message) {
    assert_eq!(msg.topic, "interop/b/retained");
    assert_eq!(&msg.payload[..], b"kept \xc3\xa9");
    assert_eq!(msg.qos, QoS::AtLeastOnce);
    if version == ProtocolVersion::V5 {
        let p = &msg.properties;
        assert_eq!(p.content_type, Some(s("text/plain; charset=utf-8")));
        assert_eq!(p.payload_format_indicator, Some(PayloadFormat::Utf8));
        assert_eq!(
            user_pairs(p),
            owned(&[("origin", "paho"), ("n", "1"), ("n", "2")])
        );
        assert_eq!(p.response_topic, None);
        assert_eq!(p.correlation_data, None);
        assert_eq!(p.message_expiry_interval, None);
    } else {
        assert!(msg.properties.is_empty());
    }
}

async fn plover_receives(version: ProtocolVersion) {
    let broker = Broker::start();
    let sub = Client::builder(client_id("plover-sub"))
        .protocol(version)
        .build();
    let mut messages = sub.messages();
    within("connect", STEP, sub.connect(HOST, broker.port, 30))
        .await
        .unwrap();
    // 5.0: Retain As Published, so the live retained message keeps its flag.
    let options = SubscriptionOptions {
        retain_as_published: version == ProtocolVersion::V5,
        ..SubscriptionOptions::new(QoS::ExactlyOnce)
    };
    let ack = within(
        "subscribe",
        STEP,
        sub.subscribe_many(&[("interop/b/#", options)], SubscribeProperties::default()),
    )
    .await
    .unwrap();
    assert_eq!(ack.reason_codes[0].granted_qos(), Some(QoS::ExactlyOnce));

    let mut script = Script::start(
        PAHO_PUBLISHER,
        &[
            HOST.to_string(),
            broker.port.to_string(),
            proto_arg(version),
            client_id("paho-pub"),
        ],
    );
    assert_eq!(script.line("paho's publishes").await, r#"{"done": 5}"#);
    script.finish().await;

    let msg = next(&mut messages, "QoS 1 from paho").await;
    assert_eq!(msg.topic, "interop/b/q1");
    assert_eq!(msg.payload, (0..=255u8).collect::<Vec<u8>>());
    assert_eq!(msg.qos, QoS::AtLeastOnce);
    assert!(!msg.retain);
    assert!(msg.properties.is_empty(), "{:?}", msg.properties);

    let msg = next(&mut messages, "QoS 2 from paho").await;
    assert_eq!(msg.topic, "interop/b/q2");
    assert_eq!(&msg.payload[..], b"\xff\x00\xfe\x80");
    assert_eq!(msg.qos, QoS::ExactlyOnce);
    assert!(!msg.retain);

    let msg = next(&mut messages, "empty QoS 2 from paho").await;
    assert_eq!(msg.topic, "interop/b/empty");
    assert!(msg.payload.is_empty());
    assert_eq!(msg.qos, QoS::ExactlyOnce);

    let msg = next(&mut messages, "retained message, live").await;
    check_retained(version, &msg);
    // Live delivery clears the retain flag, unless 5.0 Retain As Published.
    assert_eq!(
        msg.retain,
        version == ProtocolVersion::V5,
        "live retain flag"
    );

    let msg = next(&mut messages, "5.0 properties from paho").await;
    assert_eq!(msg.topic, "interop/b/props");
    assert_eq!(&msg.payload[..], br#"{"ok":true}"#);
    assert_eq!(msg.qos, QoS::ExactlyOnce);
    if version == ProtocolVersion::V5 {
        let p = &msg.properties;
        assert_eq!(p.content_type, Some(s("application/json")));
        assert_eq!(p.response_topic, Some(s("interop/b/reply")));
        assert_eq!(
            p.correlation_data.as_deref(),
            Some(&[0x00, 0x01, 0xfe, 0xff][..])
        );
        assert_eq!(p.payload_format_indicator, Some(PayloadFormat::Utf8));
        // Forwarded minus the seconds it waited in the broker [MQTT-3.3.2-6].
        let expiry = p.message_expiry_interval.expect("message expiry");
        assert!((3599..=3600).contains(&expiry), "message expiry {expiry}");
        assert_eq!(
            user_pairs(p),
            owned(&[("k", "v1"), ("a", "x"), ("k", "v2"), ("k", "v1")])
        );
        assert_eq!(p.topic_alias, None);
    } else {
        assert!(msg.properties.is_empty());
    }

    // A new subscriber gets the retained message from the broker's store,
    // flagged as retained, properties intact.
    let later = Client::builder(client_id("plover-later"))
        .protocol(version)
        .build();
    let mut later_messages = later.messages();
    within("connect", STEP, later.connect(HOST, broker.port, 30))
        .await
        .unwrap();
    let options = SubscriptionOptions {
        retain_handling: RetainHandling::SendAtSubscribe,
        ..SubscriptionOptions::new(QoS::ExactlyOnce)
    };
    within(
        "subscribe",
        STEP,
        later.subscribe_many(&[("interop/b/#", options)], SubscribeProperties::default()),
    )
    .await
    .unwrap();
    let msg = next(&mut later_messages, "the retained message on subscribe").await;
    check_retained(version, &msg);
    assert!(msg.retain, "sent because we subscribed");

    within("disconnect", STEP, later.disconnect())
        .await
        .unwrap();
    within("disconnect", STEP, sub.disconnect()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paho_receives_from_plover_v311() {
    paho_receives(ProtocolVersion::V311).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paho_receives_from_plover_v5() {
    paho_receives(ProtocolVersion::V5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plover_receives_from_paho_v311() {
    plover_receives(ProtocolVersion::V311).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plover_receives_from_paho_v5() {
    plover_receives(ProtocolVersion::V5).await;
}
