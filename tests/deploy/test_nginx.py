"""The deployment recipes in deploy/nginx/, run with a real nginx (Debian's, fetched by
scripts/nginx.sh into a private prefix) in front of the addon in headless Godot. The committed
files are used as they are; only ports, certificate paths and (for the idle test) the timeout are
rewritten for the test. Clients connect from 127.0.0.2 so that the client's address differs from
nginx's (127.0.0.1)."""

import http.client
import json
import os
import queue
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import connect

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests/attacks"))
from godot_server import GodotServer, godot_path, io_args  # noqa: E402

DEPLOY = ROOT / "deploy/nginx"
CERT = ROOT / "godot-project/tests/data/ecdsa.crt"
KEY = ROOT / "godot-project/tests/data/ecdsa.key"
CLIENT = "127.0.0.2"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tls_client():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Nginx:
    """nginx running the committed files `sites` (http) and `stream` with `subs` applied."""

    def __init__(self, sites=(), stream=(), subs=(), port=None):
        self.dir = Path(tempfile.mkdtemp(prefix="nginx-test-"))
        self.port = port or free_port()
        nginx = subprocess.run([str(ROOT / "scripts/nginx.sh")], check=True, capture_output=True,
                               text=True).stdout.strip()
        module = subprocess.run([str(ROOT / "scripts/nginx.sh"), "--stream-module"], check=True,
                                capture_output=True, text=True).stdout.strip()
        rules = [
            (r"listen 443( ssl)?;", rf"listen 127.0.0.1:{self.port}\1;"),
            (r".*listen \[::\].*\n", ""),
            (r"/etc/letsencrypt/live/[^/]+/fullchain\.pem", str(CERT)),
            (r"/etc/letsencrypt/live/[^/]+/privkey\.pem", str(KEY)),
            *subs,
        ]

        def install(rel):
            text = (DEPLOY / rel).read_text()
            for pattern, repl in rules:
                text = re.sub(pattern, repl, text)
            out = self.dir / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text)

        for rel in ["conf.d/websocket-upgrade.conf", "snippets/godot-websocket-proxy.conf", *sites, *stream]:
            install(rel)
        for d in ("sites", "stream", "tmp"):
            (self.dir / d).mkdir(exist_ok=True)
        user = "user root;" if os.geteuid() == 0 else ""
        (self.dir / "nginx.conf").write_text(f"""
load_module {module};
{user}
worker_processes 1;
daemon off;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log info;
events {{ worker_connections 1024; }}
http {{
    access_log {self.dir}/access.log;
    client_body_temp_path {self.dir}/tmp/body;
    proxy_temp_path {self.dir}/tmp/proxy;
    fastcgi_temp_path {self.dir}/tmp/fastcgi;
    uwsgi_temp_path {self.dir}/tmp/uwsgi;
    scgi_temp_path {self.dir}/tmp/scgi;
    include conf.d/*.conf;
    include sites/*.conf;
}}
stream {{
    include stream/*.conf;
}}
""")
        self.proc = subprocess.Popen([nginx, "-p", str(self.dir), "-c", str(self.dir / "nginx.conf"),
                                      "-e", str(self.dir / "error.log")],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("nginx did not start:\n" + self.log())
                time.sleep(0.05)

    def log(self):
        path = self.dir / "error.log"
        return path.read_text() if path.exists() else ""

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def from_client_address(port):
    return socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(CLIENT, 0))


def whoami(ws):
    ws.send("whoami?")
    return json.loads(ws.recv(timeout=5))


def test_tls_termination_passes_the_client_address_and_headers(running):
    g = running(GodotServer("--trusted-proxies", "127.0.0.1"))
    n = running(Nginx(sites=["sites/godot-websocket.conf"], subs=[(r"127\.0\.0\.1:9080", f"127.0.0.1:{g.port}")]))
    sock = from_client_address(n.port)
    headers = [("X-Forwarded-For", "6.6.6.6"), ("Cookie", "session=abc")]
    with connect(f"wss://127.0.0.1:{n.port}/play?room=7", sock=sock, ssl=tls_client(),
                 server_hostname="game.example.com", additional_headers=headers,
                 origin="https://game.example.com") as ws:
        me = whoami(ws)
        ws.send("echo through nginx")
        assert ws.recv(timeout=5) == "echo through nginx"
    assert me["address"] == CLIENT, "the real client, not nginx and not the forged header"
    assert me["socket_address"] == "127.0.0.1"
    assert me["resource"] == "/play?room=7"
    h = me["headers"]
    assert h["cookie"] == "session=abc" and h["origin"] == "https://game.example.com"
    assert h["x-forwarded-proto"] == "https" and h["x-real-ip"] == CLIENT
    assert h["x-forwarded-for"] == f"6.6.6.6, {CLIENT}"
    g.wait_stats(lambda st: st["connected"] == 1 and st["open"] == 0)


