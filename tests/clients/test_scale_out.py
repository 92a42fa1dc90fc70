"""Scaling a Strom cluster out and back in under load, driven by real clients (confluent-kafka)
and the operator CLI (`strom cluster rebalance`, `strom cluster remove-broker`).

A 4-node cluster where nodes 1-3 are the metadata quorum (and brokers) and node 4 is a
broker-only node, at first not running:

1. Nodes 1-3 start. A topic with 6 partitions, replication factor 3 and
   min.insync.replicas=2 takes a continuous, paced stream from an idempotent acks=all producer
   (value n, padded to 1 KiB, goes to partition n % 6), and a consumer in a consumer group
   (the only member, so it is assigned every partition) reads it from a background thread,
   committing as it goes.
   __consumer_offsets has 3 partitions of replication factor 3, so the group's coordinator is
   one of the partitions the rebalance may move too.
2. Node 4 starts and registers. `strom cluster rebalance` moves replicas onto it while the
   producer and consumer run, and exits 0. Then Metadata shows node 4 holding replicas of the
   topic, every broker within one replica of every other, every partition fully in sync and
   led by its preferred (first) replica; the producer is still acknowledged and the consumer
   catches up with everything acknowledged so far.
3. `strom cluster remove-broker 4` moves node 4's replicas back to nodes 1-3. Once it prints
   that it waits for the broker to stop, no partition names node 4 any more; node 4 gets
   SIGTERM (and must exit 0), the CLI unregisters it and exits 0, and node 4 is gone from
   Metadata and from every node's broker list. The producer and consumer keep progressing.
4. The producer stops; every delivery succeeded. Every partition, read from the beginning by
   a fresh consumer up to its high watermark, holds exactly the acknowledged records, each at
   the offset it was acknowledged at, in production order, and nothing else; the three
   replicas of every partition have the same log end offset and high watermark. The group
   consumer received every acknowledged record, in offset order per partition, with no gap;
   a record may reach it twice only after the group reassigned the partition (the consumer
   rejoining, e.g. when its coordinator moves) and only from the group's last commit at that
   time on. Its final commit is the log end of every partition. No node logged an ERROR.

Producer and consumer never stall: the longest time without an acknowledgement, and without
a delivery to the consumer while records were waiting, is printed and bounded.

Randomness (the producer's pace, the records before each step, how often the consumer
commits) comes from a seed printed at the start; STROM_TEST_SEED replays it. Every wait is a
condition polled against a deadline; the only sleeps are the producer's pacing.
"""

