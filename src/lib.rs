//! plover: an async MQTT 3.1.1 and 5.0 client for tokio.
//!
//! The crate is built in layers, each usable on its own (see `DESIGN.md`):
//!
//! - [`codec`]: bytes to packets and back, for every packet of both protocol
//!   versions. Zero-copy, allocation-free for PUBLISH, strict about
//!   malformed input, and without any I/O.
//! - [`topic`]: topic name and filter validation, wildcard matching and
//!   shared subscriptions.
//! - [`session`]: the sans-IO protocol state machine (packet ids, QoS 1/2
//!   flows, keepalive, flow control), driven by time passed in.
//! - [`Client`]: a cheap, cloneable handle whose calls mirror paho-mqtt's,
//!   backed by a tokio task that owns the socket; incoming messages arrive
//!   on one stream, per subscription ([`Subscription`]) or in callbacks.
//! - [`request`]: MQTT request/response ([`Client::request`],
//!   [`Client::respond`]), with 5.0 properties or a 3.1.1 convention.
//!
//! ```
//! use bytes::BytesMut;
//! use plover::codec::{decode, Packet, ProtocolVersion};
//!
//! // What `mosquitto_pub -t hello -m world` sends after connecting.
//! let mut wire = BytesMut::from(&b"\x30\x0c\x00\x05helloworld"[..]);
//! match decode(&mut wire, ProtocolVersion::V311, 1 << 20).unwrap() {
//!     Some(Packet::Publish(p)) => {
//!         assert_eq!(p.topic, "hello");
//!         assert_eq!(p.payload, "world");
//!     }
//!     other => panic!("unexpected {other:?}"),
//! }
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod auth;
mod client;
pub mod codec;
mod eventloop;
mod id_map;
mod queue;
pub mod request;
mod router;
pub mod session;
pub mod topic;
pub mod transport;

pub use client::{
    Client, ClientBuilder, ClientError, ConnectionEvent, ConnectionEvents, Message, Messages,
    PublishHandle, QueueFull,
};
pub use codec::{ProtocolVersion, QoS};
pub use request::RequestParts;
pub use router::Subscription;
pub use session::{CloseReason, PublishOutcome, ResubscribeError};

// README.md's examples are compiled and run as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
