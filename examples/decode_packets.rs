//! Decodes and pretty-prints what real MQTT clients put on the wire.
//!
//! The byte streams below were captured from mosquitto 2.0's own tools
//! talking to a socket: `mosquitto_pub` (MQTT 5.0, QoS 1, retained, with a
//! user property and a content type) and `mosquitto_sub` (MQTT 3.1.1, two
//! filters at QoS 2). Each stream is fed to the decoder in small chunks, the
//! way a socket delivers it, to show the streaming API: `Ok(None)` means
//! "read more", and nothing is consumed until a whole packet is there.
//! Then the same bytes go through the borrowing decoder, `decode_slice`,
//! which reads packets in place from a `&[u8]` without allocating.
//!
//! Run it with `cargo run --example decode_packets`.

use bytes::BytesMut;
use plover::codec::{self, Packet, PacketRef, ProtocolVersion};

/// `mosquitto_pub -V mqttv5 -i plover-demo -t home/living-room/temperature
/// -m 21.5 -q 1 -r -D publish user-property unit celsius -D publish
/// content-type text/plain`: CONNECT, PUBLISH, DISCONNECT.
const MOSQUITTO_PUB_V5: &str = "101b00044d5154540502003c03210014000b706c6f7665722d64656d6f\
    3342001c686f6d652f6c6976696e672d726f6f6d2f74656d706572617475726500011d\
    260004756e6974000763656c7369757303000a746578742f706c61696e32312e35\
    e000";

/// `mosquitto_sub -V mqttv311 -i plover-sub -t home/+/temperature -t
/// alarm/# -q 2`: CONNECT, SUBSCRIBE.
const MOSQUITTO_SUB_V311: &str = "101600044d5154540402003c000a706c6f7665722d737562\
    822100010012686f6d652f2b2f74656d7065726174757265020007616c61726d2f2302";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for (title, hex, version) in [
        (
            "mosquitto_pub, MQTT 5.0",
            MOSQUITTO_PUB_V5,
            ProtocolVersion::V5,
        ),
        (
            "mosquitto_sub, MQTT 3.1.1",
            MOSQUITTO_SUB_V311,
            ProtocolVersion::V311,
        ),
    ] {
        println!("== {title} ==");
        let wire = from_hex(hex)?;
        let mut buf = BytesMut::new();
        // Seven bytes at a time, like short reads from a socket.
        for chunk in wire.chunks(7) {
            buf.extend_from_slice(chunk);
            while let Some(packet) = codec::decode(&mut buf, version, 1 << 20)? {
                describe(&packet);
            }
        }
        println!();

        // The same bytes, borrowed: each packet is read where it lies, and
        // its strings are `&str`s into `wire`.
        println!("   (decode_slice, in place:)");
        let mut rest = &wire[..];
        while let Some((packet, len)) = codec::decode_slice(rest, version, 1 << 20)? {
            describe_borrowed(&packet);
            rest = &rest[len..];
        }
        println!();
    }
    Ok(())
}

fn describe_borrowed(packet: &PacketRef<'_>) {
    match packet {
        PacketRef::Connect(c) => println!("   CONNECT    client id {:?}", c.client_id),
        PacketRef::Publish(p) => {
            let properties = p.properties.get();
            println!(
                "   PUBLISH    topic {:?}, {} payload bytes, content type {:?}",
                p.topic,
                p.payload.len(),
                properties.content_type
            );
        }
        PacketRef::Subscribe(s) => {
            let filters: Vec<&str> = s.filters.names().collect();
            println!("   SUBSCRIBE  filters {filters:?}");
        }
        other => println!("   {}", other.packet_type()),
    }
}

fn describe(packet: &Packet) {
    match packet {
        Packet::Connect(c) => {
            println!(
                "CONNECT    MQTT {}, client id {:?}, keepalive {} s, clean start {}",
                c.protocol, c.client_id, c.keep_alive, c.clean_start
            );
            if let Some(max) = c.properties.receive_maximum {
                println!("           receive maximum {max}");
            }
        }
        Packet::Publish(p) => {
            println!(
                "PUBLISH    topic {:?}, QoS {}, retain {}, packet id {}, payload {:?}",
                p.topic,
                p.qos,
                p.retain,
                p.packet_id.map_or(0, |id| id.get()),
                String::from_utf8_lossy(&p.payload)
            );
            if let Some(content_type) = &p.properties.content_type {
                println!("           content type {content_type:?}");
            }
            for (name, value) in p.properties.user_properties.iter() {
                println!("           user property {name:?} = {value:?}");
            }
        }
        Packet::Subscribe(s) => {
            println!("SUBSCRIBE  packet id {}", s.packet_id);
            for (filter, options) in &s.filters {
                println!("           filter {filter:?} at QoS {}", options.qos);
            }
        }
        Packet::Disconnect(d) => println!("DISCONNECT {}", d.reason_code),
        other => println!("{:<10} {other:?}", other.packet_type().to_string()),
    }
}

fn from_hex(hex: &str) -> Result<Vec<u8>, std::num::ParseIntError> {
    let digits: Vec<char> = hex.chars().filter(|c| !c.is_whitespace()).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(&pair.iter().collect::<String>(), 16))
        .collect()
}
