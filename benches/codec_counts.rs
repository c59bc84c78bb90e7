//! Heap allocations and instruction counts of the codec benchmarks' work,
//! for plover and each peer crate, on the inputs of `benches/codec.rs`.
//!
//! `cargo bench --bench codec_counts` prints, per case and crate, the heap
//! allocations (and reallocations) one decode and one encode make, counted
//! by a counting global allocator on this thread only (JSON lines with
//! `--out FILE`). Timing is not measured here, so the counting allocator
//! cannot skew the criterion numbers of `benches/codec.rs`.
//!
//! `-- --callgrind GROUP/PARAM CRATE OP ITERS` instead runs one case's
//! decode or encode ITERS times in a function of its own; run that under
//! `valgrind --tool=callgrind --toggle-collect=<function>` to count its
//! instructions, which unlike time do not depend on what else the machine
//! is doing (scripts/bench.sh does this).

mod peers;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

use peers::{Op, ops};

struct CountingAllocator;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
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
        // SAFETY: forwarded as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: forwarded as is.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: forwarded as is; `ptr` came from `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn allocations_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let start = ALLOCATIONS.load(Ordering::Relaxed);
    COUNTING.with(|c| c.set(true));
    let out = f();
    COUNTING.with(|c| c.set(false));
    (out, ALLOCATIONS.load(Ordering::Relaxed) - start)
}

/// The function callgrind is told to count: `iters` runs of `op`.
#[inline(never)]
fn measured(op: &mut Op<'_>, iters: u64) -> usize {
    let mut total = 0;
    for _ in 0..iters {
        total += black_box(op());
    }
    total
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--callgrind") {
        let get = |k: usize| args.get(i + k).cloned().unwrap_or_default();
        let (case_id, krate, op, iters) = (get(1), get(2), get(3), get(4));
        let iters: u64 = iters.parse().unwrap_or(1000);
        let cases = peers::cases();
        let case = cases
            .iter()
            .find(|c| format!("{}/{}", c.group, c.param) == case_id)
            .unwrap_or_else(|| panic!("no case {case_id}"));
        let mut list = ops(case);
        let ops = list
            .iter_mut()
            .find(|o| o.name == krate)
            .unwrap_or_else(|| panic!("no crate {krate} for {case_id}"));
        // Once outside the counted function, so one-time setup (buffers
        // growing to size) is not counted.
        let op = if op == "decode" {
            &mut ops.decode
        } else {
            &mut ops.encode
        };
        op();
        println!("{}", measured(op, iters));
        return;
    }
    if !args.iter().any(|a| a == "--bench") {
        println!("codec_counts: not run (no --bench)");
        return;
    }
    let out_path = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let mut out: Box<dyn Write> = match out_path {
        Some(p) => Box::new(std::fs::File::create(p).expect("create --out file")),
        None => Box::new(std::io::sink()),
    };
    println!(
        "{:<28} {:<14} {:>14} {:>14}",
        "case", "crate", "allocs/decode", "allocs/encode"
    );
    for case in peers::cases() {
        for mut o in ops(&case) {
            // Warm once (buffers reach their size), then count one run.
            (o.decode)();
            (o.encode)();
            let (_, dec) = allocations_during(|| (o.decode)());
            let (_, enc) = allocations_during(|| (o.encode)());
            let per = |n: usize| n as f64 / case.packets.len() as f64;
            println!(
                "{:<28} {:<14} {:>14.2} {:>14.2}",
                format!("{}/{}", case.group, case.param),
                o.name,
                per(dec),
                per(enc)
            );
            writeln!(
                out,
                "{{\"group\":\"{}\",\"param\":\"{}\",\"crate\":\"{}\",\"packets\":{},\"decode_allocs\":{dec},\"encode_allocs\":{enc}}}",
                case.group,
                case.param,
                o.name,
                case.packets.len()
            )
            .ok();
        }
    }
}
