"""The operator CLI (`strom produce|consume|group|transaction`) interoperating with
confluent-kafka.

- `strom group describe` reports the lag of a group whose member is a confluent-kafka consumer
  that consumed and committed a known number of records.
- Records written by `strom produce` are read by confluent-kafka, and records written by
  confluent-kafka (every codec) are read by `strom consume`, keys and headers included.
- `strom transaction` sees a confluent-kafka producer's open transaction at its coordinator
  and at its partition, does not call it hanging, and aborts it by its start offset.

The CLI is the binary under test (STROM_BIN, default target/release/strom), run as a process
with a timeout on every call.
"""

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from data import CODECS

ROOT = Path(__file__).resolve().parents[2]
STROM = os.environ.get("STROM_BIN", str(ROOT / "target" / "release" / "strom"))
TIMEOUT_S = 60


def strom(broker, *args, input=None):
    """Runs `strom ARGS -b BROKER`; fails the test on a non-zero exit."""
    proc = subprocess.run(
        [STROM, *args, "-b", broker.bootstrap],
        input=input,
        capture_output=True,
        timeout=TIMEOUT_S,
    )
    assert proc.returncode == 0, f"strom {args} exited {proc.returncode}: {proc.stderr.decode(errors='replace')}"
    return proc.stdout.decode()


def consume_exactly(consumer, count):
    """Polls until `count` records were returned (never more), or fails after idle polls."""
    records = []
    idle_polls = 0
    while len(records) < count:
        assert idle_polls < 30, f"only {len(records)} of {count} records arrived"
        batch = consumer.consume(num_messages=count - len(records), timeout=1.0)
        idle_polls = 0 if batch else idle_polls + 1
        for m in batch:
            assert m.error() is None, m.error()
            records.append(m)
    return records


def test_group_describe_reports_the_lag_of_a_confluent_consumer(broker):
    topic, group = "lagged", "lag-group"
    strom(broker, "topic", "create", topic, "--partitions", "3")
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5})
    for i in range(1000):
        producer.produce(topic, key=f"key-{i}".encode(), value=f"value-{i}".encode())
    assert producer.flush(TIMEOUT_S) == 0

    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": group,
            "client.id": "lag-checker",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    consumed = consume_exactly(consumer, 400)
    # Commit every assigned partition, 0 where nothing was read yet (it starts at the
    # beginning), so the lag of every partition is known and adds up to 1000 - 400.
    next_offsets = {tp.partition: 0 for tp in consumer.assignment()}
    assert sorted(next_offsets) == [0, 1, 2]
    for m in consumed:
        next_offsets[m.partition()] = max(next_offsets.get(m.partition(), 0), m.offset() + 1)
    consumer.commit(
        offsets=[TopicPartition(topic, p, o) for p, o in sorted(next_offsets.items())],
        asynchronous=False,
    )

    # While the consumer is a member, describe shows it with its client id and assignment.
    live = json.loads(strom(broker, "group", "describe", group, "--json"))
    assert live["state"] == "Stable", live
    assert [m["client_id"] for m in live["members"]] == ["lag-checker"], live
    assigned = sorted(a["partition"] for a in live["members"][0]["assignment"])
    assert assigned == [0, 1, 2], live
    assert live["total_lag"] == 600, live
    consumer.close()

    described = json.loads(strom(broker, "group", "describe", group, "--json"))
    assert described["state"] == "Empty", described
    assert described["total_lag"] == 600, described
    ends = {}
    for p in range(3):
        low, high = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "watermarks"}).get_watermark_offsets(
            TopicPartition(topic, p), timeout=TIMEOUT_S
        )
        ends[p] = high
    assert sum(ends.values()) == 1000
    for row in described["offsets"]:
        p = row["partition"]
        assert row["topic"] == topic
        assert row["end"] == ends[p], row
        assert row["committed"] == next_offsets[p], row
        assert row["lag"] == ends[p] - next_offsets[p], row
    assert sorted(row["partition"] for row in described["offsets"]) == [0, 1, 2]
    text = strom(broker, "group", "describe", group)
    assert "Total lag: 600" in text, text


