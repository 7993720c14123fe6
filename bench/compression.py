"""permessage-deflate (issue 20), used by bench/run.py through .venv's Python (websockets clients,
which offer the extension by default): a browser game's JSON state (~200 bytes, 20 Hz) and chat
lines (40-160 bytes of words drawn from a few sentences, 20 Hz) broadcast to N clients (godot-project/bench/bench_server.gd --mode
json|chat), with compression off, COMPRESSION_SHARED and COMPRESSION_DEDICATED (11 bits, the default: context
takeover: websockets offers client_max_window_bits), each with threshold 128 and 0. For each:
bytes on the wire per message (TCP's own bytes_sent of the server's sockets, `ss -ti`, over the
messages the server queued in the same window, from its STAT lines: what the clients have read
lags behind when Python is busy), the I/O thread's CPU per message, the main thread's CPU (share of a
core: compression must not add to it), and resident memory per connection, once connected and
once the messages flowed (the dedicated windows are allocated at the first compressed message).
Prints one `ROW <json>` line per setting.
Usage: compression.py GODOT CLIENTS SECONDS"""

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import websockets

ROOT = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def thread_ticks(pid, name):
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            comm = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
            # (Thread names are cut to 15 bytes: "websocket-serve...")
            if (name is None and int(tid) == pid) or (name is not None and comm.startswith(name[:15])):
                f = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(f[11]) + int(f[12])
        except FileNotFoundError:
            pass
    return total


def bytes_sent(port):
    """Bytes the server's sockets on `port` have sent (TCP's own count, `ss -ti`: bytes_sent)."""
    out = subprocess.run(["ss", "-tinH", "state", "established", f"( sport = :{port} )"], capture_output=True,
                         text=True).stdout
    return sum(int(x) for x in __import__("re").findall(r"bytes_sent:(\d+)", out))


def queued_at(stats, t):
    """Messages the server had queued at unix time `t`, between its STAT lines."""
    for (ta, a), (tb, b) in zip(stats, stats[1:]):
        if ta <= t <= tb:
            return a + (b - a) * (t - ta) / max(tb - ta, 1e-9)
    raise RuntimeError(f"no STAT lines around {t} ({len(stats)} lines)")


def rss(pid):
    return int(next(l.split()[1] for l in Path(f"/proc/{pid}/status").read_text().splitlines() if l.startswith("VmRSS")))


async def measure(godot, mode, setting, threshold, clients, seconds):
    compression = setting != "off"
    port = free_port()
    args = [godot, "--headless", "--path", str(ROOT / "godot-project"), "res://bench/bench_server.tscn", "--",
            "--impl", "ours", "--mode", mode, "--port", str(port)]
    if compression:
        args += ["--compression", "--compression-threshold", str(threshold)]
    if setting == "dedicated":
        args += ["--dedicated", "11"]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in p.stdout:
            if line.startswith("LISTENING"):
                break
            if "SCRIPT ERROR" in line:
                raise RuntimeError(line)
        stats = []  # (unix time, messages queued so far)

        def read_stats():
            for line in p.stdout:
                if line.startswith("STAT "):
                    f = line.split()
                    stats.append((float(f[1]), int(f[2])))

        threading.Thread(target=read_stats, daemon=True).start()
        rss0 = rss(p.pid)
        conns = [await websockets.connect(f"ws://127.0.0.1:{port}/", max_queue=None) for _ in range(clients)]
        negotiated = "permessage-deflate" in (conns[0].response.headers.get("Sec-WebSocket-Extensions") or "")
        await asyncio.sleep(1.0)
        rss1 = rss(p.pid)
        got = [0]

        async def read(ws):
            try:
                while True:
                    await ws.recv()
                    got[0] += 1
            except (asyncio.CancelledError, websockets.ConnectionClosed):
                pass

        tasks = [asyncio.create_task(read(ws)) for ws in conns]
        await asyncio.sleep(0.5)
        t0, g0, w0, u0 = time.monotonic(), got[0], bytes_sent(port), time.time()
        io0, main0 = thread_ticks(p.pid, "websocket-server-io"), thread_ticks(p.pid, None)
        await asyncio.sleep(seconds)
        t1, g1, w1, u1 = time.monotonic(), got[0], bytes_sent(port), time.time()
        await asyncio.sleep(0.6)  # the STAT line after the window
        io1, main1 = thread_ticks(p.pid, "websocket-server-io"), thread_ticks(p.pid, None)
        rss2 = rss(p.pid)
        for t in tasks:
            t.cancel()
        for ws in conns:
            await ws.close()
        n = max(1, g1 - g0)
        queued = max(1.0, queued_at(stats, u1) - queued_at(stats, u0))
        return {"mode": mode, "setting": setting, "compression": compression, "threshold": threshold,
                "negotiated": negotiated, "kib_per_conn_after": (rss2 - rss0) / clients,
                "messages": g1 - g0, "bytes_per_msg": (w1 - w0) / queued,
                "io_us_per_msg": (io1 - io0) * 1e6 / TICK / n,
                "main_cpu_percent": (main1 - main0) * 100 / TICK / (t1 - t0),
                "kib_per_conn": (rss1 - rss0) / clients}
    finally:
        p.terminate()
        p.wait(10)


def main():
    godot, clients, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    for mode in ("json", "chat"):
        for setting, threshold in (("off", 0), ("shared", 128), ("shared", 0), ("dedicated", 128), ("dedicated", 0)):
            row = asyncio.run(measure(godot, mode, setting, threshold, clients, seconds))
            print("ROW " + json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
