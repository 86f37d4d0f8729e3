#!/usr/bin/env bash
# Goldens for interval joins and Window Top-N: golden/join_<q>.sql run by Flink 2.3 over
# golden/join_events.ndjson (1500 trades out of order by less than the 2 s
# watermark delay, so no row is late: Flink's interval join joins late rows
# with what it still holds, Riffle drops them, and the two agree only
# without them). Needs the Flink venv of README.md; about 15 s a query.
#     PY=/work/flink-venv/bin/python bash tests/flink/make_join_golden.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
PY=${PY:-/work/flink-venv/bin/python}
[[ -f "$here/golden/join_events.ndjson" ]] ||
  "$PY" "$here/gen_events.py" --n 1500 --disorder-ms 1900 --seed 3 --out "$here/golden/join_events.ndjson"
for q in join_left join_full join_windowed join_window_full join_window_aggregates join_window_semi \
  join_window_hop join_window_cumulate join_window_anti top_n_aggregate top_n_rows dedup_first; do
  "$PY" "$here/run_flink.py" --events "$here/golden/join_events.ndjson" --query "$here/golden/$q.sql" \
    --delay-seconds 2 --out "$here/golden/$q.ndjson" > /dev/null
  echo "golden/$q.ndjson: $(wc -l < "$here/golden/$q.ndjson") rows"
done
# Temporal joins: trades as of a second stream of trades with a primary key.
[[ -f "$here/golden/rates_events.ndjson" ]] ||
  "$PY" "$here/gen_events.py" --n 400 --step-ms 350 --disorder-ms 1900 --seed 5 --out "$here/golden/rates_events.ndjson"
for q in temporal_left temporal_inner; do
  "$PY" "$here/run_flink.py" --events "$here/golden/join_events.ndjson" \
    --versioned rates="$here/golden/rates_events.ndjson" --query "$here/golden/$q.sql" \
    --delay-seconds 2 --out "$here/golden/$q.ndjson" > /dev/null
  echo "golden/$q.ndjson: $(wc -l < "$here/golden/$q.ndjson") rows"
done
