//! End-to-end tests of the operator CLI: a real `strom broker` process on 127.0.0.1:0 with a
//! temporary data directory, and every subcommand run as a process against it, checking
//! stdout, stderr and exit codes, error cases included.
//!
//! The broker's port comes from its JSON "broker started" log line, never from a timer. Every
//! wait is bounded: a command that runs longer than [`COMMAND_TIMEOUT`] is killed and fails
//! the test. Background consumers are stopped with SIGINT, as a person would with Ctrl-C.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

const STROM: &str = env!("CARGO_BIN_EXE_strom");
const BROKER_START_TIMEOUT: Duration = Duration::from_secs(60);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// A broker process, killed when dropped.
struct Broker {
    _child: Child,
    addr: String,
    _data: tempfile::TempDir,
}

impl Broker {
    async fn start() -> Broker {
        Self::start_with(&[]).await
    }

    /// A broker with extra `--set KEY=VALUE` properties.
    async fn start_with(properties: &[&str]) -> Broker {
        Self::start_with_args(properties, &[]).await
    }

    /// A broker with extra `--set KEY=VALUE` properties and other `strom broker` arguments.
    async fn start_with_args(properties: &[&str], args: &[&str]) -> Broker {
        let data = tempfile::tempdir().expect("temp dir");
        let mut command = Command::new(STROM);
        // The broker reads every STROM_* variable as a property; the caller's (STROM_BIN,
        // ...) are not meant for it.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("STROM_") {
                command.env_remove(name);
            }
        }
        let mut child = command
            .args(["broker", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data.path())
            .args(properties.iter().flat_map(|p| ["--set", p]))
            .args(args)
            .env("STROM_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn broker");
        let stderr = child.stderr.take().expect("broker stderr");
        let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
        // Keep draining the broker's log so it never blocks on a full pipe.
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            let mut addr_tx = Some(addr_tx);
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(tx) = addr_tx.take_if(|_| line.contains("\"broker started\"")) {
                    let parsed: Value = serde_json::from_str(&line).expect("JSON log line");
                    let listen = parsed["fields"]["listen"]
                        .as_str()
                        .expect("listen field")
                        .to_owned();
                    let _ = tx.send(listen);
                }
            }
        });
        let addr = tokio::time::timeout(BROKER_START_TIMEOUT, addr_rx)
            .await
            .expect("broker started in time")
            .expect("broker logged its address");
        Broker {
            _child: child,
            addr,
            _data: data,
        }
    }

    /// Runs `strom ARGS -b ADDR`.
    async fn run(&self, args: &[&str]) -> Run {
        self.run_with_input(args, None).await
    }

    async fn run_with_input(&self, args: &[&str], input: Option<&[u8]>) -> Run {
        let mut full: Vec<&str> = args.to_vec();
        full.extend(["-b", &self.addr]);
        strom(&full, input).await
    }

    /// Starts `strom ARGS -b ADDR` in the background with stdout piped.
    fn spawn(&self, args: &[&str]) -> Background {
        let child = Command::new(STROM)
            .args(args)
            .args(["-b", &self.addr])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn strom");
        Background::new(child)
    }
}

/// What a finished command printed and returned.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    #[track_caller]
    fn ok(&self) -> &str {
        assert_eq!(self.code, Some(0), "command failed: {self:#?}");
        &self.stdout
    }

    /// Asserts the command failed with `code` and a single-line error containing `needle`.
    #[track_caller]
    fn fails(&self, code: i32, needle: &str) {
        assert_eq!(self.code, Some(code), "{self:#?}");
        let error_lines: Vec<&str> = self.stderr.lines().filter(|l| !l.is_empty()).collect();
        assert!(
            error_lines.len() == 1 && error_lines[0].starts_with("error: "),
            "expected one error line: {self:#?}"
        );
        assert!(self.stderr.contains(needle), "'{needle}' not in {self:#?}");
        assert!(!self.stderr.contains("panicked"), "{self:#?}");
        assert!(!self.stderr.contains("backtrace"), "{self:#?}");
    }

    fn json(&self) -> Value {
        serde_json::from_str(self.ok()).unwrap_or_else(|e| panic!("not JSON ({e}): {self:#?}"))
    }
}

