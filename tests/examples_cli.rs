//! The `publish` and `subscribe` examples side by side with mosquitto's own
//! `mosquitto_pub` and `mosquitto_sub`, against a real broker: the same
//! arguments must give the same stdout, the same exit code, and put the
//! same messages on the broker.
//!
//! `cargo test` builds the examples into `target/debug/examples/` before it
//! runs this; on its own (`cargo build --examples && cargo test --test
//! examples_cli`) it uses the binaries already there, so build them first
//! after changing them. It needs `mosquitto` and `mosquitto-clients`.
//!
//! Every child process runs under a time limit and is killed when its
//! handle is dropped, so a hung tool fails the test instead of the run.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{Broker, TempDir, client_id, free_port, password_file, within};
use plover::codec::SubscriptionOptions;
use plover::{Client, Message, Messages, ProtocolVersion, QoS};

/// How long any one child process may run.
const LIMIT: Duration = Duration::from_secs(15);

/// An example's binary, next to this test's: `target/debug/deps/
/// examples_cli-HASH` -> `target/debug/examples/NAME`.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let debug = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps");
    let path = debug
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "{} does not exist: run `cargo test` (which builds the examples) or \
         `cargo build --examples` first",
        path.display()
    );
    path
}

fn require(tool: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "`{tool}` is not installed: these tests compare against it \
         (apt-get install -y mosquitto-clients)"
    );
}

/// Our tool and mosquitto's, for the same job.
struct Pair {
    ours: PathBuf,
    theirs: PathBuf,
}

fn publishers() -> Pair {
    require("mosquitto_pub");
    Pair {
        ours: example("publish"),
        theirs: "mosquitto_pub".into(),
    }
}

fn subscribers() -> Pair {
    require("mosquitto_sub");
    Pair {
        ours: example("subscribe"),
        theirs: "mosquitto_sub".into(),
    }
}

/// What a finished process left behind.
#[derive(Debug)]
struct Output {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
}

impl Output {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    fn first_error_line(&self) -> &str {
        self.stderr.lines().next().unwrap_or("")
    }
}

/// A running child process; killed and reaped when dropped.
struct Running {
    child: Child,
    what: String,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> Option<JoinHandle<Vec<u8>>> {
    pipe.map(|mut pipe| {
        std::thread::spawn(move || {
            let mut all = Vec::new();
            let _ = pipe.read_to_end(&mut all);
            all
        })
    })
}

/// Starts `program args`, feeding it `stdin` (none: an empty stdin).
fn spawn(program: &Path, args: &[&str], stdin: Option<&[u8]>) -> Running {
    let what = format!("{} {}", program.display(), args.join(" "));
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let data = data.to_vec();
        // Written from a thread, then closed: end of file for the child.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&data);
        });
    }
    Running {
        stdout: drain(child.stdout.take()),
        stderr: drain(child.stderr.take()),
        child,
        what,
    }
}

impl Running {
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
        let stdout = self
            .stdout
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        let stderr = self
            .stderr
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        let out = Output {
            code: status.and_then(|s| s.code()),
            stdout,
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        };
        assert!(
            status.is_some(),
            "`{}` did not finish within {limit:?}; it printed {out:?}",
            self.what
        );
        out
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a process to its end (within [`LIMIT`]).
fn run(program: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
    spawn(program, args, stdin).finish(LIMIT)
}

/// Runs a process without blocking the test's runtime, so the in-process
/// observer keeps reading meanwhile.
async fn run_async(program: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let program = program.to_path_buf();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let stdin = stdin.map(<[u8]>::to_vec);
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&program, &args, stdin.as_deref())
    })
    .await
    .expect("the process runner panicked")
}

/// `-h 127.0.0.1 -p PORT` followed by `rest`.
fn with_broker<'a>(port: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["-h", "127.0.0.1", "-p", port];
    args.extend_from_slice(rest);
    args
}

/// What a subscriber saw of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    topic: String,
    payload: Vec<u8>,
    qos: QoS,
    retain: bool,
    user_properties: Vec<(String, String)>,
    content_type: Option<String>,
}

impl From<Message> for Seen {
    fn from(m: Message) -> Self {
        Seen {
            topic: m.topic.to_string(),
            payload: m.payload.to_vec(),
            qos: m.qos,
            retain: m.retain,
            user_properties: m
                .properties
                .user_properties
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            content_type: m.properties.content_type.map(|c| c.to_string()),
        }
    }
}

/// A plover client subscribed at QoS 2 that records what the tools publish.
/// In-process, so the test knows it is subscribed before a tool runs.
struct Observer {
    client: Client,
    messages: Messages,
}

