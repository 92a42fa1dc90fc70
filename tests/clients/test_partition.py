"""A network partition, with real network namespaces: three brokers, each in its own namespace
on a bridge, and the leader of a replicated partition (RF=3, min.insync.replicas=2) cut off
from the other brokers by taking its link down.

- A producer inside the leader's namespace (it can still reach the cut-off leader) writes with
  acks=all (not idempotent: an idempotent one would wait for a producer id the cut-off broker
  cannot get): the leader appends its records, but none is acknowledged, because the followers
  no longer fetch from that leader and it cannot reach the controller to shrink its in-sync
  replicas.
- The other brokers fence the cut-off one, elect a new leader from the in-sync replicas, and a
  producer outside keeps writing with acks=all: every record is acknowledged.
- When the link comes back, the old leader learns the new leader epoch, truncates the tail it
  could not replicate (its log says so), and converges on the new leader's log.
- Afterwards every acknowledged record is read back exactly once, in order, and none of the
  unacknowledged ones.

Needs root and iproute2 (`ip netns`, veth, bridges), as CI has. The namespace names and the
subnet are random, printed with the seed.
"""

import json
import os
import random
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from cluster import WAIT_S, wait_until
from conftest import Broker, ROOT

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None,
    reason="network namespaces need root and iproute2",
)

SESSION_TIMEOUT_MS = 3000
PYTHON = str(ROOT / ".venv" / "bin" / "python")
PRODUCER = str(Path(__file__).with_name("partitioned_producer.py"))


def sh(*args):
    subprocess.run(args, check=True, capture_output=True)


class Network:
    """A bridge in the root namespace and one namespace per node, each with a veth `eth0`."""

    def __init__(self, rng):
        self.tag = f"{rng.randrange(16 ** 4):04x}"
        self.subnet = f"10.{rng.randrange(100, 200)}.{rng.randrange(0, 250)}"
        self.bridge = f"sb{self.tag}"
        self.namespaces = {}
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        sh("ip", "addr", "add", f"{self.subnet}.254/24", "dev", self.bridge)
        sh("ip", "link", "set", self.bridge, "up")

    def address(self, node):
        return f"{self.subnet}.{node}"

    def add(self, node):
        ns = f"strom{self.tag}-{node}"
        outside, inside = f"v{self.tag}{node}a", f"v{self.tag}{node}b"
        sh("ip", "netns", "add", ns)
        self.namespaces[node] = ns
        sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        sh("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
        sh("ip", "link", "set", inside, "netns", ns)
        sh("ip", "netns", "exec", ns, "ip", "link", "set", inside, "name", "eth0")
        sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{self.address(node)}/24", "dev", "eth0")
        sh("ip", "netns", "exec", ns, "ip", "link", "set", "eth0", "up")
        sh("ip", "link", "set", outside, "master", self.bridge)
        sh("ip", "link", "set", outside, "up")
        return ns

    def cut(self, node):
        sh("ip", "netns", "exec", self.namespaces[node], "ip", "link", "set", "eth0", "down")

    def heal(self, node):
        sh("ip", "netns", "exec", self.namespaces[node], "ip", "link", "set", "eth0", "up")

    def close(self):
        for ns in self.namespaces.values():
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)


def http_json(node_addr, port, path):
    with urllib.request.urlopen(f"http://{node_addr}:{port}/api/v1/{path}", timeout=5) as r:
        return json.loads(r.read())


def partition_of(topic_json, index):
    return next(p for p in topic_json["partitions"] if p["partition"] == index)


def test_a_cut_off_leader_acknowledges_nothing_and_rejoins_truncated(tmp_path):
    seed = int(os.environ.get("STROM_TEST_SEED", random.randrange(1 << 32)))
    rng = random.Random(seed)
    net = Network(rng)
    print(f"partition test seed: {seed} (replay with STROM_TEST_SEED={seed}); namespaces strom{net.tag}-N, subnet {net.subnet}.0/24")
    nodes = {}
    try:
        voters = ",".join(f"{i}@{net.address(i)}:9093" for i in (1, 2, 3))
        for i in (1, 2, 3):
            ns = net.add(i)
            node = Broker(tmp_path / f"node-{i}", [
                "--node-id", str(i),
                "--controller-listen", f"{net.address(i)}:9093",
                "--controller-quorum", voters,
                "--http", f"{net.address(i)}:8080",
                "--set", f"broker.session.timeout.ms={SESSION_TIMEOUT_MS}",
                "--set", "broker.heartbeat.interval.ms=300",
                "--set", "controller.quorum.election.timeout.ms=500",
                "--set", "replica.lag.time.max.ms=3000",
            ], prefix=["ip", "netns", "exec", ns])
            node.host = net.address(i)
            node.port = 9092
            nodes[i] = node
        for node in nodes.values():
            node.launch()
        for node in nodes.values():
            node.wait_started()
        run(net, nodes)
    finally:
        for node in nodes.values():
            if node.proc:
                node.kill()
        net.close()
    for i, node in nodes.items():
        assert node.errors_logged() == [], f"node {i} logged errors: {node.errors_logged()[:3]}"


