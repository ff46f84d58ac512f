#!/usr/bin/env bash
# Builds the `logger` bench binary (release) and prints its path; the bench
# scripts (e2e.sh, pair.sh, honeyhive-cli/benches/send.sh) share it.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo bench -q -p honeyhive --bench logger --no-run --message-format=json \
  | python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "logger" and m.get("executable"):
        print(m["executable"])'
