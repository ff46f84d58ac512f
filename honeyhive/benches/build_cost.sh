#!/usr/bin/env bash
# What a new user pays on a first build: a small app depending on `honeyhive`
# (default features) built with `cargo build` into a fresh target directory.
#
#   honeyhive/benches/build_cost.sh [WORKSPACE]...
#
# Each WORKSPACE (default: this one) is a checkout of honeyhive-rs, such as one
# made with `git worktree add /tmp/hh-main main`; they are built one after
# the other, back to back, with the same command, and the registry cache
# warmed first, so only compiling is timed. Prints one RESULT line each:
# wall time, target size, and the load average before and after (the machine
# may be shared). Every temporary directory is removed.
set -euo pipefail

here=$(cd "$(dirname "$0")/../.." && pwd)
[ $# -gt 0 ] || set -- "$here"

for workspace in "$@"; do
  workspace=$(cd "$workspace" && pwd)
  app=$(mktemp -d /tmp/hh-build-cost-app.XXXXXX)
  target=$(mktemp -d /tmp/hh-build-cost-target.XXXXXX)
  trap 'rm -rf "$app" "$target"' EXIT

  mkdir "$app/src"
  cat >"$app/Cargo.toml" <<TOML
[package]
name = "build-cost-app"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
honeyhive = { path = "$workspace/honeyhive" }
tokio = { version = "1", features = ["rt", "macros"] }

[workspace]
TOML
  cat >"$app/src/main.rs" <<'RUST'
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), honeyhive::Error> {
    let client = honeyhive::Client::from_env()?;
    let _ = client;
    Ok(())
}
RUST
  # The same dependency versions as the workspace pins.
  cp "$workspace/Cargo.lock" "$app/Cargo.lock"
  (cd "$app" && cargo fetch --quiet)

  load_before=$(cut -d' ' -f1-3 /proc/loadavg)
  # Wall time, and the CPU time of cargo and every compiler it ran (user +
  # system), which other work on a shared machine disturbs less.
  (cd "$app" && CARGO_TARGET_DIR="$target" /usr/bin/time -f '%e %U %S' -o "$app/time" \
    cargo build --quiet)
  read -r wall user system <"$app/time"
  load_after=$(cut -d' ' -f1-3 /proc/loadavg)
  size=$(du -sh "$target" | cut -f1)
  printf 'RESULT workspace=%s build_s=%s cpu_s=%s target=%s load_before=%s load_after=%s\n' \
    "$workspace" "$wall" "$(echo "$user + $system" | bc)" "$size" "$load_before" "$load_after"

  rm -rf "$app" "$target"
  trap - EXIT
done
