#!/usr/bin/env python3
"""Turns the benchmark outputs into the tables of BENCHMARKS.md and the
chart docs/bench.svg. Run by scripts/bench.sh; reads

  target/criterion/**/round-N/{benchmark,estimates}.json  (benches/codec.rs,
                                the rounds listed in target/bench/codec_rounds.txt)
  target/bench/counts.jsonl     (benches/codec_counts.rs: allocations)
  target/bench/callgrind.jsonl  (instruction counts, written by bench.sh)
  target/bench/paired.jsonl     (benches/codec_paired.rs: paired rounds)
  target/bench/e2e.jsonl        (benches/e2e.rs)
  target/bench/machine.txt      (written by bench.sh)

and rewrites the parts of BENCHMARKS.md between
`<!-- BEGIN GENERATED: name -->` and `<!-- END GENERATED: name -->`.
Standard library only.
"""

import glob
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
BENCH = os.path.join(TARGET, "bench")

PEERS_V311 = ["rumqttc", "mqttrs", "mqtt-protocol"]
PEERS_V5 = ["rumqttc"]


def fmt_time(ns):
    if ns is None:
        return "n/a"
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.1f} ns"


def fmt_ratio(r):
    return "n/a" if r is None else f"{r:.2f}×"


def read_jsonl(name):
    path = os.path.join(BENCH, name)
    if not os.path.exists(path):
        return []
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
    return out


def median(xs):
    xs = sorted(xs)
    mid = len(xs) // 2
    return xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2


def criterion():
    """{(op, group, crate, param): [median ns of each round]}

    The rounds are the baselines bench.sh names in codec_rounds.txt
    (`--save-baseline round-N`); without that file, criterion's latest
    results (`new`), as one round."""
    rounds = ["new"]
    rpath = os.path.join(BENCH, "codec_rounds.txt")
    if os.path.exists(rpath):
        with open(rpath) as f:
            rounds = [line.strip() for line in f if line.strip()] or rounds
    res = {}
    for r in rounds:
        for bj in glob.glob(os.path.join(TARGET, "criterion", "**", r, "benchmark.json"), recursive=True):
            try:
                with open(bj) as f:
                    b = json.load(f)
                with open(os.path.join(os.path.dirname(bj), "estimates.json")) as f:
                    e = json.load(f)
            except (OSError, json.JSONDecodeError):
                continue
            group = b.get("group_id", "")
            if "/" not in group:
                continue
            op, case = group.split("/", 1)
            key = (op, case, b.get("function_id"), b.get("value_str"))
            res.setdefault(key, {})[r] = e["median"]["point_estimate"]
    return {k: [v[r] for r in rounds if r in v] for k, v in res.items()}


def crit_time(crit, key):
    """The median over rounds of one benchmark's time, or None."""
    times = crit.get(key)
    return median(times) if times else None


def crit_ratio(crit, theirs, mine):
    """The other's time over plover's, taken round by round: the median,
    and the range too when the rounds disagree on which is faster."""
    a, b = crit.get(theirs) or [], crit.get(mine) or []
    ratios = sorted(x / y for x, y in zip(a, b) if x and y)
    if not ratios:
        return "n/a"
    text = fmt_ratio(median(ratios))
    if ratios[0] < 1 < ratios[-1]:
        text += f" ({ratios[0]:.2f}–{ratios[-1]:.2f})"
    return text


CASES_V311 = [
    ("publish_qos1_v311", "64B", "PUBLISH QoS 1, 64 B"),
    ("publish_qos1_v311", "1KiB", "PUBLISH QoS 1, 1 KiB"),
    ("publish_qos1_v311", "64KiB", "PUBLISH QoS 1, 64 KiB"),
    ("publish_qos1_v311", "1MiB", "PUBLISH QoS 1, 1 MiB"),
    ("mixed_v311", "10000", "mixed stream, 10,000 packets"),
    ("acks_v311", "1000", "acknowledgements, 1,000 packets"),
    ("connect_v311", "1", "CONNECT (will, user, password)"),
    ("subscribe_v311", "1", "SUBSCRIBE (5 filters)"),
]
CASES_V5 = [
    ("publish_qos1_v5", "64B", "PUBLISH QoS 1, 64 B, 2 properties"),
    ("publish_qos1_v5", "1KiB", "PUBLISH QoS 1, 1 KiB"),
    ("publish_qos1_v5", "64KiB", "PUBLISH QoS 1, 64 KiB"),
    ("publish_qos1_v5", "1MiB", "PUBLISH QoS 1, 1 MiB"),
    ("mixed_v5", "10000", "mixed stream, 10,000 packets"),
    ("acks_v5", "1000", "acknowledgements, 1,000 packets"),
    ("connect_v5", "1", "CONNECT with properties and will properties"),
    ("subscribe_v5", "1", "SUBSCRIBE, 5 filters, sub. id, user property"),
]


