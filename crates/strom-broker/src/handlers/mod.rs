//! One module per Kafka API. Each declares `VERSIONS` (the versions it serves) and
//! `async fn handle(state, ctx, request) -> Reply<Response>`.
//!
//! The [`registry!`] below is the single list of served APIs: dispatch and the ApiVersions
//! answer are both generated from it, so a handler cannot be served without being advertised
//! or advertised without being served.
//!
//! A handler's `async fn` is the ordered part of the request: the connection awaits it before
//! reading the next request, which keeps appends from one connection in order. What may wait
//! afterwards without holding up the connection (an acks=all fsync, a fetch long poll) is
//! returned as [`Reply::Later`]; responses are still written in request order.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Encodable, Request, VersionRange};

use crate::state::BrokerState;

/// What a handler answers.
pub enum Reply<T> {
    /// The response is ready.
    Now(T),
    /// The response is ready when this future completes.
    Later(BoxFuture<'static, T>),
    /// No response at all (produce with acks=0).
    Nothing,
}

/// Facts about the request that handlers may need beyond its body.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub api_key: ApiKey,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
    pub peer: SocketAddr,
    /// The connection's listener, principal and authentication state.
    pub session: Arc<crate::security::Session>,
}

impl RequestContext {
    /// Who sent the request (`User:ANONYMOUS` when nobody authenticated).
    pub fn principal(&self) -> strom_security::KafkaPrincipal {
        self.session.principal()
    }

    /// The authorizer for this request (allows everything when ACLs are not enforced).
    pub fn authz(&self, state: &BrokerState) -> crate::security::Authz {
        crate::security::Authz::new(state, self)
    }

    /// The name of the listener the request arrived on.
    pub fn listener(&self) -> &str {
        &self.session.listener.name
    }
}

/// A request body the codec could not decode: the connection is closed, as Kafka does.
#[derive(Debug, thiserror::Error)]
#[error("cannot decode {api_key:?} v{version} request: {message}")]
pub struct DecodeError {
    pub api_key: ApiKey,
    pub version: i16,
    pub message: String,
}

async fn run<Req, Resp, Fut>(
    ctx: RequestContext,
    mut body: Bytes,
    handle: impl FnOnce(RequestContext, Req) -> Fut,
) -> Result<Reply<Bytes>, DecodeError>
where
    Req: Request,
    Resp: Encodable + Send + 'static,
    Fut: std::future::Future<Output = Reply<Resp>>,
{
    // Bounded: no count or length in the body allocates more than the bytes received.
    let request =
        strom_protocol::decode_request::<Req>(&mut body, ctx.api_version).map_err(|e| {
            DecodeError {
                api_key: ctx.api_key,
                version: ctx.api_version,
                message: e.to_string(),
            }
        })?;
    let (api_key, version, correlation_id) = (ctx.api_key, ctx.api_version, ctx.correlation_id);
    let encode = move |response: Resp| -> Bytes {
        match strom_protocol::encode_response(api_key, version, correlation_id, &response) {
            Ok(frame) => frame,
            Err(e) => {
                // A response our own handler built that the codec rejects is a bug; the empty
                // frame makes the connection close instead of sending garbage.
                tracing::error!(error = %e, "cannot encode response");
                Bytes::new()
            }
        }
    };
    Ok(match handle(ctx, request).await {
        Reply::Now(response) => Reply::Now(encode(response)),
        Reply::Later(future) => Reply::Later(Box::pin(async move { encode(future.await) })),
        Reply::Nothing => Reply::Nothing,
    })
}

/// Runs a group coordinator call: the submission is the ordered part of the request, the
/// coordinator's answer (which may wait for a rebalance or a write) the waiting part.
/// `respond` gets `None` when the coordinator is not running.
pub(crate) async fn group_call<T: Send + 'static>(
    state: &Arc<BrokerState>,
    call: impl FnOnce(&mut strom_group::Coordinator, i64, strom_group::RequestId) -> strom_group::Output
    + Send
    + 'static,
    respond: impl FnOnce(Option<strom_group::Response>) -> T + Send + 'static,
) -> Reply<T> {
    let Some(groups) = state.groups() else {
        return Reply::Now(respond(None));
    };
    match groups.submit(call).await {
        Ok(receiver) => Reply::Later(Box::pin(async move { respond(receiver.await.ok()) })),
        Err(_) => Reply::Now(respond(None)),
    }
}

/// Runs a transaction coordinator call, as [`group_call`] does for groups.
pub(crate) async fn txn_call<T: Send + 'static>(
    state: &Arc<BrokerState>,
    call: impl FnOnce(&mut strom_txn::Coordinator, i64, strom_txn::RequestId) -> strom_txn::Output
    + Send
    + 'static,
    respond: impl FnOnce(Option<strom_txn::Response>) -> T + Send + 'static,
) -> Reply<T> {
    let Some(transactions) = state.transactions() else {
        return Reply::Now(respond(None));
    };
    match transactions.submit(call).await {
        Ok(receiver) => Reply::Later(Box::pin(async move { respond(receiver.await.ok()) })),
        Err(_) => Reply::Now(respond(None)),
    }
}

