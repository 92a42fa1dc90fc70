"""Test-side handle for group_member.py processes: their events, assignments and records, and
waits on conditions with deadlines (no timed sleeps)."""

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

MEMBER = str(Path(__file__).with_name("group_member.py"))
WAIT_S = 90


class Member:
    def __init__(self, name, bootstrap, topic, group, extra=None, log_dir=None):
        self.name = name
        conf = {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500,
            **(extra or {}),
        }
        # The client's own log goes to a file: an undrained pipe could block the member.
        self.log_path = Path(log_dir or "/tmp") / f"member-{group}-{name}.log"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, MEMBER, json.dumps(conf), topic], stdout=subprocess.PIPE, stderr=log
            )
        self.events = []
        self.assignment = None
        self.records = []
        self.errors = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            event = json.loads(line)
            with self.cond:
                self.events.append(event)
                kind = event["event"]
                if kind in ("assigned", "revoked", "lost"):
                    self.assignment = set(event["partitions"])
                elif kind == "record":
                    self.records.append((event["p"], event["o"], event["k"]))
                elif kind == "error":
                    self.errors.append(event["error"])
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def stop(self):
        """Graceful close: the member leaves the group (dynamic members)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)

    def kill(self):
        """Dies without leaving: the coordinator finds out by the session timeout."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def alive(self):
        return self.proc.poll() is None

    def revocations(self):
        with self.cond:
            return [e for e in self.events if e["event"] in ("revoked", "lost")]


def wait_until(members, predicate, what, timeout=WAIT_S):
    """Waits until predicate() holds, re-checking whenever any member reports an event."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            state = {m.name: (sorted(m.assignment) if m.assignment is not None else None, m.errors[-3:]) for m in members}
            raise AssertionError(f"timed out waiting for {what}; members: {state}")
        # Block on the first live member's condition; every member's event wakes its own
        # condition, so wait in short slices across them.
        for m in members:
            with m.cond:
                m.cond.wait(min(remaining, 0.2))
            if predicate():
                return


def balanced(members, partitions, sizes):
    """True when the live members' assignments partition `partitions` with these sizes."""
    live = [m for m in members if m.alive()]
    if any(m.assignment is None for m in live):
        return False
    owned = [p for m in live for p in m.assignment]
    return sorted(owned) == sorted(partitions) and sorted(len(m.assignment) for m in live) == sorted(sizes)
