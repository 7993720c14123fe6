#!/usr/bin/env bash
# Prints the path of a redis-server executable for the bus tests (topics across processes,
# tests/bus/), installing one if needed: Debian's own Redis (the host release's package: 7.0 on
# bookworm; Valkey is its fork and speaks the same protocol) unpacked into a private, git-ignored
# prefix (.redis-debian/), as scripts/nginx.sh does for nginx. Nothing on the system is touched.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
P=$root/.redis-debian
wrapper=$P/redis-server

ok() { [ -x "$wrapper" ] && "$wrapper" --version > /dev/null 2>&1; }

# One installation at a time (tests running in parallel may all ask at once).
mkdir -p "$root/target"
exec 9> "$root/target/.redis-install.lock"
flock 9
if ! ok; then
  echo "redis.sh: fetching Debian's redis-server into $P (once; cached)" >&2
  rm -rf "$P"
  mkdir -p "$P/etc/apt/sources.list.d" "$P/etc/apt/preferences.d" "$P/var/lib/apt/lists/partial" \
    "$P/var/cache/apt/archives/partial" "$P/var/lib/dpkg" "$P/root"
  touch "$P/var/lib/dpkg/status"
  cp /etc/apt/sources.list.d/*.sources "$P/etc/apt/sources.list.d/" 2>/dev/null || true
  [ -f /etc/apt/sources.list ] && cp /etc/apt/sources.list "$P/etc/apt/sources.list"
  O=(-o "Dir=$P" -o "Dir::State::status=$P/var/lib/dpkg/status" -o Dir::Etc::trusted=/etc/apt/trusted.gpg
     -o Dir::Etc::trustedparts=/etc/apt/trusted.gpg.d -o Debug::NoLocking=1)
  apt-get "${O[@]}" update >&2
  apt-get "${O[@]}" install -y --download-only --no-install-recommends redis-server redis-tools >&2
  A=$P/var/cache/apt/archives
  for f in "$A"/redis-server_*.deb "$A"/redis-tools_*.deb; do dpkg -x "$f" "$P/root"; done
  # Libraries the host lacks (never the C library itself) come from the same download.
  for f in "$A"/lib*.deb; do
    case $(basename "$f") in libc6_*|libgcc-s1_*) continue ;; esac
    dpkg -x "$f" "$P/root"
  done
  rm -f "$A"/*.deb
  cat > "$wrapper" <<'WRAP'
#!/usr/bin/env bash
P=$(cd "$(dirname "$0")" && pwd)
export LD_LIBRARY_PATH="$P/root/usr/lib/x86_64-linux-gnu:$P/root/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
exec "$P/root/usr/bin/redis-server" "$@"
WRAP
  chmod +x "$wrapper"
  ok || { echo "redis.sh: the unpacked redis-server does not run" >&2; "$wrapper" --version; exit 1; }
fi
echo "$wrapper"
