//! A fault-injecting TCP proxy for the resilience tests: it sits between a
//! client and a real mosquitto on loopback, forwards bytes both ways, and
//! breaks the link when the test says so.
//!
//! Faults:
//! - [`Proxy::cut_all`]: every open connection is reset at once, both
//!   directions (`SO_LINGER` 0, so the peers see a reset, not a goodbye);
//! - [`Proxy::refuse`]: new connections are reset as soon as they are
//!   accepted, as if the broker were down, while it stays up for others;
//! - [`Proxy::stall`]: nothing is forwarded in either direction while the
//!   sockets stay open, like a half-open link (a cable pulled somewhere in
//!   between); new connections are accepted but stall too;
//! - [`Proxy::cut_after_bytes`]: cut once `n` more bytes have passed in
//!   either direction, which usually lands in the middle of a packet;
//! - [`Proxy::random_cuts`]: the same, again and again, at offsets drawn
//!   from a seeded (so repeatable) generator;
//! - [`Proxy::cut_on`]: watch the byte stream and cut just before or just
//!   after a packet of some type passes one way, e.g. between the broker's
//!   PUBREC and the client's PUBREL.
//!
//! Watching decodes a copy of each direction with `plover::codec::decode`
//! (the protocol version comes from the client's CONNECT), so it also knows
//! whether a cut fell on a packet boundary or inside a packet, and lists
//! the PUBLISHes it forwarded as they were on the wire
//! ([`Proxy::publishes`]: topic aliases and all).
//!
//! Everything is bounded: reads are 16 KiB at most, upstream connects time
//! out, and dropping the [`Proxy`] aborts its accept task, whose task set
//! owns (and so aborts) every connection task.
#![allow(dead_code)] // each test binary uses a different part of it

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use plover::codec::{self, Packet, PacketType, ProtocolVersion};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// Which way bytes travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    /// Client to broker.
    ToBroker,
    /// Broker to client.
    ToClient,
}

/// Where, relative to the watched packet, a packet-triggered cut falls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    /// The packet is not forwarded (bytes of it already sent stay sent):
    /// the receiver never gets it.
    Before,
    /// The packet is forwarded whole, then the link is cut.
    After,
}

/// What made a cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// [`Proxy::cut_all`].
    Manual,
    /// A byte budget ran out ([`Proxy::cut_after_bytes`], random mode).
    Bytes,
    /// A watched packet passed ([`Proxy::cut_on`]).
    Packet(Dir, PacketType, Moment),
}

/// One cut, for the test's report.
#[derive(Debug, Clone, Copy)]
pub struct Cut {
    pub cause: Cause,
    /// The direction whose bytes triggered it (none for a manual cut).
    pub dir: Option<Dir>,
    /// True when the receiving side was left with part of a packet.
    pub mid_packet: bool,
}

/// A small deterministic generator (SplitMix64): the same seed gives the
/// same cut offsets on every run.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        assert!(lo <= hi, "empty range {lo}..={hi}");
        lo + self.next_u64() % (hi - lo + 1)
    }
}

#[derive(Debug, Clone, Copy)]
struct Trigger {
    dir: Dir,
    packet: PacketType,
    moment: Moment,
}

/// What is armed. One lock guards it; it is held only to decide about one
/// chunk, never across an await.
#[derive(Debug)]
struct Plan {
    /// Bytes that may still pass before the next cut.
    budget: Option<u64>,
    trigger: Option<Trigger>,
    rng: Rng,
    /// Random mode: offsets drawn from `lo..=hi`, `left` more cuts.
    random: Option<(u64, u64, usize)>,
    cuts: Vec<Cut>,
}

