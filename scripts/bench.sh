#!/usr/bin/env bash
# Benchmarks this server against Godot's stock one, side by side in one run; prints a markdown
# table and writes BENCHMARKS.md. Builds in release mode first.
# Usage: scripts/bench.sh [--smoke]   (--smoke: every figure at a tiny scale, on the debug build,
# writing target/bench-smoke.md; the test command runs it so the suite cannot rot)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if [ "${1:-}" = "--smoke" ]; then
  cargo build -p wss-bench
  scripts/build.sh
  bindir=target/debug; out=target/bench-smoke.md; extra=(--smoke)
else
  cargo build --release -p wss-bench
  scripts/build.sh --release
  bindir=target/release; out=BENCHMARKS.md; extra=()
fi
godot=$(scripts/godot.sh)
timeout 300 "$godot" --headless --path godot-project --import > /dev/null 2>&1 || true
exec python3 bench/run.py --bindir "$bindir" --out "$out" --command "scripts/bench.sh${1:+ $1}" "${extra[@]}"
