//! Request/response: `Client::request`, `Client::respond` and
//! `Message::request_parts` against a real mosquitto in both protocol
//! versions (5.0 properties; the 3.1.1 payload convention; a mix of the
//! two), a scripted broker for CONNACK Response Information, and the
//! `request_response` example run as a program.
//!
//! The example is built (`cargo build --examples`) by the first test that
//! needs it, so `cargo test --test request_response` alone runs the
//! current code (see `common::example`).

mod common;
mod scripted;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use plover::codec::{
    ConnAckProperties, MqttString, Packet, Publish, PublishProperties, SubscriptionIdentifiers,
    TopicName,
};
use plover::{Client, ClientError, Message, ProtocolVersion, QoS, Subscription};
use scripted::Scripted;

use common::{Broker, client_id, example, within};

const V3: ProtocolVersion = ProtocolVersion::V311;
const V5: ProtocolVersion = ProtocolVersion::V5;
const WAIT: Duration = Duration::from_secs(10);

async fn connected(version: ProtocolVersion, port: u16, tag: &str) -> Client {
    let client = Client::builder(client_id(tag)).protocol(version).build();
    within("connect", 10, client.connect("127.0.0.1", port, 30))
        .await
        .unwrap();
    client
}

async fn service(client: &Client, topic: &str) -> Subscription {
    within(
        "subscribe",
        10,
        client.subscribe_stream(topic, QoS::AtLeastOnce),
    )
    .await
    .unwrap()
    .1
}

async fn next(stream: &mut Subscription, what: &str) -> Message {
    within(what, 10, stream.recv())
        .await
        .unwrap_or_else(|| panic!("{what}: the stream ended"))
}

/// Answers every request on `requests` with its payload in upper case.
fn upper_case_responder(client: Client, mut requests: Subscription) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(request) = requests.recv().await {
            let parts = request.request_parts().expect("a request");
            let answer = String::from_utf8_lossy(&parts.payload).to_uppercase();
            client.respond(&request, answer).await.expect("respond");
        }
    })
}

/// Checks that nothing but `end` reaches `messages()` (answers must not).
async fn only_the_end_reaches_messages(
    client: &Client,
    publisher: &Client,
    messages: &mut plover::Messages,
) {
    within(
        "subscribe",
        10,
        client.subscribe("rr-end", QoS::AtLeastOnce),
    )
    .await
    .unwrap();
    let h = publisher
        .publish("rr-end", "", QoS::AtLeastOnce, false)
        .await
        .unwrap();
    within("puback", 10, h).await.unwrap();
    let msg = within("messages()", 10, messages.next()).await.unwrap();
    assert_eq!(
        msg.topic, "rr-end",
        "an unexpected message reached messages()"
    );
}

