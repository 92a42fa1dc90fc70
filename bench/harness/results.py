"""Results that outlive a run: bench/.cache/results/results.json.

A run adds its results under their keys (group | workload | broker), replacing older results
of the same workload, so `bench/run --only produce` refreshes the produce numbers and keeps the
rest. Each run also stores its description (mode, revision, machine, tool versions, limits)
under its run id, and the report names the runs its numbers come from.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


class Store:
    def __init__(self, path: Path, fresh: bool):
        self.path = path
        self.data = {"runs": {}, "results": {}}
        if path.exists() and not fresh:
            self.data = json.loads(path.read_text())

    @property
    def results(self) -> dict[str, dict]:
        return self.data["results"]

    @property
    def runs(self) -> dict[str, dict]:
        return self.data["runs"]

    def add_run(self, run_id: str, description: dict) -> None:
        self.runs[run_id] = description
        self.save()

    def update_run(self, run_id: str, **fields) -> None:
        self.runs[run_id].update(fields)
        self.save()

    def record(self, result: dict) -> None:
        self.results[result["key"]] = result
        self.save()

    def record_profile(self, result: dict) -> None:
        """`--profile-only`: keep the stored numbers of this workload and add the profile of a
        separate run (perf costs the broker CPU, which would bias the numbers it explains)."""
        stored = self.results.get(result["key"])
        if stored is None or not result.get("profile"):
            return
        stored["profile"] = result["profile"]
        stored["profile_run_id"] = result["run_id"]
        stored["profile_run_records_per_s"] = result.get("records_per_s")
        self.save()

    def save(self) -> None:
        # Written after every result so an interrupted suite keeps what it measured.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, sort_keys=True))
        os.replace(tmp, self.path)

    def used_runs(self) -> list[str]:
        """Run ids that contribute results, oldest first."""
        used = {r["run_id"] for r in self.results.values()}
        latest_limits = self.latest_run_with("limits")
        if latest_limits:
            used.add(latest_limits)
        return [run_id for run_id in sorted(self.runs) if run_id in used]

    def latest_run_with(self, field: str) -> str | None:
        with_field = [run_id for run_id, run in self.runs.items() if run.get(field)]
        return max(with_field) if with_field else None
