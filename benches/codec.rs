//! Codec throughput, side by side with the peer crates, all in one run on
//! the same bytes: PUBLISH encode/decode from 64 B to 1 MiB payloads, a
//! realistic mixed stream of 10,000 packets, a stream of 1,000 PUBLISH
//! acknowledgements of the four kinds in random order, and CONNECT /
//! SUBSCRIBE, each
//! for MQTT 3.1.1 (plover, rumqttc, mqttrs, mqtt-protocol) and 5.0 (plover,
//! rumqttc; the other two speak only 3.1.1).
//!
//! Run with `cargo bench --bench codec` (add `-- --quick` for a fast look,
//! or a filter such as `-- decode/mixed`); `scripts/bench.sh` runs it in
//! rounds (`--save-baseline round-N`, every other round with
//! `PLOVER_BENCH_ORDER=reverse`) and turns the results into the tables of
//! BENCHMARKS.md. Each crate encodes into a buffer of its own. See
//! `benches/peers/mod.rs`
//! for how each crate is driven. Decoding in plover is zero-copy, so
//! decoding a PUBLISH takes about the same time whatever its payload size;
//! encoding copies the payload once, except in the `plover_head` rows:
//! what the client does with payloads of 16 KiB and more, which it sends
//! from their own buffer (`Publish::encode_head`).

mod peers;

use std::hint::black_box;
use std::time::Duration;

use bytes::BytesMut;
use criterion::{
    BatchSize, Bencher, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main,
};
use plover::codec::ProtocolVersion;

use peers::{Case, mqtt_protocol_codec, mqttrs_codec, rumqttc_v4, rumqttc_v5};

/// Checks, once and outside any timing, that every crate reads the whole
/// input and writes the same bytes back; says so on stderr where a peer's
/// encoding differs from plover's (it then writes different bytes for the
/// same packets, which the tables should not hide).
fn check_case(case: &Case) {
    let n = case.packets.len();
    let note = |who: &str, out: &[u8]| {
        if out != &case.wire[..] {
            eprintln!(
                "note: {who} encodes {}/{} as {} bytes, plover as {}",
                case.group,
                case.param,
                out.len(),
                case.wire.len()
            );
        }
    };
    assert_eq!(peers::plover_decode(&case.wire, case.version), n);
    assert_eq!(peers::plover_decode_slice(&case.wire, case.version), n);
    match case.version {
        ProtocolVersion::V311 => {
            assert_eq!(rumqttc_v4::decode(&case.wire), n, "rumqttc");
            assert_eq!(mqttrs_codec::decode(&case.wire), n, "mqttrs");
            assert_eq!(mqtt_protocol_codec::decode(&case.wire), n, "mqtt-protocol");
            let p = rumqttc_v4::packets(&case.wire);
            let (mut buf, at) = peers::out_bytes(case, rumqttc_v4::payload(&p));
            let len = rumqttc_v4::encode(&p, &mut buf, at);
            note("rumqttc", &buf[at..at + len]);
            let p = mqttrs_codec::packets(&case.wire);
            let (mut out, at) = peers::out_slice(case, mqttrs_codec::payload(&p));
            let len = mqttrs_codec::encode(&p, &mut out[at..]);
            note("mqttrs", &out[at..at + len]);
            let p = mqtt_protocol_codec::packets(&case.wire);
            let (mut out, at) = peers::out_vec(case, mqtt_protocol_codec::payload(&p));
            let len = mqtt_protocol_codec::encode(&p, &mut out, at);
            note("mqtt-protocol", &out[at..at + len]);
        }
        ProtocolVersion::V5 => {
            assert_eq!(rumqttc_v5::decode(&case.wire), n, "rumqttc v5");
            let p = rumqttc_v5::packets(&case.wire);
            let (mut buf, at) = peers::out_bytes(case, rumqttc_v5::payload(&p));
            let len = rumqttc_v5::encode(&p, &mut buf, at);
            note("rumqttc", &buf[at..at + len]);
        }
    }
}

/// One crate's benchmark in a group, registered by [`run`].
type Entry<'a> = (String, Box<dyn FnMut(&mut Bencher<'_>) + 'a>);

/// A benchmark named `name` for [`run`].
fn entry<'a>(name: &str, f: impl FnMut(&mut Bencher<'_>) + 'a) -> Entry<'a> {
    (name.to_owned(), Box::new(f))
}

/// Runs a group's benchmarks in the order given, or reversed when the
/// environment says `PLOVER_BENCH_ORDER=reverse`: `scripts/bench.sh` runs
/// the codec in rounds and reverses every other one, so that whatever
/// drifts within a round (the machine's speed, caches, frequency) favours
/// no crate for being measured first.
fn run(
    c: &mut Criterion,
    group: String,
    throughput: Throughput,
    param: &str,
    mut entries: Vec<Entry<'_>>,
) {
    if std::env::var("PLOVER_BENCH_ORDER").is_ok_and(|o| o == "reverse") {
        entries.reverse();
    }
    let mut group = c.benchmark_group(group);
    group.throughput(throughput);
    for (name, mut f) in entries {
        group.bench_function(BenchmarkId::new(name, param), |b| f(b));
    }
    group.finish();
}

