"""Crash safety with the real binary and a real client: an idempotent acks=all producer
(confluent-kafka) writes continuously while the broker is killed with SIGKILL and restarted 20
times. Afterwards every acknowledged record is read back exactly once, in order, and the
consumer (which checks every batch's CRC) never sees a torn batch."""

import threading

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

KILLS = 20
ACKS_PER_ROUND = 300
PARTITIONS = 3
TIMEOUT_S = 120


def test_acknowledged_records_survive_repeated_sigkill(broker):
    topic = "crash"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])[topic].result(TIMEOUT_S)

    acked = {}  # value -> (partition, offset)
    failed = []
    fatal = []
    progress = threading.Condition()

    def on_delivery(err, msg):
        with progress:
            if err is None:
                acked[int(msg.value())] = (msg.partition(), msg.offset())
            else:
                failed.append((int(msg.value()), str(err)))
            progress.notify_all()

    def on_error(err):
        if err.fatal():
            fatal.append(str(err))

    producer = Producer({
        "bootstrap.servers": broker.bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 2,
        "message.timeout.ms": 300_000,
        "reconnect.backoff.ms": 20,
        "reconnect.backoff.max.ms": 200,
        "error_cb": on_error,
    })
    stop = threading.Event()

    def produce_forever():
        i = 0
        while not stop.is_set():
            try:
                producer.produce(topic, key=str(i % 97), value=str(i), partition=i % PARTITIONS, on_delivery=on_delivery)
                i += 1
            except BufferError:
                pass
            producer.poll(0.001)

    writer = threading.Thread(target=produce_forever, daemon=True)
    writer.start()
    try:
        for kill in range(KILLS):
            with progress:
                target = len(acked) + ACKS_PER_ROUND
                assert progress.wait_for(lambda: len(acked) >= target or fatal, TIMEOUT_S), f"no progress before kill {kill}"
            assert not fatal, fatal
            broker.kill()
            broker.start()
        stop.set()
        writer.join(TIMEOUT_S)
        assert producer.flush(TIMEOUT_S) == 0, "every record was either acknowledged or failed"
    finally:
        stop.set()
    assert not fatal, fatal
    assert not failed, failed[:5]

    # Read everything back: each acknowledged record once, at its acknowledged offset, in order.
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "crash-reader", "check.crcs": True,
                         "enable.auto.commit": False, "enable.partition.eof": True})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    seen = {}
    at_end = set()
    while len(at_end) < PARTITIONS:
        message = consumer.poll(5.0)
        if message is None:
            continue
        if message.error():
            if message.error().code() == -191:  # _PARTITION_EOF
                at_end.add(message.partition())
                continue
            raise AssertionError(f"consumer error: {message.error()}")
        value = int(message.value())
        assert value not in seen, f"record {value} appears twice"
        seen[value] = (message.partition(), message.offset())
    consumer.close()

    missing = set(acked) - set(seen)
    assert not missing, f"{len(missing)} acknowledged records lost, e.g. {sorted(missing)[:5]}"
    for value, position in acked.items():
        assert seen[value] == position, f"record {value} moved from {position} to {seen[value]}"
    for p in range(PARTITIONS):
        values = [v for v, (part, _) in sorted(seen.items(), key=lambda kv: kv[1][1]) if part == p]
        assert values == sorted(values), f"partition {p} is out of order"
    assert len(acked) >= KILLS * ACKS_PER_ROUND
