//! What the codec benchmarks share: the inputs (built with plover's packet
//! model and encoded once by plover) and, for plover and each peer crate,
//! one function that decodes every packet of a wire buffer and one that
//! encodes a list of packets. `benches/codec.rs` times these functions with
//! criterion, `benches/codec_paired.rs` in paired rounds;
//! `benches/codec_counts.rs` counts their heap allocations and, under
//! callgrind, their instructions.
//!
//! Every crate is handed the same bytes. A peer's packet values (for its
//! encode benchmark) are made by decoding those bytes with the peer itself,
//! outside the timed part, so all encoders write the same packets; a
//! PUBLISH payload then lies in an allocation of its own for every crate
//! but mqttrs, whose packets borrow it from the bytes (see `own_payload`).
//! Each crate decodes through its own cheapest entry point for bytes
//! already in memory:
//!
//! - plover: `codec::decode_bytes` over a `Bytes` (and `codec::decode` over a
//!   `BytesMut`, the network-buffer path, in the `_bytesmut` variants), which
//!   give owned packets; and `codec::decode_slice` over a `&[u8]` (the
//!   `plover_slice` rows), which borrows as mqttrs does;
//! - rumqttc: its `mqttbytes` functions. `Packet::read` takes a `BytesMut`
//!   it splits; for single packets (up to 1 MiB, where copying the input
//!   into a fresh `BytesMut` per iteration would swamp the measurement) the
//!   `rumqttc` rows call the very functions `Packet::read` calls (`check`,
//!   then `Publish::read` and friends) on a `Bytes` slice, skipping only
//!   its `split_to` + `freeze`. The `_bytesmut` variants call `Packet::read`
//!   itself;
//! - mqttrs: `decode_slice`, which borrows from a `&[u8]`. It does not say
//!   how long the packet was, so the loop frames packets by their remaining
//!   length (a few instructions per packet, counted against mqttrs);
//! - mqtt-protocol: `VariablePacket::decode` from a `std::io::Cursor`.
//!
//! Decoded packets are dropped inside the timed loop: freeing what a
//! decoder allocated is part of its cost. Each encoder writes into an
//! output buffer of its own, placed by [`out_start`], from a payload
//! placed by [`own_payload`] (or, for mqttrs, in bytes placed alike), so
//! that a lone PUBLISH's payload is copied between the same kind of
//! addresses for every crate.
#![allow(dead_code)] // each bench binary uses a different part of it

use std::hint::black_box;
use std::io::Cursor;
use std::num::{NonZeroU16, NonZeroU32};

use bytes::{Bytes, BytesMut};
use plover::codec::{
    self, AckProperties, Connect, ConnectProperties, LastWill, MqttString, Packet, PayloadFormat,
    ProtocolVersion, PubAck, PubComp, PubRec, PubRel, Publish, PublishProperties, QoS,
    RetainHandling, SubAck, SubAckReasonCode, Subscribe, SubscribeProperties, SubscriptionOptions,
    UserProperties, WillProperties,
};

/// Large enough for the 1 MiB PUBLISH with its headers.
pub const MAX_PACKET_SIZE: usize = 4 << 20;

/// The payload sizes of the PUBLISH benchmarks.
pub const PAYLOADS: [usize; 4] = [64, 1 << 10, 64 << 10, 1 << 20];

/// Packets in the mixed stream.
pub const STREAM_LEN: usize = 10_000;

/// A test string as whichever MQTT string type the caller wants
/// (`MqttString`, `TopicName` or `TopicFilter`).
fn s<T: for<'a> TryFrom<&'a str, Error: std::fmt::Debug>>(v: &str) -> T {
    T::try_from(v).expect("a valid test string")
}

fn id(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).unwrap_or(NonZeroU16::MIN)
}

pub fn version_label(version: ProtocolVersion) -> &'static str {
    match version {
        ProtocolVersion::V311 => "v311",
        ProtocolVersion::V5 => "v5",
    }
}

pub fn size_label(n: usize) -> String {
    match n {
        n if n >= 1 << 20 => format!("{}MiB", n >> 20),
        n if n >= 1 << 10 => format!("{}KiB", n >> 10),
        n => format!("{n}B"),
    }
}

