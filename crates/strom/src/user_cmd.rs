//! `strom user create|list|delete`: SCRAM users (KIP-554), like `kafka-configs --entity-type
//! users --alter --add-config 'SCRAM-SHA-256=[iterations=...,password=...]'`.
//!
//! The password is salted and hashed here (strom-client does it, as Kafka's admin client
//! does); the cluster only ever sees the salted password. It is read from `--password`, from
//! the first line of `--password-file`, or from stdin with `--password -`, so scripts can keep
//! it out of the process list.

use anyhow::Context;
use clap::{Args, Subcommand};
use strom_client::scram::DEFAULT_SCRAM_ITERATIONS;
use strom_client::{Client, ScramMechanism, UserScramAlteration};

use crate::common::{ConnectArgs, out, outln, print_json, runtime, usage};
use crate::table::Table;

#[derive(Debug, Args)]
#[command(
    about = "Create, list and delete SCRAM users",
    long_about = "Manage SCRAM-SHA-256 and SCRAM-SHA-512 credentials (KIP-554) with \
        AlterUserScramCredentials and DescribeUserScramCredentials. The password is salted \
        and hashed on this machine; only the salted password is sent, and the cluster keeps \
        only keys derived from it.",
    after_help = "Examples:\n  \
        strom user create alice --password alice-secret\n  \
        strom user create bob --mechanism SCRAM-SHA-512 --iterations 8192 --password-file bob.pw\n  \
        echo \"$PASSWORD\" | strom user create carol --password -\n  \
        strom user list\n  \
        strom user delete alice"
)]
pub struct UserArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(subcommand)]
    command: UserCommand,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a SCRAM user, or replace its password for one mechanism.
    #[command(
        long_about = "Create a SCRAM credential for a user, or replace an existing one of \
            the same mechanism. The user keeps its credentials of other mechanisms.",
        after_help = "Examples:\n  \
            strom user create alice --password alice-secret\n  \
            strom user create alice --mechanism SCRAM-SHA-512 --password-file alice.pw\n  \
            strom user create alice --password - < alice.pw"
    )]
    Create(CreateArgs),
    /// List SCRAM users with their mechanisms and iteration counts.
    #[command(
        long_about = "List SCRAM users (all of them, or the named ones) with each \
            mechanism they have a credential for and its iteration count. Keys and salts are \
            never shown.",
        after_help = "Examples:\n  \
            strom user list\n  \
            strom user list alice bob --json"
    )]
    List(ListArgs),
    /// Delete a SCRAM user's credentials.
    #[command(
        long_about = "Delete a user's SCRAM credential of one mechanism, or of every \
            mechanism it has when --mechanism is not given.",
        after_help = "Examples:\n  \
            strom user delete alice\n  \
            strom user delete alice --mechanism SCRAM-SHA-512"
    )]
    Delete(DeleteArgs),
}

#[derive(Debug, Args)]
struct CreateArgs {
    /// The user name (the SASL user name, principal `User:NAME`).
    name: String,
    /// The password; `-` reads one line from stdin.
    #[arg(
        long,
        value_name = "PASSWORD",
        required_unless_present = "password_file",
        conflicts_with = "password_file"
    )]
    password: Option<String>,
    /// A file whose first line is the password.
    #[arg(long, value_name = "FILE")]
    password_file: Option<std::path::PathBuf>,
    /// SCRAM-SHA-256 or SCRAM-SHA-512.
    #[arg(long, value_name = "MECHANISM", default_value = "SCRAM-SHA-256", value_parser = parse_mechanism)]
    mechanism: ScramMechanism,
    /// PBKDF2 iterations (the broker accepts 4096 to 16384).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_SCRAM_ITERATIONS)]
    iterations: i32,
}

#[derive(Debug, Args)]
struct ListArgs {
    /// Only these users (all when none is given).
    names: Vec<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct DeleteArgs {
    /// The user name.
    name: String,
    /// Only this mechanism's credential (every mechanism when not given).
    #[arg(long, value_name = "MECHANISM", value_parser = parse_mechanism)]
    mechanism: Option<ScramMechanism>,
}

fn parse_mechanism(name: &str) -> Result<ScramMechanism, String> {
    ScramMechanism::from_name(name)
        .ok_or_else(|| format!("expected SCRAM-SHA-256 or SCRAM-SHA-512, got '{name}'"))
}

/// The first line of `text`, without its line ending.
fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

fn read_password(args: &CreateArgs) -> anyhow::Result<String> {
    let password = match (&args.password, &args.password_file) {
        (Some(p), _) if p == "-" => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("cannot read the password from stdin")?;
            first_line(&line).to_owned()
        }
        (Some(p), _) => p.clone(),
        (None, Some(file)) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            first_line(&text).to_owned()
        }
        (None, None) => usage!("give the password with --password or --password-file"),
    };
    if password.is_empty() {
        usage!("the password is empty");
    }
    Ok(password)
}

