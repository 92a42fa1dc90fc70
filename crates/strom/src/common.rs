//! What every operator command shares: the connection options, the async runtime, turning
//! client errors into one-line messages, `KEY=VALUE` parsing, and writing to stdout.
//!
//! Errors: a command returns `anyhow::Result`; [`UsageError`] marks a bad argument that clap
//! could not catch (exit code 2, like clap's own), everything else exits with 1. Messages stay
//! on one line: Kafka errors keep Kafka's name (`UNKNOWN_TOPIC_OR_PARTITION: ...`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use strom_client::{Client, ClientConfig, ClientSecurity, Error as ClientError};
use tokio::io::AsyncWriteExt;

/// The exit code for a failed operation.
pub const EXIT_FAILURE: u8 = 1;
/// The exit code for invalid arguments (clap uses the same).
pub const EXIT_USAGE: u8 = 2;

/// An invalid argument found after parsing (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Returns a [`UsageError`] from the enclosing function.
macro_rules! usage {
    ($($arg:tt)*) => {
        return Err(anyhow::Error::new($crate::common::UsageError(format!($($arg)*))))
    };
}
pub(crate) use usage;

/// How to reach the cluster; shared by every operator command.
#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// A broker to bootstrap from (`host:port`, several separated by commas).
    #[arg(
        short = 'b',
        long = "bootstrap-server",
        value_name = "HOST:PORT",
        env = "STROM_BOOTSTRAP_SERVER",
        default_value = "localhost:9092",
        global = true
    )]
    pub bootstrap_server: String,
    /// The client id sent with every request (visible in `group describe`).
    #[arg(long, value_name = "ID", default_value = "strom-cli", global = true)]
    pub client_id: String,
    /// How long to wait for any one response from a broker.
    #[arg(long, value_name = "MS", default_value_t = 30_000, global = true)]
    pub request_timeout_ms: u64,
    /// A Kafka client properties file: `security.protocol`, `sasl.mechanism`,
    /// `sasl.jaas.config`, `ssl.truststore.location`, ... (as Kafka's tools take it).
    #[arg(long, value_name = "FILE", env = "STROM_COMMAND_CONFIG", global = true)]
    pub command_config: Option<PathBuf>,
}

impl ConnectArgs {
    /// The client settings these options describe.
    pub fn client_config(&self) -> anyhow::Result<ClientConfig> {
        let security = match &self.command_config {
            None => None,
            Some(path) => Some(Arc::new(read_command_config(path)?)),
        };
        Ok(ClientConfig {
            bootstrap_servers: self.bootstrap_server.clone(),
            client_id: self.client_id.clone(),
            request_timeout: Duration::from_millis(self.request_timeout_ms.max(1)),
            connect_timeout: Duration::from_secs(10),
            // Operator commands never create topics as a side effect of a typo.
            allow_auto_topic_creation: false,
            security,
            ..ClientConfig::default()
        })
    }

    /// Connects to the cluster, or fails with `cannot connect to HOST:PORT: reason`.
    pub async fn connect(&self) -> anyhow::Result<Client> {
        self.connect_with(self.client_config()?).await
    }

    /// Like [`ConnectArgs::connect`] with adjusted settings.
    pub async fn connect_with(&self, config: ClientConfig) -> anyhow::Result<Client> {
        match Client::connect(config).await {
            Ok(client) => Ok(client),
            Err(ClientError::Config(reason)) => usage!("--bootstrap-server: {reason}"),
            Err(
                error @ (ClientError::NoBrokerAvailable(_)
                | ClientError::Connect { .. }
                | ClientError::ConnectionClosed { .. }
                | ClientError::RequestTimedOut { .. }),
            ) => Err(anyhow::anyhow!(
                "cannot connect to {}: {}",
                self.bootstrap_server,
                connect_failure_reason(&self.bootstrap_server, &error).await
            )),
            Err(error) => Err(error.into()),
        }
    }
}

