"""The tools a run needs, built or installed into bench/.cache/, and the machine's own limits.

Owns: the librdkafka build (the sources that the `rdkafka-sys` crate ships, fetched with
cargo), the Tansu install (`cargo install` from crates.io, cached by version), the Strom release
build, the machine description, and the physical limits every figure is read against: sequential
writes with and without fdatasync, synchronous small writes (an fsync rate) and loopback TCP.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import time
from pathlib import Path

RDKAFKA_SYS_VERSION = "4.10.0+2.12.1"
TANSU_VERSION = "0.6.0"
LIBRDKAFKA_CONFIGURE = ["--disable-ssl", "--disable-gssapi", "--disable-curl", "--disable-sasl"]


def say(message: str) -> None:
    print(f"== {message}", flush=True)


def _run(argv: list[str], log_path: Path, cwd: Path | None = None,
         env: dict[str, str] | None = None) -> None:
    """Runs a build step with its output in a log; raises with the log's tail on failure."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        log.write(f"\n$ {' '.join(argv)}\n".encode())
        log.flush()
        result = subprocess.run(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}); "
                           f"log {log_path}:\n{tail}")


def _env_without_target_dir() -> dict[str, str]:
    # The caller's CARGO_TARGET_DIR is for Strom; other builds must not land in it.
    env = dict(os.environ)
    env.pop("CARGO_TARGET_DIR", None)
    return env


def librdkafka_sources(cache: Path, log_dir: Path) -> Path:
    """The librdkafka tree inside the rdkafka-sys crate, fetched into cargo's registry."""
    manifest_dir = cache / "rdkafka-sys-fetch"
    (manifest_dir / "src").mkdir(parents=True, exist_ok=True)
    (manifest_dir / "Cargo.toml").write_text(
        "[package]\nname = \"fetch-librdkafka\"\nversion = \"0.0.0\"\nedition = \"2021\"\n"
        "publish = false\n\n[dependencies]\n"
        f"rdkafka-sys = {{ version = \"={RDKAFKA_SYS_VERSION.split('+')[0]}\", "
        "default-features = false }\n\n[workspace]\n"
    )
    (manifest_dir / "src" / "main.rs").write_text("fn main() {}\n")
    _run(["cargo", "fetch"], log_dir / "librdkafka-build.log", cwd=manifest_dir,
         env=_env_without_target_dir())
    metadata = subprocess.run(
        ["cargo", "metadata", "--format-version", "1"], cwd=manifest_dir, check=True,
        capture_output=True, text=True, env=_env_without_target_dir(),
    )
    for package in json.loads(metadata.stdout)["packages"]:
        if package["name"] == "rdkafka-sys":
            return Path(package["manifest_path"]).parent / "librdkafka"
    raise RuntimeError("cargo metadata did not list rdkafka-sys")


def ensure_rdkafka_performance(cache: Path, log_dir: Path) -> Path:
    """Builds rdkafka_performance once; later runs reuse the cached binary."""
    tree = cache / f"librdkafka-{RDKAFKA_SYS_VERSION}"
    tool = tree / "examples" / "rdkafka_performance"
    if tool.exists():
        return tool
    say(f"building librdkafka {RDKAFKA_SYS_VERSION.split('+')[1]} and rdkafka_performance "
        f"(log: {log_dir / 'librdkafka-build.log'})")
    sources = librdkafka_sources(cache, log_dir)
    if tree.exists():
        shutil.rmtree(tree)
    # Build in a copy: the registry's tree is shared with every cargo build on the machine.
    shutil.copytree(sources, tree)
    log = log_dir / "librdkafka-build.log"
    _run(["./configure", *LIBRDKAFKA_CONFIGURE], log, cwd=tree)
    jobs = str(os.cpu_count() or 1)
    _run(["make", "-j", jobs, "-C", "src", "librdkafka.a", "librdkafka.so.1"], log, cwd=tree)
    _run(["make", "-C", "examples", "rdkafka_performance"], log, cwd=tree)
    if not tool.exists():
        raise RuntimeError(f"the build did not produce {tool}")
    return tool


def ensure_tansu(cache: Path, log_dir: Path) -> Path:
    """Installs Tansu from crates.io once (about 15 minutes); later runs reuse the binary."""
    root = cache / f"tansu-{TANSU_VERSION}"
    binary = root / "bin" / "tansu"
    if binary.exists():
        return binary
    log = log_dir / "tansu-install.log"
    say(f"installing Tansu {TANSU_VERSION} with cargo install, about 15 minutes (log: {log})")
    _run(["cargo", "install", "tansu", "--version", TANSU_VERSION, "--locked",
          "--features", "dynostore,libsql", "--root", str(root)], log,
         env=_env_without_target_dir())
    return binary


def strom_binary(option: str | None) -> Path:
    """--strom-bin, else STROM_BIN, else $CARGO_TARGET_DIR/release/strom, else target/."""
    if option:
        return Path(option).resolve()
    if os.environ.get("STROM_BIN"):
        return Path(os.environ["STROM_BIN"]).resolve()
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    return (Path(target) / "release" / "strom").resolve()


def build_strom(log_dir: Path) -> None:
    say("building Strom: cargo build --release -p strom")
    _run(["cargo", "build", "--release", "-p", "strom"], log_dir / "strom-build.log")


