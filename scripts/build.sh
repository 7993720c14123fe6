#!/usr/bin/env bash
# Builds the extension and puts it into addons/websocket_server/bin/.
# Usage: scripts/build.sh [--release]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
profile=debug
args=()
if [ "${1:-}" = "--release" ]; then profile=release; args=(--release); fi
cargo build -p websocket_server "${args[@]}"
case "$(uname -s)" in
  Darwin) lib=libwebsocket_server.dylib ;;
  MINGW*|MSYS*|CYGWIN*) lib=websocket_server.dll ;;
  *) lib=libwebsocket_server.so ;;
esac
cp "target/$profile/$lib" "addons/websocket_server/bin/$lib.tmp"
mv "addons/websocket_server/bin/$lib.tmp" "addons/websocket_server/bin/$lib"
# A project opened by the editor lists its extensions in .godot/extension_list.cfg; headless runs
# of a fresh checkout have no editor pass, so write it here.
mkdir -p godot-project/.godot
echo "res://addons/websocket_server/websocket_server.gdextension" > godot-project/.godot/extension_list.cfg
echo "build.sh: addons/websocket_server/bin/$lib ($profile)" >&2
