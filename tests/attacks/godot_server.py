"""The attack suite's and the soak's server: godot-project/tests/attack/echo_server.tscn (our
WebSocketServer echoing in headless Godot), started as a process, with its STATS lines parsed and
its memory, descriptors and threads read from /proc."""

import json
import os
import re
import resource
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def io_args():
    """`--inline` when the suites run against inline I/O (WSS_IO_MODE=inline, set by test.sh for
    its second pass); the scenes then set io_mode = IO_MODE_INLINE."""
    return ["--inline"] if inline_io() else []


def inline_io():
    return os.environ.get("WSS_IO_MODE") == "inline"


def godot_path():
    return subprocess.run([str(ROOT / "scripts/godot.sh")], check=True, capture_output=True,
                          text=True).stdout.strip()


class GodotServer:
    def __init__(self, *args, nofile=None):
        def limit():
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        self.proc = subprocess.Popen(
            [godot_path(), "--headless", "--path", str(ROOT / "godot-project"),
             "res://tests/attack/echo_server.tscn", "--", *args, *io_args()],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=limit)
        self.log = []
        self.stats = {}
        self._listening = threading.Event()
        self.port = None
        threading.Thread(target=self._read, daemon=True).start()
        if not self._listening.wait(30):
            self.stop(check=False)
            raise AssertionError("server did not start:\n" + "".join(self.log))

    def _read(self):
        for line in self.proc.stdout:
            if line.startswith("STATS "):
                self.stats = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}
                continue
            self.log.append(line)
            m = re.match(r"LISTENING (\d+)", line)
            if m:
                self.port = int(m.group(1))
                self._listening.set()

    def wait_stats(self, pred, timeout=10.0):
        """Waits until the server's books satisfy `pred`; returns them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.stats and pred(self.stats):
                return self.stats
            time.sleep(0.05)
        raise AssertionError(f"books never satisfied the condition: {self.stats}")

    def proc_status(self):
        """(RSS KiB, open descriptors, threads) of the server process."""
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
        threads = int(re.search(r"Threads:\s+(\d+)", status).group(1))
        fds = len(os.listdir(f"/proc/{self.proc.pid}/fd"))
        return rss, fds, threads

    def thread_cpu_seconds(self, name):
        """CPU seconds of the process's threads called `name` (e.g. the I/O thread; None: the main
        thread)."""
        total = 0.0
        for tid in os.listdir(f"/proc/{self.proc.pid}/task"):
            try:
                if name is None and int(tid) != self.proc.pid:
                    continue
                if name is not None and Path(f"/proc/{self.proc.pid}/task/{tid}/comm").read_text().strip() != name:
                    continue
                fields = Path(f"/proc/{self.proc.pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
            except FileNotFoundError:
                continue
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def cpu_seconds(self):
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self, check=True):
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        out = "".join(self.log)
        if check:
            for bad in ("SCRIPT ERROR", "BOOKS ERROR", "panicked", "Error loading extension"):
                assert bad not in out, out


UPGRADE = ("GET /{path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


def read_head(sock):
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        if not chunk:
            break
        head += chunk
    return head.decode("latin-1")


def raw_client(port, timeout=5.0, rcvbuf=None):
    """A raw socket after a successful upgrade. `rcvbuf`: a small receive buffer, set before
    connecting so that the TCP window stays small (a slow reader)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    s.sendall(UPGRADE.format(path="").encode())
    head = read_head(s)
    assert head.startswith("HTTP/1.1 101 "), head
    return s


def frame(opcode, payload=b"", fin=True, rsv=0, mask=True, length=None):
    """A client frame; `length` overrides the encoded payload length."""
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload) if length is None else length
    if n < 126:
        head = bytes([first, (0x80 if mask else 0) | n])
    elif n < 65536:
        head = bytes([first, (0x80 if mask else 0) | 126]) + struct.pack(">H", n)
    else:
        head = bytes([first, (0x80 if mask else 0) | 127]) + struct.pack(">Q", n)
    if not mask:
        return head + payload
    key = b"\x01\x02\x03\x04"
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def read_frames(sock, until_close=True, timeout=5.0):
    """Server frames as (opcode, payload) until a Close (or EOF). A reset counts as EOF."""
    sock.settimeout(timeout)
    buf = b""
    frames = []

    def need(n):
        nonlocal buf
        while len(buf) < n:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                chunk = b""
            if not chunk:
                return False
            buf += chunk
        return True

    while need(2):
        op, n = buf[0] & 0x0F, buf[1] & 0x7F
        hl = 2
        if n == 126:
            if not need(4):
                break
            n, hl = struct.unpack(">H", buf[2:4])[0], 4
        elif n == 127:
            if not need(10):
                break
            n, hl = struct.unpack(">Q", buf[2:10])[0], 10
        if not need(hl + n):
            break
        frames.append((op, buf[hl:hl + n]))
        buf = buf[hl + n:]
        if op == 8 and until_close:
            break
    return frames


def close_code(frames):
    """The code of the Close frame among `frames` (None if there is none)."""
    for op, payload in frames:
        if op == 8:
            return struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else 1005
    return None


FIGURES = ROOT / "target" / "attack-figures.json"


def record(name, **figures):
    """Keeps an attack's measured figures in target/attack-figures.json (for RELIABILITY.md)."""
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    data[name] = figures
    FIGURES.write_text(json.dumps(data, indent=1, sort_keys=True))