def tool_version(argv: list[str]) -> str:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unknown ({e})"
    text = (result.stdout + result.stderr).strip()
    m = re.search(r"librdkafka version (\S+)", text)
    if m:
        return f"librdkafka {m[1]}"
    return text.splitlines()[0] if text else "unknown"


def _first(path: str, key: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def machine_description(work_dir: Path) -> dict:
    """CPU, cores, memory, kernel and the disk that holds the brokers' data."""
    mem_kb = _first("/proc/meminfo", "MemTotal").split()[0]
    description = {
        "cpu": _first("/proc/cpuinfo", "model name"),
        "cores": os.cpu_count(),
        "memory_gib": round(int(mem_kb) / 1024 / 1024, 1) if mem_kb.isdigit() else None,
        "kernel": platform.release(),
        "hypervisor": None,
        "disk": "unknown",
    }
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        m = re.search(r"Hypervisor vendor:\s*(\S+)", lscpu)
        description["hypervisor"] = m[1] if m else None
    except (OSError, subprocess.TimeoutExpired):
        pass
    try:
        found = subprocess.run(["findmnt", "-n", "-o", "SOURCE,FSTYPE", "--target",
                                str(work_dir)], capture_output=True, text=True, timeout=10)
        source, fstype = found.stdout.split()[:2]
        disk = f"{fstype} on {source}"
        device = Path(source).name
        size = Path(f"/sys/block/{device}/size")
        if size.exists():
            disk += f", {int(size.read_text()) * 512 / 1e9:.0f} GB"
        if device.startswith("vd"):
            disk += " (virtio)"
        description["disk"] = disk
    except (OSError, ValueError, subprocess.TimeoutExpired):
        pass
    return description


def git_revision(repo: Path) -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo,
                             capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=repo, capture_output=True, text=True, timeout=30).stdout
        return rev + ("+uncommitted changes" if dirty.strip() else "")
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


DD_RESULT = re.compile(r"(\d+) bytes .*copied, ([\d.]+) s")


def _dd(args: list[str], target: Path, tries: int) -> tuple[int, float, str]:
    """The best of `tries` runs: a limit is what the machine can do, and on a shared machine a
    single run often measures someone else's writeback instead."""
    argv = ["dd", "if=/dev/zero", f"of={target}", *args]
    best = None
    for _ in range(tries):
        subprocess.run(["sync"], timeout=300)
        result = subprocess.run(argv, capture_output=True, text=True, timeout=900,
                                env={**os.environ, "LC_ALL": "C"})
        target.unlink(missing_ok=True)
        m = DD_RESULT.search(result.stderr)
        if result.returncode != 0 or not m:
            raise RuntimeError(f"{' '.join(argv)} failed: {result.stderr.strip()}")
        written, seconds = int(m[1]), float(m[2])
        if best is None or seconds < best[1]:
            best = (written, seconds)
    subprocess.run(["sync"], timeout=300)
    return best[0], best[1], " ".join(argv).replace(str(target), "FILE")


def measure_limits(work_dir: Path, quick: bool, log_dir: Path) -> list[dict]:
    """The machine's limits, each as a dictionary with its value, unit and command."""
    work_dir.mkdir(parents=True, exist_ok=True)
    target = work_dir / "dd.bin"
    mib = 512 if quick else 2048
    limits = []

    tries = 2 if quick else 3
    written, seconds, cmd = _dd(["bs=1M", f"count={mib}"], target, tries)
    limits.append({"name": "sequential write, page cache (no sync)",
                   "value": written / seconds / 1e6, "unit": "MB/s", "command": cmd})
    written, seconds, cmd = _dd(["bs=1M", f"count={mib}", "conv=fdatasync"], target, tries)
    limits.append({"name": "sequential write + fdatasync at the end",
                   "value": written / seconds / 1e6, "unit": "MB/s", "command": cmd})
    count = 500 if quick else 2000
    written, seconds, cmd = _dd(["bs=4k", f"count={count}", "oflag=dsync"], target, tries)
    limits.append({"name": "synchronous 4 KiB appends (one fsync each)",
                   "value": count / seconds, "unit": "writes/s", "command": cmd})

    limits.append(measure_loopback(3 if quick else 10, log_dir))
    return limits


def port_listening(port: int) -> bool:
    """Whether some socket listens on the TCP port (IPv4 or IPv6), without connecting to it:
    a probe connection would use up the one test `iperf3 -s -1` serves."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                return True
    return False


def measure_loopback(seconds: int, log_dir: Path) -> dict:
    from harness.brokers import free_port
    from harness.client import Job

    port = free_port()
    server = Job(["iperf3", "-s", "-1", "-p", str(port)], log_dir / "iperf3-server.log")
    deadline = time.monotonic() + 10
    while not port_listening(port):
        if time.monotonic() > deadline or not server.alive():
            server.interrupt()
            raise RuntimeError("iperf3 server did not start")
        time.sleep(0.05)
    argv = ["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", str(seconds), "-J"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    server.finish(timeout_s=30)
    report = json.loads(result.stdout)
    bits = report["end"]["sum_received"]["bits_per_second"]
    return {"name": "loopback TCP, one stream (iperf3)", "value": bits / 8 / 1e6,
            "unit": "MB/s", "command": " ".join(argv).replace(str(port), "PORT")}
