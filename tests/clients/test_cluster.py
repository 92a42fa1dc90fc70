"""A 3-process Strom cluster on loopback, driven by a real client (confluent-kafka).

Topics spread evenly (6 partitions on 3 brokers = 2 leaders each) and every partition takes
writes and reads. Then each node in turn is SIGKILLed, the active controller first: the others
fence it within broker.session.timeout.ms plus a margin, topics can still be created and used on
the live brokers, and the restarted node catches up and leads its partitions again. While the
last victim is down metadata is written until the survivors have deleted the log entries the
victim lacks, so it catches up from a snapshot. At the end every acknowledged record is read back
exactly once.

The order of the kills after the first is drawn from a seed, printed; STROM_TEST_SEED replays a
run. Every wait is bounded.
"""

import os
import random
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from cluster import (
    ELECTION_TIMEOUT_MS,
    HEARTBEAT_MS,
    SESSION_TIMEOUT_MS,
    WAIT_S,
    Cluster,
    brokers_in_metadata,
    create_topic,
    leaders,
    wait_until,
)

# Fencing waits for the session timeout after the last heartbeat; when the controller itself
# dies, a new one is elected first and gives every broker a full session from then on.
FENCE_MARGIN_S = 2 * ELECTION_TIMEOUT_MS / 1000 + 2 * HEARTBEAT_MS / 1000 + 3


class Ledger:
    """Every acknowledged record, to be found exactly once at the end."""

    def __init__(self):
        self.acked = {}  # (topic, partition) -> [value, ...]

    def produce(self, bootstrap, topic, partitions, tag):
        errors = []

        def on_delivery(err, msg):
            if err is None:
                self.acked.setdefault((msg.topic(), msg.partition()), []).append(msg.value().decode())
            else:
                errors.append(str(err))

        producer = Producer({
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "message.timeout.ms": WAIT_S * 1000,
        })
        for p in partitions:
            for n in range(5):
                producer.produce(topic, value=f"{tag}-{p}-{n}", partition=p, on_delivery=on_delivery)
        remaining = producer.flush(WAIT_S)
        assert remaining == 0 and not errors, f"produce to {topic} {partitions}: {errors}"

    def check(self, bootstrap):
        consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": "ledger",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        })
        try:
            for (topic, partition), values in sorted(self.acked.items()):
                consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
                seen = []
                deadline = time.monotonic() + WAIT_S
                while time.monotonic() < deadline:
                    msg = consumer.poll(1.0)
                    if msg is None:
                        continue
                    if msg.error():
                        if msg.error().code() == -191:  # _PARTITION_EOF
                            if len(seen) >= len(values):
                                break
                            continue
                        raise AssertionError(f"{topic}-{partition}: {msg.error()}")
                    seen.append(msg.value().decode())
                assert seen == values, f"{topic}-{partition}: acknowledged {values}, read {seen}"
        finally:
            consumer.close()


def test_a_three_node_cluster_survives_each_node_being_killed(tmp_path):
    seed = int(os.environ.get("STROM_TEST_SEED", random.randrange(1 << 32)))
    print(f"cluster fault schedule seed: {seed} (replay with STROM_TEST_SEED={seed})")
    rng = random.Random(seed)
    cluster = Cluster(tmp_path)
    cluster.start()
    try:
        run_schedule(cluster, rng)
    finally:
        cluster.stop()
    for i, node in cluster.nodes.items():
        # A killed node's survivors may log the lost connection as a warning, never an error.
        assert node.errors_logged() == [], f"node {i} logged errors: {node.errors_logged()[:3]}"


def run_schedule(cluster, rng):
    everyone = cluster.bootstrap
    wait_until("three brokers in Metadata", lambda: brokers_in_metadata(everyone) == {1, 2, 3})
    create_topic(everyone, "spread", 6)
    counts = {}
    for leader in wait_until("leaders for every partition", lambda: (l := leaders(everyone, "spread")) and all(v >= 0 for v in l.values()) and l).values():
        counts[leader] = counts.get(leader, 0) + 1
    assert counts == {1: 2, 2: 2, 3: 2}, f"6 partitions on 3 brokers = 2 leaders each: {counts}"
    ledger = Ledger()
    ledger.produce(everyone, "spread", range(6), "start")

    first = cluster.controller()
    rest = [i for i in cluster.nodes if i != first]
    rng.shuffle(rest)
    victims = [first, *rest]
    print(f"kill order: {victims} (node {first} was the active controller)")
    for round_, victim in enumerate(victims):
        survivors = [i for i in cluster.nodes if i != victim]
        live = ",".join(cluster.nodes[i].bootstrap for i in survivors)
        led_by_victim = [p for p, l in leaders(everyone, "spread").items() if l == victim]

        victim_last = cluster.api(victim, "cluster")["quorum"]["last_log_index"]
        cluster.nodes[victim].kill()
        killed_at = time.monotonic()
        wait_until(f"node {victim} to be fenced", lambda: victim not in brokers_in_metadata(live),
                   timeout=SESSION_TIMEOUT_MS / 1000 + FENCE_MARGIN_S, interval=0.05)
        print(f"round {round_}: node {victim} fenced {time.monotonic() - killed_at:.2f}s after SIGKILL")

        # Topic creation goes on, on the live brokers, and they take writes and reads.
        topic = f"during-{round_}"
        create_topic(live, topic, 4)
        placed = wait_until(f"leaders for {topic}", lambda: (l := leaders(live, topic)) and all(v >= 0 for v in l.values()) and l)
        assert victim not in placed.values(), f"{topic} was placed on the dead node {victim}: {placed}"
        ledger.produce(live, topic, range(4), f"round{round_}")
        alive = [p for p, l in leaders(live, "spread").items() if l in survivors]
        assert sorted(alive + led_by_victim) == list(range(6)), "only the victim's partitions are offline"
        ledger.produce(live, "spread", alive, f"round{round_}")

        if round_ == len(victims) - 1:
            # The victim's log ends at or before the last entry any survivor has once it is
            # fenced (a dead leader's unacknowledged tail ends at most where it was read above).
            bound = max([victim_last, *(cluster.api(i, "cluster")["quorum"]["last_log_index"] for i in survivors)])

            # Metadata changes until a snapshot covers entries the victim lacks and the survivors
            # have deleted them: the victim can then only catch up from the snapshot. The purged
            # index, not a log line: a leader postpones the deletion while a replication stream
            # still uses the entries. Every survivor, since either may lead when the victim is back.
            fillers = iter(range(1 << 16))

            def purged_past_victim():
                if all((cluster.api(i, "cluster")["quorum"]["purged_index"] or 0) > bound for i in survivors):
                    return True
                create_topic(live, f"filler-{next(fillers)}", 1)
                return False
            wait_until("the survivors to delete metadata log entries the victim lacks", purged_past_victim)

        cluster.nodes[victim].start()
        wait_until(f"node {victim} back in Metadata", lambda: brokers_in_metadata(everyone) == {1, 2, 3})
        wait_until(f"node {victim} to lead its partitions again",
                   lambda: all(leaders(everyone, "spread")[p] == victim for p in led_by_victim))
        topics = {t["name"] for t in cluster.api(victim, "topics")}
        assert topic in topics, f"node {victim} did not catch up: {sorted(topics)}"
        ledger.produce(everyone, "spread", led_by_victim, f"back{round_}")
        if round_ == len(victims) - 1:
            snapshots = [l for l in cluster.nodes[victim].log_lines if "installed a metadata snapshot" in l]
            assert snapshots, f"node {victim} caught up without a snapshot"

    ledger.check(everyone)
