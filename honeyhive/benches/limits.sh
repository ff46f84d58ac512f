#!/usr/bin/env bash
# The Logger against servers that limit the request rate, in the shapes
# APIs use: each admits RATE requests/s and answers 429 with
# `Retry-After: 1` beyond. EVENTS events are logged at once into a new
# logger (no warm-up: `e2e --cold`), default settings, then
# `shutdown(60 s)`; printed per shape and answer latency:
# events/s delivered, failed, and the share of requests answered 429.
#
#   honeyhive/benches/limits.sh
#
# Target (BENCHMARKS.md): >= 0.8 of RATE delivered, 0 failed, 429s <= 10%
# of requests, whatever the shape. The sink stops itself; every server this
# starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."

PORT=${PORT:-18094}
RATE=${RATE:-2000}
EVENTS=${EVENTS:-20000}
SHAPES=${SHAPES:-"fixed sliding bucket bucket-1s"}
DELAYS=${DELAYS:-"0 50"}

bin=$(honeyhive/benches/logger-bin.sh)
work=$(mktemp -d)
sink_pid=""
cleanup() { [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

for delay in $DELAYS; do
  for shape in $SHAPES; do
    "$bin" sink --port "$PORT" --seconds 300 --delay-ms "$delay" --rate "$RATE" --limiter "$shape" > "$work/sink.txt" 2>/dev/null &
    sink_pid=$!
    for _ in $(seq 1 100); do
      (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break
      sleep 0.05
    done
    line=$("$bin" e2e --url "http://127.0.0.1:$PORT" --events "$EVENTS" --in-flight 0 --shutdown-secs 60 --cold 2>/dev/null | grep '^e2e')
    sleep 2.5 # the sink prints its counts after a quiet second (ticks of 1 s)
    kill "$sink_pid"; wait "$sink_pid" 2>/dev/null || true; sink_pid=""
    rate=$(sed -E 's/.* ([0-9]+) events\/s.*/\1/' <<<"$line")
    failed=$(sed -E 's/.*failed ([0-9]+),.*/\1/' <<<"$line")
    # The warm-up's requests are in the sink's counts too (a few dozen).
    counts=$(tail -n 1 "$work/sink.txt")
    ok=$(sed -E 's/.*answered 200 ([0-9]+), 429 ([0-9]+).*/\1/' <<<"$counts")
    limited=$(sed -E 's/.*answered 200 ([0-9]+), 429 ([0-9]+).*/\2/' <<<"$counts")
    share=$(python3 -c "print(f'{100*$limited/($ok+$limited):.1f}')")
    ratio=$(python3 -c "print(f'{$rate/$RATE:.2f}')")
    printf '%-10s %3s ms: %6s events/s (%s of %s), failed %s, 429s %s%% of %s requests\n' \
      "$shape" "$delay" "$rate" "$ratio" "$RATE" "$failed" "$share" "$((ok + limited))"
  done
done
