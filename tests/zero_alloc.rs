//! Checks the codec's zero-allocation promise: decoding a PUBLISH, of either
//! version and with 5.0 properties, and reading its properties afterwards,
//! performs no heap allocation at all.
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
    self, MqttString, Packet, ProtocolVersion, Publish, PublishProperties, QoS, UserProperties,
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

fn s(v: &'static str) -> MqttString {
    MqttString::from_static(v)
}

/// A QoS 1 PUBLISH with a 1 KiB payload; in 5.0 also a content type, two
/// user properties and a subscription identifier.
fn publish(version: ProtocolVersion, packet_id: u16) -> Packet {
    let mut props = PublishProperties::default();
    if version == ProtocolVersion::V5 {
        props.content_type = Some(s("application/octet-stream"));
        props.user_properties = [(s("unit"), s("celsius")), (s("sensor"), s("dht22"))]
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

// One test in this binary: the measured spans then run with nothing else of
// ours going on (the thread-local flag makes that a belt on top of braces).
#[test]
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
