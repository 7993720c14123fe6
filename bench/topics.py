"""Topics (issue 22), used by bench/run.py: publish() against broadcast() to the same clients, and
topics across processes through a real Redis (Debian's, scripts/redis.sh).

- Local: one process, N clients all subscribed to one topic; each frame the game sends 64 bytes to
  all of them with one publish() (ours, both I/O modes), one broadcast() (ours, the same run), or a
  send() per client (stock). Delivered msg/s as counted by wsload.
- Across processes: one process publishes 64 bytes to the topic each frame and has no clients of
  its own; one or two other processes each have N/k subscribers, reached only through the bus.
  Delivered msg/s at their clients, against the same N subscribers on the publishing process.
- Latency: two processes relay (every message a client sends is published to the topic); a client
  sends a time-stamped message 200 times a second; a client on the same process and one on the
  other receive it. p50/p99 of send-to-receive, same process against across the bus
  (bench/bus_latency.py, Python websockets clients).
"""

import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class Redis:
    def __init__(self, port):
        exe = subprocess.run([str(ROOT / "scripts/redis.sh")], check=True, capture_output=True, text=True).stdout.strip()
        self.dir = tempfile.mkdtemp(prefix="bench-redis-")
        self.p = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                   "--dir", self.dir], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        time.sleep(0.3)

    def stop(self):
        self.p.kill()
        self.p.wait(10)


def run(bench, free_port, fmt, ratio, wsload):
    n = 20 if bench.smoke else 1000
    secs = 0.4 if bench.smoke else 3
    load = ["--secs", secs, "--connect-concurrency", 8, "--setup-timeout", 20 if bench.smoke else 90]

    def delivered(impl, mode, extra=(), port=None, clients=n):
        s = bench.serve(impl, mode, True, extra=extra)
        try:
            r = wsload(bench.bindir, "broadcast", s.port, clients, *load)
        finally:
            s.stop()
        return r["rate"] if r["connected"] == clients else None

    pub = delivered("ours", "publish")
    pub_inline = delivered("ours_inline", "publish")
    bro = delivered("ours", "broadcast")
    stock = delivered("stock", "broadcast")
    bench.row(f"publish() 64 B to {n} subscribers of one topic per frame, unpaced: delivered msg/s "
              f"(broadcast() to the same clients in this run: {fmt(bro)}, publish/broadcast {fmt(ratio(pub, bro), '×')})",
              pub, pub_inline, stock, None, "", "publish ≥ 0.9× broadcast", (ratio(pub, bro) or 0) >= 0.9)

    redis_port = free_port()
    redis = Redis(redis_port)
    bus = ["--bus", f"redis://127.0.0.1:{redis_port}"]
    try:
        for receivers in (1, 2):
            publisher = bench.serve("ours", "publish", True, extra=bus)
            servers = [bench.serve("ours", "publish", True, extra=[*bus, "--no-publish"]) for _ in range(receivers)]
            try:
                import concurrent.futures as cf
                each = n // receivers
                with cf.ThreadPoolExecutor(receivers) as pool:
                    results = list(pool.map(lambda s: wsload(bench.bindir, "broadcast", s.port, each, *load), servers))
            finally:
                for s in [publisher, *servers]:
                    s.stop()
            ok = all(r["connected"] == each for r in results)
            rate = sum(r["rate"] for r in results) if ok else None
            bench.row(f"publish() across processes through Redis: 1 publishing process, {receivers} receiving "
                      f"process(es) with {n} subscribers in all, unpaced: delivered msg/s (same process: {fmt(pub)}, "
                      f"across/same {fmt(ratio(rate, pub), '×')})", rate, None, None, None)
        subprocess.run([str(ROOT / "scripts/python-env.sh")], check=True)
        lat = subprocess.run([str(ROOT / ".venv/bin/python"), str(ROOT / "bench/bus_latency.py"), bench.godot,
                              str(redis_port), "1" if bench.smoke else "4"], capture_output=True, text=True, timeout=300)
        figures = dict(line.split(" ", 1) for line in lat.stdout.splitlines() if line.startswith(("SAME", "ACROSS")))
        if lat.returncode != 0 or len(figures) != 2:
            raise RuntimeError("bench/bus_latency.py failed:\n" + lat.stdout + lat.stderr)
        for key, label in (("SAME", "same process"), ("ACROSS", "across processes through Redis")):
            p50, p99 = (float(x) for x in figures[key].split())
            bench.row(f"relay latency, a message published to a topic, 200 msg/s, {label}: p50 / p99 (ms)",
                      f"{p50:.2f} / {p99:.2f}", None, None, None)
    finally:
        redis.stop()
