"""Transactions in a three-broker cluster while brokers are killed: the transaction
coordinator's broker, partition leaders, and random brokers under an exactly-once
consume-transform-produce loop.

A confluent-kafka transactional producer writes transactions that span three partitions led
by different brokers (so markers travel to other brokers with WriteTxnMarkers), committing or
aborting each as a seeded schedule says. Midway the broker coordinating the transactional id
is killed with SIGKILL; the coordinator moves to the new leader of the id's
`__transaction_state` partition, which replays it and finishes any transaction left prepared.
Then the victim comes back, and later the leader of a random partition is killed and
restarted the same way.

What a read_committed consumer must see at the end:
- every record of every transaction whose commit was acknowledged, exactly once, in order;
- no record of a transaction whose abort was acknowledged;
- for a transaction whose outcome the producer could not learn (its broker died under it):
  all of its records or none (atomicity).

The exactly-once test runs Kafka's consume-transform-produce loop (read_committed consumer,
results and input offsets committed in one transaction) over 1200 inputs while a seeded
schedule kills and restarts one broker at a time on a clock: every input must be in the
output exactly once, and the group's committed offsets must be the inputs' ends.

Randomness comes from a seed printed at the start of each test; STROM_TEST_SEED replays it.
"""

import os
import threading
import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition

from cluster import (
    WAIT_S,
    Cluster,
    answered,
    brokers_in_metadata,
    create_topic,
    group_partition,
    seeded_rng,
    wait_until,
)

TOPIC = "payments"
PARTITIONS = 3
TXN_PARTITIONS = 5
TRANSACTIONAL_ID = "payments-writer"
SETTINGS = {
    "transaction.state.log.num.partitions": TXN_PARTITIONS,
    "offsets.topic.num.partitions": 5,
}
RECORDS_PER_PARTITION = 3


def txn_coordinator(cluster, node_id):
    """The leader of the transactional id's __transaction_state partition, as a node sees it."""
    partition = group_partition(TRANSACTIONAL_ID, TXN_PARTITIONS)
    detail = cluster.api(node_id, "topics/__transaction_state")["partitions"]
    return next(p["leader"] for p in detail if p["partition"] == partition)


def partition_leader(cluster, partition):
    """The leader of a TOPIC partition as a live node's metadata says (None while it moves)."""
    node = cluster.live()[0]
    detail = cluster.api(node, f"topics/{TOPIC}")["partitions"]
    leader = next(p["leader"] for p in detail if p["partition"] == partition)
    return leader if leader in cluster.live() else None


def new_producer(bootstrap, transactional_id=TRANSACTIONAL_ID):
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "transactional.id": transactional_id,
        "transaction.timeout.ms": 20000,
        "linger.ms": 2,
        **({"debug": os.environ["RDKAFKA_DEBUG"]} if os.environ.get("RDKAFKA_DEBUG") else {}),
    })
    producer.init_transactions(WAIT_S)
    return producer


