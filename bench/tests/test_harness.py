"""Tests of the harness's pure parts: reading rdkafka_performance's output, percentiles,
the targets' verdicts and the BENCHMARKS.md section replacement.

Run: bench/.cache/venv/bin/python -m pytest bench/tests (after bench/run created the venv).
"""

import sys
import time
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


# ---------------------------------------------------------------------------------------------
# the cluster group

from harness import brokers, main  # noqa: E402

STARTED_LINE = ('{"timestamp":"2026-12-07T03:18:34.087163Z","level":"INFO","fields":{"message":'
                '"broker started","listen":"127.0.0.1:47799","node_id":"3"},'
                '"target":"strom_broker::server"}')


def test_the_broker_started_line_gives_the_listen_address():
    before = ('{"level":"INFO","fields":{"message":"registered with the controller"}}\n'
              "not json, but mentions broker started\n")
    assert brokers.started_listen_address(before) is None
    assert brokers.started_listen_address(before + STARTED_LINE + "\n") == "127.0.0.1:47799"


def test_log_problems_counts_error_lines_and_panics():
    log = "\n".join([STARTED_LINE, '{"level":"ERROR","fields":{"message":"x"}}',
                     '{"level":"WARN","fields":{"message":"y"}}'])
    errors, panicked = brokers.log_problems(log)
    assert len(errors) == 1 and not panicked
    assert brokers.log_problems("thread 'main' panicked at src/x.rs")[1]


def test_cluster_nodes_share_the_quorum_and_have_their_own_ports_and_directories():
    quorum = "1@127.0.0.1:11,2@127.0.0.1:12,3@127.0.0.1:13"
    argv = brokers.cluster_node_command(Path("/b/strom"), 2, Path("/d/n2"), 22, 12, quorum)
    assert argv == ["/b/strom", "broker", "--node-id", "2", "--data-dir", "/d/n2",
                    "--listen", "127.0.0.1:22", "--controller-listen", "127.0.0.1:12",
                    "--controller-quorum", quorum, "--log-format", "json", "--log-level", "info"]
    ports = brokers.free_ports(6)
    assert len(set(ports)) == 6


def test_a_cluster_is_launched_together_and_stopped_together(tmp_path):
    # A stand-in for strom: logs "broker started" and exits 0 on SIGTERM.
    fake = tmp_path / "strom"
    fake.write_text("#!/bin/sh\ntrap 'exit 0' TERM\n"
                    f"echo '{STARTED_LINE}' >&2\n"
                    "while :; do sleep 0.05; done\n")
    fake.chmod(0o755)
    tools = brokers.Tools(strom=fake, tansu=None, rdkafka_performance=Path("rdkafka_performance"))
    cluster = brokers.RunningCluster(tools, tmp_path / "work", tmp_path / "logs", "t")
    argvs = [n.argv for n in cluster.nodes.values()]
    assert [a[a.index("--node-id") + 1] for a in argvs] == ["1", "2", "3"]
    assert len({a[a.index("--controller-quorum") + 1] for a in argvs}) == 1
    assert len({a[a.index("--listen") + 1] for a in argvs}) == 3
    assert cluster.bootstrap.count(",") == 2
    names = cluster.placeholders()
    assert names[cluster.nodes[2].bootstrap] == "127.0.0.1:$PORT2"
    assert names[str(cluster.nodes[3].data_dir)] == "$DATA3"
    deadline = time.monotonic() + 10
    while not all(brokers.started_listen_address(n.log_path.read_text())
                  for n in cluster.nodes.values()):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert cluster.problems() == [] and cluster.error_lines() == {}
    started = time.monotonic()
    assert cluster.stop() == {1: 0, 2: 0, 3: 0}
    assert time.monotonic() - started < 10
    assert not any(n.data_dir.exists() for n in cluster.nodes.values())


