"""Partition replication across Strom processes, driven by a real client (confluent-kafka).

Four scenarios, each on its own 3-process cluster:

1. Chaos with acks=all. A topic with replication factor 3, min.insync.replicas=2 and 3
   partitions takes a continuous stream from an idempotent acks=all producer (value n goes to
   partition n % 3) while a seeded schedule of faults hits the leader of a random partition:
   SIGKILL and a restart after a random delay (shorter or longer than the session timeout), or
   SIGSTOP until the controller has moved the partition's leadership away, then SIGCONT; the
   controller also moves leaders back to their preferred replicas every 5 s. After each fault the test waits until every broker is unfenced, every partition has its three
   replicas in sync again, and the producer is acknowledged again. At the end every
   acknowledged record is in its partition exactly once, at the offset it was acknowledged at,
   in production order, with nothing else; every replica of every partition has the same log
   start, log end offset, high watermark and size (the leader's copy is read with a consumer,
   the followers' through the HTTP admin API); no broker logged an ERROR; and, after a clean
   stop, every replica's segments hold the same record batches byte for byte (a follower
   stores the leader's batches as they are: same offsets, leader epochs and CRCs).
2. Two of three brokers down. With both followers gone the leader's in-sync replicas shrink to
   itself, below min.insync.replicas=2: an acks=all produce fails with NOT_ENOUGH_REPLICAS and
   is not written, while acks=1 is accepted (above the high watermark, which waits for the
   in-sync replicas). Once the two return and catch up, acks=all works again and every accepted
   record is readable. Losing two of three quorum voters would freeze the metadata (no ISR
   change could commit), so here node 1 is the only voter and the victims are the two
   broker-only nodes.
3. A consumer group keeps its committed offsets when the coordinator's broker is killed. With a
   replicated __consumer_offsets (offsets.topic.replication.factor=3), a consumer commits as it
   goes; right after a commit the coordinator (from describe_consumer_groups) is SIGKILLed. The
   coordinator moves, the committed offsets read back intact from the new one, the consumer
   continues, and a later consumer in the same group starts at the last commit. Every record is
   delivered; a record is delivered twice only after the group assigned its partition anew, and
   only from the group's last commit at that assignment on.
4. A follower never takes a fetch answer from a leader it no longer follows. The leader is
   SIGSTOPped while a producer and the followers have requests in flight to it; a follower
   becomes leader and the other follows it; then the old leader is woken and answers. The
   followers must end up with the new leader's log (the regression test of a bug this file
   found: the fetcher appended such answers).

Randomness comes from a seed printed at the start of each test; STROM_TEST_SEED replays it.
Every wait is a condition with a deadline; the only sleeps are fault lengths drawn from the seed
and the producer's pacing.
"""

import struct
import threading
import time
from contextlib import contextmanager

import pytest
from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)

from cluster import (
    SESSION_TIMEOUT_MS,
    WAIT_S,
    Cluster,
    admin_for,
    answered,
    brokers_in_metadata,
    create_topic,
    group_partition,
    leaders,
    read_partition,
    seeded_rng,
    wait_until,
)
from cluster import committed_offsets as group_offsets

REPLICA_LAG_TIME_MAX_MS = 3000
# Every cluster here: followers leave the ISR after 3 s without catching up, a small
# __consumer_offsets (still replication factor 3), and groups that rebalance at once.
SETTINGS = {
    "replica.lag.time.max.ms": REPLICA_LAG_TIME_MAX_MS,
    "offsets.topic.num.partitions": 3,
    "group.initial.rebalance.delay.ms": 0,
}
# A fenced broker's partitions move within the session timeout, plus an election when the
# victim was the active controller (which then gives every broker a full session again).
MOVE_S = 2 * SESSION_TIMEOUT_MS / 1000 + 10
GUARDED = {"min.insync.replicas": "2"}


@contextmanager
def running_cluster(tmp_path, **kwargs):
    """A started cluster, stopped at the end; no node may have logged an ERROR."""
    cluster = Cluster(tmp_path, settings={**SETTINGS, **kwargs.pop("settings", {})}, **kwargs)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
        print(f"broker logs: {sorted(str(n.log_path) for n in cluster.nodes.values())}")
    errors = cluster.errors_logged()
    assert not errors, f"brokers logged errors: { {i: e[:3] for i, e in errors.items()} }"


