#!/usr/bin/env python3
"""Probe Flink's late-event rule for window TVF aggregations (watermark ts - 2 s).

Each case is a few events for its own symbol, 10 minutes apart from the other cases;
"late" is the probe event, sent after "max". With W = max - 2000 (per-record
watermark), Flink's rule "drop from window w iff W >= w.end - 1" predicts the
'expect' column; an extra -1 ms in the watermark would flip case A.
    PY=/work/flink-venv/bin/python; $PY tests/flink/late_rule.py [--watermark-interval-ms 0] [--conf K=V]
"""
import json, os, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = [  # name, max ts, late ts (all relative to a base aligned to 10 min), expected in [0,60s)
    ("A_late_eq_max-2s_W=end-1", 61999, 59999, "dropped"),
    ("B_late_eq_max-2s_W=end-2", 61998, 59998, "kept"),
    ("C_early_ts_W=end-1",       61999, 30000, "dropped"),
    ("D_ts<W_but_window_open",   61000, 58000, "kept"),
]
QUERY = """SELECT symbol, window_start, window_end, COUNT(*) AS n FROM TABLE({tvf})
GROUP BY symbol, window_start, window_end"""
TVFS = {"tumble": "TUMBLE(TABLE trades, DESCRIPTOR(ts), INTERVAL '1' MINUTE)",
        "hop": "HOP(TABLE trades, DESCRIPTOR(ts), INTERVAL '10' SECOND, INTERVAL '1' MINUTE)"}


def main():
    with tempfile.TemporaryDirectory(prefix="late-rule-") as tmp:
        run(tmp)


def run(tmp):
    ev = os.path.join(tmp, "events.ndjson")
    with open(ev, "w") as f:
        for i, (name, mx, late, _) in enumerate(CASES):
            base = 1_700_000_400_000 + i * 600_000  # multiple of 10 min
            for t in (1000, mx, late):
                f.write(json.dumps({"symbol": name, "price": 1.0, "ts": base + t}) + "\n")
    for kind, tvf in TVFS.items():
        q, out = os.path.join(tmp, kind + ".sql"), os.path.join(tmp, kind + ".ndjson")
        open(q, "w").write(QUERY.format(tvf=tvf))
        subprocess.run([sys.executable, os.path.join(HERE, "run_flink.py"), "--events", ev,
                        "--query", q, "--out", out, "--delay-seconds", "2", *sys.argv[1:]],
                       check=True, stderr=subprocess.DEVNULL)
        rows = [json.loads(l) for l in open(out)]
        print(f"== {kind} ({' '.join(sys.argv[1:]) or 'defaults'})")
        for i, (name, mx, late, expect) in enumerate(CASES):
            base = 1_700_000_400_000 + i * 600_000
            # windows containing the late event, and whether it was counted there
            per = {(r["window_start"] - base, r["window_end"] - base): r["n"]
                   for r in rows if r["symbol"] == name}
            size, slide = 60000, (60000 if kind == "tumble" else 10000)
            cells = []
            s = late - late % slide
            for s in range(s - size + slide, s + 1, slide):  # every window holding "late"
                e = s + size
                expected_n = (s <= 1000 < e) + (s <= mx < e)
                n = per.get((s, e), 0)
                cells.append(f"[{s//1000},{e//1000})s:{'kept' if n > expected_n else 'dropped'}")
            print(f"{name:28} expect [0,60)s {expect:8} got: {' '.join(cells)}")


if __name__ == "__main__":
    main()
