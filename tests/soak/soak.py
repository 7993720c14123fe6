"""Soak: many clients against the addon in headless Godot (tests/attack/echo_server.gd) for a
while, sending messages of random size (0-64 KiB), text and binary, pipelined, and checking every
echo; reconnecting now and then, and sometimes dropping the connection abruptly.

Asserts: every echo arrives exactly once, in order, intact (for a connection that was dropped
abruptly: what arrived is an unbroken prefix of what was sent); the server refused no send; every
connection is reported connected and disconnected exactly once (the server's books); and once the
clients are gone the server is back to its baseline of descriptors and threads, with its memory
near it. Prints the figures as one Markdown table row (for RELIABILITY.md).

Usage: python tests/soak/soak.py [--clients 1000] [--seconds 600] [--procs 2]
"""

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import sys
import time
from collections import deque
from pathlib import Path

import websockets

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "attacks"))
from godot_server import GodotServer  # noqa: E402

MAX_SIZE = 64 * 1024
IN_FLIGHT = 2


def message(rng, conn_id, seq):
    size = rng.randrange(0, MAX_SIZE + 1)
    if rng.random() < 0.5:
        head = f"{conn_id}:{seq}:"
        body = "".join(rng.choice("abcdefghijklmnopqrstuvwxyzéü€ 0123456789") for _ in range(max(0, size - len(head)) // 2))
        return head + body
    return conn_id.to_bytes(4, "little") + seq.to_bytes(8, "little") + rng.randbytes(max(0, size - 12))


async def client(port, worker, index, deadline, totals):
    rng = random.Random(worker * 100_000 + index)
    conn_id = worker * 100_000 + index * 100
    while time.monotonic() < deadline:
        conn_id += 1
        try:
            ws = await websockets.connect(f"ws://127.0.0.1:{port}/soak", max_size=2 * MAX_SIZE,
                                          open_timeout=30, ping_interval=None, close_timeout=10)
        except (OSError, asyncio.TimeoutError, websockets.InvalidHandshake) as e:
            totals["connect_errors"] += 1
            totals["errors"].append(f"connect: {e!r}")
            await asyncio.sleep(1)
            continue
        totals["connections"] += 1
        pending = deque()
        seq = 0
        ended = None  # "close" or "abort"
        try:
            while ended is None:
                # A burst of 1-3 messages, at most IN_FLIGHT unanswered.
                for _ in range(rng.randrange(1, 4)):
                    while len(pending) >= IN_FLIGHT:
                        got = await asyncio.wait_for(ws.recv(), 30)
                        check(pending, got, totals)
                    m = message(rng, conn_id, seq)
                    seq += 1
                    pending.append(m)
                    await ws.send(m)
                    totals["sent"] += 1
                    totals["bytes"] += len(m)
                r = rng.random()
                if time.monotonic() >= deadline or r < 0.02:
                    ended = "close"
                elif r < 0.03:
                    ended = "abort"
                else:
                    await asyncio.sleep(rng.uniform(0.2, 1.2))
            if ended == "close":
                while pending:
                    got = await asyncio.wait_for(ws.recv(), 30)
                    check(pending, got, totals)
                await ws.close()
                totals["closed"] += 1
            else:
                # Whatever echoes come before the drop must be in order; the rest are lost with it.
                ws.transport.abort()
                totals["aborted"] += 1
        except Exception as e:  # noqa: BLE001 (recorded, fails the run)
            totals["errors"].append(f"conn {conn_id}: {e!r}")
            ws.transport.abort()


def check(pending, got, totals):
    want = pending.popleft()
    if got != want:
        totals["errors"].append(f"echo mismatch: sent {describe(want)}, got {describe(got)}")
    totals["echoed"] += 1


def describe(m):
    return f"{type(m).__name__}[{len(m)}] {m[:24]!r}"


def worker(port, index, clients, seconds, out):
    totals = {"connections": 0, "closed": 0, "aborted": 0, "sent": 0, "echoed": 0, "bytes": 0,
              "connect_errors": 0, "errors": []}

    async def run():
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(client(port, index, i, deadline, totals) for i in range(clients)))
    asyncio.run(run())
    out.put(totals)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1,
                    help="run the clients this many times against the same server (a leak grows with each)")
    args = ap.parse_args()

    # One host opens every connection: no per-address handshake cap.
    server = GodotServer("--limit", str(4 * MAX_SIZE), "--handshake-timeout", "30",
                         "--max-handshakes-per-address", "0")
    ok = False
    try:
        time.sleep(1.0)
        base_rss, base_fds, base_threads = server.proc_status()
        cpu0 = server.cpu_seconds()
        started = time.monotonic()
        per = [args.clients // args.procs + (1 if i < args.clients % args.procs else 0) for i in range(args.procs)]
        peak_rss = base_rss
        results = []
        round_end_rss = []
        for r in range(args.rounds):
            out = multiprocessing.Queue()
            procs = [multiprocessing.Process(target=worker, args=(server.port, r * args.procs + i, n, args.seconds, out))
                     for i, n in enumerate(per)]
            for p in procs:
                p.start()
            got = 0
            while got < len(procs):
                try:
                    results.append(out.get(timeout=1))
                    got += 1
                except Exception:  # noqa: BLE001 (queue.Empty)
                    peak_rss = max(peak_rss, server.proc_status()[0])
                    if time.monotonic() - started > (r + 1) * (args.seconds + 300):
                        raise AssertionError("the clients did not finish")
            for p in procs:
                p.join()
            if args.rounds > 1:
                server.wait_stats(lambda s: s["open"] == 0, timeout=30)
                time.sleep(3)
                round_end_rss.append(server.proc_status()[0] >> 10)
                print(f"round {r + 1}: RSS {round_end_rss[-1]} MiB once its clients left", flush=True)
        elapsed = time.monotonic() - started
        cpu = server.cpu_seconds() - cpu0
        total = {k: sum(r[k] for r in results) for k in results[0] if k != "errors"}
        errors = [e for r in results for e in r["errors"]]
        books = server.wait_stats(lambda s: s["open"] == 0 and s["connected"] >= total["connections"], timeout=30)
        # The server hands freed memory back after a second of idleness: measure after that.
        settle = []
        for _ in range(int(os.environ.get("SOAK_SETTLE", "3"))):
            time.sleep(1.0)
            settle.append(server.proc_status()[0] >> 10)
        if os.environ.get("SOAK_SETTLE"):
            print("RSS MiB after the clients left, each second:", settle)
        rss, fds, threads = server.proc_status()
        row = {
            "clients": args.clients, "seconds": round(elapsed), "connections": total["connections"],
            "closed": total["closed"], "aborted": total["aborted"], "messages": total["sent"],
            "echoed": total["echoed"], "MiB": total["bytes"] >> 20,
            "msg/s": round(total["sent"] / elapsed), "server CPU %": round(100 * cpu / elapsed),
            "RSS MiB base/peak/end": f"{base_rss >> 10}/{peak_rss >> 10}/{rss >> 10}",
            "fds base/end": f"{base_fds}/{fds}", "threads base/end": f"{base_threads}/{threads}",
            "refused": books["refused"], "books": f"{books['connected']}/{books['disconnected']}",
        }
        print(json.dumps(row))
        print("| " + " | ".join(str(v) for v in row.values()) + " |")
        problems = list(errors[:20])
        if total["connect_errors"]:
            problems.append(f"{total['connect_errors']} connection attempts failed")
        if books["connected"] != total["connections"] or books["disconnected"] != total["connections"]:
            problems.append(f"books {books} do not match {total['connections']} connections")
        if books["refused"]:
            problems.append(f"the server refused {books['refused']} sends")
        if books["messages"] < total["echoed"]:
            problems.append("more echoes than messages received")
        if fds != base_fds or threads != base_threads:
            problems.append(f"descriptors {base_fds}->{fds} or threads {base_threads}->{threads} did not return")
        if rss > base_rss + 64 * 1024:
            problems.append(f"RSS {base_rss >> 10} -> {rss >> 10} MiB did not return near its baseline")
        for p in problems:
            print("SOAK FAILURE:", p)
        ok = not problems
    finally:
        server.stop(check=ok)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
