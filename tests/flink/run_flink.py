#!/usr/bin/env python3
"""Run one Flink SQL query over an NDJSON file of trades; write the result as NDJSON.

Usage:
    python3 tests/flink/run_flink.py --events events.ndjson --query query.sql \
        [--delay-seconds 2] [--watermark-interval-ms 0] [--conf KEY=VALUE]... [--explain] \
        --out result.ndjson

Input (one JSON object per line, read in file order):
    {"symbol": "S1", "price": 12.5, "ts": 1700000000123}
"ts" is epoch milliseconds (UTC). A string "2023-11-14 22:13:20.123" (taken as UTC)
is accepted too. The script rewrites the events to a temp file with ts as a SQL
timestamp string, so Flink sees exactly

    CREATE TABLE trades (symbol STRING, price DOUBLE, ts TIMESTAMP(3),
                         WATERMARK FOR ts AS ts - INTERVAL '<delay>' SECOND)

(filesystem connector, json format) and `ts` is a rowtime attribute usable by
TUMBLE/HOP/CUMULATE TVFs. TIMESTAMP(3) has no zone; every value is UTC, and
table.local-time-zone is set to UTC as well.

Determinism: streaming mode, parallelism 1, one file (read in order, one reader),
and pipeline.auto-watermark-interval = 0 by default. With interval 0 Flink's
WatermarkAssigner emits a watermark right after each record that raises it (no
periodic timer), so late-event dropping does not depend on wall-clock timing.
The file is bounded: at its end Flink emits a final Long.MAX_VALUE watermark, all
windows fire, and the job finishes.

Output: one JSON object per result row, keys = the query's column names,
TIMESTAMP/TIMESTAMP_LTZ values as epoch ms (UTC), numbers as numbers. Rows that
are not inserts (updates/retractions) get an extra "_op" key ("-U", "+U", "-D").
Unnamed expressions get Flink's names, e.g. SUM(price) -> "EXPR$4": use AS aliases.
TIMESTAMP_LTZ result columns are cast to TIMESTAMP(3) in the session time zone
(PyFlink's collect() cannot return them), so keep table.local-time-zone = UTC.
"""
import argparse
import datetime as dt
import decimal
import json
import os
import shutil
import sys
import tempfile

UTC = dt.timezone.utc


def ts_to_sql(v):
    """epoch ms (int/float) or 'YYYY-MM-DD HH:MM:SS[.fff]' -> 'YYYY-MM-DD HH:MM:SS.fff' (UTC)."""
    if isinstance(v, str):
        return v
    d = dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=int(v))
    return d.strftime("%Y-%m-%d %H:%M:%S.") + "%03d" % (d.microsecond // 1000)


def to_json_value(v):
    if isinstance(v, dt.datetime):  # TIMESTAMP -> naive (UTC); TIMESTAMP_LTZ -> maybe aware
        if v.tzinfo is None:
            v = v.replace(tzinfo=UTC)
        return int(round(v.timestamp() * 1000))
    if isinstance(v, decimal.Decimal):
        return float(v)
    if isinstance(v, (dt.date, dt.time)):
        return v.isoformat()
    return v


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", required=True)
    ap.add_argument("--query", required=True,
                    help="file with one Flink SQL SELECT, after any CREATE TEMPORARY VIEW statements (;-separated)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--delay-seconds", type=float, default=2.0)
    ap.add_argument("--watermark-interval-ms", type=int, default=0,
                    help="pipeline.auto-watermark-interval; 0 = per-record (default)")
    ap.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE",
                    help="extra Flink/table option, repeatable")
    ap.add_argument("--explain", action="store_true", help="print the plan to stderr")
    ap.add_argument("--versioned", action="append", default=[], metavar="NAME=FILE",
                    help="also a table NAME over FILE (trades' columns), PRIMARY KEY (symbol): "
                         "a versioned table for temporal joins; repeatable")
    a = ap.parse_args()

    from pyflink.table import EnvironmentSettings, TableEnvironment
    from pyflink.common import RowKind
    from pyflink.table.types import LocalZonedTimestampType

    tmp = tempfile.mkdtemp(prefix="riffle-flink-")
    def rewrite(source, target):
        with open(source) as f, open(target, "w") as g:
            for line in f:
                if line.strip():
                    e = json.loads(line)
                    g.write(json.dumps({"symbol": e["symbol"], "price": e["price"],
                                        "ts": ts_to_sql(e["ts"])}) + "\n")

    data = os.path.join(tmp, "events.json")
    rewrite(a.events, data)

    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    conf = t_env.get_config()
    for k, v in {
        "parallelism.default": "1",
        "table.exec.resource.default-parallelism": "1",
        "table.local-time-zone": "UTC",
        "pipeline.auto-watermark-interval": f"{a.watermark_interval_ms} ms",
    }.items():
        conf.set(k, v)
    for kv in a.conf:
        conf.set(*kv.split("=", 1))

    delay = f"{a.delay_seconds:.3f}".rstrip("0").rstrip(".")
    t_env.execute_sql(f"""
        CREATE TABLE trades (
            symbol STRING, price DOUBLE, ts TIMESTAMP(3),
            WATERMARK FOR ts AS ts - INTERVAL '{delay}' SECOND
        ) WITH (
            'connector' = 'filesystem', 'path' = '{data}', 'format' = 'json',
            'json.timestamp-format.standard' = 'SQL',
            'json.fail-on-missing-field' = 'true'
        )""")

    for spec in a.versioned:
        name, source = spec.split("=", 1)
        target = os.path.join(tmp, f"{name}.json")
        rewrite(source, target)
        t_env.execute_sql(f"""
            CREATE TABLE {name} (
                symbol STRING, price DOUBLE, ts TIMESTAMP(3),
                PRIMARY KEY (symbol) NOT ENFORCED,
                WATERMARK FOR ts AS ts - INTERVAL '{delay}' SECOND
            ) WITH (
                'connector' = 'filesystem', 'path' = '{target}', 'format' = 'json',
                'json.timestamp-format.standard' = 'SQL',
                'json.fail-on-missing-field' = 'true'
            )""")

    # Statements before the last (CREATE TEMPORARY VIEW ...) run first; the
    # last is the SELECT whose rows are written.
    statements = [q.strip() for q in open(a.query).read().split(";") if q.strip()]
    for statement in statements[:-1]:
        t_env.execute_sql(statement)
    query = statements[-1]
    if a.explain:
        print(t_env.explain_sql(query), file=sys.stderr)
    # PyFlink's collect() cannot pickle TIMESTAMP_LTZ values (java.time.Instant), so
    # such columns are cast to TIMESTAMP(3), i.e. UTC wall-clock time in this session.
    t_env.create_temporary_view("riffle_query", t_env.sql_query(query))
    schema = t_env.from_path("riffle_query").get_resolved_schema()
    names = schema.get_column_names()
    cols = [f"CAST(`{n}` AS TIMESTAMP(3)) AS `{n}`" if isinstance(t, LocalZonedTimestampType)
            else f"`{n}`" for n, t in zip(names, schema.get_column_data_types())]
    result = t_env.execute_sql(f"SELECT {', '.join(cols)} FROM riffle_query")
    n = 0
    with result.collect() as rows, open(a.out, "w") as out:
        for row in rows:
            rec = {k: to_json_value(v) for k, v in zip(names, row)}
            kind = row.get_row_kind()
            if kind != RowKind.INSERT:
                rec["_op"] = kind.short_string() if hasattr(kind, "short_string") else str(kind)
            out.write(json.dumps(rec) + "\n")
            n += 1
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"wrote {n} rows to {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
