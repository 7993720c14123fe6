#!/usr/bin/env bash
# Builds the release package: target/package/websocket_server-<version>.zip, laid out as the Godot
# Asset Library expects (addons/websocket_server/ with bin/, the .gdextension, icons/, LICENSE and
# the addon's README; nothing else). The version is rust/gdext/Cargo.toml's.
# Usage: scripts/package.sh [--out DIR]
# The library is built here for this machine's platform; libraries for other platforms built
# elsewhere (scripts/build.sh --release --target TRIPLE) are included if present in bin/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=target/package
[ "${1:-}" = "--out" ] && out=$2
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' rust/gdext/Cargo.toml | head -n 1)
[ -n "$version" ] || { echo "package.sh: no version in rust/gdext/Cargo.toml" >&2; exit 1; }
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
a=$stage/addons/websocket_server
mkdir -p "$a/bin" "$a/icons"
# Libraries for other platforms, built elsewhere and put into bin/, go in as they are; this
# machine's is built now (release), whatever bin/ holds (the tests' debug build, say).
cp addons/websocket_server/bin/*websocket_server.*.so addons/websocket_server/bin/*websocket_server.*.dylib \
   addons/websocket_server/bin/*websocket_server.*.dll "$a/bin/" 2>/dev/null || true
scripts/build.sh --release --dest "$a/bin"
# The release profile keeps line tables for profiling; users do not need them (73 MB -> a few).
for lib in "$a/bin/"*.so; do strip --strip-debug "$lib" 2>/dev/null || true; done
cp addons/websocket_server/websocket_server.gdextension addons/websocket_server/README.md "$a/"
cp LICENSE "$a/LICENSE"
cp addons/websocket_server/icons/*.svg "$a/icons/"
ls "$a/bin/"* > /dev/null 2>&1 || { echo "package.sh: no library in addons/websocket_server/bin/" >&2; exit 1; }
mkdir -p "$out"
zip=$(cd "$out" && pwd)/websocket_server-$version.zip
rm -f "$zip"
(cd "$stage" && python3 - "$zip" <<'PY'
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    for dirpath, _, files in sorted(os.walk("addons")):
        for f in sorted(files):
            z.write(os.path.join(dirpath, f))
PY
)
echo "$zip"
