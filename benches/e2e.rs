//! End-to-end benchmark through a local mosquitto that this program starts
//! on a loopback port: a publisher process and a subscriber process, for
//! plover, for rumqttc's `AsyncClient` and for the C reference
//! (`mosquitto_pub -l` / `mosquitto_sub`), at QoS 0, 1 and 2, in one run.
//!
//! - Throughput: `--n` messages (default 100,000) of 64 bytes as fast as
//!   the publisher goes; messages per second from the first message's send
//!   time to the last one's arrival, lost and duplicated counts, CPU time
//!   per message of each client process (from `wait4`) and its peak RSS
//!   (VmHWM: reported by the Rust children themselves as they end, read
//!   from /proc every 25 ms for the C clients).
//! - Latency: `--rate` messages per second (default 5,000) for
//!   `--latency-secs` (default 4); p50 / p99 / max from the send time a
//!   message carries to the moment the subscriber has it.
//! - Idle connections: `--conns` plover (and rumqttc) clients in one
//!   process, each subscribed and pinging (keepalive 5 s): time to connect
//!   them all and resident memory per connection.
//!
//! Each client runs in a process of its own (this same binary, re-run with
//! `child ...`), so its CPU time and memory are its own; Rust clients use a
//! current-thread tokio runtime. Both Rust clients have an in-flight window
//! of 20 (plover's default) and a queue of 1,000 requests.
//!
//! `cargo bench --bench e2e -- --help` for the options; scripts/bench.sh
//! runs it and turns its output (JSON lines, `--out`) into BENCHMARKS.md.
//! Without `--bench` on the command line (as when `cargo test
//! --all-targets` runs bench targets) it does nothing.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const PAYLOAD_LEN: usize = 64;
const INFLIGHT: u16 = 20;
const QUEUE: usize = 1000;
const TOPIC: &str = "bench/e2e";

// ---------------------------------------------------------------------------
// Small helpers shared by the parent and the children.

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// 64 bytes: the sequence number and the send time, then padding.
fn payload(seq: u64, sent_ns: u64) -> Vec<u8> {
    let mut p = format!("{seq:010} {sent_ns:020} ").into_bytes();
    p.resize(PAYLOAD_LEN, b'.');
    p
}

fn parse_payload(p: &[u8]) -> Option<(u64, u64)> {
    let seq = std::str::from_utf8(p.get(..10)?).ok()?.parse().ok()?;
    let sent = std::str::from_utf8(p.get(11..31)?).ok()?.parse().ok()?;
    Some((seq, sent))
}

/// What a subscriber saw.
struct Tally {
    n: u64,
    seen: Vec<u64>,
    received: u64,
    unique: u64,
    first_sent_ns: u64,
    last_recv_ns: u64,
    latencies: Vec<u64>,
    keep_latencies: bool,
}

impl Tally {
    fn new(n: u64, keep_latencies: bool) -> Tally {
        Tally {
            n,
            seen: vec![0; (n as usize).div_ceil(64)],
            received: 0,
            unique: 0,
            first_sent_ns: u64::MAX,
            last_recv_ns: 0,
            latencies: if keep_latencies {
                Vec::with_capacity(n as usize)
            } else {
                Vec::new()
            },
            keep_latencies,
        }
    }

    fn record(&mut self, payload: &[u8], recv_ns: u64) {
        let Some((seq, sent)) = parse_payload(payload) else {
            return;
        };
        if seq >= self.n {
            return;
        }
        self.received += 1;
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if self.seen[word] & (1 << bit) == 0 {
            self.seen[word] |= 1 << bit;
            self.unique += 1;
        }
        self.first_sent_ns = self.first_sent_ns.min(sent);
        self.last_recv_ns = self.last_recv_ns.max(recv_ns);
        if self.keep_latencies {
            self.latencies.push(recv_ns.saturating_sub(sent));
        }
    }

    fn done(&self) -> bool {
        self.unique >= self.n
    }

    fn json(&mut self) -> String {
        self.latencies.sort_unstable();
        let pct = |p: f64| -> u64 {
            if self.latencies.is_empty() {
                return 0;
            }
            let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
            self.latencies[i]
        };
        let span = self.last_recv_ns.saturating_sub(self.first_sent_ns);
        let rate = if span > 0 {
            self.unique as f64 / (span as f64 / 1e9)
        } else {
            0.0
        };
        format!(
            "{{\"received\":{},\"unique\":{},\"lost\":{},\"duplicated\":{},\"span_ns\":{},\"msgs_per_s\":{:.0},\"p50_ns\":{},\"p99_ns\":{},\"max_ns\":{}}}",
            self.received,
            self.unique,
            self.n - self.unique,
            self.received - self.unique,
            span,
            rate,
            pct(0.50),
            pct(0.99),
            self.latencies.last().copied().unwrap_or(0)
        )
    }
}

