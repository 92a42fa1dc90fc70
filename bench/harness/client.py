"""The load generator: librdkafka's `rdkafka_performance`, run as a child process.

This module owns the command lines given to the tool, running it with a deadline (SIGINT at the
deadline, which makes the tool stop and still print its summary; SIGKILL if it does not), the
client's own CPU time (from `wait4`), and reading the numbers back: the tool's final summary line
for throughput and the per-record latency files that its `-l -A FILE` mode writes.

Every broker gets the same command lines; only the bootstrap address differs.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import shlex
import signal
import subprocess
import threading
import time
from pathlib import Path

# "% 500000 messages produced (50000000 bytes), 500000 delivered (offset 6, 0 failed) in 1630ms:
#  306748 msgs/s and 30.67 MB/s, 0 produce failures, 0 in queue, no compression"
PRODUCER_SUMMARY = re.compile(
    r"% (?P<produced>\d+) messages produced \((?P<bytes>\d+) bytes\), "
    r"(?P<delivered>\d+) delivered \(offset (?P<offset>-?\d+), (?P<failed>\d+) failed\) "
    r"in (?P<elapsed_ms>\d+)ms: (?P<records_per_s>\d+) msgs/s and (?P<mb_per_s>[\d.]+) MB/s, "
    r"(?P<produce_failures>\d+) produce failures, (?P<in_queue>-?\d+) in queue"
)

# "% 1000000 messages (100000000 bytes) consumed in 512ms: 1953125 msgs/s (195.31 MB/s)"
CONSUMER_SUMMARY = re.compile(
    r"% (?P<records>\d+) messages \((?P<bytes>\d+) bytes\) consumed in (?P<elapsed_ms>\d+)ms: "
    r"(?P<records_per_s>\d+) msgs/s \((?P<mb_per_s>[\d.]+) MB/s\)"
)


@dataclasses.dataclass(frozen=True)
class ProducerSummary:
    """The producer's last summary line. Rates count delivered records only."""

    produced: int
    produced_bytes: int
    delivered: int
    failed: int
    elapsed_ms: int
    records_per_s: int
    mb_per_s: float
    produce_failures: int
    in_queue: int


@dataclasses.dataclass(frozen=True)
class ConsumerSummary:
    """The consumer's last summary line; its clock starts at the first record received."""

    records: int
    bytes: int
    elapsed_ms: int
    records_per_s: int
    mb_per_s: float


def parse_producer_summary(text: str) -> ProducerSummary | None:
    """The last producer summary in the tool's output (it prints one per display interval)."""
    matches = list(PRODUCER_SUMMARY.finditer(text))
    if not matches:
        return None
    m = matches[-1]
    return ProducerSummary(
        produced=int(m["produced"]),
        produced_bytes=int(m["bytes"]),
        delivered=int(m["delivered"]),
        failed=int(m["failed"]),
        elapsed_ms=int(m["elapsed_ms"]),
        records_per_s=int(m["records_per_s"]),
        mb_per_s=float(m["mb_per_s"]),
        produce_failures=int(m["produce_failures"]),
        in_queue=int(m["in_queue"]),
    )


def parse_consumer_summary(text: str) -> ConsumerSummary | None:
    """The last consumer summary in the tool's output."""
    matches = list(CONSUMER_SUMMARY.finditer(text))
    if not matches:
        return None
    m = matches[-1]
    return ConsumerSummary(
        records=int(m["records"]),
        bytes=int(m["bytes"]),
        elapsed_ms=int(m["elapsed_ms"]),
        records_per_s=int(m["records_per_s"]),
        mb_per_s=float(m["mb_per_s"]),
    )


def read_latencies_us(path: Path) -> list[int]:
    """Per-record latencies in microseconds, in arrival order, as written by `-l -A FILE`."""
    values = []
    if not path.exists():
        return values
    with path.open() as f:
        for line in f:
            line = line.strip()
            if line.isdigit():
                values.append(int(line))
    return values


def percentile(sorted_values: list[int], fraction: float) -> int:
    """Nearest-rank percentile of an ascending list (fraction 0.99 is p99)."""
    if not sorted_values:
        raise ValueError("percentile of an empty list")
    rank = math.ceil(fraction * len(sorted_values))
    return sorted_values[min(max(rank, 1), len(sorted_values)) - 1]


def latency_summary(values_us: list[int], warmup_records: int) -> dict | None:
    """p50/p99/p99.9/max in milliseconds after dropping the first `warmup_records` records
    (connection set-up, metadata and the first fetch would otherwise dominate the tail)."""
    kept = sorted(values_us[warmup_records:])
    if not kept:
        return None
    return {
        "samples": len(kept),
        "p50_ms": percentile(kept, 0.50) / 1000.0,
        "p99_ms": percentile(kept, 0.99) / 1000.0,
        "p999_ms": percentile(kept, 0.999) / 1000.0,
        "max_ms": kept[-1] / 1000.0,
    }


