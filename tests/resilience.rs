//! Resilience: the client against a real mosquitto while the network and
//! the broker fail under it.
//!
//! Faults come from a proxy between the client and the broker
//! (`tests/proxy`): connections reset at random byte offsets (mostly in
//! the middle of packets), cut precisely between a PUBREC and its PUBREL,
//! or stalled (open but silent) until keepalive notices. The broker itself
//! is killed, stopped and restarted, and made to refuse us.
//!
//! The two campaigns (`campaign_publisher_behind_faults`,
//! `campaign_subscriber_behind_faults`) push 10,000 QoS 1 and 10,000 QoS 2
//! messages through more than twenty faults and print what happened (run
//! with `--nocapture` to see it). The other tests each pin one behaviour:
//! backoff while the broker is down, keepalive detection, refusals that
//! stop the client, the offline queue, resubscribing, clean shutdown.
//!
//! Rules, as in `tests/client.rs`: every wait is bounded, every loop is
//! bounded, only 127.0.0.1 is used, and timings are reported, never
//! asserted tightly (those belong in benchmarks).
//!
//! What mosquitto 2.0.11 does here, pinned or excused where it matters:
//! - After a persistent subscriber reconnects, it sends its backlog at
//!   once: thousands of unacknowledged QoS 1/2 PUBLISHes on one connection
//!   (the proxy measures the window), for a 3.1.1 client despite
//!   `max_inflight_messages 20`, and for a 5.0 client beyond the Receive
//!   Maximum it announced (see `v5_receive_maximum_overrun_...`). A cut
//!   soon after a reconnect makes it send most of them again, so QoS 1
//!   duplicates run into the thousands in campaign (b).
//! - When a connection drops again before it has re-sent a PUBREL it
//!   owed, it later sends the PUBLISH again instead (§4.3.3 forbids
//!   re-sending the PUBLISH once the PUBREL was sent). The client has
//!   released that identifier and takes it for a new message; the proxy
//!   catches every such re-send and campaign (b) excuses exactly those.
//! - Stopped with SIGTERM and `persistence true` it saves sessions and
//!   queued messages; killed (SIGKILL) it keeps only what the last
//!   `autosave_interval` saved. It closes 5.0 connections on SIGTERM
//!   without a DISCONNECT.

mod common;
mod proxy;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::{Broker, client_id, password_file, within};
use plover::codec::{ConnectReasonCode, PacketType, PublishProperties};
use plover::session::RequestError;
use plover::{
    Client, ClientBuilder, ClientError, CloseReason, ConnectionEvent, Message, Messages,
    ProtocolVersion, PublishHandle, QoS, QueueFull,
};
use proxy::{Dir, Moment, Proxy};
use tokio::sync::watch;
use tokio::task::JoinHandle;

const HOST: &str = "127.0.0.1";

/// mosquitto must not drop QoS 1/2 messages for a slow or offline
/// persistent subscriber (its default queue is 1,000 messages).
const BROKER: &str = "allow_anonymous true\nmax_queued_messages 100000\nmax_inflight_messages 20\n";

/// The same, keeping sessions and queued messages across a clean
/// shutdown (SIGTERM) in `{dir}/mosquitto.db`.
const PERSISTENT_BROKER: &str = "allow_anonymous true\nmax_queued_messages 100000\n\
    max_inflight_messages 20\npersistence true\npersistence_location {dir}/\n";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

// ---- connection events -----------------------------------------------------

/// Records a client's connection events as they come, with when.
struct Recorder {
    log: Arc<Mutex<Vec<(Instant, ConnectionEvent)>>>,
    changed: watch::Receiver<usize>,
    ended: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Recorder {
    /// Start before `connect` to see the first `Connected` too.
    fn start(client: &Client) -> Recorder {
        let mut events = client.connection_events();
        let log = Arc::new(Mutex::new(Vec::new()));
        let ended = Arc::new(AtomicBool::new(false));
        let (tx, changed) = watch::channel(0usize);
        let task = {
            let (log, ended) = (log.clone(), ended.clone());
            tokio::spawn(async move {
                while let Some(event) = events.recv().await {
                    lock(&log).push((Instant::now(), event));
                    tx.send_modify(|n| *n += 1);
                }
                ended.store(true, Ordering::SeqCst);
                tx.send_modify(|n| *n += 1);
            })
        };
        Recorder {
            log,
            changed,
            ended,
            task,
        }
    }

    fn events(&self) -> Vec<ConnectionEvent> {
        lock(&self.log).iter().map(|(_, e)| e.clone()).collect()
    }

    fn count(&self, f: impl Fn(&ConnectionEvent) -> bool) -> usize {
        lock(&self.log).iter().filter(|(_, e)| f(e)).count()
    }

    fn connected(&self) -> usize {
        self.count(|e| matches!(e, ConnectionEvent::Connected(_)))
    }

    fn reconnecting(&self) -> Vec<(u32, Duration)> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                ConnectionEvent::Reconnecting { attempt, delay, .. } => Some((attempt, delay)),
                _ => None,
            })
            .collect()
    }

    fn keepalive_timeouts(&self) -> usize {
        self.count(|e| {
            matches!(
                e,
                ConnectionEvent::Disconnected(CloseReason::KeepAliveTimeout)
            )
        })
    }

    /// True once the client's event stream ended (the client is gone).
    fn ended(&self) -> bool {
        self.ended.load(Ordering::SeqCst)
    }

    /// Waits (at most `secs`) until `cond` holds for the events so far.
    async fn wait(
        &self,
        what: &str,
        secs: u64,
        cond: impl Fn(&[ConnectionEvent]) -> bool,
    ) -> Vec<ConnectionEvent> {
        let mut changed = self.changed.clone();
        let waiting = async {
            loop {
                changed.borrow_and_update();
                let events = self.events();
                if cond(&events) {
                    return events;
                }
                if changed.changed().await.is_err() {
                    // The recorder stopped: what we have is all there is.
                    let events = self.events();
                    assert!(cond(&events), "{what}: the event stream ended: {events:?}");
                    return events;
                }
            }
        };
        match tokio::time::timeout(Duration::from_secs(secs), waiting).await {
            Ok(events) => events,
            Err(_) => panic!(
                "timed out after {secs} s waiting for {what}; events: {:?}",
                self.events()
            ),
        }
    }

    /// Waits for one more `Connected` than `before`.
    async fn wait_connected(&self, what: &str, before: usize, secs: u64) {
        self.wait(what, secs, |events| {
            events
                .iter()
                .filter(|e| matches!(e, ConnectionEvent::Connected(_)))
                .count()
                > before
        })
        .await;
    }

    /// Waits for a `Disconnected` beyond the first `before` ones.
    async fn wait_disconnected(&self, what: &str, before: usize, secs: u64) -> CloseReason {
        let events = self
            .wait(what, secs, |events| {
                events
                    .iter()
                    .filter(|e| matches!(e, ConnectionEvent::Disconnected(_)))
                    .count()
                    > before
            })
            .await;
        events
            .into_iter()
            .filter_map(|e| match e {
                ConnectionEvent::Disconnected(reason) => Some(reason),
                _ => None,
            })
            .nth(before)
            .expect("counted above")
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---- messages ---------------------------------------------------------------

/// The next message, within `secs`.
async fn next(messages: &mut Messages, what: &str, secs: u64) -> Message {
    within(what, secs, messages.recv())
        .await
        .unwrap_or_else(|| panic!("{what}: the message stream ended"))
}

/// Publishes and waits for the acknowledgement.
async fn publish_acked(client: &Client, topic: &str, payload: &str, qos: QoS) {
    let handle = within(
        "publish accepted",
        10,
        client.publish(topic, payload.to_owned(), qos, false),
    )
    .await
    .expect("publish accepted");
    within("publish acknowledged", 10, handle)
        .await
        .expect("publish acknowledged");
}

/// `Client::builder` with a fresh client id, for these tests.
fn builder(tag: &str) -> ClientBuilder {
    builder_with_id(&client_id(tag))
}

fn builder_with_id(id: &str) -> ClientBuilder {
    Client::builder(id)
}

/// Waits (at most 5 s) until the client's background task has ended:
/// `publish` then fails with `NotConnected` instead of queueing. (The
/// task answers waiting requests just before it ends, so a publish made
/// at that moment may still be taken, and fails later.)
async fn wait_stopped(client: &Client) {
    within("the client to stop for good", 5, async {
        loop {
            let probe = client.publish("res/stopped", "probe", QoS::AtLeastOnce, false);
            match probe.await {
                Err(ClientError::NotConnected) => return,
                _ => tokio::time::sleep(ms(10)).await,
            }
        }
    })
    .await;
}

async fn connect(client: &Client, port: u16, keepalive: u16) {
    within("connect", 10, client.connect(HOST, port, keepalive))
        .await
        .expect("connect");
}

// ---- the campaigns ----------------------------------------------------------

/// Per sequence number, how often each QoS arrived.
#[derive(Debug, Default)]
struct Tally {
    q1: Vec<u32>,
    q2: Vec<u32>,
    /// Distinct (qos, seq) seen.
    distinct: usize,
    /// Messages delivered with the DUP flag.
    dup_flag: usize,
    messages: usize,
    /// Messages on other topics or with payloads that are not numbers.
    stray: usize,
}

/// Counts what a subscriber receives on `{prefix}/q1` and `{prefix}/q2`.
struct Counter {
    tally: Arc<Mutex<Tally>>,
    progress: watch::Receiver<usize>,
    task: JoinHandle<()>,
}

impl Drop for Counter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Counter {
    fn start(mut messages: Messages, prefix: &str, n: usize) -> Counter {
        let tally = Arc::new(Mutex::new(Tally {
            q1: vec![0; n],
            q2: vec![0; n],
            ..Tally::default()
        }));
        let (tx, progress) = watch::channel(0usize);
        let (t1, t2) = (format!("{prefix}/q1"), format!("{prefix}/q2"));
        let task = {
            let tally = tally.clone();
            tokio::spawn(async move {
                while let Some(m) = messages.recv().await {
                    let mut t = lock(&tally);
                    t.messages += 1;
                    t.dup_flag += usize::from(m.dup);
                    let seq = m.payload_str().and_then(|s| s.parse::<usize>().ok());
                    let slot = match (seq, m.topic.as_str()) {
                        (Some(seq), topic) if topic == t1 && seq < n => Some(&mut t.q1[seq]),
                        (Some(seq), topic) if topic == t2 && seq < n => Some(&mut t.q2[seq]),
                        _ => None,
                    };
                    match slot {
                        Some(count) => {
                            *count += 1;
                            if *count == 1 {
                                t.distinct += 1;
                                let distinct = t.distinct;
                                tx.send_replace(distinct);
                            }
                        }
                        None => t.stray += 1,
                    }
                }
            })
        };
        Counter {
            tally,
            progress,
            task,
        }
    }

    /// Waits until `n` distinct messages arrived, at most `secs`.
    async fn wait_distinct(&self, n: usize, secs: u64) {
        let mut progress = self.progress.clone();
        let waited =
            tokio::time::timeout(Duration::from_secs(secs), progress.wait_for(|d| *d >= n)).await;
        if !matches!(waited, Ok(Ok(_))) {
            let t = lock(&self.tally);
            let missing_q1: Vec<usize> = (0..t.q1.len()).filter(|&i| t.q1[i] == 0).collect();
            let missing_q2: Vec<usize> = (0..t.q2.len()).filter(|&i| t.q2[i] == 0).collect();
            panic!(
                "timed out after {secs} s with {} of {n} distinct messages; missing QoS 1 {} \
                 (first {:?}), QoS 2 {} (first {:?})",
                t.distinct,
                missing_q1.len(),
                &missing_q1[..missing_q1.len().min(10)],
                missing_q2.len(),
                &missing_q2[..missing_q2.len().min(10)]
            );
        }
    }
}

/// One fault of a campaign.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Reset after a random number of bytes (seeded).
    Random,
    /// Reset before or after a packet of a type passes one way.
    Packet(Dir, PacketType, Moment),
    /// Forward nothing for longer than 1.5 × keepalive.
    Stall,
}

