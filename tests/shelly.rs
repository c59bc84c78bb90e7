//! The Shelly examples as users run them: `shelly_plug` (the controller)
//! against `shelly_sim` (the simulated plug), both as child processes, over
//! a real mosquitto, plain and with TLS plus a password file (as HiveMQ
//! Cloud requires); every command, the timeout and the offline cases; the
//! simulator's topics and JSON as a plain MQTT client sees them; and the
//! `showcase`, with mosquitto and with its embedded broker.
//!
//! The examples are built (`cargo build --examples`) by the first test
//! that needs one, so `cargo test --test shelly` alone runs the current
//! code (see `common::example`). Every child process runs under a time
//! limit and is killed when its handle is dropped.

mod common;
mod pki;

// The examples' own code, for checking the simulator's JSON with the same
// reader, for the plug model, and for the embedded broker.
#[path = "../examples/mini_broker/mod.rs"]
mod mini_broker;
#[path = "../examples/shelly/mod.rs"]
mod shelly;

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{Broker, client_id, example, password_file, within};
use pki::{ClientFiles, pki, tls_broker_with};
use plover::{Client, Message, ProtocolVersion, QoS};
use shelly::json::Json;

/// How long any one child process may run.
const LIMIT: Duration = Duration::from_secs(20);

/// Environment variables the examples read, removed from every child so
/// that the developer's own settings cannot leak into a test.
const SHELLY_VARS: [&str; 8] = [
    "SHELLY_MQTT_URL",
    "SHELLY_MQTT_HOST",
    "SHELLY_MQTT_PORT",
    "SHELLY_MQTT_USERNAME",
    "SHELLY_MQTT_PASSWORD",
    "SHELLY_MQTT_CAFILE",
    "SHELLY_DEVICE",
    "PLOVER_SHOWCASE_EMBEDDED",
];

/// A finished process.
#[derive(Debug)]
struct Output {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// A running example; killed and reaped when dropped.
struct Proc {
    child: Child,
    what: String,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

/// Collects a pipe's text as it arrives, so a test can wait for a line.
fn collect(pipe: impl Read + Send + 'static, into: Arc<Mutex<String>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut pipe = pipe;
        let mut chunk = [0u8; 4096];
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => into
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&chunk[..n])),
            }
        }
    })
}

