"""The brokers under test and what is measured on their processes.

This module owns how each broker is started on loopback with a fresh data directory, how the
harness knows it is ready, how topics are created (Kafka's CreateTopics through
confluent-kafka's AdminClient, the same request for every broker), and the per-process
measurements: CPU seconds from `/proc/PID/stat` (utime + stime of all threads), resident memory
sampled from `/proc/PID/status` (VmRSS split into anonymous and file-backed pages, plus the
kernel's own high-water mark VmHWM), and an optional `perf record` profile.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

from harness.client import Job

CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


@dataclasses.dataclass(frozen=True)
class BrokerSpec:
    """One broker configuration in the comparison."""

    name: str
    label: str
    durable: bool
    serves_fetch: bool

    def command(self, tools: "Tools", data_dir: Path, port: int) -> list[str]:
        address = f"127.0.0.1:{port}"
        if self.name == "strom":
            return [str(tools.strom), "broker", "--data-dir", str(data_dir), "--listen", address]
        engine = {
            "tansu-null": "null://sink",
            "tansu-memory": "memory://tansu/",
            # Relative to the working directory, which is the fresh data directory.
            "tansu-sqlite": "sqlite://tansu.db",
        }[self.name]
        return [
            str(tools.tansu), "broker",
            "--listener-url", f"tcp://{address}",
            "--advertised-listener-url", f"tcp://{address}",
            "--storage-engine", engine,
        ]


@dataclasses.dataclass(frozen=True)
class Tools:
    """Paths of the binaries a run uses."""

    strom: Path
    tansu: Path | None
    rdkafka_performance: Path


BROKERS = {
    spec.name: spec
    for spec in [
        BrokerSpec("strom", "Strom (disk; acks=all fsyncs)", durable=True, serves_fetch=True),
        BrokerSpec("tansu-null", "Tansu null://sink (discards data)", durable=False,
                   serves_fetch=False),
        BrokerSpec("tansu-memory", "Tansu memory:// (not durable)", durable=False,
                   serves_fetch=True),
        BrokerSpec("tansu-sqlite", "Tansu sqlite:// (durable)", durable=True, serves_fetch=True),
    ]
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BrokerNotReady(RuntimeError):
    pass


class RunningBroker:
    """A started broker process; use as a context manager so it is always stopped."""

    def __init__(self, spec: BrokerSpec, tools: Tools, work_dir: Path, log_path: Path):
        self.spec = spec
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.data_dir = work_dir / f"{spec.name}-{self.port}"
        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)
        self.data_dir.mkdir(parents=True)
        self.argv = spec.command(tools, self.data_dir, self.port)
        self.log_path = log_path
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "warn")
        self.job = Job(self.argv, log_path, cwd=self.data_dir, env=env)
        self.started_at = time.monotonic()

    @property
    def pid(self) -> int:
        return self.job.pid

    def wait_ready(self, timeout_s: float = 60.0) -> float:
        """Waits until the broker answers Metadata; returns the seconds that took."""
        from confluent_kafka.admin import AdminClient

        deadline = time.monotonic() + timeout_s
        while True:
            if not self.job.alive():
                raise BrokerNotReady(f"{self.spec.name} exited during start; see {self.log_path}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1.0):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise BrokerNotReady(f"{self.spec.name} did not listen within {timeout_s}s")
                time.sleep(0.05)
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        remaining = max(1.0, deadline - time.monotonic())
        admin.list_topics(timeout=remaining)
        return time.monotonic() - self.started_at

    def create_topic(self, topic: str, partitions: int, timeout_s: float = 120.0) -> None:
        """CreateTopics, then waits until Metadata shows every partition with a leader."""
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        futures = admin.create_topics(
            [NewTopic(topic, num_partitions=partitions, replication_factor=1)],
            operation_timeout=timeout_s, request_timeout=timeout_s,
        )
        futures[topic].result(timeout=timeout_s)
        deadline = time.monotonic() + timeout_s
        while True:
            metadata = admin.list_topics(topic=topic, timeout=10)
            found = metadata.topics.get(topic)
            if (found is not None and found.error is None
                    and len(found.partitions) == partitions
                    and all(p.leader >= 0 for p in found.partitions.values())):
                return
            if time.monotonic() > deadline:
                raise BrokerNotReady(f"topic {topic} not ready on {self.spec.name}")
            time.sleep(0.1)

    def data_bytes(self) -> int:
        total = 0
        for root, _, files in os.walk(self.data_dir):
            for name in files:
                try:
                    total += os.path.getsize(os.path.join(root, name))
                except OSError:
                    pass
        return total

    def stop(self) -> int:
        """Stops the broker (SIGTERM, then SIGKILL), removes its data; returns its exit code."""
        outcome = self.job.terminate(grace_s=30.0)
        shutil.rmtree(self.data_dir, ignore_errors=True)
        return outcome.returncode

    def __enter__(self) -> "RunningBroker":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def read_cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of the process, in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # Fields after the command name, which is in parentheses and may contain spaces.
    fields = stat[stat.rindex(")") + 2:].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLOCK_TICKS_PER_S


def read_memory_kb(pid: int) -> dict[str, int]:
    """VmRSS, RssAnon, RssFile and VmHWM from /proc/PID/status, in KiB."""
    wanted = {"VmRSS", "RssAnon", "RssFile", "VmHWM"}
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in wanted:
            values[key] = int(rest.split()[0])
    return values


@dataclasses.dataclass
class Measurement:
    cpu_s: float
    peak_rss_mb: float
    peak_anon_mb: float
    peak_file_mb: float
    hwm_mb: float
    samples: list[tuple[float, int, int, int]]  # (seconds, VmRSS KiB, RssAnon KiB, RssFile KiB)


class ProcessMonitor:
    """Broker CPU time between start() and stop(), and its memory sampled in between."""

    def __init__(self, pid: int, interval_s: float = 0.1):
        self.pid = pid
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._samples: list[tuple[float, int, int, int]] = []
        self._thread = threading.Thread(target=self._sample_loop, daemon=True)
        self._cpu_start = 0.0
        self._t0 = 0.0

    def _sample(self) -> None:
        try:
            m = read_memory_kb(self.pid)
        except (OSError, ValueError):
            return
        self._samples.append((time.monotonic() - self._t0, m.get("VmRSS", 0),
                              m.get("RssAnon", 0), m.get("RssFile", 0)))

    def _sample_loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def start(self) -> "ProcessMonitor":
        self._t0 = time.monotonic()
        self._cpu_start = read_cpu_seconds(self.pid)
        self._sample()
        self._thread.start()
        return self

    def stop(self) -> Measurement:
        self._stop.set()
        self._thread.join()
        self._sample()
        try:
            cpu_s = read_cpu_seconds(self.pid) - self._cpu_start
            hwm_kb = read_memory_kb(self.pid).get("VmHWM", 0)
        except (OSError, ValueError):
            cpu_s, hwm_kb = float("nan"), 0
        samples = self._samples or [(0.0, 0, 0, 0)]
        return Measurement(
            cpu_s=cpu_s,
            peak_rss_mb=max(s[1] for s in samples) / 1024,
            peak_anon_mb=max(s[2] for s in samples) / 1024,
            peak_file_mb=max(s[3] for s in samples) / 1024,
            hwm_mb=hwm_kb / 1024,
            samples=samples,
        )


class Profiler:
    """`perf record` while a workload runs, summarised as one process's hottest symbols."""

    def __init__(self, pid: int, out_dir: Path, name: str):
        self.data_path = out_dir / f"{name}.perf.data"
        self.report_path = out_dir / f"{name}.perf.txt"
        self.pid = pid
        # System-wide, filtered by pid when reporting: attaching with `perf record -p` records
        # no samples on this project's VMs, while `-a` does.
        self.job = Job(["perf", "record", "-a", "-F", "997", "-o", str(self.data_path)],
                       out_dir / f"{name}.perf.log")

    def stop(self) -> str:
        """Stops recording and returns the flat profile (top symbols by self time)."""
        self.job.interrupt()
        self.job.finish(timeout_s=0, grace_s=30.0)
        result = subprocess.run(
            ["perf", "report", "-i", str(self.data_path), "--stdio", "--no-children",
             "--pid", str(self.pid), "--percentage", "relative",
             "--sort", "dso,symbol", "--percent-limit", "1.5"],
            capture_output=True, text=True, timeout=300,
        )
        lines = [re.sub(r"(\s+-)+\s*$", "", line) for line in result.stdout.splitlines()
                 if line.strip() and not line.startswith("#")]
        text = "\n".join(lines[:25])
        self.report_path.write_text(result.stdout)
        self.data_path.unlink(missing_ok=True)
        return text
