"""A real browser (Debian's headless Chromium, driven by Selenium) against the addon in headless
Godot, for what only a browser shows: the `Origin` it sends (allowed_origins), the cookies it sends
and stores (authorization with Set-Cookie), and an idle browser connection behind nginx, which
sends no pings of its own. Pages are served by a local HTTP server so that they have an origin."""

import http.server
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests/attacks"))
sys.path.insert(0, str(ROOT / "tests/deploy"))
from godot_server import GodotServer  # noqa: E402
from test_nginx import Nginx  # noqa: E402

# Opens a WebSocket from the page and reports what happened: the whoami answer if it opened, else
# the close code. arguments: url, then the callback Selenium adds.
OPEN_AND_ASK = """
const [url, done] = [arguments[0], arguments[arguments.length - 1]];
const ws = new WebSocket(url);
let opened = false;
ws.onopen = () => { opened = true; ws.send("whoami?"); };
ws.onmessage = (e) => { done({opened, whoami: JSON.parse(e.data)}); ws.close(); };
ws.onclose = (e) => done({opened, code: e.code});
"""

# Opens a WebSocket, then stays silent for `idle` ms; reports whether it is still open and echoes.
IDLE = """
const [url, idle, done] = [arguments[0], arguments[1], arguments[arguments.length - 1]];
const ws = new WebSocket(url);
let closedAt = null;
const t0 = performance.now();
ws.onclose = (e) => { closedAt = {code: e.code, after_ms: Math.round(performance.now() - t0)}; };
ws.onopen = () => setTimeout(() => {
  if (closedAt) { done({closed: closedAt}); return; }
  ws.onmessage = (e) => { done({open: e.data}); ws.close(); };
  ws.send("still here");
}, idle);
setTimeout(() => done({timeout: true, closed: closedAt}), idle + 5000);
"""


@pytest.fixture(scope="module")
def browser():
    chromium, driver = subprocess.run([str(ROOT / "scripts/chromium.sh")], check=True, capture_output=True,
                                      text=True).stdout.split()
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--ignore-certificate-errors"):
        opts.add_argument(arg)
    b = webdriver.Chrome(service=Service(driver), options=opts)
    b.set_script_timeout(20)
    yield b
    b.quit()


@pytest.fixture(scope="module")
def pages():
    """An HTTP server for blank pages, reachable as two origins: localhost and 127.0.0.1."""
    class Blank(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"<!doctype html><title>test page</title>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Blank)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd.server_address[1]
    httpd.shutdown()


def test_only_allowed_origins_connect(browser, pages, running):
    allowed = f"http://localhost:{pages}"
    s = running(GodotServer("--allowed-origins", allowed))
    url = f"ws://127.0.0.1:{s.port}/"
    browser.get(f"{allowed}/page")
    ok = browser.execute_async_script(OPEN_AND_ASK, url)
    assert ok["opened"] and ok["whoami"]["headers"]["origin"] == allowed, ok
    browser.get(f"http://127.0.0.1:{pages}/page")  # the same pages, another origin
    refused = browser.execute_async_script(OPEN_AND_ASK, url)
    assert refused == {"opened": False, "code": 1006}, refused
    st = s.wait_stats(lambda st: st["connected"] == 1 and st["open"] == 0)
    assert st["disconnected"] == 1


def test_cookies_go_with_the_request_and_set_cookie_is_stored(browser, pages, running):
    s = running(GodotServer("--authorize", "token"))
    browser.get(f"http://127.0.0.1:{pages}/page")
    browser.execute_script("document.cookie = 'player=ann; path=/'")
    base = f"ws://127.0.0.1:{s.port}/"
    refused = browser.execute_async_script(OPEN_AND_ASK, base + "?token=bad")
    assert refused == {"opened": False, "code": 1006}, refused
    first = browser.execute_async_script(OPEN_AND_ASK, base + "?token=good")
    assert first["opened"], first
    # The page's cookie (cookies do not depend on the port) went with the upgrade request.
    assert first["whoami"]["cookie"] == "player=ann", first
    # accept_upgrade's Set-Cookie (HttpOnly: invisible to the page) is sent on the next request.
    second = browser.execute_async_script(OPEN_AND_ASK, base + "?token=good")
    cookies = dict(c.split("=", 1) for c in second["whoami"]["cookie"].split("; "))
    assert cookies["player"] == "ann" and cookies["session"].isdigit(), second
    assert "session" not in browser.execute_script("return document.cookie")
    st = s.wait_stats(lambda st: st["requested"] == 3 and st["connected"] == 2 and st["open"] == 0)
    assert st["cancelled"] == 0


def test_an_idle_browser_behind_nginx_stays_connected_with_the_heartbeat(browser, pages, running):
    """nginx's proxy_read_timeout scaled to 3 s and the heartbeat to 1 s (defaults: 60 s and 20 s):
    a browser that sends nothing for 7 s keeps its connection, and loses it without the heartbeat."""
    browser.get(f"http://127.0.0.1:{pages}/page")
    results = {}
    for heartbeat in ("1", "0"):
        g = running(GodotServer("--heartbeat", heartbeat))
        n = running(Nginx(sites=["sites/godot-websocket.conf"],
                        subs=[(r"127\.0\.0\.1:9080", f"127.0.0.1:{g.port}"),
                              (r"proxy_read_timeout \d+s", "proxy_read_timeout 3s")]))
        results[heartbeat] = browser.execute_async_script(IDLE, f"wss://127.0.0.1:{n.port}/", 7000)
    assert results["1"] == {"open": "still here"}, results
    closed = results["0"].get("closed")
    assert closed and closed["code"] == 1006 and 2500 <= closed["after_ms"] <= 5000, results
    print(json.dumps(results))