fn start(name: &str, args: &[&str], env: &[(&str, &str)]) -> Proc {
    let program = example(name);
    let what = format!("{name} {}", args.join(" "));
    let mut command = Command::new(&program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for var in SHELLY_VARS {
        command.env_remove(var);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let stdout = Arc::new(Mutex::new(String::new()));
    let stderr = Arc::new(Mutex::new(String::new()));
    let readers = vec![
        collect(child.stdout.take().expect("stdout"), stdout.clone()),
        collect(child.stderr.take().expect("stderr"), stderr.clone()),
    ];
    Proc {
        child,
        what,
        stdout,
        stderr,
        readers,
    }
}

impl Proc {
    fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until stdout contains `needle`.
    fn wait_for(&mut self, needle: &str) {
        let deadline = Instant::now() + LIMIT;
        while !self.stdout().contains(needle) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "`{}` exited ({status}) before printing {needle:?}\nstdout:\n{}\nstderr:\n{}",
                    self.what,
                    self.stdout(),
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "`{}` did not print {needle:?} within {LIMIT:?}\nstdout:\n{}\nstderr:\n{}",
                self.what,
                self.stdout(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends a signal (`INT` for Ctrl-C, `KILL` for a crash).
    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to exit, at most `limit`; past that it is
    /// killed and the test fails with what it printed.
    fn finish(mut self, limit: Duration) -> Output {
        let deadline = Instant::now() + limit;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                _ => break None,
            }
        };
        if status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        let out = Output {
            code: status.and_then(|s| s.code()),
            stdout: self.stdout(),
            stderr: self.stderr(),
        };
        assert!(
            status.is_some(),
            "`{}` did not finish within {limit:?}; it printed {out:?}",
            self.what
        );
        out
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs an example to completion.
fn run(name: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    start(name, args, env).finish(LIMIT)
}

/// Runs `shelly_plug` and expects exit status `code`.
fn plug(args: &[&str], env: &[(&str, &str)], code: i32) -> Output {
    let out = run("shelly_plug", args, env);
    assert_eq!(
        out.code,
        Some(code),
        "shelly_plug {} exited with {:?}, not {code}:\n{out:?}",
        args.join(" "),
        out.code
    );
    out
}

/// The watts in `..., drawing 60.2 W ...`.
fn watts(line: &str) -> f64 {
    let after = line
        .split("drawing ")
        .nth(1)
        .unwrap_or_else(|| panic!("no reading in {line:?}"));
    after
        .split(' ')
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no watts in {line:?}"))
}

fn line_with<'a>(text: &'a str, needle: &str) -> &'a str {
    text.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{text}"))
}

/// Broker arguments for a plain mosquitto of the harness.
fn plain_args(broker: &Broker) -> Vec<String> {
    vec![
        "--host".into(),
        "127.0.0.1".into(),
        "--port".into(),
        broker.port.to_string(),
        "--no-tls".into(),
    ]
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// A device id unique to this test.
fn device_id(n: u64) -> String {
    format!(
        "shellyplugsg3-{:06x}{n:06x}",
        std::process::id() & 0xFF_FFFF
    )
}

/// Starts `shelly_sim` for `device` and waits until it is online.
fn start_sim(device: &str, broker_args: &[&str], env: &[(&str, &str)]) -> Proc {
    let mut args = vec!["--device", device, "--interval", "0.2"];
    args.extend_from_slice(broker_args);
    let mut sim = start("shelly_sim", &args, env);
    sim.wait_for(&format!("{device} online at"));
    sim
}

// ---------------------------------------------------------------------------
// Plain MQTT.

#[test]
fn status_on_off_toggle_over_plain_mqtt() {
    let broker = Broker::start();
    let device = device_id(1);
    let b = plain_args(&broker);
    let _sim = start_sim(&device, &strs(&b), &[]);
    let with = |command: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = command.iter().map(|s| s.to_string()).collect();
        args.extend(["--device".to_owned(), device.clone()]);
        args.extend(b.iter().cloned());
        args
    };

    let out = plug(&strs(&with(&["status"])), &[], 0);
    let line = line_with(&out.stdout, &format!("{device} is OFF, drawing"));
    assert_eq!(watts(line), 0.0);
    assert!(out.stdout.contains("V, 0.000 A, 50.0 Hz"), "{out:?}");
    assert!(out.stdout.contains("last switched by init"), "{out:?}");

    let out = plug(&strs(&with(&["on"])), &[], 0);
    assert!(
        out.stdout
            .contains(&format!("{device}: switched ON (it was OFF)")),
        "{out:?}"
    );
    let line = line_with(&out.stdout, "now ON, drawing");
    let w = watts(line);
    assert!(
        (55.0..65.0).contains(&w),
        "a 60 W lamp draws about 60 W, not {w}: {line}"
    );

    let out = plug(&strs(&with(&["off"])), &[], 0);
    assert!(out.stdout.contains("switched OFF (it was ON)"), "{out:?}");
    assert_eq!(watts(line_with(&out.stdout, "now OFF, drawing")), 0.0);

    let out = plug(&strs(&with(&["toggle"])), &[], 0);
    assert!(out.stdout.contains("toggled from OFF"), "{out:?}");
    assert!(
        watts(line_with(&out.stdout, "now ON, drawing")) > 50.0,
        "{out:?}"
    );
    // Left on for at least the half second of this watch (the next
    // command switches it off only after the watch has ended), so the
    // energy counter has something to count: at 226 V, the lowest the
    // simulated mains goes, the lamp draws over 57 W, so > 0.008 Wh.
    let out = plug(&strs(&with(&["watch", "--for", "0.5"])), &[], 0);
    assert!(out.stdout.contains("] ON, drawing"), "{out:?}");

    let out = plug(&strs(&with(&["toggle", "-v"])), &[], 0);
    assert!(out.stdout.contains("toggled from ON"), "{out:?}");
    // --verbose shows the request and the answer.
    assert!(
        out.stdout.contains(&format!(
            "→ {device}/rpc  {{\"id\":1,\"src\":\"plover-shelly-"
        )),
        "{out:?}"
    );
    assert!(
        out.stdout.contains("\"method\":\"Switch.Toggle\""),
        "{out:?}"
    );
    assert!(
        out.stdout.contains("\"result\":{\"was_on\":true}"),
        "{out:?}"
    );

    let out = plug(&strs(&with(&["status"])), &[], 0);
    assert!(out.stdout.contains(&format!("{device} is OFF")), "{out:?}");
    assert!(out.stdout.contains("last switched by MQTT"), "{out:?}");
    // The energy counter has counted the time the lamp was on: the half
    // second watched at the least (printed to the mWh).
    let energy: f64 = line_with(&out.stdout, "energy used ")
        .split("energy used ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|wh| wh.parse().ok())
        .expect("energy in Wh");
    assert!(energy > 0.0, "{out:?}");
    assert!(energy >= 0.008, "at least 0.5 s at 57 W or more: {out:?}");
}

#[test]
fn watch_reports_readings_and_changes() {
    let broker = Broker::start();
    let device = device_id(2);
    let b = plain_args(&broker);
    let mut args = vec!["--on", "--load", "100"];
    args.extend(strs(&b));
    // A 100 W load, switched on from the start.
    let mut sim = start(
        "shelly_sim",
        &[
            &["--device", device.as_str(), "--interval", "0.2"][..],
            &args,
        ]
        .concat(),
        &[],
    );
    sim.wait_for("online at");

    let base: Vec<&str> = [&["--device", device.as_str()], &strs(&b)[..]].concat();

    // Bounded by time: the first reading at once, then one per report.
    let out = plug(&[&["watch", "--for", "1.5"], &base[..]].concat(), &[], 0);
    let readings: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.contains("] ON, drawing"))
        .collect();
    assert!(
        readings.len() >= 4,
        "expected a reading every 0.2 s:\n{out:?}"
    );
    for line in &readings {
        let w = watts(line);
        assert!((90.0..110.0).contains(&w), "a 100 W load: {line}");
    }
    assert!(
        out.stdout.contains(&format!("watching {device}")),
        "{out:?}"
    );

    // Bounded by count.
    let out = plug(&[&["watch", "--count", "3"], &base[..]].concat(), &[], 0);
    assert!(out.stdout.contains("3 readings"), "{out:?}");

    // A switch with toggle_after, then watch it switch back by itself.
    let out = plug(
        &[&["off", "--toggle-after", "1.5"], &base[..]].concat(),
        &[],
        0,
    );
    assert!(out.stdout.contains("switched OFF (it was ON)"), "{out:?}");
    assert!(
        out.stdout.contains("it switches ON again in 1.5 s"),
        "{out:?}"
    );
    let out = plug(&[&["watch", "--for", "3"], &base[..]].concat(), &[], 0);
    let lines: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.contains(", drawing"))
        .collect();
    let first_on = lines.iter().position(|l| l.contains("] ON"));
    assert!(
        lines
            .first()
            .is_some_and(|l| l.contains("] OFF, drawing 0.0 W"))
            && first_on.is_some(),
        "expected OFF, then ON when the timer ran out:\n{out:?}"
    );
    let out = plug(&[&["status"], &base[..]].concat(), &[], 0);
    assert!(out.stdout.contains("last switched by timer"), "{out:?}");
}

#[test]
fn rpc_results_and_errors() {
    let broker = Broker::start();
    let device = device_id(3);
    let b = plain_args(&broker);
    let _sim = start_sim(&device, &strs(&b), &[]);
    let base: Vec<&str> = [&["--device", device.as_str()], &strs(&b)[..]].concat();

    let out = plug(
        &[&["rpc", "Shelly.GetDeviceInfo"], &base[..]].concat(),
        &[],
        0,
    );
    let info = Json::parse(out.stdout.trim()).expect("the result is JSON");
    assert_eq!(info.get("id").and_then(Json::as_str), Some(device.as_str()));
    assert_eq!(
        info.get("model").and_then(Json::as_str),
        Some("S3PL-00112EU")
    );
    assert_eq!(info.get("gen").and_then(Json::as_f64), Some(3.0));

    let out = plug(&[&["rpc", "Shelly.GetStatus"], &base[..]].concat(), &[], 0);
    let status = Json::parse(out.stdout.trim()).expect("the result is JSON");
    assert_eq!(
        status
            .get("switch:0")
            .and_then(|s| s.get("output"))
            .and_then(Json::as_bool),
        Some(false)
    );
    assert_eq!(
        status
            .get("mqtt")
            .and_then(|m| m.get("connected"))
            .and_then(Json::as_bool),
        Some(true)
    );

    // Errors come back as Shelly sends them, with exit status 5.
    let out = plug(
        &[&["rpc", "Switch.Set", r#"{"id":0}"#], &base[..]].concat(),
        &[],
        5,
    );
    assert!(
        out.stderr
            .contains("the plug refused: Missing required argument 'on'! (code -103)"),
        "{out:?}"
    );
    let out = plug(
        &[&["rpc", "Switch.Set", r#"{"id":0,"on":"yes"}"#], &base[..]].concat(),
        &[],
        5,
    );
    assert!(out.stderr.contains("(code -103)"), "{out:?}");
    let out = plug(
        &[&["rpc", "Switch.Set", r#"{"id":1,"on":true}"#], &base[..]].concat(),
        &[],
        5,
    );
    assert!(
        out.stderr
            .contains("Argument 'id', value 1 not found! (code -105)"),
        "{out:?}"
    );
    let out = plug(&[&["rpc", "Switch.Explode"], &base[..]].concat(), &[], 5);
    assert!(
        out.stderr
            .contains("No handler for Switch.Explode (code 404)"),
        "{out:?}"
    );
    let out = plug(
        &[
            &[
                "rpc",
                "Switch.Set",
                r#"{"id":0,"on":true,"toggle_after":-1}"#,
            ],
            &base[..],
        ]
        .concat(),
        &[],
        5,
    );
    assert!(out.stderr.contains("toggle_after"), "{out:?}");

    // Bad arguments are exit status 2 with the usage.
    let out = plug(&[&["flip"], &base[..]].concat(), &[], 2);
    assert!(out.stderr.contains("unknown command \"flip\""), "{out:?}");
    assert!(out.stderr.contains("usage: shelly_plug"), "{out:?}");
    let out = plug(&["status", "--no-tls", "--host", "127.0.0.1"], &[], 2);
    assert!(out.stderr.contains("which plug? give --device"), "{out:?}");
}

#[test]
fn no_answer_times_out_with_what_to_check() {
    let broker = Broker::start();
    let b = plain_args(&broker);
    // Nobody is there: no simulator, nothing retained on .../online.
    let device = device_id(4);
    let started = Instant::now();
    let out = plug(
        &[
            &["on", "--device", device.as_str(), "--timeout", "1"],
            &strs(&b)[..],
        ]
        .concat(),
        &[],
        4,
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    let error = out.stderr.lines().next().unwrap_or("");
    assert!(
        error.starts_with(&format!("error: no answer from {device} within 1s.")),
        "{out:?}"
    );
    for hint in [
        "is the device online?",
        "device id or custom MQTT topic prefix",
        "Is MQTT enabled on it",
        "\"RPC over MQTT\"",
    ] {
        assert!(
            error.contains(hint),
            "the error should say {hint:?}: {error}"
        );
    }
    assert!(out.stdout.is_empty(), "{out:?}");
}

#[test]
fn online_but_silent_points_at_rpc_over_mqtt() {
    let broker = Broker::start();
    let b = plain_args(&broker);
    let device = device_id(5);
    // A plug that says it is online but does not answer RPC (RPC over MQTT
    // turned off in its settings).
    retain(broker.port, &format!("{device}/online"), "true");
    let out = plug(
        &[
            &["status", "--device", device.as_str(), "--timeout", "1"][..],
            &strs(&b),
        ]
        .concat(),
        &[],
        4,
    );
    assert!(
        out.stderr
            .contains(&format!("It says it is online ({device}/online is true)")),
        "{out:?}"
    );
    assert!(
        out.stderr.contains("\"RPC over MQTT\" is enabled"),
        "{out:?}"
    );
}

#[test]
fn retained_offline_is_reported_at_once() {
    let broker = Broker::start();
    let b = plain_args(&broker);
    let device = device_id(6);
    retain(broker.port, &format!("{device}/online"), "false");
    let started = Instant::now();
    // A long timeout: "offline" must not wait for it.
    let out = plug(
        &[
            &["on", "--device", device.as_str(), "--timeout", "30"][..],
            &strs(&b),
        ]
        .concat(),
        &[],
        3,
    );
    assert!(started.elapsed() < Duration::from_secs(10), "{out:?}");
    assert!(
        out.stderr
            .starts_with(&format!("error: plug offline: {device}/online is false")),
        "{out:?}"
    );
}

/// Publishes a retained message and waits for the PUBACK.
fn retain(port: u16, topic: &str, payload: &'static str) {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(retain_async(port, topic, payload));
}

async fn retain_async(port: u16, topic: &str, payload: &'static str) {
    let client = Client::new(client_id("retain"));
    within("connect", 10, client.connect("127.0.0.1", port, 30))
        .await
        .unwrap();
    let ack = within(
        "publish",
        10,
        client.publish(topic, payload, QoS::AtLeastOnce, true),
    )
    .await
    .unwrap();
    within("PUBACK", 10, ack).await.unwrap();
    within("disconnect", 10, client.disconnect()).await.unwrap();
}

#[test]
fn simulator_says_goodbye_on_ctrl_c_and_the_controller_reports_offline() {
    let broker = Broker::start();
    let device = device_id(7);
    let b = plain_args(&broker);
    let sim = start_sim(&device, &strs(&b), &[]);
    sim.signal("INT");
    let out = sim.finish(Duration::from_secs(10));
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout
            .contains("offline: published online=false and disconnected"),
        "{out:?}"
    );
    let out = plug(
        &[&["status", "--device", device.as_str()], &strs(&b)[..]].concat(),
        &[],
        3,
    );
    assert!(out.stderr.contains("plug offline"), "{out:?}");
}

#[test]
fn a_crashed_simulator_is_reported_offline_by_its_will() {
    let broker = Broker::start();
    let device = device_id(8);
    let b = plain_args(&broker);
    let sim = start_sim(&device, &strs(&b), &[]);
    // No goodbye: the broker notices the connection is gone and publishes
    // the will, online = false, retained.
    sim.signal("KILL");
    let out = sim.finish(Duration::from_secs(10));
    assert_ne!(out.code, Some(0));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = run(
            "shelly_plug",
            &[
                &["status", "--device", device.as_str(), "--timeout", "1"],
                &strs(&b)[..],
            ]
            .concat(),
            &[],
        );
        if out.code == Some(3) {
            assert!(out.stderr.contains("plug offline"), "{out:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no will seen: {out:?}\n{}",
            broker.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------------------
// The simulator as any MQTT client sees it.

/// Waits for the next message on `stream`.
async fn next(stream: &mut plover::Subscription, what: &str) -> Message {
    within(what, 10, stream.recv())
        .await
        .unwrap_or_else(|| panic!("the stream ended waiting for {what}"))
}

fn json_of(message: &Message) -> Json {
    Json::from_payload(&message.payload)
        .unwrap_or_else(|e| panic!("{} is not JSON ({e}): {:?}", message.topic, message.payload))
}

async fn simulator_topics_and_json(version: ProtocolVersion) {
    let broker = Broker::start();
    let device = device_id(if version == ProtocolVersion::V5 {
        9
    } else {
        10
    });
    let b = plain_args(&broker);
    let _sim = start_sim(&device, &strs(&b), &[]);
    assert!(shelly::is_device_id(&device));

    let client = Client::builder(client_id("shelly-observer"))
        .protocol(version)
        .build();
    within("connect", 10, client.connect("127.0.0.1", broker.port, 30))
        .await
        .unwrap();
    let (_, mut online) = client
        .subscribe_stream(&format!("{device}/online"), QoS::AtLeastOnce)
        .await
        .unwrap();
    let (_, mut status) = client
        .subscribe_stream(&format!("{device}/status/switch:0"), QoS::AtLeastOnce)
        .await
        .unwrap();
    let (_, mut events) = client
        .subscribe_stream(&format!("{device}/events/rpc"), QoS::AtLeastOnce)
        .await
        .unwrap();

    // online: retained true, at QoS 1.
    let message = next(&mut online, "online").await;
    assert_eq!(message.payload, "true");
    assert!(message.retain);
    assert_eq!(message.qos, QoS::AtLeastOnce);

    // The plain command topic switches, and the status follows.
    client
        .publish(
            &format!("{device}/command/switch:0"),
            "on",
            QoS::AtLeastOnce,
            false,
        )
        .await
        .unwrap();
    let full = loop {
        let message = next(&mut status, "status/switch:0").await;
        let full = json_of(&message);
        if full.get("output").and_then(Json::as_bool) == Some(true) {
            break full;
        }
    };
    for field in [
        "id", "source", "output", "apower", "voltage", "current", "freq",
    ] {
        assert!(
            full.get(field).is_some(),
            "status/switch:0 lacks {field}: {full}"
        );
    }
    let energy = full.get("aenergy").expect("aenergy");
    assert!(
        energy.get("total").and_then(Json::as_f64).is_some(),
        "{full}"
    );
    assert_eq!(
        energy
            .get("by_minute")
            .and_then(Json::as_array)
            .map(<[Json]>::len),
        Some(3)
    );
    assert!(
        energy.get("minute_ts").and_then(Json::as_f64).is_some(),
        "{full}"
    );
    let temperature = full.get("temperature").expect("temperature");
    let (c, f) = (
        temperature.get("tC").and_then(Json::as_f64).unwrap(),
        temperature.get("tF").and_then(Json::as_f64).unwrap(),
    );
    assert!((f - (c * 9.0 / 5.0 + 32.0)).abs() < 0.2, "{full}");
    let status_of = shelly::SwitchStatus::from_json(&full).expect("a switch status");
    assert!(status_of.output && status_of.apower > 50.0, "{full}");
    assert!((220.0..240.0).contains(&status_of.voltage), "{full}");
    assert!((49.0..51.0).contains(&status_of.freq), "{full}");
    assert_eq!(status_of.source, "MQTT");

    // NotifyStatus frames name the device and <prefix>/events.
    let frame = loop {
        let frame = json_of(&next(&mut events, "events/rpc").await);
        let changes = frame.get("params").and_then(|p| p.get("switch:0"));
        if changes
            .and_then(|c| c.get("output"))
            .and_then(Json::as_bool)
            == Some(true)
        {
            break frame;
        }
    };
    assert_eq!(
        frame.get("src").and_then(Json::as_str),
        Some(device.as_str())
    );
    assert_eq!(
        frame.get("dst").and_then(Json::as_str),
        Some(format!("{device}/events").as_str())
    );
    assert_eq!(
        frame.get("method").and_then(Json::as_str),
        Some("NotifyStatus")
    );
    assert!(
        frame
            .get("params")
            .and_then(|p| p.get("ts"))
            .and_then(Json::as_f64)
            .is_some()
    );

    // `toggle` and `off` on the command topic.
    for (command, expect) in [("toggle", false), ("on", true), ("off", false)] {
        client
            .publish(
                &format!("{device}/command/switch:0"),
                command,
                QoS::AtLeastOnce,
                false,
            )
            .await
            .unwrap();
        loop {
            let full = json_of(&next(&mut status, command).await);
            if full.get("output").and_then(Json::as_bool) == Some(expect) {
                break;
            }
        }
    }

    // `status_update` on <prefix>/command republishes the status.
    client
        .publish(
            &format!("{device}/command"),
            "status_update",
            QoS::AtLeastOnce,
            false,
        )
        .await
        .unwrap();
    json_of(&next(&mut status, "status_update").await);

    // RPC with our own src: the answer comes on <src>/rpc.
    let src = client_id("rpc-caller");
    let (_, mut answers) = client
        .subscribe_stream(&format!("{src}/rpc"), QoS::AtLeastOnce)
        .await
        .unwrap();
    client
        .publish(
            &format!("{device}/rpc"),
            format!(r#"{{"id":"abc","src":"{src}","method":"Switch.Toggle","params":{{"id":0}}}}"#),
            QoS::AtLeastOnce,
            false,
        )
        .await
        .unwrap();
    let answer = json_of(&next(&mut answers, "RPC answer").await);
    assert_eq!(answer.get("id").and_then(Json::as_str), Some("abc"));
    assert_eq!(
        answer.get("src").and_then(Json::as_str),
        Some(device.as_str())
    );
    assert_eq!(answer.get("dst").and_then(Json::as_str), Some(src.as_str()));
    assert_eq!(
        answer
            .get("result")
            .and_then(|r| r.get("was_on"))
            .and_then(Json::as_bool),
        Some(false)
    );
    within("disconnect", 10, client.disconnect()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_topics_and_json_v311() {
    simulator_topics_and_json(ProtocolVersion::V311).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_topics_and_json_v5() {
    simulator_topics_and_json(ProtocolVersion::V5).await;
}

#[test]
fn plug_model_answers_and_refuses_like_a_shelly() {
    let device = "shellyplugsg3-0123456789ab";
    let mut plug = shelly::sim::Plug::new(shelly::sim::SimConfig::new(device));
    let call = |plug: &mut shelly::sim::Plug, request: &str| {
        let (answer, switched) = plug.rpc(request.as_bytes());
        let (topic, text) = answer.expect("an answer");
        assert_eq!(topic, "me/rpc");
        (Json::parse(&text).expect("JSON"), switched)
    };
    let (answer, switched) = call(
        &mut plug,
        r#"{"id":7,"src":"me","method":"Switch.Set","params":{"id":0,"on":true}}"#,
    );
    assert!(switched);
    assert_eq!(answer.get("id").and_then(Json::as_f64), Some(7.0));
    assert_eq!(answer.get("dst").and_then(Json::as_str), Some("me"));
    assert!(plug.output());
    assert!(plug.status().apower > 50.0);

    let (answer, switched) = call(
        &mut plug,
        r#"{"id":8,"src":"me","method":"Switch.Set","params":{"id":0}}"#,
    );
    assert!(!switched);
    let error = answer.get("error").expect("an error object");
    assert_eq!(error.get("code").and_then(Json::as_f64), Some(-103.0));
    assert!(answer.get("result").is_none());

    // No src: nowhere to answer.
    assert_eq!(
        plug.rpc(br#"{"id":1,"method":"Switch.Toggle"}"#),
        (None, false)
    );
    // Not JSON at all.
    assert_eq!(plug.rpc(b"\xff{{{"), (None, false));

    // The meter: energy adds up while the load is on.
    let before = plug.status().energy_total;
    plug.measure(shelly::unix_time() + 36.0);
    let after = plug.status().energy_total;
    assert!(
        after - before > 0.5,
        "60 W for 36 s is 0.6 Wh: {before} -> {after}"
    );
}

#[test]
fn json_reader_reads_what_shelly_sends_and_refuses_garbage() {
    let text = r#" {"a": [1, -2.5e1, true, false, null], "s": "tab\there \u00e9\ud83d\ude00 \"q\"", "o": {}} "#;
    let value = Json::parse(text).expect("valid JSON");
    let list = value.get("a").and_then(Json::as_array).unwrap();
    assert_eq!(list[1].as_f64(), Some(-25.0));
    assert_eq!(
        value.get("s").and_then(Json::as_str),
        Some("tab\there é😀 \"q\"")
    );
    // What it writes, it reads back.
    assert_eq!(Json::parse(&value.to_string()).unwrap(), value);
    for bad in [
        "",
        "{",
        "[1,]",
        "{\"a\" 1}",
        "tru",
        "\"open",
        "1 2",
        "{\"a\":\u{1}}",
    ] {
        assert!(Json::parse(bad).is_err(), "{bad:?} must not parse");
    }
    // Deep nesting is refused rather than overflowing the stack.
    assert!(Json::parse(&"[".repeat(100_000)).is_err());
}

// ---------------------------------------------------------------------------
// TLS with a user name and password, as HiveMQ Cloud requires.

const USER: &str = "plug-owner";
const PASSWORD: &str = "s3cret-Pass";

fn tls_password_broker() -> Broker {
    tls_broker_with(
        &pki().server,
        "allow_anonymous false\npassword_file {dir}/passwords\n",
        |dir| {
            password_file(dir, USER, PASSWORD);
        },
    )
}

#[test]
fn every_command_over_tls_with_a_password() {
    let broker = tls_password_broker();
    let files = ClientFiles::new();
    let ca = files.arg("ca.pem");
    let port = broker.port.to_string();
    let device = device_id(11);

    // The simulator takes host, port, credentials and CA from the
    // environment, as the README suggests for secrets.
    let env = [
        ("SHELLY_MQTT_HOST", "localhost"),
        ("SHELLY_MQTT_PORT", port.as_str()),
        ("SHELLY_MQTT_USERNAME", USER),
        ("SHELLY_MQTT_PASSWORD", PASSWORD),
        ("SHELLY_MQTT_CAFILE", ca.as_str()),
    ];
    let mut sim = start(
        "shelly_sim",
        &["--device", &device, "--interval", "0.2"],
        &env,
    );
    sim.wait_for(&format!(
        "{device} online at mqtts://localhost:{port} as user {USER} (TLS, trusting the given CA)"
    ));

    // The controller: once with a URL carrying the credentials, once with
    // flags, once from the environment.
    let url = format!("mqtts://{USER}:{PASSWORD}@localhost:{port}");
    let by_url = [
        "--url",
        url.as_str(),
        "--cafile",
        ca.as_str(),
        "--device",
        device.as_str(),
    ];
    let by_flags = [
        "--host",
        "localhost",
        "--port",
        port.as_str(),
        "--username",
        USER,
        "--password",
        PASSWORD,
        "--cafile",
        ca.as_str(),
        "--device",
        device.as_str(),
    ];

    let out = plug(&[&["status"], &by_url[..]].concat(), &[], 0);
    assert!(
        out.stdout
            .contains(&format!("{device} is OFF, drawing 0.0 W")),
        "{out:?}"
    );
    let out = plug(&[&["on"], &by_flags[..]].concat(), &[], 0);
    assert!(out.stdout.contains("switched ON (it was OFF)"), "{out:?}");
    assert!(watts(line_with(&out.stdout, "now ON")) > 50.0, "{out:?}");
    let out = plug(&["off", "--device", device.as_str()], &env, 0);
    assert!(out.stdout.contains("switched OFF (it was ON)"), "{out:?}");
    let out = plug(&[&["toggle"], &by_url[..]].concat(), &[], 0);
    assert!(out.stdout.contains("toggled from OFF"), "{out:?}");
    let out = plug(
        &[&["watch", "--count", "3"], &by_flags[..]].concat(),
        &[],
        0,
    );
    assert_eq!(
        out.stdout
            .lines()
            .filter(|l| l.contains("] ON, drawing"))
            .count(),
        3,
        "{out:?}"
    );
    let out = plug(&[&["status"], &by_flags[..]].concat(), &[], 0);
    assert!(out.stdout.contains(&format!("{device} is ON")), "{out:?}");

    // Nobody there for another device: the timeout, over TLS.
    let other = device_id(12);
    let out = plug(
        &["status", "--device", other.as_str(), "--timeout", "1"],
        &env,
        4,
    );
    assert!(out.stderr.contains("no answer from"), "{out:?}");

    sim.signal("INT");
    let out = sim.finish(Duration::from_secs(10));
    assert_eq!(out.code, Some(0), "{out:?}");
    let out = plug(&[&["status"], &by_url[..]].concat(), &[], 3);
    assert!(out.stderr.contains("plug offline"), "{out:?}");
}

#[test]
fn tls_mistakes_are_explained() {
    let broker = tls_password_broker();
    let files = ClientFiles::new();
    let ca = files.arg("ca.pem");
    let port = broker.port.to_string();
    let device = device_id(13);
    let common = [
        "status",
        "--device",
        device.as_str(),
        "--host",
        "localhost",
        "--port",
        port.as_str(),
    ];

    // A wrong password.
    let out = plug(
        &[
            &common[..],
            &[
                "--username",
                USER,
                "--password",
                "wrong",
                "--cafile",
                ca.as_str(),
            ],
        ]
        .concat(),
        &[],
        1,
    );
    assert!(
        out.stderr.contains("check the user name and password"),
        "{out:?}"
    );
    assert!(
        !out.stderr.contains("wrong"),
        "the password must not be printed: {out:?}"
    );

    // The default trust store does not know the test CA.
    let out = plug(
        &[&common[..], &["--username", USER, "--password", PASSWORD]].concat(),
        &[],
        1,
    );
    assert!(out.stderr.contains("not trusted"), "{out:?}");
    assert!(out.stderr.contains("--cafile"), "{out:?}");

    // Plain MQTT to a TLS port.
    let out = plug(
        &[
            &common[..],
            &["--no-tls", "--username", USER, "--password", PASSWORD],
        ]
        .concat(),
        &[],
        1,
    );
    assert!(
        out.stderr.starts_with("error: broker: mqtt://localhost:"),
        "{out:?}"
    );
}

// ---------------------------------------------------------------------------
// The command lines: --help, and settings that do not go together.

#[test]
fn help_goes_to_stdout_and_succeeds() {
    for (name, usage) in [
        ("shelly_plug", "usage: shelly_plug COMMAND"),
        ("shelly_sim", "usage: shelly_sim [options]"),
    ] {
        // Even with an environment that would be refused otherwise.
        for env in [&[][..], &[("SHELLY_MQTT_PORT", "abc")][..]] {
            let out = run(name, &["--help"], env);
            assert_eq!(out.code, Some(0), "{name} --help: {out:?}");
            assert!(out.stdout.starts_with(usage), "{out:?}");
            assert!(out.stdout.contains("--url URL"), "{out:?}");
            assert!(out.stderr.is_empty(), "{out:?}");
        }
    }
}

/// Runs `name` with `args` and `env`, expecting the bad-arguments exit
/// status 2, and returns stderr's first line.
fn refused_arguments(name: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = run(name, args, env);
    assert_eq!(out.code, Some(2), "{name} {args:?} {env:?}: {out:?}");
    assert!(out.stderr.contains(&format!("usage: {name}")), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    out.stderr.lines().next().unwrap_or("").to_owned()
}

#[test]
fn settings_that_contradict_a_url_are_refused() {
    let plug = |args: &[&str], env: &[(&str, &str)]| {
        let mut all = vec!["status", "--device", "shellyplugsg3-000000000001"];
        all.extend_from_slice(args);
        refused_arguments("shelly_plug", &all, env)
    };
    let url = "mqtt://127.0.0.1:1883";
    let error = plug(&["--url", url, "--port", "1884"], &[]);
    assert_eq!(
        error,
        "error: --port goes with a host, not with --url: put the port in the URL \
         (mqtts://HOST:PORT)"
    );
    // In either order.
    assert_eq!(plug(&["--port", "1884", "--url", url], &[]), error);
    let error = plug(&["--url", url, "--no-tls"], &[]);
    assert!(error.contains("--no-tls does not go with --url"), "{error}");
    let error = plug(&["--url", url, "--cafile", "/nonexistent/ca.pem"], &[]);
    assert!(
        error.contains("--cafile (or SHELLY_MQTT_CAFILE) needs TLS"),
        "{error}"
    );
    // Both from the environment: named as such.
    let error = plug(
        &[],
        &[("SHELLY_MQTT_URL", url), ("SHELLY_MQTT_PORT", "1884")],
    );
    assert!(
        error.contains("SHELLY_MQTT_PORT goes with a host, not with SHELLY_MQTT_URL"),
        "{error}"
    );
    // The simulator takes the same options, and refuses the same.
    let error = refused_arguments("shelly_sim", &["--url", url, "--no-tls"], &[]);
    assert!(error.contains("--no-tls does not go with --url"), "{error}");
    // A URL that does not parse is a bad argument too, and its password
    // is not repeated.
    let error = plug(&["--url", "mqtt://alice:pa/ss@127.0.0.1:x"], &[]);
    assert!(
        error.contains("not a broker URL: invalid port \"x\""),
        "{error}"
    );
    assert!(
        !error.contains("pa/ss") && !error.contains("alice"),
        "{error}"
    );
}

#[test]
fn an_unusable_port_is_refused_not_ignored() {
    let base = [
        "status",
        "--device",
        "shellyplugsg3-000000000001",
        "--host",
        "127.0.0.1",
    ];
    for port in ["abc", "0", "65536", "18 83"] {
        let error = refused_arguments("shelly_plug", &base, &[("SHELLY_MQTT_PORT", port)]);
        assert_eq!(
            error,
            format!("error: SHELLY_MQTT_PORT must be a port number from 1 to 65535, not {port:?}")
        );
        let error = refused_arguments(
            "shelly_sim",
            &["--host", "127.0.0.1"],
            &[("SHELLY_MQTT_PORT", port)],
        );
        assert!(
            error.contains("SHELLY_MQTT_PORT must be a port number"),
            "{error}"
        );
        let error = refused_arguments("shelly_plug", &[&base[..], &["--port", port]].concat(), &[]);
        assert!(error.contains("--port takes a port number"), "{error}");
    }
}

/// A `--url` on the command line replaces the host and port from the
/// environment: here a wrong port there does not matter.
#[test]
fn a_url_flag_replaces_the_environments_host_and_port() {
    let broker = Broker::start();
    let device = device_id(14);
    let url = format!("mqtt://127.0.0.1:{}", broker.port);
    // Port 1 on loopback: if they were used, the connect would be refused.
    let env = [("SHELLY_MQTT_HOST", "127.0.0.1"), ("SHELLY_MQTT_PORT", "1")];
    let _sim = start_sim(&device, &["--url", &url], &env);
    let out = plug(&["status", "--device", &device, "--url", &url], &env, 0);
    assert!(out.stdout.contains(&format!("{device} is OFF")), "{out:?}");
}

// ---------------------------------------------------------------------------
// The showcase.

fn check_showcase(out: &Output) {
    assert_eq!(out.code, Some(0), "{out:?}");
    let text = &out.stdout;
    for expected in [
        "$ shelly_plug status",
        "(in full: cargo run --example shelly_plug -- status --device shellyplugsg3-",
        " --host 127.0.0.1 --port ",
        " is OFF, drawing 0.0 W",
        "switched ON (it was OFF)",
        "the plug confirms (request id 3, Switch.GetStatus, not traced): ON, drawing",
        "switched OFF (it was ON)",
        "the plug confirms (request id 5, Switch.GetStatus, not traced): OFF, drawing 0.0 W",
        "toggled from OFF",
        "$ shelly_plug off --toggle-after 1",
        "it switches ON again in 1 s",
        "$ shelly_plug watch --for 2.5",
        "error: plug offline:",
        "(shelly_plug exits with status 3 for this)",
        " --timeout 1",
        "error: no answer from shellyplugsg3-",
        "within 1s. Nothing was heard on",
        "\"RPC over MQTT\" turned on?",
        "(shelly_plug exits with status 4 for this)",
    ] {
        assert!(
            text.contains(expected),
            "the showcase should print {expected:?}:\n{text}"
        );
    }
    // The offline case comes first, then the one that does not answer.
    let offline = text.find("status 3 for this").unwrap_or(usize::MAX);
    let silent = text.find("status 4 for this").unwrap_or(0);
    assert!(offline < silent, "offline, then no answer:\n{text}");

    // The watch sees the timer switch the plug back on: OFF readings,
    // then ON ones.
    let watch: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("$ shelly_plug watch"))
        .take_while(|l| !l.ends_with(" readings"))
        .collect();
    let first_off = watch
        .iter()
        .position(|l| l.contains("s] OFF, drawing 0.0 W"));
    let first_on = watch.iter().position(|l| l.contains("s] ON, drawing"));
    assert!(
        matches!((first_off, first_on), (Some(off), Some(on)) if off < on),
        "the watch should show the switch from OFF to ON:\n{text}"
    );
    assert!(
        watch.iter().any(|l| l.contains("plug: timer: switched ON")),
        "{text}"
    );

    // Every request id of the first controller shows: in the trace, or
    // named where the call is not traced.
    let src = line_with(text, "controller  plover-shelly-")
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.strip_suffix(':'))
        .expect("the controller's name");
    let traced = text
        .lines()
        .filter(|l| l.contains("→ ") && l.contains(&format!("\"src\":\"{src}\"")))
        .filter_map(|l| l.split("{\"id\":").nth(1)?.split(',').next()?.parse().ok());
    let named = text.lines().filter_map(|l| {
        l.split("request id ")
            .nth(1)?
            .split(',')
            .next()?
            .parse()
            .ok()
    });
    let mut ids: Vec<u64> = traced.chain(named).collect();
    ids.sort_unstable();
    let expected: Vec<u64> = (1..=ids.len() as u64).collect();
    assert!(ids.len() >= 10, "{ids:?}\n{text}");
    assert_eq!(ids, expected, "request ids 1, 2, 3, ... each once:\n{text}");
    assert!(out.stderr.is_empty(), "{out:?}");
}

#[test]
fn showcase_with_mosquitto() {
    // The harness's tests need mosquitto; so does this one.
    drop(Broker::start());
    // Bounded by `run`'s time limit; how quick it is is not asserted.
    let out = run("showcase", &[], &[]);
    check_showcase(&out);
    let broker_line = line_with(&out.stdout, "broker      ");
    assert!(broker_line.contains("mosquitto"), "{broker_line}");
    assert!(
        broker_line.contains("started on 127.0.0.1:"),
        "{broker_line}"
    );
}

#[test]
fn showcase_with_the_embedded_broker() {
    let out = run("showcase", &[], &[("PLOVER_SHOWCASE_EMBEDDED", "1")]);
    check_showcase(&out);
    let broker_line = line_with(&out.stdout, "broker      ");
    assert!(
        broker_line.contains("embedded demo broker"),
        "{broker_line}"
    );
}

// ---------------------------------------------------------------------------
// The embedded broker on its own, in both protocol versions.

async fn embedded_broker(version: ProtocolVersion) {
    use bytes::BytesMut;
    use plover::codec::{Connect, LastWill, MqttString, Packet};
    use tokio::io::AsyncWriteExt;

    let broker = mini_broker::MiniBroker::start().await.unwrap();
    let port = broker.port();
    let connect = |tag: &str| {
        let client = Client::builder(client_id(tag)).protocol(version).build();
        async move {
            within("connect", 10, client.connect("127.0.0.1", port, 30))
                .await
                .unwrap();
            client
        }
    };
    let publisher = connect("mini-pub").await;
    let ack = publisher
        .publish("home/kitchen/temperature", "21.5", QoS::AtLeastOnce, true)
        .await
        .unwrap();
    within("PUBACK", 10, ack).await.unwrap();

    let subscriber = connect("mini-sub").await;
    let (granted, mut temperatures) = subscriber
        .subscribe_stream("home/+/temperature", QoS::AtLeastOnce)
        .await
        .unwrap();
    assert_eq!(granted, QoS::AtLeastOnce);
    // A second client watches everything (one client with overlapping
    // subscriptions gets one copy per client, routed as plover does).
    let watcher = connect("mini-watch").await;
    let (_, mut everything) = watcher
        .subscribe_stream("home/#", QoS::AtMostOnce)
        .await
        .unwrap();
    // The retained message, flagged as such, on each matching subscription.
    let retained = next(&mut temperatures, "retained").await;
    assert_eq!(
        (retained.payload.as_ref(), retained.retain),
        (&b"21.5"[..], true)
    );
    let retained = next(&mut everything, "retained").await;
    assert_eq!(retained.topic, "home/kitchen/temperature");

    // Live messages: QoS 1 and 0, routed by wildcards, not flagged retained.
    let ack = publisher
        .publish("home/office/temperature", "19.0", QoS::AtLeastOnce, false)
        .await
        .unwrap();
    within("PUBACK", 10, ack).await.unwrap();
    let live = next(&mut temperatures, "live").await;
    assert_eq!(
        (live.topic.as_str(), live.qos, live.retain),
        ("home/office/temperature", QoS::AtLeastOnce, false)
    );
    assert_eq!(next(&mut everything, "live").await.qos, QoS::AtMostOnce);
    publisher
        .publish("home/office/door", "open", QoS::AtMostOnce, false)
        .await
        .unwrap();
    assert_eq!(next(&mut everything, "door").await.payload, "open");
    // QoS 2 is accepted (and delivered at QoS 1 at most).
    let ack = publisher
        .publish("home/office/temperature", "19.5", QoS::ExactlyOnce, false)
        .await
        .unwrap();
    within("PUBCOMP", 10, ack).await.unwrap();
    assert_eq!(next(&mut temperatures, "QoS 2").await.qos, QoS::AtLeastOnce);
    assert_eq!(next(&mut everything, "QoS 2").await.payload, "19.5");

    // A client that vanishes without DISCONNECT: its will is published.
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut hello = Connect::new(version, MqttString::try_from("mini-crash").unwrap());
    hello.keep_alive = 30;
    hello.will = Some(LastWill::new(
        plover::codec::TopicName::try_from("home/hall/status").unwrap(),
        "offline",
        QoS::AtLeastOnce,
        true,
    ));
    let mut wire = BytesMut::new();
    Packet::Connect(Box::new(hello))
        .encode(version, &mut wire)
        .unwrap();
    stream.write_all(&wire).await.unwrap();
    let mut connack = [0u8; 64];
    let n = within(
        "CONNACK",
        10,
        tokio::io::AsyncReadExt::read(&mut stream, &mut connack),
    )
    .await
    .unwrap();
    assert!(
        n >= 4 && connack[0] == 0x20,
        "a CONNACK: {:?}",
        &connack[..n]
    );
    drop(stream);
    let will = next(&mut everything, "the will").await;
    assert_eq!(
        (will.topic.as_str(), will.payload.as_ref()),
        ("home/hall/status", &b"offline"[..])
    );
    // Retained, too: a later subscriber gets it.
    let late = connect("mini-late").await;
    let (_, mut status) = late
        .subscribe_stream("home/hall/status", QoS::AtLeastOnce)
        .await
        .unwrap();
    assert!(next(&mut status, "retained will").await.retain);

    // Unsubscribe, clear the retained message, disconnect cleanly.
    subscriber.unsubscribe("home/+/temperature").await.unwrap();
    let ack = publisher
        .publish("home/kitchen/temperature", "", QoS::AtLeastOnce, true)
        .await
        .unwrap();
    within("PUBACK", 10, ack).await.unwrap();
    let cleared = next(&mut everything, "cleared").await;
    assert!(cleared.payload.is_empty());
    for client in [publisher, subscriber, watcher, late] {
        within("disconnect", 10, client.disconnect()).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_broker_v311() {
    embedded_broker(ProtocolVersion::V311).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_broker_v5() {
    embedded_broker(ProtocolVersion::V5).await;
}
