#!/usr/bin/env bash
# Builds everything (release), fetches Godot if needed, and runs the chat-room demo server in
# headless Godot until Ctrl-C: open http://127.0.0.1:9080/ (the chat page, served by the server
# itself). Extra arguments go to the demo: --port N (default 9080), --bind IP, --bus URL.
#
# scripts/demo.sh --cluster N: a small cluster on this machine instead: a Redis server (Debian's,
# scripts/redis.sh) on 127.0.0.1:6390, N chat servers on 127.0.0.1:9081... sharing their rooms
# through it (--bus), and nginx (scripts/nginx.sh) on http://127.0.0.1:9080/ in front of them
# (deploy/nginx/sites/godot-cluster.conf, without TLS). Tabs that land on different processes
# chat together; "/where" tells which process a client is on, "/all <text>" reaches every room.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/build.sh --release
godot=$(scripts/godot.sh)
"$godot" --headless --path godot-project --import > /dev/null 2>&1 || true
if [ "${1:-}" != "--cluster" ]; then
  exec "$godot" --headless --path godot-project res://demo/chat_server.tscn -- "$@"
fi
n=${2:?usage: scripts/demo.sh --cluster N}
dir=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait; rm -rf "$dir"' EXIT INT TERM
"$(scripts/redis.sh)" --port 6390 --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" > "$dir/redis.log" &
pids+=($!)
servers=""
for i in $(seq 1 "$n"); do
  port=$((9080 + i))
  "$godot" --headless --path godot-project res://demo/chat_server.tscn -- --bind 127.0.0.1 --port "$port" \
    --name "chat-$i" --trusted-proxies 127.0.0.1 --bus redis://127.0.0.1:6390 &
  pids+=($!)
  servers+="    server 127.0.0.1:$port;"$'\n'
done
mkdir -p "$dir/nginx/sites" "$dir/nginx/tmp"
cp deploy/nginx/conf.d/websocket-upgrade.conf deploy/nginx/snippets/godot-websocket-proxy.conf "$dir/nginx/"
# The recipe's upstreams and location, on plain http://127.0.0.1:9080 (no certificate here).
user=""
[ "$(id -u)" = 0 ] && user="user root;"
cat > "$dir/nginx/nginx.conf" <<CONF
$user
worker_processes 1;
daemon off;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/nginx/tmp/body;
    proxy_temp_path $dir/nginx/tmp/proxy;
    fastcgi_temp_path $dir/nginx/tmp/fastcgi;
    uwsgi_temp_path $dir/nginx/tmp/uwsgi;
    scgi_temp_path $dir/nginx/tmp/scgi;
    include websocket-upgrade.conf;
    upstream godot_cluster {
        least_conn;
$servers    }
    server {
        listen 127.0.0.1:9080;
        location / {
            proxy_pass http://godot_cluster;
            include godot-websocket-proxy.conf;
        }
    }
}
CONF
"$(scripts/nginx.sh)" -p "$dir/nginx" -c "$dir/nginx/nginx.conf" -e "$dir/nginx/error.log" &
pids+=($!)
echo "demo cluster: $n chat servers on one Redis bus behind nginx: open http://127.0.0.1:9080/ (Ctrl-C to stop)"
wait
