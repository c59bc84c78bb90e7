//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the
//! very checks the fuzz targets make, so `cargo test` on stable Rust guards
//! what the fuzzer found; and, as an ignored test, writes the seed corpus.
//!
//! The checks live in `fuzz/checks.rs`, included here and by each target.
//! To (re)write the seeds after a codec change:
//! `cargo test --test fuzz_corpus -- --ignored write_seed_corpus`.

#[path = "../fuzz/checks.rs"]
mod checks;

use std::fs;
use std::num::{NonZeroU16, NonZeroU32};
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use plover::codec::{
    AckProperties, Auth, AuthProperties, AuthReasonCode, ConnAck, ConnAckProperties, Connect,
    ConnectProperties, ConnectReasonCode, Disconnect, DisconnectProperties, DisconnectReasonCode,
    LastWill, MqttString, Packet, PayloadFormat, ProtocolVersion, PubAck, PubAckReasonCode,
    PubComp, PubRec, PubRel, PubRelReasonCode, Publish, PublishProperties, QoS, RetainHandling,
    SubAck, SubAckReasonCode, Subscribe, SubscribeProperties, SubscriptionOptions, TopicName,
    UnsubAck, UnsubAckReasonCode, Unsubscribe, UnsubscribeProperties, UserProperties,
    WillProperties,
};

use ProtocolVersion::{V5, V311};

/// A fuzz target's check of one input.
type Check = fn(&[u8]);

/// The fuzz targets, each with the check its inputs go through.
const TARGETS: [(&str, Check); 4] = [
    ("decode_v311", |d| checks::check_stream(d, V311)),
    ("decode_v5", |d| checks::check_stream(d, V5)),
    ("decode_chunked", checks::check_chunked),
    ("roundtrip", checks::check_roundtrip),
];

fn corpus_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join("corpus")
}

/// The regular files of a directory, sorted by name so failures repeat.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let entries = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("corpus directory {} is missing: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("reading a corpus directory").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn replay_fuzz_corpus() {
    let root = corpus_root();
    // A corpus directory with no target would never be replayed: refuse it.
    for entry in fs::read_dir(&root).expect("fuzz/corpus is missing") {
        let name = entry.expect("reading fuzz/corpus").file_name();
        let name = name.to_string_lossy();
        assert!(
            TARGETS.iter().any(|(t, _)| *t == name),
            "fuzz/corpus/{name} belongs to no known target"
        );
    }
    let mut total = 0;
    for (target, check) in TARGETS {
        let files = files_in(&root.join(target));
        // An empty directory would let this test pass without checking anything.
        assert!(!files.is_empty(), "fuzz/corpus/{target} is empty");
        for file in &files {
            let input = fs::read(file).expect("reading a corpus file");
            // Name the input before the check panics, so a failure says which.
            let result = std::panic::catch_unwind(|| check(&input));
            if let Err(panic) = result {
                eprintln!(
                    "corpus input {} failed; its bytes: {}",
                    file.display(),
                    hex(&input)
                );
                std::panic::resume_unwind(panic);
            }
        }
        println!("{target}: replayed {} inputs", files.len());
        total += files.len();
    }
    println!("replayed {total} corpus inputs in all");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------
// The seed corpus: a broad set of valid packets of every type, in both
// versions and with properties, a few streams of them, and a handful of
// inputs that are valid but not canonical or that end in an error.

/// A test string as whichever MQTT string type the caller wants
/// (`MqttString`, `TopicName` or `TopicFilter`).
fn s<T: for<'a> TryFrom<&'a str, Error: std::fmt::Debug>>(v: &str) -> T {
    T::try_from(v).expect("a valid test string")
}

fn id(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).expect("a non-zero packet id")
}

fn users(pairs: &[(&str, &str)]) -> UserProperties {
    pairs
        .iter()
        .map(|(k, v)| (s::<MqttString>(k), s::<MqttString>(v)))
        .collect()
}