/// Keepalive of the client behind the proxy, in seconds.
const CAMPAIGN_KEEPALIVE: u16 = 2;
/// Longer than 1.5 × keepalive, so the client's keepalive must notice.
const STALL: Duration = Duration::from_millis(4_500);
/// Random cut offsets, in bytes from arming; a segment of traffic is
/// several times larger, so the cut always comes.
const RANDOM_CUT: (u64, u64) = (1, 6_000);

/// What the client behind the proxy had seen when a fault was armed.
#[derive(Debug, Clone, Copy)]
struct Mark {
    cuts: usize,
    connected: usize,
    keepalive_timeouts: usize,
}

fn mark(proxy: &Proxy, faulty: &Recorder) -> Mark {
    Mark {
        cuts: proxy.cut_count(),
        connected: faulty.connected(),
        keepalive_timeouts: faulty.keepalive_timeouts(),
    }
}

/// Arms `fault`. A stall runs in a task of its own (it ends by itself),
/// so publishing may block meanwhile without deadlocking the test.
fn arm(proxy: &Arc<Proxy>, fault: Fault) -> Option<JoinHandle<()>> {
    match fault {
        Fault::Random => {
            proxy.cut_after_random_bytes(RANDOM_CUT.0, RANDOM_CUT.1);
            None
        }
        Fault::Packet(dir, packet, moment) => {
            proxy.cut_on(dir, packet, moment);
            None
        }
        Fault::Stall => {
            let proxy = proxy.clone();
            proxy.stall(true);
            Some(tokio::spawn(async move {
                tokio::time::sleep(STALL).await;
                proxy.stall(false);
            }))
        }
    }
}

/// Waits until the armed fault has happened and the client is back.
async fn settle(
    proxy: &Proxy,
    faulty: &Recorder,
    fault: Fault,
    before: Mark,
    stall: Option<JoinHandle<()>>,
) {
    match fault {
        Fault::Random | Fault::Packet(..) => {
            assert!(
                proxy
                    .wait_cuts(before.cuts + 1, Duration::from_secs(30))
                    .await,
                "{fault:?} did not cut within 30 s (cuts so far {:?})",
                proxy.cuts()
            );
        }
        Fault::Stall => {
            if let Some(stall) = stall {
                within("the stall to end", 30, stall)
                    .await
                    .expect("stall task");
            }
            faulty
                .wait("a keepalive timeout during the stall", 15, |events| {
                    events
                        .iter()
                        .filter(|e| {
                            matches!(
                                e,
                                ConnectionEvent::Disconnected(CloseReason::KeepAliveTimeout)
                            )
                        })
                        .count()
                        > before.keepalive_timeouts
                })
                .await;
        }
    }
    faulty
        .wait_connected(
            &format!("the reconnect after {fault:?}"),
            before.connected,
            30,
        )
        .await;
}

/// 24 faults: 16 random cuts, six precise packet cuts and two stalls,
/// spread over the run.
fn plan(precise: [Fault; 3]) -> Vec<Fault> {
    use Fault::{Random as R, Stall as S};
    let [a, b, c] = precise;
    vec![
        R, R, a, R, R, b, R, S, R, c, R, R, a, R, R, b, R, S, R, c, R, R, R, R,
    ]
}

/// Messages per QoS in a campaign.
const CAMPAIGN_N: usize = 10_000;

async fn publish_range(
    client: &Client,
    prefix: &str,
    range: std::ops::Range<usize>,
    handles: &mut Vec<(QoS, usize, PublishHandle)>,
) {
    let (t1, t2) = (format!("{prefix}/q1"), format!("{prefix}/q2"));
    for seq in range {
        for (qos, topic) in [(QoS::AtLeastOnce, &t1), (QoS::ExactlyOnce, &t2)] {
            let handle = within(
                "publish accepted",
                60,
                client.publish(topic, seq.to_string(), qos, false),
            )
            .await
            .unwrap_or_else(|e| panic!("publish {qos} #{seq}: {e}"));
            handles.push((qos, seq, handle));
        }
    }
}

/// Awaits every handle; returns the failures.
async fn settle_handles(handles: Vec<(QoS, usize, PublishHandle)>) -> Vec<String> {
    within("every publish handle resolving", 120, async {
        let mut failures = Vec::new();
        for (qos, seq, handle) in handles {
            if let Err(e) = handle.await {
                failures.push(format!("QoS {qos} #{seq}: {e}"));
            }
        }
        failures
    })
    .await
}

/// What a campaign did, for the report.
#[derive(Debug)]
struct Report {
    messages: usize,
    cuts: usize,
    random_cuts: usize,
    packet_cuts: usize,
    mid_packet_cuts: usize,
    stalls: usize,
    keepalive_timeouts: usize,
    reconnecting_events: usize,
    connects: usize,
    disconnects: BTreeMap<String, usize>,
    delivered: usize,
    q1_duplicates: usize,
    q1_numbers_duplicated: usize,
    q2_duplicates: usize,
    /// QoS 2 messages the broker (to the subscriber) or the publisher (to
    /// the broker) sent again as PUBLISH after their PUBREL, which §4.3.3
    /// forbids; seen by the proxy.
    republished_by_broker: usize,
    republished_by_client: usize,
    dup_flagged: usize,
    /// Largest in-flight windows seen at the proxy (see `max_window`).
    client_window: i64,
    broker_window: i64,
    elapsed: Duration,
}

