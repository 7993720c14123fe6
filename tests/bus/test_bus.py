"""Topics across processes: three headless Godot chat servers (godot-project/demo/chat_server.gd
--bus) behind a real nginx (deploy/nginx/sites/godot-cluster.conf, least connections), sharing
their rooms and global channel through a real Redis (Debian's, scripts/redis.sh). 300 clients
spread over the processes, each in one of five rooms and on the global channel (overlapping
topics): every message must reach every other member of its room (or everyone, for "/all"), on
any process, exactly once. Then the bus is killed (SIGKILL) and restarted, and stopped (SIGSTOP)
and continued: the processes say so, local delivery goes on, cross-process delivery resumes by
itself. Both I/O modes (WSS_IO_MODE)."""

import asyncio
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import websockets

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests/attacks"))
sys.path.insert(0, str(ROOT / "tests/deploy"))
from test_nginx import ChatServer, Nginx, free_port, tls_client  # noqa: E402

CLIENTS = 300
ROOMS = 5


class Redis:
    def __init__(self, port=None):
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="redis-test-")
        exe = subprocess.run([str(ROOT / "scripts/redis.sh")], check=True, capture_output=True,
                             text=True).stdout.strip()
        self.proc = subprocess.Popen([exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", self.dir],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def lines(server, text):
    return sum(1 for line in server.log if text in line)


def wait_for(pred, what, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)


class Client:
    def __init__(self, ws, room):
        self.ws, self.room, self.server, self.got = ws, room, None, []


async def connect_all(port, n):
    ctx = tls_client()
    clients = []
    for i in range(n):
        room = f"r{i % ROOMS}"
        ws = await websockets.connect(f"wss://127.0.0.1:{port}/?room={room}&name=c{i}", ssl=ctx,
                                      server_hostname="game.example.com", max_queue=None)
        clients.append(Client(ws, room))
    for c in clients:
        await c.ws.send("/where")
        c.server = re.search(r"server=(\S+)", await asyncio.wait_for(c.ws.recv(), 10)).group(1)
    return clients


async def drain(clients, quiet=0.5):
    """Reads every client until nothing came for `quiet` seconds."""
    async def one(c):
        while True:
            try:
                c.got.append(await asyncio.wait_for(c.ws.recv(), quiet))
            except asyncio.TimeoutError:
                return
    await asyncio.gather(*(one(c) for c in clients))


def expected(clients, sent):
    """For each client, the messages it must get: (sender index, text, to all?)."""
    want = {i: [] for i in range(len(clients))}
    for s, text, everyone, only_local in sent:
        for i, c in enumerate(clients):
            if i == s:
                continue
            if only_local and c.server != clients[s].server:
                continue
            if everyone or c.room == clients[s].room:
                want[i].append(text)
    return want


def check(clients, sent):
    want = expected(clients, sent)
    for i, c in enumerate(clients):
        tagged = [m for m in c.got if m.startswith("m:")]
        assert sorted(tagged) == sorted(want[i]), (
            f"client {i} ({c.server}, {c.room}): missing {sorted(set(want[i]) - set(tagged))[:5]}, "
            f"unexpected or twice {[m for m in tagged if tagged.count(m) > 1 or m not in want[i]][:5]}")
        c.got.clear()


async def send_round(clients, label, sent, only_local=False, senders=None):
    for s in senders if senders is not None else range(0, len(clients), 7):
        text = f"m:{label}:{s}"
        everyone = s % 3 == 0
        await clients[s].ws.send(("/all " if everyone else "") + text)
        sent.append((s, text, everyone, only_local))


def test_three_processes_share_rooms_through_the_bus_and_survive_it_failing(running):
    redis = running(Redis())
    bus = f"redis://127.0.0.1:{redis.port}"
    servers = [running(ChatServer(f"chat-{i}", args=("--bus", bus))) for i in (1, 2, 3)]
    wait_for(lambda: all(lines(s, "bus connected") == 1 for s in servers), "every process on the bus")
    subs = [(rf"127\.0\.0\.1:908{i + 1}", f"127.0.0.1:{s.port}") for i, s in enumerate(servers)]
    n = running(Nginx(sites=["sites/godot-cluster.conf"], subs=subs))

    async def run():
        clients = await connect_all(n.port, CLIENTS)
        placed = {c.server for c in clients}
        assert placed == {"chat-1", "chat-2", "chat-3"}, placed
        await asyncio.sleep(0.5)  # the processes' subscriptions reach the bus
        await drain(clients, 0.3)
        for c in clients:
            c.got.clear()

        # Up: every message once at every room mate (or everyone), on every process.
        sent = []
        for r in range(3):
            await send_round(clients, f"up{r}", sent)
        await drain(clients)
        check(clients, sent)

        # Killed: every process is told; a message reaches only the room mates on its process.
        redis.signal(signal.SIGKILL)
        redis.stop()
        wait_for(lambda: all(lines(s, "bus disconnected") == 1 for s in servers), "told of the kill")
        sent = []
        await send_round(clients, "down", sent, only_local=True)
        await drain(clients)
        check(clients, sent)
        wait_for(lambda: all(lines(s, "publishes failed") >= 1 for s in servers), "failed publishes reported")

        # Restarted on the same port: every process reconnects and subscribes again by itself.
        again = running(Redis(redis.port))
        wait_for(lambda: all(lines(s, "bus connected") == 2 for s in servers), "reconnected")
        await asyncio.sleep(0.3)
        sent = []
        await send_round(clients, "back", sent)
        await drain(clients)
        check(clients, sent)

        # Stopped (hung: its sockets stay open, nothing answers): noticed, then continued.
        again.signal(signal.SIGSTOP)
        wait_for(lambda: all(lines(s, "bus disconnected") == 2 for s in servers), "told of the hang")
        sent = []
        await send_round(clients, "hung", sent, only_local=True)
        await drain(clients)
        check(clients, sent)
        again.signal(signal.SIGCONT)
        wait_for(lambda: all(lines(s, "bus connected") == 3 for s in servers), "reconnected after the hang")
        await asyncio.sleep(0.3)
        sent = []
        await send_round(clients, "continued", sent)
        await drain(clients)
        check(clients, sent)
        for c in clients:
            await c.ws.close()

    asyncio.run(run())
