#!/usr/bin/env bash
# Prints the paths of a Chromium and its chromedriver (two lines) for the browser tests
# (tests/browser/), installing Debian's `chromium` and `chromium-driver` packages if they are
# missing. $CHROMIUM and $CHROMEDRIVER override.
#
# Chromium has too many libraries to run from a private prefix the way Godot and nginx do, so it is
# installed with apt-get, which needs root (as on CI); without root the script says what to run.
set -euo pipefail
find_both() {
  chromium=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
  driver=${CHROMEDRIVER:-$(command -v chromedriver || true)}
  [ -n "$chromium" ] && [ -x "$chromium" ] && [ -n "$driver" ] && [ -x "$driver" ]
}
if ! find_both; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "chromium.sh: Chromium and chromedriver are missing; install them with" >&2
    echo "  sudo apt-get install --no-install-recommends chromium chromium-driver" >&2
    exit 1
  fi
  echo "chromium.sh: installing Debian's chromium and chromium-driver (once)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update >&2
  apt-get install -y --no-install-recommends chromium chromium-driver >&2
  find_both || { echo "chromium.sh: installed, but chromium or chromedriver is not on PATH" >&2; exit 1; }
fi
echo "$chromium"
echo "$driver"