/// Reads a `--command-config` properties file into the client's security settings.
fn read_command_config(path: &Path) -> anyhow::Result<ClientSecurity> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) => usage!("--command-config {}: {e}", path.display()),
    };
    let properties: BTreeMap<String, String> =
        match java_properties::read(std::io::BufReader::new(file)) {
            Ok(properties) => properties.into_iter().collect(),
            Err(e) => usage!("--command-config {}: {e}", path.display()),
        };
    match ClientSecurity::from_properties(&properties) {
        Ok(security) => Ok(security),
        Err(ClientError::Config(reason)) => usage!("--command-config {}: {reason}", path.display()),
        Err(e) => Err(e.into()),
    }
}

/// Why the bootstrap servers could not be reached, in a few words. The client's own error
/// lists every address it tried; for an operator the socket error of the first one reads
/// better ("Connection refused (os error 111)"), so it is reproduced with one plain connect.
async fn connect_failure_reason(bootstrap: &str, error: &ClientError) -> String {
    let first = bootstrap.split(',').map(str::trim).find(|s| !s.is_empty());
    if let ClientError::Connect { source, .. } = error {
        return source.to_string();
    }
    if let Some(addr) = first {
        let probe =
            tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr))
                .await;
        match probe {
            Ok(Err(io)) => return io.to_string(),
            Err(_) => return "no TCP connection within 5s".to_owned(),
            Ok(Ok(_)) => {}
        }
    }
    error.to_string()
}

/// Builds the runtime operator commands run on. Two workers: the client's connection tasks
/// and a group member's heartbeat keep running while the command's own task is busy.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("strom-cli")
        .build()
        .context("cannot start the async runtime")
}

/// Parses `KEY=VALUE` (the value may be empty and may contain `=`).
pub fn parse_key_value(item: &str) -> Result<(String, String), String> {
    match item.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("expected KEY=VALUE, got '{item}'")),
    }
}

/// Writes `bytes` to stdout through tokio (which does the blocking write off the runtime's
/// worker threads). A closed pipe (`strom consume ... | head`) is reported as `Ok(false)`:
/// the reader is gone, which is a reason to stop, not an error.
pub async fn write_stdout(stdout: &mut tokio::io::Stdout, bytes: &[u8]) -> anyhow::Result<bool> {
    let written = async {
        stdout.write_all(bytes).await?;
        stdout.flush().await
    }
    .await;
    match written {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(anyhow::Error::new(e).context("cannot write to stdout")),
    }
}

/// Writes command output to stdout. A reader that went away (`strom topic list | head -1`)
/// ends the output quietly instead of failing (Rust's `print!` would panic on the closed pipe).
pub fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(anyhow::Error::new(e).context("cannot write to stdout")),
    }
}

/// `print!` through [`emit`]; returns early from the enclosing function on a write error.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::common::emit(&format!($($arg)*))?
    };
}

/// `println!` through [`emit`]; returns early from the enclosing function on a write error.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::common::emit(&format!("{}\n", format_args!($($arg)*)))?
    };
}
pub(crate) use {out, outln};

/// Prints a value as pretty JSON on stdout.
pub fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value).context("cannot encode JSON")?;
    outln!("{text}");
    Ok(())
}

/// A byte count for people: `512 B`, `1.5 KiB`, `3.2 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Waits for Ctrl-C (SIGINT) or SIGTERM. If the handlers cannot be installed this never
/// resolves, which leaves the default behaviour (the process dies) in place.
pub async fn interrupted() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_value_keeps_equals_signs_in_the_value() {
        assert_eq!(
            parse_key_value("a=b=c"),
            Ok(("a".to_owned(), "b=c".to_owned()))
        );
        assert_eq!(parse_key_value("a="), Ok(("a".to_owned(), String::new())));
        assert!(parse_key_value("novalue").is_err());
        assert!(parse_key_value("=x").is_err());
    }

    #[test]
    fn byte_counts_use_binary_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024), "3.0 MiB");
    }
}
