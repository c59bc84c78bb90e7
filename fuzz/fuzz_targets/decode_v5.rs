//! Decodes any bytes as an MQTT 5.0 stream without panicking, and checks
//! decode(encode(p)) == p for every packet decoded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plover::codec::ProtocolVersion;

#[path = "../checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::check_stream(data, ProtocolVersion::V5));
