#!/usr/bin/env bash
# The Logger with batches (Route::EventBatch, POST /v1/events/batch) next to
# the per-event Logger and to what a user would write instead, in one run.
#
#   honeyhive/benches/batches.sh     # ROUNDS=5 EVENTS=200000 PER_EVENT=50000 IN_FLIGHTS="8 64" BATCH=100 DELAYED=1000000
#
# 1. One sink process (`logger sink`, 0 ms answers). Interleaved ROUNDS
#    times per in-flight limit: `logger e2e` per event (PER_EVENT events:
#    it is the slow one), `logger e2e --batch BATCH`, then `logger loop
#    --batch BATCH` (tasks posting the same events in batches of BATCH with
#    reqwest and serde_json, same in-flight limit, same runtime). Prints
#    the medians, batched/per-event and batched/loop.
#    Targets: batched >= 5x per-event; batched >= 1.0x the loop.
# 2. A sink answering after 50 ms over h2c; `logger e2e --batch BATCH
#    --in-flight 0 --h2c` (default settings but batches) sends DELAYED
#    events. Prints events/s and the connections the sink saw.
#    Target: >= 100 000 events/s over <= 8 connections.
# Every server this starts is stopped on exit; the sinks also stop
# themselves after 10 minutes.
set -euo pipefail
cd "$(dirname "$0")/../.."

PORT=${PORT:-18096}
ROUNDS=${ROUNDS:-5}
EVENTS=${EVENTS:-200000}
PER_EVENT=${PER_EVENT:-50000}
IN_FLIGHTS=${IN_FLIGHTS:-"8 64"}
BATCH=${BATCH:-100}
DELAYED=${DELAYED:-1000000}

bin=$(honeyhive/benches/logger-bin.sh)
work=$(mktemp -d)
sink_pid=""
cleanup() { [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

start_sink() { # sink arguments...
  "$bin" sink --port "$PORT" --seconds 600 "$@" > "$work/sink.txt" 2>/dev/null &
  sink_pid=$!
  for _ in $(seq 1 100); do
    (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break
    sleep 0.05
  done
}
stop_sink() { kill "$sink_pid"; wait "$sink_pid" 2>/dev/null || true; sink_pid=""; }

url="http://127.0.0.1:$PORT"
start_sink
for in_flight in $IN_FLIGHTS; do
  for round in $(seq 1 "$ROUNDS"); do
    "$bin" e2e --url "$url" --events "$PER_EVENT" --in-flight "$in_flight" | tee -a "$work/event-$in_flight.txt"
    "$bin" e2e --url "$url" --events "$EVENTS" --in-flight "$in_flight" --batch "$BATCH" | tee -a "$work/batch-$in_flight.txt"
    "$bin" loop --url "$url" --events "$EVENTS" --in-flight "$in_flight" --batch "$BATCH" | tee -a "$work/loop-$in_flight.txt"
  done
done
stop_sink

python3 - "$work" $IN_FLIGHTS <<'PY'
import re, statistics, sys
work, flights = sys.argv[1], sys.argv[2:]
for f in flights:
    grab = lambda name: [float(x) for x in re.findall(r"([\d.]+) events/s", open(f"{work}/{name}-{f}.txt").read())]
    event, batch, loop = grab("event"), grab("batch"), grab("loop")
    me, mb, ml = statistics.median(event), statistics.median(batch), statistics.median(loop)
    print(f"RESULT in-flight {f}: events/s per-event {[round(x) for x in event]} median {me:.0f}; "
          f"batched {[round(x) for x in batch]} median {mb:.0f}; loop {[round(x) for x in loop]} median {ml:.0f}; "
          f"batched/per-event = {mb / me:.1f}; batched/loop = {mb / ml:.2f}")
PY

start_sink --delay-ms 50 --h2c
line=$("$bin" e2e --url "$url" --events "$DELAYED" --in-flight 0 --h2c --batch "$BATCH" | grep '^e2e')
sleep 2.5 # the sink prints its counts after a quiet second
stop_sink
echo "$line"
connections=$(grep -o 'connections opened [0-9]*' "$work/sink.txt" | awk '{s += $3} END {print s}')
rate=$(sed -E 's/.* ([0-9]+) events\/s.*/\1/' <<<"$line")
echo "RESULT 50 ms answers, h2c, default settings with batches of $BATCH: $rate events/s over $connections connections (warm-up included)"