/// Paces a publisher at `rate` messages per second (0: as fast as it
/// goes): how many messages should have been sent by now.
struct Pace {
    start: Instant,
    rate: u64,
}

impl Pace {
    fn due(&self, n: u64) -> u64 {
        if self.rate == 0 {
            return n;
        }
        let elapsed = self.start.elapsed().as_nanos() as u64;
        (elapsed.saturating_mul(self.rate) / 1_000_000_000 + 1).min(n)
    }
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn flag(args: &[String], name: &str) -> bool {
    args.iter().any(|a| a == name)
}

fn qos_plover(q: u8) -> plover::QoS {
    plover::QoS::from_u8(q).unwrap_or(plover::QoS::AtMostOnce)
}

fn qos_rumqttc(q: u8) -> rumqttc::QoS {
    match q {
        0 => rumqttc::QoS::AtMostOnce,
        1 => rumqttc::QoS::AtLeastOnce,
        _ => rumqttc::QoS::ExactlyOnce,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

// ---------------------------------------------------------------------------
// Children: one client each.

fn child(args: &[String]) {
    let role = args.first().map(String::as_str).unwrap_or("");
    let client: String = arg(args, "--client", String::new());
    let port: u16 = arg(args, "--port", 1883);
    let qos: u8 = arg(args, "--qos", 0);
    let n: u64 = arg(args, "--n", 1000);
    let rate: u64 = arg(args, "--rate", 0);
    let id: String = arg(args, "--id", format!("e2e-{}", std::process::id()));
    let rt = runtime();
    let out = match (role, client.as_str()) {
        ("pub", "plover") => rt.block_on(plover_pub(port, &id, qos, n, rate)),
        ("sub", "plover") => rt.block_on(plover_sub(port, &id, qos, n, rate > 0)),
        ("pub", "rumqttc") => rt.block_on(rumqttc_pub(port, &id, qos, n, rate)),
        ("sub", "rumqttc") => rt.block_on(rumqttc_sub(port, &id, qos, n, rate > 0)),
        ("idle", "plover") => rt.block_on(plover_idle(port, n as usize)),
        ("idle", "rumqttc") => rt.block_on(rumqttc_idle(port, n as usize)),
        _ => Err(format!("unknown child {role} {client}")),
    };
    // The child's own peak memory, exact, read as it ends: the driver
    // then need not follow it closely (see `watch_hwm`).
    println!("HWM {}", self_rss_kib().1);
    match out {
        Ok(json) => println!("RESULT {json}"),
        Err(e) => {
            println!("ERROR {e}");
            std::process::exit(1);
        }
    }
}

async fn plover_pub(port: u16, id: &str, qos: u8, n: u64, rate: u64) -> Result<String, String> {
    let client = plover::Client::builder(id)
        .max_inflight_messages(INFLIGHT)
        .max_queued_messages(QUEUE)
        .build();
    client
        .connect("127.0.0.1", port, 60)
        .await
        .map_err(|e| e.to_string())?;
    let qos = qos_plover(qos);
    let pace = Pace {
        start: Instant::now(),
        rate,
    };
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    let mut last = None;
    let mut seq = 0;
    while seq < n {
        let due = pace.due(n);
        while seq < due {
            let handle = client
                .publish(TOPIC, payload(seq, now_ns()), qos, false)
                .await
                .map_err(|e| e.to_string())?;
            last = Some(handle);
            seq += 1;
        }
        if seq < n {
            tick.tick().await;
        }
    }
    if let Some(handle) = last {
        handle.await.map_err(|e| e.to_string())?;
    }
    let elapsed = pace.start.elapsed().as_nanos();
    client.disconnect().await.map_err(|e| e.to_string())?;
    Ok(format!("{{\"publish_ns\":{elapsed}}}"))
}

async fn plover_sub(port: u16, id: &str, qos: u8, n: u64, latency: bool) -> Result<String, String> {
    let client = plover::Client::builder(id)
        .max_inflight_messages(INFLIGHT)
        .build();
    let mut messages = client.messages();
    client
        .connect("127.0.0.1", port, 60)
        .await
        .map_err(|e| e.to_string())?;
    client
        .subscribe(TOPIC, qos_plover(qos))
        .await
        .map_err(|e| e.to_string())?;
    println!("READY");
    let mut tally = Tally::new(n, latency);
    let mut wait = Duration::from_secs(60);
    let deadline = Instant::now() + Duration::from_secs(300);
    while !tally.done() && Instant::now() < deadline {
        match tokio::time::timeout(wait, messages.recv()).await {
            Ok(Some(m)) => {
                tally.record(&m.payload, now_ns());
                wait = Duration::from_secs(3);
            }
            Ok(None) | Err(_) => break,
        }
    }
    let _ = client.disconnect().await;
    Ok(tally.json())
}

fn rumqttc_options(id: &str, port: u16) -> rumqttc::MqttOptions {
    let mut opts = rumqttc::MqttOptions::new(id, "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(60));
    opts.set_inflight(INFLIGHT);
    opts.set_clean_session(true);
    opts
}

async fn rumqttc_pub(port: u16, id: &str, qos: u8, n: u64, rate: u64) -> Result<String, String> {
    use rumqttc::{Event, Outgoing, Packet};
    let (client, mut eventloop) = rumqttc::AsyncClient::new(rumqttc_options(id, port), QUEUE);
    // Connect first, as plover's publisher does, then publish from a task
    // while this one drives the event loop and counts completions.
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => break,
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    let start = Instant::now();
    let publisher = {
        let client = client.clone();
        let qos = qos_rumqttc(qos);
        tokio::spawn(async move {
            let pace = Pace { start, rate };
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            let mut seq = 0;
            while seq < n {
                let due = pace.due(n);
                while seq < due {
                    if client
                        .publish(TOPIC, qos, false, payload(seq, now_ns()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    seq += 1;
                }
                if seq < n {
                    tick.tick().await;
                }
            }
        })
    };
    let mut done = 0u64;
    let deadline = Instant::now() + Duration::from_secs(300);
    while done < n && Instant::now() < deadline {
        match eventloop.poll().await {
            Ok(Event::Outgoing(Outgoing::Publish(_))) if qos == 0 => done += 1,
            Ok(Event::Incoming(Packet::PubAck(_))) if qos == 1 => done += 1,
            Ok(Event::Incoming(Packet::PubComp(_))) if qos == 2 => done += 1,
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    let elapsed = start.elapsed().as_nanos();
    let _ = publisher.await;
    let _ = client.disconnect().await;
    for _ in 0..100 {
        match eventloop.poll().await {
            Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    Ok(format!("{{\"publish_ns\":{elapsed},\"completed\":{done}}}"))
}

async fn rumqttc_sub(
    port: u16,
    id: &str,
    qos: u8,
    n: u64,
    latency: bool,
) -> Result<String, String> {
    use rumqttc::{Event, Packet};
    let (client, mut eventloop) = rumqttc::AsyncClient::new(rumqttc_options(id, port), QUEUE);
    client
        .subscribe(TOPIC, qos_rumqttc(qos))
        .await
        .map_err(|e| e.to_string())?;
    let mut tally = Tally::new(n, latency);
    let mut wait = Duration::from_secs(10);
    let deadline = Instant::now() + Duration::from_secs(300);
    while !tally.done() && Instant::now() < deadline {
        match tokio::time::timeout(wait, eventloop.poll()).await {
            Ok(Ok(Event::Incoming(Packet::SubAck(_)))) => {
                println!("READY");
                wait = Duration::from_secs(60);
            }
            Ok(Ok(Event::Incoming(Packet::Publish(p)))) => {
                tally.record(&p.payload, now_ns());
                wait = Duration::from_secs(3);
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => break,
        }
    }
    let _ = client.disconnect().await;
    for _ in 0..100 {
        match tokio::time::timeout(Duration::from_secs(1), eventloop.poll()).await {
            Ok(Ok(rumqttc::Event::Outgoing(rumqttc::Outgoing::Disconnect))) | Ok(Err(_)) => break,
            Err(_) => break,
            Ok(Ok(_)) => {}
        }
    }
    Ok(tally.json())
}

fn self_rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// How long idle clients stay connected before memory is read: two
/// keepalive periods, so every connection has pinged.
const IDLE_KEEPALIVE: u16 = 5;
const IDLE_HOLD: Duration = Duration::from_secs(11);
const CONNECT_PARALLEL: usize = 256;

async fn plover_idle(port: u16, n: usize) -> Result<String, String> {
    use futures::StreamExt;
    let (base, _) = self_rss_kib();
    let start = Instant::now();
    let results: Vec<Result<plover::Client, String>> = futures::stream::iter(0..n)
        .map(|i| async move {
            let client = plover::Client::new(format!("idle-plover-{i}"));
            client
                .connect("127.0.0.1", port, IDLE_KEEPALIVE)
                .await
                .map_err(|e| e.to_string())?;
            client
                .subscribe(&format!("idle/{i}"), plover::QoS::AtLeastOnce)
                .await
                .map_err(|e| e.to_string())?;
            Ok(client)
        })
        .buffer_unordered(CONNECT_PARALLEL)
        .collect()
        .await;
    let connect_ns = start.elapsed().as_nanos();
    let failed = results.iter().filter(|r| r.is_err()).count();
    let first_error = results.iter().find_map(|r| r.as_ref().err().cloned());
    let clients: Vec<plover::Client> = results.into_iter().filter_map(Result::ok).collect();
    tokio::time::sleep(IDLE_HOLD).await;
    let connected = clients.iter().filter(|c| c.is_connected()).count();
    let (rss, hwm) = self_rss_kib();
    for c in &clients {
        let _ = tokio::time::timeout(Duration::from_secs(1), c.disconnect()).await;
    }
    Ok(idle_json(
        n,
        connected,
        failed,
        first_error,
        connect_ns,
        base,
        rss,
        hwm,
    ))
}

async fn rumqttc_idle(port: u16, n: usize) -> Result<String, String> {
    use futures::StreamExt;
    use rumqttc::{Event, Packet};
    let (base, _) = self_rss_kib();
    let start = Instant::now();
    let results: Vec<Result<rumqttc::AsyncClient, String>> = futures::stream::iter(0..n)
        .map(|i| async move {
            let mut opts = rumqttc_options(&format!("idle-rumqttc-{i}"), port);
            opts.set_keep_alive(Duration::from_secs(IDLE_KEEPALIVE.into()));
            let (client, mut eventloop) = rumqttc::AsyncClient::new(opts, 10);
            client
                .subscribe(format!("idle/{i}"), rumqttc::QoS::AtLeastOnce)
                .await
                .map_err(|e| e.to_string())?;
            // Driven until the SUBACK here, then by a task of its own.
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => break,
                    Ok(_) => {}
                    Err(e) => return Err(e.to_string()),
                }
            }
            tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
            Ok(client)
        })
        .buffer_unordered(CONNECT_PARALLEL)
        .collect()
        .await;
    let connect_ns = start.elapsed().as_nanos();
    let failed = results.iter().filter(|r| r.is_err()).count();
    let first_error = results.iter().find_map(|r| r.as_ref().err().cloned());
    let clients: Vec<rumqttc::AsyncClient> = results.into_iter().filter_map(Result::ok).collect();
    tokio::time::sleep(IDLE_HOLD).await;
    let (rss, hwm) = self_rss_kib();
    for c in &clients {
        let _ = c.try_disconnect();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(idle_json(
        n,
        clients.len(),
        failed,
        first_error,
        connect_ns,
        base,
        rss,
        hwm,
    ))
}

#[allow(clippy::too_many_arguments)]
fn idle_json(
    n: usize,
    connected: usize,
    failed: usize,
    first_error: Option<String>,
    connect_ns: u128,
    base_kib: u64,
    rss_kib: u64,
    hwm_kib: u64,
) -> String {
    let per = if connected > 0 {
        (rss_kib.saturating_sub(base_kib) * 1024) as f64 / connected as f64
    } else {
        0.0
    };
    let error = first_error.unwrap_or_default().replace(['"', '\\'], "'");
    format!(
        "{{\"n\":{n},\"connected\":{connected},\"failed\":{failed},\"error\":\"{error}\",\"connect_ns\":{connect_ns},\"base_rss_kib\":{base_kib},\"rss_kib\":{rss_kib},\"hwm_kib\":{hwm_kib},\"bytes_per_conn\":{per:.0}}}"
    )
}

// ---------------------------------------------------------------------------
// The parent: broker, processes, measurements.

/// CPU time (from `wait4`) and peak memory of a finished child.
#[derive(Clone, Copy, Default)]
struct Usage {
    cpu_ns: u64,
    maxrss_kib: u64,
    exited_ok: bool,
}

/// The peak memory a Rust child reported as it ended (`HWM <KiB>`).
fn reported_hwm(line: &str) -> Option<u64> {
    line.strip_prefix("HWM ")?.trim().parse().ok()
}

/// A running process's peak resident set (VmHWM), KiB.
fn hwm_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Waits (polling, so the wait is bounded) for `pid` and returns its
/// resource usage, or `None` if it had not ended by `deadline`.
///
/// Peak memory is VmHWM read from /proc while the child runs, not
/// `wait4`'s `ru_maxrss`: Linux carries a parent's high-water mark over
/// `exec`, so `ru_maxrss` would report this driver's size for every child.
fn wait_usage(pid: u32, deadline: Instant) -> Option<Usage> {
    wait_usage_with(pid, deadline, 0)
}

/// How often the driver looks at a running child (its VmHWM, whether it
/// has exited). Not more often: on two cores, a driver waking every 2 ms
/// in three threads took enough from the children (pub, sub, broker) to
/// change how many messages each of their reads and writes carried, and
/// so their rates and CPU per message. The Rust children report their
/// exact peak themselves (`HWM` line); this only bounds how much of the
/// C clients' last moments the peak can miss, and VmHWM never goes down.
const WATCH_EVERY: Duration = Duration::from_millis(25);

/// Follows a child's VmHWM on a thread until it exits (bounded), so the
/// peak is known even when the child ends before anyone waits for it.
fn watch_hwm(pid: u32) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(600);
        let mut peak = 0;
        while Instant::now() < deadline {
            let h = hwm_kib(pid);
            if h == 0 && peak > 0 {
                break;
            }
            peak = peak.max(h);
            std::thread::sleep(WATCH_EVERY);
        }
        peak
    })
}

fn wait_usage_with(pid: u32, deadline: Instant, seen_hwm: u64) -> Option<Usage> {
    let mut hwm = seen_hwm;
    loop {
        hwm = hwm.max(hwm_kib(pid));
        let mut status = 0;
        // SAFETY: a zeroed rusage is a valid value of this plain C struct.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: pid is our own child; status and usage are valid
        // pointers to locals for the duration of the call.
        let r = unsafe { libc::wait4(pid as libc::pid_t, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid as libc::pid_t {
            let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1000;
            return Some(Usage {
                cpu_ns: tv(usage.ru_utime) + tv(usage.ru_stime),
                maxrss_kib: hwm,
                exited_ok: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            });
        }
        if r < 0 || Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(WATCH_EVERY.min(deadline.saturating_duration_since(Instant::now())));
    }
}

/// Every line a child wrote, once its stdout has closed (bounded wait).
fn all_lines(rx: &mpsc::Receiver<String>) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(line) => out.push(line),
            Err(_) => return out,
        }
    }
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// Raises this process's open-file limit to its hard limit; children
/// (mosquitto, the idle-connection child) inherit it.
fn raise_fd_limit() -> u64 {
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        }
        lim.rlim_cur as u64
    }
}

/// Bytes a process has read so far (from /proc), to see whether it is
/// still receiving.
fn rchar(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .ok()?
        .lines()
        .find(|l| l.starts_with("rchar:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

struct Broker {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Broker {
    fn start() -> Broker {
        let dir = std::env::temp_dir().join(format!("plover-e2e-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("free port");
            // Queue limits high enough that mosquitto drops nothing for a
            // subscriber that falls behind a flood; the same for every client.
            let config = format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\nmax_connections -1\n\
                 persistence false\nuser root\nmax_queued_messages 1000000\n\
                 max_queued_bytes 0\nlog_dest stderr\nlog_type error\nlog_type warning\n\
                 log_type notice\nlog_type subscribe\n"
            );
            let conf = dir.join("mosquitto.conf");
            std::fs::write(&conf, config).expect("write mosquitto.conf");
            let log = std::fs::File::create(dir.join("mosquitto.log")).expect("log");
            let mut child = Command::new("mosquitto")
                .arg("-c")
                .arg(&conf)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("mosquitto is installed (apt-get install mosquitto mosquitto-clients)");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Broker { child, port, dir };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("mosquitto did not start");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("mosquitto.log")).unwrap_or_default()
    }

    /// Waits until the broker's log has a line containing `what`.
    fn wait_log(&self, what: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log().contains(what) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Reads a child's stdout lines on a thread.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().expect("piped stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn spawn_self(args: &[String]) -> Child {
    let exe = std::env::current_exe().expect("own path");
    Command::new(exe)
        .arg("child")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child")
}

/// Writes `n` lines to mosquitto_pub's stdin, paced like the Rust
/// publishers, each stamped as it is written.
fn feed(stdin: ChildStdin, n: u64, rate: u64) {
    let mut w = std::io::BufWriter::with_capacity(if rate == 0 { 8192 } else { 0 }, stdin);
    let pace = Pace {
        start: Instant::now(),
        rate,
    };
    let mut seq = 0;
    while seq < n {
        let due = pace.due(n);
        while seq < due {
            let mut line = payload(seq, now_ns());
            line.push(b'\n');
            if w.write_all(&line).is_err() {
                return;
            }
            seq += 1;
        }
        if rate > 0 {
            let _ = w.flush();
            if seq < n {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
    let _ = w.flush();
}

struct RunResult {
    sub: String,
    pub_usage: Usage,
    sub_usage: Usage,
    /// CPU time the broker spent from the publisher's start to the
    /// subscriber's end, and that window's length: how busy the broker was.
    broker_cpu_ns: u64,
    window_ns: u64,
    /// The Rust publishers' time from their first publish to having
    /// handed the last one to the connection (QoS 0: written to the
    /// socket; QoS 1/2: acknowledged); 0 for the C client.
    publish_ns: u64,
}

/// CPU time (user + system) a running process has used so far, from
/// /proc (in clock ticks, 10 ms on most kernels).
fn proc_cpu_ns(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // The fields after the command name, which is in parentheses and may
    // hold spaces: utime and stime are the 12th and 13th of them.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0;
    };
    let ticks: u64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf only reads a configuration value.
    let per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    ticks * 1_000_000_000 / per_sec
}

fn run_pair(broker: &Broker, client: &str, qos: u8, n: u64, rate: u64, tag: &str) -> RunResult {
    let port = broker.port.to_string();
    let sub_id = format!("e2e-sub-{tag}");
    let pub_id = format!("e2e-pub-{tag}");
    let deadline = Instant::now() + Duration::from_secs(240);

    // The subscriber, and the moment it is subscribed.
    let (sub, sub_lines) = if client == "mosquitto" {
        let mut sub = Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &port, "-t", TOPIC, "-i", &sub_id])
            .args(["-q", &qos.to_string(), "-F", "%U %p", "-C", &n.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("mosquitto_sub is installed");
        let lines = lines_of(&mut sub);
        let subscribed =
            broker.wait_log(&format!("{sub_id} {qos} {TOPIC}"), Duration::from_secs(10));
        assert!(
            subscribed,
            "mosquitto_sub did not subscribe:\n{}",
            broker.log()
        );
        (sub, lines)
    } else {
        let args: Vec<String> = [
            "sub",
            "--client",
            client,
            "--port",
            &port,
            "--qos",
            &qos.to_string(),
            "--n",
            &n.to_string(),
            "--rate",
            &rate.to_string(),
            "--id",
            &sub_id,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut sub = spawn_self(&args);
        let lines = lines_of(&mut sub);
        match lines.recv_timeout(Duration::from_secs(10)) {
            Ok(l) if l == "READY" => {}
            other => panic!("{client} subscriber not ready: {other:?}"),
        }
        (sub, lines)
    };

    let sub_hwm = watch_hwm(sub.id());
    let broker_cpu_start = proc_cpu_ns(broker.child.id());
    let window_start = Instant::now();

    // The publisher.
    let mut publisher = if client == "mosquitto" {
        let mut p = Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &port, "-t", TOPIC, "-i", &pub_id])
            .args(["-q", &qos.to_string(), "-M", &INFLIGHT.to_string(), "-l"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("mosquitto_pub is installed");
        let stdin = p.stdin.take().expect("piped stdin");
        let connected = broker.wait_log(&format!("as {pub_id} "), Duration::from_secs(10));
        assert!(connected, "mosquitto_pub did not connect");
        std::thread::spawn(move || feed(stdin, n, rate));
        p
    } else {
        let args: Vec<String> = [
            "pub",
            "--client",
            client,
            "--port",
            &port,
            "--qos",
            &qos.to_string(),
            "--n",
            &n.to_string(),
            "--rate",
            &rate.to_string(),
            "--id",
            &pub_id,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        spawn_self(&args)
    };
    let pub_hwm = watch_hwm(publisher.id());
    let pub_lines = if client == "mosquitto" {
        None
    } else {
        Some(lines_of(&mut publisher))
    };
    let mut pub_usage = wait_usage(publisher.id(), deadline).unwrap_or_else(|| {
        signal(publisher.id(), libc::SIGKILL);
        wait_usage(publisher.id(), Instant::now() + Duration::from_secs(5)).unwrap_or_default()
    });
    pub_usage.maxrss_kib = pub_usage.maxrss_kib.max(pub_hwm.join().unwrap_or(0));
    let mut publish_ns = 0;
    if let Some(lines) = pub_lines {
        for line in all_lines(&lines) {
            if let Some(j) = line.strip_prefix("RESULT ") {
                publish_ns = json_num(j, "publish_ns") as u64;
            } else if let Some(e) = line.strip_prefix("ERROR ") {
                eprintln!("{client} publisher: {e}");
            } else if let Some(kib) = reported_hwm(&line) {
                pub_usage.maxrss_kib = pub_usage.maxrss_kib.max(kib);
            }
        }
    }

    // mosquitto_sub exits by itself after n messages; if some were lost,
    // stop it once it has read nothing for 3 s.
    let mut sub_usage = if client == "mosquitto" {
        let mut last = (rchar(sub.id()), Instant::now());
        loop {
            if let Some(u) = wait_usage(sub.id(), Instant::now() + Duration::from_millis(200)) {
                break u;
            }
            let now = rchar(sub.id());
            if now != last.0 {
                last = (now, Instant::now());
            } else if last.1.elapsed() > Duration::from_secs(3) || Instant::now() > deadline {
                signal(sub.id(), libc::SIGTERM);
                break wait_usage(sub.id(), Instant::now() + Duration::from_secs(5))
                    .unwrap_or_default();
            }
        }
    } else {
        wait_usage(sub.id(), deadline).unwrap_or_else(|| {
            signal(sub.id(), libc::SIGKILL);
            wait_usage(sub.id(), Instant::now() + Duration::from_secs(5)).unwrap_or_default()
        })
    };
    sub_usage.maxrss_kib = sub_usage.maxrss_kib.max(sub_hwm.join().unwrap_or(0));
    let broker_cpu_ns = proc_cpu_ns(broker.child.id()).saturating_sub(broker_cpu_start);
    let window_ns = window_start.elapsed().as_nanos() as u64;

    let sub_json = if client == "mosquitto" {
        let mut tally = Tally::new(n, rate > 0);
        for line in all_lines(&sub_lines) {
            let Some((ts, payload)) = line.split_once(' ') else {
                continue;
            };
            let Some((secs, nanos)) = ts.split_once('.') else {
                continue;
            };
            let (Ok(secs), Ok(nanos)) = (secs.parse::<u64>(), nanos.parse::<u64>()) else {
                continue;
            };
            tally.record(payload.as_bytes(), secs * 1_000_000_000 + nanos);
        }
        tally.json()
    } else {
        let mut json = String::from("{}");
        for line in all_lines(&sub_lines) {
            if let Some(j) = line.strip_prefix("RESULT ") {
                json = j.to_string();
            } else if let Some(e) = line.strip_prefix("ERROR ") {
                eprintln!("{client} subscriber: {e}");
            } else if let Some(kib) = reported_hwm(&line) {
                sub_usage.maxrss_kib = sub_usage.maxrss_kib.max(kib);
            }
        }
        json
    };
    RunResult {
        sub: sub_json,
        pub_usage,
        sub_usage,
        broker_cpu_ns,
        window_ns,
        publish_ns,
    }
}

fn help() {
    println!(
        "e2e: plover vs rumqttc vs mosquitto_pub/sub through a local mosquitto\n\n\
         cargo bench --bench e2e -- [options]\n\
         --n N              messages per throughput run (100000)\n\
         --rate R           messages/s in the latency runs (5000)\n\
         --latency-secs S   length of a latency run (4)\n\
         --conns N          idle connections (10000; 0 skips)\n\
         --clients LIST     comma-separated: plover,rumqttc,mosquitto\n\
         --qos LIST         comma-separated QoS levels (0,1,2)\n\
         --repeat K         throughput rounds (each client once per round); the median is kept (9)\n\
         --out FILE         JSON lines output (target/e2e.jsonl)\n\
         --quick            --n 20000 --latency-secs 2 --conns 1000 --repeat 1"
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("child") {
        child(&args[1..]);
        return;
    }
    if flag(&args, "--help") || flag(&args, "-h") {
        help();
        return;
    }
    if !flag(&args, "--bench") {
        // `cargo test --all-targets` runs bench targets without --bench.
        println!("e2e: not run (no --bench); see `cargo bench --bench e2e -- --help`");
        return;
    }
    let quick = flag(&args, "--quick");
    let n: u64 = arg(&args, "--n", if quick { 20_000 } else { 100_000 });
    let rate: u64 = arg(&args, "--rate", 5000);
    let latency_secs: u64 = arg(&args, "--latency-secs", if quick { 2 } else { 4 });
    let conns: usize = arg(&args, "--conns", if quick { 1000 } else { 10_000 });
    let repeat: usize = arg(&args, "--repeat", if quick { 1 } else { 9 });
    let clients: String = arg(&args, "--clients", "plover,rumqttc,mosquitto".to_string());
    let qos_list: String = arg(&args, "--qos", "0,1,2".to_string());
    let out_path: PathBuf = arg(&args, "--out", PathBuf::from("target/e2e.jsonl"));
    let clients: Vec<&str> = clients.split(',').filter(|c| !c.is_empty()).collect();
    let qos_list: Vec<u8> = qos_list.split(',').filter_map(|q| q.parse().ok()).collect();

    let fd_limit = raise_fd_limit();
    let broker = Broker::start();
    let mut out = open_out(&out_path);
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    writeln!(
        out,
        "{{\"kind\":\"meta\",\"n\":{n},\"rate\":{rate},\"latency_secs\":{latency_secs},\"repeat\":{repeat},\"fd_limit\":{fd_limit},\"loadavg_start\":\"{}\"}}",
        loadavg.trim()
    )
    .ok();
    eprintln!(
        "e2e: mosquitto on 127.0.0.1:{}, fd limit {fd_limit}",
        broker.port
    );

    let mut run = 0;
    for &qos in &qos_list {
        // Throughput: `repeat` rounds in which every client runs once, so a
        // change in the machine's load mid-way hits all clients alike; the
        // median run by rate is kept for each.
        let mut runs: Vec<Vec<(f64, RunResult)>> = clients.iter().map(|_| Vec::new()).collect();
        for _ in 0..repeat {
            for (i, &client) in clients.iter().enumerate() {
                run += 1;
                let r = run_pair(&broker, client, qos, n, 0, &format!("{run}"));
                let rate = json_num(&r.sub, "msgs_per_s");
                eprintln!(
                    "throughput {client:9} qos {qos}: {:>8.0} msg/s (sent {:>8.0})  {}  pub cpu {:.2} us/msg, sub cpu {:.2} us/msg, broker cpu {:.2} us/msg, busy {:.0}%",
                    rate,
                    if r.publish_ns > 0 {
                        n as f64 * 1e9 / r.publish_ns as f64
                    } else {
                        0.0
                    },
                    r.sub,
                    r.pub_usage.cpu_ns as f64 / n as f64 / 1e3,
                    r.sub_usage.cpu_ns as f64 / n as f64 / 1e3,
                    r.broker_cpu_ns as f64 / n as f64 / 1e3,
                    busy_percent(&r),
                );
                runs[i].push((rate, r));
            }
        }
        for (&client, mut runs) in clients.iter().zip(runs) {
            // In round order too, so that each round's clients can be
            // compared with one another (they ran back to back).
            let by_round: Vec<String> = runs.iter().map(|(r, _)| format!("{r:.0}")).collect();
            runs.sort_by(|a, b| a.0.total_cmp(&b.0));
            let all: Vec<String> = runs.iter().map(|(r, _)| format!("{r:.0}")).collect();
            let (_, r) = &runs[runs.len() / 2];
            writeln!(
                out,
                "{{\"kind\":\"throughput\",\"client\":\"{client}\",\"qos\":{qos},\"n\":{n},\"sub\":{},\"all_rates\":[{}],\"rates_by_round\":[{}],\"pub_cpu_ns\":{},\"sub_cpu_ns\":{},\"pub_maxrss_kib\":{},\"sub_maxrss_kib\":{},\"pub_ok\":{},\"sub_ok\":{},\"broker_cpu_ns\":{},\"window_ns\":{},\"publish_ns\":{}}}",
                r.sub,
                all.join(","),
                by_round.join(","),
                r.pub_usage.cpu_ns,
                r.sub_usage.cpu_ns,
                r.pub_usage.maxrss_kib,
                r.sub_usage.maxrss_kib,
                r.pub_usage.exited_ok,
                r.sub_usage.exited_ok,
                r.broker_cpu_ns,
                r.window_ns,
                r.publish_ns
            )
            .ok();
        }

        // Latency at a fixed rate.
        for &client in &clients {
            run += 1;
            let m = rate * latency_secs;
            let r = run_pair(&broker, client, qos, m, rate, &format!("{run}"));
            eprintln!("latency    {client:9} qos {qos}: {}", r.sub);
            writeln!(
                out,
                "{{\"kind\":\"latency\",\"client\":\"{client}\",\"qos\":{qos},\"n\":{m},\"rate\":{rate},\"sub\":{},\"pub_cpu_ns\":{},\"sub_cpu_ns\":{}}}",
                r.sub, r.pub_usage.cpu_ns, r.sub_usage.cpu_ns
            )
            .ok();
            out.flush().ok();
        }
    }

    if conns > 0 {
        for client in ["plover", "rumqttc"] {
            if !clients.contains(&client) {
                continue;
            }
            let mut child = spawn_self(&[
                "idle".into(),
                "--client".into(),
                client.into(),
                "--port".into(),
                broker.port.to_string(),
                "--n".into(),
                conns.to_string(),
            ]);
            let lines = lines_of(&mut child);
            let usage = wait_usage(child.id(), Instant::now() + Duration::from_secs(600))
                .unwrap_or_else(|| {
                    signal(child.id(), libc::SIGKILL);
                    Usage::default()
                });
            let mut json = String::from("{}");
            for line in all_lines(&lines) {
                if let Some(j) = line.strip_prefix("RESULT ") {
                    json = j.to_string();
                } else if let Some(e) = line.strip_prefix("ERROR ") {
                    eprintln!("idle {client}: {e}");
                }
            }
            eprintln!("idle       {client:9}: {json}");
            writeln!(
                out,
                "{{\"kind\":\"idle\",\"client\":\"{client}\",\"result\":{json},\"maxrss_kib\":{},\"cpu_ns\":{}}}",
                usage.maxrss_kib, usage.cpu_ns
            )
            .ok();
            out.flush().ok();
        }
    }
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    writeln!(
        out,
        "{{\"kind\":\"end\",\"loadavg_end\":\"{}\"}}",
        loadavg.trim()
    )
    .ok();
    eprintln!("e2e: results in {}", out_path.display());
}

/// The broker's CPU time over a run's window, in percent of one core.
fn busy_percent(r: &RunResult) -> f64 {
    r.broker_cpu_ns as f64 * 100.0 / r.window_ns.max(1) as f64
}

fn open_out(path: &Path) -> std::fs::File {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::File::create(path).expect("create the output file")
}

/// A number field of a flat JSON object (enough for our own output).
fn json_num(json: &str, key: &str) -> f64 {
    let pat = format!("\"{key}\":");
    json.find(&pat)
        .map(|i| &json[i + pat.len()..])
        .and_then(|rest| {
            let end = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
                .unwrap_or(rest.len());
            rest[..end].parse().ok()
        })
        .unwrap_or(0.0)
}
