#!/usr/bin/env bash
# An experiment's wall time against its bound, and what recording costs:
# N local datapoints, a task that waits TASK_MS, CONCURRENCY at once, run
# by `cargo run --release --example experiment` (honeyhive/examples/
# experiment.rs), ROUNDS times each with recording on and off, interleaved.
#
#   honeyhive/benches/experiment.sh
#   HH_API_URL=http://127.0.0.1:PORT honeyhive/benches/experiment.sh   # a server of yours
#
# Recording goes to MockHoneyHive in the example's own process (every
# request checked against openapi.yaml), or to HH_API_URL when set.
# The bound is N × TASK_MS ÷ CONCURRENCY. Targets: wall time ≤ 1.15× the
# bound; recording on ≤ 1.05× recording off (medians).
set -euo pipefail
cd "$(dirname "$0")/../.."

N=${N:-1000}
TASK_MS=${TASK_MS:-50}
CONCURRENCY=${CONCURRENCY:-50}
ROUNDS=${ROUNDS:-5}

cargo build -q --release -p honeyhive --example experiment
bin="${CARGO_TARGET_DIR:-target}/release/examples/experiment"

run() { # record → wall ms
  EXP_DATAPOINTS=$N EXP_TASK_MS=$TASK_MS EXP_CONCURRENCY=$CONCURRENCY EXP_RECORD=$1 \
    "$bin" 2>/dev/null | tail -n 1 | sed -E 's/.*wall_ms=([0-9]+).*passed=([0-9]+).*/\1 \2/'
}

on=(); off=()
for round in $(seq "$ROUNDS"); do
  read -r ms passed < <(run 1)
  [ "$passed" -gt 0 ] || { echo "round $round: nothing passed" >&2; exit 1; }
  on+=("$ms")
  read -r ms _ < <(run 0)
  off+=("$ms")
  echo "round $round: recording on ${on[-1]} ms, off ${off[-1]} ms"
done

python3 - "$N" "$TASK_MS" "$CONCURRENCY" "${on[*]}" "${off[*]}" <<'PY'
import statistics, sys
n, task_ms, conc = (int(a) for a in sys.argv[1:4])
on = [int(x) for x in sys.argv[4].split()]
off = [int(x) for x in sys.argv[5].split()]
bound = n * task_ms / conc
m_on, m_off = statistics.median(on), statistics.median(off)
print(f"RESULT experiment {n} datapoints x {task_ms} ms at concurrency {conc}: bound {bound:.0f} ms")
print(f"RESULT recording on : median {m_on:.0f} ms = {m_on / bound:.3f}x the bound (runs {on})")
print(f"RESULT recording off: median {m_off:.0f} ms = {m_off / bound:.3f}x the bound (runs {off})")
print(f"RESULT recording costs {m_on / m_off:.3f}x the run without it")
PY