def test_cluster_measurements_add_cpu_and_keep_the_largest_memory():
    a = brokers.Measurement(cpu_s=1.5, peak_rss_mb=20, peak_anon_mb=10, peak_file_mb=10,
                            hwm_mb=21, samples=[(0.0, 1, 1, 1)])
    b = brokers.Measurement(cpu_s=0.5, peak_rss_mb=30, peak_anon_mb=5, peak_file_mb=25,
                            hwm_mb=31, samples=[])
    m = brokers.combine_measurements([a, b])
    assert (m.cpu_s, m.peak_rss_mb, m.peak_anon_mb, m.peak_file_mb, m.hwm_mb) == (
        2.0, 30, 10, 25, 31)
    result = {}
    workloads.add_cluster_measurement(result, [a, b], 2_000_000_000)
    assert result["cpu_s_per_gb"] == 1.0 and result["broker_cpu_s_by_node"] == [1.5, 0.5]


def test_leaders_are_counted_per_node():
    placement = {0: {"leader": 2}, 1: {"leader": 2}, 2: {"leader": 3}}
    assert workloads.leaders_by_node(placement, [1, 2, 3]) == {"1": 0, "2": 2, "3": 1}


def test_cluster_workload_names_and_topic_configs():
    assert workloads.cluster_produce_name(100, workloads.CLUSTER_REPLICATED, 1) == (
        "cluster produce 100 B, RF=3 acks=all min.insync.replicas=2, 1 partition")
    assert workloads.cluster_produce_name(1024, workloads.CLUSTER_BASELINE, 100) == (
        "cluster produce 1 KiB, RF=1 acks=1, 100 partitions")
    assert workloads.CLUSTER_REPLICATED.topic_config == {"min.insync.replicas": "2"}
    assert workloads.CLUSTER_BASELINE.topic_config == {}


def test_only_cluster_starts_no_tansu_and_cluster_sizes_have_options():
    everyone = ["strom", "tansu-null", "tansu-sqlite"]
    assert main.effective_brokers(["cluster"], everyone, False) == ["strom"]
    assert main.effective_brokers(["produce", "cluster"], everyone, False) == everyone
    assert main.effective_brokers(["produce"], everyone, True) == ["strom"]
    args = main.parse_args(["--quick", "--only", "cluster", "--cluster-partitions", "1,10",
                            "--cluster-latency-rate", "5000"])
    sizes = main.sizes_from(args)
    assert sizes.cluster_partitions == (1, 10) and sizes.cluster_latency_rate == 5000
    assert sizes.produce_bytes == workloads.Sizes.quick().produce_bytes
    assert "cluster" in workloads.GROUPS


def test_cluster_commands_name_each_nodes_ports_and_directories():
    names = {"127.0.0.1:4120": "127.0.0.1:$PORT1", "127.0.0.1:41205": "127.0.0.1:$PORT2",
             "127.0.0.1:5000": "127.0.0.1:$CPORT1", "/w/t-node-1": "$DATA1"}
    command = ("/x/target/release/strom broker --node-id 1 --data-dir /w/t-node-1 "
               "--listen 127.0.0.1:4120 --controller-quorum 1@127.0.0.1:5000 "
               "-b 127.0.0.1:4120,127.0.0.1:41205,127.0.0.1:999")
    assert report.substitute(command, names) == (
        "target/release/strom broker --node-id 1 --data-dir $DATA1 --listen 127.0.0.1:$PORT1 "
        "--controller-quorum 1@127.0.0.1:$CPORT1 "
        "-b 127.0.0.1:$PORT1,127.0.0.1:$PORT2,127.0.0.1:$PORT")


def cluster_result(size, setup, partitions, run_id="r", **fields):
    name = workloads.cluster_produce_name(size, setup, partitions)
    params = workloads.cluster_params(setup, size=size, partitions=partitions, count=1,
                                      kind="produce")
    return {**result("cluster", name, "strom", **fields), "params": params, "run_id": run_id}


def cluster_view(single_run="r", single=1_000_000, rf1=900_000, rf3=600_000, **rf3_fields):
    rows = [
        {**result("produce", report.produce_name(100, "1", 1), "strom", records_per_s=single),
         "run_id": single_run},
        cluster_result(100, workloads.CLUSTER_BASELINE, 1, records_per_s=rf1),
        cluster_result(100, workloads.CLUSTER_REPLICATED, 1, records_per_s=rf3, **rf3_fields),
    ]
    return report.View({r["key"]: r for r in rows})


def cluster_targets(view):
    return {t["target"]: t for t in report.evaluate_targets(view)}