import logging
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from cluster import (
    WAIT_S,
    Cluster,
    admin_for,
    answered,
    brokers_in_metadata,
    committed_offsets,
    create_topic,
    group_partition,
    read_partition,
    seeded_rng,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[2]
STROM = os.environ.get("STROM_BIN", str(ROOT / "target" / "release" / "strom"))

TOPIC = "growing"
PARTITIONS = 6
REPLICATION_FACTOR = 3
GROUP = "scale-out-readers"
OFFSETS_PARTITIONS = 3
SETTINGS = {
    "replica.lag.time.max.ms": 3000,
    "offsets.topic.num.partitions": OFFSETS_PARTITIONS,
    "group.initial.rebalance.delay.ms": 0,
}
MESSAGE_TIMEOUT_S = 120
# The longest the producer may go unacknowledged, or the consumer without a record while
# records are waiting for it: far above a leader move, far below "stuck".
STALL_S = 30
# Enough records to count as progress, at any pace drawn below (over 150 records/s).
PROGRESS = 50
# Each value is its sequence number padded to this size, so that the logs the reassignments
# copy are not trivially small (about 150-300 KiB/s of acknowledged data).
VALUE_BYTES = 1024


def value_of(n):
    return f"{n} ".encode().ljust(VALUE_BYTES, b".")


def sequence_of(value):
    return int(value.split(b" ", 1)[0])


class ClientLog(logging.Handler):
    """The lines of librdkafka's debug log ("eos,msg") that explain an acknowledgement without
    an offset: failed produce requests, retries, implicit acks."""

    KEYWORDS = ("encountered error", "drain before retrying", "IMPLICITACK", "DUPSEQ", "ERRSEQ")

    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        message = record.getMessage()
        if any(k in message for k in self.KEYWORDS):
            self.lines.append(f"{time.strftime('%H:%M:%S')} {message}")


class SequenceProducer:
    """Produces 0, 1, 2, ... from a thread, idempotent with acks=all; n goes to partition n % k."""

    def __init__(self, bootstrap, interval_s):
        self.interval_s = interval_s
        self.producer = Producer({
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "message.timeout.ms": MESSAGE_TIMEOUT_S * 1000,
            "linger.ms": 5,
            "debug": "eos,msg",
            "logger": self._logger(),
        })
        self.sent = 0
        self.acked = {p: [] for p in range(PARTITIONS)}  # partition -> [(offset, n)]
        self.errors = []
        self.last_ack = time.monotonic()
        self.longest_gap = 0.0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _logger(self):
        self.log = ClientLog()
        logger = logging.getLogger(f"{__name__}.producer")
        logger.propagate = False
        logger.setLevel(logging.DEBUG)
        logger.handlers = [self.log]
        return logger

    def acked_count(self):
        return sum(len(v) for v in self.acked.values())

    def ends(self):
        """{partition: the offset after its last acknowledged record} (each partition holds
        only this producer's records, acknowledged in order)."""
        return {p: len(v) for p, v in list(self.acked.items())}

    def _on_delivery(self, err, msg):
        n = sequence_of(msg.value())
        if err is None:
            now = time.monotonic()
            self.longest_gap = max(self.longest_gap, now - self.last_ack)
            self.last_ack = now
            self.acked[msg.partition()].append((msg.offset(), n))
        else:
            self.errors.append((n, str(err)))

    def _run(self):
        while not self._stopping.is_set():
            try:
                self.producer.produce(TOPIC, value=value_of(self.sent),
                                      partition=self.sent % PARTITIONS, on_delivery=self._on_delivery)
                self.sent += 1
            except BufferError:
                pass  # the local queue is full: serve deliveries below and try again
            self.producer.poll(0)
            self._stopping.wait(self.interval_s)  # pacing

    def start(self):
        self._thread.start()

    def stop(self):
        """Stops producing and waits for every outstanding delivery report."""
        self._stopping.set()
        self._thread.join(10)
        assert not self._thread.is_alive(), "the producer thread did not stop"
        remaining = self.producer.flush(MESSAGE_TIMEOUT_S + 10)
        assert remaining == 0, f"{remaining} deliveries still pending"


class GroupReader:
    """The group's only member, consuming from a thread. Records every delivery, commit and
    assignment as events, in order: ("deliver", partition, offset, n), ("commit", partition,
    offset), ("assign", [partitions])."""

    def __init__(self, bootstrap, commit_every):
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": GROUP,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500,
        })
        self.commit_every = commit_every
        self.events = []
        self.position = {}  # partition -> the offset after the last record delivered
        self.delivered = 0
        self.commit_failures = []
        self.client_errors = []  # transient ones, reported by librdkafka as it retries
        self.failure = None
        self.done = False
        self.last_delivery = time.monotonic()
        self.longest_gap = 0.0  # counted only while the consumer is behind the producer
        self.producer = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _on_assign(self, consumer, partitions):
        self.events.append(("assign", sorted(tp.partition for tp in partitions)))

    def _commit(self):
        offsets = [TopicPartition(TOPIC, p, o) for p, o in sorted(self.position.items())]
        if not offsets:
            return True
        try:
            committed = self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as e:
            self.commit_failures.append(str(e))
            return False
        for tp in committed:
            if tp.error is not None:
                self.commit_failures.append(str(tp.error))
                return False
        for tp in committed:
            self.events.append(("commit", tp.partition, tp.offset))
        return True

    def _behind(self):
        ends = self.producer.ends() if self.producer else {}
        return any(self.position.get(p, 0) < end for p, end in ends.items())

    def _run(self):
        try:
            self.consumer.subscribe([TOPIC], on_assign=self._on_assign)
            since_commit = 0
            while not self._stopping.is_set():
                msgs = self.consumer.consume(500, 0.2)
                now = time.monotonic()
                got = 0
                for msg in msgs:
                    if msg.error():
                        if msg.error().fatal():
                            raise AssertionError(f"consumer: {msg.error()}")
                        self.client_errors.append(str(msg.error()))
                        continue
                    self.events.append(("deliver", msg.partition(), msg.offset(), sequence_of(msg.value())))
                    self.position[msg.partition()] = msg.offset() + 1
                    got += 1
                if got:
                    self.longest_gap = max(self.longest_gap, now - self.last_delivery)
                    self.last_delivery = now
                    self.delivered += got
                    since_commit += got
                    if since_commit >= self.commit_every and self._commit():
                        since_commit = 0
                elif not self._behind():
                    self.last_delivery = now  # nothing to read: not a stall
            # The final commit, retried while the coordinator moves.
            deadline = time.monotonic() + WAIT_S
            while not self._commit():
                if time.monotonic() > deadline:
                    raise AssertionError(f"final commit failing: {self.commit_failures[-3:]}")
                self.consumer.consume(10, 0.2)  # serve the client's events meanwhile
            self.done = True
        except BaseException as e:  # reported by stop()
            self.failure = e
        finally:
            self.consumer.close()

    def start(self):
        self._thread.start()

    def caught_up(self, ends):
        return all(self.position.get(p, 0) >= end for p, end in ends.items())

    def stop(self):
        self._stopping.set()
        self._thread.join(WAIT_S + 10)
        assert not self._thread.is_alive(), "the consumer thread did not stop"
        if self.failure:
            raise self.failure
        assert self.done


