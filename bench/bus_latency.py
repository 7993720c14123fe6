"""Relay latency through a topic (bench/topics.py): two headless Godot bench servers in relay mode
on one Redis bus; client S on process 1 sends a time-stamped message every 5 ms; client L (process
1) and client R (process 2) receive it through the topic. Prints `SAME p50 p99` and
`ACROSS p50 p99` in milliseconds. Usage: bus_latency.py GODOT REDIS_PORT SECONDS"""

import asyncio
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import websockets

ROOT = Path(__file__).resolve().parents[1]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server(godot, redis_port):
    port = free_port()
    p = subprocess.Popen([godot, "--headless", "--path", str(ROOT / "godot-project"), "res://bench/bench_server.tscn", "--",
                          "--impl", "ours", "--mode", "relay", "--port", str(port), "--unpaced",
                          "--bus", f"redis://127.0.0.1:{redis_port}"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
    for line in p.stdout:
        if line.startswith("LISTENING"):
            return p, port
    raise RuntimeError("the bench server did not start")


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def measure(ports, seconds):
    s = await websockets.connect(f"ws://127.0.0.1:{ports[0]}/")
    local = await websockets.connect(f"ws://127.0.0.1:{ports[0]}/")
    remote = await websockets.connect(f"ws://127.0.0.1:{ports[1]}/")
    await asyncio.sleep(1.0)  # subscriptions reach the bus
    got = {"SAME": [], "ACROSS": []}

    async def receive(ws, key):
        try:
            while True:
                m = await ws.recv()
                got[key].append((time.perf_counter() - float(bytes(m).decode())) * 1000)
        except (asyncio.CancelledError, websockets.ConnectionClosed):
            pass

    tasks = [asyncio.create_task(receive(local, "SAME")), asyncio.create_task(receive(remote, "ACROSS"))]
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        await s.send(repr(time.perf_counter()).encode())
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.5)
    for t in tasks:
        t.cancel()
    return got


def main():
    godot, redis_port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    procs = [server(godot, redis_port) for _ in range(2)]
    try:
        got = asyncio.run(measure([p[1] for p in procs], seconds))
    finally:
        for p, _ in procs:
            p.terminate()
            p.wait(10)
    for key in ("SAME", "ACROSS"):
        v = got[key][len(got[key]) // 10:]  # after the first tenth (warm-up)
        assert len(v) > 10, (key, len(got[key]))
        print(f"{key} {statistics.median(v):.3f} {pct(v, 0.99):.3f}")


if __name__ == "__main__":
    main()
