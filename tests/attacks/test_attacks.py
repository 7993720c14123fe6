"""The server attacked as the open internet would, each attack with its expected outcome: the
addon in headless Godot (tests/attack/echo_server.gd), raw sockets and Python `websockets` as
clients. After every attack the server's books must balance (every client that connected was
reported gone exactly once) and a well-behaved client must still be served.

(Freeing or stopping the server inside each of its handlers is
godot-project/tests/suites/free_in_handler_test.gd.)
"""

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import struct
import threading
import time
from pathlib import Path

import pytest
import websockets

from godot_server import GodotServer, UPGRADE, close_code, frame, inline_io, raw_client, read_frames, read_head, record


@pytest.fixture(scope="module")
def server():
    # No per-address handshake cap: these attacks come from one address and test what the
    # deadlines and limits do on their own (test_internet_facing.py tests the cap).
    s = GodotServer("--handshake-timeout", "2", "--partial-timeout", "1", "--max-handshakes-per-address", "0")
    yield s
    s.stop()


def echo_ok(port, payload="probe", timeout=5.0):
    """A well-behaved client connects, gets its message echoed, and closes cleanly."""
    async def run():
        async with websockets.connect(f"ws://127.0.0.1:{port}/", open_timeout=timeout) as ws:
            await ws.send(payload)
            assert await asyncio.wait_for(ws.recv(), timeout) == payload
    asyncio.run(run())


def recv_exactly(sock, n, timeout=10.0):
    """The next `n` bytes from the server; fails if it closes first."""
    sock.settimeout(timeout)
    got = b""
    while len(got) < n:
        chunk = sock.recv(n - len(got))
        assert chunk, f"closed after {len(got)} of {n} bytes"
        got += chunk
    return got


def balanced(server, timeout=10.0):
    """Every client that connected has been reported gone."""
    return server.wait_stats(lambda s: s["open"] == 0 and s["connected"] == s["disconnected"], timeout)


@pytest.fixture(autouse=True)
def books_balance_after_each_test(request):
    """After every test on the shared server, every client it connected has been reported gone:
    each abuse is checked on its own, whatever ran before it."""
    yield
    if "server" in request.fixturenames:
        balanced(request.getfixturevalue("server"))


# ---- the HTTP upgrade


UPGRADE_CASES = [
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 17000 + b"\r\n\r\n", 431),
    (b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(100)) + b"\r\n", 431),
    (b"GET /" + b"a" * 20000, 431),  # a request line that never ends
    (b"POST / HTTP/1.1\r\nHost: x\r\n\r\n", 405),
    (UPGRADE.format(path="").replace("Version: 13", "Version: 8").encode(), 426),
    (UPGRADE.format(path="").replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "").encode(), 400),
    (UPGRADE.format(path="").replace("Upgrade: websocket\r\n", "").encode(), 400),
    (UPGRADE.format(path="").replace("HTTP/1.1", "HTTP/1.0").encode(), 400),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 32 + b"\r\n\r\n", 400),  # TLS to ws://
]
UPGRADE_IDS = ["17 KiB header", "100 headers", "endless request line", "POST", "version 8", "no key",
               "no Upgrade", "HTTP/1.0", "TLS hello"]


@pytest.mark.parametrize("request_bytes,status", UPGRADE_CASES, ids=UPGRADE_IDS)
def test_bad_and_oversized_upgrade_requests_get_their_status(server, request_bytes, status):
    s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    s.sendall(request_bytes)
    head = read_head(s)
    assert head.startswith(f"HTTP/1.1 {status} "), head
    length = int(re.search(r"\r\nContent-Length: (\d+)\r\n", head).group(1))
    body = b""
    while len(body) < length:
        chunk = s.recv(length - len(body))
        assert chunk, "the whole body comes"
        body += chunk
    assert length > 0, "the body says what was wrong"
    assert s.recv(1) == b"", "the server closes after refusing"
    s.close()
    echo_ok(server.port)


