"""The workloads: what each one runs, against which brokers, and the result it records.

Every run starts a fresh broker with an empty data directory, creates its topic explicitly with
the wanted partition count, runs `rdkafka_performance` while a `ProcessMonitor` watches the
broker, and stops the broker. A result is a plain dictionary (see `base_result`) so that it can
be stored as JSON and merged with results of other runs.

Groups:
- produce: 100 B and 1 KiB records x acks=1 and acks=all x 1 and 100 partitions.
- cluster: Strom only, a fresh 3-node cluster on loopback per workload (three `strom broker`
  processes, each a broker and a quorum voter): produce 100 B and 1 KiB records x 1 and 100
  partitions with RF=1 acks=1 (the single-node equivalent inside the cluster) and with RF=3
  acks=all min.insync.replicas=2, the same record counts and time limits as the produce group;
  and end-to-end latency of 1 KiB records at a fixed rate with RF=3 acks=all. CPU is that of
  the three brokers together.
- consume: a preloaded single-partition topic read from the beginning, with the client's
  defaults (fetch.wait.max.ms=500) and with fetch.wait.max.ms=10; 100 B and 1 KiB records.
- latency: end to end at a fixed rate of 1 KiB records, acks=all (two rdkafka_performance
  instances in `-l` mode: the consumer subtracts the timestamp the producer put in the payload).
- scaling: produce throughput against the partition count and the record size.
- memory: idle RSS of every broker, and Strom's RSS over a long produce run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import time
from pathlib import Path
from typing import Callable

from harness import client
from harness.brokers import (BROKERS, BrokerSpec, Measurement, ProcessMonitor, Profiler,
                             RunningBroker, RunningCluster, Tools, combine_measurements)
from harness.tools import say

TOPIC = "bench"
# rdkafka_performance sets linger.ms=1000, librdkafka's own default is 5 ms. With 1000 every run
# ends with up to a second of partial batches waiting, and with many partitions each batch
# waits the full second while the 100,000-record local queue is full, which caps the client
# far below any broker. Throughput runs use the library's default instead.
THROUGHPUT_CONF = {"linger.ms": "5"}
GROUPS = ["limits", "produce", "cluster", "consume", "latency", "scaling", "memory"]
# The groups that run every selected broker, one process each (cluster runs Strom only).
SINGLE_NODE_GROUPS = ["produce", "consume", "latency", "scaling", "memory"]
CLUSTER_NODES = 3


@dataclasses.dataclass
class Sizes:
    """How much each workload does; `--quick` and the size options change these."""

    produce_bytes: int = 3_000_000_000
    produce_records_max: int = 10_000_000
    run_timeout_s: float = 45.0
    consume_records_small: int = 10_000_000
    consume_records_large: int = 2_000_000
    preload_timeout_s: float = 60.0
    consume_timeout_s: float = 60.0
    latency_seconds: float = 30.0
    latency_rates: tuple[int, ...] = (20_000, 100_000)
    scaling_bytes: int = 500_000_000
    scaling_records_max: int = 3_000_000
    scaling_timeout_s: float = 20.0
    scaling_partitions: tuple[int, ...] = (1, 10, 100, 1000)
    scaling_sizes: tuple[int, ...] = (10, 100, 1024, 10_240, 102_400)
    memory_bytes: int = 10_000_000_000
    memory_timeout_s: float = 900.0
    idle_seconds: float = 5.0
    # linger.ms of the latency producer. 0 makes librdkafka send every record as its own
    # pipelined request, which collapses on 2 cores even against Tansu's null engine (ack p99
    # of ~850 ms at 20,000 records/s); librdkafka's default of 5 puts a 5 ms floor under p50.
    latency_linger_ms: int = 1
    # The cluster group: partition counts of its produce workloads (each with RF=1 acks=1 and
    # RF=3 acks=all) and the fixed rate of its latency workload.
    cluster_partitions: tuple[int, ...] = (1, 100)
    cluster_latency_rate: int = 20_000

    @classmethod
    def quick(cls) -> "Sizes":
        return cls(
            produce_bytes=100_000_000,
            produce_records_max=500_000,
            run_timeout_s=20.0,
            consume_records_small=1_000_000,
            consume_records_large=200_000,
            preload_timeout_s=30.0,
            consume_timeout_s=30.0,
            latency_seconds=5.0,
            scaling_bytes=50_000_000,
            scaling_records_max=300_000,
            scaling_timeout_s=10.0,
            memory_bytes=1_000_000_000,
            memory_timeout_s=120.0,
            idle_seconds=2.0,
        )


@dataclasses.dataclass
class Context:
    tools: Tools
    sizes: Sizes
    brokers: list[BrokerSpec]
    work_dir: Path
    log_dir: Path
    run_id: str
    profile: bool
    record: Callable[[dict], None]


def record_count(budget_bytes: int, size: int, records_max: int) -> int:
    return max(1, min(records_max, budget_bytes // size))


def acks_flag(acks: str) -> str:
    return "-1" if acks == "all" else acks


def base_result(ctx: Context, group: str, name: str, broker: str, params: dict) -> dict:
    return {
        "key": f"{group}|{name}|{broker}",
        "group": group,
        "name": name,
        "broker": broker,
        "params": params,
        "run_id": ctx.run_id,
        "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "errors": [],
    }


def slug(*parts: object) -> str:
    return "-".join(str(p).replace(" ", "_").replace("/", "_").replace("=", "") for p in parts)


def start_broker(ctx: Context, spec: BrokerSpec, tag: str) -> RunningBroker:
    broker = RunningBroker(spec, ctx.tools, ctx.work_dir, ctx.log_dir / f"{tag}.broker.log")
    try:
        broker.wait_ready()
    except Exception:
        broker.stop()
        raise
    return broker


def maybe_profile(ctx: Context, spec: BrokerSpec, broker: RunningBroker,
                  tag: str) -> Profiler | None:
    """Strom's runs only: the report explains Strom's missed targets. The profiler's overhead
    (a system-wide 997 Hz sample) therefore falls on Strom's figures alone."""
    if not ctx.profile or spec.name != "strom":
        return None
    return Profiler(broker.pid, ctx.log_dir, tag)