/// One benchmark input: plover's packets and their encoding.
pub struct Case {
    /// `publish_qos1_v311/64B`, `mixed_v5/10000`, `connect_v5/1`, ...
    pub group: String,
    pub param: String,
    pub version: ProtocolVersion,
    pub packets: Vec<Packet>,
    pub wire: Bytes,
}

impl Case {
    fn new(
        group: String,
        param: String,
        version: ProtocolVersion,
        mut packets: Vec<Packet>,
    ) -> Case {
        let mut buf = BytesMut::new();
        for p in &mut packets {
            p.encode(version, &mut buf).expect("bench packet encodes");
            if let Packet::Publish(p) = p {
                p.payload = own_payload(&p.payload);
            }
        }
        // A lone PUBLISH's payload, where mqttrs borrows it from, placed as
        // every other crate's is (see `LINE_OFFSET`).
        let head = match packets.as_slice() {
            [Packet::Publish(p)] => Some(buf.len() - p.payload.len()),
            _ => None,
        };
        let wire = match head {
            Some(head) => placed(&buf, head),
            None => buf.freeze(),
        };
        // A `Bytes` made from a `Vec` allocates its shared header on its
        // first clone; do that now so that cloning inside the timed loop
        // is a reference-count bump, as for bytes from a network buffer.
        drop(wire.clone());
        Case {
            group,
            param,
            version,
            packets,
            wire,
        }
    }
}

/// The QoS 1 PUBLISH of the `publish_qos1` cases; 5.0 adds a content type
/// and one user property.
pub fn publish_qos1(version: ProtocolVersion, payload_len: usize) -> Packet {
    let mut props = PublishProperties::default();
    if version == ProtocolVersion::V5 {
        props.content_type = Some(s("application/octet-stream"));
        props.user_properties = [(s::<MqttString>("source"), s::<MqttString>("bench"))]
            .into_iter()
            .collect::<UserProperties>();
    }
    Packet::Publish(
        Publish::new(s("home/living-room/temperature"), vec![0xA5u8; payload_len])
            .with_qos(QoS::AtLeastOnce, Some(id(42)))
            .with_properties(props),
    )
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

/// What a busy client's connection carries: about 70% PUBLISH at every QoS
/// with payloads of 0 to 511 bytes, their acknowledgements, keepalive pings,
/// and now and then a SUBSCRIBE and its SUBACK.
pub fn mixed_packets() -> Vec<Packet> {
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

/// Packets in the acknowledgement stream.
pub const ACKS_LEN: usize = 1_000;

/// The four acknowledgements of a PUBLISH in random order, as a client
/// publishing and receiving at QoS 1 and 2 sends and reads them.
pub fn ack_packets() -> Vec<Packet> {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    (0..ACKS_LEN)
        .map(|i| {
            let pid = id((i % usize::from(u16::MAX)) as u16 + 1);
            match rng.below(4) {
                0 => Packet::PubAck(PubAck::new(pid)),
                1 => Packet::PubRec(PubRec::new(pid)),
                2 => Packet::PubRel(PubRel::new(pid)),
                _ => Packet::PubComp(PubComp::new(pid)),
            }
        })
        .collect()
}

/// A CONNECT with a user name, password and will; with 5.0 also the
/// properties a real client sends and will properties.
pub fn connect(version: ProtocolVersion) -> Packet {
    let mut connect = Connect::new(version, s("plover-bench-client-0001"));
    connect.username = Some(s("device-0001"));
    connect.password = Some(Bytes::from_static(b"correct horse battery staple"));
    let mut will = LastWill::new(s("devices/0001/status"), "offline", QoS::AtLeastOnce, true);
    if version == ProtocolVersion::V5 {
        connect.properties = ConnectProperties {
            session_expiry_interval: Some(3600),
            receive_maximum: Some(64),
            maximum_packet_size: Some(1 << 20),
            topic_alias_maximum: Some(16),
            request_problem_information: Some(true),
            user_properties: [(s::<MqttString>("firmware"), s::<MqttString>("1.4.2"))]
                .into_iter()
                .collect(),
            ..ConnectProperties::default()
        };
        will.properties = WillProperties {
            will_delay_interval: Some(10),
            payload_format_indicator: Some(PayloadFormat::Utf8),
            message_expiry_interval: Some(86_400),
            content_type: Some(s("text/plain")),
            ..WillProperties::default()
        };
    }
    connect.will = Some(will);
    Packet::Connect(Box::new(connect))
}

/// A SUBSCRIBE with five filters; with 5.0 also subscription options, a
/// subscription identifier and a user property.
pub fn subscribe(version: ProtocolVersion) -> Packet {
    let v5 = version == ProtocolVersion::V5;
    let opts = |qos, no_local, retain_handling| SubscriptionOptions {
        qos,
        no_local: no_local && v5,
        retain_as_published: false,
        retain_handling: if v5 {
            retain_handling
        } else {
            RetainHandling::SendAtSubscribe
        },
    };
    let properties = if v5 {
        SubscribeProperties {
            subscription_identifier: NonZeroU32::new(12),
            user_properties: [(s::<MqttString>("origin"), s::<MqttString>("bench"))]
                .into_iter()
                .collect(),
        }
    } else {
        SubscribeProperties::default()
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
        properties,
    })
}

/// Every benchmark input, in the order the tables list them.
pub fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
        let v = version_label(version);
        for len in PAYLOADS {
            cases.push(Case::new(
                format!("publish_qos1_{v}"),
                size_label(len),
                version,
                vec![publish_qos1(version, len)],
            ));
        }
    }
    for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
        let v = version_label(version);
        cases.push(Case::new(
            format!("mixed_{v}"),
            STREAM_LEN.to_string(),
            version,
            mixed_packets(),
        ));
        cases.push(Case::new(
            format!("acks_{v}"),
            ACKS_LEN.to_string(),
            version,
            ack_packets(),
        ));
    }
    for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
        let v = version_label(version);
        cases.push(Case::new(
            format!("connect_{v}"),
            "1".into(),
            version,
            vec![connect(version)],
        ));
        cases.push(Case::new(
            format!("subscribe_{v}"),
            "1".into(),
            version,
            vec![subscribe(version)],
        ));
    }
    cases
}