# Which of plover's two decoders a peer's decode is set against: mqttrs
# borrows from its input as `decode_slice` does; the others give owned
# packets, as `decode_bytes` does.
BORROWING = {"mqttrs"}


def codec_table(crit, op, cases, peers):
    decode = op == "decode"

    def base_name(peer):
        return "plover_slice" if (decode and peer in BORROWING) else "plover"

    def base_label(peer):
        return "plover `decode_slice`" if base_name(peer) == "plover_slice" else "plover"

    if decode:
        head = "| case | plover (`decode_bytes`) | plover `decode_slice` | "
        sep = "|---|---:|---:|"
    else:
        head = "| case | plover | "
        sep = "|---|---:|"
    head += " | ".join(f"{p} | {p} ÷ {base_label(p)}" for p in peers) + " |"
    sep += "---:|---:|" * len(peers)
    rows = [head, sep]
    for group, param, label in cases:
        def key(crate):
            return (op, group, crate, param)

        cells = [label, fmt_time(crit_time(crit, key("plover")))]
        if decode:
            cells.append(fmt_time(crit_time(crit, key("plover_slice"))))
        for p in peers:
            cells += [fmt_time(crit_time(crit, key(p))), crit_ratio(crit, key(p), key(base_name(p)))]
        rows.append("| " + " | ".join(cells) + " |")
        if not decode and crit.get(key("plover_head")):
            cells = [label + ", payload sent from its buffer (`encode_head`, the client's way from 16 KiB)",
                     fmt_time(crit_time(crit, key("plover_head")))]
            for p in peers:
                cells += [fmt_time(crit_time(crit, key(p))), crit_ratio(crit, key(p), key("plover_head"))]
            rows.append("| " + " | ".join(cells) + " |")
        if decode and group.startswith(("mixed", "acks")):
            cells = [label + ", from a `BytesMut` (`decode` / `Packet::read`)",
                     fmt_time(crit_time(crit, key("plover_bytesmut"))), "n/a"]
            for p in peers:
                if p == "rumqttc":
                    theirs = key(p + "_bytesmut")
                    cells += [fmt_time(crit_time(crit, theirs)), crit_ratio(crit, theirs, key("plover_bytesmut"))]
                else:
                    cells += ["n/a", "n/a"]
            rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def counts_tables():
    counts = read_jsonl("counts.jsonl")
    cg = read_jsonl("callgrind.jsonl")
    out = []
    if counts:
        crates = ["plover", "plover-slice", "rumqttc", "mqttrs", "mqtt-protocol"]
        out.append("Heap allocations per packet (`benches/codec_counts.rs`, a counting global allocator;")
        out.append("plover-slice is `decode_slice`, whose encode is plover's):\n")
        out.append("| case | " + " | ".join(f"{c} decode / encode" for c in crates) + " |")
        out.append("|---|" + "---:|" * len(crates))
        by = {(c["group"], c["param"], c["crate"]): c for c in counts}
        for group, param, label in CASES_V311 + CASES_V5:
            cells = [f"{label} ({'5.0' if group.endswith('v5') else '3.1.1'})"]
            for c in crates:
                r = by.get((group, param, c))
                if r is None:
                    cells.append("n/a")
                else:
                    n = r["packets"]
                    cells.append(f"{r['decode_allocs'] / n:.2f} / {r['encode_allocs'] / n:.2f}")
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    if cg:
        out.append("Instructions per operation under `valgrind --tool=callgrind` (counts, unlike times, do not move with the machine's load):\n")
        out.append("Ratios are the peer's count over plover's; for mqttrs's decode, over `decode_slice`'s (plover-slice).\n")
        out.append("| case | op | plover | plover-slice | rumqttc | mqttrs | mqtt-protocol |")
        out.append("|---|---|---:|---:|---:|---:|---:|")
        by = {(r["case"], r["crate"], r["op"]): r["instructions"] for r in cg}
        seen = []
        for r in cg:
            key = (r["case"], r["op"])
            if key not in seen:
                seen.append(key)
        for case, op in seen:
            base = by.get((case, "plover", op))
            sl = by.get((case, "plover-slice", op))
            cells = [case, op, f"{base:,.0f}" if base else "n/a", f"{sl:,.0f}" if sl else "n/a"]
            for c in ["rumqttc", "mqttrs", "mqtt-protocol"]:
                v = by.get((case, c, op))
                b = sl if (c in BORROWING and op == "decode") else base
                cells.append(f"{v:,.0f} ({v / b:.2f}×)" if (v and b) else "n/a")
            out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def paired_table():
    """The paired rounds of benches/codec_paired.rs: per case, operation
    and peer, the median of the round-by-round ratios (peer over plover),
    the middle 80% of them, and the share of rounds plover was faster."""
    rows = read_jsonl("paired.jsonl")
    if not rows:
        return ""
    ns = {(r["case"], r["op"], r["crate"]): r["ns"] for r in rows}
    rounds = len(rows[0]["ns"])
    out = [f"{rounds} paired rounds per case and operation (`benches/codec_paired.rs`). "
           "A cell is the peer's time over plover's, taken within each round: the median, "
           "the middle 80% of the rounds in parentheses, and in how many rounds "
           "plover was the faster. Plover's time is the median over the rounds; "
           "decoding, mqttrs is set against `decode_slice`, the others against "
           "`decode_bytes`.\n",
           "| case | op | plover | vs rumqttc | vs mqttrs | vs mqtt-protocol |",
           "|---|---|---:|---:|---:|---:|"]
    for group, param, label in CASES_V311 + CASES_V5:
        case = f"{group}/{param}"
        for op in ["decode", "encode"]:
            mine = ns.get((case, op, "plover"))
            if not mine:
                continue
            cells = [f"{label} ({'5.0' if group.endswith('v5') else '3.1.1'})", op]
            slice_ = ns.get((case, op, "plover-slice"))
            if op == "decode" and slice_:
                cells.append(f"{fmt_time(median(mine))} / {fmt_time(median(slice_))}")
            else:
                cells.append(fmt_time(median(mine)))
            for peer in PEERS_V311:
                theirs = ns.get((case, op, peer))
                base = slice_ if (op == "decode" and peer in BORROWING) else mine
                if not theirs or not base:
                    cells.append("n/a")
                    continue
                ratios = sorted(t / b for t, b in zip(theirs, base) if t and b)
                n = len(ratios)
                low, high = ratios[n // 10], ratios[n - 1 - n // 10]
                faster = sum(r > 1 for r in ratios) * 100 / n
                cells.append(f"{fmt_ratio(median(ratios))} ({low:.2f}–{high:.2f}), {faster:.0f}%")
            out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def round_ratios(mine, theirs):
    """Median and range of plover's rate over another client's, round by round."""
    a = (mine or {}).get("rates_by_round") or []
    b = (theirs or {}).get("rates_by_round") or []
    ratios = sorted(x / y for x, y in zip(a, b) if x and y)
    if not ratios:
        return "n/a"
    return f"{median(ratios):.2f}× ({ratios[0]:.2f}–{ratios[-1]:.2f})"


def e2e_tables(e2e):
    thr = [r for r in e2e if r.get("kind") == "throughput"]
    lat = [r for r in e2e if r.get("kind") == "latency"]
    idle = [r for r in e2e if r.get("kind") == "idle"]
    meta = next((r for r in e2e if r.get("kind") == "meta"), {})
    end = next((r for r in e2e if r.get("kind") == "end"), {})
    out = []
    if thr:
        n = meta.get("n", "?")
        out.append(f"Throughput: {n:,} messages of 64 B, median of {meta.get('repeat', 1)} runs "
                   f"(all runs' rates in `target/bench/e2e.jsonl`). Ratios are plover ÷ the other, "
                   "so above 1× means plover is ahead; the rounds ran every client back to back, and \"round by round\" "
                   "is the median (and range) of plover's rate over the other's in the same round, which a change in "
                   "the machine's speed between rounds does not move. Broker busy is mosquitto's CPU time from the publisher's start to "
                   "the subscriber's end, in percent of one core: near 100% the broker, not the client, sets the rate.\n")
        out.append("| QoS | client | msg/s | plover ÷ it | round by round | lost | duplicated | CPU µs/msg pub + sub | broker busy | peak RSS pub / sub |")
        out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for qos in sorted({r["qos"] for r in thr}):
            rows = {r["client"]: r for r in thr if r["qos"] == qos}
            base = rows.get("plover", {}).get("sub", {}).get("msgs_per_s")
            for client in ["plover", "rumqttc", "mosquitto"]:
                r = rows.get(client)
                if not r:
                    continue
                s = r["sub"]
                rate = s.get("msgs_per_s", 0)
                ratio = "" if client == "plover" else fmt_ratio(base / rate if (base and rate) else None)
                rounds = "" if client == "plover" else round_ratios(rows.get("plover"), r)
                name = {"mosquitto": "mosquitto_pub / _sub (C)", "rumqttc": "rumqttc AsyncClient"}.get(client, client)
                cpu = f"{r['pub_cpu_ns'] / r['n'] / 1e3:.2f} + {r['sub_cpu_ns'] / r['n'] / 1e3:.2f}"
                rss = f"{r['pub_maxrss_kib'] / 1024:.1f} / {r['sub_maxrss_kib'] / 1024:.1f} MiB"
                busy = (f"{r['broker_cpu_ns'] * 100 / r['window_ns']:.0f}%"
                        if r.get("window_ns") else "n/a")
                out.append(f"| {qos} | {name} | {rate:,.0f} | {ratio} | {rounds} | {s.get('lost')} | {s.get('duplicated')} | {cpu} | {busy} | {rss} |")
        out.append("")
    if lat:
        rate = meta.get("rate", "?")
        out.append(f"Latency, publish call to the subscriber having the message, at a fixed {rate:,} msg/s "
                   f"for {meta.get('latency_secs', '?')} s. The CPU time per message here compares the clients "
                   "doing the same work at the same pace; in the flood runs above it also depends on how many "
                   "messages each read or write happens to carry, which changes with the rate a client reaches.\n")
        out.append("| QoS | client | p50 | p99 | max | lost | duplicated | CPU µs/msg pub + sub |")
        out.append("|---|---|---:|---:|---:|---:|---:|---:|")
        for qos in sorted({r["qos"] for r in lat}):
            for client in ["plover", "rumqttc", "mosquitto"]:
                r = next((x for x in lat if x["qos"] == qos and x["client"] == client), None)
                if not r:
                    continue
                s = r["sub"]
                name = {"mosquitto": "mosquitto_pub / _sub (C)", "rumqttc": "rumqttc AsyncClient"}.get(client, client)
                cpu = f"{r['pub_cpu_ns'] / r['n'] / 1e3:.2f} + {r['sub_cpu_ns'] / r['n'] / 1e3:.2f}"
                out.append(f"| {qos} | {name} | {fmt_time(s.get('p50_ns'))} | {fmt_time(s.get('p99_ns'))} | "
                           f"{fmt_time(s.get('max_ns'))} | {s.get('lost')} | {s.get('duplicated')} | {cpu} |")
        out.append("")
    if idle:
        out.append("Idle connections, all in one process (current-thread runtime), each subscribed with keepalive 5 s, "
                   "memory read after 11 s (every connection has pinged twice):\n")
        out.append("| client | connections | connected | time to connect + subscribe all | RSS growth ÷ N | process RSS |")
        out.append("|---|---:|---:|---:|---:|---:|")
        for r in idle:
            x = r.get("result", {})
            if not x:
                continue
            out.append(f"| {r['client']} | {x.get('n'):,} | {x.get('connected'):,} | {x.get('connect_ns', 0) / 1e9:.2f} s | "
                       f"{x.get('bytes_per_conn', 0) / 1024:.1f} KiB | {x.get('rss_kib', 0) / 1024:.1f} MiB |")
        out.append("")
    if meta or end:
        out.append(f"Load average at the start of the end-to-end run: `{meta.get('loadavg_start', '?')}`; "
                   f"at its end: `{end.get('loadavg_end', '?')}`.")
    return "\n".join(out)


def svg_chart(crit, e2e, path):
    """Two panels: end-to-end throughput by QoS, and codec throughput on
    the mixed stream (packets per µs), one bar per client or crate."""
    colors = {"plover": "#2b6cb0", "plover_slice": "#63b3ed", "rumqttc": "#dd6b20", "mosquitto": "#718096",
              "mqttrs": "#38a169", "mqtt-protocol": "#805ad5"}
    W, H = 900, 380
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
             'font-family="sans-serif" font-size="12">',
             f'<rect width="{W}" height="{H}" fill="white"/>']

    def panel(x0, title, groups, unit):
        # groups: [(label, [(series, value)])]
        pw, ph, top = 400, 250, 60
        parts.append(f'<text x="{x0 + pw / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">{title}</text>')
        vmax = max([v for _, s in groups for _, v in s if v] + [1])
        parts.append(f'<line x1="{x0}" y1="{top + ph}" x2="{x0 + pw}" y2="{top + ph}" stroke="#333"/>')
        for i in range(5):
            v = vmax * i / 4
            y = top + ph - ph * i / 4
            parts.append(f'<line x1="{x0}" y1="{y}" x2="{x0 + pw}" y2="{y}" stroke="#ddd"/>')
            parts.append(f'<text x="{x0 - 4}" y="{y + 4}" text-anchor="end" fill="#555">{v:,.0f}</text>')
        parts.append(f'<text x="{x0}" y="{top - 10}" fill="#555">{unit}</text>')
        gw = pw / max(len(groups), 1)
        for gi, (label, series) in enumerate(groups):
            n = max(len(series), 1)
            bw = (gw - 16) / n
            for si, (name, v) in enumerate(series):
                if not v:
                    continue
                h = ph * v / vmax
                x = x0 + gi * gw + 8 + si * bw
                parts.append(f'<rect x="{x:.1f}" y="{top + ph - h:.1f}" width="{bw - 2:.1f}" height="{h:.1f}" '
                             f'fill="{colors.get(name, "#999")}"><title>{name}: {v:,.1f}</title></rect>')
            parts.append(f'<text x="{x0 + gi * gw + gw / 2}" y="{top + ph + 16}" text-anchor="middle">{label}</text>')

    thr = [r for r in e2e if r.get("kind") == "throughput"]
    groups = []
    for qos in sorted({r["qos"] for r in thr}):
        series = []
        for c in ["plover", "rumqttc", "mosquitto"]:
            r = next((x for x in thr if x["qos"] == qos and x["client"] == c), None)
            series.append((c, r["sub"].get("msgs_per_s") if r else None))
        groups.append((f"QoS {qos}", series))
    panel(70, "End to end via mosquitto (msg/s, higher is better)", groups, "messages / s")

    groups = []
    for op in ["decode", "encode"]:
        for group, label in [("mixed_v311", "3.1.1"), ("mixed_v5", "5.0")]:
            series = []
            crates = ["plover", "rumqttc", "mqttrs", "mqtt-protocol"]
            if op == "decode":
                crates.insert(1, "plover_slice")
            for c in crates:
                t = crit_time(crit, (op, group, c, "10000"))
                series.append((c, 10000 / (t / 1e3) if t else None))
            groups.append((f"{op} {label}", series))
    panel(530, "Codec, mixed stream (packets/µs, higher is better)", groups, "packets / µs")

    lx = 70
    for name in ["plover", "plover_slice", "rumqttc", "mosquitto", "mqttrs", "mqtt-protocol"]:
        label = {"mosquitto": "mosquitto_pub/_sub (C)", "plover_slice": "plover decode_slice"}.get(name, name)
        parts.append(f'<rect x="{lx}" y="{H - 30}" width="12" height="12" fill="{colors[name]}"/>')
        parts.append(f'<text x="{lx + 16}" y="{H - 20}">{label}</text>')
        lx += 24 + 7 * len(label)
    parts.append("</svg>")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")


