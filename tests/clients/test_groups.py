"""Consumer groups with real clients: partition sharing, rebalances on join, leave and death,
cooperative-sticky, static membership, resuming from committed offsets across a broker
restart, kcat's balanced consumer, and auto.offset.reset."""

import json
import shutil
import subprocess

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from members import Member, balanced, wait_until

PARTITIONS = list(range(6))
BATCH = 600
TIMEOUT_S = 60
# A short initial rebalance delay keeps the tests quick without changing what they check.
BROKER_ARGS = ("--set", "group.initial.rebalance.delay.ms=500")


def create_topic(bootstrap, topic, partitions=len(PARTITIONS)):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])[topic].result(TIMEOUT_S)


class Feeder:
    """Produces keyed batches round-robin over the partitions and remembers the end offsets."""

    def __init__(self, bootstrap, topic):
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
        self.topic = topic
        self.sent = 0
        self.ends = {p: 0 for p in PARTITIONS}

    def produce(self, count=BATCH):
        def delivered(err, msg):
            assert err is None, err
            self.ends[msg.partition()] = max(self.ends[msg.partition()], msg.offset() + 1)

        for i in range(self.sent, self.sent + count):
            self.producer.produce(self.topic, key=f"k{i}", value=f"v{i}", partition=i % len(PARTITIONS), on_delivery=delivered)
        assert self.producer.flush(TIMEOUT_S) == 0
        self.sent += count


def consumed_offsets(members):
    seen = {p: set() for p in PARTITIONS}
    for m in members:
        with m.cond:
            for p, o, _ in m.records:
                seen[p].add(o)
    return seen


def everything_consumed(members, feeder):
    seen = consumed_offsets(members)
    return all(seen[p] >= set(range(feeder.ends[p])) for p in PARTITIONS)


def run_membership_changes(broker, topic, group, extra):
    """Three members share six partitions; a fourth joins; one leaves; one is killed. Every
    record is consumed at least once and none is skipped."""
    create_topic(broker.bootstrap, topic)
    feeder = Feeder(broker.bootstrap, topic)
    feeder.produce()
    members = [Member(f"m{i}", broker.bootstrap, topic, group, extra) for i in range(3)]
    everyone = list(members)
    try:
        wait_until(members, lambda: balanced(members, PARTITIONS, [2, 2, 2]), "three members with two partitions each")
        feeder.produce()

        fourth = Member("m3", broker.bootstrap, topic, group, extra)
        members.append(fourth)
        everyone.append(fourth)
        wait_until(members, lambda: balanced(members, PARTITIONS, [1, 1, 2, 2]), "four members sharing six partitions")
        feeder.produce()

        members[0].stop()
        members = members[1:]
        wait_until(members, lambda: balanced(members, PARTITIONS, [2, 2, 2]), "partitions moving after a leave")
        feeder.produce()

        members[0].kill()
        members = members[1:]
        wait_until(members, lambda: balanced(members, PARTITIONS, [3, 3]), "partitions moving after a session timeout")
        feeder.produce()

        wait_until(everyone, lambda: everything_consumed(everyone, feeder), "every record consumed at least once")
        for m in members:
            assert not [e for e in m.errors if "FATAL" in e.upper()], m.errors
        return everyone
    finally:
        for m in everyone:
            m.kill()


def test_group_members_share_partitions_and_rebalance(make_broker):
    broker = make_broker(*BROKER_ARGS)
    members = run_membership_changes(broker, "shared", "shared-group", {})
    protocols = {e.get("protocol") for m in members for e in m.events if e["event"] == "assigned"}
    assert protocols == {"EAGER"}


def test_cooperative_sticky_rebalances_incrementally(make_broker):
    broker = make_broker(*BROKER_ARGS)
    members = run_membership_changes(
        broker, "coop", "coop-group", {"partition.assignment.strategy": "cooperative-sticky"}
    )
    protocols = {e.get("protocol") for m in members for e in m.events if e["event"] == "assigned"}
    assert protocols == {"COOPERATIVE"}
    # Incremental (KIP-429): at a rebalance a member gives up only the partitions that move,
    # never its whole assignment at once as the eager protocol does. The stopped member's final
    # revocation, when it closes, is the one exception.
    stopped = members[0]
    revocations = [e for m in members for e in m.revocations()]
    closing = stopped.revocations()[-1:]
    assert len(revocations) > len(closing), "the fourth member's join moved partitions"
    whole = [e for e in revocations if not e["partitions"] and e not in closing]
    assert not whole, whole


