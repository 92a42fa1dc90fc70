//! The buffer a flexible request body is decoded from: it refuses varints larger than the bytes
//! after them.
//!
//! In a flexible body every unsigned varint is a count or a size: a compact array's count + 1,
//! a compact string's or bytes' length + 1, the number of tagged fields, a tagged field's size,
//! or a tag. The codec reads a varint one byte at a time with `try_get_u8`, which is also how it
//! reads a boolean; no other field uses that call. So every `try_get_u8` that returns a byte
//! with the continuation bit set is checked as the start of a varint: its value, decoded the way
//! the codec will decode it, must not exceed the bytes after it plus one. A legitimate varint
//! always passes, and so does every suffix of it that the codec reads afterwards (a suffix
//! encodes a smaller value that ends at the same place).
//!
//! Two legal but unused encodings are refused: a boolean written as a byte of 0x80 or more
//! (clients write 1) followed by bytes that read as a large varint, and a tag number above the
//! bytes that follow it (Kafka's tags are small integers).

use bytes::{Buf, Bytes, TryGetError};
use kafka_protocol::protocol::buf::ByteBuf;

use super::BodyError;

/// The `what` of the [`BodyError::Oversized`] a refused varint gives.
pub const REFUSED_VARINT: &str = "varint count, size or tag";

/// The longest varint the codec reads for a 32-bit value.
const VARINT_BYTES_MAX: usize = 5;

/// A request body whose varints are checked as the codec reads them.
pub struct Guarded {
    inner: Bytes,
    refused: Option<BodyError>,
}

impl Guarded {
    pub fn new(body: Bytes) -> Self {
        Self {
            inner: body,
            refused: None,
        }
    }

    /// The bytes the codec did not read, and the varint that was refused, if one was.
    pub fn into_parts(self) -> (Bytes, Option<BodyError>) {
        (self.inner, self.refused)
    }
}

/// The value the codec decodes from the varint that starts `bytes`, and the bytes it takes;
/// `None` if the bytes end first. Like the codec, at most five bytes are read and bits shifted
/// past 32 are dropped.
fn peek_varint(bytes: &[u8]) -> Option<(u32, usize)> {
    let mut value = 0u32;
    for (i, &byte) in bytes.iter().take(VARINT_BYTES_MAX).enumerate() {
        value |= u32::from(byte & 0x7f).wrapping_shl(7 * i as u32);
        if byte < 0x80 || i + 1 == VARINT_BYTES_MAX {
            return Some((value, i + 1));
        }
    }
    None
}

impl Buf for Guarded {
    fn remaining(&self) -> usize {
        self.inner.remaining()
    }

    fn chunk(&self) -> &[u8] {
        self.inner.chunk()
    }

    fn advance(&mut self, count: usize) {
        self.inner.advance(count);
    }

    fn try_get_u8(&mut self) -> Result<u8, TryGetError> {
        if let Some(&first) = self.inner.first()
            && first >= 0x80
            && let Some((value, length)) = peek_varint(&self.inner)
        {
            let after = self.inner.len() - length;
            if value as usize > after + 1 {
                self.refused.get_or_insert(BodyError::Oversized {
                    what: REFUSED_VARINT,
                    declared: u64::from(value),
                    remaining: after,
                });
                // The codec turns this into a decode error, so nothing is allocated.
                return Err(TryGetError {
                    requested: length,
                    available: 0,
                });
            }
        }
        self.inner.try_get_u8()
    }
}

impl ByteBuf for Guarded {
    fn peek_bytes(&mut self, range: std::ops::Range<usize>) -> Bytes {
        self.inner.peek_bytes(range)
    }

    fn get_bytes(&mut self, size: usize) -> Bytes {
        self.inner.get_bytes(size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_decode_as_the_codec_decodes_them() {
        assert_eq!(peek_varint(&[0x05]), Some((5, 1)));
        assert_eq!(peek_varint(&[0x80, 0x01]), Some((128, 2)));
        assert_eq!(
            peek_varint(&[0xff, 0xff, 0xff, 0xff, 0x0f]),
            Some((u32::MAX, 5))
        );
        // The fifth byte ends the varint whatever its top bit, and bits past 32 are dropped.
        assert_eq!(
            peek_varint(&[0x80, 0x80, 0x80, 0x80, 0xff, 0x01]),
            Some((0xf000_0000, 5))
        );
        assert_eq!(peek_varint(&[0x80, 0x80]), None);
    }

    #[test]
    fn a_count_larger_than_the_rest_is_refused_before_it_is_read() {
        // Compact count 2^28 with three bytes after it.
        let mut guarded =
            Guarded::new(Bytes::from_static(&[0x80, 0x80, 0x80, 0x80, 0x01, 1, 2, 3]));
        assert!(guarded.try_get_u8().is_err());
        let (rest, refused) = guarded.into_parts();
        assert_eq!(rest.len(), 8, "nothing was consumed");
        assert!(matches!(refused, Some(BodyError::Oversized { .. })));
    }

    #[test]
    fn a_count_that_fits_passes_with_all_its_bytes() {
        // 130 + 1 elements need 130 bytes after the varint.
        let mut body = vec![0x82, 0x01];
        body.extend(std::iter::repeat_n(0u8, 130));
        let mut guarded = Guarded::new(Bytes::from(body));
        assert_eq!(guarded.try_get_u8().unwrap(), 0x82);
        assert_eq!(guarded.try_get_u8().unwrap(), 0x01);
        assert!(guarded.into_parts().1.is_none());
    }
}
