"""SCRAM users and ACLs in a 3-node cluster: created through one broker, they reach every
broker (a client logs in and is authorized on each node by itself) and survive a node's
restart. The brokers talk to each other over PLAINTEXT as User:ANONYMOUS, a super user here;
clients use SASL_PLAINTEXT with SCRAM-SHA-256 (confluent-kafka)."""

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from cluster import WAIT_S, Cluster, create_topic, wait_until

SETTINGS = {
    "listeners": "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
    "sasl.enabled.mechanisms": "SCRAM-SHA-256",
    "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "super.users": "User:ANONYMOUS",
}


def sasl_client(node, password):
    return AdminClient({
        "bootstrap.servers": f"127.0.0.1:{node.listeners['SASL_PLAINTEXT']}",
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanisms": "SCRAM-SHA-256",
        "sasl.username": "carol",
        "sasl.password": password,
    })


def carol_sees(node, password="carol-pw"):
    """The topics carol may describe, asking this node alone; None if she cannot log in."""
    try:
        return set(sasl_client(node, password).list_topics(timeout=5).topics)
    except KafkaException:
        return None


def test_users_and_acls_reach_every_broker_and_survive_a_restart(tmp_path):
    cluster = Cluster(tmp_path, settings=SETTINGS)
    cluster.start()
    try:
        create_topic(cluster.bootstrap, "visible", 1, replication_factor=3)
        create_topic(cluster.bootstrap, "hidden", 1, replication_factor=3)
        admin = AdminClient({"bootstrap.servers": cluster.nodes[1].bootstrap})
        upsert = UserScramCredentialUpsertion(
            "carol", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), b"carol-pw")
        for future in admin.alter_user_scram_credentials([upsert]).values():
            future.result(WAIT_S)
        acl = AclBinding(ResourceType.TOPIC, "visible", ResourcePatternType.LITERAL, "User:carol", "*",
                         AclOperation.DESCRIBE, AclPermissionType.ALLOW)
        for future in admin.create_acls([acl]).values():
            future.result(WAIT_S)

        for node_id, node in cluster.nodes.items():
            seen = wait_until(f"carol to log in on node {node_id} and see only 'visible'",
                              lambda: carol_sees(node) == {"visible"})
            assert seen
            assert carol_sees(node, password="wrong") is None

        cluster.nodes[3].restart()
        wait_until("carol to log in on the restarted node 3",
                   lambda: carol_sees(cluster.nodes[3]) == {"visible"})
    finally:
        cluster.stop()
    assert cluster.errors_logged() == {}
