//! `strom acl create|list|delete`: ACLs with CreateAcls, DescribeAcls and DeleteAcls, with
//! flags modelled on Kafka's `kafka-acls.sh`.
//!
//! `create` adds one ACL per resource, principal and operation given (the product, like
//! `kafka-acls --add`). `list` and `delete` take the same flags as filters; a flag not given
//! matches anything.

use clap::{Args, Subcommand};
use strom_client::acl::{
    ACL_OPERATIONS, ACL_PATTERN_TYPES, ACL_PERMISSION_TYPES, ACL_RESOURCE_TYPES, acl_code, acl_name,
};
use strom_client::{AclBinding, AclBindingFilter};

use crate::common::{ConnectArgs, out, outln, print_json, runtime, usage};
use crate::table::Table;

/// Kafka's codes used below.
const ANY: i8 = 1;
const DENY: i8 = 2;
const ALLOW: i8 = 3;

#[derive(Debug, Args)]
#[command(
    about = "Create, list and delete ACLs",
    long_about = "Manage access control lists with CreateAcls, DescribeAcls and DeleteAcls, \
        like kafka-acls.sh. An ACL allows or denies a principal (User:alice, or User:* for \
        everyone) from a host (* for any) an operation on topics, groups, transactional ids, \
        delegation tokens or the cluster, named exactly (literal), by prefix (prefixed), or \
        all of them (the literal name *).",
    after_help = "Examples:\n  \
        strom acl create --allow-principal User:alice --operation Read --topic orders\n  \
        strom acl create --allow-principal User:bob --operation Write --topic orders- --resource-pattern-type prefixed\n  \
        strom acl create --deny-principal User:mallory --operation All --cluster\n  \
        strom acl list --topic orders --resource-pattern-type match\n  \
        strom acl delete --principal User:alice"
)]
pub struct AclArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(subcommand)]
    command: AclCommand,
}

#[derive(Debug, Subcommand)]
enum AclCommand {
    /// Create ACLs.
    #[command(
        long_about = "Create one ACL for every combination of resource, principal \
            (--allow-principal, --deny-principal) and --operation. An ACL that exists already \
            is left as it is.",
        after_help = "Examples:\n  \
            strom acl create --allow-principal User:alice --operation Read --operation Describe --topic orders\n  \
            strom acl create --allow-principal User:* --operation Read --group consumers- --resource-pattern-type prefixed\n  \
            strom acl create --allow-principal User:app --host 10.0.0.5 --operation IdempotentWrite --cluster"
    )]
    Create(CreateArgs),
    /// List ACLs.
    #[command(
        long_about = "List the ACLs the flags select; without flags, every ACL. With \
            --resource-pattern-type match, a --topic or --group name lists every ACL that \
            applies to it: literal, wildcard and prefixed.",
        after_help = "Examples:\n  \
            strom acl list\n  \
            strom acl list --topic orders --resource-pattern-type match\n  \
            strom acl list --principal User:alice --json"
    )]
    List(FilterArgs),
    /// Delete ACLs.
    #[command(
        long_about = "Delete every ACL the flags select. A resource or --principal is \
            required, or --all to delete every ACL.",
        after_help = "Examples:\n  \
            strom acl delete --topic orders --principal User:alice\n  \
            strom acl delete --topic orders- --resource-pattern-type prefixed\n  \
            strom acl delete --all"
    )]
    Delete(DeleteArgs),
}

/// The resources an ACL command is about.
#[derive(Debug, Args)]
struct ResourceArgs {
    /// A topic (repeatable); `*` is every topic.
    #[arg(long, value_name = "NAME")]
    topic: Vec<String>,
    /// A consumer group (repeatable).
    #[arg(long, value_name = "NAME")]
    group: Vec<String>,
    /// A transactional id (repeatable).
    #[arg(long, value_name = "ID")]
    transactional_id: Vec<String>,
    /// A delegation token (repeatable).
    #[arg(long, value_name = "ID")]
    delegation_token: Vec<String>,
    /// The cluster (`kafka-cluster`).
    #[arg(long)]
    cluster: bool,
}

