#!/usr/bin/env bash
# Builds the extension and puts it into addons/websocket_server/bin/ under the name the
# .gdextension file gives its platform: the library name with the Rust target triple, e.g.
# bin/libwebsocket_server.x86_64-unknown-linux-gnu.so, so that one addon can carry every platform.
# Usage: scripts/build.sh [--release] [--target TRIPLE] [--dest DIR]
#   (default target: this machine's; default DIR: addons/websocket_server/bin)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
profile=debug
args=()
target=""
dest=addons/websocket_server/bin
while [ $# -gt 0 ]; do
  case $1 in
    --release) profile=release; args+=(--release); shift ;;
    --target) target=$2; args+=(--target "$2"); shift 2 ;;
    --dest) dest=$2; shift 2 ;;
    *) echo "usage: scripts/build.sh [--release] [--target TRIPLE] [--dest DIR]" >&2; exit 2 ;;
  esac
done
cargo build -p websocket_server "${args[@]}"
triple=${target:-$(rustc -vV | sed -n 's/^host: //p')}
case "$triple" in
  *-apple-darwin) prefix=lib; ext=dylib ;;
  *-windows-*) prefix=""; ext=dll ;;
  *) prefix=lib; ext=so ;;
esac
src="target/${target:+$target/}$profile/${prefix}websocket_server.$ext"
dst="$dest/${prefix}websocket_server.$triple.$ext"
grep -qF "\"bin/${prefix}websocket_server.$triple.$ext\"" addons/websocket_server/websocket_server.gdextension ||
  { echo "build.sh: $dst is not listed in websocket_server.gdextension" >&2; exit 1; }
cp "$src" "$dst.tmp"
mv "$dst.tmp" "$dst"
if [ "$dest" != addons/websocket_server/bin ]; then
  echo "build.sh: $dst ($profile)" >&2
  exit 0
fi
# The name before target triples were used; a stale copy would only confuse.
rm -f addons/websocket_server/bin/libwebsocket_server.so
# A project opened by the editor lists its extensions in .godot/extension_list.cfg; headless runs
# of a fresh checkout have no editor pass, so write it here.
mkdir -p godot-project/.godot
echo "res://addons/websocket_server/websocket_server.gdextension" > godot-project/.godot/extension_list.cfg
echo "build.sh: $dst ($profile)" >&2