def test_cluster_target_is_half_the_single_node_acks_1_of_the_same_run():
    target = report.cluster_target_name(100, 1)
    assert target == ("Cluster, produce 100 B, 1 partition: RF=3 acks=all ≥ 0.5 x "
                      "single-node acks=1")
    met = cluster_targets(cluster_view())[target]
    assert met["status"] == "met" and abs(met["value"] - 0.6) < 1e-9
    assert "0.67 x in-cluster RF=1 acks=1" in met["measured"]
    rf3_name = workloads.cluster_produce_name(100, workloads.CLUSTER_REPLICATED, 1)
    assert met["keys"] == [f"cluster|{rf3_name}|strom"]
    assert cluster_targets(cluster_view(rf3=400_000))[target]["status"] == "MISSED"
    other_run = cluster_targets(cluster_view(single_run="older"))[target]
    assert other_run["status"] == "missing" and other_run["value"] is None
    assert "measured in run older" in other_run["measured"]
    broken = cluster_targets(cluster_view(errors=["node 2 exited"]))[target]
    assert broken["status"] == "not run"
    assert cluster_targets(cluster_view())[report.cluster_target_name(1024, 100)][
        "status"] == "not run"


def test_cluster_ratio_cells():
    view = cluster_view()
    rf1 = view.get("cluster", workloads.cluster_produce_name(100, workloads.CLUSTER_BASELINE, 1),
                   "strom")
    rf3 = view.get("cluster",
                   workloads.cluster_produce_name(100, workloads.CLUSTER_REPLICATED, 1), "strom")
    assert report.cluster_ratio_cells(view, rf1) == ("0.90", "–")
    assert report.cluster_ratio_cells(view, rf3) == ("0.60", "0.67")
    assert report.cluster_ratio_cells(cluster_view(single_run="older"), rf3) == ("missing",
                                                                                  "0.67")
    latency = {**result("cluster", "cluster latency", "strom"), "params": {"kind": "latency"}}
    assert report.cluster_ratio_cells(view, latency) == ("–", "–")


def test_markdown_has_a_cluster_section_with_its_target_commands_and_profile():
    names = {"127.0.0.1:4001": "127.0.0.1:$PORT1", "/w/n1": "$DATA1"}
    view = cluster_view(
        rf3=400_000, profile="  30.00%  strom  [.] crc32c", placeholders=names,
        broker_commands=["/t/release/strom broker --node-id 1 --data-dir /w/n1 "
                         "--listen 127.0.0.1:4001"],
        command="/c/rdkafka_performance -P -t bench -b 127.0.0.1:4001 -s 100 -a -1",
        topic={"name": "bench", "partitions": 1, "replication_factor": 3,
               "config": {"min.insync.replicas": "2"}},
        broker_cpu_s_by_node=[1.0, 0.5, 0.5], leaders_by_node={"1": 1, "2": 0, "3": 0})
    text = report.markdown(view, {"r": {"groups": ["produce", "cluster"]}}, ["r"], None, None,
                           Path("."))
    section = text[text.index("### Cluster"):text.index("### Missed targets")]
    row = next(l for l in section.splitlines() if l.startswith("| cluster produce 100 B, RF=3"))
    assert "| 400,000 |" in row and "| 0.40 | 0.44 |" in row
    assert "| 1.00/0.50/0.50 | 1/0/0 |" in row
    assert ("- Cluster, produce 100 B, 1 partition: RF=3 acks=all ≥ 0.5 x single-node acks=1: "
            "**MISSED**, ratio 0.40") in section
    assert "target/release/strom broker --node-id 1 --data-dir $DATA1 --listen 127.0.0.1:$PORT1" \
        in section
    assert ("# cluster produce 100 B, RF=3 acks=all min.insync.replicas=2, 1 partition (topic "
            "`bench` created with 1 partition, replication factor 3, min.insync.replicas=2)\n"
            "rdkafka_performance -P -t bench -b 127.0.0.1:$PORT1 -s 100 -a -1") in section
    assert "30.00%  strom  [.] crc32c" in section
    missed = text[text.index("### Missed targets"):]
    assert "in the Cluster section" in missed and "crc32c" not in missed
    assert report.console(view, None).count("cluster produce 100 B") == 2
