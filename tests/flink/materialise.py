#!/usr/bin/env python3
"""Applies a Flink changelog (run_flink.py output) to a table keyed by its first
`keys` columns, checking that every -U / -D retracts a row that is there, and
prints the final rows (keys sorted, floats to 2 dp), sorted.

Usage: materialise.py changelog.ndjson keys
"""
import json
import sys

path, keys = sys.argv[1], int(sys.argv[2])
table = {}
for line in open(path):
    row = json.loads(line)
    op = row.pop("_op", "+I")
    cols = list(row.keys())
    key = tuple(row[c] for c in cols[:keys])
    if op in ("+I", "+U"):
        assert key not in table, (op, row)
        table[key] = row
    else:
        assert table.pop(key) == row, (op, row)
for row in sorted(table.values(), key=lambda r: json.dumps(r, sort_keys=True)):
    print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}, sort_keys=True, separators=(",", ":")))
