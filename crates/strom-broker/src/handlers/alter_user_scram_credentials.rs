//! AlterUserScramCredentials (KIP-554): create, replace and delete SCRAM users
//! (`kafka-configs --alter --add-config 'SCRAM-SHA-256=[...]' --entity-type users`,
//! `strom user create|delete`).
//!
//! The client salts and hashes the password itself; the request carries the salted password,
//! which the active controller turns into the stored and server keys
//! (`strom_cluster::controller::alter_user_scram_credentials` documents the rules). Every user
//! named gets one result; a controller that cannot be reached fails every user with the same
//! retriable error.

use std::sync::Arc;

use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_cluster::controller::{ScramDeletion, ScramUpsertion, UserResult};
use strom_quorum::{ControllerReply, ControllerRequest};

use super::{Reply, RequestContext};
use crate::errors::KafkaError;
use crate::state::BrokerState;
use strom_cluster::acl::AclOperation;

/// Kafka serves v0 only.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: AlterUserScramCredentialsRequest,
) -> Reply<AlterUserScramCredentialsResponse> {
    let deletions: Vec<ScramDeletion> = request
        .deletions
        .iter()
        .map(|d| ScramDeletion {
            name: d.name.to_string(),
            mechanism: d.mechanism,
        })
        .collect();
    let upsertions: Vec<ScramUpsertion> = request
        .upsertions
        .iter()
        .map(|u| ScramUpsertion {
            name: u.name.to_string(),
            mechanism: u.mechanism,
            iterations: u.iterations,
            salt: u.salt.to_vec(),
            salted_password: u.salted_password.to_vec(),
        })
        .collect();
    let users = named_users(&deletions, &upsertions);
    // Kafka: ALTER on the cluster, else CLUSTER_AUTHORIZATION_FAILED for every user.
    let authorized = if ctx.authz(state).allows_cluster(AclOperation::Alter) {
        Ok(())
    } else {
        Err(crate::security::authz::cluster_denied())
    };
    let outcome = match authorized {
        Ok(()) => alter(state, deletions, upsertions).await,
        Err(e) => Err(e),
    };
    let results = match outcome {
        Ok(results) => results,
        Err(e) => users
            .into_iter()
            .map(|user| {
                let error = strom_cluster::ApiError::new(e.error, e.message.clone());
                (user, Err(error))
            })
            .collect(),
    };
    let results = results
        .into_iter()
        .map(|(user, result)| {
            let mut r = AlterUserScramCredentialsResult::default()
                .with_user(StrBytes::from_string(user.clone()));
            match result {
                Ok(()) => tracing::info!(user, "altered SCRAM credentials"),
                Err(e) => {
                    r.error_code = e.code();
                    r.error_message = Some(StrBytes::from_string(e.message));
                }
            }
            r
        })
        .collect();
    Reply::Now(AlterUserScramCredentialsResponse::default().with_results(results))
}

async fn alter(
    state: &BrokerState,
    deletions: Vec<ScramDeletion>,
    upsertions: Vec<ScramUpsertion>,
) -> Result<Vec<UserResult>, KafkaError> {
    let response = state
        .controller_call(ControllerRequest::AlterUserScramCredentials {
            deletions,
            upsertions,
        })
        .await?;
    state.wait_for_replicas(response.offset).await;
    match response.reply {
        ControllerReply::AlterUserScramCredentials(results) => Ok(results),
        other => Err(crate::state::unexpected_reply(&other)),
    }
}

/// Every user the request names, once, in order of first appearance.
fn named_users(deletions: &[ScramDeletion], upsertions: &[ScramUpsertion]) -> Vec<String> {
    let mut users: Vec<String> = Vec::new();
    let names = deletions
        .iter()
        .map(|d| &d.name)
        .chain(upsertions.iter().map(|u| &u.name));
    for name in names {
        if !users.contains(name) {
            users.push(name.clone());
        }
    }
    users
}