impl ResourceArgs {
    /// (resource type code, name) of every resource given.
    fn resources(&self) -> Vec<(i8, String)> {
        let named = |code: i8, names: &[String]| {
            names
                .iter()
                .map(move |n| (code, n.clone()))
                .collect::<Vec<_>>()
        };
        let mut out = named(2, &self.topic);
        out.extend(named(3, &self.group));
        out.extend(named(5, &self.transactional_id));
        out.extend(named(6, &self.delegation_token));
        if self.cluster {
            out.push((4, "kafka-cluster".to_owned()));
        }
        out
    }
}

#[derive(Debug, Args)]
struct CreateArgs {
    #[command(flatten)]
    resources: ResourceArgs,
    /// A principal the ACLs allow (repeatable), e.g. User:alice or User:*.
    #[arg(long, value_name = "PRINCIPAL")]
    allow_principal: Vec<String>,
    /// A principal the ACLs deny (repeatable).
    #[arg(long, value_name = "PRINCIPAL")]
    deny_principal: Vec<String>,
    /// The client host (IP address) the ACLs apply to; `*` is any.
    #[arg(long, value_name = "HOST", default_value = "*")]
    host: String,
    /// An operation (repeatable): All, Read, Write, Create, Delete, Alter, Describe,
    /// ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite, ...
    #[arg(long, value_name = "OPERATION", required = true, value_parser = parse_operation)]
    operation: Vec<i8>,
    /// literal (the exact name) or prefixed (every name starting with it).
    #[arg(long, value_name = "TYPE", default_value = "literal", value_parser = parse_pattern_type)]
    resource_pattern_type: i8,
}

#[derive(Debug, Args)]
struct FilterArgs {
    #[command(flatten)]
    resources: ResourceArgs,
    /// Only ACLs of this principal (exactly: User:* is its own principal).
    #[arg(long, value_name = "PRINCIPAL")]
    principal: Option<String>,
    /// Only ACLs of this host.
    #[arg(long, value_name = "HOST")]
    host: Option<String>,
    /// Only ACLs of this operation.
    #[arg(long, value_name = "OPERATION", value_parser = parse_operation)]
    operation: Option<i8>,
    /// any, match, literal or prefixed.
    #[arg(long, value_name = "TYPE", default_value = "any", value_parser = parse_pattern_type)]
    resource_pattern_type: i8,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct DeleteArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// Delete every ACL the other flags select, even with no resource or principal given.
    #[arg(long)]
    all: bool,
}

fn parse_operation(name: &str) -> Result<i8, String> {
    // Kafka's tool spells operations in CamelCase (IdempotentWrite); accept that too.
    let mut snake = String::new();
    let mut previous_lower = false;
    for c in name.chars() {
        if c.is_ascii_uppercase() && previous_lower {
            snake.push('_');
        }
        previous_lower = c.is_ascii_lowercase();
        snake.push(c);
    }
    acl_code(ACL_OPERATIONS, &snake)
        .filter(|c| *c != ANY)
        .ok_or_else(|| format!("unknown operation '{name}'"))
}

fn parse_pattern_type(name: &str) -> Result<i8, String> {
    acl_code(ACL_PATTERN_TYPES, name)
        .ok_or_else(|| format!("expected any, match, literal or prefixed, got '{name}'"))
}

impl FilterArgs {
    /// One filter per resource given, or one for every resource.
    fn filters(&self) -> Vec<AclBindingFilter> {
        let base = AclBindingFilter {
            pattern_type: self.resource_pattern_type,
            principal: self.principal.clone(),
            host: self.host.clone(),
            operation: self.operation.unwrap_or(ANY),
            ..AclBindingFilter::any()
        };
        let resources = self.resources.resources();
        if resources.is_empty() {
            return vec![base];
        }
        resources
            .into_iter()
            .map(|(resource_type, name)| AclBindingFilter {
                resource_type,
                resource_name: Some(name),
                ..base.clone()
            })
            .collect()
    }
}

pub fn run(args: AclArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let client = args.connect.connect().await?;
        match args.command {
            AclCommand::Create(a) => create(&client, a).await,
            AclCommand::List(a) => list(&client, a).await,
            AclCommand::Delete(a) => delete(&client, a).await,
        }
    })
}