fn report(
    what: &str,
    proxy: &Proxy,
    faulty: &Recorder,
    counter: &Counter,
    faults: &[Fault],
    started: Instant,
) -> Report {
    let cuts = proxy.cuts();
    let t = lock(&counter.tally);
    let mut disconnects = BTreeMap::new();
    for e in faulty.events() {
        if let ConnectionEvent::Disconnected(reason) = e {
            let key = format!("{reason:?}");
            let key = key.split(['(', ' ', '{']).next().unwrap_or("?").to_owned();
            *disconnects.entry(key).or_insert(0) += 1;
        }
    }
    let report = Report {
        messages: 2 * CAMPAIGN_N,
        cuts: cuts.len(),
        random_cuts: cuts
            .iter()
            .filter(|c| c.cause == proxy::Cause::Bytes)
            .count(),
        packet_cuts: cuts
            .iter()
            .filter(|c| matches!(c.cause, proxy::Cause::Packet(..)))
            .count(),
        mid_packet_cuts: cuts.iter().filter(|c| c.mid_packet).count(),
        stalls: faults.iter().filter(|f| matches!(f, Fault::Stall)).count(),
        keepalive_timeouts: faulty.keepalive_timeouts(),
        reconnecting_events: faulty.reconnecting().len(),
        connects: faulty.connected(),
        disconnects,
        delivered: t.messages,
        q1_duplicates: t.q1.iter().map(|&c| c.saturating_sub(1) as usize).sum(),
        q1_numbers_duplicated: t.q1.iter().filter(|&&c| c > 1).count(),
        q2_duplicates: t.q2.iter().map(|&c| c.saturating_sub(1) as usize).sum(),
        republished_by_broker: proxy.republished_after_pubrel(Dir::ToClient).len(),
        republished_by_client: proxy.republished_after_pubrel(Dir::ToBroker).len(),
        dup_flagged: t.dup_flag,
        client_window: proxy.max_window(Dir::ToBroker),
        broker_window: proxy.max_window(Dir::ToClient),
        elapsed: started.elapsed(),
    };
    println!("---- {what} ----");
    println!(
        "messages published: {} ({} QoS 1 + {} QoS 2), delivered to the subscriber: {}",
        report.messages, CAMPAIGN_N, CAMPAIGN_N, report.delivered
    );
    println!(
        "cuts: {} ({} at random offsets, {} at PUBREC/PUBREL, {} of them mid-packet); stalls: {}",
        report.cuts, report.random_cuts, report.packet_cuts, report.mid_packet_cuts, report.stalls
    );
    println!(
        "client behind the proxy: {} Connected, {} Reconnecting, {} keepalive timeouts, \
         disconnect reasons {:?}",
        report.connects, report.reconnecting_events, report.keepalive_timeouts, report.disconnects
    );
    println!(
        "duplicates: QoS 1 {} extra copies of {} numbers, QoS 2 {}; DUP flag on {} deliveries",
        report.q1_duplicates,
        report.q1_numbers_duplicated,
        report.q2_duplicates,
        report.dup_flagged
    );
    println!(
        "largest window of unacknowledged QoS 1/2 PUBLISHes seen on one connection: \
         client to broker {} (plover's max_inflight_messages: 20), broker to client {} \
         (mosquitto's max_inflight_messages: 20; Receive Maximum of a 5.0 client that \
         sets none: 65,535)",
        report.client_window, report.broker_window
    );
    println!(
        "QoS 2 PUBLISH sent again after its PUBREL (forbidden by §4.3.3): by the broker {}, \
         by the client {}",
        report.republished_by_broker, report.republished_by_client
    );
    println!("elapsed: {:.1?}", report.elapsed);
    report
}

/// Checks what every campaign promises. `excused` are QoS 2 sequence
/// numbers the broker sent again after their PUBREL (see
/// [`Proxy::republished_after_pubrel`]), once per re-send: the client has
/// released their identifiers by then and cannot tell them from new
/// messages, so one more delivery per re-send of those, and only those,
/// is the broker's doing.
fn check_delivery(report: &Report, counter: &Counter, failures: &[String], excused: &[usize]) {
    let t = lock(&counter.tally);
    assert!(
        failures.is_empty(),
        "{} publishes failed, first: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    let lost_q1: Vec<usize> = (0..CAMPAIGN_N).filter(|&i| t.q1[i] == 0).collect();
    let lost_q2: Vec<usize> = (0..CAMPAIGN_N).filter(|&i| t.q2[i] == 0).collect();
    assert!(lost_q1.is_empty(), "QoS 1 lost: {lost_q1:?}");
    assert!(lost_q2.is_empty(), "QoS 2 lost: {lost_q2:?}");
    let twice_q2: Vec<(usize, u32)> = (0..CAMPAIGN_N)
        .filter(|&i| t.q2[i] > 1 && !excused.contains(&i))
        .map(|i| (i, t.q2[i]))
        .collect();
    assert!(
        twice_q2.is_empty(),
        "QoS 2 delivered more than once (seq, copies): {twice_q2:?}"
    );
    // Each re-send after a PUBREL may add one copy (the broker can do it
    // more than once for one message, over successive cuts); any copy
    // beyond those is the client's.
    for &seq in excused {
        let resent = excused.iter().filter(|&&s| s == seq).count();
        assert!(
            t.q2[seq] as usize <= 1 + resent,
            "QoS 2 #{seq}: {} copies; the broker re-sent it {resent} times after its PUBREL",
            t.q2[seq]
        );
    }
    assert_eq!(t.stray, 0, "messages that are not part of the campaign");
    assert!(report.cuts >= 20, "only {} cuts", report.cuts);
    assert!(report.mid_packet_cuts >= 1, "no cut fell inside a packet");
    assert!(report.packet_cuts >= 6, "{report:?}");
    assert_eq!(report.keepalive_timeouts, 2, "{report:?}");
}

/// (a) The publisher behind the faults, the subscriber direct.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_publisher_behind_faults() {
    let started = Instant::now();
    let broker = Broker::start_with(BROKER);
    let proxy = Arc::new(Proxy::start(broker.port, 0x5EED_000A).await);
    let prefix = "res/a";

    // A persistent 3.1.1 subscriber, directly on the broker.
    let sub = builder("a-sub").clean_start(false).build();
    let counter = Counter::start(sub.messages(), prefix, CAMPAIGN_N);
    connect(&sub, broker.port, 30).await;
    within(
        "subscribe",
        10,
        sub.subscribe(&format!("{prefix}/#"), QoS::ExactlyOnce),
    )
    .await
    .expect("subscribe");

    // A persistent 5.0 publisher behind the proxy.
    let publisher = builder("a-pub")
        .protocol(ProtocolVersion::V5)
        .clean_start(false)
        .session_expiry(300)
        .reconnect_delay(ms(50), ms(500))
        .max_queued_messages(4 * CAMPAIGN_N)
        .build();
    let faulty = Recorder::start(&publisher);
    connect(&publisher, proxy.port, CAMPAIGN_KEEPALIVE).await;
    // Marks taken before the recorder saw the first connection would be
    // off by one for the whole run.
    faulty.wait_connected("the first connection", 0, 10).await;

    let faults = plan([
        // The broker's PUBREC never reaches us: we resend the PUBLISH (DUP).
        Fault::Packet(Dir::ToClient, PacketType::PubRec, Moment::Before),
        // Our PUBREL reached the broker, its PUBCOMP did not reach us.
        Fault::Packet(Dir::ToBroker, PacketType::PubRel, Moment::After),
        // The PUBREC reached us; our PUBREL may be lost with the link.
        Fault::Packet(Dir::ToClient, PacketType::PubRec, Moment::After),
    ]);
    let failures = drive_campaign(&proxy, &faulty, &publisher, &counter, prefix, &faults, 60).await;

    let report = report(
        "(a) publisher behind the proxy",
        &proxy,
        &faulty,
        &counter,
        &faults,
        started,
    );
    check_delivery(&report, &counter, &failures, &[]);
    // The client never sends a QoS 2 PUBLISH again once it sent the PUBREL.
    assert_eq!(report.republished_by_client, 0, "{report:?}");
    // plover keeps to its window (max_inflight_messages, default 20) on
    // every connection, resends included.
    assert!(report.client_window <= 20, "{report:?}");
    let _ = within("disconnect", 10, publisher.disconnect()).await;
    let _ = within("disconnect", 10, sub.disconnect()).await;
}