#[tokio::test]
async fn request_and_respond_v5() {
    let broker = Broker::start();
    let responder = connected(V5, broker.port, "responder").await;
    let mut requests = service(&responder, "svc/v5").await;
    let requester_id = client_id("requester");
    let requester = Client::builder(&requester_id).protocol(V5).build();
    within(
        "connect",
        10,
        requester.connect("127.0.0.1", broker.port, 30),
    )
    .await
    .unwrap();
    let mut messages = requester.messages();

    let asking = {
        let requester = requester.clone();
        tokio::spawn(async move { requester.request("svc/v5", "ping", WAIT).await })
    };
    let request = next(&mut requests, "the request").await;
    // The 5.0 properties, and the payload untouched.
    let response_topic = request.properties.response_topic.clone().unwrap();
    let prefix = format!("plover/response/{requester_id}/");
    assert!(response_topic.starts_with(&prefix), "{response_topic}");
    assert_eq!(response_topic.len(), prefix.len() + 16);
    let correlation = request.properties.correlation_data.clone().unwrap();
    assert_eq!(correlation.len(), 16);
    assert_eq!(request.payload, "ping");
    assert_eq!(request.qos, QoS::AtLeastOnce);
    let parts = request.request_parts().unwrap();
    assert!(!parts.enveloped);
    assert_eq!(parts.payload, "ping");

    let handle = within("respond", 10, responder.respond(&request, "pong"))
        .await
        .unwrap();
    within("puback", 10, handle).await.unwrap();
    let answer = within("answer", 10, asking).await.unwrap().unwrap();
    assert_eq!(answer.payload, "pong");
    assert_eq!(answer.topic, response_topic);
    assert_eq!(answer.properties.correlation_data, Some(correlation));
    only_the_end_reaches_messages(&requester, &responder, &mut messages).await;

    // The next request reuses the response subscription.
    let serving = upper_case_responder(responder.clone(), requests);
    let answer = within("request", 10, requester.request("svc/v5", "again", WAIT))
        .await
        .unwrap();
    assert_eq!(answer.payload, "AGAIN");
    assert_eq!(answer.topic, response_topic);

    // After a new connect (a clean session: the broker forgot the response
    // subscription), the client subscribes again.
    within("disconnect", 10, requester.disconnect())
        .await
        .unwrap();
    within(
        "connect",
        10,
        requester.connect("127.0.0.1", broker.port, 30),
    )
    .await
    .unwrap();
    let answer = within("request", 10, requester.request("svc/v5", "third", WAIT))
        .await
        .unwrap();
    assert_eq!(answer.payload, "THIRD");
    serving.abort();
}