def topic_on(cluster, node_id, topic):
    """{partition: detail} from one node's HTTP admin API (its own replica's offsets)."""
    return {p["partition"]: p for p in cluster.api(node_id, f"topics/{topic}")["partitions"]}


def fully_replicated(cluster, topic, size=3):
    """Every node sees every broker unfenced and every partition led, with `size` in-sync replicas."""
    def check():
        for node_id in cluster.nodes:
            brokers = cluster.api(node_id, "brokers")
            if len(brokers) != size or any(b["fenced"] for b in brokers):
                return False
            for p in topic_on(cluster, node_id, topic).values():
                if p["leader"] < 0 or len(p["in_sync_replicas"]) != size:
                    return False
        return True
    return answered(check)()


def converged_replicas(cluster, topic):
    """{partition: [each node's detail]} once every replica of every partition has the same log
    start, log end offset, high watermark (equal to the log end) and size; None before."""
    views = {}
    for node_id in cluster.nodes:
        detail = answered(lambda: topic_on(cluster, node_id, topic))()
        if detail is None:
            return None
        for partition, copy in detail.items():
            views.setdefault(partition, []).append(copy)
    for copies in views.values():
        keys = {(c["log_start_offset"], c["log_end_offset"], c["high_watermark"], c["size_bytes"]) for c in copies}
        if len(copies) != len(cluster.nodes) or len(keys) != 1 or any(c["offline"] for c in copies):
            return None
        (_, end, high_watermark, _), = keys
        if high_watermark != end:
            return None
    return views


def wait_converged(cluster, topic, timeout=WAIT_S):
    last = {}

    def check():
        views = converged_replicas(cluster, topic)
        if views is None:
            last["seen"] = {i: answered(lambda: {p: (c["log_end_offset"], c["high_watermark"], c["size_bytes"])
                                                  for p, c in topic_on(cluster, i, topic).items()})()
                            for i in cluster.nodes}
        return views
    try:
        return wait_until(f"every replica of {topic} to have the same log", check, timeout=timeout)
    except AssertionError as e:
        raise AssertionError(f"{e}; each node's (log end offset, high watermark, size): {last.get('seen')}") from None


def batches(data):
    """(base offset, last offset, partition leader epoch, CRC) of each record batch in a segment."""
    out, position = [], 0
    while position + 61 <= len(data):
        base, length, epoch = struct.unpack_from(">qii", data, position)
        crc, _, delta = struct.unpack_from(">Ihi", data, position + 17)
        out.append((base, base + delta, epoch, crc))
        position += 12 + length
    return out


def assert_replicas_identical_on_disk(cluster, topic, partitions):
    """After a clean stop: each partition's segments hold the same bytes on every node (a
    follower stores the leader's batches as they are, docs/storage.md)."""
    for partition in range(partitions):
        copies = {}
        for node_id, node in cluster.nodes.items():
            directory = node.data_dir / f"{topic}-{partition}"
            copies[node_id] = b"".join(p.read_bytes() for p in sorted(directory.glob("*.log")))
        first = next(iter(copies))
        for node_id, data in copies.items():
            if data != copies[first]:
                ours, theirs = batches(copies[first]), batches(data)
                at = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs)))
                raise AssertionError(
                    f"{topic}-{partition}: node {node_id}'s log differs from node {first}'s at batch {at}: "
                    f"{theirs[at:at + 3]} vs {ours[at:at + 3]} (base, last offset, epoch, crc); "
                    f"{len(theirs)} vs {len(ours)} batches")


def produce_all(bootstrap, records, acks="all", timeout_s=WAIT_S, idempotent=True, retries=None):
    """Produces [(topic, partition, value)] and returns one (error, offset) per record."""
    results = [None] * len(records)
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "acks": acks,
        "enable.idempotence": idempotent,
        "message.timeout.ms": int(timeout_s * 1000),
        **({} if retries is None else {"retries": retries}),
    })
    for i, (topic, partition, value) in enumerate(records):
        def on_delivery(err, msg, i=i):
            results[i] = (err, msg.offset())
        producer.produce(topic, value=value, partition=partition, on_delivery=on_delivery)
    assert producer.flush(timeout_s + 10) == 0, "deliveries still pending"
    return results


