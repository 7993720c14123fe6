#!/usr/bin/env bash
# Builds the extension and puts it into addons/websocket_server/bin/ (or DIR) under the name the
# .gdextension gives it: the library name, the Rust target triple, `.editor` for the editor's
# library (with the class reference, F1 help) and nothing for export templates' (games, dedicated
# servers: no docs inside), e.g.
#   bin/libwebsocket_server.x86_64-unknown-linux-gnu.editor.so   (the editor)
#   bin/libwebsocket_server.x86_64-unknown-linux-gnu.so          (exported games)
# Usage: scripts/build.sh [--release | --profile NAME] [--target TRIPLE] [--template | --both]
#                         [--strip] [--dest DIR]
#   default: debug, this machine's target, the editor's library, DIR addons/websocket_server/bin.
#   --template: the export templates' library; --both: both.
#   --strip: strip debug info and local symbols (release packages).
# Other targets are built with the toolchains of scripts/toolchains.sh (installed on first use):
#   aarch64-unknown-linux-gnu, x86_64-pc-windows-gnu (MinGW; the standard library built from
#   source), aarch64-apple-darwin, x86_64-apple-darwin (zig as the linker) and
#   universal-apple-darwin (both macOS architectures in one file, made with llvm-lipo).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
profile=dev
target=""
dest=addons/websocket_server/bin
variants=(editor)
strip=0
while [ $# -gt 0 ]; do
  case $1 in
    --release) profile=release; shift ;;
    --profile) profile=$2; shift 2 ;;
    --target) target=$2; shift 2 ;;
    --template) variants=(template); shift ;;
    --both) variants=(editor template); shift ;;
    --strip) strip=1; shift ;;
    --dest) dest=$2; shift 2 ;;
    *) echo "usage: scripts/build.sh [--release | --profile NAME] [--target TRIPLE] [--template | --both] [--strip] [--dest DIR]" >&2
       exit 2 ;;
  esac
done
host=$(rustc -vV | sed -n 's/^host: //p')
triple=${target:-$host}
case "$triple" in
  *-apple-darwin) prefix=lib; ext=dylib ;;
  *-windows-*) prefix=""; ext=dll ;;
  *) prefix=lib; ext=so ;;
esac
outdir=$profile
[ "$profile" = dev ] && outdir=debug
mkdir -p "$dest"

cross() { # loads the cross toolchains (installing them once)
  [ -n "${WSS_TOOLCHAINS_LOADED:-}" ] && return
  local env
  env=$(scripts/toolchains.sh) || { echo "build.sh: the cross toolchains could not be installed (see above)" >&2; exit 1; }
  # shellcheck disable=SC1090
  source "$env"
  WSS_TOOLCHAINS_LOADED=1
}

# Builds one variant for one real target; prints the built file's path.
compile() { # TRIPLE VARIANT
  local t=$1 features=() dir
  [ "$2" = template ] && features=(--no-default-features)
  if [ "$t" = "$host" ] && [ -z "$target" ]; then
    cargo build -p websocket_server --profile "$profile" "${features[@]}" >&2
    echo "target/$outdir/${prefix}websocket_server.$ext"
    return
  fi
  cross
  dir=$CARGO_TARGET_DIR/$t/$outdir
  case "$t" in
    aarch64-unknown-linux-gnu|x86_64-unknown-linux-gnu)
      cargo build -p websocket_server --profile "$profile" --target "$t" "${features[@]}" >&2 ;;
    x86_64-pc-windows-gnu)
      # No Windows standard library is packaged in the registries: built from sid's rust-src.
      RUSTC_BOOTSTRAP=1 cargo build -p websocket_server --profile "$profile" --target "$t" "${features[@]}" \
        -Zbuild-std=std,panic_unwind >&2 ;;
    aarch64-apple-darwin|x86_64-apple-darwin)
      # The oldest macOS each architecture's Godot 4.3 runs on (x86_64: 10.13; arm64: 11.0). Without
      # it zig records the newest (15.0). The install name is the file's own, not the build path.
      local min=10.13
      [ "$t" = aarch64-apple-darwin ] && min=11.0
      local flags=CARGO_TARGET_${t//-/_}_RUSTFLAGS
      env MACOSX_DEPLOYMENT_TARGET=$min RUSTC_BOOTSTRAP=1 \
        "${flags^^}=-C link-arg=-Wl,-install_name,@rpath/libwebsocket_server.dylib" \
        cargo-zigbuild build -p websocket_server --profile "$profile" --target "$t" "${features[@]}" \
        -Zbuild-std=std,panic_unwind >&2 ;;
    *) echo "build.sh: no recipe for target $t" >&2; exit 2 ;;
  esac
  echo "$dir/${prefix}websocket_server.$ext"
}

# Loaded here, not in compile(): that runs in a subshell, and lipo and strip need it too.
[ -n "$target" ] && cross
for variant in "${variants[@]}"; do
  suffix=""
  [ "$variant" = editor ] && suffix=.editor
  name=${prefix}websocket_server.$triple$suffix.$ext
  grep -qF "\"bin/$name\"" addons/websocket_server/websocket_server.gdextension ||
    { echo "build.sh: bin/$name is not listed in websocket_server.gdextension" >&2; exit 1; }
  if [ "$triple" = universal-apple-darwin ]; then
    built=$(compile aarch64-apple-darwin "$variant")
    cp "$built" "$dest/.arm64.tmp"
    built=$(compile x86_64-apple-darwin "$variant")
    llvm-lipo -create "$dest/.arm64.tmp" "$built" -output "$dest/$name.tmp"
    rm -f "$dest/.arm64.tmp"
  else
    built=$(compile "$triple" "$variant")
    cp "$built" "$dest/$name.tmp"
  fi
  if [ "$strip" = 1 ]; then
    case "$triple" in
      "$host") strip --strip-unneeded "$dest/$name.tmp" ;;
      *-apple-darwin) llvm-strip -x -S "$dest/$name.tmp" ;;  # locals and debug; exports stay
      *) llvm-strip --strip-unneeded "$dest/$name.tmp" ;;
    esac
  fi
  mv "$dest/$name.tmp" "$dest/$name"
  echo "build.sh: $dest/$name ($profile)" >&2
done

[ "$dest" = addons/websocket_server/bin ] || exit 0
# Names from before target triples and variants were used; a stale copy would only confuse.
rm -f addons/websocket_server/bin/libwebsocket_server.so
# A project opened by the editor lists its extensions in .godot/extension_list.cfg; headless runs
# of a fresh checkout have no editor pass, so write it here.
mkdir -p godot-project/.godot
echo "res://addons/websocket_server/websocket_server.gdextension" > godot-project/.godot/extension_list.cfg
