"""permessage-deflate (compression = COMPRESSION_SHARED, and COMPRESSION_DEDICATED with context
takeover) against headless Godot (tests/attack/echo_server.gd --compression / --dedicated BITS):
Python websockets (which offers the extension by default) echoes large repetitive messages both
ways, fragmented too; with context takeover, a stream of similar JSON states shrinks several times
over both ways, and the client's own context-takeover messages are inflated; a message sent with
compress = false goes uncompressed; a client that offers nothing, or a server with compression
off, stays uncompressed; a deflate bomb is closed with 1009 while the server's memory stays put;
compressed text that is not UTF-8 gets 1007, corrupt deflate data 1007. Raw frames are made here
with Python's zlib. Both I/O modes (WSS_IO_MODE)."""

import asyncio
import os
import socket
import zlib

import pytest
import websockets

from godot_server import GodotServer, UPGRADE, close_code, frame, read_frames, read_head


def deflate(data):
    c = zlib.compressobj(wbits=-15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def frames_until(sock, want, seconds=5.0):
    """Reads frames until `want(frames)` holds."""
    buf = b""
    sock.settimeout(seconds)
    frames = []
    while not want(frames):
        buf += sock.recv(65536)
        frames, rest = [], buf
        while len(rest) >= 2:
            op, n, hl = rest[0] & 0x0F, rest[1] & 0x7F, 2
            if n == 126:
                n, hl = int.from_bytes(rest[2:4], "big"), 4
            elif n == 127:
                n, hl = int.from_bytes(rest[2:10], "big"), 10
            if len(rest) < hl + n:
                break
            frames.append((op, rest[0] & 0x40 != 0, rest[hl:hl + n]))
            rest = rest[hl + n:]
    return frames


def raw(port, offer="permessage-deflate; client_max_window_bits"):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    req = UPGRADE.format(path="").replace("\r\n\r\n", f"\r\nSec-WebSocket-Extensions: {offer}\r\n\r\n" if offer else "\r\n\r\n")
    s.sendall(req.encode())
    return s, read_head(s)


def test_python_websockets_compresses_both_ways(running):
    server = running(GodotServer("--compression"))

    async def run():
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/") as ws:
            ext = ws.response.headers["Sec-WebSocket-Extensions"]
            assert ext == "permessage-deflate; server_no_context_takeover; client_no_context_takeover", ext
            for msg in ["state " * 9000, b"\x01\x02\x03" * 15000, "", "tiny", "ünïcödé ✓ " * 3000]:
                await ws.send(msg)
                assert await asyncio.wait_for(ws.recv(), 5) == msg
            parts = [f"part {i} " * 500 for i in range(8)]
            await ws.send(iter(parts))
            assert await asyncio.wait_for(ws.recv(), 5) == "".join(parts)
    asyncio.run(run())


def test_compressed_frames_on_the_wire_with_a_ping_inside_a_fragmented_message(running):
    server = running(GodotServer("--compression"))
    s, head = raw(server.port)
    assert "Sec-WebSocket-Extensions: permessage-deflate" in head, head
    text = ("hello " * 5000).encode()
    z = deflate(text)
    half = len(z) // 2
    # RSV1 on the first fragment only; a ping between the fragments.
    s.sendall(frame(0x1, z[:half], fin=False, rsv=4) + frame(0x9, b"p") + frame(0x0, z[half:]))
    got = frames_until(s, lambda f: any(op == 0xA for op, _, _ in f) and any(op == 1 for op, _, _ in f))
    data = [(op, rsv1, p) for op, rsv1, p in got if op in (1, 2)]
    assert len(data) == 1 and data[0][:2] == (1, True), "one text message, compressed (RSV1)"
    assert len(data[0][2]) < len(text) / 10
    assert zlib.decompressobj(wbits=-15).decompress(data[0][2] + b"\x00\x00\xff\xff") == text
    s.close()


def states(n):
    """`n` JSON game states, each like the one before (what context takeover is for)."""
    return [
        ('{"tick": %d, "players": [{"id": 1, "x": %d.5, "y": 20.25, "hp": 100, "name": "alice"}, '
         '{"id": 2, "x": 7.75, "y": %d.0, "hp": 85, "name": "bob"}], "events": []}' % (i, i * 3, i % 40)).encode()
        for i in range(n)
    ]


def test_dedicated_context_takeover_shrinks_similar_messages_both_ways(running):
    server = running(GodotServer("--dedicated", "12"))
    s, head = raw(server.port)
    ext = next(line for line in head.split("\r\n") if line.startswith("Sec-WebSocket-Extensions"))
    assert ext == "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=12; client_max_window_bits=12", ext
    # The client keeps its compressor and inflater for the whole connection (as browsers do).
    out = zlib.compressobj(wbits=-12)
    inflate = zlib.decompressobj(wbits=-12)
    sizes_in = []
    for i, state in enumerate(states(40)):
        z = out.compress(state) + out.flush(zlib.Z_SYNC_FLUSH)
        s.sendall(frame(0x1, z[:-4], rsv=4))
        (op, rsv1, payload), = frames_until(s, lambda f: f)
        assert (op, rsv1) == (1, True), f"state {i}: a compressed text message"
        assert inflate.decompress(payload + b"\x00\x00\xff\xff") == state, f"state {i} came back whole"
        sizes_in.append(len(payload))
    plain = len(states(1)[0])
    shared_size = len(deflate(states(40)[-1]))
    assert sizes_in[-1] * 3 < shared_size, f"with the window: {sizes_in[-1]} B against {shared_size} B on its own ({plain} B plain)"
    s.close()
    # Python websockets (client_max_window_bits offered): the same stream round trips.
    async def run():
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/") as ws:
            assert "server_max_window_bits=12" in ws.response.headers["Sec-WebSocket-Extensions"]
            for state in states(100):
                await ws.send(state.decode())
                assert await asyncio.wait_for(ws.recv(), 5) == state.decode()
    asyncio.run(run())


def test_dedicated_compresses_a_message_that_does_not_shrink_alone_so_the_next_can_refer_to_it(running):
    server = running(GodotServer("--dedicated", "12"))
    s, head = raw(server.port)
    inflate = zlib.decompressobj(wbits=-12)
    line = os.urandom(200)
    assert len(deflate(line)) >= len(line), "on its own it does not shrink"
    sizes = []
    for _ in range(3):
        s.sendall(frame(0x2, line))
        (op, rsv1, payload), = frames_until(s, lambda f: f)
        assert rsv1, "compressed even so: it enters the client's window"
        assert inflate.decompress(payload + b"\x00\x00\xff\xff") == line
        sizes.append(len(payload))
    assert sizes[1] < len(line) // 2, f"the same line again refers back: {sizes}"
    s.close()


def test_dedicated_asks_a_client_that_cannot_be_limited_for_no_context_takeover(running):
    server = running(GodotServer("--dedicated", "10"))
    s, head = raw(server.port, offer="permessage-deflate")
    assert "permessage-deflate; client_no_context_takeover; server_max_window_bits=10" in head, head
    out = zlib.compressobj(wbits=-15)
    inflate = zlib.decompressobj(wbits=-10)
    for state in states(5):
        out = zlib.compressobj(wbits=-15)  # each message on its own, as asked
        z = out.compress(state) + out.flush(zlib.Z_SYNC_FLUSH)
        s.sendall(frame(0x1, z[:-4], rsv=4))
        (op, rsv1, payload), = frames_until(s, lambda f: f)
        assert inflate.decompress(payload + b"\x00\x00\xff\xff") == state
    s.close()


def test_a_message_sent_with_compress_false_goes_uncompressed(running):
    for mode in (["--compression"], ["--dedicated", "12"]):
        server = running(GodotServer(*mode))
        s, head = raw(server.port)
        assert "permessage-deflate" in head, head
        secret = b"plain: token=" + b"s3cr3t " * 100
        s.sendall(frame(0x1, secret))
        assert frames_until(s, lambda f: f) == [(1, False, secret)], f"{mode}: sent as it is"
        # The next compressible message is compressed (and with a window, not from the secret).
        other = b"hello " * 100
        s.sendall(frame(0x1, other))
        (op, rsv1, payload), = frames_until(s, lambda f: f)
        assert rsv1 and zlib.decompressobj(wbits=-15).decompress(payload + b"\x00\x00\xff\xff") == other, mode
        s.close()


def test_no_offer_or_compression_off_means_no_extension(running):
    on = running(GodotServer("--compression"))
    s, head = raw(on.port, offer=None)
    assert "Sec-WebSocket-Extensions" not in head, head
    s.sendall(frame(0x1, b"plain " * 100))
    assert frames_until(s, lambda f: f) == [(1, False, b"plain " * 100)], "uncompressed"
    s.close()
    off = running(GodotServer())
    s, head = raw(off.port)
    assert head.startswith("HTTP/1.1 101") and "Sec-WebSocket-Extensions" not in head, head
    # A compressed frame where nothing was agreed is a protocol error.
    s.sendall(frame(0x1, deflate(b"x" * 100), rsv=4))
    assert close_code(read_frames(s)) == 1002
    s.close()


@pytest.mark.parametrize("setting", [("--compression",), ("--dedicated", "15")])
def test_a_bomb_is_closed_with_1009_and_costs_no_memory(running, setting):
    server = running(GodotServer(*setting))
    bomb = deflate(b"\0" * (200 << 20))
    assert len(bomb) < 300_000
    rss_before, _, _ = server.proc_status()
    for _ in range(5):
        s, _ = raw(server.port)
        s.sendall(frame(0x2, bomb, rsv=4))
        assert close_code(read_frames(s)) == 1009
        s.close()
    rss, _, _ = server.proc_status()
    assert rss < rss_before + 16 * 1024, f"RSS {rss_before} -> {rss} KiB"


@pytest.mark.parametrize("setting", [("--compression",), ("--dedicated", "12")])
def test_invalid_utf8_and_corrupt_data_get_1007(running, setting):
    server = running(GodotServer(*setting))
    s, _ = raw(server.port)
    s.sendall(frame(0x1, deflate(b"ok \xff\xfe not utf-8"), rsv=4))
    assert close_code(read_frames(s)) == 1007
    s.close()
    s, _ = raw(server.port)
    s.sendall(frame(0x2, b"\xff" * 50, rsv=4))
    assert close_code(read_frames(s)) == 1007
    s.close()
