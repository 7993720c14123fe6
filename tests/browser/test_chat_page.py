"""The chat demo's browser page (godot-project/demo/web/chat.html) in headless Chromium: two tabs
and one Godot WebSocketPeer client chat through the demo chat server in headless Godot: text, a
60 KB message, an empty message, non-ASCII text, who is connected, and a server restart that the
page survives (close code shown, reconnection with backoff). A screenshot of the page is kept in
target/screenshots/chat-page.png. And the page loaded from the chat server itself (its own port,
http:// then https://), chatting over that same port (ws://, then wss:// with the test
certificate)."""

import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests/attacks"))
sys.path.insert(0, str(ROOT / "tests/deploy"))
sys.path.insert(0, str(ROOT / "tests/browser"))
from godot_server import godot_path  # noqa: E402
from test_browser import browser  # noqa: E402,F401  (the fixture)
from test_nginx import ChatServer, Nginx, free_port  # noqa: E402

PAGE = ROOT / "godot-project/demo/web/chat.html"
NON_ASCII = "Grüße 🌍 ☃ — ünïcödé 你好"
BIG = 61440


def wait_js(browser, expr, timeout=10.0, what=""):
    """Polls `return <expr>` in the current tab until it is truthy; returns it."""
    deadline = time.monotonic() + timeout
    while True:
        value = browser.execute_script(f"return {expr}")
        if value:
            return value
        if time.monotonic() > deadline:
            state = browser.execute_script("return {status: chat.status, peers: chat.peers.size, "
                                           "messages: chat.messages.map(m => [m.name, (m.text || '').length])}")
            raise AssertionError(f"never true: {what or expr}; page state: {state}")
        time.sleep(0.05)


