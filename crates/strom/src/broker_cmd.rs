//! `strom broker`: assemble the broker's properties and run it until SIGTERM or SIGINT.
//!
//! Precedence, lowest first: built-in defaults, the `--config` properties file, `STROM_*`
//! environment variables (`STROM_LOG_RETENTION_MS=1000` sets `log.retention.ms`), `--set`
//! options, then the dedicated flags (`--data-dir`, `--node-id`, `--listen`,
//! `--controller-listen`, `--controller-quorum`, `--advertise`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use strom_broker::{Broker, BrokerConfig};

/// Environment variables that belong to the command line, not to broker properties.
const CLI_ENV_VARS: &[&str] = &[
    "STROM_DATA_DIR",
    "STROM_NODE_ID",
    "STROM_LISTEN",
    "STROM_CONTROLLER_LISTEN",
    "STROM_CONTROLLER_QUORUM",
    "STROM_ADVERTISE",
    "STROM_HTTP",
    "STROM_LOG_FORMAT",
    "STROM_LOG_LEVEL",
    "STROM_BOOTSTRAP_SERVER",
];

#[derive(Debug, Args)]
pub struct BrokerArgs {
    /// Data directory (Kafka's log.dirs). Default: ./strom-data
    #[arg(long, value_name = "DIR", env = "STROM_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// This node's id (Kafka's node.id), unique in the cluster. Default: 1
    #[arg(long, value_name = "N", env = "STROM_NODE_ID")]
    node_id: Option<i32>,
    /// Address to listen on for clients. Default: 127.0.0.1:9092
    #[arg(long, value_name = "HOST:PORT", env = "STROM_LISTEN")]
    listen: Option<String>,
    /// Address of this node's controller listener, where the metadata quorum's voters and
    /// brokers reach it (Kafka's CONTROLLER listener). Default: the node's entry in
    /// --controller-quorum, or a free loopback port for a single node.
    #[arg(long, value_name = "HOST:PORT", env = "STROM_CONTROLLER_LISTEN")]
    controller_listen: Option<String>,
    /// The metadata quorum's voters as ID@HOST:PORT,... (their controller listeners; Kafka's
    /// controller.quorum.voters). Default: this node alone, a single-node cluster.
    #[arg(long, value_name = "ID@HOST:PORT,...", env = "STROM_CONTROLLER_QUORUM")]
    controller_quorum: Option<String>,
    /// Address clients are told to connect to (Metadata). Default: the listen address.
    #[arg(long, value_name = "HOST:PORT", env = "STROM_ADVERTISE")]
    advertise: Option<String>,
    /// Serve /metrics, /health, /ready and the JSON admin API on this address.
    #[arg(long, value_name = "HOST:PORT", env = "STROM_HTTP")]
    http: Option<String>,
    /// A Kafka-style server.properties file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Set a broker property, with Kafka's name (repeatable), e.g. --set num.partitions=3
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// A SCRAM user created with the cluster (repeatable), as Kafka's `kafka-storage format
    /// --add-scram`: 'SCRAM-SHA-256=[name=alice,password=alice-secret]'. Ignored, with a
    /// warning, when the cluster already exists.
    #[arg(long = "add-scram", value_name = "MECHANISM=[name=..,password=..]")]
    add_scram: Vec<String>,
}

pub fn run(args: BrokerArgs) -> anyhow::Result<()> {
    let properties = properties(&args, std::env::vars())?;
    let mut config =
        BrokerConfig::from_properties(properties).map_err(|e| anyhow::anyhow!("{}", e.message))?;
    for user in &args.add_scram {
        config
            .bootstrap_records
            .push(strom_security::bootstrap::parse_add_scram(user).map_err(anyhow::Error::msg)?);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("strom")
        .build()
        .context("cannot start the async runtime")?;
    let http = args.http.clone();
    runtime.block_on(async move {
        let broker = Broker::start(config).await?;
        let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
        let http_task = match (http, broker.state()) {
            (Some(address), Some(state)) => Some(start_http(state, &address, http_stopped).await?),
            (Some(_), None) => {
                tracing::warn!("--http is served by brokers; this node is a controller only");
                None
            }
            (None, _) => None,
        };
        wait_for_signal().await?;
        tracing::info!("shutting down");
        let _ = stop_http.send(());
        if let Some(task) = http_task {
            let _ = task.await;
        }
        broker.shutdown().await?;
        Ok(())
    })
}

/// Binds the HTTP listener and serves it until `stop` fires.
async fn start_http(
    state: &std::sync::Arc<strom_broker::state::BrokerState>,
    address: &str,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen for HTTP on {address}"))?;
    let bound = listener.local_addr().context("HTTP listener address")?;
    tracing::info!(listen = %bound, "http listener started");
    let state = std::sync::Arc::clone(state);
    Ok(tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop.await;
        };
        if let Err(e) = strom_http::serve(state, listener, shutdown).await {
            tracing::error!(error = %e, "http listener failed");
        }
    }))
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    Ok(())
}