/// The crates that speak a case's version, and the decode and encode
/// each does of it, as closures over prepared inputs.
pub type Op<'a> = Box<dyn FnMut() -> usize + 'a>;

pub struct Ops<'a> {
    pub name: &'static str,
    pub decode: Op<'a>,
    pub encode: Op<'a>,
}

pub fn ops(case: &Case) -> Vec<Ops<'_>> {
    let (wire, version, packets) = (&case.wire, case.version, &case.packets);
    let mut list: Vec<Ops<'_>> = Vec::new();
    let (mut buf, at) = out_bytes(case, plover_payload(packets));
    list.push(Ops {
        name: "plover",
        decode: Box::new(move || plover_decode(wire, version)),
        encode: Box::new(move || plover_encode(packets, version, &mut buf, at)),
    });
    // The borrowing decoder; its encode is plover's one encoder.
    let (mut buf, at) = out_bytes(case, plover_payload(packets));
    list.push(Ops {
        name: "plover-slice",
        decode: Box::new(move || plover_decode_slice(wire, version)),
        encode: Box::new(move || plover_encode(packets, version, &mut buf, at)),
    });
    match version {
        ProtocolVersion::V311 => {
            let p = rumqttc_v4::packets(wire);
            let (mut buf, at) = out_bytes(case, rumqttc_v4::payload(&p));
            list.push(Ops {
                name: "rumqttc",
                decode: Box::new(move || rumqttc_v4::decode(wire)),
                encode: Box::new(move || rumqttc_v4::encode(&p, &mut buf, at)),
            });
            let p = mqttrs_codec::packets(wire);
            let (mut out, at) = out_slice(case, mqttrs_codec::payload(&p));
            list.push(Ops {
                name: "mqttrs",
                decode: Box::new(move || mqttrs_codec::decode(wire)),
                encode: Box::new(move || mqttrs_codec::encode(&p, &mut out[at..])),
            });
            let p = mqtt_protocol_codec::packets(wire);
            let (mut out, at) = out_vec(case, mqtt_protocol_codec::payload(&p));
            list.push(Ops {
                name: "mqtt-protocol",
                decode: Box::new(move || mqtt_protocol_codec::decode(wire)),
                encode: Box::new(move || mqtt_protocol_codec::encode(&p, &mut out, at)),
            });
        }
        ProtocolVersion::V5 => {
            let p = rumqttc_v5::packets(wire);
            let (mut buf, at) = out_bytes(case, rumqttc_v5::payload(&p));
            list.push(Ops {
                name: "rumqttc",
                decode: Box::new(move || rumqttc_v5::decode(wire)),
                encode: Box::new(move || rumqttc_v5::encode(&p, &mut buf, at)),
            });
        }
    }
    list
}

