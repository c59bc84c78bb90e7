//! Paired timing of the codec benchmarks: plover and each peer crate timed
//! in turn, a millisecond each, hundreds of times over, so that every ratio
//! compares two measurements taken within a few milliseconds of each other.
//!
//! On a shared or virtual machine the speed of the CPU drifts over seconds
//! and jumps from one process to the next; criterion (`benches/codec.rs`)
//! measures one benchmark for a second or more before the next, so two
//! crates a few nanoseconds apart can come out either way from one run to
//! the next. Here, for every case and operation, each crate runs a sample
//! of about `--sample-us` microseconds (the iteration count calibrated per
//! crate), all crates one after another, forward and backward in turn,
//! for `--rounds` rounds. A round's ratio is the peer's time per iteration
//! over plover's in that round; `scripts/bench_report.py` gives the median
//! of those ratios and the share of rounds in which plover was faster. A
//! drift slower than a round cancels out of every ratio.
//!
//! ```sh
//! cargo bench --bench codec_paired                     # every case, 301 rounds
//! cargo bench --bench codec_paired -- --filter 64B     # cases whose id contains 64B
//! cargo bench --bench codec_paired -- --rounds 101 --sample-us 500 --out paired.jsonl
//! ```
//!
//! The inputs and the work per iteration are those of `benches/codec.rs`
//! and `benches/codec_counts.rs` (`peers::ops`). Nothing here is a
//! pass/fail test.

mod peers;

use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, Instant};

use peers::{Op, ops};

struct Args {
    rounds: usize,
    sample: Duration,
    filter: String,
    out: Option<String>,
}

fn parse_args() -> Option<Args> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and
    // then nothing runs.
    if !args.iter().any(|a| a == "--bench") {
        return None;
    }
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let number = |name: &str, default: u64| {
        value(name).map_or(default, |v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number, not {v:?}"))
        })
    };
    Some(Args {
        // Odd, so that the median is one round's ratio.
        rounds: number("--rounds", 301).max(1) as usize | 1,
        sample: Duration::from_micros(number("--sample-us", 1000).max(1)),
        filter: value("--filter").unwrap_or_default(),
        out: value("--out"),
    })
}

/// Runs `op` `iters` times and returns the time per run, in nanoseconds.
#[inline(never)]
fn sample(op: &mut Op<'_>, iters: u64) -> f64 {
    let start = Instant::now();
    for _ in 0..iters {
        black_box(op());
    }
    start.elapsed().as_nanos() as f64 / iters as f64
}

/// How many runs of `op` take about `target`, after warming it for as long.
fn calibrate(op: &mut Op<'_>, target: Duration) -> u64 {
    let mut iters = 1u64;
    let start = Instant::now();
    // Doubling from one: bounded by the count (2^40 runs) and by the
    // time, whichever ends first.
    for _ in 0..40 {
        let t = Duration::from_secs_f64(sample(op, iters) * iters as f64 * 1e-9);
        if t >= target || start.elapsed() >= target * 20 {
            let per_run = t.as_secs_f64() / iters as f64;
            return ((target.as_secs_f64() / per_run) as u64).max(1);
        }
        iters *= 2;
    }
    iters
}

fn main() {
    let Some(args) = parse_args() else {
        println!("codec_paired: not run (no --bench)");
        return;
    };
    let mut out: Box<dyn Write> = match &args.out {
        Some(p) => Box::new(std::fs::File::create(p).expect("create --out file")),
        None => Box::new(std::io::sink()),
    };
    println!(
        "{} rounds of {} µs samples per crate",
        args.rounds,
        args.sample.as_micros()
    );
    for case in peers::cases() {
        let id = format!("{}/{}", case.group, case.param);
        if !id.contains(&args.filter) {
            continue;
        }
        let mut list = ops(&case);
        for op_name in ["decode", "encode"] {
            // plover-slice encodes with plover's one encoder: not timed twice.
            let mut timed: Vec<(&str, &mut Op<'_>)> = list
                .iter_mut()
                .filter(|o| op_name == "decode" || o.name != "plover-slice")
                .map(|o| {
                    let op = if op_name == "decode" {
                        &mut o.decode
                    } else {
                        &mut o.encode
                    };
                    (o.name, op)
                })
                .collect();
            let iters: Vec<u64> = timed
                .iter_mut()
                .map(|(_, op)| calibrate(op, args.sample))
                .collect();
            let mut times = vec![Vec::with_capacity(args.rounds); timed.len()];
            for round in 0..args.rounds {
                let order: Vec<usize> = if round % 2 == 0 {
                    (0..timed.len()).collect()
                } else {
                    (0..timed.len()).rev().collect()
                };
                for i in order {
                    times[i].push(sample(timed[i].1, iters[i]));
                }
            }
            let mut line = format!("{id:<24} {op_name}");
            for (i, (name, _)) in timed.iter().enumerate() {
                let mut sorted = times[i].clone();
                sorted.sort_by(f64::total_cmp);
                let median = sorted[sorted.len() / 2];
                line.push_str(&format!("  {name} {median:.1} ns"));
                let list: Vec<String> = times[i].iter().map(|t| format!("{t:.3}")).collect();
                writeln!(
                    out,
                    "{{\"case\":\"{id}\",\"op\":\"{op_name}\",\"crate\":\"{name}\",\"iters\":{},\"ns\":[{}]}}",
                    iters[i],
                    list.join(",")
                )
                .ok();
            }
            println!("{line}");
        }
    }
}
