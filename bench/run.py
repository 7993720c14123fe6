#!/usr/bin/env python3
"""Benchmarks this addon's WebSocketServer against Godot's stock server, side by side in one run.

  (a) ours     godot-project/bench/bench_server.gd --impl ours (ours_mp for the multiplayer broadcast),
               io_mode IO_MODE_THREAD (the default)
  (i) inline   the same with --inline: io_mode IO_MODE_INLINE
  (b) stock    the same script, --impl stock: TCPServer + one WebSocketPeer per client
  (c) core     rust/bench core-echo: the same logic on wss_core without Godot, the better of its
               I/O-thread and inline runs (the ceiling; it also shows the load generator's own)

The load comes from rust/bench wsload. Prints a markdown table and writes it to BENCHMARKS.md.
Usage: bench/run.py [--smoke] [--out FILE] (scripts/bench.sh builds first and calls this).
--smoke runs every figure at a tiny scale, to check that each one is produced, not its value.
"""

import argparse
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

from procs import Proc

ROOT = Path(__file__).resolve().parents[1]
TICK_US = 1e6 / os.sysconf("SC_CLK_TCK")
TLS_CERT = ROOT / "godot-project/tests/data/ecdsa.crt"
TLS_KEY = ROOT / "godot-project/tests/data/ecdsa.key"


# The heartbeat of our server in the idle rows: two rounds of pings fall inside the measuring window.
IDLE_HEARTBEAT = 1.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The I/O thread's busy-poll window (busy_poll_usec) of the extra unpaced echo runs: the Godot loop
# answers within microseconds when unpaced, so any window past that gives the same result.
BUSY_POLL_USEC = 50

# Headless Godot's sleep between frames (OS.low_processor_usage_mode_sleep_usec, 6,900 by
# default): the paced floor's frame (core-echo --frame-usec).
GODOT_FRAME_USEC = 6900


class Server(Proc):
    """A bench server process; collects its STAT lines."""

    def __init__(self, impl, mode, unpaced, godot, bindir, tls=False, extra=()):
        self.port = free_port()
        if impl.endswith("_inline"):
            impl, extra = impl[:-len("_inline")], [*extra, "--inline"]
        if impl == "core":
            cmd = [str(bindir / "core-echo"), "--port", str(self.port), "--mode", mode]
            cmd += ["--cert", str(TLS_CERT), "--key", str(TLS_KEY)] if tls else []
            cmd += list(extra)
        else:
            cmd = [godot, "--headless", "--path", str(ROOT / "godot-project"), "res://bench/bench_server.tscn", "--",
                   "--impl", impl, "--mode", mode, "--port", str(self.port)] + (["--unpaced"] if unpaced else [])
            cmd += ["--tls"] if tls else []
            cmd += list(extra)
        super().__init__(cmd, "STAT ", lambda v: [float(v[0])] + [int(x) for x in v[1:]], f"{impl} server")

    def window(self, t0, t1):
        """Counter deltas between the STAT lines nearest inside [t0, t1]."""
        inside = [s for s in self.stats if t0 <= s[0] <= t1]
        if len(inside) < 2:
            before = [s for s in self.stats if s[0] <= t1]
            inside = before[-2:] if len(before) >= 2 else self.stats[-2:]
        if len(inside) < 2:
            return None
        a, b = inside[0], inside[-1]
        keys = ["time", "msgs", "work_us", "poll_us", "frames", "main_ticks", "proc_ticks", "rss_kib", "peers"]
        d = {k: y - x for k, x, y in zip(keys, a, b)}
        d["rss_kib"], d["peers"] = b[7], b[8]
        return d

    def latest(self):
        return self.stats[-1] if self.stats else None


def wsload(bindir, mode, port, clients, *extra, timeout=300, tls=False):
    url = f"wss://127.0.0.1:{port}/" if tls else f"ws://127.0.0.1:{port}/"
    extra = [*extra, "--ca", TLS_CERT] if tls else list(extra)
    out = subprocess.run([str(bindir / "wsload"), mode, "--url", url, "--clients", str(clients), *map(str, extra)],
                         capture_output=True, text=True, timeout=timeout).stdout
    for line in out.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"wsload {mode} printed no RESULT:\n{out}")


def fmt(v, unit=""):
    if v is None:
        return "–"
    if isinstance(v, str):
        return v
    if v >= 100:
        return f"{v:,.0f}{unit}"
    return f"{v:.2f}{unit}" if v < 10 else f"{v:.1f}{unit}"


