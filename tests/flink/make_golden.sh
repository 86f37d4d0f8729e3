#!/usr/bin/env bash
# Regenerate the Flink golden files in tests/flink/golden/ (committed, so the Rust tests
# can compare Riffle with Flink without running Flink in CI).
#
# Needs the Flink venv described in tests/flink/README.md (apache-flink 2.3.0, Java 11/17):
#     python3 -m venv /work/flink-venv
#     /work/flink-venv/bin/pip install -r tests/flink/requirements.txt
# Run from anywhere (takes about a minute: one Flink mini-cluster of ~12 s per query):
#     PY=/work/flink-venv/bin/python bash tests/flink/make_golden.sh
#
# Writes:
#   golden/events.ndjson     3000 trades in push order, fixed seed (see gen below)
#   golden/<q>.sql           the Flink query, q = tumble | hop | cumulate | session
#   golden/<q>.ndjson        Flink's result over events.ndjson: one row per line, keys
#                            sorted, compact JSON, lines sorted (byte order), window_start/
#                            window_end as epoch ms (UTC), total = SUM(price) rounded to 2 dp
#   golden/session_probe_events.ndjson, golden/session_probe.ndjson
#                            crafted late-event cases for SESSION (same query, see below)
# Flink setup (run_flink.py): WATERMARK FOR ts AS ts - INTERVAL '2' SECOND,
# pipeline.auto-watermark-interval = 0 (a watermark after every record that raises it),
# table.local-time-zone = UTC, parallelism 1; the bounded input ends with a final
# watermark, so every window still open at the end fires.
# Finally every golden is compared with an independent Python model of Flink's
# late-event rule (check.py for TUMBLE/HOP/CUMULATE, a merging-window model for
# SESSION) and late-event counts are printed; the script fails if they disagree.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
PY=${PY:-/work/flink-venv/bin/python}
golden="$here/golden"
mkdir -p "$golden"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# ---- events -------------------------------------------------------------------------
# Event i: ts = 1700000000000 + 100*i + U[0, 5000) ms (disorder < 5 s vs a 2 s watermark
# delay, so many events are late for some windows), price = U[10.00, 200.00] in cents,
# written with exactly two decimals. Symbols S0..S4: S0 trades all the time, S1..S4 trade
# in bursts (active 3-30 s, quiet 3-20 s of nominal time), so the 10 s SESSION query gets
# real gaps (with uniformly random symbols every symbol would be one 300 s session).
"$PY" - "$golden/events.ndjson" <<'EOF'
import random, sys
rnd = random.Random(20231114)
N, START, STEP, DISORDER = 3000, 1_700_000_000_000, 100, 5000
phases = {}  # symbol -> list of (from, to) nominal-time intervals when it trades
for s in range(1, 5):
    t, on, iv = 0, rnd.random() < 0.5, []
    while t < N * STEP:
        d = rnd.randrange(3000, 30001) if on else rnd.randrange(3000, 20001)
        if on:
            iv.append((t, t + d))
        t, on = t + d, not on
    phases[s] = iv