/// A page, as far as the CPU's store-to-load checks go (see [`out_start`]).
const PAGE: usize = 4096;

/// Where an encoder whose output buffer begins at `buf` starts writing:
/// for a case of one PUBLISH, the offset that puts the payload's copy at
/// the same place within a 4 KiB page as `payload`, the payload it is
/// copied from (the crate's own packet value); 0 for other cases. The
/// buffer holds that many bytes of padding, which each encode keeps.
///
/// Copying a large payload is one `memcpy` in every crate, and its speed
/// depends a little on where the two buffers lie: in a standalone loop on
/// the Xeon of BENCHMARKS.md (301 paired rounds of 1 MiB copies), a
/// destination at the source's place within its page was 3-5% faster
/// than one 36 bytes further on (where two fresh allocations with a
/// PUBLISH head in front of the copy put it) or 3,000 bytes away. Left to
/// the allocator, each crate got a different distance; placed, all get
/// the same one.
pub fn out_start(case: &Case, buf: *const u8, payload: Option<&[u8]>) -> usize {
    match payload {
        Some(payload) => {
            let head = case.wire.len() - payload.len();
            (payload.as_ptr() as usize).wrapping_sub(buf as usize + head) % PAGE
        }
        None => 0,
    }
}

/// An output buffer's size: the case's bytes, some slack, and room for
/// [`out_start`]'s padding.
fn out_capacity(case: &Case) -> usize {
    case.wire.len() + 64 + PAGE
}

/// A `BytesMut` output for an encoder of `payload` (see [`out_start`]),
/// and the padding it starts with.
pub fn out_bytes(case: &Case, payload: Option<&[u8]>) -> (BytesMut, usize) {
    let mut buf = BytesMut::with_capacity(out_capacity(case));
    let at = out_start(case, buf.as_ptr(), payload);
    buf.resize(at, 0);
    (buf, at)
}

/// A `Vec` output for an encoder that appends (mqtt-protocol), as
/// [`out_bytes`].
pub fn out_vec(case: &Case, payload: Option<&[u8]>) -> (Vec<u8>, usize) {
    let mut buf = Vec::with_capacity(out_capacity(case));
    let at = out_start(case, buf.as_ptr(), payload);
    buf.resize(at, 0);
    (buf, at)
}

/// A zeroed output for an encoder that writes into a slice (mqttrs); it
/// writes from the offset returned.
pub fn out_slice(case: &Case, payload: Option<&[u8]>) -> (Vec<u8>, usize) {
    let buf = vec![0u8; out_capacity(case)];
    let at = out_start(case, buf.as_ptr(), payload);
    (buf, at)
}

/// Where the next packet in `buf` ends (its remaining length read as the
/// spec lays it out), or `None` if `buf` holds no whole packet. Only the
/// mqttrs loop needs this: its `decode_slice` does not say how much it
/// read.
#[inline]
fn frame_len(buf: &[u8]) -> Option<usize> {
    let mut len = 0usize;
    for i in 0..4 {
        let byte = *buf.get(1 + i)?;
        len |= usize::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            let total = 2 + i + len;
            return (buf.len() >= total).then_some(total);
        }
    }
    None
}

// ---- plover -------------------------------------------------------------