@contextlib.contextmanager
def watched(ctx: Context, spec: BrokerSpec, broker: RunningBroker, tag: str, result: dict,
            interval_s: float = 0.1):
    """Measures the broker (and profiles Strom) while the body runs; the measurement is in the
    yielded dictionary afterwards. The profiler stops even when the body fails: it records the
    whole machine."""
    monitor = ProcessMonitor(broker.pid, interval_s).start()
    profiler = maybe_profile(ctx, spec, broker, tag)
    box: dict = {}
    try:
        yield box
    finally:
        box["measurement"] = monitor.stop()
        if profiler:
            result["profile"] = profiler.stop()


def add_measurement(result: dict, m: Measurement, data_bytes: int) -> None:
    result["broker_cpu_s"] = round(m.cpu_s, 3)
    result["cpu_s_per_gb"] = round(m.cpu_s / (data_bytes / 1e9), 3) if data_bytes else None
    result["peak_rss_mb"] = round(m.peak_rss_mb, 1)
    result["peak_anon_mb"] = round(m.peak_anon_mb, 1)
    result["peak_file_mb"] = round(m.peak_file_mb, 1)
    result["vm_hwm_mb"] = round(m.hwm_mb, 1)


def check_broker(result: dict, broker: RunningBroker) -> None:
    if not broker.job.alive():
        result["errors"].append(f"broker exited during the workload (log {broker.log_path})")
    try:
        log = broker.log_path.read_text(errors="replace")
    except OSError:
        return
    if "panicked" in log:
        result["errors"].append(f"broker panicked (log {broker.log_path})")


def guarded(ctx: Context, group: str, name: str, spec: BrokerSpec, params: dict,
            body: Callable[[dict], None]) -> dict:
    """Runs one workload body and records its result, turning a crash into a recorded error."""
    result = base_result(ctx, group, name, spec.name, params)
    started = time.monotonic()
    say(f"{group}: {name} on {spec.name}")
    try:
        body(result)
    except Exception as e:  # a failed run is a result, not the end of the suite
        result["errors"].append(f"{type(e).__name__}: {e}")
    result["wall_s"] = round(time.monotonic() - started, 1)
    summary = ", ".join(
        f"{k}={result[k]}" for k in ("records_per_s", "mb_per_s", "p99_ms", "idle_rss_mb")
        if result.get(k) is not None
    )
    say(f"   {summary or 'no numbers'}{'; ERRORS: ' + '; '.join(result['errors']) if result['errors'] else ''}")
    ctx.record(result)
    return result


