"""Static files on the WebSocket's port (`mount`): headless Godot serving a directory
(tests/attack/echo_server.gd --mount DIR) while echoing WebSocket messages on the same port.
Files come back byte-exact (hashes), revalidation gets 304, HEAD no body; path traversal in 24
forms is refused; a request trickled byte by byte (slowloris) and an idle keep-alive connection
are cut at handshake_timeout; 50 clients downloading a 100 MiB file at once while 100 WebSocket
clients chat: RSS stays bounded and the chat's round trips stay short. Both I/O modes
(WSS_IO_MODE)."""

import asyncio
import hashlib
import http.client
import os
import socket
import statistics
import threading
import time

import websockets

from godot_server import GodotServer, read_head

MiB = 1024 * 1024


def site(tmp_path, big_mib=0):
    """A directory with a page, a wasm file, a precompressed script, a 20 MiB file, and optionally a
    `big_mib` MiB file; a secret file beside it (outside) and a symbolic link to it (inside)."""
    web = tmp_path / "web"
    (web / "sub").mkdir(parents=True)
    (web / "index.html").write_text("<!doctype html><p>hello</p>")
    (web / "game.wasm").write_bytes(b"\0asm\1\0\0\0" + os.urandom(1000))
    (web / "game.js").write_text("console.log('plain');" * 100)
    (web / "game.js.gz").write_bytes(b"\x1f\x8b precompressed")
    (web / "sub" / "index.html").write_text("sub page")
    (web / "data.bin").write_bytes(os.urandom(20 * MiB))
    (tmp_path / "secret.txt").write_text("SECRET")
    (web / "link.txt").symlink_to(tmp_path / "secret.txt")
    if big_mib:
        block = os.urandom(MiB)
        with open(web / "big.bin", "wb") as f:
            for _ in range(big_mib):
                f.write(block)
    return web


def get(port, path, headers=None, method="GET", conn=None):
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request(method, path, headers=headers or {})
    r = c.getresponse()
    body = r.read()
    if conn is None:
        c.close()
    return r.status, dict(r.getheaders()), body


