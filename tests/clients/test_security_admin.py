"""Security metadata through confluent-kafka's AdminClient: SCRAM users (KIP-554) and ACLs,
stored and administered by a plaintext broker (enforcement is test_acls.py's concern; the ACL
APIs need an authorizer, so those tests run one with the anonymous client as a super user)."""

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

TIMEOUT_S = 30
AUTHORIZER = (
    "--set", "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "--set", "super.users=User:ANONYMOUS",
)


def admin(broker):
    return AdminClient({"bootstrap.servers": broker.bootstrap})


def wait_all(futures):
    """Each future's result, or the exception it raised, by key."""
    out = {}
    for key, future in futures.items():
        try:
            out[key] = future.result(timeout=TIMEOUT_S)
        except KafkaException as e:
            out[key] = e.args[0]
    return out


def described(client, users=None):
    """user -> sorted [(mechanism, iterations)] for every described user."""
    futures = client.describe_user_scram_credentials(users)
    if users is None:
        result = futures.result(timeout=TIMEOUT_S)
    else:
        result = wait_all(futures)
    return {
        user: sorted((i.mechanism, i.iterations) for i in d.scram_credential_infos)
        if hasattr(d, "scram_credential_infos")
        else d
        for user, d in result.items()
    }


def test_scram_users_are_created_described_and_deleted(broker):
    client = admin(broker)
    sha256 = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096)
    sha512 = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192)
    results = wait_all(
        client.alter_user_scram_credentials(
            [
                UserScramCredentialUpsertion("alice", sha256, b"alice-secret", b"salt-of-alice"),
                UserScramCredentialUpsertion("bob", sha512, b"bob-secret"),
            ]
        )
    )
    assert results == {"alice": None, "bob": None}

    assert described(client) == {
        "alice": [(ScramMechanism.SCRAM_SHA_256, 4096)],
        "bob": [(ScramMechanism.SCRAM_SHA_512, 8192)],
    }
    assert described(client, ["bob"]) == {"bob": [(ScramMechanism.SCRAM_SHA_512, 8192)]}

    results = wait_all(
        client.alter_user_scram_credentials([UserScramCredentialDeletion("alice", ScramMechanism.SCRAM_SHA_256)])
    )
    assert results == {"alice": None}
    missing = described(client, ["alice"])["alice"]
    assert missing.name() == "RESOURCE_NOT_FOUND", missing


def test_scram_errors_carry_kafkas_codes(broker):
    client = admin(broker)
    too_few = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 1024)
    results = wait_all(
        client.alter_user_scram_credentials(
            [
                UserScramCredentialUpsertion("few", too_few, b"pw"),
                UserScramCredentialDeletion("ghost", ScramMechanism.SCRAM_SHA_512),
            ]
        )
    )
    assert results["few"].name() == "UNACCEPTABLE_CREDENTIAL", results
    assert results["ghost"].name() == "RESOURCE_NOT_FOUND", results


def binding(name, pattern, principal, operation, permission, restype=ResourceType.TOPIC):
    return AclBinding(restype, name, pattern, principal, "*", operation, permission)


def all_acls(client, filter=None):
    filter = filter or AclBindingFilter(
        ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY, AclPermissionType.ANY
    )
    acls = client.describe_acls(filter).result(timeout=TIMEOUT_S)
    return sorted((a.restype, a.name, a.resource_pattern_type, a.principal, a.operation, a.permission_type) for a in acls)


def test_acls_are_created_described_and_deleted(make_broker):
    client = admin(make_broker(*AUTHORIZER))
    alice_reads = binding("orders", ResourcePatternType.LITERAL, "User:alice", AclOperation.READ, AclPermissionType.ALLOW)
    bob_writes = binding("ord", ResourcePatternType.PREFIXED, "User:bob", AclOperation.WRITE, AclPermissionType.ALLOW)
    nobody = binding("*", ResourcePatternType.LITERAL, "User:*", AclOperation.DELETE, AclPermissionType.DENY)
    group = binding("g", ResourcePatternType.LITERAL, "User:alice", AclOperation.READ, AclPermissionType.ALLOW, ResourceType.GROUP)
    results = wait_all(client.create_acls([alice_reads, bob_writes, nobody, group]))
    assert list(results.values()) == [None] * 4, results

    assert len(all_acls(client)) == 4
    applying = all_acls(
        client,
        AclBindingFilter(
            ResourceType.TOPIC, "orders", ResourcePatternType.MATCH, None, None, AclOperation.ANY, AclPermissionType.ANY
        ),
    )
    assert [a[1] for a in applying] == ["*", "ord", "orders"], applying

    alices = AclBindingFilter(
        ResourceType.ANY, None, ResourcePatternType.ANY, "User:alice", None, AclOperation.ANY, AclPermissionType.ANY
    )
    deleted = wait_all(client.delete_acls([alices]))
    assert sorted(a.name for a in deleted[alices]) == ["g", "orders"], deleted
    assert [a[3] for a in all_acls(client)] == ["User:*", "User:bob"]


def test_invalid_acls_are_refused(make_broker):
    client = admin(make_broker(*AUTHORIZER))
    bad_principal = binding("t", ResourcePatternType.LITERAL, "alice", AclOperation.READ, AclPermissionType.ALLOW)
    bad_cluster = binding("c", ResourcePatternType.LITERAL, "User:a", AclOperation.ALTER, AclPermissionType.ALLOW, ResourceType.BROKER)
    results = wait_all(client.create_acls([bad_principal, bad_cluster]))
    assert results[bad_principal].name() == "INVALID_REQUEST", results
    assert results[bad_cluster].name() == "INVALID_REQUEST", results
    assert all_acls(client) == []
