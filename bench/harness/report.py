"""From stored results to what people read: the console table, the scaling plot, the targets
with met/missed and their ratios, and the harness section of BENCHMARKS.md (with its Cluster
section: the 3-node runs and their ratios to single-node figures of the same run).

BENCHMARKS.md is edited only between the BEGIN and END markers below; everything else in the
file (the storage engine's criterion section) is left as it is.
"""

from __future__ import annotations

import re
from pathlib import Path

from harness.workloads import CLUSTER_BASELINE, CLUSTER_REPLICATED, cluster_produce_name

BEGIN = "<!-- bench/run: begin (generated; edit bench/harness, not this section) -->"
END = "<!-- bench/run: end -->"
BROKER_ORDER = ["strom", "tansu-null", "tansu-memory", "tansu-sqlite"]
GROUP_ORDER = ["produce", "consume", "latency", "scaling", "memory"]
RSS_GROWTH_LIMIT_MB = 32.0
# The cluster target: RF=3 acks=all at least this fraction of single-node acks=1.
CLUSTER_TARGET_RATIO = 0.5
CLUSTER_TARGET_PARTITIONS = (1, 100)


# ---------------------------------------------------------------------------------------------
# formatting


def fmt_int(value) -> str:
    return "–" if value is None else f"{int(round(value)):,}"


