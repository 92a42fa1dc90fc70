//! Request bodies decoded with every allocation bounded by the bytes actually received.
//!
//! kafka-protocol 0.18 reserves `Vec::with_capacity(count)` for an array as soon as it reads the
//! count, before decoding a single element, and a compact string or bytes field allocates its
//! declared length (zeroed) before copying into it. A count comes from the wire: a dozen bytes
//! can declare four billion elements, and the reservation aborts the process (or, with
//! overcommit, costs terabytes of address space). The crate cannot be patched here, so
//! [`decode_request`] makes sure the codec never sees such a count:
//!
//! - **Non-flexible versions** (int32 counts, int16 and int32 lengths) are walked first with the
//!   request's [`layout`]: which fields are counts, lengths or plain values. A count that cannot
//!   fit in the bytes left (every element takes at least its smallest encoding) rejects the
//!   request before the codec runs. The layout is not written by hand: it is learned from the
//!   codec itself, by decoding synthetic bodies (see [`layout`]), once per API and version.
//! - **Flexible versions** count and size everything with unsigned varints, and nothing else in
//!   a request body is a varint. The codec reads them byte by byte, so the body is handed to it
//!   inside [`varint::Guarded`], which refuses any varint whose value exceeds the bytes left
//!   after it (plus one: a compact length stores length + 1).
//!
//! Either way a count is at most the bytes received, so an allocation is at most the frame
//! size (bounded by `socket.request.max.bytes`) times the in-memory size of an element.

pub mod layout;
pub mod varint;

#[macro_use]
mod kinds;

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Encodable, Message, Request, VersionRange};

/// Why a request body was refused. The connection answers by closing, as Kafka does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// A count or length larger than the bytes that follow it.
    #[error("{what} of {declared} declared with {remaining} bytes left")]
    Oversized {
        what: &'static str,
        declared: u64,
        remaining: usize,
    },
    /// The body ends inside a field, or a length is negative.
    #[error("malformed body: {0}")]
    Malformed(String),
    /// The codec could not be taught this version's layout (a bug caught by a test).
    #[error("no layout for {api_key} v{version}: {reason}")]
    NoLayout {
        api_key: i16,
        version: i16,
        reason: String,
    },
}

/// Decodes a request body of `version`, refusing counts and lengths the body cannot hold before
/// the codec allocates for them. On success `body` is advanced past what the codec read.
pub fn decode_request<R: Request>(body: &mut Bytes, version: i16) -> Result<R, BodyError> {
    if version < R::VERSIONS.min || version > R::VERSIONS.max {
        return Err(BodyError::Malformed(format!(
            "version {version} outside {}",
            R::VERSIONS
        )));
    }
    // Request header v2 is the flexible one; it goes with flexible body versions.
    if R::header_version(version) >= 2 {
        let mut guarded = varint::Guarded::new(std::mem::take(body));
        let decoded = R::decode(&mut guarded, version);
        let (rest, refused) = guarded.into_parts();
        *body = rest;
        match (decoded, refused) {
            (_, Some(error)) => Err(error),
            (Ok(request), None) => Ok(request),
            (Err(error), None) => Err(BodyError::Malformed(error.to_string())),
        }
    } else {
        let fields = layout::layout::<R>(version)?;
        layout::check(&fields, body)?;
        R::decode(body, version).map_err(|error| BodyError::Malformed(error.to_string()))
    }
}

macro_rules! decode_any_kind {
    ($($key:ident => $request:ident),* $(,)?) => {
        /// [`decode_request`] for any API the codec knows, picked at run time (for the fuzz
        /// target and for tests that cover every API). A decoded request is encoded again at
        /// the same version and those bytes are returned: a body the codec accepts must
        /// re-encode, and its canonical encoding must pass the bounds too.
        pub fn decode_request_by_key(
            api_key: ApiKey,
            body: &mut Bytes,
            version: i16,
        ) -> Result<Result<Bytes, String>, BodyError> {
            use kafka_protocol::messages::*;
            fn reencode<R: Encodable>(request: R, version: i16) -> Result<Bytes, String> {
                let mut buf = bytes::BytesMut::new();
                request.encode(&mut buf, version).map_err(|e| e.to_string())?;
                Ok(buf.freeze())
            }
            match api_key {
                $(ApiKey::$key => decode_request::<$request>(body, version)
                    .map(|request| reencode(request, version)),)*
            }
        }

        /// The codec's version range of every request it knows.
        pub fn every_request_version_range() -> Vec<(ApiKey, VersionRange)> {
            use kafka_protocol::messages::*;
            vec![$((ApiKey::$key, <$request as Message>::VERSIONS)),*]
        }
    };
}

every_request!(decode_any_kind);

#[cfg(test)]
mod tests;