/// Merges the property sources in precedence order.
fn properties(
    args: &BrokerArgs,
    env: impl Iterator<Item = (String, String)>,
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut properties = BTreeMap::new();
    if let Some(path) = &args.config {
        let file = std::fs::File::open(path)
            .with_context(|| format!("cannot open config file {}", path.display()))?;
        let parsed = java_properties::read(std::io::BufReader::new(file))
            .with_context(|| format!("cannot parse config file {}", path.display()))?;
        properties.extend(parsed);
    }
    // Other programs use the STROM_ prefix too (test harnesses, scripts), so a variable becomes
    // a property only when it names one; any other is reported, so a typo does not go unseen.
    let mut from_env: Vec<(String, String)> = Vec::new();
    for (key, value) in env {
        let Some(rest) = key.strip_prefix("STROM_") else {
            continue;
        };
        if CLI_ENV_VARS.contains(&key.as_str()) {
            continue;
        }
        let name = rest.to_ascii_lowercase().replace('_', ".");
        if strom_broker::config::is_known_property(&name) {
            from_env.push((name, value));
        } else {
            tracing::warn!(variable = %key, "ignoring environment variable: {name} is not a broker property");
        }
    }
    from_env.sort();
    properties.extend(from_env);
    for item in &args.set {
        let Some((key, value)) = item.split_once('=') else {
            bail!("--set {item}: expected KEY=VALUE");
        };
        properties.insert(key.trim().to_string(), value.to_string());
    }
    if let Some(dir) = &args.data_dir {
        properties.insert("log.dirs".into(), dir.display().to_string());
    }
    if let Some(id) = args.node_id {
        properties.insert("node.id".into(), id.to_string());
    }
    if args.listen.is_some() || args.controller_listen.is_some() {
        let listeners = listeners_with(
            properties.get("listeners").map(String::as_str),
            args.listen.as_deref(),
            args.controller_listen.as_deref(),
        );
        properties.insert("listeners".into(), listeners);
    }
    if let Some(quorum) = &args.controller_quorum {
        properties.insert("controller.quorum.voters".into(), quorum.clone());
    }
    if let Some(advertise) = &args.advertise {
        properties.insert(
            "advertised.listeners".into(),
            format!("PLAINTEXT://{advertise}"),
        );
    }
    Ok(properties)
}

/// `listeners` with the PLAINTEXT entry replaced by `--listen` and the CONTROLLER entry by
/// `--controller-listen`, other entries kept.
fn listeners_with(
    existing: Option<&str>,
    listen: Option<&str>,
    controller: Option<&str>,
) -> String {
    let mut entries: Vec<String> = existing
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(String::from)
        .collect();
    let mut set = |name: &str, address: Option<&str>| {
        let Some(address) = address else { return };
        let entry = format!("{name}://{address}");
        let prefix = format!("{name}://");
        match entries.iter_mut().find(|e| {
            e.to_ascii_uppercase().starts_with(&prefix)
                || (name == "PLAINTEXT" && !e.contains("://"))
        }) {
            Some(existing) => *existing = entry,
            None => entries.push(entry),
        }
    };
    set("PLAINTEXT", listen);
    set("CONTROLLER", controller);
    entries.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(config: Option<PathBuf>, set: &[&str]) -> BrokerArgs {
        BrokerArgs {
            data_dir: None,
            node_id: None,
            listen: Some("127.0.0.1:0".into()),
            controller_listen: None,
            controller_quorum: None,
            advertise: None,
            http: None,
            config,
            set: set.iter().map(|s| s.to_string()).collect(),
            add_scram: Vec::new(),
        }
    }

    #[test]
    fn file_then_environment_then_set_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("server.properties");
        std::fs::write(
            &file,
            "# comment\nnum.partitions=2\nlog.retention.ms = 100\nlog.segment.bytes: 2000000\nlisteners=PLAINTEXT://1.2.3.4:1\n",
        )
        .unwrap();
        let env = vec![
            ("STROM_LOG_RETENTION_MS".to_string(), "200".to_string()),
            ("STROM_LOG_LEVEL".to_string(), "debug".to_string()),
            ("STROM_BIN".to_string(), "/somewhere/strom".to_string()),
            ("HOME".to_string(), "/root".to_string()),
        ];
        let props = properties(
            &args(Some(file), &["log.segment.bytes=3000000"]),
            env.into_iter(),
        )
        .unwrap();
        assert_eq!(props["num.partitions"], "2");
        assert_eq!(
            props["log.retention.ms"], "200",
            "environment overrides the file"
        );
        assert_eq!(
            props["log.segment.bytes"], "3000000",
            "--set overrides the file"
        );
        assert_eq!(
            props["listeners"], "PLAINTEXT://127.0.0.1:0",
            "--listen overrides everything"
        );
        assert!(
            !props.contains_key("log.level"),
            "CLI variables are not properties"
        );
        assert!(
            !props.contains_key("bin"),
            "variables that name no property are ignored"
        );
    }

    #[test]
    fn cluster_flags_become_kafka_properties() {
        let mut a = args(
            None,
            &["listeners=PLAINTEXT://1.2.3.4:1,CONTROLLER://1.2.3.4:2"],
        );
        a.node_id = Some(3);
        a.listen = Some("127.0.0.1:9094".into());
        a.controller_quorum = Some("1@h:1,2@h:2,3@h:3".into());
        let props = properties(&a, std::iter::empty()).unwrap();
        assert_eq!(props["node.id"], "3");
        assert_eq!(
            props["listeners"],
            "PLAINTEXT://127.0.0.1:9094,CONTROLLER://1.2.3.4:2"
        );
        assert_eq!(props["controller.quorum.voters"], "1@h:1,2@h:2,3@h:3");
        a.controller_listen = Some("127.0.0.1:9194".into());
        let props = properties(&a, std::iter::empty()).unwrap();
        assert_eq!(
            props["listeners"],
            "PLAINTEXT://127.0.0.1:9094,CONTROLLER://127.0.0.1:9194"
        );
        assert_eq!(
            listeners_with(None, Some("h:1"), Some("h:2")),
            "PLAINTEXT://h:1,CONTROLLER://h:2"
        );
    }

    #[test]
    fn malformed_set_is_refused() {
        assert!(properties(&args(None, &["novalue"]), std::iter::empty()).is_err());
    }
}
