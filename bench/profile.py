"""Where the whole process's time per message goes (issue 23): the tick benchmark's server at a fixed
number of players, measured from outside for a window of seconds: CPU per message of each thread
(user and kernel, /proc/<pid>/task/*/stat) and system calls per message by kind (perf stat on the
syscall tracepoints, every thread of the process). A message is an input received or a state sent.

Usage: python3 bench/profile.py [--players N] [--secs S] [--servers ours,ours_inline,stock]
       [--bindir target/release]   (after scripts/bench.sh or cargo build --release -p wss-bench and
       scripts/build.sh --release). Prints a markdown section; bench/profile-process.md holds a run.
"""

import argparse
import os
import subprocess
import time
from pathlib import Path

from run import free_port
from tick import TickServer

ROOT = Path(__file__).resolve().parents[1]
SYSCALLS = ["recvfrom", "read", "sendto", "write", "writev", "epoll_wait", "epoll_pwait", "epoll_ctl", "futex",
            "sched_yield", "clock_nanosleep", "nanosleep", "poll", "ppoll"]
TICK_HZ = os.sysconf("SC_CLK_TCK")


def threads(pid):
    """{tid: (name, user ticks, system ticks)}"""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            out[int(task.name)] = (name, int(fields[11]), int(fields[12]))
        except (FileNotFoundError, ProcessLookupError):
            pass
    return out


def profile(godot, bindir, name, players, secs):
    port = free_port()
    server = TickServer(godot, name, port)
    load = subprocess.Popen([str(bindir / "wsload"), "game", "--url", f"ws://127.0.0.1:{port}/", "--clients",
                             str(players), "--size", "32", "--secs", str(secs + 6), "--warmup", "1", "--threads", "1",
                             "--connect-concurrency", "8", "--setup-timeout", "30"]
                            + (["--skip-first"] if name.endswith("_mp") else []),
                            stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(5)  # connected and warm
        pid = server.p.pid
        before, stat0 = threads(pid), server.stats[-1]
        events = ",".join(f"syscalls:sys_enter_{s}" for s in SYSCALLS)
        perf = subprocess.run(["perf", "stat", "-x", ",", "-e", events, "-p", str(pid), "--", "sleep", str(secs)],
                              capture_output=True, text=True)
        after, stat1 = threads(pid), server.stats[-1]
        load.communicate(timeout=secs + 60)
    finally:
        if load.poll() is None:
            load.kill()
        server.stop()
    msgs = (stat1["inputs"] - stat0["inputs"]) + (stat1["states"] - stat0["states"])
    counts = {}
    for line in perf.stderr.splitlines():
        parts = line.split(",")
        if len(parts) > 2 and parts[2].startswith("syscalls:sys_enter_") and parts[0].strip().isdigit():
            counts[parts[2].removeprefix("syscalls:sys_enter_")] = int(parts[0])
    cpu = {}
    for tid, (tname, u1, s1) in after.items():
        if tid in before:
            _, u0, s0 = before[tid]
            if (u1 - u0) + (s1 - s0) > 0:
                key = "main" if tid == pid else tname
                cu, cs = cpu.get(key, (0, 0))
                cpu[key] = (cu + u1 - u0, cs + s1 - s0)
    return {"name": name, "players": players, "msgs": msgs, "secs": secs, "counts": counts, "cpu": cpu,
            "inputs": stat1["inputs"] - stat0["inputs"], "states": stat1["states"] - stat0["states"]}


def report(r):
    us = lambda ticks: ticks * 1_000_000 / TICK_HZ / max(r["msgs"], 1)
    lines = [f"### {r['name']}, {r['players']} players, {r['secs']} s: {r['inputs']:,} inputs received, "
             f"{r['states']:,} states sent ({r['msgs'] / r['secs']:,.0f} messages/s)", "",
             "| thread | user µs/msg | kernel µs/msg |", "|---|---|---|"]
    total_u = total_s = 0
    for name, (u, s) in sorted(r["cpu"].items(), key=lambda kv: -sum(kv[1])):
        lines.append(f"| {name} | {us(u):.2f} | {us(s):.2f} |")
        total_u, total_s = total_u + u, total_s + s
    lines.append(f"| **process** | **{us(total_u):.2f}** | **{us(total_s):.2f}** |")
    lines += ["", "| system call | per message | per second |", "|---|---|---|"]
    for call, n in sorted(r["counts"].items(), key=lambda kv: -kv[1]):
        if n:
            lines.append(f"| {call} | {n / max(r['msgs'], 1):.3f} | {n / r['secs']:,.0f} |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--players", type=int, default=800)
    ap.add_argument("--secs", type=int, default=8)
    ap.add_argument("--servers", default="ours,ours_inline,stock")
    ap.add_argument("--bindir", default=str(ROOT / "target/release"))
    args = ap.parse_args()
    godot = subprocess.run([str(ROOT / "scripts/godot.sh")], check=True, capture_output=True, text=True).stdout.strip()
    for name in args.servers.split(","):
        print(report(profile(godot, Path(args.bindir), name, args.players, args.secs)), flush=True)


if __name__ == "__main__":
    main()