fn bench_decode(c: &mut Criterion, case: &Case) {
    let many = case.packets.len() > 1;
    let throughput = if many {
        Throughput::Elements(case.packets.len() as u64)
    } else {
        Throughput::Bytes(case.wire.len() as u64)
    };
    let (wire, version) = (&case.wire, case.version);
    let mut entries: Vec<Entry<'_>> = Vec::new();

    entries.push(entry("plover", move |b| {
        b.iter(|| peers::plover_decode(black_box(wire), version))
    }));
    entries.push(entry("plover_slice", move |b| {
        b.iter(|| peers::plover_decode_slice(black_box(wire), version))
    }));
    if many {
        entries.push(entry("plover_bytesmut", move |b| {
            b.iter_batched(
                || BytesMut::from(&wire[..]),
                |buf| peers::plover_decode_bytesmut(buf, version),
                BatchSize::LargeInput,
            )
        }));
    }
    match version {
        ProtocolVersion::V311 => {
            entries.push(entry("rumqttc", move |b| {
                b.iter(|| rumqttc_v4::decode(black_box(wire)))
            }));
            if many {
                entries.push(entry("rumqttc_bytesmut", move |b| {
                    b.iter_batched(
                        || BytesMut::from(&wire[..]),
                        rumqttc_v4::decode_bytesmut,
                        BatchSize::LargeInput,
                    )
                }));
            }
            entries.push(entry("mqttrs", move |b| {
                b.iter(|| mqttrs_codec::decode(black_box(wire)))
            }));
            entries.push(entry("mqtt-protocol", move |b| {
                b.iter(|| mqtt_protocol_codec::decode(black_box(wire)))
            }));
        }
        ProtocolVersion::V5 => {
            entries.push(entry("rumqttc", move |b| {
                b.iter(|| rumqttc_v5::decode(black_box(wire)))
            }));
            if many {
                entries.push(entry("rumqttc_bytesmut", move |b| {
                    b.iter_batched(
                        || BytesMut::from(&wire[..]),
                        rumqttc_v5::decode_bytesmut,
                        BatchSize::LargeInput,
                    )
                }));
            }
        }
    }
    run(
        c,
        format!("decode/{}", case.group),
        throughput,
        &case.param,
        entries,
    );
}

fn bench_encode(c: &mut Criterion, case: &Case) {
    let throughput = if case.packets.len() > 1 {
        Throughput::Elements(case.packets.len() as u64)
    } else {
        Throughput::Bytes(case.wire.len() as u64)
    };
    let version = case.version;
    // Each crate writes into a buffer of its own, of the same capacity,
    // placed alike (`peers::out_start`).
    let mut entries: Vec<Entry<'_>> = Vec::new();

    let packets = &case.packets;
    let (mut buf, at) = peers::out_bytes(case, peers::plover_payload(packets));
    entries.push(entry("plover", move |b| {
        b.iter(|| peers::plover_encode(black_box(packets), version, &mut buf, at))
    }));
    // Payloads the client sends from their own buffer (16 KiB and up).
    if case.group.starts_with("publish") && case.wire.len() >= 16 << 10 {
        let (mut buf, _) = peers::out_bytes(case, None);
        entries.push(entry("plover_head", move |b| {
            b.iter(|| peers::plover_encode_head(black_box(packets), version, &mut buf))
        }));
    }
    match version {
        ProtocolVersion::V311 => {
            let packets = rumqttc_v4::packets(&case.wire);
            let (mut buf, at) = peers::out_bytes(case, rumqttc_v4::payload(&packets));
            entries.push(entry("rumqttc", move |b| {
                b.iter(|| rumqttc_v4::encode(black_box(&packets), &mut buf, at))
            }));
            let packets = mqttrs_codec::packets(&case.wire);
            let (mut out, at) = peers::out_slice(case, mqttrs_codec::payload(&packets));
            entries.push(entry("mqttrs", move |b| {
                b.iter(|| mqttrs_codec::encode(black_box(&packets), &mut out[at..]))
            }));
            let packets = mqtt_protocol_codec::packets(&case.wire);
            let (mut out, at) = peers::out_vec(case, mqtt_protocol_codec::payload(&packets));
            entries.push(entry("mqtt-protocol", move |b| {
                b.iter(|| mqtt_protocol_codec::encode(black_box(&packets), &mut out, at))
            }));
        }
        ProtocolVersion::V5 => {
            let packets = rumqttc_v5::packets(&case.wire);
            let (mut buf, at) = peers::out_bytes(case, rumqttc_v5::payload(&packets));
            entries.push(entry("rumqttc", move |b| {
                b.iter(|| rumqttc_v5::encode(black_box(&packets), &mut buf, at))
            }));
        }
    }
    run(
        c,
        format!("encode/{}", case.group),
        throughput,
        &case.param,
        entries,
    );
}

fn benches(c: &mut Criterion) {
    for case in peers::cases() {
        check_case(&case);
        bench_decode(c, &case);
        bench_encode(c, &case);
    }
}

criterion_group! {
    name = codec;
    // About a hundred benchmarks: shorter than criterion's default 3 s + 5 s
    // each keeps the whole run near ten minutes; `--warm-up-time` and
    // `--measurement-time` on the command line override these.
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(codec);
