#!/usr/bin/env bash
# The soak (tests/soak/soak.py): 1,000 clients for 10 minutes by default against the addon in
# headless Godot, checking every echo, every disconnect, and that memory, descriptors and threads
# return to their baseline. Prints the figures as a Markdown row for RELIABILITY.md.
# Usage: scripts/soak.sh [--release] [--clients N] [--seconds S] [--procs P]
#   --release  build the addon in release mode first (what RELIABILITY.md reports); otherwise the
#              addon as last built (the test command's debug build).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if [ "${1:-}" = "--release" ]; then
  shift
  scripts/build.sh --release
elif ! ls addons/websocket_server/bin/*websocket_server.*.* > /dev/null 2>&1; then
  scripts/build.sh
fi
scripts/python-env.sh
godot=$(scripts/godot.sh)
timeout 300 "$godot" --headless --path godot-project --import > /dev/null 2>&1 || true
exec .venv/bin/python tests/soak/soak.py "$@"