def run(net, nodes):
    everyone = ",".join(f"{net.address(i)}:9092" for i in nodes)
    admin = AdminClient({"bootstrap.servers": everyone})
    wait_until("three brokers", lambda: len(admin.list_topics(timeout=10).brokers) == 3)
    futures = admin.create_topics([NewTopic("split", num_partitions=1, replication_factor=3, config={"min.insync.replicas": "2"})])
    futures["split"].result(WAIT_S)
    acked = produce(everyone, "before", 50)
    assert len(acked) == 50

    def leader():
        md = admin.list_topics("split", timeout=10).topics["split"].partitions[0]
        return md.leader if md.leader >= 0 and len(md.isrs) == 3 else None
    old = wait_until("a leader with three in-sync replicas", leader)
    print(f"cutting off the leader, node {old}")
    net.cut(old)

    # A producer next to the cut-off leader: nothing it writes may be acknowledged.
    isolated = subprocess.Popen(
        ["ip", "netns", "exec", net.namespaces[old], PYTHON, PRODUCER,
         f"{net.address(old)}:9092", "split", "isolated", "20", "15000"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    others = ",".join(f"{net.address(i)}:9092" for i in nodes if i != old)
    others_admin = AdminClient({"bootstrap.servers": others})

    def new_leader():
        md = others_admin.list_topics("split", timeout=10).topics["split"].partitions[0]
        return md.leader if md.leader >= 0 and md.leader != old else None
    replaced = wait_until("a new leader", new_leader, timeout=SESSION_TIMEOUT_MS / 1000 + 15)
    print(f"node {replaced} leads now")
    acked += produce(others, "after", 50)

    out, _ = isolated.communicate(timeout=120)
    results = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    assert len(results) == 20, f"the isolated producer reported {len(results)} deliveries"
    print(f"the isolated producer's deliveries: {sorted({r['error'] for r in results})}")
    leaked = [r for r in results if r["ok"]]
    assert leaked == [], f"the cut-off leader acknowledged records: {leaked[:3]}"

    net.heal(old)
    wait_until(f"node {old} back", lambda: len(AdminClient({"bootstrap.servers": everyone}).list_topics(timeout=10).brokers) == 3)

    def converged():
        ends = [partition_of(http_json(net.address(i), 8080, "topics/split"), 0)["log_end_offset"] for i in nodes]
        return ends[0] == len(acked) and len(set(ends)) == 1
    wait_until("every replica to hold the committed log, the old leader's tail truncated", converged)
    truncated = [line for line in nodes[old].log_lines if "truncating to the leader's log" in line and "split-0" in line]
    assert truncated, f"node {old} appended the isolated producer's records, so it must have truncated them"

    values = consume(everyone, len(acked))
    assert values == acked, "every acknowledged record exactly once, in order, and nothing else"


def produce(bootstrap, prefix, count):
    acked, errors = [], []

    def on_delivery(err, msg):
        (errors if err else acked).append(str(err) if err else msg.value().decode())

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                         "message.timeout.ms": WAIT_S * 1000})
    for i in range(count):
        producer.produce("split", value=f"{prefix}-{i}", partition=0, on_delivery=on_delivery)
    assert producer.flush(WAIT_S + 10) == 0
    assert errors == [], errors
    return acked


def consume(bootstrap, expected):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "partition-check",
                         "enable.auto.commit": False, "enable.partition.eof": True})
    consumer.assign([TopicPartition("split", 0, OFFSET_BEGINNING)])
    values = []
    deadline = time.monotonic() + WAIT_S
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == -191 and len(values) >= expected:
                    break
                continue
            values.append(msg.value().decode())
    finally:
        consumer.close()
    return values