def run_transaction(producer, n, commit):
    """Writes transaction n's records and ends it. Returns 'committed', 'aborted' or 'unknown'
    (the producer got an error and could not learn the outcome), and the producer to go on
    with (a new instance after a fatal error)."""
    values = [f"t{n}-p{p}-r{r}".encode() for p in range(PARTITIONS) for r in range(RECORDS_PER_PARTITION)]
    try:
        producer.begin_transaction()
        for i, value in enumerate(values):
            producer.produce(TOPIC, value=value, partition=i // RECORDS_PER_PARTITION)
        if commit:
            producer.commit_transaction(WAIT_S)
            return "committed", values
        producer.abort_transaction(WAIT_S)
        return "aborted", values
    except KafkaException as e:
        error = e.args[0]
        print(f"transaction {n}: {error}")
        if error.txn_requires_abort():
            try:
                producer.abort_transaction(WAIT_S)
            except KafkaException as abort_error:
                print(f"transaction {n}: abort failed: {abort_error}")
        return "unknown", values


def read_committed(bootstrap, topic=TOPIC):
    """{partition: [values]} a read_committed consumer reads from the beginning to the end."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"audit-{topic}",
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
    })
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    per_partition = {p: [] for p in range(PARTITIONS)}
    at_end = set()
    deadline = time.monotonic() + WAIT_S
    try:
        while len(at_end) < PARTITIONS:
            assert time.monotonic() < deadline, f"read_committed did not reach the end: {sorted(at_end)}"
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    at_end.add(msg.partition())
                    continue
                raise KafkaException(msg.error())
            at_end.discard(msg.partition())
            per_partition[msg.partition()].append(msg.value())
    finally:
        consumer.close()
    return per_partition


@pytest.mark.timeout(300)
def test_transactions_stay_atomic_when_the_coordinators_broker_is_killed(tmp_path):
    rng = seeded_rng("transaction coordinator failover")
    cluster = Cluster(tmp_path, settings=SETTINGS)
    cluster.start()
    try:
        everyone = cluster.bootstrap
        wait_until("three brokers in Metadata", answered(lambda: brokers_in_metadata(everyone) == {1, 2, 3}))
        create_topic(everyone, TOPIC, PARTITIONS, replication_factor=3, config={"min.insync.replicas": "2"})
        producer = new_producer(everyone)
        outcomes = []
        total = 30
        kill_at = rng.randrange(6, 12)
        victim = None
        for n in range(total):
            if n == kill_at:
                victim = wait_until("a transaction coordinator", answered(lambda: txn_coordinator(cluster, cluster.live()[0])))
                print(f"killing broker {victim}, the coordinator of {TRANSACTIONAL_ID}, before transaction {n}")
                cluster.nodes[victim].kill()
            if n == kill_at + 4:
                print(f"restarting broker {victim}")
                cluster.nodes[victim].restart()
            if n == kill_at + 9:
                # Now a partition leader (possibly the new coordinator too), mid-stream.
                partition = rng.randrange(PARTITIONS)
                victim = wait_until("a leader", answered(lambda: partition_leader(cluster, partition)))
                print(f"killing broker {victim}, the leader of {TOPIC}-{partition}, before transaction {n}")
                cluster.nodes[victim].kill()
            if n == kill_at + 13:
                print(f"restarting broker {victim}")
                cluster.nodes[victim].restart()
            outcome, values = run_transaction(producer, n, commit=rng.random() < 0.7)
            outcomes.append((outcome, values))
            if outcome == "unknown":
                # A fatal error (fenced, or an unknown outcome librdkafka cannot recover) ends
                # this instance; a new one fences it and aborts what it left open.
                producer = new_producer(everyone)

        seen = read_committed(everyone)
        visible = [v for values in seen.values() for v in values]
        assert len(visible) == len(set(visible)), "a record was read twice"
        visible = set(visible)
        for n, (outcome, values) in enumerate(outcomes):
            shown = [v in visible for v in values]
            if outcome == "committed":
                assert all(shown), f"transaction {n} was committed but {shown.count(False)} records are missing"
            elif outcome == "aborted":
                assert not any(shown), f"transaction {n} was aborted but some records are visible"
            else:
                assert all(shown) or not any(shown), f"transaction {n} is partly visible: {shown}"
        # Within a partition, transactions appear in the order they were written.
        for p, values in seen.items():
            order = [int(v.split(b"-")[0][1:]) for v in values]
            assert order == sorted(order), f"partition {p} out of order: {order}"
        committed = sum(1 for o, _ in outcomes if o == "committed")
        print(f"outcomes: {committed} committed, {sum(1 for o, _ in outcomes if o == 'aborted')} aborted, "
              f"{sum(1 for o, _ in outcomes if o == 'unknown')} unknown")
        assert committed > 0
    finally:
        cluster.stop()
        print(f"broker logs: {sorted(str(n.log_path) for n in cluster.nodes.values())}")


IN_TOPIC = "orders-in"
OUT_TOPIC = "orders-out"
EOS_GROUP = "order-enricher"
INPUTS = 1200


def seed_inputs(bootstrap):
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    for i in range(INPUTS):
        producer.produce(IN_TOPIC, value=f"order-{i}".encode(), partition=i % PARTITIONS)
    assert producer.flush(WAIT_S) == 0
    return {p: INPUTS // PARTITIONS + (1 if p < INPUTS % PARTITIONS else 0) for p in range(PARTITIONS)}


class Processor:
    """Kafka's exactly-once loop: consume read_committed, produce the results and the input
    offsets in one transaction, commit; after an abort (or a new producer instance), rewind
    the consumer to the group's committed offsets and process again."""

    def __init__(self, bootstrap):
        self.bootstrap = bootstrap
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": EOS_GROUP,
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            **({"debug": os.environ["RDKAFKA_CONSUMER_DEBUG"]} if os.environ.get("RDKAFKA_CONSUMER_DEBUG") else {}),
        })
        self.consumer.assign([TopicPartition(IN_TOPIC, p) for p in range(PARTITIONS)])
        self.producer = new_producer(bootstrap, transactional_id="order-enricher-1")
        self.commits = 0
        self.aborts = 0

    def rewind(self):
        committed = wait_until("the group's committed offsets", self.committed)
        for partition, offset in committed.items():
            offset = offset if offset >= 0 else OFFSET_BEGINNING
            self.consumer.seek(TopicPartition(IN_TOPIC, partition, offset))

    def round(self):
        """One transaction over what one poll returns; True when something was processed."""
        msgs = [m for m in self.consumer.consume(10, timeout=1.0) if not m.error()]
        if not msgs:
            return False
        try:
            self.producer.begin_transaction()
            for m in msgs:
                self.producer.produce(OUT_TOPIC, value=m.value().replace(b"order-", b"enriched-"),
                                      partition=m.partition())
            positions = self.consumer.position([TopicPartition(IN_TOPIC, p) for p in range(PARTITIONS)])
            self.producer.send_offsets_to_transaction(
                [tp for tp in positions if tp.offset >= 0], self.consumer.consumer_group_metadata(), WAIT_S)
            self.producer.commit_transaction(WAIT_S)
            self.commits += 1
        except KafkaException as e:
            error = e.args[0]
            print(f"transaction failed: {error}")
            self.aborts += 1
            if error.txn_requires_abort():
                try:
                    self.producer.abort_transaction(WAIT_S)
                except KafkaException as abort_error:
                    print(f"abort failed: {abort_error}; a new instance fences this one")
                    self.producer = new_producer(self.bootstrap, transactional_id="order-enricher-1")
            else:
                # Fatal (fenced) or an unknown outcome: a new instance takes over.
                self.producer = new_producer(self.bootstrap, transactional_id="order-enricher-1")
            self.rewind()
        return True

    def diagnosis(self, ends):
        """What a timeout message needs: committed offsets, the consumer's positions, the
        inputs' ends, and how many transactions committed and failed."""
        positions = self.consumer.position([TopicPartition(IN_TOPIC, p) for p in range(PARTITIONS)])
        return (f"committed {self.committed()}, positions {[tp.offset for tp in positions]}, "
                f"inputs end at {ends}, {self.commits} commits, {self.aborts} failed transactions")

    def committed(self):
        """{partition: committed offset}, or None while the group coordinator does not answer."""
        try:
            committed = self.consumer.committed(
                [TopicPartition(IN_TOPIC, p) for p in range(PARTITIONS)], timeout=10)
        except KafkaException:
            return None
        return {tp.partition: tp.offset for tp in committed}