/// The part both campaigns share: the messages go out in segments, a
/// fault armed before each and settled after it, then the rest; then every
/// publish handle and (within `wait_secs`) every message is waited for.
/// Returns the handles that failed.
async fn drive_campaign(
    proxy: &Arc<Proxy>,
    faulty: &Recorder,
    publisher: &Client,
    counter: &Counter,
    prefix: &str,
    faults: &[Fault],
    wait_secs: u64,
) -> Vec<String> {
    let segment = CAMPAIGN_N / (faults.len() + 1);
    let mut handles = Vec::with_capacity(2 * CAMPAIGN_N);
    for (k, &fault) in faults.iter().enumerate() {
        let before = mark(proxy, faulty);
        let stall = arm(proxy, fault);
        publish_range(
            publisher,
            prefix,
            k * segment..(k + 1) * segment,
            &mut handles,
        )
        .await;
        settle(proxy, faulty, fault, before, stall).await;
    }
    publish_range(
        publisher,
        prefix,
        faults.len() * segment..CAMPAIGN_N,
        &mut handles,
    )
    .await;
    let failures = settle_handles(handles).await;
    counter.wait_distinct(2 * CAMPAIGN_N, wait_secs).await;
    // Late duplicates, if any, have a moment to show up.
    tokio::time::sleep(ms(500)).await;
    failures
}

/// (b) The subscriber behind the faults (persistent 5.0 session), the
/// publisher direct.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_subscriber_behind_faults() {
    let started = Instant::now();
    let broker = Broker::start_with(BROKER);
    let proxy = Arc::new(Proxy::start(broker.port, 0x5EED_000B).await);
    let prefix = "res/b";

    let sub = builder("b-sub")
        .protocol(ProtocolVersion::V5)
        .clean_start(false)
        .session_expiry(300)
        .reconnect_delay(ms(50), ms(500))
        .build();
    let faulty = Recorder::start(&sub);
    let counter = Counter::start(sub.messages(), prefix, CAMPAIGN_N);
    connect(&sub, proxy.port, CAMPAIGN_KEEPALIVE).await;
    faulty.wait_connected("the first connection", 0, 10).await;
    within(
        "subscribe",
        10,
        sub.subscribe(&format!("{prefix}/#"), QoS::ExactlyOnce),
    )
    .await
    .expect("subscribe");

    let publisher = builder("b-pub").max_queued_messages(4 * CAMPAIGN_N).build();
    connect(&publisher, broker.port, 30).await;

    let faults = plan([
        // Our PUBREC is lost: the broker sends the PUBLISH again (DUP),
        // which must not be delivered twice.
        Fault::Packet(Dir::ToBroker, PacketType::PubRec, Moment::Before),
        // Our PUBREC reached the broker; its PUBREL comes after reconnecting.
        Fault::Packet(Dir::ToBroker, PacketType::PubRec, Moment::After),
        // The PUBREL reached us; our PUBCOMP may be lost with the link.
        Fault::Packet(Dir::ToClient, PacketType::PubRel, Moment::After),
    ]);
    let failures = drive_campaign(&proxy, &faulty, &publisher, &counter, prefix, &faults, 90).await;

    let report = report(
        "(b) subscriber behind the proxy",
        &proxy,
        &faulty,
        &counter,
        &faults,
        started,
    );
    // mosquitto 2.0.11 sometimes sends a QoS 2 PUBLISH again after its
    // PUBREL (when the connection drops again before the PUBREL it owed
    // went out), now and then more than once for one message; each such
    // re-send may add a copy, the rest arrive exactly once.
    let excused: Vec<usize> = proxy
        .republished_after_pubrel(Dir::ToClient)
        .iter()
        .filter(|(topic, _)| topic.as_str() == format!("{prefix}/q2"))
        .filter_map(|(_, payload)| std::str::from_utf8(payload).ok()?.parse().ok())
        .collect();
    let mut resent: Vec<usize> = excused.clone();
    resent.sort_unstable();
    resent.dedup();
    println!(
        "QoS 2 re-sent by the broker after its PUBREL: {} times, {} messages",
        excused.len(),
        resent.len()
    );
    check_delivery(&report, &counter, &failures, &excused);
    let _ = within("disconnect", 10, publisher.disconnect()).await;
    let _ = within("disconnect", 10, sub.disconnect()).await;
}

/// A persistent 5.0 subscriber that announces Receive Maximum 20 comes
/// back to a backlog of 500 QoS 2 messages. mosquitto 2.0.11 sends far
/// more than 20 unacknowledged PUBLISHes at once after the resume
/// ([MQTT-3.3.4-9] forbids it); the client answers DISCONNECT 0x93 Receive
/// Maximum exceeded ([MQTT-3.3.4-9]'s remedy) and reconnects. Each round
/// gets some messages through; in the end all of them arrive, none twice
/// beyond what the broker re-sent after a PUBREL (see the module docs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_receive_maximum_overrun_by_the_broker_costs_reconnects_not_messages() {
    const N: usize = 500;
    let broker = Broker::start_with(BROKER);
    let proxy = Proxy::start(broker.port, 0x93).await;
    let id = client_id("rm-sub");
    let subscriber = || {
        let properties = plover::codec::ConnectProperties {
            receive_maximum: Some(20),
            ..Default::default()
        };
        builder_with_id(&id)
            .protocol(ProtocolVersion::V5)
            .connect_properties(properties)
            .clean_start(false)
            .session_expiry(300)
            .reconnect_delay(ms(20), ms(100))
            .build()
    };
    let sub = subscriber();
    connect(&sub, proxy.port, 30).await;
    within("subscribe", 10, sub.subscribe("res/rm/#", QoS::ExactlyOnce))
        .await
        .expect("subscribe");
    within("disconnect", 10, sub.disconnect())
        .await
        .expect("disconnect");
    drop(sub);

    // The backlog, queued by the broker while the subscriber is away.
    let publisher = builder("rm-pub").build();
    connect(&publisher, broker.port, 30).await;
    let mut handles = Vec::new();
    for n in 0..N {
        let handle = publisher
            .publish("res/rm/q2", n.to_string(), QoS::ExactlyOnce, false)
            .await
            .expect("publish");
        handles.push(handle);
    }
    for handle in handles {
        within("the backlog acknowledged", 20, handle)
            .await
            .expect("acknowledged");
    }

    let sub = subscriber();
    let events = Recorder::start(&sub);
    let counter = Counter::start(sub.messages(), "res/rm", N);
    connect(&sub, proxy.port, 30).await;
    counter.wait_distinct(N, 60).await;
    tokio::time::sleep(ms(300)).await;
    let overruns = events.count(|e| {
        matches!(
            e,
            ConnectionEvent::Disconnected(CloseReason::Protocol(
                plover::session::ProtocolError::ReceiveMaximumExceeded
            ))
        )
    });
    let excused: Vec<usize> = proxy
        .republished_after_pubrel(Dir::ToClient)
        .iter()
        .filter_map(|(_, payload)| std::str::from_utf8(payload).ok()?.parse().ok())
        .collect();
    let (twice, stray) = {
        let t = lock(&counter.tally);
        let twice: Vec<usize> = (0..N)
            .filter(|&i| t.q2[i] > 1 && !excused.contains(&i))
            .collect();
        (twice, t.stray)
    };
    println!(
        "receive maximum 20: broker window up to {} unacknowledged; {overruns} disconnects \
         with 0x93; {} QoS 2 re-sent after PUBREL",
        proxy.max_window(Dir::ToClient),
        excused.len()
    );
    assert!(twice.is_empty(), "delivered twice: {twice:?}");
    assert_eq!(stray, 0);
    let _ = within("disconnect", 10, sub.disconnect()).await;
    let _ = within("disconnect", 10, publisher.disconnect()).await;
}

// ---- (c) the broker stops and comes back -------------------------------------

/// The two clients of the broker restart tests, both with persistent 5.0
/// sessions on the broker under test.
struct Persistent {
    /// Subscribed to `res/{tag}/#`; it does not subscribe again after a
    /// reconnect, so only the broker's saved session can carry that.
    sub: Client,
    sub_events: Recorder,
    messages: Messages,
    /// Backs off with the given bounds, set with paho's setter.
    publisher: Client,
    events: Recorder,
}

