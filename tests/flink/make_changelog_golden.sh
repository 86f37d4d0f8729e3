#!/usr/bin/env bash
# Goldens for aggregates over changelogs (an aggregate over GROUP BY without a
# window): golden/<q>.sql run by Flink over the first K golden events, for several
# K; Flink's changelog applied (materialise.py, which checks every retraction)
# gives the table after K events. Written to golden/<q>.ndjson, one row per line
# with "prefix": K. Needs the Flink venv of README.md; about 15 s per run.
#     PY=/work/flink-venv/bin/python bash tests/flink/make_changelog_golden.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
PY=${PY:-/work/flink-venv/bin/python}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for q in changelog changelog_global; do
  keys=1; [[ $q == changelog_global ]] && keys=0
  : > "$tmp/$q.ndjson"
  for k in 1 7 60 333 1500 3000; do
    head -"$k" "$here/golden/events.ndjson" > "$tmp/prefix.ndjson"
    "$PY" "$here/run_flink.py" --events "$tmp/prefix.ndjson" --query "$here/golden/$q.sql" \
      --delay-seconds 2 --out "$tmp/changes.ndjson" > /dev/null
    "$PY" "$here/materialise.py" "$tmp/changes.ndjson" "$keys" | sed "s/^{/{\"prefix\":$k,/" >> "$tmp/$q.ndjson"
  done
  cp "$tmp/$q.ndjson" "$here/golden/$q.ndjson"
  echo "golden/$q.ndjson: $(wc -l < "$here/golden/$q.ndjson") rows"
done
