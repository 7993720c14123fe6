#!/usr/bin/env bash
# The other platforms, as far as this machine can run them (part of scripts/test.sh):
#   - every platform's library, both variants, built (profile cross-test: unoptimized, the same
#     toolchains and flags as scripts/release.sh), checked and packaged: target/cross-test-bin/
#     and target/package-test/ (tests/package/ installs that zip into a fresh project);
#   - Linux arm64: wss-core's tests under qemu, and the headless Godot suite (both I/O modes) in
#     Debian's arm64 Godot under qemu, against the arm64 library;
#   - Windows x86_64: wss-core's tests under Wine (mio's Windows backend, the real Winsock).
# macOS libraries are built and checked but cannot be run here (.github/workflows/platforms.yml
# runs them on macOS). Toolchains: scripts/toolchains.sh (installed once, cached).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
logs=$root/target/test-logs
mkdir -p "$logs"

echo "== Every platform's library, built, checked and packaged (scripts/release.sh --profile cross-test)"
scripts/release.sh --profile cross-test --out target/package-test

# shellcheck disable=SC1090
source "$(scripts/toolchains.sh)"
echo "== Linux arm64: wss-core's tests under qemu"
cargo test -p wss-core --target aarch64-unknown-linux-gnu

echo "== Linux arm64: the headless Godot suite in Debian's arm64 Godot under qemu"
cp target/cross-test-bin/libwebsocket_server.aarch64-unknown-linux-gnu.editor.so addons/websocket_server/bin/
timeout 600 "$WSS_GODOT_ARM64" --headless --path godot-project --import > "$logs/import-arm64.log" 2>&1 || {
  cat "$logs/import-arm64.log"; echo "test-platforms.sh: the arm64 godot --import failed" >&2; exit 1; }
GODOT=$WSS_GODOT_ARM64 GODOT_TIMEOUT=1500 scripts/run-godot.sh "$logs/godot-arm64.log" -s res://tests/runner.gd

echo "== Windows x86_64: wss-core's tests under Wine"
RUSTC_BOOTSTRAP=1 cargo test --no-fail-fast -p wss-core --target x86_64-pc-windows-gnu -Zbuild-std=std,panic_unwind
