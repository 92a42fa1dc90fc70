"""Security metadata through confluent-kafka's AdminClient: SCRAM users (KIP-554) and ACLs,
stored and administered by a plaintext broker (enforcement is not this test's concern)."""

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

TIMEOUT_S = 30


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
