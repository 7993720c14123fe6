"""Where the whole process's time per message goes (issue 23): the tick benchmark's server at a fixed
number of players, measured from outside for a window of seconds: CPU per message of each thread
(user and kernel, /proc/<pid>/task/*/stat) and system calls per message by kind (perf stat on the
syscall tracepoints, every thread of the process). A message is an input received or a state sent.

Usage: python3 bench/profile.py [--players N] [--secs S] [--servers ours,ours_inline,stock]
       [--bindir target/release]   (servers: those of bench/tick.py, and core / core_inline: the floor,
       core-echo's tick loop on the Rust core without Godot, threaded or inline)   (after scripts/bench.sh or cargo build --release -p wss-bench and
       scripts/build.sh --release). Prints a markdown section; bench/profile-process.md holds a run.
"""

import argparse
import os
import subprocess
import time
from pathlib import Path

from procs import Proc
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




def libc_of(pid):
    """The libc the process runs with (Godot runs through its own loader and sid's libc)."""
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        path = line.split()[-1]
        if "/libc.so" in path:
            return path
    raise RuntimeError(f"no libc mapped in {pid}")


def count_allocs(pid, secs):
    """malloc and free calls per thread over `secs` (uprobes on the libc the process runs with;
    they slow each call, so this runs after the CPU window). Godot and Rust both allocate through
    libc's malloc. Recorded and counted by thread id (`perf stat --per-thread` mislabels threads)."""
    names = {tid: ("main" if tid == pid else name) for tid, (name, _, _) in threads(pid).items()}
    for fn in ("malloc", "free"):
        subprocess.run(["perf", "probe", "-q", "-x", libc_of(pid), "--add", fn], capture_output=True)
    data = f"/tmp/profile-allocs-{pid}.data"
    subprocess.run(["perf", "record", "-q", "-e", "probe_libc:malloc,probe_libc:free", "-p", str(pid), "-o", data,
                    "--", "sleep", str(secs)], capture_output=True)
    subprocess.run(["perf", "probe", "-q", "-d", "probe_libc:*"], capture_output=True)
    script = subprocess.run(["perf", "script", "-i", data, "-F", "tid,event"], capture_output=True, text=True)
    os.unlink(data)
    out = {}
    for line in script.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].isdigit():
            key = names.get(int(parts[0]), parts[0])
            fn = parts[1].rstrip(":").removeprefix("probe_libc:")
            out.setdefault(key, {}).setdefault(fn, 0)
            out[key][fn] += 1
    return out


class CoreTick(Proc):
    """The floor: `core-echo --mode tick`, the same tick loop on the Rust core without Godot."""

    def __init__(self, bindir, name, port):
        cmd = [str(bindir / "core-echo"), "--port", str(port), "--mode", "tick"]
        cmd += ["--inline"] if name == "core_inline" else []
        super().__init__(cmd, "TICK ", lambda v: dict(zip(TickServer.KEYS, [float(v[0])] + [int(x) for x in v[1:]])),
                         f"core-echo tick {name}")


def profile(godot, bindir, name, players, secs, with_allocs=False):
    port = free_port()
    server = CoreTick(bindir, name, port) if name.startswith("core") else TickServer(godot, name, port)
    extra = secs + 2 if with_allocs else 0
    load = subprocess.Popen([str(bindir / "wsload"), "game", "--url", f"ws://127.0.0.1:{port}/", "--clients",
                             str(players), "--size", "32", "--secs", str(secs + 6 + extra), "--warmup", "1", "--threads", "1",
                             "--connect-concurrency", "8", "--setup-timeout", "30"]
                            + (["--skip-first"] if name.endswith("_mp") else []),
                            stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(5)  # connected and warm
        pid = server.p.pid
        before, t0 = threads(pid), time.time()
        events = ",".join(f"syscalls:sys_enter_{s}" for s in SYSCALLS)
        perf = subprocess.run(["perf", "stat", "-x", ",", "-e", events, "-p", str(pid), "--", "sleep", str(secs)],
                              capture_output=True, text=True)
        after, t1 = threads(pid), time.time()
        allocs = count_allocs(pid, secs) if with_allocs else None
        t2 = time.time()
        time.sleep(1.5)  # the server's next figure line, after the window
        load.communicate(timeout=secs + 60)
    finally:
        if load.poll() is None:
            load.kill()
        server.stop()
    inputs, states = between(server.stats, t0, t1)
    msgs = inputs + states
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
    amsgs = sum(between(server.stats, t1, t2))
    return {"name": name, "players": players, "msgs": msgs, "secs": secs, "counts": counts, "cpu": cpu,
            "allocs": allocs, "alloc_msgs": amsgs,
            "inputs": inputs, "states": states, "wall": t1 - t0}


def between(stats, t0, t1):
    """(inputs, states) the server counted from t0 to t1: its rates over the figure lines (one a
    second) that span the window, times the window's length (the lines do not fall on its ends)."""
    span = [s for s in stats if t0 - 1.2 <= s["time"] <= t1 + 1.2]
    first, last = span[0], span[-1]
    scale = (t1 - t0) / max(last["time"] - first["time"], 1e-9)
    return (round((last["inputs"] - first["inputs"]) * scale), round((last["states"] - first["states"]) * scale))


def report(r):
    us = lambda ticks: ticks * 1_000_000 / TICK_HZ / max(r["msgs"], 1)
    lines = [f"### {r['name']}, {r['players']} players, {r['secs']} s: {r['inputs']:,} inputs received, "
             f"{r['states']:,} states sent ({r['msgs'] / r['wall']:,.0f} messages/s)", "",
             "| thread | user µs/msg | kernel µs/msg |", "|---|---|---|"]
    total_u = total_s = 0
    for name, (u, s) in sorted(r["cpu"].items(), key=lambda kv: -sum(kv[1])):
        lines.append(f"| {name} | {us(u):.2f} | {us(s):.2f} |")
        total_u, total_s = total_u + u, total_s + s
    lines.append(f"| **process** | **{us(total_u):.2f}** | **{us(total_s):.2f}** |")
    lines += ["", "| system call | per message | per second |", "|---|---|---|"]
    for call, n in sorted(r["counts"].items(), key=lambda kv: -kv[1]):
        if n:
            # perf counted for `secs`; the messages are those of the CPU window around it.
            per_sec = n / r["secs"]
            lines.append(f"| {call} | {per_sec * r['wall'] / max(r['msgs'], 1):.3f} | {per_sec:,.0f} |")
    if r["allocs"]:
        lines += ["", f"| thread | malloc per message | free per message | (a second window: {r['alloc_msgs']:,} messages) |",
                  "|---|---|---|---|"]
        for name, c in sorted(r["allocs"].items(), key=lambda kv: -sum(kv[1].values())):
            m = max(r["alloc_msgs"], 1)
            if sum(c.values()):
                lines.append(f"| {name} | {c.get('malloc', 0) / m:.2f} | {c.get('free', 0) / m:.2f} | |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--players", type=int, default=800)
    ap.add_argument("--secs", type=int, default=8)
    ap.add_argument("--servers", default="ours,ours_inline,stock")
    ap.add_argument("--allocs", action="store_true", help="also count malloc/free per thread (uprobes)")
    ap.add_argument("--bindir", default=str(ROOT / "target/release"))
    args = ap.parse_args()
    godot = subprocess.run([str(ROOT / "scripts/godot.sh")], check=True, capture_output=True, text=True).stdout.strip()
    for name in args.servers.split(","):
        print(report(profile(godot, Path(args.bindir), name, args.players, args.secs, args.allocs)), flush=True)


if __name__ == "__main__":
    main()