async fn create(client: &strom_client::Client, args: CreateArgs) -> anyhow::Result<()> {
    let resources = args.resources.resources();
    if resources.is_empty() {
        usage!(
            "give a resource: --topic, --group, --transactional-id, --delegation-token or --cluster"
        );
    }
    let principals: Vec<(&String, i8)> = args
        .allow_principal
        .iter()
        .map(|p| (p, ALLOW))
        .chain(args.deny_principal.iter().map(|p| (p, DENY)))
        .collect();
    if principals.is_empty() {
        usage!("give --allow-principal or --deny-principal");
    }
    let mut bindings = Vec::new();
    for (resource_type, name) in &resources {
        for (principal, permission_type) in &principals {
            for operation in &args.operation {
                bindings.push(AclBinding {
                    resource_type: *resource_type,
                    resource_name: name.clone(),
                    pattern_type: args.resource_pattern_type,
                    principal: (*principal).clone(),
                    host: args.host.clone(),
                    operation: *operation,
                    permission_type: *permission_type,
                });
            }
        }
    }
    for result in client.create_acls(&bindings).await? {
        result?;
    }
    outln!(
        "Created {} ACL{}:",
        bindings.len(),
        if bindings.len() == 1 { "" } else { "s" }
    );
    out!("{}", acl_table(&bindings).render());
    Ok(())
}

async fn list(client: &strom_client::Client, args: FilterArgs) -> anyhow::Result<()> {
    let mut acls = Vec::new();
    for filter in args.filters() {
        acls.extend(client.describe_acls(&filter).await?);
    }
    acls.sort();
    acls.dedup();
    if args.json {
        return print_json(&serde_json::json!({
            "acls": acls.iter().map(acl_json).collect::<Vec<_>>()
        }));
    }
    if acls.is_empty() {
        outln!("(no ACLs)");
    } else {
        out!("{}", acl_table(&acls).render());
    }
    Ok(())
}

async fn delete(client: &strom_client::Client, args: DeleteArgs) -> anyhow::Result<()> {
    let f = &args.filter;
    if !args.all && f.resources.resources().is_empty() && f.principal.is_none() {
        usage!("give a resource or --principal to delete by, or --all to delete every ACL");
    }
    let mut removed = Vec::new();
    for result in client.delete_acls(&f.filters()).await? {
        removed.extend(result?);
    }
    removed.sort();
    removed.dedup();
    if f.json {
        return print_json(&serde_json::json!({
            "deleted": removed.iter().map(acl_json).collect::<Vec<_>>()
        }));
    }
    outln!(
        "Deleted {} ACL{}.",
        removed.len(),
        if removed.len() == 1 { "" } else { "s" }
    );
    if !removed.is_empty() {
        out!("{}", acl_table(&removed).render());
    }
    Ok(())
}

fn acl_table(acls: &[AclBinding]) -> Table {
    let mut table = Table::new(&[
        "RESOURCE-TYPE",
        "NAME",
        "PATTERN",
        "PRINCIPAL",
        "HOST",
        "OPERATION",
        "PERMISSION",
    ]);
    for a in acls {
        table.row(vec![
            acl_name(ACL_RESOURCE_TYPES, a.resource_type),
            a.resource_name.clone(),
            acl_name(ACL_PATTERN_TYPES, a.pattern_type),
            a.principal.clone(),
            a.host.clone(),
            acl_name(ACL_OPERATIONS, a.operation),
            acl_name(ACL_PERMISSION_TYPES, a.permission_type),
        ]);
    }
    table
}

fn acl_json(a: &AclBinding) -> serde_json::Value {
    serde_json::json!({
        "resource_type": acl_name(ACL_RESOURCE_TYPES, a.resource_type),
        "resource_name": a.resource_name,
        "pattern_type": acl_name(ACL_PATTERN_TYPES, a.pattern_type),
        "principal": a.principal,
        "host": a.host,
        "operation": acl_name(ACL_OPERATIONS, a.operation),
        "permission_type": acl_name(ACL_PERMISSION_TYPES, a.permission_type),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_parse_in_kafka_acls_spelling_and_kafkas_names() {
        assert_eq!(parse_operation("IdempotentWrite"), Ok(12));
        assert_eq!(parse_operation("Read"), Ok(3));
        assert_eq!(parse_operation("ALL"), Ok(2));
        assert_eq!(parse_operation("All"), Ok(2));
        assert_eq!(parse_operation("DESCRIBE_CONFIGS"), Ok(10));
        assert_eq!(parse_operation("describe-configs"), Ok(10));
        assert!(parse_operation("Any").is_err());
        assert!(parse_operation("Fly").is_err());
    }
}