def test_strom_produce_is_read_by_confluent_kafka(broker):
    topic = "from-strom"
    strom(broker, "topic", "create", topic, "--partitions", "3")
    lines = "".join(f"key-{i}:value {i} with: colon\n" for i in range(500))
    summary = strom(
        broker,
        "produce",
        topic,
        "--key-separator",
        ":",
        "--header",
        "origin=strom",
        "--header",
        "origin=cli",
        "--compression",
        "lz4",
        input=lines.encode(),
    )
    assert "Produced 500 records" in summary, summary

    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "reader", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(3)])
    records = consume_exactly(consumer, 500)
    consumer.close()
    got = sorted((m.key(), m.value(), m.headers()) for m in records)
    want = sorted(
        (f"key-{i}".encode(), f"value {i} with: colon".encode(), [("origin", b"strom"), ("origin", b"cli")])
        for i in range(500)
    )
    assert got == want
    # Keys are partitioned like the Java client (murmur2), so every partition got some.
    assert len({m.partition() for m in records}) == 3


@pytest.mark.parametrize("codec", CODECS)
def test_confluent_kafka_records_are_read_by_strom_consume(broker, codec):
    topic = f"to-strom-{codec}"
    strom(broker, "topic", "create", topic, "--partitions", "2")
    producer = Producer({"bootstrap.servers": broker.bootstrap, "compression.type": codec, "linger.ms": 5})
    want = []
    for i in range(300):
        key = None if i % 10 == 0 else f"k{i}".encode()
        headers = [("trace", f"t{i}".encode()), ("trace", b"again"), ("empty", b"")]
        producer.produce(topic, key=key, value=f"v{i}".encode(), headers=headers)
        want.append((key.decode() if key else None, f"v{i}", [["trace", f"t{i}"], ["trace", "again"], ["empty", ""]]))
    assert producer.flush(TIMEOUT_S) == 0

    out = strom(broker, "consume", topic, "--from-beginning", "--exit-at-end", "--json")
    records = [json.loads(line) for line in out.splitlines()]
    got = [(r["key"], r["value"], [[h["key"], h["value"]] for h in r["headers"]]) for r in records]
    assert sorted(got, key=repr) == sorted(want, key=repr)
    assert all(r["topic"] == topic for r in records)

    formatted = strom(broker, "consume", topic, "--from-beginning", "--exit-at-end", "--format", "%k|%s|%h\\n")
    assert sorted(formatted.splitlines()) == sorted(
        f"{k or ''}|{v}|trace={h[0][1]},trace=again,empty=" for k, v, h in want
    )


def producers_of(broker, topic, partition):
    """`strom transaction describe-producers` for one partition, parsed."""
    return json.loads(
        strom(
            broker, "transaction", "describe-producers",
            "--topic", topic, "--partition", str(partition), "--json",
        )
    )


def test_strom_transaction_sees_and_aborts_a_confluent_open_transaction(broker):
    topic = f"txn-cli-{uuid.uuid4().hex[:8]}"
    transactional_id = f"app-{uuid.uuid4().hex[:8]}"
    strom(broker, "topic", "create", topic, "--partitions", "1")
    producer = Producer(
        {
            "bootstrap.servers": broker.bootstrap,
            "transactional.id": transactional_id,
            "linger.ms": 0,
        }
    )
    producer.init_transactions(TIMEOUT_S)
    producer.begin_transaction()
    for i in range(3):
        producer.produce(topic, value=f"open-{i}".encode(), partition=0)
    assert producer.flush(TIMEOUT_S) == 0

    listed = json.loads(strom(broker, "transaction", "list", "--state", "Ongoing", "--json"))
    assert [t["transactional_id"] for t in listed] == [transactional_id]
    [described] = json.loads(strom(broker, "transaction", "describe", transactional_id, "--json"))
    assert described["state"] == "Ongoing"
    assert described["partitions"] == [{"topic": topic, "partition": 0}]
    assert described["producer_id"] == listed[0]["producer_id"]

    producers = producers_of(broker, topic, 0)
    [open_transaction] = [p for p in producers if p["current_transaction_start_offset"] is not None]
    assert open_transaction["producer_id"] == described["producer_id"]
    assert open_transaction["current_transaction_start_offset"] == 0

    # Its coordinator still lists the partition, so it is not hanging whatever the timeout.
    hanging = strom(
        broker, "transaction", "find-hanging", "--max-transaction-timeout-ms", "0", "--json"
    )
    assert json.loads(hanging) == []

    out = strom(
        broker, "transaction", "abort", "--topic", topic, "--partition", "0", "--start-offset", "0"
    )
    assert f"producer {described['producer_id']}" in out
    producers = producers_of(broker, topic, 0)
    assert [p["current_transaction_start_offset"] for p in producers] == [None]
