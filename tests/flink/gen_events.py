#!/usr/bin/env python3
"""Write random trades as NDJSON: {"symbol","price","ts"} with ts in epoch ms (UTC).

Event i has ts = start + i*step - U[0, disorder) (so disorder < --disorder-ms), in file order.
    python3 tests/flink/gen_events.py --n 5000 --out /tmp/events.ndjson
"""
import argparse, json, random

ap = argparse.ArgumentParser()
ap.add_argument("--n", type=int, default=5000)
ap.add_argument("--symbols", type=int, default=5)
ap.add_argument("--start-ms", type=int, default=1700000000123)  # 2023-11-14 22:13:20.123 UTC
ap.add_argument("--step-ms", type=int, default=100)
ap.add_argument("--disorder-ms", type=int, default=1500)
ap.add_argument("--seed", type=int, default=1)
ap.add_argument("--out", required=True)
a = ap.parse_args()
rnd = random.Random(a.seed)
with open(a.out, "w") as f:
    for i in range(a.n):
        ts = a.start_ms + i * a.step_ms - (rnd.randrange(a.disorder_ms) if a.disorder_ms else 0)
        f.write(json.dumps({"symbol": f"S{rnd.randrange(a.symbols) + 1}",
                            "price": round(rnd.uniform(10, 200), 2), "ts": ts}) + "\n")
