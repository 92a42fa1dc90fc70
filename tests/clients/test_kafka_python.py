"""kafka-python from PyPI (its own protocol implementation): admin, produce, consume, offsets,
configs."""

import logging

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic

from data import CODECS, RECORDS, first_offset_at_or_after, make_records

PARTITIONS = 3


@pytest.mark.parametrize("codec", CODECS)
def test_kafka_python_round_trip(broker, codec, caplog):
    caplog.set_level(logging.WARNING, logger="kafka")
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, client_id="strom-test-admin")
    topic = f"kafka-python-{codec}"
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])

    records = make_records(RECORDS, seed=100 + CODECS.index(codec))
    producer = KafkaProducer(
        bootstrap_servers=broker.bootstrap,
        compression_type=None if codec == "none" else codec,
        acks="all",
        linger_ms=5,
        batch_size=64 * 1024,
    )
    futures = [producer.send(topic, key=k, value=v, headers=h, timestamp_ms=ts) for k, v, h, ts in records]
    producer.flush(60)
    delivered = {}
    for (key, *_), future in zip(records, futures):
        meta = future.get(timeout=60)
        delivered[key] = (meta.partition, meta.offset)
    producer.close()

    consumer = KafkaConsumer(
        bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False, max_poll_records=10_000
    )
    partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    consumed = []
    idle_polls = 0
    while len(consumed) < RECORDS and idle_polls < 30:
        batches = consumer.poll(timeout_ms=1000)
        idle_polls = 0 if batches else idle_polls + 1
        for tp, messages in batches.items():
            for m in messages:
                consumed.append(
                    {
                        "partition": tp.partition,
                        "offset": m.offset,
                        "key": m.key,
                        "value": m.value or b"",
                        "headers": [(k, v or b"") for k, v in m.headers],
                        "timestamp": m.timestamp,
                    }
                )
    assert len(consumed) == RECORDS, f"consumed {len(consumed)} of {RECORDS}"
    by_key = {r["key"]: r for r in consumed}
    for key, value, headers, ts in records:
        got = by_key[key]
        assert (got["value"], got["headers"], got["timestamp"]) == (value, headers, ts), key
        assert (got["partition"], got["offset"]) == delivered[key]

    target = records[RECORDS // 3][3]
    found = consumer.offsets_for_times({tp: target for tp in partitions})
    for tp, result in found.items():
        expected = first_offset_at_or_after(consumed, tp.partition, target)
        assert (result.offset if result else -1) == expected
    end = consumer.end_offsets(partitions)
    assert sum(end.values()) == RECORDS
    consumer.close()

    resource = ConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": "7654321"})
    admin.alter_configs([resource])
    described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="all")
    entries = described["topic"][topic]
    assert entries["retention.ms"]["value"] == "7654321"
    assert entries["retention.ms"]["config_source"] == "DYNAMIC_TOPIC_CONFIG"
    assert entries["cleanup.policy"]["value"] == "delete"

    admin.delete_topics([topic])
    assert topic not in admin.list_topics()
    admin.close()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]


def test_describe_producers_shows_the_idempotent_producer_of_each_partition(broker):
    """DescribeProducers (KIP-664) through kafka-python's admin client: the partition an
    idempotent producer wrote to lists it with its epoch and last sequence; the other lists
    nobody; an unknown partition is an error."""
    from kafka.errors import UnknownTopicOrPartitionError

    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, client_id="strom-test-admin")
    topic = "described-producers"
    admin.create_topics([NewTopic(topic, 2, 1)])
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=True, acks="all")
    for i in range(25):
        producer.send(topic, value=b"v%d" % i, partition=0).get(timeout=60)
    producer.close()

    states = admin.describe_producers([TopicPartition(topic, 0), TopicPartition(topic, 1)])
    [active] = states[TopicPartition(topic, 0)].active_producers
    assert active.producer_id >= 0
    assert active.producer_epoch == 0
    assert active.last_sequence == 24, "25 records, sequences 0-24"
    assert active.last_timestamp > 0
    assert active.current_transaction_start_offset == -1, "not transactional"
    assert states[TopicPartition(topic, 1)].active_producers == []

    with pytest.raises(UnknownTopicOrPartitionError):
        admin.describe_producers([TopicPartition(topic, 7)])
    admin.close()
