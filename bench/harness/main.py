"""Command line of `bench/run`: choose what to run, build the tools, run, report."""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import sys
from pathlib import Path

from harness import report, tools, workloads
from harness.brokers import BROKERS, Tools
from harness.results import Store

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / "bench" / ".cache"
PLOT = Path("bench") / "plots" / "scaling.png"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench/run",
        description="Benchmark Strom side by side with Tansu using librdkafka's "
                    "rdkafka_performance, print a table and update BENCHMARKS.md.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--quick", action="store_true",
                   help="short runs of every workload (a smoke test, minutes instead of an hour)")
    p.add_argument("--only", default=",".join(workloads.GROUPS),
                   help=f"comma-separated groups to run, from: {', '.join(workloads.GROUPS)}")
    p.add_argument("--brokers", default=",".join(BROKERS),
                   help=f"comma-separated brokers, from: {', '.join(BROKERS)}")
    p.add_argument("--skip-tansu", action="store_true", help="run Strom only")
    p.add_argument("--strom-bin", default=None,
                   help="the Strom binary (default: $STROM_BIN, else "
                        "$CARGO_TARGET_DIR/release/strom, else target/release/strom)")
    p.add_argument("--no-build", action="store_true",
                   help="do not run cargo build for Strom (use the binary as it is)")
    p.add_argument("--profile", action="store_true",
                   help="record Strom with perf during each of its workloads; the report "
                        "shows the hottest symbols for each missed target")
    p.add_argument("--profile-only", action="store_true",
                   help="with --profile: keep the stored numbers and only add the profiles of "
                        "this run to them (so perf's overhead does not bias the figures)")
    p.add_argument("--work-dir", default=str(CACHE / "work"),
                   help="where brokers keep their data (the disk under test)")
    p.add_argument("--fresh", action="store_true",
                   help="forget results of earlier runs instead of merging with them")
    p.add_argument("--no-report", action="store_true", help="do not rewrite BENCHMARKS.md")
    p.add_argument("--report-only", action="store_true",
                   help="only regenerate the table, plot and BENCHMARKS.md from stored results")
    p.add_argument("--self-test", action="store_true",
                   help="run the harness's own tests (bench/tests) and exit")
    p.add_argument("--comment", default="", help="a note on the run, shown in the report")
    p.add_argument("--benchmarks-md", default=str(REPO / "BENCHMARKS.md"),
                   help="the Markdown file whose harness section is rewritten")
    sizes = p.add_argument_group("sizes (defaults depend on --quick)")
    sizes.add_argument("--produce-mb", type=float, help="data per produce run, MB")
    sizes.add_argument("--consume-records", type=int,
                       help="records preloaded and consumed in the 100 B consume workloads")
    sizes.add_argument("--latency-seconds", type=float, help="length of each latency run")
    sizes.add_argument("--memory-gb", type=float, help="data written in the memory-growth run")
    sizes.add_argument("--latency-linger-ms", type=int,
                       help="linger.ms of the latency producer (default 1)")
    sizes.add_argument("--run-timeout", type=float, help="time limit of one produce run, s")
    sizes.add_argument("--memory-brokers", default="strom",
                       help="brokers that get the long memory-growth run")
    sizes.add_argument("--cluster-partitions", default=None,
                       help="comma-separated partition counts of the cluster group's produce "
                            "workloads (default 1,100)")
    sizes.add_argument("--cluster-latency-rate", type=int,
                       help="records/s of the cluster group's latency workload "
                            "(default 20000)")
    return p.parse_args(argv)


def sizes_from(args: argparse.Namespace) -> workloads.Sizes:
    s = workloads.Sizes.quick() if args.quick else workloads.Sizes()
    if args.produce_mb:
        s.produce_bytes = int(args.produce_mb * 1e6)
    if args.consume_records:
        s.consume_records_small = args.consume_records
    if args.latency_seconds:
        s.latency_seconds = args.latency_seconds
    if args.memory_gb:
        s.memory_bytes = int(args.memory_gb * 1e9)
    if args.latency_linger_ms is not None:
        s.latency_linger_ms = args.latency_linger_ms
    if args.run_timeout:
        s.run_timeout_s = args.run_timeout
    if args.cluster_partitions:
        s.cluster_partitions = tuple(int(p) for p in args.cluster_partitions.split(",")
                                     if p.strip())
    if args.cluster_latency_rate:
        s.cluster_latency_rate = args.cluster_latency_rate
    return s


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    os.chdir(REPO)
    if args.self_test:
        import pytest

        return pytest.main(["-q", "-p", "no:cacheprovider", str(REPO / "bench" / "tests")])
    groups = [g.strip() for g in args.only.split(",") if g.strip()]
    unknown = [g for g in groups if g not in workloads.GROUPS]
    broker_names = [b.strip() for b in args.brokers.split(",") if b.strip()]
    unknown += [b for b in broker_names if b not in BROKERS]
    if unknown:
        print(f"unknown group or broker: {', '.join(unknown)}", file=sys.stderr)
        return 2
    broker_names = effective_brokers(groups, broker_names, args.skip_tansu)

    store = Store(CACHE / "results" / "results.json", fresh=args.fresh and not args.report_only)
    if not args.report_only:
        run(args, groups, broker_names, store)
    return write_report(store, None if args.no_report else Path(args.benchmarks_md).resolve())


