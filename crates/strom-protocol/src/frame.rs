//! Length-prefixed frames: a big-endian `i32` size followed by that many bytes.
//!
//! [`decode_frame`] is called on a connection's read buffer after every read. An incomplete
//! frame is an ordinary outcome (`Ok(None)`), not an error; a size that is negative or larger
//! than `socket.request.max.bytes` is an error the connection answers by closing, as Kafka does,
//! because nothing after a bad size can be trusted to be a frame boundary.

use bytes::{Buf, Bytes, BytesMut};

/// Bytes of the size prefix.
pub const SIZE_PREFIX_BYTES: usize = 4;

/// The least room reserved for an incomplete frame.
pub const RESERVE_BYTES_MIN: usize = 64 << 10;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("negative frame size {0}")]
    NegativeSize(i32),
    #[error("frame of {size} bytes exceeds socket.request.max.bytes {max}")]
    TooLarge { size: usize, max: usize },
}

/// Splits one complete frame body (without its size prefix) off the front of `buf`.
///
/// Returns `Ok(None)` when `buf` does not yet hold a whole frame; in that case it reserves room
/// for more of it, growing with what has arrived (at most as much again as the buffer holds,
/// and at least [`RESERVE_BYTES_MIN`]) rather than with what the size prefix announces: a client
/// that sends a 4-byte prefix of 100 MiB and nothing else must not cost 100 MiB per connection.
/// Large frames still need only a logarithmic number of reallocations.
pub fn decode_frame(
    buf: &mut BytesMut,
    max_frame_bytes: usize,
) -> Result<Option<Bytes>, FrameError> {
    if buf.len() < SIZE_PREFIX_BYTES {
        return Ok(None);
    }
    let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if size < 0 {
        return Err(FrameError::NegativeSize(size));
    }
    let size = size as usize;
    if size > max_frame_bytes {
        return Err(FrameError::TooLarge {
            size,
            max: max_frame_bytes,
        });
    }
    let total = SIZE_PREFIX_BYTES + size;
    if buf.len() < total {
        let missing = total - buf.len();
        buf.reserve(missing.min(buf.len().max(RESERVE_BYTES_MIN)));
        return Ok(None);
    }
    buf.advance(SIZE_PREFIX_BYTES);
    Ok(Some(buf.split_to(size).freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;

    fn framed(body: &[u8]) -> BytesMut {
        let mut buf = BytesMut::new();
        buf.put_i32(body.len() as i32);
        buf.put_slice(body);
        buf
    }

    #[test]
    fn incomplete_prefix_is_not_an_error() {
        let mut buf = BytesMut::from(&[0u8, 0][..]);
        assert_eq!(decode_frame(&mut buf, 100), Ok(None));
        assert_eq!(buf.len(), 2);
    }

    #[test]
    fn incomplete_body_waits_for_more_bytes() {
        let mut buf = framed(b"hello");
        buf.truncate(7);
        assert_eq!(decode_frame(&mut buf, 100), Ok(None));
        assert_eq!(buf.len(), 7, "nothing is consumed until the frame is whole");
    }

    #[test]
    fn whole_frames_are_split_one_at_a_time() {
        let mut buf = framed(b"one");
        buf.extend_from_slice(&framed(b"two!"));
        assert_eq!(decode_frame(&mut buf, 100).unwrap().unwrap(), &b"one"[..]);
        assert_eq!(decode_frame(&mut buf, 100).unwrap().unwrap(), &b"two!"[..]);
        assert_eq!(decode_frame(&mut buf, 100), Ok(None));
        assert!(buf.is_empty());
    }

    #[test]
    fn a_large_size_prefix_reserves_room_for_what_arrived_not_for_what_it_announces() {
        let mut buf = BytesMut::new();
        buf.put_i32(100 << 20);
        buf.put_slice(&[0u8; 16]);
        assert_eq!(decode_frame(&mut buf, 200 << 20), Ok(None));
        assert!(
            buf.capacity() < 1 << 20,
            "reserved {} bytes",
            buf.capacity()
        );
        // As the frame arrives, the room grows with it.
        buf.resize(10 << 20, 0);
        assert_eq!(decode_frame(&mut buf, 200 << 20), Ok(None));
        assert!(buf.capacity() >= 11 << 20);
        assert!(
            buf.capacity() <= 21 << 20,
            "reserved {} bytes",
            buf.capacity()
        );
    }

    #[test]
    fn oversized_frame_is_rejected_before_it_arrives() {
        let mut buf = BytesMut::new();
        buf.put_i32(1_000);
        assert_eq!(
            decode_frame(&mut buf, 999),
            Err(FrameError::TooLarge {
                size: 1000,
                max: 999
            })
        );
    }

    #[test]
    fn negative_size_is_rejected() {
        let mut buf = BytesMut::new();
        buf.put_i32(-5);
        assert_eq!(
            decode_frame(&mut buf, 999),
            Err(FrameError::NegativeSize(-5))
        );
    }

    #[test]
    fn empty_frame_is_a_frame() {
        let mut buf = framed(b"");
        assert_eq!(decode_frame(&mut buf, 10).unwrap().unwrap().len(), 0);
    }
}
