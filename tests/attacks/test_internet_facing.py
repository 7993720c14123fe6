"""What a server open to the internet needs, tested against the addon in headless Godot
(tests/attack/echo_server.gd) with Python `websockets` and raw sockets as the clients: the
request's headers as the game sees them, authorization before the upgrade, allowed origins, the
client's real address behind trusted proxies and the PROXY protocol, and the connection caps.
(Descriptor exhaustion is in test_attacks.py.)"""

import json
import socket
import ssl
import struct
import time

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from godot_server import ROOT, GodotServer, UPGRADE, frame, read_head, record


def whoami(ws):
    """The server's view of this client's request."""
    ws.send("whoami?")
    return json.loads(ws.recv(timeout=5))


def refused(url, **kwargs):
    """The HTTP response of a refused upgrade."""
    with pytest.raises(InvalidStatus) as e:
        connect(url, open_timeout=5, **kwargs)
    return e.value.response


@pytest.fixture
def start():
    servers = []

    def make(*args, **kwargs):
        s = GodotServer(*args, **kwargs)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()


# ---- the request as the game sees it


def test_every_header_is_readable(start):
    s = start()
    headers = [("X-Token", "abc"), ("Cookie", "a=1"), ("cookie", "b=2"), ("X-Multi", "one"), ("x-multi", "two")]
    with connect(f"ws://127.0.0.1:{s.port}/room?id=5&name=%C3%A9", additional_headers=headers,
                 user_agent_header="pytest-agent/1") as ws:
        me = whoami(ws)
    assert me["path"] == "/room" and me["query"] == "id=5&name=%C3%A9"
    assert me["resource"] == "/room?id=5&name=%C3%A9"
    h = me["headers"]
    assert h["x-token"] == "abc" and h["user-agent"] == "pytest-agent/1"
    assert h["cookie"] == "a=1; b=2" and me["cookie"] == "a=1; b=2"
    assert h["x-multi"] == "one, two"
    assert h["upgrade"] == "websocket" and "sec-websocket-key" in h
    assert "X-Token: abc" in me["lines"] and "cookie: b=2" in me["lines"]
    assert me["has_origin"] is False and me["protocols"] == [] and me["sni"] == ""
    assert me["address"] == "127.0.0.1" and me["socket_address"] == "127.0.0.1"
    assert me["port"] == me["socket_port"] == me["client_port"] > 0


def test_wss_reports_the_sni_host_name(start):
    s = start("--tls")
    ctx = ssl.create_default_context(cafile=str(ROOT / "godot-project/tests/data/ecdsa.crt"))
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with connect(f"wss://127.0.0.1:{s.port}/", ssl=ctx, server_hostname="play.game.example") as ws:
        me = whoami(ws)
    assert me["sni"] == "play.game.example"


# ---- authorization before the upgrade


def test_accept_and_reject_with_status_body_and_headers(start):
    s = start("--authorize", "token")
    with connect(f"ws://127.0.0.1:{s.port}/", additional_headers={"Authorization": "Bearer good"}) as ws:
        assert ws.response.status_code == 101
        assert ws.response.headers["Set-Cookie"].startswith("session=")
        ws.send("hi")
        assert ws.recv(timeout=5) == "hi"
    r = refused(f"ws://127.0.0.1:{s.port}/", additional_headers={"Authorization": "Bearer bad"})
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == "Bearer"
    assert r.body == b"a valid token is required"
    st = s.wait_stats(lambda st: st["requested"] == 2 and st["disconnected"] == 1)
    assert st["connected"] == 1 and st["cancelled"] == 0, "a refused client is never connected"


def test_a_decision_may_come_in_a_later_frame(start):
    s = start("--authorize", "late")
    t0 = time.monotonic()
    with connect(f"ws://127.0.0.1:{s.port}/", additional_headers={"Authorization": "Bearer good"}) as ws:
        waited = time.monotonic() - t0
        ws.send("x")
        assert ws.recv(timeout=5) == "x"
    assert 0.4 <= waited < 2.0, waited
    t0 = time.monotonic()
    assert refused(f"ws://127.0.0.1:{s.port}/").status_code == 401
    assert time.monotonic() - t0 >= 0.4
    s.wait_stats(lambda st: st["requested"] == 2 and st["connected"] == 1 and st["cancelled"] == 0)