def wait_for_progress(producer, reader, what):
    """The producer is acknowledged again, and the consumer reaches what was acknowledged."""
    before = producer.acked_count()
    wait_until(f"acknowledgements {what}", lambda: producer.acked_count() >= before + PROGRESS)
    ends = producer.ends()
    delivered = reader.delivered
    wait_until(f"the consumer to reach {ends} {what} (it is at {reader.position})",
               lambda: reader.failure is not None or (reader.caught_up(ends) and reader.delivered > delivered))
    assert reader.failure is None, reader.failure


def cli(*args):
    """The operator CLI's command line and environment: none of the STROM_* variables (the
    tests' own, or a STROM_BOOTSTRAP_SERVER of the caller's) reaches it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STROM_")}
    return [STROM, *args], env


def all_partitions(bootstrap):
    """{(topic, partition): PartitionMetadata} of every topic, __consumer_offsets included."""
    topics = admin_for(bootstrap).list_topics(timeout=10).topics
    return {(t, p): m for t, meta in topics.items() for p, m in meta.partitions.items()}


def replica_counts(partitions, brokers):
    counts = {b: 0 for b in brokers}
    for m in partitions.values():
        for r in m.replicas:
            counts[r] = counts.get(r, 0) + 1
    return counts


def settled(bootstrap, brokers):
    """Every partition of every topic led by its first replica, with all its replicas in sync,
    only on `brokers`; the partitions then, else None."""
    partitions = all_partitions(bootstrap)
    if TOPIC not in {t for t, _ in partitions} or ("__consumer_offsets", 0) not in partitions:
        return None
    for m in partitions.values():
        if (len(m.replicas) != REPLICATION_FACTOR or not set(m.replicas) <= set(brokers)
                or m.leader != m.replicas[0] or sorted(m.isrs) != sorted(m.replicas)):
            return None
    return partitions


class Output:
    """A process's stdout and stderr lines, read by threads as they come."""

    def __init__(self, proc):
        self.lines = []
        self.threads = [threading.Thread(target=self._pump, args=(s, tag), daemon=True)
                        for s, tag in ((proc.stdout, ""), (proc.stderr, "stderr: "))]
        for t in self.threads:
            t.start()

    def _pump(self, stream, tag):
        for raw in stream:
            self.lines.append(tag + raw.decode(errors="replace").rstrip("\n"))

    def text(self):
        for t in self.threads:
            t.join(10)
        return "\n".join(self.lines)


def rebalance(bootstrap):
    command, env = cli("cluster", "rebalance", "--bootstrap-server", bootstrap, "--timeout", f"{WAIT_S}s")
    began = time.monotonic()
    proc = subprocess.run(command, env=env, capture_output=True, timeout=WAIT_S + 30)
    out = proc.stdout.decode(errors="replace")
    print(f"$ strom cluster rebalance ({time.monotonic() - began:.1f}s)\n{out}")
    assert proc.returncode == 0, f"rebalance exited {proc.returncode}:\n{out}\n{proc.stderr.decode(errors='replace')}"
    assert "Plan: move" in out and "completed" in out, out
    return out