#[derive(Debug)]
struct Control {
    upstream: u16,
    plan: Mutex<Plan>,
    /// Counts cuts; every connection task watches it and closes when it
    /// moves.
    generation: watch::Sender<u64>,
    stalled: watch::Sender<bool>,
    /// Connections accepted so far; also numbers them, in order.
    accepted: AtomicUsize,
    upstream_failures: AtomicUsize,
    /// Reset new connections at once ([`Proxy::refuse`]).
    refusing: AtomicBool,
    refused: AtomicUsize,
    open: AtomicUsize,
    forwarded: [AtomicU64; 2],
    /// Per direction, the most QoS 1/2 PUBLISHes seen going that way on
    /// one connection without their PUBACK or PUBCOMP coming back.
    max_window: [AtomicI64; 2],
    /// Per direction, QoS 2 exchanges by packet identifier, across
    /// connections (the session outlives them), to catch a sender that
    /// sends a PUBLISH again after its PUBREL.
    qos2: [Mutex<HashMap<u16, Exchange>>; 2],
    /// Per direction, the messages (topic, payload) sent again after their
    /// PUBREL.
    republished: [Mutex<Vec<(String, Bytes)>>; 2],
    /// Per direction, every PUBLISH forwarded whole, as it was on the wire.
    publishes: [Mutex<Vec<WirePublish>>; 2],
}

/// A PUBLISH as it went through the proxy: the topic and alias as they
/// were on the wire (with a Topic Alias the topic may be empty), not as the
/// receiver resolves them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WirePublish {
    /// The number of the connection it went by on.
    pub connection: usize,
    pub topic: String,
    pub topic_alias: Option<u16>,
    pub qos: plover::QoS,
    pub payload_len: usize,
}

/// One QoS 2 exchange as the proxy saw it.
#[derive(Debug)]
struct Exchange {
    topic: String,
    payload: Bytes,
    /// The number of the connection on which the sender's PUBREL was
    /// forwarded whole to the receiver (one the proxy kept back does not
    /// count).
    released_on: Option<usize>,
}

impl Control {
    fn plan(&self) -> MutexGuard<'_, Plan> {
        self.plan.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a cut and tells every connection to drop. A spent byte
    /// budget is re-armed in random mode; other armed faults stay armed.
    fn cut(&self, plan: &mut Plan, cut: Cut) {
        plan.cuts.push(cut);
        if cut.cause == Cause::Bytes {
            plan.budget = None;
            if let Some((lo, hi, left)) = plan.random.as_mut()
                && *left > 0
            {
                *left -= 1;
                let (lo, hi) = (*lo, *hi);
                plan.budget = Some(plan.rng.range(lo, hi));
            }
        }
        self.generation.send_modify(|g| *g += 1);
    }
}

