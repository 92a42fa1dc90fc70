"""confluent-kafka from PyPI (a current librdkafka): admin, produce, consume, offsets, configs."""

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    OffsetSpec,
    ResourceType,
)

from data import CODECS, RECORDS, first_offset_at_or_after, make_records

PARTITIONS = 3
TIMEOUT_S = 60


def client_config(broker, errors):
    def on_error(err):
        errors.append(str(err))

    return {"bootstrap.servers": broker.bootstrap, "error_cb": on_error}


def produce_all(conf, topic, codec, records, errors):
    producer = Producer({**conf, "compression.type": codec, "acks": "all", "enable.idempotence": True, "linger.ms": 5})
    delivered = {}

    def on_delivery(err, msg):
        if err is not None:
            errors.append(f"delivery: {err}")
        else:
            delivered[msg.key()] = (msg.partition(), msg.offset())

    for key, value, headers, ts in records:
        while True:
            try:
                producer.produce(topic, value=value, key=key, headers=headers, timestamp=ts, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(TIMEOUT_S) == 0, "every record delivered"
    return delivered


def consume_all(conf, topic, count):
    consumer = Consumer({**conf, "group.id": f"reader-{topic}", "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    consumed = []
    idle_polls = 0
    while len(consumed) < count and idle_polls < 30:
        batch = consumer.consume(10_000, timeout=1.0)
        idle_polls = 0 if batch else idle_polls + 1
        for m in batch:
            assert m.error() is None, m.error()
            consumed.append(
                {
                    "partition": m.partition(),
                    "offset": m.offset(),
                    "key": m.key(),
                    "value": m.value() or b"",
                    "headers": [(k, v or b"") for k, v in (m.headers() or [])],
                    "timestamp": m.timestamp()[1],
                }
            )
    return consumer, consumed


@pytest.mark.parametrize("codec", CODECS)
def test_confluent_kafka_round_trip(broker, codec):
    errors = []
    conf = client_config(broker, errors)
    admin = AdminClient(conf)
    topic = f"confluent-{codec}"
    admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])[topic].result(TIMEOUT_S)

    records = make_records(RECORDS, seed=CODECS.index(codec))
    delivered = produce_all(conf, topic, codec, records, errors)
    assert len(delivered) == RECORDS

    consumer, consumed = consume_all(conf, topic, RECORDS)
    assert len(consumed) == RECORDS, f"consumed {len(consumed)} of {RECORDS}"
    by_key = {r["key"]: r for r in consumed}
    for key, value, headers, ts in records:
        got = by_key[key]
        assert (got["value"], got["headers"], got["timestamp"]) == (value, headers, ts), key
        assert (got["partition"], got["offset"]) == delivered[key]
    for p in range(PARTITIONS):
        offsets = [r["offset"] for r in consumed if r["partition"] == p]
        assert offsets == list(range(len(offsets))), "each partition reads back in order, without gaps"

    # Offsets by timestamp, through both the consumer and the admin API.
    target = records[RECORDS // 2][3]
    found = consumer.offsets_for_times([TopicPartition(topic, p, target) for p in range(PARTITIONS)], timeout=TIMEOUT_S)
    for tp in found:
        assert tp.offset == first_offset_at_or_after(consumed, tp.partition, target)
    consumer.close()
    specs = {TopicPartition(topic, p): OffsetSpec.for_timestamp(target) for p in range(PARTITIONS)}
    for tp, future in admin.list_offsets(specs).items():
        assert future.result(TIMEOUT_S).offset == first_offset_at_or_after(consumed, tp.partition, target)
    latest = admin.list_offsets({TopicPartition(topic, 0): OffsetSpec.latest()})
    assert list(latest.values())[0].result(TIMEOUT_S).offset == sum(1 for r in consumed if r["partition"] == 0)

    # Alter and describe a topic config.
    resource = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[ConfigEntry("retention.ms", "123456789", incremental_operation=AlterConfigOpType.SET)],
    )
    admin.incremental_alter_configs([resource])[resource].result(TIMEOUT_S)
    described = admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic)])
    configs = list(described.values())[0].result(TIMEOUT_S)
    assert configs["retention.ms"].value == "123456789"
    assert configs["retention.ms"].source == 1  # DYNAMIC_TOPIC_CONFIG
    assert configs["cleanup.policy"].value == "delete"

    admin.delete_topics([topic])[topic].result(TIMEOUT_S)
    assert topic not in admin.list_topics(timeout=TIMEOUT_S).topics
    assert errors == [], errors