def test_slowloris_is_dropped_at_the_deadline_while_others_are_served(server):
    """300 clients trickle their request a header every 0.3 s; each is dropped 2 s (the handshake
    deadline) after it connected, however much it sends, and a probe is served meanwhile."""
    n = 300
    socks = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(n)]
    started = time.monotonic()
    for s in socks:
        s.sendall(b"GET / HTTP/1.1\r\n")
        s.setblocking(False)
    closed_at = {}
    probe_done = []

    def probe():
        time.sleep(0.5)
        t0 = time.monotonic()
        echo_ok(server.port)
        probe_done.append(time.monotonic() - t0)

    t = threading.Thread(target=probe)
    t.start()
    while len(closed_at) < n and time.monotonic() - started < 6:
        for i, s in enumerate(socks):
            if i in closed_at:
                continue
            try:
                if s.recv(1024) == b"":
                    closed_at[i] = time.monotonic() - started
                    continue
            except BlockingIOError:
                pass
            except ConnectionResetError:
                closed_at[i] = time.monotonic() - started
                continue
            try:
                s.send(b"X-Slow: 1\r\n")
            except (BrokenPipeError, ConnectionResetError):
                closed_at[i] = time.monotonic() - started
        time.sleep(0.3)
    t.join()
    for s in socks:
        s.close()
    assert len(closed_at) == n, f"{n - len(closed_at)} slow clients were never dropped"
    assert min(closed_at.values()) >= 1.9 and max(closed_at.values()) <= 3.5, \
        (min(closed_at.values()), max(closed_at.values()))
    assert probe_done and probe_done[0] < 1.0, f"probe took {probe_done}"
    record("slowloris", clients=n, first_drop_s=round(min(closed_at.values()), 2),
           last_drop_s=round(max(closed_at.values()), 2), probe_s=round(probe_done[0], 3))
    assert server.stats["open"] == 0, "slow clients were never connected"


# ---- frames


def failed_with(port, data, expected):
    s = raw_client(port)
    s.sendall(data)
    frames = read_frames(s)
    s.close()
    assert close_code(frames) == expected, frames


TEXT_START = frame(0x1, b"abc", fin=False)


FRAME_CASES = [
    # (what, bytes after the upgrade, the close code expected)
    ("length 2^63-1", frame(0x2, length=(1 << 63) - 1), 1009),
    ("length over the limit", frame(0x2, length=70000), 1009),
    ("fragments past the limit", TEXT_START + b"".join(frame(0x0, b"x" * 100, fin=False) for _ in range(700)), 1009),
    ("invalid UTF-8", frame(0x1, b"\xff\xfe"), 1007),
    ("invalid UTF-8 across fragments", frame(0x1, b"\xe2\x82", fin=False) + frame(0x0, b"\x28"), 1007),
    ("reserved opcode 3", frame(0x3), 1002),
    ("reserved opcode 7", frame(0x7, b"x"), 1002),
    ("reserved control opcode 11", frame(0xB), 1002),
    ("reserved control opcode 15", frame(0xF, b"x"), 1002),
    ("unmasked frame", frame(0x2, b"abc", mask=False), 1002),
    ("RSV1 without an extension", frame(0x1, b"abc", rsv=4), 1002),
    ("RSV3", frame(0x2, b"abc", rsv=1), 1002),
    ("ping over 125 bytes", frame(0x9, b"p" * 126), 1002),
    ("fragmented ping", frame(0x9, b"p", fin=False), 1002),
    ("continuation without a start", frame(0x0, b"x"), 1002),
    ("a new message inside a fragmented one", TEXT_START + frame(0x1, b"x"), 1002),
    ("close with a 1-byte payload", frame(0x8, b"\x03"), 1002),
    ("close code 1005 on the wire", frame(0x8, struct.pack(">H", 1005)), 1002),
    ("close code 999", frame(0x8, struct.pack(">H", 999)), 1002),
]


@pytest.mark.parametrize("data,code", [c[1:] for c in FRAME_CASES], ids=[c[0] for c in FRAME_CASES])
def test_frame_abuse_gets_its_close_code(server, data, code):
    failed_with(server.port, data, code)
    echo_ok(server.port)


def test_a_flood_of_empty_fragments_is_one_message(server):
    s = raw_client(server.port)
    s.sendall(TEXT_START + frame(0x0, b"", fin=False) * 100_000 + frame(0x0, b"def"))
    assert recv_exactly(s, 8) == b"\x81\x06abcdef"
    s.close()


def test_a_message_left_unfinished_is_closed_with_1008(server):
    """65,534 of a 65,535-byte message, then silence: after partial_message_timeout (1 s here)
    without more of it, the client is closed with 1008 rather than held forever."""
    s = raw_client(server.port)
    s.sendall(frame(0x2, b"x" * 65535)[:-1])
    t0 = time.monotonic()
    frames = read_frames(s, timeout=10)
    elapsed = time.monotonic() - t0
    s.close()
    assert close_code(frames) == 1008, frames
    assert 0.9 <= elapsed < 3.0, elapsed
    record("unfinished message", timeout_s=1, closed_after_s=round(elapsed, 2))