async fn strom(args: &[&str], input: Option<&[u8]>) -> Run {
    let mut child = Command::new(STROM)
        .args(args)
        .env_remove("STROM_BOOTSTRAP_SERVER")
        .env_remove("RUST_LOG")
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn strom");
    if let Some(input) = input {
        let mut stdin = child.stdin.take().expect("stdin");
        let input = input.to_vec();
        tokio::spawn(async move {
            let _ = stdin.write_all(&input).await;
        });
    }
    let output = tokio::time::timeout(COMMAND_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("strom {args:?} did not finish within {COMMAND_TIMEOUT:?}"))
        .expect("wait for strom");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A command running in the background whose stdout is read line by line.
struct Background {
    child: Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Background {
    fn new(mut child: Child) -> Background {
        let stdout = child.stdout.take().expect("stdout");
        Background {
            child,
            lines: BufReader::new(stdout).lines(),
        }
    }

    async fn next_line(&mut self) -> String {
        tokio::time::timeout(COMMAND_TIMEOUT, self.lines.next_line())
            .await
            .expect("a line in time")
            .expect("read stdout")
            .expect("the command is still printing")
    }

    /// Sends SIGINT (Ctrl-C) and waits for the exit; returns the code and stderr.
    async fn interrupt(mut self) -> (Option<i32>, String) {
        let pid = self.child.id().expect("still running");
        let status = Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .await
            .expect("run kill");
        assert!(status.success());
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            use tokio::io::AsyncReadExt;
            tokio::time::timeout(COMMAND_TIMEOUT, pipe.read_to_string(&mut stderr))
                .await
                .expect("stderr closed in time")
                .expect("read stderr");
        }
        let status = tokio::time::timeout(COMMAND_TIMEOUT, self.child.wait())
            .await
            .expect("exited in time after SIGINT")
            .expect("wait");
        (status.code(), stderr)
    }
}

fn lines_sorted(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

/// The group's row for `partition` in `group describe --json`.
fn group_offsets(describe: &Value, partition: i64) -> (Value, Value, Value) {
    let row = describe["offsets"]
        .as_array()
        .expect("offsets")
        .iter()
        .find(|r| r["partition"] == partition)
        .unwrap_or_else(|| panic!("no row for partition {partition}: {describe}"))
        .clone();
    (
        row["committed"].clone(),
        row["end"].clone(),
        row["lag"].clone(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_commands_create_list_describe_alter_grow_and_delete() {
    let broker = Broker::start().await;
    let created = broker
        .run(&[
            "topic",
            "create",
            "orders",
            "--partitions",
            "2",
            "--replication-factor",
            "1",
            "--config",
            "retention.ms=123456",
        ])
        .await;
    assert!(
        created.ok().contains("Created topic 'orders'"),
        "{created:?}"
    );
    broker
        .run(&["topic", "create", "orders", "--partitions", "1"])
        .await
        .fails(1, "TOPIC_ALREADY_EXISTS");
    broker
        .run(&["topic", "create", "orders", "--if-not-exists"])
        .await
        .ok();

    let listed = broker.run(&["topic", "list"]).await;
    assert!(
        listed
            .ok()
            .lines()
            .any(|l| l.split_whitespace().eq(["orders", "2"])),
        "{listed:?}"
    );
    let listed = broker.run(&["topic", "list", "--json"]).await.json();
    assert_eq!(listed[0]["name"], "orders");
    assert_eq!(listed[0]["partitions"], 2);

    broker
        .run_with_input(
            &["produce", "orders", "--partition", "1"],
            Some(b"a\nb\nc\n"),
        )
        .await
        .ok();
    let described = broker.run(&["topic", "describe", "orders"]).await;
    let text = described.ok();
    assert!(text.contains("Topic: orders"), "{text}");
    assert!(text.contains("PARTITION  LEADER"), "{text}");
    assert!(
        text.lines().any(|l| l.contains("retention.ms")
            && l.contains("123456")
            && l.contains("DYNAMIC_TOPIC_CONFIG")),
        "{text}"
    );
    let json = broker
        .run(&["topic", "describe", "orders", "--json"])
        .await
        .json();
    let partitions = json["partitions"].as_array().unwrap();
    assert_eq!(partitions.len(), 2);
    assert_eq!(partitions[1]["leader"], 1);
    assert_eq!(partitions[1]["replicas"], serde_json::json!([1]));
    assert_eq!(partitions[1]["in_sync_replicas"], serde_json::json!([1]));
    assert_eq!(partitions[1]["earliest_offset"], 0);
    assert_eq!(partitions[1]["latest_offset"], 3);
    assert_eq!(partitions[0]["latest_offset"], 0);
    let sources: Vec<(&str, &str)> = json["configs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["source"].as_str().unwrap()))
        .collect();
    assert!(
        sources.contains(&("retention.ms", "DYNAMIC_TOPIC_CONFIG")),
        "{sources:?}"
    );
    assert!(
        sources
            .iter()
            .any(|(_, source)| *source != "DYNAMIC_TOPIC_CONFIG"),
        "non-overridden configs are listed too: {sources:?}"
    );

    let altered = broker
        .run(&[
            "topic",
            "alter",
            "orders",
            "--config",
            "retention.ms=999",
            "--config",
            "cleanup.policy=compact",
        ])
        .await;
    assert!(altered.ok().contains("set retention.ms=999"), "{altered:?}");
    let overrides = |json: Value| -> Vec<(String, String)> {
        json["configs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_owned(),
                    c["value"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    };
    let json = broker
        .run(&["topic", "describe", "orders", "--overrides", "--json"])
        .await
        .json();
    assert_eq!(
        overrides(json),
        [
            ("cleanup.policy".to_owned(), "compact".to_owned()),
            ("retention.ms".to_owned(), "999".to_owned())
        ]
    );
    broker
        .run(&[
            "topic",
            "alter",
            "orders",
            "--delete-config",
            "retention.ms",
        ])
        .await
        .ok();
    let json = broker
        .run(&["topic", "describe", "orders", "--overrides", "--json"])
        .await
        .json();
    assert_eq!(
        overrides(json),
        [("cleanup.policy".to_owned(), "compact".to_owned())]
    );
    broker
        .run(&["topic", "alter", "nope", "--config", "retention.ms=1"])
        .await
        .fails(1, "UNKNOWN_TOPIC_OR_PARTITION");

    let grown = broker
        .run(&["topic", "add-partitions", "orders", "--partitions", "4"])
        .await;
    assert!(
        grown.ok().contains("now has 4 partitions (was 2)"),
        "{grown:?}"
    );
    let json = broker
        .run(&["topic", "describe", "orders", "--json"])
        .await
        .json();
    assert_eq!(json["partitions"].as_array().unwrap().len(), 4);
    broker
        .run(&["topic", "add-partitions", "orders", "--partitions", "3"])
        .await
        .fails(1, "INVALID_PARTITIONS");

    let deleted = broker.run(&["topic", "delete", "orders"]).await;
    assert!(
        deleted.ok().contains("Deleted topic 'orders'"),
        "{deleted:?}"
    );
    let listed = broker.run(&["topic", "list", "--json"]).await.json();
    assert_eq!(listed, serde_json::json!([]));
    broker
        .run(&["topic", "describe", "orders"])
        .await
        .fails(1, "UNKNOWN_TOPIC_OR_PARTITION");
    broker
        .run(&["topic", "delete", "orders"])
        .await
        .fails(1, "UNKNOWN_TOPIC_OR_PARTITION");
    broker
        .run(&["topic", "delete", "orders", "--if-exists"])
        .await
        .ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_and_consume_round_trip_keys_headers_and_formats() {
    let broker = Broker::start().await;
    broker
        .run(&["topic", "create", "events", "--partitions", "3"])
        .await
        .ok();
    let produced = broker
        .run_with_input(
            &[
                "produce",
                "events",
                "--key-separator",
                ":",
                "--header",
                "source=cli",
                "--header",
                "env=test",
            ],
            Some(b"k1:a\nk2:b:with-colon\r\nk3:\n"),
        )
        .await;
    assert!(produced.ok().contains("Produced 3 records"), "{produced:?}");

    let consumed = broker
        .run(&[
            "consume",
            "events",
            "--from-beginning",
            "--exit-at-end",
            "--format",
            "%k=%s [%h] %K %S\\n",
        ])
        .await;
    assert_eq!(
        lines_sorted(consumed.ok()),
        [
            "k1=a [source=cli,env=test] 2 1",
            "k2=b:with-colon [source=cli,env=test] 2 12",
            "k3= [source=cli,env=test] 2 0",
        ]
    );
    assert!(
        consumed.stderr.contains("Consumed 3 records"),
        "{consumed:?}"
    );

    let json = broker
        .run(&[
            "consume",
            "events",
            "--from-beginning",
            "--max-messages",
            "3",
            "--json",
        ])
        .await;
    let mut records: Vec<Value> = json
        .ok()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    records.sort_by_key(|r| r["key"].as_str().unwrap().to_owned());
    assert_eq!(records.len(), 3);
    assert_eq!(records[0]["topic"], "events");
    assert_eq!(records[0]["key"], "k1");
    assert_eq!(records[0]["value"], "a");
    assert_eq!(records[0]["headers"][0]["key"], "source");
    assert_eq!(records[0]["headers"][0]["value"], "cli");
    assert_eq!(records[0]["headers"][1]["key"], "env");
    assert!(records[0]["timestamp"].as_i64().unwrap() > 0);
    assert_eq!(records[0]["timestamp_type"], "CreateTime");

    // One partition, from an offset; -N is relative to the end.
    let p0 = broker.run(&["produce", "events", "--partition", "0"]).await;
    assert_eq!(p0.code, Some(0), "no input is zero records: {p0:?}");
    broker
        .run_with_input(
            &["produce", "events", "--partition", "0"],
            Some(b"x0\nx1\nx2\nx3\n"),
        )
        .await
        .ok();
    let tail = broker
        .run(&[
            "consume",
            "events",
            "--partition",
            "0",
            "--offset=-2",
            "--exit-at-end",
            "--format",
            "%p %s\\n",
        ])
        .await;
    assert_eq!(tail.ok(), "0 x2\n0 x3\n");
    let all_p0 = broker
        .run(&[
            "consume", "events", "-p", "0", "--offset", "earliest", "-e", "--format", "%s\\n",
        ])
        .await;
    assert!(all_p0.ok().ends_with("x0\nx1\nx2\nx3\n"), "{all_p0:?}");

    // A larger file, compressed, acks=1; the summary counts per partition.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("records.txt");
    let body: String = (0..5000).map(|i| format!("record-{i}\n")).collect();
    std::fs::write(&file, body).unwrap();
    let produced = broker
        .run(&[
            "produce",
            "events",
            "--file",
            file.to_str().unwrap(),
            "--compression",
            "zstd",
            "--acks",
            "1",
            "--json",
        ])
        .await
        .json();
    assert_eq!(produced["records"], 5000);
    assert_eq!(produced["failed"], 0);
    let per_partition: i64 = produced["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["records"].as_i64().unwrap())
        .sum();
    assert_eq!(per_partition, 5000);
    let counted = broker
        .run(&[
            "consume",
            "events",
            "--from-beginning",
            "-e",
            "--format",
            "%o\\n",
        ])
        .await;
    assert_eq!(counted.ok().lines().count(), 3 + 4 + 5000);

    // An offset past the end waits at the end; --timeout-ms then stops with exit code 0.
    let idle = broker
        .run(&[
            "consume",
            "events",
            "--partition",
            "0",
            "--offset",
            "1000000",
            "--timeout-ms",
            "300",
        ])
        .await;
    assert_eq!(idle.ok(), "");
    let described = broker
        .run(&["topic", "describe", "events", "--json"])
        .await
        .json();
    let end = &described["partitions"][0]["latest_offset"];
    assert!(
        idle.stderr.contains(&format!("reading from {end}")),
        "{idle:?}"
    );
    assert!(
        idle.stderr
            .contains("Consumed 0 records (no record within --timeout-ms)"),
        "{idle:?}"
    );

    // Errors: a line without the separator, an unknown topic, a bad format, a bad partition.
    let bad = broker
        .run_with_input(
            &["produce", "events", "-K", ":"],
            Some(b"k:v\nno-separator\n"),
        )
        .await;
    bad.fails(1, "line 2 has no key separator ':'");
    assert!(bad.stdout.contains("Produced 1 records"), "{bad:?}");
    broker
        .run(&["consume", "missing", "--from-beginning", "-e"])
        .await
        .fails(1, "UNKNOWN_TOPIC_OR_PARTITION");
    broker
        .run_with_input(&["produce", "missing"], Some(b"x\n"))
        .await
        .fails(1, "UNKNOWN_TOPIC_OR_PARTITION");
    broker
        .run(&["consume", "events", "--format", "%x"])
        .await
        .fails(2, "%x");
    broker
        .run(&["consume", "events", "--partition", "7", "-e"])
        .await
        .fails(2, "has 3 partitions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_consumer_commits_what_it_printed_and_leaves_on_ctrl_c() {
    let broker = Broker::start().await;
    broker
        .run(&["topic", "create", "jobs", "--partitions", "1"])
        .await
        .ok();
    let input: String = (0..10).map(|i| format!("job-{i}\n")).collect();
    broker
        .run_with_input(&["produce", "jobs"], Some(input.as_bytes()))
        .await
        .ok();

    let first = broker
        .run(&[
            "consume",
            "jobs",
            "--group",
            "workers",
            "--from-beginning",
            "--max-messages",
            "4",
        ])
        .await;
    assert_eq!(first.ok(), "job-0\njob-1\njob-2\njob-3\n");
    let described = broker
        .run(&["group", "describe", "workers", "--json"])
        .await
        .json();
    assert_eq!(described["state"], "Empty", "the member left: {described}");
    assert_eq!(
        group_offsets(&described, 0),
        (4.into(), 10.into(), 6.into()),
        "{described}"
    );

    // The next member resumes at the committed offset; Ctrl-C commits and leaves.
    let mut background = broker.spawn(&["consume", "jobs", "--group", "workers"]);
    for i in 4..10 {
        assert_eq!(background.next_line().await, format!("job-{i}"));
    }
    let (code, stderr) = background.interrupt().await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("Consumed 6 records (interrupted)"),
        "{stderr}"
    );
    let described = broker
        .run(&["group", "describe", "workers", "--json"])
        .await
        .json();
    assert_eq!(described["state"], "Empty", "{described}");
    assert_eq!(described["members"], serde_json::json!([]));
    assert_eq!(
        group_offsets(&described, 0),
        (10.into(), 10.into(), 0.into())
    );
    assert_eq!(described["total_lag"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commands_list_describe_reset_and_delete() {
    let broker = Broker::start().await;
    broker
        .run(&["topic", "create", "ledger", "--partitions", "2"])
        .await
        .ok();
    let input: String = (0..10).map(|i| format!("entry-{i}\n")).collect();
    broker
        .run_with_input(
            &["produce", "ledger", "--partition", "0"],
            Some(input.as_bytes()),
        )
        .await
        .ok();
    broker
        .run(&[
            "consume",
            "ledger",
            "-g",
            "audit",
            "--from-beginning",
            "-n",
            "4",
        ])
        .await
        .ok();

    let listed = broker.run(&["group", "list"]).await;
    assert!(
        listed
            .ok()
            .lines()
            .any(|l| l.split_whitespace().eq(["audit", "Empty", "consumer"])),
        "{listed:?}"
    );
    let listed = broker.run(&["group", "list", "--json"]).await.json();
    assert_eq!(listed[0]["group"], "audit");
    let text = broker.run(&["group", "describe", "audit"]).await;
    let text = text.ok();
    assert!(text.contains("Group: audit\nState: Empty"), "{text}");
    assert!(
        text.lines().any(|l| l
            .split_whitespace()
            .eq(["ledger", "0", "4", "10", "6", "-"])),
        "{text}"
    );
    assert!(text.contains("Total lag: 6"), "{text}");

    let committed = |json: Value| group_offsets(&json, 0).0;
    let describe = || broker.run(&["group", "describe", "audit", "--json"]);

    let plan = broker
        .run(&[
            "group",
            "reset-offsets",
            "audit",
            "--topic",
            "ledger:0",
            "--to-earliest",
            "--dry-run",
        ])
        .await;
    let plan_text = plan.ok();
    assert!(
        plan_text
            .lines()
            .any(|l| l.split_whitespace().eq(["ledger", "0", "4", "0"])),
        "{plan_text}"
    );
    assert!(plan_text.contains("Dry run"), "{plan_text}");
    assert_eq!(
        committed(describe().await.json()),
        4,
        "a dry run changes nothing"
    );

    let steps: [(&[&str], i64); 5] = [
        (&["--to-offset", "7"], 7),
        (&["--shift-by", "-2"], 5),
        (&["--to-latest"], 10),
        (&["--to-datetime", "1970-01-01T00:00:00Z"], 0),
        (&["--to-offset", "99"], 10),
    ];
    for (target, expected) in steps {
        let mut args = vec!["group", "reset-offsets", "audit", "--topic", "ledger:0"];
        args.extend_from_slice(target);
        let reset = broker.run(&args).await;
        assert!(reset.ok().contains("Reset the offsets"), "{reset:?}");
        assert_eq!(committed(describe().await.json()), expected, "{target:?}");
    }
    let json = broker
        .run(&[
            "group",
            "reset-offsets",
            "audit",
            "--all-topics",
            "--to-earliest",
            "--dry-run",
            "--json",
        ])
        .await
        .json();
    assert_eq!(json["dry_run"], true);
    assert_eq!(json["partitions"][0]["current"], 10);
    assert_eq!(json["partitions"][0]["new"], 0);
    // The whole topic includes partition 1, which has no committed offset to shift.
    broker
        .run(&[
            "group",
            "reset-offsets",
            "audit",
            "--topic",
            "ledger",
            "--shift-by",
            "1",
        ])
        .await
        .fails(1, "no committed offset");
    broker
        .run(&["group", "reset-offsets", "audit", "--topic", "ledger"])
        .await
        .fails(2, "--to-earliest");
    broker
        .run(&[
            "group",
            "reset-offsets",
            "audit",
            "--topic",
            "ledger",
            "--to-datetime",
            "someday",
        ])
        .await
        .fails(2, "--to-datetime");

    // With an active member a reset (and a delete) is refused.
    broker
        .run(&[
            "group",
            "reset-offsets",
            "audit",
            "--topic",
            "ledger:0",
            "--to-offset",
            "9",
        ])
        .await
        .ok();
    let mut member = broker.spawn(&["consume", "ledger", "--group", "audit"]);
    assert_eq!(member.next_line().await, "entry-9");
    let described = describe().await.json();
    assert_eq!(described["state"], "Stable");
    let members = described["members"].as_array().unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0]["client_id"], "strom-cli");
    assert!(!members[0]["host"].as_str().unwrap().is_empty());
    assert_eq!(members[0]["assignment"].as_array().unwrap().len(), 2);
    let (_, _, owner) = {
        let row = described["offsets"][0].clone();
        (0, 0, row["member_id"].clone())
    };
    assert_eq!(owner, members[0]["member_id"]);
    broker
        .run(&[
            "group",
            "reset-offsets",
            "audit",
            "--topic",
            "ledger",
            "--to-earliest",
        ])
        .await
        .fails(1, "active member");
    let dry = broker
        .run(&[
            "group",
            "reset-offsets",
            "audit",
            "--topic",
            "ledger:0",
            "--to-earliest",
            "--dry-run",
        ])
        .await;
    assert!(
        dry.ok().contains("a real reset would be refused"),
        "{dry:?}"
    );
    broker
        .run(&["group", "delete", "audit"])
        .await
        .fails(1, "NON_EMPTY_GROUP");
    let (code, stderr) = member.interrupt().await;
    assert_eq!(code, Some(0), "{stderr}");

    let deleted = broker.run(&["group", "delete", "audit"]).await;
    assert!(
        deleted.ok().contains("Deleted group 'audit'"),
        "{deleted:?}"
    );
    broker
        .run(&["group", "describe", "audit"])
        .await
        .fails(1, "GROUP_ID_NOT_FOUND");
    let listed = broker.run(&["group", "list", "--json"]).await.json();
    assert_eq!(listed, serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_and_config_commands_describe_and_alter() {
    let broker = Broker::start().await;
    let text = broker.run(&["cluster", "describe"]).await;
    let text = text.ok();
    assert!(text.contains("Cluster id: "), "{text}");
    assert!(text.contains("Controller: 1"), "{text}");
    assert!(text.contains("Brokers: 1 (none fenced)"), "{text}");
    // A single broker is a one-voter Raft quorum, and leads it.
    assert!(text.contains("Quorum: Raft, leader 1, epoch "), "{text}");
    assert!(text.contains(", 1 voter, 0 observers"), "{text}");
    let port = broker.addr.rsplit_once(':').unwrap().1;
    assert!(
        text.lines().any(|l| l
            .split_whitespace()
            .eq(["1", "127.0.0.1", port, "-", "no", "yes"])),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().take(2).eq(["1", "leader"])),
        "{text}"
    );
    let json = broker.run(&["cluster", "describe", "--json"]).await.json();
    assert_eq!(json["brokers"][0]["id"], 1);
    assert_eq!(json["brokers"][0]["fenced"], false);
    assert_eq!(json["controller_id"], 1);
    assert!(!json["cluster_id"].as_str().unwrap().is_empty());
    let quorum = &json["quorum"];
    assert_eq!(quorum["mode"], "raft", "{json}");
    assert_eq!(quorum["leader_id"], 1, "{json}");
    assert!(quorum["leader_epoch"].as_i64().unwrap() >= 1, "{json}");
    assert_eq!(quorum["voters"].as_array().unwrap().len(), 1, "{json}");
    assert_eq!(quorum["voters"][0]["replica_id"], 1, "{json}");
    assert_eq!(quorum["voters"][0]["lag"], 0, "{json}");

    let json = broker
        .run(&["config", "describe", "--broker", "1", "--json"])
        .await
        .json();
    let configs = json["configs"].as_array().unwrap();
    assert!(
        configs
            .iter()
            .any(|c| c["name"] == "log.retention.ms" || c["name"] == "log.retention.hours"),
        "{json}"
    );
    let json = broker
        .run(&[
            "config",
            "describe",
            "--broker",
            "1",
            "--name",
            "num.partitions",
            "--json",
        ])
        .await
        .json();
    assert_eq!(json["configs"].as_array().unwrap().len(), 1, "{json}");
    assert_eq!(json["configs"][0]["name"], "num.partitions");

    broker.run(&["topic", "create", "metrics"]).await.ok();
    let altered = broker
        .run(&[
            "config",
            "alter",
            "--topic",
            "metrics",
            "--config",
            "retention.ms=5000",
        ])
        .await;
    assert!(
        altered.ok().contains("Altered topic 'metrics'"),
        "{altered:?}"
    );
    let text = broker
        .run(&["config", "describe", "--topic", "metrics", "--overrides"])
        .await;
    let text = text.ok();
    assert!(
        text.lines().any(|l| l.split_whitespace().eq([
            "retention.ms",
            "5000",
            "DYNAMIC_TOPIC_CONFIG"
        ])),
        "{text}"
    );
    broker
        .run(&[
            "config",
            "alter",
            "--topic",
            "metrics",
            "--delete-config",
            "retention.ms",
        ])
        .await
        .ok();
    let json = broker
        .run(&[
            "config",
            "describe",
            "--topic",
            "metrics",
            "--overrides",
            "--json",
        ])
        .await
        .json();
    assert_eq!(json["configs"], serde_json::json!([]));

    broker
        .run(&["config", "describe", "--topic", "missing"])
        .await
        .fails(1, "UNKNOWN_TOPIC_OR_PARTITION");
    broker
        .run(&["config", "describe"])
        .await
        .fails(2, "--broker");
}

/// The first of `count` consecutive loopback ports that were free a moment ago: each is bound
/// and let go. They are drawn below the kernel's ephemeral range, where no outgoing connection
/// takes its source port; another test may still take one in between, and the cluster then
/// fails to start with an error naming the node, so the test fails instead of hanging.
fn free_port_range(count: u16) -> u16 {
    let ephemeral_low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    for _ in 0..1000 {
        let first = rand::random_range(10000..ephemeral_low.saturating_sub(count).max(10001));
        let held: Vec<_> = (first..first + count)
            .map_while(|port| std::net::TcpListener::bind(("127.0.0.1", port)).ok())
            .collect();
        if held.len() == usize::from(count) {
            return first;
        }
    }
    panic!("no {count} consecutive free ports on 127.0.0.1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_up_runs_a_three_node_quorum_until_sigterm() {
    let data = tempfile::tempdir().expect("temp dir");
    let base = free_port_range(6);
    let (client_base, controller_base) = (base.to_string(), (base + 3).to_string());
    let mut command = Command::new(STROM);
    // The nodes read every STROM_* variable as a property; the caller's are not meant for them.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("STROM_") {
            command.env_remove(name);
        }
    }
    let child = command
        .args(["cluster", "up", "--nodes", "3", "--base-port", &client_base])
        .args(["--controller-base-port", &controller_base, "--data-dir"])
        .arg(data.path())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn strom cluster up");
    let mut up = Background::new(child);

    /// SIGTERM to `cluster up` when the test ends early (a failed assertion): it then stops
    /// its nodes, which SIGKILL (`kill_on_drop`) would leave running.
    struct TerminateOnDrop(Option<u32>);
    impl Drop for TerminateOnDrop {
        fn drop(&mut self) {
            if let Some(pid) = self.0 {
                let _ = std::process::Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status();
            }
        }
    }
    let mut guard = TerminateOnDrop(up.child.id());

    // The summary: a row per node (id, pid, addresses, log), then the bootstrap servers.
    let mut pids = Vec::new();
    let bootstrap = loop {
        let line = tokio::time::timeout(BROKER_START_TIMEOUT, up.lines.next_line())
            .await
            .expect("the cluster started in time")
            .expect("read stdout")
            .unwrap_or_else(|| panic!("cluster up ended before its summary"));
        if let Some(servers) = line.strip_prefix("Bootstrap servers: ") {
            break servers.to_owned();
        }
        let cells: Vec<&str> = line.split_whitespace().collect();
        if let [id, pid, client, _controller, log] = cells[..]
            && id.parse::<i32>().is_ok()
        {
            assert!(client.starts_with("127.0.0.1:"), "{line}");
            let log = std::fs::read_to_string(log).expect("the node's log file");
            assert!(log.contains("\"broker started\""), "node {id}: {log}");
            pids.push(pid.parse::<u32>().expect("a pid"));
        }
    };
    assert_eq!(pids.len(), 3, "one row per node");
    let expected: Vec<String> = (0..3).map(|i| format!("127.0.0.1:{}", base + i)).collect();
    assert_eq!(bootstrap, expected.join(","));

    // Every node has logged "broker started", but the broker answering may have heard of
    // the others' registrations a moment later; ask until the picture is complete.
    let deadline = tokio::time::Instant::now() + BROKER_START_TIMEOUT;
    let json = loop {
        let run = strom(&["cluster", "describe", "--json", "-b", &bootstrap], None).await;
        if run.code == Some(0) {
            let json = run.json();
            let brokers = json["brokers"].as_array().cloned().unwrap_or_default();
            let unfenced = brokers.iter().filter(|b| b["fenced"] == false).count();
            let voters = json["quorum"]["voters"].as_array().map_or(0, Vec::len);
            if unfenced == 3 && voters == 3 {
                break json;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no 3 unfenced brokers and 3 voters in time: {run:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let quorum = &json["quorum"];
    assert_eq!(quorum["mode"], "raft", "{json}");
    let leader = quorum["leader_id"].as_i64().expect("a leader");
    assert!((1..=3).contains(&leader), "{json}");
    assert_eq!(
        quorum["voters"][0]["replica_id"], leader,
        "the leader first: {json}"
    );
    assert_eq!(quorum["voters"][0]["role"], "leader", "{json}");
    let ids: Vec<i64> = json["brokers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [1, 2, 3], "{json}");

    let pid = up.child.id().expect("cluster up is running");
    let sent = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await
        .expect("run kill");
    assert!(sent.success());
    let status = tokio::time::timeout(COMMAND_TIMEOUT, up.child.wait())
        .await
        .expect("cluster up exited in time after SIGTERM")
        .expect("wait");
    guard.0 = None;
    let mut rest = String::new();
    while let Ok(Ok(Some(line))) = tokio::time::timeout(COMMAND_TIMEOUT, up.lines.next_line()).await
    {
        rest.push_str(&line);
        rest.push('\n');
    }
    let mut stderr = String::new();
    if let Some(mut pipe) = up.child.stderr.take() {
        use tokio::io::AsyncReadExt;
        let _ = tokio::time::timeout(COMMAND_TIMEOUT, pipe.read_to_string(&mut stderr)).await;
    }
    assert_eq!(status.code(), Some(0), "stdout: {rest} stderr: {stderr}");
    assert!(rest.contains("Every node has stopped."), "{rest}");
    for pid in pids {
        let alive = Command::new("kill")
            .args(["-0", &pid.to_string()])
            .stderr(Stdio::null())
            .status()
            .await
            .expect("run kill");
        assert!(!alive.success(), "node process {pid} outlived cluster up");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_produce_and_consume_report_counts_and_latency_percentiles() {
    let broker = Broker::start().await;
    let produced = broker
        .run(&[
            "bench",
            "produce",
            "--topic",
            "load",
            "--num-records",
            "20000",
            "--record-size",
            "100",
            "--partitions",
            "3",
            "--json",
        ])
        .await;
    let json = produced.json();
    assert!(
        produced.stderr.contains("Created topic 'load'"),
        "{produced:?}"
    );
    assert_eq!(json["records"], 20000);
    assert_eq!(json["bytes"], 2_000_000);
    assert_eq!(json["failed"], 0);
    let latency = &json["latency_ms"];
    let at = |k: &str| latency[k].as_f64().unwrap_or_else(|| panic!("{k}: {json}"));
    assert!(at("p50") > 0.0, "{json}");
    assert!(at("p50") <= at("p95") && at("p95") <= at("p99"), "{json}");
    assert!(
        at("p99") <= at("p99_9") && at("p99_9") <= at("max") * 1.001,
        "{json}"
    );
    let topic = broker
        .run(&["topic", "describe", "load", "--json"])
        .await
        .json();
    let total: i64 = topic["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["latest_offset"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 20000);

    let paced = broker
        .run(&[
            "bench",
            "produce",
            "--topic",
            "load",
            "--num-records",
            "300",
            "--record-size",
            "10",
            "--throughput",
            "1000",
            "--acks",
            "1",
            "--compression",
            "lz4",
        ])
        .await;
    let text = paced.ok();
    assert!(text.contains("300 records sent"), "{paced:?}");
    assert!(text.contains("p99.9"), "{paced:?}");

    let consumed = broker
        .run(&[
            "bench",
            "consume",
            "--topic",
            "load",
            "--num-records",
            "20300",
            "--from-beginning",
            "--json",
        ])
        .await
        .json();
    assert_eq!(consumed["records"], 20300);
    assert_eq!(consumed["bytes"], 2_003_000);

    let short = broker
        .run(&[
            "bench",
            "consume",
            "--topic",
            "load",
            "--num-records",
            "10",
            "--timeout-ms",
            "300",
        ])
        .await;
    short.fails(1, "nothing arrived for 300 ms");
    assert!(short.stdout.contains("0 records read"), "{short:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_is_a_one_line_error_with_a_nonzero_exit() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let commands: [&[&str]; 7] = [
        &["topic", "list"],
        &["consume", "t"],
        &["produce", "t"],
        &["group", "list"],
        &["cluster", "describe"],
        &["config", "describe", "--broker", "1"],
        &[
            "bench",
            "produce",
            "--topic",
            "t",
            "--num-records",
            "1",
            "--record-size",
            "1",
        ],
    ];
    for command in commands {
        let mut args = command.to_vec();
        args.extend(["-b", &addr]);
        let run = strom(&args, Some(b"")).await;
        run.fails(1, &format!("error: cannot connect to {addr}: "));
        assert!(run.stderr.contains("refused"), "{run:?}");
    }
    // The environment variable is honoured too.
    let mut child = Command::new(STROM);
    child
        .args(["topic", "list"])
        .env("STROM_BOOTSTRAP_SERVER", &addr)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(COMMAND_TIMEOUT, child.output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains(&addr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_arguments_exit_with_code_two() {
    let cases: [&[&str]; 6] = [
        &["topic", "create"],
        &["topic", "create", "t", "--partitions", "0"],
        &["produce", "t", "--acks", "2"],
        &["produce", "t", "--header", "novalue"],
        &["consume", "t", "--json", "--format", "%s"],
        &["group", "reset-offsets", "g", "--to-earliest"],
    ];
    for args in cases {
        let run = strom(args, None).await;
        assert_eq!(run.code, Some(2), "{args:?}: {run:?}");
        assert!(!run.stderr.contains("panicked"), "{run:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_and_help_are_printed() {
    for (shell, marker) in [
        ("bash", "_strom()"),
        ("zsh", "#compdef strom"),
        ("fish", "complete -c strom"),
    ] {
        let run = strom(&["completions", shell], None).await;
        let script = run.ok();
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(
            script.contains("reset-offsets"),
            "{shell} completes subcommands"
        );
    }
    let help = strom(&["consume", "--help"], None).await;
    let help = help.ok();
    for needle in [
        "%k",
        "%s",
        "%h",
        "--from-beginning",
        "Examples:",
        "STROM_BOOTSTRAP_SERVER",
    ] {
        assert!(
            help.contains(needle),
            "'{needle}' missing from consume --help:\n{help}"
        );
    }
    let help = strom(&["group", "reset-offsets", "--help"], None).await;
    assert!(help.ok().contains("--to-datetime"));
}

/// A 3-node `cluster up`, then a broker-only 4th node: `cluster rebalance` gives the new
/// broker its share of a topic's replicas and preferred leaders, `cluster remove-broker 4`
/// moves them all off again and, once the broker is stopped, unregisters it. Records written
/// before survive both moves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebalance_fills_a_new_broker_and_remove_broker_empties_and_unregisters_it() {
    /// SIGTERM to a process when the test ends early, so `cluster up` stops its nodes.
    struct TerminateOnDrop(Option<u32>);
    impl Drop for TerminateOnDrop {
        fn drop(&mut self) {
            if let Some(pid) = self.0 {
                let _ = std::process::Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status();
            }
        }
    }
    /// A command without the caller's STROM_* variables (the nodes read them as properties).
    fn clean_command() -> Command {
        let mut command = Command::new(STROM);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("STROM_") {
                command.env_remove(name);
            }
        }
        command.env_remove("RUST_LOG");
        command
    }
    /// `topic describe --json` of `topic`, asked until `ready` holds (metadata reaches every
    /// broker a moment after the controller decides).
    async fn describe_until(
        bootstrap: &str,
        topic: &str,
        what: &str,
        ready: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + COMMAND_TIMEOUT;
        loop {
            let run = strom(
                &["topic", "describe", topic, "--json", "-b", bootstrap],
                None,
            )
            .await;
            let partitions = run.json()["partitions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if ready(&partitions) {
                return partitions;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: {partitions:#?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    fn ids(value: &Value) -> Vec<i64> {
        value
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default()
    }
    /// How many replicas and leaderships each broker 1..=4 has.
    fn counts(partitions: &[Value]) -> ([usize; 4], [usize; 4]) {
        let (mut replicas, mut leaders) = ([0; 4], [0; 4]);
        for p in partitions {
            for r in ids(&p["replicas"]) {
                replicas[(r - 1) as usize] += 1;
            }
            if let Some(l) = p["leader"].as_i64() {
                leaders[(l - 1) as usize] += 1;
            }
        }
        (replicas, leaders)
    }
    async fn cluster_ids(bootstrap: &str) -> Vec<(i64, bool)> {
        let json = strom(&["cluster", "describe", "--json", "-b", bootstrap], None)
            .await
            .json();
        json["brokers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| (b["id"].as_i64().unwrap(), b["fenced"] == true))
            .collect()
    }

    let data = tempfile::tempdir().expect("temp dir");
    let base = free_port_range(7);
    let (client_base, controller_base) = (base.to_string(), (base + 3).to_string());
    let child = clean_command()
        .args(["cluster", "up", "--nodes", "3", "--base-port", &client_base])
        .args(["--controller-base-port", &controller_base, "--data-dir"])
        .arg(data.path().join("cluster"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn strom cluster up");
    let mut up = Background::new(child);
    let mut up_guard = TerminateOnDrop(up.child.id());
    let bootstrap = loop {
        let line = tokio::time::timeout(BROKER_START_TIMEOUT, up.lines.next_line())
            .await
            .expect("the cluster started in time")
            .expect("read stdout")
            .unwrap_or_else(|| panic!("cluster up ended before its summary"));
        if let Some(servers) = line.strip_prefix("Bootstrap servers: ") {
            break servers.to_owned();
        }
    };
    // Keep draining `cluster up`'s output so it never blocks on a full pipe.
    let drain = tokio::spawn(async move {
        while let Ok(Some(_)) = up.lines.next_line().await {}
        up
    });
    let b = bootstrap.as_str();
    let deadline = tokio::time::Instant::now() + BROKER_START_TIMEOUT;
    while cluster_ids(b).await != [(1, false), (2, false), (3, false)] {
        assert!(tokio::time::Instant::now() < deadline, "3 unfenced brokers");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    strom(
        &[
            "topic",
            "create",
            "spread",
            "--partitions",
            "6",
            "--replication-factor",
            "2",
            "-b",
            b,
        ],
        None,
    )
    .await
    .ok();
    let lines: String = (0..60).map(|i| format!("record-{i}\n")).collect();
    strom(
        &["produce", "spread", "--acks", "all", "-b", b],
        Some(lines.as_bytes()),
    )
    .await
    .ok();

    // The fourth node: a broker only, an observer of the three voters' quorum.
    let voters: Vec<String> = (0..3)
        .map(|i| format!("{}@127.0.0.1:{}", i + 1, base + 3 + i))
        .collect();
    let mut node_4 = clean_command()
        .args(["broker", "--node-id", "4", "--listen"])
        .arg(format!("127.0.0.1:{}", base + 6))
        .args(["--controller-quorum", &voters.join(","), "--data-dir"])
        .arg(data.path().join("node-4"))
        .args(["--set", "process.roles=broker"])
        .env("STROM_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn broker 4");
    let node_4_guard = TerminateOnDrop(node_4.id());
    let stderr = node_4.stderr.take().expect("broker 4 stderr");
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        let mut started_tx = Some(started_tx);
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(tx) = started_tx.take_if(|_| line.contains("\"broker started\"")) {
                let _ = tx.send(());
            }
        }
    });
    tokio::time::timeout(BROKER_START_TIMEOUT, started_rx)
        .await
        .expect("broker 4 started in time")
        .expect("broker 4 logged its start");
    let deadline = tokio::time::Instant::now() + BROKER_START_TIMEOUT;
    while !cluster_ids(b).await.contains(&(4, false)) {
        assert!(tokio::time::Instant::now() < deadline, "broker 4 unfenced");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A dry run prints the plan and changes nothing.
    let dry = strom(&["cluster", "rebalance", "--dry-run", "-b", b], None).await;
    let text = dry.ok();
    assert!(text.contains("Plan: move 3 replica(s)"), "{text}");
    assert!(text.contains("Dry run: nothing was changed."), "{text}");
    let before = describe_until(b, "spread", "the topic", |p| p.len() == 6).await;
    assert_eq!(counts(&before).0, [4, 4, 4, 0], "{before:#?}");

    let rebalanced = strom(&["cluster", "rebalance", "--timeout", "50s", "-b", b], None).await;
    let text = rebalanced.ok();
    assert!(text.contains("Started 3 reassignment(s)."), "{text}");
    assert!(text.contains("All 3 reassignment(s) completed"), "{text}");
    assert!(text.contains("Preferred leader election:"), "{text}");
    let after = describe_until(
        b,
        "spread",
        "every replica in sync and led by its first",
        |ps| {
            ps.iter().all(|p| {
                p["in_sync_replicas"].as_array().map(Vec::len) == Some(2)
                    && p["leader"] == p["replicas"][0]
            })
        },
    )
    .await;
    let (replicas, leaders) = counts(&after);
    assert_eq!(replicas, [3, 3, 3, 3], "{after:#?}");
    assert!(
        leaders.iter().max().unwrap() - leaders.iter().min().unwrap() <= 1,
        "{leaders:?}"
    );
    assert!(
        after.iter().all(|p| p["flags"] == serde_json::json!([])),
        "{after:#?}"
    );
    let idle = strom(&["topic", "reassignments", "-b", b], None).await;
    assert!(
        idle.ok()
            .contains("No partition reassignment is in progress.")
    );
    let healthy = strom(&["topic", "list", "--under-replicated", "-b", b], None).await;
    assert!(
        healthy
            .ok()
            .contains("No topic has an under-replicated partition."),
        "{healthy:?}"
    );
    let elect = strom(
        &["cluster", "elect-leaders", "--topic", "spread", "-b", b],
        None,
    )
    .await;
    assert!(
        elect.ok().contains("0 elected, 6 not needed, 0 failed"),
        "{elect:?}"
    );

    // Removing broker 4: its replicas move while it runs; it is unregistered once stopped.
    let child = clean_command()
        .args(["cluster", "remove-broker", "4", "--timeout", "50s", "-b", b])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn remove-broker");
    let mut remove = Background::new(child);
    let mut printed = String::new();
    loop {
        let line = remove.next_line().await;
        printed.push_str(&line);
        printed.push('\n');
        if line.contains("Waiting for it to stop") {
            break;
        }
    }
    assert!(printed.contains("Plan: move 3 replica(s)"), "{printed}");
    assert!(
        printed.contains("All 3 reassignment(s) completed"),
        "{printed}"
    );
    let emptied = describe_until(b, "spread", "no replica on broker 4", |ps| {
        counts(ps).0[3] == 0 && ps.iter().all(|p| p["leader"] == p["replicas"][0])
    })
    .await;
    assert!(
        emptied.iter().all(|p| ids(&p["replicas"]).len() == 2),
        "the replication factor is kept: {emptied:#?}"
    );
    let pid = node_4.id().expect("broker 4 is running");
    let sent = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await
        .expect("run kill");
    assert!(sent.success());
    let status = tokio::time::timeout(COMMAND_TIMEOUT, remove.child.wait())
        .await
        .expect("remove-broker finished in time")
        .expect("wait");
    while let Ok(Ok(Some(line))) =
        tokio::time::timeout(COMMAND_TIMEOUT, remove.lines.next_line()).await
    {
        printed.push_str(&line);
        printed.push('\n');
    }
    assert_eq!(status.code(), Some(0), "{printed}");
    assert!(printed.contains("Unregistered broker 4."), "{printed}");
    tokio::time::timeout(COMMAND_TIMEOUT, node_4.wait())
        .await
        .expect("broker 4 stopped in time")
        .expect("wait");
    drop(node_4_guard);
    assert_eq!(
        cluster_ids(b).await,
        [(1, false), (2, false), (3, false)],
        "broker 4 is gone"
    );
    let consumed = strom(
        &[
            "consume",
            "spread",
            "--from-beginning",
            "--exit-at-end",
            "-b",
            b,
        ],
        None,
    )
    .await;
    assert_eq!(lines_sorted(consumed.ok()).len(), 60, "{consumed:?}");
    strom(&["cluster", "remove-broker", "4", "-b", b], None)
        .await
        .fails(1, "broker 4 is not registered");

    let pid = up_guard.0.take().expect("cluster up is running");
    let sent = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await
        .expect("run kill");
    assert!(sent.success());
    let mut up = tokio::time::timeout(COMMAND_TIMEOUT, drain)
        .await
        .expect("cluster up closed its output in time")
        .expect("drain task");
    let status = tokio::time::timeout(COMMAND_TIMEOUT, up.child.wait())
        .await
        .expect("cluster up exited in time after SIGTERM")
        .expect("wait");
    assert_eq!(status.code(), Some(0));
}

/// A transactional producer driven with the raw protocol, as a Kafka client would: its
/// coordinator found with FindCoordinator (key type 1), its id from InitProducerId.
struct TransactionalProducer {
    client: strom_client::Client,
    coordinator: strom_client::Connection,
    transactional_id: String,
    producer_id: i64,
    producer_epoch: i16,
}

/// Retries `op` while it fails with a retriable Kafka error (a coordinator still loading its
/// partition of `__transaction_state`), with the client's backoff, a bounded number of times.
async fn retry_retriable<T, F, Fut>(client: &strom_client::Client, mut op: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = strom_client::Result<T>>,
{
    let attempts = 50;
    for attempt in 0..attempts {
        match op().await {
            Ok(value) => return value,
            Err(e) if e.is_retriable() && attempt + 1 < attempts => {
                tokio::time::sleep(client.config().backoff(attempt)).await;
            }
            Err(e) => panic!("gave up after {attempt} retries: {e}"),
        }
    }
    unreachable!("the last attempt returns or panics")
}

impl TransactionalProducer {
    async fn init(broker: &Broker, transactional_id: &str) -> TransactionalProducer {
        use strom_client::kafka_protocol::messages::{
            InitProducerIdRequest, ProducerId, TransactionalId,
        };
        use strom_client::kafka_protocol::protocol::StrBytes;
        let client = strom_client::Client::connect(strom_client::ClientConfig::new(&broker.addr))
            .await
            .expect("connect");
        let coordinator_id = retry_retriable(&client, || async {
            let mut found = client
                .find_transaction_coordinators(&[transactional_id])
                .await?;
            found.remove(0).1
        })
        .await;
        let coordinator = client
            .broker_connection(coordinator_id)
            .await
            .expect("coordinator connection");
        let response = retry_retriable(&client, || async {
            let request = InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(StrBytes::from_string(
                    transactional_id.to_owned(),
                ))))
                .with_transaction_timeout_ms(60_000)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1);
            let response = coordinator.send(request).await?;
            strom_client::Error::check(response.error_code, None).map(|()| response)
        })
        .await;
        TransactionalProducer {
            client,
            coordinator,
            transactional_id: transactional_id.to_owned(),
            producer_id: response.producer_id.0,
            producer_epoch: response.producer_epoch,
        }
    }

    /// Adds `topic`-`partition` to the transaction (AddPartitionsToTxn v3, as pre-KIP-890
    /// clients send it), which begins the transaction at the coordinator.
    async fn add_partition(&self, topic: &str, partition: i32) {
        use strom_client::kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
        use strom_client::kafka_protocol::messages::{
            AddPartitionsToTxnRequest, ProducerId, TopicName, TransactionalId,
        };
        use strom_client::kafka_protocol::protocol::StrBytes;
        let request = AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(TransactionalId(StrBytes::from_string(
                self.transactional_id.clone(),
            )))
            .with_v3_and_below_producer_id(ProducerId(self.producer_id))
            .with_v3_and_below_producer_epoch(self.producer_epoch)
            .with_v3_and_below_topics(vec![
                AddPartitionsToTxnTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                    .with_partitions(vec![partition]),
            ]);
        let response = self
            .coordinator
            .send_with_timeout(request, 3, COMMAND_TIMEOUT)
            .await
            .expect("AddPartitionsToTxn");
        for result in &response.results_by_topic_v3_and_below {
            for p in &result.results_by_partition {
                assert_eq!(
                    p.partition_error_code, 0,
                    "AddPartitionsToTxn: {response:?}"
                );
            }
        }
    }

    /// Writes one transactional batch of `count` records to `topic`-`partition`, stamped
    /// `timestamp_ms`, leaving the transaction open.
    async fn produce(&self, topic: &str, partition: i32, count: i32, timestamp_ms: i64) {
        let batch = OpenBatch {
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            transactional_id: Some(&self.transactional_id),
            timestamp_ms,
            count,
        };
        produce_open_batch(&self.client, topic, partition, &batch).await;
    }
}

/// A transactional batch that opens (or continues) a transaction, sequence numbers from 0.
struct OpenBatch<'a> {
    producer_id: i64,
    producer_epoch: i16,
    transactional_id: Option<&'a str>,
    /// Every record's timestamp, which partition leaders report as the producer's last
    /// timestamp.
    timestamp_ms: i64,
    count: i32,
}

async fn produce_open_batch(
    client: &strom_client::Client,
    topic: &str,
    partition: i32,
    open: &OpenBatch<'_>,
) {
    use strom_client::kafka_protocol::messages::produce_request::{
        PartitionProduceData, TopicProduceData,
    };
    use strom_client::kafka_protocol::messages::{ProduceRequest, TopicName, TransactionalId};
    use strom_client::kafka_protocol::protocol::StrBytes;
    use strom_client::records::{BatchHeader, RecordBatchBuilder};
    let mut builder = RecordBatchBuilder::new(strom_client::Compression::None, 1024);
    for i in 0..open.count {
        let value = format!("open-{i}");
        builder
            .append(open.timestamp_ms, None, Some(value.as_bytes()), &[])
            .expect("append");
    }
    let batch = builder
        .finish(&BatchHeader {
            producer_id: open.producer_id,
            producer_epoch: open.producer_epoch,
            base_sequence: 0,
            transactional: true,
            ..BatchHeader::default()
        })
        .expect("batch");
    let request = ProduceRequest::default()
        .with_transactional_id(
            open.transactional_id
                .map(|id| TransactionalId(StrBytes::from_string(id.to_owned()))),
        )
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(batch)),
                ]),
        ]);
    let (_, leader) = client
        .leader_connection(topic, partition)
        .await
        .expect("leader");
    // v9: the last version that names topics (v13 sends topic ids).
    let response = leader
        .send_with_timeout(request, 9, COMMAND_TIMEOUT)
        .await
        .expect("Produce");
    let code = response.responses[0].partition_responses[0].error_code;
    assert_eq!(code, 0, "Produce: {response:?}");
}

/// An idempotent producer's id and epoch (InitProducerId without a transactional id): a
/// producer no coordinator knows.
async fn idempotent_producer(client: &strom_client::Client) -> (i64, i16) {
    use strom_client::kafka_protocol::messages::{InitProducerIdRequest, ProducerId};
    let response = retry_retriable(client, || async {
        let request = InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
        let response = client.send_to_any(request).await?;
        strom_client::Error::check(response.error_code, None).map(|()| response)
    })
    .await;
    (response.producer_id.0, response.producer_epoch)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_list_and_describe_follow_a_producer_from_empty_to_ongoing() {
    let broker = Broker::start().await;
    assert_eq!(
        broker.run(&["transaction", "list", "--json"]).await.json(),
        serde_json::json!([])
    );
    let table = broker.run(&["transaction", "list"]).await;
    assert_eq!(
        table.ok().lines().collect::<Vec<_>>(),
        ["TRANSACTIONAL-ID  COORDINATOR  PRODUCER-ID  STATE"]
    );
    broker
        .run(&["transaction", "describe", "nobody"])
        .await
        .fails(1, "TRANSACTIONAL_ID_NOT_FOUND: transactional id 'nobody'");
    broker
        .run(&["transaction", "list", "--state", "Sleeping"])
        .await
        .fails(2, "unknown transaction state 'Sleeping'");

    broker
        .run(&["topic", "create", "payments", "--partitions", "2"])
        .await
        .ok();
    let producer = TransactionalProducer::init(&broker, "payments-app").await;
    let listed = broker.run(&["transaction", "list", "--json"]).await.json();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["transactional_id"], "payments-app");
    assert_eq!(listed[0]["state"], "Empty");
    assert_eq!(listed[0]["producer_id"], producer.producer_id);
    let described = broker
        .run(&["transaction", "describe", "payments-app", "--json"])
        .await
        .json();
    assert_eq!(described[0]["state"], "Empty");
    assert_eq!(described[0]["producer_epoch"], producer.producer_epoch);
    assert_eq!(described[0]["transaction_timeout_ms"], 60_000);
    assert_eq!(described[0]["transaction_start_time_ms"], Value::Null);
    assert_eq!(described[0]["partitions"], serde_json::json!([]));

    producer.add_partition("payments", 1).await;
    let described = broker
        .run(&["transaction", "describe", "payments-app", "--json"])
        .await
        .json();
    assert_eq!(described[0]["state"], "Ongoing");
    assert_eq!(
        described[0]["partitions"],
        serde_json::json!([{"topic": "payments", "partition": 1}])
    );
    assert!(
        described[0]["transaction_start_time_ms"].is_i64(),
        "{described}"
    );
    let table = broker
        .run(&["transaction", "describe", "payments-app"])
        .await;
    let lines: Vec<&str> = table.ok().lines().collect();
    assert!(
        lines[0].starts_with("TRANSACTIONAL-ID  COORDINATOR"),
        "{lines:?}"
    );
    assert!(
        lines[1].contains("Ongoing") && lines[1].ends_with("payments-1"),
        "{lines:?}"
    );

    let ongoing = broker
        .run(&["transaction", "list", "--state", "Ongoing", "--json"])
        .await
        .json();
    assert_eq!(ongoing[0]["transactional_id"], "payments-app");
    let by_producer = broker
        .run(&[
            "transaction",
            "list",
            "--producer-id",
            &(producer.producer_id + 1).to_string(),
            "--json",
        ])
        .await
        .json();
    assert_eq!(by_producer, serde_json::json!([]));
    let long_running = broker
        .run(&[
            "transaction",
            "list",
            "--min-duration-ms",
            "3600000",
            "--json",
        ])
        .await
        .json();
    assert_eq!(long_running, serde_json::json!([]));

    // One unknown id among known ones: the known one is printed, the command fails.
    let mixed = broker
        .run(&["transaction", "describe", "payments-app", "nobody"])
        .await;
    mixed.fails(1, "TRANSACTIONAL_ID_NOT_FOUND");
    assert!(mixed.stdout.contains("payments-app"), "{mixed:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_transaction_is_described_at_its_partition_and_aborted_by_start_offset() {
    let broker = Broker::start().await;
    broker
        .run(&["topic", "create", "orders", "--partitions", "1"])
        .await
        .ok();
    let empty = broker
        .run(&[
            "transaction",
            "describe-producers",
            "--topic",
            "orders",
            "--partition",
            "0",
            "--json",
        ])
        .await
        .json();
    assert_eq!(empty, serde_json::json!([]));

    let producer = TransactionalProducer::init(&broker, "orders-app").await;
    producer.add_partition("orders", 0).await;
    // Stamped at the epoch, so by its age alone find-hanging takes it for a candidate.
    producer.produce("orders", 0, 3, 0).await;
    let producers = broker
        .run(&[
            "transaction",
            "describe-producers",
            "--topic",
            "orders",
            "--partition",
            "0",
            "--json",
        ])
        .await
        .json();
    assert_eq!(producers.as_array().map(Vec::len), Some(1), "{producers}");
    assert_eq!(producers[0]["producer_id"], producer.producer_id);
    assert_eq!(producers[0]["producer_epoch"], producer.producer_epoch);
    assert_eq!(producers[0]["last_sequence"], 2);
    assert_eq!(producers[0]["current_transaction_start_offset"], 0);

    // Its coordinator still lists the partition and will write the marker: not hanging.
    let hanging = broker
        .run(&[
            "transaction",
            "find-hanging",
            "--max-transaction-timeout-ms",
            "0",
            "--json",
        ])
        .await
        .json();
    assert_eq!(hanging, serde_json::json!([]));
    let text = broker.run(&["transaction", "find-hanging"]).await;
    assert_eq!(text.ok(), "No hanging transactions.\n");

    broker
        .run(&[
            "transaction",
            "abort",
            "--topic",
            "orders",
            "--partition",
            "0",
            "--start-offset",
            "1",
        ])
        .await
        .fails(1, "no open transaction starts at offset 1 on orders-0");
    let aborted = broker
        .run(&[
            "transaction",
            "abort",
            "--topic",
            "orders",
            "--partition",
            "0",
            "--start-offset",
            "0",
        ])
        .await;
    assert_eq!(
        aborted.ok(),
        format!(
            "Aborted the open transaction of producer {} (epoch {}) on orders-0.\n",
            producer.producer_id, producer.producer_epoch
        )
    );
    let after = broker
        .run(&[
            "transaction",
            "describe-producers",
            "--topic",
            "orders",
            "--partition",
            "0",
            "--json",
        ])
        .await
        .json();
    assert_eq!(
        after[0]["current_transaction_start_offset"],
        Value::Null,
        "{after}"
    );

    broker
        .run(&[
            "transaction",
            "abort",
            "--topic",
            "orders",
            "--partition",
            "0",
            "--producer-id",
            "5",
        ])
        .await
        .fails(2, "--producer-epoch");
    broker
        .run(&[
            "transaction",
            "abort",
            "--topic",
            "orders",
            "--partition",
            "0",
        ])
        .await
        .fails(2, "required");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_hanging_reports_a_transaction_no_coordinator_knows_until_it_is_aborted() {
    // A hanging transaction is what KIP-890's verification prevents: with it off (as on an
    // older broker), a transactional batch no coordinator knows about is taken.
    let broker = Broker::start_with(&["transaction.partition.verification.enable=false"]).await;
    broker
        .run(&["topic", "create", "ledger", "--partitions", "2"])
        .await
        .ok();
    let client = strom_client::Client::connect(strom_client::ClientConfig::new(&broker.addr))
        .await
        .expect("connect");
    // A transactional batch from a producer no coordinator knows, stamped at time 0: to the
    // partition it looks open and idle for decades, which stands in for a transaction left
    // behind past every timeout without the test waiting for one.
    let (producer_id, producer_epoch) = idempotent_producer(&client).await;
    let forgotten = OpenBatch {
        producer_id,
        producer_epoch,
        transactional_id: Some("forgotten"),
        timestamp_ms: 0,
        count: 2,
    };
    produce_open_batch(&client, "ledger", 1, &forgotten).await;

    let hanging = broker
        .run(&["transaction", "find-hanging", "--json"])
        .await
        .json();
    assert_eq!(hanging.as_array().map(Vec::len), Some(1), "{hanging}");
    assert_eq!(hanging[0]["topic"], "ledger");
    assert_eq!(hanging[0]["partition"], 1);
    assert_eq!(hanging[0]["producer_id"], producer_id);
    assert_eq!(hanging[0]["start_offset"], 0);
    assert_eq!(hanging[0]["last_timestamp_ms"], 0);
    let table = broker
        .run(&["transaction", "find-hanging", "--topic", "ledger"])
        .await;
    let lines: Vec<&str> = table.ok().lines().collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with("TOPIC   PARTITION  PRODUCER-ID"),
        "{lines:?}"
    );
    assert!(lines[1].starts_with("ledger  1"), "{lines:?}");
    // A topic without it has nothing hanging.
    broker
        .run(&["topic", "create", "quiet", "--partitions", "1"])
        .await
        .ok();
    let quiet = broker
        .run(&["transaction", "find-hanging", "--topic", "quiet", "--json"])
        .await
        .json();
    assert_eq!(quiet, serde_json::json!([]));

    broker
        .run(&[
            "transaction",
            "abort",
            "--topic",
            "ledger",
            "--partition",
            "1",
            "--producer-id",
            &producer_id.to_string(),
            "--producer-epoch",
            &producer_epoch.to_string(),
        ])
        .await
        .ok();
    let after = broker
        .run(&["transaction", "find-hanging", "--json"])
        .await
        .json();
    assert_eq!(after, serde_json::json!([]));
}

#[tokio::test]
async fn user_commands_create_list_and_delete_scram_users() {
    let broker = Broker::start().await;
    broker
        .run(&["user", "create", "alice", "--password", "alice-secret"])
        .await
        .ok();
    let pw_file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(pw_file.path(), "bob-secret\n").expect("write password");
    let pw_path = pw_file.path().to_str().expect("utf-8 path");
    let created = broker
        .run(&[
            "user",
            "create",
            "bob",
            "--mechanism",
            "SCRAM-SHA-512",
            "--iterations",
            "8192",
            "--password-file",
            pw_path,
        ])
        .await;
    assert!(created.ok().contains("SCRAM-SHA-512"), "{created:?}");
    broker
        .run_with_input(
            &[
                "user",
                "create",
                "alice",
                "--mechanism",
                "scram-sha-512",
                "--password",
                "-",
            ],
            Some(b"from-stdin\n"),
        )
        .await
        .ok();

    let listed = broker.run(&["user", "list"]).await;
    let rows: Vec<Vec<&str>> = listed
        .ok()
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        [
            ["alice", "SCRAM-SHA-256", "4096"],
            ["alice", "SCRAM-SHA-512", "4096"],
            ["bob", "SCRAM-SHA-512", "8192"],
        ],
        "{listed:?}"
    );
    assert!(!listed.stdout.contains("secret"), "{listed:?}");
    let json = broker.run(&["user", "list", "bob", "--json"]).await.json();
    assert_eq!(json["users"][0]["user"], "bob");
    assert_eq!(json["users"][0]["credentials"][0]["iterations"], 8192);

    broker
        .run(&["user", "delete", "alice", "--mechanism", "SCRAM-SHA-256"])
        .await
        .ok();
    broker.run(&["user", "delete", "bob"]).await.ok();
    let json = broker.run(&["user", "list", "--json"]).await.json();
    assert_eq!(json["users"].as_array().map(Vec::len), Some(1), "{json}");
    assert_eq!(
        json["users"][0]["credentials"][0]["mechanism"],
        "SCRAM-SHA-512"
    );

    broker
        .run(&["user", "list", "bob"])
        .await
        .fails(1, "RESOURCE_NOT_FOUND");
    broker
        .run(&[
            "user",
            "create",
            "carol",
            "--password",
            "pw",
            "--iterations",
            "100",
        ])
        .await
        .fails(1, "UNACCEPTABLE_CREDENTIAL");
    broker
        .run(&[
            "user",
            "create",
            "carol",
            "--password",
            "pw",
            "--mechanism",
            "PLAIN",
        ])
        .await
        .fails(2, "SCRAM-SHA-256");
}

#[tokio::test]
async fn acl_commands_create_list_and_delete() {
    // The ACL APIs answer SECURITY_DISABLED without an authorizer, as Kafka's do.
    let broker = Broker::start_with(&[
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users=User:ANONYMOUS",
    ])
    .await;
    let created = broker
        .run(&[
            "acl",
            "create",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Read",
            "--operation",
            "Describe",
            "--topic",
            "orders",
        ])
        .await;
    assert!(created.ok().contains("Created 2 ACLs"), "{created:?}");
    broker
        .run(&[
            "acl",
            "create",
            "--deny-principal",
            "User:*",
            "--operation",
            "Write",
            "--topic",
            "ord",
            "--resource-pattern-type",
            "prefixed",
            "--host",
            "10.0.0.1",
        ])
        .await
        .ok();
    broker
        .run(&[
            "acl",
            "create",
            "--allow-principal",
            "User:app",
            "--operation",
            "IdempotentWrite",
            "--cluster",
        ])
        .await
        .ok();

    let json = broker.run(&["acl", "list", "--json"]).await.json();
    assert_eq!(json["acls"].as_array().map(Vec::len), Some(4), "{json}");
    let json = broker
        .run(&[
            "acl",
            "list",
            "--topic",
            "orders",
            "--resource-pattern-type",
            "match",
            "--json",
        ])
        .await
        .json();
    let acls = json["acls"].as_array().expect("acls");
    assert_eq!(acls.len(), 3, "literal and prefixed ACLs apply: {json}");
    assert!(acls.iter().any(|a| a["pattern_type"] == "PREFIXED"
        && a["permission_type"] == "DENY"
        && a["host"] == "10.0.0.1"));
    let text = broker.run(&["acl", "list", "--cluster"]).await;
    assert!(
        text.ok().lines().any(|l| l.split_whitespace().eq([
            "CLUSTER",
            "kafka-cluster",
            "LITERAL",
            "User:app",
            "*",
            "IDEMPOTENT_WRITE",
            "ALLOW"
        ])),
        "{text:?}"
    );

    let deleted = broker
        .run(&["acl", "delete", "--principal", "User:alice"])
        .await;
    assert!(deleted.ok().contains("Deleted 2 ACLs."), "{deleted:?}");
    broker.run(&["acl", "delete"]).await.fails(2, "--all");
    broker.run(&["acl", "delete", "--all"]).await.ok();
    assert!(
        broker
            .run(&["acl", "list"])
            .await
            .ok()
            .contains("(no ACLs)")
    );

    broker
        .run(&[
            "acl",
            "create",
            "--allow-principal",
            "alice",
            "--operation",
            "Read",
            "--topic",
            "t",
        ])
        .await
        .fails(1, "INVALID_REQUEST");
    broker
        .run(&[
            "acl",
            "create",
            "--allow-principal",
            "User:a",
            "--operation",
            "Fly",
            "--topic",
            "t",
        ])
        .await
        .fails(2, "unknown operation");
}

/// Writes a throwaway CA (`ca.pem`) and a key store for 127.0.0.1 signed by it (`broker.pem`:
/// key and certificate in one PEM file).
fn write_certificates(dir: &std::path::Path) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "strom-cli-test-ca");
    let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("broker key");
    let params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("broker params");
    let cert = params.signed_by(&key, &issuer).expect("broker certificate");
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(
        dir.join("broker.pem"),
        format!("{}{}", key.serialize_pem(), cert.pem()),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_config_connects_to_a_sasl_ssl_listener() {
    let certs = tempfile::tempdir().unwrap();
    let dir = certs.path();
    write_certificates(dir);
    let keystore = format!("ssl.keystore.location={}", dir.join("broker.pem").display());
    let broker = Broker::start_with_args(
        &[
            "listeners=SASL_SSL://127.0.0.1:0",
            "sasl.enabled.mechanisms=SCRAM-SHA-512",
            "ssl.keystore.type=PEM",
            &keystore,
        ],
        &[
            "--add-scram",
            "SCRAM-SHA-512=[name=alice,password=alice-secret]",
        ],
    )
    .await;
    let properties = |password: &str| {
        format!(
            "# client.properties\n\
             security.protocol=SASL_SSL\n\
             sasl.mechanism=SCRAM-SHA-512\n\
             sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \\\n    \
             username=\"alice\" password=\"{password}\";\n\
             ssl.truststore.type=PEM\n\
             ssl.truststore.location={}\n",
            dir.join("ca.pem").display()
        )
    };
    let good = dir.join("client.properties");
    std::fs::write(&good, properties("alice-secret")).unwrap();
    let good = good.display().to_string();
    let b = broker.addr.as_str();

    strom(
        &[
            "topic",
            "create",
            "secured",
            "-b",
            b,
            "--command-config",
            &good,
        ],
        None,
    )
    .await
    .ok();
    let listed = strom(&["topic", "list", "-b", b, "--command-config", &good], None).await;
    assert!(listed.ok().contains("secured"), "{listed:#?}");

    let bad = dir.join("wrong.properties");
    std::fs::write(&bad, properties("wrong")).unwrap();
    let bad = bad.display().to_string();
    strom(&["topic", "list", "-b", b, "--command-config", &bad], None)
        .await
        .fails(1, "authentication failed");

    let missing = dir.join("missing.properties").display().to_string();
    strom(
        &["topic", "list", "-b", b, "--command-config", &missing],
        None,
    )
    .await
    .fails(2, "--command-config");
}