def raw(port, request, timeout=5.0):
    """Sends `request` as bytes on a new socket; returns everything until the server closes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(request)
    out = b""
    try:
        while chunk := s.recv(65536):
            out += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    s.close()
    return out


def test_files_come_back_byte_exact_with_validators_head_and_keep_alive(running, tmp_path):
    web = site(tmp_path)
    server = running(GodotServer("--mount", str(web)))
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    for name in ("index.html", "game.wasm", "data.bin", "sub/index.html"):
        status, headers, body = get(server.port, "/" + name, conn=conn)
        assert status == 200, (name, status)
        assert hashlib.sha256(body).digest() == hashlib.sha256((web / name).read_bytes()).digest(), name
        assert headers["Connection"] == "keep-alive"
    status, headers, body = get(server.port, "/game.wasm", conn=conn)
    assert headers["Content-Type"] == "application/wasm"
    etag, modified = headers["ETag"], headers["Last-Modified"]
    assert get(server.port, "/game.wasm", {"If-None-Match": etag}, conn=conn)[0] == 304
    assert get(server.port, "/game.wasm", {"If-Modified-Since": modified}, conn=conn)[0] == 304
    status, headers, body = get(server.port, "/data.bin", method="HEAD", conn=conn)
    assert status == 200 and body == b"" and int(headers["Content-Length"]) == 20 * MiB
    # A precompressed file for a client that takes gzip; the file itself for one that does not.
    status, headers, body = get(server.port, "/game.js", {"Accept-Encoding": "gzip, deflate"}, conn=conn)
    assert headers["Content-Encoding"] == "gzip" and body == (web / "game.js.gz").read_bytes()
    status, headers, body = get(server.port, "/game.js", {"Accept-Encoding": "identity"}, conn=conn)
    assert "Content-Encoding" not in headers and body == (web / "game.js").read_bytes()
    conn.close()
    stats = server.wait_stats(lambda s: True)
    assert stats["connected"] == 0, "files never make clients"


# Each must be refused (400, 403 or 404) and never return the secret beside the directory.
TRAVERSALS = [
    "/../secret.txt", "/../../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E/secret.txt",
    "/.%2e/secret.txt", "/%2e./secret.txt", "/..%2fsecret.txt", "/..%2Fsecret.txt",
    "/%2e%2e%2fsecret.txt", "/sub/../../secret.txt", "/sub/%2e%2e/%2e%2e/secret.txt",
    "/..\\secret.txt", "/..%5csecret.txt", "/%5c..%5csecret.txt", "/link.txt",
    "/%252e%252e/secret.txt", "/..%00/secret.txt", "/%00", "/%c0%ae%c0%ae/secret.txt",
    "/.%c0%ae/secret.txt", "/C:/Windows/win.ini", "/c:%5cwindows%5cwin.ini",
    "//etc/passwd", "/%2fetc%2fpasswd", "/.hidden",
]


def test_path_traversal_in_every_form_is_refused(running, tmp_path):
    web = site(tmp_path)
    (web / ".hidden").write_text("dot file")
    server = running(GodotServer("--mount", str(web)))
    assert len(TRAVERSALS) >= 20
    for path in TRAVERSALS:
        out = raw(server.port, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode("latin-1"))
        status = int(out[9:12])
        assert status in (400, 403, 404), (path, out[:200])
        assert b"SECRET" not in out and b"dot file" not in out and b"root:" not in out, path
    # An absolute path on disk is just a path under the mount.
    out = raw(server.port, f"GET {tmp_path / 'secret.txt'} HTTP/1.1\r\n\r\n".encode())
    assert int(out[9:12]) == 404 and b"SECRET" not in out
    status, headers, _ = get(server.port, "/index.html", method="POST")
    assert status == 405 and headers["Allow"] == "GET, HEAD"


def test_a_trickled_request_and_an_idle_keep_alive_connection_are_cut_at_the_deadline(running, tmp_path):
    web = site(tmp_path)
    server = running(GodotServer("--mount", str(web), "--handshake-timeout", "1.0"))
    s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    t0 = time.monotonic()
    cut = None
    for b in b"GET /index.html HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
        try:
            s.send(bytes([b]))
        except (BrokenPipeError, ConnectionResetError):
            cut = time.monotonic() - t0
            break
        time.sleep(0.05)
        if time.monotonic() - t0 > 3:
            break
    if cut is None:
        s.settimeout(3)
        try:
            assert s.recv(100) == b""
        except ConnectionResetError:
            pass
        cut = time.monotonic() - t0
    assert 0.9 <= cut <= 2.0, f"the trickled request was cut after {cut:.2f} s"
    s.close()
    # Keep-alive: after an answer, the next request must come within handshake_timeout.
    s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    s.sendall(b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n")
    head = read_head(s)
    assert head.startswith("HTTP/1.1 200 ") and "keep-alive" in head
    s.recv(100)
    t0 = time.monotonic()
    assert s.recv(100) == b""
    idle = time.monotonic() - t0
    assert 0.8 <= idle <= 2.0, f"idle keep-alive closed after {idle:.2f} s"
    s.close()


def test_fifty_100_mib_downloads_beside_a_hundred_chatting_clients(running, tmp_path):
    web = site(tmp_path, big_mib=100)
    server = running(GodotServer("--mount", str(web)))
    expected = hashlib.sha1((web / "big.bin").read_bytes()).hexdigest()
    rss_before, _, _ = server.proc_status()
    results = {}
    peak = [rss_before]

    def download(i):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        h = hashlib.sha1() if i < 5 else None
        buf = bytearray(MiB)
        got = 0
        head = b""
        while True:
            n = s.recv_into(buf)
            if n == 0:
                break
            data = memoryview(buf)[:n]
            if not head.endswith(b"\r\n\r\n") and b"\r\n\r\n" not in head:
                head += bytes(data)
                if b"\r\n\r\n" not in head:
                    continue
                head, _, rest = head.partition(b"\r\n\r\n")
                head += b"\r\n\r\n"
                data = rest
            got += len(data)
            if h:
                h.update(data)
        s.close()
        results[i] = (head.split(b"\r\n")[0], got, h.hexdigest() if h else None)

    def watch(stop):
        while not stop.is_set():
            peak[0] = max(peak[0], server.proc_status()[0])
            time.sleep(0.1)

    async def chat():
        clients = [await websockets.connect(f"ws://127.0.0.1:{server.port}/c{i}") for i in range(100)]
        trips = []
        for round_ in range(20):
            t0 = time.monotonic()
            for ws in clients:
                await ws.send(f"r{round_}")
            for ws in clients:
                assert await asyncio.wait_for(ws.recv(), 10) == f"r{round_}"
            trips.append((time.monotonic() - t0) * 1000)
            await asyncio.sleep(0.05)
        for ws in clients:
            await ws.close()
        return trips

    quiet = asyncio.run(chat())
    stop = threading.Event()
    threading.Thread(target=watch, args=(stop,), daemon=True).start()
    threads = [threading.Thread(target=download, args=(i,)) for i in range(50)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    busy = asyncio.run(chat())
    for t in threads:
        t.join(300)
    took = time.monotonic() - t0
    stop.set()
    assert len(results) == 50
    for i, (status, got, digest) in results.items():
        assert status == b"HTTP/1.1 200 OK", (i, status)
        assert got == 100 * MiB, (i, got)
        if digest:
            assert digest == expected, i
    grew = (peak[0] - rss_before) / 1024
    p50_quiet, p50_busy = statistics.median(quiet), statistics.median(busy)
    worst = max(busy)
    print(f"50 x 100 MiB in {took:.1f} s; RSS +{grew:.1f} MiB at most; a chat round of 100 clients: "
          f"p50 {p50_quiet:.1f} ms quiet, {p50_busy:.1f} ms during the downloads (worst {worst:.1f} ms)")
    # Each download holds at most max(outbound_buffer_size, 16 KiB) (64 KiB here) plus its
    # connection: 50 of them, a few MiB; the bound leaves room for the allocator and the chat.
    assert grew < 32, f"RSS grew by {grew:.1f} MiB during the downloads"
    # The chat is not held up by the downloads: each connection's service queues at most 1 MiB of
    # a file per turn of the I/O loop (measured here: about the same round trips as without them).
    assert p50_busy < 2 * p50_quiet + 50, (p50_quiet, p50_busy)
    assert worst < 500, f"a chat round took {worst:.0f} ms during the downloads"