/// Connects the pair and passes one message (`before`) through.
async fn persistent_pair(broker: &Broker, tag: &str, backoff: (Duration, Duration)) -> Persistent {
    let sub = builder(&format!("{tag}-sub"))
        .protocol(ProtocolVersion::V5)
        .clean_start(false)
        .session_expiry(300)
        .reconnect_delay(ms(50), ms(200))
        .resubscribe(false)
        .build();
    let sub_events = Recorder::start(&sub);
    let mut messages = sub.messages();
    connect(&sub, broker.port, 30).await;
    within(
        "subscribe",
        10,
        sub.subscribe(&format!("res/{tag}/#"), QoS::AtLeastOnce),
    )
    .await
    .expect("subscribe");

    let publisher = builder(&format!("{tag}-pub"))
        .protocol(ProtocolVersion::V5)
        .clean_start(false)
        .session_expiry(300)
        .build();
    // paho's setter, from the next connect on.
    publisher.reconnect_delay_set(backoff.0, backoff.1);
    let events = Recorder::start(&publisher);
    connect(&publisher, broker.port, 30).await;
    publish_acked(
        &publisher,
        &format!("res/{tag}/t"),
        "before",
        QoS::AtLeastOnce,
    )
    .await;
    assert_eq!(
        next(&mut messages, "the message before the broker goes", 10)
            .await
            .payload_str(),
        Some("before")
    );
    Persistent {
        sub,
        sub_events,
        messages,
        publisher,
        events,
    }
}

/// Waits for a client's second connection; its CONNACK's Session Present.
async fn resumed_session(events: &Recorder, what: &str) -> Option<bool> {
    events
        .wait(what, 10, |events| {
            events
                .iter()
                .filter(|e| matches!(e, ConnectionEvent::Connected(_)))
                .count()
                >= 2
        })
        .await
        .into_iter()
        .rev()
        .find_map(|e| match e {
            ConnectionEvent::Connected(ack) => Some(ack.session_present),
            _ => None,
        })
}

/// The broker goes away for about three seconds: the publisher backs off
/// with growing delays, keeps taking QoS 1 publishes, and delivers them
/// once the broker is back; a persistent subscriber finds its session
/// (mosquitto saved it on SIGTERM) and receives them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_with_backoff_delivers_what_was_published_meanwhile() {
    let mut broker = Broker::start_with(PERSISTENT_BROKER);
    let Persistent {
        sub,
        sub_events,
        mut messages,
        publisher,
        events,
    } = persistent_pair(&broker, "c", (ms(100), ms(1_600))).await;

    broker.stop();
    let reason = events
        .wait_disconnected("the publisher noticing the stop", 0, 10)
        .await;
    println!("(c) mosquitto stopping (SIGTERM) ended the 5.0 connection with: {reason:?}");
    let down_at = Instant::now();
    let mut handles = Vec::new();
    for n in 0..20 {
        let handle = within(
            "publish while the broker is down",
            10,
            publisher.publish(
                "res/c/t",
                format!("while down {n}"),
                QoS::AtLeastOnce,
                false,
            ),
        )
        .await
        .expect("a QoS 1 publish is taken while offline");
        handles.push(handle);
    }
    assert!(!publisher.is_connected());
    tokio::time::sleep(Duration::from_secs(3)).await;
    broker.restart();
    let downtime = down_at.elapsed();

    for handle in handles {
        within("publishes made while down complete", 30, handle)
            .await
            .expect("acknowledged after the broker came back");
    }
    let mut got = Vec::new();
    for _ in 0..20 {
        let m = next(&mut messages, "a message published while down", 30).await;
        got.push(m.payload_str().unwrap_or("?").to_owned());
    }
    let expected: Vec<String> = (0..20).map(|n| format!("while down {n}")).collect();
    assert_eq!(got, expected, "all of them, in order");

    let attempts = events.reconnecting();
    println!(
        "(c) broker down for {downtime:.1?}: Reconnecting events (attempt, delay) {attempts:?}"
    );
    assert!(
        attempts.len() >= 3,
        "backing off while the broker is down: {attempts:?}"
    );
    // Doubling from 100 ms up to 1.6 s, each with jitter in its upper half.
    for (i, &(attempt, delay)) in attempts.iter().enumerate() {
        assert_eq!(attempt as usize, i + 1, "{attempts:?}");
        let base = ms(100)
            .saturating_mul(1 << (attempt - 1).min(10))
            .min(ms(1_600));
        assert!(
            delay >= base / 2 && delay <= base,
            "attempt {attempt}: {delay:?} outside {:?}..={base:?}",
            base / 2
        );
    }
    let growing: Vec<Duration> = attempts
        .iter()
        .take_while(|(a, _)| *a <= 4)
        .map(|&(_, d)| d)
        .collect();
    assert!(
        growing.windows(2).all(|w| w[0] <= w[1]),
        "delays grow: {growing:?}"
    );
    // The subscriber found its saved session.
    assert_eq!(
        resumed_session(&sub_events, "the subscriber reconnecting").await,
        Some(true),
        "mosquitto restored the session it saved on SIGTERM"
    );
    let _ = within("disconnect", 10, publisher.disconnect()).await;
    let _ = within("disconnect", 10, sub.disconnect()).await;
}

/// Like the above, but mosquitto is killed (SIGKILL: no save on the way
/// out) with `autosave_interval 1`, after an autosave that followed the
/// subscription. The restarted broker has the sessions from that save:
/// the publisher, which kept taking QoS 1 publishes and backing off while
/// the broker was gone, reconnects and carries on, and the persistent
/// subscriber (which does not subscribe again) receives what was published
/// meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_killed_after_an_autosave_comes_back_with_the_sessions() {
    let config = format!("{PERSISTENT_BROKER}autosave_interval 1\n");
    let mut broker = Broker::start_with(&config);
    let Persistent {
        sub,
        sub_events,
        mut messages,
        publisher,
        events,
    } = persistent_pair(&broker, "ck", (ms(100), ms(800))).await;

    // mosquitto logs a line as each save starts, and saves on its one
    // thread: once two more have started since the SUBACK, the first of
    // them, which began after the subscription existed, is on disk.
    const SAVING: &str = "Saving in-memory database";
    let saves = broker.log().matches(SAVING).count();
    let waited = Instant::now();
    within("two autosaves after the subscription", 15, async {
        while broker.log().matches(SAVING).count() < saves + 2 {
            tokio::time::sleep(ms(50)).await;
        }
    })
    .await;
    println!(
        "(c) waited {:.1?} for the autosaves (autosave_interval 1)",
        waited.elapsed()
    );

    broker.kill();
    events
        .wait_disconnected("the publisher noticing the kill", 0, 10)
        .await;
    let handle = within(
        "publish while the broker is down",
        10,
        publisher.publish("res/ck/t", "while down", QoS::AtLeastOnce, false),
    )
    .await
    .expect("a QoS 1 publish is taken while offline");
    assert!(!publisher.is_connected());
    // Down long enough for a few attempts to fail.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let down = events.reconnecting();
    broker.restart();

    within("the publish made while down completes", 30, handle)
        .await
        .expect("acknowledged after the broker came back");
    assert_eq!(
        next(&mut messages, "the message published while down", 30)
            .await
            .payload_str(),
        Some("while down")
    );
    let resumed = resumed_session(&events, "the publisher back").await;
    let sub_resumed = resumed_session(&sub_events, "the subscriber reconnecting").await;
    println!(
        "(c) SIGKILL: Reconnecting events while down (attempt, delay) {down:?}; \
         session present after the restart: publisher {resumed:?}, subscriber {sub_resumed:?}"
    );
    assert!(
        down.len() >= 2,
        "backing off while the broker is down: {down:?}"
    );
    assert_eq!(
        sub_resumed,
        Some(true),
        "mosquitto restored the subscriber's session from the autosave"
    );
    assert_eq!(resumed, Some(true), "and the publisher's");
    // Carries on: a publish after the restart goes through as usual.
    publish_acked(&publisher, "res/ck/t", "after", QoS::AtLeastOnce).await;
    assert_eq!(
        next(&mut messages, "the message after the restart", 10)
            .await
            .payload_str(),
        Some("after")
    );
    let _ = within("disconnect", 10, publisher.disconnect()).await;
    let _ = within("disconnect", 10, sub.disconnect()).await;
}

/// `retry_first_connect`: the broker is not there yet; `connect` keeps
/// trying and returns once it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_first_connect_waits_for_the_broker() {
    let mut broker = Broker::start_with(BROKER);
    broker.stop();
    let client = builder("c-first")
        .retry_first_connect(true)
        .reconnect_delay(ms(50), ms(400))
        .build();
    let events = Recorder::start(&client);
    let connecting = {
        let client = client.clone();
        let port = broker.port;
        tokio::spawn(async move { client.connect(HOST, port, 30).await })
    };
    events
        .wait("attempts while the broker is down", 10, |e| {
            e.iter()
                .filter(|e| matches!(e, ConnectionEvent::Reconnecting { .. }))
                .count()
                >= 2
        })
        .await;
    assert!(!connecting.is_finished());
    broker.restart();
    let connack = within("connect after the broker came up", 10, connecting)
        .await
        .expect("connect task")
        .expect("connect succeeds once the broker is up");
    assert!(!connack.session_present);
    assert!(client.is_connected());
    let _ = within("disconnect", 10, client.disconnect()).await;
}

