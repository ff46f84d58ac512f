#!/usr/bin/env bash
# `honeyhive experiment run` with a trivial CMD (`cat`) over DATAPOINTS
# local datapoints at CONCURRENCY, recorded on `honeyhive mock` (loopback):
# datapoints per second, from the command's start to its exit (run created,
# every `cat` spawned, sessions delivered, run closed, summary read).
# The reference, interleaved in each round: `xargs -P CONCURRENCY` spawning
# `cat` as many times, recording nothing (the machine's spawn floor).
#
#   honeyhive-cli/benches/experiment.sh      # DATAPOINTS=1000 CONCURRENCY=16 ROUNDS=3
#   CLI=/path/to/honeyhive honeyhive-cli/benches/experiment.sh   # that binary, no build
#
# Every server this starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."

PORT=${PORT:-18096}
DATAPOINTS=${DATAPOINTS:-1000}
CONCURRENCY=${CONCURRENCY:-16}
ROUNDS=${ROUNDS:-3}

cli=${CLI:-}
if [ -z "$cli" ]; then
  cargo build -q --release -p honeyhive-cli
  cli=${CARGO_TARGET_DIR:-target}/release/honeyhive
fi

work=$(mktemp -d)
mock_pid=""
cleanup() { [ -n "$mock_pid" ] && kill "$mock_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

python3 - "$DATAPOINTS" "$work/data.jsonl" <<'PY'
import json, sys
n, path = int(sys.argv[1]), sys.argv[2]
with open(path, "w") as out:
    for i in range(n):
        out.write(json.dumps({"inputs": {"question": f"what is {i} + {i}?"}, "ground_truth": {"answer": str(2 * i)}}) + "\n")
PY

"$cli" mock --port "$PORT" > "$work/mock.out" 2> "$work/mock.err" &
mock_pid=$!
for _ in $(seq 1 100); do
  (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break
  sleep 0.05
done

export HH_API_KEY=hh-mock-key HH_API_URL="http://127.0.0.1:$PORT"
echo "command: $cli experiment run --name bench --data data.jsonl ($DATAPOINTS lines) --concurrency $CONCURRENCY --quiet -- cat"
for round in $(seq 1 "$ROUNDS"); do
  start=$(date +%s.%N)
  set +e
  "$cli" experiment run --name "bench $round" --data "$work/data.jsonl" \
    --concurrency "$CONCURRENCY" --quiet -- cat > "$work/summary.txt" 2> "$work/stderr.txt"
  code=$?
  set -e
  end=$(date +%s.%N)
  passed=$(sed -n 's/.*passed \([0-9]*\).*/\1/p' "$work/summary.txt" | head -1)
  python3 -c 'import sys; n, s, e, p, c = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]; print("round %s: %d datapoints, %s passed, exit %s, %.3f s, %.0f datapoints/s" % (sys.argv[6], n, p, c, e - s, n / (e - s)))' \
    "$DATAPOINTS" "$start" "$end" "${passed:-?}" "$code" "$round"
  [ "$code" -eq 0 ] || { cat "$work/stderr.txt" "$work/summary.txt" >&2; exit 1; }
  start=$(date +%s.%N)
  seq 1 "$DATAPOINTS" | xargs -P "$CONCURRENCY" -I{} cat /dev/null
  end=$(date +%s.%N)
  python3 -c 'import sys; n, s, e = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]); print("round %s reference (xargs -P %s cat): %.3f s, %.0f spawns/s" % (sys.argv[4], sys.argv[5], e - s, n / (e - s)))' \
    "$DATAPOINTS" "$start" "$end" "$round" "$CONCURRENCY"
done
