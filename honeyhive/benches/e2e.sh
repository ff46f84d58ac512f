#!/usr/bin/env bash
# End-to-end rates of honeyhive::Logger next to a reference load generator
# (wrk), both against the same sink process on 127.0.0.1, in one run.
#
#   honeyhive/benches/e2e.sh            # needs wrk (Debian: apt-get install wrk)
#
# 1. Throughput: wrk posts the exact body the client sends (same headers) for
#    DURATION seconds over IN_FLIGHT connections; then the Logger sends EVENTS
#    events with IN_FLIGHT requests in flight. Target: Logger >= 80% of wrk.
#    Between them, the same pre-built request posted EVENTS times straight
#    through hyper and through reqwest (`logger floor`): what the HTTP stack
#    allows before the logger adds anything.
# 2. Latency-bound: the sink answers after 50 ms; the Logger sends
#    LATENCY_EVENTS events with LATENCY_IN_FLIGHT in flight. The bound is
#    in-flight / 50 ms. Target: >= 90% of the bound.
# Every server this starts is stopped on exit; the sink also stops itself.
set -euo pipefail
cd "$(dirname "$0")/../.."

PORT=${PORT:-18080}
IN_FLIGHT=${IN_FLIGHT:-8}
EVENTS=${EVENTS:-200000}
DURATION=${DURATION:-10}
LATENCY_IN_FLIGHT=${LATENCY_IN_FLIGHT:-64}
LATENCY_EVENTS=${LATENCY_EVENTS:-12800}

command -v wrk >/dev/null || { echo "e2e.sh needs wrk (apt-get install wrk)" >&2; exit 1; }
bin=$(honeyhive/benches/logger-bin.sh)

work=$(mktemp -d)
sink_pid=""
cleanup() { [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

"$bin" body > "$work/body.json"
cat > "$work/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
wrk.headers["Authorization"] = "Bearer bench-key"
local f = io.open("$work/body.json", "rb")
wrk.body = f:read("*a")
f:close()
LUA

start_sink() {
  "$bin" sink --port "$PORT" --seconds 600 "$@" &
  sink_pid=$!
  for _ in $(seq 1 100); do
    (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "sink did not start" >&2; exit 1
}
stop_sink() { kill "$sink_pid"; wait "$sink_pid" 2>/dev/null || true; sink_pid=""; }

echo "== throughput: sink answers at once; $IN_FLIGHT in flight; body $(wc -c < "$work/body.json") bytes"
start_sink
wrk -t1 -c"$IN_FLIGHT" -d"${DURATION}s" -s "$work/post.lua" "http://127.0.0.1:$PORT/session/bench/event" | tee "$work/wrk.txt"
for client in hyper reqwest; do
  "$bin" floor --client "$client" --url "http://127.0.0.1:$PORT" --events "$EVENTS" --in-flight "$IN_FLIGHT" | tee "$work/floor-$client.txt"
done
"$bin" e2e --url "http://127.0.0.1:$PORT" --events "$EVENTS" --in-flight "$IN_FLIGHT" | tee "$work/logger.txt"
stop_sink
python3 - "$work" <<'PY'
import re, sys
def rate(name, pattern):
    return float(re.search(pattern, open(f"{sys.argv[1]}/{name}").read()).group(1))
wrk = rate("wrk.txt", r"Requests/sec:\s+([\d.]+)")
hyper = rate("floor-hyper.txt", r"([\d.]+) requests/s")
reqwest = rate("floor-reqwest.txt", r"([\d.]+) requests/s")
logger = rate("logger.txt", r"([\d.]+) events/s")
for name, value in [("hyper, pre-built body", hyper), ("reqwest, pre-built body", reqwest)]:
    print(f"RESULT floor: {name} {value:.0f} requests/s: {100 * value / wrk:.0f}% of wrk")
print(f"RESULT throughput: logger {logger:.0f} events/s, wrk {wrk:.0f} requests/s: {100 * logger / wrk:.0f}% of the reference (target >= 80%); {100 * logger / reqwest:.0f}% of its own transport's floor")
PY

echo "== latency-bound: sink answers after 50 ms; $LATENCY_IN_FLIGHT in flight"
start_sink --delay-ms 50
"$bin" e2e --url "http://127.0.0.1:$PORT" --events "$LATENCY_EVENTS" --in-flight "$LATENCY_IN_FLIGHT" | tee "$work/latency.txt"
stop_sink
python3 - "$work/latency.txt" "$LATENCY_IN_FLIGHT" <<'PY'
import re, sys
rate = float(re.search(r"([\d.]+) events/s", open(sys.argv[1]).read()).group(1))
bound = int(sys.argv[2]) / 0.050
print(f"RESULT latency-bound: {rate:.0f} events/s of a bound of {bound:.0f} (in-flight / 50 ms): {100 * rate / bound:.0f}% (target >= 90%)")
PY