/// The proxy. Dropping it stops it and closes every connection.
pub struct Proxy {
    /// The port clients connect to (on 127.0.0.1).
    pub port: u16,
    ctl: Arc<Control>,
    task: JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    /// A proxy on a free loopback port forwarding to `127.0.0.1:upstream`.
    /// `seed` drives the random cut offsets.
    pub async fn start(upstream: u16, seed: u64) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy's port");
        let port = listener.local_addr().expect("proxy address").port();
        let ctl = Arc::new(Control {
            upstream,
            plan: Mutex::new(Plan {
                budget: None,
                trigger: None,
                rng: Rng::new(seed),
                random: None,
                cuts: Vec::new(),
            }),
            generation: watch::channel(0).0,
            stalled: watch::channel(false).0,
            accepted: AtomicUsize::new(0),
            upstream_failures: AtomicUsize::new(0),
            refusing: AtomicBool::new(false),
            refused: AtomicUsize::new(0),
            open: AtomicUsize::new(0),
            forwarded: [AtomicU64::new(0), AtomicU64::new(0)],
            max_window: [AtomicI64::new(0), AtomicI64::new(0)],
            qos2: [Mutex::default(), Mutex::default()],
            republished: [Mutex::default(), Mutex::default()],
            publishes: [Mutex::default(), Mutex::default()],
        });
        let task = tokio::spawn(accept_loop(listener, ctl.clone()));
        Proxy { port, ctl, task }
    }

    /// Resets every open connection now.
    pub fn cut_all(&self) {
        let mut plan = self.ctl.plan();
        self.ctl.cut(
            &mut plan,
            Cut {
                cause: Cause::Manual,
                dir: None,
                mid_packet: false,
            },
        );
    }

    /// Resets (true) every connection from now on as soon as it is
    /// accepted, before anything is read or the broker is dialled, or stops
    /// doing so (false). Open connections are not touched; cut them with
    /// [`cut_all`](Proxy::cut_all). A client that reconnects with backoff
    /// is kept offline for as long as this lasts.
    pub fn refuse(&self, on: bool) {
        self.ctl.refusing.store(on, Ordering::SeqCst);
    }

    /// Connections reset by [`refuse`](Proxy::refuse) so far.
    pub fn refused(&self) -> usize {
        self.ctl.refused.load(Ordering::SeqCst)
    }

    /// Stops (true) or resumes (false) forwarding, keeping sockets open.
    pub fn stall(&self, on: bool) {
        self.ctl.stalled.send_replace(on);
    }

    /// Cuts every connection once `n` more bytes have been forwarded, in
    /// whichever direction they go. `n` = 0 cuts at the next byte read.
    pub fn cut_after_bytes(&self, n: u64) {
        self.ctl.plan().budget = Some(n);
    }

    /// Cuts after a number of bytes drawn from `lo..=hi` by the seeded
    /// generator; returns it.
    pub fn cut_after_random_bytes(&self, lo: u64, hi: u64) -> u64 {
        let mut plan = self.ctl.plan();
        let n = plan.rng.range(lo, hi);
        plan.budget = Some(n);
        n
    }

    /// Scheduled random mode: `count` cuts, each after a number of bytes
    /// drawn from `lo..=hi` counted from the previous cut.
    pub fn random_cuts(&self, lo: u64, hi: u64, count: usize) {
        if count == 0 {
            return;
        }
        let mut plan = self.ctl.plan();
        plan.random = Some((lo, hi, count - 1));
        let n = plan.rng.range(lo, hi);
        plan.budget = Some(n);
    }

    /// Cuts every connection when the next `packet` passes in `dir`,
    /// just before or just after it (see [`Moment`]). One shot.
    pub fn cut_on(&self, dir: Dir, packet: PacketType, moment: Moment) {
        self.ctl.plan().trigger = Some(Trigger {
            dir,
            packet,
            moment,
        });
    }

    /// Disarms byte budgets, random mode and packet triggers.
    pub fn disarm(&self) {
        let mut plan = self.ctl.plan();
        plan.budget = None;
        plan.trigger = None;
        plan.random = None;
    }

    /// Cuts made so far.
    pub fn cuts(&self) -> Vec<Cut> {
        self.ctl.plan().cuts.clone()
    }

    /// Number of cuts made so far.
    pub fn cut_count(&self) -> usize {
        *self.ctl.generation.borrow() as usize
    }

    /// Waits until at least `n` cuts have been made, at most `limit`;
    /// false if they were not.
    pub async fn wait_cuts(&self, n: usize, limit: Duration) -> bool {
        let mut rx = self.ctl.generation.subscribe();
        tokio::time::timeout(limit, rx.wait_for(|g| *g as usize >= n))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Connections accepted from clients so far.
    pub fn accepted(&self) -> usize {
        self.ctl.accepted.load(Ordering::SeqCst)
    }

    /// Accepted connections for which the broker could not be reached.
    pub fn upstream_failures(&self) -> usize {
        self.ctl.upstream_failures.load(Ordering::SeqCst)
    }

    /// Connections currently open (both halves not yet finished).
    pub fn open(&self) -> usize {
        self.ctl.open.load(Ordering::SeqCst)
    }

    /// Bytes forwarded so far in `dir`.
    pub fn forwarded(&self, dir: Dir) -> u64 {
        self.ctl.forwarded[dir as usize].load(Ordering::SeqCst)
    }

    /// The most QoS 1/2 PUBLISHes seen in flight in `dir` on one
    /// connection: sent that way, their PUBACK or PUBCOMP not yet seen
    /// coming back. The proxy sees a publish after its sender sent it and
    /// an acknowledgement before its receiver gets it, so this is a lower
    /// bound of the sender's true window.
    pub fn max_window(&self, dir: Dir) -> i64 {
        self.ctl.max_window[dir as usize].load(Ordering::SeqCst)
    }

    /// QoS 2 messages (topic, payload) sent in `dir` again, as PUBLISH, after
    /// their sender had already sent the PUBREL: §4.3.3 of both versions
    /// says the sender "MUST NOT re-send the PUBLISH once it has sent the
    /// corresponding PUBREL" ([MQTT-4.3.3-1] in 3.1.1). The receiver has
    /// forgotten the identifier by then and must take it for a new message.
    ///
    /// Only a PUBREL the proxy forwarded whole counts: one a cut kept from
    /// the receiver released nothing there, so a PUBLISH sent again after
    /// it is one the receiver must still recognise as a duplicate, and it
    /// is not listed here.
    pub fn republished_after_pubrel(&self, dir: Dir) -> Vec<(String, Bytes)> {
        self.ctl.republished[dir as usize]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Every PUBLISH forwarded whole in `dir` so far, in order, with its
    /// topic and Topic Alias as they were on the wire.
    pub fn publishes(&self, dir: Dir) -> Vec<WirePublish> {
        self.ctl.publishes[dir as usize]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until no connection is open, at most `limit`.
    pub async fn wait_closed(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while self.open() > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }
}

/// Decrements the open count when both directions of a connection ended.
struct OpenGuard(Arc<Control>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn accept_loop(listener: TcpListener, ctl: Arc<Control>) {
    // Owns every connection task: aborting this task drops the set, which
    // aborts them all.
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { continue };
                if ctl.refusing.load(Ordering::SeqCst) {
                    ctl.refused.fetch_add(1, Ordering::SeqCst);
                    // Dropped with linger 0: a reset, as from a closed port.
                    let _ = client.set_zero_linger();
                    continue;
                }
                let number = ctl.accepted.fetch_add(1, Ordering::SeqCst);
                // Subscribed before connecting upstream: a cut from now on
                // applies to this connection too.
                let generation = ctl.generation.subscribe();
                let ctl = ctl.clone();
                tasks.spawn(async move { connection(ctl, client, generation, number).await });
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
}

async fn connection(
    ctl: Arc<Control>,
    client: TcpStream,
    generation: watch::Receiver<u64>,
    number: usize,
) {
    let upstream = tokio::time::timeout(
        Duration::from_secs(2),
        TcpStream::connect(("127.0.0.1", ctl.upstream)),
    )
    .await;
    let broker = match upstream {
        Ok(Ok(broker)) => broker,
        _ => {
            // The broker is down: the client sees its connection reset.
            ctl.upstream_failures.fetch_add(1, Ordering::SeqCst);
            let _ = client.set_zero_linger();
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = broker.set_nodelay(true);
    ctl.open.fetch_add(1, Ordering::SeqCst);
    let guard = Arc::new(OpenGuard(ctl.clone()));
    let link = Arc::new(Link {
        number,
        ..Link::default()
    });
    let (client_read, client_write) = client.into_split();
    let (broker_read, broker_write) = broker.into_split();
    let up = pump(
        ctl.clone(),
        Dir::ToBroker,
        client_read,
        broker_write,
        link.clone(),
        generation.clone(),
        guard.clone(),
    );
    let down = pump(
        ctl.clone(),
        Dir::ToClient,
        broker_read,
        client_write,
        link,
        generation,
        guard,
    );
    tokio::join!(up, down);
}

/// Waits while the proxy is stalled. False if a cut came meanwhile.
async fn flowing(
    stalled: &mut watch::Receiver<bool>,
    generation: &mut watch::Receiver<u64>,
) -> bool {
    loop {
        if generation.has_changed().unwrap_or(true) {
            return false;
        }
        if !*stalled.borrow_and_update() {
            return true;
        }
        tokio::select! {
            changed = stalled.changed() => if changed.is_err() { return false },
            _ = generation.changed() => return false,
        }
    }
}

/// Forwards one direction until end of file, an error, or a cut.
async fn pump(
    ctl: Arc<Control>,
    dir: Dir,
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    link: Arc<Link>,
    mut generation: watch::Receiver<u64>,
    _open: Arc<OpenGuard>,
) {
    let mut stalled = ctl.stalled.subscribe();
    let mut buf = vec![0u8; 16 * 1024];
    let mut watcher = Watcher::new(dir, link);
    let cut = loop {
        if !flowing(&mut stalled, &mut generation).await {
            break true;
        }
        let read = tokio::select! {
            read = from.read(&mut buf) => read,
            _ = generation.changed() => break true,
            // Stalled meanwhile: stop reading (the read is cancel safe).
            _ = stalled.changed() => continue,
        };
        let n = match read {
            Ok(0) | Err(_) => {
                // Pass the end of the stream on; the other direction goes on
                // until its own end.
                let _ = to.shutdown().await;
                break false;
            }
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        let (seen, forward, cut) = decide(&ctl, dir, chunk, &mut watcher);
        // In-flight windows move before the write: once the bytes are out
        // the receiver may answer, and its acknowledgement must not be
        // counted before the PUBLISH it answers. (If the write then fails
        // the link is dead, and so is its window.)
        watcher.track_windows(&ctl, &seen, forward);
        if !flowing(&mut stalled, &mut generation).await {
            break true;
        }
        if forward > 0 {
            let written = tokio::select! {
                written = to.write_all(&chunk[..forward]) => written,
                _ = generation.changed() => break true,
            };
            if written.is_err() {
                break false;
            }
            ctl.forwarded[dir as usize].fetch_add(forward as u64, Ordering::SeqCst);
            // Only now did the receiver get these packets: a PUBREL the cut
            // kept from it has released nothing.
            watcher.track_forwarded(&ctl, &seen, forward);
        }
        if let Some(cut) = cut {
            let mut plan = ctl.plan();
            ctl.cut(&mut plan, cut);
            break true;
        }
    };
    if cut {
        // A reset, not a goodbye: both peers see the link break.
        let _ = to.as_ref().set_zero_linger();
    }
}

/// The packets in `chunk`, how much of it to forward, and whether to cut
/// after that.
fn decide(
    ctl: &Control,
    dir: Dir,
    chunk: &[u8],
    watcher: &mut Watcher,
) -> (Chunk, usize, Option<Cut>) {
    let seen = watcher.feed(chunk);
    let mut plan = ctl.plan();
    let mut cut: Option<(usize, Cut)> = None;
    if let Some(t) = plan.trigger.filter(|t| t.dir == dir)
        && let Some(p) = seen.packets.iter().find(|p| p.kind == t.packet)
    {
        let at = match t.moment {
            Moment::Before => usize::try_from(p.start.max(0)).unwrap_or(0),
            Moment::After => p.end,
        };
        plan.trigger = None;
        let mid_packet = !seen.is_boundary(at);
        cut = Some((
            at,
            Cut {
                cause: Cause::Packet(t.dir, t.packet, t.moment),
                dir: Some(dir),
                mid_packet,
            },
        ));
    }
    if let Some(budget) = plan.budget {
        let len = chunk.len() as u64;
        if len >= budget {
            let at = budget as usize;
            if cut.is_none_or(|(c, _)| at < c) {
                cut = Some((
                    at,
                    Cut {
                        cause: Cause::Bytes,
                        dir: Some(dir),
                        mid_packet: !seen.is_boundary(at),
                    },
                ));
            }
        } else if cut.is_none() {
            plan.budget = Some(budget - len);
        }
    }
    match cut {
        Some((at, cut)) => (seen, at, Some(cut)),
        None => (seen, chunk.len(), None),
    }
}

/// A packet found in a chunk: its type and where it starts and ends,
/// relative to the chunk (a start below 0 means it began in an earlier
/// chunk).
#[derive(Debug)]
struct Seen {
    kind: PacketType,
    /// A QoS 1/2 PUBLISH: opens an exchange.
    opens: bool,
    /// The packet identifier, for PUBLISH (QoS 1/2) and its answers.
    id: Option<u16>,
    /// A QoS 2 PUBLISH: its topic and payload.
    qos2: Option<(String, Bytes)>,
    /// A PUBLISH as it was on the wire.
    wire: Option<WirePublish>,
    start: i64,
    end: usize,
}

#[derive(Debug, Default)]
struct Chunk {
    packets: Vec<Seen>,
    /// True when the chunk began on a packet boundary.
    starts_clean: bool,
    /// False once the stream could not be decoded: boundaries unknown.
    decoded: bool,
}

impl Chunk {
    /// The packets that end within the first `forward` bytes: those the
    /// receiver gets whole once they are forwarded. A packet cut off after
    /// its first bytes never arrives.
    fn within(&self, forward: usize) -> impl Iterator<Item = &Seen> {
        self.packets.iter().filter(move |p| p.end <= forward)
    }

    /// Whether offset `at` of the chunk falls between two packets.
    fn is_boundary(&self, at: usize) -> bool {
        if !self.decoded {
            return false;
        }
        (at == 0 && self.starts_clean) || self.packets.iter().any(|p| p.end == at)
    }
}

/// What the two directions of one connection share.
#[derive(Debug, Default)]
struct Link {
    /// Its number, in the order connections were accepted.
    number: usize,
    /// The client's protocol version, from its CONNECT.
    version: OnceLock<ProtocolVersion>,
    /// Per direction, QoS 1/2 PUBLISHes sent that way and not yet
    /// acknowledged (PUBACK, PUBCOMP) the other way.
    window: [AtomicI64; 2],
}

/// Decodes a copy of one direction's bytes to find packet boundaries.
struct Watcher {
    dir: Dir,
    link: Arc<Link>,
    pending: BytesMut,
    broken: bool,
}

impl Watcher {
    fn new(dir: Dir, link: Arc<Link>) -> Watcher {
        Watcher {
            dir,
            link,
            pending: BytesMut::new(),
            broken: false,
        }
    }

    /// Moves the in-flight windows by the packets of `seen` that are about
    /// to be forwarded (the first `forward` bytes).
    fn track_windows(&self, ctl: &Control, seen: &Chunk, forward: usize) {
        let (this, other) = (self.dir as usize, 1 - self.dir as usize);
        for p in seen.within(forward) {
            if p.opens {
                let now = self.link.window[this].fetch_add(1, Ordering::SeqCst) + 1;
                ctl.max_window[this].fetch_max(now, Ordering::SeqCst);
            } else if matches!(p.kind, PacketType::PubAck | PacketType::PubComp) {
                self.link.window[other].fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    /// Follows the QoS 2 exchanges sent this way, by the packets of `seen`
    /// that were forwarded (the first `forward` bytes, already written).
    /// A PUBREL counts as released only once the receiver got it whole:
    /// until then the receiver still holds the identifier and must take a
    /// PUBLISH sent again for the duplicate it is, so a second delivery of
    /// that one would be the receiver's fault, not to be excused.
    ///
    /// Also lists every PUBLISH forwarded (see [`Proxy::publishes`]).
    fn track_forwarded(&self, ctl: &Control, seen: &Chunk, forward: usize) {
        let this = self.dir as usize;
        let mut qos2 = ctl.qos2[this].lock().unwrap_or_else(|e| e.into_inner());
        let mut publishes = ctl.publishes[this]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for p in seen.within(forward) {
            if let Some(wire) = &p.wire {
                publishes.push(wire.clone());
            }
            match (p.kind, p.id, &p.qos2) {
                (PacketType::Publish, Some(id), Some((topic, payload))) => {
                    // Bytes an older connection still held (a stalled link
                    // drains after its successor took over) are history,
                    // not a new PUBLISH.
                    let stale = qos2
                        .get(&id)
                        .and_then(|e| e.released_on)
                        .is_some_and(|n| n > self.link.number);
                    if stale {
                        continue;
                    }
                    let again = qos2.get(&id).is_some_and(|e| {
                        e.released_on.is_some() && e.topic == *topic && e.payload == *payload
                    });
                    if again {
                        ctl.republished[this]
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push((topic.clone(), payload.clone()));
                    }
                    // Also a new message reusing the identifier.
                    qos2.insert(
                        id,
                        Exchange {
                            topic: topic.clone(),
                            payload: payload.clone(),
                            released_on: None,
                        },
                    );
                }
                (PacketType::PubRel, Some(id), _) => {
                    if let Some(e) = qos2.get_mut(&id) {
                        e.released_on = Some(e.released_on.unwrap_or(0).max(self.link.number));
                    }
                }
                _ => {}
            }
        }
    }

    fn feed(&mut self, chunk: &[u8]) -> Chunk {
        let mut out = Chunk {
            packets: Vec::new(),
            starts_clean: self.pending.is_empty(),
            decoded: !self.broken,
        };
        if self.broken {
            return out;
        }
        let before = self.pending.len() as i64;
        self.pending.extend_from_slice(chunk);
        // Offset in the chunk where the next packet starts.
        let mut offset = -before;
        loop {
            // The client speaks first; its CONNECT names the version. Until
            // then 3.1.1 decodes CONNECT as well as anything (CONNECT
            // carries its own level).
            let version = self
                .link
                .version
                .get()
                .copied()
                .unwrap_or(ProtocolVersion::V311);
            let len_before = self.pending.len();
            match codec::decode(&mut self.pending, version, usize::MAX) {
                Ok(Some(packet)) => {
                    let size = (len_before - self.pending.len()) as i64;
                    let end = offset + size;
                    if let Packet::Connect(c) = &packet
                        && self.dir == Dir::ToBroker
                    {
                        let _ = self.link.version.set(c.protocol);
                    }
                    let opens = matches!(&packet, Packet::Publish(p) if p.packet_id.is_some());
                    let (id, qos2) = match &packet {
                        Packet::Publish(p) => (
                            p.packet_id.map(|i| i.get()),
                            (p.qos == plover::QoS::ExactlyOnce)
                                .then(|| (p.topic.to_string(), p.payload.clone())),
                        ),
                        Packet::PubRel(r) => (Some(r.packet_id.get()), None),
                        _ => (None, None),
                    };
                    let wire = match &packet {
                        Packet::Publish(p) => Some(WirePublish {
                            connection: self.link.number,
                            topic: p.topic.to_string(),
                            topic_alias: p.properties.topic_alias,
                            qos: p.qos,
                            payload_len: p.payload.len(),
                        }),
                        _ => None,
                    };
                    out.packets.push(Seen {
                        kind: packet.packet_type(),
                        opens,
                        id,
                        qos2,
                        wire,
                        start: offset,
                        end: usize::try_from(end).unwrap_or(0),
                    });
                    offset = end;
                }
                Ok(None) => break,
                Err(_) => {
                    self.broken = true;
                    self.pending.clear();
                    out.decoded = false;
                    break;
                }
            }
        }
        out
    }
}
