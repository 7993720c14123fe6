"""A dedicated server stopped the way containers and service managers stop it: a real SIGTERM to
a headless Godot process running the addon (tests/attack/echo_server.gd), with Python `websockets`
and raw sockets as clients. Runs against both I/O modes (WSS_IO_MODE, see test.sh).

- Without `shutdown_on_sigterm`, Godot installs no handler: the process ends at once and clients
  see the connection drop without a Close frame (what happened to every Godot server until now).
- With it, the first SIGTERM starts `shutdown()`: the port is free at once, every client gets
  1001 after its queued messages, the process quits once the last one is gone (exit status 0).
- A second SIGTERM during the shutdown ends the process at once, as without the setting.
"""

import asyncio
import signal
import socket
import struct
import time

import websockets

from godot_server import GodotServer, frame, raw_client, read_frames


def port_is_free(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def wait_exit(server, timeout):
    try:
        return server.proc.wait(timeout)
    except Exception:
        server.proc.kill()
        server.proc.wait()
        raise AssertionError("the process did not end:\n" + "".join(server.log))


async def echoing_clients(port, n):
    clients = [await websockets.connect(f"ws://127.0.0.1:{port}/c{i}") for i in range(n)]
    for i, ws in enumerate(clients):
        await ws.send(f"hello {i}")
        assert await asyncio.wait_for(ws.recv(), 5) == f"hello {i}"
    return clients


def test_without_the_setting_sigterm_ends_the_process_at_once_and_clients_get_no_close():
    server = GodotServer()
    try:
        async def run():
            clients = await echoing_clients(server.port, 5)
            server.proc.send_signal(signal.SIGTERM)
            for ws in clients:
                await asyncio.wait_for(ws.wait_closed(), 10)
                # No Close frame came: websockets reports 1006 (abnormal closure).
                assert ws.close_code == 1006, ws.close_code
        asyncio.run(run())
        assert wait_exit(server, 10) == -signal.SIGTERM, "Godot's default: killed by the signal"
    finally:
        server.stop(check=False)


def test_with_shutdown_on_sigterm_every_client_gets_1001_and_the_process_exits_cleanly():
    server = GodotServer("--graceful", "--shutdown-timeout", "3")
    port = server.port
    try:
        async def run():
            clients = await echoing_clients(port, 20)
            # A raw client that never answers our Close holds the shutdown until the timeout,
            # long enough to see that the port is free while clients are still being closed.
            silent = raw_client(port)
            silent.sendall(frame(1, b"pending"))
            echo = b""
            while len(echo) < 9:
                echo += silent.recv(9 - len(echo))
            assert echo == b"\x81\x07pending", echo
            started = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            for ws in clients:
                await asyncio.wait_for(ws.wait_closed(), 10)
                assert ws.close_code == 1001, ws.close_code
                assert ws.close_reason == "server shutting down", ws.close_reason
            assert server.proc.poll() is None, "still running: the silent client holds it"
            assert port_is_free(port), "the port is free during the shutdown"
            frames = read_frames(silent, timeout=10)
            assert frames[-1][0] == 8 and struct.unpack(">H", frames[-1][1][:2])[0] == 1001, frames
            return started, silent
        # (The silent socket is kept open until the process ends.)
        started, silent = asyncio.run(run())
        assert wait_exit(server, 15) == 0
        took = time.monotonic() - started
        assert 2.5 < took < 10, f"ended {took:.1f} s after SIGTERM (shutdown_timeout 3 s)"
        out = "".join(server.log)
        assert "termination signal received" in out, out
        assert "SHUTDOWN FINISHED connected=21 disconnected=21 clean=20" in out, out
        for bad in ("SCRIPT ERROR", "BOOKS ERROR", "panicked", "ERROR"):
            assert bad not in out, out
    finally:
        server.stop(check=False)


def test_a_second_sigterm_during_the_shutdown_ends_the_process_at_once():
    server = GodotServer("--graceful", "--shutdown-timeout", "60")
    try:
        silent = raw_client(server.port)
        server.proc.send_signal(signal.SIGTERM)
        frames = read_frames(silent, timeout=10)
        assert frames and frames[-1][0] == 8, "the shutdown began"
        assert server.proc.poll() is None, "waiting for the silent client"
        server.proc.send_signal(signal.SIGTERM)
        assert wait_exit(server, 10) == -signal.SIGTERM
    finally:
        server.stop(check=False)
