#!/usr/bin/env bash
# HoneyHive's Python SDK's evaluate() beside this crate's Experiment, in one
# run, against the same loopback server: N local datapoints, a task that
# waits 50 ms, an evaluator comparing the output with the ground truth, at
# each concurrency of WORKERS.
#
#   honeyhive/benches/experiment_python.sh      # N=1000 WORKERS="10 50"
#
# The Python side is `honeyhive` 1.7.0 from PyPI (experiment_python/
# requirements.txt), installed once into a venv under the target directory;
# evaluate_py.py is its run, server.py the loopback server answering both
# sides' routes (the SDK's /session/start, /opentelemetry/v1/traces,
# PUT /events, /v1/runs/{id}/result; ours /v1/sessions, /v1/events/batch,
# /v1/runs/{id}/summary; both POST /v1/runs and PUT /v1/runs/{id}) with
# minimal answers of the shapes each client checks, counting requests by
# route. Ours is `cargo run --release --example experiment` (recording on).
# The server is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."

N=${N:-1000}
WORKERS=${WORKERS:-"10 50"}
here=honeyhive/benches/experiment_python
target=${CARGO_TARGET_DIR:-target}
venv="$target/pyref-venv"
if ! "$venv/bin/python" -c 'import honeyhive' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
fi
cargo build -q --release -p honeyhive --example experiment
ours="$target/release/examples/experiment"

work=$(mktemp -d)
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
python3 "$here/server.py" > "$work/port" 2> "$work/counts" &
server_pid=$!
for _ in $(seq 1 100); do [ -s "$work/port" ] && break; sleep 0.05; done
export HH_API_URL="http://127.0.0.1:$(cat "$work/port")" HH_API_KEY=hh-bench-key

for workers in $WORKERS; do
  t0=$(date +%s.%N)
  "$venv/bin/python" "$here/evaluate_py.py" "$N" "$workers" > "$work/py.out" 2>&1 \
    || { tail -5 "$work/py.out"; echo "the Python SDK's run failed" >&2; exit 1; }
  py=$(python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$t0" "$(date +%s.%N)")
  t0=$(date +%s.%N)
  EXP_DATAPOINTS=$N EXP_TASK_MS=50 EXP_CONCURRENCY=$workers EXP_RECORD=1 "$ours" > "$work/rs.out" 2>&1 \
    || { tail -5 "$work/rs.out"; echo "our run failed" >&2; exit 1; }
  rs=$(python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$t0" "$(date +%s.%N)")
  passed=$(sed -nE 's/.*passed=([0-9]+).*/\1/p' "$work/rs.out" | tail -1)
  python3 -c "import sys; n, w, py, rs, p = sys.argv[1:]; print(f'RESULT {n} datapoints x 50 ms at {w} workers: Python SDK {float(py):.2f} s, ours {float(rs):.2f} s ({p} passed): {float(py) / float(rs):.1f}x faster (bound {int(n) * 0.05 / int(w):.2f} s)')" "$N" "$workers" "$py" "$rs" "$passed"
done
kill -USR1 "$server_pid"; sleep 0.2
echo "requests by route (both sides, all runs): $(tail -1 "$work/counts")"
