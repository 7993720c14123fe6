"""Plain HTTP on the WebSocket port (`answer_http_requests`): a health check answered by the
game in headless Godot (tests/attack/echo_server.gd --http), asked with Python's own HTTP client
(what a load balancer or an orchestrator's probe does), while WebSocket clients are served on the
same port. Both I/O modes (WSS_IO_MODE)."""

import asyncio
import http.client
import json
import socket

import websockets

from godot_server import GodotServer


def ask(port, method, path, timeout=5.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def test_health_checks_are_answered_by_the_game_beside_websocket_clients(running):
    server = running(GodotServer("--http"))

    async def run():
        clients = [await websockets.connect(f"ws://127.0.0.1:{server.port}/c{i}") for i in range(3)]
        status, headers, body = ask(server.port, "GET", "/healthz")
        assert status == 200, (status, body)
        assert headers["Content-Type"] == "application/json" and headers["Connection"] == "close"
        assert headers["Cache-Control"] == "no-store"
        assert json.loads(body) == {"open": 3, "connected": 3, "listening": True}
        # The WebSocket clients are still served.
        for ws in clients:
            await ws.send("still here")
            assert await asyncio.wait_for(ws.recv(), 5) == "still here"
            await ws.close()
    asyncio.run(run())

    status, headers, body = ask(server.port, "HEAD", "/healthz")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0
    assert ask(server.port, "GET", "/missing")[:1] == (404,)
    status, headers, _ = ask(server.port, "POST", "/healthz")
    assert status == 405 and headers["Allow"] == "GET, HEAD"
    stats = server.wait_stats(lambda s: s["open"] == 0 and s["http"] == 3)
    assert stats["connected"] == 3, "health checks never become clients"


def test_a_thousand_health_checks_leave_nothing_behind(running):
    server = running(GodotServer("--http"))
    for _ in range(1000):
        assert ask(server.port, "GET", "/healthz")[0] == 200
    rss_before, fds_before, _ = server.proc_status()
    for _ in range(1000):
        assert ask(server.port, "GET", "/healthz")[0] == 200
    stats = server.wait_stats(lambda s: s["http"] == 2000)
    assert stats["connected"] == 0 and stats["open"] == 0
    rss, fds, _ = server.proc_status()
    assert fds <= fds_before + 2, (fds_before, fds)
    assert rss < rss_before + 4096, f"RSS grew from {rss_before} to {rss} KiB"


def test_without_the_setting_a_plain_request_gets_400():
    server = GodotServer()
    try:
        status, _, body = ask(server.port, "GET", "/healthz")
        assert status == 400 and b"Upgrade" in body
    finally:
        server.stop()