#[inline(never)]
pub fn plover_decode(wire: &Bytes, version: ProtocolVersion) -> usize {
    let mut input = wire.clone();
    let mut n = 0;
    loop {
        // Looked at where it lies, as with every crate here: moving a
        // decoded packet is the caller's business, not the decoder's.
        match &codec::decode_bytes(&mut input, version, MAX_PACKET_SIZE) {
            Ok(Some(packet)) => black_box(packet),
            Ok(None) => break,
            Err(e) => panic!("plover decodes: {e}"),
        };
        n += 1;
    }
    n
}

/// The borrowing decoder: `decode_slice` over a `&[u8]`, like mqttrs.
#[inline(never)]
pub fn plover_decode_slice(wire: &[u8], version: ProtocolVersion) -> usize {
    let mut rest = wire;
    let mut n = 0;
    loop {
        match &codec::decode_slice(rest, version, MAX_PACKET_SIZE) {
            Ok(Some((packet, len))) => {
                black_box(packet);
                rest = rest.get(*len..).unwrap_or_default();
            }
            Ok(None) => break,
            Err(e) => panic!("plover decodes: {e}"),
        };
        n += 1;
    }
    n
}

/// The network-buffer path: `decode` splits packets off a `BytesMut`.
#[inline(never)]
pub fn plover_decode_bytesmut(mut buf: BytesMut, version: ProtocolVersion) -> usize {
    let mut n = 0;
    loop {
        match &codec::decode(&mut buf, version, MAX_PACKET_SIZE) {
            Ok(Some(packet)) => black_box(packet),
            Ok(None) => break,
            Err(e) => panic!("plover decodes: {e}"),
        };
        n += 1;
    }
    n
}

/// What the client does with a payload of 16 KiB or more
/// (`session::ZERO_COPY_PAYLOAD`): everything before the payload is
/// encoded (`Publish::encode_head`), and the payload goes out from its own
/// buffer, which costs a reference count, not a copy.
#[inline(never)]
pub fn plover_encode_head(
    packets: &[Packet],
    version: ProtocolVersion,
    buf: &mut BytesMut,
) -> usize {
    buf.clear();
    let mut payloads = 0;
    for p in packets {
        match p {
            Packet::Publish(p) => {
                p.encode_head(version, buf).expect("plover encodes");
                payloads += black_box(p.payload.clone()).len();
            }
            p => p.encode(version, buf).expect("plover encodes"),
        }
    }
    buf.len() + payloads
}

#[inline(never)]
pub fn plover_encode(
    packets: &[Packet],
    version: ProtocolVersion,
    buf: &mut BytesMut,
    start: usize,
) -> usize {
    buf.truncate(start);
    for p in packets {
        p.encode(version, buf).expect("plover encodes");
    }
    buf.len() - start
}

/// The payload of a case made of one PUBLISH, for [`out_start`].
pub fn plover_payload(packets: &[Packet]) -> Option<&[u8]> {
    match packets {
        [Packet::Publish(p)] => Some(&p.payload),
        _ => None,
    }
}

/// Where, past a 64-byte line, every crate's PUBLISH payloads start: 16
/// bytes, where glibc puts a large allocation (its chunk header comes
/// first), so that mqtt-protocol's payload `Vec`s, which can only be
/// picked among fresh allocations (`own_payload_vec`), can always be
/// placed there.
///
/// How fast a payload is copied depends a little on how the source and
/// the destination lie: their distance within a 4 KiB page ([`out_start`]
/// makes it the same for every crate) and their alignment to a line (5%
/// at 1 MiB between equally and unequally aligned buffers, in a
/// standalone loop). Left to the allocator, each crate's payload got a
/// different one.
const LINE_OFFSET: usize = 16;

/// A copy of `bytes` in an allocation of its own, placed so that its byte
/// `at` lies [`LINE_OFFSET`] bytes past a 64-byte line.
fn placed(bytes: &[u8], at: usize) -> Bytes {
    let mut room = vec![0u8; bytes.len() + 64];
    let start = LINE_OFFSET.wrapping_sub(room.as_ptr() as usize + at) % 64;
    room[start..start + bytes.len()].copy_from_slice(bytes);
    Bytes::from(room).slice(start..start + bytes.len())
}

/// A PUBLISH's payload in an allocation of its own, placed (see
/// [`LINE_OFFSET`]), where an application's payload lies; plover's, and
/// rumqttc's, which its decoder slices out of the wire.
fn own_payload(payload: &[u8]) -> Bytes {
    placed(payload, 0)
}

