"""A Strom cluster of broker processes on loopback, and the client-side helpers the cluster tests
share (test_cluster.py, test_replication.py, test_scale_out.py, test_partition.py).

Every node is a `conftest.Broker` with its own data directory and fixed ports (client, controller,
HTTP), so a killed node restarts on the same addresses. Voters run `broker,controller`; the
others are broker-only observers of the quorum. Every wait is a condition polled against a
deadline.
"""

import json
import os
import random
import signal
import socket
import time
import urllib.request

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import Broker

SESSION_TIMEOUT_MS = 3000
HEARTBEAT_MS = 300
ELECTION_TIMEOUT_MS = 500
WAIT_S = 60

# The settings every node gets unless a test overrides them: short sessions and elections so
# failures are noticed quickly, and small snapshots with no metadata log kept behind them, so a
# node that misses a few changes catches up from a snapshot.
DEFAULT_SETTINGS = {
    "broker.session.timeout.ms": SESSION_TIMEOUT_MS,
    "broker.heartbeat.interval.ms": HEARTBEAT_MS,
    "controller.quorum.election.timeout.ms": ELECTION_TIMEOUT_MS,
    "metadata.log.max.record.bytes.between.snapshots": 2000,
    "metadata.max.retention.bytes": 0,
}


def free_port():
    """A loopback port free right now, below the kernel's ephemeral range: a client's outgoing
    connection takes its source port from that range, and could take a killed node's port
    before the node is restarted on it."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        ephemeral_low = int(f.read().split()[0])
    picker = random.Random()  # not the test's seeded generator: ports are not part of a schedule
    for _ in range(1000):
        port = picker.randrange(10000, ephemeral_low)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free loopback port below the ephemeral range")


def seeded_rng(scenario):
    """A random generator from STROM_TEST_SEED, or a fresh seed; printed so a failure replays."""
    seed = int(os.environ.get("STROM_TEST_SEED", random.randrange(1 << 32)))
    print(f"{scenario} seed: {seed} (replay with STROM_TEST_SEED={seed})")
    return random.Random(seed)


def answered(check):
    """`check` for wait_until: a request that fails (a node restarting, a client timeout) is a no."""
    def attempt():
        try:
            return check()
        except (OSError, KafkaException):
            return None
    return attempt


def wait_until(what, check, timeout=WAIT_S, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class Cluster:
    """`nodes` broker processes; the ids in `voters` (default: all) form the metadata quorum."""

    def __init__(self, root, nodes=3, voters=None, settings=None):
        ids = list(range(1, nodes + 1))
        voters = ids if voters is None else list(voters)
        ports = {i: (free_port(), free_port(), free_port()) for i in ids}
        quorum = ",".join(f"{i}@127.0.0.1:{ports[i][1]}" for i in voters)
        merged = {**DEFAULT_SETTINGS, **(settings or {})}
        self.paused = set()
        self.nodes = {}
        for node_id in ids:
            client_port, controller_port, http_port = ports[node_id]
            args = ["--node-id", str(node_id), "--controller-quorum", quorum,
                    "--http", f"127.0.0.1:{http_port}"]
            if node_id in voters:
                args += ["--controller-listen", f"127.0.0.1:{controller_port}"]
            else:
                args += ["--set", "process.roles=broker"]
            for key, value in merged.items():
                args += ["--set", f"{key}={value}"]
            node = Broker(root / f"node-{node_id}", args)
            node.port = client_port
            self.nodes[node_id] = node

    @property
    def bootstrap(self):
        return ",".join(n.bootstrap for n in self.nodes.values())

    def bootstrap_of(self, ids):
        return ",".join(self.nodes[i].bootstrap for i in ids)

    def start(self):
        for node in self.nodes.values():
            node.launch()
        for node in self.nodes.values():
            node.wait_started()

    def stop(self):
        for node_id in list(self.paused):
            self.resume(node_id)
        for node in self.nodes.values():
            if node.proc:
                node.stop()

    def live(self):
        return [i for i, n in self.nodes.items()
                if n.proc and n.proc.poll() is None and i not in self.paused]

    def pause(self, node_id):
        """SIGSTOP: the process keeps its sockets and state but answers nothing."""
        self.nodes[node_id].proc.send_signal(signal.SIGSTOP)
        self.paused.add(node_id)

    def resume(self, node_id):
        self.nodes[node_id].proc.send_signal(signal.SIGCONT)
        self.paused.discard(node_id)

    def api(self, node_id, path):
        node = self.nodes[node_id]
        with urllib.request.urlopen(f"http://127.0.0.1:{node.http_port}/api/v1/{path}", timeout=10) as r:
            return json.loads(r.read())

    def controller(self):
        """The quorum leader, as the live nodes agree on it."""
        def agreed():
            leaders = {self.api(i, "cluster")["quorum"]["leader_id"] for i in self.live()}
            return leaders.pop() if len(leaders) == 1 and None not in leaders else None
        return wait_until("the live nodes to agree on a quorum leader", agreed)

    def errors_logged(self):
        return {i: n.errors_logged() for i, n in self.nodes.items() if n.errors_logged()}


def admin_for(bootstrap):
    return AdminClient({"bootstrap.servers": bootstrap})


def brokers_in_metadata(bootstrap):
    return set(admin_for(bootstrap).list_topics(timeout=10).brokers)


def partitions_of(bootstrap, topic):
    """{partition: PartitionMetadata} (leader, replicas, isrs) as a broker reports it."""
    return dict(admin_for(bootstrap).list_topics(topic, timeout=10).topics[topic].partitions)


def leaders(bootstrap, topic):
    return {p: m.leader for p, m in partitions_of(bootstrap, topic).items()}


def create_topic(bootstrap, name, partitions, replication_factor=1, config=None):
    admin = admin_for(bootstrap)  # kept alive until the result arrives
    topic = NewTopic(name, num_partitions=partitions, replication_factor=replication_factor,
                     config=config or {})
    admin.create_topics([topic])[name].result(WAIT_S)


def read_partition(bootstrap, topic, partition, end=None):
    """[(offset, value bytes)] of offsets 0..end-1 (default: up to the high watermark), read with
    a consumer from the partition's leader."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"reader-{topic}-{partition}",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
    })
    records = []
    try:
        if end is None:
            _, end = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
        deadline = time.monotonic() + WAIT_S
        while len(records) < end:
            assert time.monotonic() < deadline, f"{topic}-{partition}: read {len(records)} of {end}"
            for msg in consumer.consume(1000, 1.0):
                if msg.error():
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise AssertionError(f"{topic}-{partition}: {msg.error()}")
                records.append((msg.offset(), msg.value()))
    finally:
        consumer.close()
    return records


def group_partition(group, partitions):
    """The __consumer_offsets partition that holds `group`: Kafka's abs(hashCode) % partitions."""
    code = 0
    for unit in group.encode("utf-16-be")[1::2]:  # ASCII: one UTF-16 unit per character
        code = (31 * code + unit) & 0xFFFFFFFF
    code = code - (1 << 32) if code >= 1 << 31 else code
    return (0 if code == -(1 << 31) else abs(code)) % partitions


def committed_offsets(bootstrap, group, topic, partitions):
    """The group's committed offsets of `topic`, fetched by a consumer that does not join the
    group; None when the coordinator does not answer."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        committed = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
    except KafkaException:
        return None
    finally:
        consumer.close()
    return {tp.partition: tp.offset for tp in committed if tp.error is None and tp.offset >= 0}
