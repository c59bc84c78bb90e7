//! Codec throughput: PUBLISH encode/decode from 64 B to 1 MiB payloads, a
//! realistic mixed stream of 10,000 packets, and the big 5.0 control packets.
//!
//! Run with `cargo bench --bench codec`; add `-- --quick` for a fast look.
//! Decoding is zero-copy, so decoding a PUBLISH should take about the same
//! time whatever its payload size; encoding copies the payload once.

use std::hint::black_box;
use std::num::{NonZeroU16, NonZeroU32};

use bytes::{Bytes, BytesMut};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use plover::codec::{
    self, AckProperties, Connect, ConnectProperties, LastWill, MqttString, Packet, PayloadFormat,
    ProtocolVersion, PubAck, PubComp, PubRec, PubRel, Publish, PublishProperties, QoS,
    RetainHandling, SubAck, SubAckReasonCode, Subscribe, SubscribeProperties, SubscriptionOptions,
    UserProperties, WillProperties,
};

const VERSIONS: [ProtocolVersion; 2] = [ProtocolVersion::V311, ProtocolVersion::V5];

/// Large enough for the 1 MiB PUBLISH with its headers.
const MAX_PACKET_SIZE: usize = 4 << 20;

fn s(v: &'static str) -> MqttString {
    MqttString::from_static(v)
}

fn id(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).unwrap_or(NonZeroU16::MIN)
}

fn encode_one(packet: &Packet, version: ProtocolVersion) -> Bytes {
    let mut buf = BytesMut::new();
    packet
        .encode(version, &mut buf)
        .expect("bench packet encodes");
    let bytes = buf.freeze();
    // A `Bytes` made from a `Vec` allocates its shared header on its first
    // clone; do that here so that cloning inside the timed loop is only a
    // reference-count bump, as it is for bytes from a network buffer.
    drop(bytes.clone());
    bytes
}

fn size_label(n: usize) -> String {
    match n {
        n if n >= 1 << 20 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 => format!("{} KiB", n >> 10),
        n => format!("{n} B"),
    }
}

/// The QoS 1 PUBLISH of the `publish_qos1` group; 5.0 adds a content type
/// and one user property.
fn publish_qos1(version: ProtocolVersion, payload_len: usize) -> Packet {
    let mut props = PublishProperties::default();
    if version == ProtocolVersion::V5 {
        props.content_type = Some(s("application/octet-stream"));
        props.user_properties = [(s("source"), s("bench"))]
            .into_iter()
            .collect::<UserProperties>();
    }
    Packet::Publish(
        Publish::new(s("home/living-room/temperature"), vec![0xA5u8; payload_len])
            .with_qos(QoS::AtLeastOnce, Some(id(42)))
            .with_properties(props),
    )
}

fn bench_publish_qos1(c: &mut Criterion) {
    let mut group = c.benchmark_group("publish_qos1");
    for version in VERSIONS {
        for payload_len in [64, 1 << 10, 64 << 10, 1 << 20] {
            let packet = publish_qos1(version, payload_len);
            let wire = encode_one(&packet, version);
            let label = size_label(payload_len);
            group.throughput(Throughput::Bytes(wire.len() as u64));

            let mut buf = BytesMut::with_capacity(wire.len());
            group.bench_function(BenchmarkId::new(format!("encode/{version}"), &label), |b| {
                b.iter(|| {
                    buf.clear();
                    black_box(&packet)
                        .encode(version, &mut buf)
                        .expect("encodes");
                    black_box(buf.len())
                })
            });

            group.bench_function(BenchmarkId::new(format!("decode/{version}"), &label), |b| {
                b.iter(|| {
                    let mut input = black_box(&wire).clone();
                    codec::decode_bytes(&mut input, version, MAX_PACKET_SIZE)
                        .expect("decodes")
                        .expect("is complete")
                })
            });
        }
    }
    group.finish();
}

/// A deterministic pseudo-random generator (xorshift64), so every run
/// benchmarks the same stream.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const STREAM_LEN: usize = 10_000;

/// What a busy client's connection carries: about 70% PUBLISH at every QoS
/// with payloads of 0 to 511 bytes, their acknowledgements, keepalive pings,
/// and now and then a SUBSCRIBE and its SUBACK.
fn mixed_packets() -> Vec<Packet> {
    const TOPICS: [&str; 4] = [
        "home/living-room/temperature",
        "home/kitchen/humidity",
        "factory/line-3/press/7/status",
        "v",
    ];
    let payload = Bytes::from(vec![0x42u8; 512]);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut packets = Vec::with_capacity(STREAM_LEN);
    for i in 0..STREAM_LEN {
        let pid = id((i % usize::from(u16::MAX)) as u16 + 1);
        let roll = rng.below(100);
        let packet = match roll {
            0..70 => {
                let topic = s(TOPICS[rng.below(TOPICS.len() as u64) as usize]);
                let len = rng.below(512) as usize;
                let qos = match rng.below(3) {
                    0 => QoS::AtMostOnce,
                    1 => QoS::AtLeastOnce,
                    _ => QoS::ExactlyOnce,
                };
                let packet_id = (qos != QoS::AtMostOnce).then_some(pid);
                Packet::Publish(Publish::new(topic, payload.slice(..len)).with_qos(qos, packet_id))
            }
            70..78 => Packet::PubAck(PubAck::new(pid)),
            78..82 => Packet::PubRec(PubRec::new(pid)),
            82..86 => Packet::PubRel(PubRel::new(pid)),
            86..90 => Packet::PubComp(PubComp::new(pid)),
            90..94 => Packet::PingReq,
            94..98 => Packet::PingResp,
            98 => Packet::Subscribe(Subscribe::new(
                pid,
                s("home/+/temperature"),
                SubscriptionOptions::new(QoS::AtLeastOnce),
            )),
            _ => Packet::SubAck(SubAck {
                packet_id: pid,
                reason_codes: vec![SubAckReasonCode::GrantedQoS1],
                properties: AckProperties::default(),
            }),
        };
        packets.push(packet);
    }
    packets
}

