"""Crash safety with the real binary and a real client: an idempotent acks=all producer
(confluent-kafka) writes continuously while the broker is killed with SIGKILL and restarted 20
times. Afterwards every acknowledged record is read back exactly once, in order, and the
consumer (which checks every batch's CRC) never sees a torn batch. A transactional producer's
transactions stay all-or-nothing across the same kind of crash."""

import os
import random
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


TXN_KILLS = 5


def test_transactions_stay_atomic_across_repeated_sigkill(broker):
    """The broker is killed in the middle of transactions: with one open (records written, no
    commit yet) or with a commit in flight. After each restart a new producer instance takes
    over the transactional id, which aborts what the old one left open. read_committed must then
    show every committed transaction whole, no record of an open one, and each transaction
    whose commit was in flight either whole or not at all."""
    seed = int(os.environ.get("STROM_TEST_SEED", random.randrange(1 << 32)))
    print(f"transaction crash seed: {seed} (replay with STROM_TEST_SEED={seed})")
    rng = random.Random(seed)
    topic = "txn-crash"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])[topic].result(TIMEOUT_S)

    def new_instance():
        producer = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": "crash-writer",
                             "linger.ms": 2, "reconnect.backoff.ms": 20, "reconnect.backoff.max.ms": 200})
        producer.init_transactions(TIMEOUT_S)
        return producer

    def write(producer, n):
        values = [f"t{n}-{i}".encode() for i in range(3 * PARTITIONS)]
        producer.begin_transaction()
        for i, value in enumerate(values):
            producer.produce(topic, value=value, partition=i % PARTITIONS)
        return values

    outcomes = []  # (outcome, values)
    producer = new_instance()
    n = 0
    for _ in range(TXN_KILLS):
        for _ in range(rng.randrange(1, 4)):
            values = write(producer, n)
            producer.commit_transaction(TIMEOUT_S)
            outcomes.append(("committed", values))
            n += 1
        values = write(producer, n)
        producer.flush(TIMEOUT_S)
        committing = None
        if rng.random() < 0.5:
            committing = threading.Thread(target=commit_quietly, args=(producer,), daemon=True)
            committing.start()
            outcomes.append(("in flight", values))
        else:
            outcomes.append(("open", values))
        n += 1
        broker.kill()
        broker.start()
        # The new instance fences the old one: an in-flight commit ends one way or the other.
        producer = new_instance()
        if committing is not None:
            committing.join(TIMEOUT_S)

    seen = read_committed(broker, topic)
    assert len(seen) == len(set(seen)), "a record was read twice"
    seen = set(seen)
    for number, (outcome, values) in enumerate(outcomes):
        shown = [v in seen for v in values]
        if outcome == "committed":
            assert all(shown), f"transaction {number} was committed but {shown.count(False)} records are missing"
        elif outcome == "open":
            assert not any(shown), f"transaction {number} was open at the crash but is visible"
        else:
            assert all(shown) or not any(shown), f"transaction {number} is partly visible: {shown}"


def commit_quietly(producer):
    try:
        producer.commit_transaction(30)
    except Exception as e:  # the broker died under it, or a new instance fenced it
        print(f"in-flight commit: {e}")


def read_committed(broker, topic):
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "txn-crash-reader",
                         "isolation.level": "read_committed", "enable.auto.commit": False,
                         "enable.partition.eof": True})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    values, at_end = [], set()
    try:
        while len(at_end) < PARTITIONS:
            message = consumer.poll(5.0)
            if message is None:
                continue
            if message.error():
                if message.error().code() == -191:  # _PARTITION_EOF
                    at_end.add(message.partition())
                    continue
                raise AssertionError(f"consumer error: {message.error()}")
            at_end.discard(message.partition())
            values.append(message.value())
    finally:
        consumer.close()
    return values
