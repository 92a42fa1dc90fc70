//! Request headers.
//!
//! Every request header version starts with the same fixed prefix: api key (i16), api version
//! (i16), correlation id (i32). [`RequestHeaderPrefix::peek`] reads just that, so the broker can
//! identify, log and answer (or refuse) a request whose key or version it cannot decode.
//! [`decode_request_header`] then decodes the full header with the version the API implies
//! (header v2 carries tagged fields for flexible versions) and leaves the body in the buffer.

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::Decodable;

/// Bytes of the fixed header prefix.
pub const PREFIX_BYTES: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    #[error("request of {0} bytes is shorter than a request header")]
    Truncated(usize),
    #[error("malformed request header: {0}")]
    Malformed(String),
}

/// The fixed prefix of every request header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHeaderPrefix {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
}

impl RequestHeaderPrefix {
    pub fn peek(frame: &[u8]) -> Result<Self, HeaderError> {
        if frame.len() < PREFIX_BYTES {
            return Err(HeaderError::Truncated(frame.len()));
        }
        Ok(Self {
            api_key: i16::from_be_bytes([frame[0], frame[1]]),
            api_version: i16::from_be_bytes([frame[2], frame[3]]),
            correlation_id: i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]),
        })
    }
}

/// Decodes the full header of a request for a known API and version, advancing `frame` to the
/// start of the body.
pub fn decode_request_header(
    frame: &mut Bytes,
    api_key: ApiKey,
    api_version: i16,
) -> Result<RequestHeader, HeaderError> {
    let header_version = api_key.request_header_version(api_version);
    RequestHeader::decode(frame, header_version).map_err(|e| HeaderError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    #[test]
    fn prefix_reads_unknown_keys() {
        let frame = [0x7f, 0x00, 0x00, 0x09, 0x00, 0x00, 0x01, 0x02, 0xff];
        let prefix = RequestHeaderPrefix::peek(&frame).unwrap();
        assert_eq!(prefix.api_key, 0x7f00);
        assert_eq!(prefix.api_version, 9);
        assert_eq!(prefix.correlation_id, 0x0102);
    }

    #[test]
    fn prefix_of_short_frame_is_truncated() {
        assert!(matches!(
            RequestHeaderPrefix::peek(&[0, 1, 2]),
            Err(HeaderError::Truncated(3))
        ));
    }

    #[test]
    fn flexible_header_leaves_body_in_place() {
        let header = RequestHeader::default()
            .with_request_api_key(ApiKey::Metadata as i16)
            .with_request_api_version(12)
            .with_correlation_id(77)
            .with_client_id(Some(StrBytes::from_static_str("test-client")));
        let mut buf = BytesMut::new();
        header.encode(&mut buf, 2).unwrap();
        buf.extend_from_slice(b"BODY");
        let mut frame = buf.freeze();
        let decoded = decode_request_header(&mut frame, ApiKey::Metadata, 12).unwrap();
        assert_eq!(decoded.correlation_id, 77);
        assert_eq!(decoded.client_id.as_deref(), Some("test-client"));
        assert_eq!(&frame[..], b"BODY");
    }

    #[test]
    fn truncated_client_id_is_malformed() {
        // api key 3, version 1 (header v1), correlation id, client id length 10 but 2 bytes.
        let mut frame = Bytes::from_static(&[0, 3, 0, 1, 0, 0, 0, 1, 0, 10, b'a', b'b']);
        assert!(decode_request_header(&mut frame, ApiKey::Metadata, 1).is_err());
    }
}