def test_no_decision_by_the_timeout_is_503_and_the_game_is_told(start):
    s = start("--authorize", "never", "--handshake-timeout", "1")
    t0 = time.monotonic()
    r = refused(f"ws://127.0.0.1:{s.port}/")
    waited = time.monotonic() - t0
    assert r.status_code == 503 and 0.9 <= waited < 2.0, (r.status_code, waited)
    # A client that leaves while the game decides: cancelled as well.
    sock = socket.create_connection(("127.0.0.1", s.port), timeout=5)
    sock.sendall(UPGRADE.format(path="").encode())
    s.wait_stats(lambda st: st["requested"] == 2)
    sock.close()
    st = s.wait_stats(lambda st: st["cancelled"] == 2)
    assert st["connected"] == 0 and st["disconnected"] == 0
    record("authorization timeout", handshake_timeout_s=1, answered_503_after_s=round(waited, 2))


def test_origins_outside_the_list_get_403(start):
    s = start("--allowed-origins", "https://game.example,http://localhost:8080")
    url = f"ws://127.0.0.1:{s.port}/"
    r = refused(url, origin="https://evil.example")
    assert r.status_code == 403
    for origin in ("https://game.example", "http://localhost:8080", None):
        with connect(url, origin=origin) as ws:
            assert whoami(ws)["has_origin"] is (origin is not None)
    s.wait_stats(lambda st: st["connected"] == 3 and st["open"] == 0)


# ---- the client's real address


FORGED = [("X-Forwarded-For", "6.6.6.6, 203.0.113.7"), ("X-Real-IP", "6.6.6.6")]


def test_a_forged_forwarded_for_from_an_untrusted_peer_is_ignored(start):
    s = start()
    with connect(f"ws://127.0.0.1:{s.port}/", additional_headers=FORGED) as ws:
        me = whoami(ws)
    assert me["address"] == "127.0.0.1" and me["port"] == me["socket_port"]


def test_a_trusted_proxy_names_the_client(start):
    s = start("--trusted-proxies", "127.0.0.1,10.0.0.0/8")
    with connect(f"ws://127.0.0.1:{s.port}/", additional_headers=FORGED) as ws:
        me = whoami(ws)
    # The right-most address that is not a trusted proxy; X-Forwarded-For has no port.
    assert me["address"] == "203.0.113.7" and me["port"] == 0
    assert me["socket_address"] == "127.0.0.1" and me["socket_port"] > 0
    fwd = [("Forwarded", 'for=6.6.6.6, for="[2001:db8::7]:4711";proto=https, for=10.1.2.3')]
    with connect(f"ws://127.0.0.1:{s.port}/", additional_headers=fwd + FORGED) as ws:
        me = whoami(ws)
    assert me["address"] == "2001:db8::7" and me["port"] == 4711


def proxy_v2(src, sport, dst="10.0.0.1", dport=443):
    """A PROXY protocol v2 header for TCP from (src, sport)."""
    six = ":" in src
    family = 0x21 if six else 0x11
    pack = (lambda a: socket.inet_pton(socket.AF_INET6 if six else socket.AF_INET, a))
    if six and ":" not in dst:
        dst = "2001:db8::1"
    body = pack(src) + pack(dst) + struct.pack(">HH", sport, dport)
    return b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, family]) + struct.pack(">H", len(body)) + body


def raw_whoami(sock):
    sock.sendall(frame(0x1, b"whoami?"))
    buf = b""
    while True:
        chunk = sock.recv(65536)
        assert chunk, "closed before the answer"
        buf += chunk
        n, at = buf[1] & 0x7F, 2
        if n == 126 and len(buf) >= 4:
            n, at = struct.unpack(">H", buf[2:4])[0], 4
        if len(buf) >= 2 and buf[1] & 0x7F != 127 and len(buf) >= at + n:
            assert buf[0] == 0x81, buf[:2]
            return json.loads(buf[at:at + n])