def remove_broker(cluster, bootstrap, victim):
    """`strom cluster remove-broker VICTIM`, stopping the broker when the CLI waits for that."""
    command, env = cli("cluster", "remove-broker", str(victim), "--bootstrap-server", bootstrap,
                       "--timeout", f"{2 * WAIT_S}s")
    began = time.monotonic()
    proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    output = Output(proc)
    try:
        def asks_to_stop():
            assert proc.poll() is None, (
                f"remove-broker exited {proc.returncode} before waiting for the broker:\n{output.text()}")
            return any("Waiting for it to stop" in line for line in output.lines)
        wait_until(f"remove-broker to wait for broker {victim} to stop", asks_to_stop, timeout=2 * WAIT_S)
        waiting_after = time.monotonic() - began

        # The broker holds nothing before it is asked to stop.
        partitions = all_partitions(bootstrap)
        holding = {tp: (m.replicas, m.isrs, m.leader) for tp, m in partitions.items()
                   if victim in m.replicas or victim in m.isrs or m.leader == victim}
        assert not holding, f"broker {victim} still named by {holding}"
        assert all(len(m.replicas) == REPLICATION_FACTOR for m in partitions.values()), \
            "remove-broker kept every replication factor"

        cluster.nodes[victim].stop()  # SIGTERM: a controlled shutdown, exit code 0
        code = proc.wait(WAIT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    out = output.text()
    print(f"$ strom cluster remove-broker {victim} ({time.monotonic() - began:.1f}s, "
          f"waited for the broker to stop after {waiting_after:.1f}s)\n{out}")
    assert code == 0, f"remove-broker exited {code}:\n{out}"
    assert f"Unregistered broker {victim}." in out, out
    return out


def check_log_holds_exactly_the_acknowledged_records(bootstrap, producer):
    """Every partition, read from the beginning up to its high watermark, holds exactly its
    acknowledged records, once each, in production order, each at the offset its
    acknowledgement gave (when it gave one: see `offsetless`). Returns {partition: {offset: n}}."""
    logs = {}
    for partition in range(PARTITIONS):
        acked = producer.acked[partition]
        read = [(offset, sequence_of(value)) for offset, value in read_partition(bootstrap, TOPIC, partition)]
        high = len(read)
        values = [n for _, n in read]
        assert len(set(values)) == len(values), (
            f"{TOPIC}-{partition}: duplicates {sorted(n for n in set(values) if values.count(n) > 1)[:5]}")
        assert values == sorted(values), f"{TOPIC}-{partition}: out of production order"
        assert all(n % PARTITIONS == partition for n in values), f"{TOPIC}-{partition}: misplaced records"
        expected = [n for _, n in acked]
        missing = sorted(set(expected) - set(values))
        extra = sorted(set(values) - set(expected))
        assert not missing and not extra, (
            f"{TOPIC}-{partition}: acknowledged but not in the log: {missing[:5]}; in the log but not "
            f"acknowledged: {extra[:5]}; acknowledged: {len(acked)}, read: {len(read)}")
        assert values == expected, f"{TOPIC}-{partition}: not in acknowledgement order"
        assert high == len(acked), f"{TOPIC}-{partition}: {len(acked)} acknowledged, high watermark {high}"
        logs[partition] = dict(read)
        at = {n: offset for offset, n in read}
        elsewhere = [(offset, n, at[n]) for offset, n in acked if offset is not None and at[n] != offset]
        assert not elsewhere, f"{TOPIC}-{partition}: (acknowledged offset, n, offset in the log): {elsewhere[:5]}"
    every = sorted(n for v in producer.acked.values() for _, n in v)
    assert every == list(range(producer.sent)), "every record sent was acknowledged exactly once"
    return logs


def offsetless(producer):
    """The records acknowledged without an offset: librdkafka's idempotent producer reports a
    batch whose request failed as delivered, offset unknown, once a later batch of the same
    partition succeeds (rd_kafka_dr_implicit_ack). A request fails that way when the broker
    answers it with an error although it appended the records."""
    return {p: [n for offset, n in v if offset is None] for p, v in producer.acked.items()
            if any(offset is None for offset, _ in v)}


def check_group_deliveries(events, logs):
    """Every record of `logs` delivered, with the log's value, in offset order with no gap; a
    record delivered again only after a new assignment of the group, and at or after the
    last commit then. Returns (redelivered records, assignments)."""
    next_offset = {p: 0 for p in range(PARTITIONS)}
    last_commit = {p: 0 for p in range(PARTITIONS)}
    reassigned = {p: False for p in range(PARTITIONS)}  # since its last delivery
    redelivered = 0
    assignments = []
    for event in events:
        kind = event[0]
        if kind == "assign":
            assignments.append(event[1])
            for p in event[1]:
                reassigned[p] = True
        elif kind == "commit":
            last_commit[event[1]] = event[2]
        else:
            _, p, offset, n = event
            assert logs[p].get(offset) == n, (
                f"{TOPIC}-{p}: the consumer got {n} at offset {offset}, the log has {logs[p].get(offset)}")
            if offset < next_offset[p]:
                assert reassigned[p], f"{TOPIC}-{p}: offset {offset} delivered again without a new assignment"
                assert offset >= last_commit[p], (
                    f"{TOPIC}-{p}: offset {offset} delivered again, below the commit at {last_commit[p]}")
                redelivered += next_offset[p] - offset
            elif offset > next_offset[p]:
                raise AssertionError(f"{TOPIC}-{p}: the consumer skipped from {next_offset[p]} to {offset}")
            next_offset[p] = offset + 1
            reassigned[p] = False
    ends = {p: len(log) for p, log in logs.items()}
    assert next_offset == ends, f"the consumer got up to {next_offset}, the logs end at {ends}"
    assert all(sorted(a) == list(range(PARTITIONS)) for a in assignments), f"assignments: {assignments}"
    return redelivered, len(assignments)


def converged(cluster, nodes):
    """Every node in `nodes` holds every partition with the same log end offset, equal to its
    high watermark."""
    views = {}
    for node_id in nodes:
        for p in cluster.api(node_id, f"topics/{TOPIC}")["partitions"]:
            views.setdefault(p["partition"], set()).add((p["log_end_offset"], p["high_watermark"], p["offline"]))
    return len(views) == PARTITIONS and all(
        len(v) == 1 and (c := next(iter(v)))[0] == c[1] and not c[2] for v in views.values()) and {
        p: next(iter(v))[0] for p, v in views.items()}


@pytest.mark.timeout(360)
def test_replicas_move_onto_an_added_broker_and_off_a_removed_one_under_load(tmp_path):
    rng = seeded_rng("scale-out")
    interval_s = rng.uniform(0.003, 0.006)
    commit_every = rng.randrange(20, 200)
    warmup = [rng.randrange(200, 600) for _ in range(3)]
    print(f"producer every {interval_s * 1000:.1f} ms, consumer commits every {commit_every} records, "
          f"records before each step at least {warmup}")

    cluster = Cluster(tmp_path, nodes=4, voters=[1, 2, 3], settings=SETTINGS)
    core, new = [1, 2, 3], 4
    bootstrap = cluster.bootstrap_of(core)
    producer = reader = None
    began = time.monotonic()
    try:
        for i in core:
            cluster.nodes[i].launch()
        for i in core:
            cluster.nodes[i].wait_started()
        wait_until("three brokers in Metadata", answered(lambda: brokers_in_metadata(bootstrap) == set(core)))
        create_topic(bootstrap, TOPIC, PARTITIONS, replication_factor=REPLICATION_FACTOR,
                     config={"min.insync.replicas": "2"})

        producer = SequenceProducer(bootstrap, interval_s)
        reader = GroupReader(bootstrap, commit_every)
        reader.producer = producer
        producer.start()
        reader.start()
        wait_until("the first records acknowledged", lambda: producer.acked_count() >= warmup[0])
        wait_for_progress(producer, reader, "before scaling out")
        wait_until("the topic and __consumer_offsets settled on nodes 1-3",
                   answered(lambda: settled(bootstrap, core)))

        # Scale out: node 4 joins, and the rebalance moves replicas onto it under load.
        cluster.nodes[new].start()
        wait_until("node 4 in Metadata", answered(lambda: brokers_in_metadata(bootstrap) == {*core, new}))
        before = producer.acked_count()
        rebalance(bootstrap)
        print(f"acknowledged during the rebalance: {producer.acked_count() - before}")
        partitions = wait_until("every partition in sync and led by its preferred replica after the rebalance",
                                answered(lambda: settled(bootstrap, [*core, new])))
        counts = replica_counts(partitions, [*core, new])
        on_new = sorted(p for (t, p), m in partitions.items() if t == TOPIC and new in m.replicas)
        coordinator = partitions[("__consumer_offsets", group_partition(GROUP, OFFSETS_PARTITIONS))]
        print(f"replicas per broker after the rebalance: {counts}; {TOPIC} partitions on node {new}: {on_new}; "
              f"the group's coordinator partition: replicas {coordinator.replicas}, leader {coordinator.leader}")
        assert max(counts.values()) - min(counts.values()) <= 1, f"not balanced: {counts}"
        assert on_new, f"node {new} holds no replica of {TOPIC}"
        wait_until(f"{warmup[1]} more records", lambda: producer.acked_count() >= before + warmup[1])
        wait_for_progress(producer, reader, "after the rebalance")

        # Scale in: node 4's replicas move back, it is stopped and unregistered.
        before = producer.acked_count()
        remove_broker(cluster, bootstrap, new)
        print(f"acknowledged during remove-broker: {producer.acked_count() - before}")
        wait_until(f"node {new} gone from Metadata", answered(lambda: brokers_in_metadata(bootstrap) == set(core)))
        wait_until(f"node {new} unregistered on every node", answered(
            lambda: all({b["id"] for b in cluster.api(i, "brokers")} == set(core) for i in core)))
        partitions = wait_until("every partition in sync on nodes 1-3 after remove-broker",
                                answered(lambda: settled(bootstrap, core)))
        assert replica_counts(partitions, core) == {i: len(partitions) for i in core}
        wait_until(f"{warmup[2]} more records", lambda: producer.acked_count() >= before + warmup[2])
        wait_for_progress(producer, reader, "after remove-broker")

        producer.stop()
        print(f"produced {producer.sent}, acknowledged {producer.acked_count()}, "
              f"longest time without an acknowledgement {producer.longest_gap:.2f}s")
        assert producer.errors == [], f"deliveries failed: {producer.errors[:5]}"
        ends = producer.ends()
        wait_until(f"the consumer to reach the end {ends} (it is at {reader.position})",
                   lambda: reader.failure is not None or reader.caught_up(ends))
        reader.stop()
        logs = check_log_holds_exactly_the_acknowledged_records(bootstrap, producer)
        redelivered, assignments = check_group_deliveries(reader.events, logs)
        print(f"the group consumer got every record; delivered again: {redelivered}, assignments: {assignments}, "
              f"longest time without a record while behind: {reader.longest_gap:.2f}s, "
              f"failed commits: {len(reader.commit_failures)}, client errors: {reader.client_errors[:5]}")
        assert producer.longest_gap < STALL_S, f"the producer went {producer.longest_gap:.1f}s unacknowledged"
        assert reader.longest_gap < STALL_S, f"the consumer went {reader.longest_gap:.1f}s without a record"
        committed = wait_until("the group's committed offsets", answered(lambda: committed_offsets(bootstrap, GROUP, TOPIC, PARTITIONS) or None))
        assert committed == ends, f"the group committed {committed}, the log ends at {ends}"

        replicated = wait_until("every replica on nodes 1-3 with the same log",
                                answered(lambda: converged(cluster, core)))
        assert replicated == ends, f"replicas' log end offsets {replicated}, acknowledged ends {ends}"
        unknown = offsetless(producer)
        print(f"scenario done in {time.monotonic() - began:.1f}s; acknowledged without an offset: {unknown}; "
              f"the producer's idempotence log: {producer.log.lines[:20]}")
    finally:
        if producer is not None and not producer._stopping.is_set():
            producer._stopping.set()
        if reader is not None:
            reader._stopping.set()
        cluster.stop()
        print(f"broker logs: {sorted(str(n.log_path) for n in cluster.nodes.values())}")
    errors = cluster.errors_logged()
    assert not errors, f"brokers logged errors: { {i: e[:3] for i, e in errors.items()} }"
    # Last, as the records acknowledged without an offset passed every other check: a
    # partition's leader that stays leader through a new leader epoch (a reassignment that
    # removes a follower) must complete its pending acks=all produce requests, as Kafka's
    # DelayedProduce does, not fail them after appending their records.
    assert not unknown, (
        f"records acknowledged without an offset (their request failed after the append, a "
        f"later one succeeded): {unknown}; the producer's log: {producer.log.lines[:20]}")
