#!/usr/bin/env bash
# A slow mask next to the application's own timer: benches/hooks.rs on this
# code and on BASELINE_REV (default a1532cd, where the mask ran on the
# runtime's workers), interleaved ROUNDS times. The baseline is built in a
# worktree under target/baseline-REV with this checkout's target dir, the
# bench file copied in (it uses only the public API).
#
#   honeyhive/benches/hooks.sh               # ROUNDS=3 BASELINE_REV=a1532cd
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
BASELINE_REV=${BASELINE_REV:-a1532cd}

exe_of() { # the hooks bench's executable, built in the checkout $1
  (cd "$1" && cargo bench -q -p honeyhive --features testing --bench hooks --no-run --message-format=json) \
    | python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "hooks" and m.get("executable"):
        print(m["executable"])'
}

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
tree="$PWD/target/baseline-$BASELINE_REV/src"
[ -d "$tree" ] || git worktree add --force --detach "$tree" "$BASELINE_REV" >&2
cp honeyhive/benches/hooks.rs "$tree/honeyhive/benches/hooks.rs"
grep -q 'name = "hooks"' "$tree/honeyhive/Cargo.toml" \
  || printf '\n[[bench]]\nname = "hooks"\nharness = false\nrequired-features = ["testing"]\n' >>"$tree/honeyhive/Cargo.toml"
baseline=$(exe_of "$tree")
this=$(exe_of "$PWD")
for _ in $(seq 1 "$ROUNDS"); do
  "$baseline" "baseline $BASELINE_REV"
  "$this" "this code"
done
