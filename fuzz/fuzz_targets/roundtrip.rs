//! Decodes the input as 3.1.1 and as 5.0; every packet decoded must encode
//! in the same version, with `encoded_len` bytes, decode back to itself, and
//! encode again to the very same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::check_roundtrip(data));
