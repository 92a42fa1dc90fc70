"""Transactions (KIP-98) with real clients: confluent-kafka (librdkafka) producers and
read_committed consumers, kafka-python's transaction admin calls.

Each test checks what a client sees, not how Strom does it: committed records are visible to
read_committed consumers and aborted ones are not, a new producer instance fences the old one
and aborts what it left open, an abandoned transaction is aborted after its timeout, and
consumer offsets sent to a transaction commit with it.
"""

import time
import urllib.request
import uuid

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

TIMEOUT_S = 60
PARTITIONS = 3
# Timed-out transactions are looked for every half second, so the timeout test is quick.
BROKER_ARGS = ("--set", "transaction.abort.timed.out.transaction.cleanup.interval.ms=500")


@pytest.fixture
def txn_broker(make_broker):
    return make_broker(*BROKER_ARGS)


def create_topic(bootstrap, partitions=PARTITIONS):
    topic = f"txn-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(TIMEOUT_S)
    return topic


def transactional_producer(bootstrap, transactional_id, **extra):
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "transactional.id": transactional_id,
            "linger.ms": 5,
            **extra,
        }
    )
    producer.init_transactions(TIMEOUT_S)
    return producer


def produce_in_transaction(producer, topic, values, commit):
    producer.begin_transaction()
    for i, value in enumerate(values):
        producer.produce(topic, key=str(i).encode(), value=value, partition=i % PARTITIONS)
    if commit:
        producer.commit_transaction(TIMEOUT_S)
    else:
        producer.flush(TIMEOUT_S)
        producer.abort_transaction(TIMEOUT_S)


