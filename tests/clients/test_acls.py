"""ACL enforcement with a real client: confluent-kafka over SASL_PLAINTEXT with PLAIN users and
the StandardAuthorizer. `admin` is a super user and grants the others rights with
AdminClient.create_acls; alice may produce to `orders` but not read it, bob may consume it
with group `g1` but not produce; listing topics shows each principal only what it may
describe, and the anonymous PLAINTEXT listener sees nothing."""

import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from conftest import Broker

USERS = {"admin": "admin-secret", "alice": "alice-secret", "bob": "bob-secret"}
TIMEOUT_S = 20


def jaas():
    users = " ".join(f'user_{u}="{p}"' for u, p in USERS.items())
    return f'org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" {users};'


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    data = tmp_path_factory.mktemp("acls") / "data"
    b = Broker(data, [
        "--set", "listeners=PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
        "--set", "sasl.enabled.mechanisms=PLAIN",
        "--set", f"listener.name.sasl_plaintext.plain.sasl.jaas.config={jaas()}",
        "--set", "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "--set", "super.users=User:admin",
    ])
    b.start()
    admin = AdminClient(conf(b, "admin"))
    for topic, future in admin.create_topics([NewTopic("orders", 1, 1), NewTopic("secret", 1, 1)]).items():
        future.result(TIMEOUT_S)

    def allow(restype, name, principal, operation):
        return AclBinding(restype, name, ResourcePatternType.LITERAL, principal, "*", operation, AclPermissionType.ALLOW)

    created = admin.create_acls([
        allow(ResourceType.TOPIC, "orders", "User:alice", AclOperation.WRITE),
        allow(ResourceType.TOPIC, "orders", "User:bob", AclOperation.READ),
        allow(ResourceType.GROUP, "g1", "User:bob", AclOperation.READ),
    ])
    for future in created.values():
        future.result(TIMEOUT_S)
    yield b
    b.stop()


def conf(broker, user):
    return {
        "bootstrap.servers": f"127.0.0.1:{broker.listeners['SASL_PLAINTEXT']}",
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanisms": "PLAIN",
        "sasl.username": user,
        "sasl.password": USERS[user],
    }


def produce(config, value):
    """Produces one record; returns the delivery error (None when delivered)."""
    outcome = []
    p = Producer({**config, "message.timeout.ms": 5000})
    p.produce("orders", value, on_delivery=lambda err, msg: outcome.append(err))
    p.flush(TIMEOUT_S)
    assert outcome, "no delivery report"
    return outcome[0]


def test_alice_produces_and_bob_consumes(broker):
    value = uuid.uuid4().hex.encode()
    assert produce(conf(broker, "alice"), value) is None
    c = Consumer({**conf(broker, "bob"), "group.id": "g1", "auto.offset.reset": "earliest"})
    c.subscribe(["orders"])
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            assert m.error() is None, m.error()
            if m.value() == value:
                return
    finally:
        c.close()
    raise AssertionError("bob never read alice's record")


def test_bob_may_not_produce(broker):
    err = produce(conf(broker, "bob"), b"nope")
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err


def test_alice_may_not_read(broker):
    c = Consumer({**conf(broker, "alice"), "group.id": "alice-" + uuid.uuid4().hex, "enable.auto.commit": False})
    c.assign([TopicPartition("orders", 0, 0)])
    seen = []
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            assert m.error() is not None, "alice read a record"
            seen.append(m.error().code())
            if KafkaError.TOPIC_AUTHORIZATION_FAILED in seen:
                return
    finally:
        c.close()
    raise AssertionError(f"no TOPIC_AUTHORIZATION_FAILED; errors seen: {seen}")


def visible_topics(config):
    return sorted(t for t in AdminClient(config).list_topics(timeout=TIMEOUT_S).topics)


def test_listing_shows_only_describable_topics(broker):
    assert visible_topics(conf(broker, "bob")) == ["orders"]
    assert visible_topics(conf(broker, "alice")) == ["orders"]
    assert "secret" in visible_topics(conf(broker, "admin"))
    assert visible_topics({"bootstrap.servers": broker.bootstrap}) == []
