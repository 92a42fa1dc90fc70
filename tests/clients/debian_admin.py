"""Admin calls through Debian's python3-confluent-kafka, which uses Debian's librdkafka 2.0.2:
the same client library kcat links. Run with /usr/bin/python3 by test_kcat.py.

Usage: debian_admin.py BOOTSTRAP create TOPIC PARTITIONS
       debian_admin.py BOOTSTRAP alter TOPIC KEY VALUE
       debian_admin.py BOOTSTRAP describe TOPIC          (prints KEY=VALUE lines)
       debian_admin.py BOOTSTRAP offsets TOPIC PARTITIONS TIMESTAMP   (prints PARTITION OFFSET lines)
       debian_admin.py BOOTSTRAP delete TOPIC
       debian_admin.py BOOTSTRAP topics                   (prints topic names)
Exits non-zero, with the error on stderr, if the call fails or any client error is reported.
"""

import sys

import confluent_kafka
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

TIMEOUT_S = 60
errors = []


def main():
    bootstrap, command, *args = sys.argv[1:]
    conf = {"bootstrap.servers": bootstrap, "error_cb": lambda e: errors.append(str(e))}
    assert confluent_kafka.libversion()[0] == "2.0.2", confluent_kafka.libversion()
    admin = AdminClient(conf)
    if command == "create":
        topic, partitions = args
        admin.create_topics([NewTopic(topic, num_partitions=int(partitions), replication_factor=1)])[topic].result(TIMEOUT_S)
    elif command == "alter":
        topic, key, value = args
        resource = ConfigResource("topic", topic, set_config={key: value})
        list(admin.alter_configs([resource]).values())[0].result(TIMEOUT_S)
    elif command == "describe":
        (topic,) = args
        configs = list(admin.describe_configs([ConfigResource("topic", topic)]).values())[0].result(TIMEOUT_S)
        for name, entry in sorted(configs.items()):
            print(f"{name}={entry.value}")
    elif command == "offsets":
        topic, partitions, timestamp = args
        consumer = Consumer({**conf, "group.id": "debian-admin"})
        wanted = [TopicPartition(topic, p, int(timestamp)) for p in range(int(partitions))]
        for tp in consumer.offsets_for_times(wanted, timeout=TIMEOUT_S):
            print(tp.partition, tp.offset)
        consumer.close()
    elif command == "delete":
        (topic,) = args
        admin.delete_topics([topic])[topic].result(TIMEOUT_S)
    elif command == "topics":
        for name in admin.list_topics(timeout=TIMEOUT_S).topics:
            print(name)
    else:
        raise SystemExit(f"unknown command {command}")
    if errors:
        raise SystemExit(f"client errors: {errors}")


if __name__ == "__main__":
    main()