with open(sys.argv[1], "w") as f:
    for i in range(N):
        t = i * STEP
        active = [0] + [s for s, iv in phases.items() if any(a <= t < b for a, b in iv)]
        sym = rnd.choice(active)
        cents = rnd.randrange(1000, 20001)
        ts = START + t + rnd.randrange(DISORDER)
        f.write('{"symbol":"S%d","price":%d.%02d,"ts":%d}\n' % (sym, cents // 100, cents % 100, ts))
EOF

# ---- session probe events --------------------------------------------------------------
# One symbol per case, cases 10 min apart; times relative to a 10-minute-aligned base.
# Watermark = max ts so far - 2 s; a session [start, last+10 s) fires at watermark >= end-1.
"$PY" - "$golden/session_probe_events.ndjson" <<'EOF'
import json, sys
CASES = [
    # P1: own window [5,15) s already closed (wm 22 s >= 14.999), overlaps open session [0,34)
    ("P1_closed_own_window_merges_open", [0, 8000, 16000, 24000, 5000]),
    # P2: session [0,10) fired (wm 28 s); late 3 s: own window [3,13) closed -> dropped
    ("P2_closed_own_window_fired_session", [0, 30000, 3000]),
    # P3: session [0,10) fired (wm 18 s); 9 s: own window [9,19) still open -> new session
    #     that overlaps the fired one (not merged into it)
    ("P3_open_own_window_after_fire", [0, 20000, 9000]),
    # P4: like P3 but [12,22) touches [20,30) -> merged with the open session
    ("P4_open_own_window_bridges_next", [0, 20000, 12000]),
    # P5: boundary: wm = 19999 - 2000 = 17999 = own end-1 (8 s + 10 s - 1) -> dropped
    ("P5_own_end_minus_1_eq_wm", [0, 19999, 8000]),
    # P6: boundary: wm = 17998 < own end-1 = 17999 -> kept (new session [8,18))
    ("P6_own_end_minus_1_gt_wm", [0, 19998, 8000]),
    # P7: touching windows: 0 and 10 s exactly one gap apart, in order
    ("P7_exact_gap_in_order", [0, 10000]),
    # P8: session [0,10) fired (wm 18 s); 10 s: own window [10,20) open, touches the fired
    #     [0,10) and the open [20,30) -> joins only the open one: [10,30)
    ("P8_touches_fired_and_open", [0, 20000, 10000]),
    # P9: two open sessions [0,10) and [11,21) (wm 9 s); late 5 s: [5,15) bridges them -> [0,21)
    ("P9_bridge_both_open", [0, 11000, 5000]),
]
base0 = 1_700_000_400_000  # multiple of 10 min
with open(sys.argv[1], "w") as f:
    for i, (name, ts) in enumerate(CASES):
        for j, t in enumerate(ts):
            f.write(json.dumps({"symbol": name, "price": float(j + 1), "ts": base0 + i * 600_000 + t},
                               separators=(",", ":")) + "\n")
EOF

# ---- queries ---------------------------------------------------------------------------
AGGS="COUNT(*) AS n, SUM(price) AS total, MIN(price) AS lo, MAX(price) AS hi"
declare -A TVF=(
  [tumble]="TUMBLE(TABLE trades, DESCRIPTOR(ts), INTERVAL '1' MINUTE)"
  [hop]="HOP(TABLE trades, DESCRIPTOR(ts), INTERVAL '10' SECOND, INTERVAL '1' MINUTE)"
  [cumulate]="CUMULATE(TABLE trades, DESCRIPTOR(ts), INTERVAL '15' SECOND, INTERVAL '1' MINUTE)"
  [session]="SESSION(TABLE trades PARTITION BY symbol, DESCRIPTOR(ts), INTERVAL '10' SECOND)"
)

normalize() {  # raw Flink NDJSON -> golden NDJSON
  "$PY" - "$1" "$2" <<'EOF'
import json, sys
rows = []
for line in open(sys.argv[1]):
    r = json.loads(line)
    if "_op" in r:
        sys.exit(f"unexpected non-insert row {r}")
    r["total"] = round(r["total"], 2)
    rows.append(json.dumps(r, sort_keys=True, separators=(",", ":")))
with open(sys.argv[2], "w") as f:
    f.writelines(l + "\n" for l in sorted(rows))
EOF
}

run() {  # run <name> <events file> <golden output>
  local q="$golden/$1.sql"
  printf 'SELECT symbol, window_start, window_end, %s\nFROM TABLE(%s)\nGROUP BY symbol, window_start, window_end\n' \
      "$AGGS" "${TVF[$1]}" > "$q"
  "$PY" "$here/run_flink.py" --events "$2" --query "$q" --delay-seconds 2 \
      --watermark-interval-ms 0 --out "$tmp/raw.ndjson"
  normalize "$tmp/raw.ndjson" "$3"
}

for q in tumble hop cumulate session; do
  run "$q" "$golden/events.ndjson" "$golden/$q.ndjson"
done
run session "$golden/session_probe_events.ndjson" "$golden/session_probe.ndjson"

# Cascading windows (issue 19): 1 min windows over 10 s windows' window_time,
# renamed rowtime in the view as Flink requires. Late events drop out of the
# 10 s windows; the 10 s results are never late for the 1 min windows.
cat > "$golden/cascade.sql" <<'EOF'
CREATE TEMPORARY VIEW per_10s AS
SELECT symbol, window_start AS start_10s, window_end AS end_10s, window_time AS rowtime,
       COUNT(*) AS n, SUM(price) AS total, MIN(price) AS lo, MAX(price) AS hi
FROM TABLE(TUMBLE(TABLE trades, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY symbol, window_start, window_end, window_time;
SELECT symbol, window_start, window_end, SUM(n) AS n, SUM(total) AS total, MIN(lo) AS lo, MAX(hi) AS hi
FROM TABLE(TUMBLE(TABLE per_10s, DESCRIPTOR(rowtime), INTERVAL '1' MINUTE))
GROUP BY symbol, window_start, window_end
EOF
"$PY" "$here/run_flink.py" --events "$golden/events.ndjson" --query "$golden/cascade.sql" \
    --delay-seconds 2 --watermark-interval-ms 0 --out "$tmp/raw.ndjson"
normalize "$tmp/raw.ndjson" "$golden/cascade.ndjson"

# ---- sanity check ----------------------------------------------------------------------
"$PY" - "$here" "$golden" <<'EOF'
import json, math, os, sys
from collections import defaultdict
here, golden = sys.argv[1:]
sys.path.insert(0, here)
from check import windows  # TUMBLE/HOP/CUMULATE window assignment (epoch-aligned)
DELAY, GAP = 2000, 10000


def load(p):
    return [json.loads(l) for l in open(p) if l.strip()]


def sliced(events, spec):
    """check.py's rule: drop e from window w iff watermark before e >= w.end - 1."""
    agg = defaultdict(lambda: [0, 0.0, math.inf, -math.inf])
    some = every = 0
    max_ts = None
    for e in events:
        wm = -math.inf if max_ts is None else max_ts - DELAY
        ws = list(windows(e["ts"], spec))
        dropped = 0
        for s, en in ws:
            if wm >= en - 1:
                dropped += 1
                continue
            a = agg[(e["symbol"], s, en)]
            a[0] += 1; a[1] += e["price"]; a[2] = min(a[2], e["price"]); a[3] = max(a[3], e["price"])
        some += dropped > 0
        every += dropped == len(ws)
        max_ts = e["ts"] if max_ts is None else max(max_ts, e["ts"])
    return agg, {"late for >=1 window": some, "late for all windows": every}


def session(events):
    """Flink's merging windows: the event's window [ts, ts+gap) is merged with every
    not-yet-fired session of its key it intersects (TimeWindow.intersects is inclusive:
    touching windows merge); the result is dropped iff its end - 1 <= watermark.
    Fired sessions are gone, so a later event cannot join them."""
    active = defaultdict(list)  # symbol -> [[start, end, n, sum, lo, hi], ...]
    out = {}
    dropped = separate = 0
    max_ts = None

    def fire(wm):
        for sym, lst in active.items():
            for w in [w for w in lst if w[1] - 1 <= wm]:
                out[(sym, w[0], w[1])] = w[2:]
                lst.remove(w)

    for e in events:
        wm = -math.inf if max_ts is None else max_ts - DELAY
        fire(wm)
        ts, p, lst = e["ts"], e["price"], active[e["symbol"]]
        w = [ts, ts + GAP, 1, p, p, p]
        while True:
            hit = [o for o in lst if w[0] <= o[1] and w[1] >= o[0]]
            if not hit:
                break
            for o in hit:
                lst.remove(o)
                w = [min(w[0], o[0]), max(w[1], o[1]), w[2] + o[2], w[3] + o[3], min(w[4], o[4]), max(w[5], o[5])]
        if w[1] - 1 <= wm:
            dropped += 1
            continue
        if w[2] == 1 and any(s == e["symbol"] and st <= w[1] and en >= w[0] for s, st, en in out):
            separate += 1  # would have merged with a session that already fired
        lst.append(w)
        max_ts = ts if max_ts is None else max(max_ts, ts)
    fire(math.inf)
    return out, {"dropped": dropped, "new session overlapping a fired one": separate}


def compare(name, model, rows):
    got = {(r["symbol"], r["window_start"], r["window_end"]): r for r in rows}
    diffs = 0
    for k in sorted(set(model) | set(got)):
        if k not in got or k not in model:
            diffs += 1
            print(f"  {name}: {'missing in Flink' if k not in got else 'extra in Flink'} {k}")
            continue
        n, s, lo, hi = model[k]
        r = got[k]
        if (r["n"], r["lo"], r["hi"]) != (n, lo, hi) or abs(r["total"] - s) > 0.006:
            diffs += 1
            print(f"  {name} {k}: flink={r} model={(n, s, lo, hi)}")
    return diffs


events = load(os.path.join(golden, "events.ndjson"))
ts = [e["ts"] for e in events]
print(f"events.ndjson: {len(events)} events, ts {min(ts)}..{max(ts)}, "
      f"{sum(t < m for t, m in zip(ts[1:], __import__('itertools').accumulate(ts, max)))} out of order")
bad = 0
for name, spec in [("tumble", ("tumble", 60000)), ("hop", ("hop", 10000, 60000)),
                   ("cumulate", ("cumulate", 15000, 60000))]:
    model, late = sliced(events, spec)
    rows = load(os.path.join(golden, name + ".ndjson"))
    d = compare(name, model, rows)
    bad += d
    print(f"{name:9} {len(rows):4} rows, {sum(r['n'] for r in rows):5} (event, window) counts; "
          f"late events: {late}; {d} differences vs model")
for name, ev in [("session", events), ("session_probe", load(os.path.join(golden, "session_probe_events.ndjson")))]:
    model, late = session(ev)
    rows = load(os.path.join(golden, name + ".ndjson"))
    d = compare(name, model, rows)
    bad += d
    print(f"{name:9} {len(rows):4} rows, {sum(r['n'] for r in rows):5} events counted of {len(ev)}; "
          f"late events: {late}; {d} differences vs model")
sys.exit(1 if bad else 0)
EOF
echo "goldens written to $golden"
