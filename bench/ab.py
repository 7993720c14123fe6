#!/usr/bin/env python3
"""Two builds of the addon, side by side: alternating runs of one benchmark figure, with stock.

On this shared two-core machine one run of a figure moves ±10-40 % from one minute to the next,
more than most single changes save. This runs the same server script, load and measuring window
with each library in turn (A, B, stock, A, B, stock, ...), so that a slow minute hits all of them,
and prints each one's median. Used for the before/after figures of bench/profile-process.md; the
published figures come from scripts/bench.sh.

Usage: bench/ab.py [--rounds N] [--kind perpeer|echo|tick] A.so B.so [more.so ...]
  perpeer  bench_server.gd --per-peer (the seed's get_packet / was_string_packet / send loop),
           100 paced clients of `wsload echo`, 64 B: main-thread and process CPU per message
  echo     the same with the batch API (take_messages / send_buffer)
  tick     tick_server.gd --impl ours at --players N (default 800): process CPU per player
Each library is put in a copy of godot-project (in a temporary directory); the load generator
and core-echo come from target/release (build them first: cargo build --release -p wss-bench).
"""

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import run
import tick

ROOT = Path(__file__).resolve().parents[1]
LIB = "addons/websocket_server/bin/libwebsocket_server.x86_64-unknown-linux-gnu.editor.so"


def project_with(lib, into):
    """A copy of godot-project (and the addon) at `into`, with the library `lib`."""
    shutil.copytree(ROOT / "godot-project", into / "godot-project", symlinks=True,
                    ignore=shutil.ignore_patterns(".godot"))
    shutil.copytree(ROOT / "addons", into / "addons", ignore=shutil.ignore_patterns("*.so"))
    shutil.copy(lib, into / LIB)
    return into


def echo_figures(godot, bindir, root, impl, extra):
    run.ROOT = root
    s = run.Server(impl, "echo", False, godot, bindir, False, extra)
    try:
        r = run.wsload(bindir, "echo", s.port, 100, "--size", 64, "--secs", 3, "--warmup", 0.5,
                       "--connect-concurrency", 8, "--setup-timeout", 90)
        time.sleep(0.3)
        w = s.window(r["t0"], r["t1"])
    finally:
        s.stop()
    return {"main µs/msg": w["main_ticks"] * run.TICK_US / w["msgs"],
            "process µs/msg": w["proc_ticks"] * run.TICK_US / w["msgs"]}


class Bench:
    """What tick.trial needs of bench/run.py's Bench."""

    def __init__(self, godot, bindir):
        self.godot, self.bindir, self.smoke = godot, bindir, False


def tick_figures(godot, bindir, root, name, players):
    tick.ROOT = root
    fig = tick.trial(Bench(godot, bindir), name, players, 4, run.free_port)
    return {"process µs/player/s": fig["server_cpu"] * 1e6 / players if fig.get("server_cpu") is not None else float("nan"),
            "held": 1.0 if fig["ok"] else 0.0}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--kind", choices=("perpeer", "echo", "tick"), default="perpeer")
    ap.add_argument("--players", type=int, default=800)
    ap.add_argument("libs", nargs="+", type=Path)
    args = ap.parse_args()
    godot = subprocess.run([str(ROOT / "scripts/godot.sh")], capture_output=True, text=True, check=True).stdout.strip()
    bindir = ROOT / "target/release"
    with tempfile.TemporaryDirectory(prefix="ab-") as tmp:
        roots = {}
        for k, lib in enumerate(args.libs):
            label = f"{chr(ord('A') + k)} ({lib.name})"
            roots[label] = project_with(lib, Path(tmp) / str(k))
            # Godot imports the project once before its first run; not inside a measured window.
            subprocess.run([godot, "--headless", "--path", str(roots[label] / "godot-project"), "--import"],
                           capture_output=True, timeout=300)
        runs = {label: [] for label in [*roots, "stock"]}
        for r in range(args.rounds):
            for label in runs:
                root = roots.get(label, next(iter(roots.values())))
                impl = "stock" if label == "stock" else "ours"
                if args.kind == "tick":
                    figs = tick_figures(godot, bindir, root, impl, args.players)
                else:
                    extra = ("--per-peer",) if args.kind == "perpeer" and impl == "ours" else ()
                    figs = echo_figures(godot, bindir, root, impl, extra)
                runs[label].append(figs)
                print(f"round {r + 1} {label}: " + ", ".join(f"{k} {v:.2f}" for k, v in figs.items()), flush=True)
        print()
        for label, figs in runs.items():
            print(f"median {label}: " + ", ".join(
                f"{k} {statistics.median(f[k] for f in figs):.2f}" for k in figs[0]))


if __name__ == "__main__":
    sys.exit(main())