def replace_section(text, name, body):
    pat = re.compile(rf"(<!-- BEGIN GENERATED: {re.escape(name)} -->\n).*?(<!-- END GENERATED: {re.escape(name)} -->)", re.S)
    if not pat.search(text):
        print(f"bench_report: no section {name} in BENCHMARKS.md", file=sys.stderr)
        return text
    return pat.sub(lambda m: m.group(1) + body.rstrip() + "\n" + m.group(2), text)


def main():
    crit = criterion()
    e2e = read_jsonl("e2e.jsonl")
    md_path = os.path.join(ROOT, "BENCHMARKS.md")
    with open(md_path) as f:
        text = f.read()
    machine = ""
    mpath = os.path.join(BENCH, "machine.txt")
    if os.path.exists(mpath):
        with open(mpath) as f:
            machine = "```\n" + f.read().strip() + "\n```"
    sections = {
        "machine": machine,
        "codec-decode-v311": codec_table(crit, "decode", CASES_V311, PEERS_V311),
        "codec-encode-v311": codec_table(crit, "encode", CASES_V311, PEERS_V311),
        "codec-decode-v5": codec_table(crit, "decode", CASES_V5, PEERS_V5),
        "codec-encode-v5": codec_table(crit, "encode", CASES_V5, PEERS_V5),
        "codec-counts": counts_tables(),
        "codec-paired": paired_table(),
        "e2e": e2e_tables(e2e),
    }
    for name, body in sections.items():
        if body:
            text = replace_section(text, name, body)
    with open(md_path, "w") as f:
        f.write(text)
    svg_chart(crit, e2e, os.path.join(ROOT, "docs", "bench.svg"))
    print(f"bench_report: wrote {md_path} and docs/bench.svg")


if __name__ == "__main__":
    main()
