#!/usr/bin/env bash
# Prints the path of a Godot >= 4.3 executable, installing one if needed.
#
# Order: $GODOT, then a `godot` (or `godot4`) >= 4.3 on PATH, then Debian sid's `godot` package
# unpacked into a private, git-ignored prefix (.godot-sid/) and run through that prefix's own
# dynamic loader, so nothing on the system is touched. The prefix is cached between runs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

version_ok() { # "4.6.3.stable..." -> ok if >= 4.3 (the addon's compatibility_minimum)
  local v=$1 major minor
  major=${v%%.*}; minor=${v#*.}; minor=${minor%%.*}
  [[ $major =~ ^[0-9]+$ && $minor =~ ^[0-9]+$ ]] || return 1
  (( major > 4 || (major == 4 && minor >= 3) ))
}

try() {
  local g=$1 v
  [ -x "$g" ] || g=$(command -v "$g" 2>/dev/null) || return 1
  v=$("$g" --headless --version 2>/dev/null | tail -n 1) || return 1
  version_ok "$v" || { echo "godot.sh: $g is version $v, need >= 4.3; skipping it" >&2; return 1; }
  echo "$g"
}

if [ -n "${GODOT:-}" ]; then
  try "$GODOT" && exit 0
  echo "godot.sh: \$GODOT=$GODOT is not a usable Godot >= 4.3" >&2
  exit 1
fi
for g in godot godot4; do try "$g" && exit 0; done

P=$root/.godot-sid
wrapper=$P/godot
if [ -x "$wrapper" ] && try "$wrapper"; then exit 0; fi

echo "godot.sh: fetching Debian sid's godot package into $P (once; cached)" >&2
rm -rf "$P"
source "$root/scripts/lib/debian.sh"
apt_prefix "$P" sid
apt_unpack "$P" "$P/root" godot
cat > "$wrapper" <<'WRAP'
#!/usr/bin/env bash
P=$(cd "$(dirname "$0")" && pwd)
L=$P/root/usr/lib/x86_64-linux-gnu
exec "$L/ld-linux-x86-64.so.2" --library-path "$L:$L/pulseaudio:$P/root/lib/x86_64-linux-gnu" "$P/root/usr/bin/godot" "$@"
WRAP
chmod +x "$wrapper"
try "$wrapper" || { echo "godot.sh: the unpacked Godot does not run" >&2; exit 1; }
