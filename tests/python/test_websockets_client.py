"""Python `websockets` clients against the demo chat server running in headless Godot.

A client that is neither Godot nor Rust: it checks the handshake, framing and close handshake
from an independent implementation, and that the server's signals (printed by the demo) match.
"""

import asyncio
import os
import queue
import re
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest
import websockets
from websockets.exceptions import ConnectionClosedError, InvalidStatus

ROOT = Path(__file__).resolve().parents[2]


class DemoServer:
    def __init__(self, *extra):
        godot = subprocess.run(
            [str(ROOT / "scripts/godot.sh")], check=True, capture_output=True, text=True
        ).stdout.strip()
        self.proc = subprocess.Popen(
            [godot, "--headless", "--path", str(ROOT / "godot-project"),
             "res://demo/chat_server.tscn", "--", "--port", "0", "--bind", "127.0.0.1", *extra,
             # test.sh's second pass: the same tests against inline I/O.
             *(["--inline"] if os.environ.get("WSS_IO_MODE") == "inline" else [])],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.lines = queue.Queue()
        self.log = []
        threading.Thread(target=self._read, daemon=True).start()
        m = self.expect(r"listening on port (\d+)")
        self.port = int(m.group(1))

    def _read(self):
        for line in self.proc.stdout:
            self.log.append(line)
            self.lines.put(line.rstrip("\n"))

    def expect(self, pattern, timeout=10.0):
        """Waits for a line of the server's output matching `pattern`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            m = re.search(pattern, line)
            if m:
                return m
        raise AssertionError(f"server never printed /{pattern}/; output:\n{''.join(self.log)}")

    def url(self, path="/"):
        return f"ws://127.0.0.1:{self.port}{path}"

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        out = "".join(self.log)
        for bad in ("SCRIPT ERROR", "Error loading extension", "panicked"):
            assert bad not in out, out


@pytest.fixture(scope="module")
def server():
    s = DemoServer()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def tls_server():
    data = ROOT / "godot-project/tests/data"
    s = DemoServer("--tls-cert", str(data / "leaf.crt"), "--tls-key", str(data / "leaf.key"),
                   "--tls-ca-chain", str(data / "intermediate.crt"))
    yield s
    s.stop()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_chat_relays_text_and_binary(server):
    async def main():
        async with websockets.connect(server.url("/room?name=py")) as a:
            ida = int(server.expect(r"connect (\d+) from 127\.0\.0\.1:\d+ resource=/room\?name=py protocol= room=lobby$").group(1))
            async with websockets.connect(server.url()) as b:
                idb = int(server.expect(r"connect (\d+) from").group(1))
                assert ida != idb
                await a.send("héllo from a")
                assert await b.recv() == "héllo from a"
                server.expect(rf"message {ida}: héllo from a")
                await b.send(bytes(range(256)))
                assert await a.recv() == bytes(range(256))
                server.expect(rf"message {idb}: 256 bytes")
            server.expect(rf"disconnect {idb} clean=true")
    run(main())


def test_client_close_code_and_reason_reach_the_server(server):
    async def main():
        ws = await websockets.connect(server.url())
        cid = int(server.expect(r"connect (\d+) from").group(1))
        await ws.close(code=4000, reason="bye")
        assert ws.close_code == 4000, "the server echoed our close code"
        server.expect(rf"close request {cid}: code=4000 reason=bye")
        server.expect(rf"disconnect {cid} clean=true")
    run(main())


def test_message_over_the_limit_is_closed_with_1009(server):
    async def main():
        ws = await websockets.connect(server.url(), max_size=None)
        cid = int(server.expect(r"connect (\d+) from").group(1))
        await ws.send(b"x" * 65536)  # inbound_buffer_size is 65535 by default
        with pytest.raises(ConnectionClosedError) as err:
            await ws.recv()
        assert err.value.rcvd.code == 1009
        # The rest of the oversized frame is skipped and the client's answer to our Close is read:
        # the close handshake completes.
        server.expect(rf"disconnect {cid} clean=true")
    run(main())


def test_unoffered_subprotocol_is_refused(server):
    async def main():
        with pytest.raises(InvalidStatus) as err:
            await websockets.connect(server.url(), subprotocols=["nope"])
        assert err.value.response.status_code == 400
    run(main())


def test_ping_is_answered(server):
    async def main():
        async with websockets.connect(server.url()) as ws:
            # The waiter resolves only when a pong with this payload arrives.
            pong = await ws.ping(b"abc")
            latency = await asyncio.wait_for(pong, 5)
            assert latency < 1.0, f"pong after {latency:.3f} s"
    run(main())


def test_wss_with_a_context_trusting_the_test_root(tls_server):
    """The server sends leaf + intermediate (ca_chain); the client trusts only the root."""
    context = ssl.create_default_context(cafile=str(ROOT / "godot-project/tests/data/root.crt"))
    url = f"wss://localhost:{tls_server.port}/secure"

    async def main():
        async with websockets.connect(url, ssl=context) as a:
            tls_server.expect(r"connect (\d+) from 127\.0\.0\.1:\d+ resource=/secure")
            async with websockets.connect(url, ssl=context) as b:
                tls_server.expect(r"connect (\d+) from")
                await a.send("over tls")
                assert await b.recv() == "over tls"
                await b.send(b"\x00" * 40000)
                assert await a.recv() == b"\x00" * 40000

    run(main())


def test_wss_refuses_an_untrusting_client(tls_server):
    async def main():
        with pytest.raises(ssl.SSLCertVerificationError):
            await websockets.connect(f"wss://localhost:{tls_server.port}/", ssl=ssl.create_default_context())

    run(main())
