//! `strom cluster up`: a local N-node cluster on loopback, in the foreground, for development.
//!
//! ```text
//!   plan (pure)          ports, the controller quorum, data dirs, each node's command line
//!     |
//!   spawn N children     `strom broker ...` (this binary), JSON logs on a stderr pipe
//!     |                    log task per node: stderr -> <data-dir>/node-N.log, and
//!     |                    Event::Started on the "broker started" line
//!     |                    supervisor per node: Event::Exited when the child ends by itself,
//!     |                    SIGTERM (then SIGKILL after STOP_TIMEOUT) when told to stop
//!   wait for every Started (bounded by --start-timeout-ms), print the summary
//!     |
//!   Ctrl-C / SIGTERM -> stop every node and wait; a node exiting by itself is reported and
//!   the others keep running, so it can be restarted by hand with its printed command.
//! ```
//!
//! The children run in their own process groups: a Ctrl-C in the terminal reaches only this
//! process, which then stops the nodes itself, so an orderly stop is never mistaken for a
//! node that died.

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStderr, Command};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::common::{outln, parse_key_value, runtime, usage};
use crate::table::Table;

/// The most nodes `cluster up` starts: a development cluster, not a load test of the host.
const MAX_NODES: u16 = 32;
/// How long a node may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for a node's log to be written out once the node has exited.
const LOG_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// The log line a broker prints once it serves clients.
const STARTED_MESSAGE: &str = "broker started";
/// Command-line variables of `strom broker` that would give every node the same value (and
/// so the same port or directory); each node gets its own through flags instead.
const PER_NODE_ENV_VARS: &[&str] = &[
    "STROM_DATA_DIR",
    "STROM_NODE_ID",
    "STROM_LISTEN",
    "STROM_CONTROLLER_LISTEN",
    "STROM_CONTROLLER_QUORUM",
    "STROM_ADVERTISE",
    "STROM_HTTP",
];

#[derive(Debug, Args)]
#[command(
    about = "Start a local cluster of N nodes on loopback, in the foreground (for development)",
    long_about = "Start a local cluster for development: N `strom broker` processes on \
        127.0.0.1, each a broker and a voter of the metadata quorum. Node i (from 1) listens \
        for clients on BASE-PORT+i-1 and for the quorum on CONTROLLER-BASE-PORT+i-1, keeps \
        its data in DATA-DIR/node-i and its JSON log in DATA-DIR/node-i.log.\n\n\
        Once every node has started it prints each node's id, pid, addresses and log file, \
        the bootstrap servers, and the command that restarts each node. It then runs in the \
        foreground: Ctrl-C or SIGTERM stops every node (SIGTERM, then SIGKILL after 30s). A \
        node that exits by itself (kill -9 PID) is reported and the others keep running; \
        restart it from another terminal with its printed command. Running it again with \
        the same --data-dir restarts the cluster with its data; delete the directory for a \
        fresh cluster.",
    after_help = "Examples:\n  \
        strom cluster up\n  \
        strom cluster up --nodes 5 --data-dir /tmp/strom5\n  \
        strom cluster up --base-port 19092 --controller-base-port 19192 --http-base-port 18080\n  \
        strom cluster up --set num.partitions=6 --set default.replication.factor=3"
)]
pub struct UpArgs {
    /// Number of nodes (each a broker and a quorum voter).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 3,
        value_parser = clap::value_parser!(u16).range(1..=i64::from(MAX_NODES))
    )]
    nodes: u16,
    /// Client port of node 1; node i listens on PORT+i-1.
    #[arg(long, value_name = "PORT", default_value_t = 9092)]
    base_port: u16,
    /// Controller (quorum) port of node 1; node i listens on PORT+i-1.
    #[arg(long, value_name = "PORT", default_value_t = 9192)]
    controller_base_port: u16,
    /// Serve HTTP (/metrics, /health, admin API) on PORT+i-1 for node i. Default: no HTTP.
    #[arg(long, value_name = "PORT")]
    http_base_port: Option<u16>,
    /// Directory for the nodes' data (node-i) and logs (node-i.log).
    #[arg(long, value_name = "DIR", default_value = "./strom-cluster")]
    data_dir: PathBuf,
    /// Set a broker property on every node, with Kafka's name (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// The nodes' log level or filter (written to their log files).
    #[arg(long, value_name = "LEVEL", default_value = "info")]
    node_log_level: String,
    /// How long to wait for every node to start.
    #[arg(long, value_name = "MS", default_value_t = 60_000)]
    start_timeout_ms: u64,
}