def produce_once(ctx: Context, result: dict, spec: BrokerSpec, tag: str, *, size: int,
                 acks: str, partitions: int, count: int, timeout_s: float) -> None:
    """One producer run against a fresh broker, filling `result`."""
    with start_broker(ctx, spec, tag) as broker:
        result["broker_command"] = client.show(broker.argv)
        broker.create_topic(TOPIC, partitions)
        argv = client.producer_argv(ctx.tools.rdkafka_performance, broker.bootstrap, TOPIC,
                                    size=size, count=count, acks=acks_flag(acks),
                                    conf=THROUGHPUT_CONF)
        result["command"] = client.show(argv)
        with watched(ctx, spec, broker, tag, result) as watch:
            outcome = client.run(argv, ctx.log_dir / f"{tag}.client.log", timeout_s)
        check_broker(result, broker)
    fill_producer(result, outcome, size, count)
    add_measurement(result, watch["measurement"], result.get("bytes") or 0)


def fill_producer(result: dict, outcome: client.Outcome, size: int, count: int) -> None:
    summary = client.parse_producer_summary(outcome.output)
    result["client_cpu_s"] = round(outcome.cpu_s, 3)
    result["capped"] = outcome.interrupted
    if summary is None:
        result["errors"].append(f"no producer summary (exit code {outcome.returncode})")
        return
    result["records"] = summary.delivered
    result["bytes"] = summary.delivered * size
    result["seconds"] = summary.elapsed_ms / 1000
    result["records_per_s"] = summary.records_per_s
    result["mb_per_s"] = summary.mb_per_s
    # The tool counts every local queue-full retry as a "produce failure": that is the client's
    # back-pressure, not an error. Failed deliveries are errors.
    result["client_backpressure"] = summary.produce_failures
    if summary.failed:
        result["errors"].append(f"{summary.failed:,} records failed delivery")
    if outcome.interrupted:
        result["note"] = (f"stopped at the time limit after {summary.delivered:,} of "
                          f"{count:,} records")
    elif outcome.returncode != 0:
        result["errors"].append(f"rdkafka_performance exited with {outcome.returncode}")


# ---------------------------------------------------------------------------------------------
# produce


def run_produce(ctx: Context) -> None:
    s = ctx.sizes
    for size in (100, 1024):
        for acks in ("1", "all"):
            for partitions in (1, 100):
                name = f"produce {size_label(size)} acks={acks} {partitions} partition" + (
                    "s" if partitions > 1 else "")
                count = record_count(s.produce_bytes, size, s.produce_records_max)
                params = {"size": size, "acks": acks, "partitions": partitions, "count": count}
                for spec in ctx.brokers:
                    tag = slug("produce", size, acks, partitions, spec.name)
                    guarded(ctx, "produce", name, spec, params,
                            lambda r, spec=spec, tag=tag: produce_once(
                                ctx, r, spec, tag, size=size, acks=acks, partitions=partitions,
                                count=count, timeout_s=s.run_timeout_s))


def size_label(size: int) -> str:
    if size >= 1024 and size % 1024 == 0:
        return f"{size // 1024} KiB"
    return f"{size} B"


# ---------------------------------------------------------------------------------------------
# cluster


@dataclasses.dataclass(frozen=True)
class ClusterSetup:
    """A topic's replication and the producer's acks in the cluster group."""

    replication_factor: int
    acks: str
    min_insync_replicas: int | None = None

    @property
    def label(self) -> str:
        text = f"RF={self.replication_factor} acks={self.acks}"
        if self.min_insync_replicas is not None:
            text += f" min.insync.replicas={self.min_insync_replicas}"
        return text

    @property
    def topic_config(self) -> dict[str, str]:
        if self.min_insync_replicas is None:
            return {}
        return {"min.insync.replicas": str(self.min_insync_replicas)}


# The single-node equivalent inside the cluster: one replica on one of the three brokers.
CLUSTER_BASELINE = ClusterSetup(replication_factor=1, acks="1")
CLUSTER_REPLICATED = ClusterSetup(replication_factor=3, acks="all", min_insync_replicas=2)


def partitions_label(partitions: int) -> str:
    return f"{partitions} partition" + ("s" if partitions != 1 else "")


def cluster_produce_name(size: int, setup: ClusterSetup, partitions: int) -> str:
    return f"cluster produce {size_label(size)}, {setup.label}, {partitions_label(partitions)}"


