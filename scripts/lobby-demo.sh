#!/usr/bin/env bash
# Runs the multiplayer lobby demo headless: one server (our WebSocketServer, gd_mp_api = true) and
# N clients (Godot's stock WebSocketMultiplayerPeer) that chat over RPCs and leave.
# Usage: scripts/lobby-demo.sh [N=3] [PORT=9081]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
n=${1:-3}
port=${2:-9081}
scripts/build.sh --release
godot=$(scripts/godot.sh)
"$godot" --headless --path godot-project --import > /dev/null 2>&1 || true
run() { "$godot" --headless --path godot-project res://demo/lobby.tscn -- "$@" 2>&1 | grep --line-buffered '^\['; }
run --server --port "$port" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
sleep 1.5
names=(ann bob cid dee eve fay gus hal ivy jon)
pids=()
for i in $(seq 0 $((n - 1))); do
  run --name "${names[$((i % 10))]}" --url "ws://127.0.0.1:$port" --stay $((2 + i)) &
  pids+=($!)
  sleep 0.3
done
wait "${pids[@]}"
sleep 0.5
