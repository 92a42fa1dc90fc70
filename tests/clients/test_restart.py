"""Restart with real clients: confluent-kafka produces (keys, headers, a tombstone), the broker
stops and starts again on the same data directory, and kcat and kafka-python read everything
back; producing continues at the next offset."""

import json
import subprocess

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic
from kafka import KafkaConsumer, TopicPartition

TIMEOUT_S = 60
COUNT = 5000


def test_everything_survives_a_restart(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("durable", num_partitions=2, replication_factor=1,
                                  config={"retention.ms": "86400000"})])["durable"].result(TIMEOUT_S)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "compression.type": "zstd"})
    for i in range(COUNT):
        value = None if i == 7 else f"value-{i}"
        producer.produce("durable", key=f"key-{i}", value=value, partition=i % 2, headers=[("n", str(i))])
    assert producer.flush(TIMEOUT_S) == 0

    broker.restart()

    out = subprocess.run(["kcat", "-b", broker.bootstrap, "-C", "-t", "durable", "-o", "beginning", "-e", "-J", "-q"],
                         capture_output=True, timeout=120, check=True).stdout
    records = [json.loads(line) for line in out.splitlines()]
    assert len(records) == COUNT
    by_key = {r["key"]: r for r in records}
    assert by_key["key-7"]["payload"] is None, "the tombstone is still null"
    assert by_key["key-4999"]["payload"] == "value-4999"
    assert by_key["key-4999"]["headers"] == ["n", "4999"]

    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False)
    partitions = [TopicPartition("durable", p) for p in (0, 1)]
    consumer.assign(partitions)
    assert consumer.end_offsets(partitions) == {partitions[0]: COUNT // 2, partitions[1]: COUNT // 2}
    consumer.close()

    resumed = Producer({"bootstrap.servers": broker.bootstrap})
    offsets = []
    resumed.produce("durable", key="after", value="restart", partition=0,
                    on_delivery=lambda err, msg: offsets.append(msg.offset()))
    resumed.flush(TIMEOUT_S)
    assert offsets == [COUNT // 2], "appends continue at the log end offset"
    described = admin.describe_configs([ConfigResource("topic", "durable")])
    configs = list(described.values())[0].result(TIMEOUT_S)
    assert configs["retention.ms"].value == "86400000", "topic configs survive"
