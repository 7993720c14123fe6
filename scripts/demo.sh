#!/usr/bin/env bash
# Builds everything (release), fetches Godot if needed, and runs the chat-room demo server in
# headless Godot until Ctrl-C. Extra arguments go to the demo: --port N (default 9080), --bind IP.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/build.sh --release
godot=$(scripts/godot.sh)
"$godot" --headless --path godot-project --import > /dev/null 2>&1 || true
exec "$godot" --headless --path godot-project res://demo/chat_server.tscn -- "$@"