# --- 1. chaos with acks=all ---------------------------------------------------------------

CHAOS_TOPIC = "chaos"
CHAOS_PARTITIONS = 3
CHAOS_FAULTS = 8
PRODUCE_INTERVAL_S = 0.004
MESSAGE_TIMEOUT_S = 120


class SequenceProducer:
    """Produces 0, 1, 2, ... from a thread, idempotent with acks=all; n goes to partition n % k."""

    def __init__(self, bootstrap, topic, partitions):
        self.topic = topic
        self.partitions = partitions
        self.producer = Producer({
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "message.timeout.ms": MESSAGE_TIMEOUT_S * 1000,
            "linger.ms": 5,
        })
        self.sent = 0
        self.acked = {p: [] for p in range(partitions)}  # partition -> [(offset, n)]
        self.errors = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def acked_count(self):
        return sum(len(v) for v in self.acked.values())

    def _on_delivery(self, err, msg):
        n = int(msg.value())
        if err is None:
            self.acked[msg.partition()].append((msg.offset(), n))
        else:
            self.errors.append((n, str(err)))

    def _run(self):
        while not self._stopping.is_set():
            try:
                self.producer.produce(self.topic, value=str(self.sent).encode(),
                                      partition=self.sent % self.partitions, on_delivery=self._on_delivery)
                self.sent += 1
            except BufferError:
                pass  # the local queue is full: serve deliveries below and try again
            self.producer.poll(0)
            self._stopping.wait(PRODUCE_INTERVAL_S)

    def start(self):
        self._thread.start()

    def stop(self):
        """Stops producing and waits for every outstanding delivery report."""
        self._stopping.set()
        self._thread.join(10)
        remaining = self.producer.flush(MESSAGE_TIMEOUT_S + 10)
        assert remaining == 0, f"{remaining} deliveries still pending"


def wait_for_progress(producer, what):
    before = producer.acked_count()
    wait_until(f"acknowledgements {what}", lambda: producer.acked_count() >= before + 20)


@pytest.mark.timeout(420)
def test_acks_all_records_survive_leader_kills_and_pauses_exactly_once_on_every_replica(tmp_path):
    rng = seeded_rng("replication chaos")
    settings = {
        # Leadership also moves back to the preferred replicas while the faults go on.
        "leader.imbalance.check.interval.seconds": 5,
    }
    with running_cluster(tmp_path, settings=settings) as cluster:
        everyone = cluster.bootstrap
        wait_until("three brokers in Metadata", answered(lambda: brokers_in_metadata(everyone) == {1, 2, 3}))
        create_topic(everyone, CHAOS_TOPIC, CHAOS_PARTITIONS, replication_factor=3, config=GUARDED)
        wait_until("every partition fully replicated", lambda: fully_replicated(cluster, CHAOS_TOPIC))

        producer = SequenceProducer(everyone, CHAOS_TOPIC, CHAOS_PARTITIONS)
        producer.start()
        try:
            wait_for_progress(producer, "before the first fault")
            started = time.monotonic()
            for fault in range(CHAOS_FAULTS):
                inject_fault(cluster, rng, fault)
                wait_until(f"recovery after fault {fault}", lambda: fully_replicated(cluster, CHAOS_TOPIC))
                wait_for_progress(producer, f"after fault {fault}")
            print(f"{CHAOS_FAULTS} faults in {time.monotonic() - started:.1f}s")
        finally:
            producer.stop()
        print(f"produced {producer.sent}, acknowledged {producer.acked_count()}")
        assert producer.errors == [], f"deliveries failed: {producer.errors[:5]}"
        check_every_replica_holds_exactly_the_acknowledged_records(cluster, producer)
    assert_replicas_identical_on_disk(cluster, CHAOS_TOPIC, CHAOS_PARTITIONS)