def test_the_heartbeat_keeps_idle_clients_connected_through_nginx(running):
    """nginx closes a connection silent for proxy_read_timeout (75 s in the recipe, 60 s by
    default; 3 s here, with the heartbeat scaled to 1 s). A client that sends nothing (and no pings
    of its own, like a browser) stays connected with the heartbeat on, and is cut by nginx
    without it."""
    timeout_sub = (r"proxy_read_timeout \d+s", "proxy_read_timeout 3s")
    results = {}

    def idle(name, heartbeat):
        g = running(GodotServer("--heartbeat", heartbeat))
        n = running(Nginx(sites=["sites/godot-websocket.conf"],
                          subs=[(r"127\.0\.0\.1:9080", f"127.0.0.1:{g.port}"), timeout_sub]))
        ws = connect(f"wss://127.0.0.1:{n.port}/", ssl=tls_client(), ping_interval=None)
        t0 = time.monotonic()
        try:
            ws.recv(timeout=6.5)
            results[name] = "a message arrived"
        except TimeoutError:
            ws.send("still here")
            results[name] = ("open", ws.recv(timeout=5))
        except ConnectionClosed:
            results[name] = ("closed", round(time.monotonic() - t0, 1))
        ws.close()

    threads = [threading.Thread(target=idle, args=a) for a in (("heartbeat", "1"), ("none", "0"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results["heartbeat"] == ("open", "still here"), results
    assert results["none"][0] == "closed" and 2.5 <= results["none"][1] <= 5, results


def test_stream_with_proxy_protocol_gives_address_port_and_sni(running):
    g = running(GodotServer("--tls", "--proxy-protocol", "--trusted-proxies", "127.0.0.1"))
    n = running(Nginx(stream=["stream/godot-proxy-protocol.conf"],
                      subs=[(r"127\.0\.0\.1:9443", f"127.0.0.1:{g.port}")]))
    sock = from_client_address(n.port)
    local_port = sock.getsockname()[1]
    with connect(f"wss://127.0.0.1:{n.port}/", sock=sock, ssl=tls_client(),
                 server_hostname="play.game.example") as ws:
        me = whoami(ws)
    assert (me["address"], me["port"]) == (CLIENT, local_port), "address and port from the PROXY header"
    assert me["sni"] == "play.game.example", "TLS ends at the Godot server"
    assert me["socket_address"] == "127.0.0.1"
    # A client that bypasses nginx (no PROXY header) is dropped.
    direct = socket.create_connection(("127.0.0.1", g.port), timeout=5)
    direct.sendall(b"\x16\x03\x01\x00\x05hello")
    try:
        assert direct.recv(10) == b"", "closed unanswered"
    except ConnectionResetError:
        pass  # closed with our bytes unread: a reset
    g.wait_stats(lambda st: st["connected"] == 1)


class ChatServer:
    """The demo chat server (rooms by `?room=`), one process."""

    def __init__(self, name, port=0, args=()):
        self.proc = subprocess.Popen(
            [godot_path(), "--headless", "--path", str(ROOT / "godot-project"), "res://demo/chat_server.tscn",
             "--", "--port", str(port), "--bind", "127.0.0.1", "--name", name, "--trusted-proxies", "127.0.0.1",
             *args, *io_args()],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines = queue.Queue()
        self.log = []
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + 30
        self.port = None
        while self.port is None:
            line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            m = re.search(r"listening on port (\d+)", line)
            if m:
                self.port = int(m.group(1))

    def _read(self):
        for line in self.proc.stdout:
            self.log.append(line)
            self.lines.put(line)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(15)
        out = "".join(self.log)
        for bad in ("SCRIPT ERROR", "panicked", "Error loading extension"):
            assert bad not in out, out


def test_rooms_land_on_one_process_each_and_stay_apart(running):
    servers = [running(ChatServer(f"s{i}")) for i in (1, 2, 3)]
    subs = [(rf"127\.0\.0\.1:908{i + 1}", f"127.0.0.1:{s.port}") for i, s in enumerate(servers)]
    n = running(Nginx(sites=["sites/godot-rooms.conf"], subs=subs))
    ctx = tls_client()
    rooms = [f"room{i}" for i in range(8)]
    clients = {r: [connect(f"wss://127.0.0.1:{n.port}/play?room={r}", ssl=ctx,
                           sock=from_client_address(n.port), server_hostname="game.example.com")
                   for _ in range(2)] for r in rooms}
    where = {}
    for r, pair in clients.items():
        seen = []
        for ws in pair:
            ws.send("/where")
            seen.append(ws.recv(timeout=5))
        names = {re.search(r"server=(\S+)", s).group(1) for s in seen}
        assert len(names) == 1, f"room {r} split over {names}"
        assert all(f"room={r} address={CLIENT}" in s for s in seen), seen
        where[r] = names.pop()
    assert len(set(where.values())) >= 2, f"every room on one process: {where}"
    # A message reaches its room mate only, even one on the same process in another room.
    for r, pair in clients.items():
        pair[0].send(f"hello {r}")
    for r, pair in clients.items():
        assert pair[1].recv(timeout=5) == f"hello {r}"
        with pytest.raises(TimeoutError):
            pair[0].recv(timeout=0.05)
    for pair in clients.values():
        for ws in pair:
            ws.close()


def test_a_rolling_restart_of_two_processes_loses_no_message_and_every_client_reconnects(running):
    """deploy/nginx/sites/godot-rolling.conf with two Godot processes (--graceful: SIGTERM shuts
    down with 1001; --http: /healthz). Clients send numbered messages one at a time through nginx,
    reconnecting whenever their connection ends; the processes are restarted one after the other
    with SIGTERM. Every message must come back exactly once, and every client must have moved."""
    ports = [free_port(), free_port()]
    servers = [running(GodotServer("--graceful", "--http", "--shutdown-timeout", "3", "--port", str(p),
                                   "--trusted-proxies", "127.0.0.1")) for p in ports]
    n = running(Nginx(sites=["sites/godot-rolling.conf"],
                      subs=[(r"127\.0\.0\.1:9081", f"127.0.0.1:{ports[0]}"),
                            (r"127\.0\.0\.1:9082", f"127.0.0.1:{ports[1]}")]))
    url = f"wss://127.0.0.1:{n.port}/"

    def healthz():
        conn = http.client.HTTPSConnection("127.0.0.1", n.port, timeout=5, context=tls_client())
        conn.request("GET", "/healthz")
        resp = conn.getresponse()
        return resp.status, resp.read()

    status, body = healthz()
    assert status == 200 and json.loads(body)["listening"] is True, (status, body)

    stop = threading.Event()
    results = {}

    def client(k):
        echoed, closes, sent = [], [], 0
        while not stop.is_set() or sent < 5:
            try:
                with connect(url, ssl=tls_client(), open_timeout=10) as ws:
                    while not stop.is_set() or sent < 5:
                        msg = f"{k}:{sent}"
                        ws.send(msg)
                        got = ws.recv(timeout=10)
                        assert got == msg, (got, msg)
                        echoed.append(got)
                        sent += 1
                        time.sleep(0.02)
            except ConnectionClosed as e:
                # The message in flight (if any) was not echoed: it is sent again on the next
                # connection, under the same number.
                closes.append(e.rcvd.code if e.rcvd else None)
            except (OSError, InvalidHandshake):
                time.sleep(0.1)  # nginx briefly has no upstream
        results[k] = (echoed, closes)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(20)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    # The rolling restart: stop the first, start its new version on the same port, then the second.
    for i in (0, 1):
        old = servers[i]
        old.proc.send_signal(signal.SIGTERM)
        assert old.proc.wait(15) == 0, "".join(old.log)
        assert "SHUTDOWN FINISHED" in "".join(old.log)
        servers[i] = running(GodotServer("--graceful", "--http", "--shutdown-timeout", "3", "--port",
                                         str(ports[i]), "--trusted-proxies", "127.0.0.1"))
        time.sleep(1.5)
    stop.set()
    for t in threads:
        t.join(60)
    assert len(results) == 20, "every client finished"
    moved = 0
    for k, (echoed, closes) in results.items():
        assert echoed == [f"{k}:{i}" for i in range(len(echoed))], f"client {k}: lost or doubled"
        assert all(c == 1001 for c in closes), f"client {k} closed with {closes}"
        moved += bool(closes)
    assert moved >= 10, f"only {moved} of 20 clients were on a restarted process"
    status, _ = healthz()
    assert status == 200