def cluster_latency_name(size: int, setup: ClusterSetup, rate: int) -> str:
    return f"cluster latency {size_label(size)}, {setup.label}, at {rate:,} records/s"


def run_cluster(ctx: Context) -> None:
    s = ctx.sizes
    for size in (100, 1024):
        for partitions in s.cluster_partitions:
            for setup in (CLUSTER_BASELINE, CLUSTER_REPLICATED):
                name = cluster_produce_name(size, setup, partitions)
                count = record_count(s.produce_bytes, size, s.produce_records_max)
                params = cluster_params(setup, size=size, partitions=partitions, count=count,
                                        kind="produce")
                tag = slug("cluster-produce", size, f"rf{setup.replication_factor}",
                           setup.acks, partitions)
                guarded(ctx, "cluster", name, BROKERS["strom"], params,
                        lambda r, setup=setup, tag=tag, size=size, partitions=partitions,
                        count=count: cluster_produce_once(
                            ctx, r, tag, setup, size=size, partitions=partitions, count=count,
                            timeout_s=s.run_timeout_s))
    size, rate, setup = 1024, s.cluster_latency_rate, CLUSTER_REPLICATED
    count = int(rate * s.latency_seconds)
    params = cluster_params(setup, size=size, partitions=1, count=count, kind="latency",
                            rate=rate, linger_ms=s.latency_linger_ms)
    tag = slug("cluster-latency", rate, f"rf{setup.replication_factor}", setup.acks)
    guarded(ctx, "cluster", cluster_latency_name(size, setup, rate), BROKERS["strom"], params,
            lambda r: cluster_latency_once(ctx, r, tag, setup, size=size, rate=rate,
                                           count=count))


def cluster_params(setup: ClusterSetup, **fields) -> dict:
    return {"nodes": CLUSTER_NODES, "replication_factor": setup.replication_factor,
            "acks": setup.acks, "min_insync_replicas": setup.min_insync_replicas, **fields}


def start_cluster(ctx: Context, tag: str) -> RunningCluster:
    cluster = RunningCluster(ctx.tools, ctx.work_dir, ctx.log_dir, tag, nodes=CLUSTER_NODES)
    try:
        cluster.wait_ready()
    except Exception:
        cluster.stop()
        raise
    return cluster


@contextlib.contextmanager
def watched_cluster(ctx: Context, cluster: RunningCluster, tag: str, result: dict):
    """`watched` for the three brokers of a cluster: their CPU added up, their profile as one."""
    monitors = [ProcessMonitor(pid).start() for pid in cluster.pids]
    profiler = Profiler(cluster.pids, ctx.log_dir, tag) if ctx.profile else None
    box: dict = {}
    try:
        yield box
    finally:
        box["measurements"] = [m.stop() for m in monitors]
        box["measurement"] = combine_measurements(box["measurements"])
        if profiler:
            result["profile"] = profiler.stop()


def describe_cluster(result: dict, cluster: RunningCluster, placement: dict[int, dict],
                     setup: ClusterSetup, partitions: int) -> None:
    """What the report needs to print the exact commands and where the partitions were."""
    result["broker_commands"] = [client.show(n.argv) for n in cluster.nodes.values()]
    result["placeholders"] = cluster.placeholders()
    result["topic"] = {"name": TOPIC, "partitions": partitions,
                       "replication_factor": setup.replication_factor,
                       "config": setup.topic_config}
    result["leaders_by_node"] = leaders_by_node(placement, list(cluster.nodes))
    if partitions == 1:
        result["placement"] = placement[0]


def leaders_by_node(placement: dict[int, dict], node_ids: list[int]) -> dict[str, int]:
    counts = {str(i): 0 for i in node_ids}
    for p in placement.values():
        key = str(p["leader"])
        counts[key] = counts.get(key, 0) + 1
    return counts