/// Kafka prints a member's host as `InetAddress.toString()` does: `/127.0.0.1`.
pub(crate) fn client_host(ctx: &RequestContext) -> String {
    format!("/{}", ctx.peer.ip())
}

/// COORDINATOR_NOT_AVAILABLE: what a group request gets when the coordinator cannot answer.
pub(crate) const COORDINATOR_NOT_AVAILABLE: i16 =
    kafka_protocol::error::ResponseError::CoordinatorNotAvailable.code();

// The handler modules are declared here, outside the macro, so rustfmt formats them.
pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod alter_configs;
pub mod alter_partition_reassignments;
pub mod alter_user_scram_credentials;
pub mod api_versions;
pub mod create_acls;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_acls;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_acls;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_quorum;
pub mod describe_transactions;
pub mod describe_user_scram_credentials;
pub mod elect_leaders;
pub mod end_txn;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod list_partition_reassignments;
pub mod list_transactions;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod sasl_authenticate;
pub mod sasl_handshake;
pub mod sync_group;
pub mod txn_offset_commit;
pub mod unregister_broker;
pub mod write_txn_markers;

macro_rules! registry {
    ($($key:ident => $module:ident),* $(,)?) => {
        /// Every API this broker serves and its version range.
        pub const SUPPORTED_APIS: &[(ApiKey, VersionRange)] = &[$((ApiKey::$key, $module::VERSIONS)),*];

        /// Decodes the body, runs the API's handler, and encodes its response.
        pub async fn dispatch(
            state: &Arc<BrokerState>,
            ctx: RequestContext,
            body: Bytes,
        ) -> Result<Reply<Bytes>, DecodeError> {
            match ctx.api_key {
                $(ApiKey::$key => run(ctx, body, |ctx, req| $module::handle(state, ctx, req)).await,)*
                other => Err(DecodeError {
                    api_key: other,
                    version: ctx.api_version,
                    message: "API not served".into(),
                }),
            }
        }
    };
}

registry! {
    Produce => produce,
    Fetch => fetch,
    ListOffsets => list_offsets,
    Metadata => metadata,
    ApiVersions => api_versions,
    CreateTopics => create_topics,
    DeleteTopics => delete_topics,
    DeleteRecords => delete_records,
    InitProducerId => init_producer_id,
    OffsetForLeaderEpoch => offset_for_leader_epoch,
    DescribeConfigs => describe_configs,
    AlterConfigs => alter_configs,
    DescribeLogDirs => describe_log_dirs,
    DescribeProducers => describe_producers,
    DescribeTransactions => describe_transactions,
    ListTransactions => list_transactions,
    AddPartitionsToTxn => add_partitions_to_txn,
    AddOffsetsToTxn => add_offsets_to_txn,
    EndTxn => end_txn,
    WriteTxnMarkers => write_txn_markers,
    CreatePartitions => create_partitions,
    IncrementalAlterConfigs => incremental_alter_configs,
    DescribeCluster => describe_cluster,
    DescribeQuorum => describe_quorum,
    ElectLeaders => elect_leaders,
    AlterPartitionReassignments => alter_partition_reassignments,
    ListPartitionReassignments => list_partition_reassignments,
    UnregisterBroker => unregister_broker,
    DescribeUserScramCredentials => describe_user_scram_credentials,
    AlterUserScramCredentials => alter_user_scram_credentials,
    DescribeAcls => describe_acls,
    CreateAcls => create_acls,
    DeleteAcls => delete_acls,
    FindCoordinator => find_coordinator,
    JoinGroup => join_group,
    SyncGroup => sync_group,
    Heartbeat => heartbeat,
    LeaveGroup => leave_group,
    OffsetCommit => offset_commit,
    OffsetFetch => offset_fetch,
    ListGroups => list_groups,
    DescribeGroups => describe_groups,
    DeleteGroups => delete_groups,
    OffsetDelete => offset_delete,
    TxnOffsetCommit => txn_offset_commit,
    SaslHandshake => sasl_handshake,
    SaslAuthenticate => sasl_authenticate,
}

/// The versions of `api_key` this broker serves.
pub fn supported_versions(api_key: ApiKey) -> Option<VersionRange> {
    SUPPORTED_APIS
        .iter()
        .find(|(key, _)| *key == api_key)
        .map(|(_, versions)| *versions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_served_version_is_one_the_codec_supports() {
        for (key, versions) in SUPPORTED_APIS {
            let codec = key.valid_versions();
            assert!(
                versions.min >= codec.min
                    && versions.max <= codec.max
                    && versions.min <= versions.max,
                "{key:?}: serves {versions} but the codec supports {codec}"
            );
        }
    }
}
