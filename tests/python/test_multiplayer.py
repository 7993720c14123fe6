"""Godot's high-level multiplayer across processes: one server process, four stock
`WebSocketMultiplayerPeer` client processes, and a fifth that must be refused.

The scenario (godot-project/tests/multiplayer/mp_main.gd) runs twice: with our WebSocketServer
(`listen(port, [], true)`) and with Godot's own `WebSocketMultiplayerPeer.create_server`. Each
process prints its observations; both runs must observe the same things, and the things expected.
"""

import os
import queue
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = 4


def godot():
    return subprocess.run([str(ROOT / "scripts/godot.sh")], check=True, capture_output=True, text=True).stdout.strip()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    def __init__(self, name, *args):
        self.name = name
        self.p = subprocess.Popen(
            [godot(), "--headless", "--path", str(ROOT / "godot-project"), "res://tests/multiplayer/mp_main.tscn", "--", *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.lines = []
        self.q = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.append(line)
            self.q.put(line)

    def wait_line(self, text, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if text in self.q.get(timeout=0.2):
                    return
            except queue.Empty:
                if self.p.poll() is not None and self.q.empty():
                    break
        raise AssertionError(f"{self.name} never printed {text!r}:\n{''.join(self.lines)}")

    def finish(self, timeout=60):
        try:
            self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        # Every line the process printed has been read once its output reaches EOF.
        self.reader.join(10)
        return self.p.returncode

    def observations(self):
        return sorted(line[4:].strip() for line in self.lines if line.startswith("OBS "))

    def problems(self):
        out = "".join(self.lines)
        return [bad for bad in ("SCRIPT ERROR", "Error loading extension", "timed out", "panicked", "leaked") if bad in out]


def scenario(impl, tmp):
    port = free_port()
    done = tmp / f"{impl}-refused-done"
    server = Proc(f"{impl} server", "--role", "server", "--impl", impl, "--port", str(port), "--clients", str(CLIENTS),
                  "--refused-done", str(done),
                  # test.sh's second pass: the same scenario against inline I/O.
                  *(["--inline"] if os.environ.get("WSS_IO_MODE") == "inline" else []))
    server.wait_line("LISTENING")
    clients = [Proc(f"{impl} client {i}", "--role", "client", "--idx", str(i), "--port", str(port)) for i in range(CLIENTS)]
    server.wait_line("REFUSING", timeout=60)
    refused = Proc(f"{impl} client 9", "--role", "client", "--idx", "9", "--port", str(port))
    codes = {refused.name: refused.finish()}
    done.touch()
    procs = [server, *clients, refused]
    codes.update({p.name: p.finish() for p in procs if p is not refused})
    return procs, codes


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mp")
    return {impl: scenario(impl, tmp) for impl in ("ours", "stock")}


def test_every_process_ends_cleanly(runs):
    for impl, (procs, codes) in runs.items():
        for p in procs:
            assert codes[p.name] == 0 and not p.problems(), f"{p.name}: exit {codes[p.name]} {p.problems()}\n{''.join(p.lines)}"


def test_ours_observes_what_stock_observes(runs):
    ours, _ = runs["ours"]
    stock, _ = runs["stock"]
    for o, s in zip(ours, stock):
        assert o.observations() == s.observations(), f"{o.name} vs {s.name}\n{''.join(o.lines)}\n---\n{''.join(s.lines)}"


def test_the_scenario_happened(runs):
    procs, _ = runs["ours"]
    obs = {p.name.split(" ", 1)[1]: p.observations() for p in procs}
    server = obs["server"]
    assert f"server: {CLIENTS} clients announced: true" in server
    assert "server: is_server true, unique id 1, relay true" in server
    assert "server: local_too" in server
    assert "server: every client saw the RPCs, spawns and sync: true" in server
    assert "server: client 9 has tried: true" in server
    assert "server: peers that joined while refusing: 0" in server
    assert f"server: peers still connected: {CLIENTS}" in server
    # A forced disconnect (SceneMultiplayer.disconnect_peer) emits nothing on the server; SceneMultiplayer
    # still tells the other clients (client 0 sees client 3 leave).
    assert "server: peer_disconnected for [1, 2] (true)" in server
    assert "server: client 0 saw everyone leave: true" in server
    assert "server: after close(): status 0" in server
    for i in range(CLIENTS):
        c = obs[f"client {i}"]
        assert f"client {i}: connected, id valid true" in c
        assert f"client {i}: hello_all from server" in c
        assert f"client {i}: hello_you addressed to me: true" in c
        assert f"client {i}: local_too" in c
        assert f"client {i}: unreliable_ping" in c
        assert f"client {i}: players [\"P0\", \"P1\", \"P2\", \"P3\"] synced" in c
        others = sorted(["server"] + [f"client {j}" for j in range(CLIENTS) if j != i])
        assert f"client {i}: peers {others}".replace("'", '"') in c
    assert "client 1: relayed message from client 0, sender id matches: true" in obs["client 1"]
    assert "client 1: server disconnected" in obs["client 1"]
    assert "client 2: asked to quit" in obs["client 2"]
    assert "client 3: server disconnected" in obs["client 3"]
    for gone in (1, 2, 3):
        assert f"client 0: peer_disconnected client {gone}" in obs["client 0"]
    assert "client 0: server disconnected" in obs["client 0"]
    assert obs["client 9"] == ["client 9: connection failed"]