def test_a_slow_message_that_keeps_coming_is_not_cut(server):
    """A message trickled in pieces, each within the timeout, arrives whole and is echoed."""
    s = raw_client(server.port)
    data = frame(0x2, b"y" * 3000)
    for i in range(0, len(data), 1000):
        s.sendall(data[i:i + 1000])
        time.sleep(0.5)
    got = recv_exactly(s, 3004)
    assert got[:4] == b"\x82\x7e\x0b\xb8" and got[4:] == b"y" * 3000
    s.close()


# ---- floods


def test_ping_flood_from_a_client_that_never_reads_is_bounded(server):
    """A client sends 125-byte pings as fast as it can and never reads: the server stops reading
    it once its answers back up, its memory stays put, and other clients are served quickly."""
    rss_before = server.proc_status()[0]
    flooder = raw_client(server.port)
    flooder.settimeout(0.5)
    ping = frame(0x9, b"p" * 125) * 1000
    stop = time.monotonic() + 6
    sent = 0
    latencies = []

    def probe():
        async def run():
            async with websockets.connect(f"ws://127.0.0.1:{server.port}/") as ws:
                while time.monotonic() < stop:
                    t0 = time.monotonic()
                    await ws.send("x")
                    await ws.recv()
                    latencies.append(time.monotonic() - t0)
                    await asyncio.sleep(0.02)
        asyncio.run(run())

    t = threading.Thread(target=probe)
    t.start()
    while time.monotonic() < stop:
        try:
            flooder.sendall(ping)
            sent += len(ping)
        except socket.timeout:
            pass  # the server is not reading: that is the point
    t.join()
    rss_after = server.proc_status()[0]
    flooder.close()
    assert sent < 64 << 20, f"the server took {sent >> 20} MiB of pings it could not answer"
    assert rss_after - rss_before < 32 * 1024, f"RSS grew by {(rss_after - rss_before) >> 10} MiB"
    latencies.sort()
    assert len(latencies) > 50
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    record("ping flood", seconds=6, pings_taken_mib=round(sent / 2**20, 2),
           rss_growth_mib=round((rss_after - rss_before) / 1024, 1), probe_p99_ms=round(p99 * 1000, 1),
           probe_round_trips=len(latencies))
    assert p99 < 0.25, f"other clients' p99 round trip {p99 * 1000:.0f} ms"
    balanced(server)


def test_hit_and_run_clients_are_all_reported():
    """200 clients send a message and vanish without a Close frame, 100 with a FIN and 100 with a
    reset, to a game that reads every message and answers none (an echo would provoke a reset and
    hide a lost FIN). Every one is reported gone."""
    server = GodotServer("--no-reply")
    try:
        for i in range(200):
            s = raw_client(server.port)
            s.sendall(frame(0x1, b"hit") + frame(0x2, b"run"))
            if i % 2:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                s.shutdown(socket.SHUT_WR)
            s.close()
        stats = server.wait_stats(lambda s: s["connected"] == 200 and s["open"] == 0)
        assert stats["disconnected"] == 200 and stats["messages"] >= 200
        record("hit and run", clients=200, reported_gone=stats["disconnected"])
    finally:
        server.stop()


def test_clients_with_a_full_queue_that_vanish_are_reported():
    """The game never reads: each client fills its inbound queue (so the server stops reading it)
    and then resets. The reset is seen although nothing reads the socket any more."""
    s = GodotServer("--no-read", "--limit", "1000")
    try:
        for i in range(150):
            c = raw_client(s.port)
            c.sendall(b"".join(frame(0x2, bytes([k]) * 400) for k in range(10)))
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.close()
        stats = s.wait_stats(lambda st: st["connected"] == 150 and st["open"] == 0)
        assert stats["disconnected"] == 150
        record("full queue, then reset", clients=150, reported_gone=stats["disconnected"])
    finally:
        s.stop()


