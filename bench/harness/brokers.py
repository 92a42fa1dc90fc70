"""The brokers under test and what is measured on their processes.

This module owns how each broker is started on loopback with a fresh data directory, how the
harness knows it is ready, how topics are created (Kafka's CreateTopics through
confluent-kafka's AdminClient, the same request for every broker), and the per-process
measurements: CPU seconds from `/proc/PID/stat` (utime + stime of all threads), resident memory
sampled from `/proc/PID/status` (VmRSS split into anonymous and file-backed pages, plus the
kernel's own high-water mark VmHWM), and an optional `perf record` profile.

It also owns the cluster group's `RunningCluster`: three `strom broker` processes on loopback,
each a broker and a voter of the metadata quorum (its own data directory, client and controller
ports, `--node-id`, the same `--controller-quorum`), started together and ready once each has
logged "broker started" and Metadata lists all three.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
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


def free_ports(n: int) -> list[int]:
    """`n` distinct free loopback ports (every socket is held until all are chosen)."""
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(s)
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


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


# ---------------------------------------------------------------------------------------------
# a 3-node Strom cluster on loopback


STARTED_MESSAGE = "broker started"


def started_listen_address(log_text: str) -> str | None:
    """The client address from the broker's JSON "broker started" line, or None before it."""
    for line in log_text.splitlines():
        if STARTED_MESSAGE not in line:
            continue
        try:
            fields = json.loads(line).get("fields", {})
        except ValueError:
            continue
        if fields.get("message") == STARTED_MESSAGE and fields.get("listen"):
            return fields["listen"]
    return None


def log_problems(log_text: str) -> tuple[list[str], bool]:
    """ERROR-level lines of a JSON broker log (a healthy run has none), and whether it panicked."""
    errors = [line for line in log_text.splitlines() if '"level":"ERROR"' in line]
    return errors, "panicked" in log_text


@dataclasses.dataclass
class ClusterNode:
    node_id: int
    port: int
    controller_port: int
    data_dir: Path
    log_path: Path
    argv: list[str]
    job: Job | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.job.pid


def cluster_node_command(strom: Path, node_id: int, data_dir: Path, port: int,
                         controller_port: int, quorum: str) -> list[str]:
    """One node's command line: broker and voter, JSON logs at info (for "broker started")."""
    return [str(strom), "broker", "--node-id", str(node_id), "--data-dir", str(data_dir),
            "--listen", f"127.0.0.1:{port}", "--controller-listen", f"127.0.0.1:{controller_port}",
            "--controller-quorum", quorum, "--log-format", "json", "--log-level", "info"]


