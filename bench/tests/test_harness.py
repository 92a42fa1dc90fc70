"""Tests of the harness's pure parts: reading rdkafka_performance's output, percentiles,
the targets' verdicts and the BENCHMARKS.md section replacement.

Run: bench/.cache/venv/bin/python -m pytest bench/tests (after bench/run created the venv).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness import client, report, workloads  # noqa: E402
from harness.results import Store  # noqa: E402

PRODUCER_OUTPUT = """\
% Sending 500000 messages of size 100 bytes
% 226000 messages produced (22600000 bytes), 120000 delivered (offset 6, 0 failed) in 1000ms: 120000 msgs/s and 12.00 MB/s, 3 produce failures, 106000 in queue, no compression
% 500000 messages produced (50000000 bytes), 500000 delivered (offset 6, 0 failed) in 1630ms: 306748 msgs/s and 30.67 MB/s, 12 produce failures, 0 in queue, no compression
"""

CONSUMER_OUTPUT = """\
% Consumer reached end of bench [0] message queue at offset 0
% 400000 messages (40000000 bytes) consumed in 1000ms: 400000 msgs/s (40.00 MB/s)
% 1000000 messages (100000000 bytes) consumed in 512ms: 1953125 msgs/s (195.31 MB/s), latency curr/avg/lo/hi 1.00/2.00/0.50/9.00ms
% Average application fetch latency: 1us
"""


def test_producer_summary_is_the_last_line():
    summary = client.parse_producer_summary(PRODUCER_OUTPUT)
    assert summary.delivered == 500_000
    assert summary.records_per_s == 306_748
    assert summary.mb_per_s == 30.67
    assert summary.produce_failures == 12
    assert summary.in_queue == 0


def test_consumer_summary_is_the_last_line_with_or_without_latency():
    summary = client.parse_consumer_summary(CONSUMER_OUTPUT)
    assert summary.records == 1_000_000
    assert summary.elapsed_ms == 512
    assert summary.records_per_s == 1_953_125
    assert summary.mb_per_s == 195.31


def test_missing_summary_is_none():
    assert client.parse_producer_summary("% Sending 10 messages\n") is None
    assert client.parse_consumer_summary("") is None


def test_percentiles_are_nearest_rank():
    values = list(range(1, 1001))
    assert client.percentile(values, 0.5) == 500
    assert client.percentile(values, 0.99) == 990
    assert client.percentile(values, 0.999) == 999
    assert client.percentile([7], 0.999) == 7


def test_latency_summary_drops_warmup_and_converts_to_ms(tmp_path):
    path = tmp_path / "lat.txt"
    path.write_text("900000\n" * 10 + "\n".join(str(1000 * i) for i in range(1, 101)) + "\n")
    values = client.read_latencies_us(path)
    assert len(values) == 110
    summary = client.latency_summary(values, warmup_records=10)
    assert summary["samples"] == 100
    assert summary["p50_ms"] == 50.0
    assert summary["p99_ms"] == 99.0
    assert summary["max_ms"] == 100.0
    assert client.latency_summary(values[:10], warmup_records=10) is None


def test_producer_command_line_has_the_same_settings_for_every_broker():
    argv = client.producer_argv(Path("/x/rdkafka_performance"), "127.0.0.1:1", "t", size=100,
                                count=5, acks="-1", rate=20_000, latency_file=Path("/f"),
                                conf={"linger.ms": "0"})
    assert argv == ["/x/rdkafka_performance", "-P", "-t", "t", "-b", "127.0.0.1:1", "-s", "100",
                    "-c", "5", "-a", "-1", "-r", "20000", "-l", "-A", "/f", "-X", "linger.ms=0"]
    assert report.normalize_command(client.show(argv)) == (
        "rdkafka_performance -P -t t -b 127.0.0.1:$PORT -s 100 -c 5 -a -1 -r 20000 -l "
        "-A $FILE -X linger.ms=0")


def test_consumer_command_line_names_every_partition():
    argv = client.consumer_argv(Path("p"), "b", "t", partitions=3, count=10, start="beginning",
                                exit_at_end=True)
    assert argv == ["p", "-C", "-t", "t", "-b", "b", "-o", "beginning", "-p", "0", "-p", "1",
                    "-p", "2", "-c", "10", "-e"]


def test_job_reports_exit_code_and_interrupts_at_the_deadline(tmp_path):
    done = client.run(["sh", "-c", "echo hi; exit 3"], tmp_path / "a.log", timeout_s=30)
    assert done.returncode == 3 and not done.interrupted and done.output == "hi\n"
    # The child prints when SIGINT arrives, so the test shows the deadline was enforced.
    stopped = client.run(["sh", "-c", "trap 'echo stopped; exit 0' INT; while :; do sleep 0.05; done"],
                         tmp_path / "b.log", timeout_s=0.5)
    assert stopped.interrupted and "stopped" in stopped.output


def result(group, name, broker, **fields):
    return {"key": f"{group}|{name}|{broker}", "group": group, "name": name, "broker": broker,
            "params": {}, "run_id": "r", "errors": [], **fields}


def test_targets_report_met_missed_and_not_run():
    p1 = report.produce_name(100, "1", 1)
    rows = [
        result("produce", p1, "strom", records_per_s=950_000),
        result("produce", p1, "tansu-null", records_per_s=1_000_000),
        result("produce", p1, "tansu-sqlite", records_per_s=60_000),
        result("latency", report.LATENCY_20K, "strom", p99_ms=7.5, p999_ms=9.0),
    ]
    view = report.View({r["key"]: r for r in rows})
    targets = {t["target"]: t for t in report.evaluate_targets(view)}
    ceiling = targets["Produce 100 B, acks=1, 1 partition: ≥ 90% of Tansu null (client ceiling)"]
    assert ceiling["status"] == "met" and abs(ceiling["value"] - 0.95) < 1e-9
    sqlite = targets["Produce 100 B, acks=1, 1 partition: ≥ 20x Tansu sqlite"]
    assert sqlite["status"] == "MISSED"
    assert targets["End-to-end latency, 1 KiB at 20,000 records/s, acks=all: p99 < 5 ms"][
        "status"] == "MISSED"
    assert targets["End-to-end latency, 1 KiB at 20,000 records/s, acks=all: p99.9 < 15 ms"][
        "status"] == "met"
    assert targets["Idle RSS < 50 MB"]["status"] == "not run"


def test_a_result_with_errors_does_not_count_towards_a_target():
    p1 = report.produce_name(100, "1", 1)
    rows = [result("produce", p1, "strom", records_per_s=950_000, errors=["broker exited"]),
            result("produce", p1, "tansu-null", records_per_s=1_000_000)]
    view = report.View({r["key"]: r for r in rows})
    statuses = {t["target"]: t["status"] for t in report.evaluate_targets(view)}
    assert statuses["Produce 100 B, acks=1, 1 partition: ≥ 90% of Tansu null (client ceiling)"] \
        == "not run"


def test_benchmarks_section_is_inserted_once_then_replaced(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    path.write_text("# Benchmarks\n\n## Storage engine (criterion)\n\nkeep me\n")
    report.write_benchmarks(path, f"{report.BEGIN}\nfirst\n{report.END}\n")
    report.write_benchmarks(path, f"{report.BEGIN}\nsecond\n{report.END}\n")
    text = path.read_text()
    assert text.count(report.BEGIN) == 1 and "second" in text and "first" not in text
    assert text.index("second") < text.index("## Storage engine (criterion)")
    assert text.endswith("## Storage engine (criterion)\n\nkeep me\n")


def test_rss_growth_compares_the_end_with_a_fifth_of_the_way():
    samples = [(float(t), 100_000 + 1024 * t, 50_000 + 1024 * t, 50_000) for t in range(101)]
    growth = workloads.rss_growth(samples)
    assert growth["rss_growth_last_80pct_mb"] == 80.0
    assert growth["anon_growth_last_80pct_mb"] == 80.0
    assert growth["rss_at_100pct_mb"] == round((100_000 + 102_400) / 1024, 1)


def test_profile_only_runs_add_profiles_and_keep_the_numbers(tmp_path):
    store = Store(tmp_path / "results.json", fresh=True)
    store.record({"key": "consume|c|strom", "run_id": "a", "records_per_s": 100})
    store.record_profile({"key": "consume|c|strom", "run_id": "b", "records_per_s": 90,
                          "profile": "10% memcpy"})
    store.record_profile({"key": "consume|never measured|strom", "run_id": "b",
                          "profile": "x"})
    reloaded = Store(tmp_path / "results.json", fresh=False)
    assert reloaded.results == {"consume|c|strom": {
        "key": "consume|c|strom", "run_id": "a", "records_per_s": 100,
        "profile": "10% memcpy", "profile_run_id": "b", "profile_run_records_per_s": 90}}
