//! Checks the codec's zero-allocation promises: decoding a PUBLISH, of
//! either version and with 5.0 properties, and reading its properties
//! afterwards, performs no heap allocation at all; and the borrowing
//! decoder (`decode_slice`) allocates nothing for any packet. Encoding
//! grows the output buffer at most once.
//!
//! A counting global allocator wraps the system one. Only allocations made
//! by the thread inside [`allocations_during`] are counted (a thread-local
//! flag), so the test harness's own threads cannot disturb the count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::num::{NonZeroU16, NonZeroU32};
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::{Bytes, BytesMut};
use plover::codec::{
    self, AckProperties, Connect, ConnectProperties, LastWill, MqttString, Packet, PacketRef,
    ProtocolVersion, PubAck, Publish, PublishProperties, QoS, SubAck, SubAckReasonCode, Subscribe,
    SubscribeProperties, SubscriptionOptions, UnsubAck, Unsubscribe, UserProperties,
    WillProperties,
};

struct CountingAllocator;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    // Const-initialised and without a destructor, so reading it never
    // allocates (which would recurse into the allocator).
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn note_allocation() {
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged; counting touches only an atomic and a const thread-local.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: forwarded as is; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: as above; `ptr` came from this allocator, i.e. from `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Runs `f` and returns its result with the number of allocations (and
/// reallocations) this thread made meanwhile. The result is handed back,
/// not dropped, inside the measured span.
fn allocations_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let start = ALLOCATIONS.load(Ordering::Relaxed);
    COUNTING.with(|c| c.set(true));
    let out = f();
    COUNTING.with(|c| c.set(false));
    (out, ALLOCATIONS.load(Ordering::Relaxed) - start)
}

/// A test string as whichever MQTT string type the caller wants
/// (`MqttString`, `TopicName` or `TopicFilter`).
fn s<T: for<'a> TryFrom<&'a str, Error: std::fmt::Debug>>(v: &str) -> T {
    T::try_from(v).expect("a valid test string")
}

/// A QoS 1 PUBLISH with a 1 KiB payload; in 5.0 also a content type, two
/// user properties and a subscription identifier.
fn publish(version: ProtocolVersion, packet_id: u16) -> Packet {
    let mut props = PublishProperties::default();
    if version == ProtocolVersion::V5 {
        props.content_type = Some(s("application/octet-stream"));
        props.user_properties = [
            (s::<MqttString>("unit"), s::<MqttString>("celsius")),
            (s::<MqttString>("sensor"), s::<MqttString>("dht22")),
        ]
        .into_iter()
        .collect::<UserProperties>();
        props.subscription_identifiers = NonZeroU32::new(7).into_iter().collect();
    }
    Packet::Publish(
        Publish::new(s("home/living-room/temperature"), vec![0x5A; 1024])
            .with_qos(QoS::AtLeastOnce, NonZeroU16::new(packet_id))
            .with_properties(props),
    )
}

fn encode(packets: &[Packet], version: ProtocolVersion) -> BytesMut {
    let mut buf = BytesMut::new();
    for p in packets {
        p.encode(version, &mut buf).expect("encodes");
    }
    buf
}

/// Reads everything a receiver would read from a decoded PUBLISH's
/// properties; returns something derived from it so nothing is optimised out.
fn read_properties(p: &Publish) -> usize {
    let props = &p.properties;
    let mut n = props.content_type.as_deref().map_or(0, str::len);
    for (k, v) in props.user_properties.iter() {
        n += k.len() + v.len();
    }
    n += props.user_properties.get("sensor").map_or(0, |v| v.len());
    n += props.user_properties.len();
    for id in props.subscription_identifiers.iter() {
        n += id.get() as usize;
    }
    n + p.topic.len() + p.payload.len()
}

/// One packet of each kind that owns strings, lists or properties, as full
/// as the version allows.
fn every_kind(version: ProtocolVersion) -> Vec<Packet> {
    let v5 = version == ProtocolVersion::V5;
    let users = || -> UserProperties {
        if v5 {
            [
                (s::<MqttString>("k"), s::<MqttString>("v")),
                (s::<MqttString>("k2"), s::<MqttString>("v2")),
            ]
            .into_iter()
            .collect()
        } else {
            UserProperties::default()
        }
    };
    let id = |n| NonZeroU16::new(n).expect("non-zero");
    let mut connect = Connect::new(version, s("client-1"));
    connect.username = Some(s("user"));
    connect.password = Some(Bytes::from_static(b"secret"));
    let mut will = LastWill::new(s("clients/1/status"), "gone", QoS::AtLeastOnce, true);
    if v5 {
        connect.properties = ConnectProperties {
            session_expiry_interval: Some(60),
            authentication_method: Some(s("SCRAM-SHA-256")),
            authentication_data: Some(Bytes::from_static(b"n,,n=user")),
            user_properties: users(),
            ..ConnectProperties::default()
        };
        will.properties = WillProperties {
            content_type: Some(s("text/plain")),
            response_topic: Some(s("clients/1/reply")),
            user_properties: users(),
            ..WillProperties::default()
        };
    }
    connect.will = Some(will);
    let ack_props = || AckProperties {
        reason_string: v5.then(|| s("because")),
        user_properties: users(),
    };
    let mut subscribe = Subscribe::new(
        id(3),
        s("a/+/c"),
        SubscriptionOptions::new(QoS::ExactlyOnce),
    );
    subscribe
        .filters
        .push((s("$share/g/x/#"), SubscriptionOptions::new(QoS::AtMostOnce)));
    if v5 {
        subscribe.properties = SubscribeProperties {
            subscription_identifier: NonZeroU32::new(9),
            user_properties: users(),
        };
    }
    let unsubscribe = Unsubscribe {
        packet_id: id(4),
        filters: vec![s("a/+/c"), s("x/#")],
        properties: Default::default(),
    };
    vec![
        Packet::Connect(Box::new(connect)),
        publish(version, 1),
        Packet::PubAck(PubAck {
            properties: ack_props(),
            ..PubAck::new(id(1))
        }),
        Packet::Subscribe(subscribe),
        Packet::SubAck(SubAck {
            packet_id: id(3),
            reason_codes: vec![SubAckReasonCode::GrantedQoS2, SubAckReasonCode::GrantedQoS0],
            properties: ack_props(),
        }),
        Packet::Unsubscribe(unsubscribe),
        Packet::UnsubAck(UnsubAck {
            packet_id: id(4),
            reason_codes: if v5 {
                vec![codec::UnsubAckReasonCode::Success; 2]
            } else {
                Vec::new()
            },
            properties: ack_props(),
        }),
        Packet::PingReq,
    ]
}

/// Everything a reader of a borrowed packet might look at, summed so that
/// nothing is optimised out.
fn read_borrowed(p: &PacketRef<'_>) -> usize {
    p.packet_type() as usize
        + match p {
            PacketRef::Connect(c) => {
                let will = c.will.map_or(0, |w| {
                    w.topic.len()
                        + w.payload.len()
                        + w.properties.get().user_properties.iter().count()
                });
                c.client_id.len()
                    + will
                    + c.username.map_or(0, str::len)
                    + c.password.map_or(0, <[u8]>::len)
                    + c.properties.get().user_properties.len()
            }
            PacketRef::Publish(p) => {
                let users: usize = p
                    .properties
                    .get()
                    .user_properties
                    .iter()
                    .map(|(k, v)| k.len() + v.len())
                    .sum();
                p.topic.len()
                    + p.payload.len()
                    + users
                    + p.properties.get().subscription_identifiers.len()
            }
            PacketRef::PubAck(a) => a.properties.get().reason_string.map_or(0, str::len),
            PacketRef::Subscribe(s) => s
                .filters
                .iter()
                .map(|(f, o)| f.len() + o.qos as usize)
                .sum(),
            PacketRef::SubAck(s) => s.reason_codes().count(),
            PacketRef::Unsubscribe(u) => u.filters.names().map(str::len).sum(),
            PacketRef::UnsubAck(u) => {
                u.reason_codes().count() + u.properties.get().user_properties.len()
            }
            _ => 0,
        }
}

// One test in this binary: the measured spans then run with nothing else of
// ours going on (the thread-local flag makes that a belt on top of braces).
#[test]
fn decoding_does_not_allocate() {
    decoding_a_publish_does_not_allocate();
    decode_slice_never_allocates();
    encoding_grows_the_buffer_at_most_once();
}

/// `Packet::encode` reserves what the packet needs before it writes: into
/// an empty buffer it allocates once, whatever the packet (a PUBLISH with a
/// large payload too, which is written in two pieces), and into a buffer
/// with room, not at all.
fn encoding_grows_the_buffer_at_most_once() {
    for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
        let mut packets = every_kind(version);
        for len in [0, 100, 200, 1 << 16] {
            packets.push(Packet::Publish(
                Publish::new(s("sensors/garden/soil-moisture"), vec![7; len])
                    .with_qos(QoS::AtLeastOnce, NonZeroU16::new(9)),
            ));
        }
        for packet in &packets {
            let len = packet.encoded_len(version).expect("measures");
            // Named by its start: a PUBLISH's Debug holds the whole payload.
            let what: String = format!("{packet:?}").chars().take(60).collect();
            let (buf, n) = allocations_during(|| {
                let mut buf = BytesMut::new();
                packet.encode(version, &mut buf).expect("encodes");
                buf
            });
            assert_eq!(buf.len(), len);
            assert_eq!(n, 1, "{version}: encoding {what}.. allocated {n} times");
            // Room for the packet, and for the block a small one is
            // written in (at most 256 bytes), leaves nothing to grow.
            let mut roomy = BytesMut::with_capacity(len + 256);
            let (_, n) = allocations_during(|| packet.encode(version, &mut roomy));
            assert_eq!(n, 0, "{version}: encoding {what}.. with room allocated");
            assert_eq!(roomy, buf);
            // Some room, but not enough: one growth still.
            for room in [1, 63, 64, 65, 200] {
                let mut some = BytesMut::with_capacity(room);
                some.extend_from_slice(&vec![1; room.min(3)]);
                let (_, n) = allocations_during(|| packet.encode(version, &mut some));
                assert!(
                    n <= 1,
                    "{version}: {what}.. grew {n} times, {room} bytes of room"
                );
                assert_eq!(some[room.min(3)..], buf[..]);
            }
        }
    }
}

fn decode_slice_never_allocates() {
    for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
        for expected in every_kind(version) {
            let wire = encode(std::slice::from_ref(&expected), version);
            let (read, n) = allocations_during(|| {
                let (packet, len) = codec::decode_slice(&wire, version, 1 << 20)
                    .expect("decodes")
                    .expect("is complete");
                (packet, len, read_borrowed(&packet))
            });
            assert_eq!(
                n, 0,
                "{version}: decode_slice of {expected:?} allocated {n} times"
            );
            let (packet, len, total) = read;
            assert_eq!(len, wire.len());
            assert!(total > 0);
            // Zero-copy: strings point into the input.
            if let PacketRef::Publish(p) = &packet {
                assert!(wire.as_ptr_range().contains(&p.topic.as_ptr()));
                assert!(wire.as_ptr_range().contains(&p.payload.as_ptr()));
            }
            assert_eq!(packet.to_packet(), expected);
        }
    }
}

fn decoding_a_publish_does_not_allocate() {
    // The counter must see allocations, or every "0" below means nothing.
    let (v, n) = allocations_during(|| Vec::<u8>::with_capacity(64));
    assert_eq!(
        (v.capacity() >= 64, n),
        (true, 1),
        "the counter is not counting"
    );

    for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
        // decode_bytes over input already complete in memory. A `Bytes`
        // made from a `Vec` allocates its shared header on its first clone
        // or split (bytes' lazy "promotion"); clone once beforehand, as the
        // bytes coming from a network buffer are already shared.
        let expected = publish(version, 42);
        let input: Bytes = encode(std::slice::from_ref(&expected), version).freeze();
        drop(input.clone());
        let mut cursor = input.clone();
        let (decoded, n) =
            allocations_during(|| codec::decode_bytes(&mut cursor, version, 1 << 20));
        assert_eq!(n, 0, "{version}: decode_bytes allocated {n} times");
        let decoded = decoded.expect("decodes").expect("is complete");
        assert_eq!(decoded, expected);
        assert!(cursor.is_empty());
        let Packet::Publish(p) = &decoded else {
            panic!("not a PUBLISH: {decoded:?}");
        };
        // Zero-copy: the payload is a view of the input.
        assert!(input.as_ptr_range().contains(&p.payload.as_ptr()));

        // Reading the properties back walks the property block in place.
        let (total, n) = allocations_during(|| read_properties(p));
        assert_eq!(n, 0, "{version}: reading properties allocated {n} times");
        assert!(total > 1024);
        if version == ProtocolVersion::V5 {
            assert_eq!(p.properties.user_properties.len(), 2);
            assert_eq!(p.properties.subscription_identifiers.len(), 1);
        }

        // decode over a network-style BytesMut holding three packets. The
        // first split turns the buffer's Vec into a shared allocation (one
        // allocation, once per buffer); after that splitting is a
        // reference-count bump.
        let packets: Vec<Packet> = (1..=3).map(|id| publish(version, id)).collect();
        let mut wire = encode(&packets, version);
        let first = codec::decode(&mut wire, version, 1 << 20);
        assert_eq!(first, Ok(Some(packets[0].clone())));
        for expected in &packets[1..] {
            let (decoded, n) = allocations_during(|| codec::decode(&mut wire, version, 1 << 20));
            assert_eq!(n, 0, "{version}: decode from BytesMut allocated {n} times");
            let decoded = decoded.expect("decodes").expect("is complete");
            assert_eq!(&decoded, expected);
            let Packet::Publish(p) = &decoded else {
                panic!("not a PUBLISH: {decoded:?}");
            };
            let (_, n) = allocations_during(|| read_properties(p));
            assert_eq!(n, 0, "{version}: reading properties allocated {n} times");
        }
        assert!(wire.is_empty());
    }
}
