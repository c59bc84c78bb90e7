//! The everyday-pattern examples, each run to completion as a user runs
//! it (a child process) against a real mosquitto, with their output and
//! what they left on the broker checked: `sensor` (retained readings, a
//! last will), `automation` (wildcard subscriptions, commands in
//! reaction) and `persistent_consumer` (a session kept while away).
//! Request/response is `examples/request_response.rs`, tested in
//! `tests/request_response.rs`.
//!
//! The examples are built (`cargo build --examples`) by the first test
//! that needs one, so `cargo test --test patterns` alone runs the current
//! code (see `common::example`). Every wait is bounded
//! and every child is killed when the test ends.

mod common;

use std::process::Stdio;

use common::{Broker, client_id, example, within};
use plover::{Client, Message, ProtocolVersion, QoS, Subscription};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// How long any one child process may run.
const LIMIT: u64 = 20;

/// A running example whose stdout is read line by line as it comes.
struct Running {
    what: String,
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
}

#[derive(Debug)]
struct Output {
    code: Option<i32>,
    stdout: Vec<String>,
    stderr: String,
}

impl Output {
    fn has(&self, needle: &str) -> bool {
        self.stdout.iter().any(|l| l.contains(needle))
    }
}

fn start(name: &str, args: &[&str]) -> Running {
    let what = format!("{name} {}", args.join(" "));
    let mut child = Command::new(example(name))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let (tx, lines) = mpsc::unbounded_channel();
    let stdout = child.stdout.take().expect("stdout");
    tokio::spawn(async move {
        let mut reader = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Running {
        what,
        child,
        lines,
        seen: Vec::new(),
    }
}

impl Running {
    /// Waits for a line containing `needle` and returns it.
    async fn line(&mut self, needle: &str) -> String {
        loop {
            match within(
                &format!(
                    "`{}` to print {needle:?} (so far {:?})",
                    self.what, self.seen
                ),
                LIMIT,
                self.lines.recv(),
            )
            .await
            {
                Some(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                None => panic!(
                    "`{}` closed stdout before printing {needle:?}; it printed {:?}",
                    self.what, self.seen
                ),
            }
        }
    }

    /// Waits for it to exit; returns everything it printed.
    async fn finish(mut self) -> Output {
        let status = within(
            &format!("`{}` to finish (it printed {:?})", self.what, self.seen),
            LIMIT,
            self.child.wait(),
        )
        .await
        .expect("wait for the child");
        while let Some(line) = within("the rest of stdout", LIMIT, self.lines.recv()).await {
            self.seen.push(line);
        }
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr).await;
        }
        Output {
            code: status.code(),
            stdout: self.seen,
            stderr,
        }
    }

    /// Ends it like a crash or a power cut: no goodbye to the broker.
    async fn crash(mut self) {
        self.child.kill().await.expect("kill the child");
    }
}

async fn run(name: &str, args: &[&str]) -> Output {
    let out = start(name, args).finish().await;
    assert_eq!(
        out.code,
        Some(0),
        "`{name} {}` failed: {out:?}",
        args.join(" ")
    );
    out
}

async fn connected(port: u16, tag: &str) -> Client {
    let client = Client::new(client_id(tag));
    within("connect", 10, client.connect("127.0.0.1", port, 30))
        .await
        .expect("connect");
    client
}

async fn subscribed(client: &Client, filter: &str) -> Subscription {
    within(
        "subscribe",
        10,
        client.subscribe_stream(filter, QoS::AtLeastOnce),
    )
    .await
    .expect("subscribe")
    .1
}

async fn next(stream: &mut Subscription, what: &str) -> Message {
    within(what, 10, stream.recv())
        .await
        .unwrap_or_else(|| panic!("the stream ended waiting for {what}"))
}

async fn publish(client: &Client, topic: &str, payload: &str, qos: QoS, retain: bool) {
    let ack = within(
        "publish",
        10,
        client.publish(topic, payload.to_owned(), qos, retain),
    )
    .await
    .expect("publish");
    within("acknowledgement", 10, ack)
        .await
        .expect("acknowledged");
}

fn text(message: &Message) -> &str {
    message.payload_str().expect("UTF-8")
}

fn version_arg(version: ProtocolVersion) -> &'static str {
    match version {
        ProtocolVersion::V5 => "5",
        ProtocolVersion::V311 => "311",
    }
}

// ---------------------------------------------------------------------------
// sensor

