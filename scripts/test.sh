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
# Each test declares the errors it causes (expect_error); the runner fails it on any other.
scripts/run-godot.sh "$logs/godot.log" -s res://tests/runner.gd

echo "== Benchmark smoke run (every figure is produced; timings are not judged)"
scripts/bench.sh --smoke > "$logs/bench-smoke.log" 2>&1 || { cat "$logs/bench-smoke.log"; exit 1; }
tail -n 30 target/bench-smoke.md

echo "== Python websockets client against the demo server; multiplayer across processes"
scripts/python-env.sh
.venv/bin/python -m pytest -q tests/python