def inject_fault(cluster, rng, fault):
    everyone = cluster.bootstrap
    partition = rng.randrange(CHAOS_PARTITIONS)
    victim = wait_until(f"the leader of {CHAOS_TOPIC}-{partition}",
                        answered(lambda: leaders(everyone, CHAOS_TOPIC)[partition] > 0 and leaders(everyone, CHAOS_TOPIC)[partition]))
    began = time.monotonic()
    if rng.random() < 0.5:
        down_s = rng.uniform(0.2, 2 * SESSION_TIMEOUT_MS / 1000)
        cluster.nodes[victim].kill()
        time.sleep(down_s)  # the fault's length, drawn from the seed
        cluster.nodes[victim].start()
        print(f"fault {fault}: SIGKILL node {victim} (leader of {CHAOS_TOPIC}-{partition}), "
              f"restarted after {down_s:.1f}s")
    else:
        cluster.pause(victim)
        others = cluster.bootstrap_of(i for i in cluster.nodes if i != victim)
        wait_until(f"{CHAOS_TOPIC}-{partition} to move away from paused node {victim}",
                   answered(lambda: leaders(others, CHAOS_TOPIC)[partition] not in (victim, -1)), timeout=MOVE_S)
        moved_s = time.monotonic() - began
        extra_s = rng.uniform(0, 1.5)
        time.sleep(extra_s)  # the fault's length, drawn from the seed
        cluster.resume(victim)
        print(f"fault {fault}: SIGSTOP node {victim} (leader of {CHAOS_TOPIC}-{partition}), "
              f"replaced after {moved_s:.1f}s, SIGCONT {extra_s:.1f}s later")


def check_every_replica_holds_exactly_the_acknowledged_records(cluster, producer):
    views = wait_converged(cluster, CHAOS_TOPIC)

    for partition in range(CHAOS_PARTITIONS):
        copy = views[partition][0]
        acked = sorted(producer.acked[partition])
        assert copy["log_start_offset"] == 0
        assert copy["log_end_offset"] == len(acked), (
            f"{CHAOS_TOPIC}-{partition}: {len(acked)} acknowledged, log end offset {copy['log_end_offset']}")
        read = [(offset, int(value)) for offset, value in
                read_partition(cluster.bootstrap, CHAOS_TOPIC, partition, copy["log_end_offset"])]
        values = [n for _, n in read]
        assert len(set(values)) == len(values), f"{CHAOS_TOPIC}-{partition}: duplicates"
        assert values == sorted(values), f"{CHAOS_TOPIC}-{partition}: out of production order"
        assert all(n % CHAOS_PARTITIONS == partition for n in values), f"{CHAOS_TOPIC}-{partition}: misplaced records"
        missing = sorted(set(acked) - set(read))
        extra = sorted(set(read) - set(acked))
        assert not missing and not extra, (
            f"{CHAOS_TOPIC}-{partition}: acknowledged but not at that offset: {missing[:5]}; "
            f"read but not acknowledged there: {extra[:5]}")
    all_values = sorted(n for p in producer.acked.values() for _, n in p)
    assert all_values == list(range(producer.sent)), "every record sent was acknowledged once"


# --- 2. two of three brokers down ---------------------------------------------------------

GUARDED_TOPIC = "guarded"


