"""Transactions in a three-broker cluster, with the transaction coordinator's broker killed.

A confluent-kafka transactional producer writes transactions that span three partitions led
by different brokers (so markers travel to other brokers with WriteTxnMarkers), committing or
aborting each as a seeded schedule says. Midway the broker coordinating the transactional id
is killed with SIGKILL; the coordinator moves to the new leader of the id's
`__transaction_state` partition, which replays it and finishes any transaction left prepared.
Then the victim comes back.

What a read_committed consumer must see at the end:
- every record of every transaction whose commit was acknowledged, exactly once, in order;
- no record of a transaction whose abort was acknowledged;
- for a transaction whose outcome the producer could not learn (its broker died under it):
  all of its records or none (atomicity).

Randomness comes from a seed printed at the start; STROM_TEST_SEED replays it.
"""

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


def new_producer(bootstrap):
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "transactional.id": TRANSACTIONAL_ID,
        "transaction.timeout.ms": 20000,
        "linger.ms": 2,
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


def read_committed(bootstrap):
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "payments-audit",
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
    })
    consumer.assign([TopicPartition(TOPIC, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
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
        total = 24
        kill_at = rng.randrange(6, 12)
        victim = None
        for n in range(total):
            if n == kill_at:
                victim = wait_until("a transaction coordinator", answered(lambda: txn_coordinator(cluster, 1)))
                print(f"killing broker {victim}, the coordinator of {TRANSACTIONAL_ID}, before transaction {n}")
                cluster.nodes[victim].kill()
            if n == kill_at + 6:
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
