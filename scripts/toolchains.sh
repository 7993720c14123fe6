#!/usr/bin/env bash
# Installs the toolchains that build and test the addon for other platforms into a private,
# cached, git-ignored prefix (.toolchains/, or $WSS_TOOLCHAINS), from package registries only,
# and prints the path of an env file to source:  source "$(scripts/toolchains.sh)"
# Nothing on the system is touched: Debian packages are unpacked with `dpkg -x` and their programs
# started through the prefix's own dynamic loader (as scripts/godot.sh runs Godot).
#
#   Debian sid (amd64 + arm64): rustc/cargo/rustdoc 1.97 with the aarch64 standard library and
#     rust-src (to build Windows' and macOS' standard library with -Zbuild-std), LLVM's binary
#     tools (llvm-lipo for the universal macOS library; llvm-readobj/-nm/-objdump/-strip for the
#     checks), a static qemu-user (runs arm64 programs), and the arm64 `godot` package.
#   Debian bookworm: the aarch64 and mingw-w64 cross compilers, and Wine (runs Windows programs).
#   PyPI: ziglang and cargo-zigbuild (link macOS libraries).
#
# The env file sets RUSTC/CARGO/RUSTDOC to sid's toolchain, CARGO_TARGET_DIR to target/cross, the
# linkers, runners (qemu-aarch64, wine) and C compilers for each target, and WSS_GODOT_ARM64 (a
# wrapper that runs the arm64 Godot under qemu). A failed step names itself and exits non-zero.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
X=${WSS_TOOLCHAINS:-$root/.toolchains}
source "$root/scripts/lib/debian.sh"

SID_PKGS=(rustc cargo libstd-rust-dev libstd-rust-dev:arm64 rust-src llvm-22 qemu-user)
BW_PKGS=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross binutils-aarch64-linux-gnu
         gcc-mingw-w64-x86-64 binutils-mingw-w64-x86-64 wine64 libz-mingw-w64)
PY_PKGS=(ziglang==0.17.0 cargo-zigbuild==0.24.0)
# Changing any list (or this file's layout version) installs afresh.
stamp=$X/.installed-$(echo "v4 ${SID_PKGS[*]} ${BW_PKGS[*]} ${PY_PKGS[*]}" | sha1sum | cut -c1-12)
if [ -f "$stamp" ] && [ -f "$X/env.sh" ]; then echo "$X/env.sh"; exit 0; fi

step() { echo "toolchains.sh: $*" >&2; }
fail() { echo "toolchains.sh: FAILED: $*" >&2; exit 1; }
rm -rf "$X"
mkdir -p "$X/bin"

step "Debian sid: Rust 1.97 (+ arm64 std, rust-src), LLVM tools, qemu-user"
apt_prefix "$X/apt-sid" sid amd64 arm64 || fail "apt-get update of Debian sid (see above)"
apt_unpack "$X/apt-sid" "$X/sid" "${SID_PKGS[@]}" || fail "downloading or unpacking ${SID_PKGS[*]} from sid"
step "Debian sid: godot:arm64"
apt_unpack "$X/apt-sid" "$X/godot-arm64" godot:arm64 || fail "downloading or unpacking godot:arm64 from sid"
step "Debian bookworm: aarch64 and mingw-w64 cross compilers, Wine"
apt_prefix "$X/apt-bookworm" bookworm amd64 || fail "apt-get update of Debian bookworm"
apt_unpack "$X/apt-bookworm" "$X/bw" "${BW_PKGS[@]}" || fail "downloading or unpacking ${BW_PKGS[*]} from bookworm"
step "PyPI: ziglang, cargo-zigbuild"
python3 -m venv "$X/zig" || fail "python3 -m venv"
"$X/zig/bin/pip" install -q --disable-pip-version-check "${PY_PKGS[@]}" || fail "pip install ${PY_PKGS[*]}"

S=$X/sid
SL=$S/usr/lib/x86_64-linux-gnu
# A program of sid's, run through sid's own loader and libraries.
sid_wrap() { # NAME PROGRAM [ARGS...]
  local name=$1 prog=$2; shift 2
  printf '#!/bin/sh\nexec %s --library-path %s %s %s "$@"\n' "$SL/ld-linux-x86-64.so.2" "$SL" "$prog" "$*" > "$X/bin/$name"
  chmod +x "$X/bin/$name"
}
sid_wrap rustc "$S/usr/bin/rustc" --sysroot "$S/usr"
sid_wrap rustdoc "$S/usr/bin/rustdoc" --sysroot "$S/usr"
sid_wrap cargo "$S/usr/bin/cargo"
for t in lipo readobj nm objdump strip objcopy; do sid_wrap "llvm-$t" "$S/usr/lib/llvm-22/bin/llvm-$t"; done
# rustc strips Apple targets' debug info with `rust-objcopy` (rustup's llvm-tools; Debian has none).
sid_wrap rust-objcopy "$S/usr/lib/llvm-22/bin/llvm-objcopy"
[ -x "$S/usr/bin/qemu-aarch64" ] || fail "sid's qemu-user has no qemu-aarch64"
"$X/bin/rustc" -vV > /dev/null || fail "sid's rustc does not run"

