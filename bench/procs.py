"""A benchmark server process: its figure lines collected as they come (bench/run.py, bench/tick.py)."""

import subprocess
import threading


class Proc:
    """Runs `cmd`; lines starting with `prefix` are parsed into `self.stats` with `parse` (given
    the fields after the prefix), the rest kept in `self.log`. Waits for a LISTENING line."""

    def __init__(self, cmd, prefix, parse, what):
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.prefix, self.parse = prefix, parse
        self.stats, self.log, self.ready = [], [], threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if not self.ready.wait(30):
            raise RuntimeError(f"{what} did not start:\n{''.join(self.log)}")

    def _read(self):
        for line in self.p.stdout:
            if line.startswith(self.prefix):
                self.stats.append(self.parse(line.split()[1:]))
            else:
                self.log.append(line)
                if line.startswith("LISTENING"):
                    self.ready.set()

    def stop(self):
        self.p.terminate()
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
