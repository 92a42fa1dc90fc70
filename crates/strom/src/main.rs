//! `strom`: the broker and the operator's tool, in one binary.
//!
//! `strom broker` runs a broker. Every other subcommand is a client of a running cluster that
//! speaks only the Kafka protocol (through `strom-client`), so it works against any
//! Kafka-protocol broker: `topic`, `produce`, `consume`, `group`, `transaction`, `cluster`,
//! `config`, `user`, `acl`, `bench`.
//! `completions` prints shell completion scripts.
//!
//! Exit codes: 0 success, 1 the operation failed (the reason is printed as one line on
//! stderr), 2 invalid arguments.

mod acl_cmd;
mod bench_cmd;
mod broker_cmd;
mod cluster_cmd;
mod cluster_up;
mod common;
mod config_cmd;
mod consume_cmd;
mod group_cmd;
mod logging;
mod produce_cmd;
mod record_format;
mod table;
mod topic_cmd;
mod transaction_cmd;
mod user_cmd;

use clap::{CommandFactory, Parser, Subcommand};

/// Strom: a Kafka-compatible event-streaming broker.
#[derive(Debug, Parser)]
#[command(
    name = "strom",
    version,
    about,
    long_about = "Strom: a Kafka-compatible event-streaming broker and its operator tool, in \
        one binary.\n\n\
        `strom broker` runs a broker. The other commands are clients that speak the Kafka \
        protocol to any Kafka-compatible cluster, found with --bootstrap-server (-b, or the \
        STROM_BOOTSTRAP_SERVER environment variable; default localhost:9092).\n\n\
        Exit codes: 0 success, 1 the operation failed (reason on stderr, one line), 2 invalid \
        arguments.",
    after_help = "Examples:\n  \
        strom broker --data-dir ./data\n  \
        strom topic create events --partitions 3\n  \
        seq 1 10 | strom produce events\n  \
        strom consume events --from-beginning --max-messages 10\n  \
        strom group describe my-group\n  \
        strom bench produce --topic bench --num-records 100000 --record-size 100",
    propagate_version = true
)]
struct Cli {
    #[command(flatten)]
    logging: logging::LogArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a broker (a single-node cluster: broker and controller in one process).
    #[command(
        long_about = "Run a broker until SIGTERM or Ctrl-C. With no flags it is a single-node \
            cluster (broker and controller in one process) on 127.0.0.1:9092 with its data \
            under ./strom-data. Broker properties use Kafka's names; they come from built-in \
            defaults, then --config FILE, then STROM_* environment variables \
            (STROM_LOG_RETENTION_MS sets log.retention.ms), then --set, then the dedicated \
            flags.",
        after_help = "Examples:\n  \
            strom broker\n  \
            strom broker --data-dir /var/lib/strom --listen 0.0.0.0:9092 --advertise kafka.example.com:9092\n  \
            strom broker --config server.properties --set num.partitions=6"
    )]
    Broker(broker_cmd::BrokerArgs),
    Topic(topic_cmd::TopicArgs),
    Produce(produce_cmd::ProduceArgs),
    Consume(consume_cmd::ConsumeArgs),
    Group(group_cmd::GroupArgs),
    Transaction(transaction_cmd::TransactionArgs),
    Cluster(cluster_cmd::ClusterArgs),
    Config(config_cmd::ConfigArgs),
    User(user_cmd::UserArgs),
    Acl(acl_cmd::AclArgs),
    Bench(bench_cmd::BenchArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish or powershell).
    #[command(
        long_about = "Print a completion script for a shell to stdout. Load it from the \
            shell's startup file.",
        after_help = "Examples:\n  \
            strom completions bash > ~/.local/share/bash-completion/completions/strom\n  \
            strom completions zsh > \"${fpath[1]}/_strom\"\n  \
            strom completions fish > ~/.config/fish/completions/strom.fish"
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// A clap error as one line: the message and any tip, without the usage block.
fn one_line_usage_error(rendered: &str) -> String {
    let parts: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .take_while(|line| !line.starts_with("Usage:"))
        .filter(|line| !line.is_empty())
        .collect();
    format!("{} (see --help)", parts.join(" "))
}

fn main() -> std::process::ExitCode {
    let mut cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            match e.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
                _ => {
                    eprintln!("{}", one_line_usage_error(&e.render().to_string()));
                    return std::process::ExitCode::from(common::EXIT_USAGE);
                }
            }
        }
    };
    let is_broker = matches!(cli.command, Command::Broker(_));
    // Operator commands report problems themselves; the client library's info-level chatter
    // would only clutter their output, so they log warnings and up unless told otherwise.
    if !is_broker && cli.logging.log_level.is_none() && std::env::var_os("RUST_LOG").is_none() {
        cli.logging.log_level = Some("warn".to_owned());
    }
    if let Err(e) = logging::init(&cli.logging) {
        eprintln!("error: {e}");
        return std::process::ExitCode::FAILURE;
    }
    let result = match cli.command {
        Command::Broker(args) => broker_cmd::run(args),
        Command::Topic(args) => topic_cmd::run(args),
        Command::Produce(args) => produce_cmd::run(args),
        Command::Consume(args) => consume_cmd::run(args),
        Command::Group(args) => group_cmd::run(args),
        Command::Transaction(args) => transaction_cmd::run(args),
        Command::Cluster(args) => cluster_cmd::run(args),
        Command::Config(args) => config_cmd::run(args),
        Command::User(args) => user_cmd::run(args),
        Command::Acl(args) => acl_cmd::run(args),
        Command::Bench(args) => bench_cmd::run(args),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "strom", &mut script);
            common::emit(&String::from_utf8_lossy(&script))
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line, whatever the chain of causes.
            let message = format!("{e:#}").replace('\n', " ");
            eprintln!("error: {message}");
            if e.downcast_ref::<common::UsageError>().is_some() {
                std::process::ExitCode::from(common::EXIT_USAGE)
            } else {
                std::process::ExitCode::from(common::EXIT_FAILURE)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_has_help_with_examples() {
        fn check(command: &clap::Command, path: &str) {
            let path = format!("{path} {}", command.get_name());
            if command.get_name() != "help" {
                assert!(command.get_about().is_some(), "{path} has no about");
                let examples = command
                    .get_after_help()
                    .map(|h| h.to_string())
                    .unwrap_or_default();
                assert!(
                    examples.contains("Examples:"),
                    "{path} has no examples in its help"
                );
            }
            for sub in command.get_subcommands() {
                check(sub, &path);
            }
        }
        let cli = Cli::command();
        for sub in cli.get_subcommands() {
            check(sub, "strom");
        }
    }

    #[test]
    fn usage_errors_fit_on_one_line_with_their_tips() {
        let error = Cli::try_parse_from(["strom", "topic", "create", "t", "--partitons", "3"])
            .unwrap_err()
            .render()
            .to_string();
        let line = one_line_usage_error(&error);
        assert!(!line.contains('\n'), "{line}");
        assert!(
            line.starts_with("error: unexpected argument '--partitons'"),
            "{line}"
        );
        assert!(line.contains("--partitions"), "the tip is kept: {line}");
        assert!(!line.contains("Usage:"), "{line}");
    }

    #[test]
    fn bootstrap_server_defaults_and_is_accepted_after_the_subcommand() {
        let cli = Cli::try_parse_from(["strom", "topic", "list", "-b", "h:1"]).unwrap();
        let Command::Topic(_) = cli.command else {
            panic!("not a topic command");
        };
        assert!(Cli::try_parse_from(["strom", "topic", "-b", "h:1", "list"]).is_ok());
    }
}