/// [`own_payload`] as a `Vec`, for mqtt-protocol: a `Vec` starts where its
/// allocation does, so fresh ones are tried (at most 64, kept until one
/// fits, so that each is new) until one starts at [`LINE_OFFSET`]. glibc
/// hands out 16-byte aligned blocks, one in four of which fits, and maps a
/// large one 16 bytes into a page, which fits.
fn own_payload_vec(payload: &[u8]) -> Vec<u8> {
    let mut tried = Vec::new();
    for _ in 0..64 {
        let mut v = Vec::with_capacity(payload.len());
        if v.as_ptr() as usize % 64 == LINE_OFFSET {
            v.extend_from_slice(payload);
            return v;
        }
        tried.push(v);
    }
    eprintln!(
        "note: mqtt-protocol's payload of {} bytes not placed",
        payload.len()
    );
    payload.to_vec()
}

// ---- rumqttc, MQTT 3.1.1 (rumqttc::mqttbytes::v4) ----------------------

pub mod rumqttc_v4 {
    use super::*;
    use rumqttc::mqttbytes::v4::{
        ConnAck, Connect, Packet, PubAck, PubComp, PubRec, PubRel, Publish, SubAck, Subscribe,
        UnsubAck, Unsubscribe,
    };
    use rumqttc::mqttbytes::{PacketType, check};

    /// `Packet::read`'s dispatch, over a `Bytes` (see the module docs).
    #[inline(never)]
    pub fn decode(wire: &Bytes) -> usize {
        let mut input = wire.clone();
        let mut n = 0;
        while !input.is_empty() {
            let header = check(input.iter(), MAX_PACKET_SIZE).expect("rumqttc frames");
            let frame = input.split_to(header.frame_length());
            let ty = header.packet_type().expect("rumqttc packet type");
            let packet = if frame.len() == 2 {
                match ty {
                    PacketType::PingReq => Packet::PingReq,
                    PacketType::PingResp => Packet::PingResp,
                    PacketType::Disconnect => Packet::Disconnect,
                    _ => panic!("rumqttc: payload required"),
                }
            } else {
                match ty {
                    PacketType::Connect => Packet::Connect(Connect::read(header, frame).unwrap()),
                    PacketType::ConnAck => Packet::ConnAck(ConnAck::read(header, frame).unwrap()),
                    PacketType::Publish => Packet::Publish(Publish::read(header, frame).unwrap()),
                    PacketType::PubAck => Packet::PubAck(PubAck::read(header, frame).unwrap()),
                    PacketType::PubRec => Packet::PubRec(PubRec::read(header, frame).unwrap()),
                    PacketType::PubRel => Packet::PubRel(PubRel::read(header, frame).unwrap()),
                    PacketType::PubComp => Packet::PubComp(PubComp::read(header, frame).unwrap()),
                    PacketType::Subscribe => {
                        Packet::Subscribe(Subscribe::read(header, frame).unwrap())
                    }
                    PacketType::SubAck => Packet::SubAck(SubAck::read(header, frame).unwrap()),
                    PacketType::Unsubscribe => {
                        Packet::Unsubscribe(Unsubscribe::read(header, frame).unwrap())
                    }
                    PacketType::UnsubAck => {
                        Packet::UnsubAck(UnsubAck::read(header, frame).unwrap())
                    }
                    PacketType::PingReq => Packet::PingReq,
                    PacketType::PingResp => Packet::PingResp,
                    PacketType::Disconnect => Packet::Disconnect,
                }
            };
            black_box(&packet);
            n += 1;
        }
        n
    }

    /// `Packet::read` itself, over a `BytesMut`.
    #[inline(never)]
    pub fn decode_bytesmut(mut buf: BytesMut) -> usize {
        let mut n = 0;
        while !buf.is_empty() {
            match &Packet::read(&mut buf, MAX_PACKET_SIZE) {
                Ok(packet) => black_box(packet),
                Err(e) => panic!("rumqttc decodes: {e}"),
            };
            n += 1;
        }
        n
    }