B=$X/bw
# Bookworm's cross compilers look for their libraries under /usr: point them at the prefix.
printf '#!/bin/sh\nexec %s --sysroot=%s "$@"\n' "$B/usr/bin/aarch64-linux-gnu-gcc-12" "$B" > "$X/bin/aarch64-linux-gnu-gcc"
printf '#!/bin/sh\nexec %s -B%s "$@"\n' "$B/usr/bin/x86_64-w64-mingw32-gcc-win32" "$B/usr/lib/gcc/x86_64-w64-mingw32/12-win32/" > "$X/bin/x86_64-w64-mingw32-gcc"
chmod +x "$X/bin/"*-gcc

# Wine: its `wineserver` script names /usr/lib/wine; the prefix's own copy must be used. Wine 8
# lacks bcryptprimitives.dll (ProcessPrng, which Rust's std imports): a stand-in goes into the
# private Wine prefix (scripts/wine/bcryptprimitives.c).
sed -i "s|=/usr/lib/wine/|=$B/usr/lib/wine/|" "$B/usr/lib/wine/wineserver"
cat > "$X/bin/wine" <<WINE
#!/bin/sh
# Runs a Windows program in the private Wine prefix of scripts/toolchains.sh.
export WINEPREFIX=$X/wineprefix WINEDLLPATH=$B/usr/x86_64-w64-mingw32/lib WINEDEBUG=\${WINEDEBUG:--all}
export LD_LIBRARY_PATH=$B/usr/lib/x86_64-linux-gnu
exec $B/usr/lib/wine/wine64 "\$@"
WINE
chmod +x "$X/bin/wine"
# wineboot creates the prefix; headless, it reports the desktop parts it could not start (no display).
"$X/bin/wine" wineboot -i > /dev/null 2>&1 || true
[ -d "$X/wineprefix/drive_c/windows/system32" ] || fail "creating the Wine prefix (wineboot)"
"$X/bin/x86_64-w64-mingw32-gcc" -shared -O2 -o "$X/wineprefix/drive_c/windows/system32/bcryptprimitives.dll" \
  "$root/scripts/wine/bcryptprimitives.c" "$root/scripts/wine/bcryptprimitives.def" -ladvapi32 ||
  fail "building the ProcessPrng stand-in for Wine"

# Debian's arm64 Godot, run under qemu through its own loader and libraries.
G=$X/godot-arm64
GL=$G/usr/lib/aarch64-linux-gnu
printf '#!/bin/sh\nexec %s %s --library-path %s %s "$@"\n' "$S/usr/bin/qemu-aarch64" "$GL/ld-linux-aarch64.so.1" \
  "$GL:$GL/pulseaudio" "$G/usr/bin/godot" > "$X/bin/godot-arm64"
chmod +x "$X/bin/godot-arm64"
"$X/bin/godot-arm64" --headless --version > /dev/null 2>&1 || fail "the arm64 Godot does not run under qemu"

cat > "$X/env.sh" <<ENV
# Sourced: the cross toolchains of scripts/toolchains.sh.
export WSS_TOOLCHAINS=$X
export PATH=$X/bin:$B/usr/bin:$X/zig/bin:\$PATH
export LD_LIBRARY_PATH=$B/usr/lib/x86_64-linux-gnu\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}
export RUSTC=$X/bin/rustc RUSTDOC=$X/bin/rustdoc CARGO=$X/bin/cargo
export CARGO_TARGET_DIR=$root/target/cross
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=$X/bin/aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=$X/bin/aarch64-linux-gnu-gcc AR_aarch64_unknown_linux_gnu=$B/usr/bin/aarch64-linux-gnu-ar
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="$S/usr/bin/qemu-aarch64 -L $B/usr/aarch64-linux-gnu"
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=$X/bin/x86_64-w64-mingw32-gcc
export CC_x86_64_pc_windows_gnu=$X/bin/x86_64-w64-mingw32-gcc AR_x86_64_pc_windows_gnu=$B/usr/bin/x86_64-w64-mingw32-ar
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=$X/bin/wine
export WSS_GODOT_ARM64=$X/bin/godot-arm64
ENV
touch "$stamp"
echo "$X/env.sh"
