#!/usr/bin/env bash
# Runs headless Godot on godot-project/ with the given arguments, and fails (exit 1) if Godot
# failed, or its output shows a SCRIPT ERROR, a failed extension load, leaked objects, or a Rust
# panic (caught or not).
# Usage: scripts/run-godot.sh LOGFILE [godot args...]
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
log=$1; shift
godot=$("$root/scripts/godot.sh") || exit 1
# A script error can leave the SceneTree running forever: bound every run.
timeout --kill-after=10 "${GODOT_TIMEOUT:-900}" "$godot" --headless --path "$root/godot-project" "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
bad=0
for pattern in "SCRIPT ERROR" "Can't open dynamic library" "Error loading extension" \
               "ObjectDB instances leaked" "resources still in use at exit" "Parse Error" "Unicode parsing error" "panicked"; do
  if grep -q "$pattern" "$log"; then
    echo "run-godot.sh: the output contains \"$pattern\"" >&2
    bad=1
  fi
done
if [ "$status" -ne 0 ]; then echo "run-godot.sh: Godot exited with $status" >&2; exit 1; fi
exit $bad