@pytest.mark.timeout(240)
def test_acks_all_is_refused_with_not_enough_replicas_when_two_of_three_brokers_are_down(tmp_path):
    rng = seeded_rng("two brokers down")
    with running_cluster(tmp_path, voters=[1]) as cluster:
        everyone = cluster.bootstrap
        wait_until("three brokers in Metadata", answered(lambda: brokers_in_metadata(everyone) == {1, 2, 3}))
        create_topic(everyone, GUARDED_TOPIC, 3, replication_factor=3, config=GUARDED)
        wait_until("every partition fully replicated", lambda: fully_replicated(cluster, GUARDED_TOPIC))
        partition = rng.randrange(3)
        before = [f"before-{i}" for i in range(rng.randrange(1, 20))]
        results = produce_all(everyone, [(GUARDED_TOPIC, partition, v) for v in before])
        assert all(err is None for err, _ in results), results

        victims = [2, 3]
        rng.shuffle(victims)
        for victim in victims:
            cluster.nodes[victim].kill()
        print(f"killed nodes {victims}; partition {partition}")
        survivor = cluster.nodes[1].bootstrap

        def shrunk():
            p = topic_on(cluster, 1, GUARDED_TOPIC)[partition]
            return p["leader"] == 1 and p["in_sync_replicas"] == [1] and brokers_in_metadata(survivor) == {1}
        wait_until("the in-sync replicas to shrink to the survivor", answered(shrunk), timeout=MOVE_S)

        # acks=all: the leader refuses before appending. librdkafka would retry NOT_ENOUGH_REPLICAS
        # until message.timeout.ms and then report only the timeout: with no retries the
        # broker's own error reaches the delivery report.
        [(err, _)] = produce_all(survivor, [(GUARDED_TOPIC, partition, b"refused")], timeout_s=10,
                                 idempotent=False, retries=0)
        assert err is not None and err.code() == KafkaError.NOT_ENOUGH_REPLICAS, f"acks=all gave {err}"
        # acks=1 is accepted, but stays above the high watermark, which does not advance while
        # the ISR is smaller than min.insync.replicas (KIP-966). (A leader that was a follower
        # until the kill may not even have learned the old leader's high watermark yet.)
        [(err, offset)] = produce_all(survivor, [(GUARDED_TOPIC, partition, b"acks-1")], acks="1", idempotent=False)
        assert err is None, f"acks=1 gave {err}"
        assert offset == len(before), f"acks=1 record at {offset}, after {len(before)} records"
        p = topic_on(cluster, 1, GUARDED_TOPIC)[partition]
        assert p["log_end_offset"] == len(before) + 1 and p["high_watermark"] <= len(before), p

        for victim in victims:
            cluster.nodes[victim].start()
        wait_until("the two brokers to rejoin every ISR", lambda: fully_replicated(cluster, GUARDED_TOPIC))
        after = [f"after-{i}" for i in range(rng.randrange(1, 20))]
        results = produce_all(everyone, [(GUARDED_TOPIC, partition, v) for v in after])
        assert all(err is None for err, _ in results), results

        expected = before + ["acks-1"] + after
        read = [value.decode() for _, value in read_partition(everyone, GUARDED_TOPIC, partition, len(expected))]
        assert read == expected
        end = topic_on(cluster, 1, GUARDED_TOPIC)[partition]["log_end_offset"]
        assert end == len(expected), f"log end offset {end}: the refused record was written"
        wait_converged(cluster, GUARDED_TOPIC)
    assert_replicas_identical_on_disk(cluster, GUARDED_TOPIC, 3)


# --- 3. consumer group offsets survive the coordinator's broker ---------------------------

ORDERS_TOPIC = "orders"
GROUP = "keepers"


class GroupReader:
    """A consumer in GROUP; records every assignment, delivery and successful commit, in order."""

    def __init__(self, bootstrap, events):
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": GROUP,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500,
        })
        self.consumer.subscribe([ORDERS_TOPIC], on_assign=self._on_assign)
        self.events = events  # [("deliver" | "commit" | "assign", partition, offset, time.monotonic())]
        self.position = {}  # partition -> next offset to commit
        self.commit_failures = []
        self.client_errors = []  # transient ones, reported by librdkafka as it retries

    def _on_assign(self, consumer, partitions):
        for tp in partitions:
            self.events.append(("assign", tp.partition, -1, time.monotonic()))

    def consume(self, count, deadline):
        """Delivers `count` records (or fewer if the deadline passes)."""
        got = 0
        while got < count and time.monotonic() < deadline:
            for msg in self.consumer.consume(min(count - got, 100), 0.5):
                if msg.error():
                    assert not msg.error().fatal(), f"consumer: {msg.error()}"
                    self.client_errors.append(str(msg.error()))
                    continue
                self.events.append(("deliver", msg.partition(), msg.offset(), time.monotonic()))
                self.position[msg.partition()] = msg.offset() + 1
                got += 1
        return got

    def commit(self, position=None):
        offsets = [TopicPartition(ORDERS_TOPIC, p, o) for p, o in (position or self.position).items()]
        try:
            committed = self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as e:
            self.commit_failures.append(str(e))
            return False
        for tp in committed:
            assert tp.error is None, f"commit {tp}: {tp.error}"
            self.events.append(("commit", tp.partition, tp.offset, time.monotonic()))
        return True

    def consume_until(self, ends, deadline, commit_every):
        """Consumes until every partition's position reaches `ends`, committing as it goes."""
        while any(self.position.get(p, 0) < end for p, end in ends.items()):
            assert time.monotonic() < deadline, f"consumer at {self.position}, log ends at {ends}"
            if self.consume(commit_every, min(deadline, time.monotonic() + 2)):
                self.commit()
        while not self.commit():
            assert time.monotonic() < deadline, f"commits failing: {self.commit_failures[-3:]}"