def ratio(a, b):
    return None if a is None or b in (None, 0) else a / b


class Bench:
    def __init__(self, smoke, godot, bindir):
        self.smoke, self.godot, self.bindir = smoke, godot, bindir
        self.rows = []  # (figure, ours, inline, stock, core, unit, target-text, met)
        self.plain = {}  # (size, clients, unpaced) -> echo results (a, i, b, c), for the TLS shares

    def row(self, figure, a, i, b, c, unit="", target=None, met=None):
        self.rows.append((figure, a, i, b, c, unit, target, met))
        print(f"  {figure}: ours {fmt(a, unit)} | inline {fmt(i, unit)} | stock {fmt(b, unit)} | core {fmt(c, unit)}"
              + ("" if target is None else f" | {target}: {'met' if met else 'NOT met'}"), flush=True)

    def serve(self, impl, mode="echo", unpaced=False, tls=False, extra=()):
        return Server(impl, mode, unpaced, self.godot, self.bindir, tls, extra)

    def echo(self, impl, clients, size, unpaced, tls=False, extra=()):
        secs = 0.4 if self.smoke else 3
        s = self.serve(impl, "echo", unpaced, tls, extra)
        try:
            r = wsload(self.bindir, "echo", s.port, clients, "--size", size, "--secs", secs, "--warmup", 0.2 if self.smoke else 0.5,
                       "--connect-concurrency", 8, "--setup-timeout", 20 if self.smoke else 90, tls=tls)
            time.sleep(0.3)
            w = s.window(r["t0"], r["t1"])
        finally:
            s.stop()
        out = {"rate": r["rate"] if r["connected"] == clients else None, "p50": r["p50_us"] / 1000, "p99": r["p99_us"] / 1000}
        if w and w["msgs"] > 0:
            out["work_us"] = w["work_us"] / w["msgs"]
            out["main_us"] = w["main_ticks"] * TICK_US / w["msgs"]
            out["proc_us"] = w["proc_ticks"] * TICK_US / w["msgs"]
        return out

    def core_echo(self, clients, size, tls=False):
        """The ceiling: the better of core-echo's two I/O modes."""
        runs = [self.echo("core", clients, size, True, tls), self.echo("core_inline", clients, size, True, tls)]
        return max(runs, key=lambda r: r["rate"] or 0)

    def echo_set(self, clients, size, unpaced, tls=False):
        """ours (thread), ours (inline), stock; with the targets of issue 10 judged on the rates.
        Unpaced plain echo also runs ours with the I/O thread busy-polling (`BUSY_POLL_USEC`), kept in
        the thread mode's result as "busy" and counted among our modes by `best`."""
        a, i, b = (self.echo(impl, clients, size, unpaced, tls) for impl in ("ours", "ours_inline", "stock"))
        if unpaced and not tls:
            a["busy"] = self.echo("ours", clients, size, unpaced, extra=("--busy-poll", str(BUSY_POLL_USEC)))
        return a, i, b

    def run_echo(self):
        sizes = [64] if self.smoke else [64, 16384]
        counts = [1, 10] if self.smoke else [1, 100, 1000]
        cpu = {}
        for size in sizes:
            for n in counts:
                core = self.core_echo(n, size)
                for unpaced in (False, True):
                    pacing = "unpaced" if unpaced else "paced"
                    label = f"echo {size} B, {n} client{'s' if n > 1 else ''}, {pacing}"
                    a, i, b = self.echo_set(n, size, unpaced)
                    target, met = self.echo_target(size, n, unpaced, a, i, b, core)
                    if not met and target and not self.smoke and self.near(size, n, unpaced, a, i, b, core):
                        # Timing on a shared 2-core machine moves ±20 % run to run: a ratio near its
                        # target is measured again, and both runs are shown.
                        first = f"{fmt(ratio(best(a, i), b['rate']), '×')} stock"
                        a, i, b = self.echo_set(n, size, unpaced)
                        target, met = self.echo_target(size, n, unpaced, a, i, b, core)
                        label += f" (repeated; first run: best mode {first})"
                    self.plain[(size, n, unpaced)] = (a, i, b, core)
                    self.row(f"{label}: msg/s", a["rate"], i["rate"], b["rate"], core["rate"] if unpaced else None, "", target, met)
                    self.row(f"{label}: p50 / p99 latency", *(f"{fmt(r['p50'])} / {fmt(r['p99'])} ms" for r in (a, i, b)),
                             f"{fmt(core['p50'])} / {fmt(core['p99'])} ms" if unpaced else None)
                    if "busy" in a:
                        busy = a["busy"]
                        with_busy = f"{label}, I/O thread with busy_poll_usec = {BUSY_POLL_USEC}"
                        self.row(f"{with_busy}: msg/s", busy["rate"], None, b["rate"], None)
                        self.row(f"{with_busy}: p50 / p99 latency", f"{fmt(busy['p50'])} / {fmt(busy['p99'])} ms", None,
                                 f"{fmt(b['p50'])} / {fmt(b['p99'])} ms", None)
                    if size == 64 and n == counts[-2 if len(counts) > 2 else -1]:
                        cpu[pacing] = (a, i, b, core)
        n = counts[-2 if len(counts) > 2 else -1]
        # The paced rows' floor: core-echo paced as headless Godot is (a frame, then ~6.9 ms of
        # sleep), so that it batches what arrives per frame as the Godot servers do; unpaced it
        # answers each message at once, another (costlier per message at low rates) pattern.
        paced_floor = {impl: self.echo(impl, n, 64, False, extra=("--frame-usec", str(GODOT_FRAME_USEC)))
                       for impl in ("core", "core_inline")}
        for pacing, (a, i, b, core) in cpu.items():
            inline_floor = None
            if pacing == "paced":
                core, inline_floor = paced_floor["core"], paced_floor["core_inline"]
            target, met = (("≤ 0.10× stock (I/O thread)", (ratio(a.get("work_us"), b.get("work_us")) or 9) <= 0.10)
                           if pacing == "paced" else (None, None))
            self.row(f"game-thread work per echoed message ({pacing}; µs around poll and echo)", a.get("work_us"),
                     i.get("work_us"), b.get("work_us"), core.get("work_us"), " µs", target, met)
            # The same echo through data_received and get_peer (a signal and four calls a message).
            sa, si = (self.echo(impl, n, 64, pacing == "unpaced", extra=("--signals",)) for impl in ("ours", "ours_inline"))
            self.row(f"game-thread work per echoed message, signal API ({pacing}; {n} clients; msg/s {fmt(sa['rate'])} / "
                     f"{fmt(si['rate'])})", sa.get("work_us"), si.get("work_us"), b.get("work_us"), None, " µs")
            # The seed's per-peer pattern: after poll(), each peer's get_packet, was_string_packet
            # and send per message (issue 23: ≤ 0.25× stock's main-thread CPU per message).
            pp, ppi = (self.echo(impl, n, 64, pacing == "unpaced", extra=("--per-peer",)) for impl in ("ours", "ours_inline"))
            target, met = (("≤ 0.25× stock (I/O thread)", (ratio(pp.get("main_us"), b.get("main_us")) or 9) <= 0.25)
                           if pacing == "paced" else (None, None))
            self.row(f"main-thread CPU per echoed message, seed-style per-peer path ({pacing}; {n} clients; get_packet, "
                     f"was_string_packet, send per message; msg/s {fmt(pp['rate'])} / {fmt(ppi['rate'])})", pp.get("main_us"),
                     ppi.get("main_us"), b.get("main_us"), None, " µs", target, met)
            self.row(f"whole-process CPU per echoed message, seed-style per-peer path ({pacing})", pp.get("proc_us"),
                     ppi.get("proc_us"), b.get("proc_us"), core.get("proc_us"), " µs")
            self.row(f"main-thread CPU per echoed message ({pacing}; /proc, includes the engine's frame)", a.get("main_us"),
                     i.get("main_us"), b.get("main_us"), core.get("main_us"), " µs")
            target = met = None
            if inline_floor is not None:
                ok = lambda x, share, floor: (x is not None and b.get("proc_us") and floor is not None
                                              and (x <= share * b["proc_us"] or x <= 1.3 * floor))
                target = "≤ 0.4× stock or ≤ 1.3× core (I/O thread); ≤ 0.6× stock or ≤ 1.3× the inline floor (inline)"
                met = bool(ok(a.get("proc_us"), 0.4, core.get("proc_us")) and ok(i.get("proc_us"), 0.6, inline_floor.get("proc_us")))
            floors = "" if inline_floor is None else (f"; core: core-echo paced as Godot, I/O thread; inline floor "
                                                      f"{fmt(inline_floor.get('proc_us'), ' µs')}")
            self.row(f"whole-process CPU per echoed message ({pacing}{floors})", a.get("proc_us"), i.get("proc_us"),
                     b.get("proc_us"), core.get("proc_us"), " µs", target, met)

    @staticmethod
    def echo_target(size, n, unpaced, a, i, b, core):
        """Issue 10's targets for an echo row: paced, the default mode (the I/O thread) ≥ 1.0× stock;
        unpaced, the better mode ≥ 1.0× stock (≥ 2× for 64 B to 100 clients) and ≥ 80 % of core-echo."""
        if not unpaced:
            return "I/O thread ≥ 1.0× stock", (ratio(a["rate"], b["rate"]) or 0) >= 0.995
        need = 2.0 if (size, n) == (64, 100) else 1.0
        share = ratio(best(a, i), core["rate"]) or 0
        return (f"best ≥ {need:g}× stock, ≥ 80 % of core",
                (ratio(best(a, i), b["rate"]) or 0) >= need * 0.995 and share >= 0.80)

    @staticmethod
    def near(size, n, unpaced, a, i, b, core):
        """Whether a missed target was missed narrowly (within 15 %), on each part it failed."""
        need = 2.0 if (size, n, unpaced) == (64, 100, True) else 1.0
        r = ratio(best(a, i) if unpaced else a["rate"], b["rate"]) or 0
        if not unpaced:
            return r >= need * 0.85
        share = ratio(best(a, i), core["rate"]) or 0
        return r >= need * 0.85 and share >= 0.80 * 0.85

    def idle(self, impl, n, unpaced=False):
        """poll() µs per frame and RSS per connection with n idle clients (spread over processes),
        and how many were still connected at the end. Ours runs its heartbeat every second
        (`IDLE_HEARTBEAT`), so the window holds two rounds of pings to every client."""
        extra = ["--heartbeat", str(IDLE_HEARTBEAT)] if impl.startswith("ours") else []
        s = self.serve(impl, "idle", unpaced, extra=extra)
        try:
            time.sleep(0.6)
            base = s.latest()
            per_proc = 2500 if not self.smoke else n
            procs = []
            hold = 4 if self.smoke else 12
            timeout = 10 if self.smoke else (40 if impl == "stock" else 60)
            for k0 in range(0, n, per_proc):
                k = min(per_proc, n - k0)
                procs.append(subprocess.Popen([str(self.bindir / "wsload"), "idle", "--url", f"ws://127.0.0.1:{s.port}/", "--clients", str(k),
                                               "--hold", str(hold + timeout), "--setup-timeout", str(timeout), "--threads", "1",
                                               "--connect-concurrency", "64"], stdout=subprocess.PIPE, text=True))
            connected = 0
            for p in procs:
                line = p.stdout.readline()
                connected += int(line.split()[1]) if line.startswith("READY") else 0
            time.sleep(0.6)
            t0 = time.time()
            time.sleep(1.0 if self.smoke else 2.0)
            w = s.window(t0, time.time())
            for p in procs:
                p.terminate()
                p.wait()
        finally:
            s.stop()
        if not w or not base:
            return None, None, connected, None
        poll = w["poll_us"] / max(w["frames"], 1)
        rss = (w["rss_kib"] - base[7]) / max(connected, 1)
        return poll, rss, connected, w["peers"]

    def run_idle(self):
        for n in ([50] if self.smoke else [1000, 10000]):
            res = {impl: self.idle(impl, n) for impl in ("ours", "ours_inline", "stock", "core")}
            note = lambda impl: "" if res[impl][2] == n else f" (only {res[impl][2]} connected)"
            target = met = None
            if n == 10000 or self.smoke:
                target, met = "≤ 20 µs (I/O thread)", (res["ours"][0] or 99) <= 20
            hb = f"ours with heartbeat_interval {IDLE_HEARTBEAT:g} s"
            self.row(f"poll() per frame, {n} idle connections, paced ({hb}; inline: the pings are sent in poll()){note('stock')}",
                     res["ours"][0], res["ours_inline"][0], res["stock"][0], res["core"][0], " µs", target, met)
            warm = self.idle("ours", n, unpaced=True)
            self.row(f"poll() per frame, {n} idle connections, unpaced (no sleep between frames: a warm cache; {hb})", warm[0], None,
                     None, None, " µs")
            self.row(f"resident memory per idle connection, {n} ({hb}){note('stock')}", res["ours"][1], res["ours_inline"][1],
                     res["stock"][1], res["core"][1], " KiB", "≤ 8 KiB", (res["ours"][1] or 99) <= 8)
            kept = [res[k][3] for k in ("ours", "ours_inline")]
            self.row(f"idle connections still connected after the window, {n} ({hb}; answering pings)",
                     *(None if k is None else str(k) for k in kept), None, None, "",
                     f"all {res['ours'][2]}", kept == [res["ours"][2], res["ours_inline"][2]])

    def burst(self, impl, n, size):
        """RSS per connection with n idle clients, then again 1.5 s and 3 s after each of them sent
        one message of `size` bytes and got it echoed (buffers grown for it must be given back)."""
        s = self.serve(impl, "idle", extra=["--limit", str(2 * size + 65536)])
        try:
            time.sleep(0.6)
            base = s.latest()
            p = subprocess.Popen([str(self.bindir / "wsload"), "idle", "--url", f"ws://127.0.0.1:{s.port}/", "--clients", str(n),
                                  "--size", str(size), "--burst-at", "1.5", "--hold", "10", "--threads", "2",
                                  "--connect-concurrency", "64", "--setup-timeout", "60"], stdout=subprocess.PIPE, text=True)
            line = p.stdout.readline()
            connected = int(line.split()[1]) if line.startswith("READY") else 0
            time.sleep(1.2)
            before = s.latest()
            line = p.stdout.readline()
            echoed = int(line.split()[2]) if line.startswith("BURST") else 0
            time.sleep(1.5)
            after = s.latest()
            time.sleep(1.5)
            later = s.latest()
            p.terminate()
            p.wait()
        finally:
            s.stop()
        if not (base and before and after) or connected < n or echoed < n:
            return None, None, None
        return tuple((x[7] - base[7]) / n for x in (before, after, later))

    def run_memory(self):
        n, size = (20, 1 << 20) if self.smoke else (1000, 1 << 20)
        res = {impl: self.burst(impl, n, size) for impl in ("ours", "ours_inline", "stock")}
        self.row(f"resident memory per idle connection, {n}, before a burst", *(res[k][0] for k in ("ours", "ours_inline", "stock")),
                 None, " KiB")
        self.row(f"resident memory per idle connection, {n}, 1.5 s after each sent (and got back) a 1 MiB message",
                 *(res[k][1] for k in ("ours", "ours_inline", "stock")), None, " KiB", "≤ 8 KiB (I/O thread)",
                 (res["ours"][1] or 99) <= 8)
        self.row(f"resident memory per idle connection, {n}, 3 s after that burst",
                 *(res[k][2] for k in ("ours", "ours_inline", "stock")), None, " KiB")

    def broadcast(self, impl, n, unpaced=False):
        s = self.serve(impl, "broadcast", unpaced)
        try:
            extra = ["--skip-first"] if impl == "ours_mp" else []
            r = wsload(self.bindir, "broadcast", s.port, n, "--secs", 0.4 if self.smoke else 3, "--connect-concurrency", 8,
                       "--setup-timeout", 20 if self.smoke else 90, *extra)
        finally:
            s.stop()
        return r["rate"] if r["connected"] == n else None

    def run_broadcast(self):
        n = 20 if self.smoke else 1000
        for unpaced in (False, True):
            pacing = "unpaced" if unpaced else "paced"
            a, i, mp, b = (self.broadcast(impl, n, unpaced) for impl in ("ours", "ours_inline", "ours_mp", "stock"))
            c = max(self.broadcast("core", n), self.broadcast("core_inline", n), key=lambda v: v or 0) if unpaced else None
            target = met = None
            if unpaced:
                target, met = "best ≥ 20× stock", (ratio(best_rate(a, i), b) or 0) >= 20
            else:
                target, met = "I/O thread ≥ 1.0× stock", (ratio(a, b) or 0) >= 0.995
            self.row(f"broadcast 64 B to {n} clients per frame, {pacing}, raw mode broadcast(): delivered msg/s", a, i, b, c, "",
                     target, met)
            self.row(f"broadcast 64 B to {n} clients per frame, {pacing}, multiplayer put_packet(target 0): delivered msg/s", mp,
                     None, b, None)

    def run_compression(self):
        """permessage-deflate (bench/compression.py, Python websockets clients that offer it)."""
        subprocess.run([str(ROOT / "scripts/python-env.sh")], check=True)
        clients, secs = (20, 1) if self.smoke else (500, 5)
        out = subprocess.run([str(ROOT / ".venv/bin/python"), str(ROOT / "bench/compression.py"), self.godot,
                              str(clients), str(secs)], capture_output=True, text=True, timeout=600)
        rows = [json.loads(l[4:]) for l in out.stdout.splitlines() if l.startswith("ROW ")]
        if out.returncode != 0 or len(rows) != 10:
            raise RuntimeError("bench/compression.py failed:\n" + out.stdout + out.stderr)
        for r in rows:
            what = {"json": "JSON game state (~200 B text, 20 Hz)", "chat": "chat lines (40-160 B text, 20 Hz)"}[r["mode"]]
            setting = {"off": "compression off", "shared": f"COMPRESSION_SHARED, threshold {r['threshold']}",
                       "dedicated": f"COMPRESSION_DEDICATED 11 bits, threshold {r['threshold']}"}[r["setting"]]
            assert r["negotiated"] == r["compression"], r
            self.row(f"{what} to {clients} clients, {setting}: bytes on the wire per message / I/O thread µs per "
                     f"message / main thread CPU % / KiB per connection (connected, after the messages)",
                     f"{r['bytes_per_msg']:.0f} / {r['io_us_per_msg']:.1f} / {r['main_cpu_percent']:.1f} / "
                     f"{r['kib_per_conn']:.1f}, {r['kib_per_conn_after']:.1f}", None, None, None)
        # The window's size: the core's compressor alone, CPU per message and bytes out.
        out = subprocess.run([str(self.bindir / "deflate-windows"), "--rounds", "2" if self.smoke else "60"],
                             capture_output=True, text=True, timeout=600)
        rows = [json.loads(l[4:]) for l in out.stdout.splitlines() if l.startswith("ROW ")]
        if out.returncode != 0 or len(rows) != 16:
            raise RuntimeError("deflate-windows failed:\n" + out.stdout + out.stderr)
        for stream in ("json", "chat"):
            mine = [r for r in rows if r["stream"] == stream]
            self.row(f"permessage-deflate, one recipient's {stream} stream ({mine[0]['plain']:.0f} B a message) on the "
                     f"core's compressor: bytes out / CPU µs per message, COMPRESSION_SHARED and DEDICATED 9-15 bits",
                     ", ".join(f"{r['setting'].replace('dedicated ', '')}: {r['bytes']:.0f} B / {r['us_per_msg']:.1f} µs"
                               for r in [mine[-1], *mine[:-1]]), None, None, None)

    def run_topics(self):
        import topics
        topics.run(self, free_port, fmt, ratio, wsload)

    def run_tick(self):
        import tick
        tick.run(self, free_port, fmt, ratio)

    def run_tick_compression(self):
        """Only the tick benchmark's rows with permessage-deflate (part of `tick`; alone, for a
        results file of its own: `--only tick_compression`)."""
        import tick
        plain = tick.search(self, "ours", free_port, 400, 25600, 4, 3) if not self.smoke else (
            (lambda f: (f if f["ok"] else None, None))(tick.trial(self, "ours", 20, 1, free_port)))
        tick.compressed(self, plain, free_port, 1 if self.smoke else 4)

    def run_connect(self):
        n = 50 if self.smoke else 1000
        res = {}
        for impl in ("ours", "ours_inline", "stock", "core"):
            s = self.serve(impl, "idle", unpaced=impl == "ours_inline")
            try:
                r = wsload(self.bindir, "connect", s.port, n, "--setup-timeout", 10)
            finally:
                s.stop()
            res[impl] = r["setup_secs"] if r["connected"] == n else f"{r['connected']} of {n} in {r['setup_secs']:.0f} s"
        num = lambda v: v if isinstance(v, float) else None
        self.row(f"{n} clients connecting at once: time until every handshake is done (inline: unpaced)", res["ours"],
                 res["ours_inline"], res["stock"], res["core"], " s", "≤ 0.5 s", (num(res["ours"]) or 99) <= 0.5)

    def run_tls(self):
        n = 50 if self.smoke else 500
        rates = {}
        for impl in ("ours", "ours_inline", "stock", "core"):
            s = self.serve(impl, "idle", tls=True, unpaced=impl == "ours_inline")
            try:
                r = wsload(self.bindir, "connect", s.port, n, "--setup-timeout", 20, tls=True)
            finally:
                s.stop()
            rates[impl] = n / r["setup_secs"] if r["connected"] == n else f"{r['connected']} of {n} in {r['setup_secs']:.0f} s"
        self.row(f"TLS: {n} clients connecting at once (ECDSA P-256; inline: unpaced): handshakes per second", rates["ours"],
                 rates["ours_inline"], rates["stock"], rates["core"], "/s")
        clients = 10 if self.smoke else 100
        for unpaced in (False, True):
            key = (64, clients, unpaced)
            if key not in self.plain:
                continue
            plain = self.plain[key]
            tls = list(self.echo_set(clients, 64, unpaced, True))
            tls.append(self.core_echo(clients, 64, True) if unpaced else None)
            share = [None if t is None or not p.get("rate") or t.get("rate") is None else 100 * t["rate"] / p["rate"]
                     for t, p in zip(tls, plain)]
            pacing = "unpaced" if unpaced else "paced"
            a, i, b = tls[:3]
            if unpaced:
                target, met = "best ≥ 1.0× stock", (ratio(best(a, i), b["rate"]) or 0) >= 0.995
            else:
                target, met = "I/O thread ≥ 1.0× stock", (ratio(a["rate"], b["rate"]) or 0) >= 0.995
            self.row(f"TLS echo 64 B, {clients} clients, {pacing}: msg/s", a["rate"], i["rate"], b["rate"], tls[3]["rate"] if tls[3] else None,
                     "", target, met)
            self.row(f"TLS echo 64 B, {clients} clients, {pacing}: throughput as a share of plain", *share[:3],
                     share[3] if unpaced else None, " %")

    def table(self):
        lines = ["| figure | (a) ours, I/O thread | (i) ours, inline I/O | (b) stock | (c) core | a/b | i/b | target | met |",
                 "|---|---|---|---|---|---|---|---|---|"]
        num = lambda v: isinstance(v, (int, float))
        for figure, a, i, b, c, unit, target, met in self.rows:
            ra = ratio(a, b) if num(a) and num(b) else None
            ri = ratio(i, b) if num(i) and num(b) else None
            lines.append(f"| {figure} | {fmt(a, unit)} | {fmt(i, unit)} | {fmt(b, unit)} | {fmt(c, unit)} | "
                         f"{fmt(ra, '×') if ra is not None else '–'} | {fmt(ri, '×') if ri is not None else '–'} | "
                         f"{target or ''} | {'' if target is None else ('yes' if met else '**no**')} |")
        return "\n".join(lines)


