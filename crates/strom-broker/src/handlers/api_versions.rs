//! ApiVersions: the versions of every API this broker serves, generated from the handler
//! registry, so the answer cannot drift from what dispatch accepts.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::VersionRange;

use super::{Reply, RequestContext, SUPPORTED_APIS};
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 4 };

pub async fn handle(
    _state: &Arc<BrokerState>,
    ctx: RequestContext,
    request: ApiVersionsRequest,
) -> Reply<ApiVersionsResponse> {
    let mut response = ApiVersionsResponse::default().with_api_keys(version_table());
    // KIP-511: v3+ clients name themselves; Kafka refuses names outside this alphabet.
    if ctx.api_version >= 3
        && (!valid_software_field(&request.client_software_name)
            || !valid_software_field(&request.client_software_version))
    {
        response.error_code = ResponseError::InvalidRequest.code();
    }
    Reply::Now(response)
}

/// The answer to an ApiVersions request whose version we do not serve: a v0 response (the one
/// every client can read) with UNSUPPORTED_VERSION and our table, so the client can retry with
/// a version we share (KIP-511).
pub fn unsupported_version_response(correlation_id: i32) -> Bytes {
    let response = ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(version_table());
    strom_protocol::encode_response(ApiKey::ApiVersions, 0, correlation_id, &response)
        .unwrap_or_default()
}

fn version_table() -> Vec<ApiVersion> {
    SUPPORTED_APIS
        .iter()
        .map(|(key, versions)| {
            ApiVersion::default()
                .with_api_key(*key as i16)
                .with_min_version(versions.min)
                .with_max_version(versions.max)
        })
        .collect()
}

/// `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?`
fn valid_software_field(value: &str) -> bool {
    let bytes = value.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    first.is_ascii_alphanumeric()
        && last.is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn software_names_follow_kip_511() {
        assert!(valid_software_field("librdkafka"));
        assert!(valid_software_field("2.0.2"));
        assert!(valid_software_field("a"));
        assert!(!valid_software_field(""));
        assert!(!valid_software_field("-x"));
        assert!(!valid_software_field("x."));
        assert!(!valid_software_field("a b"));
    }

    #[test]
    fn table_lists_every_registered_api() {
        let table = version_table();
        assert_eq!(table.len(), SUPPORTED_APIS.len());
        assert!(table.iter().any(|v| v.api_key == ApiKey::Produce as i16));
    }
}