def test_slow_readers_with_a_large_backlog_cost_little_cpu():
    """8 clients each have 30 MiB echoed back to them (32 MiB buffers) and read 4 KiB every 2 ms.
    The I/O thread's cost must follow what is written, not the size of the backlog (it moved the
    unwritten rest of each buffer to its front on every write, and retried blocked sockets every
    turn). With inline I/O that work is on the main thread: its share is measured against its
    own share before the clients came (the idle game loop)."""
    s = GodotServer("--limit", str(32 << 20))
    io_thread = None if inline_io() else "websocket-serve"
    try:
        names = {Path(f"/proc/{s.proc.pid}/task/{t}/comm").read_text().strip()
                 for t in os.listdir(f"/proc/{s.proc.pid}/task")}
        assert ("websocket-serve" in names) != inline_io(), f"the I/O thread exists only if not inline: {names}"
        idle0, t0 = s.thread_cpu_seconds(io_thread), time.monotonic()
        time.sleep(2)
        idle = (s.thread_cpu_seconds(io_thread) - idle0) / (time.monotonic() - t0)
        clients = [raw_client(s.port, rcvbuf=4096) for _ in range(8)]
        chunk = frame(0x2, b"z" * 65536)
        stop = threading.Event()

        def slow_reader(c):
            for _ in range(480):  # 30 MiB in 64 KiB messages
                c.sendall(chunk)
            c.settimeout(0.5)
            while not stop.is_set():
                try:
                    c.recv(4096)
                except socket.timeout:
                    pass
                time.sleep(0.002)

        threads = [threading.Thread(target=slow_reader, args=(c,)) for c in clients]
        for t in threads:
            t.start()
        s.wait_stats(lambda st: st["messages"] >= 8 * 480, timeout=60)
        io0, t0 = s.thread_cpu_seconds(io_thread), time.monotonic()
        time.sleep(5)
        share = (s.thread_cpu_seconds(io_thread) - io0) / (time.monotonic() - t0) - idle
        stop.set()
        for t in threads:
            t.join()
        for c in clients:
            c.close()
        record("slow readers" + (" (inline I/O)" if inline_io() else ""), clients=8, backlog_mib_each=30,
               io_cpu_share_over_idle=round(share, 3), idle_share=round(idle, 3))
        # The code before the fix used 11 % here (54 % in the measurement). The fixed code
        # measures 0.6-5.4 % from run to run on 2 vCPUs (one wake and write per reader's 4 KiB read:
        # ~4,000 a second), so the bound leaves room for that and still catches the old cost.
        assert share < 0.08, f"the I/O thread used {share:.0%} of a core"
        assert s.stats["refused"] == 0
    finally:
        s.stop()


FROZEN_CLIENT = """
import asyncio, sys, websockets
async def main():
    async with websockets.connect(sys.argv[1], ping_interval=None) as ws:
        print("open", flush=True)
        await asyncio.sleep(3600)
asyncio.run(main())
"""