def best(a, i):
    """The best rate of our modes (echo results; with the busy-polling run where there is one)."""
    return max(best_rate(a["rate"], i["rate"]) or 0, a.get("busy", {}).get("rate") or 0) or None


def best_rate(a, i):
    return max((v for v in (a, i) if v is not None), default=None)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    ap.add_argument("--bindir", default=str(ROOT / "target/release"))
    ap.add_argument("--command", default="scripts/bench.sh")
    ap.add_argument("--only", default="", help="comma-separated parts (tick,echo,idle,memory,broadcast,topics,compression,connect,tls; "
                    "tick_compression: only the tick part's rows with compression)")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    godot = subprocess.run([str(ROOT / "scripts/godot.sh")], check=True, capture_output=True, text=True).stdout.strip()
    version = subprocess.run([godot, "--headless", "--version"], capture_output=True, text=True).stdout.strip().splitlines()[-1]
    bench = Bench(args.smoke, godot, Path(args.bindir))
    started = time.time()
    parts = {p.__name__: p for p in (bench.run_tick, bench.run_echo, bench.run_idle, bench.run_memory, bench.run_broadcast,
                                     bench.run_topics, bench.run_compression, bench.run_connect, bench.run_tls,
                                     bench.run_tick_compression)}
    chosen = args.only.split(",") if args.only else [p for p in parts if p != "run_tick_compression"]
    for part in (parts[f"run_{c}"] if not c.startswith("run_") else parts[c] for c in chosen):
        print(f"== {part.__name__}", flush=True)
        part()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    mem = next((l.split(":", 1)[1].strip() for l in open("/proc/meminfo") if l.startswith("MemTotal")), "?")
    import tick
    header = f"""# Benchmarks

Command: `{args.command}` ({'smoke run: tiny scale, figures not meaningful' if args.smoke else 'full run'}),
{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {time.time() - started:.0f} s.
Machine: {os.cpu_count()} cores ({cpu}), {mem} memory, {platform.system()} {platform.release()}. Godot {version}, headless.
The load generator (`wsload`) and the servers share these cores.

(a) this addon with its I/O thread (the default `io_mode`), (i) this addon with inline I/O
(`io_mode = IO_MODE_INLINE`: `poll()` does the socket work), (b) Godot's stock `TCPServer` +
`WebSocketPeer` server, all running `godot-project/bench/bench_server.gd` in the same Godot binary;
(c) `core-echo`, the same logic on the Rust core without Godot (the better of its two I/O modes;
in the paced CPU rows, paced as headless Godot: `--frame-usec {GODOT_FRAME_USEC}`, the I/O-thread run
in the column and the inline run in the label).
Targets are issue 10's; "best" is the best of (a), (i) and, in the unpaced plain echo rows, (a) with
`busy_poll_usec = {BUSY_POLL_USEC}` (the I/O thread polls without sleeping until the game answers, up to
that long; shown in a row of its own under each). Paced: headless Godot's default frame pacing (~145 frames/s);
unpaced: `OS.low_processor_usage_mode_sleep_usec = 0`. Closed-loop echo: every client keeps one
message in flight. Our echo takes every waiting message in one `take_messages()` call and answers
them in one `send_buffer()` call, from the batch's one buffer (`queue_messages = true`); the rows marked "signal API" use
`data_received` and `get_peer(id)` (a signal and four calls per message) instead. "Game-thread
work" is `Time.get_ticks_usec()` around the networking part of each frame (our `poll()` and the
echo; the stock per-peer loop); the CPU figures come from `/proc/self/task/<main thread>/stat` and
`/proc/self/stat`.

The tick benchmark (`bench/tick.py`, `godot-project/bench/tick_server.gd`) is what a dedicated game
server does: 60 ticks/s (`_physics_process`); every client sends a 32-byte input 20 times a second
(open loop) and gets a 128-byte state message 20 times a second carrying the newest input the
server has from it; latency is from an input's sending to the first state that reflects it. For
each server a search (doubling, then bisecting) finds the largest number of clients with
networking time per tick p99 ≤ 16.6 ms, input-to-state latency p99 ≤ 100 ms, every client
connected and nothing lost (inputs sent but never received, state sends refused); a number fails
only if two trials in a row fail (a single latency spike on this shared machine would otherwise
end the search, for any server). Networking time
is `Time.get_ticks_usec()` around the tick's `poll()`, input handling and state sends (ours, raw:
every input in one `take_messages()` call, read from the batch's one buffer `data` at its
`offsets`, every state appended to one buffer sent in one `send_buffer()` call); the load
generator runs in processes of 1,500 clients, and its CPU in the measuring window is shown (it
shares the 2 cores with the server, so at the limit both are busy). Multiplayer mode goes through
the `MultiplayerPeer` API (`get_packet_peer`, `get_packet`, `set_target_peer`, `put_packet`) of
our server and of Godot's `WebSocketMultiplayerPeer`; it does not use RPCs (the load generator
speaks WebSocket, not SceneMultiplayer's protocol). In multiplayer mode inline I/O polls a second
time after sending the states, so that writing them is inside the measured tick (otherwise the
server's deferred flush writes them after it; `send_messages` writes its own). Process CPU per
player at the fixed loads ({', '.join(f'{n:,}' for n in tick.FIXED_LOADS)}) is the median of {tick.ROUNDS} rounds in which every
server runs once in turn (one trial moved ±20-40 % between runs), beside the floor (`core-echo
--mode tick`) and what the Godot servers take with no client at all (the engine's frames).

"""
    profile = (ROOT / "bench/profile.md").read_text()
    text = header + bench.table() + "\n\n" + profile
    Path(args.out).write_text(text)
    print("\n" + text)
    missing = [r[0] for r in bench.rows if r[1] is None and r[2] is None]
    if missing:
        print("figures not produced for (a):", *missing, sep="\n  ", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