/// Reconnecting is on by default: a client made with `Client::new` comes
/// back by itself after its connection is cut. (Until a1bb673 it did not:
/// the loop decided whether to retry before the first connection, from
/// `retry_first_connect`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_the_first_connection_drops_by_default() {
    let broker = Broker::start_with(BROKER);
    let proxy = Proxy::start(broker.port, 0x1).await;
    let client = Client::new(client_id("defaults"));
    let events = Recorder::start(&client);
    connect(&client, proxy.port, 30).await;
    proxy.cut_all();
    // The default backoff starts at 1 s.
    events
        .wait_connected("the automatic reconnect", 1, 10)
        .await;
    assert!(matches!(
        events.events().as_slice(),
        [
            ConnectionEvent::Connected(_),
            ConnectionEvent::Disconnected(CloseReason::ConnectionLost),
            ConnectionEvent::Reconnecting { attempt: 1, .. },
            ConnectionEvent::Connected(_),
        ]
    ));
    publish_acked(&client, "res/defaults", "back", QoS::AtLeastOnce).await;
    let _ = within("disconnect", 10, client.disconnect()).await;
}

/// The proxy's scheduled random mode: five cuts at seeded random offsets
/// under a steady QoS 1 stream; every publish completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_random_cuts_under_a_steady_stream() {
    let broker = Broker::start_with(BROKER);
    let proxy = Proxy::start(broker.port, 0xACE).await;
    let client = builder("scheduled")
        .clean_start(false)
        .reconnect_delay(ms(20), ms(100))
        .max_queued_messages(5_000)
        .build();
    let events = Recorder::start(&client);
    connect(&client, proxy.port, 30).await;
    proxy.random_cuts(500, 4_000, 5);
    let mut handles = Vec::new();
    for n in 0..3_000 {
        let handle = within(
            "publish accepted",
            30,
            client.publish("res/scheduled", n.to_string(), QoS::AtLeastOnce, false),
        )
        .await
        .expect("publish accepted");
        handles.push(handle);
    }
    assert!(
        proxy.wait_cuts(5, Duration::from_secs(30)).await,
        "{:?}",
        proxy.cuts()
    );
    within("every publish acknowledged", 60, async {
        for handle in handles {
            handle.await.expect("acknowledged");
        }
    })
    .await;
    let cuts = proxy.cuts();
    assert_eq!(cuts.len(), 5, "the schedule is five cuts: {cuts:?}");
    events.wait_connected("the last reconnect", 5, 10).await;
    println!(
        "scheduled random cuts: {} of 5 inside a packet",
        cuts.iter().filter(|c| c.mid_packet).count()
    );
    let _ = within("disconnect", 10, client.disconnect()).await;
}

/// A reconnect whose CONNECT is cut after three bytes: that attempt ends
/// (reported, as every end of a connection after the first was accepted),
/// the backoff grows to attempt 2, and attempt 2 gets through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_inside_the_reconnect_handshake() {
    let broker = Broker::start_with(BROKER);
    let proxy = Proxy::start(broker.port, 0x3).await;
    let client = builder("handshake")
        .reconnect_delay(ms(50), ms(200))
        .build();
    let events = Recorder::start(&client);
    connect(&client, proxy.port, 30).await;
    // Armed while the link is idle: the next bytes are the next CONNECT's.
    proxy.cut_after_bytes(3);
    proxy.cut_all();
    events.wait_connected("the second attempt", 1, 10).await;
    let cuts = proxy.cuts();
    assert_eq!(cuts.len(), 2, "{cuts:?}");
    assert!(
        cuts[1].mid_packet && cuts[1].dir == Some(Dir::ToBroker),
        "{cuts:?}"
    );
    let events = events.events();
    assert!(
        matches!(
            events.as_slice(),
            [
                ConnectionEvent::Connected(_),
                ConnectionEvent::Disconnected(CloseReason::ConnectionLost),
                ConnectionEvent::Reconnecting { attempt: 1, .. },
                ConnectionEvent::Disconnected(CloseReason::ConnectionLost),
                ConnectionEvent::Reconnecting { attempt: 2, .. },
                ConnectionEvent::Connected(_),
            ]
        ),
        "{events:?}"
    );
    publish_acked(&client, "res/handshake", "through", QoS::AtLeastOnce).await;
    let _ = within("disconnect", 10, client.disconnect()).await;
}

// ---- (d) keepalive -----------------------------------------------------------

/// A link that stays open but carries nothing is found by keepalive: the
/// client reports `KeepAliveTimeout`, then reconnects once the link works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_link_is_found_by_keepalive() {
    let broker = Broker::start_with(BROKER);
    let proxy = Proxy::start(broker.port, 0xD).await;
    for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
        let client = builder("d-keepalive")
            .protocol(version)
            .reconnect_delay(ms(50), ms(200))
            .build();
        let events = Recorder::start(&client);
        connect(&client, proxy.port, 2).await;
        let stalled_at = Instant::now();
        proxy.stall(true);
        let reason = events
            .wait_disconnected("the keepalive timeout", 0, 10)
            .await;
        let noticed = stalled_at.elapsed();
        assert_eq!(reason, CloseReason::KeepAliveTimeout, "{version}");
        events
            .wait("Reconnecting after the timeout", 10, |e| {
                matches!(
                    e.iter()
                        .skip_while(|e| !matches!(e, ConnectionEvent::Disconnected(_)))
                        .nth(1),
                    Some(ConnectionEvent::Reconnecting { attempt: 1, .. })
                )
            })
            .await;
        println!("(d) {version}: keepalive 2 s, stall noticed after {noticed:.1?}");
        proxy.stall(false);
        events.wait_connected("the reconnect", 1, 15).await;
        publish_acked(&client, "res/d", "alive again", QoS::AtLeastOnce).await;
        let _ = within("disconnect", 10, client.disconnect()).await;
    }
}

// ---- (e) refusals for good -------------------------------------------------

const PASSWORD_BROKER: &str = "allow_anonymous false\npassword_file {dir}/passwords\n";

fn password_broker() -> Broker {
    Broker::start_with_files(PASSWORD_BROKER, |dir| {
        password_file(dir, "alice", "right");
    })
}

/// A wrong password with `retry_first_connect`: the refusal is final,
/// `connect` returns it after one attempt instead of retrying forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_refusal_is_final_even_with_retry_first_connect() {
    let broker = password_broker();
    for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
        let client = builder("e-wrong")
            .protocol(version)
            .retry_first_connect(true)
            .reconnect_delay(ms(50), ms(100))
            .build();
        client
            .username_pw_set("alice", Some("wrong"))
            .expect("credentials");
        let events = Recorder::start(&client);
        // Counted by the refusals mosquitto logs: its log also shows the
        // harness's readiness probe, at a moment of its choosing.
        let refusals = broker.log().matches("not authorised").count();
        let result = within("the refusal", 10, client.connect(HOST, broker.port, 30)).await;
        let reason = match result {
            Err(ClientError::ConnectionRefused { reason, .. }) => reason,
            other => panic!("{version}: expected ConnectionRefused, got {other:?}"),
        };
        println!("(e) {version}: mosquitto refused a wrong password with {reason:?}");
        assert!(
            matches!(
                reason,
                ConnectReasonCode::NotAuthorized | ConnectReasonCode::BadUserNameOrPassword
            ),
            "{version}: {reason:?}"
        );
        tokio::time::sleep(ms(300)).await;
        assert_eq!(events.reconnecting(), vec![], "{version}: no retry");
        assert!(!client.is_connected());
        wait_stopped(&client).await;
        let attempts = broker.log().matches("not authorised").count() - refusals;
        assert_eq!(attempts, 1, "{version}: one attempt:\n{}", broker.log());
    }
}