def test_a_frozen_client_is_dropped_by_the_heartbeat():
    """A client process stopped with SIGSTOP keeps its socket open and answers nothing: with a
    0.5 s heartbeat it is reported gone within about two intervals, while a healthy client that
    answers pings (Python websockets does) stays."""
    s = GodotServer("--heartbeat", "0.5")
    frozen = subprocess.Popen([sys.executable, "-c", FROZEN_CLIENT, f"ws://127.0.0.1:{s.port}/"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert frozen.stdout.readline().strip() == "open"
        s.wait_stats(lambda st: st["connected"] == 1)

        async def healthy_and_quiet():
            async with websockets.connect(f"ws://127.0.0.1:{s.port}/", ping_interval=None) as ws:
                os.kill(frozen.pid, signal.SIGSTOP)
                t0 = time.monotonic()
                while s.stats.get("disconnected", 0) < 1 and time.monotonic() - t0 < 5:
                    await asyncio.sleep(0.05)
                dropped_after = time.monotonic() - t0
                await asyncio.sleep(1.5)  # three more intervals, answering pings while waiting
                await ws.send("still here")
                assert await asyncio.wait_for(ws.recv(), 5) == "still here"
                return dropped_after

        dropped_after = asyncio.run(healthy_and_quiet())
        assert s.stats["disconnected"] >= 1, "the frozen client was never dropped"
        assert 0.4 <= dropped_after <= 1.6, f"dropped after {dropped_after:.2f} s"
        record("frozen client (SIGSTOP)", heartbeat_s=0.5, dropped_after_s=round(dropped_after, 2),
               healthy_client_kept=True)
        s.wait_stats(lambda st: st["open"] == 0 and st["disconnected"] == 2)
    finally:
        frozen.kill()
        frozen.wait()
        s.stop()


def test_descriptor_exhaustion_is_survived_and_recovered_from():
    """Under `ulimit -n 256`, 400 connections that never speak take every descriptor. The server
    keeps running without spinning, tells the game once (an error naming the limit, and a counter),
    and serves clients again once they are gone."""
    s = GodotServer("--handshake-timeout", "30", "--max-handshakes-per-address", "0", nofile=256)
    try:
        baseline_fds = s.proc_status()[1]
        hogs = [socket.create_connection(("127.0.0.1", s.port), timeout=5) for _ in range(400)]
        deadline = time.monotonic() + 10
        while s.proc_status()[1] < 250 and time.monotonic() < deadline:
            time.sleep(0.1)
        exhausted_fds = s.proc_status()[1]
        assert exhausted_fds >= 250, "the descriptors are exhausted"
        time.sleep(0.5)  # the last arrivals' failed accepts, and a fresh STATS line
        cpu0, errors0 = s.cpu_seconds(), s.stats["accept_errors"]
        time.sleep(2.0)
        cpu = s.cpu_seconds() - cpu0
        # With no new client, retries back off (50 ms doubling to 1 s): a handful in 2 s.
        retries = s.stats["accept_errors"] - errors0
        assert 1 <= retries <= 8, f"{retries} accept retries in 2 s"
        assert cpu < 1.0, "the server spins while out of descriptors"
        assert s.proc.poll() is None, "the server is alive"
        for h in hogs:
            h.close()
        t0 = time.monotonic()
        echo_ok(s.port, timeout=10)
        recovered = time.monotonic() - t0
        st = s.wait_stats(lambda st: st["open"] == 0)
        assert s.proc_status()[1] <= baseline_fds + 2, "descriptors return"
        log = "".join(s.log)
        told = log.count("cannot accept new connections: out of file descriptors (this process may have 256 open files")
        assert told == 1, f"told {told} times:\n{log}"
        assert log.count("WebSocketServer: accepting connections again") == 1, log
        record("descriptor exhaustion", nofile=256, hogs=400, fds_in_use=exhausted_fds,
               cpu_share_while_exhausted=round(cpu / 2.0, 3), recovery_s=round(recovered, 3),
               accept_errors=st["accept_errors"], retries_in_2s_idle=retries)
    finally:
        s.stop()


def test_max_connections_keeps_descriptors_free_under_a_flood():
    """The same flood with `max_connections` 150 under `ulimit -n 256`: accepting never fails, the
    clients over the cap are refused (up to 64 at a time are kept for a second to be answered
    503), and the process keeps descriptors for itself."""
    s = GodotServer("--handshake-timeout", "30", "--max-handshakes-per-address", "0",
                    "--max-connections", "150", nofile=256)
    try:
        hogs = [socket.create_connection(("127.0.0.1", s.port), timeout=5) for _ in range(400)]
        st = s.wait_stats(lambda st: st["refused_conns"] >= 250)
        peak_fds = s.proc_status()[1]
        assert st["accept_errors"] == 0, st
        assert peak_fds < 256 - 16, f"{peak_fds} descriptors in use"
        for h in hogs:
            h.close()
        echo_ok(s.port, timeout=10)
        record("max_connections under a flood", nofile=256, hogs=400, max_connections=150,
               refused=st["refused_conns"], peak_fds=peak_fds)
    finally:
        s.stop()


def test_the_server_is_back_at_its_baseline(server):
    """After every attack: no connection left open, descriptors and threads as at the start."""
    balanced(server)
    rss, fds, threads = server.proc_status()
    echo_ok(server.port)
    assert fds < 40, f"{fds} descriptors left open"
    assert threads < 20, f"{threads} threads"


def test_bursts_of_large_messages_leave_no_memory_behind():
    """1,000 clients each send a 1 MiB message at once and get it echoed (through the batch API, as
    a busy game would), then stay connected and idle; three times. 2.5 s after each burst the
    process must be back near its size before the first: every buffer grown for the burst is
    freed, and freed memory goes back to the system. (Before large buffers were mapped on their
    own, rust/core/src/alloc.rs, glibc kept 4-27 MiB of it in the I/O thread's arena after one of
    the three bursts or more in 3 of 4 runs; +0.8-0.9 MiB since.)"""
    size, n = 1 << 20, 1000
    s = GodotServer("--limit", str(3 * size), "--batch")
    try:
        async def bursts():
            clients = [await websockets.connect(f"ws://127.0.0.1:{s.port}/", max_size=2 * size,
                                                compression=None) for _ in range(n)]
            await asyncio.sleep(1.5)
            before, after = s.proc_status()[0], []
            payload = os.urandom(size)
            for _ in range(3):
                await asyncio.gather(*(c.send(payload) for c in clients))
                echoed = await asyncio.gather(*(asyncio.wait_for(c.recv(), 60) for c in clients))
                assert all(e == payload for e in echoed)
                await asyncio.sleep(2.5)  # the I/O thread trims after a second without work
                after.append(s.proc_status()[0])
            for c in clients:
                await c.close()
            return before, after
        before, after = asyncio.run(bursts())
        record("1 MiB bursts", clients=n, rss_kib_before=before, rss_kib_after_each=after)
        assert max(after) < before + 4 * 1024, f"RSS {before} KiB before the bursts, {after} 2.5 s after each"
        balanced(s)
    finally:
        s.stop()