def check_cluster(result: dict, cluster: RunningCluster, replication_factor: int) -> list[str]:
    """Nodes that exited or panicked are errors; ERROR log lines and in-sync replicas lost
    during the workload are returned as notes (an ISR that shrank changes what acks=all waited
    for), to be added with `add_notes` once the figures are in."""
    result["errors"].extend(cluster.problems())
    logged = cluster.error_lines()
    notes = []
    if logged:
        notes.append("ERROR lines logged: " + ", ".join(
            f"node {i}: {n}" for i, n in sorted(logged.items())))
    if replication_factor > 1:
        try:
            placement = cluster.placement(TOPIC)
        except Exception as e:  # the figures stand; only the check is lost
            placement = None
            notes.append(f"could not read the ISR after the run ({type(e).__name__}: {e})")
        if placement:
            smallest = min(len(p["isr"]) for p in placement.values())
            result["min_isr_after"] = smallest
            if smallest < replication_factor:
                shrunk = sum(1 for p in placement.values()
                             if len(p["isr"]) < replication_factor)
                notes.append(f"ISR below {replication_factor} after the run in {shrunk} "
                             f"partition{'s' if shrunk != 1 else ''} (smallest {smallest})")
    return notes


def add_notes(result: dict, notes: list[str]) -> None:
    if notes:
        result["note"] = "; ".join(filter(None, [result.get("note"), *notes]))


def add_cluster_measurement(result: dict, measurements: list[Measurement],
                            data_bytes: int) -> None:
    """The three brokers together (CPU added up, the largest RSS), plus each node's CPU."""
    add_measurement(result, combine_measurements(measurements), data_bytes)
    result["broker_cpu_s_by_node"] = [round(m.cpu_s, 3) for m in measurements]


def cluster_produce_once(ctx: Context, result: dict, tag: str, setup: ClusterSetup, *,
                         size: int, partitions: int, count: int, timeout_s: float) -> None:
    """One producer run against a fresh 3-node cluster, bootstrapping to all three."""
    with start_cluster(ctx, tag) as cluster:
        placement = cluster.create_topic(TOPIC, partitions, setup.replication_factor,
                                         setup.topic_config)
        describe_cluster(result, cluster, placement, setup, partitions)
        argv = client.producer_argv(ctx.tools.rdkafka_performance, cluster.bootstrap, TOPIC,
                                    size=size, count=count, acks=acks_flag(setup.acks),
                                    conf=THROUGHPUT_CONF)
        result["command"] = client.show(argv)
        with watched_cluster(ctx, cluster, tag, result) as watch:
            outcome = client.run(argv, ctx.log_dir / f"{tag}.client.log", timeout_s)
        notes = check_cluster(result, cluster, setup.replication_factor)
    fill_producer(result, outcome, size, count)
    add_cluster_measurement(result, watch["measurements"], result.get("bytes") or 0)
    add_notes(result, notes)


def cluster_latency_once(ctx: Context, result: dict, tag: str, setup: ClusterSetup, *,
                         size: int, rate: int, count: int) -> None:
    """The latency workload's two clients against a fresh 3-node cluster (one partition)."""
    with start_cluster(ctx, tag) as cluster:
        placement = cluster.create_topic(TOPIC, 1, setup.replication_factor,
                                         setup.topic_config)
        describe_cluster(result, cluster, placement, setup, 1)
        produced, consumed, watch = latency_clients(
            ctx, result, tag, cluster.bootstrap,
            lambda: watched_cluster(ctx, cluster, tag, result),
            size=size, rate=rate, count=count, consume=True)
        notes = check_cluster(result, cluster, setup.replication_factor)
    fill_producer(result, produced, size, count)
    add_cluster_measurement(result, watch["measurements"], result.get("bytes") or 0)
    latency_figures(ctx, result, tag, consumed, rate)
    add_notes(result, notes)


# ---------------------------------------------------------------------------------------------
# consume


def run_consume(ctx: Context) -> None:
    s = ctx.sizes
    plans = [
        (100, s.consume_records_small, [("default (fetch.wait.max.ms=500)", {}),
                                        ("fetch.wait.max.ms=10", {"fetch.wait.max.ms": "10"})]),
        (1024, s.consume_records_large, [("default (fetch.wait.max.ms=500)", {})]),
    ]
    for size, count, variants in plans:
        for spec in ctx.brokers:
            names = [f"consume {size_label(size)}, {label}" for label, _ in variants]
            params = {"size": size, "count": count, "partitions": 1}
            if not spec.serves_fetch:
                for name in names:
                    result = base_result(ctx, "consume", name, spec.name, params)
                    result["note"] = "not applicable: this engine returns no records on Fetch"
                    ctx.record(result)
                continue
            consume_plan(ctx, spec, size, count, variants, names, params)