def producer_argv(
    tool: Path,
    bootstrap: str,
    topic: str,
    *,
    size: int,
    count: int,
    acks: str,
    partition: int | None = None,
    rate: int | None = None,
    latency_file: Path | None = None,
    conf: dict[str, str] | None = None,
) -> list[str]:
    """A producer run. Without `partition` the client spreads records over all partitions."""
    argv = [str(tool), "-P", "-t", topic, "-b", bootstrap, "-s", str(size), "-c", str(count)]
    argv += ["-a", acks]
    if partition is not None:
        argv += ["-p", str(partition)]
    if rate is not None:
        argv += ["-r", str(rate)]
    if latency_file is not None:
        argv += ["-l", "-A", str(latency_file)]
    for key, value in (conf or {}).items():
        argv += ["-X", f"{key}={value}"]
    return argv


def consumer_argv(
    tool: Path,
    bootstrap: str,
    topic: str,
    *,
    partitions: int,
    count: int | None,
    start: str,
    exit_at_end: bool,
    latency_file: Path | None = None,
    conf: dict[str, str] | None = None,
) -> list[str]:
    """A consumer run (the tool's simple consumer: it must be told every partition)."""
    argv = [str(tool), "-C", "-t", topic, "-b", bootstrap, "-o", start]
    for p in range(partitions):
        argv += ["-p", str(p)]
    if count is not None:
        argv += ["-c", str(count)]
    if exit_at_end:
        argv.append("-e")
    if latency_file is not None:
        argv += ["-l", "-A", str(latency_file)]
    for key, value in (conf or {}).items():
        argv += ["-X", f"{key}={value}"]
    return argv


def show(argv: list[str]) -> str:
    """A command line as one copy-pasteable string."""
    return shlex.join(argv)


@dataclasses.dataclass
class Outcome:
    """How a child process ended."""

    returncode: int
    seconds: float
    cpu_s: float
    interrupted: bool
    output: str


class Job:
    """A child process with its output in a log file and a deadline.

    At the deadline it gets SIGINT (rdkafka_performance then stops producing or consuming and
    prints its summary), and SIGKILL `grace_s` later if it is still there. CPU time comes from
    `wait4`, which is why the process is reaped here and not by `subprocess`.
    """

    def __init__(self, argv: list[str], log_path: Path, cwd: Path | None = None,
                 env: dict[str, str] | None = None):
        self.argv = argv
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("wb")
        self._started = time.monotonic()
        self.process = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=cwd, env=env,
        )
        self.interrupted = False
        self._outcome: Outcome | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def interrupt(self) -> None:
        if self.process.returncode is None:
            self.interrupted = True
            try:
                os.kill(self.process.pid, signal.SIGINT)
            except ProcessLookupError:
                pass

    def _kill(self) -> None:
        if self.process.returncode is None:
            try:
                os.kill(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def elapsed_s(self) -> float:
        return time.monotonic() - self._started

    def alive(self) -> bool:
        """Whether the process still runs (a zombie that has not been reaped counts as dead)."""
        if self.process.returncode is not None:
            return False
        try:
            stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        except OSError:
            return False
        return stat[stat.rindex(")") + 2] != "Z"

    def terminate(self, grace_s: float = 30.0) -> Outcome:
        """SIGTERM, then waits up to `grace_s` before SIGKILL (a broker's clean shutdown)."""
        if self._outcome is None and self.process.returncode is None:
            try:
                os.kill(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        elapsed = time.monotonic() - self._started
        return self.finish(timeout_s=elapsed + grace_s, grace_s=5.0)

    def finish(self, timeout_s: float, grace_s: float = 30.0) -> Outcome:
        """Waits for the process, interrupting it once `timeout_s` have passed since start."""
        if self._outcome is not None:
            return self._outcome
        remaining = max(0.0, timeout_s - (time.monotonic() - self._started))
        interrupt_timer = threading.Timer(remaining, self.interrupt)
        kill_timer = threading.Timer(remaining + grace_s, self._kill)
        interrupt_timer.daemon = kill_timer.daemon = True
        interrupt_timer.start()
        kill_timer.start()
        try:
            _, status, usage = os.wait4(self.process.pid, 0)
        finally:
            interrupt_timer.cancel()
            kill_timer.cancel()
        self.process.returncode = os.waitstatus_to_exitcode(status)
        self._log.close()
        seconds = time.monotonic() - self._started
        output = self.log_path.read_text(errors="replace")
        self._outcome = Outcome(
            returncode=self.process.returncode,
            seconds=seconds,
            cpu_s=usage.ru_utime + usage.ru_stime,
            interrupted=self.interrupted,
            output=output,
        )
        return self._outcome


def run(argv: list[str], log_path: Path, timeout_s: float) -> Outcome:
    """Runs a command to completion (or to its deadline)."""
    return Job(argv, log_path).finish(timeout_s)