impl Observer {
    async fn start(broker: &Broker, filter: &str) -> Observer {
        let client = Client::builder(client_id("observer"))
            .protocol(ProtocolVersion::V5)
            .build();
        let messages = client.messages();
        within(
            "observer connect",
            10,
            client.connect("127.0.0.1", broker.port, 30),
        )
        .await
        .expect("observer connects");
        let granted = within(
            "observer subscribe",
            10,
            client.subscribe_many(
                &[(filter, SubscriptionOptions::new(QoS::ExactlyOnce))],
                Default::default(),
            ),
        )
        .await
        .expect("observer subscribes");
        assert!(granted.reason_codes.iter().all(|c| c.is_success()));
        Observer { client, messages }
    }

    /// The next `n` messages, then checks that no other follows soon.
    async fn take(&mut self, n: usize) -> Vec<Seen> {
        let mut seen = Vec::new();
        for _ in 0..n {
            let m = within("a message for the observer", 10, self.messages.recv())
                .await
                .expect("the observer's stream ended");
            seen.push(Seen::from(m));
        }
        let extra = tokio::time::timeout(Duration::from_millis(300), self.messages.recv()).await;
        assert!(extra.is_err(), "an unexpected extra message: {extra:?}");
        seen
    }

    async fn stop(self) {
        let _ = within("observer disconnect", 10, self.client.disconnect()).await;
    }
}