def consume_plan(ctx: Context, spec: BrokerSpec, size: int, count: int,
                 variants: list[tuple[str, dict]], names: list[str], params: dict) -> None:
    s = ctx.sizes
    tag = slug("consume", size, spec.name)
    say(f"consume: preloading {count:,} records of {size_label(size)} into {spec.name}")
    try:
        broker = start_broker(ctx, spec, tag)
    except Exception as e:
        for name in names:
            result = base_result(ctx, "consume", name, spec.name, params)
            result["errors"].append(f"broker did not start: {e}")
            ctx.record(result)
        return
    with broker:
        preload = {"errors": []}
        argv = None
        try:
            broker.create_topic(TOPIC, 1)
            argv = client.producer_argv(ctx.tools.rdkafka_performance, broker.bootstrap, TOPIC,
                                        size=size, count=count, acks="1", partition=0,
                                        conf=THROUGHPUT_CONF)
            outcome = client.run(argv, ctx.log_dir / f"{tag}.preload.log", s.preload_timeout_s)
            fill_producer(preload, outcome, size, count)
        except Exception as e:
            preload["errors"].append(f"{type(e).__name__}: {e}")
        available = preload.get("records") or 0
        for (label, conf), name in zip(variants, names):
            def body(result: dict, conf=conf, label=label) -> None:
                result["broker_command"] = client.show(broker.argv)
                if argv:
                    result["preload_command"] = client.show(argv)
                if preload["errors"] or not available:
                    result["errors"].extend(["preload: " + e for e in preload["errors"]]
                                            or ["preload delivered no records"])
                    return
                if available < count:
                    result["note"] = (f"preload stopped at the time limit: {available:,} "
                                      f"records instead of {count:,}")
                variant_tag = slug(tag, label.split()[0])
                cargv = client.consumer_argv(
                    ctx.tools.rdkafka_performance, broker.bootstrap, TOPIC, partitions=1,
                    count=available, start="beginning", exit_at_end=True, conf=conf)
                result["command"] = client.show(cargv)
                with watched(ctx, spec, broker, variant_tag, result) as watch:
                    outcome = client.run(cargv, ctx.log_dir / f"{variant_tag}.client.log",
                                         s.consume_timeout_s)
                measurement = watch["measurement"]
                check_broker(result, broker)
                summary = client.parse_consumer_summary(outcome.output)
                result["client_cpu_s"] = round(outcome.cpu_s, 3)
                result["capped"] = outcome.interrupted
                if summary is None:
                    result["errors"].append(f"no consumer summary (exit {outcome.returncode})")
                    return
                result["records"] = summary.records
                result["bytes"] = summary.bytes
                result["seconds"] = summary.elapsed_ms / 1000
                result["records_per_s"] = summary.records_per_s
                result["mb_per_s"] = summary.mb_per_s
                if outcome.interrupted:
                    result["note"] = "; ".join(filter(None, [
                        result.get("note"), f"stopped at the time limit after "
                        f"{summary.records:,} of {available:,} records"]))
                elif summary.records < available:
                    result["errors"].append(f"consumed {summary.records:,} of {available:,}")
                add_measurement(result, measurement, summary.bytes)

            guarded(ctx, "consume", name, spec, {**params, "preloaded": available}, body)


# ---------------------------------------------------------------------------------------------
# latency


def run_latency(ctx: Context) -> None:
    s = ctx.sizes
    size = 1024
    for rate in s.latency_rates:
        name = f"latency 1 KiB acks=all at {rate:,} records/s"
        count = int(rate * s.latency_seconds)
        params = {"size": size, "acks": "all", "rate": rate, "count": count, "partitions": 1,
                  "linger_ms": s.latency_linger_ms}
        for spec in ctx.brokers:
            tag = slug("latency", rate, spec.name)
            guarded(ctx, "latency", name, spec, params,
                    lambda r, spec=spec, tag=tag, rate=rate, count=count: latency_once(
                        ctx, r, spec, tag, size=size, rate=rate, count=count))


def latency_once(ctx: Context, result: dict, spec: BrokerSpec, tag: str, *, size: int,
                 rate: int, count: int) -> None:
    with start_broker(ctx, spec, tag) as broker:
        result["broker_command"] = client.show(broker.argv)
        broker.create_topic(TOPIC, 1)
        produced, consumed, watch = latency_clients(
            ctx, result, tag, broker.bootstrap,
            lambda: watched(ctx, spec, broker, tag, result),
            size=size, rate=rate, count=count, consume=spec.serves_fetch)
        check_broker(result, broker)
    fill_producer(result, produced, size, count)
    add_measurement(result, watch["measurement"], result.get("bytes") or 0)
    latency_figures(ctx, result, tag, consumed, rate)


