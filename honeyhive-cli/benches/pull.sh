#!/usr/bin/env bash
# `honeyhive events search` and `honeyhive datasets pull` of many records
# next to a hand-written loop of raw calls paging the same loopback server,
# in one run, interleaved; peak RSS of each from /usr/bin/time.
#
#   honeyhive-cli/benches/pull.sh          # SIZES="10000 100000" ROUNDS=3
#
# The server (`pages serve`, honeyhive-cli/benches/pages.rs) makes records
# from their index, so it costs little at any size. Output goes to
# /dev/null after being written as JSON lines by each side. Every server
# this starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."

PORT=${PORT:-18097}
SIZES=${SIZES:-"10000 100000"}
ROUNDS=${ROUNDS:-3}

cargo build -q --release -p honeyhive-cli --bin honeyhive
cli=${CARGO_TARGET_DIR:-target}/release/honeyhive
pages=$(cargo bench -q -p honeyhive-cli --bench pages --no-run --message-format=json \
  | python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "pages" and m.get("executable"):
        print(m["executable"])')

server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

export HH_API_KEY=bench-key HH_API_URL="http://127.0.0.1:$PORT"
measure() { # label records command...
  local label=$1 n=$2; shift 2
  local times
  times=$(mktemp)
  /usr/bin/time -o "$times" -f "%e %M" "$@" > /dev/null 2>/dev/null
  read -r seconds kb < "$times"
  rm -f "$times"
  python3 -c "import sys; n, s, kb = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]); print(f'%-22s %7d records  %6.2f s  %9.0f records/s  peak RSS %5.1f MB' % (sys.argv[4], n, s, n / s, kb / 1024))" "$n" "$seconds" "$kb" "$label"
}

for n in $SIZES; do
  "$pages" serve --port "$PORT" --records "$n" &
  server_pid=$!
  for _ in $(seq 1 100); do
    (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break
    sleep 0.05
  done
  for round in $(seq 1 "$ROUNDS"); do
    measure "round $round raw search" "$n" "$pages" loop --url "$HH_API_URL" --records "$n"
    measure "round $round events search" "$n" "$cli" events search -q
    measure "round $round raw pull" "$n" "$pages" pull-loop --url "$HH_API_URL" --records "$n"
    measure "round $round datasets pull" "$n" "$cli" datasets pull -q bench-dataset
  done
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""
done