/// Runs mosquitto_pub and then our publish with the same arguments, each
/// followed by what the broker delivered, and asks for identical results.
/// Returns what our publish delivered.
async fn same_publish(
    broker: &Broker,
    topic: &str,
    args: &[&str],
    stdin: Option<&[u8]>,
    expect: usize,
) -> Vec<Seen> {
    let tools = publishers();
    let port = broker.port.to_string();
    let mut full = with_broker(&port, &["-t", topic]);
    full.extend_from_slice(args);
    let mut observer = Observer::start(broker, topic).await;

    let theirs = run_async(&tools.theirs, &full, stdin).await;
    let theirs_seen = observer.take(expect).await;
    let ours = run_async(&tools.ours, &full, stdin).await;
    let ours_seen = observer.take(expect).await;
    observer.stop().await;

    assert_eq!(
        ours.code, theirs.code,
        "exit codes for {args:?}: ours {ours:?}, mosquitto_pub {theirs:?}"
    );
    assert_eq!(ours.code, Some(0), "{ours:?}");
    assert_eq!(ours.stdout(), theirs.stdout(), "stdout for {args:?}");
    assert_eq!(ours_seen, theirs_seen, "messages delivered for {args:?}");
    ours_seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_a_message_at_each_qos() {
    let broker = Broker::start();
    for qos in ["0", "1", "2"] {
        let topic = format!("cli/qos{qos}");
        let seen = same_publish(&broker, &topic, &["-q", qos, "-m", "hello world"], None, 1).await;
        assert_eq!(seen[0].payload, b"hello world");
        assert_eq!(seen[0].qos as u8, qos.parse::<u8>().unwrap());
        assert!(!seen[0].retain);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_each_line_of_stdin() {
    let broker = Broker::start();
    let seen = same_publish(
        &broker,
        "cli/lines",
        &["-l", "-q", "1"],
        Some(&b"one\ntwo\nthree\n"[..]),
        3,
    )
    .await;
    let payloads: Vec<&[u8]> = seen.iter().map(|s| s.payload.as_slice()).collect();
    assert_eq!(payloads, [&b"one"[..], b"two", b"three"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_a_null_message() {
    let broker = Broker::start();
    let seen = same_publish(&broker, "cli/null", &["-n", "-q", "1"], None, 1).await;
    assert!(seen[0].payload.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_a_whole_file_and_stdin() {
    let broker = Broker::start();
    let dir = TempDir::new("cli-file");
    let path = dir.path().join("payload.bin");
    // Bytes a text-minded tool would mangle: NUL, CR LF, a final newline.
    let content = b"binary\x00data\r\nsecond line\n\xff";
    std::fs::write(&path, content).expect("write the payload file");
    let path = path.to_str().expect("a UTF-8 temp path");
    let seen = same_publish(&broker, "cli/file", &["-f", path, "-q", "2"], None, 1).await;
    assert_eq!(seen[0].payload, content);
    let seen = same_publish(
        &broker,
        "cli/stdin",
        &["-s", "-q", "1"],
        Some(&content[..]),
        1,
    )
    .await;
    assert_eq!(seen[0].payload, content);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_repeated() {
    let broker = Broker::start();
    let seen = same_publish(
        &broker,
        "cli/repeat",
        &[
            "-m",
            "again",
            "--repeat",
            "3",
            "--repeat-delay",
            "0.05",
            "-q",
            "1",
        ],
        None,
        3,
    )
    .await;
    assert!(seen.iter().all(|s| s.payload == b"again"));
}

/// Both subscribers with `-C 1 -v` on a topic holding a retained message.
fn same_retained_output(port: &str, topic: &str) -> String {
    let subs = subscribers();
    let args = with_broker(port, &["-t", topic, "-C", "1", "-v"]);
    let theirs = run(&subs.theirs, &args, None);
    let ours = run(&subs.ours, &args, None);
    assert_eq!(ours.code, Some(0), "{ours:?}");
    assert_eq!(
        ours.code, theirs.code,
        "ours {ours:?}, mosquitto_sub {theirs:?}"
    );
    assert_eq!(ours.stdout(), theirs.stdout());
    ours.stdout()
}

#[test]
fn retained_publish_then_subscribers() {
    let broker = Broker::start();
    let tools = publishers();
    let port = broker.port.to_string();

    let theirs = run(
        &tools.theirs,
        &with_broker(
            &port,
            &[
                "-t",
                "cli/ret",
                "-r",
                "-q",
                "1",
                "-m",
                "kept by mosquitto_pub",
            ],
        ),
        None,
    );
    assert_eq!(theirs.code, Some(0), "{theirs:?}");
    assert_eq!(
        same_retained_output(&port, "cli/ret"),
        "cli/ret kept by mosquitto_pub\n"
    );

    let ours = run(
        &tools.ours,
        &with_broker(
            &port,
            &["-t", "cli/ret", "-r", "-q", "1", "-m", "kept by publish"],
        ),
        None,
    );
    assert_eq!(ours.code, theirs.code, "{ours:?}");
    assert_eq!(ours.stdout(), theirs.stdout());
    assert_eq!(
        same_retained_output(&port, "cli/ret"),
        "cli/ret kept by publish\n"
    );
}

#[test]
fn v5_user_property_reaches_the_subscriber() {
    let broker = Broker::start();
    let (pubs, subs) = (publishers(), subscribers());
    let port = broker.port.to_string();
    let publish = [
        "-V",
        "5",
        "-t",
        "cli/props",
        "-r",
        "-q",
        "1",
        "-m",
        "with properties",
        "-D",
        "publish",
        "user-property",
        "k",
        "v",
        "-D",
        "publish",
        "content-type",
        "text/plain",
    ];
    let show = with_broker(
        &port,
        &["-V", "5", "-t", "cli/props", "-C", "1", "-F", "%t|%P|%C|%p"],
    );
    let expected = "cli/props|k:v|text/plain|with properties\n";
    for publisher in [&pubs.theirs, &pubs.ours] {
        // Clear the retained message first, so each round sees its own.
        let cleared = run(
            publisher,
            &with_broker(&port, &["-t", "cli/props", "-r", "-n"]),
            None,
        );
        assert_eq!(cleared.code, Some(0), "{cleared:?}");
        let published = run(publisher, &with_broker(&port, &publish), None);
        assert_eq!(
            published.code,
            Some(0),
            "{} {published:?}",
            publisher.display()
        );
        let theirs = run(&subs.theirs, &show, None);
        let ours = run(&subs.ours, &show, None);
        assert_eq!(
            theirs.stdout(),
            expected,
            "mosquitto_sub after {}",
            publisher.display()
        );
        assert_eq!(
            ours.stdout(),
            expected,
            "subscribe after {}: {ours:?}",
            publisher.display()
        );
        assert_eq!(ours.code, theirs.code);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_count_and_verbose_output() {
    let broker = Broker::start();
    let subs = subscribers();
    let port = broker.port.to_string();

    // Retained messages, delivered when each subscriber subscribes.
    let feeder = Client::new(client_id("feeder"));
    within(
        "feeder connect",
        10,
        feeder.connect("127.0.0.1", broker.port, 30),
    )
    .await
    .unwrap();
    for (topic, payload) in [("cli/count/a", "first"), ("cli/count/b", "second value")] {
        let sent = feeder
            .publish(topic, payload, QoS::AtLeastOnce, true)
            .await
            .unwrap();
        within("retained ack", 10, sent).await.unwrap();
    }
    let args = with_broker(&port, &["-t", "cli/count/#", "-C", "2", "-v"]);
    let theirs = run_async(&subs.theirs, &args, None).await;
    let ours = run_async(&subs.ours, &args, None).await;
    assert_eq!(
        theirs.stdout(),
        "cli/count/a first\ncli/count/b second value\n"
    );
    assert_eq!(ours.stdout(), theirs.stdout(), "{ours:?}");
    assert_eq!(ours.code, theirs.code);
    assert_eq!(ours.code, Some(0));

    // Live messages, queued in a persistent session that `-c -E` set up:
    // no race with the subscriber's start.
    let mut outputs = Vec::new();
    for (tool, tag) in [(&subs.theirs, "theirs"), (&subs.ours, "ours")] {
        let id = client_id(&format!("persistent-{tag}"));
        let topic = format!("cli/live/{tag}");
        let setup = run_async(
            tool,
            &with_broker(&port, &["-c", "-i", &id, "-q", "1", "-t", &topic, "-E"]),
            None,
        )
        .await;
        assert_eq!(setup.code, Some(0), "{setup:?}");
        assert!(setup.stdout.is_empty(), "{setup:?}");
        for payload in ["one", "", "three"] {
            let sent = feeder
                .publish(&topic, payload, QoS::AtLeastOnce, false)
                .await
                .unwrap();
            within("live ack", 10, sent).await.unwrap();
        }
        let out = run_async(
            tool,
            &with_broker(
                &port,
                &["-c", "-i", &id, "-q", "1", "-t", &topic, "-C", "3", "-v"],
            ),
            None,
        )
        .await;
        assert_eq!(out.code, Some(0), "{out:?}");
        outputs.push(out.stdout().replace(tag, "TOOL"));
    }
    assert_eq!(
        outputs[0],
        "cli/live/TOOL one\ncli/live/TOOL (null)\ncli/live/TOOL three\n"
    );
    assert_eq!(outputs[1], outputs[0]);
    let _ = feeder.disconnect().await;
}

#[test]
fn subscribe_timeout_exit_code() {
    let broker = Broker::start();
    let subs = subscribers();
    let port = broker.port.to_string();
    let args = with_broker(&port, &["-t", "cli/silence", "-W", "1"]);
    let theirs = run(&subs.theirs, &args, None);
    let ours = run(&subs.ours, &args, None);
    assert_eq!(theirs.code, Some(27), "mosquitto_sub's -W code: {theirs:?}");
    assert_eq!(ours.code, theirs.code, "{ours:?}");
    assert_eq!(ours.stdout, theirs.stdout);
    assert_eq!(ours.first_error_line(), theirs.first_error_line());
}

#[test]
fn bad_arguments_exit_1_with_an_error() {
    let (pubs, subs) = (publishers(), subscribers());
    let cases: [(&Pair, &[&str]); 7] = [
        (&pubs, &["-t", "a", "-m", "x", "-q", "3"]),
        (&pubs, &["-m", "x"]),
        (&pubs, &["-t", "a", "-m", "x", "-n"]),
        (&pubs, &["-t", "a/#", "-m", "x"]),
        (&pubs, &["-t", "a", "-m", "x", "--bogus"]),
        (&subs, &["-t", "a", "-q", "3"]),
        (&subs, &["-v"]),
    ];
    for (tools, args) in cases {
        // Nothing listens on this port; arguments are checked before any
        // connection is tried.
        let theirs = run(&tools.theirs, args, None);
        let ours = run(&tools.ours, args, None);
        assert_eq!(theirs.code, Some(1), "mosquitto {args:?}: {theirs:?}");
        assert_eq!(ours.code, theirs.code, "{args:?}: {ours:?}");
        assert!(
            ours.first_error_line().starts_with("Error: "),
            "{args:?}: {ours:?}"
        );
        assert_eq!(
            ours.first_error_line(),
            theirs.first_error_line(),
            "{args:?}"
        );
    }
}

#[test]
fn connection_refused_exit_code() {
    let (pubs, subs) = (publishers(), subscribers());
    let port = free_port().to_string();
    let cases: [(&Pair, Vec<&str>); 2] = [
        (&pubs, with_broker(&port, &["-t", "a", "-m", "x"])),
        (&subs, with_broker(&port, &["-t", "a"])),
    ];
    for (tools, args) in cases {
        let theirs = run(&tools.theirs, &args, None);
        let ours = run(&tools.ours, &args, None);
        assert_ne!(theirs.code, Some(0), "{theirs:?}");
        assert_eq!(
            ours.code, theirs.code,
            "ours {ours:?}, mosquitto {theirs:?}"
        );
        assert_eq!(ours.first_error_line(), theirs.first_error_line());
        assert_eq!(ours.first_error_line(), "Error: Connection refused");
    }
}

#[test]
fn refused_credentials_exit_with_the_reason_code() {
    let dir = TempDir::new("cli-passwords");
    let passwords = password_file(dir.path(), "alice", "secret");
    let broker = Broker::start_with(&format!(
        "allow_anonymous false\npassword_file {}\n",
        passwords.display()
    ));
    let (pubs, subs) = (publishers(), subscribers());
    let port = broker.port.to_string();
    for version in ["311", "5"] {
        let cases: [(&Pair, Vec<&str>); 2] = [
            (
                &pubs,
                with_broker(
                    &port,
                    &[
                        "-V", version, "-u", "alice", "-P", "wrong", "-t", "a", "-m", "x",
                    ],
                ),
            ),
            (
                &subs,
                with_broker(
                    &port,
                    &["-V", version, "-u", "alice", "-P", "wrong", "-t", "a"],
                ),
            ),
        ];
        for (tools, args) in cases {
            let theirs = run(&tools.theirs, &args, None);
            let ours = run(&tools.ours, &args, None);
            assert_ne!(theirs.code, Some(0), "{theirs:?}");
            assert_eq!(
                ours.code, theirs.code,
                "{args:?}: ours {ours:?}, mosquitto {theirs:?}"
            );
            assert_eq!(ours.stderr, theirs.stderr, "{args:?}");
        }
    }
    // And the right password works.
    let ours = run(
        &pubs.ours,
        &with_broker(
            &port,
            &[
                "-u", "alice", "-P", "secret", "-t", "a", "-m", "x", "-q", "1",
            ],
        ),
        None,
    );
    assert_eq!(ours.code, Some(0), "{ours:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_of_one_second_stays_connected() {
    let broker = Broker::start();
    let (pubs, subs) = (publishers(), subscribers());
    let port = broker.port.to_string();
    let id = client_id("keepalive");
    // Three seconds of silence with a 1 s keepalive: without PINGREQs the
    // broker would drop the subscriber after 1.5 s.
    let sub = spawn(
        &subs.ours,
        &with_broker(
            &port,
            &[
                "-i",
                &id,
                "-k",
                "1",
                "-W",
                "4",
                "-C",
                "1",
                "-t",
                "cli/alive",
            ],
        ),
        None,
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let feeder = Client::new(client_id("feeder"));
    within(
        "feeder connect",
        10,
        feeder.connect("127.0.0.1", broker.port, 30),
    )
    .await
    .unwrap();
    let sent = feeder
        .publish("cli/alive", "still here", QoS::AtMostOnce, false)
        .await
        .unwrap();
    within("publish", 10, sent).await.unwrap();
    let out = tokio::task::spawn_blocking(move || sub.finish(LIMIT))
        .await
        .unwrap();
    assert_eq!(out.code, Some(0), "{out:?}\nbroker log:\n{}", broker.log());
    assert_eq!(out.stdout(), "still here\n");
    assert!(
        !broker
            .log()
            .contains(&format!("Client {id} has exceeded timeout")),
        "{}",
        broker.log()
    );
    let _ = feeder.disconnect().await;

    // mosquitto_pub refuses -k 1; publish takes it, as its --help says.
    let theirs = run(
        &pubs.theirs,
        &with_broker(&port, &["-k", "1", "-t", "a", "-m", "x"]),
        None,
    );
    assert_eq!(theirs.code, Some(1));
    let ours = run(
        &pubs.ours,
        &with_broker(&port, &["-k", "1", "-t", "a", "-m", "x"]),
        None,
    );
    assert_eq!(ours.code, Some(0), "{ours:?}");
}

#[test]
fn help_exits_like_mosquitto() {
    for tools in [publishers(), subscribers()] {
        let theirs = run(&tools.theirs, &["--help"], None);
        let ours = run(&tools.ours, &["--help"], None);
        assert_eq!(ours.code, theirs.code, "{ours:?}");
        assert!(ours.stdout().contains("Usage:"), "{ours:?}");
        assert!(ours.stdout().contains("-k : keep alive"), "{ours:?}");
    }
}

#[test]
fn properties_need_mqtt_v5() {
    let pubs = publishers();
    let out = run(
        &pubs.ours,
        &[
            "-t",
            "a",
            "-m",
            "x",
            "-D",
            "publish",
            "user-property",
            "k",
            "v",
            "-V",
            "311",
        ],
        None,
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.first_error_line().starts_with("Error: "), "{out:?}");
}