class Faults:
    """Kills a random broker, lets it stay down, restarts it, lets the cluster run, and again,
    until stopped: one broker down at a time, fault lengths drawn from the seed. Brokers come
    back on a clock rather than on the processor's progress: librdkafka's producer waits for a
    down group coordinator's broker to return before it sends TxnOffsetCommit elsewhere, so a
    schedule that waited for progress could wait forever."""

    def __init__(self, cluster, rng):
        self.cluster, self.rng = cluster, rng
        self.stop = threading.Event()
        self.kills = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop.wait(self.rng.uniform(1, 3)):  # up time, from the seed
            victim = self.rng.choice(self.cluster.live())
            print(f"killing broker {victim}")
            self.cluster.nodes[victim].kill()
            self.kills += 1
            self.stop.wait(self.rng.uniform(2, 6))  # down time, from the seed
            print(f"restarting broker {victim}")
            self.cluster.nodes[victim].restart()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(WAIT_S * 2)


@pytest.mark.timeout(420)
def test_exactly_once_consume_transform_produce_while_brokers_are_killed(tmp_path):
    rng = seeded_rng("exactly-once under broker kills")
    cluster = Cluster(tmp_path, settings=SETTINGS)
    cluster.start()
    try:
        everyone = cluster.bootstrap
        wait_until("three brokers in Metadata", answered(lambda: brokers_in_metadata(everyone) == {1, 2, 3}))
        for topic in (IN_TOPIC, OUT_TOPIC):
            create_topic(everyone, topic, PARTITIONS, replication_factor=3, config={"min.insync.replicas": "2"})
        ends = seed_inputs(everyone)
        processor = Processor(everyone)
        # The faults start once the loop runs (its first transaction committed): a CI run
        # (seed 204348768) whose faults began while the consumer was still starting never saw
        # a record in 300 s; a replay of that seed on the development machine passed.
        deadline = time.monotonic() + 300
        while processor.commits == 0:
            assert time.monotonic() < deadline, f"no transaction committed: {processor.diagnosis(ends)}"
            processor.round()
        with Faults(cluster, rng) as faults:
            while True:
                assert time.monotonic() < deadline, f"the processor did not finish: {processor.diagnosis(ends)}"
                if not processor.round() and processor.committed() == ends:
                    break
        print(f"{faults.kills} brokers killed; {processor.commits} commits, {processor.aborts} failed transactions")
        processor.consumer.close()
        assert faults.kills > 0, "the run ended before the first fault"

        outputs = [v for values in read_committed(everyone, OUT_TOPIC).values() for v in values]
        expected = sorted(f"enriched-{i}".encode() for i in range(INPUTS))
        duplicates = len(outputs) - len(set(outputs))
        assert duplicates == 0, f"{duplicates} inputs were reflected more than once"
        assert sorted(outputs) == expected, f"{len(set(expected) - set(outputs))} inputs missing from the output"
        committed = Consumer({"bootstrap.servers": everyone, "group.id": EOS_GROUP}).committed(
            [TopicPartition(IN_TOPIC, p) for p in range(PARTITIONS)], timeout=WAIT_S)
        assert {tp.partition: tp.offset for tp in committed} == ends
    finally:
        cluster.stop()
        print(f"broker logs: {sorted(str(n.log_path) for n in cluster.nodes.values())}")
