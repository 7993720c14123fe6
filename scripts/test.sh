#!/usr/bin/env bash
# Runs every test: Rust (core, driven by bytes, over loopback, hostile clients; the cross-thread
# hand-overs under loom), 30 s of fuzzing per target, headless Godot (the addon driven by Godot's
# own clients), Python `websockets` against the demo server, the multiplayer scenario across Godot
# processes, Autobahn, the attack and internet-facing suites, the nginx deployment recipes with a
# real nginx, a real browser (headless Chromium with Selenium), every platform's library built and
# checked (Linux arm64's tests and the Godot suite under qemu, Windows' core tests under Wine:
# scripts/test-platforms.sh), the release package installed into a fresh project, a 60-second soak, and a smoke run of the benchmark. The Godot suites, the
# Python suites (but nginx, browser, package) and Autobahn run once with the server's I/O thread
# and once with inline I/O (io_mode). Exits non-zero on any failure. Sets up what it needs on a
# fresh machine: Godot (scripts/godot.sh), the cross toolchains (scripts/toolchains.sh), nginx (scripts/nginx.sh), Chromium
# (scripts/chromium.sh), Xvfb for the editor (scripts/xvfb.sh), cargo-fuzz (scripts/fuzz.sh) and
# a Python venv.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
logs="$root/target/test-logs"
mkdir -p "$logs"

echo "== Rust tests"
cargo test --workspace

echo "== loom: the cross-thread hand-overs in every interleaving"
RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p wss-core --release --test loom

echo "== Fuzzing, 30 s per target (scripts/fuzz.sh --runs 10000000 for the long run)"
scripts/fuzz.sh --seconds 30

echo "== Build the addon"
scripts/build.sh
godot=$(scripts/godot.sh)
# Registers the project's class_name scripts and the extension (what the editor does on open).
timeout 300 "$godot" --headless --path godot-project --import > "$logs/import.log" 2>&1 || {
  cat "$logs/import.log"; echo "test.sh: godot --import failed" >&2; exit 1; }

echo "== Headless Godot tests"
# Each test declares the errors it causes (expect_error); the runner fails it on any other.
scripts/run-godot.sh "$logs/godot.log" -s res://tests/runner.gd

echo "== Other platforms: every library built, checked and packaged; arm64 under qemu; Windows under Wine"
scripts/test-platforms.sh

echo "== Benchmark smoke run (every figure is produced; timings are not judged)"
scripts/bench.sh --smoke > "$logs/bench-smoke.log" 2>&1 || { cat "$logs/bench-smoke.log"; exit 1; }
tail -n 30 target/bench-smoke.md

echo "== Python websockets client against the demo server; multiplayer across processes; Autobahn; attacks; nginx; Chromium"
scripts/python-env.sh
.venv/bin/python -m pytest -q tests/python tests/attacks tests/deploy tests/bus tests/browser tests/package

echo "== The Python, multiplayer, Autobahn (kosoku), attack, nginx, bus and chat-page suites again, against inline I/O"
WSS_IO_MODE=inline .venv/bin/python -m pytest -q tests/python tests/attacks tests/deploy tests/bus tests/browser/test_chat_page.py

echo "== Autobahn|Testsuite, the original, over ws:// and wss://, with the I/O thread and inline"
scripts/autobahn.sh
echo "== Autobahn's compression sample with context takeover (COMPRESSION_DEDICATED, 12 bits)"
scripts/autobahn.sh --dedicated 12 --deflate-only ws

echo "== Soak, 60 s (scripts/soak.sh for the 10-minute run)"
.venv/bin/python tests/soak/soak.py --clients 1000 --seconds 60
