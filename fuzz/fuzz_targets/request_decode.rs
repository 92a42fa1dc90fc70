//! Request bodies of every API and version the codec knows (a superset of those the broker
//! serves), decoded as the broker decodes them. The first two bytes pick the API and the
//! version, the rest is the body.
//!
//! Decoding must never panic, and never allocate more than the input justifies: scripts/fuzz
//! runs this with `-malloc_limit_mb`, far below what a count read from a 4 KiB input could
//! reserve if it reached the codec unchecked. A body the codec accepts must re-encode, and that
//! canonical encoding must pass the bounds too (the bounds must not refuse what clients send),
//! with one documented exception: an unknown tag number larger than the bytes after it (the
//! input passed because trailing bytes followed it; the canonical encoding has none).
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use strom_protocol::BodyError;
use strom_protocol::body::varint::REFUSED_VARINT;
use strom_protocol::body::{decode_request_by_key, every_request_version_range};

fuzz_target!(|data: &[u8]| {
    let [api, version, body @ ..] = data else {
        return;
    };
    let apis = every_request_version_range();
    let (api_key, versions) = apis[usize::from(*api) % apis.len()];
    let span = (versions.max - versions.min + 1) as u8;
    let version = versions.min + i16::from(version % span);
    let mut body = Bytes::copy_from_slice(body);
    let Ok(Ok(canonical)) = decode_request_by_key(api_key, &mut body, version) else {
        return;
    };
    let mut again = canonical.clone();
    match decode_request_by_key(api_key, &mut again, version) {
        Ok(Ok(reencoded)) => assert_eq!(
            reencoded, canonical,
            "{api_key:?} v{version}: the canonical encoding changed on a second round trip"
        ),
        Ok(Err(error)) => panic!("{api_key:?} v{version}: cannot re-encode: {error}"),
        // In a canonical encoding every count and size fits the bytes after it, so a refused
        // varint there is a tag.
        Err(BodyError::Oversized {
            what: REFUSED_VARINT,
            ..
        }) => {}
        Err(error) => panic!("{api_key:?} v{version}: canonical encoding refused: {error}"),
    }
});
