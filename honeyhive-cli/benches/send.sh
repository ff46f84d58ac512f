#!/usr/bin/env bash
# `honeyhive send` of a large JSONL file next to the Logger's own
# end-to-end rate, against the same loopback sink, in one run, interleaved.
#
#   honeyhive-cli/benches/send.sh            # LINES=1000000 ROUNDS=3 BIG_LINES=3000000
#   BATCH=100 BIG_LINES=0 honeyhive-cli/benches/send.sh   # send --batch 100 (POST /v1/events/batch)
#
# The Logger reference is honeyhive's `logger e2e` bench: the same event
# (`logger body`), pre-built in memory, default concurrency. The command
# reads the same events from a file (one `{"session_id", "event"}` per line,
# no event_id, so it derives one per line) with its default concurrency.
# Peak RSS of the command comes from /usr/bin/time; BIG_LINES is sent once to
# show that memory does not grow with the file.
# Every server this starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."

PORT=${PORT:-18095}
LINES=${LINES:-1000000}
ROUNDS=${ROUNDS:-3}
BIG_LINES=${BIG_LINES:-3000000}
# BATCH > 0: `send --batch BATCH`, and the reference logger with batches of BATCH.
BATCH=${BATCH:-0}
batch_args=()
[ "$BATCH" -gt 0 ] && batch_args=(--batch "$BATCH")

cargo build -q --release -p honeyhive-cli
cli=target/release/honeyhive
bench=$(honeyhive/benches/logger-bin.sh)

work=$(mktemp -d)
sink_pid=""
cleanup() { [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

"$bench" body > "$work/body.json"
make_file() { # lines path
  python3 - "$1" "$2" "$work/body.json" <<'PY'
import json, sys
n, path, body = int(sys.argv[1]), sys.argv[2], json.load(open(sys.argv[3]))
del body["event_id"]
with open(path, "w") as out:
    for i in range(n):
        body["metrics"]["i"] = i
        out.write(json.dumps({"session_id": "bench", "event": body}, separators=(",", ":")) + "\n")
PY
}
make_file "$LINES" "$work/events.jsonl"
echo "file: $LINES lines, $(du -h "$work/events.jsonl" | cut -f1)"

"$bench" sink --port "$PORT" --seconds 3600 > "$work/sink.log" 2>&1 &
sink_pid=$!
for _ in $(seq 1 100); do
  (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break
  sleep 0.05
done

export HH_API_KEY=bench-key HH_API_URL="http://127.0.0.1:$PORT"
for round in $(seq 1 "$ROUNDS"); do
  "$bench" e2e --url "$HH_API_URL" --events "$LINES" --in-flight 0 "${batch_args[@]}" | sed "s/^/round $round logger /"
  /usr/bin/time -f "round $round send peak RSS %M KiB" \
    "$cli" send "$work/events.jsonl" --quiet --json --rejects "$work/rejects.jsonl" "${batch_args[@]}" \
    | python3 -c 'import json,sys; s=json.load(sys.stdin); print("round %s send: %d sent, %d not, %.3f s, %.0f events/s" % (sys.argv[1], s["sent"], s["failed"]+s["rejected"], s["seconds"], s["events_per_second"]))' "$round"
done

if [ "$BIG_LINES" -gt 0 ]; then
  rm -f "$work/events.jsonl"
  make_file "$BIG_LINES" "$work/big.jsonl"
  echo "big file: $BIG_LINES lines, $(du -h "$work/big.jsonl" | cut -f1)"
  /usr/bin/time -f "big send peak RSS %M KiB" \
    "$cli" send "$work/big.jsonl" --quiet --json --rejects "$work/rejects.jsonl" "${batch_args[@]}" \
    | python3 -c 'import json,sys; s=json.load(sys.stdin); print("big send: %d sent, %.3f s, %.0f events/s" % (s["sent"], s["seconds"], s["events_per_second"]))'
fi
