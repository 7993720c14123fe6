#!/usr/bin/env bash
# Builds the release: every platform's library in both variants (the editor's, with the class
# reference; export templates', without), stripped, checked (tests/package/libcheck.py: format,
# architecture, entry point, imports, glibc floor, macOS deployment target), and packaged into
# target/package/websocket_server-<version>.zip by scripts/package.sh.
#   Linux x86_64 and arm64, Windows x86_64 (MinGW), macOS universal (arm64 + x86_64).
# The toolchains come from package registries into .toolchains/ (scripts/toolchains.sh, once).
# A step that fails is named and nothing is packaged: a release never lacks a platform.
# Usage: scripts/release.sh [--out DIR] [--profile NAME]   (default profile: release; the test
#   command uses cross-test, the same builds unoptimized, to check the whole path quickly)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=target/package
profile=release
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    --profile) profile=$2; shift 2 ;;
    *) echo "usage: scripts/release.sh [--out DIR] [--profile NAME]" >&2; exit 2 ;;
  esac
done
TARGETS=(x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu x86_64-pc-windows-gnu universal-apple-darwin)
bin=target/$profile-bin
rm -rf "$bin"
mkdir -p "$bin"
env=$(scripts/toolchains.sh) || { echo "release.sh: FAILED: installing the cross toolchains (see above)" >&2; exit 1; }
for t in "${TARGETS[@]}"; do
  start=$SECONDS
  scripts/build.sh --profile "$profile" --target "$t" --both --strip --dest "$bin" ||
    { echo "release.sh: FAILED: building $t (see above); nothing was packaged" >&2; exit 1; }
  echo "release.sh: $t built in $((SECONDS - start)) s" >&2
done
scripts/package.sh --bin "$bin" --out "$out"
