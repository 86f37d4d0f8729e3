#!/usr/bin/env bash
# Step-3 check: random events -> Flink TUMBLE/HOP/CUMULATE -> compare with check.py.
# Usage: PY=/work/flink-venv/bin/python bash tests/flink/verify.sh [workdir] [extra gen_events args]
# WM_INTERVAL_MS=200 runs Flink with periodic watermarks (check.py's late model assumes 0).
set -u
here=$(cd "$(dirname "$0")" && pwd)
PY=${PY:-python3}
dir=${1:-/tmp/riffle-flink-verify}; shift || true
mkdir -p "$dir"
"$PY" "$here/gen_events.py" --out "$dir/events.ndjson" "$@"
rc=0
for w in tumble:60000 hop:10000:60000 cumulate:15000:60000; do
  q=${w%%:*}
  "$PY" "$here/run_flink.py" --events "$dir/events.ndjson" --query "$here/queries/$q.sql" \
      --delay-seconds 2 --watermark-interval-ms "${WM_INTERVAL_MS:-0}" --out "$dir/$q.ndjson" || { rc=1; continue; }
  "$PY" "$here/check.py" --events "$dir/events.ndjson" --window "$w" --delay-seconds 2 \
      --flink "$dir/$q.ndjson" || rc=1
done
exit $rc
