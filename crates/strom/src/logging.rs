//! Log output: human-readable by default, JSON with `--log-format json`; the level from
//! `--log-level`, else `RUST_LOG`, else info (openraft's own logs off unless a filter names
//! it).

use clap::{Args, ValueEnum};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Log output format.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "human",
        env = "STROM_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
    /// Log level or filter (e.g. `debug`, `info,strom_broker=debug`); overrides RUST_LOG.
    #[arg(long, global = true, env = "STROM_LOG_LEVEL")]
    pub log_level: Option<String>,
}

pub fn init(args: &LogArgs) -> anyhow::Result<()> {
    let text = match &args.log_level {
        Some(level) => level.clone(),
        None => std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_string()),
    };
    let mut filter = EnvFilter::try_new(&text)?;
    // openraft logs every Raft step at info and a peer that is down at error, every retry.
    // Strom's metadata quorum reports what an operator needs itself (leader changes, peers
    // lost and found again, a failed Raft core), so openraft is silent unless a filter names
    // it (`RUST_LOG=info,openraft=info`).
    if !text.contains("openraft") {
        filter = filter.add_directive("openraft=off".parse()?);
    }
    // Colour only on a terminal: escape codes in a log file or a pipe are noise.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match args.log_format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}