#[tokio::test]
async fn request_and_respond_v311() {
    let broker = Broker::start();
    let responder = connected(V3, broker.port, "responder").await;
    let mut requests = service(&responder, "svc/v3").await;
    // Someone else listening on the service topic sees the convention's
    // payload as it is on the wire.
    let observer = connected(V3, broker.port, "observer").await;
    let mut observed = service(&observer, "svc/v3").await;
    let requester_id = client_id("requester");
    let requester = Client::builder(&requester_id).protocol(V3).build();
    within(
        "connect",
        10,
        requester.connect("127.0.0.1", broker.port, 30),
    )
    .await
    .unwrap();
    let mut messages = requester.messages();

    let asking = {
        let requester = requester.clone();
        tokio::spawn(async move { requester.request("svc/v3", "ping\nline 2", WAIT).await })
    };
    let request = next(&mut requests, "the request").await;
    let raw = next(&mut observed, "the observed request").await;
    assert_eq!(raw.payload, request.payload);
    let text = raw.payload_str().unwrap();
    let lines: Vec<&str> = text.splitn(4, '\n').collect();
    assert_eq!(lines[0], "plover-request/1", "{text:?}");
    assert!(
        lines[1].starts_with(&format!("plover/response/{requester_id}/")),
        "{text:?}"
    );
    assert_eq!(lines[2].len(), 32, "16 bytes of correlation data in hex");
    assert!(lines[2].bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(lines[3], "ping\nline 2");

    let parts = request.request_parts().unwrap();
    assert!(parts.enveloped);
    assert_eq!(parts.response_topic, lines[1]);
    assert_eq!(parts.payload, "ping\nline 2");
    let correlation = parts.correlation_data.clone().unwrap();
    assert_eq!(correlation.len(), 16);

    let handle = within("respond", 10, responder.respond(&request, "pong"))
        .await
        .unwrap();
    within("puback", 10, handle).await.unwrap();
    let answer = within("answer", 10, asking).await.unwrap().unwrap();
    // The requester gets the body, and the correlation data as 5.0 would
    // have given it.
    assert_eq!(answer.payload, "pong");
    assert_eq!(answer.topic, lines[1]);
    assert_eq!(answer.properties.correlation_data, Some(correlation));
    only_the_end_reaches_messages(&requester, &responder, &mut messages).await;
}

/// A 3.1.1 requester, a 5.0 responder: the answer goes back in the
/// convention's form the request came in.
#[tokio::test]
async fn a_v311_requester_and_a_v5_responder() {
    let broker = Broker::start();
    let responder = connected(V5, broker.port, "responder").await;
    let requests = service(&responder, "svc/mixed").await;
    let serving = upper_case_responder(responder.clone(), requests);
    let requester = connected(V3, broker.port, "requester").await;
    let answer = within("request", 10, requester.request("svc/mixed", "mixed", WAIT))
        .await
        .unwrap();
    assert_eq!(answer.payload, "MIXED");
    serving.abort();
}

async fn concurrent_requests(version: ProtocolVersion) {
    const N: usize = 8;
    let broker = Broker::start();
    let responder = connected(version, broker.port, "responder").await;
    let mut requests = service(&responder, "svc/many").await;
    let requester = connected(version, broker.port, "requester").await;

    // Answer only once all are in, in reverse order.
    let answering = {
        let responder = responder.clone();
        tokio::spawn(async move {
            let mut got = Vec::new();
            while got.len() < N {
                got.push(requests.recv().await.expect("a request"));
            }
            for request in got.iter().rev() {
                let mut answer = request.request_parts().unwrap().payload.to_vec();
                answer.extend_from_slice(b" answered");
                responder.respond(request, answer).await.unwrap();
            }
            requests
        })
    };
    let questions: Vec<String> = (0..N).map(|i| format!("question {i}")).collect();
    let answers = within(
        "requests",
        20,
        futures::future::join_all(
            questions
                .iter()
                .map(|q| requester.request("svc/many", q.clone(), WAIT)),
        ),
    )
    .await;
    for (question, answer) in questions.iter().zip(answers) {
        let answer = answer.unwrap();
        assert_eq!(answer.payload, format!("{question} answered"));
    }
    within("responder", 10, answering).await.unwrap();
}

#[tokio::test]
async fn concurrent_requests_are_matched_by_correlation_v311() {
    concurrent_requests(V3).await;
}

#[tokio::test]
async fn concurrent_requests_are_matched_by_correlation_v5() {
    concurrent_requests(V5).await;
}

async fn timeout(version: ProtocolVersion) {
    let broker = Broker::start();
    let responder = connected(version, broker.port, "responder").await;
    let mut requests = service(&responder, "svc/slow").await;
    let requester = connected(version, broker.port, "requester").await;
    let mut messages = requester.messages();

    let started = Instant::now();
    let result = requester
        .request("svc/slow", "late", Duration::from_millis(300))
        .await;
    assert!(
        matches!(result, Err(ClientError::Timeout(d)) if d == Duration::from_millis(300)),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    // The answer that comes after the requester gave up goes nowhere: not
    // to a later request, not to messages().
    let request = next(&mut requests, "the request").await;
    let h = responder.respond(&request, "too late").await.unwrap();
    within("puback", 10, h).await.unwrap();
    let serving = upper_case_responder(responder.clone(), requests);
    let answer = within("request", 10, requester.request("svc/slow", "next", WAIT))
        .await
        .unwrap();
    assert_eq!(answer.payload, "NEXT");
    only_the_end_reaches_messages(&requester, &responder, &mut messages).await;
    serving.abort();
}

#[tokio::test]
async fn a_request_nobody_answers_times_out_v311() {
    timeout(V3).await;
}

#[tokio::test]
async fn a_request_nobody_answers_times_out_v5() {
    timeout(V5).await;
}

#[tokio::test]
async fn respond_refuses_a_message_that_is_not_a_request() {
    let broker = Broker::start();
    for version in [V3, V5] {
        let client = connected(version, broker.port, "plain").await;
        let mut plain = service(&client, "plain/topic").await;
        let h = client
            .publish("plain/topic", "hello", QoS::AtLeastOnce, false)
            .await
            .unwrap();
        within("puback", 10, h).await.unwrap();
        let msg = next(&mut plain, "the message").await;
        assert!(msg.request_parts().is_none());
        assert!(matches!(
            client.respond(&msg, "answer").await,
            Err(ClientError::InvalidArgument(_))
        ));
    }
}

#[tokio::test]
async fn request_needs_a_connection() {
    let client = Client::new(client_id("offline"));
    assert!(matches!(
        client.request("a", "b", WAIT).await,
        Err(ClientError::NotConnected)
    ));
}

/// With Response Information in the CONNACK, the response topic is built
/// on it; the response subscription is made once for many requests.
#[tokio::test]
async fn response_information_names_the_response_topic() {
    let broker = Scripted::start(|mut peer| async move {
        peer.handshake(ConnAckProperties {
            response_information: Some(MqttString::try_from("replies/for-me/").unwrap()),
            ..ConnAckProperties::default()
        })
        .await;
        let sub = peer.accept_subscribe().await;
        let (filter, _) = sub.filters[0].clone();
        assert!(filter.starts_with("replies/for-me/"), "{filter}");
        assert!(!filter.contains("//"), "{filter}");
        let id = sub
            .properties
            .subscription_identifier
            .expect("an identifier");
        for expected in ["one", "two"] {
            let request = peer.expect_publish().await;
            peer.ack_publish(&request).await;
            assert_eq!(request.topic, "svc");
            assert_eq!(request.payload, expected);
            assert_eq!(
                request.properties.response_topic.as_ref(),
                Some(filter.as_mqtt_string())
            );
            let answer = Publish::new(
                TopicName::try_from(filter.as_str()).expect("no wildcard"),
                format!("answer {expected}"),
            )
            .with_properties(PublishProperties {
                correlation_data: request.properties.correlation_data.clone(),
                subscription_identifiers: [id].into_iter().collect::<SubscriptionIdentifiers>(),
                ..PublishProperties::default()
            });
            peer.send(Packet::Publish(answer)).await;
        }
        peer.expect_disconnect().await;
    })
    .await;
    let client = Client::builder(client_id("ri")).protocol(V5).build();
    within("connect", 10, client.connect("127.0.0.1", broker.port, 60))
        .await
        .unwrap();
    for word in ["one", "two"] {
        let answer = within("request", 10, client.request("svc", word, WAIT))
            .await
            .unwrap();
        assert_eq!(answer.payload, format!("answer {word}"));
    }
    within("disconnect", 10, client.disconnect()).await.unwrap();
    broker.finish().await;
}

// ---------------------------------------------------------------------------
// The example, as a program.

/// Runs the example against `port` and returns (exit code, stdout, stderr),
/// killing it after 30 s.
fn run_example(port: u16, version: &str) -> (Option<i32>, String, String) {
    let mut child = Command::new(example("request_response"))
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-V", version])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the example");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the example") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the example did not finish within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status.code(), stdout, stderr)
}

fn check_example(version: &str, banner: &str) {
    let broker = Broker::start();
    let (code, stdout, stderr) = run_example(broker.port, version);
    assert_eq!(
        code,
        Some(0),
        "the example failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some(format!("connecting to 127.0.0.1:{} with MQTT {banner}", broker.port).as_str())
    );
    for expected in [
        "requester: \"hello\" -> \"HELLO\"",
        "requester: \"alpha\" -> \"ALPHA\" (at the same time)",
        "requester: \"beta\" -> \"BETA\" (at the same time)",
        "requester: \"gamma\" -> \"GAMMA\" (at the same time)",
    ] {
        assert!(lines.contains(&expected), "no {expected:?} in:\n{stdout}");
    }
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("responder: request "))
            .count(),
        4,
        "{stdout}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("requester: no answer on ") && l.ends_with("timed out")),
        "{stdout}"
    );
    assert_eq!(
        lines.last().copied(),
        Some("done: every answer matched its request")
    );
}

#[test]
fn the_example_runs_against_mosquitto_v5() {
    check_example("5", "5.0");
}

#[test]
fn the_example_runs_against_mosquitto_v311() {
    check_example("311", "3.1.1");
}