pub fn run(args: UserArgs) -> anyhow::Result<()> {
    // Read the password before connecting, so a prompt-free stdin read is not delayed by the
    // network and a usage error needs no cluster.
    let password = match &args.command {
        UserCommand::Create(a) => Some(read_password(a)?),
        _ => None,
    };
    runtime()?.block_on(async move {
        let client = args.connect.connect().await?;
        match args.command {
            UserCommand::Create(a) => create(&client, a, password.unwrap_or_default()).await,
            UserCommand::List(a) => list(&client, a).await,
            UserCommand::Delete(a) => delete(&client, a).await,
        }
    })
}

async fn create(client: &Client, args: CreateArgs, password: String) -> anyhow::Result<()> {
    let alteration = UserScramAlteration::Upsert {
        user: args.name.clone(),
        mechanism: args.mechanism,
        iterations: args.iterations,
        password,
    };
    alter(client, &[alteration]).await?;
    outln!(
        "Created {} credential for user {} ({} iterations).",
        args.mechanism,
        args.name,
        args.iterations
    );
    Ok(())
}

async fn delete(client: &Client, args: DeleteArgs) -> anyhow::Result<()> {
    let mechanisms = match args.mechanism {
        Some(m) => vec![m],
        None => {
            let names = [args.name.as_str()];
            let described = client.describe_user_scram_credentials(Some(&names)).await?;
            let mut mechanisms = Vec::new();
            for (_, result) in described {
                mechanisms.extend(result?.into_iter().filter_map(|c| c.mechanism));
            }
            mechanisms
        }
    };
    // A request may alter a user once (Kafka answers DUPLICATE_RESOURCE otherwise), so each
    // mechanism is its own request.
    for mechanism in &mechanisms {
        let alteration = UserScramAlteration::Delete {
            user: args.name.clone(),
            mechanism: *mechanism,
        };
        alter(client, &[alteration]).await?;
    }
    let names: Vec<&str> = mechanisms.iter().map(|m| m.name()).collect();
    outln!(
        "Deleted {} credential of user {}.",
        names.join(" and "),
        args.name
    );
    Ok(())
}

async fn alter(client: &Client, alterations: &[UserScramAlteration]) -> anyhow::Result<()> {
    for (_, result) in client.alter_user_scram_credentials(alterations).await? {
        result?;
    }
    Ok(())
}

async fn list(client: &Client, args: ListArgs) -> anyhow::Result<()> {
    let names: Vec<&str> = args.names.iter().map(String::as_str).collect();
    let described = client
        .describe_user_scram_credentials((!names.is_empty()).then_some(&names[..]))
        .await?;
    let mut users = Vec::with_capacity(described.len());
    for (user, result) in described {
        users.push((user, result?));
    }
    users.sort_by(|a, b| a.0.cmp(&b.0));
    let mechanism_name = |c: &strom_client::ScramCredentialInfo| {
        c.mechanism.map_or_else(
            || format!("UNKNOWN({})", c.mechanism_code),
            |m| m.name().to_owned(),
        )
    };
    if args.json {
        let users: Vec<serde_json::Value> = users
            .iter()
            .map(|(user, credentials)| {
                let credentials: Vec<serde_json::Value> = credentials
                    .iter()
                    .map(|c| serde_json::json!({"mechanism": mechanism_name(c), "iterations": c.iterations}))
                    .collect();
                serde_json::json!({"user": user, "credentials": credentials})
            })
            .collect();
        return print_json(&serde_json::json!({ "users": users }));
    }
    if users.is_empty() {
        outln!("(no SCRAM users)");
        return Ok(());
    }
    let mut table = Table::new(&["USER", "MECHANISM", "ITERATIONS"]);
    for (user, credentials) in &users {
        for c in credentials {
            table.row(vec![
                user.clone(),
                mechanism_name(c),
                c.iterations.to_string(),
            ]);
        }
    }
    out!("{}", table.render());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanisms_are_parsed_by_kafkas_names() {
        assert_eq!(parse_mechanism("SCRAM-SHA-512"), Ok(ScramMechanism::Sha512));
        assert!(parse_mechanism("PLAIN").is_err());
    }

    #[test]
    fn a_password_is_the_first_line_without_its_ending() {
        assert_eq!(first_line("secret\r\nrest"), "secret");
        assert_eq!(first_line("secret\n"), "secret");
        assert_eq!(first_line(""), "");
    }
}
