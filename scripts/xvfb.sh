#!/usr/bin/env bash
# Prints the path of xvfb-run, for tests that run the Godot editor (tests/package/), installing
# Debian's `xvfb` and `xauth` packages if it is missing (with apt-get, which needs root, as on CI;
# without root the script says what to run).
set -euo pipefail
if ! command -v xvfb-run > /dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "xvfb.sh: xvfb-run is missing; install it with: sudo apt-get install --no-install-recommends xvfb xauth" >&2
    exit 1
  fi
  echo "xvfb.sh: installing Debian's xvfb and xauth (once)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update >&2
  apt-get install -y --no-install-recommends xvfb xauth >&2
fi
command -v xvfb-run