/// Connected first, then the broker comes back refusing our credentials:
/// the client stops reconnecting, and what was waiting fails with the
/// refusal instead of waiting forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusal_after_reconnect_stops_the_client() {
    let mut broker = password_broker();
    let client = builder("e-changed")
        .reconnect_delay(ms(50), ms(100))
        .build();
    client
        .username_pw_set("alice", Some("right"))
        .expect("credentials");
    let events = Recorder::start(&client);
    connect(&client, broker.port, 30).await;

    // The broker goes away; a publish waits for it.
    broker.kill();
    events
        .wait_disconnected("the broker going away", 0, 10)
        .await;
    let waiting = within(
        "a publish while reconnecting",
        10,
        client.publish("res/e", "waiting", QoS::AtLeastOnce, false),
    )
    .await
    .expect("queued while offline");
    // It comes back with a new password for alice.
    password_file(broker.dir.path(), "alice", "changed");
    broker.restart();
    let result = within("the waiting publish to fail", 15, waiting).await;
    match result {
        Err(ClientError::ConnectionClosed(CloseReason::Refused { reason, .. })) => {
            assert_eq!(reason, ConnectReasonCode::NotAuthorized);
        }
        other => panic!("expected the refusal, got {other:?}"),
    }
    // The loop is over: nothing more is taken, nothing more is tried.
    assert!(!client.is_connected());
    wait_stopped(&client).await;
    let tried = events.reconnecting().len();
    tokio::time::sleep(ms(1_000)).await; // ten times the longest backoff
    assert_eq!(events.reconnecting().len(), tried, "{:?}", events.events());
    assert_eq!(
        broker.log().matches("not authorised").count(),
        1,
        "one refused attempt, none after it:\n{}",
        broker.log()
    );
    let seen: Vec<String> = events
        .events()
        .iter()
        .map(|e| match e {
            ConnectionEvent::Connected(_) => "Connected".to_owned(),
            ConnectionEvent::Disconnected(reason) => format!("Disconnected({reason})"),
            other => format!("{other:?}"),
        })
        .collect();
    println!("(e) events after the password changed: {seen:?}");
}

/// The refusal on a reconnect is reported as a connection event, as every
/// other end of a connection is, so an application that only watches
/// events (like `subscribe`) learns that the client stopped for good.
/// (Until a1bb673 the loop ended silently.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusal_after_reconnect_is_reported_as_disconnected() {
    let mut broker = password_broker();
    let client = builder("e-event").reconnect_delay(ms(50), ms(100)).build();
    client
        .username_pw_set("alice", Some("right"))
        .expect("credentials");
    let events = Recorder::start(&client);
    connect(&client, broker.port, 30).await;
    password_file(broker.dir.path(), "alice", "changed");
    broker.restart();
    events
        .wait("Disconnected(Refused) after the reconnect", 10, |e| {
            e.iter().any(|e| {
                matches!(
                    e,
                    ConnectionEvent::Disconnected(CloseReason::Refused { .. })
                )
            })
        })
        .await;
    let tried = events.reconnecting().len();
    tokio::time::sleep(ms(1_000)).await;
    assert_eq!(events.reconnecting().len(), tried);
    assert!(matches!(
        events.events().last(),
        Some(ConnectionEvent::Disconnected(CloseReason::Refused { .. }))
    ));
}

// ---- (f) the offline queue ---------------------------------------------------

async fn offline_client(broker: &mut Broker, builder: ClientBuilder) -> (Client, Recorder) {
    let client = builder.reconnect_delay(ms(100), ms(200)).build();
    let events = Recorder::start(&client);
    connect(&client, broker.port, 30).await;
    broker.kill();
    events
        .wait_disconnected("the broker going away", 0, 10)
        .await;
    (client, events)
}

/// `max_queued_messages(5)` + `QueueFull::Error`: the sixth unfinished
/// publish fails at once; the five go out when the broker is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_queue_full_fails_with_queue_full() {
    let mut broker = Broker::start_with(BROKER);
    let builder = builder("f-error")
        .max_queued_messages(5)
        .queue_full(QueueFull::Error);
    let (client, _events) = offline_client(&mut broker, builder).await;
    let mut handles = Vec::new();
    for n in 0..5 {
        let handle = client
            .publish("res/f", format!("m{n}"), QoS::AtLeastOnce, false)
            .await
            .expect("five fit");
        handles.push(handle);
    }
    match client.publish("res/f", "m5", QoS::AtLeastOnce, false).await {
        Err(ClientError::QueueFull(5)) => {}
        other => panic!("expected QueueFull(5), got {other:?}"),
    }
    broker.restart();
    for handle in handles {
        within("the queued five", 20, handle)
            .await
            .expect("acknowledged");
    }
    // Room again.
    publish_acked(&client, "res/f", "m6", QoS::AtLeastOnce).await;
    let _ = within("disconnect", 10, client.disconnect()).await;
}

/// `QueueFull::Wait` (the default): the sixth publish waits for room and
/// completes once the broker is back and the five are acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_queue_full_waits_for_room() {
    let mut broker = Broker::start_with(BROKER);
    let builder = builder("f-wait").queue_full(QueueFull::Wait);
    let client = builder.reconnect_delay(ms(100), ms(200)).build();
    // paho's setter, from the next connect on.
    client.max_queued_messages_set(5);
    let events = Recorder::start(&client);
    connect(&client, broker.port, 30).await;
    broker.kill();
    events
        .wait_disconnected("the broker going away", 0, 10)
        .await;

    let mut handles = Vec::new();
    for n in 0..5 {
        handles.push(
            client
                .publish("res/f", format!("m{n}"), QoS::AtLeastOnce, false)
                .await
                .expect("five fit"),
        );
    }
    let sixth = client.publish("res/f", "m5", QoS::AtLeastOnce, false);
    tokio::pin!(sixth);
    assert!(
        tokio::time::timeout(ms(300), &mut sixth).await.is_err(),
        "the sixth waits for room"
    );
    broker.restart();
    let sixth = within("room for the sixth", 20, sixth)
        .await
        .expect("taken once there is room");
    for handle in handles {
        within("the queued five", 20, handle)
            .await
            .expect("acknowledged");
    }
    within("the sixth", 20, sixth).await.expect("acknowledged");
    let _ = within("disconnect", 10, client.disconnect()).await;
}

/// QoS 0 while offline: refused with `NotConnected` by default; queued and
/// delivered after the reconnect with `queue_qos0_offline(true)`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_qos0_is_refused_or_queued() {
    let mut broker = Broker::start_with(BROKER);
    // The queueing publisher goes through a proxy, stalled while the
    // subscriber gets ready, so it cannot deliver before there is anyone
    // to deliver to.
    let proxy = Proxy::start(broker.port, 0xF).await;
    let plain = builder("f-plain").reconnect_delay(ms(100), ms(200)).build();
    let plain_events = Recorder::start(&plain);
    connect(&plain, broker.port, 30).await;
    let queueing = builder("f-q0")
        .queue_qos0_offline(true)
        .reconnect_delay(ms(50), ms(200))
        .build();
    let queueing_events = Recorder::start(&queueing);
    connect(&queueing, proxy.port, 30).await;

    broker.kill();
    plain_events
        .wait_disconnected("plain: broker gone", 0, 10)
        .await;
    queueing_events
        .wait_disconnected("queueing: broker gone", 0, 10)
        .await;
    match plain
        .publish("res/f0", "lost", QoS::AtMostOnce, false)
        .await
    {
        Err(ClientError::NotConnected) => {}
        other => panic!("expected NotConnected, got {other:?}"),
    }
    let queued = queueing
        .publish("res/f0", "kept", QoS::AtMostOnce, false)
        .await
        .expect("queued while offline");

    proxy.stall(true);
    broker.restart();
    let sub = Client::new(client_id("f-sub"));
    let mut messages = sub.messages();
    connect(&sub, broker.port, 30).await;
    within("subscribe", 10, sub.subscribe("res/f0", QoS::AtMostOnce))
        .await
        .expect("subscribe");
    proxy.stall(false);
    let m = next(&mut messages, "the QoS 0 message queued offline", 15).await;
    assert_eq!(m.payload_str(), Some("kept"));
    within("the queued QoS 0 is sent", 10, queued)
        .await
        .expect("sent");
    for c in [&plain, &queueing, &sub] {
        let _ = within("disconnect", 10, c.disconnect()).await;
    }
}

