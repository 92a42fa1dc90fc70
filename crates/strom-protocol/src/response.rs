//! Response frames: size prefix, response header, body.
//!
//! The response header version follows from the request's API and version, with one exception
//! Kafka makes on purpose: ApiVersions responses always use header v0, because a client that
//! sent a version the broker does not know must still be able to read the answer (KIP-511).

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader};
use kafka_protocol::protocol::Encodable;

#[derive(Debug, thiserror::Error)]
#[error("cannot encode {api_key:?} v{version} response: {message}")]
pub struct EncodeError {
    pub api_key: ApiKey,
    pub version: i16,
    pub message: String,
}

/// Encodes a whole response frame, size prefix included, in one allocation.
pub fn encode_response<R: Encodable>(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &R,
) -> Result<Bytes, EncodeError> {
    let fail = |e: anyhow::Error| EncodeError {
        api_key,
        version,
        message: e.to_string(),
    };
    let header_version = api_key.response_header_version(version);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let size = header.compute_size(header_version).map_err(fail)?
        + body.compute_size(version).map_err(fail)?;
    let mut buf = BytesMut::with_capacity(4 + size);
    buf.put_i32(size as i32);
    header.encode(&mut buf, header_version).map_err(fail)?;
    body.encode(&mut buf, version).map_err(fail)?;
    debug_assert_eq!(buf.len(), 4 + size, "compute_size must match encode");
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Buf;
    use kafka_protocol::messages::ApiVersionsResponse;

    #[test]
    fn api_versions_response_uses_header_v0() {
        let body = ApiVersionsResponse::default();
        let frame = encode_response(ApiKey::ApiVersions, 3, 42, &body).unwrap();
        let mut cursor = &frame[..];
        let size = cursor.get_i32() as usize;
        assert_eq!(size, frame.len() - 4);
        assert_eq!(cursor.get_i32(), 42);
        // Header v0 has no tagged-field byte: the body (error code 0) follows directly.
        assert_eq!(cursor.get_i16(), 0);
    }
}