/// One or two of every packet the version has, properties filled in for 5.0.
fn sample_packets(v: ProtocolVersion) -> Vec<Packet> {
    let v5 = v == V5;
    let mut out = Vec::new();

    // CONNECT: minimal, then everything at once.
    let mut connect = Connect::new(v, s("c"));
    connect.clean_start = false;
    connect.keep_alive = 0;
    out.push(Packet::Connect(Box::new(connect)));
    let mut connect = Connect::new(v, s("plover-seed"));
    connect.keep_alive = 30;
    connect.username = Some(s("user"));
    connect.password = Some(Bytes::from_static(b"\x00secret\xff"));
    let mut will = LastWill::new(
        s("clients/plover-seed/status"),
        "offline",
        QoS::AtLeastOnce,
        true,
    );
    if v5 {
        connect.properties = ConnectProperties {
            session_expiry_interval: Some(3600),
            receive_maximum: Some(20),
            maximum_packet_size: Some(1 << 20),
            topic_alias_maximum: Some(10),
            request_response_information: Some(true),
            request_problem_information: Some(false),
            authentication_method: Some(s("SCRAM-SHA-1")),
            authentication_data: Some(Bytes::from_static(b"client-first")),
            user_properties: users(&[("app", "seed"), ("app", "twice")]),
        };
        will.properties = WillProperties {
            will_delay_interval: Some(5),
            payload_format_indicator: Some(PayloadFormat::Utf8),
            message_expiry_interval: Some(60),
            content_type: Some(s("text/plain")),
            response_topic: Some(s("clients/plover-seed/reply")),
            correlation_data: Some(Bytes::from_static(&[1, 2, 3])),
            user_properties: users(&[("why", "lost")]),
        };
    }
    connect.will = Some(will);
    out.push(Packet::Connect(Box::new(connect)));
    if v5 {
        // 5.0 allows a password without a user name.
        let mut connect = Connect::new(v, MqttString::new());
        connect.password = Some(Bytes::from_static(b"token"));
        connect.will = Some(LastWill::new(s("w"), Bytes::new(), QoS::ExactlyOnce, false));
        out.push(Packet::Connect(Box::new(connect)));
    }

    // CONNACK.
    let mut connack = ConnAck::new(true, ConnectReasonCode::Success);
    if v5 {
        connack.properties = ConnAckProperties {
            session_expiry_interval: Some(120),
            receive_maximum: Some(100),
            maximum_qos: Some(QoS::AtLeastOnce),
            retain_available: Some(false),
            maximum_packet_size: Some(65536),
            assigned_client_identifier: Some(s("auto-1234")),
            topic_alias_maximum: Some(16),
            reason_string: Some(s("welcome")),
            wildcard_subscription_available: Some(true),
            subscription_identifiers_available: Some(true),
            shared_subscription_available: Some(false),
            server_keep_alive: Some(45),
            response_information: Some(s("responses/")),
            server_reference: Some(s("other.example:1883")),
            authentication_method: Some(s("SCRAM-SHA-1")),
            authentication_data: Some(Bytes::from_static(b"server-final")),
            user_properties: users(&[("broker", "seed")]),
        };
    }
    out.push(Packet::ConnAck(Box::new(connack)));
    let mut refused = ConnAck::new(false, ConnectReasonCode::NotAuthorized);
    if v5 {
        refused.reason_code = ConnectReasonCode::Banned;
        refused.properties.reason_string = Some(s("go away"));
    }
    out.push(Packet::ConnAck(Box::new(refused)));

    // PUBLISH at each QoS, with and without properties.
    out.push(Packet::Publish(Publish::new(s("a"), "hi")));
    let mut p = Publish::new(s("home/living-room/temperature"), vec![0xA5; 100])
        .with_qos(QoS::AtLeastOnce, Some(id(1)))
        .with_retain(true);
    p.dup = true;
    out.push(Packet::Publish(p));
    let mut props = PublishProperties::default();
    if v5 {
        props.payload_format_indicator = Some(PayloadFormat::Utf8);
        props.message_expiry_interval = Some(u32::MAX);
        props.topic_alias = Some(3);
        props.response_topic = Some(s("reply/here"));
        props.correlation_data = Some(Bytes::from_static(b"corr"));
        props.content_type = Some(s("application/json"));
        props.subscription_identifiers = [1u32, 268_435_455]
            .into_iter()
            .filter_map(NonZeroU32::new)
            .collect();
        props.user_properties = users(&[("k", "v"), ("k", "w")]);
    }
    out.push(Packet::Publish(
        Publish::new(s("dom/küche/🌡"), r#"{"t":21.5}"#)
            .with_qos(QoS::ExactlyOnce, Some(id(u16::MAX)))
            .with_properties(props),
    ));
    out.push(Packet::Publish(
        Publish::new(s("/"), Bytes::new()).with_qos(QoS::AtLeastOnce, Some(id(2))),
    ));
    if v5 {
        // An empty topic that a Topic Alias stands in for.
        let props = PublishProperties {
            topic_alias: Some(3),
            ..PublishProperties::default()
        };
        out.push(Packet::Publish(
            Publish::new(TopicName::empty(), "aliased").with_properties(props),
        ));
    }
    out.push(Packet::Publish(
        Publish::new(s("big/one"), vec![b'x'; 3000]).with_qos(QoS::AtLeastOnce, Some(id(77))),
    ));

    // The acknowledgements.
    out.push(Packet::PubAck(PubAck::new(id(1))));
    out.push(Packet::PubRec(PubRec::new(id(2))));
    out.push(Packet::PubRel(PubRel::new(id(2))));
    out.push(Packet::PubComp(PubComp::new(id(2))));
    if v5 {
        let mut ack = PubAck::new(id(3));
        ack.reason_code = PubAckReasonCode::NoMatchingSubscribers;
        out.push(Packet::PubAck(ack));
        let mut ack = PubAck::new(id(4));
        ack.properties = AckProperties {
            reason_string: Some(s("ok")),
            user_properties: users(&[("a", "b")]),
        };
        out.push(Packet::PubAck(ack));
        let mut rec = PubRec::new(id(5));
        rec.reason_code = PubAckReasonCode::QuotaExceeded;
        rec.properties.reason_string = Some(s("slow down"));
        out.push(Packet::PubRec(rec));
        let mut rel = PubRel::new(id(6));
        rel.reason_code = PubRelReasonCode::PacketIdentifierNotFound;
        out.push(Packet::PubRel(rel));
        let mut comp = PubComp::new(id(6));
        comp.reason_code = PubRelReasonCode::PacketIdentifierNotFound;
        comp.properties.user_properties = users(&[("x", "")]);
        out.push(Packet::PubComp(comp));
    }

    // SUBSCRIBE / SUBACK / UNSUBSCRIBE / UNSUBACK.
    let options = |qos, no_local, rap, rh| SubscriptionOptions {
        qos,
        no_local: v5 && no_local,
        retain_as_published: v5 && rap,
        retain_handling: if v5 {
            rh
        } else {
            RetainHandling::SendAtSubscribe
        },
    };
    let mut sub_props = SubscribeProperties::default();
    if v5 {
        sub_props.subscription_identifier = NonZeroU32::new(42);
        sub_props.user_properties = users(&[("sub", "seed")]);
    }
    out.push(Packet::Subscribe(Subscribe {
        packet_id: id(10),
        filters: vec![
            (
                s("home/+/temperature"),
                options(
                    QoS::AtMostOnce,
                    true,
                    false,
                    RetainHandling::SendAtSubscribe,
                ),
            ),
            (
                s("#"),
                options(
                    QoS::AtLeastOnce,
                    false,
                    true,
                    RetainHandling::SendAtSubscribeIfNew,
                ),
            ),
            (
                s("$share/group/sensors/#"),
                options(QoS::ExactlyOnce, false, false, RetainHandling::DoNotSend),
            ),
            (
                s("+/+"),
                options(
                    QoS::AtLeastOnce,
                    false,
                    false,
                    RetainHandling::SendAtSubscribe,
                ),
            ),
        ],
        properties: sub_props,
    }));
    out.push(Packet::Subscribe(Subscribe::new(
        id(11),
        s("a/b"),
        SubscriptionOptions::new(QoS::AtMostOnce),
    )));
    let mut suback_codes = vec![
        SubAckReasonCode::GrantedQoS0,
        SubAckReasonCode::GrantedQoS1,
        SubAckReasonCode::GrantedQoS2,
        SubAckReasonCode::UnspecifiedError,
    ];
    let mut suback_props = AckProperties::default();
    if v5 {
        suback_codes.push(SubAckReasonCode::SharedSubscriptionsNotSupported);
        suback_props.reason_string = Some(s("partly"));
    }
    out.push(Packet::SubAck(SubAck {
        packet_id: id(10),
        reason_codes: suback_codes,
        properties: suback_props,
    }));
    let mut unsub_props = UnsubscribeProperties::default();
    if v5 {
        unsub_props.user_properties = users(&[("bye", "now")]);
    }
    out.push(Packet::Unsubscribe(Unsubscribe {
        packet_id: id(12),
        filters: vec![s("home/+/temperature"), s("$share/group/sensors/#")],
        properties: unsub_props,
    }));
    out.push(Packet::UnsubAck(UnsubAck {
        packet_id: id(12),
        reason_codes: if v5 {
            vec![
                UnsubAckReasonCode::Success,
                UnsubAckReasonCode::NoSubscriptionExisted,
            ]
        } else {
            Vec::new()
        },
        properties: AckProperties::default(),
    }));

    out.push(Packet::PingReq);
    out.push(Packet::PingResp);

    // DISCONNECT and AUTH.
    out.push(Packet::Disconnect(Disconnect::default()));
    if v5 {
        out.push(Packet::Disconnect(Disconnect::new(
            DisconnectReasonCode::DisconnectWithWillMessage,
        )));
        out.push(Packet::Disconnect(Disconnect {
            reason_code: DisconnectReasonCode::ServerMoved,
            properties: DisconnectProperties {
                session_expiry_interval: Some(0),
                reason_string: Some(s("moving")),
                server_reference: Some(s("new.example")),
                user_properties: users(&[("d", "1")]),
            },
        }));
        // Every AUTH names its method ([MQTT-4.12.0-5] wants it on all of them).
        out.push(Packet::Auth(Auth {
            reason_code: AuthReasonCode::Success,
            properties: AuthProperties {
                authentication_method: Some(s("SCRAM-SHA-1")),
                ..AuthProperties::default()
            },
        }));
        out.push(Packet::Auth(Auth {
            reason_code: AuthReasonCode::ContinueAuthentication,
            properties: AuthProperties {
                authentication_method: Some(s("SCRAM-SHA-1")),
                authentication_data: Some(Bytes::from_static(b"server-first")),
                reason_string: Some(s("continue")),
                user_properties: UserProperties::default(),
            },
        }));
    }
    out
}

fn encode(p: &Packet, v: ProtocolVersion) -> Vec<u8> {
    let mut buf = BytesMut::new();
    p.encode(v, &mut buf)
        .unwrap_or_else(|e| panic!("seed {p:?} does not encode in {v}: {e}"));
    buf.to_vec()
}

/// Everything but the 3 KB PUBLISH, back to back: a whole session's worth.
fn stream(v: ProtocolVersion) -> Vec<u8> {
    sample_packets(v)
        .iter()
        .map(|p| encode(p, v))
        .filter(|b| b.len() < 1000)
        .collect::<Vec<_>>()
        .concat()
}

/// Valid 5.0 packets in a form the encoder would not choose.
fn non_canonical_v5() -> Vec<Vec<u8>> {
    vec![
        // PUBACK with an explicit Success reason and an empty property block.
        vec![0x40, 0x04, 0x00, 0x01, 0x00, 0x00],
        // PUBREL with an explicit Success reason only.
        vec![0x62, 0x03, 0x00, 0x02, 0x00],
        // DISCONNECT, Normal disconnection, with an empty property block.
        vec![0xE0, 0x02, 0x00, 0x00],
        // AUTH whose reason string comes before its method.
        vec![
            0xF0, 0x0B, 0x00, 0x09, 0x1F, 0x00, 0x02, b'o', b'k', 0x15, 0x00, 0x01, b'M',
        ],
        // PUBLISH whose user property comes before its content type.
        vec![
            0x30, 0x13, 0x00, 0x01, b't', 0x0C, 0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v', 0x03,
            0x00, 0x02, b'c', b't', b'p', b'a', b'y',
        ],
    ]
}

/// Inputs that start well and then go wrong, for both versions.
fn bad_endings(v: ProtocolVersion) -> Vec<Vec<u8>> {
    let ping = encode(&Packet::PingReq, v);
    let publish = encode(
        &Packet::Publish(Publish::new(s("a/b"), "payload").with_qos(QoS::AtLeastOnce, Some(id(9)))),
        v,
    );
    vec![
        // A PUBLISH cut short: the stream just needs more bytes.
        [&ping[..], &publish[..publish.len() - 3]].concat(),
        // Packet type 0 after a valid packet.
        [&ping[..], &[0x00, 0x00][..]].concat(),
        // A five-byte remaining length.
        [&ping[..], &[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F][..]].concat(),
        // A remaining length of 2 MiB, over the 1 MiB limit.
        [&ping[..], &[0x30, 0x80, 0x80, 0x80, 0x01][..]].concat(),
        // A PUBLISH with a '+' in its topic.
        [&publish[..], &[0x30, 0x04, 0x00, 0x01, b'+', b'x'][..]].concat(),
    ]
}

/// `decode_chunked` input: version selector, chunk-size count, sizes, stream.
fn chunked(v: ProtocolVersion, sizes: &[u8], stream: &[u8]) -> Vec<u8> {
    assert!((1..=16).contains(&sizes.len()));
    let selector = if v == V5 { 1 } else { 0 };
    let count = (sizes.len() - 1) as u8;
    [&[selector, count][..], sizes, stream].concat()
}

fn seeds_for(target: &str) -> Vec<Vec<u8>> {
    let singles = |v| {
        sample_packets(v)
            .iter()
            .map(|p| encode(p, v))
            .collect::<Vec<_>>()
    };
    match target {
        "decode_v311" => {
            let mut out = singles(V311);
            // A CONNECT names its own version, so a 5.0 one is read in any stream.
            for p in sample_packets(V5) {
                if matches!(p, Packet::Connect(_)) {
                    out.push(encode(&p, V5));
                }
            }
            out.push(stream(V311));
            out.extend(bad_endings(V311));
            out
        }
        "decode_v5" => {
            let mut out = singles(V5);
            out.push(stream(V5));
            out.extend(non_canonical_v5());
            out.extend(bad_endings(V5));
            out
        }
        "decode_chunked" => {
            let size_patterns: [&[u8]; 6] = [
                &[0],
                &[6],
                &[63],
                &[2, 0, 59, 1],
                &[12, 30],
                &[4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 40],
            ];
            let mut out = Vec::new();
            for v in [V311, V5] {
                for sizes in size_patterns {
                    out.push(chunked(v, sizes, &stream(v)));
                }
                for (i, bad) in bad_endings(v).iter().enumerate() {
                    out.push(chunked(v, size_patterns[i % size_patterns.len()], bad));
                }
                let big = singles(v)
                    .into_iter()
                    .max_by_key(Vec::len)
                    .unwrap_or_default();
                out.push(chunked(v, &[63, 0], &big));
            }
            for (i, odd) in non_canonical_v5().iter().enumerate() {
                out.push(chunked(V5, size_patterns[i % size_patterns.len()], odd));
            }
            out
        }
        "roundtrip" => {
            // Every input is decoded as both versions, so one copy of each
            // shape is enough: the 5.0 packets, the 3.1.1 ones that differ.
            let mut out = singles(V5);
            let v311: Vec<Packet> = sample_packets(V311);
            for p in &v311 {
                if matches!(
                    p,
                    Packet::Connect(_)
                        | Packet::ConnAck(_)
                        | Packet::SubAck(_)
                        | Packet::UnsubAck(_)
                ) {
                    out.push(encode(p, V311));
                }
            }
            out.push(stream(V311));
            out.push(stream(V5));
            out.extend(non_canonical_v5());
            out
        }
        other => panic!("no seeds for {other}"),
    }
}

#[test]
#[ignore = "writes fuzz/corpus; run by hand after changing the seeds"]
fn write_seed_corpus() {
    let root = corpus_root();
    for (target, check) in TARGETS {
        let dir = root.join(target);
        fs::create_dir_all(&dir).expect("creating a corpus directory");
        // Replace the old seeds; keep what the fuzzer and people added.
        for old in files_in(&dir) {
            let name = old.file_name().map(|n| n.to_string_lossy().into_owned());
            if name.is_some_and(|n| n.starts_with("seed-")) {
                fs::remove_file(&old).expect("removing an old seed");
            }
        }
        let seeds = seeds_for(target);
        for (i, seed) in seeds.iter().enumerate() {
            assert!(
                seed.len() < 4096,
                "{target} seed {i} is {} bytes",
                seed.len()
            );
            // A seed that fails its own target's check is a bug here or in the codec.
            check(seed);
            fs::write(dir.join(format!("seed-{i:02}")), seed).expect("writing a seed");
        }
        println!("{target}: wrote {} seeds", seeds.len());
    }
}

/// The seeds decode as intended: every packet of `sample_packets` comes back
/// equal to itself, so the corpus starts from inputs that reach deep into
/// each packet's code rather than stopping at its first field.
#[test]
fn seed_packets_round_trip() {
    for v in [V311, V5] {
        for p in sample_packets(v) {
            let bytes = Bytes::from(encode(&p, v));
            assert_eq!(checks::decode_one(&bytes, v), p, "in {v}");
        }
        let (packets, end) = checks::decode_all(&stream(v), v);
        assert_eq!(end, Ok(()));
        assert_eq!(packets.len(), sample_packets(v).len() - 1);
        // The bad endings: one packet, then a need for more bytes or an error.
        for (i, bad) in bad_endings(v).iter().enumerate() {
            let (packets, end) = checks::decode_all(bad, v);
            assert_eq!(packets.len(), 1, "bad ending {i} in {v}");
            assert_eq!(end.is_ok(), i == 0, "bad ending {i} in {v}: {end:?}");
        }
    }
    // The non-canonical inputs are valid, and not what the encoder writes.
    for odd in non_canonical_v5() {
        let (packets, end) = checks::decode_all(&odd, V5);
        assert_eq!((packets.len(), end), (1, Ok(())), "{odd:02x?}");
        assert_ne!(encode(&packets[0], V5), odd);
    }
}
