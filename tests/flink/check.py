#!/usr/bin/env python3
"""Compute window aggregates in plain Python and compare them with a Flink result.

    python3 tests/flink/check.py --events E.ndjson --window hop:10000:60000 \
        --delay-seconds 2 --flink result.ndjson

--window: tumble:SIZE | hop:SLIDE:SIZE | cumulate:STEP:SIZE (ms, epoch-aligned, UTC).
Per (symbol, window_start, window_end) it computes n, sum, min, max (and avg) and
matches them to the Flink columns n, sum_price, min_price, max_price, avg_price.

Late events are modelled with the rule observed in Flink (per-record watermarks,
i.e. run_flink.py's default --watermark-interval-ms 0): the watermark seen by an
event is (max ts of the events before it) - delay; the event is left out of a
window iff that watermark >= window_end - 1. --no-late-drop turns that off.
Exit code 0 iff everything matches.
"""
import argparse, json, math, sys
from collections import defaultdict


def windows(ts, spec):
    kind, *p = spec
    if kind == "tumble":
        (size,) = p
        s = ts - ts % size
        yield s, s + size
    elif kind == "hop":
        slide, size = p
        s = ts - ts % slide
        while s > ts - size:
            yield s, s + size
            s -= slide
    elif kind == "cumulate":
        step, size = p
        s = ts - ts % size
        e = ts - ts % step + step
        while e <= s + size:
            yield s, e
            e += step
    else:
        raise SystemExit(f"unknown window kind {kind}")


def reference(events, spec, delay_ms, late_drop=True):
    agg = defaultdict(lambda: [0, 0.0, math.inf, -math.inf])
    max_ts, dropped = None, 0
    for e in events:
        wm = None if max_ts is None else max_ts - delay_ms
        for ws, we in windows(e["ts"], spec):
            if late_drop and wm is not None and wm >= we - 1:
                dropped += 1
                continue
            a = agg[(e["symbol"], ws, we)]
            a[0] += 1; a[1] += e["price"]; a[2] = min(a[2], e["price"]); a[3] = max(a[3], e["price"])
        max_ts = e["ts"] if max_ts is None else max(max_ts, e["ts"])
    return agg, dropped


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", required=True)
    ap.add_argument("--window", required=True)
    ap.add_argument("--flink", required=True)
    ap.add_argument("--delay-seconds", type=float, default=2.0)
    ap.add_argument("--no-late-drop", action="store_true")
    ap.add_argument("--rel-tol", type=float, default=1e-9)
    a = ap.parse_args()
    kind, *nums = a.window.split(":")
    spec = (kind, *map(int, nums))
    events = [json.loads(l) for l in open(a.events) if l.strip()]
    ref, dropped = reference(events, spec, round(a.delay_seconds * 1000), not a.no_late_drop)
    got = {}
    for l in open(a.flink):
        r = json.loads(l)
        k = (r["symbol"], r["window_start"], r["window_end"])
        if k in got:
            print("duplicate Flink row", k)
        got[k] = r
    diffs = 0
    for k in sorted(set(ref) | set(got)):
        if k not in got:
            diffs += 1; print("missing in Flink:", k, ref[k]); continue
        if k not in ref:
            diffs += 1; print("extra in Flink:", k, got[k]); continue
        n, s, mn, mx = ref[k]
        r = got[k]
        exp = {"n": n, "sum_price": s, "min_price": mn, "max_price": mx, "avg_price": s / n}
        for col, v in exp.items():
            if col in r and not math.isclose(r[col], v, rel_tol=a.rel_tol):
                diffs += 1; print(f"{k} {col}: flink={r[col]!r} python={v!r}")
    print(f"{a.window}: {len(ref)} python windows, {len(got)} flink rows, "
          f"{dropped} late (event, window) pairs dropped by the model, {diffs} differences")
    sys.exit(1 if diffs else 0)


if __name__ == "__main__":
    main()
