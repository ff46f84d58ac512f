#!/usr/bin/env bash
# The Logger next to what a user would write instead (a hand-written
# reqwest + serde_json loop, `logger loop`), same sink process, same events,
# same in-flight limit, same runtime, interleaved: loop, logger, loop,
# logger, ... ROUNDS times per in-flight limit. Prints each run and the
# medians with their ratio.
#
#   honeyhive/benches/pair.sh            # ROUNDS=3 EVENTS=100000 IN_FLIGHTS="8 64" QUEUE=0 PORT=18080
#   BASELINE_REV=a51a7a3 honeyhive/benches/pair.sh
#
# BASELINE_REV: also run that commit's `logger e2e` in every round, right
# after this one's (built once in a worktree under target/baseline-REV, its
# own target dir), and print this Logger's median over the baseline's: the
# no-regression check against an earlier Logger, side by side in one run.
#
# The sink is `logger sink` on 127.0.0.1 (its own process, one thread); it
# is stopped on exit and stops itself after 10 minutes anyway.
set -euo pipefail
cd "$(dirname "$0")/../.."

PORT=${PORT:-18080}
ROUNDS=${ROUNDS:-3}
EVENTS=${EVENTS:-100000}
IN_FLIGHTS=${IN_FLIGHTS:-"8 64"}
SINK_ARGS=${SINK_ARGS:-}
# QUEUE > 0: the Logger's queue holds that many events and is filled with
# log_wait (0, the default: all events logged at once into a queue that
# holds them all).
QUEUE=${QUEUE:-0}

bin=$(honeyhive/benches/logger-bin.sh)
baseline=""
if [ -n "${BASELINE_REV:-}" ]; then
  tree="$PWD/target/baseline-$BASELINE_REV"
  [ -d "$tree/src" ] || git worktree add --force --detach "$tree/src" "$BASELINE_REV" >&2
  baseline=$(CARGO_TARGET_DIR="$tree/target" "$tree/src/honeyhive/benches/logger-bin.sh" 2>/dev/null || true)
  # Before logger-bin.sh existed: the bench binary by name.
  [ -n "$baseline" ] || baseline=$(cd "$tree/src" && CARGO_TARGET_DIR="$tree/target" cargo bench -q -p honeyhive --bench logger --no-run --message-format=json \
    | python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "logger" and m.get("executable"):
        print(m["executable"])')
fi

work=$(mktemp -d)
sink_pid=""
cleanup() { [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# shellcheck disable=SC2086
"$bin" sink --port "$PORT" --seconds 600 $SINK_ARGS &
sink_pid=$!
for _ in $(seq 1 100); do
  (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break
  sleep 0.05
done

for in_flight in $IN_FLIGHTS; do
  for round in $(seq 1 "$ROUNDS"); do
    "$bin" loop --url "http://127.0.0.1:$PORT" --events "$EVENTS" --in-flight "$in_flight" | tee -a "$work/loop-$in_flight.txt"
    "$bin" e2e --url "http://127.0.0.1:$PORT" --events "$EVENTS" --in-flight "$in_flight" --queue "$QUEUE" | tee -a "$work/logger-$in_flight.txt"
    if [ -n "$baseline" ]; then
      printf 'baseline %s: ' "$BASELINE_REV"
      "$baseline" e2e --url "http://127.0.0.1:$PORT" --events "$EVENTS" --in-flight "$in_flight" --queue "$QUEUE" | tee -a "$work/baseline-$in_flight.txt"
    fi
  done
done

python3 - "$work" $IN_FLIGHTS <<'PY'
import re, statistics, sys
work, flights = sys.argv[1], sys.argv[2:]
for f in flights:
    grab = lambda name, pattern: [float(x) for x in re.findall(pattern, open(f"{work}/{name}-{f}.txt").read())]
    loop, logger = grab("loop", r"([\d.]+) events/s"), grab("logger", r"([\d.]+) events/s")
    cpu_loop, cpu_logger = grab("loop", r"([\d.]+) µs CPU/event"), grab("logger", r"([\d.]+) µs CPU/event")
    ml, mg = statistics.median(loop), statistics.median(logger)
    cl, cg = statistics.median(cpu_loop), statistics.median(cpu_logger)
    print(f"RESULT in-flight {f}: events/s loop {[round(x) for x in loop]} median {ml:.0f}; "
          f"logger {[round(x) for x in logger]} median {mg:.0f}; logger/loop = {mg / ml:.2f}")
    print(f"RESULT in-flight {f}: CPU µs/event loop {cpu_loop} median {cl:.1f}; "
          f"logger {cpu_logger} median {cg:.1f}; logger/loop = {cg / cl:.2f}")
    try:
        base = grab("baseline", r"([\d.]+) events/s")
        cpu_base = grab("baseline", r"([\d.]+) µs CPU/event")
    except FileNotFoundError:
        continue
    mb, cb = statistics.median(base), statistics.median(cpu_base)
    print(f"RESULT in-flight {f}: events/s baseline {[round(x) for x in base]} median {mb:.0f}; "
          f"logger/baseline = {mg / mb:.2f}; CPU µs/event baseline median {cb:.1f}, logger/baseline = {cg / cb:.2f}")
PY