/// One node of the planned cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NodePlan {
    id: i32,
    client_address: String,
    controller_address: String,
    http_address: Option<String>,
    data_dir: PathBuf,
    log_file: PathBuf,
}

/// Everything about the cluster that follows from the arguments, before any process runs.
#[derive(Debug, Clone)]
struct ClusterPlan {
    /// The `strom` binary the nodes run.
    program: PathBuf,
    data_dir: PathBuf,
    nodes: Vec<NodePlan>,
    /// `1@127.0.0.1:9192,...`: every node's `--controller-quorum`.
    controller_quorum: String,
    set: Vec<String>,
}

/// A port range `[first, first + count)` that must fit in u16, for the error messages.
fn port_range(flag: &str, first: u16, count: u16) -> Result<std::ops::Range<u32>, String> {
    let end = u32::from(first) + u32::from(count);
    if first == 0 {
        return Err(format!("{flag} must be a port from 1 to 65535"));
    }
    if end > u32::from(u16::MAX) + 1 {
        return Err(format!(
            "{flag} {first}: {count} nodes need ports up to {}, beyond 65535",
            end - 1
        ));
    }
    Ok(u32::from(first)..end)
}

fn overlaps(a: &std::ops::Range<u32>, b: &std::ops::Range<u32>) -> bool {
    a.start < b.end && b.start < a.end
}

/// The cluster the arguments describe. `data_dir` should be absolute so the printed restart
/// commands work from any directory.
fn plan(args: &UpArgs, program: PathBuf, data_dir: PathBuf) -> Result<ClusterPlan, String> {
    let count = args.nodes;
    let mut ranges = vec![
        (
            "--base-port",
            port_range("--base-port", args.base_port, count)?,
        ),
        (
            "--controller-base-port",
            port_range("--controller-base-port", args.controller_base_port, count)?,
        ),
    ];
    if let Some(http) = args.http_base_port {
        ranges.push((
            "--http-base-port",
            port_range("--http-base-port", http, count)?,
        ));
    }
    for (i, (flag_a, a)) in ranges.iter().enumerate() {
        for (flag_b, b) in &ranges[i + 1..] {
            if overlaps(a, b) {
                return Err(format!(
                    "{flag_a} and {flag_b} overlap: ports {}-{} and {}-{}",
                    a.start,
                    a.end - 1,
                    b.start,
                    b.end - 1
                ));
            }
        }
    }
    for item in &args.set {
        parse_key_value(item).map_err(|e| format!("--set: {e}"))?;
    }
    let nodes: Vec<NodePlan> = (0..count)
        .map(|i| {
            let id = i32::from(i) + 1;
            let port = |base: u16| format!("127.0.0.1:{}", u32::from(base) + u32::from(i));
            NodePlan {
                id,
                client_address: port(args.base_port),
                controller_address: port(args.controller_base_port),
                http_address: args.http_base_port.map(&port),
                data_dir: data_dir.join(format!("node-{id}")),
                log_file: data_dir.join(format!("node-{id}.log")),
            }
        })
        .collect();
    let controller_quorum = nodes
        .iter()
        .map(|n| format!("{}@{}", n.id, n.controller_address))
        .collect::<Vec<_>>()
        .join(",");
    Ok(ClusterPlan {
        program,
        data_dir,
        nodes,
        controller_quorum,
        set: args.set.clone(),
    })
}

