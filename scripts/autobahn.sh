#!/usr/bin/env bash
# Autobahn|Testsuite, the original (wstest, Python 2.7 through pyenv), against the addon in headless
# Godot (godot-project/bench/bench_server.gd echoing with our WebSocketServer), over ws:// and
# wss:// (the ECDSA test certificate). Over ws:// the echo is written in the stock Godot pattern
# (after poll(), each peer's get_packet() and send(): --per-peer), over wss:// with the batch API
# (take_messages, answered with send_buffer from the batch's one buffer): with either, the Close for a violation must follow the echoes of
# the messages before it (3.2, 3.3, 4.1.3-4.1.5, 4.2.3-4.2.5 are STRICT OK only then). Fails
# unless every case is OK or INFORMATIONAL, but for 6.4.3 and 6.4.4, which must be NON-STRICT (tungstenite checks UTF-8 when a fragment ends, not at the byte).
# Over ws:// every closing behaviour must be OK too. Over wss:// the cases where the client breaks
# the protocol and then waits for the server to close TCP (4.1.*, 4.2.*, 7.3.2, 7.3.6, 7.5.1) end
# with the client dropping the connection ("FAILED BY CLIENT"): over TLS the server does not close
# right after its Close frame, because Godot's TLS client then loses the close code. Reported,
# not failed. (There is no case group 8 or 11.)
# Each scheme runs twice: with the server's I/O thread (ws, wss) and with inline I/O, where poll()
# does the socket work (ws-inline, wss-inline).
# Reports go to target/autobahn/<ws|wss|ws-inline|wss-inline>/ (index.html).
# The server runs with compression = COMPRESSION_SHARED (permessage-deflate): the cases before 12
# do not offer it and run uncompressed. The compression cases (12.*, 13.*: 1000 messages each,
# compressed and inflated by wstest's Python 2, about 0.6-2 s a case here against 0.07 s for the
# others) are sampled in the test command: the first of each 12.* group and the first three of each
# 13.* group (every negotiation variant: windows, context takeover, several offers), 26 cases;
# `--deflate-all` runs all 216 in each configuration, the long run whose results are committed in
# bench/autobahn-deflate.md. `--dedicated BITS` runs the server with COMPRESSION_DEDICATED (context
# takeover in a window of BITS) instead, reports in target/autobahn/<run>-dedicated/;
# `--deflate-only` runs only the compression cases (the others never negotiate it).
# The server runs unpaced (its frames spin, a core of its own); `--sleep-usec USEC` sleeps that
# long between frames instead, leaving the core to other work (the long runs beside fuzzing).
# Usage: scripts/autobahn.sh [--deflate-all] [--dedicated BITS] [--deflate-only] [--sleep-usec USEC]
#                            [ws|wss|ws-inline|wss-inline]...   (default: all four)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
venv=$root/.venv-autobahn
if [ ! -x "$venv/bin/wstest" ]; then
  py27=$(pyenv root)/versions/2.7.18/bin/python
  [ -x "$py27" ] || { echo "autobahn.sh: needs pyenv's Python 2.7.18 ($py27)" >&2; exit 1; }
  "$py27" -m pip install -q --user "virtualenv<20.22" >&2
  "$py27" -m virtualenv -q "$venv" >&2
  "$venv/bin/pip" install -q autobahntestsuite==25.10.1 >&2
fi
ls addons/websocket_server/bin/*websocket_server.*.* > /dev/null 2>&1 || scripts/build.sh
godot=$(scripts/godot.sh)
# (wstest turns a pattern with a * into a regular expression, dots escaped: "$*" ends it.)
deflate='"12.[1-5].1$*", "13.[1-7].[1-3]$*"'
basic='"1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "9.*", "10.*", '
compression=(--compression)
pacing=(--unpaced)
suffix=
schemes=()
while [ $# -gt 0 ]; do
  case "$1" in
    --deflate-all) deflate='"12.*", "13.*"'; shift ;;
    --dedicated) compression=(--compression --dedicated "$2"); suffix=-dedicated; shift 2 ;;
    --deflate-only) basic=; shift ;;
    --sleep-usec) pacing=(--sleep-usec "$2"); shift 2 ;;
    *) schemes+=("$1"); shift ;;
  esac
done
[ ${#schemes[@]} -gt 0 ] || schemes=(ws wss ws-inline wss-inline)
status=0
for run in "${schemes[@]}"; do
  out=$root/target/autobahn/$run$suffix
  scheme=${run%-inline}
  inline=(); [ "$scheme" != "$run" ] && inline=(--inline)
  rm -rf "$out"; mkdir -p "$out"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  tls=(--per-peer); [ "$scheme" = wss ] && tls=(--tls)
  "$godot" --headless --path godot-project res://bench/bench_server.tscn -- --impl ours --port "$port" \
    --limit 20000000 "${pacing[@]}" "${compression[@]}" "${tls[@]}" "${inline[@]}" > "$out/server.log" 2>&1 &
  server=$!
  for _ in $(seq 100); do grep -q LISTENING "$out/server.log" && break; sleep 0.2; done
  cat > "$out/spec.json" <<SPEC
{"outdir": "$out", "servers": [{"agent": "WebSocketServer-$run", "url": "$scheme://127.0.0.1:$port"}],
 "cases": [$basic$deflate],
 "exclude-cases": [], "exclude-agent-cases": {}}
SPEC
  started=$(date +%s)
  (cd "$out" && timeout 3600 "$venv/bin/wstest" -m fuzzingclient -s spec.json > wstest.log 2>&1) || status=1
  kill "$server"; wait "$server" 2>/dev/null || true
  python3 - "$out" "$run$suffix" "$(( $(date +%s) - started ))" "${basic:+basic}" <<'PY' || status=1
import collections, json, sys
out, scheme, seconds, basic = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
index = json.load(open(f"{out}/index.json"))
results = {case: r for agent in index.values() for case, r in agent.items()}
counts = collections.Counter(r["behavior"] for r in results.values())
non_strict = sorted(c for c, r in results.items() if r["behavior"] == "NON-STRICT")
bad = sorted(c for c, r in results.items() if r["behavior"] not in ("OK", "NON-STRICT", "INFORMATIONAL"))
bad_close = sorted(c for c, r in results.items() if r["behaviorClose"] not in ("OK", "INFORMATIONAL"))
print(f"autobahn {scheme}: {len(results)} cases in {seconds} s: {dict(counts)}; NON-STRICT {non_strict}")
ok = True
if non_strict != (["6.4.3", "6.4.4"] if basic else []):
    print(f"autobahn {scheme}: NON-STRICT should be exactly 6.4.3 and 6.4.4 (or none without them)"); ok = False
if bad:
    print(f"autobahn {scheme}: failed {bad}"); ok = False
if bad_close:
    print(f"autobahn {scheme}: closing behaviour not OK in {bad_close}")
    ok = ok and scheme.startswith("wss")
sys.exit(0 if ok else 1)
PY
  for pattern in "SCRIPT ERROR" "panicked"; do
    if grep -q "$pattern" "$out/server.log"; then echo "autobahn.sh: server log has $pattern" >&2; status=1; fi
  done
done
exit $status