    pub fn packets(wire: &Bytes) -> Vec<Packet> {
        let mut buf = BytesMut::from(&wire[..]);
        let mut out = Vec::new();
        while !buf.is_empty() {
            let mut packet = Packet::read(&mut buf, MAX_PACKET_SIZE).expect("rumqttc decodes");
            if let Packet::Publish(p) = &mut packet {
                p.payload = own_payload(&p.payload);
            }
            out.push(packet);
        }
        out
    }

    #[inline(never)]
    pub fn encode(packets: &[Packet], buf: &mut BytesMut, start: usize) -> usize {
        buf.truncate(start);
        for p in packets {
            p.write(buf, MAX_PACKET_SIZE).expect("rumqttc encodes");
        }
        buf.len() - start
    }

    pub fn payload(packets: &[Packet]) -> Option<&[u8]> {
        match packets {
            [Packet::Publish(p)] => Some(&p.payload),
            _ => None,
        }
    }
}

// ---- rumqttc, MQTT 5.0 (rumqttc::v5::mqttbytes::v5) --------------------

pub mod rumqttc_v5 {
    use super::*;
    use rumqttc::v5::mqttbytes::v5::{
        ConnAck, Connect, Disconnect, Packet, PacketType, PingReq, PingResp, PubAck, PubComp,
        PubRec, PubRel, Publish, SubAck, Subscribe, UnsubAck, Unsubscribe, check,
    };

    const MAX: Option<u32> = Some(MAX_PACKET_SIZE as u32);

    /// `Packet::read`'s dispatch, over a `Bytes` (see the module docs).
    #[inline(never)]
    pub fn decode(wire: &Bytes) -> usize {
        let mut input = wire.clone();
        let mut n = 0;
        while !input.is_empty() {
            let header = check(input.iter(), MAX).expect("rumqttc frames");
            let frame = input.split_to(header.frame_length());
            let ty = header.packet_type().expect("rumqttc packet type");
            let packet = if frame.len() == 2 {
                match ty {
                    PacketType::PingReq => Packet::PingReq(PingReq),
                    PacketType::PingResp => Packet::PingResp(PingResp),
                    _ => panic!("rumqttc: payload required"),
                }
            } else {
                match ty {
                    PacketType::Connect => {
                        let (c, will, login) = Connect::read(header, frame).unwrap();
                        Packet::Connect(c, will, login)
                    }
                    PacketType::ConnAck => Packet::ConnAck(ConnAck::read(header, frame).unwrap()),
                    PacketType::Publish => Packet::Publish(Publish::read(header, frame).unwrap()),
                    PacketType::PubAck => Packet::PubAck(PubAck::read(header, frame).unwrap()),
                    PacketType::PubRec => Packet::PubRec(PubRec::read(header, frame).unwrap()),
                    PacketType::PubRel => Packet::PubRel(PubRel::read(header, frame).unwrap()),
                    PacketType::PubComp => Packet::PubComp(PubComp::read(header, frame).unwrap()),
                    PacketType::Subscribe => {
                        Packet::Subscribe(Subscribe::read(header, frame).unwrap())
                    }
                    PacketType::SubAck => Packet::SubAck(SubAck::read(header, frame).unwrap()),
                    PacketType::Unsubscribe => {
                        Packet::Unsubscribe(Unsubscribe::read(header, frame).unwrap())
                    }
                    PacketType::UnsubAck => {
                        Packet::UnsubAck(UnsubAck::read(header, frame).unwrap())
                    }
                    PacketType::PingReq => Packet::PingReq(PingReq),
                    PacketType::PingResp => Packet::PingResp(PingResp),
                    PacketType::Disconnect => {
                        Packet::Disconnect(Disconnect::read(header, frame).unwrap())
                    }
                }
            };
            black_box(&packet);
            n += 1;
        }
        n
    }

    /// `Packet::read` itself, over a `BytesMut`.
    #[inline(never)]
    pub fn decode_bytesmut(mut buf: BytesMut) -> usize {
        let mut n = 0;
        while !buf.is_empty() {
            match &Packet::read(&mut buf, MAX) {
                Ok(packet) => black_box(packet),
                Err(e) => panic!("rumqttc decodes: {e}"),
            };
            n += 1;
        }
        n
    }