class RunningCluster:
    """`nodes` Strom processes forming one cluster; a context manager so all are stopped.

    The nodes are launched together: none finishes starting before a majority of the quorum
    runs, so waiting for one before launching the next would never end."""

    def __init__(self, tools: Tools, work_dir: Path, log_dir: Path, tag: str, nodes: int = 3):
        ports = free_ports(2 * nodes)
        ids = list(range(1, nodes + 1))
        controller = {i: ports[nodes + i - 1] for i in ids}
        self.quorum = ",".join(f"{i}@127.0.0.1:{controller[i]}" for i in ids)
        self.nodes: dict[int, ClusterNode] = {}
        for i in ids:
            data_dir = work_dir / f"{tag}-node-{i}"
            if data_dir.exists():
                shutil.rmtree(data_dir)
            data_dir.mkdir(parents=True)
            self.nodes[i] = ClusterNode(
                node_id=i, port=ports[i - 1], controller_port=controller[i], data_dir=data_dir,
                log_path=log_dir / f"{tag}.node-{i}.log",
                argv=cluster_node_command(tools.strom, i, data_dir, ports[i - 1], controller[i],
                                          self.quorum))
        self.started_at = time.monotonic()
        try:
            for node in self.nodes.values():
                node.job = Job(node.argv, node.log_path, cwd=node.data_dir)
        except Exception:
            self.stop()
            raise

    @property
    def bootstrap(self) -> str:
        return ",".join(n.bootstrap for n in self.nodes.values())

    @property
    def pids(self) -> list[int]:
        return [n.pid for n in self.nodes.values()]

    def placeholders(self) -> dict[str, str]:
        """This cluster's addresses and directories -> the names the report prints instead."""
        names = {}
        for i, n in self.nodes.items():
            names[f"127.0.0.1:{n.port}"] = f"127.0.0.1:$PORT{i}"
            names[f"127.0.0.1:{n.controller_port}"] = f"127.0.0.1:$CPORT{i}"
            names[str(n.data_dir)] = f"$DATA{i}"
        return names

    def wait_ready(self, timeout_s: float = 90.0) -> float:
        """Waits for every node's "broker started" line, then for Metadata to list every
        broker (a broker is listed once the controller has unfenced it); returns the seconds."""
        from confluent_kafka.admin import AdminClient

        deadline = time.monotonic() + timeout_s
        waiting = dict(self.nodes)
        while waiting:
            for i, node in list(waiting.items()):
                if not node.job.alive():
                    raise BrokerNotReady(f"cluster node {i} exited during start; see "
                                         f"{node.log_path}")
                try:
                    text = node.log_path.read_text(errors="replace")
                except OSError:
                    text = ""
                if started_listen_address(text):
                    del waiting[i]
            if waiting and time.monotonic() > deadline:
                raise BrokerNotReady(f"cluster nodes {sorted(waiting)} did not log "
                                     f"\"{STARTED_MESSAGE}\" within {timeout_s}s")
            time.sleep(0.05)
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        while True:
            metadata = admin.list_topics(timeout=max(1.0, deadline - time.monotonic()))
            if set(metadata.brokers) == set(self.nodes):
                return time.monotonic() - self.started_at
            if time.monotonic() > deadline:
                raise BrokerNotReady(f"Metadata lists brokers {sorted(metadata.brokers)}, not "
                                     f"{sorted(self.nodes)}, after {timeout_s}s")
            time.sleep(0.1)

    def create_topic(self, topic: str, partitions: int, replication_factor: int,
                     config: dict[str, str] | None = None,
                     timeout_s: float = 120.0) -> dict[int, dict]:
        """CreateTopics, then waits until every partition has a leader and all its replicas in
        sync. Returns {partition: {"leader", "replicas", "isr"}}."""
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        futures = admin.create_topics(
            [NewTopic(topic, num_partitions=partitions, replication_factor=replication_factor,
                      config=dict(config or {}))],
            operation_timeout=timeout_s, request_timeout=timeout_s,
        )
        futures[topic].result(timeout=timeout_s)
        deadline = time.monotonic() + timeout_s
        while True:
            placement = self.placement(topic, admin)
            if (placement is not None and len(placement) == partitions
                    and all(p["leader"] >= 0 and len(p["replicas"]) == replication_factor
                            and len(p["isr"]) == replication_factor
                            for p in placement.values())):
                return placement
            if time.monotonic() > deadline:
                raise BrokerNotReady(f"topic {topic} not ready on the cluster: {placement}")
            time.sleep(0.1)

    def placement(self, topic: str, admin=None) -> dict[int, dict] | None:
        """Leader, replicas and in-sync replicas of every partition, as Metadata reports them."""
        from confluent_kafka.admin import AdminClient

        admin = admin or AdminClient({"bootstrap.servers": self.bootstrap})
        metadata = admin.list_topics(topic=topic, timeout=10)
        found = metadata.topics.get(topic)
        if found is None or found.error is not None:
            return None
        return {p: {"leader": m.leader, "replicas": list(m.replicas), "isr": list(m.isrs)}
                for p, m in sorted(found.partitions.items())}

    def problems(self) -> list[str]:
        """Exited or panicked nodes (errors of the workload)."""
        out = []
        for i, node in self.nodes.items():
            if node.job is None:
                continue
            if not node.job.alive():
                out.append(f"cluster node {i} exited during the workload (log {node.log_path})")
            try:
                _, panicked = log_problems(node.log_path.read_text(errors="replace"))
            except OSError:
                continue
            if panicked:
                out.append(f"cluster node {i} panicked (log {node.log_path})")
        return out

    def error_lines(self) -> dict[int, int]:
        """Per node, how many ERROR lines it logged so far."""
        counts = {}
        for i, node in self.nodes.items():
            try:
                errors, _ = log_problems(node.log_path.read_text(errors="replace"))
            except OSError:
                continue
            if errors:
                counts[i] = len(errors)
        return counts

    def stop(self) -> dict[int, int | None]:
        """SIGTERM to every node at once (an orderly shutdown of the whole cluster; one node
        at a time would leave the last ones without a quorum), SIGKILL 30 s later; removes the
        data. Returns each node's exit code."""
        jobs = {i: n.job for i, n in self.nodes.items() if n.job is not None}
        for job in jobs.values():
            if job.process.returncode is None:
                try:
                    os.kill(job.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        codes = {}
        stop_by = time.monotonic() + 30.0
        for i, job in jobs.items():
            remaining = max(0.0, stop_by - time.monotonic())
            codes[i] = job.finish(timeout_s=job.elapsed_s() + remaining, grace_s=5.0).returncode
        for node in self.nodes.values():
            shutil.rmtree(node.data_dir, ignore_errors=True)
        return codes

    def __enter__(self) -> "RunningCluster":
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


def combine_measurements(measurements: list[Measurement]) -> Measurement:
    """Several processes (a cluster's brokers) as one: CPU seconds added up, memory figures
    those of the largest process (each node is a separate broker with its own memory)."""
    if not measurements:
        return Measurement(cpu_s=float("nan"), peak_rss_mb=0.0, peak_anon_mb=0.0,
                           peak_file_mb=0.0, hwm_mb=0.0, samples=[])
    return Measurement(
        cpu_s=sum(m.cpu_s for m in measurements),
        peak_rss_mb=max(m.peak_rss_mb for m in measurements),
        peak_anon_mb=max(m.peak_anon_mb for m in measurements),
        peak_file_mb=max(m.peak_file_mb for m in measurements),
        hwm_mb=max(m.hwm_mb for m in measurements),
        samples=[],
    )


class Profiler:
    """`perf record` while a workload runs, summarised as the hottest symbols of one process
    (or of several together: a cluster's brokers)."""

    def __init__(self, pid: int | list[int], out_dir: Path, name: str):
        self.data_path = out_dir / f"{name}.perf.data"
        self.report_path = out_dir / f"{name}.perf.txt"
        self.pids = [pid] if isinstance(pid, int) else list(pid)
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
             "--pid", ",".join(str(p) for p in self.pids), "--percentage", "relative",
             "--sort", "dso,symbol", "--percent-limit", "1.5"],
            capture_output=True, text=True, timeout=300,
        )
        lines = [re.sub(r"(\s+-)+\s*$", "", line) for line in result.stdout.splitlines()
                 if line.strip() and not line.startswith("#")]
        text = "\n".join(lines[:25])
        self.report_path.write_text(result.stdout)
        self.data_path.unlink(missing_ok=True)
        return text
