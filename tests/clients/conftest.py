"""Fixtures for the real-client tests: a Strom broker process on 127.0.0.1:0.

The broker is the release binary (STROM_BIN, default target/release/strom), started with JSON
logs; the fixture reads its stderr until the "broker started" line and takes the bound port from
it, so no test waits on a timer for the broker to come up.
"""

import json
import os
import signal
import subprocess
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STROM = os.environ.get("STROM_BIN", str(ROOT / "target" / "release" / "strom"))
START_TIMEOUT_S = 60


class Broker:
    """A broker process; restartable on the same data directory and port."""

    def __init__(self, data_dir: Path, args=(), prefix=()):
        self.data_dir = data_dir
        self.args = list(args)
        # A command to run the broker under, e.g. `ip netns exec NS`.
        self.prefix = list(prefix)
        # The address the broker listens on and clients use.
        self.host = "127.0.0.1"
        self.port = 0
        self.http_port = None
        # Every client listener's bound port, by listener name (from the "listening" lines).
        self.listeners = {}
        self.proc = None
        self.log_path = data_dir.parent / f"{data_dir.name}-broker.log"
        self.log_lines = []

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self):
        return self.launch().wait_started()

    def launch(self):
        """Starts the process without waiting: the nodes of a cluster must start together,
        since none finishes starting before a majority of the quorum runs."""
        # STROM_* variables are broker properties to the broker; the tests' own are not.
        env = {k: v for k, v in os.environ.items() if not k.startswith("STROM_TEST_")}
        env.update(STROM_LOG_FORMAT="json", RUST_LOG=os.environ.get("STROM_TEST_LOG", "info"))
        cmd = [*self.prefix, STROM, "broker", "--data-dir", str(self.data_dir), "--listen", f"{self.host}:{self.port}", *self.args]
        self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env)
        self._started = threading.Event()
        self._wants_http = "--http" in self.args
        self._http_started = threading.Event()
        threading.Thread(target=self._pump, args=(self.proc.stderr,), daemon=True).start()
        return self

    def _pump(self, stream):
        with open(self.log_path, "a") as log:
            for raw in stream:
                line = raw.decode(errors="replace")
                log.write(line)
                log.flush()
                self.log_lines.append(line)
                if '"listening"' in line:
                    fields = json.loads(line).get("fields", {})
                    self.listeners[fields["listener"]] = int(fields["address"].rsplit(":", 1)[1])
                if not self._started.is_set() and '"broker started"' in line:
                    fields = json.loads(line).get("fields", {})
                    self.port = int(fields["listen"].rsplit(":", 1)[1])
                    self._started.set()
                if '"http listener started"' in line:
                    fields = json.loads(line).get("fields", {})
                    self.http_port = int(fields["listen"].rsplit(":", 1)[1])
                    self._http_started.set()
        self._started.set()  # the process exited: wake the waiters
        self._http_started.set()

    def wait_started(self, timeout=START_TIMEOUT_S):
        ready = self._started.wait(timeout) and (not self._wants_http or self._http_started.wait(timeout))
        # A port of 0 means the "broker started" line never came: the broker exited.
        if not ready or self.proc.poll() is not None or self.port == 0:
            self.proc.kill()
            raise RuntimeError(f"broker did not start; log: {self.log_path}\n{''.join(self.log_lines[-20:])}")
        return self

    def stop(self, timeout=60):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                raise RuntimeError("broker did not stop on SIGTERM")
            assert code == 0, f"broker exited with {code}; log: {self.log_path}"
        self.proc = None

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)
        self.proc = None

    def restart(self):
        self.stop()
        return self.start()

    def errors_logged(self):
        """Log lines at ERROR level (a healthy run has none)."""
        return [l for l in self.log_lines if '"level":"ERROR"' in l]


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path / "data").start()
    yield b
    b.stop()
    assert b.errors_logged() == [], "the broker logged errors"


@pytest.fixture
def make_broker(tmp_path):
    """Factory for brokers with extra arguments; all are stopped at the end."""
    brokers = []

    def make(*args, name="data"):
        b = Broker(tmp_path / name, args).start()
        brokers.append(b)
        return b

    yield make
    for b in brokers:
        if b.proc:
            b.stop()