def fmt(value, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def fmt_ratio(value) -> str:
    return "–" if value is None else f"{value:.2f}"


def notes(result: dict) -> str:
    parts = []
    if result.get("note"):
        parts.append(result["note"])
    if result.get("errors"):
        parts.append("ERROR: " + "; ".join(result["errors"]))
    return "; ".join(parts)


def normalize_command(command: str | None) -> str:
    """A command line without this machine's paths and ports."""
    if not command:
        return ""
    command = re.sub(r"\S*/rdkafka_performance", "rdkafka_performance", command)
    command = re.sub(r"\S*/tansu-[\d.]+/bin/tansu", "tansu", command)
    command = re.sub(r"\S*/release/strom", "target/release/strom", command)
    command = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:$PORT", command)
    command = re.sub(r"--data-dir (?!\$)\S+", "--data-dir $DATA", command)
    command = re.sub(r"-A \S+", "-A $FILE", command)
    return command


def substitute(command: str | None, placeholders: dict[str, str] | None) -> str:
    """A cluster workload's command with its nodes' addresses and directories named ($PORT1,
    $CPORT1, $DATA1, ...; see RunningCluster.placeholders), then normalized."""
    if not command:
        return ""
    placeholders = placeholders or {}
    command = re.sub(r"127\.0\.0\.1:\d+", lambda m: placeholders.get(m[0], m[0]), command)
    paths = sorted((k for k in placeholders if not k.startswith("127.0.0.1:")), key=len,
                   reverse=True)
    for path in paths:
        command = command.replace(path, placeholders[path])
    return normalize_command(command)


def md_table(headers: list[str], rows: list[list[str]], align: str | None = None) -> str:
    align = align or ("l" + "r" * (len(headers) - 1))
    marks = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(marks) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    return "\n".join(lines)


def text_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    def line(cells):
        return "  ".join(c.ljust(w) if i in (0, 1) or i == len(cells) - 1 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


# ---------------------------------------------------------------------------------------------
# selection


class View:
    """The stored results, indexed for the report."""

    def __init__(self, results: dict[str, dict]):
        self.results = results

    def get(self, group: str, name: str, broker: str) -> dict | None:
        return self.results.get(f"{group}|{name}|{broker}")

    def value(self, group: str, name: str, broker: str, field: str):
        r = self.get(group, name, broker)
        if r is None or r.get("errors"):
            return None
        return r.get(field)

    def names(self, group: str) -> list[str]:
        seen = []
        for r in self.results.values():
            if r["group"] == group and r["name"] not in seen:
                seen.append(r["name"])
        return sorted(seen, key=lambda n: workload_order(group, n, self.results))

    def rows(self, group: str) -> list[dict]:
        out = []
        for name in self.names(group):
            for broker in BROKER_ORDER:
                r = self.get(group, name, broker)
                if r is not None:
                    out.append(r)
        return out

    def brokers(self) -> list[str]:
        present = {r["broker"] for r in self.results.values()}
        return [b for b in BROKER_ORDER if b in present]


def workload_order(group: str, name: str, results: dict[str, dict]) -> tuple:
    for r in results.values():
        if r["group"] == group and r["name"] == name:
            p = r.get("params", {})
            if group == "scaling":
                return (0 if p.get("axis") == "partitions" else 1, p.get("value", 0))
            if group == "cluster":
                return (0 if p.get("kind") == "produce" else 1, p.get("size", 0),
                        p.get("partitions", 0), p.get("replication_factor", 0),
                        p.get("rate", 0), name)
            return (p.get("size", 0), str(p.get("acks", "")), p.get("partitions", 0),
                    p.get("rate", 0), name)
    return (name,)


# ---------------------------------------------------------------------------------------------
# targets


def size_label(size: int) -> str:
    if size >= 1024 and size % 1024 == 0:
        return f"{size // 1024} KiB"
    return f"{size} B"


def produce_name(size: int, acks: str, partitions: int) -> str:
    label = "1 KiB" if size == 1024 else f"{size} B"
    return f"produce {label} acks={acks} {partitions} partition" + ("s" if partitions > 1 else "")


CONSUME_DEFAULT_SMALL = "consume 100 B, default (fetch.wait.max.ms=500)"
CONSUME_DEFAULT_LARGE = "consume 1 KiB, default (fetch.wait.max.ms=500)"
LATENCY_20K = "latency 1 KiB acks=all at 20,000 records/s"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def partitions_label(partitions: int) -> str:
    return f"{partitions} partition" + ("s" if partitions != 1 else "")


def same_run_value(view: View, group: str, name: str, run_id: str,
                   field: str = "records_per_s") -> tuple[float | None, str | None]:
    """Strom's figure of a workload if it was measured in run `run_id` without errors, else
    None and why not (ratios across runs would compare different moments of a shared VM)."""
    r = view.get(group, name, "strom")
    if r is None:
        return None, "not measured"
    if r.get("errors"):
        return None, "had errors"
    if r.get("run_id") != run_id:
        return None, f"measured in run {r.get('run_id')}, not in this one"
    return r.get(field), None


def cluster_references(view: View, r: dict) -> dict:
    """For a cluster produce result: the same run's single-node Strom acks=1 figure (same
    record size and partition count), the in-cluster RF=1 acks=1 figure, and the ratios."""
    p = r.get("params", {})
    if p.get("kind") != "produce":
        return {}
    size, partitions = p.get("size"), p.get("partitions")
    mine = None if r.get("errors") else r.get("records_per_s")
    single, single_why = same_run_value(view, "produce", produce_name(size, "1", partitions),
                                        r["run_id"])
    out = {"single": single, "single_why": single_why, "vs_single": ratio(mine, single),
           "rf1": None, "rf1_why": None, "vs_rf1": None}
    if p.get("replication_factor", 1) > 1:
        rf1, rf1_why = same_run_value(
            view, "cluster", cluster_produce_name(size, CLUSTER_BASELINE, partitions),
            r["run_id"])
        out.update(rf1=rf1, rf1_why=rf1_why, vs_rf1=ratio(mine, rf1))
    return out


def cluster_target_name(size: int, partitions: int) -> str:
    return (f"Cluster, produce {size_label(size)}, {partitions_label(partitions)}: "
            f"RF=3 acks=all ≥ {CLUSTER_TARGET_RATIO:g} x single-node acks=1")


def evaluate_targets(view: View) -> list[dict]:
    """Each target of the issue, with the measured figure, the ratio and met/missed."""
    targets = []

    def add(target, measured, value, threshold, higher_is_better, keys, why_na=None,
            missing=False):
        if why_na:
            status = "n/a"
        elif missing:
            status = "missing"
        elif value is None:
            status = "not run"
        else:
            ok = value >= threshold if higher_is_better else value < threshold
            status = "met" if ok else "MISSED"
        targets.append({"target": target, "measured": measured, "value": value,
                        "status": status, "keys": keys, "why_na": why_na})

    for partitions in (1, 100):
        name = produce_name(100, "1", partitions)
        strom = view.value("produce", name, "strom", "records_per_s")
        null = view.value("produce", name, "tansu-null", "records_per_s")
        sqlite = view.value("produce", name, "tansu-sqlite", "records_per_s")
        r = ratio(strom, null)
        add(f"Produce 100 B, acks=1, {partitions} partition{'s' if partitions > 1 else ''}: "
            "≥ 90% of Tansu null (client ceiling)",
            f"Strom {fmt_int(strom)} vs null {fmt_int(null)} records/s", r, 0.90, True,
            [f"produce|{name}|strom"])
        r = ratio(strom, sqlite)
        add(f"Produce 100 B, acks=1, {partitions} partition{'s' if partitions > 1 else ''}: "
            "≥ 20x Tansu sqlite",
            f"Strom {fmt_int(strom)} vs sqlite {fmt_int(sqlite)} records/s", r, 20.0, True,
            [f"produce|{name}|strom"])

    for size in (100, 1024):
        all_ = view.value("produce", produce_name(size, "all", 1), "strom", "records_per_s")
        one = view.value("produce", produce_name(size, "1", 1), "strom", "records_per_s")
        label = "1 KiB" if size == 1024 else "100 B"
        add(f"Produce {label}, 1 partition: acks=all (fsync) ≥ 70% of acks=1",
            f"acks=all {fmt_int(all_)} vs acks=1 {fmt_int(one)} records/s", ratio(all_, one),
            0.70, True, [f"produce|{produce_name(size, 'all', 1)}|strom"])

    consume = view.value("consume", CONSUME_DEFAULT_SMALL, "strom", "records_per_s")
    add("Consume 100 B with the client's defaults: ≥ 3,000,000 records/s",
        f"{fmt_int(consume)} records/s",
        None if consume is None else consume / 3_000_000, 1.0, True,
        [f"consume|{CONSUME_DEFAULT_SMALL}|strom"])

    name = produce_name(1024, "1", 1)
    strom = view.value("produce", name, "strom", "records_per_s")
    null = view.value("produce", name, "tansu-null", "records_per_s")
    add("Produce 1 KiB, acks=1, 1 partition: ≥ 90% of Tansu null",
        f"Strom {fmt_int(strom)} vs null {fmt_int(null)} records/s", ratio(strom, null), 0.90,
        True, [f"produce|{name}|strom"])
    consume = view.value("consume", CONSUME_DEFAULT_LARGE, "strom", "mb_per_s")
    memory = view.value("consume", CONSUME_DEFAULT_LARGE, "tansu-memory", "mb_per_s")
    add("Consume 1 KiB: ≥ 90% of the null-engine ceiling",
        f"Strom {fmt(consume)} MB/s; Tansu memory {fmt(memory)} MB/s "
        f"(ratio {fmt_ratio(ratio(consume, memory))})",
        None, 0.90, True, [f"consume|{CONSUME_DEFAULT_LARGE}|strom"],
        why_na="Tansu's null engine answers every Fetch with no records, so the client's "
               "consume ceiling cannot be measured with it; the Tansu memory engine is shown")

    p99 = view.value("latency", LATENCY_20K, "strom", "p99_ms")
    p999 = view.value("latency", LATENCY_20K, "strom", "p999_ms")
    add("End-to-end latency, 1 KiB at 20,000 records/s, acks=all: p99 < 5 ms",
        f"p99 {fmt(p99, 2)} ms", p99, 5.0, False, [f"latency|{LATENCY_20K}|strom"])
    add("End-to-end latency, 1 KiB at 20,000 records/s, acks=all: p99.9 < 15 ms",
        f"p99.9 {fmt(p999, 2)} ms", p999, 15.0, False, [f"latency|{LATENCY_20K}|strom"])

    one = view.value("scaling", "scaling: 1 partition, 100 B", "strom", "records_per_s")
    thousand = view.value("scaling", "scaling: 1000 partitions, 100 B", "strom", "records_per_s")
    add("Produce 100 B, acks=1: 1,000 partitions ≥ 70% of 1 partition",
        f"{fmt_int(thousand)} vs {fmt_int(one)} records/s", ratio(thousand, one), 0.70, True,
        ["scaling|scaling: 1000 partitions, 100 B|strom"])

    idle = view.value("memory", "idle RSS (1 topic, 1 partition)", "strom", "idle_rss_mb")
    add("Idle RSS < 50 MB", f"{fmt(idle)} MB", idle, 50.0, False, [])
    growth_rows = [r for r in view.rows("memory")
                   if r["broker"] == "strom" and r["name"].startswith("RSS during")]
    growth = growth_rows[0] if growth_rows else None
    value = None if growth is None or growth.get("errors") else growth.get(
        "rss_growth_last_80pct_mb")
    written = (growth or {}).get("bytes")
    add(f"RSS does not grow with the data written (growth over the last 80% of the run "
        f"< {RSS_GROWTH_LIMIT_MB:g} MB)",
        f"{fmt(value)} MB over {fmt((written or 0) / 1e9, 1)} GB"
        if value is not None else "–",
        value, RSS_GROWTH_LIMIT_MB, False, [growth["key"]] if growth else [])

    for size in (100, 1024):
        for partitions in CLUSTER_TARGET_PARTITIONS:
            name = cluster_produce_name(size, CLUSTER_REPLICATED, partitions)
            r = view.get("cluster", name, "strom")
            if r is None or r.get("errors"):
                add(cluster_target_name(size, partitions), "–", None, CLUSTER_TARGET_RATIO,
                    True, [f"cluster|{name}|strom"])
                continue
            refs = cluster_references(view, r)
            mine = fmt_int(r.get("records_per_s"))
            if refs["single"] is not None:
                measured = (f"RF=3 acks=all {mine} vs single-node acks=1 "
                            f"{fmt_int(refs['single'])} records/s")
            else:
                measured = (f"RF=3 acks=all {mine} records/s; single-node acks=1 missing "
                            f"({refs['single_why']})")
            if refs["rf1"] is not None:
                measured += (f"; {fmt_ratio(refs['vs_rf1'])} x in-cluster RF=1 acks=1 "
                             f"({fmt_int(refs['rf1'])})")
            add(cluster_target_name(size, partitions), measured, refs["vs_single"],
                CLUSTER_TARGET_RATIO, True, [r["key"]], missing=refs["single"] is None)
    return targets


# ---------------------------------------------------------------------------------------------
# console


def console(view: View, limits: list[dict] | None) -> str:
    out = []
    if limits:
        out.append("Machine limits")
        out.append(text_table(["limit", "value", "unit"],
                              [[l["name"], fmt(l["value"]), l["unit"]] for l in limits]))
    headers = ["workload", "broker", "records/s", "MB/s", "CPU s/GB", "peak RSS MB", "p99 ms",
               "notes"]
    for group in GROUP_ORDER:
        rows = []
        for r in view.rows(group):
            rss = r.get("idle_rss_mb") or r.get("peak_rss_mb")
            rows.append([r["name"], r["broker"], fmt_int(r.get("records_per_s")),
                         fmt(r.get("mb_per_s")), fmt(r.get("cpu_s_per_gb"), 2), fmt(rss),
                         fmt(r.get("p99_ms"), 2), notes(r)[:80]])
        if rows:
            out.append(f"\n{group}")
            out.append(text_table(headers, rows))
        if group == "produce":
            cluster = cluster_rows(view, console=True)
            if cluster:
                out.append("\ncluster (3 Strom brokers on this machine)")
                out.append(text_table(CLUSTER_CONSOLE_HEADERS, cluster))
    targets = evaluate_targets(view)
    out.append("\ntargets")
    out.append(text_table(["target", "status", "ratio/value", "measured"],
                          [[t["target"], t["status"], fmt_ratio(t["value"]), t["measured"]]
                           for t in targets]))
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# cluster


CLUSTER_CONSOLE_HEADERS = ["workload", "brokers", "records/s", "MB/s", "vs 1-node acks=1",
                           "vs RF=1", "e2e p50 ms", "e2e p99 ms", "e2e p99.9 ms", "CPU s/GB",
                           "notes"]
CLUSTER_HEADERS = ["workload", "records/s", "MB/s", "vs single-node acks=1",
                   "vs cluster RF=1 acks=1", "e2e p50 ms", "e2e p99 ms", "e2e p99.9 ms",
                   "ack p99 ms", "broker CPU s/GB (3 brokers)", "CPU s, node 1/2/3",
                   "leaders, node 1/2/3", "notes"]


def cluster_ratio_cells(view: View, r: dict) -> tuple[str, str]:
    """The two ratio cells of a cluster row: "–" where the ratio does not apply (latency rows;
    RF=1 against itself), "missing" where its reference is not from the same run."""
    refs = cluster_references(view, r)
    if not refs:
        return "–", "–"
    single = "missing" if refs["single"] is None else fmt_ratio(refs["vs_single"])
    if r.get("params", {}).get("replication_factor", 1) <= 1:
        return single, "–"
    rf1 = "missing" if refs["rf1"] is None else fmt_ratio(refs["vs_rf1"])
    return single, rf1


def by_node(values, digits: int | None = None) -> str:
    if not values:
        return "–"
    if isinstance(values, dict):
        values = [values[k] for k in sorted(values, key=int)]
    return "/".join(str(v) if digits is None else fmt(v, digits) for v in values)


def cluster_rows(view: View, console: bool = False) -> list[list[str]]:
    rows = []
    for r in view.rows("cluster"):
        vs_single, vs_rf1 = cluster_ratio_cells(view, r)
        if console:
            rows.append([r["name"], "strom x3", fmt_int(r.get("records_per_s")),
                         fmt(r.get("mb_per_s")), vs_single, vs_rf1, fmt(r.get("p50_ms"), 2),
                         fmt(r.get("p99_ms"), 2), fmt(r.get("p999_ms"), 2),
                         fmt(r.get("cpu_s_per_gb"), 2), notes(r)[:80]])
        else:
            rows.append([r["name"], fmt_int(r.get("records_per_s")), fmt(r.get("mb_per_s")),
                         vs_single, vs_rf1, fmt(r.get("p50_ms"), 2), fmt(r.get("p99_ms"), 2),
                         fmt(r.get("p999_ms"), 2), fmt(r.get("ack_p99_ms"), 2),
                         fmt(r.get("cpu_s_per_gb"), 2), by_node(r.get("broker_cpu_s_by_node"), 2),
                         by_node(r.get("leaders_by_node")), notes(r)])
    return rows


def topic_description(r: dict) -> str:
    t = r.get("topic") or {}
    config = ", ".join(f"{k}={v}" for k, v in (t.get("config") or {}).items())
    return (f"topic `{t.get('name', 'bench')}` created with "
            f"{partitions_label(t.get('partitions', 1))}, replication factor "
            f"{t.get('replication_factor', 1)}" + (f", {config}" if config else ""))


def cluster_section(view: View, targets: list[dict]) -> tuple[list[str], set[str]]:
    """The Cluster section and the keys whose profiles it shows (the missed-targets section
    then points here instead of repeating them)."""
    results = view.rows("cluster")
    if not results:
        return [], set()
    out = ["", "### Cluster (3 brokers on this machine)", "",
           "Each row is a fresh 3-node Strom cluster on loopback: three `strom broker` "
           "processes, each a broker and a voter of the metadata quorum with its own data "
           "directory (on the same disk), client and controller port, started together and "
           "ready once each has logged \"broker started\" and Metadata lists all three. The "
           "topic is created with CreateTopics and the harness waits until every partition "
           "has a leader and all its replicas in sync. The clients are the produce and latency "
           "groups' own `rdkafka_performance` command lines (`linger.ms=5` for throughput, the "
           "same record counts and time limits), bootstrapping to all three brokers. "
           f"{CLUSTER_BASELINE.label} is the single-node equivalent inside the cluster (the "
           "one replica of each partition on the broker the controller chose); "
           f"{CLUSTER_REPLICATED.label} is a replicated topic whose acks=all waits for every "
           "in-sync replica (in page cache: with several in-sync replicas nobody fsyncs on "
           "the write path, as in Kafka; see docs/replication.md). **The 2 cores are shared "
           "by the three brokers and the client.**", "",
           "\"vs single-node acks=1\" divides by Strom's single-node `produce` row of the same "
           "record size, partition count and acks=1 (Produce above) **from the same run**; "
           "\"missing\" means that figure is not from the run that measured the cluster row "
           "(run `bench/run --only produce,cluster`). \"vs cluster RF=1 acks=1\" divides by "
           "the RF=1 row of the same size and partition count from the same run. Broker CPU "
           "s/GB is the utime + stime of the three brokers together per GB of payload "
           "delivered (with RF=3 each byte is written three times, so the same work per "
           "copy shows as three times the CPU); \"CPU s, node 1/2/3\" splits it per broker "
           "and \"leaders\" counts the partitions each broker led. The latency row uses the "
           "latency group's method (1 KiB records at a fixed rate, acks=all, `linger.ms` 1, "
           "the first second dropped as warm-up): e2e is producer to consumer, which sees a "
           "record once the high watermark passes it, i.e. once the followers have it.",
           "", md_table(CLUSTER_HEADERS, cluster_rows(view), "l" + "r" * 11 + "l")]

    cluster_targets = [t for t in targets if t["target"].startswith("Cluster")]
    if cluster_targets:
        out += ["", "Target (the issue's): RF=3 acks=all (min.insync.replicas=2) at least "
                f"{CLUSTER_TARGET_RATIO:g} x single-node acks=1 records/s on this 2-core "
                "machine, with three brokers and the client sharing it.", ""]
        for t in cluster_targets:
            status = f"**{t['status']}**" if t["status"] in ("MISSED", "missing") else t["status"]
            line = f"- {t['target']}: {status}"
            if t["value"] is not None:
                line += f", ratio {fmt_ratio(t['value'])}"
            if t["measured"] != "–":
                line += f" ({t['measured']})"
            out.append(line + ".")

    shown = set()
    profiled = [r for r in results if r.get("profile")
                and r.get("params", {}).get("replication_factor", 1) > 1]
    for r in profiled:
        shown.add(r["key"])
        separate = (f"; recorded in a separate run (`--profile-only`, run "
                    f"{r['profile_run_id']}, which reached "
                    f"{fmt(r.get('profile_run_records_per_s'))} records/s under perf)"
                    if r.get("profile_run_id") else "")
        out += ["", f"Profile during `{r['name']}` (perf, the three brokers' samples together, "
                    f"by self time; symbols over 1.5%{separate}):", "", "```"]
        out += r["profile"].splitlines()
        out.append("```")

    out += ["", "Exact commands (`$PORTn`, `$CPORTn`, `$DATAn`: node n's client port, "
                "controller port and fresh data directory; `$FILE` a latency output file). "
                "The brokers, started fresh for each row:", "", "```"]
    first = next((r for r in results if r.get("broker_commands")), None)
    if first:
        out += [substitute(c, first.get("placeholders")) for c in first["broker_commands"]]
    out += ["```", "", "The clients, one block per row:", "", "```"]
    for r in results:
        lines = [substitute(r[field], r.get("placeholders"))
                 for field in ("consumer_command", "command") if r.get(field)]
        if lines:
            out.append(f"# {r['name']} ({topic_description(r)})")
            out += lines
    out.append("```")
    return out, shown


# ---------------------------------------------------------------------------------------------
# plot


def plot_scaling(view: View, path: Path) -> bool:
    """Throughput against partitions and record size, one line per broker. False if no data."""
    rows = view.rows("scaling")
    if not rows:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for broker in view.brokers():
        for axis, ax, field in (("partitions", left, "records_per_s"),
                                ("size", right, "mb_per_s")):
            points = sorted(
                (r["params"]["value"], r[field]) for r in rows
                if r["broker"] == broker and r["params"]["axis"] == axis
                and not r.get("errors") and r.get(field) is not None)
            if points:
                xs, ys = zip(*points)
                ax.plot(xs, ys, marker="o", label=broker)
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    left.set_xscale("log")
    left.set_xlabel("partitions (100 B records, acks=1)")
    left.set_ylabel("records/s (millions)")
    left.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1e6:g}"))
    left.set_title("Produce throughput vs partitions")
    right.set_xscale("log")
    right.set_xlabel("record size (1 partition, acks=1)")
    right.set_ylabel("MB/s")
    right.set_title("Produce throughput vs record size")
    for ax, axis in ((left, "partitions"), (right, "size")):
        ticks = sorted({r["params"]["value"] for r in rows if r["params"]["axis"] == axis})
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_minor_locator(NullLocator())
        label = (lambda v, _: f"{v:g}") if axis == "partitions" else (
            lambda v, _: size_label(int(v)))
        ax.xaxis.set_major_formatter(FuncFormatter(label))
    for ax in (left, right):
        ax.grid(True, which="both", alpha=0.3)
        ax.set_ylim(bottom=0)
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


# ---------------------------------------------------------------------------------------------
# markdown


def limit_value(limits: list[dict] | None, prefix: str):
    for l in limits or []:
        if l["name"].startswith(prefix):
            return l["value"]
    return None


def markdown(view: View, runs: dict[str, dict], used_runs: list[str], limits: list[dict] | None,
             plot_path: str | None, repo: Path) -> str:
    out = [BEGIN, "## Side by side with Tansu (`bench/run`)", ""]
    quick = any(runs[r].get("quick") for r in used_runs)
    out.append(
        "Generated by `bench/run` (harness in `bench/harness/`). Every figure comes from one "
        "machine with **2 cores shared by the load generator and the broker**, so a faster "
        "client leaves less CPU for the broker and the other way round; ratios between brokers "
        "in the same run are what the targets are about."
        + (" **Includes `--quick` results: short runs, read them as a smoke test.**"
           if quick else ""))
    out.append("")
    out.append("Runs behind these numbers:")
    out.append("")
    for run_id in used_runs:
        run = runs[run_id]
        out.append(f"- `{run_id}`: {'quick' if run.get('quick') else 'full'} run of "
                   f"{', '.join(run.get('groups', []))} on revision `{run.get('revision')}`, "
                   f"brokers {', '.join(run.get('brokers', []))}"
                   + (f" ({run['comment']})" if run.get("comment") else ""))
    latest = runs[used_runs[-1]] if used_runs else {}
    machine = latest.get("machine", {})
    tools = latest.get("tools", {})
    out += ["", "### Machine and tools", ""]
    out.append(f"- CPU: {machine.get('cpu')}, {machine.get('cores')} cores"
               + (f" ({machine['hypervisor']} guest)" if machine.get("hypervisor") else "")
               + f"; RAM {machine.get('memory_gib')} GiB; Linux {machine.get('kernel')}; "
               f"disk: {machine.get('disk')}.")
    out.append(f"- Load generator: `rdkafka_performance` from {tools.get('librdkafka')}, built "
               "from the sources in the `rdkafka-sys` 4.10.0+2.12.1 crate (`./configure "
               "--disable-ssl --disable-gssapi --disable-curl --disable-sasl`, `make -C src "
               "librdkafka.a librdkafka.so.1`, `make -C examples rdkafka_performance`).")
    out.append(f"- Peer: {tools.get('tansu') or 'Tansu 0.6.0 (not in the latest run)'} (`cargo install tansu --version 0.6.0 --locked "
               "--features dynostore,libsql`), with `--storage-engine null://sink` (discards "
               "every record: the client's own ceiling), `memory://tansu/` (not durable) and "
               "`sqlite://tansu.db` (durable; Tansu sets SQLite's WAL mode with "
               "`synchronous=normal`).")
    out.append(f"- Strom: {tools.get('strom')}, `strom broker --data-dir $DATA --listen "
               "127.0.0.1:$PORT` with its defaults (acks=all fsyncs before the ack, by group "
               "commit).")

    if limits:
        out += ["", "### The machine's limits", ""]
        out.append(md_table(["limit", "value", "command"],
                            [[l["name"], f"{fmt(l['value'])} {l['unit']}", f"`{l['command']}`"]
                             for l in limits], "lrl"))
        out.append("")
        out.append("Each dd figure is the best of 3 runs (2 with `--quick`) in the brokers' data "
                   "directory; the page-cache figure includes the kernel's writeback throttling.")

    targets = evaluate_targets(view)
    out += ["", "### Targets", ""]
    out.append(md_table(["target", "measured", "ratio / value", "status"],
                        [[t["target"], t["measured"], fmt_ratio(t["value"]),
                          f"**{t['status']}**" if t["status"] == "MISSED" else t["status"]]
                         for t in targets], "llrl"))
    for t in targets:
        if t["why_na"]:
            out.append(f"\n- n/a: {t['why_na']}.")

    disk = limit_value(limits, "sequential write + fdatasync")
    loopback = limit_value(limits, "loopback")
    out += produce_section(view, disk)
    cluster, shown = cluster_section(view, targets)
    out += cluster
    out += consume_section(view, loopback)
    out += latency_section(view)
    out += scaling_section(view, plot_path)
    out += memory_section(view)
    out += profiles_section(view, targets, shown)
    out += commands_section(view)
    out += method_section()
    out.append(END)
    return "\n".join(out) + "\n"


def result_rows(view: View, group: str, reference: str | None, limit: float | None,
                limit_label: str) -> tuple[list[str], list[list[str]]]:
    headers = ["workload", "broker", "records/s", "MB/s"]
    if reference:
        headers.append(f"vs {reference}")
    if limit:
        headers.append(f"% of {limit_label}")
    headers += ["broker CPU s/GB", "broker peak RSS MB", "client CPU s", "notes"]
    rows = []
    for r in view.rows(group):
        row = [r["name"], r["broker"], fmt_int(r.get("records_per_s")), fmt(r.get("mb_per_s"))]
        if reference:
            ref = view.value(group, r["name"], reference, "records_per_s")
            row.append(fmt_ratio(ratio(r.get("records_per_s"), ref)))
        if limit:
            mb = r.get("mb_per_s")
            row.append("–" if mb is None else f"{100 * mb / limit:.0f}%")
        row += [fmt(r.get("cpu_s_per_gb"), 2), fmt(r.get("peak_rss_mb")),
                fmt(r.get("client_cpu_s"), 1), notes(r)]
        rows.append(row)
    return headers, rows


def produce_section(view: View, disk: float | None) -> list[str]:
    if not view.rows("produce"):
        return []
    headers, rows = result_rows(view, "produce", "tansu-null", disk, "fdatasync'd disk")
    return ["", "### Produce", "",
            "Each row is a fresh broker and topic; the producer is `rdkafka_performance` "
            "spreading records over the partitions, with librdkafka's default `linger.ms=5` "
            "(the tool's own 1000 ms leaves every partial batch waiting a second, which caps "
            "the client far below the brokers when there are many partitions). "
            "\"vs tansu-null\" is the fraction of the client's ceiling; \"% of fdatasync'd "
            "disk\" compares with the sequential write limit above.",
            "", md_table(headers, rows, "ll" + "r" * (len(headers) - 3) + "l")]


def consume_section(view: View, loopback: float | None) -> list[str]:
    if not view.rows("consume"):
        return []
    headers, rows = result_rows(view, "consume", None, loopback, "loopback TCP")
    return ["", "### Consume", "",
            "A single-partition topic is preloaded (acks=1) on a fresh broker, then read from "
            "the beginning by `rdkafka_performance -C` (its clock starts at the first record). "
            "Broker CPU and RSS cover the consume only; RSS is sampled every 100 ms.",
            "", md_table(headers, rows, "ll" + "r" * (len(headers) - 3) + "l")]


def latency_section(view: View) -> list[str]:
    rows = []
    for r in view.rows("latency"):
        rows.append([r["name"], r["broker"], fmt_int(r.get("records_per_s")),
                     fmt(r.get("p50_ms"), 2), fmt(r.get("p99_ms"), 2), fmt(r.get("p999_ms"), 2),
                     fmt(r.get("max_ms"), 1), fmt(r.get("ack_p50_ms"), 2),
                     fmt(r.get("ack_p99_ms"), 2), fmt(r.get("ack_p999_ms"), 2),
                     fmt(r.get("cpu_s_per_gb"), 2), fmt(r.get("peak_rss_mb")), notes(r)])
    if not rows:
        return []
    headers = ["workload", "broker", "achieved records/s", "e2e p50 ms", "e2e p99 ms",
               "e2e p99.9 ms", "e2e max ms", "ack p50 ms", "ack p99 ms", "ack p99.9 ms",
               "broker CPU s/GB", "broker peak RSS MB", "notes"]
    return ["", "### End-to-end latency", "",
            "Two `rdkafka_performance` instances in `-l` mode: the producer writes its wall clock "
            "into each 1 KiB payload at a fixed rate (`-r`, acks=all, 1 partition), the "
            "consumer (client defaults, from the beginning of the empty topic) subtracts it on "
            "receipt (`-A` writes one latency per record). \"ack\" is the producer's own "
            "produce-to-delivery-report time. The first second of records is dropped as "
            "warm-up.", "",
            "About the client: `linger.ms` is 1 (`--latency-linger-ms`): with 0 librdkafka "
            "sends every record as its own pipelined request and, on 2 cores, even Tansu's "
            "null engine then shows an ack p99 near a second; librdkafka's default of 5 ms "
            "would put a 5 ms floor under every percentile. The tool's rate limiter busy-polls "
            "(one core stays busy) and starts each wait after the produce call, so the "
            "achieved rate is below `-r`; the table shows what was achieved.",
            "", md_table(headers, rows, "ll" + "r" * 10 + "l")]


def scaling_section(view: View, plot_path: str | None) -> list[str]:
    rows_by_name = {}
    brokers = view.brokers()
    for name in view.names("scaling"):
        row = [name]
        for broker in brokers:
            r = view.get("scaling", name, broker)
            if r is None:
                row.append("–")
            elif r.get("errors"):
                row.append("error")
            else:
                cell = f"{fmt_int(r.get('records_per_s'))} ({fmt(r.get('mb_per_s'))} MB/s)"
                if r.get("capped"):
                    cell += " *"
                row.append(cell)
        rows_by_name[name] = row
    if not rows_by_name:
        return []
    out = ["", "### Scaling", "",
           "Produce, acks=1, a fresh broker per point: records/s (MB/s). `*`: stopped at the "
           "time limit before the planned record count (the rate is over the time it ran)."]
    if plot_path:
        out += ["", f"![Produce throughput against partitions and record size]({plot_path})"]
    out += ["", md_table(["point", *brokers], list(rows_by_name.values()),
                         "l" + "r" * len(brokers))]
    errors = [f"- {r['name']} on {r['broker']}: {notes(r)}" for r in view.rows("scaling")
              if r.get("errors")]
    if errors:
        out += [""] + errors
    return out


def memory_section(view: View) -> list[str]:
    idle = [r for r in view.rows("memory") if r["name"].startswith("idle")]
    growth = [r for r in view.rows("memory") if r["name"].startswith("RSS during")]
    if not idle and not growth:
        return []
    out = ["", "### Memory", ""]
    if idle:
        out.append("Idle: a fresh broker with one single-partition topic, sampled for a second "
                   "after a few seconds of rest.")
        out += ["", md_table(["broker", "RSS MB", "anonymous MB", "file-backed MB", "notes"],
                             [[r["broker"], fmt(r.get("idle_rss_mb")),
                               fmt(r.get("idle_anon_mb")), fmt(r.get("idle_file_mb")), notes(r)]
                              for r in idle], "lrrrl")]
    for r in growth:
        out += ["", f"{r['name']}: {fmt_int(r.get('records'))} records, "
                    f"{fmt((r.get('bytes') or 0) / 1e9, 2)} GB at "
                    f"{fmt_int(r.get('records_per_s'))} records/s. RSS sampled every 0.5 s "
                    "(time stands in for data written, the rate being steady).",
                "", md_table(["broker", "RSS at 10%", "20%", "50%", "80%", "100% MB",
                              "growth over last 80% MB", "of which anonymous MB", "notes"],
                             [[r["broker"], fmt(r.get("rss_at_10pct_mb")),
                               fmt(r.get("rss_at_20pct_mb")), fmt(r.get("rss_at_50pct_mb")),
                               fmt(r.get("rss_at_80pct_mb")), fmt(r.get("rss_at_100pct_mb")),
                               fmt(r.get("rss_growth_last_80pct_mb")),
                               fmt(r.get("anon_growth_last_80pct_mb")), notes(r)]],
                             "lrrrrrrrl")]
    return out


def profiles_section(view: View, targets: list[dict],
                     in_cluster_section: set[str] = frozenset()) -> list[str]:
    missed = [t for t in targets if t["status"] == "MISSED"]
    if not missed:
        return []
    out = ["", "### Missed targets and their profiles", ""]
    shown = set()
    for t in missed:
        out.append(f"- **{t['target']}**: {t['measured']}.")
        profiled = [view.results[k] for k in t["keys"]
                    if k in view.results and view.results[k].get("profile")]
        if not profiled:
            out.append("  No profile in these results; `bench/run --profile --only ...` "
                       "records Strom with `perf record -a -F 997` and puts its hottest "
                       "symbols here.")
        for r in profiled:
            if r["key"] in in_cluster_section:
                out.append(f"  Profile: see `{r['name']}` in the Cluster section.")
                continue
            if r["key"] in shown:
                out.append(f"  Profile: see `{r['name']}` above.")
                continue
            shown.add(r["key"])
            separate = (f"; recorded in a separate run (`--profile-only`, run "
                        f"{r['profile_run_id']}, which reached "
                        f"{fmt(r.get('profile_run_records_per_s'))} records/s under perf)"
                        if r.get("profile_run_id") else "")
            whose = ("the three brokers' samples together" if r["group"] == "cluster"
                     else "share of the broker's own samples")
            out += ["", f"  Strom's profile during `{r['name']}` (perf, {whose} by self time; "
                        f"symbols over 1.5%{separate}):", "", "  ```"]
            out += ["  " + line for line in r["profile"].splitlines()]
            out.append("  ```")
    return out


def commands_section(view: View) -> list[str]:
    out = ["", "### Exact commands", "",
           "The whole comparison: `bench/run` (add `--quick` for a smoke run; `--help` lists "
           "the options). `$PORT` is a free loopback port, `$DATA` a fresh directory, `$FILE` "
           "a latency output file. One Strom run per workload:", "", "```"]
    broker_commands = {}
    for group in GROUP_ORDER:
        for r in view.rows(group):
            if r.get("broker_command"):
                broker_commands.setdefault(r["broker"], normalize_command(r["broker_command"]))
            if r["broker"] != "strom":
                continue
            lines = [normalize_command(r[field])
                     for field in ("preload_command", "consumer_command", "command")
                     if r.get(field)]
            if lines:
                partitions = r.get("params", {}).get("partitions", 1)
                out.append(f"# {r['name']} (topic created with {partitions} "
                           f"partition{'s' if partitions != 1 else ''})")
                out += lines
    out.append("```")
    if broker_commands:
        out += ["", "Brokers (started fresh for each workload, working directory `$DATA`):", "",
                "```"]
        out += [f"{cmd}" for _, cmd in sorted(broker_commands.items(),
                                                key=lambda kv: BROKER_ORDER.index(kv[0]))]
        out.append("```")
    return out


def method_section() -> list[str]:
    return ["", "### How each figure is measured", "",
            "- records/s and MB/s (10^6 bytes): `rdkafka_performance`'s own final summary "
            "(producer: delivered records over the time from its first produce call to the last "
            "delivery report; consumer: from the first record received).",
            "- broker CPU s/GB: utime + stime of the broker process from `/proc/PID/stat`, "
            "read before and after the workload, divided by the payload GB moved (the "
            "cluster group: the three brokers' CPU added up, over the payload delivered).",
            "- broker peak RSS: the largest VmRSS sampled from `/proc/PID/status` during the "
            "workload (every 100 ms; 500 ms in the long memory run).",
            "- client CPU s: user + system time of `rdkafka_performance` itself (`wait4`).",
            "- Runs are bounded in time; one that hits its limit is stopped with SIGINT and its "
            "rate is over the time it ran (noted in the table).",
            "- Topics are created explicitly with CreateTopics (confluent-kafka's AdminClient), "
            "replication factor 1, before the client starts (the cluster group: as its "
            "commands say, and every replica is in sync before the client starts).",
            "- Profiles (`--profile`): `perf record -a -F 997` during the workload, reported "
            "for the broker's process id (the cluster group: the three brokers' ids together)."]


def write_benchmarks(path: Path, section: str) -> None:
    """Replaces the harness section of BENCHMARKS.md, or inserts it after the title."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if BEGIN in text and END in text:
        before, rest = text.split(BEGIN, 1)
        _, after = rest.split(END, 1)
        text = before + section.rstrip("\n") + after
    else:
        lines = text.splitlines(keepends=True)
        title = 1 if lines and lines[0].startswith("# ") else 0
        text = "".join(lines[:title]) + "\n" + section + "".join(lines[title:])
    path.write_text(text)