class GodotClient:
    def __init__(self, url):
        self.proc = subprocess.Popen([godot_path(), "--headless", "--path", str(ROOT / "godot-project"), "-s",
                                      "res://tests/browser/chat_client.gd", "--", url],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines = queue.Queue()
        threading.Thread(target=lambda: [self.lines.put(l.rstrip("\n")) for l in self.proc.stdout], daemon=True).start()

    def expect(self, prefix, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                continue
            if line.startswith(prefix):
                return line
        raise AssertionError(f"the Godot client never printed {prefix!r}")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def test_two_tabs_and_a_godot_client_chat_and_survive_a_restart(browser, running):
    port = free_port()
    server = running(ChatServer("chat", port=port))
    url = f"ws://127.0.0.1:{port}/"
    browser.get(f"{PAGE.as_uri()}?server={url}&name=Ann")
    ann = browser.current_window_handle
    browser.switch_to.new_window("tab")
    browser.get(f"{PAGE.as_uri()}?server={url}&name=Bob")
    bob = browser.current_window_handle
    godot = running(GodotClient(url))
    godot.expect("GODOT OPEN")

    def tab(handle):
        browser.switch_to.window(handle)

    for h in (ann, bob):
        tab(h)
        wait_js(browser, "chat.status === 'connected' && chat.peers.size === 3", what="three connected")
    names = sorted(browser.execute_script("return [...chat.peers.values()].map(p => p.name)"))
    assert names[1:] == ["Ann", "Bob"] and names[0].startswith("#"), names

    def last_text(name):
        return f"chat.messages.length && chat.messages.filter(m => m.name === '{name}').map(m => m.text)"

    # Ann says hello; Bob and the Godot client get it; the Godot client answers.
    tab(ann)
    assert browser.execute_script("return chat.send('hello everyone')")
    tab(bob)
    wait_js(browser, f"({last_text('Ann')} || []).includes('hello everyone')", what="Bob got Ann's hello")
    assert godot.expect("GODOT GOT").endswith(" hello everyone")
    for h in (ann, bob):
        tab(h)
        wait_js(browser, "chat.messages.some(m => m.text === 'héllo from Godot ✓' && m.name.startsWith('#'))",
                what="the Godot client's answer")
    # 60 KB from Bob, an empty message from Ann, non-ASCII from Bob.
    tab(bob)
    assert browser.execute_script(f"return chat.send('x'.repeat({BIG}))")
    tab(ann)
    wait_js(browser, f"chat.messages.some(m => m.name === 'Bob' && m.text.length === {BIG})", what="60 KB")
    assert godot.expect("GODOT GOT").startswith(f"GODOT GOT {BIG} xxx")
    assert browser.execute_script("return chat.send('')")
    tab(bob)
    wait_js(browser, "chat.messages.some(m => m.name === 'Ann' && m.text === '')", what="the empty message")
    assert godot.expect("GODOT GOT") == "GODOT GOT 0 "
    assert browser.execute_script("return chat.send(arguments[0])", NON_ASCII)
    tab(ann)
    wait_js(browser, "chat.messages.some(m => m.name === 'Bob' && m.text === arguments[0])".replace(
        "arguments[0]", repr(NON_ASCII)), what="non-ASCII")
    assert godot.expect("GODOT GOT").endswith(NON_ASCII)
    shots = ROOT / "target/screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    browser.set_window_size(1000, 640)
    browser.save_screenshot(str(shots / "chat-page.png"))

    # The server restarts: the pages show the close code and reconnect by themselves.
    server.stop()
    godot.expect("GODOT CLOSED")
    for h in (ann, bob):
        tab(h)
        wait_js(browser, "chat.status === 'closed' && chat.closeCodes.includes(1006)", what="closed with 1006")
        assert "close code 1006" in browser.execute_script("return document.getElementById('closecode').textContent")
    running(ChatServer("chat", port=port))
    for h in (ann, bob):
        tab(h)
        wait_js(browser, "chat.status === 'connected' && chat.opens === 2 && chat.peers.size === 2", timeout=15,
                what="reconnected, both tabs present")
    tab(ann)
    assert browser.execute_script("return chat.send('back again')")
    tab(bob)
    wait_js(browser, f"({last_text('Ann')} || []).includes('back again')", what="chat after the restart")


@pytest.mark.parametrize("how", ["http-ws", "https-wss", "nginx-https-wss"])
def test_the_page_comes_from_the_chat_server_and_chats_on_the_same_port(browser, running, how):
    """One process serves the page and its WebSocket on one port: directly (ws://, or wss:// with
    the server's own certificate), or behind nginx terminating TLS (deploy's godot-websocket.conf,
    unchanged: one location passes pages and sockets). allowed_origins is the page's own."""
    tls = how != "http-ws"
    port = free_port()
    front = port if how != "nginx-https-wss" else free_port()
    origin = f"{'https' if tls else 'http'}://127.0.0.1:{front}"
    args = ["--allowed-origins", origin]
    if how == "https-wss":
        args += ["--tls-cert", "res://tests/data/ecdsa.crt", "--tls-key", "res://tests/data/ecdsa.key"]
    running(ChatServer("same-origin", port=port, args=args))
    if how == "nginx-https-wss":
        n = running(Nginx(sites=["sites/godot-websocket.conf"], subs=[(r"127\.0\.0\.1:9080", f"127.0.0.1:{port}")],
                          port=front))
        port = n.port
    browser.get(f"{origin}/?name=Ann")  # / leads to /chat.html, keeping the query
    ann = browser.current_window_handle
    assert browser.current_url.startswith(f"{origin}/chat.html?name=Ann"), browser.current_url
    wait_js(browser, "chat.status === 'connected'", what="Ann connected")
    socket_url = browser.execute_script("return chat.socket.url")
    assert socket_url.startswith(f"{'wss' if tls else 'ws'}://127.0.0.1:{port}/?"), socket_url
    # The page's own files, as the browser got them.
    served = browser.execute_script(
        "const r = await fetch('/chat.html', {cache: 'no-store'});"
        "return [r.status, r.headers.get('content-type'), await r.text()]")
    assert served[:2] == [200, "text/html; charset=utf-8"], served[:2]
    assert served[2] == PAGE.read_text(encoding="utf-8"), "the page, byte-exact"
    browser.switch_to.new_window("tab")
    browser.get(f"{origin}/chat.html?name=Bob")
    bob = browser.current_window_handle
    wait_js(browser, "chat.status === 'connected' && chat.peers.size === 2", what="Bob sees two")
    browser.switch_to.window(ann)
    assert browser.execute_script("return chat.send('same origin, same port')")
    browser.switch_to.window(bob)
    wait_js(browser, "chat.messages.some(m => m.name === 'Ann' && m.text === 'same origin, same port')",
            what="Bob got Ann's message")
    browser.close()
    browser.switch_to.window(ann)


@pytest.mark.parametrize("setting", ["shared", "dedicated"])
def test_browsers_negotiate_compression_and_godot_clients_stay_uncompressed(browser, running, setting):
    """With compression = COMPRESSION_SHARED, and COMPRESSION_DEDICATED (context takeover both ways:
    Chromium keeps its compressor across messages, limited to the server's 11-bit window):
    Chromium negotiates permessage-deflate (the page's WebSocket.extensions says so), 60 KB of
    repetitive text arrives intact both ways between two tabs, and a Godot WebSocketPeer client in
    the same room (which offers no extension) gets it too, uncompressed; with context takeover,
    a run of similar lines (each referring to the ones before) arrives intact both ways."""
    port = free_port()
    running(ChatServer("deflate", port=port, args=("--compression", setting)))
    origin = f"http://127.0.0.1:{port}"
    browser.get(f"{origin}/chat.html?name=Ann")
    ann = browser.current_window_handle
    wait_js(browser, "chat.status === 'connected'", what="Ann connected")
    extensions = browser.execute_script("return chat.socket.extensions")
    assert extensions.startswith("permessage-deflate"), extensions
    if setting == "dedicated":
        assert extensions == "permessage-deflate; server_max_window_bits=11; client_max_window_bits=11", extensions
    else:
        assert "server_no_context_takeover" in extensions, extensions
    browser.switch_to.new_window("tab")
    browser.get(f"{origin}/chat.html?name=Bob")
    bob = browser.current_window_handle
    godot = running(GodotClient(f"ws://127.0.0.1:{port}/"))
    godot.expect("GODOT OPEN")
    wait_js(browser, "chat.status === 'connected' && chat.peers.size === 3", what="three connected")
    text = "compress me, " * 4700
    browser.switch_to.window(ann)
    assert browser.execute_script("return chat.send(arguments[0])", text)
    browser.switch_to.window(bob)
    wait_js(browser, f"chat.messages.some(m => m.name === 'Ann' && m.text.length === {len(text)})", what="Bob got 60 KB")
    assert browser.execute_script("return chat.messages.find(m => m.name === 'Ann').text") == text
    assert godot.expect("GODOT GOT").startswith(f"GODOT GOT {len(text)} compress me")
    assert browser.execute_script("return chat.send(arguments[0])", text[::-1])
    browser.switch_to.window(ann)
    wait_js(browser, f"chat.messages.some(m => m.name === 'Bob' && m.text.length === {len(text)})", what="Ann got it back")
    assert browser.execute_script("return chat.messages.find(m => m.name === 'Bob').text") == text[::-1]
    lines = [f"line {i}: the blue team holds the north arena, {i * 7} points, player{i % 5} scores" for i in range(30)]
    for line in lines:
        assert browser.execute_script("return chat.send(arguments[0])", line)
    browser.switch_to.window(bob)
    wait_js(browser, f"chat.messages.filter(m => m.name === 'Ann' && m.text.startsWith('line ')).length === {len(lines)}",
            what="Bob got every line")
    got = browser.execute_script("return chat.messages.filter(m => m.name === 'Ann' && m.text.startsWith('line ')).map(m => m.text)")
    assert got == lines
    for line in lines:
        assert browser.execute_script("return chat.send(arguments[0])", line.upper())
    browser.switch_to.window(ann)
    wait_js(browser, f"chat.messages.filter(m => m.name === 'Bob' && m.text.startsWith('LINE ')).length === {len(lines)}",
            what="Ann got every line back")
    browser.switch_to.window(bob)
    browser.close()
    browser.switch_to.window(ann)