async fn sensor_leaves_retained_readings_and_says_offline(version: ProtocolVersion) {
    let broker = Broker::start();
    let port = broker.port.to_string();
    let out = run(
        "sensor",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-V",
            version_arg(version),
            "--room",
            "lab",
            "--temperature",
            "18.5",
            "--interval",
            "0.05",
            "--count",
            "3",
        ],
    )
    .await;
    assert!(
        out.has("home/lab/status online (retained; the will says offline)"),
        "{out:?}"
    );
    let readings: Vec<&String> = out
        .stdout
        .iter()
        .filter(|l| l.starts_with("home/lab/temperature "))
        .collect();
    assert_eq!(readings.len(), 3, "{out:?}");
    assert_eq!(
        readings[0],
        "home/lab/temperature 18.5 (retained, acknowledged)"
    );
    assert!(
        out.has("home/lab/status offline; disconnected after 3 readings"),
        "{out:?}"
    );

    // Whoever subscribes now gets the last reading and the status at once.
    let last = readings[2].split(' ').nth(1).expect("a value").to_owned();
    let client = connected(broker.port, "sensor-check").await;
    let mut temperature = subscribed(&client, "home/lab/temperature").await;
    let mut status = subscribed(&client, "home/lab/status").await;
    let message = next(&mut temperature, "the retained reading").await;
    assert!(message.retain);
    assert_eq!(text(&message), last);
    let message = next(&mut status, "the retained status").await;
    assert!(message.retain);
    assert_eq!(text(&message), "offline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensor_v311() {
    sensor_leaves_retained_readings_and_says_offline(ProtocolVersion::V311).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensor_v5() {
    sensor_leaves_retained_readings_and_says_offline(ProtocolVersion::V5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_sensor_is_reported_offline_by_its_will() {
    let broker = Broker::start();
    let port = broker.port.to_string();
    let client = connected(broker.port, "will-check").await;
    let mut status = subscribed(&client, "home/cellar/status").await;
    let mut sensor = start(
        "sensor",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "--room",
            "cellar",
            "--interval",
            "0.1",
        ],
    );
    sensor.line("home/cellar/temperature").await;
    assert_eq!(text(&next(&mut status, "online").await), "online");
    sensor.crash().await;
    // Nobody published this but the broker, from the sensor's will.
    let will = next(&mut status, "the will").await;
    assert_eq!(text(&will), "offline");
    let late = connected(broker.port, "will-late").await;
    let mut retained = subscribed(&late, "home/cellar/status").await;
    let message = next(&mut retained, "the retained will").await;
    assert!(message.retain && text(&message) == "offline");
}

// ---------------------------------------------------------------------------
// automation

async fn automation_reacts_to_readings_and_wills(version: ProtocolVersion) {
    let broker = Broker::start();
    let port = broker.port.to_string();
    let client = connected(broker.port, "automation-check").await;
    let mut commands = subscribed(&client, "home/+/heater/set").await;
    // A reading from before the engine started, kept by the broker.
    publish(
        &client,
        "home/attic/temperature",
        "16.0",
        QoS::AtLeastOnce,
        true,
    )
    .await;

    let mut engine = start(
        "automation",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-V",
            version_arg(version),
            "--count",
            "6",
        ],
    );
    engine
        .line("subscribed to home/+/temperature and home/+/status")
        .await;
    let command = next(&mut commands, "the attic's heater").await;
    assert_eq!(
        (command.topic.as_str(), text(&command)),
        ("home/attic/heater/set", "on")
    );
    assert!(!command.retain, "commands are not retained");

    for (topic, payload) in [
        ("home/kitchen/temperature", "17.5"), // below 19: on
        ("home/kitchen/temperature", "20.0"), // in between: no change
        ("home/kitchen/temperature", "22.5"), // above 21: off
        ("home/kitchen/temperature", "warm"), // not a number: ignored
        ("home/bedroom/status", "offline"),   // a sensor's will: off
    ] {
        publish(&client, topic, payload, QoS::AtLeastOnce, false).await;
    }
    let mut seen = Vec::new();
    for _ in 0..3 {
        let command = next(&mut commands, "a heater command").await;
        seen.push(format!("{} {}", command.topic, text(&command)));
    }
    assert_eq!(
        seen,
        [
            "home/kitchen/heater/set on",
            "home/kitchen/heater/set off",
            "home/bedroom/heater/set off"
        ]
    );
    let out = engine.finish().await;
    assert_eq!(out.code, Some(0), "{out:?}");
    for expected in [
        "attic: 16.0 °C (retained)",
        "  -> home/attic/heater/set on",
        "kitchen: 17.5 °C",
        "kitchen: 20.0 °C",
        "  -> home/kitchen/heater/set off",
        "kitchen: ignoring reading \"warm\"",
        "bedroom: sensor offline",
        "  -> home/bedroom/heater/set off",
        "handled 6 messages",
    ] {
        assert!(
            out.has(expected),
            "automation should print {expected:?}: {out:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automation_v311() {
    automation_reacts_to_readings_and_wills(ProtocolVersion::V311).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automation_v5() {
    automation_reacts_to_readings_and_wills(ProtocolVersion::V5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensor_and_automation_together() {
    let broker = Broker::start();
    let port = broker.port.to_string();
    let client = connected(broker.port, "together").await;
    let mut commands = subscribed(&client, "home/+/heater/set").await;
    let mut engine = start(
        "automation",
        &["-h", "127.0.0.1", "-p", &port, "--count", "3"],
    );
    engine.line("subscribed").await;
    // A cold study: online, one reading, then a clean goodbye (offline).
    run(
        "sensor",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "--room",
            "study",
            "--temperature",
            "17",
            "--interval",
            "0.05",
            "--count",
            "1",
        ],
    )
    .await;
    assert_eq!(text(&next(&mut commands, "heater on").await), "on");
    assert_eq!(text(&next(&mut commands, "heater off").await), "off");
    let out = engine.finish().await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.has("study: sensor online"), "{out:?}");
    assert!(out.has("study: 17.0 °C"), "{out:?}");
    assert!(out.has("study: sensor offline"), "{out:?}");
}

// ---------------------------------------------------------------------------
// persistent_consumer

async fn persistent_consumer_gets_what_was_published_while_away(version: ProtocolVersion) {
    let broker = Broker::start();
    let port = broker.port.to_string();
    let id = client_id("consumer");
    let base = [
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-V",
        version_arg(version),
        "--id",
        &id,
    ];

    // 1. The first run makes the session and subscribes.
    let out = run(
        "persistent_consumer",
        &[&base[..], &["--idle", "0.3"]].concat(),
    )
    .await;
    assert!(
        out.has(&format!(
            "new session for {id:?}: subscribed to jobs/# at QoS 1"
        )),
        "{out:?}"
    );
    assert!(
        out.has("received 0 messages; disconnected, the session stays"),
        "{out:?}"
    );

    // 2. While it is away: QoS 1 jobs are queued for it, QoS 0 is not.
    let client = connected(broker.port, "producer").await;
    publish(&client, "jobs/0", "fire and forget", QoS::AtMostOnce, false).await;
    for n in 1..=3 {
        publish(
            &client,
            &format!("jobs/{n}"),
            &format!("job {n}"),
            QoS::AtLeastOnce,
            false,
        )
        .await;
    }

    // 3. Back again: the session is there and the jobs come, in order.
    let out = run(
        "persistent_consumer",
        &[&base[..], &["--idle", "1"]].concat(),
    )
    .await;
    assert!(
        out.has(&format!(
            "session present: the broker kept our session for {id:?}"
        )),
        "{out:?}"
    );
    let jobs: Vec<&String> = out
        .stdout
        .iter()
        .filter(|l| l.starts_with("jobs/"))
        .collect();
    assert_eq!(
        jobs,
        [
            "jobs/1 job 1 (QoS 1)",
            "jobs/2 job 2 (QoS 1)",
            "jobs/3 job 3 (QoS 1)"
        ],
        "{out:?}"
    );
    assert!(out.has("received 3 messages"), "{out:?}");

    // 4. They were acknowledged: nothing comes a second time.
    let out = run(
        "persistent_consumer",
        &[&base[..], &["--idle", "0.5", "--count", "1"]].concat(),
    )
    .await;
    assert!(out.has("session present"), "{out:?}");
    assert!(out.has("received 0 messages"), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_consumer_v311() {
    persistent_consumer_gets_what_was_published_while_away(ProtocolVersion::V311).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_consumer_v5() {
    persistent_consumer_gets_what_was_published_while_away(ProtocolVersion::V5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pattern_examples_reject_bad_arguments() {
    for (name, args) in [
        ("sensor", &["--room", "a/b"][..]),
        ("automation", &["--low", "22", "--high", "20"][..]),
        ("persistent_consumer", &["--bogus"][..]),
    ] {
        let out = start(name, args).finish().await;
        assert_eq!(out.code, Some(2), "{name} {args:?}: {out:?}");
        assert!(out.stderr.contains(&format!("usage: {name}")), "{out:?}");
    }
}
