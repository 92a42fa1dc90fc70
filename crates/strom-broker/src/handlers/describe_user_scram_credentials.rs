//! DescribeUserScramCredentials (KIP-554): which SCRAM mechanisms each user has, with their
//! iteration counts (`kafka-configs --describe --entity-type users`, `strom user list`).
//!
//! Answered from this broker's metadata image, as Kafka answers it from its metadata cache.
//! Never returns a salt or a key. A null or empty user list means every user. A user named
//! twice gets one DUPLICATE_RESOURCE result; a named user without any credential gets
//! RESOURCE_NOT_FOUND (both with Kafka's messages, which tools show).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_cluster::MetadataImage;

use super::{Reply, RequestContext};
use crate::state::BrokerState;
use strom_cluster::acl::AclOperation;

/// Kafka serves v0 only.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

pub async fn handle(
    state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: DescribeUserScramCredentialsRequest,
) -> Reply<DescribeUserScramCredentialsResponse> {
    // Kafka: DESCRIBE on the cluster, else CLUSTER_AUTHORIZATION_FAILED.
    if !ctx.authz(state).allows_cluster(AclOperation::Describe) {
        let e = crate::security::authz::cluster_denied();
        return Reply::Now(
            DescribeUserScramCredentialsResponse::default()
                .with_error_code(e.code())
                .with_error_message(Some(StrBytes::from_string(e.message))),
        );
    }
    let image = state.image();
    let requested: Vec<String> = request
        .users
        .unwrap_or_default()
        .iter()
        .map(|u| u.name.to_string())
        .collect();
    Reply::Now(
        DescribeUserScramCredentialsResponse::default().with_results(describe(&image, &requested)),
    )
}

/// One result per distinct user: every user when `requested` is empty.
pub fn describe(
    image: &MetadataImage,
    requested: &[String],
) -> Vec<DescribeUserScramCredentialsResult> {
    if requested.is_empty() {
        return image
            .scram_users()
            .into_iter()
            .map(|user| described(image, user))
            .collect();
    }
    let mut results: Vec<DescribeUserScramCredentialsResult> = Vec::new();
    for (i, user) in requested.iter().enumerate() {
        if requested[..i].contains(user) {
            continue;
        }
        let result = if requested[i + 1..].contains(user) {
            refused(
                user,
                ResponseError::DuplicateResource,
                "Cannot describe SCRAM credentials for the same user twice in a single request",
            )
        } else if !image.scram_credentials_of(user).is_empty() {
            described(image, user)
        } else {
            refused(
                user,
                ResponseError::ResourceNotFound,
                "Attempt to describe a user credential that does not exist",
            )
        };
        results.push(result);
    }
    results
}

fn described(image: &MetadataImage, user: &str) -> DescribeUserScramCredentialsResult {
    let infos = image
        .scram_credentials_of(user)
        .into_iter()
        .map(|(mechanism, credential)| {
            CredentialInfo::default()
                .with_mechanism(mechanism.code())
                .with_iterations(credential.iterations)
        })
        .collect();
    DescribeUserScramCredentialsResult::default()
        .with_user(StrBytes::from_string(user.to_string()))
        .with_credential_infos(infos)
}

fn refused(user: &str, error: ResponseError, message: &str) -> DescribeUserScramCredentialsResult {
    DescribeUserScramCredentialsResult::default()
        .with_user(StrBytes::from_string(user.to_string()))
        .with_error_code(error.code())
        .with_error_message(Some(StrBytes::from_string(format!("{message}: {user}"))))
}
