"""/metrics and the admin API with a real client's workload: the counters match what
confluent-kafka produced, and a group's lag falls to zero once it has consumed and committed."""

import json
import urllib.request

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

TIMEOUT_S = 60


def scrape(broker):
    with urllib.request.urlopen(f"http://127.0.0.1:{broker.http_port}/metrics", timeout=TIMEOUT_S) as response:
        text = response.read().decode()
    metrics = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            metrics[key] = float(value)
    return metrics


def api(broker, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{broker.http_port}{path}", timeout=TIMEOUT_S) as response:
        return json.load(response)


def test_metrics_follow_a_real_workload_and_lag_falls_to_zero(make_broker):
    broker = make_broker("--http", "127.0.0.1:0")
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("watched", num_partitions=2, replication_factor=1)])["watched"].result(TIMEOUT_S)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all"})
    for i in range(1000):
        producer.produce("watched", key=f"k{i}", value=f"v{i}", partition=i % 2)
    assert producer.flush(TIMEOUT_S) == 0

    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "watchers",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe(["watched"])
    consumed = 0
    while consumed < 400:
        consumed += len([m for m in consumer.consume(400 - consumed, timeout=1.0) if m.error() is None])
    consumer.commit(asynchronous=False)
    committed = {tp.partition: tp.offset for tp in consumer.committed(consumer.assignment(), timeout=TIMEOUT_S)
                 if tp.offset >= 0}

    m = scrape(broker)
    assert m['strom_topic_records_in_total{topic="watched"}'] == 1000
    assert m['strom_log_end_offset{topic="watched",partition="0"}'] == 500
    # Lag is reported for partitions with a committed offset (Kafka's tools show "-" for others).
    lag_key = 'strom_consumer_group_lag{{group="watchers",topic="watched",partition="{}"}}'
    for p in (0, 1):
        if p in committed:
            assert m[lag_key.format(p)] == 500 - committed[p]
        else:
            assert lag_key.format(p) not in m
    assert sum(500 - o for o in committed.values()) + 500 * (2 - len(committed)) == 600
    assert m['strom_requests_total{api="Produce"}'] >= 1
    assert m['strom_topic_bytes_out_total{topic="watched"}'] > 0

    while consumed < 1000:
        consumed += len([m for m in consumer.consume(1000, timeout=1.0) if m.error() is None])
    consumer.commit(asynchronous=False)
    m = scrape(broker)
    assert [m[lag_key.format(p)] for p in (0, 1)] == [0, 0]
    group = api(broker, "/api/v1/groups/watchers")
    assert group["state"] == "Stable" and len(group["members"]) == 1
    assert sorted(p for parts in group["members"][0]["assignment"].values() for p in parts) == [0, 1]
    consumer.close()