def read_all(bootstrap, topic, isolation, until_count=None, idle_polls_max=5):
    """Every record of the topic a consumer with `isolation` sees, from the beginning, until
    `until_count` are read or the partitions' ends are reached (read_committed stops at the
    last stable offset)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex[:8]}",
            "isolation.level": isolation,
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    values = []
    at_end = set()
    idle = 0
    try:
        while idle < idle_polls_max:
            msg = consumer.poll(1.0)
            if msg is None:
                idle += 1
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    at_end.add(msg.partition())
                    if until_count is None and len(at_end) == PARTITIONS:
                        break
                    continue
                raise KafkaException(msg.error())
            values.append(msg.value())
            at_end.discard(msg.partition())
            if until_count is not None and len(values) >= until_count:
                break
    finally:
        consumer.close()
    return values


def test_read_committed_sees_committed_records_and_never_aborted_ones(txn_broker):
    bootstrap = txn_broker.bootstrap
    topic = create_topic(bootstrap)
    producer = transactional_producer(bootstrap, "txn-visibility")
    committed = [f"committed-{i}".encode() for i in range(30)]
    aborted = [f"aborted-{i}".encode() for i in range(30)]
    produce_in_transaction(producer, topic, committed[:15], commit=True)
    produce_in_transaction(producer, topic, aborted, commit=False)
    produce_in_transaction(producer, topic, committed[15:], commit=True)

    seen = read_all(bootstrap, topic, "read_committed")
    assert sorted(seen) == sorted(committed)
    # read_uncommitted sees the aborted records too: they are in the log.
    raw = read_all(bootstrap, topic, "read_uncommitted")
    assert sorted(raw) == sorted(committed + aborted)


def test_open_transaction_holds_read_committed_consumers_at_the_last_stable_offset(txn_broker):
    bootstrap = txn_broker.bootstrap
    topic = create_topic(bootstrap, partitions=1)
    producer = transactional_producer(bootstrap, "txn-lso")
    producer.begin_transaction()
    producer.produce(topic, value=b"pending", partition=0)
    producer.flush(TIMEOUT_S)

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "lso-reader",
            "isolation.level": "read_committed",
        }
    )
    # The last stable offset is the open transaction's first offset: nothing to read yet.
    low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=TIMEOUT_S)
    assert (low, high) == (0, 0)
    producer.commit_transaction(TIMEOUT_S)
    # Past the record and its COMMIT marker.
    low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=TIMEOUT_S)
    assert high == 2
    consumer.close()
    assert read_all(bootstrap, topic, "read_committed", until_count=1) == [b"pending"]


def test_a_new_instance_fences_the_old_and_aborts_its_open_transaction(txn_broker):
    bootstrap = txn_broker.bootstrap
    topic = create_topic(bootstrap)
    zombie = transactional_producer(bootstrap, "txn-fencing")
    zombie.begin_transaction()
    for i in range(10):
        zombie.produce(topic, value=f"zombie-{i}".encode(), partition=i % PARTITIONS)
    zombie.flush(TIMEOUT_S)

    # The new instance's init_transactions aborts the zombie's open transaction.
    fresh = transactional_producer(bootstrap, "txn-fencing")
    produce_in_transaction(fresh, topic, [b"fresh"], commit=True)

    with pytest.raises(KafkaException) as raised:
        zombie.produce(topic, value=b"late", partition=0)
        zombie.commit_transaction(TIMEOUT_S)
    assert raised.value.args[0].fatal() or raised.value.args[0].code() in (
        KafkaError._FENCED,
        KafkaError.PRODUCER_FENCED,
        KafkaError.INVALID_PRODUCER_EPOCH,
    )
    assert read_all(bootstrap, topic, "read_committed") == [b"fresh"]


def test_an_abandoned_transaction_is_aborted_after_its_timeout(txn_broker):
    bootstrap = txn_broker.bootstrap
    topic = create_topic(bootstrap, partitions=1)
    abandoned = transactional_producer(bootstrap, "txn-timeout", **{"transaction.timeout.ms": 2000})
    abandoned.begin_transaction()
    abandoned.produce(topic, value=b"never-committed", partition=0)
    abandoned.flush(TIMEOUT_S)
    # Another producer commits after the abandoned records; read_committed readers can only
    # see it once the coordinator has aborted the abandoned transaction.
    other = transactional_producer(bootstrap, "txn-timeout-other")
    other.begin_transaction()
    other.produce(topic, value=b"committed-later", partition=0)
    other.commit_transaction(TIMEOUT_S)

    seen = read_all(bootstrap, topic, "read_committed", until_count=1, idle_polls_max=30)
    assert seen == [b"committed-later"]


def test_offsets_sent_to_a_transaction_commit_with_it(txn_broker):
    bootstrap = txn_broker.bootstrap
    source = create_topic(bootstrap, partitions=1)
    sink = create_topic(bootstrap, partitions=1)
    seed = Producer({"bootstrap.servers": bootstrap})
    for i in range(20):
        seed.produce(source, value=f"in-{i}".encode(), partition=0)
    assert seed.flush(TIMEOUT_S) == 0

    group = "txn-transform"
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe([source])
    producer = transactional_producer(bootstrap, "txn-transform-1")

    def transform_batch(count, commit):
        msgs = []
        while len(msgs) < count:
            msg = consumer.poll(1.0)
            if msg is not None and not msg.error():
                msgs.append(msg)
        producer.begin_transaction()
        for m in msgs:
            producer.produce(sink, value=m.value().replace(b"in-", b"out-"), partition=0)
        producer.send_offsets_to_transaction(
            consumer.position(consumer.assignment()), consumer.consumer_group_metadata(), TIMEOUT_S
        )
        if commit:
            producer.commit_transaction(TIMEOUT_S)
        else:
            producer.abort_transaction(TIMEOUT_S)

    transform_batch(10, commit=True)
    committed = consumer.committed([TopicPartition(source, 0)], timeout=TIMEOUT_S)
    assert committed[0].offset == 10
    transform_batch(5, commit=False)
    # The aborted transaction's offsets never became the group's.
    committed = consumer.committed([TopicPartition(source, 0)], timeout=TIMEOUT_S)
    assert committed[0].offset == 10
    consumer.close()
    assert read_all(bootstrap, sink, "read_committed") == [f"out-{i}".encode() for i in range(10)]


def test_kafka_python_lists_describes_and_aborts_a_hanging_transaction(txn_broker):
    from kafka import TopicPartition as KafkaTopicPartition
    from kafka.admin import KafkaAdminClient
    from kafka.admin._transactions import AbortTransactionSpec

    bootstrap = txn_broker.bootstrap
    topic = create_topic(bootstrap, partitions=1)
    producer = transactional_producer(bootstrap, "txn-admin")
    producer.begin_transaction()
    producer.produce(topic, value=b"hanging", partition=0)
    producer.flush(TIMEOUT_S)

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=TIMEOUT_S * 1000)
    try:
        listed = [t for per_broker in admin.list_transactions().values() for t in per_broker]
        mine = [t for t in listed if t.transactional_id == "txn-admin"]
        assert len(mine) == 1 and mine[0].state.value == "Ongoing", listed
        ongoing = admin.list_transactions(state_filters=["Ongoing"], producer_id_filters=[mine[0].producer_id])
        assert [t.transactional_id for ts in ongoing.values() for t in ts] == ["txn-admin"]

        description = admin.describe_transactions(["txn-admin"])["txn-admin"]
        assert description.state.value == "Ongoing"
        assert description.producer_id == mine[0].producer_id
        assert {(tp.topic, tp.partition) for tp in description.topic_partitions} == {(topic, 0)}

        # The operator's last resort for a hanging transaction (kafka-transactions.sh abort):
        # an ABORT marker straight to the partition leader. read_committed readers move on.
        tp = KafkaTopicPartition(topic, 0)
        producers = admin.describe_producers([tp])[tp].active_producers
        assert [p.current_transaction_start_offset for p in producers] == [0]
        admin.abort_transaction(
            AbortTransactionSpec(
                topic_partition=tp,
                producer_id=producers[0].producer_id,
                producer_epoch=producers[0].producer_epoch,
                coordinator_epoch=-1,
            )
        )
        producers = admin.describe_producers([tp])[tp].active_producers
        assert [p.current_transaction_start_offset for p in producers] == [-1]
    finally:
        admin.close()
    assert read_all(bootstrap, topic, "read_committed") == []


def test_metrics_count_open_transactions_and_the_last_stable_offset_lag(make_broker):
    broker = make_broker(*BROKER_ARGS, "--http", "127.0.0.1:0")
    bootstrap = broker.bootstrap
    topic = create_topic(bootstrap, partitions=1)

    def scrape():
        url = f"http://127.0.0.1:{broker.http_port}/metrics"
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            lines = response.read().decode().splitlines()
        return {k: float(v) for k, v in (line.rsplit(" ", 1) for line in lines if line and not line.startswith("#"))}

    lag_key = f'strom_last_stable_offset_lag{{topic="{topic}",partition="0"}}'
    producer = transactional_producer(bootstrap, "txn-metrics")
    producer.begin_transaction()
    for i in range(5):
        producer.produce(topic, value=f"open-{i}".encode(), partition=0)
    producer.flush(TIMEOUT_S)
    m = scrape()
    assert m['strom_transactions{state="Ongoing"}'] == 1
    assert m[lag_key] == 5
    producer.commit_transaction(TIMEOUT_S)
    # The marker is written in the background after the commit is acknowledged: the lag is 0
    # once the coordinator has recorded the transaction complete.
    deadline = time.monotonic() + TIMEOUT_S
    while scrape().get('strom_transactions{state="CompleteCommit"}') != 1:
        assert time.monotonic() < deadline, "the transaction never completed"
        time.sleep(0.05)
    m = scrape()
    assert m[lag_key] == 0
    assert 'strom_transactions{state="Ongoing"}' not in m
