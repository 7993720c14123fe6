"""permessage-deflate (compression = COMPRESSION_SHARED) against headless Godot
(tests/attack/echo_server.gd --compression): Python websockets (which offers the extension by
default) echoes large repetitive messages both ways, fragmented too; a client that offers nothing,
or a server with compression off, stays uncompressed; a deflate bomb is closed with 1009 while the
server's memory stays put; compressed text that is not UTF-8 gets 1007, corrupt deflate data 1007.
Raw frames are made here with Python's zlib. Both I/O modes (WSS_IO_MODE)."""

import asyncio
import socket
import zlib

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


def test_a_bomb_is_closed_with_1009_and_costs_no_memory(running):
    server = running(GodotServer("--compression"))
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


def test_invalid_utf8_and_corrupt_data_get_1007(running):
    server = running(GodotServer("--compression"))
    s, _ = raw(server.port)
    s.sendall(frame(0x1, deflate(b"ok \xff\xfe not utf-8"), rsv=4))
    assert close_code(read_frames(s)) == 1007
    s.close()
    s, _ = raw(server.port)
    s.sendall(frame(0x2, b"\xff" * 50, rsv=4))
    assert close_code(read_frames(s)) == 1007
    s.close()
