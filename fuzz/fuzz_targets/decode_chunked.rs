//! Feeds a stream to `decode` in arbitrary chunks, as a socket would, and
//! checks it yields exactly what `decode_bytes` yields over the whole
//! stream, and that `Ok(None)` never consumes bytes. Input layout: version
//! byte, chunk-size count, chunk sizes, stream (see `checks::check_chunked`).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::check_chunked(data));
