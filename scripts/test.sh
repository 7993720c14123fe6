#!/usr/bin/env bash
# Runs every test: Rust (core, driven by bytes and over loopback), headless Godot (the addon driven
# by Godot's own clients), Python `websockets` against the demo server, the multiplayer scenario
# across Godot processes, and a smoke run of the benchmark. Exits non-zero on any failure. Sets up what it needs on a fresh machine: Godot (scripts/godot.sh) and a Python venv.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
logs="$root/target/test-logs"
mkdir -p "$logs"

echo "== Rust tests"
cargo test --workspace

echo "== Build the addon"
scripts/build.sh
godot=$(scripts/godot.sh)
# Registers the project's class_name scripts and the extension (what the editor does on open).
timeout 300 "$godot" --headless --path godot-project --import > "$logs/import.log" 2>&1 || {
  cat "$logs/import.log"; echo "test.sh: godot --import failed" >&2; exit 1; }

echo "== Headless Godot tests"
scripts/run-godot.sh "$logs/godot.log" -s res://tests/runner.gd
# Every bad-input case must have said what was wrong (push_error), not just returned a code.
missing=0
while IFS= read -r expected; do
  [ -z "$expected" ] && continue
  if ! grep -qF -- "$expected" "$logs/godot.log"; then
    echo "test.sh: expected error message not printed: $expected" >&2
    missing=1
  fi
done < godot-project/tests/expected_errors.txt
[ "$missing" -eq 0 ] || exit 1

echo "== Benchmark smoke run (every figure is produced; timings are not judged)"
scripts/bench.sh --smoke > "$logs/bench-smoke.log" 2>&1 || { cat "$logs/bench-smoke.log"; exit 1; }
tail -n 30 target/bench-smoke.md

echo "== Python websockets client against the demo server; multiplayer across processes"
scripts/python-env.sh
.venv/bin/python -m pytest -q tests/python