def coordinator_on(cluster, node_id):
    """The group's coordinator as one node's metadata says: the leader of the group's partition."""
    partition = group_partition(GROUP, SETTINGS["offsets.topic.num.partitions"])
    return topic_on(cluster, node_id, "__consumer_offsets")[partition]["leader"]


def describe_coordinator(bootstrap):
    """The coordinator AdminClient.describe_consumer_groups reports. Only asked while the
    coordinator is reachable: librdkafka 2.x can abort the process when a coordinator request
    loses its connection (confluentinc/librdkafka#4605)."""
    admin = admin_for(bootstrap)
    return admin.describe_consumer_groups([GROUP])[GROUP].result(WAIT_S).coordinator.id


def committed_offsets(bootstrap):
    return group_offsets(bootstrap, GROUP, ORDERS_TOPIC, 3)


def wait_committed(bootstrap, expected, timeout=WAIT_S):
    """The group's committed offsets must be `expected` once its coordinator answers for every
    partition (a coordinator may answer before it has loaded the group)."""
    seen = [None]

    def answered_fully():
        seen.append(committed_offsets(bootstrap))
        return seen[-1] is not None and seen[-1].keys() == expected.keys()
    try:
        wait_until("the group's committed offsets", answered_fully, timeout=timeout)
    except AssertionError as e:
        raise AssertionError(f"{e}; committed {expected}, last answer {seen[-1]}") from None
    assert seen[-1] == expected, f"committed {expected}, the coordinator has {seen[-1]}"


def check_deliveries(events, ends):
    """Every offset below `ends` delivered, in order. A record is delivered again only after the
    group assigned its partition anew, and at or after the group's last commit when that
    assignment happened: the consumer then resumes from the committed offset it fetches. (A
    commit the member makes after the assignment, of positions it reached before it, does not
    move where the new assignment resumes.)"""
    next_offset = {p: 0 for p in ends}
    last_commit = {p: 0 for p in ends}
    commit_at_assignment = {p: 0 for p in ends}
    reassigned = {p: False for p in ends}  # since the partition's last delivery
    redelivered = {p: 0 for p in ends}
    start = events[0][3] if events else 0
    for i, (kind, partition, offset, _) in enumerate(events):
        if kind == "commit":
            last_commit[partition] = offset
            continue
        if kind == "assign":
            reassigned[partition] = True
            commit_at_assignment[partition] = last_commit[partition]
            continue
        recent = [(k, o, round(t - start, 3)) for k, p, o, t in events[:i + 1] if p == partition][-12:]
        if offset < next_offset[partition]:
            assert reassigned[partition] and offset >= commit_at_assignment[partition], (
                f"{ORDERS_TOPIC}-{partition}: offset {offset} delivered again (reassigned: {reassigned[partition]}, "
                f"last commit at the assignment: {commit_at_assignment[partition]}); the partition's last events "
                f"(kind, offset, seconds): {recent}")
            redelivered[partition] += next_offset[partition] - offset
        elif offset > next_offset[partition]:
            raise AssertionError(f"{ORDERS_TOPIC}-{partition}: skipped from {next_offset[partition]} to {offset}: {recent}")
        next_offset[partition] = offset + 1
        reassigned[partition] = False
    assert next_offset == ends, f"delivered up to {next_offset}, log ends at {ends}"
    return redelivered