/// 5.0 Message Expiry Interval in the offline queue: two QoS 1 messages
/// published while the link is down, one to expire after 1 s and one after
/// 300 s. The client is kept offline for 2.5 s (the proxy turns its
/// reconnects away; the broker and the subscriber stay up). The short one
/// expires in the queue: its handle fails with `MessageExpired` and it is
/// never sent. The long one goes out once the client is back, carrying
/// what is left of its lifetime, and is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_queue_drops_a_message_that_expired_while_waiting() {
    let broker = Broker::start_with(BROKER);
    let proxy = Proxy::start(broker.port, 0xE1).await;
    let sub = builder("f-exp-sub").protocol(ProtocolVersion::V5).build();
    let mut messages = sub.messages();
    connect(&sub, broker.port, 30).await;
    within("subscribe", 10, sub.subscribe("res/fx/#", QoS::AtLeastOnce))
        .await
        .expect("subscribe");

    let publisher = builder("f-exp-pub")
        .protocol(ProtocolVersion::V5)
        .reconnect_delay(ms(100), ms(200))
        .build();
    let events = Recorder::start(&publisher);
    connect(&publisher, proxy.port, 30).await;
    proxy.refuse(true);
    proxy.cut_all();
    events
        .wait_disconnected("the publisher losing its link", 0, 10)
        .await;

    let expiring = |seconds| PublishProperties {
        message_expiry_interval: Some(seconds),
        ..Default::default()
    };
    let offline_at = Instant::now();
    let short = within(
        "publish while offline",
        10,
        publisher.publish_with_properties(
            "res/fx/short",
            "expired",
            QoS::AtLeastOnce,
            false,
            expiring(1),
        ),
    )
    .await
    .expect("a QoS 1 publish is taken while offline");
    let long = within(
        "publish while offline",
        10,
        publisher.publish_with_properties(
            "res/fx/long",
            "kept",
            QoS::AtLeastOnce,
            false,
            expiring(300),
        ),
    )
    .await
    .expect("a QoS 1 publish is taken while offline");
    tokio::time::sleep(ms(2_500)).await;
    assert!(!publisher.is_connected(), "the proxy let it back in early");
    let turned_away = proxy.refused();
    proxy.refuse(false);

    match within("the expired message's handle", 15, short).await {
        Err(ClientError::Request(RequestError::MessageExpired)) => {}
        other => panic!("expected MessageExpired, got {other:?}"),
    }
    within("the long-lived message's handle", 15, long)
        .await
        .expect("acknowledged after the reconnect");
    let offline_for = offline_at.elapsed();
    // A marker published after both: whatever the subscriber gets before
    // it is all that could come of them.
    publish_acked(&publisher, "res/fx/marker", "marker", QoS::AtLeastOnce).await;
    let mut got = Vec::new();
    for _ in 0..5 {
        let m = next(&mut messages, "the messages up to the marker", 15).await;
        let topic = m.topic.to_string();
        got.push((topic.clone(), m.properties.message_expiry_interval));
        if topic == "res/fx/marker" {
            break;
        }
    }
    println!(
        "(f) offline for {offline_for:.1?}, {turned_away} reconnects turned away; \
         the subscriber got (topic, expiry): {got:?}"
    );
    let topics: Vec<&str> = got.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        topics,
        ["res/fx/long", "res/fx/marker"],
        "the expired message was delivered, or the long-lived one was not"
    );
    // Sent with what was left after about 2.5 s in the queue, not 300.
    let left = got[0].1.expect("the long-lived message keeps an expiry");
    assert!((200..=298).contains(&left), "expiry passed on: {left}");
    assert!(
        turned_away >= 1,
        "the client did not even try to reconnect while refused"
    );
    let _ = within("disconnect", 10, publisher.disconnect()).await;
    let _ = within("disconnect", 10, sub.disconnect()).await;
}

// ---- (g) resubscribing ----------------------------------------------------------

/// A clean-session subscriber across a restart of a broker that keeps
/// nothing: it is subscribed again without calling `subscribe`, unless
/// `resubscribe(false)`. Proof without sleeping: after the reconnect the
/// subscriber subscribes to a marker topic (sent after any automatic
/// resubscription on the same connection), a message goes to the old
/// filter, then one to the marker; the marker must come second, or first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resubscribes_after_the_broker_lost_the_session() {
    for resubscribe in [true, false] {
        let mut broker = Broker::start_with(BROKER);
        let sub = builder("g-sub")
            .resubscribe(resubscribe)
            .reconnect_delay(ms(50), ms(200))
            .build();
        let events = Recorder::start(&sub);
        let mut messages = sub.messages();
        connect(&sub, broker.port, 30).await;
        within("subscribe", 10, sub.subscribe("res/g/+", QoS::AtLeastOnce))
            .await
            .expect("subscribe");

        broker.restart();
        events.wait_connected("the reconnect", 1, 15).await;
        let connack = events.events().into_iter().rev().find_map(|e| match e {
            ConnectionEvent::Connected(ack) => Some(ack),
            _ => None,
        });
        assert_eq!(
            connack.map(|a| a.session_present),
            Some(false),
            "the restarted broker kept nothing"
        );
        within(
            "marker subscribe",
            10,
            sub.subscribe("res/marker", QoS::AtLeastOnce),
        )
        .await
        .expect("marker subscribe");

        let publisher = Client::new(client_id("g-pub"));
        connect(&publisher, broker.port, 30).await;
        publish_acked(&publisher, "res/g/x", "old filter", QoS::AtLeastOnce).await;
        publish_acked(&publisher, "res/marker", "marker", QoS::AtLeastOnce).await;
        let first = next(&mut messages, "after the restart", 10).await;
        if resubscribe {
            assert_eq!(first.payload_str(), Some("old filter"));
            let second = next(&mut messages, "the marker", 10).await;
            assert_eq!(second.payload_str(), Some("marker"));
        } else {
            assert_eq!(
                first.payload_str(),
                Some("marker"),
                "with resubscribe(false) the old filter is gone"
            );
        }
        for c in [&sub, &publisher] {
            let _ = within("disconnect", 10, c.disconnect()).await;
        }
    }
}

// ---- (h) clean shutdown -----------------------------------------------------

/// `disconnect()` while waiting to reconnect ends the loop: no further
/// attempt, not connected, nothing more taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_during_backoff_stops_reconnecting() {
    let broker = Broker::start_with(BROKER);
    let proxy = Proxy::start(broker.port, 0x4).await;
    let client = builder("h-backoff")
        .reconnect_delay(Duration::from_secs(2), Duration::from_secs(4))
        .build();
    let events = Recorder::start(&client);
    connect(&client, proxy.port, 30).await;
    proxy.cut_all();
    events
        .wait("Reconnecting", 10, |e| {
            e.iter()
                .any(|e| matches!(e, ConnectionEvent::Reconnecting { .. }))
        })
        .await;
    let accepted = proxy.accepted();
    within("disconnect during the backoff", 5, client.disconnect())
        .await
        .expect("disconnect");
    assert!(!client.is_connected());
    // Longer than the backoff (at most 2 s for attempt 1).
    tokio::time::sleep(ms(2_500)).await;
    assert_eq!(proxy.accepted(), accepted, "no attempt after disconnect");
    assert_eq!(events.reconnecting().len(), 1, "{:?}", events.events());
    assert_eq!(events.connected(), 1, "{:?}", events.events());
    wait_stopped(&client).await;
}

/// Dropping every `Client` handle ends the background task: connected, it
/// says goodbye and closes; waiting to reconnect, it stops trying.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_client_stops_the_background_task() {
    let broker = Broker::start_with(BROKER);
    let proxy = Proxy::start(broker.port, 0x8).await;

    // Connected.
    let id = client_id("h-drop");
    let client = builder_with_id(&id)
        .reconnect_delay(ms(200), ms(400))
        .build();
    let events = Recorder::start(&client);
    connect(&client, proxy.port, 30).await;
    let clone = client.clone();
    drop(client);
    tokio::time::sleep(ms(200)).await;
    assert_eq!(proxy.open(), 1, "a clone keeps it alive");
    assert!(clone.is_connected());
    drop(clone);
    assert!(
        proxy.wait_closed(Duration::from_secs(5)).await,
        "the connection closes"
    );
    broker
        .wait_for_log(&format!("Client {id} disconnected."), 5)
        .await;
    let accepted = proxy.accepted();
    tokio::time::sleep(ms(1_000)).await;
    assert_eq!(proxy.accepted(), accepted, "no reconnect attempt");
    // The stream ends when the last sender, the loop's, is gone.
    within("the event stream to end", 5, async {
        while !events.ended() {
            tokio::time::sleep(ms(10)).await;
        }
    })
    .await;

    // Waiting to reconnect.
    let client = builder("h-drop-backoff")
        .reconnect_delay(ms(500), ms(1_000))
        .build();
    let events = Recorder::start(&client);
    connect(&client, proxy.port, 30).await;
    proxy.cut_all();
    events
        .wait("Reconnecting", 10, |e| {
            e.iter()
                .any(|e| matches!(e, ConnectionEvent::Reconnecting { .. }))
        })
        .await;
    let accepted = proxy.accepted();
    drop(client);
    within("the event stream to end", 5, async {
        while !events.ended() {
            tokio::time::sleep(ms(10)).await;
        }
    })
    .await;
    tokio::time::sleep(ms(1_500)).await; // longer than the backoff
    assert_eq!(proxy.accepted(), accepted, "no reconnect attempt");
    assert_eq!(proxy.open(), 0);
}