def latency_files(ctx: Context, tag: str) -> tuple[Path, Path]:
    """Where the consumer writes end-to-end latencies and the producer its ack latencies."""
    return ctx.log_dir / f"{tag}.e2e-us.txt", ctx.log_dir / f"{tag}.ack-us.txt"


def latency_clients(ctx: Context, result: dict, tag: str, bootstrap: str,
                    watch: Callable[[], contextlib.AbstractContextManager], *, size: int,
                    rate: int, count: int, consume: bool):
    """The latency mode's two clients on a single-partition topic `TOPIC` that exists: the
    consumer (when the broker serves fetches) and the producer at `rate`, measured by `watch`.
    Returns the producer's and the consumer's outcome and the watch's dictionary."""
    s = ctx.sizes
    e2e_file, ack_file = latency_files(ctx, tag)
    consumer = None
    if consume:
        # From the beginning of an empty topic: the consumer may start fetching after the
        # producer's first records without missing any.
        cargv = client.consumer_argv(
            ctx.tools.rdkafka_performance, bootstrap, TOPIC, partitions=1,
            count=count, start="beginning", exit_at_end=False, latency_file=e2e_file)
        result["consumer_command"] = client.show(cargv)
        consumer = client.Job(cargv, ctx.log_dir / f"{tag}.consumer.log")
    pargv = client.producer_argv(
        ctx.tools.rdkafka_performance, bootstrap, TOPIC, size=size, count=count,
        acks="-1", partition=0, rate=rate, latency_file=ack_file,
        conf={"linger.ms": str(s.latency_linger_ms)})
    result["command"] = client.show(pargv)
    consumed = None
    try:
        with watch() as box:
            produced = client.run(pargv, ctx.log_dir / f"{tag}.producer.log",
                                  s.latency_seconds * 2 + 30)
            if consumer is not None:
                # Normally the consumer has every record moments after the last ack; give
                # it a few seconds, then stop it (it prints its summary on SIGINT).
                consumed = consumer.finish(timeout_s=consumer.elapsed_s() + 10)
    finally:
        if consumer is not None and consumed is None:
            consumer.finish(timeout_s=0, grace_s=5)
    return produced, consumed, box


def latency_figures(ctx: Context, result: dict, tag: str, consumed: client.Outcome | None,
                    rate: int) -> None:
    """Ack and end-to-end percentiles from the clients' latency files, after fill_producer."""
    e2e_file, ack_file = latency_files(ctx, tag)
    warmup = rate  # the first second
    achieved = result.get("records_per_s")
    if achieved is not None and achieved < 0.7 * rate:
        result["note"] = (f"the producer reached only {achieved:,} of {rate:,} records/s "
                          "(compare with tansu-null, the client's own limit)")
    ack = client.latency_summary(client.read_latencies_us(ack_file), warmup)
    if ack:
        result["ack_p50_ms"], result["ack_p99_ms"] = ack["p50_ms"], ack["p99_ms"]
        result["ack_p999_ms"], result["ack_max_ms"] = ack["p999_ms"], ack["max_ms"]
    if consumed is not None:
        result["consumer_cpu_s"] = round(consumed.cpu_s, 3)
        e2e = client.latency_summary(client.read_latencies_us(e2e_file), warmup)
        summary = client.parse_consumer_summary(consumed.output)
        result["consumed"] = summary.records if summary else 0
        if e2e is None:
            result["errors"].append("the consumer received no records")
        else:
            result.update({k: v for k, v in e2e.items() if k != "samples"})
            result["latency_samples"] = e2e["samples"]
        if summary and summary.records < (result.get("records") or 0):
            result["errors"].append(
                f"consumer received {summary.records:,} of {result.get('records'):,} records")
    else:
        result["note"] = "; ".join(filter(None, [
            result.get("note"),
            "end-to-end not applicable (no records on Fetch); ack latency only"]))


# ---------------------------------------------------------------------------------------------
# scaling


