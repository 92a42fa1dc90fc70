"""Deterministic test records: keys, values, headers and timestamps, and comparison helpers."""

import random
import time

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
RECORDS = 100_000


def make_records(n, seed, printable=False, base_ts=None):
    """n records: (key, value, headers, timestamp_ms). Printable values suit kcat's line input."""
    rng = random.Random(seed)
    base_ts = base_ts if base_ts is not None else int(time.time() * 1000) - n
    alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:;/"
    out = []
    for i in range(n):
        key = f"key-{i}".encode()
        size = rng.randrange(0, 200)
        if printable:
            value = bytes(rng.choice(alphabet) for _ in range(size)) or b"x"
        else:
            value = rng.randbytes(size)
        headers = [("seq", str(i).encode()), ("kind", b"test"), ("empty", b"")]
        out.append((key, value, headers, base_ts + i))
    return out


def first_offset_at_or_after(consumed, partition, timestamp):
    """The offset of the first record in `partition` whose timestamp is >= timestamp, or -1."""
    candidates = [r for r in consumed if r["partition"] == partition and r["timestamp"] >= timestamp]
    return min((r["offset"] for r in candidates), default=-1)