def effective_brokers(groups: list[str], broker_names: list[str], skip_tansu: bool) -> list[str]:
    """The brokers a run starts. The cluster group runs Strom only, so with no single-node
    group (limits and cluster alone) Tansu is neither installed nor named in the run."""
    if skip_tansu:
        broker_names = [b for b in broker_names if not b.startswith("tansu")]
    if not any(g in workloads.SINGLE_NODE_GROUPS for g in groups):
        broker_names = [b for b in broker_names if b == "strom"]
    return broker_names


def run(args: argparse.Namespace, groups: list[str], broker_names: list[str],
        store: Store) -> None:
    run_id = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    log_dir = CACHE / "results" / run_id
    log_dir.mkdir(parents=True, exist_ok=True)
    work_dir = Path(args.work_dir).resolve()
    if work_dir.exists():
        shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True)

    rdkafka_performance = tools.ensure_rdkafka_performance(CACHE, log_dir)
    tansu = tools.ensure_tansu(CACHE, log_dir) if any(
        b.startswith("tansu") for b in broker_names) else None
    if not args.no_build:
        tools.build_strom(log_dir)
    strom = tools.strom_binary(args.strom_bin)
    if not strom.exists():
        raise SystemExit(f"no Strom binary at {strom} (build it or pass --strom-bin)")
    tool_set = Tools(strom=strom, tansu=tansu, rdkafka_performance=rdkafka_performance)
    if args.profile and shutil.which("perf") is None:
        tools.say("perf is not installed (Debian: linux-perf): running without --profile")
        args.profile = False

    store.add_run(run_id, {
        "quick": args.quick,
        "groups": groups,
        "brokers": broker_names,
        "revision": tools.git_revision(REPO),
        "comment": args.comment,
        "started": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": tools.machine_description(work_dir),
        "tools": {
            "librdkafka": tools.tool_version([str(rdkafka_performance), "-h"]),
            "tansu": tools.tool_version([str(tansu), "--version"]) if tansu else None,
            "strom": tools.tool_version([str(strom), "--version"])
            + f" (revision {tools.git_revision(REPO)})",
        },
    })
    tools.say(f"run {run_id}: groups {', '.join(groups)}; brokers {', '.join(broker_names)}; "
              f"logs in {log_dir}")

    ctx = workloads.Context(
        tools=tool_set, sizes=sizes_from(args), brokers=workloads.selected_brokers(broker_names),
        work_dir=work_dir, log_dir=log_dir, run_id=run_id, profile=args.profile,
        record=store.record_profile if args.profile and args.profile_only else store.record,
    )
    try:
        if "limits" in groups:
            tools.say("measuring the machine's limits (dd, iperf3)")
            store.update_run(run_id, limits=tools.measure_limits(work_dir, args.quick, log_dir))
        if "produce" in groups:
            workloads.run_produce(ctx)
        if "cluster" in groups:
            # Right after the produce group: the cluster's ratios are to its single-node
            # acks=1 figures from the same run, so the two are measured close together.
            if "strom" in broker_names:
                workloads.run_cluster(ctx)
            else:
                tools.say("cluster: skipped (a Strom-only group; strom is not in --brokers)")
        if "consume" in groups:
            workloads.run_consume(ctx)
        if "latency" in groups:
            workloads.run_latency(ctx)
        if "scaling" in groups:
            workloads.run_scaling(ctx)
        if "memory" in groups:
            growth = [b.strip() for b in args.memory_brokers.split(",") if b.strip()]
            workloads.run_memory(ctx, growth)
    finally:
        store.update_run(run_id, finished=datetime.datetime.now().isoformat(timespec="seconds"))
        shutil.rmtree(work_dir, ignore_errors=True)


def write_report(store: Store, markdown_path: Path | None) -> int:
    view = report.View(store.results)
    limits_run = store.latest_run_with("limits")
    limits = store.runs[limits_run]["limits"] if limits_run else None
    print()
    print(report.console(view, limits))
    if markdown_path is None:
        return 0
    plotted = report.plot_scaling(view, REPO / PLOT)
    # The image link is relative to the Markdown file.
    plot_link = os.path.relpath(REPO / PLOT, markdown_path.parent) if plotted else None
    section = report.markdown(view, store.runs, store.used_runs(), limits, plot_link, REPO)
    report.write_benchmarks(markdown_path, section)
    print(f"\nwrote {markdown_path}" + (f" and {PLOT}" if plotted else ""))
    return 0