def run_scaling(ctx: Context) -> None:
    s = ctx.sizes
    points = [("partitions", p, 100, p) for p in s.scaling_partitions]
    points += [("size", size, size, 1) for size in s.scaling_sizes]
    for axis, value, size, partitions in points:
        name = (f"scaling: {partitions} partition{'s' if partitions > 1 else ''}, 100 B"
                if axis == "partitions" else f"scaling: {size_label(size)} records, 1 partition")
        count = record_count(s.scaling_bytes, size, s.scaling_records_max)
        params = {"axis": axis, "value": value, "size": size, "partitions": partitions,
                  "acks": "1", "count": count}
        for spec in ctx.brokers:
            tag = slug("scaling", axis, value, spec.name)
            guarded(ctx, "scaling", name, spec, params,
                    lambda r, spec=spec, tag=tag, size=size, partitions=partitions, count=count:
                    produce_once(ctx, r, spec, tag, size=size, acks="1", partitions=partitions,
                                 count=count, timeout_s=s.scaling_timeout_s))


# ---------------------------------------------------------------------------------------------
# memory


def run_memory(ctx: Context, growth_brokers: list[str]) -> None:
    s = ctx.sizes
    for spec in ctx.brokers:
        def idle(result: dict, spec=spec) -> None:
            with start_broker(ctx, spec, slug("idle", spec.name)) as broker:
                result["broker_command"] = client.show(broker.argv)
                broker.create_topic(TOPIC, 1)
                time.sleep(s.idle_seconds)  # idle is measured after the broker settles
                monitor = ProcessMonitor(broker.pid).start()
                time.sleep(1.0)
                m = monitor.stop()
                result["idle_rss_mb"] = round(m.peak_rss_mb, 1)
                result["idle_anon_mb"] = round(m.peak_anon_mb, 1)
                result["idle_file_mb"] = round(m.peak_file_mb, 1)

        guarded(ctx, "memory", "idle RSS (1 topic, 1 partition)", spec,
                {"idle_seconds": s.idle_seconds}, idle)

    size = 1024
    count = max(1, s.memory_bytes // size)
    name = f"RSS during a {s.memory_bytes / 1e9:g} GB produce run (1 KiB, acks=1, 1 partition)"
    for spec in ctx.brokers:
        if spec.name not in growth_brokers:
            continue

        def growth(result: dict, spec=spec) -> None:
            tag = slug("memory-growth", spec.name)
            with start_broker(ctx, spec, tag) as broker:
                result["broker_command"] = client.show(broker.argv)
                broker.create_topic(TOPIC, 1)
                argv = client.producer_argv(ctx.tools.rdkafka_performance, broker.bootstrap,
                                            TOPIC, size=size, count=count, acks="1",
                                            conf=THROUGHPUT_CONF)
                result["command"] = client.show(argv)
                with watched(ctx, spec, broker, tag, result, interval_s=0.5) as watch:
                    outcome = client.run(argv, ctx.log_dir / f"{tag}.client.log",
                                         s.memory_timeout_s)
                m = watch["measurement"]
                check_broker(result, broker)
            fill_producer(result, outcome, size, count)
            add_measurement(result, m, result.get("bytes") or 0)
            result.update(rss_growth(m.samples))

        guarded(ctx, "memory", name, spec, {"size": size, "count": count}, growth)


def rss_growth(samples: list[tuple[float, int, int, int]]) -> dict:
    """RSS at points of the run (time stands in for data written: the rate is steady) and the
    growth over its last 80%, where start-up allocations are behind."""
    if len(samples) < 5:
        return {}
    total = samples[-1][0] or 1.0

    def at(fraction: float) -> tuple[float, int, int, int]:
        return min(samples, key=lambda s: abs(s[0] - fraction * total))

    points = {f"rss_at_{int(f * 100)}pct_mb": round(at(f)[1] / 1024, 1)
              for f in (0.1, 0.2, 0.5, 0.8, 1.0)}
    growth = (at(1.0)[1] - at(0.2)[1]) / 1024
    anon_growth = (at(1.0)[2] - at(0.2)[2]) / 1024
    return {**points, "rss_growth_last_80pct_mb": round(growth, 1),
            "anon_growth_last_80pct_mb": round(anon_growth, 1),
            "rss_samples": [(round(t, 1), r // 1024, a // 1024, f // 1024)
                            for t, r, a, f in samples[:: max(1, len(samples) // 200)]]}


def selected_brokers(names: list[str]) -> list[BrokerSpec]:
    return [BROKERS[n] for n in names]