@pytest.mark.timeout(240)
def test_committed_offsets_survive_the_loss_of_the_group_coordinators_broker(tmp_path):
    rng = seeded_rng("coordinator failover")
    partitions = 3
    with running_cluster(tmp_path) as cluster:
        everyone = cluster.bootstrap
        wait_until("three brokers in Metadata", answered(lambda: brokers_in_metadata(everyone) == {1, 2, 3}))
        create_topic(everyone, ORDERS_TOPIC, partitions, replication_factor=3, config=GUARDED)
        wait_until(f"{ORDERS_TOPIC} fully replicated", lambda: fully_replicated(cluster, ORDERS_TOPIC))
        sent = 0

        def produce(count, bootstrap):
            nonlocal sent
            records = [(ORDERS_TOPIC, n % partitions, str(n)) for n in range(sent, sent + count)]
            results = produce_all(bootstrap, records)
            assert all(err is None for err, _ in results), [err for err, _ in results if err][:3]
            sent += count

        produce(600, everyone)
        events = []
        reader = GroupReader(everyone, events)
        deadline = time.monotonic() + WAIT_S
        commit_every = rng.randrange(10, 60)
        target = rng.randrange(150, 300)
        consumed = 0
        while consumed < target or len(reader.position) < partitions:
            got = reader.consume(commit_every, min(deadline, time.monotonic() + 2))
            assert got or time.monotonic() < deadline, "the consumer receives nothing"
            consumed += got
            if got:
                assert reader.commit(), reader.commit_failures
        wait_until(f"{ORDERS_TOPIC} and __consumer_offsets fully replicated",
                   lambda: fully_replicated(cluster, ORDERS_TOPIC) and fully_replicated(cluster, "__consumer_offsets"))
        victim = describe_coordinator(everyone)
        assert all(coordinator_on(cluster, i) == victim for i in cluster.nodes), "FindCoordinator names the partition's leader"

        # A last commit, then records consumed past it; the coordinator dies right after.
        reader.consume(rng.randrange(1, 60), deadline)
        last = dict(reader.position)
        assert reader.commit(last), reader.commit_failures
        reader.consume(rng.randrange(1, 40), deadline)
        cluster.nodes[victim].kill()
        print(f"killed coordinator node {victim} at {time.monotonic() - events[0][3]:.3f}s after a commit of {last}; consumer at {reader.position}")

        survivors = [i for i in cluster.nodes if i != victim]
        others = cluster.bootstrap_of(survivors)
        moved = wait_until("the group's partition to move to a live leader", answered(
            lambda: len(views := {coordinator_on(cluster, i) for i in survivors}) == 1 and views.pop() not in (victim, -1)
            and coordinator_on(cluster, survivors[0])),
            timeout=MOVE_S)
        wait_committed(others, last)
        assert describe_coordinator(others) == moved
        print(f"the coordinator moved to node {moved} with the committed offsets intact")

        # The consumer goes on through the move, with records written after it.
        produce(rng.randrange(50, 200), others)
        ends = {p: len(range(p, sent, partitions)) for p in range(partitions)}
        reader.consume_until(ends, time.monotonic() + WAIT_S, commit_every)
        final = dict(reader.position)
        reader.consumer.close()

        # A new member of the group starts where the last one committed, also with the old
        # coordinator back.
        cluster.nodes[victim].start()
        wait_until("everything fully replicated again",
                   lambda: fully_replicated(cluster, ORDERS_TOPIC) and fully_replicated(cluster, "__consumer_offsets"))
        wait_committed(everyone, final)
        produce(rng.randrange(10, 50), everyone)
        ends = {p: len(range(p, sent, partitions)) for p in range(partitions)}
        successor = GroupReader(everyone, events)
        successor.consume_until(ends, time.monotonic() + WAIT_S, commit_every)
        successor.consumer.close()

        redelivered = check_deliveries(events, ends)
        print(f"delivered every record of {ends}; delivered again after the move: {redelivered}; "
              f"failed commits: {reader.commit_failures + successor.commit_failures}; "
              f"client errors: {reader.client_errors + successor.client_errors}")
        assert sum(ends.values()) == sent
        wait_committed(everyone, ends)
        wait_converged(cluster, ORDERS_TOPIC)
        wait_converged(cluster, "__consumer_offsets")
    assert_replicas_identical_on_disk(cluster, ORDERS_TOPIC, partitions)
    assert_replicas_identical_on_disk(cluster, "__consumer_offsets", SETTINGS["offsets.topic.num.partitions"])


# --- 4. a resumed old leader's answers reach no follower of the new leader ----------------

