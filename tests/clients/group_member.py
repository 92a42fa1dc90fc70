"""One confluent-kafka group consumer as a separate process, so a test can kill it.

Usage: group_member.py CONFIG_JSON TOPIC
Prints one JSON object per line: {"event": "assigned"|"revoked"|"lost", "partitions": [...]},
{"event": "record", "p": partition, "o": offset, "k": key}, {"event": "error", "error": "..."},
{"event": "closed"}. Records are printed before their offsets are committed (at least once).
SIGTERM closes the consumer cleanly (a dynamic member leaves the group).
"""

import json
import signal
import sys

from confluent_kafka import Consumer


def emit(obj):
    print(json.dumps(obj), flush=True)


def main():
    conf = json.loads(sys.argv[1])
    topic = sys.argv[2]
    conf["error_cb"] = lambda err: emit({"event": "error", "error": str(err), "fatal": err.fatal()})
    consumer = Consumer(conf)
    owned = set()
    # The Python binding does not expose the negotiated protocol; the strategy decides it.
    protocol = "COOPERATIVE" if "cooperative" in conf.get("partition.assignment.strategy", "") else "EAGER"

    def cooperative(_c):
        return protocol == "COOPERATIVE"

    def on_assign(c, partitions):
        if not cooperative(c):
            owned.clear()
        owned.update(p.partition for p in partitions)
        emit({"event": "assigned", "partitions": sorted(owned), "added": sorted(p.partition for p in partitions), "protocol": protocol})

    def on_revoke(c, partitions):
        if cooperative(c):
            owned.difference_update(p.partition for p in partitions)
        else:
            owned.clear()
        emit({"event": "revoked", "partitions": sorted(owned), "revoked": sorted(p.partition for p in partitions)})

    def on_lost(c, partitions):
        owned.difference_update(p.partition for p in partitions)
        emit({"event": "lost", "partitions": sorted(owned)})

    consumer.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
    running = [True]
    signal.signal(signal.SIGTERM, lambda *_: running.__setitem__(0, False))
    while running[0]:
        messages = consumer.consume(500, timeout=0.2)
        processed = False
        for m in messages:
            if m.error():
                emit({"event": "error", "error": str(m.error()), "fatal": m.error().fatal()})
                continue
            emit({"event": "record", "p": m.partition(), "o": m.offset(), "k": m.key().decode()})
            processed = True
        if processed:
            try:
                consumer.commit(asynchronous=False)
            except Exception as exc:  # a commit racing a rebalance is retried by the next one
                emit({"event": "commit_failed", "error": str(exc)})
    consumer.close()
    emit({"event": "closed"})


if __name__ == "__main__":
    main()