fn bench_mixed_stream(c: &mut Criterion) {
    let packets = mixed_packets();
    let mut group = c.benchmark_group("mixed_stream");
    group.throughput(Throughput::Elements(STREAM_LEN as u64));
    for version in VERSIONS {
        let mut buf = BytesMut::new();
        for p in &packets {
            p.encode(version, &mut buf).expect("encodes");
        }
        let wire = buf.freeze();
        drop(wire.clone());

        let mut buf = BytesMut::with_capacity(wire.len());
        group.bench_function(BenchmarkId::new("encode", version), |b| {
            b.iter(|| {
                buf.clear();
                for p in black_box(&packets) {
                    p.encode(version, &mut buf).expect("encodes");
                }
                black_box(buf.len())
            })
        });

        group.bench_function(BenchmarkId::new("decode", version), |b| {
            b.iter(|| {
                let mut input = black_box(&wire).clone();
                let mut n = 0usize;
                while let Some(packet) =
                    codec::decode_bytes(&mut input, version, MAX_PACKET_SIZE).expect("decodes")
                {
                    black_box(&packet);
                    n += 1;
                }
                assert_eq!(n, STREAM_LEN);
                n
            })
        });
    }
    group.finish();
}

/// A 5.0 CONNECT with the properties a real client sends, and a will.
fn connect_v5() -> Packet {
    let mut connect = Connect::new(ProtocolVersion::V5, s("plover-bench-client-0001"));
    connect.username = Some(s("device-0001"));
    connect.password = Some(Bytes::from_static(b"correct horse battery staple"));
    connect.properties = ConnectProperties {
        session_expiry_interval: Some(3600),
        receive_maximum: Some(64),
        maximum_packet_size: Some(1 << 20),
        topic_alias_maximum: Some(16),
        request_problem_information: Some(true),
        user_properties: [(s("firmware"), s("1.4.2"))].into_iter().collect(),
        ..ConnectProperties::default()
    };
    let mut will = LastWill::new(s("devices/0001/status"), "offline", QoS::AtLeastOnce, true);
    will.properties = WillProperties {
        will_delay_interval: Some(10),
        payload_format_indicator: Some(PayloadFormat::Utf8),
        message_expiry_interval: Some(86_400),
        content_type: Some(s("text/plain")),
        ..WillProperties::default()
    };
    connect.will = Some(will);
    Packet::Connect(Box::new(connect))
}

/// A 5.0 SUBSCRIBE with five filters, a subscription identifier and a user
/// property.
fn subscribe_v5() -> Packet {
    let opts = |qos, no_local, retain_handling| SubscriptionOptions {
        qos,
        no_local,
        retain_as_published: false,
        retain_handling,
    };
    Packet::Subscribe(Subscribe {
        packet_id: id(7),
        filters: vec![
            (
                s("home/+/temperature"),
                opts(QoS::AtLeastOnce, false, RetainHandling::SendAtSubscribe),
            ),
            (
                s("home/+/humidity"),
                opts(QoS::AtMostOnce, false, RetainHandling::SendAtSubscribe),
            ),
            (
                s("devices/0001/commands/#"),
                opts(QoS::ExactlyOnce, true, RetainHandling::DoNotSend),
            ),
            (
                s("$share/workers/jobs/#"),
                opts(
                    QoS::AtLeastOnce,
                    false,
                    RetainHandling::SendAtSubscribeIfNew,
                ),
            ),
            (
                s("alerts"),
                opts(QoS::AtLeastOnce, true, RetainHandling::SendAtSubscribe),
            ),
        ],
        properties: SubscribeProperties {
            subscription_identifier: NonZeroU32::new(12),
            user_properties: [(s("origin"), s("bench"))].into_iter().collect(),
        },
    })
}

fn bench_connect_subscribe_v5(c: &mut Criterion) {
    let version = ProtocolVersion::V5;
    let mut group = c.benchmark_group("connect_subscribe_v5");
    for (name, packet) in [("connect", connect_v5()), ("subscribe", subscribe_v5())] {
        let wire = encode_one(&packet, version);
        group.throughput(Throughput::Bytes(wire.len() as u64));

        let mut buf = BytesMut::with_capacity(wire.len());
        group.bench_function(BenchmarkId::new("encode", name), |b| {
            b.iter(|| {
                buf.clear();
                black_box(&packet)
                    .encode(version, &mut buf)
                    .expect("encodes");
                black_box(buf.len())
            })
        });

        group.bench_function(BenchmarkId::new("decode", name), |b| {
            b.iter(|| {
                let mut input = black_box(&wire).clone();
                codec::decode_bytes(&mut input, version, MAX_PACKET_SIZE)
                    .expect("decodes")
                    .expect("is complete")
            })
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    bench_publish_qos1,
    bench_mixed_stream,
    bench_connect_subscribe_v5
);
criterion_main!(benches);
