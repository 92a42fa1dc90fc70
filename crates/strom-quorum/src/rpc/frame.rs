//! Frames of the controller listener's protocol.
//!
//! Controllers talk to each other (Raft) and brokers talk to the active controller over one
//! TCP connection per peer, in frames:
//!
//! ```text
//! u32 big-endian  frame length: the bytes after this field
//! u64 big-endian  correlation id: a response carries its request's
//! u32 big-endian  header length
//! header          JSON: the request or response message
//! body            raw bytes (a snapshot's data), the rest of the frame; usually empty
//! ```
//!
//! JSON keeps the messages readable and needs no schema beyond serde; the body keeps snapshot
//! bytes from being inflated into JSON arrays.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Larger frames are refused: a snapshot of a very large cluster stays far below this.
pub const MAX_FRAME_BYTES: usize = 512 << 20;
const FIXED_BYTES: usize = 8 + 4;
/// What a frame's buffer reserves before its bytes arrive; larger frames grow as they are read.
const READ_RESERVE_BYTES: usize = 64 << 10;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("frame of {0} bytes is larger than the limit of {MAX_FRAME_BYTES}")]
    TooLarge(usize),
    #[error("malformed frame: {0}")]
    Malformed(String),
}

/// One decoded frame.
#[derive(Debug, Clone)]
pub struct Frame {
    pub correlation_id: u64,
    pub header: Bytes,
    pub body: Bytes,
}

impl Frame {
    /// Encodes `message` as the header of a frame.
    pub fn encode<T: serde::Serialize>(
        correlation_id: u64,
        message: &T,
        body: &[u8],
    ) -> Result<Bytes, FrameError> {
        let header =
            serde_json::to_vec(message).map_err(|e| FrameError::Malformed(e.to_string()))?;
        let length = FIXED_BYTES + header.len() + body.len();
        if length > MAX_FRAME_BYTES {
            return Err(FrameError::TooLarge(length));
        }
        let mut out = BytesMut::with_capacity(4 + length);
        out.put_u32(length as u32);
        out.put_u64(correlation_id);
        out.put_u32(header.len() as u32);
        out.put_slice(&header);
        out.put_slice(body);
        Ok(out.freeze())
    }

    /// Decodes the header as a message.
    pub fn message<T: serde::de::DeserializeOwned>(&self) -> Result<T, FrameError> {
        serde_json::from_slice(&self.header).map_err(|e| FrameError::Malformed(e.to_string()))
    }
}

/// Reads one frame; `Ok(None)` when the peer closed the connection between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R) -> Result<Option<Frame>, FrameError> {
    let length = match reader.read_u32().await {
        Ok(n) => n as usize,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if length > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(length));
    }
    if length < FIXED_BYTES {
        return Err(FrameError::Malformed(format!("frame of {length} bytes")));
    }
    // The buffer grows with the bytes that arrive instead of being sized by the length field:
    // a peer that sends a 4-byte length of 512 MiB and nothing more costs nothing.
    let mut buf = Vec::with_capacity(length.min(READ_RESERVE_BYTES));
    let read = (&mut *reader)
        .take(length as u64)
        .read_to_end(&mut buf)
        .await?;
    if read < length {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("connection closed {read} bytes into a frame of {length}"),
        )
        .into());
    }
    let mut buf = Bytes::from(buf);
    let correlation_id = buf.get_u64();
    let header_length = buf.get_u32() as usize;
    if header_length > buf.len() {
        return Err(FrameError::Malformed(format!(
            "header of {header_length} bytes in a frame of {length}"
        )));
    }
    let header = buf.split_to(header_length);
    Ok(Some(Frame {
        correlation_id,
        header,
        body: buf,
    }))
}

pub async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    frame: &[u8],
) -> std::io::Result<()> {
    writer.write_all(frame).await?;
    writer.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_with_a_body() {
        let encoded = Frame::encode(7, &vec!["a", "b"], b"snapshot").unwrap();
        let mut reader = &encoded[..];
        let frame = read_frame(&mut reader).await.unwrap().unwrap();
        assert_eq!(frame.correlation_id, 7);
        assert_eq!(frame.message::<Vec<String>>().unwrap(), vec!["a", "b"]);
        assert_eq!(&frame.body[..], b"snapshot");
        assert!(read_frame(&mut reader).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn oversized_and_malformed_frames_are_errors() {
        let mut huge = &((MAX_FRAME_BYTES as u32) + 1).to_be_bytes()[..];
        assert!(matches!(
            read_frame(&mut huge).await,
            Err(FrameError::TooLarge(_))
        ));
        let mut bad = Vec::new();
        bad.extend_from_slice(&16u32.to_be_bytes());
        bad.extend_from_slice(&1u64.to_be_bytes());
        bad.extend_from_slice(&100u32.to_be_bytes());
        bad.extend_from_slice(&[0; 4]);
        assert!(matches!(
            read_frame(&mut &bad[..]).await,
            Err(FrameError::Malformed(_))
        ));
    }

    #[tokio::test]
    async fn a_frame_cut_short_after_a_large_length_is_an_early_end() {
        // 256 MiB announced, 20 bytes sent, then the peer closes.
        let mut short = Vec::new();
        short.extend_from_slice(&(256u32 << 20).to_be_bytes());
        short.extend_from_slice(&[0; 20]);
        let mut reader = tokio::io::BufReader::new(&short[..]);
        match read_frame(&mut reader).await {
            Err(FrameError::Io(error)) => {
                assert_eq!(error.kind(), std::io::ErrorKind::UnexpectedEof)
            }
            other => panic!("expected an early end, got {other:?}"),
        }
    }
}