@pytest.mark.parametrize("header, address, port", [
    (b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\r\n", "203.0.113.7", 51234),
    (proxy_v2("2001:db8::7", 4711), "2001:db8::7", 4711),
    (proxy_v2("198.51.100.9", 40000), "198.51.100.9", 40000),
])
def test_proxy_protocol_headers_name_the_client(start, header, address, port):
    s = start("--proxy-protocol")
    sock = socket.create_connection(("127.0.0.1", s.port), timeout=5)
    # The header and the request may come in pieces.
    sock.sendall(header[:7])
    time.sleep(0.05)
    sock.sendall(header[7:] + UPGRADE.format(path="").encode())
    assert read_head(sock).startswith("HTTP/1.1 101 ")
    me = raw_whoami(sock)
    assert (me["address"], me["port"]) == (address, port)
    assert me["socket_address"] == "127.0.0.1"
    sock.close()


def test_proxy_protocol_before_tls(start):
    s = start("--proxy-protocol", "--tls")
    sock = socket.create_connection(("127.0.0.1", s.port), timeout=5)
    sock.sendall(b"PROXY TCP6 2001:db8::9 2001:db8::1 5555 443\r\n")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with connect(f"wss://127.0.0.1:{s.port}/", sock=sock, ssl=ctx, server_hostname="lb.example") as ws:
        me = whoami(ws)
    assert (me["address"], me["port"], me["sni"]) == ("2001:db8::9", 5555, "lb.example")


@pytest.mark.parametrize("data", [
    UPGRADE.format(path="").encode(),                  # no PROXY header at all
    b"PROXY TCP4 not-an-address 10.0.0.1 1 2\r\n",     # a broken one
    b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x05abc",       # v2 with truncated addresses
    b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",   # TLS where the header should be
])
def test_garbage_instead_of_a_proxy_header_is_dropped_unanswered(start, data):
    s = start("--proxy-protocol")
    sock = socket.create_connection(("127.0.0.1", s.port), timeout=5)
    sock.sendall(data)
    try:
        assert sock.recv(100) == b"", "closed without an answer"
    except ConnectionResetError:
        pass
    st = s.wait_stats(lambda st: True)
    assert st["connected"] == 0


def test_with_trusted_proxies_only_they_may_send_a_proxy_header(start):
    """A client reaching the port directly with a PROXY header of its own: refused at once when
    trusted_proxies does not list it; taken when it does."""
    forged = b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\r\n" + UPGRADE.format(path="").encode()
    s = start("--proxy-protocol", "--trusted-proxies", "10.9.9.9")
    sock = socket.create_connection(("127.0.0.1", s.port), timeout=5)
    sock.sendall(forged)
    try:
        assert sock.recv(100) == b"", "closed unanswered"
    except ConnectionResetError:
        pass
    st = s.wait_stats(lambda st: st["refused_conns"] == 1)
    assert st["connected"] == 0
    t = start("--proxy-protocol", "--trusted-proxies", "127.0.0.1")
    sock = socket.create_connection(("127.0.0.1", t.port), timeout=5)
    sock.sendall(forged)
    assert read_head(sock).startswith("HTTP/1.1 101 ")
    assert raw_whoami(sock)["address"] == "203.0.113.7"
    sock.close()


# ---- caps


def test_max_connections_refuses_with_503_beyond_the_cap(start):
    s = start("--max-connections", "3")
    url = f"ws://127.0.0.1:{s.port}/"
    held = [connect(url) for _ in range(3)]
    r = refused(url)
    assert r.status_code == 503 and r.headers["Retry-After"] == "5"
    st = s.wait_stats(lambda st: st["refused_conns"] == 1)
    assert st["connected"] == 3
    held.pop().close()
    s.wait_stats(lambda st: st["open"] == 2)
    with connect(url) as ws:
        ws.send("again")
        assert ws.recv(timeout=5) == "again"
    for ws in held:
        ws.close()


def test_one_address_cannot_hold_every_handshake(start):
    """100 connections from 127.0.0.1 that never send their request (slowloris): 64 (the default
    cap) wait for the handshake deadline, the other 36 are closed at once, and a client from
    another address (127.0.0.2) is served meanwhile."""
    s = start("--handshake-timeout", "5")
    socks = [socket.create_connection(("127.0.0.1", s.port), timeout=5) for _ in range(100)]
    t0 = time.monotonic()
    closed = 0
    for sock in socks:
        sock.settimeout(max(0.01, 1.0 - (time.monotonic() - t0)))
        try:
            if sock.recv(1) == b"":
                closed += 1
        except socket.timeout:
            pass
        except ConnectionResetError:
            closed += 1
    assert closed == 36, closed
    probe = socket.create_connection(("127.0.0.1", s.port), timeout=5, source_address=("127.0.0.2", 0))
    probe.sendall(UPGRADE.format(path="").encode())
    assert read_head(probe).startswith("HTTP/1.1 101 "), "another address is served"
    probe.close()
    st = s.wait_stats(lambda st: st["refused_conns"] == 36)
    for sock in socks:
        sock.close()
    record("handshakes per address", cap=64, connections=100, closed_at_once=closed)


def test_trusted_proxies_are_exempt_from_the_per_address_cap(start):
    s = start("--trusted-proxies", "127.0.0.1", "--max-handshakes-per-address", "4")
    socks = [socket.create_connection(("127.0.0.1", s.port), timeout=5) for _ in range(10)]
    for sock in socks:
        sock.sendall(UPGRADE.format(path="").encode())
    for sock in socks:
        assert read_head(sock).startswith("HTTP/1.1 101 ")
        sock.close()
    st = s.wait_stats(lambda st: st["connected"] == 10)
    assert st["refused_conns"] == 0
