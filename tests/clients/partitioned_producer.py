"""Produces records with acks=all and reports every delivery as a JSON line on stdout.

Run inside a network namespace by test_partition.py, to write to a leader that has been cut
off from the rest of the cluster: `partitioned_producer.py BOOTSTRAP TOPIC PREFIX COUNT TIMEOUT_MS`.
Each line is {"value": ..., "ok": bool, "offset": int, "error": str}.
"""

import json
import sys

from confluent_kafka import Producer


def main():
    bootstrap, topic, prefix, count, timeout_ms = sys.argv[1:6]
    results = []

    def on_delivery(err, msg):
        results.append({
            "value": msg.value().decode(),
            "ok": err is None,
            "offset": msg.offset() if err is None else -1,
            "error": str(err) if err else "",
        })

    producer = Producer({
        "bootstrap.servers": bootstrap,
        "acks": "all",
        # Not idempotent: an idempotent producer first needs a producer id, which the cut-off
        # broker cannot get from the quorum, so it would send nothing at all. This one gets its
        # records appended to the cut-off leader's log, which then has a tail to truncate.
        "enable.idempotence": False,
        "message.timeout.ms": int(timeout_ms),
    })
    for i in range(int(count)):
        producer.produce(topic, value=f"{prefix}-{i}", partition=0, on_delivery=on_delivery)
        producer.poll(0)
    producer.flush(int(timeout_ms) / 1000 + 30)
    for r in results:
        print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