impl ClusterPlan {
    /// The arguments of `strom` that run `node`.
    fn broker_args(&self, node: &NodePlan) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "broker".into(),
            "--node-id".into(),
            node.id.to_string(),
            "--listen".into(),
            node.client_address.clone(),
            "--controller-listen".into(),
            node.controller_address.clone(),
            "--controller-quorum".into(),
            self.controller_quorum.clone(),
            "--data-dir".into(),
            node.data_dir.display().to_string(),
        ];
        if let Some(http) = &node.http_address {
            args.extend(["--http".into(), http.clone()]);
        }
        for item in &self.set {
            args.extend(["--set".into(), item.clone()]);
        }
        args
    }

    /// The command line that runs `node`, quoted for a POSIX shell.
    fn command_line(&self, node: &NodePlan) -> String {
        std::iter::once(self.program.display().to_string())
            .chain(self.broker_args(node))
            .map(|word| shell_quote(&word))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// `127.0.0.1:9092,127.0.0.1:9093,...`
    fn bootstrap_servers(&self) -> String {
        self.nodes
            .iter()
            .map(|n| n.client_address.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// `word` as a POSIX shell reads it back: unchanged when it has no special characters, in
/// single quotes otherwise.
fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@,=+%".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The nodes' log filter: the requested one, plus info for the module that prints
/// [`STARTED_MESSAGE`] when the requested one would hide it (this command waits for that
/// line). A filter that already shows info everywhere is passed unchanged.
fn node_log_filter(requested: &str) -> String {
    let global = requested
        .split(',')
        .map(str::trim)
        .rfind(|d| !d.is_empty() && !d.contains('='));
    let shows_info = matches!(
        global.map(str::to_ascii_lowercase).as_deref(),
        Some("info" | "debug" | "trace")
    );
    if shows_info {
        requested.to_owned()
    } else {
        format!("{requested},strom_broker::server=info")
    }
}

/// The summary printed once every node has started.
fn summary_text(plan: &ClusterPlan, pids: &[u32]) -> String {
    let with_http = plan.nodes.iter().any(|n| n.http_address.is_some());
    let mut header = vec!["NODE", "PID", "CLIENT", "CONTROLLER"];
    if with_http {
        header.push("HTTP");
    }
    header.push("LOG");
    let mut table = Table::new(&header);
    for (node, pid) in plan.nodes.iter().zip(pids) {
        let mut row = vec![
            node.id.to_string(),
            pid.to_string(),
            node.client_address.clone(),
            node.controller_address.clone(),
        ];
        if with_http {
            row.push(node.http_address.clone().unwrap_or_else(|| "-".into()));
        }
        row.push(node.log_file.display().to_string());
        table.row(row);
    }
    let bootstrap = plan.bootstrap_servers();
    let mut out = format!(
        "Started a {}-node cluster, data in {}\n\n{}\nBootstrap servers: {bootstrap}\n  \
         strom cluster describe -b {bootstrap}\n\n",
        plan.nodes.len(),
        plan.data_dir.display(),
        table.render()
    );
    if let (Some(node), Some(pid)) = (plan.nodes.last(), pids.last()) {
        out.push_str(&format!(
            "Kill a node with kill -9 PID (node {}: kill -9 {pid}); the others keep running.\n",
            node.id
        ));
    }
    out.push_str("Restart a node from another terminal with its command:\n");
    for node in &plan.nodes {
        out.push_str(&format!(
            "  node {}: {}\n",
            node.id,
            plan.command_line(node)
        ));
    }
    out.push_str("\nCtrl-C stops every node.");
    out
}

pub fn run(args: UpArgs) -> anyhow::Result<()> {
    let program = std::env::current_exe().context("cannot find the strom binary")?;
    // The arguments are checked before anything is created on disk.
    if let Err(reason) = plan(&args, program.clone(), args.data_dir.clone()) {
        usage!("{reason}");
    }
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
    let data_dir = std::fs::canonicalize(&args.data_dir)
        .with_context(|| format!("cannot resolve {}", args.data_dir.display()))?;
    let plan = plan(&args, program, data_dir).map_err(anyhow::Error::msg)?;
    let log_files = plan
        .nodes
        .iter()
        .map(|node| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&node.log_file)
                .map(tokio::fs::File::from_std)
                .with_context(|| format!("cannot open {}", node.log_file.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let settings = Settings {
        log_filter: node_log_filter(&args.node_log_level),
        start_timeout: Duration::from_millis(args.start_timeout_ms.max(1)),
    };
    runtime()?.block_on(run_cluster(plan, log_files, settings))
}

/// How the nodes are run, from the arguments.
struct Settings {
    /// The nodes' `STROM_LOG_LEVEL`.
    log_filter: String,
    start_timeout: Duration,
}

/// What the node tasks report, by node index.
#[derive(Debug)]
enum Event {
    Started(usize),
    /// The node ended without being told to stop.
    Exited(usize, ExitStatus),
}

/// How a node's process ended.
#[derive(Debug)]
enum NodeExit {
    /// By itself, before the cluster was stopped (already reported).
    BeforeStop,
    /// After SIGTERM.
    Stopped(ExitStatus),
    /// Still running STOP_TIMEOUT after SIGTERM, so killed.
    Killed,
    /// Its status could not be read.
    Unknown(String),
}

/// A node's process and the tasks that watch it.
struct RunningNode {
    pid: u32,
    supervisor: JoinHandle<NodeExit>,
    /// Ends when the node's stderr closes, with the text of its last error line. Taken by
    /// whoever awaits it (a finished JoinHandle must not be polled again).
    log: Option<JoinHandle<Option<String>>>,
}

/// Ctrl-C and SIGTERM, installed before any node starts so neither can end this process
/// without the nodes being stopped.
struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl StopSignals {
    fn install() -> anyhow::Result<StopSignals> {
        Ok(StopSignals {
            interrupt: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
            terminate: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
        })
    }

    async fn recv(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

async fn run_cluster(
    plan: ClusterPlan,
    log_files: Vec<tokio::fs::File>,
    settings: Settings,
) -> anyhow::Result<()> {
    let mut signals = StopSignals::install()?;
    let (stop, stop_requested) = watch::channel(false);
    // Each node sends at most one Started and one Exited, so sends never wait.
    let (events_tx, mut events) = mpsc::channel(2 * plan.nodes.len());
    let mut nodes = Vec::with_capacity(plan.nodes.len());
    for (index, (node, log_file)) in plan.nodes.iter().zip(log_files).enumerate() {
        let started = spawn_node(
            &plan,
            index,
            node,
            log_file,
            &settings.log_filter,
            &stop_requested,
            &events_tx,
        );
        match started {
            Ok(running) => nodes.push(running),
            Err(e) => {
                // The failure to start is the error worth reporting; the nodes that did
                // start are stopped regardless.
                let _ = stop_nodes(&plan, nodes, &stop).await;
                return Err(e);
            }
        }
    }
    let startup = tokio::select! {
        result = wait_until_started(&plan, &mut nodes, &mut events, settings.start_timeout) => {
            result.map(|()| true)
        }
        () = signals.recv() => Ok(false),
    };
    match startup {
        Ok(true) => {}
        Ok(false) => return stop_nodes(&plan, nodes, &stop).await,
        Err(e) => {
            let _ = stop_nodes(&plan, nodes, &stop).await;
            return Err(e);
        }
    }
    let pids: Vec<u32> = nodes.iter().map(|n| n.pid).collect();
    outln!("{}", summary_text(&plan, &pids));
    let watched = watch_running_nodes(&plan, &mut events, &mut signals).await;
    if watched.is_ok() {
        outln!("Stopping the nodes...");
    }
    let stopped = stop_nodes(&plan, nodes, &stop).await;
    if watched.is_ok() && stopped.is_ok() {
        outln!("Every node has stopped.");
    }
    watched.and(stopped)
}

/// Starts one node's process with its log and supervisor tasks.
fn spawn_node(
    plan: &ClusterPlan,
    index: usize,
    node: &NodePlan,
    log_file: tokio::fs::File,
    log_filter: &str,
    stop_requested: &watch::Receiver<bool>,
    events: &mpsc::Sender<Event>,
) -> anyhow::Result<RunningNode> {
    let mut command = Command::new(&plan.program);
    command.args(plan.broker_args(node));
    for name in PER_NODE_ENV_VARS {
        command.env_remove(name);
    }
    let mut child = command
        .env("STROM_LOG_FORMAT", "json")
        .env("STROM_LOG_LEVEL", log_filter)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start node {}", node.id))?;
    let pid = child
        .id()
        .with_context(|| format!("node {} exited as it started", node.id))?;
    let stderr = child
        .stderr
        .take()
        .with_context(|| format!("node {}: no stderr pipe", node.id))?;
    let log = tokio::spawn(copy_log(index, stderr, log_file, events.clone()));
    let supervisor = tokio::spawn(supervise(
        index,
        child,
        stop_requested.clone(),
        events.clone(),
    ));
    Ok(RunningNode {
        pid,
        supervisor,
        log: Some(log),
    })
}

/// Copies a node's stderr to its log file line by line, reports its start, and returns the
/// text of its last error line (the reason a node failed to start).
async fn copy_log(
    index: usize,
    stderr: ChildStderr,
    file: tokio::fs::File,
    events: mpsc::Sender<Event>,
) -> Option<String> {
    let mut reader = BufReader::new(stderr);
    let mut file = tokio::io::BufWriter::new(file);
    let mut line = Vec::new();
    let mut started = false;
    let mut last_error = None;
    let mut file_ok = true;
    loop {
        line.clear();
        // Bytes, not `lines()`: a line that is not UTF-8 must not stop the copy, or the
        // node would block once its stderr pipe is full.
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let (message, error) = read_log_line(String::from_utf8_lossy(&line).trim_end());
        if error.is_some() {
            last_error = error;
        }
        // The log is for people; failing to write it (a full disk) must not stop the copy.
        if file_ok {
            let written = async {
                file.write_all(&line).await?;
                file.flush().await
            };
            file_ok = written.await.is_ok();
        }
        // Reported after the write, so the log already shows the start when the summary
        // points at it.
        if !started && message.as_deref() == Some(STARTED_MESSAGE) {
            started = true;
            let _ = events.send(Event::Started(index)).await;
        }
    }
    last_error
}

/// A node's log line: its message, and for an error the text worth reporting. The broker
/// logs JSON; a failure to start is printed by `main` as a plain `error: ...` line, and a
/// panic as plain text too.
fn read_log_line(line: &str) -> (Option<String>, Option<String>) {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
        let error = match line.strip_prefix("error: ") {
            Some(reason) => Some(reason.to_owned()),
            None => line.contains("panicked").then(|| line.to_owned()),
        };
        return (None, error);
    };
    let message = value["fields"]["message"].as_str().map(str::to_owned);
    let error =
        (value["level"] == "ERROR").then(|| match (&message, value["fields"]["error"].as_str()) {
            (Some(message), Some(error)) => format!("{message}: {error}"),
            (Some(message), None) => message.clone(),
            (None, _) => line.to_owned(),
        });
    (message, error)
}

/// Waits for the node to end by itself or for the stop request, whichever comes first.
async fn supervise(
    index: usize,
    mut child: Child,
    mut stop_requested: watch::Receiver<bool>,
    events: mpsc::Sender<Event>,
) -> NodeExit {
    tokio::select! {
        status = child.wait() => match status {
            Ok(status) => {
                let _ = events.send(Event::Exited(index, status)).await;
                NodeExit::BeforeStop
            }
            Err(e) => NodeExit::Unknown(e.to_string()),
        },
        () = stop_request(&mut stop_requested) => terminate(&mut child).await,
    }
}

async fn stop_request(stop_requested: &mut watch::Receiver<bool>) {
    // An error means the sender is gone, which is a stop request too.
    let _ = stop_requested.wait_for(|stop| *stop).await;
}

/// SIGTERM, a bounded wait for the broker's orderly shutdown, then SIGKILL.
async fn terminate(child: &mut Child) -> NodeExit {
    if let Ok(Some(status)) = child.try_wait() {
        // It ended just as the stop came: as stopped as it gets.
        return NodeExit::Stopped(status);
    }
    let pid = child
        .id()
        .and_then(|pid| i32::try_from(pid).ok())
        .and_then(rustix::process::Pid::from_raw);
    if let Some(pid) = pid {
        // It may exit between try_wait and here; the wait below tells.
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
    match tokio::time::timeout(STOP_TIMEOUT, child.wait()).await {
        Ok(Ok(status)) => NodeExit::Stopped(status),
        Ok(Err(e)) => NodeExit::Unknown(e.to_string()),
        Err(_) => match child.kill().await {
            Ok(()) => NodeExit::Killed,
            Err(e) => NodeExit::Unknown(e.to_string()),
        },
    }
}

/// Waits for every node's Started event, failing when a node exits first or time runs out.
async fn wait_until_started(
    plan: &ClusterPlan,
    nodes: &mut [RunningNode],
    events: &mut mpsc::Receiver<Event>,
    timeout: Duration,
) -> anyhow::Result<()> {
    let mut started = vec![false; plan.nodes.len()];
    let deadline = tokio::time::Instant::now() + timeout;
    while started.iter().any(|s| !s) {
        let event = match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(event)) => event,
            Ok(None) => anyhow::bail!("the nodes' tasks ended unexpectedly"),
            Err(_) => return Err(not_started_error(plan, &started, timeout)),
        };
        match event {
            Event::Started(index) => started[index] = true,
            Event::Exited(index, status) => {
                let node = &plan.nodes[index];
                let reason = match drain_log(&mut nodes[index]).await {
                    Some(error) => format!(": {error}"),
                    None => String::new(),
                };
                anyhow::bail!(
                    "node {} {} before it started{reason} (see {})",
                    node.id,
                    describe_status(status),
                    node.log_file.display()
                );
            }
        }
    }
    Ok(())
}

/// Waits (bounded) for a node's log to be written out; returns its last error line.
async fn drain_log(node: &mut RunningNode) -> Option<String> {
    let log = node.log.take()?;
    tokio::time::timeout(LOG_DRAIN_TIMEOUT, log)
        .await
        .ok()?
        .ok()?
}

fn not_started_error(plan: &ClusterPlan, started: &[bool], timeout: Duration) -> anyhow::Error {
    let late: Vec<&NodePlan> = plan
        .nodes
        .iter()
        .zip(started)
        .filter(|(_, started)| !**started)
        .map(|(node, _)| node)
        .collect();
    let ids: Vec<String> = late.iter().map(|n| n.id.to_string()).collect();
    let logs: Vec<String> = late
        .iter()
        .map(|n| n.log_file.display().to_string())
        .collect();
    anyhow::anyhow!(
        "node{} {} did not start within {}s; see {}",
        if late.len() == 1 { "" } else { "s" },
        ids.join(", "),
        timeout.as_secs_f64(),
        logs.join(", ")
    )
}

/// `exited with code 1`, `was killed by signal 9`.
fn describe_status(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => format!("exited ({status})"),
    }
}

/// Runs until Ctrl-C or SIGTERM, reporting nodes that exit by themselves. Fails when every
/// node has exited: there is nothing left to run.
async fn watch_running_nodes(
    plan: &ClusterPlan,
    events: &mut mpsc::Receiver<Event>,
    signals: &mut StopSignals,
) -> anyhow::Result<()> {
    let mut running = plan.nodes.len();
    loop {
        let event = tokio::select! {
            () = signals.recv() => return Ok(()),
            event = events.recv() => event,
        };
        match event {
            Some(Event::Exited(index, status)) => {
                let node = &plan.nodes[index];
                running -= 1;
                outln!(
                    "Node {} {}; {running} node(s) still running. Restart it with:\n  {}",
                    node.id,
                    describe_status(status),
                    plan.command_line(node)
                );
                if running == 0 {
                    anyhow::bail!(
                        "every node has exited; see the logs in {}",
                        plan.data_dir.display()
                    );
                }
            }
            Some(Event::Started(_)) => {}
            None => anyhow::bail!("the nodes' tasks ended unexpectedly"),
        }
    }
}

/// Stops every node still running, waits for each (bounded by [`STOP_TIMEOUT`]) and for its
/// log to be written out. Fails when a node had to be killed or did not stop cleanly.
async fn stop_nodes(
    plan: &ClusterPlan,
    nodes: Vec<RunningNode>,
    stop: &watch::Sender<bool>,
) -> anyhow::Result<()> {
    let _ = stop.send(true);
    let mut problems = Vec::new();
    for (node, mut running) in plan.nodes.iter().zip(nodes) {
        let exit = (&mut running.supervisor)
            .await
            .unwrap_or_else(|e| NodeExit::Unknown(e.to_string()));
        drain_log(&mut running).await;
        match exit {
            NodeExit::BeforeStop => {}
            NodeExit::Stopped(status) if status.success() => {}
            NodeExit::Stopped(status) => problems.push(format!(
                "node {} {} (see {})",
                node.id,
                describe_status(status),
                node.log_file.display()
            )),
            NodeExit::Killed => problems.push(format!(
                "node {} did not stop within {}s and was killed (see {})",
                node.id,
                STOP_TIMEOUT.as_secs(),
                node.log_file.display()
            )),
            NodeExit::Unknown(reason) => {
                problems.push(format!("node {}: cannot wait for it: {reason}", node.id))
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{}", problems.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn args(nodes: u16) -> UpArgs {
        UpArgs {
            nodes,
            base_port: 9092,
            controller_base_port: 9192,
            http_base_port: None,
            data_dir: PathBuf::from("./strom-cluster"),
            set: Vec::new(),
            node_log_level: "info".into(),
            start_timeout_ms: 60_000,
        }
    }

    fn plan_of(args: &UpArgs) -> Result<ClusterPlan, String> {
        plan(
            args,
            PathBuf::from("/usr/bin/strom"),
            PathBuf::from("/tmp/sc"),
        )
    }

    #[test]
    fn node_i_gets_consecutive_ports_from_the_bases_and_its_own_directory() {
        let mut a = args(3);
        a.http_base_port = Some(8080);
        let plan = plan_of(&a).unwrap();
        assert_eq!(
            plan.bootstrap_servers(),
            "127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094"
        );
        assert_eq!(
            plan.controller_quorum,
            "1@127.0.0.1:9192,2@127.0.0.1:9193,3@127.0.0.1:9194"
        );
        let node = &plan.nodes[2];
        assert_eq!(node.id, 3);
        assert_eq!(node.http_address.as_deref(), Some("127.0.0.1:8082"));
        assert_eq!(node.data_dir, Path::new("/tmp/sc/node-3"));
        assert_eq!(node.log_file, Path::new("/tmp/sc/node-3.log"));
    }

    #[test]
    fn every_node_runs_the_same_quorum_and_the_set_options() {
        let mut a = args(2);
        a.set = vec!["num.partitions=6".into(), "log.retention.ms=1000".into()];
        let plan = plan_of(&a).unwrap();
        assert_eq!(
            plan.command_line(&plan.nodes[1]),
            "/usr/bin/strom broker --node-id 2 --listen 127.0.0.1:9093 \
             --controller-listen 127.0.0.1:9193 \
             --controller-quorum 1@127.0.0.1:9192,2@127.0.0.1:9193 \
             --data-dir /tmp/sc/node-2 --set num.partitions=6 --set log.retention.ms=1000"
        );
    }

    #[test]
    fn ports_beyond_65535_overlapping_ranges_and_bad_set_options_are_refused() {
        let mut a = args(3);
        a.base_port = 65534;
        assert!(plan_of(&a).unwrap_err().contains("beyond 65535"));
        let mut a = args(3);
        a.controller_base_port = 9094;
        let err = plan_of(&a).unwrap_err();
        assert!(
            err.contains("--base-port and --controller-base-port overlap"),
            "{err}"
        );
        let mut a = args(3);
        a.http_base_port = Some(9190);
        assert!(
            plan_of(&a)
                .unwrap_err()
                .contains("--http-base-port overlap")
        );
        let mut a = args(3);
        a.set = vec!["novalue".into()];
        assert!(plan_of(&a).unwrap_err().starts_with("--set"));
        let mut a = args(1);
        a.base_port = 0;
        assert!(plan_of(&a).is_err());
        let mut a = args(2);
        a.base_port = 65534;
        assert!(plan_of(&a).is_ok(), "the last port is 65535");
    }

    #[test]
    fn words_with_shell_characters_are_quoted() {
        assert_eq!(shell_quote("/tmp/a-b_c.d"), "/tmp/a-b_c.d");
        assert_eq!(shell_quote("/tmp/my cluster"), "'/tmp/my cluster'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn the_started_line_stays_visible_whatever_the_log_level() {
        assert_eq!(node_log_filter("info"), "info");
        assert_eq!(
            node_log_filter("debug,openraft=warn"),
            "debug,openraft=warn"
        );
        assert_eq!(node_log_filter("warn"), "warn,strom_broker::server=info");
        assert_eq!(
            node_log_filter("strom_quorum=debug"),
            "strom_quorum=debug,strom_broker::server=info"
        );
    }

    #[test]
    fn log_lines_give_their_message_and_errors_their_reason() {
        let started =
            r#"{"level":"INFO","fields":{"message":"broker started","listen":"127.0.0.1:9092"}}"#;
        assert_eq!(read_log_line(started), (Some(STARTED_MESSAGE.into()), None));
        let failed =
            r#"{"level":"ERROR","fields":{"message":"cannot bind","error":"Address in use"}}"#;
        assert_eq!(
            read_log_line(failed),
            (
                Some("cannot bind".into()),
                Some("cannot bind: Address in use".into())
            )
        );
        let plain = "error: cannot listen on 127.0.0.1:9092: Address in use";
        assert_eq!(
            read_log_line(plain),
            (
                None,
                Some("cannot listen on 127.0.0.1:9092: Address in use".into())
            )
        );
        assert_eq!(read_log_line("some other text"), (None, None));
    }

    #[test]
    fn the_summary_names_every_node_the_bootstrap_servers_and_the_restart_commands() {
        let plan = plan_of(&args(3)).unwrap();
        let text = summary_text(&plan, &[101, 102, 103]);
        assert!(
            text.contains("Started a 3-node cluster, data in /tmp/sc"),
            "{text}"
        );
        assert!(
            text.lines().any(|l| l.split_whitespace().eq([
                "2",
                "102",
                "127.0.0.1:9093",
                "127.0.0.1:9193",
                "/tmp/sc/node-2.log"
            ])),
            "{text}"
        );
        assert!(
            text.contains("Bootstrap servers: 127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094\n"),
            "{text}"
        );
        assert!(text.contains("kill -9 103"), "{text}");
        assert!(
            text.contains("  node 1: /usr/bin/strom broker --node-id 1 --listen 127.0.0.1:9092"),
            "{text}"
        );
        assert!(
            !text.contains("HTTP"),
            "no HTTP column without --http-base-port: {text}"
        );
    }

    #[test]
    fn exit_statuses_read_as_codes_or_signals() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            describe_status(ExitStatus::from_raw(1 << 8)),
            "exited with code 1"
        );
        assert_eq!(
            describe_status(ExitStatus::from_raw(9)),
            "was killed by signal 9"
        );
    }
}
