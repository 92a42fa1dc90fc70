"""kcat and Debian's librdkafka 2.0.2 (an older client we must serve): produce with keys, headers
and each codec, consume back, offsets by timestamp, metadata. kcat has no admin API, so topic
creation, configs and deletion go through Debian's python3-confluent-kafka, which runs on the
same librdkafka 2.0.2 (debian_admin.py)."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from data import CODECS, RECORDS, first_offset_at_or_after, make_records

KCAT = shutil.which("kcat") or "kcat"
DEBIAN_PYTHON = "/usr/bin/python3"
ADMIN = str(Path(__file__).with_name("debian_admin.py"))
PARTITIONS = 3
# librdkafka log lines at emergency..warning level look like "%3|..." ; a clean run has none.
CLIENT_PROBLEM = re.compile(rb"^%[0-4]\|", re.MULTILINE)


def run(cmd, stdin=None, timeout=180):
    proc = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd[:4]} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[-2000:]}"
    problems = CLIENT_PROBLEM.findall(proc.stderr)
    assert not problems, f"client logged problems: {proc.stderr.decode(errors='replace')[-2000:]}"
    return proc.stdout


def admin(broker, *args):
    return run([DEBIAN_PYTHON, ADMIN, broker.bootstrap, *args]).decode()


def kcat(broker, *args, stdin=None):
    return run([KCAT, "-b", broker.bootstrap, "-X", "api.version.request=true", *args], stdin=stdin)


def test_kcat_links_debian_librdkafka_2_0_2():
    version = subprocess.run([KCAT, "-V"], capture_output=True).stdout.decode()
    assert "librdkafka 2.0.2" in version, version


@pytest.mark.parametrize("codec", CODECS)
def test_kcat_round_trip(broker, codec):
    topic = f"kcat-{codec}"
    admin(broker, "create", topic, str(PARTITIONS))
    records = make_records(RECORDS, seed=200 + CODECS.index(codec), printable=True)
    lines = b"".join(key + b"\t" + value + b"\n" for key, value, _, _ in records)
    kcat(
        broker, "-P", "-t", topic, "-K", "\t", "-H", "kind=test", "-H", "origin=kcat",
        "-X", f"compression.codec={codec}", "-X", "acks=all", "-X", "enable.idempotence=true", "-X", "linger.ms=5",
        stdin=lines,
    )

    out = kcat(broker, "-C", "-t", topic, "-o", "beginning", "-e", "-J", "-q")
    consumed = []
    for line in out.splitlines():
        m = json.loads(line)
        consumed.append(
            {
                "partition": m["partition"],
                "offset": m["offset"],
                "timestamp": m["ts"],
                "key": m["key"].encode(),
                "value": m["payload"].encode(),
                "headers": m.get("headers"),
            }
        )
    assert len(consumed) == RECORDS, f"consumed {len(consumed)} of {RECORDS}"
    by_key = {r["key"]: r for r in consumed}
    for key, value, _, _ in records:
        got = by_key[key]
        assert got["value"] == value, key
        assert got["headers"] == ["kind", "test", "origin", "kcat"], got["headers"]
    for p in range(PARTITIONS):
        offsets = [r["offset"] for r in consumed if r["partition"] == p]
        assert offsets == list(range(len(offsets)))

    # Offsets by timestamp, through kcat -Q and through librdkafka 2.0.2's offsetsForTimes.
    target = sorted(r["timestamp"] for r in consumed)[RECORDS // 2]
    queries = [arg for p in range(PARTITIONS) for arg in ("-t", f"{topic}:{p}:{target}")]
    answer = kcat(broker, "-Q", *queries).decode()
    found = {int(p): int(o) for p, o in re.findall(r"\[(\d+)\]\s+offset\s+(-?\d+)", answer)}
    assert len(found) == PARTITIONS, answer
    for p, offset in found.items():
        assert offset == first_offset_at_or_after(consumed, p, target), (p, answer)
    for line in admin(broker, "offsets", topic, str(PARTITIONS), str(target)).splitlines():
        p, offset = map(int, line.split())
        assert offset == first_offset_at_or_after(consumed, p, target)

    metadata = json.loads(kcat(broker, "-L", "-J", "-t", topic))
    assert len(metadata["topics"][0]["partitions"]) == PARTITIONS

    admin(broker, "alter", topic, "retention.ms", "4567890")
    configs = dict(line.split("=", 1) for line in admin(broker, "describe", topic).splitlines())
    assert configs["retention.ms"] == "4567890"
    assert configs["cleanup.policy"] == "delete"
    admin(broker, "delete", topic)
    assert topic not in admin(broker, "topics").split()