STALE_TOPIC = "stale"
STALE_ROUNDS = 3


class BackgroundProducer:
    """acks=1 records to one partition from a thread, as fast as the client takes them."""

    def __init__(self, bootstrap, topic, tag):
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "1", "linger.ms": 0,
                                  "message.timeout.ms": MESSAGE_TIMEOUT_S * 1000})
        self.topic, self.tag = topic, tag
        self.acked = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _on_delivery(self, err, msg):
        if err is None:
            self.acked += 1

    def _run(self):
        n = 0
        while not self._stopping.is_set():
            try:
                self.producer.produce(self.topic, value=f"{self.tag}-{n}", partition=0, on_delivery=self._on_delivery)
                n += 1
            except BufferError:
                pass
            self.producer.poll(0)
            self._stopping.wait(0.002)

    def stop(self):
        self._stopping.set()
        self._thread.join(10)

    def flush(self):
        """Waits for the outstanding records; with acks=1 some may be lost with the old leader."""
        self.producer.flush(MESSAGE_TIMEOUT_S)


@pytest.mark.timeout(300)
def test_a_follower_never_appends_a_fetch_answer_from_a_leader_it_no_longer_follows(tmp_path):
    """A leader is SIGSTOPped while producers and followers have requests in flight to it; the
    controller fences it and elects a follower; the other follower truncates to the new leader's
    log. When the old leader wakes it appends the produce requests that queued up and answers
    the followers' fetches from before the pause. Those answers belong to a leadership that is
    over: taking them would give the follower records the new leader does not have, at offsets
    where the new leader writes others (and Fetch has no diverging-epoch check to undo it)."""
    rng = seeded_rng("stale fetch answers")
    with running_cluster(tmp_path) as cluster:
        everyone = cluster.bootstrap
        wait_until("three brokers in Metadata", answered(lambda: brokers_in_metadata(everyone) == {1, 2, 3}))
        create_topic(everyone, STALE_TOPIC, 1, replication_factor=3, config=GUARDED)
        for round_ in range(STALE_ROUNDS):
            wait_until("the partition fully replicated", lambda: fully_replicated(cluster, STALE_TOPIC))
            old = wait_until("a leader", answered(lambda: leaders(everyone, STALE_TOPIC)[0] > 0 and leaders(everyone, STALE_TOPIC)[0]))
            others = cluster.bootstrap_of(i for i in cluster.nodes if i != old)
            new_leader_producer = Producer({"bootstrap.servers": others, "acks": "all", "linger.ms": 5})
            background = BackgroundProducer(everyone, STALE_TOPIC, f"old{round_}")
            wait_until("acks=1 records on the old leader", lambda: background.acked >= 50)
            cluster.pause(old)
            time.sleep(rng.uniform(0.005, 0.05))  # produce requests queue up at the paused leader
            background.stop()
            new = wait_until(f"a leader other than paused node {old}",
                             answered(lambda: leaders(others, STALE_TOPIC)[0] not in (old, -1) and leaders(others, STALE_TOPIC)[0]),
                             timeout=MOVE_S)
            follower = next(i for i in cluster.nodes if i not in (old, new))
            wait_until(f"node {follower} to follow node {new}",
                       answered(lambda: topic_on(cluster, follower, STALE_TOPIC)[0]["leader"] == new))
            wait_until("the producer to know the new leader", answered(
                lambda: new_leader_producer.list_topics(STALE_TOPIC, timeout=5).topics[STALE_TOPIC].partitions[0].leader == new))
            cluster.resume(old)
            results = []
            for n in range(300):
                new_leader_producer.produce(STALE_TOPIC, value=f"new{round_}-{n}", partition=0,
                                            on_delivery=lambda err, msg: results.append(err))
            assert new_leader_producer.flush(WAIT_S) == 0 and not any(results), [e for e in results if e][:3]
            background.flush()
            views = wait_converged(cluster, STALE_TOPIC, timeout=30)
            print(f"round {round_}: paused leader {old}, new leader {new}, follower {follower}; "
                  f"log end offset {views[0][0]['log_end_offset']}")
    assert_replicas_identical_on_disk(cluster, STALE_TOPIC, 1)
