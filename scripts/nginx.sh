#!/usr/bin/env bash
# Prints the path of an nginx executable for the deployment tests (tests/deploy/), installing one
# if needed; with --stream-module, prints the path of its `stream` module instead (for
# `load_module`).
#
# Debian's own nginx (the host release's package, 1.22 on bookworm) and its stream module are
# unpacked into a private, git-ignored prefix (.nginx-debian/), so nothing on the system is touched
# and the tests run the nginx that Debian users deploy. The prefix is cached between runs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
P=$root/.nginx-debian
wrapper=$P/nginx
module=$P/root/usr/lib/nginx/modules/ngx_stream_module.so

ok() { [ -x "$wrapper" ] && [ -f "$module" ] && "$wrapper" -v > /dev/null 2>&1; }

if ! ok; then
  echo "nginx.sh: fetching Debian's nginx and libnginx-mod-stream into $P (once; cached)" >&2
  rm -rf "$P"
  mkdir -p "$P/etc/apt/sources.list.d" "$P/etc/apt/preferences.d" "$P/var/lib/apt/lists/partial" \
    "$P/var/cache/apt/archives/partial" "$P/var/lib/dpkg" "$P/root"
  touch "$P/var/lib/dpkg/status"
  # The host's own Debian sources, so that the package matches the host's libraries.
  cp /etc/apt/sources.list.d/*.sources "$P/etc/apt/sources.list.d/" 2>/dev/null || true
  [ -f /etc/apt/sources.list ] && cp /etc/apt/sources.list "$P/etc/apt/sources.list"
  O=(-o "Dir=$P" -o "Dir::State::status=$P/var/lib/dpkg/status" -o Dir::Etc::trusted=/etc/apt/trusted.gpg
     -o Dir::Etc::trustedparts=/etc/apt/trusted.gpg.d -o Debug::NoLocking=1)
  apt-get "${O[@]}" update >&2
  apt-get "${O[@]}" install -y --download-only --no-install-recommends nginx libnginx-mod-stream >&2
  A=$P/var/cache/apt/archives
  for f in "$A"/nginx_*.deb "$A"/libnginx-mod-stream_*.deb; do dpkg -x "$f" "$P/root"; done
  # Libraries the host lacks (never the C library itself) come from the same download.
  if ldd "$P/root/usr/sbin/nginx" | grep -q "not found"; then
    for f in "$A"/lib*.deb; do
      case $(basename "$f") in libc6_*|libgcc-s1_*|libnginx-mod-*) continue ;; esac
      dpkg -x "$f" "$P/root"
    done
  fi
  rm -f "$A"/*.deb
  cat > "$wrapper" <<'WRAP'
#!/usr/bin/env bash
P=$(cd "$(dirname "$0")" && pwd)
export LD_LIBRARY_PATH="$P/root/usr/lib/x86_64-linux-gnu:$P/root/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
exec "$P/root/usr/sbin/nginx" "$@"
WRAP
  chmod +x "$wrapper"
  ok || { echo "nginx.sh: the unpacked nginx does not run" >&2; "$wrapper" -v; exit 1; }
fi
if [ "${1:-}" = "--stream-module" ]; then echo "$module"; else echo "$wrapper"; fi
