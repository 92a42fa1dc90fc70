//! `strom`: the broker and the operator's tool, in one binary.

mod broker_cmd;
mod logging;

use clap::{Parser, Subcommand};

/// Strom: a Kafka-compatible event-streaming broker.
#[derive(Debug, Parser)]
#[command(name = "strom", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    logging: logging::LogArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a broker (a single-node cluster: broker and controller in one process).
    Broker(broker_cmd::BrokerArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Err(e) = logging::init(&cli.logging) {
        eprintln!("error: {e}");
        return std::process::ExitCode::FAILURE;
    }
    let result = match cli.command {
        Command::Broker(args) => broker_cmd::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