    pub fn packets(wire: &Bytes) -> Vec<Packet> {
        let mut buf = BytesMut::from(&wire[..]);
        let mut out = Vec::new();
        while !buf.is_empty() {
            let mut packet = Packet::read(&mut buf, MAX).expect("rumqttc decodes");
            if let Packet::Publish(p) = &mut packet {
                p.payload = own_payload(&p.payload);
            }
            out.push(packet);
        }
        out
    }

    #[inline(never)]
    pub fn encode(packets: &[Packet], buf: &mut BytesMut, start: usize) -> usize {
        buf.truncate(start);
        for p in packets {
            p.write(buf, MAX).expect("rumqttc encodes");
        }
        buf.len() - start
    }

    pub fn payload(packets: &[Packet]) -> Option<&[u8]> {
        match packets {
            [Packet::Publish(p)] => Some(&p.payload),
            _ => None,
        }
    }
}

// ---- mqttrs (3.1.1 only) ------------------------------------------------

pub mod mqttrs_codec {
    use super::*;
    use mqttrs::Packet;

    #[inline(never)]
    pub fn decode(wire: &[u8]) -> usize {
        let mut rest = wire;
        let mut n = 0;
        while let Some(len) = frame_len(rest) {
            let (frame, tail) = rest.split_at(len);
            match &mqttrs::decode_slice(frame) {
                Ok(Some(packet)) => black_box(packet),
                _ => panic!("mqttrs decodes"),
            };
            rest = tail;
            n += 1;
        }
        n
    }

    pub fn packets(wire: &[u8]) -> Vec<Packet<'_>> {
        let mut rest = wire;
        let mut out = Vec::new();
        while let Some(len) = frame_len(rest) {
            let (frame, tail) = rest.split_at(len);
            out.push(
                mqttrs::decode_slice(frame)
                    .expect("mqttrs decodes")
                    .expect("complete"),
            );
            rest = tail;
        }
        out
    }

    pub fn payload<'a>(packets: &[Packet<'a>]) -> Option<&'a [u8]> {
        match packets {
            [Packet::Publish(p)] => Some(p.payload),
            _ => None,
        }
    }

    /// `buf` must be large enough for all of them.
    #[inline(never)]
    pub fn encode(packets: &[Packet<'_>], buf: &mut [u8]) -> usize {
        let mut at = 0;
        for p in packets {
            at += mqttrs::encode_slice(p, &mut buf[at..]).expect("mqttrs encodes");
        }
        at
    }
}

// ---- mqtt-protocol (3.1.1 only) -----------------------------------------

pub mod mqtt_protocol_codec {
    use super::*;
    use mqtt::packet::VariablePacket;
    use mqtt::{Decodable, Encodable};

    #[inline(never)]
    pub fn decode(wire: &[u8]) -> usize {
        let mut cursor = Cursor::new(wire);
        let mut n = 0;
        while (cursor.position() as usize) < wire.len() {
            match &VariablePacket::decode(&mut cursor) {
                Ok(packet) => black_box(packet),
                Err(e) => panic!("mqtt-protocol decodes: {e}"),
            };
            n += 1;
        }
        n
    }

    pub fn packets(wire: &[u8]) -> Vec<VariablePacket> {
        let mut cursor = Cursor::new(wire);
        let mut out = Vec::new();
        while (cursor.position() as usize) < wire.len() {
            let mut packet = VariablePacket::decode(&mut cursor).expect("mqtt-protocol decodes");
            if let VariablePacket::PublishPacket(p) = &mut packet {
                let payload = own_payload_vec(p.payload());
                p.set_payload(payload);
            }
            out.push(packet);
        }
        out
    }

    #[inline(never)]
    pub fn encode(packets: &[VariablePacket], buf: &mut Vec<u8>, start: usize) -> usize {
        buf.truncate(start);
        for p in packets {
            p.encode(buf).expect("mqtt-protocol encodes");
        }
        buf.len() - start
    }

    pub fn payload(packets: &[VariablePacket]) -> Option<&[u8]> {
        match packets {
            [VariablePacket::PublishPacket(p)] => Some(p.payload()),
            _ => None,
        }
    }
}
