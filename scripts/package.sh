#!/usr/bin/env bash
# Makes the release package from built libraries: target/package/websocket_server-<version>.zip,
# laid out as the Godot Asset Library expects (addons/websocket_server/ with bin/, the
# .gdextension, icons/, LICENSE and the addon's README; nothing else). The version is
# rust/gdext/Cargo.toml's. Every library the .gdextension names must be in DIR, and each is checked
# (tests/package/libcheck.py) before it goes in: no package is made with a library missing or wrong.
# Usage: scripts/package.sh [--bin DIR] [--out DIR]
#   DIR defaults to target/release-bin, which scripts/release.sh fills (it then calls this).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=target/package
bin=target/release-bin
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    *) echo "usage: scripts/package.sh [--bin DIR] [--out DIR]" >&2; exit 2 ;;
  esac
done
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' rust/gdext/Cargo.toml | head -n 1)
[ -n "$version" ] || { echo "package.sh: no version in rust/gdext/Cargo.toml" >&2; exit 1; }
gdext=addons/websocket_server/websocket_server.gdextension
mapfile -t libs < <(sed -n 's/^[a-z0-9_.]* = "bin\/\([^"]*\)"$/\1/p' "$gdext")
[ ${#libs[@]} -gt 0 ] || { echo "package.sh: $gdext names no library" >&2; exit 1; }
missing=()
for lib in "${libs[@]}"; do [ -f "$bin/$lib" ] || missing+=("$lib"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "package.sh: not packaged: $bin lacks ${missing[*]} (scripts/release.sh builds every one)" >&2
  exit 1
fi
# shellcheck disable=SC1090
source "$(scripts/toolchains.sh)"  # LLVM's tools, to read every format
(cd "$bin" && python3 "$root/tests/package/libcheck.py" "${libs[@]}") >&2 ||
  { echo "package.sh: not packaged: a library failed its check (above)" >&2; exit 1; }
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
a=$stage/addons/websocket_server
mkdir -p "$a/bin" "$a/icons"
for lib in "${libs[@]}"; do cp "$bin/$lib" "$a/bin/"; done
cp "$gdext" addons/websocket_server/README.md "$a/"
cp LICENSE "$a/LICENSE"
cp addons/websocket_server/icons/*.svg "$a/icons/"
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