def test_static_members_keep_partitions_across_restart_and_duplicates_are_fenced(make_broker):
    broker = make_broker(*BROKER_ARGS)
    topic, group = "static", "static-group"
    create_topic(broker.bootstrap, topic)
    feeder = Feeder(broker.bootstrap, topic)
    feeder.produce()
    static = lambda i: {"group.instance.id": f"instance-{i}", "session.timeout.ms": 10000}
    members = [Member(f"s{i}", broker.bootstrap, topic, group, static(i)) for i in range(3)]
    everyone = list(members)
    try:
        wait_until(members, lambda: balanced(members, PARTITIONS, [2, 2, 2]), "three static members balanced")
        before = {m.name: set(m.assignment) for m in members}
        revocations_before = [len(m.revocations()) for m in members[1:]]

        # Restart instance-0 within its session timeout: same partitions back, no rebalance.
        members[0].kill()
        restarted = Member("s0-again", broker.bootstrap, topic, group, static(0))
        everyone.append(restarted)
        wait_until([restarted], lambda: restarted.assignment is not None, "the restarted static member's assignment")
        assert restarted.assignment == before["s0"]
        assert [len(m.revocations()) for m in members[1:]] == revocations_before, "other members were not rebalanced"
        members[0] = restarted
        feeder.produce()
        wait_until(everyone, lambda: everything_consumed(everyone, feeder), "every record consumed")

        # A second process with instance-1's id takes over; the old one is fenced.
        duplicate = Member("s1-duplicate", broker.bootstrap, topic, group, static(1))
        everyone.append(duplicate)
        old = members[1]
        wait_until([old], lambda: any("FENCED_INSTANCE_ID" in e.upper() or "fenced" in e.lower() for e in old.errors),
                   "the duplicate static member fencing the old one")
    finally:
        for m in everyone:
            m.kill()


def test_offset_reset_earliest_latest_and_none(make_broker):
    broker = make_broker(*BROKER_ARGS)
    create_topic(broker.bootstrap, "resets", partitions=1)
    feeder_producer = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(10):
        feeder_producer.produce("resets", key=f"k{i}", value=f"old{i}")
    feeder_producer.flush(TIMEOUT_S)

    def first_message(reset, keep_producing=False):
        errors = []
        consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"reset-{reset}",
                             "auto.offset.reset": reset, "enable.auto.commit": False,
                             "error_cb": lambda e: errors.append(str(e))})
        assigned = []
        consumer.subscribe(["resets"], on_assign=lambda c, ps: assigned.extend(ps))
        try:
            for attempt in range(600):
                msg = consumer.poll(0.1)
                if msg is not None:
                    return msg
                # "latest" positions at the end when the consumer first fetches, which happens
                # some time after the assignment: keep adding records until one arrives.
                if keep_producing and assigned and attempt % 5 == 0:
                    feeder_producer.produce("resets", key="new", value="new")
                    feeder_producer.flush(TIMEOUT_S)
            raise AssertionError(f"no message for auto.offset.reset={reset}; errors {errors}")
        finally:
            consumer.close()

    earliest = first_message("earliest")
    assert earliest.error() is None and earliest.offset() == 0
    latest = first_message("latest", keep_producing=True)
    assert latest.error() is None and latest.value() == b"new", (latest.error(), latest.offset(), latest.value())
    # Kafka's "none" is librdkafka's "error": with no committed offset the consumer gets an
    # error instead of a position.
    none = first_message("error")
    assert none.error() is not None, "auto.offset.reset=none/error has no position to start from"
    assert "offset" in str(none.error()).lower(), none.error()


def test_kafka_python_resumes_from_committed_offset_after_broker_restart(make_broker):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition as KTP

    broker = make_broker(*BROKER_ARGS)
    create_topic(broker.bootstrap, "resume", partitions=1)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    for i in range(100):
        producer.send("resume", key=f"k{i}".encode(), value=f"v{i}".encode())
    producer.flush()
    producer.close()

    def consumer():
        return KafkaConsumer("resume", bootstrap_servers=broker.bootstrap, group_id="resumers",
                             enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=40)

    first = consumer()
    got = []
    while len(got) < 40:
        for records in first.poll(timeout_ms=1000).values():
            got.extend(records)
    got = got[:40]
    first.commit({KTP("resume", 0): __import__("kafka").OffsetAndMetadata(got[-1].offset + 1, "", -1)})
    first.close()

    broker.restart()
    second = consumer()
    resumed = []
    while not resumed:
        for records in second.poll(timeout_ms=1000).values():
            resumed.extend(records)
    assert resumed[0].offset == got[-1].offset + 1 == 40
    second.close()


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat is installed by scripts/test")
def test_kcat_balanced_consumer_joins_and_consumes(make_broker):
    broker = make_broker(*BROKER_ARGS)
    create_topic(broker.bootstrap, "kcat-group", partitions=3)
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(300):
        producer.produce("kcat-group", key=f"k{i}", value=f"v{i}")
    producer.flush(TIMEOUT_S)
    proc = subprocess.run(
        ["kcat", "-b", broker.bootstrap, "-G", "kcat-readers", "-X", "auto.offset.reset=earliest",
         "-c", "300", "-J", "-q", "kcat-group"],
        capture_output=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    lines = [json.loads(l) for l in proc.stdout.splitlines()]
    assert sorted(m["key"] for m in lines) == sorted(f"k{i}" for i in range(300))
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    groups = admin.list_consumer_groups().result(TIMEOUT_S)
    assert "kcat-readers" in {g.group_id for g in groups.valid}
